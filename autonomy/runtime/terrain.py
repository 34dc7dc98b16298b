"""The rover's terrain model: depth frames -> elevation map + hazard evidence -> traversability costmap.

State (one grid, the elevation map's window in ``map``; rows y, columns x, ``cell_m`` cells)::

    h, P       the ElevationMap's height (m) and variance (m^2) per cell (NaN / inf: never seen)
    hits[r,c]  hazard evidence, 0..hits_max: +1 each depth frame whose hazard patch (perception.hazards)
               says BLOCKED there, -1 each frame that says FREE (a vote with memory, so one noisy frame
               neither creates nor erases an obstacle)

Per depth frame (``fuse``)::

    base pose  (x, y, yaw) from the estimator, z = base_height_m (0: base_link on the ground, REP-105),
               roll = pitch = 0 (or, with ``use_imu_tilt``, from the low-passed accelerometer)
    datum      with ``register_heights``, the frame's z offset + tilt is re-fitted against the map's confident
               cells (ElevationMap._register): heights stay consistent across frames on a slope
    map        ElevationMap.fuse_depth(frame, base pose)
    hazards    HazardDetector.detect(frame) -> patch (base_link) -> map grid (costmap.patch_to_map) -> hits

Costmap (``costmap``, at the planning rate)::

    known      = h seen and P <= max_height_variance_m2
    slope_deg  = atan(|Sobel 3x3 gradient of h|) where the whole 3x3 neighbourhood is known, else NaN
    step_m     = max - min of h over each 3x3 neighbourhood of known cells, NaN where unknown
    hazard     = BLOCKED where hits >= hits_blocked, else FREE
    keep-out   = the mission's keep-out boxes, and everything outside the site (the arena walls) when
                 the site is known
    cost       = Costmap.from_layers(...)   (unknown is graded, not lethal: the rover plans through what it
                 has not seen yet and replans as the map fills in)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.mapping.elevation_map import ElevationMap, ElevationMapConfig
from autonomy.mission.site_zones import Box
from autonomy.msgs import DepthFrame, ImuReading, Pose2D, Pose3D
from autonomy.navigation.costmap import (
    HAZARD_BLOCKED,
    HAZARD_FREE,
    HAZARD_UNKNOWN,
    Costmap,
    CostmapParams,
    GridSpec,
    patch_to_map,
)
from autonomy.perception.hazards import BLOCKED, FREE, HazardConfig, HazardDetector

FloatArray = npt.NDArray[np.float64]


def rover_costmap_params() -> CostmapParams:
    """The rover's costmap: inscribed radius 0.45 m (the simulated rover's half-width over its wheels; with
    0.50 m no path crossed the UCF obstacle zone on 8 of 10 seeds, whose obstacles are drawn only 0.3 m apart;
    its half-diagonal with the bucket, 0.86 m, would close the zone), a graded inflation out to 1.4 m (slow
    decay) that keeps paths centred in the gaps, where the bucket clears the obstacles when the rover turns in
    place, unknown cells graded (not lethal), steps above 10 cm lethal."""
    return CostmapParams(
        max_slope_deg=25.0,
        max_step_m=0.10,
        max_roughness_m=0.05,
        inscribed_radius_m=0.45,
        inflation_radius_m=1.4,
        inflation_decay_per_m=2.5,
        unknown_is_lethal=False,
        unknown_cost=25,
    )


@dataclass(frozen=True, slots=True)
class TerrainParams:
    """Grid, gating and hazard-vote parameters of ``TerrainModel`` (module docstring)."""

    cell_m: float = 0.05
    map_min_range_m: float = 1.0  # the image's bottom rows (the rover's own front) gave false steps at < 1 m
    map_max_range_m: float = 4.0
    map_stride: int = 1
    max_height_variance_m2: float = 0.02**2
    use_hazards: bool = True  # the hazard detector's votes (rocks, craters) beside the elevation layers
    hits_blocked: int = 2
    hits_max: int = 4
    # roll/pitch of base_link from the low-passed accelerometer; off by default: under lunar gravity (1.62 m/s^2)
    # the rover's own 0.5 m/s^2 accelerations tilt the measured gravity by up to 17 deg, far worse than
    # assuming level (the arenas are flat to a few degrees; the hazard detector fits its own ground plane)
    use_imu_tilt: bool = False
    # register each frame's height datum (z offset + tilt) against the map's confident cells
    # (ElevationMap._register): the base pose assumes level at a fixed height, which on the open site's 3 deg
    # slope tilted each frame by ~0.2 m at 4 m and left seams of up to 0.3 m between frames from different poses
    register_heights: bool = True
    tilt_filter: float = 0.02  # low-pass weight of each accelerometer sample for roll/pitch
    hazard: HazardConfig = field(default_factory=lambda: HazardConfig(min_range_m=1.0, max_range_m=3.5))
    costmap: CostmapParams = field(default_factory=rover_costmap_params)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cell_m) and self.cell_m > 0.0):
            raise ValueError(f"TerrainParams.cell_m: must be > 0, got {self.cell_m}")
        if not (1 <= self.hits_blocked <= self.hits_max <= 100):
            raise ValueError(f"TerrainParams: need 1 <= hits_blocked <= hits_max <= 100, got {self}")
        if not 0.0 < self.tilt_filter <= 1.0:
            raise ValueError(f"TerrainParams.tilt_filter: must be in (0, 1], got {self.tilt_filter}")
        if not (math.isfinite(self.max_height_variance_m2) and self.max_height_variance_m2 > 0.0):
            raise ValueError("TerrainParams.max_height_variance_m2: must be > 0")


class TerrainModel:
    """Elevation map, hazard evidence and the costmap built from them (module docstring).

    ``site``: the arena's box (a fixed grid covering it, walls lethal); None: a rolling 16 m window that
    follows the rover. ``keep_out``: boxes never driven through. ``base_height_m``: base_link above the
    ground (the wheel radius)."""

    def __init__(
        self,
        params: TerrainParams,
        start: Pose2D,
        base_height_m: float,
        site: Box | None = None,
        keep_out: Sequence[Box] = (),
    ) -> None:
        self.params = params
        self._site = site
        self._keep_out = tuple(keep_out)
        self._base_height_m = float(base_height_m)
        if site is not None:
            sx, sy = site.size_xy
            n = math.ceil(max(sx, sy) / params.cell_m) + 4
            cfg = ElevationMapConfig(
                cell_m=params.cell_m,
                size_cells=n,
                recentre_distance_m=None,
                min_range_m=params.map_min_range_m,
                max_range_m=params.map_max_range_m,
                stride=params.map_stride,
                register_heights=params.register_heights,
            )
            centre = site.center_xy
        else:
            cfg = ElevationMapConfig(
                cell_m=params.cell_m,
                min_range_m=params.map_min_range_m,
                max_range_m=params.map_max_range_m,
                stride=params.map_stride,
                register_heights=params.register_heights,
            )
            centre = (start.x_m, start.y_m)
        self.map = ElevationMap(cfg, centre)
        self._hazards = HazardDetector(params.hazard)
        self._hits = np.zeros(self.map.shape, dtype=np.int16)
        self._hits_origin = self.map.origin_m
        self._roll = 0.0
        self._pitch = 0.0
        self._tilt_init = False
        self._outside: npt.NDArray[np.bool_] | None = None
        self._outside_for: GridSpec | None = None
        self.obstacles_seen = 0

    # -- inputs ------------------------------------------------------------------------------------------

    def observe_imu(self, imu: ImuReading) -> None:
        """Low-pass roll and pitch from the specific force (the gravity reaction, +z up at rest)."""
        if not self.params.use_imu_tilt:
            return
        ax, ay, az = imu.linear_acceleration_mps2
        if not (az > 0.0 and math.isfinite(ax) and math.isfinite(ay)):
            return
        roll = math.atan2(ay, az)
        pitch = math.atan2(-ax, math.hypot(ay, az))
        if not self._tilt_init:
            self._roll, self._pitch, self._tilt_init = roll, pitch, True
            return
        k = self.params.tilt_filter
        self._roll += k * (roll - self._roll)
        self._pitch += k * (pitch - self._pitch)

    def base_pose(self, pose: Pose2D) -> Pose3D:
        return Pose3D(pose.x_m, pose.y_m, self._base_height_m, self._roll, self._pitch, pose.yaw_rad)

    def grid(self) -> GridSpec:
        x0, y0 = self.map.origin_m
        rows, cols = self.map.shape
        return GridSpec(x0, y0, self.params.cell_m, rows, cols)

    def fuse(self, frame: DepthFrame, pose: Pose2D) -> int:
        """Fuse one depth frame taken at ``pose``: elevation map and hazard votes. Returns the points used."""
        used = self.map.fuse_depth(frame, self.base_pose(pose))
        if self.map.origin_m != self._hits_origin:  # the rolling window moved: shift the votes with it
            self._hits = self._shift(self._hits, self._hits_origin, self.map.origin_m)
            self._hits_origin = self.map.origin_m
        if not self.params.use_hazards:
            return used
        patch = self._hazards.detect(frame)
        self.obstacles_seen += len(patch.obstacles)
        cfg = patch.config
        trav = patch_to_map(patch.traversability, pose, cfg.cell_m, cfg.width_m, self.grid(), float(HAZARD_UNKNOWN))
        h = self._hits
        h[trav == BLOCKED] += 1
        h[trav == FREE] -= 1
        np.clip(h, 0, self.params.hits_max, out=h)
        return used

    def _shift(
        self, a: npt.NDArray[np.int16], old: tuple[float, float], new: tuple[float, float]
    ) -> npt.NDArray[np.int16]:
        c = self.params.cell_m
        di, dj = round((new[0] - old[0]) / c), round((new[1] - old[1]) / c)
        n = a.shape[0]
        out = np.zeros_like(a)
        if abs(di) < n and abs(dj) < n:
            rs, re = max(0, -dj), min(n, n - dj)
            cs, ce = max(0, -di), min(n, n - di)
            out[rs:re, cs:ce] = a[rs + dj : re + dj, cs + di : ce + di]
        return out

    # -- outputs -----------------------------------------------------------------------------------------

    def layers(self) -> tuple[FloatArray, FloatArray, npt.NDArray[np.uint8]]:
        """(slope_deg, step_m, hazard codes) on ``grid()`` (module docstring); NaN = unknown."""
        h = self.map.heights_m
        known = np.isfinite(h) & (self.map.variance_m2 <= self.params.max_height_variance_m2)
        filled = np.where(known, h, 0.0).astype(np.float32)
        k8 = 1.0 / (8.0 * self.params.cell_m)
        gx = cv2.Sobel(filled, cv2.CV_32F, 1, 0, ksize=3, scale=k8)
        gy = cv2.Sobel(filled, cv2.CV_32F, 0, 1, ksize=3, scale=k8)
        kernel = np.ones((3, 3), np.uint8)
        all_known = cv2.erode(known.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        slope = np.where(all_known, np.degrees(np.arctan(np.hypot(gx, gy))), np.nan).astype(np.float64)
        hi = cv2.dilate(np.where(known, filled, -1e3).astype(np.float32), kernel)
        lo = cv2.erode(np.where(known, filled, 1e3).astype(np.float32), kernel)
        step = np.where(known, (hi - lo).astype(np.float64), np.nan)
        hazard = np.where(self._hits >= self.params.hits_blocked, HAZARD_BLOCKED, HAZARD_FREE).astype(np.uint8)
        return slope, step, hazard

    def _outside_site(self, grid: GridSpec) -> npt.NDArray[np.bool_] | None:
        if self._site is None:
            return None
        if self._outside is None or self._outside_for != grid:
            xx = grid.origin_x_m + (np.arange(grid.cols) + 0.5) * grid.resolution_m
            yy = grid.origin_y_m + (np.arange(grid.rows) + 0.5) * grid.resolution_m
            s = self._site
            inside_x = (xx > s.x_min_m) & (xx < s.x_max_m)
            inside_y = (yy > s.y_min_m) & (yy < s.y_max_m)
            self._outside = ~(inside_y[:, None] & inside_x[None, :])
            self._outside_for = grid
        return self._outside

    def costmap(self) -> Costmap:
        """The traversability costmap of everything seen so far (module docstring)."""
        grid = self.grid()
        slope, step, hazard = self.layers()
        outside = self._outside_site(grid)
        if outside is not None:
            hazard = np.where(outside, HAZARD_BLOCKED, hazard).astype(np.uint8)
        return Costmap.from_layers(
            grid, self.params.costmap, slope_deg=slope, step_m=step, hazard=hazard, keep_out_boxes=self._keep_out
        )
