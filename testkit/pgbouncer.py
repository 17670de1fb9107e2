"""A real PgBouncer (Debian's package) in front of a test server: its own config in a temp dir, a free loopback port,
run as the postgres OS user when we are root (PgBouncer refuses to run as root)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import psycopg

from testkit import servers

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
START_TIMEOUT = 30.0  # seconds
PoolMode = Literal["session", "transaction"]


def unavailable_reason() -> str | None:
    if not Path(PGBOUNCER).exists():
        return "pgbouncer is not installed (run scripts/system-postgres.sh install)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bouncer:
    mode: PoolMode
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    password: str | None

    def url(self, server_url: str) -> str:
        """`server_url` (a URL of the server behind) as reached through this pooler: same user and database."""
        info = psycopg.conninfo.conninfo_to_dict(server_url)
        user = quote(str(info.get("user", "postgres")))
        secret = f":{quote(self.password)}" if self.password else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{quote(str(info['dbname']))}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.directory, ignore_errors=True)

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on PgBouncer's admin console (simple protocol only, so through psql)."""
        env = {**os.environ, "PGPASSWORD": self.password or ""}
        result = subprocess.run(
            [str(servers.SYSTEM_BIN / "psql"), "-X", "-A", "-F", "\t", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", "pgbouncer", "-c", f"SHOW {what}"],
            capture_output=True, text=True, timeout=30, env=env, check=True,
        )  # fmt: skip
        lines = [line for line in result.stdout.splitlines() if line and not line.startswith("(")]
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start(
    server_url: str,
    mode: PoolMode,
    *,
    users: tuple[str, ...] = ("postgres", "tripsage_automation"),
    pool_size: int = 60,
) -> Bouncer:
    """A pgbouncer in `mode` forwarding every database to the server of `server_url` (host and port taken from it).

    The server's password (the embedded server's TCP login) is given to PgBouncer in its userlist, so clients use the
    same URL credentials; a trust server (the system one) needs none.
    """
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    password = str(info["password"]) if info.get("password") else None
    directory = servers.make_shared_tempdir("tsg-pgbouncer-")
    port = _free_port()
    secret = password or ""
    (directory / "userlist.txt").write_text("".join(f'"{user}" "{secret}"\n' for user in users))
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={info.get("host", "127.0.0.1")} port={info.get("port", 5432)}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {"scram-sha-256" if password else "trust"}
auth_file = {directory}/userlist.txt
pool_mode = {mode}
max_client_conn = 1000
default_pool_size = {pool_size}
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
server_login_retry = 1
admin_users = {users[0]}
"""
    )
    command = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
        for entry in directory.iterdir():
            shutil.chown(entry, "postgres", "postgres")
            entry.chmod(0o600)
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/"
    )
    bouncer = Bouncer(mode, port, directory, process, password)
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if process.poll() is not None:
            log = bouncer.log()
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited at start:\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return bouncer
        except OSError:
            time.sleep(0.05)
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port}")
