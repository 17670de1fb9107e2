-- Supabase's SQL environment on any PostgreSQL (supabase/schemas/12_supabase.sql; the policy and capture changes are
-- in 05_policies.sql and 09_realtime_capture.sql): default privileges on public as Supabase's init sets them, the
-- owner's INSERT ... RETURNING on trips, realtime capture limited to tables the gateway may serve.

-- trips_select: the owner sees their trip by its row. trip_access_level(id, ...) reads trips with the statement's
-- snapshot, which does not hold a row the same statement inserts, so INSERT ... RETURNING (supabase-js's
-- .insert().select()) was refused by the owner's own SELECT policy.
ALTER POLICY trips_select ON public.trips
    USING (user_id = auth.uid() OR public.trip_access_level(id, auth.uid()) > 0);

-- Install the capture trigger on every table of supabase_realtime that the gateway may serve, and remove it from
-- tables no longer there. The gateway serves ordinary tables outside the schemas of Supabase's and TripSage's own
-- services, owned by a role this function acts for: a FOR ALL TABLES publication (older Supabase projects) also lists
-- auth.*, our own change table (capturing it would recurse) and tables of other owners (CREATE TRIGGER would fail).
-- Returns the number of tables changed.
CREATE OR REPLACE FUNCTION tripsage_realtime.sync_publication() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    target record;
    changed integer := 0;
BEGIN
    FOR target IN
        WITH served AS (
            SELECT c.oid
            FROM pg_catalog.pg_publication_tables p
            JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
            JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
            WHERE p.pubname = 'supabase_realtime' AND c.relkind = 'r'
              AND n.nspname <> ALL (ARRAY['auth', 'storage', 'realtime', '_realtime', 'supabase_functions',
                  'supabase_migrations', 'vault', 'pgsodium', 'pgsodium_masks', 'graphql', 'graphql_public',
                  'net', 'cron', 'extensions', 'pgbouncer', 'information_schema', 'tripsage_realtime',
                  'tripsage_deploy', 'webhooks', 'functions', 'monitoring', 'maintenance'])
              AND n.nspname NOT LIKE 'pg\_%'
              AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
        ), captured AS (
            SELECT t.tgrelid AS oid
            FROM pg_catalog.pg_trigger t
            JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
            WHERE t.tgname = 'A_realtime_capture' AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
        )
        SELECT coalesce(s.oid, k.oid)::regclass AS rel, s.oid IS NOT NULL AS wanted
        FROM served s FULL JOIN captured k ON k.oid = s.oid
        WHERE s.oid IS NULL OR k.oid IS NULL
    LOOP
        IF target.wanted THEN
            EXECUTE format('CREATE TRIGGER "A_realtime_capture" AFTER INSERT OR UPDATE OR DELETE ON %s '
                           'FOR EACH ROW EXECUTE FUNCTION tripsage_realtime.capture()', target.rel);
        ELSE
            EXECUTE format('DROP TRIGGER "A_realtime_capture" ON %s', target.rel);
        END IF;
        changed := changed + 1;
    END LOOP;
    RETURN changed;
END
$$;

SELECT tripsage_realtime.sync_publication();

-- Supabase's default privileges on schema public (supabase/postgres, migrations/db/init-scripts: usage on public, and
-- every new table, sequence and function granted to anon, authenticated and service_role; RLS then decides the
-- rows), where our migrations created those roles on plain PostgreSQL. Where Supabase's own roles exist its init has
-- set them already, and they are never touched. TripSage's own objects carry explicit grants (05_policies.sql and
-- each topic's file), so new TripSage objects in public must revoke what these defaults give.
DO $defaults$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'supabase_admin') THEN
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
END
$defaults$;

-- Database Webhooks (supabase/supabase docker/volumes/db/webhooks.sql, as the Dashboard's webhooks use them): the
-- trigger function supabase_functions.http_request(url, method, headers, params, timeout_ms) and its log table
-- supabase_functions.hooks. Created where absent; where Supabase (or anyone) made supabase_functions, left alone.
-- Requests go through pg_net's public API (native, or TripSage's emulation): queued in the writer's transaction and
-- sent after it commits. Unlike Supabase's function, a wrong argument never fails the write that fired the hook
-- (TripSage's triggers never raise because of automation configuration): Supabase's message is raised as a WARNING
-- and the call is logged in hooks without a request id. Newer Supabase versions take a sixth argument (retries) and
-- wait for the response inside the trigger; here the request is never awaited in the writer's transaction (pg_net
-- sends only after commit), so a sixth argument is accepted and ignored.
DO $supabase_functions$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'supabase_functions') THEN
        RETURN;
    END IF;
    CREATE SCHEMA supabase_functions;
    GRANT USAGE ON SCHEMA supabase_functions TO anon, authenticated, service_role;

    CREATE TABLE supabase_functions.hooks (
        id bigserial PRIMARY KEY,
        hook_table_id integer NOT NULL,
        hook_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        request_id bigint
    );
    CREATE INDEX supabase_functions_hooks_request_id_idx ON supabase_functions.hooks USING btree (request_id);
    CREATE INDEX supabase_functions_hooks_h_table_id_h_name_idx
        ON supabase_functions.hooks USING btree (hook_table_id, hook_name);
    COMMENT ON TABLE supabase_functions.hooks IS 'Supabase Functions Hooks: Audit trail for triggered hooks.';
    -- Supabase's default privileges there give anon and authenticated everything on hooks; the log is the
    -- service's only.
    GRANT ALL ON supabase_functions.hooks TO service_role;
    GRANT USAGE, SELECT ON SEQUENCE supabase_functions.hooks_id_seq TO service_role;

    CREATE FUNCTION supabase_functions.http_request() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = ''
        AS $fn$
    DECLARE
        local_request_id bigint;
        payload jsonb;
        url text := TG_ARGV[0]::text;
        method text := TG_ARGV[1]::text;
        headers jsonb DEFAULT '{}'::jsonb;
        params jsonb DEFAULT '{}'::jsonb;
        timeout_ms integer := 5000;  -- pg_net's default
    BEGIN
        BEGIN
            IF url IS NULL OR url = 'null' THEN
                RAISE EXCEPTION 'url argument is missing';
            END IF;
            IF method IS NULL OR method = 'null' THEN
                RAISE EXCEPTION 'method argument is missing';
            END IF;
            IF TG_ARGV[2] IS NULL OR TG_ARGV[2] = 'null' THEN
                headers := '{"Content-Type": "application/json"}'::jsonb;
            ELSE
                headers := TG_ARGV[2]::jsonb;
            END IF;
            IF TG_ARGV[3] IS NULL OR TG_ARGV[3] = 'null' THEN
                params := '{}'::jsonb;
            ELSE
                params := TG_ARGV[3]::jsonb;
            END IF;
            IF TG_ARGV[4] IS NOT NULL AND TG_ARGV[4] <> 'null' THEN
                timeout_ms := TG_ARGV[4]::integer;
            END IF;
            CASE
                WHEN method = 'GET' THEN
                    local_request_id := net.http_get(url, params, headers, timeout_ms);
                WHEN method = 'POST' THEN
                    payload := jsonb_build_object(
                        'old_record', OLD,
                        'record', NEW,
                        'type', TG_OP,
                        'table', TG_TABLE_NAME,
                        'schema', TG_TABLE_SCHEMA
                    );
                    local_request_id := net.http_post(url, payload, params, headers, timeout_ms);
                ELSE
                    RAISE EXCEPTION 'method argument % is invalid', method;
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'supabase_functions.http_request (trigger % on %.%): %',
                TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME, SQLERRM;
            local_request_id := NULL;
        END;
        INSERT INTO supabase_functions.hooks (hook_table_id, hook_name, request_id)
        VALUES (TG_RELID, TG_NAME, local_request_id);
        RETURN NEW;
    END
    $fn$;
    REVOKE ALL ON FUNCTION supabase_functions.http_request() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION supabase_functions.http_request() TO anon, authenticated, service_role;
END
$supabase_functions$;
