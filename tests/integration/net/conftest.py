"""What the pg_net emulation's tests share: a real HTTP receiver speaking raw HTTP/1.1 over TCP (so it can accept
header names with spaces and answer with empty or malformed replies), and helpers around the worker."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tripsage import ssrf
from tripsage.db.connector import Database
from tripsage.net.worker import NetWorker

LOOPBACK = ssrf.AllowList.parse("127.0.0.1, ::1")


@dataclass
class Received:
    method: str
    path: str
    header_lines: list[str]
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.header_lines:
            key, _, value = line.partition(":")
            if key.lower() == name.lower():
                return value.strip()
        return None


def reply(status: int = 200, body: bytes = b"ok", headers: tuple[str, ...] = ("Content-Type: text/plain",)) -> bytes:
    head = [f"HTTP/1.1 {status} X", *headers, f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(head).encode() + body


@dataclass
class RawReceiver:
    """An HTTP/1.1 server on a loopback address; `answer` turns each request into the raw bytes sent back."""

    host: str = "127.0.0.1"
    scheme: str = "http"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], bytes] = lambda r: reply()
    delay: float = 0.0  # seconds before answering

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _version = head[0].split(" ", 2)
            lines = [line for line in head[1:] if line]
            request = Received(method, path, lines, b"")
            length = int(request.header("Content-Length") or 0)
            request.body = await reader.readexactly(length) if length else b""
            self.received.append(request)
            if self.delay:
                await asyncio.sleep(self.delay)
            writer.write(self.answer(request))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def raw_receiver(host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None) -> AsyncIterator[RawReceiver]:
    receiver = RawReceiver(host, scheme="https" if tls else "http")
    server = await asyncio.start_server(receiver.handle, host, 0, ssl=tls)
    receiver.port = int(server.sockets[0].getsockname()[1])
    try:
        yield receiver
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[RawReceiver]:
    async with raw_receiver() as recv:
        yield recv


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Database]:
    async with Database(database, max_size=4) as db:
        yield db


@pytest.fixture
async def worker(pool: Database) -> AsyncIterator[NetWorker]:
    net_worker = NetWorker(pool, allow=LOOPBACK)
    assert await net_worker.emulated()
    await net_worker.open()
    try:
        yield net_worker
    finally:
        await net_worker.close()


async def sql(db: Database, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with db.transaction() as conn:
        cursor = await conn.execute(query, params)
        return list(await cursor.fetchall()) if cursor.description else []


async def queue_and_run(db: Database, worker: NetWorker, query: str, params: dict[str, Any]) -> dict[str, Any]:
    """Commit `query` (a SELECT of one net.http_* call AS id), run a worker round, return that request's response."""
    [queued] = await sql(db, query, params)
    assert await worker.run_once() >= 1
    [row] = await sql(db, "SELECT * FROM net._http_response WHERE id = %(id)s", {"id": queued["id"]})
    return row
