"""The worker sends requests as pg_net's does (libcurl's behaviour and error texts), reads pg_net.ttl and
pg_net.batch_size for every batch, and applies the SSRF guard on every connection, redirects included."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import ssl
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from tests.integration.net.conftest import LOOPBACK, RawReceiver, queue_and_run, raw_receiver, reply, sql
from tripsage import ssrf
from tripsage.db.connector import Database
from tripsage.net.worker import NetWorker

TIMEOUT_MESSAGE = re.compile(
    r"^Timeout of 300 ms reached\. Total time: (\d+\.\d{6}) ms \(DNS time: (\d+\.\d{6}) ms, "
    r"TCP/SSL handshake time: (\d+\.\d{6}) ms, HTTP Request/Response time: (\d+\.\d{6}) ms\)$"
)


async def test_responses_are_stored_as_pg_net_stores_them(
    pool: Database, worker: NetWorker, receiver: RawReceiver
) -> None:
    receiver.answer = lambda r: reply(
        201,
        json.dumps({"method": r.method, "body": r.body.decode()}).encode(),
        (
            "Content-Type: application/json",
            "X-Test: yes",
            "MissingValue:",
            "Spaces In Header Name: This header name contains spaces",
            "NonPrintableChars: NonPrintableChars\x01\x02",
        ),
    )
    post = await queue_and_run(pool, worker, "SELECT net.http_post(%(u)s, '{\"a\": 1}') AS id", {"u": receiver.url})
    assert post["status_code"] == 201 and post["content_type"] == "application/json"
    assert json.loads(post["content"]) == {"method": "POST", "body": '{"a": 1}'}
    assert post["headers"]["X-Test"] == "yes" and post["headers"]["MissingValue"] == ""
    assert post["headers"]["Spaces In Header Name"] == "This header name contains spaces"
    assert post["headers"]["NonPrintableChars"] == "NonPrintableChars\x01\x02"
    assert post["timed_out"] is False and post["error_msg"] is None
    [sent] = receiver.received
    assert sent.header("Content-Type") == "application/json" and (sent.header("User-Agent") or "").startswith(
        "pg_net/0.20"
    )

    # A NULL body is still a POST, with an empty body.
    await queue_and_run(pool, worker, "SELECT net.http_post(%(u)s, NULL) AS id", {"u": receiver.url + "/null"})
    assert (receiver.received[-1].method, receiver.received[-1].body) == ("POST", b"")
    assert receiver.received[-1].header("Content-Length") == "0"

    receiver.answer = lambda r: reply(204, b"", ())
    empty = await queue_and_run(pool, worker, "SELECT net.http_delete(%(u)s) AS id", {"u": receiver.url + "/d"})
    assert empty["status_code"] == 204 and empty["content"] is None and empty["content_type"] is None
    assert receiver.received[-1].method == "DELETE"


async def test_headers_go_out_as_curl_sends_them(pool: Database, worker: NetWorker, receiver: RawReceiver) -> None:
    headers = {"Spaces In Header Name": "a", "NonPrintable": "x\x01y", "API-KEY": "k"}
    row = await queue_and_run(
        pool,
        worker,
        "SELECT net.http_get(%(u)s, headers => %(h)s::jsonb) AS id",
        {"u": receiver.url, "h": json.dumps(headers)},
    )
    assert row["status_code"] == 200
    sent = receiver.received[-1]
    assert "Spaces In Header Name: a" in sent.header_lines
    assert sent.header("NonPrintable") == "x\x01y" and sent.header("API-KEY") == "k"
    # NULL headers: pg_net hands curl no header list at all, so not even a User-Agent goes out.
    await queue_and_run(pool, worker, "SELECT net.http_get(%(u)s, headers => NULL) AS id", {"u": receiver.url})
    assert receiver.received[-1].header("User-Agent") is None


async def test_failures_carry_curls_error_texts(pool: Database, worker: NetWorker, receiver: RawReceiver) -> None:
    async with raw_receiver() as closed:
        refused_url = closed.url  # nothing listens there once the block ends
    refused = await queue_and_run(pool, worker, "SELECT net.http_get(%(u)s) AS id", {"u": refused_url})
    assert refused["error_msg"] == "Couldn't connect to server" and refused["timed_out"] is False
    assert refused["status_code"] is None and refused["content"] is None and refused["headers"] is None
    [collected] = await sql(pool, "SELECT (net._http_collect_response(%(id)s)).*", {"id": refused["id"]})
    assert collected == {"status": "ERROR", "message": "Couldn't connect to server", "response": None}

    receiver.answer = lambda r: b""
    empty = await queue_and_run(pool, worker, "SELECT net.http_get(%(u)s) AS id", {"u": receiver.url})
    assert empty["error_msg"] == "Server returned nothing (no headers, no data)"

    # Malformed answers: libcurl's error code, as curl_easy_strerror words it (pg_net stores no more detail).
    malformed = {
        b"HTTP/1.1 200 OK\r\nHeader Without Colon\r\n\r\n": "Weird server reply",
        b"NOT HTTP AT ALL\r\n\r\n": "Unsupported protocol",  # HTTP/0.9, which curl refuses
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc": "Transferred a partial file",
    }
    for answer, message in malformed.items():
        receiver.answer = lambda r, answer=answer: answer  # type: ignore[misc]
        row = await queue_and_run(pool, worker, "SELECT net.http_get(%(u)s) AS id", {"u": receiver.url})
        assert row["error_msg"] == message and row["status_code"] is None

    # Headers that are not a JSON object (a direct INSERT): that request fails, not the batch.
    receiver.answer = lambda r: reply()
    [bad] = await sql(
        pool,
        "INSERT INTO net.http_request_queue (method, url, headers, timeout_milliseconds)"
        " VALUES ('GET', %(u)s, '[1]', 1000) RETURNING id",
        {"u": receiver.url},
    )
    await sql(pool, "SELECT net.http_get(%(u)s)", {"u": receiver.url + "/fine"})
    assert await worker.run_once() == 2
    rows = await sql(pool, "SELECT id, error_msg, status_code FROM net._http_response ORDER BY id DESC LIMIT 2")
    assert rows == [
        {"id": bad["id"] + 1, "error_msg": None, "status_code": 200},
        {"id": bad["id"], "error_msg": "cannot call jsonb_each_text on a non-object", "status_code": None},
    ]

    negative = await queue_and_run(
        pool, worker, "SELECT net.http_get(%(u)s, timeout_milliseconds => -1) AS id", {"u": receiver.url}
    )
    assert negative["error_msg"] == "A libcurl function was given a bad argument"

    ftp = await queue_and_run(pool, worker, "SELECT net.http_get('ftp://127.0.0.1/') AS id", {})
    assert ftp["error_msg"] == "Unsupported protocol"

    receiver.answer = lambda r: reply()
    receiver.delay = 1.5
    slow = await queue_and_run(
        pool, worker, "SELECT net.http_get(%(u)s, timeout_milliseconds => 300) AS id", {"u": receiver.url}
    )
    assert slow["timed_out"] is True and slow["status_code"] is None
    match = TIMEOUT_MESSAGE.match(slow["error_msg"])
    assert match is not None, slow["error_msg"]
    total, _dns, _handshake, http = (float(g) for g in match.groups())
    assert total > 0 and http > 0  # it timed out waiting for the answer


async def test_redirects_are_followed_as_curl_follows_them(
    pool: Database, worker: NetWorker, receiver: RawReceiver
) -> None:
    def answer(r: Any) -> bytes:
        if r.path == "/moved":
            return reply(302, b"", (f"Location: {receiver.url}/target", "X-Hop: first"))
        return reply(200, f"{r.method} {r.path}".encode(), ("Content-Type: text/plain", "X-Hop: last"))

    receiver.answer = answer
    row = await queue_and_run(pool, worker, "SELECT net.http_post(%(u)s) AS id", {"u": receiver.url + "/moved"})
    # A POST answered 302 is followed with a GET; content and content_type are the final response's, headers (read
    # by pg_net from curl's first request) the redirect's own.
    assert row["status_code"] == 200 and row["content"] == "GET /target" and row["content_type"] == "text/plain"
    assert row["headers"]["X-Hop"] == "first"
    assert [(r.method, r.path) for r in receiver.received] == [("POST", "/moved"), ("GET", "/target")]


async def test_localhost_reaches_an_ipv6_only_server(pool: Database, worker: NetWorker) -> None:
    async with raw_receiver("::1") as v6:
        v6.answer = lambda r: reply(200, b"Hello ipv6 only")
        url = f"http://localhost:{v6.port}/"
        row = await queue_and_run(pool, worker, "SELECT net.http_get(%(u)s) AS id", {"u": url})
    assert row["content"] == "Hello ipv6 only"


async def test_ssrf_guard_on_every_hop(pool: Database, receiver: RawReceiver) -> None:
    guarded = NetWorker(pool)  # TRIPSAGE_NET_ALLOW_HOSTS empty: loopback refused
    await guarded.open()
    try:
        row = await queue_and_run(pool, guarded, "SELECT net.http_get(%(u)s) AS id", {"u": receiver.url})
    finally:
        await guarded.close()
    assert row["status_code"] is None and receiver.received == []
    assert row["error_msg"] == (
        "Couldn't connect to server (127.0.0.1 is a loopback address: refused by the SSRF guard, see "
        "TRIPSAGE_NET_ALLOW_HOSTS)"
    )

    # 127.0.0.1 allowed, the rest of 127/8 not: a redirect to 127.0.0.2 is refused before connecting.
    one_host = NetWorker(pool, allow=ssrf.AllowList.parse("127.0.0.1"))
    receiver.answer = lambda r: reply(301, b"", (f"Location: http://127.0.0.2:{receiver.port}/inside",))
    try:
        row = await queue_and_run(pool, one_host, "SELECT net.http_get(%(u)s) AS id", {"u": receiver.url + "/out"})
    finally:
        await one_host.close()
    assert [r.path for r in receiver.received] == ["/out"]
    assert row["error_msg"].startswith("Couldn't connect to server (127.0.0.2 is a loopback address")

    # A host name in the allow-list exempts the addresses it resolves to.
    by_name = NetWorker(pool, allow=ssrf.AllowList.parse("localhost"))
    receiver.answer = lambda r: reply(200, b"named")
    try:
        url = f"http://localhost:{receiver.port}/named"
        row = await queue_and_run(pool, by_name, "SELECT net.http_get(%(u)s) AS id", {"u": url})
    finally:
        await by_name.close()
    assert row["content"] == "named"


async def alter_database(pool: Database, name: str, setting: str, value: str) -> None:
    statement = pgsql.SQL("ALTER DATABASE {} SET {} = {}").format(
        pgsql.Identifier(name),
        pgsql.SQL(setting),
        pgsql.Literal(value),  # type: ignore[arg-type]
    )
    async with pool.connection() as conn:
        await conn.execute(statement)


async def test_pg_net_settings_are_read_for_every_batch(
    database: str, pool: Database, worker: NetWorker, receiver: RawReceiver
) -> None:
    name = psycopg.conninfo.conninfo_to_dict(database)["dbname"]
    async with pool.transaction() as conn:
        for _ in range(5):
            await conn.execute("SELECT net.http_get(%(u)s)", {"u": receiver.url})
    # ALTER DATABASE applies to new sessions only in PostgreSQL; the worker's pooled sessions still see it.
    await alter_database(pool, name, "pg_net.batch_size", "2")
    assert await worker.run_once() == 2 and worker.batch_size == 2
    await alter_database(pool, name, "pg_net.batch_size", "10")
    assert await worker.run_once() == 3

    await alter_database(pool, name, "pg_net.ttl", "1 min")
    ids = [r["id"] for r in await sql(pool, "SELECT id FROM net._http_response ORDER BY id")]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    await sql(pool, "UPDATE net._http_response SET created = %(t)s WHERE id = ANY(%(ids)s)", {"t": old, "ids": ids[:2]})
    assert await worker.run_once() == 0 and worker.expired == 2
    assert [r["id"] for r in await sql(pool, "SELECT id FROM net._http_response ORDER BY id")] == ids[2:]

    # Settings that are not valid count as their defaults (a warning is logged), and the round goes on.
    await alter_database(pool, name, "pg_net.ttl", "not an interval")
    await alter_database(pool, name, "pg_net.batch_size", "lots")
    await sql(pool, "SELECT net.http_get(%(u)s)", {"u": receiver.url})
    assert await worker.run_once() == 1 and worker.batch_size == 200


async def test_collect_response_waits_for_the_worker(
    database: str, pool: Database, worker: NetWorker, receiver: RawReceiver
) -> None:
    [queued] = await sql(pool, "SELECT net.http_get(%(u)s) AS id", {"u": receiver.url + "/collected"})

    def collect() -> Any:
        with psycopg.connect(database, autocommit=True) as conn:
            return conn.execute("SELECT (net._http_collect_response(%s, async => false)).*", [queued["id"]]).fetchone()

    waiting = asyncio.ensure_future(asyncio.to_thread(collect))
    await asyncio.sleep(0.2)  # let it start waiting (it would also find the response if it started later)
    assert await worker.run_once() == 1
    status, message, response = await waiting
    assert (status, message) == ("SUCCESS", "ok")
    assert response is not None
    [row] = await sql(pool, "SELECT ((net._http_collect_response(%(id)s)).response).* ", {"id": queued["id"]})
    assert row["status_code"] == 200 and row["body"] == "ok" and row["headers"]["Content-Length"] == "2"


async def test_an_interrupted_round_keeps_its_requests(
    pool: Database, worker: NetWorker, receiver: RawReceiver
) -> None:
    receiver.delay = 5.0
    [row] = await sql(pool, "SELECT relpersistence FROM pg_class WHERE oid = 'net.http_request_queue'::regclass")
    assert row["relpersistence"] == "p"  # pg_net's queue is UNLOGGED (lost in a crash); ours is logged
    await sql(pool, "SELECT net.http_get(%(u)s, timeout_milliseconds => 10000)", {"u": receiver.url + "/slow"})
    round_ = asyncio.create_task(worker.run_once())
    while not receiver.received:
        await asyncio.sleep(0.02)
    round_.cancel()  # the worker dies mid-request: its transaction rolls back, the transfer is abandoned
    try:
        await round_
    except asyncio.CancelledError:
        pass
    assert await sql(pool, "SELECT count(*) AS n FROM net.http_request_queue") == [{"n": 1}]
    assert await sql(pool, "SELECT count(*) AS n FROM net._http_response") == [{"n": 0}]


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (in no trust store) and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject, *files],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_verifies_certificates_against_the_trust_store(
    pool: Database, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with raw_receiver(tls=context) as secure:
        secure.answer = lambda r: reply(200, b"over tls")
        system = NetWorker(pool, allow=LOOPBACK)  # the system's trust store: a self-signed certificate is refused
        trusting = NetWorker(pool, allow=LOOPBACK, ca_file=str(cert))
        try:
            refused = await queue_and_run(pool, system, "SELECT net.http_get(%(u)s) AS id", {"u": secure.url})
            accepted = await queue_and_run(pool, trusting, "SELECT net.http_get(%(u)s) AS id", {"u": secure.url})
        finally:
            await system.close()
            await trusting.close()
    assert refused["error_msg"] == "SSL peer certificate or SSH remote key was not OK"
    assert accepted["status_code"] == 200 and accepted["content"] == "over tls"


async def test_proxy_settings_in_the_environment_are_ignored(
    pool: Database, worker: NetWorker, receiver: RawReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SSRF guard checks the address connected to: a proxy would hide the real target from it."""
    async with raw_receiver() as proxy:
        for name in ("http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        row = await queue_and_run(pool, worker, "SELECT net.http_get(%(u)s) AS id", {"u": receiver.url + "/direct"})
    assert row["status_code"] == 200 and proxy.received == []
    assert [r.path for r in receiver.received] == ["/direct"]


async def test_a_timeout_in_the_tls_handshake_is_reported_as_such(pool: Database, worker: NetWorker) -> None:
    """A server that accepts the connection but never answers the TLS hello: the time went to the handshake."""
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda reader, writer: accepted.append(writer), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        row = await queue_and_run(
            pool,
            worker,
            "SELECT net.http_get(%(u)s, timeout_milliseconds => 300) AS id",
            {"u": f"https://127.0.0.1:{port}/"},
        )
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert row["timed_out"] is True
    match = TIMEOUT_MESSAGE.match(row["error_msg"])
    assert match is not None, row["error_msg"]
    total, _dns, handshake, http = (float(g) for g in match.groups())
    assert total > 0 and handshake > 0 and http == 0
