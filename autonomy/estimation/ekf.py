"""Planar pose EKF: wheel/IMU odometry prediction, surveyed-fiducial position updates.

State (map frame, REP-103)::

    x = [x_m, y_m, yaw_rad]^T

    P = [[var_x,     cov_xy,    cov_x_yaw],
         [cov_xy,    var_y,     cov_y_yaw],
         [cov_x_yaw, cov_y_yaw, var_yaw  ]]

Motion model (odometry increment u = [d, dth]: distance driven by ``base_link``'s origin, m, from the
wheel encoders; yaw increment, rad, from the integrated gyro or the wheel differential), evaluated at the
mid-point heading th_m = yaw + dth / 2::

    x'   = x + d cos(th_m)
    y'   = y + d sin(th_m)
    yaw' = wrap(yaw + dth)

Jacobians::

    F = df/dx = [[1, 0, -d sin(th_m)],        G = df/du = [[cos(th_m), -d/2 sin(th_m)],
                 [0, 1,  d cos(th_m)],                     [sin(th_m),  d/2 cos(th_m)],
                 [0, 0,  1          ]]                     [0,          1            ]]

Process noise: variances grow linearly with the distance driven and the angle turned (a random walk, so
the result does not depend on how finely the caller slices the motion), plus a lateral slip term and a
gyro random walk over time::

    M   = diag(var_d, var_dth)
    var_d   = distance_var_per_m * |d|                                   (m^2)
    var_dth = yaw_var_per_rad * |dth| + yaw_var_per_m * |d| + yaw_var_per_s * dt   (rad^2)
    var_lat = lateral_var_per_m * |d|                                    (m^2, across the heading)
    n   = [-sin(th_m), cos(th_m), 0]^T
    Q   = G M G^T + var_lat n n^T
    P'  = F P F^T + Q

Measurement model (one fiducial: the tag centre's (x, y) in ``base_link`` of the surveyed landmark
l = (l_x, l_y) in map; the tag's height and orientation are not used)::

    dx = l_x - x,  dy = l_y - y,  c = cos(yaw),  s = sin(yaw)
    h(x) = R(yaw)^T (l - p) = [ c dx + s dy,
                               -s dx + c dy]

    H = dh/dx = [[-c, -s, -s dx + c dy],      (the last column is [h_2, -h_1])
                 [ s, -c, -c dx - s dy]]

    R_z = obs.position_covariance_m2
    nu  = z - h(x),  S = H P H^T + R_z,  d2 = nu^T S^-1 nu
    reject when d2 > gate_chi2 (chi-square, 2 dof; 13.8 is the 99.9 % quantile)
    K   = P H^T S^-1
    x  <- x + K nu            (yaw wrapped)
    P  <- (I - K H) P (I - K H)^T + K R_z K^T     (Joseph form, then symmetrised)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autonomy.msgs import FiducialObservation, Landmark, Mat3, Pose2D, PoseEstimate, wrap_angle_rad

FloatArray = npt.NDArray[np.float64]

CHI2_2DOF_999 = 13.815510557964274  # chi-square quantile, 2 dof, 99.9 %


@dataclass(frozen=True, slots=True)
class EkfParams:
    """Noise and gating of ``PoseEkf``. Variances per unit of motion (random walk); see the module doc.

    Defaults suit a skid-steer rover on loose regolith: about 5 % distance error and 2 % lateral slip
    over 1 m (1-sigma, growing with sqrt of distance), 2 % gyro scale error per radian turned, 0.5 deg of
    heading drift per metre, and a slow gyro random walk.
    """

    distance_var_per_m: float = 0.05**2  # m^2 per m driven
    lateral_var_per_m: float = 0.02**2  # m^2 per m driven
    yaw_var_per_rad: float = 0.02**2  # rad^2 per rad turned
    yaw_var_per_m: float = math.radians(0.5) ** 2  # rad^2 per m driven
    yaw_var_per_s: float = math.radians(0.05) ** 2  # rad^2 per s (gyro random walk)
    gate_chi2: float = CHI2_2DOF_999
    max_observation_age_s: float = 0.5  # older observations (vs the last predict) are refused
    min_range_m: float = 0.2  # closer tags are refused (the linearisation breaks down)

    def __post_init__(self) -> None:
        for name in (
            "distance_var_per_m",
            "lateral_var_per_m",
            "yaw_var_per_rad",
            "yaw_var_per_m",
            "yaw_var_per_s",
            "max_observation_age_s",
            "min_range_m",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"EkfParams.{name}: must be finite and >= 0, got {value}")
        if not (math.isfinite(self.gate_chi2) and self.gate_chi2 > 0.0):
            raise ValueError(f"EkfParams.gate_chi2: must be finite and > 0, got {self.gate_chi2}")


def _as_covariance(name: str, value: Mat3 | FloatArray, size: int) -> FloatArray:
    p = np.array(value, dtype=np.float64)
    if p.shape != (size, size):
        raise ValueError(f"{name}: need a {size}x{size} covariance, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: covariance has non-finite entries")
    if not np.allclose(p, p.T, rtol=1e-9, atol=1e-12):
        raise ValueError(f"{name}: covariance is not symmetric")
    if float(np.linalg.eigvalsh(p).min()) < -1e-12:
        raise ValueError(f"{name}: covariance is not positive semi-definite")
    return 0.5 * (p + p.T)


class PoseEkf:
    """EKF over (x_m, y_m, yaw_rad) of ``base_link`` in ``map``, corrected by surveyed fiducials."""

    def __init__(
        self,
        initial: Pose2D,
        initial_covariance: Mat3 | FloatArray,
        landmarks: Sequence[Landmark],
        params: EkfParams,
    ) -> None:
        self._params = params
        self._x = np.array([initial.x_m, initial.y_m, wrap_angle_rad(initial.yaw_rad)], dtype=np.float64)
        self._p = _as_covariance("PoseEkf initial_covariance", initial_covariance, 3)
        self._landmarks: dict[int, Landmark] = {}
        for lm in landmarks:
            if lm.tag_id in self._landmarks:
                raise ValueError(f"PoseEkf: landmark id {lm.tag_id} is listed twice")
            if not all(math.isfinite(v) for v in (lm.x_m, lm.y_m, lm.z_m)):
                raise ValueError(f"PoseEkf: landmark {lm.tag_id} has a non-finite position")
            self._landmarks[lm.tag_id] = lm
        self._stamp_s: float | None = None
        self._used_since_predict = 0
        self.accepted_count = 0
        self.rejected_count = 0
        self.last_mahalanobis2: float | None = None

    # -- state access --------------------------------------------------------------------------------

    @property
    def mean(self) -> FloatArray:
        """A copy of the state [x_m, y_m, yaw_rad]."""
        return self._x.copy()

    @property
    def covariance(self) -> FloatArray:
        """A copy of the 3x3 covariance (layout in the module docstring)."""
        return self._p.copy()

    @property
    def stamp_s(self) -> float | None:
        """Stamp of the last ``predict`` (None before the first)."""
        return self._stamp_s

    def estimate(self, stamp_s: float) -> PoseEstimate:
        """The current belief, stamped ``stamp_s``. ``landmarks_used`` counts the fiducial updates
        accepted since the last ``predict``."""
        if not math.isfinite(stamp_s):
            raise ValueError(f"PoseEkf.estimate: stamp must be finite, got {stamp_s}")
        p = self._p
        cov: Mat3 = (
            (float(p[0, 0]), float(p[0, 1]), float(p[0, 2])),
            (float(p[1, 0]), float(p[1, 1]), float(p[1, 2])),
            (float(p[2, 0]), float(p[2, 1]), float(p[2, 2])),
        )
        pose = Pose2D(float(self._x[0]), float(self._x[1]), float(self._x[2]))
        return PoseEstimate(stamp_s, pose, cov, self._used_since_predict)

    # -- prediction ----------------------------------------------------------------------------------

    def predict(self, stamp_s: float, delta_distance_m: float, delta_yaw_rad: float) -> None:
        """Move the belief by one odometry increment (motion model and noise in the module docstring).

        ``stamp_s`` is the time at the end of the increment; it must not go backwards.
        """
        if not (math.isfinite(stamp_s) and math.isfinite(delta_distance_m) and math.isfinite(delta_yaw_rad)):
            raise ValueError(
                f"PoseEkf.predict: non-finite input (stamp {stamp_s}, d {delta_distance_m}, dth {delta_yaw_rad})"
            )
        dt = 0.0
        if self._stamp_s is not None:
            dt = stamp_s - self._stamp_s
            if dt < 0.0:
                raise ValueError(f"PoseEkf.predict: time went backwards ({self._stamp_s} -> {stamp_s})")
        self._stamp_s = stamp_s
        self._used_since_predict = 0

        prm = self._params
        d = delta_distance_m
        dth = delta_yaw_rad
        th_m = float(self._x[2]) + 0.5 * dth
        c, s = math.cos(th_m), math.sin(th_m)

        f = np.array([[1.0, 0.0, -d * s], [0.0, 1.0, d * c], [0.0, 0.0, 1.0]])
        g = np.array([[c, -0.5 * d * s], [s, 0.5 * d * c], [0.0, 1.0]])
        var_d = prm.distance_var_per_m * abs(d)  # m^2
        var_dth = prm.yaw_var_per_rad * abs(dth) + prm.yaw_var_per_m * abs(d) + prm.yaw_var_per_s * dt  # rad^2
        var_lat = prm.lateral_var_per_m * abs(d)  # m^2
        lateral = np.array([-s, c, 0.0])
        q = g @ np.diag([var_d, var_dth]) @ g.T + var_lat * np.outer(lateral, lateral)

        self._x = np.array([self._x[0] + d * c, self._x[1] + d * s, wrap_angle_rad(float(self._x[2]) + dth)])
        p = f @ self._p @ f.T + q
        self._p = 0.5 * (p + p.T)

    # -- correction ----------------------------------------------------------------------------------

    def expected_observation(self, landmark: Landmark) -> tuple[FloatArray, FloatArray]:
        """h(x) (the landmark's (x, y) in base_link, m) and its Jacobian H (2x3) at the current state."""
        x, y, yaw = (float(v) for v in self._x)
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = landmark.x_m - x, landmark.y_m - y
        h = np.array([c * dx + s * dy, -s * dx + c * dy])
        jac = np.array([[-c, -s, -s * dx + c * dy], [s, -c, -c * dx - s * dy]])
        return h, jac

    def update_fiducial(self, obs: FiducialObservation) -> bool:
        """Correct with one fiducial observation; True when accepted.

        Refused (False, state unchanged): unknown tag id, an observation older than
        ``max_observation_age_s`` before the last predict, a tag closer than ``min_range_m``, and
        innovations whose squared Mahalanobis distance exceeds ``gate_chi2``. A covariance that is not
        symmetric positive definite is a contract violation and raises ``ValueError``.
        """
        landmark = self._landmarks.get(obs.tag_id)
        if landmark is None:
            self.rejected_count += 1
            return False
        if self._stamp_s is not None and obs.stamp_s < self._stamp_s - self._params.max_observation_age_s:
            self.rejected_count += 1
            return False
        z = np.array([obs.tag_in_base.x_m, obs.tag_in_base.y_m])
        if float(np.hypot(z[0], z[1])) < self._params.min_range_m:
            self.rejected_count += 1
            return False
        r_z = np.array(obs.position_covariance_m2, dtype=np.float64)
        if r_z.shape != (2, 2) or not np.all(np.isfinite(r_z)):
            raise ValueError(f"PoseEkf.update_fiducial: bad position covariance {obs.position_covariance_m2}")
        if abs(r_z[0, 1] - r_z[1, 0]) > 1e-9 * max(1.0, abs(r_z[0, 1])) or float(np.linalg.eigvalsh(r_z).min()) <= 0:
            raise ValueError(
                f"PoseEkf.update_fiducial: position covariance of tag {obs.tag_id} is not symmetric positive "
                f"definite: {obs.position_covariance_m2}"
            )

        h, jac = self.expected_observation(landmark)
        nu = z - h
        s_mat = jac @ self._p @ jac.T + r_z
        s_inv = np.linalg.inv(s_mat)
        d2 = float(nu @ s_inv @ nu)
        self.last_mahalanobis2 = d2
        if not math.isfinite(d2) or d2 > self._params.gate_chi2:
            self.rejected_count += 1
            return False

        k = self._p @ jac.T @ s_inv
        self._x = self._x + k @ nu
        self._x[2] = wrap_angle_rad(float(self._x[2]))
        i_kh = np.eye(3) - k @ jac
        p = i_kh @ self._p @ i_kh.T + k @ r_z @ k.T
        self._p = 0.5 * (p + p.T)
        self.accepted_count += 1
        self._used_since_predict += 1
        return True
