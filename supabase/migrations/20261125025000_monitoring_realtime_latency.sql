-- Monitoring: the seed's fourth success metric, realtime latency (< 500 ms), read from the per-minute p95 that each
-- runtime replica writes to system_metrics.

CREATE OR REPLACE FUNCTION monitoring.success_metrics(p_window interval DEFAULT '24 hours')
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
