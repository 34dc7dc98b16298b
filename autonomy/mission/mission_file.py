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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import yaml

from autonomy.msgs import Landmark, Pose2D, Waypoint

SITE_PRESETS = ("uneven-plain",)
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
    preset: str
    size_m: tuple[float, float]
    beacons: tuple[Landmark, ...]


@dataclass(frozen=True, slots=True)
class RoverSpec:
    rover_id: str
    start: Pose2D


@dataclass(frozen=True, slots=True)
class Limits:
    time_s: float
    max_speed_mps: float
    max_yaw_rate_radps: float


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


def _read_waypoint(r: _Reader, node: yaml.Node, path: str) -> Waypoint | None:
    m = r.mapping(node, path, ("x_m", "y_m"), ("tolerance_m",))
    if m is None or "x_m" not in m or "y_m" not in m:
        return None
    x = r.number(m["x_m"], f"{path}.x_m")
    y = r.number(m["y_m"], f"{path}.y_m")
    tol_node = _opt(m, "tolerance_m")
    tol = r.number(tol_node, f"{path}.tolerance_m", lo=0.02, hi=5.0) if tol_node is not None else 0.25
    if x is None or y is None or tol is None:
        return None
    return Waypoint(x, y, tol)


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

    top = r.mapping(root, "", ("mission", "site", "rovers", "waypoints"), ("description", "seed", "limits", "faults"))
    if top is None:
        raise MissionError(r.problems)

    name = r.text(top["mission"], "mission") if "mission" in top else None
    desc_node = _opt(top, "description")
    description = (r.text(desc_node, "description") or "") if desc_node is not None else ""
    seed_node = _opt(top, "seed")
    seed = r.integer(seed_node, "seed", lo=0) if seed_node is not None else 1

    site: SiteSpec | None = None
    if "site" in top:
        sm = r.mapping(top["site"], "site", ("preset", "beacons"), ("size_m",))
        if sm is not None:
            preset = r.text(sm["preset"], "site.preset") if "preset" in sm else None
            if preset is not None and preset not in SITE_PRESETS:
                r.problem(sm["preset"], "site.preset", f"unknown preset {preset!r} (known: {', '.join(SITE_PRESETS)})")
                preset = None
            size: tuple[float, float] | None = (24.0, 24.0)
            if "size_m" in sm:
                items = r.sequence(sm["size_m"], "site.size_m", min_len=2)
                if items is not None and len(items) != 2:
                    r.problem(sm["size_m"], "site.size_m", "expected [length_x_m, length_y_m]")
                    size = None
                elif items is not None:
                    sx = r.number(items[0], "site.size_m[0]", lo=4.0, hi=200.0)
                    sy = r.number(items[1], "site.size_m[1]", lo=4.0, hi=200.0)
                    size = (sx, sy) if sx is not None and sy is not None else None
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
            if preset is not None and size is not None:
                site = SiteSpec(preset, size, tuple(beacons))

    rovers: list[RoverSpec] = []
    if "rovers" in top:
        for i, item in enumerate(r.sequence(top["rovers"], "rovers", min_len=1) or []):
            rm = r.mapping(item, f"rovers[{i}]", ("id", "start"))
            if rm is None or "id" not in rm or "start" not in rm:
                continue
            rid = r.text(rm["id"], f"rovers[{i}].id")
            start = _read_pose(r, rm["start"], f"rovers[{i}].start")
            if rid is not None and any(o.rover_id == rid for o in rovers):
                r.problem(rm["id"], f"rovers[{i}].id", f"rover id {rid!r} is used twice")
            elif rid is not None and start is not None:
                rovers.append(RoverSpec(rid, start))

    waypoints: list[Waypoint] = []
    if "waypoints" in top:
        for i, item in enumerate(r.sequence(top["waypoints"], "waypoints", min_len=1) or []):
            w = _read_waypoint(r, item, f"waypoints[{i}]")
            if w is not None:
                waypoints.append(w)

    limits = Limits(time_s=600.0, max_speed_mps=0.35, max_yaw_rate_radps=0.6)
    lim_node = _opt(top, "limits")
    if lim_node is not None:
        lm = r.mapping(lim_node, "limits", (), ("time_s", "max_speed_mps", "max_yaw_rate_radps"))
        if lm is not None:
            t = r.number(lm["time_s"], "limits.time_s", lo=1.0, hi=86400.0) if "time_s" in lm else limits.time_s
            v = (
                r.number(lm["max_speed_mps"], "limits.max_speed_mps", lo=0.01, hi=2.0)
                if "max_speed_mps" in lm
                else limits.max_speed_mps
            )
            w_ = (
                r.number(lm["max_yaw_rate_radps"], "limits.max_yaw_rate_radps", lo=0.01, hi=3.0)
                if "max_yaw_rate_radps" in lm
                else limits.max_yaw_rate_radps
            )
            if t is not None and v is not None and w_ is not None:
                limits = Limits(t, v, w_)

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
        half_x, half_y = site.size_m[0] / 2.0, site.size_m[1] / 2.0
        items_node = top.get("waypoints")
        wp_nodes = items_node.value if isinstance(items_node, yaml.SequenceNode) else []
        for i, (w, wn) in enumerate(zip(waypoints, wp_nodes, strict=False)):
            if abs(w.x_m) > half_x - 1.0 or abs(w.y_m) > half_y - 1.0:
                r.problem(
                    wn, f"waypoints[{i}]", f"({w.x_m:g}, {w.y_m:g}) is outside the site or within 1 m of its edge"
                )

    if r.problems or name is None or site is None or seed is None or not rovers or not waypoints:
        if not r.problems:
            r.problem(root, "", "incomplete mission")
        raise MissionError(r.problems)
    return Mission(name, description, source, seed, site, tuple(rovers), tuple(waypoints), limits, tuple(faults))


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
