"""Realtime Authorization (private channels decided by RLS policies on realtime.messages), Broadcast from Database
(realtime.send, realtime.broadcast_changes) and the seals between private and public channels, with realtime-py.

The TripSage policies: trip:<id> readable with view access, writable (send, track) with edit access and above;
chat:<session id> for the session's owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets
from realtime import AsyncRealtimeChannel, AsyncRealtimeClient, RealtimeSubscribeStates
from testkit.runtime import TEST_JWT_SECRET, RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.realtime.conftest import (
    WAIT,
    anon_key,
    make_user,
    service_key,
    subscribe,
    trip_matrix,
    user_token,
)
from tripsage import jwt, queries_for
from tripsage.db.connector import Database

Q = queries_for("tests.integration.realtime")


@dataclass
class Member:
    name: str
    client: AsyncRealtimeClient
    channel: AsyncRealtimeChannel
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = field(default_factory=list)
    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, str] = field(default_factory=dict)

    @property
    def joined(self) -> bool:
        return bool(self.states) and self.states[-1][0] == RealtimeSubscribeStates.SUBSCRIBED

    @property
    def errors(self) -> list[str]:
        return [str(error) for _, error in self.states if error is not None]

    def heard(self, event: str | None = None) -> list[Any]:
        return [b["payload"] for b in self.broadcasts if event is None or b["event"] == event]


async def join(
    base_url: str,
    token: str,
    topic: str,
    name: str,
    *,
    private: bool = True,
    presence: bool = True,
    access_token: str | None = None,
) -> Member:
    """Join `topic` with realtime-py, recording everything; the join may be refused. `access_token`: the channel's
    own token (the socket connects with `token`)."""
    client = AsyncRealtimeClient(f"{base_url}/realtime/v1", token, max_retries=2, initial_backoff=0.2)
    if access_token is not None:
        await client.set_auth(access_token)
    config = {"broadcast": {"self": False}, "presence": {"key": name, "enabled": presence}, "private": private}
    channel = client.channel(topic, {"config": config})
    member = Member(name, client, channel)
    channel.on_broadcast("*", member.broadcasts.append)
    if presence:
        channel.on_presence_sync(lambda: None)
    await channel.subscribe(lambda state, error: member.states.append((state, error)))
    return member


async def push_and_wait(member: Member, event: str, payload: dict[str, Any], label: str) -> None:
    """Push a frame and wait for its reply (ok or error), recorded under `label`."""
    push = await member.channel.push(event, payload)
    push.receive("ok", lambda _: member.replies.__setitem__(label, "ok"))
    push.receive("error", lambda _: member.replies.__setitem__(label, "error"))
    await eventually(lambda: label in member.replies, message=f"no reply to {label} for {member.name}")


@pytest.fixture
async def members() -> AsyncIterator[list[Member]]:
    joined: list[Member] = []
    yield joined
    for member in joined:
        with contextlib.suppress(Exception):
            await member.client.close()


async def make_trip(admin: Database, owner: str) -> int:
    return int(await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "Lisbon", "budget": 100}))


async def add_collaborator(admin: Database, trip_id: int, user: str, level: str, owner: str) -> None:
    await admin.execute(Q["add_collaborator"], {"trip_id": trip_id, "user_id": user, "level": level, "added_by": owner})


async def test_the_trip_matrix_join_receive_send_and_track(
    runtime: RunningRuntime, admin: Database, members: list[Member]
) -> None:
    trip, tokens = await trip_matrix(admin, "Lisbon")
    topic = f"trip:{trip}"
    for name, token in tokens.items():
        members.append(await join(runtime.base_url, token, topic, name))
    by_name = {m.name: m for m in members}

    # join = read: view access and above (and service_role, which bypasses RLS)
    joined = {m.name for m in members if m.joined}
    assert joined == {"owner", "viewer", "editor", "admin", "service"}
    for name in ("stranger", "anon"):
        reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {topic}"
        assert any(reason in error for error in by_name[name].errors), by_name[name].errors

    # send and track = write: edit access and above. A refused send is dropped (no reply, as Supabase); a refused
    # track gets an error reply. Each socket handles its frames in order, so once the track is answered its broadcast
    # was handled too.
    insiders = [by_name[name] for name in ("owner", "viewer", "editor", "admin", "service")]
    for member in insiders:
        await member.channel.send_broadcast("hello", {"from": member.name})
        await push_and_wait(member, "presence", {"type": "presence", "event": "track", "payload": {}}, "track")
    assert {m.name: m.replies["track"] for m in insiders} == {
        "owner": "ok",
        "viewer": "error",
        "editor": "ok",
        "admin": "ok",
        "service": "ok",
    }
    await by_name["service"].channel.send_broadcast("done", {})
    for member in insiders:
        if member.name != "service":
            await eventually(lambda m=member: bool(m.heard("done")), message=f"{member.name} heard no 'done'")
        writers = {"owner", "editor", "admin", "service"} - {member.name}
        assert {p["from"] for p in member.heard("hello")} == writers, member.name
    for member in insiders:
        await eventually(
            lambda m=member: set(m.channel.presence_state()) == {"owner", "editor", "admin", "service"},
            message=f"{member.name} sees {member.channel.presence_state()}",
        )
    for name in ("stranger", "anon"):
        assert by_name[name].broadcasts == []


async def test_chat_topic_is_for_the_session_owner(
    runtime: RunningRuntime, admin: Database, members: list[Member]
) -> None:
    owner, other = await make_user(admin), await make_user(admin)
    session = str(uuid.uuid4())
    await admin.execute(Q["add_chat_session"], {"id": session, "user_id": owner})
    members.append(await join(runtime.base_url, user_token(owner), f"chat:{session}", "owner"))
    members.append(await join(runtime.base_url, user_token(other), f"chat:{session}", "other"))
    members.append(await join(runtime.base_url, user_token(owner), "chat:not-a-uuid", "malformed"))
    assert [m.joined for m in members] == [True, False, False]


async def test_private_and_public_presence_never_mix(
    runtime: RunningRuntime, admin: Database, members: list[Member]
) -> None:
    """The leak: a private member's presence reached a public channel of the same name, and back."""
    private = await join(runtime.base_url, service_key(), "ops", "private-member")
    members.append(private)
    await private.channel.track({"secret_meta": "X"})
    public = await join(runtime.base_url, anon_key(), "ops", "public-member", private=False)
    members.append(public)
    assert private.joined and public.joined
    await public.channel.track({"public": True})
    # each side sees only itself, and the public side's broadcast does not cross either
    await eventually(lambda: set(public.channel.presence_state()) == {"public-member"})
    await eventually(lambda: set(private.channel.presence_state()) == {"private-member"})
    await public.channel.send_broadcast("note", {"public": True})
    await private.channel.send_broadcast("note", {"private": True})
    sentinel = await join(runtime.base_url, anon_key(), "ops", "sentinel", private=False, presence=False)
    members.append(sentinel)
    await sentinel.channel.send_broadcast("done", {})
    await eventually(lambda: bool(public.heard("done")))
    assert public.heard("note") == []
    assert "secret_meta" not in json.dumps(public.channel.presence_state())
    assert set(private.channel.presence_state()) == {"private-member"}
    assert private.heard() == []


async def test_notify_from_a_database_role_reaches_no_client(
    runtime: RunningRuntime, admin: Database, members: list[Member]
) -> None:
    """The leak: the relay trusted NOTIFY payloads, so `SET ROLE anon; SELECT pg_notify(...)` reached a private
    channel. NOTIFY now only wakes the gateway; relayed messages come from a table only the runtime writes."""
    member = await join(runtime.base_url, service_key(), "ops", "member")
    members.append(member)
    forged = {
        "kind": "broadcast",
        "topic": "realtime:ops",
        "private": True,
        "origin": "x",
        "payload": {"type": "broadcast", "event": "x", "payload": {"forged": 1}},
    }
    async with admin.transaction() as conn:
        await conn.execute(Q["act_as"].sql, {"role": "anon", "claims": json.dumps({"role": "anon"})})
        for query in ("notify_relay", "notify_changes"):
            await conn.execute(Q[query].sql, {"payload": json.dumps(forged)})
    # A genuine message afterwards: once it arrives, the forged one had its chance.
    async with admin.transaction() as conn:
        await conn.execute(Q["realtime_send"].sql, {"payload": "{}", "event": "done", "topic": "ops", "private": True})
    await eventually(lambda: bool(member.heard("done")))
    assert member.heard("x") == []


async def test_a_revoked_collaborator_is_stopped_on_refresh_and_refused_on_join(
    runtime: RunningRuntime, admin: Database, members: list[Member]
) -> None:
    owner, editor = await make_user(admin), await make_user(admin)
    trip = await make_trip(admin, owner)
    await add_collaborator(admin, trip, editor, "edit", owner)
    member = await join(runtime.base_url, user_token(editor), f"trip:{trip}", "editor")
    members.append(member)
    assert member.joined
    # A refresh that keeps access keeps the channel (and its write: a send after it arrives).
    watcher = await join(runtime.base_url, user_token(owner), f"trip:{trip}", "owner")
    members.append(watcher)
    await member.client.set_auth(user_token(editor, lifetime=3598))
    await member.channel.send_broadcast("still", {})
    await eventually(lambda: bool(watcher.heard("still")))
    assert member.states[-1][0] == RealtimeSubscribeStates.SUBSCRIBED
    await admin.execute(Q["remove_collaborator"], {"trip_id": trip, "user_id": editor})
    await member.client.set_auth(user_token(editor, lifetime=3599))  # a refreshed token: policies evaluated again
    reason = f"You do not have permissions to read from this Channel topic: trip:{trip}"
    await eventually(lambda: any(reason in error for error in member.errors), message=str(member.states))
    await eventually(lambda: member.states[-1][0] == RealtimeSubscribeStates.CLOSED)
    again = await join(runtime.base_url, user_token(editor), f"trip:{trip}", "editor-again")
    members.append(again)
    assert not again.joined


async def test_broadcast_from_database_reaches_authorized_subscribers_on_two_replicas_only(
    embedded_database: str, tmp_path: Path, admin: Database, members: list[Member]
) -> None:
    owner, viewer, stranger = await make_user(admin), await make_user(admin), await make_user(admin)
    trip = await make_trip(admin, owner)
    await add_collaborator(admin, trip, viewer, "view", owner)
    await admin.execute(Q["install_items_broadcast"])
    topic = f"trip:{trip}"
    async with (
        running_runtime(runtime_settings(tmp_path / "a"), embedded_database) as first,
        running_runtime(runtime_settings(tmp_path / "b"), embedded_database) as second,
    ):
        on_first = await join(first.base_url, user_token(owner), topic, "owner")
        on_second = await join(second.base_url, user_token(viewer), topic, "viewer")
        public = await join(second.base_url, user_token(stranger), topic, "public", private=False)
        refused = await join(first.base_url, user_token(stranger), topic, "stranger")
        members.extend([on_first, on_second, public, refused])
        assert (on_first.joined, on_second.joined, public.joined, refused.joined) == (True, True, True, False)

        # A rolled-back transaction sends nothing (after commit only).
        with contextlib.suppress(RuntimeError):
            async with admin.transaction() as conn:
                await conn.execute(Q["add_item"].sql, {"trip_id": trip, "title": "never"})
                raise RuntimeError("roll back")
        item = await admin.fetch_value(Q["add_item"], {"trip_id": trip, "title": "Tram 28"})
        # A private send as a viewer (no INSERT policy) is refused with a warning; public sends reach public channels.
        async with admin.transaction() as conn:
            await conn.execute(Q["act_as"].sql, {"role": "authenticated", "claims": json.dumps({"sub": viewer})})
            await conn.execute(
                Q["realtime_send"].sql, {"payload": "{}", "event": "viewer", "topic": topic, "private": True}
            )
        async with admin.transaction() as conn:
            await conn.execute(
                Q["realtime_send"].sql, {"payload": '{"n": 1}', "event": "open", "topic": topic, "private": False}
            )
        async with admin.transaction() as conn:
            await conn.execute(
                Q["realtime_send"].sql, {"payload": "{}", "event": "done", "topic": topic, "private": True}
            )

        for member in (on_first, on_second):
            await eventually(lambda m=member: bool(m.heard("done")), message=f"{member.name}: {member.broadcasts}")
            assert [b["event"] for b in member.broadcasts] == ["INSERT", "done"]
            frame = member.broadcasts[0]
            assert frame["payload"]["record"]["title"] == "Tram 28" and frame["payload"]["record"]["id"] == item
            assert frame["payload"]["old_record"] is None
            assert (frame["payload"]["operation"], frame["payload"]["table"], frame["payload"]["schema"]) == (
                "INSERT",
                "itinerary_items",
                "public",
            )
            assert frame["payload"]["id"] == frame["meta"]["id"]  # realtime.send adds the message id
        await eventually(lambda: bool(public.heard("open")))
        assert [b["event"] for b in public.broadcasts] == ["open"] and public.heard("open")[0]["n"] == 1
        assert refused.broadcasts == []


async def test_bad_input_is_refused_with_supabase_shapes(
    runtime: RunningRuntime, admin: Database, members: list[Member]
) -> None:
    owner = await make_user(admin)
    trip = await make_trip(admin, owner)
    topic = f"trip:{trip}"
    member = await join(runtime.base_url, user_token(owner), topic, "owner")
    members.append(member)
    long_topic = await join(runtime.base_url, user_token(owner), "t" * 256, "long")
    valid = user_token(owner)
    expired = await join(runtime.base_url, valid, topic, "expired", access_token=user_token(owner, lifetime=-10))
    forged_token = jwt.user_token(TEST_JWT_SECRET[::-1], owner)
    forged = await join(runtime.base_url, valid, topic, "forged", access_token=forged_token)
    members.extend([long_topic, expired, forged])
    assert (member.joined, long_topic.joined, expired.joined, forged.joined) == (True, False, False, False)
    assert any("TopicNameTooLong" in error for error in long_topic.errors)
    assert any("InvalidJWTToken: Token has expired" in error for error in expired.errors)
    assert any("MalformedJWT" in error for error in forged.errors)
    # A V2 socket (binary broadcast frames, whose event field is at most 255 bytes) on the same channel.
    url = runtime.base_url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={valid}&vsn=2.0.0"
    async with websockets.connect(url) as v2:
        join_payload = {"config": {"broadcast": {"self": False}, "presence": {"enabled": False}, "private": True}}
        await v2.send(json.dumps(["1", "1", f"realtime:{topic}", "phx_join", join_payload]))
        assert json.loads(await v2.recv())[4]["status"] == "ok"
        # Too large a payload is dropped; an event name no binary frame can carry reaches the V1 client only; the
        # channels (and the gateway's reader) live on.
        long_event = "e" * 300
        async with admin.transaction() as conn:
            big = json.dumps({"x": "y" * (300 * 1024)})
            for payload, event in ((big, "big"), ("{}", long_event), ("{}", "done")):
                params = {"payload": payload, "event": event, "topic": topic, "private": True}
                await conn.execute(Q["realtime_send"].sql, params)
        await eventually(lambda: bool(member.heard("done")))
        assert member.heard("big") == [] and len(member.heard(long_event)) == 1
        async with asyncio.timeout(WAIT):
            frame = await v2.recv()
            while not (isinstance(frame, bytes) and b"done" in frame):
                assert not isinstance(frame, bytes) or long_event.encode() not in frame
                frame = await v2.recv()


async def test_private_only_refuses_public_channels(
    embedded_database: str, tmp_path: Path, admin: Database, members: list[Member]
) -> None:
    owner = await make_user(admin)
    trip = await make_trip(admin, owner)
    settings = runtime_settings(tmp_path, realtime_private_only=True)
    async with running_runtime(settings, embedded_database) as running:
        public = await join(running.base_url, user_token(owner), f"trip:{trip}", "public", private=False)
        private = await join(running.base_url, user_token(owner), f"trip:{trip}", "private")
        members.extend([public, private])
        assert (public.joined, private.joined) == (False, True)
        assert any("PrivateOnly: This project only allows private channels" in e for e in public.errors)


async def test_a_table_added_to_the_publication_reaches_schema_wide_subscribers_at_once(
    runtime: RunningRuntime, admin: Database
) -> None:
    """The leak: a schema-wide subscription opened within 5 s of ALTER PUBLICATION ... ADD TABLE never received
    that table's changes. Now the capture is installed with the ALTER and the gateway binds the table on its first
    change, for channels joined before the ALTER and after it."""
    await admin.execute(Q["create_unpublished_table"])
    before = await subscribe(runtime.base_url, service_key(), "before", [{"event": "INSERT", "schema": "public"}])
    await admin.execute(Q["publish_table"])
    after = await subscribe(runtime.base_url, service_key(), "after", [{"event": "INSERT", "schema": "public"}])
    try:
        await admin.execute(Q["insert_rt_added"], {"id": 1, "note": "first"})
        for sub in (before, after):
            await eventually(lambda s=sub: any(c["data"]["table"] == "rt_added" for c in s.changes))
            assert [c["data"]["record"] for c in sub.changes] == [{"id": 1, "note": "first"}]
        # dropped from the publication: no more changes (a sentinel on a published table arrives instead)
        await admin.execute(Q["unpublish_table"])
        await admin.execute(Q["insert_rt_added"], {"id": 2, "note": "unpublished"})
        trip = await make_trip(admin, await make_user(admin))
        await eventually(lambda: any(c["data"]["table"] == "trips" for c in after.changes))
        assert [c["data"]["record"]["id"] for c in after.changes if c["data"]["table"] == "rt_added"] == [1]
        assert any(c["data"]["record"]["id"] == trip for c in after.changes if c["data"]["table"] == "trips")
    finally:
        for sub in (before, after):
            with contextlib.suppress(Exception):
                await sub.client.close()


async def test_supabase_py_private_channel(runtime: RunningRuntime, admin: Database) -> None:
    """supabase-py as the docs show it: the anon key, the user's session token, `config.private`."""
    from supabase import acreate_client

    owner, stranger = await make_user(admin), await make_user(admin)
    trip = await make_trip(admin, owner)
    clients = []
    try:
        got: dict[str, list[dict[str, Any]]] = {}
        states: dict[str, list[RealtimeSubscribeStates]] = {}
        for name, user in (("owner", owner), ("stranger", stranger)):
            client = await acreate_client(runtime.base_url, anon_key())
            clients.append(client)
            await client.realtime.set_auth(user_token(user))
            channel = client.channel(f"trip:{trip}", {"config": {"private": True}})
            channel.on_broadcast("note", got.setdefault(name, []).append)
            seen = states.setdefault(name, [])
            await channel.subscribe(lambda state, _error, seen=seen: seen.append(state))
        assert states["owner"][-1] == RealtimeSubscribeStates.SUBSCRIBED
        assert states["stranger"][-1] == RealtimeSubscribeStates.CHANNEL_ERROR
        async with admin.transaction() as conn:
            params = {"payload": '{"x": 1}', "event": "note", "topic": f"trip:{trip}", "private": True}
            await conn.execute(Q["realtime_send"].sql, params)
        await eventually(lambda: bool(got["owner"]))
        assert got["owner"][0]["payload"]["x"] == 1
        assert got["stranger"] == []
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.remove_all_channels()
