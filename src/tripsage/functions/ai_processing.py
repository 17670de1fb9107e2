"""ai-processing: embeddings of pending memories, and travel preferences from chat messages.

- memory.generate.embedding: every pending memory (embedding IS NULL; the listed ids, or all, or a user's own) is
  read, embedded and written in batches, the next batch encoding while the previous one is written (and the next
  rows read). A failure
  leaves the rest NULL and answers 503, so the dispatcher retries; no vector is ever made up.
- chat.message.process: rule-based extraction (tripsage.ai.preferences); a session memory with the summary's
  embedding, and each preference reinforces its long-term memory (confidence, last_reinforced) or creates one.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tripsage import queries_for
from tripsage.ai import preferences
from tripsage.ai.embeddings import EmbeddingError, EmbeddingProvider, Vectors, to_pgvector
from tripsage.db.connector import Database, Float4Array, Jsonb
from tripsage.functions.app import (
    Call,
    Context,
    Handler,
    acknowledge_test_event,
    field_text,
    field_uuid,
    require_own,
    unit_of_work,
)
from tripsage.functions.errors import BadRequest, Forbidden

Q = queries_for("tripsage.functions")
# Memories per encode-write step (the model encodes them in its own batches of 64). Small, so that the last
# step's write, the one no encoding overlaps, is short.
BATCH_SIZE = 128
# Memories read at once, encoded in steps of BATCH_SIZE in length order: close to the padding of one encode call over
# all of them, while the write no encoding overlaps (the last step's) stays small.
READ_SIZE = 512
MAX_IDS = 10_000  # memory ids one event may list
REINFORCE_WEIGHT = 0.5  # share of the gap to 1 that a repeat with confidence 1 closes


async def _write_batch(db: Database, model: str, rows: list[dict[str, Any]], vectors: Vectors) -> int:
    if len(vectors) != len(rows):
        raise EmbeddingError(f"the provider returned {len(vectors)} vectors for {len(rows)} texts")
    return await db.execute(
        Q["store_embeddings"],
        {
            "model": model,
            "ids": [row["id"] for row in rows],
            "contents": [row["content"] for row in rows],
            "embeddings": Float4Array(vectors.values),
            "dim": vectors.dimensions,
        },
    )


async def embed_pending(
    db: Database,
    provider: EmbeddingProvider,
    *,
    ids: list[int] | None = None,
    user_id: str | None = None,
    batch_size: int = BATCH_SIZE,
    read_size: int = READ_SIZE,
) -> dict[str, int]:
    """Embed pending memories; {"embedded", "skipped"} (skipped: changed or embedded meanwhile)."""
    read = embedded = 0
    reading: asyncio.Task[list[dict[str, Any]]] | None = None
    writing: asyncio.Task[int] | None = None

    def read_after(after: int) -> asyncio.Task[list[dict[str, Any]]]:
        params = {"after": after, "ids": ids, "user_id": user_id, "limit": read_size}
        return asyncio.create_task(db.fetch_all(Q["pending_memories"], params))

    try:
        reading = read_after(0)
        while True:
            rows = await reading
            reading = None
            if not rows:
                break
            read += len(rows)
            reading = read_after(rows[-1]["id"])  # the next rows are read while these are encoded
            # Longest first, as sentence-transformers orders one call's texts: each step's forward passes then pad
            # their texts to about the same length, as one call over all of them would.
            rows.sort(key=lambda row: len(row["content"]), reverse=True)
            for start in range(0, len(rows), batch_size):
                step = rows[start : start + batch_size]
                vectors = await provider.embed([row["content"] for row in step])
                if writing is not None:
                    embedded += await writing
                # The write of this step overlaps the encoding of the next one.
                writing = asyncio.create_task(_write_batch(db, provider.model, step, vectors))
        if writing is not None:
            embedded += await writing
            writing = None
    finally:
        for task in (reading, writing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
    return {"embedded": embedded, "skipped": read - embedded}


async def generate_embedding(context: Context, call: Call) -> dict[str, Any]:
    raw_ids = call.data.get("memory_ids")
    ids: list[int] | None = None
    if raw_ids is not None:
        if not isinstance(raw_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw_ids):
            raise BadRequest("data.memory_ids must be an array of integers", code="invalid_data")
        if len(raw_ids) > MAX_IDS:
            raise BadRequest(f"data.memory_ids lists more than {MAX_IDS} ids", code="invalid_data")
        ids = raw_ids
    user_id = call.caller.user_id if call.caller.kind == "user" else field_uuid(call.data, "user_id", required=False)
    result = await embed_pending(context.db, context.provider, ids=ids, user_id=user_id)
    async with unit_of_work(context, call) as work:
        work.response = {**result, "model": context.provider.model}
    return work.response


async def process_chat_message(context: Context, call: Call) -> dict[str, Any]:
    data = call.data
    session_id = field_uuid(data, "session_id")
    user_id = field_uuid(data, "user_id")
    content = field_text(data, "content")
    require_own(call, user_id)
    # Who owns the session is settled before any model work: a stranger must not get the model to run for them.
    owner = await context.db.fetch_one(Q["chat_session"], {"session_id": session_id})
    if owner is None:
        return {"preferences": [], "skipped": "the chat session no longer exists"}
    if str(owner["user_id"]) != user_id:
        if call.caller.kind == "user":
            raise Forbidden("a user may only process their own chat sessions", code="not_own_data")
        raise BadRequest("data.user_id is not the chat session's owner", code="invalid_data")
    extractor = context.chat_extractor
    found = await extractor.extract(content) if extractor is not None else preferences.extract(content)
    summary = "; ".join(f"{p.category.replace('_', ' ')}: {p.value} ({p.confidence:.2f})" for p in found)
    # The embedding is computed before the transaction, so no row lock waits on the model.
    vector = (await context.provider.embed([summary]))[0] if found else None
    async with unit_of_work(context, call) as work:
        session = await work.fetch_one(Q["chat_session"], {"session_id": session_id})
        if session is None:
            work.response = {"preferences": [], "skipped": "the chat session no longer exists"}
            return work.response
        if str(session["user_id"]) != user_id:
            raise BadRequest("data.user_id is not the chat session's owner", code="invalid_data")
        if not found:
            work.response = {"preferences": [], "session_memory_id": None, "memories": []}
            return work.response
        await work.fetch_all(Q["lock_user_memories"], {"user_id": user_id})
        session_memory = await work.fetch_one(
            Q["insert_session_memory"],
            {
                "session_id": session_id,
                "user_id": user_id,
                "content": f"Travel preferences: {summary}"[:8192],
                "embedding": to_pgvector(vector) if vector is not None else None,
                "metadata": Jsonb(
                    {
                        "context_type": "travel_preferences",
                        "extractor": extractor.model if extractor is not None else "rules",
                        "message_id": data.get("message_id"),
                        "embedding_model": context.provider.model,
                        "extracted_preferences": [
                            {
                                "category": p.category,
                                "value": p.value,
                                "confidence": p.confidence,
                                "evidence": p.evidence,
                            }
                            for p in found
                        ],
                    }
                ),
            },
        )
        memories: list[dict[str, Any]] = []
        for preference in found:
            existing = await work.fetch_one(
                Q["find_preference"], {"user_id": user_id, "category": preference.category, "value": preference.value}
            )
            if existing is not None:
                row = await work.fetch_one(
                    Q["reinforce_preference"],
                    {
                        "id": existing["id"],
                        "weight": REINFORCE_WEIGHT * preference.confidence,
                        "session_id": session_id,
                    },
                )
                assert row is not None
                memories.append(
                    {
                        "id": existing["id"],
                        "category": preference.category,
                        "value": preference.value,
                        "confidence": round(float(row["confidence"]), 4),
                        "created": False,
                    }
                )
            else:
                row = await work.fetch_one(
                    Q["create_preference"],
                    {
                        "user_id": user_id,
                        "content": preference.describe(),
                        "confidence": preference.confidence,
                        "metadata": Jsonb(
                            {
                                "category": preference.category,
                                "value": preference.value,
                                "source": "chat",
                                "session_id": session_id,
                                "reinforcements": 0,
                            }
                        ),
                    },
                )
                assert row is not None
                memories.append(
                    {
                        "id": row["id"],
                        "category": preference.category,
                        "value": preference.value,
                        "confidence": round(float(row["confidence"]), 4),
                        "created": True,
                    }
                )
        work.response = {
            "preferences": [{"category": p.category, "value": p.value, "confidence": p.confidence} for p in found],
            "session_memory_id": session_memory["id"] if session_memory else None,
            "memories": memories,
        }
    return work.response


async def search(
    db: Database,
    provider: EmbeddingProvider,
    user_id: str,
    text: str,
    *,
    match_count: int = 5,
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A user's memories nearest in meaning to `text` (public.search_memories), of the provider's model."""
    vector = (await provider.embed([text]))[0]
    return await db.fetch_all(
        Q["search_memories"],
        {
            "embedding": to_pgvector(vector),
            "user_id": user_id,
            "match_count": match_count,
            "filters": Jsonb({"model": provider.model, **(filters or {})}),
        },
    )


HANDLERS: dict[str, Handler] = {
    "memory.generate.embedding": generate_embedding,
    "chat.message.process": process_chat_message,
    "test.webhook": acknowledge_test_event,
}
