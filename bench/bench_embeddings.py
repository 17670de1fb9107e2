"""Embeddings benchmark: memories embedded per second end to end (read the pending rows, encode with the local
all-MiniLM-L6-v2 on the CPU, write the vectors), beside raw sentence-transformers `encode` of the same texts with the
same model object and batch size, in the same run. Goal: end to end >= 0.9x raw, with recall@10 of the app's search
>= 0.99 of exact search.

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
PostgreSQL's CPU time per 1,000 memories is measured in both, from /proc, and the encoder's process CPU time
(end to end and raw encode), which gives the cost line for bench/RESULTS.md.

Recall: after the rounds (ANALYZE first, as autovacuum would), 200 held-out query texts (questions never stored as
memories) encoded by the same model are searched with public.search_memories exactly as the app calls it, and in a
second session with index scans disabled (exact search); recall@10 of the first against the second is reported
beside the goal (>= 0.99), with the count of searches auto_explain saw go through memories_embedding_hnsw_idx, and
both against float32 brute force over the vectors raw encode computed.

Run: .venv/bin/python bench/bench_embeddings.py [--full] [--memories N] [--placement shared|split]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from testkit.harness import Cluster, cost_line, cpu_seconds, machine  # noqa: E402

from tripsage import queries_for  # noqa: E402
from tripsage.ai.embeddings import ENCODE_BATCH, LocalProvider, to_pgvector  # noqa: E402
from tripsage.db.connector import Database  # noqa: E402
from tripsage.functions.ai_processing import BATCH_SIZE, READ_SIZE, embed_pending  # noqa: E402

GOAL_FRACTION = 0.9  # of raw encode's rate
GOAL_RECALL = 0.99  # recall@10 of the index, as the app queries it, against exact search
RECALL_QUERIES = 200  # held-out query texts
RECALL_K = 10
SEARCH = queries_for("tripsage.functions")["search_memories"].sql  # what the app runs (public.search_memories)
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


# Held-out queries for recall: questions a traveller would type, in words of their own, never stored as memories.
QUESTIONS = [
    "Where could I go {activity} {season}?",
    "Ideas for a trip to {place} {preference}",
    "What did I say about {place}?",
    "Somewhere good for {activity} {preference}",
    "Plan {season} in {place} for me",
    "Which destinations suit {activity}?",
    "Any memories about holidays {preference} {season}?",
    "I want {activity} near {place}",
]


def queries(count: int) -> list[str]:
    """`count` distinct held-out query texts (seeded, so every run asks the same ones)."""
    chooser = random.Random(19)
    out: dict[str, None] = {}
    while len(out) < count:
        question = chooser.choice(QUESTIONS)
        activity, place = chooser.choice(ACTIVITIES), chooser.choice(PLACES)
        preference, season = chooser.choice(PREFERENCES), chooser.choice(SEASONS)
        out[question.format(activity=activity, place=place, preference=preference, season=season)] = None
    return list(out)


def texts(count: int) -> list[str]:
    """`count` distinct memories (up to 21,120), interleaved so that any slice mixes places and activities."""
    combos = itertools.product(SEASONS, PREFERENCES, ACTIVITIES, PLACES)
    out = [f"Loves {activity} in {place} {season}, {preference}" for season, preference, activity, place in combos]
    if count > len(out):
        raise SystemExit(f"at most {len(out)} distinct memories")
    step = 7  # coprime with the count of combinations: a stride through all of them
    return [out[(n * step) % len(out)] for n in range(count)]


def own_cpu() -> float:
    """CPU seconds of this process so far, every thread (torch's, the encoding executor's, the event loop's)."""
    return cpu_seconds([os.getpid()])


def raw_rate(provider: LocalProvider, sample: list[str]) -> tuple[float, float, Any]:
    """Texts per second of raw `encode`, its CPU seconds, and the vectors (float32, normalized)."""
    model = provider._load()
    cpu = own_cpu()
    began = time.perf_counter()
    vectors = model.encode(sample, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True)
    return len(sample) / (time.perf_counter() - began), own_cpu() - cpu, vectors


async def end_to_end(cluster: Cluster, provider: LocalProvider, count: int) -> tuple[float, float, float]:
    """Memories per second, PostgreSQL's CPU seconds meanwhile (read before the pool's backends exit), and this
    process's (the encoder's and the pipeline's)."""
    async with Database(cluster.url, max_size=4) as db:
        cpu = cpu_seconds(cluster.pids())
        encoder_cpu = own_cpu()
        began = time.perf_counter()
        result = await embed_pending(db, provider)
        elapsed = time.perf_counter() - began
        encoder_cpu = own_cpu() - encoder_cpu
        cpu = cpu_seconds(cluster.pids()) - cpu
    assert result["embedded"] == count, result
    return count / elapsed, cpu, encoder_cpu


def recall(url: str, provider: LocalProvider, user: Any, stored: dict[str, Any]) -> dict[str, Any]:
    """recall@10 of the app's search (public.search_memories through the HNSW index, as the app calls it) against
    exact search (the same call in a session with index scans disabled: a sequential scan and a sort), over held-out
    queries encoded by the same model. The exact side has its own session, so it never shares a cached plan with the
    approximate one. auto_explain reports each search's inner plan, so the figure is known to come from the index;
    the exact side is also checked against float32 brute force over the vectors raw `encode` computed."""
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(url, autocommit=True) as exact_conn:
        conn.execute("ANALYZE public.memories")  # as autovacuum would: the planner then knows the table's size
        exact_conn.execute("SET enable_indexscan = off")
        conn.execute("LOAD 'auto_explain'")
        for setting, value in (("log_min_duration", "0"), ("log_nested_statements", "on"), ("log_level", "notice")):
            conn.execute("SELECT set_config(%s, %s, false)", (f"auto_explain.{setting}", value))
        plans: list[str] = []
        conn.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        ids = {content: memory_id for memory_id, content in conn.execute("SELECT id, content FROM public.memories")}
        order = [ids[content] for content in stored]
        matrix = np.stack(list(stored.values()))
        vectors = provider._load().encode(queries(RECALL_QUERIES), batch_size=ENCODE_BATCH, normalize_embeddings=True)
        found = exact_hits = brute_hits = indexed = 0
        filters = Jsonb({"model": provider.model})
        for vector in vectors:
            params = {
                "embedding": to_pgvector(vector.tolist()),
                "user_id": user,
                "match_count": RECALL_K,
                "filters": filters,
            }
            plans.clear()
            approximate = {row[0] for row in conn.execute(SEARCH, params)}
            indexed += any("Index Scan using memories_embedding_hnsw_idx" in plan for plan in plans)
            exact = {row[0] for row in exact_conn.execute(SEARCH, params)}
            brute = {order[n] for n in np.argsort(-(matrix @ vector))[:RECALL_K]}
            found += len(approximate & exact)
            exact_hits += len(exact & brute)
            brute_hits += len(approximate & brute)
    asked = len(vectors) * RECALL_K
    return {
        "recall": found / asked,
        "recall_float32": brute_hits / asked,
        "exact_float32": exact_hits / asked,
        "queries": len(vectors),
        "indexed": indexed,
        "rows": len(order),
    }


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
    encoder_cpu: list[float] = []
    raw_cpu: list[float] = []
    stored: dict[str, Any] = {}
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
                rate, cpu, ours_cpu = asyncio.run(end_to_end(cluster, provider, count))
                raw_measured = raw_rate(provider, batch)
            else:
                raw_measured = raw_rate(provider, batch)
                rate, cpu, ours_cpu = asyncio.run(end_to_end(cluster, provider, count))
            raw.append(raw_measured[0])
            raw_cpu.append(raw_measured[1])
            stored.update(zip(batch, raw_measured[2], strict=True))
            ours.append(rate)
            database_cpu.append(cpu)
            encoder_cpu.append(ours_cpu)
        with psycopg.connect(cluster.url) as conn:
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE embedding IS NULL), count(DISTINCT embedding_model) "
                "FROM memories"
            ).fetchone()
            assert row == (count * rounds, 0, 1), row
        recalled = recall(cluster.url, provider, user, stored) if index else None
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
        "encoder_cpu_per_1000": statistics.median(encoder_cpu) * 1000 / count,
        "raw_cpu_per_1000": statistics.median(raw_cpu) * 1000 / count,
        "memories": count * rounds,
        "database_cpu": sum(database_cpu),
        "encoder_cpu": sum(encoder_cpu),
        "recall": recalled,
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
        f"memories read {READ_SIZE} at a time, encoded longest first and written {BATCH_SIZE} per step; "
        f"{count:,} new distinct memories (10-16 words) per round, "
        f"{rounds} interleaved rounds, into embedded PostgreSQL 18 with pgvector's HNSW index maintained on write "
        "(the product's: m = 8, ef_construction = 64; the index grows round after round).\n",
        "| placement | end to end (read, encode, write), median | raw encode, median | per-round end to end / raw "
        "| fraction of raw (median of rounds) | PostgreSQL CPU per 1,000 memories | encoder process CPU per 1,000 "
        "(end to end / raw) | CPU-time fraction: raw / (end to end + PostgreSQL) | recall@10 vs exact | goal |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    costs = []
    for result in results:
        ratios = sorted(o / r for o, r in zip(result["ours"], result["raw"], strict=True))
        rounds_text = ", ".join(f"{o:,.0f} / {r:,.0f}" for o, r in zip(result["ours"], result["raw"], strict=True))
        placement = described[result["placement"]].format(**result)
        recalled = result["recall"]
        if not result["index"]:
            placement += ", HNSW index dropped (attribution only, not the product)"
        goal = f">= {GOAL_FRACTION}x raw, recall >= {GOAL_RECALL}" if result["index"] else "-"
        recall_text = f"{recalled['recall']:.3f}" if recalled else "-"
        spent = result["encoder_cpu_per_1000"] + result["database_cpu_per_1000"]
        cpu_fraction = f"{result['raw_cpu_per_1000'] / spent:.2f}x" if result["placement"] == "shared" else "-"
        lines.append(
            f"| {placement} | {statistics.median(result['ours']):,.0f}/s "
            f"| {statistics.median(result['raw']):,.0f}/s | {rounds_text} | {ratios[len(ratios) // 2]:.2f}x "
            f"| {result['database_cpu_per_1000']:.2f} s "
            f"| {result['encoder_cpu_per_1000']:.2f} s / {result['raw_cpu_per_1000']:.2f} s | {cpu_fraction} "
            f"| {recall_text} | {goal} |"
        )
        if result["index"]:
            costs.append(
                cost_line(
                    "embeddings",
                    result["memories"],
                    result["database_cpu"],
                    result["encoder_cpu"],
                    f"{result['placement']} cores; runtime = the encoder's process",
                )
            )
    for result in results:
        recalled = result["recall"]
        if recalled:
            lines.append(
                f"\nRecall ({result['placement']}): {recalled['queries']} held-out query texts (questions never stored "
                f"as memories) encoded by the same model, against the {recalled['rows']:,} memories embedded above. "
                f"recall@{RECALL_K} of public.search_memories as the app calls it = {recalled['recall']:.4f} of exact "
                f"search (the same call with index scans disabled); {recalled['indexed']} of {recalled['queries']} "
                "searches used memories_embedding_hnsw_idx (auto_explain). Against float32 brute force over raw "
                f"encode's vectors: the index {recalled['recall_float32']:.4f}, the exact search "
                f"{recalled['exact_float32']:.4f}."
            )
    lines.append(
        "\nCPU-time fraction (shared cores): when the encoder and PostgreSQL saturate the cores, time is their CPU "
        "divided by the cores, so end to end / raw comes to raw encode's CPU over end to end's (the encoder's process "
        "plus PostgreSQL's). Other work on the machine moves it much less than the rates (it still inflates the "
        "encoder's CPU per memory a little); the rates need a quiet machine."
    )
    lines.append(
        "\nWith shared cores the encoder already keeps every core busy, so PostgreSQL's CPU for the writes (the "
        "column above, mostly pgvector inserting into the HNSW graph) comes out of the encoder's time: end to end "
        "cannot exceed raw x encode CPU / (encode CPU + PostgreSQL CPU). The row without the index shows the "
        "pipeline's own cost. With PostgreSQL on cores of its own, the writes overlap the encoding and only the last "
        "step's write is not hidden."
    )
    return "\n".join([*lines, "", *costs])


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
