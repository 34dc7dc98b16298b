"""The executive's navigation on the rover's own stack: one ``PlannedNavigator`` per goal pose (pure).

The executive's ``_GoTo`` asks its ``follower_factory`` for a ``Follower`` per goal; ``NavigationPort.follower``
returns one that plans on the terrain costmap (depth frames -> elevation map + hazard votes -> costmap, built by
the caller at the planning rate) and follows, guards and recovers with ``autonomy.runtime.navigator``.

State shared by the caller and the followers (``NavigationPort``)::

    estimate, v_meas   this tick's pose estimate and measured forward speed (``observe``, every tick first)
    costmap            the latest terrain costmap (``update_costmap``, planning rate), handed to the active
                       navigator (its path checked or replanned) and to the port's own collision monitor
    active             the navigator of the running ``_GoTo`` (a new one per goal: ``Follower.set_waypoints``)

Per tick::

    port.observe(estimate, v_meas, p)
    drive = executive.step(...)          a _GoTo steps ``active`` (PlannedNavigator.step: regulated pursuit,
                                         recovery); the dig, dump and back-off moves are the executive's own
    drive = port.guard(drive, pose, t)   navigating this tick: the navigator's guard (collision monitor + the
                                         bucket's swept outline in turns); otherwise the port's monitor on
                                         the costmap's lethal cells outside the ``dig_zones`` (the excavation
                                         zone's soil is what the bucket is meant to cut: the map sees the
                                         pits and spoil there as steps, and the monitor would stop every dig)

Control point: with a load in the bucket the rover's turns in place pivot ahead of base_link
(``autonomy.estimation.odometry.TurnPivot``: up to the front axle, 0.24 m, with a full bucket), and base_link
swings sideways in every turn. That pivot point P = base_link + p x_base moves like a unicycle's centre (its
velocity is (v, 0) in the body frame), so each navigator works on P: the pose it sees, its goal (the goal pose's
P: base_link ends on the goal with the goal's heading) and its outline (base_link's, shifted back by p) are all
P's; p (``observe``'s ``pivot_x_m``) is fixed for a navigator at its start (the load does not change while it
drives). The collision monitor's circle stays on base_link. Without it a loaded rover turning at a goal was
moved off it by the turn, drove back, turned again, and orbited the goal.

A navigator that fails (no path for its timeout, or recovery exhausted) is replaced by a fresh one for the
goal after ``retry_after_s``, the goal moved ``goal_shift_m`` further back along its heading at each failure
(up to ``max_goal_shift_m``): a dump stand beside the growing berm, or a dig stand beside the last cut, can
sit where the rover's outline no longer fits (goal blocked); a stand a little further back still reaches the
pile (the dump lands 1 m ahead) or the strip (the dig drives forward to it). The executive's own
``nav_timeout_s`` bounds the whole approach.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from autonomy.mission.site_zones import Box
from autonomy.msgs import DriveCommand, NavigationStatus, Pose2D, PoseEstimate, WallLine, Waypoint
from autonomy.navigation.collision_monitor import CollisionMonitor, MonitorAction
from autonomy.navigation.costmap import HAZARD_BLOCKED, HAZARD_FREE, INSCRIBED, LETHAL, Costmap, GridSpec
from autonomy.navigation.lattice import LatticePlanner
from autonomy.runtime.navigator import NavigatorParams, PlannedNavigator
from autonomy.runtime.terrain import TerrainModel, TerrainParams

# The construction run's planner: None = the navigator's default, the oriented planner (heading-aware, with the
# rover's outline and its bucket). With the 0.68 m rover, the sites' 0.9 m corridor and the map-clear recovery
# (2026-11-24, fourth session, UCF seeds 1-4, one run each): oriented 86,077 / 11,791 / 85,851 / 86,171 cm3 (6, 1,
# 6, 6 cycles; contacts 7, 0, 0, 12); "circular" (2-D A* at a 0.36 m inscribed radius, the bucket ignored)
# 13,631 / 28,419 / 69,983 / 10,709 cm3 (1, 2, 5, 1 cycles; contacts 1, 1, 0, 4).
CONSTRUCTION_PLANNER: str | None = None
CONSTRUCTION_INSCRIBED_RADIUS_M = 0.36  # the circular planner's: the rover's half-width over its wheels and 2 cm


def construction_terrain_params(inscribed_radius_m: float | None = None) -> TerrainParams:
    """The berm build's terrain model: the defaults with depth fused out to 4 m and the driven ground's map seams
    cleared 0.45 m a side (the crossing's 3 m / 0.32 m cost the build cycles: UCF seed 2 made 1 cycle at 3 m
    against 3 at 4 m, and 1 at 0.32 m), its hazard votes (rocks) only 0.32 m a side, inside the wheels, and the
    costmap's inscribed radius at ``inscribed_radius_m`` when given (the circular planner:
    ``CONSTRUCTION_INSCRIBED_RADIUS_M``; its bucket sweep in turns is checked by the navigator's guard)."""
    base = replace(
        TerrainParams(),
        map_max_range_m=4.0,
        driven_box_m=(-0.40, 0.40, 0.45),
        driven_hazard_half_width_m=0.32,
    )
    if inscribed_radius_m is None:
        return base
    return replace(base, costmap=replace(base.costmap, inscribed_radius_m=inscribed_radius_m))


def construction_navigator_params(
    max_speed_mps: float = 0.3, planner: str | None = CONSTRUCTION_PLANNER
) -> NavigatorParams:
    """The navigator's defaults with the executive's speed limit and ``planner`` (None: the navigator's
    default). Its goal tolerances stay its own: the goal heading is planned with the rover's outline (the
    oriented planner) and a looser position tolerance than its ``leg_tolerance_m`` made an intermediate
    vertex count as the goal."""
    base = NavigatorParams()
    # no path for 8 s (16 costmaps) fails the navigator: ``NavigationPort`` then retries with the goal moved back
    # no wall views: measured on UCF seeds 1-3 (fifth session), stopping to face a wall at each goal's approach and
    # on the way cost cycles (seed 1: 0-57,553 cm3 with them, 70,187 without; the walls still correct the
    # estimator), and the executive's own checkpoints relocalize after the dig
    out = replace(
        base,
        # the last cm to a dig or dump stand along its heading (``RegulatedPursuitParams.final_approach_m``):
        # steering at the goal point from a few cm away turned the rover back and forth at the dig stand for
        # 60-150 s (UCF seed 1, eleventh session: a cycle aborted)
        pursuit=replace(base.pursuit, max_speed_mps=max_speed_mps, final_approach_m=0.25),
        no_path_timeout_s=8.0,
        max_map_clears=0,  # the NavigationPort clears the map itself after a failed navigation
        wall_views=False,
        # a goal whose outline overlaps the map's obstacles is moved by the NavigationPort (``_free_goal``) or
        # fails and is retried moved back, instead of a 2-D plan of the rover's centre through the whole site:
        # that plan kept the costmap's inflated rings around the craters, which close the obstacle zone's
        # passages (UCF seeds 9 / 5, eighth session: 0 / 41,805 cm3 with it, 40,599 / 80,689 without)
        circular_fallback=False,
    )
    return out if planner is None else replace(out, planner=planner)


def _box_mask(grid: GridSpec, boxes: Sequence[Box], inside: bool = True) -> npt.NDArray[np.bool_]:
    xx = grid.origin_x_m + (np.arange(grid.cols) + 0.5) * grid.resolution_m
    yy = grid.origin_y_m + (np.arange(grid.rows) + 0.5) * grid.resolution_m
    mask = np.zeros(grid.shape, dtype=bool)
    for b in boxes:
        mask |= ((yy >= b.y_min_m) & (yy <= b.y_max_m))[:, None] & ((xx >= b.x_min_m) & (xx <= b.x_max_m))[None, :]
    return mask


def construction_costmap(
    terrain: TerrainModel,
    site: Box,
    keep_out: Sequence[Box] = (),
    dig_zones: Sequence[Box] = (),
    obstacle_zones: Sequence[Box] | None = None,
) -> Costmap:
    """``TerrainModel.costmap`` with the ``dig_zones`` drivable: inside them the slope and step layers read
    flat and the hazard votes free. The rover cuts 0.2 m deep strips there and drives along them; the
    terrain model rightly reads a cut's edge as a step, which closed the stand of the next strip beside it.
    No rock is ever drawn in an excavation zone (``sim.sites``: the obstacle zone only); the walls
    (everything outside ``site``) and ``keep_out`` stay lethal, and the band inside the walls that only
    shows the wall's own face is cleared as ``TerrainModel.costmap`` clears it.

    The fused map's slope and steps block (a step over the costmap's 0.10 m) inside ``obstacle_zones`` (None:
    nowhere); elsewhere they are graded as ``TerrainModel.costmap`` grades them (``TerrainModel.graded``:
    costly, and lethal only from ``map_lethal_step_m``), and the hazard votes block. Map drift leaves false
    10-25 cm steps all over (UCF build, tenth session: seeds 7 and 9 had 73-738 such cells beyond the rocks,
    craters and berm of the obstacle and construction zones), which closed dump stands and the way back; in
    the obstacle zone the map's steps still back the votes up at the rocks (15-25 cm): grading them there too
    gave 17 contacts on 10 seeds.

    Proposed for ``TerrainModel`` (the navigation helper's file): a ``drivable_zones`` option doing the same."""
    grid = terrain.grid()
    slope, step, hazard = terrain.layers()
    soft = _box_mask(grid, dig_zones)
    near_edge = terrain.near_site_edge(grid)  # the walls' own face (``TerrainParams.site_edge_clear_m``)
    if near_edge is not None:
        soft = soft | near_edge
    slope = np.where(soft & np.isfinite(slope), 0.0, slope)
    step = np.where(soft & np.isfinite(step), 0.0, step)
    hazard = np.where(soft, HAZARD_FREE, hazard)
    outside = ~_box_mask(
        grid, (Box(site.x_min_m + 1e-6, site.y_min_m + 1e-6, site.x_max_m - 1e-6, site.y_max_m - 1e-6),)
    )
    hazard = np.where(outside, HAZARD_BLOCKED, hazard).astype(np.uint8)
    g_slope, g_step = terrain.graded(slope, step)
    if obstacle_zones is None:
        slope, step = g_slope, g_step
    else:  # the map's slopes and low steps block inside the obstacle zones, and are costly elsewhere
        rocky = _box_mask(grid, obstacle_zones)
        slope, step = np.where(rocky, slope, g_slope), np.where(rocky, step, g_step)
    return Costmap.from_layers(
        grid, terrain.params.costmap, slope_deg=slope, step_m=step, hazard=hazard, keep_out_boxes=tuple(keep_out)
    )


@dataclass(slots=True)
class NavigationStats:
    goals: int = 0
    plans: int = 0
    plan_failures: int = 0
    recoveries: int = 0
    navigator_failures: int = 0
    monitor_stops: int = 0
    unblocks: int = 0
    goals_moved: int = 0
    map_clears: int = 0
    wall_reloc_stops: int = 0  # relocalization stops that faced a known wall (``NavigatorParams.reloc_wall_*``)
    last_error: str = ""
    paths: list[tuple[float, tuple[tuple[float, float], ...]]] = field(default_factory=list)


class NavigationPort:
    """The shared state of the executive's planned navigation (module docstring)."""

    def __init__(
        self,
        params: NavigatorParams | None = None,
        dig_zones: Sequence[Box] = (),
        retry_after_s: float = 2.0,
        goal_shift_m: float = 0.1,
        max_goal_shift_m: float = 0.4,
        record_paths: bool = True,
        unblock_after_s: float = 3.0,
        creep_mps: float = 0.05,
        escape_hold_s: float = 2.0,
        terrain: TerrainModel | None = None,
        clear_keep_radius_m: float = 1.5,
        clear_every_s: float = 60.0,
        walls: Sequence[WallLine] = (),
    ) -> None:
        self.params = params or construction_navigator_params()
        self.walls = tuple(walls)  # the arena's known walls: each goal's navigator may stop to look at one
        self.dig_zones = tuple(dig_zones)
        self.retry_after_s = float(retry_after_s)
        self.goal_shift_m = float(goal_shift_m)
        self.max_goal_shift_m = float(max_goal_shift_m)
        self.record_paths = record_paths
        self.unblock_after_s = float(unblock_after_s)
        self.creep_mps = float(creep_mps)
        self.escape_hold_s = float(escape_hold_s)
        # a failed navigation (no path for no_path_timeout_s, or stuck) forgets ``terrain``'s map beyond
        # ``clear_keep_radius_m`` of the rover, at most once per ``clear_every_s`` (None: never)
        self.terrain = terrain
        self.clear_keep_radius_m = float(clear_keep_radius_m)
        self.clear_every_s = float(clear_every_s)
        self._cleared_at: float | None = None
        self._blocked_since: float | None = None
        self._escape: tuple[tuple[float, float], float] | None = None
        self.estimate: PoseEstimate | None = None
        self.measured_speed_mps = 0.0
        self.pivot_x_m = 0.0  # where turns in place pivot now (m ahead of base_link; module docstring)
        self.costmap: Costmap | None = None
        self.active: _PlannedFollower | None = None
        self.monitor = CollisionMonitor(self.params.monitor)
        self.stats = NavigationStats()
        self._stepped_s: float | None = None
        self._dig_mask_for: GridSpec | None = None
        self._dig_mask: npt.NDArray[np.bool_] | None = None

    def clear_map(self, stamp_s: float, pose: Pose2D) -> bool:
        """After a failed navigation: forget the terrain map beyond ``clear_keep_radius_m`` (rate-limited).
        Measured on the UCF berm build: localization error of 0.2-0.4 m smears old depth frames into false
        steps until the obstacle zone or a dump stand reads as blocked and every later plan fails; fresh frames
        (depth to 4 m, 3 Hz) rebuild the map ahead as the rover drives, and the collision monitor still guards."""
        if self.terrain is None:
            return False
        if self._cleared_at is not None and stamp_s - self._cleared_at < self.clear_every_s:
            return False
        self._cleared_at = stamp_s
        self.terrain.clear_except_around(pose, self.clear_keep_radius_m)
        self.stats.map_clears += 1
        return True

    # -- inputs --------------------------------------------------------------------------------------

    def observe(self, estimate: PoseEstimate, measured_speed_mps: float, pivot_x_m: float = 0.0) -> None:
        """This tick's estimate, measured speed and turn pivot (m ahead of base_link; the pipeline's
        ``turn_pivot_x_m``), before ``Executive.step``."""
        if not math.isfinite(pivot_x_m):
            raise ValueError(f"NavigationPort.observe: pivot_x_m must be finite, got {pivot_x_m}")
        self.estimate = estimate
        self.measured_speed_mps = float(measured_speed_mps)
        self.pivot_x_m = float(pivot_x_m)

    def _dig_zone_mask(self, cm: Costmap) -> npt.NDArray[np.bool_]:
        if self._dig_mask is None or self._dig_mask_for != cm.grid:
            self._dig_mask, self._dig_mask_for = _box_mask(cm.grid, self.dig_zones), cm.grid
        return self._dig_mask

    def update_costmap(self, cm: Costmap, pose: Pose2D) -> None:
        """A new terrain costmap (planning rate): to the active navigator and the port's monitor."""
        self.costmap = cm
        self.monitor.set_obstacles(cm.grid, (cm.cost == LETHAL) & ~self._dig_zone_mask(cm))
        if self.active is not None:
            self.active.on_costmap(cm, pose)

    # -- the executive's side --------------------------------------------------------------------------

    def follower(self) -> _PlannedFollower:
        """A ``Follower`` for one ``_GoTo`` (the executive's ``follower_factory``)."""
        return _PlannedFollower(self)

    # -- the limit stage -------------------------------------------------------------------------------

    def navigating(self, stamp_s: float) -> bool:
        return self._stepped_s is not None and self._stepped_s == stamp_s

    def _check(self, cmd: DriveCommand, pose: Pose2D) -> tuple[DriveCommand, str]:
        act = self.active
        if self.navigating(cmd.stamp_s) and act is not None and act.nav is not None and act.nav.costmap is not None:
            res = act.nav.guard(cmd, act.control_pose(pose), monitor_pose=pose)  # the circle stays on base_link
        elif self.costmap is not None:
            res = self.monitor.filter(cmd, pose)
        else:
            return cmd, ""
        if res.action is MonitorAction.STOP and cmd.linear_x_mps != 0.0:
            return DriveCommand(cmd.stamp_s, 0.0, res.command.angular_z_radps), "collision monitor"
        return res.command, ""

    def guard(self, cmd: DriveCommand, pose: Pose2D) -> tuple[DriveCommand, str]:
        """The collision check of this tick's command (module docstring): (command, "" or the reason).

        Deadlock breaker: the navigator's turn in place can be replaced by a back-off (the bucket's sweep would
        come too close) that the monitor then stops (an obstacle behind): nothing moves and the navigator, which
        commanded no forward speed, never counts itself stuck. After ``unblock_after_s`` of a blocked command the
        guard sends a slow creep back (checked the same way) and holds it for ``escape_hold_s`` while it stays
        clear; the navigator then plans again from where the rover stands. Ticks where the
        navigator asks for nothing (waiting for a plan) neither count as blocked nor reset the wait."""
        out, why = self._check(cmd, pose)
        t = cmd.stamp_s
        if self._escape is not None:  # an escape move in progress: hold it while it stays clear
            (v_e, w_e), until = self._escape
            alt, alt_why = self._check(DriveCommand(t, v_e, w_e), pose)
            if t < until and not alt_why and (abs(alt.linear_x_mps) > 1e-6 or abs(alt.angular_z_radps) > 1e-6):
                return alt, ""
            self._escape = None
            self._blocked_since = t
        wanted = abs(cmd.linear_x_mps) > 1e-6 or abs(cmd.angular_z_radps) > 1e-6
        moving = abs(out.linear_x_mps) > 1e-6 or abs(out.angular_z_radps) > 1e-6
        if moving:
            self._blocked_since = None
            return out, why
        if not wanted:  # the navigator asks for nothing this tick (waiting for a plan): not a block
            return out, why
        if self._blocked_since is None:
            self._blocked_since = t
        if t - self._blocked_since < self.unblock_after_s:
            if why:
                self.stats.monitor_stops += 1
            return out, why or "collision monitor"
        # only a slow creep back: a turn in place sweeps the bucket (0.73 m ahead) and a creep forward pushes
        # it, neither covered by the monitor's circle (tried: 4 -> 8 rock contacts on UCF seed 1)
        for v_try, w_try in ((-self.creep_mps, 0.0),):
            alt, alt_why = self._check(DriveCommand(t, v_try, w_try), pose)
            if not alt_why and (abs(alt.linear_x_mps) > 1e-6 or abs(alt.angular_z_radps) > 1e-6):
                self.stats.unblocks += 1
                self._escape = ((v_try, w_try), t + self.escape_hold_s)
                return alt, ""
        self.stats.monitor_stops += 1
        return out, "collision monitor (blocked)"

    def current_path(self) -> tuple[tuple[float, float], ...]:
        act = self.active
        if act is None or act.nav is None or act.nav.path is None:
            return ()
        pts = np.asarray(act.nav.path.points_xy_m, dtype=np.float64)
        return tuple((float(x), float(y)) for x, y in pts)


class _PlannedFollower:
    """``Follower`` over a ``PlannedNavigator`` to the last waypoint (via points are the planner's job)."""

    def __init__(self, port: NavigationPort) -> None:
        self.port = port
        self.nav: PlannedNavigator | None = None
        self.goal = Pose2D(0.0, 0.0, 0.0)
        self._failed_at: float | None = None
        self.asked = self.goal  # the executive's goal; ``goal`` is it moved back after failures
        self._shift = 0.0
        self._no_path_since: float | None = None
        self._plans_seen = 0
        self.pivot_x_m = 0.0  # this navigator's control point (module docstring), fixed at its start

    def control_pose(self, pose: Pose2D) -> Pose2D:
        """``pose`` (base_link) moved to this navigator's control point, ``pivot_x_m`` ahead."""
        return pose.ahead(self.pivot_x_m)

    def _free_goal(self, cm: Costmap, lattice: LatticePlanner) -> Pose2D:
        """``goal``, or where it is blocked on ``cm`` (its cell: the rover's centre cannot stand there, the
        inscribed radius of a rock, the berm or a wall; or the rover's outline there, bucket included, overlaps
        a lethal cell: ``lattice``, this navigator's, at its control point), the nearest free pose among offsets
        along its heading (back first) and across it, up to ``max_goal_shift_m``; the goal itself when none is."""
        g = self.goal

        def free(x: float, y: float) -> bool:
            cp = self.control_pose(Pose2D(x, y, g.yaw_rad))
            return cm.cost_at(x, y) < INSCRIBED and lattice.pose_free(cm, cp.x_m, cp.y_m, cp.yaw_rad)

        if free(g.x_m, g.y_m):
            return g
        c, s_ = math.cos(g.yaw_rad), math.sin(g.yaw_rad)
        step = self.port.goal_shift_m
        n = max(1, round(self.port.max_goal_shift_m / step))
        for k in range(1, n + 1):
            d = k * step
            for along, across in ((-d, 0.0), (d, 0.0), (0.0, d), (0.0, -d), (-d, d), (-d, -d)):
                x, y = g.x_m + along * c - across * s_, g.y_m + along * s_ + across * c
                if free(x, y):
                    self.port.stats.goals_moved += 1
                    return Pose2D(x, y, g.yaw_rad)
        return g

    def _new_navigator(self, pose: Pose2D) -> None:
        self._fold_stats()
        self.pivot_x_m = p = self.port.pivot_x_m
        params = self.port.params
        if p != 0.0:
            params = replace(params, outline_m=tuple((x - p, y) for x, y in params.outline_m))
        self.nav = PlannedNavigator([self.control_pose(self.goal)], params, walls=self.port.walls)
        if self.port.costmap is not None:
            moved = self._free_goal(self.port.costmap, self.nav.lattice)
            if moved != self.goal:
                self.goal = moved
                self.nav = PlannedNavigator([self.control_pose(moved)], params, walls=self.port.walls)
        self._plans_seen = 0
        self._no_path_since = None
        if self.port.costmap is not None:
            self.nav.update_costmap(self.port.costmap, self.control_pose(pose))
            self._record_path()

    def _fold_stats(self) -> None:
        nav = self.nav
        if nav is None:
            return
        st = self.port.stats
        st.plan_failures += nav.plan_failures
        st.recoveries += nav.recoveries
        st.wall_reloc_stops += nav.wall_reloc_stops
        nav.plan_failures = nav.recoveries = nav.wall_reloc_stops = 0

    def _record_path(self) -> None:
        nav = self.nav
        if nav is None or nav.plans == self._plans_seen:
            return
        self.port.stats.plans += nav.plans - self._plans_seen
        self._plans_seen = nav.plans
        if self.port.record_paths and nav.path is not None:
            pts = np.asarray(nav.path.points_xy_m, dtype=np.float64)
            t = self.port.estimate.stamp_s if self.port.estimate is not None else 0.0
            self.port.stats.paths.append((t, tuple((round(float(x), 3), round(float(y), 3)) for x, y in pts)))

    def set_waypoints(self, waypoints: Sequence[Waypoint], start: Pose2D | None = None) -> None:
        """``Follower`` API: to the last waypoint, arriving along the straight line's heading from ``start``."""
        if not waypoints:
            raise ValueError("_PlannedFollower.set_waypoints: no waypoint")
        last = waypoints[-1]
        pose = start if start is not None else (self.port.estimate.pose if self.port.estimate else None)
        yaw = math.atan2(last.y_m - pose.y_m, last.x_m - pose.x_m) if pose is not None else 0.0
        self.set_goal_pose(Pose2D(last.x_m, last.y_m, yaw), pose if pose is not None else Pose2D(0.0, 0.0, 0.0))

    def set_goal_pose(self, goal: Pose2D, start: Pose2D) -> None:
        """``GoalPoseFollower`` API: plan to ``goal`` (position and heading) from ``start``."""
        self.goal = self.asked = goal
        self._shift = 0.0
        prev = self.port.active
        if prev is not None and prev is not self:
            prev._fold_stats()
        self.port.active = self
        self.port.stats.goals += 1
        self._new_navigator(start)

    def on_costmap(self, cm: Costmap, pose: Pose2D) -> None:
        if self.nav is not None:
            self.nav.update_costmap(cm, self.control_pose(pose))
            self._record_path()

    def update(self, stamp_s: float, pose: Pose2D) -> tuple[DriveCommand, NavigationStatus]:
        port = self.port
        nav = self.nav
        if nav is None:
            raise ValueError("_PlannedFollower.update before set_waypoints")
        est = port.estimate
        if est is None:
            raise ValueError("_PlannedFollower.update: NavigationPort.observe was not called this tick")
        cp = self.control_pose(pose)
        if est.pose != cp:
            est = replace(est, pose=cp)
        port.active = self
        port._stepped_s = stamp_s
        if nav.failed:
            if self._failed_at is None:
                self._failed_at = stamp_s
                port.stats.navigator_failures += 1
                port.stats.last_error = nav.last_error
                port.clear_map(stamp_s, pose)
            if stamp_s - self._failed_at >= port.retry_after_s:
                self._failed_at = None
                self._shift = min(self._shift + port.goal_shift_m, port.max_goal_shift_m)
                g = self.asked
                c, s_ = math.cos(g.yaw_rad), math.sin(g.yaw_rad)
                self.goal = Pose2D(g.x_m - self._shift * c, g.y_m - self._shift * s_, g.yaw_rad)
                self._new_navigator(pose)
            d = pose.distance_to_m(self.goal.x_m, self.goal.y_m)
            return DriveCommand.stop(stamp_s), NavigationStatus(stamp_s, 0, 1, d)
        if nav.path is None and nav.costmap is not None and not nav.done:
            # no path on the last costmap: wait for the next one (``update_costmap`` plans again) instead of
            # a failing search every tick; past ``no_path_timeout_s`` the navigator counts as failed
            if self._no_path_since is None:
                self._no_path_since = stamp_s
            elif stamp_s - self._no_path_since > port.params.no_path_timeout_s:
                nav.failed = True
            return DriveCommand.stop(stamp_s), nav.status(stamp_s)
        self._no_path_since = None
        cmd = nav.step(stamp_s, est, port.measured_speed_mps)
        self._record_path()
        return cmd, nav.status(stamp_s)
