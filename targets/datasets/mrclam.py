"""Loader for the UTIAS Multi-Robot Cooperative Localization and Mapping (MRCLAM) data set.

Layout of one run folder (``MRCLAM_DatasetN``; every file is whitespace-separated text, optionally
gzip-compressed, ``#`` starts a comment line)::

    Barcodes.dat              subject  barcode          (subjects 1-5 are robots, 6-20 landmarks)
    Landmark_Groundtruth.dat  subject  x_m  y_m  x_std_m  y_std_m
    Robot{n}_Odometry.dat     time_s  v_mps  omega_radps  (the commanded body twist, ~67 Hz)
    Robot{n}_Measurement.dat  time_s  barcode  range_m  bearing_rad
    Robot{n}_Groundtruth.dat  time_s  x_m  y_m  yaw_rad  (Vicon, ~100 Hz)

The loader converts to the project's types: odometry to ``DriveCommand``, measurements to
``RangeBearingObservation`` (``landmark_id`` is the *subject* number, looked up from the barcode; a
barcode of another robot or an unknown barcode is kept with ``robot_subject`` / ``unknown`` counts so the
replay can skip it), landmarks to ``Landmark``. Stamps are returned relative to ``t0_s`` (the first
odometry stamp of the robot) so that float64 keeps sub-millisecond resolution. Records are sorted by
stamp (stable), which repairs out-of-order lines; how many were out of order is reported.

A malformed line raises ``MrclamFormatError`` naming the file, the line number and the reason.
"""

from __future__ import annotations

import gzip
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from autonomy.estimation.landmark_ekf import RangeBearingObservation
from autonomy.msgs import DriveCommand, Landmark

FloatArray = npt.NDArray[np.float64]

ROBOT_SUBJECTS = range(1, 6)
LANDMARK_SIZE_M = 0.3  # the MRCLAM barcode cylinders are ~0.3 m tall; size is informational only


class MrclamFormatError(ValueError):
    """A data file is missing or has a malformed line (``FILE:LINE: reason``)."""


def _open_table(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.dat.gz", f"{stem}.dat", f"{stem}.gz"):
        p = folder / name
        if p.is_file():
            return p
    raise MrclamFormatError(f"{folder / (stem + '.dat.gz')}: file not found (nor {stem}.dat)")


def _read_rows(path: Path, ncols: int, int_cols: tuple[int, ...] = ()) -> list[tuple[int, list[float]]]:
    """(line number, values) for every data line of ``path``; ``ncols`` numbers per line."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[tuple[int, list[float]]] = []
    try:
        with opener(path, "rt", encoding="ascii", errors="replace") as fh:
            for lineno, line in enumerate(fh, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                parts = text.split()
                if len(parts) != ncols:
                    raise MrclamFormatError(f"{path}:{lineno}: expected {ncols} numbers, got {len(parts)}: {text!r}")
                try:
                    vals = [float(p) for p in parts]
                except ValueError:
                    raise MrclamFormatError(f"{path}:{lineno}: not a number in {text!r}") from None
                if not all(math.isfinite(v) for v in vals):
                    raise MrclamFormatError(f"{path}:{lineno}: non-finite value in {text!r}")
                for c in int_cols:
                    if vals[c] != round(vals[c]):
                        raise MrclamFormatError(
                            f"{path}:{lineno}: column {c + 1} must be an integer id, got {parts[c]}"
                        )
                rows.append((lineno, vals))
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise MrclamFormatError(f"{path}: cannot read: {exc}") from exc
    if not rows:
        raise MrclamFormatError(f"{path}: no data lines")
    return rows


def _sorted_by_time(rows: list[tuple[int, list[float]]]) -> tuple[list[tuple[int, list[float]]], int]:
    stamps = [r[1][0] for r in rows]
    backwards = sum(1 for a, b in itertools.pairwise(stamps) if b < a)
    if backwards == 0:
        return rows, 0
    return sorted(rows, key=lambda r: r[1][0]), backwards


@dataclass(frozen=True, slots=True, eq=False)
class MrclamRobotLog:
    """One robot of one run. Stamps are seconds since ``t0_s`` (the robot's first odometry stamp)."""

    run: int
    robot: int
    t0_s: float
    odometry: tuple[DriveCommand, ...]
    observations: tuple[RangeBearingObservation, ...]  # landmark and robot subjects (see ``is_landmark``)
    truth: FloatArray  # (N, 4): stamp_s, x_m, y_m, yaw_rad (Vicon), sorted
    landmarks: tuple[Landmark, ...]  # surveyed positions (subjects 6-20)
    landmark_std_m: dict[int, tuple[float, float]]
    unknown_barcodes: int  # measurement lines whose barcode is in no table (dropped)
    out_of_order: int  # lines whose stamp was earlier than the previous line's (re-sorted)

    def is_landmark(self, subject: int) -> bool:
        return subject not in ROBOT_SUBJECTS


def run_folder(root: Path, run: int) -> Path:
    folder = Path(root) / f"MRCLAM_Dataset{run}"
    if not folder.is_dir():
        raise MrclamFormatError(f"{folder}: MRCLAM run folder not found")
    return folder


def load_robot(root: Path, run: int, robot: int) -> MrclamRobotLog:
    """Load run ``run`` (e.g. 6), robot ``robot`` (1-5) from ``root`` (the folder holding MRCLAM_DatasetN)."""
    if robot not in ROBOT_SUBJECTS:
        raise MrclamFormatError(f"robot must be 1-5, got {robot}")
    folder = run_folder(root, run)

    barcode_to_subject: dict[int, int] = {}
    path = _open_table(folder, "Barcodes")
    for lineno, (subject, barcode) in _read_rows(path, 2, (0, 1)):
        if int(barcode) in barcode_to_subject:
            raise MrclamFormatError(f"{path}:{lineno}: barcode {int(barcode)} listed twice")
        barcode_to_subject[int(barcode)] = int(subject)

    landmarks: list[Landmark] = []
    std: dict[int, tuple[float, float]] = {}
    path = _open_table(folder, "Landmark_Groundtruth")
    for lineno, (subject, x, y, sx, sy) in _read_rows(path, 5, (0,)):
        sid = int(subject)
        if sid in ROBOT_SUBJECTS or sid in std:
            raise MrclamFormatError(f"{path}:{lineno}: subject {sid} is a robot id or listed twice")
        if sx < 0 or sy < 0:
            raise MrclamFormatError(f"{path}:{lineno}: negative std-dev")
        landmarks.append(Landmark(sid, x, y, 0.0, LANDMARK_SIZE_M))
        std[sid] = (sx, sy)

    path = _open_table(folder, f"Robot{robot}_Odometry")
    odo_rows, odo_back = _sorted_by_time(_read_rows(path, 3))
    t0 = odo_rows[0][1][0]
    odometry = tuple(DriveCommand(v[0] - t0, v[1], v[2]) for _, v in odo_rows)

    path = _open_table(folder, f"Robot{robot}_Measurement")
    meas_rows, meas_back = _sorted_by_time(_read_rows(path, 4, (1,)))
    obs: list[RangeBearingObservation] = []
    unknown = 0
    for lineno, (t, barcode, rng, bearing) in meas_rows:
        subject_id = barcode_to_subject.get(int(barcode))
        if subject_id is None:
            unknown += 1
            continue
        if rng <= 0.0:
            raise MrclamFormatError(f"{path}:{lineno}: range must be > 0, got {rng}")
        obs.append(RangeBearingObservation(t - t0, subject_id, rng, bearing))

    path = _open_table(folder, f"Robot{robot}_Groundtruth")
    gt_rows, gt_back = _sorted_by_time(_read_rows(path, 4))
    truth = np.array([v for _, v in gt_rows], dtype=np.float64)
    truth[:, 0] -= t0

    return MrclamRobotLog(
        run=run,
        robot=robot,
        t0_s=t0,
        odometry=odometry,
        observations=tuple(obs),
        truth=truth,
        landmarks=tuple(landmarks),
        landmark_std_m=std,
        unknown_barcodes=unknown,
        out_of_order=odo_back + meas_back + gt_back,
    )


def interpolate_truth(
    truth: FloatArray, stamps_s: FloatArray, max_gap_s: float = 0.5
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Ground truth (x, y, yaw) linearly interpolated at ``stamps_s`` (yaw unwrapped first).

    Returns (poses (M, 3), valid (M,) bool): a stamp is valid when it lies within the truth's span and
    the two truth samples around it are at most ``max_gap_s`` apart (Vicon drop-outs are not bridged).
    """
    t = truth[:, 0]
    yaw = np.unwrap(truth[:, 3])
    x = np.interp(stamps_s, t, truth[:, 1])
    y = np.interp(stamps_s, t, truth[:, 2])
    th = np.interp(stamps_s, t, yaw)
    idx = np.searchsorted(t, stamps_s)
    inside = (idx > 0) & (idx < len(t))
    idx_c = np.clip(idx, 1, len(t) - 1)
    gap = t[idx_c] - t[idx_c - 1]
    valid = inside & (gap <= max_gap_s)
    th = (th + np.pi) % (2 * np.pi) - np.pi
    return np.stack([x, y, th], axis=1), valid
