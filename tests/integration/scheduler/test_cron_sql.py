"""The pg_cron SQL surface: the emulation on both servers (every per-test database), native pg_cron 1.4.2 in the
system server's `postgres` database; the same syntax table and the same API calls against each."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import servers

from tests.unit.test_cron_syntax import SYNTAX
from tripsage import cron

EIGHT_JOBS = {
    "cleanup-expired-search-cache": "0 2 * * *",
    "archive-old-session-memories": "0 3 * * *",
    "update-table-statistics": "0 1 * * *",
    "monitor-expiring-api-keys": "0 9 * * *",
    "archive-completed-trips": "0 4 * * 0",
    "vacuum-maintenance": "0 5 * * 0",
    "generate-memory-embeddings": "*/30 * * * *",
    "monitor-database-health": "*/5 * * * *",
}


def schedule_outcome(conn: psycopg.Connection[tuple[object, ...]], name: str, schedule: str) -> str | None:
    """None when cron.schedule accepted the schedule (the job is removed again), else the error message."""
    try:
        conn.execute("SELECT cron.schedule(%s, %s, 'SELECT 1')", (name, schedule))
    except psycopg.Error as error:
        return error.diag.message_primary
    conn.execute("SELECT cron.unschedule(%s)", (name,))
    return None


def test_emulated_syntax_table(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        for schedule, accepted, _native in SYNTAX:
            outcome = schedule_outcome(conn, "syntax-probe", schedule)
            if accepted:
                assert outcome is None, (schedule, outcome)
            else:
                assert outcome == f"invalid schedule: {schedule}", schedule


def test_native_pg_cron_142_syntax_table(system_server: servers.Server) -> None:
    name = f"syntax-probe-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'").fetchone()
        assert version is not None and version[0].startswith("1.4"), version
        for schedule, _accepted, native in SYNTAX:
            outcome = schedule_outcome(conn, name, schedule)
            if native:
                assert outcome is None, (schedule, outcome)
            else:
                assert outcome == f"invalid schedule: {schedule}", schedule


# Strings built from the pieces pg_cron's grammar is made of, plus noise; most are invalid, many are valid.
PIECES = st.sampled_from(
    [
        "*",
        "*/",
        "/",
        "-",
        ",",
        " ",
        "  ",
        "\t",
        "\n",
        "#",
        "$",
        "@",
        "0",
        "1",
        "5",
        "7",
        "12",
        "23",
        "30",
        "59",
        "60",
        "61",
        "99",
        "mon",
        "FRI",
        "sun",
        "jan",
        "Dec",
        "x",
        "daily",
        "hourly",
        "reboot",
        "second",
        "seconds",
        "+",
        ";",
        "@daily",
        "@weekly",
        "* * * * *",
        "0 0 * * *",
        "1 seconds",
    ]
)
SCHEDULES = st.lists(PIECES, max_size=12).map("".join) | st.text(max_size=20).filter(lambda t: "\0" not in t)


def test_sql_and_python_parsers_agree(embedded_database: str) -> None:
    with psycopg.connect(embedded_database, autocommit=True) as conn:

        @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(SCHEDULES)
        def agree(text: str) -> None:
            row = conn.execute("SELECT cron._parse_schedule(%s)", (text,)).fetchone()
            assert row is not None
            try:
                expected: dict[str, object] | None = cron.parse(text).as_dict()
            except cron.InvalidSchedule:
                expected = None
            assert row[0] == expected, text

        agree()


def test_sql_parser_expands_like_python_on_the_table(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        for schedule, accepted, _native in SYNTAX:
            row = conn.execute("SELECT cron._parse_schedule(%s)", (schedule,)).fetchone()
            assert row is not None
            assert row[0] == (cron.parse(schedule).as_dict() if accepted else None), schedule


def test_the_eight_jobs_are_scheduled_on_both(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        jobs = dict(conn.execute("SELECT jobname, schedule FROM list_scheduled_jobs() WHERE active").fetchall())
        status = conn.execute(
            "SELECT status, details FROM verify_automation_setup() WHERE component = 'scheduled_jobs'"
        ).fetchone()
        extension = conn.execute("SELECT status, version FROM verify_extensions() WHERE name = 'pg_cron'").fetchone()
    for name, schedule in EIGHT_JOBS.items():
        assert jobs[name] == schedule
    assert jobs["cleanup-job-run-details"] == "15 * * * *"
    assert jobs["cleanup-system-metrics"] == "45 * * * *"
    assert status == ("ok", "8 maintenance jobs scheduled and active")
    assert extension == ("emulated", "1.6")


def test_native_database_has_the_eight_jobs(system_server: servers.Server) -> None:
    with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
        jobs = dict(conn.execute("SELECT jobname, schedule FROM list_scheduled_jobs() WHERE active").fetchall())
        status = conn.execute(
            "SELECT status FROM verify_automation_setup() WHERE component = 'scheduled_jobs'"
        ).fetchone()
        conn.execute("SELECT * FROM get_job_history('monitor-database-health', 5)").fetchall()
    for name, schedule in EIGHT_JOBS.items():
        assert jobs[name] == schedule
    assert status == ("ok",)


def test_named_schedule_is_an_upsert_and_unschedule_reports_unknown_jobs(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        first = conn.execute("SELECT cron.schedule('probe', '* * * * *', 'SELECT 1')").fetchone()
        second = conn.execute("SELECT cron.schedule('probe', '*/2 * * * *', 'SELECT 2')").fetchone()
        assert first == second
        row = conn.execute("SELECT schedule, command, username FROM cron.job WHERE jobname = 'probe'").fetchone()
        assert row == ("*/2 * * * *", "SELECT 2", "postgres")
        anonymous = conn.execute("SELECT cron.schedule('30 seconds', 'SELECT 3')").fetchone()
        assert anonymous is not None
        assert conn.execute("SELECT cron.unschedule(%s)", (anonymous[0],)).fetchone() == (True,)
        with pytest.raises(psycopg.errors.InternalError, match="could not find valid entry for job 'nope'"):
            conn.execute("SELECT cron.unschedule('nope')")
        with pytest.raises(psycopg.errors.InternalError, match="could not find valid entry for job 999999"):
            conn.execute("SELECT cron.unschedule(999999::bigint)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"^invalid schedule: \* \* \*\n") as error:
            conn.execute("SELECT cron.schedule('bad', '* * *', 'SELECT 1')")
        assert error.value.diag.message_hint == "Use cron format (e.g. 5 4 * * *), or interval format '[1-59] seconds'"
        # Direct writes are held to the same syntax.
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE cron.job SET schedule = '61 seconds' WHERE jobname = 'probe'")


def test_alter_job_and_schedule_in_database(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        (jobid,) = conn.execute("SELECT cron.schedule('probe', '* * * * *', 'SELECT 1')").fetchone() or (0,)
        conn.execute("SELECT cron.alter_job(%s, schedule := '0 0 * * *', active := false)", (jobid,))
        row = conn.execute("SELECT schedule, command, active FROM cron.job WHERE jobid = %s", (jobid,)).fetchone()
        assert row == ("0 0 * * *", "SELECT 1", False)
        with pytest.raises(psycopg.errors.InternalError, match="no updates specified"):
            conn.execute("SELECT cron.alter_job(%s)", (jobid,))
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid schedule: nope"):
            conn.execute("SELECT cron.alter_job(%s, schedule := 'nope')", (jobid,))
        with pytest.raises(psycopg.errors.InternalError, match="Job 424242 does not exist or you don't own it"):
            conn.execute("SELECT cron.alter_job(424242, active := true)")
        dbname = conn.info.dbname
        other = conn.execute(
            "SELECT cron.schedule_in_database('elsewhere', '@daily', 'SELECT 1', 'postgres')"
        ).fetchone()
        assert other is not None
        assert conn.execute("SELECT database FROM cron.job WHERE jobid = %s", (other[0],)).fetchone() == ("postgres",)
        with pytest.raises(psycopg.errors.InternalError, match='role "service_role" can not log in'):
            conn.execute("SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', %s, 'service_role')", (dbname,))
        # Like pg_cron, alter_job and schedule_in_database are not for everyone.
        conn.execute("CREATE ROLE cron_probe_user LOGIN")
        try:
            conn.execute("SET ROLE cron_probe_user")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT cron.alter_job(%s, active := true)", (jobid,))
        finally:
            conn.execute("RESET ROLE")
            conn.execute("DROP ROLE cron_probe_user")


def test_users_see_and_change_only_their_own_jobs(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SELECT cron.schedule('admin-job', '@daily', 'SELECT 1')")
        conn.execute("CREATE ROLE cron_probe_owner LOGIN")
        conn.execute("GRANT USAGE ON SCHEMA cron TO cron_probe_owner")
        try:
            conn.execute("SET ROLE cron_probe_owner")
            (mine,) = conn.execute("SELECT cron.schedule('mine', '@hourly', 'SELECT 1')").fetchone() or (0,)
            names = [r[0] for r in conn.execute("SELECT jobname FROM cron.job").fetchall()]
            assert names == ["mine"]
            with pytest.raises(psycopg.errors.InternalError, match="could not find valid entry"):
                conn.execute("SELECT cron.unschedule('admin-job')")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO cron.job (schedule, command, username) VALUES ('@daily', 'x', 'postgres')")
            assert conn.execute("SELECT cron.unschedule(%s)", (mine,)).fetchone() == (True,)
        finally:
            conn.execute("RESET ROLE")
            conn.execute("REVOKE USAGE ON SCHEMA cron FROM cron_probe_owner")
            conn.execute("DROP ROLE cron_probe_owner")
