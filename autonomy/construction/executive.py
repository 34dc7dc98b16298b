"""Construction executive: a py_trees behaviour tree that runs the planner's dig-haul-dump cycles (pure).

One call per control tick: ``Executive.step(stamp_s, estimate, tool, battery, fill_fraction)`` ticks the tree
once and returns ``(DriveCommand, ToolCommand, events)``. Time arrives in ``stamp_s`` (no clock); the tree's
behaviours keep their own start stamps. The caller (a sim or board shell) journals the events.

Tree of one cycle (``Sequence`` with memory; every phase is guarded so a pre-empted cycle resumes at the
phase it was in, never digging twice with a full bucket)::

    root (Selector, no memory)
     |- guard (Sequence, no memory): IsLost? -> Relocalize       drive to where a start-zone tag is seen
     '- cycle k (Sequence, memory)
         |- phase start:   Emit cycle_started
         |- phase checkpoint: when sigma > checkpoint_sigma_m: Relocalize at the tags first (bounded time)
         |- phase dig:     GoTo(dig stand) -> Retry(Selector[Lower -> DigForward -> Raise,
         |                                            Recover: Raise -> BackOff -> Fail]) -> Emit dug
         |- phase haul checkpoint: when sigma > haul_checkpoint_sigma_m (None: never): Relocalize first
         |- phase haul:    GoTo(dump stand, facing the pile)
         |- phase dump:    Tip -> wait empty -> Emit dumped -> Raise -> BackOff
         |- phase done:    Emit cycle_completed (the shell journals it: the cycle counts)
         '- phase measure: Measure (the caller scans, replans, calls ``measurement_done``)
    after the last cycle (or when the next one does not fit the time or energy left): Park (drive to the
    park pose and stay).

Dig model: the tool's lip is ``lip_ahead_m`` ahead of ``base_link`` when lowered, so the rover stands that
far behind the strip's start; it drives forward at ``dig_speed_mps`` holding the strip's line (lateral
error ``e``, heading error ``psi``: ``w = -k_e e - k_psi psi``) until the bucket is full (median tool load
over ``load_window`` ticks >= ``full_load_n``, or the caller's ``fill_fraction`` >= ``full_fraction``) or
the strip's length is cut.

Jam: the tool reports ``stalled`` or a load above ``jam_load_n`` for ``jam_time_s`` while it moves or digs
=> the attempt fails, the recover branch raises the tool and backs off, and the dig is retried
``jam_retries`` times; then the cycle is aborted (event ``cycle_aborted``) and the next one starts.

Lunabotics no-locomotion rule: in ``lunabotics`` mode the executive never commands a standstill longer
than ``max_still_s`` (default 240 s, under the rules' 5 minutes): past it, the step output is replaced by
a short forward-and-back nudge of ``nudge_m`` (event ``nudge``), whatever the tree is doing.

Relocalization: when the estimate says ``lost`` or its position sigma exceeds ``relocalize_sigma_m``, the
guard pre-empts the cycle: the tool goes to carry, the rover drives (dead reckoning) to
``relocalize_pose`` (facing the start-zone fiducials) and turns slowly in place until the sigma is below
``relocalized_sigma_m`` (hysteresis); then the cycle resumes at its phase. Before that happens, a
checkpoint at the start of each cycle visits the same pose when the sigma has grown past
``checkpoint_sigma_m`` (dead reckoning since the last tags) until the tags bring it below
``relocalized_sigma_m`` (at most ``checkpoint_timeout_s``), then digs: on a Lunabotics site the start-zone
fiducials are next to the excavation zone, so the detour is short and the rover hauls with a fresh fix. The
checkpoint ends as soon as the sigma is below ``relocalized_sigma_m``, on the way too: driving back from
the dump the camera faces the tags, and the fix came 3-4 m before the stand on build seed 6 (the rover
used to drive on to the stand and turn to face them: 15-25 s a checkpoint).
``haul_checkpoint_sigma_m`` (None: off) adds the same visit between the dig and the haul: dead reckoning
through the dig can leave too little margin for the haul, and a lost guard firing in the middle of an
obstacle zone sends the rover turning among the rocks. The haul checkpoint ends at the stand only: the
fixes on its way, 3-3.7 m from the tags across the dug ground, were 3-27 cm off with a sigma of 8 cm (build
seeds 1 and 4), where those from the dump side, 5 m off, were 0-7 cm.

Navigation between poses uses a swappable ``Follower`` (``set_waypoints`` / ``update``, as
``autonomy.navigation.pure_pursuit.PurePursuit``) made by ``follower_factory``, and an optional ``router``
that returns via points between two poses (a costmap planner); without one the rover drives straight.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import py_trees
from py_trees.common import Status

from autonomy.construction.planner import Cycle, cycle_fits
from autonomy.mission.mission_file import Limits, RoverModel
from autonomy.msgs import (
    BatteryState,
    DriveCommand,
    NavigationStatus,
    Pose2D,
    PoseEstimate,
    ToolCommand,
    ToolState,
    Waypoint,
    wrap_angle_rad,
)
from autonomy.navigation.pure_pursuit import PurePursuit, PurePursuitParams


class Follower(Protocol):
    """A path follower the executive can drive with (``PurePursuit`` is one)."""

    def set_waypoints(self, waypoints: Sequence[Waypoint], start: Pose2D | None = None) -> None: ...

    def update(self, stamp_s: float, pose: Pose2D) -> tuple[DriveCommand, NavigationStatus]: ...


@runtime_checkable
class GoalPoseFollower(Protocol):
    """A follower that plans its own way to a goal pose (``autonomy.construction.navigation``): ``_GoTo`` gives
    it the goal pose (with its heading) instead of the router's via points."""

    def set_goal_pose(self, goal: Pose2D, start: Pose2D) -> None: ...


FollowerFactory = Callable[[], Follower]
# (from pose, to (x, y)) -> via points before the goal (the goal itself is added by the executive)
Router = Callable[[Pose2D, tuple[float, float]], Sequence[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class ExecutiveConfig:
    """Tunables (SI units). Tool angles follow ``ToolState`` (0 carry, positive lowers the lip)."""

    tool_carry_rad: float = 0.0
    tool_dig_rad: float = 0.8
    tool_dump_rad: float = -0.7
    tool_tolerance_rad: float = 0.08
    tool_move_timeout_s: float = 6.0
    lip_ahead_m: float = 0.52  # lowered lip ahead of base_link (the sim rover: 0.52 m)
    dig_speed_mps: float = 0.12
    dig_extra_m: float = 0.1  # drive this much past the strip's length before giving up on "full"
    full_load_n: float = 35.0  # tool load of a full bucket (sim: 0.015 m^3 x 1500 kg/m^3 x 1.62 m/s^2 = 36 N)
    full_fraction: float = 0.95
    # Depth control while digging. A nose-down pitch (a front wheel in the last pass's trench) sinks the lip
    # into the cut: on the sim rover 2.7 deg of pitch sank it 2.6 cm (the lip is about 0.55 m ahead of the
    # axis the rover pitches about), so each pass dug deeper where the last one ended, up to 18 cm pits
    # that tipped the loaded rover (build seed 3). The dig raises the tool by ``dig_pitch_gain`` rad per rad of
    # nose-down pitch (lip lever / lip travel per rad of tool: 0.55 m / 0.14 m on the sim rover), so the
    # lip holds its depth below the ground the rear wheels stand on. Past ``dig_max_pitch_rad`` nose down or
    # ``dig_max_roll_rad`` either way (a roll tips the bucket's edge in) the bucket rises to carry while the
    # rover drives on; it cuts again below them minus ``dig_tilt_hysteresis_rad``.
    dig_pitch_gain: float = 3.9
    dig_max_pitch_rad: float = math.radians(8.0)
    dig_max_roll_rad: float = math.radians(5.0)
    dig_tilt_hysteresis_rad: float = math.radians(1.0)
    load_window: int = 5
    empty_load_n: float = 5.0
    dump_settle_s: float = 0.5
    dump_timeout_s: float = 8.0
    backoff_m: float = 0.25
    backoff_speed_mps: float = 0.15
    backoff_timeout_s: float = 6.0
    jam_load_n: float = 150.0
    jam_time_s: float = 1.0
    jam_retries: int = 1
    pose_tolerance_m: float = 0.12
    heading_tolerance_rad: float = 0.06
    turn_gain_per_s: float = 1.5
    max_yaw_rate_radps: float = 0.6
    max_speed_mps: float = 0.3
    nav_timeout_s: float = 150.0
    line_gain_per_m: float = 2.0
    heading_gain_per_s: float = 1.5
    measure: bool = True
    measure_timeout_s: float = 10.0
    lunabotics: bool = False
    max_still_s: float = 240.0
    nudge_m: float = 0.05
    nudge_speed_mps: float = 0.1
    relocalize_sigma_m: float = 0.5  # lost guard: pre-empts whatever runs
    relocalize_when_lost: bool = True  # the estimator's lost flag also trips the guard
    relocalized_sigma_m: float = 0.08
    relocalize_pose: Pose2D | None = None
    relocalize_turn_radps: float = 0.2
    relocalize_dwell_s: float = 3.0
    checkpoint_sigma_m: float = 0.15  # between cycles: visit the tags first when the sigma is above this
    checkpoint_timeout_s: float = 60.0
    haul_checkpoint_sigma_m: float | None = None  # after the dig: visit the tags first above this (None: off)
    park_pose: Pose2D | None = None
    still_speed_mps: float = 0.01

    def __post_init__(self) -> None:
        positive = (
            "tool_tolerance_rad",
            "tool_move_timeout_s",
            "dig_speed_mps",
            "full_load_n",
            "jam_load_n",
            "jam_time_s",
            "pose_tolerance_m",
            "heading_tolerance_rad",
            "max_yaw_rate_radps",
            "max_speed_mps",
            "nav_timeout_s",
            "max_still_s",
            "nudge_m",
            "nudge_speed_mps",
            "relocalize_sigma_m",
            "relocalized_sigma_m",
            "backoff_speed_mps",
            "relocalize_dwell_s",
            "checkpoint_sigma_m",
            "checkpoint_timeout_s",
            "dump_timeout_s",
            "measure_timeout_s",
        )
        for name in positive:
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"ExecutiveConfig.{name}: must be finite and > 0, got {v!r}")
        h = self.haul_checkpoint_sigma_m
        if h is not None and not (math.isfinite(h) and h > 0):
            raise ValueError(f"ExecutiveConfig.haul_checkpoint_sigma_m: must be None or finite and > 0, got {h!r}")
        if self.relocalized_sigma_m >= self.relocalize_sigma_m:
            raise ValueError("ExecutiveConfig: relocalized_sigma_m must be below relocalize_sigma_m (hysteresis)")
        if self.jam_retries < 0 or self.load_window < 1:
            raise ValueError("ExecutiveConfig: jam_retries must be >= 0 and load_window >= 1")
        if not self.tool_dump_rad < self.tool_carry_rad < self.tool_dig_rad:
            raise ValueError("ExecutiveConfig: need tool_dump_rad < tool_carry_rad < tool_dig_rad")
        hyst = self.dig_tilt_hysteresis_rad
        if not (math.isfinite(hyst) and hyst >= 0.0):
            raise ValueError(f"ExecutiveConfig.dig_tilt_hysteresis_rad: must be finite and >= 0, got {hyst!r}")
        for name in ("dig_max_pitch_rad", "dig_max_roll_rad"):
            v = getattr(self, name)
            if not (math.isfinite(v) and hyst < v <= math.pi / 2):
                raise ValueError(
                    f"ExecutiveConfig.{name}: must be finite, above dig_tilt_hysteresis_rad ({hyst!r}) and at most "
                    f"pi/2, got {v!r}"
                )
        if not (math.isfinite(self.dig_pitch_gain) and self.dig_pitch_gain >= 0.0):
            raise ValueError(f"ExecutiveConfig.dig_pitch_gain: must be finite and >= 0, got {self.dig_pitch_gain!r}")


@dataclass(frozen=True, slots=True)
class ExecutiveEvent:
    """Something the shell journals or logs. ``kind``: cycle_started, dug, dumped, cycle_completed,
    cycle_aborted, cycle_skipped, jam, dig_lifted, relocalize_started, relocalized, checkpoint,
    measure_requested, nudge, parked.
    ``cycle``: the planner's cycle index (-1: none). ``volume_m3``: the planned volume of the cycle."""

    stamp_s: float
    kind: str
    cycle: int = -1
    detail: str = ""
    volume_m3: float = 0.0


@dataclass(slots=True)
class _Ctx:
    """The tree's blackboard: inputs of this tick, outputs being built, and the state of the cycle."""

    cfg: ExecutiveConfig
    follower_factory: FollowerFactory
    router: Router | None
    stamp_s: float = 0.0
    estimate: PoseEstimate | None = None
    tool: ToolState | None = None
    fill_fraction: float | None = None
    pivot_x_m: float = 0.0  # where turns in place pivot now (m ahead of base_link; ``Executive.step``)
    roll_rad: float = 0.0  # base_link's tilt now (``Executive.step``; positive pitch: nose down)
    pitch_rad: float = 0.0
    v: float = 0.0
    w: float = 0.0
    tool_rad: float = 0.0
    events: list[ExecutiveEvent] = field(default_factory=list)
    cycle: Cycle | None = None
    phases_done: set[str] = field(default_factory=set)
    lost: bool = False
    measure_done: bool = False
    loads: deque[float] = field(default_factory=lambda: deque(maxlen=5))

    @property
    def pose(self) -> Pose2D:
        if self.estimate is None:
            raise ValueError("Executive: no estimate this tick")
        return self.estimate.pose

    def emit(self, kind: str, detail: str = "") -> None:
        c = self.cycle
        self.events.append(
            ExecutiveEvent(self.stamp_s, kind, c.index if c is not None else -1, detail, c.volume_m3 if c else 0.0)
        )

    def drive(self, v: float, w: float) -> None:
        self.v, self.w = v, w


class _Leaf(py_trees.behaviour.Behaviour):
    """A behaviour with the shared context and the stamp of its own start (``t0``)."""

    def __init__(self, name: str, ctx: _Ctx) -> None:
        super().__init__(name)
        self.ctx = ctx
        self.t0 = 0.0

    def initialise(self) -> None:
        self.t0 = self.ctx.stamp_s

    def elapsed(self) -> float:
        return self.ctx.stamp_s - self.t0


class _Emit(_Leaf):
    def __init__(self, ctx: _Ctx, kind: str) -> None:
        super().__init__(f"emit {kind}", ctx)
        self.kind = kind

    def update(self) -> Status:
        self.ctx.emit(self.kind)
        return Status.SUCCESS


class _PhaseDone(_Leaf):
    def __init__(self, ctx: _Ctx, key: str) -> None:
        super().__init__(f"{key} done?", ctx)
        self.key = key

    def update(self) -> Status:
        return Status.SUCCESS if self.key in self.ctx.phases_done else Status.FAILURE


class _MarkDone(_Leaf):
    def __init__(self, ctx: _Ctx, key: str) -> None:
        super().__init__(f"mark {key}", ctx)
        self.key = key

    def update(self) -> Status:
        self.ctx.phases_done.add(self.key)
        return Status.SUCCESS


def _phase(ctx: _Ctx, key: str, children: list[py_trees.behaviour.Behaviour]) -> py_trees.behaviour.Behaviour:
    """Run ``children`` once per cycle: skipped (SUCCESS) when the phase is already done."""
    body = py_trees.composites.Sequence(f"{key}", memory=True, children=[*children, _MarkDone(ctx, key)])
    return py_trees.composites.Selector(f"phase {key}", memory=False, children=[_PhaseDone(ctx, key), body])


class _JamWatch:
    """Jam detector: stalled, or load above ``jam_load_n``, continuously for ``jam_time_s``."""

    def __init__(self, cfg: ExecutiveConfig) -> None:
        self.cfg = cfg
        self.since: float | None = None

    def reset(self) -> None:
        self.since = None

    def jammed(self, stamp_s: float, tool: ToolState | None) -> bool:
        if tool is None:
            return False
        if tool.stalled or tool.load_n > self.cfg.jam_load_n:
            if self.since is None:
                self.since = stamp_s
            return stamp_s - self.since >= self.cfg.jam_time_s
        self.since = None
        return False


class _MoveTool(_Leaf):
    """Move the tool to ``target_rad`` (the rover stands still); FAILURE on a jam."""

    def __init__(self, ctx: _Ctx, name: str, target_rad: float) -> None:
        super().__init__(name, ctx)
        self.target = target_rad
        self.jam = _JamWatch(ctx.cfg)

    def initialise(self) -> None:
        super().initialise()
        self.jam.reset()

    def update(self) -> Status:
        c = self.ctx
        c.tool_rad = self.target
        c.drive(0.0, 0.0)
        if self.jam.jammed(c.stamp_s, c.tool):
            c.emit("jam", self.name)
            return Status.FAILURE
        if c.tool is not None and abs(c.tool.position_rad - self.target) <= c.cfg.tool_tolerance_rad:
            return Status.SUCCESS
        if self.elapsed() >= c.cfg.tool_move_timeout_s:
            # no tool feedback (or it stopped short against the soil): carry on, the load tells the rest
            return Status.SUCCESS
        return Status.RUNNING


class _Fail(_Leaf):
    def update(self) -> Status:
        return Status.FAILURE


class _GoTo(_Leaf):
    """Drive to a pose: follow waypoints (router via points, then the goal) with the follower, then turn in
    place to the goal's heading. FAILURE after ``nav_timeout_s``.

    A waypoint follower steers the point where the rover's turns pivot (``_Ctx.pivot_x_m``, fixed at the start:
    a loaded rover pivots ahead of base_link and base_link swings sideways in each turn): that point follows
    the via points to the goal's own pivot point, and the final turn about it leaves base_link on the goal.
    A ``GoalPoseFollower`` (``NavigationPort``) does the same shift itself."""

    def __init__(self, ctx: _Ctx, name: str, goal: Callable[[], Pose2D], tool_rad: float, heading: bool = True) -> None:
        super().__init__(name, ctx)
        self.goal_fn = goal
        self.tool_target = tool_rad
        self.heading = heading
        self.follower: Follower | None = None
        self.goal = Pose2D(0.0, 0.0, 0.0)
        self.turning = False
        self.pivot_x_m = 0.0  # the steered point, ahead of base_link (class docstring)

    def initialise(self) -> None:
        super().initialise()
        c = self.ctx
        self.goal = self.goal_fn()
        pose = c.pose
        tol = c.cfg.pose_tolerance_m
        self.follower = c.follower_factory()
        self.turning = pose.distance_to_m(self.goal.x_m, self.goal.y_m) <= tol
        if isinstance(self.follower, GoalPoseFollower):
            self.pivot_x_m = 0.0
            self.follower.set_goal_pose(self.goal, pose)
            return
        self.pivot_x_m = c.pivot_x_m
        start, end = pose.ahead(self.pivot_x_m), self.goal.ahead(self.pivot_x_m)
        via = list(c.router(start, (end.x_m, end.y_m))) if c.router is not None else []
        wps = [Waypoint(x, y, max(2 * tol, 0.25)) for x, y in via] + [Waypoint(end.x_m, end.y_m, tol)]
        self.follower.set_waypoints(wps, start)

    def update(self) -> Status:
        c = self.ctx
        cfg = c.cfg
        c.tool_rad = self.tool_target
        if self.elapsed() > cfg.nav_timeout_s:
            c.drive(0.0, 0.0)
            return Status.FAILURE
        pose = c.pose
        if not self.turning:
            if self.follower is None:
                raise ValueError("_GoTo.update before initialise")
            cmd, status = self.follower.update(c.stamp_s, pose.ahead(self.pivot_x_m))
            if not status.done:
                c.drive(min(cmd.linear_x_mps, cfg.max_speed_mps), cmd.angular_z_radps)
                return Status.RUNNING
            self.turning = True
        if not self.heading:
            c.drive(0.0, 0.0)
            return Status.SUCCESS
        err = wrap_angle_rad(self.goal.yaw_rad - pose.yaw_rad)
        if abs(err) <= cfg.heading_tolerance_rad:
            c.drive(0.0, 0.0)
            return Status.SUCCESS
        w = max(-cfg.max_yaw_rate_radps, min(cfg.max_yaw_rate_radps, cfg.turn_gain_per_s * err))
        if abs(w) < 0.1:
            w = math.copysign(0.1, err)  # break static friction near the end of the turn
        c.drive(0.0, w)
        return Status.RUNNING


class _DigForward(_Leaf):
    """Drive along the strip with the tool lowered until full or the strip is cut; FAILURE on a jam."""

    def __init__(self, ctx: _Ctx) -> None:
        super().__init__("dig forward", ctx)
        self.jam = _JamWatch(ctx.cfg)
        self.start = Pose2D(0.0, 0.0, 0.0)
        self.lifted = False  # the bucket is up: the rover was too tilted to cut (``_tilted``)

    def initialise(self) -> None:
        super().initialise()
        self.jam.reset()
        self.start = self.ctx.pose
        self.ctx.loads.clear()
        self.lifted = False

    def _tilted(self) -> bool:
        """Too tilted to cut (``ExecutiveConfig.dig_max_pitch_rad``), with hysteresis once lifted."""
        c = self.ctx
        margin = c.cfg.dig_tilt_hysteresis_rad if self.lifted else 0.0
        return c.pitch_rad > c.cfg.dig_max_pitch_rad - margin or abs(c.roll_rad) > c.cfg.dig_max_roll_rad - margin

    def _full(self) -> bool:
        c = self.ctx
        if c.fill_fraction is not None and c.fill_fraction >= c.cfg.full_fraction:
            return True
        return len(c.loads) == c.loads.maxlen and statistics.median(c.loads) >= c.cfg.full_load_n

    def update(self) -> Status:
        c = self.ctx
        cfg = c.cfg
        cyc = c.cycle
        tilted = self._tilted()
        if tilted and not self.lifted:
            c.emit("dig_lifted", f"roll {math.degrees(c.roll_rad):.1f} deg, pitch {math.degrees(c.pitch_rad):.1f} deg")
        self.lifted = tilted
        depth_hold = cfg.tool_dig_rad - cfg.dig_pitch_gain * max(0.0, c.pitch_rad)
        c.tool_rad = cfg.tool_carry_rad if tilted else max(cfg.tool_carry_rad, depth_hold)
        if c.tool is not None:
            c.loads.append(c.tool.load_n)
        if self.jam.jammed(c.stamp_s, c.tool):
            c.drive(0.0, 0.0)
            c.emit("jam", self.name)
            return Status.FAILURE
        pose = c.pose
        yaw = cyc.dig_start.yaw_rad if cyc is not None else self.start.yaw_rad
        ux, uy = math.cos(yaw), math.sin(yaw)
        along = (pose.x_m - self.start.x_m) * ux + (pose.y_m - self.start.y_m) * uy
        length = (cyc.dig_m if cyc is not None else 1.0) + cfg.dig_extra_m
        if self._full() or along >= length:
            c.drive(0.0, 0.0)
            return Status.SUCCESS
        if self.elapsed() > 3.0 * length / cfg.dig_speed_mps + 10.0:
            c.drive(0.0, 0.0)
            c.emit("jam", "dig made no progress")
            return Status.FAILURE
        lx, ly = (cyc.dig_start.x_m, cyc.dig_start.y_m) if cyc is not None else (self.start.x_m, self.start.y_m)
        lateral = -(pose.x_m - lx) * uy + (pose.y_m - ly) * ux
        psi = wrap_angle_rad(pose.yaw_rad - yaw)
        w = -cfg.line_gain_per_m * lateral - cfg.heading_gain_per_s * psi
        c.drive(cfg.dig_speed_mps, max(-0.3, min(0.3, w)))
        return Status.RUNNING


class _Straight(_Leaf):
    """Drive straight (negative speed: backwards) for ``distance_m`` on the estimate."""

    def __init__(self, ctx: _Ctx, name: str, distance_m: float, speed_mps: float) -> None:
        super().__init__(name, ctx)
        self.distance = distance_m
        self.speed = speed_mps
        self.start = Pose2D(0.0, 0.0, 0.0)

    def initialise(self) -> None:
        super().initialise()
        self.start = self.ctx.pose

    def update(self) -> Status:
        c = self.ctx
        moved = c.pose.distance_to_m(self.start.x_m, self.start.y_m)
        if moved >= self.distance or self.elapsed() > c.cfg.backoff_timeout_s:
            c.drive(0.0, 0.0)
            return Status.SUCCESS
        c.drive(self.speed, 0.0)
        return Status.RUNNING


class _Tip(_Leaf):
    """Tip the tool back; SUCCESS once it has emptied (load below ``empty_load_n`` for ``dump_settle_s``)
    or after ``dump_timeout_s``."""

    def __init__(self, ctx: _Ctx) -> None:
        super().__init__("tip", ctx)
        self.empty_since: float | None = None

    def initialise(self) -> None:
        super().initialise()
        self.empty_since = None

    def update(self) -> Status:
        c = self.ctx
        cfg = c.cfg
        c.tool_rad = cfg.tool_dump_rad
        c.drive(0.0, 0.0)
        t = c.tool
        tipped = t is not None and abs(t.position_rad - cfg.tool_dump_rad) <= cfg.tool_tolerance_rad
        if tipped and t is not None and t.load_n <= cfg.empty_load_n:
            if self.empty_since is None:
                self.empty_since = c.stamp_s
            if c.stamp_s - self.empty_since >= cfg.dump_settle_s:
                return Status.SUCCESS
        else:
            self.empty_since = None
        if self.elapsed() >= cfg.dump_timeout_s:
            return Status.SUCCESS
        return Status.RUNNING


class _Measure(_Leaf):
    """Ask the caller to scan the site (event ``measure_requested``); wait for ``measurement_done`` (the
    caller replans from the scan) or ``measure_timeout_s``."""

    def initialise(self) -> None:
        super().initialise()
        self.ctx.measure_done = False
        self.ctx.emit("measure_requested")

    def update(self) -> Status:
        c = self.ctx
        c.drive(0.0, 0.0)
        c.tool_rad = c.cfg.tool_carry_rad
        if c.measure_done or self.elapsed() >= c.cfg.measure_timeout_s:
            return Status.SUCCESS
        return Status.RUNNING


class _IsLost(_Leaf):
    """Lost (with hysteresis): enter when the estimate says lost or sigma > ``relocalize_sigma_m``; leave
    when it does not and sigma < ``relocalized_sigma_m``."""

    def update(self) -> Status:
        c = self.ctx
        est = c.estimate
        if est is None:
            return Status.FAILURE
        sigma = est.position_sigma_m()
        flagged = est.lost and c.cfg.relocalize_when_lost
        if not c.lost and (flagged or sigma > c.cfg.relocalize_sigma_m):
            c.lost = True
            c.emit("relocalize_started", f"sigma {sigma:.2f} m")
        elif c.lost and not flagged and sigma < c.cfg.relocalized_sigma_m:
            c.lost = False
            c.emit("relocalized", f"sigma {sigma:.2f} m")
        return Status.SUCCESS if c.lost else Status.FAILURE


class _Relocalize(_GoTo):
    """Drive (dead reckoning) to the relocalization pose with the tool in carry, hold still facing the tags for
    ``relocalize_dwell_s``, then turn slowly in place (looking for them); RUNNING until the lost guard lets
    go (``until_sigma_m`` None) or, as a checkpoint, until the sigma is below ``relocalized_sigma_m``
    (SUCCESS; also after ``checkpoint_timeout_s``): with ``fix_on_the_way`` wherever the rover is by then,
    else once it stands at the pose."""

    def __init__(
        self,
        ctx: _Ctx,
        pose: Pose2D,
        checkpoint: bool = False,
        checkpoint_sigma_m: float | None = None,
        fix_on_the_way: bool = False,
    ) -> None:
        super().__init__(ctx, "checkpoint" if checkpoint else "relocalize", lambda: pose, ctx.cfg.tool_carry_rad)
        self.checkpoint = checkpoint
        self.fix_on_the_way = fix_on_the_way
        self.checkpoint_sigma_m = ctx.cfg.checkpoint_sigma_m if checkpoint_sigma_m is None else checkpoint_sigma_m
        self.arrived: float | None = None
        self.skip = False

    def initialise(self) -> None:
        super().initialise()
        self.arrived = None
        est = self.ctx.estimate
        self.skip = self.checkpoint and (est is None or est.position_sigma_m() <= self.checkpoint_sigma_m)
        if self.checkpoint and not self.skip:
            self.ctx.emit("checkpoint", f"sigma {est.position_sigma_m() if est else 0.0:.2f} m")

    def update(self) -> Status:
        c = self.ctx
        cfg = c.cfg
        if self.skip:
            return Status.SUCCESS
        est = c.estimate
        seen = est is not None and est.position_sigma_m() < cfg.relocalized_sigma_m
        if self.checkpoint and seen and (self.fix_on_the_way or self.arrived is not None):  # the tags fixed it
            c.drive(0.0, 0.0)
            return Status.SUCCESS
        if self.checkpoint and self.elapsed() > cfg.checkpoint_timeout_s:
            return Status.SUCCESS
        if self.arrived is None:
            if self.elapsed() > cfg.nav_timeout_s:
                self.initialise()
            status = super().update()
            if status is Status.RUNNING:
                return Status.RUNNING
            self.arrived = c.stamp_s
        c.tool_rad = cfg.tool_carry_rad
        if c.stamp_s - self.arrived < cfg.relocalize_dwell_s:
            c.drive(0.0, 0.0)
        else:
            c.drive(0.0, cfg.relocalize_turn_radps)
        return Status.RUNNING


class _Park(_GoTo):
    """Drive to the park pose (tool in carry) and stay; emits ``parked`` once there."""

    def __init__(self, ctx: _Ctx, pose: Pose2D) -> None:
        super().__init__(ctx, "park", lambda: pose, ctx.cfg.tool_carry_rad)
        self.parked = False

    def update(self) -> Status:
        if self.parked:
            self.ctx.drive(0.0, 0.0)
            self.ctx.tool_rad = self.ctx.cfg.tool_carry_rad
            return Status.RUNNING
        status = super().update()
        if status is not Status.RUNNING:
            self.parked = True
            self.ctx.emit("parked", "" if status is Status.SUCCESS else "park pose not reached")
            self.ctx.drive(0.0, 0.0)
        return Status.RUNNING


def _dig_stand(cycle: Cycle, lip_ahead_m: float) -> Pose2D:
    s = cycle.dig_start
    return Pose2D(s.x_m - lip_ahead_m * math.cos(s.yaw_rad), s.y_m - lip_ahead_m * math.sin(s.yaw_rad), s.yaw_rad)


def default_follower_factory(max_speed_mps: float = 0.3, max_yaw_rate_radps: float = 0.6) -> FollowerFactory:
    """Pure pursuit with the mission's limits (the regulated follower can replace it)."""

    def make() -> Follower:
        return PurePursuit(PurePursuitParams(max_speed_mps=max_speed_mps, max_yaw_rate_radps=max_yaw_rate_radps))

    return make


class Executive:
    """Runs ``cycles`` (the planner's, in order) one after another; ``replace_cycles`` swaps the queue after a
    replan. ``limits``/``model`` (optional): a cycle starts only if ``cycle_fits`` the time (``stamp_s`` -
    ``start_s``) and the battery's energy left (``energy_offset_wh`` + ``BatteryState.energy_used_wh``: the
    offset carries the energy of a run resumed after a restart)."""

    def __init__(
        self,
        cycles: Sequence[Cycle],
        config: ExecutiveConfig = ExecutiveConfig(),
        follower_factory: FollowerFactory | None = None,
        router: Router | None = None,
        limits: Limits | None = None,
        model: RoverModel | None = None,
        start_s: float = 0.0,
        energy_offset_wh: float = 0.0,
    ) -> None:
        factory = follower_factory or default_follower_factory(config.max_speed_mps, config.max_yaw_rate_radps)
        self.config = config
        self.ctx = _Ctx(config, factory, router, loads=deque(maxlen=config.load_window))
        self.queue: deque[Cycle] = deque(cycles)
        self.limits = limits
        self.model = model
        self.start_s = start_s
        self.energy_offset_wh = energy_offset_wh
        self.used_wh = energy_offset_wh
        self.completed: list[int] = []
        self.aborted: list[int] = []
        self.finished = False  # no cycle left (parking)
        self._root: py_trees.behaviour.Behaviour | None = None
        self._cycle_tree: py_trees.behaviour.Behaviour | None = None
        self._still_since: float | None = None
        self._nudge_until: float | None = None
        self._nudge_dir = 1.0
        self._park_pose: Pose2D | None = config.park_pose

    # -- caller API ---------------------------------------------------------------------------------

    @property
    def current_cycle(self) -> Cycle | None:
        return self.ctx.cycle

    @property
    def lost(self) -> bool:
        return self.ctx.lost

    def replace_cycles(self, cycles: Sequence[Cycle]) -> None:
        """Replace the cycles still to start (after a replan); the running cycle carries on."""
        self.queue = deque(cycles)
        if self.finished and self.queue:
            self.finished = False
            self._root = None

    def measurement_done(self) -> None:
        """The scan asked for by ``measure_requested`` is taken (and the plan updated)."""
        self.ctx.measure_done = True

    # -- the tick -----------------------------------------------------------------------------------

    def step(
        self,
        stamp_s: float,
        estimate: PoseEstimate,
        tool: ToolState | None,
        battery: BatteryState | None = None,
        fill_fraction: float | None = None,
        pivot_x_m: float = 0.0,
        tilt_rad: tuple[float, float] = (0.0, 0.0),
    ) -> tuple[DriveCommand, ToolCommand, tuple[ExecutiveEvent, ...]]:
        """One tick: the drive and tool commands and the events of this tick. ``pivot_x_m``: where the rover's
        turns in place pivot now (the pipeline's ``turn_pivot_x_m``; ``_GoTo`` steers that point). ``tilt_rad``:
        base_link's (roll, pitch) now (the pipeline's ``tilt_rad``; the dig cuts only while level)."""
        if not math.isfinite(stamp_s):
            raise ValueError(f"Executive.step: stamp_s must be finite, got {stamp_s!r}")
        if not math.isfinite(pivot_x_m):
            raise ValueError(f"Executive.step: pivot_x_m must be finite, got {pivot_x_m!r}")
        if len(tilt_rad) != 2 or not all(math.isfinite(a) for a in tilt_rad):
            raise ValueError(f"Executive.step: tilt_rad must be two finite angles (roll, pitch), got {tilt_rad!r}")
        c = self.ctx
        if c.estimate is not None and stamp_s < c.stamp_s:
            raise ValueError(f"Executive.step: time went backwards ({c.stamp_s} -> {stamp_s})")
        c.stamp_s, c.estimate, c.tool, c.fill_fraction = stamp_s, estimate, tool, fill_fraction
        c.pivot_x_m = pivot_x_m
        c.roll_rad, c.pitch_rad = tilt_rad
        c.events = []
        c.v = c.w = 0.0
        if battery is not None:
            self.used_wh = self.energy_offset_wh + battery.energy_used_wh
        if self._park_pose is None:
            self._park_pose = estimate.pose  # park where the run started
        if self._root is None:
            self._next_cycle()
        root = self._root
        if root is None:
            raise ValueError("Executive: no tree")
        root.tick_once()
        tree = self._cycle_tree
        if tree is not None and tree.status in (Status.SUCCESS, Status.FAILURE):
            cyc = c.cycle
            if cyc is not None:
                if tree.status is Status.SUCCESS:
                    self.completed.append(cyc.index)
                else:
                    self.aborted.append(cyc.index)
                    c.emit("cycle_aborted")
            root.stop(Status.INVALID)
            self._next_cycle()
        v, w = self._still_rule(stamp_s, c.v, c.w)
        cfg = self.config
        v = max(-cfg.max_speed_mps, min(cfg.max_speed_mps, v))
        w = max(-cfg.max_yaw_rate_radps, min(cfg.max_yaw_rate_radps, w))
        return DriveCommand(stamp_s, v, w), ToolCommand(stamp_s, c.tool_rad), tuple(c.events)

    # -- internals ----------------------------------------------------------------------------------

    def _still_rule(self, stamp_s: float, v: float, w: float) -> tuple[float, float]:
        """Lunabotics: never stand still longer than ``max_still_s``: replace the command by a nudge."""
        cfg = self.config
        if not cfg.lunabotics:
            return v, w
        if self._nudge_until is not None:
            if stamp_s < self._nudge_until:
                return self._nudge_dir * cfg.nudge_speed_mps, 0.0
            self._nudge_until = None
            self._nudge_dir = -self._nudge_dir  # the next nudge goes back: the rover stays put on average
            self._still_since = stamp_s
        if abs(v) > cfg.still_speed_mps or abs(w) > 0.05:
            self._still_since = None
            return v, w
        if self._still_since is None:
            self._still_since = stamp_s
        if stamp_s - self._still_since >= cfg.max_still_s:
            self._nudge_until = stamp_s + cfg.nudge_m / cfg.nudge_speed_mps
            self.ctx.emit("nudge", f"still {stamp_s - self._still_since:.0f} s")
            return self._nudge_dir * cfg.nudge_speed_mps, 0.0
        return v, w

    def _fits(self, cyc: Cycle) -> str | None:
        if self.limits is None or self.model is None:
            return None
        elapsed = max(0.0, self.ctx.stamp_s - self.start_s)
        return cycle_fits(cyc.duration_s, cyc.energy_wh, elapsed, self.used_wh, self.limits, self.model)

    def _next_cycle(self) -> None:
        c = self.ctx
        c.phases_done = set()
        c.cycle = None
        cyc: Cycle | None = None
        while self.queue:
            cand = self.queue.popleft()
            why = self._fits(cand)
            if why is None:
                cyc = cand
                break
            c.cycle = cand
            c.emit("cycle_skipped", f"does not fit: {why}")
            c.cycle = None
            self.queue.clear()  # the rest would not fit either (they come later in mission time)
        guard = py_trees.composites.Sequence(
            "relocalize guard",
            memory=False,
            children=[_IsLost("lost?", c), _Relocalize(c, self._relocalize_pose())],
        )
        if cyc is None:
            self.finished = True
            self._cycle_tree = None
            park = _Park(c, self._park_pose if self._park_pose is not None else c.pose)
            self._root = py_trees.composites.Selector("executive", memory=False, children=[guard, park])
            return
        c.cycle = cyc
        self._cycle_tree = self._build_cycle(cyc)
        self._root = py_trees.composites.Selector("executive", memory=False, children=[guard, self._cycle_tree])

    def _relocalize_pose(self) -> Pose2D:
        if self.config.relocalize_pose is not None:
            return self.config.relocalize_pose
        if self._park_pose is not None:
            return self._park_pose
        return self.ctx.pose

    def _build_cycle(self, cyc: Cycle) -> py_trees.behaviour.Behaviour:
        c = self.ctx
        cfg = self.config
        carry, dig_rad = cfg.tool_carry_rad, cfg.tool_dig_rad
        stand = _dig_stand(cyc, cfg.lip_ahead_m)
        attempt = py_trees.composites.Sequence(
            "dig attempt",
            memory=True,
            children=[_MoveTool(c, "lower", dig_rad), _DigForward(c), _MoveTool(c, "raise", carry)],
        )
        recover = py_trees.composites.Sequence(
            "recover",
            memory=True,
            children=[
                _MoveTool(c, "raise (recover)", carry),
                _Straight(c, "back off (recover)", cfg.backoff_m, -cfg.backoff_speed_mps),
                _Fail("retry", c),
            ],
        )
        dig = py_trees.decorators.Retry(
            "dig (retry on jam)",
            py_trees.composites.Selector("dig or recover", memory=True, children=[attempt, recover]),
            num_failures=cfg.jam_retries + 1,
        )
        phases: list[py_trees.behaviour.Behaviour] = [
            _phase(c, "start", [_Emit(c, "cycle_started")]),
            _phase(c, "checkpoint", [_Relocalize(c, self._relocalize_pose(), checkpoint=True, fix_on_the_way=True)]),
            _phase(c, "dig", [_GoTo(c, "approach dig", lambda: stand, carry), dig, _Emit(c, "dug")]),
        ]
        if cfg.haul_checkpoint_sigma_m is not None:
            reloc = _Relocalize(
                c, self._relocalize_pose(), checkpoint=True, checkpoint_sigma_m=cfg.haul_checkpoint_sigma_m
            )
            phases.append(_phase(c, "haul checkpoint", [reloc]))
        phases += [
            _phase(c, "haul", [_GoTo(c, "haul", lambda: cyc.dump_pose, carry)]),
            _phase(
                c,
                "dump",
                [
                    _Tip(c),
                    _Emit(c, "dumped"),
                    _MoveTool(c, "raise after dump", carry),
                    _Straight(c, "back off", cfg.backoff_m, -cfg.backoff_speed_mps),
                ],
            ),
        ]
        # the cycle counts once dumped (the shell journals it); the scan and replan come after
        phases.append(_phase(c, "completed", [_Emit(c, "cycle_completed")]))
        if cfg.measure:
            phases.append(_phase(c, "measure", [_Measure("measure", c)]))
        return py_trees.composites.Sequence(f"cycle {cyc.index}", memory=True, children=phases)
