"""Roll and pitch of ``base_link`` from the IMU: a complementary filter (gyro short-term, gravity long-term).

Why a filter of its own: the accelerometer alone reads the gravity reaction plus the rover's own
accelerations. Under lunar gravity (1.62 m/s^2) a 0.3 m/s^2 start tilts the measured gravity by 10 deg, so
an accelerometer low-pass must be slow (seconds) to be right, and is then late by seconds when the rover
noses into a pit. The gyro integrates the attitude with no such error but drifts with its bias. The
complementary filter (Mahony et al. 2008, here in its small-angle-gain Euler form) takes each one where it
is good:

    predict (gyro w = (wx, wy, wz), Euler kinematics, ZYX convention of ``Pose3D``):
        roll'  = roll  + dt (wx + sin(roll) tan(pitch) wy + cos(roll) tan(pitch) wz)
        pitch' = pitch + dt (cos(roll) wy - sin(roll) wz)
    correct (specific force a = (ax, ay, az) less the rover's own acceleration m = (mx, my) in base_link,
    from the wheels: mx = dv/dt forward, my = v wz centripetal; what is left is the gravity reaction):
        roll_a  = atan2(ay - my, az),   pitch_a = atan2(-(ax - mx), hypot(ay - my, az))
        roll  += k (roll_a - roll),   pitch += k (pitch_a - pitch),   k = dt / time_constant_s

The motion term matters under lunar gravity: on UCF build seed 7 (tenth session), against the sim's true
attitude, the pitch error without it was 0.3 deg (median) with the rover's |dv/dt| under 0.02 m/s^2 and
1.3-1.7 deg above 0.1 m/s^2 (p95 2.8 deg, max 6.3 over the run); with it, p95 0.9 deg and max 3.3. The
wheels' acceleration is not the body's when they slip (a dig, a stuck rover): the low-pass bounds that error.
So the accelerometer's remaining errors are low-passed with ``time_constant_s`` while the gyro's bias can only lean
the estimate by about bias x time_constant_s. Positive pitch is nose down (REP-103: a positive rotation
about +y, which points left).

Turn gate (``TiltParams.turn_gate_radps``, off by default): a skid-steer turning in place shakes its body sideways
and its pivot is not the IMU's place, so the accelerometer's lateral reading in such a turn is not gravity, and no
wheel term models it. On UCF build seed 7 (twelfth session), against the sim's true attitude, the filter rolled
2-4 deg in turns while the rover stood level; fused into the map at 3-4 m those frames helped the map's datum walk
(``ElevationMap`` registration) until false 25 cm steps closed the dump stand for 470 s. With the gate (the gyro
alone while |yaw rate| > 0.1 rad/s and 0.5 s after) the fused frames' tilt error over that run's first 300 s fell
from 2.39 to 1.35 deg (p95), and seed 7 built 88,158 cm3 instead of 19,825. But gated on every turn, arcs included,
it made the open site's beacon route take 404 s instead of 147, and the UCF builds' largest localization errors
grew (0.12-0.43 m against 0.10-0.21 on the same seeds); so it is off. The in-place form (``speed_mps`` under
``turn_gate_max_speed_mps``) built 79,645 cm3 on seed 7 but made the open site's route longer still (565 s); why
a gate slows the open site is not known yet.

Pure: time comes in with each reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from autonomy.msgs import FiducialObservation, ImuReading, Pose3D, wrap_angle_rad
from autonomy.perception.fiducials import pose3d_from_matrix


@dataclass(frozen=True, slots=True)
class TiltParams:
    time_constant_s: float = 2.0  # the accelerometer's weight: its errors are low-passed this slowly
    max_gap_s: float = 0.5  # a longer gap between readings restarts from the accelerometer
    # turn gate (module docstring): while |yaw rate| exceeds turn_gate_radps with the rover's speed (``update``'s
    # speed_mps, when given) under turn_gate_max_speed_mps (a turn in place), and for turn_hold_s after, the gyro
    # alone carries roll and pitch. Off by default (None): it cost the open site's route (module docstring)
    turn_gate_radps: float | None = None
    turn_hold_s: float = 0.5
    turn_gate_max_speed_mps: float = 0.05

    def __post_init__(self) -> None:
        gate = self.turn_gate_radps
        if gate is not None and not (math.isfinite(gate) and gate > 0.0):
            raise ValueError(f"TiltParams.turn_gate_radps: must be finite and > 0 or None, got {gate!r}")
        if not (math.isfinite(self.turn_gate_max_speed_mps) and self.turn_gate_max_speed_mps > 0.0):
            raise ValueError(
                f"TiltParams.turn_gate_max_speed_mps: must be finite and > 0, got {self.turn_gate_max_speed_mps!r}"
            )
        if not (math.isfinite(self.turn_hold_s) and self.turn_hold_s >= 0.0):
            raise ValueError(f"TiltParams.turn_hold_s: must be finite and >= 0, got {self.turn_hold_s!r}")
        for name in ("time_constant_s", "max_gap_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"TiltParams.{name}: must be finite and > 0, got {v!r}")


class TiltFilter:
    """Roll and pitch (rad) of ``base_link`` from a stream of ``ImuReading`` (module docstring)."""

    def __init__(self, params: TiltParams | None = None) -> None:
        self.params = params if params is not None else TiltParams()
        self.roll_rad = 0.0
        self.pitch_rad = 0.0
        self._last_s: float | None = None
        self._turning_until_s = -math.inf  # the turn gate holds the accelerometer out until then
        self.gated_readings = 0  # readings whose accelerometer the turn gate left out

    @property
    def initialised(self) -> bool:
        return self._last_s is not None

    def update(
        self, imu: ImuReading, motion_accel_mps2: tuple[float, float] = (0.0, 0.0), speed_mps: float | None = None
    ) -> None:
        """Fold in one reading; ``motion_accel_mps2``: the rover's own (forward, left) acceleration in
        base_link (m/s^2, from the wheel odometry), taken out of the specific force. A reading whose specific
        force does not point up (free fall, a bad sample) only propagates the gyro. ``speed_mps``: the rover's
        measured forward speed, for the turn gate (None: every turn counts as in place)."""
        if speed_mps is not None and not math.isfinite(speed_mps):
            raise ValueError(f"TiltFilter.update: speed_mps must be finite, got {speed_mps}")
        mx, my = motion_accel_mps2
        if not (math.isfinite(mx) and math.isfinite(my)):
            raise ValueError(f"TiltFilter.update: motion_accel_mps2 must be finite, got {motion_accel_mps2}")
        ax, ay, az = imu.linear_acceleration_mps2
        ax, ay = ax - mx, ay - my
        wx, wy, wz = imu.angular_velocity_radps
        level = az > 0.0
        roll_a = math.atan2(ay, az) if level else self.roll_rad
        pitch_a = math.atan2(-ax, math.hypot(ay, az)) if level else self.pitch_rad
        last = self._last_s
        if last is None or not (0.0 <= imu.stamp_s - last <= self.params.max_gap_s):
            if last is not None and imu.stamp_s < last:
                raise ValueError(f"TiltFilter.update: time went backwards ({last} -> {imu.stamp_s})")
            self.roll_rad, self.pitch_rad = roll_a, pitch_a
            self._last_s = imu.stamp_s
            return
        dt = imu.stamp_s - last
        self._last_s = imu.stamp_s
        r, p = self.roll_rad, self.pitch_rad
        sr, cr = math.sin(r), math.cos(r)
        tp = math.tan(max(-1.4, min(1.4, p)))  # clear of the +-90 deg singularity of the Euler form
        r += dt * (wx + sr * tp * wy + cr * tp * wz)
        p += dt * (cr * wy - sr * wz)
        gate = self.params.turn_gate_radps
        in_place = speed_mps is None or abs(speed_mps) < self.params.turn_gate_max_speed_mps
        if gate is not None and abs(wz) > gate and in_place:
            self._turning_until_s = imu.stamp_s + self.params.turn_hold_s
        if imu.stamp_s <= self._turning_until_s:
            self.gated_readings += 1
            self.roll_rad, self.pitch_rad = wrap_angle_rad(r), p
            return
        k = min(1.0, dt / self.params.time_constant_s)
        self.roll_rad = wrap_angle_rad(r + k * wrap_angle_rad(roll_a - r))
        self.pitch_rad = p + k * (pitch_a - p)


def level_rotation(roll_rad: float, pitch_rad: float) -> npt.NDArray[np.float64]:
    """Ry(pitch) Rx(roll): base_link -> the gravity-levelled base frame (same origin and heading)."""
    return Pose3D(0.0, 0.0, 0.0, roll_rad, pitch_rad, 0.0).rotation()


def check_tilt(tilt_rad: tuple[float, float], where: str) -> tuple[float, float]:
    """``tilt_rad`` as (roll, pitch) if both are finite and within 90 deg, else a ValueError naming ``where``
    (the depth consumers' check: the map's fusion and the wall fit)."""
    if not (len(tilt_rad) == 2 and all(math.isfinite(a) and abs(a) < math.pi / 2 for a in tilt_rad)):
        raise ValueError(f"{where}: tilt_rad must be (roll, pitch), finite, within 90 deg: {tilt_rad}")
    return float(tilt_rad[0]), float(tilt_rad[1])


def level_observation(obs: FiducialObservation, roll_rad: float, pitch_rad: float) -> FiducialObservation:
    """``obs`` with its tag pose moved from ``base_link`` into the gravity-levelled base frame (same origin and
    heading, roll and pitch taken out): p_level = Ry(pitch) Rx(roll) p_base, R_level = Ry(pitch) Rx(roll) R_base.

    The planar EKF reads a tag's (x, y) in ``base_link`` as if the rover stood level. Pitched nose down by
    theta, a tag d ahead reads d (1 - cos theta) nearer and the camera, h above base_link, sits h sin theta
    further forward: 3-27 cm of error 3-3.7 m from the tags with the rover tilted 5-15 deg in the dug ground
    (build seeds 1 and 4, at a sigma of 8 cm), against 0-7 cm level from 5 m. The (x, y) covariance is kept:
    a tilt of a few degrees turns it by as little."""
    tilt = level_rotation(roll_rad, pitch_rad)
    base = obs.tag_in_base
    p = tilt @ base.translation()
    return replace(obs, tag_in_base=pose3d_from_matrix(tilt @ base.rotation(), p))
