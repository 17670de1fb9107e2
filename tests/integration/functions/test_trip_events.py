"""trip-events on the real runtime: signed and JWT callers, notifications, emails received by a real SMTP server,
idempotent redelivery, the dispatcher end to end, and the HTTP contract (CORS, 405, 400/401/403)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path

import aiohttp
from testkit.runtime import TEST_JWT_SECRET

from tests.integration.functions.conftest import (
    Smtp,
    create_trip,
    create_user,
    event_body,
    functions_component,
    functions_runtime,
    post,
    secrets_of,
    signed_headers,
    sql,
)
from tripsage import jwt
from tripsage.db.connector import Database
from tripsage.db.vault import ApiKeyVault, keyring


async def test_collaborator_added_notifies_and_emails_once_per_webhook_id(
    tmp_path: Path, database: str, smtp: Smtp
) -> None:
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url, smtp_from="TripSage <trips@example.org>") as rt:
        db = rt.runtime.database
        owner, _ = await create_user(db, "Olivia")
        guest, guest_email = await create_user(db, "Gustav")
        trip = await create_trip(db, owner)
        data = {"trip_id": trip, "user_id": guest, "permission_level": "edit", "added_by": owner, "actor_id": owner}
        body = event_body("trip.collaborator.added", data)
        headers = signed_headers(body, await secrets_of(rt, "trip_events"), message_id="msg_added_1")
        url = rt.base_url + "/functions/v1/trip-events"

        status, answer = await post(url, body, headers)
        assert status == 200, answer
        assert answer == {"success": True, "event": "trip.collaborator.added", "notifications": 1, "emails": 1}
        (message,) = await smtp.mailbox.wait_for(guest_email)
        assert message["Subject"] == "You've been added to Kyoto in autumn"
        assert message["From"] == "TripSage <trips@example.org>"
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text is not None and html is not None
        assert "Olivia added you" in text.get_content() and "Kyoto" in text.get_content()
        assert "edit" in text.get_content()
        assert "<strong>Kyoto in autumn</strong>" in html.get_content()

        # The same message again (a redelivery, even with a new timestamp): the stored answer, nothing new.
        again = signed_headers(body, await secrets_of(rt, "trip_events"), message_id="msg_added_1")
        status, answer = await post(url, body, again)
        assert status == 200 and answer["duplicate"] is True and answer["notifications"] == 1
        rows = await sql(db, "SELECT type, message, metadata FROM notifications WHERE user_id = %(u)s", {"u": guest})
        assert len(rows) == 1 and rows[0]["type"] == "trip_collaboration_invite"
        assert rows[0]["metadata"]["trip_name"] == "Kyoto in autumn"
        outbox_rows = await sql(db, "SELECT status FROM functions.email_outbox")
        assert [r["status"] for r in outbox_rows] == ["sent"]
        assert len(smtp.mailbox.to(guest_email)) == 1
        calls = {
            (s.labels["function"], s.labels["status"]): s.value
            for s in rt.runtime.metrics.function_calls.collect()[0].samples
            if s.name.endswith("_total")
        }
        assert calls[("trip-events", "200")] == 2


async def test_collaborator_updated_and_removed_and_owner_told_of_admin_share(
    tmp_path: Path, database: str, smtp: Smtp
) -> None:
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url) as rt:
        db = rt.runtime.database
        owner, owner_email = await create_user(db, "Olivia")
        admin, _ = await create_user(db, "Ada")
        guest, guest_email = await create_user(db, "Gustav")
        trip = await create_trip(db, owner, name="Lisbon long weekend", destination="Lisbon")
        secrets = await secrets_of(rt, "trip_events")
        url = rt.base_url + "/functions/v1/trip-events"

        added = event_body(
            "trip.collaborator.added",
            {"trip_id": trip, "user_id": guest, "permission_level": "view", "added_by": admin, "actor_id": admin},
        )
        status, answer = await post(url, added, signed_headers(added, secrets))
        assert (status, answer["notifications"], answer["emails"]) == (200, 2, 2)
        (to_owner,) = await smtp.mailbox.wait_for(owner_email)
        assert to_owner["Subject"] == "Gustav joined Lisbon long weekend"

        updated = event_body(
            "trip.collaborator.updated",
            {
                "trip_id": trip,
                "user_id": guest,
                "permission_level": "admin",
                "old_permission_level": "view",
                "actor_id": owner,
            },
        )
        status, answer = await post(url, updated, signed_headers(updated, secrets))
        assert (status, answer["notifications"]) == (200, 1)
        removed = event_body(
            "trip.collaborator.removed",
            {"trip_id": trip, "user_id": guest, "permission_level": "admin", "actor_id": owner},
        )
        status, answer = await post(url, removed, signed_headers(removed, secrets))
        assert (status, answer["notifications"]) == (200, 1)
        messages = await smtp.mailbox.wait_for(guest_email, 3)
        subjects = sorted(m["Subject"] for m in messages)
        assert subjects == [
            "You were removed from Lisbon long weekend",
            "You've been added to Lisbon long weekend",
            "Your access to Lisbon long weekend changed",
        ]
        kinds = await sql(db, "SELECT type FROM notifications WHERE user_id = %(u)s ORDER BY id", {"u": guest})
        assert [k["type"] for k in kinds] == [
            "trip_collaboration_invite",
            "trip_collaboration_updated",
            "trip_collaboration_removed",
        ]


async def test_dispatcher_to_function_end_to_end(tmp_path: Path, database: str, smtp: Smtp) -> None:
    """A collaborator row and a confirmed booking, through the triggers, the outbox and the real dispatcher."""
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url) as rt:
        db = rt.runtime.database
        owner, owner_email = await create_user(db, "Olivia")
        guest, guest_email = await create_user(db, "Gustav")
        trip = await create_trip(db, owner)
        await sql(
            db,
            "UPDATE webhook_configs SET url = %(url)s, is_active = true WHERE name = 'trip_events'",
            {"url": rt.base_url + "/functions/v1/trip-events"},
        )
        await sql(
            db,
            "INSERT INTO trip_collaborators (trip_id, user_id, permission_level, added_by)"
            " VALUES (%(t)s, %(u)s, 'view', %(o)s)",
            {"t": trip, "u": guest, "o": owner},
        )
        await sql(
            db,
            "INSERT INTO bookings (trip_id, user_id, booking_type, status)"
            " VALUES (%(t)s, %(o)s, 'flight', 'confirmed')",
            {"t": trip, "o": owner},
        )
        (invite,) = await smtp.mailbox.wait_for(guest_email)
        assert invite["Subject"] == "You've been added to Kyoto in autumn"
        (confirmed,) = await smtp.mailbox.wait_for(owner_email)
        assert confirmed["Subject"] == "Booking confirmed for Kyoto in autumn"
        logs = await sql(
            db,
            "SELECT l.response_status FROM webhook_logs l JOIN webhook_configs c ON c.id = l.webhook_config_id"
            " WHERE c.name = 'trip_events'",
        )
        assert logs and all(row["response_status"] == 200 for row in logs)
        booking_notes = await sql(db, "SELECT type FROM notifications WHERE user_id = %(o)s", {"o": owner})
        assert [n["type"] for n in booking_notes] == ["booking_confirmed"]


async def test_api_key_expiring_emails_once(tmp_path: Path, database: str, smtp: Smtp) -> None:
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url) as rt:
        db = rt.runtime.database
        user, address = await create_user(db, "Kim")
        service = jwt.api_key(TEST_JWT_SECRET, "service_role")
        data = {
            "api_key_id": 7,
            "user_id": user,
            "service_name": "openai",
            "key_name": "main",
            "expires_at": "2027-03-01T09:30:00+00:00",
        }
        url = rt.base_url + "/functions/v1/trip-events"
        for message_id in ("msg_k1", "msg_k2"):  # two deliveries (a re-run of the job): one email
            body = event_body("api_key.expiring", data)
            status, answer = await post(
                url, body, signed_headers(body, await secrets_of(rt, "trip_events"), message_id=message_id)
            )
            assert status == 200, answer
        body = event_body("api_key.expiring", data)
        status, answer = await post(url, body, {"Authorization": f"Bearer {service}"})
        assert (status, answer["emails"]) == (200, 0)
        (message,) = await smtp.mailbox.wait_for(address)
        assert message["Subject"] == "Your openai API key expires soon"
        assert "2027-03-01 09:30 UTC" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_without_smtp_notifications_only(tmp_path: Path, embedded_database: str) -> None:
    async with functions_runtime(tmp_path, embedded_database) as rt:
        db = rt.runtime.database
        owner, _ = await create_user(db, "Olivia")
        guest, _ = await create_user(db, "Gustav")
        trip = await create_trip(db, owner)
        body = event_body("trip.collaborator.added", {"trip_id": trip, "user_id": guest, "permission_level": "view"})
        status, answer = await post(
            rt.base_url + "/functions/v1/trip-events", body, signed_headers(body, await secrets_of(rt, "trip_events"))
        )
        assert (status, answer["notifications"], answer["emails"]) == (200, 1, 0)
        assert await sql(db, "SELECT id FROM functions.email_outbox") == []
        assert functions_component(rt).health()["email"].startswith("disabled")


async def test_http_contract(tmp_path: Path, embedded_database: str) -> None:
    async with functions_runtime(tmp_path, embedded_database) as rt:
        db = rt.runtime.database
        owner, _ = await create_user(db, "Olivia")
        guest, _ = await create_user(db, "Gustav")
        trip = await create_trip(db, owner)
        url = rt.base_url + "/functions/v1/trip-events"
        secrets = await secrets_of(rt, "trip_events")
        good = event_body("trip.collaborator.added", {"trip_id": trip, "user_id": guest, "permission_level": "view"})
        service = jwt.api_key(TEST_JWT_SECRET, "service_role")
        anon = jwt.api_key(TEST_JWT_SECRET, "anon")
        user = jwt.user_token(TEST_JWT_SECRET, owner)
        wrong_secret = jwt.api_key("another-projects-secret-0123456789-abcdefgh", "service_role")

        async with aiohttp.ClientSession() as session:
            async with session.options(
                url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
            ) as r:
                assert r.status == 204
                assert r.headers["Access-Control-Allow-Origin"] == "*"
                assert "webhook-signature" in r.headers["Access-Control-Allow-Headers"]
            async with session.get(url) as r:
                assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"
                assert r.headers["Allow"] == "POST, OPTIONS"
            async with session.post(rt.base_url + "/functions/v1/nope", data=good) as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "function_not_found"

        cases: list[tuple[bytes, dict[str, str], int, str]] = [
            (good, {}, 401, "missing_credentials"),
            (good, {"Authorization": "Bearer not-a-jwt"}, 401, "invalid_jwt"),
            (good, {"Authorization": f"Bearer {wrong_secret}"}, 401, "invalid_jwt"),
            (good, {"Authorization": f"Bearer {anon}"}, 403, "role_not_allowed"),
            (good, {"Authorization": f"Bearer {user}"}, 403, "role_not_allowed"),
            (
                good,
                signed_headers(good, ["whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwMTI="]),
                401,
                "invalid_signature",
            ),
            (good, signed_headers(good, secrets, at=int(time.time()) - 301), 401, "webhook_timestamp_out_of_range"),
            (good, {**signed_headers(good, secrets), "webhook-signature": "v1,AAAA"}, 401, "invalid_signature"),
            (b"{not json", {"Authorization": f"Bearer {service}"}, 400, "invalid_json"),
            (b"[1, 2]", {"Authorization": f"Bearer {service}"}, 400, "invalid_body"),
            (b'{"data": {}}', {"Authorization": f"Bearer {service}"}, 400, "invalid_body"),
            (event_body("trip.exploded", {}), {"Authorization": f"Bearer {service}"}, 400, "unknown_event"),
            (
                event_body("trip.collaborator.added", {"trip_id": "7", "user_id": guest, "permission_level": "view"}),
                {"Authorization": f"Bearer {service}"},
                400,
                "invalid_data",
            ),
            (
                event_body("trip.collaborator.added", {"trip_id": trip, "user_id": "bob", "permission_level": "view"}),
                {"Authorization": f"Bearer {service}"},
                400,
                "invalid_data",
            ),
            (
                event_body("trip.collaborator.added", {"trip_id": trip, "user_id": guest, "permission_level": "god"}),
                {"Authorization": f"Bearer {service}"},
                400,
                "invalid_data",
            ),
            (
                event_body("booking.confirmed", {"trip_id": trip}),
                {"Authorization": f"Bearer {service}"},
                400,
                "invalid_data",
            ),
            (
                b'{"type": "booking.confirmed", "data": {"pad": "' + b"x" * (1024 * 1024) + b'"}}',
                {"Authorization": f"Bearer {service}"},
                400,
                "body_too_large",
            ),
        ]
        for body, headers, expected_status, expected_code in cases:
            status, answer = await post(url, body, headers)
            assert (status, answer["error"]["code"]) == (expected_status, expected_code), (headers, body[:80], answer)
            assert answer["error"]["message"]
        # Nothing was written by any refused request.
        assert await sql(db, "SELECT id FROM notifications") == []

        # A service_role caller: accepted; with an Idempotency-Key, answered once.
        key = {"Authorization": f"Bearer {service}", "Idempotency-Key": str(uuid.uuid4())}
        first = await post(url, good, key)
        second = await post(url, good, key)
        assert first[0] == second[0] == 200 and first[1]["notifications"] == 1 and second[1]["duplicate"] is True
        assert len(await sql(db, "SELECT id FROM notifications")) == 1


async def test_webhooks_test_event_is_acknowledged(tmp_path: Path, embedded_database: str) -> None:
    """`test_webhook('trip_events')` (what `tripsage webhooks test` sends) reaches the function and succeeds."""
    async with functions_runtime(tmp_path, embedded_database) as rt:
        db = rt.runtime.database
        for name, path in (("trip_events", "trip-events"), ("ai_processing", "ai-processing")):
            await sql(
                db,
                "UPDATE webhook_configs SET url = %(url)s, is_active = true WHERE name = %(name)s",
                {"url": f"{rt.base_url}/functions/v1/{path}", "name": name},
            )
            await sql(db, "SELECT test_webhook(%(name)s)", {"name": name})
        deadline = time.monotonic() + 30
        while True:
            logs = await sql(
                db,
                "SELECT c.name, l.response_status FROM webhook_logs l"
                " JOIN webhook_configs c ON c.id = l.webhook_config_id WHERE l.event_type = 'test.webhook'",
            )
            if len(logs) == 2:
                break
            assert time.monotonic() < deadline, logs
            await asyncio.sleep(0.05)
        assert sorted((log["name"], log["response_status"]) for log in logs) == [
            ("ai_processing", 200),
            ("trip_events", 200),
        ]


async def test_concurrent_deliveries_of_one_webhook_id_do_the_work_once(
    tmp_path: Path, database: str, smtp: Smtp
) -> None:
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url) as rt:
        db = rt.runtime.database
        owner, owner_email = await create_user(db, "Olivia")
        trip = await create_trip(db, owner)
        body = event_body("booking.confirmed", {"trip_id": trip, "booking_id": 41, "booking_type": "bookings"})
        secrets = await secrets_of(rt, "trip_events")
        url = rt.base_url + "/functions/v1/trip-events"
        answers = await asyncio.gather(
            *(post(url, body, signed_headers(body, secrets, message_id="msg_same")) for _ in range(8))
        )
        assert all(status == 200 for status, _ in answers)
        assert sum(1 for _, answer in answers if not answer.get("duplicate")) == 1
        assert all(answer["notifications"] == 1 for _, answer in answers)
        assert len(await sql(db, "SELECT id FROM notifications")) == 1
        (message,) = await smtp.mailbox.wait_for(owner_email)
        assert message["Subject"] == "Booking confirmed for Kyoto in autumn"
        assert "booking #41" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_functions_work_as_service_role(tmp_path: Path, embedded_database: str, smtp: Smtp) -> None:
    """The runtime connected with TRIPSAGE_DB_ROLE=service_role: contacts, notifications, outbox, idempotency."""
    async with functions_runtime(tmp_path, embedded_database, smtp_url=smtp.url, db_role="service_role") as rt:
        db = rt.runtime.database
        admin = Database(embedded_database, max_size=1)
        await admin.open()
        try:
            owner, _ = await create_user(admin, "Olivia")
            guest, guest_email = await create_user(admin, "Gustav")
            trip = await create_trip(admin, owner)
        finally:
            await admin.close()
        body = event_body("trip.collaborator.added", {"trip_id": trip, "user_id": guest, "permission_level": "view"})
        headers = signed_headers(body, await secrets_of(rt, "trip_events"))
        status, answer = await post(rt.base_url + "/functions/v1/trip-events", body, headers)
        assert (status, answer["notifications"], answer["emails"]) == (200, 1, 1), answer
        await smtp.mailbox.wait_for(guest_email)
        assert (await sql(db, "SELECT current_user AS role"))[0]["role"] == "service_role"
        assert await functions_component(rt).prune(rt.runtime) == 0


async def test_scheduler_api_key_expiry_reaches_the_owner_by_email(tmp_path: Path, database: str, smtp: Smtp) -> None:
    """maintenance.monitor_expiring_api_keys (the scheduler's job) -> api_key.expiring -> dispatcher -> email, once."""
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url) as rt:
        db = rt.runtime.database
        user, address = await create_user(db, "Kim")
        vault = ApiKeyVault(db, keyring(rt.settings))
        expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
        await vault.create(
            user_id=user, service_name="duffel", key_name="prod", plaintext="duffel_live_0123456789", expires_at=expires
        )
        await sql(
            db,
            "UPDATE webhook_configs SET url = %(url)s, is_active = true WHERE name = 'trip_events'",
            {"url": rt.base_url + "/functions/v1/trip-events"},
        )
        first = await sql(db, "SELECT maintenance.monitor_expiring_api_keys() AS result")
        assert first[0]["result"]["notified"] == 1
        (message,) = await smtp.mailbox.wait_for(address)
        assert message["Subject"] == "Your duffel API key expires soon"
        assert expires.strftime("%Y-%m-%d %H:%M UTC") in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        again = await sql(db, "SELECT maintenance.monitor_expiring_api_keys() AS result")
        assert again[0]["result"]["notified"] == 0
        notes = await sql(db, "SELECT type FROM notifications WHERE user_id = %(u)s", {"u": user})
        assert [n["type"] for n in notes] == ["api_key_expiring"]
        assert len(smtp.mailbox.to(address)) == 1
