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

Relocalization stop (only with ``landmarks``, the surveyed fiducials): a goal far from every tag (the nearest
facing one >= ``reloc_min_range_m``) is reached on dead reckoning alone. When the rover reaches the start of
its final approach leg (or, failing that, the goal) with a position sigma above ``reloc_sigma_m`` and no fix
for ``reloc_fix_age_s``, it turns in place (only where the outline's sweep is clear on the costmap) to look at
the tags (views offset from their centroid: the bucket hides what is dead ahead), waits for fixes (up to
``reloc_wait_s``), then plans the goal pose again from the corrected estimate (a re-approach)::

    turn   w = dir * clip(sqrt(max_yaw_accel |e|), min_rotate, max_yaw_rate),  e = wrap(view - yaw)
    wait   until fixes >= reloc_min_fixes and sigma <= reloc_done_sigma_m, or reloc_wait_s; a view with no
           fix for reloc_view_s -> the next view
    then   plan(pose -> goal), drive it; at most reloc_max_stops stops per goal

Wall view (only with ``walls``, the arena's known sides, and where no tag view applies): the same stop at the
start of the final approach leg when the position sigma exceeds ``reloc_wall_sigma_m``, looking straight at the
wall (within ``reloc_wall_max_range_m``) whose normal is closest to the covariance's worst axis; it ends at the
first wall fix. A wall ahead fixes only the distance to it and the heading, so the rover approaching the UCF
dump pose (facing the far wall) otherwise kept the few cm a turn in place had slid it sideways. Wall views have
their own budget per goal (``reloc_max_wall_stops``, apart from the tag stops): at the goal itself the rover looks
at a wall again while the sigma is still above ``reloc_wall_sigma_m``.

No path: for ``no_path_timeout_s`` the rover waits and replans; after ``map_clear_after_s`` of it (at most
``max_map_clears`` times per goal) it sets ``map_clear_requested``, and its owner forgets the terrain map beyond
``map_clear_keep_radius_m`` (the pipeline does; the berm build's ``NavigationPort`` clears after a failure instead).

Replanning: a new map that blocks a later leg of the oriented plan while the current leg is still clear lets the
rover finish the current leg and plan from its end (``finish_leg_first``).

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

from autonomy.msgs import DriveCommand, Landmark, NavigationStatus, Pose2D, PoseEstimate, WallLine, wrap_angle_rad
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
    # arcs tighter than 2 m radius are turned in place (the sim's skid-steer slides sideways on them: odometry
    # drift 11-60 cm/m, against 2 cm/m straight; UCF dump pose 10.4/11.9/20.3 cm -> 7.9/6.7/10.3 on seeds 3/6/2);
    # the final position within 2 cm of the estimate (3 cm left 5.3-5.4 cm in truth at the dig pose, seeds 2-3)
    pursuit: RegulatedPursuitParams = field(
        default_factory=lambda: RegulatedPursuitParams(
            rotate_enter_rad=math.radians(25.0),
            rotate_exit_rad=math.radians(4.0),
            max_speed_mps=0.25,
            max_track_curvature_per_m=0.5,
            xy_tolerance_m=0.02,
        )
    )
    # the monitor's circle stays inside the costmap's inscribed radius (0.38 m): it guards against what the map
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
    # no path for ``map_clear_after_s``: the navigator asks its owner to forget the terrain map beyond
    # ``map_clear_keep_radius_m`` (``map_clear_requested``; Nav2's ClearCostmapExceptRegion recovery), at most
    # ``max_map_clears`` times per goal, and the no-path timeout starts again. A frame fused while the rover
    # rocked on two diagonal wheels leaves a false ridge of steps across a passage (UCF crossing seed 2: no path
    # between the boulders while the sim's site had one); fresh depth frames rebuild the map ahead.
    map_clear_after_s: float = 10.0
    max_map_clears: int = 2
    map_clear_keep_radius_m: float = 1.0
    # the rover's outline in base_link (x, y), m: the simulated rover's bucket (to 0.73 m ahead, 0.5 m wide), wheels
    # (r 0.15 m at x = +-0.25, y = +-0.30, 0.34 m out) and rear. A turn in place sweeps it; the circular
    # footprint of the costmap and the monitor (0.36-0.38 m) does not cover the bucket.
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
    # relocalization stop (needs the surveyed landmarks, ``PlannedNavigator(..., landmarks=...)``): a goal
    # reached (by the estimate) with a position sigma above ``reloc_sigma_m`` is not yet declared reached: the
    # rover turns in place (where the outline's sweep is clear on the map) to face the centroid of the
    # landmarks whose printed face is towards it within ``reloc_max_range_m``, waits there until the estimator
    # has accepted ``reloc_min_fixes`` fiducial updates and the sigma is below ``reloc_done_sigma_m`` (at most
    # ``reloc_wait_s``), then approaches the goal pose again. At most ``reloc_max_stops`` stops per goal.
    reloc_sigma_m: float = 0.1
    reloc_done_sigma_m: float = 0.03
    reloc_min_fixes: int = 10
    reloc_wait_s: float = 20.0
    reloc_max_range_m: float = 7.0
    # no stop where a landmark facing the rover is nearer than this (the final approach to the dig pose, 3.3 m
    # from the bar, faces it and gets fixes on its way; a stop there only added turns)
    reloc_min_range_m: float = 4.0
    reloc_max_stops: int = 1
    reloc_fix_age_s: float = 5.0  # ... and only when the estimator has accepted no fiducial for this long
    # where: at the pre-goal point (the start of the final approach leg, ``LatticeParams.approach_m`` behind the
    # goal: the rover turns back and drives the approach leg after the fixes) when True, else at the goal
    reloc_at_pre_goal: bool = True
    reloc_yaw_tolerance_rad: float = math.radians(3.0)
    # the views tried in turn (offsets from the heading to the landmarks, the one towards the goal heading
    # first), each for ``reloc_view_s`` while it gives no fix: in the sim the bucket hides the bar's tags 4-5 m
    # away at the image centre (20 s facing them: no fix; 20 deg to the side: fixes)
    reloc_view_offsets_rad: tuple[float, ...] = (math.radians(20.0), math.radians(-20.0), 0.0)
    reloc_view_s: float = 3.0
    # wall views (``PlannedNavigator(..., walls=...)``), where no tag is in reach: at the start of the final
    # approach leg with a position sigma above ``reloc_wall_sigma_m``, the rover turns to face the known wall
    # whose normal lies closest to the covariance's worst axis (within ``reloc_wall_max_range_m``: the wall fit
    # needs it in the depth frame) and re-approaches after the first wall fix. A turn in place slides a skid-steer
    # base sideways by centimetres that the wheels do not report, and a wall straight ahead (the far wall at the
    # UCF dump pose) fixes only the distance to it and the heading, so the sideways error would stay.
    reloc_wall_sigma_m: float = 0.04
    # wall views per goal, counted apart from the tag stops (``reloc_max_stops``): one at the start of the final
    # approach leg, and more at the goal when the turn onto that leg slid the rover again (the estimator's sigma
    # says so: UCF crossing seed 5, 9 cm sideways turning in place on two diagonal wheels; 5.5 cm at the dump
    # pose with one view, 5.5 with two, 2.0 with three)
    reloc_max_wall_stops: int = 3
    wall_views: bool = True  # False: no wall views at all (the walls still correct the estimator)
    reloc_wall_max_range_m: float = 4.0
    # ... and at least this far: the depth fit needs the wall beyond its 0.8 m minimum range, and a rover facing a
    # wall closer than its bucket's reach scraped it turning (UCF build, excavation zone 0.75 m from the wall)
    reloc_wall_min_range_m: float = 1.3
    # on the way: at a vertex of the plan with the position sigma above this (None: never, the default), the same
    # wall view, at most once per reloc_wall_leg_interval_s. Off: measured at 0.06 m on the UCF crossing, the turns
    # in place between boulders cost seed 9 a contact and a stuck abort and seed 5 its 5 cm (5.9 cm vs 3.5 cm
    # without), and the berm build lost cycles (seed 1: 0 cycles with them)
    reloc_wall_leg_sigma_m: float | None = None
    reloc_wall_leg_interval_s: float = 15.0
    # a later leg of the oriented plan blocked on a new map while the one being driven is clear: finish the
    # current leg, then plan from its end (False: plan again from the rover's pose at once)
    finish_leg_first: bool = True

    def __post_init__(self) -> None:
        if self.planner not in ("oriented", "circular"):
            raise ValueError(f"NavigatorParams.planner: must be 'oriented' or 'circular', got {self.planner!r}")
        positive = (
            "leg_tolerance_m",
            "leg_pass_m",
            "reloc_sigma_m",
            "reloc_done_sigma_m",
            "reloc_max_range_m",
            "reloc_min_range_m",
            "reloc_wait_s",
            "reloc_yaw_tolerance_rad",
            "reloc_view_s",
            "reloc_fix_age_s",
            "reloc_wall_sigma_m",
            "reloc_wall_max_range_m",
            "reloc_wall_min_range_m",
            "reloc_wall_leg_interval_s",
            "map_clear_after_s",
            "map_clear_keep_radius_m",
        )
        for name in positive:
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"NavigatorParams.{name}: must be finite and > 0, got {v}")
        if self.reloc_wall_leg_sigma_m is not None and not (
            math.isfinite(self.reloc_wall_leg_sigma_m) and self.reloc_wall_leg_sigma_m > 0.0
        ):
            raise ValueError(
                f"NavigatorParams.reloc_wall_leg_sigma_m: must be > 0 or None, got {self.reloc_wall_leg_sigma_m}"
            )
        if not self.reloc_view_offsets_rad or not all(math.isfinite(a) for a in self.reloc_view_offsets_rad):
            raise ValueError(
                f"NavigatorParams.reloc_view_offsets_rad: needs finite offsets, got {self.reloc_view_offsets_rad}"
            )
        if self.max_map_clears < 0:
            raise ValueError(f"NavigatorParams.max_map_clears: must be >= 0, got {self.max_map_clears}")
        if self.reloc_min_fixes < 0 or self.reloc_max_stops < 0 or self.reloc_max_wall_stops < 0:
            raise ValueError(
                "NavigatorParams.reloc_min_fixes / reloc_max_stops / reloc_max_wall_stops: must be >= 0, got "
                f"{self.reloc_min_fixes} / {self.reloc_max_stops} / {self.reloc_max_wall_stops}"
            )


class PlannedNavigator:
    """Drives to ``goals`` one after the other (module docstring). A goal is a pose, or an ``(x_m, y_m)`` pair
    for a position reached with any heading."""

    def __init__(
        self,
        goals: Sequence[Pose2D | tuple[float, float]],
        params: NavigatorParams | None = None,
        landmarks: Sequence[Landmark] = (),
        walls: Sequence[WallLine] = (),
    ) -> None:
        self.params = params or NavigatorParams()
        # the goals as poses (a heading-free goal carries yaw 0 there) and their headings (None: any heading)
        self.goals = tuple(g if isinstance(g, Pose2D) else Pose2D(g[0], g[1], 0.0) for g in goals)
        self._goal_yaws: tuple[float | None, ...] = tuple(g.yaw_rad if isinstance(g, Pose2D) else None for g in goals)
        self.landmarks = tuple(landmarks)  # surveyed fiducials, for the relocalization stops
        self.walls = tuple(walls)  # known walls, for the wall views of the relocalization stops
        self.wall_reloc_stops = 0  # relocalization stops that looked at a wall (all goals)
        self._reloc_wall = False  # the current stop looks at a wall (done at its first fix)
        self._replan_at_leg_end = False  # a later leg was found blocked: plan again when the current one ends
        self._last_leg_view_s = -math.inf  # the last wall view on the way (``reloc_wall_leg_sigma_m``)
        self.reloc_stops = 0  # relocalization stops made (all goals)
        self.reloc_fixes = 0  # fiducial updates accepted while waiting at them
        self._reloc_phase = ""  # "" | "turn" | "wait"
        self._reloc_yaw = 0.0
        self._reloc_views: tuple[float, ...] = ()
        self._reloc_view = 0
        self._reloc_dir = 1.0
        self._reloc_since_s = 0.0
        self._reloc_at_goal = 0  # tag stops made at the current goal
        self._wall_stops_at_goal = 0  # wall views made at the current goal (its pre-goal point and itself)
        self._last_fix_s = -math.inf  # the last tick the estimator accepted a fiducial update
        self._reloc_fixes_here = 0
        self._reloc_turn_s = 0.0
        self._reloc_view_fixes = 0
        self._reloc_view_s = 0.0
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
        # the owner (the pipeline) forgets its terrain map beyond ``map_clear_keep_radius_m`` when this is set,
        # then sets it back to False
        self.map_clear_requested = False
        self.map_clears = 0  # clears asked for (all goals)
        self._clears_at_goal = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.goals)

    def status(self, stamp_s: float) -> NavigationStatus:
        d = self.follower.status.distance_to_goal_m if self.path is not None else 0.0
        return NavigationStatus(stamp_s, self.index, len(self.goals), d, self.reached)

    # -- planning ----------------------------------------------------------------------------------------

    def _goal(self) -> Pose2D:
        return self.goals[self.index]

    def _goal_yaw(self) -> float | None:
        """The current goal's heading, None when any heading will do."""
        return self._goal_yaws[self.index]

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
        self._replan_at_leg_end = False
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
        self.path = path.with_goal(goal_yaw_rad=self._goal_yaw())
        self._leg_path = self.path
        self.plans += 1
        self.last_error = ""

    def _plan_oriented(self, cm: Costmap, pose: Pose2D) -> None:
        goal = self._goal()
        yaw = self._goal_yaw()
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

    def _current_leg_free(self, cm: Costmap, pose: Pose2D) -> bool:
        """Oriented mode, ``finish_leg_first``: the leg being driven (not the plan's last) is still clear from the
        rover's position to its end, turn included."""
        plan = self.oriented
        if not self.params.finish_leg_first or plan is None or self.path is None or self.leg >= plan.legs - 1:
            return False
        return self.lattice.legs_free(cm, plan, self.leg, (pose.x_m, pose.y_m), to_leg=self.leg + 1)

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
            if self._current_leg_free(cm, pose):
                # a later leg is blocked, the one being driven is not: finish it, then plan from its end. Planned
                # again from the rover's pose at every new map, a marginal gap whose edge cells flicker between
                # frames made the lattice alternate between a forward start and a reverse cusp (UCF crossing
                # seed 4: 10 cm forward, 10 cm back, for 260 s)
                self._replan_at_leg_end = True
            else:
                self._plan(pose)

    # -- control -----------------------------------------------------------------------------------------

    def _advance_leg(self, pose: Pose2D, reached: bool = False) -> bool:
        """Oriented mode: move on to the next leg when the current intermediate vertex is reached (within
        ``leg_tolerance_m``, or passed along the leg by less than ``leg_pass_m`` off it, or ``reached``: the
        follower is done with the leg, by its own tolerances). True if moved on."""
        plan = self.oriented
        if plan is None or self.leg >= plan.legs - 1:
            return False
        a = plan.vertices_xy_m[self.leg]
        b = plan.vertices_xy_m[self.leg + 1]
        d = math.hypot(pose.x_m - b[0], pose.y_m - b[1])
        seg = b - a
        length = float(math.hypot(seg[0], seg[1]))
        along = ((pose.x_m - a[0]) * seg[0] + (pose.y_m - a[1]) * seg[1]) / max(length, 1e-9)
        if reached or d <= self.params.leg_tolerance_m or (along >= length and d <= self.params.leg_pass_m):
            self.leg += 1
            self._leg_path = plan.leg_path(self.leg)
            if self._replan_at_leg_end:
                self._replan_at_leg_end = False
                self._plan(pose)
            return True
        return False

    def step(self, stamp_s: float, estimate: PoseEstimate, measured_speed_mps: float) -> DriveCommand:
        pose = estimate.pose
        if self.done or self.failed:
            return DriveCommand.stop(stamp_s)
        if estimate.landmarks_used > 0:
            self._last_fix_s = stamp_s
        if self._reloc_phase:
            return self._reloc_step(stamp_s, estimate)
        if self.path is None:
            self._plan(pose)
            if self.path is None:
                prm = self.params
                if self._no_path_since_s is None:
                    self._no_path_since_s = stamp_s
                elif (
                    self.costmap is not None
                    and stamp_s - self._no_path_since_s > prm.map_clear_after_s
                    and self._clears_at_goal < prm.max_map_clears
                    and not self.map_clear_requested
                ):
                    self.map_clear_requested = True
                    self._clears_at_goal += 1
                    self.map_clears += 1
                    self._no_path_since_s = stamp_s
                elif self.costmap is not None and stamp_s - self._no_path_since_s > prm.no_path_timeout_s:
                    self.failed = True
                return DriveCommand.stop(stamp_s)
        self._no_path_since_s = None
        if self._advance_leg(pose) and (
            (self._at_pre_goal() and self._start_reloc(stamp_s, estimate))
            or self._start_leg_wall_view(stamp_s, estimate)
        ):
            return DriveCommand.stop(stamp_s)
        before = self.follower.status.phase
        cmd = self.follower.step(estimate, self._leg_path, stamp_s, costmap=self.costmap)
        if self.follower.status.done and self._advance_leg(pose, reached=True):
            if self._at_pre_goal() and self._start_reloc(stamp_s, estimate):
                return DriveCommand.stop(stamp_s)
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
        if self.follower.status.done and self._start_reloc(stamp_s, estimate):
            return DriveCommand.stop(stamp_s)
        if self.follower.status.done:
            self._reloc_at_goal = 0
            self._wall_stops_at_goal = 0
            self._clears_at_goal = 0
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

    # -- relocalization stop ---------------------------------------------------------------------------------

    def _nearest_landmark_m(self, pose: Pose2D) -> float:
        return min((math.hypot(pose.x_m - lm.x_m, pose.y_m - lm.y_m) for lm in self.landmarks), default=math.inf)

    def reloc_heading_rad(self, pose: Pose2D) -> float | None:
        """The heading from ``pose`` to the centroid of the landmarks whose printed face points towards it within
        ``reloc_max_range_m`` (None: no such landmark)."""
        pts = [
            (lm.x_m, lm.y_m)
            for lm in self.landmarks
            if math.hypot(pose.x_m - lm.x_m, pose.y_m - lm.y_m) <= self.params.reloc_max_range_m
            and (pose.x_m - lm.x_m) * math.cos(lm.facing_yaw_rad) + (pose.y_m - lm.y_m) * math.sin(lm.facing_yaw_rad)
            > 0.0
        ]
        if not pts:
            return None
        cx = sum(p[0] for p in pts) / len(pts)
        cy = sum(p[1] for p in pts) / len(pts)
        return math.atan2(cy - pose.y_m, cx - pose.x_m)

    def wall_view_rad(self, estimate: PoseEstimate) -> float | None:
        """The heading that faces the known wall (``reloc_wall_min_range_m`` to ``reloc_wall_max_range_m`` away)
        whose normal is closest to the position covariance's worst axis, so that its fix removes the largest
        uncertainty (None: no wall)."""
        pose = estimate.pose
        c = estimate.covariance
        evals, evecs = np.linalg.eigh(np.array([[c[0][0], c[0][1]], [c[1][0], c[1][1]]], dtype=np.float64))
        worst = evecs[:, int(np.argmax(evals))]
        best: tuple[float, float] | None = None
        for wall in self.walls:
            nx, ny = math.cos(wall.normal_rad), math.sin(wall.normal_rad)
            dist = wall.offset_m - nx * pose.x_m - ny * pose.y_m
            if not self.params.reloc_wall_min_range_m <= dist <= self.params.reloc_wall_max_range_m:
                continue
            score = abs(nx * float(worst[0]) + ny * float(worst[1]))
            if best is None or score > best[0] + 1e-9:
                best = (score, wall.normal_rad)
        return None if best is None else wrap_angle_rad(best[1])

    def _turn_free(self, pose: Pose2D, yaw_rad: float, direction: float) -> bool:
        """The outline turning in place from ``pose.yaw_rad`` to ``yaw_rad`` in ``direction`` (+1: left) is clear
        of the costmap's lethal cells at every heading bin it sweeps."""
        cm = self.costmap
        if cm is None:
            return False
        fp = self.lattice.footprint(cm.grid.resolution_m)
        turn = wrap_angle_rad(yaw_rad - pose.yaw_rad)
        if direction * turn < 0.0:
            turn += direction * 2.0 * math.pi
        n = max(1, math.ceil(abs(turn) / (0.5 * fp.bin_width_rad)))
        return all(self.lattice.pose_free(cm, pose.x_m, pose.y_m, pose.yaw_rad + turn * i / n) for i in range(n + 1))

    def _start_leg_wall_view(self, stamp_s: float, estimate: PoseEstimate) -> bool:
        """At an intermediate vertex of the plan (``reloc_wall_leg_sigma_m``): a wall view when the position sigma
        has grown past it, at most once per ``reloc_wall_leg_interval_s``; the plan is made again after it."""
        prm = self.params
        if (
            prm.reloc_wall_leg_sigma_m is None
            or not self.walls
            or estimate.position_sigma_m() <= prm.reloc_wall_leg_sigma_m
            or stamp_s - self._last_leg_view_s < prm.reloc_wall_leg_interval_s
        ):
            return False
        self._last_leg_view_s = stamp_s
        return self._start_reloc(stamp_s, estimate, walls_only=True)

    def _start_reloc(self, stamp_s: float, estimate: PoseEstimate, walls_only: bool = False) -> bool:
        """At a goal reached by the estimate: start a relocalization stop if it is needed and possible
        (``walls_only``: a wall view on the way, not counted against the goal's ``reloc_max_stops``)."""
        prm = self.params
        pose = estimate.pose
        sigma = estimate.position_sigma_m()
        tags_left = not walls_only and self._reloc_at_goal < prm.reloc_max_stops
        centre = self.reloc_heading_rad(pose) if self.landmarks and tags_left else None
        self._reloc_wall = False
        if (
            centre is not None
            and sigma > prm.reloc_sigma_m
            and stamp_s - self._last_fix_s >= prm.reloc_fix_age_s
            and self._nearest_landmark_m(pose) >= prm.reloc_min_range_m
        ):
            goal_yaw = self._goal_yaw()
            towards = 1.0 if goal_yaw is None or wrap_angle_rad(goal_yaw - centre) >= 0.0 else -1.0
            self._reloc_views = tuple(wrap_angle_rad(centre + towards * a) for a in prm.reloc_view_offsets_rad)
        else:
            walls_left = walls_only or self._wall_stops_at_goal < prm.reloc_max_wall_stops
            wall_yaw = (
                self.wall_view_rad(estimate)
                if prm.wall_views and walls_left and sigma > prm.reloc_wall_sigma_m
                else None
            )
            if wall_yaw is None:
                return False
            self._reloc_views = (wall_yaw,)
            self._reloc_wall = True
        self._reloc_view = -1
        self._reloc_since_s = stamp_s
        if not self._next_reloc_view(pose, stamp_s):
            return False
        self._reloc_at_goal += int(not walls_only and not self._reloc_wall)
        self._wall_stops_at_goal += int(not walls_only and self._reloc_wall)
        self.reloc_stops += 1
        self.wall_reloc_stops += int(self._reloc_wall)
        self._reloc_fixes_here = 0
        self.follower.reset()
        self.recovery.reset()
        return True

    def _at_pre_goal(self) -> bool:
        """Oriented mode, ``reloc_at_pre_goal``: the rover has just reached the start of the final approach leg
        (the plan's last, straight along the goal heading, ``approach_m`` to 1 m long)."""
        plan = self.oriented
        if not self.params.reloc_at_pre_goal or plan is None or plan.legs < 2 or self.leg != plan.legs - 1:
            return False
        goal_yaw = self._goal_yaw()
        if goal_yaw is None:
            return False
        a, b = plan.vertices_xy_m[self.leg], plan.vertices_xy_m[self.leg + 1]
        length = math.hypot(float(b[0] - a[0]), float(b[1] - a[1]))
        heading = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
        approach = self.lattice.params.approach_m
        return approach - 0.02 <= length <= max(approach, 1.0) and abs(
            wrap_angle_rad(heading - goal_yaw)
        ) < math.radians(2.0)

    def _next_reloc_view(self, pose: Pose2D, stamp_s: float) -> bool:
        """Turn to the next view whose turn is clear (either way round). False: none left."""
        while self._reloc_view + 1 < len(self._reloc_views):
            self._reloc_view += 1
            yaw = self._reloc_views[self._reloc_view]
            short = 1.0 if wrap_angle_rad(yaw - pose.yaw_rad) >= 0.0 else -1.0
            for direction in (short, -short):
                if self._turn_free(pose, yaw, direction):
                    self._reloc_phase = "turn"
                    self._reloc_yaw = yaw
                    self._reloc_dir = direction
                    self._reloc_turn_s = stamp_s
                    return True
        return False

    def _reloc_step(self, stamp_s: float, estimate: PoseEstimate) -> DriveCommand:
        """One tick of the relocalization stop: turn in place towards the landmarks, then wait for fixes, then
        plan the goal pose again (the re-approach)."""
        prm = self.params
        pose = estimate.pose
        if self._reloc_phase == "turn":
            err = wrap_angle_rad(self._reloc_yaw - pose.yaw_rad)
            if abs(err) > prm.reloc_yaw_tolerance_rad and stamp_s - self._reloc_turn_s < prm.reloc_wait_s:
                pp = prm.pursuit
                # in the chosen direction until within 90 deg, then the short way (no overshoot)
                sign = self._reloc_dir if abs(err) > 0.5 * math.pi else math.copysign(1.0, err)
                w = min(pp.max_yaw_rate_radps, max(pp.min_rotate_radps, math.sqrt(pp.max_yaw_accel_radps2 * abs(err))))
                return DriveCommand(stamp_s, 0.0, sign * w)
            self._reloc_phase = "wait"
            self._reloc_view_s = stamp_s
            self._reloc_view_fixes = 0
            return DriveCommand.stop(stamp_s)
        self.reloc_fixes += estimate.landmarks_used
        self._reloc_fixes_here += estimate.landmarks_used
        self._reloc_view_fixes += estimate.landmarks_used
        settled = (
            self._reloc_fixes_here >= 1
            if self._reloc_wall
            else self._reloc_fixes_here >= prm.reloc_min_fixes and estimate.position_sigma_m() <= prm.reloc_done_sigma_m
        )
        waited = stamp_s - self._reloc_since_s >= prm.reloc_wait_s
        if not settled and not waited:
            if self._reloc_view_fixes == 0 and stamp_s - self._reloc_view_s >= prm.reloc_view_s:
                if self._next_reloc_view(pose, stamp_s):
                    return DriveCommand.stop(stamp_s)
                self._reloc_phase = "wait"  # no other view: wait here
            return DriveCommand.stop(stamp_s)
        self._reloc_phase = ""
        self.follower.reset()
        self.reapproaches += 1
        self._plan(pose)
        return DriveCommand.stop(stamp_s)

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

    def _front_clearance_m(self, pose: Pose2D, ahead_m: float) -> float:
        """Least clearance (m) of the outline's front half (x > 0: what a move forward brings closer) with the
        rover ``ahead_m`` further along its heading."""
        pts = np.asarray([p for p in self.params.outline_m if p[0] > 0.0], dtype=np.float64)
        if pts.size == 0:
            return math.inf
        c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
        xs = pose.x_m + c * (pts[:, 0] + ahead_m) - s * pts[:, 1]
        ys = pose.y_m + s * (pts[:, 0] + ahead_m) + c * pts[:, 1]
        return min(self.monitor.clearance_at(float(x), float(y)) for x, y in zip(xs, ys, strict=True))

    def guard(self, cmd: DriveCommand, pose: Pose2D, monitor_pose: Pose2D | None = None) -> MonitorResult:
        """The collision monitor on the final command (called by the pipeline's limit stage). A turn in place
        whose swept outline (the bucket, or the rear when the turn pivots ahead of base_link) would come within
        ``sweep_margin_m`` of an obstacle is replaced by a slow straight back-off (itself checked by the
        monitor), unless the turn moves the outline away; where the monitor stops the back-off (an obstacle
        behind), by a slow creep forward when the monitor lets it pass and the outline's front, moved forward by
        what it covers in ``sweep_horizon_s``, keeps ``sweep_margin_m`` (else the rover stands: nothing is clear).
        With an outline shifted for a pivot ahead of base_link (``NavigationPort``: ``pose`` is the pivot's), x > 0
        is ahead of the pivot, and the monitor's circle stays on base_link (``monitor_pose``; default ``pose``)."""
        prm = self.params
        at = pose if monitor_pose is None else monitor_pose
        if abs(cmd.linear_x_mps) < 1e-6 and abs(cmd.angular_z_radps) > 1e-6:
            now, least = self.sweep_clearance_m(pose, cmd.angular_z_radps)
            if least < prm.sweep_margin_m and least < now - 1e-3:
                back = DriveCommand(cmd.stamp_s, -prm.sweep_backoff_mps, 0.0)
                res = self.monitor.filter(back, at)
                if res.command.linear_x_mps == 0.0:
                    step = prm.sweep_backoff_mps * prm.sweep_horizon_s
                    fwd = self.monitor.filter(DriveCommand(cmd.stamp_s, prm.sweep_backoff_mps, 0.0), at)
                    front = self._front_clearance_m(pose, step)
                    if fwd.action is not MonitorAction.STOP and front >= prm.sweep_margin_m:
                        res = fwd
                return MonitorResult(res.command, MonitorAction.SLOW, 0.0, res.clearance_m)
        return self.monitor.filter(cmd, at)
