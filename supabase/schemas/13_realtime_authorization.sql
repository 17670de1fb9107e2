-- 13_realtime_authorization: Supabase's Realtime Authorization and Broadcast from Database for the gateway
-- (src/tripsage/realtime), and TripSage's policies for its private channels.
--
-- realtime.messages, realtime.topic(), realtime.send() and realtime.broadcast_changes() are Supabase's (the tenant
-- migrations of supabase/realtime: a table partitioned by day, RLS on, no policy by default). On Supabase the
-- Realtime server owns them: they are created only where they do not exist. Policies on realtime.messages decide who
-- may join a private channel (SELECT) and send or track on it (INSERT), as Supabase computes it (see
-- src/tripsage/realtime/authorization.py). A committed broadcast row is captured into tripsage_realtime.changes, which
-- every gateway reads, so realtime.send() reaches the topic's subscribers on every replica, after commit only.

DO $realtime$
BEGIN
    IF to_regclass('realtime.messages') IS NOT NULL THEN
        RETURN;  -- Supabase: the Realtime server's own schema, left alone
    END IF;
    CREATE SCHEMA IF NOT EXISTS realtime;
    GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role, tripsage_automation;

    CREATE TABLE realtime.messages (
        topic text NOT NULL,
        extension text NOT NULL,
        payload jsonb,
        event text,
        private boolean DEFAULT false,
        updated_at timestamp without time zone DEFAULT now() NOT NULL,
        inserted_at timestamp without time zone DEFAULT now() NOT NULL,
        id uuid DEFAULT gen_random_uuid() NOT NULL,
        binary_payload bytea,
        CONSTRAINT messages_payload_exclusive CHECK (payload IS NULL OR binary_payload IS NULL),
        PRIMARY KEY (id, inserted_at)
    ) PARTITION BY RANGE (inserted_at);
    CREATE INDEX messages_inserted_at_topic_index ON realtime.messages (inserted_at DESC, topic)
        WHERE extension = 'broadcast' AND private IS TRUE;
    ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;
    GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated, service_role;

    -- The topic being authorized (set by the gateway's probes and by realtime.send).
    CREATE FUNCTION realtime.topic() RETURNS text
        LANGUAGE sql STABLE
        AS $fn$
        SELECT nullif(current_setting('realtime.topic', true), '')::text;
    $fn$;

    -- Broadcast from the database: a message to the topic's subscribers once the transaction commits. Runs as the
    -- caller, whose INSERT on realtime.messages RLS decides (an INSERT policy, or a role that bypasses RLS); on
    -- failure it warns and sends nothing, as Supabase's.
    CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true) RETURNS void
        LANGUAGE plpgsql
        AS $fn$
    DECLARE
        generated_id uuid;
        final_payload jsonb;
    BEGIN
        BEGIN
            generated_id := gen_random_uuid();
            IF payload ? 'id' THEN
                final_payload := payload;
            ELSE
                final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
            END IF;
            PERFORM set_config('realtime.topic', topic, true);
            INSERT INTO realtime.messages (id, payload, event, topic, private, extension)
            VALUES (generated_id, final_payload, event, topic, private, 'broadcast');
        EXCEPTION
            WHEN OTHERS THEN
                RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
        END;
    END;
    $fn$;

    -- For row triggers: {old_record, record, operation, table, schema} to the topic.
    CREATE FUNCTION realtime.broadcast_changes(topic_name text, event_name text, operation text, table_name text,
                                               table_schema text, new record, old record, level text DEFAULT 'ROW')
        RETURNS void
        LANGUAGE plpgsql
        AS $fn$
    DECLARE
        row_data jsonb := '{}'::jsonb;
    BEGIN
        IF level = 'STATEMENT' THEN
            RAISE EXCEPTION 'function can only be triggered for each row, not for each statement';
        END IF;
        IF operation = 'INSERT' OR operation = 'UPDATE' OR operation = 'DELETE' THEN
            row_data := jsonb_build_object('old_record', OLD, 'record', NEW, 'operation', operation,
                                           'table', table_name, 'schema', table_schema);
            PERFORM realtime.send(row_data, event_name, topic_name);
        ELSE
            RAISE EXCEPTION 'Unexpected operation type: %', operation;
        END IF;
    EXCEPTION
        WHEN OTHERS THEN
            RAISE EXCEPTION 'Failed to process the row: %', SQLERRM;
    END;
    $fn$;

    -- The gateway's delivery: a committed broadcast row (not the payload-less authorization probes, which are
    -- rolled back anyway) is captured for every gateway to read.
    CREATE FUNCTION tripsage_realtime.capture_message() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = ''
        AS $fn$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM tripsage_realtime.gateways g WHERE g.seen_at > now() - interval '1 minute') THEN
            RETURN NULL;
        END IF;
        INSERT INTO tripsage_realtime.changes (schema_name, table_name, type, record)
        VALUES ('realtime', 'messages', 'INSERT',
                jsonb_build_object('id', NEW.id, 'topic', NEW.topic, 'event', NEW.event, 'private',
                                   coalesce(NEW.private, false), 'payload', NEW.payload,
                                   'binary', encode(NEW.binary_payload, 'base64')));
        PERFORM pg_notify('tripsage_realtime', '');
        RETURN NULL;
    END
    $fn$;
    REVOKE ALL ON FUNCTION tripsage_realtime.capture_message() FROM PUBLIC, anon, authenticated;
    CREATE TRIGGER "A_realtime_deliver" AFTER INSERT ON realtime.messages
        FOR EACH ROW WHEN (NEW.extension = 'broadcast' AND (NEW.payload IS NOT NULL OR NEW.binary_payload IS NOT NULL))
        EXECUTE FUNCTION tripsage_realtime.capture_message();
END
$realtime$;

-- Daily partitions of realtime.messages, as Supabase's janitor keeps them: yesterday to three days ahead, and those
-- older than 72 hours dropped. The gateway calls it at start and every few minutes. Returns the partitions changed.
CREATE FUNCTION tripsage_realtime.maintain_message_partitions() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    SET "TimeZone" = 'UTC'
    AS $$
DECLARE
    offset_days integer;
    part_day date;
    part_name text;
    changed integer := 0;
BEGIN
    -- Only where TripSage created the table: on Supabase its Realtime server keeps the partitions.
    IF to_regclass('realtime.messages') IS NULL
       OR NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_catalog.pg_class c
                                         WHERE c.oid = to_regclass('realtime.messages')), 'USAGE') THEN
        RETURN 0;
    END IF;
    FOR offset_days IN -1..3 LOOP
        part_day := current_date + offset_days;
        part_name := 'messages_' || to_char(part_day, 'YYYY_MM_DD');
        IF to_regclass('realtime.' || part_name) IS NULL THEN
            EXECUTE format('CREATE TABLE realtime.%I PARTITION OF realtime.messages FOR VALUES FROM (%L) TO (%L)',
                           part_name, part_day::timestamp, (part_day + 1)::timestamp);
            changed := changed + 1;
        END IF;
    END LOOP;
    FOR part_name IN
        SELECT c.relname FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'realtime.messages'::regclass AND c.relname ~ '^messages_\d{4}_\d{2}_\d{2}$'
          AND to_date(substr(c.relname, 10), 'YYYY_MM_DD') < (now() - interval '72 hours')::date
    LOOP
        EXECUTE format('DROP TABLE realtime.%I', part_name);
        changed := changed + 1;
    END LOOP;
    RETURN changed;
END
$$;

-- The read probe's rows: inserted as the table's owner (RLS does not apply), then read back as the user.
CREATE FUNCTION tripsage_realtime.insert_probes(p_topic text, p_extensions text[], p_ids uuid[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = ''
    AS $$
    INSERT INTO realtime.messages (id, topic, extension, private)
    SELECT p.id, p_topic, p.extension, true FROM unnest(p_extensions, p_ids) AS p(extension, id)
$$;

-- ALTER PUBLICATION supabase_realtime takes effect at once: the capture trigger is installed (or removed) in the
-- same transaction, and the gateways are woken (a change of a table they do not know makes them reload the catalog).
-- It never makes the DDL fail: on an error the gateway's periodic sync catches up.
CREATE FUNCTION tripsage_realtime.publication_changed() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
BEGIN
    PERFORM tripsage_realtime.sync_publication();
    PERFORM pg_notify('tripsage_realtime', '');
EXCEPTION
    WHEN OTHERS THEN
        RAISE WARNING 'tripsage realtime: capture not synced with supabase_realtime (%); the gateway syncs it', SQLERRM;
END
$$;

DO $event_trigger$
BEGIN
    -- Event triggers need a superuser; elsewhere the gateway installs the trigger when a channel subscribes.
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        CREATE EVENT TRIGGER tripsage_realtime_publication ON ddl_command_end
            WHEN TAG IN ('CREATE PUBLICATION', 'ALTER PUBLICATION')
            EXECUTE FUNCTION tripsage_realtime.publication_changed();
    END IF;
END
$event_trigger$;

REVOKE ALL ON FUNCTION tripsage_realtime.maintain_message_partitions(),
    tripsage_realtime.insert_probes(text, text[], uuid[]), tripsage_realtime.publication_changed()
    FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION tripsage_realtime.maintain_message_partitions(),
    tripsage_realtime.insert_probes(text, text[], uuid[])
    TO service_role, tripsage_automation;

SELECT tripsage_realtime.maintain_message_partitions();

-- TripSage's topics. trip:<trip id>: read (join, receive broadcasts, see presence) with view access to the trip,
-- write (send broadcasts, track presence) with edit access and above, by trip_access_level(). chat:<session id>: the
-- session's owner. The access level of the current user (auth.uid()) on a topic: 0 none, 1 view, 2 edit, 3 admin,
-- 4 owner. Never raises for a malformed topic (a policy error would deny with an error logged instead).
CREATE FUNCTION public.realtime_topic_access(p_topic text) RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    uid uuid := auth.uid();
BEGIN
    IF uid IS NULL OR p_topic IS NULL THEN
        RETURN 0;
    END IF;
    IF p_topic ~ '^trip:[1-9][0-9]{0,17}$' THEN
        RETURN public.trip_access_level(substr(p_topic, 6)::bigint, uid);
    END IF;
    IF p_topic ~* '^chat:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RETURN CASE WHEN public.chat_session_access(substr(p_topic, 6)::uuid, uid) = 'owner' THEN 4 ELSE 0 END;
    END IF;
    RETURN 0;
END
$$;
REVOKE ALL ON FUNCTION public.realtime_topic_access(text) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.realtime_topic_access(text) TO authenticated, service_role;

CREATE POLICY tripsage_topics_read ON realtime.messages FOR SELECT TO authenticated
    USING (extension IN ('broadcast', 'presence') AND public.realtime_topic_access(topic) >= 1);
CREATE POLICY tripsage_topics_write ON realtime.messages FOR INSERT TO authenticated
    WITH CHECK (extension IN ('broadcast', 'presence') AND public.realtime_topic_access(topic) >= 2);
