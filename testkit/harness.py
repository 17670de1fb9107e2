"""What the chaos, soak and scale-out runs share: a real PostgreSQL cluster and real runtime replicas.

A `Cluster` is the embedded server in a temp dir with a TCP port (restartable in place); a `Replica` is one
`python -m tripsage serve` process against it, with the project secrets every replica shares. Nothing here is a
stand-in: the replicas are the same processes an operator runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit import servers  # noqa: E402
from testkit.servers import free_port  # noqa: E402
from tripsage.db.embedded import EmbeddedPostgres  # noqa: E402
from tripsage.db.migrations import Deployer  # noqa: E402

MIGRATIONS = REPO / "supabase" / "migrations"
JWT_SECRET = "tripsage-bench-jwt-secret-0123456789-abcdefghijkl"
HEALTH_TIMEOUT = 60.0  # seconds a replica may take to answer /health with the database ok
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


COST_MARK = "<!-- cost "  # a benchmark's cost line; bench/run.py gathers them into RESULTS.md's cost table


def cost_line(work: str, count: int, postgres_cpu_s: float, runtime_cpu_s: float, note: str = "") -> str:
    """One line for the report's cost table: CPU ms per 1,000 units of `work` (e.g. "webhook deliveries"), from
    the CPU seconds PostgreSQL's processes and the runtime's process used while `count` units were done."""
    record = {
        "work": work,
        "count": count,
        "postgres_ms_per_1000": postgres_cpu_s * 1000 * 1000 / count,
        "runtime_ms_per_1000": runtime_cpu_s * 1000 * 1000 / count,
        "note": note,
    }
    return f"{COST_MARK}{json.dumps(record)} -->"


def parse_cost_lines(text: str) -> list[dict[str, object]]:
    """The cost records in a benchmark's output (see `cost_line`)."""
    return [
        json.loads(line.strip().removeprefix(COST_MARK).removesuffix("-->"))
        for line in text.splitlines()
        if line.strip().startswith(COST_MARK)
    ]


def machine() -> str:
    """Cores and memory of this machine, for the report."""
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return f"{os.cpu_count()} cores, {memory_kib / 1024 / 1024:.1f} GiB memory"


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the live processes `pids` have used so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


@dataclass
class Cluster:
    """The embedded PostgreSQL in its own temp dir, on a TCP port, with TripSage deployed in `database`."""

    database: str = "tripsage"
    port: int = field(default_factory=free_port)
    data_dir: Path = field(default_factory=lambda: servers.make_shared_tempdir("tsg-bench-"))

    def __post_init__(self) -> None:
        self.server = EmbeddedPostgres(self.data_dir, port=self.port)

    @property
    def url(self) -> str:
        tcp = self.server.tcp_url(self.database)
        assert tcp is not None
        return tcp

    def start(self) -> None:
        self.server.start()
        admin = self.server.tcp_url()
        assert admin is not None
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if not exists:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(self.database)))
        asyncio.run(Deployer(self.url, MIGRATIONS).deploy())

    def pids(self) -> list[int]:
        """The postmaster and its children (backends, background workers) now."""
        master = int((self.server.pgdata / "postmaster.pid").read_text().split()[0])
        pids = [master]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(entry.name))
                except (OSError, IndexError, ValueError):
                    continue
        return pids

    def pin(self, cpus: set[int]) -> None:
        """Run every server process on `cpus` only; backends forked later inherit the postmaster's set."""
        for pid in self.pids():
            try:
                os.sched_setaffinity(pid, cpus)
            except ProcessLookupError:  # a short-lived child (an autovacuum worker) that exited meanwhile
                continue

    def restart(self) -> float:
        """Stop (fast) and start the server again; returns the seconds it was down."""
        began = time.perf_counter()
        self.server.stop()
        self.server.start()
        return time.perf_counter() - began

    def close(self) -> None:
        try:
            self.server.stop()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Replica:
    """One `tripsage serve` process against the cluster."""

    database_url: str
    encryption_key: str
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def detailed_health(self, timeout: float = 5) -> dict[str, object]:
        """/health with the service_role key (without it, only the statuses are shown)."""
        from testkit.runtime import detailed_health  # imports the server: only where a caller asks

        return detailed_health(self.base_url, JWT_SECRET, timeout=timeout)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL", "DATABASE_URL"}}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "TRIPSAGE_JWT_SECRET": JWT_SECRET,
                "TRIPSAGE_ENCRYPTION_KEY": self.encryption_key,
                "TRIPSAGE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
                "TRIPSAGE_NET_ALLOW_HOSTS": "127.0.0.1",
                # Every benchmark client comes from 127.0.0.1: the per-address (and per-user) socket limits would
                # refuse the 500-subscriber runs with 429, so they are raised here; the per-process limit still holds.
                "TRIPSAGE_REALTIME_MAX_CONNECTIONS_PER_IP": "100000",
                "TRIPSAGE_REALTIME_MAX_CONNECTIONS_PER_USER": "100000",
                "TRIPSAGE_PUBLIC_URL": self.base_url,
                "TRIPSAGE_LOG_LEVEL": "warning",
                "HF_HUB_OFFLINE": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, log_dir: Path) -> None:
        self.log_path = log_dir / f"replica-{self.port}.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tripsage", "serve", "--port", str(self.port)],
                env=self.env(),
                cwd=REPO,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> float:
        """Seconds until /health reports the database ok; raises if the process dies or time runs out."""
        began = time.perf_counter()
        while time.perf_counter() - began < timeout:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"replica on port {self.port} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as response:
                    if json.loads(response.read())["database"]["status"] == "ok":
                        return time.perf_counter() - began
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica on port {self.port} not healthy after {timeout} s; see {self.log_path}")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system, every thread) the replica process has used so far."""
        return cpu_seconds([self.process.pid]) if self.process is not None else 0.0

    def rss_bytes(self) -> int:
        """Resident memory of the replica process (0 when it is not running)."""
        if self.process is None or self.process.poll() is not None:
            return 0
        statm = Path(f"/proc/{self.process.pid}/statm").read_text().split()
        return int(statm[1]) * PAGE_SIZE


def new_encryption_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
