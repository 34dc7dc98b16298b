"""Rate groups: run a stage at its own rate inside a faster control loop, on the stamps passed in."""

from __future__ import annotations


class RateGroup:
    """Due every ``1/rate_hz`` seconds of the stamps it is given (the first call is always due).

    Deterministic: it depends only on the stamps, never on a clock. A tick that arrives late runs once
    and the schedule restarts from it (no burst of catch-up runs).
    """

    def __init__(self, name: str, rate_hz: float) -> None:
        if not rate_hz > 0.0:
            raise ValueError(f"rate group {name!r}: rate_hz must be > 0, got {rate_hz}")
        self.name = name
        self.period_s = 1.0 / rate_hz
        self._next_s: float | None = None

    def due(self, stamp_s: float) -> bool:
        # Half a microsecond of slack absorbs float error in stamps built from integer physics steps.
        if self._next_s is None or stamp_s >= self._next_s - 5e-7:
            nxt = (self._next_s if self._next_s is not None else stamp_s) + self.period_s
            self._next_s = nxt if nxt > stamp_s else stamp_s + self.period_s
            return True
        return False
