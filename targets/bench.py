"""``rover bench``: the rover loop's per-stage timing, and the fiducial detector beside its peers.

Benchmarks measure wall time on this machine (one thread); tests never do. Figures go to JSON and,
by hand, to BENCHMARKS.md with the machine they were measured on.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from autonomy.mission.mission_file import load_mission
from autonomy.msgs import CameraFrame, SensorFrame
from targets.bench_loop_rss import FrameRecorder
from targets.cv_threads import one_opencv_thread


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
    }


def _time_per_frame_ms(
    fn: Callable[[CameraFrame], int], frames: Sequence[CameraFrame], repeats: int
) -> tuple[float, float, int]:
    """Median and p99 over all frames and repeats (ms per frame), and detections of the first pass."""
    times: list[float] = []
    found = 0
    for rep in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            n = fn(f)
            times.append((time.perf_counter() - t0) * 1e3)
            if rep == 0:
                found += n
    return statistics.median(times), float(np.percentile(times, 99)), found


def bench_fiducials(frames: Sequence[CameraFrame], tag_sizes: dict[int, float], repeats: int = 3) -> dict[str, Any]:
    """The project's detector against OpenCV's full-frame ArucoDetector (defaults) and pupil-apriltags."""
    from autonomy.runtime.pipeline import rover_fiducial_detector

    if not frames:
        return {"error": "no camera frames captured"}
    ours = rover_fiducial_detector(frames[0].info, tag_sizes)
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    default = cv2.aruco.ArucoDetector(dictionary, cv2.aruco.DetectorParameters())

    def run_default(f: CameraFrame) -> int:
        gray = cv2.cvtColor(f.image_bgr, cv2.COLOR_BGR2GRAY)
        _, ids, _ = default.detectMarkers(gray)
        return 0 if ids is None else int(np.isin(ids.ravel(), list(tag_sizes)).sum())

    out: dict[str, Any] = {
        "frames": len(frames),
        "resolution": f"{frames[0].info.width_px}x{frames[0].info.height_px}",
        "repeats": repeats,
        "detectors": {},
    }
    candidates: list[tuple[str, Callable[[CameraFrame], int]]] = [
        ("regolith FiducialDetector (detection + IPPE pose + covariance)", lambda f: len(ours.detect(f))),
        ("OpenCV ArucoDetector, defaults (detection only)", run_default),
    ]
    pupil = _bench_pupil_in_subprocess(frames, sorted(tag_sizes), repeats)
    for name, fn in candidates:
        p50, p99, found = _time_per_frame_ms(fn, frames, repeats)
        out["detectors"][name] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "detections": found}
    out["detectors"][PUPIL_NAME] = pupil
    return out


PUPIL_NAME = "pupil-apriltags (AprilTag 3), quad_decimate=2, 1 thread (detection only)"


def _bench_pupil_in_subprocess(frames: Sequence[CameraFrame], ids: list[int], repeats: int) -> dict[str, Any]:
    """pupil-apriltags corrupts the C heap now and then (pupil-labs/apriltags#39, open), which aborts the
    whole process later at some unrelated malloc. So the peer runs in a child process of its own, on the
    same grey frames, and reports its figures as JSON on stdout before it exits."""
    import json
    import subprocess
    import sys
    import tempfile

    try:
        import pupil_apriltags  # noqa: F401
    except ImportError:
        return {"error": "pupil-apriltags not installed (pip install '.[bench]')"}
    with tempfile.TemporaryDirectory(prefix="regolith_bench_") as tmp:
        path = Path(tmp) / "frames.npy"
        grey = np.stack([cv2.cvtColor(f.image_bgr, cv2.COLOR_BGR2GRAY) for f in frames])
        np.save(path, grey)
        code = f"from targets.bench import pupil_worker; pupil_worker({str(path)!r}, {ids!r}, {repeats})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        return {"error": f"pupil-apriltags worker failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"}
    result: dict[str, Any] = json.loads(line)
    if proc.returncode != 0:
        result["note"] = f"worker aborted after reporting (exit {proc.returncode}): pupil-labs/apriltags#39"
    return result


def pupil_worker(path: str, ids: list[int], repeats: int) -> None:
    """Child-process side of ``_bench_pupil_in_subprocess``: time pupil-apriltags, print one JSON line."""
    import json
    import sys

    from pupil_apriltags import Detector

    grey = np.load(path)
    detector = Detector(families="tag36h11", nthreads=1, quad_decimate=2.0)
    wanted = set(ids)
    times: list[float] = []
    found = 0
    for rep in range(repeats):
        for img in grey:
            t0 = time.perf_counter()
            dets = detector.detect(np.ascontiguousarray(img))
            times.append((time.perf_counter() - t0) * 1e3)
            if rep == 0:
                found += sum(1 for d in dets if d.tag_id in wanted)
    res = {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "detections": found,
    }
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak resident set size (MB; Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def bench_construction_loop(mission_path: str | Path | None = None, seed: int = 1, steps: int = 1200) -> dict[str, Any]:
    """The whole onboard loop of a construction run (``rover sim build`` on the UCF mission, 640x480 camera at
    3 Hz, 160x120 depth): perceive, estimate, map, costmap, planning, the executive (with the navigator it
    steps) and the limit stage, per control tick (``tick``), for ``steps`` ticks. RSS: the peak of this
    process, which also holds the simulator and its renderer (an upper bound for the rover's own process)."""
    from targets.sim_construction import CONTROL_HZ, run_construction_in_sim

    path = (
        Path(mission_path)
        if mission_path is not None
        else Path(__file__).resolve().parents[1] / "missions" / "lunabotics-ucf.yaml"
    )
    mission = load_mission(path)
    with tempfile.TemporaryDirectory(prefix="regolith_bench_build_") as tmp:
        res = run_construction_in_sim(mission, seed, Path(tmp), max_sim_s=steps / CONTROL_HZ, write_files=False)
    s = res.summary
    prof = s["profile"]
    tick = prof.get("tick", {})
    return {
        "mission": str(path),
        "control_ticks": int(tick.get("count", 0)),
        "sim_seconds": s["sim_seconds_this_session"],
        "wall_seconds_including_physics_and_rendering": s["wall_seconds"],
        "tick_p50_ms": tick.get("p50_ms"),
        "tick_p99_ms": tick.get("p99_ms"),
        "stages_ms": prof,
        "build_process_peak_rss_mb": peak_rss_mb(),
        "note": "tick = perceive + estimate + map + costmap/plan (2 Hz) + executive (+ navigator) + limit, one "
        "thread; build_process_peak_rss_mb: the peak of the whole bench process, which also holds pybullet, the "
        "simulator and its renderer (an upper bound); autonomy_rss_peak_mb: the autonomy stack alone",
    }


def autonomy_rss_fields(
    frames_path: Path | None, ticks: int, geometry: tuple[float, float] | None, source: str
) -> dict[str, Any]:
    """The peak RSS of the autonomy stack alone (``targets.bench_loop_rss``: a fresh process without pybullet
    or ``sim``), replaying the loop suite's recorded frames (``source``) through the UCF construction stack."""
    from targets.bench_loop_rss import measure_autonomy_rss

    child = measure_autonomy_rss(frames_path, ticks, geometry=geometry)
    numba = child["peak_rss_by_phase_mb"]["numba_warm_up"] - child["peak_rss_by_phase_mb"]["stack_built"]
    return {
        "autonomy_rss_peak_mb": child["rss_peak_mb"],
        "autonomy_rss_after_warm_up_mb": child["rss_after_warm_up_mb"],
        "autonomy_rss": child,
        "autonomy_rss_note": (
            "peak RSS (ru_maxrss) of a fresh python process holding only the board's imports (autonomy, "
            "targets.board_run, the construction wiring of targets.sim_construction; no pybullet, no sim: checked "
            f"in sys.modules, third-party packages: {', '.join(child['top_level_packages'])}), with the "
            "lunabotics-ucf construction stack (pipeline + terrain map + costmap + planned navigation + "
            f"executive) built, numba kernels warmed up as on the board (+{numba:.1f} MB), then "
            f"{child['ticks']} construction ticks over {child['frames']} frames ({source}: "
            f"{child['camera_frames']} 640x480 camera, {child['depth_frames']} 160x120 depth), replayed open loop; "
            "rss_after_warm_up_mb / rss_end_mb: VmRSS at those points"
        ),
    }


@one_opencv_thread  # figures are per core: the rover board's other cores run the rest of the stack
def run_benchmarks(
    mission_path: str | Path, seed: int = 1, steps: int = 1200, suites: Sequence[str] | None = None
) -> dict[str, Any]:
    from targets.sim_run import run_mission_in_sim

    wanted = set(suites or ("loop", "fiducials", "sim"))  # perception (2-3 min) runs only when asked for
    results: dict[str, Any] = {"machine": _machine(), "mission": str(mission_path), "seed": seed}
    if "sim" in wanted:
        from sim.bench_sim import run_sim_bench

        results["sim"] = run_sim_bench()
    if "perception" in wanted:
        from targets.bench_perception import run_perception_bench

        results["perception"] = run_perception_bench(mission_path, seed=seed, steps=steps, repeats=3)
    if "navigation" in wanted:
        from targets.bench_navigation import run_navigation_bench

        results["navigation"] = run_navigation_bench(seed=seed)
    if "realdata" in wanted:
        from targets.bench_realdata import run_swarmathon_bench

        results["realdata"] = run_swarmathon_bench()
    if "estimation" in wanted:
        from targets.bench_estimation import run_estimation_bench

        results["estimation"] = run_estimation_bench()
    if "mapping" in wanted:
        from targets.bench_mapping import run_mapping_bench

        results["mapping"] = run_mapping_bench()
    if not wanted & {"loop", "fiducials"}:
        return results
    mission = load_mission(mission_path)
    frames: list[CameraFrame] = []
    with tempfile.TemporaryDirectory(prefix="regolith_bench_frames_") as tmp:
        # the loop suite's frames, streamed to disk for the autonomy-only RSS child (targets.bench_loop_rss)
        recorder = FrameRecorder(Path(tmp) / "frames.pkl") if "loop" in wanted else None

        def sink(frame: SensorFrame) -> None:
            if frame.camera is not None and "fiducials" in wanted:  # held in memory: only for its consumer
                frames.append(frame.camera)
            if recorder is not None:
                recorder(frame)

        run = run_mission_in_sim(
            mission,
            seed,
            out_dir=None,
            max_steps=steps,
            frame_sink=sink,
            pipeline_sink=recorder.pipeline_sink if recorder is not None else None,
        )
        if recorder is not None:
            recorder.close()
        _loop_results(results, run.summary, wanted, seed, steps, recorder)
    if "fiducials" in wanted:
        sizes = {b.tag_id: b.size_m for b in mission.site.beacons}
        results["fiducials"] = bench_fiducials(frames, sizes)
    return results


def _loop_results(
    results: dict[str, Any],
    s: dict[str, Any],
    wanted: set[str],
    seed: int,
    steps: int,
    recorder: FrameRecorder | None,
) -> None:
    if "loop" in wanted:
        step = s["profile"].get("step", {})
        results["loop"] = {
            "control_ticks": s["steps"],
            "sim_seconds": s["sim_seconds"],
            "wall_seconds_including_physics_and_rendering": s["wall_seconds"],
            "pipeline_step_p50_ms": step.get("p50_ms"),
            "pipeline_step_p99_ms": step.get("p99_ms"),
            "stages_ms": s["profile"],
            "note": "wall time per pipeline stage (one thread); perceive runs only on ticks with a camera frame",
        }
        build = bench_construction_loop(seed=seed, steps=steps)
        if recorder is not None:
            source = f"recorded by the loop suite's sim run of {results['mission']}"
            build |= autonomy_rss_fields(recorder.path, steps, recorder.geometry, source)
        results["loop_construction"] = build
