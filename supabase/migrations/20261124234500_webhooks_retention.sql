-- Webhooks retention: the outbox keeps finished work for a while, then lets it go.
-- (The same function is in supabase/schemas/08_webhooks.sql.)

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
