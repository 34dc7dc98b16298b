"""Planned navigation: goal poses in turn, planned on the terrain costmap, followed, guarded and recovered.

State: the goal index k, the current ``Path`` (or None), the latest costmap; the rover pose p comes from
the estimator each tick.

At the planning rate (``update_costmap``)::

    cm    <- the terrain costmap (elevation + hazards + keep-out)
    monitor.set_obstacles(cm.grid, cm.cost == LETHAL)
    path  <- kept while every segment is still drivable on cm (``Planner.is_valid``), else planned again
             from p (the planner's own ``replan`` keeps the original start: after moving, plan from p)

Every control tick (``step``)::

    cmd   <- RegulatedPurePursuit.step(p, path, t, costmap=cm)        (precise approach to the goal pose)
    rec   <- Recovery.update(t, cmd, measured speed, p, cross-track)   (stuck: back off, rotate, replan)
    cmd   <- rec.command; a REPLAN plans again from p
    goal k reached (follower DONE) -> k + 1, planned at once on the last costmap

The collision monitor is applied by the pipeline's limit stage (``guard``), last, whatever the rest says.
When the start cell is blocked (the rover stands in an inflated cell) the plan starts from the nearest
drivable cell within ``escape_radius_m``, and the path is prefixed with the rover's position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from autonomy.msgs import DriveCommand, NavigationStatus, Pose2D, PoseEstimate
from autonomy.navigation.collision_monitor import (
    CollisionMonitor,
    CollisionMonitorParams,
    MonitorAction,
    MonitorResult,
)
from autonomy.navigation.costmap import LETHAL, Costmap
from autonomy.navigation.planner import NoPathError, Path, Planner
from autonomy.navigation.recovery import Recovery, RecoveryParams, RecoveryState
from autonomy.navigation.regulated_pursuit import RegulatedPurePursuit, RegulatedPursuitParams


@dataclass(frozen=True, slots=True)
class NavigatorParams:
    # turn in place past 25 deg of heading error: a skid-steer's odometry drifts on arcs far more than on lines
    # and in place (measured in the sim: 10 cm of lateral error over a 0.5 m arc at 0.3 rad/s, against 2 cm per
    # 1.2 m straight and 2 cm per half turn in place), but every turn in place sweeps the bucket (0.86 m from
    # base_link) around the rover: 10 deg gave more rock contacts (seed 1: 5 against 1)
    pursuit: RegulatedPursuitParams = field(
        default_factory=lambda: RegulatedPursuitParams(
            rotate_enter_rad=math.radians(25.0), rotate_exit_rad=math.radians(4.0), max_speed_mps=0.25
        )
    )
    # the monitor's circle stays inside the costmap's inscribed radius (0.45 m): it guards against what the map
    # did not show when the path was planned; at the inscribed radius it stopped the rover on every planned
    # passage between two obstacles (stuck -> recoveries -> abort)
    monitor: CollisionMonitorParams = field(
        default_factory=lambda: CollisionMonitorParams(footprint_radius_m=0.36, stop_margin_m=0.02, slow_margin_m=0.1)
    )
    # stuck below 2 cm/s while commanding at least 4 cm/s: the collision monitor slows the rover to a quarter of
    # its speed near obstacles, which the default 8 cm/s check took for being stuck
    recovery: RecoveryParams = field(default_factory=lambda: RecoveryParams(stuck_speed_mps=0.02, min_command_mps=0.04))
    escape_radius_m: float = 0.6
    no_path_timeout_s: float = 30.0  # no path to the goal for this long: the navigation fails
    # the rover's outline in base_link (x, y), m: the simulated rover's bucket (to 0.73 m ahead, 0.5 m wide), wheels
    # (spheres of 0.15 m at x = +-0.25, y = +-0.30) and rear. A turn in place sweeps it; the circular footprint
    # of the costmap and the monitor (0.45-0.48 m) does not cover the bucket.
    outline_m: tuple[tuple[float, float], ...] = (
        (0.73, 0.25),
        (0.73, 0.0),
        (0.73, -0.25),
        (0.58, 0.25),
        (0.58, -0.25),
        (0.25, 0.45),
        (0.25, -0.45),
        (-0.25, 0.45),
        (-0.25, -0.45),
        (-0.40, 0.22),
        (-0.40, -0.22),
    )
    sweep_horizon_s: float = 0.6
    sweep_margin_m: float = 0.03
    sweep_backoff_mps: float = 0.06


class PlannedNavigator:
    """Drives to ``goals`` (poses; a NaN yaw means any heading) one after the other (module docstring)."""

    def __init__(self, goals: Sequence[Pose2D], params: NavigatorParams | None = None) -> None:
        self.params = params or NavigatorParams()
        self.goals = tuple(goals)
        self.planner = Planner()
        self.follower = RegulatedPurePursuit(self.params.pursuit)
        self.monitor = CollisionMonitor(self.params.monitor)
        self.recovery = Recovery(self.params.recovery)
        self.costmap: Costmap | None = None
        self.path: Path | None = None
        self.index = 0
        self.reached: tuple[int, ...] = ()
        self.plans = 0
        self.plan_failures = 0
        self.recoveries = 0
        self.last_error = ""
        self.failed = False
        self._no_path_since_s: float | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.goals)

    def status(self, stamp_s: float) -> NavigationStatus:
        d = self.follower.status.distance_to_goal_m if self.path is not None else 0.0
        return NavigationStatus(stamp_s, self.index, len(self.goals), d, self.reached)

    # -- planning ----------------------------------------------------------------------------------------

    def _goal(self) -> Pose2D:
        return self.goals[self.index]

    def _start_xy(self, cm: Costmap, pose: Pose2D) -> tuple[float, float]:
        """The rover's position, or the nearest drivable cell centre within ``escape_radius_m``."""
        if cm.cost_at(pose.x_m, pose.y_m) < 253:
            return pose.x_m, pose.y_m
        g = cm.grid
        r0, c0 = g.world_to_cell(pose.x_m, pose.y_m)
        k = math.ceil(self.params.escape_radius_m / g.resolution_m)
        rs, re = max(0, r0 - k), min(g.rows, r0 + k + 1)
        cs, ce = max(0, c0 - k), min(g.cols, c0 + k + 1)
        if rs >= re or cs >= ce:
            return pose.x_m, pose.y_m
        win = cm.cost[rs:re, cs:ce]
        rr, cc = np.mgrid[rs:re, cs:ce]
        d2 = (rr - r0) ** 2 + (cc - c0) ** 2
        d2 = np.where(win < 253, d2, np.iinfo(np.int64).max)
        i = int(np.argmin(d2))
        if d2.flat[i] == np.iinfo(np.int64).max:
            return pose.x_m, pose.y_m
        return g.cell_to_world(float(rr.flat[i]), float(cc.flat[i]))

    def _plan(self, pose: Pose2D) -> None:
        cm = self.costmap
        if cm is None or self.done:
            return
        goal = self._goal()
        start = self._start_xy(cm, pose)
        try:
            path = self.planner.plan(cm, start, (goal.x_m, goal.y_m))
        except NoPathError as e:
            # never keep following a path the map has invalidated: stop and plan again at the next costmap
            self.path = None
            self.plan_failures += 1
            self.last_error = str(e)
            return
        if start != (pose.x_m, pose.y_m):  # escaping an inflated cell: start from where the rover is
            pts = np.vstack([[pose.x_m, pose.y_m], path.points_xy_m])
            path = replace(path, points_xy_m=pts)
        yaw = None if math.isnan(goal.yaw_rad) else goal.yaw_rad
        self.path = path.with_goal(goal_yaw_rad=yaw)
        self.plans += 1
        self.last_error = ""

    def update_costmap(self, cm: Costmap, pose: Pose2D) -> None:
        """A new costmap (planning rate): the monitor's obstacles, and the path checked or planned again."""
        self.costmap = cm
        self.monitor.set_obstacles(cm.grid, cm.cost == LETHAL)
        if self.done:
            return
        if self.path is None or not self.planner.is_valid(cm, self.path):
            self._plan(pose)

    # -- control -----------------------------------------------------------------------------------------

    def step(self, stamp_s: float, estimate: PoseEstimate, measured_speed_mps: float) -> DriveCommand:
        pose = estimate.pose
        if self.done or self.failed:
            return DriveCommand.stop(stamp_s)
        if self.path is None:
            self._plan(pose)
            if self.path is None:
                if self._no_path_since_s is None:
                    self._no_path_since_s = stamp_s
                elif self.costmap is not None and stamp_s - self._no_path_since_s > self.params.no_path_timeout_s:
                    self.failed = True
                return DriveCommand.stop(stamp_s)
        self._no_path_since_s = None
        cmd = self.follower.step(estimate, self.path, stamp_s, costmap=self.costmap)
        if self.follower.status.done:
            self.reached = (*self.reached, self.index)
            self.index += 1
            self.path = None
            self.recovery.reset()
            if not self.done:
                self._plan(pose)
            return DriveCommand.stop(stamp_s)
        rec = self.recovery.update(stamp_s, cmd, measured_speed_mps, pose, self.follower.status.cross_track_m)
        if rec.state == RecoveryState.FAILED:
            self.failed = True
            self.last_error = rec.reason
            return DriveCommand.stop(stamp_s)
        if rec.replan:
            self.recoveries += 1
            self._plan(pose)
        return rec.command

    def sweep_clearance_m(self, pose: Pose2D, yaw_rate_radps: float) -> tuple[float, float]:
        """(clearance now, least clearance over ``sweep_horizon_s``) of the rover's outline (m, to the nearest
        obstacle edge of the monitor's grid) turning in place at ``yaw_rate_radps``."""
        prm = self.params
        pts = np.asarray(prm.outline_m, dtype=np.float64)
        t = np.linspace(0.0, prm.sweep_horizon_s, 7)
        yaw = pose.yaw_rad + yaw_rate_radps * t
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        xs = pose.x_m + c * pts[None, :, 0] - s * pts[None, :, 1]
        ys = pose.y_m + s * pts[None, :, 0] + c * pts[None, :, 1]
        d = np.array(
            [
                [self.monitor.clearance_at(float(x), float(y)) for x, y in zip(rx, ry, strict=True)]
                for rx, ry in zip(xs, ys, strict=True)
            ]
        )
        return float(d[0].min()), float(d.min())

    def guard(self, cmd: DriveCommand, pose: Pose2D) -> MonitorResult:
        """The collision monitor on the final command (called by the pipeline's limit stage). A turn in place
        whose swept outline (the bucket) would come within ``sweep_margin_m`` of an obstacle is replaced by a
        slow straight back-off (itself checked by the monitor), unless the turn moves the outline away."""
        prm = self.params
        if abs(cmd.linear_x_mps) < 1e-6 and abs(cmd.angular_z_radps) > 1e-6:
            now, least = self.sweep_clearance_m(pose, cmd.angular_z_radps)
            if least < prm.sweep_margin_m and least < now - 1e-3:
                back = DriveCommand(cmd.stamp_s, -prm.sweep_backoff_mps, 0.0)
                res = self.monitor.filter(back, pose)
                return MonitorResult(res.command, MonitorAction.SLOW, 0.0, res.clearance_m)
        return self.monitor.filter(cmd, pose)
