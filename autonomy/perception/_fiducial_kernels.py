"""Numba kernels of the fiducial edge refinement (typed wrapper: ``fiducials.refine_corners_by_edges``).

The refinement's arithmetic is a few thousand numbers per frame (tags x 4 sides x 24 points x 25 samples):
as numpy it is about sixty small array operations whose fixed cost per call, not the arithmetic, made it
0.15-0.2 ms per call. Here it is two loops over those numbers. The maths is exactly the numpy version's
(see ``refine_corners_by_edges``); ``tests/test_fiducials.py`` checks they agree.

Arrays: ``quads`` (n, 4, 2) corners; ``t`` (M,) positions along a side (fraction of its length); ``s``
(S,) sample offsets across it (units of the half-width w); ``prof`` (n, 4, M, S) grey levels sampled at
``sample_points``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_MODULES = 8.0


@numba.njit(cache=True, nogil=True)
def sample_points(quads, t, s, search_modules, max_half_width):  # type: ignore[no-untyped-def]
    """Sample grid of every side: returns (map_x, map_y) float32 (n * 4 * M, S), base points (n, 4, M, 2),
    outward unit normals (n, 4, 2), half-widths w (n,) px and module sizes (n,) px. A side of length < 1e-6
    gives a zero normal (the caller rejects such quads before)."""
    n = quads.shape[0]
    m = t.shape[0]
    k = s.shape[0]
    base = np.empty((n, 4, m, 2))
    nrm = np.zeros((n, 4, 2))
    half_width = np.empty(n)
    module = np.empty(n)
    map_x = np.empty((n * 4 * m, k), dtype=np.float32)
    map_y = np.empty((n * 4 * m, k), dtype=np.float32)
    for i in range(n):
        cx = 0.25 * (quads[i, 0, 0] + quads[i, 1, 0] + quads[i, 2, 0] + quads[i, 3, 0])
        cy = 0.25 * (quads[i, 0, 1] + quads[i, 1, 1] + quads[i, 2, 1] + quads[i, 3, 1])
        total = 0.0
        for j in range(4):
            sx = quads[i, (j + 1) % 4, 0] - quads[i, j, 0]
            sy = quads[i, (j + 1) % 4, 1] - quads[i, j, 1]
            total += math.sqrt(sx * sx + sy * sy)
        module[i] = total / 4.0 / _MODULES
        w = search_modules * module[i]
        half_width[i] = min(max(w, 1.0), max_half_width)
        for j in range(4):
            px = quads[i, j, 0]
            py = quads[i, j, 1]
            sx = quads[i, (j + 1) % 4, 0] - px
            sy = quads[i, (j + 1) % 4, 1] - py
            length = math.sqrt(sx * sx + sy * sy)
            if length < 1e-6:
                continue
            dx = sx / length
            dy = sy / length
            nx = dy
            ny = -dx
            side = (px + 0.5 * sx - cx) * nx + (py + 0.5 * sy - cy) * ny
            if side < 0.0:
                nx = -nx
                ny = -ny
            nrm[i, j, 0] = nx
            nrm[i, j, 1] = ny
            for a in range(m):
                bx = px + t[a] * length * dx
                by = py + t[a] * length * dy
                base[i, j, a, 0] = bx
                base[i, j, a, 1] = by
                row = (i * 4 + j) * m + a
                for b in range(k):
                    off = s[b] * half_width[i]
                    map_x[row, b] = bx + off * nx
                    map_y[row, b] = by + off * ny
    return map_x, map_y, base, nrm, half_width, module


@numba.njit(cache=True, nogil=True)
def edge_points(prof, base, nrm, half_width, ds):  # type: ignore[no-untyped-def]
    """Edge point of every profile (n, 4, M, 2) and its weight (n, 4, M): the step position with the same
    area under the normalised profile (inner = mean of the first 3 samples, outer = of the last 3), weight
    = contrast (outer - inner, >= 0), zeroed below 0.3 x the side's median contrast."""
    n, _, m, k = prof.shape
    pts = np.empty((n, 4, m, 2))
    weight = np.empty((n, 4, m))
    for i in range(n):
        for j in range(4):
            for a in range(m):
                inner = (prof[i, j, a, 0] + prof[i, j, a, 1] + prof[i, j, a, 2]) / 3.0
                outer = (prof[i, j, a, k - 3] + prof[i, j, a, k - 2] + prof[i, j, a, k - 1]) / 3.0
                contrast = outer - inner
                safe = contrast if abs(contrast) >= 1e-6 else 1e-6
                total = 0.0
                for b in range(k):
                    v = (prof[i, j, a, b] - inner) / safe
                    v = min(max(v, -0.5), 1.5)
                    if b == 0 or b == k - 1:
                        total += 0.5 * v
                    else:
                        total += v
                s_edge = (1.0 - ds * total) * half_width[i]
                pts[i, j, a, 0] = base[i, j, a, 0] + s_edge * nrm[i, j, 0]
                pts[i, j, a, 1] = base[i, j, a, 1] + s_edge * nrm[i, j, 1]
                weight[i, j, a] = max(contrast, 0.0)
            med = np.median(weight[i, j])
            for a in range(m):
                if not weight[i, j, a] > 0.3 * med:
                    weight[i, j, a] = 0.0
    return pts, weight


@numba.njit(cache=True, nogil=True)
def fit_corners(pts, weight):  # type: ignore[no-untyped-def]
    """Weighted total-least-squares line through each side's edge points, adjacent lines intersected:
    corners (n, 4, 2) (corner i on sides i-1 and i) and ok (n,) (every side has >= 4 weighted points and a
    positive weight sum, no two adjacent lines near parallel)."""
    n, _, m, _ = pts.shape
    cxy = np.empty((n, 4, 2))
    dxy = np.empty((n, 4, 2))
    corners = np.empty((n, 4, 2))
    ok = np.ones(n, dtype=np.bool_)
    for i in range(n):
        for j in range(4):
            wsum = 0.0
            count = 0
            mx = 0.0
            my = 0.0
            for a in range(m):
                w = weight[i, j, a]
                wsum += w
                if w > 0.0:
                    count += 1
                mx += w * pts[i, j, a, 0]
                my += w * pts[i, j, a, 1]
            if not (wsum > 1e-6 and count >= 4):
                ok[i] = False
                wsum = 1.0 if not wsum > 1e-6 else wsum
            mx /= wsum
            my /= wsum
            sxx = 0.0
            sxy = 0.0
            syy = 0.0
            for a in range(m):
                w = weight[i, j, a]
                rx = pts[i, j, a, 0] - mx
                ry = pts[i, j, a, 1] - my
                sxx += w * rx * rx
                sxy += w * rx * ry
                syy += w * ry * ry
            angle = 0.5 * math.atan2(2.0 * sxy, sxx - syy)
            cxy[i, j, 0] = mx
            cxy[i, j, 1] = my
            dxy[i, j, 0] = math.cos(angle)
            dxy[i, j, 1] = math.sin(angle)
        for j in range(4):
            p = (j + 3) % 4
            det = dxy[i, p, 0] * (-dxy[i, j, 1]) + dxy[i, j, 0] * dxy[i, p, 1]
            if not abs(det) > 1e-3:
                ok[i] = False
                det = 1.0
            rx = cxy[i, j, 0] - cxy[i, p, 0]
            ry = cxy[i, j, 1] - cxy[i, p, 1]
            a_len = (rx * (-dxy[i, j, 1]) + dxy[i, j, 0] * ry) / det
            corners[i, j, 0] = cxy[i, p, 0] + a_len * dxy[i, p, 0]
            corners[i, j, 1] = cxy[i, p, 1] + a_len * dxy[i, p, 1]
    return corners, ok
