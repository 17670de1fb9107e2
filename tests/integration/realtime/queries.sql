-- name: add_user
INSERT INTO auth.users (id, email) VALUES (%(id)s, %(email)s)

-- name: add_trip
INSERT INTO public.trips (user_id, name, destination, start_date, end_date, budget)
VALUES (%(user_id)s, %(name)s, 'Lisbon', '2026-05-01', '2026-05-08', %(budget)s)
RETURNING id

-- name: update_trip_name
UPDATE public.trips SET name = %(name)s WHERE id = %(id)s

-- name: delete_trip
DELETE FROM public.trips WHERE id = %(id)s

-- name: add_collaborator
INSERT INTO public.trip_collaborators (trip_id, user_id, permission_level, added_by)
VALUES (%(trip_id)s, %(user_id)s, %(level)s, %(added_by)s)
RETURNING id

-- name: count_trips
SELECT count(*) FROM public.trips

-- name: add_dead_gateway
-- A gateway last seen long ago, with one presence on a topic.
WITH gateway AS (
    INSERT INTO tripsage_realtime.gateways (id, seen_at) VALUES (%(id)s, now() - interval '1 hour') RETURNING id
)
INSERT INTO tripsage_realtime.presence (topic, key, phx_ref, gateway_id, meta)
SELECT %(topic)s, 'ghost', 'ghost-ref', id, '{"from": "a dead replica"}' FROM gateway

-- name: add_big_trip
-- A trip whose notes make its row over 1 MiB as JSON.
INSERT INTO public.trips (user_id, name, destination, start_date, end_date, notes)
VALUES (%(user_id)s, 'big', 'X', '2026-01-01', '2026-01-02', ARRAY(SELECT repeat('n', 1000) FROM generate_series(1, 1500)))
RETURNING id

-- name: act_as
-- The rest of the transaction runs as a database role with a user's claims (as PostgREST would).
SELECT set_config('role', %(role)s, true), set_config('request.jwt.claims', %(claims)s, true)

-- name: notify_relay
-- What a database role could try: a forged relay message on the old relay channel.
SELECT pg_notify('tripsage_realtime_relay', %(payload)s)

-- name: notify_changes
SELECT pg_notify('tripsage_realtime', %(payload)s)

-- name: realtime_send
SELECT realtime.send(%(payload)s::jsonb, %(event)s, %(topic)s, %(private)s)

-- name: remove_collaborator
DELETE FROM public.trip_collaborators WHERE trip_id = %(trip_id)s AND user_id = %(user_id)s

-- name: create_unpublished_table
-- A table not yet in the publication, readable by service_role.
CREATE TABLE public.rt_added (id bigint PRIMARY KEY, note text);
ALTER TABLE public.rt_added ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON public.rt_added TO service_role

-- name: publish_table
ALTER PUBLICATION supabase_realtime ADD TABLE public.rt_added

-- name: unpublish_table
ALTER PUBLICATION supabase_realtime DROP TABLE public.rt_added

-- name: insert_rt_added
INSERT INTO public.rt_added (id, note) VALUES (%(id)s, %(note)s)

-- name: install_items_broadcast
-- Broadcast from Database as Supabase documents it: a row trigger calling realtime.broadcast_changes to trip:<id>.
CREATE FUNCTION public.itinerary_items_broadcast() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
BEGIN
    PERFORM realtime.broadcast_changes('trip:' || coalesce(NEW.trip_id, OLD.trip_id)::text, TG_OP, TG_OP,
                                       TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
    RETURN NULL;
END
$$;
CREATE TRIGGER itinerary_items_broadcast AFTER INSERT OR UPDATE OR DELETE ON public.itinerary_items
    FOR EACH ROW EXECUTE FUNCTION public.itinerary_items_broadcast()

-- name: add_item
INSERT INTO public.itinerary_items (trip_id, title) VALUES (%(trip_id)s, %(title)s) RETURNING id

-- name: add_chat_session
INSERT INTO public.chat_sessions (id, user_id) VALUES (%(id)s, %(user_id)s)

-- name: count_messages
SELECT count(*) FROM realtime.messages WHERE topic = %(topic)s

-- name: add_old_partition
CREATE TABLE realtime.messages_2020_01_01 PARTITION OF realtime.messages
    FOR VALUES FROM ('2020-01-01') TO ('2020-01-02')

-- name: message_partitions
SELECT c.relname AS name FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'realtime.messages'::regclass ORDER BY 1

-- name: expected_partitions
SELECT 'messages_' || to_char((now() AT TIME ZONE 'UTC')::date + d, 'YYYY_MM_DD') AS name
FROM generate_series(-1, 3) AS d ORDER BY 1

-- name: maintain_partitions
SELECT tripsage_realtime.maintain_message_partitions()

-- name: topic_inside_probe
-- realtime.topic() as a policy sees it.
SELECT set_config('realtime.topic', %(topic)s, true) AS set, realtime.topic() AS topic
