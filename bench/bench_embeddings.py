"""Embeddings benchmark: memories embedded per second end to end (read the pending rows, encode with the local
all-MiniLM-L6-v2 on the CPU, write the vectors), beside raw sentence-transformers `encode` of the same texts with the
same model object and batch size, in the same run. Goal: end to end >= 0.9x raw.

The memories are N distinct sentences about travel (places, activities, preferences combined), inserted into a
fresh embedded PostgreSQL (bench/harness.Cluster) before timing; the end-to-end figure is
`tripsage.functions.ai_processing.embed_pending`, what memory.generate.embedding runs. Raw and end to end are
measured in interleaved rounds (alternating which goes first; the memories are reset to pending between rounds), so
drift on a shared machine hits both; the ratio reported is the median of the rounds' ratios.

Run: .venv/bin/python bench/bench_embeddings.py [--full] [--memories N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.harness import Cluster, machine  # noqa: E402

from tripsage.ai.embeddings import ENCODE_BATCH, LocalProvider  # noqa: E402
from tripsage.db.connector import Database  # noqa: E402
from tripsage.functions.ai_processing import embed_pending  # noqa: E402

GOAL_FRACTION = 0.9  # of raw encode's rate

PLACES = [
    "Kyoto",
    "Lisbon",
    "the Swiss Alps",
    "Patagonia",
    "Marrakech",
    "Iceland",
    "Bali",
    "New Orleans",
    "Hanoi",
    "the Scottish Highlands",
    "Cape Town",
    "Oaxaca",
    "Vienna",
    "the Amalfi Coast",
    "Tasmania",
    "Istanbul",
]
ACTIVITIES = [
    "hiking long trails",
    "eating street food",
    "visiting quiet temples",
    "surfing at dawn",
    "wine tasting",
    "museum hopping",
    "photographing old architecture",
    "taking cooking classes",
    "snorkelling over reefs",
    "cycling between villages",
    "listening to live jazz",
    "shopping in markets",
]
PREFERENCES = [
    "on a tight budget",
    "in boutique hotels",
    "with two young children",
    "at a relaxed pace",
    "as a vegetarian",
    "travelling solo",
    "for our honeymoon",
    "in a rented camper van",
    "with a packed schedule",
    "avoiding crowded tourist spots",
]


def texts(count: int) -> list[str]:
    combos = itertools.product(PLACES, ACTIVITIES, PREFERENCES)
    out = [f"Loves {activity} in {place}, {preference}" for place, activity, preference in combos]
    while len(out) < count:  # more than the combinations: number the repeats so every text stays distinct
        out.extend(f"{text} (trip {len(out) // len(out[:1920]) + 1})" for text in out[:1920])
    return out[:count]


def raw_rate(provider: LocalProvider, sample: list[str]) -> float:
    model = provider._load()
    began = time.perf_counter()
    model.encode(sample, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True)
    return len(sample) / (time.perf_counter() - began)


async def end_to_end(url: str, provider: LocalProvider, count: int) -> float:
    async with Database(url, max_size=4) as db:
        began = time.perf_counter()
        result = await embed_pending(db, provider)
        elapsed = time.perf_counter() - began
    assert result["embedded"] == count, result
    return count / elapsed


def run(full: bool, memories: int | None = None) -> str:
    count = memories or (4000 if full else 1000)
    rounds = 5 if full else 3
    sample = texts(count)
    cluster = Cluster()
    cluster.start()
    provider = LocalProvider()
    raw: list[float] = []
    ours: list[float] = []
    try:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            user = conn.execute("INSERT INTO auth.users (email) VALUES ('bench@example.com') RETURNING id").fetchone()
            assert user is not None
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO memories (user_id, content) VALUES (%s, %s)", [(user[0], text) for text in sample]
                )
        raw_rate(provider, sample[:512])  # load the model and warm up
        for n in range(rounds):
            # Interleaved, alternating which goes first, so drift on a shared machine hits both sides alike.
            if n:
                with psycopg.connect(cluster.url, autocommit=True) as conn:
                    conn.execute("UPDATE memories SET embedding = NULL, embedding_model = NULL, embedded_at = NULL")
            if n % 2 == 0:
                raw.append(raw_rate(provider, sample))
                ours.append(asyncio.run(end_to_end(cluster.url, provider, count)))
            else:
                ours.append(asyncio.run(end_to_end(cluster.url, provider, count)))
                raw.append(raw_rate(provider, sample))
        with psycopg.connect(cluster.url) as conn:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE embedding IS NULL), count(DISTINCT embedding_model) FROM memories"
            ).fetchone()
            assert row == (0, 1), row
    finally:
        asyncio.run(provider.close())
        cluster.close()
    ratios = sorted(o / r for o, r in zip(ours, raw, strict=True))
    median_ratio = ratios[len(ratios) // 2]
    lines = [
        "## Embeddings\n",
        f"{machine()}; local all-MiniLM-L6-v2 (sentence-transformers, CPU, 384 dims), batch {ENCODE_BATCH}; "
        f"{count:,} distinct memories (8-14 words) per round, {rounds} interleaved rounds; embedded PostgreSQL 18 "
        "with pgvector (HNSW index maintained on write).\n",
        "| figure | ours | baseline | goal |",
        "|---|---:|---|---|",
        f"| memories embedded/s end to end (read, encode, write), median | {statistics.median(ours):,.0f} "
        f"| raw encode {statistics.median(raw):,.0f}/s (median) | >= {GOAL_FRACTION}x raw |",
        f"| per-round rates | {', '.join(f'{o:,.0f}' for o in ours)} | {', '.join(f'{r:,.0f}' for r in raw)} | - |",
        f"| fraction of raw encode (median of rounds) | {median_ratio:.2f}x | 1.00x | >= {GOAL_FRACTION}x |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the longer run (4,000 memories, 5 rounds)")
    parser.add_argument("--memories", type=int, default=None, help="memories per round (default 1,000; 4,000 full)")
    args = parser.parse_args()
    print(run(args.full, args.memories))


if __name__ == "__main__":
    main()
