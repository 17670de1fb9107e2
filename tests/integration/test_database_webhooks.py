"""Supabase's Database Webhooks (docs: guides/database/webhooks), the documented trigger unmodified apart from its URL,
on both servers: Supabase's payload and headers reach a real receiver through the pg_net emulation after commit,
each call is logged in supabase_functions.hooks, and a hook never fails the write that fired it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from testkit.runtime import RunningRuntime, running_runtime, runtime_settings

from tests.integration.webhooks.conftest import Receiver, serving

WAIT = 20.0  # seconds: a generous bound for a delivery (never asserted as a timing)
TABLE = "create table public.my_table (id bigint generated always as identity primary key, name text)"
# docs: guides/database/webhooks, "Creating a webhook" (the SQL the Dashboard runs).
DOCUMENTED_TRIGGER = """
create trigger "my_webhook" after insert
on "public"."my_table" for each row
execute function "supabase_functions"."http_request"(
  '{url}/hook',
  'POST',
  '{{"Content-Type":"application/json"}}',
  '{{}}',
  '1000'
);
"""


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as recv:
        yield recv


@pytest.fixture
async def net_runtime(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RunningRuntime]:
    # The receiver is on loopback: allowed explicitly for the net worker's SSRF guard.
    monkeypatch.setenv("TRIPSAGE_NET_ALLOW_HOSTS", "127.0.0.1")
    async with running_runtime(runtime_settings(tmp_path), database) as running:
        yield running


async def received(receiver: Receiver, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while len(receiver.received) < count:
        assert asyncio.get_running_loop().time() < deadline, f"received {receiver.received}"
        await asyncio.sleep(0.05)


def hooks(database: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute(
            "SELECT hook_table_id::oid::regclass::text, hook_name, request_id IS NOT NULL "
            "FROM supabase_functions.hooks ORDER BY id"
        ).fetchall()


async def test_documented_webhook_delivers_supabases_payload(
    net_runtime: RunningRuntime, database: str, receiver: Receiver
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(TABLE)
        conn.execute(DOCUMENTED_TRIGGER.format(url=receiver.url))
        with conn.transaction():
            conn.execute("insert into public.my_table (name) values ('first')")
            await asyncio.sleep(0.2)
            assert receiver.received == [], "sent only after commit"
    await received(receiver, 1)
    (request,) = receiver.received
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "type": "INSERT",
        "table": "my_table",
        "schema": "public",
        "record": {"id": 1, "name": "first"},
        "old_record": None,
    }
    assert hooks(database) == [("my_table", "my_webhook", True)]
    with psycopg.connect(database) as conn:
        # Logged as Supabase logs it: the request id is pg_net's, whose response is kept in net._http_response.
        for _ in range(int(WAIT / 0.05)):
            row = conn.execute(
                "SELECT r.status_code FROM supabase_functions.hooks h JOIN net._http_response r ON r.id = h.request_id"
            ).fetchone()
            if row is not None:
                break
            conn.rollback()
            await asyncio.sleep(0.05)
        assert row == (200,)


async def test_update_and_delete_carry_old_record(
    net_runtime: RunningRuntime, database: str, receiver: Receiver
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(TABLE)
        conn.execute("insert into public.my_table (name) values ('before')")
        conn.execute(
            "create trigger changes after update or delete on public.my_table for each row execute function "
            f"supabase_functions.http_request('{receiver.url}/changes', 'POST', null, null, null)"
        )
        conn.execute("update public.my_table set name = 'after'")
        conn.execute("delete from public.my_table")
    await received(receiver, 2)
    bodies = sorted((json.loads(r.body) for r in receiver.received), key=lambda b: b["type"], reverse=True)
    assert bodies[0] == {
        "type": "UPDATE",
        "table": "my_table",
        "schema": "public",
        "record": {"id": 1, "name": "after"},
        "old_record": {"id": 1, "name": "before"},
    }
    assert bodies[1]["type"] == "DELETE" and bodies[1]["record"] is None
    assert bodies[1]["old_record"] == {"id": 1, "name": "after"}


async def test_bad_hooks_never_fail_the_write(net_runtime: RunningRuntime, database: str) -> None:
    bad_arguments = {
        "no_arguments": "",
        "no_method": "'http://127.0.0.1:9/x'",
        "bad_method": "'http://127.0.0.1:9/x', 'PATCH'",
        "bad_headers": "'http://127.0.0.1:9/x', 'POST', 'not json'",
        "bad_timeout": "'http://127.0.0.1:9/x', 'POST', '{}', '{}', 'soon'",
    }
    messages: list[str] = []
    with psycopg.connect(database, autocommit=True) as conn:
        conn.add_notice_handler(lambda notice: messages.append(str(notice.message_primary)))
        conn.execute(TABLE)
        for name, arguments in bad_arguments.items():
            conn.execute(
                f"create trigger {name} after insert on public.my_table for each row "
                f"execute function supabase_functions.http_request({arguments})"
            )
        # Nothing listens on port 9 (discard): the request is made and fails after commit.
        conn.execute(
            "create trigger unreachable after insert on public.my_table for each row "
            "execute function supabase_functions.http_request('http://127.0.0.1:9/x', 'POST', '{}', '{}', '1000')"
        )
        conn.execute("insert into public.my_table (name) values ('kept')")
        assert conn.execute("select name from public.my_table").fetchall() == [("kept",)]
    logged = {name: has_request for _table, name, has_request in hooks(database)}
    assert logged == dict.fromkeys(bad_arguments, False) | {"unreachable": True}
    assert any("url argument is missing" in m for m in messages), messages
    assert any("method argument is missing" in m for m in messages), messages
    assert any("method argument PATCH is invalid" in m for m in messages), messages
    with psycopg.connect(database) as conn:
        for _ in range(int(WAIT / 0.05)):
            row = conn.execute(
                "SELECT r.status_code, r.error_msg IS NOT NULL FROM supabase_functions.hooks h "
                "JOIN net._http_response r ON r.id = h.request_id WHERE h.hook_name = 'unreachable'"
            ).fetchone()
            if row is not None:
                break
            conn.rollback()
            await asyncio.sleep(0.05)
        assert row == (None, True)


def test_function_and_log_table_have_supabases_shape(database: str) -> None:
    with psycopg.connect(database) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'supabase_functions' "
            "AND table_name = 'hooks' ORDER BY ordinal_position"
        ).fetchall()
        assert columns == [
            ("id", "bigint"),
            ("hook_table_id", "integer"),
            ("hook_name", "text"),
            ("created_at", "timestamp with time zone"),
            ("request_id", "bigint"),
        ]
        assert conn.execute(
            "SELECT pg_get_function_result('supabase_functions.http_request'::regproc), "
            "has_function_privilege('authenticated', 'supabase_functions.http_request()', 'EXECUTE'), "
            "has_table_privilege('anon', 'supabase_functions.hooks', 'SELECT')"
        ).fetchone() == ("trigger", True, False)
