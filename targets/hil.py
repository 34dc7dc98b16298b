"""Hardware in the loop, in simulation: the simulated rover's motors, wheel encoders and e-stop go through the
real MCU firmware (``targets/mcu/app.py``) running on the host, behind the real host link
(``hw.drivers.mcu_link``, pyserial) over a virtual serial link (a pseudo-terminal). Every simulated run with
this profile exercises the host link, the protocol and the firmware logic:

- drive: the host link's ``DriveBase`` sends wheel speeds to the firmware; the firmware's PWM duty and
  direction outputs become the simulated wheels' speeds. When the command stream stops, the firmware's
  expiry stops the rover.
- wheel encoders: the simulated wheel angles (the sim's encoder model, ``SimRover.wheels``, so its noise and
  encoder faults apply) turn into quadrature A/B edges on the firmware's encoder pins, one edge per count,
  each followed by the pin interrupt handler (``Quadrature.irq``), as on the MCU; the autonomy reads the
  firmware's counts back from its telemetry (``McuLink.wheels``).
- e-stop: the firmware's e-stop input is a pin the rig drives (``HilRig.press_estop``/``release_estop``,
  from a test) and that also reads pressed while the simulator's own e-stop is engaged
  (``SimRover.set_estop``, from a fault or the GUI). The autonomy sees the firmware's latch
  (``McuLink.estop``); resuming needs the firmware's two deliberate actions (``McuLink.resume_arm`` then
  ``resume_confirm``, button released).

Timing is lockstep: a physics step hook feeds the encoder edges before every physics step and runs one
firmware ``step`` every ``LOOP_MS`` of simulated time, with the firmware's ticks taken from the simulated
clock.

``VirtualMcu`` runs the same firmware on the wall clock in a thread behind a pseudo-terminal: a stand-in MCU
for ``rover run --board`` on a bench (``python -m targets.hil mcu`` prints its port) and for the deploy test.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from autonomy.msgs import DriveCommand
from hw.drivers.mcu_link import McuLink
from hw.rover_io import RoverIO
from targets.mcu_image import load_firmware_on_host

TICKS_PERIOD = 1 << 30
GRAY = (0b00, 0b01, 0b11, 0b10)  # quadrature (A << 1) | B for count % 4: forward is 00 -> 01 -> 11 -> 10


class SimTicks:
    """MicroPython's ticks API on a ``Clock`` (simulated time in HIL, the wall clock for ``VirtualMcu``)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._now_s: Callable[[], float] = clock.now_s

    def ticks_ms(self) -> int:
        return round(self._now_s() * 1000.0) % TICKS_PERIOD

    def ticks_diff(self, a: int, b: int) -> int:
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    def ticks_add(self, t: int, d: int) -> int:
        return (t + d) % TICKS_PERIOD


class _MonotonicClock:
    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def now_s(self) -> float:
        return time.perf_counter() - self._t0


class _Pwm:
    def __init__(self) -> None:
        self.duty = 0

    def duty_u16(self, d: int) -> None:
        self.duty = d


class _Pin:
    def __init__(self, level: int = 0) -> None:
        self.level = level

    def value(self, v: int | None = None) -> int | None:
        if v is None:
            return self.level
        self.level = 1 if v else 0
        return None


class _EstopPin:
    """The e-stop input pin: pressed (1) while the rig's button is pressed or ``also`` says so."""

    def __init__(self) -> None:
        self.pressed = False
        self.also: Any = None  # () -> bool, e.g. the simulator's own e-stop

    def value(self, v: int | None = None) -> int | None:
        if v is not None:
            raise ValueError("the e-stop input pin is an input")
        return 1 if self.pressed or (self.also is not None and self.also()) else 0


class _Adc:
    def __init__(self, raw: int) -> None:
        self.raw = raw

    def read_u16(self) -> int:
        return self.raw


class PtyUart:
    """The firmware's UART: the master end of a pseudo-terminal, non-blocking. Like a real UART, sending
    never blocks: bytes nobody reads (the host not connected yet, its buffer full) are dropped and counted."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.pending = b""
        self.dropped = 0

    def any(self) -> int:
        if not self.pending:
            try:
                self.pending = os.read(self.fd, 4096)
            except BlockingIOError:
                self.pending = b""
            except OSError as exc:  # EIO: no process has the other end open
                if exc.errno != errno.EIO:
                    raise
                self.pending = b""
        return len(self.pending)

    def readinto(self, buf: bytearray) -> int | None:
        n = min(len(buf), len(self.pending))
        buf[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n or None

    def write(self, data: Any) -> int:
        b = bytes(data)
        try:
            return os.write(self.fd, b)
        except BlockingIOError:
            self.dropped += len(b)
            return 0


def open_pty() -> tuple[int, int, str]:
    """(master fd, slave fd, slave path) of a new pseudo-terminal in raw mode (a UART has no line
    discipline: no echo, no line buffering)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


class _NoWdt:
    """The host-run MCU's watchdog: counts feeds (a hung firmware shows as a stalled count)."""

    def __init__(self) -> None:
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


class QuadratureFeed:
    """One encoder's A/B pins driven from a shaft angle: every count between the last angle and the new one is
    one Gray-code edge on the pins followed by the firmware's interrupt handler (x4 decoding, so
    ``counts_per_rad`` counts per radian). Counting starts at 0 at the first angle, as a powered-up MCU."""

    def __init__(self, encoder: Any, pin_a: _Pin, pin_b: _Pin, counts_per_rad: float) -> None:
        self.encoder = encoder
        self.pin_a, self.pin_b = pin_a, pin_b
        self.counts_per_rad = counts_per_rad
        self.zero: int | None = None
        self.position = 0
        self.edges = 0

    def feed(self, angle_rad: float) -> None:
        counts = round(angle_rad * self.counts_per_rad)
        if self.zero is None:
            self.zero = counts
        target = counts - self.zero
        while self.position != target:
            self.position += 1 if target > self.position else -1
            ab = GRAY[self.position % 4]
            self.pin_a.level, self.pin_b.level = ab >> 1, ab & 1
            self.encoder.irq(self.pin_a)
            self.edges += 1


@dataclass
class HostFirmware:
    """The real firmware wired to host-side peripherals: motor outputs, encoder pins, the e-stop pin."""

    firmware: Any
    left_pwm: tuple[_Pwm, ...]
    left_dir: tuple[_Pin, ...]
    right_pwm: tuple[_Pwm, ...]
    right_dir: tuple[_Pin, ...]
    encoders: tuple[Any, ...]
    encoder_pins: tuple[tuple[_Pin, _Pin], ...]
    estop_pin: _EstopPin
    uart: PtyUart
    wdt: _NoWdt
    max_wheel_radps: float
    loop_ms: int

    def wheel_speeds_radps(self) -> tuple[float, float]:
        """What the firmware's motor outputs command: (left, right) wheel speed, rad/s (open-loop duty)."""

        def side(pwms: tuple[_Pwm, ...], dirs: tuple[_Pin, ...]) -> float:
            mag = pwms[0].duty / 65535.0 * self.max_wheel_radps
            return mag if dirs[0].level else -mag

        return side(self.left_pwm, self.left_dir), side(self.right_pwm, self.right_dir)


def build_host_firmware(ticks: Any, uart: PtyUart) -> HostFirmware:
    """The firmware (``app.Firmware``) with ``ticks`` as its ``time`` and ``uart`` as its UART; every other
    peripheral is a host-side pin, PWM or ADC the caller can drive or read."""
    fw_mods = load_firmware_on_host()
    app: Any = fw_mods["app"]
    motors: Any = fw_mods["drivers.motors"]
    tool_mod: Any = fw_mods["drivers.tool"]
    estop_mod: Any = fw_mods["drivers.estop"]
    lp, ld, rp, rd = (_Pwm(), _Pwm()), (_Pin(), _Pin()), (_Pwm(), _Pwm()), (_Pin(), _Pin())
    left = tuple(motors.Motor(lp[i], ld[i]) for i in range(2))
    right = tuple(motors.Motor(rp[i], rd[i]) for i in range(2))
    pins = tuple((_Pin(), _Pin()) for _ in range(4))
    encs = tuple(motors.Quadrature(a, b) for a, b in pins)
    tool = tool_mod.ToolActuator(motors.Motor(_Pwm(), _Pin()), _Adc(32768), _Adc(0))
    estop_pin = _EstopPin()
    wdt = _NoWdt()
    fw = app.Firmware(ticks, uart, wdt, left, right, encs, tool, estop_mod.EstopInput(estop_pin, 1))
    return HostFirmware(
        fw, lp, ld, rp, rd, encs, pins, estop_pin, uart, wdt, app.MAX_WHEEL_MRADPS / 1000.0, app.LOOP_MS
    )


@dataclass
class HilRig:
    mcu: HostFirmware
    link: McuLink
    encoder_feeds: tuple[QuadratureFeed, ...]
    fds: tuple[int, int]
    io: RoverIO

    @property
    def firmware(self) -> Any:
        return self.mcu.firmware

    def wheel_speeds_radps(self) -> tuple[float, float]:
        return self.mcu.wheel_speeds_radps()

    def press_estop(self) -> None:
        """Press the e-stop button wired to the firmware's input."""
        self.mcu.estop_pin.pressed = True

    def release_estop(self) -> None:
        """Release the button (the firmware stays latched until ARM then CONFIRM arrive over the link)."""
        self.mcu.estop_pin.pressed = False

    def close(self) -> None:
        self.link.close()
        for fd in self.fds:
            os.close(fd)


def attach_hil(rover: Any, counts_per_rad: float = 95.5) -> HilRig:
    """Put the firmware between ``rover`` (a ``sim.backend.SimRover``) and the autonomy: returns the rig whose
    ``io`` is the rover's ports with ``drive``, ``wheels`` and ``estop`` replaced by the MCU link's ports."""
    clock = rover.world.clock
    base = rover.io()
    master, slave, slave_name = open_pty()
    mcu = build_host_firmware(SimTicks(clock), PtyUart(master))
    mcu.estop_pin.also = lambda: bool(rover.estop_engaged)
    link = McuLink.open(
        slave_name,
        1_000_000,
        clock,
        wheel_radius_m=base.drive.wheel_radius_m,
        track_width_m=base.drive.track_width_m,
        counts_per_rad=counts_per_rad,
    )
    feeds = tuple(
        QuadratureFeed(e, a, b, counts_per_rad) for e, (a, b) in zip(mcu.encoders, mcu.encoder_pins, strict=True)
    )
    io = replace(base, drive=link.drive, wheels=link.wheels, estop=link.estop)
    rig = HilRig(mcu, link, feeds, (master, slave), io)
    fw = mcu.firmware
    period_s = mcu.loop_ms / 1000.0
    next_s = [clock.now_s()]
    r_m, track_m = base.drive.wheel_radius_m, base.drive.track_width_m
    sim_drive = base.drive

    def hook(now_s: float) -> None:
        reading = rover.wheels.read()  # the sim's encoder model (and its faults): the shaft angles
        if reading is not None:
            angles = (reading.front_left_rad, reading.front_right_rad, reading.rear_left_rad, reading.rear_right_rad)
            for feed, angle in zip(feeds, angles, strict=True):
                feed.feed(angle)
        if now_s + 1e-9 < next_s[0]:
            return
        next_s[0] += period_s  # a fixed 10 ms grid on simulated time (physics steps are 1/240 s)
        if next_s[0] <= now_s:
            next_s[0] = now_s + period_s
        fw.step()
        link.poll()
        wl, wr = mcu.wheel_speeds_radps()
        sim_drive.command(DriveCommand(now_s, r_m * (wl + wr) / 2.0, r_m * (wr - wl) / track_m))

    rover.step_hooks.append(hook)
    return rig


class VirtualMcu:
    """The firmware running on this machine's wall clock, in a thread, behind a raw pseudo-terminal: open
    ``port`` with pyserial (``rover run --board`` with ``mcu.port`` set to it) and it answers like the MCU.
    The wheels do not turn (the encoders stay at 0); ``received`` counts the frames it handled by type."""

    def __init__(self) -> None:
        self.master, self.slave, self.port = open_pty()
        self.mcu = build_host_firmware(SimTicks(_MonotonicClock()), PtyUart(self.master))
        self.received: dict[int, int] = {}
        self.last_drive_mradps: tuple[int, int] | None = None
        self.msg_drive: int = load_firmware_on_host()["protocol"].MSG_DRIVE  # type: ignore[attr-defined]
        fw = self.mcu.firmware
        handle = fw.handle

        def counting_handle(msg_type: int, seq: int, payload: Any, length: int) -> None:
            self.received[msg_type] = self.received.get(msg_type, 0) + 1
            handle(msg_type, seq, payload, length)
            if length == 4 and msg_type == self.msg_drive:
                self.last_drive_mradps = (fw.left_mradps, fw.right_mradps)

        fw.handle = counting_handle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="virtual-mcu", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        period = self.mcu.loop_ms / 1000.0
        next_t = time.perf_counter()
        try:
            while not self._stop.is_set():
                self.mcu.firmware.step()
                next_t += period
                delay = next_t - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_t = time.perf_counter()
        except BaseException as exc:  # reported by stop(), never silently
            self.error = exc

    def drive_frames(self) -> int:
        return self.received.get(self.msg_drive, 0)

    def start(self) -> VirtualMcu:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        os.close(self.master)
        os.close(self.slave)
        if self.error is not None:
            raise RuntimeError(f"virtual MCU: the firmware loop failed: {self.error!r}") from self.error

    def __enter__(self) -> VirtualMcu:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_mission_hil(mission: Any, seed: int, max_steps: int | None = None) -> tuple[Any, HilRig, float]:
    """Run ``mission`` in PyBullet with the firmware in the loop. Returns (LoopResult, rig, final distance of
    the true rover position to the last waypoint, m)."""
    from autonomy.runtime.loop import RoverLoop
    from autonomy.runtime.pipeline import Pipeline, mission_pipeline_config
    from autonomy.runtime.profiler import StageProfiler
    from sim.world import World
    from targets.sim_run import sim_rover_geometry

    spec = mission.rovers[0]
    keep_clear = [(spec.start.x_m, spec.start.y_m)] + [(w.x_m, w.y_m) for w in mission.waypoints]
    world = World(seed=seed, beacons=mission.site.beacons, keep_clear_xy=keep_clear, size_m=mission.site.size_m)
    try:
        rover = world.add_rover(spec.rover_id, spec.start)
        rig = attach_hil(rover)
        try:
            io = rig.io
            config = mission_pipeline_config(mission, spec, sim_rover_geometry(io.drive))
            pipeline = Pipeline(config, StageProfiler(time.perf_counter))
            loop = RoverLoop(io, world.clock, pipeline, 20.0, mission.limits.time_s, max_steps=max_steps)
            result = loop.run()
            last = mission.waypoints[-1]
            dist = rover.true_pose().distance_to_m(last.x_m, last.y_m)
        finally:
            rig.close()
    finally:
        world.close()
    return result, rig, dist


def main(argv: list[str] | None = None) -> int:
    """``python -m targets.hil mcu``: run a virtual MCU (the real firmware on a pty) until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m targets.hil", description=main.__doc__)
    parser.add_argument("what", choices=["mcu"])
    parser.parse_args(argv)

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    with VirtualMcu() as mcu:
        print(f"virtual MCU on {mcu.port} (set mcu.port in a board profile to it); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
