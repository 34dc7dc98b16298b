"""Per-stage profiler (p50/p90/p99 in ms). The timer is injected (``time.perf_counter`` on a board or in a
benchmark; a fake in tests) because ``autonomy`` never reads a clock itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


class StageProfiler:
    """Collects the duration of named stages. ``timer`` returns seconds (monotonic)."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self._timer = timer
        self._samples: dict[str, list[float]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = self._timer()
        try:
            yield
        finally:
            self._samples.setdefault(name, []).append(self._timer() - t0)

    def record(self, name: str, seconds: float) -> None:
        self._samples.setdefault(name, []).append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {count, p50_ms, p90_ms, p99_ms, max_ms, total_s}}`` in the order stages first ran."""
        out: dict[str, dict[str, float]] = {}
        for name, samples in self._samples.items():
            a = np.asarray(samples, dtype=np.float64)
            p50, p90, p99 = np.percentile(a, [50, 90, 99]) * 1e3
            out[name] = {
                "count": float(a.size),
                "p50_ms": round(float(p50), 4),
                "p90_ms": round(float(p90), 4),
                "p99_ms": round(float(p99), 4),
                "max_ms": round(float(a.max()) * 1e3, 4),
                "total_s": round(float(a.sum()), 4),
            }
        return out
