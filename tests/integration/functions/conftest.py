"""What the functions tests share: a real SMTP server (aiosmtpd) that keeps what it receives, the real runtime
with SMTP pointed at it, users and trips, and requests signed exactly as the dispatcher signs them."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import io
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings
from testkit.servers import free_port

from tripsage import standard_webhooks
from tripsage.db import vault
from tripsage.db.connector import Database
from tripsage.db.vault import keyring
from tripsage.functions.component import FunctionsComponent


@dataclass
class Mailbox:
    """What the SMTP server received (its handler runs in aiosmtpd's thread)."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[email.message.EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.to(address)) < count:
            assert time.monotonic() < deadline, f"{count} email(s) to {address} never arrived: {self.to(address)}"
            await asyncio.sleep(0.05)
        return self.to(address)


@dataclass
class Smtp:
    url: str
    mailbox: Mailbox


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp(f"smtp://127.0.0.1:{port}", mailbox)
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def functions_runtime(tmp_path: Path, database: str, **overrides: object) -> AsyncIterator[RunningRuntime]:
    """The real runtime (every component) on `database`, with 127.0.0.1 allowed as a webhook host."""
    settings = runtime_settings(tmp_path, webhook_allow_hosts="127.0.0.1", **overrides)
    async with running_runtime(settings, database) as running:
        yield running


def functions_component(running: RunningRuntime) -> FunctionsComponent:
    (component,) = [c for c in running.runtime.components if isinstance(c, FunctionsComponent)]
    return component


async def sql(db: Database, text: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        cursor = await conn.execute(text, params)
        return await cursor.fetchall() if cursor.description else []


async def create_user(db: Database, name: str) -> tuple[str, str]:
    """A user with an email address and a display name; (id, email)."""
    address = f"{name.lower()}.{uuid.uuid4().hex[:8]}@example.com"
    rows = await sql(
        db,
        "INSERT INTO auth.users (email, raw_user_meta_data)"
        " VALUES (%(email)s, jsonb_build_object('full_name', %(name)s::text)) RETURNING id",
        {"email": address, "name": name},
    )
    return str(rows[0]["id"]), address


async def create_trip(db: Database, owner: str, name: str = "Kyoto in autumn", destination: str = "Kyoto") -> int:
    rows = await sql(
        db,
        "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
        " VALUES (%(owner)s, %(name)s, %(destination)s, '2027-11-01', '2027-11-09') RETURNING id",
        {"owner": owner, "name": name, "destination": destination},
    )
    return int(rows[0]["id"])


async def secrets_of(running: RunningRuntime, config: str) -> list[str]:
    return await vault.get_webhook_secrets(running.runtime.database, keyring(running.settings), config)


def event_body(event_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "timestamp": "2027-01-01T00:00:00Z", "data": data}).encode()


def signed_headers(
    body: bytes, secrets: list[str], *, message_id: str | None = None, at: int | None = None
) -> dict[str, str]:
    """The dispatcher's headers for one attempt (tripsage.standard_webhooks, as the dispatcher calls it)."""
    keys = [standard_webhooks.secret_key(secret) for secret in secrets]
    headers = standard_webhooks.headers(message_id or f"msg_{uuid.uuid4().hex}", at or int(time.time()), body, keys)
    return {**headers, "content-type": "application/json"}


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=io.BytesIO(body), headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)
