"""Soak: a steady webhook and realtime load with the scheduled jobs running, watched for errors, memory growth and
unbounded tables.

Load: `--rate` webhook events per second (in ten transactions a second), a trip a second for each of a tenth of the
users (each fanned out by realtime to that user's clients), `--clients` realtime websockets, a `1 seconds` cron job,
and the maintenance jobs on their seed schedules (monitor-database-health brought to every 30 s so that a short run
sees it too).

Checks, each printed with its figure:
- no errors: no ERROR line or traceback in the replicas' logs, no client error frame, no webhook lost, every realtime
  change received by every client of its user;
- resident memory of each replica grows by less than 10 % between the end of the warm-up (the first fifth of the run)
  and the end;
- the outbox stays bounded (its pending depth never exceeds 10 seconds of load, and drains to 0), and no table with a
  retention shorter than the run holds rows older than that retention.

Full run (the issue's): .venv/bin/python bench/soak.py                 (30 minutes, 100 events/s, 200 clients)
Short run (CI):         .venv/bin/python bench/soak.py --minutes 1 --clients 40
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from testkit.harness import machine, percentile
from testkit.workload import (
    Check,
    Rig,
    checks_table,
    insert_trips,
    outbox_depth,
    produce_events,
    run_checked,
    schedule_tick_job,
    wait_received,
)

SAMPLE_S = 5.0
MEMORY_GROWTH_LIMIT = 0.10
# Tables with a retention, and that retention in seconds, when the capability is installed.
# (The realtime capture keeps 300 s and cleans every 30 s: a minute of slack.)
RETENTIONS = {
    "cron.job_run_details": 7 * 86400,
    "cron.job_tick": 7 * 86400,
    "net._http_response": 6 * 3600,
    "tripsage_realtime.changes": 300 + 60,
    "public.system_metrics": 30 * 86400,
}
RETENTION_COLUMNS = {
    "cron.job_run_details": "start_time",
    "cron.job_tick": "tick",
    "net._http_response": "created",
    "tripsage_realtime.changes": "captured_at",
    "public.system_metrics": "created_at",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=100, help="webhook events per second")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=1)
    return parser.parse_args(argv)


def count_rows(conn: psycopg.Connection[Any], name: str, older_than_s: float | None = None) -> int | None:
    """Rows of table `schema.table` (older than `older_than_s` by its retention column); None when it is absent."""
    present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
    if not (present and present[0]):
        return None
    schema, table = (psycopg.sql.Identifier(part) for part in name.split("."))
    query = psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(schema, table)
    params: list[Any] = []
    if older_than_s is not None:
        query += psycopg.sql.SQL(" WHERE {} < now() - make_interval(secs => %s)").format(
            psycopg.sql.Identifier(RETENTION_COLUMNS[name])
        )
        params = [older_than_s]
    counted = conn.execute(query, params).fetchone()
    return int(counted[0]) if counted else 0


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        counts = {
            name: count_rows(conn, name)
            for name in ("webhooks.events", "webhooks.deliveries", "public.webhook_logs", *RETENTIONS)
        }
    return {name: n for name, n in counts.items() if n is not None}


def speed_up_health_job(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT jobid FROM cron.job WHERE jobname = 'monitor-database-health'").fetchone()
        if row is None:
            return False
        conn.execute("SELECT cron.alter_job(%s, schedule => '30 seconds')", [row[0]])
    return True


def job_runs(url: str, since: float) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(j.jobname, j.jobid::text) || ':' || d.status, count(*) FROM cron.job_run_details d"
            " JOIN cron.job j USING (jobid) WHERE d.start_time >= to_timestamp(%s) GROUP BY 1 ORDER BY 1",
            [since],
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


async def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    rig = Rig(args.replicas, args.clients, args.users, log_dir)
    result: dict[str, Any] = {}
    try:
        await rig.start()
        assert rig.fleet is not None
        url = rig.cluster.url
        if rig.cron:
            schedule_tick_job(url)
            result["health_job_sped_up"] = speed_up_health_job(url)
        duration = args.minutes * 60
        warmup_end = duration / 5
        began = time.monotonic()
        wall_began = time.time()
        next_n = 1
        per_tx = max(1, args.rate // 10)
        trip_owners = rig.users[: max(1, len(rig.users) // 10)]
        trips: dict[str, list[int]] = {}
        rss: dict[int, list[tuple[float, int]]] = {r.port: [] for r in rig.replicas}
        depth_max = 0
        next_sample = 0.0
        tick = 0
        while (elapsed := time.monotonic() - began) < duration:
            await asyncio.to_thread(produce_events, url, next_n, per_tx)
            next_n += per_tx
            if tick % 10 == 0:
                ids = await asyncio.to_thread(insert_trips, url, trip_owners, f"soak {tick}")
                for owner, trip in zip(trip_owners, ids, strict=True):
                    trips.setdefault(owner, []).append(trip)
                    rig.fleet.owners[trip] = owner
            if elapsed >= next_sample:
                next_sample += SAMPLE_S
                for r in rig.replicas:
                    rss[r.port].append((elapsed, r.rss_bytes()))
                depth_max = max(depth_max, await asyncio.to_thread(outbox_depth, url))
            tick += 1
            # ten producer transactions a second, on schedule (a slow one is caught up, not skipped)
            await asyncio.sleep(max(0.0, began + tick * 0.1 - time.monotonic()))
        events = next_n - 1
        drain_began = time.monotonic()
        while time.monotonic() - drain_began < 120:
            if len(rig.sink.ids_by_n) >= events and await asyncio.to_thread(outbox_depth, url) == 0:
                break
            await asyncio.sleep(0.2)
        missing = await wait_received(rig.fleet, trips, 30.0)
        growth = {}
        for port, samples in rss.items():
            after_warmup = [b for t, b in samples if t >= warmup_end]
            if len(after_warmup) >= 2 and after_warmup[0] > 0:
                growth[port] = (after_warmup[-1] - after_warmup[0]) / after_warmup[0]
        latencies = rig.fleet.latencies()
        result.update(
            {
                "seconds": round(time.monotonic() - began, 1),
                "webhooks": rig.sink.report(events),
                "realtime": {
                    "clients": len(rig.fleet.clients),
                    "changes": rig.fleet.expected(trips),
                    "missing": missing,
                    "foreign_rows": rig.fleet.foreign(),
                    "client_errors": sum(len(c.errors) for c in rig.fleet.clients),
                    "reconnects": sum(c.reconnects for c in rig.fleet.clients),
                    "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
                    "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
                },
                "rss_mb": {
                    port: (round(s[0][1] / 2**20, 1), round(s[-1][1] / 2**20, 1)) for port, s in rss.items() if s
                },
                "rss_growth": {port: round(g * 100, 1) for port, g in growth.items()},
                "depth_max": depth_max,
                "depth_end": await asyncio.to_thread(outbox_depth, url),
                "tables": await asyncio.to_thread(table_counts, url),
                "job_runs": await asyncio.to_thread(job_runs, url, wall_began) if rig.cron else {},
                "log_errors": rig.log_errors(),
                "alive": rig.alive(),
            }
        )
        result["stale_rows"] = await asyncio.to_thread(stale_rows, url)
    finally:
        await rig.close()
    return result


def stale_rows(url: str) -> dict[str, int]:
    """Rows older than their table's retention (each must be 0)."""
    with psycopg.connect(url, autocommit=True) as conn:
        found = {name: count_rows(conn, name, retention) for name, retention in RETENTIONS.items()}
    return {name: n for name, n in found.items() if n is not None}


def verdicts(result: dict[str, Any], args: argparse.Namespace) -> list[Check]:
    w, r = result["webhooks"], result["realtime"]
    growth = result["rss_growth"]
    worst = max(growth.values()) if growth else 0.0
    errors = result["log_errors"]
    return [
        ("no webhook event lost", w["lost"] == 0, f"{w['received']:,} of {w['events']:,} received"),
        (
            "every realtime change received, none leaked",
            r["missing"] == 0 and r["foreign_rows"] == 0,
            f"{r['changes']:,} expected, {r['missing']} missing, {r['foreign_rows']} to the wrong user; "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms",
        ),
        (
            "no errors",
            not errors and r["client_errors"] == 0 and result["alive"] == args.replicas,
            f"{len(errors)} error lines in replica logs{(': ' + errors[0]) if errors else ''}; "
            f"{r['client_errors']} client errors, {r['reconnects']} reconnects; {result['alive']} replicas alive",
        ),
        (
            "resident memory growth < 10 % after warm-up",
            worst < MEMORY_GROWTH_LIMIT * 100,
            ", ".join(f"{a} -> {b} MB" for a, b in result["rss_mb"].values()) + f"; growth {worst} %",
        ),
        (
            "outbox bounded",
            result["depth_max"] <= max(10 * args.rate, 100) and result["depth_end"] == 0,
            f"max pending {result['depth_max']}, at the end {result['depth_end']}",
        ),
        (
            "history bounded by retention",
            all(v == 0 for v in result["stale_rows"].values()),
            ", ".join(f"{k}: {v:,} rows" for k, v in result["tables"].items())
            + "; rows past retention: "
            + (", ".join(f"{k} {v}" for k, v in result["stale_rows"].items()) or "none"),
        ),
    ]


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "## Soak",
        "",
        f"{machine()}; {result['seconds']} s at {args.rate} webhook events/s, {args.clients} realtime clients, "
        f"{args.replicas} replica(s), jobs running.",
        "",
    ]
    lines += checks_table(verdicts(result, args))
    if result.get("job_runs"):
        lines += ["", "Job runs during the soak: " + ", ".join(f"{k} {v}" for k, v in result["job_runs"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_checked("tsg-soak-", run, report, verdicts, parse(argv))


if __name__ == "__main__":
    raise SystemExit(main())
