"""The runtime behind a real PgBouncer (Debian's package) in front of the system PostgreSQL 15.

- session pooling: the whole runtime works through it (webhook dispatcher, net worker, the scheduler's leadership and
  its jobs, realtime capture, functions); bench/chaos.py --short --pgbouncer session runs replicas through it too;
- transaction pooling: `tripsage serve` refuses it at start with one line naming the fix, unless
  TRIPSAGE_DB_DIRECT_URL gives the session-bound parts a direct URL (then the pool goes through the transaction
  pooler, prepared statements off); the SQL applications run (cron.schedule, net.http_post, triggers) works through
  the transaction pooler either way.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from testkit import pgbouncer, servers
from testkit.harness import Replica, new_encryption_key
from testkit.runtime import (
    TEST_JWT_SECRET,
    detailed_health,
    run_tripsage,
    running_runtime,
    runtime_settings,
    service_role_key,
)
from testkit.servers import free_port
from testkit.waiting import eventually

from tests.acceptance.test_chaos_soak import run_script
from tests.conftest import IN_CI
from tests.integration.realtime.conftest import subscribe, user_token
from tests.integration.webhooks.conftest import Receiver, serving
from tripsage.db import topology
from tripsage.net import WORKER_APPLICATION_NAME

pytestmark = pytest.mark.system
WAIT = 60.0  # seconds a condition may take before the test fails (a bound, not a measurement)


@pytest.fixture(scope="module")
def bouncers(system_server: servers.Server) -> Iterator[dict[str, pgbouncer.Bouncer]]:
    reason = pgbouncer.unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the pgbouncer tests, but: {reason}")
        pytest.skip(reason)
    started = {mode: pgbouncer.start(system_server.admin_url, mode) for mode in ("session", "transaction")}
    try:
        yield started  # type: ignore[misc]
    finally:
        for bouncer in started.values():
            bouncer.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as recv:
        yield recv


def app_connection(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    # What an application on a transaction pooler does: no server-side prepared statements (psycopg's default
    # prepares a statement after its fifth execution, which a transaction pooler would hand to another session).
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


def application_work(url: str, receiver_url: str) -> None:
    """The SQL an application runs: a trigger-written event, a pg_net call, a cron job."""
    with app_connection(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.topology_probe (at timestamptz DEFAULT clock_timestamp())")
        conn.execute(
            "INSERT INTO webhook_configs (name, url, events) VALUES ('receiver', %s, '{booking.confirmed}')",
            [receiver_url + "/in"],
        )
        conn.execute("SELECT emit_event('booking.confirmed', '{\"n\": 1}')")
        conn.execute('SELECT net.http_post(%s, \'{"via": "pg_net"}\')', [receiver_url + "/net"])
        conn.execute("SELECT cron.schedule('probe', '1 seconds', 'INSERT INTO public.topology_probe DEFAULT VALUES')")


def probe_rows(url: str) -> int:
    with app_connection(url) as conn:
        row = conn.execute("SELECT count(*) FROM public.topology_probe").fetchone()
    return int(row[0]) if row else 0


async def wait_for_probe(url: str, failure: str) -> None:
    """Until the `1 seconds` probe job has run twice (each check opens a connection: every 0.2 s, off the loop)."""

    async def ran() -> bool:
        return await asyncio.to_thread(probe_rows, url) >= 2

    await eventually(ran, failure, timeout=WAIT, interval=0.2)


async def wait_for(check: Any, what: str) -> None:
    await eventually(check, timeout=WAIT, message=f"timed out waiting for {what}")


def delivered(receiver: Receiver) -> bool:
    signed = [r for r in receiver.received if "webhook-id" in r.headers]
    via_net = [r for r in receiver.received if r.path == "/net" and json.loads(r.body) == {"via": "pg_net"}]
    return len(signed) == 1 and len(via_net) == 1


async def test_the_runtime_works_through_session_pooling(
    bouncers: dict[str, pgbouncer.Bouncer], system_database: str, receiver: Receiver, tmp_path: Path
) -> None:
    pooled = bouncers["session"].url(system_database)
    assert await topology.detect_pooling(pooled) == "session"
    settings = runtime_settings(tmp_path, webhook_allow_hosts="127.0.0.1", net_allow_hosts="127.0.0.1")
    async with running_runtime(settings, pooled) as running, httpx.AsyncClient(timeout=30) as http:
        await asyncio.to_thread(application_work, pooled, receiver.url)
        await wait_for(lambda: delivered(receiver), "the webhook and the pg_net call")
        await wait_for_probe(pooled, "the cron job did not run through the pooler")
        health = await asyncio.to_thread(detailed_health, running.base_url)  # the details are the service role's
        assert health["status"] == "ok", health
        assert health["components"]["scheduler"]["leader"] is True

        owner = "6b0c3f0e-4b2a-4e8e-9d55-3d5b1a0c0b0b"
        with app_connection(pooled) as conn:
            conn.execute("INSERT INTO auth.users (id) VALUES (%s)", [owner])
        sub = await subscribe(
            running.base_url, user_token(owner), "pooled", [{"event": "INSERT", "table": "trips", "schema": "public"}]
        )
        try:
            with app_connection(pooled) as conn:
                row = conn.execute(
                    "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
                    " VALUES (%s, 'Pooled', 'X', '2027-01-01', '2027-01-02') RETURNING id",
                    [owner],
                ).fetchone()
            assert row is not None
            await wait_for(lambda: any(c["data"]["record"]["id"] == row[0] for c in sub.changes), "the change")
        finally:
            await sub.client.close()

        answer = await http.post(
            f"{running.base_url}/functions/v1/ai-processing",
            headers={"Authorization": f"Bearer {service_role_key()}"},
            json={"type": "memory.generate.embedding", "data": {"memory_ids": []}},
        )
        assert answer.status_code == 200 and answer.json()["success"] is True, answer.text


def test_serve_refuses_transaction_pooling_in_one_line(
    bouncers: dict[str, pgbouncer.Bouncer], system_database: str, tmp_path: Path
) -> None:
    pooled = bouncers["transaction"].url(system_database)
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env.update({"DATABASE_URL": pooled, "TRIPSAGE_DATA_DIR": str(tmp_path), "TRIPSAGE_JWT_SECRET": TEST_JWT_SECRET})
    result = run_tripsage("serve", "--port", str(free_port()), env=env, timeout=60)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "transaction-mode pooler" in lines[0]
    assert "session-mode pooler URL" in lines[0] and "direct URL" in lines[0]


def test_deploy_refuses_transaction_pooling_and_uses_the_direct_url(
    bouncers: dict[str, pgbouncer.Bouncer], system_database: str, tmp_path: Path
) -> None:
    pooled = bouncers["transaction"].url(system_database)
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env.update({"DATABASE_URL": pooled, "TRIPSAGE_DATA_DIR": str(tmp_path)})
    refused = run_tripsage("deploy", env=env)
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "transaction-mode pooler" in lines[0], refused.stderr
    deployed = run_tripsage("deploy", env={**env, "TRIPSAGE_DB_DIRECT_URL": system_database})
    assert deployed.returncode == 0, deployed.stderr
    assert "Nothing to apply" in deployed.stdout


async def test_application_sql_works_through_transaction_pooling(
    bouncers: dict[str, pgbouncer.Bouncer], system_database: str, receiver: Receiver, tmp_path: Path
) -> None:
    pooled = bouncers["transaction"].url(system_database)
    assert await topology.detect_pooling(pooled) == "transaction"
    settings = runtime_settings(tmp_path, webhook_allow_hosts="127.0.0.1", net_allow_hosts="127.0.0.1")
    async with running_runtime(settings, bouncers["session"].url(system_database)):
        await asyncio.to_thread(application_work, pooled, receiver.url)
        await wait_for(lambda: delivered(receiver), "the webhook and the pg_net call")
        await wait_for_probe(pooled, "the job scheduled through the pooler did not run")


async def test_serve_splits_the_pool_onto_the_transaction_pooler_with_a_direct_url(
    bouncers: dict[str, pgbouncer.Bouncer], system_database: str, receiver: Receiver, tmp_path: Path
) -> None:
    bouncer = bouncers["transaction"]
    pooled = bouncer.url(system_database)
    replica = Replica(
        pooled,
        new_encryption_key(),
        extra_env={"TRIPSAGE_DB_DIRECT_URL": system_database, "TRIPSAGE_DATA_DIR": str(tmp_path / "replica")},
    )
    replica.start(tmp_path)
    try:
        await asyncio.to_thread(replica.wait_healthy)
        await asyncio.to_thread(application_work, pooled, receiver.url)
        await wait_for(lambda: delivered(receiver), "the webhook and the pg_net call")
        await wait_for_probe(pooled, "the cron job did not run")
        # The pool went through the transaction pooler; the session-bound parts straight to the server.
        names = {client.get("application_name") for client in await asyncio.to_thread(bouncer.show, "CLIENTS")}
        assert "tripsage-runtime" in names, names
        with psycopg.connect(system_database, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND (application_name LIKE 'tripsage-%%' OR application_name = %s) GROUP BY 1",
                [WORKER_APPLICATION_NAME],
            ).fetchall()
        direct = {str(name): int(count) for name, count in rows}
        assert direct.get("tripsage-listen") == 2 and direct.get(WORKER_APPLICATION_NAME) == 1, direct
        assert direct.get("tripsage-scheduler-leader") == 1, direct
        assert direct.get("tripsage-realtime-listen") == 1, direct
    finally:
        await asyncio.to_thread(replica.stop)


def test_chaos_short_through_session_pooling(bouncers: dict[str, pgbouncer.Bouncer]) -> None:
    out = run_script("bench/chaos.py", "--short", "--pgbouncer", "session")
    assert "FAIL" not in out and "| no webhook event lost | pass |" in out
    assert "every cron tick accounted for | pass" in out and "through pgbouncer (session pooling)" in out
