-- 00_extensions: roles, the auth schema of Supabase, and the extensions TripSage uses.
--
-- Every block here decides for itself what the server has, so the same file runs on Supabase (where the roles,
-- auth and most extensions already exist: they are left alone), on RDS / Cloud SQL, and on a laptop.

-- Supabase's API roles. On Supabase they exist already; elsewhere we create them with the same attributes.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    -- The least-privilege role the runtime may connect as (docs/operations.md: give it LOGIN and a password).
    -- It may act as authenticated (realtime authorization) and as service_role (automation writes).
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tripsage_automation') THEN
        CREATE ROLE tripsage_automation NOLOGIN NOINHERIT;
    END IF;
END
$roles$;

GRANT anon, authenticated, service_role TO tripsage_automation;

-- Extensions live in the schema "extensions", as on Supabase.
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role, tripsage_automation;

DO $extensions$
DECLARE
    ext record;
BEGIN
    -- Required: TripSage cannot work without these. A clear message names the fix.
    FOR ext IN
        SELECT * FROM (VALUES
            ('vector', 'install pgvector (Debian: postgresql-<major>-pgvector; Supabase: built in)'),
            ('btree_gist', 'install the PostgreSQL contrib package (Debian: postgresql-contrib)')
        ) AS required(name, fix)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = ext.name) THEN
            RAISE EXCEPTION 'extension % is not available on this server', ext.name
                USING HINT = ext.fix;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                   WHERE e.extname = ext.name AND n.nspname <> 'extensions') THEN
            RAISE EXCEPTION 'extension % is installed outside schema extensions', ext.name
                USING HINT = format('ALTER EXTENSION %I SET SCHEMA extensions;', ext.name);
        END IF;
        EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA extensions', ext.name);
    END LOOP;

    -- Optional: used when the server has them.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA extensions;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
    END IF;
    -- pg_cron can only be created in the database named by cron.database_name, and only when preloaded
    -- (the GUC exists only then). Elsewhere the emulation in 07_automation provides the same API.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron')
       AND current_setting('cron.database_name', true) = current_database() THEN
        CREATE EXTENSION IF NOT EXISTS pg_cron;
    END IF;
    -- pg_net creates its own schema "net"; without it the emulation in 12_net provides the same API.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_net')
       AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'net') THEN
        CREATE EXTENSION IF NOT EXISTS pg_net;
    END IF;
END
$extensions$;

-- Supabase's auth schema, on servers that do not have it. On Supabase, GoTrue owns it: we never touch it there.
DO $auth$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        RETURN;
    END IF;

    CREATE SCHEMA auth;
    GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, tripsage_automation;

    CREATE TABLE auth.users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        aud varchar(255) DEFAULT 'authenticated',
        role varchar(255) DEFAULT 'authenticated',
        email varchar(255) UNIQUE,
        raw_app_meta_data jsonb NOT NULL DEFAULT '{}',
        raw_user_meta_data jsonb NOT NULL DEFAULT '{}',
        email_confirmed_at timestamptz,
        last_sign_in_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    );
    COMMENT ON TABLE auth.users IS 'Minimal stand-in for Supabase GoTrue''s auth.users on plain PostgreSQL.';

    -- The three helpers read request.jwt.claim(s) exactly as Supabase's do.
    CREATE FUNCTION auth.uid() RETURNS uuid
        LANGUAGE sql STABLE
        AS $fn$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
            )::uuid
        $fn$;
    CREATE FUNCTION auth.role() RETURNS text
        LANGUAGE sql STABLE
        AS $fn$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.role', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
            )::text
        $fn$;
    CREATE FUNCTION auth.jwt() RETURNS jsonb
        LANGUAGE sql STABLE
        AS $fn$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $fn$;
    GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
END
$auth$;

-- The schema that the maintenance jobs' functions live in (07_automation fills it).
CREATE SCHEMA IF NOT EXISTS maintenance;
GRANT USAGE ON SCHEMA maintenance TO service_role, tripsage_automation;
