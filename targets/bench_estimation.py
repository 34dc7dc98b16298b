"""``rover bench estimation``: time per landmark update, the compressed EKF beside the dense EKF-SLAM.

For each map size n (50, 200, 1000 landmarks on a grid around the rover), both filters map the same
landmarks from the same range-bearing observations; then the rover drives in small steps and observes
a cluster of 8 nearby landmarks, round-robin, and every ``update_range_bearing`` call is timed (p50 /
p99 ms; the predicts between observations are timed separately). ``LandmarkEkf`` also reports its
*flush* (the O(n^2) catch-up when an observation needs a landmark outside its active set: once per
change of area), timed by observing far landmarks.

Wall time on a shared machine: the figures are provisional; the ratio dense / ours is measured side by
side in the same run and is the figure to compare.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np

from autonomy.estimation.landmark_ekf import (
    DenseEkfSlam,
    LandmarkEkf,
    LandmarkEkfParams,
    LandmarkFilter,
    RangeBearingObservation,
)
from autonomy.msgs import Pose2D

SIZES = (50, 200, 1000)


def _grid(n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    side = math.ceil(math.sqrt(n))
    k = np.arange(n)
    return np.stack([(k % side - side / 2 + 0.37) * 1.5, (k // side - side / 2 + 0.41) * 1.5], axis=1).astype(
        np.float64
    )


def _observe(f: LandmarkFilter, stamp: float, lm_id: int, xy: np.ndarray[Any, np.dtype[np.float64]]) -> None:
    pose = f.mean
    dx, dy = float(xy[0] - pose[0]), float(xy[1] - pose[1])
    f.update_range_bearing(RangeBearingObservation(stamp, lm_id, math.hypot(dx, dy), math.atan2(dy, dx) - pose[2]))


def _stats(times_s: list[float]) -> dict[str, float]:
    ms = [t * 1e3 for t in times_s]
    return {"p50_ms": round(statistics.median(ms), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def bench_size(n: int, updates: int = 400, seed: int = 0) -> dict[str, Any]:
    """Both filters on one map size (module doc)."""
    params = LandmarkEkfParams(gate_chi2=1e9)
    pts = _grid(n)
    start = Pose2D(0.0, 0.0, 0.0)
    p0 = np.diag([1e-4, 1e-4, 1e-5])
    out: dict[str, Any] = {"landmarks": n}
    near = np.argsort(np.hypot(pts[:, 0], pts[:, 1]))[:8]
    far = np.argsort(np.hypot(pts[:, 0], pts[:, 1]))[-8:]
    for name, cls in (("compressed_ekf", LandmarkEkf), ("dense_ekf_slam", DenseEkfSlam)):
        f: LandmarkFilter = cls(start, p0, (), params)
        t0 = time.perf_counter()
        f.predict(0.0, 0.0, 0.0)
        order = [i for i in range(n) if i not in set(near.tolist())] + near.tolist()  # the cluster last
        for i in order:
            _observe(f, 0.0, int(i), pts[i])
        build_s = time.perf_counter() - t0
        upd: list[float] = []
        pred: list[float] = []
        stamp = 0.0
        for k in range(updates):
            stamp += 0.05
            t1 = time.perf_counter()
            f.predict(stamp, 0.005, 0.001)
            pred.append(time.perf_counter() - t1)
            i = int(near[k % len(near)])
            t1 = time.perf_counter()
            _observe(f, stamp, i, pts[i])
            upd.append(time.perf_counter() - t1)
        entry: dict[str, Any] = {"update": _stats(upd), "predict": _stats(pred), "map_build_s": round(build_s, 3)}
        if isinstance(f, LandmarkEkf):
            flush: list[float] = []
            for i in far:
                stamp += 0.05
                f.predict(stamp, 0.0, 0.0)
                t1 = time.perf_counter()
                _observe(f, stamp, int(i), pts[i])
                flush.append(time.perf_counter() - t1)
                for j in near:  # back to the first area: the next far one flushes again
                    _observe(f, stamp, int(j), pts[j])
            entry["flush_update"] = _stats(flush)
        out[name] = entry
    out["dense_over_ours_update_p50"] = round(
        out["dense_ekf_slam"]["update"]["p50_ms"] / out["compressed_ekf"]["update"]["p50_ms"], 1
    )
    return out


def run_estimation_bench(sizes: tuple[int, ...] = SIZES, updates: int = 400) -> dict[str, Any]:
    """Time per landmark update at each map size, ours beside the dense baseline (JSON-able)."""
    results = [bench_size(n, updates) for n in sizes]
    at_200 = next((r for r in results if r["landmarks"] == 200), None)
    return {
        "suite": "estimation",
        "note": "provisional: shared 2-core machine; compare the side-by-side ratios",
        "target_update_ms_at_200": 0.1,
        "update_ms_at_200": None if at_200 is None else at_200["compressed_ekf"]["update"]["p50_ms"],
        "sizes": results,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run_estimation_bench(), indent=2))
