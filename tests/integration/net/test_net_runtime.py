"""The worker inside the real runtime: woken by net.wake() at commit (never polling the queue while idle), seen by
net.check_worker_is_up() and net.wait_until_running(), reconnected by net.worker_restart(), and pg_net's own
synchronous examples (`net._http_collect_response(id, async => false)`) answered end to end."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.net.conftest import RawReceiver
from tripsage.net.component import WORKER_APPLICATION_NAME, NetComponent


@pytest.fixture
async def runtime(tmp_path: Path, database: str) -> AsyncIterator[RunningRuntime]:
    settings = runtime_settings(tmp_path, net_allow_hosts="127.0.0.1")
    async with running_runtime(settings, database) as running:
        yield running


def component(running: RunningRuntime) -> NetComponent:
    [net] = [c for c in running.runtime.components if isinstance(c, NetComponent)]
    return net


async def query(database: str, statement: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True, row_factory=dict_row) as conn:
        cursor = await conn.execute(statement, params)
        return list(await cursor.fetchall()) if cursor.description else []


async def worker_pids(database: str) -> set[int]:
    rows = await query(
        database,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
        [WORKER_APPLICATION_NAME],
    )
    return {int(row["pid"]) for row in rows}


async def test_pg_nets_synchronous_example_runs_end_to_end(
    database: str, runtime: RunningRuntime, receiver: RawReceiver
) -> None:
    assert await query(database, "SELECT net.wait_until_running()::text AS r, net.check_worker_is_up()::text AS c") == [
        {"r": "", "c": ""}
    ]
    # pg_stat_activity shows application_name to every role, so any role sees the worker.
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        role = psycopg.sql.Identifier(f"net_user_{uuid.uuid4().hex[:8]}")
        await conn.execute(psycopg.sql.SQL("CREATE ROLE {}").format(role))
        try:
            async with conn.transaction():
                await conn.execute(psycopg.sql.SQL("SET LOCAL ROLE {}").format(role))
                await conn.execute("SELECT net.check_worker_is_up()")
        finally:
            await conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(role))
    [queued] = await query(database, "SELECT net.http_get(%s) AS id", [receiver.url + "/sync"])
    rows = await query(database, "SELECT (net._http_collect_response(%s, async => false)).*", [queued["id"]])
    assert rows[0]["status"] == "SUCCESS" and rows[0]["message"] == "ok"
    assert [r.path for r in receiver.received] == ["/sync"]


async def test_idle_worker_sends_no_queries_and_wakes_on_net_wake(
    database: str, runtime: RunningRuntime, receiver: RawReceiver
) -> None:
    net = component(runtime)
    await eventually(lambda: _true(net.rounds >= 1))  # the catch-up round after connecting
    [queued] = await query(database, "SELECT net.http_get(%s) AS id", [receiver.url + "/woken"])
    await eventually(lambda: _has_response(database, queued["id"]))
    rounds = net.rounds
    await asyncio.sleep(2.5)  # idle, longer than the one-second poll the worker used to make
    assert net.rounds == rounds

    # As pg_net documents: a row inserted straight into the queue is not sent until something calls net.wake().
    await query(
        database,
        "INSERT INTO net.http_request_queue (method, url, timeout_milliseconds) VALUES ('GET', %s, 5000)",
        [receiver.url + "/direct"],
    )
    await asyncio.sleep(1.0)
    assert [r.path for r in receiver.received] == ["/woken"] and net.rounds == rounds
    await query(database, "SELECT net.wake()")
    await eventually(lambda: _true(len(receiver.received) == 2))
    assert receiver.received[-1].path == "/direct"


async def test_worker_restart_reconnects_and_catches_up(
    database: str, runtime: RunningRuntime, receiver: RawReceiver
) -> None:
    await query(database, "SELECT net.wait_until_running()")
    [before] = await worker_pids(database)
    async with await psycopg.AsyncConnection.connect(database) as conn:
        await conn.execute(
            "INSERT INTO net.http_request_queue (method, url, timeout_milliseconds) VALUES ('get', %s, 5000)",
            [receiver.url + "/missed"],
        )
        cursor = await conn.execute("SELECT net.worker_restart()")
        assert await cursor.fetchone() == (True,)
    await eventually(lambda: _true(bool(receiver.received)))  # the round after reconnecting found the row
    assert receiver.received[0].method == "GET"
    await eventually(lambda: _reconnected(database, before))


async def _true(value: bool) -> bool:
    return value


async def _has_response(database: str, request_id: int) -> bool:
    return bool(await query(database, "SELECT 1 FROM net._http_response WHERE id = %s", [request_id]))


async def _reconnected(database: str, before: int) -> bool:
    pids = await worker_pids(database)
    return len(pids) == 1 and before not in pids
