-- The net worker's presence predicate in one function (issue #20): net._worker_is_up() serves
-- net.check_worker_is_up() and net.wait_until_running(), which wrote the same pg_stat_activity test twice. Behaviour
-- unchanged. Granted like the emulation's other internal functions (EXECUTE to PUBLIC, anon and authenticated
-- refused by net._refuse_request_roles). Nothing changes where the real pg_net is installed.
DO $net_worker_presence$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace
                   WHERE nspname = 'net' AND obj_description(oid, 'pg_namespace') LIKE 'tripsage emulation of pg_net%') THEN
        RETURN;
    END IF;

    -- Is the worker (a runtime's LISTEN connection to this database) up? The one place that knows how the worker is
    -- seen: by its application_name (tripsage.net.WORKER_APPLICATION_NAME). application_name and datname are shown
    -- to every role in pg_stat_activity, so no SECURITY DEFINER is needed.
    CREATE FUNCTION net._worker_is_up() RETURNS boolean
        LANGUAGE sql STABLE
        SET search_path = pg_catalog
        AS $fn$
        SELECT net._refuse_request_roles('function _worker_is_up')
            AND EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE datname = current_database() AND application_name = 'pg_net worker (tripsage)')
    $fn$;

    CREATE OR REPLACE FUNCTION net.check_worker_is_up() RETURNS void
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function check_worker_is_up');
        IF NOT net._worker_is_up() THEN
            RAISE EXCEPTION USING
                MESSAGE = 'the pg_net background worker is not up',
                DETAIL = 'the pg_net background worker is down due to an internal error and cannot process requests',
                HINT = 'make sure that you didn''t modify any of pg_net internal tables';
        END IF;
    END
    $fn$;
    COMMENT ON FUNCTION net.check_worker_is_up() IS
        'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

    CREATE OR REPLACE FUNCTION net.wait_until_running() RETURNS void
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function wait_until_running');
        WHILE NOT net._worker_is_up() LOOP
            PERFORM pg_sleep(0.05);
        END LOOP;
    END
    $fn$;
    COMMENT ON FUNCTION net.wait_until_running() IS 'waits until the worker is running';

    GRANT EXECUTE ON FUNCTION net._worker_is_up() TO PUBLIC;
END
$net_worker_presence$;
