"""The rover's tick: one ``step(SensorFrame) -> Commands`` pipeline, read top to bottom.

    perceive  -> fiducial observations from the camera frame (at the perception rate)
    estimate  -> wheel/IMU odometry predict + landmark updates (LandmarkEkf) + wall updates (lines fitted to
                 the depth frame's high points, matched to the arena's known walls, ``config.walls``; once
                 the rover has moved 5 cm / 2 deg or 5 s since the last) -> PoseEstimate (with ``lost``)
    map       -> the depth frame fused into the elevation map and the hazard votes (at the perception rate)
    decide    -> mission state (at the planning rate): running, completed, aborted; in the planned mode the
                 costmap is rebuilt and the path checked or replanned here
    navigate  -> "waypoints": pure pursuit through the waypoints; "planned": goal poses planned on the
                 costmap, regulated pure pursuit, stuck recovery (``navigator.py``) -> DriveCommand
    limit     -> safety: e-stop, stale inputs, lost localization, collision monitor (planned mode), speed
                 limits -> final commands

The pipeline is a plain class (Duckietown style): no clock, no I/O. Time arrives in ``frame.stamp_s``;
the profiler's timer is injected by the shell. The same seed and the same frames give the same commands.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np

from autonomy.estimation.landmark_ekf import LandmarkEkf, LandmarkEkfParams
from autonomy.estimation.odometry import TurnPivot, WheelImuOdometry
from autonomy.estimation.tilt import TiltFilter, TiltParams, level_observation
from autonomy.mission.mission_file import Mission, RoverSpec
from autonomy.mission.site_zones import Box
from autonomy.msgs import (
    CameraInfo,
    Commands,
    DepthFrame,
    DriveCommand,
    FiducialObservation,
    Landmark,
    NavigationStatus,
    Pose2D,
    PoseEstimate,
    RunStatus,
    SensorFrame,
    WallLine,
    Waypoint,
)
from autonomy.navigation.pure_pursuit import PurePursuit, PurePursuitParams
from autonomy.perception.fiducials import FiducialDetector
from autonomy.perception.tag_tracking import TrackingFiducialDetector
from autonomy.perception.walls import WallConfig, WallDetector
from autonomy.runtime.navigator import NavigatorParams, PlannedNavigator
from autonomy.runtime.profiler import StageProfiler
from autonomy.runtime.rates import RateGroup
from autonomy.runtime.terrain import TerrainModel, TerrainParams

NAVIGATION_MODES = ("waypoints", "planned")
TOOL_LOAD_WINDOW = 20  # tool load readings whose median is the payload (1 s at the 20 Hz control rate)
# the rover's fiducial detector: "full_frame" (``rover_fiducial_detector``: every frame searched whole, the
# default) or "tracking" (``rover_fiducial_tracker``)
FIDUCIAL_DETECTORS = ("full_frame", "tracking")


def _default_ekf_params() -> LandmarkEkfParams:
    """Surveyed landmarks only (no mapping of unknown tags), and a gyro bias prior of 0.15 deg/s (a MEMS gyro
    after its power-on calibration; the 0.5 deg/s default made the position sigma pass the lost bound after
    a minute without tags). Turns add 0.15 m (1-sigma per axis) per sqrt(rad) of position noise: a skid-steer
    base slides while its wheels scrub in a turn, and the wheels report no distance for it (on the open site's
    3 deg slope, 3 to 20 cm per rad of point turn, mostly downhill). Without it the filter stayed at 2 cm
    through the slide and gated the tags that saw it (open-beacons seed 1: ATE 0.46 m, NEES 206 -> 0.08 m, 0.9).
    """
    return LandmarkEkfParams(
        map_unknown=False, yaw_rate_bias_sigma_radps=math.radians(0.15), turn_position_var_per_rad=0.15**2
    )


@dataclass(frozen=True, slots=True)
class RoverGeometry:
    wheel_radius_m: float
    track_width_m: float
    # where its turns in place pivot, from the tool's load (default: about base_link)
    turn_pivot: TurnPivot = field(default_factory=TurnPivot)

    def __post_init__(self) -> None:
        if self.wheel_radius_m <= 0 or self.track_width_m <= 0:
            raise ValueError(f"RoverGeometry: radius and track must be > 0, got {self}")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    rover_id: str
    geometry: RoverGeometry
    start: Pose2D
    landmarks: tuple[Landmark, ...]
    waypoints: tuple[Waypoint, ...]
    max_speed_mps: float = 0.35
    max_yaw_rate_radps: float = 0.6
    start_sigma_m: float = 0.02
    start_sigma_yaw_rad: float = 0.02
    perception_hz: float = 10.0
    planning_hz: float = 2.0
    stale_input_s: float = 0.5
    lost_sigma_m: float = 0.75
    # Real and simulated IMUs sample the rate at an instant: integrate between samples with the trapezoid.
    gyro_trapezoid: bool = True
    # The navigator counts a waypoint reached within this fraction of its tolerance; the rest of the
    # tolerance is the margin for localization error (the judge measures the true position).
    waypoint_acceptance_fraction: float = 0.5
    ekf: LandmarkEkfParams = field(default_factory=_default_ekf_params)
    # "waypoints": pure pursuit through ``waypoints``; "planned": plan on the terrain costmap to each goal pose
    navigation: str = "waypoints"
    # goal headings of the planned mode, one per waypoint (None: any heading); empty: none given
    waypoint_yaws_rad: tuple[float | None, ...] = ()
    # the elevation map (fused from depth frames in every mode): the site's box gives a fixed grid over it
    # (its outside lethal); None: a rolling window around the rover
    site_box: Box | None = None
    keep_out: tuple[Box, ...] = ()
    mapping: bool = True
    terrain: TerrainParams = field(default_factory=TerrainParams)
    navigator: NavigatorParams = field(default_factory=NavigatorParams)
    # "full_frame": every frame searched whole (``rover_fiducial_detector``); "tracking": tracked regions +
    # border strips, the full frame every 5th frame and whenever a tracked tag is lost
    # (``rover_fiducial_tracker``; not the default: 3.2x ArucoDetector's speed (the full-frame detector 3.0x),
    # and small tags appearing mid-view are found up to 4 frames late)
    fiducial_detector: str = "full_frame"
    # known walls (the arena's sides, ``SiteZones.arena_walls``): lines fitted to each depth frame's high points
    # (``autonomy.perception.walls``) correct the pose (``LandmarkEkf.update_wall``); empty: no wall updates
    walls: tuple[WallLine, ...] = ()
    wall_detector: WallConfig = field(default_factory=WallConfig)
    # a wall update needs the rover to have moved this far (m, rad) since the last one, or this long (s): the
    # same view seen again is not new information (each frame's fit error is mostly shared: pitch, bias)
    wall_refuse_distance_m: float = 0.05
    wall_refuse_yaw_rad: float = math.radians(2.0)
    wall_refuse_period_s: float = 5.0
    tilt: TiltParams = field(default_factory=TiltParams)  # base_link's roll and pitch from the IMU (``tilt_rad``)
    # depth frames fused into the terrain map with base_link's roll and pitch from ``tilt`` (False: level).
    # Fused level, a frame from the rover pitched 8 deg nose down in the dug ground puts the flat floor 3 m
    # ahead 0.42 m low. Measured on the UCF build (tenth session): seed 9's map 100 s in had 2,871 of its
    # 6,703 seen cells across the obstacle and construction zones off by more than 10 cm, with the tilt 112 of
    # 988 (the runs part ways; seed 7 at 200 s: 4,482 of 7,501 and 2,035 of 4,994). Seed 9 built 0 cm3 level
    # (every haul's plan blocked), 26,199 with the tilt
    tilt_depth: bool = True
    # the tilt filter's accelerometer read less the rover's own acceleration from the wheels (``TiltFilter.update``)
    tilt_motion: bool = True
    # a depth frame taken with base_link rolled or pitched past this is not fused (the rover is tipping over;
    # UCF build seed 4 tipped to 112 deg of roll in the tenth session's runs)
    max_map_tilt_rad: float = math.radians(30.0)
    # tipping guard (``limit``): past this tilt (the angle between base_link's z and the vertical), rising over
    # the last ``tip_guard_window_s``, a command that keeps the rover moving as it is (same direction, or a turn
    # in place) is stopped; one that backs out the way it came passes. UCF build seed 6 (eleventh session) drove
    # backwards in a dig pit from 16 to 50 deg of pitch in 1.5 s and tipped over. None: off
    tip_guard_rad: float | None = math.radians(20.0)
    tip_guard_window_s: float = 0.5

    def __post_init__(self) -> None:
        if self.fiducial_detector not in FIDUCIAL_DETECTORS:
            raise ValueError(
                f"PipelineConfig.fiducial_detector: must be one of {FIDUCIAL_DETECTORS}, got {self.fiducial_detector!r}"
            )
        if self.navigation not in NAVIGATION_MODES:
            raise ValueError(f"PipelineConfig.navigation: must be one of {NAVIGATION_MODES}, got {self.navigation!r}")
        if not (math.isfinite(self.max_map_tilt_rad) and 0.0 < self.max_map_tilt_rad < math.pi / 2):
            raise ValueError(f"PipelineConfig.max_map_tilt_rad: must be in (0, pi/2), got {self.max_map_tilt_rad}")
        g = self.tip_guard_rad
        if g is not None and not (math.isfinite(g) and 0.0 < g < math.pi / 2):
            raise ValueError(f"PipelineConfig.tip_guard_rad: must be None or in (0, pi/2), got {g!r}")
        if not (math.isfinite(self.tip_guard_window_s) and self.tip_guard_window_s > 0.0):
            raise ValueError(f"PipelineConfig.tip_guard_window_s: must be > 0, got {self.tip_guard_window_s}")
        if self.waypoint_yaws_rad and len(self.waypoint_yaws_rad) != len(self.waypoints):
            raise ValueError(
                f"PipelineConfig.waypoint_yaws_rad: {len(self.waypoint_yaws_rad)} headings for "
                f"{len(self.waypoints)} waypoints"
            )
        if self.navigation == "planned" and not self.mapping:
            raise ValueError("PipelineConfig: the planned navigation needs mapping=True (it plans on the map)")


@dataclass(frozen=True, slots=True)
class TickReport:
    """What the pipeline concluded in its last tick, for logs and reports (not for control)."""

    stamp_s: float
    estimate: PoseEstimate
    observations: tuple[FiducialObservation, ...]
    accepted_observations: int
    navigation: NavigationStatus | None
    status: RunStatus
    stop_reason: str
    lost: bool = False  # the estimator's lost flag (``PoseEstimate.lost``)
    depth_points_fused: int = 0  # points of this tick's depth frame fused into the elevation map
    monitor_action: str = ""  # the collision monitor's action this tick (planned mode)


def mission_navigation_mode(mission: Mission) -> str:
    """The navigation mode of a mission: "planned" on the arena presets (sites with zones, rocks and craters),
    "waypoints" (pure pursuit, as before) on the plain site."""
    return "planned" if mission.site.zones is not None else "waypoints"


def mission_pipeline_config(
    mission: Mission, rover: RoverSpec, geometry: RoverGeometry, navigation: str | None = None
) -> PipelineConfig:
    """The pipeline configuration of one rover of ``mission``: start, surveyed beacons, waypoints (and their
    headings), limits, the site's box and keep-out zones. ``navigation`` overrides the mission's mode."""
    zones = mission.site.zones
    return PipelineConfig(
        rover_id=rover.rover_id,
        geometry=geometry,
        start=rover.start,
        landmarks=mission.site.beacons,
        waypoints=mission.waypoints,
        max_speed_mps=mission.limits.max_speed_mps,
        max_yaw_rate_radps=mission.limits.max_yaw_rate_radps,
        navigation=navigation if navigation is not None else mission_navigation_mode(mission),
        waypoint_yaws_rad=mission.waypoint_yaws_rad,
        site_box=zones.arena if zones is not None else None,
        keep_out=zones.keep_out if zones is not None else (),
        walls=zones.arena_walls() if zones is not None else (),
    )


def rover_fiducial_detector(info: CameraInfo, tag_sizes_m: dict[int, float]) -> FiducialDetector:
    """The detector the rover runs (``PipelineConfig.fiducial_detector == "full_frame"``, the default; ``rover
    bench --suite fiducials`` measures it): one 23 px adaptive-threshold pass (about 2x cheaper than OpenCV's three,
    same recall on our frames), and small tags kept with their position even when their orientation is
    ambiguous, since the EKF uses only the tag centre."""
    return FiducialDetector(info, tag_sizes_m, threshold_windows_px=(23,), keep_ambiguous=True)


def rover_fiducial_tracker(info: CameraInfo, tag_sizes_m: dict[int, float]) -> TrackingFiducialDetector:
    """The rover's tracking detector (``PipelineConfig.fiducial_detector == "tracking"``): the same
    full-frame search as ``rover_fiducial_detector`` with fast decoding, every 5th frame and whenever a tracked
    tag is lost; in between only the tracked tags' predicted regions and strips along the image's left and right
    edges (widened by the image motion) are searched. On the bench's rendered mission frames (640x480) it finds
    every tag of 24 px or more that OpenCV's full-frame ArucoDetector finds, a few more small ones (fast
    decoding), and is 3.2x faster (median of 7 bench runs, 3.18-3.25x; 2.8-3.2x on a more loaded machine); tags
    under 24 px that appear mid-view are found up to 4 frames late (module ``autonomy.perception.tag_tracking``)."""
    return TrackingFiducialDetector(info, tag_sizes_m, keep_ambiguous=True, fast_decode=True)


def make_fiducial_detector(
    kind: str, info: CameraInfo, tag_sizes_m: dict[int, float]
) -> FiducialDetector | TrackingFiducialDetector:
    """``rover_fiducial_tracker`` ("tracking") or ``rover_fiducial_detector`` ("full_frame")."""
    if kind == "tracking":
        return rover_fiducial_tracker(info, tag_sizes_m)
    if kind == "full_frame":
        return rover_fiducial_detector(info, tag_sizes_m)
    raise ValueError(f"make_fiducial_detector: kind must be one of {FIDUCIAL_DETECTORS}, got {kind!r}")


class Pipeline:
    """One rover's autonomy. ``step`` is the only entry point of a tick."""

    STAGES = ("step", "perceive", "estimate", "map", "decide", "navigate", "limit")

    def __init__(self, config: PipelineConfig, profiler: StageProfiler | None = None) -> None:
        self.config = config
        self.profiler = profiler
        self._odometry = WheelImuOdometry(
            config.geometry.wheel_radius_m, config.geometry.track_width_m, gyro_trapezoid=config.gyro_trapezoid
        )
        s_xy, s_yaw = config.start_sigma_m**2, config.start_sigma_yaw_rad**2
        self._ekf = LandmarkEkf(config.start, np.diag([s_xy, s_xy, s_yaw]), config.landmarks, config.ekf)
        self.terrain: TerrainModel | None = None
        if config.mapping:
            self.terrain = TerrainModel(config.terrain, config.start, 0.0, config.site_box, config.keep_out)
        self.navigator: PlannedNavigator | None = None
        if config.navigation == "planned" and config.waypoints:  # (a caller driving itself gives none)
            yaws = config.waypoint_yaws_rad or (None,) * len(config.waypoints)
            goals = [
                (w.x_m, w.y_m) if yaw is None else Pose2D(w.x_m, w.y_m, yaw)
                for w, yaw in zip(config.waypoints, yaws, strict=True)
            ]
            self.navigator = PlannedNavigator(goals, config.navigator, landmarks=config.landmarks, walls=config.walls)
        self._mapping_rate = RateGroup("mapping", config.perception_hz)
        self._measured_speed_mps = 0.0
        self._tilts: deque[tuple[float, float]] = deque()  # (stamp, tilt) over tip_guard_window_s, for ``limit``
        self.frames_too_tilted = 0  # depth frames not fused: base_link past ``max_map_tilt_rad``
        self._last_odom_s: float | None = None
        self._depth_points = 0
        self._monitor_action = ""
        sizes = {lm.tag_id: lm.size_m for lm in config.landmarks}
        self._detector: FiducialDetector | TrackingFiducialDetector | None = None
        self._detector_info: CameraInfo | None = None
        self._tag_sizes = sizes
        self._wall_detector = WallDetector(config.wall_detector) if config.walls else None
        self._last_wall_update: tuple[float, Pose2D] | None = None
        self.walls_seen = 0
        self._follower = PurePursuit(
            PurePursuitParams(max_speed_mps=config.max_speed_mps, max_yaw_rate_radps=config.max_yaw_rate_radps)
        )
        fraction = config.waypoint_acceptance_fraction
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"PipelineConfig.waypoint_acceptance_fraction: must be in (0, 1], got {fraction}")
        self._follower.set_waypoints(
            [Waypoint(w.x_m, w.y_m, w.tolerance_m * config.waypoint_acceptance_fraction) for w in config.waypoints]
        )
        self._perception_rate = RateGroup("perception", config.perception_hz)
        self._planning_rate = RateGroup("planning", config.planning_hz)
        self._last_wheels_s: float | None = None
        self._last_imu_s: float | None = None
        # the last tool (bucket) loads read, N: their median is the payload (a bump spikes one reading to 10-17 N
        # with an empty bucket: waypoints mission, p99 9.8 N)
        self._tool_loads: deque[float] = deque(maxlen=TOOL_LOAD_WINDOW)
        self._turn_pivot_x_m = 0.0  # from their median, updated when a tool reading arrives (``turn_pivot_x_m``)
        self._tilt = TiltFilter(config.tilt)
        self._status = RunStatus.RUNNING
        self._nav: NavigationStatus | None = None
        self.report: TickReport | None = None

    @property
    def status(self) -> RunStatus:
        return self._status

    def _stage(self, name: str) -> AbstractContextManager[None]:
        return self.profiler.stage(name) if self.profiler is not None else nullcontext()

    # -- stages -------------------------------------------------------------------------------------

    def perceive(self, frame: SensorFrame) -> tuple[FiducialObservation, ...]:
        cam = frame.camera
        if cam is None or not self._perception_rate.due(frame.stamp_s):
            return ()
        if self._detector is None or self._detector_info != cam.info:
            self._detector = make_fiducial_detector(self.config.fiducial_detector, cam.info, self._tag_sizes)
            self._detector_info = cam.info
        with self._stage("perceive.fiducials"):  # timed only on ticks that carry a camera frame
            return tuple(self._detector.detect(cam))

    def estimate(self, frame: SensorFrame, observations: Sequence[FiducialObservation]) -> tuple[PoseEstimate, int]:
        if frame.wheels is not None:
            self._last_wheels_s = frame.stamp_s
        if frame.imu is not None:
            self._last_imu_s = frame.stamp_s
        if frame.tool is not None:  # the payload moves the turns' pivot (RoverGeometry.turn_pivot)
            self._tool_loads.append(frame.tool.load_n)
            self._turn_pivot_x_m = self.config.geometry.turn_pivot.pivot_x_m(statistics.median(self._tool_loads))
        delta = self._odometry.update(frame.wheels, frame.imu)
        forward_accel = 0.0  # the rover's own dv/dt (m/s^2) over the last odometry interval
        if delta is not None:
            if self._last_odom_s is not None and frame.stamp_s > self._last_odom_s:
                dt = frame.stamp_s - self._last_odom_s
                speed = delta[0] / dt
                forward_accel = (speed - self._measured_speed_mps) / dt
                self._measured_speed_mps = speed
            self._last_odom_s = frame.stamp_s
            self._ekf.predict(frame.stamp_s, delta[0], delta[1], pivot_x_m=self.turn_pivot_x_m)
        if frame.imu is not None:
            motion = (0.0, 0.0)
            if self.config.tilt_motion:  # the wheels' forward and centripetal acceleration out of the gravity
                motion = (forward_accel, self._measured_speed_mps * frame.imu.angular_velocity_radps[2])
            self._tilt.update(frame.imu, motion, self._measured_speed_mps)
            self._tilts.append((frame.stamp_s, self.tilt_magnitude_rad))
            while self._tilts and frame.stamp_s - self._tilts[0][0] > self.config.tip_guard_window_s:
                self._tilts.popleft()
        if self._tilt.initialised:  # the planar update reads the tags as seen from a level rover
            roll, pitch = self._tilt.roll_rad, self._tilt.pitch_rad
            observations = [level_observation(obs, roll, pitch) for obs in observations]
        accepted = sum(1 for obs in observations if self._ekf.update_fiducial(obs))
        if self._wall_detector is not None and frame.depth is not None:
            self._update_walls(self._wall_detector, frame.depth)
        return self._ekf.estimate(frame.stamp_s), accepted

    def _update_walls(self, detector: WallDetector, depth: DepthFrame) -> None:
        """Wall lines of ``depth`` into the EKF, unless the rover has stood (``wall_refuse_*``) since the last
        accepted wall update."""
        cfg = self.config
        last = self._last_wall_update
        if (
            last is not None
            and depth.stamp_s - last[0] < cfg.wall_refuse_period_s
            and not last[1].moved_beyond(
                self._ekf.estimate(depth.stamp_s).pose, cfg.wall_refuse_distance_m, cfg.wall_refuse_yaw_rad
            )
        ):
            return
        usable, tilt = self._depth_tilt()
        if not usable:
            return  # tipping over: no wall in view is level enough to fit
        with self._stage("perceive.walls"):
            seen = detector.detect(depth, tilt)
        self.walls_seen += len(seen)
        results = [self._ekf.update_wall(wall, cfg.walls) for wall in seen]  # every one, not only up to the first
        if any(results):
            self._last_wall_update = (depth.stamp_s, self._ekf.estimate(depth.stamp_s).pose)

    @property
    def measured_speed_mps(self) -> float:
        """Forward speed from the last two odometry updates (m/s), for stuck detection."""
        return self._measured_speed_mps

    @property
    def turn_pivot_x_m(self) -> float:
        """Where the rover's turns in place pivot now (m ahead of base_link, from the median of the last
        ``TOOL_LOAD_WINDOW`` tool loads read: ``RoverGeometry.turn_pivot``; 0 before the first)."""
        return self._turn_pivot_x_m

    @property
    def tilt_rad(self) -> tuple[float, float]:
        """(roll, pitch) of base_link from the IMU (``autonomy.estimation.tilt``; positive pitch: nose down;
        (0, 0) before the first reading)."""
        return self._tilt.roll_rad, self._tilt.pitch_rad

    def _depth_tilt(self) -> tuple[bool, tuple[float, float] | None]:
        """(usable, tilt) for this tick's depth frame, for the map and the wall fit alike: the tilt filter's
        (roll, pitch) with ``tilt_depth`` once it has read the IMU (else None: level); not usable past
        ``max_map_tilt_rad``."""
        tilt = self.tilt_rad if self.config.tilt_depth and self._tilt.initialised else None
        usable = tilt is None or max(abs(tilt[0]), abs(tilt[1])) <= self.config.max_map_tilt_rad
        return usable, tilt

    @property
    def tilt_magnitude_rad(self) -> float:
        """The angle between base_link's z axis and the vertical (rad), from ``tilt_rad``."""
        roll, pitch = self.tilt_rad
        return math.acos(max(-1.0, min(1.0, math.cos(roll) * math.cos(pitch))))

    def tipping(self, cmd: DriveCommand) -> bool:
        """True when ``cmd`` keeps a tipping rover going (``PipelineConfig.tip_guard_rad``): the tilt is past the
        guard and has risen over the window, and ``cmd`` moves on in the direction the wheels measure (or turns
        in place, or sets off from standing); backing out against that direction is not tipping."""
        guard = self.config.tip_guard_rad
        if guard is None or not self._tilt.initialised or len(self._tilts) < 2:
            return False
        now = self._tilts[-1][1]
        if now <= guard or now <= self._tilts[0][1]:
            return False
        v, moving = cmd.linear_x_mps, self._measured_speed_mps
        if abs(v) < 1e-6:
            return abs(cmd.angular_z_radps) > 1e-6
        return abs(moving) < 0.02 or (v > 0.0) == (moving > 0.0)

    @property
    def landmark_ekf(self) -> LandmarkEkf:
        return self._ekf

    def map_depth(self, frame: SensorFrame, estimate: PoseEstimate) -> int:
        """Fuse the tick's depth frame (at the perception rate) into the terrain model; points used."""
        if self.terrain is None:
            return 0
        if frame.depth is None or not self._mapping_rate.due(frame.stamp_s):
            return 0
        usable, tilt = self._depth_tilt()
        if not usable:
            self.frames_too_tilted += 1  # tipping (or tipped) over: the view is no map of the ground
            return 0
        return self.terrain.fuse(frame.depth, estimate.pose, tilt)

    def decide(self, stamp_s: float, estimate: PoseEstimate) -> RunStatus:
        if self._status is not RunStatus.RUNNING or not self._planning_rate.due(stamp_s):
            return self._status
        if self._nav is not None and self._nav.done:
            self._status = RunStatus.COMPLETED
        elif self.navigator is not None and self.navigator.failed:
            self._status = RunStatus.ABORTED
        elif self.navigator is not None and self.terrain is not None:
            if self.navigator.map_clear_requested:  # no path for a while: forget the map away from the rover
                self.terrain.clear_except_around(estimate.pose, self.navigator.params.map_clear_keep_radius_m)
                self.navigator.map_clear_requested = False
            with self._stage("decide.costmap"):
                cm = self.terrain.costmap()
            with self._stage("decide.plan"):
                self.navigator.update_costmap(cm, estimate.pose)
        return self._status

    def navigate(self, stamp_s: float, estimate: PoseEstimate) -> DriveCommand:
        if self._status is not RunStatus.RUNNING:
            return DriveCommand.stop(stamp_s)
        if self.navigator is not None:
            cmd = self.navigator.step(stamp_s, estimate, self._measured_speed_mps)
            self._nav = self.navigator.status(stamp_s)
            return cmd
        cmd, self._nav = self._follower.update(stamp_s, estimate.pose)
        return cmd

    def limit(self, frame: SensorFrame, cmd: DriveCommand, estimate: PoseEstimate) -> tuple[DriveCommand, str]:
        """Last stage: explicit safety checks, each of which can only slow or stop the rover."""
        t = frame.stamp_s
        if frame.estop is not None and frame.estop.engaged:
            return DriveCommand.stop(t), "estop"
        stale = self.config.stale_input_s
        if self._last_wheels_s is None or t - self._last_wheels_s > stale:
            return DriveCommand.stop(t), "stale wheel encoders"
        if self._last_imu_s is None or t - self._last_imu_s > stale:
            return DriveCommand.stop(t), "stale imu"
        if estimate.lost or estimate.position_sigma_m() > self.config.lost_sigma_m:
            return DriveCommand.stop(t), "localization lost"
        if self.tipping(cmd):
            return DriveCommand.stop(t), "tipping"
        self._monitor_action = ""
        if self.navigator is not None and self.navigator.costmap is not None:
            guarded = self.navigator.guard(cmd, estimate.pose)
            self._monitor_action = guarded.action.value
            if guarded.action.value == "stop" and cmd.linear_x_mps != 0.0:
                return DriveCommand(t, 0.0, guarded.command.angular_z_radps), "collision monitor"
            cmd = guarded.command
        v = float(np.clip(cmd.linear_x_mps, -self.config.max_speed_mps, self.config.max_speed_mps))
        w = float(np.clip(cmd.angular_z_radps, -self.config.max_yaw_rate_radps, self.config.max_yaw_rate_radps))
        if not (math.isfinite(v) and math.isfinite(w)):
            return DriveCommand.stop(t), "non-finite command"
        return DriveCommand(t, v, w), ""

    # -- the tick -----------------------------------------------------------------------------------

    def step(self, frame: SensorFrame) -> Commands:
        if frame.rover_id != self.config.rover_id:
            raise ValueError(f"frame of rover {frame.rover_id!r} given to the pipeline of {self.config.rover_id!r}")
        with self._stage("step"):
            with self._stage("perceive"):
                observations = self.perceive(frame)
            with self._stage("estimate"):
                estimate, accepted = self.estimate(frame, observations)
            with self._stage("map"):
                self._depth_points = self.map_depth(frame, estimate)
            with self._stage("decide"):
                status = self.decide(frame.stamp_s, estimate)
            with self._stage("navigate"):
                cmd = self.navigate(frame.stamp_s, estimate)
            with self._stage("limit"):
                final, reason = self.limit(frame, cmd, estimate)
        self.report = TickReport(
            frame.stamp_s,
            estimate,
            observations,
            accepted,
            self._nav,
            status,
            reason,
            lost=estimate.lost,
            depth_points_fused=self._depth_points,
            monitor_action=self._monitor_action,
        )
        return Commands(self.config.rover_id, final)
