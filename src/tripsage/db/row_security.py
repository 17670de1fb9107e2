"""Which roles (with their JWT claims) may SELECT one row: RLS evaluated by PostgreSQL itself, as Supabase Realtime
checks a change for each subscriber.

The statement names a table and its key columns only at run time, so it is composed here, with identifiers quoted by
the driver, rather than in a `.sql` file. Each identity is checked in its own savepoint: a failing check (a policy
error, a role the runtime may not assume) denies that identity only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from psycopg import sql

from tripsage.db.connector import Database, mapped_errors

log = logging.getLogger(__name__)

Identity = tuple[str, str]  # (role, claims as JSON text)


async def visible_to(
    db: Database,
    schema: str,
    table: str,
    key: Sequence[tuple[str, str, str]],
    identities: Iterable[Identity],
    *,
    context: str = "RLS check",
) -> set[Identity]:
    """The identities that may SELECT the row of `schema.table` whose key columns equal the given values; `key` is
    (column, type name, value as text) for each key column. A failure of the whole check raises DatabaseError."""
    condition = sql.SQL(" AND ").join(
        sql.SQL("{} = {}::{}").format(sql.Identifier(column), sql.Placeholder(), sql.Identifier(type_name))
        for column, type_name, _ in key
    )
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{} WHERE {})").format(
        sql.Identifier(schema), sql.Identifier(table), condition
    )
    values = [value for _, _, value in key]
    granted: set[Identity] = set()
    with mapped_errors(context):
        async with db.transaction() as conn:
            for role, claims in identities:
                try:
                    async with conn.transaction():  # a savepoint: a failing check denies this identity only
                        await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                        await conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
                        cursor = await conn.execute(query, values)
                        result = await cursor.fetchone()
                        if result is not None and next(iter(result.values())):
                            granted.add((role, claims))
                except Exception as error:
                    log.debug("RLS check for role %s failed: %s", role, error)
    return granted
