"""Regulated pure pursuit in a kinematic unicycle simulation (pure numpy, no PyBullet)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.msgs import Pose2D, wrap_angle_rad
from autonomy.navigation.costmap import Costmap, CostmapParams, GridSpec
from autonomy.navigation.planner import Path, Planner
from autonomy.navigation.regulated_pursuit import FollowPhase, RegulatedPurePursuit, RegulatedPursuitParams

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


def _navigator_pursuit() -> RegulatedPursuitParams:
    """``PlannedNavigator``'s pursuit settings (``NavigatorParams.pursuit``)."""
    return RegulatedPursuitParams(
        rotate_enter_rad=math.radians(25.0),
        rotate_exit_rad=math.radians(4.0),
        max_speed_mps=0.25,
        max_track_curvature_per_m=0.5,
        xy_tolerance_m=0.02,
    )


def _open_costmap() -> Costmap:
    grid = GridSpec(0.0, 0.0, 0.05, 80, 80)
    return Costmap.from_lethal(grid, np.zeros(grid.shape, dtype=bool), CostmapParams())


@pytest.mark.parametrize(
    ("start", "pivot_m"),
    [
        ((0.15, 0.02, -30.0), 0.10),  # overshot, turned away: the UCF dig stand, eleventh session
        ((0.17, -0.02, 35.0), 0.10),
        ((-0.10, 0.03, 20.0), 0.10),  # short of it
        ((0.05, 0.06, -40.0), 0.05),  # off the line: back out, then in again
        ((-0.15, -0.05, 25.0), -0.05),  # pivot behind base_link
    ],
)
def test_the_last_cm_along_the_goal_heading_settle_where_steering_at_the_point_does_not(
    start: tuple[float, float, float], pivot_m: float
) -> None:
    """``final_approach_m``: a skid-steer that turns about a point ``pivot_m`` ahead of base_link (its load moves
    it; the model's pivot is never exact) a few cm from its goal. Steering at the goal point, each turn moves it
    sideways by more than the 2 cm tolerance and it turns back and forth for good; squared to the goal heading
    and driven straight along it, it settles in seconds."""
    from dataclasses import replace

    cm = _open_costmap()
    goal = (1.0, 1.0)
    path = Path(np.array([[0.5, 1.0], goal]), cm, 0.5, 0.5, np.zeros(0, dtype=np.intp), np.zeros(0), goal_yaw_rad=0.0)
    prm = _navigator_pursuit()

    def settle(final_approach_m: float) -> tuple[bool, float, Pose2D]:
        f = RegulatedPurePursuit(replace(prm, final_approach_m=final_approach_m))
        x, y, th = goal[0] + start[0], goal[1] + start[1], math.radians(start[2])
        for i in range(1200):  # 60 s
            cmd = f.step(Pose2D(x, y, th), path, i * DT)
            if f.status.done:
                return True, i * DT, Pose2D(x, y, th)
            v, w = cmd.linear_x_mps, cmd.angular_z_radps
            # base_link circles the pivot while turning: it moves sideways by -pivot * w * dt
            x += (v * math.cos(th) + pivot_m * w * math.sin(th)) * DT
            y += (v * math.sin(th) - pivot_m * w * math.cos(th)) * DT
            th += w * DT
        return False, 60.0, Pose2D(x, y, th)

    done, t_s, end = settle(0.25)
    assert done and t_s < 20.0
    assert end.distance_to_m(*goal) <= 0.05 and abs(wrap_angle_rad(end.yaw_rad)) <= math.radians(3.0)
    if pivot_m >= 0.1:
        assert not settle(0.0)[0]


def test_the_last_cm_end_with_the_turn_to_the_goal_heading() -> None:
    """A path whose last stretch comes in at 112 deg to a goal heading of 0 (the UCF dig stand from the start
    zone), on a skid-steer whose turns pivot 3 cm behind base_link: the rover drives straight in along the
    stretch, turns to the goal heading there, and stops; the turn moves it by cm, and it does not go back for
    them (steering at the point, it turned there for good)."""
    from dataclasses import replace

    cm = _open_costmap()
    start, goal = (1.25, 1.0), (0.63, 2.55)
    path = Path(np.array([start, goal]), cm, 1.7, 1.7, np.zeros(0, dtype=np.intp), np.zeros(0), goal_yaw_rad=0.0)
    prm = _navigator_pursuit()

    def run(final_approach_m: float) -> tuple[bool, Pose2D]:
        f = RegulatedPurePursuit(replace(prm, final_approach_m=final_approach_m))
        x, y, th = start[0], start[1], math.atan2(goal[1] - start[1], goal[0] - start[0])
        for i in range(1200):
            cmd = f.step(Pose2D(x, y, th), path, i * DT)
            if f.status.done:
                return True, Pose2D(x, y, th)
            v, w = cmd.linear_x_mps, cmd.angular_z_radps
            x += (v * math.cos(th) - 0.03 * w * math.sin(th)) * DT
            y += (v * math.sin(th) + 0.03 * w * math.cos(th)) * DT
            th += w * DT
        return False, Pose2D(x, y, th)

    done, end = run(0.25)
    assert done and end.distance_to_m(*goal) <= 0.06 and abs(wrap_angle_rad(end.yaw_rad)) <= math.radians(3.0)
    assert not run(0.0)[0]


def test_a_negative_final_approach_is_refused() -> None:
    with pytest.raises(ValueError, match="final_approach_m"):
        RegulatedPursuitParams(final_approach_m=-0.1)
    with pytest.raises(ValueError, match="final_lateral_tolerance_m"):
        RegulatedPursuitParams(final_lateral_tolerance_m=0.0)


def test_a_leg_end_without_a_heading_is_passed_straight_not_circled() -> None:
    """A leg's end (no goal heading) 8 cm ahead, the rover 10 deg off the leg: steering at the point, a loaded
    skid-steer turned in place back and forth for seconds, its rear swinging out (UCF build seed 1, eleventh
    session: into a rock); with the last cm it squares up once and drives on to the end. The pose followed is the
    model's pivot (``NavigationPort``), and the true one is 3 cm from it."""
    from dataclasses import replace

    cm = _open_costmap()
    path = Path(np.array([[0.5, 1.0], [1.0, 1.0]]), cm, 0.5, 0.5, np.zeros(0, dtype=np.intp), np.zeros(0))
    prm = _navigator_pursuit()

    def run(final_approach_m: float) -> tuple[bool, float]:
        f = RegulatedPurePursuit(replace(prm, final_approach_m=final_approach_m))
        x, y, th = 0.92, 1.01, math.radians(10.0)
        turned = 0.0
        for i in range(200):  # 10 s
            cmd = f.step(Pose2D(x, y, th), path, i * DT)
            if f.status.done:
                return True, turned
            v, w = cmd.linear_x_mps, cmd.angular_z_radps
            x += (v * math.cos(th) + 0.03 * w * math.sin(th)) * DT
            y += (v * math.sin(th) - 0.03 * w * math.cos(th)) * DT
            th += w * DT
            turned += abs(w) * DT
        return False, turned

    done, turned = run(0.25)
    assert done and turned < math.radians(20.0)
    done_old, turned_old = run(0.0)
    assert not done_old or turned_old > 3.0 * turned
