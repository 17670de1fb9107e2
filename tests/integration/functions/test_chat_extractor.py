"""The optional chat-model extractor over HTTP, against a real local server speaking the OpenAI chat completions API.

No model can be reached offline, so the server's "model" is the built-in rule extractor run on the message it is
sent (its answers are computed, not canned); what is tested is our client: the request (model, JSON mode, the
message), the validation of the answer, and that a failed or malformed answer leaves nothing written and asks for a
retry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from testkit.runtime import TEST_JWT_SECRET, serve_app

from tests.integration.functions.conftest import create_user, event_body, functions_runtime, post, sql
from tripsage import jwt
from tripsage.ai import preferences


@dataclass
class ChatServer:
    url: str = ""
    mode: str = "ok"  # ok | error | garbage
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def completions(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.requests.append(payload)
        if self.mode == "error":
            return web.json_response({"error": {"message": "rate limited"}}, status=429)
        message = payload["messages"][-1]["content"]
        found = [
            {"category": p.category, "value": p.value, "confidence": p.confidence, "evidence": p.evidence}
            for p in preferences.extract(message)
        ]
        found.append({"category": "horoscope", "value": "leo", "confidence": 1})  # dropped: not a category
        content = "not json" if self.mode == "garbage" else json.dumps({"preferences": found})
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": payload["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
            }
        )


@pytest.fixture
async def chat_server() -> AsyncIterator[ChatServer]:
    server = ChatServer()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.completions)
    async with serve_app(app) as port:
        server.url = f"http://127.0.0.1:{port}/v1"
        yield server


async def test_chat_model_extractor(tmp_path: Path, embedded_database: str, chat_server: ChatServer) -> None:
    settings = {
        "preference_extractor": "openai",
        "openai_api_key": "sk-test",
        "openai_base_url": chat_server.url,
        "openai_chat_model": "gpt-test-mini",
    }
    async with functions_runtime(tmp_path, embedded_database, **settings) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        session = (await sql(db, "INSERT INTO chat_sessions (user_id) VALUES (%(u)s) RETURNING id", {"u": user}))[0]
        url = rt.base_url + "/functions/v1/ai-processing"
        headers = {"Authorization": f"Bearer {jwt.api_key(TEST_JWT_SECRET, 'service_role')}"}
        body = event_body(
            "chat.message.process",
            {"session_id": str(session["id"]), "user_id": user, "content": "I always travel vegan, with kids"},
        )

        for mode in ("error", "garbage"):
            chat_server.mode = mode
            status, answer = await post(url, body, headers)
            assert (status, answer["error"]["code"]) == (503, "extraction_failed"), answer
        assert await sql(db, "SELECT id FROM session_memories") == []

        chat_server.mode = "ok"
        status, answer = await post(url, body, headers)
        assert status == 200, answer
        assert {(p["category"], p["value"]) for p in answer["preferences"]} == {
            ("dietary", "vegan"),
            ("travel_style", "family"),
        }
        request = chat_server.requests[-1]
        assert request["model"] == "gpt-test-mini" and request["response_format"] == {"type": "json_object"}
        assert request["messages"][-1] == {"role": "user", "content": "I always travel vegan, with kids"}
        (row,) = await sql(db, "SELECT metadata FROM session_memories")
        assert row["metadata"]["extractor"] == "gpt-test-mini"
