"""Mission files: declarative YAML (never executed as code) read into frozen, typed specs.

Every problem is reported as ``FILE:LINE: field: reason`` (all of them at once, not just the first), so
a user can fix a mission without a traceback. The reader walks PyYAML's node tree (``yaml.compose``)
rather than the loaded Python objects so that each value keeps its line number; unknown keys are errors,
never silently ignored.

Layout of a mission file::

    mission: waypoints             # name
    description: ...               # optional
    seed: 1                        # optional default seed of the simulated site
    site:
      preset: uneven-plain          # simulated site preset
      size_m: [24.0, 24.0]
      beacons:                      # surveyed AprilTag 36h11 fiducials (map frame, REP-103)
        - {id: 0, x_m: 6.0, y_m: -1.5, z_m: 0.45, size_m: 0.2, facing_yaw_rad: 3.1416}
    rovers:
      - id: rover1
        start: {x_m: 0.0, y_m: 0.0, yaw_rad: 0.0}
    waypoints:
      - {x_m: 4.0, y_m: 0.0, tolerance_m: 0.25}
    limits:
      time_s: 300
      max_speed_mps: 0.35
    faults:                         # optional: scheduled fault injection (simulation only)
      - {kind: imu_bias_step, start_s: 30, gyro_bias_radps: [0, 0, 0.01]}
      - {kind: sensor_dropout, sensor: camera, start_s: 10, end_s: 15}
      - {kind: low_friction_patch, box_m: [2, -1, 4, 1], friction: 0.1}

Construction missions (arena presets ``ucf``, ``ksc``, ``open``; zones and fiducials default to the
preset's, see ``site_zones.py``; waypoints are optional when structures are given)::

    mission: lunabotics-ucf
    mode: lunabotics               # competition rules: no GPS/compass, fiducials only in the start zone,
                                   # telemetry for health only (violations are errors)
    site:
      preset: ucf
      zones:                       # optional overrides, boxes [x_min, y_min, x_max, y_max] in map (m)
        target: [6.15, 1.835, 7.65, 2.735]
        keep_out: [[3.0, 0.0, 3.5, 0.5]]
    rovers:
      - id: rover1
        start: {x_m: 1.0, y_m: 1.0, yaw_rad: 0.0}
        sensors: [wheels, imu, camera, depth, battery, tool, estop]
        model: {bucket_m3: 0.015, haul_speed_mps: 0.3}   # planner's rover model (defaults: the sim rover)
    structures:
      - {kind: berm, box_m: [6.15, 1.835, 7.65, 2.735], height_m: 0.2, crest_width_m: 0.2, side_slope_deg: 35}
      # on the open site: - {kind: pad, box_m: [25.5, 18.5, 28.5, 21.5], grade_m: 0.02, rovers: [rover2]}
    limits: {time_s: 900, energy_reserve_wh: 20, max_cut_depth_m: 0.2}
    telemetry: {streams: [battery, tool, estop, pose, obstacle_map, planned_path]}
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import yaml

from autonomy.mission.site_zones import PRESET_ZONES, Box, SiteZones
from autonomy.msgs import Landmark, Pose2D, Waypoint

ARENA_PRESETS = tuple(PRESET_ZONES)  # ucf, ksc, open: zones from site_zones.py
SITE_PRESETS = ("uneven-plain", *ARENA_PRESETS)
MODES = ("free", "lunabotics")
STRUCTURE_KINDS = ("berm", "pad")
SENSOR_KINDS = (
    "wheels",
    "imu",
    "camera",
    "depth",
    "lidar",
    "battery",
    "tool",
    "estop",
    "gps",
    "compass",
    "magnetometer",
    "ultrasonic",
    "touch",
)
DEFAULT_SENSORS = ("wheels", "imu", "camera", "depth", "battery", "tool", "estop")
# Lunabotics guidebook: GPS, compass, ultrasonic and touch sensors are banned (a magnetometer is a compass).
LUNABOTICS_BANNED_SENSORS = ("gps", "compass", "magnetometer", "ultrasonic", "touch")
# Health telemetry, plus the live obstacle map and planned path that 2026-27 mission control must show.
LUNABOTICS_TELEMETRY = (
    "battery",
    "motors",
    "tool",
    "estop",
    "cpu",
    "link",
    "temperatures",
    "pose",
    "obstacle_map",
    "planned_path",
)
TELEMETRY_STREAMS = (*LUNABOTICS_TELEMETRY, "camera", "depth", "teleop")
LUNABOTICS_MAX_MASS_KG = 80.0
DEFAULT_FIDUCIAL_COUNT = 3
DEFAULT_FIDUCIAL_SIZE_M = 0.2

# Keys of each section, as the reader accepts them (missions/mission.schema.json must match: a test checks).
TOP_KEYS = (
    "mission",
    "site",
    "rovers",
    "waypoints",
    "description",
    "seed",
    "limits",
    "faults",
    "mode",
    "structures",
    "telemetry",
)
SITE_KEYS_PLAIN = ("preset", "beacons", "size_m")
SITE_KEYS_ARENA = ("preset", "beacons", "size_m", "frame", "zones")
ZONE_KEYS = ("start", "excavation", "obstacle", "construction", "target", "keep_out")
ROVER_KEYS = ("id", "start", "sensors", "model")
LIMIT_KEYS = ("time_s", "max_speed_mps", "max_yaw_rate_radps", "energy_reserve_wh", "max_cut_depth_m")
BERM_KEYS = ("kind", "id", "box_m", "polyline_m", "height_m", "crest_width_m", "side_slope_deg", "rovers")
PAD_KEYS = ("kind", "id", "box_m", "grade_m", "tolerance_m", "rovers")
TELEMETRY_KEYS = ("streams",)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MissionProblem:
    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


class MissionError(ValueError):
    """A mission file is unreadable or invalid. ``problems`` lists every error found."""

    def __init__(self, problems: list[MissionProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class SiteSpec:
    """The site: a preset, its size, the surveyed fiducials and (arena presets) its zones, the preset's
    unless the mission overrides them."""

    preset: str
    size_m: tuple[float, float]
    beacons: tuple[Landmark, ...]
    zones: SiteZones | None = None
    frame: str = "map"


@dataclass(frozen=True, slots=True)
class RoverModel:
    """What the planner assumes of a rover (defaults: the simulated Lunabotics-class rover, ``sim/backend.py``
    and the timings of ``sim/scripted.py``).

    Digging: the bucket lowers (``tool_move_s``), cuts a strip ``cut_width_m`` wide and ``cut_depth_m`` deep
    per pass driving at ``dig_speed_mps`` until it holds ``bucket_m3``, and raises (``tool_move_s``).
    Dumping: the rover stops ``dump_reach_m`` short of the pile and tips the bucket (``dump_s``).
    Power: ``hotel_power_w`` always, ``drive_power_w`` more while driving, ``dig_energy_j_per_m3`` per
    volume cut. ``radius_m``: the rover's clearance radius (two rovers' reserved spots stay 2 radii apart).
    """

    mass_kg: float = 63.0
    battery_wh: float = 240.0
    bucket_m3: float = 0.015
    cut_depth_m: float = 0.04
    cut_width_m: float = 0.30
    dig_speed_mps: float = 0.12
    haul_speed_mps: float = 0.30
    turn_rate_radps: float = 0.6
    tool_move_s: float = 1.5
    dump_s: float = 3.5
    dump_reach_m: float = 1.0
    hotel_power_w: float = 25.0
    drive_power_w: float = 40.0
    dig_energy_j_per_m3: float = 50_000.0
    radius_m: float = 0.6


# Reader limits of each RoverModel field: (lo, hi).
_MODEL_RANGES: dict[str, tuple[float, float]] = {
    "mass_kg": (1.0, 2000.0),
    "battery_wh": (1.0, 100_000.0),
    "bucket_m3": (1e-4, 10.0),
    "cut_depth_m": (1e-3, 1.0),
    "cut_width_m": (0.02, 5.0),
    "dig_speed_mps": (0.005, 2.0),
    "haul_speed_mps": (0.01, 3.0),
    "turn_rate_radps": (0.01, 5.0),
    "tool_move_s": (0.0, 600.0),
    "dump_s": (0.0, 600.0),
    "dump_reach_m": (0.0, 5.0),
    "hotel_power_w": (0.0, 10_000.0),
    "drive_power_w": (0.0, 10_000.0),
    "dig_energy_j_per_m3": (0.0, 1e9),
    "radius_m": (0.05, 10.0),
}
MODEL_KEYS = tuple(_MODEL_RANGES)


@dataclass(frozen=True, slots=True)
class RoverSpec:
    rover_id: str
    start: Pose2D
    sensors: tuple[str, ...] = DEFAULT_SENSORS
    model: RoverModel = RoverModel()


@dataclass(frozen=True, slots=True)
class Limits:
    """Run time (s), speed limits, the battery energy (Wh) kept in reserve (no cycle may dig into it), and
    the deepest the excavation zone may be dug below its starting surface (m)."""

    time_s: float
    max_speed_mps: float
    max_yaw_rate_radps: float
    energy_reserve_wh: float = 20.0
    max_cut_depth_m: float = 0.2


@dataclass(frozen=True, slots=True)
class StructureSpec:
    """A structure to build (m, ``map``).

    berm: a ridge along ``polyline_m`` (its crest line; from a ``box_m`` it is the box's long centre line,
    inset so the berm's toe stays in the box) of ``height_m`` above grade, a flat crest ``crest_width_m``
    wide and sides at ``side_slope_deg``. pad: the area ``box_m`` levelled to the elevation ``grade_m``
    (map z) within ``tolerance_m``. ``rovers``: which rovers build it (empty: any).
    """

    kind: str
    structure_id: str
    box_m: Box | None = None
    polyline_m: tuple[tuple[float, float], ...] = ()
    height_m: float = 0.0
    crest_width_m: float = 0.0
    side_slope_deg: float = 0.0
    grade_m: float = 0.0
    tolerance_m: float = 0.02
    rovers: tuple[str, ...] = ()

    @property
    def toe_half_width_m(self) -> float:
        """Half the berm's base width: half the crest plus the run of a side (0 for pads)."""
        if self.kind != "berm":
            return 0.0
        return self.crest_width_m / 2 + self.height_m / math.tan(math.radians(self.side_slope_deg))

    def footprint(self) -> Box:
        """Bounding box of the structure's base."""
        if self.kind == "pad" or not self.polyline_m:
            if self.box_m is None:
                raise ValueError(f"structure {self.structure_id}: no footprint")
            return self.box_m
        r = self.toe_half_width_m
        xs = [p[0] for p in self.polyline_m]
        ys = [p[1] for p in self.polyline_m]
        return Box(min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r)


FAULT_KINDS = (
    "sensor_dropout",
    "frozen_frame",
    "imu_bias_step",
    "encoder_loss",
    "low_friction_patch",
    "actuator_stall",
    "command_delay",
    "command_loss",
)
FAULT_SENSORS = ("camera", "depth", "imu", "wheels", "battery", "tool")
FAULT_ACTUATORS = ("tool", "drive")
# Which optional keys each fault kind needs (required) and accepts (optional), beyond kind/start_s/end_s/rover.
_FAULT_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sensor_dropout": (("sensor",), ()),
    "frozen_frame": (("sensor",), ()),
    "imu_bias_step": ((), ("gyro_bias_radps", "accel_bias_mps2")),
    "encoder_loss": ((), ()),
    "low_friction_patch": (("box_m",), ("friction",)),
    "actuator_stall": (("actuator",), ()),
    "command_delay": (("delay_s",), ()),
    "command_loss": ((), ()),
}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault, active on ``start_s <= t < end_s`` of mission time (``end_s`` = inf: forever).

    Only the fields of its ``kind`` are meaningful: ``sensor`` (sensor_dropout, frozen_frame), ``actuator``
    (actuator_stall), ``gyro_bias_radps``/``accel_bias_mps2`` (imu_bias_step, base_link axes),
    ``box_m`` = (x_min, y_min, x_max, y_max) in map and ``friction`` (low_friction_patch), ``delay_s``
    (command_delay). ``rover_id`` None applies the fault to every rover.
    """

    kind: str
    start_s: float = 0.0
    end_s: float = math.inf
    rover_id: str | None = None
    sensor: str | None = None
    actuator: str | None = None
    gyro_bias_radps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    accel_bias_mps2: tuple[float, float, float] = (0.0, 0.0, 0.0)
    box_m: tuple[float, float, float, float] | None = None
    friction: float = 0.1
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Mission:
    name: str
    description: str
    source: str
    seed: int
    site: SiteSpec
    rovers: tuple[RoverSpec, ...]
    waypoints: tuple[Waypoint, ...]
    limits: Limits
    faults: tuple[FaultSpec, ...] = ()
    mode: str = "free"
    structures: tuple[StructureSpec, ...] = ()
    telemetry: tuple[str, ...] = ()
    # goal heading of each waypoint (rad, None: any), parallel to ``waypoints``; empty when none is given
    waypoint_yaws_rad: tuple[float | None, ...] = ()

    @property
    def zones(self) -> SiteZones | None:
        """The site's zones (arena presets), or None."""
        return self.site.zones

    def path_length_m(self) -> float:
        """Length of the waypoint loop from the first rover's start through every waypoint (m)."""
        pts = [(self.rovers[0].start.x_m, self.rovers[0].start.y_m)] + [(w.x_m, w.y_m) for w in self.waypoints]
        return sum(math.dist(a, b) for a, b in itertools.pairwise(pts))


class _Reader:
    """Typed access to a YAML node tree that records problems with line numbers instead of raising."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[MissionProblem] = []

    def problem(self, node: yaml.Node | None, path: str, reason: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(MissionProblem(self.source, line, path, reason))

    def mapping(
        self, node: yaml.Node, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping with keys {', '.join(required + optional)}")
            return None
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            where = f"{path}.{key}" if path and key else (key or path)
            if key is None or key not in required + optional:
                allowed = ", ".join(required + optional)
                self.problem(key_node, where, f"unknown key (allowed: {allowed})")
            elif key in out:
                self.problem(key_node, where, "duplicate key")
            else:
                out[key] = value_node
        for key in required:
            if key not in out:
                self.problem(node, f"{path}.{key}" if path else key, "missing (required)")
        return out

    def sequence(self, node: yaml.Node, path: str, min_len: int = 0) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, "expected a list")
            return None
        if len(node.value) < min_len:
            self.problem(node, path, f"needs at least {min_len} entries, got {len(node.value)}")
        return list(node.value)

    def scalar(self, node: yaml.Node, path: str, kind: str, convert: Callable[[str], T]) -> T | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            self.problem(node, path, f"expected {kind}")
            return None
        try:
            return convert(node.value)
        except ValueError:
            self.problem(node, path, f"expected {kind}, got {node.value!r}")
            return None

    def number(
        self, node: yaml.Node, path: str, lo: float | None = None, hi: float | None = None, positive: bool = False
    ) -> float | None:
        value = self.scalar(node, path, "a number", float)
        if value is None:
            return None
        if not math.isfinite(value):
            self.problem(node, path, f"must be finite, got {node.value!r}")
            return None
        if positive and value <= 0.0:
            self.problem(node, path, f"must be > 0, got {value:g}")
            return None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self.problem(node, path, f"must be within [{lo}, {hi}], got {value:g}")
            return None
        return value

    def integer(self, node: yaml.Node, path: str, lo: int | None = None) -> int | None:
        value = self.scalar(node, path, "an integer", int)
        if value is not None and lo is not None and value < lo:
            self.problem(node, path, f"must be >= {lo}, got {value}")
            return None
        return value

    def text(self, node: yaml.Node, path: str) -> str | None:
        value = self.scalar(node, path, "text", str)
        if value is not None and not value.strip():
            self.problem(node, path, "must not be empty")
            return None
        return value


def _opt(m: dict[str, yaml.Node], key: str) -> yaml.Node | None:
    return m.get(key)


def _read_beacon(r: _Reader, node: yaml.Node, path: str) -> Landmark | None:
    m = r.mapping(node, path, ("id", "x_m", "y_m", "z_m", "size_m"), ("facing_yaw_rad",))
    if m is None or any(k not in m for k in ("id", "x_m", "y_m", "z_m", "size_m")):
        return None
    tag_id = r.integer(m["id"], f"{path}.id", lo=0)
    if tag_id is not None and tag_id > 586:
        r.problem(m["id"], f"{path}.id", f"AprilTag 36h11 ids are 0..586, got {tag_id}")
        tag_id = None
    x = r.number(m["x_m"], f"{path}.x_m")
    y = r.number(m["y_m"], f"{path}.y_m")
    z = r.number(m["z_m"], f"{path}.z_m", lo=0.0, hi=5.0)
    size = r.number(m["size_m"], f"{path}.size_m", lo=0.02, hi=2.0)
    facing_node = _opt(m, "facing_yaw_rad")
    facing = r.number(facing_node, f"{path}.facing_yaw_rad") if facing_node is not None else 0.0
    if None in (tag_id, x, y, z, size, facing):
        return None
    return Landmark(tag_id, x, y, z, size, facing)  # type: ignore[arg-type]


def _read_pose(r: _Reader, node: yaml.Node, path: str) -> Pose2D | None:
    m = r.mapping(node, path, ("x_m", "y_m"), ("yaw_rad",))
    if m is None or "x_m" not in m or "y_m" not in m:
        return None
    x = r.number(m["x_m"], f"{path}.x_m")
    y = r.number(m["y_m"], f"{path}.y_m")
    yaw_node = _opt(m, "yaw_rad")
    yaw = r.number(yaw_node, f"{path}.yaw_rad", lo=-2 * math.pi, hi=2 * math.pi) if yaw_node is not None else 0.0
    if x is None or y is None or yaw is None:
        return None
    return Pose2D(x, y, yaw)


def _read_waypoint(r: _Reader, node: yaml.Node, path: str) -> tuple[Waypoint, float | None] | None:
    """A waypoint and its optional goal heading ``yaw_rad`` (the planned navigation arrives in that heading)."""
    m = r.mapping(node, path, ("x_m", "y_m"), ("tolerance_m", "yaw_rad"))
    if m is None or "x_m" not in m or "y_m" not in m:
        return None
    x = r.number(m["x_m"], f"{path}.x_m")
    y = r.number(m["y_m"], f"{path}.y_m")
    tol_node = _opt(m, "tolerance_m")
    tol = r.number(tol_node, f"{path}.tolerance_m", lo=0.02, hi=5.0) if tol_node is not None else 0.25
    yaw_node = _opt(m, "yaw_rad")
    yaw = r.number(yaw_node, f"{path}.yaw_rad", lo=-2 * math.pi, hi=2 * math.pi) if yaw_node is not None else None
    if x is None or y is None or tol is None or (yaw_node is not None and yaw is None):
        return None
    return Waypoint(x, y, tol), yaw


def _read_vector(r: _Reader, node: yaml.Node, path: str, n: int) -> tuple[float, ...] | None:
    items = r.sequence(node, path, min_len=n)
    if items is None or len(items) < n:
        return None
    if len(items) != n:
        r.problem(node, path, f"expected {n} numbers, got {len(items)}")
        return None
    values = [r.number(item, f"{path}[{i}]") for i, item in enumerate(items)]
    return None if any(v is None for v in values) else tuple(v for v in values if v is not None)


def _read_fault(r: _Reader, node: yaml.Node, path: str) -> FaultSpec | None:
    base = ("kind",)
    common = ("start_s", "end_s", "rover")
    every_key = tuple(sorted({k for req, opt in _FAULT_KEYS.values() for k in req + opt}))
    m = r.mapping(node, path, base, common + every_key)
    if m is None or "kind" not in m:
        return None
    kind = r.text(m["kind"], f"{path}.kind")
    if kind is None:
        return None
    if kind not in _FAULT_KEYS:
        r.problem(m["kind"], f"{path}.kind", f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        return None
    required, optional = _FAULT_KEYS[kind]
    ok = True
    for key, value_node in m.items():
        if key not in base + common + required + optional:
            r.problem(
                value_node,
                f"{path}.{key}",
                f"not used by {kind} faults (they take {', '.join(required + optional) or 'no extra keys'})",
            )
            ok = False
    for key in required:
        if key not in m:
            r.problem(node, f"{path}.{key}", f"missing (required by {kind} faults)")
            ok = False
    start = r.number(m["start_s"], f"{path}.start_s", lo=0.0) if "start_s" in m else 0.0
    end = r.number(m["end_s"], f"{path}.end_s", positive=True) if "end_s" in m else math.inf
    if start is not None and end is not None and end <= start:
        r.problem(m["end_s"], f"{path}.end_s", f"must be after start_s ({start:g}), got {end:g}")
        ok = False
    rover = r.text(m["rover"], f"{path}.rover") if "rover" in m else None
    spec = FaultSpec(kind, start if start is not None else 0.0, end if end is not None else math.inf, rover)
    fields: dict[str, object] = {}
    if "sensor" in m:
        allowed = ("camera", "depth") if kind == "frozen_frame" else FAULT_SENSORS
        sensor = r.text(m["sensor"], f"{path}.sensor")
        if sensor is not None and sensor not in allowed:
            r.problem(
                m["sensor"], f"{path}.sensor", f"unknown sensor {sensor!r} for {kind} (known: {', '.join(allowed)})"
            )
            ok = False
        fields["sensor"] = sensor
    if "actuator" in m:
        actuator = r.text(m["actuator"], f"{path}.actuator")
        if actuator is not None and actuator not in FAULT_ACTUATORS:
            r.problem(m["actuator"], f"{path}.actuator", f"unknown actuator {actuator!r} (known: tool, drive)")
            ok = False
        fields["actuator"] = actuator
    for key in ("gyro_bias_radps", "accel_bias_mps2"):
        if key in m:
            fields[key] = _read_vector(r, m[key], f"{path}.{key}", 3)
    if "box_m" in m:
        box = _read_vector(r, m["box_m"], f"{path}.box_m", 4)
        if box is not None and not (box[2] > box[0] and box[3] > box[1]):
            r.problem(m["box_m"], f"{path}.box_m", "expected [x_min, y_min, x_max, y_max] with max > min")
            box = None
        fields["box_m"] = box
    if "friction" in m:
        fields["friction"] = r.number(m["friction"], f"{path}.friction", lo=0.0, hi=2.0)
    if "delay_s" in m:
        fields["delay_s"] = r.number(m["delay_s"], f"{path}.delay_s", positive=True)
    if not ok or start is None or end is None or any(v is None for v in fields.values()):
        return None
    return replace(spec, **fields)  # type: ignore[arg-type]


_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


def _reject_foreign_tags(r: _Reader, node: yaml.Node) -> None:
    """Mission files are data: a YAML tag that would build a Python object is an error, not a call."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.tag not in _STANDARD_TAGS:
            r.problem(n, "(yaml)", f"tag {n.tag!r} is not allowed: mission files are data, never code")
            continue
        if isinstance(n, yaml.MappingNode):
            stack.extend(v for pair in n.value for v in pair)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)


def _read_box(r: _Reader, node: yaml.Node, path: str) -> Box | None:
    box = _read_vector(r, node, path, 4)
    if box is None:
        return None
    if not (box[2] > box[0] and box[3] > box[1]):
        r.problem(node, path, "expected [x_min, y_min, x_max, y_max] with max > min")
        return None
    return Box(*box)


def _read_text_list(r: _Reader, node: yaml.Node, path: str, known: tuple[str, ...], what: str) -> list[str] | None:
    items = r.sequence(node, path)
    if items is None:
        return None
    out: list[str] = []
    for i, item in enumerate(items):
        value = r.text(item, f"{path}[{i}]")
        if value is None:
            continue
        if value not in known:
            r.problem(item, f"{path}[{i}]", f"unknown {what} {value!r} (known: {', '.join(known)})")
        elif value in out:
            r.problem(item, f"{path}[{i}]", f"{value!r} is listed twice")
        else:
            out.append(value)
    return out


def _peek_scalar(node: yaml.Node, key: str) -> str | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
            return str(v.value)
    return None


def _read_zones(r: _Reader, node: yaml.Node, base: SiteZones, size: tuple[float, float]) -> SiteZones | None:
    m = r.mapping(node, "site.zones", (), ZONE_KEYS)
    if m is None:
        return None
    fields: dict[str, object] = {"size_m": size}
    names = {
        "start": "start_zone",
        "excavation": "excavation_zone",
        "obstacle": "obstacle_zone",
        "construction": "construction_zone",
        "target": "target_box",
    }
    ok = True
    for key, attr in names.items():
        if key in m:
            box = _read_box(r, m[key], f"site.zones.{key}")
            ok = ok and box is not None
            fields[attr] = box
    if "keep_out" in m:
        boxes = [
            _read_box(r, item, f"site.zones.keep_out[{i}]")
            for i, item in enumerate(r.sequence(m["keep_out"], "site.zones.keep_out") or [])
        ]
        ok = ok and all(b is not None for b in boxes)
        fields["keep_out"] = tuple(b for b in boxes if b is not None)
    if not ok:
        return None
    zones = replace(base, **fields)  # type: ignore[arg-type]
    for reason in zones.problems():
        r.problem(node, "site.zones", reason)
    return zones


def _default_beacons(zones: SiteZones) -> tuple[Landmark, ...]:
    """The preset's fiducials: ``DEFAULT_FIDUCIAL_COUNT`` tags (ids 0, 1, ...) spread along its bar."""
    bar = zones.fiducial_bar
    if bar is None:
        return ()
    return tuple(
        Landmark(k, x, y, bar.height_m, DEFAULT_FIDUCIAL_SIZE_M, bar.facing_yaw_rad)
        for k, (x, y) in enumerate(bar.marker_positions(DEFAULT_FIDUCIAL_COUNT))
    )


def _read_model(r: _Reader, node: yaml.Node, path: str) -> RoverModel | None:
    m = r.mapping(node, path, (), MODEL_KEYS)
    if m is None:
        return None
    fields: dict[str, float | None] = {}
    for key, value_node in m.items():
        lo, hi = _MODEL_RANGES[key]
        fields[key] = r.number(value_node, f"{path}.{key}", lo=lo, hi=hi)
    if any(v is None for v in fields.values()):
        return None
    return replace(RoverModel(), **fields)  # type: ignore[arg-type]


def _read_structure(
    r: _Reader, node: yaml.Node, path: str, index: int, repose_deg: float, rover_ids: set[str]
) -> StructureSpec | None:
    kind = _peek_scalar(node, "kind")
    if kind is not None and kind not in STRUCTURE_KINDS:
        r.problem(node, f"{path}.kind", f"unknown structure kind {kind!r} (known: {', '.join(STRUCTURE_KINDS)})")
        return None
    keys = PAD_KEYS if kind == "pad" else BERM_KEYS
    m = r.mapping(node, path, ("kind",), tuple(k for k in keys if k != "kind"))
    if m is None or kind is None:
        if m is not None and "kind" in m:
            r.problem(m["kind"], f"{path}.kind", "expected text: berm or pad")
        return None
    sid = r.text(m["id"], f"{path}.id") if "id" in m else f"{kind}{index + 1}"
    rovers: list[str] = []
    if "rovers" in m:
        for i, item in enumerate(r.sequence(m["rovers"], f"{path}.rovers", min_len=1) or []):
            rid = r.text(item, f"{path}.rovers[{i}]")
            if rid is not None and rover_ids and rid not in rover_ids:
                r.problem(item, f"{path}.rovers[{i}]", f"no rover {rid!r} in this mission")
            elif rid is not None:
                rovers.append(rid)
    box = _read_box(r, m["box_m"], f"{path}.box_m") if "box_m" in m else None
    if kind == "pad":
        if "box_m" not in m:
            r.problem(node, f"{path}.box_m", "missing (required: the pad's area [x_min, y_min, x_max, y_max])")
        if "grade_m" not in m:
            r.problem(node, f"{path}.grade_m", "missing (required: the pad's elevation, map z)")
        grade = r.number(m["grade_m"], f"{path}.grade_m", lo=-5.0, hi=5.0) if "grade_m" in m else None
        tol = r.number(m["tolerance_m"], f"{path}.tolerance_m", lo=0.001, hi=0.5) if "tolerance_m" in m else 0.02
        if box is None or grade is None or tol is None or sid is None:
            return None
        return StructureSpec("pad", sid, box_m=box, grade_m=grade, tolerance_m=tol, rovers=tuple(rovers))
    # berm
    if ("box_m" in m) == ("polyline_m" in m):
        r.problem(node, path, "a berm needs exactly one of box_m or polyline_m")
        return None
    height = r.number(m["height_m"], f"{path}.height_m", lo=0.01, hi=3.0) if "height_m" in m else None
    if "height_m" not in m:
        r.problem(node, f"{path}.height_m", "missing (required: the berm's height above grade)")
    crest = r.number(m["crest_width_m"], f"{path}.crest_width_m", lo=0.0, hi=20.0) if "crest_width_m" in m else 0.2
    slope_node = m.get("side_slope_deg")
    slope = r.number(slope_node, f"{path}.side_slope_deg", lo=5.0, hi=80.0) if slope_node is not None else repose_deg
    if slope is not None and slope > repose_deg + 1e-9:
        r.problem(
            slope_node,
            f"{path}.side_slope_deg",
            f"{slope:g} deg is steeper than the site's angle of repose ({repose_deg:g} deg): the sides would slide",
        )
        slope = None
    polyline: list[tuple[float, float]] = []
    if "polyline_m" in m:
        for i, item in enumerate(r.sequence(m["polyline_m"], f"{path}.polyline_m", min_len=2) or []):
            pt = _read_vector(r, item, f"{path}.polyline_m[{i}]", 2)
            if pt is not None:
                polyline.append((pt[0], pt[1]))
        if len(polyline) < 2:
            return None
    if height is None or crest is None or slope is None or sid is None:
        return None
    spec = StructureSpec("berm", sid, box, tuple(polyline), height, crest, slope, rovers=tuple(rovers))
    if box is not None:
        # The crest line: the box's long centre line, inset by the toe half width at both ends.
        half = spec.toe_half_width_m
        (sx, sy), (cx, cy) = box.size_xy, box.center_xy
        long_x = sx >= sy
        short = sy if long_x else sx
        if 2 * half > short + 1e-9:
            r.problem(
                m["box_m"],
                f"{path}.box_m",
                f"the berm's base ({2 * half:.3g} m wide: crest {crest:g} m + 2 x height / tan(slope)) does not fit "
                f"the box's {short:.3g} m width; lower height_m or crest_width_m, or steepen side_slope_deg",
            )
            return None
        run = max(0.0, (sx if long_x else sy) / 2 - half)
        line = ((cx - run, cy), (cx + run, cy)) if long_x else ((cx, cy - run), (cx, cy + run))
        spec = replace(spec, polyline_m=line)
    return spec


def parse_mission(text: str, source: str = "<mission>") -> Mission:
    """Parse a mission from YAML text; raise ``MissionError`` listing every problem with its line."""
    r = _Reader(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise MissionError([MissionProblem(source, line, "(yaml)", str(exc.problem or exc))]) from None
    except yaml.YAMLError as exc:
        raise MissionError([MissionProblem(source, 1, "(yaml)", str(exc))]) from None
    if root is None:
        raise MissionError([MissionProblem(source, 1, "(file)", "empty mission file")])
    _reject_foreign_tags(r, root)
    if r.problems:
        raise MissionError(r.problems)

    top = r.mapping(root, "", ("mission", "site", "rovers"), TOP_KEYS[3:])
    if top is None:
        raise MissionError(r.problems)

    name = r.text(top["mission"], "mission") if "mission" in top else None
    desc_node = _opt(top, "description")
    description = (r.text(desc_node, "description") or "") if desc_node is not None else ""
    seed_node = _opt(top, "seed")
    seed = r.integer(seed_node, "seed", lo=0) if seed_node is not None else 1
    mode: str | None = "free"
    if "mode" in top:
        mode = r.text(top["mode"], "mode")
        if mode is not None and mode not in MODES:
            r.problem(top["mode"], "mode", f"unknown mode {mode!r} (known: {', '.join(MODES)})")
            mode = None

    site: SiteSpec | None = None
    beacon_nodes: list[yaml.Node] = []
    if "site" in top:
        peeked = _peek_scalar(top["site"], "preset")
        arena = peeked in ARENA_PRESETS
        if arena:
            sm = r.mapping(top["site"], "site", ("preset",), SITE_KEYS_ARENA[1:])
        else:
            sm = r.mapping(top["site"], "site", ("preset", "beacons"), ("size_m",))
        if sm is not None:
            preset = r.text(sm["preset"], "site.preset") if "preset" in sm else None
            if preset is not None and preset not in SITE_PRESETS:
                r.problem(sm["preset"], "site.preset", f"unknown preset {preset!r} (known: {', '.join(SITE_PRESETS)})")
                preset = None
            base_zones = PRESET_ZONES.get(preset) if preset is not None else None
            size: tuple[float, float] | None = base_zones.size_m if base_zones is not None else (24.0, 24.0)
            if "size_m" in sm:
                items = r.sequence(sm["size_m"], "site.size_m", min_len=2)
                if items is not None and len(items) != 2:
                    r.problem(sm["size_m"], "site.size_m", "expected [length_x_m, length_y_m]")
                    size = None
                elif items is not None:
                    sx = r.number(items[0], "site.size_m[0]", lo=4.0, hi=200.0)
                    sy = r.number(items[1], "site.size_m[1]", lo=4.0, hi=200.0)
                    size = (sx, sy) if sx is not None and sy is not None else None
            frame: str | None = "map"
            if "frame" in sm:
                frame = r.text(sm["frame"], "site.frame")
                if frame is not None and frame != "map":
                    r.problem(sm["frame"], "site.frame", f"only the 'map' frame (REP-103) is supported, got {frame!r}")
                    frame = None
            zones: SiteZones | None = None
            if base_zones is not None and size is not None:
                zones = replace(base_zones, size_m=size)
                if "zones" in sm:
                    zones = _read_zones(r, sm["zones"], base_zones, size)
                elif size != base_zones.size_m:
                    for reason in zones.problems():
                        r.problem(sm["size_m"], "site.size_m", reason)
            beacons: list[Landmark] = []
            if "beacons" in sm:
                items = r.sequence(sm["beacons"], "site.beacons", min_len=1)
                for i, item in enumerate(items or []):
                    b = _read_beacon(r, item, f"site.beacons[{i}]")
                    if b is None:
                        continue
                    if any(o.tag_id == b.tag_id for o in beacons):
                        r.problem(item, f"site.beacons[{i}].id", f"tag id {b.tag_id} is used twice")
                        continue
                    beacons.append(b)
                    beacon_nodes.append(item)
            elif zones is not None:
                beacons = list(_default_beacons(zones))
            if preset is not None and size is not None and frame is not None and (base_zones is None or zones):
                site = SiteSpec(preset, size, tuple(beacons), zones, frame)

    rovers: list[RoverSpec] = []
    rover_nodes: list[dict[str, yaml.Node]] = []
    if "rovers" in top:
        for i, item in enumerate(r.sequence(top["rovers"], "rovers", min_len=1) or []):
            rm = r.mapping(item, f"rovers[{i}]", ("id", "start"), ROVER_KEYS[2:])
            if rm is None or "id" not in rm or "start" not in rm:
                continue
            rid = r.text(rm["id"], f"rovers[{i}].id")
            start = _read_pose(r, rm["start"], f"rovers[{i}].start")
            sensors = (
                _read_text_list(r, rm["sensors"], f"rovers[{i}].sensors", SENSOR_KINDS, "sensor")
                if "sensors" in rm
                else list(DEFAULT_SENSORS)
            )
            model = _read_model(r, rm["model"], f"rovers[{i}].model") if "model" in rm else RoverModel()
            if rid is not None and any(o.rover_id == rid for o in rovers):
                r.problem(rm["id"], f"rovers[{i}].id", f"rover id {rid!r} is used twice")
            elif rid is not None and start is not None and sensors is not None and model is not None:
                rovers.append(RoverSpec(rid, start, tuple(sensors), model))
                rover_nodes.append(rm)

    waypoints: list[Waypoint] = []
    yaws: list[float | None] = []
    if "waypoints" in top:
        for i, item in enumerate(r.sequence(top["waypoints"], "waypoints", min_len=1) or []):
            got = _read_waypoint(r, item, f"waypoints[{i}]")
            if got is not None:
                waypoints.append(got[0])
                yaws.append(got[1])

    limits = Limits(time_s=600.0, max_speed_mps=0.35, max_yaw_rate_radps=0.6)
    if site is not None and site.zones is not None:
        limits = replace(limits, time_s=site.zones.run_minutes * 60.0)
    lim_node = _opt(top, "limits")
    if lim_node is not None:
        lm = r.mapping(lim_node, "limits", (), LIMIT_KEYS)
        if lm is not None:
            ranges = {
                "time_s": (1.0, 86400.0),
                "max_speed_mps": (0.01, 2.0),
                "max_yaw_rate_radps": (0.01, 3.0),
                "energy_reserve_wh": (0.0, 100_000.0),
                "max_cut_depth_m": (0.005, 5.0),
            }
            values = {k: r.number(lm[k], f"limits.{k}", lo=lo, hi=hi) for k, (lo, hi) in ranges.items() if k in lm}
            if all(v is not None for v in values.values()):
                limits = replace(limits, **values)  # type: ignore[arg-type]
            if site is not None and site.zones is not None and "max_cut_depth_m" in lm:
                depth = values["max_cut_depth_m"]
                if depth is not None and depth > site.zones.soil_depth_m:
                    r.problem(
                        lm["max_cut_depth_m"],
                        "limits.max_cut_depth_m",
                        f"{depth:g} m is deeper than the site's soil ({site.zones.soil_depth_m:g} m)",
                    )

    telemetry: list[str] = []
    if "telemetry" in top:
        tm = r.mapping(top["telemetry"], "telemetry", ("streams",))
        if tm is not None and "streams" in tm:
            telemetry = _read_text_list(r, tm["streams"], "telemetry.streams", TELEMETRY_STREAMS, "stream") or []

    structures: list[StructureSpec] = []
    structure_nodes: list[yaml.Node] = []
    if "structures" in top:
        repose = site.zones.repose_deg if site is not None and site.zones is not None else 37.0
        ids = {rv.rover_id for rv in rovers}
        for i, item in enumerate(r.sequence(top["structures"], "structures", min_len=1) or []):
            st = _read_structure(r, item, f"structures[{i}]", i, repose, ids)
            if st is None:
                continue
            if any(o.structure_id == st.structure_id for o in structures):
                r.problem(item, f"structures[{i}].id", f"structure id {st.structure_id!r} is used twice")
                continue
            structures.append(st)
            structure_nodes.append(item)
        if site is not None and site.zones is None and structures:
            r.problem(top["structures"], "structures", f"need a site with zones (preset {', '.join(ARENA_PRESETS)})")
    if "waypoints" not in top and "structures" not in top:
        r.problem(root, "waypoints", "missing (required unless structures are given)")

    faults: list[FaultSpec] = []
    faults_node = _opt(top, "faults")
    if faults_node is not None:
        rover_ids = {rv.rover_id for rv in rovers}
        for i, item in enumerate(r.sequence(faults_node, "faults") or []):
            f = _read_fault(r, item, f"faults[{i}]")
            if f is not None and f.rover_id is not None and rovers and f.rover_id not in rover_ids:
                r.problem(item, f"faults[{i}].rover", f"no rover {f.rover_id!r} in this mission")
            elif f is not None:
                faults.append(f)

    if site is not None:
        items_node = top.get("waypoints")
        wp_nodes = items_node.value if isinstance(items_node, yaml.SequenceNode) else []
        if site.zones is None:
            half_x, half_y = site.size_m[0] / 2.0, site.size_m[1] / 2.0
            for i, (w, wn) in enumerate(zip(waypoints, wp_nodes, strict=False)):
                if abs(w.x_m) > half_x - 1.0 or abs(w.y_m) > half_y - 1.0:
                    r.problem(
                        wn, f"waypoints[{i}]", f"({w.x_m:g}, {w.y_m:g}) is outside the site or within 1 m of its edge"
                    )
        else:
            _check_site_geometry(r, site.zones, waypoints, wp_nodes, rovers, rover_nodes, structures, structure_nodes)
        if mode == "lunabotics":
            _check_lunabotics(r, top, site, beacon_nodes, rovers, rover_nodes, limits, telemetry)

    if r.problems or name is None or site is None or seed is None or mode is None or not rovers:
        if not r.problems:
            r.problem(root, "", "incomplete mission")
        raise MissionError(r.problems)
    return Mission(
        name,
        description,
        source,
        seed,
        site,
        tuple(rovers),
        tuple(waypoints),
        limits,
        tuple(faults),
        mode,
        tuple(structures),
        tuple(telemetry),
        tuple(yaws) if any(y is not None for y in yaws) else (),
    )


def _check_site_geometry(
    r: _Reader,
    zones: SiteZones,
    waypoints: list[Waypoint],
    wp_nodes: list[yaml.Node],
    rovers: list[RoverSpec],
    rover_nodes: list[dict[str, yaml.Node]],
    structures: list[StructureSpec],
    structure_nodes: list[yaml.Node],
) -> None:
    """Arena presets: waypoints and starts inside the site and out of keep-out boxes; structures inside the
    construction zone and clear of keep-out boxes."""
    arena = zones.arena
    for i, (w, wn) in enumerate(zip(waypoints, wp_nodes, strict=False)):
        if not arena.contains(w.x_m, w.y_m, margin_m=0.2):
            r.problem(wn, f"waypoints[{i}]", f"({w.x_m:g}, {w.y_m:g}) is outside the site or within 0.2 m of its edge")
        elif any(k.contains(w.x_m, w.y_m) for k in zones.keep_out):
            r.problem(wn, f"waypoints[{i}]", f"({w.x_m:g}, {w.y_m:g}) lies in a keep-out zone")
    for i, (rv, rn) in enumerate(zip(rovers, rover_nodes, strict=False)):
        x, y = rv.start.x_m, rv.start.y_m
        if not arena.contains(x, y):
            r.problem(rn["start"], f"rovers[{i}].start", f"({x:g}, {y:g}) is outside the site {arena.as_list()}")
        elif any(k.contains(x, y) for k in zones.keep_out):
            r.problem(rn["start"], f"rovers[{i}].start", f"({x:g}, {y:g}) lies in a keep-out zone")
    for i, (st, sn) in enumerate(zip(structures, structure_nodes, strict=False)):
        fp = st.footprint()
        if not fp.inside(zones.construction_zone):
            r.problem(
                sn,
                f"structures[{i}]",
                f"its base {[round(v, 3) for v in fp.as_list()]} is not inside the construction zone "
                f"{zones.construction_zone.as_list()}",
            )
        for k, box in enumerate(zones.keep_out):
            if fp.overlaps(box):
                r.problem(sn, f"structures[{i}]", f"its base overlaps keep_out[{k}] {box.as_list()}")


def _check_lunabotics(
    r: _Reader,
    top: dict[str, yaml.Node],
    site: SiteSpec,
    beacon_nodes: list[yaml.Node],
    rovers: list[RoverSpec],
    rover_nodes: list[dict[str, yaml.Node]],
    limits: Limits,
    telemetry: list[str],
) -> None:
    """The Lunabotics rules that apply to software (guidebook, see ``domain.md``)."""
    zones = site.zones
    if zones is None or site.preset not in ("ucf", "ksc"):
        r.problem(top["mode"], "mode", f"lunabotics mode needs the ucf or ksc arena preset, not {site.preset!r}")
        return
    for i, (b, bn) in enumerate(zip(site.beacons, beacon_nodes, strict=False)):
        if not zones.start_zone.contains(b.x_m, b.y_m, margin_m=-0.05):
            r.problem(
                bn,
                f"site.beacons[{i}]",
                f"fiducial {b.tag_id} at ({b.x_m:g}, {b.y_m:g}) is outside the start zone "
                f"{zones.start_zone.as_list()}: lunabotics allows fiducials in the start zone only",
            )
    for i, (rv, rn) in enumerate(zip(rovers, rover_nodes, strict=False)):
        sensors_node = rn.get("sensors")
        sensor_items = sensors_node.value if isinstance(sensors_node, yaml.SequenceNode) else []
        for k, sensor in enumerate(rv.sensors):
            if sensor in LUNABOTICS_BANNED_SENSORS:
                where = sensor_items[k] if k < len(sensor_items) else sensors_node
                r.problem(
                    where,
                    f"rovers[{i}].sensors[{k}]",
                    f"{sensor} is banned in lunabotics mode (no GPS, compass, ultrasonic or touch sensors)",
                )
        if not zones.start_zone.contains(rv.start.x_m, rv.start.y_m):
            r.problem(
                rn["start"],
                f"rovers[{i}].start",
                f"({rv.start.x_m:g}, {rv.start.y_m:g}) is outside the start zone {zones.start_zone.as_list()}",
            )
        if rv.model.mass_kg > LUNABOTICS_MAX_MASS_KG:
            where = rn["model"] if "model" in rn else rn["id"]
            r.problem(
                where,
                f"rovers[{i}].model.mass_kg",
                f"{rv.model.mass_kg:g} kg is over the {LUNABOTICS_MAX_MASS_KG:g} kg limit",
            )
    if limits.time_s > zones.run_minutes * 60.0 + 1e-9:
        lim = top.get("limits")
        r.problem(
            lim,
            "limits.time_s",
            f"{limits.time_s:g} s is longer than a {zones.name} run ({zones.run_minutes:g} min)",
        )
    if "telemetry" in top:
        streams_node = top["telemetry"].value if isinstance(top["telemetry"], yaml.MappingNode) else []
        seq = next((v for k, v in streams_node if getattr(k, "value", None) == "streams"), None)
        items = seq.value if isinstance(seq, yaml.SequenceNode) else []
        for k, stream in enumerate(telemetry):
            if stream not in LUNABOTICS_TELEMETRY:
                r.problem(
                    items[k] if k < len(items) else top["telemetry"],
                    f"telemetry.streams[{k}]",
                    f"{stream} is not allowed in lunabotics mode: telemetry is for health only "
                    f"(allowed: {', '.join(LUNABOTICS_TELEMETRY)})",
                )


def load_mission(path: str | Path) -> Mission:
    """Read and validate a mission file; raise ``MissionError`` (with ``FILE:LINE: field: reason``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissionError([MissionProblem(str(p), 1, "(file)", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MissionError([MissionProblem(str(p), 1, "(file)", f"cannot read: {exc}")]) from None
    return parse_mission(text, str(p))
