"""The PyBullet backend: world building, lockstep clock, skid-steer tracking and sensor models (headless)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pybullet")

from autonomy.estimation.landmark_ekf import LandmarkEkf, LandmarkEkfParams
from autonomy.estimation.odometry import TurnPivot, WheelImuOdometry
from autonomy.msgs import (
    CameraFrame,
    DepthFrame,
    DriveCommand,
    Landmark,
    Pose2D,
    Pose3D,
    SensorFrame,
    ToolCommand,
)
from hw.interfaces import (
    Battery,
    Camera,
    Clock,
    DepthSensor,
    DriveBase,
    Estop,
    Imu,
    Tool,
    WheelEncoders,
)
from hw.rover_io import RoverIO
from sim.backend import TURN_PIVOT_M_PER_N, TURN_PIVOT_MAX_M, SimRover, SimSensorProfile, camera_optical_mount
from sim.world import World, point_to_polyline_distance_m

CONTROL_HZ = 20.0
SMALL = (12.0, 12.0)
PATH = [(-1.0, 0.0), (4.0, 0.0), (4.0, 3.0)]


def _world(seed: int = 7, **kw: object) -> World:
    kw.setdefault("beacons", [])
    kw.setdefault("keep_clear_xy", PATH)
    kw.setdefault("size_m", SMALL)
    return World(seed=seed, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world() -> Iterator[World]:
    w = _world()
    yield w
    w.close()


def drive(world: World, rover: SimRover, v_mps: float, w_radps: float, duration_s: float) -> list[Pose2D]:
    """Lockstep loop at CONTROL_HZ: command, sleep until the next tick; the poses seen at every tick."""
    poses = [rover.true_pose()]
    clock = world.clock
    end = clock.now_s() + duration_s
    while clock.now_s() < end - 1e-9:
        rover.drive.command(DriveCommand(clock.now_s(), v_mps, w_radps))
        clock.sleep_until(clock.now_s() + 1.0 / CONTROL_HZ)
        poses.append(rover.true_pose())
    return poses


def yaw_travelled(poses: list[Pose2D]) -> float:
    return float(np.unwrap([p.yaw_rad for p in poses])[-1] - poses[0].yaw_rad)


# --------------------------------------------------------------------------------------------------
# World
# --------------------------------------------------------------------------------------------------


def test_same_seed_same_world_and_same_run() -> None:
    runs = []
    for _ in range(2):
        with _world(seed=11) as w:
            r = w.add_rover("a", Pose2D(0.0, 0.0, 0.1))
            drive(w, r, 0.3, 0.2, 2.0)
            frame = r.io().read()
            assert frame.camera is not None and frame.imu is not None and frame.wheels is not None
            image = frame.camera.image_bgr
            runs.append((w.heights_m, w.rocks, r.true_pose3d(), frame.imu, frame.wheels, image))
    (h1, rocks1, pose1, imu1, enc1, img1), (h2, rocks2, pose2, imu2, enc2, img2) = runs
    assert np.array_equal(h1, h2)
    assert [(k.x_m, k.y_m, k.radius_m) for k in rocks1] == [(k.x_m, k.y_m, k.radius_m) for k in rocks2]
    assert pose1 == pose2
    assert imu1 == imu2 and enc1 == enc2
    assert np.array_equal(img1, img2)
    with _world(seed=12) as other:
        assert not np.array_equal(other.heights_m, h1)


def test_terrain_is_gently_uneven_and_matches_the_physics(world: World) -> None:
    h = world.heights_m
    assert 0.005 < float(h.max() - h.min()) < 0.08
    assert abs(float(h.mean())) < 1e-6
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(-5.5, 5.5, 200), rng.uniform(-5.5, 5.5, 200)
    hits = world.client.rayTestBatch([[x, y, 1.0] for x, y in zip(xs, ys, strict=True)],
                                     [[x, y, -1.0] for x, y in zip(xs, ys, strict=True)])  # fmt: skip
    on_terrain = np.array([hit[0] == world.terrain_body_id for hit in hits])
    z_ray = np.array([hit[3][2] for hit in hits])
    assert on_terrain.mean() > 0.95
    assert np.abs(z_ray[on_terrain] - world.ground_heights_m(xs[on_terrain], ys[on_terrain])).max() < 1e-3
    assert world.ground_height_m(0.0, 0.0) == pytest.approx(float(world.ground_heights_m([0.0], [0.0])[0]))


def test_rocks_keep_clear_of_path_and_beacons() -> None:
    beacons = [Landmark(3, 2.0, -2.5, 0.45, 0.15, math.pi / 2)]
    for seed in range(4):
        with _world(seed=seed, beacons=beacons, keep_clear_radius_m=1.2) as w:
            assert 5 <= len(w.rocks) <= 8
            xy = np.array([[r.x_m, r.y_m] for r in w.rocks])
            radii = np.array([r.radius_m for r in w.rocks])
            assert np.all((radii >= 0.05) & (radii <= 0.2))
            assert np.all(point_to_polyline_distance_m(xy, np.array(PATH)) >= 1.2 + radii)
            assert np.all(np.hypot(xy[:, 0] - 2.0, xy[:, 1] + 2.5) >= 1.0 + radii)
            # The bodies really are where the records say: rays cast at each rock from 16 sides (from just
            # outside it, so terrain bumps do not block them) hit it within its recorded radius.
            angles = np.linspace(0.0, 2 * math.pi, 16, endpoint=False)
            for rock in w.rocks:
                z = w.ground_height_m(rock.x_m, rock.y_m) + 0.5 * rock.height_m
                out = rock.radius_m + 0.05
                starts = [[rock.x_m + out * math.cos(a), rock.y_m + out * math.sin(a), z] for a in angles]
                hits = w.client.rayTestBatch(starts, [[rock.x_m, rock.y_m, z]] * len(angles))
                on_rock = [hit for hit in hits if hit[0] == rock.body_id]
                assert len(on_rock) >= 12
                reach = [math.hypot(hit[3][0] - rock.x_m, hit[3][1] - rock.y_m) for hit in on_rock]
                assert max(reach) <= rock.radius_m + 1e-3


def test_impossible_rock_placement_raises() -> None:
    with pytest.raises(ValueError, match="rocks"):
        World(seed=1, beacons=[], keep_clear_xy=[(0.0, 0.0)], keep_clear_radius_m=20.0, size_m=(6.0, 6.0))


def test_close_releases_the_world() -> None:
    w = _world()
    assets = w.asset_dir
    assert any(assets.iterdir())
    w.close()
    w.close()  # idempotent
    assert not Path(assets).exists()
    with pytest.raises(RuntimeError, match="closed"):
        w.step()


# --------------------------------------------------------------------------------------------------
# Rover, clock and skid-steer
# --------------------------------------------------------------------------------------------------


def test_rover_model_from_urdf(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    assert r.mass_kg <= 80.0
    assert r.wheel_radius_m == pytest.approx(0.15)
    assert r.track_width_m == pytest.approx(0.6)
    wheels = [f"{end}_{side}_wheel_joint" for end in ("front", "rear") for side in ("left", "right")]
    assert set(r.joint_index) >= {*wheels, "bucket_joint"}
    with pytest.raises(ValueError, match="already exists"):
        world.add_rover("a", Pose2D(2.0, 0.0, 0.0))
    rock = world.rocks[0]
    with pytest.raises(ValueError, match="rock"):
        world.add_rover("on_a_rock", Pose2D(rock.x_m + 0.3, rock.y_m, 0.0))
    with pytest.raises(ValueError, match="off the terrain"):
        world.add_rover("far", Pose2D(50.0, 0.0, 0.0))


def test_ports_implement_the_protocols(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    io = r.io()
    assert isinstance(io, RoverIO) and io.rover_id == "a"
    assert isinstance(world.clock, Clock)
    assert isinstance(r.wheels, WheelEncoders) and isinstance(r.imu, Imu) and isinstance(r.drive, DriveBase)
    assert isinstance(r.camera, Camera) and isinstance(r.depth, DepthSensor) and isinstance(r.tool, Tool)
    assert isinstance(r.battery, Battery) and isinstance(r.estop, Estop)
    assert r.drive.command_timeout_s == 0.5
    frame = io.read()
    assert isinstance(frame, SensorFrame) and frame.stamp_s == 0.0
    assert frame.camera is not None and frame.depth is not None and frame.battery is not None
    assert frame.estop is not None and not frame.estop.engaged


def test_clock_steps_physics_in_lockstep(world: World) -> None:
    clock = world.clock
    assert clock.now_s() == 0.0
    clock.sleep_until(0.05)
    assert world.steps == 12 and clock.now_s() == pytest.approx(0.05)
    clock.sleep_until(0.01)  # the past: nothing happens
    assert world.steps == 12
    clock.sleep_until(0.051)  # to the next whole step
    assert world.steps == 13


def test_drive_straight_tracks_speed(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    drive(world, r, 0.3, 0.0, 1.0)  # spin up
    poses = drive(world, r, 0.3, 0.0, 5.0)
    p0, p1 = poses[0], poses[-1]
    speed = math.hypot(p1.x_m - p0.x_m, p1.y_m - p0.y_m) / 5.0
    assert speed == pytest.approx(0.3, rel=0.05)
    assert abs(p1.y_m) < 0.1 and abs(yaw_travelled(poses)) < 0.05
    p3 = r.true_pose3d()
    assert abs(p3.roll_rad) < 0.1 and abs(p3.pitch_rad) < 0.1  # upright
    assert abs(p3.z_m - world.ground_height_m(p3.x_m, p3.y_m)) < 0.05  # on the ground, not bouncing
    v, w = r.true_twist()
    assert v == pytest.approx(0.3, abs=0.03) and abs(w) < 0.05


@pytest.mark.parametrize("yaw_rate", [0.5, -0.5])
def test_turn_in_place_tracks_yaw_rate(world: World, yaw_rate: float) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    drive(world, r, 0.0, yaw_rate, 0.5)
    poses = drive(world, r, 0.0, yaw_rate, 4.0)
    ratio = yaw_travelled(poses) / (yaw_rate * 4.0)
    assert 0.85 < ratio < 1.05
    assert poses[-1].distance_to_m(0.0, 0.0) < 0.15  # turns on the spot
    p3 = r.true_pose3d()
    assert abs(p3.roll_rad) < 0.1 and abs(p3.pitch_rad) < 0.1


def test_arc_follows_twist(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    drive(world, r, 0.3, 0.3, 0.5)
    poses = drive(world, r, 0.3, 0.3, 4.0)
    path = sum(math.hypot(b.x_m - a.x_m, b.y_m - a.y_m) for a, b in itertools.pairwise(poses))
    assert path / 4.0 == pytest.approx(0.3, rel=0.12)
    assert yaw_travelled(poses) / 1.2 == pytest.approx(1.0, abs=0.15)


def test_command_timeout_stops_the_rover(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    drive(world, r, 0.3, 0.0, 1.0)
    world.clock.sleep_until(world.clock.now_s() + 0.45)
    assert r.drive.wheel_targets_radps == pytest.approx((2.0, 2.0))  # still within the timeout
    world.clock.sleep_until(world.clock.now_s() + 0.1)
    assert r.drive.wheel_targets_radps == (0.0, 0.0)
    world.clock.sleep_until(world.clock.now_s() + 1.0)
    stopped_at = r.true_pose()
    world.clock.sleep_until(world.clock.now_s() + 2.0)
    assert r.true_pose().distance_to_m(stopped_at.x_m, stopped_at.y_m) < 0.01
    assert abs(r.true_twist()[0]) < 0.01


def test_estop_stops_and_ignores_commands(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    assert not r.estop.read().engaged
    drive(world, r, 0.3, 0.0, 1.0)
    r.set_estop(True)
    assert r.estop.read().engaged
    start = r.true_pose()
    drive(world, r, 0.3, 0.0, 2.0)
    assert r.true_pose().distance_to_m(start.x_m, start.y_m) < 0.1  # only the braking distance
    r.set_estop(False)
    moved = drive(world, r, 0.3, 0.0, 1.0)
    assert moved[-1].distance_to_m(moved[0].x_m, moved[0].y_m) > 0.2


def test_rovers_share_a_world() -> None:
    with _world() as w:
        a = w.add_rover("a", Pose2D(0.0, 0.0, 0.0))
        b = w.add_rover("b", Pose2D(4.0, 2.0, math.pi))
        a.drive.command(DriveCommand(0.0, 0.3, 0.0))
        b.drive.command(DriveCommand(0.0, 0.0, 0.5))
        w.clock.sleep_until(0.4)
        a.drive.command(DriveCommand(0.4, 0.3, 0.0))
        b.drive.command(DriveCommand(0.4, 0.0, 0.5))
        w.clock.sleep_until(0.8)
        assert a.true_pose().x_m > 0.1 and abs(a.true_pose().yaw_rad) < 0.05
        assert b.true_pose().distance_to_m(4.0, 2.0) < 0.1 and abs(b.true_pose().yaw_rad) < math.pi - 0.1
        assert a.imu.gyro_bias_radps.tolist() != b.imu.gyro_bias_radps.tolist()  # noise seeded per rover


# --------------------------------------------------------------------------------------------------
# Proprioception
# --------------------------------------------------------------------------------------------------


def test_imu_gyro_and_accelerometer(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    world.clock.sleep_until(0.5)
    imu = r.imu.read()
    assert imu.linear_acceleration_mps2[2] == pytest.approx(1.62, abs=0.1)  # lunar gravity at rest
    assert abs(imu.angular_velocity_radps[2]) < 0.02
    drive(world, r, 0.0, 0.5, 1.0)
    gyro, true_rate = [], []
    clock = world.clock
    last = r.true_pose()
    for _ in range(60):
        r.drive.command(DriveCommand(clock.now_s(), 0.0, 0.5))
        clock.sleep_until(clock.now_s() + 1.0 / CONTROL_HZ)
        pose = r.true_pose()
        true_rate.append(math.remainder(pose.yaw_rad - last.yaw_rad, 2 * math.pi) * CONTROL_HZ)
        gyro.append(r.imu.read().angular_velocity_radps[2])
        last = pose
    # bias <= 0.002, white noise 0.002 / sqrt(60); terrain bumps add a little
    assert np.mean(gyro) == pytest.approx(np.mean(true_rate), abs=0.01)
    assert np.std(np.array(gyro) - np.array(true_rate)) < 0.05
    assert np.mean(gyro) > 0.4


def test_encoders_match_motion(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    tick = 2 * math.pi / 4096
    e0, p0 = r.wheels.read(), r.true_pose()
    drive(world, r, 0.3, 0.0, 4.0)
    e1, p1 = r.wheels.read(), r.true_pose()
    for value in (e1.front_left_rad, e1.front_right_rad, e1.rear_left_rad, e1.rear_right_rad):
        assert value / tick == pytest.approx(round(value / tick), abs=1e-6)  # quantised
    travelled = 0.5 * ((e1.left_rad() - e0.left_rad()) + (e1.right_rad() - e0.right_rad())) * 0.15
    assert travelled == pytest.approx(p1.distance_to_m(p0.x_m, p0.y_m), rel=0.05)
    assert e1.left_rad() > 0 and e1.right_rad() > 0  # positive drives forward
    # In a turn the wheel differential gives the commanded rotation; slip makes the true one a bit less.
    e2, y2 = r.wheels.read(), r.true_pose().yaw_rad
    poses = drive(world, r, 0.0, 0.5, 3.0)
    e3 = r.wheels.read()
    enc_yaw = ((e3.right_rad() - e2.right_rad()) - (e3.left_rad() - e2.left_rad())) * 0.15 / 0.6
    assert enc_yaw == pytest.approx(1.5, rel=0.05)
    assert 0.8 * enc_yaw < yaw_travelled(poses) <= 1.02 * enc_yaw
    assert y2 == poses[0].yaw_rad


def test_a_loaded_rover_turns_about_its_front_axle_and_the_odometry_follows(world: World) -> None:
    """With a full bucket the rover's turns in place pivot near the front axle (``sim.backend.TURN_PIVOT_*``):
    base_link swings sideways by decimetres. The EKF fed the pivot from the tool's load tracks it within a few
    cm; the same odometry turning about base_link is off by the whole swing."""
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    r.bucket.contents_m3 = r.bucket.capacity_m3
    r._update_payload()
    drive(world, r, 0.0, 0.0, 1.0)  # settle
    pivot = TurnPivot(TURN_PIVOT_M_PER_N, TURN_PIVOT_MAX_M)
    load = r.tool.read().load_n
    assert pivot.pivot_x_m(load) == pytest.approx(TURN_PIVOT_MAX_M)  # a full bucket: at the front axle
    start = r.true_pose()
    cov = np.diag([1e-4, 1e-4, 1e-4]).tolist()
    prm = LandmarkEkfParams(yaw_rate_bias_sigma_radps=0.0)
    with_pivot, without = LandmarkEkf(start, cov, (), prm), LandmarkEkf(start, cov, (), prm)
    odo = WheelImuOdometry(r.drive.wheel_radius_m, r.drive.track_width_m, gyro_trapezoid=True)
    odo.update(r.wheels.read(), r.imu.read())
    clock = world.clock
    for w, seconds in ((0.6, 1.5), (0.0, 0.5), (-0.6, 1.5), (0.0, 0.5), (-0.6, 1.0), (0.0, 0.5)):
        end = clock.now_s() + seconds
        while clock.now_s() < end - 1e-9:
            r.drive.command(DriveCommand(clock.now_s(), 0.0, w))
            clock.sleep_until(clock.now_s() + 1.0 / CONTROL_HZ)
            delta = odo.update(r.wheels.read(), r.imu.read())
            if delta is not None:
                t = clock.now_s()
                with_pivot.predict(t, delta[0], delta[1], pivot_x_m=pivot.pivot_x_m(r.tool.read().load_n))
                without.predict(t, delta[0], delta[1])
    end_pose = r.true_pose()
    swing = end_pose.distance_to_m(start.x_m, start.y_m)
    assert swing > 0.12  # base_link moved sideways on the arc about the pivot
    err_pivot = end_pose.distance_to_m(*with_pivot.mean[:2])
    err_plain = end_pose.distance_to_m(*without.mean[:2])
    assert err_pivot < 0.04
    assert err_plain > 0.8 * swing


def test_tool_and_battery(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    b0 = r.battery.read()
    assert b0.state_of_charge == 1.0 and b0.energy_used_wh == 0.0
    r.tool.command(ToolCommand(0.0, -0.4))
    world.clock.sleep_until(1.0)
    state = r.tool.read()
    assert state.position_rad == pytest.approx(-0.4, abs=0.02)
    assert 0.0 <= state.load_n < 5.0 and not state.stalled  # carrying nothing
    idle = r.battery.read()
    drive(world, r, 0.4, 0.0, 3.0)
    b1 = r.battery.read()
    hotel_wh = 25.0 * 1.0 / 3600.0
    assert idle.energy_used_wh == pytest.approx(hotel_wh, rel=0.2)
    assert b1.energy_used_wh > idle.energy_used_wh + 3 * hotel_wh
    assert b1.state_of_charge < 1.0 and 22.0 < b1.voltage_v < 28.0 and b1.current_a > 0


# --------------------------------------------------------------------------------------------------
# Camera and depth
# --------------------------------------------------------------------------------------------------


BeaconScene = tuple[World, SimRover, CameraFrame, DepthFrame]
TAG = Landmark(tag_id=5, x_m=2.2, y_m=0.25, z_m=0.45, size_m=0.2, facing_yaw_rad=math.pi)


def _detect(image: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    params = cv2.aruco.DetectorParameters()
    # Without sub-pixel refinement ArUco's corners sit about half a pixel inside the black border.
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
    detector = cv2.aruco.ArucoDetector(dictionary, params)
    corners, ids, _ = detector.detectMarkers(image)
    return [c.reshape(4, 2) for c in corners], ([] if ids is None else [int(i) for i in ids.ravel()])


@pytest.fixture
def beacon_world() -> Iterator[BeaconScene]:
    w = _world(beacons=[TAG], keep_clear_xy=[(0.0, 0.0), (2.0, 0.0)])
    r = w.add_rover("a", Pose2D(0.0, 0.0, 0.05))
    w.clock.sleep_until(0.5)  # settle
    frame = r.camera.read() if r.camera is not None else None
    depth = r.depth.read() if r.depth is not None else None
    assert frame is not None and depth is not None
    yield w, r, frame, depth
    w.close()


def test_camera_frames_types_and_rate(world: World) -> None:
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0))
    assert r.camera is not None and r.depth is not None
    info = r.camera.info
    assert (info.width_px, info.height_px) == (640, 480)
    assert info.fx_px == pytest.approx(320.0 / math.tan(math.radians(35.0)))
    assert info.fy_px == info.fx_px and info.cx_px == 320.0 and info.cy_px == 240.0
    stamps, depth_stamps = [], []
    clock = world.clock
    for _ in range(21):  # 1 s of a 20 Hz loop
        frame, depth = r.camera.read(), r.depth.read()
        if frame is not None:
            assert frame.image_bgr.shape == (480, 640, 3) and frame.image_bgr.dtype == np.uint8
            assert frame.camera_id == "front" and frame.mount == r.camera.mount and frame.info == info
            stamps.append(frame.stamp_s)
        if depth is not None:
            assert depth.depth_m.shape == (120, 160) and depth.depth_m.dtype == np.float32
            assert depth.info == r.depth.info and depth.info.fx_px == pytest.approx(info.fx_px / 4)
            depth_stamps.append(depth.stamp_s)
        clock.sleep_until(clock.now_s() + 1.0 / CONTROL_HZ)
    assert stamps == pytest.approx([0.0, 0.35, 0.7, 1.0])  # 3 Hz on the 20 Hz control ticks (first tick due)
    assert depth_stamps == stamps  # the depth image is the camera render's z-buffer, decimated 4x
    assert r.camera.read() is None  # not due again yet


def test_camera_mount_is_the_optical_frame() -> None:
    m = camera_optical_mount(0.3, 0.0, 0.6, pitch_down_rad=math.radians(10.0))
    r = m.rotation()
    # optical z looks forward and 10 degrees down, x points right (-y of base_link), y down-ish
    assert r[:, 2] == pytest.approx([math.cos(math.radians(10)), 0.0, -math.sin(math.radians(10))])
    assert r[:, 0] == pytest.approx([0.0, -1.0, 0.0])
    assert r[:, 1] @ np.array([0.0, 0.0, 1.0]) < -0.9
    assert SimSensorProfile().camera_mount == m


def test_beacon_detected_with_its_id_and_pose(beacon_world: BeaconScene) -> None:
    _, r, frame, _ = beacon_world
    corners, ids = _detect(frame.image_bgr)
    assert ids == [TAG.tag_id]
    c = corners[0]
    # Corners top-left, top-right, bottom-right, bottom-left: the texture is neither mirrored nor rotated.
    assert c[0, 0] < c[1, 0] and c[0, 1] < c[3, 1] and c[2, 0] > c[3, 0] and c[2, 1] > c[1, 1]
    s = TAG.size_m / 2
    obj = np.array([[-s, s, 0.0], [s, s, 0.0], [s, -s, 0.0], [-s, -s, 0.0]])
    ok, _, tvec = cv2.solvePnP(
        obj, c.astype(np.float64), frame.info.matrix(), np.array(frame.info.distortion),
        flags=cv2.SOLVEPNP_IPPE_SQUARE,
    )  # fmt: skip
    assert ok
    in_base = frame.mount.rotation() @ tvec.ravel() + frame.mount.translation()
    pose = r.true_pose3d()
    in_map = pose.rotation() @ in_base + pose.translation()
    assert np.linalg.norm(in_map - np.array([TAG.x_m, TAG.y_m, TAG.z_m])) < 0.03


def test_camera_info_matches_the_render(beacon_world: BeaconScene) -> None:
    """Project the tag's true corners with CameraInfo, mount and true pose: they land on the detected ones."""
    _, r, frame, _ = beacon_world
    corners, _ = _detect(frame.image_bgr)
    pose = r.true_pose3d()
    n = np.array([math.cos(TAG.facing_yaw_rad), math.sin(TAG.facing_yaw_rad), 0.0])
    right = np.array([-n[1], n[0], 0.0])  # the viewer's right when facing the tag
    up = np.array([0.0, 0.0, 1.0])
    centre = np.array([TAG.x_m, TAG.y_m, TAG.z_m])
    s = TAG.size_m / 2
    world_corners = [centre - s * right + s * up, centre + s * right + s * up,
                     centre + s * right - s * up, centre - s * right - s * up]  # fmt: skip
    r_cam = pose.rotation() @ frame.mount.rotation()
    p_cam = pose.rotation() @ frame.mount.translation() + pose.translation()
    pts = np.array([r_cam.T @ (p - p_cam) for p in world_corners])
    projected = (frame.info.matrix() @ (pts / pts[:, 2:3]).T).T[:, :2]
    assert np.abs(projected - corners[0]).max() < 1.0


def test_depth_of_a_known_object(beacon_world: BeaconScene) -> None:
    _, r, frame, depth = beacon_world
    assert depth.stamp_s == frame.stamp_s
    corners, _ = _detect(frame.image_bgr)
    k = frame.info.width_px // depth.info.width_px  # depth pixel (u, v) is camera pixel (k u + k // 2, ...)
    u, v = np.round((corners[0].mean(axis=0) - k // 2) / k).astype(int)
    pose = r.true_pose3d()
    r_cam = pose.rotation() @ depth.mount.rotation()
    p_cam = pose.rotation() @ depth.mount.translation() + pose.translation()
    expected_z = float((r_cam.T @ (np.array([TAG.x_m, TAG.y_m, TAG.z_m]) - p_cam))[2])
    assert float(depth.depth_m[v, u]) == pytest.approx(expected_z, abs=0.03)
    d = depth.depth_m
    assert np.all(np.isnan(d[:5]))  # sky above the horizon: no return
    assert np.all(frame.image_bgr[:20] < 20)  # and black
    ground = d[-10:]  # the nearest ground, seen past the bucket
    assert np.nanmin(ground) > 0.3 and np.nanmax(ground) < 3.0
    assert not np.any(d <= 0.0)


def test_pose3d_round_trip_of_the_default_mount() -> None:
    m = SimSensorProfile().camera_mount
    again = Pose3D(m.x_m, m.y_m, m.z_m, m.roll_rad, m.pitch_rad, m.yaw_rad)
    assert np.allclose(again.rotation(), m.rotation())


def test_render_matches_camera_info_to_the_pixel(world: World) -> None:
    """A floating board in view: the pixels the render shows it in are exactly those whose centres the
    CameraInfo + mount + true pose put inside its projected outline (edges may differ by a pixel).
    The depth sensor at the camera's full resolution (decimation 1) shows the camera render's pixels."""
    r = world.add_rover("a", Pose2D(0.0, 0.0, 0.0), SimSensorProfile(depth_width_px=640, depth_height_px=480))
    world.clock.sleep_until(0.5)
    c = world.client
    half = [0.01, 0.35, 0.2]
    centre = np.array([1.6, -0.1, 0.55])
    c.createMultiBody(
        baseMass=0.0,
        baseVisualShapeIndex=c.createVisualShape(c.GEOM_BOX, halfExtents=half, rgbaColor=[1, 1, 1, 1]),
        basePosition=centre.tolist(),
    )
    depth = r.depth.read() if r.depth is not None else None
    assert depth is not None
    info, pose = depth.info, r.true_pose3d()
    r_cam = pose.rotation() @ depth.mount.rotation()
    p_cam = pose.rotation() @ depth.mount.translation() + pose.translation()
    # Rendered: back-project every pixel with its depth; the board's face is the plane x = centre x - 0.01.
    v, u = np.mgrid[0 : info.height_px, 0 : info.width_px]
    rays = np.stack([(u - info.cx_px) / info.fx_px, (v - info.cy_px) / info.fy_px, np.ones(u.shape)], -1)
    points = (rays * depth.depth_m[..., None]) @ r_cam.T + p_cam
    on_plane = np.abs(points[..., 0] - (centre[0] - half[0])) < 0.005
    rendered = on_plane & (np.abs(points[..., 1] - centre[1]) < half[1] + 0.05)
    rendered &= np.abs(points[..., 2] - centre[2]) < half[2] + 0.05  # not the ground at the same x
    # Predicted: pixel centres inside the projected face (a convex quadrilateral).
    corners = ((1, 1), (-1, 1), (-1, -1), (1, -1))
    face = [centre + np.array([-half[0], sy * half[1], sz * half[2]]) for sy, sz in corners]
    cam = np.array([r_cam.T @ (q - p_cam) for q in face])
    quad = (info.matrix() @ (cam / cam[:, 2:3]).T).T[:, :2]
    inside = np.ones(u.shape, dtype=bool)
    e1, e2 = quad[1] - quad[0], quad[2] - quad[1]
    orientation = np.sign(e1[0] * e2[1] - e1[1] * e2[0])
    for a, b in zip(quad, np.roll(quad, -1, axis=0), strict=True):
        inside &= orientation * ((b[0] - a[0]) * (v - a[1]) - (b[1] - a[1]) * (u - a[0])) >= 0
    assert inside.sum() > 10_000
    mismatch = rendered ^ inside
    assert mismatch.sum() < 0.01 * inside.sum()
    # Mismatches only on the outline: eroding the prediction by one pixel leaves none.
    core = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.all(rendered[core]) and not np.any(rendered & ~grown)


def test_decimated_depth_matches_a_depth_render_of_its_own() -> None:
    """The default depth (the camera render's z-buffer every 4th pixel) and a depth sensor rendering its own
    160x120 image (another rate) agree pixel for pixel: one set of intrinsics, ``depth_info``."""
    shared = SimSensorProfile()
    own = SimSensorProfile(depth_rate_hz=10.0)
    assert shared.depth_decimation() == 4 and own.depth_decimation() is None
    assert shared.depth_info() == own.depth_info()
    images = []
    for profile in (shared, own):
        with _world(beacons=[TAG], keep_clear_xy=[(0.0, 0.0), (2.0, 0.0)]) as w:
            r = w.add_rover("a", Pose2D(0.0, 0.0, 0.05), profile)
            w.clock.sleep_until(0.5)
            assert r.depth is not None
            f = r.depth.read()
            assert f is not None and f.depth_m.shape == (120, 160)
            images.append(f)
    a, b = images
    assert a.info == SimSensorProfile().depth_info()
    both = np.isfinite(a.depth_m) & np.isfinite(b.depth_m)
    assert both.sum() > 0.5 * a.depth_m.size
    assert np.mean(np.isfinite(a.depth_m) != np.isfinite(b.depth_m)) < 0.01
    diff = np.abs(a.depth_m[both] - b.depth_m[both])
    assert float(np.median(diff)) < 0.005 and float(np.quantile(diff, 0.95)) < 0.05


def test_depth_profile_is_validated() -> None:
    with pytest.raises(ValueError, match="depth size"):
        SimSensorProfile(depth_width_px=0)
    with pytest.raises(ValueError, match="depth_rate_hz"):
        SimSensorProfile(depth_rate_hz=0.0)
    assert SimSensorProfile(depth_width_px=100, depth_height_px=75).depth_decimation() is None
    assert SimSensorProfile(camera_enabled=False).depth_decimation() is None


def test_camera_on_demand_renders_only_when_a_fiducial_could_be_in_view() -> None:
    # camera_render="fiducials": no RGB frame while the tag is behind the rover (the depth stream goes on at
    # its rate from its own render); frames again once the rover faces the tag
    w = _world(beacons=[TAG], keep_clear_xy=[(0.0, 0.0), (2.0, 0.0)])
    try:
        r = w.add_rover("a", Pose2D(0.0, 0.0, math.pi), SimSensorProfile(camera_render="fiducials"))
        assert r.camera is not None and r.depth is not None
        frames, depths = [], []
        for _ in range(21):
            frames.append(r.camera.read())
            depths.append(r.depth.read())
            w.clock.sleep_until(w.clock.now_s() + 1.0 / CONTROL_HZ)
        assert all(f is None for f in frames)
        got = [d for d in depths if d is not None]
        assert len(got) == 4 and all(d.depth_m.shape == (120, 160) for d in got)
        assert np.isfinite(got[-1].depth_m).mean() > 0.3  # the ground ahead is seen
        w.close()
        w = _world(beacons=[TAG], keep_clear_xy=[(0.0, 0.0), (2.0, 0.0)])
        r = w.add_rover("a", Pose2D(0.0, 0.0, 0.05), SimSensorProfile(camera_render="fiducials"))
        assert r.camera is not None
        frame = r.camera.read()
        assert frame is not None and 5 in _detect(frame.image_bgr)[1]
    finally:
        w.close()
