-- Seed for the RLS matrix: five users around trip 1 (owner, view/edit/admin collaborators, a stranger who owns
-- trip 2). Fixed ids so the matrix can name rows. Run as the superuser (RLS does not apply).
INSERT INTO auth.users (id, email) VALUES
    ('00000000-0000-4000-8000-00000000000a', 'owner@example.test'),
    ('00000000-0000-4000-8000-00000000000b', 'viewer@example.test'),
    ('00000000-0000-4000-8000-00000000000c', 'editor@example.test'),
    ('00000000-0000-4000-8000-00000000000d', 'admin@example.test'),
    ('00000000-0000-4000-8000-00000000000e', 'stranger@example.test'),
    ('00000000-0000-4000-8000-00000000000f', 'newcomer@example.test');

INSERT INTO public.trips (id, user_id, name, destination, start_date, end_date) OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'Lisbon', 'Lisbon, PT', '2027-05-01', '2027-05-08'),
    (2, '00000000-0000-4000-8000-00000000000e', 'Oslo', 'Oslo, NO', '2027-06-01', '2027-06-05');

INSERT INTO public.trip_collaborators (id, trip_id, user_id, permission_level, added_by) OVERRIDING SYSTEM VALUE VALUES
    (1, 1, '00000000-0000-4000-8000-00000000000b', 'view', '00000000-0000-4000-8000-00000000000a'),
    (2, 1, '00000000-0000-4000-8000-00000000000c', 'edit', '00000000-0000-4000-8000-00000000000a'),
    (3, 1, '00000000-0000-4000-8000-00000000000d', 'admin', '00000000-0000-4000-8000-00000000000a');

INSERT INTO public.itinerary_items (id, trip_id, title) OVERRIDING SYSTEM VALUE VALUES
    (1, 1, 'Tram 28'), (2, 2, 'Fjord cruise');
INSERT INTO public.flights (id, trip_id, origin, destination, departure_date, price) OVERRIDING SYSTEM VALUE VALUES
    (1, 1, 'JFK', 'LIS', '2027-05-01', 420), (2, 2, 'JFK', 'OSL', '2027-06-01', 510);
INSERT INTO public.accommodations (id, trip_id, name, check_in_date, check_out_date, price_per_night, total_price)
    OVERRIDING SYSTEM VALUE VALUES
    (1, 1, 'Alfama Inn', '2027-05-01', '2027-05-08', 100, 700),
    (2, 2, 'Grand Oslo', '2027-06-01', '2027-06-05', 200, 800);
INSERT INTO public.bookings (id, trip_id, user_id, booking_type, price) OVERRIDING SYSTEM VALUE VALUES
    (1, 1, '00000000-0000-4000-8000-00000000000a', 'flight', 420),
    (2, 2, '00000000-0000-4000-8000-00000000000e', 'flight', 510);

INSERT INTO public.chat_sessions (id, user_id, trip_id) VALUES
    ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000000a', 1),
    ('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-00000000000a', NULL),
    ('10000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-00000000000e', 2);
INSERT INTO public.chat_messages (id, session_id, role, content) OVERRIDING SYSTEM VALUE VALUES
    (1, '10000000-0000-4000-8000-000000000001', 'user', 'Find us a hotel in Alfama'),
    (2, '10000000-0000-4000-8000-000000000002', 'user', 'A private note'),
    (3, '10000000-0000-4000-8000-000000000003', 'user', 'Fjords please');
INSERT INTO public.chat_tool_calls (id, message_id, tool_id, tool_name) OVERRIDING SYSTEM VALUE VALUES
    (1, 1, 'call-1', 'search_hotels'), (2, 2, 'call-2', 'note'), (3, 3, 'call-3', 'search_cruises');

INSERT INTO public.memories (id, user_id, content) OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'Prefers boutique hotels'),
    (2, '00000000-0000-4000-8000-00000000000e', 'Vegetarian');
INSERT INTO public.session_memories (id, session_id, user_id, content) OVERRIDING SYSTEM VALUE VALUES
    (1, '10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000000a', 'Wants Alfama'),
    (2, '10000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-00000000000e', 'Wants fjords');
INSERT INTO public.session_memories_archive (id, session_id, user_id, content, created_at) VALUES
    (101, '10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-00000000000a', 'Old A', now()),
    (102, '10000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-00000000000e', 'Old S', now());
INSERT INTO public.search_destinations (id, user_id, query, query_hash, results, source, expires_at)
    OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'lisbon', 'h1', '[]', 'cached', now() + interval '1 day'),
    (2, '00000000-0000-4000-8000-00000000000e', 'oslo', 'h2', '[]', 'cached', now() + interval '1 day');
INSERT INTO public.search_flights (id, user_id, origin, destination, departure_date, query_hash, results, source,
    expires_at) OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'JFK', 'LIS', '2027-05-01', 'h1', '[]', 'cached', now() + interval '1 day'),
    (2, '00000000-0000-4000-8000-00000000000e', 'JFK', 'OSL', '2027-06-01', 'h2', '[]', 'cached', now() + interval '1 day');
INSERT INTO public.search_hotels (id, user_id, destination, check_in_date, check_out_date, query_hash, results, source,
    expires_at) OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'Lisbon', '2027-05-01', '2027-05-08', 'h1', '[]', 'cached',
     now() + interval '1 day'),
    (2, '00000000-0000-4000-8000-00000000000e', 'Oslo', '2027-06-01', '2027-06-05', 'h2', '[]', 'cached',
     now() + interval '1 day');
INSERT INTO public.search_activities (id, user_id, destination, query_hash, results, source, expires_at)
    OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'Lisbon', 'h1', '[]', 'cached', now() + interval '1 day'),
    (2, '00000000-0000-4000-8000-00000000000e', 'Oslo', 'h2', '[]', 'cached', now() + interval '1 day');
INSERT INTO public.api_keys (id, user_id, service_name, key_name, encrypted_key, key_hash) OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'openai', 'main', '\x01', 'x'),
    (2, '00000000-0000-4000-8000-00000000000e', 'openai', 'main', '\x01', 'y');
INSERT INTO public.notifications (id, user_id, type, title, message) OVERRIDING SYSTEM VALUE VALUES
    (1, '00000000-0000-4000-8000-00000000000a', 'info', 'Hello', 'Welcome'),
    (2, '00000000-0000-4000-8000-00000000000e', 'info', 'Hello', 'Welcome');
INSERT INTO public.system_metrics (metric_type, metric_name, value) VALUES ('database', 'size_bytes', 1);
INSERT INTO public.webhook_configs (id, name, url) OVERRIDING SYSTEM VALUE VALUES (1, 'matrix', 'https://example.test/hook');
INSERT INTO public.webhook_logs (webhook_config_id, event_type, payload) VALUES (1, 'test', '{}');

-- Move every identity past the fixed ids above.
DO $$
DECLARE
    col record;
BEGIN
    FOR col IN SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND is_identity = 'YES' LOOP
        PERFORM setval(pg_get_serial_sequence(format('public.%I', col.table_name), col.column_name), 1000);
    END LOOP;
END
$$;
