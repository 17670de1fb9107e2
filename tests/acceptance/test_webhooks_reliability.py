"""Reliability: three `tripsage serve` replicas deliver a burst of events while replicas are killed with SIGKILL
(and restarted) and PostgreSQL is restarted once. Nothing committed may be lost, and any duplicate must carry the
webhook-id of the original (so receivers can dedupe).

The default size suits CI (1,000 events, 3 kills); TRIPSAGE_RELIABILITY_EVENTS=10000 runs the issue's size.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from aiohttp import web
from bench.harness import Cluster, Replica, new_encryption_key
from psycopg.types.json import Jsonb

from tripsage.crypto import Keyring
from tripsage.webhooks import outbox, signing

EVENTS = int(os.environ.get("TRIPSAGE_RELIABILITY_EVENTS", "1000"))
KILLS = 3
CHUNK = 50  # events per producer transaction
DRAIN_LIMIT = 300.0  # seconds the test waits for the outbox to empty before failing
# Short retries and leases so a killed replica's deliveries come back within the test's patience.
RETRY_CONFIG = {"schedule_s": [0, 0.5, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2], "jitter": 0, "lease_margin_s": 2}


class Sink:
    def __init__(self) -> None:
        self.ids_by_n: dict[int, set[str]] = defaultdict(set)
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        n = json.loads(body)["data"]["n"]
        self.ids_by_n[n].add(request.headers["webhook-id"])
        self.requests += 1
        return web.Response(text="ok")


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, str]]:
    s = Sink()
    app = web.Application()
    app.router.add_post("/sink", s.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield s, f"http://127.0.0.1:{port}/sink"
    finally:
        await runner.cleanup()


def produce(url: str, start: int, count: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT emit_event('booking.confirmed', jsonb_build_object('n', n))"
            " FROM generate_series(%s::int, %s::int) AS n",
            [start, start + count - 1],
        )


async def test_kill9_and_postgres_restart_lose_nothing(
    cluster: Cluster, sink: tuple[Sink, str], tmp_path: Path
) -> None:
    receiver, url = sink
    key = new_encryption_key()
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhook_configs (name, url, events, retry_config, timeout_ms, secret)"
            " VALUES ('sink', %s, '{booking.confirmed}', %s, 2000, %s)",
            [url, Jsonb(RETRY_CONFIG), outbox.encrypt_secrets(Keyring(key), [signing.generate_secret()])],
        )
    replicas = [Replica(cluster.url, key) for _ in range(3)]
    try:
        for r in replicas:
            r.start(tmp_path)
        for r in replicas:
            await asyncio.to_thread(r.wait_healthy)
        chunks = list(range(1, EVENTS + 1, CHUNK))
        kill_at = {chunks[len(chunks) * (k + 1) // (KILLS + 2)]: k for k in range(KILLS)}
        restart_at = chunks[len(chunks) * (KILLS + 1) // (KILLS + 2)]
        for start in chunks:
            await asyncio.to_thread(produce, cluster.url, start, min(CHUNK, EVENTS - start + 1))
            await asyncio.sleep(0)  # let the sink answer between chunks
            if start in kill_at:
                victim = replicas[kill_at[start] % len(replicas)]
                victim.kill9()
                victim.start(tmp_path)
                await asyncio.to_thread(victim.wait_healthy)
            if start == restart_at:
                await asyncio.to_thread(cluster.restart)
        began = time.monotonic()
        while time.monotonic() - began < DRAIN_LIMIT:
            if len(receiver.ids_by_n) == EVENTS:
                with psycopg.connect(cluster.url, autocommit=True) as conn:
                    row = conn.execute("SELECT webhook_outbox_depth()").fetchone()
                if row is not None and row[0] == 0:
                    break
            await asyncio.sleep(0.2)
        alive = [r for r in replicas if r.process is not None and r.process.poll() is None]
        assert len(alive) == 3, "a replica crashed"
    finally:
        for r in replicas:
            r.stop()
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM webhooks.deliveries GROUP BY 1").fetchall())
    lost = EVENTS - len(receiver.ids_by_n)
    duplicates = receiver.requests - EVENTS
    print(f"\nreliability: {EVENTS} events, {KILLS} kills, 1 restart: lost {lost}, duplicate requests {duplicates}")
    assert lost == 0
    assert statuses == {"succeeded": EVENTS}
    # A duplicate is a re-send of the same message: same webhook-id.
    assert all(len(ids) == 1 for ids in receiver.ids_by_n.values())
