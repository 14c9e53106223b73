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
