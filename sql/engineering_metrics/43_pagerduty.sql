-- engineering_metrics: the PagerDuty connector (REST API v2; README "Connectors >
-- PagerDuty", https://developer.pagerduty.com/api-reference/).
--
-- Streams (sync_tasks.stream) and what they feed:
--   incidents    GET /incidents?since=&until=&sort_by=created_at:asc&limit=100&offset=:
--                incidents created in a window (since/until filter on created_at).
--                Windows span at most 90 days (the API refuses more than 6 months);
--                a window that would page past offset + limit = 10,000 (a 400) is
--                continued as a new window from the newest created_at seen.
--   incident     GET /incidents/{id}: incidents not resolved yet, fetched again every
--                sync until they are (a 404 marks them gone and stops that)
--   log_entries  GET /incidents/{id}/log_entries?is_overview=true: the first
--                acknowledge_log_entry gives acknowledged_at; read once per incident,
--                when it is first seen acknowledged or resolved
--
-- Watermark in sources.cursor: incidents_created (end of the last complete
-- window), valid for incidents_scope (service_ids and since; a change
-- restarts the backfill).  The JSON-to-row mapping lives in _pagerduty_map_incidents and
-- _pagerduty_map_log_entries so that pg_regress tests it with fixtures.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._pagerduty_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF config ? 'service_ids' AND (jsonb_typeof(config->'service_ids') <> 'array'
        OR jsonb_array_length(config->'service_ids') = 0
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(config->'service_ids') e
                   WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' !~ '^[A-Za-z0-9]{1,64}$')) THEN
        RAISE EXCEPTION 'config service_ids must be a non-empty array of PagerDuty service ids'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"service_ids": ["PIJ90N7", "P1ABCDE"]}; leave it out to read every service.';
    END IF;
    IF config ? 'log_entries' AND jsonb_typeof(config->'log_entries') <> 'boolean' THEN
        RAISE EXCEPTION 'config log_entries must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'lookback' THEN
        BEGIN
            IF jsonb_typeof(config->'lookback') <> 'string'
               OR (config->>'lookback')::interval < interval '0'
               OR (config->>'lookback')::interval > interval '30 days' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
            END IF;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'config lookback must be an interval between 0 and 30 days, such as "10 minutes"'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_validate(jsonb) IS
    'checks a pagerduty source''s config: optional service_ids (array of ids), service, service_map, log_entries (boolean), lookback, since';

CREATE FUNCTION engineering._pagerduty_service(config jsonb, service jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(config->'service_map'->>(service->>'id'),
                engineering._map_service(config, coalesce(nullif(btrim(service->>'summary'), ''),
                                                          nullif(btrim(service->>'id'), ''))),
                'unknown');
COMMENT ON FUNCTION engineering._pagerduty_service(jsonb, jsonb) IS
    'service of a PagerDuty service reference: service_map by id, else by name (then config service, then the name), else the id, else "unknown"';

CREATE FUNCTION engineering._pagerduty_status(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE status
    WHEN 'triggered' THEN 'open'
    WHEN 'acknowledged' THEN 'acknowledged'
    WHEN 'resolved' THEN 'resolved'
    ELSE 'open' END;
COMMENT ON FUNCTION engineering._pagerduty_status(text) IS
    'incidents.status of a PagerDuty status: triggered open, acknowledged, resolved; anything else open (kept in attributes, fetched again until resolved)';

CREATE FUNCTION engineering._pagerduty_scope(config jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('service_ids', config->'service_ids', 'since', config->'since');
COMMENT ON FUNCTION engineering._pagerduty_scope(jsonb) IS
    'what a watermark was reached for (service_ids and since): a change restarts the backfill';

CREATE FUNCTION engineering._pagerduty_incidents_url(config jsonb, from_ts timestamptz, to_ts timestamptz,
                                                     page_offset integer)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN '/incidents?since=' || engineering._urlencode(engineering._iso8601(from_ts))
    || '&until=' || engineering._urlencode(engineering._iso8601(to_ts))
    || '&sort_by=created_at%3Aasc&limit=100&offset=' || page_offset
    || coalesce((SELECT string_agg('&service_ids%5B%5D=' || engineering._urlencode(id), '' ORDER BY o)
                 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(config->'service_ids') = 'array'
                                                     THEN config->'service_ids' ELSE '[]' END)
                      WITH ORDINALITY AS s(id, o)), '');
COMMENT ON FUNCTION engineering._pagerduty_incidents_url(jsonb, timestamptz, timestamptz, integer) IS
    'path of a page of GET /incidents: created in [from, to], oldest first, 100 per page, filtered by config service_ids';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/pagerduty.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._pagerduty_map_incidents(src_id integer, config jsonb, items jsonb)
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
               CASE WHEN a.ack IS NOT NULL THEN greatest(a.ack, t.opened) END AS acknowledged_at,
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
                               THEN engineering._ts(i->'last_status_change_at') END) AS ack) a),
    up AS (
        INSERT INTO engineering.incidents AS p
            (source_id, external_id, service, title, severity, status, opened_at, acknowledged_at,
             resolved_at, attributes)
        SELECT src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at,
               m.acknowledged_at, m.resolved_at, m.attributes
        FROM m
        ON CONFLICT (source_id, external_id) DO UPDATE SET
            service = EXCLUDED.service, title = EXCLUDED.title, severity = EXCLUDED.severity,
            status = EXCLUDED.status, opened_at = EXCLUDED.opened_at,
            -- the first acknowledgement ever seen (log entries know it best)
            acknowledged_at = CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                                   THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at),
                                                 EXCLUDED.opened_at) END,
            resolved_at = EXCLUDED.resolved_at,
            attributes = EXCLUDED.attributes || jsonb_strip_nulls(jsonb_build_object(
                'log_entries_read', p.attributes->'log_entries_read',
                'acknowledged_by', p.attributes->'acknowledged_by'))
        WHERE (p.service, p.title, p.severity, p.status, p.opened_at, p.acknowledged_at, p.resolved_at,
               p.attributes)
              IS DISTINCT FROM
              (EXCLUDED.service, EXCLUDED.title, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.opened_at,
               CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                    THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at), EXCLUDED.opened_at) END,
               EXCLUDED.resolved_at,
               EXCLUDED.attributes || jsonb_strip_nulls(jsonb_build_object(
                   'log_entries_read', p.attributes->'log_entries_read',
                   'acknowledged_by', p.attributes->'acknowledged_by')))
        RETURNING 1)
    SELECT count(*) INTO n FROM up;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_map_incidents(integer, jsonb, jsonb) IS
    'upserts PagerDuty incident objects (external_id = incident id; urgency as severity; acknowledged_at never moves later); returns the rows changed';

CREATE FUNCTION engineering._pagerduty_map_log_entries(src_id integer, incident_id text, entries jsonb,
                                                       complete boolean)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    first_ack timestamptz;
    agent text;
    n bigint;
BEGIN
    IF jsonb_typeof(entries) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of PagerDuty log entries, got %', coalesce(jsonb_typeof(entries), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t, who INTO first_ack, agent
    FROM (SELECT engineering._ts(e->'created_at') AS t, e->'agent'->>'summary' AS who, o
          FROM jsonb_array_elements(entries) WITH ORDINALITY AS x(e, o)
          WHERE jsonb_typeof(e) = 'object' AND e->>'type' = 'acknowledge_log_entry') a
    WHERE t IS NOT NULL
    ORDER BY t, o
    LIMIT 1;

    UPDATE engineering.incidents p SET
        acknowledged_at = CASE WHEN least(p.acknowledged_at, first_ack) IS NOT NULL
                               THEN greatest(least(p.acknowledged_at, first_ack), p.opened_at) END,
        attributes = p.attributes
            || CASE WHEN first_ack IS NOT NULL AND agent IS NOT NULL
                         AND (p.acknowledged_at IS NULL OR first_ack <= p.acknowledged_at
                              OR NOT p.attributes ? 'acknowledged_by')
                    THEN jsonb_build_object('acknowledged_by', agent) ELSE '{}' END
            || CASE WHEN complete THEN '{"log_entries_read": true}'::jsonb ELSE '{}' END
    WHERE p.source_id = src_id AND p.external_id = incident_id
      AND ((first_ack IS NOT NULL AND (p.acknowledged_at IS NULL OR first_ack < p.acknowledged_at))
           OR (complete AND NOT p.attributes ? 'log_entries_read')
           OR (first_ack IS NOT NULL AND agent IS NOT NULL AND NOT p.attributes ? 'acknowledged_by'));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_map_log_entries(integer, text, jsonb, boolean) IS
    'applies a page of an incident''s log entries: the earliest acknowledge_log_entry becomes acknowledged_at (and its agent acknowledged_by); complete marks the log as read';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._pagerduty_enqueue_log_entries(src engineering.sources, incident_ids text[])
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'log_entries',
           '/incidents/' || engineering._urlencode(p.external_id)
               || '/log_entries?is_overview=true&limit=100&offset=0',
           jsonb_build_object('incident', p.external_id, 'offset', 0, 'missing_ok', true)
    FROM engineering.incidents p
    WHERE p.source_id = src.id AND p.external_id = ANY (incident_ids)
      AND coalesce(src.config->'log_entries', 'true') = 'true'
      AND p.attributes->>'pagerduty_status' IN ('acknowledged', 'resolved')
      AND NOT p.attributes ? 'log_entries_read'
      AND NOT EXISTS (SELECT 1 FROM engineering.sync_tasks t
                      WHERE t.source_id = src.id AND t.stream = 'log_entries'
                        AND t.payload->>'incident' = p.external_id)
    ORDER BY p.opened_at, p.external_id;
END;
COMMENT ON FUNCTION engineering._pagerduty_enqueue_log_entries(engineering.sources, text[]) IS
    'queues the log entries of those incidents that left the triggered state and whose log was not read yet (once per incident; off with config log_entries false)';

CREATE FUNCTION engineering._pagerduty_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    since timestamptz := engineering._since(src.config);
    lookback interval := coalesce((src.config->>'lookback')::interval, interval '10 minutes');
    upto timestamptz := date_trunc('second', now());
    watermark timestamptz;
    from_ts timestamptz;
    w timestamptz;
BEGIN
    -- New incidents: created since the watermark (less a look-back for
    -- incidents that reach the list late), in windows the API accepts.
    -- A watermark belongs to the service_ids and since it was reached
    -- with: when either changes, the backfill starts again.
    IF src.cursor->'incidents_scope' IS NOT DISTINCT FROM engineering._pagerduty_scope(src.config) THEN
        watermark := engineering._ts(src.cursor->'incidents_created');
    END IF;
    from_ts := date_trunc('second', greatest(since, coalesce(watermark - lookback, since)));
    w := from_ts;
    WHILE w < upto LOOP
        PERFORM engineering._enqueue(src.id, 'incidents',
            engineering._pagerduty_incidents_url(src.config, w, least(w + interval '90 days', upto), 0),
            jsonb_build_object('from', engineering._iso8601(w),
                               'to', engineering._iso8601(least(w + interval '90 days', upto)), 'offset', 0));
        w := w + interval '90 days';
    END LOOP;

    -- Incidents created before that and not resolved yet: by id.
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'incident', '/incidents/' || engineering._urlencode(external_id),
           jsonb_build_object('incident', external_id, 'missing_ok', true)
    FROM engineering.incidents
    WHERE source_id = src.id AND status <> 'resolved' AND opened_at < from_ts
      AND NOT attributes ? 'pagerduty_gone'
    ORDER BY opened_at, external_id;

    -- Logs still unread (the log_entries setting was switched on, say).
    PERFORM engineering._pagerduty_enqueue_log_entries(src,
        ARRAY(SELECT external_id FROM engineering.incidents
              WHERE source_id = src.id AND attributes->>'pagerduty_status' IN ('acknowledged', 'resolved')
                AND NOT attributes ? 'log_entries_read'));
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_plan(engineering.sources) IS
    'connector interface: queues the windows of new incidents since the watermark, the unresolved incidents by id, and unread logs';

CREATE FUNCTION engineering._pagerduty_ingest_incidents(src engineering.sources, task engineering.sync_tasks,
                                                        body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    from_ts timestamptz := engineering._ts(task.payload->'from');
    to_ts timestamptz := engineering._ts(task.payload->'to');
    page_offset integer := coalesce((task.payload->>'offset')::integer, 0);
    items jsonb := body->'incidents';
    newest timestamptz;
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected PagerDuty response: no incidents array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := engineering._pagerduty_map_incidents(src.id, src.config, items);
    PERFORM engineering._pagerduty_enqueue_log_entries(src,
        ARRAY(SELECT i->>'id' FROM jsonb_array_elements(items) i WHERE jsonb_typeof(i) = 'object'));

    IF body->'more' = 'true'::jsonb AND jsonb_array_length(items) > 0 THEN
        IF page_offset + 200 <= 10000 THEN
            PERFORM engineering._enqueue(src.id, 'incidents',
                engineering._pagerduty_incidents_url(src.config, from_ts, to_ts, page_offset + 100),
                task.payload || jsonb_build_object('offset', page_offset + 100));
        ELSE
            -- The next page would break offset + limit <= 10,000: go on with
            -- a window starting at the newest incident of this page (sorted
            -- by created_at, so nothing older is left; the incidents of that
            -- very second are read again, harmlessly).
            SELECT date_trunc('second', max(engineering._ts(i->'created_at'))) INTO newest
            FROM jsonb_array_elements(items) i
            WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(i->'created_at') IN ('string', 'number');
            IF newest IS NULL OR newest <= from_ts THEN
                RAISE EXCEPTION 'more than 10,000 PagerDuty incidents were created at %, which the API cannot page through',
                    engineering._iso8601(from_ts)
                    USING ERRCODE = 'program_limit_exceeded';
            END IF;
            PERFORM engineering._enqueue(src.id, 'incidents',
                engineering._pagerduty_incidents_url(src.config, newest, to_ts, 0),
                jsonb_build_object('from', engineering._iso8601(newest), 'to', engineering._iso8601(to_ts),
                                   'offset', 0));
        END IF;
    ELSE
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object(
            'incidents_created', engineering._iso8601(CASE
                WHEN cursor->'incidents_scope' IS NOT DISTINCT FROM engineering._pagerduty_scope(src.config)
                THEN greatest(engineering._ts(cursor->'incidents_created'), to_ts) ELSE to_ts END),
            'incidents_scope', engineering._pagerduty_scope(src.config))
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_ingest_incidents(engineering.sources, engineering.sync_tasks, jsonb) IS
    'a page of incidents: maps them, queues their unread logs, pages on (re-windowing before offset 10,000), advances incidents_created when a window is done';

CREATE FUNCTION engineering._pagerduty_ingest(src engineering.sources, task engineering.sync_tasks,
                                              status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    incident_id text := task.payload->>'incident';
    page_offset integer := coalesce((task.payload->>'offset')::integer, 0);
    n bigint;
BEGIN
    CASE task.stream
    WHEN 'incidents' THEN
        RETURN engineering._pagerduty_ingest_incidents(src, task, body);
    WHEN 'incident' THEN
        IF body IS NULL THEN
            -- 404/410: deleted, or the token lost access; stop asking
            UPDATE engineering.incidents SET attributes = attributes || '{"pagerduty_gone": true}'
            WHERE source_id = src.id AND external_id = incident_id;
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'incident') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'unexpected PagerDuty response: no incident object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := engineering._pagerduty_map_incidents(src.id, src.config, jsonb_build_array(body->'incident'));
        PERFORM engineering._pagerduty_enqueue_log_entries(src, ARRAY[body->'incident'->>'id']);
        RETURN n;
    WHEN 'log_entries' THEN
        IF body IS NULL THEN
            RETURN engineering._pagerduty_map_log_entries(src.id, incident_id, '[]', true);
        END IF;
        IF jsonb_typeof(body->'log_entries') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected PagerDuty response: no log_entries array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF body->'more' = 'true'::jsonb AND jsonb_array_length(body->'log_entries') > 0
           AND page_offset + 200 <= 10000 THEN
            PERFORM engineering._enqueue(src.id, 'log_entries',
                '/incidents/' || engineering._urlencode(incident_id)
                    || '/log_entries?is_overview=true&limit=100&offset=' || (page_offset + 100),
                task.payload || jsonb_build_object('offset', page_offset + 100));
            RETURN engineering._pagerduty_map_log_entries(src.id, incident_id, body->'log_entries', false);
        END IF;
        RETURN engineering._pagerduty_map_log_entries(src.id, incident_id, body->'log_entries', true);
    ELSE
        RAISE EXCEPTION 'unknown PagerDuty stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one PagerDuty response to rows, queues follow-up requests and advances the cursor; returns rows changed';
