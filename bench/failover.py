"""Failover: a webhook, realtime and cron workload against `tripsage serve` replicas given a multi-host URL
(`target_session_attrs=read-write`) over a PostgreSQL 15 primary and its synchronous streaming standby
(testkit/replication.py). Mid-run the primary is stopped with `pg_ctl -m immediate` (a crash) and, a moment later, the
standby is promoted, as an HA manager (Patroni, RDS, Cloud SQL) does; the workload never stops.

Checks, each printed with its figure:
- no committed webhook event lost (a commit whose answer was cut by the crash is looked up on the new primary: the
  synchronous standby has it or the client never saw it succeed, and then it is produced again);
- the runtime reconnected by itself: every replica's LISTEN connections and leader-lock session are back on the new
  primary, and exactly one replica leads the scheduler;
- every realtime client is subscribed again and receives a probe change for its user;
- the `1 seconds` cron job: no tick ran twice, and none was missed outside the outage;
- no replica crashed.
Figures: recovery seconds (from the kill to the first delivery of an event committed on the new primary; goal
<= 10 s), the promotion time, events committed, delivered and lost.

Full run:  .venv/bin/python bench/failover.py          (5,000 events, 3 replicas, 20 clients, ~1 minute)
Short run: .venv/bin/python bench/failover.py --short  (300 events, 2 replicas, 4 clients; what CI runs)
Needs root and the system PostgreSQL 15 (scripts/system-postgres.sh install); skipped (exit 0) without them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from testkit import replication, servers
from testkit.harness import JWT_SECRET, Replica, machine, new_encryption_key
from testkit.workload import (
    EVENT_TYPE,
    Check,
    RealtimeFleet,
    WebhookSink,
    account_ticks,
    checks_table,
    configure_webhook,
    create_users,
    insert_trips,
    outbox_depth,
    produce_events,
    run_checked,
    schedule_tick_job,
    tick_runs,
    unschedule_tick_job,
    wait_received,
)

from tripsage.db.migrations import Deployer
from tripsage.net import WORKER_APPLICATION_NAME

DATABASE = "tripsage"
DRAIN_LIMIT = 180.0  # seconds to wait for every webhook to arrive after the run
COME_BACK_LIMIT = 60.0  # seconds for LISTEN connections, leadership and realtime clients to come back
RETRY_PAUSE = 0.1  # seconds between a producer's attempts while there is no primary
FAILOVER_SLACK_S = 6.0  # after the recovery, a new scheduler leader may take up to this long (chaos.py's margin)
LISTENERS_PER_REPLICA = {
    "tripsage-listen": 2,
    WORKER_APPLICATION_NAME: 1,
    "tripsage-realtime-listen": 1,
    "tripsage-scheduler-leader": 1,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI size: 300 events, 2 replicas, 4 clients")
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=50, help="events per producer transaction")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the producer runs (about)")
    parser.add_argument("--promote-after", type=float, default=1.0, help="seconds between the kill and the promote")
    if parser.parse_known_args(argv)[0].short:
        parser.set_defaults(events=300, replicas=2, clients=4, users=2, chunk=10, seconds=12.0)
    return parser.parse_args(argv)


def chunk_committed(url: str, start: int, count: int) -> bool | None:
    """Whether events start..start+count-1 are in the database (None: no primary to ask yet)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM webhooks.events WHERE event_type = %s AND (payload->>'n')::int BETWEEN %s AND %s",
                [EVENT_TYPE, start, start + count - 1],
            ).fetchone()
    except psycopg.Error:
        return None
    return bool(row and row[0] == count)


def produce_surely(url: str, start: int, count: int) -> None:
    """Commit the chunk once, through the failover: after an error, ask the primary (when there is one again)."""
    while True:
        try:
            produce_events(url, start, count)
            return
        except psycopg.Error:
            pass
        while (committed := chunk_committed(url, start, count)) is None:
            time.sleep(RETRY_PAUSE)
        if committed:
            return


def sessions(url: str) -> dict[str, int]:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1"
            ).fetchall()
    except psycopg.Error:
        return {}
    return {str(name): int(n) for name, n in rows}


def leaders(replicas: list[Replica]) -> int:
    count = 0
    for replica in replicas:
        try:
            components = replica.detailed_health()["components"]
            assert isinstance(components, dict)
            count += bool(components["scheduler"].get("leader"))
        except (OSError, KeyError, ValueError):
            continue
    return count


async def until(check: Any, limit: float) -> bool:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.2)
    return bool(await asyncio.to_thread(check))


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    pair = await asyncio.to_thread(replication.start_pair, DATABASE)
    sink = WebhookSink()
    replicas: list[Replica] = []
    fleet: RealtimeFleet | None = None
    result: dict[str, Any] = {}
    try:
        await Deployer(pair.primary.url(DATABASE), servers.REPO / "supabase" / "migrations").deploy()
        url = pair.multi_host_url(DATABASE)
        key = new_encryption_key()
        configure_webhook(url, key, await sink.start())
        users = create_users(url, args.users)
        replicas = [Replica(url, key) for _ in range(args.replicas)]
        for replica in replicas:
            replica.start(log_dir)
        for replica in replicas:
            await asyncio.to_thread(replica.wait_healthy)
        fleet = RealtimeFleet([r.base_url for r in replicas], users, args.clients, JWT_SECRET)
        await fleet.start()
        told_before = {c.index: c.postgres_ok for c in fleet.clients}
        jobid = schedule_tick_job(url)
        await asyncio.sleep(2)  # a few ticks before the failover

        began = time.time()
        chunks = list(range(1, args.events + 1, args.chunk))
        kill_index = max(1, len(chunks) // 3)
        pace = args.seconds / len(chunks)
        timeline: dict[str, float] = {}
        after_kill: list[int] = []  # event numbers produced after the kill: committed on the new primary

        async def fail_over() -> None:
            timeline["killed"] = time.time()
            await asyncio.to_thread(pair.kill_primary)
            await asyncio.sleep(args.promote_after)
            await asyncio.to_thread(pair.promote)
            timeline["promoted"] = time.time()

        failover: asyncio.Task[None] | None = None
        for i, start in enumerate(chunks):
            step_began = time.monotonic()
            count = min(args.chunk, args.events - start + 1)
            if "killed" in timeline:
                after_kill.extend(range(start, start + count))
            await asyncio.to_thread(produce_surely, url, start, count)
            if i == kill_index:
                failover = asyncio.create_task(fail_over())
                await asyncio.sleep(0)  # the kill happens now, before the next chunk
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - step_began)))
        assert failover is not None
        await failover
        produced_s = time.time() - began

        drain_began = time.monotonic()
        while time.monotonic() - drain_began < DRAIN_LIMIT:
            if len(sink.ids_by_n) >= args.events and await asyncio.to_thread(outbox_depth, url) == 0:
                break
            await asyncio.sleep(0.2)
        result["webhooks"] = sink.report(args.events)
        killed = timeline["killed"]
        firsts = [sink.first_at[n] for n in after_kill if n in sink.first_at]
        recovered = min(firsts) if firsts else None
        result["recovery_s"] = round(recovered - killed, 2) if recovered is not None else None
        result["promoted_s"] = round(timeline["promoted"] - killed, 2)

        wanted = {name: n * args.replicas for name, n in LISTENERS_PER_REPLICA.items()}
        back = await until(lambda: all(sessions(url).get(k, 0) == v for k, v in wanted.items()), COME_BACK_LIMIT)
        result["sessions"] = {"wanted": wanted, "found": {k: sessions(url).get(k, 0) for k in wanted}, "back": back}
        result["leaders"] = leaders(replicas) if await until(lambda: leaders(replicas) == 1, COME_BACK_LIMIT) else 0

        await fleet.wait_subscribed(COME_BACK_LIMIT)
        probe_ids = await asyncio.to_thread(insert_trips, url, users, "probe")
        probes = {owner: [trip] for owner, trip in zip(users, probe_ids, strict=True)}
        result["realtime"] = {
            "clients": len(fleet.clients),
            "resubscribed": sum(1 for c in fleet.clients if c.subscribed),
            # The gateway lost PostgreSQL and came back: each channel is told "Subscribed to PostgreSQL" again.
            "told_again": sum(1 for c in fleet.clients if c.postgres_ok > told_before[c.index]),
            "probe_missing": await wait_received(fleet, probes, 30.0),
        }

        ended = time.time()
        await asyncio.sleep(2)  # the last tick's run is recorded
        unschedule_tick_job(url)
        outage_end = max(timeline["promoted"], recovered or ended) + FAILOVER_SLACK_S
        result["cron"] = account_ticks(
            await asyncio.to_thread(tick_runs, url, jobid), began, ended, [(killed, outage_end)]
        )
        result["produced_s"] = round(produced_s, 1)
        result["alive"] = sum(1 for r in replicas if r.process is not None and r.process.poll() is None)
    finally:
        if fleet is not None:
            await fleet.close()
        for replica in replicas:
            await asyncio.to_thread(replica.stop)
        await sink.close()
        await asyncio.to_thread(pair.close)
    return result


def verdicts(result: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    w, r, c, s = result["webhooks"], result["realtime"], result["cron"], result["sessions"]
    return [
        ("no committed webhook event lost", w["lost"] == 0, f"{w['received']:,} of {w['events']:,} delivered"),
        (
            "duplicates only with the same webhook-id",
            w["ids_changed"] == 0,
            f"{w['duplicate_requests']} duplicate requests, {w['ids_changed']} under a new id",
        ),
        (
            "deliveries resumed on the new primary",
            result["recovery_s"] is not None,
            f"{result['recovery_s']} s from the kill (promoted after {result['promoted_s']} s)",
        ),
        (
            "every replica's LISTEN and leader-lock sessions back",
            bool(s["back"]),
            ", ".join(f"{k} {s['found'][k]}/{v}" for k, v in s["wanted"].items()),
        ),
        ("one scheduler leader", result["leaders"] == 1, f"{result['leaders']} leader(s)"),
        (
            "realtime clients resubscribed",
            r["resubscribed"] == r["clients"] and r["told_again"] == r["clients"] and r["probe_missing"] == 0,
            f"{r['resubscribed']}/{r['clients']} subscribed, {r['told_again']} told 'Subscribed to PostgreSQL' again, "
            f"{r['probe_missing']} probes missing",
        ),
        (
            "every cron tick accounted for",
            c["duplicates"] == 0 and c["missed_unexplained"] == 0,
            f"{c['ticks']} ticks: {c['ran']} ran, {c['duplicates']} twice, {c['missed_in_outages']} missed during "
            f"the outage, {c['missed_unexplained']} missed outside it",
        ),
        ("no replica crashed", result["alive"] == args.replicas, f"{result['alive']}/{args.replicas} alive"),
    ]


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    w = result["webhooks"]
    lines = [
        "## Failover",
        "",
        f"{machine()}; PostgreSQL 15 primary + synchronous streaming standby, {args.replicas} replicas on a "
        f"multi-host URL (target_session_attrs=read-write), {args.events:,} webhook events over "
        f"{result['produced_s']} s, {args.clients} realtime clients, a `1 seconds` cron job; the primary stopped "
        f"with `pg_ctl -m immediate`, the standby promoted {args.promote_after} s later.",
        "",
        f"Recovery: **{result['recovery_s']} s** from the kill to the first delivery of an event committed on the new "
        f"primary (goal <= 10 s). Events committed {w['events']:,}, delivered {w['received']:,}, lost {w['lost']}.",
        "",
    ]
    lines += checks_table(verdicts(result, args))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    reason = servers.system_unavailable_reason()
    if reason is not None:
        print(f"## Failover\n\nskipped: {reason}")
        return 0
    return run_checked("tsg-failover-", run, report, verdicts, args)


if __name__ == "__main__":
    raise SystemExit(main())
