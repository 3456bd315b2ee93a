"""A stand-in for the `time` module whose monotonic clock moves on by a fixed step at every reading: progress
lines that say how long is left, tested without waiting."""

from __future__ import annotations

import time


class TickingClock:
    """`time`, but `monotonic()` reads `start`, `start + step`, ... (seconds) one reading after another."""

    def __init__(self, start: int = 100, step: int = 100):
        self._ticks = iter(range(start, 10**9, step))

    def __getattr__(self, name):
        return getattr(time, name)

    def monotonic(self) -> float:
        return float(next(self._ticks))
