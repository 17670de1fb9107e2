"""Run the real runtime (the ASGI app and its components) under a real uvicorn server on 127.0.0.1, in the test loop."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from aiohttp import web

from tripsage import jwt
from tripsage.clock import Clock
from tripsage.config import Settings, load_settings
from tripsage.runtime import Runtime
from tripsage.server import build_app, build_runtime
from tripsage.serving import server_config

TEST_JWT_SECRET = "tripsage-tests-jwt-secret-0123456789-abcdefghij"


def service_role_key(jwt_secret: str = TEST_JWT_SECRET) -> str:
    """The project's service_role API key: only with it does `/health` show its details and the dashboard sign in."""
    return jwt.api_key(jwt_secret, "service_role")


def detailed_health(base_url: str, jwt_secret: str = TEST_JWT_SECRET, *, timeout: float = 5) -> dict[str, Any]:
    """`/health` with the service_role key (without it, only the statuses are shown). A 503 raises
    urllib.error.HTTPError, whose body holds the report."""
    headers = {"Authorization": f"Bearer {service_role_key(jwt_secret)}"}
    request = urllib.request.Request(f"{base_url}/health", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        report: dict[str, Any] = json.loads(response.read())
    return report


def runtime_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "jwt_secret_env": TEST_JWT_SECRET,
        "encryption_key_env": base64.b64encode(os.urandom(32)).decode(),
        "data_dir": data_dir,
        "log_level": "warning",
    }
    values.update(overrides)
    return load_settings(**values)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningRuntime:
    runtime: Runtime
    base_url: str
    settings: Settings


@contextlib.asynccontextmanager
async def running_runtime(
    settings: Settings, database_url: str, *, clock: Clock | None = None
) -> AsyncIterator[RunningRuntime]:
    runtime = build_runtime(settings, database_url, clock=clock)
    port = _free_port()
    server = uvicorn.Server(server_config(build_app(runtime), settings, "127.0.0.1", port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the runtime stopped before it started")
            await asyncio.sleep(0.02)
        scheme = "https" if settings.serves_tls else "http"
        yield RunningRuntime(runtime, f"{scheme}://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def run_tripsage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m tripsage ARGS` as a user runs it, from the repository, with `env`."""
    return subprocess.run(
        [sys.executable, "-m", "tripsage", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
        stdin=subprocess.DEVNULL,
    )


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, *, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A real aiohttp server for `app` on a free loopback port (yielded) for the duration of the block."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    try:
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        yield int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    finally:
        await runner.cleanup()
