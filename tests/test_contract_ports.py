"""One contract suite for every backend of the hardware ports (fake and PyBullet).

A backend is correct when the same commands produce the same kind of readings: types and stamps,
encoders and gyro that agree with the motion, the command timeout, a camera that honours its rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from autonomy.msgs import (
    BatteryState,
    CameraFrame,
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
from hw import interfaces as ports
from hw.fakes import FakeClock, FakeRover, FlatGroundDepth, ReplayCamera, fake_rover_io
from hw.rover_io import RoverIO


@dataclass
class Backend:
    name: str
    io: RoverIO
    true_pose: Callable[[], Pose2D]
    # how closely the backend tracks commands (the fake is exact; physics slips)
    speed_tolerance: float


def _fake() -> Iterator[Backend]:
    from autonomy.msgs import CameraInfo

    clock = FakeClock()
    rover = FakeRover("rover1", clock, Pose2D(0.0, 0.0, 0.0))
    info = CameraInfo(64, 48, 50.0, 50.0, 32.0, 24.0)
    mount = Pose3D(0.4, 0.0, 0.6, roll_rad=-math.pi / 2 - 0.2, yaw_rad=-math.pi / 2)
    images = [np.full((48, 64, 3), i, np.uint8) for i in range(100)]
    io = fake_rover_io(rover, ReplayCamera(rover, info, mount, images, rate_hz=5.0))
    io.depth = FlatGroundDepth(rover, info, mount)
    yield Backend("fake", io, lambda: rover.pose, 0.01)


def _sim() -> Iterator[Backend]:
    pytest.importorskip("pybullet", reason="the sim extra (pybullet) is not installed")
    from sim.world import World

    world = World(seed=3, beacons=(), keep_clear_xy=[(0.0, 0.0), (3.0, 0.0)], size_m=(12.0, 12.0))
    try:
        rover = world.add_rover("rover1", Pose2D(0.0, 0.0, 0.0))
        world.clock.sleep_until(world.clock.now_s() + 0.5)  # settle on the ground
        yield Backend("sim", rover.io(), rover.true_pose, 0.25)
    finally:
        world.close()


@pytest.fixture(params=["fake", "sim"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from (_fake() if request.param == "fake" else _sim())


def _drive(b: Backend, v: float, w: float, seconds: float, hz: float = 20.0) -> None:
    clock = b.io.clock
    for _ in range(round(seconds * hz)):
        b.io.drive.command(DriveCommand(clock.now_s(), v, w))
        clock.sleep_until(clock.now_s() + 1.0 / hz)


def test_ports_satisfy_protocols(backend: Backend) -> None:
    io = backend.io
    assert isinstance(io.clock, ports.Clock)
    assert isinstance(io.wheels, ports.WheelEncoders)
    assert isinstance(io.imu, ports.Imu)
    assert isinstance(io.drive, ports.DriveBase)
    assert isinstance(io.camera, ports.Camera)
    assert isinstance(io.depth, ports.DepthSensor)
    assert isinstance(io.tool, ports.Tool)
    assert isinstance(io.battery, ports.Battery)
    assert isinstance(io.estop, ports.Estop)


def test_frame_types_and_stamps(backend: Backend) -> None:
    frame = backend.io.read()
    now = backend.io.clock.now_s()
    assert frame.rover_id == "rover1" and frame.stamp_s == now
    assert isinstance(frame.wheels, WheelEncoderReading) and frame.wheels.stamp_s == now
    assert isinstance(frame.imu, ImuReading) and frame.imu.stamp_s == now
    assert isinstance(frame.battery, BatteryState)
    assert isinstance(frame.tool, ToolState)
    assert isinstance(frame.estop, EstopState) and not frame.estop.engaged
    # IMU specific force at rest points up with lunar gravity
    assert frame.imu.linear_acceleration_mps2[2] == pytest.approx(1.62, abs=0.3)


def test_straight_drive_moves_encoders_and_pose(backend: Backend) -> None:
    w0 = backend.io.wheels.read()
    p0 = backend.true_pose()
    _drive(backend, 0.25, 0.0, 2.0)
    w1 = backend.io.wheels.read()
    p1 = backend.true_pose()
    assert w0 is not None and w1 is not None
    travelled = math.hypot(p1.x_m - p0.x_m, p1.y_m - p0.y_m)
    assert travelled == pytest.approx(0.5, rel=backend.speed_tolerance)
    r = backend.io.drive.wheel_radius_m
    for side in ("left_rad", "right_rad"):
        wheel_dist = (getattr(w1, side)() - getattr(w0, side)()) * r
        assert wheel_dist == pytest.approx(0.5, rel=backend.speed_tolerance)
    assert abs(p1.yaw_rad - p0.yaw_rad) < 0.05


def test_turn_in_place_gyro_agrees_with_truth(backend: Backend) -> None:
    p0 = backend.true_pose()
    rates = []
    clock = backend.io.clock
    for _ in range(40):  # 2 s at 0.5 rad/s
        backend.io.drive.command(DriveCommand(clock.now_s(), 0.0, 0.5))
        clock.sleep_until(clock.now_s() + 0.05)
        imu = backend.io.imu.read()
        assert imu is not None
        rates.append(imu.angular_velocity_radps[2])
    p1 = backend.true_pose()
    turned = math.remainder(p1.yaw_rad - p0.yaw_rad, math.tau)
    assert turned > 0.0  # counter-clockwise for a positive yaw rate (REP-103)
    gyro_integral = float(np.sum(rates[1:]) * 0.05)
    assert gyro_integral == pytest.approx(turned, abs=0.1)
    assert turned == pytest.approx(1.0, rel=max(0.35, backend.speed_tolerance))


def test_command_timeout_stops_the_rover(backend: Backend) -> None:
    _drive(backend, 0.3, 0.0, 1.0)
    clock = backend.io.clock
    clock.sleep_until(clock.now_s() + backend.io.drive.command_timeout_s + 0.7)  # no more commands
    p0 = backend.true_pose()
    clock.sleep_until(clock.now_s() + 1.0)
    p1 = backend.true_pose()
    assert math.hypot(p1.x_m - p0.x_m, p1.y_m - p0.y_m) < 0.02


def test_camera_honours_its_rate_and_info(backend: Backend) -> None:
    cam = backend.io.camera
    assert cam is not None
    clock = backend.io.clock
    frames: list[CameraFrame] = []
    for _ in range(20):  # 1 s of 20 Hz ticks
        f = cam.read()
        if f is not None:
            frames.append(f)
        clock.sleep_until(clock.now_s() + 0.05)
    assert 2 <= len(frames) <= 12  # camera rates are below the control rate
    for f in frames:
        assert f.image_bgr.shape == (cam.info.height_px, cam.info.width_px, 3)
        assert f.info == cam.info and f.mount == cam.mount


def test_depth_sees_the_ground(backend: Backend) -> None:
    depth = backend.io.depth
    assert depth is not None
    f = None
    for _ in range(10):
        f = depth.read()
        if f is not None:
            break
        backend.io.clock.sleep_until(backend.io.clock.now_s() + 0.05)
    assert isinstance(f, DepthFrame)
    bottom_row = f.depth_m[-1]
    finite = bottom_row[np.isfinite(bottom_row)]
    assert finite.size > 0.5 * bottom_row.size
    assert 0.3 < float(np.median(finite)) < 5.0  # the ground a little ahead of the rover


def test_tool_follows_command_and_battery_integrates(backend: Backend) -> None:
    tool = backend.io.tool
    assert tool is not None and backend.io.battery is not None
    b0 = backend.io.battery.read()
    clock = backend.io.clock
    tool.command(ToolCommand(clock.now_s(), 0.3))
    _drive(backend, 0.2, 0.0, 1.5)
    state = tool.read()
    assert state is not None and state.position_rad == pytest.approx(0.3, abs=0.08)
    b1 = backend.io.battery.read()
    assert b0 is not None and b1 is not None
    assert b1.energy_used_wh > b0.energy_used_wh
    assert b1.state_of_charge <= b0.state_of_charge
