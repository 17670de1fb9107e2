-- 08_webhooks: the transactional outbox (events, deliveries), the event triggers, the seed's webhook configs, the
-- SQL API (send_webhook_with_retry, test_webhook, get_webhook_stats, replay). The pg_net emulation is in 12_net.sql.
-- (This file is migrations 20261124201000_webhooks.sql and 20261124234500_webhooks_retention.sql.)

-- Delivery state kept on the endpoint itself. max_concurrency bounds in-flight requests per endpoint.
ALTER TABLE public.webhook_configs
    ADD COLUMN max_concurrency integer NOT NULL DEFAULT 32 CHECK (max_concurrency BETWEEN 1 AND 1000);

-- The outbox lives in its own schema: the runtime's tables, not part of the app's API (PostgREST exposes public).
CREATE SCHEMA webhooks;
GRANT USAGE ON SCHEMA webhooks TO service_role, tripsage_automation;

-- Every event ever emitted, matched or not, so nothing is lost.
CREATE TABLE webhooks.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type text NOT NULL CHECK (length(event_type) BETWEEN 1 AND 200),
    payload jsonb NOT NULL DEFAULT '{}',
    dedupe_key text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX events_dedupe_idx ON webhooks.events (dedupe_key) WHERE dedupe_key IS NOT NULL;

-- One row per (event, endpoint): the unit the dispatcher claims, signs, sends and retries. webhook_id is the
-- Standard Webhooks message id, the same on every attempt. While a dispatcher holds a delivery (status
-- 'delivering'), lease_expires_at is its lease's expiry; next_attempt_at stays the time the attempt was due.
-- A claim changes no indexed column, so PostgreSQL writes it as a heap-only (HOT) update, with no index entry:
-- the partial indexes test the generated columns queued and dead rather than status (pending -> delivering
-- leaves both unchanged), and fillfactor 70 leaves room on each page for the claimed versions.
CREATE TABLE webhooks.deliveries (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id bigint NOT NULL REFERENCES webhooks.events (id) ON DELETE CASCADE,
    webhook_config_id bigint NOT NULL REFERENCES public.webhook_configs (id) ON DELETE CASCADE,
    webhook_id text NOT NULL DEFAULT ('msg_' || replace(gen_random_uuid()::text, '-', ''))
        CONSTRAINT deliveries_webhook_id_key UNIQUE,
    event_type text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivering', 'retrying', 'succeeded', 'dead')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    leased_by text,
    last_status integer,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at timestamptz,
    lease_expires_at timestamptz,
    queued boolean GENERATED ALWAYS AS (status IN ('pending', 'delivering', 'retrying')) STORED,
    dead boolean GENERATED ALWAYS AS (status = 'dead') STORED
) WITH (fillfactor = 70);
CREATE INDEX deliveries_due_idx ON webhooks.deliveries (next_attempt_at) WHERE queued;
CREATE INDEX deliveries_event_idx ON webhooks.deliveries (event_id);
CREATE INDEX deliveries_config_idx ON webhooks.deliveries (webhook_config_id, created_at DESC);
CREATE INDEX deliveries_dead_idx ON webhooks.deliveries (id) WHERE dead;

ALTER TABLE public.webhook_logs
    ADD COLUMN delivery_id bigint REFERENCES webhooks.deliveries (id) ON DELETE CASCADE;
CREATE INDEX webhook_logs_delivery_idx ON public.webhook_logs (delivery_id);

ALTER TABLE webhooks.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks.deliveries ENABLE ROW LEVEL SECURITY;
GRANT ALL ON webhooks.events, webhooks.deliveries TO service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.webhook_configs, public.webhook_logs, webhooks.events,
    webhooks.deliveries TO tripsage_automation;

-- Does an event type match one of a config's patterns? '*' matches everything, 'a.b.*' every type under a.b.
CREATE FUNCTION public.webhook_event_matches(p_event_type text, p_patterns text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM unnest(p_patterns) AS pattern
        WHERE pattern = '*' OR pattern = p_event_type
           OR (right(pattern, 2) = '.*' AND starts_with(p_event_type, left(pattern, -1)))
    )
$$;

-- The event types TripSage emits (for the SQL API's clear errors; triggers never validate).
CREATE FUNCTION public.webhook_event_type_known(p_event_type text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog
    AS $$
    SELECT p_event_type ~ ('^(trip\.collaborator\.(added|updated|removed)|chat\.message\.(created|process)'
        || '|chat\.session\.(started|ended)|booking\.(flights|accommodations|bookings)\.[a-z_]+|booking\.confirmed'
        || '|memory\.generate\.embedding|api_key\.expiring|test\.webhook|webhook\.endpoint\.disabled)$')
$$;

-- The outbox writer (the contract between the issues): records the event, and a delivery for each active config
-- whose patterns match, in the caller's transaction. Never raises because of configuration.
CREATE FUNCTION public.emit_event(p_event_type text, p_payload jsonb, p_dedupe_key text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    existing bigint;
    new_id bigint;
    matched integer;
BEGIN
    IF p_dedupe_key IS NOT NULL THEN
        SELECT e.id INTO existing FROM webhooks.events e
        WHERE e.dedupe_key = p_dedupe_key
          AND EXISTS (SELECT 1 FROM webhooks.deliveries d
                      WHERE d.event_id = e.id AND d.queued)
        LIMIT 1;
        IF existing IS NOT NULL THEN
            RETURN existing;
        END IF;
    END IF;
    INSERT INTO webhooks.events (event_type, payload, dedupe_key)
    VALUES (p_event_type, coalesce(p_payload, '{}'), p_dedupe_key)
    RETURNING id INTO new_id;
    INSERT INTO webhooks.deliveries (event_id, webhook_config_id, event_type)
    SELECT new_id, c.id, p_event_type FROM public.webhook_configs c
    WHERE c.is_active AND public.webhook_event_matches(p_event_type, c.events)
    -- Hold the matched configs (as the foreign key check would) so a config deleted concurrently is skipped
    -- rather than failing the caller's write.
    FOR KEY SHARE OF c;
    GET DIAGNOSTICS matched = ROW_COUNT;
    IF matched > 0 THEN
        PERFORM pg_notify('tripsage_webhooks', '');
    END IF;
    RETURN new_id;
END
$$;

-- Pending plus retrying deliveries (the contract's outbox depth).
CREATE FUNCTION public.webhook_outbox_depth() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
    SELECT count(*) FROM webhooks.deliveries WHERE queued
$$;

-- Triggers call this (one name for every trigger's way into the outbox).
CREATE FUNCTION public.emit_event_safely(p_event_type text, p_payload jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, webhooks
    AS $$
BEGIN
    -- No EXCEPTION block: emit_event cannot fail because of configuration (it matches whatever configs exist and
    -- skips concurrently deleted ones), and a handler would open a subtransaction per row, which overflows the
    -- 64-entry subtransaction cache on bulk writes and slows every concurrent snapshot.
    PERFORM public.emit_event(p_event_type, p_payload);
END
$$;

CREATE FUNCTION public.webhooks_trip_collaborator_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    -- auth.uid()'s sources, read without casts that could raise on malformed claims (actor is informational, and
    -- catching an error would cost a subtransaction per row).
    claimed text := coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
        substring(current_setting('request.jwt.claims', true) FROM '"sub"\s*:\s*"([^"]*)"'));
    actor uuid := CASE WHEN claimed ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN claimed::uuid END;
    data jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        data := jsonb_build_object('trip_id', OLD.trip_id, 'user_id', OLD.user_id,
            'permission_level', OLD.permission_level, 'added_by', OLD.added_by, 'actor_id', actor);
        PERFORM public.emit_event_safely('trip.collaborator.removed', data);
        RETURN OLD;
    ELSIF TG_OP = 'INSERT' THEN
        data := jsonb_build_object('trip_id', NEW.trip_id, 'user_id', NEW.user_id,
            'permission_level', NEW.permission_level, 'added_by', NEW.added_by, 'actor_id', actor);
        PERFORM public.emit_event_safely('trip.collaborator.added', data);
    ELSIF NEW.permission_level IS DISTINCT FROM OLD.permission_level THEN
        data := jsonb_build_object('trip_id', NEW.trip_id, 'user_id', NEW.user_id,
            'permission_level', NEW.permission_level, 'old_permission_level', OLD.permission_level,
            'added_by', NEW.added_by, 'actor_id', actor);
        PERFORM public.emit_event_safely('trip.collaborator.updated', data);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhooks_trip_collaborator_event AFTER INSERT OR UPDATE OR DELETE ON public.trip_collaborators
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_trip_collaborator_event();

CREATE FUNCTION public.webhooks_chat_message_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    data jsonb;
BEGIN
    SELECT jsonb_build_object('message_id', NEW.id, 'session_id', NEW.session_id, 'user_id', s.user_id,
        'trip_id', s.trip_id, 'role', NEW.role, 'created_at', NEW.created_at)
    INTO data FROM public.chat_sessions s WHERE s.id = NEW.session_id;
    PERFORM public.emit_event_safely('chat.message.created', data);
    IF NEW.role = 'user' THEN
        PERFORM public.emit_event_safely('chat.message.process', data || jsonb_build_object('content', NEW.content));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhooks_chat_message_event AFTER INSERT ON public.chat_messages
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_chat_message_event();

CREATE FUNCTION public.webhooks_chat_session_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    data jsonb := jsonb_build_object('session_id', NEW.id, 'user_id', NEW.user_id, 'trip_id', NEW.trip_id);
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.emit_event_safely('chat.session.started', data);
        IF NEW.ended_at IS NOT NULL THEN
            PERFORM public.emit_event_safely('chat.session.ended', data);
        END IF;
    ELSIF NEW.ended_at IS NOT NULL AND OLD.ended_at IS NULL THEN
        PERFORM public.emit_event_safely('chat.session.ended', data);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhooks_chat_session_event AFTER INSERT OR UPDATE ON public.chat_sessions
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_chat_session_event();

-- bookings, flights and accommodations: booking.<kind>.<status> on every status change (and on insert), and
-- booking.confirmed when a booking becomes confirmed or a flight/stay becomes booked.
CREATE FUNCTION public.webhooks_booking_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    -- One function for three tables whose status columns differ in name: read it through jsonb.
    status_column text := CASE TG_TABLE_NAME WHEN 'bookings' THEN 'status' ELSE 'booking_status' END;
    new_status text := to_jsonb(NEW) ->> status_column;
    old_status text;
    trip record;
    data jsonb;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        old_status := to_jsonb(OLD) ->> status_column;
        IF new_status IS NOT DISTINCT FROM old_status THEN
            RETURN NEW;
        END IF;
    END IF;
    SELECT t.user_id, t.name, t.destination INTO trip FROM public.trips t WHERE t.id = NEW.trip_id;
    data := jsonb_build_object('booking_type', TG_TABLE_NAME, 'booking_id', NEW.id, 'trip_id', NEW.trip_id,
        'user_id', trip.user_id, 'old_status', old_status, 'new_status', new_status);
    PERFORM public.emit_event_safely('booking.' || TG_TABLE_NAME || '.' || new_status, data);
    IF new_status IN ('confirmed', 'booked') THEN
        PERFORM public.emit_event_safely('booking.confirmed',
            data || jsonb_build_object('trip_name', trip.name, 'destination', trip.destination));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhooks_bookings_event AFTER INSERT OR UPDATE OF status ON public.bookings
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_booking_event();
CREATE TRIGGER webhooks_flights_event AFTER INSERT OR UPDATE OF booking_status ON public.flights
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_booking_event();
CREATE TRIGGER webhooks_accommodations_event AFTER INSERT OR UPDATE OF booking_status ON public.accommodations
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_booking_event();

CREATE FUNCTION public.webhooks_memory_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
BEGIN
    IF NEW.embedding IS NULL AND (TG_OP = 'INSERT' OR OLD.embedding IS NOT NULL OR OLD.content <> NEW.content) THEN
        PERFORM public.emit_event_safely('memory.generate.embedding',
            jsonb_build_object('memory_ids', jsonb_build_array(NEW.id)));
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER webhooks_memory_event AFTER INSERT OR UPDATE OF embedding, content ON public.memories
    FOR EACH ROW EXECUTE FUNCTION public.webhooks_memory_event();

-- The seed's configs. The runtime generates their secrets; `tripsage up` points the first two at itself and
-- activates them (until then they are inactive and their URLs are placeholders). Explicit ids far from the identity's
-- start, so a fixture or restore that inserts configs with ids 1, 2, ... does not collide with them.
INSERT INTO public.webhook_configs (id, name, url, events, is_active) OVERRIDING SYSTEM VALUE VALUES
    (1001, 'trip_events', 'http://127.0.0.1:54321/functions/v1/trip-events',
        ARRAY['trip.collaborator.*', 'booking.confirmed', 'api_key.expiring'], false),
    (1002, 'ai_processing', 'http://127.0.0.1:54321/functions/v1/ai-processing',
        ARRAY['chat.message.process', 'memory.generate.embedding'], false),
    (1003, 'chat_events', 'https://example.invalid/webhooks/chat', ARRAY['chat.message.created', 'chat.session.*'],
        false),
    (1004, 'booking_events', 'https://example.invalid/webhooks/bookings', ARRAY['booking.*'], false),
    (1005, 'notification_service', 'https://example.invalid/webhooks/notifications',
        ARRAY['trip.collaborator.*', 'booking.confirmed', 'api_key.expiring'], false),
    (1006, 'calendar_sync', 'https://example.invalid/webhooks/calendar', ARRAY['booking.confirmed'], false);

-- The SQL API (the seed's names). An unknown or inactive config, an unknown event type and an oversized payload are
-- clear errors here (never in triggers).
CREATE FUNCTION public.send_webhook_with_retry(p_name text, p_event_type text, p_payload jsonb)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    config public.webhook_configs;
    event_id bigint;
    delivery_id bigint;
    max_payload_bytes CONSTANT integer := 262144;
BEGIN
    SELECT * INTO config FROM public.webhook_configs WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown webhook config "%"', p_name USING ERRCODE = 'no_data_found',
            HINT = 'list them with: tripsage webhooks list';
    END IF;
    IF NOT config.is_active THEN
        RAISE EXCEPTION 'webhook config "%" is inactive%', p_name,
            coalesce(' (' || config.disabled_reason || ')', '') USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = format('enable it with: tripsage webhooks enable %s', p_name);
    END IF;
    IF p_event_type IS NULL OR NOT public.webhook_event_type_known(p_event_type) THEN
        RAISE EXCEPTION 'unknown webhook event type "%"', p_event_type USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF octet_length(coalesce(p_payload, '{}')::text) > max_payload_bytes THEN
        RAISE EXCEPTION 'webhook payload is % bytes, more than the limit of % bytes',
            octet_length(p_payload::text), max_payload_bytes USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO webhooks.events (event_type, payload) VALUES (p_event_type, coalesce(p_payload, '{}'))
    RETURNING id INTO event_id;
    INSERT INTO webhooks.deliveries (event_id, webhook_config_id, event_type)
    VALUES (event_id, config.id, p_event_type) RETURNING id INTO delivery_id;
    PERFORM pg_notify('tripsage_webhooks', '');
    RETURN delivery_id;
END
$$;

CREATE FUNCTION public.test_webhook(p_name text, p_payload jsonb DEFAULT '{"test": true}') RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
    SELECT public.send_webhook_with_retry(p_name, 'test.webhook', p_payload)
$$;

CREATE FUNCTION public.get_webhook_stats(p_name text DEFAULT NULL, p_days integer DEFAULT 7)
    RETURNS TABLE (config_name text, total bigint, succeeded bigint, failed bigint, pending bigint, dead bigint,
                   success_rate numeric, avg_latency_ms numeric, p95_latency_ms numeric, by_event_type jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
BEGIN
    IF p_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM public.webhook_configs WHERE name = p_name) THEN
        RAISE EXCEPTION 'unknown webhook config "%"', p_name USING ERRCODE = 'no_data_found';
    END IF;
    RETURN QUERY
    WITH d AS (
        SELECT c.name, d.status, d.event_type, d.attempts
        FROM public.webhook_configs c
        JOIN webhooks.deliveries d ON d.webhook_config_id = c.id
        WHERE (p_name IS NULL OR c.name = p_name) AND d.created_at >= now() - make_interval(days => p_days)
    ), l AS (
        SELECT c.name, l.duration_ms
        FROM public.webhook_configs c JOIN public.webhook_logs l ON l.webhook_config_id = c.id
        WHERE (p_name IS NULL OR c.name = p_name) AND l.created_at >= now() - make_interval(days => p_days)
    ), per_type AS (
        SELECT d.name, jsonb_object_agg(d.event_type, d.n) AS counts
        FROM (SELECT d.name, d.event_type, count(*) AS n FROM d GROUP BY 1, 2) d GROUP BY 1
    )
    SELECT c.name,
        count(d.status),
        count(*) FILTER (WHERE d.status = 'succeeded'),
        count(*) FILTER (WHERE d.status = 'retrying'),
        count(*) FILTER (WHERE d.status IN ('pending', 'delivering')),
        count(*) FILTER (WHERE d.status = 'dead'),
        round(100.0 * count(*) FILTER (WHERE d.status = 'succeeded')
            / nullif(count(*) FILTER (WHERE d.status IN ('succeeded', 'dead')), 0), 2),
        (SELECT round(avg(l.duration_ms), 2) FROM l WHERE l.name = c.name),
        (SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms)::numeric, 2)
         FROM l WHERE l.name = c.name),
        coalesce((SELECT p.counts FROM per_type p WHERE p.name = c.name), '{}')
    FROM public.webhook_configs c
    LEFT JOIN d ON d.name = c.name
    WHERE p_name IS NULL OR c.name = p_name
    GROUP BY c.name
    ORDER BY c.name;
END
$$;

-- Replay: a dead (or any finished) delivery goes back to the queue with the same webhook-id.
CREATE FUNCTION public.replay_webhook_delivery(p_delivery_id bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
BEGIN
    UPDATE webhooks.deliveries
    SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), leased_by = NULL,
        lease_expires_at = NULL, completed_at = NULL
    WHERE id = p_delivery_id AND status IN ('dead', 'succeeded');
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_notify('tripsage_webhooks', '');
    RETURN true;
END
$$;

CREATE FUNCTION public.replay_dead_webhook_deliveries(p_name text DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    replayed bigint;
BEGIN
    UPDATE webhooks.deliveries d
    SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), leased_by = NULL,
        lease_expires_at = NULL, completed_at = NULL
    FROM public.webhook_configs c
    WHERE d.webhook_config_id = c.id AND d.dead AND (p_name IS NULL OR c.name = p_name);
    GET DIAGNOSTICS replayed = ROW_COUNT;
    IF replayed > 0 THEN
        PERFORM pg_notify('tripsage_webhooks', '');
    END IF;
    RETURN replayed;
END
$$;

REVOKE ALL ON FUNCTION public.emit_event(text, jsonb, text), public.webhook_outbox_depth(),
    public.emit_event_safely(text, jsonb), public.send_webhook_with_retry(text, text, jsonb),
    public.test_webhook(text, jsonb), public.get_webhook_stats(text, integer),
    public.replay_webhook_delivery(bigint), public.replay_dead_webhook_deliveries(text),
    public.webhooks_trip_collaborator_event(), public.webhooks_chat_message_event(),
    public.webhooks_chat_session_event(), public.webhooks_booking_event(), public.webhooks_memory_event()
    FROM PUBLIC;
-- Trigger functions run as their owner whoever writes; emit_event_safely is called from them and from jobs.
GRANT EXECUTE ON FUNCTION public.emit_event(text, jsonb, text), public.webhook_outbox_depth(),
    public.emit_event_safely(text, jsonb), public.send_webhook_with_retry(text, text, jsonb),
    public.test_webhook(text, jsonb), public.get_webhook_stats(text, integer),
    public.replay_webhook_delivery(bigint), public.replay_dead_webhook_deliveries(text)
    TO service_role, tripsage_automation;
REVOKE ALL ON FUNCTION public.webhook_event_matches(text, text[]), public.webhook_event_type_known(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.webhook_event_matches(text, text[]), public.webhook_event_type_known(text)
    TO service_role, tripsage_automation;

-- Delete succeeded deliveries (and, by cascade, their attempt logs) finished more than p_older_than ago, then events
-- older than that with no delivery left; at most p_limit of each per call. Dead deliveries stay until replayed or
-- deleted by an operator. The runtime calls this periodically; it returns the number of rows deleted.
CREATE FUNCTION public.cleanup_webhook_outbox(p_older_than interval DEFAULT '30 days', p_limit integer DEFAULT 10000)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
DECLARE
    deliveries_deleted bigint;
    events_deleted bigint;
BEGIN
    DELETE FROM webhooks.deliveries
    WHERE id IN (SELECT id FROM webhooks.deliveries
                 WHERE status = 'succeeded' AND completed_at < now() - p_older_than
                 LIMIT p_limit);
    GET DIAGNOSTICS deliveries_deleted = ROW_COUNT;
    DELETE FROM webhooks.events
    WHERE id IN (SELECT e.id FROM webhooks.events e
                 WHERE e.created_at < now() - p_older_than
                   AND NOT EXISTS (SELECT 1 FROM webhooks.deliveries d WHERE d.event_id = e.id)
                 LIMIT p_limit);
    GET DIAGNOSTICS events_deleted = ROW_COUNT;
    RETURN deliveries_deleted + events_deleted;
END
$$;
REVOKE ALL ON FUNCTION public.cleanup_webhook_outbox(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.cleanup_webhook_outbox(interval, integer) TO service_role, tripsage_automation;
