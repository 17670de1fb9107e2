"""verify_extensions() and verify_automation_setup() report each server as it is."""

from __future__ import annotations

import psycopg
from testkit import servers


def extension_statuses(url: str) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT name, status, version FROM verify_extensions()").fetchall()
    return {name: (status, version) for name, status, version in rows}


def test_embedded_server_extensions(embedded_database: str) -> None:
    statuses = extension_statuses(embedded_database)
    assert list(statuses) == ["pg_cron", "pg_net", "vector", "pg_stat_statements", "btree_gist", "pgcrypto"]
    for name in ("vector", "pg_stat_statements", "btree_gist"):
        assert statuses[name][0] == "native", name
    # The wheel has no pgcrypto: reported as it is.
    assert statuses["pgcrypto"] == ("missing", None)
    # pg_cron and pg_net: emulated once the scheduler and webhooks migrations are in, never "native" here.
    assert statuses["pg_cron"][0] in {"emulated", "missing"}
    assert statuses["pg_net"][0] in {"emulated", "missing"}


def test_system_server_extensions_are_native(system_server: servers.Server) -> None:
    # pg_cron is native only in cron.database_name (postgres), where the suite deploys too.
    statuses = extension_statuses(system_server.admin_url)
    for name in ("pg_cron", "pgcrypto", "vector", "pg_stat_statements", "btree_gist"):
        assert statuses[name][0] == "native", (name, statuses[name])


def test_realtime_publication_holds_the_six_tables(database: str) -> None:
    with psycopg.connect(database) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
            ).fetchall()
        }
        realtime = conn.execute(
            "SELECT status, details FROM verify_automation_setup() WHERE component = 'realtime'"
        ).fetchone()
    assert tables >= {
        "trips",
        "chat_messages",
        "chat_sessions",
        "trip_collaborators",
        "itinerary_items",
        "chat_tool_calls",
    }
    assert realtime is not None and realtime[0] == "ok"


def test_redeploy_keeps_tables_added_to_the_publication(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.extra (id int PRIMARY KEY)")
        conn.execute("ALTER TABLE public.extra ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER PUBLICATION supabase_realtime ADD TABLE public.extra")
        # Re-running the publication block (as a fresh deploy of the same SQL would) must not drop it.
        conn.execute((servers.REPO / "supabase" / "schemas" / "06_realtime.sql").read_bytes())
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
            ).fetchall()
        }
    assert "extra" in tables


def test_missing_publication_table_is_an_error(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("ALTER PUBLICATION supabase_realtime DROP TABLE public.chat_tool_calls")
        row = conn.execute(
            "SELECT status, details FROM verify_automation_setup() WHERE component = 'realtime'"
        ).fetchone()
    assert row == ("error", "publication supabase_realtime lacks chat_tool_calls")
