-- Supabase's SQL environment on any PostgreSQL (supabase/schemas/12_supabase.sql; the policy and capture changes are
-- in 05_policies.sql and 09_realtime_capture.sql): default privileges on public as Supabase's init sets them, Database
-- Webhooks, Vault, the owner's INSERT ... RETURNING on trips, realtime capture limited to tables the gateway serves.

-- trips_select: the owner sees their trip by its row. trip_access_level(id, ...) reads trips with the statement's
-- snapshot, which does not hold a row the same statement inserts, so INSERT ... RETURNING (supabase-js's
-- .insert().select()) was refused by the owner's own SELECT policy.
ALTER POLICY trips_select ON public.trips
    USING (user_id = auth.uid() OR public.trip_access_level(id, auth.uid()) > 0);

-- Install the capture trigger on every table of supabase_realtime that the gateway may serve, and remove it from
-- tables no longer there. The gateway serves ordinary tables outside the schemas of Supabase's and TripSage's own
-- services, owned by a role this function acts for: a FOR ALL TABLES publication (older Supabase projects) also lists
-- auth.*, our own change table (capturing it would recurse) and tables of other owners (CREATE TRIGGER would fail).
-- Returns the number of tables changed.
CREATE OR REPLACE FUNCTION tripsage_realtime.sync_publication() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = ''
    AS $$
DECLARE
    target record;
    changed integer := 0;
BEGIN
    FOR target IN
        WITH served AS (
            SELECT c.oid
            FROM pg_catalog.pg_publication_tables p
            JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
            JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
            WHERE p.pubname = 'supabase_realtime' AND c.relkind = 'r'
              AND n.nspname <> ALL (ARRAY['auth', 'storage', 'realtime', '_realtime', 'supabase_functions',
                  'supabase_migrations', 'vault', 'pgsodium', 'pgsodium_masks', 'graphql', 'graphql_public',
                  'net', 'cron', 'extensions', 'pgbouncer', 'information_schema', 'tripsage_realtime',
                  'tripsage_deploy', 'webhooks', 'functions', 'monitoring', 'maintenance'])
              AND n.nspname NOT LIKE 'pg\_%'
              AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
        ), captured AS (
            SELECT t.tgrelid AS oid
            FROM pg_catalog.pg_trigger t
            JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
            WHERE t.tgname = 'A_realtime_capture' AND pg_catalog.pg_has_role(c.relowner, 'USAGE')
        )
        SELECT coalesce(s.oid, k.oid)::regclass AS rel, s.oid IS NOT NULL AS wanted
        FROM served s FULL JOIN captured k ON k.oid = s.oid
        WHERE s.oid IS NULL OR k.oid IS NULL
    LOOP
        IF target.wanted THEN
            EXECUTE format('CREATE TRIGGER "A_realtime_capture" AFTER INSERT OR UPDATE OR DELETE ON %s '
                           'FOR EACH ROW EXECUTE FUNCTION tripsage_realtime.capture()', target.rel);
        ELSE
            EXECUTE format('DROP TRIGGER "A_realtime_capture" ON %s', target.rel);
        END IF;
        changed := changed + 1;
    END LOOP;
    RETURN changed;
END
$$;

SELECT tripsage_realtime.sync_publication();

-- Supabase's default privileges on schema public (supabase/postgres, migrations/db/init-scripts: usage on public, and
-- every new table, sequence and function granted to anon, authenticated and service_role; RLS then decides the
-- rows), where our migrations created those roles on plain PostgreSQL. Where Supabase's own roles exist its init has
-- set them already, and they are never touched. TripSage's own objects carry explicit grants (05_policies.sql and
-- each topic's file), so new TripSage objects in public must revoke what these defaults give.
DO $defaults$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'supabase_admin') THEN
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
END
$defaults$;

-- Database Webhooks (supabase/supabase docker/volumes/db/webhooks.sql, as the Dashboard's webhooks use them): the
-- trigger function supabase_functions.http_request(url, method, headers, params, timeout_ms) and its log table
-- supabase_functions.hooks. Created where absent; where Supabase (or anyone) made supabase_functions, left alone.
-- Requests go through pg_net's public API (native, or TripSage's emulation): queued in the writer's transaction and
-- sent after it commits. Unlike Supabase's function, a wrong argument never fails the write that fired the hook
-- (TripSage's triggers never raise because of automation configuration): Supabase's message is raised as a WARNING
-- and the call is logged in hooks without a request id. Newer Supabase versions take a sixth argument (retries) and
-- wait for the response inside the trigger; here the request is never awaited in the writer's transaction (pg_net
-- sends only after commit), so a sixth argument is accepted and ignored.
DO $supabase_functions$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'supabase_functions') THEN
        RETURN;
    END IF;
    CREATE SCHEMA supabase_functions;
    GRANT USAGE ON SCHEMA supabase_functions TO anon, authenticated, service_role;

    CREATE TABLE supabase_functions.hooks (
        id bigserial PRIMARY KEY,
        hook_table_id integer NOT NULL,
        hook_name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        request_id bigint
    );
    CREATE INDEX supabase_functions_hooks_request_id_idx ON supabase_functions.hooks USING btree (request_id);
    CREATE INDEX supabase_functions_hooks_h_table_id_h_name_idx
        ON supabase_functions.hooks USING btree (hook_table_id, hook_name);
    COMMENT ON TABLE supabase_functions.hooks IS 'Supabase Functions Hooks: Audit trail for triggered hooks.';
    -- Supabase's default privileges there give anon and authenticated everything on hooks; the log is the
    -- service's only.
    GRANT ALL ON supabase_functions.hooks TO service_role;
    GRANT USAGE, SELECT ON SEQUENCE supabase_functions.hooks_id_seq TO service_role;

    CREATE FUNCTION supabase_functions.http_request() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = ''
        AS $fn$
    DECLARE
        local_request_id bigint;
        payload jsonb;
        url text := TG_ARGV[0]::text;
        method text := TG_ARGV[1]::text;
        headers jsonb DEFAULT '{}'::jsonb;
        params jsonb DEFAULT '{}'::jsonb;
        timeout_ms integer := 5000;  -- pg_net's default
    BEGIN
        BEGIN
            IF url IS NULL OR url = 'null' THEN
                RAISE EXCEPTION 'url argument is missing';
            END IF;
            IF method IS NULL OR method = 'null' THEN
                RAISE EXCEPTION 'method argument is missing';
            END IF;
            IF TG_ARGV[2] IS NULL OR TG_ARGV[2] = 'null' THEN
                headers := '{"Content-Type": "application/json"}'::jsonb;
            ELSE
                headers := TG_ARGV[2]::jsonb;
            END IF;
            IF TG_ARGV[3] IS NULL OR TG_ARGV[3] = 'null' THEN
                params := '{}'::jsonb;
            ELSE
                params := TG_ARGV[3]::jsonb;
            END IF;
            IF TG_ARGV[4] IS NOT NULL AND TG_ARGV[4] <> 'null' THEN
                timeout_ms := TG_ARGV[4]::integer;
            END IF;
            CASE
                WHEN method = 'GET' THEN
                    local_request_id := net.http_get(url, params, headers, timeout_ms);
                WHEN method = 'POST' THEN
                    payload := jsonb_build_object(
                        'old_record', OLD,
                        'record', NEW,
                        'type', TG_OP,
                        'table', TG_TABLE_NAME,
                        'schema', TG_TABLE_SCHEMA
                    );
                    local_request_id := net.http_post(url, payload, params, headers, timeout_ms);
                ELSE
                    RAISE EXCEPTION 'method argument % is invalid', method;
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'supabase_functions.http_request (trigger % on %.%): %',
                TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME, SQLERRM;
            local_request_id := NULL;
        END;
        INSERT INTO supabase_functions.hooks (hook_table_id, hook_name, request_id)
        VALUES (TG_RELID, TG_NAME, local_request_id);
        RETURN NEW;
    END
    $fn$;
    REVOKE ALL ON FUNCTION supabase_functions.http_request() FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION supabase_functions.http_request() TO anon, authenticated, service_role;
END
$supabase_functions$;

-- Vault (supabase/vault 0.3: vault.secrets, vault.create_secret, vault.update_secret, vault.decrypted_secrets with
-- Supabase's columns, signatures and privileges), where the server has no vault of its own. Secrets are encrypted
-- at rest under a key that is never in the database: the tripsage runtime derives it from TRIPSAGE_ENCRYPTION_KEY and
-- hands it, as the connection's startup option tripsage.vault_key (never SQL text, a parameter or a log line), only
-- to the sessions of cron jobs it runs for a role that may read vault.decrypted_secrets, and to sessions opened with
-- `tripsage vault session-options`. Anywhere else (psql, native pg_cron) reading a decrypted secret, or creating one,
-- fails with an error that says why; nothing is ever stored in plaintext.
--
-- The cipher uses only PostgreSQL's core (the embedded server has no pgcrypto): HMAC-SHA256 (RFC 2104, over core
-- sha256) as the PRF of a counter-mode keystream under a random 128-bit nonce, then HMAC-SHA256 over the key id,
-- nonce, the secret's id (Supabase's associated data) and the ciphertext (encrypt-then-MAC). Stored as Supabase
-- stores it: base64 in vault.secrets.secret (version byte 1, key id: 8 bytes, ciphertext, tag: 32 bytes), the nonce
-- in vault.secrets.nonce. src/tripsage/db/vault.py implements the same in Python (the tests hold both to each other).
DO $vault$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'vault') THEN
        RETURN;
    END IF;
    CREATE SCHEMA vault;
    COMMENT ON SCHEMA vault IS 'tripsage: Supabase Vault''s SQL API, the key outside the database';

    CREATE TABLE vault.secrets (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text,
        description text NOT NULL DEFAULT '',
        secret text NOT NULL,
        key_id uuid,
        nonce bytea,
        created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
        updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
    );
    COMMENT ON TABLE vault.secrets IS
        'Table with encrypted `secret` column for storing sensitive information on disk.';
    CREATE UNIQUE INDEX secrets_name_idx ON vault.secrets USING btree (name) WHERE name IS NOT NULL;

    -- The session's key (32 bytes), or an error naming why there is none.
    CREATE FUNCTION vault._session_key() RETURNS bytea
        LANGUAGE plpgsql STABLE
        SET search_path = ''
        AS $fn$
    DECLARE
        hex text := pg_catalog.current_setting('tripsage.vault_key', true);
    BEGIN
        IF hex IS NULL OR hex = '' THEN
            RAISE EXCEPTION 'vault: the Vault key is not available in this session'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'TripSage keeps the Vault key outside the database (derived from '
                          'TRIPSAGE_ENCRYPTION_KEY): the tripsage runtime hands it to the cron jobs it runs, and '
                          '`tripsage vault session-options` to a session of yours (PGOPTIONS). psql sessions and native '
                          'pg_cron jobs have no key. See docs/vault.md.';
        END IF;
        IF hex !~ '^[0-9a-f]{64}$' THEN
            RAISE EXCEPTION 'vault: tripsage.vault_key is not a Vault key (64 hex digits)'
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        RETURN pg_catalog.decode(hex, 'hex');
    END
    $fn$;

    -- HMAC-SHA256 (RFC 2104).
    CREATE FUNCTION vault._hmac(key bytea, message bytea) RETURNS bytea
        LANGUAGE plpgsql IMMUTABLE STRICT
        SET search_path = ''
        AS $fn$
    DECLARE
        block bytea := key;
        inner_pad bytea;
        outer_pad bytea;
    BEGIN
        IF pg_catalog.length(block) > 64 THEN
            block := pg_catalog.sha256(block);
        END IF;
        block := block || pg_catalog.decode(pg_catalog.repeat('00', 64 - pg_catalog.length(block)), 'hex');
        inner_pad := block;
        outer_pad := block;
        FOR i IN 0 .. 63 LOOP
            inner_pad := pg_catalog.set_byte(inner_pad, i, pg_catalog.get_byte(block, i) # 54);
            outer_pad := pg_catalog.set_byte(outer_pad, i, pg_catalog.get_byte(block, i) # 92);
        END LOOP;
        RETURN pg_catalog.sha256(outer_pad || pg_catalog.sha256(inner_pad || message));
    END
    $fn$;

    -- data XOR the keystream HMAC(key, nonce || block number) (32 bytes a block): encrypts and decrypts.
    CREATE FUNCTION vault._keystream_xor(key bytea, nonce bytea, data bytea) RETURNS bytea
        LANGUAGE plpgsql IMMUTABLE STRICT
        SET search_path = ''
        AS $fn$
    DECLARE
        result bytea := data;
        block bytea;
    BEGIN
        FOR i IN 0 .. pg_catalog.length(data) - 1 LOOP
            IF i % 32 = 0 THEN
                block := vault._hmac(key, nonce || pg_catalog.int4send(i / 32));
            END IF;
            result := pg_catalog.set_byte(result, i, pg_catalog.get_byte(data, i) # pg_catalog.get_byte(block, i % 32));
        END LOOP;
        RETURN result;
    END
    $fn$;

    CREATE FUNCTION vault._encrypt(plaintext text, secret_id uuid, nonce bytea) RETURNS text
        LANGUAGE plpgsql STABLE
        SET search_path = ''
        AS $fn$
    DECLARE
        session_key bytea := vault._session_key();
        header bytea := '\x01'::bytea || pg_catalog.substr(pg_catalog.sha256(session_key), 1, 8);
        sealed bytea;
    BEGIN
        sealed := vault._keystream_xor(vault._hmac(session_key, '\x656e6372797074'::bytea), nonce,
                                       pg_catalog.convert_to(plaintext, 'UTF8'));
        RETURN pg_catalog.encode(
            header || sealed
            || vault._hmac(vault._hmac(session_key, '\x61757468656e746963617465'::bytea),
                           header || nonce || pg_catalog.convert_to(secret_id::text, 'UTF8') || sealed),
            'base64');
    END
    $fn$;

    CREATE FUNCTION vault._decrypt(secret text, secret_id uuid, nonce bytea) RETURNS text
        LANGUAGE plpgsql STABLE
        SET search_path = ''
        AS $fn$
    DECLARE
        session_key bytea;
        blob bytea;
        header bytea;
        sealed bytea;
    BEGIN
        IF secret IS NULL THEN
            RETURN NULL;
        END IF;
        session_key := vault._session_key();
        blob := pg_catalog.decode(secret, 'base64');
        IF pg_catalog.length(blob) < 41 OR pg_catalog.get_byte(blob, 0) <> 1 OR nonce IS NULL THEN
            RAISE EXCEPTION 'vault: secret % is not a TripSage Vault ciphertext', secret_id
                USING ERRCODE = 'data_corrupted';
        END IF;
        header := pg_catalog.substr(blob, 1, 9);
        IF pg_catalog.substr(header, 2) <> pg_catalog.substr(pg_catalog.sha256(session_key), 1, 8) THEN
            RAISE EXCEPTION 'vault: secret % was encrypted under key %, not under this session''s key %', secret_id,
                pg_catalog.encode(pg_catalog.substr(header, 2), 'hex'),
                pg_catalog.encode(pg_catalog.substr(pg_catalog.sha256(session_key), 1, 8), 'hex')
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'TRIPSAGE_ENCRYPTION_KEY changed: update the secret with vault.update_secret.';
        END IF;
        sealed := pg_catalog.substr(blob, 10, pg_catalog.length(blob) - 41);
        IF vault._hmac(vault._hmac(session_key, '\x61757468656e746963617465'::bytea),
                       header || nonce || pg_catalog.convert_to(secret_id::text, 'UTF8') || sealed)
           <> pg_catalog.substr(blob, pg_catalog.length(blob) - 31) THEN
            RAISE EXCEPTION 'vault: secret % failed authentication (changed, or copied from another secret)', secret_id
                USING ERRCODE = 'data_corrupted';
        END IF;
        RETURN pg_catalog.convert_from(
            vault._keystream_xor(vault._hmac(session_key, '\x656e6372797074'::bytea), nonce, sealed), 'UTF8');
    END
    $fn$;

    CREATE VIEW vault.decrypted_secrets AS
    SELECT s.id,
        s.name,
        s.description,
        s.secret,
        vault._decrypt(s.secret, s.id, s.nonce) AS decrypted_secret,
        s.key_id,
        s.nonce,
        s.created_at,
        s.updated_at
    FROM vault.secrets s;

    -- The secret is encrypted before the row is written: no plaintext is stored on any path (Supabase inserts it
    -- and then encrypts it in place).
    CREATE FUNCTION vault.create_secret(new_secret text, new_name text DEFAULT NULL, new_description text DEFAULT '',
                                        new_key_id uuid DEFAULT NULL) RETURNS uuid
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = ''
        AS $fn$
    DECLARE
        new_id uuid := pg_catalog.gen_random_uuid();
        new_nonce bytea := pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
    BEGIN
        INSERT INTO vault.secrets (id, secret, name, description, nonce)
        VALUES (new_id, vault._encrypt(new_secret, new_id, new_nonce), new_name, new_description, new_nonce);
        RETURN new_id;
    END
    $fn$;

    CREATE FUNCTION vault.update_secret(secret_id uuid, new_secret text DEFAULT NULL, new_name text DEFAULT NULL,
                                        new_description text DEFAULT NULL, new_key_id uuid DEFAULT NULL)
        RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = ''
        AS $fn$
    DECLARE
        new_nonce bytea := pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
    BEGIN
        UPDATE vault.secrets s
        SET secret = CASE WHEN new_secret IS NULL THEN s.secret ELSE vault._encrypt(new_secret, s.id, new_nonce) END,
            nonce = CASE WHEN new_secret IS NULL THEN s.nonce ELSE new_nonce END,
            name = coalesce(new_name, s.name),
            description = coalesce(new_description, s.description),
            updated_at = now()
        WHERE s.id = secret_id;
    END
    $fn$;

    -- Supabase's privileges: the owner (postgres) and service_role manage secrets; nobody else sees the schema.
    REVOKE ALL ON FUNCTION vault._session_key(), vault._hmac(bytea, bytea), vault._keystream_xor(bytea, bytea, bytea),
        vault._encrypt(text, uuid, bytea), vault._decrypt(text, uuid, bytea),
        vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid) FROM PUBLIC;
    GRANT USAGE ON SCHEMA vault TO service_role;
    GRANT SELECT, DELETE ON vault.secrets, vault.decrypted_secrets TO service_role;
    -- Functions the view calls run with its reader's privileges.
    GRANT EXECUTE ON FUNCTION vault._session_key(), vault._hmac(bytea, bytea), vault._keystream_xor(bytea, bytea, bytea),
        vault._decrypt(text, uuid, bytea), vault.create_secret(text, text, text, uuid),
        vault.update_secret(uuid, text, text, text, uuid) TO service_role;
END
$vault$;
