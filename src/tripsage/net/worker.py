"""Executes the requests of TripSage's pg_net emulation, as pg_net's background worker does.

Each round, in one transaction: delete responses older than pg_net.ttl, take up to a batch of queued requests
(DELETE ... RETURNING, SKIP LOCKED so replicas share the queue), send them concurrently, store their responses,
commit. Only committed requests are visible, so nothing is sent for a rolled-back transaction; and because the
queue is a logged table taken in the same transaction as the responses are stored, a crash mid-batch leaves the
requests queued (they are sent again), where pg_net's unlogged queue loses them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from psycopg.types.json import Jsonb

from tripsage import __version__, queries_for
from tripsage.db.connector import Database, mapped_errors

log = logging.getLogger(__name__)
Q = queries_for("tripsage.net")

BATCH_SIZE = 200  # pg_net.batch_size's default
USER_AGENT = f"pg_net/0.20 (tripsage {__version__})"


@dataclass
class Response:
    id: int
    status_code: int | None = None
    content_type: str | None = None
    headers: dict[str, str] | None = None
    content: str | None = None
    timed_out: bool = False
    error_msg: str | None = None


class NetWorker:
    def __init__(self, db: Database, *, batch_size: int = BATCH_SIZE) -> None:
        self.db = db
        self.batch_size = batch_size
        self.session: aiohttp.ClientSession | None = None
        self.sent = 0

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def emulated(self) -> bool:
        """True when schema net is TripSage's emulation (so this worker, not pg_net, serves it)."""
        return bool(await self.db.fetch_value(Q["emulated"]))

    async def run_once(self) -> int:
        """One round; the number of requests sent."""
        with mapped_errors("net worker"):
            async with self.db.transaction() as conn:
                await conn.execute(Q["expire_responses"].sql)
                cursor = await conn.execute(Q["take_requests"].sql, {"limit": self.batch_size})
                requests = await cursor.fetchall()
                if not requests:
                    return 0
                responses = await asyncio.gather(*(self._send(r) for r in requests))
                await conn.execute(
                    Q["store_responses"].sql,
                    {
                        "ids": [r.id for r in responses],
                        "codes": [r.status_code for r in responses],
                        "content_types": [r.content_type for r in responses],
                        "headers": [None if r.headers is None else Jsonb(r.headers) for r in responses],
                        "contents": [r.content for r in responses],
                        "timed_out": [r.timed_out for r in responses],
                        "errors": [r.error_msg for r in responses],
                    },
                )
        self.sent += len(requests)
        return len(requests)

    async def _send(self, request: dict[str, Any]) -> Response:
        assert self.session is not None, "NetWorker.open() first"
        timeout_ms = int(request["timeout_milliseconds"])
        began = time.perf_counter()
        try:
            async with self.session.request(
                request["method"],
                request["url"],
                headers={str(k): str(v) for k, v in (request["headers"] or {}).items()},
                data=None if request["body"] is None else bytes(request["body"]),
                timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000),
                allow_redirects=True,
            ) as response:
                content = await response.text(errors="replace")
                return Response(
                    id=request["id"],
                    status_code=response.status,
                    content_type=response.headers.get("Content-Type"),
                    headers=dict(response.headers),
                    content=content,
                )
        except TimeoutError:
            elapsed = round((time.perf_counter() - began) * 1000)
            return Response(
                id=request["id"], timed_out=True, error_msg=f"Timeout of {timeout_ms} ms reached ({elapsed} ms)"
            )
        except (aiohttp.ClientError, ValueError) as error:
            return Response(id=request["id"], error_msg=f"{type(error).__name__}: {error}")
