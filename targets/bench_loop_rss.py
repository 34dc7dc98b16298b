"""The autonomy stack's own memory: peak RSS of a fresh process that holds only what the rover board holds.

``rover bench --suite loop`` measures the construction loop inside ``rover sim build``, whose process also
holds PyBullet, the simulated world and its renderer, so its peak RSS is an upper bound. Here a child
process (``sys.executable -c``) imports only the autonomy stack and the board wiring (``targets.board_run``;
no pybullet, no ``sim``: checked in ``sys.modules``, and the run fails if either is there), builds the
construction stack the rover runs for ``missions/lunabotics-ucf.yaml`` (pipeline, terrain map, costmap,
planned navigation, behaviour-tree executive: the wiring of ``targets.sim_construction``'s tick), warms up
the numba kernels as ``targets.board_run.run_on_board`` does, and runs one construction tick per sensor frame.

The frames are the loop suite's own recording (``FrameRecorder``: the parent pickles each ``SensorFrame``
of its simulated run to a file, the child reads them back one at a time, as a camera driver hands over a
fresh buffer each frame) or, without a recording, synthetic 640x480 frames (``synthetic_frames``). The child
prints one JSON line: the peak RSS (``VmHWM``) at each phase (interpreter, imports, stack built, numba warm-up, ticks)
and the resident size after the warm-up and at the end (``VmRSS``), so a peak set by numba's compiler
(the first run on a machine, before its cache exists) is told apart from the steady state.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autonomy.msgs import SensorFrame
    from autonomy.runtime.pipeline import Pipeline

# top-level packages that must never be in the board's process
FORBIDDEN_MODULES = ("pybullet", "pybullet_data", "pybullet_utils", "pybullet_envs", "sim")
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MISSION = REPO_ROOT / "missions" / "lunabotics-ucf.yaml"
BOARD_CALIBRATION = REPO_ROOT / "targets" / "boards" / "calibration" / "rpi-camera-v2-640x480.toml"
RESULT_PREFIX = "AUTONOMY_RSS "


class ForbiddenImportError(RuntimeError):
    """The autonomy-only process imported the simulator (pybullet or ``sim``)."""


def forbidden_modules(names: Any = None) -> list[str]:
    """The loaded modules (``sys.modules`` unless ``names`` is given) whose top-level package is forbidden."""
    loaded = sys.modules if names is None else names
    return sorted(n for n in loaded if n.split(".", 1)[0] in FORBIDDEN_MODULES)


def check_no_simulator(where: str) -> None:
    """Raise ``ForbiddenImportError`` if pybullet or ``sim`` is in ``sys.modules``."""
    bad = forbidden_modules()
    if bad:
        raise ForbiddenImportError(f"autonomy RSS child: {where}: simulator modules loaded: {', '.join(bad[:10])}")


def _ru_maxrss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)  # Linux: KiB


def _proc_status_mb(field: str) -> float | None:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process (Linux /proc), None where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def _peak_rss_mb() -> float:
    """This process's own peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries the high-water mark of the
    address space an ``execve`` replaces into ``ru_maxrss``, and ``subprocess`` forks with ``vfork`` (the
    parent's address space), so a child of the 400 MB bench process would start at ``ru_maxrss`` = 400 MB."""
    hwm = _proc_status_mb("VmHWM")
    return hwm if hwm is not None else _ru_maxrss_mb()


def _current_rss_mb() -> float | None:
    return _proc_status_mb("VmRSS")


# ---------------------------------------------------------------------------------------------------------------
# Parent side: record the frames, run the child
# ---------------------------------------------------------------------------------------------------------------


class FrameRecorder:
    """A ``frame_sink`` that pickles every ``SensorFrame`` to ``path`` as it comes (nothing kept in memory, so
    the recording does not raise the parent's own RSS figure). ``pipeline_sink`` notes the rover geometry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = 0
        self.geometry: tuple[float, float] | None = None
        self._file: IO[bytes] | None = path.open("wb")

    def __call__(self, frame: SensorFrame) -> None:
        if self._file is not None:
            pickle.dump(frame, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self.frames += 1

    def pipeline_sink(self, pipeline: Pipeline) -> None:
        g = pipeline.config.geometry
        self.geometry = (g.wheel_radius_m, g.track_width_m)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def measure_autonomy_rss(
    frames_path: Path | None,
    ticks: int,
    mission_path: Path = DEFAULT_MISSION,
    geometry: tuple[float, float] | None = None,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Run ``main`` (below) in a fresh interpreter and return its figures. Raises
    ``ForbiddenImportError`` when the child found the simulator in its ``sys.modules`` and ``RuntimeError``
    when it failed otherwise (a bench figure that silently measured the wrong process would be worse)."""
    args = {
        "mission_path": str(mission_path),
        "frames_path": None if frames_path is None else str(frames_path),
        "ticks": ticks,
        "geometry": None if geometry is None else list(geometry),
    }
    code = (
        f"import json, sys; from targets.bench_loop_rss import main; sys.exit(main(json.loads({json.dumps(args)!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=timeout_s, cwd=REPO_ROOT
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if proc.returncode != 0 or line is None:
        tail = proc.stderr.strip()[-1500:]
        if "ForbiddenImportError" in proc.stderr:
            raise ForbiddenImportError(f"autonomy RSS child (exit {proc.returncode}): {tail}")
        raise RuntimeError(f"autonomy RSS child failed (exit {proc.returncode}): {tail}")
    result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
    if result.get("forbidden_modules_loaded"):
        raise ForbiddenImportError(
            f"autonomy RSS child: simulator modules loaded: {result['forbidden_modules_loaded']}"
        )
    return result


# ---------------------------------------------------------------------------------------------------------------
# Child side
# ---------------------------------------------------------------------------------------------------------------


def recorded_frames(path: Path) -> Iterator[SensorFrame]:
    """The frames a ``FrameRecorder`` wrote, one at a time. Raises ``ForbiddenImportError`` as soon as one
    of them made pickle import the simulator (a recorded object of a ``sim`` class)."""
    with path.open("rb") as f:
        while True:
            try:
                frame = pickle.load(f)
            except EOFError:
                return
            check_no_simulator(f"after loading frame from {path}")
            yield frame


def synthetic_frames(ticks: int, control_hz: float = 20.0, camera_hz: float = 3.0, seed: int = 0) -> Iterator[Any]:
    """``ticks`` frames of a rover driving a slow arc at 0.2 m/s: wheel encoders and IMU every tick, a 640x480
    BGR image (uint8, noise on grey: nothing to detect) and a 160x120 depth image of level ground (float32)
    at ``camera_hz``, with the intrinsics and mount of the board's camera calibration."""
    import numpy as np

    from autonomy.msgs import CameraFrame, CameraInfo, DepthFrame, ImuReading, Pose3D, SensorFrame, WheelEncoderReading
    from targets.board_profile import load_calibration

    c = load_calibration(BOARD_CALIBRATION)
    info = CameraInfo(int(c["width"]), int(c["height"]), float(c["fx"]), float(c["fy"]), float(c["cx"]), float(c["cy"]))
    mount = Pose3D(**{k: float(v) for k, v in c["mount"].items()})
    k = 4  # 640x480 -> 160x120
    dinfo = CameraInfo(
        info.width_px // k, info.height_px // k, info.fx_px / k, info.fy_px / k, info.cx_px / k, info.cy_px / k
    )
    u, v = np.meshgrid(np.arange(dinfo.width_px) + 0.5, np.arange(dinfo.height_px) + 0.5)
    rays = np.stack([(u - dinfo.cx_px) / dinfo.fx_px, (v - dinfo.cy_px) / dinfo.fy_px, np.ones_like(u)], axis=-1)
    down = (rays @ mount.rotation().T)[..., 2]  # ray z in base_link per unit optical depth
    with np.errstate(divide="ignore", invalid="ignore"):
        ground = np.where(down < -1e-3, mount.z_m / -down, np.nan)
    ground = np.where(ground < 6.0, ground, np.nan).astype(np.float32)
    rng = np.random.default_rng(seed)
    base = np.full((info.height_px, info.width_px, 3), 110, dtype=np.uint8)
    speed, yaw_rate, radius, track = 0.2, 0.05, 0.15, 0.6
    every = max(1, round(control_hz / camera_hz))
    for i in range(ticks):
        t = i / control_hz
        left = (speed - yaw_rate * track / 2) * t / radius
        right = (speed + yaw_rate * track / 2) * t / radius
        camera = depth = None
        if i % every == 0:
            img = base + rng.integers(0, 8, size=base.shape, dtype=np.uint8)
            camera = CameraFrame(t, "front", img, info, mount)
            noisy = ground + rng.normal(0.0, 0.005, ground.shape).astype(np.float32)
            depth = DepthFrame(t, "front", noisy, dinfo, mount)
        yield SensorFrame(
            "synthetic",
            t,
            WheelEncoderReading(t, left, right, left, right),
            ImuReading(t, (0.0, 0.0, yaw_rate), (0.0, 0.0, 9.81)),
            camera=camera,
            depth=depth,
        )


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(values, q)), 3)


def main(args: dict[str, Any]) -> int:
    """The child: build the construction stack, warm up, tick over the frames, print one JSON line."""
    phases: dict[str, float] = {"interpreter": _peak_rss_mb()}
    import time
    from dataclasses import replace

    import cv2

    from autonomy.construction.executive import Executive
    from autonomy.construction.navigation import NavigationPort, construction_costmap
    from autonomy.construction.planner import default_baseline, plan_mission
    from autonomy.mission.mission_file import load_mission
    from autonomy.runtime.pipeline import Pipeline, RoverGeometry
    from autonomy.runtime.profiler import StageProfiler
    from autonomy.runtime.rates import RateGroup
    from targets.board_run import warm_up_kernels
    from targets.sim_construction import construction_stack_config, executive_config, step_executive

    check_no_simulator("after the imports")
    cv2.setNumThreads(1)  # as ``rover bench``: per-core figures
    phases["imports"] = _peak_rss_mb()

    mission = load_mission(Path(args["mission_path"]))
    spec = mission.rovers[0]
    zones = mission.site.zones
    if zones is None:
        raise ValueError(f"{mission.source}: a construction mission with a site preset is needed")
    geometry = RoverGeometry(*(args.get("geometry") or (0.15, 0.6)))
    frames_path = args.get("frames_path")
    ticks = int(args["ticks"])
    frames = recorded_frames(Path(frames_path)) if frames_path else synthetic_frames(ticks)
    first = next(frames, None)
    if first is None:
        raise ValueError("autonomy RSS child: no frames to replay")

    cfg = executive_config(mission)
    plan = plan_mission(mission, baseline=default_baseline(zones))
    pipe_cfg, nav_params, soft_zones = construction_stack_config(mission, geometry, cfg)
    pipeline = Pipeline(pipe_cfg, StageProfiler(time.perf_counter))
    port = NavigationPort(nav_params, dig_zones=soft_zones, terrain=pipeline.terrain, walls=pipeline.config.walls)
    executive = Executive(
        plan.cycles, cfg, follower_factory=port.follower, limits=mission.limits, model=spec.model, start_s=first.stamp_s
    )
    planning = RateGroup("planning", pipe_cfg.planning_hz)
    phases["stack_built"] = _peak_rss_mb()

    warm_up_kernels()
    phases["numba_warm_up"] = _peak_rss_mb()
    rss_after_warm_up = _current_rss_mb()

    times: list[float] = []
    camera_frames = depth_frames = 0
    for n, raw in enumerate(_chain(first, frames)):
        if n >= ticks:
            break
        frame = replace(raw, rover_id=spec.rover_id)
        camera_frames += frame.camera is not None
        depth_frames += frame.depth is not None
        t0 = time.perf_counter()
        observations = pipeline.perceive(frame)
        estimate, _accepted = pipeline.estimate(frame, observations)
        if pipeline.terrain is not None:
            pipeline.map_depth(frame, estimate)
            if planning.due(frame.stamp_s):
                cm = construction_costmap(
                    pipeline.terrain, zones.arena, zones.keep_out, soft_zones, (zones.obstacle_zone,)
                )
                port.update_costmap(cm, estimate.pose)
        port.observe(estimate, pipeline.measured_speed_mps, pipeline.turn_pivot_x_m)
        drive, _tool, evs = step_executive(executive, pipeline, frame, estimate)
        final, reason = pipeline.limit(frame, drive, estimate)
        if reason == "localization lost" and executive.lost:
            final, reason = drive, ""
        if not reason:
            final, reason = port.guard(final, estimate.pose)
        times.append((time.perf_counter() - t0) * 1e3)
        if any(e.kind == "measure_requested" for e in evs):
            executive.measurement_done()  # the sim's scan-and-replan is not the board's: go on
        del frame, raw
    check_no_simulator("after the ticks")
    phases["ticks"] = _peak_rss_mb()
    top = sorted({m.split(".", 1)[0] for m in sys.modules})
    third_party = [m for m in top if m not in sys.stdlib_module_names and not m.startswith("_")]
    result = {
        "rss_peak_mb": phases["ticks"],
        "ru_maxrss_mb": _ru_maxrss_mb(),  # includes the parent's peak when it exceeds ours (see _peak_rss_mb)
        "rss_after_warm_up_mb": rss_after_warm_up,
        "rss_end_mb": _current_rss_mb(),
        "peak_rss_by_phase_mb": phases,
        "ticks": len(times),
        "camera_frames": camera_frames,
        "depth_frames": depth_frames,
        "frames": "recorded" if frames_path else "synthetic",
        "tick_p50_ms": _percentile(times, 50) if times else None,
        "tick_p99_ms": _percentile(times, 99) if times else None,
        "navigation_plans": port.stats.plans,
        "forbidden_modules_loaded": forbidden_modules(),
        "top_level_packages": third_party,
    }
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
