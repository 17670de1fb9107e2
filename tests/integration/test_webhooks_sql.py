"""The webhooks schema on both servers: emit_event's contract, the event triggers (which never make a write fail),
the seed configs, and the SQL API's clear errors."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from testkit import servers

from tripsage import queries_for
from tripsage.db.migrations import Deployer

OWNER = "00000000-0000-4000-8000-0000000000a1"
GUEST = "00000000-0000-4000-8000-0000000000a2"
Q = queries_for("tripsage.webhooks")
MIGRATIONS = servers.REPO / "supabase" / "migrations"


def connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def activate(conn: psycopg.Connection[dict[str, Any]], name: str, events: list[str] | None = None) -> None:
    conn.execute(
        "UPDATE webhook_configs SET is_active = true, events = coalesce(%s, events) WHERE name = %s", [events, name]
    )


def deliveries(conn: psycopg.Connection[dict[str, Any]]) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT d.event_type, c.name, e.payload FROM webhooks.deliveries d JOIN webhook_configs c"
        " ON c.id = d.webhook_config_id JOIN webhooks.events e ON e.id = d.event_id ORDER BY d.id"
    ).fetchall()


def make_trip(conn: psycopg.Connection[dict[str, Any]]) -> int:
    conn.execute("INSERT INTO auth.users (id) VALUES (%s), (%s) ON CONFLICT DO NOTHING", [OWNER, GUEST])
    row = conn.execute(
        "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
        " VALUES (%s, 'Lisbon', 'Lisbon', '2027-01-01', '2027-01-05') RETURNING id",
        [OWNER],
    ).fetchone()
    assert row is not None
    return int(row["id"])


def test_seed_configs(database: str) -> None:
    with connect(database) as conn:
        rows = {r["name"]: r for r in conn.execute("SELECT name, url, events, is_active FROM webhook_configs")}
    assert set(rows) == {
        "trip_events",
        "ai_processing",
        "chat_events",
        "booking_events",
        "notification_service",
        "calendar_sync",
    }
    assert rows["trip_events"]["url"].endswith("/functions/v1/trip-events")
    assert rows["trip_events"]["events"] == ["trip.collaborator.*", "booking.confirmed", "api_key.expiring"]
    assert rows["ai_processing"]["url"].endswith("/functions/v1/ai-processing")
    assert rows["ai_processing"]["events"] == ["chat.message.process", "memory.generate.embedding"]
    assert not any(r["is_active"] for r in rows.values())


def test_emit_event_records_even_without_configs_and_dedupes(database: str) -> None:
    with connect(database) as conn:
        first = conn.execute("SELECT emit_event('api_key.expiring', '{\"a\": 1}', 'k1') AS id").fetchone()
        assert first is not None and first["id"] > 0
        assert conn.execute("SELECT count(*) AS n FROM webhooks.events").fetchone() == {"n": 1}
        assert deliveries(conn) == []
        assert conn.execute("SELECT webhook_outbox_depth() AS n").fetchone() == {"n": 0}
        activate(conn, "trip_events")
        a = conn.execute("SELECT emit_event('api_key.expiring', '{\"a\": 2}', 'k2') AS id").fetchone()
        b = conn.execute("SELECT emit_event('api_key.expiring', '{\"a\": 3}', 'k2') AS id").fetchone()
        assert a == b  # an undelivered event with the same key exists: nothing new
        assert [d["name"] for d in deliveries(conn)] == ["trip_events"]
        assert conn.execute("SELECT webhook_outbox_depth() AS n").fetchone() == {"n": 1}
        conn.execute("UPDATE webhooks.deliveries SET status = 'succeeded'")
        c = conn.execute("SELECT emit_event('api_key.expiring', '{\"a\": 4}', 'k2') AS id").fetchone()
        assert c != a and len(deliveries(conn)) == 2


def test_patterns_match(database: str) -> None:
    with connect(database) as conn:
        cases = [
            ("trip.collaborator.added", ["trip.collaborator.*"], True),
            ("trip.collaborator", ["trip.collaborator.*"], False),
            ("trip.collaboratorx.added", ["trip.collaborator.*"], False),
            ("anything.at.all", ["*"], True),
            ("booking.confirmed", ["booking.confirmed"], True),
            ("booking.confirmed", ["booking.cancelled"], False),
        ]
        for event_type, patterns, expected in cases:
            row = conn.execute("SELECT webhook_event_matches(%s, %s) AS m", [event_type, patterns]).fetchone()
            assert row == {"m": expected}, (event_type, patterns)


def test_rolled_back_write_enqueues_nothing(database: str) -> None:
    with connect(database) as conn:
        activate(conn, "trip_events")
        trip = make_trip(conn)
        with pytest.raises(psycopg.errors.RaiseException), conn.transaction():
            conn.execute("INSERT INTO trip_collaborators (trip_id, user_id) VALUES (%s, %s)", [trip, GUEST])
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'abort'; END $$")
        assert deliveries(conn) == []


def test_triggers_emit_the_contract_events(database: str) -> None:
    with connect(database) as conn:
        conn.execute("UPDATE webhook_configs SET is_active = true, events = '{*}' WHERE name = 'chat_events'")
        trip = make_trip(conn)
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)", [f'{{"sub": "{OWNER}"}}'])
        conn.execute(
            "INSERT INTO trip_collaborators (trip_id, user_id, added_by) VALUES (%s, %s, %s)", [trip, GUEST, OWNER]
        )
        conn.execute("UPDATE trip_collaborators SET permission_level = 'edit'")
        conn.execute("DELETE FROM trip_collaborators")
        session = conn.execute(
            "INSERT INTO chat_sessions (user_id, trip_id) VALUES (%s, %s) RETURNING id", [OWNER, trip]
        ).fetchone()
        assert session is not None
        conn.execute("INSERT INTO chat_messages (session_id, role, content) VALUES (%s, 'user', 'hi')", [session["id"]])
        conn.execute(
            "INSERT INTO chat_messages (session_id, role, content) VALUES (%s, 'assistant', 'yo')", [session["id"]]
        )
        conn.execute("UPDATE chat_sessions SET ended_at = now()")
        conn.execute("INSERT INTO bookings (trip_id, user_id, booking_type) VALUES (%s, %s, 'other')", [trip, OWNER])
        conn.execute("UPDATE bookings SET status = 'confirmed'")
        conn.execute("UPDATE bookings SET provider = 'x'")  # not a status change
        conn.execute(
            "INSERT INTO flights (trip_id, origin, destination, departure_date, price)"
            " VALUES (%s, 'LIS', 'OPO', '2027-01-01', 10)",
            [trip],
        )
        conn.execute("UPDATE flights SET booking_status = 'booked'")
        conn.execute("INSERT INTO memories (user_id, content) VALUES (%s, 'likes trains')", [OWNER])
        rows = deliveries(conn)
    types = [r["event_type"] for r in rows]
    assert types == [
        "trip.collaborator.added",
        "trip.collaborator.updated",
        "trip.collaborator.removed",
        "chat.session.started",
        "chat.message.created",
        "chat.message.process",
        "chat.message.created",
        "chat.session.ended",
        "booking.bookings.pending",
        "booking.bookings.confirmed",
        "booking.confirmed",
        "booking.flights.available",
        "booking.flights.booked",
        "booking.confirmed",
        "memory.generate.embedding",
    ]
    updated = rows[1]["payload"]
    assert updated == {
        "trip_id": trip,
        "user_id": GUEST,
        "permission_level": "edit",
        "old_permission_level": "view",
        "added_by": OWNER,
        "actor_id": OWNER,
    }
    process = rows[5]["payload"]
    assert process["content"] == "hi" and process["role"] == "user" and process["user_id"] == OWNER
    assert process["trip_id"] == trip and "message_id" in process and "created_at" in process
    confirmed = rows[10]["payload"]
    assert confirmed["old_status"] == "pending" and confirmed["new_status"] == "confirmed"
    assert confirmed["trip_name"] == "Lisbon" and confirmed["destination"] == "Lisbon"
    assert confirmed["user_id"] == OWNER and confirmed["booking_type"] == "bookings"
    assert len(rows[14]["payload"]["memory_ids"]) == 1


def test_writes_succeed_without_active_configs_or_any_config(database: str) -> None:
    with connect(database) as conn:
        conn.execute("UPDATE webhook_configs SET is_active = false")
        trip = make_trip(conn)
        conn.execute("INSERT INTO trip_collaborators (trip_id, user_id) VALUES (%s, %s)", [trip, GUEST])
        conn.execute("DELETE FROM webhook_configs")
        conn.execute("UPDATE trip_collaborators SET permission_level = 'admin'")
        conn.execute("INSERT INTO memories (user_id, content) VALUES (%s, 'x')", [OWNER])
        assert deliveries(conn) == []
        # Events are still recorded, so nothing is lost.
        assert conn.execute("SELECT count(*) AS n FROM webhooks.events").fetchone() == {"n": 3}


def test_authenticated_write_fires_triggers(database: str) -> None:
    with connect(database) as conn:
        activate(conn, "trip_events")
        trip = make_trip(conn)
        with conn.transaction():
            conn.execute("SET LOCAL ROLE authenticated")
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [f'{{"sub": "{OWNER}"}}'])
            conn.execute(
                "INSERT INTO trip_collaborators (trip_id, user_id, added_by) VALUES (%s, %s, %s)", [trip, GUEST, OWNER]
            )
        rows = deliveries(conn)
    assert [r["event_type"] for r in rows] == ["trip.collaborator.added"]
    assert rows[0]["payload"]["actor_id"] == OWNER


def test_sql_api_errors_and_enqueue(database: str) -> None:
    with connect(database) as conn:
        activate(conn, "trip_events")
        activate(conn, "ai_processing")
        with pytest.raises(psycopg.Error, match='unknown webhook config "nope"'):
            conn.execute("SELECT send_webhook_with_retry('nope', 'booking.confirmed', '{}')")
        with pytest.raises(psycopg.Error, match=r'unknown webhook event type "bogus\.type"'):
            conn.execute("SELECT send_webhook_with_retry('trip_events', 'bogus.type', '{}')")
        with pytest.raises(psycopg.Error, match="more than the limit of 262144 bytes"):
            conn.execute(
                "SELECT send_webhook_with_retry('trip_events', 'booking.confirmed', %s)", [Jsonb({"x": "a" * 300_000})]
            )
        with pytest.raises(psycopg.Error, match='webhook config "chat_events" is inactive'):
            conn.execute("SELECT send_webhook_with_retry('chat_events', 'booking.confirmed', '{}')")
        row = conn.execute("SELECT send_webhook_with_retry('trip_events', 'booking.confirmed', '{}') AS id").fetchone()
        assert row is not None and row["id"] > 0
        test = conn.execute("SELECT test_webhook('ai_processing') AS id").fetchone()
        assert test is not None
        payload = conn.execute(
            "SELECT e.payload FROM webhooks.deliveries d JOIN webhooks.events e ON e.id = d.event_id WHERE d.id = %s",
            [test["id"]],
        ).fetchone()
        assert payload == {"payload": {"test": True}}
        stats = conn.execute("SELECT * FROM get_webhook_stats()").fetchall()
        by_name = {s["config_name"]: s for s in stats}
        assert by_name["trip_events"]["pending"] == 1
        assert by_name["trip_events"]["by_event_type"] == {"booking.confirmed": 1}
        with pytest.raises(psycopg.Error, match="unknown webhook config"):
            conn.execute("SELECT * FROM get_webhook_stats('nope')")
        conn.execute("UPDATE webhooks.deliveries SET status = 'dead'")
        assert conn.execute("SELECT replay_dead_webhook_deliveries() AS n").fetchone() == {"n": 2}
        assert conn.execute("SELECT replay_webhook_delivery(%s) AS ok", [row["id"]]).fetchone() == {"ok": False}


def test_service_role_may_call_the_api_and_anon_may_not(database: str) -> None:
    with connect(database) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL ROLE service_role")
            conn.execute("SELECT emit_event('booking.confirmed', '{}')")
            conn.execute("SELECT webhook_outbox_depth()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SET LOCAL ROLE anon")
            conn.execute("SELECT emit_event('booking.confirmed', '{}')")


def test_cleanup_keeps_recent_open_and_dead_work(database: str) -> None:
    with connect(database) as conn:
        activate(conn, "trip_events")
        for _ in range(4):
            conn.execute("SELECT emit_event('booking.confirmed', '{}')")
        conn.execute("SELECT emit_event('no.config.matches', '{}')")
        ids = [r["id"] for r in conn.execute("SELECT id FROM webhooks.deliveries ORDER BY id")]
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
        conn.execute("UPDATE webhooks.events SET created_at = %s", [old])
        conn.execute(
            "UPDATE webhooks.deliveries SET status = 'succeeded', completed_at = %s WHERE id = %s", [old, ids[0]]
        )
        conn.execute(
            "UPDATE webhooks.deliveries SET status = 'succeeded', completed_at = now() WHERE id = %s", [ids[1]]
        )
        conn.execute("UPDATE webhooks.deliveries SET status = 'dead', completed_at = %s WHERE id = %s", [old, ids[2]])
        deleted = conn.execute("SELECT cleanup_webhook_outbox() AS n").fetchone()
        assert deleted == {"n": 3}  # one delivery, its event, and the unmatched event
        left = [r["id"] for r in conn.execute("SELECT id FROM webhooks.deliveries ORDER BY id")]
        assert left == ids[1:]


def test_bulk_trigger_writes_with_malformed_claims_succeed(database: str) -> None:
    with connect(database) as conn:
        activate(conn, "trip_events")
        trip = make_trip(conn)
        with conn.transaction():
            conn.execute("SELECT set_config('request.jwt.claims', '{not json', true)")
            conn.execute("INSERT INTO auth.users (id) SELECT gen_random_uuid() FROM generate_series(1, 200)")
            conn.execute(
                "INSERT INTO trip_collaborators (trip_id, user_id)"
                " SELECT %s, id FROM auth.users WHERE id NOT IN (%s, %s)",
                [trip, OWNER, GUEST],
            )
        rows = deliveries(conn)
    assert len(rows) == 200 and all(r["payload"]["actor_id"] is None for r in rows)


def claimable(conn: psycopg.Connection[dict[str, Any]], events: int = 1) -> None:
    """trip_events active with a secret (what the claim asks of an endpoint), and `events` deliveries to it."""
    activate(conn, "trip_events")
    conn.execute("UPDATE webhook_configs SET secret = '\\x00' WHERE name = 'trip_events'")
    conn.execute(
        "SELECT emit_event('booking.confirmed', jsonb_build_object('n', n)) FROM generate_series(1, %s) n", [events]
    )


def claim(conn: psycopg.Connection[dict[str, Any]], now: dt.datetime, worker: str) -> list[int]:
    """The dispatcher's claim statement, as it runs it."""
    rows = conn.execute(
        Q["claim_deliveries"].sql, {"now": now, "limit": 200, "worker": worker, "lease_margin_s": 30.0}
    ).fetchall()
    return [r["id"] for r in rows]


def test_a_claim_is_a_heap_only_update_and_keeps_the_lease(database: str) -> None:
    # Issue #19: a claim used to insert an entry into each of the table's indexes (status and next_attempt_at were
    # indexed); it now changes no indexed column, so PostgreSQL writes it as a heap-only (HOT) update.
    with connect(database) as conn:
        claimable(conn)
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        with conn.transaction():
            [claimed] = claim(conn, now, "first")
            stats = conn.execute(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
                " WHERE relid = 'webhooks.deliveries'::regclass"
            ).fetchone()
        assert stats == {"n_tup_upd": 1, "n_tup_hot_upd": 1}
        row = conn.execute(
            "SELECT status, queued, dead, leased_by, attempts, next_attempt_at < %s AS due, lease_expires_at"
            " FROM webhooks.deliveries WHERE id = %s",
            [now, claimed],
        ).fetchone()
        assert row is not None
        assert (row["status"], row["queued"], row["dead"], row["leased_by"], row["attempts"], row["due"]) == (
            "delivering",
            True,
            False,
            "first",
            1,
            True,
        )
        # Leased until its endpoint's timeout plus the margin: nobody else claims it before, anyone may after.
        expires = row["lease_expires_at"]
        assert expires > now and conn.execute("SELECT webhook_outbox_depth() AS n").fetchone() == {"n": 1}
        assert claim(conn, expires - dt.timedelta(seconds=1), "second") == []
        assert claim(conn, expires, "second") == [claimed]


def test_a_delivery_leased_before_the_lease_column_is_claimed_once_its_lease_expired(database: str) -> None:
    # Before migration 20261127230000 a lease was written into next_attempt_at (lease_expires_at NULL): such a row,
    # in flight while the migration ran, stays leased until then.
    with connect(database) as conn:
        claimable(conn)
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
        conn.execute(
            "UPDATE webhooks.deliveries SET status = 'delivering', attempts = 1, leased_by = 'old',"
            " next_attempt_at = %s",
            [until],
        )
        assert claim(conn, until - dt.timedelta(seconds=1), "new") == []
        assert len(claim(conn, until, "new")) == 1


def test_dead_letters_and_the_queue_follow_status_whoever_writes_it(database: str) -> None:
    # queued and dead are generated from status, so an operator's own UPDATE keeps the indexes right.
    with connect(database) as conn:
        activate(conn, "trip_events")
        for _ in range(3):
            conn.execute("SELECT emit_event('booking.confirmed', '{}')")
        ids = [r["id"] for r in conn.execute("SELECT id FROM webhooks.deliveries ORDER BY id")]
        conn.execute("UPDATE webhooks.deliveries SET status = 'dead' WHERE id = %s", [ids[0]])
        conn.execute("UPDATE webhooks.deliveries SET status = 'succeeded' WHERE id = %s", [ids[1]])
        rows = conn.execute("SELECT id, queued, dead FROM webhooks.deliveries ORDER BY id").fetchall()
        assert [(r["queued"], r["dead"]) for r in rows] == [(False, True), (False, False), (True, False)]
        assert conn.execute("SELECT webhook_outbox_depth() AS n").fetchone() == {"n": 1}
        with pytest.raises(psycopg.errors.GeneratedAlways):
            conn.execute("UPDATE webhooks.deliveries SET dead = false")
        assert conn.execute("SELECT replay_dead_webhook_deliveries() AS n").fetchone() == {"n": 1}
        assert conn.execute("SELECT webhook_outbox_depth() AS n").fetchone() == {"n": 2}


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


@pytest.mark.parametrize("plan_cache_mode", ["force_generic_plan", "force_custom_plan"])
def test_recording_a_batch_reads_its_attempts_once_whatever_the_statistics(database: str, plan_cache_mode: str) -> None:
    # Issue #19: with statistics taken while nothing was delivering, the record statement scanned the table for the
    # dispatcher's leased rows and compared each with every attempt of the batch (163 us per delivery at 20,000 rows,
    # growing with the outbox and with the deliveries in flight).
    with connect(database) as conn:
        claimable(conn, 20000)
        conn.execute("ANALYZE webhooks.deliveries")
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        ids = [i for _ in range(4) for i in claim(conn, now, "worker")]
        batch = ids[:200]
        params = {
            "now": now,
            "worker": "worker",
            "ids": batch,
            "attempts": [1] * len(batch),
            "statuses": ["succeeded"] * len(batch),
            "next_at": [None] * len(batch),
            "codes": [200] * len(batch),
            "bodies": ["ok"] * len(batch),
            "durations": [1] * len(batch),
            "errors": [None] * len(batch),
        }
        conn.execute(f"SET plan_cache_mode = {plan_cache_mode}")
        explain = psycopg.sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + Q["finish_deliveries"].sql
        [row] = conn.execute(explain, params, prepare=True).fetchall()
        nodes = plan_nodes(row["QUERY PLAN"][0]["Plan"])
        # The batch's attempts (the CTE r) are read once, not once per row the scan of deliveries found.
        loops = [node["Actual Loops"] for node in nodes if node["Node Type"] == "CTE Scan"]
        assert loops == [1, 1], [(n["Node Type"], n.get("Relation Name"), n["Actual Loops"]) for n in nodes]
        done = conn.execute("SELECT count(*) AS n FROM webhooks.deliveries WHERE status = 'succeeded'").fetchone()
        assert done == {"n": 200}


async def test_the_migration_keeps_the_lease_of_a_delivery_in_flight(empty_database: str, tmp_path: Path) -> None:
    # A runtime older than migration 20261127230000 wrote its lease into next_attempt_at: a delivery it holds while
    # the migration runs keeps that lease (in lease_expires_at), and dead letters stay dead letters.
    hot_claim = "20261127230000_webhooks_hot_claim.sql"
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < hot_claim:
            shutil.copy(path, tmp_path / path.name)
    await Deployer(empty_database, tmp_path).deploy()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    with connect(empty_database) as conn:
        claimable(conn, 2)
        first, second = (r["id"] for r in conn.execute("SELECT id FROM webhooks.deliveries ORDER BY id"))
        conn.execute(
            "UPDATE webhooks.deliveries SET status = 'delivering', attempts = 1, leased_by = 'old',"
            " next_attempt_at = %s WHERE id = %s",
            [until, first],
        )
        conn.execute("UPDATE webhooks.deliveries SET status = 'dead', completed_at = now() WHERE id = %s", [second])
    shutil.copy(MIGRATIONS / hot_claim, tmp_path / hot_claim)
    assert [m.name for m in (await Deployer(empty_database, tmp_path).deploy()).pending] == ["webhooks_hot_claim"]
    with connect(empty_database) as conn:
        rows = conn.execute("SELECT id, lease_expires_at, queued, dead FROM webhooks.deliveries ORDER BY id").fetchall()
        assert [(r["id"], r["lease_expires_at"], r["queued"], r["dead"]) for r in rows] == [
            (first, until, True, False),
            (second, None, False, True),
        ]
        assert claim(conn, until - dt.timedelta(seconds=1), "new") == []
        assert claim(conn, until, "new") == [first]
        assert conn.execute("SELECT count(*) AS n FROM webhooks.deliveries WHERE dead").fetchone() == {"n": 1}
