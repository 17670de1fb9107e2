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
-- m = 8 (pgvector's default is 16): each embedding written links to half as many neighbours, about half of
-- PostgreSQL's CPU per memory embedded; search_memories compensates with ef_search 100 (recall@10 >= 0.99 of exact
-- search, measured by bench/bench_embeddings.py).
CREATE INDEX memories_embedding_hnsw_idx ON public.memories
    USING hnsw (embedding extensions.vector_cosine_ops) WITH (m = 8, ef_construction = 64);
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
