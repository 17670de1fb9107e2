"""The sessions pg_cron runs a job in, as the driver sees them: a connection to the job's database, as the job's
user, with its statement timeout (and the Vault key where the user may read it); the command sent as one top-level
query in autocommit (so VACUUM and CALL with COMMIT work); the outcome as pg_cron records it (the command tag of the
last statement, or libpq's text of the error). What runs when, and where the outcome goes, is the scheduler's."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import pq, sql

from tripsage import queries_for
from tripsage.db import supabase_vault
from tripsage.db.connector import Connection, connect
from tripsage.exceptions import CommandFailed

log = logging.getLogger(__name__)
Q = queries_for("tripsage.db")
Session = Connection


def database_url(base_url: str, database: str) -> str:
    """`base_url` (the runtime's connection) pointed at `database`."""
    info = psycopg.conninfo.conninfo_to_dict(base_url)
    info["dbname"] = database
    return psycopg.conninfo.make_conninfo(**info)  # type: ignore[arg-type]


def _libpq_message(error: psycopg.Error, encoding: str) -> str:
    # libpq's text of the error, as pg_cron records it (PQresultErrorMessage: "ERROR:  ...", with any DETAIL, HINT
    # and CONTEXT lines); PostgreSQL's message when there is no result (the connection failed).
    if error.pgresult is not None and error.pgresult.error_message:
        return error.pgresult.error_message.decode(encoding, "replace")
    return error.diag.message_primary or str(error).strip() or type(error).__name__


async def _become(conn: Session, username: str) -> None:
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
    base_url: str,
    database: str,
    username: str,
    timeout_ms: int,
    application_name: str,
    vault_key: bytes | None = None,
) -> Session:
    """A connection ready to run a job of `username` in `database`, with its statement timeout; with the Vault key
    when `vault_key` is given and the user may read vault.decrypted_secrets. Raises DatabaseUnavailable (cannot
    connect), PermissionError (no CONNECT privilege) or CommandFailed (PostgreSQL refused a step)."""
    url = database_url(base_url, database)
    conn = await connect(url, application_name=application_name)
    try:
        allowed = await (await conn.execute(Q["can_connect"].sql, {"username": username})).fetchone()
        if not allowed or not allowed["allowed"]:
            raise PermissionError(f"User {username} does not have CONNECT privilege on {database}")
        if vault_key is not None and await supabase_vault.reads_vault(conn, username):
            # Vault (docs/vault.md): the key travels only as a startup option of a connection of the job's own.
            await close_quietly(conn)
            conn = await supabase_vault.connect_with_key(url, vault_key, application_name=application_name)
        await _become(conn, username)
        await conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(timeout_ms)))
    except psycopg.Error as error:
        await close_quietly(conn)
        raise CommandFailed(_libpq_message(error, "utf-8")) from error
    except BaseException:
        await close_quietly(conn)
        raise
    return conn


def backend_pid(conn: Session) -> int:
    return conn.info.backend_pid


def _return_message(cursor: psycopg.AsyncCursor[Any]) -> str:
    """pg_cron's return_message of a command that succeeded, from its last result: the command tag of a command
    (`INSERT 0 2`, `VACUUM`, `CALL`), `N row`/`N rows` of a query (`1 row`; an empty command: `0 rows`)."""
    while cursor.nextset():
        pass
    result = cursor.pgresult
    if result is not None and result.status == pq.ExecStatus.COMMAND_OK:
        return cursor.statusmessage or ""
    count = result.ntuples if result is not None else 0
    return f"{count} row" if count == 1 else f"{count} rows"


async def run_command(conn: Session, command: str) -> tuple[str, str]:
    """Run a job's command; ("succeeded", its return message) or ("failed", libpq's text of the error)."""
    try:
        # The command as one query string, with no parameters: the simple protocol, like pg_cron's PQsendQuery.
        cursor = await conn.execute(command.encode())
    except psycopg.Error as error:
        return "failed", _libpq_message(error, conn.info.encoding)
    return "succeeded", _return_message(cursor)


async def close_quietly(conn: Session) -> None:
    try:
        await conn.close()
    except Exception:  # closing a broken connection must not hide anything else
        log.debug("closing a job connection failed", exc_info=True)
