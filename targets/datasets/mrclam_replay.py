"""Replay an MRCLAM robot log through the project's landmark EKF and score it against Vicon truth.

Event loop (all stamps relative to the robot's first odometry line):

- Odometry lines are velocity commands (v, omega) held until the next line. Clock offset and actuator
  response: a command takes effect ``COMMAND_DELAY_S`` after its stamp and the speeds follow it through
  a first-order lag (``COMMAND_LAG_S``), integrated exactly between events. The filter is predicted to
  each event's stamp; a command is held at most ``MAX_HOLD_S``: the rest of a gap in the odometry is
  *unknown motion* (``predict(..., gap_s=...)``: variance grows with the gap). The filter's calibration
  states (yaw-rate bias, distance and yaw scales) absorb the commands' systematic errors online.
- Measurements of subjects 1-5 are other robots, not landmarks: skipped (counted). Barcodes in no
  table were dropped by the loader (counted). Measurements before the first odometry line are skipped.
- Lines with unsorted stamps were re-sorted by the loader; events with equal stamps run predict first.
- Outliers: Mahalanobis gating in the filter (counted as ``gated``).

Two modes: ``localization`` (the 15 surveyed landmarks are fixed and known) and ``slam`` (no landmark
known; each one is mapped from its first observation). Both start from the Vicon pose at the first
odometry stamp (this fixes the map frame to the Vicon frame).

Scores: ATE RMS and max of the filtered (causal) position, every ``record_every`` odometry steps, against
the truth linearly interpolated at the estimate stamps (stamps outside the truth, or in a Vicon gap
> 0.5 s, are left out), as is; and ``ate_aligned_rms_m`` after a least-squares rigid 2D alignment of the
whole path (the usual ATE for SLAM, whose map frame drifts with the early pose errors). SLAM map
error: the distance of each mapped landmark from its surveyed position, as is
(the frame is anchored by the start pose) and after a least-squares rigid 2D alignment (Kabsch) of
the mapped onto the surveyed positions (the map's shape, free of its global drift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from autonomy.estimation.landmark_ekf import (
    DenseEkfSlam,
    LandmarkEkf,
    LandmarkEkfParams,
    UpdateResult,
)
from autonomy.msgs import Pose2D
from autonomy.runtime.metrics import absolute_trajectory_error
from targets.datasets.mrclam import MrclamRobotLog, interpolate_truth

FloatArray = npt.NDArray[np.float64]
Mode = Literal["localization", "slam"]

# ONE parameter set for every robot of every run (no per-robot tuning).
MRCLAM_PARAMS = LandmarkEkfParams(
    # odometry = commanded twist: about 17 % distance error and 0.026 rad yaw error per second
    # (measured against Vicon over 1-2 s windows on all ten robot-runs)
    distance_var_per_m=0.06**2,
    lateral_var_per_m=0.03**2,
    yaw_var_per_rad=0.1**2,
    yaw_var_per_m=0.0,
    yaw_var_per_s=0.0005,
    # the commands are 5-13 % fast and slightly biased: estimated online (the calibration states)
    yaw_rate_bias_sigma_radps=0.01,
    yaw_rate_bias_var_per_s=1e-4**2,
    distance_scale_sigma=0.1,
    distance_scale_var_per_s=1e-3**2,
    yaw_scale_sigma=0.1,
    yaw_scale_var_per_s=1e-3**2,
    # camera range-bearing: bearing about 0.01-0.02 rad; range heavy-tailed, 0.08 m at 1.5 m to 0.18 m at
    # 5 m, so ranges are trusted less than their spread (a generous range term keeps NEES near 3-7)
    range_sigma_m=0.03,
    range_sigma_per_m=0.12,
    bearing_sigma_rad=0.02,
)
# The robots follow their logged velocity commands late: a dead time plus a first-order lag (motor and
# wheel dynamics, and the logging clock's offset). Measured by integrating the lagged command over 1 s
# windows against the Vicon yaw on all ten robot-runs (delay 0.1 s, tau 0.2 s: 0.026 rad RMS per
# second, against 0.034 rad for the raw command). One value for every robot and run.
COMMAND_DELAY_S = 0.1
COMMAND_LAG_S = 0.2
# a command is held this long after its stamp (the log repeats it at least every ~1 s); beyond: unknown motion
MAX_HOLD_S = 1.5


@dataclass(slots=True)
class ReplayResult:
    run: int
    robot: int
    mode: str
    stamps_s: FloatArray
    estimate: FloatArray  # (N, 3)
    sigma_xy_m: FloatArray  # (N,)
    truth: FloatArray  # (N, 3) interpolated
    valid: npt.NDArray[np.bool_]
    ate_rms_m: float
    ate_max_m: float
    nees_mean: float
    ate_aligned_rms_m: float = math.nan  # after a least-squares rigid 2D alignment of the whole path
    counts: dict[str, int] = field(default_factory=dict)
    map_error_m: dict[str, float] = field(default_factory=dict)
    landmarks: dict[int, tuple[float, float]] = field(default_factory=dict)
    odometry_gaps: int = 0
    lost_steps: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "robot": self.robot,
            "mode": self.mode,
            "ate_rms_m": round(self.ate_rms_m, 4),
            "ate_max_m": round(self.ate_max_m, 4),
            "ate_aligned_rms_m": round(self.ate_aligned_rms_m, 4),
            "position_nees_mean": round(self.nees_mean, 2),
            "samples": int(self.valid.sum()),
            "observations": self.counts,
            "odometry_gaps": self.odometry_gaps,
            "lost_steps": self.lost_steps,
            "map_error_m": {k: round(v, 4) for k, v in self.map_error_m.items()},
        }


def rigid_align_2d(src: FloatArray, dst: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Least-squares rotation R (2x2) and translation t with R src_i + t ~ dst_i (Kabsch, no scale)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    h = (src - mu_s).T @ (dst - mu_d)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, d]) @ u.T
    return rot, mu_d - rot @ mu_s


def replay(
    log: MrclamRobotLog,
    mode: Mode,
    params: LandmarkEkfParams = MRCLAM_PARAMS,
    dense: bool = False,
    record_every: int = 5,
    command_delay_s: float = COMMAND_DELAY_S,
    command_lag_s: float = COMMAND_LAG_S,
) -> ReplayResult:
    """Run one robot log through ``LandmarkEkf`` (or ``DenseEkfSlam``) and score it (module doc)."""
    if mode not in ("localization", "slam"):
        raise ValueError(f"mode must be 'localization' or 'slam', got {mode!r}")
    odo = [replace(c, stamp_s=c.stamp_s + command_delay_s) for c in log.odometry]
    t_start = odo[0].stamp_s
    start, ok = interpolate_truth(log.truth, np.array([t_start]))
    if not ok[0]:
        raise ValueError(f"run {log.run} robot {log.robot}: no ground truth at the first odometry stamp")
    x0 = start[0]
    p0 = np.diag([0.01**2, 0.01**2, math.radians(0.5) ** 2])  # the start pose defines the map frame
    cls = DenseEkfSlam if dense else LandmarkEkf
    surveyed = log.landmarks if mode == "localization" else ()
    ekf = cls(Pose2D(float(x0[0]), float(x0[1]), float(x0[2])), p0, surveyed, params)

    counts = {"robot_subject": 0, "before_start": 0, "unknown_barcode": log.unknown_barcodes}
    for r in UpdateResult:
        counts[r.value] = 0

    stamps: list[float] = []
    est: list[tuple[float, float, float]] = []
    sig: list[float] = []
    covs: list[FloatArray] = []
    gaps = 0
    lost_steps = 0

    obs = [o for o in log.observations]
    n_obs = len(obs)
    k_obs = 0
    t_cur = t_start
    cmd_t, cmd_v, cmd_w = t_start, odo[0].linear_x_mps, odo[0].angular_z_radps

    v_eff, w_eff = cmd_v, cmd_w  # the lagged (actual) speeds

    def lagged(u: float, a: float, span: float) -> tuple[float, float]:
        """Integral over ``span`` of a first-order lag from ``a`` towards ``u``, and its end value."""
        if command_lag_s <= 0.0:
            return u * span, u
        e = math.exp(-span / command_lag_s)
        return u * span + (a - u) * command_lag_s * (1.0 - e), u + (a - u) * e

    def advance(t: float) -> None:
        nonlocal t_cur, v_eff, w_eff
        if t <= t_cur:
            return
        age0, age1 = t_cur - cmd_t, t - cmd_t
        held = max(0.0, min(age1, MAX_HOLD_S) - min(age0, MAX_HOLD_S))
        gap = (t - t_cur) - held
        d, v_eff = lagged(cmd_v, v_eff, held)
        dth, w_eff = lagged(cmd_w, w_eff, held)
        ekf.predict(t, d, dth, gap_s=gap, duration_s=held)
        t_cur = t

    while k_obs < n_obs and obs[k_obs].stamp_s < t_start:
        counts["before_start"] += 1
        k_obs += 1
    for k in range(1, len(odo) + 1):
        t_next = odo[k].stamp_s if k < len(odo) else math.inf
        while k_obs < n_obs and obs[k_obs].stamp_s < t_next:
            o = obs[k_obs]
            k_obs += 1
            if not log.is_landmark(o.landmark_id):
                counts["robot_subject"] += 1
                continue
            advance(o.stamp_s)
            res = ekf.update_range_bearing(o)
            counts[res.value] += 1
        if k == len(odo):
            break
        advance(t_next)
        if t_next - cmd_t > MAX_HOLD_S:
            gaps += 1
        cmd_t, cmd_v, cmd_w = t_next, odo[k].linear_x_mps, odo[k].angular_z_radps
        lost_steps += int(ekf.lost)
        if k % record_every == 0 or k == len(odo) - 1:
            m = ekf.mean
            p = ekf.covariance
            stamps.append(t_cur)
            est.append((float(m[0]), float(m[1]), float(m[2])))
            covs.append(p[:2, :2].copy())
            sig.append(math.sqrt(max(0.0, float(np.linalg.eigvalsh(p[:2, :2]).max()))))

    st = np.array(stamps)
    e = np.array(est)
    truth, valid = interpolate_truth(log.truth, st)
    if not valid.any():
        raise ValueError(f"run {log.run} robot {log.robot}: no estimate falls within the ground truth's span")
    ate_rms, ate_max = absolute_trajectory_error(truth[valid, :2], e[valid, :2])
    err = e[valid, :2] - truth[valid, :2]
    c = np.array(covs)[valid]
    nees = np.einsum("ni,nij,nj->n", err, np.linalg.inv(c), err)

    rot, trans = rigid_align_2d(e[valid, :2], truth[valid, :2])
    aligned = e[valid, :2] @ rot.T + trans
    ate_aligned = float(np.sqrt(np.mean(np.sum((aligned - truth[valid, :2]) ** 2, axis=1))))

    result = ReplayResult(
        run=log.run,
        robot=log.robot,
        mode=mode,
        stamps_s=st,
        estimate=e,
        sigma_xy_m=np.array(sig),
        truth=truth,
        valid=valid,
        ate_rms_m=ate_rms,
        ate_max_m=ate_max,
        nees_mean=float(nees.mean()),
        ate_aligned_rms_m=ate_aligned,
        counts=counts,
        odometry_gaps=gaps,
        lost_steps=lost_steps,
    )
    if mode == "slam":
        surveyed_xy = {lm.tag_id: (lm.x_m, lm.y_m) for lm in log.landmarks}
        mapped = {i: (float(mu[0]), float(mu[1])) for i, (mu, _) in ekf.landmarks().items() if i in surveyed_xy}
        result.landmarks = mapped
        if mapped:
            ids = sorted(mapped)
            src = np.array([mapped[i] for i in ids])
            dst = np.array([surveyed_xy[i] for i in ids])
            raw = np.hypot(*(src - dst).T)
            result.map_error_m = {
                "landmarks": float(len(ids)),
                "rms": float(np.sqrt(np.mean(raw**2))),
                "max": float(raw.max()),
            }
            if len(ids) >= 3:
                rot, t = rigid_align_2d(src, dst)
                al = np.hypot(*((src @ rot.T + t) - dst).T)
                result.map_error_m.update(
                    {"aligned_rms": float(np.sqrt(np.mean(al**2))), "aligned_max": float(al.max())}
                )
    return result


def plot_paths(result: ReplayResult, path: Path, landmarks: dict[int, tuple[float, float]] | None = None) -> Path:
    """Write a PNG of the true and estimated paths (and surveyed vs mapped landmarks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 7), dpi=100)
    v = result.valid
    ax.plot(result.truth[v, 0], result.truth[v, 1], "-", color="0.3", lw=1.2, label="Vicon truth")
    ax.plot(result.estimate[:, 0], result.estimate[:, 1], "-", color="tab:blue", lw=1.0, label="estimate")
    if landmarks:
        xy = np.array(list(landmarks.values()))
        ax.plot(xy[:, 0], xy[:, 1], "k^", ms=7, label="surveyed landmarks")
    if result.landmarks:
        xy = np.array(list(result.landmarks.values()))
        ax.plot(xy[:, 0], xy[:, 1], "rx", ms=7, label="mapped landmarks")
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(
        f"MRCLAM run {result.run} robot {result.robot} ({result.mode}): "
        f"ATE {result.ate_rms_m:.3f} m RMS, max {result.ate_max_m:.3f} m"
    )
    ax.legend(loc="best", fontsize=8)
    ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
