-- pg_cron parity (issue #14), the scheduler half: the emulated API gives pg_cron 1.6's errors (texts and SQLSTATEs:
-- XX000 where pg_cron raises without a code, 3D000 for an unknown database, 42501 for a stranger's job) in pg_cron's
-- order of checks, and its privilege model: cron.job is readable by everyone (RLS: their own rows) and written only
-- through the functions, which are now SECURITY DEFINER and act for the calling role; only a superuser may
-- schedule for, or move a job to, another user.
-- Native pg_cron is left alone: that part applies only to TripSage's emulation.
-- Then least privilege for the maintenance jobs (issue #14, item 4): a NOLOGIN role tripsage_maintenance that the
-- runtime's tripsage_automation may become owns them on the emulation, and the batch-committing cache cleanup no
-- longer needs table privileges of its caller.
-- (supabase/schemas/07_automation.sql has the same definitions.)

DO $parity$
BEGIN
    IF obj_description((SELECT oid FROM pg_namespace WHERE nspname = 'cron'), 'pg_namespace')
       IS DISTINCT FROM 'tripsage emulation of pg_cron 1.6' THEN
        RETURN;
    END IF;

    CREATE OR REPLACE FUNCTION cron._check_schedule(p_schedule text) RETURNS void
        LANGUAGE plpgsql IMMUTABLE
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        IF p_schedule IS NULL THEN
            RAISE EXCEPTION 'schedule can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        IF cron._parse_schedule(p_schedule) IS NULL THEN
            RAISE EXCEPTION 'invalid schedule: %', p_schedule
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use cron format (e.g. 5 4 * * *), or interval format ''[1-59] seconds''';
        END IF;
    END
    $fn$;

    DROP FUNCTION cron._upsert_job(text, text, text, text, text, boolean);

    -- pg_cron's policy has no WITH CHECK: nobody but the owner of cron.job writes it any more.
    DROP POLICY cron_job_policy ON cron.job;
    CREATE POLICY cron_job_policy ON cron.job USING (username OPERATOR(pg_catalog.=) current_user);

    REVOKE ALL ON cron.job, cron.job_run_details, cron.job_tick, cron.job_option
        FROM PUBLIC, service_role, tripsage_automation;
    REVOKE ALL ON SEQUENCE cron.jobid_seq, cron.runid_seq FROM PUBLIC, service_role, tripsage_automation;

    -- The role a call acts for, as pg_cron's GetUserId() outside any SECURITY DEFINER function: the role chosen
    -- with SET ROLE, else the session user. The API functions below are SECURITY DEFINER (only they write
    -- cron.job, as pg_cron's C functions switch to the extension owner), so current_user there is the owner; the
    -- role setting and the session user are not changed by entering them, and PostgreSQL only lets a session SET
    -- ROLE to a role it is a member of.
    CREATE FUNCTION cron._caller() RETURNS text
        LANGUAGE sql STABLE
        SET search_path = pg_catalog
        AS $fn$
        SELECT CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END
    $fn$;

    -- pg_cron's GetRoleOidIfCanLogin: a job may be given only to a role that exists and can log in.
    CREATE FUNCTION cron._check_role(p_username text) RETURNS void
        LANGUAGE plpgsql STABLE
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p_username) THEN
            RAISE EXCEPTION 'role "%" does not exist', p_username USING ERRCODE = 'internal_error';
        END IF;
        IF NOT (SELECT r.rolcanlogin FROM pg_roles r WHERE r.rolname = p_username) THEN
            RAISE EXCEPTION 'role "%" can not log in', p_username
                USING ERRCODE = 'internal_error',
                      DETAIL = 'Jobs may only be run by roles that have the LOGIN attribute.';
        END IF;
    END
    $fn$;

    -- What a job will run as, and where: cron.enable_superuser_jobs (where the server has it and the owner may read
    -- it), then the database (when given: it must exist, and the role must have CONNECT on it), in pg_cron's order.
    CREATE FUNCTION cron._check_target(p_run_as text, p_database text) RETURNS void
        LANGUAGE plpgsql STABLE
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        superuser_jobs text;
    BEGIN
        BEGIN
            superuser_jobs := current_setting('cron.enable_superuser_jobs', true);
        EXCEPTION WHEN insufficient_privilege THEN  -- a preloaded pg_cron's setting is for superusers only
            superuser_jobs := NULL;
        END;
        IF lower(coalesce(superuser_jobs, 'on')) IN ('off', 'false', 'no', '0')
           AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p_run_as AND r.rolsuper) THEN
            RAISE EXCEPTION 'cannot schedule jobs as superuser'
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Scheduling jobs as superuser is disallowed when cron.enable_superuser_jobs is set to off.';
        END IF;
        IF p_database IS NULL THEN
            RETURN;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = p_database) THEN
            RAISE EXCEPTION 'database "%" does not exist', p_database USING ERRCODE = 'invalid_catalog_name';
        END IF;
        IF NOT has_database_privilege(p_run_as, p_database, 'CONNECT') THEN
            RAISE EXCEPTION 'User % does not have CONNECT privilege on %', p_run_as, p_database
                USING ERRCODE = 'internal_error';
        END IF;
    END
    $fn$;

    -- pg_cron's ScheduleCronJob, after the NULL checks of its callers: the schedule, the role (a superuser may
    -- name another), superuser jobs, the database, then the insert (an upsert by name and user for named jobs).
    CREATE FUNCTION cron._add_job(p_caller text, p_job_name text, p_schedule text, p_command text, p_database text,
                                  p_username text, p_active boolean) RETURNS bigint
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        run_as text := p_caller;
        run_in text := coalesce(p_database, current_database());
        new_id bigint;
    BEGIN
        PERFORM cron._check_schedule(p_schedule);
        IF p_username IS NOT NULL THEN
            IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p_caller AND r.rolsuper) THEN
                RAISE EXCEPTION 'must be superuser to create a job for another role' USING ERRCODE = 'internal_error';
            END IF;
            PERFORM cron._check_role(p_username);
            run_as := p_username;
        END IF;
        PERFORM cron._check_target(run_as, run_in);
        IF p_job_name IS NULL THEN
            INSERT INTO cron.job (schedule, command, database, username, active)
            VALUES (p_schedule, p_command, run_in, run_as, p_active)
            RETURNING jobid INTO new_id;
        ELSE
            INSERT INTO cron.job (schedule, command, database, username, active, jobname)
            VALUES (p_schedule, p_command, run_in, run_as, p_active, p_job_name)
            ON CONFLICT ON CONSTRAINT jobname_username_uniq DO UPDATE
                SET schedule = EXCLUDED.schedule, command = EXCLUDED.command, database = EXCLUDED.database
            RETURNING jobid INTO new_id;
        END IF;
        RETURN new_id;
    END
    $fn$;

    CREATE OR REPLACE FUNCTION cron.schedule(schedule text, command text) RETURNS bigint
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        RETURN cron._add_job(cron._caller(), NULL, schedule, command, NULL, NULL, true);
    END
    $fn$;
    COMMENT ON FUNCTION cron.schedule(text, text) IS 'schedule a pg_cron job';

    CREATE OR REPLACE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        IF job_name IS NULL THEN
            RAISE EXCEPTION 'job_name can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        IF schedule IS NULL THEN
            RAISE EXCEPTION 'schedule can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        IF command IS NULL THEN
            RAISE EXCEPTION 'command can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        RETURN cron._add_job(cron._caller(), job_name, schedule, command, NULL, NULL, true);
    END
    $fn$;
    COMMENT ON FUNCTION cron.schedule(text, text, text) IS 'schedule a pg_cron job';

    CREATE OR REPLACE FUNCTION cron.schedule_in_database(job_name text, schedule text, command text, database text,
                                              username text DEFAULT NULL, active boolean DEFAULT true)
        RETURNS bigint
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        IF job_name IS NULL THEN
            RAISE EXCEPTION 'job_name can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        IF schedule IS NULL THEN
            RAISE EXCEPTION 'schedule can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        IF command IS NULL THEN
            RAISE EXCEPTION 'command can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        RETURN cron._add_job(cron._caller(), job_name, schedule, command, database, username, coalesce(active, true));
    END
    $fn$;
    COMMENT ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean)
        IS 'schedule a pg_cron job';

    -- pg_cron finds the job whatever its owner; another user's job needs DELETE on cron.job (superusers have it).
    CREATE OR REPLACE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        caller text := cron._caller();
        owner text;
    BEGIN
        SELECT j.username INTO owner FROM cron.job j WHERE j.jobid = job_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'could not find valid entry for job %', job_id USING ERRCODE = 'internal_error';
        END IF;
        IF owner IS DISTINCT FROM caller AND NOT has_table_privilege(caller, 'cron.job', 'DELETE') THEN
            RAISE EXCEPTION 'permission denied for table job' USING ERRCODE = 'insufficient_privilege';
        END IF;
        DELETE FROM cron.job j WHERE j.jobid = job_id;
        RETURN true;
    END
    $fn$;
    COMMENT ON FUNCTION cron.unschedule(bigint) IS 'unschedule a pg_cron job';

    CREATE OR REPLACE FUNCTION cron.unschedule(job_name text) RETURNS boolean
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        DELETE FROM cron.job j WHERE j.jobname = job_name AND j.username = cron._caller();
        IF NOT FOUND THEN
            RAISE EXCEPTION 'could not find valid entry for job ''%''', job_name USING ERRCODE = 'internal_error';
        END IF;
        RETURN true;
    END
    $fn$;
    COMMENT ON FUNCTION cron.unschedule(text) IS 'unschedule a pg_cron job';

    -- pg_cron's AlterJob, in its order: a new username (superusers only; it must exist and log in), superuser
    -- jobs, a new database (exists, CONNECT), a new schedule, then the update of a job the caller owns (any job,
    -- for a superuser).
    CREATE OR REPLACE FUNCTION cron.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
                                   database text DEFAULT NULL, username text DEFAULT NULL,
                                   active boolean DEFAULT NULL) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        caller text := cron._caller();
        is_superuser boolean := EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = cron._caller() AND r.rolsuper);
    BEGIN
        IF job_id IS NULL THEN
            RAISE EXCEPTION 'job_id can not be NULL' USING ERRCODE = 'internal_error';
        END IF;
        IF username IS NOT NULL THEN
            IF NOT is_superuser THEN
                RAISE EXCEPTION 'must be superuser to alter username' USING ERRCODE = 'internal_error';
            END IF;
            PERFORM cron._check_role(username);
        END IF;
        PERFORM cron._check_target(coalesce(username, caller), database);
        IF schedule IS NOT NULL THEN
            PERFORM cron._check_schedule(schedule);
        END IF;
        IF schedule IS NULL AND command IS NULL AND database IS NULL AND username IS NULL AND active IS NULL THEN
            RAISE EXCEPTION 'no updates specified'
                USING ERRCODE = 'internal_error',
                      HINT = 'You must specify at least one job attribute to change when calling alter_job';
        END IF;
        UPDATE cron.job j
        SET schedule = coalesce(alter_job.schedule, j.schedule),
            command = coalesce(alter_job.command, j.command),
            database = coalesce(alter_job.database, j.database),
            username = coalesce(alter_job.username, j.username),
            active = coalesce(alter_job.active, j.active)
        WHERE j.jobid = job_id AND (is_superuser OR j.username = caller);
        IF NOT FOUND THEN
            RAISE EXCEPTION 'Job % does not exist or you don''t own it', job_id USING ERRCODE = 'internal_error';
        END IF;
    END
    $fn$;
    COMMENT ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean)
        IS 'Alter the job identified by job_id. Any option left as NULL will not be modified.';

    -- As in pg_cron: an admin decides who may use these two.
    REVOKE ALL ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) FROM PUBLIC;
    REVOKE ALL ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) FROM PUBLIC;
    -- The helpers are not an API: only the functions above (as the owner) call them.
    REVOKE ALL ON FUNCTION cron._caller(), cron._check_role(text), cron._check_target(text, text),
        cron._add_job(text, text, text, text, text, text, boolean) FROM PUBLIC;

    -- As in pg_cron: everyone may read cron.job and read and delete cron.job_run_details (RLS: their own rows);
    -- cron.job changes only through the functions above. The runtime records runs and ticks (as
    -- tripsage_automation, or as service_role, which bypasses RLS), and reads the per-job options.
    GRANT USAGE ON SCHEMA cron TO service_role, tripsage_automation;
    GRANT SELECT ON cron.job TO PUBLIC;
    GRANT SELECT, DELETE ON cron.job_run_details TO PUBLIC;
    GRANT SELECT ON SEQUENCE cron.jobid_seq, cron.runid_seq TO PUBLIC;
    GRANT SELECT, INSERT, UPDATE, DELETE ON cron.job_run_details, cron.job_tick, cron.job_option
        TO service_role, tripsage_automation;
    GRANT USAGE ON SEQUENCE cron.runid_seq TO service_role, tripsage_automation;
    GRANT EXECUTE ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean),
        cron.schedule_in_database(text, text, text, text, text, boolean) TO service_role, tripsage_automation;
END
$parity$;

-- The role the maintenance jobs run as on the emulation (see "Least privilege" below).
DO $maintenance_role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tripsage_maintenance') THEN
        CREATE ROLE tripsage_maintenance NOLOGIN NOINHERIT;
    END IF;
END
$maintenance_role$;

-- cleanup-expired-search-cache: a procedure, so each batch commits on its own and no writer waits on more than
-- one batch's row locks (CALL it outside an explicit transaction, as pg_cron and the runtime do). Rows a writer
-- holds are skipped, not waited for; the next run takes them.
-- PostgreSQL forbids COMMIT in a SECURITY DEFINER procedure (or one with SET clauses), so the procedure runs as its
-- caller and each batch is one call of the SECURITY DEFINER function below: the caller needs EXECUTE on both,
-- not privileges on the tables (so the job works as tripsage_maintenance).
CREATE FUNCTION maintenance.delete_expired_search_cache_batch(p_table text, p_batch_size integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    deleted integer;
BEGIN
    IF p_table = 'search_destinations' THEN
        DELETE FROM public.search_destinations WHERE id IN (
            SELECT id FROM public.search_destinations WHERE expires_at < now()
            LIMIT p_batch_size FOR UPDATE SKIP LOCKED);
    ELSIF p_table = 'search_flights' THEN
        DELETE FROM public.search_flights WHERE id IN (
            SELECT id FROM public.search_flights WHERE expires_at < now()
            LIMIT p_batch_size FOR UPDATE SKIP LOCKED);
    ELSIF p_table = 'search_hotels' THEN
        DELETE FROM public.search_hotels WHERE id IN (
            SELECT id FROM public.search_hotels WHERE expires_at < now()
            LIMIT p_batch_size FOR UPDATE SKIP LOCKED);
    ELSIF p_table = 'search_activities' THEN
        DELETE FROM public.search_activities WHERE id IN (
            SELECT id FROM public.search_activities WHERE expires_at < now()
            LIMIT p_batch_size FOR UPDATE SKIP LOCKED);
    ELSE
        RAISE EXCEPTION 'not a search cache table: %', p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

CREATE OR REPLACE PROCEDURE maintenance.cleanup_expired_search_cache(p_batch_size integer DEFAULT 1000,
                                                          INOUT deleted jsonb DEFAULT NULL)
    LANGUAGE plpgsql
    AS $$
DECLARE
    cache_table text;
    batch integer;
    total bigint;
    counts jsonb := '{}';
BEGIN
    FOREACH cache_table IN ARRAY ARRAY['search_destinations', 'search_flights', 'search_hotels', 'search_activities']
    LOOP
        total := 0;
        LOOP
            batch := maintenance.delete_expired_search_cache_batch(cache_table, p_batch_size);
            total := total + batch;
            COMMIT;
            EXIT WHEN batch < p_batch_size;
        END LOOP;
        counts := counts || jsonb_build_object(cache_table, total);
    END LOOP;
    deleted := counts;
END
$$;

-- Least privilege for the maintenance jobs: on the emulation they belong to tripsage_maintenance, a NOLOGIN role
-- that holds only what the jobs need (EXECUTE on the maintenance functions, and from PostgreSQL 17 MAINTAIN on the
-- tables vacuum-maintenance names) and that the runtime's tripsage_automation may become (SET ROLE), so the jobs run
-- whether the runtime connects as a superuser or as tripsage_automation. Before PostgreSQL 17 only a table's owner
-- may VACUUM it, so there vacuum-maintenance stays with the deploying user (docs/scheduler.md).
-- The deploying user becomes a member too: a runtime connected as a database owner that is not a superuser (RDS,
-- Cloud SQL) needs it to SET ROLE, and the role holds nothing that user does not own.
GRANT tripsage_maintenance TO tripsage_automation;
GRANT tripsage_maintenance TO CURRENT_USER;
GRANT USAGE ON SCHEMA maintenance TO tripsage_maintenance;
REVOKE ALL ON FUNCTION maintenance.delete_expired_search_cache_batch(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION maintenance.delete_expired_search_cache_batch(text, integer)
    TO service_role, tripsage_automation, tripsage_maintenance;
GRANT EXECUTE ON PROCEDURE maintenance.cleanup_expired_search_cache(integer, jsonb) TO tripsage_maintenance;
GRANT EXECUTE ON FUNCTION maintenance.archive_old_session_memories(interval, integer),
    maintenance.update_table_statistics(), maintenance.monitor_expiring_api_keys(interval),
    maintenance.archive_completed_trips(interval), maintenance.generate_memory_embeddings(integer),
    maintenance.monitor_database_health(), maintenance.cleanup_job_run_details(interval),
    maintenance.cleanup_system_metrics(interval)
    TO tripsage_maintenance;
DO $maintain$
BEGIN
    IF current_setting('server_version_num')::integer >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON TABLE public.trips, public.trip_collaborators, public.itinerary_items, '
                'public.flights, public.accommodations, public.bookings, public.chat_sessions, public.chat_messages, '
                'public.memories, public.session_memories, public.search_destinations, public.search_flights, '
                'public.search_hotels, public.search_activities, public.api_keys, public.notifications '
                'TO tripsage_maintenance';
    END IF;
END
$maintain$;

-- On the emulation, the maintenance jobs of the deploying user go to tripsage_maintenance (vacuum-maintenance only
-- from PostgreSQL 17, see above). Native pg_cron keeps them as they are.
DO $maintenance_jobs$
BEGIN
    IF obj_description((SELECT oid FROM pg_namespace WHERE nspname = 'cron'), 'pg_namespace')
       IS DISTINCT FROM 'tripsage emulation of pg_cron 1.6' THEN
        RETURN;
    END IF;
    UPDATE cron.job SET username = 'tripsage_maintenance'
    WHERE username = current_user
      AND (jobname IN ('cleanup-expired-search-cache', 'archive-old-session-memories', 'update-table-statistics',
                       'monitor-expiring-api-keys', 'archive-completed-trips', 'generate-memory-embeddings',
                       'monitor-database-health', 'cleanup-job-run-details', 'cleanup-system-metrics')
           OR (jobname = 'vacuum-maintenance' AND current_setting('server_version_num')::integer >= 170000));
END
$maintenance_jobs$;
