"""The eight maintenance jobs (and the run-history retention job) on realistic generated data, on both servers:
counts before and after, and nothing lost that must be kept. Each job is run by its scheduled command, as the
scheduler would run it (a top-level statement in autocommit)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from testkit import servers

Conn = psycopg.Connection[tuple[Any, ...]]


def scalar(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def run_job(conn: Conn, name: str) -> Any:
    """Execute the job's command from cron.job exactly as stored; the first column of its result."""
    command = scalar(conn, "SELECT command FROM cron.job WHERE jobname = %s", (name,))
    cursor = conn.execute(command)
    if cursor.description is None:
        return cursor.statusmessage
    row = cursor.fetchone()
    return None if row is None else row[0]


def many(conn: Conn, script: str, params: dict[str, Any]) -> None:
    """Several statements with parameters (the extended protocol takes one at a time)."""
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement, params)


def users(conn: Conn, count: int) -> list[Any]:
    rows = conn.execute(
        "INSERT INTO auth.users (email) SELECT 'traveller' || g || '-' || gen_random_uuid() || '@example.com' "
        "FROM generate_series(1, %s) g RETURNING id",
        (count,),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def conn(database: str) -> Any:
    with psycopg.connect(database, autocommit=True) as connection:
        yield connection


def test_cleanup_expired_search_cache(conn: Conn) -> None:
    people = users(conn, 20)
    many(
        conn,
        """
        INSERT INTO search_destinations (user_id, query, query_hash, results, source, expires_at)
        SELECT (%(u)s::uuid[])[1 + g %% 20], 'city ' || g, md5(g::text), '{"hits": []}', 'google_maps',
               now() + (CASE WHEN g %% 5 < 2 THEN -1 ELSE 1 END) * (g %% 97 + 1) * interval '1 hour'
        FROM generate_series(1, 3000) g;
        INSERT INTO search_flights (user_id, origin, destination, departure_date, query_hash, results, source,
                                    expires_at)
        SELECT (%(u)s::uuid[])[1 + g %% 20], 'JFK', 'LHR', current_date + g %% 60, md5(g::text), '{}', 'duffel',
               now() + (CASE WHEN g %% 3 = 0 THEN -1 ELSE 1 END) * interval '10 minutes'
        FROM generate_series(1, 2000) g;
        INSERT INTO search_hotels (user_id, destination, check_in_date, check_out_date, query_hash, results, source,
                                   expires_at)
        SELECT (%(u)s::uuid[])[1 + g %% 20], 'Lisbon', current_date, current_date + 3, md5(g::text), '{}', 'booking',
               now() - interval '1 day'
        FROM generate_series(1, 1200) g;
        INSERT INTO search_activities (user_id, destination, query_hash, results, source, expires_at)
        SELECT (%(u)s::uuid[])[1 + g %% 20], 'Kyoto', md5(g::text), '{}', 'viator', now() + interval '1 day'
        FROM generate_series(1, 500) g;
        """,
        {"u": people},
    )
    expired = {
        table: scalar(conn, f"SELECT count(*) FROM {table} WHERE expires_at < now()")  # noqa: S608 (fixed names)
        for table in ("search_destinations", "search_flights", "search_hotels", "search_activities")
    }
    kept = {
        table: scalar(conn, f"SELECT count(*) FROM {table} WHERE expires_at >= now()")  # noqa: S608
        for table in expired
    }
    assert expired["search_destinations"] == 1200 and expired["search_hotels"] == 1200
    # A writer holding an expired row: the cleanup skips it rather than waiting (the next run takes it).
    with psycopg.connect(conn.info.dsn) as writer:
        locked = scalar(writer, "SELECT id FROM search_hotels ORDER BY id LIMIT 1 FOR UPDATE")
        deleted = run_job(conn, "cleanup-expired-search-cache")
        writer.rollback()
    assert deleted == {**expired, "search_hotels": expired["search_hotels"] - 1}
    assert scalar(conn, "SELECT array_agg(id) FROM search_hotels") == [locked]
    for table, count in kept.items():
        assert scalar(conn, f"SELECT count(*) FROM {table}") == count + (1 if table == "search_hotels" else 0)  # noqa: S608
    again = scalar(conn, "CALL maintenance.cleanup_expired_search_cache(100)")
    assert again == {"search_destinations": 0, "search_flights": 0, "search_hotels": 1, "search_activities": 0}


def test_archive_old_session_memories(conn: Conn) -> None:
    people = users(conn, 5)
    many(
        conn,
        """
        INSERT INTO chat_sessions (user_id) SELECT unnest(%(u)s::uuid[]);
        INSERT INTO session_memories (session_id, user_id, content, metadata, created_at)
        SELECT s.id, s.user_id, 'remember ' || g || ' for ' || s.id, jsonb_build_object('n', g),
               now() - (g %% 60) * interval '1 day' - interval '1 hour'
        FROM chat_sessions s, generate_series(1, 400) g;
        """,
        {"u": people},
    )
    before = scalar(
        conn, "SELECT md5(string_agg(id || content || metadata::text, ',' ORDER BY id)) FROM session_memories"
    )
    old = scalar(conn, "SELECT count(*) FROM session_memories WHERE created_at < now() - interval '30 days'")
    total = scalar(conn, "SELECT count(*) FROM session_memories")
    assert old > 0
    result = run_job(conn, "archive-old-session-memories")
    assert result == {"archived": old}
    assert scalar(conn, "SELECT count(*) FROM session_memories") == total - old
    assert scalar(conn, "SELECT count(*) FROM session_memories WHERE created_at < now() - interval '30 days'") == 0
    after = scalar(
        conn,
        "SELECT md5(string_agg(id || content || metadata::text, ',' ORDER BY id)) FROM ("
        " SELECT id, content, metadata FROM session_memories"
        " UNION ALL SELECT id, content, metadata FROM session_memories_archive) both_tables",
    )
    assert after == before  # every row is in exactly one of the two tables, unchanged
    assert scalar(conn, "SELECT maintenance.archive_old_session_memories(p_batch_size := 7)") == {"archived": 0}


def test_update_table_statistics_and_vacuum(conn: Conn) -> None:
    people = users(conn, 3)
    conn.execute(
        "INSERT INTO trips (user_id, name, destination, start_date, end_date) "
        "SELECT (%s::uuid[])[1 + g %% 3], 'Trip ' || g, 'Porto', current_date, current_date + 2 "
        "FROM generate_series(1, 300) g",
        (people,),
    )
    assert run_job(conn, "update-table-statistics") == {"analyzed": 16}
    assert scalar(conn, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'trips'")
    assert scalar(conn, "SELECT reltuples FROM pg_class WHERE oid = 'public.trips'::regclass") == 300
    conn.execute("DELETE FROM trips WHERE id % 2 = 0")
    assert run_job(conn, "vacuum-maintenance") == "VACUUM"
    assert scalar(conn, "SELECT reltuples FROM pg_class WHERE oid = 'public.trips'::regclass") == 150


def test_monitor_expiring_api_keys(conn: Conn) -> None:
    (alice, bob) = users(conn, 2)
    conn.execute(
        """
        INSERT INTO api_keys (user_id, service_name, key_name, encrypted_key, key_hash, is_active, expires_at) VALUES
            (%(a)s, 'openai', 'main', '\\x00', 'h1', true, now() + interval '3 days'),
            (%(a)s, 'duffel', 'prod', '\\x00', 'h2', true, now() + interval '6 days 23 hours'),
            (%(a)s, 'google', 'maps', '\\x00', 'h3', true, now() + interval '10 days'),
            (%(b)s, 'openai', 'old', '\\x00', 'h4', true, now() - interval '1 day'),
            (%(b)s, 'openai', 'off', '\\x00', 'h5', false, now() + interval '2 days'),
            (%(b)s, 'viator', 'x', '\\x00', 'h6', true, NULL),
            (%(b)s, 'booking', 'y', '\\x00', 'h7', true, now() + interval '1 day')
        """,
        {"a": alice, "b": bob},
    )
    assert run_job(conn, "monitor-expiring-api-keys") == {"expiring": 3, "notified": 3}
    rows = conn.execute(
        "SELECT user_id, message, metadata ->> 'key_name' FROM notifications WHERE type = 'api_key_expiring' "
        "ORDER BY metadata ->> 'key_name'"
    ).fetchall()
    assert [(r[0], r[2]) for r in rows] == [(alice, "main"), (alice, "prod"), (bob, "y")]
    assert rows[0][1] == 'Your openai API key "main" will expire in 3 days'
    # At most one per key per 7 days: a second run (and a third) notifies nobody again.
    assert run_job(conn, "monitor-expiring-api-keys") == {"expiring": 3, "notified": 0}
    assert scalar(conn, "SELECT maintenance.monitor_expiring_api_keys()") == {"expiring": 3, "notified": 0}
    assert scalar(conn, "SELECT count(*) FROM notifications") == 3
    assert scalar(conn, "SELECT count(*) FROM webhooks.events WHERE event_type = 'api_key.expiring'") == 3
    # A notification older than 7 days no longer counts.
    conn.execute("UPDATE notifications SET created_at = now() - interval '8 days', dedupe_key = NULL")
    assert scalar(conn, "SELECT maintenance.monitor_expiring_api_keys()") == {"expiring": 3, "notified": 3}


def test_archive_completed_trips_reversibly(conn: Conn) -> None:
    people = users(conn, 4)
    conn.execute(
        """
        INSERT INTO trips (user_id, name, destination, start_date, end_date, status, updated_at)
        SELECT (%(u)s::uuid[])[1 + g %% 4], 'Trip ' || g, 'Oslo', date '2023-05-01', date '2023-05-09',
               (ARRAY['planning', 'booked', 'completed', 'cancelled', 'completed'])[1 + g %% 5],
               now() - (g %% 3) * interval '200 days'
        FROM generate_series(1, 500) g
        """,
        {"u": people},
    )
    due = scalar(
        conn, "SELECT count(*) FROM trips WHERE status = 'completed' AND updated_at < now() - interval '1 year'"
    )
    statuses_before = dict(conn.execute("SELECT status, count(*) FROM trips GROUP BY status").fetchall())
    assert due > 0
    assert run_job(conn, "archive-completed-trips") == {"archived": due}
    statuses = dict(conn.execute("SELECT status, count(*) FROM trips GROUP BY status").fetchall())
    assert statuses["archived"] == due
    assert statuses["completed"] == statuses_before["completed"] - due
    assert statuses["planning"] == statuses_before["planning"]
    assert (
        scalar(conn, "SELECT count(*) FROM trips WHERE status = 'archived' AND status_before_archive <> 'completed'")
        == 0
    )
    trip = scalar(conn, "SELECT min(id) FROM trips WHERE status = 'archived'")
    assert scalar(conn, "SELECT maintenance.unarchive_trip(%s)", (trip,)) == "completed"
    assert scalar(conn, "SELECT status || coalesce(archived_at::text, '-') FROM trips WHERE id = %s", (trip,)) == (
        "completed-"
    )
    with pytest.raises(psycopg.errors.NoDataFound, match=f"trip {trip} is not archived"):
        conn.execute("SELECT maintenance.unarchive_trip(%s)", (trip,))
    assert run_job(conn, "archive-completed-trips") == {"archived": 0}  # it was touched just now


def test_generate_memory_embeddings_enqueues_without_marking(conn: Conn) -> None:
    people = users(conn, 3)
    many(
        conn,
        """
        INSERT INTO memories (user_id, content, metadata)
        SELECT (%(u)s::uuid[])[1 + g %% 3], 'likes window seats ' || g, '{"k": 1}' FROM generate_series(1, 250) g;
        INSERT INTO memories (user_id, content, embedding, embedding_model)
        SELECT (%(u)s::uuid[])[1 + g %% 3], 'embedded ' || g,
               array_fill(0.5::real, ARRAY[vector_dims_of_memories()])::extensions.vector, 'test-model'
        FROM generate_series(1, 20) g;
        """.replace(
            "vector_dims_of_memories()",
            "(SELECT atttypmod FROM pg_attribute WHERE attrelid = 'public.memories'::regclass "
            "AND attname = 'embedding')",
        ),
        {"u": people},
    )
    before = scalar(
        conn, "SELECT md5(string_agg(id || metadata::text || coalesce(embedded_at::text, ''), ',')) FROM memories"
    )
    # ai_processing subscribes to memory.generate.embedding; active, its deliveries stay pending here.
    conn.execute("UPDATE webhook_configs SET is_active = true WHERE name = 'ai_processing'")
    assert run_job(conn, "generate-memory-embeddings") == {"pending": 250, "events": 3}
    events = conn.execute(
        "SELECT payload FROM webhooks.events WHERE event_type = 'memory.generate.embedding' "
        "AND payload ->> 'source' = 'scheduled' ORDER BY id"
    ).fetchall()
    ids = [i for (payload,) in events for i in payload["memory_ids"]]
    assert len(ids) == 250 == len(set(ids))
    assert scalar(conn, "SELECT count(*) FROM memories WHERE id = ANY(%s) AND embedding IS NULL", (ids,)) == 250
    # Nothing marked as done, nothing changed.
    assert (
        scalar(
            conn, "SELECT md5(string_agg(id || metadata::text || coalesce(embedded_at::text, ''), ',')) FROM memories"
        )
        == before
    )
    # Still pending delivery: not enqueued twice.
    run_job(conn, "generate-memory-embeddings")
    assert scalar(conn, "SELECT count(*) FROM webhooks.events WHERE payload ->> 'source' = 'scheduled'") == 3


def test_monitor_database_health(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO cron.job_run_details (jobid, status, return_message, start_time, end_time) VALUES "
        "(1, 'failed', 'boom', now() - interval '10 minutes', now() - interval '9 minutes'), "
        "(1, 'failed', 'old', now() - interval '2 hours', now() - interval '2 hours'), "
        "(1, 'succeeded', 'SELECT 1', now() - interval '5 minutes', now() - interval '5 minutes')"
    )
    before = scalar(conn, "SELECT coalesce(max(id), 0) FROM system_metrics")  # only this run's rows count
    result = run_job(conn, "monitor-database-health")
    metrics = {
        name: (value, meta)
        for name, value, meta in conn.execute(
            "SELECT metric_name, value, metadata FROM system_metrics WHERE metric_type = 'database'"
            " AND metric_name <> 'connections' AND id > %s",
            (before,),
        ).fetchall()
    }
    connections = conn.execute(
        "SELECT metadata ->> 'state', value FROM system_metrics WHERE metric_name = 'connections' AND id > %s",
        (before,),
    ).fetchall()
    assert result == {"rows": 8 + len(connections)}
    assert {state for state, _ in connections} >= {"active"}
    assert set(metrics) == {
        "database_size_bytes",
        "cache_hit_ratio",
        "commits",
        "rollbacks",
        "deadlocks",
        "longest_query_seconds",
        "webhook_backlog",
        "failed_job_runs_1h",
    }
    assert metrics["failed_job_runs_1h"][0] == 1
    assert metrics["database_size_bytes"][0] > 1_000_000
    assert 0 <= metrics["cache_hit_ratio"][0] <= 1
    assert metrics["webhook_backlog"][0] == scalar(conn, "SELECT webhook_outbox_depth()")
    json.dumps(metrics["longest_query_seconds"][1])


def test_cleanup_job_run_details(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO cron.job_run_details (jobid, status, start_time, end_time) VALUES "
        "(1, 'succeeded', now() - interval '9 days', now() - interval '9 days'), "
        "(1, 'failed', now() - interval '8 days', now() - interval '8 days'), "
        "(1, 'succeeded', now() - interval '6 days', now() - interval '6 days'), "
        "(1, 'running', now() - interval '10 days', NULL)"
    )
    conn.execute(
        "INSERT INTO cron.job_tick (jobid, tick, outcome) VALUES (1, now() - interval '8 days', 'started'), "
        "(1, now() - interval '1 day', 'skipped')"
    )
    assert run_job(conn, "cleanup-job-run-details") == {"runs": 2, "ticks": 1}
    assert scalar(conn, "SELECT array_agg(status ORDER BY status) FROM cron.job_run_details") == [
        "running",
        "succeeded",
    ]


def test_each_job_runs_in_the_native_pg_cron_database(system_server: servers.Server) -> None:
    """The same commands, in `postgres` where native pg_cron 1.4.2 schedules them."""
    with psycopg.connect(system_server.admin_url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT jobname FROM cron.job WHERE command LIKE '%%maintenance.%%' OR command LIKE 'VACUUM%%'"
            ).fetchall()
        ]
        assert len(names) == 10  # the eight, and our two retention jobs
        results = {name: run_job(conn, name) for name in names}
    assert results["vacuum-maintenance"] == "VACUUM"
    assert results["update-table-statistics"] == {"analyzed": 16}
    assert set(results["cleanup-expired-search-cache"]) == {
        "search_destinations",
        "search_flights",
        "search_hotels",
        "search_activities",
    }
    assert results["monitor-database-health"]["rows"] >= 9
    assert results["cleanup-system-metrics"] == {"rows": 0}


def test_cleanup_system_metrics(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO system_metrics (metric_type, metric_name, value, metadata, created_at) VALUES "
        "('database', 'commits', 1, '{\"test\": 1}', now() - interval '31 days'), "
        "('runtime', 'realtime_latency_p95_ms', 2, '{\"test\": 1}', now() - interval '30 days 1 minute'), "
        "('database', 'commits', 3, '{\"test\": 1}', now() - interval '29 days'), "
        "('database', 'commits', 4, '{\"test\": 1}', now())"
    )
    assert run_job(conn, "cleanup-system-metrics") == {"rows": 2}
    kept = "SELECT array_agg(value::int ORDER BY value) FROM system_metrics WHERE metadata ? 'test'"
    assert scalar(conn, kept) == [3, 4]
