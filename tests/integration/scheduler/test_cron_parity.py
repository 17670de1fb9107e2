"""pg_cron 1.6's errors and privilege model, on the emulation (both servers) and, where 1.4.2 shares them, on the
native pg_cron of the system server: the same calls must give the same message and SQLSTATE.

Facts from pg_cron's source (src/job_metadata.c, pg_cron.sql and its upgrade scripts): messages raised without an
error code are XX000; `cron.job` is granted SELECT only (RLS: your own rows), `cron.job_run_details` SELECT and
DELETE; jobs change only through the functions; a non-owner's `cron.unschedule(id)` needs DELETE on `cron.job`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from testkit import servers

Conn = psycopg.Connection[tuple[object, ...]]


def failure(conn: Conn, query: str, params: tuple[object, ...] = ()) -> tuple[str | None, str | None]:
    """(message, SQLSTATE) of the error `query` raises; nothing it did is kept (it runs in a rolled-back block)."""
    try:
        with conn.transaction():
            conn.execute(query, params)  # type: ignore[arg-type]
    except psycopg.Error as error:
        return error.diag.message_primary, error.diag.sqlstate
    raise AssertionError(f"no error from {query}")


@contextmanager
def role(conn: Conn, *options: str) -> Iterator[str]:
    """A throwaway role (LOGIN unless told otherwise) with USAGE on schema cron."""
    name = f"cron_parity_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} " + " ".join(options or ("LOGIN",))).format(sql.Identifier(name)))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA cron TO {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        conn.execute("RESET ROLE")
        conn.execute("DELETE FROM cron.job WHERE username = %s", (name,))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def as_role(conn: Conn, name: str) -> None:
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(name)))


# Calls made as a superuser, with pg_cron's answer; {job} is a job of the caller, {nologin} a role without LOGIN.
ERRORS: list[tuple[str, str, str]] = [
    ("SELECT cron.schedule('j', 'bad', NULL)", "command can not be NULL", "XX000"),
    ("SELECT cron.schedule('j', NULL, 'SELECT 1')", "schedule can not be NULL", "XX000"),
    ("SELECT cron.schedule(NULL, '* * * * *', 'SELECT 1')", "job_name can not be NULL", "XX000"),
    ("SELECT cron.schedule('j', 'bad', 'SELECT 1')", "invalid schedule: bad", "22023"),
    (
        "SELECT cron.schedule_in_database('j', '* * * * *', 'SELECT 1', 'nosuchdb')",
        'database "nosuchdb" does not exist',
        "3D000",
    ),
    (
        "SELECT cron.schedule_in_database('j', 'bad', 'SELECT 1', 'nosuchdb')",
        "invalid schedule: bad",
        "22023",
    ),
    (
        "SELECT cron.schedule_in_database('j', '* * * * *', 'SELECT 1', current_database(), 'nosuchrole')",
        'role "nosuchrole" does not exist',
        "XX000",
    ),
    (
        "SELECT cron.schedule_in_database('j', '* * * * *', 'SELECT 1', current_database(), '{nologin}')",
        'role "{nologin}" can not log in',
        "XX000",
    ),
    ("SELECT cron.unschedule(999999::bigint)", "could not find valid entry for job 999999", "XX000"),
    ("SELECT cron.unschedule('nope')", "could not find valid entry for job 'nope'", "XX000"),
    ("SELECT cron.alter_job(NULL, active := true)", "job_id can not be NULL", "XX000"),
    ("SELECT cron.alter_job(999999, active := true)", "Job 999999 does not exist or you don't own it", "XX000"),
    ("SELECT cron.alter_job({job})", "no updates specified", "XX000"),
    ("SELECT cron.alter_job({job}, schedule := 'nope')", "invalid schedule: nope", "22023"),
    ("SELECT cron.alter_job({job}, username := 'nosuchrole')", 'role "nosuchrole" does not exist', "XX000"),
    ("SELECT cron.alter_job({job}, username := '{nologin}')", 'role "{nologin}" can not log in', "XX000"),
    ("SELECT cron.alter_job({job}, database := 'nosuchdb')", 'database "nosuchdb" does not exist', "3D000"),
]


def check_errors(conn: Conn, emulated: bool) -> None:
    name = f"parity-{uuid.uuid4().hex[:8]}"
    (job,) = conn.execute("SELECT cron.schedule(%s, '@daily', 'SELECT 1')", (name,)).fetchone() or (0,)
    try:
        with role(conn, "NOLOGIN") as nologin:
            for query, message, sqlstate in ERRORS:
                query = query.replace("{job}", str(job)).replace("{nologin}", nologin)
                expected = (message.replace("{nologin}", nologin), sqlstate)
                assert failure(conn, query) == expected, query
            detail = None
            try:
                conn.execute("SELECT cron.alter_job(%s, username := %s)", (job, nologin))
            except psycopg.Error as error:
                detail = error.diag.message_detail
            assert detail == "Jobs may only be run by roles that have the LOGIN attribute."
        # Nothing was scheduled or changed half-way.
        assert conn.execute("SELECT count(*) FROM cron.job WHERE jobname = 'j'").fetchone() == (0,)
        row = conn.execute("SELECT schedule, database, active FROM cron.job WHERE jobid = %s", (job,)).fetchone()
        assert row == ("@daily", conn.info.dbname, True)
    finally:
        conn.execute("SELECT cron.unschedule(%s::bigint)", (job,))


def test_errors_are_pg_cron_s(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        check_errors(conn, emulated=True)


def test_errors_of_native_pg_cron(system_server: servers.Server) -> None:
    with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
        check_errors(conn, emulated=False)


def check_privileges(conn: Conn) -> None:
    """An owner, a stranger and service_role against the same jobs."""
    with role(conn) as owner, role(conn) as stranger:
        as_role(conn, owner)
        (jobid,) = conn.execute("SELECT cron.schedule('owned', '@daily', 'SELECT 1')").fetchone() or (0,)
        assert conn.execute("SELECT username FROM cron.job WHERE jobid = %s", (jobid,)).fetchone() == (owner,)
        # Written only through the functions: no INSERT, UPDATE or DELETE, not even on one's own rows.
        denied = ("permission denied for table job", "42501")
        assert failure(conn, "UPDATE cron.job SET command = 'SELECT 2' WHERE jobid = %s", (jobid,)) == denied
        assert failure(conn, "DELETE FROM cron.job WHERE jobid = %s", (jobid,)) == denied
        assert (
            failure(
                conn, "INSERT INTO cron.job (schedule, command, username) VALUES ('@daily', 'SELECT 1', %s)", (owner,)
            )
            == denied
        )
        as_role(conn, stranger)
        assert conn.execute("SELECT count(*) FROM cron.job WHERE jobid = %s", (jobid,)).fetchone() == (0,)
        assert failure(conn, "SELECT cron.unschedule(%s::bigint)", (jobid,)) == denied
        assert failure(conn, "SELECT cron.unschedule('owned')") == (
            "could not find valid entry for job 'owned'",
            "XX000",
        )
        conn.execute("RESET ROLE")
        conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION cron.alter_job, cron.schedule_in_database TO {}").format(
                sql.Identifier(stranger)
            )
        )
        as_role(conn, stranger)
        assert failure(conn, "SELECT cron.alter_job(%s, command := 'SELECT 2')", (jobid,)) == (
            f"Job {jobid} does not exist or you don't own it",
            "XX000",
        )
        assert failure(conn, "SELECT cron.alter_job(%s, username := %s)", (jobid, stranger)) == (
            "must be superuser to alter username",
            "XX000",
        )
        assert failure(
            conn,
            "SELECT cron.schedule_in_database('theirs', '@daily', 'SELECT 1', current_database(), %s)",
            (owner,),
        ) == ("must be superuser to create a job for another role", "XX000")
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT command, username FROM cron.job WHERE jobid = %s", (jobid,)).fetchone() == (
            "SELECT 1",
            owner,
        )
        # A superuser may move a job to another user, and unschedule anyone's.
        conn.execute("SELECT cron.alter_job(%s, username := %s)", (jobid, stranger))
        assert conn.execute("SELECT username FROM cron.job WHERE jobid = %s", (jobid,)).fetchone() == (stranger,)
        assert conn.execute("SELECT cron.unschedule(%s::bigint)", (jobid,)).fetchone() == (True,)


def test_privilege_model_of_the_emulation(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        check_privileges(conn)
        # The repro: service_role (BYPASSRLS) must not get a job run as the superuser.
        conn.execute("SET ROLE service_role")
        assert failure(
            conn,
            "INSERT INTO cron.job (jobname, schedule, command, username) "
            "VALUES ('x', '1 seconds', 'CREATE TABLE public.pwn AS SELECT current_user', 'postgres')",
        ) == ("permission denied for table job", "42501")
        assert failure(conn, "UPDATE cron.job SET username = 'service_role'") == (
            "permission denied for table job",
            "42501",
        )
        assert failure(conn, "SELECT cron.alter_job(1, username := 'postgres')") == (
            "must be superuser to alter username",
            "XX000",
        )
        conn.execute("RESET ROLE")


def test_privilege_model_of_native_pg_cron(system_server: servers.Server) -> None:
    with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
        check_privileges(conn)


def test_connect_privilege_is_checked(database: str, server: servers.Server) -> None:
    closed = f"cron_closed_{uuid.uuid4().hex[:8]}"
    with server.admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(closed)))
        admin.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(closed)))
    try:
        with psycopg.connect(database, autocommit=True) as conn, role(conn) as user:
            (jobid,) = conn.execute("SELECT cron.schedule('open', '@daily', 'SELECT 1')").fetchone() or (0,)
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION cron.alter_job, cron.schedule_in_database TO {}").format(
                    sql.Identifier(user)
                )
            )
            expected = (f"User {user} does not have CONNECT privilege on {closed}", "XX000")
            assert (
                failure(conn, "SELECT cron.alter_job(%s, database := %s, username := %s)", (jobid, closed, user))
                == expected
            )
            assert (
                failure(
                    conn,
                    "SELECT cron.schedule_in_database('closed', '@daily', 'SELECT 1', %s, %s)",
                    (closed, user),
                )
                == expected
            )
            as_role(conn, user)
            (mine,) = conn.execute("SELECT cron.schedule('mine', '@daily', 'SELECT 1')").fetchone() or (0,)
            assert failure(conn, "SELECT cron.alter_job(%s, database := %s)", (mine, closed)) == expected
            assert (
                failure(conn, "SELECT cron.schedule_in_database('closed', '@daily', 'SELECT 1', %s)", (closed,))
                == expected
            )
            conn.execute("RESET ROLE")
            conn.execute("SELECT cron.unschedule(%s::bigint)", (jobid,))
    finally:
        with server.admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(closed)))


def test_superuser_jobs_can_be_disallowed(embedded_database: str) -> None:
    # cron.enable_superuser_jobs = off (here a placeholder on the database; pg_cron's is server-wide).
    with psycopg.connect(embedded_database, autocommit=True) as conn:
        dbname = conn.info.dbname
        conn.execute(sql.SQL("ALTER DATABASE {} SET cron.enable_superuser_jobs = off").format(sql.Identifier(dbname)))
    with psycopg.connect(embedded_database, autocommit=True) as conn, role(conn) as user:
        refused = ("cannot schedule jobs as superuser", "42501")
        assert failure(conn, "SELECT cron.schedule('su', '@daily', 'SELECT 1')") == refused
        (jobid,) = conn.execute(
            "SELECT cron.schedule_in_database('theirs', '@daily', 'SELECT 1', current_database(), %s)", (user,)
        ).fetchone() or (0,)
        assert failure(conn, "SELECT cron.alter_job(%s, username := 'postgres')", (jobid,)) == refused
        assert (
            failure(conn, "SELECT cron.alter_job(%s, active := false)", (jobid,)) == refused
        )  # pg_cron: as the caller


def test_jobs_belong_to_the_calling_role(database: str) -> None:
    # The functions are SECURITY DEFINER, yet a job belongs to the role that called them: SET ROLE's role, else the
    # session user. Inside someone else's SECURITY DEFINER function too (pg_cron would give it to that function's
    # owner; docs/scheduler.md, remaining differences): a superuser's function cannot be used to get a superuser job.
    with psycopg.connect(database, autocommit=True) as conn, role(conn) as user, role(conn, "NOLOGIN") as group:
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user)))
        conn.execute(
            "CREATE FUNCTION public.cron_parity_definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER "
            "SET search_path = '' AS $$ SELECT cron.schedule('via-definer', '@daily', 'SELECT 1') $$"
        )
        try:
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION public.cron_parity_definer() TO {}").format(sql.Identifier(user))
            )
            as_role(conn, user)
            conn.execute("SELECT cron.schedule('as-user', '@daily', 'SELECT 1')")
            as_role(conn, group)
            conn.execute("SELECT cron.schedule('as-group', '@daily', 'SELECT 1')")
            as_role(conn, user)
            conn.execute("SELECT public.cron_parity_definer()")
            conn.execute("RESET ROLE")
            owners = dict(
                conn.execute(
                    "SELECT jobname, username FROM cron.job WHERE jobname IN ('as-user', 'as-group', 'via-definer')"
                ).fetchall()
            )
            assert owners == {"as-user": user, "as-group": group, "via-definer": user}
        finally:
            conn.execute("RESET ROLE")
            conn.execute("DROP FUNCTION public.cron_parity_definer()")


def check_run_details(conn: Conn) -> None:
    """cron.job_run_details: SELECT and DELETE of one's own runs only; no INSERT or UPDATE."""
    with role(conn) as owner, role(conn) as stranger:
        for user in (owner, stranger):
            conn.execute(
                "INSERT INTO cron.job_run_details (jobid, runid, username, command, status, return_message) "
                "VALUES (0, nextval('cron.runid_seq'), %s, 'SELECT 1', 'succeeded', '1 row')",
                (user,),
            )
        try:
            as_role(conn, owner)
            assert conn.execute("SELECT username FROM cron.job_run_details").fetchall() == [(owner,)]
            denied = ("permission denied for table job_run_details", "42501")
            assert failure(conn, "UPDATE cron.job_run_details SET status = 'failed'") == denied
            assert failure(conn, "INSERT INTO cron.job_run_details (username) VALUES (%s)", (owner,)) == denied
            assert conn.execute("DELETE FROM cron.job_run_details").rowcount == 1
            conn.execute("RESET ROLE")
            left = conn.execute(
                "SELECT username FROM cron.job_run_details WHERE username IN (%s, %s)", (owner, stranger)
            )
            assert left.fetchall() == [(stranger,)]
        finally:
            conn.execute("RESET ROLE")
            conn.execute("DELETE FROM cron.job_run_details WHERE username IN (%s, %s)", (owner, stranger))


def test_run_details_of_the_emulation(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        check_run_details(conn)


def test_run_details_of_native_pg_cron(system_server: servers.Server) -> None:
    with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
        check_run_details(conn)
