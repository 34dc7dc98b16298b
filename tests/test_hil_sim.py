"""Hardware in the loop in simulation (targets/hil.py): PyBullet rover motors driven by the real firmware over
the real host link and a pseudo-terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pybullet", reason="the sim extra is needed")
pytest.importorskip("serial", reason="pyserial is needed")

from autonomy.mission.mission_file import load_mission
from autonomy.msgs import DriveCommand, Pose2D
from sim.world import World
from targets.hil import attach_hil, run_mission_hil

ROOT = Path(__file__).resolve().parents[1]


def test_command_stream_loss_stops_the_simulated_rover_within_250ms() -> None:
    world = World(seed=1, beacons=[], keep_clear_xy=[(0.0, 0.0)], rock_count=0, size_m=(8.0, 8.0))
    try:
        rover = world.add_rover("r1", Pose2D(0.0, 0.0, 0.0))
        rig = attach_hil(rover)
        clock = world.clock
        t = 0.0
        while t < 1.0:  # 20 Hz command stream for 1 s
            rig.io.drive.command(DriveCommand(t, 0.4, 0.0))
            t += 0.05
            clock.sleep_until(t)
        assert rig.wheel_speeds_radps()[0] > 1.0
        assert rover.drive.wheel_targets_radps[0] > 1.0
        t_last = t - 0.05
        stopped_at = None
        while t < t_last + 1.0:
            t += 0.01
            clock.sleep_until(t)
            if stopped_at is None and rover.drive.wheel_targets_radps == (0.0, 0.0):
                stopped_at = t
        assert stopped_at is not None, "the simulated rover never stopped"
        assert stopped_at - t_last <= 0.25
        assert rig.firmware.parser.frames_ok >= 19 and rig.firmware.parser.errors() == 0
        assert rig.link.frames_rx > 40 and rig.link.parser.errors() == 0
        rig.close()
    finally:
        world.close()


@pytest.mark.slow
def test_waypoint_mission_completes_with_the_firmware_in_the_loop() -> None:
    mission = load_mission(ROOT / "missions" / "waypoints.yaml")
    result, rig, dist = run_mission_hil(mission, seed=mission.seed)
    assert result.status.value == "completed", result.reason
    assert dist < 0.6
    assert rig.firmware.parser.frames_ok > 100 and rig.firmware.parser.errors() == 0
    assert rig.link.parser.errors() == 0


def _stream(rig: object, clock: object, t: float, until: float, v: float = 0.4, dt: float = 0.05) -> float:
    """A 20 Hz drive command stream from the host link until ``until`` (simulated s); returns the time."""
    while t < until - 1e-9:
        rig.io.drive.command(DriveCommand(t, v, 0.0))  # type: ignore[attr-defined]
        t += dt
        clock.sleep_until(t)  # type: ignore[attr-defined]
    return t


def test_wheel_encoders_are_counted_by_the_firmware_from_the_sim_wheel_angles() -> None:
    world = World(seed=2, beacons=[], keep_clear_xy=[(0.0, 0.0)], rock_count=0, size_m=(8.0, 8.0))
    try:
        rover = world.add_rover("r1", Pose2D(0.0, 0.0, 0.0))
        rig = attach_hil(rover)
        assert rig.io.wheels is rig.link.wheels  # the autonomy reads the firmware's counts
        t = _stream(rig, world.clock, 0.0, 1.5)
        t = _stream(rig, world.clock, t, t + 0.5, v=0.0)  # stop and settle: the last telemetry is current
        through_fw = rig.io.wheels.read()
        sim = rover.wheels.read()  # the sim's own encoder model, the source of the firmware's edges
        assert through_fw is not None
        got = (through_fw.front_left_rad, through_fw.front_right_rad, through_fw.rear_left_rad)
        want = (sim.front_left_rad, sim.front_right_rad, sim.rear_left_rad)
        assert min(want) > 2.0  # the wheels turned
        for g, w in zip(got, want, strict=True):
            assert abs(g - w) <= 1.5 / 95.5  # within one count of the firmware's x4 decoding
        assert all(e.errors == 0 for e in rig.mcu.encoders)  # one clean Gray-code edge at a time
        assert rig.firmware.encoders[0].count == round(through_fw.front_left_rad * 95.5)
        rig.close()
    finally:
        world.close()


def test_estop_press_stops_the_simulated_rover_and_resume_needs_two_actions() -> None:
    world = World(seed=3, beacons=[], keep_clear_xy=[(0.0, 0.0)], rock_count=0, size_m=(8.0, 8.0))
    try:
        rover = world.add_rover("r1", Pose2D(0.0, 0.0, 0.0))
        rig = attach_hil(rover)
        clock = world.clock
        t = _stream(rig, clock, 0.0, 1.5)
        assert rover.true_twist()[0] > 0.2 and not rig.link.estop.read().engaged
        rig.press_estop()
        t_press = t
        stopped_at = None
        while t < t_press + 1.0:  # the host keeps commanding 0.4 m/s: the firmware ignores it
            t = _stream(rig, clock, t, t + 0.05)
            if stopped_at is None and rover.drive.wheel_targets_radps == (0.0, 0.0):
                stopped_at = t
        assert stopped_at is not None and stopped_at - t_press <= 0.05 + 1e-6  # the next firmware loops latch
        assert rig.link.estop.read().engaged and rig.firmware.latched
        assert abs(rover.true_twist()[0]) < 0.02  # the simulated rover is standing
        x_stopped = rover.true_pose().x_m

        rig.release_estop()
        t = _stream(rig, clock, t, t + 0.5)
        assert rig.link.estop.read().engaged, "releasing the button alone must not resume"
        rig.link.resume_confirm()  # CONFIRM without ARM: refused
        t = _stream(rig, clock, t, t + 0.3)
        assert rig.link.estop.read().engaged
        rig.press_estop()
        rig.link.resume_arm()  # ARM while the button is pressed: refused
        t = _stream(rig, clock, t, t + 0.1)
        rig.release_estop()
        rig.link.resume_confirm()
        t = _stream(rig, clock, t, t + 0.3)
        assert rig.link.estop.read().engaged
        assert abs(rover.true_pose().x_m - x_stopped) < 0.02  # it never moved meanwhile

        rig.link.resume_arm()  # the two deliberate actions, button released
        t = _stream(rig, clock, t, t + 0.1)
        rig.link.resume_confirm()
        t = _stream(rig, clock, t, t + 1.0)
        assert not rig.link.estop.read().engaged
        assert rover.true_twist()[0] > 0.2  # driving again on fresh commands

        rover.set_estop(True)  # the simulator's own e-stop is wired to the firmware's input too
        t = _stream(rig, clock, t, t + 0.2)
        assert rig.firmware.latched and rig.link.estop.read().engaged
        rig.close()
    finally:
        world.close()
