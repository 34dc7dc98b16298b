"""Via-point routes around known hazard discs for the construction executive (pure, small).

A stand-in until the costmap planner (``autonomy.navigation``) is wired in: the executive's ``Router`` hook
takes ``(from pose, to (x, y)) -> via points``. ``disc_router`` plans on a visibility graph: nodes are the
start, the goal and ``ring`` points on a circle of radius ``(r + clearance) / cos(pi / ring)`` around each
hazard (so the polygon through them stays outside the inflated disc); an edge joins two nodes whose segment
keeps at least ``r + clearance`` from every hazard centre; Dijkstra on Euclidean lengths. Nodes outside
``bounds`` (shrunk by ``clearance``) are dropped. A start or goal inside an inflated disc ignores that disc
(the rover must leave it / reach the goal anyway). No route: the clearance shrinks step by step to a floor,
then the straight line (empty via list).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from autonomy.construction.executive import Router
from autonomy.mission.site_zones import Box
from autonomy.msgs import Pose2D

Disc = tuple[float, float, float]  # x_m, y_m, radius_m


def _seg_point_dist(ax: float, ay: float, bx: float, by: float, px: float, py: float) -> float:
    dx, dy = bx - ax, by - ay
    n2 = dx * dx + dy * dy
    t = 0.0 if n2 <= 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / n2))
    return math.hypot(ax + t * dx - px, ay + t * dy - py)


def _ring_points(discs: list[Disc], inner: Box | None, ring: int) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for x, y, r in discs:
        rr = r / math.cos(math.pi / ring) + 1e-3
        for k in range(ring):
            a = 2 * math.pi * k / ring
            p = (x + rr * math.cos(a), y + rr * math.sin(a))
            if inner is not None and not inner.contains(*p):
                continue
            if any(math.hypot(p[0] - ox, p[1] - oy) < orr for ox, oy, orr in discs):
                continue
            pts.append(p)
    return pts


def _shortest(
    s: tuple[float, float], goal: tuple[float, float], discs: list[Disc], ring_pts: list[tuple[float, float]]
) -> list[tuple[float, float]] | None:
    """Via points of the shortest free route (``[]``: the straight line is free), None if there is none."""
    ignore = {i for i, (x, y, r) in enumerate(discs) if math.dist(s, (x, y)) < r or math.dist(goal, (x, y)) < r}
    active = [d for i, d in enumerate(discs) if i not in ignore]

    def free(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return all(_seg_point_dist(a[0], a[1], b[0], b[1], x, y) >= r for x, y, r in active)

    if free(s, goal):
        return []
    nodes = [s, goal, *ring_pts]
    dist = [math.inf] * len(nodes)
    prev = [-1] * len(nodes)
    dist[0] = 0.0
    heap = [(0.0, 0)]
    while heap:
        d, i = heapq.heappop(heap)
        if d > dist[i]:
            continue
        if i == 1:
            break
        for j in range(1, len(nodes)):
            if j == i:
                continue
            nd = d + math.dist(nodes[i], nodes[j])
            if nd < dist[j] and free(nodes[i], nodes[j]):
                dist[j] = nd
                prev[j] = i
                heapq.heappush(heap, (nd, j))
    if not math.isfinite(dist[1]):
        return None
    path: list[tuple[float, float]] = []
    j = prev[1]
    while j > 0:
        path.append(nodes[j])
        j = prev[j]
    return path[::-1]


def disc_router(
    hazards: Sequence[Disc],
    clearance_m: float,
    bounds: Box | None = None,
    ring: int = 12,
    min_clearance_m: float | None = None,
    step_m: float = 0.05,
    wall_margin_m: float | None = None,
) -> Router:
    """A ``Router`` that keeps ``clearance_m`` (the rover's half-width plus a margin) from every hazard disc;
    where no route keeps it, the clearance shrinks by ``step_m`` down to ``min_clearance_m`` (default: the
    same) before it gives up (the straight line). Via points stay ``wall_margin_m`` (default ``clearance_m``)
    inside ``bounds`` whatever the clearance."""
    lo = clearance_m if min_clearance_m is None else min_clearance_m
    if not (math.isfinite(clearance_m) and 0 <= lo <= clearance_m and ring >= 6 and step_m > 0):
        raise ValueError("disc_router: need 0 <= min_clearance_m <= clearance_m, ring >= 6, step_m > 0")
    levels: list[tuple[list[Disc], list[tuple[float, float]]]] = []
    c = clearance_m
    while c >= lo - 1e-9:
        discs = [(float(x), float(y), float(r) + c) for x, y, r in hazards]
        inner = bounds.shrunk(clearance_m if wall_margin_m is None else wall_margin_m) if bounds is not None else None
        levels.append((discs, _ring_points(discs, inner, ring)))
        c -= step_m

    def route(start: Pose2D, goal: tuple[float, float]) -> list[tuple[float, float]]:
        s = (start.x_m, start.y_m)
        for discs, pts in levels:
            found = _shortest(s, goal, discs, pts)
            if found is not None:
                return found
        return []

    return route
