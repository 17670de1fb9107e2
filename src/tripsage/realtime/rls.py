"""The per-subscriber RLS check, Supabase's way, for published tables that have no audience function.

For an INSERT or UPDATE on such a table (with RLS on), each distinct identity (role and claims) subscribed to it is
checked once per change: `SET LOCAL ROLE <role>`, `request.jwt.claims`, then `SELECT EXISTS (... WHERE <pk> = ...)`,
each in its own savepoint so one identity's failing check (a policy error, a role the runtime may not assume) only
denies that identity. The six collaborative tables never come here: their audience is computed once per change in
the capture trigger. A DELETE cannot be checked after the fact: it goes only to roles that bypass RLS.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from psycopg import sql

from tripsage.db.connector import Database, mapped_errors
from tripsage.exceptions import TripSageError
from tripsage.realtime.auth import Identity
from tripsage.realtime.postgres_changes import Change, Table

log = logging.getLogger(__name__)

IdentityKey = tuple[str, str]  # (role, claims as canonical JSON)


def identity_key(identity: Identity) -> IdentityKey:
    return (identity.role, json.dumps(identity.claims, sort_keys=True, separators=(",", ":")))


async def allowed(db: Database, change: Change, table: Table, identities: Iterable[Identity]) -> set[IdentityKey]:
    """The identities (of those given) whose role and claims may SELECT the changed row."""
    keys = {identity_key(identity) for identity in identities}
    row = change.record
    if not keys or row is None or not table.primary_key or any(row.get(c) is None for c in table.primary_key):
        return set()
    condition = sql.SQL(" AND ").join(
        sql.SQL("{} = {}::{}").format(sql.Identifier(column), sql.Placeholder(), sql.Identifier(type_name))
        for column, type_name in table.columns
        if column in table.primary_key
    )
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{} WHERE {})").format(
        sql.Identifier(table.schema), sql.Identifier(table.name), condition
    )
    values = [str(row[column]) for column, _ in table.columns if column in table.primary_key]
    granted: set[IdentityKey] = set()
    try:
        with mapped_errors("realtime RLS check"):
            async with db.transaction() as conn:
                for role, claims in keys:
                    try:
                        async with conn.transaction():  # a savepoint: a failing check denies this identity only
                            await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                            await conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
                            cursor = await conn.execute(query, values)
                            result = await cursor.fetchone()
                            if result is not None and next(iter(result.values())):
                                granted.add((role, claims))
                    except Exception as error:
                        log.debug("realtime: RLS check for role %s failed: %s", role, error)
    except TripSageError as error:
        log.warning("realtime: RLS checks on %s.%s failed: %s", table.schema, table.name, error)
    return granted
