"""`rover bench` runs end to end and writes the JSON figures (shape only: tests never judge wall time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from targets.cli import main

pytest.importorskip("pybullet", reason="the sim extra (pybullet) is not installed")


def test_bench_writes_stage_percentiles_and_detector_peers(tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / "bench.json"
    mission = str(repo_root / "missions" / "waypoints.yaml")
    assert main(["bench", "--json", str(out), "--steps", "60", "--mission", mission]) == 0
    r = json.loads(out.read_text())
    stages = r["loop"]["stages_ms"]
    for stage in ("step", "perceive", "estimate", "decide", "navigate", "limit"):
        assert stages[stage]["count"] == 60
        assert 0.0 <= stages[stage]["p50_ms"] <= stages[stage]["p99_ms"]
    build = r["loop_construction"]  # the construction loop: the executive inside the measured tick
    assert build["control_ticks"] >= 60 and build["peak_rss_mb"] > 0
    for stage in ("tick", "perceive", "estimate", "map", "executive", "limit"):
        assert 0.0 <= build["stages_ms"][stage]["p50_ms"] <= build["stages_ms"][stage]["p99_ms"]
    dets = r["fiducials"]["detectors"]
    assert r["fiducials"]["frames"] >= 8  # 3 s at the 3 Hz default camera
    ours = dets["regolith FiducialDetector (detection + IPPE pose + covariance)"]
    assert ours["detections"] > 0
    assert "OpenCV ArucoDetector, defaults (detection only)" in dets
    assert any(name.startswith("pupil-apriltags") for name in dets)
