"""Every scheduled fault is observable through the rover's hw ports."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from autonomy.msgs import DriveCommand, Pose2D, ToolCommand
from sim.backend import SimRover, SimSensorProfile
from sim.faults import (
    ActuatorStall,
    CommandDelay,
    CommandLoss,
    EncoderLoss,
    FaultInjector,
    FrozenFrame,
    ImuBiasStep,
    LowFrictionPatch,
    SensorDropout,
)
from sim.sites import Box
from sim.world import World

SMALL_CAMERA = SimSensorProfile(camera_width_px=96, camera_height_px=72, camera_rate_hz=10.0)


@pytest.fixture
def world() -> Iterator[World]:
    with World(5, (), keep_clear_xy=[(-2.0, 0.0), (6.0, 0.0)], size_m=(14.0, 8.0), center_xy=(2.0, 0.0)) as w:
        yield w


def _rover(world: World, profile: SimSensorProfile | None = None) -> SimRover:
    return world.add_rover("r1", Pose2D(0.0, 0.0, 0.0), profile or SimSensorProfile(camera_enabled=False))


def _drive(world: World, rover: SimRover, v: float, seconds: float, tool: float | None = None) -> None:
    for _ in range(round(seconds / 0.05)):
        rover.drive.command(DriveCommand(world.time_s, v, 0.0))
        if tool is not None:
            rover.tool.command(ToolCommand(world.time_s, tool))
        world.run_for(0.05)


def test_sensor_dropout_gives_none_then_recovers(world: World) -> None:
    r = _rover(world)
    FaultInjector(r, [SensorDropout("imu", 0.5, 1.0), SensorDropout("wheels", 0.5, 1.0), SensorDropout("battery", 0.5)])
    assert r.imu.read() is not None and r.wheels.read() is not None
    world.run_until(0.6)
    assert r.imu.read() is None and r.wheels.read() is None and r.battery.read() is None
    world.run_until(1.1)
    assert r.imu.read() is not None and r.wheels.read() is not None and r.battery.read() is None
    assert r.io().read().imu is not None


def test_imu_bias_step(world: World) -> None:
    r = _rover(world)
    FaultInjector(r, [ImuBiasStep(1.0, gyro_bias_radps=(0.0, 0.0, 0.5))])
    world.run_until(0.5)
    before = np.mean([r.imu.read().angular_velocity_radps[2] for _ in range(20)])  # type: ignore[union-attr]
    world.run_until(1.5)
    after = np.mean([r.imu.read().angular_velocity_radps[2] for _ in range(20)])  # type: ignore[union-attr]
    assert after - before == pytest.approx(0.5, abs=0.01)


def test_encoder_loss_marks_readings_invalid(world: World) -> None:
    r = _rover(world)
    FaultInjector(r, [EncoderLoss(1.2, 2.0)])
    _drive(world, r, 0.3, 1.0)
    good = r.wheels.read()
    assert good is not None and good.valid
    _drive(world, r, 0.3, 0.5)
    lost = r.wheels.read()
    assert lost is not None and not lost.valid and lost.front_left_rad == good.front_left_rad
    _drive(world, r, 0.3, 0.6)
    back = r.wheels.read()
    assert back is not None and back.valid and back.front_left_rad > good.front_left_rad


def test_low_friction_patch_makes_wheels_slip(world: World) -> None:
    def distance(faults: list[LowFrictionPatch]) -> tuple[float, float]:
        with World(5, (), keep_clear_xy=[(-2.0, 0.0), (6.0, 0.0)], size_m=(14.0, 8.0), center_xy=(2.0, 0.0)) as w:
            r = _rover(w)
            FaultInjector(r, faults)
            start = r.wheels.read()
            _drive(w, r, 0.4, 4.0)
            end = r.wheels.read()
            assert start is not None and end is not None
            wheel_m = (end.front_left_rad - start.front_left_rad) * r.wheel_radius_m
            return wheel_m, r.true_pose().x_m

    wheel_ok, x_ok = distance([])
    wheel_slip, x_slip = distance([LowFrictionPatch(Box(-1.0, -1.0, 10.0, 1.0), friction=0.02)])
    # on ice the wheels turn about as much but the rover goes much less far
    assert x_ok > 1.0
    assert x_slip < 0.5 * x_ok
    assert wheel_slip > 2.0 * x_slip and wheel_slip > 0.5 * wheel_ok


def test_actuator_stall_tool_and_drive(world: World) -> None:
    r = _rover(world)
    FaultInjector(r, [ActuatorStall("tool", 0.0, 3.0), ActuatorStall("drive", 0.0, 2.0)])
    _drive(world, r, 0.3, 1.5, tool=0.6)
    state = r.tool.read()
    assert state is not None and state.stalled and abs(state.position_rad) < 0.3
    assert abs(r.true_pose().x_m) < 0.05  # drive locked
    _drive(world, r, 0.3, 3.0, tool=0.6)
    state = r.tool.read()
    assert state is not None and not state.stalled and state.position_rad > 0.5
    assert r.true_pose().x_m > 0.1


def test_command_delay_and_loss(world: World) -> None:
    r = _rover(world)
    FaultInjector(r, [CommandDelay(1.0, 0.0, 10.0), CommandLoss(10.0, 20.0)])
    r.drive.command(DriveCommand(world.time_s, 0.3, 0.0))
    world.run_until(0.9)
    assert r.drive.wheel_targets_radps == (0.0, 0.0)
    world.run_until(1.1)
    assert r.drive.wheel_targets_radps[0] > 0
    world.run_until(10.0)
    r.drive.command(DriveCommand(world.time_s, 0.3, 0.0))
    world.run_for(0.1)
    assert r.drive.wheel_targets_radps == (0.0, 0.0)


def test_frozen_camera_frame(world: World) -> None:
    r = _rover(world, SMALL_CAMERA)
    FaultInjector(r, [FrozenFrame("camera", 0.5, 2.0)])
    frames = []
    while world.time_s < 1.5:
        r.drive.command(DriveCommand(world.time_s, 0.0, 0.5))
        world.run_for(0.05)
        assert r.camera is not None
        f = r.camera.read()
        if f is not None:
            frames.append(f)
    early = [f for f in frames if f.stamp_s < 0.5]
    frozen = [f for f in frames if f.stamp_s > 0.7]
    assert early and len(frozen) >= 3
    assert all(np.array_equal(f.image_bgr, frozen[0].image_bgr) for f in frozen)
    assert len({f.stamp_s for f in frozen}) == len(frozen)


def test_invalid_fault_rejected(world: World) -> None:
    r = _rover(world)
    with pytest.raises(ValueError, match="delay_s"):
        FaultInjector(r, [CommandDelay(0.0, 1.0)])
    with pytest.raises(ValueError, match="start_s < end_s"):
        FaultInjector(r, [EncoderLoss(2.0, 1.0)])


def test_mission_fault_specs_convert_per_rover() -> None:
    """Every mission-file fault kind becomes the injector's dataclass; rover None applies to every rover."""
    from autonomy.mission.mission_file import FAULT_KINDS, parse_mission
    from sim.faults import fault_to_dict, faults_from_specs

    text = """
mission: faults
site:
  preset: uneven-plain
  size_m: [12.0, 12.0]
  beacons: [{id: 0, x_m: 5.0, y_m: 0.0, z_m: 0.5, size_m: 0.3, facing_yaw_rad: 3.1416}]
rovers:
  - {id: a, start: {x_m: 0.0, y_m: 0.0, yaw_rad: 0.0}}
  - {id: b, start: {x_m: 2.0, y_m: 0.0, yaw_rad: 0.0}}
waypoints: [{x_m: 1.0, y_m: 0.0}]
faults:
  - {kind: sensor_dropout, sensor: depth, start_s: 1, end_s: 2}
  - {kind: frozen_frame, sensor: camera, start_s: 2, rover: a}
  - {kind: imu_bias_step, start_s: 3, gyro_bias_radps: [0, 0, 0.01], rover: b}
  - {kind: encoder_loss, start_s: 4, end_s: 5}
  - {kind: low_friction_patch, box_m: [1, -1, 3, 1], friction: 0.05}
  - {kind: actuator_stall, actuator: tool, start_s: 6}
  - {kind: command_delay, delay_s: 0.3, start_s: 7, end_s: 8}
  - {kind: command_loss, start_s: 9, end_s: 10}
"""
    mission = parse_mission(text, "faults.yaml")
    assert {f.kind for f in mission.faults} == set(FAULT_KINDS)
    a = faults_from_specs(mission.faults, "a")
    b = faults_from_specs(mission.faults, "b")
    assert [type(f) for f in a] == [
        SensorDropout, FrozenFrame, EncoderLoss, LowFrictionPatch, ActuatorStall, CommandDelay, CommandLoss,
    ]  # fmt: skip
    assert ImuBiasStep in {type(f) for f in b} and FrozenFrame not in {type(f) for f in b}
    assert a[0] == SensorDropout("depth", 1.0, 2.0)
    assert a[3] == LowFrictionPatch(Box(1.0, -1.0, 3.0, 1.0), 0.05, 0.0)
    assert a[4] == ActuatorStall("tool", 6.0) and a[5] == CommandDelay(0.3, 7.0, 8.0)
    assert next(f for f in b if isinstance(f, ImuBiasStep)) == ImuBiasStep(3.0, (0.0, 0.0, 0.01))
    as_dicts = [fault_to_dict(f) for f in mission.faults]
    assert as_dicts[1] == {"kind": "frozen_frame", "start_s": 2.0, "end_s": None, "rover_id": "a", "sensor": "camera"}
    assert as_dicts[4]["box_m"] == [1.0, -1.0, 3.0, 1.0] and as_dicts[4]["friction"] == 0.05


def test_mission_faults_drive_the_injector(world: World) -> None:
    """A low-friction patch and a command loss from mission specs act on a rover like hand-made faults."""
    from autonomy.mission.mission_file import FaultSpec
    from sim.faults import faults_from_specs

    r = _rover(world)
    specs = (
        FaultSpec("command_loss", start_s=0.5, end_s=5.0, rover_id="r1"),
        FaultSpec("encoder_loss", 0.0, rover_id="x"),
    )
    FaultInjector(r, faults_from_specs(specs, "r1"))
    _drive(world, r, 0.3, 0.4)
    moving = r.drive.wheel_targets_radps
    _drive(world, r, 0.3, 1.0)  # commands lost: the command timeout stops the wheels
    assert moving != (0.0, 0.0) and r.drive.wheel_targets_radps == (0.0, 0.0)
    reading = r.wheels.read()
    assert reading is not None and reading.valid  # the other rover's encoder loss is not applied
    with pytest.raises(ValueError, match="sensor must be"):
        faults_from_specs((FaultSpec("sensor_dropout", 0.0, sensor="lidar"),), "r1")
