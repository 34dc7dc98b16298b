"""Collision monitor (stops before an obstacle whatever the command) and stuck detection / recovery
(time passed in)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.msgs import DriveCommand, Pose2D
from autonomy.navigation.collision_monitor import CollisionMonitor, CollisionMonitorParams, MonitorAction
from autonomy.navigation.costmap import GridSpec
from autonomy.navigation.recovery import Recovery, RecoveryParams, RecoveryState

DT = 0.05


def _monitor_with_rock() -> tuple[CollisionMonitor, GridSpec]:
    grid = GridSpec(0.0, 0.0, 0.05, 80, 120)
    obstacles = np.zeros(grid.shape, dtype=bool)
    obstacles[38:42, 78:82] = True  # a 20 cm rock at x = 3.9..4.1, y = 1.9..2.1
    mon = CollisionMonitor(CollisionMonitorParams(footprint_radius_m=0.5))
    mon.set_obstacles(grid, obstacles)
    return mon, grid


def test_monitor_stops_the_rover_before_the_obstacle() -> None:
    mon, _ = _monitor_with_rock()
    x, y, th = 0.5, 2.0, 0.0
    actions = set()
    for i in range(400):  # the planner keeps asking for full speed straight at the rock
        res = mon.filter(DriveCommand(i * DT, 0.3, 0.0), Pose2D(x, y, th))
        actions.add(res.action)
        x += res.command.linear_x_mps * DT
    assert MonitorAction.SLOW in actions and MonitorAction.STOP in actions
    assert x + 0.5 < 3.9  # the footprint edge stayed short of the rock
    assert x + 0.5 > 3.9 - 0.5  # and it did get reasonably close (slowed, not stopped far away)


def test_monitor_lets_clear_motion_rotation_and_escape_pass() -> None:
    mon, _ = _monitor_with_rock()
    cmd = DriveCommand(0.0, 0.3, 0.0)
    assert mon.filter(cmd, Pose2D(0.5, 0.5, 0.0)).action == MonitorAction.OK  # parallel, far below the rock
    near = Pose2D(3.35, 2.0, 0.0)  # footprint edge 5 cm from the rock
    assert mon.filter(DriveCommand(0.0, 0.1, 0.0), near).action == MonitorAction.STOP
    spin = mon.filter(DriveCommand(0.0, 0.0, 0.5), near)
    assert spin.command.angular_z_radps == 0.5
    back = mon.filter(DriveCommand(0.0, -0.1, 0.0), near)
    assert back.action != MonitorAction.STOP and back.command.linear_x_mps < 0.0
    # a turning command that curves into the rock is predicted along the arc (straight on stays clear)
    grid = GridSpec(0.0, 0.0, 0.05, 80, 120)
    obstacles = np.zeros(grid.shape, dtype=bool)
    obstacles[38:42, 78:82] = True
    arc_mon = CollisionMonitor(CollisionMonitorParams(footprint_radius_m=0.5, slow_margin_m=0.0))
    arc_mon.set_obstacles(grid, obstacles)
    pose = Pose2D(3.1, 1.2, 0.0)
    assert arc_mon.filter(DriveCommand(0.0, 0.3, 0.0), pose).action == MonitorAction.OK
    arc = arc_mon.filter(DriveCommand(0.0, 0.3, 0.5), pose)
    assert math.isfinite(arc.time_to_collision_s)
    assert arc.action in (MonitorAction.SLOW, MonitorAction.STOP) or arc.time_to_collision_s > 1.5


def test_monitor_without_a_map_creeps() -> None:
    res = CollisionMonitor().filter(DriveCommand(0.0, 0.4, 0.1), Pose2D(0.0, 0.0, 0.0))
    assert res.action == MonitorAction.NO_MAP and res.command.linear_x_mps == pytest.approx(0.1)


def test_stuck_detected_after_2s_below_0p08_mps_while_commanding() -> None:
    rec = Recovery()
    pose = Pose2D(1.0, 1.0, 0.0)
    cmd = DriveCommand(0.0, 0.2, 0.0)
    t = 0.0
    while t < 1.95:  # commanding 0.2 m/s, moving 0.05 m/s: not yet
        assert rec.update(t, cmd, 0.05, pose).state == RecoveryState.NOMINAL
        t = round(t + DT, 6)
    out = rec.update(2.0, cmd, 0.05, pose)
    assert out.state == RecoveryState.BACK_OFF and "stuck" in out.reason
    assert out.command.linear_x_mps < 0.0 and out.command.angular_z_radps == 0.0


def test_no_stuck_when_moving_or_not_commanding() -> None:
    rec = Recovery()
    pose = Pose2D(0.0, 0.0, 0.0)
    for i in range(200):
        t = i * DT
        assert rec.update(t, DriveCommand(t, 0.2, 0.0), 0.15, pose).state == RecoveryState.NOMINAL
        assert rec.update(t, DriveCommand(t, 0.0, 0.5), 0.0, pose).state == RecoveryState.NOMINAL
    # a short stall (1 s) resets
    rec = Recovery()
    for i in range(100):
        t = i * DT
        speed = 0.0 if (i // 20) % 2 == 0 else 0.2
        assert rec.update(t, DriveCommand(t, 0.2, 0.0), speed, pose).state == RecoveryState.NOMINAL


def test_recovery_sequence_back_off_rotate_replan_then_fail_after_max_attempts() -> None:
    prm = RecoveryParams(max_attempts=2)
    rec = Recovery(prm)
    x, th = 2.0, 0.0
    t = 0.0
    states: list[RecoveryState] = []
    for _ in range(3):
        # stuck against something: commanded forward, no motion
        out = rec.update(t, DriveCommand(t, 0.2, 0.0), 0.0, Pose2D(x, 0.0, th))
        while out.state == RecoveryState.NOMINAL:
            t += DT
            out = rec.update(t, DriveCommand(t, 0.2, 0.0), 0.0, Pose2D(x, 0.0, th))
        while out.state not in (RecoveryState.REPLAN, RecoveryState.FAILED):
            states.append(out.state)
            x += out.command.linear_x_mps * DT  # the rover does what recovery says
            th += out.command.angular_z_radps * DT
            t += DT
            out = rec.update(t, DriveCommand(t, 0.2, 0.0), abs(out.command.linear_x_mps), Pose2D(x, 0.0, th))
        states.append(out.state)
        if out.state == RecoveryState.FAILED:
            break
    assert states.count(RecoveryState.REPLAN) == 2
    assert states[-1] == RecoveryState.FAILED
    assert RecoveryState.BACK_OFF in states and RecoveryState.ROTATE in states
    assert x < 2.0 - prm.back_off_m  # it did back off
    assert abs(th) >= 0.0


def test_far_from_the_path_asks_for_a_replan() -> None:
    rec = Recovery(RecoveryParams(rejoin_distance_m=0.5))
    out = rec.update(0.0, DriveCommand(0.0, 0.2, 0.0), 0.2, Pose2D(0.0, 0.0, 0.0), cross_track_m=0.8)
    assert out.replan and "off_path" in out.reason
    assert rec.update(0.05, DriveCommand(0.05, 0.2, 0.0), 0.2, Pose2D(0.0, 0.0, 0.0)).state == RecoveryState.NOMINAL
    assert math.isfinite(out.command.linear_x_mps)


def test_no_progress_for_20s_starts_a_recovery_whatever_the_command() -> None:
    """A follower that creeps (under the stuck check's command) while the monitor holds the rover: the progress
    check backs it off after ``progress_timeout_s``; real motion resets the check, and a standstill command never
    triggers it."""
    rec = Recovery()
    pose = Pose2D(1.0, 1.0, 0.3)
    t = 0.0
    while t < 19.9:  # told to creep at 0.03 m/s (under the stuck check's 0.05), not moving
        out = rec.update(t, DriveCommand(t, 0.03, 0.0), 0.0, pose)
        assert out.state == RecoveryState.NOMINAL
        t = round(t + DT, 6)
    out = rec.update(20.0, DriveCommand(20.0, 0.03, 0.0), 0.0, pose)
    assert out.state == RecoveryState.BACK_OFF and "no progress" in out.reason
    assert out.command.linear_x_mps < 0.0  # backs away from what is ahead
    # told to stand still (waiting): never a recovery
    rec = Recovery()
    for i in range(1200):
        assert rec.update(i * DT, DriveCommand(i * DT, 0.0, 0.0), 0.0, pose).state == RecoveryState.NOMINAL
    # progress (0.1 m every 10 s) keeps it nominal
    rec = Recovery()
    for i in range(1200):
        t = i * DT
        p = Pose2D(1.0 + 0.1 * (i // 200), 1.0, 0.0)
        assert rec.update(t, DriveCommand(t, 0.03, 0.0), 0.0, p).state == RecoveryState.NOMINAL
