"""Embeddings benchmark: memories embedded per second end to end (read the pending rows, encode with the local
all-MiniLM-L6-v2 on the CPU, write the vectors), beside raw sentence-transformers `encode` of the same texts with the
same model object and batch size, in the same run. Goal: end to end >= 0.9x raw.

The end-to-end figure is `tripsage.functions.ai_processing.embed_pending`, what memory.generate.embedding runs,
against a fresh embedded PostgreSQL (testkit/harness.Cluster) whose `memories` table keeps its HNSW index. Each round
inserts N new distinct memories (sentences about places, activities, preferences and seasons) and embeds them, so
the index grows round after round as in production; raw `encode` runs on the same N texts in the same round. The
rounds alternate which side goes first, so drift on a shared machine hits both; the ratio reported is the median of
the rounds' ratios. Both paths are warmed up first (torch keeps a thread pool per calling thread).

Two placements, each in its own process:
- shared: the encoder and PostgreSQL share every core (a laptop running `tripsage up`); PostgreSQL's CPU for the
  writes, most of it maintaining the HNSW index, is taken from the encoder's cores;
- split: PostgreSQL runs on half of the cores and the encoder (raw and end to end alike) on the other half, as when
  the database is its own server (Supabase, RDS, Cloud SQL).
PostgreSQL's CPU time per 1,000 memories is measured in both, from /proc.

Run: .venv/bin/python bench/bench_embeddings.py [--full] [--memories N] [--placement shared|split]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit.harness import Cluster, cpu_seconds, machine  # noqa: E402

from tripsage.ai.embeddings import ENCODE_BATCH, LocalProvider  # noqa: E402
from tripsage.db.connector import Database  # noqa: E402
from tripsage.functions.ai_processing import BATCH_SIZE, embed_pending  # noqa: E402

GOAL_FRACTION = 0.9  # of raw encode's rate
WARMUP = 512  # texts encoded by each path before timing

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
SEASONS = [
    "in early spring",
    "during the summer holidays",
    "in autumn",
    "over the winter break",
    "for a long weekend",
    "around new year",
    "in the rainy season",
    "for two weeks in May",
    "at the end of September",
    "whenever flights are cheap",
    "after the conference",
]


def texts(count: int) -> list[str]:
    """`count` distinct memories (up to 21,120), interleaved so that any slice mixes places and activities."""
    combos = itertools.product(SEASONS, PREFERENCES, ACTIVITIES, PLACES)
    out = [f"Loves {activity} in {place} {season}, {preference}" for season, preference, activity, place in combos]
    if count > len(out):
        raise SystemExit(f"at most {len(out)} distinct memories")
    step = 7  # coprime with the count of combinations: a stride through all of them
    return [out[(n * step) % len(out)] for n in range(count)]


def raw_rate(provider: LocalProvider, sample: list[str]) -> float:
    model = provider._load()
    began = time.perf_counter()
    model.encode(sample, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True)
    return len(sample) / (time.perf_counter() - began)


async def end_to_end(cluster: Cluster, provider: LocalProvider, count: int) -> tuple[float, float]:
    """Memories per second, and PostgreSQL's CPU seconds meanwhile (read before the pool's backends exit)."""
    async with Database(cluster.url, max_size=4) as db:
        cpu = cpu_seconds(cluster.pids())
        began = time.perf_counter()
        result = await embed_pending(db, provider)
        elapsed = time.perf_counter() - began
        cpu = cpu_seconds(cluster.pids()) - cpu
    assert result["embedded"] == count, result
    return count / elapsed, cpu


def cpu_sets(placement: str) -> tuple[set[int], set[int]]:
    """The encoder's cores and PostgreSQL's."""
    cpus = sorted(os.sched_getaffinity(0))
    if placement == "shared":
        return set(cpus), set(cpus)
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


def measure(placement: str, count: int, rounds: int, index: bool = True) -> dict[str, Any]:
    """One placement's rounds, in this process (which must not have loaded torch yet)."""
    encoder_cpus, database_cpus = cpu_sets(placement)
    os.sched_setaffinity(0, encoder_cpus)  # before torch starts its threads: they inherit it
    os.environ["OMP_NUM_THREADS"] = str(len(encoder_cpus))
    warm = min(count, WARMUP)
    sample = texts(warm + count * rounds)
    warmup, batches = sample[:warm], [sample[warm + count * n : warm + count * (n + 1)] for n in range(rounds)]
    cluster = Cluster()
    cluster.start()
    cluster.pin(database_cpus)
    provider = LocalProvider()
    raw: list[float] = []
    ours: list[float] = []
    database_cpu: list[float] = []
    try:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            row = conn.execute("INSERT INTO auth.users (email) VALUES ('bench@example.com') RETURNING id").fetchone()
            assert row is not None
            user = row[0]
            if not index:  # attribution only: what the same run costs without maintaining the HNSW index
                conn.execute("DROP INDEX memories_embedding_hnsw_idx")
        raw_rate(provider, warmup)
        asyncio.run(provider.embed(warmup))
        for n, batch in enumerate(batches):
            with psycopg.connect(cluster.url, autocommit=True) as conn, conn.cursor() as cursor:
                rows = [(user, text) for text in batch]
                cursor.executemany("INSERT INTO memories (user_id, content) VALUES (%s, %s)", rows)
            if n % 2:
                rate, cpu = asyncio.run(end_to_end(cluster, provider, count))
                raw.append(raw_rate(provider, batch))
            else:
                raw.append(raw_rate(provider, batch))
                rate, cpu = asyncio.run(end_to_end(cluster, provider, count))
            ours.append(rate)
            database_cpu.append(cpu)
        with psycopg.connect(cluster.url) as conn:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE embedding IS NULL), count(DISTINCT embedding_model) "
                "FROM memories"
            ).fetchone()
            assert row == (count * rounds, 0, 1), row
    finally:
        asyncio.run(provider.close())
        cluster.close()
    return {
        "placement": placement,
        "index": index,
        "encoder_cpus": len(encoder_cpus),
        "database_cpus": len(database_cpus),
        "raw": raw,
        "ours": ours,
        "database_cpu_per_1000": statistics.median(database_cpu) * 1000 / count,
    }


def in_child(placement: str, count: int, rounds: int, index: bool = True) -> dict[str, Any]:
    """`measure` in a fresh process, so its core placement and torch's thread count start clean."""
    command = [sys.executable, __file__, "--placement", placement, "--memories", str(count), "--rounds", str(rounds)]
    command += [] if index else ["--without-index"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{placement} placement failed:\n{result.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def report(results: list[dict[str, Any]], count: int, rounds: int) -> str:
    described = {
        "shared": "encoder and PostgreSQL share all {encoder_cpus} cores",
        "split": "PostgreSQL on {database_cpus} core(s) of its own, encoder on {encoder_cpus}",
    }
    lines = [
        "## Embeddings\n",
        f"{machine()}; local all-MiniLM-L6-v2 (sentence-transformers, CPU, 384 dims), encode batch {ENCODE_BATCH}, "
        f"{BATCH_SIZE} memories per read-encode-write step; {count:,} new distinct memories (10-16 words) per round, "
        f"{rounds} interleaved rounds, into embedded PostgreSQL 18 with pgvector's HNSW index maintained on write "
        "(the index grows round after round).\n",
        "| placement | end to end (read, encode, write), median | raw encode, median | per-round end to end / raw "
        "| fraction of raw (median of rounds) | PostgreSQL CPU per 1,000 memories | goal |",
        "|---|---:|---:|---|---:|---:|---|",
    ]
    for result in results:
        ratios = sorted(o / r for o, r in zip(result["ours"], result["raw"], strict=True))
        rounds_text = ", ".join(f"{o:,.0f} / {r:,.0f}" for o, r in zip(result["ours"], result["raw"], strict=True))
        placement = described[result["placement"]].format(**result)
        if not result["index"]:
            placement += ", HNSW index dropped (attribution only, not the product)"
        lines.append(
            f"| {placement} | {statistics.median(result['ours']):,.0f}/s "
            f"| {statistics.median(result['raw']):,.0f}/s | {rounds_text} | {ratios[len(ratios) // 2]:.2f}x "
            f"| {result['database_cpu_per_1000']:.2f} s | {f'>= {GOAL_FRACTION}x raw' if result['index'] else '-'} |"
        )
    lines.append(
        "\nWith shared cores the encoder already keeps every core busy, so PostgreSQL's CPU for the writes (the "
        "column above, mostly pgvector inserting into the HNSW graph) comes out of the encoder's time: end to end "
        "cannot exceed raw x encode CPU / (encode CPU + PostgreSQL CPU). The row without the index shows the "
        "pipeline's own cost. With PostgreSQL on cores of its own, the writes overlap the encoding and only the last "
        "step's write is not hidden."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the longer run (4,000 memories, 5 rounds)")
    parser.add_argument("--memories", type=int, default=None, help="memories per round (default 1,000; 4,000 full)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per placement (default 3; 5 full)")
    parser.add_argument("--placement", choices=["shared", "split"], help="measure only this one, print JSON")
    parser.add_argument("--without-index", action="store_true", help="with --placement: drop the HNSW index first")
    args = parser.parse_args()
    count = args.memories or (4000 if args.full else 1000)
    rounds = args.rounds or (5 if args.full else 3)
    if args.placement:
        print(json.dumps(measure(args.placement, count, rounds, index=not args.without_index)))
        return
    runs = [("shared", True), ("shared", False)]
    runs += [("split", True)] if len(os.sched_getaffinity(0)) >= 2 else []
    print(report([in_child(placement, count, rounds, index) for placement, index in runs], count, rounds))


if __name__ == "__main__":
    main()
