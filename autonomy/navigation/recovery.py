"""Stuck detection and recovery: a small state machine, time passed in.

Stuck (ArduPilot Rover's crash check): the rover is commanded to move (|v_cmd| >= min_command_mps) while its
measured speed stays below ``stuck_speed_mps`` (0.08 m/s) for ``stuck_time_s`` (2 s) in a row. Commanded
rotation in place never counts (a skid-steer turning on the spot has no forward speed). No progress (Nav2's
progress checker): in NOMINAL, told to move (any command but a standstill) and neither ``progress_radius_m``
moved nor ``progress_yaw_rad`` turned for ``progress_timeout_s``, starts the same recovery.

States and transitions (t = stamp_s)::

    NOMINAL --stuck or no progress--> BACK_OFF --moved back_off_m or back_off_timeout_s--> ROTATE
    ROTATE --turned rotate_rad or rotate_timeout_s--> REPLAN (one tick: the caller plans again) --> NOMINAL
    NOMINAL --cross-track > rejoin_distance_m--> REPLAN (reason "off_path": plan again from the pose)
    any recovery beyond max_attempts within attempt_window_s --> FAILED (the caller aborts the task)

In BACK_OFF the command is v = -sign(v_cmd at the stuck moment) back_off_speed_mps, w = 0; in ROTATE it is
v = 0, w = rotate_speed_radps (alternating direction per attempt). While NOMINAL the caller's command passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from autonomy.msgs import DriveCommand, Pose2D, wrap_angle_rad


class RecoveryState(StrEnum):
    NOMINAL = "nominal"
    BACK_OFF = "back_off"
    ROTATE = "rotate"
    REPLAN = "replan"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RecoveryParams:
    stuck_speed_mps: float = 0.08
    stuck_time_s: float = 2.0
    min_command_mps: float = 0.05
    back_off_m: float = 0.3
    back_off_speed_mps: float = 0.1
    back_off_timeout_s: float = 5.0
    rotate_rad: float = math.radians(45.0)
    rotate_speed_radps: float = 0.4
    rotate_timeout_s: float = 5.0
    rejoin_distance_m: float = 0.75
    max_attempts: int = 3
    attempt_window_s: float = 60.0
    # progress check (Nav2's progress checker): in NOMINAL, a rover told to move (however slowly) that has neither
    # moved progress_radius_m nor turned progress_yaw_rad for progress_timeout_s starts a recovery. The
    # stuck check above needs a command of min_command_mps; a follower and a collision monitor that both slow the
    # rover to a standstill beside an obstacle never give one (UCF crossing seed 4: 200 s at one spot)
    progress_timeout_s: float = 20.0
    progress_radius_m: float = 0.10
    progress_yaw_rad: float = math.radians(20.0)

    def __post_init__(self) -> None:
        for name in (
            "stuck_speed_mps",
            "stuck_time_s",
            "min_command_mps",
            "back_off_m",
            "back_off_speed_mps",
            "back_off_timeout_s",
            "rotate_rad",
            "rotate_speed_radps",
            "rotate_timeout_s",
            "rejoin_distance_m",
            "attempt_window_s",
            "progress_timeout_s",
            "progress_radius_m",
            "progress_yaw_rad",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"RecoveryParams.{name}: must be finite and > 0, got {v}")
        if self.max_attempts < 1:
            raise ValueError(f"RecoveryParams.max_attempts: must be >= 1, got {self.max_attempts}")


@dataclass(frozen=True, slots=True)
class RecoveryOutput:
    state: RecoveryState
    command: DriveCommand  # what to send (the caller's own command while NOMINAL)
    reason: str = ""  # why a recovery or a replan was asked for

    @property
    def replan(self) -> bool:
        return self.state == RecoveryState.REPLAN


class Recovery:
    """The stuck detector and recovery sequence (see the module docstring)."""

    def __init__(self, params: RecoveryParams | None = None) -> None:
        self.params = params or RecoveryParams()
        self.state = RecoveryState.NOMINAL
        self._slow_since: float | None = None
        self._phase_start_s = 0.0
        self._phase_pose: Pose2D | None = None
        self._back_sign = -1.0
        self._attempts: list[float] = []
        self._reason = ""
        self._last_stamp_s: float | None = None
        self._progress: tuple[float, Pose2D] | None = None  # (since, pose) of the last progress

    def reset(self) -> None:
        self.state = RecoveryState.NOMINAL
        self._progress = None
        self._slow_since = None
        self._attempts = []
        self._reason = ""

    def update(
        self,
        stamp_s: float,
        command: DriveCommand,
        measured_speed_mps: float,
        pose: Pose2D,
        cross_track_m: float = 0.0,
    ) -> RecoveryOutput:
        """One tick: ``command`` is what the follower wants, ``measured_speed_mps`` the rover's measured
        forward speed (odometry/estimator), ``cross_track_m`` its distance from the path."""
        prm = self.params
        if not (math.isfinite(stamp_s) and math.isfinite(measured_speed_mps)):
            raise ValueError(f"Recovery.update: stamp and speed must be finite, got {stamp_s}, {measured_speed_mps}")
        if self._last_stamp_s is not None and stamp_s < self._last_stamp_s:
            raise ValueError(f"Recovery.update: time went backwards ({self._last_stamp_s} -> {stamp_s})")
        self._last_stamp_s = stamp_s
        st = self.state
        if st == RecoveryState.FAILED:
            return RecoveryOutput(st, DriveCommand.stop(stamp_s), self._reason)
        if st == RecoveryState.REPLAN:
            self.state = RecoveryState.NOMINAL
            st = self.state
        if st == RecoveryState.NOMINAL:
            idle = abs(command.linear_x_mps) < 0.01 and abs(command.angular_z_radps) < 0.05
            if (
                self._progress is None
                or idle  # told to stand (waiting, holding): no progress is expected
                or pose.distance_to_m(self._progress[1].x_m, self._progress[1].y_m) >= prm.progress_radius_m
                or abs(wrap_angle_rad(pose.yaw_rad - self._progress[1].yaw_rad)) >= prm.progress_yaw_rad
            ):
                self._progress = (stamp_s, pose)
            elif stamp_s - self._progress[0] >= prm.progress_timeout_s:
                self._progress = None
                # back away from what held it (forward unless it was reversing)
                ahead = DriveCommand(stamp_s, -1.0 if command.linear_x_mps < 0.0 else 1.0, 0.0)
                return self._start(stamp_s, pose, ahead, "no progress")
            if abs(command.linear_x_mps) >= prm.min_command_mps and abs(measured_speed_mps) < prm.stuck_speed_mps:
                if self._slow_since is None:
                    self._slow_since = stamp_s
                elif stamp_s - self._slow_since >= prm.stuck_time_s:
                    return self._start(stamp_s, pose, command, "stuck")
            else:
                self._slow_since = None
            if math.isfinite(cross_track_m) and cross_track_m > prm.rejoin_distance_m:
                self._reason = f"off_path ({cross_track_m:.2f} m from the path)"
                self.state = RecoveryState.REPLAN
                return RecoveryOutput(RecoveryState.REPLAN, DriveCommand.stop(stamp_s), self._reason)
            return RecoveryOutput(RecoveryState.NOMINAL, command)
        start = self._phase_pose if self._phase_pose is not None else pose
        elapsed = stamp_s - self._phase_start_s
        if st == RecoveryState.BACK_OFF:
            moved = pose.distance_to_m(start.x_m, start.y_m)
            if moved >= prm.back_off_m or elapsed >= prm.back_off_timeout_s:
                self._enter(RecoveryState.ROTATE, stamp_s, pose)
            else:
                return RecoveryOutput(
                    st, DriveCommand(stamp_s, self._back_sign * prm.back_off_speed_mps, 0.0), self._reason
                )
        if self.state == RecoveryState.ROTATE:
            start = self._phase_pose if self._phase_pose is not None else pose
            turned = abs(wrap_angle_rad(pose.yaw_rad - start.yaw_rad))
            if turned >= prm.rotate_rad or stamp_s - self._phase_start_s >= prm.rotate_timeout_s:
                self.state = RecoveryState.REPLAN
                self._slow_since = None
                return RecoveryOutput(RecoveryState.REPLAN, DriveCommand.stop(stamp_s), self._reason)
            direction = 1.0 if len(self._attempts) % 2 == 1 else -1.0
            return RecoveryOutput(
                self.state, DriveCommand(stamp_s, 0.0, direction * prm.rotate_speed_radps), self._reason
            )
        return RecoveryOutput(self.state, DriveCommand.stop(stamp_s), self._reason)

    # -- internals -------------------------------------------------------------------------------------

    def _enter(self, state: RecoveryState, stamp_s: float, pose: Pose2D) -> None:
        self.state = state
        self._phase_start_s = stamp_s
        self._phase_pose = pose

    def _start(self, stamp_s: float, pose: Pose2D, command: DriveCommand, why: str) -> RecoveryOutput:
        prm = self.params
        self._attempts = [t for t in self._attempts if stamp_s - t <= prm.attempt_window_s] + [stamp_s]
        self._slow_since = None
        if len(self._attempts) > prm.max_attempts:
            self.state = RecoveryState.FAILED
            self._reason = f"{why}: {len(self._attempts)} recoveries within {prm.attempt_window_s:g} s"
            return RecoveryOutput(self.state, DriveCommand.stop(stamp_s), self._reason)
        self._reason = f"{why} (attempt {len(self._attempts)})"
        self._back_sign = -1.0 if command.linear_x_mps > 0.0 else 1.0
        self._enter(RecoveryState.BACK_OFF, stamp_s, pose)
        return RecoveryOutput(
            self.state, DriveCommand(stamp_s, self._back_sign * prm.back_off_speed_mps, 0.0), self._reason
        )
