"""Scale-out: webhook deliveries/s and realtime messages/s with 1, 2 and 3 `tripsage serve` replicas against one
PostgreSQL, with the CPU each side used, to show where PostgreSQL itself saturates.

- Webhooks: N deliveries made due at once (as in bench_webhooks), delivered to Debian's nginx; deliveries/s until
  the outbox is empty.
- Realtime: C websocket clients spread evenly over the replicas, each subscribed as a user to INSERTs on `trips`;
  rounds of one trip per user are committed; messages/s until every client has every change of its user.
- CPU: seconds of CPU used by PostgreSQL (the postmaster and its children) and by the replicas during each run, as a
  share of the machine's cores. When PostgreSQL plus the replicas use every core, more replicas cannot help.

Goal from the issue: 2 replicas >= 1.6x one, until PostgreSQL saturates.
Run: .venv/bin/python bench/bench_scaleout.py [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_webhooks import Nginx, point_at_nginx, wait_empty
from testkit.harness import JWT_SECRET, Cluster, Replica, cpu_seconds, machine, new_encryption_key
from testkit.workload import RealtimeFleet, create_users, insert_trip_rounds, wait_received

CORES = os.cpu_count() or 1


class Meter:
    """CPU shares of PostgreSQL and of the replicas over one measured interval."""

    def __init__(self, cluster: Cluster, replicas: list[Replica]) -> None:
        self.cluster, self.replicas = cluster, replicas

    def _now(self) -> tuple[float, float, float, float]:
        replica_pids = [r.process.pid for r in self.replicas if r.process is not None]
        return (
            time.perf_counter(),
            cpu_seconds(self.cluster.pids()),
            cpu_seconds(replica_pids),
            cpu_seconds([os.getpid()]),
        )

    def __enter__(self) -> Meter:
        self.start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        wall = end[0] - self.start[0]
        self.seconds = wall
        self.pg_share = (end[1] - self.start[1]) / wall / CORES
        self.replica_share = (end[2] - self.start[2]) / wall / CORES
        self.client_share = (end[3] - self.start[3]) / wall / CORES  # this process: the receiver or the clients


def webhook_round(url: str, events: int, meter: Meter) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE webhooks.events CASCADE")
        conn.execute("TRUNCATE public.webhook_logs")
        conn.execute(
            "SELECT emit_event('booking.confirmed', jsonb_build_object('n', n)) FROM generate_series(1, %s) n", [events]
        )
        conn.execute(
            "UPDATE webhooks.deliveries SET next_attempt_at = now() + interval '1 hour' WHERE status = 'pending'"
        )
        with meter:
            conn.execute("UPDATE webhooks.deliveries SET next_attempt_at = now() WHERE status = 'pending'")
            conn.execute("NOTIFY tripsage_webhooks")
            wait_empty(url)
        row = conn.execute("SELECT count(*) FROM webhooks.deliveries WHERE status = 'succeeded'").fetchone()
    assert row is not None and row[0] == events, row
    return events / meter.seconds


async def realtime_round(
    url: str, replicas: list[Replica], users: list[str], clients: int, rounds: int, meter: Meter
) -> float:
    fleet = RealtimeFleet([r.base_url for r in replicas], users, clients, JWT_SECRET)
    await fleet.start()
    try:
        with meter:
            trips = await asyncio.to_thread(insert_trip_rounds, url, users, rounds)
            missing = await wait_received(fleet, trips, 300.0)
        assert missing == 0, f"{missing} realtime changes not received"
        return fleet.expected(trips) / meter.seconds
    finally:
        await fleet.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="issue-sized: 20,000 deliveries, 300 clients")
    parser.add_argument("--max-replicas", type=int, default=3)
    parser.add_argument("--skip-realtime", action="store_true", help="webhooks only")
    args = parser.parse_args()
    events = 20_000 if args.full else 4_000
    clients, users_n, rounds = (500, 50, 100) if args.full else (200, 20, 50)

    nginx = Nginx()
    nginx.start()
    cluster = Cluster()
    cluster.start()
    key = new_encryption_key()
    logs = Path(tempfile.mkdtemp(prefix="tsg-scaleout-"))
    replicas: list[Replica] = []
    rows: list[tuple[int, float, Meter, float, Meter]] = []
    try:
        point_at_nginx(cluster.url, key, nginx)
        users = create_users(cluster.url, users_n)
        for k in range(1, args.max_replicas + 1):
            replica = Replica(cluster.url, key)
            replica.start(logs)
            replica.wait_healthy()
            replicas.append(replica)
            web_meter = Meter(cluster, replicas)
            deliveries = webhook_round(cluster.url, events, web_meter)
            rt_meter = Meter(cluster, replicas)
            messages = (
                float("nan")
                if args.skip_realtime
                else asyncio.run(realtime_round(cluster.url, replicas, users, clients, rounds, rt_meter))
            )
            if args.skip_realtime:
                rt_meter.pg_share = rt_meter.replica_share = rt_meter.client_share = float("nan")
            rows.append((k, deliveries, web_meter, messages, rt_meter))
            print(f"  {k} replica(s): {deliveries:,.0f} deliveries/s, {messages:,.0f} msgs/s", file=sys.stderr)
    finally:
        for replica in replicas:
            replica.stop()
        cluster.close()
        nginx.stop()

    base_d, base_m = rows[0][1], rows[0][3]
    print("## Scale-out\n")
    print(
        f"{machine()}; one embedded PostgreSQL; {events:,} webhook deliveries to nginx per run; {clients} realtime "
        f"clients ({users_n} users) spread over the replicas, {rounds} transactions of one trip per user committed "
        "back to back (each change goes to its owner's clients, RLS-checked); msgs/s from the first commit to the "
        f"last receipt. CPU shares are of all {CORES} cores; the websocket clients run in the benchmark process "
        "on the same cores.\n"
    )
    print(
        "| replicas | deliveries/s | vs 1 | PG CPU | replicas CPU | realtime msgs/s | vs 1 | PG CPU | replicas CPU "
        "| clients CPU |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, d, wm, m, rm in rows:
        print(
            f"| {k} | {d:,.0f} | {d / base_d:.2f}x | {wm.pg_share:.0%} | {wm.replica_share:.0%} "
            f"| {m:,.0f} | {m / base_m:.2f}x | {rm.pg_share:.0%} | {rm.replica_share:.0%} | {rm.client_share:.0%} |"
        )
    print(
        "\nGoal: 2 replicas >= 1.6x one until PostgreSQL saturates. On this machine PostgreSQL, the replicas, nginx "
        "and the clients share the same cores: when PG CPU + replicas CPU is near 100 %, the machine, not the "
        "runtime's design, is the limit."
    )


if __name__ == "__main__":
    main()
