"""Localization metrics against ground truth (pure numpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autonomy.msgs import Pose2D, PoseEstimate


def position_errors_m(true_xy: npt.ArrayLike, est_xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-sample Euclidean position error (m) between matched (N, 2) arrays of true and estimated xy."""
    t = np.asarray(true_xy, dtype=np.float64)
    e = np.asarray(est_xy, dtype=np.float64)
    if t.size == 0 and e.size == 0:
        return np.zeros(0, dtype=np.float64)
    if t.shape != e.shape or t.ndim != 2 or t.shape[1] != 2:
        raise ValueError(f"need matched (N, 2) arrays, got {t.shape} and {e.shape}")
    return np.asarray(np.hypot(*(e - t).T), dtype=np.float64)


def absolute_trajectory_error(true_xy: npt.ArrayLike, est_xy: npt.ArrayLike) -> tuple[float, float]:
    """(ATE RMS, max error) in metres, in the map frame as is (no alignment: the map frame is surveyed)."""
    err = position_errors_m(true_xy, est_xy)
    if err.size == 0:
        raise ValueError("no samples to compute the trajectory error from")
    return float(np.sqrt(np.mean(err**2))), float(err.max())


def position_nees(estimate: PoseEstimate, truth: Pose2D) -> float:
    """Normalised estimation error squared of the position (2 dof): e^T P_xy^-1 e, e = estimate - truth.

    For a consistent filter its mean over a run is about 2 (the chi-square mean for 2 dof); well above
    means the filter is overconfident.
    """
    c = estimate.covariance
    p_xy = np.array([[c[0][0], c[0][1]], [c[1][0], c[1][1]]], dtype=np.float64)
    e = np.array([estimate.pose.x_m - truth.x_m, estimate.pose.y_m - truth.y_m], dtype=np.float64)
    return float(e @ np.linalg.solve(p_xy, e))


@dataclass(frozen=True, slots=True)
class RelativePoseError:
    """RPE over segments of ``segment_m`` travelled (ground-truth path length): translation (m) and rotation (rad).

    ``pairs`` = 0 when the run is shorter than one segment (every statistic is then NaN).
    """

    segment_m: float
    pairs: int
    trans_rms_m: float
    trans_mean_m: float
    trans_max_m: float
    rot_rms_rad: float
    rot_mean_rad: float
    rot_max_rad: float


def _as_poses(name: str, poses: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(poses, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{name}: need an (N, 3) array of (x_m, y_m, yaw_rad), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains non-finite values")
    return a


def segment_pairs(true_xy: npt.ArrayLike, segment_m: float) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i, j): j is the first sample at least ``segment_m`` of ground-truth path after i."""
    if not (segment_m > 0.0 and math.isfinite(segment_m)):
        raise ValueError(f"segment length must be > 0, got {segment_m}")
    xy = np.asarray(true_xy, dtype=np.float64).reshape(-1, 2)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])
    j = np.searchsorted(s, s + segment_m, side="left")
    i = np.flatnonzero(j < s.size)
    return i.astype(np.intp), j[i].astype(np.intp)


def relative_pose_errors(
    true_pose: npt.ArrayLike, est_pose: npt.ArrayLike, segment_m: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-pair SE(2) relative pose error over ``segment_m`` segments: (start index i, |e_t| (m), |e_r| (rad)).

    With T_k = (R(theta_k), p_k) in SE(2), the motion from i to j is D = T_i^-1 T_j (truth: D_t, estimate:
    D_e) and the error is E = D_t^-1 D_e::

        d_t = R(-theta_t,i)(p_t,j - p_t,i),  dtheta_t = theta_t,j - theta_t,i   (the same for the estimate)
        e_t = R(-dtheta_t)(d_e - d_t),       e_r = wrap(dtheta_e - dtheta_t)

    It is insensitive to a constant offset of the whole estimate (that is ATE's job) and measures drift.
    """
    t = _as_poses("true poses", true_pose)
    e = _as_poses("estimated poses", est_pose)
    if t.shape != e.shape:
        raise ValueError(f"need matched (N, 3) arrays, got {t.shape} and {e.shape}")
    i, j = segment_pairs(t[:, :2], segment_m)

    def motion(p: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        c, s = np.cos(p[i, 2]), np.sin(p[i, 2])
        dx, dy = p[j, 0] - p[i, 0], p[j, 1] - p[i, 1]
        return np.column_stack([c * dx + s * dy, -s * dx + c * dy]), p[j, 2] - p[i, 2]

    d_t, th_t = motion(t)
    d_e, th_e = motion(e)
    c, s = np.cos(th_t), np.sin(th_t)
    diff = d_e - d_t
    ex = c * diff[:, 0] + s * diff[:, 1]
    ey = -s * diff[:, 0] + c * diff[:, 1]
    er = np.abs(np.arctan2(np.sin(th_e - th_t), np.cos(th_e - th_t)))
    return i, np.asarray(np.hypot(ex, ey), dtype=np.float64), np.asarray(er, dtype=np.float64)


def relative_pose_error(true_pose: npt.ArrayLike, est_pose: npt.ArrayLike, segment_m: float) -> RelativePoseError:
    """RMS, mean and max of ``relative_pose_errors`` over every segment of ``segment_m`` in the run."""
    _, et, er = relative_pose_errors(true_pose, est_pose, segment_m)
    if et.size == 0:
        nan = math.nan
        return RelativePoseError(segment_m, 0, nan, nan, nan, nan, nan, nan)
    return RelativePoseError(
        segment_m,
        int(et.size),
        float(np.sqrt(np.mean(et**2))),
        float(np.mean(et)),
        float(np.max(et)),
        float(np.sqrt(np.mean(er**2))),
        float(np.mean(er)),
        float(np.max(er)),
    )
