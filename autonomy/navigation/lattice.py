"""Oriented-footprint planner: A* over (heading, row, col) with the rover's real outline, for skid-steer rovers.

The circular inscribed radius of the costmap must cover the rover's longest reach (the bucket, 0.73 m ahead
of base_link) to be safe in turns, which closes gaps the rover fits through when it drives straight. Here
the rover's outline (a convex polygon in base_link, x forward, y left) is checked at its true heading.

Footprint (``OrientedFootprint``), K heading bins of width 2 pi / K centred on yaw_k = 2 pi k / K::

    kernel_k  = raster of the outline rotated over [yaw_k - pi/K, yaw_k + pi/K] (``bin_samples`` angles),
                grown by ``margin_m`` (8 translated copies), one uint8 image per bin, centre = base_link
    coll_k    = cv2.dilate(lethal, kernel_k)  (OpenCV's dilate is max over src(p + offset), offset in the
                kernel: coll_k(p) = 1 iff the outline at some heading of bin k, base_link at the centre of
                cell p, covers the centre of a lethal cell; outside the grid is lethal)

Because kernel_k covers the whole bin, a rover whose heading lies anywhere in bin k is clear when coll_k is 0,
and a turn in place from bin k to k + 1 is clear when both are (their union is the swept outline).

Search (``_lattice_kernels.lattice_astar_kernel``): states (k, r, c); a forward primitive per bin (the
shortest integer cell vector within ``primitive_tolerance_rad`` of yaw_k, up to ``max_primitive_cells``:
(1, 0), (10, 1), (5, 1), ... (1, 1) for K = 64, every intermediate cell checked), cost = length (cells) x
m(cost[dest]), m(c) = 1 + cost_weight min(c, 252) / 252 (the costmap's graded cost keeps paths centred in
gaps); the same primitive backwards at ``reverse_multiplier`` times the cost; turns in place to the adjacent
bins, cost = turn_cost_m_per_rad x 2 pi / K. Heuristic: Euclidean distance (cells; admissible). Goal: the
goal cell, at a bin from which the turn in place to the goal heading is clear. With a goal heading the
search ends at the pre-goal point ``approach_m`` behind the goal, and a straight approach leg along the
heading is appended (when clear; else the goal itself is searched).

Smoothing (``_smooth``): greedy shortcutting of the state path into straight legs; a leg i -> j at heading
phi is kept when the outline at bin(phi) is clear along it (every half cell), the turn in place at i from the
previous leg's bin to bin(phi) is clear, the turn at j to the lattice's own bin at j is clear (so the lattice
path can always continue from j), its moves all go one way (forward or reverse), and its cost is at most
(1 + shortcut_tolerance) times the lattice's between i and j. The result: vertices joined by straight legs,
a turn in place at each vertex, which the navigator follows leg by leg (so the follower never cuts the
corner the plan went round).

Costs (measured, ``rover bench --suite navigation``, ``oriented``, UCF arena 96 x 166 cells, 64 bins): the
collision layers about 9 ms per new costmap, a plan a few tens of ms (most of the lattice's 1 M states are
expanded when the way round is long); the workspace is about 60 MB (float64 g and heap over all states).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.msgs import wrap_angle_rad
from autonomy.navigation import _lattice_kernels as lk
from autonomy.navigation._kernels import reconstruct_kernel
from autonomy.navigation.costmap import LETHAL, MAX_GRADED_COST, Costmap, GridSpec
from autonomy.navigation.planner import NoPathError, NoPathReason, Path, PathSource, _Workspace

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
U8Array = npt.NDArray[np.uint8]

# a search from a clear start that ends within this many states is boxed in at its heading (a search that
# finds no way across a map explores 10^4-10^5 states): with reverse moves allowed it is retried with the
# start's escape moves
_BOXED_IN_STATES = 2000

# The simulated rover's outline in base_link (x, y), m: bucket to 0.73 m ahead and 0.5 m wide, wheels
# (r 0.15 m, 0.08 m wide, centred at x = +-0.25, y = +-0.30, so 0.34 m out), rear at -0.40 m
# (sim/assets/rover.urdf).
ROVER_OUTLINE_M: tuple[tuple[float, float], ...] = (
    (0.73, 0.25),
    (0.73, -0.25),
    (0.58, 0.25),
    (0.58, -0.25),
    (0.40, 0.34),
    (0.40, -0.34),
    (-0.40, 0.34),
    (-0.40, -0.34),
    (-0.40, 0.22),
    (-0.40, -0.22),
)


@dataclass(frozen=True, slots=True)
class LatticeParams:
    """Footprint, lattice and cost parameters (module docstring)."""

    outline_m: tuple[tuple[float, float], ...] = ROVER_OUTLINE_M
    # 64 bins (5.6 deg): each bin's kernel sweeps the outline over its width, which widened the rover (then
    # 0.9 m wide over its wheels' collision spheres) by 2.2 cm a side at 32 bins and closed the UCF gaps on
    # most seeds; 1.1 cm at 64
    headings: int = 64
    # outline growth against localization error: the 0.68 m wide rover has >= 11 cm a side in the UCF
    # obstacle zone's 0.9 m corridor (sim/sites.py); the 0.9 m rover of before needed <= 1 cm (seed 2)
    margin_m: float = 0.04
    bin_samples: int = 5
    max_primitive_cells: int = 12
    primitive_tolerance_rad: float = math.radians(1.2)
    turn_cost_m_per_rad: float = 1.0
    # driving backwards along a primitive costs this many times driving forwards (0: never): without it a gap
    # passed with one turn sequence on the way out could not be passed the other way (the bucket sweeps
    # differently), measured on UCF seed 1
    reverse_multiplier: float = 2.0
    cost_weight: float = 3.0
    heuristic_weight: float = 1.0
    escape_radius_m: float = 0.35  # a start state the map shows in collision may move this far to get clear
    escape_multiplier: float = 5.0
    shortcut_tolerance: float = 0.05
    # the last leg: this long, straight along the goal heading, when clear (0: arrive any way and turn)
    approach_m: float = 0.3

    def __post_init__(self) -> None:
        pts = np.asarray(self.outline_m, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3 or not np.all(np.isfinite(pts)):
            raise ValueError(f"LatticeParams.outline_m: need >= 3 finite (x, y) points, got {self.outline_m}")
        if not (self.headings >= 8 and self.headings % 4 == 0):
            raise ValueError(f"LatticeParams.headings: need a multiple of 4, >= 8, got {self.headings}")
        if self.bin_samples < 2 or self.max_primitive_cells < 1:
            raise ValueError("LatticeParams: need bin_samples >= 2 and max_primitive_cells >= 1")
        for name in (
            "margin_m",
            "turn_cost_m_per_rad",
            "cost_weight",
            "escape_radius_m",
            "shortcut_tolerance",
            "reverse_multiplier",
            "approach_m",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"LatticeParams.{name}: must be finite and >= 0, got {v}")
        for name in ("primitive_tolerance_rad", "heuristic_weight", "escape_multiplier"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"LatticeParams.{name}: must be finite and > 0, got {v}")
        if self.heuristic_weight < 1.0 or self.escape_multiplier < 1.0:
            raise ValueError("LatticeParams: heuristic_weight and escape_multiplier must be >= 1")
        if 0.0 < self.reverse_multiplier < 1.0:
            raise ValueError("LatticeParams.reverse_multiplier: must be 0 (no reverse) or >= 1 (admissible heuristic)")


class OrientedFootprint:
    """The outline's per-bin kernels at one grid resolution and the collision layers of lethal masks."""

    def __init__(self, params: LatticeParams, resolution_m: float) -> None:
        if not (math.isfinite(resolution_m) and resolution_m > 0.0):
            raise ValueError(f"OrientedFootprint: resolution must be > 0, got {resolution_m}")
        self.params = params
        self.resolution_m = resolution_m
        k = params.headings
        self.bin_width_rad = 2.0 * math.pi / k
        self.bin_yaw_rad = np.arange(k, dtype=np.float64) * self.bin_width_rad
        pts = np.asarray(params.outline_m, dtype=np.float32)
        hull = cv2.convexHull(pts).reshape(-1, 2).astype(np.float64)
        self.hull_m = hull
        reach = float(np.hypot(hull[:, 0], hull[:, 1]).max()) + params.margin_m
        r = math.ceil(reach / resolution_m) + 1
        self.radius_cells = r
        size = 2 * r + 1
        kernels: list[U8Array] = []
        shifts = [(0.0, 0.0)] + [
            (params.margin_m * math.cos(a), params.margin_m * math.sin(a)) for a in np.arange(8) * math.pi / 4
        ]
        for yaw_k in self.bin_yaw_rad:
            img = np.zeros((size, size), np.uint8)
            polys: list[npt.NDArray[np.int32]] = []
            half = 0.5 * self.bin_width_rad
            for a in np.linspace(yaw_k - half, yaw_k + half, params.bin_samples):
                c, s = math.cos(a), math.sin(a)
                xs = c * hull[:, 0] - s * hull[:, 1]
                ys = s * hull[:, 0] + c * hull[:, 1]
                for dx, dy in shifts:
                    px = r + (xs + dx) / resolution_m
                    py = r + (ys + dy) / resolution_m
                    polys.append(np.rint(np.column_stack([px, py]) * 16.0).astype(np.int32).reshape(-1, 1, 2))
            cv2.fillPoly(img, polys, 1, lineType=cv2.LINE_8, shift=4)
            img[r, r] = 1
            kernels.append(img)
        self.kernels = kernels

    def bin_of(self, yaw_rad: float) -> int:
        """The bin holding ``yaw_rad``."""
        return round(yaw_rad / self.bin_width_rad) % self.params.headings

    def collision(self, lethal: npt.NDArray[np.bool_]) -> U8Array:
        """(K, rows, cols) uint8: 1 where the outline at bin k overlaps a lethal cell (outside the grid is
        lethal)."""
        r = self.radius_cells
        lethal = np.asarray(lethal, dtype=bool)
        rows, cols = lethal.shape
        out = np.ones((self.params.headings, rows, cols), np.uint8)
        free = ~lethal
        fr, fc = np.flatnonzero(free.any(axis=1)), np.flatnonzero(free.any(axis=0))
        if len(fr) == 0:
            return out
        # only the bounding box of the free cells (a cell outside it has its base_link on a lethal cell)
        r0, r1, c0, c1 = int(fr[0]), int(fr[-1]) + 1, int(fc[0]), int(fc[-1]) + 1
        src = cv2.copyMakeBorder(lethal.astype(np.uint8), r, r, r, r, cv2.BORDER_CONSTANT, value=1)
        sub = src[r0 : r1 + 2 * r, c0 : c1 + 2 * r]
        for k, kern in enumerate(self.kernels):
            d = cv2.dilate(sub, kern, borderType=cv2.BORDER_CONSTANT, borderValue=1)
            out[k, r0:r1, c0:c1] = d[r : r + r1 - r0, r : r + c1 - c0]
        return out


@dataclass(frozen=True, slots=True, eq=False)
class OrientedPath:
    """A lattice plan: ``path`` (the polyline, for display and the follower's final approach) and its legs.

    ``vertices_xy_m`` (n, 2): start, turn-in-place points, goal; leg i runs from vertex i to i + 1 at heading
    ``leg_yaw_rad[i]`` (bin ``leg_bins[i]``), backwards when ``leg_reverse[i]`` (the heading is then the
    leg's direction + pi); ``goal_yaw_rad``: the heading to take at the goal (None: any)."""

    path: Path
    vertices_xy_m: FloatArray
    leg_yaw_rad: FloatArray
    leg_bins: IntArray
    leg_reverse: npt.NDArray[np.bool_]
    goal_yaw_rad: float | None
    search_cost_m: float
    expansions: int
    states: IntArray = field(repr=False)

    @property
    def legs(self) -> int:
        return len(self.vertices_xy_m) - 1

    def leg_path(self, i: int) -> Path:
        """Leg ``i`` as a two-point ``Path`` (the last leg carries the goal heading)."""
        if not 0 <= i < self.legs:
            raise IndexError(f"OrientedPath.leg_path: leg {i} of {self.legs}")
        pts = self.vertices_xy_m[i : i + 2].copy()
        yaw = self.goal_yaw_rad if i == self.legs - 1 else None
        p = self.path
        rev = bool(self.leg_reverse[i])
        return Path(pts, p.costmap, math.nan, math.nan, p.swept[:0], p.swept_s[:0], yaw, rev, p.source, 0)


def _primitives(params: LatticeParams, bin_yaw: FloatArray) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
    """Per bin: the number of steps, the intermediate cell offsets (dr, dc) and the length (cells) of the
    shortest integer vector within ``primitive_tolerance_rad`` of the bin's heading."""
    k = len(bin_yaw)
    lmax = params.max_primitive_cells
    n = np.zeros(k, np.int64)
    dr = np.zeros((k, lmax), np.int64)
    dc = np.zeros((k, lmax), np.int64)
    length = np.zeros(k, np.float64)
    cand = [(a, b) for a in range(-lmax, lmax + 1) for b in range(-lmax, lmax + 1) if (a, b) != (0, 0)]
    cand.sort(key=lambda v: math.hypot(*v))
    for i, yaw in enumerate(bin_yaw):
        best: tuple[int, int] | None = None
        for vx, vy in cand:
            if abs(wrap_angle_rad(math.atan2(vy, vx) - yaw)) <= params.primitive_tolerance_rad:
                best = (vx, vy)
                break
        if best is None:
            raise ValueError(
                f"LatticeParams: no cell vector within {math.degrees(params.primitive_tolerance_rad):.1f} deg of "
                f"heading {math.degrees(yaw):.1f} deg and at most {lmax} cells: raise max_primitive_cells"
            )
        vx, vy = best
        steps = max(abs(vx), abs(vy))
        n[i] = steps
        for j in range(steps):
            t = (j + 1) / steps
            dr[i, j] = round(t * vy)
            dc[i, j] = round(t * vx)
        length[i] = math.hypot(vx, vy)
    return n, dr, dc, length


class LatticePlanner:
    """Plans ``OrientedPath``s on costmaps (module docstring). Caches the footprint per resolution and the
    collision layers of the last costmap. One planner per thread."""

    def __init__(self, params: LatticeParams | None = None) -> None:
        self.params = params or LatticeParams()
        self._fp: OrientedFootprint | None = None
        self._coll: U8Array = np.zeros(0, np.uint8)
        self._coll_for: Costmap | None = None
        self._mult: FloatArray = np.zeros(0)
        self._ws: _Workspace | None = None
        lut = 1.0 + self.params.cost_weight * np.minimum(np.arange(256), MAX_GRADED_COST) / MAX_GRADED_COST
        self._lut = lut.astype(np.float64)
        self._prims: tuple[IntArray, IntArray, IntArray, FloatArray] | None = None
        self.last_expansions = 0

    # -- footprint and layers ----------------------------------------------------------------------------

    def footprint(self, resolution_m: float) -> OrientedFootprint:
        if self._fp is None or self._fp.resolution_m != resolution_m:
            self._fp = OrientedFootprint(self.params, resolution_m)
            self._prims = _primitives(self.params, self._fp.bin_yaw_rad)
        return self._fp

    def collision_layers(self, costmap: Costmap) -> U8Array:
        """(K, rows, cols) collision layers of ``costmap``'s LETHAL cells (cached for the last costmap)."""
        if self._coll_for is not costmap:
            fp = self.footprint(costmap.grid.resolution_m)
            self._coll = fp.collision(costmap.cost == LETHAL)
            self._mult = self._lut[costmap.cost].reshape(-1)
            self._coll_for = costmap
        return self._coll

    def pose_free(self, costmap: Costmap, x_m: float, y_m: float, yaw_rad: float) -> bool:
        """The outline at (x, y, yaw) overlaps no lethal cell (False outside the grid)."""
        coll = self.collision_layers(costmap)
        r, c = costmap.grid.world_to_cell(x_m, y_m)
        if not costmap.grid.in_bounds(r, c):
            return False
        return bool(coll[self.footprint(costmap.grid.resolution_m).bin_of(yaw_rad), r, c] == 0)

    # -- planning ----------------------------------------------------------------------------------------

    def plan(
        self,
        costmap: Costmap,
        start: tuple[float, float, float],
        goal: tuple[float, float],
        goal_yaw_rad: float | None = None,
    ) -> OrientedPath:
        """A plan from the pose ``start`` (x, y, yaw) to ``goal`` (x, y), arriving where the turn to
        ``goal_yaw_rad`` (None: any) is clear. With a goal heading, the plan ends with a straight leg of
        ``approach_m`` along it (from the pre-goal point behind the goal) when that leg is clear: the rover
        drives the last stretch already facing the goal heading. Raises NoPathError."""
        approach = self.params.approach_m
        if goal_yaw_rad is not None and approach > 0.0 and all(math.isfinite(v) for v in goal):
            pre = (goal[0] - approach * math.cos(goal_yaw_rad), goal[1] - approach * math.sin(goal_yaw_rad))
            if self._approach_free(costmap, pre, goal, goal_yaw_rad):
                try:
                    head = self._plan(costmap, start, pre, goal_yaw_rad)
                except NoPathError:
                    pass
                else:
                    return self._append_leg(head, goal, goal_yaw_rad)
        return self._plan(costmap, start, goal, goal_yaw_rad)

    def _approach_free(self, costmap: Costmap, pre: tuple[float, float], goal: tuple[float, float], yaw: float) -> bool:
        grid = costmap.grid
        r, c = grid.world_to_cell(*pre)
        if not grid.in_bounds(r, c):
            return False
        cflat = self.collision_layers(costmap).reshape(-1)
        kb = self.footprint(grid.resolution_m).bin_of(yaw)
        res = grid.resolution_m
        x0, y0 = (pre[0] - grid.origin_x_m) / res, (pre[1] - grid.origin_y_m) / res
        x1, y1 = (goal[0] - grid.origin_x_m) / res, (goal[1] - grid.origin_y_m) / res
        n = grid.rows * grid.cols
        return bool(lk.leg_free_kernel(cflat, n, grid.rows, grid.cols, kb, x0, y0, x1, y1, 0.0))

    def _append_leg(self, head: OrientedPath, goal: tuple[float, float], yaw: float) -> OrientedPath:
        """``head`` (ending at the pre-goal point) with the approach leg to ``goal`` at heading ``yaw``."""
        p = head.path
        fp = self.footprint(p.costmap.grid.resolution_m)
        vxy = np.vstack([head.vertices_xy_m, [goal]])
        swept, swept_s = _swept(p.costmap.grid, vxy)
        cost = head.search_cost_m + self.params.approach_m * float(self._mult[swept[-1]])
        path = Path(vxy, p.costmap, cost, cost, swept, swept_s, yaw, False, PathSource.PLANNED, head.expansions)
        return OrientedPath(
            path,
            vxy,
            np.append(head.leg_yaw_rad, yaw),
            np.append(head.leg_bins, fp.bin_of(yaw)),
            np.append(head.leg_reverse, False),
            yaw,
            cost,
            head.expansions,
            head.states,
        )

    def _plan(
        self,
        costmap: Costmap,
        start: tuple[float, float, float],
        goal: tuple[float, float],
        goal_yaw_rad: float | None,
    ) -> OrientedPath:
        grid = costmap.grid
        for what, xy in (("start", start[:2]), ("goal", goal)):
            if not all(math.isfinite(v) for v in xy):
                raise ValueError(f"LatticePlanner.plan: {what} must be finite, got {xy}")
        if not math.isfinite(start[2]):
            raise ValueError(f"LatticePlanner.plan: start heading must be finite, got {start[2]}")
        coll = self.collision_layers(costmap)
        fp = self.footprint(grid.resolution_m)
        prims = self._prims
        if prims is None:  # set with the footprint
            raise RuntimeError("LatticePlanner: primitives missing")
        nk = self.params.headings
        n = grid.rows * grid.cols
        sr, sc = grid.world_to_cell(start[0], start[1])
        gr, gc = grid.world_to_cell(goal[0], goal[1])
        if not grid.in_bounds(sr, sc):
            raise NoPathError(NoPathReason.START_OUTSIDE, f"start ({start[0]:.3f}, {start[1]:.3f}) outside {grid}")
        if not grid.in_bounds(gr, gc):
            raise NoPathError(NoPathReason.GOAL_OUTSIDE, f"goal ({goal[0]:.3f}, {goal[1]:.3f}) outside {grid}")
        sk = fp.bin_of(start[2])
        gk = -1 if goal_yaw_rad is None else fp.bin_of(goal_yaw_rad)
        gcell = gr * grid.cols + gc
        cflat = coll.reshape(-1)
        if gk >= 0 and cflat[gk * n + gcell]:
            raise NoPathError(
                NoPathReason.GOAL_BLOCKED,
                f"goal ({goal[0]:.3f}, {goal[1]:.3f}) heading {math.degrees(goal_yaw_rad or 0.0):.1f} deg: the "
                "rover's outline there overlaps a lethal cell",
            )
        if gk < 0 and bool(np.all(coll[:, gr, gc])):
            raise NoPathError(
                NoPathReason.GOAL_BLOCKED,
                f"goal ({goal[0]:.3f}, {goal[1]:.3f}): the rover's outline overlaps a lethal cell at every heading",
            )
        if self._ws is None or self._ws.n != nk * n:
            self._ws = _Workspace(nk * n)
        ws = self._ws
        sid = ws.next_id()
        start_state = sk * n + sr * grid.cols + sc
        esc = self.params.escape_radius_m / grid.resolution_m
        turn_cost = self.params.turn_cost_m_per_rad * fp.bin_width_rad / grid.resolution_m

        def search(force_escape: bool) -> tuple[int, int]:
            exp, goal_state = lk.lattice_astar_kernel(
                cflat,
                self._mult,
                grid.rows,
                grid.cols,
                nk,
                prims[0],
                prims[1],
                prims[2],
                prims[3],
                turn_cost,
                self.params.reverse_multiplier,
                start_state,
                gcell,
                gk,
                esc,
                self.params.escape_multiplier,
                force_escape,
                self.params.heuristic_weight,
                ws.g,
                ws.parent,
                ws.stamp,
                ws.pos,
                ws.heap,
                ws.next_id() if force_escape else sid,
            )
            return int(exp), int(goal_state)

        exp, goal_state = search(False)
        if exp < 0 and -exp - 1 < _BOXED_IN_STATES and self.params.reverse_multiplier > 0 and not cflat[start_state]:
            # a clear start boxed in at its heading: it can neither turn nor drive forwards or backwards,
            # although it got there (the way it came is cleared as driven ground), so the map around it is wrong
            # (e.g. a false mark beside a wheel after drift): the same escape a colliding start gets (measured:
            # UCF crossing seed 2 stopped 3 states into its search)
            exp, goal_state = search(True)
        self.last_expansions = abs(exp)
        if exp < 0:
            raise NoPathError(
                NoPathReason.UNREACHABLE,
                f"no collision-free way for the rover's outline from ({start[0]:.2f}, {start[1]:.2f}) to "
                f"({goal[0]:.2f}, {goal[1]:.2f}) ({-exp - 1} states explored)",
            )
        states = np.asarray(reconstruct_kernel(ws.parent, start_state, int(goal_state)), np.int64)
        g_states = ws.g[states].copy()
        return self._smooth(costmap, states, g_states, start, goal, goal_yaw_rad, exp)

    def _smooth(
        self,
        costmap: Costmap,
        states: IntArray,
        g_states: FloatArray,
        start: tuple[float, float, float],
        goal: tuple[float, float],
        goal_yaw_rad: float | None,
        expansions: int,
    ) -> OrientedPath:
        grid = costmap.grid
        fp = self.footprint(grid.resolution_m)
        cflat = self.collision_layers(costmap).reshape(-1)
        nk = self.params.headings
        n = grid.rows * grid.cols
        bins = states // n
        cells = states % n
        rows, cols = cells // grid.cols, cells % grid.cols
        # cell-unit positions of the cell centres (the lattice's geometry); the exact start and goal replace the
        # first and last vertex at the end (within half a cell diagonal of them)
        px = cols.astype(np.float64) + 0.5
        py = rows.astype(np.float64) + 0.5
        res = grid.resolution_m
        # candidate vertices: the first state of each cell visited (turn states share their cell)
        idx = [0] + [i for i in range(1, len(states)) if cells[i] != cells[i - 1]]
        if idx[-1] != len(states) - 1 and cells[-1] != cells[idx[-1]]:
            idx.append(len(states) - 1)
        last_of_cell = {}
        for i in range(len(states)):
            last_of_cell[int(cells[i])] = i  # the state leaving the cell (after its turns)
        esc = self.params.escape_radius_m / res
        start_colliding = bool(cflat[states[0]])
        turn_cost = self.params.turn_cost_m_per_rad * fp.bin_width_rad / res
        tol = self.params.shortcut_tolerance

        def turn_bins(k0: int, k1: int) -> int:
            d = (k1 - k0) % nk
            return min(d, nk - d)

        # direction of the move into each candidate vertex: +1 forward, -1 reverse (a leg keeps one direction)
        m = len(idx)
        dir_in = np.ones(m, np.int64)
        for i in range(1, m):
            s_ = idx[i]
            d_r = float(rows[s_] - rows[s_ - 1])
            d_c = float(cols[s_] - cols[s_ - 1])
            yaw_b = float(fp.bin_yaw_rad[bins[s_]])
            dir_in[i] = 1 if d_c * math.cos(yaw_b) + d_r * math.sin(yaw_b) > 0.0 else -1
        run_end = np.empty(m, np.int64)  # run_end[i]: the last vertex reachable from i in one direction
        run_end[m - 1] = m - 1
        for i in range(m - 2, -1, -1):
            run_end[i] = run_end[i + 1] if i + 2 < m and dir_in[i + 2] == dir_in[i + 1] else i + 1

        def leg_heading(ia: int, ja: int) -> tuple[float, float]:
            a, b = idx[ia], idx[ja]
            phi = math.atan2(py[b] - py[a], px[b] - px[a])
            return phi, (phi if dir_in[ia + 1] > 0 else wrap_angle_rad(phi + math.pi))

        def ok(ia: int, ja: int, cur_bin: int) -> tuple[bool, int, float]:
            a, b = idx[ia], idx[ja]
            kb = fp.bin_of(leg_heading(ia, ja)[1])
            ca = int(cells[a])
            cb = int(cells[b])
            skip = esc if (ia == 0 and start_colliding) else 0.0
            if not (skip > 0.0 or lk.turn_free_kernel(cflat, n, nk, ca, cur_bin, kb)):
                return False, kb, 0.0
            if not lk.leg_free_kernel(cflat, n, grid.rows, grid.cols, kb, px[a], py[a], px[b], py[b], skip):
                return False, kb, 0.0
            k_next = int(bins[last_of_cell[cb]])
            if b != len(states) - 1 and not lk.turn_free_kernel(cflat, n, nk, cb, kb, k_next):
                return False, kb, 0.0
            cost = lk.leg_cost_kernel(self._mult, grid.rows, grid.cols, px[a], py[a], px[b], py[b])
            if dir_in[ia + 1] < 0:
                cost *= self.params.reverse_multiplier
            cost += turn_cost * turn_bins(cur_bin, kb)
            lattice = g_states[last_of_cell[cb]] - (g_states[a] if ia > 0 else 0.0)
            return cost <= (1.0 + tol) * lattice + 1e-6, kb, float(cost)

        verts = [0]
        leg_bins: list[int] = []
        leg_yaw: list[float] = []
        leg_rev: list[bool] = []
        cur = int(bins[0])
        ia = 0
        while ia < m - 1:
            good = ia + 1
            good_ok, good_bin, _ = ok(ia, good, cur)
            if not good_ok:  # the lattice's own step (always feasible): keep it
                good_bin = fp.bin_of(leg_heading(ia, good)[1])
            step = 1
            bad = int(run_end[ia]) + 1
            while True:
                j = min(good + step, bad - 1)
                if j <= good:
                    break
                fine, kb, _ = ok(ia, j, cur)
                if fine:
                    good, good_bin = j, kb
                    if j == bad - 1:
                        break
                    step *= 2
                else:
                    bad = j
                    break
            while bad - good > 1:
                mid = (good + bad) // 2
                fine, kb, _ = ok(ia, mid, cur)
                if fine:
                    good, good_bin = mid, kb
                else:
                    bad = mid
            leg_bins.append(good_bin)
            leg_yaw.append(leg_heading(ia, good)[1])
            leg_rev.append(bool(dir_in[ia + 1] < 0))
            verts.append(good)
            cur = good_bin
            ia = good
        vpx = np.array([px[idx[v]] for v in verts])
        vpy = np.array([py[idx[v]] for v in verts])
        vxy = np.column_stack([grid.origin_x_m + vpx * res, grid.origin_y_m + vpy * res])
        vxy[0] = start[0], start[1]
        if len(vxy) > 1:
            vxy[-1] = goal[0], goal[1]
        keep = np.concatenate([[True], np.hypot(*np.diff(vxy, axis=0).T) > 1e-9])
        if not keep.all():  # zero-length legs (start and goal in one cell)
            vxy = vxy[keep]
            leg_bins = [b for b, kp in zip(leg_bins, keep[1:], strict=True) if kp]
            leg_yaw = [y for y, kp in zip(leg_yaw, keep[1:], strict=True) if kp]
            leg_rev = [r for r, kp in zip(leg_rev, keep[1:], strict=True) if kp]
        if len(vxy) < 2:
            vxy = np.array([[start[0], start[1]], [goal[0], goal[1]]])
            leg_bins, leg_yaw, leg_rev = [int(bins[0])], [float(start[2])], [False]
        swept, swept_s = _swept(grid, vxy)
        search_cost = float(g_states[-1]) * res
        path = Path(
            vxy, costmap, search_cost, search_cost, swept, swept_s, goal_yaw_rad, False, PathSource.PLANNED, expansions
        )
        return OrientedPath(
            path,
            vxy,
            np.asarray(leg_yaw, np.float64),
            np.asarray(leg_bins, np.int64),
            np.asarray(leg_rev, np.bool_),
            goal_yaw_rad,
            search_cost,
            expansions,
            states,
        )

    # -- checks ------------------------------------------------------------------------------------------

    def legs_free(
        self,
        costmap: Costmap,
        plan: OrientedPath,
        from_leg: int = 0,
        from_xy: tuple[float, float] | None = None,
        to_leg: int | None = None,
    ) -> bool:
        """Legs ``from_leg``.. of ``plan`` (up to, not including, ``to_leg`` when given; leg ``from_leg`` from
        ``from_xy`` when given, with the escape allowance around it) and the turns at their ends are still clear
        on ``costmap``."""
        grid = costmap.grid
        if costmap.grid != plan.path.costmap.grid:
            return False
        cflat = self.collision_layers(costmap).reshape(-1)
        nk = self.params.headings
        n = grid.rows * grid.cols
        res = grid.resolution_m
        v = plan.vertices_xy_m
        cx = (v[:, 0] - grid.origin_x_m) / res
        cy = (v[:, 1] - grid.origin_y_m) / res
        for i in range(max(0, from_leg), plan.legs if to_leg is None else min(plan.legs, to_leg)):
            x0, y0, skip = float(cx[i]), float(cy[i]), 0.0
            if i == from_leg and from_xy is not None:
                x0, y0 = (from_xy[0] - grid.origin_x_m) / res, (from_xy[1] - grid.origin_y_m) / res
                skip = self.params.escape_radius_m / res
            kb = int(plan.leg_bins[i])
            if not lk.leg_free_kernel(
                cflat, n, grid.rows, grid.cols, kb, x0, y0, float(cx[i + 1]), float(cy[i + 1]), skip
            ):
                return False
            r, c = math.floor(cy[i + 1]), math.floor(cx[i + 1])
            if not grid.in_bounds(r, c):
                return False
            cell = r * grid.cols + c
            if i + 1 < plan.legs:
                k1 = int(plan.leg_bins[i + 1])
            elif plan.goal_yaw_rad is not None:
                k1 = self.footprint(res).bin_of(plan.goal_yaw_rad)
            else:
                k1 = kb
            if not lk.turn_free_kernel(cflat, n, nk, cell, kb, k1):
                return False
        return True


def _swept(grid: GridSpec, pts: FloatArray) -> tuple[IntArray, FloatArray]:
    """Flat indices of the cells under a polyline (sampled every half cell, in order, consecutive duplicates
    dropped, clipped to the grid) and the arc length (m) of each sample."""
    res = grid.resolution_m
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    ss: list[FloatArray] = []
    s0 = 0.0
    for a, b in itertools.pairwise(pts):
        seg = float(math.hypot(*(b - a)))
        ns = max(1, math.ceil(2.0 * seg / res))
        t = np.arange(ns) / ns
        xs.append(a[0] + t * (b[0] - a[0]))
        ys.append(a[1] + t * (b[1] - a[1]))
        ss.append(s0 + t * seg)
        s0 += seg
    xs.append(pts[-1:, 0])
    ys.append(pts[-1:, 1])
    ss.append(np.array([s0]))
    x, y, s = np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)
    c = np.clip(np.floor((x - grid.origin_x_m) / res).astype(np.int64), 0, grid.cols - 1)
    r = np.clip(np.floor((y - grid.origin_y_m) / res).astype(np.int64), 0, grid.rows - 1)
    flat = r * grid.cols + c
    keep = np.concatenate([[True], flat[1:] != flat[:-1]])
    return flat[keep], s[keep]


def warm_up() -> None:
    """Compile (or load from numba's cache) the lattice kernels on a tiny grid."""
    grid = GridSpec(0.0, 0.0, 0.05, 60, 60)
    lethal = np.zeros(grid.shape, dtype=bool)
    lethal[10:20, 40] = True
    from autonomy.navigation.costmap import CostmapParams

    cm = Costmap.from_lethal(grid, lethal, CostmapParams(inscribed_radius_m=0.0, inflation_radius_m=0.1))
    p = LatticePlanner()
    plan = p.plan(cm, (1.0, 1.0, 0.0), (2.0, 2.0), 0.0)
    p.legs_free(cm, plan, 0, (1.0, 1.0))
