-- memories_embedding_hnsw_idx rebuilt with m = 8 (pgvector's default is 16): each embedding written links to half
-- as many neighbours, about half of PostgreSQL's CPU per memory embedded; search_memories now looks at 100 candidates
-- (hnsw.ef_search, unless the caller asked for more), so recall@10 stays >= 0.99 of exact search
-- (bench/bench_embeddings.py measures it). (supabase/schemas/02_indexes.sql and 10_functions.sql have the same
-- definitions.) The rebuild holds a lock on public.memories (writes wait) while it builds.

DROP INDEX public.memories_embedding_hnsw_idx;
CREATE INDEX memories_embedding_hnsw_idx ON public.memories
    USING hnsw (embedding extensions.vector_cosine_ops) WITH (m = 8, ef_construction = 64);

CREATE OR REPLACE FUNCTION public.search_memories(query_embedding extensions.vector, p_user_id uuid, match_count integer DEFAULT 5,
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
