"""Per-socket limits, with Supabase's defaults and error shapes (see docs/realtime.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    connections: int = 10000  # sockets per runtime process; more get HTTP 429 "Too many connected users"
    channels_per_socket: int = 100
    events_per_second: int = 500  # frames a socket may send per second (heartbeats included)
    joins_per_second: int = 100
    presence_events_per_window: int = 5  # track/untrack calls per presence window, as Supabase
    presence_window: float = 30.0  # seconds
    frame_bytes: int = 1024 * 1024  # largest client frame accepted
    broadcast_payload_bytes: int = 256 * 1024  # Supabase's Free plan limit
    outgoing_queue: int = 20000  # frames waiting for a slow client before the socket is closed
    idle_timeout: float = 60.0  # seconds without a frame before the socket is closed (Phoenix's default)


class RateWindow:
    """At most `limit` events per `window` seconds (a fixed window: cheap and good enough for abuse control)."""

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._started = time.monotonic()
        self._count = 0

    def allow(self) -> bool:
        now = time.monotonic()
        if now - self._started >= self.window:
            self._started = now
            self._count = 0
        self._count += 1
        return self._count <= self.limit
