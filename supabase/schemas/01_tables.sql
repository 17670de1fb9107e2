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
