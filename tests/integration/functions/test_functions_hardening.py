"""Issue #17's repros against the functions, on the real runtime: bodies nested too deep are a 400 with a stable code
(never a 500), a trip name with CR/LF still gets its email sent, and a chat session's owner is checked before any
model work (the embeddings API, served by a real local HTTP server, is never called for a stranger)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from testkit.runtime import TEST_JWT_SECRET

from tests.integration.functions.conftest import (
    Smtp,
    create_trip,
    create_user,
    event_body,
    functions_runtime,
    post,
    secrets_of,
    signed_headers,
    sql,
)
from tests.integration.functions.test_ai_processing import FakeOpenAI, serving_openai
from tripsage import jwt

DEEP = b"[" * 100_000


def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.api_key(TEST_JWT_SECRET, 'service_role')}"}


@pytest.mark.parametrize("function", ["ai-processing", "trip-events"])
async def test_a_body_nested_too_deep_is_a_400_not_a_500(
    tmp_path: Path, database: str, function: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with functions_runtime(tmp_path, database) as rt:
        url = f"{rt.base_url}/functions/v1/{function}"
        for body in (DEEP, b'{"type": "x", "data": ' + b'{"a": ' * 65 + b"1" + b"}" * 65 + b"}"):
            with caplog.at_level(logging.ERROR):
                status, answer = await post(url, body, service_headers())
            assert (status, answer["error"]["code"]) == (400, "json_too_deep")
        # Nested within the limit is still just a body (here: an unknown event type).
        status, answer = await post(url, b'{"type": "x", "data": {"a": [[[1]]]}}', service_headers())
        assert (status, answer["error"]["code"]) == (400, "unknown_event")
    assert not [r for r in caplog.records if "RecursionError" in (r.exc_text or "") + r.getMessage()]


async def test_a_trip_name_with_cr_lf_still_gets_its_email_sent(tmp_path: Path, database: str, smtp: Smtp) -> None:
    async with functions_runtime(tmp_path, database, smtp_url=smtp.url) as rt:
        db = rt.runtime.database
        owner, _ = await create_user(db, "Olivia")
        guest, guest_email = await create_user(db, "Gustav")
        trip = await create_trip(db, owner, name="Kyoto\r\nBcc: victim@example.com\r\n\r\nin autumn")
        body = event_body(
            "trip.collaborator.added",
            {"trip_id": trip, "user_id": guest, "permission_level": "edit", "actor_id": owner},
        )
        headers = signed_headers(body, await secrets_of(rt, "trip_events"))
        status, answer = await post(rt.base_url + "/functions/v1/trip-events", body, headers)
        assert status == 200 and answer["emails"] == 1, answer
        (message,) = await smtp.mailbox.wait_for(guest_email)
        assert message["Subject"] == "You've been added to Kyoto Bcc: victim@example.com in autumn"
        assert message["Bcc"] is None
        assert [r["status"] for r in await sql(db, "SELECT status FROM functions.email_outbox")] == ["sent"]


@pytest.fixture
async def embeddings_api() -> AsyncIterator[FakeOpenAI]:
    async with serving_openai(failing=False) as server:
        yield server


async def test_chat_session_ownership_is_checked_before_any_model_work(
    tmp_path: Path, embedded_database: str, embeddings_api: FakeOpenAI
) -> None:
    settings = {"embedding_provider": "openai", "openai_api_key": "sk-test", "openai_base_url": embeddings_api.url}
    async with functions_runtime(tmp_path, embedded_database, **settings) as rt:
        db = rt.runtime.database
        owner, _ = await create_user(db, "Mia")
        stranger, _ = await create_user(db, "Noah")
        rows = await sql(db, "INSERT INTO chat_sessions (user_id) VALUES (%(u)s) RETURNING id", {"u": owner})
        session = str(rows[0]["id"])
        url = rt.base_url + "/functions/v1/ai-processing"
        content = "I'm vegetarian and I love museums."

        # The stranger names themselves as the user, but the session is Mia's.
        theirs = event_body("chat.message.process", {"session_id": session, "user_id": stranger, "content": content})
        token = jwt.user_token(TEST_JWT_SECRET, stranger)
        status, answer = await post(url, theirs, {"Authorization": f"Bearer {token}"})
        assert (status, answer["error"]["code"], embeddings_api.requests) == (403, "not_own_data", 0)
        status, answer = await post(url, theirs, service_headers())
        assert (status, answer["error"]["code"]) == (400, "invalid_data")
        assert embeddings_api.requests == 0

        own = event_body("chat.message.process", {"session_id": session, "user_id": owner, "content": content})
        token = jwt.user_token(TEST_JWT_SECRET, owner)
        status, answer = await post(url, own, {"Authorization": f"Bearer {token}"})
        assert status == 200 and answer["preferences"], answer
        assert embeddings_api.requests == 1
