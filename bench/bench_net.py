"""pg_net emulation benchmark: `net.http_post` requests per second, end to end, beside pg_net's documented 200/s.

End to end means: N `net.http_post` calls committed in one transaction (the request functions' own net.wake() wakes
the worker at commit), until N response rows are stored in net._http_response. The receiver is Debian's nginx on a
loopback port answering 200 (bench_webhooks.Nginx). The runtime is a real `tripsage serve` process
(testkit/harness.py) against the embedded PostgreSQL. Runs at pg_net's default pg_net.batch_size (200) and at 1,000
(set with ALTER DATABASE between runs, which the worker reads for every batch).

Run: .venv/bin/python bench/bench_net.py [--full] [--requests 5000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_webhooks import Nginx  # noqa: E402
from testkit.harness import Cluster, Replica, machine, new_encryption_key  # noqa: E402

PG_NET_DOCUMENTED = 200.0  # requests/s, Supabase docs ("reliably execute up to 200 requests per second")
WAIT_LIMIT = 600.0  # seconds before a run is declared stuck


def run(url: str, target: str, requests: int, batch_size: int) -> float:
    """requests/s from the commit of `requests` net.http_post calls to their last stored response."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE net._http_response")
        database = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("ALTER DATABASE {} SET pg_net.batch_size = {}").format(database, sql.Literal(batch_size)))
        began = time.perf_counter()
        with conn.transaction():
            conn.execute(
                "SELECT net.http_post(%s, jsonb_build_object('n', n)) FROM generate_series(1, %s) n",
                [target, requests],
            )
        while time.perf_counter() - began < WAIT_LIMIT:
            row = conn.execute("SELECT count(*) FROM net._http_response").fetchone()
            if row is not None and row[0] >= requests:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - began
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status_code = 200), count(*) FROM net._http_response"
        ).fetchone()
    assert row is not None and row[0] == row[1] == requests, f"stored {row}, expected {requests} answered 200"
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the issue-sized run (20,000 requests per run)")
    parser.add_argument("--requests", type=int, default=None, help="net.http_post calls per run")
    args = parser.parse_args()
    args.requests = args.requests or (20000 if args.full else 5000)

    nginx = Nginx()
    nginx.start()
    cluster = Cluster()
    cluster.start()
    replica = Replica(cluster.url, new_encryption_key())
    logs = Path(tempfile.mkdtemp(prefix="tsg-bench-logs-"))
    try:
        replica.start(logs)
        replica.wait_healthy()
        run(cluster.url, nginx.url, 200, 200)  # warm-up: connections, plans
        rates = {batch: run(cluster.url, nginx.url, args.requests, batch) for batch in (200, 1000)}
    finally:
        replica.stop()
        cluster.close()
        nginx.stop()
        shutil.rmtree(logs, ignore_errors=True)

    print("## pg_net emulation\n")
    print(
        f"{machine()}; receiver: Debian nginx, 1 worker, answering 200; {args.requests:,} `net.http_post` calls "
        "queued in one transaction per run, timed from the start of that transaction (queueing included) "
        "to the last response row stored.\n"
    )
    print("| figure | ours | baseline |")
    print("|---|---:|---|")
    for batch, rate in rates.items():
        print(
            f"| requests/s end to end, pg_net.batch_size = {batch} | {rate:,.0f} "
            f"| pg_net {PG_NET_DOCUMENTED:.0f} (documented): {rate / PG_NET_DOCUMENTED:.1f}x |"
        )


if __name__ == "__main__":
    main()
