"""Simulated rover ports: ``hw.interfaces`` implemented on a PyBullet rover in a ``sim.world.World``.

``World.add_rover(rover_id, start, profile)`` builds a ``SimRover`` from ``sim/assets/rover.urdf``
(joints looked up by name). Its ports (``wheels``, ``imu``, ``drive``, ``camera``, ``depth``, ``tool``,
``battery``, ``estop``) read the physics with seeded noise; ``io()`` bundles them with the world's
``SimClock`` into a ``hw.rover_io.RoverIO``. ``true_pose()`` is the ground truth for judges and tests.

Noise is drawn from numpy Generators seeded from (world seed, rover id, sensor), one per sensor, so a
run is reproducible and reading one sensor more often never changes another's noise.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import (
    BatteryState,
    CameraFrame,
    CameraInfo,
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
from hw.interfaces import DeviceError
from hw.rover_io import RoverIO
from sim.regolith import Bucket
from sim.sinkage import resistance_force, wheel_sinkage

if TYPE_CHECKING:
    from sim.world import World

ROVER_URDF = Path(__file__).resolve().parent / "assets" / "rover.urdf"
WHEEL_JOINTS = (
    "front_left_wheel_joint",
    "front_right_wheel_joint",
    "rear_left_wheel_joint",
    "rear_right_wheel_joint",
)
BUCKET_JOINT = "bucket_joint"
# Where the rover's turns in place pivot (``autonomy.estimation.odometry.TurnPivot``), measured on this model
# (UCF site seed 3, flat start zone, 0.6 rad/s turns of about 32 deg each way, bucket at carry): the pivot,
# fitted from base_link's sideways displacement, is 0.0 m empty, 0.08 m at 7 N of tool load, 0.13 at 13 N,
# 0.17 at 18 N and 0.22-0.26 m (the front axle: wheelbase 0.50 m) at 27-36 N (a full bucket, 22 kg): about
# 0.0097 m per N up to 0.24 m. ``tests/test_sim_world.py`` checks a full bucket's turn against it.
TURN_PIVOT_M_PER_N = 0.0097
TURN_PIVOT_MAX_M = 0.24
# ... and none below 2 N: the empty bucket's load reading (median of 20 ticks) is 0-1.2 N while driving
TURN_PIVOT_MIN_LOAD_N = 2.0

# Per-sensor streams under the rover's seed.
_STREAM_ENCODERS = 0
_STREAM_IMU = 1
_STREAM_CAMERA = 2
_STREAM_DEPTH = 3
_STREAM_ROVER_TAG = 1000  # keeps rover seeds apart from the world's own streams
_BUCKET_LIP_IN_LINK = np.array([0.33, 0.0, -0.15])  # front edge of the bucket floor (sim/assets/rover.urdf)

Array = npt.NDArray[np.float64]


def rotation_to_rpy(r: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """(roll, pitch, yaw) of a rotation matrix with ``R = Rz(yaw) Ry(pitch) Rx(roll)`` (``Pose3D``'s)."""
    pitch = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
    yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return roll, pitch, yaw


def camera_optical_mount(
    x_m: float, y_m: float, z_m: float, pitch_down_rad: float = 0.0, yaw_rad: float = 0.0
) -> Pose3D:
    """Pose of ``camera_optical`` (z forward, x right, y down) in ``base_link`` for a camera at (x, y, z)
    looking along ``yaw_rad`` and tilted ``pitch_down_rad`` below the horizon."""
    cy, sy = math.cos(yaw_rad), math.sin(yaw_rad)
    cp, sp = math.cos(pitch_down_rad), math.sin(pitch_down_rad)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])  # positive pitch: nose down
    body_to_optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    roll, pitch, yaw = rotation_to_rpy(rz @ ry @ body_to_optical)
    return Pose3D(x_m, y_m, z_m, roll, pitch, yaw)


DEFAULT_CAMERA_MOUNT = camera_optical_mount(0.30, 0.0, 0.60, pitch_down_rad=math.radians(10.0))


@dataclass(frozen=True, slots=True)
class SimSensorProfile:
    """Sensor models, drive tuning and power model of one simulated rover."""

    # Wheel encoders
    encoder_ticks_per_rev: int = 4096
    encoder_noise_rad: float = 0.0005
    # IMU: white noise per reading and a constant bias per axis drawn once in +-max
    gyro_noise_radps: float = 0.002
    gyro_bias_max_radps: float = 0.002
    accel_noise_mps2: float = 0.02
    accel_bias_max_mps2: float = 0.01
    # RGB-D module: an RGB camera and a depth sensor on one mount (``camera_enabled`` switches the module).
    # The RGB image is rendered at ``camera_rate_hz``; the depth image is its own, lower-resolution sensor
    # (``depth_width_px`` x ``depth_height_px``, like a ToF/stereo depth stream). When the depth sensor has the
    # camera's field of view, a whole-number decimation of its resolution and its rate, its pixels are the
    # camera render's z-buffer sampled on the depth sensor's own pixel grid (no second render); otherwise it
    # renders its own depth image (TinyRenderer at the depth resolution: about 7 ms at 160x120, measured
    # 10x cheaper than ``rayTestBatch`` over the same 19 200 rays).
    camera_enabled: bool = True
    camera_id: str = "front"
    camera_width_px: int = 640
    camera_height_px: int = 480
    camera_hfov_deg: float = 70.0
    camera_rate_hz: float = 3.0  # 640x480 renders cost ~50 ms each: 3 Hz keeps the default set >= 5x real time
    camera_mount: Pose3D = DEFAULT_CAMERA_MOUNT
    camera_near_m: float = 0.05
    camera_far_m: float = 20.0
    pixel_noise_sigma: float = 2.0
    # Lighting of the camera render (TinyRenderer's ambient and diffuse coefficients) and cast shadows: with
    # ``camera_cast_shadows`` the ground in the shadow of terrain and rocks keeps only the ambient light
    # (``World.shade_cast_shadows``, about 20 ms more per 640x480 frame). A lunar sky gives little ambient
    # light: e.g. ambient 0.15, diffuse 1.0 under a low sun.
    camera_ambient: float = 0.55
    camera_diffuse: float = 0.45
    camera_cast_shadows: bool = False
    # "always": a frame every period. "fiducials": a frame only when a surveyed fiducial of the world could be
    # in it (its centre within the field of view widened by ``camera_view_margin_deg``, within
    # ``camera_fiducial_range_m``, its printed face towards the camera), like a capture triggered only when the
    # frame has a consumer (the fiducial detector is the RGB image's only one): a frame that cannot hold a tag
    # is never rendered (~50 ms each at 640x480); a shared-render depth sensor then renders its own image
    camera_render: str = "always"
    camera_view_margin_deg: float = 15.0
    camera_fiducial_range_m: float = 10.0
    depth_enabled: bool = True
    depth_width_px: int = 160
    depth_height_px: int = 120
    depth_hfov_deg: float | None = None  # None: the camera's
    depth_rate_hz: float | None = None  # None: the camera's
    depth_max_range_m: float = 20.0  # no return (NaN) past it
    depth_noise_sigma_m: float = 0.0
    # Drive: wheel-ground friction (longitudinal), lateral friction as a fraction of it (anisotropic,
    # low enough for skid-steer turns), motor torque and speed limits
    wheel_friction: float = 0.8
    wheel_lateral_friction_scale: float = 0.2
    wheel_rolling_friction: float = 0.0005
    max_wheel_torque_nm: float = 20.0
    max_wheel_speed_radps: float = 8.0
    command_timeout_s: float = 0.5
    wheel_width_m: float = 0.08  # contact width for sinkage in soft soil (``sim.sinkage``; the URDF's wheels)
    # Tool (bucket) position servo
    tool_max_torque_nm: float = 300.0
    tool_max_speed_radps: float = 1.0
    # Battery: 8S LiFePO4-like pack
    battery_capacity_wh: float = 240.0
    battery_full_v: float = 27.2
    battery_empty_v: float = 24.0
    battery_internal_ohm: float = 0.05
    hotel_power_w: float = 25.0
    drive_efficiency: float = 0.7
    # Digging (only in worlds with a soil model, ``World(site=...)``). The bucket is a tipping bin: lowered
    # past ``dig_position_rad`` with its lip below the surface it cuts soil (a disc of ``cut_radius_m``
    # behind the lip, at most ``max_cut_depth_m`` per pass, never below the lip); tilted back past
    # ``dump_position_rad`` it empties onto a pile ``dump_reach_m`` ahead of base_link.
    bucket_capacity_m3: float = 0.015  # about 22 kg of regolith at 1.5 g/cm^3 (the bucket holds 0.017 m^3)
    max_cut_depth_m: float = 0.04
    cut_radius_m: float = 0.15
    dig_position_rad: float = 0.3
    dump_position_rad: float = -0.5
    dump_reach_m: float = 1.0
    soil_rate_hz: float = 20.0
    dig_specific_energy_j_per_m3: float = 50_000.0  # cutting and lifting loose regolith at 1/6 g

    def __post_init__(self) -> None:
        if self.encoder_ticks_per_rev <= 0:
            raise ValueError(f"SimSensorProfile: encoder_ticks_per_rev {self.encoder_ticks_per_rev} <= 0")
        if self.camera_width_px <= 0 or self.camera_height_px <= 0:
            raise ValueError("SimSensorProfile: camera size must be positive")
        if not 1.0 < self.camera_hfov_deg < 170.0:
            raise ValueError(f"SimSensorProfile: camera_hfov_deg must be in (1, 170): {self.camera_hfov_deg}")
        if not self.camera_rate_hz > 0:
            raise ValueError(f"SimSensorProfile: camera_rate_hz must be > 0, got {self.camera_rate_hz}")
        if not 0 < self.camera_near_m < self.camera_far_m:
            raise ValueError("SimSensorProfile: need 0 < camera_near_m < camera_far_m")
        if self.depth_width_px <= 0 or self.depth_height_px <= 0:
            raise ValueError(
                f"SimSensorProfile: depth size must be positive, got {self.depth_width_px}x{self.depth_height_px}"
            )
        if self.depth_hfov_deg is not None and not 1.0 < self.depth_hfov_deg < 170.0:
            raise ValueError(f"SimSensorProfile: depth_hfov_deg must be in (1, 170): {self.depth_hfov_deg}")
        if self.depth_rate_hz is not None and not self.depth_rate_hz > 0:
            raise ValueError(f"SimSensorProfile: depth_rate_hz must be > 0, got {self.depth_rate_hz}")
        if not (self.camera_ambient >= 0 and self.camera_diffuse >= 0):
            raise ValueError("SimSensorProfile: camera_ambient and camera_diffuse must be >= 0")
        if not self.depth_max_range_m > 0 or self.depth_noise_sigma_m < 0 or self.pixel_noise_sigma < 0:
            raise ValueError("SimSensorProfile: need depth_max_range_m > 0 and noise sigmas >= 0")
        if not self.command_timeout_s > 0:
            raise ValueError(f"SimSensorProfile: command_timeout_s must be > 0, got {self.command_timeout_s}")
        if not 0 < self.drive_efficiency <= 1:
            raise ValueError(f"SimSensorProfile: drive_efficiency must be in (0, 1]: {self.drive_efficiency}")
        if not self.battery_capacity_wh > 0:
            raise ValueError("SimSensorProfile: battery_capacity_wh must be > 0")
        if not (self.bucket_capacity_m3 > 0 and self.soil_rate_hz > 0 and self.max_cut_depth_m >= 0):
            raise ValueError("SimSensorProfile: bucket_capacity_m3 and soil_rate_hz must be > 0, max_cut_depth_m >= 0")
        if not self.dump_position_rad < 0 < self.dig_position_rad:
            raise ValueError("SimSensorProfile: need dump_position_rad < 0 < dig_position_rad")

    def camera_info(self) -> CameraInfo:
        """Pinhole intrinsics of the render: square pixels, fx = (w / 2) / tan(hfov / 2), principal point
        (w / 2, h / 2) in OpenCV's convention (``gl_projection_matrix`` makes the render match them)."""
        w, h = self.camera_width_px, self.camera_height_px
        f = (w / 2.0) / math.tan(math.radians(self.camera_hfov_deg) / 2.0)
        return CameraInfo(w, h, f, f, w / 2.0, h / 2.0)

    def _depth_grid_factor(self) -> int | None:
        """k when the depth sensor has the camera's field of view and the camera's size is a whole k times
        the depth size in both axes (its pixels then lie on the camera's pixel grid), else None."""
        if self.depth_hfov_deg is not None and self.depth_hfov_deg != self.camera_hfov_deg:
            return None
        k, rem = divmod(self.camera_width_px, self.depth_width_px)
        if rem or k < 1 or self.camera_height_px != k * self.depth_height_px:
            return None
        return k

    def depth_decimation(self) -> int | None:
        """k when the depth image is the camera render's z-buffer sampled every k-th pixel (its pixels on the
        camera's grid, the camera on, the same rate), else None (the depth sensor renders its own image)."""
        if not self.camera_enabled:
            return None
        if self.depth_rate_hz is not None and self.depth_rate_hz != self.camera_rate_hz:
            return None
        return self._depth_grid_factor()

    def depth_info(self) -> CameraInfo:
        """Pinhole intrinsics of the depth image. On the camera's pixel grid (k, see ``_depth_grid_factor``):
        depth pixel (u, v) is camera pixel (k u + k // 2, k v + k // 2), so fx = fx_cam / k and
        cx = (cx_cam - k // 2) / k exactly, whether the depth is decimated from the camera render or rendered
        on its own. Otherwise square pixels from ``depth_hfov_deg``, principal point (w / 2, h / 2)."""
        k = self._depth_grid_factor()
        if k is not None:
            cam = self.camera_info()
            o = k // 2
            return CameraInfo(
                self.depth_width_px, self.depth_height_px, cam.fx_px / k, cam.fy_px / k,
                (cam.cx_px - o) / k, (cam.cy_px - o) / k,
            )  # fmt: skip
        w, h = self.depth_width_px, self.depth_height_px
        hfov = self.depth_hfov_deg if self.depth_hfov_deg is not None else self.camera_hfov_deg
        f = (w / 2.0) / math.tan(math.radians(hfov) / 2.0)
        return CameraInfo(w, h, f, f, w / 2.0, h / 2.0)


def _quat_to_matrix(q: tuple[float, float, float, float] | list[float]) -> npt.NDArray[np.float64]:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=np.float64,
    )


def gl_projection_matrix(info: CameraInfo, near_m: float, far_m: float) -> npt.NDArray[np.float64]:
    """The OpenGL projection (4x4, row-major) whose TinyRenderer image matches ``info`` exactly, with
    OpenCV's pixel convention (pixel (u, v) centred on integer coordinates, row 0 at the top).

    TinyRenderer lights pixel column i when window coordinate x = i is covered (not i + 0.5 as OpenGL),
    and image row r when window y = h - r is covered (its vertical flip is off by one), so the principal
    point (cx, cy) maps to NDC (2 cx / w - 1, 1 - 2 (cy + 1) / h). Measured: an edge rendered through this
    matrix lights exactly the pixels whose centres ``info`` puts inside it, in both axes.
    """
    w, h = info.width_px, info.height_px
    return np.array(
        [
            [2.0 * info.fx_px / w, 0.0, 1.0 - 2.0 * info.cx_px / w, 0.0],
            [0.0, 2.0 * info.fy_px / h, 2.0 * (info.cy_px + 1.0) / h - 1.0, 0.0],
            [0.0, 0.0, -(far_m + near_m) / (far_m - near_m), -2.0 * far_m * near_m / (far_m - near_m)],
            [0.0, 0.0, -1.0, 0.0],
        ],
        dtype=np.float64,
    )


def gl_view_matrix(r_map_optical: Array, p_map: Array) -> Array:
    """The OpenGL view matrix (4x4, row-major) of a camera whose optical frame has rotation
    ``r_map_optical`` and position ``p_map`` in ``map`` (GL camera: x right, y up, z backward)."""
    r_gl = r_map_optical @ np.diag([1.0, -1.0, -1.0])
    view = np.eye(4)
    view[:3, :3] = r_gl.T
    view[:3, 3] = -r_gl.T @ p_map
    return view


class SimRover:
    """One simulated rover: the PyBullet body, its ports and its ground truth (see ``World.add_rover``)."""

    def __init__(self, world: World, rover_id: str, start: Pose2D, profile: SimSensorProfile) -> None:
        self.world = world
        self.rover_id = rover_id
        self.profile = profile
        c = world.client
        self._c = c
        crc = zlib.crc32(rover_id.encode("utf-8"))
        key = (_STREAM_ROVER_TAG, crc)
        self._seeds = [np.random.SeedSequence(world.seed, spawn_key=(*key, s)) for s in range(4)]
        # Load clear of the ground, then lower the body until the lowest wheel just touches the terrain.
        self.body_id: int = c.loadURDF(
            str(ROVER_URDF),
            basePosition=[start.x_m, start.y_m, world.ground_height_m(start.x_m, start.y_m) + 0.5],
            baseOrientation=c.getQuaternionFromEuler([0.0, 0.0, start.yaw_rad]),
            flags=c.URDF_USE_INERTIA_FROM_FILE,
        )
        self.joint_index: dict[str, int] = {}
        limits: dict[str, tuple[float, float]] = {}
        parent_pos: dict[str, tuple[float, float, float]] = {}
        axes: dict[str, tuple[float, float, float]] = {}
        for j in range(c.getNumJoints(self.body_id)):
            info = c.getJointInfo(self.body_id, j)
            name = info[1].decode("utf-8")
            self.joint_index[name] = j
            limits[name] = (float(info[8]), float(info[9]))
            parent_pos[name] = info[14]
            axes[name] = info[13]
        missing = [n for n in (*WHEEL_JOINTS, BUCKET_JOINT) if n not in self.joint_index]
        if missing:
            raise DeviceError(f"sim rover {rover_id!r}: joints {missing} missing from {ROVER_URDF.name}")
        self._wheels = [self.joint_index[n] for n in WHEEL_JOINTS]  # fl, fr, rl, rr
        self._bucket = self.joint_index[BUCKET_JOINT]
        self._bucket_limits = limits[BUCKET_JOINT]
        # Geometry from the model: wheel radius from the collision sphere, track from the joint origins.
        shape = c.getCollisionShapeData(self.body_id, self._wheels[0])[0]
        self.wheel_radius_m = float(shape[3][0])
        self.track_width_m = float(parent_pos[WHEEL_JOINTS[0]][1] - parent_pos[WHEEL_JOINTS[1]][1])
        hubs = np.array([st[4] for st in c.getLinkStates(self.body_id, self._wheels)], dtype=np.float64)
        ground = world.ground_heights_m(hubs[:, 0], hubs[:, 1])
        drop = float(np.min(hubs[:, 2] - self.wheel_radius_m - ground)) - 0.003
        com, orn = c.getBasePositionAndOrientation(self.body_id)
        c.resetBasePositionAndOrientation(self.body_id, [com[0], com[1], com[2] - drop], orn)
        dyn = c.getDynamicsInfo(self.body_id, -1)
        self._com_in_link = np.array(dyn[3], dtype=np.float64)
        self._r_com_in_link = _quat_to_matrix(dyn[4])
        self.mass_kg = float(dyn[0]) + sum(
            float(c.getDynamicsInfo(self.body_id, j)[0]) for j in range(c.getNumJoints(self.body_id))
        )
        self._bucket_mass_kg = float(c.getDynamicsInfo(self.body_id, self._bucket)[0])
        self._bucket_weight_n = self._bucket_mass_kg * world.gravity_mps2
        self.bucket = Bucket(profile.bucket_capacity_m3)
        self.soil_dug_m3 = 0.0
        self.soil_dumped_m3 = 0.0
        self.dump_log: list[tuple[float, float, float, float]] = []  # (t_s, x_m, y_m, m^3)
        self._soil_every = max(1, round(world.physics_hz / profile.soil_rate_hz))
        self._payload_kg = 0.0
        self._sinkage_key: tuple[object, float] | None = None
        self._sinkage = (0.0, 0.0)
        self.step_hooks: list[Callable[[float], None]] = []  # called before every physics step (faults)
        if world.soil is not None:
            # The soil model, not the rigid heightfield, resists the bucket: it cuts what the lip reaches.
            c.setCollisionFilterPair(world.terrain_body_id, self.body_id, -1, self._bucket, 0)
        self._set_wheel_collisions(world)
        for j, name in zip(self._wheels, WHEEL_JOINTS, strict=True):
            # Low friction along the axle (skid-steer turns need the wheels to scrub sideways).
            axle = np.abs(np.asarray(axes[name], dtype=np.float64))
            c.changeDynamics(
                self.body_id,
                j,
                lateralFriction=profile.wheel_friction,
                anisotropicFriction=(1.0 - (1.0 - profile.wheel_lateral_friction_scale) * axle).tolist(),
                rollingFriction=profile.wheel_rolling_friction,
                spinningFriction=0.0,
                restitution=0.0,
            )
        c.enableJointForceTorqueSensor(self.body_id, self._bucket, True)
        # Drive state
        self._wheel_targets = (0.0, 0.0)
        self._last_command_s = -math.inf
        self._drive_live = False
        self._estop = False
        self._apply_wheels(0.0, 0.0)
        self._tool_target = 0.0
        self._apply_tool(0.0)
        # Power state
        self.energy_used_wh = 0.0
        self._power_w = profile.hotel_power_w
        # Ports
        self.wheels = SimWheelEncoders(self)
        self.imu = SimImu(self)
        self.drive = SimDriveBase(self)
        self.tool = SimTool(self)
        self.battery = SimBattery(self)
        self.estop = SimEstop(self)
        self.camera: SimCamera | None = None
        self.depth: SimDepthSensor | None = None
        if profile.camera_enabled:
            rig = _CameraRig(self)
            self.camera = SimCamera(rig)
            if profile.depth_enabled:
                self.depth = SimDepthSensor(_DepthRig(self, rig))

    def _set_wheel_collisions(self, world: World) -> None:
        """Each wheel's sphere rolls on the terrain only; its guard (the wheel's true cylinder, 0.34 m out)
        meets rocks, fixtures and other rovers and never the terrain (sim/assets/rover.urdf). The sphere keeps
        one steady ground contact, and the rover is as wide as its wheels (0.68 m), not its spheres (0.90 m)."""
        c = self._c
        guards = [self.joint_index[n.replace("_wheel_joint", "_wheel_guard_joint")] for n in WHEEL_JOINTS]
        for g in guards:
            c.setCollisionFilterPair(world.terrain_body_id, self.body_id, -1, g, 0)
        for body in world.solid_body_ids():
            for w in self._wheels:
                c.setCollisionFilterPair(body, self.body_id, -1, w, 0)
        for other in world.rovers.values():
            if other is self:
                continue
            for link in range(-1, c.getNumJoints(other.body_id)):
                for w in self._wheels:
                    c.setCollisionFilterPair(other.body_id, self.body_id, link, w, 0)
            for link in range(-1, c.getNumJoints(self.body_id)):
                for w in other._wheels:
                    c.setCollisionFilterPair(self.body_id, other.body_id, link, w, 0)

    # ---- ground truth ------------------------------------------------------------------------------

    def _link_transform(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(R, p) of ``base_link`` in ``map`` (PyBullet reports the base's centre-of-mass frame)."""
        pos, orn = self._c.getBasePositionAndOrientation(self.body_id)
        r_com = _quat_to_matrix(orn)
        r_link = r_com @ self._r_com_in_link.T
        p_link = np.asarray(pos, dtype=np.float64) - r_link @ self._com_in_link
        return r_link, p_link

    def true_pose(self) -> Pose2D:
        """Ground-truth planar pose of ``base_link`` in ``map``."""
        r, p = self._link_transform()
        return Pose2D(float(p[0]), float(p[1]), math.atan2(float(r[1, 0]), float(r[0, 0])))

    def true_pose3d(self) -> Pose3D:
        r, p = self._link_transform()
        roll, pitch, yaw = rotation_to_rpy(r)
        return Pose3D(float(p[0]), float(p[1]), float(p[2]), roll, pitch, yaw)

    def true_twist(self) -> tuple[float, float]:
        """Ground-truth (forward speed m/s, yaw rate rad/s) of the body."""
        lin, ang = self._c.getBaseVelocity(self.body_id)
        r, _ = self._link_transform()
        v_body = r.T @ np.asarray(lin)
        w_body = r.T @ np.asarray(ang)
        return float(v_body[0]), float(w_body[2])

    def camera_pose_in_map(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(R, p) of ``camera_optical`` in ``map``."""
        r, p = self._link_transform()
        m = self.profile.camera_mount
        return r @ m.rotation(), p + r @ m.translation()

    # ---- actuation ----------------------------------------------------------------------------------

    def set_estop(self, engaged: bool) -> None:
        """Engage (stop and ignore the drive) or release the e-stop; after release the wheels stay stopped
        until the next drive command."""
        self._estop = bool(engaged)
        if self._estop:
            self._drive_live = False
            self._apply_wheels(0.0, 0.0)

    @property
    def estop_engaged(self) -> bool:
        return self._estop

    def _apply_wheels(self, left_radps: float, right_radps: float) -> None:
        self._wheel_targets = (left_radps, right_radps)
        self._c.setJointMotorControlArray(
            self.body_id,
            self._wheels,
            self._c.VELOCITY_CONTROL,
            targetVelocities=[left_radps, right_radps, left_radps, right_radps],
            forces=[self.profile.max_wheel_torque_nm] * 4,
        )

    def _apply_tool(self, position_rad: float) -> None:
        lo, hi = self._bucket_limits
        self._tool_target = min(hi, max(lo, position_rad))
        self._c.setJointMotorControl2(
            self.body_id,
            self._bucket,
            self._c.POSITION_CONTROL,
            targetPosition=self._tool_target,
            force=self.profile.tool_max_torque_nm,
            maxVelocity=self.profile.tool_max_speed_radps,
        )

    def _command_drive(self, cmd: DriveCommand) -> None:
        self._last_command_s = self.world.time_s
        if self._estop:
            return
        r, half = self.wheel_radius_m, self.track_width_m / 2.0
        left = (cmd.linear_x_mps - cmd.angular_z_radps * half) / r
        right = (cmd.linear_x_mps + cmd.angular_z_radps * half) / r
        peak = max(abs(left), abs(right))
        if peak > self.profile.max_wheel_speed_radps:  # saturate, keeping the curvature
            scale = self.profile.max_wheel_speed_radps / peak
            left, right = left * scale, right * scale
        self._drive_live = True
        self._apply_wheels(left, right)

    # ---- world hooks ---------------------------------------------------------------------------------

    def wheel_hubs_xy(self) -> list[tuple[float, float]]:
        """Ground-truth (x, y) of the four wheel hubs (fl, fr, rl, rr) in ``map``."""
        states = self._c.getLinkStates(self.body_id, self._wheels)
        return [(float(st[4][0]), float(st[4][1])) for st in states]

    def set_wheel_friction(self, wheel: int, friction: float) -> None:
        """Longitudinal friction of one wheel (0 fl, 1 fr, 2 rl, 3 rr); lateral stays scaled as built."""
        self._c.changeDynamics(self.body_id, self._wheels[wheel], lateralFriction=friction)

    def wheel_sinkage(self) -> tuple[float, float]:
        """(static sinkage m, compaction resistance N) of each wheel in the world's soil (0, 0 on firm
        ground): the rover's weight with its payload shared by four wheels (``sim.sinkage``)."""
        bearing = self.world.bearing
        if bearing is None:
            return 0.0, 0.0
        key = (bearing, round(self._payload_kg, 3))
        if self._sinkage_key != key:
            load = (self.mass_kg + self._payload_kg) * self.world.gravity_mps2 / 4.0
            self._sinkage = wheel_sinkage(load, self.profile.wheel_width_m, 2.0 * self.wheel_radius_m, bearing)
            self._sinkage_key = key
        return self._sinkage

    def _apply_sinkage_resistance(self) -> None:
        """Each wheel's compaction resistance at its contact point, against its ground velocity."""
        _z0, resistance = self.wheel_sinkage()
        if resistance <= 0.0:
            return
        c = self._c
        for j, st in zip(self._wheels, c.getLinkStates(self.body_id, self._wheels, computeLinkVelocity=1), strict=True):
            fx, fy = resistance_force(resistance, float(st[6][0]), float(st[6][1]))
            if fx or fy:
                hub = st[0]
                contact = [hub[0], hub[1], hub[2] - self.wheel_radius_m]
                c.applyExternalForce(self.body_id, j, [fx, fy, 0.0], contact, c.WORLD_FRAME)

    def _before_step(self, now_s: float) -> None:
        for hook in self.step_hooks:
            hook(now_s)
        if self.world.bearing is not None:
            self._apply_sinkage_resistance()
        if self._drive_live and now_s - self._last_command_s > self.profile.command_timeout_s:
            self._drive_live = False
            self._apply_wheels(0.0, 0.0)

    def _after_step(self, dt_s: float) -> None:
        states = self._c.getJointStates(self.body_id, [*self._wheels, self._bucket])
        mech_w = sum(abs(s[1] * s[3]) for s in states)
        self._power_w = self.profile.hotel_power_w + mech_w / self.profile.drive_efficiency
        self.energy_used_wh += self._power_w * dt_s / 3600.0
        if self.world.soil is not None and self.world.steps % self._soil_every == 0:
            self._soil_interaction()

    def bucket_lip_in_map(self) -> npt.NDArray[np.float64]:
        """The bucket lip's centre (front edge of its floor) in ``map`` (m)."""
        state = self._c.getLinkState(self.body_id, self._bucket, computeForwardKinematics=True)
        r = _quat_to_matrix(state[5])
        return np.asarray(np.asarray(state[4], dtype=np.float64) + r @ _BUCKET_LIP_IN_LINK, dtype=np.float64)

    def _soil_interaction(self) -> None:
        """Cut with a lowered bucket whose lip is in the soil; dump a tipped-back bucket."""
        w = self.world
        p = self.profile
        pos = float(self._c.getJointState(self.body_id, self._bucket)[0])
        dt = self._soil_every * w.dt_s
        if pos >= p.dig_position_rad and self.bucket.free_m3 > 0:
            lip = self.bucket_lip_in_map()
            surface = w.ground_height_m(float(lip[0]), float(lip[1]))
            if lip[2] < surface - 0.002:
                heading = self.true_pose().yaw_rad
                cx = float(lip[0]) - p.cut_radius_m * math.cos(heading)
                cy = float(lip[1]) - p.cut_radius_m * math.sin(heading)
                taken = w.dig(
                    cx, cy, p.cut_radius_m, p.max_cut_depth_m, self.bucket, blade_z_m=float(lip[2]), defer=True
                )
                if taken > 0:
                    self.soil_dug_m3 += taken
                    self.energy_used_wh += taken * p.dig_specific_energy_j_per_m3 / 3600.0
                    self._power_w += taken * p.dig_specific_energy_j_per_m3 / dt
                    self._update_payload()
        elif pos <= p.dump_position_rad and self.bucket.contents_m3 > 0:
            pose = self.true_pose()
            x = pose.x_m + p.dump_reach_m * math.cos(pose.yaw_rad)
            y = pose.y_m + p.dump_reach_m * math.sin(pose.yaw_rad)
            vol = w.dump(self.bucket, x, y, defer=True)
            self.soil_dumped_m3 += vol
            self.dump_log.append((w.time_s, x, y, vol))
            self._update_payload()

    def _update_payload(self) -> None:
        """The soil's mass rides in the bucket link (so drive power and tool load feel it)."""
        payload = self.bucket.mass_kg()
        if abs(payload - self._payload_kg) > 0.05:
            self._payload_kg = payload
            self._c.changeDynamics(self.body_id, self._bucket, mass=self._bucket_mass_kg + payload)

    # ---- bundle ----------------------------------------------------------------------------------------

    def io(self) -> RoverIO:
        """This rover's ports and the world's clock, bundled for ``RoverLoop``."""
        return RoverIO(
            rover_id=self.rover_id,
            clock=self.world.clock,
            wheels=self.wheels,
            imu=self.imu,
            drive=self.drive,
            camera=self.camera,
            depth=self.depth,
            tool=self.tool,
            battery=self.battery,
            estop=self.estop,
        )


# ------------------------------------------------------------------------------------------------------
# Ports
# ------------------------------------------------------------------------------------------------------


class SimWheelEncoders:
    """Cumulative wheel angles (rad, positive forward), quantised to ``encoder_ticks_per_rev``."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover
        self._rng = np.random.default_rng(rover._seeds[_STREAM_ENCODERS])
        self._tick_rad = 2.0 * math.pi / rover.profile.encoder_ticks_per_rev

    def read(self) -> WheelEncoderReading:
        r = self._r
        angles = np.array([s[0] for s in r._c.getJointStates(r.body_id, r._wheels)], dtype=np.float64)
        if r.profile.encoder_noise_rad > 0:
            angles += self._rng.normal(0.0, r.profile.encoder_noise_rad, size=4)
        ticks = np.round(angles / self._tick_rad) * self._tick_rad
        fl, fr, rl, rr = (float(t) for t in ticks)
        return WheelEncoderReading(r.world.time_s, fl, fr, rl, rr)


class SimImu:
    """Gyro (base angular velocity in ``base_link`` + constant bias + white noise) and accelerometer
    (specific force in ``base_link``: mean acceleration since the last read minus gravity)."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover
        self._rng = np.random.default_rng(rover._seeds[_STREAM_IMU])
        p = rover.profile
        self.gyro_bias_radps = self._rng.uniform(-p.gyro_bias_max_radps, p.gyro_bias_max_radps, size=3)
        self.accel_bias_mps2 = self._rng.uniform(-p.accel_bias_max_mps2, p.accel_bias_max_mps2, size=3)
        self._last_v: npt.NDArray[np.float64] | None = None
        self._last_t = 0.0

    def read(self) -> ImuReading:
        r = self._r
        t = r.world.time_s
        lin, ang = r._c.getBaseVelocity(r.body_id)
        rot, _ = r._link_transform()
        v = np.asarray(lin, dtype=np.float64)
        if self._last_v is not None and t > self._last_t:
            accel = (v - self._last_v) / (t - self._last_t)
        else:
            accel = np.zeros(3)
        self._last_v, self._last_t = v, t
        specific = rot.T @ (accel + np.array([0.0, 0.0, r.world.gravity_mps2]))
        gyro = rot.T @ np.asarray(ang, dtype=np.float64)
        p = r.profile
        gyro = gyro + self.gyro_bias_radps + self._rng.normal(0.0, p.gyro_noise_radps, size=3)
        specific = specific + self.accel_bias_mps2 + self._rng.normal(0.0, p.accel_noise_mps2, size=3)
        return ImuReading(
            t,
            (float(gyro[0]), float(gyro[1]), float(gyro[2])),
            (float(specific[0]), float(specific[1]), float(specific[2])),
        )


class SimDriveBase:
    """Body twist -> left/right wheel speeds (VELOCITY_CONTROL); stops after ``command_timeout_s``."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover
        self.command_timeout_s = rover.profile.command_timeout_s
        self.wheel_radius_m = rover.wheel_radius_m
        self.track_width_m = rover.track_width_m

    def command(self, cmd: DriveCommand) -> None:
        self._r._command_drive(cmd)

    @property
    def wheel_targets_radps(self) -> tuple[float, float]:
        """The (left, right) wheel speeds the motors are holding now."""
        return self._r._wheel_targets


class SimTool:
    """The bucket joint under a position servo. ``load_n`` is the joint reaction force less the empty
    bucket's weight (about the payload's weight plus digging forces)."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover

    def command(self, cmd: ToolCommand) -> None:
        self._r._apply_tool(cmd.position_rad)

    def read(self) -> ToolState:
        r = self._r
        pos, vel, reaction, torque = r._c.getJointState(r.body_id, r._bucket)
        force = math.sqrt(reaction[0] ** 2 + reaction[1] ** 2 + reaction[2] ** 2)
        load = max(0.0, force - r._bucket_weight_n)
        max_torque = r.profile.tool_max_torque_nm
        stalled = abs(r._tool_target - pos) > 0.05 and abs(vel) < 0.02 and abs(torque) >= 0.95 * max_torque
        return ToolState(r.world.time_s, float(pos), float(load), bool(stalled))


class SimBattery:
    """Energy integrated every physics step: hotel load plus wheel and bucket |torque x speed| over the
    drive efficiency. Open-circuit voltage falls linearly with charge; internal resistance sags it."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover

    def read(self) -> BatteryState:
        r = self._r
        p = r.profile
        soc = min(1.0, max(0.0, 1.0 - r.energy_used_wh / p.battery_capacity_wh))
        v_oc = p.battery_empty_v + (p.battery_full_v - p.battery_empty_v) * soc
        current = r._power_w / v_oc
        voltage = v_oc - current * p.battery_internal_ohm
        return BatteryState(r.world.time_s, voltage, current, r.energy_used_wh, soc)


class SimEstop:
    """Disengaged unless ``SimRover.set_estop(True)``."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover

    def read(self) -> EstopState:
        return EstopState(self._r.world.time_s, self._r.estop_engaged)


@dataclass(frozen=True, slots=True, eq=False)
class _Render:
    """One camera render: the noisy BGR image and the raw OpenGL z-buffer (0..1, H x W) it came with."""

    stamp_s: float
    bgr: npt.NDArray[np.uint8]
    zbuf: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True, eq=False)
class _DepthImage:
    stamp_s: float
    depth_m: npt.NDArray[np.float32]


def zbuffer_to_depth_m(
    zbuf: npt.NDArray[np.float32], near_m: float, far_m: float, max_range_m: float
) -> npt.NDArray[np.float32]:
    """OpenGL depth-buffer values (0 at ``near_m``, 1 at ``far_m``) -> depth along the optical axis (m):
    z = f n / (f - (f - n) d). Sky (d = 1: nothing rendered) and depths past ``max_range_m`` are NaN."""
    d = zbuf.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = (far_m * near_m / (far_m - (far_m - near_m) * d)).astype(np.float32)
    depth[(zbuf >= 1.0 - 1e-7) | ~(depth <= min(max_range_m, far_m))] = np.nan
    return depth


def _tiny_render(
    rover: SimRover, info: CameraInfo, proj: list[float], view_out: list[Array] | None = None
) -> tuple[Any, Any]:
    """(RGBA H x W x 4 uint8, z-buffer H x W float32) of ``rover``'s camera through ``proj`` (TinyRenderer,
    no segmentation mask, no shadow pass); the view matrix used is appended to ``view_out`` if given."""
    c = rover._c
    if rover.world.soil is not None:
        rover.world.flush_soil()  # the camera sees the soil as it is now
    rot, pos = rover.camera_pose_in_map()
    view_m = gl_view_matrix(rot, pos)
    if view_out is not None:
        view_out.append(view_m)
    view = view_m.T.ravel().tolist()
    w, h = info.width_px, info.height_px
    result: Any = c.getCameraImage(
        w,
        h,
        viewMatrix=view,
        projectionMatrix=proj,
        renderer=c.ER_TINY_RENDERER,
        flags=c.ER_NO_SEGMENTATION_MASK,
        shadow=0,
        # a site's sun (e.g. a low polar sun); the legacy default keeps older worlds' images unchanged
        lightDirection=list(rover.world.lighting.direction()) if rover.world.site is not None else [0.4, 0.3, 1.0],
        lightAmbientCoeff=rover.profile.camera_ambient,
        lightDiffuseCoeff=rover.profile.camera_diffuse,
        lightSpecularCoeff=0.02,
    )
    rgba = np.asarray(result[2], dtype=np.uint8).reshape(h, w, 4)
    zbuf = np.asarray(result[3], dtype=np.float32).reshape(h, w)
    return rgba, zbuf


class _CameraRig:
    """Renders the RGB camera once per due period (``camera_rate_hz``); the depth sensor may sample the
    same render's z-buffer (see ``SimSensorProfile.depth_decimation``)."""

    def __init__(self, rover: SimRover) -> None:
        self._r = rover
        p = rover.profile
        self.info = p.camera_info()
        self.mount = p.camera_mount
        self.camera_id = p.camera_id
        self._proj = gl_projection_matrix(self.info, p.camera_near_m, p.camera_far_m).T.ravel().tolist()
        self._period_s = 1.0 / p.camera_rate_hz
        self._next_s: float | None = None
        self._latest: _Render | None = None
        self._rng_pixels = np.random.default_rng(rover._seeds[_STREAM_CAMERA])
        self._noise: npt.NDArray[np.int16] | None = None
        if p.camera_render not in ("always", "fiducials"):
            raise ValueError(f"SimSensorProfile.camera_render: 'always' or 'fiducials', got {p.camera_render!r}")
        self._on_demand = p.camera_render == "fiducials"
        half_w = math.atan2(self.info.width_px / 2, self.info.fx_px)
        half_h = math.atan2(self.info.height_px / 2, self.info.fy_px)
        margin = math.radians(p.camera_view_margin_deg)
        self._tan_half = (math.tan(min(half_w + margin, 1.5)), math.tan(min(half_h + margin, 1.5)))
        self.skipped_s: float | None = None  # the last due time whose frame was not rendered (on demand)

    def fiducial_in_view(self) -> bool:
        """Could a surveyed fiducial of the world be in the image now (see ``SimSensorProfile.camera_render``)?"""
        beacons = self._r.world.beacons
        if not beacons:
            return False
        rot, pos = self._r.camera_pose_in_map()
        tags = np.array([[b.x_m, b.y_m, b.z_m] for b in beacons], dtype=np.float64)
        v = tags - pos
        c = v @ rot  # in camera_optical: x right, y down, z forward
        z = c[:, 2]
        rng = np.linalg.norm(v, axis=1)
        normals = np.array([[math.cos(b.facing_yaw_rad), math.sin(b.facing_yaw_rad)] for b in beacons])
        facing = np.einsum("ij,ij->i", normals, -v[:, :2]) > 0.0
        tx, ty = self._tan_half
        ok = (
            (z > 0.05)
            & (np.abs(c[:, 0]) <= tx * z)
            & (np.abs(c[:, 1]) <= ty * z)
            & (rng <= self._r.profile.camera_fiducial_range_m)
            & facing
        )
        return bool(ok.any())

    def poll(self) -> _Render | None:
        """The latest render, rendering a new one first when one is due at the clock's time (on demand: only
        when a fiducial could be in it; ``skipped_s`` records a due time that was not rendered)."""
        t = self._r.world.time_s
        if self._next_s is None or t >= self._next_s - 1e-9:
            nxt = (self._next_s if self._next_s is not None else t) + self._period_s
            self._next_s = nxt if nxt > t else t + self._period_s
            if self._on_demand and not self.fiducial_in_view():
                self.skipped_s = t
            else:
                self._latest = self.render(t)
        return self._latest

    def render(self, stamp_s: float) -> _Render:
        p = self._r.profile
        w, h = self.info.width_px, self.info.height_px
        views: list[Array] = []
        rgba, zbuf = _tiny_render(self._r, self.info, self._proj, views)
        image = np.ascontiguousarray(rgba[:, :, 2::-1])
        image[zbuf >= 1.0 - 1e-7] = 0  # no atmosphere: the lunar sky is black
        if p.camera_cast_shadows:
            proj = np.asarray(self._proj, dtype=np.float64).reshape(4, 4).T
            image = self._r.world.shade_cast_shadows(image, zbuf, proj @ views[0], p.camera_ambient, p.camera_diffuse)
        if p.pixel_noise_sigma > 0:
            # Gaussian pixel noise, drawn by OpenCV (3x faster than numpy here) from a seed drawn from this
            # camera's own numpy stream, so runs stay reproducible. Rounded to whole grey levels before it is
            # added: the rendered pixel is an integer, so round(pixel + n) == pixel + round(n) exactly.
            if self._noise is None or self._noise.shape != image.shape:
                self._noise = np.empty(image.shape, dtype=np.int16)
            cv2.setRNGSeed(int(self._rng_pixels.integers(0, 2**31 - 1)))
            sigma = float(p.pixel_noise_sigma)
            cv2.randn(self._noise, np.zeros(3), np.full(3, sigma))
            image = cv2.add(image, self._noise, dtype=cv2.CV_8U)
        if image.shape != (h, w, 3):
            raise DeviceError(f"sim camera {self.camera_id!r}: render is {image.shape}, not {(h, w, 3)}")
        return _Render(stamp_s, image, zbuf)


class _DepthRig:
    """The depth sensor's images at its own resolution (``SimSensorProfile.depth_info``): the camera
    render's z-buffer sampled every k-th pixel when ``depth_decimation`` gives k, else its own render at
    ``depth_rate_hz``. Noise: white Gaussian ``depth_noise_sigma_m`` per pixel."""

    def __init__(self, rover: SimRover, camera: _CameraRig | None) -> None:
        self._r = rover
        p = rover.profile
        self.info = p.depth_info()
        self.mount = p.camera_mount
        self.camera_id = p.camera_id
        self._k = p.depth_decimation()
        self._camera = camera if self._k is not None else None
        self._proj = gl_projection_matrix(self.info, p.camera_near_m, p.camera_far_m).T.ravel().tolist()
        rate = p.depth_rate_hz if p.depth_rate_hz is not None else p.camera_rate_hz
        self._period_s = 1.0 / rate
        self._next_s: float | None = None
        self._latest: _DepthImage | None = None
        self._rng_depth = np.random.default_rng(rover._seeds[_STREAM_DEPTH])

    @property
    def shares_camera_render(self) -> bool:
        return self._camera is not None

    def _to_depth(self, stamp_s: float, zbuf: npt.NDArray[np.float32]) -> _DepthImage:
        p = self._r.profile
        depth = zbuffer_to_depth_m(zbuf, p.camera_near_m, p.camera_far_m, p.depth_max_range_m)
        if p.depth_noise_sigma_m > 0:
            noise = self._rng_depth.standard_normal(depth.shape, dtype=np.float32)
            depth += noise * np.float32(p.depth_noise_sigma_m)
            depth[~(depth > 0)] = np.nan  # noise never makes a return behind the sensor
        h, w = self.info.height_px, self.info.width_px
        if depth.shape != (h, w):
            raise DeviceError(f"sim depth {self.camera_id!r}: image is {depth.shape}, not {(h, w)}")
        return _DepthImage(stamp_s, depth)

    def poll(self) -> _DepthImage | None:
        if self._camera is not None and self._k is not None:
            render = self._camera.poll()
            skipped = self._camera.skipped_s
            if skipped is not None and (render is None or skipped > render.stamp_s):
                # the camera did not render this period (on demand): the depth sensor renders its own image
                if self._latest is None or self._latest.stamp_s != skipped:
                    _rgba, zbuf = _tiny_render(self._r, self.info, self._proj)
                    self._latest = self._to_depth(skipped, zbuf)
                return self._latest
            if render is None:
                return None
            if self._latest is None or self._latest.stamp_s != render.stamp_s:
                o = self._k // 2
                self._latest = self._to_depth(render.stamp_s, render.zbuf[o :: self._k, o :: self._k])
            return self._latest
        t = self._r.world.time_s
        if self._next_s is None or t >= self._next_s - 1e-9:
            nxt = (self._next_s if self._next_s is not None else t) + self._period_s
            self._next_s = nxt if nxt > t else t + self._period_s
            _rgba, zbuf = _tiny_render(self._r, self.info, self._proj)
            self._latest = self._to_depth(t, zbuf)
        return self._latest


class _RigPort:
    """A port fed by a rig's latest image: each image is delivered once."""

    def __init__(self, rig: _CameraRig | _DepthRig) -> None:
        self._rig = rig
        self.camera_id = rig.camera_id
        self.info = rig.info
        self.mount = rig.mount
        self._delivered_s: float | None = None

    def _new(self) -> _Render | _DepthImage | None:
        image = self._rig.poll()
        if image is None or image.stamp_s == self._delivered_s:
            return None
        self._delivered_s = image.stamp_s
        return image


class SimCamera(_RigPort):
    """RGB camera: a ``CameraFrame`` when one is due at ``camera_rate_hz`` (first read always), else None."""

    def read(self) -> CameraFrame | None:
        render = self._new()
        if not isinstance(render, _Render):
            return None
        return CameraFrame(render.stamp_s, self.camera_id, render.bgr.copy(), self.info, self.mount)


class SimDepthSensor(_RigPort):
    """Depth (m along the optical axis, NaN past ``depth_max_range_m`` or on sky) at the depth sensor's own
    resolution and rate (``SimSensorProfile.depth_info``), on the camera's mount."""

    def read(self) -> DepthFrame | None:
        image = self._new()
        if not isinstance(image, _DepthImage):
            return None
        return DepthFrame(image.stamp_s, self.camera_id, image.depth_m.copy(), self.info, self.mount)
