"""OpenCV's worker-thread count for a block of code, restored afterwards.

The benches time per core (``cv2.setNumThreads(1)``), but the setting is process-wide and OpenCV's results are not
independent of it: the same UCF crossing (seed 6) ends 6.4 cm from its dig pose with OpenCV's default threads
here and 4.0 cm with one thread (measured 2026-11-24). A bench that left it at 1 changed every simulation run after
it in the same process (the test suite), so benches set it only for their own duration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import cv2

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


def one_opencv_thread(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: ``fn`` runs with OpenCV on one thread (per-core figures), the previous count restored after."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with opencv_threads(1):
            return fn(*args, **kwargs)

    return wrapper
