"""A real PostgreSQL 15 primary and streaming standby (the system build, with pg_cron and pgvector), started like the
system server (scripts/system-postgres.sh, as the postgres OS user) on free loopback ports.

The standby is made by pg_basebackup and replicates synchronously (`synchronous_standby_names = '*'`,
`synchronous_commit = on`): a commit the client saw is on both. `kill_primary` stops the primary with
`pg_ctl -m immediate` (a crash: no shutdown checkpoint, clients cut); `promote` makes the standby the new primary.
The runtime gets `multi_host_url`: both nodes with `target_session_attrs=read-write`, as on RDS/Cloud SQL/Patroni.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from testkit import servers

PROMOTE_TIMEOUT = 60  # seconds
SYNC_TIMEOUT = 60.0  # seconds for the standby to stream synchronously


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _run(command: list[str], timeout: float = 120) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd="/", check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    data_dir: Path
    port: int = field(default_factory=_free_port)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _run(["bash", str(servers.SYSTEM_SCRIPT), "start", str(self.data_dir), str(self.port)])

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(str(servers.SYSTEM_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"),
                capture_output=True,
                timeout=120,
                cwd="/",
                check=False,
            )


@dataclass
class Pair:
    primary: Node
    standby: Node
    root: Path

    def multi_host_url(self, database: str) -> str:
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write&connect_timeout=2"

    def kill_primary(self) -> None:
        """An immediate stop: the primary's processes exit at once, as in a crash."""
        self.primary.stop("immediate")

    def promote(self) -> None:
        _run(
            _as_postgres(
                str(servers.SYSTEM_BIN / "pg_ctl"), "-D", str(self.standby.data_dir), "-w", "-t", str(PROMOTE_TIMEOUT),
                "promote",
            )
        )  # fmt: skip

    def close(self) -> None:
        self.primary.stop("immediate")
        self.standby.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_pair(database: str = "tripsage") -> Pair:
    """The primary (with `database` created, empty), then its synchronous standby, streaming."""
    root = servers.make_shared_tempdir("tsg-pair-")
    pair = Pair(Node(root / "primary"), Node(root / "standby"), root)
    try:
        pair.primary.start()
        with psycopg.connect(pair.primary.url(), autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(database)))
        pair.standby.data_dir.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(pair.standby.data_dir, "postgres", "postgres")
        _run(
            _as_postgres(
                str(servers.SYSTEM_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(pair.primary.port),
                "-U", "postgres", "-D", str(pair.standby.data_dir), "-X", "stream", "-R", "-c", "fast",
            )
        )  # fmt: skip
        pair.standby.start()
        with psycopg.connect(pair.primary.url(), autocommit=True) as conn:
            # Synchronous from now on (the test clusters default to synchronous_commit = off, for speed).
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("ALTER SYSTEM SET synchronous_commit = on")
            conn.execute("SELECT pg_reload_conf()")
            end = time.monotonic() + SYNC_TIMEOUT
            while time.monotonic() < end:
                row = conn.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'"
                ).fetchone()
                if row:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the standby did not become a synchronous streaming replica")
        return pair
    except BaseException:
        pair.close()
        raise
