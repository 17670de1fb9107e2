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
