-- 09_realtime_capture: change capture for the realtime gateway (src/tripsage/realtime) and the audience functions
-- that authorize each change once instead of once per subscriber.
--
-- Capture: an AFTER ROW trigger on every table of the publication supabase_realtime (installed and removed by
-- tripsage_realtime.sync_publication(), which the gateway calls at start and every few seconds, so ALTER PUBLICATION
-- is the configuration) writes the change, in the writer's transaction, to tripsage_realtime.changes (a logged
-- table: a committed change is never lost while a gateway runs) and NOTIFYs tripsage_realtime as a wake-up hint.
-- The gateway reads by transaction id (rows of transactions that finished since its last read), so a long
-- transaction committing late is still delivered. Nothing is captured while no gateway has been alive for a minute,
-- and the gateway deletes rows older than its retention, so the table stays bounded when no gateway runs.
--
-- The trigger is named "A_realtime_capture" so that it fires before the foreign keys' cascade triggers
-- ("RI_ConstraintTrigger_..."; triggers fire in name order): a deleted trip's audience is computed while its
-- collaborators still exist, and its captured DELETE (same transaction) gives the cascaded deletes of its children
-- the same audience (tripsage_realtime.deleted_audience).

CREATE SCHEMA tripsage_realtime;
COMMENT ON SCHEMA tripsage_realtime IS 'TripSage realtime gateway: captured changes and relayed messages';
GRANT USAGE ON SCHEMA tripsage_realtime TO service_role, tripsage_automation;

CREATE TABLE tripsage_realtime.changes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    captured_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    schema_name text NOT NULL,
    table_name text NOT NULL,
    type text NOT NULL CHECK (type IN ('INSERT', 'UPDATE', 'DELETE')),
    record jsonb,
    old_record jsonb,
    -- The users who may SELECT the row (the old row for a DELETE); NULL when the table has no audience function.
    audience uuid[]
);
CREATE INDEX changes_xid_idx ON tripsage_realtime.changes (xid);
CREATE INDEX changes_captured_at_idx ON tripsage_realtime.changes (captured_at);
CREATE INDEX changes_deleted_idx ON tripsage_realtime.changes (table_name, (old_record ->> 'id'))
    WHERE type = 'DELETE';

-- Live gateways (one row per runtime process), refreshed every few seconds. Capture is on while one is alive.
CREATE TABLE tripsage_realtime.gateways (
    id uuid PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

-- Presence is shared by all gateways: one row per tracked key per socket. A private channel's presence is not the
-- public channel's of the same name (13_realtime_authorization).
CREATE TABLE tripsage_realtime.presence (
    topic text NOT NULL,
    key text NOT NULL,
    phx_ref text NOT NULL,
    gateway_id uuid NOT NULL REFERENCES tripsage_realtime.gateways (id) ON DELETE CASCADE,
    meta jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    private boolean NOT NULL DEFAULT false,
    PRIMARY KEY (topic, phx_ref)
);
CREATE INDEX presence_gateway_idx ON tripsage_realtime.presence (gateway_id);

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tripsage_realtime TO service_role, tripsage_automation;

-- Audience functions: who may SELECT a row of each collaborative table, mirroring the SELECT policies in
-- 05_policies.sql (tests/integration/realtime/test_leak_matrix.py proves they agree with RLS itself).
-- A row whose parent was deleted earlier in the same transaction (a cascade) gets the audience recorded by the
-- parent's deletion.

-- The audience captured with the deletion of public.<p_table> row p_id (NULL if none). Ids are never reused, so the
-- deletion found is the one that cascades now; no condition on the transaction id, which would lead the planner to
-- scan every change of this transaction for each cascaded row.
CREATE FUNCTION tripsage_realtime.deleted_audience(p_table text, p_id text) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT c.audience FROM tripsage_realtime.changes c
    WHERE c.type = 'DELETE' AND c.table_name = p_table AND (c.old_record ->> 'id') = p_id
      AND c.schema_name = 'public'
    ORDER BY c.id DESC
    LIMIT 1
$$;

-- Members of a trip: its owner and its collaborators (trip_access_level(trip, user) > 0).
CREATE FUNCTION public.trip_audience(p_trip_id bigint) RETURNS uuid[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    owner_id uuid;
BEGIN
    IF p_trip_id IS NULL THEN
        RETURN '{}';
    END IF;
    SELECT t.user_id INTO owner_id FROM public.trips t WHERE t.id = p_trip_id;
    IF NOT FOUND THEN
        RETURN coalesce(tripsage_realtime.deleted_audience('trips', p_trip_id::text), '{}');
    END IF;
    RETURN ARRAY[owner_id] || ARRAY(SELECT c.user_id FROM public.trip_collaborators c WHERE c.trip_id = p_trip_id);
END
$$;

-- trips_select: trip_access_level(id, uid) > 0. The owner is taken from the row itself (a deleted trip is gone).
CREATE FUNCTION public.trips_audience(p_id bigint, p_user_id uuid) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT ARRAY[p_user_id] || ARRAY(SELECT c.user_id FROM public.trip_collaborators c
                                    WHERE c.trip_id = p_id AND c.user_id <> p_user_id)
$$;

-- trip_collaborators_select: user_id = uid OR trip_access_level(trip_id, uid) > 0.
CREATE FUNCTION public.trip_collaborators_audience(p_trip_id bigint, p_user_id uuid) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT ARRAY(SELECT DISTINCT u FROM unnest(ARRAY[p_user_id] || public.trip_audience(p_trip_id)) AS u)
$$;

-- itinerary_items_select: trip_access_level(trip_id, uid) > 0.
CREATE FUNCTION public.itinerary_items_audience(p_trip_id bigint) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT public.trip_audience(p_trip_id)
$$;

-- chat_sessions_select: user_id = uid OR (trip_id IS NOT NULL AND trip_access_level(trip_id, uid) > 0).
CREATE FUNCTION public.chat_sessions_audience(p_user_id uuid, p_trip_id bigint) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT ARRAY(SELECT DISTINCT u FROM unnest(ARRAY[p_user_id] || public.trip_audience(p_trip_id)) AS u)
$$;

-- chat_messages_select: chat_session_access(session_id, uid) <> 'none', i.e. the session's audience.
CREATE FUNCTION public.chat_messages_audience(p_session_id uuid) RETURNS uuid[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    s_row public.chat_sessions;
BEGIN
    SELECT * INTO s_row FROM public.chat_sessions s WHERE s.id = p_session_id;
    IF NOT FOUND THEN
        RETURN coalesce(tripsage_realtime.deleted_audience('chat_sessions', p_session_id::text), '{}');
    END IF;
    RETURN public.chat_sessions_audience(s_row.user_id, s_row.trip_id);
END
$$;

-- chat_tool_calls_select: the audience of the message's session.
CREATE FUNCTION public.chat_tool_calls_audience(p_message_id bigint) RETURNS uuid[]
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    session_id uuid;
BEGIN
    SELECT m.session_id INTO session_id FROM public.chat_messages m WHERE m.id = p_message_id;
    IF NOT FOUND THEN
        RETURN coalesce(tripsage_realtime.deleted_audience('chat_messages', p_message_id::text), '{}');
    END IF;
    RETURN public.chat_messages_audience(session_id);
END
$$;

-- The audience of one row of a published table; NULL for a table without an audience function.
CREATE FUNCTION tripsage_realtime.audience(p_schema text, p_table text, p_row jsonb) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT CASE WHEN p_schema <> 'public' THEN NULL
        WHEN p_table = 'trips' THEN public.trips_audience((p_row ->> 'id')::bigint, (p_row ->> 'user_id')::uuid)
        WHEN p_table = 'trip_collaborators' THEN
            public.trip_collaborators_audience((p_row ->> 'trip_id')::bigint, (p_row ->> 'user_id')::uuid)
        WHEN p_table = 'itinerary_items' THEN public.itinerary_items_audience((p_row ->> 'trip_id')::bigint)
        WHEN p_table = 'chat_sessions' THEN
            public.chat_sessions_audience((p_row ->> 'user_id')::uuid, (p_row ->> 'trip_id')::bigint)
        WHEN p_table = 'chat_messages' THEN public.chat_messages_audience((p_row ->> 'session_id')::uuid)
        WHEN p_table = 'chat_tool_calls' THEN public.chat_tool_calls_audience((p_row ->> 'message_id')::bigint)
    END
$$;

-- The capture trigger. Timestamps are rendered in UTC, as Supabase sends them.
CREATE FUNCTION tripsage_realtime.capture() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    SET "TimeZone" = 'UTC'
    AS $$
DECLARE
    new_row jsonb;
    old_row jsonb;
    who uuid[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tripsage_realtime.gateways g WHERE g.seen_at > now() - interval '1 minute') THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW);
    END IF;
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
    END IF;
    who := tripsage_realtime.audience(TG_TABLE_SCHEMA, TG_TABLE_NAME, coalesce(new_row, old_row));
    INSERT INTO tripsage_realtime.changes (schema_name, table_name, type, record, old_record, audience)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, new_row, old_row, who);
    PERFORM pg_notify('tripsage_realtime', '');
    RETURN NULL;
END
$$;

-- Install the capture trigger on every table of supabase_realtime that the gateway may serve, and remove it from
-- tables no longer there. The gateway serves ordinary tables outside the schemas of Supabase's and TripSage's own
-- services, owned by a role this function acts for: a FOR ALL TABLES publication (older Supabase projects) also lists
-- auth.*, our own change table (capturing it would recurse) and tables of other owners (CREATE TRIGGER would fail).
-- Returns the number of tables changed.
CREATE FUNCTION tripsage_realtime.sync_publication() RETURNS integer
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

REVOKE ALL ON FUNCTION public.trip_audience(bigint), public.trips_audience(bigint, uuid),
    public.trip_collaborators_audience(bigint, uuid), public.itinerary_items_audience(bigint),
    public.chat_sessions_audience(uuid, bigint), public.chat_messages_audience(uuid),
    public.chat_tool_calls_audience(bigint), tripsage_realtime.audience(text, text, jsonb),
    tripsage_realtime.capture(), tripsage_realtime.sync_publication(), tripsage_realtime.deleted_audience(text, text)
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.trip_audience(bigint), public.trips_audience(bigint, uuid),
    public.trip_collaborators_audience(bigint, uuid), public.itinerary_items_audience(bigint),
    public.chat_sessions_audience(uuid, bigint), public.chat_messages_audience(uuid),
    public.chat_tool_calls_audience(bigint), tripsage_realtime.audience(text, text, jsonb),
    tripsage_realtime.sync_publication()
    TO service_role, tripsage_automation;

SELECT tripsage_realtime.sync_publication();
