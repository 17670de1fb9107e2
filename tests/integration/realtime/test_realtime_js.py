"""The official realtime-js client (V2 protocol, binary broadcasts) against the running runtime, through node:
postgres_changes, broadcast with self and ack (its binary frames reaching a realtime-py client too), presence.

Needs node and `npm ci` in tests/js (`make realtime-js`); skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from realtime import AsyncRealtimeClient
from testkit.runtime import RunningRuntime

from tests.integration.realtime.conftest import (
    WAIT,
    anon_key,
    make_user,
    subscribe,
    trip_matrix,
    user_token,
)
from tripsage import queries_for
from tripsage.db.connector import Database

JS = Path(__file__).resolve().parents[2] / "js"
Q = queries_for("tests.integration.realtime")


def _unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (JS / "node_modules" / "@supabase" / "realtime-js").is_dir():
        return "realtime-js is not installed (make realtime-js)"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


class Node:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    async def until(self, predicate: Any, what: str) -> dict[str, Any]:
        for event in self.events:
            if predicate(event):
                return event
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    stderr = await self.process.stderr.read() if self.process.stderr else b""
                    raise AssertionError(f"node exited waiting for {what}: {stderr.decode()[-2000:]}")
                event = json.loads(line)
                self.events.append(event)
                if predicate(event):
                    return event

    async def command(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()


async def test_realtime_js_postgres_changes_broadcast_and_presence(
    runtime: RunningRuntime, admin: Database, closing: list[AsyncRealtimeClient]
) -> None:
    owner = await make_user(admin)
    token = user_token(owner)
    url = runtime.base_url.replace("http://", "ws://") + "/realtime/v1"
    process = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "realtime_js_client.cjs"),
        url,
        token,
        "js-room",
        "trips",
        "budget=gt.10",
        cwd=JS,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    node = Node(process)
    try:
        await node.until(lambda e: e["kind"] == "status" and e["status"] == "SUBSCRIBED", "SUBSCRIBED")
        await node.until(
            lambda e: e["kind"] == "system" and e["payload"].get("message") == "Subscribed to PostgreSQL", "system"
        )
        py = await subscribe(runtime.base_url, user_token(owner), "js-room", [])
        closing.append(py.client)
        py_got: list[dict[str, Any]] = []
        py.channel.on_broadcast("note", py_got.append)

        await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "cheap", "budget": 5})
        trip = await admin.fetch_value(Q["add_trip"], {"user_id": owner, "name": "from js", "budget": 50})
        change = await node.until(lambda e: e["kind"] == "postgres_changes", "a change")
        assert change["eventType"] == "INSERT" and change["new"]["id"] == trip and change["new"]["name"] == "from js"

        await node.command(broadcast={"text": "hi from js"})
        sent = await node.until(lambda e: e["kind"] == "sent", "the ack")
        assert sent["result"] == "ok"
        received = await node.until(lambda e: e["kind"] == "broadcast", "its own broadcast (self)")
        assert received["payload"] == {"text": "hi from js"}
        async with asyncio.timeout(WAIT):
            while not py_got:
                await asyncio.sleep(0.02)
        assert py_got[0]["payload"] == {"text": "hi from js"}  # a binary JSON broadcast reaches a V1 socket

        await py.channel.send_broadcast("note", {"text": "hi from python"})
        await node.until(lambda e: e["kind"] == "broadcast" and e["payload"] == {"text": "hi from python"}, "py's")

        await node.command(track={"editing": True})
        tracked = await node.until(lambda e: e["kind"] == "tracked", "the track reply")
        assert tracked["result"] == "ok"
        state = await node.until(lambda e: e["kind"] == "presence" and "js" in e["state"], "presence sync")
        assert state["state"]["js"][0]["editing"] is True
        await node.command(close=True)
        async with asyncio.timeout(WAIT):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def start_private(runtime: RunningRuntime, token: str, topic: str, key: str) -> Node:
    """realtime-js on a private channel: the socket connects with the anon key, setAuth gives the user's token."""
    url = runtime.base_url.replace("http://", "ws://") + "/realtime/v1"
    process = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "realtime_js_private.cjs"),
        url,
        anon_key(),
        token,
        topic,
        key,
        cwd=JS,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Node(process)


async def test_realtime_js_private_trip_channel_matrix(runtime: RunningRuntime, admin: Database) -> None:
    """The TripSage policies through realtime-js: join (read) with view access and above, send and track (write) with
    edit access and above; strangers and anon are refused with Supabase's reason."""
    trip, tokens = await trip_matrix(admin, "js")
    topic = f"trip:{trip}"
    nodes = {name: await start_private(runtime, token, topic, name) for name, token in tokens.items()}
    try:
        statuses = {
            name: await node.until(lambda e: e["kind"] == "status", "a join status") for name, node in nodes.items()
        }
        assert {name for name, s in statuses.items() if s["status"] == "SUBSCRIBED"} == {
            "owner",
            "viewer",
            "editor",
            "admin",
            "service",
        }
        for name in ("stranger", "anon"):
            assert statuses[name]["status"] == "CHANNEL_ERROR"
            assert f"You do not have permissions to read from this Channel topic: {topic}" in statuses[name]["error"]
        insiders = ("owner", "viewer", "editor", "admin", "service")
        tracked = {}
        for name in insiders:
            await nodes[name].command(broadcast={"event": "hello", "payload": {"from": name}})
            await nodes[name].until(lambda e: e["kind"] == "sent", "the send")
            await nodes[name].command(track={"name": name})
            tracked[name] = (await nodes[name].until(lambda e: e["kind"] == "tracked", "the track reply"))["result"]
        assert tracked == {"owner": "ok", "viewer": "error", "editor": "ok", "admin": "ok", "service": "ok"}
        await nodes["service"].command(broadcast={"event": "done", "payload": {}})
        writers = {"owner", "editor", "admin", "service"}
        for name in insiders:
            node = nodes[name]
            if name != "service":
                await node.until(lambda e: e["kind"] == "broadcast" and e["event"] == "done", "done")
            heard = {e["payload"]["from"] for e in node.events if e["kind"] == "broadcast" and e["event"] == "hello"}
            assert heard == writers - {name}, name
            await node.until(lambda e: e["kind"] == "presence" and set(e["state"]) == writers, "the writers' presence")
        # Broadcast from Database reaches realtime-js (V2: a binary user-broadcast frame with the message id as meta)
        async with admin.transaction() as conn:
            params = {"payload": '{"n": 7}', "event": "INSERT", "topic": topic, "private": True}
            await conn.execute(Q["realtime_send"].sql, params)
        for name in insiders:
            sent = await nodes[name].until(lambda e: e["kind"] == "broadcast" and e["event"] == "INSERT", "the send")
            assert sent["payload"]["n"] == 7 and sent["payload"]["id"]
        for name in ("stranger", "anon"):
            assert not [e for e in nodes[name].events if e["kind"] in ("broadcast", "presence")]
    finally:
        for node in nodes.values():
            if node.process.returncode is None:
                node.process.kill()
                await node.process.wait()
