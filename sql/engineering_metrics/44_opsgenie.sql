-- engineering_metrics: the Opsgenie connector (Incident API v1; README "Connectors >
-- Opsgenie", https://docs.opsgenie.com/docs/incident-api).
--
-- Streams (sync_tasks.stream) and what they feed:
--   incidents  GET /v1/incidents?query=&offset=0&limit=100&sort=createdAt&order=desc:
--              newest first, down to the watermark; pages follow paging.next verbatim
--              (the API has no time filter)
--   incident   GET /v1/incidents/{id}?identifierType=id: open incidents created before
--              the watermark, fetched again every sync until resolved or closed (a 404
--              marks them gone and stops that)
--
-- Watermark in sources.cursor: incidents_created (the newest createdAt seen),
-- valid for incidents_scope (query and since; a change restarts the backfill).
-- The JSON-to-row mapping lives in _opsgenie_map_incidents so that pg_regress
-- tests it with fixtures.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._opsgenie_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(config->'query') IS DISTINCT FROM 'string' OR btrim(config->>'query') = ''
       OR length(config->>'query') > 2000 THEN
        RAISE EXCEPTION 'an opsgenie source needs config query, an Opsgenie incident search query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"query": "impactedServices:6d0d3a43-1cd3-4e4a-a1b4-5f5b7b6c3e1a"} or {"query": "status:open OR status:resolved OR status:closed"}.';
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
COMMENT ON FUNCTION engineering._opsgenie_validate(jsonb) IS
    'checks an opsgenie source''s config: query (required); optional service, service_map, lookback, since';

CREATE FUNCTION engineering._opsgenie_service(config jsonb, incident jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(
        (SELECT config->'service_map'->>s.id
         FROM jsonb_array_elements_text(svc.ids) WITH ORDINALITY AS s(id, o)
         WHERE config->'service_map' ? s.id ORDER BY s.o LIMIT 1),
        engineering._map_service(config, (SELECT nullif(btrim(s.id), '')
                                          FROM jsonb_array_elements_text(svc.ids) WITH ORDINALITY AS s(id, o)
                                          ORDER BY s.o LIMIT 1)),
        'unknown')
    FROM (SELECT coalesce(
              (SELECT jsonb_agg(e ORDER BY o) FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(incident->'impactedServices') = 'array'
                        THEN incident->'impactedServices' ELSE '[]' END) WITH ORDINALITY AS x(e, o)
               WHERE jsonb_typeof(e) = 'string'),
              CASE WHEN jsonb_typeof(incident->'serviceId') = 'string'
                   THEN jsonb_build_array(incident->'serviceId') END,
              '[]') AS ids) svc;
END;
COMMENT ON FUNCTION engineering._opsgenie_service(jsonb, jsonb) IS
    'service of an Opsgenie incident: the first impacted service id found in service_map, else the first one through _map_service (config service, else the id), else "unknown"';

CREATE FUNCTION engineering._opsgenie_status(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE status
    WHEN 'open' THEN 'open'
    WHEN 'resolved' THEN 'resolved'
    WHEN 'closed' THEN 'resolved'
    ELSE 'open' END;
COMMENT ON FUNCTION engineering._opsgenie_status(text) IS
    'incidents.status of an Opsgenie status: open; resolved and closed resolved; anything else open (kept in attributes, fetched again until resolved)';

CREATE FUNCTION engineering._opsgenie_scope(config jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('query', config->'query', 'since', config->'since');
COMMENT ON FUNCTION engineering._opsgenie_scope(jsonb) IS
    'what a watermark was reached for (query and since): a change restarts the backfill';

CREATE FUNCTION engineering._opsgenie_incidents_url(config jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '/v1/incidents?query=' || engineering._urlencode(config->>'query')
    || '&offset=0&limit=100&sort=createdAt&order=desc';
COMMENT ON FUNCTION engineering._opsgenie_incidents_url(jsonb) IS
    'path of the first page of GET /v1/incidents for the config query, newest first, 100 per page';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/opsgenie.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._opsgenie_map_incidents(src_id integer, config jsonb, items jsonb)
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
             LATERAL (SELECT coalesce(engineering._ts(i->'impactStartDate'), engineering._ts(i->'createdAt')) AS opened) t),
    up AS (
        INSERT INTO engineering.incidents AS p
            (source_id, external_id, service, title, severity, status, opened_at, resolved_at, attributes)
        SELECT src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at, m.resolved_at,
               m.attributes
        FROM m
        ON CONFLICT (source_id, external_id) DO UPDATE SET
            service = EXCLUDED.service, title = EXCLUDED.title, severity = EXCLUDED.severity,
            status = EXCLUDED.status, opened_at = EXCLUDED.opened_at,
            -- Opsgenie incidents have no acknowledgement; keep one set by hand
            acknowledged_at = CASE WHEN p.acknowledged_at >= EXCLUDED.opened_at THEN p.acknowledged_at END,
            resolved_at = EXCLUDED.resolved_at, attributes = EXCLUDED.attributes
        WHERE (p.service, p.title, p.severity, p.status, p.opened_at, p.resolved_at, p.attributes)
              IS DISTINCT FROM
              (EXCLUDED.service, EXCLUDED.title, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.opened_at,
               EXCLUDED.resolved_at, EXCLUDED.attributes)
        RETURNING 1)
    SELECT count(*) INTO n FROM up;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_map_incidents(integer, jsonb, jsonb) IS
    'upserts Opsgenie incident objects (external_id = incident id; opened at impact start, else createdAt; resolved at impact end, else updatedAt); returns the rows changed';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._opsgenie_plan(src engineering.sources)
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
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'incident', '/v1/incidents/' || engineering._urlencode(external_id) || '?identifierType=id',
           jsonb_build_object('incident', external_id, 'missing_ok', true)
    FROM engineering.incidents
    WHERE source_id = src.id AND status <> 'resolved'
      AND coalesce(engineering._ts(attributes->'created_at'), opened_at) < floor_ts
      AND NOT attributes ? 'opsgenie_gone'
    ORDER BY opened_at, external_id;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_plan(engineering.sources) IS
    'connector interface: queues the first page of incidents (newest first, down to the watermark) and the open incidents older than it by id';

CREATE FUNCTION engineering._opsgenie_ingest_incidents(src engineering.sources, task engineering.sync_tasks,
                                                       body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    items jsonb := body->'data';
    floor_ts timestamptz := engineering._ts(task.payload->'floor');
    watermark timestamptz := engineering._ts(task.payload->'watermark');
    newest timestamptz;
    reached_end boolean;
    fresh jsonb;
    next_url text;
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected Opsgenie response: no data array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Newest first: once an incident is older than the floor, so is the rest.
    SELECT bool_or(c < floor_ts), max(c), coalesce(jsonb_agg(i ORDER BY o) FILTER (WHERE c IS NULL OR c >= floor_ts), '[]')
    INTO reached_end, newest, fresh
    FROM (SELECT i, o, CASE WHEN jsonb_typeof(i->'createdAt') IN ('string', 'number')
                            THEN engineering._ts(i->'createdAt') END AS c
          FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
          WHERE jsonb_typeof(i) = 'object') x;
    newest := greatest(newest, engineering._ts(task.payload->'newest'));
    n := engineering._opsgenie_map_incidents(src.id, src.config, fresh);

    next_url := CASE WHEN jsonb_typeof(body->'paging'->'next') = 'string' THEN nullif(btrim(body->'paging'->>'next'), '') END;
    IF next_url IS NOT NULL AND jsonb_array_length(items) > 0 AND NOT coalesce(reached_end, false) THEN
        PERFORM engineering._enqueue(src.id, 'incidents', next_url,
            task.payload || jsonb_strip_nulls(jsonb_build_object('newest', engineering._iso8601(newest))));
    ELSIF greatest(watermark, newest) IS NOT NULL THEN
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object(
            'incidents_created', engineering._iso8601(greatest(watermark, newest)),
            'incidents_scope', task.payload->'scope')
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_ingest_incidents(engineering.sources, engineering.sync_tasks, jsonb) IS
    'a page of incidents (newest first): maps those at or after the floor, follows paging.next until the floor, then advances incidents_created';

CREATE FUNCTION engineering._opsgenie_ingest(src engineering.sources, task engineering.sync_tasks,
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
            WHERE source_id = src.id AND external_id = task.payload->>'incident';
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
