"""Change capture and reading against the real database: a transaction that commits late is delivered (once), the
publication is the configuration, nothing is captured without a live gateway, retention bounds the table, and one
subscriber's bad claims never stall the others."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from realtime import AsyncRealtimeClient
from testkit.runtime import TEST_JWT_SECRET, RunningRuntime
from testkit.waiting import eventually

from tests.integration.realtime.conftest import make_user, service_key, subscribe, user_token
from tripsage import jwt, queries_for
from tripsage.db.connector import Database
from tripsage.realtime.postgres_changes import ChangeReader

Q = queries_for("tests.integration.realtime")
RQ = queries_for("tripsage.realtime")
ADD_TRIP = (
    "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
    " VALUES (%s, %s, 'X', '2026-01-01', '2026-01-02') RETURNING id"
)


@pytest.fixture
async def gateway_db(embedded_database: str) -> AsyncIterator[Database]:
    async with Database(embedded_database, max_size=2) as db:
        await db.execute(RQ["register_gateway"], {"id": str(uuid.uuid4())})
        yield db


async def test_a_transaction_committing_late_is_delivered_once(embedded_database: str, gateway_db: Database) -> None:
    owner = await make_user(gateway_db)
    reader = ChangeReader(gateway_db, limit=2)  # small pages: paging is exercised too
    await reader.start()
    slow = await psycopg.AsyncConnection.connect(embedded_database)
    fast = await psycopg.AsyncConnection.connect(embedded_database, autocommit=True)
    try:
        await slow.execute(ADD_TRIP, [owner, "slow"])  # captured first (lower id), committed last
        for name in ("fast-1", "fast-2", "fast-3"):
            await fast.execute(ADD_TRIP, [owner, name])
        assert [c.record["name"] for c in await reader.read() if c.record] == ["fast-1", "fast-2", "fast-3"]
        assert await reader.read() == []
        await slow.commit()
        assert [c.record["name"] for c in await reader.read() if c.record] == ["slow"]
        assert await reader.read() == []
        await fast.execute(ADD_TRIP, [owner, "fast-4"])
        assert [c.record["name"] for c in await reader.read() if c.record] == ["fast-4"]
    finally:
        await slow.close()
        await fast.close()


async def test_nothing_is_captured_without_a_live_gateway_and_retention_bounds_the_table(
    embedded_database: str,
) -> None:
    async with Database(embedded_database, max_size=2) as db:
        owner = await make_user(db)
        async with await psycopg.AsyncConnection.connect(embedded_database, autocommit=True) as conn:
            await conn.execute(ADD_TRIP, [owner, "nobody listens"])
            count = "SELECT count(*) FROM tripsage_realtime.changes"
            assert (await (await conn.execute(count)).fetchone()) == (0,)
            gateway = str(uuid.uuid4())
            await db.execute(RQ["register_gateway"], {"id": gateway})
            await conn.execute(
                "UPDATE tripsage_realtime.gateways SET seen_at = now() - interval '2 minutes' WHERE id = %s", [gateway]
            )
            await conn.execute(ADD_TRIP, [owner, "a dead gateway does not count"])
            assert (await (await conn.execute(count)).fetchone()) == (0,)
            await db.execute(RQ["register_gateway"], {"id": gateway})
            await conn.execute(ADD_TRIP, [owner, "captured"])
            assert (await (await conn.execute(count)).fetchone()) == (1,)
            await conn.execute("UPDATE tripsage_realtime.changes SET captured_at = now() - interval '10 minutes'")
            assert await db.fetch_value(RQ["cleanup_changes"], {"retention_s": 300, "limit": 100}) == 1
            assert (await (await conn.execute(count)).fetchone()) == (0,)


async def test_the_publication_is_the_configuration(
    runtime: RunningRuntime, admin: Database, embedded_database: str, closing: list[AsyncRealtimeClient]
) -> None:
    """flights is not published by default; once added, its changes flow, authorized by RLS checked per subscriber
    (it has no audience function); chat_tool_calls, once dropped, is refused."""
    owner, stranger = await make_user(admin), await make_user(admin)
    binding = [{"event": "*", "table": "flights", "schema": "public"}]
    async with await psycopg.AsyncConnection.connect(embedded_database, autocommit=True) as conn:
        await conn.execute("ALTER PUBLICATION supabase_realtime ADD TABLE public.flights")
        await conn.execute("ALTER PUBLICATION supabase_realtime DROP TABLE public.chat_tool_calls")
        service = await subscribe(runtime.base_url, service_key(), "flights", binding)
        mine = await subscribe(runtime.base_url, user_token(owner), "flights", binding)
        theirs = await subscribe(runtime.base_url, user_token(stranger), "flights", binding)
        closing.extend([service.client, mine.client, theirs.client])
        trip = (await (await conn.execute(ADD_TRIP, [owner, "flying"])).fetchone())[0]  # type: ignore[index]
        flight = (
            await (
                await conn.execute(
                    "INSERT INTO flights (trip_id, origin, destination, departure_date, price) "
                    "VALUES (%s, 'LIS', 'OSL', '2026-01-01', 100) RETURNING id",
                    [trip],
                )
            ).fetchone()
        )[0]  # type: ignore[index]
        # RLS is checked against the row as it is when the gateway reads the change (as Supabase does): each step
        # waits for the previous one to arrive, so the row still exists when it is checked.
        await eventually(lambda: [c["data"]["type"] for c in mine.changes] == ["INSERT"])
        await conn.execute("UPDATE flights SET price = 120 WHERE id = %s", [flight])
        await eventually(lambda: [c["data"]["type"] for c in mine.changes] == ["INSERT", "UPDATE"])
        await conn.execute("DELETE FROM flights WHERE id = %s", [flight])
        await eventually(lambda: [c["data"]["type"] for c in service.changes] == ["INSERT", "UPDATE", "DELETE"])
        assert mine.changes[1]["data"]["record"]["price"] == 120
        assert theirs.changes == []
        triggers = (
            "SELECT array_agg(tgrelid::regclass::text ORDER BY 1) FROM pg_trigger WHERE tgname = 'A_realtime_capture'"
        )
        tables = (await (await conn.execute(triggers)).fetchone())[0]  # type: ignore[index]
        assert "flights" in tables and "chat_tool_calls" not in tables
        refused = await subscribe(
            runtime.base_url,
            service_key(),
            "tool-calls",
            [{"event": "*", "table": "chat_tool_calls", "schema": "public"}],
            wait_postgres=False,
        )
        closing.append(refused.client)
        await eventually(lambda: any(s.get("status") == "error" for s in refused.systems) or bool(refused.states[1:]))


async def test_bad_claims_of_one_subscriber_do_not_stall_the_others(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    odd_tokens = [
        jwt.sign(TEST_JWT_SECRET, {"role": "authenticated", "exp": 2**31, "sub": "null"}),
        jwt.sign(TEST_JWT_SECRET, {"role": "authenticated", "exp": 2**31, "sub": "not-a-uuid"}),
        jwt.sign(TEST_JWT_SECRET, {"role": "no_such_role", "exp": 2**31, "sub": owner}),
    ]
    binding = [{"event": "INSERT", "table": "trips", "schema": "public"}]
    odd = [await subscribe(runtime.base_url, token, "odd", binding) for token in odd_tokens]
    good = await subscribe(runtime.base_url, user_token(owner), "good", binding)
    closing.extend([s.client for s in [*odd, good]])
    trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "still delivered", "budget": 1})
    await eventually(lambda: [c["data"]["record"]["id"] for c in good.changes] == [trip])
    assert all(s.changes == [] for s in odd)


async def test_metrics_count_connections_channels_and_messages(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    metrics = runtime.runtime.metrics
    sent_before = metrics.realtime_messages.labels(kind="postgres_changes")._value.get()
    sub = await subscribe(
        runtime.base_url, user_token(owner), "m", [{"event": "*", "table": "trips", "schema": "public"}]
    )
    closing.append(sub.client)
    assert metrics.realtime_connections._value.get() >= 1 and metrics.realtime_channels._value.get() >= 1
    await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "counted", "budget": 1})
    await eventually(lambda: len(sub.changes) == 1)
    assert metrics.realtime_messages.labels(kind="postgres_changes")._value.get() == sent_before + 1


async def test_writes_made_as_the_user_under_rls_are_captured(
    runtime: RunningRuntime, admin: Database, embedded_database: str, closing: list[AsyncRealtimeClient]
) -> None:
    """The app writes as `authenticated` (PostgREST): the capture trigger and audience functions run for it too."""
    owner = await make_user(admin)
    sub = await subscribe(
        runtime.base_url, user_token(owner), "as-user", [{"event": "*", "table": "trips", "schema": "public"}]
    )
    closing.append(sub.client)
    async with await psycopg.AsyncConnection.connect(embedded_database) as conn:
        await conn.execute("SET ROLE authenticated")
        await conn.execute(
            "SELECT set_config('request.jwt.claims', %s, false)", [f'{{"sub": "{owner}", "role": "authenticated"}}']
        )
        await conn.execute(
            "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
            " VALUES (%s, 'mine', 'X', '2026-01-01', '2026-01-02')",
            [owner],
        )
        await conn.execute("UPDATE trips SET name = 'still mine' WHERE user_id = %s", [owner])
        await conn.execute("DELETE FROM trips WHERE user_id = %s", [owner])
        await conn.commit()
    await eventually(lambda: [c["data"]["type"] for c in sub.changes] == ["INSERT", "UPDATE", "DELETE"])
