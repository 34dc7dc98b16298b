"""Roll and pitch from the IMU (``autonomy.estimation.tilt``): the complementary filter."""

from __future__ import annotations

import math

import pytest

from autonomy.estimation.tilt import TiltFilter, TiltParams
from autonomy.msgs import ImuReading

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
