"""The wall clock, injected: the runtime hands one `Clock` to its components, so a test drives time (a
`SettableClock` moved forward) instead of sleeping past a token's expiry."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch, as time.time()."""
        ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        return time.time()


class SettableClock:
    """The real wall clock moved by `advance` (for tests: time passes at once, and keeps passing)."""

    def __init__(self) -> None:
        self.offset = 0.0  # seconds added to the real clock

    def time(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def utc_now(clock: Clock) -> dt.datetime:
    """`clock`'s time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(clock.time(), dt.UTC)
