"""MRCLAM (UTIAS, real robots): the loader's checks on malformed files, and replays of all ten robot-runs
(runs 6 and 7, robots 1-5) in both modes that keep each figure under a small margin above the measured one
(and under its target where it meets it). One parameter set for all: ``MRCLAM_PARAMS``,
``MRCLAM_COMMAND_MODEL``, ``MRCLAM_RANGE_CALIBRATION``; SLAM also with first-estimates Jacobians.
Two robot-runs (and one FEJ replay) run by default; the rest are marked slow (about 4 s each).
The table is in BENCHMARKS.md ("MRCLAM replay").
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from targets.datasets.mrclam import MrclamFormatError, interpolate_truth, load_robot
from targets.datasets.mrclam_replay import (
    MRCLAM_COMMAND_MODEL,
    MRCLAM_PARAMS,
    MRCLAM_RANGE_CALIBRATION,
    NO_RANGE_CALIBRATION,
    CommandModel,
    replay,
)

TARGET_M = {"localization": 0.15, "slam": 0.30}
MARGIN = 1.1  # a figure may drift up 10 % over the measured one (numerical noise), not more

# measured with the final code: (run, robot) -> localization (ATE RMS m, max m, position NEES)
LOC = {
    (6, 1): (0.1263, 0.5984, 2.3),
    (6, 2): (0.1435, 0.6553, 3.41),
    (6, 3): (0.0934, 0.493, 1.9),
    (6, 4): (0.1887, 0.8949, 2.89),
    (6, 5): (0.0872, 0.2747, 3.87),
    (7, 1): (0.091, 0.4476, 1.81),
    (7, 2): (0.0794, 0.2322, 3.0),
    (7, 3): (0.1189, 0.8262, 4.0),
    (7, 4): (0.1413, 0.3719, 5.61),
    (7, 5): (0.0903, 0.2259, 4.31),
}
# SLAM: (ATE RMS as is, max, NEES, ATE RMS aligned, map error RMS as is, map error RMS aligned)
SLAM = {
    (6, 1): (0.3227, 0.6347, 1.49, 0.1696, 0.0884, 0.0448),
    (6, 2): (0.7508, 1.3791, 25.28, 0.1997, 1.3294, 0.0714),
    (6, 3): (0.258, 0.9221, 0.97, 0.2071, 0.1522, 0.0561),
    (6, 4): (0.4165, 1.2733, 4.61, 0.2857, 0.3117, 0.058),
    (6, 5): (0.8882, 1.8433, 26.26, 0.2448, 1.3801, 0.0192),
    (7, 1): (0.7435, 1.4021, 9.16, 0.1778, 1.0924, 0.0304),
    (7, 2): (0.1435, 0.3285, 2.54, 0.0895, 0.1494, 0.0594),
    (7, 3): (0.133, 0.7824, 1.38, 0.1199, 0.0676, 0.0445),
    (7, 4): (0.7747, 2.3318, 8.71, 0.4743, 0.8466, 0.0505),
    (7, 5): (0.1079, 0.2544, 1.42, 0.1004, 0.0979, 0.0253),
}
# SLAM with first-estimates Jacobians (``first_estimates_jacobians=True``), same columns
SLAM_FEJ = {
    (6, 1): (0.378, 0.6395, 1.35, 0.1527, 0.308, 0.045),
    (6, 2): (0.381, 1.1041, 2.97, 0.221, 0.4385, 0.0717),
    (6, 3): (0.2651, 0.9138, 0.95, 0.2144, 0.0721, 0.0542),
    (6, 4): (0.6032, 1.8196, 4.5, 0.2799, 0.7387, 0.0647),
    (6, 5): (0.3623, 0.6702, 2.4, 0.1852, 0.4396, 0.0312),
    (7, 1): (1.5778, 3.3187, 45.8, 1.3042, 1.0842, 0.2968),
    (7, 2): (0.1788, 0.3472, 3.1, 0.0884, 0.2363, 0.058),
    (7, 3): (0.1248, 0.7717, 1.29, 0.1195, 0.0706, 0.0477),
    (7, 4): (0.4469, 1.3671, 2.43, 0.2931, 0.1698, 0.0606),
    (7, 5): (0.1022, 0.2408, 1.24, 0.0999, 0.0811, 0.0289),
}
FAST = {(6, 3), (7, 2)}  # run by default; the others are marked slow
FAST_FEJ = {(6, 2)}


def _cases(fast: set[tuple[int, int]]) -> list[object]:
    return [
        pytest.param(k, marks=() if k in fast else pytest.mark.slow, id=f"run{k[0]}-robot{k[1]}") for k in sorted(LOC)
    ]


def _bound(measured: float, target: float | None = None, slack: float = 0.0) -> float:
    """What a figure may reach: the measured one plus the margin, and never over its target when the
    measured figure meets it."""
    b = MARGIN * measured + slack
    return min(b, target) if target is not None and measured <= target else b


def _mrclam_root(shared_data: Path) -> Path:
    root = shared_data / "mrclam"
    if not (root / "MRCLAM_Dataset6").is_dir() or not (root / "MRCLAM_Dataset7").is_dir():
        pytest.skip(f"MRCLAM runs 6 and 7 are absent from {root}")
    return root


def _check_slam(res: object, measured: tuple[float, float, float, float, float, float]) -> None:
    from targets.datasets.mrclam_replay import ReplayResult

    assert isinstance(res, ReplayResult)
    ate, ate_max, nees, aligned, map_rms, map_aligned = measured
    assert res.ate_rms_m <= _bound(ate, TARGET_M["slam"])  # as is: the frame anchored by the start pose
    assert res.ate_max_m <= _bound(ate_max, slack=0.01)
    assert res.nees_mean <= _bound(nees, slack=0.1)
    assert res.ate_aligned_rms_m <= _bound(aligned, TARGET_M["slam"])
    assert res.map_error_m["landmarks"] == 15
    assert res.map_error_m["rms"] <= _bound(map_rms, slack=0.005)
    assert res.map_error_m["aligned_rms"] <= _bound(map_aligned, slack=0.005)


@pytest.mark.parametrize("key", _cases(FAST))
def test_mrclam_replay_keeps_its_figures(shared_data: Path, key: tuple[int, int]) -> None:
    root = _mrclam_root(shared_data)
    log = load_robot(root, *key)
    assert len(log.landmarks) == 15 and len(log.odometry) > 10_000
    ate, ate_max, nees = LOC[key]

    loc = replay(log, "localization")
    assert loc.ate_rms_m <= _bound(ate, TARGET_M["localization"])
    assert loc.ate_max_m <= _bound(ate_max, slack=0.01)
    assert 1.0 < loc.nees_mean <= _bound(nees, slack=0.1)  # not wildly over-confident on real data
    assert loc.counts["robot_subject"] > 0  # other robots were seen, and skipped
    assert loc.counts["accepted"] > 1000
    assert loc.valid.mean() > 0.75  # run 6 robot 1: Vicon covers 80 % of its log (its last 150 s are missing)

    _check_slam(replay(log, "slam"), SLAM[key])


@pytest.mark.parametrize("key", _cases(FAST_FEJ))
def test_mrclam_slam_with_first_estimates_jacobians(shared_data: Path, key: tuple[int, int]) -> None:
    """Consistent EKF-SLAM (no spurious information on the global heading): run 6 robot 2's map frame,
    rotated 0.3 rad by its yaw error in the first minute, turns back at the loop closures (as-is ATE
    0.751 -> 0.381 m, NEES 25 -> 3); run 7 robot 1 is its failure case (a far-off first estimate)."""
    root = _mrclam_root(shared_data)
    log = load_robot(root, *key)
    _check_slam(
        replay(log, "slam", params=dataclasses.replace(MRCLAM_PARAMS, first_estimates_jacobians=True)), SLAM_FEJ[key]
    )


def test_mrclam_models_correct_range_and_commands() -> None:
    """The camera range calibration shrinks ranges seen on the optical axis (+3 % bias) and stretches
    those at the image edge (-8.5 %); the command model makes commands slower and drift clockwise."""
    cal = MRCLAM_RANGE_CALIBRATION
    assert cal.corrected_m(3.0, 0.0) == pytest.approx(3.0 / 1.0326)
    assert cal.corrected_m(3.0, 0.6) > 3.0 > cal.corrected_m(3.0, 0.0)
    assert NO_RANGE_CALIBRATION.corrected_m(3.0, 0.6) == 3.0
    v, w = MRCLAM_COMMAND_MODEL.actual(0.1, 0.0)
    assert v == pytest.approx(0.092) and w < 0.0
    _, w_small = MRCLAM_COMMAND_MODEL.actual(0.0, 0.05)
    assert 0.0 < w_small < 0.05 * MRCLAM_COMMAND_MODEL.yaw_scale


def _write(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="ascii") as fh:
        fh.write("# header\n" + "\n".join(lines) + "\n")


def _fake_run(tmp_path: Path, measurement_lines: list[str]) -> Path:
    run = tmp_path / "MRCLAM_Dataset9"
    run.mkdir(parents=True)
    _write(run / "Barcodes.dat.gz", ["1 5", "2 14", "6 27"])
    _write(run / "Landmark_Groundtruth.dat.gz", ["6 1.0 2.0 0.001 0.001"])
    _write(run / "Robot1_Odometry.dat.gz", ["100.0 0.1 0.0", "100.5 0.1 0.0", "100.2 0.1 0.0", "101.0 0.0 0.0"])
    _write(run / "Robot1_Measurement.dat.gz", measurement_lines)
    _write(run / "Robot1_Groundtruth.dat.gz", [f"{99.0 + 0.1 * k:.1f} {0.01 * k:.2f} 0 0" for k in range(31)])
    return tmp_path


def test_loader_converts_sorts_and_maps_barcodes(tmp_path: Path) -> None:
    root = _fake_run(tmp_path, ["100.1 27 2.0 0.1", "100.2 14 3.0 0.0", "100.3 99 1.0 0.0"])
    log = load_robot(root, 9, 1)
    assert [c.stamp_s for c in log.odometry] == pytest.approx([0.0, 0.2, 0.5, 1.0])  # re-sorted
    assert log.out_of_order == 1
    assert [o.landmark_id for o in log.observations] == [6, 2]  # barcode -> subject; 2 is a robot
    assert not log.is_landmark(2) and log.is_landmark(6)
    assert log.unknown_barcodes == 1
    poses, valid = interpolate_truth(log.truth, np.array([0.5, 5.0]), max_gap_s=2.0)
    assert valid.tolist() == [True, False] and poses[0, 0] == pytest.approx(0.15)


def test_loader_names_file_and_line_of_a_malformed_line(tmp_path: Path) -> None:
    root = _fake_run(tmp_path, ["100.1 27 2.0 0.1", "100.2 27 abc 0.0"])
    with pytest.raises(MrclamFormatError, match=r"Robot1_Measurement\.dat\.gz:3: not a number"):
        load_robot(root, 9, 1)


def test_loader_errors_on_missing_files_and_bad_ids(tmp_path: Path) -> None:
    with pytest.raises(MrclamFormatError, match="run folder not found"):
        load_robot(tmp_path, 6, 1)
    root = _fake_run(tmp_path, ["100.1 27.5 2.0 0.1"])
    with pytest.raises(MrclamFormatError, match=r":2: column 2 must be an integer id"):
        load_robot(root, 9, 1)
    with pytest.raises(MrclamFormatError, match=r"Robot2_Odometry\.dat\.gz: file not found"):
        load_robot(root, 9, 2)
    with pytest.raises(MrclamFormatError, match="robot must be 1-5"):
        load_robot(root, 9, 7)


def test_replay_handles_gaps_outliers_and_other_robots() -> None:
    """A synthetic log in the MRCLAM layout: a 10 s hole in the odometry (the robot stood still), an
    outlier range, a sighting of another robot. The replay bridges the hole with growing uncertainty,
    gates the outlier and skips the robot."""
    from autonomy.estimation.landmark_ekf import RangeBearingObservation
    from autonomy.msgs import DriveCommand, Landmark
    from targets.datasets.mrclam import MrclamRobotLog

    v = 0.2
    stamps = [k * 0.1 for k in range(101)] + [20.0 + k * 0.1 for k in range(101)]
    odometry = tuple(DriveCommand(t, v if t < 9.95 or t >= 20.0 else 0.0, 0.0) for t in stamps)

    def true_x(t: float) -> float:  # the robot moves 0.1 s after its command (the replay's delay)
        return v * min(max(t - 0.1, 0.0), 9.9) + v * max(t - 20.1, 0.0)

    truth = np.array([(t, true_x(t), 0.0, 0.0) for t in np.arange(-1.0, 31.0, 0.01)])
    marks = {6: (4.0, 2.0), 7: (4.0, -2.0), 8: (0.0, 3.0)}
    obs: list[RangeBearingObservation] = []
    for k in range(1, 60):
        t = 0.5 * k
        if 10.0 < t < 21.0:
            continue  # nothing seen during the hole either
        x = true_x(t)
        for lm_id, (lx, ly) in marks.items():
            r, b = float(np.hypot(lx - x, ly)), float(np.arctan2(ly, lx - x))
            obs.append(RangeBearingObservation(t, lm_id, r + (5.0 if (k, lm_id) == (10, 6) else 0.0), b))
    obs.append(RangeBearingObservation(5.0, 2, 1.0, 0.0))  # robot 2, not a landmark
    obs.sort(key=lambda o: o.stamp_s)
    log = MrclamRobotLog(
        run=0,
        robot=1,
        t0_s=0.0,
        odometry=odometry,
        observations=tuple(obs),
        truth=truth,
        landmarks=tuple(Landmark(i, x, y, 0.0, 0.3) for i, (x, y) in marks.items()),
        landmark_std_m={i: (0.001, 0.001) for i in marks},
        unknown_barcodes=0,
        out_of_order=0,
    )
    for mode in ("localization", "slam"):
        res = replay(
            log,
            mode,
            record_every=1,
            commands=CommandModel(0.1, 0.2, 1.0, 1.0, 0.0, 0.0),  # this synthetic robot does as it is told
            range_calibration=NO_RANGE_CALIBRATION,
        )
        assert res.odometry_gaps == 1
        assert res.counts["robot_subject"] == 1
        assert res.counts["gated"] >= 1
        assert res.ate_rms_m < 0.1
        after_gap = (res.stamps_s > 19.9) & (res.stamps_s < 20.15)  # the first record after the hole
        before = (res.stamps_s > 5.0) & (res.stamps_s < 9.0)
        assert res.sigma_xy_m[after_gap].max() > 2 * res.sigma_xy_m[before].max()


def test_cli_eval_mrclam(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import json

    from targets import cli_eval

    parser = argparse.ArgumentParser(prog="rover")
    sub = parser.add_subparsers(dest="command", required=True)
    ev_sub = cli_eval.register(sub)
    assert cli_eval.eval_subparsers(sub) is ev_sub  # other ``eval`` commands join the same parser
    root = _fake_run(tmp_path / "data", ["100.1 27 2.2 1.1", "100.6 27 2.1 1.1"])
    args = parser.parse_args(["eval", "mrclam", "9", "1", "--data", str(root), "--json", "--out", str(tmp_path / "o")])
    code = args.func(args)
    summary = json.loads(capsys.readouterr().out)
    assert code in (0, 1) and summary["run"] == 9 and summary["mode"] == "localization"
    assert Path(summary["plot"]).is_file() and Path(summary["plot"]).suffix == ".png"
    args = parser.parse_args(["eval", "mrclam", "8", "1", "--data", str(root)])
    assert args.func(args) == 2
    assert "MRCLAM_Dataset8: MRCLAM run folder not found" in capsys.readouterr().err
