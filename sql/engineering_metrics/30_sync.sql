-- engineering_metrics: the sync engine.
--
-- Sources are synced by working through a persistent per-source queue of
-- HTTP GETs (sync_tasks).  The C run loop (src/sync.c) takes the first
-- task, fetches it, and calls the connector's engineering._<kind>_ingest()
-- with the parsed response; the rows, the task's deletion and the run's
-- counters commit together.  When the queue is empty, the next run starts
-- with engineering._<kind>_plan(), which enqueues the first requests from
-- the watermarks in sources.cursor.  Every run is recorded in sync_runs.

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE engineering.source_secrets (
    source_id   integer PRIMARY KEY REFERENCES engineering.sources (id) ON DELETE CASCADE,
    token       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Only the extension's owner reads tokens: no role gets a grant here, ever.
REVOKE ALL ON engineering.source_secrets FROM PUBLIC;
COMMENT ON TABLE engineering.source_secrets IS
    'API tokens of sources stored through add_source()/set_source_token(); readable only by the extension''s owner';
COMMENT ON COLUMN engineering.source_secrets.source_id IS 'the source the token authenticates';
COMMENT ON COLUMN engineering.source_secrets.token IS 'the token, sent by the C transport only to the source''s own scheme, host and port';
COMMENT ON COLUMN engineering.source_secrets.updated_at IS 'when the token was last set';

CREATE TABLE engineering.sync_tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id   integer NOT NULL REFERENCES engineering.sources (id) ON DELETE CASCADE,
    stream      text NOT NULL,
    url         text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_tasks_source_idx ON engineering.sync_tasks (source_id, id);
COMMENT ON TABLE engineering.sync_tasks IS
    'pending HTTP GETs of each source, processed in id order; a task is deleted in the transaction that ingests its response';
COMMENT ON COLUMN engineering.sync_tasks.id IS 'processing order within a source';
COMMENT ON COLUMN engineering.sync_tasks.source_id IS 'the source the request belongs to';
COMMENT ON COLUMN engineering.sync_tasks.stream IS 'connector-defined kind of request (runs, deployments, compare, ...)';
COMMENT ON COLUMN engineering.sync_tasks.url IS 'path appended to the source''s base_url (starts with /), or an absolute URL on the same scheme, host and port';
COMMENT ON COLUMN engineering.sync_tasks.payload IS 'connector state carried to the ingest function; "missing_ok": true passes a 404/410 to it instead of failing';
COMMENT ON COLUMN engineering.sync_tasks.created_at IS 'when the task was enqueued';

CREATE TABLE engineering.sync_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id) ON DELETE SET NULL,
    source          text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz,
    status          text NOT NULL
                    CHECK (status IN ('running', 'ok', 'error', 'rate_limited')),
    http_requests   integer NOT NULL DEFAULT 0,
    items_upserted  bigint NOT NULL DEFAULT 0,
    pages           integer NOT NULL DEFAULT 0,
    error           text,
    pid             integer,
    started_by      text NOT NULL DEFAULT 'sync'
                    CHECK (started_by IN ('worker', 'sync')),
    http_seconds    double precision NOT NULL DEFAULT 0,
    sql_seconds     double precision NOT NULL DEFAULT 0,
    next_sync_at    timestamptz
);
CREATE INDEX sync_runs_source_started_idx ON engineering.sync_runs (source_id, started_at);
CREATE INDEX sync_runs_running_idx ON engineering.sync_runs (source_id) WHERE status = 'running';
COMMENT ON TABLE engineering.sync_runs IS 'one row per sync of a source, by the background worker or by sync()';
COMMENT ON COLUMN engineering.sync_runs.id IS 'surrogate key';
COMMENT ON COLUMN engineering.sync_runs.source_id IS 'the source synced (NULL once the source is removed)';
COMMENT ON COLUMN engineering.sync_runs.source IS 'the source''s name at the time of the run';
COMMENT ON COLUMN engineering.sync_runs.started_at IS 'when the run started';
COMMENT ON COLUMN engineering.sync_runs.finished_at IS 'when the run ended; NULL while running';
COMMENT ON COLUMN engineering.sync_runs.status IS 'running, ok, error or rate_limited';
COMMENT ON COLUMN engineering.sync_runs.http_requests IS 'HTTP requests made, retries and redirects included';
COMMENT ON COLUMN engineering.sync_runs.items_upserted IS 'rows inserted or changed by the pages ingested';
COMMENT ON COLUMN engineering.sync_runs.pages IS 'responses ingested (committed)';
COMMENT ON COLUMN engineering.sync_runs.error IS 'what went wrong, redacted (never a token); NULL when ok';
COMMENT ON COLUMN engineering.sync_runs.pid IS 'process that ran the sync';
COMMENT ON COLUMN engineering.sync_runs.started_by IS 'worker (the background worker) or sync (engineering.sync())';
COMMENT ON COLUMN engineering.sync_runs.http_seconds IS 'seconds spent in HTTP transfers';
COMMENT ON COLUMN engineering.sync_runs.sql_seconds IS 'seconds spent in SQL (mapping, upserts, bookkeeping, commits)';
COMMENT ON COLUMN engineering.sync_runs.next_sync_at IS 'when the source was scheduled next after this run (backoff after errors and rate limits)';

CREATE VIEW engineering.source_status AS
SELECT s.id, s.name, s.kind, s.enabled, s.next_sync_at, s.last_synced_at, s.last_error,
       s.consecutive_failures,
       (SELECT count(*) FROM engineering.sync_tasks t WHERE t.source_id = s.id) AS pending_tasks,
       r.status AS last_status, r.started_at AS last_started_at, r.items_upserted AS last_items
FROM engineering.sources s
LEFT JOIN LATERAL (SELECT status, started_at, items_upserted FROM engineering.sync_runs r
                   WHERE r.source_id = s.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1) r ON true;
COMMENT ON VIEW engineering.source_status IS 'each source with its schedule, queue length and latest run';
COMMENT ON COLUMN engineering.source_status.id IS 'source id';
COMMENT ON COLUMN engineering.source_status.name IS 'source name';
COMMENT ON COLUMN engineering.source_status.kind IS 'connector';
COMMENT ON COLUMN engineering.source_status.enabled IS 'whether the worker syncs it';
COMMENT ON COLUMN engineering.source_status.next_sync_at IS 'when it is next due';
COMMENT ON COLUMN engineering.source_status.last_synced_at IS 'last successful sync';
COMMENT ON COLUMN engineering.source_status.last_error IS 'error of the last failed sync, NULL after a success';
COMMENT ON COLUMN engineering.source_status.consecutive_failures IS 'failures since the last success';
COMMENT ON COLUMN engineering.source_status.pending_tasks IS 'requests queued for the next runs (non-zero during a backfill)';
COMMENT ON COLUMN engineering.source_status.last_status IS 'status of the latest run';
COMMENT ON COLUMN engineering.source_status.last_started_at IS 'start of the latest run';
COMMENT ON COLUMN engineering.source_status.last_items IS 'rows upserted by the latest run';

-- pg_dump keeps the queue, the history and the tokens with the sources
-- (a backup of the database is as sensitive as the database).
SELECT pg_catalog.pg_extension_config_dump('engineering.source_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_tasks', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_tasks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_runs_id_seq', '');

------------------------------------------------------------------------------
-- Helpers for connectors (C, src/sync_sql.c, unless SQL)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._ts(value text)
RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_ts_text';
COMMENT ON FUNCTION engineering._ts(text) IS
    'vendor time: ISO 8601 with Z or an offset (+02:00, +0200), or "YYYY-MM-DD HH:MM:SS +0200"; '''' is NULL; anything else raises';

CREATE FUNCTION engineering._ts(value jsonb)
RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_ts_jsonb';
COMMENT ON FUNCTION engineering._ts(jsonb) IS
    'vendor time from JSON: a string as _ts(text), a number as epoch milliseconds, null and "" as NULL';

CREATE FUNCTION engineering._iso8601(ts timestamptz)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
COMMENT ON FUNCTION engineering._iso8601(timestamptz) IS
    'a time as ISO 8601 in UTC with Z and whole seconds, whatever the session''s TimeZone (for vendor query strings and cursors)';

CREATE FUNCTION engineering._since(config jsonb)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN config->>'since' IS NULL OR config->>'since' = '' THEN now() - interval '180 days'
    WHEN config->>'since' ~ '^\d{4}-\d{2}-\d{2}$' THEN engineering._ts((config->>'since') || 'T00:00:00Z')
    ELSE engineering._ts(config->'since') END;
COMMENT ON FUNCTION engineering._since(jsonb) IS
    'start of the backfill: config since (a timestamp with time zone, or a date meaning midnight UTC), default 180 days ago';

CREATE FUNCTION engineering._map_service(config jsonb, vendor_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(config->'service_map'->>vendor_name, config->>'service', vendor_name);
COMMENT ON FUNCTION engineering._map_service(jsonb, text) IS
    'service name of a vendor object: config service_map[vendor_name], else config service, else the vendor''s name';

CREATE FUNCTION engineering._urlencode(value text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_urlencode';
COMMENT ON FUNCTION engineering._urlencode(text) IS
    'RFC 3986 percent-encoding of everything except unreserved characters (for query values and path segments)';

CREATE FUNCTION engineering._link_next(link text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_link_next';
COMMENT ON FUNCTION engineering._link_next(text) IS
    'the URL of the rel="next" entry of an HTTP Link header, or NULL';

CREATE FUNCTION engineering._backoff_seconds(rate_limited boolean, retry_after text,
                                             x_ratelimit_reset text, x_ratelimit_remaining text,
                                             ratelimit_reset text, ratelimit_remaining text,
                                             at timestamptz, failures integer)
RETURNS bigint
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_backoff_seconds';
COMMENT ON FUNCTION engineering._backoff_seconds(boolean, text, text, text, text, text, timestamptz, integer) IS
    'the engine''s backoff in seconds: Retry-After, then a reset whose remaining count is 0 or absent (x-ratelimit-reset, then ratelimit-reset; below 10^9 a delta, else epoch), else exponential from 60 s';

CREATE FUNCTION engineering._connector_default_url(kind text)
RETURNS text
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_default_url';
COMMENT ON FUNCTION engineering._connector_default_url(text) IS
    'the vendor''s public API root for a kind (NULL if it has none); raises if this build has no connector for the kind';

CREATE FUNCTION engineering._enqueue(source_id integer, stream text, url text, payload jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    VALUES (source_id, stream, url, coalesce(payload, '{}'));
END;
COMMENT ON FUNCTION engineering._enqueue(integer, text, text, jsonb) IS
    'queue an HTTP GET for a source: a path appended to base_url, or an absolute URL on the same origin';

------------------------------------------------------------------------------
-- Validation of sources
------------------------------------------------------------------------------

CREATE FUNCTION engineering._normalize_base_url(kind text, base_url text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    url text := btrim(coalesce(base_url, ''));
BEGIN
    IF url = '' THEN
        url := engineering._connector_default_url(kind);
        IF url IS NULL THEN
            RAISE EXCEPTION 'a % source needs a base_url', kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass the URL of your server''s API, e.g. https://ci.example.com.';
        END IF;
    END IF;
    IF url !~* '^https?://[^/?#@\s\\]+(/[^?#\s]*)?$' THEN
        -- credentials and queries are what make a URL invalid, and may be
        -- secrets: the message masks them
        RAISE EXCEPTION 'invalid base_url "%"',
            regexp_replace(regexp_replace(url, '^([^/]*//)[^/?#]*@', '\1***@'), '[?#].*$', '?***')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use an http:// or https:// URL without credentials, query or fragment; put credentials in the token.';
    END IF;
    RETURN rtrim(url, '/');
END;
$$;
COMMENT ON FUNCTION engineering._normalize_base_url(text, text) IS
    'validates a source''s base_url (http or https, no credentials, query or fragment), applies the vendor default and drops trailing slashes';

CREATE FUNCTION engineering._validate_source_config(kind text, config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    validator regprocedure;
BEGIN
    IF jsonb_typeof(config) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'token_file' AND config ? 'token_env' THEN
        RAISE EXCEPTION 'config may name token_file or token_env, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'token_file' AND (jsonb_typeof(config->'token_file') <> 'string'
                                  OR config->>'token_file' !~ '^/') THEN
        RAISE EXCEPTION 'config token_file must be an absolute path on the database server'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'token_env' AND (jsonb_typeof(config->'token_env') <> 'string'
                                 OR config->>'token_env' !~ '^[A-Za-z_][A-Za-z0-9_]*$') THEN
        RAISE EXCEPTION 'config token_env must be the name of an environment variable'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'service' AND (jsonb_typeof(config->'service') <> 'string' OR btrim(config->>'service') = '') THEN
        RAISE EXCEPTION 'config service must be a non-empty string' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'service_map' AND (jsonb_typeof(config->'service_map') <> 'object'
        OR EXISTS (SELECT 1 FROM jsonb_each(config->'service_map') e
                   WHERE jsonb_typeof(e.value) <> 'string' OR btrim(e.value #>> '{}') = '')) THEN
        RAISE EXCEPTION 'config service_map must map vendor names to non-empty service names'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'since' THEN
        BEGIN
            PERFORM engineering._since(config);
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
            RAISE EXCEPTION 'config since must be a timestamp with a time zone or a date: %', config->>'since'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example "2024-01-01" (midnight UTC) or "2024-01-01T00:00:00+02:00".';
        END;
    END IF;
    validator := to_regprocedure(format('engineering.%I(jsonb)', '_' || kind || '_validate'));
    IF validator IS NOT NULL THEN
        EXECUTE format('SELECT engineering.%I($1)', '_' || kind || '_validate') USING config;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._validate_source_config(text, jsonb) IS
    'checks the keys every connector shares (token_file, token_env, service, service_map, since), then engineering._<kind>_validate(config) if the connector has one';

CREATE FUNCTION engineering._validate_source(kind text, base_url text, config jsonb)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF kind IS NULL OR NOT kind = ANY (engineering._connector_kinds()) THEN
        RAISE EXCEPTION 'invalid source kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Expected ' || engineering._connector_kind_list() || '.';
    END IF;
    PERFORM engineering._validate_source_config(kind, coalesce(config, '{}'));
    RETURN engineering._normalize_base_url(kind, base_url);
END;
$$;
COMMENT ON FUNCTION engineering._validate_source(text, text, jsonb) IS
    'validates kind, base_url and config of a source for add_source() and alter_source(); returns the base_url to store';

CREATE FUNCTION engineering._sources_guard()
RETURNS trigger
LANGUAGE plpgsql PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    -- Reading a server file or variable and sending it to a URL of one's
    -- choosing is reading it: only roles that may read server files can,
    -- however the row is written.
    IF (NEW.config ? 'token_file' OR NEW.config ? 'token_env')
       AND (TG_OP = 'INSERT' OR NEW.config->'token_file' IS DISTINCT FROM OLD.config->'token_file'
            OR NEW.config->'token_env' IS DISTINCT FROM OLD.config->'token_env'
            OR NEW.base_url IS DISTINCT FROM OLD.base_url)
       AND NOT pg_has_role(session_user, 'pg_read_server_files', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied to use token_file or token_env'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only superusers and members of pg_read_server_files may point a source at a server-side secret.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION engineering._sources_guard() IS
    'trigger: only roles that may read server files may set token_file or token_env, or move such a source to another URL';

CREATE TRIGGER sources_guard
    BEFORE INSERT OR UPDATE OF base_url, config ON engineering.sources
    FOR EACH ROW EXECUTE FUNCTION engineering._sources_guard();

CREATE FUNCTION engineering._sources_changed()
RETURNS trigger
LANGUAGE C PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_sources_changed';
COMMENT ON FUNCTION engineering._sources_changed() IS
    'trigger: a new or changed source wakes the background worker when the transaction commits';

CREATE TRIGGER sources_wake
    AFTER INSERT OR UPDATE ON engineering.sources
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._sources_changed();

------------------------------------------------------------------------------
-- Public API
------------------------------------------------------------------------------

-- A call that carries a token must not leave it behind: each function
-- that takes one hides its own statement text from pg_stat_activity first,
-- checks the caller's role itself (a privilege refused by the executor
-- would be reported, and logged with its statement, before the function
-- runs), and sets log_min_error_statement = panic, so that its errors are
-- logged without the STATEMENT line.  README "Tokens" says what no function
-- can prevent.

CREATE FUNCTION engineering._hide_statement(what text)
RETURNS void
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_hide_statement';
REVOKE EXECUTE ON FUNCTION engineering._hide_statement(text) FROM PUBLIC;
COMMENT ON FUNCTION engineering._hide_statement(text) IS
    'internal: replaces the running statement''s text in pg_stat_activity by a note naming the function what (the statement carries a token)';

CREATE FUNCTION engineering._require_admin(what text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    -- Called from SECURITY DEFINER functions, where current_user is the
    -- owner: the caller is the session's role (SET ROLE), else its user.
    IF NOT pg_has_role(CASE WHEN current_setting('role') = 'none' THEN session_user
                            ELSE current_setting('role') END,
                       'engineering_admin', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied for function %', what
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Managing sources and tokens needs engineering_admin.';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._require_admin(text) IS
    'internal: raises permission denied for function what unless the session''s role (SET ROLE, else the session user) has engineering_admin''s privileges';

CREATE FUNCTION engineering._store_token(source_id integer, token text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
SET log_min_error_statement = panic
AS $$
DECLARE
    clean text := btrim(token, E' \t\r\n');
BEGIN
    IF token IS NULL THEN
        DELETE FROM engineering.source_secrets s WHERE s.source_id = _store_token.source_id;
        RETURN;
    END IF;
    IF clean = '' THEN
        RAISE EXCEPTION 'token must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL for a source that needs no token.';
    END IF;
    IF clean ~ '[\x01-\x1f\x7f]' THEN
        RAISE EXCEPTION 'token must not contain control characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO engineering.source_secrets AS s (source_id, token)
    VALUES (_store_token.source_id, clean)
    ON CONFLICT ON CONSTRAINT source_secrets_pkey DO UPDATE SET token = EXCLUDED.token, updated_at = now();
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering._store_token(integer, text) FROM PUBLIC;
COMMENT ON FUNCTION engineering._store_token(integer, text) IS
    'internal: stores (or with NULL removes) a source''s token; never echoes it';

CREATE FUNCTION engineering.add_source(name text, kind text, base_url text, config jsonb,
                                       token text DEFAULT NULL,
                                       poll_interval interval DEFAULT '5 minutes')
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
SET log_min_error_statement = panic
AS $$
DECLARE
    new_id integer;
BEGIN
    PERFORM engineering._hide_statement('add_source');
    PERFORM engineering._require_admin('add_source');
    IF add_source.name IS NULL OR add_source.kind IS NULL THEN
        RAISE EXCEPTION 'a source needs a name and a kind' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM engineering.sources s WHERE s.name = add_source.name) THEN
        RAISE EXCEPTION 'source "%" already exists', add_source.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or remove the existing source with engineering.remove_source().';
    END IF;
    INSERT INTO engineering.sources (name, kind, base_url, config, poll_interval)
    VALUES (add_source.name, add_source.kind,
            engineering._validate_source(add_source.kind, add_source.base_url, add_source.config),
            coalesce(add_source.config, '{}'), coalesce(add_source.poll_interval, interval '5 minutes'))
    RETURNING id INTO new_id;
    IF add_source.token IS NOT NULL THEN
        PERFORM engineering._store_token(new_id, add_source.token);
    END IF;
    RETURN new_id;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.add_source(text, text, text, jsonb, text, interval) FROM PUBLIC;
COMMENT ON FUNCTION engineering.add_source(text, text, text, jsonb, text, interval) IS
    'registers a source (base_url NULL or '''' means the vendor''s public API) and returns its id; it is synced at once if the worker runs';

CREATE FUNCTION engineering.set_source_token(name text, token text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
SET log_min_error_statement = panic
AS $$
DECLARE
    sid integer;
BEGIN
    PERFORM engineering._hide_statement('set_source_token');
    PERFORM engineering._require_admin('set_source_token');
    SELECT s.id INTO sid FROM engineering.sources s WHERE s.name = set_source_token.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', set_source_token.name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM engineering._store_token(sid, set_source_token.token);
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.set_source_token(text, text) FROM PUBLIC;
COMMENT ON FUNCTION engineering.set_source_token(text, text) IS
    'replaces a source''s stored token (NULL removes it)';

CREATE FUNCTION engineering.alter_source(name text, base_url text DEFAULT NULL, config jsonb DEFAULT NULL,
                                         poll_interval interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
-- a base_url it refuses may carry credentials
SET log_min_error_statement = panic
AS $$
DECLARE
    s engineering.sources;
BEGIN
    SELECT * INTO s FROM engineering.sources src WHERE src.name = alter_source.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', alter_source.name USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE engineering.sources src SET
        base_url = engineering._validate_source(s.kind, coalesce(alter_source.base_url, s.base_url),
                                                coalesce(alter_source.config, s.config)),
        config = coalesce(alter_source.config, s.config),
        poll_interval = coalesce(alter_source.poll_interval, s.poll_interval),
        enabled = coalesce(alter_source.enabled, s.enabled),
        -- a changed source is looked at again now, without waiting out a backoff
        next_sync_at = least(src.next_sync_at, now()),
        consecutive_failures = 0
    WHERE src.id = s.id;
    -- A stored token goes only to the origin it was given for: moving the
    -- source to another scheme, host or port forgets it, or whoever may
    -- alter a source could have the token sent to a server of theirs.
    IF alter_source.base_url IS NOT NULL
       AND (SELECT lower(substring(src.base_url FROM '^[^:]+://[^/]+'))
            FROM engineering.sources src WHERE src.id = s.id)
           IS DISTINCT FROM lower(substring(s.base_url FROM '^[^:]+://[^/]+'))
       AND EXISTS (SELECT 1 FROM engineering.source_secrets sec WHERE sec.source_id = s.id) THEN
        DELETE FROM engineering.source_secrets sec WHERE sec.source_id = s.id;
        RAISE NOTICE 'source "%" moved to another host: its stored token was removed', s.name
            USING HINT = 'Set it again with engineering.set_source_token().';
    END IF;
    -- Queued requests and watermarks were made from the old URL or config
    -- (another project, a job that does not exist, an older service_map):
    -- once a sync of the source has finished, drop both, so that the next
    -- run plans from the new config and backfills from "since" again.  The
    -- upserts are idempotent, so re-reading history only re-maps it.
    IF (alter_source.base_url IS NOT NULL OR alter_source.config IS NOT NULL)
       AND (SELECT (src.base_url, src.config) IS DISTINCT FROM (s.base_url, s.config)
            FROM engineering.sources src WHERE src.id = s.id) THEN
        PERFORM pg_advisory_xact_lock(1162695513, s.id);
        DELETE FROM engineering.sync_tasks t WHERE t.source_id = s.id;
        UPDATE engineering.sources src SET cursor = '{}' WHERE src.id = s.id;
    END IF;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.alter_source(text, text, jsonb, interval, boolean) FROM PUBLIC;
COMMENT ON FUNCTION engineering.alter_source(text, text, jsonb, interval, boolean) IS
    'changes a source''s base_url, config, poll_interval or enabled (NULL keeps the value), validated like add_source(), and makes it due now; a new base_url or config drops the queued requests and the watermarks, so the next sync backfills from since with the new settings; a base_url on another scheme, host or port removes the stored token';

CREATE FUNCTION engineering.remove_source(name text, purge boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    sid integer;
    ref record;
    found_rows boolean;
BEGIN
    SELECT s.id INTO sid FROM engineering.sources s WHERE s.name = remove_source.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', remove_source.name USING ERRCODE = 'undefined_object';
    END IF;
    -- wait for a sync of this source to finish (the worker holds this lock between pages)
    PERFORM pg_advisory_xact_lock(1162695513, sid);
    -- every table keyed by source (event tables, and those later parts add)
    FOR ref IN
        SELECT c.conrelid::regclass AS tab, a.attname AS col
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = 'engineering.sources'::regclass
          AND c.conrelid NOT IN ('engineering.sync_runs'::regclass, 'engineering.sync_tasks'::regclass,
                                 'engineering.source_secrets'::regclass)
        ORDER BY 1::text
    LOOP
        IF remove_source.purge THEN
            EXECUTE format('DELETE FROM %s WHERE %I = $1', ref.tab, ref.col) USING sid;
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I = $1)', ref.tab, ref.col)
                INTO found_rows USING sid;
            IF found_rows THEN
                RAISE EXCEPTION 'source "%" still has synced rows in %', remove_source.name, ref.tab
                    USING ERRCODE = 'dependent_objects_still_exist',
                          HINT = 'Call engineering.remove_source(name, purge => true) to delete them with the source.';
            END IF;
        END IF;
    END LOOP;
    DELETE FROM engineering.sources s WHERE s.id = sid;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.remove_source(text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION engineering.remove_source(text, boolean) IS
    'removes a source with its token, queue and schedule; refuses while it has synced rows unless purge deletes them too';

CREATE FUNCTION engineering.wake()
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_wake';
REVOKE EXECUTE ON FUNCTION engineering.wake() FROM PUBLIC;
COMMENT ON FUNCTION engineering.wake() IS
    'asks the background worker to look for due sources when the calling transaction commits';

CREATE FUNCTION engineering._sync_source(source_id integer)
RETURNS bigint
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_sync_source_sql';
REVOKE EXECUTE ON FUNCTION engineering._sync_source(integer) FROM PUBLIC;
COMMENT ON FUNCTION engineering._sync_source(integer) IS
    'internal: runs one sync of a source in this session (each page in a subtransaction) and returns the sync_runs id';

CREATE FUNCTION engineering.sync(source_name text)
RETURNS engineering.sync_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    sid integer;
    run_id bigint;
    result engineering.sync_runs;
BEGIN
    SELECT s.id INTO sid FROM engineering.sources s WHERE s.name = source_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', source_name
            USING ERRCODE = 'undefined_object', HINT = 'engineering.sources lists the registered sources.';
    END IF;
    run_id := engineering._sync_source(sid);
    SELECT * INTO result FROM engineering.sync_runs r WHERE r.id = run_id;
    RETURN result;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.sync(text) FROM PUBLIC;
COMMENT ON FUNCTION engineering.sync(text) IS
    'syncs a source now in this session (at most engineering_metrics.max_pages_per_run pages) and returns the sync_runs row';

CREATE FUNCTION engineering.prune_sync_runs(older_than interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative, got %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Runs still going are never touched, and each source keeps its
    -- latest run, which source_status reports however old it is.
    DELETE FROM engineering.sync_runs r
    WHERE r.status <> 'running' AND r.finished_at < now() - older_than
      AND (r.source_id IS NULL
           OR EXISTS (SELECT 1 FROM engineering.sync_runs l
                      WHERE l.source_id = r.source_id AND (l.started_at, l.id) > (r.started_at, r.id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.prune_sync_runs(interval) FROM PUBLIC;
COMMENT ON FUNCTION engineering.prune_sync_runs(interval) IS
    'deletes the sync runs that finished more than older_than ago, except each source''s latest and those still running; returns how many it deleted (the background worker calls it hourly with engineering_metrics.sync_runs_retention)';
