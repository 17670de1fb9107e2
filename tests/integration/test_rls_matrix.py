"""The RLS matrix: five users around one trip, every table, SELECT / INSERT / UPDATE / DELETE.

Each case runs as role `authenticated` with the user's claims in `request.jwt.claims`, exactly as Supabase's API does,
inside a transaction that is rolled back. A write counts as allowed only if it touched a row without error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

SEED = Path(__file__).parent / "data" / "rls_seed.sql"
USERS = {
    "owner": "00000000-0000-4000-8000-00000000000a",
    "viewer": "00000000-0000-4000-8000-00000000000b",
    "editor": "00000000-0000-4000-8000-00000000000c",
    "admin": "00000000-0000-4000-8000-00000000000d",
    "stranger": "00000000-0000-4000-8000-00000000000e",
}
MEMBERS = {"owner", "viewer", "editor", "admin"}
WRITERS = {"owner", "editor", "admin"}
ALL = set(USERS)
NOBODY: set[str] = set()
S1, S2, S3 = (
    "10000000-0000-4000-8000-000000000001",
    "10000000-0000-4000-8000-000000000002",
    "10000000-0000-4000-8000-000000000003",
)

# table -> user -> ids the user may see (None: no privilege at all, the query is refused).
VISIBLE: dict[str, dict[str, set[Any] | None]] = {}


def trip_scoped(trip1_ids: set[Any], trip2_ids: set[Any]) -> dict[str, set[Any] | None]:
    return {user: (trip1_ids if user in MEMBERS else trip2_ids) for user in USERS}


def personal(owner_ids: set[Any], stranger_ids: set[Any]) -> dict[str, set[Any] | None]:
    return {user: owner_ids if user == "owner" else stranger_ids if user == "stranger" else set() for user in USERS}


for table in ("trips", "itinerary_items", "flights", "accommodations", "bookings"):
    VISIBLE[table] = trip_scoped({1}, {2})
VISIBLE["trip_collaborators"] = {user: ({1, 2, 3} if user in MEMBERS else set()) for user in USERS}
VISIBLE["chat_sessions"] = {user: {S1} for user in MEMBERS} | {"stranger": {S3}}
VISIBLE["chat_sessions"]["owner"] = {S1, S2}
VISIBLE["chat_messages"] = {user: {1} for user in MEMBERS} | {"owner": {1, 2}, "stranger": {3}}
VISIBLE["chat_tool_calls"] = dict(VISIBLE["chat_messages"])
for table in (
    "memories",
    "session_memories",
    "search_destinations",
    "search_flights",
    "search_hotels",
    "search_activities",
    "api_keys",
    "notifications",
):
    VISIBLE[table] = personal({1}, {2})
VISIBLE["session_memories_archive"] = personal({101}, {102})
for table in ("system_metrics", "webhook_configs", "webhook_logs", "audit_log"):
    VISIBLE[table] = dict.fromkeys(USERS)


def on_table(template: str, table: str) -> sql.Composed:
    return sql.SQL(template).format(sql.Identifier(table))


# (table, operation, SQL, who may do it). The SQL targets trip 1's rows or the owner's personal rows; params are the
# acting user's id as %(me)s.
WRITES: list[tuple[str, str, str | sql.Composed, set[str]]] = [
    (
        "trips",
        "insert_own",
        "INSERT INTO trips (user_id, name, destination, start_date, end_date) "
        "VALUES (%(me)s, 'Mine', 'Rome', '2027-01-01', '2027-01-02')",
        ALL,
    ),
    (
        "trips",
        "insert_for_owner",
        "INSERT INTO trips (user_id, name, destination, start_date, end_date) "
        "VALUES ('00000000-0000-4000-8000-00000000000a', 'Forged', 'Rome', '2027-01-01', '2027-01-02')",
        {"owner"},
    ),
    ("trips", "update", "UPDATE trips SET name = 'Renamed' WHERE id = 1", WRITERS),
    ("trips", "steal_ownership", "UPDATE trips SET user_id = %(me)s WHERE id = 1", NOBODY),
    ("trips", "delete", "DELETE FROM trips WHERE id = 1", {"owner"}),
    (
        "trip_collaborators",
        "insert",
        "INSERT INTO trip_collaborators (trip_id, user_id, permission_level, added_by) "
        "VALUES (1, '00000000-0000-4000-8000-00000000000f', 'view', %(me)s)",
        {"owner", "admin"},
    ),
    (
        "trip_collaborators",
        "update",
        "UPDATE trip_collaborators SET permission_level = 'admin' WHERE id = 1",
        {"owner", "admin"},
    ),
    (
        "trip_collaborators",
        "delete_viewer",
        "DELETE FROM trip_collaborators WHERE id = 1",
        {"owner", "admin", "viewer"},
    ),
]
for table, insert in (
    ("itinerary_items", "INSERT INTO itinerary_items (trip_id, title) VALUES (1, 'New')"),
    (
        "flights",
        "INSERT INTO flights (trip_id, origin, destination, departure_date, price) "
        "VALUES (1, 'LIS', 'OPO', '2027-05-04', 50)",
    ),
    (
        "accommodations",
        "INSERT INTO accommodations (trip_id, name, check_in_date, check_out_date, price_per_night, "
        "total_price) VALUES (1, 'Porto Inn', '2027-05-10', '2027-05-12', 80, 160)",
    ),
    ("bookings", "INSERT INTO bookings (trip_id, user_id, booking_type) VALUES (1, %(me)s, 'activity')"),
):
    WRITES += [
        (table, "insert", insert, WRITERS),
        (table, "update", on_table("UPDATE {} SET metadata = '{{\"x\": 1}}' WHERE id = 1", table), WRITERS),
        (table, "delete", on_table("DELETE FROM {} WHERE id = 1", table), WRITERS),
    ]
WRITES += [
    ("chat_sessions", "insert_on_trip", "INSERT INTO chat_sessions (user_id, trip_id) VALUES (%(me)s, 1)", MEMBERS),
    ("chat_sessions", "update", "UPDATE chat_sessions SET metadata = '{\"x\": 1}' WHERE id = %(s1)s", {"owner"}),
    ("chat_sessions", "delete", "DELETE FROM chat_sessions WHERE id = %(s1)s", {"owner"}),
    (
        "chat_messages",
        "insert",
        "INSERT INTO chat_messages (session_id, role, content) VALUES (%(s1)s, 'user', 'hi')",
        {"owner"},
    ),
    ("chat_messages", "update", "UPDATE chat_messages SET content = 'edited' WHERE id = 1", {"owner"}),
    ("chat_messages", "delete", "DELETE FROM chat_messages WHERE id = 1", {"owner"}),
    (
        "chat_tool_calls",
        "insert",
        "INSERT INTO chat_tool_calls (message_id, tool_id, tool_name) VALUES (1, 'c', 't')",
        {"owner"},
    ),
    ("chat_tool_calls", "update", "UPDATE chat_tool_calls SET status = 'completed' WHERE id = 1", {"owner"}),
    ("chat_tool_calls", "delete", "DELETE FROM chat_tool_calls WHERE id = 1", {"owner"}),
    ("memories", "insert_own", "INSERT INTO memories (user_id, content) VALUES (%(me)s, 'x')", ALL),
    (
        "memories",
        "insert_for_owner",
        "INSERT INTO memories (user_id, content) VALUES ('00000000-0000-4000-8000-00000000000a', 'x')",
        {"owner"},
    ),
    ("memories", "update", "UPDATE memories SET content = 'y' WHERE id = 1", {"owner"}),
    ("memories", "delete", "DELETE FROM memories WHERE id = 1", {"owner"}),
    (
        "session_memories",
        "insert",
        "INSERT INTO session_memories (session_id, user_id, content) VALUES (%(s1)s, %(me)s, 'x')",
        {"owner"},
    ),
    ("session_memories", "update", "UPDATE session_memories SET content = 'y' WHERE id = 1", {"owner"}),
    ("session_memories", "delete", "DELETE FROM session_memories WHERE id = 1", {"owner"}),
    ("session_memories_archive", "delete", "DELETE FROM session_memories_archive WHERE id = 101", {"owner"}),
    ("api_keys", "update", "UPDATE api_keys SET is_active = false WHERE id = 1", {"owner"}),
    ("api_keys", "delete", "DELETE FROM api_keys WHERE id = 1", {"owner"}),
    (
        "api_keys",
        "insert_for_owner",
        "INSERT INTO api_keys (user_id, service_name, key_name, encrypted_key, key_hash) "
        "VALUES ('00000000-0000-4000-8000-00000000000a', 's', 'k', '\\x01', 'h')",
        {"owner"},
    ),
    ("notifications", "mark_read", "UPDATE notifications SET read = true WHERE id = 1", {"owner"}),
    (
        "notifications",
        "insert",
        "INSERT INTO notifications (user_id, type, title, message) VALUES (%(me)s, 't', 't', 'm')",
        NOBODY,
    ),
    ("notifications", "delete", "DELETE FROM notifications WHERE id = 1", NOBODY),
    (
        "system_metrics",
        "insert",
        "INSERT INTO system_metrics (metric_type, metric_name, value) VALUES ('a', 'b', 1)",
        NOBODY,
    ),
    ("webhook_configs", "update", "UPDATE webhook_configs SET url = 'https://evil.test' WHERE id = 1", NOBODY),
    ("webhook_logs", "delete", "DELETE FROM webhook_logs", NOBODY),
    ("audit_log", "delete", "DELETE FROM audit_log", NOBODY),
]
for table in ("search_destinations", "search_flights", "search_hotels", "search_activities"):
    WRITES += [
        (table, "update", on_table("UPDATE {} SET results = '[1]' WHERE id = 1", table), {"owner"}),
        (table, "delete", on_table("DELETE FROM {} WHERE id = 1", table), {"owner"}),
    ]


@pytest.fixture
def seeded(database: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(SEED.read_text())
        yield conn


def act_as(conn: psycopg.Connection[tuple[Any, ...]], user: str) -> None:
    claims = json.dumps({"sub": USERS[user], "role": "authenticated"})
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
    conn.execute("SET LOCAL ROLE authenticated")


def visible_ids(conn: psycopg.Connection[tuple[Any, ...]], table: str, user: str) -> set[Any] | None:
    try:
        with conn.transaction(force_rollback=True):
            act_as(conn, user)
            rows = conn.execute(sql.SQL("SELECT id FROM {}").format(sql.Identifier(table))).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return {str(row[0]) if table == "chat_sessions" else row[0] for row in rows}


def write_allowed(conn: psycopg.Connection[tuple[Any, ...]], statement: str | sql.Composed, user: str) -> bool:
    try:
        with conn.transaction(force_rollback=True):
            act_as(conn, user)
            cursor = conn.execute(statement, {"me": USERS[user], "s1": S1})
            return cursor.rowcount > 0
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.CheckViolation):
        return False
    except psycopg.errors.RaiseException as error:  # pragma: no cover - reported with the case
        raise AssertionError(f"unexpected trigger error: {error}") from error


def test_every_table_has_rls_enabled(seeded: psycopg.Connection[tuple[Any, ...]]) -> None:
    rows = seeded.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity"
    ).fetchall()
    assert rows == []
    tables = {
        row[0] for row in seeded.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    }
    assert tables == set(VISIBLE), "the matrix must cover every table"


def test_select_matrix(seeded: psycopg.Connection[tuple[Any, ...]]) -> None:
    failures = []
    for table, expected in VISIBLE.items():
        for user in USERS:
            got = visible_ids(seeded, table, user)
            if got != expected[user]:
                failures.append(f"{table} as {user}: saw {got}, expected {expected[user]}")
    assert failures == []


def test_anon_sees_nothing(seeded: psycopg.Connection[tuple[Any, ...]]) -> None:
    for table in VISIBLE:
        with seeded.transaction(force_rollback=True):
            seeded.execute("SET LOCAL ROLE anon")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                seeded.execute(sql.SQL("SELECT 1 FROM {}").format(sql.Identifier(table)))


def test_write_matrix(seeded: psycopg.Connection[tuple[Any, ...]]) -> None:
    failures = []
    for table, operation, statement, allowed in WRITES:
        for user in USERS:
            got = write_allowed(seeded, statement, user)
            if got != (user in allowed):
                failures.append(f"{table}.{operation} as {user}: {'allowed' if got else 'denied'}")
    assert failures == [], "\n".join(failures)
    covered = {table for table, *_ in WRITES}
    assert covered == set(VISIBLE), f"no write case for {set(VISIBLE) - covered}"


def returning(statement: str | sql.Composed) -> sql.Composed:
    text = sql.SQL(statement) if isinstance(statement, str) else statement  # type: ignore[arg-type]
    return sql.Composed([text, sql.SQL(" RETURNING *")])


def test_write_matrix_with_returning(seeded: psycopg.Connection[tuple[Any, ...]]) -> None:
    # What supabase-js and supabase-py send for .insert(...).select() and .update(...).select(): every write a user may
    # make, they may make with RETURNING too (the row is theirs to read afterwards).
    failures = []
    for table, operation, statement, allowed in WRITES:
        for user in allowed:
            if not write_allowed(seeded, returning(statement), user):
                failures.append(f"{table}.{operation} ... RETURNING as {user}: denied")
    assert failures == [], "\n".join(failures)
