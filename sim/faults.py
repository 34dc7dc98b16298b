"""Fault injection: a schedule of typed faults applied to one ``SimRover`` through its ports.

``FaultInjector(rover, faults)`` wraps the rover's ports (``wheels``, ``imu``, ``camera``, ``depth``, ``tool``,
``battery``, ``drive``) with faulty ones implementing the same ``hw.interfaces`` Protocols, and hooks the
world's physics step for faults that act on the physics (low-friction patches, stalls, delayed commands).
Every fault is active on ``start_s <= t < end_s`` of simulated time (``end_s`` defaults to forever), so a
run's schedule is deterministic. What each fault looks like through the ports:

- ``SensorDropout(sensor)``: ``read()`` returns None.
- ``FrozenFrame(sensor)``: camera/depth ``read()`` repeats the last frame seen before the fault (new stamp).
- ``ImuBiasStep(gyro, accel)``: a constant bias added to every IMU reading.
- ``EncoderLoss``: readings with ``valid=False`` (angles frozen at the last good reading).
- ``LowFrictionPatch(box, friction)``: wheels inside the box get ``friction`` (they slip).
- ``ActuatorStall(actuator)``: ``"tool"`` holds its position and reports ``stalled=True``; ``"drive"`` locks
  the wheels whatever the command.
- ``CommandDelay(delay_s)``: drive and tool commands take effect ``delay_s`` later.
- ``CommandLoss``: drive and tool commands are dropped (the drive's command timeout then stops the rover).

Mission files schedule faults in a ``faults:`` section (``autonomy.mission.mission_file.FaultSpec``);
``faults_from_specs(specs, rover_id)`` turns the ones for a rover into these dataclasses.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from autonomy.mission.mission_file import FaultSpec
from autonomy.msgs import (
    BatteryState,
    CameraFrame,
    CameraInfo,
    DepthFrame,
    DriveCommand,
    ImuReading,
    Pose3D,
    ToolCommand,
    ToolState,
    WheelEncoderReading,
)
from sim.sites import Box

if TYPE_CHECKING:
    from sim.backend import SimRover

SensorName = Literal["camera", "depth", "imu", "wheels", "battery", "tool"]
_SENSORS = ("camera", "depth", "imu", "wheels", "battery", "tool")


@dataclass(frozen=True, slots=True)
class SensorDropout:
    sensor: SensorName
    start_s: float
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class FrozenFrame:
    sensor: Literal["camera", "depth"]
    start_s: float
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class ImuBiasStep:
    start_s: float
    gyro_bias_radps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_bias_mps2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class EncoderLoss:
    start_s: float
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class LowFrictionPatch:
    box: Box
    friction: float = 0.1
    start_s: float = 0.0
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class ActuatorStall:
    actuator: Literal["tool", "drive"]
    start_s: float
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class CommandDelay:
    delay_s: float
    start_s: float
    end_s: float = math.inf


@dataclass(frozen=True, slots=True)
class CommandLoss:
    start_s: float
    end_s: float = math.inf


Fault = (
    SensorDropout
    | FrozenFrame
    | ImuBiasStep
    | EncoderLoss
    | LowFrictionPatch
    | ActuatorStall
    | CommandDelay
    | CommandLoss
)


def fault_from_spec(spec: FaultSpec) -> Fault:
    """One mission-file fault (``FaultSpec``, already validated by the mission reader) as the injector's
    dataclass; ``box_m`` (x_min, y_min, x_max, y_max) becomes a ``sim.sites.Box``. Raises ValueError naming
    the kind and the field when a spec lacks what its kind needs."""
    k, t0, t1 = spec.kind, spec.start_s, spec.end_s
    fault: Fault
    if k == "sensor_dropout":
        if spec.sensor not in _SENSORS:
            raise ValueError(
                f"fault {k}: sensor must be camera, depth, imu, wheels, battery or tool, got {spec.sensor!r}"
            )
        fault = SensorDropout(cast(SensorName, spec.sensor), t0, t1)
    elif k == "frozen_frame":
        if spec.sensor not in ("camera", "depth"):
            raise ValueError(f"fault {k}: sensor must be camera or depth, got {spec.sensor!r}")
        fault = FrozenFrame(cast(Literal["camera", "depth"], spec.sensor), t0, t1)
    elif k == "imu_bias_step":
        fault = ImuBiasStep(t0, spec.gyro_bias_radps, spec.accel_bias_mps2, t1)
    elif k == "encoder_loss":
        fault = EncoderLoss(t0, t1)
    elif k == "low_friction_patch":
        if spec.box_m is None:
            raise ValueError(f"fault {k}: box_m [x_min, y_min, x_max, y_max] is required")
        fault = LowFrictionPatch(Box(*spec.box_m), spec.friction, t0, t1)
    elif k == "actuator_stall":
        if spec.actuator not in ("tool", "drive"):
            raise ValueError(f"fault {k}: actuator must be tool or drive, got {spec.actuator!r}")
        fault = ActuatorStall(cast(Literal["tool", "drive"], spec.actuator), t0, t1)
    elif k == "command_delay":
        fault = CommandDelay(spec.delay_s, t0, t1)
    elif k == "command_loss":
        fault = CommandLoss(t0, t1)
    else:
        raise ValueError(f"fault kind {k!r} is not simulated")
    _check(fault)
    return fault


def faults_from_specs(specs: Sequence[FaultSpec], rover_id: str) -> list[Fault]:
    """The faults of ``specs`` that apply to ``rover_id`` (``rover_id`` None in a spec: every rover)."""
    return [fault_from_spec(s) for s in specs if s.rover_id is None or s.rover_id == rover_id]


def fault_to_dict(spec: FaultSpec) -> dict[str, Any]:
    """A mission fault as JSON-able fields for ``summary.json`` (only the fields its kind uses; an open
    end is ``null``)."""
    out: dict[str, Any] = {
        "kind": spec.kind,
        "start_s": spec.start_s,
        "end_s": spec.end_s if math.isfinite(spec.end_s) else None,
        "rover_id": spec.rover_id,
    }
    k = spec.kind
    if k in ("sensor_dropout", "frozen_frame"):
        out["sensor"] = spec.sensor
    elif k == "actuator_stall":
        out["actuator"] = spec.actuator
    elif k == "imu_bias_step":
        out["gyro_bias_radps"] = list(spec.gyro_bias_radps)
        out["accel_bias_mps2"] = list(spec.accel_bias_mps2)
    elif k == "low_friction_patch":
        out["box_m"] = list(spec.box_m) if spec.box_m is not None else None
        out["friction"] = spec.friction
    elif k == "command_delay":
        out["delay_s"] = spec.delay_s
    return out


def _check(fault: Fault) -> None:
    if not (math.isfinite(fault.start_s) and fault.end_s > fault.start_s):
        raise ValueError(f"fault {fault}: need a finite start_s < end_s")
    if isinstance(fault, CommandDelay) and not (fault.delay_s > 0 and math.isfinite(fault.delay_s)):
        raise ValueError(f"fault {fault}: delay_s must be finite and > 0")
    if isinstance(fault, LowFrictionPatch) and not fault.friction >= 0:
        raise ValueError(f"fault {fault}: friction must be >= 0")


class FaultInjector:
    """Applies ``faults`` to ``rover`` (see the module docstring). ``active(t)`` lists the faults active at t."""

    def __init__(self, rover: SimRover, faults: Sequence[Fault]) -> None:
        for f in faults:
            _check(f)
        self.rover = rover
        self.faults: tuple[Fault, ...] = tuple(faults)
        self._inner_wheels = rover.wheels
        self._inner_imu = rover.imu
        self._inner_tool = rover.tool
        self._inner_battery = rover.battery
        self._inner_drive = rover.drive
        self._inner_camera = rover.camera
        self._inner_depth = rover.depth
        rover.wheels = _FaultyEncoders(self)  # type: ignore[assignment]
        rover.imu = _FaultyImu(self)  # type: ignore[assignment]
        rover.tool = _FaultyTool(self)  # type: ignore[assignment]
        rover.battery = _FaultyBattery(self)  # type: ignore[assignment]
        rover.drive = _FaultyDrive(self)  # type: ignore[assignment]
        if rover.camera is not None:
            rover.camera = _FaultyCamera(self)  # type: ignore[assignment]
        if rover.depth is not None:
            rover.depth = _FaultyDepth(self)  # type: ignore[assignment]
        self._pending: deque[tuple[float, DriveCommand | ToolCommand]] = deque()
        self._wheel_friction: list[float] = [rover.profile.wheel_friction] * 4
        self._tool_stall_hold: float | None = None
        rover.step_hooks.append(self._before_step)

    @property
    def now_s(self) -> float:
        return self.rover.world.time_s

    def active(self, t_s: float | None = None) -> list[Fault]:
        t = self.now_s if t_s is None else t_s
        return [f for f in self.faults if f.start_s <= t < f.end_s]

    def _has(self, kind: type, **match: object) -> Fault | None:
        for f in self.active():
            if isinstance(f, kind) and all(getattr(f, k) == v for k, v in match.items()):
                return f
        return None

    # ---- physics-side faults (every step) ------------------------------------------------------------

    def _before_step(self, now_s: float) -> None:
        r = self.rover
        # delayed commands whose time has come
        while self._pending and self._pending[0][0] <= now_s:
            _, cmd = self._pending.popleft()
            self._deliver(cmd)
        # low-friction patches under each wheel
        patches = [f for f in self.active(now_s) if isinstance(f, LowFrictionPatch)]
        if patches or any(fr != r.profile.wheel_friction for fr in self._wheel_friction):
            hubs = r.wheel_hubs_xy()
            for i, (x, y) in enumerate(hubs):
                fr = r.profile.wheel_friction
                for p in patches:
                    if p.box.contains(x, y):
                        fr = min(fr, p.friction)
                if fr != self._wheel_friction[i]:
                    r.set_wheel_friction(i, fr)
                    self._wheel_friction[i] = fr
        # stalls
        if self._has(ActuatorStall, actuator="drive") is not None:
            r._apply_wheels(0.0, 0.0)
        tool_stall = self._has(ActuatorStall, actuator="tool") is not None
        if tool_stall and self._tool_stall_hold is None:
            self._tool_stall_hold = float(r._c.getJointState(r.body_id, r._bucket)[0])
            r._apply_tool(self._tool_stall_hold)
        elif not tool_stall and self._tool_stall_hold is not None:
            self._tool_stall_hold = None

    def _deliver(self, cmd: DriveCommand | ToolCommand) -> None:
        if isinstance(cmd, DriveCommand):
            if self._has(ActuatorStall, actuator="drive") is None:
                self._inner_drive.command(cmd)
        elif self._tool_stall_hold is None:
            self._inner_tool.command(cmd)

    def submit(self, cmd: DriveCommand | ToolCommand) -> None:
        if self._has(CommandLoss) is not None:
            return
        delay = self._has(CommandDelay)
        if isinstance(delay, CommandDelay):
            self._pending.append((self.now_s + delay.delay_s, cmd))
            return
        self._deliver(cmd)


class _FaultyEncoders:
    def __init__(self, inj: FaultInjector) -> None:
        self._inj = inj
        self._last_good: WheelEncoderReading | None = None

    def read(self) -> WheelEncoderReading | None:
        inj = self._inj
        if inj._has(SensorDropout, sensor="wheels") is not None:
            return None
        reading = inj._inner_wheels.read()
        if inj._has(EncoderLoss) is not None:
            base = self._last_good if self._last_good is not None else reading
            return replace(base, stamp_s=reading.stamp_s, valid=False)
        self._last_good = reading
        return reading


class _FaultyImu:
    def __init__(self, inj: FaultInjector) -> None:
        self._inj = inj

    def read(self) -> ImuReading | None:
        inj = self._inj
        if inj._has(SensorDropout, sensor="imu") is not None:
            return None
        reading = inj._inner_imu.read()
        gyro = list(reading.angular_velocity_radps)
        accel = list(reading.linear_acceleration_mps2)
        for f in inj.active():
            if isinstance(f, ImuBiasStep):
                gyro = [g + b for g, b in zip(gyro, f.gyro_bias_radps, strict=True)]
                accel = [a + b for a, b in zip(accel, f.accel_bias_mps2, strict=True)]
        return ImuReading(reading.stamp_s, (gyro[0], gyro[1], gyro[2]), (accel[0], accel[1], accel[2]))


class _FaultyTool:
    def __init__(self, inj: FaultInjector) -> None:
        self._inj = inj

    def command(self, cmd: ToolCommand) -> None:
        self._inj.submit(cmd)

    def read(self) -> ToolState | None:
        inj = self._inj
        if inj._has(SensorDropout, sensor="tool") is not None:
            return None
        state = inj._inner_tool.read()
        if state is not None and inj._has(ActuatorStall, actuator="tool") is not None:
            return replace(state, stalled=True)
        return state


class _FaultyBattery:
    def __init__(self, inj: FaultInjector) -> None:
        self._inj = inj

    def read(self) -> BatteryState | None:
        if self._inj._has(SensorDropout, sensor="battery") is not None:
            return None
        return self._inj._inner_battery.read()


class _FaultyDrive:
    def __init__(self, inj: FaultInjector) -> None:
        self._inj = inj
        inner = inj._inner_drive
        self.command_timeout_s: float = inner.command_timeout_s
        self.wheel_radius_m: float = inner.wheel_radius_m
        self.track_width_m: float = inner.track_width_m

    def command(self, cmd: DriveCommand) -> None:
        self._inj.submit(cmd)

    @property
    def wheel_targets_radps(self) -> tuple[float, float]:
        """The (left, right) wheel speeds the motors are driving at now (after delays, losses, stalls)."""
        return self._inj.rover._wheel_targets


class _FaultyCamera:
    def __init__(self, inj: FaultInjector) -> None:
        inner = inj._inner_camera
        if inner is None:
            raise ValueError("_FaultyCamera: the rover has no camera")
        self._inj = inj
        self._inner = inner
        self.camera_id: str = inner.camera_id
        self.info: CameraInfo = inner.info
        self.mount: Pose3D = inner.mount
        self._last: CameraFrame | None = None

    def read(self) -> CameraFrame | None:
        inj = self._inj
        frame = self._inner.read()
        if inj._has(SensorDropout, sensor="camera") is not None:
            return None
        if inj._has(FrozenFrame, sensor="camera") is not None and self._last is not None:
            return replace(self._last, stamp_s=frame.stamp_s) if frame is not None else None
        if frame is not None:
            self._last = frame
        return frame


class _FaultyDepth:
    def __init__(self, inj: FaultInjector) -> None:
        inner = inj._inner_depth
        if inner is None:
            raise ValueError("_FaultyDepth: the rover has no depth sensor")
        self._inj = inj
        self._inner = inner
        self.camera_id: str = inner.camera_id
        self.info: CameraInfo = inner.info
        self.mount: Pose3D = inner.mount
        self._last: DepthFrame | None = None

    def read(self) -> DepthFrame | None:
        inj = self._inj
        frame = self._inner.read()
        if inj._has(SensorDropout, sensor="depth") is not None:
            return None
        if inj._has(FrozenFrame, sensor="depth") is not None and self._last is not None:
            return replace(self._last, stamp_s=frame.stamp_s) if frame is not None else None
        if frame is not None:
            self._last = frame
        return frame
