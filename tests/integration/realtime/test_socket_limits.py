"""Issue #17: one client can no longer take all of a process's sockets. Beside the per-process limit, sockets are
limited per signed-in user and per client address (settings), refused with HTTP 429 and a reason; a closed socket
gives its place back. A realtime frame nested too deep is dropped, and the socket keeps working."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path

import pytest
import websockets
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings

from tests.integration.realtime.conftest import anon_key, service_key, user_token


def url_for(runtime: RunningRuntime, token: str) -> str:
    return runtime.base_url.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={token}&vsn=1.0.0"


async def refusal(url: str) -> tuple[int, dict[str, str]]:
    with pytest.raises(websockets.InvalidStatus) as failure:
        async with websockets.connect(url):
            pass
    return failure.value.response.status_code, json.loads(failure.value.response.body)


async def heartbeat(socket: websockets.ClientConnection) -> None:
    """A heartbeat answered: the socket works."""
    await socket.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "h"}))
    assert json.loads(await socket.recv())["payload"]["status"] == "ok"


async def test_sockets_are_limited_per_user_and_per_address(embedded_database: str, tmp_path: Path) -> None:
    settings = runtime_settings(tmp_path, realtime_max_connections_per_user=2, realtime_max_connections_per_ip=3)
    async with running_runtime(settings, embedded_database) as runtime, contextlib.AsyncExitStack() as stack:
        mia, noah = str(uuid.uuid4()), str(uuid.uuid4())
        first = await stack.enter_async_context(websockets.connect(url_for(runtime, user_token(mia))))
        await stack.enter_async_context(websockets.connect(url_for(runtime, user_token(mia))))
        assert await refusal(url_for(runtime, user_token(mia))) == (
            429,
            {"error": "Too many connections for this user"},
        )
        # Another user from the same address: the address has one place left.
        await stack.enter_async_context(websockets.connect(url_for(runtime, user_token(noah))))
        for token in (user_token(str(uuid.uuid4())), anon_key(), service_key()):
            assert await refusal(url_for(runtime, token)) == (429, {"error": "Too many connections from this address"})
        await heartbeat(first)
        await first.close()
        # The closed socket's place is free again (once the server has seen the close).
        for _ in range(200):
            try:
                async with websockets.connect(url_for(runtime, user_token(mia))) as again:
                    await heartbeat(again)
                break
            except websockets.InvalidStatus:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the closed socket's place was never given back")


async def test_a_frame_nested_too_deep_is_dropped_and_the_socket_keeps_working(
    embedded_database: str, tmp_path: Path
) -> None:
    async with (
        running_runtime(runtime_settings(tmp_path), embedded_database) as runtime,
        websockets.connect(url_for(runtime, service_key())) as socket,
    ):
        await socket.send("[" * 100_000)
        nested: object = {}
        for _ in range(100):
            nested = [nested]
        await socket.send(
            json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {"n": nested}, "ref": "deep"})
        )
        await socket.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "h"}))
        refs = []
        while not refs or refs[-1] != "h":
            refs.append(json.loads(await socket.recv())["ref"])
        assert refs == ["h"]  # the deep frames were dropped, not answered, and the socket still works
