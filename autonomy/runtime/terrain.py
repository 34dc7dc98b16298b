"""The rover's terrain model: depth frames -> elevation map + hazard evidence -> traversability costmap.

State (one grid, the elevation map's window in ``map``; rows y, columns x, ``cell_m`` cells)::

    h, P       the ElevationMap's height (m) and variance (m^2) per cell (NaN / inf: never seen)
    hits[r,c]  hazard evidence, 0..hits_max: +1 each depth frame whose hazard patch (perception.hazards)
               says BLOCKED there, -1 each frame that says FREE (a vote with memory, so one noisy frame
               neither creates nor erases an obstacle)

Per depth frame (``fuse``)::

    base pose  (x, y, yaw) from the estimator, z = base_height_m (0: base_link on the ground, REP-105),
               roll, pitch from the caller (the pipeline's ``TiltFilter``: gyro + gravity), else level
    datum      with ``register_heights``, the frame's z offset + tilt is re-fitted against the map's confident
               cells (ElevationMap._register): heights stay consistent across frames on a slope
    map        ElevationMap.fuse_depth(frame, base pose)
    hazards    HazardDetector.detect(frame) -> patch (base_link) -> map grid (costmap.patch_to_map) -> hits

Costmap (``costmap``, at the planning rate)::

    known      = h seen and P <= max_height_variance_m2
    slope_deg  = atan(|Sobel gradient of h|) (``slope_ksize`` 3 or 5) where the whole ksize x ksize
                 neighbourhood is known, else NaN; with ``step_on_upper_cell``, 0 where
                 the cell rises less than cell/2 tan(max_slope) above its lowest neighbour (flat ground
                 beside a rock)
    step_m     = h - min of h over the cell's 3x3 neighbourhood of known cells (``step_on_upper_cell``; else
                 max - min), NaN where unknown
    driven     cells under the wheelbase box at every fused pose: slope, step 0 there, and hazard FREE under
               its ``driven_hazard_half_width_m`` part
    hazard     = BLOCKED where hits >= hits_blocked, else FREE
    keep-out   = the mission's keep-out boxes, and everything outside the site (the arena walls) when
                 the site is known
    cost       = Costmap.from_layers(...)   (unknown is graded, not lethal: the rover plans through what it
                 has not seen yet and replans as the map fills in); with ``map_layers_lethal`` False (the
                 default) slope, and steps below ``map_lethal_step_m``, are capped just below their thresholds:
                 costly, not lethal, so the hazard votes (which later frames that see the cell free take back),
                 the keep-out zones and tall steps block (the fused map kept false 10 cm ridges from
                 localization drift for good: UCF seeds 1-3 and 6 lost their dig pose to them)

A depth frame taken within ``refuse_distance_m`` / ``refuse_yaw_rad`` of the last fused pose is not fused into
the elevation map (except every ``refuse_every``-th), and ``fuse`` marks the wheelbase box at every pose as
driven.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.estimation.tilt import check_tilt
from autonomy.mapping.elevation_map import ElevationMap, ElevationMapConfig
from autonomy.mission.site_zones import Box
from autonomy.msgs import DepthFrame, Pose2D, Pose3D
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
    """The rover's costmap: inscribed radius 0.38 m (the simulated rover's half-width over its wheels, 0.34 m,
    and 4 cm; its half-diagonal with the bucket, 0.86 m, would close the UCF obstacle zone), a graded inflation
    out to 1.4 m (slow decay) that keeps paths centred in the gaps, where the bucket clears the obstacles when
    the rover turns in place, unknown cells graded (not lethal), steps above 10 cm lethal."""
    return CostmapParams(
        max_slope_deg=25.0,
        max_step_m=0.10,
        max_roughness_m=0.05,
        inscribed_radius_m=0.38,
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
    # 3 m, not 4: the far edge of each fused frame left arcs of false 10-20 cm steps where it met older cells
    # (the camera's pitch on the moving rover lifts the ground at 4 m by ~4 tan(pitch)); they closed the dump
    # pose of UCF crossing seeds 5 and 9 (7 of 10 complete at 4 m with driven_box_m 0.45, 9 of 10 at 3 m with
    # 0.32). The berm build uses 4 m and 0.45 (``autonomy.construction.navigation.construction_terrain_params``)
    map_max_range_m: float = 3.0
    map_stride: int = 1
    max_height_variance_m2: float = 0.02**2
    use_hazards: bool = True  # the hazard detector's votes (rocks, craters) beside the elevation layers
    hits_blocked: int = 2
    hits_max: int = 4
    # register each frame's height datum (z offset + tilt) against the map's confident cells
    # (ElevationMap._register): the base pose assumes level at a fixed height, which on the open site's 3 deg
    # slope tilted each frame by ~0.2 m at 4 m and left seams of up to 0.3 m between frames from different poses
    register_heights: bool = True
    # a frame from (nearly) the pose of the last fused frame is not fused into the elevation map again (its
    # hazard votes still count): re-registering the same view over and over walked the height datum of far
    # cells (measured: a false 10 cm ramp grew at 1 m from a rover standing still for 30 s at UCF, seed 2,
    # which then blocked its goal), except every ``refuse_every``-th such frame (a standing rover still sees
    # what changes in front of it, at a tenth of the rate); refuse_distance_m = 0 fuses every frame
    refuse_distance_m: float = 0.03
    refuse_yaw_rad: float = math.radians(2.0)
    refuse_every: int = 10
    # the ground under the rover's wheelbase (base_link frame: x from, x to, half width, m) is known to be
    # drivable wherever the rover has been: hazard votes and map steps there are cleared (the map's far-range
    # and wall artefacts otherwise closed the way the rover came by on its way back); kept inside the wheels
    # (0.34 m) and the bumpers so a few cm of localization error cannot clear the edge of a real obstacle
    driven_box_m: tuple[float, float, float] = (-0.40, 0.40, 0.32)
    # the hazard votes (rocks, craters) are cleared only under this half width of the same box (None: the whole
    # box). A box wider than the wheels (the berm build's 0.45 m) clears the map's seams beside the track, but on
    # the votes it shaved the near side of every rock the rover passed: the next pass came closer, touched it,
    # and cleared more (UCF build seed 1 with the wall updates: 27 contacts on one boulder, whose disc fell from
    # 100% to 41% lethal over the run)
    driven_hazard_half_width_m: float | None = None
    # step = a cell's height above its lowest 3x3 neighbour (the rock's own cells, the rim side of a drop),
    # and slope only where the cell rises above a neighbour: max - min over the 3x3 (False) marked the ground
    # cells beside every rock too, a 5 cm bloat a side that closed gaps the rover fits through
    step_on_upper_cell: bool = False
    # the slope's Sobel aperture (3 or 5 cells): over 3 cells (10 cm) 2-3 cm of map noise reads as a 25 deg
    # slope, and long false slope ridges in the fused map blocked goal poses (UCF seed 1: a 2 m ridge across
    # the dig pose); 5 cells (20 cm) keeps crater walls (about 50 deg) lethal
    slope_ksize: int = 5
    # the fused map's slope and step make cells lethal (True) or only costly (False: the hazard votes, which
    # forget what later frames see free, the keep-out zones and map steps of map_lethal_step_m or more block)
    map_layers_lethal: bool = False
    map_lethal_step_m: float = 0.25
    clear_driven: bool = True
    # the site's edge is known and lethal (the arena walls, ``site``): hazard votes and map steps and slopes within
    # this distance inside it are the wall's own face read from depth (about 10-12 cm into the arena: the votes'
    # cell bloat and the wall's step), and are dropped. With them a 0.97 m gap between a boulder and the wall,
    # 0.21 m wider than the rover with its margin, read as closed (UCF crossing seed 7: no path). Boulders lie in
    # the obstacle zone and 0.3 m or more from a wall (sim.sites); one closer would still show past the band.
    site_edge_clear_m: float = 0.15
    hazard: HazardConfig = field(default_factory=lambda: HazardConfig(min_range_m=1.0, max_range_m=3.5))
    costmap: CostmapParams = field(default_factory=rover_costmap_params)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cell_m) and self.cell_m > 0.0):
            raise ValueError(f"TerrainParams.cell_m: must be > 0, got {self.cell_m}")
        if not (1 <= self.hits_blocked <= self.hits_max <= 100):
            raise ValueError(f"TerrainParams: need 1 <= hits_blocked <= hits_max <= 100, got {self}")
        if not (math.isfinite(self.max_height_variance_m2) and self.max_height_variance_m2 > 0.0):
            raise ValueError("TerrainParams.max_height_variance_m2: must be > 0")
        if not (math.isfinite(self.site_edge_clear_m) and self.site_edge_clear_m >= 0.0):
            raise ValueError(f"TerrainParams.site_edge_clear_m: must be >= 0, got {self.site_edge_clear_m}")
        if not (math.isfinite(self.map_lethal_step_m) and self.map_lethal_step_m > 0.0):
            raise ValueError(f"TerrainParams.map_lethal_step_m: must be > 0, got {self.map_lethal_step_m}")
        if self.slope_ksize not in (3, 5):
            raise ValueError(f"TerrainParams.slope_ksize: must be 3 or 5, got {self.slope_ksize}")
        if self.refuse_every < 1:
            raise ValueError(f"TerrainParams.refuse_every: must be >= 1, got {self.refuse_every}")
        core = self.driven_hazard_half_width_m
        if core is not None and not (math.isfinite(core) and core > 0.0):
            raise ValueError(f"TerrainParams.driven_hazard_half_width_m: must be > 0 or None, got {core}")
        for name in ("refuse_distance_m", "refuse_yaw_rad"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"TerrainParams.{name}: must be finite and >= 0, got {v}")


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
        self._edge_d: FloatArray | None = None  # signed distance (m) inside the site's edge, per cell
        self._edge_d_for: GridSpec | None = None
        self.obstacles_seen = 0
        self._last_fused: Pose2D | None = None
        self._driven = np.zeros(self.map.shape, dtype=np.int16)
        self._driven_core = np.zeros(self.map.shape, dtype=np.int16)  # ``driven_hazard_half_width_m``
        self.frames_skipped = 0
        self.map_clears = 0  # clear_except_around calls
        self._skipped_run = 0

    # -- inputs ------------------------------------------------------------------------------------------

    def base_pose(self, pose: Pose2D, tilt_rad: tuple[float, float] | None = None) -> Pose3D:
        """base_link in ``map`` for a depth frame: ``pose`` at ``base_height_m``, rolled and pitched by
        ``tilt_rad`` (roll, pitch; the pipeline's ``TiltFilter``: a gyro + gravity filter, where an accelerometer
        low-pass alone leaned up to 17 deg under the rover's own accelerations in lunar gravity), else level."""
        roll, pitch = (0.0, 0.0) if tilt_rad is None else tilt_rad
        return Pose3D(pose.x_m, pose.y_m, self._base_height_m, roll, pitch, pose.yaw_rad)

    def grid(self) -> GridSpec:
        x0, y0 = self.map.origin_m
        rows, cols = self.map.shape
        return GridSpec(x0, y0, self.params.cell_m, rows, cols)

    def fuse(self, frame: DepthFrame, pose: Pose2D, tilt_rad: tuple[float, float] | None = None) -> int:
        """Fuse one depth frame taken at ``pose``, with base_link rolled and pitched by ``tilt_rad`` (roll,
        pitch, rad; None: level): elevation map and hazard votes. Returns the points used
        (0 when the elevation map skipped the frame: the rover has not moved since the last fused one)."""
        if tilt_rad is not None:
            tilt_rad = check_tilt(tilt_rad, "TerrainModel.fuse")
        prm = self.params
        self.mark_driven(pose)
        last = self._last_fused
        moved = (
            last is None
            or prm.refuse_distance_m <= 0.0
            or last.moved_beyond(pose, prm.refuse_distance_m, prm.refuse_yaw_rad)
            or self._skipped_run + 1 >= prm.refuse_every
        )
        if moved:
            used = self.map.fuse_depth(frame, self.base_pose(pose, tilt_rad))
            self._last_fused = pose
            self._skipped_run = 0
        else:
            self._skipped_run += 1
            used = 0
            self.frames_skipped += 1
        if self.map.origin_m != self._hits_origin:  # the rolling window moved: shift the votes with it
            self._hits = self._shift(self._hits, self._hits_origin, self.map.origin_m)
            self._driven = self._shift(self._driven, self._hits_origin, self.map.origin_m)
            self._driven_core = self._shift(self._driven_core, self._hits_origin, self.map.origin_m)
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

    def clear_except_around(self, pose: Pose2D, keep_radius_m: float) -> int:
        """Forget the elevation map and the hazard votes farther than ``keep_radius_m`` from ``pose`` (the
        cells the rover has driven stay known drivable): the recovery for a map that localization error smeared
        until no path is left (Nav2's ClearCostmapExceptRegion). Returns the map cells forgotten."""
        n = self.map.forget_outside(pose.x_m, pose.y_m, keep_radius_m)
        if self.map.origin_m == self._hits_origin:  # the votes share the map's cells
            xx, yy = self.map.cell_centres()
            self._hits[(xx - pose.x_m) ** 2 + (yy - pose.y_m) ** 2 > keep_radius_m**2] = 0
        self._last_fused = None
        self.map_clears += 1
        return n

    def mark_driven(self, pose: Pose2D) -> None:
        """Mark the cells under the wheelbase box (``driven_box_m``) at ``pose`` as driven (known drivable), and
        those under its ``driven_hazard_half_width_m`` part as clear of hazards."""
        prm = self.params
        if not prm.clear_driven or self.map.origin_m != self._hits_origin:
            return
        x0, x1, hw = prm.driven_box_m
        self._fill_box(self._driven, pose, x0, x1, hw)
        core = hw if prm.driven_hazard_half_width_m is None else min(hw, prm.driven_hazard_half_width_m)
        self._fill_box(self._driven_core, pose, x0, x1, core)

    def _fill_box(self, cells: npt.NDArray[np.int16], pose: Pose2D, x0: float, x1: float, hw: float) -> None:
        """Set to 1 the cells of ``cells`` (on ``grid()``) under the box x0..x1, -hw..hw of base_link at ``pose``."""
        c, s = math.cos(pose.yaw_rad), math.sin(pose.yaw_rad)
        box = np.array([(x0, -hw), (x1, -hw), (x1, hw), (x0, hw)], dtype=np.float64)
        g = self.grid()
        xs = pose.x_m + c * box[:, 0] - s * box[:, 1]
        ys = pose.y_m + s * box[:, 0] + c * box[:, 1]
        col = (xs - g.origin_x_m) / g.resolution_m - 0.5
        row = (ys - g.origin_y_m) / g.resolution_m - 0.5
        pts = np.rint(np.column_stack([col, row]) * 16.0).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(cells, [pts], 1, lineType=cv2.LINE_8, shift=4)

    @property
    def driven(self) -> npt.NDArray[np.bool_]:
        """Cells the rover's wheelbase has covered (on ``grid()``)."""
        return np.asarray(self._driven > 0)

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
        ks = self.params.slope_ksize
        scale = 1.0 / ((8.0 if ks == 3 else 128.0) * self.params.cell_m)  # the Sobel kernel's gain on a ramp
        gx = cv2.Sobel(filled, cv2.CV_32F, 1, 0, ksize=ks, scale=scale)
        gy = cv2.Sobel(filled, cv2.CV_32F, 0, 1, ksize=ks, scale=scale)
        kernel = np.ones((3, 3), np.uint8)
        all_known = (
            cv2.erode(
                known.astype(np.uint8), np.ones((ks, ks), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0
            )
            > 0
        )
        slope = np.where(all_known, np.degrees(np.arctan(np.hypot(gx, gy))), np.nan).astype(np.float64)
        lo = cv2.erode(np.where(known, filled, 1e3).astype(np.float32), kernel)
        rise = (filled - lo).astype(np.float64)  # the cell above its lowest known neighbour
        if self.params.step_on_upper_cell:
            step = np.where(known, rise, np.nan)
            # a cell on a real slope rises above its lowest neighbour; flat ground beside a rock does not
            min_rise = 0.5 * self.params.cell_m * math.tan(math.radians(self.params.costmap.max_slope_deg))
            slope = np.where(np.isfinite(slope) & (rise < min_rise), 0.0, slope)
        else:
            hi = cv2.dilate(np.where(known, filled, -1e3).astype(np.float32), kernel)
            step = np.where(known, (hi - lo).astype(np.float64), np.nan)
        hazard = np.where(self._hits >= self.params.hits_blocked, HAZARD_BLOCKED, HAZARD_FREE).astype(np.uint8)
        if self.params.clear_driven:
            driven = self._driven > 0
            hazard[self._driven_core > 0] = HAZARD_FREE
            slope = np.where(driven & np.isfinite(slope), 0.0, slope)
            step = np.where(driven & np.isfinite(step), 0.0, step)
        return slope, step, hazard

    def _edge_distance(self, grid: GridSpec) -> FloatArray | None:
        """Per cell of ``grid``: its centre's distance inside the site's edge (m; <= 0 outside), None without a
        site; cached per grid."""
        if self._site is None:
            return None
        if self._edge_d is None or self._edge_d_for != grid:
            xx = grid.origin_x_m + (np.arange(grid.cols) + 0.5) * grid.resolution_m
            yy = grid.origin_y_m + (np.arange(grid.rows) + 0.5) * grid.resolution_m
            s = self._site
            dx = np.minimum(xx - s.x_min_m, s.x_max_m - xx)
            dy = np.minimum(yy - s.y_min_m, s.y_max_m - yy)
            self._edge_d = np.minimum(dy[:, None], dx[None, :])
            self._edge_d_for = grid
        return self._edge_d

    def near_site_edge(self, grid: GridSpec) -> npt.NDArray[np.bool_] | None:
        """Cells inside the site within ``site_edge_clear_m`` of its edge (None: no site or no band)."""
        band = self.params.site_edge_clear_m
        d = self._edge_distance(grid)
        if d is None or band <= 0.0:
            return None
        return np.asarray((d >= 0.0) & (d < band))

    def _outside_site(self, grid: GridSpec) -> npt.NDArray[np.bool_] | None:
        d = self._edge_distance(grid)
        return None if d is None else np.asarray(d <= 0.0)

    def graded(self, slope: FloatArray, step: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The fused map's ``slope`` and ``step`` layers as the costmap takes them: with ``map_layers_lethal``
        off, capped just below the costmap's thresholds (costly, not blocked), except steps of
        ``map_lethal_step_m`` or more (module docstring); unknown (NaN) stays unknown."""
        if self.params.map_layers_lethal:
            return slope, step
        c = self.params.costmap
        slope = np.minimum(slope, 0.99 * c.max_slope_deg)
        tall = step >= self.params.map_lethal_step_m  # (NaN compares False: unknown stays unknown)
        return slope, np.where(tall, step, np.minimum(step, 0.99 * c.max_step_m))

    def costmap(self) -> Costmap:
        """The traversability costmap of everything seen so far (module docstring)."""
        grid = self.grid()
        slope, step, hazard = self.layers()
        near_edge = self.near_site_edge(grid)
        if near_edge is not None:  # the wall's own face: the edge itself is lethal below
            hazard = np.where(near_edge, HAZARD_FREE, hazard).astype(np.uint8)
            slope = np.where(near_edge & np.isfinite(slope), 0.0, slope)
            step = np.where(near_edge & np.isfinite(step), 0.0, step)
        outside = self._outside_site(grid)
        if outside is not None:
            hazard = np.where(outside, HAZARD_BLOCKED, hazard).astype(np.uint8)
        slope, step = self.graded(slope, step)
        return Costmap.from_layers(
            grid, self.params.costmap, slope_deg=slope, step_m=step, hazard=hazard, keep_out_boxes=self._keep_out
        )
