"""What the runtime needs from the servers it is given, checked before it starts: sessions of its own (not a
transaction-mode pooler) for its session-bound parts, and room for its connections.

The runtime holds session state: LISTEN connections, the scheduler leader's advisory lock, the emulated jobs'
sessions, and psycopg's prepared statements. A transaction-mode pooler (PgBouncer `pool_mode = transaction`,
Supavisor on port 6543) hands each transaction to any server connection, which silently breaks all of them. So:

- DATABASE_URL alone: it must be a direct or session-mode URL; a transaction-mode pooler is refused with the fix named.
- DATABASE_URL plus TRIPSAGE_DB_DIRECT_URL: the session-bound parts use the direct (or session-mode) URL, and only
  the pool of short statements and transactions uses DATABASE_URL, with prepared statements off when it is a
  transaction-mode pooler.

Applications may use a transaction pooler for their own SQL (`cron.schedule`, `net.http_post`, triggers) either way.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import psycopg

from tripsage import queries_for
from tripsage.db.connector import Row, connect, mapped_errors, redact
from tripsage.exceptions import ConfigurationError

Q = queries_for("tripsage.db")

Pooling = Literal["none", "session", "transaction"]
PROBE_ROUNDS = 3  # a transaction pooler shows itself in the first round in practice; more rounds only confirm
LISTEN_CONNECTIONS = 4  # webhooks, net worker, scheduler, realtime: one dedicated LISTEN connection each
LEADER_CONNECTIONS = 1  # the scheduler's leader lock (every replica tries to hold it)
READ_ONLY_ADVICE = (
    "read-only server (a standby, or default_transaction_read_only is on): point DATABASE_URL at the primary, "
    "or list every node with target_session_attrs=read-write "
    "(postgresql://host1:5432,host2:5432/db?target_session_attrs=read-write)"
)


def connections_needed(pool_max_size: int) -> int:
    """The most connections one replica opens at once, scheduler job sessions aside (one per running job)."""
    return pool_max_size + LISTEN_CONNECTIONS + LEADER_CONNECTIONS


@dataclass(frozen=True)
class ServerState:
    pooling: Pooling
    read_only: bool
    room: int  # connections this role may still open (meaningless behind a pooler, which has its own limits)
    max_connections: int


async def _pid(conn: psycopg.AsyncConnection[Row]) -> int:
    row = await (await conn.execute(Q["backend_pid"].sql)).fetchone()
    assert row is not None
    return int(row["pid"])


async def detect_pooling(url: str) -> Pooling:
    """Whether `url` reaches the server directly ("none") or through a pooler in "session" or "transaction" mode.

    A direct server tells the client its real backend pid at connect; a pooler tells its own. Behind a pooler, a
    second client holds a transaction open while the first keeps asking for its backend: in session mode the two
    never share a backend and the first always gets the same one; in transaction (or statement) mode they do not.
    """
    with mapped_errors("pooling probe"):
        first = await connect(url, application_name="tripsage-probe")
        second = None
        try:
            pid = await _pid(first)
            if first.info.backend_pid == pid:
                return "none"
            second = await connect(url, autocommit=False, application_name="tripsage-probe")
            for _ in range(PROBE_ROUNDS):
                other = await _pid(second)  # opens a transaction: pins a backend to `second`
                if other == pid or await _pid(first) != pid:
                    return "transaction"
                await second.commit()
            return "session"
        except Exception as error:
            # Statement pooling refuses the transaction block itself.
            if "statement mode" in str(error):
                return "transaction"
            raise
        finally:
            for conn in (first, second):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()


async def server_state(url: str) -> ServerState:
    pooling = await detect_pooling(url)
    with mapped_errors("server state"):
        conn = await connect(url, application_name="tripsage-probe")
        try:
            row = await (await conn.execute(Q["server_role_state"].sql)).fetchone()
        finally:
            await conn.close()
    assert row is not None
    reserved = 0 if row["superuser"] else int(row["reserved"])
    return ServerState(
        pooling=pooling,
        read_only=bool(row["in_recovery"] or row["default_read_only"]),
        room=int(row["max_connections"]) - reserved - int(row["in_use"]) + 1,  # +1: this probe is closed now
        max_connections=int(row["max_connections"]),
    )


@dataclass(frozen=True)
class ConnectionPlan:
    """Which URL each part of the runtime uses."""

    session_url: str  # LISTEN, the scheduler's leader lock, emulated jobs' sessions
    pool_url: str  # the pool of short statements and transactions
    pool_prepared_statements: bool  # off behind a transaction-mode pooler


def _refuse_transaction_pooler(url: str, state: ServerState, setting: str) -> None:
    if state.pooling == "transaction":
        raise ConfigurationError(
            f"{setting} {redact(url)} goes through a transaction-mode pooler, which breaks the runtime's LISTEN, "
            "advisory locks and prepared statements: give the runtime a session-mode pooler URL (Supabase: the "
            "pooler's port 5432) or the server's direct URL, as DATABASE_URL, or as TRIPSAGE_DB_DIRECT_URL beside "
            "the pooled DATABASE_URL"
        )


def _refuse_short_budget(url: str, state: ServerState, needed: int, breakdown: str) -> None:
    if state.pooling == "none" and state.room < needed:
        raise ConfigurationError(
            f"not enough free connections on {redact(url)}: this replica needs up to {needed} ({breakdown}) "
            f"but {max(state.room, 0)} of max_connections={state.max_connections} are free: lower "
            "TRIPSAGE_POOL_MAX_SIZE, run fewer replicas, put a session-mode pooler in front, or raise max_connections"
        )


def refuse_unsupported(url: str, state: ServerState, pool_max_size: int) -> None:
    """Raise one clear ConfigurationError when the runtime cannot work against this server as its only URL."""
    _refuse_transaction_pooler(url, state, "DATABASE_URL")
    _refuse_short_budget(
        url,
        state,
        connections_needed(pool_max_size),
        f"TRIPSAGE_POOL_MAX_SIZE={pool_max_size} + {LISTEN_CONNECTIONS} LISTEN + {LEADER_CONNECTIONS} scheduler leader",
    )


async def plan_connections(
    url: str, direct_url: str | None, *, pool_max_size: int, db_role: str | None
) -> ConnectionPlan:
    """Check the configured URLs (module docstring) and say which part uses which; one clear error otherwise."""
    state = await server_state(url)
    if not direct_url:
        refuse_unsupported(url, state, pool_max_size)
        return ConnectionPlan(url, url, pool_prepared_statements=True)
    direct = await server_state(direct_url)
    _refuse_transaction_pooler(direct_url, direct, "TRIPSAGE_DB_DIRECT_URL")
    session_needed = LISTEN_CONNECTIONS + LEADER_CONNECTIONS
    if direct_url == url:
        session_needed += pool_max_size
    _refuse_short_budget(
        direct_url, direct, session_needed, f"{LISTEN_CONNECTIONS} LISTEN + {LEADER_CONNECTIONS} scheduler leader"
    )
    if state.pooling == "transaction" and db_role:
        raise ConfigurationError(
            f"TRIPSAGE_DB_ROLE={db_role} is set with SET ROLE, session state a transaction-mode pooler does not keep: "
            "log in as that role instead (docs/operations.md, Roles) or give DATABASE_URL a session-mode URL"
        )
    if direct_url != url:
        _refuse_short_budget(url, state, pool_max_size, f"TRIPSAGE_POOL_MAX_SIZE={pool_max_size}")
    return ConnectionPlan(direct_url, url, pool_prepared_statements=state.pooling != "transaction")
