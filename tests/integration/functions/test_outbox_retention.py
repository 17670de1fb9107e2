"""The email outbox when the SMTP server is down (kept pending with the error, sent once it is back), retention of
idempotency records and sent emails, and email metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from testkit.servers import free_port

from tests.integration.functions.conftest import (
    Mailbox,
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


async def test_smtp_down_keeps_the_email_pending_then_sends_it(tmp_path: Path, embedded_database: str) -> None:
    port = free_port()  # nothing listens here yet
    async with functions_runtime(tmp_path, embedded_database, smtp_url=f"smtp://127.0.0.1:{port}") as rt:
        db = rt.runtime.database
        component = functions_component(rt)
        owner, _ = await create_user(db, "Olivia")
        guest, guest_email = await create_user(db, "Gustav")
        trip = await create_trip(db, owner)
        body = event_body("trip.collaborator.added", {"trip_id": trip, "user_id": guest, "permission_level": "view"})
        status, answer = await post(
            rt.base_url + "/functions/v1/trip-events", body, signed_headers(body, await secrets_of(rt, "trip_events"))
        )
        assert (status, answer["emails"]) == (200, 1)  # queued: the notification does not wait for SMTP
        rows: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while not rows:  # the sender's first attempt fails and records why
            assert time.monotonic() < deadline, "the failed attempt was never recorded"
            await asyncio.sleep(0.05)
            rows = await sql(
                db,
                "SELECT status, attempts, last_error FROM functions.email_outbox WHERE attempts > 0"
                " AND last_error IS NOT NULL",
            )
        assert rows[0]["status"] == "pending" and rows[0]["attempts"] == 1

        mailbox = Mailbox()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await sql(db, "UPDATE functions.email_outbox SET next_attempt_at = now()")
            assert await component.send_due(rt.runtime) == 1
            (message,) = await mailbox.wait_for(guest_email)
            assert message["Subject"] == "You've been added to Kyoto in autumn"
        finally:
            controller.stop()
        (row,) = await sql(db, "SELECT status, attempts, last_error, sent_at FROM functions.email_outbox")
        assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None) and row["sent_at"]
        samples = {
            s.labels["outcome"]: s.value
            for s in rt.runtime.metrics.function_emails.collect()[0].samples
            if s.name.endswith("_total")
        }
        assert samples["sent"] == 1 and samples["failed"] >= 1

        # Retention: records and sent emails older than the window go; recent ones stay.
        assert await component.prune(rt.runtime) == 0
        await sql(db, "UPDATE functions.processed_webhooks SET processed_at = now() - interval '31 days'")
        await sql(db, "UPDATE functions.email_outbox SET sent_at = now() - interval '31 days'")
        assert await component.prune(rt.runtime) == 2
        assert await sql(db, "SELECT 1 FROM functions.processed_webhooks") == []
        assert await sql(db, "SELECT 1 FROM functions.email_outbox") == []
        assert len(await sql(db, "SELECT 1 FROM notifications")) == 1
