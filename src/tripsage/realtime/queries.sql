-- name: sync_publication
-- Install the capture trigger on the tables of supabase_realtime (and remove it from tables no longer there).
SELECT tripsage_realtime.sync_publication() AS changed

-- name: publication_columns
-- The published tables' columns in attnum order, with their pg type names, primary key membership and the
-- table's replica identity and RLS flag.
SELECT n.nspname AS schema_name, c.relname AS table_name, a.attname AS column_name, t.typname AS type_name,
       a.attnum AS position,
       coalesce(a.attnum = ANY (i.indkey::int2[]), false) AS is_primary_key,
       c.relreplident = 'f' AS replica_identity_full,
       c.relrowsecurity AS rls_enabled
FROM pg_catalog.pg_publication_tables p
JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE p.pubname = 'supabase_realtime'
ORDER BY n.nspname, c.relname, a.attnum

-- name: selectable_columns
-- The columns of the published tables that a role may SELECT.
SELECT n.nspname AS schema_name, c.relname AS table_name, a.attname AS column_name
FROM pg_catalog.pg_publication_tables p
JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE p.pubname = 'supabase_realtime'
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = %(role)s)
  AND has_column_privilege(%(role)s, c.oid, a.attnum, 'SELECT')

-- name: role_bypasses_rls
-- Does the role bypass row-level security (service_role, superusers)?
SELECT coalesce((SELECT r.rolbypassrls OR r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = %(role)s), false)
    AS bypass

-- name: changes_horizon
-- The oldest transaction still running: every transaction below it has finished.
SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon

-- name: read_changes
-- Committed changes of transactions at or above the horizon (those that may have finished since the last read),
-- after a given id, with the horizon of this same snapshot (one row with a null id when there is no change).
SELECT h.horizon, c.*
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon) h
LEFT JOIN LATERAL (
    SELECT c.id, c.xid::text AS xid, c.captured_at, c.schema_name, c.table_name, c.type,
           c.record::text AS record, c.old_record::text AS old_record, c.audience::text AS audience
    FROM tripsage_realtime.changes c
    WHERE c.xid >= %(horizon)s::xid8 AND c.id > %(after)s
    ORDER BY c.id
    LIMIT %(limit)s
) c ON true

-- name: register_gateway
-- This gateway is alive (capture is on while one is).
INSERT INTO tripsage_realtime.gateways (id) VALUES (%(id)s)
ON CONFLICT (id) DO UPDATE SET seen_at = now()

-- name: forget_gateway
DELETE FROM tripsage_realtime.gateways WHERE id = %(id)s

-- name: expire_gateways
-- Gateways silent for longer than the timeout are gone: remove them and their presences (returned, for the leaves).
WITH gone AS (
    SELECT id FROM tripsage_realtime.gateways
    WHERE seen_at < now() - make_interval(secs => %(timeout_s)s)
    FOR UPDATE SKIP LOCKED
), presences AS (
    DELETE FROM tripsage_realtime.presence p USING gone WHERE p.gateway_id = gone.id
    RETURNING p.topic, p.private, p.key, p.phx_ref, p.meta::text AS meta
), gateways AS (
    DELETE FROM tripsage_realtime.gateways g USING gone WHERE g.id = gone.id
)
SELECT topic, private, key, phx_ref, meta FROM presences

-- name: cleanup_changes
-- Drop captured changes and relayed messages older than the retention; returns the number of rows deleted.
WITH changes AS (
    DELETE FROM tripsage_realtime.changes
    WHERE id IN (SELECT id FROM tripsage_realtime.changes
                 WHERE captured_at < now() - make_interval(secs => %(retention_s)s) LIMIT %(limit)s)
    RETURNING 1
)
SELECT count(*) AS deleted FROM changes

-- name: presence_track
INSERT INTO tripsage_realtime.presence (topic, private, key, phx_ref, gateway_id, meta)
VALUES (%(topic)s, %(private)s, %(key)s, %(phx_ref)s, %(gateway_id)s, %(meta)s::jsonb)
ON CONFLICT (topic, phx_ref) DO UPDATE SET key = excluded.key, meta = excluded.meta, updated_at = now()

-- name: presence_untrack
DELETE FROM tripsage_realtime.presence WHERE topic = %(topic)s AND private = %(private)s AND phx_ref = %(phx_ref)s
RETURNING key, phx_ref, meta::text AS meta

-- name: presence_list
-- The presence of a topic, private or public.
SELECT key, phx_ref, meta::text AS meta FROM tripsage_realtime.presence
WHERE topic = %(topic)s AND private = %(private)s
ORDER BY updated_at

-- name: presence_drop_gateway
-- This gateway stops: its presences go (returned, for the leaves).
DELETE FROM tripsage_realtime.presence WHERE gateway_id = %(gateway_id)s
RETURNING topic, private, key, phx_ref, meta::text AS meta

-- name: status_gateways
-- The gateways known to the database, newest first, and whether each is alive (capture needs one).
SELECT g.id::text AS id, g.started_at, g.seen_at, g.seen_at > now() - interval '1 minute' AS alive,
       (SELECT count(*) FROM tripsage_realtime.presence p WHERE p.gateway_id = g.id) AS presences
FROM tripsage_realtime.gateways g
ORDER BY g.started_at DESC

-- name: status_tables
-- The tables of supabase_realtime: capture trigger installed, audience function known, RLS on.
SELECT quote_ident(p.schemaname) || '.' || quote_ident(p.tablename) AS table_name,
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
               WHERE t.tgrelid = c.oid AND t.tgname = 'A_realtime_capture') AS capture_trigger,
       p.schemaname = 'public' AND p.tablename IN ('trips', 'trip_collaborators', 'itinerary_items', 'chat_sessions',
                                                   'chat_messages', 'chat_tool_calls') AS audience_function,
       c.relrowsecurity AS rls
FROM pg_catalog.pg_publication_tables p
JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
WHERE p.pubname = 'supabase_realtime'
ORDER BY 1

-- name: status_backlog
-- Captured changes kept (bounded by the retention) and the age of the oldest, in seconds.
SELECT count(*) AS changes,
       coalesce(extract(epoch FROM now() - min(captured_at)), 0)::float8 AS oldest_s,
       count(*) FILTER (WHERE schema_name IN ('tripsage_realtime', 'realtime')) AS relayed
FROM tripsage_realtime.changes

-- name: maintain_message_partitions
-- realtime.messages' daily partitions: yesterday to three days ahead; those older than 72 hours dropped.
SELECT tripsage_realtime.maintain_message_partitions() AS changed

-- name: authorization_insert_probes
-- The read probe's rows, one per extension, inserted as the table's owner.
SELECT tripsage_realtime.insert_probes(%(topic)s, %(extensions)s::text[], %(ids)s::uuid[])

-- name: authorization_act_as
-- Act as the channel's user for the rest of the transaction (Supabase's set_conn_config).
SELECT set_config('role', %(role)s, true), set_config('realtime.topic', %(topic)s, true),
       set_config('request.jwt.claims', %(claims)s, true), set_config('request.jwt.claim.sub', %(sub)s, true),
       set_config('request.jwt.claim.role', %(role)s, true), set_config('request.headers', '{}', true)

-- name: authorization_read
-- Which of the probe rows the user may SELECT (RLS decides).
SELECT id::text AS id FROM realtime.messages WHERE id = ANY (%(ids)s::uuid[])

-- name: authorization_write
-- May the user INSERT a message of this extension on the topic (RLS decides)?
INSERT INTO realtime.messages (topic, extension) VALUES (%(topic)s, %(extension)s)

-- name: relay
-- A broadcast or presence diff for the other gateways: stored in the table only the runtime writes (NOTIFY only
-- wakes them; a NOTIFY payload is never trusted).
WITH stored AS (
    INSERT INTO tripsage_realtime.changes (schema_name, table_name, type, record)
    VALUES ('tripsage_realtime', 'relay', 'INSERT', %(message)s::jsonb)
    RETURNING id
)
SELECT pg_notify('tripsage_realtime', '') FROM stored
