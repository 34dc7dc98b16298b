"""Typed ports between the rover's autonomy and its hardware (F Prime style: one interface, a stub and a
real driver behind it). The fake backend (``hw.fakes``), the PyBullet backend (``sim.backend``) and the
real drivers all implement these Protocols, and ``tests/test_contract_ports.py`` runs one contract suite
over every backend.

Rules every implementation keeps:
- ``read()`` never blocks for long and returns the latest reading, or None when there is no new data
  (a camera slower than the control loop, a dropout). A device that is missing or broken raises
  ``DeviceError`` with a message naming the device; it never falls back to a fake silently.
- Readings carry the stamp of the port's clock (``Clock.now_s``), in seconds.
- Commands are applied at once; ``DriveBase`` stops the motors if no command arrives within its
  ``command_timeout_s`` (the MCU firmware enforces the same rule again).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from autonomy.msgs import (
    BatteryState,
    CameraFrame,
    CameraInfo,
    DepthFrame,
    DriveCommand,
    EstopState,
    ImuReading,
    Pose3D,
    ToolCommand,
    ToolState,
    WheelEncoderReading,
)


class DeviceError(RuntimeError):
    """A device is missing, disconnected or returned garbage. The message names the device and why."""


@runtime_checkable
class Clock(Protocol):
    """The rover's time source. On a board: the monotonic wall clock. In simulation: simulated time, and
    ``sleep_until`` advances the physics (lockstep)."""

    def now_s(self) -> float: ...

    def sleep_until(self, t_s: float) -> None: ...


@runtime_checkable
class Camera(Protocol):
    camera_id: str
    info: CameraInfo
    mount: Pose3D

    def read(self) -> CameraFrame | None: ...


@runtime_checkable
class DepthSensor(Protocol):
    camera_id: str
    info: CameraInfo
    mount: Pose3D

    def read(self) -> DepthFrame | None: ...


@runtime_checkable
class Imu(Protocol):
    def read(self) -> ImuReading | None: ...


@runtime_checkable
class WheelEncoders(Protocol):
    def read(self) -> WheelEncoderReading | None: ...


@runtime_checkable
class DriveBase(Protocol):
    command_timeout_s: float
    wheel_radius_m: float
    track_width_m: float

    def command(self, cmd: DriveCommand) -> None: ...


@runtime_checkable
class Tool(Protocol):
    def command(self, cmd: ToolCommand) -> None: ...

    def read(self) -> ToolState | None: ...


@runtime_checkable
class Battery(Protocol):
    def read(self) -> BatteryState | None: ...


@runtime_checkable
class Estop(Protocol):
    def read(self) -> EstopState: ...
