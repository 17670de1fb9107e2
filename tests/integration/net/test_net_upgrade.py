"""Migration 20261127170000_net_parity upgrades a database deployed with the earlier emulation in place: queued
requests and stored responses survive, and the upgraded API works on them."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from testkit import servers

from tests.integration.test_schema_equality import MIGRATIONS, psql_files

PARITY = "20261127170000_net_parity.sql"


def test_parity_migration_keeps_queued_requests_and_responses(server: servers.Server) -> None:
    name = server.create_database(template=None)
    try:
        url = server.url(name)
        earlier = sorted(p for p in MIGRATIONS.glob("*.sql") if p.name < PARITY)
        psql_files(server, url, earlier)
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            queued = conn.execute("SELECT net.http_post('http://x.test/q', '{\"a\": 1}') AS id").fetchone()
            conn.execute("INSERT INTO net._http_response (id, status_code, content) VALUES (424242, 200, 'kept')")
        psql_files(server, url, [MIGRATIONS / PARITY])
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            row = conn.execute("SELECT id, method, url, body FROM net.http_request_queue").fetchone()
            assert queued is not None and row is not None
            assert (row["id"], row["method"], row["url"]) == (queued["id"], "POST", "http://x.test/q")
            assert bytes(row["body"]) == b'{"a": 1}'
            method_type = conn.execute(
                "SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute"
                " WHERE attrelid = 'net.http_request_queue'::regclass AND attname = 'method'"
            ).fetchone()
            assert method_type == {"type": "net.http_method"}
            collected = conn.execute("SELECT ((net._http_collect_response(424242)).response).body").fetchone()
            assert collected == {"body": "kept"}
            following = conn.execute("SELECT net.http_get('http://x.test/next') AS id").fetchone()
            assert following is not None and following["id"] == queued["id"] + 1
    finally:
        server.drop_database(name)
