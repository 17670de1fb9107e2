-- name: emulated
-- Is schema net TripSage's emulation (not the real pg_net, and not absent)?
SELECT coalesce(obj_description(n.oid, 'pg_namespace') LIKE 'tripsage emulation of pg_net%%', false) AS emulated
FROM pg_namespace n WHERE n.nspname = 'net'

-- name: settings
-- pg_net.ttl and pg_net.batch_size as they stand now, read for every batch: the most specific of ALTER ROLE ... IN
-- DATABASE, ALTER ROLE, ALTER DATABASE (read from the catalog, so a change applies without reconnecting), then the
-- session's value (postgresql.conf / ALTER SYSTEM after a reload), then pg_net's defaults.
WITH scoped AS (
    SELECT split_part(entry, '=', 1) AS name, substr(entry, strpos(entry, '=') + 1) AS value,
           (s.setdatabase <> 0)::int + 2 * (s.setrole <> 0)::int AS specificity
    FROM pg_db_role_setting s, unnest(s.setconfig) AS entry
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
      AND s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user))
      AND split_part(entry, '=', 1) IN ('pg_net.ttl', 'pg_net.batch_size')
)
SELECT coalesce((SELECT value FROM scoped WHERE name = 'pg_net.ttl' ORDER BY specificity DESC LIMIT 1),
                nullif(current_setting('pg_net.ttl', true), ''), '6 hours') AS ttl,
       coalesce((SELECT value FROM scoped WHERE name = 'pg_net.batch_size' ORDER BY specificity DESC LIMIT 1),
                nullif(current_setting('pg_net.batch_size', true), ''), '200') AS batch_size

-- name: expire_responses
-- Responses older than pg_net.ttl, at most a batch at a time, oldest first (as pg_net's worker deletes them).
DELETE FROM net._http_response r
WHERE r.ctid IN (
    SELECT ctid FROM net._http_response WHERE created < now() - %(ttl)s::interval ORDER BY created LIMIT %(limit)s
)

-- name: take_requests
-- The oldest committed requests, removed from the queue in the transaction that stores their responses.
-- Headers become the "name: value" lines pg_net hands to libcurl. Headers that are not a JSON object (only a
-- direct INSERT can queue them) would fail pg_net's whole batch; here that one request fails.
DELETE FROM net.http_request_queue q
WHERE q.id IN (
    SELECT id FROM net.http_request_queue ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
)
RETURNING q.id, q.method::text AS method, q.url, q.timeout_milliseconds, q.body,
          CASE WHEN jsonb_typeof(q.headers) = 'object'
               THEN array(SELECT h.key || ': ' || h.value FROM jsonb_each_text(q.headers) AS h) END AS header_lines,
          q.headers IS NOT NULL AND jsonb_typeof(q.headers) <> 'object' AS headers_invalid

-- name: store_responses
INSERT INTO net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
SELECT *
FROM unnest(%(ids)s::bigint[], %(codes)s::integer[], %(content_types)s::text[], %(headers)s::jsonb[],
            %(contents)s::text[], %(timed_out)s::boolean[], %(errors)s::text[])
