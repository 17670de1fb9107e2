"""Reliability: three `tripsage serve` replicas deliver a burst of events while replicas are killed with SIGKILL
(and restarted) and PostgreSQL is restarted once. Nothing committed may be lost, and any duplicate must carry the
webhook-id of the original (so receivers can dedupe).

The default size suits CI (1,000 events, 3 kills); TRIPSAGE_RELIABILITY_EVENTS=10000 runs the issue's size.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from testkit.harness import Cluster, Replica, new_encryption_key
from testkit.workload import WebhookSink, configure_webhook, produce_events

EVENTS = int(os.environ.get("TRIPSAGE_RELIABILITY_EVENTS", "1000"))
KILLS = 3
CHUNK = 50  # events per producer transaction
DRAIN_LIMIT = 300.0  # seconds the test waits for the outbox to empty before failing


@pytest.fixture
async def sink() -> AsyncIterator[tuple[WebhookSink, str]]:
    s = WebhookSink()
    url = await s.start()
    try:
        yield s, url
    finally:
        await s.close()


async def test_kill9_and_postgres_restart_lose_nothing(
    cluster: Cluster, sink: tuple[WebhookSink, str], tmp_path: Path
) -> None:
    receiver, url = sink
    key = new_encryption_key()
    configure_webhook(cluster.url, key, url)  # short retries and leases (workload.FAST_RETRY)
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
            await asyncio.to_thread(produce_events, cluster.url, start, min(CHUNK, EVENTS - start + 1))
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
