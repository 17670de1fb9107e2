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
