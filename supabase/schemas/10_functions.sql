-- 10_functions: what the runtime's functions (/functions/v1/trip-events, /functions/v1/ai-processing) keep in the
-- database: the webhook-ids already processed (idempotency), the email outbox, the recipients' addresses, and
-- search_memories over the HNSW index.
-- (This file is migration 20261125020200_functions.sql.)

-- The runtime's own tables live in their own schema (PostgREST exposes public, not this).
CREATE SCHEMA functions;
GRANT USAGE ON SCHEMA functions TO service_role, tripsage_automation;

-- One row per (function, webhook-id) whose work is committed: inserted in the work's transaction, so a
-- redelivered message finds it and is answered with the stored response, and a failed attempt leaves nothing.
CREATE TABLE functions.processed_webhooks (
    function_name text NOT NULL,
    webhook_id text NOT NULL CHECK (length(webhook_id) BETWEEN 1 AND 256),
    event_type text NOT NULL,
    response jsonb NOT NULL DEFAULT '{}',
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (function_name, webhook_id)
);
CREATE INDEX processed_webhooks_processed_at_idx ON functions.processed_webhooks (processed_at);

-- Emails are queued in the transaction that writes the notification and sent after commit by the runtime
-- (SKIP LOCKED claims, leased, retried with backoff). dedupe_key makes a redelivered event queue nothing new.
CREATE TABLE functions.email_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key text NOT NULL UNIQUE,
    recipient text NOT NULL CHECK (position('@' IN recipient) > 1),
    subject text NOT NULL,
    body_text text NOT NULL,
    body_html text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    leased_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz
);
CREATE INDEX email_outbox_due_idx ON functions.email_outbox (next_attempt_at) WHERE status = 'pending';

ALTER TABLE functions.processed_webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE functions.email_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY processed_webhooks_runtime ON functions.processed_webhooks TO tripsage_automation USING (true);
CREATE POLICY email_outbox_runtime ON functions.email_outbox TO tripsage_automation USING (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON functions.processed_webhooks, functions.email_outbox
    TO service_role, tripsage_automation;

-- Email addresses and display names of users (auth.users is not readable by service_role on every platform).
-- raw_user_meta_data is read through to_jsonb(u): an existing auth schema without that column (not GoTrue's) works too.
CREATE FUNCTION functions.user_contacts(p_user_ids uuid[])
    RETURNS TABLE (user_id uuid, email text, display_name text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = ''
    AS $$
    SELECT u.id, u.email::text,
           coalesce(nullif(to_jsonb(u) #>> '{raw_user_meta_data,full_name}', ''),
                    nullif(to_jsonb(u) #>> '{raw_user_meta_data,name}', ''),
                    split_part(u.email::text, '@', 1))
    FROM auth.users u
    WHERE u.id = ANY (p_user_ids)
$$;
REVOKE ALL ON FUNCTION functions.user_contacts(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION functions.user_contacts(uuid[]) TO service_role, tripsage_automation;

-- Semantic search over a user's long-term memories: cosine distance through memories_embedding_hnsw_idx.
-- SECURITY INVOKER: RLS decides (a signed-in user sees only their own memories), and a user asking for someone
-- else's is refused outright. filters: memory_type (text), metadata (jsonb containment), min_similarity (0-1),
-- model (embedding_model; only vectors of the query's model are comparable). The index is built with m = 8 (cheap
-- to maintain on write, see 02_indexes.sql), so the search looks at 100 candidates (hnsw.ef_search, unless the caller
-- asked for more): recall@10 >= 0.99 of exact search (bench/bench_embeddings.py measures it).
CREATE FUNCTION public.search_memories(query_embedding extensions.vector, p_user_id uuid, match_count integer DEFAULT 5,
                                       filters jsonb DEFAULT '{}')
    RETURNS TABLE (id bigint, content text, memory_type text, metadata jsonb, confidence real, similarity double precision,
                   created_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = ''
    AS $$
DECLARE
    caller uuid := auth.uid();
    -- pgvector >= 0.8: keep scanning the HNSW graph until match_count rows pass the user filter (without it, a
    -- user with few memories among many would get fewer results than exist). Restored before returning.
    previous_scan text := current_setting('hnsw.iterative_scan', true);
    previous_ef_search text := current_setting('hnsw.ef_search', true);
BEGIN
    IF caller IS NOT NULL AND caller IS DISTINCT FROM p_user_id THEN
        RAISE EXCEPTION 'search_memories: a user may only search their own memories' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF match_count IS NULL OR match_count < 1 OR match_count > 200 THEN
        RAISE EXCEPTION 'search_memories: match_count must be between 1 and 200' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF previous_scan IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', 'strict_order', true);
    END IF;
    IF previous_ef_search IS NOT NULL THEN
        PERFORM set_config('hnsw.ef_search', greatest(previous_ef_search::integer, 100)::text, true);
    END IF;
    RETURN QUERY
    SELECT m.id, m.content, m.memory_type, m.metadata, m.confidence, 1 - (m.embedding OPERATOR(extensions.<=>) query_embedding),
           m.created_at
    FROM public.memories m
    WHERE m.user_id = p_user_id
      AND m.embedding IS NOT NULL
      AND (filters ->> 'memory_type' IS NULL OR m.memory_type = filters ->> 'memory_type')
      AND (filters -> 'metadata' IS NULL OR m.metadata @> (filters -> 'metadata'))
      AND (filters ->> 'model' IS NULL OR m.embedding_model = filters ->> 'model')
      AND (filters ->> 'min_similarity' IS NULL
           OR 1 - (m.embedding OPERATOR(extensions.<=>) query_embedding) >= (filters ->> 'min_similarity')::double precision)
    ORDER BY m.embedding OPERATOR(extensions.<=>) query_embedding
    LIMIT match_count;
    IF previous_scan IS NOT NULL THEN
        PERFORM set_config('hnsw.iterative_scan', previous_scan, true);
    END IF;
    IF previous_ef_search IS NOT NULL THEN
        PERFORM set_config('hnsw.ef_search', previous_ef_search, true);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.search_memories(extensions.vector, uuid, integer, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.search_memories(extensions.vector, uuid, integer, jsonb)
    TO authenticated, service_role, tripsage_automation;
