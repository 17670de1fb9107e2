-- name: claim_deliveries
-- Due deliveries of active endpoints (and ones whose holder's lease expired), leased to this dispatcher. The update
-- changes no indexed column (the lease is in lease_expires_at), so it is heap-only. A delivering row without a
-- lease_expires_at was leased through next_attempt_at (before migration 20261127230000): due means expired.
WITH due AS (
    SELECT d.id
    FROM webhooks.deliveries d
    JOIN public.webhook_configs c ON c.id = d.webhook_config_id
    WHERE d.queued
      AND d.next_attempt_at <= %(now)s
      AND (d.status <> 'delivering' OR d.lease_expires_at IS NULL OR d.lease_expires_at <= %(now)s)
      AND c.is_active AND c.secret IS NOT NULL
    ORDER BY d.next_attempt_at
    LIMIT %(limit)s
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhooks.deliveries d
SET status = 'delivering',
    attempts = d.attempts + 1,
    leased_by = %(worker)s,
    lease_expires_at = %(now)s + make_interval(secs => c.timeout_ms / 1000.0
        + coalesce((c.retry_config ->> 'lease_margin_s')::float8, %(lease_margin_s)s))
FROM due, webhooks.events e, public.webhook_configs c
WHERE d.id = due.id AND e.id = d.event_id AND c.id = d.webhook_config_id
RETURNING d.id, d.webhook_id, d.attempts, e.created_at AS event_created_at,
    c.id AS config_id, c.xmin::text AS config_version,
    -- The exact bytes sent and signed, the same on every attempt: {type, timestamp (the event's, UTC, ms), data}
    -- with data as PostgreSQL stores it (jsonb's text), so the payload is never parsed and dumped again.
    '{"type":' || to_json(d.event_type)::text
        || ',"timestamp":"' || to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        || '","data":' || e.payload::text || '}' AS body

-- name: endpoint_configs
-- The endpoints of claimed deliveries whose version (the row's xmin, new on every change) the dispatcher has not
-- decoded yet: their settings are decoded once per version, not once per delivery.
SELECT c.id, c.xmin::text AS version, c.name, c.url, c.secret, c.headers, c.timeout_ms, c.retry_config,
    c.max_concurrency, c.failing_since IS NOT NULL AS failing
FROM public.webhook_configs c
WHERE c.id = ANY(%(ids)s::bigint[])

-- name: finish_deliveries
-- Record a batch of attempts: the deliveries' new state (only while this dispatcher still holds the lease for
-- that attempt) and one webhook_logs row per attempt. The lease check compares d with r's columns rather than with
-- constants: a constant test on d (leased_by = the worker, status = 'delivering') let the planner, reading
-- statistics taken while nothing was delivering, expect one such row, scan the whole table for them and compare
-- each with every attempt of the batch (issue #19: 160 us per delivery at 20,000 rows, growing with the table);
-- as join conditions they leave one plan, a primary-key lookup per attempt.
WITH r AS MATERIALIZED (
    SELECT r.*, %(worker)s::text AS holder, 'delivering'::text AS holding
    FROM unnest(%(ids)s::bigint[], %(attempts)s::integer[], %(statuses)s::text[], %(next_at)s::timestamptz[],
                %(codes)s::integer[], %(bodies)s::text[], %(durations)s::integer[], %(errors)s::text[])
        AS r(id, attempt, status, next_at, code, body, duration_ms, error)
), updated AS (
    UPDATE webhooks.deliveries d
    SET status = r.status,
        next_attempt_at = coalesce(r.next_at, d.next_attempt_at),
        last_status = r.code,
        last_error = r.error,
        leased_by = NULL,
        lease_expires_at = NULL,
        completed_at = CASE WHEN r.status IN ('succeeded', 'dead') THEN %(now)s END
    FROM r
    WHERE d.id = r.id AND d.attempts = r.attempt AND d.leased_by = r.holder AND d.status = r.holding
    RETURNING d.id
)
INSERT INTO public.webhook_logs (webhook_config_id, delivery_id, event_type, payload, response_status,
    response_body, attempt_count, duration_ms, error_message, created_at, completed_at)
SELECT d.webhook_config_id, d.id, d.event_type, e.payload, r.code, r.body, r.attempt, r.duration_ms, r.error,
    %(now)s, %(now)s
FROM r
JOIN webhooks.deliveries d ON d.id = r.id
JOIN webhooks.events e ON e.id = d.event_id

-- name: configs_recovered
UPDATE public.webhook_configs SET failing_since = NULL
WHERE id = ANY(%(ids)s::bigint[]) AND failing_since IS NOT NULL

-- name: configs_failing
-- Start the failure clock, or disable the endpoints failing for longer than their disable_after_s.
UPDATE public.webhook_configs
SET failing_since = coalesce(failing_since, %(now)s),
    is_active = CASE WHEN failing_since IS NOT NULL
        AND failing_since < %(now)s - make_interval(secs => coalesce((retry_config ->> 'disable_after_s')::float8,
                                                                     %(disable_after_s)s))
        THEN false ELSE is_active END,
    disabled_reason = CASE WHEN failing_since IS NOT NULL
        AND failing_since < %(now)s - make_interval(secs => coalesce((retry_config ->> 'disable_after_s')::float8,
                                                                     %(disable_after_s)s))
        THEN 'every attempt failed since ' || failing_since::text ELSE disabled_reason END
WHERE id = ANY(%(ids)s::bigint[])
  AND is_active
  AND (failing_since IS NULL
       OR failing_since < %(now)s - make_interval(secs => coalesce((retry_config ->> 'disable_after_s')::float8,
                                                                   %(disable_after_s)s)))
RETURNING id, name, url, is_active, disabled_reason

-- name: disable_config
UPDATE public.webhook_configs SET is_active = false, disabled_reason = %(reason)s
WHERE id = %(id)s AND is_active
RETURNING id, name, url, is_active, disabled_reason

-- name: emit_event
SELECT public.emit_event(%(event_type)s, %(payload)s, %(dedupe_key)s) AS id

-- name: dead_letters
SELECT d.id, c.name AS config_name, d.event_type, d.attempts, d.last_error, d.last_status, d.created_at,
    d.completed_at, d.webhook_id
FROM webhooks.deliveries d
JOIN public.webhook_configs c ON c.id = d.webhook_config_id
WHERE d.dead
ORDER BY d.id DESC
LIMIT %(limit)s

-- name: dead_letter_count
SELECT count(*) AS n FROM webhooks.deliveries WHERE dead

-- name: replay_delivery
SELECT public.replay_webhook_delivery(%(id)s) AS replayed

-- name: replay_dead
SELECT public.replay_dead_webhook_deliveries(%(name)s) AS replayed

-- name: list_configs
SELECT c.id, c.name, c.url, c.events, c.headers, c.timeout_ms, c.retry_config, c.max_concurrency, c.is_active,
    c.disabled_reason, c.failing_since, c.secret IS NOT NULL AS has_secret, c.created_at, c.updated_at
FROM public.webhook_configs c
ORDER BY c.name

-- name: add_config
INSERT INTO public.webhook_configs (name, url, secret, events, headers, timeout_ms, is_active)
VALUES (%(name)s, %(url)s, %(secret)s, %(events)s, %(headers)s, %(timeout_ms)s, true)
RETURNING id

-- name: set_active
UPDATE public.webhook_configs
SET is_active = %(active)s,
    disabled_reason = CASE WHEN %(active)s THEN NULL ELSE %(reason)s END,
    failing_since = CASE WHEN %(active)s THEN NULL ELSE failing_since END
WHERE name = %(name)s
RETURNING id

-- name: point_config
UPDATE public.webhook_configs
SET url = %(url)s, is_active = true, disabled_reason = NULL, failing_since = NULL
WHERE name = %(name)s
RETURNING id

-- name: send_webhook
SELECT public.send_webhook_with_retry(%(name)s, %(event_type)s, %(payload)s) AS id

-- name: test_webhook
SELECT public.test_webhook(%(name)s, %(payload)s) AS id

-- name: webhook_stats
SELECT * FROM public.get_webhook_stats(%(name)s, %(days)s)

-- name: recent_logs
SELECT l.id, c.name AS config_name, l.delivery_id, l.event_type, l.attempt_count, l.response_status,
    l.duration_ms, l.error_message, left(l.response_body, 200) AS response_excerpt, l.created_at
FROM public.webhook_logs l
LEFT JOIN public.webhook_configs c ON c.id = l.webhook_config_id
WHERE %(name)s::text IS NULL OR c.name = %(name)s
ORDER BY l.id DESC
LIMIT %(limit)s

-- name: delivery_status
SELECT id, webhook_id, status, attempts, next_attempt_at, lease_expires_at, last_status, last_error, completed_at
FROM webhooks.deliveries WHERE id = %(id)s

-- name: cleanup_outbox
SELECT public.cleanup_webhook_outbox(make_interval(secs => %(older_than_s)s), %(limit)s) AS deleted
