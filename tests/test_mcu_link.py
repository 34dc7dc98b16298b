"""The host MCU link driver (hw/drivers/mcu_link.py, pyserial) against the real firmware code running on the
host, over a real pseudo-terminal (os.openpty): host link, protocol and firmware logic end to end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import firmware_cases

from autonomy.msgs import DriveCommand, ToolCommand
from hw.drivers.mcu_link import McuLink
from hw.interfaces import DeviceError, DriveBase, Estop, Tool, WheelEncoders
from targets.hil import PtyUart

serial = pytest.importorskip("serial", reason="pyserial not installed")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cases() -> Iterator[ModuleType]:
    with firmware_cases(with_stubs=False) as module:
        yield module


class StepClock:
    """Host clock tied to the firmware's fake ticks: both sides see the same time."""

    def __init__(self, fw_clock: object) -> None:
        self.fw_clock = fw_clock

    def now_s(self) -> float:
        return float(self.fw_clock.t) / 1000.0  # type: ignore[attr-defined]

    def sleep_until(self, t_s: float) -> None:
        raise AssertionError("not used")


@pytest.fixture
def rig(cases: ModuleType) -> Iterator[tuple[object, McuLink]]:
    master, slave = os.openpty()
    r = cases.Rig(start_ms=1000)
    r.fw.uart = PtyUart(master)
    link = McuLink.open(
        os.ttyname(slave), 1_000_000, StepClock(r.clock), wheel_radius_m=0.1, track_width_m=0.5, counts_per_rad=100.0
    )
    try:
        yield r, link
    finally:
        link.close()
        os.close(slave)
        os.close(master)


def run(r: object, link: McuLink, ms: int, cmd: DriveCommand | None = None) -> None:
    for _ in range(ms // 10):
        if cmd is not None:
            link.drive.command(cmd)
        r.run_ms(10)  # type: ignore[attr-defined]
        link.poll()


def test_missing_port_fails_loudly_naming_it() -> None:
    with pytest.raises(DeviceError, match="/dev/ttyREGOLITH-missing"):
        McuLink.open(
            "/dev/ttyREGOLITH-missing",
            115200,
            StepClock(None),
            wheel_radius_m=0.1,
            track_width_m=0.5,
            counts_per_rad=100.0,
        )


def test_ports_satisfy_the_interfaces(rig: tuple[object, McuLink]) -> None:
    _, link = rig
    assert isinstance(link.drive, DriveBase)
    assert isinstance(link.wheels, WheelEncoders)
    assert isinstance(link.tool, Tool)
    assert isinstance(link.estop, Estop)


def test_drive_encoders_tool_over_pty(rig: tuple[object, McuLink]) -> None:
    r, link = rig
    run(r, link, 100)
    assert link.frames_rx >= 4
    assert not link.estop.read().engaged
    run(r, link, 100, DriveCommand(0.0, 0.5, 0.0))  # 0.5 m/s, r = 0.1 m -> 5 rad/s = half duty
    assert r.pwms[0].duty == 32767 and r.pwms[2].duty == 32767  # type: ignore[attr-defined]
    r.encs[0].count = 314  # type: ignore[attr-defined]
    r.encs[3].count = -100  # type: ignore[attr-defined]
    run(r, link, 40, DriveCommand(0.0, 0.5, 0.0))
    w = link.wheels.read()
    assert w is not None and w.front_left_rad == pytest.approx(3.14) and w.rear_right_rad == pytest.approx(-1.0)
    link.tool.command(ToolCommand(0.0, 0.3))
    run(r, link, 40)
    assert r.tool.target_mrad == 300  # type: ignore[attr-defined]
    assert link.parser.errors() == 0 and r.fw.parser.errors() == 0  # type: ignore[attr-defined]


def test_command_stream_loss_stops_within_250ms(rig: tuple[object, McuLink]) -> None:
    r, link = rig
    run(r, link, 200, DriveCommand(0.0, 0.3, 0.2))
    assert r.moving()  # type: ignore[attr-defined]
    t_last = r.clock.t  # type: ignore[attr-defined]
    while r.moving():  # type: ignore[attr-defined]
        run(r, link, 10)
        assert r.clock.t - t_last <= 1000  # type: ignore[attr-defined]
    assert r.clock.t - t_last <= 250  # type: ignore[attr-defined]


def test_estop_and_two_action_resume_through_the_host(rig: tuple[object, McuLink]) -> None:
    r, link = rig
    run(r, link, 50, DriveCommand(0.0, 0.3, 0.0))
    r.button.level = 1  # type: ignore[attr-defined]
    run(r, link, 40, DriveCommand(0.0, 0.3, 0.0))
    assert link.estop.read().engaged and not r.moving()  # type: ignore[attr-defined]
    r.button.level = 0  # type: ignore[attr-defined]
    link.resume_arm()
    run(r, link, 40, DriveCommand(0.0, 0.3, 0.0))
    assert link.estop.read().engaged
    link.resume_confirm()
    run(r, link, 40, DriveCommand(0.0, 0.3, 0.0))
    assert not link.estop.read().engaged and r.moving()  # type: ignore[attr-defined]


def test_silent_link_reads_as_estop_and_garbage_never_crashes(rig: tuple[object, McuLink]) -> None:
    r, link = rig
    run(r, link, 50)
    os.write(r.fw.uart.fd, bytes(range(1, 256)) * 4)  # type: ignore[attr-defined]
    link.poll()
    assert link.parser.err_overflow >= 1  # 1020 bytes without a delimiter: dropped, then resynced
    run(r, link, 50)
    assert not link.estop.read().engaged
    r.clock.advance(600)  # type: ignore[attr-defined]
    assert link.estop.read().engaged  # no telemetry for 0.6 s: fail safe
