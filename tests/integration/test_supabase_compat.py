"""Supabase compatibility on plain PostgreSQL, and leaving Supabase's own objects alone where they exist."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from testkit import servers

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


# --- Deploying onto a Supabase-shaped database (see /work/shared/reference/supabase-standin.md) -------------------

SUPABASE_ROLES = ("supabase_admin", "supabase_auth_admin", "authenticator")
CLI_COLUMNS = ["version", "statements", "name"]
# What Supabase's init scripts and services leave behind that a deploy depends on (supabase/postgres
# migrations/db/init-scripts, supabase/auth's migrations, the Supabase CLI's history table), with a user's own table,
# function, trigger on auth.users and policies.
SUPABASE_SHAPE = """
GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR USER supabase_admin IN SCHEMA public GRANT ALL
    ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR USER supabase_admin IN SCHEMA public GRANT ALL
    ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR USER supabase_admin IN SCHEMA public GRANT ALL
    ON SEQUENCES TO postgres, anon, authenticated, service_role;
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;

CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
SET ROLE supabase_auth_admin;
CREATE TABLE auth.schema_migrations (version varchar(255) PRIMARY KEY);
INSERT INTO auth.schema_migrations VALUES ('20171026211738');
CREATE TABLE auth.users (
    instance_id uuid, id uuid PRIMARY KEY, aud varchar(255), role varchar(255), email varchar(255) UNIQUE,
    raw_app_meta_data jsonb, raw_user_meta_data jsonb, created_at timestamptz, updated_at timestamptz
);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid $$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'))::text $$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                    nullif(current_setting('request.jwt.claims', true), ''))::jsonb $$;
RESET ROLE;

-- Database Webhooks as Supabase's image made them (a stand-in body: ours must not replace it).
CREATE SCHEMA supabase_functions AUTHORIZATION supabase_admin;
CREATE FUNCTION supabase_functions.http_request() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
-- Vault as supabase_vault made it (a stand-in: pgsodium is not available here).
CREATE SCHEMA vault;
CREATE TABLE vault.secrets (id uuid PRIMARY KEY, name text, secret text NOT NULL);

CREATE SCHEMA supabase_migrations;
CREATE TABLE supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY, statements text[], name text);
INSERT INTO supabase_migrations.schema_migrations VALUES
    ('20240101000000', ARRAY['create table public.profiles (id uuid primary key)'], 'profiles');

-- The user's own objects, made through Supabase's default privileges.
CREATE TABLE public.profiles (id uuid PRIMARY KEY REFERENCES auth.users ON DELETE CASCADE, username text);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Public profiles are viewable by everyone." ON public.profiles FOR SELECT USING (true);
CREATE POLICY "Users can update own profile." ON public.profiles FOR UPDATE USING (auth.uid() = id);
CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
    AS $$ BEGIN INSERT INTO public.profiles (id) VALUES (new.id); RETURN new; END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();
"""
# Every privilege, owner and default privilege outside TripSage's own objects.
USER_OBJECTS_STATE = """
SELECT 'table ' || n.nspname || '.' || c.relname || ' ' || c.relowner::regrole::text || ' '
       || coalesce(c.relacl::text, '') || ' rls=' || c.relrowsecurity
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname IN ('auth', 'supabase_migrations') OR (n.nspname = 'public' AND c.relname = 'profiles'))
  AND c.relkind IN ('r', 'S', 'v')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text || ' ' || coalesce(p.proacl::text, '')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE (n.nspname = 'public' AND p.proname = 'handle_new_user') OR n.nspname IN ('auth', 'supabase_functions', 'vault')
UNION ALL
SELECT 'function body ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc)
FROM pg_proc p WHERE p.pronamespace::regnamespace::text = 'supabase_functions'
UNION ALL
SELECT 'relation ' || c.oid::regclass::text FROM pg_class c
WHERE c.relnamespace::regnamespace::text IN ('supabase_functions', 'vault')
UNION ALL
SELECT 'policy ' || policyname || ' ' || roles::text || ' ' || coalesce(qual, '') FROM pg_policies
WHERE tablename = 'profiles'
UNION ALL
SELECT 'trigger ' || tgname || ' ' || tgrelid::regclass::text FROM pg_trigger
WHERE NOT tgisinternal AND tgname <> 'A_realtime_capture'
  AND tgrelid IN ('auth.users'::regclass, 'auth.schema_migrations'::regclass, 'public.profiles'::regclass)
UNION ALL
SELECT 'schema ' || nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace
WHERE nspname IN ('public', 'auth')
UNION ALL
SELECT 'column supabase_migrations.schema_migrations.' || column_name FROM information_schema.columns
WHERE table_schema = 'supabase_migrations' AND table_name = 'schema_migrations'
UNION ALL
SELECT 'history ' || version || ' ' || coalesce(name, '') FROM supabase_migrations.schema_migrations
WHERE version = '20240101000000'
ORDER BY 1
"""


def supabase_state(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(row[0]) for row in conn.execute(USER_OBJECTS_STATE).fetchall()]


def default_acls(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            str(row[0])
            for row in conn.execute(
                "SELECT d.defaclrole::regrole::text || ' ' || d.defaclobjtype::text || ' ' || d.defaclacl::text "
                "FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace "
                "WHERE n.nspname = 'public' ORDER BY 1"
            ).fetchall()
        ]


@pytest.fixture(params=["empty_publication", "for_all_tables"])
def supabase_project(request: pytest.FixtureRequest, server: servers.Server, empty_database: str) -> Iterator[str]:
    """A Supabase-shaped database (as far as a deploy is concerned): its URL."""
    with server.admin() as conn:
        for role, attributes in zip(
            SUPABASE_ROLES, ("SUPERUSER NOLOGIN", "NOINHERIT CREATEROLE NOLOGIN", "NOINHERIT NOLOGIN"), strict=True
        ):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} " + attributes).format(sql.Identifier(role)))
        for role in ("anon", "authenticated", "service_role"):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is None:
                extra = " BYPASSRLS" if role == "service_role" else ""
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT" + extra).format(sql.Identifier(role)))
    try:
        with psycopg.connect(empty_database, autocommit=True) as conn:
            conn.execute(
                sql.SQL("GRANT CREATE ON DATABASE {} TO supabase_auth_admin").format(sql.Identifier(conn.info.dbname))
            )
            if request.param == "for_all_tables":
                conn.execute("CREATE PUBLICATION supabase_realtime FOR ALL TABLES")
            else:
                conn.execute("CREATE PUBLICATION supabase_realtime")
            conn.execute(SUPABASE_SHAPE)
        yield empty_database
    finally:
        with psycopg.connect(empty_database, autocommit=True) as conn:
            conn.execute("DROP OWNED BY supabase_admin, supabase_auth_admin, authenticator CASCADE")
        with server.admin() as conn:
            for role in SUPABASE_ROLES:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


async def test_deploy_onto_a_supabase_project_leaves_the_users_objects_alone(supabase_project: str) -> None:
    url = supabase_project
    before, defaults_before = supabase_state(url), default_acls(url)
    assert any(line.startswith("table public.profiles") and "anon=arwdDxt" in line for line in before), "\n".join(
        before
    )

    dry = await Deployer(url, MIGRATIONS).deploy(dry_run=True)
    assert dry.unknown == ["20240101000000"] and len(dry.pending) == len(list(MIGRATIONS.glob("*.sql")))
    assert supabase_state(url) == before

    await Deployer(url, MIGRATIONS).deploy()
    assert supabase_state(url) == before
    assert default_acls(url) == defaults_before, "Supabase's own default privileges are never touched"
    assert (await Deployer(url, MIGRATIONS).deploy(dry_run=True)).pending == []
    assert (await Deployer(url, MIGRATIONS).deploy()).pending == []
    assert supabase_state(url) == before

    with psycopg.connect(url) as conn:
        # The Data API's view of the user's table is unchanged.
        for role in ("anon", "authenticated"):
            with conn.transaction(force_rollback=True):
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                assert conn.execute("SELECT count(*) FROM public.profiles").fetchone() == (0,)
        # The CLI's history keeps its columns and gains our versions the way `supabase db push` records them.
        rows = conn.execute(
            "SELECT version, name, cardinality(statements) FROM supabase_migrations.schema_migrations ORDER BY 1"
        ).fetchall()
        assert rows[0] == ("20240101000000", "profiles", 1)
        assert [row[0] for row in rows[1:]] == sorted(p.name[:14] for p in MIGRATIONS.glob("*.sql"))
        assert all(row[2] and row[2] >= 1 for row in rows)
        # Capture is limited to tables the gateway may serve, whatever the publication holds.
        captured = {
            str(row[0])
            for row in conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = 'A_realtime_capture'"
            ).fetchall()
        }
        assert {"public.trips", "public.itinerary_items"} <= captured
        assert {name for name in captured if not name.startswith("public.")} == set()


def test_capture_skips_published_tables_it_cannot_own(server: servers.Server, database: str) -> None:
    # On Supabase the deployer (postgres) is no superuser: a published table of another owner is left alone.
    with server.admin() as conn:
        for role in ("tsg_deployer", "tsg_other_owner"):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    try:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.others (id int PRIMARY KEY)")
            conn.execute("ALTER TABLE public.others OWNER TO tsg_other_owner")
            conn.execute("GRANT USAGE ON SCHEMA tripsage_realtime TO tsg_deployer")
            conn.execute("ALTER FUNCTION tripsage_realtime.sync_publication() OWNER TO tsg_deployer")
            # The publication's event trigger syncs at once, as the function's owner: the table is left alone.
            conn.execute("ALTER PUBLICATION supabase_realtime ADD TABLE public.others")
            assert conn.execute("SELECT tripsage_realtime.sync_publication()").fetchone() == (0,)
            assert conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.others'::regclass "
                "AND tgname = 'A_realtime_capture'"
            ).fetchone() == (0,)
            conn.execute("ALTER FUNCTION tripsage_realtime.sync_publication() OWNER TO CURRENT_USER")
            assert conn.execute("SELECT tripsage_realtime.sync_publication()").fetchone() == (1,)
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS public.others")
            conn.execute("DROP OWNED BY tsg_deployer, tsg_other_owner")
        with server.admin() as conn:
            conn.execute("DROP ROLE tsg_deployer, tsg_other_owner")
