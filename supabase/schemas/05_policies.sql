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
-- The owner is matched on the row itself: trip_access_level reads trips with the statement's snapshot, which does not
-- hold a row the same statement inserts (INSERT ... RETURNING, supabase-js's .insert().select()).
CREATE POLICY trips_select ON public.trips FOR SELECT TO authenticated
    USING (user_id = auth.uid() OR public.trip_access_level(id, auth.uid()) > 0);
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
