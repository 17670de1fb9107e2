"""pg_net 0.20's SQL surface, emulated: every function and type with pg_net's signature, URL encoding and URL
errors as libcurl's URL API gives them, collecting responses, and the privileges (anon and authenticated refused)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql
from psycopg.rows import dict_row

FUNCTIONS = {
    "http_get": (
        "url text, params jsonb DEFAULT '{}'::jsonb, headers jsonb DEFAULT '{}'::jsonb, "
        "timeout_milliseconds integer DEFAULT 5000",
        "bigint",
    ),
    "http_post": (
        "url text, body jsonb DEFAULT '{}'::jsonb, params jsonb DEFAULT '{}'::jsonb, "
        'headers jsonb DEFAULT \'{"Content-Type": "application/json"}\'::jsonb, '
        "timeout_milliseconds integer DEFAULT 5000",
        "bigint",
    ),
    "http_delete": (
        "url text, params jsonb DEFAULT '{}'::jsonb, headers jsonb DEFAULT '{}'::jsonb, "
        "timeout_milliseconds integer DEFAULT 5000, body jsonb DEFAULT NULL::jsonb",
        "bigint",
    ),
    "_http_collect_response": ("request_id bigint, async boolean DEFAULT true", "net.http_response_result"),
    "http_collect_response": ("request_id bigint, async boolean DEFAULT true", "net.http_response_result"),
    "_await_response": ("request_id bigint", "boolean"),
    "_urlencode_string": ("string character varying", "text"),
    "_encode_url_with_params_array": ("url text, params_array text[]", "text"),
    "worker_restart": ("", "boolean"),
    "wait_until_running": ("", "void"),
    "check_worker_is_up": ("", "void"),
    "wake": ("", "void"),
}


def connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def value(conn: psycopg.Connection[dict[str, Any]], query: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def test_functions_and_types_have_pg_nets_signatures(database: str) -> None:
    with connect(database) as conn:
        for name, (arguments, result) in FUNCTIONS.items():
            row = conn.execute(
                "SELECT pg_get_function_arguments(p.oid) AS args, pg_get_function_result(p.oid) AS result"
                " FROM pg_proc p WHERE p.pronamespace = 'net'::regnamespace AND p.proname = %s",
                [name],
            ).fetchone()
            assert row == {"args": arguments, "result": result}, name
        assert value(conn, "SELECT enum_range(NULL::net.request_status)::text") == "{PENDING,SUCCESS,ERROR}"
        attributes = conn.execute(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = 'net'::regnamespace AND c.relkind = 'c' AND a.attnum > 0"
            " ORDER BY c.relname, a.attnum"
        ).fetchall()
        assert [(a["relname"], a["attname"], a["type"]) for a in attributes] == [
            ("http_response", "status_code", "integer"),
            ("http_response", "headers", "jsonb"),
            ("http_response", "body", "text"),
            ("http_response_result", "status", "net.request_status"),
            ("http_response_result", "message", "text"),
            ("http_response_result", "response", "net.http_response"),
        ]
        status = conn.execute("SELECT status, version FROM verify_extensions() WHERE name = 'pg_net'").fetchone()
        assert status is not None and status["status"] == "emulated" and "0.20" in str(status["version"])
        # http_method is pg_net's domain over text: any case of GET, POST, DELETE.
        assert value(conn, "SELECT 'get'::net.http_method::text") == "get"
        with pytest.raises(psycopg.errors.CheckViolation, match=r"domain net\.http_method violates check constraint"):
            conn.execute("SELECT 'PUT'::net.http_method")


ENCODED = [
    ("http://localhost:8080", ["k=v%20"], "http://localhost:8080/?k=v%20"),
    ("http://x/?a=1", ["b=2", "c=3"], "http://x/?a=1&b=2&c=3"),
    ("HTTP://x.test/p#frag", ["k=v"], "http://x.test/p?k=v#frag"),
    ("http://x?y", ["k=v"], "http://x/?y&k=v"),
    ("http://x/p?", [], "http://x/p"),
    ("http://[::1]:80", [], "http://[::1]:80/"),
    ("http:/x", [], "http://x/"),
    ("http://x:/p", [], "http://x/p"),
    ("http://user:pw@x/p", [], "http://user:pw@x/p"),
    ("http://x/a/./b/../c", [], "http://x/a/c"),
    ("http://x/a/b/..", [], "http://x/a/"),
    ("http://x/a//../b", [], "http://x/a/b"),
    ("http://x/../../a", [], "http://x/a"),
    ("http://x/.", [], "http://x/"),
    ("http://x/a/.../b?c/../d#/../e", [], "http://x/a/.../b?c/../d#/../e"),
    ("http://bücher.de/", [], "http://bücher.de/"),
]
URL_ERRORS = [
    ("localhost:1", "Unsupported URL scheme"),
    ("mailto:x", "Unsupported URL scheme"),
    ("/malformed_url", "Bad scheme"),
    ("", "Bad scheme"),
    ("https://", "No host part in the URL"),
    ("http://x:99999/", "Port number was not a decimal number between 0 and 65535"),
    ("http://ex ample.com/", "Bad hostname"),
    ("http://x/a b", "Bad path"),
    ("http://x/?a b", "Bad query"),
    ("http:x", "Unsupported number of slashes following scheme"),
    ("http://[::1/", "Bad IPv6 address"),
]


def test_url_encoding_is_libcurls(database: str) -> None:
    with connect(database) as conn:
        assert value(conn, "SELECT net._urlencode_string('a b!é~-._*')") == "a%20b%21%C3%A9~-._%2A"
        assert value(conn, "SELECT net._urlencode_string(NULL)") is None
        for url, params, expected in ENCODED:
            assert value(conn, "SELECT net._encode_url_with_params_array(%s, %s)", [url, params]) == expected, url
        assert value(conn, "SELECT net._encode_url_with_params_array('http://x/', NULL)") is None
        request_id = value(conn, 'SELECT net.http_get(\'http://x.test/p\', \'{"q": "a b&c/é", "n": "1"}\')')
        url = value(conn, "SELECT url FROM net.http_request_queue WHERE id = %s", [request_id])
        assert url == "http://x.test/p?n=1&q=a%20b%26c%2F%C3%A9"  # jsonb's key order


def test_malformed_calls_get_pg_nets_errors_and_queue_nothing(database: str) -> None:
    with connect(database) as conn:
        for url, reason in URL_ERRORS:
            with pytest.raises(psycopg.errors.InternalError_) as raised:
                conn.execute("SELECT net.http_get(%s)", [url])
            assert raised.value.diag.message_primary == f'invalid URL "{url}": {reason}'
            assert raised.value.sqlstate == "XX000"
        for call in ("net.http_get(NULL)", "net.http_post(NULL, '{}')", "net.http_delete(NULL)"):
            with pytest.raises(psycopg.errors.NotNullViolation, match='null value in column "url"'):
                conn.execute(pgsql.SQL("SELECT {}").format(pgsql.SQL(call)))  # type: ignore[arg-type]
        with pytest.raises(psycopg.errors.NotNullViolation, match='column "timeout_milliseconds"'):
            conn.execute("SELECT net.http_get('http://x.test/', timeout_milliseconds => NULL)")
        with pytest.raises(psycopg.errors.RaiseException, match=r"^Content-Type header must be \"application/json\"\n"):
            conn.execute("SELECT net.http_post('http://x.test/', headers => '{\"content-type\": \"text/plain\"}')")
        with pytest.raises(psycopg.errors.RaiseException), conn.transaction():
            conn.execute("SELECT net.http_get('http://x.test/')")
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'rolled back'; END $$")
        assert value(conn, "SELECT count(*) FROM net.http_request_queue") == 0


def test_request_functions_queue_what_pg_net_queues(database: str) -> None:
    with connect(database) as conn:
        post = value(conn, "SELECT net.http_post('http://x.test/', '{\"a\": 1}')")
        no_headers = value(conn, "SELECT net.http_post('http://x.test/', headers => NULL)")
        upper = value(conn, "SELECT net.http_post('http://x.test/', headers => '{\"X-A\": \"1\"}')")
        delete = value(conn, "SELECT net.http_delete('http://x.test/', body => '{\"b\": 2}')")
        rows = {
            r["id"]: r
            for r in conn.execute("SELECT id, method, headers, body, timeout_milliseconds FROM net.http_request_queue")
        }
        assert rows[post]["method"] == "POST" and bytes(rows[post]["body"]) == b'{"a": 1}'
        assert rows[post]["headers"] == {"Content-Type": "application/json"}
        assert rows[no_headers]["headers"] is None  # NULL || {...} stays NULL, as in pg_net
        assert rows[upper]["headers"] == {"X-A": "1", "Content-Type": "application/json"}
        assert rows[delete]["method"] == "DELETE" and bytes(rows[delete]["body"]) == b'{"b": 2}'
        assert {r["timeout_milliseconds"] for r in rows.values()} == {5000}


def test_collect_response_without_a_response(database: str) -> None:
    with connect(database) as conn:
        row = conn.execute("SELECT (net._http_collect_response(424242)).*").fetchone()
        assert row == {"status": "ERROR", "message": "request matching request_id not found", "response": None}
        # Deprecated in pg_net, whose body is a SELECT without a destination: it fails the same way.
        with pytest.raises(psycopg.errors.SyntaxError, match="query has no destination for result data"):
            conn.execute("SELECT net.http_collect_response(424242)")


def test_worker_functions_without_a_worker(database: str) -> None:
    with connect(database) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match=r"^the pg_net background worker is not up\n") as raised:
            conn.execute("SELECT net.check_worker_is_up()")
        assert raised.value.diag.message_detail == (
            "the pg_net background worker is down due to an internal error and cannot process requests"
        )
        assert raised.value.diag.message_hint == "make sure that you didn't modify any of pg_net internal tables"
        assert value(conn, "SELECT net.wake()::text") == ""
        assert value(conn, "SELECT net.worker_restart()") is True


REFUSED = [
    ("SELECT net.http_get('http://x.test/')", "permission denied for function http_get"),
    ("SELECT net.http_post('http://x.test/')", "permission denied for function http_post"),
    ("SELECT net.http_delete('http://x.test/')", "permission denied for function http_delete"),
    ("SELECT net._http_collect_response(1)", "permission denied for function _http_collect_response"),
    ("SELECT net.worker_restart()", "permission denied for function worker_restart"),
    ("SELECT net._worker_is_up()", "permission denied for function _worker_is_up"),
    ("SELECT * FROM net._http_response", "permission denied for table _http_response"),
    ("SELECT * FROM net.http_request_queue", "permission denied for table http_request_queue"),
    ("DELETE FROM net._http_response", "permission denied for table _http_response"),
    (
        "INSERT INTO net.http_request_queue (method, url, timeout_milliseconds) VALUES ('GET', 'http://x/', 1)",
        "permission denied for table http_request_queue",
    ),
]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_request_roles_are_refused_with_postgres_error(database: str, role: str) -> None:
    with connect(database) as conn:
        # Row security refuses them row by row: with no row to read there is nothing to refuse (nor to see).
        conn.execute("INSERT INTO net._http_response (id, status_code) VALUES (1, 200)")
        conn.execute("SELECT net.http_get('http://x.test/queued')")
        for statement, message in REFUSED:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised, conn.transaction():
                conn.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(role)))
                conn.execute(pgsql.SQL(statement))  # type: ignore[arg-type]
            assert raised.value.diag.message_primary == message, statement
            assert raised.value.sqlstate == "42501"
        assert value(conn, "SELECT count(*) FROM net.http_request_queue") == 1
        assert value(conn, "SELECT count(*) FROM net._http_response") == 1


def test_other_roles_keep_pg_nets_grants(database: str) -> None:
    """As with pg_net's grants to PUBLIC: service_role and a role created after deploy may use net."""
    another = pgsql.Identifier(f"net_user_{uuid.uuid4().hex[:8]}")
    with connect(database) as conn:
        conn.execute(pgsql.SQL("CREATE ROLE {}").format(another))
        try:
            for role in (pgsql.Identifier("service_role"), another):
                with conn.transaction():
                    conn.execute(pgsql.SQL("SET LOCAL ROLE {}").format(role))
                    request_id = value(conn, "SELECT net.http_get('http://x.test/')")
                    assert value(conn, "SELECT count(*) FROM net.http_request_queue WHERE id = %s", [request_id]) == 1
                    assert value(conn, "SELECT (net._http_collect_response(%s)).status::text", [request_id]) == "ERROR"
                    assert value(conn, "SELECT net.worker_restart()") is True
                    conn.execute("DELETE FROM net.http_request_queue")
        finally:
            conn.execute(pgsql.SQL("DROP ROLE {}").format(another))
