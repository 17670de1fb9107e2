"""The embedded server's lifecycle: init, reuse, clean stop, stale-lock recovery, clear errors."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from testkit import servers

from tripsage.db.connector import connect
from tripsage.db.embedded import EmbeddedPostgres
from tripsage.exceptions import DatabaseUnavailable, EmbeddedServerError


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = servers.make_shared_tempdir("tsg-lifecycle-")
    try:
        yield path
    finally:
        EmbeddedPostgres(path).stop()
        shutil.rmtree(path, ignore_errors=True)


def query(url: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        return None if row is None else row[0]


def test_start_reuse_and_stop(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir)
    url = first.start()
    assert first.started_here
    assert query(url) == "pg_stat_statements"
    second = EmbeddedPostgres(data_dir)
    assert second.start() == url
    assert not second.started_here  # reused, so it will not stop the first one's server
    first.stop()
    assert not first.is_running()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
    assert EmbeddedPostgres(data_dir).start() == url  # the same cluster again, no initdb


def test_stale_lock_after_a_crash_is_recovered(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    server.start()
    pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (data_dir / "pgdata" / "postmaster.pid").exists()
    restarted = EmbeddedPostgres(data_dir)
    assert query(restarted.start()) == "pg_stat_statements"


def test_corrupt_data_dir_is_a_clear_error(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    server.start()
    server.stop()
    (data_dir / "pgdata" / "global" / "pg_control").unlink()
    with pytest.raises(EmbeddedServerError, match=r"is corrupt \(global/pg_control is missing\)"):
        EmbeddedPostgres(data_dir).start()


def test_foreign_directory_is_refused(data_dir: Path) -> None:
    (data_dir / "pgdata").mkdir()
    (data_dir / "pgdata" / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedServerError, match="is not a PostgreSQL data directory"):
        EmbeddedPostgres(data_dir).start()


async def test_tcp_port_with_password_and_wrong_password(data_dir: Path) -> None:
    from testkit.servers import free_port

    server = EmbeddedPostgres(data_dir, port=free_port())
    server.start()
    tcp = server.tcp_url()
    assert tcp is not None
    conn = await connect(tcp)
    await conn.close()
    wrong = tcp.replace(":postgres@", ":wrong@")
    with pytest.raises(DatabaseUnavailable, match=r"password authentication failed for user \"postgres\""):
        await connect(wrong)
