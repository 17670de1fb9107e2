"""Executes the requests of TripSage's pg_net emulation, as pg_net's background worker does.

Each round, in one transaction: read pg_net.ttl and pg_net.batch_size, delete up to a batch of responses older than
the TTL, take up to a batch of queued requests (DELETE ... RETURNING, SKIP LOCKED so replicas share the queue), send
them concurrently with libcurl (`transfer`), store their responses, commit. Only committed requests are visible, so
nothing is sent for a rolled-back transaction; and because the queue is a logged table taken in the same
transaction as the responses are stored, a crash mid-batch leaves the requests queued (they are sent again), where
pg_net's unlogged queue loses them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tripsage import queries_for, ssrf
from tripsage.db.connector import Database, Jsonb, mapped_errors
from tripsage.exceptions import DatabaseError
from tripsage.net import transfer

log = logging.getLogger(__name__)
Q = queries_for("tripsage.net")

DEFAULT_BATCH_SIZE = 200  # pg_net.batch_size's default
MAX_BATCH_SIZE = 32767  # pg_net.batch_size's maximum (PG_INT16_MAX)
DEFAULT_TTL = "6 hours"  # pg_net.ttl's default
INVALID_HEADERS = "cannot call jsonb_each_text on a non-object"  # what pg_net's worker fails with


def batch_size_from(text: str) -> int:
    """pg_net.batch_size's value, or its default when the setting is not an integer in 0..32767."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_BATCH_SIZE:
        log.warning(
            "pg_net.batch_size %r is not an integer in 0..%d; using %d", text, MAX_BATCH_SIZE, DEFAULT_BATCH_SIZE
        )
        return DEFAULT_BATCH_SIZE
    return value


class NetWorker:
    def __init__(self, db: Database, *, allow: ssrf.AllowList | None = None, ca_file: str | None = None) -> None:
        self.db = db
        self.transport = transfer.Transport(allow or ssrf.AllowList(), ca_file=ca_file)
        self.sent = 0
        self.expired = 0  # responses deleted by the last round
        self.batch_size = DEFAULT_BATCH_SIZE  # as read by the last round

    async def open(self) -> None:
        """Nothing to open yet: the curl multi handle is made by the first batch."""

    async def close(self) -> None:
        await asyncio.to_thread(self.transport.close)

    async def emulated(self) -> bool:
        """True when schema net is TripSage's emulation (so this worker, not pg_net, serves it)."""
        return bool(await self.db.fetch_value(Q["emulated"]))

    async def run_once(self) -> int:
        """One round; the number of requests sent (`expired`: the responses the TTL removed)."""
        with mapped_errors("net worker"):
            async with self.db.transaction() as conn:
                cursor = await conn.execute(Q["settings"].sql)
                settings = await cursor.fetchone()
                assert settings is not None
                self.batch_size = batch_size_from(str(settings["batch_size"]))
                self.expired = await self._expire(conn, str(settings["ttl"]))
                cursor = await conn.execute(Q["take_requests"].sql, {"limit": self.batch_size})
                rows = await cursor.fetchall()
                if not rows:
                    return 0
                invalid = [
                    transfer.Response(id=int(row["id"]), timed_out=False, error_msg=INVALID_HEADERS)
                    for row in rows
                    if row["headers_invalid"]
                ]
                responses = invalid + await self._send([_request(row) for row in rows if not row["headers_invalid"]])
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
        self.sent += len(rows)
        return len(rows)

    async def _expire(self, conn: Any, ttl: str) -> int:
        """Delete up to a batch of responses older than `ttl`; an invalid pg_net.ttl counts as its default."""
        try:
            with mapped_errors("pg_net.ttl"):
                async with conn.transaction():  # a savepoint: a bad interval must not spoil the round
                    cursor = await conn.execute(Q["expire_responses"].sql, {"ttl": ttl, "limit": self.batch_size})
                    return int(cursor.rowcount)
        except DatabaseError as error:
            if ttl == DEFAULT_TTL:
                raise
            log.warning("%s; using %s", error, DEFAULT_TTL)
            return await self._expire(conn, DEFAULT_TTL)

    async def _send(self, requests: list[transfer.Request]) -> list[transfer.Response]:
        if not requests:
            return []
        batch = asyncio.ensure_future(asyncio.to_thread(self.transport.send_batch, requests))
        try:
            return await asyncio.shield(batch)
        except asyncio.CancelledError:
            # The round is abandoned (its transaction rolls back, the requests stay queued): stop the transfers.
            self.transport.abort()
            await asyncio.gather(batch, return_exceptions=True)
            raise


def _request(row: dict[str, Any]) -> transfer.Request:
    return transfer.Request(
        id=int(row["id"]),
        method=str(row["method"]),
        url=str(row["url"]),
        header_lines=None if row["header_lines"] is None else [str(line) for line in row["header_lines"]],
        body=None if row["body"] is None else bytes(row["body"]),
        timeout_milliseconds=int(row["timeout_milliseconds"]),
    )
