-- Monitoring: public.system_metrics had no retention (about 10 rows every 5 minutes from the health job, and a few
-- rows a minute from each runtime replica). Our retention job keeps 30 days, hourly.
-- (supabase/schemas/07_automation.sql has the same definitions.)

-- Retention of the health figures: public.system_metrics rows (the health job's, every 5 minutes, and each runtime
-- replica's, every minute) older than p_keep. The dashboard and the success metrics read the last 24 hours.
CREATE FUNCTION maintenance.cleanup_system_metrics(p_keep interval DEFAULT '30 days') RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    removed bigint;
BEGIN
    DELETE FROM public.system_metrics WHERE created_at < now() - p_keep;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN jsonb_build_object('rows', removed);
END
$$;
REVOKE ALL ON FUNCTION maintenance.cleanup_system_metrics(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION maintenance.cleanup_system_metrics(interval) TO service_role, tripsage_automation;

SELECT cron.schedule('cleanup-system-metrics', '45 * * * *', 'SELECT maintenance.cleanup_system_metrics()');
