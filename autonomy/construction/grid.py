"""Height grids and structure target profiles (pure numpy).

A ``HeightGrid`` is a ``ny x nx`` array of surface heights (m, ``map`` z) at posts
``(x, y) = origin + (ix, iy) x cell_m``: row ``iy`` is y, column ``ix`` is x, as ``sim.judge.ElevationScan``
and ``sim.regolith.SoilMap``. A post stands for the square cell centred on it, of area ``cell_m^2``.

Target profiles (heights of the finished surface):

- berm: with ``d`` the distance of a post from the crest polyline, ``w`` the crest width, ``h`` the height and
  ``alpha`` the side slope, the rise above grade is ``clip(h - max(d - w / 2, 0) tan(alpha), 0, h)``: a
  trapezoidal cross-section with rounded (conical) ends;
- pad: the grade elevation ``grade_m`` over its box.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from autonomy.mission.mission_file import StructureSpec
from autonomy.mission.site_zones import Box

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class HeightGrid:
    """Surface heights (m) on a square grid; see the module docstring for the layout."""

    heights_m: FloatArray
    origin_xy: tuple[float, float]
    cell_m: float

    def __post_init__(self) -> None:
        h = np.asarray(self.heights_m)
        if h.ndim != 2 or min(h.shape) < 2:
            raise ValueError(f"HeightGrid: heights must be a 2-D grid of at least 2 x 2, got shape {h.shape}")
        if not np.all(np.isfinite(h)):
            raise ValueError("HeightGrid: heights must be finite")
        if not (math.isfinite(self.cell_m) and self.cell_m > 0):
            raise ValueError(f"HeightGrid: cell_m must be finite and > 0, got {self.cell_m!r}")

    @classmethod
    def flat(cls, box: Box, cell_m: float, z_m: float = 0.0) -> HeightGrid:
        """A level grid covering ``box`` (posts on its edges included)."""
        nx = round((box.x_max_m - box.x_min_m) / cell_m) + 1
        ny = round((box.y_max_m - box.y_min_m) / cell_m) + 1
        return cls(np.full((ny, nx), float(z_m)), (box.x_min_m, box.y_min_m), float(cell_m))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.heights_m.shape[0]), int(self.heights_m.shape[1]))

    @property
    def cell_area_m2(self) -> float:
        return self.cell_m * self.cell_m

    def post_xy(self) -> tuple[FloatArray, FloatArray]:
        """x and y of every post (two ``ny x nx`` arrays)."""
        ny, nx = self.shape
        x = self.origin_xy[0] + np.arange(nx, dtype=np.float64) * self.cell_m
        y = self.origin_xy[1] + np.arange(ny, dtype=np.float64) * self.cell_m
        xx, yy = np.meshgrid(x, y)
        return np.asarray(xx, dtype=np.float64), np.asarray(yy, dtype=np.float64)

    def box_mask(self, box: Box) -> BoolArray:
        """Posts inside ``box`` (edges included, as the judge counts them)."""
        xx, yy = self.post_xy()
        return np.asarray(
            (xx >= box.x_min_m) & (xx <= box.x_max_m) & (yy >= box.y_min_m) & (yy <= box.y_max_m), dtype=np.bool_
        )

    def resampled_like(self, other: HeightGrid) -> FloatArray:
        """This grid's heights at ``other``'s posts (nearest post; posts off this grid take the nearest
        edge post)."""
        xx, yy = other.post_xy()
        ny, nx = self.shape
        ix = np.clip(np.rint((xx - self.origin_xy[0]) / self.cell_m), 0, nx - 1).astype(np.intp)
        iy = np.clip(np.rint((yy - self.origin_xy[1]) / self.cell_m), 0, ny - 1).astype(np.intp)
        return np.asarray(self.heights_m[iy, ix], dtype=np.float64)


def distance_to_polyline(
    xx: FloatArray, yy: FloatArray, polyline: tuple[tuple[float, float], ...] | list[tuple[float, float]]
) -> FloatArray:
    """Distance (m) of every point (xx, yy) to a polyline (one vectorised pass per segment; a one-point or
    zero-length polyline is a point)."""
    pts = np.asarray(polyline, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] == 0:
        raise ValueError("distance_to_polyline: empty polyline")
    if pts.shape[0] == 1:
        pts = np.vstack([pts, pts])
    best = np.full(xx.shape, np.inf)
    for (ax, ay), (bx, by) in itertools.pairwise(pts):
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        t = np.zeros(xx.shape) if seg2 == 0 else np.clip(((xx - ax) * dx + (yy - ay) * dy) / seg2, 0.0, 1.0)
        d = np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))
        best = np.minimum(best, d)
    return np.asarray(best, dtype=np.float64)


def berm_rise(spec: StructureSpec, xx: FloatArray, yy: FloatArray) -> FloatArray:
    """Rise above grade (m) of a finished berm at (xx, yy); 0 off its base."""
    if spec.kind != "berm":
        raise ValueError(f"berm_rise: structure {spec.structure_id} is a {spec.kind}")
    d = distance_to_polyline(xx, yy, spec.polyline_m)
    slope = math.tan(math.radians(spec.side_slope_deg))
    rise = spec.height_m - np.maximum(d - spec.crest_width_m / 2, 0.0) * slope
    return np.asarray(np.clip(rise, 0.0, spec.height_m), dtype=np.float64)


def target_surface(
    specs: tuple[StructureSpec, ...] | list[StructureSpec], baseline: HeightGrid
) -> tuple[FloatArray, npt.NDArray[np.int32]]:
    """The finished surface of every structure over ``baseline`` and the index of the structure that owns
    each post (-1: none). Berms rise above the baseline (grade); pads are levelled to their grade, both
    raised and cut. Where structures overlap the later one in the list owns the post."""
    xx, yy = baseline.post_xy()
    base = np.asarray(baseline.heights_m, dtype=np.float64)
    surface = base.copy()
    owner = np.full(base.shape, -1, dtype=np.int32)
    for k, spec in enumerate(specs):
        if spec.kind == "berm":
            rise = berm_rise(spec, xx, yy)
            mask = rise > 1e-9
            surface = np.where(mask, base + rise, surface)
        else:
            if spec.box_m is None:
                raise ValueError(f"target_surface: pad {spec.structure_id} has no box")
            b = spec.box_m
            mask = (xx >= b.x_min_m) & (xx <= b.x_max_m) & (yy >= b.y_min_m) & (yy <= b.y_max_m)
            surface = np.where(mask, spec.grade_m, surface)
        owner[mask] = k
    return np.asarray(surface, dtype=np.float64), owner
