"""Traversability costmap: elevation-derived and hazard layers -> one uint8 cost grid, inflated by the footprint.

Grid (map frame, REP-103): ``cost[row, col]``, rows along y, columns along x. Cell (r, c) covers
``x in [origin_x + c res, origin_x + (c + 1) res)``, ``y in [origin_y + r res, origin_y + (r + 1) res)``; its
centre is ``(origin_x + (c + 0.5) res, origin_y + (r + 0.5) res)``.

Cost values (the Nav2 convention)::

    0            FREE        flat, known ground far from obstacles
    1 .. 252     graded      max(terrain cost, inflation cost): higher = slower / less preferred
    253          INSCRIBED   the rover's centre here would put its body over a lethal cell
    254          LETHAL      rock, crater, too steep, too high a step, keep-out zone, unknown (configurable)

Layers -> cost (all vectorised)::

    lethal   = slope > max_slope | step > max_step | roughness > max_roughness | hazard BLOCKED
               | keep-out (boxes and polygons) | (unknown & unknown_is_lethal)
    terrain  = round(graded_max * max(slope / max_slope, step / max_step, roughness / max_roughness) ** 2)
               (unknown_cost on unknown cells when they are not lethal)
    d        = Euclidean distance (m) from each cell centre to the nearest lethal cell centre
               (cv2.distanceTransform, DIST_L2 / DIST_MASK_PRECISE, on the non-lethal mask)
    inflated = INSCRIBED where d <= inscribed_radius_m,
               round(graded_max * exp(-decay (d - inscribed_radius_m))) where d <= inflation_radius_m, else 0
    cost     = max(terrain, inflated);  LETHAL where lethal

The planner treats ``cost >= INSCRIBED`` as blocked for the rover's centre: a circular footprint of radius
``inscribed_radius_m`` then never overlaps a lethal cell (to within half a cell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.mission.site_zones import Box
from autonomy.msgs import Pose2D

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CostArray = npt.NDArray[np.uint8]

FREE_COST = 0
MAX_GRADED_COST = 252
INSCRIBED = 253
LETHAL = 254

# Hazard-class codes (the same values as autonomy.perception.hazards FREE / BLOCKED / UNKNOWN).
HAZARD_FREE = 0
HAZARD_BLOCKED = 1
HAZARD_UNKNOWN = 2


class CostmapError(ValueError):
    """A costmap was built from layers that break its contract (which layer or parameter, and why)."""


@dataclass(frozen=True, slots=True)
class CostmapParams:
    """Thresholds (deg, m), footprint (m) and grading of the costmap.

    ``inscribed_radius_m``: the rover's clearance radius (half its diagonal for a box rover, or
    ``RoverModel.radius_m``); ``inflation_radius_m``: how far from lethal cells the cost decays to zero.
    """

    max_slope_deg: float = 25.0
    max_step_m: float = 0.12
    max_roughness_m: float = 0.05
    inscribed_radius_m: float = 0.6
    inflation_radius_m: float = 1.2
    inflation_decay_per_m: float = 5.0
    unknown_is_lethal: bool = True
    unknown_cost: int = 200  # used on unknown cells when unknown_is_lethal is False
    graded_max: int = 200  # the terrain and inflation costs' ceiling (< INSCRIBED)

    def __post_init__(self) -> None:
        for name in ("max_slope_deg", "max_step_m", "max_roughness_m", "inflation_decay_per_m"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise CostmapError(f"CostmapParams.{name}: must be finite and > 0, got {v}")
        if not (math.isfinite(self.inscribed_radius_m) and self.inscribed_radius_m >= 0.0):
            raise CostmapError(f"CostmapParams.inscribed_radius_m: must be >= 0, got {self.inscribed_radius_m}")
        if not (math.isfinite(self.inflation_radius_m) and self.inflation_radius_m >= self.inscribed_radius_m):
            raise CostmapError(
                f"CostmapParams.inflation_radius_m: must be >= inscribed_radius_m {self.inscribed_radius_m}, "
                f"got {self.inflation_radius_m}"
            )
        for name in ("unknown_cost", "graded_max"):
            v = getattr(self, name)
            if not 0 <= v <= MAX_GRADED_COST:
                raise CostmapError(f"CostmapParams.{name}: must be in [0, {MAX_GRADED_COST}], got {v}")


@dataclass(frozen=True, slots=True)
class GridSpec:
    """Where a grid lies in ``map``: lower-left corner of cell (0, 0) (m), cell size (m), (rows, cols)."""

    origin_x_m: float
    origin_y_m: float
    resolution_m: float
    rows: int
    cols: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.origin_x_m) and math.isfinite(self.origin_y_m)):
            raise CostmapError(f"GridSpec: origin must be finite, got ({self.origin_x_m}, {self.origin_y_m})")
        if not (math.isfinite(self.resolution_m) and self.resolution_m > 0.0):
            raise CostmapError(f"GridSpec.resolution_m: must be > 0, got {self.resolution_m}")
        if self.rows < 1 or self.cols < 1:
            raise CostmapError(f"GridSpec: need rows, cols >= 1, got {self.rows}x{self.cols}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    def world_to_cell(self, x_m: float, y_m: float) -> tuple[int, int]:
        """(row, col) of the cell holding (x, y); may lie outside the grid (check ``in_bounds``)."""
        return (
            math.floor((y_m - self.origin_y_m) / self.resolution_m),
            math.floor((x_m - self.origin_x_m) / self.resolution_m),
        )

    def cell_to_world(self, row: float, col: float) -> tuple[float, float]:
        """(x, y) of the centre of cell (row, col)."""
        return (
            self.origin_x_m + (col + 0.5) * self.resolution_m,
            self.origin_y_m + (row + 0.5) * self.resolution_m,
        )

    def cells_to_world(self, cells: npt.NDArray[np.int64]) -> FloatArray:
        """(n, 2) (row, col) -> (n, 2) (x, y) of the cell centres."""
        rc = np.asarray(cells, dtype=np.float64).reshape(-1, 2)
        out = np.empty_like(rc)
        out[:, 0] = self.origin_x_m + (rc[:, 1] + 0.5) * self.resolution_m
        out[:, 1] = self.origin_y_m + (rc[:, 0] + 0.5) * self.resolution_m
        return out

    def in_bounds(self, row: int, col: int) -> bool:
        return 0 <= row < self.rows and 0 <= col < self.cols


@dataclass(frozen=True, slots=True, eq=False)
class Costmap:
    """A uint8 cost grid in ``map`` (see the module docstring). ``cost`` is owned by the costmap (read-only)."""

    grid: GridSpec
    cost: CostArray
    params: CostmapParams

    def __post_init__(self) -> None:
        if self.cost.dtype != np.uint8 or self.cost.shape != self.grid.shape:
            raise CostmapError(f"Costmap.cost: need {self.grid.shape} uint8, got {self.cost.shape} {self.cost.dtype}")
        self.cost.flags.writeable = False  # owned by the costmap: planners cache views of it

    # -- construction ----------------------------------------------------------------------------------

    @staticmethod
    def from_layers(
        grid: GridSpec,
        params: CostmapParams | None = None,
        *,
        slope_deg: FloatArray | None = None,
        step_m: FloatArray | None = None,
        roughness_m: FloatArray | None = None,
        hazard: npt.NDArray[np.uint8] | None = None,
        known: BoolArray | None = None,
        keep_out_boxes: Sequence[Box] = (),
        keep_out_polygons: Sequence[Sequence[tuple[float, float]]] = (),
    ) -> Costmap:
        """Build the costmap from map-frame layers of ``grid.shape`` (rows y, columns x).

        Elevation layers (``slope_deg``, ``step_m``, ``roughness_m``) use NaN for unknown cells. ``hazard``
        holds FREE / BLOCKED / UNKNOWN codes (``autonomy.perception.hazards``). A cell is unknown when
        ``known`` is False, when ``hazard`` says UNKNOWN, or when any given elevation layer is NaN there.
        Keep-out boxes and polygons (vertices (x, y) in ``map``) are lethal. Layers left as None are not used.
        """
        prm = params or CostmapParams()
        shape = grid.shape
        lethal = np.zeros(shape, dtype=bool)
        unknown = np.zeros(shape, dtype=bool)
        ratio = np.zeros(shape, dtype=np.float64)
        for name, layer, limit in (
            ("slope_deg", slope_deg, prm.max_slope_deg),
            ("step_m", step_m, prm.max_step_m),
            ("roughness_m", roughness_m, prm.max_roughness_m),
        ):
            if layer is None:
                continue
            arr = np.asarray(layer, dtype=np.float64)
            if arr.shape != shape:
                raise CostmapError(f"Costmap.from_layers: layer {name} is {arr.shape}, grid is {shape}")
            nan = np.isnan(arr)
            unknown |= nan
            r = np.where(nan, 0.0, np.abs(arr)) / limit
            lethal |= r > 1.0
            np.maximum(ratio, r, out=ratio)
        if hazard is not None:
            h = np.asarray(hazard)
            if h.shape != shape:
                raise CostmapError(f"Costmap.from_layers: layer hazard is {h.shape}, grid is {shape}")
            bad = ~np.isin(h, (HAZARD_FREE, HAZARD_BLOCKED, HAZARD_UNKNOWN))
            if bad.any():
                raise CostmapError(
                    f"Costmap.from_layers: hazard holds codes other than FREE/BLOCKED/UNKNOWN: {np.unique(h[bad])}"
                )
            lethal |= h == HAZARD_BLOCKED
            unknown |= h == HAZARD_UNKNOWN
        if known is not None:
            k = np.asarray(known, dtype=bool)
            if k.shape != shape:
                raise CostmapError(f"Costmap.from_layers: layer known is {k.shape}, grid is {shape}")
            unknown |= ~k
        lethal |= keep_out_mask(grid, keep_out_boxes, keep_out_polygons)
        if prm.unknown_is_lethal:
            lethal |= unknown
        terrain = np.rint(prm.graded_max * np.minimum(ratio, 1.0) ** 2)
        if not prm.unknown_is_lethal:
            terrain = np.where(unknown, np.maximum(terrain, prm.unknown_cost), terrain)
        return Costmap.from_lethal(grid, lethal, prm, terrain_cost=terrain.astype(np.uint8))

    @staticmethod
    def from_lethal(
        grid: GridSpec,
        lethal: BoolArray,
        params: CostmapParams | None = None,
        terrain_cost: CostArray | None = None,
    ) -> Costmap:
        """Inflate a lethal mask (and add an optional graded terrain cost, 0..252) into a costmap."""
        prm = params or CostmapParams()
        lethal = np.asarray(lethal, dtype=bool)
        if lethal.shape != grid.shape:
            raise CostmapError(f"Costmap.from_lethal: lethal mask is {lethal.shape}, grid is {grid.shape}")
        cost = inflate(lethal, grid.resolution_m, prm)
        if terrain_cost is not None:
            if terrain_cost.shape != grid.shape:
                raise CostmapError(f"Costmap.from_lethal: terrain_cost is {terrain_cost.shape}, grid is {grid.shape}")
            t = np.minimum(np.asarray(terrain_cost, dtype=np.uint8), MAX_GRADED_COST)
            np.maximum(cost, t, out=cost)
        return Costmap(grid, cost, prm)

    # -- queries ---------------------------------------------------------------------------------------

    @property
    def blocked(self) -> BoolArray:
        """Cells the rover's centre must not enter (INSCRIBED or LETHAL)."""
        return np.asarray(self.cost >= INSCRIBED)

    def cost_at(self, x_m: float, y_m: float) -> int:
        """Cost of the cell holding (x, y); LETHAL outside the grid."""
        r, c = self.grid.world_to_cell(x_m, y_m)
        if not self.grid.in_bounds(r, c):
            return LETHAL
        return int(self.cost[r, c])

    def changed_cells(self, other: Costmap) -> BoolArray:
        """Cells whose cost differs between this costmap and ``other`` (same grid)."""
        if other.grid != self.grid:
            raise CostmapError(f"Costmap.changed_cells: grids differ ({self.grid} vs {other.grid})")
        return np.asarray(self.cost != other.cost)


def keep_out_mask(
    grid: GridSpec,
    boxes: Sequence[Box] = (),
    polygons: Sequence[Sequence[tuple[float, float]]] = (),
) -> BoolArray:
    """Cells whose centre lies in any keep-out box or polygon (map frame), rasterised with cv2.fillPoly."""
    mask = np.zeros(grid.shape, dtype=np.uint8)
    shapes: list[npt.NDArray[np.int32]] = []
    # cv2 fills pixels whose centre lies inside; pixel (c, r) centre <-> cell centre, so use cell units - 0.5
    for b in boxes:
        shapes.append(
            _to_px(
                grid,
                [(b.x_min_m, b.y_min_m), (b.x_max_m, b.y_min_m), (b.x_max_m, b.y_max_m), (b.x_min_m, b.y_max_m)],
            )
        )
    for i, poly in enumerate(polygons):
        pts = np.asarray(poly, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 3 or not np.all(np.isfinite(pts)):
            raise CostmapError(f"keep_out_mask: polygon {i} needs >= 3 finite (x, y) vertices, got shape {pts.shape}")
        shapes.append(_to_px(grid, [(float(x), float(y)) for x, y in pts]))
    if shapes:
        shift = 4  # sub-pixel precision: 1/16 cell
        cv2.fillPoly(mask, shapes, 1, lineType=cv2.LINE_8, shift=shift)
    return np.asarray(mask > 0)


def _to_px(grid: GridSpec, pts: Sequence[tuple[float, float]]) -> npt.NDArray[np.int32]:
    arr = np.asarray(pts, dtype=np.float64)
    col = (arr[:, 0] - grid.origin_x_m) / grid.resolution_m - 0.5
    row = (arr[:, 1] - grid.origin_y_m) / grid.resolution_m - 0.5
    return np.rint(np.column_stack([col, row]) * 16.0).astype(np.int32).reshape(-1, 1, 2)


def distance_to_lethal_m(lethal: BoolArray, resolution_m: float) -> FloatArray:
    """Euclidean distance (m) from every cell centre to the nearest lethal cell centre (0 on lethal cells;
    a large value when there is none)."""
    free = np.where(lethal, 0, 255).astype(np.uint8)
    if not lethal.any():
        return np.full(lethal.shape, 1e9, dtype=np.float64)
    d = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.asarray(d, dtype=np.float64) * resolution_m


def inflate(lethal: BoolArray, resolution_m: float, params: CostmapParams) -> CostArray:
    """LETHAL on lethal cells, INSCRIBED within the inscribed radius, an exponential decay out to the
    inflation radius, 0 beyond (see the module docstring)."""
    d = distance_to_lethal_m(lethal, resolution_m)
    decay = params.graded_max * np.exp(-params.inflation_decay_per_m * (d - params.inscribed_radius_m))
    tol = 1e-6 * resolution_m  # float32 distances: a cell exactly at the radius counts as inside
    cost = np.where(d <= params.inflation_radius_m + tol, np.rint(decay), 0.0)
    cost = np.where(d <= params.inscribed_radius_m + tol, INSCRIBED, cost)
    cost = np.where(lethal, LETHAL, cost)
    return cost.astype(np.uint8)


def patch_to_map(
    layer: npt.NDArray[np.generic],
    pose: Pose2D,
    patch_cell_m: float,
    patch_width_m: float,
    grid: GridSpec,
    fill: float,
) -> npt.NDArray[np.generic]:
    """Resample a robot-centred patch layer (``autonomy.perception.hazards`` layout: rows y from -width/2,
    columns x from 0, base_link) into ``grid`` (map) for the rover at ``pose``; nearest cell, ``fill`` outside
    the patch (e.g. HAZARD_UNKNOWN, or NaN for elevation layers).

    For a map cell centre (X, Y): x_b = cos(yaw)(X - x) + sin(yaw)(Y - y), y_b = -sin(yaw)(X - x) + cos(yaw)(Y - y),
    patch column = x_b / cell - 1/2, row = (y_b + width / 2) / cell - 1/2 (one cv2.warpAffine, inverse map)."""
    if not (patch_cell_m > 0.0 and patch_width_m > 0.0):
        raise CostmapError(f"patch_to_map: need cell and width > 0, got {patch_cell_m}, {patch_width_m}")
    src = np.asarray(layer)
    if src.ndim != 2:
        raise CostmapError(f"patch_to_map: layer must be 2-D, got shape {src.shape}")
    cy, sy = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
    res = grid.resolution_m
    ax = grid.origin_x_m + 0.5 * res - pose.x_m
    ay = grid.origin_y_m + 0.5 * res - pose.y_m
    k = res / patch_cell_m
    m = np.array(
        [
            [cy * k, sy * k, (cy * ax + sy * ay) / patch_cell_m - 0.5],
            [-sy * k, cy * k, (-sy * ax + cy * ay + 0.5 * patch_width_m) / patch_cell_m - 0.5],
        ],
        dtype=np.float64,
    )
    work = src.astype(np.float32) if src.dtype not in (np.uint8, np.float32) else src
    out = cv2.warpAffine(
        work,
        m,
        (grid.cols, grid.rows),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=fill,
    )
    return np.asarray(out).astype(src.dtype, copy=False)
