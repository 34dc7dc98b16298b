"""``rover sim run``: wire a mission's site into PyBullet, run the rover loop in lockstep, write the run folder.

This is the thin shell: it builds the world (``sim``), the pipeline (``autonomy``), connects them through
the rover's ports (``hw.rover_io.RoverIO``), records ground truth beside the estimate, and writes
``summary.json``, ``paths.png``, ``scene.png`` (an overview render of the site and the rover at the end),
``elevation_before_after.png``, ``report.html`` and ``run.mcap``. A mission's ``faults:`` are injected into
its rovers' ports (``sim.faults``) and listed in the summary.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autonomy.estimation.odometry import TurnPivot
from autonomy.mission.mission_file import Mission
from autonomy.msgs import CameraFrame, Commands, FiducialObservation, SensorFrame
from autonomy.runtime.loop import LoopResult, RoverLoop
from autonomy.runtime.metrics import absolute_trajectory_error, position_nees
from autonomy.runtime.pipeline import Pipeline, RoverGeometry, mission_pipeline_config
from autonomy.runtime.profiler import StageProfiler
from hw.interfaces import Clock, DriveBase
from targets.cv_threads import sim_opencv_threads
from targets.run_folder import (
    RunTrace,
    plot_paths,
    write_camera_snapshot,
    write_mcap,
    write_report_html,
)

if TYPE_CHECKING:
    from sim.backend import SimSensorProfile

CONTROL_HZ = 20.0


def sim_rover_geometry(drive: DriveBase) -> RoverGeometry:
    """The simulated rover's geometry for its pipeline: wheel radius and track from its drive, and where its
    turns pivot with a load in the bucket (measured on the model: ``sim.backend.TURN_PIVOT_M_PER_N``)."""
    from sim.backend import TURN_PIVOT_M_PER_N, TURN_PIVOT_MAX_M, TURN_PIVOT_MIN_LOAD_N

    pivot = TurnPivot(TURN_PIVOT_M_PER_N, TURN_PIVOT_MAX_M, TURN_PIVOT_MIN_LOAD_N)
    return RoverGeometry(drive.wheel_radius_m, drive.track_width_m, pivot)


class RealTimeClock:
    """Lockstep simulated clock paced to the wall clock, so a ``--gui`` run can be watched at real speed."""

    def __init__(self, sim_clock: Clock, speed: float = 1.0) -> None:
        self._sim = sim_clock
        self._speed = speed
        self._t0_sim = sim_clock.now_s()
        self._t0_wall = time.perf_counter()

    def now_s(self) -> float:
        return self._sim.now_s()

    def sleep_until(self, t_s: float) -> None:
        self._sim.sleep_until(t_s)
        ahead = (t_s - self._t0_sim) / self._speed - (time.perf_counter() - self._t0_wall)
        if ahead > 0.0:
            time.sleep(ahead)


@dataclass(frozen=True, slots=True)
class SimRunResult:
    summary: dict[str, Any]
    out_dir: Path | None


@sim_opencv_threads  # the same seed gives the same run on any machine
def run_mission_in_sim(
    mission: Mission,
    seed: int,
    out_dir: Path | None,
    gui: bool = False,
    max_steps: int | None = None,
    progress: Callable[[float, float], None] | None = None,
    frame_sink: Callable[[SensorFrame], None] | None = None,
    profile: SimSensorProfile | None = None,
    navigation: str | None = None,
    pipeline_sink: Callable[[Pipeline], None] | None = None,
) -> SimRunResult:
    """Run ``mission`` headless (or with ``gui``) and return its summary; write the run folder if
    ``out_dir`` is given. ``progress(sim_s, limit_s)`` is called once per simulated second. ``profile``:
    the rover's sensors (default ``SimSensorProfile()``). The mission's ``faults:`` are injected into the
    rover's ports for their time windows. Arena presets (ucf, ksc, open) build the preset's site with its
    seeded boulders and craters; ``navigation`` overrides the pipeline's mode ("waypoints" / "planned";
    default: planned on arena presets). ``pipeline_sink`` is given the pipeline once built (tests inspect
    its map and navigator after the run)."""
    from sim.faults import FaultInjector, fault_to_dict, faults_from_specs
    from sim.plots import plot_elevation, write_scene_png
    from sim.run_judge import RunJudge
    from sim.sites import make_site, preset
    from sim.world import World  # the sim extra is needed only here

    if len(mission.rovers) != 1:
        raise ValueError(f"{mission.source}: rovers: the waypoint runner drives exactly one rover for now")
    spec = mission.rovers[0]
    keep_clear = [(spec.start.x_m, spec.start.y_m)] + [(w.x_m, w.y_m) for w in mission.waypoints]
    wall_start = time.perf_counter()
    if mission.site.zones is not None:
        world = World(seed, mission.site.beacons, gui=gui, site=make_site(preset(mission.site.preset), seed))
    else:
        world = World(
            seed=seed,
            beacons=mission.site.beacons,
            keep_clear_xy=keep_clear,
            size_m=mission.site.size_m,
            gui=gui,
        )
    try:
        rover = world.add_rover(spec.rover_id, spec.start, profile)
        rover_faults = faults_from_specs(mission.faults, spec.rover_id)
        if rover_faults:
            FaultInjector(rover, rover_faults)  # wraps the rover's ports (io() bundles them) and hooks its steps
        judge = RunJudge(world)  # the before-scan, contacts and paths, as the competition judges
        io = rover.io()
        profiler = StageProfiler(time.perf_counter)
        config = mission_pipeline_config(mission, spec, sim_rover_geometry(io.drive), navigation)
        pipeline = Pipeline(config, profiler)
        if pipeline_sink is not None:
            pipeline_sink(pipeline)
        trace = RunTrace(spec.rover_id)
        fault_tags = [0] * len(mission.faults)  # tags seen while each fault was active on this rover
        applies = [f.rover_id is None or f.rover_id == spec.rover_id for f in mission.faults]
        reached: dict[int, float] = {}
        reached_yaw: dict[int, float] = {}
        lost_ticks = [0]
        depth_points = [0]
        monitor_counts: dict[str, int] = {}
        last_progress = [-1]

        best_view: list[tuple[CameraFrame, tuple[FiducialObservation, ...]]] = []

        def observe(frame: SensorFrame, commands: Commands) -> None:
            if frame_sink is not None:
                frame_sink(frame)
            rep = pipeline.report
            if rep is None:
                return
            if frame.camera is not None and (not best_view or len(rep.observations) > len(best_view[0][1])):
                best_view[:] = [(frame.camera, rep.observations)]  # the frame that saw the most tags
            truth = rover.true_pose()
            est = rep.estimate.pose
            trace.t_s.append(frame.stamp_s)
            trace.true_pose.append((truth.x_m, truth.y_m, truth.yaw_rad))
            trace.est_pose.append((est.x_m, est.y_m, est.yaw_rad))
            trace.sigma_m.append(rep.estimate.position_sigma_m())
            trace.nees_xy.append(position_nees(rep.estimate, truth))
            trace.tags_seen.append(len(rep.observations))
            for i, f in enumerate(mission.faults):
                if applies[i] and f.start_s <= frame.stamp_s < f.end_s:
                    fault_tags[i] += len(rep.observations)
            trace.tags_accepted.append(rep.accepted_observations)
            trace.cmd.append((commands.drive.linear_x_mps, commands.drive.angular_z_radps))
            nav = rep.navigation
            trace.waypoint_index.append(nav.waypoint_index if nav is not None else 0)
            trace.stop_reason.append(rep.stop_reason)
            lost_ticks[0] += int(rep.lost)
            depth_points[0] += rep.depth_points_fused
            if rep.monitor_action:
                monitor_counts[rep.monitor_action] = monitor_counts.get(rep.monitor_action, 0) + 1
            if nav is not None:
                for i in nav.reached:
                    if i not in reached:  # the true distance when the navigator declared it reached
                        w = mission.waypoints[i]
                        reached[i] = truth.distance_to_m(w.x_m, w.y_m)
                        goal_yaw = mission.waypoint_yaws_rad[i] if mission.waypoint_yaws_rad else None
                        if goal_yaw is not None:
                            dyaw = math.remainder(truth.yaw_rad - goal_yaw, math.tau)
                            reached_yaw[i] = math.degrees(abs(dyaw))
            if progress is not None and int(frame.stamp_s) != last_progress[0]:
                last_progress[0] = int(frame.stamp_s)
                progress(frame.stamp_s, mission.limits.time_s)

        clock: Clock = RealTimeClock(world.clock) if gui else world.clock
        loop = RoverLoop(io, clock, pipeline, CONTROL_HZ, mission.limits.time_s, max_steps=max_steps, observer=observe)
        result: LoopResult = loop.run()
        navigator = pipeline.navigator
        nav_summary: dict[str, Any] = {"navigation": config.navigation}
        if navigator is not None:
            nav_summary |= {
                "plans": navigator.plans,
                "plan_failures": navigator.plan_failures,
                "recoveries": navigator.recoveries,
                "reapproaches": navigator.reapproaches,
                "circular_fallbacks": navigator.circular_fallbacks,
                "reloc_stops": navigator.reloc_stops,
                "wall_reloc_stops": navigator.wall_reloc_stops,
                "map_clears": navigator.map_clears,
                "reloc_fixes": navigator.reloc_fixes,
                "navigation_error": navigator.last_error,
                "collision_monitor_ticks": dict(sorted(monitor_counts.items())),
            }
        if pipeline.terrain is not None:
            nav_summary |= {
                "map_frames_fused": pipeline.terrain.map.frames_fused,
                "map_points_fused": depth_points[0],
                "map_cells_seen": int(pipeline.terrain.map.seen.sum()),
            }
        obstacles = [(r.x_m, r.y_m, r.radius_m) for r in world.rocks]
        judged = judge.finish(autonomous=True).summary_fields()
        scene = world.render_scene() if out_dir is not None else None  # the site as the run left it
        after = world.elevation_scan()
    finally:
        world.close()
    wall_s = time.perf_counter() - wall_start

    ate, max_err = absolute_trajectory_error([p[:2] for p in trace.true_pose], [p[:2] for p in trace.est_pose])
    errors = [round(reached[i], 4) if i in reached else None for i in range(len(mission.waypoints))]
    summary: dict[str, Any] = {
        "mission": mission.name,
        "mission_file": mission.source,
        "seed": seed,
        "rover_id": spec.rover_id,
        "status": result.status.value,
        "end_reason": result.reason,
        "sim_seconds": round(result.sim_seconds, 3),
        "wall_seconds": round(wall_s, 2),
        "steps": result.steps,
        "control_hz": CONTROL_HZ,
        "localization_ate_m": round(ate, 4),
        "localization_max_error_m": round(max_err, 4),
        "waypoints_reached": sum(1 for e in errors if e is not None),
        "waypoints_total": len(mission.waypoints),
        "waypoint_true_errors_m": errors,
        "waypoint_true_yaw_errors_deg": [
            round(reached_yaw[i], 3) if i in reached_yaw else None for i in range(len(mission.waypoints))
        ],
        "path_length_m": round(
            sum(math.dist(a[:2], b[:2]) for a, b in zip(trace.true_pose, trace.true_pose[1:], strict=False)), 3
        ),
        "localization_nees_xy_mean": round(float(np.mean(trace.nees_xy)), 3) if trace.nees_xy else None,
        "localization_lost_s": round(lost_ticks[0] / CONTROL_HZ, 2),
        "tag_observations": sum(trace.tags_seen),
        "tag_updates_accepted": sum(trace.tags_accepted),
        "walls_seen": pipeline.walls_seen,
        "wall_updates_accepted": pipeline.landmark_ekf.wall_accepted_count,
        "final_true_pose": [round(v, 4) for v in trace.true_pose[-1]] if trace.true_pose else None,
        "final_estimated_pose": [round(v, 4) for v in trace.est_pose[-1]] if trace.est_pose else None,
    }
    summary |= nav_summary
    summary |= judged
    summary["faults"] = [
        fault_to_dict(f) | {"applied": applies[i], "tag_observations_while_active": fault_tags[i]}
        for i, f in enumerate(mission.faults)
    ]
    summary["profile"] = profiler.summary()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        png = out_dir / "paths.png"
        plot_paths(
            png,
            trace,
            mission.waypoints,
            mission.site.beacons,
            obstacles,
            f"{mission.name} seed {seed}: {result.status.value}, ATE {ate:.3f} m",
        )
        images = [png]
        if scene is not None:
            images.append(write_scene_png(out_dir / "scene.png", scene))
        elevation_png = out_dir / "elevation_before_after.png"
        site_box = world.site.preset.target_box if world.site is not None else None
        plot_elevation(judge.before, after, site_box, elevation_png)
        images.append(elevation_png)
        if best_view:
            cam_png = out_dir / "camera.png"
            write_camera_snapshot(cam_png, *best_view[0])
            images.append(cam_png)
        write_report_html(out_dir / "report.html", summary, images)
        write_mcap(out_dir / "run.mcap", trace)
    return SimRunResult(summary, out_dir)
