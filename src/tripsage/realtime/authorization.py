"""Realtime Authorization for private channels, computed as Supabase computes it.

RLS policies on `realtime.messages` decide. On joining a private channel the gateway runs the read probe: inside a
transaction that is rolled back, one row per extension (`broadcast`, and `presence` when enabled) is inserted for the
topic as the table's owner, then, acting as the channel's user (`role`, `realtime.topic`, `request.jwt.claims`,
`request.jwt.claim.sub`/`role`), the rows are selected back: each one the user may SELECT grants that extension's read.
The join needs one of them. The write probe (on the first broadcast or track) inserts, as the user, one row per
extension, each in its own savepoint: an RLS refusal denies that extension's write. Results are kept on the channel
and recomputed when its token changes. A policy that fails (an error) denies, as on Supabase.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from tripsage import queries_for
from tripsage.db.connector import Database
from tripsage.exceptions import DatabaseError, InsufficientPrivilege
from tripsage.realtime.auth import Identity

log = logging.getLogger(__name__)
Q = queries_for("tripsage.realtime")

BROADCAST = "broadcast"
PRESENCE = "presence"


class AuthorizationError(Exception):
    """The policies could not be evaluated (a policy raised, the role is unknown, the database refused)."""


@dataclass
class Policies:
    """What a channel's user may do on its private topic; None until evaluated."""

    broadcast_read: bool | None = None
    presence_read: bool | None = None
    broadcast_write: bool | None = None
    presence_write: bool | None = None

    @property
    def may_join(self) -> bool:
        return bool(self.broadcast_read or self.presence_read)


def _act_as(identity: Identity, topic: str) -> dict[str, str]:
    return {
        "role": identity.role,
        "topic": topic,
        "claims": json.dumps(identity.claims, separators=(",", ":")),
        "sub": str(identity.claims.get("sub") or ""),
    }


async def read(db: Database, identity: Identity, topic: str, *, presence: bool) -> Policies:
    """The read policies of `identity` on `topic` (the channel name, without `realtime:`)."""
    extensions = [BROADCAST, PRESENCE] if presence else [BROADCAST]
    ids = [str(uuid.uuid4()) for _ in extensions]
    try:
        results = await db.rolled_back(
            [
                (Q["authorization_insert_probes"], {"topic": topic, "extensions": extensions, "ids": ids}, False),
                (Q["authorization_act_as"], _act_as(identity, topic), False),
                (Q["authorization_read"], {"ids": ids}, False),
            ]
        )
    except DatabaseError as error:
        raise AuthorizationError(str(error)) from error
    rows = results[-1]
    readable = {row["id"] for row in rows} if isinstance(rows, list) else set()
    granted = {extension: probe in readable for extension, probe in zip(extensions, ids, strict=True)}
    return Policies(broadcast_read=granted[BROADCAST], presence_read=granted.get(PRESENCE))


async def write(db: Database, identity: Identity, topic: str, policies: Policies) -> Policies:
    """`policies` with the write policies of `identity` on `topic` evaluated."""
    steps = [(Q["authorization_act_as"], _act_as(identity, topic), False)]
    steps += [(Q["authorization_write"], {"topic": topic, "extension": ext}, True) for ext in (BROADCAST, PRESENCE)]
    try:
        results = await db.rolled_back(steps)
    except DatabaseError as error:
        raise AuthorizationError(str(error)) from error
    allowed: list[bool] = []
    for result in results[1:]:
        if isinstance(result, InsufficientPrivilege):
            allowed.append(False)
        elif isinstance(result, DatabaseError):
            raise AuthorizationError(str(result))
        else:
            allowed.append(True)
    return Policies(policies.broadcast_read, policies.presence_read, allowed[0], allowed[1])
