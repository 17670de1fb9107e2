"""The dispatcher against real aiohttp receivers: Standard Webhooks signatures (checked with the standardwebhooks and
svix libraries), the backoff schedule under a controllable clock, Retry-After, 410, dead letters and replay, SSRF,
secret rotation, leases and parallel dispatchers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook
from testkit.runtime import serve_app

from tests.integration.webhooks.conftest import (
    Clock,
    Receiver,
    deliveries,
    dispatcher,
    emit,
    point,
    sql,
)
from tripsage import queries_for, standard_webhooks
from tripsage.crypto import Keyring
from tripsage.db import vault
from tripsage.db.connector import Database
from tripsage.webhooks import outbox, retry

NO_JITTER = {"jitter": 0}


async def test_signed_delivery_verifies_with_both_libraries(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    [secret] = await point(wdb, keys, receiver.url + "/hook", events=["booking.*"])
    await emit(wdb, "booking.confirmed", {"booking_id": 7})
    await emit(wdb, "trip.collaborator.added", {})  # not matched: no delivery
    d = dispatcher(wdb, keys)
    await d.open()
    try:
        assert await d.dispatch_once() == 1
    finally:
        await d.close()
    [got] = receiver.received
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "booking.confirmed" and payload["data"] == {"booking_id": 7}
    assert dt.datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
    SvixWebhook(secret).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(standard_webhooks.generate_secret()).verify(got.body, got.headers)
    [row] = await deliveries(wdb)
    assert row["status"] == "succeeded" and row["webhook_id"] == got.headers["webhook-id"]
    [log] = await sql(wdb, "SELECT * FROM webhook_logs")
    assert (log["attempt_count"], log["response_status"], log["response_body"]) == (1, 200, "ok")
    assert log["delivery_id"] == row["id"] and log["duration_ms"] >= 0 and log["error_message"] is None


async def test_the_body_carries_the_event_exactly_and_is_the_same_bytes_on_every_attempt(
    wdb: Database, keys: Keyring, receiver: Receiver
) -> None:
    # The claim statement builds the body in SQL (issue #19): data is the stored payload, the timestamp the event's.
    await point(wdb, keys, receiver.url, retry_config={"schedule_s": [0, 0], **NO_JITTER})
    data = {"city": 'Kraków 東京 "quoted" \\ \u2028', "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    event_id = await emit(wdb, "booking.confirmed", data)
    [event] = await sql(wdb, "SELECT created_at FROM webhooks.events WHERE id = %(id)s", {"id": event_id})
    receiver.answer = lambda r: web.Response(status=500)
    clock = Clock()
    d = dispatcher(wdb, keys, clock)
    await d.open()
    try:
        assert await d.dispatch_once() == 1
        receiver.answer = lambda r: web.Response(text="ok")
        assert await d.dispatch_once() == 1
    finally:
        await d.close()
    first, second = receiver.received
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    body = json.loads(first.body)
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "booking.confirmed" and body["data"] == data
    created: dt.datetime = event["created_at"]
    expected = created.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert body["timestamp"] == expected


async def test_backoff_schedule_then_dead_letter_then_replay(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=500, text="boom")
    await point(wdb, keys, receiver.url, retry_config=NO_JITTER)
    await emit(wdb)
    clock = Clock()
    d = dispatcher(wdb, keys, clock)
    await d.open()
    try:
        for attempt, delay in enumerate(retry.DEFAULT_SCHEDULE[1:], start=1):
            assert await d.dispatch_once() == 1
            [row] = await deliveries(wdb)
            assert (row["status"], row["attempts"]) == ("retrying", attempt)
            assert row["next_attempt_at"] == clock.now + dt.timedelta(seconds=delay)
            clock.advance(delay - 1)
            assert await d.dispatch_once() == 0  # not due yet
            clock.advance(1)
        assert await d.dispatch_once() == 1
        [row] = await deliveries(wdb)
        assert (row["status"], row["attempts"], row["last_status"]) == ("dead", 8, 500)
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # stable across retries
        assert len(receiver.received) == 8
        logs = await sql(wdb, "SELECT attempt_count, error_message FROM webhook_logs ORDER BY id")
        assert [log["attempt_count"] for log in logs] == list(range(1, 9))
        assert logs[0]["error_message"] == "HTTP 500"

        [dead] = await outbox.list_dead_letters(wdb)
        assert dead["id"] == row["id"] and dead["config_name"] == "hook" and dead["attempts"] == 8
        assert dead["last_error"] == "HTTP 500" and dead["event_type"] == "booking.confirmed"
        assert await outbox.dead_letter_count(wdb) == 1
        receiver.answer = lambda r: web.Response(text="fine")
        assert await outbox.replay_delivery(wdb, row["id"]) == 1
        assert await outbox.replay_delivery(wdb, row["id"]) == 0  # already queued
        assert await d.dispatch_once() == 1
        [row] = await deliveries(wdb)
        assert row["status"] == "succeeded"
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    finally:
        await d.close()


async def test_jitter_stays_within_bounds(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=502)
    await point(wdb, keys, receiver.url, retry_config={"schedule_s": [0, 100], "jitter": 0.2})
    for _ in range(20):
        await emit(wdb)
    clock = Clock()
    d = dispatcher(wdb, keys, clock)
    await d.open()
    try:
        assert await d.dispatch_once() == 20
    finally:
        await d.close()
    delays = [(r["next_attempt_at"] - clock.now).total_seconds() for r in await deliveries(wdb)]
    assert all(80 <= delay <= 120 for delay in delays) and len(set(delays)) > 1


async def test_retry_after_is_honoured(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=503, headers={"Retry-After": "120"})
    await point(wdb, keys, receiver.url, retry_config=NO_JITTER)
    await emit(wdb)
    clock = Clock()
    d = dispatcher(wdb, keys, clock)
    await d.open()
    try:
        await d.dispatch_once()
    finally:
        await d.close()
    [row] = await deliveries(wdb)
    assert row["status"] == "retrying" and row["next_attempt_at"] == clock.now + dt.timedelta(seconds=120)


async def test_redirect_is_a_failure_and_not_followed(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=307, headers={"Location": "http://169.254.169.254/"})
    await point(wdb, keys, receiver.url, retry_config=NO_JITTER)
    await emit(wdb)
    d = dispatcher(wdb, keys)
    await d.open()
    try:
        await d.dispatch_once()
    finally:
        await d.close()
    [row] = await deliveries(wdb)
    assert (row["status"], row["last_status"], len(receiver.received)) == ("retrying", 307, 1)


async def test_410_disables_the_endpoint_and_notifies(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=410)
    await point(wdb, keys, receiver.url, events=["booking.*"])
    await emit(wdb)
    await emit(wdb)
    d = dispatcher(wdb, keys)
    await d.open()
    try:
        assert await d.dispatch_once() == 2
        assert await d.dispatch_once() == 0
    finally:
        await d.close()
    assert {r["status"] for r in await deliveries(wdb)} == {"dead"}
    [config] = await sql(wdb, "SELECT is_active, disabled_reason FROM webhook_configs WHERE name = 'hook'")
    assert config == {"is_active": False, "disabled_reason": "410 Gone"}
    events = await sql(wdb, "SELECT payload FROM webhooks.events WHERE event_type = 'webhook.endpoint.disabled'")
    assert [e["payload"]["name"] for e in events] == ["hook"]


async def test_failing_for_the_configured_period_disables(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=500)
    await point(wdb, keys, receiver.url, retry_config={"disable_after_s": 3600, "jitter": 0})
    await emit(wdb)
    clock = Clock()
    d = dispatcher(wdb, keys, clock)
    await d.open()
    try:
        await d.dispatch_once()
        [config] = await sql(wdb, "SELECT is_active, failing_since FROM webhook_configs WHERE name = 'hook'")
        assert config == {"is_active": True, "failing_since": clock.now}
        clock.advance(3700)
        await emit(wdb)
        await d.dispatch_once()
    finally:
        await d.close()
    [config] = await sql(wdb, "SELECT is_active, disabled_reason FROM webhook_configs WHERE name = 'hook'")
    assert config["is_active"] is False and config["disabled_reason"].startswith("every attempt failed since")


async def test_success_clears_the_failure_clock(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    answers = iter([500, 200])
    receiver.answer = lambda r: web.Response(status=next(answers))
    await point(wdb, keys, receiver.url, retry_config=NO_JITTER)
    await emit(wdb)
    clock = Clock()
    d = dispatcher(wdb, keys, clock)
    await d.open()
    try:
        await d.dispatch_once()
        clock.advance(5)
        await d.dispatch_once()
    finally:
        await d.close()
    [config] = await sql(wdb, "SELECT failing_since FROM webhook_configs WHERE name = 'hook'")
    assert config["failing_since"] is None
    [row] = await deliveries(wdb)
    assert (row["status"], row["attempts"]) == ("succeeded", 2)


async def test_timeouts_and_connection_errors_are_retried(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.delay = 1.0
    await point(wdb, keys, receiver.url, timeout_ms=200, retry_config=NO_JITTER)
    await point(wdb, keys, "http://127.0.0.1:9/closed", name="closed", retry_config=NO_JITTER)
    await emit(wdb)
    d = dispatcher(wdb, keys)
    await d.open()
    try:
        assert await d.dispatch_once() == 2
    finally:
        await d.close()
    errors = {r["last_error"] for r in await deliveries(wdb)}
    statuses = {r["status"] for r in await deliveries(wdb)}
    assert statuses == {"retrying"}
    assert "timed out after 200 ms" in errors
    assert any(e.startswith("ClientConnector") for e in errors)


async def test_ssrf_refused_at_send_time(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    await point(wdb, keys, receiver.url)
    await point(wdb, keys, "http://localhost:9/x", name="byname")
    await point(wdb, keys, "https://169.254.169.254/latest/meta-data", name="metadata")
    await emit(wdb)
    d = dispatcher(wdb, keys, allow="")
    await d.open()
    try:
        assert await d.dispatch_once() == 3
    finally:
        await d.close()
    assert receiver.received == []
    rows = await deliveries(wdb)
    assert {r["status"] for r in rows} == {"dead"}
    errors = " | ".join(r["last_error"] for r in rows)
    assert "plain http is allowed only for hosts in TRIPSAGE_WEBHOOK_ALLOW_HOSTS" in errors
    assert "cloud metadata address (SSRF guard)" in errors


async def test_secret_rotation_signs_with_every_active_secret(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    [old] = await point(wdb, keys, receiver.url)
    new = await vault.rotate_webhook_secret(wdb, keys, "hook")
    assert await vault.get_webhook_secrets(wdb, keys, "hook") == [new, old]
    await emit(wdb)
    d = dispatcher(wdb, keys)
    await d.open()
    try:
        await d.dispatch_once()
        [got] = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        Webhook(old).verify(got.body, got.headers)
        Webhook(new).verify(got.body, got.headers)
        await vault.set_webhook_secrets(wdb, keys, "hook", [new])  # rotation done: the old one stops working
        await emit(wdb)
        await d.dispatch_once()
        latest = receiver.received[-1]
        Webhook(new).verify(latest.body, latest.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(latest.body, latest.headers)
    finally:
        await d.close()


async def test_missing_secrets_are_generated_encrypted(wdb: Database, keys: Keyring) -> None:
    named = await vault.ensure_webhook_secrets(wdb, keys)
    assert "trip_events" in named and "ai_processing" in named
    [secret] = await vault.get_webhook_secrets(wdb, keys, "trip_events")
    assert secret.startswith("whsec_") and len(standard_webhooks.secret_key(secret)) == standard_webhooks.SECRET_BYTES
    rows = await sql(wdb, "SELECT secret FROM webhook_configs WHERE name = 'trip_events'")
    assert secret.encode() not in bytes(rows[0]["secret"])
    assert await vault.ensure_webhook_secrets(wdb, keys) == []


async def test_expired_lease_is_taken_over_and_the_old_holder_is_fenced(
    wdb: Database, keys: Keyring, receiver: Receiver
) -> None:
    await point(wdb, keys, receiver.url, timeout_ms=1000)
    await emit(wdb)
    clock = Clock()
    crashed = dispatcher(wdb, keys, clock)
    crashed.worker_id = "crashed"
    rows = await sql(
        wdb,
        "UPDATE webhooks.deliveries SET status = 'delivering', attempts = 1, leased_by = 'crashed',"
        " lease_expires_at = %(until)s RETURNING id",
        {"until": clock.now + dt.timedelta(seconds=31)},
    )
    taker = dispatcher(wdb, keys, clock)
    await taker.open()
    try:
        assert await taker.dispatch_once() == 0  # still leased
        clock.advance(32)
        assert await taker.dispatch_once() == 1
    finally:
        await taker.close()
    [row] = await deliveries(wdb)
    assert (row["id"], row["status"], row["attempts"]) == (rows[0]["id"], "succeeded", 2)


async def test_three_dispatchers_in_parallel_deliver_each_once(
    wdb: Database, keys: Keyring, receiver: Receiver
) -> None:
    await point(wdb, keys, receiver.url)
    await sql(
        wdb,
        "SELECT emit_event('booking.confirmed', jsonb_build_object('n', n)) FROM generate_series(1, 600) AS n",
    )
    workers = [dispatcher(wdb, keys) for _ in range(3)]
    for w in workers:
        w.batch_size = 50
        await w.open()

    async def drain(w: object) -> None:
        assert hasattr(w, "dispatch_once")
        while await w.dispatch_once():
            pass

    try:
        await asyncio.gather(*(drain(w) for w in workers))
    finally:
        for w in workers:
            await w.close()
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == 600 and len(set(ids)) == 600
    assert sorted(json.loads(r.body)["data"]["n"] for r in receiver.received) == list(range(1, 601))
    assert {r["status"] for r in await deliveries(wdb)} == {"succeeded"}


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: the dispatcher verifies certificates, so it must refuse it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_certificate_errors_are_retried_and_logged(
    wdb: Database, keys: Keyring, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_post("/", ok)
    async with serve_app(app, ssl_context=context) as port:
        await point(wdb, keys, f"https://127.0.0.1:{port}/", retry_config=NO_JITTER)
        await emit(wdb)
        d = dispatcher(wdb, keys)
        await d.open()
        try:
            assert await d.dispatch_once() == 1
        finally:
            await d.close()
    [row] = await deliveries(wdb)
    assert row["status"] == "retrying" and "Certificate" in row["last_error"]
    [log] = await sql(wdb, "SELECT error_message FROM webhook_logs")
    assert log["error_message"] == row["last_error"]


async def test_per_endpoint_concurrency_limit_and_keep_alive(wdb: Database, keys: Keyring) -> None:
    in_flight = peak = 0
    client_ports: set[int] = set()

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            client_ports.add(peer[1])
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", slow)
    async with serve_app(app) as port:
        await point(wdb, keys, f"http://127.0.0.1:{port}/")
        await sql(wdb, "UPDATE webhook_configs SET max_concurrency = 2 WHERE name = 'hook'")
        for _ in range(12):
            await emit(wdb)
        d = dispatcher(wdb, keys)
        await d.open()
        try:
            assert await d.dispatch_once() == 12
        finally:
            await d.close()
    assert peak == 2
    assert len(client_ports) <= 2  # connections are kept alive and reused
    assert {r["status"] for r in await deliveries(wdb)} == {"succeeded"}


async def test_claim_uses_the_due_index(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    await point(wdb, keys, receiver.url)
    await sql(wdb, "SELECT emit_event('booking.confirmed', '{}') FROM generate_series(1, 5000)")
    await sql(wdb, "UPDATE webhooks.deliveries SET status = 'succeeded' WHERE id % 50 <> 0")
    await sql(wdb, "ANALYZE webhooks.deliveries")
    claim = queries_for("tripsage.webhooks")["claim_deliveries"]
    async with wdb.connection() as conn, conn.transaction(force_rollback=True):
        cursor = await conn.execute(
            b"EXPLAIN (FORMAT JSON) " + claim.text.encode(),
            {"now": dt.datetime.now(dt.UTC), "limit": 200, "worker": "w", "lease_margin_s": 30},
        )
        row = await cursor.fetchone()
    assert row is not None
    assert "deliveries_due_idx" in json.dumps(row)


async def test_abort_message_stops_retries(wdb: Database, keys: Keyring, receiver: Receiver) -> None:
    receiver.answer = lambda r: web.Response(status=400, headers={"webhook-delivery": "abort-message"})
    await point(wdb, keys, receiver.url)
    await emit(wdb)
    d = dispatcher(wdb, keys)
    await d.open()
    try:
        assert await d.dispatch_once() == 1
    finally:
        await d.close()
    [row] = await deliveries(wdb)
    assert (row["status"], row["attempts"], row["last_error"]) == ("dead", 1, "HTTP 400")


def reference_match(event_type: str, patterns: list[str]) -> bool:
    return any(p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1])) for p in patterns)


async def test_pattern_matching_agrees_with_its_definition(wdb: Database) -> None:
    segment = st.sampled_from(["trip", "collaborator", "booking", "added", "x", "_", "%"])
    event = st.lists(segment, min_size=1, max_size=4).map(".".join)
    pattern = st.one_of(st.just("*"), event, event.map(lambda e: e + ".*"))
    cases = st.lists(st.tuples(event, st.lists(pattern, max_size=3)), min_size=50, max_size=50)
    examples: list[tuple[str, list[str]]] = []

    @settings(max_examples=10, deadline=None, database=None)
    @given(cases)
    def collect(batch: list[tuple[str, list[str]]]) -> None:
        examples.extend(batch)

    collect()
    async with wdb.connection() as conn:
        for event_type, patterns in examples:
            cursor = await conn.execute("SELECT webhook_event_matches(%s, %s) AS m", [event_type, patterns])
            assert await cursor.fetchone() == {"m": reference_match(event_type, patterns)}, (event_type, patterns)
