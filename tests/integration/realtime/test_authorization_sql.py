"""Realtime Authorization at the SQL level on both test servers (PostgreSQL 18 embedded, 15 system): the gateway's
probes (tripsage.realtime.authorization) against TripSage's policies on realtime.messages, realtime.send under RLS,
and the daily partitions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tripsage import queries_for
from tripsage.db.connector import Database
from tripsage.realtime import authorization
from tripsage.realtime.auth import Identity

Q = queries_for("tests.integration.realtime")


def identity(role: str, sub: str | None = None) -> Identity:
    claims: dict[str, Any] = {"role": role, "exp": 4102444800}
    if sub:
        claims["sub"] = sub
    return Identity("token", claims)


async def access(db: Database, who: Identity, topic: str) -> tuple[bool, bool, bool, bool]:
    """(broadcast read, presence read, broadcast write, presence write)."""
    read = await authorization.read(db, who, topic, presence=True)
    both = await authorization.write(db, who, topic, read)
    return (bool(both.broadcast_read), bool(both.presence_read), bool(both.broadcast_write), bool(both.presence_write))


async def test_trip_and_chat_topics_follow_the_policies(db: Database) -> None:
    users = {name: str(uuid.uuid4()) for name in ("owner", "viewer", "editor", "admin", "stranger")}
    for user in users.values():
        await db.execute(Q["add_user"], {"id": user, "email": None})
    trip = await db.fetch_value(Q["add_trip"], {"user_id": users["owner"], "name": "t", "budget": 1})
    for name, level in (("viewer", "view"), ("editor", "edit"), ("admin", "admin")):
        params = {"trip_id": trip, "user_id": users[name], "level": level, "added_by": users["owner"]}
        await db.execute(Q["add_collaborator"], params)
    session = str(uuid.uuid4())
    await db.execute(Q["add_chat_session"], {"id": session, "user_id": users["owner"]})

    who = {name: identity("authenticated", user) for name, user in users.items()}
    who["anon"] = identity("anon")
    who["service"] = identity("service_role")
    none, read_only, everything = (False,) * 4, (True, True, False, False), (True,) * 4
    expected = {
        "owner": everything,
        "viewer": read_only,
        "editor": everything,
        "admin": everything,
        "stranger": none,
        "anon": none,
        "service": everything,
    }
    for name, principal in who.items():
        assert await access(db, principal, f"trip:{trip}") == expected[name], name
        chat = everything if name in ("owner", "service") else none
        assert await access(db, principal, f"chat:{session}") == chat, name
        for malformed in ("trip:", "trip:abc", "trip:99999999999999999999", "chat:x", "other"):
            assert await access(db, principal, malformed) == (everything if name == "service" else none)
    # the probes were rolled back
    assert await db.fetch_value(Q["count_messages"], {"topic": f"trip:{trip}"}) == 0
    row = await db.fetch_one(Q["topic_inside_probe"], {"topic": "trip:1"})
    assert row is not None and row["topic"] == "trip:1"  # realtime.topic(), which policies may use


async def test_realtime_send_needs_the_insert_policy(db: Database) -> None:
    owner, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    for user in (owner, viewer):
        await db.execute(Q["add_user"], {"id": user, "email": None})
    trip = await db.fetch_value(Q["add_trip"], {"user_id": owner, "name": "t", "budget": 1})
    params = {"trip_id": trip, "user_id": viewer, "level": "view", "added_by": owner}
    await db.execute(Q["add_collaborator"], params)
    topic = f"trip:{trip}"
    for user in (viewer, owner):  # the viewer's send is refused (a warning, nothing stored); the owner's is stored
        async with db.transaction() as conn:
            claims = json.dumps({"role": "authenticated", "sub": user})
            await conn.execute(Q["act_as"].sql, {"role": "authenticated", "claims": claims})
            await conn.execute(Q["realtime_send"].sql, {"payload": "{}", "event": "e", "topic": topic, "private": True})
    assert await db.fetch_value(Q["count_messages"], {"topic": topic}) == 1


async def test_daily_partitions_are_kept_ahead_and_dropped_after_72_hours(db: Database) -> None:
    await db.execute(Q["add_old_partition"])
    await db.fetch_value(Q["maintain_partitions"])
    names = [row["name"] for row in await db.fetch_all(Q["message_partitions"])]
    expected = [row["name"] for row in await db.fetch_all(Q["expected_partitions"])]
    assert "messages_2020_01_01" not in names
    assert set(expected) <= set(names)
