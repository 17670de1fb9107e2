-- 11_monitoring: the search-cache hit rate, slow queries from pg_stat_statements, and the seed's success metrics.

CREATE SCHEMA IF NOT EXISTS monitoring;
GRANT USAGE ON SCHEMA monitoring TO service_role, tripsage_automation;

-- Hits and misses of search_cache_lookup, one row per day and cache.
CREATE TABLE monitoring.search_cache_stats (
    day date NOT NULL DEFAULT current_date,
    cache text NOT NULL CHECK (cache IN ('destinations', 'flights', 'hotels', 'activities')),
    hits bigint NOT NULL DEFAULT 0,
    misses bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, cache)
);
ALTER TABLE monitoring.search_cache_stats ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON monitoring.search_cache_stats TO service_role, tripsage_automation;

CREATE FUNCTION monitoring.count_search_cache_lookup(p_cache text, p_hit boolean) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, monitoring
    AS $$
    INSERT INTO monitoring.search_cache_stats AS s (day, cache, hits, misses)
    VALUES (current_date, p_cache, p_hit::int, (NOT p_hit)::int)
    ON CONFLICT (day, cache) DO UPDATE SET hits = s.hits + excluded.hits, misses = s.misses + excluded.misses
$$;
REVOKE ALL ON FUNCTION monitoring.count_search_cache_lookup(text, boolean) FROM PUBLIC;
-- search_cache_lookup runs with the caller's rights, so its callers need this (it only adds to counters).
GRANT USAGE ON SCHEMA monitoring TO authenticated;
GRANT EXECUTE ON FUNCTION monitoring.count_search_cache_lookup(text, boolean) TO authenticated, service_role;

-- The lookup TripSage's API calls: the freshest unexpired results for this user and query, or NULL; counted as a
-- hit or a miss. Runs with the caller's rights, so RLS keeps each user to their own cache rows.
CREATE FUNCTION public.search_cache_lookup(p_cache text, p_query_hash text, p_user_id uuid DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    who uuid := coalesce(p_user_id, auth.uid());
    found jsonb;
BEGIN
    CASE p_cache
        WHEN 'destinations' THEN
            SELECT c.results INTO found FROM public.search_destinations c
            WHERE c.user_id = who AND c.query_hash = p_query_hash AND c.expires_at > now()
            ORDER BY c.expires_at DESC LIMIT 1;
        WHEN 'flights' THEN
            SELECT c.results INTO found FROM public.search_flights c
            WHERE c.user_id = who AND c.query_hash = p_query_hash AND c.expires_at > now()
            ORDER BY c.expires_at DESC LIMIT 1;
        WHEN 'hotels' THEN
            SELECT c.results INTO found FROM public.search_hotels c
            WHERE c.user_id = who AND c.query_hash = p_query_hash AND c.expires_at > now()
            ORDER BY c.expires_at DESC LIMIT 1;
        WHEN 'activities' THEN
            SELECT c.results INTO found FROM public.search_activities c
            WHERE c.user_id = who AND c.query_hash = p_query_hash AND c.expires_at > now()
            ORDER BY c.expires_at DESC LIMIT 1;
        ELSE
            RAISE EXCEPTION 'unknown search cache %: expected destinations, flights, hotels or activities', p_cache
                USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    PERFORM monitoring.count_search_cache_lookup(p_cache, found IS NOT NULL);
    RETURN found;
END
$$;
REVOKE ALL ON FUNCTION public.search_cache_lookup(text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.search_cache_lookup(text, text, uuid) TO authenticated, service_role;

-- Top statements of this database by total and mean time (service role only: query texts are sensitive).
DO $slow$
DECLARE
    home text := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                  WHERE e.extname = 'pg_stat_statements');
BEGIN
    IF home IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format($view$
        CREATE VIEW monitoring.slow_queries AS
        SELECT s.queryid, left(s.query, 1000) AS query, s.calls, round(s.total_exec_time::numeric, 3) AS total_ms,
               round(s.mean_exec_time::numeric, 3) AS mean_ms, round(s.max_exec_time::numeric, 3) AS max_ms, s.rows,
               s.shared_blks_hit, s.shared_blks_read
        FROM %I.pg_stat_statements s
        WHERE s.dbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
    $view$, home);
    GRANT SELECT ON monitoring.slow_queries TO service_role, tripsage_automation;
END
$slow$;

-- The seed's success metrics over a window: (metric, value, goal, unit, ok). value is NULL when there is no data.
CREATE FUNCTION monitoring.success_metrics(p_window interval DEFAULT '24 hours')
    RETURNS TABLE (metric text, value numeric, goal numeric, unit text, ok boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, monitoring
    AS $$
BEGIN
    metric := 'job_success_rate'; goal := 99.9; unit := '%';
    value := NULL;
    IF to_regclass('cron.job_run_details') IS NOT NULL THEN
        EXECUTE 'SELECT round(100.0 * count(*) FILTER (WHERE status = ''succeeded'')
                        / nullif(count(*) FILTER (WHERE status IN (''succeeded'', ''failed'')), 0), 3)
                 FROM cron.job_run_details WHERE start_time > now() - $1'
            INTO value USING p_window;
    END IF;
    ok := value >= goal;
    RETURN NEXT;

    metric := 'webhook_latency_p95'; goal := 100; unit := 'ms';
    SELECT round(percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms)::numeric, 1) INTO value
    FROM public.webhook_logs l
    WHERE l.created_at > now() - p_window AND l.duration_ms IS NOT NULL
      AND l.response_status BETWEEN 200 AND 299;
    ok := value < goal;
    RETURN NEXT;

    metric := 'cache_hit_rate'; goal := 90; unit := '%';
    SELECT round(100.0 * sum(s.hits) / nullif(sum(s.hits) + sum(s.misses), 0), 3) INTO value
    FROM monitoring.search_cache_stats s
    WHERE s.day >= (now() - p_window)::date;
    ok := value > goal;
    RETURN NEXT;

    -- Realtime latency is measured in the runtime (commit to websocket send); every replica writes the p95 of each
    -- minute to system_metrics. The worst minute of the window is the figure.
    metric := 'realtime_latency_p95'; goal := 500; unit := 'ms';
    SELECT round(max(m.value), 1) INTO value
    FROM public.system_metrics m
    WHERE m.metric_type = 'runtime' AND m.metric_name = 'realtime_latency_p95_ms'
      AND m.created_at > now() - p_window;
    ok := value < goal;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION monitoring.success_metrics(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitoring.success_metrics(interval) TO service_role, tripsage_automation;
