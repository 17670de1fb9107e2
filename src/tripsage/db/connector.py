"""The one thin layer that touches the driver: a pool, execute/fetch by named query, LISTEN, and error mapping.

Domain code calls `Database` with `Query` objects from `.sql` files and never imports psycopg itself: what it needs
of the driver is here (`Jsonb` for a JSON parameter, `Connection` and the `*_on` helpers for a connection of its own,
a transaction or a session holding a lock). An import contract (pyproject.toml) keeps psycopg inside `tripsage.db`.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import re
import struct
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb as Jsonb  # re-exported: how the capabilities pass a JSON parameter
from psycopg_pool import AsyncConnectionPool

from tripsage.db.queries import Query
from tripsage.exceptions import DatabaseError, DatabaseUnavailable, InsufficientPrivilege

log = logging.getLogger(__name__)

Params = Mapping[str, Any] | Sequence[Any] | None
Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Row]  # one connection of the caller's: a transaction, a LISTEN or lock session
CONNECT_TIMEOUT = 10  # seconds
LISTEN_PING_INTERVAL = 30.0  # seconds of silence before the LISTEN connection is checked
FLOAT4_OID = 700
FLOAT4_ARRAY_OID = 1021


def redact(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def describe_connect_error(url: str, error: Exception) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    message = re.sub(
        r'^connection failed: (connection to server at "[^"]*" \([^)]*\), port \d+ failed: )?', "", message
    )
    return f"cannot connect to {redact(url)}: {message}"


@contextlib.contextmanager
def mapped_errors(context: str = "") -> Any:
    """Map driver errors to TripSage's exceptions (one place, so callers never catch psycopg)."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as error:
        prefix = f"{context}: " if context else ""
        raise InsufficientPrivilege(f"{prefix}{error.diag.message_primary or error}") from error
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(f"{context}: {error}" if context else str(error)) from error
    except psycopg.Error as error:
        primary = error.diag.message_primary or str(error)
        raise DatabaseError(f"{context}: {primary}" if context else primary) from error


class Float4Array:
    """Floats sent as one binary float4[] parameter, straight from a float32 buffer.

    psycopg dumps a list of Python floats element by element (about 0.15 s for a batch of 1,000 384-dimension
    vectors); this is one buffer copy.
    """

    def __init__(self, values: array.array[float]) -> None:
        if values.typecode != "f":
            raise TypeError("Float4Array needs an array.array of typecode 'f'")
        self.values = values


# PostgreSQL's binary array format: ndim, has-nulls flag, element type, then each dimension's size and lower bound,
# then every element as a big-endian int32 length (always 4) followed by its four big-endian bytes.
_LENGTH_4 = int.from_bytes(struct.pack(">i", 4), sys.byteorder)  # the length word, as a native uint32 holds it


def float4_array_binary(values: array.array[float]) -> bytes:
    """`values` in PostgreSQL's binary wire format for a one-dimensional float4[]."""
    if not values:
        return struct.pack(">iii", 0, 0, FLOAT4_OID)
    big_endian = array.array("f", values)
    if sys.byteorder == "little":
        big_endian.byteswap()
    words = array.array("I", bytes(8 * len(values)))
    words[0::2] = array.array("I", [_LENGTH_4]) * len(values)
    words[1::2] = array.array("I", big_endian.tobytes())
    return struct.pack(">iiiii", 1, 0, FLOAT4_OID, len(values), 1) + words.tobytes()


class Float4ArrayDumper(Dumper):
    format = Format.BINARY
    oid = FLOAT4_ARRAY_OID

    def dump(self, obj: Float4Array) -> bytes:
        return float4_array_binary(obj.values)


psycopg.adapters.register_dumper(Float4Array, Float4ArrayDumper)


async def connect(url: str, *, autocommit: bool = True, **kwargs: Any) -> Connection:
    """One connection (for LISTEN, leases and maintenance), with a clear error when it cannot be made."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=autocommit, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT, **kwargs
        )
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(describe_connect_error(url, error)) from error


async def execute_on(conn: Connection, query: Query, params: Params = None) -> int:
    """`Database.execute` on one connection of the caller's."""
    with mapped_errors(query.name):
        cursor = await conn.execute(query.sql, params)
        return cursor.rowcount


async def fetch_all_on(conn: Connection, query: Query, params: Params = None) -> list[Row]:
    """`Database.fetch_all` on one connection of the caller's ([] for a statement that returns no rows)."""
    with mapped_errors(query.name):
        cursor = await conn.execute(query.sql, params)
        return await cursor.fetchall() if cursor.description else []


async def fetch_one_on(conn: Connection, query: Query, params: Params = None) -> Row | None:
    """`Database.fetch_one` on one connection of the caller's."""
    rows = await fetch_all_on(conn, query, params)
    return rows[0] if rows else None


class Database:
    """A connection pool to one database, with named-query helpers."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        role: str | None = None,
        application_name: str = "tripsage",
        prepared_statements: bool = True,
    ) -> None:
        self.url = url
        self.role = role
        self.application_name = application_name
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": application_name,
            "connect_timeout": CONNECT_TIMEOUT,
        }
        if not prepared_statements:
            # Behind a transaction-mode pooler a statement prepared in one server session would be executed in
            # another: never prepare (psycopg otherwise prepares a query after its fifth execution).
            kwargs["prepare_threshold"] = None
        self._pool = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, open=False, configure=self._configure, kwargs=kwargs
        )

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if self.role:
            await connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))

    async def open(self, *, wait: bool = True, timeout: float = 15.0) -> None:
        # Try one connection first, so a wrong URL fails at once with the server's own message.
        probe = await connect(self.url)
        await probe.close()
        await self._pool.open(wait=wait, timeout=timeout)

    async def close(self) -> None:
        await self._pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._pool.connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def execute(self, query: Query, params: Params = None) -> int:
        """Run a statement; return the affected row count."""
        with mapped_errors(query.name):
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query.sql, params)
                return cursor.rowcount

    async def fetch_all(self, query: Query, params: Params = None) -> list[Row]:
        with mapped_errors(query.name):
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query.sql, params)
                return await cursor.fetchall()

    async def fetch_one(self, query: Query, params: Params = None) -> Row | None:
        with mapped_errors(query.name):
            async with self._pool.connection() as conn:
                cursor = await conn.execute(query.sql, params)
                return await cursor.fetchone()

    async def fetch_value(self, query: Query, params: Params = None) -> Any:
        row = await self.fetch_one(query, params)
        return None if row is None else next(iter(row.values()))

    async def rolled_back(self, steps: Sequence[tuple[Query, Params, bool]]) -> list[list[Row] | DatabaseError]:
        """Run statements in one transaction that is always rolled back (a probe: what would happen), and return
        each one's rows. A step marked isolated runs in a savepoint: its error is returned in its place and the
        following steps still run; an error in any other step is raised."""
        results: list[list[Row] | DatabaseError] = []
        with mapped_errors("probe"):
            async with self._pool.connection() as conn, conn.transaction(force_rollback=True):
                for query, params, isolated in steps:
                    if not isolated:
                        cursor = await conn.execute(query.sql, params)
                        results.append(await cursor.fetchall() if cursor.description else [])
                        continue
                    try:
                        with mapped_errors(query.name):
                            async with conn.transaction():
                                cursor = await conn.execute(query.sql, params)
                                results.append(await cursor.fetchall() if cursor.description else [])
                    except DatabaseError as error:
                        results.append(error)
        return results


@dataclass(frozen=True)
class Notification:
    """One NOTIFY: its channel and payload; channel "" (no payload) after each (re)LISTEN, for a catch-up round."""

    channel: str
    payload: str = ""


async def listen(
    url: str,
    channels: Sequence[str],
    *,
    reconnect_delay: float = 1.0,
    application_name: str = "tripsage-listen",
    on_lost: Callable[[str], None] | None = None,
) -> AsyncGenerator[Notification, None]:
    """Yield each NOTIFY received on `channels`, forever, on a dedicated autocommit connection.

    NOTIFY is only a wake-up hint: callers poll as well. After a lost connection this reconnects, re-LISTENs and
    yields `Notification("")` so the caller re-polls whatever it might have missed. A connection that cannot be made
    or is lost is reported to `on_lost` (its error) when given, else logged.
    """

    while True:
        try:
            conn = await connect(url, application_name=application_name)
        except DatabaseUnavailable as error:
            if on_lost is not None:
                on_lost(str(error))
            else:
                log.warning("LISTEN connection failed (%s); retrying in %.1f s", error, reconnect_delay)
            await asyncio.sleep(reconnect_delay)
            continue
        try:
            for channel in channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            yield Notification("")
            while True:
                gen = conn.notifies(timeout=LISTEN_PING_INTERVAL)
                async for notify in gen:
                    yield Notification(notify.channel, notify.payload)
                await conn.execute("SELECT 1")  # silence: make sure the connection is alive
        except psycopg.Error as error:
            if on_lost is not None:
                on_lost(str(error))
            else:
                log.warning("LISTEN connection lost (%s); reconnecting", error)
            await asyncio.sleep(reconnect_delay)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
