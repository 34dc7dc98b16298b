"""Construction task planner: structure specs -> target profile -> cut/fill volumes -> ordered dig-haul-dump
cycles for one or several rovers, with predicted volume, score, time and energy (pure, deterministic).

State: the planner's surface ``z`` on the site grid (``HeightGrid``; the baseline ``z0`` is the surface before
any work, "grade"), the finished surface ``z*`` (``grid.target_surface``) and the depth dug so far in each
dig strip.

Cycle model (one bucket ``V``; rover model ``RoverModel``):

- dig: a strip ``L = V / (w d)`` long (``w`` cut width, ``d`` cut depth per pass) in the excavation zone,
  along the axis that points at the construction zone; strips are dug pass by pass (shallowest first, then
  the one nearest the structure) down to the mission's maximum cut depth. Time ``2 t_tool + L / v_dig``.
- haul: straight line from the strip's end to the dump stand, ``dump_reach`` short of the pile, facing it;
  time = distance / ``v_haul`` + heading change / yaw rate. These are ideal (obstacle-free) bounds.
  The stand must lie inside the construction zone, ``stand_margin_m`` from its edges (never at the edge of
  the obstacle zone, where a rock's inflation closes its cell). In line from the strip's end when that fits
  (no turn at the stand); else a berm's pile is approached from the side, square to its crest line (nearer
  side first), a pad's in line turned by 90, -90 or 180 deg; if no stand fits, the in-line one. Within a
  layer, spots whose in-line stand fits are served first (base first still holds).
- dump: ``t_dump + t_tool``. The pile is modelled as water-filling the lowest posts of the spot's footprint
  up to the current layer's cap ``min(z*, z0 + (k + 1) dz)``; what does not fit rises to the next layer
  (the pile's top), and what does not fit in the structure is overflow (dumped, not counted).
- base first: each structure is built in layers of ``dz``; a dump goes to the spot with the largest deficit
  in the structure's lowest unfinished layer, so the profile grows from its base at the side slope (which
  the reader keeps at or below the angle of repose).
- energy (Wh) = (P_hotel T + P_drive T_drive + e_dig V) / 3600.

Several rovers: the rover that is free first takes the next cycle of a structure it may build; its dig
strip and dump spot are reserved (a disc around each, for the interval the rover is there) and a cycle
whose spot is reserved by another rover in an overlapping interval within the sum of their clearance radii
is not taken: the rover takes another spot or waits. A cycle is taken only if it ends before the run's
time limit and leaves the battery's reserve untouched.

Score: the Lunabotics guidebook terms (``domain.md``; ``sim.judge.lunabotics_score`` on the sim side).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.construction.grid import FloatArray, HeightGrid, target_surface
from autonomy.construction.scoring import Autonomy, ScoreTerms, lunabotics_score
from autonomy.mission.mission_file import Limits, Mission, RoverModel, StructureSpec
from autonomy.mission.site_zones import Box, SiteZones
from autonomy.msgs import Pose2D

IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class PlannerConfig:
    """``layer_m``: fill layer thickness (base first). ``spot_spacing_m``: dump spots along a berm's crest
    line / grid spacing over a pad. ``dig_margin_m``: strips stay this far inside the excavation zone.
    ``min_fill_fraction``: a structure is done when less than this fraction of a bucket is missing.
    ``volume_scaling``: 2026-27 autonomy points scaled by volume (None: on in lunabotics mode).
    ``candidates``: dig strips and dump spots tried per cycle before waiting. ``stand_margin_m``: a dump
    stand stays this far inside the construction zone's edges (the rover's half-width and a little)."""

    layer_m: float = 0.05
    spot_spacing_m: float = 0.25
    dig_margin_m: float = 0.1
    min_fill_fraction: float = 0.1
    volume_scaling: bool | None = None
    candidates: int = 6
    max_cycles: int = 5000
    stand_margin_m: float = 0.4

    def __post_init__(self) -> None:
        if not (self.layer_m > 0 and self.spot_spacing_m > 0 and self.dig_margin_m >= 0 and self.stand_margin_m >= 0):
            raise ValueError(
                f"PlannerConfig: layer_m, spot_spacing_m must be > 0, dig_margin_m and stand_margin_m >= 0: {self}"
            )
        if not (0 < self.min_fill_fraction <= 1 and self.candidates >= 1 and self.max_cycles >= 1):
            raise ValueError(f"PlannerConfig: bad min_fill_fraction, candidates or max_cycles: {self}")


@dataclass(frozen=True, slots=True)
class Cycle:
    """One planned dig-haul-dump cycle. Distances (m), durations (s, mission time), volumes (m^3)."""

    index: int
    rover_id: str
    structure_id: str
    layer: int
    dig_slot: int
    dig_start: Pose2D
    dig_end_xy: tuple[float, float]
    dump_spot: int
    dump_pose: Pose2D
    pile_xy: tuple[float, float]
    volume_m3: float
    placed_m3: float
    overflow_m3: float
    approach_m: float
    dig_m: float
    haul_m: float
    start_s: float
    approach_s: float
    dig_s: float
    haul_s: float
    dump_s: float
    energy_wh: float

    @property
    def duration_s(self) -> float:
        return self.approach_s + self.dig_s + self.haul_s + self.dump_s

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dig_start"] = [self.dig_start.x_m, self.dig_start.y_m, self.dig_start.yaw_rad]
        d["dump_pose"] = [self.dump_pose.x_m, self.dump_pose.y_m, self.dump_pose.yaw_rad]
        d["dig_end_xy"] = list(self.dig_end_xy)
        d["pile_xy"] = list(self.pile_xy)
        return d


ScorePrediction = ScoreTerms  # a plan predicts the judge's terms (no penalties: a plan has no contacts)


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """A plan: cycles in commit order (mission time order per rover), what they build and predict.

    ``fill_m3``/``cut_m3``: volume missing below / standing above the finished surface of the structures
    at planning time; ``planned_m3``: volume the cycles place in the structures; ``predicted_box_cm3``:
    rise above the baseline inside the site's target box after the plan (what the judge measures);
    ``ideal_cycles_per_hour``: the fleet's rate from the model (sum over rovers of 3600 / mean steady
    cycle time); ``stop_reasons``: why each rover stopped taking cycles."""

    mission: str
    cycles: tuple[Cycle, ...]
    fill_m3: float
    cut_m3: float
    planned_m3: float
    overflow_m3: float
    remaining_m3: float
    predicted_box_cm3: float
    energy_wh: float
    run_minutes: float
    score: ScorePrediction
    ideal_cycles_per_hour: float
    stop_reasons: Mapping[str, str]
    baseline: HeightGrid
    predicted: HeightGrid
    structure_fill_m3: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no grids): what the journal stores and ``rover mission plan --json`` prints."""
        return {
            "mission": self.mission,
            "cycles": [c.to_dict() for c in self.cycles],
            "fill_m3": self.fill_m3,
            "cut_m3": self.cut_m3,
            "planned_m3": self.planned_m3,
            "overflow_m3": self.overflow_m3,
            "remaining_m3": self.remaining_m3,
            "predicted_box_cm3": self.predicted_box_cm3,
            "energy_wh": self.energy_wh,
            "run_minutes": self.run_minutes,
            "score": asdict(self.score),
            "ideal_cycles_per_hour": self.ideal_cycles_per_hour,
            "stop_reasons": dict(self.stop_reasons),
            "structure_fill_m3": dict(self.structure_fill_m3),
        }


def predict_score(
    volume_cm3: float, run_minutes: float, mass_kg: float, energy_wh: float, full_cycles: int, volume_scaling: bool
) -> ScorePrediction:
    """The guidebook score terms of a plan (``autonomy.construction.scoring``), all cycles fully autonomous."""
    return lunabotics_score(
        volume_cm3, run_minutes, mass_kg, energy_wh, Autonomy(full_cycles=full_cycles), 0, volume_scaling
    )


def cycle_fits(
    duration_s: float, energy_wh: float, elapsed_s: float, used_wh: float, limits: Limits, model: RoverModel
) -> str | None:
    """Does one more cycle fit? None if it does, else the reason ("time" or "energy"): it must end by the
    time limit and leave ``limits.energy_reserve_wh`` in the battery."""
    if elapsed_s + duration_s > limits.time_s + 1e-9:
        return "time"
    if used_wh + energy_wh > model.battery_wh - limits.energy_reserve_wh + 1e-9:
        return "energy"
    return None


# ---- internals -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _DigSlot:
    start: Pose2D
    end_xy: tuple[float, float]
    length_m: float
    cells: IntArray
    depth_m: float  # dug so far below the baseline (mean over the strip)
    volume_m3: float  # one pass


@dataclass(slots=True)
class _DumpSpot:
    structure: int
    pile_xy: tuple[float, float]
    cells: IntArray
    axis_yaw_rad: float | None = None  # a berm's crest direction at the pile (None: a pad's spot)


@dataclass(slots=True)
class _RoverState:
    rover_id: str
    model: RoverModel
    x_m: float
    y_m: float
    yaw_rad: float
    t_s: float
    used_wh: float
    structures: tuple[int, ...]
    done: str = ""


@dataclass(frozen=True, slots=True)
class _Reservation:
    rover_id: str
    x_m: float
    y_m: float
    radius_m: float
    t0_s: float
    t1_s: float


def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


def _cells_in_strip(grid: HeightGrid, x0: float, y0: float, yaw: float, length: float, width: float) -> IntArray:
    """Flat indices of posts in the rectangle from (x0, y0) ``length`` along ``yaw``, ``width`` across."""
    ex, ey = x0 + length * math.cos(yaw), y0 + length * math.sin(yaw)
    half = width / 2
    lo_x, hi_x = min(x0, ex) - half, max(x0, ex) + half
    lo_y, hi_y = min(y0, ey) - half, max(y0, ey) + half
    return _cells_where(grid, lo_x, lo_y, hi_x, hi_y, lambda xx, yy: _strip_mask(xx, yy, x0, y0, yaw, length, half))


def _strip_mask(
    xx: FloatArray, yy: FloatArray, x0: float, y0: float, yaw: float, length: float, half: float
) -> npt.NDArray[np.bool_]:
    c, s = math.cos(yaw), math.sin(yaw)
    along = (xx - x0) * c + (yy - y0) * s
    lat = -(xx - x0) * s + (yy - y0) * c
    return np.asarray((along >= 0) & (along <= length) & (np.abs(lat) <= half), dtype=np.bool_)


def _cells_where(grid: HeightGrid, lo_x: float, lo_y: float, hi_x: float, hi_y: float, pred: Any) -> IntArray:
    ny, nx = grid.shape
    ox, oy = grid.origin_xy
    ix0 = max(0, math.floor((lo_x - ox) / grid.cell_m))
    ix1 = min(nx, math.ceil((hi_x - ox) / grid.cell_m) + 1)
    iy0 = max(0, math.floor((lo_y - oy) / grid.cell_m))
    iy1 = min(ny, math.ceil((hi_y - oy) / grid.cell_m) + 1)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.zeros(0, dtype=np.intp)
    ix = np.arange(ix0, ix1)
    iy = np.arange(iy0, iy1)
    xx, yy = np.meshgrid(ox + ix * grid.cell_m, oy + iy * grid.cell_m)
    mask = pred(xx, yy)
    jy, jx = np.nonzero(mask)
    return np.asarray((iy0 + jy) * nx + (ix0 + jx), dtype=np.intp)


def _lane_heading(zones: SiteZones) -> float:
    """Dig along the axis that points from the excavation zone at the construction zone."""
    ex, ey = zones.excavation_zone.center_xy
    cx, cy = zones.construction_zone.center_xy
    dx, dy = cx - ex, cy - ey
    if abs(dx) >= abs(dy):
        return 0.0 if dx >= 0 else math.pi
    return math.pi / 2 if dy > 0 else -math.pi / 2


def _dig_slots(
    zones: SiteZones, grid: HeightGrid, model: RoverModel, margin: float
) -> list[tuple[Pose2D, tuple[float, float], float]]:
    """Strips (start pose, end point, length) tiling the excavation zone, clear of the start zone and
    keep-out boxes."""
    zone = zones.excavation_zone.shrunk(margin)
    if zone is None:
        return []
    yaw = _lane_heading(zones)
    along_x = abs(math.cos(yaw)) > 0.5
    w = model.cut_width_m
    full = model.bucket_m3 / (w * model.cut_depth_m)
    a0, a1 = (zone.x_min_m, zone.x_max_m) if along_x else (zone.y_min_m, zone.y_max_m)
    c0, c1 = (zone.y_min_m, zone.y_max_m) if along_x else (zone.x_min_m, zone.x_max_m)
    usable = a1 - a0
    if usable <= 0 or c1 - c0 < w:
        return []
    length = min(full, usable)
    n_seg = max(1, math.floor(usable / length + 1e-9))
    n_lane = math.floor((c1 - c0) / w + 1e-9)
    forward = (math.cos(yaw) + math.sin(yaw)) > 0
    out: list[tuple[Pose2D, tuple[float, float], float]] = []
    blocked = (zones.start_zone, *zones.keep_out)
    for j in range(n_lane):
        c = c0 + w / 2 + j * w
        for k in range(n_seg):
            # segments from the construction side back: the nearest first
            s0 = a1 - (k + 1) * length if forward else a0 + (k + 1) * length
            s1 = s0 + length if forward else s0 - length
            sx, sy = (s0, c) if along_x else (c, s0)
            ex, ey = (s1, c) if along_x else (c, s1)
            lo_x, hi_x = min(sx, ex) - (0 if along_x else w / 2), max(sx, ex) + (0 if along_x else w / 2)
            lo_y, hi_y = min(sy, ey) - (w / 2 if along_x else 0), max(sy, ey) + (w / 2 if along_x else 0)
            footprint = Box(lo_x, lo_y, max(hi_x, lo_x + 1e-6), max(hi_y, lo_y + 1e-6))
            if any(footprint.overlaps(b) for b in blocked):
                continue
            out.append((Pose2D(sx, sy, yaw), (ex, ey), length))
    return out


def _dump_spots(
    spec: StructureSpec, index: int, grid: HeightGrid, owner_ok: npt.NDArray[np.bool_], spacing: float
) -> list[_DumpSpot]:
    """Piles along a berm's crest line (footprint: its whole cross-section) or on a grid over a pad."""
    flat_ok = owner_ok.ravel()
    pts: list[tuple[float, float]] = []
    axes: list[float | None] = []
    if spec.kind == "berm":
        radius = spec.toe_half_width_m + grid.cell_m
        line = np.asarray(spec.polyline_m, dtype=np.float64)
        yaw = 0.0
        for a, b in itertools.pairwise(line):
            n = max(1, math.ceil(float(np.hypot(*(b - a))) / spacing))
            yaw = math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))
            pts.extend((float(a[0] + (b[0] - a[0]) * t / n), float(a[1] + (b[1] - a[1]) * t / n)) for t in range(n))
            axes.extend([yaw] * n)
        pts.append((float(line[-1][0]), float(line[-1][1])))
        axes.append(yaw)
    else:
        if spec.box_m is None:
            return []
        b = spec.box_m
        nx = max(1, math.ceil(b.size_xy[0] / spacing))
        ny = max(1, math.ceil(b.size_xy[1] / spacing))
        sx, sy = b.size_xy[0] / nx, b.size_xy[1] / ny
        radius = 0.75 * math.hypot(sx, sy) + grid.cell_m
        pts = [(b.x_min_m + (i + 0.5) * sx, b.y_min_m + (j + 0.5) * sy) for j in range(ny) for i in range(nx)]
        axes = [None] * len(pts)
    spots: list[_DumpSpot] = []
    seen: set[tuple[float, float]] = set()
    for (px, py), axis in zip(pts, axes, strict=True):
        key = (round(px, 6), round(py, 6))
        if key in seen:
            continue
        seen.add(key)
        cells = _cells_where(
            grid,
            px - radius,
            py - radius,
            px + radius,
            py + radius,
            lambda xx, yy, px=px, py=py: np.hypot(xx - px, yy - py) <= radius,
        )
        cells = cells[flat_ok[cells]]
        if cells.size:
            spots.append(_DumpSpot(index, (px, py), cells, axis))
    return spots


def _water_fill(cur: FloatArray, room: FloatArray, volume: float) -> FloatArray:
    """Heights to add (m) raising the lowest of ``cur`` first, each by at most ``room``, summing to
    ``volume`` (in m x cells; the caller ensures ``sum(room) >= volume``)."""
    lo = float(np.min(cur))
    hi = float(np.max(cur + room))
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(np.sum(np.clip(mid - cur, 0.0, room))) < volume:
            lo = mid
        else:
            hi = mid
    add = np.clip(hi - cur, 0.0, room)
    total = float(np.sum(add))
    return np.asarray(add * (volume / total) if total > 0 else add, dtype=np.float64)


class _Planner:
    def __init__(
        self,
        mission: Mission,
        baseline: HeightGrid,
        measured: HeightGrid,
        config: PlannerConfig,
        elapsed_s: float,
        used_wh: Mapping[str, float],
        poses: Mapping[str, Pose2D],
        first_index: int,
    ) -> None:
        zones = mission.site.zones
        if zones is None:
            raise ValueError(f"{mission.source}: site: the planner needs a site with zones (ucf, ksc or open)")
        if not mission.structures:
            raise ValueError(f"{mission.source}: structures: nothing to build")
        self.mission = mission
        self.zones = zones
        self.config = config
        self.grid = baseline
        self.z0 = np.asarray(baseline.heights_m, dtype=np.float64).ravel().copy()
        self.z = (
            np.asarray(measured.heights_m, dtype=np.float64).ravel().copy()
            if measured.shape == baseline.shape
            and measured.origin_xy == baseline.origin_xy
            and measured.cell_m == baseline.cell_m
            else measured.resampled_like(baseline).ravel().copy()
        )
        target, owner = target_surface(mission.structures, baseline)
        self.target = target.ravel()
        self.owner = owner.ravel()
        self.area = baseline.cell_area_m2
        self.dz = config.layer_m
        model0 = mission.rovers[0].model
        # Dig strips (one set of strips for the site, sized by the first rover's bucket).
        self.slots: list[_DigSlot] = []
        for start, end, length in _dig_slots(zones, baseline, model0, config.dig_margin_m):
            cells = _cells_in_strip(baseline, start.x_m, start.y_m, start.yaw_rad, length, model0.cut_width_m)
            if cells.size == 0:
                continue
            depth = float(np.mean(self.z0[cells] - self.z[cells]))
            self.slots.append(
                _DigSlot(start, end, length, cells, max(0.0, depth), length * model0.cut_width_m * model0.cut_depth_m)
            )
        self.spots: list[_DumpSpot] = []
        for k, spec in enumerate(mission.structures):
            ok = (owner == k) & np.asarray(target > baseline.heights_m - 1.0, dtype=np.bool_)
            spacing = config.spot_spacing_m
            if spec.kind == "pad" and ok.any():
                # a pad spot's footprint holds about one bucket at the pad's mean fill depth
                depth = float(np.mean(np.maximum(target[ok] - self.z.reshape(baseline.shape)[ok], 0.0)))
                spacing = max(spacing, math.sqrt(model0.bucket_m3 / max(depth, 1e-3)) / 1.5)
            self.spots.extend(_dump_spots(spec, k, baseline, ok, spacing))
        self.layers = [0] * len(mission.structures)
        self.rovers: list[_RoverState] = []
        for r in mission.rovers:
            pose = poses.get(r.rover_id, r.start)
            mine = tuple(k for k, s in enumerate(mission.structures) if not s.rovers or r.rover_id in s.rovers)
            self.rovers.append(
                _RoverState(
                    r.rover_id, r.model, pose.x_m, pose.y_m, pose.yaw_rad, elapsed_s, used_wh.get(r.rover_id, 0.0), mine
                )
            )
        self.reservations: list[_Reservation] = []
        self.cycles: list[Cycle] = []
        self.next_index = first_index

    # -- volumes ------------------------------------------------------------------------------------

    def deficit(self, k: int | None = None) -> float:
        """Volume (m^3) missing below the finished surface (of structure ``k``, or all)."""
        mask = self.owner >= 0 if k is None else self.owner == k
        return float(np.sum(np.maximum(self.target[mask] - self.z[mask], 0.0))) * self.area

    def excess(self) -> float:
        mask = self.owner >= 0
        return float(np.sum(np.maximum(self.z[mask] - self.target[mask], 0.0))) * self.area

    def _cap(self, cells: IntArray, layer: int) -> FloatArray:
        return np.asarray(np.minimum(self.target[cells], self.z0[cells] + (layer + 1) * self.dz), dtype=np.float64)

    def _layer_room(self, spot: _DumpSpot, layer: int) -> float:
        return float(np.sum(np.maximum(self._cap(spot.cells, layer) - self.z[spot.cells], 0.0))) * self.area

    def _room(self, spot: _DumpSpot) -> float:
        return float(np.sum(np.maximum(self.target[spot.cells] - self.z[spot.cells], 0.0))) * self.area

    def _top_layer(self, k: int) -> int:
        mask = self.owner == k
        rise = float(np.max(self.target[mask] - self.z0[mask])) if mask.any() else 0.0
        return max(0, math.ceil(rise / self.dz - 1e-9) - 1)

    def _current_layer(self, k: int, bucket: float) -> int:
        """Lowest layer of structure ``k`` with a spot still missing a useful part of a bucket."""
        top = self._top_layer(k)
        spots = [s for s in self.spots if s.structure == k]
        while self.layers[k] < top and max((self._layer_room(s, self.layers[k]) for s in spots), default=0.0) < (
            0.25 * bucket
        ):
            self.layers[k] += 1
        return self.layers[k]

    def _pile(self, spot: _DumpSpot, layer: int, volume: float) -> tuple[FloatArray, float]:
        """Heights added by a dump of ``volume`` at ``spot`` from ``layer`` up, and the overflow (m^3)."""
        cells = spot.cells
        add = np.zeros(cells.size)
        need = volume / self.area
        top = self._top_layer(spot.structure)
        for kk in range(layer, top + 1):
            cur = self.z[cells] + add
            room = np.maximum(self._cap(cells, kk) - cur, 0.0)
            space = float(np.sum(room))
            if space >= need:
                add += _water_fill(cur, room, need)
                need = 0.0
                break
            add += room
            need -= space
        return np.asarray(add, dtype=np.float64), need * self.area

    # -- cycles -------------------------------------------------------------------------------------

    def _conflict(self, rover_id: str, x: float, y: float, r: float, t0: float, t1: float) -> float | None:
        """End time of the latest reservation by another rover that this one would overlap, else None."""
        worst: float | None = None
        for res in self.reservations:
            if res.rover_id == rover_id or res.t1_s <= t0 or t1 <= res.t0_s:
                continue
            if math.hypot(res.x_m - x, res.y_m - y) < res.radius_m + r:
                worst = res.t1_s if worst is None else max(worst, res.t1_s)
        return worst

    def _propose(
        self, rs: _RoverState
    ) -> tuple[Cycle, list[_Reservation], FloatArray, _DigSlot, _DumpSpot] | float | str:
        """The rover's next cycle; or the time to retry (every candidate is reserved); or why it stops."""
        m = rs.model
        lim = self.mission.limits
        useful = self.config.min_fill_fraction * m.bucket_m3
        work = [
            k
            for k in rs.structures
            if self.deficit(k) > useful and any(self._room(s) > useful for s in self.spots if s.structure == k)
        ]
        if not work:
            return "structures complete"
        slots = [s for s in self.slots if s.depth_m + m.cut_depth_m <= lim.max_cut_depth_m + 1e-9]
        if not slots:
            return "excavation zone dug to the maximum cut depth"
        k = work[0]
        layer = self._current_layer(k, m.bucket_m3)
        # base first: spots with room in the current layer; among them those whose in-line stand fits the
        # construction zone first (no turn at the stand, module doc), then the ones reached from the side
        ex_xy = self.zones.excavation_zone.center_xy
        spots = sorted(
            (s for s in self.spots if s.structure == k),
            key=lambda s: (
                self._layer_room(s, layer) <= useful,
                not self._inline_fits(s, ex_xy, m.dump_reach_m),
                -self._layer_room(s, layer),
            ),
        )[: self.config.candidates]
        target_xy = spots[0].pile_xy if spots else self.zones.target_box.center_xy
        slots = sorted(
            slots,
            key=lambda s: (
                round(s.depth_m / m.cut_depth_m),
                math.hypot(s.end_xy[0] - target_xy[0], s.end_xy[1] - target_xy[1]),
            ),
        )[: self.config.candidates]
        retry: float | None = None
        for slot in slots:
            for spot in spots:
                cyc, res = self._timed(rs, slot, spot, k, layer)
                clash = [self._conflict(rs.rover_id, r.x_m, r.y_m, r.radius_m, r.t0_s, r.t1_s) for r in res]
                late = [c for c in clash if c is not None]
                if late:
                    t = max(late)
                    retry = t if retry is None else min(retry, t)
                    continue
                add, overflow = self._pile(spot, layer, cyc.volume_m3)
                placed = float(np.sum(add)) * self.area
                cyc = _replace_volumes(cyc, placed, overflow)
                return cyc, res, add, slot, spot
        return retry if retry is not None else "no dump spot"

    def _inline_fits(self, spot: _DumpSpot, from_xy: tuple[float, float], reach_m: float) -> bool:
        """The stand ``reach_m`` short of the pile on the line from ``from_xy`` lies ``stand_margin_m`` inside
        the construction zone."""
        px, py = spot.pile_xy
        d = math.hypot(px - from_xy[0], py - from_xy[1])
        if d <= 1e-9:
            return False
        reach = min(reach_m, d)
        sx, sy = px - reach * (px - from_xy[0]) / d, py - reach * (py - from_xy[1]) / d
        return self.zones.construction_zone.contains(sx, sy, self.config.stand_margin_m)

    def _stand(
        self, spot: _DumpSpot, end_xy: tuple[float, float], dig_yaw: float, reach_m: float
    ) -> tuple[tuple[float, float], float, float]:
        """Dump stand ``(x, y)``, heading (facing the pile) and the distance to the pile (module doc): the
        first candidate heading whose stand lies ``stand_margin_m`` inside the construction zone, else the
        in-line stand. Candidates: in line from the strip's end, then (a berm) square to its crest from the
        side nearer the strip's end, then the other side; (a pad) in line turned by 90, -90 or 180 deg."""
        px, py = spot.pile_xy
        ex, ey = end_xy
        d = math.hypot(px - ex, py - ey)
        inline = math.atan2(py - ey, px - ex) if d > 1e-9 else dig_yaw
        inline_reach = min(reach_m, d) if d > 1e-9 else reach_m
        cands: list[tuple[float, float]] = [(inline, inline_reach)]
        if spot.axis_yaw_rad is not None:
            # facing the pile from the side: heading a - pi/2 stands on the crest's left (+pi/2) side
            a = spot.axis_yaw_rad
            sides = [_wrap(a - math.pi / 2), _wrap(a + math.pi / 2)]
            sides.sort(key=lambda h: math.hypot(px - reach_m * math.cos(h) - ex, py - reach_m * math.sin(h) - ey))
            cands += [(h, reach_m) for h in sides]
        else:
            cands += [(_wrap(inline + t), reach_m) for t in (math.pi / 2, -math.pi / 2, math.pi)]
        zone, margin = self.zones.construction_zone, self.config.stand_margin_m
        for h, r in cands:
            sx, sy = px - r * math.cos(h), py - r * math.sin(h)
            if zone.contains(sx, sy, margin):
                return (sx, sy), h, r
        return (px - inline_reach * math.cos(inline), py - inline_reach * math.sin(inline)), inline, inline_reach

    def _timed(
        self, rs: _RoverState, slot: _DigSlot, spot: _DumpSpot, k: int, layer: int
    ) -> tuple[Cycle, list[_Reservation]]:
        m = rs.model
        sx, sy, syaw = slot.start.x_m, slot.start.y_m, slot.start.yaw_rad
        a_dist = math.hypot(sx - rs.x_m, sy - rs.y_m)
        a_bear = math.atan2(sy - rs.y_m, sx - rs.x_m) if a_dist > 1e-6 else rs.yaw_rad
        a_turn = abs(_wrap(a_bear - rs.yaw_rad)) + abs(_wrap(syaw - a_bear))
        approach_s = a_dist / m.haul_speed_mps + a_turn / m.turn_rate_radps
        dig_s = 2 * m.tool_move_s + slot.length_m / m.dig_speed_mps
        ex, ey = slot.end_xy
        px, py = spot.pile_xy
        stand, bear, reach = self._stand(spot, (ex, ey), syaw, m.dump_reach_m)
        h_dist = math.hypot(stand[0] - ex, stand[1] - ey)
        haul_s = h_dist / m.haul_speed_mps + abs(_wrap(bear - syaw)) / m.turn_rate_radps
        dump_s = m.dump_s + m.tool_move_s
        volume = slot.volume_m3 if slot.volume_m3 <= m.bucket_m3 else m.bucket_m3
        total = approach_s + dig_s + haul_s + dump_s
        drive_s = approach_s + haul_s + slot.length_m / m.dig_speed_mps
        energy = (m.hotel_power_w * total + m.drive_power_w * drive_s + m.dig_energy_j_per_m3 * volume) / 3600.0
        t0 = rs.t_s
        cyc = Cycle(
            index=self.next_index,
            rover_id=rs.rover_id,
            structure_id=self.mission.structures[k].structure_id,
            layer=layer,
            dig_slot=self.slots.index(slot),
            dig_start=slot.start,
            dig_end_xy=slot.end_xy,
            dump_spot=self.spots.index(spot),
            dump_pose=Pose2D(stand[0], stand[1], bear),
            pile_xy=spot.pile_xy,
            volume_m3=volume,
            placed_m3=0.0,
            overflow_m3=0.0,
            approach_m=a_dist,
            dig_m=slot.length_m,
            haul_m=h_dist,
            start_s=t0,
            approach_s=approach_s,
            dig_s=dig_s,
            haul_s=haul_s,
            dump_s=dump_s,
            energy_wh=energy,
        )
        t_dig0, t_dig1 = t0 + approach_s, t0 + approach_s + dig_s
        t_dump0 = t_dig1 + haul_s
        mx, my = (sx + ex) / 2, (sy + ey) / 2
        res = [
            _Reservation(rs.rover_id, mx, my, slot.length_m / 2 + m.radius_m, t_dig0, t_dig1),
            _Reservation(
                rs.rover_id, (stand[0] + px) / 2, (stand[1] + py) / 2, reach / 2 + m.radius_m, t_dump0, t_dump0 + dump_s
            ),
        ]
        return cyc, res

    def run(self) -> list[Cycle]:
        lim = self.mission.limits
        while len(self.cycles) < self.config.max_cycles:
            active = [r for r in self.rovers if not r.done]
            if not active:
                break
            rs = min(active, key=lambda r: (r.t_s, r.rover_id))
            got = self._propose(rs)
            if isinstance(got, str):
                rs.done = got
                continue
            if isinstance(got, float):
                wait = max(got, rs.t_s + 1e-3) - rs.t_s
                if rs.t_s + wait > lim.time_s:
                    rs.done = "time"
                    continue
                rs.used_wh += rs.model.hotel_power_w * wait / 3600.0
                rs.t_s += wait
                continue
            cyc, res, add, slot, spot = got
            why = cycle_fits(cyc.duration_s, cyc.energy_wh, rs.t_s, rs.used_wh, lim, rs.model)
            if why is not None:
                rs.done = why
                continue
            # commit
            self.z[spot.cells] += add
            self.z[slot.cells] -= cyc.volume_m3 / (slot.cells.size * self.area)
            slot.depth_m += cyc.volume_m3 / (slot.cells.size * self.area)
            self.reservations.extend(res)
            self.cycles.append(cyc)
            self.next_index += 1
            rs.t_s = cyc.end_s
            rs.used_wh += cyc.energy_wh
            rs.x_m, rs.y_m, rs.yaw_rad = cyc.dump_pose.x_m, cyc.dump_pose.y_m, cyc.dump_pose.yaw_rad
        for r in self.rovers:
            if not r.done:
                r.done = "cycle limit"
        return self.cycles


def _replace_volumes(c: Cycle, placed: float, overflow: float) -> Cycle:
    return replace(c, placed_m3=placed, overflow_m3=overflow)


def default_baseline(zones: SiteZones) -> HeightGrid:
    """A level site at z = 0 on the preset's grid (the plan before any scan)."""
    return HeightGrid.flat(zones.arena, zones.cell_m)


def plan_mission(
    mission: Mission,
    baseline: HeightGrid | None = None,
    config: PlannerConfig = PlannerConfig(),
) -> Plan:
    """Plan the mission's structures from the ``baseline`` surface (default: level ground)."""
    if mission.site.zones is None:
        raise ValueError(f"{mission.source}: site: the planner needs a site with zones (ucf, ksc or open)")
    base = baseline if baseline is not None else default_baseline(mission.site.zones)
    return replan(mission, base, base, config=config)


def replan(
    mission: Mission,
    baseline: HeightGrid,
    measured: HeightGrid,
    elapsed_s: float = 0.0,
    used_wh: Mapping[str, float] | None = None,
    poses: Mapping[str, Pose2D] | None = None,
    first_index: int = 0,
    config: PlannerConfig = PlannerConfig(),
) -> Plan:
    """Plan the remaining cycles from a ``measured`` surface (after some dumps): ``baseline`` is the surface
    before any work (grade); ``measured`` may be on another grid (resampled, nearest post). ``elapsed_s``,
    ``used_wh`` (per rover) and ``poses`` (per rover, default its start) are the state now; cycle indices
    continue from ``first_index``."""
    if not (math.isfinite(elapsed_s) and elapsed_s >= 0):
        raise ValueError(f"replan: elapsed_s must be finite and >= 0, got {elapsed_s!r}")
    p = _Planner(mission, baseline, measured, config, elapsed_s, used_wh or {}, poses or {}, first_index)
    fill0, cut0 = p.deficit(), p.excess()
    fills = {s.structure_id: p.deficit(k) for k, s in enumerate(mission.structures)}
    cycles = p.run()
    zones = p.zones
    predicted = HeightGrid(p.z.reshape(baseline.shape).copy(), baseline.origin_xy, baseline.cell_m)
    rise = np.maximum(predicted.heights_m - baseline.heights_m, 0.0)
    box_cm3 = float(np.sum(rise[baseline.box_mask(zones.target_box)])) * baseline.cell_area_m2 * 1e6
    time_s = mission.limits.time_s
    energy = sum(r.used_wh + r.model.hotel_power_w * max(0.0, time_s - r.t_s) / 3600.0 for r in p.rovers)
    scaling = config.volume_scaling if config.volume_scaling is not None else mission.mode == "lunabotics"
    mass = sum(r.model.mass_kg for r in mission.rovers)
    score = predict_score(box_cm3, time_s / 60.0, mass, energy, len(cycles), scaling)
    rate = 0.0
    for r in mission.rovers:
        mine = [c.duration_s for c in cycles if c.rover_id == r.rover_id]
        steady = mine[1:] if len(mine) >= 2 else mine
        if steady:
            rate += 3600.0 / (sum(steady) / len(steady))
    planned = sum(c.placed_m3 for c in cycles)
    overflow = sum(c.overflow_m3 for c in cycles)
    return Plan(
        mission=mission.name,
        cycles=tuple(cycles),
        fill_m3=fill0,
        cut_m3=cut0,
        planned_m3=planned,
        overflow_m3=overflow,
        remaining_m3=p.deficit(),
        predicted_box_cm3=box_cm3,
        energy_wh=energy,
        run_minutes=time_s / 60.0,
        score=score,
        ideal_cycles_per_hour=rate,
        stop_reasons={r.rover_id: r.done for r in p.rovers},
        baseline=baseline,
        predicted=predicted,
        structure_fill_m3=fills,
    )
