"""``rover sim build``: a construction mission in PyBullet: plan, run the executive in lockstep, journal every
cycle, judge the berm; resume after a kill.

The shell around the pure parts: the world (``sim``: the mission's site preset with its boulders, craters and
diggable soil, the start-zone fiducials), the rover's ports (``hw.rover_io.RoverIO``), the pipeline's
perceive, estimate, map and limit stages (``autonomy.runtime.pipeline``), the planner, the behaviour-tree
executive and its navigation (``autonomy.construction``), and the crash-safe journal (``targets.journal``).
Each tick (``hazards="map"``, the default: the rover's own stack)::

    frame = io.read();  observations = pipeline.perceive(frame);  estimate = pipeline.estimate(frame, ...)
    pipeline.map_depth(frame, estimate)                     depth -> elevation map + hazard votes (terrain.py)
    at 2 Hz: cm = construction_costmap(terrain, ...)        the costmap, the excavation zone drivable
             port.update_costmap(cm, pose)                  -> the active PlannedNavigator (path check/replan)
    port.observe(estimate, measured speed, turn pivot)
    drive, tool, events = step_executive(...)              executive.step with the frame, turn pivot and tilt
                                                            a GoTo steps its PlannedNavigator (one per goal)
    drive = pipeline.limit(frame, drive, estimate)          e-stop, stale inputs, lost (unless relocalizing)
    drive = port.guard(drive, pose)                         collision monitor + the bucket's sweep in turns
    io.write(drive, tool); journal the events; world.clock.sleep_until(next tick)

Each stage is timed (``summary["profile"]``; ``tick`` is the whole onboard loop). ``hazards="oracle"`` is a
labelled comparison (pure pursuit around the site's true boulders and craters, ``disc_router``, no mapping);
``hazards="none"`` drives straight lines. The camera renders a 640x480 frame only when a start-zone tag could
be in view (``SimSensorProfile.camera_render = "fiducials"``: the detector is its only consumer); the
160x120 depth stream runs at 3 Hz throughout.

Measure (the executive's placeholder): on ``measure_requested`` the shell takes the site's elevation scan
(noise-free, a stand-in for the rover's depth map), replans from it (``replan``, cycle indices continue) and
journals the new plan.

Journal (``DIR/journal.log``): the plan, ``cycle_started`` and ``cycle_completed`` (with the volume the bucket
emptied in that cycle) records, each fsync'd before the run goes on; a cycle counts once its completion record
is on disk. Every plan record written after a cycle also carries a ``resume`` section: mission time, energy
and contacts so far, and where each completed cycle's soil went (its measured dumps).

Resume (``resume=True``): PyBullet's state cannot be restored after a kill, so the site is re-created from
its seed and every completed cycle is re-applied to the soil map: the journaled volume is cut from the
cycle's planned dig strip and dumped where the journal says it landed (the measured dumps of the last
``resume`` section; for a cycle completed after that record, at its planned pile). The judge's "before" scan
is taken before this, so it sees the re-applied berm. The rover restarts at its start pose; a cycle that
had started but not completed is abandoned (its soil moved before the kill is lost) and its index is never
reused: the replan numbers its cycles after every index already planned, so no cycle is completed twice.
Mission time continues from the last journaled stamp; energy and contacts from the last ``resume`` section.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autonomy.construction.executive import Executive, ExecutiveConfig, ExecutiveEvent
from autonomy.construction.grid import HeightGrid
from autonomy.construction.navigation import (
    CONSTRUCTION_INSCRIBED_RADIUS_M,
    NavigationPort,
    construction_costmap,
    construction_navigator_params,
    construction_terrain_params,
)
from autonomy.construction.planner import Plan, default_baseline, plan_mission, replan
from autonomy.construction.routes import disc_router
from autonomy.mission.mission_file import Mission
from autonomy.mission.site_zones import Box
from autonomy.msgs import Commands, DriveCommand, Pose2D, PoseEstimate, SensorFrame, ToolCommand
from autonomy.runtime.metrics import absolute_trajectory_error, position_nees
from autonomy.runtime.navigator import NavigatorParams
from autonomy.runtime.pipeline import Pipeline, PipelineConfig, RoverGeometry, mission_pipeline_config
from autonomy.runtime.profiler import StageProfiler
from autonomy.runtime.rates import RateGroup
from autonomy.runtime.terrain import TerrainParams
from targets.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    load_mission_or_report,
    require_construction,
    sim_progress,
)
from targets.cv_threads import sim_opencv_threads
from targets.journal import Journal, JournalState
from targets.run_folder import MapSnapshot, RunTrace, plot_paths, write_mcap, write_report_html
from targets.sim_run import sim_rover_geometry

if TYPE_CHECKING:
    from sim.backend import SimSensorProfile
    from sim.judge import ElevationScan
    from sim.world import World

CONTROL_HZ = 20.0
# map: the rover's own stack (depth -> elevation map + hazard votes -> costmap -> PlannedNavigator), the default;
# oracle: routes around the site's true boulders and craters (a labelled comparison); none: straight lines
HAZARD_SOURCES = ("map", "oracle", "none")
ORACLE_CLEARANCE_M = 0.5  # rover half-width (wheels: 0.34 m) plus a tracking and estimate margin
ORACLE_MIN_CLEARANCE_M = 0.2  # where no route keeps the margin, it shrinks down to this (then: straight)
TARGET_SPILL_M = 0.2  # the target box grown by this much reads drivable on the costmap (the berm's piles)
BUCKET_SWING_M = 0.15  # more room around boulders: the bucket reaches 0.73 m ahead and swings in turns
JOURNAL_NAME = "journal.log"
# the judge's tip-over count: the true body past this tilt from upright (deg) is one tip-over, until it is
# back below TIPPED_UPRIGHT_DEG (build seed 3 had rolled 160 deg at 777 s in its own pit)
TIPPED_OVER_DEG = 45.0
TIPPED_UPRIGHT_DEG = 20.0
MAP_LOG_PERIOD_S = 10.0  # the costmap goes to run.mcap at most this often (simulated seconds)


class RunStopped(Exception):
    """Raised by a ``progress`` callback to stop a run at once (as a kill would)."""


@dataclass(frozen=True, slots=True)
class ConstructionResult:
    summary: dict[str, Any]
    out_dir: Path


def step_executive(
    executive: Executive, pipeline: Pipeline, frame: SensorFrame, estimate: PoseEstimate
) -> tuple[DriveCommand, ToolCommand, tuple[ExecutiveEvent, ...]]:
    """The executive's tick fed from the pipeline: the frame's tool and battery, the turn pivot (the payload)
    and the IMU's tilt (the dig's depth control). The build and the loop benchmark both step it here."""
    return executive.step(
        frame.stamp_s,
        estimate,
        frame.tool,
        frame.battery,
        pivot_x_m=pipeline.turn_pivot_x_m,
        tilt_rad=pipeline.tilt_rad,
    )


def default_profile(hazards: str = "map") -> SimSensorProfile:
    """The construction run's sensors. ``map`` (the rover's own navigation): the default RGB-D module (640x480
    RGB at 3 Hz, 160x120 depth from the same render) that the terrain model maps from. ``oracle``/``none``:
    the RGB camera (start-zone fiducials) at 2 Hz, no depth stream."""
    from sim.backend import SimSensorProfile

    if hazards == "map":
        # the RGB frame's only consumer is the fiducial detector: render it only when a tag could be in view
        # (``SimSensorProfile.camera_render``); the depth stream renders its own 160x120 image otherwise
        return SimSensorProfile(camera_render="fiducials")
    return SimSensorProfile(camera_rate_hz=2.0, depth_enabled=False)


def scan_to_grid(scan: ElevationScan, like: HeightGrid) -> HeightGrid:
    """A judge's elevation scan resampled (bilinear) onto the planner's grid ``like`` (posts off the scan take
    its nearest edge)."""
    h = np.asarray(scan.heights_m, dtype=np.float64)
    ny, nx = h.shape
    xx, yy = like.post_xy()
    fx = np.clip((xx - scan.origin_xy[0]) / scan.cell_xy_m[0], 0.0, nx - 1.0)
    fy = np.clip((yy - scan.origin_xy[1]) / scan.cell_xy_m[1], 0.0, ny - 1.0)
    x0 = np.minimum(np.floor(fx).astype(np.intp), nx - 2)
    y0 = np.minimum(np.floor(fy).astype(np.intp), ny - 2)
    tx, ty = fx - x0, fy - y0
    z = (
        h[y0, x0] * (1 - tx) * (1 - ty)
        + h[y0, x0 + 1] * tx * (1 - ty)
        + h[y0 + 1, x0] * (1 - tx) * ty
        + h[y0 + 1, x0 + 1] * tx * ty
    )
    return HeightGrid(np.asarray(z, dtype=np.float64), like.origin_xy, like.cell_m)


def construction_stack_config(
    mission: Mission,
    geometry: RoverGeometry,
    cfg: ExecutiveConfig,
    mapping: bool = True,
    navigator: NavigatorParams | None = None,
    terrain: TerrainParams | None = None,
) -> tuple[PipelineConfig, NavigatorParams, tuple[Box, Box]]:
    """The berm build's onboard configuration, shared by the sim run and ``rover bench``'s autonomy-only replay:
    the pipeline's (perceive, estimate, map, limit; the executive navigates, so the pipeline's own waypoint
    navigation stays idle), the planned navigation's parameters (default ``construction_navigator_params``), and
    the zones the bucket may drive into: the excavation zone (cut edges) and the target box with a spill margin
    (the berm's own piles read as lethal steps and stopped the bucket's approach to the next dump); the mission's
    zones, never the sim's rocks (the rules keep rocks in the obstacle zone). ``terrain`` defaults to
    ``construction_terrain_params``, with the circular planner's inscribed radius when it plans."""
    zones = mission.site.zones
    if zones is None:
        raise ValueError(f"{mission.source}: site: a construction run needs a site preset with zones")
    pipe_cfg = mission_pipeline_config(replace(mission, waypoints=()), mission.rovers[0], geometry)
    nav_params = navigator if navigator is not None else construction_navigator_params(cfg.max_speed_mps)
    if terrain is None:
        terrain = construction_terrain_params(
            CONSTRUCTION_INSCRIBED_RADIUS_M if nav_params.planner == "circular" else None
        )
    soft_zones = (zones.excavation_zone, zones.target_box.shrunk(-TARGET_SPILL_M) or zones.target_box)
    # the arena's walls correct the estimate (``PipelineConfig.walls``, from ``mission_pipeline_config``), fitted
    # with the IMU tilt. Measured on UCF seeds 1-10 (eleventh session): ATE 0.015-0.059 m on 9 seeds (0.08-0.15
    # without), 874,361 cm3 in 69 cycles and 1 contact (901,208 / 72 / 1 without), and almost no tag checkpoints.
    # Fitted level they had cost most of the cycles (fifth session): pitched in the dig, the floor ahead read as wall
    return replace(pipe_cfg, navigation="waypoints", mapping=mapping, terrain=terrain), nav_params, soft_zones


def executive_config(mission: Mission) -> ExecutiveConfig:
    """The executive's settings for ``mission``: its limits, the Lunabotics rule in lunabotics mode, and a
    relocalization pose in front of the start-zone fiducial bar."""
    zones = mission.site.zones
    start = mission.rovers[0].start
    reloc: Pose2D | None = None
    if zones is not None and zones.fiducial_bar is not None:
        bar = zones.fiducial_bar
        mx, my = (bar.x0_m + bar.x1_m) / 2, (bar.y0_m + bar.y1_m) / 2
        fx, fy = math.cos(bar.facing_yaw_rad), math.sin(bar.facing_yaw_rad)
        stand = 1.6  # m in front of the bar: all three tags in the camera's view
        reloc = Pose2D(mx + stand * fx, my + stand * fy, math.atan2(-fy, -fx))
    return ExecutiveConfig(
        max_speed_mps=min(0.3, mission.limits.max_speed_mps),
        max_yaw_rate_radps=mission.limits.max_yaw_rate_radps,
        lunabotics=mission.mode == "lunabotics",
        relocalize_pose=reloc,
        park_pose=start,
        # the lost guard pre-empts a haul in the middle of the obstacle zone: only past 0.7 m (the pipeline stops
        # the rover at 0.75 m); the checkpoint before each cycle (sigma > 0.15 m) visits the tags in between
        relocalize_sigma_m=0.7,
        # and after the dig when the sigma left for the haul is short (~0.01 m/s of dead reckoning on a 40 s haul)
        haul_checkpoint_sigma_m=0.3,
    )


def _planned_cycles(state: JournalState) -> dict[int, dict[str, Any]]:
    """Every cycle any plan record of the journal listed, by index (the latest listing wins)."""
    out: dict[int, dict[str, Any]] = {}
    for rec in state.records:
        if rec["kind"] == "plan":
            for c in rec["plan"].get("cycles", []):
                out[int(c["index"])] = c
    return out


def _last_resume(state: JournalState) -> dict[str, Any]:
    for rec in reversed(state.records):
        if rec["kind"] == "plan" and isinstance(rec["plan"].get("resume"), dict):
            return dict(rec["plan"]["resume"])
    return {}


def reapply_completed(world: World, state: JournalState, cut_radius_m: float, max_cut_m: float) -> float:
    """Re-apply the journal's completed cycles to the world's soil (see the module docstring); returns the
    volume re-applied (m^3)."""
    from sim.regolith import Bucket

    planned = _planned_cycles(state)
    dumps: dict[str, list[list[float]]] = _last_resume(state).get("dumps", {})
    total = 0.0
    for k in state.completed_indices():
        vol = float(state.completed[k].get("volume_m3", 0.0))
        c = planned.get(k)
        if vol <= 0 or c is None:
            continue
        bucket = Bucket(vol)
        (sx, sy, _yaw), (ex, ey) = c["dig_start"], c["dig_end_xy"]
        length = math.hypot(ex - sx, ey - sy)
        n = max(1, math.ceil(length / cut_radius_m))
        for depth_pass in range(1, 6):  # deeper passes until the strip gave the volume
            for i in range(n + 1):
                if bucket.free_m3 <= 1e-9:
                    break
                f = i / n
                world.dig(sx + f * (ex - sx), sy + f * (ey - sy), cut_radius_m, max_cut_m * depth_pass, bucket)
            if bucket.free_m3 <= 1e-9:
                break
        where = dumps.get(str(k)) or [[c["pile_xy"][0], c["pile_xy"][1], bucket.contents_m3]]
        carried = bucket.contents_m3
        share = sum(float(d[2]) for d in where) or 1.0
        for x, y, v in where:
            part = Bucket(max(carried * float(v) / share, 1e-12))
            part.contents_m3 = carried * float(v) / share
            world.dump(part, float(x), float(y))
        total += carried
    return total


@sim_opencv_threads  # the same seed gives the same run on any machine
def run_construction_in_sim(
    mission: Mission,
    seed: int,
    out_dir: Path,
    resume: bool = False,
    max_sim_s: float | None = None,
    progress: Callable[[float, float], None] | None = None,
    profile: SimSensorProfile | None = None,
    config: ExecutiveConfig | None = None,
    write_files: bool = True,
    hazards: str = "map",
    navigator: NavigatorParams | None = None,
    terrain: TerrainParams | None = None,
) -> ConstructionResult:
    """Build ``mission``'s structures in simulation (one rover), journaling to ``out_dir/journal.log``.

    ``resume``: continue the journal in ``out_dir`` (see the module docstring); without it an existing journal
    is an error. ``max_sim_s``: stop after this much simulated time in this session (as a kill would, but
    the summary is written). ``progress(mission_s, limit_s)``: once per simulated second; it may raise
    ``RunStopped`` to stop the run at once (the journal is left as a kill leaves it; nothing else is
    written). ``profile``: the rover's sensors (default ``default_profile(hazards)``). ``hazards``: how the
    executive navigates: ``map`` (the rover's own stack: depth frames -> terrain model -> costmap ->
    ``PlannedNavigator`` per goal, ``autonomy.construction.navigation``), ``oracle`` (pure pursuit around the
    site's true boulders and craters by ``disc_router``: a labelled comparison) or ``none`` (straight lines).
    ``navigator`` / ``terrain``: the planned navigation's and the terrain model's parameters (defaults:
    ``construction_navigator_params()`` and ``construction_terrain_params()``, with the circular planner's
    inscribed radius when it plans)."""
    from sim.faults import FaultInjector, faults_from_specs
    from sim.run_judge import RunJudge
    from sim.sites import make_site, preset
    from sim.world import World

    if hazards not in HAZARD_SOURCES:
        raise ValueError(f"run_construction_in_sim: hazards must be one of {HAZARD_SOURCES}, got {hazards!r}")
    if len(mission.rovers) != 1:
        raise ValueError(f"{mission.source}: rovers: the construction runner drives exactly one rover for now")
    if not mission.structures or mission.site.zones is None:
        raise ValueError(f"{mission.source}: structures: a construction run needs structures and a site preset")
    zones = mission.site.zones
    if zones is None:
        raise ValueError(f"{mission.source}: site: a construction run needs a site preset with zones")
    spec = mission.rovers[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / JOURNAL_NAME
    if jpath.exists() and jpath.stat().st_size > 0 and not resume:
        raise ValueError(f"{jpath}: a journal exists; resume it (--resume) or choose another folder")
    wall0 = time.perf_counter()
    site = make_site(preset(mission.site.preset), seed)
    prof = profile if profile is not None else default_profile(hazards)
    cfg = config if config is not None else executive_config(mission)
    journal = Journal(jpath)
    world = World(seed, mission.site.beacons, site=site)
    try:
        rover = world.add_rover(spec.rover_id, spec.start, prof)
        judge = RunJudge(world)  # the "before" scan: the pristine site
        grid0 = default_baseline(zones)
        baseline = scan_to_grid(judge.before, grid0)
        state = journal.state
        prior = _last_resume(state) if resume else {}
        if prior.get("seed", seed) != seed:
            raise ValueError(f"{jpath}: the journaled run used seed {prior['seed']}, not {seed}: resume with it")
        t_offset = 0.0
        reapplied = 0.0
        if resume and state.records:
            stamps = [float(r["t_s"]) for r in state.records if "t_s" in r] + [float(prior.get("t_s", 0.0))]
            t_offset = max(stamps)
            reapplied = reapply_completed(world, state, prof.cut_radius_m, prof.max_cut_depth_m)
        energy0 = float(prior.get("energy_wh", 0.0))
        # the mission's scheduled faults (``sim.faults``), their windows in mission time: a resumed session's
        # world clock starts at 0 where the mission's stands at t_offset
        rover_faults = [
            replace(f, start_s=f.start_s - t_offset, end_s=f.end_s - t_offset)
            for f in faults_from_specs(mission.faults, spec.rover_id)
        ]
        if rover_faults:
            FaultInjector(rover, rover_faults)  # wraps the rover's ports and hooks its steps
        contacts0 = int(prior.get("contacts", 0))
        dumps_by_cycle: dict[str, list[list[float]]] = {
            str(k): v for k, v in dict(prior.get("dumps", {})).items() if int(k) in state.completed
        }
        next_index = max([*_planned_cycles(state), -1]) + 1
        used0 = {spec.rover_id: energy0}

        def resume_info(t_s: float) -> dict[str, Any]:
            return {
                "t_s": t_s,
                "energy_wh": energy0 + rover.energy_used_wh,
                "contacts": contacts0 + sum(len(r.events) for r in judge.recorders.values()),
                "dumps": dumps_by_cycle,
                "seed": seed,
            }

        def write_plan(plan: Plan, t_s: float) -> None:
            journal.write_plan(plan.to_dict() | {"resume": resume_info(t_s)})

        if resume and state.records:
            plan = replan(
                mission,
                baseline,
                scan_to_grid(world.elevation_scan(), grid0),
                elapsed_s=min(t_offset, mission.limits.time_s),
                used_wh=used0,
                first_index=next_index,
            )
        else:
            plan = plan_mission(mission, baseline=baseline)
        write_plan(plan, t_offset)
        ideal_rate = plan.ideal_cycles_per_hour  # the bound of this session's first plan
        io = rover.io()
        # The pipeline's perceive, estimate, map and limit stages run here; the executive navigates. With ``map``
        # the terrain model's costmap feeds the executive's planned navigation (``NavigationPort``); the measure
        # step still scans the site (a stand-in, module docstring).
        honest = hazards == "map"
        pipe_cfg, nav_params, soft_zones = construction_stack_config(
            mission,
            sim_rover_geometry(io.drive),
            cfg,
            mapping=honest,
            navigator=navigator,
            terrain=terrain,
        )
        pipeline = Pipeline(pipe_cfg)
        port: NavigationPort | None = None
        planning = RateGroup("planning", pipe_cfg.planning_hz)
        if honest:
            port = NavigationPort(
                nav_params, dig_zones=soft_zones, terrain=pipeline.terrain, walls=pipeline.config.walls
            )
        router = None
        if hazards == "oracle":
            discs = [(b.x_m, b.y_m, b.diameter_m / 2 + BUCKET_SWING_M) for b in site.boulders]
            discs += [(c.x_m, c.y_m, c.diameter_m / 2) for c in site.craters]
            router = disc_router(discs, ORACLE_CLEARANCE_M, zones.arena, min_clearance_m=ORACLE_MIN_CLEARANCE_M)
        executive = Executive(
            plan.cycles,
            cfg,
            follower_factory=port.follower if port is not None else None,
            router=router,
            limits=mission.limits,
            model=spec.model,
            start_s=world.time_s - t_offset,
            energy_offset_wh=energy0,
        )
        trace = RunTrace(spec.rover_id)
        stage_prof = StageProfiler(time.perf_counter)  # the onboard loop's stages (wall time; not the physics)
        last_map_s = -math.inf
        events: list[ExecutiveEvent] = []
        cycle_marks: dict[int, int] = {}
        period = 1.0 / CONTROL_HZ
        limit_s = mission.limits.time_s
        t_start = world.time_s
        tick = t_start
        last_second = -1
        status, end_reason = "running", ""
        plan_count = 1
        max_tilt_deg, tip_overs, tipped = 0.0, 0, False  # the judge's: the true body's tilt from vertical
        while True:
            frame = io.read()
            mission_t = frame.stamp_s - t_start + t_offset
            t_tick = time.perf_counter()
            with stage_prof.stage("perceive"):
                observations = pipeline.perceive(frame)
            with stage_prof.stage("estimate"):
                estimate, _accepted = pipeline.estimate(frame, observations)
            cm = None
            if port is not None and pipeline.terrain is not None:
                with stage_prof.stage("map"):
                    pipeline.map_depth(frame, estimate)
                if planning.due(frame.stamp_s):
                    with stage_prof.stage("decide.costmap"):
                        cm = construction_costmap(
                            pipeline.terrain, zones.arena, zones.keep_out, soft_zones, (zones.obstacle_zone,)
                        )
                    with stage_prof.stage("decide.plan"):
                        port.update_costmap(cm, estimate.pose)
                port.observe(estimate, pipeline.measured_speed_mps, pipeline.turn_pivot_x_m)
            with stage_prof.stage("executive"):  # the tree, and the navigator's step inside a GoTo
                drive, tool, evs = step_executive(executive, pipeline, frame, estimate)
            with stage_prof.stage("limit"):
                final, reason = pipeline.limit(frame, drive, estimate)
                if reason == "localization lost" and executive.lost:
                    final, reason = drive, ""  # relocalizing: the executive drives to the tags on dead reckoning
                if port is not None and not reason:
                    final, reason = port.guard(final, estimate.pose)
            stage_prof.record("tick", time.perf_counter() - t_tick)
            if cm is not None and write_files and frame.stamp_s - last_map_s >= MAP_LOG_PERIOD_S:
                last_map_s = frame.stamp_s
                snap = MapSnapshot((cm.grid.origin_x_m, cm.grid.origin_y_m), cm.grid.resolution_m, cm.cost)
                trace.maps.append((mission_t, snap))
            io.write(Commands(spec.rover_id, final, tool))
            truth3 = rover.true_pose3d()
            truth = Pose2D(truth3.x_m, truth3.y_m, truth3.yaw_rad)
            tilt = math.degrees(math.acos(max(-1.0, min(1.0, math.cos(truth3.roll_rad) * math.cos(truth3.pitch_rad)))))
            max_tilt_deg = max(max_tilt_deg, tilt)
            if tilt > TIPPED_OVER_DEG and not tipped:
                tip_overs += 1
            tipped = tilt > TIPPED_OVER_DEG or (tipped and tilt > TIPPED_UPRIGHT_DEG)
            trace.t_s.append(mission_t)
            trace.true_pose.append((truth.x_m, truth.y_m, truth.yaw_rad))
            trace.est_pose.append((estimate.pose.x_m, estimate.pose.y_m, estimate.pose.yaw_rad))
            trace.sigma_m.append(estimate.position_sigma_m())
            trace.nees_xy.append(position_nees(estimate, truth))
            trace.tags_seen.append(len(observations))
            trace.tags_accepted.append(_accepted)
            trace.cmd.append((final.linear_x_mps, final.angular_z_radps))
            trace.tool_rad.append(tool.position_rad)
            if observations:
                trace.detections.append(
                    (
                        mission_t,
                        tuple(
                            (o.tag_id, round(o.tag_in_base.x_m, 3), round(o.tag_in_base.y_m, 3)) for o in observations
                        ),
                    )
                )
            trace.waypoint_index.append(executive.current_cycle.index if executive.current_cycle else -1)
            trace.stop_reason.append(reason)
            for ev in evs:
                events.append(replace(ev, stamp_s=mission_t))
                if ev.kind == "cycle_started":
                    journal.cycle_started(ev.cycle, spec.rover_id, mission_t)
                    cycle_marks[ev.cycle] = len(rover.dump_log)
                elif ev.kind == "cycle_completed":
                    dumps = rover.dump_log[cycle_marks.get(ev.cycle, 0) :]
                    vol = float(sum(d[3] for d in dumps))
                    dumps_by_cycle[str(ev.cycle)] = [[d[1], d[2], d[3]] for d in dumps]
                    journal.cycle_completed(ev.cycle, spec.rover_id, mission_t, vol)  # fsync'd: it counts
                elif ev.kind == "measure_requested":
                    nxt = max([*_planned_cycles(journal.state), -1]) + 1
                    plan = replan(
                        mission,
                        baseline,
                        scan_to_grid(world.elevation_scan(), grid0),
                        elapsed_s=min(mission_t, limit_s),
                        used_wh={spec.rover_id: energy0 + rover.energy_used_wh},
                        poses={spec.rover_id: estimate.pose},
                        first_index=nxt,
                    )
                    write_plan(plan, mission_t)
                    plan_count += 1
                    executive.replace_cycles(plan.cycles)
                    executive.measurement_done()
            if progress is not None and int(mission_t) != last_second:
                last_second = int(mission_t)
                progress(mission_t, limit_s)
            if mission_t >= limit_s:
                status, end_reason = "time limit", f"time limit {limit_s:g} s reached"
                break
            if max_sim_s is not None and frame.stamp_s - t_start >= max_sim_s:
                status, end_reason = "stopped", f"max_sim_s {max_sim_s:g} reached"
                break
            if any(e.kind == "parked" for e in evs):
                status, end_reason = "completed", "no cycle left: parked"
                break
            tick += period
            world.clock.sleep_until(tick)
        io.write(Commands(spec.rover_id, DriveCommand.stop(world.time_s)))
        judged = judge.finish(autonomous=True)
        after = world.elevation_scan()
        session_energy = rover.energy_used_wh
        contact_log: list[list[float]] = []  # episodes: [t_first, t_last, obstacle id, x, y] (gap > 1 s: new)
        for e in sorted((e for r in judge.recorders.values() for e in r.events), key=lambda e: e.stamp_s):
            last = next((c for c in reversed(contact_log) if c[2] == e.obstacle_id), None)
            if last is not None and e.stamp_s - last[1] <= 1.0:
                last[1] = round(e.stamp_s - t_start + t_offset, 2)
            else:
                t = round(e.stamp_s - t_start + t_offset, 2)
                contact_log.append([t, t, e.obstacle_id, round(e.x_m, 2), round(e.y_m, 2)])
        if port is not None:
            trace.paths = [(t - t_start + t_offset, pts) for t, pts in port.stats.paths]
        obstacles = [(r.x_m, r.y_m, r.radius_m) for r in world.rocks]
        obstacles += [(c.x_m, c.y_m, c.diameter_m / 2) for c in site.craters]  # drawn alike: rocks and craters
    finally:
        world.close()
        journal.close()
    wall_s = time.perf_counter() - wall0
    completed = journal.state.completed_indices()
    mission_s = trace.t_s[-1] if trace.t_s else t_offset
    ate, max_err = absolute_trajectory_error([p[:2] for p in trace.true_pose], [p[:2] for p in trace.est_pose])
    kinds = [e.kind for e in events]
    rate = len(completed) / (mission_s / 3600.0) if mission_s > 0 else 0.0
    fields = judged.summary_fields()
    summary: dict[str, Any] = {
        "mission": mission.name,
        "mission_file": mission.source,
        "seed": seed,
        "rover_id": spec.rover_id,
        "resumed": bool(resume and state.records),
        "hazard_source": {
            "map": "map (the rover's depth map -> costmap -> planned navigation)",
            "oracle": "oracle (true boulders and craters: a comparison, not the rover's knowledge)",
            "none": "none (straight lines between poses)",
        }[hazards],
        "status": status,
        "end_reason": end_reason,
        "mission_seconds": round(mission_s, 2),
        "sim_seconds_this_session": round(mission_s - t_offset, 2),
        "wall_seconds": round(wall_s, 2),
        "real_time_factor": round((mission_s - t_offset) / wall_s, 2) if wall_s > 0 else None,
        "berm_volume_cm3": fields["berm_volume_cm3"],
        "cycles_completed": len(completed),
        "completed_cycle_indices": completed,
        "cycles_aborted": kinds.count("cycle_aborted"),
        "cycles_started_this_session": kinds.count("cycle_started"),
        "contacts": contacts0 + int(fields["contacts"]),
        # ground truth: the most the body tilted from upright (deg), and how often it passed TIPPED_OVER_DEG
        "max_tilt_deg": round(max_tilt_deg, 1),
        "tip_overs": tip_overs,
        "energy_wh": round(energy0 + session_energy, 4),
        "reapplied_m3": round(reapplied, 6),
        "plans_written": plan_count,
        "jams": kinds.count("jam"),
        "relocalizations": kinds.count("relocalized"),
        "nudges": kinds.count("nudge"),
        "checkpoints": kinds.count("checkpoint"),
        "planned_ideal_cycles_per_hour": round(ideal_rate, 2),
        "measured_cycles_per_hour": round(rate, 2),
        "cycle_efficiency": round(rate / ideal_rate, 3) if ideal_rate > 0 else None,
        "navigation": (
            {
                "goals": port.stats.goals,
                "plans": port.stats.plans,
                "plan_failures": port.stats.plan_failures,
                "recoveries": port.stats.recoveries,
                "navigator_failures": port.stats.navigator_failures,
                "monitor_stops": port.stats.monitor_stops,
                "unblocks": port.stats.unblocks,
                "goals_moved": port.stats.goals_moved,
                "map_clears": port.stats.map_clears,
                "wall_reloc_stops": port.stats.wall_reloc_stops,
                "last_error": port.stats.last_error,
            }
            if port is not None
            else None
        ),
        "tag_observations": sum(trace.tags_seen),
        "tag_updates_accepted": sum(trace.tags_accepted),
        "walls_seen": pipeline.walls_seen,
        "wall_updates_accepted": pipeline.landmark_ekf.wall_accepted_count,
        "localization_ate_m": round(ate, 4),
        "localization_max_error_m": round(max_err, 4),
        # mean position NEES (2 dof): about 2 for a consistent filter, far below: its sigma is too pessimistic
        "localization_nees_xy_mean": round(float(np.mean(trace.nees_xy)), 3) if trace.nees_xy else None,
        "judge_this_session": fields,
        "profile": stage_prof.summary(),
        "contact_episodes_this_session": contact_log,
        "events": [
            {"t_s": round(e.stamp_s, 2), "kind": e.kind, "cycle": e.cycle, "detail": e.detail}
            for e in events
            if e.kind != "nudge"
        ],
    }
    if write_files:
        from sim.plots import plot_elevation

        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        images = [plot_elevation(judge.before, after, site.preset.target_box, out_dir / "elevation_before_after.png")]
        png = out_dir / "paths.png"
        title = (
            f"{mission.name} seed {seed}: {len(completed)} cycles, berm {summary['berm_volume_cm3']:,.0f} cm3, "
            f"{summary['contacts']} contacts"
        )
        plot_paths(png, trace, (), mission.site.beacons, obstacles, title)
        images.append(png)
        write_report_html(out_dir / "report.html", summary, images)
        write_mcap(out_dir / "run.mcap", trace)
    return ConstructionResult(summary, out_dir)


def _cmd_sim_build(args: argparse.Namespace) -> int:
    mission = load_mission_or_report(args.mission)
    if mission is None:
        return EXIT_BAD_INPUT
    if not require_construction(mission, args.mission, "rover sim build"):
        return EXIT_BAD_INPUT
    seed = mission.seed if args.seed is None else args.seed
    out = Path(args.out)
    with sim_progress(mission, seed, args.quiet) as progress:
        try:
            result = run_construction_in_sim(
                mission,
                seed,
                out,
                resume=args.resume,
                max_sim_s=args.max_sim_s,
                progress=progress,
                hazards=args.hazards,
            )
        except ValueError as exc:
            print(f"rover sim build: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    s = result.summary
    print(
        f"{s['end_reason']}: {s['cycles_completed']} cycles, berm {s['berm_volume_cm3']:,.0f} cm3 in the target box, "
        f"{s['contacts']} contacts, {s['energy_wh']:.1f} Wh, {s['mission_seconds']:.0f} s mission time "
        f"({s['wall_seconds']:.0f} s wall) -> {out / 'summary.json'}, {out / 'report.html'}"
    )
    return EXIT_OK if s["cycles_completed"] > 0 else EXIT_FAILED


def register_construction(sim_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build`` to the ``rover sim`` sub-commands."""
    p = sim_subparsers.add_parser(
        "build",
        help="run a construction mission (dig-haul-dump cycles) in simulation, journaled and resumable",
        description="Plan MISSION's structures, run the behaviour-tree executive on a simulated rover in the "
        "mission's site (headless, lockstep), journal every cycle to DIR/journal.log and judge the berm; write "
        "DIR/summary.json, report.html, elevation_before_after.png, paths.png and run.mcap. --resume continues "
        "a killed run from its journal without redoing or losing a completed cycle. Exit 0 when at least one "
        "cycle completed, 1 otherwise, 2 on bad input.",
    )
    p.add_argument("mission", help="construction mission YAML, e.g. missions/lunabotics-ucf.yaml")
    p.add_argument("--out", required=True, help="run folder (holds the journal)")
    p.add_argument("--seed", type=int, default=None, help="site seed (default: the mission's seed)")
    p.add_argument("--resume", action="store_true", help="continue the run journaled in --out")
    p.add_argument("--max-sim-s", type=float, default=None, help="stop after this much simulated time")
    p.add_argument(
        "--hazards",
        choices=HAZARD_SOURCES,
        default="map",
        help="navigation: map (the rover's own depth map, costmap and planner; default), oracle (route around the "
        "true boulders and craters: a comparison) or none (straight lines)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sim_build)
