"""Wheel + gyro odometry increments for the pose EKF.

Given consecutive ``WheelEncoderReading`` (cumulative wheel angles, rad) and ``ImuReading`` (body rates),
``WheelImuOdometry.update`` returns the motion since the previous call as (delta_distance_m,
delta_yaw_rad)::

    dL = left_rad(k) - left_rad(k-1)          (mean of front and rear left wheels)
    dR = right_rad(k) - right_rad(k-1)
    delta_distance_m = wheel_radius_m * (dL + dR) / 2

    delta_yaw_rad = w_z(k) * (t_imu(k) - t_imu(k-1))                         (gyro, default)
                  = (w_z(k-1) + w_z(k)) / 2 * (t_imu(k) - t_imu(k-1))        (gyro, trapezoid=True)
                  = wheel_radius_m * (dR - dL) / track_width_m               (fallback: no gyro)

By default a gyro reading's z rate is taken as the mean rate over the interval since the previous
reading (what a driver that averages its high-rate samples reports, and what ``hw.fakes`` reports); set
``gyro_trapezoid`` for instantaneous samples of a smooth rate (the PyBullet backend's). Over a run the
two differ only by (w_last - w_first) dt / 2 (the sum telescopes): the choice matters for transients,
not for drift. The wheel differential is the fallback for any interval the gyro does not cover (no IMU
reading, or a gap longer than ``max_imu_gap_s``); on a skid-steer base it over-reads the yaw when the
wheels slip sideways, so ``track_width_m`` should be the effective (calibrated) track. Each stretch of
time is counted once: ``_yaw_until_s`` records up to when yaw has been accounted for, whichever source
covered it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autonomy.msgs import ImuReading, WheelEncoderReading


@dataclass(frozen=True, slots=True)
class TurnPivot:
    """Where a skid-steer turn in place pivots: ``pivot_x_m(load_n)`` metres ahead of base_link on its x axis,
    p = min(``per_load_m_per_n`` load, ``max_m``), load the tool's (bucket's) load in N; 0 below ``min_load_n``
    (the load sensor's floor with the bucket empty).

    Why: the wheels of the more heavily loaded axle grip and the others scrub, so a turn in place rotates
    about a point that moves from the wheel centre towards the load, up to the loaded axle (see
    ``autonomy.estimation.landmark_ekf``, motion model). A payload in a front bucket moves it forward. The
    default (0, 0) is a rover whose turns pivot about base_link. Calibrate a rover by turning it in place
    with known loads and fitting p from base_link's sideways displacement (-p sin dth).
    """

    per_load_m_per_n: float = 0.0
    max_m: float = 0.0
    min_load_n: float = 0.0

    def __post_init__(self) -> None:
        for name in ("per_load_m_per_n", "max_m", "min_load_n"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"TurnPivot.{name}: must be finite and >= 0, got {v}")

    def pivot_x_m(self, load_n: float) -> float:
        """The pivot's x (m, base_link) with ``load_n`` in the bucket (negative or non-finite loads: 0)."""
        if not (math.isfinite(load_n) and load_n > 0.0 and load_n >= self.min_load_n):
            return 0.0
        return min(self.per_load_m_per_n * load_n, self.max_m)


class WheelImuOdometry:
    """Turns consecutive wheel encoder and IMU readings into (delta_distance_m, delta_yaw_rad)."""

    def __init__(
        self,
        wheel_radius_m: float,
        track_width_m: float,
        max_imu_gap_s: float = 0.25,
        gyro_trapezoid: bool = False,
    ) -> None:
        if not (math.isfinite(wheel_radius_m) and wheel_radius_m > 0.0):
            raise ValueError(f"WheelImuOdometry: wheel_radius_m must be > 0, got {wheel_radius_m}")
        if not (math.isfinite(track_width_m) and track_width_m > 0.0):
            raise ValueError(f"WheelImuOdometry: track_width_m must be > 0, got {track_width_m}")
        if not (math.isfinite(max_imu_gap_s) and max_imu_gap_s > 0.0):
            raise ValueError(f"WheelImuOdometry: max_imu_gap_s must be > 0, got {max_imu_gap_s}")
        self.wheel_radius_m = wheel_radius_m
        self.track_width_m = track_width_m
        self.max_imu_gap_s = max_imu_gap_s
        self.gyro_trapezoid = gyro_trapezoid
        self._wheels: WheelEncoderReading | None = None  # last *valid* encoder reading
        self._imu: ImuReading | None = None
        self._yaw_until_s: float | None = None
        self.invalid_wheel_readings = 0

    def reset(self) -> None:
        """Forget the previous readings (the next reading is treated as the first)."""
        self._wheels = None
        self._imu = None
        self._yaw_until_s = None

    def update(self, wheels: WheelEncoderReading | None, imu: ImuReading | None) -> tuple[float, float] | None:
        """The motion since the previous reading, or None when there is nothing to report yet.

        None is returned when both inputs are None or absent/invalid, and for the very first readings
        (they only set the reference). An invalid encoder reading (``valid`` False) is skipped: the next
        valid one is differenced against the last valid one, so no distance is lost. A stamp earlier than
        the previous reading of the same sensor raises ``ValueError``.
        """
        if wheels is not None and self._wheels is not None and wheels.stamp_s < self._wheels.stamp_s:
            raise ValueError(
                f"WheelImuOdometry: wheel encoder time went backwards ({self._wheels.stamp_s} -> {wheels.stamp_s})"
            )
        if imu is not None and self._imu is not None and imu.stamp_s < self._imu.stamp_s:
            raise ValueError(f"WheelImuOdometry: IMU time went backwards ({self._imu.stamp_s} -> {imu.stamp_s})")

        reported = False
        distance = 0.0
        yaw = 0.0

        # Gyro: integrate over the part of (t_prev, t_now] not yet accounted for.
        if imu is not None:
            prev = self._imu
            if prev is not None and imu.stamp_s - prev.stamp_s <= self.max_imu_gap_s:
                start = prev.stamp_s if self._yaw_until_s is None else max(prev.stamp_s, self._yaw_until_s)
                span = imu.stamp_s - start
                if span > 0.0:
                    rate = imu.angular_velocity_radps[2]
                    if self.gyro_trapezoid:
                        rate = 0.5 * (prev.angular_velocity_radps[2] + rate)
                    yaw += rate * span
                    self._yaw_until_s = imu.stamp_s
                reported = True
            elif prev is None and self._yaw_until_s is None:
                self._yaw_until_s = imu.stamp_s
            self._imu = imu

        # Wheels: distance always; yaw only for the part of the interval the gyro did not cover.
        if wheels is not None and wheels.valid:
            prev_w = self._wheels
            if prev_w is not None:
                d_left = wheels.left_rad() - prev_w.left_rad()
                d_right = wheels.right_rad() - prev_w.right_rad()
                distance = self.wheel_radius_m * 0.5 * (d_left + d_right)
                covered_from = prev_w.stamp_s if self._yaw_until_s is None else max(prev_w.stamp_s, self._yaw_until_s)
                interval = wheels.stamp_s - prev_w.stamp_s
                uncovered = wheels.stamp_s - covered_from
                if uncovered > 0.0:
                    wheel_yaw = self.wheel_radius_m * (d_right - d_left) / self.track_width_m
                    share = 1.0 if interval <= 0.0 else min(1.0, uncovered / interval)
                    yaw += share * wheel_yaw
                    self._yaw_until_s = wheels.stamp_s
                reported = True
            self._wheels = wheels
        elif wheels is not None:
            self.invalid_wheel_readings += 1

        if not reported:
            return None
        return distance, yaw
