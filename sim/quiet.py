"""Silence C-level writes to stdout (PyBullet prints banners from C on import and connect).

Python's ``contextlib.redirect_stdout`` only swaps ``sys.stdout``; the C library writes to file
descriptor 1 directly, so that descriptor is pointed at /dev/null for the duration.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None)
except OSError:  # pragma: no cover - no C library handle on this platform
    _LIBC = None


def _flush_c_stdio() -> None:
    """C's stdout is block-buffered when it is not a terminal: flush it while it still points at /dev/null."""
    if _LIBC is not None:
        _LIBC.fflush(None)


@contextlib.contextmanager
def stdout_to_devnull() -> Iterator[None]:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real descriptor (e.g. captured by pytest): nothing to hide
        yield
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, fd)
        os.close(saved)
