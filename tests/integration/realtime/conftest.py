"""What the realtime tests share: a running runtime (uvicorn, the real gateway), users with tokens, and a
subscriber built on the real realtime-py client that records what it receives."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from testkit.runtime import TEST_JWT_SECRET, RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tripsage import jwt
from tripsage.clock import SettableClock
from tripsage.db.connector import Database

WAIT = 15.0  # seconds: generous bound for anything to arrive (never asserted as a timing)


def user_token(user_id: str, lifetime: int = 3600) -> str:
    return jwt.user_token(TEST_JWT_SECRET, user_id, lifetime=lifetime)


def service_key() -> str:
    return jwt.api_key(TEST_JWT_SECRET, "service_role")


def anon_key() -> str:
    return jwt.api_key(TEST_JWT_SECRET, "anon")


@dataclass
class Subscriber:
    client: AsyncRealtimeClient
    channel: AsyncRealtimeChannel
    changes: list[dict[str, Any]] = field(default_factory=list)
    systems: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = field(default_factory=list)
    broadcasts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def subscribed_to_postgres(self) -> bool:
        return any(s.get("message") == "Subscribed to PostgreSQL" for s in self.systems)

    def records(self, change_type: str) -> list[dict[str, Any]]:
        return [c["data"] for c in self.changes if c["data"]["type"] == change_type]


async def subscribe(
    base_url: str,
    token: str,
    topic: str,
    bindings: list[dict[str, Any]],
    *,
    client: AsyncRealtimeClient | None = None,
    params: dict[str, Any] | None = None,
    wait_postgres: bool = True,
) -> Subscriber:
    """Join `topic` with the real client and wait for "Subscribed to PostgreSQL" (writes are safe after it)."""
    client = client or AsyncRealtimeClient(f"{base_url}/realtime/v1", token, max_retries=8, initial_backoff=0.2)
    channel = client.channel(topic, params)
    sub = Subscriber(client, channel)
    for binding in bindings:
        channel.on_postgres_changes(callback=sub.changes.append, **binding)
    channel.on_system(lambda payload: sub.systems.append(dict(payload)))
    await channel.subscribe(lambda state, error: sub.states.append((state, error)))
    assert sub.states and sub.states[-1][0] == RealtimeSubscribeStates.SUBSCRIBED, sub.states
    if bindings and wait_postgres:
        await eventually(lambda: sub.subscribed_to_postgres, message=f"no 'Subscribed to PostgreSQL': {sub.systems}")
    return sub


@pytest.fixture
async def runtime(embedded_database: str, tmp_path: Path) -> AsyncIterator[RunningRuntime]:
    # A settable wall clock: a test moves it past a token's expiry instead of sleeping there.
    async with running_runtime(runtime_settings(tmp_path), embedded_database, clock=SettableClock()) as running:
        yield running


@pytest.fixture
async def admin(embedded_database: str) -> AsyncIterator[Database]:
    """The database as its superuser (writes that bypass RLS, like the app's backend)."""
    async with Database(embedded_database, max_size=2) as pool:
        yield pool


@pytest.fixture
async def closing() -> AsyncIterator[list[AsyncRealtimeClient]]:
    """Clients to close at the end of the test."""
    clients: list[AsyncRealtimeClient] = []
    yield clients
    for client in clients:
        with contextlib.suppress(Exception):
            await client.close()


async def make_user(db: Database, email: str | None = None) -> str:
    from tripsage import queries_for

    user_id = str(uuid.uuid4())
    await db.execute(queries_for("tests.integration.realtime")["add_user"], {"id": user_id, "email": email})
    return user_id


async def trip_matrix(db: Database, trip_name: str) -> tuple[int, dict[str, str]]:
    """A trip of an owner with a view, an edit and an admin collaborator, plus a stranger: the trip's id and the token
    of each (named owner, viewer, editor, admin, stranger), with the anon and service_role keys (anon, service)."""
    from tripsage import queries_for

    q = queries_for("tests.integration.realtime")
    owner, viewer, editor, trip_admin, stranger = [await make_user(db) for _ in range(5)]
    trip = int(await db.fetch_value(q["add_trip"], {"user_id": owner, "name": trip_name, "budget": 100}))
    for user, level in ((viewer, "view"), (editor, "edit"), (trip_admin, "admin")):
        await db.execute(q["add_collaborator"], {"trip_id": trip, "user_id": user, "level": level, "added_by": owner})
    users = {"owner": owner, "viewer": viewer, "editor": editor, "admin": trip_admin, "stranger": stranger}
    tokens = {name: user_token(user) for name, user in users.items()}
    return trip, {**tokens, "anon": anon_key(), "service": service_key()}
