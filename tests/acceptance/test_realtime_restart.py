"""Realtime across a PostgreSQL restart: the gateway reconnects, tells its channels ("Subscribed to PostgreSQL"
again), and delivers the changes committed after the restart; a change committed while the gateway's connections
were being killed is not lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from testkit.harness import Cluster
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.realtime.conftest import subscribe, user_token

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    cluster = Cluster()
    await asyncio.to_thread(cluster.start)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.close)


@pytest.fixture
async def runtime_on_cluster(cluster: Cluster, tmp_path: Path) -> AsyncIterator[RunningRuntime]:
    async with running_runtime(runtime_settings(tmp_path), cluster.url) as running:
        yield running


async def test_changes_flow_again_after_a_database_restart(
    cluster: Cluster, runtime_on_cluster: RunningRuntime
) -> None:
    conn = await psycopg.AsyncConnection.connect(cluster.url, autocommit=True)
    owner = "6b0c3f0e-4b2a-4e8e-9d55-3d5b1a0c0001"
    await conn.execute("INSERT INTO auth.users (id) VALUES (%s)", [owner])
    await conn.close()
    sub = await subscribe(
        runtime_on_cluster.base_url,
        user_token(owner),
        "restart",
        [{"event": "INSERT", "table": "trips", "schema": "public"}],
    )
    subscribed = len([s for s in sub.systems if s.get("message") == "Subscribed to PostgreSQL"])
    add_trip = (
        "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
        " VALUES (%s, %s, 'X', '2026-01-01', '2026-01-02') RETURNING id"
    )
    try:
        # The gateway's connections die while a change commits: it must still be delivered.
        conn = await psycopg.AsyncConnection.connect(cluster.url, autocommit=True)
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'tripsage%%' AND pid <> pg_backend_pid()"
        )
        during = (await (await conn.execute(add_trip, [owner, "during"])).fetchone())[0]  # type: ignore[index]
        await conn.close()
        await eventually(lambda: any(c["data"]["record"]["id"] == during for c in sub.changes), timeout=30)

        subscribed = len([s for s in sub.systems if s.get("message") == "Subscribed to PostgreSQL"])
        await asyncio.to_thread(cluster.restart)
        await eventually(
            lambda: len([s for s in sub.systems if s.get("message") == "Subscribed to PostgreSQL"]) > subscribed,
            timeout=60,
            message="the gateway did not tell its channels it is back",
        )
        conn = await psycopg.AsyncConnection.connect(cluster.url, autocommit=True)
        after = (await (await conn.execute(add_trip, [owner, "after"])).fetchone())[0]  # type: ignore[index]
        await conn.close()
        await eventually(lambda: any(c["data"]["record"]["id"] == after for c in sub.changes), timeout=30)
        ids = [c["data"]["record"]["id"] for c in sub.changes]
        assert ids == [during, after]
    finally:
        await sub.client.close()
