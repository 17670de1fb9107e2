"""Supabase compatibility on plain PostgreSQL, and leaving Supabase's own objects alone where they exist."""

from __future__ import annotations

import json

import psycopg

from tests import servers
from tripsage.db.migrations import Deployer

MIGRATIONS = servers.REPO / "supabase" / "migrations"


def test_roles_exist_with_supabase_attributes(database: str) -> None:
    with psycopg.connect(database) as conn:
        rows = dict(
            conn.execute(
                "SELECT rolname, rolbypassrls FROM pg_roles "
                "WHERE rolname IN ('anon', 'authenticated', 'service_role', 'tripsage_automation')"
            ).fetchall()
        )
    assert rows == {"anon": False, "authenticated": False, "service_role": True, "tripsage_automation": False}


def test_auth_helpers_read_jwt_claims_like_supabase(database: str) -> None:
    claims = {"sub": "00000000-0000-4000-8000-0000000000aa", "role": "authenticated", "email": "a@example.test"}
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT auth.uid(), auth.role(), auth.jwt()").fetchone() == (None, None, None)
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        uid, role, jwt = conn.execute("SELECT auth.uid()::text, auth.role(), auth.jwt()").fetchone()  # type: ignore[misc]
        assert (uid, role, jwt["email"]) == (claims["sub"], "authenticated", "a@example.test")
        # The legacy per-claim settings win, as in Supabase's definitions.
        conn.execute("SELECT set_config('request.jwt.claim.sub', '00000000-0000-4000-8000-0000000000bb', true)")
        assert conn.execute("SELECT auth.uid()::text").fetchone() == ("00000000-0000-4000-8000-0000000000bb",)


async def test_existing_auth_schema_is_left_alone(server: servers.Server, empty_database: str) -> None:
    # As on Supabase: auth already exists (owned by GoTrue) with its own definitions.
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA auth")
        conn.execute("CREATE TABLE auth.users (id uuid PRIMARY KEY, email text, instance_id uuid)")
        conn.execute(
            "CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS "
            "$$ SELECT '00000000-0000-4000-8000-000000000123'::uuid $$"
        )
        conn.execute("CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'x' $$")
        conn.execute("CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$")
    await Deployer(empty_database, MIGRATIONS).deploy()
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT auth.uid()::text").fetchone() == ("00000000-0000-4000-8000-000000000123",)
        columns = [
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'auth' "
                "AND table_name = 'users' ORDER BY ordinal_position"
            ).fetchall()
        ]
    assert columns == ["id", "email", "instance_id"]


def test_security_definer_functions_pin_search_path(database: str) -> None:
    with psycopg.connect(database) as conn:
        unpinned = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'extensions') "
            "AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search_path=%')"
        ).fetchall()
    assert unpinned == []
