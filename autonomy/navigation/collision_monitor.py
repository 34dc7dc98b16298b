"""Collision monitor: the last stage before the drive, independent of the planner and the follower.

It sees only an obstacle grid (e.g. ``Costmap.cost == LETHAL`` or the hazard layer's BLOCKED cells, in
``map``) and the commanded twist. State: the pose p = (x, y, yaw) of ``base_link`` in ``map``.

    d(x, y)     distance (m) from a point to the nearest obstacle cell centre (cv2.distanceTransform, once per
                obstacle update), minus half a cell (the obstacle's own extent), bilinear-free: cell lookup
    footprint   a circle of ``footprint_radius_m`` around base_link (conservative for a box rover: use
                half its diagonal)
    prediction  the commanded (v, w) held for ``horizon_s``, integrated as a unicycle every ``step_s``:
                x' = x + v cos(yaw) dt, y' = y + v sin(yaw) dt, yaw' = yaw + w dt
    t_hit       the first predicted time with d < footprint_radius_m + stop_margin_m (inf if none)
    action      STOP  (v = 0)         when t_hit <= stop_time_s (inside the margin already: t_hit is the first
                                      time the motion brings it closer still, so backing out passes);
                SLOW  (v *= t_hit / slow_time_s, at least min_slow_ratio)   when t_hit <= slow_time_s
                                      or d(p) < footprint_radius_m + slow_margin_m;
                OK    the command passes unchanged.
    A rotation in place (v = 0) always passes: it does not move a circular footprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import DriveCommand, Pose2D
from autonomy.navigation.costmap import GridSpec


class MonitorAction(StrEnum):
    OK = "ok"
    SLOW = "slow"
    STOP = "stop"
    NO_MAP = "no_map"  # no obstacle grid yet: the command passes at most at min_slow_ratio speed


@dataclass(frozen=True, slots=True)
class CollisionMonitorParams:
    footprint_radius_m: float = 0.6
    stop_margin_m: float = 0.05
    slow_margin_m: float = 0.3
    horizon_s: float = 2.0
    step_s: float = 0.1
    stop_time_s: float = 0.6
    slow_time_s: float = 1.5
    min_slow_ratio: float = 0.25

    def __post_init__(self) -> None:
        for name in ("footprint_radius_m", "horizon_s", "step_s", "slow_time_s", "min_slow_ratio"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"CollisionMonitorParams.{name}: must be finite and > 0, got {v}")
        for name in ("stop_margin_m", "slow_margin_m", "stop_time_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"CollisionMonitorParams.{name}: must be finite and >= 0, got {v}")
        if self.stop_time_s > self.slow_time_s or self.min_slow_ratio > 1.0:
            raise ValueError("CollisionMonitorParams: need stop_time_s <= slow_time_s and min_slow_ratio <= 1")


@dataclass(frozen=True, slots=True)
class MonitorResult:
    command: DriveCommand
    action: MonitorAction
    time_to_collision_s: float  # inf when the predicted motion stays clear
    clearance_m: float  # distance from the footprint edge to the nearest obstacle now


class CollisionMonitor:
    """Filters drive commands against an obstacle grid (see the module docstring)."""

    def __init__(self, params: CollisionMonitorParams | None = None) -> None:
        self.params = params or CollisionMonitorParams()
        self._grid: GridSpec | None = None
        self._dist: npt.NDArray[np.float32] = np.zeros((0, 0), np.float32)

    def set_obstacles(self, grid: GridSpec, obstacles: npt.NDArray[np.bool_]) -> None:
        """A new obstacle grid (True = obstacle) in ``map``. Cells outside the grid count as free space at
        the grid edge's distance (the monitor guards against seen obstacles, not map bounds)."""
        obs = np.asarray(obstacles, dtype=bool)
        if obs.shape != grid.shape:
            raise ValueError(f"CollisionMonitor.set_obstacles: obstacle grid is {obs.shape}, spec is {grid.shape}")
        if obs.any():
            d = cv2.distanceTransform(np.where(obs, 0, 255).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            self._dist = (d * grid.resolution_m - 0.5 * grid.resolution_m).astype(np.float32)
        else:
            self._dist = np.full(grid.shape, np.float32(1e6), dtype=np.float32)
        self._grid = grid

    def clearance_at(self, x_m: float, y_m: float) -> float:
        """Distance (m) from (x, y) to the nearest obstacle's edge (large when unknown or outside)."""
        if self._grid is None:
            return math.inf
        r, c = self._grid.world_to_cell(x_m, y_m)
        r = min(max(r, 0), self._grid.rows - 1)
        c = min(max(c, 0), self._grid.cols - 1)
        return float(self._dist[r, c])

    def filter(self, command: DriveCommand, pose: Pose2D) -> MonitorResult:
        prm = self.params
        v, w = command.linear_x_mps, command.angular_z_radps
        if self._grid is None:
            lim = prm.min_slow_ratio * abs(v)
            cmd = DriveCommand(command.stamp_s, math.copysign(min(abs(v), lim), v), w)
            return MonitorResult(cmd, MonitorAction.NO_MAP, math.inf, math.inf)
        radius = prm.footprint_radius_m
        d_now = self.clearance_at(pose.x_m, pose.y_m)
        clearance = d_now - radius
        if abs(v) < 1e-9:
            return MonitorResult(command, MonitorAction.OK, math.inf, clearance)
        # predicted poses (vectorised unicycle integration)
        n = max(1, math.ceil(prm.horizon_s / prm.step_s))
        t = np.arange(1, n + 1, dtype=np.float64) * prm.step_s
        yaw = pose.yaw_rad + w * (t - prm.step_s)
        x = pose.x_m + np.cumsum(v * np.cos(yaw) * prm.step_s)
        y = pose.y_m + np.cumsum(v * np.sin(yaw) * prm.step_s)
        grid = self._grid
        rows = np.clip(np.floor((y - grid.origin_y_m) / grid.resolution_m).astype(np.int64), 0, grid.rows - 1)
        cols = np.clip(np.floor((x - grid.origin_x_m) / grid.resolution_m).astype(np.int64), 0, grid.cols - 1)
        d = self._dist[rows, cols].astype(np.float64)
        # already inside the stop margin: only motion that gets closer still counts (escaping is allowed)
        limit = min(radius + prm.stop_margin_m, d_now - 1e-6)
        hit = d < limit
        t_hit = float(t[int(np.argmax(hit))]) if hit.any() else math.inf
        if t_hit <= prm.stop_time_s:
            return MonitorResult(DriveCommand(command.stamp_s, 0.0, w), MonitorAction.STOP, t_hit, clearance)
        if t_hit <= prm.slow_time_s or clearance < prm.slow_margin_m:
            ratio = 1.0 if math.isinf(t_hit) else t_hit / prm.slow_time_s
            if clearance < prm.slow_margin_m:
                ratio = min(ratio, max(clearance, 0.0) / prm.slow_margin_m)
            ratio = min(1.0, max(prm.min_slow_ratio, ratio))
            return MonitorResult(
                DriveCommand(command.stamp_s, v * ratio, w * ratio), MonitorAction.SLOW, t_hit, clearance
            )
        return MonitorResult(command, MonitorAction.OK, t_hit, clearance)
