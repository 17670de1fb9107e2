-- name: cron_mode
-- 'native' (pg_cron in this database), 'emulated' (our schema), or 'missing'.
SELECT CASE
    WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN 'native'
    WHEN obj_description((SELECT oid FROM pg_namespace WHERE nspname = 'cron'), 'pg_namespace')
         LIKE 'tripsage emulation of pg_cron%%' THEN 'emulated'
    ELSE 'missing'
END AS mode;

-- name: try_leadership
SELECT pg_try_advisory_lock(%(key)s) AS leader;

-- name: ping
SELECT 1 AS alive;

-- name: load_jobs
-- The jobs the leader schedules (emulated pg_cron only), with their per-job statement timeout.
SELECT j.jobid, j.jobname, j.schedule, j.command, j.database, j.username, j.active,
       extract(epoch FROM o.statement_timeout)::float8 AS statement_timeout_s
FROM cron.job j LEFT JOIN cron.job_option o ON o.jobid = j.jobid
WHERE j.active
ORDER BY j.jobid;

-- name: last_ticks
-- Where a new leader resumes each job: its latest recorded tick.
SELECT jobid, max(tick) AS tick FROM cron.job_tick GROUP BY jobid;

-- name: server_started
SELECT pg_postmaster_start_time() AS started;

-- name: interrupted_runs
-- Runs left unfinished by a leader that is gone (not this process's own, still running after it re-took the lock):
-- marked failed as pg_cron does at startup, and their backends
-- (if still alive, e.g. a long statement whose client was killed) terminated so they cannot overlap a new run.
-- Only a job's own connection is terminated (by its application_name): job_pid is written by whoever may write
-- cron.job_run_details, and must not let them end someone else's session.
WITH marked AS (
    UPDATE cron.job_run_details
    SET status = 'failed', return_message = 'server restarted', end_time = clock_timestamp()
    WHERE status IN ('starting', 'connecting', 'sending', 'running') AND runid <> ALL (%(ours)s::bigint[])
    RETURNING runid, job_pid
)
SELECT m.runid, m.job_pid,
       CASE WHEN a.pid IS NOT NULL AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
            THEN pg_terminate_backend(a.pid) ELSE false END AS terminated
FROM marked m LEFT JOIN pg_stat_activity a ON a.pid = m.job_pid AND a.backend_type = 'client backend'
    AND a.application_name IN ('tripsage-scheduler-job', 'tripsage-jobs-run');

-- name: claim_ticks
-- Exactly once per (job, tick) across replicas: the tick's primary key decides; each claimed tick's run row is
-- created in the same statement. Several jobs due at once are claimed together.
WITH wanted AS (
    SELECT * FROM unnest(%(jobids)s::bigint[], %(ticks)s::timestamptz[], %(databases)s::text[],
                         %(usernames)s::text[], %(commands)s::text[]) AS w(jobid, tick, database, username, command)
), claimed AS (
    INSERT INTO cron.job_tick (jobid, tick, runid, outcome)
    SELECT w.jobid, w.tick, nextval('cron.runid_seq'), 'started' FROM wanted w
    ON CONFLICT (jobid, tick) DO NOTHING
    RETURNING jobid, tick, runid
)
INSERT INTO cron.job_run_details (runid, jobid, database, username, command, status, start_time)
SELECT c.runid, c.jobid, w.database, w.username, w.command, 'starting', clock_timestamp()
FROM claimed c JOIN wanted w ON w.jobid = c.jobid AND w.tick = c.tick
RETURNING jobid, runid;

-- name: skip_tick
-- The job was still running at this tick: recorded, not queued (pg_cron would queue it without bound).
INSERT INTO cron.job_tick (jobid, tick, outcome) VALUES (%(jobid)s, %(tick)s, 'skipped')
ON CONFLICT (jobid, tick) DO NOTHING;

-- name: run_started
-- The command is being sent: start_time is that moment, as pg_cron sets it when a run enters 'running'.
UPDATE cron.job_run_details SET status = 'running', job_pid = %(pid)s, start_time = %(started)s
WHERE runid = %(runid)s AND status IN ('starting', 'connecting');

-- name: run_finished
-- A run already marked failed by a new leader keeps that verdict.
UPDATE cron.job_run_details SET status = %(status)s, return_message = %(message)s, end_time = clock_timestamp()
WHERE runid = %(runid)s AND status IN ('starting', 'connecting', 'sending', 'running');

-- name: job_by_name
SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job WHERE jobname = %(name)s
ORDER BY (username = current_user) DESC, jobid LIMIT 1;

-- name: manual_run
-- `tripsage jobs run`: recorded like a scheduled run, its tick being the moment it was asked for.
WITH claimed AS (
    INSERT INTO cron.job_tick (jobid, tick, runid, outcome)
    VALUES (%(jobid)s, clock_timestamp(), nextval('cron.runid_seq'), 'started')
    RETURNING runid
)
INSERT INTO cron.job_run_details (runid, jobid, database, username, command, status, start_time)
SELECT runid, %(jobid)s, %(database)s, %(username)s, %(command)s, 'starting', clock_timestamp() FROM claimed
RETURNING runid, start_time;

-- name: manual_run_native
-- On native pg_cron there is no tick table: the run is recorded in job_run_details as pg_cron records its own.
INSERT INTO cron.job_run_details (jobid, database, username, command, status, start_time)
VALUES (%(jobid)s, %(database)s, %(username)s, %(command)s, 'starting', clock_timestamp())
RETURNING runid, start_time;

-- name: list_jobs
SELECT j.jobid, j.jobname, j.schedule, j.active, j.username, j.database, j.command,
       last.status AS last_status, last.start_time AS last_start, last.return_message AS last_message
FROM list_scheduled_jobs() j
LEFT JOIN LATERAL (
    SELECT h.status, h.start_time, h.return_message FROM get_job_history(j.jobname, 1) h
) last ON j.jobname IS NOT NULL
ORDER BY j.jobname NULLS LAST, j.jobid;

-- name: history
SELECT h.jobid, h.job_name, h.runid, h.status, h.return_message, h.start_time, h.end_time,
       extract(epoch FROM h.duration)::float8 AS duration_s
FROM get_job_history(%(name)s, %(limit)s) h;

-- name: set_active
SELECT cron.alter_job(%(jobid)s, active := %(active)s);
