"""Localization metrics against ground truth (pure numpy)."""

from __future__ import annotations

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
