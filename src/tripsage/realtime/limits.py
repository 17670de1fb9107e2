"""Per-socket limits, with Supabase's defaults and error shapes (see docs/realtime.md)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    connections: int = 10000  # sockets per runtime process; more get HTTP 429 "Too many connected users"
    # Beside it, so that one client cannot take them all (TRIPSAGE_REALTIME_MAX_CONNECTIONS_PER_USER / _PER_IP):
    connections_per_user: int = 100  # sockets of one signed-in user (the JWT's sub) per process
    connections_per_ip: int = 200  # sockets from one client address per process (Supabase Free's concurrent peak)
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


TOO_MANY_CONNECTIONS = "Too many connected users"
TOO_MANY_FOR_USER = "Too many connections for this user"
TOO_MANY_FROM_ADDRESS = "Too many connections from this address"


@dataclass
class SocketCounts:
    """Open (or opening) sockets of one process, by user and by client address."""

    by_user: Counter[str] = field(default_factory=Counter)
    by_address: Counter[str] = field(default_factory=Counter)

    def reserve(self, limits: Limits, open_sockets: int, user: str | None, address: str | None) -> str | None:
        """Count a new socket in, or say why not (Supabase's 429 message for the process-wide limit)."""
        if open_sockets >= limits.connections:
            return TOO_MANY_CONNECTIONS
        if user is not None and self.by_user[user] >= limits.connections_per_user:
            return TOO_MANY_FOR_USER
        if address is not None and self.by_address[address] >= limits.connections_per_ip:
            return TOO_MANY_FROM_ADDRESS
        if user is not None:
            self.by_user[user] += 1
        if address is not None:
            self.by_address[address] += 1
        return None

    def release(self, user: str | None, address: str | None) -> None:
        for counts, key in ((self.by_user, user), (self.by_address, address)):
            if key is not None:
                counts[key] -= 1
                if counts[key] <= 0:
                    del counts[key]
