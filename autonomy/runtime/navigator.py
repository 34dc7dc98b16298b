"""Planned navigation: goal poses in turn, planned on the terrain costmap, followed, guarded and recovered.

State: the goal index k, the current ``Path`` (or None; with the oriented planner also its ``OrientedPath``
and the leg being driven), the latest costmap; the rover pose p comes from the estimator each tick.

Planners (``NavigatorParams.planner``):

- "oriented" (default): ``autonomy.navigation.lattice`` plans over (heading, x, y) with the rover's outline
  (bucket, wheels, rear): straight legs joined by turns in place, each checked with the outline swept over
  it, forward or backward. The follower drives one leg at a time (a two-point ``Path``; the last carries the
  goal heading), so it cannot cut the corner the plan went round: the next leg starts when the rover is
  within ``leg_tolerance_m`` of the vertex (or has passed it by less than ``leg_pass_m``), and the pursuit
  turns in place towards it (``rotate_enter_rad``).
- "circular": the 2-D ``Planner`` on the costmap's inscribed radius, one smoothed polyline.

At the planning rate (``update_costmap``)::

    cm    <- the terrain costmap (elevation + hazards + keep-out)
    monitor.set_obstacles(cm.grid, cm.cost == LETHAL)
    path  <- kept while the rest of it is still clear on cm (oriented: ``LatticePlanner.legs_free`` from the
             current leg and the rover's position; circular: ``Planner.is_valid``), else planned again from p

Every control tick (``step``)::

    leg   <- the next leg when the current vertex is reached (oriented)
    cmd   <- RegulatedPurePursuit.step(p, leg, t, costmap=cm)         (precise approach to the goal pose)
    rec   <- Recovery.update(t, cmd, measured speed, p, cross-track)   (stuck: back off, rotate, replan)
    cmd   <- rec.command; a REPLAN plans again from p
    goal k reached (follower DONE on the last leg) -> k + 1, planned at once on the last costmap

The collision monitor is applied by the pipeline's limit stage (``guard``), last, whatever the rest says.
Circular planner: when the start cell is blocked (the rover stands in an inflated cell) the plan starts from
the nearest drivable cell within ``escape_radius_m``, and the path is prefixed with the rover's position.
Oriented planner: a start pose whose outline the map shows touching an obstacle may move through colliding
states within ``LatticeParams.escape_radius_m`` of it (at a cost) to get clear.
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
from autonomy.navigation.lattice import ROVER_OUTLINE_M, LatticeParams, LatticePlanner, OrientedPath
from autonomy.navigation.planner import NoPathError, NoPathReason, Path, Planner
from autonomy.navigation.recovery import Recovery, RecoveryParams, RecoveryState
from autonomy.navigation.regulated_pursuit import FollowPhase, RegulatedPurePursuit, RegulatedPursuitParams


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
    outline_m: tuple[tuple[float, float], ...] = ((0.73, 0.0), *ROVER_OUTLINE_M)
    sweep_horizon_s: float = 0.6
    sweep_margin_m: float = 0.03
    sweep_backoff_mps: float = 0.06
    # "oriented": plan over (heading, x, y) with the outline (autonomy.navigation.lattice) and drive the plan
    # leg by leg (straight legs, turns in place at the vertices); "circular": the 2-D planner on the
    # costmap's inscribed radius, one smoothed polyline
    planner: str = "oriented"
    lattice: LatticeParams = field(default_factory=LatticeParams)
    # an intermediate vertex counts as reached within this distance (the last goal: the follower's
    # xy_tolerance_m), or when the rover has passed it (along the leg) by less than leg_pass_m off the leg
    leg_tolerance_m: float = 0.04
    leg_pass_m: float = 0.12
    # oriented mode: a goal pose whose outline overlaps an obstacle on the map (a dump pose with the bucket over
    # the berm) is planned by the 2-D planner instead (the rover's centre only, as before); False: no path
    circular_fallback: bool = True

    def __post_init__(self) -> None:
        if self.planner not in ("oriented", "circular"):
            raise ValueError(f"NavigatorParams.planner: must be 'oriented' or 'circular', got {self.planner!r}")
        for name in ("leg_tolerance_m", "leg_pass_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"NavigatorParams.{name}: must be finite and > 0, got {v}")


class PlannedNavigator:
    """Drives to ``goals`` (poses; a NaN yaw means any heading) one after the other (module docstring)."""

    def __init__(self, goals: Sequence[Pose2D], params: NavigatorParams | None = None) -> None:
        self.params = params or NavigatorParams()
        self.goals = tuple(goals)
        self.planner = Planner()
        self.lattice = LatticePlanner(replace(self.params.lattice, outline_m=self.params.outline_m))
        self.oriented: OrientedPath | None = None  # the lattice plan (oriented mode)
        self.leg = 0  # the leg of ``oriented`` being driven
        self._leg_path: Path | None = None
        self.reapproaches = 0  # final approaches started again after the rover left the goal position
        self.circular_fallbacks = 0  # plans made by the 2-D planner because the goal pose's outline collides
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
        if self.params.planner == "oriented":
            self._plan_oriented(cm, pose)
        else:
            self._plan_circular(cm, pose)

    def _plan_circular(self, cm: Costmap, pose: Pose2D) -> None:
        goal = self._goal()
        self.oriented = None
        start = self._start_xy(cm, pose)
        try:
            path = self.planner.plan(cm, start, (goal.x_m, goal.y_m))
        except NoPathError as e:
            # never keep following a path the map has invalidated: stop and plan again at the next costmap
            self.path = None
            self._leg_path = None
            self.plan_failures += 1
            self.last_error = str(e)
            return
        if start != (pose.x_m, pose.y_m):  # escaping an inflated cell: start from where the rover is
            pts = np.vstack([[pose.x_m, pose.y_m], path.points_xy_m])
            path = replace(path, points_xy_m=pts)
        yaw = None if math.isnan(goal.yaw_rad) else goal.yaw_rad
        self.path = path.with_goal(goal_yaw_rad=yaw)
        self._leg_path = self.path
        self.plans += 1
        self.last_error = ""

    def _plan_oriented(self, cm: Costmap, pose: Pose2D) -> None:
        goal = self._goal()
        yaw = None if math.isnan(goal.yaw_rad) else goal.yaw_rad
        try:
            plan = self.lattice.plan(cm, (pose.x_m, pose.y_m, pose.yaw_rad), (goal.x_m, goal.y_m), yaw)
        except NoPathError as e:
            if e.reason == NoPathReason.GOAL_BLOCKED and self.params.circular_fallback:
                # the outline at the goal pose overlaps the map's obstacles (e.g. a dump pose whose bucket
                # reaches over the berm): the previous behaviour, the 2-D plan of the rover's centre
                self.circular_fallbacks += 1
                self._plan_circular(cm, pose)
                return
            self.path = None
            self.oriented = None
            self._leg_path = None
            self.plan_failures += 1
            self.last_error = str(e)
            return
        self.oriented = plan
        self.path = plan.path
        self.leg = 0
        self._leg_path = plan.leg_path(0)
        self.plans += 1
        self.last_error = ""

    def _path_valid(self, cm: Costmap, pose: Pose2D) -> bool:
        if self.path is None:
            return False
        if self.oriented is not None:
            return self.lattice.legs_free(cm, self.oriented, self.leg, (pose.x_m, pose.y_m))
        return self.planner.is_valid(cm, self.path)

    def update_costmap(self, cm: Costmap, pose: Pose2D) -> None:
        """A new costmap (planning rate): the monitor's obstacles, and the path checked or planned again."""
        self.costmap = cm
        self.monitor.set_obstacles(cm.grid, cm.cost == LETHAL)
        if self.done:
            return
        if not self._path_valid(cm, pose):
            self._plan(pose)

    # -- control -----------------------------------------------------------------------------------------

    def _advance_leg(self, pose: Pose2D) -> bool:
        """Oriented mode: move on to the next leg when the current intermediate vertex is reached (within
        ``leg_tolerance_m``, or passed along the leg by less than ``leg_pass_m`` off it). True if moved on."""
        plan = self.oriented
        if plan is None or self.leg >= plan.legs - 1:
            return False
        a = plan.vertices_xy_m[self.leg]
        b = plan.vertices_xy_m[self.leg + 1]
        d = math.hypot(pose.x_m - b[0], pose.y_m - b[1])
        seg = b - a
        length = float(math.hypot(seg[0], seg[1]))
        along = ((pose.x_m - a[0]) * seg[0] + (pose.y_m - a[1]) * seg[1]) / max(length, 1e-9)
        if d <= self.params.leg_tolerance_m or (along >= length and d <= self.params.leg_pass_m):
            self.leg += 1
            self._leg_path = plan.leg_path(self.leg)
            return True
        return False

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
        self._advance_leg(pose)
        before = self.follower.status.phase
        cmd = self.follower.step(estimate, self._leg_path, stamp_s, costmap=self.costmap)
        if self.follower.status.done and self._advance_leg(pose):
            cmd = self.follower.step(estimate, self._leg_path, stamp_s, costmap=self.costmap)
        if (
            self.oriented is not None
            and before in (FollowPhase.ALIGN, FollowPhase.DONE)
            and self.follower.status.phase in (FollowPhase.TRACK, FollowPhase.ROTATE)
        ):
            # the turn at the goal (or a localization update) moved the rover off the goal position: approach
            # it again along the goal heading (a new plan ending with the approach leg), not by turning
            # towards a point a few cm away and turning back at it (which moved it off again, for minutes)
            self.reapproaches += 1
            self._plan(pose)
            if self.path is None:
                return DriveCommand.stop(stamp_s)
            cmd = self.follower.step(estimate, self._leg_path, stamp_s, costmap=self.costmap)
        if self.follower.status.done:
            self.reached = (*self.reached, self.index)
            self.index += 1
            self.path = None
            self.oriented = None
            self._leg_path = None
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
