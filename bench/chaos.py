"""Chaos: a webhook and realtime workload against three `tripsage serve` replicas while replicas are killed with
SIGKILL at random moments and PostgreSQL is restarted once.

Checks, each printed with its figure:
- webhooks: no committed event lost; a duplicate delivery always carries the original webhook-id;
- realtime: every client is subscribed again after the chaos, and receives a probe change for its user; no client
  ever receives another user's row;
- cron (when `cron.schedule` exists): a `1 seconds` job's every tick ran at most once, and a tick that did not run
  falls inside an outage (PostgreSQL down, or the leader killed and not yet replaced);
- no replica crashed on its own (only the ones killed).

Full run (the issue's): .venv/bin/python bench/chaos.py          (10 kills, 10,000 events, 60 clients, ~2 minutes)
Short run (CI):         .venv/bin/python bench/chaos.py --short  (3 kills, 1,000 events, 12 clients, ~20 seconds)
Through PgBouncer:      add --pgbouncer session (the replicas' DATABASE_URL is a real pgbouncer in session mode)
Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.harness import machine, percentile
from testkit.workload import (
    Check,
    Rig,
    account_ticks,
    checks_table,
    insert_trips,
    outbox_depth,
    produce_events,
    run_checked,
    schedule_tick_job,
    tick_runs,
    unschedule_tick_job,
    wait_received,
)

DRAIN_LIMIT = 300.0  # seconds to wait for every webhook to arrive after the chaos
FAILOVER_S = 6.0  # a killed leader is replaced within 5 s (the scheduler's promise), plus a second of slack


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the CI size: 3 kills, 1,000 events, 12 clients")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=100, help="events per producer transaction")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the chaos phase lasts (about)")
    parser.add_argument(
        "--pgbouncer", choices=["session"], default=None, help="the replicas reach PostgreSQL through a real pgbouncer"
    )
    if parser.parse_known_args(argv)[0].short:  # the short sizes, unless given explicitly
        parser.set_defaults(kills=3, events=1_000, clients=12, users=4, chunk=25, seconds=20.0)
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    rig = Rig(args.replicas, args.clients, args.users, log_dir, pooler=args.pgbouncer)
    result: dict[str, Any] = {}
    try:
        await rig.start()
        assert rig.fleet is not None
        url = rig.cluster.url
        jobid = schedule_tick_job(url) if rig.cron else None
        began = time.time()
        chunks = list(range(1, args.events + 1, args.chunk))
        kill_at = sorted(rng.sample(range(1, len(chunks)), min(args.kills, len(chunks) - 1)))
        restart_at = rng.choice([i for i in range(1, len(chunks)) if i not in kill_at] or [len(chunks) - 1])
        outages: list[tuple[float, float]] = []
        trips: dict[str, list[int]] = {}
        kills = 0
        pace = args.seconds / len(chunks)  # the chunks are spread over the phase
        for i, start in enumerate(chunks):
            step_began = time.monotonic()
            await asyncio.to_thread(produce_events, url, start, min(args.chunk, args.events - start + 1))
            ids = await asyncio.to_thread(insert_trips, url, rig.users, f"chaos {i}")
            for owner, trip in zip(rig.users, ids, strict=True):
                trips.setdefault(owner, []).append(trip)
                rig.fleet.owners[trip] = owner
            if i in kill_at:
                victim = rng.choice(rig.replicas)
                await asyncio.sleep(rng.uniform(0, 0.5))  # a random moment, mid-flight
                killed = time.time()
                victim.kill9()
                kills += 1
                victim.start(log_dir)
                await asyncio.to_thread(victim.wait_healthy)
                outages.append((killed, time.time() + FAILOVER_S))
            if i == restart_at:
                down = time.time()
                await asyncio.to_thread(rig.cluster.restart)
                outages.append((down, time.time() + FAILOVER_S))
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - step_began)))
        chaos_s = time.time() - began

        drain_began = time.monotonic()
        while time.monotonic() - drain_began < DRAIN_LIMIT:
            if len(rig.sink.ids_by_n) >= args.events and await asyncio.to_thread(outbox_depth, url) == 0:
                break
            await asyncio.sleep(0.2)
        result["webhooks"] = rig.sink.report(args.events)

        during_missing = rig.fleet.missing(trips)
        during_expected = rig.fleet.expected(trips)
        await rig.fleet.wait_subscribed(60.0)
        probe_ids = await asyncio.to_thread(insert_trips, url, rig.users, "probe")
        probes = {owner: [trip] for owner, trip in zip(rig.users, probe_ids, strict=True)}
        for owner, trip in zip(rig.users, probe_ids, strict=True):
            rig.fleet.owners[trip] = owner
        probe_missing = await wait_received(rig.fleet, probes, 30.0)
        latencies = rig.fleet.latencies()
        result["realtime"] = {
            "clients": len(rig.fleet.clients),
            "resubscribed": sum(1 for c in rig.fleet.clients if c.subscribed),
            "reconnects": sum(c.reconnects for c in rig.fleet.clients),
            "probe_missing": probe_missing,
            "changes_expected_during_chaos": during_expected,
            "changes_missed_during_chaos": during_missing,
            "foreign_rows": rig.fleet.foreign(),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        }
        if jobid is not None:
            ended = time.time()
            await asyncio.sleep(2)  # the last tick's run is recorded
            unschedule_tick_job(url)
            result["cron"] = account_ticks(await asyncio.to_thread(tick_runs, url, jobid), began, ended, outages)
        result["kills"] = kills
        result["postgres_restarts"] = 1
        result["chaos_seconds"] = round(chaos_s, 1)
        result["replicas_alive"] = rig.alive()
    finally:
        await rig.close()
    return result


def verdicts(result: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    w, r = result["webhooks"], result["realtime"]
    checks = [
        ("no webhook event lost", w["lost"] == 0, f"{w['received']:,} of {w['events']:,} received"),
        (
            "duplicates only with the same webhook-id",
            w["ids_changed"] == 0,
            f"{w['duplicate_requests']} duplicate requests, {w['ids_changed']} under a new id",
        ),
        (
            "realtime clients resubscribed",
            r["resubscribed"] == r["clients"] and r["probe_missing"] == 0,
            f"{r['resubscribed']}/{r['clients']} subscribed, {r['reconnects']} reconnects, "
            f"{r['probe_missing']} probes missing",
        ),
        ("no realtime row to the wrong user", r["foreign_rows"] == 0, f"{r['foreign_rows']} foreign rows"),
        (
            "no replica crashed on its own",
            result["replicas_alive"] == args.replicas,
            f"{result['replicas_alive']}/{args.replicas} alive",
        ),
    ]
    if "cron" in result:
        c = result["cron"]
        checks.append(
            (
                "every cron tick accounted for",
                c["duplicates"] == 0 and c["missed_unexplained"] == 0,
                f"{c['ticks']} ticks: {c['ran']} ran, {c['duplicates']} twice, {c['missed_in_outages']} missed during "
                f"outages, {c['missed_unexplained']} missed otherwise, {c['failed_server_restarted']} marked "
                "'server restarted'",
            )
        )
    return checks


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    r = result["realtime"]
    lines = [
        "## Chaos",
        "",
        f"{machine()}; {args.replicas} replicas, {result['kills']} SIGKILLs at random moments, "
        f"{result['postgres_restarts']} PostgreSQL restart, {args.events:,} webhook events, {r['clients']} realtime "
        f"clients; chaos phase {result['chaos_seconds']} s"
        + (f"; the replicas through pgbouncer ({args.pgbouncer} pooling)." if args.pgbouncer else "."),
        "",
    ]
    lines += checks_table(verdicts(result, args))
    lines += [
        "",
        f"Realtime during the chaos: {r['changes_missed_during_chaos']:,} of {r['changes_expected_during_chaos']:,} "
        "changes missed by clients while their replica was down (Supabase Realtime does not replay changes to a "
        f"reconnecting client either); commit-to-client latency p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_checked("tsg-chaos-", run, report, verdicts, parse(argv))


if __name__ == "__main__":
    raise SystemExit(main())
