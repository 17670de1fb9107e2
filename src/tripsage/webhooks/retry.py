"""The retry policy: Svix's schedule with jitter, Retry-After, and how a response is classified."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass
from typing import Any

# Delay before attempt n (n = 1 ..): immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Svix's), in seconds.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_DISABLE_AFTER = 5 * 24 * 3600.0  # seconds of failing before an endpoint is disabled
DEFAULT_JITTER = 0.1  # each delay varies by up to this fraction either way
MAX_RETRY_AFTER = 24 * 3600.0  # seconds: a receiver cannot push a retry further than a day


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = DEFAULT_JITTER
    disable_after: float = DEFAULT_DISABLE_AFTER

    @classmethod
    def from_config(cls, retry_config: dict[str, Any] | None) -> RetryPolicy:
        """The policy of one endpoint: `webhook_configs.retry_config` may set schedule_s, jitter, disable_after_s
        (and lease_margin_s, read by the claim query: how long a lease outlives the endpoint's timeout)."""
        config = retry_config or {}
        schedule = tuple(float(s) for s in config.get("schedule_s", DEFAULT_SCHEDULE)) or DEFAULT_SCHEDULE
        return cls(
            schedule=schedule,
            jitter=float(config.get("jitter", DEFAULT_JITTER)),
            disable_after=float(config.get("disable_after_s", DEFAULT_DISABLE_AFTER)),
        )

    @property
    def max_attempts(self) -> int:
        return len(self.schedule)

    def next_delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float | None:
        """Seconds until the next attempt after `attempts` failed ones, or None when none is left (dead letter)."""
        if attempts >= self.max_attempts:
            return None
        base = self.schedule[attempts]
        delay = base * (1 + rng.uniform(-self.jitter, self.jitter)) if base > 0 else 0.0
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def is_success(status: int) -> bool:
    """2xx only: a redirect is a failure (the dispatcher never follows one)."""
    return 200 <= status < 300
