-- engineering_metrics: DORA analytics, part 4: the report, dora().
--
-- Every figure is defined in README.md ("DORA analytics"); the comments
-- here say how it is computed.  Days and weeks are UTC; weeks start on
-- Monday.

------------------------------------------------------------------------------
-- _deployment_days_per_period(days, from_ts, to_ts, period)
--
-- The median, over the calendar periods (week from Monday, month, half-year)
-- that lie entirely inside [from_ts, to_ts), of the number of the given
-- days (UTC dates with a deployment) that fall in each; periods without a
-- deployment count as 0.  Partial periods at the window's edges are left
-- out, because a 2-day stub of a week would drag the median down; a window
-- that holds no complete period instead gives its days scaled to the
-- period's length (days * 7 / window length in days, for weeks).
------------------------------------------------------------------------------
CREATE FUNCTION engineering._deployment_days_per_period(days date[], from_ts timestamptz, to_ts timestamptz, period text)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    lo timestamp := from_ts AT TIME ZONE 'UTC';
    hi timestamp := to_ts AT TIME ZONE 'UTC';
    step interval;
    first_start timestamp;
    period_days float8;
    result float8;
BEGIN
    IF days IS NULL OR lo IS NULL OR hi IS NULL OR hi <= lo THEN
        RETURN NULL;
    END IF;
    CASE period
        WHEN 'week' THEN
            step := interval '7 days';
            first_start := date_trunc('week', lo);
            period_days := 7;
        WHEN 'month' THEN
            step := interval '1 month';
            first_start := date_trunc('month', lo);
            period_days := 365.2425 / 12;
        WHEN 'half-year' THEN
            step := interval '6 months';
            first_start := date_trunc('year', lo);
            period_days := 365.2425 / 2;
        ELSE
            RAISE EXCEPTION 'unknown period "%"', period
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'expected week, month or half-year';
    END CASE;

    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(n.deployment_days, 0))
      INTO result
      FROM generate_series(first_start, hi, step) AS p(start)
      LEFT JOIN (
          SELECT CASE period
                     WHEN 'week' THEN date_trunc('week', x.day::timestamp)
                     WHEN 'month' THEN date_trunc('month', x.day::timestamp)
                     ELSE date_trunc('year', x.day::timestamp)
                          + CASE WHEN extract(month FROM x.day) >= 7 THEN interval '6 months' ELSE interval '0' END
                 END AS start,
                 count(DISTINCT x.day) AS deployment_days
            FROM unnest(days) AS x(day)
           GROUP BY 1
      ) n ON n.start = p.start
     WHERE p.start >= lo AND p.start + step <= hi;

    IF result IS NULL THEN
        -- no complete period in the window: scale its deployment days
        SELECT count(DISTINCT x.day) * period_days
               / (extract(epoch FROM hi - lo)::float8 / 86400)
          INTO result
          FROM unnest(days) AS x(day);
    END IF;
    RETURN result;
END
$$;

COMMENT ON FUNCTION engineering._deployment_days_per_period(date[], timestamptz, timestamptz, text) IS
    'internal: median over the complete weeks (from Monday), months or half-years of a window (UTC) of the number of days with a deployment; a window without a complete period gives its deployment days scaled to the period';

------------------------------------------------------------------------------
-- Levels: the best-ranked row of dora_benchmarks whose bound the value
-- meets.  NULL values get no level.
------------------------------------------------------------------------------
CREATE FUNCTION engineering._dora_level(report_year integer, metric text, duration interval, rate float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT b.level
      FROM engineering.dora_benchmarks b
     WHERE b.report_year = $1
       AND b.metric = $2
       AND ($3 IS NOT NULL OR $4 IS NOT NULL)
       AND CASE WHEN $2 = 'change_failure_rate'
                THEN b.max_rate IS NULL OR $4 <= b.max_rate
                ELSE b.max_duration IS NULL OR $3 < b.max_duration
           END
     ORDER BY b.rank
     LIMIT 1
$$;
COMMENT ON FUNCTION engineering._dora_level(integer, text, interval, float8) IS
    'internal: the level of dora_benchmarks a lead time, time to restore, failed deployment recovery time (strictly below max_duration) or change failure rate (at most max_rate) reaches';

CREATE FUNCTION engineering._dora_frequency_level(report_year integer, days date[], from_ts timestamptz, to_ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT b.level
      FROM engineering.dora_benchmarks b
     WHERE b.report_year = $1
       AND b.metric = 'deployment_frequency'
       AND cardinality($2) > 0
       AND (b.min_deployment_days IS NULL
            OR engineering._deployment_days_per_period($2, $3, $4, b.per_period) >= b.min_deployment_days)
     ORDER BY b.rank
     LIMIT 1
$$;
COMMENT ON FUNCTION engineering._dora_frequency_level(integer, date[], timestamptz, timestamptz) IS
    'internal: the deployment frequency level of dora_benchmarks that the days with a deployment in a window reach';

------------------------------------------------------------------------------
-- dora(): the report.  The result type is named (rather than RETURNS
-- TABLE) because its column "service" shares its name with a parameter.
------------------------------------------------------------------------------
CREATE TYPE engineering.dora_report AS (
    service                         text,
    deployments                     bigint,
    deployment_days_per_week        float8,
    deployment_frequency_level      text,
    lead_time                       interval,
    lead_time_level                 text,
    change_failure_rate             float8,
    change_failure_rate_level       text,
    time_to_restore                 interval,
    time_to_restore_level           text,
    failed_deployment_recovery_time interval,
    failed_deployment_recovery_time_level text,
    rework_rate                     float8
);
COMMENT ON TYPE engineering.dora_report IS 'a row of engineering.dora(): the DORA figures of one service, or of all services when service is NULL';
COMMENT ON COLUMN engineering.dora_report.service IS 'the service; NULL on the row for all services together';
COMMENT ON COLUMN engineering.dora_report.deployments IS 'successful deployments to the environment that finished in the window';
COMMENT ON COLUMN engineering.dora_report.deployment_days_per_week IS
    'median over the complete calendar weeks (Monday, UTC) in the window of the days with at least one deployment (weeks without count as 0)';
COMMENT ON COLUMN engineering.dora_report.deployment_frequency_level IS 'level of dora_benchmarks reached by the deployment frequency';
COMMENT ON COLUMN engineering.dora_report.lead_time IS 'interpolated median of deployment finish minus lead time start over the changes these deployments shipped first';
COMMENT ON COLUMN engineering.dora_report.lead_time_level IS 'level of dora_benchmarks reached by the lead time';
COMMENT ON COLUMN engineering.dora_report.change_failure_rate IS 'share (0 to 1) of these deployments that caused at least one incident';
COMMENT ON COLUMN engineering.dora_report.change_failure_rate_level IS 'level of dora_benchmarks reached by the change failure rate';
COMMENT ON COLUMN engineering.dora_report.time_to_restore IS 'interpolated median of resolved_at - opened_at over the resolved incidents opened in the window';
COMMENT ON COLUMN engineering.dora_report.time_to_restore_level IS
    'level of dora_benchmarks reached by the time to restore (graded by the 2021 tiers; NULL for a report year without time_to_restore rows, such as 2023)';
COMMENT ON COLUMN engineering.dora_report.failed_deployment_recovery_time IS
    'interpolated median of resolved_at - deployment finished_at over the resolved incidents attributed to these deployments';
COMMENT ON COLUMN engineering.dora_report.failed_deployment_recovery_time_level IS
    'level of dora_benchmarks reached by the failed deployment recovery time (graded by the 2023 tiers; NULL for a report year without failed_deployment_recovery_time rows, such as 2021)';
COMMENT ON COLUMN engineering.dora_report.rework_rate IS
    'share (0 to 1) of these deployments that finished while an incident of the same service was open';

-- _dora_report() is the report for a set of services: every service
-- (services NULL), one (single: dora(service => ...)), or the services of
-- a group taken together, as one row (dora_by_golden_path()); dora() and
-- the group reports share one definition of every figure.
CREATE FUNCTION engineering._dora_report(
    from_ts         timestamptz,
    to_ts           timestamptz,
    services        text[],
    single          boolean,
    environment     text,
    benchmark_year  integer,
    lead_time_start text)
RETURNS SETOF engineering.dora_report
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- JIT compiling these plans costs more than it saves (measured: dora() for
-- a year of 1M changes takes twice as long with jit = on)
SET jit = off
AS $fn$
DECLARE
    settings engineering.dora_settings;
    env text;
    grading_year integer;
    start_from text;
    start_expr text;
    service_filter text := '';
    incident_filter text := '';
    wanted_rows text;
BEGIN
    SELECT * INTO settings FROM engineering.dora_settings LIMIT 1;
    env := coalesce(environment, settings.production_environment, 'production');
    grading_year := coalesce(benchmark_year, settings.benchmark_year, 2023);
    start_from := coalesce(lead_time_start, settings.lead_time_start, 'committed_at');

    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'dora() needs a finite window, got [%, %)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'the window ends (%) before it starts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.dora_benchmarks b WHERE b.report_year = grading_year) THEN
        RAISE EXCEPTION 'no DORA benchmarks for report year %', grading_year
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('engineering.dora_benchmarks holds the years %s; add rows for others',
                                (SELECT coalesce(string_agg(DISTINCT b.report_year::text, ', '), 'none')
                                   FROM engineering.dora_benchmarks b));
    END IF;

    -- where lead time starts (the choices of dora_settings.lead_time_start)
    start_expr := CASE start_from
        WHEN 'committed_at' THEN 'd.committed_at'
        WHEN 'authored_at' THEN 'coalesce(d.authored_at, d.committed_at)'
        WHEN 'pr_first_commit' THEN 'coalesce(d.pull_request_started_at, d.committed_at)'
    END;
    IF start_expr IS NULL THEN
        RAISE EXCEPTION 'unknown lead_time_start "%"', start_from
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'expected committed_at, authored_at or pr_first_commit';
    END IF;

    IF single THEN
        service_filter := 'AND d.service = $3[1]';
        incident_filter := 'AND i.service = $3[1]';
        wanted_rows := 'SELECT $3[1]::text AS service';
    ELSIF services IS NOT NULL THEN
        service_filter := 'AND d.service = ANY ($3)';
        incident_filter := 'AND i.service = ANY ($3)';
        wanted_rows := 'SELECT NULL::text AS service';
    ELSE
        wanted_rows := 'SELECT s.service FROM (SELECT service FROM deploys UNION SELECT service FROM opened) s
                        UNION ALL SELECT NULL';
    END IF;

    RETURN QUERY EXECUTE format($q$
        WITH deploys AS MATERIALIZED (
            -- successful deployments to the environment finished in the window
            SELECT d.id, d.service, d.finished_at
              FROM engineering.deployments d
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
        ),
        opened AS MATERIALIZED (
            -- incidents opened in the window
            SELECT i.service, i.opened_at, i.resolved_at
              FROM engineering.incidents i
             WHERE i.opened_at >= $1 AND i.opened_at < $2
               %2$s
        ),
        frequency AS (
            SELECT d.service, count(*) AS deployments,
                   array_agg(DISTINCT (d.finished_at AT TIME ZONE 'UTC')::date) AS days
              FROM deploys d
             GROUP BY GROUPING SETS ((d.service), ())
        ),
        shipped AS NOT MATERIALIZED (
            -- the changes these deployments shipped, as _first_shipments
            -- counts them (first successful deployment per environment,
            -- nothing committed before the service's first deployment),
            -- and only with a lead time that is not negative (a commit
            -- clock ahead of the deployment's)
            SELECT d.service, x.started, d.deployed_at AS finished_at
              FROM engineering._first_shipments d
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.environment = $4
               AND d.deployed_at >= $1 AND d.deployed_at < $2
               %1$s
               AND x.started <= d.deployed_at
        ),
        lead_times AS (
            -- two aggregations rather than GROUPING SETS, which PostgreSQL
            -- cannot run in parallel
            SELECT s.service, engineering.lead_time(s.started, s.finished_at) AS lead_time
              FROM shipped s GROUP BY s.service
            %5$s
        ),
        failures AS (
            -- a deployment with several incidents fails once
            SELECT d.service,
                   count(DISTINCT d.id) AS failed,
                   engineering.time_to_restore(d.finished_at, i.resolved_at)
                       FILTER (WHERE i.resolved_at >= d.finished_at) AS recovery
              FROM deploys d
              JOIN engineering.incidents i ON i.cause_deployment_id = d.id
             GROUP BY GROUPING SETS ((d.service), ())
        ),
        restore AS (
            SELECT o.service, engineering.time_to_restore(o.opened_at, o.resolved_at) AS time_to_restore
              FROM opened o
             GROUP BY GROUPING SETS ((o.service), ())
        ),
        rework AS (
            -- a sweep over each service's timeline: +1 when an incident
            -- opens, -1 when it is resolved, and each deployment reads how
            -- many are open.  At equal times resolutions come first, then
            -- openings, then deployments: an incident is open over
            -- [opened_at, resolved_at).
            SELECT t.service, count(*) FILTER (WHERE t.open_incidents > 0) AS during_incident
              FROM (
                  SELECT ev.service, ev.kind,
                         sum(ev.delta) OVER (PARTITION BY ev.service ORDER BY ev.at, ev.kind
                                             ROWS UNBOUNDED PRECEDING) AS open_incidents
                    FROM (
                        SELECT d.service, d.finished_at AS at, 2 AS kind, 0 AS delta FROM deploys d
                        UNION ALL
                        SELECT i.service, i.opened_at, 1, 1
                          FROM engineering.incidents i
                         WHERE i.opened_at < $2
                           AND (i.resolved_at IS NULL OR (i.resolved_at > $1 AND i.resolved_at > i.opened_at))
                           %2$s
                        UNION ALL
                        SELECT i.service, i.resolved_at, 0, -1
                          FROM engineering.incidents i
                         WHERE i.opened_at < $2
                           AND i.resolved_at > $1 AND i.resolved_at > i.opened_at
                           %2$s
                    ) ev
              ) t
             WHERE t.kind = 2
             GROUP BY GROUPING SETS ((t.service), ())
        ),
        wanted AS (%4$s)
        SELECT w.service,
               coalesce(f.deployments, 0),
               CASE WHEN f.deployments > 0
                    THEN engineering._deployment_days_per_period(f.days, $1, $2, 'week') END,
               engineering._dora_frequency_level($5, f.days, $1, $2),
               l.lead_time,
               engineering._dora_level($5, 'lead_time', l.lead_time, NULL),
               CASE WHEN f.deployments > 0
                    THEN coalesce(x.failed, 0)::float8 / f.deployments END,
               CASE WHEN f.deployments > 0
                    THEN engineering._dora_level($5, 'change_failure_rate', NULL,
                                                 coalesce(x.failed, 0)::float8 / f.deployments) END,
               r.time_to_restore,
               engineering._dora_level($5, 'time_to_restore', r.time_to_restore, NULL),
               x.recovery,
               engineering._dora_level($5, 'failed_deployment_recovery_time', x.recovery, NULL),
               CASE WHEN f.deployments > 0
                    THEN coalesce(rw.during_incident, 0)::float8 / f.deployments END
          FROM wanted w
          LEFT JOIN frequency f ON f.service IS NOT DISTINCT FROM w.service
          LEFT JOIN lead_times l ON l.service IS NOT DISTINCT FROM w.service
          LEFT JOIN failures x ON x.service IS NOT DISTINCT FROM w.service
          LEFT JOIN restore r ON r.service IS NOT DISTINCT FROM w.service
          LEFT JOIN rework rw ON rw.service IS NOT DISTINCT FROM w.service
         ORDER BY w.service NULLS LAST
        $q$, service_filter, incident_filter, start_expr, wanted_rows,
           CASE WHEN NOT single
                THEN 'UNION ALL SELECT NULL, engineering.lead_time(s.started, s.finished_at) FROM shipped s'
                ELSE '' END)
    USING from_ts, to_ts, services, env, grading_year;
END
$fn$;

COMMENT ON FUNCTION engineering._dora_report(timestamptz, timestamptz, text[], boolean, text, integer, text) IS
    'internal: dora() for every service and all together (services NULL), for one service (single, services[1]), or for a set of services as one row (service NULL)';

CREATE FUNCTION engineering.dora(
    from_ts         timestamptz,
    to_ts           timestamptz,
    service         text DEFAULT NULL,
    environment     text DEFAULT NULL,
    benchmark_year  integer DEFAULT NULL,
    lead_time_start text DEFAULT NULL)
RETURNS SETOF engineering.dora_report
LANGUAGE sql STABLE PARALLEL SAFE
SET jit = off
BEGIN ATOMIC
    SELECT * FROM engineering._dora_report(from_ts, to_ts, CASE WHEN service IS NOT NULL THEN ARRAY[service] END,
                                           service IS NOT NULL, environment, benchmark_year, lead_time_start);
END;

COMMENT ON FUNCTION engineering.dora(timestamptz, timestamptz, text, text, integer, text) IS
    'DORA report over successful deployments to an environment (default dora_settings.production_environment) that finished in [from_ts, to_ts): one row per service (or only the one given) plus a row for all services (service NULL); levels from dora_benchmarks for benchmark_year (default dora_settings.benchmark_year); lead_time_start overrides dora_settings.lead_time_start';
