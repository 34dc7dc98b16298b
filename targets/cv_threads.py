"""OpenCV's worker-thread count for a block of code, restored afterwards.

The benches time per core (``cv2.setNumThreads(1)``), but the setting is process-wide and OpenCV's results are not
independent of it: the same UCF crossing (seed 6) ends 6.4 cm from its dig pose with OpenCV's default threads
here and 4.0 cm with one thread (measured 2026-11-24). A bench that left it at 1 changed every simulation run after
it in the same process (the test suite), so benches set it only for their own duration.

The simulation runners (``run_mission_in_sim``, ``run_construction_in_sim``) run with ``SIM_OPENCV_THREADS`` so that
a seed gives the same run on any machine, whatever its core count (the CI box, a laptop, a Pi).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import cv2

SIM_OPENCV_THREADS = 1
"""OpenCV's thread count inside a simulation run: fixed, so a seed's run does not depend on the machine's cores."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def opencv_threads(n: int) -> Iterator[None]:
    """Run the block with ``cv2.setNumThreads(n)`` and restore the previous count after it."""
    prev = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(prev)


def with_opencv_threads(n: int) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator factory: the decorated function runs with OpenCV on ``n`` threads, the previous count restored."""

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with opencv_threads(n):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


one_opencv_thread = with_opencv_threads(1)
"""Decorator: ``fn`` runs with OpenCV on one thread (per-core bench figures)."""

sim_opencv_threads = with_opencv_threads(SIM_OPENCV_THREADS)
"""Decorator for the simulation runners: a seed's run does not depend on the machine's core count."""
