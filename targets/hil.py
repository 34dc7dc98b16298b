"""Hardware in the loop, in simulation: the simulated rover's motors are driven by the real MCU firmware
(``targets/mcu/app.py``) running on the host, behind the real host link (``hw.drivers.mcu_link``, pyserial)
over a virtual serial link (a pseudo-terminal). Every simulated run with this profile exercises the host link,
the protocol and the firmware logic; when the command stream stops, the firmware's expiry stops the rover.

Timing is lockstep: a physics step hook runs one firmware ``step`` every ``LOOP_MS`` of simulated time, with
the firmware's ticks taken from the simulated clock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from autonomy.msgs import DriveCommand
from hw.drivers.mcu_link import McuLink
from hw.interfaces import Clock
from hw.rover_io import RoverIO
from targets.mcu_image import load_firmware_on_host

TICKS_PERIOD = 1 << 30


class SimTicks:
    """MicroPython's ticks API on simulated time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def ticks_ms(self) -> int:
        return round(self.clock.now_s() * 1000.0) % TICKS_PERIOD

    def ticks_diff(self, a: int, b: int) -> int:
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    def ticks_add(self, t: int, d: int) -> int:
        return (t + d) % TICKS_PERIOD


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


class _Adc:
    def __init__(self, raw: int) -> None:
        self.raw = raw

    def read_u16(self) -> int:
        return self.raw


class PtyUart:
    """The firmware's UART: the master end of a pseudo-terminal, non-blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.pending = b""

    def any(self) -> int:
        if not self.pending:
            try:
                self.pending = os.read(self.fd, 4096)
            except BlockingIOError:
                self.pending = b""
        return len(self.pending)

    def readinto(self, buf: bytearray) -> int | None:
        n = min(len(buf), len(self.pending))
        buf[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n or None

    def write(self, data: Any) -> int:
        return os.write(self.fd, bytes(data))


class _NoWdt:
    """The simulated MCU's watchdog: counts feeds (a hung firmware shows as a stalled count)."""

    def __init__(self) -> None:
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


@dataclass
class HilRig:
    firmware: Any
    link: McuLink
    left_pwm: tuple[_Pwm, ...]
    left_dir: tuple[_Pin, ...]
    right_pwm: tuple[_Pwm, ...]
    right_dir: tuple[_Pin, ...]
    max_wheel_radps: float
    fds: tuple[int, int]
    io: RoverIO

    def wheel_speeds_radps(self) -> tuple[float, float]:
        """What the firmware's motor outputs command: (left, right) wheel speed, rad/s (open-loop duty)."""

        def side(pwms: tuple[_Pwm, ...], dirs: tuple[_Pin, ...]) -> float:
            pwm, d = pwms[0], dirs[0]
            mag = pwm.duty / 65535.0 * self.max_wheel_radps
            return mag if d.level else -mag

        return side(self.left_pwm, self.left_dir), side(self.right_pwm, self.right_dir)

    def close(self) -> None:
        self.link.close()
        for fd in self.fds:
            os.close(fd)


def attach_hil(rover: Any, counts_per_rad: float = 95.5) -> HilRig:
    """Put the firmware between ``rover``'s (a ``sim.backend.SimRover``) drive and the autonomy: returns the
    rig whose ``io`` is the rover's ports with ``drive`` replaced by the MCU link's ``DriveBase``."""
    fw_mods = load_firmware_on_host()
    app: Any = fw_mods["app"]
    motors: Any = fw_mods["drivers.motors"]
    tool_mod: Any = fw_mods["drivers.tool"]
    estop_mod: Any = fw_mods["drivers.estop"]
    clock = rover.world.clock
    base = rover.io()
    lp, ld, rp, rd = (_Pwm(), _Pwm()), (_Pin(), _Pin()), (_Pwm(), _Pwm()), (_Pin(), _Pin())
    left = tuple(motors.Motor(lp[i], ld[i]) for i in range(2))
    right = tuple(motors.Motor(rp[i], rd[i]) for i in range(2))
    encs = tuple(motors.Quadrature(_Pin(), _Pin()) for _ in range(4))
    tool = tool_mod.ToolActuator(motors.Motor(_Pwm(), _Pin()), _Adc(32768), _Adc(0))
    master, slave = os.openpty()
    fw = app.Firmware(
        SimTicks(clock), PtyUart(master), _NoWdt(), left, right, encs, tool, estop_mod.EstopInput(_Pin(0), 1)
    )
    link = McuLink.open(
        os.ttyname(slave),
        1_000_000,
        clock,
        wheel_radius_m=base.drive.wheel_radius_m,
        track_width_m=base.drive.track_width_m,
        counts_per_rad=counts_per_rad,
    )
    io = replace(base, drive=link.drive)
    rig = HilRig(fw, link, lp, ld, rp, rd, app.MAX_WHEEL_MRADPS / 1000.0, (master, slave), io)
    period_s = app.LOOP_MS / 1000.0
    next_s = [clock.now_s()]
    r_m, track_m = base.drive.wheel_radius_m, base.drive.track_width_m
    sim_drive = base.drive

    def hook(now_s: float) -> None:
        if now_s + 1e-9 < next_s[0]:
            return
        next_s[0] += period_s  # a fixed 10 ms grid on simulated time (physics steps are 1/240 s)
        if next_s[0] <= now_s:
            next_s[0] = now_s + period_s
        fw.step()
        link.poll()
        wl, wr = rig.wheel_speeds_radps()
        sim_drive.command(DriveCommand(now_s, r_m * (wl + wr) / 2.0, r_m * (wr - wl) / track_m))

    rover.step_hooks.append(hook)
    return rig


def run_mission_hil(mission: Any, seed: int, max_steps: int | None = None) -> tuple[Any, HilRig, float]:
    """Run ``mission`` in PyBullet with the firmware in the loop. Returns (LoopResult, rig, final distance of
    the true rover position to the last waypoint, m)."""
    import time

    from autonomy.runtime.loop import RoverLoop
    from autonomy.runtime.pipeline import Pipeline, RoverGeometry, mission_pipeline_config
    from autonomy.runtime.profiler import StageProfiler
    from sim.world import World

    spec = mission.rovers[0]
    keep_clear = [(spec.start.x_m, spec.start.y_m)] + [(w.x_m, w.y_m) for w in mission.waypoints]
    world = World(seed=seed, beacons=mission.site.beacons, keep_clear_xy=keep_clear, size_m=mission.site.size_m)
    try:
        rover = world.add_rover(spec.rover_id, spec.start)
        rig = attach_hil(rover)
        try:
            io = rig.io
            config = mission_pipeline_config(
                mission, spec, RoverGeometry(io.drive.wheel_radius_m, io.drive.track_width_m)
            )
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
