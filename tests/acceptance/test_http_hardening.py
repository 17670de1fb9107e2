"""Issue #17's repros against the runtime's HTTP surface, tried from outside as an attacker would: /health without
credentials, tokens in the log, oversized request lines and headers (answered, closed, memory back to its level)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from testkit import servers
from testkit.runtime import TEST_JWT_SECRET, detailed_health, running_runtime, runtime_settings, service_role_key
from testkit.servers import free_port
from websockets.sync.client import connect as websocket_connect

from tripsage import jwt

WAIT = 30.0  # seconds a test waits for the runtime (a bound, not a measurement)
ANSWER_WAIT = 10.0  # seconds a refused request may take to be answered (a bound: the old code never answered)
SERVICE_KEY = service_role_key()
ANON_KEY = jwt.api_key(TEST_JWT_SECRET, "anon")


def health_of(base_url: str, key: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(f"{base_url}/health", headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


async def test_health_shows_details_only_to_the_service_role_and_never_url_credentials(
    database: str, tmp_path: Path
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        # Refused by the SSRF guard (loopback): the refusal quotes the URL, userinfo and all.
        conn.execute(
            "INSERT INTO webhook_configs (name, url, events)"
            " VALUES ('leaky', 'https://u:PASS@127.0.0.1/h?token=TOKENVALUE', '{test.webhook}')"
        )
        async with running_runtime(runtime_settings(tmp_path), database) as running:
            conn.execute("SELECT test_webhook('leaky')")
            url = running.base_url
            detailed: dict[str, Any] = {}
            for _ in range(int(WAIT / 0.1)):
                detailed = await asyncio.to_thread(detailed_health, url, timeout=10)
                if detailed["components"]["webhooks"]["last_error"]:
                    break
                await asyncio.sleep(0.1)
            error = detailed["components"]["webhooks"]["last_error"]
            assert error and "127.0.0.1" in error, detailed
            assert "PASS" not in json.dumps(detailed) and "TOKENVALUE" not in json.dumps(detailed)
            assert "role" in detailed["database"] and "worker_id" in detailed["components"]["webhooks"]

            anonymous = await asyncio.to_thread(health_of, url)
            for key in (None, ANON_KEY, jwt.user_token(TEST_JWT_SECRET, "00000000-0000-0000-0000-000000000001")):
                seen = await asyncio.to_thread(health_of, url, key)
                assert seen == anonymous
            assert set(anonymous) == {"status", "database", "components"}
            assert anonymous["database"] == {"status": "ok"}
            assert all(set(c) == {"status"} for c in anonymous["components"].values())
            assert anonymous["components"]["webhooks"] == {"status": detailed["components"]["webhooks"]["status"]}
        stored = conn.execute(
            "SELECT l.error_message, d.last_error FROM webhook_logs l JOIN webhooks.deliveries d"
            " ON d.id = l.delivery_id JOIN webhook_configs c ON c.id = d.webhook_config_id WHERE c.name = 'leaky'"
        ).fetchall()
        assert stored and all("PASS" not in str(row) and "TOKENVALUE" not in str(row) for row in stored)
        assert all("u:***@127.0.0.1" in row[0] for row in stored)


# -- one `tripsage serve` process, as deployed -------------------------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def served(embedded_server: servers.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    name = embedded_server.create_database()
    data_dir = tmp_path_factory.mktemp("served")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"SUPABASE_DB_URL"}}
    env.update(
        DATABASE_URL=embedded_server.url(name),
        TRIPSAGE_DATA_DIR=str(data_dir),
        TRIPSAGE_JWT_SECRET=TEST_JWT_SECRET,
        TRIPSAGE_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode(),
        TRIPSAGE_PORT=str(port),
        TRIPSAGE_LOG_LEVEL="info",
        TRIPSAGE_CRON_ENABLED="false",
    )
    log = data_dir / "runtime.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "tripsage", "serve"],
            env=env,
            cwd=servers.REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = Served(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if health_of(running.base_url)["database"]["status"] == "ok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        embedded_server.drop_database(name)


def test_no_token_key_or_secret_reaches_the_log(served: Served) -> None:
    user_token = jwt.user_token(TEST_JWT_SECRET, "00000000-0000-0000-0000-000000000001")
    with websocket_connect(f"ws://127.0.0.1:{served.port}/realtime/v1/websocket?apikey={ANON_KEY}&vsn=1.0.0") as ws:
        ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
        assert json.loads(ws.recv(timeout=10))["payload"]["status"] == "ok"
    query = f"?apikey={SERVICE_KEY}&access_token={user_token}&token=opaque-secret-value&x=1"
    request = urllib.request.Request(
        served.base_url + "/health" + query, headers={"Authorization": f"Bearer {ANON_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # The access log has written both lines (it is the evidence they were logged at all).
    deadline = time.monotonic() + WAIT
    while "GET /health?apikey=" not in served.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = served.log.read_text()
    assert "GET /health?apikey=***&access_token=***&token=***&x=1" in log, log
    assert "/realtime/v1/websocket?apikey=***&vsn=1.0.0" in log, log
    for secret in (ANON_KEY, SERVICE_KEY, user_token, "opaque-secret-value", TEST_JWT_SECRET):
        assert secret not in log


def raw_exchange(port: int, request: bytes, wait: float = ANSWER_WAIT) -> tuple[bytes, bool]:
    """Send `request` on a fresh connection; (what came back, whether the server closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished sending: what it answered is still readable (or not)
        received = b""
        closed = False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
        return received, closed


def upgrade(target: str, extra_headers: str = "") -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    ).encode()


def test_oversized_request_lines_and_headers_are_answered_and_closed(served: Served) -> None:
    long_upgrade = upgrade(f"/realtime/v1/websocket?apikey={'A' * 9000}&vsn=1.0.0")
    answer, closed = raw_exchange(served.port, long_upgrade)
    assert answer.startswith(b"HTTP/1.1 414 ") and closed, answer[:200]
    answer, closed = raw_exchange(served.port, f"GET /health?x={'A' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 414 ") and closed, answer[:200]
    big_header = upgrade(f"/realtime/v1/websocket?apikey={ANON_KEY}&vsn=1.0.0", f"X-Big: {'B' * 9000}\r\n")
    answer, closed = raw_exchange(served.port, big_header)
    assert answer.startswith(b"HTTP/1.1 431 ") and closed, answer[:200]
    many = "".join(f"X-H{n}: v\r\n" for n in range(200))
    answer, closed = raw_exchange(served.port, f"GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 431 ") and closed, answer[:200]
    # A head that never ends (one header line growing past every limit, sent in pieces).
    answer, closed = raw_exchange(served.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"C" * 200_000)
    assert answer.startswith(b"HTTP/1.1 431 ") and closed, answer[:200]
    # Within the limits, all is as before.
    assert health_of(served.base_url)["status"] in {"ok", "degraded"}
    with websocket_connect(f"ws://127.0.0.1:{served.port}/realtime/v1/websocket?apikey={ANON_KEY}&vsn=1.0.0") as ws:
        ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
        assert json.loads(ws.recv(timeout=10))["payload"]["status"] == "ok"


def test_memory_returns_to_its_level_after_megabyte_upgrades(served: Served) -> None:
    megabyte = upgrade(f"/realtime/v1/websocket?apikey={'A' * 1024 * 1024}&vsn=1.0.0")
    answer, closed = raw_exchange(served.port, megabyte)  # the first may grow the allocator's pools: not counted
    assert answer.startswith(b"HTTP/1.1 414 ") and closed, answer[:200]
    before = served.rss_kib()
    for _ in range(30):
        answer, closed = raw_exchange(served.port, megabyte)
        # The refusal is sent before the whole megabyte is read: a client may see it, or a reset, but no hang.
        assert closed and (not answer or answer.startswith(b"HTTP/1.1 414 ")), answer[:200]
    # Connections are closed once refused; what they held is released (a generous bound: 30 MB were sent).
    deadline = time.monotonic() + WAIT
    while served.rss_kib() - before > 12 * 1024 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served.rss_kib() - before <= 12 * 1024, (before, served.rss_kib())
    assert health_of(served.base_url)["status"] in {"ok", "degraded"}
