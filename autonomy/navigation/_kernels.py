"""Numba kernels of the planner (8-connected A*, segment traversal, shortcutting). Typed wrappers: planner.py.

Grid: a flat uint8 cost array of ``rows x cols`` (row-major, index = row * cols + col) and a 256-entry
multiplier table ``lut`` (cost -> traversal multiplier >= 1; negative = blocked). Moving from a cell to its
neighbour v costs ``step * lut[cost[v]]`` with step = 1 (edge) or sqrt(2) (diagonal), in cell units; a
diagonal move is allowed only when both orthogonal cells it passes are free (no corner cutting).
"""

from __future__ import annotations

import math

import numba
import numpy as np

_DR = np.array([-1, 1, 0, 0, -1, -1, 1, 1], dtype=np.int64)
_DC = np.array([0, 0, -1, 1, -1, 1, -1, 1], dtype=np.int64)
_SQRT2 = math.sqrt(2.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_up(heap, pos, i, key, v):  # type: ignore[no-untyped-def]
    while i > 0:
        p = (i - 1) >> 2
        if heap[2 * p] > key:
            heap[2 * i] = heap[2 * p]
            heap[2 * i + 1] = heap[2 * p + 1]
            pos[int(heap[2 * i + 1])] = i
            i = p
        else:
            break
    heap[2 * i] = key
    heap[2 * i + 1] = float(v)
    pos[v] = i


@numba.njit(cache=True, nogil=True, inline="always")
def _pop_root(heap, pos, size):  # type: ignore[no-untyped-def]
    """Pop the 4-ary heap's root (smallest key): returns (its vertex, the new size). The last entry moves to
    the root and sifts down; ``pos`` follows every move."""
    u = int(heap[1])
    size -= 1
    if size > 0:
        lk = heap[2 * size]
        lv = heap[2 * size + 1]
        i = 0
        while True:
            c0 = 4 * i + 1
            if c0 >= size:
                break
            best = c0
            bk = heap[2 * c0]
            cend = min(c0 + 4, size)
            for c in range(c0 + 1, cend):
                kc = heap[2 * c]
                if kc < bk:
                    bk = kc
                    best = c
            if bk < lk:
                heap[2 * i] = bk
                heap[2 * i + 1] = heap[2 * best + 1]
                pos[int(heap[2 * i + 1])] = i
                i = best
            else:
                break
        heap[2 * i] = lk
        heap[2 * i + 1] = lv
        pos[int(lv)] = i
    return u, size


@numba.njit(cache=True, nogil=True)
def astar_kernel(cost, rows, cols, lut, start, goal, g, parent, stamp, pos, heap, sid, tie_eps):  # type: ignore[no-untyped-def]
    """A* from ``start`` to ``goal`` (flat indices) on a PADDED grid: ``cost`` is (rows x cols) with a
    one-cell blocked border (``rows``/``cols`` include it), so neighbours need no bounds checks.

    Work arrays (reused between calls, size rows*cols; ``heap`` 2 rows*cols): stamp == 2 sid marks a reached
    cell (g, parent, pos valid), 2 sid + 1 an expanded one; older stamps mean untouched. Open list: an indexed
    4-ary min-heap with decrease-key (each open cell once, so the heap is only the frontier and stays in
    cache), entries interleaved as (key, node) pairs in one float64 array; ``pos`` maps a cell to its slot.
    Returns the number of expansions, or -(expansions + 1) when the goal is unreachable."""
    seen = 2 * sid
    done = seen + 1
    gr = goal // cols
    gc = goal - gr * cols
    stamp[start] = seen
    g[start] = 0.0
    parent[start] = -1
    heap[0] = 0.0
    heap[1] = float(start)
    pos[start] = 0
    size = 1
    expansions = 0
    w = 1.0 + tie_eps
    while size > 0:
        # the root pop of ``_pop_root``, written out here: called (inline="always" or not) it made this kernel
        # 23% slower (rover bench, 1000x1000 rock field: 16.5 ms against 13.2 ms; numba does not give the called
        # version the same registers), and this is the planner's hot loop
        u = int(heap[1])
        size -= 1
        if size > 0:
            lk = heap[2 * size]
            lv = heap[2 * size + 1]
            i = 0
            while True:
                c0 = 4 * i + 1
                if c0 >= size:
                    break
                best = c0
                bk = heap[2 * c0]
                cend = min(c0 + 4, size)
                for c in range(c0 + 1, cend):
                    kc = heap[2 * c]
                    if kc < bk:
                        bk = kc
                        best = c
                if bk < lk:
                    heap[2 * i] = bk
                    heap[2 * i + 1] = heap[2 * best + 1]
                    pos[int(heap[2 * i + 1])] = i
                    i = best
                else:
                    break
            heap[2 * i] = lk
            heap[2 * i + 1] = lv
            pos[int(lv)] = i
        stamp[u] = done
        expansions += 1
        if u == goal:
            return expansions
        ur = u // cols
        uc = u - ur * cols
        gu = g[u]
        for k in range(8):
            dr_k = _DR[k]
            dc_k = _DC[k]
            v = u + dr_k * cols + dc_k
            m = lut[cost[v]]
            if m < 0.0:
                continue
            sv = stamp[v]
            if sv == done:
                continue
            if k >= 4:
                if lut[cost[u + dc_k]] < 0.0 or lut[cost[u + dr_k * cols]] < 0.0:
                    continue
                ng = gu + _SQRT2 * m
            else:
                ng = gu + m
            if sv != seen:
                stamp[v] = seen
                g[v] = ng
                parent[v] = u
                dr = abs(ur + dr_k - gr)
                dc = abs(uc + dc_k - gc)
                h = float(dr + dc) + (_SQRT2 - 2.0) * float(min(dr, dc))
                _sift_up(heap, pos, size, ng + w * h, v)
                size += 1
            elif ng < g[v]:
                i = pos[v]
                key = heap[2 * i] - (g[v] - ng)
                g[v] = ng
                parent[v] = u
                _sift_up(heap, pos, i, key, v)
    return -(expansions + 1)


@numba.njit(cache=True, nogil=True)
def reconstruct_kernel(parent, start, goal):  # type: ignore[no-untyped-def]
    """Flat indices from start to goal, following ``parent`` back from the goal."""
    n = 1
    v = goal
    while v != start:
        v = parent[v]
        n += 1
    out = np.empty(n, np.int64)
    v = goal
    for i in range(n - 1, -1, -1):
        out[i] = v
        if i > 0:
            v = parent[v]
    return out


@numba.njit(cache=True, nogil=True)
def segment_kernel(cost, rows, cols, lut, x0, y0, x1, y1, out_idx, out_s):  # type: ignore[no-untyped-def]
    """Walk the segment (x0, y0) -> (x1, y1) (cell units: x = col, y = row, cell centres at +0.5) through
    every cell it crosses (Amanatides-Woo; through an exact corner both side cells are checked). Returns
    (integral of lut over the segment in cell units or inf when a crossed cell is blocked or outside, number
    of cells written). When ``out_idx`` has room, the crossed cells and the arc length at which the segment
    enters each (cell units) are written to out_idx / out_s."""
    cx = int(math.floor(x0))  # noqa: RUF046
    cy = int(math.floor(y0))  # noqa: RUF046
    ex = int(math.floor(x1))  # noqa: RUF046
    ey = int(math.floor(y1))  # noqa: RUF046
    dx = x1 - x0
    dy = y1 - y0
    length = math.sqrt(dx * dx + dy * dy)
    inf = np.inf
    sx = 1 if dx > 0 else -1
    sy = 1 if dy > 0 else -1
    if dx != 0.0:
        tdx = 1.0 / abs(dx)
        tmx = ((cx + 1 - x0) / dx) if dx > 0 else ((x0 - cx) / -dx)
    else:
        tdx = inf
        tmx = inf
    if dy != 0.0:
        tdy = 1.0 / abs(dy)
        tmy = ((cy + 1 - y0) / dy) if dy > 0 else ((y0 - cy) / -dy)
    else:
        tdy = inf
        tmy = inf
    t = 0.0
    total = 0.0
    n = 0
    cap = out_idx.shape[0]
    max_steps = abs(ex - cx) + abs(ey - cy) + 2
    for _ in range(max_steps + 1):
        if cx < 0 or cx >= cols or cy < 0 or cy >= rows:
            return inf, n
        m = lut[cost[cy * cols + cx]]
        if m < 0.0:
            return inf, n
        if n < cap:
            out_idx[n] = cy * cols + cx
            out_s[n] = t * length
        n += 1
        tn = min(tmx, tmy, 1.0)
        total += (tn - t) * length * m
        t = tn
        if (cx == ex and cy == ey) or t >= 1.0:
            break
        if tmx < tmy - 1e-12:
            cx += sx
            tmx += tdx
        elif tmy < tmx - 1e-12:
            cy += sy
            tmy += tdy
        else:
            ax = cx + sx
            ay = cy + sy
            if ax < 0 or ax >= cols or ay < 0 or ay >= rows:
                return inf, n
            if lut[cost[cy * cols + ax]] < 0.0 or lut[cost[ay * cols + cx]] < 0.0:
                return inf, n
            cx = ax
            cy = ay
            tmx += tdx
            tmy += tdy
    return total, n


@numba.njit(cache=True, nogil=True)
def shortcut_kernel(cost, rows, cols, lut, path, prefix, tol):  # type: ignore[no-untyped-def]
    """Greedy line-of-sight shortcutting of a cell path (flat indices) with a galloping search: from vertex
    i, the farthest j whose straight segment is free and costs at most (1 + tol) times the path's own cost
    between i and j (``prefix``: cumulative path cost). Returns the kept vertex positions in ``path``."""
    n = path.shape[0]
    keep = np.empty(n, np.int64)
    nk = 0
    keep[nk] = 0
    nk += 1
    dummy_i = np.empty(0, np.int64)
    dummy_s = np.empty(0, np.float64)
    i = 0
    while i < n - 1:
        ri = path[i] // cols
        ci = path[i] - ri * cols
        good = i + 1
        step = 1
        bad = n
        # gallop
        while True:
            j = good + step
            if j >= n:
                j = n - 1
                if j == good:
                    break
            rj = path[j] // cols
            cj = path[j] - rj * cols
            c, _ = segment_kernel(cost, rows, cols, lut, ci + 0.5, ri + 0.5, cj + 0.5, rj + 0.5, dummy_i, dummy_s)
            if c <= (prefix[j] - prefix[i]) * (1.0 + tol) + 1e-9:
                good = j
                if j == n - 1:
                    break
                step *= 2
            else:
                bad = j
                break
        # binary search between good (ok) and bad (fails)
        while bad - good > 1:
            mid = (good + bad) // 2
            rj = path[mid] // cols
            cj = path[mid] - rj * cols
            c, _ = segment_kernel(cost, rows, cols, lut, ci + 0.5, ri + 0.5, cj + 0.5, rj + 0.5, dummy_i, dummy_s)
            if c <= (prefix[mid] - prefix[i]) * (1.0 + tol) + 1e-9:
                good = mid
            else:
                bad = mid
        keep[nk] = good
        nk += 1
        i = good
    return keep[:nk]


@numba.njit(cache=True, nogil=True)
def path_prefix_kernel(cost, cols, lut, path):  # type: ignore[no-untyped-def]
    """Cumulative A* edge cost along a cell path (cell units)."""
    n = path.shape[0]
    out = np.zeros(n, np.float64)
    for i in range(1, n):
        a = path[i - 1]
        b = path[i]
        ra = a // cols
        rb = b // cols
        diag = ra != rb and (a - ra * cols) != (b - rb * cols)
        step = _SQRT2 if diag else 1.0
        out[i] = out[i - 1] + step * lut[cost[b]]
    return out
