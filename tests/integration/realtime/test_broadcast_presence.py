"""Broadcast (self, ack) and presence (track, untrack, state, diff) with the real client, on one runtime and across
two runtimes sharing a database (the relay through PostgreSQL)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from realtime import AsyncRealtimeClient
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.realtime.conftest import make_user, subscribe, user_token
from tripsage import queries_for
from tripsage.db.connector import Database
from tripsage.realtime.component import RealtimeComponent


@pytest.fixture
async def two_runtimes(embedded_database: str, tmp_path: Path) -> AsyncIterator[tuple[RunningRuntime, RunningRuntime]]:
    async with (
        running_runtime(runtime_settings(tmp_path / "a"), embedded_database) as first,
        running_runtime(runtime_settings(tmp_path / "b"), embedded_database) as second,
    ):
        yield first, second


def options(**broadcast: Any) -> dict[str, Any]:
    return {"config": {"broadcast": broadcast, "presence": {"key": ""}, "private": False}}


async def test_broadcast_reaches_others_and_self_only_when_asked(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    alice, bob = await make_user(admin), await make_user(admin)
    a = await subscribe(runtime.base_url, user_token(alice), "room1", [], params=options(self=True, ack=True))
    b = await subscribe(runtime.base_url, user_token(bob), "room1", [], params=options())
    closing.extend([a.client, b.client])
    a_got: list[dict[str, Any]] = []
    b_got: list[dict[str, Any]] = []
    a.channel.on_broadcast("cursor", a_got.append)
    b.channel.on_broadcast("cursor", b_got.append)
    acks: list[Any] = []
    push = await a.channel.push("broadcast", {"type": "broadcast", "event": "cursor", "payload": {"x": 1}})
    push.receive("ok", acks.append)
    await b.channel.send_broadcast("cursor", {"x": 2})
    await eventually(lambda: len(a_got) == 2 and len(b_got) == 1 and len(acks) == 1)
    assert [m["payload"] for m in a_got] == [{"x": 1}, {"x": 2}]  # self: its own, and bob's
    assert (b_got[0]["event"], b_got[0]["payload"]) == ("cursor", {"x": 1})  # not its own (no self)


async def test_presence_sync_join_and_leave(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    alice, bob = await make_user(admin), await make_user(admin)
    a_params = {"config": {"broadcast": {}, "presence": {"key": "alice", "enabled": True}, "private": False}}
    b_params = {"config": {"broadcast": {}, "presence": {"key": "bob", "enabled": True}, "private": False}}
    a = await subscribe(runtime.base_url, user_token(alice), "lobby", [], params=a_params)
    closing.append(a.client)
    await a.channel.track({"status": "online"})
    b = await subscribe(runtime.base_url, user_token(bob), "lobby", [], params=b_params)
    closing.append(b.client)
    # bob's presence_state on join already lists alice
    await eventually(lambda: set(b.channel.presence_state()) == {"alice"})
    await b.channel.track({"status": "typing"})
    await eventually(lambda: set(a.channel.presence_state()) == {"alice", "bob"})
    meta = a.channel.presence_state()["bob"][0]
    assert meta["status"] == "typing" and meta["presence_ref"]
    await b.channel.untrack()
    await eventually(lambda: set(a.channel.presence_state()) == {"alice"})
    await b.client.remove_channel(b.channel)
    await a.channel.track({"status": "away"})  # re-tracking replaces the entry
    await eventually(lambda: [m["status"] for m in a.channel.presence_state()["alice"]] == ["away"])


async def test_broadcast_and_presence_cross_replicas(
    two_runtimes: tuple[RunningRuntime, RunningRuntime], admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    first, second = two_runtimes
    alice, bob = await make_user(admin), await make_user(admin)
    a_params = {"config": {"broadcast": {}, "presence": {"key": "alice", "enabled": True}, "private": False}}
    b_params = {"config": {"broadcast": {}, "presence": {"key": "bob", "enabled": True}, "private": False}}
    a = await subscribe(first.base_url, user_token(alice), "trip-42", [], params=a_params)
    b = await subscribe(second.base_url, user_token(bob), "trip-42", [], params=b_params)
    closing.extend([a.client, b.client])
    b_got: list[dict[str, Any]] = []
    b.channel.on_broadcast("note", b_got.append)
    await a.channel.send_broadcast("note", {"text": "hello from replica one"})
    big = "x" * 20000  # over the NOTIFY limit: relayed through the side table
    await a.channel.send_broadcast("note", {"text": big})
    await eventually(lambda: [m["payload"]["text"] for m in b_got] == ["hello from replica one", big])
    await a.channel.track({"on": "first"})
    await b.channel.track({"on": "second"})
    await eventually(lambda: set(a.channel.presence_state()) == {"alice", "bob"})
    await eventually(lambda: set(b.channel.presence_state()) == {"alice", "bob"})
    with contextlib.suppress(Exception):
        await a.client.close()  # alice's socket closes: her presence leaves everywhere
    await eventually(lambda: set(b.channel.presence_state()) == {"bob"})


async def test_presence_leaves_when_a_replica_stops_or_dies(
    runtime: RunningRuntime,
    embedded_database: str,
    admin: Database,
    tmp_path: Path,
    closing: list[AsyncRealtimeClient],
) -> None:
    alice, bob = await make_user(admin), await make_user(admin)
    a_params = {"config": {"broadcast": {}, "presence": {"key": "alice", "enabled": True}, "private": False}}
    b_params = {"config": {"broadcast": {}, "presence": {"key": "bob", "enabled": True}, "private": False}}
    a = await subscribe(runtime.base_url, user_token(alice), "stops", [], params=a_params)
    closing.append(a.client)
    async with running_runtime(runtime_settings(tmp_path / "other"), embedded_database) as other:
        b = await subscribe(other.base_url, user_token(bob), "stops", [], params=b_params)
        await b.channel.track({"here": True})
        await eventually(lambda: set(a.channel.presence_state()) == {"bob"})
        await b.client.close()
    # bob's replica stopped: his presence left.
    await eventually(lambda: a.channel.presence_state() == {})

    # A replica that died without a word: its row goes stale, and any live gateway expires it with its presences.
    q = queries_for("tests.integration.realtime")
    await admin.execute(
        q["add_dead_gateway"], {"id": "00000000-0000-4000-8000-00000000dead", "topic": "realtime:stops"}
    )
    c = await subscribe(runtime.base_url, user_token(bob), "stops", [], params=b_params)
    closing.append(c.client)
    await eventually(lambda: set(c.channel.presence_state()) == {"ghost"})
    component = next(comp for comp in runtime.runtime.components if isinstance(comp, RealtimeComponent))
    assert component.gateway is not None
    await component.gateway._expire_gateways()
    await eventually(lambda: c.channel.presence_state() == {})
