"""`rover bench` runs end to end and writes the JSON figures (shape only: tests never judge wall time)."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

from targets.bench_loop_rss import (
    ForbiddenImportError,
    check_no_simulator,
    forbidden_modules,
    measure_autonomy_rss,
)
from targets.cli import main

pytest.importorskip("pybullet", reason="the sim extra (pybullet) is not installed")


def test_bench_writes_stage_percentiles_and_detector_peers(tmp_path: Path, repo_root: Path) -> None:
    import cv2

    threads = cv2.getNumThreads()
    out = tmp_path / "bench.json"
    mission = str(repo_root / "missions" / "waypoints.yaml")
    assert main(["bench", "--json", str(out), "--steps", "60", "--mission", mission]) == 0
    # the bench times OpenCV on one thread but restores the process's setting: OpenCV's results depend on it, and
    # a bench that left it at 1 changed every simulation after it in the same process (targets/cv_threads.py)
    assert cv2.getNumThreads() == threads
    r = json.loads(out.read_text())
    stages = r["loop"]["stages_ms"]
    for stage in ("step", "perceive", "estimate", "decide", "navigate", "limit"):
        assert stages[stage]["count"] == 60
        assert 0.0 <= stages[stage]["p50_ms"] <= stages[stage]["p99_ms"]
    build = r["loop_construction"]  # the construction loop: the executive inside the measured tick
    assert build["control_ticks"] >= 60 and build["build_process_peak_rss_mb"] > 0
    child = build["autonomy_rss"]  # the autonomy stack alone, in a fresh process, on the loop run's frames
    assert build["autonomy_rss_peak_mb"] == child["rss_peak_mb"] > 0
    assert child["frames"] == "recorded" and child["ticks"] == 60 and child["camera_frames"] > 0
    assert child["forbidden_modules_loaded"] == [] and "pybullet" not in child["top_level_packages"]
    assert "no pybullet" in build["autonomy_rss_note"]
    for stage in ("tick", "perceive", "estimate", "map", "executive", "limit"):
        assert 0.0 <= build["stages_ms"][stage]["p50_ms"] <= build["stages_ms"][stage]["p99_ms"]
    dets = r["fiducials"]["detectors"]
    assert r["fiducials"]["frames"] >= 8  # 3 s at the 3 Hz default camera
    ours = dets["regolith FiducialDetector (detection + IPPE pose + covariance)"]
    assert ours["detections"] > 0
    assert "OpenCV ArucoDetector, defaults (detection only)" in dets
    assert any(name.startswith("pupil-apriltags") for name in dets)


def test_autonomy_rss_child_runs_the_construction_stack_without_the_simulator() -> None:
    # this test process holds pybullet (importorskip above): the child must not inherit any of it
    assert "pybullet" in sys.modules
    r = measure_autonomy_rss(None, ticks=40)  # synthetic 640x480 frames
    assert r["forbidden_modules_loaded"] == []
    assert not {"pybullet", "sim"} & set(r["top_level_packages"])
    assert {"autonomy", "numba", "cv2"} <= set(r["top_level_packages"])
    assert r["ticks"] == 40 and r["camera_frames"] > 0 and r["depth_frames"] > 0
    phases = r["peak_rss_by_phase_mb"]
    assert 0 < phases["interpreter"] <= phases["imports"] <= phases["numba_warm_up"] <= phases["ticks"]
    assert r["rss_peak_mb"] == phases["ticks"] > 0
    assert r["rss_after_warm_up_mb"] > 0


def test_autonomy_rss_child_fails_loudly_when_a_frame_imports_the_simulator(tmp_path: Path) -> None:
    from sim.backend import SimSensorProfile

    frames = tmp_path / "frames.pkl"
    frames.write_bytes(pickle.dumps(SimSensorProfile()))  # unpickling it imports sim.backend (and pybullet)
    with pytest.raises(ForbiddenImportError, match="simulator modules loaded"):
        measure_autonomy_rss(frames, ticks=5)


def test_forbidden_modules_are_the_simulators_by_top_level_package() -> None:
    assert forbidden_modules(["numpy", "sim", "sim.world", "simple", "pybullet", "autonomy.sim"]) == [
        "pybullet",
        "sim",
        "sim.world",
    ]
    with pytest.raises(ForbiddenImportError, match="pybullet"):
        check_no_simulator("in the test process")
