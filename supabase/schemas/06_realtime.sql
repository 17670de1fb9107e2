-- 06_realtime: the publication that Supabase Realtime (and our gateway) reads. Created if absent, never dropped;
-- the six collaborative tables are added when missing, and tables added from a dashboard are left in place.

DO $publication$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        CREATE PUBLICATION supabase_realtime;
    END IF;
    FOREACH t IN ARRAY ARRAY['trips', 'chat_messages', 'chat_sessions', 'trip_collaborators', 'itinerary_items',
                             'chat_tool_calls'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_publication_tables
                       WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
            EXECUTE format('ALTER PUBLICATION supabase_realtime ADD TABLE public.%I', t);
        END IF;
    END LOOP;
END
$publication$;
