"""The one typed message contract of Regolith.

Every message is a frozen, slotted dataclass. Units are in the field names (``_m``, ``_rad``, ``_mps``,
``_radps``, ``_s``, ``_px``, ``_v``, ``_a``, ``_n``, ``_wh``). Frames follow ROS REP-103:

- ``map``: the site frame, x east/forward along the arena, y left, z up; fixed to the ground.
- ``base_link``: the rover body, x forward, y left, z up, origin on the ground between the wheels.
- ``camera_optical``: OpenCV's camera frame, z forward out of the lens, x right, y down (REP-103's
  ``_optical`` suffix).

Time is always passed in (``stamp_s``: seconds on the rover's clock, simulated or real); nothing in
``autonomy`` reads a clock. Every message that belongs to one rover of a fleet says which (``rover_id``).
Arrays inside messages (images, depth) are owned by the message: producers hand over a fresh array and
consumers never write to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Vec3 = tuple[float, float, float]
Mat2 = tuple[tuple[float, float], tuple[float, float]]
Mat3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]


class MessageError(ValueError):
    """A message was built with values that break its contract (which field, and why)."""


def _check_finite(name: str, *values: float) -> None:
    for v in values:
        if not math.isfinite(v):
            raise MessageError(f"{name}: must be finite, got {v!r}")


def wrap_angle_rad(angle_rad: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pose2D:
    """A planar pose of ``base_link`` in ``map``: position (m) and heading (rad, counter-clockwise from x)."""

    x_m: float
    y_m: float
    yaw_rad: float

    def __post_init__(self) -> None:
        _check_finite("Pose2D", self.x_m, self.y_m, self.yaw_rad)

    def distance_to_m(self, x_m: float, y_m: float) -> float:
        return math.hypot(x_m - self.x_m, y_m - self.y_m)

    def ahead(self, distance_m: float) -> Pose2D:
        """This pose moved ``distance_m`` along its own heading (negative: back)."""
        if distance_m == 0.0:
            return self
        return Pose2D(
            self.x_m + distance_m * math.cos(self.yaw_rad), self.y_m + distance_m * math.sin(self.yaw_rad), self.yaw_rad
        )

    def moved_beyond(self, other: Pose2D, distance_m: float, yaw_rad: float) -> bool:
        """True when ``other`` lies more than ``distance_m`` away or is turned more than ``yaw_rad`` from this
        pose (heading difference wrapped)."""
        return (
            self.distance_to_m(other.x_m, other.y_m) > distance_m
            or abs(math.remainder(other.yaw_rad - self.yaw_rad, math.tau)) > yaw_rad
        )


@dataclass(frozen=True, slots=True)
class Pose3D:
    """A rigid pose: position (m) and roll/pitch/yaw (rad, applied as R = Rz(yaw) Ry(pitch) Rx(roll))."""

    x_m: float
    y_m: float
    z_m: float
    roll_rad: float = 0.0
    pitch_rad: float = 0.0
    yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        _check_finite("Pose3D", self.x_m, self.y_m, self.z_m, self.roll_rad, self.pitch_rad, self.yaw_rad)

    def rotation(self) -> npt.NDArray[np.float64]:
        """The 3x3 rotation matrix R = Rz(yaw) Ry(pitch) Rx(roll) (child axes expressed in the parent)."""
        cr, sr = math.cos(self.roll_rad), math.sin(self.roll_rad)
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        cy, sy = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        return np.array(
            [
                [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                [-sp, cp * sr, cp * cr],
            ],
            dtype=np.float64,
        )

    def translation(self) -> npt.NDArray[np.float64]:
        return np.array([self.x_m, self.y_m, self.z_m], dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Sensor readings (hw -> autonomy)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WheelEncoderReading:
    """Cumulative wheel rotation (rad, positive drives the rover forward) of a four-wheel skid-steer base."""

    stamp_s: float
    front_left_rad: float
    front_right_rad: float
    rear_left_rad: float
    rear_right_rad: float
    valid: bool = True

    def __post_init__(self) -> None:
        _check_finite(
            "WheelEncoderReading",
            self.stamp_s,
            self.front_left_rad,
            self.front_right_rad,
            self.rear_left_rad,
            self.rear_right_rad,
        )

    def left_rad(self) -> float:
        return 0.5 * (self.front_left_rad + self.rear_left_rad)

    def right_rad(self) -> float:
        return 0.5 * (self.front_right_rad + self.rear_right_rad)


@dataclass(frozen=True, slots=True)
class ImuReading:
    """Body rates (rad/s) and specific force (m/s^2) in ``base_link``."""

    stamp_s: float
    angular_velocity_radps: Vec3
    linear_acceleration_mps2: Vec3

    def __post_init__(self) -> None:
        _check_finite("ImuReading", self.stamp_s, *self.angular_velocity_radps, *self.linear_acceleration_mps2)


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """Pinhole intrinsics (px) and OpenCV distortion coefficients (k1, k2, p1, p2, k3)."""

    width_px: int
    height_px: int
    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise MessageError(f"CameraInfo: image size must be positive, got {self.width_px}x{self.height_px}")
        if self.fx_px <= 0 or self.fy_px <= 0:
            raise MessageError(f"CameraInfo: focal lengths must be positive, got {self.fx_px}, {self.fy_px}")

    def matrix(self) -> npt.NDArray[np.float64]:
        return np.array(
            [[self.fx_px, 0.0, self.cx_px], [0.0, self.fy_px, self.cy_px], [0.0, 0.0, 1.0]], dtype=np.float64
        )


@dataclass(frozen=True, slots=True, eq=False)
class CameraFrame:
    """One colour image (H x W x 3, uint8, BGR as OpenCV uses) from a camera mounted at ``mount`` on
    ``base_link``. ``mount`` is the pose of ``camera_optical`` relative to ``base_link``."""

    stamp_s: float
    camera_id: str
    image_bgr: npt.NDArray[np.uint8]
    info: CameraInfo
    mount: Pose3D

    def __post_init__(self) -> None:
        shape = self.image_bgr.shape
        if self.image_bgr.dtype != np.uint8 or len(shape) != 3 or shape[2] != 3:
            raise MessageError(f"CameraFrame.image_bgr: need HxWx3 uint8, got {shape} {self.image_bgr.dtype}")
        if (shape[1], shape[0]) != (self.info.width_px, self.info.height_px):
            raise MessageError(
                f"CameraFrame.image_bgr: {shape[1]}x{shape[0]} does not match CameraInfo "
                f"{self.info.width_px}x{self.info.height_px}"
            )


@dataclass(frozen=True, slots=True, eq=False)
class DepthFrame:
    """A depth image (H x W, float32, metres along the optical axis; NaN where there is no return)."""

    stamp_s: float
    camera_id: str
    depth_m: npt.NDArray[np.float32]
    info: CameraInfo
    mount: Pose3D

    def __post_init__(self) -> None:
        if self.depth_m.dtype != np.float32 or self.depth_m.ndim != 2:
            raise MessageError(f"DepthFrame.depth_m: need HxW float32, got {self.depth_m.shape} {self.depth_m.dtype}")


@dataclass(frozen=True, slots=True)
class BatteryState:
    stamp_s: float
    voltage_v: float
    current_a: float
    energy_used_wh: float
    state_of_charge: float  # 0..1

    def __post_init__(self) -> None:
        _check_finite("BatteryState", self.stamp_s, self.voltage_v, self.current_a, self.energy_used_wh)
        if not 0.0 <= self.state_of_charge <= 1.0:
            raise MessageError(f"BatteryState.state_of_charge: must be in [0, 1], got {self.state_of_charge}")


@dataclass(frozen=True, slots=True)
class ToolState:
    """The digging tool (bucket) joint: angle (rad, 0 = carry, positive lowers the lip) and load (N)."""

    stamp_s: float
    position_rad: float
    load_n: float
    stalled: bool = False


@dataclass(frozen=True, slots=True)
class EstopState:
    stamp_s: float
    engaged: bool


@dataclass(frozen=True, slots=True)
class SensorFrame:
    """Everything one rover sensed in one tick. Optional fields are None when that sensor had no new data
    (a camera slower than the control loop, a dropout)."""

    rover_id: str
    stamp_s: float
    wheels: WheelEncoderReading | None
    imu: ImuReading | None
    camera: CameraFrame | None = None
    depth: DepthFrame | None = None
    battery: BatteryState | None = None
    tool: ToolState | None = None
    estop: EstopState | None = None


# --------------------------------------------------------------------------------------------------
# Commands (autonomy -> hw)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DriveCommand:
    """Body twist for the skid-steer base in ``base_link``: forward speed (m/s) and yaw rate (rad/s)."""

    stamp_s: float
    linear_x_mps: float
    angular_z_radps: float

    def __post_init__(self) -> None:
        _check_finite("DriveCommand", self.stamp_s, self.linear_x_mps, self.angular_z_radps)

    @staticmethod
    def stop(stamp_s: float) -> DriveCommand:
        return DriveCommand(stamp_s, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ToolCommand:
    """Target angle of the tool joint (rad, same convention as ``ToolState``)."""

    stamp_s: float
    position_rad: float

    def __post_init__(self) -> None:
        _check_finite("ToolCommand", self.stamp_s, self.position_rad)


@dataclass(frozen=True, slots=True)
class Commands:
    rover_id: str
    drive: DriveCommand
    tool: ToolCommand | None = None


# --------------------------------------------------------------------------------------------------
# Perception and estimation products
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FiducialObservation:
    """One AprilTag seen in one image.

    ``tag_in_base`` is the tag's pose in ``base_link`` (tag frame: origin at the tag centre, z out of the
    printed face, x to the tag's right, y up the tag, as OpenCV's IPPE_SQUARE returns it, then moved to
    ``base_link``). ``position_covariance_m2`` is the 2x2 covariance of the tag centre's (x, y) in
    ``base_link``: [[var_x, cov_xy], [cov_xy, var_y]], grown with range and shrunk with the tag's pixel size.
    """

    stamp_s: float
    tag_id: int
    tag_size_m: float
    corners_px: tuple[tuple[float, float], ...]
    tag_in_base: Pose3D
    position_covariance_m2: Mat2
    pixel_size_px: float
    reprojection_error_px: float
    # True when the tag's two IPPE pose solutions fit almost equally well (small tags): the position is
    # good (the two solutions' centres differ by millimetres), the orientation is not to be used.
    orientation_ambiguous: bool = False

    def range_m(self) -> float:
        return math.hypot(self.tag_in_base.x_m, self.tag_in_base.y_m)

    def bearing_rad(self) -> float:
        return math.atan2(self.tag_in_base.y_m, self.tag_in_base.x_m)


@dataclass(frozen=True, slots=True)
class Landmark:
    """A surveyed fiducial: the tag centre's position in ``map`` (m), its printed side length (m, the
    black border's outer edge) and the direction its printed face points (rad, yaw of the face normal)."""

    tag_id: int
    x_m: float
    y_m: float
    z_m: float
    size_m: float
    facing_yaw_rad: float = 0.0


@dataclass(frozen=True, slots=True)
class WallLine:
    """A known straight wall in ``map`` (an arena side): the points p with n . p = ``offset_m``, where
    n = (cos ``normal_rad``, sin ``normal_rad``) points from the site into the wall. A rover inside the site is
    at distance offset_m - n . p from it."""

    wall_id: int
    normal_rad: float
    offset_m: float

    def __post_init__(self) -> None:
        _check_finite("WallLine", self.normal_rad, self.offset_m)


@dataclass(frozen=True, slots=True)
class WallObservation:
    """A straight vertical surface seen in one depth frame, as a line in ``base_link``'s ground plane: the foot
    of the perpendicular from the origin lies ``range_m`` away at bearing ``normal_rad`` (x forward, y left).
    ``covariance`` is the 2x2 covariance of (range_m, normal_rad): [[var_r, cov], [cov, var_phi]].
    ``length_m``: the extent of the points along the line; ``points``: how many points support it."""

    stamp_s: float
    range_m: float
    normal_rad: float
    covariance: Mat2
    length_m: float
    points: int

    def __post_init__(self) -> None:
        _check_finite("WallObservation", self.stamp_s, self.range_m, self.normal_rad, self.length_m)
        if not self.range_m >= 0.0:
            raise MessageError(f"WallObservation.range_m: must be >= 0, got {self.range_m}")


@dataclass(frozen=True, slots=True)
class PoseEstimate:
    """The estimator's belief of ``base_link`` in ``map``.

    ``covariance`` is the 3x3 covariance of (x_m, y_m, yaw_rad):
    [[var_x, cov_xy, cov_x_yaw], [cov_xy, var_y, cov_y_yaw], [cov_x_yaw, cov_y_yaw, var_yaw]].
    """

    stamp_s: float
    pose: Pose2D
    covariance: Mat3
    landmarks_used: int = 0
    # True while the covariance is past the estimator's lost bound (it needs a known landmark to relocalize).
    lost: bool = False

    def position_sigma_m(self) -> float:
        """Root of the larger eigenvalue of the position block (1-sigma along the worst axis)."""
        c = self.covariance
        a, b, d = c[0][0], c[0][1], c[1][1]
        tr, det = a + d, a * d - b * b
        return math.sqrt(max(0.0, 0.5 * tr + math.sqrt(max(0.0, 0.25 * tr * tr - det))))


@dataclass(frozen=True, slots=True)
class Waypoint:
    x_m: float
    y_m: float
    tolerance_m: float = 0.25


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    TIMEOUT = "timeout"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class NavigationStatus:
    """What the navigator is doing: the waypoint it is driving to (index) and how far it has to go."""

    stamp_s: float
    waypoint_index: int
    waypoints_total: int
    distance_to_goal_m: float
    reached: tuple[int, ...] = field(default_factory=tuple)

    @property
    def done(self) -> bool:
        return self.waypoint_index >= self.waypoints_total
