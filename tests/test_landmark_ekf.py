"""LandmarkEkf (compressed EKF-SLAM) and DenseEkfSlam: Jacobians, gating, exactness of the compressed
filter against the dense one, NEES on synthetic runs, mapping of unknown landmarks, the lost flag, and
the odometry calibration states (gyro bias, wheel slip)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from autonomy.estimation.landmark_ekf import (
    POSE_DIM,
    DenseEkfSlam,
    LandmarkEkf,
    LandmarkEkfParams,
    LandmarkFilter,
    RangeBearingObservation,
    UpdateResult,
    fiducial_inverse,
    fiducial_model,
    range_bearing_inverse,
    range_bearing_model,
)
from autonomy.msgs import FiducialObservation, Landmark, Pose2D, Pose3D, wrap_angle_rad

FloatArray = npt.NDArray[np.float64]

LANDMARKS_XY = np.array([[6.0, -1.5], [6.0, 1.5], [-1.5, 4.0], [2.0, 6.0], [-2.0, -2.0], [3.0, -4.0], [-4.0, 1.0]])
P0 = np.diag([0.01**2, 0.01**2, math.radians(0.5) ** 2])


def numeric_jacobian(fn: Callable[[FloatArray], FloatArray], x: FloatArray, eps: float = 1e-6) -> FloatArray:
    cols = []
    for i in range(len(x)):
        dx = np.zeros(len(x))
        dx[i] = eps
        cols.append((fn(x + dx) - fn(x - dx)) / (2 * eps))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("pose", [np.array([0.3, -0.2, 0.4]), np.array([-1.0, 2.0, -2.9]), np.array([0, 0, 3.1])])
def test_measurement_jacobians_match_numeric(pose: FloatArray) -> None:
    lm = np.array([2.5, 1.2])
    for model in (fiducial_model, range_bearing_model):
        _, h_r, h_l = model(pose, lm)

        def wrap_fn(m: Callable[..., tuple[FloatArray, ...]], base: FloatArray) -> Callable[[FloatArray], FloatArray]:
            def f(v: FloatArray) -> FloatArray:
                out = m(v, lm)[0] if len(v) == 3 else m(pose, v)[0]
                if m is range_bearing_model:  # keep the bearing continuous around the base value
                    out = out.copy()
                    out[1] = base[1] + wrap_angle_rad(float(out[1] - base[1]))
                return out

            return f

        base = model(pose, lm)[0]
        np.testing.assert_allclose(h_r, numeric_jacobian(wrap_fn(model, base), pose), atol=1e-6)
        np.testing.assert_allclose(h_l, numeric_jacobian(wrap_fn(model, base), lm), atol=1e-6)


@pytest.mark.parametrize("inverse", [fiducial_inverse, range_bearing_inverse])
def test_inverse_models_and_jacobians(inverse: Callable[[FloatArray, FloatArray], tuple[FloatArray, ...]]) -> None:
    pose = np.array([0.7, -0.4, 0.9])
    z = np.array([2.0, 0.3])
    lm, g_r, g_z = inverse(pose, z)
    model = fiducial_model if inverse is fiducial_inverse else range_bearing_model
    np.testing.assert_allclose(model(pose, lm)[0], z, atol=1e-12)  # inverse of the measurement model
    np.testing.assert_allclose(g_r, numeric_jacobian(lambda p: inverse(p, z)[0], pose), atol=1e-6)
    np.testing.assert_allclose(g_z, numeric_jacobian(lambda zz: inverse(pose, zz)[0], z), atol=1e-6)


@pytest.mark.parametrize("pivot", [0.0, 0.24, -0.1])
def test_motion_jacobian_matches_numeric(pivot: float) -> None:
    ekf = LandmarkEkf(Pose2D(0.5, -0.3, 0.8), P0, (), LandmarkEkfParams())
    ekf._x[3:] = [0.01, 0.93, 1.05]  # a non-trivial calibration
    d, dth, tau = 0.4, 0.25, 0.5
    _, f, g = ekf.motion_jacobian(d, dth, tau, pivot)
    x0 = ekf._x.copy()

    def step(x: FloatArray) -> FloatArray:
        ekf._x[:] = x
        out = ekf.motion_jacobian(d, dth, tau, pivot)[0].copy()
        ekf._x[:] = x0
        return out

    np.testing.assert_allclose(f, numeric_jacobian(step, x0), atol=1e-6)
    # G: derivative with respect to the calibrated increment (d', dth')
    kv, kw = x0[4], x0[5]

    def step_u(u: FloatArray) -> FloatArray:  # uncalibrated state: u is (d', dth') itself
        ekf._x[:] = x0
        ekf._x[3:] = [0.0, 1.0, 1.0]
        out = ekf.motion_jacobian(float(u[0]), float(u[1]), 0.0, pivot)[0].copy()
        ekf._x[:] = x0
        return out

    u0 = np.array([kv * d, kw * dth - x0[3] * tau])
    np.testing.assert_allclose(g, numeric_jacobian(step_u, u0), atol=1e-6)


def test_a_turn_in_place_rotates_about_the_pivot() -> None:
    """A turn in place in small steps keeps the pivot point (p ahead of base_link) where it was, so base_link
    swings on a circle of radius p around it: 90 deg left about a pivot 0.25 m ahead moves it 0.25 m forward
    and 0.25 m right."""
    ekf = LandmarkEkf(Pose2D(1.0, 2.0, 0.0), P0, (), LandmarkEkfParams(yaw_rate_bias_sigma_radps=0.0))
    ekf._x[3:] = [0.0, 1.0, 1.0]
    steps = 200
    for k in range(steps):
        ekf.predict(0.05 * (k + 1), 0.0, math.pi / 2 / steps, pivot_x_m=0.25)
    x, y, yaw = ekf.mean[:3]
    assert yaw == pytest.approx(math.pi / 2, abs=1e-9)
    assert (x, y) == pytest.approx((1.25, 1.75), abs=1e-4)  # the pivot (1.25, 2.0) stays; base_link is behind it
    with pytest.raises(ValueError, match="pivot"):
        ekf.predict(20.0, 0.0, 0.1, pivot_x_m=math.nan)


def fiducial_obs(stamp: float, tag_id: int, xy: FloatArray, sigma: float = 0.03) -> FiducialObservation:
    return FiducialObservation(
        stamp_s=stamp,
        tag_id=tag_id,
        tag_size_m=0.2,
        corners_px=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
        tag_in_base=Pose3D(float(xy[0]), float(xy[1]), 0.4),
        position_covariance_m2=((sigma**2, 0.0), (0.0, sigma**2)),
        pixel_size_px=40.0,
        reprojection_error_px=0.1,
    )


def surveyed() -> tuple[Landmark, ...]:
    return tuple(Landmark(i, float(x), float(y), 0.4, 0.2) for i, (x, y) in enumerate(LANDMARKS_XY))


def test_gating_rejects_an_outlier_in_both_filters() -> None:
    for cls in (LandmarkEkf, DenseEkfSlam):
        ekf = cls(Pose2D(0.0, 0.0, 0.0), P0, surveyed(), LandmarkEkfParams())
        ekf.predict(0.0, 0.0, 0.0)
        good = fiducial_model(np.zeros(3), LANDMARKS_XY[0])[0]
        assert ekf.update_fiducial(fiducial_obs(0.0, 0, good)) is UpdateResult.ACCEPTED
        before = ekf.mean
        assert ekf.update_fiducial(fiducial_obs(0.0, 0, good + np.array([1.5, -1.0]))) is UpdateResult.GATED
        assert not UpdateResult.GATED and not UpdateResult.REFUSED and UpdateResult.ACCEPTED  # PoseEkf's bool
        np.testing.assert_array_equal(ekf.mean, before)
        rb = RangeBearingObservation(0.0, 1, float(np.hypot(*LANDMARKS_XY[1])) + 2.0, 0.24)
        assert ekf.update_range_bearing(rb) is UpdateResult.GATED
        assert ekf.last_mahalanobis2 is not None and ekf.last_mahalanobis2 > ekf.params.gate_chi2


def simulate(
    filters: list[LandmarkFilter],
    seed: int,
    steps: int = 300,
    true_calibration: tuple[float, float, float] = (0.0, 1.0, 1.0),
    observe_every: int = 2,
    params: LandmarkEkfParams | None = None,
) -> tuple[list[float], FloatArray]:
    """Drive a loop with noisy odometry; range-bearing observations of landmarks within 7 m. Returns
    the first filter's position NEES per step and the true final pose."""
    prm = params or filters[0].params
    rng = np.random.default_rng(seed)
    bias, kv, kw = true_calibration
    x = np.array([0.0, 0.0, 0.0])
    dt = 0.2
    nees: list[float] = []
    for k in range(steps):
        stamp = (k + 1) * dt
        v, w = 0.5, 0.25 * math.sin(0.02 * k) + 0.15
        d_true = v * dt + rng.normal(0, math.sqrt(prm.distance_var_per_m * v * dt))
        dth_true = w * dt + rng.normal(0, math.sqrt(prm.yaw_var_per_rad * abs(w) * dt + prm.yaw_var_per_s * dt))
        lat = rng.normal(0, math.sqrt(prm.lateral_var_per_m * v * dt))
        th_m = x[2] + dth_true / 2
        x = np.array(
            [
                x[0] + d_true * math.cos(th_m) - lat * math.sin(th_m),
                x[1] + d_true * math.sin(th_m) + lat * math.cos(th_m),
                wrap_angle_rad(x[2] + dth_true),
            ]
        )
        # what the sensors report: wheel distance d_true / kv, gyro (dth_true + bias dt) / kw
        d_meas = d_true / kv
        dth_meas = (dth_true + bias * dt) / kw
        for f in filters:
            f.predict(stamp, d_meas, dth_meas)
        if k % observe_every == 0:
            for i, lm in enumerate(LANDMARKS_XY):
                dx, dy = lm - x[:2]
                r = math.hypot(dx, dy)
                if r > 7.0:
                    continue
                sr = math.sqrt(prm.range_sigma_m**2 + (prm.range_sigma_per_m * r) ** 2)
                obs = RangeBearingObservation(
                    stamp,
                    i,
                    r + rng.normal(0, sr),
                    wrap_angle_rad(math.atan2(dy, dx) - x[2] + rng.normal(0, prm.bearing_sigma_rad)),
                )
                for f in filters:
                    f.update_range_bearing(obs)
        e = filters[0].mean[:2] - x[:2]
        nees.append(float(e @ np.linalg.solve(filters[0].covariance[:2, :2], e)))
    return nees, x


def test_compressed_ekf_equals_dense_ekf_slam() -> None:
    prm = LandmarkEkfParams()
    ours = LandmarkEkf(Pose2D(0, 0, 0), P0, (), prm, active_landmarks=2)  # tiny active set: many flushes
    dense = DenseEkfSlam(Pose2D(0, 0, 0), P0, (), prm)
    simulate([ours, dense], seed=3, steps=200)
    assert ours.flush_count > 10
    np.testing.assert_allclose(ours.pose_block_covariance, dense.pose_block_covariance, atol=1e-12)
    np.testing.assert_allclose(ours.mean, dense.mean, atol=1e-9)
    a, b = ours.landmarks(), dense.landmarks()
    assert a.keys() == b.keys() and len(a) == len(LANDMARKS_XY)
    for i in a:
        np.testing.assert_allclose(a[i][0], b[i][0], atol=1e-9)
        np.testing.assert_allclose(a[i][1], b[i][1], atol=1e-12)


class _YawTracking(LandmarkEkf):
    """LandmarkEkf that records the yaw variance after every range-bearing update."""

    yaw_var: list[float]

    def update_range_bearing(self, obs: RangeBearingObservation) -> UpdateResult:
        res = super().update_range_bearing(obs)
        self.yaw_var = [*getattr(self, "yaw_var", []), float(self.covariance[2, 2])]
        return res


def test_first_estimates_jacobians_keep_the_global_heading_unobservable() -> None:
    """SLAM from an uncertain start heading (0.1 rad) with no landmark known: no observation can tell the
    map's global heading, so the robot's yaw variance must never fall below the start's. The textbook EKF
    falls to 20-46 % of it (spurious information, the over-confidence seen on MRCLAM); with first-estimates
    Jacobians it stays at or above it, and the compressed filter still equals the dense one."""
    p0 = np.diag([0.05**2, 0.05**2, 0.1**2])
    for fej in (False, True):
        prm = LandmarkEkfParams(first_estimates_jacobians=fej)
        ours = _YawTracking(Pose2D(0, 0, 0), p0, (), prm, active_landmarks=2)
        dense = DenseEkfSlam(Pose2D(0, 0, 0), p0, (), prm)
        simulate([ours, dense], seed=1, steps=300)
        assert len(ours.yaw_var) > 500 and ours.flush_count > 10
        if fej:
            assert min(ours.yaw_var) >= 0.999 * p0[2, 2]
        else:
            assert min(ours.yaw_var) < 0.6 * p0[2, 2]
        np.testing.assert_allclose(ours.mean, dense.mean, atol=1e-9)
        a, b = ours.landmarks(), dense.landmarks()
        for i in a:
            np.testing.assert_allclose(a[i][0], b[i][0], atol=1e-9)
            np.testing.assert_allclose(a[i][1], b[i][1], atol=1e-12)


@pytest.mark.parametrize("mode", ["localization", "slam"])
def test_nees_is_consistent_on_a_synthetic_run(mode: str) -> None:
    """Mean position NEES over 16 runs x 300 steps near 2 (chi-square, 2 dof): within [1, 3.2]."""
    prm = LandmarkEkfParams(yaw_rate_bias_sigma_radps=0.0, distance_scale_sigma=0.0, yaw_scale_sigma=0.0)
    prm = LandmarkEkfParams(
        **{
            **{f: getattr(prm, f) for f in prm.__slots__},
            "yaw_rate_bias_var_per_s": 0.0,
            "distance_scale_var_per_s": 0.0,
            "yaw_scale_var_per_s": 0.0,
            "range_sigma_m": 0.05,
            "bearing_sigma_rad": 0.02,
        }
    )
    all_nees: list[float] = []
    for seed in range(16):
        lms = surveyed() if mode == "localization" else ()
        ekf = LandmarkEkf(Pose2D(0, 0, 0), np.diag([1e-8, 1e-8, 1e-8]), lms, prm)
        nees, _ = simulate([ekf], seed=seed, steps=300)
        all_nees += nees
    mean = float(np.mean(all_nees))
    assert 1.0 < mean < 3.2, mean


def test_unknown_landmark_is_initialised_and_converges() -> None:
    ekf = LandmarkEkf(Pose2D(0, 0, 0), P0, (), LandmarkEkfParams())
    ekf.predict(0.0, 0.0, 0.0)
    rng = np.random.default_rng(1)
    lm = np.array([3.0, 1.0])
    results = []
    sigmas = []
    for k in range(60):
        ekf.predict(0.1 * (k + 1), 0.0, 0.0)
        dx, dy = lm - ekf.mean[:2]
        obs = RangeBearingObservation(
            0.1 * (k + 1), 42, math.hypot(dx, dy) + rng.normal(0, 0.05), math.atan2(dy, dx) + rng.normal(0, 0.02)
        )
        results.append(ekf.update_range_bearing(obs))
        mean, cov = ekf.landmarks()[42]
        sigmas.append(math.sqrt(float(np.linalg.eigvalsh(cov).max())))
    assert results[0] is UpdateResult.INITIALISED and set(results[1:]) == {UpdateResult.ACCEPTED}
    assert ekf.landmark_count == 1
    assert sigmas[-1] < 0.5 * sigmas[0]
    assert float(np.hypot(*(mean - lm))) < 3 * sigmas[-1] + 0.02
    # mapping off: unknown landmarks are refused
    off = LandmarkEkf(Pose2D(0, 0, 0), P0, (), LandmarkEkfParams(map_unknown=False))
    off.predict(0.0, 0.0, 0.0)
    assert off.update_range_bearing(obs) is UpdateResult.UNKNOWN and off.landmark_count == 0


def test_lost_when_uncertain_and_found_again_at_a_known_tag() -> None:
    # the yaw bound alone trips first when driving blind
    yaw_first = LandmarkEkf(Pose2D(0, 0, 0), P0, surveyed(), LandmarkEkfParams(lost_yaw_sigma_rad=0.3))
    yaw_first.predict(0.0, 0.0, 0.0)
    yaw_first.predict(5.0, 0.0, 0.0, gap_s=5.0)
    assert yaw_first.lost and yaw_first.estimate(5.0).position_sigma_m() < 1.0
    prm = LandmarkEkfParams(lost_position_sigma_m=0.5, lost_yaw_sigma_rad=2.0)
    ekf = LandmarkEkf(Pose2D(0, 0, 0), P0, surveyed(), prm)
    t = 0.0
    ekf.predict(t, 0.0, 0.0)
    assert not ekf.lost and not ekf.estimate(t).lost
    while not ekf.lost:  # drive blind (an odometry gap: unknown motion)
        t += 1.0
        ekf.predict(t, 0.0, 0.0, gap_s=1.0)
        assert t < 1000
    assert ekf.estimate(t).lost and ekf.estimate(t).position_sigma_m() > 0.5
    for _ in range(20):  # the rover sees known tags again: relocalized
        for i in (0, 1, 4):
            z = fiducial_model(np.zeros(3), LANDMARKS_XY[i])[0]
            ekf.update_fiducial(fiducial_obs(t, i, z, sigma=0.05))
    assert not ekf.lost and not ekf.estimate(t).lost
    assert float(np.hypot(*ekf.mean[:2])) < 0.1


def test_gyro_bias_and_wheel_slip_are_estimated() -> None:
    """A gyro bias of 0.02 rad/s and 15 % wheel slip (the wheels over-report distance by 1/0.85):
    the calibration states converge to them and the pose stays accurate."""
    prm = LandmarkEkfParams(distance_scale_sigma=0.2, yaw_rate_bias_sigma_radps=0.05)
    ekf = LandmarkEkf(Pose2D(0, 0, 0), P0, surveyed(), prm)
    _, x = simulate([ekf], seed=5, steps=600, true_calibration=(0.02, 0.85, 1.0))
    b, kv, kw = ekf.odometry_calibration
    assert abs(b - 0.02) < 0.004
    assert abs(kv - 0.85) < 0.03
    assert abs(kw - 1.0) < 0.03
    assert float(np.hypot(*(ekf.mean[:2] - x[:2]))) < 0.15
    # with the calibration states switched off (zero sigma, zero random walk) they never move
    fixed = LandmarkEkfParams(
        distance_scale_sigma=0.0,
        distance_scale_var_per_s=0.0,
        yaw_rate_bias_sigma_radps=0.0,
        yaw_rate_bias_var_per_s=0.0,
        yaw_scale_sigma=0.0,
        yaw_scale_var_per_s=0.0,
    )
    plain = LandmarkEkf(Pose2D(0, 0, 0), P0, surveyed(), fixed)
    simulate([plain], seed=5, steps=600, true_calibration=(0.02, 0.85, 1.0), observe_every=1000)
    assert plain.odometry_calibration == (0.0, 1.0, 1.0)


def test_turn_position_noise_covers_a_scrubbing_point_turn() -> None:
    """A skid-steer point turn of 2 rad during which the base slid 0.25 m (the wheels report no distance):
    ``turn_position_var_per_rad`` grows the position covariance by q |dth| per axis, so the tag that sees
    the slide is accepted and pulls the pose to it; without it the filter stays at its start sigma and
    gates the tag (the open-beacons divergence)."""
    slid = np.array([-0.25, 0.0, 2.0])  # true pose after the turn: 25 cm downhill (-x)
    results = {}
    for q in (0.0, 0.15**2):
        prm = LandmarkEkfParams(turn_position_var_per_rad=q, yaw_rate_bias_sigma_radps=0.0)
        ekf = LandmarkEkf(Pose2D(0.0, 0.0, 0.0), P0, surveyed(), prm)
        ekf.predict(0.0, 0.0, 0.0)
        for k in range(1, 21):  # 2 rad in 20 increments, no distance
            ekf.predict(0.1 * k, 0.0, 0.1)
        p = ekf.covariance
        expected = P0[0, 0] + q * 2.0
        assert p[0, 0] == pytest.approx(expected, rel=0.05) and p[1, 1] == pytest.approx(expected, rel=0.05)
        # the tag at (6, -1.5), seen from the true pose: the slide is along its line of sight (not a yaw error)
        z = fiducial_model(slid, LANDMARKS_XY[0])[0]
        results[q] = ekf.update_fiducial(fiducial_obs(2.0, 0, z, sigma=0.03))
        if q > 0.0:  # a second tag (2, 6) pins the position
            z2 = fiducial_model(slid, LANDMARKS_XY[3])[0]
            assert ekf.update_fiducial(fiducial_obs(2.0, 3, z2, sigma=0.03)) is UpdateResult.ACCEPTED
            assert float(np.hypot(*(ekf.mean[:2] - slid[:2]))) < 0.05
    assert results[0.0] is UpdateResult.GATED and results[0.15**2] is UpdateResult.ACCEPTED
    with pytest.raises(ValueError, match="turn_position_var_per_rad"):
        LandmarkEkfParams(turn_position_var_per_rad=-1.0)


def test_surveyed_landmark_with_a_prior_is_refined() -> None:
    lm = Landmark(7, 4.0, 0.0, 0.4, 0.2)
    ekf = LandmarkEkf(Pose2D(0, 0, 0), P0, (lm,), LandmarkEkfParams(), surveyed_covariances={7: np.eye(2) * 0.04})
    assert ekf.landmark_count == 1
    ekf.predict(0.0, 0.0, 0.0)
    for _ in range(20):
        ekf.update_fiducial(fiducial_obs(0.0, 7, np.array([4.1, 0.0]), sigma=0.02))
    mean, cov = ekf.landmarks()[7]
    assert cov[0, 0] < 0.04 and 4.0 < mean[0] < 4.1


def test_bad_inputs_raise_clear_errors() -> None:
    prm = LandmarkEkfParams()
    with pytest.raises(ValueError, match="listed twice"):
        LandmarkEkf(Pose2D(0, 0, 0), P0, surveyed() + surveyed()[:1], prm)
    with pytest.raises(ValueError, match="not symmetric"):
        LandmarkEkf(Pose2D(0, 0, 0), np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 1.0]]), (), prm)
    with pytest.raises(ValueError, match="not surveyed"):
        LandmarkEkf(Pose2D(0, 0, 0), P0, (), prm, surveyed_covariances={3: np.eye(2)})
    with pytest.raises(ValueError, match="gate_chi2"):
        LandmarkEkfParams(gate_chi2=0.0)
    with pytest.raises(ValueError, match="range_m"):
        RangeBearingObservation(0.0, 1, -1.0, 0.0)
    ekf = LandmarkEkf(Pose2D(0, 0, 0), P0, (), prm)
    ekf.predict(1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="backwards"):
        ekf.predict(0.5, 0.0, 0.0)
    # an observation before the first predict, or too old, is refused (not an error)
    fresh = LandmarkEkf(Pose2D(0, 0, 0), P0, (), prm)
    assert fresh.update_range_bearing(RangeBearingObservation(0.0, 1, 2.0, 0.0)) is UpdateResult.REFUSED
    assert ekf.update_range_bearing(RangeBearingObservation(0.0, 1, 2.0, 0.0)) is UpdateResult.REFUSED
    assert POSE_DIM == 6


def test_drop_in_for_pose_ekf_with_calibration_off() -> None:
    """With the calibration states off and mapping off, LandmarkEkf is PoseEkf (same numbers)."""
    from autonomy.estimation.ekf import EkfParams, PoseEkf

    e = EkfParams()
    prm = LandmarkEkfParams(
        distance_var_per_m=e.distance_var_per_m,
        lateral_var_per_m=e.lateral_var_per_m,
        yaw_var_per_rad=e.yaw_var_per_rad,
        yaw_var_per_m=e.yaw_var_per_m,
        yaw_var_per_s=e.yaw_var_per_s,
        yaw_rate_bias_sigma_radps=0.0,
        yaw_rate_bias_var_per_s=0.0,
        distance_scale_sigma=0.0,
        distance_scale_var_per_s=0.0,
        yaw_scale_sigma=0.0,
        yaw_scale_var_per_s=0.0,
        map_unknown=False,
    )
    lms = surveyed()
    old = PoseEkf(Pose2D(0.1, 0.2, 0.3), P0, lms, e)
    new = LandmarkEkf(Pose2D(0.1, 0.2, 0.3), P0, lms, prm)
    rng = np.random.default_rng(2)
    for k in range(100):
        d, dth = 0.05 + 0.01 * rng.standard_normal(), 0.02 * rng.standard_normal()
        old.predict(0.05 * k, d, dth)
        new.predict(0.05 * k, d, dth)
        i = k % len(lms)
        z = fiducial_model(old.mean, LANDMARKS_XY[i])[0] + 0.02 * rng.standard_normal(2)
        obs = fiducial_obs(0.05 * k, i, z)
        assert bool(old.update_fiducial(obs)) == bool(new.update_fiducial(obs))
        assert not new.update_fiducial(fiducial_obs(0.05 * k, 99, z))  # unknown id, mapping off
    np.testing.assert_allclose(new.mean, old.mean, atol=1e-12)
    np.testing.assert_allclose(new.covariance, old.covariance, atol=1e-14)
    est = new.estimate(5.0)
    assert est.landmarks_used == 1 and not est.lost


def test_estimation_bench_reports_both_filters() -> None:
    from targets.bench_estimation import run_estimation_bench

    out = run_estimation_bench(sizes=(30,), updates=10)
    entry = out["sizes"][0]
    assert entry["landmarks"] == 30
    assert {"compressed_ekf", "dense_ekf_slam", "dense_over_ours_update_p50"} <= entry.keys()
    assert entry["compressed_ekf"]["update"]["p50_ms"] > 0 and "flush_update" in entry["compressed_ekf"]
