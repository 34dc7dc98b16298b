"""Roll and pitch from the IMU (``autonomy.estimation.tilt``): the complementary filter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.estimation.tilt import TiltFilter, TiltParams, level_observation
from autonomy.msgs import FiducialObservation, ImuReading, Pose3D

G_MOON = 1.62


def gravity_reaction(roll: float, pitch: float, g: float = G_MOON) -> tuple[float, float, float]:
    """The specific force a resting IMU reads in base_link (ZYX Euler, positive pitch: nose down)."""
    return (-g * math.sin(pitch), g * math.cos(pitch) * math.sin(roll), g * math.cos(pitch) * math.cos(roll))


def test_a_resting_rover_reads_its_tilt_from_gravity() -> None:
    f = TiltFilter()
    for k in range(50):
        f.update(ImuReading(k * 0.05, (0.0, 0.0, 0.0), gravity_reaction(0.1, 0.2)))
    assert f.roll_rad == pytest.approx(0.1, abs=1e-9)
    assert f.pitch_rad == pytest.approx(0.2, abs=1e-9)


def test_the_gyro_carries_a_fast_pitch_the_accelerometer_low_pass_would_lag() -> None:
    """Nosing into a pit: 0.4 rad/s of pitch for 0.5 s. The filter follows within a degree; the gravity
    reading alone, low-passed with the same 2 s, would still be 0.15 rad behind."""
    f = TiltFilter(TiltParams(time_constant_s=2.0))
    t, dt, pitch = 0.0, 0.01, 0.0
    f.update(ImuReading(t, (0.0, 0.0, 0.0), gravity_reaction(0.0, 0.0)))
    lowpass = 0.0
    for _ in range(50):
        t += dt
        pitch += 0.4 * dt
        f.update(ImuReading(t, (0.0, 0.4, 0.0), gravity_reaction(0.0, pitch)))
        lowpass += dt / 2.0 * (pitch - lowpass)
    assert pitch == pytest.approx(0.2)
    assert f.pitch_rad == pytest.approx(pitch, abs=math.radians(1.0))
    assert pitch - lowpass > 0.15


def test_a_gyro_bias_leans_the_estimate_by_at_most_bias_times_the_time_constant() -> None:
    f = TiltFilter(TiltParams(time_constant_s=2.0))
    bias = 0.01  # rad/s
    for k in range(2000):  # 100 s level, at rest
        f.update(ImuReading(k * 0.05, (bias, bias, 0.0), gravity_reaction(0.0, 0.0)))
    assert abs(f.roll_rad) <= bias * 2.0 * 1.1
    assert abs(f.pitch_rad) <= bias * 2.0 * 1.1


def test_a_gap_restarts_from_gravity_and_time_going_back_is_an_error() -> None:
    f = TiltFilter(TiltParams(max_gap_s=0.5))
    f.update(ImuReading(0.0, (0.0, 0.0, 0.0), gravity_reaction(0.0, 0.0)))
    f.update(ImuReading(2.0, (0.0, 0.0, 0.0), gravity_reaction(0.0, 0.3)))  # 2 s gap: no stale gyro sum
    assert f.pitch_rad == pytest.approx(0.3)
    with pytest.raises(ValueError, match="backwards"):
        f.update(ImuReading(1.0, (0.0, 0.0, 0.0), gravity_reaction(0.0, 0.0)))
    with pytest.raises(ValueError, match="time_constant_s"):
        TiltParams(time_constant_s=0.0)


def test_a_tag_seen_from_a_pitched_rover_is_read_as_from_a_level_one() -> None:
    """Nosed 12 deg down, a tag 3.6 m ahead reads 0.2 m nearer in base_link's (x, y) (the camera leans forward,
    the ray dips); levelled with the IMU's tilt it is back where it is."""
    level_tag = np.array([3.6, 0.4, 0.3])  # the tag centre in the level base frame
    roll, pitch = math.radians(-4.0), math.radians(12.0)
    tilt = Pose3D(0.0, 0.0, 0.0, roll, pitch, 0.0).rotation()
    in_base = tilt.T @ level_tag  # what base_link sees
    obs = FiducialObservation(
        stamp_s=1.0,
        tag_id=3,
        tag_size_m=0.2,
        corners_px=((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)),
        tag_in_base=Pose3D(*in_base, 0.0, 0.0, math.pi),
        position_covariance_m2=((1e-4, 0.0), (0.0, 1e-4)),
        pixel_size_px=40.0,
        reprojection_error_px=0.3,
    )
    assert math.hypot(in_base[0] - level_tag[0], in_base[1] - level_tag[1]) > 0.05
    out = level_observation(obs, roll, pitch)
    assert (out.tag_in_base.x_m, out.tag_in_base.y_m, out.tag_in_base.z_m) == pytest.approx(tuple(level_tag), abs=1e-9)
    # the tag's orientation turns with it, and the rest of the observation is untouched
    assert np.allclose(out.tag_in_base.rotation(), tilt @ obs.tag_in_base.rotation())
    assert out.position_covariance_m2 == obs.position_covariance_m2 and out.tag_id == 3
    assert level_observation(obs, 0.0, 0.0).tag_in_base == pytest.approx(obs.tag_in_base)


def test_the_rovers_own_acceleration_is_taken_out_of_the_gravity_reading() -> None:
    """Level, speeding up at 0.3 m/s^2 for 3 s and turning at 0.5 rad/s at 0.2 m/s: under lunar gravity the
    accelerometer alone leans the filter by degrees (the start reads as nose up, the turn as a roll); with the
    wheels' acceleration given, it stays level. A non-finite motion term is refused."""
    dt = 0.05
    leaned, level = TiltFilter(), TiltFilter()
    for k in range(60):
        t = k * dt
        ax, ay, az = gravity_reaction(0.0, 0.0)
        imu = ImuReading(t, (0.0, 0.0, 0.5), (ax + 0.3, ay + 0.2 * 0.5, az))
        leaned.update(imu)
        level.update(imu, (0.3, 0.2 * 0.5))
    assert math.degrees(abs(leaned.pitch_rad)) > 5.0 and math.degrees(abs(leaned.roll_rad)) > 1.5
    assert abs(level.pitch_rad) < 1e-9 and abs(level.roll_rad) < 1e-9
    with pytest.raises(ValueError, match="motion_accel_mps2"):
        level.update(ImuReading(3.0, (0.0, 0.0, 0.0), gravity_reaction(0.0, 0.0)), (math.nan, 0.0))


def test_turning_in_place_the_gyro_alone_carries_the_tilt_and_gravity_takes_over_after() -> None:
    """A skid-steer turn in place shakes the body sideways (measured on UCF build seed 7: the filter rolled
    2-4 deg in turns against the sim's true 0). Level rover, turning at 0.6 rad/s for 3 s while the accelerometer
    reads 0.1 m/s^2 sideways: with the gate the tilt stays level (the gyro reads no roll); without it the filter
    rolls by degrees. After the turn and ``turn_hold_s`` the accelerometer corrects again: a real 5 deg roll is
    found within a few time constants."""
    dt = 0.02
    gated, ungated = TiltFilter(TiltParams(turn_gate_radps=0.1)), TiltFilter()
    driving = TiltFilter(TiltParams(turn_gate_radps=0.1))  # the same readings on an arc at 0.2 m/s: not gated
    for f in (gated, ungated, driving):  # at rest, level, before the turn
        f.update(ImuReading(0.0, (0.0, 0.0, 0.0), gravity_reaction(0.0, 0.0)))
    t = dt
    for _ in range(150):
        ax, ay, az = gravity_reaction(0.0, 0.0)
        imu = ImuReading(t, (0.0, 0.0, 0.6), (ax, ay + 0.1, az))
        gated.update(imu, speed_mps=0.0)
        ungated.update(imu)
        driving.update(imu, speed_mps=0.2)
        t += dt
    assert abs(math.degrees(gated.roll_rad)) < 1e-6 and gated.gated_readings == 150
    assert abs(math.degrees(ungated.roll_rad)) > 1.5
    assert driving.gated_readings == 0 and driving.roll_rad == pytest.approx(ungated.roll_rad)
    # stopped on a 5 deg side slope (entered without the gyro seeing it: the worst case for the gate)
    roll = math.radians(5.0)
    for k in range(int(10.0 / dt)):
        gated.update(ImuReading(t, (0.0, 0.0, 0.0), gravity_reaction(roll, 0.0)))
        t += dt
        if (k + 1) * dt < gated.params.turn_hold_s - 1e-9:
            assert abs(gated.roll_rad) < 1e-6  # still held
    assert gated.roll_rad == pytest.approx(roll, abs=math.radians(0.1))
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="turn_gate_radps"):
            TiltParams(turn_gate_radps=bad)
    with pytest.raises(ValueError, match="turn_hold_s"):
        TiltParams(turn_hold_s=-0.1)
    with pytest.raises(ValueError, match="turn_gate_max_speed_mps"):
        TiltParams(turn_gate_max_speed_mps=0.0)
    with pytest.raises(ValueError, match="speed_mps"):
        gated.update(ImuReading(t, (0.0, 0.0, 0.0), gravity_reaction(roll, 0.0)), speed_mps=math.nan)
