"""The wire protocol driven frame by frame with a plain websocket client: upgrade errors, heartbeat, unmatched topics,
leave/phx_close, bad filters and bad input (an error reply or a system error, never a crash), limits, and V2 arrays."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from testkit.runtime import RunningRuntime
from websockets.asyncio.client import ClientConnection

from tests.integration.realtime.conftest import anon_key, make_user, service_key, user_token
from tripsage import jwt, queries_for
from tripsage.db.connector import Database
from tripsage.realtime.component import RealtimeComponent
from tripsage.realtime.wire import Wire

RECEIVE = 10.0  # seconds: bound on waiting for a frame


def ws_url(runtime: RunningRuntime, token: str | None, vsn: str | None = None, path: str = "/realtime/v1") -> str:
    url = runtime.base_url.replace("http://", "ws://") + path + "/websocket"
    params = [f"apikey={token}"] if token else []
    if vsn:
        params.append(f"vsn={vsn}")
    return url + ("?" + "&".join(params) if params else "")


@pytest.fixture
async def socket(runtime: RunningRuntime) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(ws_url(runtime, service_key())) as ws:
        yield ws


async def send(ws: ClientConnection, topic: str, event: str, payload: Any, ref: str | None = "1") -> None:
    await ws.send(json.dumps({"event": event, "payload": payload, "topic": topic, "ref": ref, "join_ref": None}))


async def receive(ws: ClientConnection, event: str | None = None) -> dict[str, Any]:
    """The next frame (of `event`, skipping others)."""
    while True:
        async with asyncio.timeout(RECEIVE):
            frame: dict[str, Any] = json.loads(await ws.recv())
        if event is None or frame["event"] == event:
            return frame


def join_payload(bindings: list[dict[str, Any]] | None = None, **config: Any) -> dict[str, Any]:
    return {
        "config": {
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": "", "enabled": False},
            "private": False,
            "postgres_changes": bindings or [],
            **config,
        }
    }


async def test_upgrade_errors_have_supabase_bodies(runtime: RunningRuntime) -> None:
    expired = jwt.user_token(
        "tripsage-tests-jwt-secret-0123456789-abcdefghij", "00000000-0000-0000-0000-000000000001", lifetime=-10
    )
    for token, message in [
        (None, "API key is missing"),
        ("garbage", "The token provided is not a valid JWT"),
        (jwt.api_key("another-secret-of-at-least-32-characters!!", "anon"), "The token provided is not a valid JWT"),
        (expired, "Token has expired"),
    ]:
        with pytest.raises(websockets.InvalidStatus) as failure:
            async with websockets.connect(ws_url(runtime, token)):
                pass
        assert failure.value.response.status_code == 401
        assert json.loads(failure.value.response.body) == {"error": message}


async def test_heartbeat_join_leave_and_unmatched_topics(socket: ClientConnection) -> None:
    await send(socket, "phoenix", "heartbeat", {}, ref=None)
    assert await receive(socket) == {
        "event": "phx_reply",
        "payload": {"response": {}, "status": "ok"},
        "ref": None,
        "topic": "phoenix",
    }
    await send(socket, "realtime:room", "broadcast", {"type": "broadcast", "event": "x", "payload": {}}, ref="2")
    reply = await receive(socket)
    assert reply["payload"] == {"response": {"reason": "unmatched topic"}, "status": "error"} and reply["ref"] == "2"
    await send(socket, "elsewhere", "phx_join", join_payload(), ref="3")
    assert (await receive(socket))["payload"]["response"] == {"reason": "unmatched topic"}
    await send(socket, "realtime:", "phx_join", join_payload(), ref="4")
    assert (await receive(socket))["payload"]["response"]["reason"].startswith("TopicNameRequired")
    await send(socket, "realtime:room", "phx_join", join_payload(), ref="5")
    assert await receive(socket) == {
        "event": "phx_reply",
        "payload": {"response": {"postgres_changes": []}, "status": "ok"},
        "ref": "5",
        "topic": "realtime:room",
    }
    await send(socket, "realtime:room", "phx_leave", {}, ref="6")
    assert await receive(socket) == {
        "event": "phx_reply",
        "payload": {"response": {}, "status": "ok"},
        "ref": "6",
        "topic": "realtime:room",
    }
    assert await receive(socket) == {"event": "phx_close", "payload": {}, "ref": None, "topic": "realtime:room"}


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        ({"event": "*", "schema": "public", "table": "trips", "filter": "nope=eq.1"}, "Error parsing `filter` params"),
        ({"event": "*", "schema": "public", "table": "trips", "filter": "id=eq.abc"}, "Error parsing `filter` params"),
        (
            {"event": "*", "schema": "public", "table": "trips", "filter": "id=eq.1; DROP TABLE public.trips; --"},
            "Error parsing `filter` params",
        ),
        ({"event": "*", "schema": "public", "table": "trips", "filter": "id=like.1"}, "Error parsing `filter` params"),
        ({"event": "TRUNCATE", "schema": "public", "table": "trips"}, "Error parsing `filter` params"),
        ({"event": "*", "schema": "public", "table": "api_keys"}, "Unable to subscribe to changes"),
    ],
)
async def test_bad_bindings_get_a_system_error(
    socket: ClientConnection, admin: Database, binding: dict[str, Any], message: str
) -> None:
    await send(socket, "realtime:bad", "phx_join", join_payload([binding]))
    reply = await receive(socket)
    assert reply["payload"]["status"] == "ok"
    system = await receive(socket, "system")
    assert system["payload"]["status"] == "error" and system["payload"]["extension"] == "postgres_changes"
    assert system["payload"]["message"].startswith(message)
    assert await admin.fetch_value(queries_for("tests.integration.realtime")["count_trips"]) >= 0


async def test_malformed_frames_are_dropped_and_the_socket_lives_on(socket: ClientConnection) -> None:
    for junk in [
        "not json",
        "[]",
        "{}",
        '{"event": 1, "topic": 2, "payload": 3, "ref": 4}',
        "null",
        '"x"',
        "9" * 50,
        '{"event":"phx_join","topic":"realtime:x","payload":"nope","ref":{}}',
        "[" * 10000,
    ]:
        await socket.send(junk)
    await send(socket, "realtime:x", "phx_join", "not a map", ref="7")  # a join without config: legacy, accepted
    assert (await receive(socket, "phx_reply"))["payload"]["status"] == "ok"
    await send(socket, "realtime:x", "unknown_event", {}, ref="8")
    assert (await receive(socket, "phx_reply"))["payload"]["status"] == "error"
    await send(socket, "phoenix", "heartbeat", {}, ref="9")
    assert (await receive(socket, "phx_reply"))["ref"] == "9"


async def test_join_errors_for_bad_tokens_and_limits(runtime: RunningRuntime, admin: Database) -> None:
    user = await make_user(admin)
    async with websockets.connect(ws_url(runtime, user_token(user))) as ws:
        await send(ws, "realtime:a", "phx_join", {**join_payload(), "access_token": "garbage"})
        assert (await receive(ws))["payload"]["response"]["reason"].startswith("MalformedJWT")
        expired = jwt.user_token("tripsage-tests-jwt-secret-0123456789-abcdefghij", user, lifetime=-30)
        await send(ws, "realtime:a", "phx_join", {**join_payload(), "access_token": expired})
        reason = (await receive(ws))["payload"]["response"]["reason"]
        assert reason.startswith("InvalidJWTToken: Token has expired") and reason.endswith("seconds ago")
        await send(ws, "realtime:a", "phx_join", join_payload(private=True))
        assert (await receive(ws))["payload"]["response"]["reason"].startswith("Unauthorized")
        limit = 100
        await asyncio.sleep(1.1)  # a fresh joins-per-second window
        for n in range(limit):
            await send(ws, f"realtime:many-{n}", "phx_join", join_payload(), ref=str(n))
        for _ in range(limit):
            assert (await receive(ws))["payload"]["status"] == "ok"
        await send(ws, "realtime:one-too-many", "phx_join", join_payload(), ref="x")
        # joins per second or channels: either limit answers with Supabase's reason codes
        reason = (await receive(ws))["payload"]["response"]["reason"]
        assert reason.startswith(("ChannelRateLimitReached", "ClientJoinRateLimitReached"))
    async with websockets.connect(ws_url(runtime, anon_key())) as ws:
        await send(
            ws, "realtime:anon", "phx_join", join_payload([{"event": "*", "schema": "public", "table": "trips"}])
        )
        assert (await receive(ws))["payload"]["status"] == "ok"


async def test_v2_array_frames(runtime: RunningRuntime, admin: Database) -> None:
    owner = await make_user(admin)
    async with websockets.connect(ws_url(runtime, user_token(owner), vsn="2.0.0", path="/socket")) as ws:
        await ws.send(
            json.dumps(
                [
                    "1",
                    "1",
                    "realtime:v2",
                    "phx_join",
                    join_payload([{"event": "INSERT", "schema": "public", "table": "trips"}]),
                ]
            )
        )
        reply = json.loads(await ws.recv())
        assert reply[:4] == ["1", "1", "realtime:v2", "phx_reply"] and reply[4]["status"] == "ok"
        binding_id = reply[4]["response"]["postgres_changes"][0]["id"]
        system = json.loads(await ws.recv())
        assert system[3] == "system" and system[4]["message"] == "Subscribed to PostgreSQL"
        q = queries_for("tests.integration.realtime")
        trip = await admin.fetch_value(q["add_trip"], {"user_id": owner, "name": "v2", "budget": 5})
        change = json.loads(await ws.recv())
        assert change[:4] == ["1", None, "realtime:v2", "postgres_changes"]
        assert change[4]["ids"] == [binding_id] and change[4]["data"]["record"]["id"] == trip
        await ws.send(json.dumps([None, "2", "phoenix", "heartbeat", {}]))
        assert json.loads(await ws.recv()) == [None, "2", "phoenix", "phx_reply", {"response": {}, "status": "ok"}]


def _frames_from_hypothesis() -> list[str]:
    """Frames generated by hypothesis (collected here, then sent to a live socket by the test below)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
        max_leaves=8,
    )
    filter_strings = st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda c, o, v: f"{c}={o}.{v}",
            st.sampled_from(["id", "name", "budget", "user_id", "start_date", "created_at", "x", "notes"]),
            st.sampled_from(["eq", "neq", "lt", "lte", "gt", "gte", "in", "like", ""]),
            st.text(max_size=15),
        ),
    )
    bindings = st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "event": st.sampled_from(["*", "INSERT", "UPDATE", "DELETE", "nope"]) | values,
                "schema": st.sampled_from(["public", "auth", "x"]) | values,
                "table": st.sampled_from(["trips", "chat_messages", "itinerary_items", "nope"]) | values,
                "filter": filter_strings | values,
            },
        ),
        max_size=3,
    )
    payloads = st.one_of(
        values,
        st.fixed_dictionaries(
            {
                "config": st.fixed_dictionaries(
                    {},
                    optional={
                        "postgres_changes": bindings | values,
                        "broadcast": values,
                        "presence": values,
                        "private": values,
                    },
                )
            },
            optional={"access_token": values},
        ),
        st.fixed_dictionaries({"type": st.just("broadcast"), "event": values, "payload": values}),
        st.fixed_dictionaries({"event": st.sampled_from(["track", "untrack", "x"]) | values, "payload": values}),
    )
    frames = st.fixed_dictionaries(
        {
            "event": st.sampled_from(
                ["phx_join", "phx_leave", "heartbeat", "broadcast", "presence", "access_token", "x"]
            )
            | values,
            "topic": st.sampled_from(["realtime:fuzz", "realtime:", "phoenix", "fuzz"]) | values,
            "payload": payloads,
            "ref": st.none() | st.text(max_size=3) | values,
        },
        optional={"join_ref": values},
    )
    collected: list[str] = []

    @settings(max_examples=300, database=None, suppress_health_check=list(HealthCheck))
    @given(frames)
    def collect(frame: dict[str, Any]) -> None:
        collected.append(json.dumps(frame))

    collect()
    return collected


async def test_hypothesis_frames_never_crash_the_gateway(
    runtime: RunningRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    frames = _frames_from_hypothesis()
    async with websockets.connect(ws_url(runtime, service_key())) as ws:
        for n, frame in enumerate(frames):
            await ws.send(frame)
            if n % 40 == 39:  # stay under the per-socket event rate while still sending fast
                await asyncio.sleep(0.1)
        await send(ws, "phoenix", "heartbeat", {}, ref="alive")
        while (await receive(ws, "phx_reply"))["ref"] != "alive":
            pass
    assert not [r for r in caplog.records if r.name.startswith("tripsage.realtime") and r.levelname == "ERROR"]
    component = next(c for c in runtime.runtime.components if c.name == "realtime")
    assert component.health()["status"] == "ok"


async def test_too_many_messages_per_second_stops_the_channels(socket: ClientConnection) -> None:
    await send(socket, "realtime:busy", "phx_join", join_payload(), ref="1")
    assert (await receive(socket))["payload"]["status"] == "ok"
    for n in range(700):  # over the 500 frames/s limit
        await send(socket, "phoenix", "heartbeat", {}, ref=str(n))
    system = await receive(socket, "system")
    assert system["payload"] == {
        "channel": "busy",
        "extension": "system",
        "message": "Too many messages per second",
        "status": "error",
    }
    assert (await receive(socket, "phx_close"))["topic"] == "realtime:busy"


async def test_a_record_over_1_mib_is_sent_with_error_413_and_its_small_fields(
    socket: ClientConnection, admin: Database
) -> None:
    owner = await make_user(admin)
    binding = [{"event": "INSERT", "schema": "public", "table": "trips"}]
    await send(socket, "realtime:big", "phx_join", join_payload(binding))
    await receive(socket, "system")
    trip = await admin.fetch_value(queries_for("tests.integration.realtime")["add_big_trip"], {"user_id": owner})
    async with asyncio.timeout(RECEIVE):
        while True:
            frame = json.loads(await socket.recv())
            if frame["event"] == "postgres_changes":
                break
    data = frame["payload"]["data"]
    assert data["errors"] == ["Error 413: Payload Too Large"]
    assert data["record"]["id"] == trip and "notes" not in data["record"]


async def test_too_many_connected_users(runtime: RunningRuntime) -> None:
    component = next(c for c in runtime.runtime.components if isinstance(c, RealtimeComponent))
    assert component.gateway is not None
    original = component.gateway.limits
    component.gateway.limits = dataclasses.replace(original, connections=1)
    try:
        async with websockets.connect(ws_url(runtime, service_key())):
            with pytest.raises(websockets.InvalidStatus) as failure:
                async with websockets.connect(ws_url(runtime, service_key())):
                    pass
            assert failure.value.response.status_code == 429
            assert json.loads(failure.value.response.body) == {"error": "Too many connected users"}
    finally:
        component.gateway.limits = original


async def test_replication_ready_system_message(socket: ClientConnection) -> None:
    payload = join_payload()
    payload["config"]["broadcast"]["replication_ready"] = True
    await send(socket, "realtime:ready", "phx_join", payload)
    assert (await receive(socket))["payload"]["status"] == "ok"
    assert (await receive(socket, "system"))["payload"] == {
        "channel": "ready",
        "extension": "system",
        "message": "Replication connection established",
        "status": "ok",
    }


async def test_a_burst_goes_out_whole_in_order_uncompressed_in_batched_writes(runtime: RunningRuntime) -> None:
    """The runtime's server lets a socket writer write its queued frames at once (realtime/wire.py), negotiates no
    permessage-deflate (TRIPSAGE_REALTIME_COMPRESSION off, as Supabase), and a burst arrives complete and in order."""
    component = next(c for c in runtime.runtime.components if isinstance(c, RealtimeComponent))
    gateway = component.gateway
    assert gateway is not None
    async with websockets.connect(ws_url(runtime, service_key())) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        await send(ws, "realtime:burst", "phx_join", join_payload(), ref="1")
        assert (await receive(ws, "phx_reply"))["payload"]["status"] == "ok"
        (connection,) = gateway.connections
        assert Wire(connection.websocket).direct
        count = 500
        for n in range(count):  # queued in one go: the writer sends them in batches
            connection.push_text(json.dumps({"event": "burst", "payload": {"n": n}, "ref": None, "topic": "x"}))
        received = [(await receive(ws, "burst"))["payload"]["n"] for _ in range(count)]
        assert received == list(range(count))
