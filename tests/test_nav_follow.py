"""Regulated pure pursuit in a kinematic unicycle simulation (pure numpy, no PyBullet)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.msgs import Pose2D, wrap_angle_rad
from autonomy.navigation.costmap import Costmap, CostmapParams, GridSpec
from autonomy.navigation.planner import Path, Planner
from autonomy.navigation.regulated_pursuit import FollowPhase, RegulatedPurePursuit

DT = 0.05


def _arena() -> Costmap:
    grid = GridSpec(0.0, 0.0, 0.05, 120, 140)
    lethal = np.zeros(grid.shape, dtype=bool)
    lethal[40:80, 60:70] = True  # a rock band in the middle
    return Costmap.from_lethal(grid, lethal, CostmapParams(inscribed_radius_m=0.3, inflation_radius_m=0.8))


def _drive(
    path: Path, start: Pose2D, cm: Costmap | None = None, steps: int = 4000
) -> tuple[Pose2D, RegulatedPurePursuit, list[tuple[float, float]]]:
    f = RegulatedPurePursuit()
    x, y, th = start.x_m, start.y_m, start.yaw_rad
    cmds: list[tuple[float, float]] = []
    for i in range(steps):
        cmd = f.step(Pose2D(x, y, th), path, i * DT, costmap=cm)
        cmds.append((cmd.linear_x_mps, cmd.angular_z_radps))
        th += cmd.angular_z_radps * DT
        x += cmd.linear_x_mps * math.cos(th) * DT
        y += cmd.linear_x_mps * math.sin(th) * DT
        if f.status.done:
            break
    return Pose2D(x, y, th), f, cmds


@pytest.mark.parametrize(
    ("start", "goal"),
    [
        (Pose2D(0.8, 1.0, 0.0), Pose2D(5.5, 4.5, math.radians(90.0))),
        (Pose2D(0.8, 5.0, -1.0), Pose2D(6.0, 1.0, math.radians(-170.0))),
        (Pose2D(1.0, 1.0, 2.5), Pose2D(1.8, 1.2, 0.0)),  # short hop behind the rover
    ],
)
def test_reaches_the_goal_pose_within_5cm_and_3deg(start: Pose2D, goal: Pose2D) -> None:
    cm = _arena()
    planner = Planner()
    path = planner.plan(cm, start, goal)
    end, f, _ = _drive(path, start, cm)
    assert f.status.done
    assert end.distance_to_m(goal.x_m, goal.y_m) <= 0.05
    assert abs(wrap_angle_rad(end.yaw_rad - goal.yaw_rad)) <= math.radians(3.0)


def test_reverse_path_is_driven_backwards() -> None:
    cm = _arena()
    start = Pose2D(1.0, 1.0, math.pi)  # facing away from the goal: back up to it
    goal = Pose2D(2.5, 1.2, math.pi)
    path = Planner().plan(cm, start, goal, reverse=True)
    end, f, cmds = _drive(path, start, cm)
    assert f.status.done
    assert end.distance_to_m(goal.x_m, goal.y_m) <= 0.05
    assert abs(wrap_angle_rad(end.yaw_rad - goal.yaw_rad)) <= math.radians(3.0)
    v = np.array([c[0] for c in cmds])
    assert v.min() < -0.1 and v.max() <= 1e-9  # backwards all the way


def test_speed_is_regulated_by_curvature_slope_and_proximity() -> None:
    grid = GridSpec(0.0, 0.0, 0.05, 100, 100)
    free = Costmap.from_lethal(grid, np.zeros(grid.shape, dtype=bool), CostmapParams())
    path = Planner().plan(free, (0.5, 2.5), (4.5, 2.5))

    def cruise(pose: Pose2D, cm: Costmap | None = None, slope_deg: float = 0.0) -> float:
        f = RegulatedPurePursuit()
        v = 0.0
        for i in range(60):  # let the rate limits settle
            v = f.step(pose, path, i * DT, costmap=cm, slope_deg=slope_deg).linear_x_mps
        return v

    straight = cruise(Pose2D(1.0, 2.5, 0.0))
    assert straight == pytest.approx(RegulatedPurePursuit().params.max_speed_mps)
    assert cruise(Pose2D(1.0, 2.5, 0.0), slope_deg=20.0) < 0.7 * straight
    assert cruise(Pose2D(1.0, 2.9, -0.3)) < straight  # off the path: a curved arc back to it
    graded = Costmap(grid, np.full(grid.shape, 150, dtype=np.uint8), CostmapParams())
    assert cruise(Pose2D(1.0, 2.5, 0.0), cm=graded) < 0.8 * straight


def test_no_path_stops_and_time_must_not_go_back() -> None:
    f = RegulatedPurePursuit()
    cmd = f.step(Pose2D(0.0, 0.0, 0.0), None, 0.0)
    assert (cmd.linear_x_mps, cmd.angular_z_radps) == (0.0, 0.0)
    assert f.status.phase == FollowPhase.IDLE
    with pytest.raises(ValueError, match="backwards"):
        f.step(Pose2D(0.0, 0.0, 0.0), None, -1.0)
