"""`rover eval run`: ATE/RPE of a run folder's run.mcap against ground truth, and the RPE maths."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from autonomy.runtime.metrics import relative_pose_error, relative_pose_errors, segment_pairs
from targets.eval_run import RunEvalError, evaluate_run, read_run_poses, register_run
from targets.run_folder import RunTrace, write_mcap


def _straight(n: int = 201, length_m: float = 10.0) -> np.ndarray:
    x = np.linspace(0.0, length_m, n)
    return np.column_stack([x, np.zeros(n), np.zeros(n)])


def _eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rover eval")
    register_run(p.add_subparsers(dest="eval_command", required=True))
    return p


def _write_run(folder: Path, true: np.ndarray, est: np.ndarray, rover_id: str = "rover1") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    trace = RunTrace(rover_id)
    for k, (t, e) in enumerate(zip(true, est, strict=True)):
        trace.t_s.append(0.05 * k)
        trace.true_pose.append((float(t[0]), float(t[1]), float(t[2])))
        trace.est_pose.append((float(e[0]), float(e[1]), float(e[2])))
        trace.sigma_m.append(0.01)
        trace.tags_seen.append(0)
        trace.tags_accepted.append(0)
        trace.cmd.append((0.2, 0.0))
        trace.waypoint_index.append(0)
        trace.stop_reason.append("")
    write_mcap(folder / "run.mcap", trace)
    return folder


def test_rpe_ignores_a_constant_offset_and_measures_drift() -> None:
    true = _straight()
    offset = true + np.array([0.1, -0.05, 0.0])
    r = relative_pose_error(true, offset, 1.0)
    assert r.pairs == 181 and r.trans_max_m == pytest.approx(0.0, abs=1e-12) and r.rot_max_rad == 0.0
    # 1% scale drift along the path: 1 cm per metre travelled (6.25 cm steps: exact segment ends)
    true = _straight(161, 10.0)
    drift = true.copy()
    drift[:, 0] *= 1.01
    r1 = relative_pose_error(true, drift, 1.0)
    r5 = relative_pose_error(true, drift, 5.0)
    assert r1.trans_rms_m == pytest.approx(0.01, rel=1e-6)
    assert r5.trans_rms_m == pytest.approx(0.05, rel=1e-6)
    # a heading error of 0.1 rad: no rotation drift, but the estimated motion points the wrong way
    turned = true.copy()
    turned[:, 2] = 0.1
    i, et, er = relative_pose_errors(true, turned, 1.0)
    np.testing.assert_allclose(er, 0.0, atol=1e-12)
    np.testing.assert_allclose(et, 2.0 * math.sin(0.05) * 1.0, rtol=1e-6)  # |R(0.1) d - d| for |d| = 1 m
    assert i[0] == 0


def test_rpe_segments_and_short_runs() -> None:
    i, j = segment_pairs(np.column_stack([[0.0, 0.4, 0.9, 1.0, 1.6], np.zeros(5)]), 1.0)
    assert i.tolist() == [0, 1] and j.tolist() == [3, 4]
    short = relative_pose_error(_straight(11, 0.5), _straight(11, 0.5), 1.0)
    assert short.pairs == 0 and math.isnan(short.trans_rms_m)
    with pytest.raises(ValueError, match="segment length"):
        relative_pose_error(_straight(), _straight(), 0.0)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        relative_pose_error(np.zeros((4, 2)), np.zeros((4, 2)), 1.0)


def test_eval_of_a_synthetic_run_folder(tmp_path: Path) -> None:
    true = _straight()
    est = true + np.array([0.03, 0.04, 0.0])  # 5 cm everywhere
    run = _write_run(tmp_path / "run", true, est)
    poses = read_run_poses(run / "run.mcap")
    assert list(poses) == ["rover1"]
    np.testing.assert_allclose(poses["rover1"].est_pose, est, atol=1e-12)
    res = evaluate_run(run, (1.0, 5.0, 50.0), plot_path=tmp_path / "eval.png")
    r = res["rovers"][0]
    assert r["localization_ate_m"] == pytest.approx(0.05) and r["localization_max_error_m"] == pytest.approx(0.05)
    assert r["path_length_m"] == pytest.approx(10.0)
    assert [e["pairs"] for e in r["rpe"]] == [181, 101, 0]
    assert r["rpe"][0]["trans_rms_m"] == 0.0 and r["rpe"][2]["trans_rms_m"] is None
    assert (tmp_path / "eval.png").stat().st_size > 0
    json.dumps(res, allow_nan=False)


def test_eval_run_cli_on_a_sim_run_matches_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pybullet")
    from targets.cli import main

    run = tmp_path / "run"
    assert main(["sim", "run", "missions/waypoints.yaml", "--out", str(run), "--max-steps", "60", "--quiet"]) in (0, 1)
    capsys.readouterr()
    args = _eval_parser().parse_args(["run", str(run), "--json"])
    assert args.func(args) == 0
    res = json.loads(capsys.readouterr().out)
    summary = json.loads((run / "summary.json").read_text())
    r = res["rovers"][0]
    assert r["samples"] == 60
    assert r["localization_ate_m"] == summary["localization_ate_m"]
    assert r["localization_max_error_m"] == summary["localization_max_error_m"]
    assert (run / "eval.png").is_file()
    args = _eval_parser().parse_args(["run", str(run), "--no-plot", "--segment", "0.5"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "ATE RMS" in out and "RPE 0.5 m" in out


def test_eval_run_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _eval_parser().parse_args(["run", str(tmp_path / "missing")])
    assert args.func(args) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunEvalError, match=r"run\.mcap: not found"):
        evaluate_run(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.mcap").write_bytes(b"not an mcap file")
    with pytest.raises(RunEvalError, match=r"run\.mcap"):
        evaluate_run(tmp_path / "junk")
    run = _write_run(tmp_path / "ok", _straight(), _straight())
    with pytest.raises(RunEvalError, match="rovers in the log"):
        evaluate_run(run, rover_id="rover9")
    with pytest.raises(RunEvalError, match="--segment"):
        evaluate_run(run, (-1.0,))
