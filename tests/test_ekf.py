"""PoseEkf and WheelImuOdometry: Jacobians, a noisy kinematic simulation (convergence, NEES consistency),
gating, covariance health, and the odometry helper on straight, turning and faulty sequences."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.estimation.ekf import CHI2_2DOF_999, EkfParams, PoseEkf
from autonomy.estimation.odometry import WheelImuOdometry
from autonomy.msgs import (
    FiducialObservation,
    ImuReading,
    Landmark,
    Pose2D,
    Pose3D,
    WheelEncoderReading,
    wrap_angle_rad,
)

FloatArray = npt.NDArray[np.float64]

LANDMARKS = (
    Landmark(0, 6.0, -1.5, 0.45, 0.2, math.pi),
    Landmark(1, 6.0, 1.5, 0.45, 0.2, math.pi),
    Landmark(2, -1.5, 4.0, 0.45, 0.2, 0.0),
    Landmark(3, 2.0, 6.0, 0.45, 0.2, -math.pi / 2),
    Landmark(4, -2.0, -2.0, 0.45, 0.2, math.pi / 4),
)
PARAMS = EkfParams()


def make_obs(
    stamp_s: float, tag_id: int, x_m: float, y_m: float, cov: tuple[tuple[float, float], tuple[float, float]]
) -> FiducialObservation:
    return FiducialObservation(
        stamp_s=stamp_s,
        tag_id=tag_id,
        tag_size_m=0.2,
        corners_px=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
        tag_in_base=Pose3D(x_m, y_m, 0.45),
        position_covariance_m2=cov,
        pixel_size_px=40.0,
        reprojection_error_px=0.1,
    )


def obs_covariance(x_m: float, y_m: float) -> FloatArray:
    """The detector's model for a 0.2 m tag seen by a 500 px camera, 0.5 px corner sigma, 1 cm floor."""
    r = math.hypot(x_m, y_m)
    sr, st_ = 0.5 * r * r / (500.0 * 0.2), 0.5 * r / 500.0
    u = np.array([x_m, y_m]) / r
    return np.asarray(st_**2 * np.eye(2) + (sr**2 - st_**2) * np.outer(u, u) + 0.01**2 * np.eye(2))


def is_symmetric_psd(p: FloatArray) -> bool:
    return bool(np.allclose(p, p.T, atol=1e-15) and np.linalg.eigvalsh(p).min() > -1e-15)


# -------------------------------------------------------------------------------------------------
# Models and Jacobians
# -------------------------------------------------------------------------------------------------


def test_measurement_jacobian_matches_numeric() -> None:
    ekf = PoseEkf(Pose2D(1.0, -0.5, 0.7), np.eye(3) * 0.01, LANDMARKS, PARAMS)
    lm = LANDMARKS[0]
    h0, jac = ekf.expected_observation(lm)
    x0 = ekf.mean
    num = np.zeros((2, 3))
    for i in range(3):
        dx = np.zeros(3)
        dx[i] = 1e-6
        plus = PoseEkf(Pose2D(*(x0 + dx)), np.eye(3), LANDMARKS, PARAMS).expected_observation(lm)[0]
        minus = PoseEkf(Pose2D(*(x0 - dx)), np.eye(3), LANDMARKS, PARAMS).expected_observation(lm)[0]
        num[:, i] = (plus - minus) / 2e-6
    np.testing.assert_allclose(jac, num, atol=1e-6)
    # h(x) = R(yaw)^T (l - p)
    c, s = math.cos(0.7), math.sin(0.7)
    np.testing.assert_allclose(h0, np.array([[c, s], [-s, c]]) @ np.array([lm.x_m - 1.0, lm.y_m + 0.5]))


def test_motion_model_and_covariance_growth() -> None:
    ekf = PoseEkf(Pose2D(0.0, 0.0, 0.0), np.zeros((3, 3)), (), PARAMS)
    # a quarter circle of radius 1 m in 100 slices lands on (1, 1) facing +y (mid-point model, to 1e-4 m)
    for k in range(100):
        ekf.predict(0.05 * (k + 1), math.pi / 2 / 100, math.pi / 2 / 100)
    np.testing.assert_allclose(ekf.mean, [1.0, 1.0, math.pi / 2], atol=1e-4)
    p = ekf.covariance
    assert is_symmetric_psd(p) and p[0, 0] > 0 and p[1, 1] > 0 and p[2, 2] > 0
    # variance per metre (random walk): slicing the same motion finer gives the same covariance
    coarse = PoseEkf(Pose2D(0.0, 0.0, 0.0), np.zeros((3, 3)), (), PARAMS)
    fine = PoseEkf(Pose2D(0.0, 0.0, 0.0), np.zeros((3, 3)), (), PARAMS)
    for k in range(10):
        coarse.predict(0.1 * (k + 1), 0.1, 0.0)
    for k in range(100):
        fine.predict(0.01 * (k + 1), 0.01, 0.0)
    np.testing.assert_allclose(coarse.covariance, fine.covariance, rtol=0.05, atol=1e-9)
    assert coarse.covariance[0, 0] == pytest.approx(PARAMS.distance_var_per_m * 1.0, rel=1e-6)


# -------------------------------------------------------------------------------------------------
# Simulation
# -------------------------------------------------------------------------------------------------


def simulate(
    seed: int,
    steps: int = 600,
    initial_error: tuple[float, float, float] = (0.0, 0.0, 0.0),
    initial_sigma: tuple[float, float, float] = (0.05, 0.05, 0.03),
    camera_every: int = 4,
) -> dict[str, FloatArray]:
    """Drive a figure-of-eight-ish route for steps x 0.05 s with odometry noise drawn from the filter's own
    model (and lateral slip); see landmarks within 6 m and +-35 deg ahead at 5 Hz with noise drawn from
    the detector's covariance. Returns errors, covariances and NEES over time."""
    rng = np.random.default_rng(seed)
    dt = 0.05
    truth = np.array([0.0, 0.0, 0.0])
    start = truth + np.array(initial_error)
    p0 = np.diag(np.square(initial_sigma))
    ekf = PoseEkf(Pose2D(*start), p0, LANDMARKS, PARAMS)
    errs, covs, nees, accepted = [], [], [], 0
    for k in range(steps):
        t = (k + 1) * dt
        v = 0.3
        w = 0.35 * math.sin(2.0 * math.pi * t / 40.0)
        d_true, th_true = v * dt, w * dt
        th_m = truth[2] + 0.5 * th_true
        lateral = rng.normal(0.0, math.sqrt(PARAMS.lateral_var_per_m * d_true))
        truth = truth + np.array(
            [
                d_true * math.cos(th_m) - lateral * math.sin(th_m),
                d_true * math.sin(th_m) + lateral * math.cos(th_m),
                th_true,
            ]
        )
        truth[2] = wrap_angle_rad(float(truth[2]))
        d_meas = d_true + rng.normal(0.0, math.sqrt(PARAMS.distance_var_per_m * d_true))
        var_th = PARAMS.yaw_var_per_rad * abs(th_true) + PARAMS.yaw_var_per_m * d_true + PARAMS.yaw_var_per_s * dt
        th_meas = th_true + rng.normal(0.0, math.sqrt(var_th))
        ekf.predict(t, d_meas, th_meas)
        if k % camera_every == 0:
            c, s = math.cos(truth[2]), math.sin(truth[2])
            for lm in LANDMARKS:
                rel = np.array([[c, s], [-s, c]]) @ np.array([lm.x_m - truth[0], lm.y_m - truth[1]])
                if np.hypot(*rel) > 6.0 or abs(math.atan2(rel[1], rel[0])) > math.radians(35.0):
                    continue
                cov = obs_covariance(*rel)
                z = rng.multivariate_normal(rel, cov)
                cov_t = ((cov[0, 0], cov[0, 1]), (cov[1, 0], cov[1, 1]))
                accepted += ekf.update_fiducial(make_obs(t, lm.tag_id, float(z[0]), float(z[1]), cov_t))
        est = ekf.estimate(t)
        e = np.array([est.pose.x_m - truth[0], est.pose.y_m - truth[1], wrap_angle_rad(est.pose.yaw_rad - truth[2])])
        p = np.array(est.covariance)
        assert is_symmetric_psd(p)
        errs.append(e)
        covs.append(p)
        nees.append(float(e @ np.linalg.solve(p, e)))
    return {
        "err": np.array(errs),
        "cov": np.array(covs),
        "nees": np.array(nees),
        "accepted": np.array([accepted]),
        "rejected": np.array([ekf.rejected_count]),
    }


def test_converges_from_a_wrong_start_and_tracks() -> None:
    run = simulate(seed=1, initial_error=(0.3, -0.25, 0.12), initial_sigma=(0.3, 0.3, 0.15))
    err = run["err"]
    assert run["accepted"][0] > 100
    # after 6 s (landmarks 3-6 m away, range sigma up to 18 cm): centimetres, within the filter's sigmas
    late, sig = err[120:], np.sqrt(np.diagonal(run["cov"][120:], axis1=1, axis2=2))
    assert np.all(np.abs(late) <= 4.0 * sig)
    assert np.sqrt(np.mean(np.sum(late[:, :2] ** 2, axis=1))) < 0.05
    assert np.degrees(np.median(np.abs(late[:, 2]))) < 1.0
    # and the filter knows it: 1-sigma of x shrank from 0.3 m to centimetres
    assert float(np.median(sig[:, 0])) < 0.05


def test_odometry_only_drifts_and_the_covariance_says_so() -> None:
    run = simulate(seed=2, camera_every=10**9)
    sig = np.sqrt(run["cov"][:, 0, 0] + run["cov"][:, 1, 1])
    assert sig[-1] > 3.0 * sig[0]  # the covariance grows without landmarks
    assert np.all(np.diff(run["cov"][:, 2, 2]) >= -1e-15)  # heading variance never shrinks


def test_nees_is_consistent_over_monte_carlo_runs() -> None:
    """Average NEES over 25 runs x 600 steps: chi-square 3 dof has mean 3. 95 % bounds of the
    25-run average at one step: chi2(75)/25 in [2.2, 4.0]; most steps should sit inside."""
    runs = [simulate(seed=100 + i)["nees"] for i in range(25)]
    nees = np.array(runs)  # (runs, steps)
    mean_over_runs = nees.mean(axis=0)
    overall = float(nees.mean())
    assert 2.4 < overall < 3.6, overall
    inside = np.mean((mean_over_runs > 2.2) & (mean_over_runs < 4.0))
    assert inside > 0.85, inside


# -------------------------------------------------------------------------------------------------
# Gating and contract
# -------------------------------------------------------------------------------------------------


def _filter_at_origin() -> PoseEkf:
    ekf = PoseEkf(Pose2D(0.0, 0.0, 0.0), np.diag([0.05**2, 0.05**2, 0.02**2]), LANDMARKS, PARAMS)
    ekf.predict(1.0, 0.0, 0.0)
    return ekf


def test_outlier_rejected_by_gate_and_inlier_accepted() -> None:
    ekf = _filter_at_origin()
    cov = ((0.02**2, 0.0), (0.0, 0.02**2))
    before_x, before_p = ekf.mean, ekf.covariance
    # landmark 0 is at (6, -1.5): an observation 1 m off is far outside the gate
    assert not ekf.update_fiducial(make_obs(1.0, 0, 7.0, -1.5, cov))
    assert ekf.last_mahalanobis2 is not None and ekf.last_mahalanobis2 > CHI2_2DOF_999
    np.testing.assert_array_equal(ekf.mean, before_x)
    np.testing.assert_array_equal(ekf.covariance, before_p)
    assert ekf.rejected_count == 1
    assert ekf.update_fiducial(make_obs(1.0, 0, 6.02, -1.49, cov))
    assert ekf.accepted_count == 1
    assert ekf.estimate(1.0).landmarks_used == 1
    assert np.trace(ekf.covariance) < np.trace(before_p)
    ekf.predict(1.05, 0.0, 0.0)
    assert ekf.estimate(1.05).landmarks_used == 0


def test_unknown_stale_and_too_close_observations_refused() -> None:
    ekf = _filter_at_origin()
    cov = ((0.02**2, 0.0), (0.0, 0.02**2))
    assert not ekf.update_fiducial(make_obs(1.0, 99, 6.0, -1.5, cov))  # unknown id
    assert not ekf.update_fiducial(make_obs(0.2, 0, 6.0, -1.5, cov))  # 0.8 s older than the filter
    assert not ekf.update_fiducial(make_obs(1.0, 0, 0.05, 0.0, cov))  # 5 cm away: degenerate
    assert ekf.rejected_count == 3 and ekf.accepted_count == 0
    with pytest.raises(ValueError, match="positive"):
        ekf.update_fiducial(make_obs(1.0, 0, 6.0, -1.5, ((0.0, 0.0), (0.0, 0.0))))


def test_contract_violations_raise() -> None:
    with pytest.raises(ValueError, match="twice"):
        PoseEkf(Pose2D(0.0, 0.0, 0.0), np.eye(3), (LANDMARKS[0], LANDMARKS[0]), PARAMS)
    with pytest.raises(ValueError, match="symmetric"):
        PoseEkf(Pose2D(0.0, 0.0, 0.0), np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), (), PARAMS)
    with pytest.raises(ValueError, match="semi-definite"):
        PoseEkf(Pose2D(0.0, 0.0, 0.0), np.diag([1.0, -1.0, 1.0]), (), PARAMS)
    with pytest.raises(ValueError, match="3x3"):
        PoseEkf(Pose2D(0.0, 0.0, 0.0), np.eye(2), (), PARAMS)
    with pytest.raises(ValueError):
        EkfParams(gate_chi2=0.0)
    ekf = PoseEkf(Pose2D(0.0, 0.0, 0.0), ((1e-4, 0.0, 0.0), (0.0, 1e-4, 0.0), (0.0, 0.0, 1e-4)), (), PARAMS)
    ekf.predict(2.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="backwards"):
        ekf.predict(1.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="non-finite"):
        ekf.predict(3.0, math.nan, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-0.05, 0.2),  # distance
            st.floats(-0.1, 0.1),  # yaw increment
            st.integers(0, 4),  # landmark seen
            st.floats(-0.5, 0.5),  # observation error (m)
        ),
        min_size=1,
        max_size=60,
    )
)
def test_covariance_stays_symmetric_psd(ops: list[tuple[float, float, int, float]]) -> None:
    ekf = PoseEkf(Pose2D(0.5, -0.3, 0.2), np.diag([0.1, 0.1, 0.05]), LANDMARKS, PARAMS)
    for k, (d, dth, lm_index, noise) in enumerate(ops):
        ekf.predict(0.1 * (k + 1), d, dth)
        lm = LANDMARKS[lm_index]
        h, _ = ekf.expected_observation(lm)
        if np.hypot(*h) < 0.3:
            continue
        cov = obs_covariance(*h)
        ekf.update_fiducial(
            make_obs(
                0.1 * (k + 1),
                lm.tag_id,
                float(h[0] + noise),
                float(h[1] - noise),
                ((cov[0, 0], cov[0, 1]), (cov[1, 0], cov[1, 1])),
            )
        )
        p = ekf.covariance
        assert np.array_equal(p, p.T)
        assert np.linalg.eigvalsh(p).min() > 0.0
        assert -math.pi <= ekf.mean[2] < math.pi


# -------------------------------------------------------------------------------------------------
# WheelImuOdometry
# -------------------------------------------------------------------------------------------------

R_WHEEL, TRACK = 0.15, 0.6


def wheels(t: float, left: float, right: float, valid: bool = True) -> WheelEncoderReading:
    return WheelEncoderReading(t, left, right, left, right, valid)


def imu(t: float, wz: float) -> ImuReading:
    return ImuReading(t, (0.0, 0.0, wz), (0.0, 0.0, 1.62))


def test_odometry_first_reading_then_straight() -> None:
    odo = WheelImuOdometry(R_WHEEL, TRACK)
    assert odo.update(wheels(0.0, 0.0, 0.0), imu(0.0, 0.0)) is None
    assert odo.update(None, None) is None
    total_d, total_yaw = 0.0, 0.0
    for k in range(1, 21):
        out = odo.update(wheels(0.05 * k, 0.1 * k, 0.1 * k), imu(0.05 * k, 0.0))
        assert out is not None
        total_d += out[0]
        total_yaw += out[1]
    assert total_d == pytest.approx(20 * 0.1 * R_WHEEL)
    assert total_yaw == pytest.approx(0.0)


def test_odometry_turning_gyro_and_wheel_fallback() -> None:
    # arc: v = 0.2 m/s, w = 0.5 rad/s, 40 ticks of 0.05 s
    v, w, dt = 0.2, 0.5, 0.05
    dl = (v - w * TRACK / 2) / R_WHEEL * dt
    dr = (v + w * TRACK / 2) / R_WHEEL * dt
    gyro = WheelImuOdometry(R_WHEEL, TRACK)
    wheel_only = WheelImuOdometry(R_WHEEL, TRACK)
    gyro.update(wheels(0.0, 0.0, 0.0), imu(0.0, w))
    wheel_only.update(wheels(0.0, 0.0, 0.0), None)
    sums = np.zeros((2, 2))
    for k in range(1, 41):
        t = dt * k
        a = gyro.update(wheels(t, dl * k, dr * k), imu(t, w))
        b = wheel_only.update(wheels(t, dl * k, dr * k), None)
        assert a is not None and b is not None
        sums[0] += a
        sums[1] += b
    np.testing.assert_allclose(sums[0], [v * 2.0, w * 2.0], rtol=1e-9)
    np.testing.assert_allclose(sums[1], [v * 2.0, w * 2.0], rtol=1e-9)
    # the gyro wins over the wheels when they disagree (skid: wheels over-read the turn by 30 %)
    odo = WheelImuOdometry(R_WHEEL, TRACK)
    odo.update(wheels(0.0, 0.0, 0.0), imu(0.0, w))
    out = odo.update(wheels(dt, dl * 1.3, dr * 1.3), imu(dt, w))
    assert out is not None and out[1] == pytest.approx(w * dt)


def test_odometry_imu_dropout_counts_each_interval_once() -> None:
    w, dt = 0.4, 0.05
    dl, dr = -w * TRACK / 2 / R_WHEEL * dt, w * TRACK / 2 / R_WHEEL * dt  # turn in place
    odo = WheelImuOdometry(R_WHEEL, TRACK)
    odo.update(wheels(0.0, 0.0, 0.0), imu(0.0, w))
    total = 0.0
    for k in range(1, 31):
        t = dt * k
        reading = None if k in (5, 6, 17) else imu(t, w)  # three missing IMU readings
        out = odo.update(wheels(t, dl * k, dr * k), reading)
        assert out is not None
        total += out[1]
    assert total == pytest.approx(w * dt * 30, rel=1e-9)


def test_odometry_invalid_readings_are_skipped_without_losing_distance() -> None:
    odo = WheelImuOdometry(R_WHEEL, TRACK)
    odo.update(wheels(0.0, 0.0, 0.0), imu(0.0, 0.0))
    a = odo.update(wheels(0.05, 1.0, 1.0), imu(0.05, 0.0))
    b = odo.update(wheels(0.10, 999.0, -999.0, valid=False), imu(0.10, 0.0))
    c = odo.update(wheels(0.15, 3.0, 3.0), imu(0.15, 0.0))
    assert a is not None and b is not None and c is not None
    assert a[0] == pytest.approx(R_WHEEL) and b == (0.0, 0.0) and c[0] == pytest.approx(2.0 * R_WHEEL)
    assert odo.invalid_wheel_readings == 1


def test_odometry_time_going_backwards_raises() -> None:
    odo = WheelImuOdometry(R_WHEEL, TRACK)
    odo.update(wheels(1.0, 0.0, 0.0), imu(1.0, 0.0))
    with pytest.raises(ValueError, match="wheel encoder time went backwards"):
        odo.update(wheels(0.9, 0.0, 0.0), None)
    with pytest.raises(ValueError, match="IMU time went backwards"):
        odo.update(None, imu(0.9, 0.0))
    with pytest.raises(ValueError):
        WheelImuOdometry(0.0, TRACK)


def test_odometry_feeds_the_ekf_exactly_on_a_noise_free_arc() -> None:
    """Wheel + gyro increments of an exact arc, through the EKF's mid-point model, land on the arc's end
    (to 0.1 mm)."""
    v, w, dt = 0.25, -0.3, 0.05
    dl = (v - w * TRACK / 2) / R_WHEEL * dt
    dr = (v + w * TRACK / 2) / R_WHEEL * dt
    odo = WheelImuOdometry(R_WHEEL, TRACK)
    ekf = PoseEkf(Pose2D(0.0, 0.0, 0.0), np.zeros((3, 3)), (), PARAMS)
    odo.update(wheels(0.0, 0.0, 0.0), imu(0.0, w))
    for k in range(1, 201):
        out = odo.update(wheels(dt * k, dl * k, dr * k), imu(dt * k, w))
        assert out is not None
        ekf.predict(dt * k, *out)
    radius, angle = v / w, w * 10.0
    expected = [radius * math.sin(angle), radius * (1.0 - math.cos(angle)), wrap_angle_rad(angle)]
    np.testing.assert_allclose(ekf.mean, expected, atol=1e-4)  # mid-point chord vs arc: ~1e-5 m
