-- 03_functions: helpers for triggers and policies, and the verification functions.
-- Every SECURITY DEFINER function pins its search_path.

CREATE FUNCTION public.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- The one place trip access is decided. SECURITY DEFINER, so policies that call it do not recurse through
-- the RLS of trips and trip_collaborators. Levels: 0 none, 1 view, 2 edit, 3 admin, 4 owner.
CREATE FUNCTION public.trip_access_level(p_trip_id bigint, p_user_id uuid) RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    SELECT CASE
        WHEN p_user_id IS NULL THEN 0
        WHEN EXISTS (SELECT 1 FROM public.trips t WHERE t.id = p_trip_id AND t.user_id = p_user_id) THEN 4
        ELSE coalesce((
            SELECT CASE c.permission_level WHEN 'admin' THEN 3 WHEN 'edit' THEN 2 ELSE 1 END
            FROM public.trip_collaborators c
            WHERE c.trip_id = p_trip_id AND c.user_id = p_user_id
        ), 0)
    END
$$;

-- Does the current user (auth.uid()) have at least p_min ('view', 'edit', 'admin', 'owner') on the trip?
CREATE FUNCTION public.has_trip_access(p_trip_id bigint, p_min text DEFAULT 'view') RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public
    AS $$
    SELECT public.trip_access_level(p_trip_id, auth.uid())
        >= CASE p_min WHEN 'view' THEN 1 WHEN 'edit' THEN 2 WHEN 'admin' THEN 3 WHEN 'owner' THEN 4 END
$$;

-- The original TripSage signature: may p_user_id do p_required_permission on the trip? (The owner counts as admin.)
-- Service-side only: a user could otherwise probe other users' access.
CREATE FUNCTION public.check_trip_permission(p_user_id uuid, p_trip_id bigint, p_required_permission text DEFAULT 'view')
    RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    IF p_required_permission NOT IN ('view', 'edit', 'admin') THEN
        RAISE EXCEPTION 'unknown permission %: expected view, edit or admin', p_required_permission
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN public.trip_access_level(p_trip_id, p_user_id)
        >= CASE p_required_permission WHEN 'view' THEN 1 WHEN 'edit' THEN 2 ELSE 3 END;
END
$$;

-- Chat visibility: the session's owner, or anyone who can view its trip.
CREATE FUNCTION public.chat_session_access(p_session_id uuid, p_user_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    SELECT CASE
        WHEN p_user_id IS NULL THEN 'none'
        WHEN s.user_id = p_user_id THEN 'owner'
        WHEN s.trip_id IS NOT NULL AND public.trip_access_level(s.trip_id, p_user_id) > 0 THEN 'view'
        ELSE 'none'
    END
    FROM public.chat_sessions s
    WHERE s.id = p_session_id
$$;

CREATE FUNCTION public.chat_message_session_id(p_message_id bigint) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    SELECT m.session_id FROM public.chat_messages m WHERE m.id = p_message_id
$$;

-- One row per extension TripSage expects: native (the real extension), emulated (TripSage's emulation of its SQL
-- API, executed by the runtime), or missing.
CREATE FUNCTION public.verify_extensions()
    RETURNS TABLE (name text, status text, version text, note text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    wanted text;
    installed_version text;
    emulation text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['pg_cron', 'pg_net', 'vector', 'pg_stat_statements', 'btree_gist', 'pgcrypto'] LOOP
        name := wanted;
        SELECT e.extversion INTO installed_version FROM pg_extension e WHERE e.extname = wanted;
        -- An emulated extension marks its schema with a comment 'tripsage emulation of <ext> <version>'.
        SELECT obj_description(n.oid, 'pg_namespace') INTO emulation
        FROM pg_namespace n
        WHERE n.nspname = CASE wanted WHEN 'pg_cron' THEN 'cron' WHEN 'pg_net' THEN 'net' END;

        IF installed_version IS NOT NULL THEN
            status := 'native';
            version := installed_version;
            note := CASE
                WHEN wanted = 'pg_stat_statements'
                     AND NOT ('pg_stat_statements' = ANY (string_to_array(
                         replace(current_setting('shared_preload_libraries'), ' ', ''), ',')))
                    THEN 'installed but not in shared_preload_libraries: no statistics are collected'
                ELSE NULL
            END;
        ELSIF emulation LIKE 'tripsage emulation of %' THEN
            status := 'emulated';
            version := split_part(emulation, ' ', 5);
            note := 'SQL API emulated by TripSage; the runtime executes it';
        ELSE
            status := 'missing';
            version := NULL;
            note := CASE wanted
                WHEN 'pg_cron' THEN CASE
                    WHEN EXISTS (SELECT 1 FROM pg_available_extensions a WHERE a.name = 'pg_cron')
                        THEN format('pg_cron is available but only in database %s (cron.database_name)',
                                    coalesce(current_setting('cron.database_name', true), 'postgres (not preloaded)'))
                    ELSE 'not available on this server and not emulated'
                END
                WHEN 'pg_net' THEN 'not available on this server and not emulated'
                WHEN 'pgcrypto' THEN 'not available on this server; not required (TripSage encrypts in the runtime)'
                ELSE 'not available on this server'
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- (component, status, details) for each part of the automation plane. status is ok, warning or error; the CLI's
-- `tripsage verify` fails on any error.
CREATE FUNCTION public.verify_automation_setup()
    RETURNS TABLE (component text, status text, details text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    ext record;
    missing text[];
    expected_tables text[] := ARRAY['chat_messages', 'chat_sessions', 'chat_tool_calls', 'itinerary_items',
                                    'trip_collaborators', 'trips'];
    expected_jobs text[] := ARRAY['cleanup-expired-search-cache', 'archive-old-session-memories',
                                  'update-table-statistics', 'monitor-expiring-api-keys', 'archive-completed-trips',
                                  'vacuum-maintenance', 'generate-memory-embeddings', 'monitor-database-health'];
    found_jobs text[];
BEGIN
    -- Extensions: vector and btree_gist are required; the others are reported.
    FOR ext IN SELECT * FROM public.verify_extensions() LOOP
        component := 'extension:' || ext.name;
        status := CASE
            WHEN ext.status IN ('native', 'emulated') AND ext.note IS NULL THEN 'ok'
            WHEN ext.status IN ('native', 'emulated') THEN 'warning'
            WHEN ext.name IN ('pgcrypto', 'pg_stat_statements') THEN 'warning'
            ELSE 'error'
        END;
        details := ext.status || coalesce(' ' || ext.version, '') || coalesce(': ' || ext.note, '');
        RETURN NEXT;
    END LOOP;

    component := 'realtime';
    SELECT array_agg(t ORDER BY t) INTO missing
    FROM unnest(expected_tables) AS t
    WHERE NOT EXISTS (SELECT 1 FROM pg_publication_tables p
                      WHERE p.pubname = 'supabase_realtime' AND p.schemaname = 'public' AND p.tablename = t);
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        status := 'error';
        details := 'publication supabase_realtime does not exist';
    ELSIF missing IS NOT NULL THEN
        status := 'error';
        details := 'publication supabase_realtime lacks ' || array_to_string(missing, ', ');
    ELSE
        status := 'ok';
        details := format('publication supabase_realtime holds %s tables',
                          (SELECT count(*) FROM pg_publication_tables p WHERE p.pubname = 'supabase_realtime'));
    END IF;
    RETURN NEXT;

    component := 'monitoring_tables';
    SELECT array_agg(t) INTO missing FROM unnest(ARRAY['system_metrics', 'notifications']) AS t
    WHERE to_regclass('public.' || t) IS NULL;
    status := CASE WHEN missing IS NULL THEN 'ok' ELSE 'error' END;
    details := coalesce('missing ' || array_to_string(missing, ', '), 'public.system_metrics, public.notifications');
    RETURN NEXT;

    component := 'webhook_tables';
    SELECT array_agg(t) INTO missing FROM unnest(ARRAY['webhook_configs', 'webhook_logs']) AS t
    WHERE to_regclass('public.' || t) IS NULL;
    status := CASE WHEN missing IS NULL THEN 'ok' ELSE 'error' END;
    details := coalesce('missing ' || array_to_string(missing, ', '), 'public.webhook_configs, public.webhook_logs');
    RETURN NEXT;

    component := 'scheduled_jobs';
    IF to_regclass('cron.job') IS NULL THEN
        status := 'error';
        details := 'no cron.job table: neither pg_cron nor its emulation is installed';
    ELSE
        EXECUTE 'SELECT array_agg(jobname::text) FROM cron.job WHERE active AND jobname = ANY ($1)'
            INTO found_jobs USING expected_jobs;
        SELECT array_agg(j ORDER BY j) INTO missing FROM unnest(expected_jobs) AS j
        WHERE NOT (j = ANY (coalesce(found_jobs, '{}')));
        status := CASE WHEN missing IS NULL THEN 'ok' ELSE 'error' END;
        details := CASE WHEN missing IS NULL THEN format('%s maintenance jobs scheduled and active',
                                                         cardinality(expected_jobs))
                        ELSE 'not scheduled or inactive: ' || array_to_string(missing, ', ') END;
    END IF;
    RETURN NEXT;
END
$$;
