-- name: emulated
-- Is schema net TripSage's emulation (not the real pg_net, and not absent)?
SELECT coalesce(obj_description(n.oid, 'pg_namespace') LIKE 'tripsage emulation of pg_net%%', false) AS emulated
FROM pg_namespace n WHERE n.nspname = 'net'

-- name: expire_responses
-- pg_net.ttl (default 6 hours), as pg_net reads it.
DELETE FROM net._http_response
WHERE created < now() - coalesce(nullif(current_setting('pg_net.ttl', true), ''), '6 hours')::interval

-- name: take_requests
-- The oldest committed requests, removed from the queue in the transaction that stores their responses.
DELETE FROM net.http_request_queue q
WHERE q.id IN (
    SELECT id FROM net.http_request_queue ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
RETURNING q.id, q.method::text AS method, q.url, q.headers, q.body, q.timeout_milliseconds

-- name: store_responses
INSERT INTO net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
SELECT *
FROM unnest(%(ids)s::bigint[], %(codes)s::integer[], %(content_types)s::text[], %(headers)s::jsonb[],
            %(contents)s::text[], %(timed_out)s::boolean[], %(errors)s::text[])
