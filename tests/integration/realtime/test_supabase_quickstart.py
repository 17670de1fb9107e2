"""Supabase's Realtime quickstart (docs: guides/realtime/postgres-changes), its SQL unmodified, on both servers: a new
table in public is granted to anon by the default privileges, RLS decides the rows, an anon subscriber receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings
from testkit.waiting import eventually

from tests.integration.realtime.conftest import anon_key, subscribe

QUICKSTART_SQL = """
create table todos (
  id serial primary key,
  task text
);

alter table "todos" enable row level security;

create policy "Allow anonymous access"
on todos
for select
to anon
using (true);

alter publication supabase_realtime add table todos;
"""


@pytest.fixture
async def any_runtime(database: str, tmp_path: Path) -> AsyncIterator[RunningRuntime]:
    async with running_runtime(runtime_settings(tmp_path), database) as running:
        yield running


async def test_quickstart_delivers_to_an_anon_subscriber(
    any_runtime: RunningRuntime, database: str, closing: list[object]
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(QUICKSTART_SQL)
    binding = {"event": "INSERT", "schema": "public", "table": "todos"}
    anon = await subscribe(any_runtime.base_url, anon_key(), "schema-db-changes", [binding])
    closing.append(anon.client)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into todos (task) values ('Change!')")
    await eventually(lambda: len(anon.changes) == 1, message=f"anon got {anon.changes}")
    assert anon.changes[0]["data"]["record"] == {"id": 1, "task": "Change!"}
    # And the Data API's view: anon reads the table through its grant and the policy.
    with psycopg.connect(database) as conn:
        conn.execute("SET ROLE anon")
        assert conn.execute("select task from todos").fetchall() == [("Change!",)]


def test_tripsage_tables_keep_their_explicit_grants(database: str) -> None:
    # The defaults apply to new tables only: anon still has nothing on TripSage's, authenticated only its grants.
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
            "AND (has_table_privilege('anon', c.oid, 'SELECT') "
            "     OR has_table_privilege('authenticated', c.oid, 'TRUNCATE'))"
        ).fetchall()
        assert rows == []
        defaults = conn.execute(
            "SELECT defaclobjtype::text, defaclacl::text FROM pg_default_acl "
            "WHERE defaclnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
    assert [kind for kind, _ in defaults] == ["S", "f", "r"]
    for _, acl in defaults:
        assert all(f"{role}=" in acl for role in ("anon", "authenticated", "service_role")), acl
