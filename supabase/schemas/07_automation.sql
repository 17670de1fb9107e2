-- 07_automation: scheduled jobs. pg_cron where the server has it in this database; elsewhere the same SQL API
-- (pg_cron 1.6: cron.schedule, cron.unschedule, cron.alter_job, cron.schedule_in_database, cron.job,
-- cron.job_run_details) emulated here and executed by the TripSage runtime (src/tripsage/scheduler). Then the eight
-- maintenance jobs of the seed, as functions in schema maintenance that return what they did, scheduled with
-- cron.schedule on either.
-- (The same SQL is the migration supabase/migrations/20261125020000_scheduler.sql, then
-- 20261127171000_cron_parity.sql: pg_cron's errors and privilege model, and the maintenance jobs' own role.)

DO $cron$
BEGIN
    -- Native pg_cron (created by 00_extensions in cron.database_name), or an earlier emulation: leave it alone.
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'cron') THEN
        RETURN;
    END IF;
    CREATE SCHEMA cron;
    COMMENT ON SCHEMA cron IS 'tripsage emulation of pg_cron 1.6';

    -- The schedule parser: a port of pg_cron's parse_cron_entry (Vixie cron) and TryParseInterval, step by step,
    -- so the same texts are accepted and rejected (src/tripsage/scheduler/cron.py is the same algorithm; a property
    -- test holds them equal). Returns the expanded fields as jsonb, or NULL for an invalid schedule.
    CREATE FUNCTION cron._schedule_char(p_text text, p_pos integer) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT
        SET search_path = pg_catalog
        AS $fn$
        -- pg_cron's reader: the characters, then one NUL (here '<NUL>'), then EOF ('<EOF>') forever.
        SELECT CASE WHEN p_pos <= length(p_text) THEN substr(p_text, p_pos, 1)
                    WHEN p_pos = length(p_text) + 1 THEN '<NUL>'
                    ELSE '<EOF>' END
    $fn$;

    CREATE FUNCTION cron._schedule_token(p_text text, p_pos integer) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT
        SET search_path = pg_catalog
        AS $fn$
        SELECT coalesce(substring(substr(p_text, p_pos) FROM '^[0-9A-Za-z]*'), '')
    $fn$;

    -- get_number: a name (three letters, any case) or digits; NULL otherwise.
    CREATE FUNCTION cron._schedule_value(p_token text, p_low integer, p_names text[]) RETURNS integer
        LANGUAGE sql IMMUTABLE
        SET search_path = pg_catalog
        AS $fn$
        SELECT CASE
            WHEN p_token = '' OR length(p_token) >= 1000 THEN NULL
            WHEN array_position(p_names, lower(p_token)) IS NOT NULL
                THEN array_position(p_names, lower(p_token)) - 1 + p_low
            WHEN p_token ~ '^[0-9]+$' THEN least(p_token::numeric, 1000000)::integer
            ELSE NULL
        END
    $fn$;

    -- bit_nset on positions relative to p_low, byte by byte as Vixie's macro does (a reversed range is not empty).
    CREATE FUNCTION cron._schedule_nset(p_start integer, p_stop integer, p_low integer, p_high integer)
        RETURNS integer[]
        LANGUAGE sql IMMUTABLE STRICT
        SET search_path = pg_catalog
        AS $fn$
        SELECT coalesce(array_agg(DISTINCT p + p_low), '{}') FROM (
            SELECT generate_series(p_start, p_stop) AS p WHERE p_start >> 3 = p_stop >> 3
            UNION ALL SELECT generate_series(p_start, (p_start >> 3) * 8 + 7) WHERE p_start >> 3 <> p_stop >> 3
            UNION ALL SELECT generate_series((p_stop >> 3) * 8, p_stop) WHERE p_start >> 3 <> p_stop >> 3
            UNION ALL SELECT generate_series((p_start >> 3) * 8 + 8, (p_stop >> 3) * 8 - 1)
                WHERE p_start >> 3 <> p_stop >> 3
        ) bits
        WHERE p + p_low BETWEEN p_low AND p_high
    $fn$;

    CREATE FUNCTION cron._parse_schedule(p_schedule text) RETURNS jsonb
        LANGUAGE plpgsql IMMUTABLE STRICT
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        s text := p_schedule;
        pos integer := 1;
        ch text;
        word text;
        token text;
        field integer;
        lows integer[] := ARRAY[0, 0, 1, 1, 0];
        highs integer[] := ARRAY[59, 23, 31, 12, 7];
        keys text[] := ARRAY['minute', 'hour', 'dom', 'month', 'dow'];
        month_names text[] := ARRAY['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov',
                                    'dec'];
        dow_names text[] := ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
        names text[];
        low integer;
        high integer;
        bits integer[];
        first_n integer;
        last_n integer;
        step integer;
        single boolean;
        stars boolean[] := ARRAY[false, false, false, false, false];
        dom_last boolean := false;
        result jsonb := '{}';
        parts text[];
        all_days jsonb := to_jsonb(ARRAY(SELECT generate_series(1, 31)));
        all_months jsonb := to_jsonb(ARRAY(SELECT generate_series(1, 12)));
        all_weekdays jsonb := to_jsonb(ARRAY(SELECT generate_series(0, 7)));
    BEGIN
        <<cron_entry>>
        BEGIN
            -- A text of 1000 bytes or more is not a cron entry (the interval form is still tried).
            EXIT cron_entry WHEN octet_length(s) >= 1000;
            -- skip_comments
            ch := cron._schedule_char(s, pos); pos := pos + 1;
            WHILE ch <> '<EOF>' LOOP
                WHILE ch IN (' ', E'\t') LOOP
                    ch := cron._schedule_char(s, pos); pos := pos + 1;
                END LOOP;
                EXIT WHEN ch = '<EOF>' OR ch NOT IN (E'\n', '#');
                WHILE ch NOT IN (E'\n', '<EOF>') LOOP
                    ch := cron._schedule_char(s, pos); pos := pos + 1;
                END LOOP;
                ch := cron._schedule_char(s, pos); pos := pos + 1;
            END LOOP;
            IF ch <> '<EOF>' THEN
                pos := pos - 1;  -- unget
            END IF;
            ch := cron._schedule_char(s, pos); pos := pos + 1;
            EXIT cron_entry WHEN ch = '<EOF>';

            IF ch = '@' THEN
                word := '';
                ch := cron._schedule_char(s, pos); pos := pos + 1;
                WHILE ch NOT IN ('<EOF>', '<NUL>', ' ', E'\t', E'\n') LOOP
                    word := word || ch;
                    ch := cron._schedule_char(s, pos); pos := pos + 1;
                END LOOP;
                IF word IN ('reboot', 'restart') THEN
                    RETURN '{"reboot": true}'::jsonb;
                END IF;
                -- @yearly sets month 0, which is out of range and dropped: in pg_cron it never fires.
                RETURN CASE
                    WHEN word IN ('yearly', 'annually') THEN jsonb_build_object('minute', '[0]'::jsonb,
                        'hour', '[0]'::jsonb, 'dom', '[1]'::jsonb, 'month', '[]'::jsonb, 'dow', all_weekdays,
                        'dom_star', false, 'dow_star', true, 'dom_last', false)
                    WHEN word = 'monthly' THEN jsonb_build_object('minute', '[0]'::jsonb, 'hour', '[0]'::jsonb,
                        'dom', '[1]'::jsonb, 'month', all_months, 'dow', all_weekdays,
                        'dom_star', false, 'dow_star', true, 'dom_last', false)
                    WHEN word = 'weekly' THEN jsonb_build_object('minute', '[0]'::jsonb, 'hour', '[0]'::jsonb,
                        'dom', all_days, 'month', all_months, 'dow', '[0, 7]'::jsonb,
                        'dom_star', false, 'dow_star', true, 'dom_last', false)
                    WHEN word IN ('daily', 'midnight') THEN jsonb_build_object('minute', '[0]'::jsonb,
                        'hour', '[0]'::jsonb, 'dom', all_days, 'month', all_months, 'dow', all_weekdays,
                        'dom_star', false, 'dow_star', false, 'dom_last', false)
                    WHEN word = 'hourly' THEN jsonb_build_object('minute', '[0]'::jsonb,
                        'hour', to_jsonb(ARRAY(SELECT generate_series(0, 23))), 'dom', all_days,
                        'month', all_months, 'dow', all_weekdays,
                        'dom_star', false, 'dow_star', false, 'dom_last', false)
                    ELSE NULL
                END;
            END IF;

            FOR field IN 1 .. 5 LOOP
                low := lows[field];
                high := highs[field];
                names := CASE field WHEN 4 THEN month_names WHEN 5 THEN dow_names END;
                bits := '{}';
                IF field = 3 AND ch = '$' THEN
                    ch := cron._schedule_char(s, pos); pos := pos + 1;
                    EXIT cron_entry WHEN ch NOT IN (' ', E'\t');
                    WHILE ch IN (' ', E'\t') LOOP
                        ch := cron._schedule_char(s, pos); pos := pos + 1;
                    END LOOP;
                    dom_last := true;
                ELSE
                    stars[field] := ch = '*';
                    LOOP  -- get_list: ranges separated by commas
                        single := false;
                        IF ch = '*' THEN
                            first_n := low;
                            last_n := high;
                            ch := cron._schedule_char(s, pos); pos := pos + 1;
                            EXIT cron_entry WHEN ch = '<EOF>';
                        ELSE
                            token := cron._schedule_token(s, pos - 1);
                            first_n := cron._schedule_value(token, low, names);
                            EXIT cron_entry WHEN first_n IS NULL;
                            pos := pos - 1 + length(token);
                            ch := cron._schedule_char(s, pos); pos := pos + 1;
                            IF ch <> '-' THEN
                                -- a single number; a step without a range (1/20) is unsupported
                                EXIT cron_entry WHEN ch = '/' OR first_n < low OR first_n > high;
                                bits := bits || first_n;
                                single := true;
                            ELSE
                                ch := cron._schedule_char(s, pos); pos := pos + 1;
                                EXIT cron_entry WHEN ch = '<EOF>';
                                token := cron._schedule_token(s, pos - 1);
                                last_n := cron._schedule_value(token, low, names);
                                EXIT cron_entry WHEN last_n IS NULL;
                                pos := pos - 1 + length(token);
                                ch := cron._schedule_char(s, pos); pos := pos + 1;
                            END IF;
                        END IF;
                        IF NOT single THEN
                            step := 1;
                            IF ch = '/' THEN
                                ch := cron._schedule_char(s, pos); pos := pos + 1;
                                EXIT cron_entry WHEN ch = '<EOF>';
                                token := cron._schedule_token(s, pos - 1);
                                step := cron._schedule_value(token, 0, NULL);
                                EXIT cron_entry WHEN step IS NULL OR step <= 0;
                                pos := pos - 1 + length(token);
                                ch := cron._schedule_char(s, pos); pos := pos + 1;
                            END IF;
                            EXIT cron_entry WHEN first_n < low OR first_n > high OR last_n < low OR last_n > high
                                                 OR step > high;
                            IF step = 1 THEN
                                bits := bits || cron._schedule_nset(first_n - low, last_n - low, low, high);
                            ELSE
                                bits := bits || ARRAY(SELECT generate_series(first_n, last_n, step));
                            END IF;
                        END IF;
                        EXIT WHEN ch <> ',';
                        ch := cron._schedule_char(s, pos); pos := pos + 1;
                    END LOOP;
                    -- Skip_Nonblanks, then Skip_Blanks
                    WHILE ch NOT IN (E'\t', ' ', E'\n', '<EOF>', '<NUL>') LOOP
                        ch := cron._schedule_char(s, pos); pos := pos + 1;
                    END LOOP;
                    WHILE ch IN (' ', E'\t') LOOP
                        ch := cron._schedule_char(s, pos); pos := pos + 1;
                    END LOOP;
                END IF;
                EXIT cron_entry WHEN ch = '<EOF>';
                IF field = 5 AND (0 = ANY (bits) OR 7 = ANY (bits)) THEN
                    bits := bits || ARRAY[0, 7];  -- Sunday is 0 and 7
                END IF;
                result := result || jsonb_build_object(keys[field],
                    (SELECT coalesce(jsonb_agg(DISTINCT b ORDER BY b), '[]') FROM unnest(bits) AS b));
            END LOOP;
            RETURN result || jsonb_build_object('dom_star', stars[3], 'dow_star', stars[5], 'dom_last', dom_last);
        END cron_entry;

        -- TryParseInterval: sscanf(" %u secon%c%c %c") on the lower-cased text; "<n> second" or "<n> seconds".
        parts := regexp_match(translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                              '^[ \t\n\v\f\r]*([+-]?)([0-9]+)[ \t\n\v\f\r]*secon(.?)(.?)[ \t\n\v\f\r]*(.?)');
        IF parts IS NULL OR parts[3] <> 'd' OR parts[1] = '-' OR parts[2]::numeric NOT BETWEEN 1 AND 59 THEN
            RETURN NULL;
        END IF;
        IF parts[4] = '' OR (parts[4] = 's' AND parts[5] = '') THEN
            RETURN jsonb_build_object('seconds', parts[2]::integer);
        END IF;
        RETURN NULL;
    END
    $fn$;

    CREATE FUNCTION cron._check_schedule(p_schedule text) RETURNS void
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

    CREATE SEQUENCE cron.jobid_seq;
    CREATE SEQUENCE cron.runid_seq;

    CREATE TABLE cron.job (
        jobid bigint PRIMARY KEY DEFAULT nextval('cron.jobid_seq'),
        schedule text NOT NULL,
        command text NOT NULL,
        nodename text NOT NULL DEFAULT 'localhost',
        nodeport integer NOT NULL DEFAULT coalesce(inet_server_port(), current_setting('port')::integer),
        database text NOT NULL DEFAULT current_database(),
        username text NOT NULL DEFAULT current_user,
        active boolean NOT NULL DEFAULT true,
        jobname text,
        CONSTRAINT jobname_username_uniq UNIQUE (jobname, username),
        -- Direct inserts and updates are held to the same syntax as cron.schedule().
        CONSTRAINT job_schedule_valid CHECK (cron._parse_schedule(schedule) IS NOT NULL)
    );
    ALTER SEQUENCE cron.jobid_seq OWNED BY cron.job.jobid;

    CREATE TABLE cron.job_run_details (
        jobid bigint,
        runid bigint PRIMARY KEY DEFAULT nextval('cron.runid_seq'),
        job_pid integer,
        database text,
        username text,
        command text,
        status text,
        return_message text,
        start_time timestamptz,
        end_time timestamptz
    );
    ALTER SEQUENCE cron.runid_seq OWNED BY cron.job_run_details.runid;
    CREATE INDEX job_run_details_jobid_start_idx ON cron.job_run_details (jobid, start_time DESC);
    CREATE INDEX job_run_details_unfinished_idx ON cron.job_run_details (jobid)
        WHERE status IN ('starting', 'connecting', 'sending', 'running');
    CREATE INDEX job_run_details_end_time_idx ON cron.job_run_details (end_time);

    -- TripSage's additions (not in pg_cron). Each tick of each job is recorded once: the primary key is what makes
    -- a tick run exactly once across replicas. outcome 'skipped': the job was still running at that tick.
    CREATE TABLE cron.job_tick (
        jobid bigint NOT NULL,
        tick timestamptz NOT NULL,
        runid bigint,
        outcome text NOT NULL CHECK (outcome IN ('started', 'skipped')),
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (jobid, tick)
    );
    CREATE INDEX job_tick_tick_idx ON cron.job_tick (tick);
    -- Per-job options: a statement timeout other than the runtime's default (TRIPSAGE_CRON_STATEMENT_TIMEOUT).
    CREATE TABLE cron.job_option (
        jobid bigint PRIMARY KEY REFERENCES cron.job (jobid) ON DELETE CASCADE,
        statement_timeout interval NOT NULL CHECK (statement_timeout > interval '0')
    );

    -- pg_cron invalidates its cache on any change to cron.job; the runtime is woken the same way.
    CREATE FUNCTION cron.job_cache_invalidate() RETURNS trigger
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM pg_notify('tripsage_cron', '');
        RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER cron_job_cache_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cron.job
        FOR EACH STATEMENT EXECUTE FUNCTION cron.job_cache_invalidate();

    -- As in pg_cron: each user sees only their own jobs and runs; superusers and BYPASSRLS roles see all.
    ALTER TABLE cron.job ENABLE ROW LEVEL SECURITY;
    CREATE POLICY cron_job_policy ON cron.job USING (username OPERATOR(pg_catalog.=) current_user);
    ALTER TABLE cron.job_run_details ENABLE ROW LEVEL SECURITY;
    CREATE POLICY cron_job_run_details_policy ON cron.job_run_details
        USING (username OPERATOR(pg_catalog.=) current_user);
    ALTER TABLE cron.job_tick ENABLE ROW LEVEL SECURITY;
    CREATE POLICY cron_job_tick_runtime ON cron.job_tick TO tripsage_automation USING (true);
    ALTER TABLE cron.job_option ENABLE ROW LEVEL SECURITY;
    CREATE POLICY cron_job_option_runtime ON cron.job_option TO tripsage_automation USING (true);

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

    CREATE FUNCTION cron.schedule(schedule text, command text) RETURNS bigint
        LANGUAGE plpgsql STRICT SECURITY DEFINER
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        RETURN cron._add_job(cron._caller(), NULL, schedule, command, NULL, NULL, true);
    END
    $fn$;
    COMMENT ON FUNCTION cron.schedule(text, text) IS 'schedule a pg_cron job';

    CREATE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
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

    CREATE FUNCTION cron.schedule_in_database(job_name text, schedule text, command text, database text,
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
    CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
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

    CREATE FUNCTION cron.unschedule(job_name text) RETURNS boolean
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
    CREATE FUNCTION cron.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
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
$cron$;

-- The role the maintenance jobs run as on the emulation (see "Least privilege" below).
DO $maintenance_role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tripsage_maintenance') THEN
        CREATE ROLE tripsage_maintenance NOLOGIN NOINHERIT;
    END IF;
END
$maintenance_role$;

-- The maintenance jobs. Each is SECURITY DEFINER with an empty search_path (every name qualified), revoked from
-- PUBLIC, executable by service_role and the runtime's role, and returns what it did.

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

CREATE PROCEDURE maintenance.cleanup_expired_search_cache(p_batch_size integer DEFAULT 1000,
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

-- archive-old-session-memories: each row is inserted into the archive and deleted in the same statement, so a row
-- is never lost nor in both tables.
CREATE FUNCTION maintenance.archive_old_session_memories(p_older_than interval DEFAULT '30 days',
                                                         p_batch_size integer DEFAULT 10000)
    RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    batch bigint;
    total bigint := 0;
BEGIN
    LOOP
        WITH moved AS (
            DELETE FROM public.session_memories WHERE id IN (
                SELECT id FROM public.session_memories WHERE created_at < now() - p_older_than
                ORDER BY created_at LIMIT p_batch_size FOR UPDATE SKIP LOCKED)
            RETURNING id, session_id, user_id, content, embedding, metadata, created_at
        )
        INSERT INTO public.session_memories_archive (id, session_id, user_id, content, embedding, metadata,
                                                     created_at)
        SELECT id, session_id, user_id, content, embedding, metadata, created_at FROM moved;
        GET DIAGNOSTICS batch = ROW_COUNT;
        total := total + batch;
        EXIT WHEN batch < p_batch_size;
    END LOOP;
    RETURN jsonb_build_object('archived', total);
END
$$;

-- update-table-statistics: ANALYZE of the tables the app and the jobs query most.
CREATE FUNCTION maintenance.update_table_statistics() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
BEGIN
    ANALYZE public.trips, public.trip_collaborators, public.itinerary_items, public.flights, public.accommodations,
        public.bookings, public.chat_sessions, public.chat_messages, public.memories, public.session_memories,
        public.search_destinations, public.search_flights, public.search_hotels, public.search_activities,
        public.api_keys, public.notifications;
    RETURN jsonb_build_object('analyzed', 16);
END
$$;

-- monitor-expiring-api-keys: one notification (and an api_key.expiring event) per active key expiring within
-- p_within; at most one per key per 7 days (a recent one is looked for, and the dedupe key carries the expiry,
-- so two concurrent runs cannot both insert).
CREATE FUNCTION maintenance.monitor_expiring_api_keys(p_within interval DEFAULT '7 days') RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    notified bigint;
    expiring bigint;
    note record;
BEGIN
    SELECT count(*) INTO expiring FROM public.api_keys k
    WHERE k.is_active AND k.expires_at > now() AND k.expires_at <= now() + p_within;
    notified := 0;
    FOR note IN
        INSERT INTO public.notifications (user_id, type, title, message, metadata, dedupe_key)
        SELECT k.user_id, 'api_key_expiring', 'API Key Expiring Soon',
               format('Your %s API key "%s" will expire in %s days', k.service_name, k.key_name,
                      ceil(extract(epoch FROM k.expires_at - now()) / 86400)::integer),
               jsonb_build_object('api_key_id', k.id, 'service_name', k.service_name, 'key_name', k.key_name,
                                  'expires_at', k.expires_at),
               'api_key_expiring:' || k.id || ':' || extract(epoch FROM k.expires_at)::bigint
        FROM public.api_keys k
        WHERE k.is_active AND k.expires_at > now() AND k.expires_at <= now() + p_within
          AND NOT EXISTS (
              SELECT 1 FROM public.notifications n
              WHERE n.user_id = k.user_id AND n.type = 'api_key_expiring'
                AND n.metadata ->> 'api_key_id' = k.id::text AND n.created_at > now() - interval '7 days')
        ON CONFLICT (user_id, type, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
        RETURNING user_id, metadata, dedupe_key
    LOOP
        notified := notified + 1;
        PERFORM public.emit_event('api_key.expiring', note.metadata || jsonb_build_object('user_id', note.user_id),
                                  note.dedupe_key);
    END LOOP;
    RETURN jsonb_build_object('expiring', expiring, 'notified', notified);
END
$$;

-- archive-completed-trips: completed trips untouched for p_older_than become 'archived'; the previous status is
-- kept, so maintenance.unarchive_trip() restores it.
CREATE FUNCTION maintenance.archive_completed_trips(p_older_than interval DEFAULT '1 year') RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    archived bigint;
BEGIN
    UPDATE public.trips
    SET status_before_archive = status, status = 'archived', archived_at = now()
    WHERE status = 'completed' AND updated_at < now() - p_older_than;
    GET DIAGNOSTICS archived = ROW_COUNT;
    RETURN jsonb_build_object('archived', archived);
END
$$;

CREATE FUNCTION maintenance.unarchive_trip(p_trip_id bigint) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    restored text;
BEGIN
    UPDATE public.trips
    SET status = coalesce(status_before_archive, 'completed'), status_before_archive = NULL, archived_at = NULL
    WHERE id = p_trip_id AND status = 'archived'
    RETURNING status INTO restored;
    IF restored IS NULL THEN
        RAISE EXCEPTION 'trip % is not archived', p_trip_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN restored;
END
$$;

-- generate-memory-embeddings: one memory.generate.embedding event per batch of memories without an embedding
-- (the Functions capability does the embedding). Nothing is marked: a memory stays pending until it has an
-- embedding. A batch whose event is still being delivered is not enqueued again (emit_event's dedupe key).
CREATE FUNCTION maintenance.generate_memory_embeddings(p_batch_size integer DEFAULT 100) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    ids bigint[];
    pending bigint := 0;
    events bigint := 0;
BEGIN
    FOR ids IN
        SELECT array_agg(id ORDER BY id)
        FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / p_batch_size AS chunk
              FROM public.memories WHERE embedding IS NULL) pending_rows
        GROUP BY chunk ORDER BY chunk
    LOOP
        PERFORM public.emit_event('memory.generate.embedding',
                                  jsonb_build_object('memory_ids', to_jsonb(ids), 'source', 'scheduled'),
                                  'memory.generate.embedding:' || md5(array_to_string(ids, ',')));
        pending := pending + cardinality(ids);
        events := events + 1;
    END LOOP;
    RETURN jsonb_build_object('pending', pending, 'events', events);
END
$$;

-- monitor-database-health: one system_metrics row per figure (metric_type 'database').
CREATE FUNCTION maintenance.monitor_database_health() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    written bigint;
    stats record;
    longest record;
    failed_runs bigint;
BEGIN
    INSERT INTO public.system_metrics (metric_type, metric_name, value, metadata)
    SELECT 'database', 'connections', count(*), jsonb_build_object('state', coalesce(a.state, 'unknown'))
    FROM pg_catalog.pg_stat_activity a
    WHERE a.datname = pg_catalog.current_database() AND a.backend_type = 'client backend'
    GROUP BY a.state;
    GET DIAGNOSTICS written = ROW_COUNT;

    SELECT d.xact_commit, d.xact_rollback, d.deadlocks, d.blks_hit, d.blks_read INTO stats
    FROM pg_catalog.pg_stat_database d WHERE d.datname = pg_catalog.current_database();
    SELECT extract(epoch FROM now() - a.query_start) AS seconds, a.pid, left(a.query, 200) AS query INTO longest
    FROM pg_catalog.pg_stat_activity a
    WHERE a.state = 'active' AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'
    ORDER BY a.query_start LIMIT 1;
    SELECT count(*) INTO failed_runs FROM cron.job_run_details d
    WHERE d.status = 'failed' AND d.start_time > now() - interval '1 hour';

    INSERT INTO public.system_metrics (metric_type, metric_name, value, metadata) VALUES
        ('database', 'database_size_bytes', pg_catalog.pg_database_size(pg_catalog.current_database()), '{}'),
        ('database', 'cache_hit_ratio',
            round(coalesce(stats.blks_hit::numeric / nullif(stats.blks_hit + stats.blks_read, 0), 1), 6), '{}'),
        ('database', 'commits', coalesce(stats.xact_commit, 0), '{}'),
        ('database', 'rollbacks', coalesce(stats.xact_rollback, 0), '{}'),
        ('database', 'deadlocks', coalesce(stats.deadlocks, 0), '{}'),
        ('database', 'longest_query_seconds', round(coalesce(longest.seconds, 0)::numeric, 3),
            CASE WHEN longest.pid IS NULL THEN '{}'::jsonb
                 ELSE jsonb_build_object('pid', longest.pid, 'query', longest.query) END),
        ('database', 'webhook_backlog', public.webhook_outbox_depth(), '{}'),
        ('database', 'failed_job_runs_1h', failed_runs, '{}');
    RETURN jsonb_build_object('rows', written + 8);
END
$$;

-- Our own retention job: run history (pg_cron's top complaint: it grows without bound) and the emulation's tick
-- records, older than p_keep. Unfinished runs are kept.
CREATE FUNCTION maintenance.cleanup_job_run_details(p_keep interval DEFAULT '7 days') RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    runs bigint;
    ticks bigint := 0;
BEGIN
    DELETE FROM cron.job_run_details WHERE end_time < now() - p_keep;
    GET DIAGNOSTICS runs = ROW_COUNT;
    IF to_regclass('cron.job_tick') IS NOT NULL THEN
        EXECUTE 'DELETE FROM cron.job_tick WHERE tick < now() - $1' USING p_keep;
        GET DIAGNOSTICS ticks = ROW_COUNT;
    END IF;
    RETURN jsonb_build_object('runs', runs, 'ticks', ticks);
END
$$;

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

REVOKE ALL ON PROCEDURE maintenance.cleanup_expired_search_cache(integer, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION maintenance.archive_old_session_memories(interval, integer),
    maintenance.update_table_statistics(), maintenance.monitor_expiring_api_keys(interval),
    maintenance.archive_completed_trips(interval), maintenance.unarchive_trip(bigint),
    maintenance.generate_memory_embeddings(integer), maintenance.monitor_database_health(),
    maintenance.cleanup_job_run_details(interval)
    FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE maintenance.cleanup_expired_search_cache(integer, jsonb)
    TO service_role, tripsage_automation;
GRANT EXECUTE ON FUNCTION maintenance.archive_old_session_memories(interval, integer),
    maintenance.update_table_statistics(), maintenance.monitor_expiring_api_keys(interval),
    maintenance.archive_completed_trips(interval), maintenance.unarchive_trip(bigint),
    maintenance.generate_memory_embeddings(integer), maintenance.monitor_database_health(),
    maintenance.cleanup_job_run_details(interval)
    TO service_role, tripsage_automation;

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

-- The seed's SQL API over cron.job, with jobname; the same on native pg_cron and on the emulation.
CREATE FUNCTION public.list_scheduled_jobs()
    RETURNS TABLE (jobid bigint, jobname text, schedule text, command text, nodename text, nodeport integer,
                   database text, username text, active boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT j.jobid, j.jobname::text, j.schedule, j.command, j.nodename, j.nodeport, j.database, j.username, j.active
    FROM cron.job j ORDER BY j.jobid
$$;

CREATE FUNCTION public.get_job_history(job_name text DEFAULT NULL, limit_rows integer DEFAULT 100)
    RETURNS TABLE (jobid bigint, job_name text, runid bigint, status text, return_message text,
                   start_time timestamptz, end_time timestamptz, duration interval)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT d.jobid, j.jobname::text, d.runid, d.status, d.return_message, d.start_time, d.end_time,
           d.end_time - d.start_time
    FROM cron.job_run_details d LEFT JOIN cron.job j ON j.jobid = d.jobid
    WHERE get_job_history.job_name IS NULL OR j.jobname::text = get_job_history.job_name
    ORDER BY d.start_time DESC NULLS LAST, d.runid DESC
    LIMIT limit_rows
$$;
REVOKE ALL ON FUNCTION public.list_scheduled_jobs(), public.get_job_history(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.list_scheduled_jobs(), public.get_job_history(text, integer)
    TO service_role, tripsage_automation;

-- The schedules of the seed (times in the scheduler's timezone, UTC by default). The named form is an upsert, so
-- deploying again leaves one job per name. VACUUM cannot run in a function nor in a multi-statement command (both
-- are one transaction), so vacuum-maintenance is one VACUUM statement over the list: VACUUM processes each table in
-- its own transaction, and it works the same under native pg_cron.
SELECT cron.schedule('cleanup-expired-search-cache', '0 2 * * *',
                     'CALL maintenance.cleanup_expired_search_cache()');
SELECT cron.schedule('archive-old-session-memories', '0 3 * * *',
                     'SELECT maintenance.archive_old_session_memories()');
SELECT cron.schedule('update-table-statistics', '0 1 * * *', 'SELECT maintenance.update_table_statistics()');
SELECT cron.schedule('monitor-expiring-api-keys', '0 9 * * *', 'SELECT maintenance.monitor_expiring_api_keys()');
SELECT cron.schedule('archive-completed-trips', '0 4 * * 0', 'SELECT maintenance.archive_completed_trips()');
SELECT cron.schedule('vacuum-maintenance', '0 5 * * 0',
                     'VACUUM (ANALYZE) public.trips, public.trip_collaborators, public.itinerary_items, '
                     'public.flights, public.accommodations, public.bookings, public.chat_sessions, '
                     'public.chat_messages, public.memories, public.session_memories, public.search_destinations, '
                     'public.search_flights, public.search_hotels, public.search_activities, public.api_keys, '
                     'public.notifications');
SELECT cron.schedule('generate-memory-embeddings', '*/30 * * * *',
                     'SELECT maintenance.generate_memory_embeddings()');
SELECT cron.schedule('monitor-database-health', '*/5 * * * *', 'SELECT maintenance.monitor_database_health()');
SELECT cron.schedule('cleanup-job-run-details', '15 * * * *', 'SELECT maintenance.cleanup_job_run_details()');
SELECT cron.schedule('cleanup-system-metrics', '45 * * * *', 'SELECT maintenance.cleanup_system_metrics()');

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
