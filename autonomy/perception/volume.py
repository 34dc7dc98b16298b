"""Regolith volume above a reference surface inside an oriented box, from an elevation grid.

The rover measures its own berm the way the judge does (sim/judge.py ``berm_volume_m3``): the sum over
grid posts inside the box of max(height - reference, 0) times the cell area. Posts are the cell centres
``origin + (ix cell_x, iy cell_y)`` (rows are y), the same convention as the judge's ``ElevationScan``.
Unlike the judge (which has a full lidar scan) the rover's map has holes: posts never seen (NaN height or
NaN reference) are excluded from the sum and reported (``unseen_cells``, ``unseen_fraction``), so the
caller can decide whether to look again before trusting the figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class OrientedBox:
    """A rectangle in the map plane: centre (m), full length along its yaw axis and width across (m)."""

    x_m: float
    y_m: float
    length_m: float
    width_m: float
    yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        if not (self.length_m > 0.0 and self.width_m > 0.0):
            raise ValueError(f"OrientedBox: length and width must be > 0, got {self.length_m}, {self.width_m}")
        for v in (self.x_m, self.y_m, self.yaw_rad):
            if not math.isfinite(v):
                raise ValueError(f"OrientedBox: must be finite, got {self}")

    @staticmethod
    def from_bounds(x_min_m: float, x_max_m: float, y_min_m: float, y_max_m: float) -> OrientedBox:
        return OrientedBox(0.5 * (x_min_m + x_max_m), 0.5 * (y_min_m + y_max_m), x_max_m - x_min_m, y_max_m - y_min_m)

    def contains(self, x_m: npt.ArrayLike, y_m: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        dx = np.asarray(x_m, dtype=np.float64) - self.x_m
        dy = np.asarray(y_m, dtype=np.float64) - self.y_m
        u = c * dx + s * dy
        v = -s * dx + c * dy
        eps = 1e-9
        return np.asarray((np.abs(u) <= 0.5 * self.length_m + eps) & (np.abs(v) <= 0.5 * self.width_m + eps))


@dataclass(frozen=True, slots=True)
class VolumeResult:
    """Volume (m^3) above the reference over the seen posts in the box, and what was not seen."""

    volume_m3: float
    cells_in_box: int
    seen_cells: int
    unseen_cells: int
    cell_area_m2: float

    @property
    def unseen_fraction(self) -> float:
        return self.unseen_cells / self.cells_in_box if self.cells_in_box else 1.0

    @property
    def volume_cm3(self) -> float:
        return self.volume_m3 * 1e6


def volume_above_reference(
    heights_m: FloatArray,
    origin_xy_m: tuple[float, float],
    cell_xy_m: tuple[float, float],
    box: OrientedBox,
    reference_m: FloatArray | float,
) -> VolumeResult:
    """Volume above ``reference_m`` (a grid of the same shape, e.g. the before-scan, or one grade height)
    inside ``box``; posts with NaN height or reference are excluded and counted as unseen."""
    h = np.asarray(heights_m, dtype=np.float64)
    if h.ndim != 2:
        raise ValueError(f"volume_above_reference: heights must be 2-D, got shape {h.shape}")
    ref = np.broadcast_to(np.asarray(reference_m, dtype=np.float64), h.shape)
    cx, cy = float(cell_xy_m[0]), float(cell_xy_m[1])
    if not (cx > 0.0 and cy > 0.0):
        raise ValueError(f"volume_above_reference: cell sizes must be > 0, got {cell_xy_m}")
    ny, nx = h.shape
    x = origin_xy_m[0] + np.arange(nx) * cx
    y = origin_xy_m[1] + np.arange(ny) * cy
    inside = box.contains(x[None, :], y[:, None])
    seen = inside & np.isfinite(h) & np.isfinite(ref)
    rise = np.where(seen, np.maximum(h - ref, 0.0), 0.0)
    area = cx * cy
    n_in = int(inside.sum())
    n_seen = int(seen.sum())
    return VolumeResult(float(rise.sum()) * area, n_in, n_seen, n_in - n_seen, area)
