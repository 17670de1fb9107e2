"""Token refresh and expiry, reconnect and rejoin after the server closes with 1011, with the real client."""

from __future__ import annotations

import warnings

from realtime import AsyncRealtimeClient
from testkit.runtime import RunningRuntime
from testkit.waiting import eventually

from tests.integration.realtime.conftest import make_user, subscribe, user_token
from tripsage import queries_for
from tripsage.clock import SettableClock
from tripsage.db.connector import Database
from tripsage.realtime.channels import Channel
from tripsage.realtime.component import RealtimeComponent
from tripsage.realtime.gateway import Gateway

Q = queries_for("tests.integration.realtime")
TRIPS = [{"event": "*", "table": "trips", "schema": "public"}]


def gateway_of(runtime: RunningRuntime) -> RealtimeComponent:
    return next(c for c in runtime.runtime.components if isinstance(c, RealtimeComponent))


def settable_clock(runtime: RunningRuntime) -> SettableClock:
    clock = runtime.runtime.clock
    assert isinstance(clock, SettableClock)
    return clock


def channels_of(gateway: Gateway) -> list[Channel]:
    return [channel for connection in gateway.connections for channel in connection.channels.values()]


async def test_refreshed_token_keeps_the_channel_alive(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    sub = await subscribe(runtime.base_url, user_token(owner, lifetime=6), "refreshing", TRIPS)
    closing.append(sub.client)
    await sub.client.set_auth(user_token(owner, lifetime=3600))
    first = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "before", "budget": 1})
    await eventually(lambda: len(sub.changes) == 1)
    gateway = gateway_of(runtime).gateway
    assert gateway is not None
    clock = settable_clock(runtime)
    await eventually(lambda: all(c.identity.expires_at > clock.time() + 60 for c in channels_of(gateway)))
    # Past the first token's expiry the channel is still joined and still delivers.
    clock.advance(7)
    await gateway.close_expired()
    assert not any(s.get("status") == "error" for s in sub.systems)
    second = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "after", "budget": 1})
    await eventually(lambda: len(sub.changes) == 2)
    assert [c["data"]["record"]["id"] for c in sub.changes] == [first, second]
    assert sub.channel.is_joined


async def test_expired_token_closes_the_channel_as_supabase_does(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    sub = await subscribe(runtime.base_url, user_token(owner, lifetime=4), "expiring", TRIPS)
    closing.append(sub.client)
    gateway = gateway_of(runtime).gateway
    assert gateway is not None
    settable_clock(runtime).advance(5)  # past the token's expiry
    await gateway.close_expired()
    await eventually(lambda: sub.channel.is_closed, message=f"still open; systems: {sub.systems}")
    await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "unseen", "budget": 1})
    assert sub.changes == []


async def test_a_refresh_with_an_invalid_token_closes_the_channel(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    sub = await subscribe(runtime.base_url, user_token(owner), "bad-refresh", TRIPS)
    closing.append(sub.client)
    await sub.client.set_auth("not-a-jwt")
    await eventually(lambda: sub.channel.is_closed)


async def test_client_reconnects_and_rejoins_after_a_1011_close(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    sub = await subscribe(runtime.base_url, user_token(owner), "resilient", TRIPS)
    closing.append(sub.client)
    gateway = gateway_of(runtime).gateway
    assert gateway is not None
    subscribed_before = sum(1 for s in sub.systems if s.get("message") == "Subscribed to PostgreSQL")
    with warnings.catch_warnings():
        # realtime-py reads ConnectionClosed.code and .reason (deprecated in websockets 13.1) on an abnormal close.
        warnings.filterwarnings("ignore", r"ConnectionClosed\.(code|reason) is deprecated", DeprecationWarning)
        gateway.close_all(1011)
        await eventually(
            lambda: sum(1 for s in sub.systems if s.get("message") == "Subscribed to PostgreSQL") > subscribed_before,
            message="the channel was not rejoined",
        )
    trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "after the restart", "budget": 1})
    await eventually(lambda: any(c["data"]["record"]["id"] == trip for c in sub.changes))
