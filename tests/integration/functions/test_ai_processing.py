"""ai-processing on the real runtime with the real local model (all-MiniLM-L6-v2): embeddings stored and searched,
an OpenAI-compatible API served by a real local HTTP server (failing, then answering with the local model's
vectors), preferences from chat messages, idempotent redelivery, users limited to their own data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from testkit.runtime import TEST_JWT_SECRET, serve_app

from tests.integration.functions.conftest import (
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
from tripsage.ai.embeddings import LOCAL_MODEL_NAME, shared_local_provider, to_pgvector
from tripsage.db.connector import Database
from tripsage.functions import ai_processing

MEMORIES = [
    "I love hiking in the Swiss Alps and sleeping in mountain huts",
    "Vegetarian restaurants only, no meat dishes please",
    "Always book a window seat on long-haul flights",
    "Wine tasting in Bordeaux was the highlight of last year",
    "Prefers quiet boutique hotels in the old town",
    "Travelling with two small children, needs family rooms",
    "Museums and art galleries are a must in every city",
    "Scuba diving on coral reefs in warm water",
]
PARAPHRASES = {
    "Trekking through the mountains of Switzerland is my favourite thing": 0,
    "I don't eat meat, so pick veggie places to eat": 1,
    "Give me the seat next to the window on the plane": 2,
    "Small charming hotels in historic city centres": 4,
}


def service_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.api_key(TEST_JWT_SECRET, 'service_role')}"}


async def add_memories(db: Any, user_id: str, texts: list[str]) -> list[int]:
    ids = []
    for text in texts:
        rows = await sql(
            db, "INSERT INTO memories (user_id, content) VALUES (%(u)s, %(c)s) RETURNING id", {"u": user_id, "c": text}
        )
        ids.append(int(rows[0]["id"]))
    return ids


async def test_embeddings_stored_and_search_ranks_the_original_first(tmp_path: Path, database: str) -> None:
    async with functions_runtime(tmp_path, database) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        other, _ = await create_user(db, "Noah")
        await add_memories(db, user, MEMORIES)
        other_ids = await add_memories(db, other, ["I love hiking in the Swiss Alps and sleeping in mountain huts"])
        url = rt.base_url + "/functions/v1/ai-processing"

        body = event_body("memory.generate.embedding", {"user_id": user})
        status, answer = await post(url, body, service_headers())
        assert status == 200, answer
        assert (answer["embedded"], answer["skipped"], answer["model"]) == (len(MEMORIES), 0, LOCAL_MODEL_NAME)

        rows = await sql(
            db,
            "SELECT content, embedding::text AS embedding, embedding_model, embedded_at FROM memories"
            " WHERE user_id = %(u)s ORDER BY id",
            {"u": user},
        )
        expected = await shared_local_provider().embed([row["content"] for row in rows])
        for row, vector in zip(rows, expected, strict=True):
            stored = json.loads(row["embedding"])
            assert len(stored) == 384 and row["embedding_model"] == LOCAL_MODEL_NAME and row["embedded_at"]
            assert math.isclose(sum(x * x for x in stored), 1.0, rel_tol=1e-4)
            assert max(abs(a - b) for a, b in zip(stored, vector, strict=True)) < 1e-5
        # The other user's memory was not in this event's scope.
        pending = await sql(db, "SELECT id FROM memories WHERE embedding IS NULL")
        assert [p["id"] for p in pending] == other_ids

        provider = shared_local_provider()
        for query, original in PARAPHRASES.items():
            results = await ai_processing.search(db, provider, user, query, match_count=3)
            assert results[0]["content"] == MEMORIES[original], (query, results)
            assert results[0]["similarity"] > results[1]["similarity"]
        # Filters: memory type, minimum similarity; and only this user's memories.
        none = await ai_processing.search(db, provider, user, "hiking", filters={"memory_type": "trip_history"})
        assert none == []
        strict = await ai_processing.search(db, provider, user, "hiking in the alps", filters={"min_similarity": 0.5})
        assert [r["content"] for r in strict] == [MEMORIES[0]]


async def test_search_memories_uses_hnsw_and_refuses_other_users(tmp_path: Path, database: str) -> None:
    async with functions_runtime(tmp_path, database) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        other, _ = await create_user(db, "Noah")
        await add_memories(db, user, MEMORIES)
        await ai_processing.embed_pending(db, shared_local_provider())
        vector = to_pgvector((await shared_local_provider().embed(["mountains"]))[0])
        async with db.transaction() as conn:
            await conn.execute("SET LOCAL enable_seqscan = off")
            cursor = await conn.execute(
                "EXPLAIN (FORMAT JSON) SELECT id FROM public.memories m WHERE m.embedding IS NOT NULL"
                " ORDER BY m.embedding OPERATOR(extensions.<=>) %(v)s::extensions.vector LIMIT 5",
                {"v": vector},
            )
            text = json.dumps((await cursor.fetchone())["QUERY PLAN"])  # type: ignore[index]
            assert "memories_embedding_hnsw_idx" in text
        # The app's own search can use the index (its ORDER BY matches it): with sorts and scans of the whole table or
        # the user's rows made dearest, auto_explain reports the HNSW index in the plan inside public.search_memories.
        # (On 8 rows the planner rightly prefers the user's rows and a sort; bench_embeddings checks the choice on
        # thousands.)
        async with db.transaction() as conn:
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            await conn.execute("SET LOCAL enable_sort = off")
            await conn.execute("LOAD 'auto_explain'")
            for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"), ("log_level", "notice")):
                await conn.execute(
                    "SELECT set_config(%(s)s, %(v)s, true)", {"s": f"auto_explain.{setting}", "v": value}
                )
            plans: list[str] = []
            conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
            await conn.execute(
                "SELECT id FROM public.search_memories(%(v)s::extensions.vector, %(u)s, 3)", {"v": vector, "u": user}
            )
            assert any("Index Scan using memories_embedding_hnsw_idx" in plan for plan in plans), plans
        async with db.transaction() as conn:
            await conn.execute("SET LOCAL ROLE authenticated")
            await conn.execute("SELECT set_config('request.jwt.claims', %(c)s, true)", {"c": json.dumps({"sub": user})})
            cursor = await conn.execute(
                "SELECT content FROM public.search_memories(%(v)s::extensions.vector, %(u)s, 3)",
                {"v": vector, "u": user},
            )
            own = await cursor.fetchall()
            assert len(own) == 3
        with pytest.raises(Exception, match="only search their own memories"):
            async with db.transaction() as conn:
                await conn.execute("SET LOCAL ROLE authenticated")
                await conn.execute(
                    "SELECT set_config('request.jwt.claims', %(c)s, true)", {"c": json.dumps({"sub": other})}
                )
                await conn.execute(
                    "SELECT * FROM public.search_memories(%(v)s::extensions.vector, %(u)s, 3)", {"v": vector, "u": user}
                )


@dataclass
class FakeOpenAI:
    """A real HTTP server speaking the OpenAI embeddings API, answering with the local model's vectors."""

    url: str = ""
    failing: bool = True
    requests: int = 0

    async def embeddings(self, request: web.Request) -> web.Response:
        self.requests += 1
        assert request.headers["Authorization"] == "Bearer sk-test"
        payload = await request.json()
        if self.failing:
            return web.json_response({"error": {"message": "overloaded"}}, status=500)
        assert payload["model"] == "text-embedding-3-small" and payload["dimensions"] == 384
        vectors = await shared_local_provider().embed(payload["input"])
        return web.json_response(
            {
                "object": "list",
                "model": payload["model"],
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            }
        )


@contextlib.asynccontextmanager
async def serving_openai(*, failing: bool = True) -> AsyncIterator[FakeOpenAI]:
    """A FakeOpenAI listening on a loopback port (its `url` set), for the life of the block."""
    server = FakeOpenAI(failing=failing)
    app = web.Application()
    app.router.add_post("/v1/embeddings", server.embeddings)
    async with serve_app(app) as port:
        server.url = f"http://127.0.0.1:{port}/v1"
        yield server


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with serving_openai() as server:
        yield server


async def test_openai_provider_failure_leaves_null_and_is_retried(
    tmp_path: Path, embedded_database: str, fake_openai: FakeOpenAI
) -> None:
    settings = {"embedding_provider": "openai", "openai_api_key": "sk-test", "openai_base_url": fake_openai.url}
    async with functions_runtime(tmp_path, embedded_database, **settings) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        ids = await add_memories(db, user, MEMORIES[:3])
        url = rt.base_url + "/functions/v1/ai-processing"
        body = event_body("memory.generate.embedding", {"memory_ids": ids})
        headers = signed_headers(body, await secrets_of(rt, "ai_processing"), message_id="msg_embed_1")
        status, answer = await post(url, body, headers)
        assert (status, answer["error"]["code"]) == (503, "embedding_failed")
        assert "500" in answer["error"]["message"]
        assert len(await sql(db, "SELECT id FROM memories WHERE embedding IS NULL")) == 3
        assert await sql(db, "SELECT webhook_id FROM functions.processed_webhooks") == []

        fake_openai.failing = False  # the retry (same webhook-id) succeeds
        status, answer = await post(
            url, body, signed_headers(body, await secrets_of(rt, "ai_processing"), message_id="msg_embed_1")
        )
        assert status == 200 and answer["embedded"] == 3 and answer["model"] == "text-embedding-3-small"
        rows = await sql(db, "SELECT embedding_model FROM memories WHERE embedding IS NOT NULL")
        assert [r["embedding_model"] for r in rows] == ["text-embedding-3-small"] * 3
        # A redelivery is answered from the record, without calling the API again.
        before = fake_openai.requests
        status, answer = await post(
            url, body, signed_headers(body, await secrets_of(rt, "ai_processing"), message_id="msg_embed_1")
        )
        assert status == 200 and answer["duplicate"] is True and fake_openai.requests == before
        # Search with the same provider finds the original of a paraphrase.
        results = await ai_processing.search(
            db,
            functions_component(rt).provider,  # type: ignore[arg-type]
            user,
            "Mountain trekking in Switzerland",
        )
        assert results[0]["content"] == MEMORIES[0]


async def test_chat_message_preferences_session_memory_and_reinforcement(tmp_path: Path, database: str) -> None:
    async with functions_runtime(tmp_path, database) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        stranger, _ = await create_user(db, "Noah")
        session = (await sql(db, "INSERT INTO chat_sessions (user_id) VALUES (%(u)s) RETURNING id", {"u": user}))[0][
            "id"
        ]
        url = rt.base_url + "/functions/v1/ai-processing"
        secrets = await secrets_of(rt, "ai_processing")

        first = event_body(
            "chat.message.process",
            {
                "session_id": str(session),
                "user_id": user,
                "message_id": 1,
                "role": "user",
                "content": "I prefer boutique hotels and I'm vegetarian. We want a relaxed pace with lots of museums.",
            },
        )
        status, answer = await post(url, first, signed_headers(first, secrets, message_id="msg_chat_1"))
        assert status == 200, answer
        found = {(p["category"], p["value"]) for p in answer["preferences"]}
        assert found == {
            ("accommodation", "boutique hotel"),
            ("dietary", "vegetarian"),
            ("pace", "relaxed"),
            ("interests", "museums"),
        }
        assert all(m["created"] for m in answer["memories"])
        session_rows = await sql(
            db, "SELECT content, embedding IS NOT NULL AS has_vector, metadata FROM session_memories"
        )
        assert len(session_rows) == 1 and session_rows[0]["has_vector"]
        assert "vegetarian" in session_rows[0]["content"]
        assert len(session_rows[0]["metadata"]["extracted_preferences"]) == 4

        # Redelivery: nothing twice.
        status, answer = await post(url, first, signed_headers(first, secrets, message_id="msg_chat_1"))
        assert status == 200 and answer["duplicate"] is True
        assert len(await sql(db, "SELECT id FROM session_memories")) == 1

        before = {
            r["value"]: r
            for r in await sql(
                db,
                "SELECT metadata ->> 'value' AS value, confidence, last_reinforced FROM memories WHERE user_id = %(u)s",
                {"u": user},
            )
        }
        assert len(before) == 4
        second = event_body(
            "chat.message.process",
            {
                "session_id": str(session),
                "user_id": user,
                "content": "Remember that I'm strictly vegetarian, and I don't like hostels.",
            },
        )
        status, answer = await post(url, second, signed_headers(second, secrets))
        assert status == 200
        assert [(p["category"], p["value"]) for p in answer["preferences"]] == [("dietary", "vegetarian")]
        (memory,) = answer["memories"]
        assert memory["created"] is False and memory["confidence"] > float(before["vegetarian"]["confidence"])
        after = await sql(
            db, "SELECT confidence, last_reinforced FROM memories WHERE metadata ->> 'value' = 'vegetarian'"
        )
        assert len(after) == 1 and after[0]["last_reinforced"] > before["vegetarian"]["last_reinforced"]

        # A user may process their own messages, not someone else's.
        own = jwt.user_token(TEST_JWT_SECRET, user)
        status, answer = await post(url, second, {"Authorization": f"Bearer {own}"})
        assert status == 200
        theirs = jwt.user_token(TEST_JWT_SECRET, stranger)
        status, answer = await post(url, second, {"Authorization": f"Bearer {theirs}"})
        assert (status, answer["error"]["code"]) == (403, "not_own_data")
        bad = event_body("chat.message.process", {"session_id": str(session), "user_id": user})
        status, answer = await post(url, bad, service_headers())
        assert (status, answer["error"]["code"]) == (400, "invalid_data")


async def test_dispatcher_delivers_embedding_and_chat_events(tmp_path: Path, embedded_database: str) -> None:
    async with functions_runtime(tmp_path, embedded_database) as rt:
        db = rt.runtime.database
        await sql(
            db,
            "UPDATE webhook_configs SET url = %(url)s, is_active = true WHERE name = 'ai_processing'",
            {"url": rt.base_url + "/functions/v1/ai-processing"},
        )
        user, _ = await create_user(db, "Mia")
        await add_memories(db, user, MEMORIES[:2])
        session = (await sql(db, "INSERT INTO chat_sessions (user_id) VALUES (%(u)s) RETURNING id", {"u": user}))[0][
            "id"
        ]
        await sql(
            db,
            "INSERT INTO chat_messages (session_id, role, content) VALUES (%(s)s, 'user', %(c)s)",
            {"s": session, "c": "We love hiking and I always travel on a budget"},
        )
        deadline = time.monotonic() + 60
        while True:
            pending = await sql(db, "SELECT id FROM memories WHERE embedding IS NULL")
            sessions = await sql(db, "SELECT id FROM session_memories")
            if not pending and sessions:
                break
            assert time.monotonic() < deadline, (pending, sessions)
            await asyncio.sleep(0.1)
        values = {
            r["value"]
            for r in await sql(
                db, "SELECT metadata ->> 'value' AS value FROM memories WHERE metadata ->> 'source' = 'chat'"
            )
        }
        assert values == {"hiking", "budget"}


async def test_search_finds_a_users_few_memories_among_many_through_the_index(tmp_path: Path, database: str) -> None:
    """HNSW filtered by user: the iterative scan keeps going until the user's rows are found."""
    places = ["Kyoto", "Lisbon", "Patagonia", "Marrakech", "Iceland", "Bali", "Hanoi", "Oaxaca", "Vienna", "Istanbul"]
    things = [
        "street food",
        "old temples",
        "surfing",
        "wine bars",
        "museums",
        "long hikes",
        "night markets",
        "jazz clubs",
        "cooking classes",
        "hot springs",
    ]
    crowd = [f"Wants {thing} in {place} on trip {n}" for n in range(4) for place in places for thing in things]
    async with functions_runtime(tmp_path, database) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        others, _ = await create_user(db, "Crowd")
        await add_memories(db, others, crowd)
        await add_memories(db, user, MEMORIES[:3])
        await ai_processing.embed_pending(db, shared_local_provider())
        vector = to_pgvector((await shared_local_provider().embed(["food in Kyoto"]))[0])
        async with db.transaction() as conn:
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SET LOCAL hnsw.ef_search = 10")
            cursor = await conn.execute(
                "SELECT content FROM public.search_memories(%(v)s::extensions.vector, %(u)s, 5)",
                {"v": vector, "u": user},
            )
            found = [row["content"] for row in await cursor.fetchall()]
            cursor = await conn.execute(
                "SELECT current_setting('hnsw.iterative_scan') AS mode, current_setting('hnsw.ef_search') AS ef_search"
            )
            settings = await cursor.fetchone() or {}
        assert sorted(found) == sorted(MEMORIES[:3])
        assert (settings["mode"], settings["ef_search"]) == ("off", "10")  # the caller's settings are restored


async def test_embedding_in_windows_and_steps_gives_each_memory_its_own_vector(tmp_path: Path, database: str) -> None:
    """Rows are read a window at a time and encoded longest first in steps: every memory still gets the vector of
    its own text, and one that changed after it was read is left pending."""
    texts = MEMORIES + list(PARAPHRASES) + ["Beach", "A very long memory about " + "quiet mountain villages " * 12]
    async with functions_runtime(tmp_path, database) as rt:
        db = rt.runtime.database
        user, _ = await create_user(db, "Mia")
        ids = await add_memories(db, user, texts)

        class Changing:
            """The local model, and a memory's text changed by someone else while the first window is encoded."""

            model = LOCAL_MODEL_NAME
            dimensions = 384
            changed = False

            async def embed(self, batch: list[str]) -> Any:
                if not self.changed:
                    self.changed = True
                    await sql(db, "UPDATE memories SET content = 'Changed meanwhile' WHERE id = %(id)s", {"id": ids[1]})
                return await shared_local_provider().embed(batch)

            async def close(self) -> None:
                return None

        result = await ai_processing.embed_pending(db, Changing(), read_size=5, batch_size=2)  # type: ignore[arg-type]
        assert result == {"embedded": len(texts) - 1, "skipped": 1}
        rows = await sql(db, "SELECT id, content, embedding::text AS embedding FROM memories ORDER BY id")
        assert [row["id"] for row in rows if row["embedding"] is None] == [ids[1]]
        stored = [row for row in rows if row["embedding"] is not None]
        expected = await shared_local_provider().embed([row["content"] for row in stored])
        for row, vector in zip(stored, expected, strict=True):
            assert max(abs(a - b) for a, b in zip(json.loads(row["embedding"]), vector, strict=True)) < 1e-4, row
        # The next run embeds the changed one.
        assert await ai_processing.embed_pending(db, shared_local_provider()) == {"embedded": 1, "skipped": 0}


async def test_ai_processing_works_as_service_role(tmp_path: Path, embedded_database: str) -> None:
    async with functions_runtime(tmp_path, embedded_database, db_role="service_role") as rt:
        admin = Database(embedded_database, max_size=1)
        await admin.open()
        try:
            user, _ = await create_user(admin, "Mia")
            await add_memories(admin, user, MEMORIES[:2])
            session = await sql(admin, "INSERT INTO chat_sessions (user_id) VALUES (%(u)s) RETURNING id", {"u": user})
        finally:
            await admin.close()
        url = rt.base_url + "/functions/v1/ai-processing"
        status, answer = await post(url, event_body("memory.generate.embedding", {}), service_headers())
        assert (status, answer["embedded"]) == (200, 2), answer
        chat = {"session_id": str(session[0]["id"]), "user_id": user, "content": "I love beaches, on a budget"}
        status, answer = await post(url, event_body("chat.message.process", chat), service_headers())
        assert status == 200 and len(answer["memories"]) == 2, answer
        results = await ai_processing.search(
            rt.runtime.database, shared_local_provider(), user, "hiking in Switzerland"
        )
        assert results[0]["content"] == MEMORIES[0]
