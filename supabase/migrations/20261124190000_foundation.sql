-- tripsage:amends 9ffa84d495d832fad9b60aefd13698353383000cf7d85556525afe4ccabf3db2 (until 2026-11-27 its
-- privileges block revoked from every table and function in schema public, a Supabase project's own too; now it
-- names TripSage's objects. On a fresh database both texts give the same privileges.)
-- Foundation: roles, auth compatibility, extensions, TripSage core schema, RLS, realtime publication.
-- (supabase/schemas/00_extensions.sql .. 06_realtime.sql as of this migration)

-- 00_extensions: roles, the auth schema of Supabase, and the extensions TripSage uses.
--
-- Every block here decides for itself what the server has, so the same file runs on Supabase (where the roles,
-- auth and most extensions already exist: they are left alone), on RDS / Cloud SQL, and on a laptop.

-- Supabase's API roles. On Supabase they exist already; elsewhere we create them with the same attributes.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
    -- The least-privilege role the runtime may connect as (docs/operations.md: give it LOGIN and a password).
    -- It may act as authenticated (realtime authorization) and as service_role (automation writes).
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tripsage_automation') THEN
        CREATE ROLE tripsage_automation NOLOGIN NOINHERIT;
    END IF;
END
$roles$;

GRANT anon, authenticated, service_role TO tripsage_automation;

-- Extensions live in the schema "extensions", as on Supabase.
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role, tripsage_automation;

DO $extensions$
DECLARE
    ext record;
BEGIN
    -- Required: TripSage cannot work without these. A clear message names the fix.
    FOR ext IN
        SELECT * FROM (VALUES
            ('vector', 'install pgvector (Debian: postgresql-<major>-pgvector; Supabase: built in)'),
            ('btree_gist', 'install the PostgreSQL contrib package (Debian: postgresql-contrib)')
        ) AS required(name, fix)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = ext.name) THEN
            RAISE EXCEPTION 'extension % is not available on this server', ext.name
                USING HINT = ext.fix;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                   WHERE e.extname = ext.name AND n.nspname <> 'extensions') THEN
            RAISE EXCEPTION 'extension % is installed outside schema extensions', ext.name
                USING HINT = format('ALTER EXTENSION %I SET SCHEMA extensions;', ext.name);
        END IF;
        EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA extensions', ext.name);
    END LOOP;

    -- Optional: used when the server has them.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA extensions;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
        CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
    END IF;
    -- pg_cron can only be created in the database named by cron.database_name, and only when preloaded
    -- (the GUC exists only then). Elsewhere the emulation in 07_automation provides the same API.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron')
       AND current_setting('cron.database_name', true) = current_database() THEN
        CREATE EXTENSION IF NOT EXISTS pg_cron;
    END IF;
    -- pg_net creates its own schema "net"; without it the emulation in 08_webhooks provides the same API.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_net')
       AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'net') THEN
        CREATE EXTENSION IF NOT EXISTS pg_net;
    END IF;
END
$extensions$;

-- Supabase's auth schema, on servers that do not have it. On Supabase, GoTrue owns it: we never touch it there.
DO $auth$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        RETURN;
    END IF;

    CREATE SCHEMA auth;
    GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, tripsage_automation;

    CREATE TABLE auth.users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        aud varchar(255) DEFAULT 'authenticated',
        role varchar(255) DEFAULT 'authenticated',
        email varchar(255) UNIQUE,
        raw_app_meta_data jsonb NOT NULL DEFAULT '{}',
        raw_user_meta_data jsonb NOT NULL DEFAULT '{}',
        email_confirmed_at timestamptz,
        last_sign_in_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
    );
    COMMENT ON TABLE auth.users IS 'Minimal stand-in for Supabase GoTrue''s auth.users on plain PostgreSQL.';

    -- The three helpers read request.jwt.claim(s) exactly as Supabase's do.
    CREATE FUNCTION auth.uid() RETURNS uuid
        LANGUAGE sql STABLE
        AS $fn$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.sub', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
            )::uuid
        $fn$;
    CREATE FUNCTION auth.role() RETURNS text
        LANGUAGE sql STABLE
        AS $fn$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim.role', true), ''),
                (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
            )::text
        $fn$;
    CREATE FUNCTION auth.jwt() RETURNS jsonb
        LANGUAGE sql STABLE
        AS $fn$
            SELECT coalesce(
                nullif(current_setting('request.jwt.claim', true), ''),
                nullif(current_setting('request.jwt.claims', true), '')
            )::jsonb
        $fn$;
    GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.jwt() TO anon, authenticated, service_role;
END
$auth$;

-- The schema that the maintenance jobs' functions live in (07_automation fills it).
CREATE SCHEMA IF NOT EXISTS maintenance;
GRANT USAGE ON SCHEMA maintenance TO service_role, tripsage_automation;

-- 01_tables: TripSage's core tables. Names and columns follow the original TripSage schema so its code and SQL
-- keep working; ids are identities, user references cascade from auth.users, timestamps are timestamptz.

CREATE TABLE public.trips (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    destination text NOT NULL,
    start_date date NOT NULL,
    end_date date NOT NULL,
    budget numeric CHECK (budget > 0),
    travelers integer NOT NULL DEFAULT 1 CHECK (travelers > 0),
    status text NOT NULL DEFAULT 'planning'
        CHECK (status IN ('planning', 'booked', 'in_progress', 'completed', 'cancelled', 'archived')),
    trip_type text NOT NULL DEFAULT 'leisure'
        CHECK (trip_type IN ('leisure', 'business', 'family', 'solo', 'other')),
    flexibility jsonb NOT NULL DEFAULT '{}',
    notes text[] NOT NULL DEFAULT '{}',
    search_metadata jsonb NOT NULL DEFAULT '{}',
    -- Archival is reversible: the status before archival is kept (maintenance.unarchive_trip).
    archived_at timestamptz,
    status_before_archive text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trips_dates_ordered CHECK (end_date >= start_date),
    CONSTRAINT trips_archive_consistent CHECK ((status = 'archived') = (archived_at IS NOT NULL))
);

CREATE TABLE public.trip_collaborators (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trip_id bigint NOT NULL REFERENCES public.trips (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    permission_level text NOT NULL DEFAULT 'view' CHECK (permission_level IN ('view', 'edit', 'admin')),
    added_by uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trip_collaborators_trip_user_key UNIQUE (trip_id, user_id)
);

CREATE TABLE public.itinerary_items (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trip_id bigint NOT NULL REFERENCES public.trips (id) ON DELETE CASCADE,
    title text NOT NULL,
    description text,
    item_type text NOT NULL DEFAULT 'activity'
        CHECK (item_type IN ('activity', 'meal', 'transport', 'accommodation', 'event', 'other')),
    start_time timestamptz,
    end_time timestamptz,
    location text,
    price numeric NOT NULL DEFAULT 0 CHECK (price >= 0),
    currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    booking_status text NOT NULL DEFAULT 'planned'
        CHECK (booking_status IN ('planned', 'reserved', 'booked', 'completed', 'cancelled')),
    external_id text,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT itinerary_items_times_ordered CHECK (end_time IS NULL OR start_time IS NULL OR end_time >= start_time)
);

CREATE TABLE public.flights (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trip_id bigint NOT NULL REFERENCES public.trips (id) ON DELETE CASCADE,
    origin text NOT NULL,
    destination text NOT NULL,
    departure_date date NOT NULL,
    return_date date,
    flight_class text NOT NULL DEFAULT 'economy'
        CHECK (flight_class IN ('economy', 'premium_economy', 'business', 'first')),
    price numeric NOT NULL CHECK (price >= 0),
    currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    airline text,
    flight_number text,
    booking_status text NOT NULL DEFAULT 'available'
        CHECK (booking_status IN ('available', 'reserved', 'booked', 'cancelled')),
    external_id text,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT flights_dates_ordered CHECK (return_date IS NULL OR return_date >= departure_date)
);

CREATE TABLE public.accommodations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trip_id bigint NOT NULL REFERENCES public.trips (id) ON DELETE CASCADE,
    name text NOT NULL,
    address text,
    check_in_date date NOT NULL,
    check_out_date date NOT NULL,
    room_type text,
    price_per_night numeric NOT NULL CHECK (price_per_night >= 0),
    total_price numeric NOT NULL CHECK (total_price >= 0),
    rating numeric CHECK (rating BETWEEN 0 AND 5),
    amenities text[] NOT NULL DEFAULT '{}',
    booking_status text NOT NULL DEFAULT 'available'
        CHECK (booking_status IN ('available', 'reserved', 'booked', 'cancelled')),
    external_id text,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accommodations_dates_ordered CHECK (check_out_date > check_in_date),
    -- btree_gist earns its place: one trip cannot have two live stays on the same night.
    CONSTRAINT accommodations_no_overlapping_stays EXCLUDE USING gist (
        trip_id WITH =,
        daterange(check_in_date, check_out_date, '[)') WITH &&
    ) WHERE (booking_status <> 'cancelled')
);

CREATE TABLE public.bookings (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trip_id bigint NOT NULL REFERENCES public.trips (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    booking_type text NOT NULL CHECK (booking_type IN ('flight', 'accommodation', 'activity', 'transport', 'other')),
    flight_id bigint REFERENCES public.flights (id) ON DELETE SET NULL,
    accommodation_id bigint REFERENCES public.accommodations (id) ON DELETE SET NULL,
    provider text,
    confirmation_code text,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'cancelled', 'refunded')),
    price numeric CHECK (price >= 0),
    currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    metadata jsonb NOT NULL DEFAULT '{}',
    booked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.chat_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    trip_id bigint REFERENCES public.trips (id) ON DELETE SET NULL,
    ended_at timestamptz,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.chat_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES public.chat_sessions (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content text NOT NULL CHECK (length(content) <= 32768),
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.chat_tool_calls (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id bigint NOT NULL REFERENCES public.chat_messages (id) ON DELETE CASCADE,
    tool_id text NOT NULL,
    tool_name text NOT NULL,
    arguments jsonb NOT NULL DEFAULT '{}',
    result jsonb,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);

-- Long-term memory. The embedding's dimension is chosen at deploy time (see the block at the end of this file).
CREATE TABLE public.memories (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    memory_type text NOT NULL DEFAULT 'user_preference'
        CHECK (memory_type IN ('user_preference', 'trip_history', 'search_pattern', 'conversation_context', 'other')),
    content text NOT NULL CHECK (length(content) BETWEEN 1 AND 8192),
    embedding extensions.vector(384),
    embedding_model text,
    embedded_at timestamptz,
    confidence real NOT NULL DEFAULT 0.5 CHECK (confidence BETWEEN 0 AND 1),
    last_reinforced timestamptz,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memories_embedding_has_model CHECK ((embedding IS NULL) = (embedding_model IS NULL))
);

CREATE TABLE public.session_memories (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES public.chat_sessions (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    content text NOT NULL CHECK (length(content) BETWEEN 1 AND 8192),
    embedding extensions.vector(384),
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Where archive-old-session-memories moves rows: same columns plus when they moved. No FK to chat_sessions,
-- so archived memories outlive their session's deletion only until the user is deleted.
CREATE TABLE public.session_memories_archive (
    id bigint PRIMARY KEY,
    session_id uuid NOT NULL,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    content text NOT NULL,
    embedding extensions.vector(384),
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);

-- The four search caches share their shape: who asked, a hash of the query, results and an expiry.
CREATE TABLE public.search_destinations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    query text NOT NULL,
    query_hash text NOT NULL,
    query_parameters jsonb NOT NULL DEFAULT '{}',
    results jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('google_maps', 'external_api', 'cached')),
    search_metadata jsonb NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.search_flights (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    origin text NOT NULL,
    destination text NOT NULL,
    departure_date date NOT NULL,
    return_date date,
    passengers integer NOT NULL DEFAULT 1 CHECK (passengers > 0),
    cabin_class text NOT NULL DEFAULT 'economy',
    query_hash text NOT NULL,
    results jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('duffel', 'amadeus', 'external_api', 'cached')),
    search_metadata jsonb NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.search_hotels (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    destination text NOT NULL,
    check_in_date date NOT NULL,
    check_out_date date NOT NULL,
    guests integer NOT NULL DEFAULT 1 CHECK (guests > 0),
    rooms integer NOT NULL DEFAULT 1 CHECK (rooms > 0),
    query_hash text NOT NULL,
    results jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('booking', 'expedia', 'airbnb_mcp', 'external_api', 'cached')),
    search_metadata jsonb NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.search_activities (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    destination text NOT NULL,
    activity_type text,
    query_hash text NOT NULL,
    query_parameters jsonb NOT NULL DEFAULT '{}',
    results jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('google_maps', 'viator', 'getyourguide', 'external_api', 'cached')),
    search_metadata jsonb NOT NULL DEFAULT '{}',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Users' third-party API keys. encrypted_key is AES-256-GCM ciphertext made by the runtime under
-- TRIPSAGE_ENCRYPTION_KEY (format in src/tripsage/crypto.py); neither the plaintext nor the key reach the database.
-- key_hash is an HMAC of the plaintext under a key derived from the same secret (for lookups, not reversible).
CREATE TABLE public.api_keys (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    service_name text NOT NULL CHECK (length(service_name) BETWEEN 1 AND 100),
    key_name text NOT NULL CHECK (length(key_name) BETWEEN 1 AND 100),
    encrypted_key bytea NOT NULL,
    key_hash text NOT NULL,
    key_hint text,
    is_active boolean NOT NULL DEFAULT true,
    last_used_at timestamptz,
    expires_at timestamptz,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_user_service_name_key UNIQUE (user_id, service_name, key_name)
);

CREATE TABLE public.notifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    type text NOT NULL,
    title text NOT NULL,
    message text NOT NULL,
    read boolean NOT NULL DEFAULT false,
    metadata jsonb NOT NULL DEFAULT '{}',
    -- Idempotency: a producer that may run twice (a redelivered webhook, a re-run job) sets a key.
    dedupe_key text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.system_metrics (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    metric_type text NOT NULL,
    metric_name text NOT NULL,
    value numeric NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Webhook endpoints. secret holds AES-256-GCM ciphertext of a whsec_ secret, made by the runtime.
CREATE TABLE public.webhook_configs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CONSTRAINT webhook_configs_name_key UNIQUE CHECK (name ~ '^[a-z0-9_][a-z0-9_.-]{0,99}$'),
    url text NOT NULL CHECK (url ~ '^https?://'),
    secret bytea,
    events text[] NOT NULL DEFAULT '{}',
    headers jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(headers) = 'object'),
    retry_config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(retry_config) = 'object'),
    timeout_ms integer NOT NULL DEFAULT 15000 CHECK (timeout_ms BETWEEN 100 AND 60000),
    is_active boolean NOT NULL DEFAULT true,
    disabled_reason text,
    failing_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.webhook_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_config_id bigint REFERENCES public.webhook_configs (id) ON DELETE CASCADE,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    response_status integer,
    response_body text,
    attempt_count integer NOT NULL DEFAULT 1 CHECK (attempt_count > 0),
    duration_ms integer,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);

-- Who created, changed, read or deleted a secret-bearing row (api_keys, webhook_configs). Never the secret itself.
CREATE TABLE public.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id uuid,
    actor_role text NOT NULL,
    db_user text NOT NULL DEFAULT current_user,
    action text NOT NULL CHECK (action IN ('create', 'update', 'read', 'delete', 'rotate')),
    table_name text NOT NULL,
    record_id text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);

-- Embedding dimension, chosen at deploy time: `SET tripsage.embedding_dim = 1536` before this file (tripsage deploy
-- does it from TRIPSAGE_EMBEDDING_DIM). 384 is all-MiniLM-L6-v2's, the local default.
DO $dimension$
DECLARE
    dim integer := coalesce(nullif(current_setting('tripsage.embedding_dim', true), ''), '384')::integer;
BEGIN
    IF dim NOT BETWEEN 1 AND 2000 THEN
        RAISE EXCEPTION 'tripsage.embedding_dim must be between 1 and 2000 (HNSW''s limit), not %', dim;
    END IF;
    IF dim <> 384 THEN
        EXECUTE format('ALTER TABLE public.memories ALTER COLUMN embedding TYPE extensions.vector(%s)', dim);
        EXECUTE format('ALTER TABLE public.session_memories ALTER COLUMN embedding TYPE extensions.vector(%s)', dim);
        EXECUTE format('ALTER TABLE public.session_memories_archive ALTER COLUMN embedding TYPE extensions.vector(%s)',
                       dim);
    END IF;
END
$dimension$;

-- 02_indexes: every foreign key is indexed (RLS helpers and cascades use them), plus what the jobs scan.

CREATE INDEX trips_user_id_idx ON public.trips (user_id);
CREATE INDEX trips_completed_idx ON public.trips (updated_at) WHERE status = 'completed';
CREATE INDEX trip_collaborators_user_id_idx ON public.trip_collaborators (user_id);
CREATE INDEX itinerary_items_trip_id_idx ON public.itinerary_items (trip_id, start_time);
CREATE INDEX flights_trip_id_idx ON public.flights (trip_id);
CREATE INDEX accommodations_trip_id_idx ON public.accommodations (trip_id);
CREATE INDEX bookings_trip_id_idx ON public.bookings (trip_id);
CREATE INDEX bookings_user_id_idx ON public.bookings (user_id);
CREATE INDEX bookings_flight_id_idx ON public.bookings (flight_id) WHERE flight_id IS NOT NULL;
CREATE INDEX bookings_accommodation_id_idx ON public.bookings (accommodation_id) WHERE accommodation_id IS NOT NULL;
CREATE INDEX chat_sessions_user_id_idx ON public.chat_sessions (user_id, created_at DESC);
CREATE INDEX chat_sessions_trip_id_idx ON public.chat_sessions (trip_id) WHERE trip_id IS NOT NULL;
CREATE INDEX chat_messages_session_id_idx ON public.chat_messages (session_id, created_at);
CREATE INDEX chat_tool_calls_message_id_idx ON public.chat_tool_calls (message_id);

CREATE INDEX memories_user_id_idx ON public.memories (user_id, memory_type);
CREATE INDEX memories_pending_embedding_idx ON public.memories (id) WHERE embedding IS NULL;
CREATE INDEX memories_embedding_hnsw_idx ON public.memories
    USING hnsw (embedding extensions.vector_cosine_ops);
CREATE INDEX session_memories_session_id_idx ON public.session_memories (session_id);
CREATE INDEX session_memories_user_id_idx ON public.session_memories (user_id);
CREATE INDEX session_memories_created_at_idx ON public.session_memories (created_at);
CREATE INDEX session_memories_embedding_hnsw_idx ON public.session_memories
    USING hnsw (embedding extensions.vector_cosine_ops);
CREATE INDEX session_memories_archive_user_id_idx ON public.session_memories_archive (user_id);

CREATE INDEX search_destinations_lookup_idx ON public.search_destinations (user_id, query_hash, expires_at DESC);
CREATE INDEX search_destinations_expires_at_idx ON public.search_destinations (expires_at);
CREATE INDEX search_flights_lookup_idx ON public.search_flights (user_id, query_hash, expires_at DESC);
CREATE INDEX search_flights_expires_at_idx ON public.search_flights (expires_at);
CREATE INDEX search_hotels_lookup_idx ON public.search_hotels (user_id, query_hash, expires_at DESC);
CREATE INDEX search_hotels_expires_at_idx ON public.search_hotels (expires_at);
CREATE INDEX search_activities_lookup_idx ON public.search_activities (user_id, query_hash, expires_at DESC);
CREATE INDEX search_activities_expires_at_idx ON public.search_activities (expires_at);

CREATE INDEX api_keys_expiring_idx ON public.api_keys (expires_at) WHERE is_active;
CREATE INDEX notifications_unread_idx ON public.notifications (user_id, created_at DESC) WHERE NOT read;
CREATE UNIQUE INDEX notifications_dedupe_key_idx ON public.notifications (user_id, type, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
CREATE INDEX system_metrics_type_idx ON public.system_metrics (metric_type, metric_name, created_at DESC);
CREATE INDEX webhook_logs_config_idx ON public.webhook_logs (webhook_config_id, created_at DESC);
CREATE INDEX audit_log_record_idx ON public.audit_log (table_name, record_id, occurred_at DESC);

-- 03_functions: helpers for triggers and policies, and the verification functions.
-- Every SECURITY DEFINER function pins its search_path.

CREATE FUNCTION public.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- The one place trip access is decided. SECURITY DEFINER, so policies that call it do not recurse through
-- the RLS of trips and trip_collaborators. Levels: 0 none, 1 view, 2 edit, 3 admin, 4 owner.
CREATE FUNCTION public.trip_access_level(p_trip_id bigint, p_user_id uuid) RETURNS integer
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    SELECT CASE
        WHEN p_user_id IS NULL THEN 0
        WHEN EXISTS (SELECT 1 FROM public.trips t WHERE t.id = p_trip_id AND t.user_id = p_user_id) THEN 4
        ELSE coalesce((
            SELECT CASE c.permission_level WHEN 'admin' THEN 3 WHEN 'edit' THEN 2 ELSE 1 END
            FROM public.trip_collaborators c
            WHERE c.trip_id = p_trip_id AND c.user_id = p_user_id
        ), 0)
    END
$$;

-- Does the current user (auth.uid()) have at least p_min ('view', 'edit', 'admin', 'owner') on the trip?
CREATE FUNCTION public.has_trip_access(p_trip_id bigint, p_min text DEFAULT 'view') RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, public
    AS $$
    SELECT public.trip_access_level(p_trip_id, auth.uid())
        >= CASE p_min WHEN 'view' THEN 1 WHEN 'edit' THEN 2 WHEN 'admin' THEN 3 WHEN 'owner' THEN 4 END
$$;

-- The original TripSage signature: may p_user_id do p_required_permission on the trip? (The owner counts as admin.)
-- Service-side only: a user could otherwise probe other users' access.
CREATE FUNCTION public.check_trip_permission(p_user_id uuid, p_trip_id bigint, p_required_permission text DEFAULT 'view')
    RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    IF p_required_permission NOT IN ('view', 'edit', 'admin') THEN
        RAISE EXCEPTION 'unknown permission %: expected view, edit or admin', p_required_permission
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN public.trip_access_level(p_trip_id, p_user_id)
        >= CASE p_required_permission WHEN 'view' THEN 1 WHEN 'edit' THEN 2 ELSE 3 END;
END
$$;

-- Chat visibility: the session's owner, or anyone who can view its trip.
CREATE FUNCTION public.chat_session_access(p_session_id uuid, p_user_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    SELECT CASE
        WHEN p_user_id IS NULL THEN 'none'
        WHEN s.user_id = p_user_id THEN 'owner'
        WHEN s.trip_id IS NOT NULL AND public.trip_access_level(s.trip_id, p_user_id) > 0 THEN 'view'
        ELSE 'none'
    END
    FROM public.chat_sessions s
    WHERE s.id = p_session_id
$$;

CREATE FUNCTION public.chat_message_session_id(p_message_id bigint) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
    SELECT m.session_id FROM public.chat_messages m WHERE m.id = p_message_id
$$;

-- One row per extension TripSage expects: native (the real extension), emulated (TripSage's emulation of its SQL
-- API, executed by the runtime), or missing.
CREATE FUNCTION public.verify_extensions()
    RETURNS TABLE (name text, status text, version text, note text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    wanted text;
    installed_version text;
    emulation text;
BEGIN
    FOREACH wanted IN ARRAY ARRAY['pg_cron', 'pg_net', 'vector', 'pg_stat_statements', 'btree_gist', 'pgcrypto'] LOOP
        name := wanted;
        SELECT e.extversion INTO installed_version FROM pg_extension e WHERE e.extname = wanted;
        -- An emulated extension marks its schema with a comment 'tripsage emulation of <ext> <version>'.
        SELECT obj_description(n.oid, 'pg_namespace') INTO emulation
        FROM pg_namespace n
        WHERE n.nspname = CASE wanted WHEN 'pg_cron' THEN 'cron' WHEN 'pg_net' THEN 'net' END;

        IF installed_version IS NOT NULL THEN
            status := 'native';
            version := installed_version;
            note := CASE
                WHEN wanted = 'pg_stat_statements'
                     AND NOT ('pg_stat_statements' = ANY (string_to_array(
                         replace(current_setting('shared_preload_libraries'), ' ', ''), ',')))
                    THEN 'installed but not in shared_preload_libraries: no statistics are collected'
                ELSE NULL
            END;
        ELSIF emulation LIKE 'tripsage emulation of %' THEN
            status := 'emulated';
            version := split_part(emulation, ' ', 5);
            note := 'SQL API emulated by TripSage; the runtime executes it';
        ELSE
            status := 'missing';
            version := NULL;
            note := CASE wanted
                WHEN 'pg_cron' THEN CASE
                    WHEN EXISTS (SELECT 1 FROM pg_available_extensions a WHERE a.name = 'pg_cron')
                        THEN format('pg_cron is available but only in database %s (cron.database_name)',
                                    coalesce(current_setting('cron.database_name', true), 'postgres (not preloaded)'))
                    ELSE 'not available on this server and not emulated'
                END
                WHEN 'pg_net' THEN 'not available on this server and not emulated'
                WHEN 'pgcrypto' THEN 'not available on this server; not required (TripSage encrypts in the runtime)'
                ELSE 'not available on this server'
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- (component, status, details) for each part of the automation plane. status is ok, warning or error; the CLI's
-- `tripsage verify` fails on any error.
CREATE FUNCTION public.verify_automation_setup()
    RETURNS TABLE (component text, status text, details text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    ext record;
    missing text[];
    expected_tables text[] := ARRAY['chat_messages', 'chat_sessions', 'chat_tool_calls', 'itinerary_items',
                                    'trip_collaborators', 'trips'];
    expected_jobs text[] := ARRAY['cleanup-expired-search-cache', 'archive-old-session-memories',
                                  'update-table-statistics', 'monitor-expiring-api-keys', 'archive-completed-trips',
                                  'vacuum-maintenance', 'generate-memory-embeddings', 'monitor-database-health'];
    found_jobs text[];
BEGIN
    -- Extensions: vector and btree_gist are required; the others are reported.
    FOR ext IN SELECT * FROM public.verify_extensions() LOOP
        component := 'extension:' || ext.name;
        status := CASE
            WHEN ext.status IN ('native', 'emulated') AND ext.note IS NULL THEN 'ok'
            WHEN ext.status IN ('native', 'emulated') THEN 'warning'
            WHEN ext.name IN ('pgcrypto', 'pg_stat_statements') THEN 'warning'
            ELSE 'error'
        END;
        details := ext.status || coalesce(' ' || ext.version, '') || coalesce(': ' || ext.note, '');
        RETURN NEXT;
    END LOOP;

    component := 'realtime';
    SELECT array_agg(t ORDER BY t) INTO missing
    FROM unnest(expected_tables) AS t
    WHERE NOT EXISTS (SELECT 1 FROM pg_publication_tables p
                      WHERE p.pubname = 'supabase_realtime' AND p.schemaname = 'public' AND p.tablename = t);
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        status := 'error';
        details := 'publication supabase_realtime does not exist';
    ELSIF missing IS NOT NULL THEN
        status := 'error';
        details := 'publication supabase_realtime lacks ' || array_to_string(missing, ', ');
    ELSE
        status := 'ok';
        details := format('publication supabase_realtime holds %s tables',
                          (SELECT count(*) FROM pg_publication_tables p WHERE p.pubname = 'supabase_realtime'));
    END IF;
    RETURN NEXT;

    component := 'monitoring_tables';
    SELECT array_agg(t) INTO missing FROM unnest(ARRAY['system_metrics', 'notifications']) AS t
    WHERE to_regclass('public.' || t) IS NULL;
    status := CASE WHEN missing IS NULL THEN 'ok' ELSE 'error' END;
    details := coalesce('missing ' || array_to_string(missing, ', '), 'public.system_metrics, public.notifications');
    RETURN NEXT;

    component := 'webhook_tables';
    SELECT array_agg(t) INTO missing FROM unnest(ARRAY['webhook_configs', 'webhook_logs']) AS t
    WHERE to_regclass('public.' || t) IS NULL;
    status := CASE WHEN missing IS NULL THEN 'ok' ELSE 'error' END;
    details := coalesce('missing ' || array_to_string(missing, ', '), 'public.webhook_configs, public.webhook_logs');
    RETURN NEXT;

    component := 'scheduled_jobs';
    IF to_regclass('cron.job') IS NULL THEN
        status := 'error';
        details := 'no cron.job table: neither pg_cron nor its emulation is installed';
    ELSE
        EXECUTE 'SELECT array_agg(jobname::text) FROM cron.job WHERE active AND jobname = ANY ($1)'
            INTO found_jobs USING expected_jobs;
        SELECT array_agg(j ORDER BY j) INTO missing FROM unnest(expected_jobs) AS j
        WHERE NOT (j = ANY (coalesce(found_jobs, '{}')));
        status := CASE WHEN missing IS NULL THEN 'ok' ELSE 'error' END;
        details := CASE WHEN missing IS NULL THEN format('%s maintenance jobs scheduled and active',
                                                         cardinality(expected_jobs))
                        ELSE 'not scheduled or inactive: ' || array_to_string(missing, ', ') END;
    END IF;
    RETURN NEXT;
END
$$;

-- 04_triggers: updated_at maintenance and the audit trail of secret-bearing tables.

CREATE TRIGGER trips_set_updated_at BEFORE UPDATE ON public.trips
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER trip_collaborators_set_updated_at BEFORE UPDATE ON public.trip_collaborators
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER itinerary_items_set_updated_at BEFORE UPDATE ON public.itinerary_items
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER flights_set_updated_at BEFORE UPDATE ON public.flights
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER accommodations_set_updated_at BEFORE UPDATE ON public.accommodations
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER bookings_set_updated_at BEFORE UPDATE ON public.bookings
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER chat_sessions_set_updated_at BEFORE UPDATE ON public.chat_sessions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER memories_set_updated_at BEFORE UPDATE ON public.memories
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER api_keys_set_updated_at BEFORE UPDATE ON public.api_keys
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER webhook_configs_set_updated_at BEFORE UPDATE ON public.webhook_configs
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Records who created, changed or deleted a row of api_keys or webhook_configs: the columns that changed, never
-- their values (they may be ciphertext, and ciphertext does not belong in an audit trail either).
CREATE FUNCTION public.audit_secret_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
DECLARE
    row_data jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
    changed text[];
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT array_agg(key ORDER BY key) INTO changed
        FROM jsonb_each(to_jsonb(NEW)) AS n(key, value)
        WHERE n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key AND n.key NOT IN ('updated_at', 'last_used_at');
        IF changed IS NULL THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO public.audit_log (actor_id, actor_role, action, table_name, record_id, details)
    VALUES (
        auth.uid(),
        coalesce(auth.role(), session_user::text),
        CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END,
        TG_TABLE_NAME,
        row_data ->> 'id',
        jsonb_strip_nulls(jsonb_build_object(
            'changed_columns', to_jsonb(changed),
            'user_id', row_data -> 'user_id',
            'service_name', row_data -> 'service_name',
            'key_name', row_data -> 'key_name',
            'name', row_data -> 'name'
        ))
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_audit AFTER INSERT OR UPDATE OR DELETE ON public.api_keys
    FOR EACH ROW EXECUTE FUNCTION public.audit_secret_change();
CREATE TRIGGER webhook_configs_audit AFTER INSERT OR UPDATE OR DELETE ON public.webhook_configs
    FOR EACH ROW EXECUTE FUNCTION public.audit_secret_change();

-- The runtime decrypts secrets, so it records reads (and rotations) through this function.
CREATE FUNCTION public.audit_secret_access(p_action text, p_table text, p_record_id text, p_details jsonb DEFAULT '{}')
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public
    AS $$
BEGIN
    IF p_action NOT IN ('read', 'rotate') THEN
        RAISE EXCEPTION 'audit_secret_access records read or rotate, not %', p_action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_table NOT IN ('api_keys', 'webhook_configs') THEN
        RAISE EXCEPTION 'audit_secret_access: unknown table %', p_table USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.audit_log (actor_id, actor_role, action, table_name, record_id, details)
    VALUES (auth.uid(), coalesce(auth.role(), session_user::text), p_action, p_table, p_record_id,
            coalesce(p_details, '{}'));
END
$$;

-- 05_policies: privileges and row-level security. RLS is on for every table in public. Policies reach trip access
-- only through public.trip_access_level (SECURITY DEFINER), so no policy ever queries another RLS-protected table
-- and no policy can recurse. anon gets nothing; service_role bypasses RLS (BYPASSRLS), as on Supabase.

-- Start from nothing on TripSage's own objects, named one by one (Supabase's default privileges grant everything to
-- anon and authenticated; a blanket REVOKE ... IN SCHEMA public would strip a project's own tables too), then grant.
REVOKE ALL ON TABLE public.trips, public.trip_collaborators, public.itinerary_items, public.flights,
    public.accommodations, public.bookings, public.chat_sessions, public.chat_messages, public.chat_tool_calls,
    public.memories, public.session_memories, public.session_memories_archive, public.search_destinations,
    public.search_flights, public.search_hotels, public.search_activities, public.api_keys, public.notifications,
    public.system_metrics, public.webhook_configs, public.webhook_logs, public.audit_log FROM anon, authenticated;
REVOKE ALL ON FUNCTION public.set_updated_at(), public.trip_access_level(bigint, uuid),
    public.has_trip_access(bigint, text), public.check_trip_permission(uuid, bigint, text),
    public.chat_session_access(uuid, uuid), public.chat_message_session_id(bigint), public.verify_extensions(),
    public.verify_automation_setup(), public.audit_secret_change(), public.audit_secret_access(text, text, text, jsonb)
    FROM PUBLIC, anon, authenticated;
GRANT ALL ON TABLE public.trips, public.trip_collaborators, public.itinerary_items, public.flights,
    public.accommodations, public.bookings, public.chat_sessions, public.chat_messages, public.chat_tool_calls,
    public.memories, public.session_memories, public.session_memories_archive, public.search_destinations,
    public.search_flights, public.search_hotels, public.search_activities, public.api_keys, public.notifications,
    public.system_metrics, public.webhook_configs, public.webhook_logs, public.audit_log TO service_role;
GRANT USAGE, SELECT ON SEQUENCE public.accommodations_id_seq, public.api_keys_id_seq, public.audit_log_id_seq,
    public.bookings_id_seq, public.chat_messages_id_seq, public.chat_tool_calls_id_seq, public.flights_id_seq,
    public.itinerary_items_id_seq, public.memories_id_seq, public.notifications_id_seq,
    public.search_activities_id_seq, public.search_destinations_id_seq, public.search_flights_id_seq,
    public.search_hotels_id_seq, public.session_memories_id_seq, public.system_metrics_id_seq,
    public.trip_collaborators_id_seq, public.trips_id_seq, public.webhook_configs_id_seq, public.webhook_logs_id_seq
    TO service_role;

GRANT EXECUTE ON FUNCTION public.set_updated_at(), public.audit_secret_change() TO PUBLIC;
GRANT EXECUTE ON FUNCTION public.trip_access_level(bigint, uuid), public.has_trip_access(bigint, text),
    public.chat_session_access(uuid, uuid), public.chat_message_session_id(bigint)
    TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.check_trip_permission(uuid, bigint, text), public.verify_extensions(),
    public.verify_automation_setup(), public.audit_secret_access(text, text, text, jsonb)
    TO service_role, tripsage_automation;

-- What a signed-in user may touch at all; RLS then decides which rows. Ownership columns are not updatable.
GRANT SELECT, INSERT, DELETE ON public.trips, public.trip_collaborators, public.itinerary_items, public.flights,
    public.accommodations, public.bookings, public.chat_sessions, public.chat_messages, public.chat_tool_calls,
    public.memories, public.session_memories, public.search_destinations, public.search_flights,
    public.search_hotels, public.search_activities, public.api_keys
    TO authenticated;
GRANT UPDATE (name, destination, start_date, end_date, budget, travelers, status, trip_type, flexibility, notes,
    search_metadata) ON public.trips TO authenticated;
GRANT UPDATE (permission_level) ON public.trip_collaborators TO authenticated;
GRANT UPDATE (title, description, item_type, start_time, end_time, location, price, currency, booking_status,
    external_id, metadata) ON public.itinerary_items TO authenticated;
GRANT UPDATE (origin, destination, departure_date, return_date, flight_class, price, currency, airline,
    flight_number, booking_status, external_id, metadata) ON public.flights TO authenticated;
GRANT UPDATE (name, address, check_in_date, check_out_date, room_type, price_per_night, total_price, rating,
    amenities, booking_status, external_id, metadata) ON public.accommodations TO authenticated;
GRANT UPDATE (provider, confirmation_code, status, price, currency, metadata, booked_at) ON public.bookings
    TO authenticated;
GRANT UPDATE (trip_id, ended_at, metadata) ON public.chat_sessions TO authenticated;
GRANT UPDATE (content, metadata) ON public.chat_messages TO authenticated;
GRANT UPDATE (result, status, error_message, completed_at) ON public.chat_tool_calls TO authenticated;
GRANT UPDATE (memory_type, content, metadata) ON public.memories TO authenticated;
GRANT UPDATE (content, metadata) ON public.session_memories TO authenticated;
GRANT UPDATE (results, search_metadata, expires_at) ON public.search_destinations, public.search_flights,
    public.search_hotels, public.search_activities TO authenticated;
GRANT UPDATE (key_name, is_active, expires_at, metadata) ON public.api_keys TO authenticated;
GRANT SELECT, DELETE ON public.session_memories_archive TO authenticated;
GRANT SELECT ON public.notifications TO authenticated;
GRANT UPDATE (read) ON public.notifications TO authenticated;

ALTER TABLE public.trips ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.trip_collaborators ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.itinerary_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.flights ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.accommodations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.chat_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.chat_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.chat_tool_calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_memories ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.session_memories_archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.search_destinations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.search_flights ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.search_hotels ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.search_activities ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;
-- No policies on these: only service_role (BYPASSRLS) and the table owner see them.
ALTER TABLE public.system_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.webhook_configs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.webhook_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;

-- trips: members see; the owner creates and deletes; edit and admin collaborators update.
CREATE POLICY trips_select ON public.trips FOR SELECT TO authenticated
    USING (public.trip_access_level(id, auth.uid()) > 0);
CREATE POLICY trips_insert ON public.trips FOR INSERT TO authenticated
    WITH CHECK (user_id = auth.uid());
CREATE POLICY trips_update ON public.trips FOR UPDATE TO authenticated
    USING (public.trip_access_level(id, auth.uid()) >= 2)
    WITH CHECK (public.trip_access_level(id, auth.uid()) >= 2);
CREATE POLICY trips_delete ON public.trips FOR DELETE TO authenticated
    USING (user_id = auth.uid());

-- trip_collaborators: members see the trip's members; the owner and admins manage them; anyone may leave.
CREATE POLICY trip_collaborators_select ON public.trip_collaborators FOR SELECT TO authenticated
    USING (user_id = auth.uid() OR public.trip_access_level(trip_id, auth.uid()) > 0);
CREATE POLICY trip_collaborators_insert ON public.trip_collaborators FOR INSERT TO authenticated
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 3 AND added_by = auth.uid());
CREATE POLICY trip_collaborators_update ON public.trip_collaborators FOR UPDATE TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) >= 3)
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 3);
CREATE POLICY trip_collaborators_delete ON public.trip_collaborators FOR DELETE TO authenticated
    USING (user_id = auth.uid() OR public.trip_access_level(trip_id, auth.uid()) >= 3);

-- Trip children: members see; edit, admin and the owner write.
CREATE POLICY itinerary_items_select ON public.itinerary_items FOR SELECT TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) > 0);
CREATE POLICY itinerary_items_write ON public.itinerary_items FOR ALL TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) >= 2)
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 2);
CREATE POLICY flights_select ON public.flights FOR SELECT TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) > 0);
CREATE POLICY flights_write ON public.flights FOR ALL TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) >= 2)
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 2);
CREATE POLICY accommodations_select ON public.accommodations FOR SELECT TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) > 0);
CREATE POLICY accommodations_write ON public.accommodations FOR ALL TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) >= 2)
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 2);
CREATE POLICY bookings_select ON public.bookings FOR SELECT TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) > 0);
-- A booking is made in the booker's name; edit collaborators may then change or remove it.
CREATE POLICY bookings_insert ON public.bookings FOR INSERT TO authenticated
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 2 AND user_id = auth.uid());
CREATE POLICY bookings_update ON public.bookings FOR UPDATE TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) >= 2)
    WITH CHECK (public.trip_access_level(trip_id, auth.uid()) >= 2);
CREATE POLICY bookings_delete ON public.bookings FOR DELETE TO authenticated
    USING (public.trip_access_level(trip_id, auth.uid()) >= 2);

-- Chat: the session's owner, and viewers of its trip, see it; only the owner writes.
CREATE POLICY chat_sessions_select ON public.chat_sessions FOR SELECT TO authenticated
    USING (user_id = auth.uid() OR (trip_id IS NOT NULL AND public.trip_access_level(trip_id, auth.uid()) > 0));
CREATE POLICY chat_sessions_insert ON public.chat_sessions FOR INSERT TO authenticated
    WITH CHECK (user_id = auth.uid() AND (trip_id IS NULL OR public.trip_access_level(trip_id, auth.uid()) > 0));
CREATE POLICY chat_sessions_update ON public.chat_sessions FOR UPDATE TO authenticated
    USING (user_id = auth.uid())
    WITH CHECK (user_id = auth.uid() AND (trip_id IS NULL OR public.trip_access_level(trip_id, auth.uid()) > 0));
CREATE POLICY chat_sessions_delete ON public.chat_sessions FOR DELETE TO authenticated
    USING (user_id = auth.uid());
CREATE POLICY chat_messages_select ON public.chat_messages FOR SELECT TO authenticated
    USING (public.chat_session_access(session_id, auth.uid()) <> 'none');
CREATE POLICY chat_messages_write ON public.chat_messages FOR ALL TO authenticated
    USING (public.chat_session_access(session_id, auth.uid()) = 'owner')
    WITH CHECK (public.chat_session_access(session_id, auth.uid()) = 'owner');
CREATE POLICY chat_tool_calls_select ON public.chat_tool_calls FOR SELECT TO authenticated
    USING (public.chat_session_access(public.chat_message_session_id(message_id), auth.uid()) <> 'none');
CREATE POLICY chat_tool_calls_write ON public.chat_tool_calls FOR ALL TO authenticated
    USING (public.chat_session_access(public.chat_message_session_id(message_id), auth.uid()) = 'owner')
    WITH CHECK (public.chat_session_access(public.chat_message_session_id(message_id), auth.uid()) = 'owner');

-- Personal tables: each user sees and writes only their own rows.
CREATE POLICY memories_own ON public.memories FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY session_memories_own ON public.session_memories FOR ALL TO authenticated
    USING (user_id = auth.uid())
    WITH CHECK (user_id = auth.uid() AND public.chat_session_access(session_id, auth.uid()) = 'owner');
CREATE POLICY session_memories_archive_own ON public.session_memories_archive FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY search_destinations_own ON public.search_destinations FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY search_flights_own ON public.search_flights FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY search_hotels_own ON public.search_hotels FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY search_activities_own ON public.search_activities FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
CREATE POLICY api_keys_own ON public.api_keys FOR ALL TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());
-- Notifications are written by the automation (service_role); users read them and mark them read.
CREATE POLICY notifications_select_own ON public.notifications FOR SELECT TO authenticated
    USING (user_id = auth.uid());
CREATE POLICY notifications_update_own ON public.notifications FOR UPDATE TO authenticated
    USING (user_id = auth.uid()) WITH CHECK (user_id = auth.uid());

-- 06_realtime: the publication that Supabase Realtime (and our gateway) reads. Created if absent, never dropped;
-- the six collaborative tables are added when missing, and tables added from a dashboard are left in place.

DO $publication$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
        CREATE PUBLICATION supabase_realtime;
    END IF;
    FOREACH t IN ARRAY ARRAY['trips', 'chat_messages', 'chat_sessions', 'trip_collaborators', 'itinerary_items',
                             'chat_tool_calls'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_publication_tables
                       WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
            EXECUTE format('ALTER PUBLICATION supabase_realtime ADD TABLE public.%I', t);
        END IF;
    END LOOP;
END
$publication$;
