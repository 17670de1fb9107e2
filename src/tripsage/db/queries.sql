-- name: ensure_migrations_table
-- The Supabase CLI's history table, plus our checksum and timestamp columns.
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY);
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[];
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text;
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS checksum text;
ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS applied_at timestamptz DEFAULT now();

-- name: migrations_table_exists
SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL AS present;

-- name: applied_migrations
SELECT version, name, checksum FROM supabase_migrations.schema_migrations ORDER BY version;

-- name: record_migration
INSERT INTO supabase_migrations.schema_migrations (version, name, statements, checksum, applied_at)
VALUES (%(version)s, %(name)s, ARRAY[%(statements)s], %(checksum)s, now());

-- name: backfill_checksum
UPDATE supabase_migrations.schema_migrations SET checksum = %(checksum)s WHERE version = %(version)s;

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
