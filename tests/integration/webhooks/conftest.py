"""What the webhooks tests share: a real aiohttp receiver on 127.0.0.1 whose answers a test programs, a keyring,
and helpers that point a config at the receiver."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from psycopg.types.json import Jsonb
from testkit.runtime import serve_app

from tripsage import queries_for, ssrf, standard_webhooks
from tripsage.crypto import Keyring
from tripsage.db import vault
from tripsage.db.connector import Database
from tripsage.webhooks.dispatcher import Dispatcher

Q = queries_for("tripsage.webhooks")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP receiver; `answer` decides each response (default: 200 "ok")."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], web.StreamResponse] = lambda r: web.Response(text="ok")
    delay: float = 0.0  # seconds before answering

    async def handle(self, request: web.Request) -> web.StreamResponse:
        item = Received(request.path, dict(request.headers), await request.read())
        self.received.append(item)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.answer(item)


@contextlib.asynccontextmanager
async def serving(recv: Receiver) -> AsyncIterator[Receiver]:
    """Serve `recv` on a free loopback port (its `url`) for the duration of the block."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv.handle)
    async with serve_app(app) as port:
        recv.url = f"http://127.0.0.1:{port}"
        yield recv


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as recv:
        yield recv


@pytest.fixture
def keys() -> Keyring:
    return Keyring(base64.b64encode(os.urandom(32)).decode())


@pytest.fixture
async def wdb(embedded_database: str) -> AsyncIterator[Database]:
    async with Database(embedded_database, max_size=6) as pool:
        yield pool


class Clock:
    """A wall clock the test moves (`tripsage.clock.Clock`), starting at the real time: one clock for the dispatcher's
    leases, retries and signatures, so receivers accept the webhook-timestamp it signs until a test moves it far."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        # The next whole second: what the test committed just before is already due.
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)

    def time(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


async def sql(db: Database, text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        cursor = await conn.execute(text, params)
        return await cursor.fetchall() if cursor.description else []


async def point(
    db: Database,
    keys: Keyring,
    url: str,
    *,
    name: str = "hook",
    events: list[str] | None = None,
    retry_config: dict[str, Any] | None = None,
    timeout_ms: int = 5000,
    secrets: list[str] | None = None,
) -> list[str]:
    """Create (or replace) config `name` pointing at url, active, with known secrets; return the secrets."""
    active = secrets or [standard_webhooks.generate_secret()]
    await sql(db, "DELETE FROM webhook_configs WHERE name = %(name)s", {"name": name})
    await sql(
        db,
        "INSERT INTO webhook_configs (name, url, events, retry_config, timeout_ms, secret) VALUES"
        " (%(name)s, %(url)s, %(events)s, %(retry)s, %(timeout)s, %(secret)s)",
        {
            "name": name,
            "url": url,
            "events": events or ["*"],
            "retry": Jsonb(retry_config or {}),
            "timeout": timeout_ms,
            "secret": vault.encrypt_webhook_secrets(keys, active),
        },
    )
    return active


async def emit(db: Database, event_type: str = "booking.confirmed", data: dict[str, Any] | None = None) -> int:
    rows = await sql(
        db, "SELECT emit_event(%(t)s, %(p)s) AS id", {"t": event_type, "p": Jsonb(data or {"booking_id": 1})}
    )
    return int(rows[0]["id"])


async def deliveries(db: Database) -> list[dict[str, Any]]:
    return await sql(db, "SELECT * FROM webhooks.deliveries ORDER BY id")


def dispatcher(db: Database, keys: Keyring, clock: Clock | None = None, allow: str = "127.0.0.1") -> Dispatcher:
    return Dispatcher(db, keys, ssrf.AllowList.parse(allow), clock=clock or Clock())
