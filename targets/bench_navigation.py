"""``rover bench navigation``: the planner beside its peers on the same seeded grids, as one JSON dict.

Peers, run side by side in one process on the same costmaps:
- ``python``: a plain pure-Python heapq A* (``python_astar`` below: the baseline, same cost model as ours:
  8-connected, octile heuristic, no corner cutting, edge cost step * m(cost)); NOT used by the rover;
- ``pyastar2d``: the C++ A* (bench extra; skipped with a reason when missing), fed the same multiplier grid
  (inf where blocked). Its own model: a diagonal move costs the same as an edge move, Chebyshev heuristic,
  corner cutting allowed; so its search problem is easier (fewer expansions) than ours;
- ``regolith``: ``autonomy.navigation.planner`` (numba A* + shortcutting): the raw search
  (``search_cells``) and the full ``plan`` (search + smoothing + swept cells).

Grids (seeded): ``local`` 200x200 and ``global`` 1000x1000 at 5 cm, obstacles = random rocks/craters
(discs) inflated by the rover footprint (graded costs), corner to corner; ``salt`` 1000x1000 with 20 % random
blocked cells, uniform cost (the performance-anchors grid). ``replan``: after a plan on ``global``, one new
rock (a disc) is dropped on the path; incremental ``replan`` versus ``plan`` from scratch on the new map.
``oriented``: the oriented-footprint lattice planner (``autonomy.navigation.lattice``, 64 headings, the
rover's outline) on UCF-sized grids (8.1 x 4.57 m arena at 5 cm, walls lethal, three 0.30-0.40 m rocks and
three 0.40-0.50 m craters drawn per seed in the obstacle zone with 0.3 m gaps, as the simulator draws them):
the collision layers per new costmap, the plan (search + leg smoothing) start zone -> construction zone and
back to the excavation zone, and the circular-footprint planner on the same costmaps (0.45 m inscribed).

Figures are medians of several runs (p50/p99 ms) and ratios measured in the same run: provisional on a
shared machine.
"""

from __future__ import annotations

import heapq
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.navigation import lattice
from autonomy.navigation.costmap import INSCRIBED, MAX_GRADED_COST, Costmap, CostmapParams, GridSpec
from autonomy.navigation.planner import NoPathError, Planner, PlannerParams, warm_up
from autonomy.runtime.terrain import rover_costmap_params

_SQRT2 = math.sqrt(2.0)


def multiplier_lut(cost_weight: float) -> npt.NDArray[np.float64]:
    """cost -> traversal multiplier (the planner's table): 1 + w c / 252, -1 where blocked."""
    lut = 1.0 + cost_weight * np.arange(256, dtype=np.float64) / MAX_GRADED_COST
    lut[INSCRIBED:] = -1.0
    return lut


def python_astar(
    cost: npt.NDArray[np.uint8], start: tuple[int, int], goal: tuple[int, int], cost_weight: float = 3.0
) -> tuple[list[tuple[int, int]], float] | None:
    """The baseline: textbook A* with heapq over (row, col) cells, the planner's cost model. Returns
    (cells, cost in cell units) or None when unreachable."""
    rows, cols = cost.shape
    lut = multiplier_lut(cost_weight).tolist()
    grid = cost.tolist()
    gr, gc = goal

    def h(r: int, c: int) -> float:
        dr, dc = abs(r - gr), abs(c - gc)
        return dr + dc + (_SQRT2 - 2.0) * min(dr, dc)

    g: dict[tuple[int, int], float] = {start: 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    closed: set[tuple[int, int]] = set()
    heap: list[tuple[float, float, tuple[int, int]]] = [(h(*start), -0.0, start)]  # (f, -g: ties to deeper)
    moves = [(-1, 0, 1.0), (1, 0, 1.0), (0, -1, 1.0), (0, 1, 1.0)]
    moves += [(-1, -1, _SQRT2), (-1, 1, _SQRT2), (1, -1, _SQRT2), (1, 1, _SQRT2)]
    while heap:
        _, neg_g, u = heapq.heappop(heap)
        gu = -neg_g
        if u in closed:
            continue
        closed.add(u)
        if u == goal:
            path = [u]
            while path[-1] != start:
                path.append(parent[path[-1]])
            return path[::-1], gu
        ur, uc = u
        for dr, dc, step in moves:
            vr, vc = ur + dr, uc + dc
            if not (0 <= vr < rows and 0 <= vc < cols):
                continue
            m = lut[grid[vr][vc]]
            if m < 0.0 or (vr, vc) in closed:
                continue
            if dr and dc and (lut[grid[ur][vc]] < 0.0 or lut[grid[vr][uc]] < 0.0):
                continue
            ng = gu + step * m
            v = (vr, vc)
            if ng < g.get(v, math.inf):
                g[v] = ng
                parent[v] = u
                heapq.heappush(heap, (ng + h(vr, vc), -ng, v))
    return None


def rock_field(n: int, seed: int, density: float = 0.004, resolution_m: float = 0.05) -> Costmap:
    """A seeded n x n costmap: random discs (rocks/craters, 0.15-0.4 m radius) inflated by a 0.3 m
    inscribed radius out to 0.8 m; the two corners are kept clear."""
    rng = np.random.default_rng(seed)
    grid = GridSpec(0.0, 0.0, resolution_m, n, n)
    lethal = np.zeros((n, n), dtype=np.uint8)
    count = int(density * n * n / 10.0)
    for _ in range(count):
        r, c = rng.integers(0, n, size=2)
        radius = int(rng.uniform(0.15, 0.4) / resolution_m)
        cv2.circle(lethal, (int(c), int(r)), radius, 1, -1)
    clear = int(1.0 / resolution_m)
    lethal[:clear, :clear] = 0
    lethal[-clear:, -clear:] = 0
    prm = CostmapParams(inscribed_radius_m=0.3, inflation_radius_m=0.8)
    return Costmap.from_lethal(grid, lethal > 0, prm)


def salt_grid(n: int, seed: int, fraction: float = 0.2) -> Costmap:
    rng = np.random.default_rng(seed)
    blocked = rng.random((n, n)) < fraction
    blocked[0, 0] = blocked[-1, -1] = False
    cost = np.where(blocked, 254, 0).astype(np.uint8)
    return Costmap(GridSpec(0.0, 0.0, 0.05, n, n), cost, CostmapParams())


def _stats(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(float(np.percentile(times, 99)), 3)}


def _time(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, float], Any]:
    times: list[float] = []
    out: Any = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return _stats(times), out


def _pyastar() -> tuple[Any, str | None]:
    try:
        import pyastar2d
    except ImportError as exc:  # the bench extra is missing
        return None, f"pyastar2d not installed ({exc}): pip install 'regolith[bench]'"
    return pyastar2d, None


def _grid_suite(cm: Costmap, repeats: int, python_repeats: int, weight: float) -> dict[str, Any]:
    n_rows, n_cols = cm.grid.shape
    planner = Planner(PlannerParams(cost_weight=weight))
    s_xy = cm.grid.cell_to_world(0, 0)
    g_xy = cm.grid.cell_to_world(n_rows - 1, n_cols - 1)
    s_cell, g_cell = 0, n_rows * n_cols - 1
    out: dict[str, Any] = {"grid": f"{n_rows}x{n_cols}", "blocked_fraction": round(float(cm.blocked.mean()), 4)}
    search, (_, our_cost, expansions) = _time(lambda: planner.search_cells(cm, s_cell, g_cell), repeats)
    full, path = _time(lambda: planner.plan(cm, s_xy, g_xy), repeats)
    out["regolith_search"] = search | {"expansions": expansions, "cost_cells": round(our_cost, 3)}
    out["regolith_plan"] = full | {"vertices": len(path.points_xy_m), "length_m": round(path.length_m, 3)}
    py_stats, py = _time(lambda: python_astar(cm.cost, (0, 0), (n_rows - 1, n_cols - 1), weight), python_repeats)
    out["python"] = py_stats | {"cost_cells": None if py is None else round(py[1], 3)}
    if py is not None:
        out["cost_equal_to_baseline"] = bool(abs(py[1] - our_cost) <= 1e-4 * max(1.0, py[1]))
    out["speedup_vs_python"] = round(py_stats["p50_ms"] / max(full["p50_ms"], 1e-6), 1)
    mod, why = _pyastar()
    if mod is None:
        out["pyastar2d"] = {"skipped": why}
    else:
        lut = multiplier_lut(weight)
        w = np.where(lut[cm.cost] < 0.0, np.inf, lut[cm.cost]).astype(np.float32)
        pa_stats, _ = _time(lambda: mod.astar_path(w, (0, 0), (n_rows - 1, n_cols - 1), allow_diagonal=True), repeats)
        out["pyastar2d"] = pa_stats
        out["ratio_search_vs_pyastar2d"] = round(search["p50_ms"] / max(pa_stats["p50_ms"], 1e-6), 2)
        out["ratio_plan_vs_pyastar2d"] = round(full["p50_ms"] / max(pa_stats["p50_ms"], 1e-6), 2)
    return out


def _replan_suite(cm: Costmap, repeats: int, seed: int) -> dict[str, Any]:
    planner = Planner()
    n_rows, n_cols = cm.grid.shape
    s_xy = cm.grid.cell_to_world(0, 0)
    g_xy = cm.grid.cell_to_world(n_rows - 1, n_cols - 1)
    path = planner.plan(cm, s_xy, g_xy)
    # one new 0.25 m rock on the path, 40 % of the way along
    rng = np.random.default_rng(seed)
    x, y = path.point_at(path.length_m * float(rng.uniform(0.3, 0.5)))
    lethal = cm.cost == 254
    mark = lethal.astype(np.uint8)
    r, c = cm.grid.world_to_cell(x, y)
    cv2.circle(mark, (c, r), int(0.25 / cm.grid.resolution_m), 1, -1)
    new = Costmap.from_lethal(cm.grid, mark > 0, cm.params)
    scratch, _ = _time(lambda: planner.plan(new, s_xy, g_xy), repeats)
    inc, repaired = _time(lambda: planner.replan(new, path), repeats)
    return {
        "from_scratch": scratch,
        "incremental": inc | {"source": str(repaired.source), "valid": planner.is_valid(new, repaired)},
        "speedup": round(scratch["p50_ms"] / max(inc["p50_ms"], 1e-6), 1),
    }


def ucf_field(seed: int, resolution_m: float = 0.05) -> Costmap:
    """A UCF-sized arena (8.1 x 4.57 m, walls lethal, 2-cell border) with three rocks (0.30-0.40 m) and three
    craters (0.40-0.50 m) drawn in the obstacle zone (x 2.5-5.5 m) at least 0.3 m apart (the simulator's rule),
    inflated with the rover's costmap parameters."""
    length, width = 8.10, 4.57
    rows, cols = math.ceil(width / resolution_m) + 4, math.ceil(length / resolution_m) + 4
    grid = GridSpec(-2 * resolution_m, -2 * resolution_m, resolution_m, rows, cols)
    x = grid.origin_x_m + (np.arange(cols) + 0.5) * resolution_m
    y = grid.origin_y_m + (np.arange(rows) + 0.5) * resolution_m
    xx, yy = np.meshgrid(x, y)
    lethal = ~((xx > 0.0) & (xx < length) & (yy > 0.0) & (yy < width))
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    placed: list[tuple[float, float, float]] = []
    for lo, hi in [(0.30, 0.40)] * 3 + [(0.40, 0.50)] * 3:
        for _ in range(5000):
            r = float(rng.uniform(lo, hi)) / 2
            cx, cy = float(rng.uniform(2.8 + r, 5.2 - r)), float(rng.uniform(0.3 + r, width - 0.3 - r))
            if all(math.hypot(cx - px, cy - py) >= r + pr + 0.3 for px, py, pr in placed):
                placed.append((cx, cy, r))
                break
    for cx, cy, r in placed:
        lethal |= np.hypot(xx - cx, yy - cy) <= r
    return Costmap.from_lethal(grid, lethal, rover_costmap_params())


def _oriented_suite(seeds: int, repeats: int) -> dict[str, Any]:
    """Oriented lattice plans and the circular planner on ``seeds`` UCF-like fields (module docstring)."""
    lattice.warm_up()
    legs = (((1.25, 1.0, 0.0), (5.9, 2.285), 0.0), ((5.9, 2.285, math.pi), (1.25, 3.3), -math.pi / 2))
    layer_ms: list[float] = []
    plan_ms: list[float] = []
    fail_ms: list[float] = []
    circ_ms: list[float] = []
    solved = circ_solved = total = 0
    expansions: list[int] = []
    grid_txt = ""
    for seed in range(seeds):
        cm = ucf_field(seed)
        grid_txt = f"{cm.grid.rows}x{cm.grid.cols}"
        op = lattice.LatticePlanner()
        circ = Planner()
        for _ in range(repeats):
            op._coll_for = None  # time the collision layers of a new costmap
            t0 = time.perf_counter()
            op.collision_layers(cm)
            layer_ms.append((time.perf_counter() - t0) * 1e3)
        for start, goal, yaw in legs:
            total += 1
            ok = circ_ok = False
            for _ in range(repeats):
                t0 = time.perf_counter()
                try:
                    plan = op.plan(cm, start, goal, yaw)
                    ok = True
                    expansions.append(plan.expansions)
                except NoPathError:
                    ok = False
                (plan_ms if ok else fail_ms).append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                try:
                    circ.plan(cm, start[:2], goal)
                    circ_ok = True
                except NoPathError:
                    circ_ok = False
                circ_ms.append((time.perf_counter() - t0) * 1e3)
            solved += ok
            circ_solved += circ_ok
    lat = _stats(plan_ms) if plan_ms else {"p50_ms": math.nan, "p99_ms": math.nan}
    circ_stats = _stats(circ_ms)
    return {
        "grid": grid_txt,
        "headings": lattice.LatticeParams().headings,
        "fields": seeds,
        "collision_layers": _stats(layer_ms),
        "oriented_plan": lat | {"expansions_p50": int(statistics.median(expansions)) if expansions else 0},
        "oriented_no_path": _stats(fail_ms) if fail_ms else {},
        "circular_plan": circ_stats,
        "ratio_oriented_vs_circular": round(lat["p50_ms"] / max(circ_stats["p50_ms"], 1e-6), 1),
        "solved_oriented": f"{solved}/{total}",
        "solved_circular": f"{circ_solved}/{total}",
    }


def run_navigation_bench(
    seed: int = 0,
    repeats: int = 9,
    python_repeats: int = 3,
    local_n: int = 200,
    global_n: int = 1000,
    oriented_fields: int = 10,
) -> dict[str, Any]:
    """The navigation suite (about 10 s: the pure-Python baseline dominates). Sizes are parameters so the
    tests can run it small; the report uses the defaults."""
    t0 = time.perf_counter()
    warm_up()
    warm_ms = round((time.perf_counter() - t0) * 1e3, 1)
    local = rock_field(local_n, seed)
    glob = rock_field(global_n, seed + 1)
    salt = salt_grid(global_n, seed + 2)
    weight = PlannerParams().cost_weight
    return {
        "note": "provisional: shared 2-core machine; compare the ratios, measured side by side in this run",
        "warm_up_ms": warm_ms,
        "local": _grid_suite(local, repeats, python_repeats, weight),
        "global": _grid_suite(glob, repeats, python_repeats, weight),
        "salt": _grid_suite(salt, repeats, python_repeats, weight),
        "replan": _replan_suite(glob, repeats, seed),
        "oriented": _oriented_suite(oriented_fields, max(1, repeats // 3)),
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run_navigation_bench(), indent=2))
