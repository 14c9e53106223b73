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

-- issue 18: real vendor payloads (GitHub run timing from jobs, GitLab duration and API-created
-- deployments, Jenkins causes and change sets, PagerDuty acknowledger, Opsgenie incidents per
-- impacted service, Prometheus fractional sample times)

CREATE OR REPLACE FUNCTION engineering._github_map_runs(src_id integer, config jsonb, default_branch text, runs jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    run_rows engineering.pipeline_runs[];
    deploy_rows engineering.deployments[];
    n_runs bigint;
    n_deploys bigint;
    new_deploys bigint[];
    re text := config->>'deployment_workflows';
    service text := engineering._github_service(config);
BEGIN
    IF jsonb_typeof(runs) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of workflow runs, got %', coalesce(jsonb_typeof(runs), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT (r->>'id') || '/' || a.attempt AS external_id, (r->>'id')::bigint AS run_id, a.attempt,
                   coalesce(nullif(btrim(r->>'name'), ''), nullif(r->>'path', ''),
                            'workflow ' || coalesce(r->>'workflow_id', '?')) AS pipeline,
                   r->>'path' AS path, r->>'head_branch' AS branch,
                   engineering._github_sha(r->>'head_sha') AS commit_sha, r->>'event' AS event,
                   t.st AS status, q1.q AS queued_at, s1.s AS started_at,
                   -- a run object has no end: its jobs' latest completed_at
                   -- (read once the run is final, kept in attributes) is it;
                   -- until then updated_at, which GitHub also moves long after
                   -- a run (artifacts, logs, a re-run of another attempt)
                   CASE WHEN t.st IN ('success', 'failure', 'cancelled', 'skipped')
                        THEN greatest(coalesce(j.completed, t.u, s1.s, q1.q), s1.s, q1.q) END AS finished_at,
                   r->>'html_url' AS url,
                   jsonb_strip_nulls(jsonb_build_object(
                       'run_id', r->'id', 'workflow_id', r->'workflow_id', 'workflow_path', r->'path',
                       'run_number', r->'run_number', 'github_status', r->'status',
                       'github_conclusion', r->'conclusion', 'actor', r->'actor'->'login',
                       'display_title', r->'display_title',
                       'pull_requests', (SELECT jsonb_agg(p->'number') FROM jsonb_array_elements(
                           CASE WHEN jsonb_typeof(r->'pull_requests') = 'array'
                                THEN r->'pull_requests' ELSE '[]' END) p))) AS attributes
            FROM jsonb_array_elements(runs) r,
                 LATERAL (SELECT CASE WHEN r->>'run_attempt' ~ '^\d{1,4}$'
                                      THEN greatest((r->>'run_attempt')::integer, 1) ELSE 1 END AS attempt) a,
                 LATERAL (SELECT engineering._github_run_status(r->>'status', r->>'conclusion') AS st,
                                 engineering._ts(r->'created_at') AS created,
                                 engineering._ts(r->'run_started_at') AS rs,
                                 engineering._ts(r->'updated_at') AS u) t,
                 -- what the run's jobs said, when they were read
                 LATERAL (SELECT engineering._ts(p.jobs->'jobs_started_at') AS started,
                                 engineering._ts(p.jobs->'jobs_completed_at') AS completed
                          FROM (SELECT (SELECT p.attributes FROM engineering.pipeline_runs p
                                        WHERE p.source_id = src_id
                                          AND p.external_id = (r->>'id') || '/' || a.attempt) AS jobs) p) j,
                 -- created_at is the first attempt's: a re-run attempt's
                 -- queue time is not in the payload
                 LATERAL (SELECT CASE WHEN a.attempt = 1 THEN t.created END AS q) q1,
                 -- runs recorded before 2021 have no run_started_at: their
                 -- jobs' earliest start, else none (created_at is when the
                 -- run was queued, and a start there would hide the wait)
                 LATERAL (SELECT CASE WHEN coalesce(t.rs, j.started) IS NOT NULL
                                      THEN greatest(coalesce(t.rs, j.started), q1.q)
                                      WHEN a.attempt > 1 THEN t.created END AS s) s1
            WHERE jsonb_typeof(r) = 'object' AND r->>'id' ~ '^\d{1,18}$'
        ) x
        ORDER BY external_id)
    SELECT array_agg(ROW(NULL, src_id, m.external_id, service, m.pipeline, m.branch, m.commit_sha, m.event,
                         m.status, m.queued_at, m.started_at, m.finished_at, m.attempt, m.url,
                         m.attributes)::engineering.pipeline_runs),
           -- Repositories that deploy from a workflow instead of the
           -- Deployments API: each successful run of a matching workflow on
           -- the default branch is a deployment.
           array_agg(ROW(NULL, src_id, 'run:' || m.external_id, service,
                         coalesce(config->>'deployment_environment', 'production'), m.commit_sha,
                         m.started_at, m.finished_at, 'success', m.url,
                         jsonb_build_object('workflow_run_id', m.run_id, 'attempt', m.attempt,
                                            'workflow', m.pipeline))::engineering.deployments)
               FILTER (WHERE re IS NOT NULL AND default_branch IS NOT NULL
                         AND m.status = 'success' AND m.branch = default_branch
                         AND (m.pipeline ~ re OR coalesce(m.path, '') ~ re))
    INTO run_rows, deploy_rows
    FROM m;

    n_runs := engineering._upsert_pipeline_runs(run_rows);
    SELECT count(*), array_agg(u.id ORDER BY u.id) FILTER (WHERE NOT u.compare_decided)
    INTO n_deploys, new_deploys
    FROM engineering._upsert_deployments(deploy_rows) u;

    IF new_deploys IS NOT NULL THEN
        PERFORM engineering._github_link(src_id, config, new_deploys);
    END IF;
    RETURN n_runs + n_deploys;
END;
$$;
COMMENT ON FUNCTION engineering._github_map_runs(integer, jsonb, text, jsonb) IS
    'upserts workflow runs (one pipeline_runs row per attempt, external_id "run_id/attempt") and, with deployment_workflows, the deployments they are; returns the rows changed';

CREATE FUNCTION engineering._github_enqueue_jobs(src engineering.sources, runs jsonb)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'run_jobs',
           '/repos/' || (src.config->>'repository') || '/actions/runs/' || (r->>'id')
               || CASE WHEN r->>'run_attempt' ~ '^\d{1,4}$' THEN '/attempts/' || (r->>'run_attempt') ELSE '' END
               || '/jobs?per_page=100',
           jsonb_build_object('run', p.external_id, 'missing_ok', true)
    FROM jsonb_array_elements(runs) r
    JOIN engineering.pipeline_runs p
      ON p.source_id = src.id
     AND p.external_id = (r->>'id') || '/' || CASE WHEN r->>'run_attempt' ~ '^\d{1,4}$'
                                                  THEN greatest((r->>'run_attempt')::integer, 1) ELSE 1 END
    WHERE jsonb_typeof(r) = 'object' AND r->>'id' ~ '^\d{1,18}$' AND r->>'status' = 'completed'
      AND p.status NOT IN ('queued', 'running') AND NOT p.attributes ? 'jobs_read'
      AND NOT EXISTS (SELECT 1 FROM engineering.sync_tasks t
                      WHERE t.source_id = src.id AND t.stream = 'run_jobs' AND t.payload->>'run' = p.external_id)
    ORDER BY p.external_id;
END;
COMMENT ON FUNCTION engineering._github_enqueue_jobs(engineering.sources, jsonb) IS
    'queues the jobs of those completed runs (the attempt listed) whose jobs were not read yet: once per attempt';

CREATE FUNCTION engineering._github_map_jobs(src_id integer, run_external_id text, jobs jsonb, earlier jsonb,
                                             complete boolean)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    first_start timestamptz;
    last_end timestamptz;
BEGIN
    IF jsonb_typeof(jobs) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of workflow jobs, got %', coalesce(jsonb_typeof(jobs), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a job that never ran (skipped, cancelled while queued) has no
    -- completed_at, or one equal to its started_at: it still counts, as
    -- GitHub's own run duration does
    SELECT least(min(engineering._ts(j->'started_at')), engineering._ts(earlier->'started')),
           greatest(max(engineering._ts(j->'completed_at')), engineering._ts(earlier->'completed'))
    INTO first_start, last_end
    FROM jsonb_array_elements(jobs) j
    WHERE jsonb_typeof(j) = 'object';
    IF NOT complete THEN
        RETURN jsonb_strip_nulls(jsonb_build_object('started', engineering._iso8601(first_start),
                                                    'completed', engineering._iso8601(last_end)));
    END IF;
    UPDATE engineering.pipeline_runs p SET
        started_at = coalesce(p.started_at, greatest(first_start, p.queued_at)),
        finished_at = CASE WHEN p.status IN ('success', 'failure', 'cancelled', 'skipped')
                           THEN greatest(coalesce(last_end, p.finished_at),
                                         coalesce(p.started_at, greatest(first_start, p.queued_at)), p.queued_at)
                           ELSE p.finished_at END,
        attributes = p.attributes || jsonb_strip_nulls(jsonb_build_object(
            'jobs_read', true, 'jobs_started_at', engineering._iso8601(first_start),
            'jobs_completed_at', engineering._iso8601(last_end)))
    WHERE p.source_id = src_id AND p.external_id = run_external_id;
    RETURN '{}';
END;
$$;
COMMENT ON FUNCTION engineering._github_map_jobs(integer, text, jsonb, jsonb, boolean) IS
    'a page of a run attempt''s jobs: with complete, the latest completed_at becomes the run''s finished_at and, for runs without run_started_at, the earliest started_at its start (both kept in attributes); else returns the times so far for the next page';

CREATE OR REPLACE FUNCTION engineering._github_ingest_runs(src engineering.sources, task engineering.sync_tasks,
                                                headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    from_ts timestamptz := engineering._ts(task.payload->'from');
    to_ts timestamptz := engineering._ts(task.payload->'to');
    total bigint;
    parts integer;
    step interval;
    n bigint;
    next_url text;
    runs jsonb := body->'workflow_runs';
BEGIN
    IF jsonb_typeof(runs) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected GitHub response: no workflow_runs array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    total := CASE WHEN body->>'total_count' ~ '^\d{1,15}$' THEN (body->>'total_count')::bigint END;

    -- A filtered list returns at most 1,000 runs: split the window first.
    IF (task.payload->>'first')::boolean AND total > 1000 AND to_ts - from_ts > interval '2 seconds' THEN
        parts := least(greatest(ceil(total / 500.0)::integer, 2), 64);
        step := (to_ts - from_ts) / parts;
        FOR i IN 0 .. parts - 1 LOOP
            PERFORM engineering._github_enqueue_runs(src.id, src.config,
                date_trunc('second', from_ts + step * i),
                CASE WHEN i = parts - 1 THEN to_ts ELSE date_trunc('second', from_ts + step * (i + 1)) END);
        END LOOP;
        RETURN 0;
    END IF;

    n := engineering._github_map_runs(src.id, src.config,
                                      coalesce(src.config->>'default_branch', src.cursor->>'default_branch'),
                                      runs);
    PERFORM engineering._github_enqueue_attempts(src, runs);
    PERFORM engineering._github_enqueue_jobs(src, runs);

    next_url := engineering._link_next(headers->>'link');
    IF next_url IS NOT NULL THEN
        PERFORM engineering._enqueue(src.id, 'runs', next_url, task.payload || '{"first": false}');
    ELSE
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object('runs_created',
            engineering._iso8601(greatest(engineering._ts(cursor->'runs_created'), to_ts)))
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._github_ingest_runs(engineering.sources, engineering.sync_tasks, jsonb, jsonb) IS
    'a page of workflow runs: splits windows over the 1,000-result cap, maps the runs, follows Link next, advances runs_created when a window is done';

CREATE OR REPLACE FUNCTION engineering._github_ingest(src engineering.sources, task engineering.sync_tasks,
                                           status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    dep_id bigint;
    n bigint;
    next_url text;
BEGIN
    IF body IS NULL AND task.stream = 'run_jobs' THEN
        -- the jobs are gone (old runs lose them): the run keeps updated_at
        PERFORM engineering._github_map_jobs(src.id, task.payload->>'run', '[]', task.payload->'so_far', true);
        RETURN 0;
    END IF;
    IF body IS NULL THEN
        RETURN 0;       -- 404/410 of a missing_ok task: the object is gone
    END IF;
    CASE task.stream
    WHEN 'repository' THEN
        IF jsonb_typeof(body->'default_branch') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'unexpected GitHub response: no default_branch' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object('default_branch', body->'default_branch')
        WHERE id = src.id;
        RETURN 0;
    WHEN 'runs' THEN
        RETURN engineering._github_ingest_runs(src, task, headers, body);
    WHEN 'run', 'run_attempt' THEN
        n := engineering._github_map_runs(src.id, src.config,
                                          coalesce(src.config->>'default_branch', src.cursor->>'default_branch'),
                                          jsonb_build_array(body));
        IF task.stream = 'run' THEN
            PERFORM engineering._github_enqueue_attempts(src, jsonb_build_array(body));
        END IF;
        PERFORM engineering._github_enqueue_jobs(src, jsonb_build_array(body));
        RETURN n;
    WHEN 'run_jobs' THEN
        IF jsonb_typeof(body->'jobs') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected GitHub response: no jobs array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        next_url := engineering._link_next(headers->>'link');
        IF next_url IS NOT NULL THEN
            PERFORM engineering._enqueue(src.id, task.stream, next_url,
                task.payload || jsonb_build_object('so_far', engineering._github_map_jobs(
                    src.id, task.payload->>'run', body->'jobs', task.payload->'so_far', false)));
            RETURN 0;
        END IF;
        PERFORM engineering._github_map_jobs(src.id, task.payload->>'run', body->'jobs', task.payload->'so_far', true);
        RETURN 1;
    WHEN 'deployments', 'pulls' THEN
        RETURN engineering._github_ingest_listing(src, task, headers, body);
    WHEN 'deployment_statuses' THEN
        dep_id := engineering._github_map_deployment(src.id, src.config, task.payload->'deployment', body);
        RETURN CASE WHEN dep_id IS NULL THEN 0 ELSE 1 END;
    WHEN 'pull_commits' THEN
        n := engineering._github_map_pull_commits(src.id, (task.payload->>'number')::integer, body);
        next_url := engineering._link_next(headers->>'link');
        IF next_url IS NOT NULL THEN
            PERFORM engineering._enqueue(src.id, task.stream, next_url, task.payload);
        END IF;
        RETURN n;
    WHEN 'compare' THEN
        dep_id := (task.payload->>'deployment_id')::bigint;
        -- a newer decision about this deployment's base supersedes this compare
        IF NOT EXISTS (SELECT 1 FROM engineering.deployments d
                       WHERE d.id = dep_id AND d.attributes->>'compare_base' = task.payload->>'base') THEN
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'commits') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected GitHub response: no commits array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := engineering._github_map_compare(src.id, src.config, dep_id, body->'commits');
        next_url := engineering._link_next(headers->>'link');
        IF next_url IS NOT NULL THEN
            PERFORM engineering._enqueue(src.id, task.stream, next_url, task.payload);
        END IF;
        RETURN n;
    ELSE
        RAISE EXCEPTION 'unknown GitHub stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._github_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one GitHub response to rows, queues follow-up requests and advances the cursor; returns rows changed';

CREATE OR REPLACE FUNCTION engineering._gitlab_map_pipelines(src_id integer, config jsonb, pipelines jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
    service text := engineering._gitlab_service(config);
BEGIN
    IF jsonb_typeof(pipelines) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab pipelines, got %', coalesce(jsonb_typeof(pipelines), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT p->>'id' AS external_id, o,
                   coalesce(nullif(btrim(p->>'name'), ''),
                            substring(p->>'web_url' FROM '^https?://[^/]+/(.+)/-/pipelines/[0-9]+$'),
                            config->>'project') AS pipeline,
                   p->>'ref' AS branch, engineering._gitlab_sha(p->>'sha') AS commit_sha,
                   p->>'source' AS event, st.status, t.queued, t.started,
                   -- GitLab's duration is the union of the jobs' running
                   -- times: a job retried (or a manual job run) hours later
                   -- moves finished_at, not the duration
                   CASE WHEN st.status IN ('success', 'failure', 'cancelled', 'skipped')
                        THEN greatest(coalesce(t.started + make_interval(secs => t.duration), t.finished,
                                               t.updated, t.started, t.queued),
                                      t.started, t.queued) END AS finished,
                   p->>'web_url' AS url,
                   jsonb_strip_nulls(jsonb_build_object(
                       'pipeline_id', p->'id', 'iid', p->'iid', 'gitlab_status', p->'status',
                       'duration', p->'duration', 'queued_duration', p->'queued_duration',
                       'before_sha', p->'before_sha', 'tag', p->'tag', 'user', p->'user'->'username',
                       'updated_at', p->'updated_at', 'finished_at', p->'finished_at',
                       'detailed_status', p->'detailed_status'->'group')) AS attributes
            FROM jsonb_array_elements(pipelines) WITH ORDINALITY AS e(p, o),
                 LATERAL (SELECT engineering._ts(p->'created_at') AS created,
                                 engineering._ts(p->'started_at') AS started0,
                                 engineering._ts(p->'finished_at') AS finished,
                                 engineering._ts(p->'updated_at') AS updated,
                                 CASE WHEN jsonb_typeof(p->'duration') = 'number'
                                      THEN greatest((p->>'duration')::double precision, 0) END AS duration) t0,
                 LATERAL (SELECT t0.created AS queued,
                                 CASE WHEN t0.started0 IS NOT NULL
                                      THEN greatest(t0.started0, t0.created) END AS started,
                                 t0.finished, t0.updated, t0.duration) t,
                 LATERAL (SELECT engineering._gitlab_pipeline_status(p->>'status', t0.finished IS NOT NULL) AS status) st
            WHERE jsonb_typeof(p) = 'object' AND p->>'id' ~ '^[0-9]{1,18}$'
              AND (t.queued IS NOT NULL OR t.started IS NOT NULL)
        ) x
        ORDER BY external_id, o)
    SELECT engineering._upsert_pipeline_runs(array_agg(ROW(
               NULL, src_id, m.external_id, service, m.pipeline, m.branch, m.commit_sha, m.event, m.status,
               m.queued, m.started, m.finished, 1, m.url, m.attributes)::engineering.pipeline_runs))
    INTO n
    FROM m;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_pipelines(integer, jsonb, jsonb) IS
    'upserts GitLab pipelines (the single-pipeline shape, with started_at/finished_at) as pipeline_runs keyed by pipeline id; returns the rows changed';

CREATE OR REPLACE FUNCTION engineering._gitlab_map_deployments(src_id integer, config jsonb, deployments jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
    newly_successful bigint[];
    service text := engineering._gitlab_service(config);
BEGIN
    IF jsonb_typeof(deployments) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab deployments, got %', coalesce(jsonb_typeof(deployments), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT d->>'id' AS external_id, o,
                   coalesce(nullif(btrim(d->'environment'->>'name'), ''), 'production') AS environment,
                   engineering._gitlab_sha(d->>'sha') AS commit_sha, st.status, t.started,
                   -- the deployment job's end is the deploy time; a deployment
                   -- updated by the API without a job ends at its last update,
                   -- and one created final by the API (no job, no update) when
                   -- it was created
                   CASE WHEN st.status <> 'running'
                        THEN greatest(coalesce(t.job_finished, t.updated, t.created), t.started) END AS finished,
                   coalesce(d->'deployable'->>'web_url', d->'deployable'->'pipeline'->>'web_url') AS url,
                   jsonb_strip_nulls(jsonb_build_object(
                       'deployment_id', d->'id', 'iid', d->'iid', 'ref', d->'ref', 'gitlab_status', d->'status',
                       'environment_id', d->'environment'->'id', 'external_url', d->'environment'->'external_url',
                       'job_id', d->'deployable'->'id', 'job_name', d->'deployable'->'name',
                       'pipeline_id', d->'deployable'->'pipeline'->'id', 'user', d->'user'->'username',
                       'updated_at', d->'updated_at')) AS attributes
            FROM jsonb_array_elements(deployments) WITH ORDINALITY AS e(d, o),
                 LATERAL (SELECT coalesce(engineering._ts(d->'deployable'->'started_at'),
                                          engineering._ts(d->'created_at')) AS started,
                                 engineering._ts(d->'deployable'->'finished_at') AS job_finished,
                                 engineering._ts(d->'updated_at') AS updated,
                                 engineering._ts(d->'created_at') AS created) t,
                 LATERAL (SELECT engineering._gitlab_deployment_status(d->>'status') AS status) st
            WHERE jsonb_typeof(d) = 'object' AND d->>'id' ~ '^[0-9]{1,18}$'
              AND (st.status = 'running' OR coalesce(t.job_finished, t.updated, t.created) IS NOT NULL)
        ) x
        ORDER BY external_id, o)
    SELECT count(*), array_agg(u.id ORDER BY u.id) FILTER (WHERE u.status = 'success' AND NOT u.compare_decided)
    INTO n, newly_successful
    FROM engineering._upsert_deployments((
             SELECT array_agg(ROW(NULL, src_id, m.external_id, service, m.environment, m.commit_sha,
                                  m.started, m.finished, m.status, m.url, m.attributes)::engineering.deployments)
             FROM m)) u;

    IF newly_successful IS NOT NULL THEN
        PERFORM engineering._gitlab_link(src_id, config, newly_successful);
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_deployments(integer, jsonb, jsonb) IS
    'upserts GitLab deployments (environment name kept; deploy time = the deployment job''s finished_at) and queues the compare of new successes; returns the rows changed';

CREATE OR REPLACE FUNCTION engineering._jenkins_build_tree()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'number,url,timestamp,duration,building,result,queueId,'
    || 'actions[_class,lastBuiltRevision[SHA1,branch[name]],remoteUrls,causes[_class,shortDescription,userId],'
    || 'parameters[name,value],queuingDurationMillis],changeSets[items[commitId]]';
COMMENT ON FUNCTION engineering._jenkins_build_tree() IS
    'the properties of a build the connector asks Jenkins for (tree parameter)';

CREATE OR REPLACE FUNCTION engineering._jenkins_event(causes jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT CASE
            WHEN c IS NULL THEN NULL
            WHEN c ~ 'UserIdCause|UserCause' THEN 'manual'
            WHEN c ~ 'TimerTrigger' THEN 'schedule'
            WHEN c ~ 'UpstreamCause' THEN 'upstream'
            WHEN c ~ 'RemoteCause' THEN 'api'
            WHEN c ~ 'ReplayCause' THEN 'replay'
            WHEN c ~ 'RebuildCause' THEN 'rebuild'
            WHEN c ~ 'BranchIndexingCause' THEN 'branch_indexing'
            WHEN c ~ 'PullRequest|Ghprb|MergeRequest' THEN 'pull_request'
            WHEN c ~ 'SCMTrigger|BranchEventCause|PushCause|WebHookCause' THEN 'push'
            ELSE nullif(lower(regexp_replace(c, '^.*[.$]', '')), '') END
        -- Without a tree parameter (and in some plugins' output) causes
        -- have no _class: what they hold tells the kind
        FROM (SELECT coalesce(x->>'_class', CASE
                         WHEN x ? 'userId' OR x ? 'userName' OR sd ~* '^started by user' THEN 'UserIdCause'
                         WHEN x ? 'upstreamProject' OR sd ~* '^started by upstream' THEN 'UpstreamCause'
                         WHEN x ? 'addr' OR sd ~* '^started by remote' THEN 'RemoteCause'
                         WHEN sd ~* '^started by timer' THEN 'TimerTrigger'
                         WHEN sd ~* '^started by an SCM change|^started by GitHub push|^push event' THEN 'SCMTrigger'
                         WHEN sd ~* '^branch indexing' THEN 'BranchIndexingCause'
                         WHEN sd ~* '^branch event' THEN 'BranchEventCause'
                         WHEN sd ~* '^replayed' THEN 'ReplayCause'
                         END) AS c
              FROM jsonb_array_elements(
                  CASE WHEN jsonb_typeof(causes) = 'array' THEN causes ELSE '[]' END) WITH ORDINALITY AS e(x, o),
                   LATERAL (SELECT CASE WHEN jsonb_typeof(x->'shortDescription') = 'string'
                                        THEN x->>'shortDescription' END AS sd) d
              WHERE jsonb_typeof(x) = 'object'
              ORDER BY o LIMIT 1) first_cause);
COMMENT ON FUNCTION engineering._jenkins_event(jsonb) IS
    'pipeline_runs.event from the first cause of a build: manual, schedule, push, upstream, api, pull_request, replay, ... (else the cause''s class name); a cause without _class by its fields or shortDescription';

CREATE OR REPLACE FUNCTION engineering._jenkins_map_builds(src_id integer, config jsonb, root text, path text,
                                                builds jsonb, branch_hint text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    run_rows engineering.pipeline_runs[];
    deploy_rows engineering.deployments[];
    n_runs bigint;
    n_deploys bigint;
    service text := engineering._jenkins_service(config, root, path);
    is_deploy boolean := config->>'deployment_jobs' IS NOT NULL AND path ~ (config->>'deployment_jobs');
    repo_re text := config->>'repository_url';
BEGIN
    IF jsonb_typeof(builds) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of Jenkins builds, got %', coalesce(jsonb_typeof(builds), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT path || '#' || (b->>'number') AS external_id, o, b, st.status, t.started, t.queued,
                   CASE WHEN st.status <> 'running'
                        THEN t.started + make_interval(secs => t.duration_ms / 1000.0) END AS finished,
                   CASE WHEN lower(rev.sha) ~ '^[0-9a-f]{7,64}$' THEN lower(rev.sha)
                        -- no git BuildData: the newest commit of the build's change sets
                        WHEN rev.sha IS NULL AND lower(cs.sha) ~ '^[0-9a-f]{7,64}$' THEN lower(cs.sha) END AS commit_sha,
                   coalesce(branch_hint,
                            regexp_replace(rev.branch, '^(refs/remotes/[^/]+/|refs/heads/|origin/)', '')) AS branch,
                   (SELECT p->>'value'
                    FROM jsonb_array_elements(b->'actions') a, jsonb_array_elements(a->'parameters') p
                    WHERE jsonb_typeof(b->'actions') = 'array' AND jsonb_typeof(a->'parameters') = 'array'
                      AND p->>'name' = config->>'environment_parameter'
                    LIMIT 1) AS environment_param,
                   rev.remote_urls
            FROM jsonb_array_elements(builds) WITH ORDINALITY AS e(b, o)
            CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(b->'actions') = 'array'
                                            THEN b->'actions' ELSE '[]' END AS actions) act
            -- the git revision: the checkout whose remote matches repository_url,
            -- else the last one (a Pipeline's shared libraries check out first)
            LEFT JOIN LATERAL (
                SELECT a->'lastBuiltRevision'->>'SHA1' AS sha,
                       a->'lastBuiltRevision'->'branch'->0->>'name' AS branch, a->'remoteUrls' AS remote_urls
                FROM jsonb_array_elements(act.actions) WITH ORDINALITY AS x(a, ao)
                WHERE jsonb_typeof(a->'lastBuiltRevision') = 'object'
                ORDER BY (repo_re IS NOT NULL AND EXISTS (
                             SELECT 1 FROM jsonb_array_elements_text(
                                 CASE WHEN jsonb_typeof(a->'remoteUrls') = 'array' THEN a->'remoteUrls' ELSE '[]' END) u
                             WHERE u ~ repo_re)) DESC, ao DESC
                LIMIT 1) rev ON true
            LEFT JOIN LATERAL (
                SELECT i->>'commitId' AS sha
                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b->'changeSets') = 'array'
                                               THEN b->'changeSets' ELSE '[]' END) WITH ORDINALITY AS c(cs, co),
                     jsonb_array_elements(CASE WHEN jsonb_typeof(cs->'items') = 'array'
                                               THEN cs->'items' ELSE '[]' END) WITH ORDINALITY AS ci(i, io)
                WHERE jsonb_typeof(i->'commitId') = 'string'
                ORDER BY co DESC, io DESC
                LIMIT 1) cs ON true
            CROSS JOIN LATERAL (
                SELECT engineering._ts(b->'timestamp') AS started,
                       CASE WHEN jsonb_typeof(b->'duration') = 'number'
                            THEN greatest((b->>'duration')::double precision, 0) ELSE 0 END AS duration_ms,
                       (SELECT (a->>'queuingDurationMillis')::double precision
                        FROM jsonb_array_elements(act.actions) a
                        WHERE jsonb_typeof(a->'queuingDurationMillis') = 'number'
                          AND (a->>'queuingDurationMillis')::double precision >= 0
                        LIMIT 1) AS queuing_ms) t0
            CROSS JOIN LATERAL (SELECT t0.started, t0.duration_ms,
                                       t0.started - make_interval(secs => t0.queuing_ms / 1000.0) AS queued) t
            CROSS JOIN LATERAL (SELECT engineering._jenkins_run_status(b->>'result',
                                           CASE WHEN jsonb_typeof(b->'building') = 'boolean'
                                                THEN (b->>'building')::boolean END) AS status) st
            WHERE jsonb_typeof(b) = 'object' AND b->>'number' ~ '^[0-9]{1,9}$'
              AND jsonb_typeof(b->'timestamp') = 'number'
        ) x
        ORDER BY external_id, o)
    SELECT array_agg(ROW(
               NULL, src_id, m.external_id, service, path, m.branch, m.commit_sha,
               engineering._jenkins_event((SELECT a->'causes' FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(m.b->'actions') = 'array' THEN m.b->'actions' ELSE '[]' END) a
                   WHERE jsonb_typeof(a->'causes') = 'array' LIMIT 1)),
               m.status, m.queued, m.started, m.finished, 1, m.b->>'url',
               jsonb_strip_nulls(jsonb_build_object(
                   'job', path, 'root', root, 'number', (m.b->>'number')::integer,
                   'jenkins_result', m.b->'result', 'building', m.b->'building',
                   'duration_ms', m.b->'duration', 'queue_id', m.b->'queueId',
                   'remote_urls', m.remote_urls, 'branch_hint', branch_hint))
           )::engineering.pipeline_runs),
           array_agg(ROW(
               NULL, src_id, m.external_id, service,
               coalesce(nullif(btrim(m.environment_param), ''), config->>'deployment_environment', 'production'),
               m.commit_sha, m.started, m.finished,
               CASE m.status WHEN 'skipped' THEN 'cancelled' ELSE m.status END, m.b->>'url',
               jsonb_build_object('job', path, 'number', (m.b->>'number')::integer, 'jenkins_result', m.b->'result')
           )::engineering.deployments) FILTER (WHERE is_deploy)
    INTO run_rows, deploy_rows
    FROM m;

    -- a build seen again is no longer missing
    n_runs := engineering._upsert_pipeline_runs(run_rows, cleared_keys => '{jenkins_missing}');
    SELECT count(*) INTO n_deploys
    FROM engineering._upsert_deployments(deploy_rows, cleared_keys => '{jenkins_missing}');
    RETURN n_runs + n_deploys;
END;
$$;
COMMENT ON FUNCTION engineering._jenkins_map_builds(integer, jsonb, text, text, jsonb, text) IS
    'upserts builds of one job as pipeline_runs (external_id "job#number"; epoch-millisecond timestamp and duration) and, for jobs matching deployment_jobs, as deployments; returns the rows changed';

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
                   'resolve_reason', i->'resolve_reason'->'type', 'acknowledged_by', a.ack_by,
                   'teams', (SELECT jsonb_agg(x->'summary') FROM jsonb_array_elements(
                                CASE WHEN jsonb_typeof(i->'teams') = 'array' THEN i->'teams' ELSE '[]' END) x
                             WHERE jsonb_typeof(x) = 'object' AND x ? 'summary'),
                   'assignees', (SELECT jsonb_agg(x->'assignee'->'summary') FROM jsonb_array_elements(
                                    CASE WHEN jsonb_typeof(i->'assignments') = 'array' THEN i->'assignments' ELSE '[]' END) x
                                 WHERE jsonb_typeof(x->'assignee') = 'object' AND x->'assignee' ? 'summary'))) AS attributes
        FROM raw,
             LATERAL (SELECT engineering._ts(i->'created_at') AS opened) t,
             -- until the log entries are read: the earliest current
             -- acknowledgement and its acknowledger, or the last status
             -- change (and who made it) of an incident that is acknowledged now
             LATERAL (SELECT coalesce(c.at, CASE WHEN i->>'status' = 'acknowledged'
                                                 THEN engineering._ts(i->'last_status_change_at') END) AS ack,
                             CASE WHEN c.at IS NOT NULL THEN c.who
                                  WHEN i->>'status' = 'acknowledged'
                                       AND i->'last_status_change_by'->>'type' IS DISTINCT FROM 'service_reference'
                                  THEN nullif(btrim(i->'last_status_change_by'->>'summary'), '') END AS ack_by
                      FROM (SELECT NULL) one
                      LEFT JOIN LATERAL (
                          SELECT engineering._ts(x->'at') AS at, nullif(btrim(x->'acknowledger'->>'summary'), '') AS who
                          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(i->'acknowledgements') = 'array'
                                                         THEN i->'acknowledgements' ELSE '[]' END)
                               WITH ORDINALITY AS y(x, o)
                          WHERE jsonb_typeof(x) = 'object' AND engineering._ts(x->'at') IS NOT NULL
                          ORDER BY 1, o LIMIT 1) c ON true) a)
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

CREATE FUNCTION engineering._opsgenie_services(config jsonb, incident jsonb)
RETURNS TABLE (ordinal bigint, service text, service_ids jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    -- An incident's payload names its impacted services by id only (no
    -- names): an id becomes a service through service_map, else config
    -- service, else "unknown", never the raw id.
    WITH ids AS (
        SELECT s.id, s.o
        FROM jsonb_array_elements_text(coalesce(
                 (SELECT jsonb_agg(e ORDER BY o) FROM jsonb_array_elements(
                      CASE WHEN jsonb_typeof(incident->'impactedServices') = 'array'
                           THEN incident->'impactedServices' ELSE '[]' END) WITH ORDINALITY AS x(e, o)
                  WHERE jsonb_typeof(e) = 'string' AND btrim(e #>> '{}') <> ''),
                 CASE WHEN jsonb_typeof(incident->'serviceId') = 'string' AND btrim(incident->>'serviceId') <> ''
                      THEN jsonb_build_array(incident->'serviceId') END,
                 '[]')) WITH ORDINALITY AS s(id, o)),
    named AS (
        SELECT coalesce(config->'service_map'->>ids.id, config->>'service', 'unknown') AS service, ids.id, ids.o
        FROM ids
        UNION ALL
        SELECT coalesce(config->>'service', 'unknown'), NULL, 1
        WHERE NOT EXISTS (SELECT 1 FROM ids))
    SELECT row_number() OVER (ORDER BY min(named.o)), named.service,
           coalesce(jsonb_agg(named.id ORDER BY named.o) FILTER (WHERE named.id IS NOT NULL), '[]')
    FROM named
    GROUP BY named.service
    ORDER BY min(named.o);
END;
COMMENT ON FUNCTION engineering._opsgenie_services(jsonb, jsonb) IS
    'services an Opsgenie incident impacts, in the order first named: each impactedServices id (or serviceId when that list is empty) through service_map, else config service, else "unknown"; with the ids behind each';

CREATE OR REPLACE FUNCTION engineering._opsgenie_map_incidents(src_id integer, config jsonb, items jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    incident_rows engineering.incidents[];
    external_ids text[];
    opsgenie_ids text[];
    n bigint;
    removed bigint;
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
    -- One row per service the incident impacts, so that each service
    -- counts it: external_id is the incident id for the first service and
    -- "<id>/<service>" for each further one.
    m AS (
        SELECT CASE WHEN sv.ordinal = 1 THEN i->>'id' ELSE (i->>'id') || '/' || sv.service END AS external_id,
               i->>'id' AS opsgenie_id,
               sv.service,
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
                   'service_id', i->'serviceId', 'service_ids', nullif(sv.service_ids, '[]'),
                   'created_at', i->'createdAt', 'updated_at', i->'updatedAt',
                   'impact_start_date', i->'impactStartDate', 'impact_end_date', i->'impactEndDate',
                   'tags', i->'tags', 'owner_team', nullif(i->'ownerTeam', '""'),
                   'html_url', i->'links'->'web')) AS attributes
        FROM raw,
             LATERAL (SELECT coalesce(engineering._ts(i->'impactStartDate'), engineering._ts(i->'createdAt')) AS opened) t,
             LATERAL engineering._opsgenie_services(config, i) sv)
    -- A fresh copy makes stale every key it maps (and the mark of an
    -- incident that answered 404).  Opsgenie incidents have no
    -- acknowledgement: one set by hand is kept.
    SELECT array_agg(ROW(
               NULL, src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at,
               NULL, m.resolved_at, NULL, false, m.attributes)::engineering.incidents),
           array_agg(m.external_id), array_agg(DISTINCT m.opsgenie_id)
    INTO incident_rows, external_ids, opsgenie_ids
    FROM m;
    n := engineering._upsert_incidents(incident_rows,
        '{opsgenie_id,tiny_id,opsgenie_status,priority,impacted_services,service_id,service_ids,created_at,updated_at,impact_start_date,impact_end_date,tags,owner_team,html_url,opsgenie_gone}');
    -- the rows of services an incident no longer impacts go
    DELETE FROM engineering.incidents d
    WHERE d.source_id = src_id AND d.attributes->>'opsgenie_id' = ANY (opsgenie_ids)
      AND d.external_id <> ALL (external_ids);
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN n + removed;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_map_incidents(integer, jsonb, jsonb) IS
    'upserts Opsgenie incident objects, one row per impacted service (external_id = incident id, then "<id>/<service>"; opened at impact start, else createdAt; resolved at impact end, else updatedAt) and removes the rows of services no longer impacted; returns the rows changed';

DROP FUNCTION engineering._opsgenie_service(jsonb, jsonb);

CREATE OR REPLACE FUNCTION engineering._opsgenie_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    since timestamptz := engineering._since(src.config);
    lookback interval := coalesce((src.config->>'lookback')::interval, interval '10 minutes');
    watermark timestamptz;
    floor_ts timestamptz;
BEGIN
    -- The list has no time filter: read it newest first down to the
    -- watermark, less a look-back for incidents that reach search late.
    -- A watermark belongs to the query and since it was reached with: when
    -- either changes, the backfill starts again (upserts make that safe).
    IF src.cursor->'incidents_scope' IS DISTINCT FROM engineering._opsgenie_scope(src.config) THEN
        watermark := NULL;
    ELSE
        watermark := engineering._ts(src.cursor->'incidents_created');
    END IF;
    floor_ts := greatest(since, coalesce(watermark - lookback, since));
    PERFORM engineering._enqueue(src.id, 'incidents', engineering._opsgenie_incidents_url(src.config),
        jsonb_build_object('floor', engineering._iso8601(floor_ts), 'watermark', engineering._iso8601(watermark),
                           'scope', engineering._opsgenie_scope(src.config)));

    -- Incidents created before that and not resolved yet: by id.
    -- (once per incident, whatever the number of services it impacts)
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'incident', '/v1/incidents/' || engineering._urlencode(o.id) || '?identifierType=id',
           jsonb_build_object('incident', o.id, 'missing_ok', true)
    FROM (SELECT coalesce(attributes->>'opsgenie_id', external_id) AS id, min(opened_at) AS opened
          FROM engineering.incidents
          WHERE source_id = src.id AND status <> 'resolved'
            AND coalesce(engineering._ts(attributes->'created_at'), opened_at) < floor_ts
            AND NOT attributes ? 'opsgenie_gone'
          GROUP BY 1) o
    ORDER BY o.opened, o.id;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_plan(engineering.sources) IS
    'connector interface: queues the first page of incidents (newest first, down to the watermark) and the open incidents older than it by id';

CREATE OR REPLACE FUNCTION engineering._opsgenie_ingest(src engineering.sources, task engineering.sync_tasks,
                                             status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    CASE task.stream
    WHEN 'incidents' THEN
        RETURN engineering._opsgenie_ingest_incidents(src, task, body);
    WHEN 'incident' THEN
        IF body IS NULL THEN
            -- 404/410: deleted, or the key lost access; stop asking
            UPDATE engineering.incidents SET attributes = attributes || '{"opsgenie_gone": true}'
            WHERE source_id = src.id
              AND coalesce(attributes->>'opsgenie_id', external_id) = task.payload->>'incident';
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'data') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'unexpected Opsgenie response: no data object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN engineering._opsgenie_map_incidents(src.id, src.config, jsonb_build_array(body->'data'));
    ELSE
        RAISE EXCEPTION 'unknown Opsgenie stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one Opsgenie response to rows, queues follow-up requests and advances the cursor; returns rows changed';

CREATE OR REPLACE FUNCTION engineering._prometheus_points(body jsonb, from_s bigint, to_s bigint, step_seconds bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    result jsonb := body->'data'->'result';
    bad jsonb;
    points jsonb;
BEGIN
    IF jsonb_typeof(body) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'unexpected Prometheus response: expected a JSON object, got %', coalesce(jsonb_typeof(body), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body->>'status' = 'error' THEN
        RAISE EXCEPTION 'prometheus query failed (%): %',
                coalesce(body->>'errorType', 'no error type'), coalesce(body->>'error', 'no message')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body->>'status' IS DISTINCT FROM 'success' THEN
        RAISE EXCEPTION 'unexpected Prometheus response: status %', coalesce((body->'status')::text, 'missing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body->'data'->>'resultType' IS DISTINCT FROM 'matrix' THEN
        RAISE EXCEPTION 'unexpected Prometheus result type %, expected "matrix"', coalesce((body->'data'->'resultType')::text, 'missing')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A range query returns a matrix for any expression that yields an instant vector or a scalar.';
    END IF;
    IF jsonb_typeof(result) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected Prometheus response: data.result is not an array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT s INTO bad
    FROM jsonb_array_elements(result) s
    WHERE CASE WHEN jsonb_typeof(s) <> 'object' THEN true
               ELSE s ? 'values' AND jsonb_typeof(s->'values') <> 'array' END
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unexpected Prometheus series: %', left(bad::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(result) s WHERE s ? 'histograms') THEN
        RAISE EXCEPTION 'the query returned native histogram samples, not counts'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Count observations with histogram_count(), e.g. sum(histogram_count(increase(x[$step]))).';
    END IF;
    SELECT p INTO bad
    FROM jsonb_array_elements(result) s,
         jsonb_array_elements(coalesce(s->'values', '[]')) p
    WHERE CASE WHEN jsonb_typeof(p) <> 'array' THEN true
               WHEN jsonb_array_length(p) <> 2 THEN true
               WHEN jsonb_typeof(p->0) <> 'number' OR jsonb_typeof(p->1) <> 'string' THEN true
               ELSE NOT (p->>1 ~ '^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?$'
                         OR p->>1 IN ('NaN', '+Inf', 'Inf', '-Inf')) END
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unexpected Prometheus sample %, expected [<unix time>, "<value>"]', left(bad::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the instants asked for are from_s, from_s + step, ..., to_s; a time
    -- is taken to its second (Prometheus writes times with milliseconds, as
    -- in its documentation's 1435781430.781, and a query started off the
    -- second returns such times)
    SELECT p INTO bad
    FROM jsonb_array_elements(result) s,
         jsonb_array_elements(coalesce(s->'values', '[]')) p
    WHERE floor((p->>0)::numeric) BETWEEN from_s AND to_s
      AND (floor((p->>0)::numeric) - from_s) % step_seconds <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unexpected Prometheus sample time % (the query asked for every % s from %)',
                bad->0, step_seconds, engineering._iso8601(to_timestamp(from_s))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT jsonb_object_agg(t::text, v ORDER BY t) INTO points
    FROM (SELECT x.t,
                 CASE WHEN bool_or(x.v = 'NaN')
                           OR (bool_or(x.v IN ('+Inf', 'Inf')) AND bool_or(x.v = '-Inf')) THEN 'NaN'
                      WHEN bool_or(x.v IN ('+Inf', 'Inf')) THEN '+Inf'
                      WHEN bool_or(x.v = '-Inf') THEN '-Inf'
                      ELSE trim_scale(sum(CASE WHEN x.v NOT IN ('NaN', '+Inf', 'Inf', '-Inf')
                                               THEN x.v::numeric END))::text END AS v
          FROM (SELECT floor((p->>0)::numeric)::bigint AS t, p->>1 AS v
                FROM jsonb_array_elements(result) s,
                     jsonb_array_elements(coalesce(s->'values', '[]')) p
                WHERE floor((p->>0)::numeric) BETWEEN from_s AND to_s) x
          GROUP BY x.t) y;
    RETURN coalesce(points, '{}');
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_points(jsonb, bigint, bigint, bigint) IS
    'internal: a query_range response as {"<epoch>": "<value>"} for the window''s instants, series summed per instant (NaN, +Inf, -Inf kept as such); raises on an error body or an unexpected shape';
