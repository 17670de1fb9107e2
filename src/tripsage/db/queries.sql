-- name: ensure_migrations_table
-- The Supabase CLI's history table, created exactly as the CLI creates it (never altered beyond that), and TripSage's
-- own record of what it applied (checksums) in a schema of its own.
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY);
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[];
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text;
CREATE SCHEMA IF NOT EXISTS tripsage_deploy;
COMMENT ON SCHEMA tripsage_deploy IS 'tripsage deploy: the checksum of each migration it applied';
CREATE TABLE IF NOT EXISTS tripsage_deploy.applied_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_table_exists
SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL AS present,
       to_regclass('tripsage_deploy.applied_migrations') IS NOT NULL AS own,
       EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
               WHERE attrelid = to_regclass('supabase_migrations.schema_migrations')
                 AND attname = 'checksum' AND NOT attisdropped) AS legacy_checksums;

-- name: applied_migrations
-- Every version in the CLI's history, whoever applied it (the CLI, psql users recording by hand, tripsage deploy).
SELECT version FROM supabase_migrations.schema_migrations ORDER BY version;

-- name: own_checksums
SELECT version, checksum FROM tripsage_deploy.applied_migrations;

-- name: legacy_checksums
-- Deploys before tripsage_deploy existed kept their checksums in an extra column of the CLI's table.
SELECT version, checksum FROM supabase_migrations.schema_migrations WHERE checksum IS NOT NULL;

-- name: adopt_legacy_checksums
INSERT INTO tripsage_deploy.applied_migrations (version, name, checksum)
SELECT version, coalesce(name, ''), checksum FROM supabase_migrations.schema_migrations WHERE checksum IS NOT NULL
ON CONFLICT (version) DO NOTHING;

-- name: record_migration
-- Appended to the CLI's history as `supabase db push` does (version, name, statements), and to our own table.
WITH history AS (
    INSERT INTO supabase_migrations.schema_migrations (version, name, statements)
    VALUES (%(version)s, %(name)s, ARRAY[%(statements)s])
)
INSERT INTO tripsage_deploy.applied_migrations (version, name, checksum)
VALUES (%(version)s, %(name)s, %(checksum)s);

-- name: deploy_lock
-- One deploy at a time per database (replicas may start together).
SELECT pg_advisory_lock(hashtext('tripsage.deploy'));

-- name: deploy_unlock
SELECT pg_advisory_unlock(hashtext('tripsage.deploy'));

-- name: set_embedding_dim
SELECT set_config('tripsage.embedding_dim', %(dim)s, true);

-- name: verify_extensions
SELECT name, status, version, note FROM public.verify_extensions();

-- name: verify_automation_setup
SELECT component, status, details FROM public.verify_automation_setup();

-- name: server_version
SELECT current_setting('server_version') AS version, current_database() AS database, current_user AS role;

-- name: insert_api_key
INSERT INTO public.api_keys (user_id, service_name, key_name, encrypted_key, key_hash, key_hint, expires_at, metadata)
VALUES (%(user_id)s, %(service_name)s, %(key_name)s, %(encrypted_key)s, %(key_hash)s, %(key_hint)s, %(expires_at)s,
        %(metadata)s)
RETURNING id;

-- name: get_api_key
SELECT id, user_id, service_name, key_name, encrypted_key FROM public.api_keys WHERE id = %(id)s;

-- name: touch_api_key
UPDATE public.api_keys SET last_used_at = now() WHERE id = %(id)s;

-- name: audit_secret_access
SELECT public.audit_secret_access(%(action)s, %(table)s, %(record_id)s, %(details)s);

-- name: api_keys_for_rotation
SELECT id, encrypted_key FROM public.api_keys ORDER BY id FOR UPDATE;

-- name: reencrypt_api_key
UPDATE public.api_keys SET encrypted_key = %(encrypted_key)s, key_hash = %(key_hash)s WHERE id = %(id)s;

-- name: webhook_secrets_for_rotation
SELECT id, secret FROM public.webhook_configs WHERE secret IS NOT NULL ORDER BY id FOR UPDATE;

-- name: reencrypt_webhook_secret
UPDATE public.webhook_configs SET secret = %(secret)s WHERE id = %(id)s;

-- name: backend_pid
-- The server process of this session (differs from the one the client was told at connect behind a pooler).
SELECT pg_backend_pid() AS pid;

-- name: server_role_state
-- Whether writes are possible here (a standby, or a server set read-only), and the connection room left.
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('default_transaction_read_only')::boolean AS default_read_only,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use;

-- name: vault_reader
-- Whether a role may read Vault's decrypted secrets (false where this database has no vault). Read from the catalog,
-- so a caller without USAGE on schema vault (the least-privilege runtime) gets an answer, not an error.
SELECT coalesce((SELECT has_schema_privilege(%(username)s, n.oid, 'USAGE')
                        AND has_table_privilege(%(username)s, c.oid, 'SELECT')
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'vault' AND c.relname = 'decrypted_secrets'), false) AS reads;

-- name: vault_is_ours
-- Whether vault.secrets is TripSage's (12_supabase.sql), not Supabase's own extension.
SELECT to_regprocedure('vault._session_key()') IS NOT NULL AS ours;

-- name: vault_secrets_for_rotation
SELECT id::text AS id, secret, nonce FROM vault.secrets ORDER BY id FOR UPDATE;

-- name: reencrypt_vault_secret
UPDATE vault.secrets SET secret = %(secret)s, nonce = %(nonce)s WHERE id = %(id)s::uuid;

-- name: is_superuser
-- A job session (tripsage.db.job_sessions): who it is connected as.
SELECT current_user AS me, rolsuper AS superuser FROM pg_roles WHERE rolname = current_user;

-- name: can_connect
-- A job session: whether the job's user may connect to this database.
SELECT has_database_privilege(%(username)s, current_database(), 'CONNECT') AS allowed;

-- name: webhook_configs_without_secret
-- Webhook endpoints (tripsage.db.vault): those without a secret yet.
SELECT id, name FROM public.webhook_configs WHERE secret IS NULL ORDER BY id

-- name: set_webhook_secret_if_missing
UPDATE public.webhook_configs SET secret = %(secret)s WHERE id = %(id)s AND secret IS NULL

-- name: set_webhook_secret
UPDATE public.webhook_configs SET secret = %(secret)s WHERE name = %(name)s RETURNING id

-- name: get_webhook_secret
SELECT id, secret FROM public.webhook_configs WHERE name = %(name)s

-- name: cron_timezone_setting
-- pg_cron's cron.timezone where the server has it (a preloaded pg_cron, or a placeholder set in the configuration).
SELECT nullif(current_setting('cron.timezone', true), '') AS timezone;
