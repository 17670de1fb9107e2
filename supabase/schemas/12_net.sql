-- net: pg_net 0.20, emulated when the server has no pg_net.
-- (This file is migrations 20261124201000_webhooks.sql, 20261127170000_net_parity.sql and
-- 20261127200000_net_worker_presence.sql.)

-- pg_net 0.20's SQL API, when the server has no pg_net: TripSage's runtime is the background worker. Requests queue
-- in net.http_request_queue (a logged table: unlike pg_net's unlogged one, a queued request survives a crash); the
-- runtime sends them once the caller commits (it only sees committed rows) and stores each response in
-- net._http_response for pg_net.ttl. Differences from pg_net are listed in docs/webhooks.md.
DO $net$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_net') THEN
        RETURN;
    END IF;
    CREATE SCHEMA net;
    COMMENT ON SCHEMA net IS 'tripsage emulation of pg_net 0.20';
    CREATE DOMAIN net.http_method AS text
        CHECK (VALUE ILIKE 'get' OR VALUE ILIKE 'post' OR VALUE ILIKE 'delete');
    CREATE TABLE net.http_request_queue (
        id bigserial,
        method net.http_method NOT NULL,
        url text NOT NULL,
        headers jsonb,
        body bytea,
        timeout_milliseconds integer NOT NULL
    );
    CREATE TABLE net._http_response (
        id bigint,
        status_code integer,
        content_type text,
        headers jsonb,
        content text,
        timed_out boolean,
        error_msg text,
        created timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX _http_response_created_idx ON net._http_response (created);
    CREATE INDEX http_request_queue_id_idx ON net.http_request_queue (id);
END
$net$;

-- The API (the same text in migration 20261127170000_net_parity.sql, but for net._worker_is_up and its two callers:
-- migration 20261127200000_net_worker_presence.sql). Every role may use it, as with pg_net's
-- grants to PUBLIC, except anon and authenticated (PostgREST's request roles): they are refused with PostgreSQL's
-- own error (42501). PostgreSQL cannot withhold a PUBLIC grant from one role, so the refusal is made by
-- net._refuse_request_roles: called first by every function, and by the tables' row security policies as a
-- pseudo-constant qual (evaluated once per statement, even on an empty table).
DO $net_api$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace
                   WHERE nspname = 'net' AND obj_description(oid, 'pg_namespace') LIKE 'tripsage emulation of pg_net%') THEN
        RETURN;
    END IF;

    CREATE FUNCTION net._refuse_request_roles(object text) RETURNS boolean
        LANGUAGE plpgsql STABLE
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        IF current_user IN ('anon', 'authenticated') THEN
            RAISE EXCEPTION 'permission denied for %', object USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN true;
    END
    $fn$;

    ALTER TABLE net.http_request_queue ENABLE ROW LEVEL SECURITY;
    CREATE POLICY request_roles_refused ON net.http_request_queue
        USING (net._refuse_request_roles('table http_request_queue'))
        WITH CHECK (net._refuse_request_roles('table http_request_queue'));
    ALTER TABLE net._http_response ENABLE ROW LEVEL SECURITY;
    CREATE POLICY request_roles_refused ON net._http_response
        USING (net._refuse_request_roles('table _http_response'))
        WITH CHECK (net._refuse_request_roles('table _http_response'));

    CREATE TYPE net.request_status AS ENUM ('PENDING', 'SUCCESS', 'ERROR');
    CREATE TYPE net.http_response AS (status_code integer, headers jsonb, body text);
    CREATE TYPE net.http_response_result AS (status net.request_status, message text, response net.http_response);

    -- libcurl's curl_easy_escape: every byte but the RFC 3986 unreserved characters is percent-encoded.
    CREATE FUNCTION net._urlencode_string(string character varying) RETURNS text
        LANGUAGE plpgsql IMMUTABLE
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        raw bytea;
        encoded text := '';
        b integer;
    BEGIN
        PERFORM net._refuse_request_roles('function _urlencode_string');
        IF string IS NULL THEN
            RETURN NULL;
        END IF;
        raw := convert_to(string, 'UTF8');
        FOR i IN 0 .. length(raw) - 1 LOOP
            b := get_byte(raw, i);
            IF (b BETWEEN 48 AND 57) OR (b BETWEEN 65 AND 90) OR (b BETWEEN 97 AND 122) OR b IN (45, 46, 95, 126) THEN
                encoded := encoded || chr(b);
            ELSE
                encoded := encoded || '%' || upper(lpad(to_hex(b), 2, '0'));
            END IF;
        END LOOP;
        RETURN encoded;
    END
    $fn$;

    -- libcurl's URL API as pg_net uses it: parse the URL (refusing what curl_url_set refuses, with
    -- curl_url_strerror's words), append each parameter to the query, and give back curl's normalized URL
    -- (lower-case scheme, "/" for an empty path, dot segments removed, empty port and query dropped).
    CREATE FUNCTION net._encode_url_with_params_array(url text, params_array text[]) RETURNS text
        LANGUAGE plpgsql IMMUTABLE
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        parts text[];
        scheme text;
        rest text;
        fragment text;
        query text;
        authority text;
        path text;
        hostport text;
        host text;
        port text;
        param text;
        segments text;
    BEGIN
        PERFORM net._refuse_request_roles('function _encode_url_with_params_array');
        IF url IS NULL OR params_array IS NULL THEN
            RETURN NULL;
        END IF;
        parts := regexp_match(url, '^([A-Za-z][A-Za-z0-9+.-]*):(.*)$');
        IF parts IS NULL THEN
            RAISE EXCEPTION 'invalid URL "%": Bad scheme', url USING ERRCODE = 'internal_error';
        END IF;
        scheme := lower(parts[1]);
        IF scheme <> ALL (ARRAY['dict', 'file', 'ftp', 'ftps', 'gopher', 'gophers', 'http', 'https', 'imap', 'imaps',
                                'ldap', 'ldaps', 'mqtt', 'pop3', 'pop3s', 'rtmp', 'rtsp', 'scp', 'sftp', 'smb', 'smbs',
                                'smtp', 'smtps', 'telnet', 'tftp', 'ws', 'wss']) THEN
            RAISE EXCEPTION 'invalid URL "%": Unsupported URL scheme', url USING ERRCODE = 'internal_error';
        END IF;
        rest := parts[2];
        IF rest !~ '^/{1,3}([^/]|$)' THEN
            RAISE EXCEPTION 'invalid URL "%": Unsupported number of slashes following scheme', url USING ERRCODE = 'internal_error';
        END IF;
        rest := ltrim(rest, '/');
        IF strpos(rest, '#') > 0 THEN
            fragment := substr(rest, strpos(rest, '#') + 1);
            rest := substr(rest, 1, strpos(rest, '#') - 1);
        END IF;
        IF strpos(rest, '?') > 0 THEN
            query := substr(rest, strpos(rest, '?') + 1);
            rest := substr(rest, 1, strpos(rest, '?') - 1);
        END IF;
        authority := split_part(rest, '/', 1);
        path := substr(rest, length(authority) + 1);
        hostport := regexp_replace(authority, '^.*@', '');
        IF hostport LIKE '[%' THEN
            IF hostport !~ '^\[[0-9A-Fa-f:.]+(%[A-Za-z0-9]+)?\](:.*)?$' THEN
                RAISE EXCEPTION 'invalid URL "%": Bad IPv6 address', url USING ERRCODE = 'internal_error';
            END IF;
            host := substring(hostport FROM '^(\[[^]]*\])');
            port := substring(hostport FROM '^\[[^]]*\]:(.*)$');
        ELSE
            host := split_part(hostport, ':', 1);
            port := CASE WHEN strpos(hostport, ':') > 0 THEN substr(hostport, strpos(hostport, ':') + 1) END;
        END IF;
        IF host = '' THEN
            RAISE EXCEPTION 'invalid URL "%": No host part in the URL', url USING ERRCODE = 'internal_error';
        END IF;
        IF host ~ '[[:space:][:cntrl:]<>"{}|\\^`]' THEN
            RAISE EXCEPTION 'invalid URL "%": Bad hostname', url USING ERRCODE = 'internal_error';
        END IF;
        IF port <> '' AND (port !~ '^[0-9]{1,5}$' OR port::integer > 65535) THEN
            RAISE EXCEPTION 'invalid URL "%": Port number was not a decimal number between 0 and 65535', url USING ERRCODE = 'internal_error';
        END IF;
        IF path ~ '[[:space:][:cntrl:]]' THEN
            RAISE EXCEPTION 'invalid URL "%": Bad path', url USING ERRCODE = 'internal_error';
        END IF;
        IF query ~ '[[:space:][:cntrl:]]' THEN
            RAISE EXCEPTION 'invalid URL "%": Bad query', url USING ERRCODE = 'internal_error';
        END IF;
        IF fragment ~ '[[:space:][:cntrl:]]' THEN
            RAISE EXCEPTION 'invalid URL "%": Bad fragment', url USING ERRCODE = 'internal_error';
        END IF;
        -- RFC 3986's remove_dot_segments, as curl_url applies it to the path.
        IF path ~ '(^|/)\.\.?(/|$)' THEN
            segments := path;
            path := '';
            WHILE segments <> '' LOOP
                IF segments LIKE '../%' OR segments LIKE './%' THEN
                    segments := substr(segments, strpos(segments, '/') + 1);
                ELSIF segments LIKE '/./%' OR segments = '/.' THEN
                    segments := '/' || substr(segments, 4);
                ELSIF segments LIKE '/../%' OR segments = '/..' THEN
                    segments := '/' || substr(segments, 5);
                    path := regexp_replace(path, '/?[^/]*$', '');
                ELSIF segments IN ('.', '..') THEN
                    segments := '';
                ELSE
                    path := path || substring(segments FROM '^/?[^/]*');
                    segments := substr(segments, length(substring(segments FROM '^/?[^/]*')) + 1);
                END IF;
            END LOOP;
        END IF;
        FOREACH param IN ARRAY params_array LOOP
            IF param IS NOT NULL THEN
                query := CASE WHEN coalesce(query, '') = '' THEN param ELSE query || '&' || param END;
            END IF;
        END LOOP;
        RETURN scheme || '://' || regexp_replace(authority, ':$', '') || CASE WHEN path = '' THEN '/' ELSE path END
            || CASE WHEN coalesce(query, '') = '' THEN '' ELSE '?' || query END
            || CASE WHEN fragment IS NULL THEN '' ELSE '#' || fragment END;
    END
    $fn$;

    -- params as pg_net's request functions pass them on: key=value pairs, both percent-encoded.
    CREATE FUNCTION net._params_array(params jsonb) RETURNS text[]
        LANGUAGE sql IMMUTABLE
        SET search_path = pg_catalog
        AS $fn$
        SELECT coalesce(array_agg(net._urlencode_string(p.key) || '=' || net._urlencode_string(p.value)), '{}')
        FROM jsonb_each_text(params) AS p
    $fn$;

    -- Is the worker (a runtime's LISTEN connection to this database) up? The one place that knows how the worker is
    -- seen: by its application_name (tripsage.net.WORKER_APPLICATION_NAME). application_name and datname are shown
    -- to every role in pg_stat_activity, so no SECURITY DEFINER is needed.
    CREATE FUNCTION net._worker_is_up() RETURNS boolean
        LANGUAGE sql STABLE
        SET search_path = pg_catalog
        AS $fn$
        SELECT net._refuse_request_roles('function _worker_is_up')
            AND EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE datname = current_database() AND application_name = 'pg_net worker (tripsage)')
    $fn$;

    CREATE FUNCTION net.check_worker_is_up() RETURNS void
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function check_worker_is_up');
        IF NOT net._worker_is_up() THEN
            RAISE EXCEPTION USING
                MESSAGE = 'the pg_net background worker is not up',
                DETAIL = 'the pg_net background worker is down due to an internal error and cannot process requests',
                HINT = 'make sure that you didn''t modify any of pg_net internal tables';
        END IF;
    END
    $fn$;
    COMMENT ON FUNCTION net.check_worker_is_up() IS
        'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

    CREATE FUNCTION net.wait_until_running() RETURNS void
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function wait_until_running');
        WHILE NOT net._worker_is_up() LOOP
            PERFORM pg_sleep(0.05);
        END LOOP;
    END
    $fn$;
    COMMENT ON FUNCTION net.wait_until_running() IS 'waits until the worker is running';

    -- Wakes the worker when the calling transaction commits (one wake however many calls: NOTIFY folds duplicates).
    CREATE FUNCTION net.wake() RETURNS void
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function wake');
        PERFORM pg_notify('tripsage_net', '');
    END
    $fn$;

    -- Reloads the configuration (where the caller may) and has the worker reconnect, at commit.
    CREATE FUNCTION net.worker_restart() RETURNS boolean
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function worker_restart');
        IF has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE') THEN
            PERFORM pg_reload_conf();
        END IF;
        PERFORM pg_notify('tripsage_net_restart', '');
        RETURN true;
    END
    $fn$;

    CREATE FUNCTION net.http_get(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
                                 timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        request_id bigint;
    BEGIN
        PERFORM net._refuse_request_roles('function http_get');
        INSERT INTO net.http_request_queue (method, url, headers, timeout_milliseconds)
        VALUES ('GET', net._encode_url_with_params_array(url, net._params_array(params)), headers, timeout_milliseconds)
        RETURNING id INTO request_id;
        PERFORM net.wake();
        RETURN request_id;
    END
    $fn$;

    CREATE FUNCTION net.http_post(url text, body jsonb DEFAULT '{}', params jsonb DEFAULT '{}',
                                  headers jsonb DEFAULT '{"Content-Type": "application/json"}',
                                  timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        request_id bigint;
        content_type text;
    BEGIN
        PERFORM net._refuse_request_roles('function http_post');
        SELECT h.value INTO content_type FROM jsonb_each_text(coalesce(headers, '{}')) AS h
        WHERE lower(h.key) = 'content-type' LIMIT 1;
        IF content_type IS NULL THEN
            headers := headers || '{"Content-Type": "application/json"}'::jsonb;  -- NULL headers stay NULL
        ELSIF content_type <> 'application/json' THEN
            RAISE EXCEPTION 'Content-Type header must be "application/json"';
        END IF;
        INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
        VALUES ('POST', net._encode_url_with_params_array(url, net._params_array(params)), headers,
                convert_to(body::text, 'UTF8'), timeout_milliseconds)
        RETURNING id INTO request_id;
        PERFORM net.wake();
        RETURN request_id;
    END
    $fn$;

    CREATE FUNCTION net.http_delete(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
                                    timeout_milliseconds integer DEFAULT 5000, body jsonb DEFAULT NULL)
        RETURNS bigint
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        request_id bigint;
    BEGIN
        PERFORM net._refuse_request_roles('function http_delete');
        INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
        VALUES ('DELETE', net._encode_url_with_params_array(url, net._params_array(params)), headers,
                convert_to(body::text, 'UTF8'), timeout_milliseconds)
        RETURNING id INTO request_id;
        PERFORM net.wake();
        RETURN request_id;
    END
    $fn$;

    -- Blocks until the response of request_id is stored (the request must be committed for the worker to see it).
    CREATE FUNCTION net._await_response(request_id bigint) RETURNS boolean
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function _await_response');
        WHILE NOT EXISTS (SELECT 1 FROM net._http_response r WHERE r.id = request_id) LOOP
            PERFORM pg_sleep(0.05);
        END LOOP;
        RETURN true;
    END
    $fn$;

    CREATE FUNCTION net._http_collect_response(request_id bigint, async boolean DEFAULT true)
        RETURNS net.http_response_result
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    DECLARE
        rec net._http_response;
    BEGIN
        PERFORM net._refuse_request_roles('function _http_collect_response');
        IF NOT async THEN
            PERFORM net._await_response(request_id);
        END IF;
        SELECT * INTO rec FROM net._http_response r WHERE r.id = request_id;
        IF rec IS NULL OR rec.error_msg IS NOT NULL THEN
            -- A request still in flight is indistinguishable from one that does not exist, as in pg_net.
            RETURN ROW('ERROR', coalesce(rec.error_msg, 'request matching request_id not found'), NULL)
                ::net.http_response_result;
        END IF;
        RETURN ROW('SUCCESS', 'ok', ROW(rec.status_code, rec.headers, rec.content)::net.http_response)
            ::net.http_response_result;
    END
    $fn$;

    -- Deprecated in pg_net, and broken there the same way: its body runs a SELECT with no destination.
    CREATE FUNCTION net.http_collect_response(request_id bigint, async boolean DEFAULT true)
        RETURNS net.http_response_result
        LANGUAGE plpgsql
        SET search_path = pg_catalog
        AS $fn$
    BEGIN
        PERFORM net._refuse_request_roles('function http_collect_response');
        RAISE NOTICE 'The net.http_collect_response function is deprecated.';
        SELECT net._http_collect_response(request_id, async);
    END
    $fn$;

    GRANT USAGE ON SCHEMA net TO PUBLIC;
    GRANT ALL ON ALL SEQUENCES IN SCHEMA net TO PUBLIC;
    GRANT ALL ON ALL TABLES IN SCHEMA net TO PUBLIC;
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA net TO PUBLIC;
END
$net_api$;
