"""Tick timing shared by the stateful controllers: time arrives as ``stamp_s``, never from a clock."""

from __future__ import annotations

import math


def tick_dt_s(who: str, last_stamp_s: float | None, stamp_s: float, first_dt_s: float, max_dt_s: float) -> float:
    """Seconds since the previous tick (``first_dt_s`` on the first one), capped at ``max_dt_s`` so a stall
    does not become one huge step. Raises ``ValueError`` naming ``who`` for a non-finite stamp or time that
    runs backwards."""
    if not math.isfinite(stamp_s):
        raise ValueError(f"{who}: stamp must be finite, got {stamp_s}")
    if last_stamp_s is None:
        return first_dt_s
    dt = stamp_s - last_stamp_s
    if dt < 0.0:
        raise ValueError(f"{who}: time went backwards ({last_stamp_s} -> {stamp_s})")
    return min(dt, max_dt_s)
