"""The connector's binary float4[] parameter against a real server: what PostgreSQL receives is exactly the floats
sent, for whole batches of vectors, for an empty array and for extreme values."""

from __future__ import annotations

import array
import contextlib
import random

import psycopg

from tripsage.ai.embeddings import Vectors, to_pgvector
from tripsage.db.connector import Database, Float4Array, Notification, listen


async def _echo(db: Database, values: array.array[float]) -> list[float]:
    """What the server received, as float32 again (psycopg hands float4 back as the shortest decimal's double)."""
    async with db.connection() as conn:
        cursor = await conn.execute("SELECT %b::float4[] AS a", [Float4Array(values)])
        row = await cursor.fetchone()
    assert row is not None
    return array.array("f", row["a"] or []).tolist()


async def test_float4_array_arrives_exactly(db: Database) -> None:
    extremes = array.array("f", [0.0, -0.0, 1.0, -1.5, 3.25e-8, 1e-45, 3.4e38, -3.4e38, float("inf"), float("-inf")])
    assert await _echo(db, extremes) == extremes.tolist()
    rng = random.Random(7)
    batch = array.array("f", [rng.uniform(-1, 1) for _ in range(384 * 300)])
    assert await _echo(db, batch) == batch.tolist()
    assert await _echo(db, array.array("f")) == []


async def test_vectors_become_pgvector_rows(db: Database) -> None:
    vectors = Vectors.from_rows([[0.25, -0.5, 1.0], [2.0, 0.0, -3.5]], 3)
    async with db.connection() as conn:
        cursor = await conn.execute(
            "SELECT ((%(v)b::float4[])[(n - 1) * 3 + 1 : n * 3])::extensions.vector::text"
            " = (%(rows)s::text[])[n]::extensions.vector::text AS same FROM generate_series(1, 2) AS n ORDER BY n",
            {"v": Float4Array(vectors.values), "rows": [to_pgvector(row) for row in vectors]},
        )
        rows = await cursor.fetchall()
    assert [row["same"] for row in rows] == [True, True]


async def test_listen_yields_a_catch_up_then_each_notification_with_its_payload(database: str) -> None:
    notifications = listen(database, ["tripsage_test"])
    async with contextlib.aclosing(notifications):
        assert await anext(notifications) == Notification("")  # LISTEN is in place: the catch-up round
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as sender:
            await sender.execute("SELECT pg_notify('tripsage_test', 'hello')")
        assert await anext(notifications) == Notification("tripsage_test", "hello")
