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

from tests.integration.realtime.conftest import WAIT, make_user, subscribe, user_token
from tests.runtime import RunningRuntime
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
