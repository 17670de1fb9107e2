"""The emulated scheduler in a real runtime (uvicorn, the real components) against real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from testkit import servers
from testkit.runtime import running_runtime, runtime_settings
from testkit.waiting import eventually

from tripsage.clock import SettableClock
from tripsage.exceptions import ConfigurationError
from tripsage.runtime import Runtime
from tripsage.scheduler.component import SchedulerComponent

DEADLINE = 30.0  # seconds: generous, for a loaded CI machine; never a timing assertion


def rows(url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def execute(url: str, query: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)  # type: ignore[arg-type]


def scheduler(running: Any) -> SchedulerComponent:
    (component,) = [c for c in running.runtime.components if isinstance(c, SchedulerComponent)]
    return component


def history(url: str, job: str) -> list[tuple[Any, ...]]:
    return rows(
        url,
        "SELECT d.status, d.return_message, d.start_time, d.end_time FROM cron.job_run_details d "
        "JOIN cron.job j USING (jobid) WHERE j.jobname = %s ORDER BY d.runid",
        (job,),
    )


async def test_second_jobs_run_once_per_tick_and_failures_are_recorded(database: str, tmp_path: Path) -> None:
    execute(database, "CREATE TABLE public.probe (at timestamptz DEFAULT clock_timestamp(), who text)")
    execute(
        database, "SELECT cron.schedule('every-second', '1 seconds', 'INSERT INTO public.probe (who) VALUES (''x'')')"
    )
    execute(database, "SELECT cron.schedule('broken', '1 seconds', 'SELECT 1/0')")
    async with running_runtime(runtime_settings(tmp_path), database) as running:

        async def enough() -> bool:
            return len(history(database, "every-second")) >= 3 and len(history(database, "broken")) >= 2

        await eventually(enough, "three runs")
        assert scheduler(running).health()["leader"] is True
    good = history(database, "every-second")
    assert {(s, m) for s, m, _, _ in good} == {("succeeded", "INSERT 0 1")}
    assert {(s, m) for s, m, _, _ in history(database, "broken")} == {("failed", "ERROR:  division by zero\n")}
    ticks = rows(
        database,
        "SELECT t.tick, t.outcome, t.runid FROM cron.job_tick t JOIN cron.job j USING (jobid) "
        "WHERE j.jobname = 'every-second' ORDER BY t.tick",
    )
    # Ticks are whole seconds, one run each; the side effect happened once per run.
    assert all(tick.microsecond == 0 for tick, _, _ in ticks)
    assert [o for _, o, _ in ticks] == ["started"] * len(ticks)
    assert rows(database, "SELECT count(*) FROM public.probe")[0][0] == len(good) == len(ticks)


def skipped_ticks(url: str, job: str) -> int:
    return int(
        rows(
            url,
            "SELECT count(*) FROM cron.job_tick t JOIN cron.job j USING (jobid)"
            " WHERE j.jobname = %s AND t.outcome = 'skipped'",
            (job,),
        )[0][0]
    )


async def test_overlapping_ticks_are_skipped_and_recorded(embedded_database: str, tmp_path: Path) -> None:
    url = embedded_database
    # A run lasts while the test holds an advisory lock (instead of sleeping through a slow command), and the clock
    # moves past the next ticks while it runs.
    execute(url, "SELECT cron.schedule('slow', '1 seconds', 'SELECT pg_advisory_xact_lock(7301)')")
    clock = SettableClock()
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(7301)")
        async with running_runtime(runtime_settings(tmp_path), url, clock=clock):
            await eventually(lambda: _async(any(s == "running" for s, *_ in history(url, "slow"))), "a run under way")
            clock.advance(3)
            await eventually(lambda: _async(skipped_ticks(url, "slow") >= 1), "a tick skipped while the run lasts")
            holder.execute("SELECT pg_advisory_unlock(7301)")

            async def finished_twice() -> bool:
                return sum(1 for s, *_ in history(url, "slow") if s == "succeeded") >= 2

            await eventually(finished_twice, "two finished runs")
    runs = [(start, end) for status, _, start, end in history(url, "slow") if status == "succeeded"]
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert start >= end  # never two at once
    assert skipped_ticks(url, "slow") >= 1


async def test_statement_timeout_vacuum_and_username(embedded_database: str, tmp_path: Path) -> None:
    url = embedded_database
    execute(url, "CREATE ROLE cron_job_owner LOGIN")
    try:
        execute(url, "CREATE TABLE public.who_ran (name text)")
        execute(url, "GRANT INSERT ON public.who_ran TO cron_job_owner")
        execute(url, "GRANT USAGE ON SCHEMA cron TO cron_job_owner")
        execute(
            url,
            "SELECT cron.schedule_in_database('as-owner', '1 seconds', "
            "'INSERT INTO public.who_ran SELECT current_user', current_database(), 'cron_job_owner')",
        )
        (jobid,) = rows(url, "SELECT cron.schedule('too-slow', '1 seconds', 'SELECT pg_sleep(5)')")[0]
        execute(url, "INSERT INTO cron.job_option (jobid, statement_timeout) VALUES (%s, '300 ms')", (jobid,))
        execute(url, "SELECT cron.schedule('vacuum', '1 seconds', 'VACUUM (ANALYZE) public.trips, public.flights')")
        async with running_runtime(runtime_settings(tmp_path), url):

            async def all_ran() -> bool:
                return all(history(url, name) for name in ("as-owner", "too-slow", "vacuum")) and all(
                    h[-1][0] != "starting" and h[-1][0] != "running"
                    for h in (history(url, name) for name in ("as-owner", "too-slow", "vacuum"))
                )

            await eventually(all_ran, "each job once")
            execute(url, "UPDATE cron.job SET active = false WHERE jobname = 'as-owner'")
        assert history(url, "too-slow")[0][:2] == ("failed", "ERROR:  canceling statement due to statement timeout\n")
        assert history(url, "vacuum")[0][:2] == ("succeeded", "VACUUM")
        assert {r[0] for r in rows(url, "SELECT name FROM public.who_ran")} == {"cron_job_owner"}
        assert rows(url, "SELECT DISTINCT username FROM cron.job_run_details WHERE command LIKE 'INSERT%%'") == [
            ("cron_job_owner",)
        ]
    finally:
        execute(url, "DROP TABLE IF EXISTS public.who_ran")
        execute(url, "DELETE FROM cron.job WHERE username = 'cron_job_owner'")
        execute(url, "REVOKE USAGE ON SCHEMA cron FROM cron_job_owner")
        execute(url, "DROP ROLE cron_job_owner")


async def test_changes_and_pauses_are_picked_up_and_interrupted_runs_marked(
    embedded_database: str, tmp_path: Path
) -> None:
    url = embedded_database
    # A run left 'running' by a leader that died.
    execute(url, "SELECT cron.schedule('orphan', '@daily', 'SELECT 1')")
    execute(
        url,
        "INSERT INTO cron.job_run_details (jobid, status, start_time, job_pid) "
        "SELECT jobid, 'running', now() - interval '1 minute', 999999 FROM cron.job WHERE jobname = 'orphan'",
    )
    execute(url, "SELECT cron.schedule('pulse', '1 seconds', 'SELECT 1')")  # its ticks show the leader's rounds
    clock = SettableClock()
    async with running_runtime(runtime_settings(tmp_path), url, clock=clock):
        await eventually(lambda: _async(history(url, "orphan")[0][:2] == ("failed", "server restarted")), "marking")
        execute(url, "SELECT cron.schedule('late-comer', '1 seconds', 'SELECT 42')")
        await eventually(lambda: _async(bool(history(url, "late-comer"))), "the new job to run")
        (jobid,) = rows(url, "SELECT jobid FROM cron.job WHERE jobname = 'late-comer'")[0]
        execute(url, "SELECT cron.alter_job(%s, active := false)", (jobid,))

        async def a_round_leaves_it_out() -> bool:
            """Five seconds pass at once; the leader's next round claims a tick of pulse, and, in the same round, one
            of late-comer's (run or skipped) unless the leader has read the pause."""
            before = ticks(url, "late-comer")
            clock.advance(5)
            moved_to = dt.datetime.fromtimestamp(int(clock.time()), dt.UTC)
            await eventually(lambda: _async(any(t >= moved_to for t in ticks(url, "pulse"))), "a round of the leader")
            return ticks(url, "late-comer") == before

        await eventually(a_round_leaves_it_out, "the leader to read the pause")
        count = len(history(url, "late-comer"))
        assert await a_round_leaves_it_out()
        assert len(history(url, "late-comer")) == count  # paused: no new runs


def ticks(url: str, job: str) -> list[dt.datetime]:
    found = rows(
        url, "SELECT t.tick FROM cron.job_tick t JOIN cron.job j USING (jobid) WHERE j.jobname = %s ORDER BY 1", (job,)
    )
    return [tick for (tick,) in found]


async def _async_value(value: bool) -> bool:
    return value


def _async(value: bool) -> Awaitable[bool]:
    return _async_value(value)


async def test_two_replicas_one_leader_each_tick_once(embedded_database: str, tmp_path: Path) -> None:
    url = embedded_database
    execute(url, "SELECT cron.schedule('shared', '1 seconds', 'SELECT 1')")
    async with (
        running_runtime(runtime_settings(tmp_path / "a"), url) as first,
        running_runtime(runtime_settings(tmp_path / "b"), url) as second,
    ):
        await eventually(lambda: _async(len(history(url, "shared")) >= 4), "four runs")
        leaders = [scheduler(r).health()["leader"] for r in (first, second)]
        assert sorted(leaders) == [False, True]
    # One run per tick of the job (the seeded maintenance jobs may share a tick with it at a minute boundary).
    started = rows(
        url,
        "SELECT t.runid FROM cron.job_tick t JOIN cron.job j USING (jobid)"
        " WHERE j.jobname = 'shared' AND t.outcome = 'started' ORDER BY 1",
    )
    runs = rows(
        url,
        "SELECT d.runid FROM cron.job_run_details d JOIN cron.job j USING (jobid)"
        " WHERE j.jobname = 'shared' ORDER BY 1",
    )
    assert started == runs


async def test_idle_when_pg_cron_is_native(system_server: servers.Server, tmp_path: Path) -> None:
    async with running_runtime(runtime_settings(tmp_path), system_server.admin_url) as running:
        health = scheduler(running).health()
    assert health == {"status": "ok", "emulated": False, "mode": "native", "note": "pg_cron runs the jobs"}


async def test_disabled_by_setting(embedded_database: str, tmp_path: Path) -> None:
    execute(embedded_database, "SELECT cron.schedule('never', '1 seconds', 'SELECT 1')")
    async with running_runtime(runtime_settings(tmp_path, cron_enabled=False), embedded_database) as running:
        health = scheduler(running).health()
        # Started without a task of its own (no listener, no leader): nothing that could ever run a job.
        assert [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("scheduler-")] == []
    assert health["mode"] == "disabled" and health["emulated"] is False
    assert history(embedded_database, "never") == []


async def test_the_servers_cron_timezone_is_used_and_checked(database: str, tmp_path: Path) -> None:
    # pg_cron's cron.timezone, where the server has one, when TRIPSAGE_CRON_TIMEZONE is not set (here a placeholder
    # set on the database: the system server's preloaded pg_cron 1.4.2 predates the setting); a zone Python does
    # not know stops the start.
    dbname = rows(database, "SELECT current_database()")[0][0]

    def set_cron_timezone(zone: str) -> None:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} SET cron.timezone = {}").format(sql.Identifier(dbname), zone))

    async with running_runtime(runtime_settings(tmp_path), database) as running:
        assert scheduler(running).health()["timezone"] == "UTC"
    set_cron_timezone("Europe/Berlin")
    async with running_runtime(runtime_settings(tmp_path), database) as running:
        assert scheduler(running).health()["timezone"] == "Europe/Berlin"
    async with running_runtime(runtime_settings(tmp_path, cron_timezone="Asia/Tokyo"), database) as running:
        assert scheduler(running).health()["timezone"] == "Asia/Tokyo"
    set_cron_timezone("Europe/Berln")
    # The scheduler alone: the other components are not meant to be stopped after a failed start.
    runtime = Runtime(settings=runtime_settings(tmp_path), database_url=database, components=[SchedulerComponent()])
    try:
        with pytest.raises(ConfigurationError, match=r"^cron.timezone \(the database server's setting\): unknown"):
            await runtime.start()
    finally:
        await runtime.stop()


async def test_a_forged_run_cannot_get_another_session_terminated(database: str, tmp_path: Path) -> None:
    # service_role may write cron.job_run_details (the runtime records runs as it). A row it forges as 'running'
    # with the pid of someone else's session is marked failed by a new leader, but that session is not a job's
    # connection, so the leader (a superuser here) must not terminate it.
    url = database
    with psycopg.connect(url, autocommit=True) as victim:
        (pid,) = victim.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        with psycopg.connect(url, autocommit=True) as forger:
            forger.execute("SET ROLE service_role")
            forger.execute(
                "INSERT INTO cron.job_run_details (status, start_time, job_pid, username) "
                "VALUES ('running', now(), %s, 'service_role')",
                (pid,),
            )
        async with running_runtime(runtime_settings(tmp_path), url):
            await eventually(
                lambda: _async(
                    rows(url, "SELECT status FROM cron.job_run_details WHERE job_pid = %s", (pid,)) == [("failed",)]
                ),
                "the forged run marked failed",
            )
        assert victim.execute("SELECT 1").fetchone() == (1,)


async def test_return_messages_are_pg_cron_s(database: str, tmp_path: Path) -> None:
    # pg_cron (src/pg_cron.c, ProcessQueryResult) records the last result of a command: a command's tag, "N row(s)"
    # for a query, and libpq's text of an error (PQresultErrorMessage: "ERROR:  ...\n" with DETAIL/HINT/CONTEXT).
    expected = {
        "query": ("SELECT 1", ("succeeded", "1 row")),
        "empty-query": ("SELECT 1 WHERE false", ("succeeded", "0 rows")),
        "queries": ("SELECT 1; SELECT 1 UNION SELECT 2", ("succeeded", "2 rows")),
        "commands": (
            "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1), (2)",
            ("succeeded", "INSERT 0 2"),
        ),
        "error": ("SELECT 1/0", ("failed", "ERROR:  division by zero\n")),
        "error-details": (
            "DO $$BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'd', HINT = 'h'; END$$",
            (
                "failed",
                "ERROR:  boom\nDETAIL:  d\nHINT:  h\nCONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE\n",
            ),
        ),
    }
    for name, (command, _) in expected.items():
        execute(database, "SELECT cron.schedule(%s, '1 seconds', %s)", (name, command))
    async with running_runtime(runtime_settings(tmp_path), database):

        async def all_ran() -> bool:
            return all(any(h[0] in ("succeeded", "failed") for h in history(database, name)) for name in expected)

        await eventually(all_ran, "each job once")
    for name, (_, outcome) in expected.items():
        finished = [h[:2] for h in history(database, name) if h[0] in ("succeeded", "failed")]
        assert set(finished) == {outcome}, name
