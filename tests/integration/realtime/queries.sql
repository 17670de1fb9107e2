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
