-- engineering_metrics: the Prometheus connector (HTTP API v1, range queries),
-- which feeds an SLO's measurements.
--
-- A source names one SLO and two PromQL expressions that return, at each
-- evaluation instant t, the number of good and of total events in the step
-- ending at t (for example sum(increase(http_requests_total[1m])) with a
-- 1m step).  Each step becomes one engineering.slo_measurements row with
-- measured_at = t, upserted on (slo_id, measured_at).
--
-- Streams (sync_tasks.stream), two per window of steps:
--   total   GET /api/v1/query_range?query=<total_query>&start=&end=&step=
--           the window's totals, summed over series, are carried in the
--           payload of the window's good request (or, for a window without
--           traffic, the window is done at once);
--   good    the same window for good_query: the window's measurements are
--           written, the watermark advances, the next window is queued.
-- A window holds at most max_points steps (default 11,000, Prometheus'
-- limit on points per series).  Steps lie on a grid of multiples of the
-- step since the epoch, so that re-reads land on the same instants.
--
-- Watermark in sources.cursor: synced_to, the last step of the last window
-- written.  Each sync re-reads the steps of the last lookback before it
-- (late samples, remote-write delays) and then everything up to now.  Also
-- in the cursor, for the user: last_skipped (the latest step whose value
-- was not a count), last_clamped (the latest step with good > total) and
-- warnings (Prometheus' warnings for the latest window, if any).

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

-- Durations are written as Prometheus writes them ("30s", "1m", "1h30m",
-- "500ms"), as a number of seconds, or in words ("10 minutes"), because
-- users copy them from their dashboards and rules.  Parsed with regular
-- expressions only (no cast that could raise), so that a bad value gets
-- the connector's own message.
CREATE FUNCTION engineering._prometheus_seconds(value jsonb)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN jsonb_typeof(value) = 'number' THEN (value #>> '{}')::numeric
    WHEN jsonb_typeof(value) IS DISTINCT FROM 'string' THEN NULL
    WHEN btrim(value #>> '{}') ~ '^\d{1,12}(\.\d{1,9})?$' THEN btrim(value #>> '{}')::numeric
    WHEN btrim(value #>> '{}') ~ '^(\d{1,12}y)?(\d{1,12}w)?(\d{1,12}d)?(\d{1,12}h)?(\d{1,12}m)?(\d{1,12}s)?(\d{1,12}ms)?$'
         AND btrim(value #>> '{}') <> '' THEN
        (SELECT coalesce(m[1]::numeric * 31536000, 0) + coalesce(m[2]::numeric * 604800, 0)
                + coalesce(m[3]::numeric * 86400, 0) + coalesce(m[4]::numeric * 3600, 0)
                + coalesce(m[5]::numeric * 60, 0) + coalesce(m[6]::numeric, 0)
                + coalesce(trim_scale(m[7]::numeric / 1000), 0)
         FROM regexp_match(btrim(value #>> '{}'),
                           '^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$') m)
    WHEN lower(btrim(value #>> '{}')) ~ '^\d{1,12}\s*(seconds?|secs?|minutes?|mins?|hours?|days?|weeks?)$' THEN
        (SELECT m[1]::numeric * CASE
                    WHEN m[2] LIKE 'sec%' THEN 1 WHEN m[2] LIKE 'min%' THEN 60
                    WHEN m[2] LIKE 'hour%' THEN 3600 WHEN m[2] LIKE 'day%' THEN 86400
                    ELSE 604800 END
         FROM regexp_match(lower(btrim(value #>> '{}')), '^(\d+)\s*([a-z]+)$') m)
    END;
COMMENT ON FUNCTION engineering._prometheus_seconds(jsonb) IS
    'internal: a duration in seconds from a Prometheus duration ("30s", "1m", "1h30m", "500ms"), a number of seconds, or words ("10 minutes"); NULL when it is none of these';

CREATE FUNCTION engineering._prometheus_duration(seconds bigint)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN seconds % 3600 = 0 THEN (seconds / 3600) || 'h'
    WHEN seconds % 60 = 0 THEN (seconds / 60) || 'm'
    ELSE seconds || 's' END;
COMMENT ON FUNCTION engineering._prometheus_duration(bigint) IS
    'internal: whole seconds as a Prometheus duration ("1m", "90s", "2h"), what $step stands for in the queries';

CREATE FUNCTION engineering._prometheus_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    unknown text;
    step numeric := engineering._prometheus_seconds(config->'step');
    lookback numeric := engineering._prometheus_seconds(config->'lookback');
BEGIN
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
    FROM jsonb_object_keys(config) k
    WHERE k NOT IN ('slo', 'good_query', 'total_query', 'step', 'since', 'lookback', 'max_points',
                    'token_file', 'token_env');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown config key(s) for a prometheus source: %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A prometheus source understands slo, good_query, total_query, step, since, lookback, max_points, token_file and token_env.';
    END IF;
    IF jsonb_typeof(config->'slo') IS DISTINCT FROM 'string' OR btrim(config->>'slo') = '' THEN
        RAISE EXCEPTION 'a prometheus source needs config slo, the name of the SLO it measures'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"slo": "checkout-availability", "good_query": "...", "total_query": "...", "step": "1m"}.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.slos s WHERE s.name = config->>'slo') THEN
        RAISE EXCEPTION 'config slo "%" is not an SLO', config->>'slo'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Define it first in engineering.slos (name, service, objective, period).';
    END IF;
    IF jsonb_typeof(config->'good_query') IS DISTINCT FROM 'string' OR btrim(config->>'good_query') = ''
       OR jsonb_typeof(config->'total_query') IS DISTINCT FROM 'string' OR btrim(config->>'total_query') = '' THEN
        RAISE EXCEPTION 'a prometheus source needs config good_query and total_query, PromQL expressions that count events per step'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example "sum(increase(http_requests_total{code!~\"5..\"}[$step]))" and "sum(increase(http_requests_total[$step]))".';
    END IF;
    IF step IS NULL OR step <> trunc(step) OR step < 1 OR step > 86400 THEN
        RAISE EXCEPTION 'config step must be a whole number of seconds between 1s and 1d, got %',
                coalesce((config->'step')::text, 'nothing')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A Prometheus duration such as "30s", "1m" or "5m", or a number of seconds; the finest step that still fits the shortest alert window (5 minutes) is the best, usually "1m".';
    END IF;
    IF config ? 'lookback' AND (lookback IS NULL OR lookback < 0 OR lookback > 604800) THEN
        RAISE EXCEPTION 'config lookback must be a duration between 0 and 7 days, got %', config->'lookback'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example "10m" or "10 minutes".';
    END IF;
    IF config ? 'max_points' AND (jsonb_typeof(config->'max_points') <> 'number'
        OR (config->>'max_points')::numeric <> trunc((config->>'max_points')::numeric)
        OR (config->>'max_points')::numeric NOT BETWEEN 1 AND 11000) THEN
        RAISE EXCEPTION 'config max_points must be a whole number between 1 and 11000, got %', config->'max_points'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Prometheus refuses more than 11,000 points per series; lower it for servers with a smaller limit.';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_validate(jsonb) IS
    'checks a prometheus source''s config: slo (an existing SLO), good_query, total_query, step (1s..1d, whole seconds); optional since, lookback (0..7 days), max_points (1..11000); no other keys';

CREATE FUNCTION engineering._prometheus_query(config jsonb, which text, step_seconds bigint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(config->>which, '\$\{step\}|\$step\M',
                      engineering._prometheus_duration(step_seconds), 'g');
COMMENT ON FUNCTION engineering._prometheus_query(jsonb, text, bigint) IS
    'internal: config good_query or total_query with $step (or ${step}) replaced by the step as a Prometheus duration';

CREATE FUNCTION engineering._prometheus_url(query text, from_s bigint, to_s bigint, step_seconds bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN '/api/v1/query_range?query=' || engineering._urlencode(query)
    || '&start=' || engineering._urlencode(engineering._iso8601(to_timestamp(from_s)))
    || '&end=' || engineering._urlencode(engineering._iso8601(to_timestamp(to_s)))
    || '&step=' || step_seconds || 's';
COMMENT ON FUNCTION engineering._prometheus_url(text, bigint, bigint, bigint) IS
    'internal: path of a range query evaluated at from_s, from_s + step, ... up to to_s (epoch seconds)';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/prometheus.sql)
------------------------------------------------------------------------------

-- Reads one query_range response: checks its shape, keeps the samples at
-- the window's instants and sums the series per instant (a query that
-- returns one series per instance or status code counts all of them, as
-- if it were wrapped in sum()).  Values are kept as text: a finite sum,
-- or NaN, +Inf, -Inf, which _prometheus_map refuses as counts.
CREATE FUNCTION engineering._prometheus_points(body jsonb, from_s bigint, to_s bigint, step_seconds bigint)
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

-- Writes a window: the steps with a total become measurements, and the
-- source's earlier measurements in the window that the server no longer
-- reports are removed, so that after each window the stored rows are
-- exactly what the server says now (late and corrected data included).
CREATE FUNCTION engineering._prometheus_map(src_id integer, slo_id integer, from_s bigint, to_s bigint,
                                            step_seconds bigint, totals jsonb, goods jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    summary jsonb;
BEGIN
    IF jsonb_typeof(totals) IS DISTINCT FROM 'object' OR jsonb_typeof(goods) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'expected two JSON objects of points' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- A step without a total has no traffic: no row.  A step with a total
    -- but no good sample had no good events (sum() over nothing returns
    -- nothing, not 0).  Counts are rounded: increase() extrapolates, so the
    -- counts it returns are rarely whole.
    WITH raw AS (
        SELECT k.t, k.tv, k.gv,
               CASE WHEN k.tv NOT IN ('NaN', '+Inf', 'Inf', '-Inf') THEN round(k.tv::numeric) END AS total_r,
               CASE WHEN k.gv IS NULL THEN 0
                    WHEN k.gv NOT IN ('NaN', '+Inf', 'Inf', '-Inf') THEN round(k.gv::numeric) END AS good_r
        FROM (SELECT e.key::bigint AS t, e.value AS tv, goods->>e.key AS gv
              FROM jsonb_each_text(totals) e
              WHERE e.key ~ '^\d{1,15}$') k
        WHERE k.t BETWEEN from_s AND to_s AND (k.t - from_s) % step_seconds = 0
    ),
    judged AS (
        SELECT r.*,
               CASE WHEN r.tv IN ('NaN', '+Inf', 'Inf', '-Inf') THEN 'total is ' || r.tv
                    WHEN r.gv IN ('NaN', '+Inf', 'Inf', '-Inf') THEN 'good is ' || r.gv
                    WHEN r.total_r < 0 THEN 'total is negative (' || r.tv || ')'
                    WHEN r.good_r < 0 THEN 'good is negative (' || r.gv || ')'
                    WHEN r.total_r > 9223372036854775807 OR r.good_r > 9223372036854775807
                        THEN 'count out of range'
               END AS problem
        FROM raw r
    ),
    steps AS MATERIALIZED (
        SELECT j.t, to_timestamp(j.t) AS at, j.problem,
               CASE WHEN j.problem IS NULL THEN least(j.good_r, j.total_r)::bigint END AS good,
               CASE WHEN j.problem IS NULL THEN j.total_r::bigint END AS total,
               j.problem IS NULL AND j.good_r > j.total_r AS clamped
        FROM judged j
        WHERE j.problem IS NOT NULL OR j.total_r > 0
    ),
    up AS (
        INSERT INTO engineering.slo_measurements AS m (slo_id, measured_at, good, total, source_id)
        SELECT _prometheus_map.slo_id, p.at, p.good, p.total, src_id
        FROM steps p
        WHERE p.problem IS NULL
        ON CONFLICT ON CONSTRAINT slo_measurements_pkey DO UPDATE
            SET good = EXCLUDED.good, total = EXCLUDED.total, source_id = EXCLUDED.source_id
            WHERE (m.good, m.total, m.source_id) IS DISTINCT FROM (EXCLUDED.good, EXCLUDED.total, EXCLUDED.source_id)
        RETURNING 1
    ),
    gone AS (
        -- the window covers the steps (from_s - step, from_s] ... (to_s - step, to_s]
        DELETE FROM engineering.slo_measurements m
        WHERE m.slo_id = _prometheus_map.slo_id AND m.source_id = src_id
          AND m.measured_at > to_timestamp(from_s - step_seconds) AND m.measured_at <= to_timestamp(to_s)
          -- (a hashed subplan: one probe per stored row)
          AND m.measured_at NOT IN (SELECT p.at FROM steps p WHERE p.problem IS NULL)
        RETURNING 1
    )
    SELECT jsonb_build_object(
               'upserted', (SELECT count(*) FROM up),
               'deleted', (SELECT count(*) FROM gone),
               'steps', (SELECT count(*) FROM steps WHERE problem IS NULL),
               'skipped', (SELECT count(*) FROM steps WHERE problem IS NOT NULL),
               'clamped', (SELECT count(*) FROM steps WHERE clamped),
               'last_skipped', (SELECT jsonb_build_object('at', engineering._iso8601(to_timestamp(p.t)), 'reason', p.problem)
                                FROM steps p WHERE p.problem IS NOT NULL
                                ORDER BY p.t DESC LIMIT 1),
               'last_clamped', (SELECT jsonb_build_object('at', engineering._iso8601(to_timestamp(p.t)),
                                                          'good', goods->>(p.t::text), 'total', totals->>(p.t::text))
                                FROM steps p WHERE p.clamped
                                ORDER BY p.t DESC LIMIT 1))
    INTO summary;
    RETURN summary;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_map(integer, integer, bigint, bigint, bigint, jsonb, jsonb) IS
    'writes a window of steps as measurements of an SLO (good clamped to total, non-counts skipped, the source''s rows the server no longer reports removed); returns {upserted, deleted, steps, skipped, clamped, last_skipped, last_clamped}';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._prometheus_enqueue_window(src engineering.sources, from_s bigint, until_s bigint,
                                                       step_seconds bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    to_s bigint := least(from_s + (coalesce((src.config->>'max_points')::bigint, 11000) - 1) * step_seconds, until_s);
BEGIN
    PERFORM engineering._enqueue(src.id, 'total',
        engineering._prometheus_url(engineering._prometheus_query(src.config, 'total_query', step_seconds),
                                    from_s, to_s, step_seconds),
        jsonb_build_object('from', from_s, 'to', to_s, 'until', until_s, 'step', step_seconds));
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_enqueue_window(engineering.sources, bigint, bigint, bigint) IS
    'internal: queues the total request of the window of at most max_points steps starting at from_s (epoch seconds), not past until_s';

CREATE FUNCTION engineering._prometheus_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    step_seconds bigint := engineering._prometheus_seconds(src.config->'step');
    the_slo engineering.slos;
    since timestamptz;
    lookback_steps bigint;
    first_s bigint;
    until_s bigint;
    synced_s bigint;
    from_s bigint;
BEGIN
    -- sources written without add_source(), and SLOs renamed or removed
    -- since, fail here with the message add_source() would have given
    PERFORM engineering._prometheus_validate(src.config);
    SELECT * INTO the_slo FROM engineering.slos s WHERE s.id = engineering._slo_id(src.config->>'slo');
    -- by default, the SLO's current period: what slo_status() reads
    since := CASE WHEN coalesce(src.config->>'since', '') = '' THEN now() - the_slo.period
                  ELSE engineering._since(src.config) END;
    -- the first step ends at the first instant of the grid after since
    first_s := floor(extract(epoch FROM since) / step_seconds)::bigint * step_seconds + step_seconds;
    -- the last is the last one that has ended
    until_s := floor(extract(epoch FROM now()) / step_seconds)::bigint * step_seconds;
    lookback_steps := ceil(coalesce(engineering._prometheus_seconds(src.config->'lookback'), 600) / step_seconds);
    synced_s := floor(extract(epoch FROM engineering._ts(src.cursor->'synced_to')) / step_seconds)::bigint * step_seconds;

    from_s := CASE WHEN synced_s IS NULL THEN first_s
                   ELSE greatest(first_s, synced_s - (lookback_steps - 1) * step_seconds) END;
    IF from_s <= until_s THEN
        PERFORM engineering._prometheus_enqueue_window(src, from_s, until_s, step_seconds);
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_plan(engineering.sources) IS
    'connector interface: queues the first window of steps, from since (default: the SLO''s period ago) or from the watermark less lookback (default 10 minutes), up to the last step that has ended';

CREATE FUNCTION engineering._prometheus_ingest(src engineering.sources, task engineering.sync_tasks,
                                               status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    from_s bigint := (task.payload->>'from')::bigint;
    to_s bigint := (task.payload->>'to')::bigint;
    until_s bigint := (task.payload->>'until')::bigint;
    step_seconds bigint := (task.payload->>'step')::bigint;
    points jsonb;
    summary jsonb;
    warnings jsonb;
BEGIN
    IF task.stream NOT IN ('total', 'good') THEN
        RAISE EXCEPTION 'unknown Prometheus stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END IF;
    points := engineering._prometheus_points(body, from_s, to_s, step_seconds);
    warnings := coalesce(task.payload->'warnings', '[]')
        || CASE WHEN jsonb_typeof(body->'warnings') = 'array' THEN body->'warnings' ELSE '[]' END;

    IF task.stream = 'total' AND points <> '{}' THEN
        PERFORM engineering._enqueue(src.id, 'good',
            engineering._prometheus_url(engineering._prometheus_query(src.config, 'good_query', step_seconds),
                                        from_s, to_s, step_seconds),
            task.payload || jsonb_build_object('totals', points, 'warnings', warnings));
        RETURN 0;
    END IF;

    -- a window without any total needs no good request: it has no traffic
    summary := engineering._prometheus_map(src.id, engineering._slo_id(src.config->>'slo'),
                                           from_s, to_s, step_seconds,
                                           CASE WHEN task.stream = 'good' THEN task.payload->'totals' ELSE '{}' END,
                                           CASE WHEN task.stream = 'good' THEN points ELSE '{}' END);
    UPDATE engineering.sources s SET cursor = (s.cursor - 'warnings')
        || jsonb_build_object('synced_to', engineering._iso8601(to_timestamp(
               greatest(to_s, extract(epoch FROM engineering._ts(s.cursor->'synced_to'))::bigint))))
        || jsonb_strip_nulls(jsonb_build_object(
               'last_skipped', summary->'last_skipped',
               'last_clamped', summary->'last_clamped',
               'warnings', CASE WHEN warnings <> '[]' THEN warnings END))
    WHERE s.id = src.id;
    IF to_s < until_s THEN
        PERFORM engineering._prometheus_enqueue_window(src, to_s + step_seconds, until_s, step_seconds);
    END IF;
    RETURN (summary->>'upserted')::bigint + (summary->>'deleted')::bigint;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: a window''s totals queue its good request; its good counts write the measurements, advance synced_to and queue the next window; returns measurements changed';
