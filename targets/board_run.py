"""``rover run --board NAME``: the real stack on a board. Builds the ports from the board profile (MCU link
over serial, IMU over I2C, camera through OpenCV), then runs the same ``RoverLoop`` and ``Pipeline`` as the
simulator, on the wall clock. Nothing here imports pybullet; a missing device raises ``DeviceError``.

The run logs a line per second (``tick N t=... drive v=... w=... camera=... tags=... stop=...``) so a detached run
(``rover deploy --init process``, systemd's journal) shows it is alive. ``StopRequested`` (raised by the
SIGTERM handler of ``rover run``) ends the run between ticks; whatever ends it, the MCU is sent a stop
command before its port is closed (the firmware's command expiry would stop the wheels anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack, suppress

from autonomy.mission.mission_file import Mission
from autonomy.msgs import CameraInfo, Commands, DriveCommand, ImuReading, Pose3D, SensorFrame
from autonomy.runtime.loop import LoopResult, RoverLoop
from autonomy.runtime.pipeline import Pipeline, RoverGeometry, mission_pipeline_config
from autonomy.runtime.profiler import StageProfiler
from hw.interfaces import Camera, Clock, DeviceError, Imu
from hw.rover_io import RoverIO
from targets.board_profile import BoardProfile, load_calibration

Log = Callable[[str], None]


class StopRequested(Exception):
    """Raised (by a signal handler) to end a board run between two ticks."""


class AbsentImu:
    """The ``Imu`` port of a board whose profile says ``imu.driver = "none"``: never a reading. Chosen only by
    that explicit line (a missing MPU-6050 on a board that declares one raises ``DeviceError``)."""

    def read(self) -> ImuReading | None:
        return None


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
    elif cam.driver == "file":
        source, backend = cam.device, "file"
    elif cam.driver == "gstreamer-libcamera":
        source, backend = libcamera_pipeline(cam.width, cam.height, cam.fps), "gstreamer"
    else:
        source, backend = jetson_csi_pipeline(cam.width, cam.height, cam.fps), "gstreamer"
    camera = OpenCvCamera("front", source, backend, info, mount, clock, fps=cam.fps, loop=cam.loop)
    stack.callback(camera.close)
    return camera


def build_imu(profile: BoardProfile, clock: Clock) -> Imu:
    if profile.imu.driver == "none":
        return AbsentImu()
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


class TickLog:
    """Loop observer: one line per ``every_s`` of the loop's clock with the tick count and the command sent."""

    def __init__(self, pipeline: Pipeline, log: Log, every_s: float = 1.0) -> None:
        self.pipeline = pipeline
        self.log = log
        self.every_s = every_s
        self.ticks = 0
        self.next_s: float | None = None

    def __call__(self, frame: SensorFrame, commands: Commands) -> None:
        self.ticks += 1
        t = frame.stamp_s
        if self.next_s is not None and t < self.next_s:
            return
        self.next_s = t + self.every_s
        d = commands.drive
        report = self.pipeline.report
        reason = report.stop_reason if report is not None and report.stop_reason else "-"
        tags = len(report.observations) if report is not None else 0
        camera = "yes" if frame.camera is not None else "no"
        self.log(
            f"tick {self.ticks} t={t:.2f}s drive v={d.linear_x_mps:+.3f} m/s w={d.angular_z_radps:+.3f} rad/s "
            f"camera={camera} tags={tags} stop={reason}"
        )


def warm_up_kernels() -> None:
    """Load (or compile, the first time on a machine) the numba kernels of the hot path, so none of that lands
    in the first camera frame or the first plan: tag edge refinement, the 2D A* and the oriented lattice."""
    from autonomy.navigation import lattice, planner
    from autonomy.perception import fiducials

    fiducials.warm_up()
    planner.warm_up()
    lattice.warm_up()


def run_on_board(
    profile: BoardProfile,
    mission: Mission,
    max_steps: int | None = None,
    io_factory: Callable[[BoardProfile, str, Clock, ExitStack], RoverIO] = build_board_io,
    clock: Clock | None = None,
    log: Log | None = None,
) -> LoopResult:
    """Run ``mission`` on the board's devices until it ends. ``log`` receives the start line, the notes on
    absent devices and a tick line per second. Raises ``DeviceError`` (a device) or ``StopRequested``."""
    if len(mission.rovers) != 1:
        raise ValueError(f"{mission.source}: rovers: a board drives exactly one rover")
    spec = mission.rovers[0]
    clk: Clock = clock if clock is not None else WallClock()
    say: Log = log if log is not None else (lambda _line: None)
    with ExitStack() as stack:
        io = io_factory(profile, spec.rover_id, clk, stack)
        if profile.imu.driver == "none":
            say(f"{profile.source}: imu.driver = none: no IMU, the pipeline holds the rover still ('stale imu')")
        if profile.camera.driver == "none":
            say(f"{profile.source}: camera.driver = none: no camera, no fiducial corrections")
        config = mission_pipeline_config(mission, spec, RoverGeometry(io.drive.wheel_radius_m, io.drive.track_width_m))
        pipeline = Pipeline(config, StageProfiler(time.perf_counter))
        warm_up_kernels()  # numba: about 1 s from the cache (several s the first time), before the first tick
        observer = TickLog(pipeline, say)
        loop = RoverLoop(
            io, clk, pipeline, profile.control_hz, mission.limits.time_s, max_steps=max_steps, observer=observer
        )
        say(f"board {profile.name}: mission {mission.name!r} at {profile.control_hz:g} Hz, rover {spec.rover_id}")
        try:
            return loop.run()
        finally:
            _send_stop(io, clk)


def _send_stop(io: RoverIO, clock: Clock) -> None:
    """Best effort: a stop command before the port closes (a failing link already stops the MCU by expiry)."""
    with suppress(DeviceError, OSError):
        io.write(Commands(io.rover_id, DriveCommand.stop(clock.now_s())))
