"""The RLS leak matrix: several users (owners, edit/view/admin collaborators, a stranger) subscribe to all six
published tables through the real client while a scripted workload inserts, updates and deletes rows (cascades
included). Each user must receive exactly the changes RLS allows: an INSERT or UPDATE when RLS lets the user SELECT
the new row after the commit, a DELETE when RLS let the user SELECT the row before it, nothing else.

RLS itself is the reference: each user's visible rows are read with SET ROLE authenticated and request.jwt.claims,
before and after every statement. The audience functions are also compared with RLS row by row.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.realtime.conftest import subscribe, user_token

TABLES = ("trips", "trip_collaborators", "itinerary_items", "chat_sessions", "chat_messages", "chat_tool_calls")
AUDIENCE_ARGS = {
    "trips": "public.trips_audience(t.id, t.user_id)",
    "trip_collaborators": "public.trip_collaborators_audience(t.trip_id, t.user_id)",
    "itinerary_items": "public.itinerary_items_audience(t.trip_id)",
    "chat_sessions": "public.chat_sessions_audience(t.user_id, t.trip_id)",
    "chat_messages": "public.chat_messages_audience(t.session_id)",
    "chat_tool_calls": "public.chat_tool_calls_audience(t.message_id)",
}
Snapshot = dict[str, dict[Any, str]]  # table -> primary key -> row as JSON text


@pytest.fixture
async def matrix_runtime(database: str, tmp_path: Path) -> AsyncIterator[RunningRuntime]:
    async with running_runtime(runtime_settings(tmp_path), database) as running:
        yield running


async def rows(conn: psycopg.AsyncConnection[Any], table: str) -> dict[Any, str]:
    query = sql.SQL("SELECT t.id::text AS id, to_jsonb(t)::text AS row FROM public.{} t").format(sql.Identifier(table))
    cursor = await conn.execute(query)
    return {r["id"]: r["row"] for r in await cursor.fetchall()}


async def visible(conn: psycopg.AsyncConnection[Any], user: str) -> dict[str, set[Any]]:
    """What RLS lets `user` SELECT, table by table."""
    seen: dict[str, set[Any]] = {}
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE authenticated")
        claims = json.dumps({"sub": user, "role": "authenticated"})
        await conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
        for table in TABLES:
            seen[table] = set((await rows(conn, table)).keys())
    return seen


async def snapshot(
    conn: psycopg.AsyncConnection[Any], users: list[str]
) -> tuple[Snapshot, dict[str, dict[str, set[Any]]]]:
    everything = {table: await rows(conn, table) for table in TABLES}
    return everything, {user: await visible(conn, user) for user in users}


async def audience_agrees_with_rls(conn: psycopg.AsyncConnection[Any], users: list[str]) -> None:
    _, seen = await snapshot(conn, users)
    for table in TABLES:
        query = sql.SQL("SELECT t.id::text AS id, {}::text[] AS audience FROM public.{} t").format(
            sql.SQL(AUDIENCE_ARGS[table]), sql.Identifier(table)
        )
        cursor = await conn.execute(query)
        for row in await cursor.fetchall():
            audience = set(row["audience"] or [])
            for user in users:
                assert (user in audience) == (row["id"] in seen[user][table]), (table, row["id"], user)


async def test_each_user_receives_exactly_what_rls_allows(matrix_runtime: RunningRuntime, database: str) -> None:
    conn = await psycopg.AsyncConnection.connect(database, autocommit=True, row_factory=dict_row)
    names = ["owner", "editor", "viewer", "stranger", "other_owner"]
    user = {name: str(uuid.uuid4()) for name in names}
    users = list(user.values())
    for uid in users:
        await conn.execute("INSERT INTO auth.users (id) VALUES (%s)", [uid])

    subscribers: dict[str, list[Any]] = {uid: [] for uid in users}
    clients = []
    for uid in users:
        first = None
        for table in TABLES:
            sub = await subscribe(
                matrix_runtime.base_url,
                user_token(uid),
                f"matrix-{table}",
                [{"event": "*", "table": table, "schema": "public"}],
                client=first,
            )
            subscribers[uid].append(sub)
            first = first or sub.client
        clients.append(first)

    ids: dict[str, Any] = {}

    async def one(statement: str, params: list[Any], key: str | None = None) -> None:
        cursor = await conn.execute(statement, params)  # type: ignore[arg-type]
        if key is not None:
            ids[key] = (await cursor.fetchone())["id"]  # type: ignore[index]

    a, b, c, d, e = (user[n] for n in names)
    add_trip = (
        "INSERT INTO trips (user_id, name, destination, start_date, end_date)"
        " VALUES (%s, %s, 'X', '2026-01-01', '2026-01-02') RETURNING id"
    )
    add_collab = "INSERT INTO trip_collaborators (trip_id, user_id, permission_level) VALUES (%s, %s, %s) RETURNING id"
    add_item = "INSERT INTO itinerary_items (trip_id, title) VALUES (%s, %s) RETURNING id"
    add_session = "INSERT INTO chat_sessions (user_id, trip_id) VALUES (%s, %s) RETURNING id"
    add_message = "INSERT INTO chat_messages (session_id, role, content) VALUES (%s, 'user', %s) RETURNING id"
    add_call = "INSERT INTO chat_tool_calls (message_id, tool_id, tool_name) VALUES (%s, 'call', 'search') RETURNING id"
    steps: list[tuple[str, Any, str | None]] = [
        (add_trip, lambda: [a, "T1"], "T1"),
        (add_trip, lambda: [e, "T2"], "T2"),
        (add_collab, lambda: [ids["T1"], b, "edit"], "CB"),
        (add_collab, lambda: [ids["T1"], c, "view"], "CC"),
        (add_collab, lambda: [ids["T2"], c, "admin"], "CC2"),
        (add_item, lambda: [ids["T1"], "museum"], "I1"),
        (add_item, lambda: [ids["T2"], "dinner"], "I2"),
        (add_session, lambda: [a, ids["T1"]], "S1"),
        (add_session, lambda: [d, None], "S2"),
        (add_session, lambda: [c, ids["T2"]], "S3"),
        (add_message, lambda: [ids["S1"], "hello"], "M1"),
        (add_message, lambda: [ids["S2"], "private"], "M2"),
        (add_message, lambda: [ids["S3"], "plans"], "M3"),
        (add_call, lambda: [ids["M1"]], "TC1"),
        (add_call, lambda: [ids["M2"]], "TC2"),
        ("UPDATE trips SET name = 'T1 renamed' WHERE id = %s", lambda: [ids["T1"]], None),
        ("UPDATE itinerary_items SET title = 'museum, then lunch' WHERE id = %s", lambda: [ids["I1"]], None),
        ("UPDATE trip_collaborators SET permission_level = 'edit' WHERE id = %s", lambda: [ids["CC"]], None),
        ("UPDATE chat_sessions SET metadata = '{\"a\": 1}' WHERE id = %s", lambda: [ids["S1"]], None),
        ("UPDATE chat_messages SET content = 'hello again' WHERE id = %s", lambda: [ids["M1"]], None),
        ("UPDATE chat_tool_calls SET status = 'completed' WHERE id = %s", lambda: [ids["TC1"]], None),
        ("UPDATE chat_sessions SET trip_id = %s WHERE id = %s", lambda: [ids["T1"], ids["S2"]], None),
        ("UPDATE chat_tool_calls SET status = 'running' WHERE id = %s", lambda: [ids["TC2"]], None),
        ("DELETE FROM trip_collaborators WHERE id = %s", lambda: [ids["CB"]], None),
        ("UPDATE trips SET name = 'T1 without the editor' WHERE id = %s", lambda: [ids["T1"]], None),
        ("DELETE FROM chat_tool_calls WHERE id = %s", lambda: [ids["TC2"]], None),
        ("DELETE FROM chat_messages WHERE id = %s", lambda: [ids["M3"]], None),
        ("DELETE FROM itinerary_items WHERE id = %s", lambda: [ids["I1"]], None),
        ("DELETE FROM chat_sessions WHERE id = %s", lambda: [ids["S1"]], None),  # cascades to M1 and TC1
        ("DELETE FROM trips WHERE id = %s", lambda: [ids["T1"]], None),  # cascades; S2 loses its trip
        ("DELETE FROM trips WHERE id = %s", lambda: [ids["T2"]], None),
        ("DELETE FROM auth.users WHERE id = %s", lambda: [d], None),  # D's session and message go too
    ]

    expected: dict[str, Counter[tuple[str, str, Any]]] = {uid: Counter() for uid in users}
    before = await snapshot(conn, users)
    for statement, params, key in steps:
        await one(statement, params(), key)
        after = await snapshot(conn, users)
        await audience_agrees_with_rls(conn, users)
        for table in TABLES:
            old_rows, new_rows = before[0][table], after[0][table]
            for pk, row in new_rows.items():
                kind = "INSERT" if pk not in old_rows else ("UPDATE" if old_rows[pk] != row else None)
                if kind is not None:
                    for uid in users:
                        if pk in after[1][uid][table]:
                            expected[uid][(table, kind, pk)] += 1
            for pk in old_rows.keys() - new_rows.keys():
                for uid in users:
                    if pk in before[1][uid][table]:
                        expected[uid][(table, "DELETE", pk)] += 1
        before = after

    # A sentinel per user, last: once it arrives, everything before it on that socket has arrived.
    live = [uid for uid in users if uid != d]
    for uid in live:
        await one(add_trip, [uid, "sentinel"], f"sentinel-{uid}")
        expected[uid][("trips", "INSERT", str(ids[f"sentinel-{uid}"]))] += 1

    def got(uid: str) -> Counter[tuple[str, str, Any]]:
        counted: Counter[tuple[str, str, Any]] = Counter()
        for data in (change["data"] for sub in subscribers[uid] for change in sub.changes):
            row = data.get("record") if data["type"] != "DELETE" else data.get("old_record")
            kind = getattr(data["type"], "value", data["type"])
            counted[(data["table"], kind, str(row["id"]))] += 1
        return counted

    for uid in live:
        sentinel = ("trips", "INSERT", str(ids[f"sentinel-{uid}"]))
        await eventually(lambda uid=uid, sentinel=sentinel: got(uid)[sentinel] > 0, message=f"no sentinel for {uid}")
    for name, uid in user.items():
        if uid in live:
            assert got(uid) == expected[uid], (
                f"{name}: missing {expected[uid] - got(uid)}, extra {got(uid) - expected[uid]}"
            )
    # Every kind of change of every table reached someone: the matrix is not vacuous.
    kinds = {(t, k) for counts in expected.values() for (t, k, _) in counts}
    assert kinds == {(t, k) for t in TABLES for k in ("INSERT", "UPDATE", "DELETE")}
    for client in clients:
        await client.close()
    await conn.close()
