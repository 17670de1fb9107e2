"""Scheduler benchmark: tick-to-start delay of the emulated pg_cron beside native pg_cron, and the search-cache
cleanup's longest writer stall beside a naive single DELETE.

1. Tick-to-start delay = a run's start_time (when its command is sent, as pg_cron records it) - its tick.
   - Default (short) run: the emulation on `1 seconds` ticks (a real `tripsage serve` against a database of the
     system server, or of the embedded server when the system server is unavailable). Native pg_cron 1.4.2 has
     minute granularity only, so it is not measured in the short run.
   - `--full`: both on minute ticks on the system server, one after the other (so neither's connection forks
     slow the other): 10 jobs `* * * * *` in `postgres` (native pg_cron) for 4 minutes, then 10 in the emulated
     database for 4 minutes.
2. Cleanup with concurrent writers (embedded server): N expired rows in search_hotels (100,000 by default, 1,000,000
   with --full) while WRITERS connections refresh random cache rows and insert new ones; the longest single writer
   statement during `CALL maintenance.cleanup_expired_search_cache()` beside the same during a naive
   `DELETE FROM search_hotels WHERE expires_at < now()`.

Run: .venv/bin/python bench/bench_scheduler.py [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit import servers  # noqa: E402
from testkit.harness import Cluster, Replica, free_port, machine, new_encryption_key, percentile  # noqa: E402

from tripsage.db.migrations import Deployer  # noqa: E402

GOAL_MEDIAN_MS = 20.0
GOAL_P99_MS = 100.0
GOAL_STALL_MS = 100.0
WRITERS = 4


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# -- 1. tick-to-start delay -----------------------------------------------------------------------------------------


def emulated_delays(url: str, job_ids: list[int]) -> list[float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM d.start_time - t.tick)::float8 FROM cron.job_tick t "
            "JOIN cron.job_run_details d ON d.runid = t.runid WHERE t.jobid = ANY(%s) AND d.status = 'succeeded'",
            (job_ids,),
        ).fetchall()
    return [r[0] for r in rows]


def native_delays(url: str, job_ids: list[int]) -> list[float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM start_time - date_trunc('minute', start_time))::float8 "
            "FROM cron.job_run_details WHERE jobid = ANY(%s) AND status = 'succeeded'",
            (job_ids,),
        ).fetchall()
    return [r[0] for r in rows]


def schedule(url: str, prefix: str, count: int, spec: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [
            conn.execute("SELECT cron.schedule(%s, %s, 'SELECT 1')", (f"{prefix}-{i}", spec)).fetchone()[0]  # type: ignore[index]
            for i in range(count)
        ]


def unschedule(url: str, job_ids: list[int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for jobid in job_ids:
            conn.execute("SELECT cron.unschedule(%s::bigint)", (jobid,))


def delay_section(full: bool) -> str:
    reason = servers.system_unavailable_reason()
    system: servers.Server | None = None
    cluster: Cluster | None = None
    log_dir = Path(tempfile.mkdtemp(prefix="tsg-bench-sched-"))
    try:
        if reason is None:
            system = servers.start_system(free_port())
            emulated_url = system.url("bench_scheduler")
            with system.admin() as conn:
                conn.execute("CREATE DATABASE bench_scheduler")
            asyncio.run(Deployer(emulated_url, servers.REPO / "supabase" / "migrations").deploy())
            asyncio.run(Deployer(system.admin_url, servers.REPO / "supabase" / "migrations").deploy())
            where = "system server (PostgreSQL 15)"
        else:
            cluster = Cluster()
            cluster.start()
            emulated_url = cluster.url
            where = f"embedded server (system server unavailable: {reason})"
        replica = Replica(emulated_url, new_encryption_key(), extra_env={"TRIPSAGE_DATA_DIR": str(log_dir / "data")})
        replica.start(log_dir)
        try:
            replica.wait_healthy()
            lines = [
                "## Scheduler: tick-to-start delay",
                "",
                f"Where: {where}. Delay = run start_time (command sent) - tick.",
                "",
                "| scheduler | ticks | runs | median ms | p99 ms | max ms | goal |",
                "|---|---|---|---|---|---|---|",
            ]
            if full:
                # One after the other (native first), so neither's forks and connections slow the other down.
                minutes = 4
                jobs = 10
                native: list[int] = []
                if system is not None:
                    native = schedule(system.admin_url, "bench-minute", jobs, "* * * * *")
                    time.sleep(minutes * 60 + 5)
                    unschedule(system.admin_url, native)
                emulated = schedule(emulated_url, "bench-minute", jobs, "* * * * *")
                time.sleep(minutes * 60 + 5)
                unschedule(emulated_url, emulated)
                values = emulated_delays(emulated_url, emulated)
                lines.append(
                    f"| emulated (TripSage runtime) | `* * * * *` x {jobs} jobs, {minutes} min | {len(values)} | "
                    f"{ms(percentile(values, 0.5))} | {ms(percentile(values, 0.99))} | {ms(max(values, default=0))} | "
                    f"median <= {GOAL_MEDIAN_MS:.0f}, p99 <= {GOAL_P99_MS:.0f} |"
                )
                if system is not None:
                    values = native_delays(system.admin_url, native)
                    lines.append(
                        f"| native pg_cron 1.4.2 (baseline) | `* * * * *` x {jobs} jobs, {minutes} min before | "
                        f"{len(values)} | "
                        f"{ms(percentile(values, 0.5))} | {ms(percentile(values, 0.99))} | "
                        f"{ms(max(values, default=0))} | - |"
                    )
            seconds = 60 if full else 20
            emulated = schedule(emulated_url, "bench-second", 1, "1 seconds")
            time.sleep(seconds + 1)
            unschedule(emulated_url, emulated)
            time.sleep(1)
            values = emulated_delays(emulated_url, emulated)
            lines.append(
                f"| emulated (TripSage runtime) | `1 seconds`, {seconds} s | {len(values)} | "
                f"{ms(percentile(values, 0.5))} | {ms(percentile(values, 0.99))} | {ms(max(values, default=0))} | "
                f"median <= {GOAL_MEDIAN_MS:.0f}, p99 <= {GOAL_P99_MS:.0f} |"
            )
            if not full:
                lines.append(
                    "| native pg_cron 1.4.2 (baseline) | minute ticks only (`N seconds` came in 1.5): "
                    "measured with `--full` | - | - | - | - | - |"
                )
            return "\n".join(lines)
        finally:
            replica.stop()
    finally:
        if system is not None:
            servers.stop_system(system)
        if cluster is not None:
            cluster.close()


# -- 2. cleanup with concurrent writers ----------------------------------------------------------------------------


def fill(url: str, expired: int, fresh: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE public.search_hotels")
        user = conn.execute("INSERT INTO auth.users (email) VALUES (%s) RETURNING id", (f"b{time.time_ns()}@x",))
        uid = user.fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO public.search_hotels (user_id, destination, check_in_date, check_out_date, query_hash, "
            "results, source, expires_at) "
            "SELECT %s, 'City ' || (g %% 500), current_date, current_date + 2, md5(g::text), "
            '\'{"hotels": [{"name": "Hotel", "price": 120}]}\', \'booking\', '
            "CASE WHEN g <= %s THEN now() - interval '1 hour' ELSE now() + interval '1 day' END "
            "FROM generate_series(1, %s) g",
            (uid, expired, expired + fresh),
        )
        conn.execute("VACUUM (ANALYZE) public.search_hotels")


async def writer(
    url: str, max_id: int, stop: asyncio.Event, latencies: list[float], user_id: Any, updates: list[float]
) -> None:
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    try:
        while not stop.is_set():
            target = random.randint(1, max_id)
            began = time.perf_counter()
            await conn.execute(
                "UPDATE public.search_hotels SET results = '{\"hotels\": []}', expires_at = now() + interval '1 day' "
                "WHERE id = %s",
                (target,),
            )
            latencies.append(time.perf_counter() - began)
            updates.append(latencies[-1])
            began = time.perf_counter()
            await conn.execute(
                "INSERT INTO public.search_hotels (user_id, destination, check_in_date, check_out_date, query_hash, "
                "results, source, expires_at) VALUES (%s, 'Lisbon', current_date, current_date + 1, 'h', '{}', "
                "'booking', now() + interval '1 day')",
                (user_id,),
            )
            latencies.append(time.perf_counter() - began)
    finally:
        await conn.close()


async def cleanup_run(url: str, statement: str, max_id: int) -> tuple[float, list[float], list[float], Any]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        uid = (await (await conn.execute("SELECT id FROM auth.users LIMIT 1")).fetchone())[0]  # type: ignore[index]
        stop = asyncio.Event()
        latencies: list[float] = []
        updates: list[float] = []
        tasks = [asyncio.create_task(writer(url, max_id, stop, latencies, uid, updates)) for _ in range(WRITERS)]
        await asyncio.sleep(0.5)  # writers running before the cleanup starts
        began = time.perf_counter()
        cursor = await conn.execute(statement)
        elapsed = time.perf_counter() - began
        result = await cursor.fetchone() if cursor.description else cursor.statusmessage
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks)
    return elapsed, latencies, updates, result


def cleanup_section(full: bool) -> str:
    expired = 1_000_000 if full else 100_000
    fresh = expired // 10
    cluster = Cluster()
    cluster.start()
    try:
        lines = [
            "## Scheduler: search-cache cleanup with concurrent writers",
            "",
            f"Embedded server; {expired:,} expired + {fresh:,} fresh rows in search_hotels; {WRITERS} writers each "
            "refreshing a random cache row (UPDATE by id, which waits if the cleanup holds that row) and inserting "
            "a new one, in autocommit, during the cleanup. Stall = one writer statement's latency.",
            "",
            "| cleanup | rows deleted | cleanup s | writer statements | writer p99 ms | longest writer stall ms "
            "(longest UPDATE) | goal |",
            "|---|---|---|---|---|---|---|",
        ]
        runs = [
            (
                "naive single `DELETE ... WHERE expires_at < now()` (baseline)",
                "DELETE FROM public.search_hotels WHERE expires_at < now()",
            ),
            (
                "`CALL maintenance.cleanup_expired_search_cache()` (batches of 1,000, COMMIT each, SKIP LOCKED)",
                "CALL maintenance.cleanup_expired_search_cache()",
            ),
        ]
        for label, statement in runs:
            fill(cluster.url, expired, fresh)
            elapsed, latencies, updates, result = asyncio.run(cleanup_run(cluster.url, statement, expired + fresh))
            deleted: Any = result
            if isinstance(result, tuple):
                deleted = sum(result[0].values())
            elif isinstance(result, str):
                deleted = int(result.split()[-1])
            goal = f"<= {GOAL_STALL_MS:.0f}" if statement.startswith("CALL") else "-"
            lines.append(
                f"| {label} | {deleted:,} | {elapsed:.2f} | {len(latencies):,} | {ms(percentile(latencies, 0.99))} | "
                f"{ms(max(latencies, default=0))} (UPDATE {ms(max(updates, default=0))}) | {goal} |"
            )
        return "\n".join(lines)
    finally:
        cluster.close()


# -- 3. failover ---------------------------------------------------------------------------------------------------


def leader_of(replicas: list[Replica]) -> Replica | None:
    for replica in replicas:
        try:
            components = replica.detailed_health()["components"]
            assert isinstance(components, dict)
            if components["scheduler"].get("leader"):
                return replica
        except OSError:
            continue
    return None


def failover_section(kills: int) -> str:
    cluster = Cluster()
    cluster.start()
    log_dir = Path(tempfile.mkdtemp(prefix="tsg-bench-failover-"))
    key = new_encryption_key()
    replicas = [
        Replica(cluster.url, key, extra_env={"TRIPSAGE_DATA_DIR": str(log_dir / f"r{i}")}) for i in range(kills + 1)
    ]
    takeovers: list[float] = []
    try:
        for replica in replicas:
            replica.start(log_dir)
        for replica in replicas:
            replica.wait_healthy()
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("SELECT cron.schedule('failover', '1 seconds', 'SELECT pg_sleep(60)')")
            for _ in range(kills):
                deadline = time.monotonic() + 60
                runid = None
                while runid is None and time.monotonic() < deadline:
                    row = conn.execute(
                        "SELECT runid FROM cron.job_run_details WHERE status = 'running' ORDER BY runid DESC LIMIT 1"
                    ).fetchone()
                    runid = row[0] if row else None
                    time.sleep(0.05)
                leader = leader_of(replicas)
                assert leader is not None and runid is not None
                killed_at = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
                leader.kill9()
                while time.monotonic() < deadline:
                    row = conn.execute(
                        "SELECT end_time FROM cron.job_run_details WHERE runid = %s AND return_message = "
                        "'server restarted'",
                        (runid,),
                    ).fetchone()
                    if row:
                        takeovers.append((row[0] - killed_at).total_seconds())
                        break
                    time.sleep(0.01)
            conn.execute("SELECT cron.unschedule('failover')")
    finally:
        for replica in replicas:
            replica.stop()
        cluster.close()
    figures = ", ".join(f"{t:.2f}" for t in takeovers)
    return "\n".join(
        [
            "## Scheduler: failover",
            "",
            f"{kills + 1} `tripsage serve` replicas (embedded server); a `1 seconds` job running `pg_sleep(60)`; "
            "kill -9 of the leader, then of the next one. Takeover = the interrupted run marked failed "
            "('server restarted') by the new leader - the kill.",
            "",
            "| kills | takeover s (each) | max s | goal |",
            "|---|---|---|---|",
            f"| {len(takeovers)} | {figures} | {max(takeovers, default=float('nan')):.2f} | <= 5 |",
        ]
    )


SECTIONS = ("delay", "cleanup", "failover")


def run(full: bool, only: tuple[str, ...] = SECTIONS) -> str:
    sections = [f"_Machine: {machine()}._"]
    if "delay" in only:
        sections.append(delay_section(full))
    if "cleanup" in only:
        sections.append(cleanup_section(full))
    if "failover" in only:
        sections.append(failover_section(2))
    return "\n\n".join(sections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="minute ticks on both schedulers, 1M-row cleanup")
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    args = parser.parse_args()
    print(run(args.full, tuple(args.only)))


if __name__ == "__main__":
    main()
