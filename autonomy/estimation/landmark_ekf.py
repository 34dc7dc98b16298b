"""Landmark EKF (SLAM-lite): planar pose, odometry calibration and a map of point landmarks.

State (map frame, REP-103)::

    x   = [x_r, y_r, yaw_r, b, k_v, k_w | l_1x, l_1y | ... | l_nx, l_ny]^T
          (pose block r: pose, yaw-rate bias b (rad/s, the gyro bias), distance scale k_v (wheel slip:
           metres moved per metre the wheels report), yaw scale k_w; then n mapped landmarks)

    P   = [[P_rr,  P_r1,  ..., P_rn ],       P_rr 6x6, P_ri 6x2, P_ij 2x2
           [P_1r,  P_11,  ...       ],
           [ ...          P_ij ...  ],
           [P_nr,  ...,         P_nn]]

Landmarks are of three kinds: *surveyed fixed* (known position, no state: the pose-only EKF of
``ekf.py``), *surveyed with a prior* (a state with the survey's covariance, uncorrelated) and
*unknown* (added to the state from their first observation: SLAM).

**Cost that does not grow with the map: the compressed EKF (``LandmarkEkf``).** The textbook update
P <- P - K S K^T touches every P_ij: O(n^2) per observation (``DenseEkfSlam`` does exactly that: the
baseline). ``LandmarkEkf`` is Guivant & Nebot's compressed EKF (IEEE T-RA 17(3), 2001): the state is
split into an *active* part A (the pose block and the ``active_landmarks`` landmarks seen most recently)
and the rest B. While the rover works in A, predictions and observations update x_A and P_AA in full,
and their effect on B is accumulated in three small matrices instead of being applied::

    predict:   P_AA <- F_A P_AA F_A^T + Q,   Phi <- F_A Phi
    update:    K_A = P_AA H^T S^-1  (H non-zero on A only)
               theta += Phi^T H^T S^-1 nu,   psi += Phi^T H^T S^-1 H Phi,   Phi <- Phi - K_A H Phi
    flush:     x_B += P_BA0 theta,   P_BB -= P_BA0 psi P_A0B,   P_AB = Phi P_A0B,   Phi = I, psi = theta = 0

(A0: A at the last flush; a landmark mapped while in A adds the row G_r Phi_r to Phi.) A flush happens
when an observation needs a landmark outside A (the rover entered another area) and when the map is
read (``landmarks()``). *Consistency trade-off: none.* After a flush, x and P equal the dense filter's
exactly (the tests check agreement to 1e-9), so the NEES is the dense EKF's; what it trades is time:
an observation costs O(dim_A^2), independent of n, and a flush costs O(n^2) (once per change of area,
not per observation); memory stays O(n^2).

Motion model (odometry increment u = [d, dth] measured over tau seconds, calibrated d' = k_v d,
dth' = k_w dth - b tau, mid-point heading th_m = yaw + dth'/2, c = cos th_m, s = sin th_m; b, k_v, k_w are
random walks; p = ``pivot_x_m``, the point on the body's x axis that stands still in a turn in place)::

    x' = x + d' c + p dth' s,  y' = y + d' s - p dth' c,  yaw' = wrap(yaw + dth')
    G  = d(x', y', yaw') / d(d', dth') = [[c, -d'/2 s + p (s + dth'/2 c)], [s, d'/2 c - p (c - dth'/2 s)], [0, 1]]
    F  = I (6x6) with F[0, 2] = -d' s + p dth' c, F[1, 2] = d' c + p dth' s,
         F[0:3, 3:6] = G [[0, d, 0], [-tau, 0, dth]]      (d(d', dth') / d(b, k_v, k_w))
    Q  = G diag(var_d, var_dth) G^T + var_lat n n^T + diag(q_gap + q_turn, q_gap + q_turn, q_gap_yaw)
    var_d = distance_var_per_m |d|,  var_lat = lateral_var_per_m |d|,  n = [-sin th_m, cos th_m, 0]
    var_dth = yaw_var_per_rad |dth| + yaw_var_per_m |d| + yaw_var_per_s dt
    q_gap = gap_position_var_per_s t_gap, q_gap_yaw = gap_yaw_var_per_s t_gap  (unknown motion in a gap)
    q_turn = turn_position_var_per_rad |k_w dth|  (skid-steer scrub: the base slides while the wheels scrub
             sideways in a turn, e.g. downhill on a slope, and the wheels report no distance for it)
    Q[3:6, 3:6] += diag(bias, distance-scale, yaw-scale random walks) dt
    P_rr <- F P_rr F^T + Q,   P_ri <- F P_ri

The pivot (a skid-steer's instantaneous centre of rotation, ICR, on the body's x axis: Mandow et al., "Experimental
kinematics for wheeled skid-steer mobile robots", IROS 2007): in a turn the wheels of the more heavily loaded axle
grip and the others scrub, so a turn in place rotates about a point between the axles that moves towards the
load. The body's lateral velocity at base_link is then -p w, the term p dth' above. The caller gives p per
increment (``TurnPivot`` in ``autonomy.runtime.pipeline``: from the bucket's load). Measured on the simulated rover
(empty centre of mass over the wheel centre): p = 0 empty, 0.17 m with half a bucket, 0.24 m (the front axle)
full; without it each 50 deg turn with a full bucket put 20 cm of unmodelled sideways motion into the estimate.

Measurement models, landmark l = (l_x, l_y), dx = l_x - x, dy = l_y - y, c = cos yaw, s = sin yaw:

(a) fiducial position in base_link (``FiducialObservation.tag_in_base`` x, y; R = its covariance)::

    h = [c dx + s dy, -s dx + c dy]
    H_r = [[-c, -s, h_2], [s, -c, -h_1]],   H_l = [[c, s], [-s, c]]
    inverse: l = p + R(yaw) z,  G_r = [[1, 0, -s z1 - c z2], [0, 1, c z1 - s z2]],  G_z = R(yaw)

(b) range-bearing (``RangeBearingObservation``; R = diag(range_var, bearing_sigma^2), range_var =
    range_sigma_m^2 + (range_sigma_per_m r)^2), q = dx^2 + dy^2, r = sqrt(q)::

    h = [r, wrap(atan2(dy, dx) - yaw)]
    H_r = [[-dx/r, -dy/r, 0], [dy/q, -dx/q, -1]],   H_l = [[dx/r, dy/r], [-dy/q, dx/q]]
    inverse: l = p + r [cos(yaw + b), sin(yaw + b)],
             G_r = [[1, 0, -r sin(yaw+b)], [0, 1, r cos(yaw+b)]],
             G_z = [[cos(yaw+b), -r sin(yaw+b)], [sin(yaw+b), r cos(yaw+b)]]

(c) a known wall line n . p = o (``WallLine``: n = (cos a, sin a) from the site into the wall), seen as the
    line (r, phi) in base_link (``WallObservation``: the foot of the perpendicular at range r, bearing phi;
    R = its covariance); no landmark state::

    h = [o - n_x x - n_y y, wrap(a - yaw)],   H_r = [[-n_x, -n_y, 0], [0, 0, -1]]
    association: the known wall of smallest d2 among those the rover is in front of (o - n . p > 0)

Gating: nu = z - h (bearing wrapped), S = H P H^T + R, d2 = nu^T S^-1 nu; rejected when d2 > gate_chi2.
A new landmark: l = g(x_r, z), P_ll = G_r P_rr G_r^T + G_z R G_z^T, P_il = P_ir G_r^T for every i.

Consistency: first-estimates Jacobians (``first_estimates_jacobians``, off by default; Huang, Mourikis &
Roumeliotis, ISER 2008 / IJRR 2010). EKF-SLAM with mapped landmarks cannot observe a global translation and
rotation of the whole map and path; but the textbook EKF evaluates F and H at different estimates of the
same states, so its linearised system *does* seem to observe the global rotation, and the filter grows
over-confident in the map's heading and lets it drift with the robot's yaw errors. With FEJ::

    F[0:2, 2] = J (p_k+1|k - p_k|k-1)      (propagated positions, not the updated ones; J = [[0, -1], [1, 0]])
    H (range-bearing, fiducial) at (p_k|k-1, yaw_k|k-1) and landmark l's first estimate l_first
    G_r[:, 2] = J (l - p_k|k-1)             (a new landmark)

so H_k N_k = 0 and F_k N_k = N_k+1 for the global rotation N = [-y, x, 1, 0, 0, 0, -l_1y, l_1x, ...] and
both translations: no update gains information along N. The innovation is still z - h(current estimate).
Surveyed fixed landmarks make N observable and keep the textbook H. Trade-off: a first estimate made
far off (after a long blind stretch) stays the linearisation point for good (no refresh: refreshing
brings back the drift).

Lost: the estimator is *lost* when the position's 1-sigma (worst axis) exceeds ``lost_position_sigma_m``
or the yaw's exceeds ``lost_yaw_sigma_rad``; it is found again when both fall below
``found_fraction`` times those bounds (hysteresis). ``PoseEstimate.lost`` carries the flag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from autonomy.estimation.ekf import CHI2_2DOF_999
from autonomy.msgs import (
    FiducialObservation,
    Landmark,
    Mat2,
    Mat3,
    Pose2D,
    PoseEstimate,
    WallLine,
    WallObservation,
    wrap_angle_rad,
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RangeBearingObservation:
    """One landmark seen as range (m) and bearing (rad, counter-clockwise from base_link's x axis)."""

    stamp_s: float
    landmark_id: int
    range_m: float
    bearing_rad: float

    def __post_init__(self) -> None:
        for name in ("stamp_s", "range_m", "bearing_rad"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"RangeBearingObservation.{name}: must be finite, got {getattr(self, name)}")
        if self.range_m <= 0.0:
            raise ValueError(f"RangeBearingObservation.range_m: must be > 0, got {self.range_m}")


class UpdateResult(StrEnum):
    ACCEPTED = "accepted"  # a mapped or surveyed landmark corrected the state
    INITIALISED = "initialised"  # an unknown landmark was added to the map
    GATED = "gated"  # Mahalanobis distance above the gate: outlier, state unchanged
    UNKNOWN = "unknown"  # not a surveyed landmark and mapping is off
    REFUSED = "refused"  # too old, too close, or before the first predict

    def __bool__(self) -> bool:
        """True when the observation was used (as ``PoseEkf.update_fiducial``'s bool): drop-in."""
        return self in (UpdateResult.ACCEPTED, UpdateResult.INITIALISED)


@dataclass(frozen=True, slots=True)
class LandmarkEkfParams:
    """Noise, odometry calibration, gating, mapping and lost bounds of ``LandmarkEkf`` / ``DenseEkfSlam``
    (module doc). The defaults suit a skid-steer rover with a gyro (as ``EkfParams``)."""

    distance_var_per_m: float = 0.05**2  # m^2 per m driven
    lateral_var_per_m: float = 0.02**2  # m^2 per m driven
    yaw_var_per_rad: float = 0.02**2  # rad^2 per rad turned
    yaw_var_per_m: float = math.radians(0.5) ** 2  # rad^2 per m driven
    yaw_var_per_s: float = math.radians(0.05) ** 2  # rad^2 per s
    gap_position_var_per_s: float = 0.05**2  # m^2 per s of unknown motion (odometry gap)
    gap_yaw_var_per_s: float = math.radians(10.0) ** 2  # rad^2 per s of unknown motion
    # m^2 (per axis) per rad turned: translation the wheels do not see while a skid-steer base scrubs in a
    # turn (0: a turn moves only the heading, the differential-drive model)
    turn_position_var_per_rad: float = 0.0
    # odometry calibration states (module doc): initial 1-sigma and random walk; 0 and 0 fixes a state
    yaw_rate_bias_sigma_radps: float = math.radians(0.5)  # gyro bias (b, rad/s)
    yaw_rate_bias_var_per_s: float = math.radians(0.01) ** 2  # (rad/s)^2 per s
    distance_scale_sigma: float = 0.05  # slip: effective wheel-speed scale (k_v)
    distance_scale_var_per_s: float = 0.001**2  # per s
    yaw_scale_sigma: float = 0.02  # gyro / wheel-differential yaw scale (k_w)
    yaw_scale_var_per_s: float = 0.0005**2  # per s
    range_sigma_m: float = 0.05
    range_sigma_per_m: float = 0.02  # range sigma grows with range (m per m)
    bearing_sigma_rad: float = math.radians(2.0)
    gate_chi2: float = CHI2_2DOF_999
    min_range_m: float = 0.2
    max_observation_age_s: float = 0.5
    map_unknown: bool = True  # add unknown landmarks to the map (SLAM); False: refuse them
    lost_position_sigma_m: float = 1.0
    lost_yaw_sigma_rad: float = math.radians(30.0)
    found_fraction: float = 0.5
    # First-estimates Jacobians (module doc, "Consistency"): the SLAM filter's Jacobians are evaluated at the
    # propagated robot position and at each landmark's first estimate, so that no update gains information
    # about the unobservable global translation and rotation (off: the textbook EKF's Jacobians)
    first_estimates_jacobians: bool = False

    def __post_init__(self) -> None:
        for name in (
            "distance_var_per_m",
            "lateral_var_per_m",
            "yaw_var_per_rad",
            "yaw_var_per_m",
            "yaw_var_per_s",
            "gap_position_var_per_s",
            "gap_yaw_var_per_s",
            "turn_position_var_per_rad",
            "yaw_rate_bias_sigma_radps",
            "yaw_rate_bias_var_per_s",
            "distance_scale_sigma",
            "distance_scale_var_per_s",
            "yaw_scale_sigma",
            "yaw_scale_var_per_s",
            "range_sigma_per_m",
            "min_range_m",
            "max_observation_age_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"LandmarkEkfParams.{name}: must be finite and >= 0, got {value}")
        for name in ("range_sigma_m", "bearing_sigma_rad", "gate_chi2", "lost_position_sigma_m", "lost_yaw_sigma_rad"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"LandmarkEkfParams.{name}: must be finite and > 0, got {value}")
        if not 0.0 < self.found_fraction <= 1.0:
            raise ValueError(f"LandmarkEkfParams.found_fraction: must be in (0, 1], got {self.found_fraction}")


# --------------------------------------------------------------------------------------------------
# Measurement models (pure functions; Jacobians checked numerically in the tests)
# --------------------------------------------------------------------------------------------------


def fiducial_model(pose: FloatArray, landmark_xy: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """h (landmark (x, y) in base_link), H_r (2x3) and H_l (2x2) at ``pose`` = [x, y, yaw]."""
    c, s = math.cos(pose[2]), math.sin(pose[2])
    dx, dy = float(landmark_xy[0] - pose[0]), float(landmark_xy[1] - pose[1])
    h1, h2 = c * dx + s * dy, -s * dx + c * dy
    h = np.array([h1, h2])
    h_r = np.array([[-c, -s, h2], [s, -c, -h1]])
    h_l = np.array([[c, s], [-s, c]])
    return h, h_r, h_l


def fiducial_inverse(pose: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """l = p + R(yaw) z, and G_r = dl/dpose (2x3), G_z = dl/dz (2x2)."""
    c, s = math.cos(pose[2]), math.sin(pose[2])
    z1, z2 = float(z[0]), float(z[1])
    lm = np.array([pose[0] + c * z1 - s * z2, pose[1] + s * z1 + c * z2])
    g_r = np.array([[1.0, 0.0, -s * z1 - c * z2], [0.0, 1.0, c * z1 - s * z2]])
    g_z = np.array([[c, -s], [s, c]])
    return lm, g_r, g_z


def range_bearing_model(pose: FloatArray, landmark_xy: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """h = [range, bearing], H_r (2x3) and H_l (2x2) at ``pose`` = [x, y, yaw]."""
    dx, dy = float(landmark_xy[0] - pose[0]), float(landmark_xy[1] - pose[1])
    q = max(dx * dx + dy * dy, 1e-12)
    r = math.sqrt(q)
    h = np.array([r, wrap_angle_rad(math.atan2(dy, dx) - float(pose[2]))])
    h_r = np.array([[-dx / r, -dy / r, 0.0], [dy / q, -dx / q, -1.0]])
    h_l = np.array([[dx / r, dy / r], [-dy / q, dx / q]])
    return h, h_r, h_l


def range_bearing_inverse(pose: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """l = p + r [cos(yaw + b), sin(yaw + b)], and G_r (2x3), G_z (2x2)."""
    r, b = float(z[0]), float(z[1])
    a = float(pose[2]) + b
    ca, sa = math.cos(a), math.sin(a)
    lm = np.array([pose[0] + r * ca, pose[1] + r * sa])
    g_r = np.array([[1.0, 0.0, -r * sa], [0.0, 1.0, r * ca]])
    g_z = np.array([[ca, -r * sa], [sa, r * ca]])
    return lm, g_r, g_z


def _covariance(name: str, value: Mat3 | Mat2 | FloatArray, size: int) -> FloatArray:
    p = np.array(value, dtype=np.float64)
    if p.shape != (size, size) or not np.all(np.isfinite(p)):
        raise ValueError(f"{name}: need a finite {size}x{size} covariance, got {p.tolist()}")
    if not np.allclose(p, p.T, rtol=1e-9, atol=1e-12) or float(np.linalg.eigvalsh(p).min()) < -1e-12:
        raise ValueError(f"{name}: covariance is not symmetric positive semi-definite: {p.tolist()}")
    return 0.5 * (p + p.T)


# --------------------------------------------------------------------------------------------------
# The filters
# --------------------------------------------------------------------------------------------------

POSE_DIM = 6  # x, y, yaw, b (rad/s), k_v, k_w


def _pad(jac: FloatArray) -> FloatArray:
    """A 2x3 pose Jacobian padded with zeros for the calibration states (2 x POSE_DIM)."""
    out = np.zeros((2, POSE_DIM))
    out[:, :3] = jac
    return out


class _LandmarkFilterBase:
    """What both filters share: the pose block, prediction noise, observation checks, lost flag."""

    def __init__(
        self,
        initial: Pose2D,
        initial_covariance: Mat3 | FloatArray,
        surveyed: Sequence[Landmark],
        params: LandmarkEkfParams,
        surveyed_covariances: Mapping[int, Mat2 | FloatArray] | None = None,
    ) -> None:
        self._params = params
        self._x = np.array([initial.x_m, initial.y_m, wrap_angle_rad(initial.yaw_rad), 0.0, 1.0, 1.0])
        p0 = np.zeros((POSE_DIM, POSE_DIM))
        p0[:3, :3] = _covariance(f"{type(self).__name__} initial_covariance", initial_covariance, 3)
        p0[3, 3] = params.yaw_rate_bias_sigma_radps**2
        p0[4, 4] = params.distance_scale_sigma**2
        p0[5, 5] = params.yaw_scale_sigma**2
        self._p_initial = p0
        self._fixed: dict[int, FloatArray] = {}
        self._index: dict[int, int] = {}
        self._ids: list[int] = []
        self._stamp_s: float | None = None
        self._used_since_predict = 0
        self._lost = False
        self.accepted_count = 0
        self.rejected_count = 0
        self.initialised_count = 0
        self.wall_accepted_count = 0
        self.wall_rejected_count = 0
        self.last_mahalanobis2: float | None = None
        self._init_storage()
        # first-estimates Jacobians: the propagated pose (after the last predict, before its updates) and
        # each state landmark's first estimate (id -> (x, y))
        self._fej_pose = self._x[:3].copy()
        self._first_xy: dict[int, FloatArray] = {}
        priors = dict(surveyed_covariances or {})
        for lm in surveyed:
            if lm.tag_id in self._fixed or lm.tag_id in self._index:
                raise ValueError(f"{type(self).__name__}: landmark id {lm.tag_id} is listed twice")
            if not (math.isfinite(lm.x_m) and math.isfinite(lm.y_m)):
                raise ValueError(f"{type(self).__name__}: landmark {lm.tag_id} has a non-finite position")
            if lm.tag_id in priors:
                cov = _covariance(f"landmark {lm.tag_id} prior", priors.pop(lm.tag_id), 2)
                self._first_xy[lm.tag_id] = np.array([lm.x_m, lm.y_m], dtype=np.float64)
                self._append(lm.tag_id, np.array([lm.x_m, lm.y_m]), cov, np.zeros((POSE_DIM, 2)), None)
            else:
                self._fixed[lm.tag_id] = np.array([lm.x_m, lm.y_m], dtype=np.float64)
        if priors:
            raise ValueError(f"{type(self).__name__}: covariances given for ids not surveyed: {sorted(priors)}")
        self._update_lost()

    # storage hooks (implemented by each filter)
    def _sync(self) -> None:
        """Bring every landmark's mean and covariance up to date (a no-op for the dense filter)."""

    def _prepare(self, j: int) -> None:
        """Make landmark j's mean current before it is used (a no-op for the dense filter)."""

    def _init_storage(self) -> None:
        raise NotImplementedError

    def _append(self, lm_id: int, mean: FloatArray, p_ll: FloatArray, p_rl: FloatArray, g_r: FloatArray | None) -> None:
        raise NotImplementedError

    def _pose_cov(self) -> FloatArray:
        raise NotImplementedError

    def _predict_blocks(self, f: FloatArray, q: FloatArray) -> None:
        raise NotImplementedError

    def _correct(self, j: int, h_r: FloatArray, h_l: FloatArray, nu: FloatArray, r_z: FloatArray) -> float:
        raise NotImplementedError

    def _landmark_mean(self, j: int) -> FloatArray:
        raise NotImplementedError

    def _landmark_cov(self, j: int) -> FloatArray:
        raise NotImplementedError

    # -- state access --------------------------------------------------------------------------------

    @property
    def params(self) -> LandmarkEkfParams:
        return self._params

    @property
    def mean(self) -> FloatArray:
        """A copy of the pose [x_m, y_m, yaw_rad]."""
        return self._x[:3].copy()

    @property
    def covariance(self) -> FloatArray:
        """A copy of the pose covariance (3x3, x/y/yaw)."""
        return self._pose_cov()[:3, :3].copy()

    @property
    def pose_block_covariance(self) -> FloatArray:
        """A copy of the whole pose-block covariance P_rr (6x6: x, y, yaw, b, k_v, k_w)."""
        return self._pose_cov().copy()

    @property
    def odometry_calibration(self) -> tuple[float, float, float]:
        """(yaw-rate bias b rad/s, distance scale k_v, yaw scale k_w) as currently estimated."""
        return float(self._x[3]), float(self._x[4]), float(self._x[5])

    @property
    def stamp_s(self) -> float | None:
        return self._stamp_s

    @property
    def lost(self) -> bool:
        """True while the pose covariance is past the lost bound (module doc: hysteresis)."""
        return self._lost

    @property
    def landmark_count(self) -> int:
        """Landmarks in the state (mapped, or surveyed with a prior); fixed surveyed ones not counted."""
        return len(self._ids)

    def landmarks(self) -> dict[int, tuple[FloatArray, FloatArray]]:
        """Every landmark in the state: id -> (mean (2,), covariance (2, 2)), copies."""
        self._sync()
        return {i: (self._landmark_mean(k).copy(), self._landmark_cov(k).copy()) for k, i in enumerate(self._ids)}

    def estimate(self, stamp_s: float) -> PoseEstimate:
        """The current pose belief; ``landmarks_used`` counts updates accepted since the last predict."""
        if not math.isfinite(stamp_s):
            raise ValueError(f"{type(self).__name__}.estimate: stamp must be finite, got {stamp_s}")
        p = self._pose_cov()
        cov: Mat3 = (
            (float(p[0, 0]), float(p[0, 1]), float(p[0, 2])),
            (float(p[1, 0]), float(p[1, 1]), float(p[1, 2])),
            (float(p[2, 0]), float(p[2, 1]), float(p[2, 2])),
        )
        pose = Pose2D(float(self._x[0]), float(self._x[1]), float(self._x[2]))
        return PoseEstimate(stamp_s, pose, cov, self._used_since_predict, lost=self._lost)

    def _update_lost(self) -> None:
        p = self._pose_cov()
        a, b, d = float(p[0, 0]), float(p[0, 1]), float(p[1, 1])
        tr, det = a + d, a * d - b * b
        sigma_xy = math.sqrt(max(0.0, 0.5 * tr + math.sqrt(max(0.0, 0.25 * tr * tr - det))))
        sigma_yaw = math.sqrt(max(0.0, float(p[2, 2])))
        prm = self._params
        if sigma_xy > prm.lost_position_sigma_m or sigma_yaw > prm.lost_yaw_sigma_rad:
            self._lost = True
        elif (
            sigma_xy < prm.found_fraction * prm.lost_position_sigma_m
            and sigma_yaw < prm.found_fraction * prm.lost_yaw_sigma_rad
        ):
            self._lost = False

    # -- prediction ----------------------------------------------------------------------------------

    def motion_jacobian(
        self, delta_distance_m: float, delta_yaw_rad: float, duration_s: float, pivot_x_m: float = 0.0
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(new pose block, F = d f / d pose-block (6x6), G = d f / d [d', dth'] (6x2)) at the current state
        for the increment (d, dth) measured over ``duration_s`` (module doc: d' = k_v d,
        dth' = k_w dth - b duration), turning about the point ``pivot_x_m`` ahead of base_link."""
        x, y, yaw, b, kv, kw = (float(v) for v in self._x)
        p = pivot_x_m
        d_c = kv * delta_distance_m
        dth_c = kw * delta_yaw_rad - b * duration_s
        th_m = yaw + 0.5 * dth_c
        c, s = math.cos(th_m), math.sin(th_m)
        new = np.array(
            [x + d_c * c + p * dth_c * s, y + d_c * s - p * dth_c * c, wrap_angle_rad(yaw + dth_c), b, kv, kw]
        )
        g = np.zeros((POSE_DIM, 2))
        g[:3] = [
            [c, -0.5 * d_c * s + p * (s + 0.5 * dth_c * c)],
            [s, 0.5 * d_c * c - p * (c - 0.5 * dth_c * s)],
            [0.0, 1.0],
        ]
        f = np.eye(POSE_DIM)
        f[0, 2] = -d_c * s + p * dth_c * c
        f[1, 2] = d_c * c + p * dth_c * s
        # d[d', dth'] / d[b, k_v, k_w] = [[0, d, 0], [-duration, 0, dth]]
        f[:, 3:] += g @ np.array([[0.0, delta_distance_m, 0.0], [-duration_s, 0.0, delta_yaw_rad]])
        return new, f, g

    def predict(
        self,
        stamp_s: float,
        delta_distance_m: float,
        delta_yaw_rad: float,
        gap_s: float = 0.0,
        duration_s: float | None = None,
        pivot_x_m: float = 0.0,
    ) -> None:
        """Move the pose by one odometry increment (d, dth) measured over ``duration_s`` (default: the
        time since the last predict; the yaw-rate bias acts over it); ``gap_s`` seconds of unknown motion
        (an odometry gap) add ``gap_*_var_per_s`` noise; ``pivot_x_m``: the point on the rover's x axis that
        stands still in a turn in place (module doc). ``stamp_s`` must not go backwards. Cost O(n)."""
        if (
            not all(math.isfinite(v) for v in (stamp_s, delta_distance_m, delta_yaw_rad, gap_s, pivot_x_m))
            or gap_s < 0.0
        ):
            raise ValueError(
                f"{type(self).__name__}.predict: bad input (stamp {stamp_s}, d {delta_distance_m}, "
                f"dth {delta_yaw_rad}, gap {gap_s}, pivot {pivot_x_m})"
            )
        dt = 0.0
        if self._stamp_s is not None:
            dt = stamp_s - self._stamp_s
            if dt < 0.0:
                raise ValueError(f"{type(self).__name__}.predict: time went backwards ({self._stamp_s} -> {stamp_s})")
        tau = dt if duration_s is None else duration_s
        if not (math.isfinite(tau) and tau >= 0.0):
            raise ValueError(f"{type(self).__name__}.predict: duration_s must be >= 0, got {duration_s}")
        self._stamp_s = stamp_s
        self._used_since_predict = 0
        prm = self._params
        new, f, g = self.motion_jacobian(delta_distance_m, delta_yaw_rad, tau, pivot_x_m)
        if prm.first_estimates_jacobians:
            # F's yaw column from the propagated positions (Huang et al. 2008): F[0:2, 2] = J (p_k+1|k - p_k|k-1)
            f[0, 2] = -(float(new[1]) - float(self._fej_pose[1]))
            f[1, 2] = float(new[0]) - float(self._fej_pose[0])
            self._fej_pose = new[:3].copy()
        d = abs(float(self._x[4]) * delta_distance_m)
        dth = abs(float(self._x[5]) * delta_yaw_rad)
        var_d = prm.distance_var_per_m * d
        var_dth = prm.yaw_var_per_rad * dth + prm.yaw_var_per_m * d + prm.yaw_var_per_s * dt
        var_lat = prm.lateral_var_per_m * d
        lateral = np.zeros(POSE_DIM)
        lateral[:2] = [-g[1, 0], g[0, 0]]  # [-sin th_m, cos th_m]
        q = g @ np.diag([var_d, var_dth]) @ g.T + var_lat * np.outer(lateral, lateral)
        q[3, 3] += prm.yaw_rate_bias_var_per_s * dt
        q[4, 4] += prm.distance_scale_var_per_s * dt
        q[5, 5] += prm.yaw_scale_var_per_s * dt
        q_turn = prm.turn_position_var_per_rad * dth
        q[0, 0] += q_turn
        q[1, 1] += q_turn
        if gap_s > 0.0:
            q[0, 0] += prm.gap_position_var_per_s * gap_s
            q[1, 1] += prm.gap_position_var_per_s * gap_s
            q[2, 2] += prm.gap_yaw_var_per_s * gap_s
        self._x[:] = new
        self._predict_blocks(f, q)
        self._update_lost()

    # -- correction ----------------------------------------------------------------------------------

    def _check_stamp(self, stamp_s: float) -> bool:
        if self._stamp_s is None:
            return False
        return stamp_s >= self._stamp_s - self._params.max_observation_age_s

    def update_fiducial(self, obs: FiducialObservation) -> UpdateResult:
        """Correct with one fiducial's (x, y) in base_link and its covariance (model (a))."""
        z = np.array([obs.tag_in_base.x_m, obs.tag_in_base.y_m], dtype=np.float64)
        r_z = np.array(obs.position_covariance_m2, dtype=np.float64)
        if r_z.shape != (2, 2) or not np.all(np.isfinite(r_z)):
            raise ValueError(f"{type(self).__name__}.update_fiducial: bad position covariance of tag {obs.tag_id}")
        if abs(r_z[0, 1] - r_z[1, 0]) > 1e-9 * max(1.0, abs(r_z[0, 1])) or float(np.linalg.eigvalsh(r_z).min()) <= 0:
            raise ValueError(
                f"{type(self).__name__}.update_fiducial: position covariance of tag {obs.tag_id} is not symmetric "
                f"positive definite: {obs.position_covariance_m2}"
            )
        if not self._check_stamp(obs.stamp_s) or float(np.hypot(z[0], z[1])) < self._params.min_range_m:
            self.rejected_count += 1
            return UpdateResult.REFUSED
        return self._update(obs.tag_id, z, r_z, fiducial_model, fiducial_inverse, wrap_second=False)

    def update_range_bearing(self, obs: RangeBearingObservation) -> UpdateResult:
        """Correct with one range-bearing observation (model (b))."""
        if not self._check_stamp(obs.stamp_s) or obs.range_m < self._params.min_range_m:
            self.rejected_count += 1
            return UpdateResult.REFUSED
        prm = self._params
        z = np.array([obs.range_m, wrap_angle_rad(obs.bearing_rad)])
        r_z = np.diag([prm.range_sigma_m**2 + (prm.range_sigma_per_m * obs.range_m) ** 2, prm.bearing_sigma_rad**2])
        return self._update(obs.landmark_id, z, r_z, range_bearing_model, range_bearing_inverse, wrap_second=True)

    def update_wall(self, obs: WallObservation, walls: Sequence[WallLine]) -> UpdateResult:
        """Correct the pose with a wall line seen in base_link (model (c)), associated with the known wall it
        fits best; GATED when none fits within ``gate_chi2``, UNKNOWN when no wall is known."""
        r_z = np.array(obs.covariance, dtype=np.float64)
        if r_z.shape != (2, 2) or not np.all(np.isfinite(r_z)) or float(np.linalg.eigvalsh(r_z).min()) <= 0.0:
            raise ValueError(
                f"{type(self).__name__}.update_wall: covariance is not positive definite: {obs.covariance}"
            )
        if not walls:
            self.wall_rejected_count += 1
            return UpdateResult.UNKNOWN
        if not self._check_stamp(obs.stamp_s):
            self.wall_rejected_count += 1
            return UpdateResult.REFUSED
        x, y, yaw = (float(v) for v in self._x[:3])
        p_rr = self._pose_cov()[:3, :3]
        z = np.array([obs.range_m, obs.normal_rad])
        best: tuple[float, FloatArray, FloatArray] | None = None
        for wall in walls:
            nx, ny = math.cos(wall.normal_rad), math.sin(wall.normal_rad)
            dist = wall.offset_m - nx * x - ny * y
            if dist <= 0.0:  # the rover is not in front of this wall
                continue
            h_r = np.array([[-nx, -ny, 0.0], [0.0, 0.0, -1.0]])
            nu = z - np.array([dist, wall.normal_rad - yaw])
            nu[1] = wrap_angle_rad(float(nu[1]))
            s_mat = h_r @ p_rr @ h_r.T + r_z
            d2 = float(nu @ np.linalg.solve(s_mat, nu))
            if best is None or d2 < best[0]:
                best = (d2, h_r, nu)
        if best is None:
            self.wall_rejected_count += 1
            return UpdateResult.GATED
        d2 = self._correct(-1, _pad(best[1]), np.zeros((2, 2)), best[2], r_z)  # gated there (gate_chi2)
        self.last_mahalanobis2 = d2
        if not (math.isfinite(d2) and d2 <= self._params.gate_chi2):
            self.wall_rejected_count += 1
            return UpdateResult.GATED
        self._x[2] = wrap_angle_rad(float(self._x[2]))
        self.wall_accepted_count += 1
        self._used_since_predict += 1
        self._update_lost()
        return UpdateResult.ACCEPTED

    def _update(
        self,
        lm_id: int,
        z: FloatArray,
        r_z: FloatArray,
        model: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray, FloatArray]],
        inverse: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray, FloatArray]],
        wrap_second: bool,
    ) -> UpdateResult:
        fixed = self._fixed.get(lm_id)
        j = self._index.get(lm_id, -1)
        if fixed is None and j < 0:
            if not self._params.map_unknown:
                self.rejected_count += 1
                return UpdateResult.UNKNOWN
            mean, g_r3, g_z = inverse(self._x[:3], z)
            if self._params.first_estimates_jacobians:  # G_r's yaw column about the propagated position
                g_r3 = g_r3.copy()
                g_r3[0, 2] = -(float(mean[1]) - float(self._fej_pose[1]))
                g_r3[1, 2] = float(mean[0]) - float(self._fej_pose[0])
            self._first_xy[lm_id] = np.array(mean, dtype=np.float64)
            g_r = _pad(g_r3)
            p_rr = self._pose_cov()
            p_ll = g_r @ p_rr @ g_r.T + g_z @ r_z @ g_z.T
            self._append(lm_id, mean, 0.5 * (p_ll + p_ll.T), p_rr @ g_r.T, g_r)
            self.initialised_count += 1
            return UpdateResult.INITIALISED
        if j >= 0:
            self._prepare(j)
        lm_xy = fixed if fixed is not None else self._landmark_mean(j)
        h, h_r, h_l = model(self._x[:3], lm_xy)
        if j >= 0 and self._params.first_estimates_jacobians:
            # H at the propagated pose and the landmark's first estimate; the innovation at the current one
            _, h_r, h_l = model(self._fej_pose, self._first_xy[lm_id])
        nu = z - h
        if wrap_second:
            nu[1] = wrap_angle_rad(float(nu[1]))
        d2 = self._correct(j, _pad(h_r), h_l, nu, r_z)
        self.last_mahalanobis2 = d2
        if not (math.isfinite(d2) and d2 <= self._params.gate_chi2):
            self.rejected_count += 1
            return UpdateResult.GATED
        self._x[2] = wrap_angle_rad(float(self._x[2]))
        self.accepted_count += 1
        self._used_since_predict += 1
        self._update_lost()
        return UpdateResult.ACCEPTED


class LandmarkEkf(_LandmarkFilterBase):
    """Compressed EKF-SLAM (Guivant & Nebot 2001): the full covariance, with every update confined to
    an *active* set A (the pose block and the ``active_landmarks`` most recently observed landmarks);
    the rest B is brought up to date lazily, in one *flush* when an observation needs a landmark outside
    A. Exact: after a flush it equals ``DenseEkfSlam`` (module doc). Cost per observation
    O(dim_A^2), independent of the map size; a flush costs O(n^2) (once per change of area)."""

    def __init__(
        self,
        initial: Pose2D,
        initial_covariance: Mat3 | FloatArray,
        surveyed: Sequence[Landmark],
        params: LandmarkEkfParams,
        surveyed_covariances: Mapping[int, Mat2 | FloatArray] | None = None,
        active_landmarks: int = 16,
    ) -> None:
        if active_landmarks < 1:
            raise ValueError(f"LandmarkEkf.active_landmarks: must be >= 1, got {active_landmarks}")
        self._max_active = active_landmarks
        super().__init__(initial, initial_covariance, surveyed, params, surveyed_covariances)
        self.flush_count = 0

    # -- storage: full x and P (B part stale until a flush), current A part in _paa ---------------------

    def _init_storage(self) -> None:
        self._n = 0
        self._cap = 16
        self._xs = np.zeros(POSE_DIM + 2 * self._cap)
        self._xs[:POSE_DIM] = self._x
        self._x = self._xs[:POSE_DIM]  # a view: the base class updates the pose block in place
        self._p = np.zeros((POSE_DIM + 2 * self._cap, POSE_DIM + 2 * self._cap))
        self._active: list[int] = []  # landmark indices in A, in A's order after the pose block
        self._a_pos: dict[int, int] = {}  # landmark index -> row of its x in A
        self._last_seen: dict[int, int] = {}  # landmark index -> update counter (LRU)
        self._tick = 0
        self._reset_active(self._p_initial)

    def _a_idx(self) -> npt.NDArray[np.intp]:
        idx = list(range(POSE_DIM))
        for k in self._active:
            idx += [POSE_DIM + 2 * k, POSE_DIM + 1 + 2 * k]
        return np.array(idx, dtype=np.intp)

    def _reset_active(self, paa: FloatArray) -> None:
        self._paa = paa.copy()
        dim_a = paa.shape[0]
        self._a0 = self._a_idx()
        self._phi = np.eye(dim_a)
        self._psi = np.zeros((dim_a, dim_a))
        self._theta = np.zeros(dim_a)
        self._a_pos = {k: POSE_DIM + 2 * i for i, k in enumerate(self._active)}

    def _flush(self, keep: int | None = None, room: bool = False) -> None:
        """Apply the pending updates to B (O(n^2)), then choose a new A: the pose, ``keep`` and the most
        recently seen landmarks (half the slots left free when ``room``)."""
        self.flush_count += 1
        dim = POSE_DIM + 2 * self._n
        a_idx = self._a_idx()
        in_a = np.zeros(dim, dtype=bool)
        in_a[a_idx] = True
        b_idx = np.flatnonzero(~in_a)
        p = self._p
        if b_idx.size:
            p_a0b = p[np.ix_(self._a0, b_idx)]  # frozen at the last flush
            self._xs[b_idx] += p_a0b.T @ self._theta
            p[np.ix_(b_idx, b_idx)] -= p_a0b.T @ self._psi @ p_a0b
            p_ab = self._phi @ p_a0b
            p[np.ix_(a_idx, b_idx)] = p_ab
            p[np.ix_(b_idx, a_idx)] = p_ab.T
        p[np.ix_(a_idx, a_idx)] = self._paa
        # new active set (when making room for new landmarks, keep half: mapping a new area flushes once
        # per active_landmarks / 2 new landmarks, not once per landmark)
        limit = max(1, self._max_active // 2) if room else self._max_active
        ranked = sorted(range(self._n), key=lambda k: self._last_seen.get(k, -1), reverse=True)
        chosen = [] if keep is None else [keep]
        for k in ranked:
            if len(chosen) >= limit:
                break
            if k != keep:
                chosen.append(k)
        self._active = sorted(chosen)
        new_a = self._a_idx()
        self._reset_active(p[np.ix_(new_a, new_a)])

    def _sync(self) -> None:
        self._flush(room=False)

    def _prepare(self, j: int) -> None:
        if j not in self._a_pos:
            self._flush(keep=j)

    def _append(self, lm_id: int, mean: FloatArray, p_ll: FloatArray, p_rl: FloatArray, g_r: FloatArray | None) -> None:
        if len(self._active) >= self._max_active:
            self._flush(room=True)
        if self._n == self._cap:
            old = POSE_DIM + 2 * self._n
            self._cap *= 2
            xs = np.zeros(POSE_DIM + 2 * self._cap)
            xs[:old] = self._xs[:old]
            p = np.zeros((POSE_DIM + 2 * self._cap, POSE_DIM + 2 * self._cap))
            p[:old, :old] = self._p[:old, :old]
            self._xs, self._p = xs, p
            self._x = self._xs[:POSE_DIM]
        k = self._n
        self._xs[POSE_DIM + 2 * k : POSE_DIM + 2 + 2 * k] = mean
        # grow A by the new landmark: P_{l,A} = G_r P_{r,A}; its row of Phi = G_r Phi_r (its B cross terms)
        dim_a = self._paa.shape[0]
        paa = np.zeros((dim_a + 2, dim_a + 2))
        paa[:dim_a, :dim_a] = self._paa
        phi = np.zeros((dim_a + 2, self._phi.shape[1]))
        phi[:dim_a] = self._phi
        if g_r is not None:
            cross = g_r @ self._paa[:POSE_DIM, :]
            paa[dim_a:, :dim_a] = cross
            paa[:dim_a, dim_a:] = cross.T
            phi[dim_a:] = g_r @ self._phi[:POSE_DIM]
        paa[dim_a:, dim_a:] = p_ll
        self._paa, self._phi = paa, phi
        self._active.append(k)
        self._a_pos[k] = dim_a
        self._index[lm_id] = k
        self._ids.append(lm_id)
        self._n += 1
        self._tick += 1
        self._last_seen[k] = self._tick

    def _pose_cov(self) -> FloatArray:
        return self._paa[:POSE_DIM, :POSE_DIM]

    def _predict_blocks(self, f: FloatArray, q: FloatArray) -> None:
        r = POSE_DIM
        paa, phi = self._paa, self._phi
        paa[:r, :] = f @ paa[:r, :]
        paa[:, :r] = paa[:, :r] @ f.T
        paa[:r, :r] += q
        paa[:r, :r] = 0.5 * (paa[:r, :r] + paa[:r, :r].T)
        phi[:r, :] = f @ phi[:r, :]

    def _correct(self, j: int, h_r: FloatArray, h_l: FloatArray, nu: FloatArray, r_z: FloatArray) -> float:
        if j >= 0:
            if j not in self._a_pos:
                self._flush(keep=j)
            a = self._a_pos[j]
            cols = np.array([0, 1, 2, a, a + 1])
            h = np.hstack([h_r[:, :3], h_l])
        else:
            cols = np.array([0, 1, 2])
            h = h_r[:, :3]
        paa = self._paa
        pht = paa[:, cols] @ h.T  # (dim_A, 2)
        s = h @ pht[cols] + r_z
        s = 0.5 * (s + s.T)
        det = float(s[0, 0] * s[1, 1] - s[0, 1] * s[1, 0])
        if not det > 0.0:
            return math.inf
        s_inv = np.array([[s[1, 1], -s[0, 1]], [-s[1, 0], s[0, 0]]]) / det
        d2 = float(nu @ s_inv @ nu)
        if not d2 <= self._params.gate_chi2:
            return d2
        k_a = pht @ s_inv
        self._xs[self._a_idx()] += k_a @ nu
        paa -= k_a @ pht.T
        self._paa = 0.5 * (paa + paa.T)
        # pending effect on B (Guivant & Nebot): theta += Phi^T H^T S^-1 nu, psi += Phi^T H^T S^-1 H Phi,
        # Phi <- Phi - K_A (H Phi)
        h_phi = h @ self._phi[cols]  # (2, dim_A0)
        self._theta += h_phi.T @ (s_inv @ nu)
        self._psi += h_phi.T @ s_inv @ h_phi
        self._phi -= k_a @ h_phi
        if j >= 0:
            self._tick += 1
            self._last_seen[j] = self._tick
        return d2

    def _landmark_mean(self, j: int) -> FloatArray:
        return self._xs[POSE_DIM + 2 * j : POSE_DIM + 2 + 2 * j]

    def _landmark_cov(self, j: int) -> FloatArray:
        i = POSE_DIM + 2 * j
        return self._p[i : i + 2, i : i + 2]


class DenseEkfSlam(_LandmarkFilterBase):
    """Textbook EKF-SLAM: one dense (6 + 2n)^2 covariance, P <- P - K S K^T per observation (O(n^2)).

    The baseline for ``LandmarkEkf`` (same models, same parameters, same pose block). H is applied
    sparsely (only the pose and landmark-j columns), so the cost is the O(n^2) covariance update itself.
    """

    def _init_storage(self) -> None:
        self._n = 0
        self._cap = 16
        self._xs = np.zeros(POSE_DIM + 2 * self._cap)
        self._xs[:POSE_DIM] = self._x
        self._x = self._xs[:POSE_DIM]  # a view: the base class updates the pose block in place
        self._p = np.zeros((POSE_DIM + 2 * self._cap, POSE_DIM + 2 * self._cap))
        self._p[:POSE_DIM, :POSE_DIM] = self._p_initial

    def _dim(self) -> int:
        return POSE_DIM + 2 * self._n

    def _append(self, lm_id: int, mean: FloatArray, p_ll: FloatArray, p_rl: FloatArray, g_r: FloatArray | None) -> None:
        if self._n == self._cap:
            old = self._dim()
            self._cap *= 2
            xs = np.zeros(POSE_DIM + 2 * self._cap)
            xs[:old] = self._xs[:old]
            p = np.zeros((POSE_DIM + 2 * self._cap, POSE_DIM + 2 * self._cap))
            p[:old, :old] = self._p[:old, :old]
            self._xs, self._p = xs, p
            self._x = self._xs[:POSE_DIM]
        dim = self._dim()
        self._xs[dim : dim + 2] = mean
        self._p[dim : dim + 2, dim : dim + 2] = p_ll
        # a surveyed prior is independent of everything; else P_{.,l} = P_{.,r} G_r^T for every row
        cross = np.zeros((dim, 2)) if g_r is None else self._p[:dim, :POSE_DIM] @ g_r.T
        self._p[:dim, dim : dim + 2] = cross
        self._p[dim : dim + 2, :dim] = cross.T
        self._index[lm_id] = self._n
        self._ids.append(lm_id)
        self._n += 1

    def _pose_cov(self) -> FloatArray:
        return self._p[:POSE_DIM, :POSE_DIM]

    def _predict_blocks(self, f: FloatArray, q: FloatArray) -> None:
        dim, r = self._dim(), POSE_DIM
        p = self._p
        p[:r, :dim] = f @ p[:r, :dim]
        p[:dim, :r] = p[:dim, :r] @ f.T
        p[:r, :r] += q
        p[:r, :r] = 0.5 * (p[:r, :r] + p[:r, :r].T)

    def _correct(self, j: int, h_r: FloatArray, h_l: FloatArray, nu: FloatArray, r_z: FloatArray) -> float:
        dim = self._dim()
        p = self._p[:dim, :dim]
        if j >= 0:
            cols = np.array([0, 1, 2, POSE_DIM + 2 * j, POSE_DIM + 1 + 2 * j])
            h = np.hstack([h_r[:, :3], h_l])
        else:
            cols = np.array([0, 1, 2])
            h = h_r[:, :3]
        pht = p[:, cols] @ h.T  # (dim, 2)
        s = h @ pht[cols] + r_z
        s = 0.5 * (s + s.T)
        try:
            s_inv = np.linalg.inv(s)
        except np.linalg.LinAlgError:
            return math.inf
        d2 = float(nu @ s_inv @ nu)
        if not d2 <= self._params.gate_chi2:
            return d2
        k = pht @ s_inv
        self._xs[:dim] += k @ nu
        p -= k @ pht.T  # the O(n^2) step
        self._p[:dim, :dim] = 0.5 * (p + p.T)
        return d2

    def _landmark_mean(self, j: int) -> FloatArray:
        return self._xs[POSE_DIM + 2 * j : POSE_DIM + 2 + 2 * j]

    def _landmark_cov(self, j: int) -> FloatArray:
        return self._p[POSE_DIM + 2 * j : POSE_DIM + 2 + 2 * j, POSE_DIM + 2 * j : POSE_DIM + 2 + 2 * j]


LandmarkFilter = _LandmarkFilterBase  # the public name of the shared interface (both filters)
