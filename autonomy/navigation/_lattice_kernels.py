"""Numba kernels of the oriented-footprint lattice planner (typed wrappers: lattice.py).

State lattice: (k, r, c) with k a heading bin (K bins), (r, c) a cell; flat index s = k * n + r * cols + c,
n = rows * cols. ``coll`` (K * n uint8): 1 where the rover's outline, at any heading of bin k, overlaps a
lethal cell with its base_link at the centre of (r, c).

Moves (cell units)::

    forward   (k, r, c) -> (k, r + dr_k[m], c + dc_k[m]) for the primitive of bin k (``prim_n[k]`` steps,
              the intermediate cells in ``prim_dr/prim_dc[k, :]``, all checked), cost len_k * mult(dest)
    reverse   the same primitive backwards (the rear leads), cost rev_mult * len_k * mult(dest)
              (rev_mult <= 0: no reverse moves)
    turn      (k, r, c) -> (k +- 1 mod K, r, c), cost turn_cost (both bins collision-free at the cell: the
              bins' kernels are the outline swept over each bin's range, so their union covers the turn)

``mult`` (n float64): the traversal multiplier of each cell (>= 1). A colliding state is usable only within
``escape_cells`` of the start cell (a rover that the map shows touching an obstacle must be able to leave),
at ``escape_mult`` times the cost, and only when the start state itself collides or ``force_escape`` is set
(a start that is clear but boxed in at its heading: the caller retries with it). Goal: the goal cell at a
bin from which turning in place to ``goal_k`` (-1: any bin) is collision-free. Heuristic: Euclidean
distance to the goal cell (admissible: every move costs at least its length, mult >= 1). The open list is
the 4-ary indexed heap of ``_kernels``.
"""

from __future__ import annotations

import math

import numba

from autonomy.navigation._kernels import _pop_root, _sift_up


@numba.njit(cache=True, nogil=True)
def turn_free_kernel(coll, n, nk, cell, k0, k1):  # type: ignore[no-untyped-def]
    """True when turning in place at flat cell ``cell`` from bin k0 to bin k1 (the shorter way) only
    passes collision-free bins."""
    d = (k1 - k0) % nk
    if d == 0:
        return coll[k0 * n + cell] == 0
    step = 1 if d <= nk - d else -1
    cnt = d if step == 1 else nk - d
    k = k0
    for _ in range(cnt + 1):
        if coll[k * n + cell] != 0:
            return False
        k = (k + step) % nk
    return True


@numba.njit(cache=True, nogil=True)
def lattice_astar_kernel(  # type: ignore[no-untyped-def]
    coll,
    mult,
    rows,
    cols,
    nk,
    prim_n,
    prim_dr,
    prim_dc,
    prim_len,
    turn_cost,
    rev_mult,
    start,
    goal_cell,
    goal_k,
    escape_cells,
    escape_mult,
    force_escape,
    hweight,
    g,
    parent,
    stamp,
    pos,
    heap,
    sid,
):
    """A* over the (bin, row, col) lattice (module docstring). Returns (expansions, goal state), or
    (-(expansions + 1), -1) when no goal state can be reached."""
    n = rows * cols
    seen = 2 * sid
    done = seen + 1
    gr = goal_cell // cols
    gc = goal_cell - gr * cols
    sc_ = start % n
    sr = sc_ // cols
    scc = sc_ - sr * cols
    # colliding states near the start are usable only when the start itself collides (escape) or on request
    esc2 = escape_cells * escape_cells if (coll[start] != 0 or force_escape) else -1.0
    stamp[start] = seen
    g[start] = 0.0
    parent[start] = -1
    heap[0] = 0.0
    heap[1] = float(start)
    pos[start] = 0
    size = 1
    expansions = 0
    while size > 0:
        u, size = _pop_root(heap, pos, size)
        stamp[u] = done
        expansions += 1
        ku = u // n
        cu = u - ku * n
        ur = cu // cols
        uc = cu - ur * cols
        if cu == goal_cell and coll[u] == 0 and (goal_k < 0 or turn_free_kernel(coll, n, nk, cu, ku, goal_k)):
            return expansions, u
        gu = g[u]
        # successors: two turns, one forward primitive
        nmoves = 4 if rev_mult > 0.0 else 3
        for m in range(nmoves):
            if m < 2:
                kv = (ku + (1 if m == 0 else nk - 1)) % nk
                v = kv * n + cu
                vr = ur
                vc = uc
                step_cost = turn_cost
            else:
                sgn = 1 if m == 2 else -1
                np_ = prim_n[ku]
                ok = True
                vr = ur
                vc = uc
                for j in range(np_):
                    vr = ur + sgn * prim_dr[ku, j]
                    vc = uc + sgn * prim_dc[ku, j]
                    if vr < 0 or vr >= rows or vc < 0 or vc >= cols:
                        ok = False
                        break
                    if coll[ku * n + vr * cols + vc] != 0:
                        dr0 = vr - sr
                        dc0 = vc - scc
                        if dr0 * dr0 + dc0 * dc0 > esc2:
                            ok = False
                            break
                if not ok:
                    continue
                v = ku * n + vr * cols + vc
                step_cost = prim_len[ku] * mult[vr * cols + vc]
                if m == 3:
                    step_cost *= rev_mult
            if coll[v] != 0:
                dr0 = vr - sr
                dc0 = vc - scc
                if dr0 * dr0 + dc0 * dc0 > esc2:
                    continue
                step_cost *= escape_mult
            sv = stamp[v]
            if sv == done:
                continue
            ng = gu + step_cost
            if sv != seen:
                stamp[v] = seen
                g[v] = ng
                parent[v] = u
                dr = float(vr - gr)
                dc = float(vc - gc)
                h = math.sqrt(dr * dr + dc * dc)
                _sift_up(heap, pos, size, ng + hweight * h, v)
                size += 1
            elif ng < g[v]:
                i = pos[v]
                key = heap[2 * i] - (g[v] - ng)
                g[v] = ng
                parent[v] = u
                _sift_up(heap, pos, i, key, v)
    return -(expansions + 1), -1


@numba.njit(cache=True, nogil=True)
def leg_free_kernel(coll, n, rows, cols, k, x0, y0, x1, y1, skip_cells):  # type: ignore[no-untyped-def]
    """True when the rover's outline at bin k is collision-free at every sample (every half cell) of the
    straight leg (x0, y0) -> (x1, y1) (cell units, centres at +0.5); samples within ``skip_cells`` of the
    leg's start are not checked (a rover standing where the map shows a collision may leave)."""
    dx = x1 - x0
    dy = y1 - y0
    length = math.sqrt(dx * dx + dy * dy)
    ns = int(math.ceil(length * 2.0)) + 1  # noqa: RUF046
    base = k * n
    for i in range(ns + 1):
        t = i / ns if ns > 0 else 1.0
        if t * length < skip_cells:
            continue
        c = int(math.floor(x0 + t * dx))  # noqa: RUF046
        r = int(math.floor(y0 + t * dy))  # noqa: RUF046
        if r < 0 or r >= rows or c < 0 or c >= cols:
            return False
        if coll[base + r * cols + c] != 0:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def leg_cost_kernel(mult, rows, cols, x0, y0, x1, y1):  # type: ignore[no-untyped-def]
    """Integral of ``mult`` along the leg (cell units; sampled every half cell)."""
    dx = x1 - x0
    dy = y1 - y0
    length = math.sqrt(dx * dx + dy * dy)
    ns = int(math.ceil(length * 2.0))  # noqa: RUF046
    if ns == 0:
        return 0.0
    total = 0.0
    for i in range(ns):
        t = (i + 0.5) / ns
        c = min(max(int(math.floor(x0 + t * dx)), 0), cols - 1)  # noqa: RUF046
        r = min(max(int(math.floor(y0 + t * dy)), 0), rows - 1)  # noqa: RUF046
        total += mult[r * cols + c]
    return total * length / ns
