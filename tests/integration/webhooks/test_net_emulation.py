"""The pg_net emulation, tested from pg_net's documented behaviour: the functions' exact signatures and defaults,
the queue and response tables' columns, sending only after commit, params URL-encoded, JSON-only POST bodies,
timeouts reported in the response, responses kept for pg_net.ttl, and the worker executing the queue."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import psycopg
import pytest
from aiohttp import web
from psycopg.rows import dict_row

from tests.integration.webhooks.conftest import Receiver, sql
from tripsage.db.connector import Database
from tripsage.net.worker import NetWorker

SIGNATURES = {
    "http_get": "url text, params jsonb DEFAULT '{}'::jsonb, headers jsonb DEFAULT '{}'::jsonb, "
    "timeout_milliseconds integer DEFAULT 5000",
    "http_post": "url text, body jsonb DEFAULT '{}'::jsonb, params jsonb DEFAULT '{}'::jsonb, "
    'headers jsonb DEFAULT \'{"Content-Type": "application/json"}\'::jsonb, timeout_milliseconds integer DEFAULT 5000',
    "http_delete": "url text, params jsonb DEFAULT '{}'::jsonb, headers jsonb DEFAULT '{}'::jsonb, "
    "timeout_milliseconds integer DEFAULT 5000, body jsonb DEFAULT NULL::jsonb",
}


def columns(conn: psycopg.Connection[dict[str, Any]], table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'net'"
        " AND table_name = %s ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [(r["column_name"], r["data_type"]) for r in rows]


def test_api_matches_pg_net(database: str) -> None:
    with psycopg.connect(database, autocommit=True, row_factory=dict_row) as conn:
        for name, arguments in SIGNATURES.items():
            row = conn.execute(
                "SELECT pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result"
                " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'net' AND p.proname = %s",
                [name],
            ).fetchone()
            assert row == {"args": arguments, "result": "bigint"}, name
        assert columns(conn, "http_request_queue") == [
            ("id", "bigint"),
            ("method", "USER-DEFINED"),
            ("url", "text"),
            ("headers", "jsonb"),
            ("body", "bytea"),
            ("timeout_milliseconds", "integer"),
        ]
        assert columns(conn, "_http_response") == [
            ("id", "bigint"),
            ("status_code", "integer"),
            ("content_type", "text"),
            ("headers", "jsonb"),
            ("content", "text"),
            ("timed_out", "boolean"),
            ("error_msg", "text"),
            ("created", "timestamp with time zone"),
        ]
        status = conn.execute("SELECT * FROM verify_extensions() WHERE name = 'pg_net'").fetchone()
        assert status is not None and status["status"] == "emulated" and "0.20" in str(status["version"])


def test_queueing_rules(database: str) -> None:
    with psycopg.connect(database, autocommit=True, row_factory=dict_row) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="Content-Type header must be"):
            conn.execute("SELECT net.http_post('http://x.test/', headers => '{\"Content-Type\": \"text/plain\"}')")
        with pytest.raises(psycopg.errors.RaiseException, match="url must start with http"):
            conn.execute("SELECT net.http_get('ftp://x.test/')")
        with pytest.raises(psycopg.errors.RaiseException), conn.transaction():
            conn.execute("SELECT net.http_get('http://x.test/')")
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'rolled back'; END $$")
        assert conn.execute("SELECT count(*) AS n FROM net.http_request_queue").fetchone() == {"n": 0}
        row = conn.execute(
            'SELECT net.http_get(\'http://x.test/p\', params => \'{"q": "a b&c/é", "n": "1"}\') AS id'
        ).fetchone()
        assert row is not None
        queued = conn.execute("SELECT * FROM net.http_request_queue WHERE id = %s", [row["id"]]).fetchone()
        assert queued is not None and queued["method"] == "GET" and queued["timeout_milliseconds"] == 5000
        assert queued["url"] in ("http://x.test/p?q=a%20b%26c%2F%C3%A9&n=1", "http://x.test/p?n=1&q=a%20b%26c%2F%C3%A9")
        post = conn.execute("SELECT net.http_post('http://x.test/', '{\"a\": 1}') AS id").fetchone()
        assert post is not None
        body = conn.execute("SELECT body, headers FROM net.http_request_queue WHERE id = %s", [post["id"]]).fetchone()
        assert body is not None and json.loads(bytes(body["body"])) == {"a": 1}
        assert body["headers"] == {"Content-Type": "application/json"}
        # service_role (what automation runs as) may call the API.
        with conn.transaction():
            conn.execute("SET LOCAL ROLE service_role")
            conn.execute("SELECT net.http_delete('http://x.test/')")


async def test_worker_sends_after_commit_and_stores_responses(embedded_database: str, receiver: Receiver) -> None:
    def answer(r: Any) -> web.Response:
        if r.path == "/slow":
            return web.Response(text="late")
        return web.json_response({"path": r.path, "body": r.body.decode()}, headers={"X-Test": "yes"})

    receiver.answer = answer
    async with Database(embedded_database, max_size=4) as db:
        worker = NetWorker(db)
        assert await worker.emulated()
        await worker.open()
        try:
            async with db.transaction() as conn:
                cursor = await conn.execute(
                    'SELECT net.http_post(%s, \'{"hello": "world"}\') AS post,'
                    ' net.http_get(%s, \'{"x": "1"}\') AS get, net.http_delete(%s) AS del',
                    [receiver.url + "/post", receiver.url + "/get", receiver.url + "/del"],
                )
                ids = await cursor.fetchone()
                assert ids is not None
                assert await worker.run_once() == 0  # not committed: invisible to the worker
            assert receiver.received == []
            assert await worker.run_once() == 3
            responses = {r["id"]: r for r in await sql(db, "SELECT * FROM net._http_response")}
            post = responses[ids["post"]]
            assert post["status_code"] == 200 and post["content_type"] == "application/json; charset=utf-8"
            assert json.loads(post["content"]) == {"path": "/post", "body": '{"hello": "world"}'}
            assert post["headers"]["X-Test"] == "yes" and post["timed_out"] is False and post["error_msg"] is None
            assert sorted(r.path for r in receiver.received) == ["/del", "/get", "/post"]
            methods = sorted(r.headers.get("Content-Type", "") for r in receiver.received)
            assert "application/json" in methods
            assert await sql(db, "SELECT count(*) AS n FROM net.http_request_queue") == [{"n": 0}]

            receiver.delay = 1.0
            await sql(db, "SELECT net.http_get(%(u)s, timeout_milliseconds => 200)", {"u": receiver.url + "/slow"})
            await sql(db, "SELECT net.http_get('http://127.0.0.1:9/closed')")
            assert await worker.run_once() == 2
            rows = await sql(db, "SELECT * FROM net._http_response WHERE status_code IS NULL ORDER BY id")
            assert rows[0]["timed_out"] is True and "Timeout of 200 ms" in rows[0]["error_msg"]
            assert rows[1]["timed_out"] is False and rows[1]["error_msg"]

            # Responses live for pg_net.ttl (6 hours by default).
            old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=7)
            await sql(
                db, "UPDATE net._http_response SET created = %(t)s WHERE id = %(id)s", {"t": old, "id": ids["post"]}
            )
            await worker.run_once()
            remaining = {r["id"] for r in await sql(db, "SELECT id FROM net._http_response")}
            assert ids["post"] not in remaining and ids["get"] in remaining
        finally:
            await worker.close()


async def test_queue_is_durable_and_an_interrupted_round_keeps_its_requests(
    embedded_database: str, receiver: Receiver
) -> None:
    receiver.delay = 5.0
    async with Database(embedded_database, max_size=4) as db:
        # pg_net's queue is UNLOGGED (lost in a crash); ours is a logged table.
        [row] = await sql(db, "SELECT relpersistence FROM pg_class WHERE oid = 'net.http_request_queue'::regclass")
        assert row["relpersistence"] == "p"
        await sql(db, "SELECT net.http_get(%(u)s, timeout_milliseconds => 10000)", {"u": receiver.url + "/slow"})
        worker = NetWorker(db)
        await worker.open()
        try:
            round_ = asyncio.create_task(worker.run_once())
            while not receiver.received:
                await asyncio.sleep(0.02)
            round_.cancel()  # the worker dies mid-request: its transaction rolls back
            with pytest.raises(asyncio.CancelledError):
                await round_
        finally:
            await worker.close()
        assert await sql(db, "SELECT count(*) AS n FROM net.http_request_queue") == [{"n": 1}]
        assert await sql(db, "SELECT count(*) AS n FROM net._http_response") == [{"n": 0}]
