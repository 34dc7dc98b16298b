"""Global planner on a ``Costmap``: 8-connected A* (numba), line-of-sight shortcutting, incremental repair.

Search (cell units, see ``_kernels``)::

    state      a cell (row, col); start/goal: the cells holding the start and goal positions
    edge cost  c(u, v) = step * m(cost[v]),  step = 1 or sqrt(2),  m(c) = 1 + cost_weight * c / 252
               (blocked when cost >= INSCRIBED; no diagonal move past a blocked orthogonal cell)
    heuristic  h(v) = octile distance to the goal = dx + dy + (sqrt(2) - 2) min(dx, dy)
               admissible and consistent because m >= 1; the heap key is g + (1 + tie_eps) h (ties go to
               the deeper node: at most a relative tie_eps above the optimal cost)

Smoothing: greedy shortcutting of the cell path; a straight segment replaces a stretch of the path when it
crosses no blocked cell (Amanatides-Woo traversal, corners checked on both sides) and its cost integral is at
most (1 + shortcut_tolerance) times the stretch's cost, so it never cuts closer to hazards than the A* path
would for a real saving.

Repair (``replan``): the costs under the path's swept cells (every cell its segments cross) are compared
between the costmap it was planned on and the new one. No cell got worse -> the path is kept (still valid).
Otherwise the stretch [s_lo - margin, s_hi + margin] of arc length around the worsened cells is replanned
between the two points of the path at its ends and spliced in; the spliced path is checked segment by
segment on the new map. On failure the margin grows (x3, twice), then the whole path is planned from scratch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from autonomy.msgs import Pose2D, Waypoint
from autonomy.navigation import _kernels as k
from autonomy.navigation.costmap import INSCRIBED, MAX_GRADED_COST, Costmap, GridSpec

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class NoPathReason(StrEnum):
    START_OUTSIDE = "start_outside"
    GOAL_OUTSIDE = "goal_outside"
    START_BLOCKED = "start_blocked"
    GOAL_BLOCKED = "goal_blocked"
    UNREACHABLE = "unreachable"


class NoPathError(RuntimeError):
    """No drivable path exists: ``reason`` says why (start/goal outside or blocked, or unreachable)."""

    def __init__(self, reason: NoPathReason, detail: str) -> None:
        super().__init__(f"no path ({reason.value}): {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlannerParams:
    cost_weight: float = 3.0  # m(c) = 1 + cost_weight * c / 252
    tie_eps: float = 1e-6
    shortcut_tolerance: float = 0.02
    repair_margin_m: float = 1.0

    def __post_init__(self) -> None:
        for name in ("cost_weight", "tie_eps", "shortcut_tolerance"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"PlannerParams.{name}: must be finite and >= 0, got {v}")
        if not (math.isfinite(self.repair_margin_m) and self.repair_margin_m > 0.0):
            raise ValueError(f"PlannerParams.repair_margin_m: must be > 0, got {self.repair_margin_m}")


class PathSource(StrEnum):
    PLANNED = "planned"  # from scratch
    KEPT = "kept"  # replan: no cell under the path got worse
    REPAIRED = "repaired"  # replan: a stretch was replanned and spliced in
    REPLANNED = "replanned"  # replan: planned from scratch after a failed repair


@dataclass(frozen=True, slots=True, eq=False)
class Path:
    """A drivable polyline in ``map``: ``points_xy_m`` (n, 2), from the start position to the goal position.

    ``goal_yaw_rad``: the heading to reach at the end (None: any). ``reverse``: drive the path backwards
    (the rover's rear leads). ``cost``: the polyline's cost integral on ``costmap`` (m, weighted by the
    multiplier); ``search_cost``: the optimal A* cost of the cell path it came from (m; NaN after a repair).
    ``swept``: flat cell indices crossed by the polyline and ``swept_s``: arc length (m) where it enters each.
    """

    points_xy_m: FloatArray
    costmap: Costmap
    cost: float
    search_cost: float
    swept: IntArray
    swept_s: FloatArray
    goal_yaw_rad: float | None = None
    reverse: bool = False
    source: PathSource = PathSource.PLANNED
    expansions: int = 0

    @property
    def length_m(self) -> float:
        d = np.diff(self.points_xy_m, axis=0)
        return float(np.hypot(d[:, 0], d[:, 1]).sum())

    @property
    def start_xy(self) -> tuple[float, float]:
        return float(self.points_xy_m[0, 0]), float(self.points_xy_m[0, 1])

    @property
    def goal_xy(self) -> tuple[float, float]:
        return float(self.points_xy_m[-1, 0]), float(self.points_xy_m[-1, 1])

    def waypoints(self, tolerance_m: float = 0.25) -> tuple[Waypoint, ...]:
        """The polyline's vertices after the start, for the plain ``PurePursuit`` follower."""
        return tuple(Waypoint(float(x), float(y), tolerance_m) for x, y in self.points_xy_m[1:])

    def point_at(self, s_m: float) -> tuple[float, float]:
        """The point at arc length ``s_m`` (clamped to [0, length])."""
        pts = self.points_xy_m
        seg = np.hypot(*np.diff(pts, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        s = min(max(s_m, 0.0), float(cum[-1]))
        i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)) if len(seg) else 0
        if not len(seg) or seg[i] <= 0.0:
            return float(pts[i, 0]), float(pts[i, 1])
        f = (s - cum[i]) / seg[i]
        p = pts[i] + f * (pts[i + 1] - pts[i])
        return float(p[0]), float(p[1])

    def with_goal(self, goal_yaw_rad: float | None = None, reverse: bool | None = None) -> Path:
        return replace(
            self,
            goal_yaw_rad=goal_yaw_rad if goal_yaw_rad is not None else self.goal_yaw_rad,
            reverse=self.reverse if reverse is None else reverse,
        )


class _Workspace:
    """Reusable A* work arrays for one grid size (valid entries are stamped with the search id)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.g = np.empty(n, np.float64)
        self.parent = np.empty(n, np.int32)
        self.stamp = np.zeros(n, np.int32)
        self.pos = np.empty(n, np.int32)
        self.heap = np.empty(2 * n, np.float64)
        self.sid = 0

    def next_id(self) -> int:
        self.sid += 1
        if self.sid >= 2**30 - 1:
            self.stamp.fill(0)
            self.sid = 1
        return self.sid


def _xy(p: Pose2D | tuple[float, float]) -> tuple[float, float]:
    if isinstance(p, Pose2D):
        return p.x_m, p.y_m
    x, y = float(p[0]), float(p[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"Planner: position must be finite, got ({x}, {y})")
    return x, y


class Planner:
    """Plans and repairs paths on costmaps (see the module docstring). Holds reusable work arrays: use one
    planner per thread."""

    def __init__(self, params: PlannerParams | None = None) -> None:
        self.params = params or PlannerParams()
        lut = 1.0 + self.params.cost_weight * np.arange(256, dtype=np.float64) / MAX_GRADED_COST
        lut[INSCRIBED:] = -1.0
        self._lut = lut
        self._ws: _Workspace | None = None
        self._pad: npt.NDArray[np.uint8] = np.zeros(0, np.uint8)
        self._pad_for: Costmap | None = None
        self.last_expansions = 0

    # -- public ----------------------------------------------------------------------------------------

    def plan(
        self,
        costmap: Costmap,
        start: Pose2D | tuple[float, float],
        goal: Pose2D | tuple[float, float],
        *,
        reverse: bool = False,
    ) -> Path:
        """A smoothed path from ``start`` to ``goal`` (positions in ``map``; a Pose2D goal's heading becomes
        ``goal_yaw_rad``). Raises NoPathError (reason: start/goal outside or blocked, unreachable)."""
        sxy, gxy = _xy(start), _xy(goal)
        pts, search_cost, exp = self._search(costmap, sxy, gxy)
        yaw = goal.yaw_rad if isinstance(goal, Pose2D) else None
        return self._make_path(costmap, pts, search_cost, yaw, reverse, PathSource.PLANNED, exp)

    def replan(self, costmap: Costmap, path: Path) -> Path:
        """The path made valid on ``costmap`` (the updated map): kept, repaired locally, or planned anew.
        Raises NoPathError when no path exists on the new map."""
        if costmap.grid != path.costmap.grid:
            return self._full(costmap, path)
        new = costmap.cost.ravel()[path.swept]
        old = path.costmap.cost.ravel()[path.swept]
        worse = new > old
        if not worse.any():
            self.last_expansions = 0
            cost = self._polyline_cost(costmap, path.points_xy_m)
            return replace(path, costmap=costmap, cost=cost, source=PathSource.KEPT, expansions=0)
        res = costmap.grid.resolution_m
        s_lo = float(path.swept_s[worse].min())
        s_hi = float(path.swept_s[worse].max()) + 2.0 * res
        total = path.length_m
        margin = self.params.repair_margin_m
        for _ in range(3):
            a, b = max(0.0, s_lo - margin), min(total, s_hi + margin)
            pa = path.start_xy if a <= 0.0 else path.point_at(a)
            pb = path.goal_xy if b >= total else path.point_at(b)
            try:
                mid, _, exp = self._search(costmap, pa, pb)
            except NoPathError:
                margin *= 3.0
                continue
            cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path.points_xy_m, axis=0).T))])
            before = path.points_xy_m[cum < a - 1e-9]
            after = path.points_xy_m[cum > b + 1e-9]
            pts = np.vstack([before, mid, after]) if a > 0.0 or b < total else mid
            pts = _dedupe(pts)
            if math.isfinite(self._polyline_cost(costmap, pts)):
                return self._make_path(
                    costmap, pts, math.nan, path.goal_yaw_rad, path.reverse, PathSource.REPAIRED, exp
                )
            margin *= 3.0
        return self._full(costmap, path)

    def is_valid(self, costmap: Costmap, path: Path) -> bool:
        """Every segment of the path crosses only non-blocked cells of ``costmap``."""
        return math.isfinite(self._polyline_cost(costmap, path.points_xy_m))

    # -- internals -------------------------------------------------------------------------------------

    def _full(self, costmap: Costmap, path: Path) -> Path:
        pts, search_cost, exp = self._search(costmap, path.start_xy, path.goal_xy)
        return self._make_path(costmap, pts, search_cost, path.goal_yaw_rad, path.reverse, PathSource.REPLANNED, exp)

    def _cells(self, costmap: Costmap, xy: tuple[float, float], what: str) -> int:
        grid = costmap.grid
        r, c = grid.world_to_cell(*xy)
        outside = NoPathReason.START_OUTSIDE if what == "start" else NoPathReason.GOAL_OUTSIDE
        blocked = NoPathReason.START_BLOCKED if what == "start" else NoPathReason.GOAL_BLOCKED
        if not grid.in_bounds(r, c):
            raise NoPathError(outside, f"{what} ({xy[0]:.3f}, {xy[1]:.3f}) lies outside the costmap {grid}")
        cost = int(costmap.cost[r, c])
        if cost >= INSCRIBED:
            raise NoPathError(
                blocked, f"{what} ({xy[0]:.3f}, {xy[1]:.3f}) cell ({r}, {c}) has cost {cost} (>= {INSCRIBED})"
            )
        return r * grid.cols + c

    def _workspace(self, n: int) -> _Workspace:
        if self._ws is None or self._ws.n != n:
            self._ws = _Workspace(n)
        return self._ws

    def _padded(self, costmap: Costmap) -> npt.NDArray[np.uint8]:
        """The cost grid with a one-cell LETHAL border, flattened (cached for the last costmap)."""
        if self._pad_for is not costmap:
            self._pad = np.pad(costmap.cost, 1, constant_values=255).reshape(-1)
            self._pad_for = costmap
        return self._pad

    def search_cells(self, costmap: Costmap, start_cell: int, goal_cell: int) -> tuple[IntArray, float, int]:
        """Raw A* between two flat cell indices: (cell path, optimal cost in cell units, expansions).
        Raises NoPathError(UNREACHABLE) when the goal cannot be reached."""
        grid = costmap.grid
        rows, cols = grid.rows + 2, grid.cols + 2
        flat = self._padded(costmap)
        ws = self._workspace(flat.size)
        sid = ws.next_id()
        s_pad = (start_cell // grid.cols + 1) * cols + start_cell % grid.cols + 1
        g_pad = (goal_cell // grid.cols + 1) * cols + goal_cell % grid.cols + 1
        exp = int(
            k.astar_kernel(
                flat,
                rows,
                cols,
                self._lut,
                s_pad,
                g_pad,
                ws.g,
                ws.parent,
                ws.stamp,
                ws.pos,
                ws.heap,
                sid,
                self.params.tie_eps,
            )
        )
        self.last_expansions = abs(exp)
        if exp < 0:
            raise NoPathError(
                NoPathReason.UNREACHABLE,
                f"goal cell {divmod(goal_cell, grid.cols)} cannot be reached from {divmod(start_cell, grid.cols)}"
                f" ({-exp - 1} cells explored)",
            )
        padded = np.asarray(k.reconstruct_kernel(ws.parent, s_pad, g_pad), dtype=np.int64)
        cells = (padded // cols - 1) * grid.cols + (padded % cols - 1)
        return cells, float(ws.g[g_pad]), exp

    def _search(
        self, costmap: Costmap, sxy: tuple[float, float], gxy: tuple[float, float]
    ) -> tuple[FloatArray, float, int]:
        grid = costmap.grid
        s = self._cells(costmap, sxy, "start")
        g = self._cells(costmap, gxy, "goal")
        cells, cost, exp = self.search_cells(costmap, s, g)
        flat = costmap.cost.reshape(-1)
        prefix = k.path_prefix_kernel(flat, grid.cols, self._lut, cells)
        keep = k.shortcut_kernel(flat, grid.rows, grid.cols, self._lut, cells, prefix, self.params.shortcut_tolerance)
        kept = cells[np.asarray(keep, dtype=np.int64)]
        rc = np.column_stack([kept // grid.cols, kept % grid.cols])
        centres = grid.cells_to_world(rc)
        # exact start and goal positions; keep the cell centre too when the short link to it would cross
        # a blocked cell (the positions lie anywhere in their cells)
        parts: list[FloatArray] = [np.asarray([sxy], dtype=np.float64)]
        if not math.isfinite(self._polyline_cost(costmap, np.vstack([parts[0], centres[1:2]]))):
            parts.append(centres[:1])
        parts.append(centres[1:-1])
        end = np.asarray([gxy], dtype=np.float64)
        if len(centres) > 1 and not math.isfinite(self._polyline_cost(costmap, np.vstack([centres[-2:-1], end]))):
            parts.append(centres[-1:])
        parts.append(end)
        return _dedupe(np.vstack(parts)), cost * grid.resolution_m, exp

    def _trace(self, costmap: Costmap, pts: FloatArray) -> tuple[float, IntArray, FloatArray]:
        """Cost integral (m; inf when blocked), swept cells and their entry arc length (m) of a polyline."""
        grid = costmap.grid
        flat = costmap.cost.reshape(-1)
        res = grid.resolution_m
        cx = (pts[:, 0] - grid.origin_x_m) / res
        cy = (pts[:, 1] - grid.origin_y_m) / res
        idx_parts: list[IntArray] = []
        s_parts: list[FloatArray] = []
        total = 0.0
        s0 = 0.0
        for i in range(len(pts) - 1):
            n_max = int(
                abs(math.floor(cx[i + 1]) - math.floor(cx[i])) + abs(math.floor(cy[i + 1]) - math.floor(cy[i])) + 3
            )
            out_i = np.empty(n_max, np.int64)
            out_s = np.empty(n_max, np.float64)
            c, n = k.segment_kernel(
                flat, grid.rows, grid.cols, self._lut, cx[i], cy[i], cx[i + 1], cy[i + 1], out_i, out_s
            )
            total += float(c)
            n = min(int(n), n_max)
            idx_parts.append(out_i[:n])
            s_parts.append(s0 + out_s[:n] * res)
            s0 += math.hypot(cx[i + 1] - cx[i], cy[i + 1] - cy[i]) * res
        swept = np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int64)
        swept_s = np.concatenate(s_parts) if s_parts else np.empty(0, np.float64)
        return total * res, swept, swept_s

    def _polyline_cost(self, costmap: Costmap, pts: FloatArray) -> float:
        return self._trace(costmap, pts)[0]

    def _make_path(
        self,
        costmap: Costmap,
        pts: FloatArray,
        search_cost: float,
        goal_yaw_rad: float | None,
        reverse: bool,
        source: PathSource,
        expansions: int,
    ) -> Path:
        cost, swept, swept_s = self._trace(costmap, pts)
        return Path(pts, costmap, cost, search_cost, swept, swept_s, goal_yaw_rad, reverse, source, expansions)


def _dedupe(pts: FloatArray) -> FloatArray:
    """Drop consecutive duplicate points (keeps at least two)."""
    if len(pts) < 2:
        return np.vstack([pts, pts])
    d = np.hypot(*np.diff(pts, axis=0).T)
    keep = np.concatenate([[True], d > 1e-9])
    out = pts[keep]
    return out if len(out) >= 2 else np.vstack([pts[0], pts[-1]])


def warm_up() -> None:
    """Compile (or load from numba's cache) every planner kernel on a tiny grid, so no compile time lands
    on the first tick of a mission. Call once at start-up."""
    grid = GridSpec(0.0, 0.0, 0.1, 8, 8)
    lethal = np.zeros(grid.shape, dtype=bool)
    lethal[2:6, 4] = True
    from autonomy.navigation.costmap import CostmapParams

    cm = Costmap.from_lethal(grid, lethal, CostmapParams(inscribed_radius_m=0.0, inflation_radius_m=0.1))
    planner = Planner()
    path = planner.plan(cm, (0.05, 0.05), (0.75, 0.75))
    lethal2 = lethal.copy()
    lethal2[1, 1] = True
    planner.replan(Costmap.from_lethal(grid, lethal2, cm.params), path)
