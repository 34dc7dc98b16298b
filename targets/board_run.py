"""``rover run --board NAME``: the real stack on a board. Builds the ports from the board profile (MCU link
over serial, IMU over I2C, camera through OpenCV), then runs the same ``RoverLoop`` and ``Pipeline`` as the
simulator, on the wall clock. Nothing here imports pybullet; a missing device raises ``DeviceError``."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack

from autonomy.mission.mission_file import Mission
from autonomy.msgs import CameraInfo, Pose3D
from autonomy.runtime.loop import LoopResult, RoverLoop
from autonomy.runtime.pipeline import Pipeline, RoverGeometry, mission_pipeline_config
from autonomy.runtime.profiler import StageProfiler
from hw.interfaces import Camera, Clock, DeviceError, Imu
from hw.rover_io import RoverIO
from targets.board_profile import BoardProfile, load_calibration


class WallClock:
    """The board's clock: monotonic wall time (``time.perf_counter``), sleeping until each tick."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    def now_s(self) -> float:
        return time.perf_counter() - self._t0

    def sleep_until(self, t_s: float) -> None:
        ahead = t_s - self.now_s()
        if ahead > 0.0:
            time.sleep(ahead)


def build_camera(profile: BoardProfile, clock: Clock, stack: ExitStack) -> Camera | None:
    cam = profile.camera
    if cam.driver == "none":
        return None
    if cam.driver == "sim":
        raise DeviceError(f"{profile.source}: camera.driver 'sim' runs only under `rover sim run`")
    from hw.drivers.camera import OpenCvCamera, jetson_csi_pipeline, libcamera_pipeline

    if cam.calibration is None:
        raise DeviceError(f"{profile.source}: camera.calibration: required for driver {cam.driver!r}")
    c = load_calibration(cam.calibration)
    info = CameraInfo(
        cam.width,
        cam.height,
        float(c["fx"]),
        float(c["fy"]),
        float(c["cx"]),
        float(c["cy"]),
        tuple(float(d) for d in c.get("distortion", (0.0,) * 5)),
    )
    if (c["width"], c["height"]) != (cam.width, cam.height):
        raise DeviceError(
            f"{cam.calibration}: calibrated for {c['width']}x{c['height']}, board uses {cam.width}x{cam.height}"
        )
    mount = Pose3D(**{k: float(v) for k, v in c["mount"].items()})
    if cam.driver == "v4l2":
        source, backend = cam.device, "v4l2"
    elif cam.driver == "gstreamer-libcamera":
        source, backend = libcamera_pipeline(cam.width, cam.height, cam.fps), "gstreamer"
    else:
        source, backend = jetson_csi_pipeline(cam.width, cam.height, cam.fps), "gstreamer"
    camera = OpenCvCamera("front", source, backend, info, mount, clock, fps=cam.fps)
    stack.callback(camera.close)
    return camera


def build_imu(profile: BoardProfile, clock: Clock) -> Imu:
    if profile.imu.driver != "mpu6050":
        raise DeviceError(f"{profile.source}: imu.driver {profile.imu.driver!r} has no board driver")
    from hw.drivers.imu_i2c import Mpu6050, open_i2c_bus

    return Mpu6050(open_i2c_bus(profile.imu.bus), clock, profile.imu.address)


def build_board_io(profile: BoardProfile, rover_id: str, clock: Clock, stack: ExitStack) -> RoverIO:
    """Open every device of the board (MCU first: it carries the e-stop). Raises ``DeviceError``."""
    if profile.mcu.driver != "serial":
        raise DeviceError(f"{profile.source}: mcu.driver {profile.mcu.driver!r}: `rover run` needs 'serial'")
    from hw.drivers.mcu_link import McuLink

    link = McuLink.open(
        profile.mcu.port,
        profile.mcu.baud,
        clock,
        wheel_radius_m=profile.wheel_radius_m,
        track_width_m=profile.track_width_m,
        counts_per_rad=profile.mcu.counts_per_rad,
    )
    stack.callback(link.close)
    link.wait_ready(2.0)
    imu = build_imu(profile, clock)
    camera = build_camera(profile, clock, stack)
    return RoverIO(rover_id, clock, link.wheels, imu, link.drive, camera=camera, tool=link.tool, estop=link.estop)


def run_on_board(
    profile: BoardProfile,
    mission: Mission,
    max_steps: int | None = None,
    io_factory: Callable[[BoardProfile, str, Clock, ExitStack], RoverIO] = build_board_io,
    clock: Clock | None = None,
) -> LoopResult:
    if len(mission.rovers) != 1:
        raise ValueError(f"{mission.source}: rovers: a board drives exactly one rover")
    spec = mission.rovers[0]
    clk: Clock = clock if clock is not None else WallClock()
    with ExitStack() as stack:
        io = io_factory(profile, spec.rover_id, clk, stack)
        config = mission_pipeline_config(mission, spec, RoverGeometry(io.drive.wheel_radius_m, io.drive.track_width_m))
        pipeline = Pipeline(config, StageProfiler(time.perf_counter))
        loop = RoverLoop(io, clk, pipeline, profile.control_hz, mission.limits.time_s, max_steps=max_steps)
        return loop.run()
