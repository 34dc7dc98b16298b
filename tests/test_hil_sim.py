"""Hardware in the loop in simulation (targets/hil.py): PyBullet rover motors driven by the real firmware over
the real host link and a pseudo-terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pybullet", reason="the sim extra is needed")
pytest.importorskip("serial", reason="pyserial is needed")

from autonomy.mission.mission_file import load_mission
from autonomy.msgs import DriveCommand, Pose3D
from sim.world import World
from targets.hil import attach_hil, run_mission_hil

ROOT = Path(__file__).resolve().parents[1]


def test_command_stream_loss_stops_the_simulated_rover_within_250ms() -> None:
    world = World(seed=1, beacons=[], keep_clear_xy=[(0.0, 0.0)], rock_count=0, size_m=(8.0, 8.0))
    try:
        rover = world.add_rover("r1", Pose3D(0.0, 0.0, 0.0))
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
