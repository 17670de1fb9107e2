"""`tripsage serve` against servers it cannot fully use, from outside (the real CLI, real PostgreSQL 15 servers):

- a standby (read-only): the runtime does not spin in an error loop; /health and `tripsage verify` say "read-only
  server" and what to do; once the standby is promoted the runtime starts its components by itself;
- a server with a small max_connections: replicas that would not fit are refused at start with one clear line naming
  the budget and the fixes, and the replica that fits keeps running.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from testkit import replication, servers
from testkit.harness import JWT_SECRET, Replica, new_encryption_key
from testkit.runtime import TEST_JWT_SECRET, detailed_health, run_tripsage
from testkit.servers import free_port

from tests.conftest import IN_CI, MIGRATIONS
from tripsage.db.migrations import Deployer
from tripsage.net import WORKER_APPLICATION_NAME

pytestmark = pytest.mark.system
PATIENCE = 60.0  # seconds a wait may take before the test fails (a bound, not a measurement)
SMALL_MAX_CONNECTIONS = 16
POOL_MAX_SIZE = 6  # one replica: up to 6 + 4 LISTEN + 1 leader = 11 connections; a second one cannot fit in 16


@pytest.fixture(autouse=True)
def _system_postgres() -> None:
    reason = servers.system_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the topology tests, but: {reason}")
        pytest.skip(reason)


def health(replica: Replica) -> dict[str, Any] | None:
    """/health with the service_role key (its details: read_only, the error), or None while nothing answers."""
    try:
        return detailed_health(replica.base_url, JWT_SECRET)
    except urllib.error.HTTPError as error:  # 503: the report is in the body
        return dict(json.loads(error.read()))
    except OSError:
        return None


def wait_for(check: Any, what: str) -> Any:
    end = time.monotonic() + PATIENCE
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def cli_env(url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
    env.update({"DATABASE_URL": url, "TRIPSAGE_DATA_DIR": str(tmp_path), "TRIPSAGE_JWT_SECRET": TEST_JWT_SECRET})
    env.update(extra)
    return env


@pytest.fixture
def pair() -> Iterator[replication.Pair]:
    started = replication.start_pair("tripsage")
    try:
        asyncio.run(Deployer(started.primary.url("tripsage"), MIGRATIONS).deploy())
        yield started
    finally:
        started.close()


def test_a_standby_is_reported_read_only_then_used_once_promoted(pair: replication.Pair, tmp_path: Path) -> None:
    url = pair.standby.url("tripsage")
    verify = run_tripsage("verify", "--json", env=cli_env(url, tmp_path))
    assert verify.returncode == 1, verify.stderr
    report = json.loads(verify.stdout)
    assert report["ok"] is False
    assert report["checks"][0]["component"] == "server" and report["checks"][0]["status"] == "error"
    assert report["checks"][0]["details"].startswith("read-only server")
    assert "target_session_attrs=read-write" in report["checks"][0]["details"]

    replica = Replica(url, new_encryption_key(), extra_env={"TRIPSAGE_DATA_DIR": str(tmp_path / "replica")})
    replica.start(tmp_path)
    try:
        report = wait_for(lambda: health(replica), "/health to answer")
        assert report["status"] == "error" and report["database"]["read_only"] is True
        assert report["database"]["error"].startswith("read-only server") and report["components"] == {}
        time.sleep(6)  # longer than the runtime's recheck interval: it must not have logged an error per attempt
        assert replica.process is not None and replica.process.poll() is None
        assert replica.log_path is not None
        log = replica.log_path.read_text(errors="replace")
        assert log.count("read-only server") == 1, log
        assert "Traceback" not in log and " ERROR " not in log

        pair.kill_primary()
        pair.promote()
        report = wait_for(
            lambda: (h := health(replica)) and h["status"] == "ok" and h, "the runtime to start once promoted"
        )
        assert report["components"]["scheduler"]["status"] == "ok"
        assert "read_only" not in report["database"]
    finally:
        replica.stop()


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[str]:
    node = replication.Node(servers.make_shared_tempdir("tsg-small-") / "data")
    node.start()
    try:
        with psycopg.connect(node.url(), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {SMALL_MAX_CONNECTIONS}")
            conn.execute("CREATE DATABASE tripsage")
        node.stop()
        node.start()
        asyncio.run(Deployer(node.url("tripsage"), MIGRATIONS).deploy())
        yield node.url("tripsage")
    finally:
        node.stop("immediate")
        shutil.rmtree(node.data_dir.parent, ignore_errors=True)


def test_replicas_beyond_the_connection_budget_are_refused_clearly(small_server: str, tmp_path: Path) -> None:
    key = new_encryption_key()
    budget = {"TRIPSAGE_POOL_MAX_SIZE": str(POOL_MAX_SIZE)}
    first = Replica(small_server, key, extra_env={**budget, "TRIPSAGE_DATA_DIR": str(tmp_path / "r0")})
    first.start(tmp_path)
    try:
        first.wait_healthy()
        for n in (1, 2):
            refused = run_tripsage(
                "serve",
                "--port",
                str(free_port()),
                env=cli_env(small_server, tmp_path / f"r{n}", **budget),
            )
            assert refused.returncode == 1, refused.stderr
            lines = [line for line in refused.stderr.splitlines() if line.strip()]
            assert len(lines) == 1, refused.stderr
            assert lines[0].startswith("error: not enough free connections")
            assert f"needs up to {POOL_MAX_SIZE + 5}" in lines[0] and "TRIPSAGE_POOL_MAX_SIZE" in lines[0]
            assert f"max_connections={SMALL_MAX_CONNECTIONS}" in lines[0]
        report = health(first)
        assert report is not None and report["status"] == "ok", report

        # The server runs out while the replica runs: its LISTEN sessions die and cannot come back for a while.
        hogs = []
        with psycopg.connect(small_server, autocommit=True) as admin:
            try:
                while True:
                    hogs.append(psycopg.connect(small_server, autocommit=True))
            except psycopg.OperationalError as error:
                assert "too many clients" in str(error)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN"
                " ('tripsage-listen', %s)",
                [WORKER_APPLICATION_NAME],
            )
            time.sleep(5)  # several reconnect attempts, all refused by the server
            assert first.process is not None and first.process.poll() is None, "the replica must not exit"
            assert health(first) is not None, "/health must still answer"
            for hog in hogs:
                hog.close()

            def listening() -> bool:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('tripsage-listen', %s)",
                    [WORKER_APPLICATION_NAME],
                ).fetchone()
                return bool(row and row[0] == 3)

            wait_for(listening, "the LISTEN sessions to come back")
        assert first.log_path is not None
        assert "Traceback" not in first.log_path.read_text(errors="replace")
    finally:
        first.stop()
