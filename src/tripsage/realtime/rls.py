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

from tripsage.db import row_security
from tripsage.db.connector import Database
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
    key = [(column, type_name, str(row[column])) for column, type_name in table.columns if column in table.primary_key]
    try:
        return await row_security.visible_to(db, table.schema, table.name, key, keys, context="realtime RLS check")
    except TripSageError as error:
        log.warning("realtime: RLS checks on %s.%s failed: %s", table.schema, table.name, error)
        return set()
