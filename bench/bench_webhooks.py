"""Webhooks benchmark: signed, logged deliveries per second and commit-to-receiver latency, to nginx.

The receiver is Debian's nginx on a loopback port (installed with apt-get when missing; config in a temp dir) answering
200 to every POST and logging the arrival time ($msec) and webhook-id of each request. Beside our figures, in the same
run: a raw aiohttp client posting the same bodies to the same nginx with no database (the ceiling on this machine),
and pg_net's documented 200 requests/s.

- Throughput: N deliveries queued ahead (not yet due) are made due at once; time until the outbox is empty.
- Latency: events committed one per transaction at a fixed rate; latency = nginx's arrival time - the commit's return.

The runtime is a real `tripsage serve` process (testkit/harness.py) against the embedded PostgreSQL.
Run: .venv/bin/python bench/bench_webhooks.py [--events 20000] [--rates 200,1000] [--seconds 10]
With --profile DIR, the throughput burst is also profiled: py-spy samples the replica (DIR/replica.txt, raw collapsed
stacks), pg_stat_statements' top statements by total time are written to DIR/statements.txt, and where `perf` is
installed and allowed, PostgreSQL's processes are sampled by C function (DIR/postgres_perf.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg
from psycopg.types.json import Jsonb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit.harness import (  # noqa: E402
    Cluster,
    Replica,
    cost_line,
    cpu_seconds,
    free_port,
    machine,
    new_encryption_key,
    percentile,
)

from tripsage import standard_webhooks  # noqa: E402
from tripsage.crypto import Keyring  # noqa: E402
from tripsage.db import vault  # noqa: E402

PG_NET_DOCUMENTED = 200.0  # requests/s, Supabase docs ("reliably execute up to 200 requests per second")
GOAL_CEILING_FRACTION = 0.5  # of the raw client's rate (issue #19)
GOAL_P99 = 50.0  # ms, commit to receiver
GOAL_P99_RATE = 1000.0  # events/s at which GOAL_P99 holds
# Requests in flight, the same for the raw client and for the dispatcher (the endpoint's max_concurrency): aiohttp's
# and the kernel's CPU per request grows with open connections (the raw client: 87 us at 64, 130 us at 256 on the
# 2-core machine), so the two sides are compared at one concurrency, the one where the raw client is fastest.
IN_FLIGHT = 64

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    log_format arrival '$msec $http_webhook_id';
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            access_log {dir}/arrivals.log arrival buffer=64k flush=1s;
            return 200 "ok";
        }}
    }}
}}
"""


class Nginx:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tsg-nginx-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def ensure_installed() -> str:
        found = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
        if not found:
            subprocess.run(["apt-get", "install", "-y", "-q", "nginx"], check=True, capture_output=True)
            found = shutil.which("nginx") or "/usr/sbin/nginx"
        return str(found)

    def start(self) -> None:
        binary = self.ensure_installed()
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port))
        self.process = subprocess.Popen([binary, "-c", str(conf), "-p", str(self.dir)], stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                with tcp_probe(self.port):
                    return
            except OSError:
                time.sleep(0.025)
        raise RuntimeError("nginx did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def arrivals(self) -> dict[str, float]:
        """webhook-id -> arrival time (Unix seconds), from the access log."""
        found: dict[str, float] = {}
        path = self.dir / "arrivals.log"
        if path.exists():
            for line in path.read_text().splitlines():
                stamp, _, webhook_id = line.partition(" ")
                if webhook_id and webhook_id != "-":
                    found.setdefault(webhook_id, float(stamp))
        return found

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def point_at_nginx(db_url: str, encryption_key: str, nginx: Nginx) -> None:
    """The webhook config every benchmark delivering to nginx uses: booking.confirmed, IN_FLIGHT requests in flight
    (per runtime process)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhook_configs (name, url, events, secret, max_concurrency) "
            "VALUES ('nginx', %s, '{booking.confirmed}', %s, %s)",
            [
                nginx.url,
                vault.encrypt_webhook_secrets(Keyring(encryption_key), [standard_webhooks.generate_secret()]),
                IN_FLIGHT,
            ],
        )


def sample_bodies(count: int) -> list[bytes]:
    """Bodies like the dispatcher's for the burst's events (it builds them in its claim statement, queries.sql)."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [f'{{"type":"booking.confirmed","timestamp":"{stamp}","data":{{"n": {n}}}}}'.encode() for n in range(count)]


def tcp_probe(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=0.2)


async def raw_ceiling(url: str, bodies: list[bytes]) -> float:
    """Requests/s of a bare aiohttp client posting these bodies (signed like ours) with no database."""
    key = standard_webhooks.secret_key(standard_webhooks.generate_secret())
    queue = iter(enumerate(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as session:

        async def worker() -> None:
            for n, body in queue:
                headers = standard_webhooks.headers(f"msg_raw{n}", int(time.time()), body, [key])
                headers["Content-Type"] = "application/json"
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return len(bodies) / (time.perf_counter() - began)


def wait_empty(url: str, limit: float = 600.0) -> None:
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        while time.perf_counter() - began < limit:
            # Whether any delivery is still pending (webhook_outbox_depth() counts them all: at 20,000 every 20 ms,
            # that count alone took a sixth of PostgreSQL's time during the burst, CPU the runtime competes for).
            row = conn.execute("SELECT NOT EXISTS (SELECT FROM webhooks.deliveries WHERE queued)").fetchone()
            if row is not None and row[0]:
                return
            time.sleep(0.02)
    raise RuntimeError("the outbox did not empty")


@dataclass
class Burst:
    rate: float  # deliveries/s
    postgres_cpu_s: float
    runtime_cpu_s: float


class Profile:
    """py-spy on the replica, pg_stat_statements and PostgreSQL's CPU per kind of process (backend, walsender,
    autovacuum...), over one stretch of the run (see --profile)."""

    def __init__(self, out: Path | None, cluster: Cluster, pid: int) -> None:
        self.out, self.cluster, self.url, self.pid = out, cluster, cluster.url, pid
        self.spy: subprocess.Popen[bytes] | None = None
        self.perf: subprocess.Popen[bytes] | None = None
        self.cpu: dict[int, float] = {}

    def __enter__(self) -> Profile:
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA extensions")
                conn.execute("SELECT extensions.pg_stat_statements_reset()")
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self.spy = subprocess.Popen(
                [spy, "record", "-p", str(self.pid), "-r", "200", "-f", "raw", "-o", str(self.out / "replica.txt")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            perf = shutil.which("perf")
            if perf is not None:  # where PostgreSQL's own CPU goes, by C function (when the kernel allows it)
                self.perf = subprocess.Popen(
                    [perf, "record", "-F", "999", "-g", "-a", "-o", str(self.out / "postgres.perf.data")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            time.sleep(1.0)  # py-spy and perf attach
            self.cpu = {pid: cpu_seconds([pid]) for pid in self.cluster.pids()}
        return self

    def _processes(self) -> str:
        """CPU seconds used since __enter__ by PostgreSQL's processes, summed by kind (their process titles)."""
        kinds: dict[str, float] = {}
        for pid in self.cluster.pids():
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            # "postgres: tripsage tripsage 127.0.0.1(5432) idle" -> "postgres: tripsage tripsage"
            kind = " ".join(w for w in title.split()[:4] if "(" not in w and not w[:1].isdigit())
            kinds[kind] = kinds.get(kind, 0.0) + cpu_seconds([pid]) - self.cpu.get(pid, 0.0)
        return "".join(f"{cpu:8.2f} s  {kind}\n" for kind, cpu in sorted(kinds.items(), key=lambda kv: -kv[1]))

    def __exit__(self, *_: object) -> None:
        if self.out is None or self.spy is None:
            return
        (self.out / "postgres_processes.txt").write_text(self._processes())
        self.spy.send_signal(signal.SIGINT)
        self.spy.wait(timeout=60)
        if self.perf is not None:
            self.perf.send_signal(signal.SIGINT)
            self.perf.wait(timeout=60)
            report = subprocess.run(
                [
                    "perf",
                    "report",
                    "-i",
                    str(self.out / "postgres.perf.data"),
                    "--no-children",
                    "--stdio",
                    "--comms",
                    "postgres",
                    "--sort",
                    "dso,symbol",
                    "-g",
                    "none",
                    "--percent-limit",
                    "0.3",
                ],
                capture_output=True,
                text=True,
            )
            (self.out / "postgres_perf.txt").write_text(report.stdout)
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT total_exec_time, calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 160)"
                " FROM extensions.pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25"
            ).fetchall()
        total = sum(r[0] for r in rows) or 1.0
        lines = [
            f"{ms:10.1f} ms {100 * ms / total:5.1f}% {calls:8d} calls {n:8d} rows  {q}" for ms, calls, n, q in rows
        ]
        (self.out / "statements.txt").write_text("\n".join(lines) + "\n")


def throughput(cluster: Cluster, replica: Replica, events: int, profile_dir: Path | None) -> Burst:
    url = cluster.url
    with psycopg.connect(url) as conn, conn.transaction():
        # Queued but not due, in one transaction (else the dispatcher, woken by emit_event's NOTIFY, delivers some
        # before the clock starts): the runtime stays idle until they all become due at once.
        conn.execute(
            "SELECT emit_event('booking.confirmed', jsonb_build_object('n', n)) FROM generate_series(1, %s) n", [events]
        )
        conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = now() + interval '1 hour' WHERE status = 'pending'"
        )
    assert replica.process is not None
    with Profile(profile_dir, cluster, replica.process.pid):
        pids = cluster.pids()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE webhooks.deliveries SET next_attempt_at = now() WHERE status = 'pending'")
            pg_before, rt_before = cpu_seconds(pids), replica.cpu_seconds()
            # The clock starts once they are due: making 20,000 rows due is the benchmark's work, not the dispatcher's.
            began = time.perf_counter()
            conn.execute("NOTIFY tripsage_webhooks")
        wait_empty(url)
        elapsed = time.perf_counter() - began
        # Backends that connected during the burst count too (the pool may have grown).
        pg_cpu = cpu_seconds(sorted(set(pids) | set(cluster.pids()))) - pg_before
        rt_cpu = replica.cpu_seconds() - rt_before
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FROM webhooks.deliveries"
            " d JOIN webhooks.events e ON e.id = d.event_id WHERE (e.payload ? 'n')"
        ).fetchone()
        logs = conn.execute("SELECT count(*) FROM webhook_logs").fetchone()
    assert row is not None and row[0] == row[1] == events, row
    assert logs is not None and logs[0] >= events
    return Burst(events / elapsed, pg_cpu, rt_cpu)


async def latency(url: str, nginx: Nginx, rate: float, seconds: float) -> tuple[float, float, int]:
    """Commit events one per transaction at `rate`/s; (p50 ms, p99 ms, events)."""
    committed: dict[int, float] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        count = int(rate * seconds)
        began = time.perf_counter()
        for n in range(count):
            target = began + n / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            cursor = await conn.execute("SELECT emit_event('booking.confirmed', %s)", [Jsonb({"rate": rate, "n": n})])
            row = await cursor.fetchone()
            assert row is not None
            committed[int(row[0])] = time.time()
    await asyncio.to_thread(wait_empty, url)
    await asyncio.sleep(1.5)  # nginx flushes its access log every second
    arrivals = nginx.arrivals()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT event_id, webhook_id FROM webhooks.deliveries WHERE event_id = ANY(%s)", [list(committed)]
        ).fetchall()
    samples = [(arrivals[w] - committed[e]) * 1000 for e, w in rows if w in arrivals]
    return percentile(samples, 0.5), percentile(samples, 0.99), len(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the issue-sized run (20,000 events, 10 s per rate)")
    parser.add_argument("--events", type=int, default=None, help="deliveries in the throughput burst")
    parser.add_argument("--rates", default="200,1000", help="fixed event rates (events/s) for latency")
    parser.add_argument("--seconds", type=float, default=None, help="duration of each fixed-rate run")
    parser.add_argument("--profile", type=Path, default=None, help="profile the throughput burst into this directory")
    args = parser.parse_args()
    args.events = args.events or (20000 if args.full else 5000)
    args.seconds = args.seconds or (10.0 if args.full else 5.0)

    nginx = Nginx()
    nginx.start()
    cluster = Cluster()
    cluster.start()
    key = new_encryption_key()
    replica = Replica(cluster.url, key)
    logs = Path(tempfile.mkdtemp(prefix="tsg-bench-logs-"))
    try:
        point_at_nginx(cluster.url, key, nginx)
        replica.start(logs)
        replica.wait_healthy()
        bodies = sample_bodies(args.events)
        ceiling = asyncio.run(raw_ceiling(nginx.url, bodies))
        burst = throughput(cluster, replica, args.events, args.profile)
        ours = burst.rate
        lat = {
            rate: asyncio.run(latency(cluster.url, nginx, rate, args.seconds))
            for rate in (float(r) for r in args.rates.split(","))
        }
    finally:
        replica.stop()
        cluster.close()
        nginx.stop()
        shutil.rmtree(logs, ignore_errors=True)

    print("## Webhooks\n")
    print(
        f"{machine()}; receiver: Debian nginx, 1 worker, answering 200; {args.events:,} deliveries per burst; "
        f"{IN_FLIGHT} requests in flight for both the dispatcher (the endpoint's max_concurrency) and the raw client; "
        f"latency over {args.seconds:.0f} s per rate, one event per committed transaction.\n"
    )
    rows = [
        (
            "deliveries/s (signed, logged)",
            f"{ours:,.0f}",
            f"raw aiohttp {ceiling:,.0f}; pg_net {PG_NET_DOCUMENTED:.0f} (documented)",
            f">= {GOAL_CEILING_FRACTION}x raw",
        ),
        ("fraction of the raw ceiling", f"{ours / ceiling:.2f}x", "1.00x", f">= {GOAL_CEILING_FRACTION}x"),
        ("multiple of pg_net's documented rate", f"{ours / PG_NET_DOCUMENTED:.1f}x", "1x", "-"),
        (
            "CPU ms per 1,000 deliveries (PostgreSQL / runtime)",
            f"{burst.postgres_cpu_s * 1e6 / args.events:,.0f} / {burst.runtime_cpu_s * 1e6 / args.events:,.0f}",
            "-",
            "-",
        ),
    ]
    for rate, (p50, p99, n) in lat.items():
        goal = f"p99 <= {GOAL_P99:.0f} ms" if rate == GOAL_P99_RATE else "-"
        rows.append((f"commit->receiver p50 at {rate:.0f} events/s ({n} events)", f"{p50:.1f} ms", "-", "-"))
        rows.append((f"commit->receiver p99 at {rate:.0f} events/s", f"{p99:.1f} ms", "-", goal))
    print("| figure | ours | baseline | goal |")
    print("|---|---:|---|---|")
    for figure, value, baseline, goal in rows:
        print(f"| {figure} | {value} | {baseline} | {goal} |")
    print()
    print(cost_line("webhook deliveries", args.events, burst.postgres_cpu_s, burst.runtime_cpu_s, "signed, logged"))


if __name__ == "__main__":
    main()
