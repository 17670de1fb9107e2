"""The real PostgreSQL servers the suite runs against: the embedded wheel, and the system server.

Each server gets a template database, built once per session by the migration runner; each test gets its own
database created from it (`CREATE DATABASE t_x TEMPLATE tpl`), dropped with FORCE afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tripsage.db.embedded import EmbeddedPostgres, bin_dir

REPO = Path(__file__).resolve().parents[1]
SYSTEM_SCRIPT = REPO / "scripts" / "system-postgres.sh"
SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE = "tripsage_template"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_shared_tempdir(prefix: str) -> Path:
    """A temp dir the PostgreSQL OS user can enter (pytest's own tmp dirs are 0700 and owned by us)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def url_for(base: str, database: str) -> str:
    """`base` (a libpq URL to some database) pointed at `database`."""
    info = psycopg.conninfo.conninfo_to_dict(base)
    info["dbname"] = database
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


@dataclass
class Server:
    name: str
    admin_url: str  # the postgres database, as the superuser
    bin_dir: Path  # pg_dump and psql matching the server's major version
    data_dir: Path | None = None
    embedded: EmbeddedPostgres | None = None

    def url(self, database: str) -> str:
        return url_for(self.admin_url, database)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)

    def create_database(self, template: str | None = TEMPLATE) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            if template:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        psycopg.sql.Identifier(name), psycopg.sql.Identifier(template)
                    )
                )
            else:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return name

    @contextlib.contextmanager
    def fresh_database(self, template: str | None = TEMPLATE) -> Iterator[str]:
        """A new database (deployed when made from the template, empty with None) for the block; its URL."""
        name = self.create_database(template)
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
            )


def start_embedded() -> Server:
    data_dir = make_shared_tempdir("tsg-embedded-")
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    return Server("embedded", url, bin_dir(), data_dir, server)


def stop_embedded(server: Server) -> None:
    if server.embedded is not None:
        server.embedded.stop()
    if server.data_dir is not None:
        shutil.rmtree(server.data_dir, ignore_errors=True)


def system_unavailable_reason() -> str | None:
    if not SYSTEM_SCRIPT.exists():
        return f"{SYSTEM_SCRIPT} is missing"
    if not (SYSTEM_BIN / "postgres").exists():
        return "PostgreSQL 15 is not installed (run scripts/system-postgres.sh install)"
    if not Path("/usr/share/postgresql/15/extension/vector.control").exists():
        return "pgvector is not built for PostgreSQL 15 (run scripts/system-postgres.sh install)"
    if not any(Path("/usr/share/postgresql/15/extension").glob("pg_cron.control")):
        return "pg_cron is not installed for PostgreSQL 15 (run scripts/system-postgres.sh install)"
    if os.geteuid() != 0:
        return "the system server is provisioned as root (it runs as the postgres OS user)"
    return None


def start_system(port: int) -> Server:
    data_dir = Path(tempfile.mkdtemp(prefix="tsg-system-", dir="/tmp"))
    data_dir.chmod(0o755)
    result = subprocess.run(
        ["bash", str(SYSTEM_SCRIPT), "start", str(data_dir), str(port)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    url = result.stdout.strip().splitlines()[-1]
    return Server("system", url, SYSTEM_BIN, data_dir)


def stop_system(server: Server) -> None:
    if server.data_dir is not None:
        subprocess.run(
            ["bash", str(SYSTEM_SCRIPT), "stop", str(server.data_dir)],
            check=False,
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(server.data_dir, ignore_errors=True)
