"""PurePursuit in a unicycle kinematic simulation: waypoint loop, rotate in place, limits, goal stop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from autonomy.msgs import DriveCommand, NavigationStatus, Pose2D, Waypoint, wrap_angle_rad
from autonomy.navigation.pure_pursuit import PurePursuit, PurePursuitParams

PARAMS = PurePursuitParams()
LOOP = (Waypoint(3.0, 0.0), Waypoint(3.0, 3.0), Waypoint(0.0, 3.0), Waypoint(0.0, 0.0))  # 12 m square
DT = 0.05


@dataclass
class Run:
    poses: list[Pose2D] = field(default_factory=list)
    commands: list[DriveCommand] = field(default_factory=list)
    statuses: list[NavigationStatus] = field(default_factory=list)


def simulate(
    follower: PurePursuit,
    start: Pose2D,
    max_time_s: float = 120.0,
    dt: float = DT,
    pose_noise_m: float = 0.0,
    seed: int = 0,
    settle_ticks: int = 20,
) -> Run:
    """Integrate the returned twist exactly (unicycle, mid-point heading) until done plus a few ticks."""
    rng = np.random.default_rng(seed)
    pose = start
    run = Run()
    done_for = 0
    for k in range(int(max_time_s / dt)):
        seen = pose
        if pose_noise_m > 0.0:
            n = rng.normal(0.0, pose_noise_m, 3)
            seen = Pose2D(pose.x_m + n[0], pose.y_m + n[1], pose.yaw_rad + 0.5 * n[2])
        cmd, status = follower.update(k * dt, seen)
        run.poses.append(pose)
        run.commands.append(cmd)
        run.statuses.append(status)
        mid = pose.yaw_rad + 0.5 * cmd.angular_z_radps * dt
        pose = Pose2D(
            pose.x_m + cmd.linear_x_mps * math.cos(mid) * dt,
            pose.y_m + cmd.linear_x_mps * math.sin(mid) * dt,
            wrap_angle_rad(pose.yaw_rad + cmd.angular_z_radps * dt),
        )
        if status.done:
            done_for += 1
            if done_for > settle_ticks:
                break
    run.poses.append(pose)
    return run


def assert_limits(run: Run, prm: PurePursuitParams, dt: float = DT) -> None:
    v = np.array([c.linear_x_mps for c in run.commands])
    w = np.array([c.angular_z_radps for c in run.commands])
    eps = 1e-9
    assert np.all(np.abs(v) <= prm.max_speed_mps + eps)
    assert np.all(np.abs(w) <= prm.max_yaw_rate_radps + eps)
    assert abs(v[0]) <= prm.max_accel_mps2 * prm.control_period_s + eps
    assert np.all(np.abs(np.diff(v)) <= prm.max_accel_mps2 * dt + eps)
    assert np.all(np.abs(np.diff(w)) <= prm.max_yaw_accel_radps2 * dt + eps)


def test_square_loop_reaches_every_waypoint_and_stops_done() -> None:
    follower = PurePursuit(PARAMS, LOOP)
    run = simulate(follower, Pose2D(0.0, 0.0, 0.0))
    final = run.statuses[-1]
    assert final.done and final.reached == (0, 1, 2, 3) and final.waypoints_total == 4
    # every waypoint was within its tolerance at the tick it was declared reached
    for i, wp in enumerate(LOOP):
        k = next(k for k, s in enumerate(run.statuses) if i in s.reached)
        assert run.poses[k].distance_to_m(wp.x_m, wp.y_m) <= wp.tolerance_m
    # the rover stops at the goal: commands ramp to zero, and it stays within tolerance
    assert run.commands[-1].linear_x_mps == 0.0 and run.commands[-1].angular_z_radps == 0.0
    assert run.poses[-1].distance_to_m(0.0, 0.0) <= LOOP[-1].tolerance_m
    assert_limits(run, PARAMS)
    t_done = next(k for k, s in enumerate(run.statuses) if s.done) * DT
    assert t_done < 12.0 / PARAMS.max_speed_mps * 1.5  # 34 s at full speed; ~38 s with braking and turns
    # the remaining distance decreases to ~0
    remaining = [s.distance_to_goal_m for s in run.statuses]
    assert remaining[0] == pytest.approx(12.0, abs=0.01)
    assert remaining[-1] < LOOP[-1].tolerance_m


def test_square_loop_tracks_the_path_closely() -> None:
    follower = PurePursuit(PARAMS, LOOP)
    run = simulate(follower, Pose2D(0.0, 0.0, 0.0))
    pts = np.array([(p.x_m, p.y_m) for p in run.poses])
    # distance from the square's outline
    d_edges = np.minimum.reduce(
        [
            np.where((pts[:, 0] >= 0) & (pts[:, 0] <= 3), np.abs(pts[:, 1]), np.inf),
            np.where((pts[:, 0] >= 0) & (pts[:, 0] <= 3), np.abs(pts[:, 1] - 3), np.inf),
            np.where((pts[:, 1] >= 0) & (pts[:, 1] <= 3), np.abs(pts[:, 0]), np.inf),
            np.where((pts[:, 1] >= 0) & (pts[:, 1] <= 3), np.abs(pts[:, 0] - 3), np.inf),
            np.hypot(pts[:, 0] - 3, pts[:, 1]),
            np.hypot(pts[:, 0] - 3, pts[:, 1] - 3),
            np.hypot(pts[:, 0], pts[:, 1] - 3),
            np.hypot(pts[:, 0], pts[:, 1]),
        ]
    )
    assert d_edges.max() < 0.3


def test_loop_with_localisation_noise_still_completes() -> None:
    follower = PurePursuit(PARAMS, LOOP)
    run = simulate(follower, Pose2D(0.0, 0.0, 0.0), pose_noise_m=0.01, seed=3)
    assert run.statuses[-1].done and run.statuses[-1].reached == (0, 1, 2, 3)
    assert_limits(run, PARAMS)


def test_rotates_in_place_when_the_target_is_behind() -> None:
    follower = PurePursuit(PARAMS, (Waypoint(2.0, 0.0),))
    run = simulate(follower, Pose2D(0.0, 0.0, math.pi - 0.3), max_time_s=40.0)
    # first the rover turns on the spot (v stays 0) until it faces the goal within the exit threshold
    first = run.commands[:10]
    assert all(c.linear_x_mps == 0.0 for c in first)
    assert all(c.angular_z_radps < 0.0 for c in first[1:])  # shortest way: clockwise from +160 deg
    k_move = next(k for k, c in enumerate(run.commands) if c.linear_x_mps > 0.0)
    assert abs(wrap_angle_rad(run.poses[k_move].yaw_rad)) < PARAMS.rotate_exit_rad + 0.05
    assert run.poses[k_move].distance_to_m(0.0, 0.0) < 1e-9  # it did not move while turning
    assert run.statuses[-1].done
    assert run.poses[-1].distance_to_m(2.0, 0.0) <= 0.25
    assert_limits(run, PARAMS)


def test_sharp_corner_triggers_rotate_in_place_with_speed_decay() -> None:
    """A U-turn waypoint: the follower slows before it, then turns on the spot (after braking)."""
    wps = (Waypoint(2.0, 0.0), Waypoint(0.0, 0.3))
    follower = PurePursuit(PARAMS, wps)
    run = simulate(follower, Pose2D(0.0, 0.0, 0.0), max_time_s=60.0)
    assert run.statuses[-1].done and run.statuses[-1].reached == (0, 1)
    k_reach = next(k for k, s in enumerate(run.statuses) if 0 in s.reached)
    # slowed by the braking profile: sqrt(2 a (d - tol / 2)) at d = tol, plus one tick of lag
    limit = math.sqrt(2.0 * PARAMS.approach_decel_mps2 * 0.125) + PARAMS.approach_decel_mps2 * DT
    assert run.commands[k_reach - 1].linear_x_mps <= limit < 0.8 * PARAMS.max_speed_mps
    rotating = [c for c in run.commands[k_reach:] if c.linear_x_mps == 0.0 and abs(c.angular_z_radps) > 0.3]
    assert len(rotating) > 10
    assert_limits(run, PARAMS)


def test_speed_is_limited_near_the_goal_and_by_curvature() -> None:
    follower = PurePursuit(PARAMS, (Waypoint(6.0, 0.0),))
    run = simulate(follower, Pose2D(0.0, 0.0, 0.0))
    v = np.array([c.linear_x_mps for c in run.commands])
    x = np.array([p.x_m for p in run.poses[:-1]])
    assert v.max() == pytest.approx(PARAMS.max_speed_mps)
    done = np.array([st.done for st in run.statuses])
    d = 6.0 - x
    profile = np.sqrt(2.0 * PARAMS.approach_decel_mps2 * np.maximum(0.0, d - 0.125))
    approach = (d < 1.0) & ~done
    assert np.all(v[approach] <= np.maximum(PARAMS.min_speed_mps, profile[approach]) + 1e-9)
    assert np.any(v[approach] < 0.8 * PARAMS.max_speed_mps)
    # it stops inside the tolerance, not at its edge: the braking after "done" carries it further in
    assert 0.1 < run.poses[-1].distance_to_m(6.0, 0.0) < 0.25
    # a target 1 m to the side: the arc to it is tight enough for a 0.05 m/s^2 lateral limit to cap the speed
    prm = PurePursuitParams(max_lateral_accel_mps2=0.05)
    side = PurePursuit(prm, (Waypoint(1.5, 1.0), Waypoint(5.0, 1.0)))
    cmd = DriveCommand.stop(0.0)
    for k in range(40):  # let the speed ramp up, pose held fixed
        cmd, _ = side.update(k * DT, Pose2D(0.0, 0.0, 0.0))
    kappa = cmd.angular_z_radps / cmd.linear_x_mps
    assert kappa > 1.0
    assert cmd.linear_x_mps == pytest.approx(math.sqrt(prm.max_lateral_accel_mps2 / kappa), rel=1e-6)
    assert cmd.linear_x_mps < 0.6 * prm.max_speed_mps


def test_rate_limits_with_irregular_ticks() -> None:
    rng = np.random.default_rng(4)
    follower = PurePursuit(PARAMS, LOOP)
    pose, t = Pose2D(0.0, 0.0, 0.0), 0.0
    prev = DriveCommand.stop(0.0)
    prev_t: float | None = None
    for _ in range(1500):
        cmd, status = follower.update(t, pose)
        if prev_t is not None:
            dt_eff = min(t - prev_t, PARAMS.max_dt_s)
            assert abs(cmd.linear_x_mps - prev.linear_x_mps) <= PARAMS.max_accel_mps2 * dt_eff + 1e-9
            assert abs(cmd.angular_z_radps - prev.angular_z_radps) <= PARAMS.max_yaw_accel_radps2 * dt_eff + 1e-9
        step = float(rng.choice([0.0, 0.02, 0.05, 0.1, 0.4]))
        mid = pose.yaw_rad + 0.5 * cmd.angular_z_radps * step
        pose = Pose2D(
            pose.x_m + cmd.linear_x_mps * math.cos(mid) * step,
            pose.y_m + cmd.linear_x_mps * math.sin(mid) * step,
            wrap_angle_rad(pose.yaw_rad + cmd.angular_z_radps * step),
        )
        prev, prev_t, t = cmd, t, t + step
        if status.done:
            break
    assert status.done


def test_done_and_empty_and_contract() -> None:
    empty = PurePursuit(PARAMS)
    cmd, status = empty.update(0.0, Pose2D(0.0, 0.0, 0.0))
    assert cmd == DriveCommand.stop(0.0) and status.done and status.waypoints_total == 0
    follower = PurePursuit(PARAMS, (Waypoint(0.1, 0.0),))
    cmd, status = follower.update(1.0, Pose2D(0.0, 0.0, 0.0))  # already within tolerance
    assert status.done and status.reached == (0,) and cmd.linear_x_mps == 0.0
    with pytest.raises(ValueError, match="backwards"):
        follower.update(0.5, Pose2D(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="tolerance"):
        follower.set_waypoints((Waypoint(1.0, 0.0, 0.0),))
    with pytest.raises(ValueError):
        PurePursuitParams(max_speed_mps=0.0)
    with pytest.raises(ValueError):
        PurePursuitParams(rotate_exit_rad=1.5, rotate_enter_rad=1.0)
    # new waypoints restart the sequence from the rover's position
    follower.set_waypoints(LOOP)
    _, status = follower.update(2.0, Pose2D(0.0, 0.0, 0.0))
    assert not status.done and status.waypoint_index == 0 and status.reached == ()


@pytest.mark.parametrize("seed", range(5))
def test_random_waypoint_sequences_are_completed(seed: int) -> None:
    rng = np.random.default_rng(seed)
    wps = tuple(Waypoint(float(x), float(y), 0.25) for x, y in rng.uniform(-4.0, 4.0, (5, 2)))
    follower = PurePursuit(PARAMS, wps)
    start = Pose2D(0.0, 0.0, float(rng.uniform(-math.pi, math.pi)))
    run = simulate(follower, start, max_time_s=300.0)
    assert run.statuses[-1].done and run.statuses[-1].reached == tuple(range(5))
    assert_limits(run, PARAMS)
