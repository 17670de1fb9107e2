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
