"""The host end of the serial link to the motor-controller MCU (pyserial), speaking ``hw.link.protocol``.

One ``McuLink`` owns the port; its ``drive``, ``wheels``, ``tool`` and ``estop`` attributes are the
``DriveBase``, ``WheelEncoders``, ``Tool`` and ``Estop`` ports. Telemetry is read (non-blocking) whenever a
port is read. The MCU enforces the command expiry and the e-stop itself; the host only reports them.
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

from autonomy.msgs import DriveCommand, EstopState, ToolCommand, ToolState, WheelEncoderReading
from hw.interfaces import Clock, DeviceError
from hw.link import protocol as p

INT16_MAX = 32767


class SerialPort(Protocol):
    """The part of ``serial.Serial`` the link uses (a pty or a virtual link in tests)."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


def open_serial(port: str, baud: int) -> SerialPort:
    """Open ``port`` with pyserial, non-blocking. Raises ``DeviceError`` naming the port when it is missing."""
    try:
        import serial
    except ImportError as exc:
        raise DeviceError("MCU link: pyserial is not installed (pip install 'regolith[board]')") from exc
    try:
        opened: SerialPort = serial.Serial(port, baudrate=baud, timeout=0, write_timeout=0.1)
    except (serial.SerialException, OSError) as exc:
        raise DeviceError(f"MCU link: cannot open serial port {port!r}: {exc}") from exc
    return opened


class Telemetry:
    __slots__ = ("counts", "flags", "last_host_seq", "load_dn", "mcu_ms", "rejected", "stamp_s", "tool_mrad")

    def __init__(self, stamp_s: float, fields: tuple[Any, ...]) -> None:
        self.stamp_s = stamp_s
        self.mcu_ms: int = fields[0]
        self.counts: tuple[int, int, int, int] = (fields[1], fields[2], fields[3], fields[4])
        self.tool_mrad: int = fields[5]
        self.load_dn: int = fields[6]
        self.flags: int = fields[7]
        self.last_host_seq: int = fields[8]
        self.rejected: int = fields[9]


class McuLink:
    def __init__(
        self,
        port: SerialPort,
        clock: Clock,
        *,
        wheel_radius_m: float,
        track_width_m: float,
        counts_per_rad: float,
        link_timeout_s: float = 0.5,
        command_timeout_s: float = 0.25,
    ) -> None:
        if counts_per_rad <= 0 or wheel_radius_m <= 0 or track_width_m <= 0:
            raise ValueError("McuLink: counts_per_rad, wheel_radius_m and track_width_m must be > 0")
        self.port = port
        self.clock = clock
        self.counts_per_rad = counts_per_rad
        self.link_timeout_s = link_timeout_s
        self.encoder = p.FrameEncoder()
        self.parser = p.FrameParser()
        self.latest: Telemetry | None = None
        self.frames_rx = 0
        self.drive = McuDriveBase(self, wheel_radius_m, track_width_m, command_timeout_s)
        self.wheels = McuWheelEncoders(self)
        self.tool = McuTool(self)
        self.estop = McuEstop(self)

    @classmethod
    def open(cls, port_name: str, baud: int, clock: Clock, **kwargs: Any) -> McuLink:
        return cls(open_serial(port_name, baud), clock, **kwargs)

    def send(self, msg_type: int, payload: bytes = b"") -> None:
        k = self.encoder.encode(msg_type, payload, len(payload))
        try:
            self.port.write(bytes(self.encoder.out[:k]))
        except OSError as exc:
            raise DeviceError(f"MCU link: write failed: {exc}") from exc

    def poll(self) -> Telemetry | None:
        """Read every byte waiting; returns the newest telemetry received in this call, if any."""
        newest = None
        while True:
            try:
                data = self.port.read(4096)
            except OSError as exc:
                raise DeviceError(f"MCU link: read failed: {exc}") from exc
            if not data:
                break
            for b in data:
                if self.parser.push(b) and self.parser.msg_type == p.MSG_TELEMETRY:
                    if self.parser.length != p.TELEMETRY_LEN:
                        continue
                    fields = struct.unpack(p.TELEMETRY_FMT, bytes(self.parser.payload[: p.TELEMETRY_LEN]))
                    newest = Telemetry(self.clock.now_s(), fields)
                    self.frames_rx += 1
        if newest is not None:
            self.latest = newest
        return newest

    def wait_ready(self, timeout_s: float) -> Telemetry:
        """Wait for the first telemetry frame; ``DeviceError`` if the MCU stays silent."""
        deadline = self.clock.now_s() + timeout_s
        while True:
            t = self.poll()
            if t is not None:
                return t
            now = self.clock.now_s()
            if now >= deadline:
                raise DeviceError(
                    f"MCU link: no telemetry from the MCU within {timeout_s:g} s (check wiring, baud rate, firmware)"
                )
            self.clock.sleep_until(min(deadline, now + 0.005))

    def alive(self) -> bool:
        t = self.latest
        return t is not None and self.clock.now_s() - t.stamp_s <= self.link_timeout_s

    def resume_arm(self) -> None:
        self.send(p.MSG_RESUME_ARM)

    def resume_confirm(self) -> None:
        self.send(p.MSG_RESUME_CONFIRM)

    def close(self) -> None:
        self.port.close()


class McuDriveBase:
    """DriveBase: a body twist becomes left/right wheel speeds (mrad/s) for the MCU."""

    def __init__(self, link: McuLink, wheel_radius_m: float, track_width_m: float, command_timeout_s: float) -> None:
        self.link = link
        self.wheel_radius_m = wheel_radius_m
        self.track_width_m = track_width_m
        self.command_timeout_s = command_timeout_s

    def wheel_speeds_mradps(self, cmd: DriveCommand) -> tuple[int, int]:
        half = 0.5 * self.track_width_m * cmd.angular_z_radps
        left = (cmd.linear_x_mps - half) / self.wheel_radius_m * 1000.0
        right = (cmd.linear_x_mps + half) / self.wheel_radius_m * 1000.0
        return _clamp16(left), _clamp16(right)

    def command(self, cmd: DriveCommand) -> None:
        self.link.send(p.MSG_DRIVE, struct.pack(p.DRIVE_FMT, *self.wheel_speeds_mradps(cmd)))


class McuWheelEncoders:
    def __init__(self, link: McuLink) -> None:
        self.link = link
        self._seen: Telemetry | None = None

    def read(self) -> WheelEncoderReading | None:
        self.link.poll()
        t = self.link.latest
        if t is None or t is self._seen:
            return None
        self._seen = t
        c = [n / self.link.counts_per_rad for n in t.counts]
        return WheelEncoderReading(t.stamp_s, c[0], c[1], c[2], c[3])


class McuTool:
    def __init__(self, link: McuLink) -> None:
        self.link = link

    def command(self, cmd: ToolCommand) -> None:
        self.link.send(p.MSG_TOOL, struct.pack(p.TOOL_FMT, _clamp16(cmd.position_rad * 1000.0)))

    def read(self) -> ToolState | None:
        self.link.poll()
        t = self.link.latest
        if t is None:
            return None
        return ToolState(t.stamp_s, t.tool_mrad / 1000.0, t.load_dn / 10.0, bool(t.flags & p.FLAG_STALLED))


class McuEstop:
    """Engaged when the MCU reports its e-stop latched, and also when the link is silent (fail safe)."""

    def __init__(self, link: McuLink) -> None:
        self.link = link

    def read(self) -> EstopState:
        self.link.poll()
        t = self.link.latest
        engaged = t is None or not self.link.alive() or bool(t.flags & p.FLAG_ESTOP)
        return EstopState(self.link.clock.now_s(), engaged)


def _clamp16(x: float) -> int:
    return max(-INT16_MAX, min(INT16_MAX, round(x)))
