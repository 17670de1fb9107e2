-- name: success_metrics
SELECT metric, value, goal, unit, ok FROM monitoring.success_metrics(%(window)s::interval);

-- name: slow_queries
-- Top statements by total time, then by mean time (monitoring.slow_queries wraps pg_stat_statements).
(SELECT 'total' AS ranking, query, calls, total_ms, mean_ms FROM monitoring.slow_queries
 ORDER BY total_ms DESC LIMIT %(limit)s)
UNION ALL
(SELECT 'mean' AS ranking, query, calls, total_ms, mean_ms FROM monitoring.slow_queries
 ORDER BY mean_ms DESC LIMIT %(limit)s);

-- name: slow_queries_available
SELECT to_regclass('monitoring.slow_queries') IS NOT NULL AS available;

-- name: cron_available
SELECT to_regclass('cron.job') IS NOT NULL AND to_regclass('cron.job_run_details') IS NOT NULL AS available;

-- name: jobs
SELECT j.jobid, j.jobname, j.schedule, j.active, last.status AS last_status, last.start_time AS last_start,
       last.end_time AS last_end, last.return_message AS last_message,
       (SELECT count(*) FROM cron.job_run_details d
        WHERE d.jobid = j.jobid AND d.status = 'failed' AND d.start_time > now() - interval '24 hours') AS failures_24h
FROM cron.job j
LEFT JOIN LATERAL (
    SELECT d.status, d.start_time, d.end_time, d.return_message FROM cron.job_run_details d
    WHERE d.jobid = j.jobid ORDER BY d.start_time DESC NULLS LAST LIMIT 1
) last ON true
ORDER BY j.jobname NULLS LAST, j.jobid;

-- name: job_history
SELECT j.jobname, d.runid, d.status, d.start_time, d.end_time, d.return_message
FROM cron.job_run_details d LEFT JOIN cron.job j ON j.jobid = d.jobid
ORDER BY d.start_time DESC NULLS LAST LIMIT %(limit)s;

-- name: job_runs_by_status
SELECT status, count(*) AS runs FROM cron.job_run_details
WHERE start_time > now() - interval '24 hours' GROUP BY status;

-- name: scheduler_lag
-- How late recent runs of minute-based jobs started after their minute began (seconds; pg_cron or emulated).
SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM d.start_time - date_trunc('minute', d.start_time))), 0) AS lag_seconds
FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
WHERE d.start_time > now() - interval '1 hour' AND position('second' IN j.schedule) = 0;

-- name: webhook_hourly
-- Per hour over the last 24 hours: attempts, successes, p50 and p95 latency.
SELECT date_trunc('hour', l.created_at) AS hour, count(*) AS attempts,
       count(*) FILTER (WHERE l.response_status BETWEEN 200 AND 299) AS succeeded,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l.duration_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms) AS p95_ms
FROM public.webhook_logs l
WHERE l.created_at > now() - interval '24 hours'
GROUP BY 1 ORDER BY 1;

-- name: webhook_totals
SELECT count(*) AS attempts,
       count(*) FILTER (WHERE response_status BETWEEN 200 AND 299) AS succeeded,
       count(*) FILTER (WHERE response_status IS NULL OR response_status NOT BETWEEN 200 AND 299) AS failed
FROM public.webhook_logs WHERE created_at > now() - interval '24 hours';

-- name: health_series
-- The database health metrics over the last 24 hours, for charts.
SELECT metric_name, created_at, value FROM public.system_metrics
WHERE metric_type = 'database' AND created_at > now() - interval '24 hours'
ORDER BY metric_name, created_at;

-- name: outbox_depth_available
-- Whether the webhooks capability (its outbox) is installed.
SELECT to_regprocedure('public.webhook_outbox_depth()') IS NOT NULL AS available;

-- name: outbox_depth
SELECT public.webhook_outbox_depth() AS depth;

-- name: dead_letters
-- Dead webhook deliveries, newest first (the webhooks schema's tables: monitoring reads the database, not the
-- webhooks capability's code).
SELECT d.id, c.name AS config_name, d.event_type, d.attempts, d.last_error, d.created_at
FROM webhooks.deliveries d
JOIN public.webhook_configs c ON c.id = d.webhook_config_id
WHERE d.dead
ORDER BY d.id DESC
LIMIT %(limit)s;

-- name: dead_letter_count
SELECT count(*) AS n FROM webhooks.deliveries WHERE dead;

-- name: replay_delivery
-- Queue one dead (or finished) delivery again, same webhook-id: the database's own replay function.
SELECT public.replay_webhook_delivery(%(id)s) AS replayed;

-- name: search_cache_today
SELECT cache, hits, misses FROM monitoring.search_cache_stats WHERE day = current_date;

-- name: insert_runtime_figures
-- Per-process figures of one replica for the last interval (realtime latency, messages, function calls), so that
-- the dashboard, `tripsage status` and the success metrics read one truth across replicas.
INSERT INTO public.system_metrics (metric_type, metric_name, value, metadata)
SELECT 'runtime', f.name, f.value, jsonb_build_object('replica', %(replica)s::text, 'interval_s', %(interval_s)s::float8)
FROM unnest(%(names)s::text[], %(values)s::numeric[]) AS f (name, value);

-- name: runtime_series
-- What the replicas wrote of themselves over the last 24 hours (realtime and function latency, messages, calls).
SELECT metric_name, created_at, value, metadata->>'replica' AS replica FROM public.system_metrics
WHERE metric_type = 'runtime' AND created_at > now() - interval '24 hours'
ORDER BY metric_name, created_at;

-- name: realtime_connections_all
-- Open realtime connections across replicas: each replica's latest figure from the last five minutes.
SELECT coalesce(sum(value), 0) AS connections, count(*) AS replicas FROM (
    SELECT DISTINCT ON (metadata->>'replica') value FROM public.system_metrics
    WHERE metric_type = 'runtime' AND metric_name = 'realtime_connections' AND created_at > now() - interval '5 minutes'
    ORDER BY metadata->>'replica', created_at DESC
) latest;

-- name: create_dashboard_session
-- A dashboard sign-in: the SHA-256 of its cookie token, its CSRF token and its expiry; expired sessions go meanwhile.
WITH expired AS (
    DELETE FROM monitoring.dashboard_sessions WHERE expires_at < now() - interval '1 day'
)
INSERT INTO monitoring.dashboard_sessions (token_hash, csrf_token, expires_at)
VALUES (%(token_hash)s, %(csrf_token)s, now() + make_interval(secs => %(lifetime_s)s));

-- name: dashboard_session
-- A live session (neither expired nor revoked): its CSRF token.
SELECT csrf_token FROM monitoring.dashboard_sessions
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL AND expires_at > now();

-- name: revoke_dashboard_session
-- Sign-out: the session is refused from now on, on every replica.
UPDATE monitoring.dashboard_sessions SET revoked_at = now()
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL;
