-- 12_supabase: Supabase's SQL environment on any PostgreSQL: default privileges on public (here), Database Webhooks
-- (supabase_functions) and Vault (vault).

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
