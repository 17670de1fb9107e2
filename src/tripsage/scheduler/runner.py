"""Execute one run of a job, as pg_cron does: its own connection to the job's database, as the job's user, the
command sent as one top-level query in autocommit (so VACUUM and CALL with COMMIT work), with a statement timeout.
The outcome goes to cron.job_run_details: the command tag of the last statement, or PostgreSQL's error message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import pq, sql

from tripsage import queries_for
from tripsage.db import supabase_vault
from tripsage.db.connector import Database, connect
from tripsage.exceptions import DatabaseError, TripSageError

log = logging.getLogger(__name__)
Q = queries_for("tripsage.scheduler")
Session = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Job:
    jobid: int
    jobname: str | None
    schedule: str
    command: str
    database: str
    username: str
    statement_timeout_s: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            jobid=row["jobid"],
            jobname=row["jobname"],
            schedule=row["schedule"],
            command=row["command"],
            database=row["database"],
            username=row["username"],
            statement_timeout_s=row.get("statement_timeout_s"),
        )


@dataclass(frozen=True)
class Outcome:
    runid: int
    status: str  # succeeded | failed
    message: str
    started: datetime | None = None  # when the command was sent


def database_url(base_url: str, database: str) -> str:
    """`base_url` (the runtime's connection) pointed at `database`."""
    info = psycopg.conninfo.conninfo_to_dict(base_url)
    info["dbname"] = database
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


async def _become(conn: psycopg.AsyncConnection[Any], username: str) -> None:
    """Act as the job's user: SET SESSION AUTHORIZATION when connected as a superuser, else SET ROLE (the runtime's
    role must then be a member of the job's role)."""
    row = await (await conn.execute(Q["is_superuser"].sql)).fetchone()
    if row is None:
        return
    if row["me"] == username:
        return
    if row["superuser"]:
        await conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(username)))
    else:
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(username)))


async def open_session(
    base_url: str, job: Job, default_timeout_s: float, application_name: str, vault_key: bytes | None = None
) -> Session:
    """A connection ready to run `job`: in its database, as its user, with its statement timeout; with the Vault key
    when `vault_key` is given and the job's user may read vault.decrypted_secrets."""
    url = database_url(base_url, job.database)
    conn = await connect(url, application_name=application_name)
    try:
        allowed = await (await conn.execute(Q["can_connect"].sql, {"username": job.username})).fetchone()
        if not allowed or not allowed["allowed"]:
            raise PermissionError(f"User {job.username} does not have CONNECT privilege on {job.database}")
        if vault_key is not None and await supabase_vault.reads_vault(conn, job.username):
            # Vault (docs/vault.md): the key travels only as a startup option of a connection of the job's own.
            await close_quietly(conn)
            conn = await supabase_vault.connect_with_key(url, vault_key, application_name=application_name)
        await _become(conn, job.username)
        timeout_ms = int((job.statement_timeout_s or default_timeout_s) * 1000)
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(timeout_ms)))
    except BaseException:
        await close_quietly(conn)
        raise
    return conn


def return_message(cursor: psycopg.AsyncCursor[Any]) -> str:
    """pg_cron's return_message of a command that succeeded, from its last result: the command tag of a command
    (`INSERT 0 2`, `VACUUM`, `CALL`), `N row`/`N rows` of a query (`1 row`; an empty command: `0 rows`)."""
    while cursor.nextset():
        pass
    result = cursor.pgresult
    if result is not None and result.status == pq.ExecStatus.COMMAND_OK:
        return cursor.statusmessage or ""
    count = result.ntuples if result is not None else 0
    return f"{count} row" if count == 1 else f"{count} rows"


async def close_quietly(conn: Session) -> None:
    try:
        await conn.close()
    except Exception:  # closing a broken connection must not hide anything else
        log.debug("closing a job connection failed", exc_info=True)


async def execute(
    db: Database,
    base_url: str,
    job: Job,
    runid: int,
    default_timeout_s: float,
    application_name: str,
    session: Awaitable[Session] | None = None,
    vault_key: bytes | None = None,
) -> Outcome:
    """Run `job` (whose run row `runid` exists, status 'starting'), on `session` when one was opened ahead of the
    tick; record and return the outcome."""
    status, message = "failed", ""
    started_at: datetime | None = None
    conn: Session | None = None
    try:
        conn = await (session or open_session(base_url, job, default_timeout_s, application_name, vault_key))
        # start_time is when the command is sent, by this process's clock (pg_cron's is its worker's); 'running' is
        # recorded alongside, not one round trip before it.
        started_at = datetime.now(UTC)
        started = asyncio.ensure_future(
            db.execute(Q["run_started"], {"runid": runid, "pid": conn.info.backend_pid, "started": started_at})
        )
        try:
            # The command as one query string, with no parameters: the simple protocol, like pg_cron's PQsendQuery.
            cursor = await conn.execute(job.command.encode())
        finally:
            await started
        status, message = "succeeded", return_message(cursor)
    except psycopg.Error as error:
        # libpq's text of the error, as pg_cron records it (PQresultErrorMessage: "ERROR:  ...", with any DETAIL,
        # HINT and CONTEXT lines); PostgreSQL's message when there is no result (the connection failed).
        if error.pgresult is not None and error.pgresult.error_message:
            message = error.pgresult.error_message.decode(conn.info.encoding if conn else "utf-8", "replace")
        else:
            message = error.diag.message_primary or str(error).strip() or type(error).__name__
    except (TripSageError, PermissionError) as error:
        message = str(error)
    finally:
        if conn is not None:
            await close_quietly(conn)
    try:
        await db.execute(Q["run_finished"], {"runid": runid, "status": status, "message": message})
    except DatabaseError:
        log.exception("could not record the outcome of run %s of job %s", runid, job.jobid)
    return Outcome(runid, status, message, started_at)
