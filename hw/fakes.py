"""Fake backend: a scripted kinematic rover behind the same ports as the real drivers and the simulator.

Use it where a test needs the hardware boundary but not physics: the rover integrates its commanded
twist exactly (unicycle model), encoders and the gyro report that motion (optionally with seeded noise),
and the camera replays frames given to it. Time is a ``FakeClock`` that moves only when told to, so
tests are deterministic and instant.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

import numpy as np

from autonomy.msgs import (
    BatteryState,
    CameraFrame,
    CameraInfo,
    DepthFrame,
    DriveCommand,
    EstopState,
    ImuReading,
    Pose2D,
    Pose3D,
    ToolCommand,
    ToolState,
    WheelEncoderReading,
)
from hw.rover_io import RoverIO

LUNAR_GRAVITY_MPS2 = 1.62


class FakeClock:
    """Simulated time that advances only through ``sleep_until``; listeners integrate the motion."""

    def __init__(self, start_s: float = 0.0) -> None:
        self._t = start_s
        self._listeners: list[FakeRover] = []

    def now_s(self) -> float:
        return self._t

    def sleep_until(self, t_s: float) -> None:
        if t_s > self._t:
            for rover in self._listeners:
                rover.advance(t_s - self._t)
            self._t = t_s


class FakeRover:
    """A kinematic skid-steer rover: the state the fake ports read from and write to."""

    def __init__(
        self,
        rover_id: str,
        clock: FakeClock,
        start: Pose2D,
        wheel_radius_m: float = 0.15,
        track_width_m: float = 0.6,
        gyro_noise_radps: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.rover_id = rover_id
        self.clock = clock
        self.pose = start
        self.wheel_radius_m = wheel_radius_m
        self.track_width_m = track_width_m
        self.wheel_angles_rad = [0.0, 0.0, 0.0, 0.0]  # fl, fr, rl, rr
        self.command = DriveCommand.stop(clock.now_s())
        self.command_timeout_s = 0.5
        self.yaw_rate_radps = 0.0
        self.tool_position_rad = 0.0
        self.estop_engaged = False
        self.energy_used_wh = 0.0
        self._gyro_noise = gyro_noise_radps
        self._rng = np.random.default_rng(seed)
        clock._listeners.append(self)

    def advance(self, dt_s: float) -> None:
        cmd = self.command
        live = self.clock.now_s() - cmd.stamp_s <= self.command_timeout_s and not self.estop_engaged
        v = cmd.linear_x_mps if live else 0.0
        w = cmd.angular_z_radps if live else 0.0
        p = self.pose
        yaw_mid = p.yaw_rad + 0.5 * w * dt_s
        self.pose = Pose2D(
            p.x_m + v * math.cos(yaw_mid) * dt_s, p.y_m + v * math.sin(yaw_mid) * dt_s, p.yaw_rad + w * dt_s
        )
        self.yaw_rate_radps = w
        left = (v - w * self.track_width_m / 2.0) / self.wheel_radius_m * dt_s
        right = (v + w * self.track_width_m / 2.0) / self.wheel_radius_m * dt_s
        self.wheel_angles_rad = [a + d for a, d in zip(self.wheel_angles_rad, (left, right, left, right), strict=True)]
        self.energy_used_wh += (20.0 + 40.0 * abs(v) + 10.0 * abs(w)) * dt_s / 3600.0


class FakeWheelEncoders:
    def __init__(self, rover: FakeRover) -> None:
        self._r = rover

    def read(self) -> WheelEncoderReading:
        fl, fr, rl, rr = self._r.wheel_angles_rad
        return WheelEncoderReading(self._r.clock.now_s(), fl, fr, rl, rr)


class FakeImu:
    def __init__(self, rover: FakeRover) -> None:
        self._r = rover

    def read(self) -> ImuReading:
        noise = float(self._r._rng.normal(0.0, self._r._gyro_noise)) if self._r._gyro_noise > 0 else 0.0
        return ImuReading(
            self._r.clock.now_s(), (0.0, 0.0, self._r.yaw_rate_radps + noise), (0.0, 0.0, LUNAR_GRAVITY_MPS2)
        )


class FakeDriveBase:
    def __init__(self, rover: FakeRover) -> None:
        self._r = rover
        self.command_timeout_s = rover.command_timeout_s
        self.wheel_radius_m = rover.wheel_radius_m
        self.track_width_m = rover.track_width_m
        self.history: list[DriveCommand] = []

    def command(self, cmd: DriveCommand) -> None:
        if not (math.isfinite(cmd.linear_x_mps) and math.isfinite(cmd.angular_z_radps)):
            raise ValueError(f"non-finite drive command {cmd}")
        self._r.command = cmd
        self.history.append(cmd)


class ReplayCamera:
    """Replays images (BGR uint8) in order, one per ``read`` when due at ``rate_hz``; None otherwise or
    once the frames run out."""

    def __init__(
        self,
        rover: FakeRover,
        info: CameraInfo,
        mount: Pose3D,
        images: Iterable[np.ndarray],
        rate_hz: float = 5.0,
        camera_id: str = "front",
    ) -> None:
        self._r = rover
        self.info = info
        self.mount = mount
        self.camera_id = camera_id
        self._images: deque[np.ndarray] = deque(images)
        self._period_s = 1.0 / rate_hz
        self._next_s = rover.clock.now_s()

    def read(self) -> CameraFrame | None:
        t = self._r.clock.now_s()
        if t + 1e-9 < self._next_s or not self._images:
            return None
        self._next_s = t + self._period_s
        return CameraFrame(t, self.camera_id, self._images.popleft().copy(), self.info, self.mount)


class FlatGroundDepth:
    """Depth of a flat floor seen by a camera at ``mount`` (rows above the horizon read NaN)."""

    def __init__(self, rover: FakeRover, info: CameraInfo, mount: Pose3D, camera_id: str = "front") -> None:
        self._r = rover
        self.info = info
        self.mount = mount
        self.camera_id = camera_id
        u, v = np.meshgrid(np.arange(info.width_px), np.arange(info.height_px))
        rays = np.stack(
            [(u - info.cx_px) / info.fx_px, (v - info.cy_px) / info.fy_px, np.ones_like(u, dtype=np.float64)], -1
        )
        down = rays @ mount.rotation().T  # rays in base_link
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -mount.z_m / down[..., 2]
        self._depth = np.where(t > 0, t, np.nan).astype(np.float32)

    def read(self) -> DepthFrame:
        return DepthFrame(self._r.clock.now_s(), self.camera_id, self._depth.copy(), self.info, self.mount)


class FakeTool:
    def __init__(self, rover: FakeRover) -> None:
        self._r = rover

    def command(self, cmd: ToolCommand) -> None:
        self._r.tool_position_rad = cmd.position_rad

    def read(self) -> ToolState:
        return ToolState(self._r.clock.now_s(), self._r.tool_position_rad, 0.0)


class FakeBattery:
    def __init__(self, rover: FakeRover, capacity_wh: float = 200.0) -> None:
        self._r = rover
        self._capacity_wh = capacity_wh

    def read(self) -> BatteryState:
        used = self._r.energy_used_wh
        soc = max(0.0, 1.0 - used / self._capacity_wh)
        return BatteryState(self._r.clock.now_s(), 24.0, 1.0, used, soc)


class FakeEstop:
    def __init__(self, rover: FakeRover) -> None:
        self._r = rover

    def read(self) -> EstopState:
        return EstopState(self._r.clock.now_s(), self._r.estop_engaged)


def fake_rover_io(rover: FakeRover, camera: ReplayCamera | None = None) -> RoverIO:
    """All the fake ports of ``rover`` bundled for the loop."""
    return RoverIO(
        rover_id=rover.rover_id,
        clock=rover.clock,
        wheels=FakeWheelEncoders(rover),
        imu=FakeImu(rover),
        drive=FakeDriveBase(rover),
        camera=camera,
        tool=FakeTool(rover),
        battery=FakeBattery(rover),
        estop=FakeEstop(rover),
    )
