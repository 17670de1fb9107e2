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

from tripsage import queries_for
from tripsage.db import job_sessions
from tripsage.db.connector import Database
from tripsage.db.job_sessions import Session, close_quietly
from tripsage.exceptions import DatabaseError, TripSageError

log = logging.getLogger(__name__)
Q = queries_for("tripsage.scheduler")


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


async def open_session(
    base_url: str, job: Job, default_timeout_s: float, application_name: str, vault_key: bytes | None = None
) -> Session:
    """A connection ready to run `job`: in its database, as its user, with its statement timeout; with the Vault key
    when `vault_key` is given and the job's user may read vault.decrypted_secrets."""
    timeout_ms = int((job.statement_timeout_s or default_timeout_s) * 1000)
    return await job_sessions.open_session(
        base_url, job.database, job.username, timeout_ms, application_name, vault_key
    )


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
            db.execute(Q["run_started"], {"runid": runid, "pid": job_sessions.backend_pid(conn), "started": started_at})
        )
        try:
            result = await job_sessions.run_command(conn, job.command)
        finally:
            await started
        status, message = result
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
