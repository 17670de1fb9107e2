-- Claiming a delivery no longer touches an indexed column, so PostgreSQL can write the claim as a heap-only (HOT)
-- update: a new row version on the same page and no index entry, where it used to insert one into each of the
-- table's five indexes (issue #19: the claim was a fifth of PostgreSQL's time per delivery).
-- - The lease has its own column, lease_expires_at; next_attempt_at keeps the time the attempt was due.
-- - The two partial indexes test generated columns instead of status: queued (pending, delivering or retrying) and
--   dead. pending -> delivering leaves both unchanged, and PostgreSQL decides HOT on the indexed values.
-- - fillfactor 70 leaves room on each page for the claimed versions.
-- Deliveries in flight when this runs keep their lease: it was their next_attempt_at. Runtimes older than this
-- migration do not read lease_expires_at: during a rolling upgrade one may take a newer replica's delivery
-- before its lease ends (a second send with the same webhook-id; only one of the two results is recorded).
-- Adding the generated columns rewrites webhooks.deliveries (writes to it wait meanwhile).
-- emit_event's dedupe, webhook_outbox_depth and the dead-letter replay read queued and dead too: one definition of
-- each state. (supabase/schemas/08_webhooks.sql has the same definitions.)

ALTER TABLE webhooks.deliveries SET (fillfactor = 70);
ALTER TABLE webhooks.deliveries
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN queued boolean GENERATED ALWAYS AS (status IN ('pending', 'delivering', 'retrying')) STORED,
    ADD COLUMN dead boolean GENERATED ALWAYS AS (status = 'dead') STORED;
UPDATE webhooks.deliveries SET lease_expires_at = next_attempt_at WHERE status = 'delivering';

DROP INDEX webhooks.deliveries_due_idx;
CREATE INDEX deliveries_due_idx ON webhooks.deliveries (next_attempt_at) WHERE queued;
DROP INDEX webhooks.deliveries_dead_idx;
CREATE INDEX deliveries_dead_idx ON webhooks.deliveries (id) WHERE dead;

CREATE OR REPLACE FUNCTION public.emit_event(p_event_type text, p_payload jsonb, p_dedupe_key text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION public.webhook_outbox_depth() RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, webhooks
    AS $$
    SELECT count(*) FROM webhooks.deliveries WHERE queued
$$;

CREATE OR REPLACE FUNCTION public.replay_dead_webhook_deliveries(p_name text DEFAULT NULL) RETURNS bigint
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

CREATE OR REPLACE FUNCTION public.replay_webhook_delivery(p_delivery_id bigint) RETURNS boolean
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
