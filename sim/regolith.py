"""Diggable regolith: a heightmap soil model (pure numpy, vectorised; no pybullet).

The site is a grid of ``ny x nx`` posts (row ``iy`` = y, column ``ix`` = x, as ``World.heights_m``), each
standing for a cell of ``cell_x_m x cell_y_m``. Every post has a fixed bedrock height and a soil thickness
``>= 0``; the surface is their sum. Soil volume is ``sum(thickness) x cell area`` (m^3).

Operations (each returns the window of cells it changed, so the terrain collision shape can be updated
there only):
- ``cut``: a bucket lip sweeps a disc and takes soil down to ``max_depth_m`` below the surface (never
  below bedrock), at most the bucket's free capacity. The cut is spread evenly over the cells so the
  capacity limit scales every cell's share by the same factor.
- ``fill``: a volume is laid on a disc with a cone-shaped profile (a dumped pile), then relaxed.
- ``relax``: angle-of-repose relaxation. Every pair of 8-neighbours whose surface drop exceeds
  ``tan(repose) x distance`` exchanges a fraction of the excess, from the high to the low cell. A cell
  never gives more soil than it has (outflows are scaled per cell), so thickness stays >= 0, and every
  flow is subtracted from one cell and added to another, so volume is conserved to float rounding.

``Bucket`` holds the soil between a cut and a fill (carry); ``Bucket.spill`` loses a fraction onto the
ground (carry losses). The invariant the tests check: ``soil.volume_m3() + sum(bucket.contents_m3)`` is
constant.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DEFAULT_REPOSE_DEG = 37.0
REGOLITH_DENSITY_KG_M3 = 1500.0  # lunar regolith bulk density near the surface (1.3-1.9 g/cm^3)


@dataclass(frozen=True, slots=True)
class Window:
    """A rectangle of cells: rows ``iy0 <= iy < iy1``, columns ``ix0 <= ix < ix1`` (may be empty)."""

    iy0: int
    iy1: int
    ix0: int
    ix1: int

    @property
    def empty(self) -> bool:
        return self.iy1 <= self.iy0 or self.ix1 <= self.ix0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.iy0, self.iy1), slice(self.ix0, self.ix1)

    def union(self, other: Window) -> Window:
        if self.empty:
            return other
        if other.empty:
            return self
        return Window(
            min(self.iy0, other.iy0), max(self.iy1, other.iy1), min(self.ix0, other.ix0), max(self.ix1, other.ix1)
        )

    def grown(self, cells: int, shape: tuple[int, int]) -> Window:
        return Window(
            max(0, self.iy0 - cells),
            min(shape[0], self.iy1 + cells),
            max(0, self.ix0 - cells),
            min(shape[1], self.ix1 + cells),
        )


EMPTY_WINDOW = Window(0, 0, 0, 0)


class Bucket:
    """A tool's soil store: ``capacity_m3`` and ``contents_m3`` (carried soil)."""

    def __init__(self, capacity_m3: float) -> None:
        if not (math.isfinite(capacity_m3) and capacity_m3 > 0):
            raise ValueError(f"Bucket: capacity_m3 must be finite and > 0, got {capacity_m3!r}")
        self.capacity_m3 = float(capacity_m3)
        self.contents_m3 = 0.0

    @property
    def free_m3(self) -> float:
        return max(0.0, self.capacity_m3 - self.contents_m3)

    @property
    def fill_fraction(self) -> float:
        return self.contents_m3 / self.capacity_m3

    def mass_kg(self, density_kg_m3: float = REGOLITH_DENSITY_KG_M3) -> float:
        return self.contents_m3 * density_kg_m3


class SoilMap:
    """Bedrock plus a soil layer on a regular grid (see the module docstring)."""

    def __init__(
        self,
        bedrock_m: npt.ArrayLike,
        soil_m: npt.ArrayLike,
        cell_m: float | tuple[float, float],
        origin_xy: tuple[float, float] = (0.0, 0.0),
        repose_deg: float = DEFAULT_REPOSE_DEG,
    ) -> None:
        bed = np.array(bedrock_m, dtype=np.float64)
        soil = np.array(soil_m, dtype=np.float64)
        if bed.ndim != 2 or bed.shape != soil.shape or min(bed.shape) < 2:
            raise ValueError(f"SoilMap: bedrock {bed.shape} and soil {soil.shape} must be equal 2-D grids >= 2x2")
        if not (np.all(np.isfinite(bed)) and np.all(np.isfinite(soil))):
            raise ValueError("SoilMap: heights must be finite")
        if np.any(soil < 0):
            raise ValueError(f"SoilMap: soil thickness must be >= 0 (min {float(soil.min())})")
        cx, cy = (cell_m, cell_m) if isinstance(cell_m, (int, float)) else cell_m
        if not (cx > 0 and cy > 0):
            raise ValueError(f"SoilMap: cell size must be > 0, got {cell_m!r}")
        if not 10.0 <= repose_deg <= 60.0:
            raise ValueError(f"SoilMap: repose_deg must be in [10, 60], got {repose_deg}")
        self.bedrock_m = bed
        self.bedrock_m.setflags(write=False)
        self.soil_m = soil
        self.cell_x_m = float(cx)
        self.cell_y_m = float(cy)
        self.cell_area_m2 = self.cell_x_m * self.cell_y_m
        self.origin_xy = (float(origin_xy[0]), float(origin_xy[1]))
        self.repose_deg = float(repose_deg)
        self.tan_repose = math.tan(math.radians(repose_deg))
        # (dy, dx, distance) of the 4 "forward" neighbour directions; the other 4 are their reverses.
        self._dirs = (
            (0, 1, self.cell_x_m),
            (1, 0, self.cell_y_m),
            (1, 1, math.hypot(self.cell_x_m, self.cell_y_m)),
            (1, -1, math.hypot(self.cell_x_m, self.cell_y_m)),
        )

    # ---- construction ----------------------------------------------------------------------------------

    @classmethod
    def flat(
        cls,
        shape: tuple[int, int],
        cell_m: float,
        soil_depth_m: float = 0.3,
        origin_xy: tuple[float, float] = (0.0, 0.0),
        repose_deg: float = DEFAULT_REPOSE_DEG,
    ) -> SoilMap:
        """Flat bedrock at ``-soil_depth_m`` under a level surface at z = 0."""
        return cls(
            np.full(shape, -soil_depth_m), np.full(shape, soil_depth_m), cell_m, origin_xy, repose_deg=repose_deg
        )

    @classmethod
    def from_surface(
        cls,
        surface_m: npt.ArrayLike,
        cell_m: float | tuple[float, float],
        soil_depth_m: float = 0.3,
        origin_xy: tuple[float, float] = (0.0, 0.0),
        repose_deg: float = DEFAULT_REPOSE_DEG,
    ) -> SoilMap:
        """A surface with a uniform ``soil_depth_m`` layer of soil over bedrock."""
        surf = np.asarray(surface_m, dtype=np.float64)
        return cls(surf - soil_depth_m, np.full(surf.shape, soil_depth_m), cell_m, origin_xy, repose_deg=repose_deg)

    # ---- queries ----------------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.soil_m.shape[0]), int(self.soil_m.shape[1]))

    def surface_m(self) -> FloatArray:
        """Surface height (m) of every post (a new array)."""
        return self.bedrock_m + self.soil_m

    def volume_m3(self) -> float:
        """Soil volume (m^3) in the map."""
        return float(np.sum(self.soil_m)) * self.cell_area_m2

    def cell_of(self, x_m: float, y_m: float) -> tuple[int, int]:
        """(iy, ix) of the post nearest to (x, y), clamped to the grid."""
        ny, nx = self.shape
        ix = min(nx - 1, max(0, round((x_m - self.origin_xy[0]) / self.cell_x_m)))
        iy = min(ny - 1, max(0, round((y_m - self.origin_xy[1]) / self.cell_y_m)))
        return int(iy), int(ix)

    def xy_of(self, iy: npt.ArrayLike, ix: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        x = self.origin_xy[0] + np.asarray(ix, dtype=np.float64) * self.cell_x_m
        y = self.origin_xy[1] + np.asarray(iy, dtype=np.float64) * self.cell_y_m
        return x, y

    def max_slope(self) -> float:
        """Largest surface slope (rise over run) between any two 8-neighbours."""
        h = self.surface_m()
        worst = 0.0
        for dy, dx, dist in self._dirs:
            a, b = self._pair_slices(dy, dx, self.shape)
            worst = max(worst, float(np.max(np.abs(h[a] - h[b]))) / dist)
        return worst

    def _disc(self, x_m: float, y_m: float, radius_m: float) -> tuple[Window, FloatArray]:
        """The window around a disc and the squared normalised radius of every post in it."""
        if not (radius_m > 0 and math.isfinite(radius_m)):
            raise ValueError(f"SoilMap: radius_m must be finite and > 0, got {radius_m!r}")
        ny, nx = self.shape
        gx = (x_m - self.origin_xy[0]) / self.cell_x_m
        gy = (y_m - self.origin_xy[1]) / self.cell_y_m
        rx, ry = radius_m / self.cell_x_m, radius_m / self.cell_y_m
        win = Window(
            max(0, math.floor(gy - ry)),
            min(ny, math.ceil(gy + ry) + 1),
            max(0, math.floor(gx - rx)),
            min(nx, math.ceil(gx + rx) + 1),
        )
        if win.empty:
            return EMPTY_WINDOW, np.zeros((0, 0))
        iy = np.arange(win.iy0, win.iy1, dtype=np.float64)[:, None]
        ix = np.arange(win.ix0, win.ix1, dtype=np.float64)[None, :]
        r2 = ((ix - gx) * self.cell_x_m) ** 2 / radius_m**2 + ((iy - gy) * self.cell_y_m) ** 2 / radius_m**2
        return win, np.asarray(r2, dtype=np.float64)

    # ---- operations -------------------------------------------------------------------------------------

    def cut(
        self,
        x_m: float,
        y_m: float,
        radius_m: float,
        max_depth_m: float,
        bucket: Bucket,
        blade_z_m: float | None = None,
        relax: bool = True,
    ) -> tuple[float, Window]:
        """Take soil from a disc into ``bucket``: each post loses at most ``max_depth_m`` (one pass), never
        goes below bedrock, nor (if given) below the blade height ``blade_z_m``; the total is limited to the
        bucket's free capacity. Returns (volume taken m^3, changed window)."""
        if not (max_depth_m >= 0 and math.isfinite(max_depth_m)):
            raise ValueError(f"SoilMap.cut: max_depth_m must be finite and >= 0, got {max_depth_m!r}")
        # The walls of the cut reach beyond the bucket's disc until they meet the surrounding ground.
        iy, ix = self.cell_of(x_m, y_m)
        floor = float(self.bedrock_m[iy, ix] + self.soil_m[iy, ix]) - max_depth_m
        if blade_z_m is not None:
            floor = max(floor, blade_z_m)
        around, _ = self._disc(x_m, y_m, radius_m + 1.0)
        top = float(np.max(self.bedrock_m[around.slices] + self.soil_m[around.slices])) if not around.empty else floor
        reach = radius_m + min(1.0, max(top - floor, 0.0) / self.tan_repose) + max(self.cell_x_m, self.cell_y_m)
        win, r2 = self._disc(x_m, y_m, reach)
        free = bucket.free_m3
        if win.empty or free <= 0 or max_depth_m == 0:
            return 0.0, EMPTY_WINDOW
        sl = win.slices
        soil = self.soil_m[sl]
        bed = self.bedrock_m[sl]
        old = bed + soil
        # The bucket leaves a flat floor ``max_depth_m`` below the surface at the centre (or at the blade,
        # if that is higher) over its disc, whose walls stand at the angle of repose: on ground already at
        # or below repose the new surface min(old, profile) is too (no cave-in, no relaxation needed). Soil
        # of the walls outside the disc slides into the bucket with the rest.
        profile = floor + self.tan_repose * np.maximum(np.sqrt(r2) * reach - radius_m, 0.0)
        new = np.maximum(np.minimum(old, profile), bed)
        take = old - new
        want = float(np.sum(take)) * self.cell_area_m2
        if want <= 0:
            return 0.0, EMPTY_WINDOW
        if want > free:
            take *= free / want
        # The bucket receives exactly what the cells lose (sum of the same array).
        taken = float(np.sum(take)) * self.cell_area_m2
        soil -= take
        np.maximum(soil, 0.0, out=soil)  # rounding guard: take <= soil already
        bucket.contents_m3 += taken
        if relax:
            win = win.union(self.relax(win))
        return taken, win

    def fill(self, x_m: float, y_m: float, radius_m: float, volume_m3: float, relax: bool = True) -> Window:
        """Pour ``volume_m3`` of soil at (x, y): it forms a cone at the angle of repose (the pile a poured
        granular material makes) over the existing surface, its apex found by bisection so the volume is
        exact; ``radius_m`` is the footprint of the pour (a flat top of that radius caps the cone before
        it spreads). Then relax (if ``relax``) where the pile meets steeper ground. Returns the changed
        window."""
        if not (volume_m3 >= 0 and math.isfinite(volume_m3)):
            raise ValueError(f"SoilMap.fill: volume_m3 must be finite and >= 0, got {volume_m3!r}")
        if volume_m3 == 0:
            return EMPTY_WINDOW
        # Window big enough for the pile on level ground with margin: r^3 = 3 V / (pi tan) beyond the pour.
        reach = (
            radius_m
            + 2.0 * (3.0 * volume_m3 / (math.pi * self.tan_repose)) ** (1.0 / 3.0)
            + 2 * max(self.cell_x_m, self.cell_y_m)
        )
        win, r2 = self._disc(x_m, y_m, reach)
        if win.empty:
            raise ValueError(f"SoilMap.fill: ({x_m}, {y_m}) lies off the map")
        sl = win.slices
        old = self.bedrock_m[sl] + self.soil_m[sl]
        dist_beyond = np.maximum(np.sqrt(r2) * reach - radius_m, 0.0)
        drop = self.tan_repose * dist_beyond
        need = volume_m3 / self.cell_area_m2  # sum of added thickness

        def added(apex: float) -> FloatArray:
            return np.asarray(np.maximum(apex - drop - old, 0.0), dtype=np.float64)

        lo = float(np.min(old))
        hi = float(np.max(old)) + need + float(np.max(drop))
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if float(np.sum(added(mid))) < need:
                lo = mid
            else:
                hi = mid
            if hi - lo < 1e-9:
                break
        add = added(hi)
        total = float(np.sum(add))
        if total <= 0:
            raise ValueError("SoilMap.fill: could not place the volume (pile window empty)")
        add *= need / total  # exact volume
        self.soil_m[sl] += add
        changed = Window(*self._nonzero_box(add, win))
        if relax:
            changed = changed.union(self.relax(changed))
        return changed

    @staticmethod
    def _nonzero_box(a: FloatArray, win: Window) -> tuple[int, int, int, int]:
        rows = np.flatnonzero(np.any(a > 0, axis=1))
        cols = np.flatnonzero(np.any(a > 0, axis=0))
        if rows.size == 0:
            return (0, 0, 0, 0)
        return (
            win.iy0 + int(rows[0]),
            win.iy0 + int(rows[-1]) + 1,
            win.ix0 + int(cols[0]),
            win.ix0 + int(cols[-1]) + 1,
        )

    def relax(self, window: Window | None = None, max_iterations: int = 200, tolerance: float = 1e-3) -> Window:
        """Angle-of-repose relaxation until no 8-neighbour slope exceeds ``tan(repose)`` by more than
        ``tolerance`` (rise over run) or ``max_iterations``. With a ``window`` only a neighbourhood of it
        is relaxed, growing as the slide spreads. Returns the changed window."""
        shape = self.shape
        active = Window(0, shape[0], 0, shape[1]) if window is None else window.grown(2, shape)
        changed = EMPTY_WINDOW
        for _ in range(max_iterations):
            moved, edge_hit = self._relax_step(active, tolerance)
            if not moved:
                break
            changed = changed.union(active)
            if edge_hit:
                grown = active.grown(4, shape)
                active = grown
        return changed

    @staticmethod
    def _pair_slices(dy: int, dx: int, shape: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Slices (a, b) such that a[i] and b[i] are neighbours offset by (dy, dx)."""
        ny, nx = shape
        ya, yb = slice(0, ny - dy), slice(dy, ny)
        if dx >= 0:
            xa, xb = slice(0, nx - dx), slice(dx, nx)
        else:
            xa, xb = slice(-dx, nx), slice(0, nx + dx)
        return (ya, xa), (yb, xb)

    def _relax_step(self, win: Window, tolerance: float) -> tuple[bool, bool]:
        """One explicit step on a window. Returns (anything moved, flow touched the window's border)."""
        sl = win.slices
        soil = self.soil_m[sl]
        h = self.bedrock_m[sl] + soil
        shape = (int(soil.shape[0]), int(soil.shape[1]))
        if min(shape) < 2:
            return False, False
        # Moving f from a to b lowers their drop by 2 f; with up to 8 neighbours draining at once, move a
        # quarter of each pair's half-excess per step (no overshoot, no checkerboard oscillation).
        rate = 0.125
        flows: list[tuple[tuple[slice, slice], tuple[slice, slice], FloatArray]] = []
        out = np.zeros(shape)
        for dy, dx, dist in self._dirs:
            a, b = self._pair_slices(dy, dx, shape)
            drop = h[a] - h[b]
            limit = self.tan_repose * dist
            excess = np.abs(drop) - limit
            if float(excess.max()) <= tolerance * dist:
                continue
            # Signed flow a -> b (negative: b -> a); only the part above the repose slope moves.
            f = np.where(excess > 0, np.sign(drop) * excess * rate, 0.0)
            flows.append((a, b, f))
            out[a] += np.maximum(f, 0.0)
            out[b] += np.maximum(-f, 0.0)
        if not flows:
            return False, False
        # A cell never gives more than it has: scale its outflows.
        scale = np.where(out > soil, soil / np.maximum(out, 1e-300), 1.0)
        delta = np.zeros(shape)
        for a, b, f in flows:
            g = np.where(f > 0, f * scale[a], f * scale[b])
            delta[a] -= g
            delta[b] += g
        soil += delta
        np.maximum(soil, 0.0, out=soil)  # rounding guard (|error| ~ 1e-18)
        moving = np.abs(delta) > 1e-12
        if not moving.any():  # only bare bedrock is too steep: nothing can slide
            return False, False
        edge = bool(moving[0, :].any() or moving[-1, :].any() or moving[:, 0].any() or moving[:, -1].any())
        return True, edge


def spill(soil: SoilMap, bucket: Bucket, x_m: float, y_m: float, fraction: float, radius_m: float = 0.15) -> Window:
    """Carry losses: ``fraction`` of the bucket's contents falls onto the ground at (x, y)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"spill: fraction must be in [0, 1], got {fraction}")
    vol = bucket.contents_m3 * fraction
    if vol <= 0:
        return EMPTY_WINDOW
    bucket.contents_m3 -= vol
    return soil.fill(x_m, y_m, radius_m, vol)


def dump(soil: SoilMap, bucket: Bucket, x_m: float, y_m: float, radius_m: float = 0.3) -> tuple[float, Window]:
    """Empty the bucket onto a pile at (x, y). Returns (volume dumped m^3, changed window)."""
    vol = bucket.contents_m3
    bucket.contents_m3 = 0.0
    return vol, soil.fill(x_m, y_m, radius_m, vol)


def bench_soil_ops(
    size_m: tuple[float, float] = (8.10, 4.57), cell_m: float = 0.05, repeats: int = 30
) -> dict[str, float]:
    """Micro-benchmark on an arena grid: median ms of one cut, one dump (fill + relax), and a full
    relax of a settled map. Deterministic inputs."""
    nx, ny = round(size_m[0] / cell_m) + 1, round(size_m[1] / cell_m) + 1
    soil = SoilMap.flat((ny, nx), cell_m, soil_depth_m=0.3)
    bucket = Bucket(0.03)
    cut_ms: list[float] = []
    dump_ms: list[float] = []
    relax_ms: list[float] = []
    for k in range(repeats):
        x = 1.0 + 0.05 * (k % 10)
        t0 = time.perf_counter()
        soil.cut(x, 2.0, 0.2, 0.05, bucket)
        t1 = time.perf_counter()
        dump(soil, bucket, 6.5, 2.3, 0.3)
        t2 = time.perf_counter()
        soil.relax()
        t3 = time.perf_counter()
        cut_ms.append((t1 - t0) * 1e3)
        dump_ms.append((t2 - t1) * 1e3)
        relax_ms.append((t3 - t2) * 1e3)
    cut = float(np.median(cut_ms))
    dmp = float(np.median(dump_ms))
    return {
        "grid_cells": float(nx * ny),
        "cut_ms": cut,
        "dump_relax_ms": dmp,
        "full_relax_settled_ms": float(np.median(relax_ms)),
        "cut_fill_relax_ms": cut + dmp,
    }
