"""search_cache_lookup: results for the caller only, hits and misses counted, into the success metrics."""

from __future__ import annotations

import json

import psycopg
import pytest

OWNER = "00000000-0000-4000-8000-0000000000d1"
OTHER = "00000000-0000-4000-8000-0000000000d2"


def as_user(conn: psycopg.Connection[tuple[object, ...]], user: str) -> None:
    conn.execute(
        "SELECT set_config('request.jwt.claims', %s, true)", [json.dumps({"sub": user, "role": "authenticated"})]
    )
    conn.execute("SET LOCAL ROLE authenticated")


def test_lookup_counts_hits_and_misses_under_rls(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO auth.users (id) VALUES (%s), (%s)", [OWNER, OTHER])
        conn.execute(
            "INSERT INTO search_hotels (user_id, destination, check_in_date, check_out_date, query_hash, results, "
            "source, expires_at) VALUES (%s, 'Lisbon', '2027-05-01', '2027-05-03', 'q1', '[{\"hotel\": 1}]', "
            "'cached', now() + interval '1 hour'), (%s, 'Lisbon', '2027-05-01', '2027-05-03', 'q-expired', '[]', "
            "'cached', now() - interval '1 minute')",
            [OWNER, OWNER],
        )
        with conn.transaction():
            as_user(conn, OWNER)
            hit = conn.execute("SELECT search_cache_lookup('hotels', 'q1')").fetchone()
            expired = conn.execute("SELECT search_cache_lookup('hotels', 'q-expired')").fetchone()
        with conn.transaction():
            as_user(conn, OTHER)
            # Another user's cache row is invisible under RLS: a miss, even when naming the owner.
            stolen = conn.execute("SELECT search_cache_lookup('hotels', 'q1', %s)", [OWNER]).fetchone()
        assert hit == ([{"hotel": 1}],)
        assert expired == (None,) and stolen == (None,)
        assert conn.execute(
            "SELECT hits, misses FROM monitoring.search_cache_stats WHERE cache = 'hotels'"
        ).fetchone() == (1, 2)
        rate = conn.execute("SELECT value FROM monitoring.success_metrics() WHERE metric = 'cache_hit_rate'").fetchone()
        assert rate is not None and float(rate[0]) == pytest.approx(33.333, abs=0.01)


def test_unknown_cache_is_a_clear_error(database: str) -> None:
    with (
        psycopg.connect(database) as conn,
        pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown search cache trains"),
    ):
        conn.execute("SELECT search_cache_lookup('trains', 'q')")


def test_slow_queries_view_ranks_statements(database: str) -> None:
    with psycopg.connect(database) as conn:
        conn.execute("SELECT pg_sleep(0.01)")
        rows = conn.execute(
            "SELECT query, calls, total_ms FROM monitoring.slow_queries WHERE query LIKE 'SELECT pg_sleep%'"
        ).fetchall()
    assert rows and rows[0][1] >= 1 and float(rows[0][2]) >= 10
