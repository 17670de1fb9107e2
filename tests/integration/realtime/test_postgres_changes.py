"""postgres_changes with the real realtime-py client against the running runtime: the join reply, the system
message, INSERT/UPDATE/DELETE payloads exactly as Supabase sends them, filters, and RLS (a stranger gets nothing)."""

from __future__ import annotations

import re

from testkit.runtime import RunningRuntime

from tests.integration.realtime.conftest import (
    eventually,
    make_user,
    service_key,
    subscribe,
    user_token,
)
from tripsage import queries_for
from tripsage.db.connector import Database

Q = queries_for("tests.integration.realtime")
COMMIT_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_insert_update_delete_reach_the_owner_with_supabase_payloads(
    runtime: RunningRuntime, admin: Database, closing: list[object]
) -> None:
    owner = await make_user(admin)
    stranger = await make_user(admin)
    trip_filter = "budget=gte.1000"
    bindings = [
        {"event": event, "table": "trips", "schema": "public", "filter": trip_filter}
        for event in ("INSERT", "UPDATE", "DELETE")
    ]
    mine = await subscribe(runtime.base_url, user_token(owner), "trips-owner", bindings)
    theirs = await subscribe(runtime.base_url, user_token(stranger), "trips-stranger", bindings)
    closing.extend([mine.client, theirs.client])

    cheap = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "cheap", "budget": 10})
    trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "Porto", "budget": 1500})
    await admin.execute(Q["update_trip_name"], {"id": trip, "name": "Porto and Braga"})
    await admin.execute(Q["delete_trip"], {"id": trip})
    await eventually(lambda: len(mine.changes) == 3, message=f"got {mine.changes}")

    inserted, updated, deleted = (c["data"] for c in mine.changes)
    assert [inserted["type"], updated["type"], deleted["type"]] == ["INSERT", "UPDATE", "DELETE"]
    for data in (inserted, updated, deleted):
        assert data["schema"] == "public" and data["table"] == "trips"
        assert data["errors"] is None
        assert COMMIT_TIMESTAMP.match(data["commit_timestamp"]), data["commit_timestamp"]
        names = [c["name"] for c in data["columns"]]
        assert names[:3] == ["id", "user_id", "name"]
        assert {"name": "budget", "type": "numeric"} in data["columns"]
        assert {"name": "notes", "type": "_text"} in data["columns"]
    assert inserted["record"]["id"] == trip and inserted["record"]["name"] == "Porto"
    assert inserted["record"]["user_id"] == owner
    assert inserted["record"]["notes"] == [] and inserted["record"]["flexibility"] == {}
    assert inserted["record"]["created_at"].endswith("+00:00")
    assert "old_record" not in inserted
    assert updated["record"]["name"] == "Porto and Braga" and updated["old_record"] == {"id": trip}
    assert deleted["old_record"] == {"id": trip} and "record" not in deleted
    # Each change went to the binding of its own event.
    ids = [c["ids"] for c in mine.changes]
    assert len({tuple(i) for i in ids}) == 3 and all(len(i) == 1 and i[0] > 0 for i in ids)
    assert all(c["data"]["record"]["id"] != cheap for c in mine.changes if "record" in c["data"])
    assert theirs.changes == []


async def test_service_role_sees_every_row_and_a_star_binding_gets_every_event(
    runtime: RunningRuntime, admin: Database, closing: list[object]
) -> None:
    owner = await make_user(admin)
    service = await subscribe(
        runtime.base_url, service_key(), "all-trips", [{"event": "*", "table": "trips", "schema": "public"}]
    )
    closing.append(service.client)
    trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "Oslo", "budget": None})
    await admin.execute(Q["delete_trip"], {"id": trip})
    await eventually(lambda: [c["data"]["type"] for c in service.changes] == ["INSERT", "DELETE"])
    assert service.changes[0]["data"]["record"]["budget"] is None


async def test_collaborator_receives_changes_of_the_shared_trip(
    runtime: RunningRuntime, admin: Database, closing: list[object]
) -> None:
    owner = await make_user(admin)
    friend = await make_user(admin)
    trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "Rome", "budget": 900})
    sub = await subscribe(
        runtime.base_url,
        user_token(friend),
        "shared",
        [{"event": "UPDATE", "table": "trips", "schema": "public", "filter": f"id=eq.{trip}"}],
    )
    closing.append(sub.client)
    await admin.execute(Q["update_trip_name"], {"id": trip, "name": "Rome (not shared yet)"})
    await admin.execute(Q["add_collaborator"], {"trip_id": trip, "user_id": friend, "level": "view", "added_by": owner})
    await admin.execute(Q["update_trip_name"], {"id": trip, "name": "Rome and Naples"})
    await eventually(lambda: len(sub.changes) >= 1)
    assert [c["data"]["record"]["name"] for c in sub.changes] == ["Rome and Naples"]


async def test_supabase_py_client_receives_changes(runtime: RunningRuntime, admin: Database) -> None:
    """supabase-py pointed at the runtime (its realtime client at <url>/realtime/v1), unmodified."""
    from supabase import acreate_client

    owner = await make_user(admin)
    client = await acreate_client(runtime.base_url, service_key())
    await client.realtime.set_auth(user_token(owner))
    got: list[dict[str, object]] = []
    systems: list[dict[str, object]] = []
    channel = client.channel("supabase-py")
    channel.on_postgres_changes("INSERT", callback=got.append, schema="public", table="trips")
    channel.on_system(lambda payload: systems.append(dict(payload)))
    await channel.subscribe()
    try:
        await eventually(lambda: any(s.get("message") == "Subscribed to PostgreSQL" for s in systems))
        trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "via supabase-py", "budget": 3})
        await eventually(lambda: len(got) == 1)
        assert got[0]["data"]["record"]["id"] == trip  # type: ignore[index]
    finally:
        await client.remove_all_channels()


async def test_pattern_and_negated_filters_deliver_exactly_the_matching_changes(
    runtime: RunningRuntime, admin: Database, closing: list[object]
) -> None:
    """The newer filter forms through realtime-py: `ilike` with `%` wildcards, `not.eq`, comma AND; and `*`, which
    Supabase passes to ILIKE unchanged (no PostgREST-style alias for `%`), so it only matches itself."""
    owner = await make_user(admin)
    token = user_token(owner)
    paris = await subscribe(
        runtime.base_url,
        token,
        "paris-not-cancelled",
        [{"event": "*", "table": "trips", "schema": "public", "filter": "name=ilike.%paris%,status=not.eq.cancelled"}],
    )
    star = await subscribe(
        runtime.base_url,
        token,
        "paris-star",
        [{"event": "*", "table": "trips", "schema": "public", "filter": "name=ilike.*paris*"}],
    )
    closing.extend([paris.client, star.client])

    spring = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "Paris in spring", "budget": None})
    await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "Lisbon", "budget": None})
    again = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "PARIS, again", "budget": None})
    async with admin.connection() as conn:
        await conn.execute("UPDATE public.trips SET status = 'cancelled' WHERE id = %s", [spring])
    await admin.execute(Q["update_trip_name"], {"id": again, "name": "Paris et Lyon"})
    # Last, and matching both channels: once it has arrived, every earlier change has been decided.
    last = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "*Paris*", "budget": None})
    await eventually(lambda: len(paris.changes) >= 4 and len(star.changes) >= 1, message=f"got {paris.changes}")

    got = [(c["data"]["type"], c["data"]["record"]["id"], c["data"]["record"]["name"]) for c in paris.changes]
    assert got == [
        ("INSERT", spring, "Paris in spring"),
        ("INSERT", again, "PARIS, again"),
        ("UPDATE", again, "Paris et Lyon"),
        ("INSERT", last, "*Paris*"),
    ]
    assert [(c["data"]["type"], c["data"]["record"]["id"]) for c in star.changes] == [("INSERT", last)]
