-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 19: one incident upsert (_upsert_incidents) for PagerDuty and Opsgenie

CREATE FUNCTION engineering._upsert_incidents(incidents engineering.incidents[],
                                              cleared_keys text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
-- An incident's first acknowledgement only ever moves earlier: a vendor
-- shows current acknowledgements only (PagerDuty drops them on resolve), and
-- a better source (a log read later, a hand-set value) may already have
-- stored an earlier one.  acknowledged_by belongs to the acknowledgement
-- kept, so the stored one survives unless the given row's is earlier.
WITH up AS (
    INSERT INTO engineering.incidents AS p
        (source_id, external_id, service, title, severity, status, opened_at, acknowledged_at,
         resolved_at, attributes)
    SELECT r.source_id, r.external_id, r.service, r.title, r.severity, r.status, r.opened_at,
           CASE WHEN r.acknowledged_at IS NOT NULL THEN greatest(r.acknowledged_at, r.opened_at) END,
           r.resolved_at, coalesce(r.attributes, '{}')
    FROM unnest(incidents) r
    ORDER BY r.external_id
    ON CONFLICT (source_id, external_id) DO UPDATE SET
        service = EXCLUDED.service, title = EXCLUDED.title, severity = EXCLUDED.severity,
        status = EXCLUDED.status, opened_at = EXCLUDED.opened_at,
        acknowledged_at = CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                               THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at),
                                             EXCLUDED.opened_at) END,
        resolved_at = EXCLUDED.resolved_at,
        attributes = p.attributes - cleared_keys
            || CASE WHEN p.attributes ? 'acknowledged_by'
                         AND p.acknowledged_at <= coalesce(EXCLUDED.acknowledged_at, 'infinity')
                    THEN EXCLUDED.attributes - 'acknowledged_by' ELSE EXCLUDED.attributes END
    WHERE (p.service, p.title, p.severity, p.status, p.opened_at, p.acknowledged_at, p.resolved_at,
           p.attributes)
          IS DISTINCT FROM
          (EXCLUDED.service, EXCLUDED.title, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.opened_at,
           CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at), EXCLUDED.opened_at) END,
           EXCLUDED.resolved_at,
           p.attributes - cleared_keys
               || CASE WHEN p.attributes ? 'acknowledged_by'
                            AND p.acknowledged_at <= coalesce(EXCLUDED.acknowledged_at, 'infinity')
                       THEN EXCLUDED.attributes - 'acknowledged_by' ELSE EXCLUDED.attributes END)
    RETURNING 1)
SELECT count(*) FROM up;
$$;
COMMENT ON FUNCTION engineering._upsert_incidents(engineering.incidents[], text[]) IS
    'writes synced incidents keyed by (source_id, external_id), rewriting a row only when it changed (attributes merge, less cleared_keys, which a fresh copy makes stale; acknowledged_at only moves earlier, never before opened_at, and acknowledged_by follows it; cause_deployment_id and cause_inferred are kept); returns the rows changed';

CREATE OR REPLACE FUNCTION engineering._pagerduty_map_incidents(src_id integer, config jsonb, items jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of PagerDuty incidents, got %', coalesce(jsonb_typeof(items), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- An incident without an id or a creation time cannot be placed: it
    -- is skipped.  A bad timestamp raises (the page is refused whole).
    WITH raw AS (
        SELECT DISTINCT ON (i->>'id') i
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(i->'id') = 'string' AND btrim(i->>'id') <> ''
          AND jsonb_typeof(i->'created_at') IN ('string', 'number') AND i->>'created_at' <> ''
        ORDER BY i->>'id', o DESC),
    m AS (
        SELECT i->>'id' AS external_id,
               engineering._pagerduty_service(config, i->'service') AS service,
               coalesce(nullif(btrim(i->>'title'), ''), nullif(btrim(i->>'summary'), '')) AS title,
               CASE WHEN jsonb_typeof(i->'urgency') = 'string' THEN nullif(i->>'urgency', '') END AS severity,
               engineering._pagerduty_status(i->>'status') AS status,
               t.opened AS opened_at,
               a.ack AS acknowledged_at,
               CASE WHEN engineering._pagerduty_status(i->>'status') = 'resolved'
                    THEN greatest(coalesce(engineering._ts(i->'resolved_at'),
                                           engineering._ts(i->'last_status_change_at'),
                                           engineering._ts(i->'updated_at'), t.opened), t.opened) END AS resolved_at,
               jsonb_strip_nulls(jsonb_build_object(
                   'pagerduty_id', i->'id', 'incident_number', i->'incident_number',
                   'incident_key', i->'incident_key', 'pagerduty_status', i->'status',
                   'urgency', i->'urgency', 'priority', i->'priority'->'summary',
                   'service_id', i->'service'->'id', 'service_name', i->'service'->'summary',
                   'html_url', i->'html_url', 'escalation_policy', i->'escalation_policy'->'summary',
                   'last_status_change_at', i->'last_status_change_at',
                   'resolve_reason', i->'resolve_reason'->'type',
                   'teams', (SELECT jsonb_agg(x->'summary') FROM jsonb_array_elements(
                                CASE WHEN jsonb_typeof(i->'teams') = 'array' THEN i->'teams' ELSE '[]' END) x
                             WHERE jsonb_typeof(x) = 'object' AND x ? 'summary'),
                   'assignees', (SELECT jsonb_agg(x->'assignee'->'summary') FROM jsonb_array_elements(
                                    CASE WHEN jsonb_typeof(i->'assignments') = 'array' THEN i->'assignments' ELSE '[]' END) x
                                 WHERE jsonb_typeof(x->'assignee') = 'object' AND x->'assignee' ? 'summary'))) AS attributes
        FROM raw,
             LATERAL (SELECT engineering._ts(i->'created_at') AS opened) t,
             -- until the log entries are read: the current acknowledgements,
             -- or the last status change of an incident that is acknowledged now
             LATERAL (SELECT coalesce(
                          (SELECT min(engineering._ts(x->'at')) FROM jsonb_array_elements(
                               CASE WHEN jsonb_typeof(i->'acknowledgements') = 'array'
                                    THEN i->'acknowledgements' ELSE '[]' END) x
                           WHERE jsonb_typeof(x) = 'object'),
                          CASE WHEN i->>'status' = 'acknowledged'
                               THEN engineering._ts(i->'last_status_change_at') END) AS ack) a)
    -- A fresh copy makes stale every key it maps (and the mark of an
    -- incident that answered 404); the log's keys are kept.
    SELECT engineering._upsert_incidents(array_agg(ROW(
               NULL, src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at,
               m.acknowledged_at, m.resolved_at, NULL, false, m.attributes)::engineering.incidents),
               '{pagerduty_id,incident_number,incident_key,pagerduty_status,urgency,priority,service_id,service_name,html_url,escalation_policy,last_status_change_at,resolve_reason,teams,assignees,pagerduty_gone}')
    INTO n
    FROM m;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_map_incidents(integer, jsonb, jsonb) IS
    'upserts PagerDuty incident objects (external_id = incident id; urgency as severity; acknowledged_at never moves later); returns the rows changed';

CREATE OR REPLACE FUNCTION engineering._opsgenie_map_incidents(src_id integer, config jsonb, items jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of Opsgenie incidents, got %', coalesce(jsonb_typeof(items), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- An incident without an id or a creation time cannot be placed: it
    -- is skipped.  A bad timestamp raises (the page is refused whole).
    WITH raw AS (
        SELECT DISTINCT ON (i->>'id') i
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(i->'id') = 'string' AND btrim(i->>'id') <> ''
          AND jsonb_typeof(i->'createdAt') IN ('string', 'number') AND i->>'createdAt' <> ''
        ORDER BY i->>'id', o DESC),
    m AS (
        SELECT i->>'id' AS external_id,
               engineering._opsgenie_service(config, i) AS service,
               nullif(btrim(i->>'message'), '') AS title,
               CASE WHEN jsonb_typeof(i->'priority') = 'string' THEN nullif(i->>'priority', '') END AS severity,
               engineering._opsgenie_status(i->>'status') AS status,
               t.opened AS opened_at,
               CASE WHEN engineering._opsgenie_status(i->>'status') = 'resolved'
                    THEN greatest(coalesce(engineering._ts(i->'impactEndDate'), engineering._ts(i->'updatedAt'),
                                           t.opened), t.opened) END AS resolved_at,
               jsonb_strip_nulls(jsonb_build_object(
                   'opsgenie_id', i->'id', 'tiny_id', i->'tinyId', 'opsgenie_status', i->'status',
                   'priority', i->'priority', 'impacted_services', i->'impactedServices',
                   'service_id', i->'serviceId', 'created_at', i->'createdAt', 'updated_at', i->'updatedAt',
                   'impact_start_date', i->'impactStartDate', 'impact_end_date', i->'impactEndDate',
                   'tags', i->'tags', 'owner_team', i->'ownerTeam')) AS attributes
        FROM raw,
             LATERAL (SELECT coalesce(engineering._ts(i->'impactStartDate'), engineering._ts(i->'createdAt')) AS opened) t)
    -- A fresh copy makes stale every key it maps (and the mark of an
    -- incident that answered 404).  Opsgenie incidents have no
    -- acknowledgement: one set by hand is kept.
    SELECT engineering._upsert_incidents(array_agg(ROW(
               NULL, src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at,
               NULL, m.resolved_at, NULL, false, m.attributes)::engineering.incidents),
               '{opsgenie_id,tiny_id,opsgenie_status,priority,impacted_services,service_id,created_at,updated_at,impact_start_date,impact_end_date,tags,owner_team,opsgenie_gone}')
    INTO n
    FROM m;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_map_incidents(integer, jsonb, jsonb) IS
    'upserts Opsgenie incident objects (external_id = incident id; opened at impact start, else createdAt; resolved at impact end, else updatedAt); returns the rows changed';

-- issue 18: a failed call that carries a token logs neither the token nor its statement

CREATE OR REPLACE FUNCTION engineering._normalize_base_url(kind text, base_url text)
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

CREATE OR REPLACE FUNCTION engineering._store_token(source_id integer, token text)
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

CREATE OR REPLACE FUNCTION engineering.add_source(name text, kind text, base_url text, config jsonb,
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

CREATE OR REPLACE FUNCTION engineering.set_source_token(name text, token text)
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

CREATE OR REPLACE FUNCTION engineering.alter_source(name text, base_url text DEFAULT NULL, config jsonb DEFAULT NULL,
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

GRANT EXECUTE ON FUNCTION
    engineering.add_source(text, text, text, jsonb, text, interval),
    engineering.set_source_token(text, text)
TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
    engineering.add_source(text, text, text, jsonb, text, interval),
    engineering.set_source_token(text, text)
FROM engineering_admin;
