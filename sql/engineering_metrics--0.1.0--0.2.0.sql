-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 18: DORA definitions
-- The 2023 report grades failed deployment recovery time where the 2021
-- report graded time to restore: its recovery tiers become rows of their
-- own metric (a user's edits of those rows move with them).
ALTER TABLE engineering.dora_benchmarks DROP CONSTRAINT dora_benchmarks_metric_check;
ALTER TABLE engineering.dora_benchmarks DROP CONSTRAINT dora_benchmarks_bound_fits_metric;
ALTER TABLE engineering.dora_benchmarks ADD CONSTRAINT dora_benchmarks_metric_check
    CHECK (metric IN ('deployment_frequency', 'lead_time', 'change_failure_rate', 'time_to_restore',
                      'failed_deployment_recovery_time')
           OR engineering._reject_value('dora_benchmarks.metric', metric,
                                        'expected deployment_frequency, lead_time, change_failure_rate, time_to_restore or failed_deployment_recovery_time'));
ALTER TABLE engineering.dora_benchmarks ADD
    CONSTRAINT dora_benchmarks_bound_fits_metric CHECK (
        CASE metric
            WHEN 'deployment_frequency' THEN max_duration IS NULL AND max_rate IS NULL
                                             AND (min_deployment_days IS NULL) = (per_period IS NULL)
            WHEN 'change_failure_rate' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_duration IS NULL
            WHEN 'lead_time' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            WHEN 'time_to_restore' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            WHEN 'failed_deployment_recovery_time' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            ELSE true   -- an unknown metric is refused by its own check
        END
        OR engineering._reject_value('dora_benchmarks bounds', metric,
                                     'deployment_frequency rows set min_deployment_days and per_period, lead_time, time_to_restore and failed_deployment_recovery_time rows max_duration, change_failure_rate rows max_rate (or none of them for the lowest level)'));
UPDATE engineering.dora_benchmarks SET metric = 'failed_deployment_recovery_time'
 WHERE report_year = 2023 AND metric = 'time_to_restore';
UPDATE engineering.dora_benchmarks SET description = 'less than one hour'
 WHERE report_year = 2023 AND metric = 'failed_deployment_recovery_time' AND level = 'elite'
   AND description = 'less than one hour (failed deployment recovery time)';
COMMENT ON COLUMN engineering.dora_benchmarks.metric IS
    'deployment_frequency, lead_time, change_failure_rate, time_to_restore (graded by the 2021 report) or failed_deployment_recovery_time (which the 2023 report grades in its place)';
COMMENT ON COLUMN engineering.dora_benchmarks.max_duration IS
    'lead_time, time_to_restore, failed_deployment_recovery_time: the level holds when the median is strictly below this (PostgreSQL compares a month as 30 days)';

-- One view decides which linked change counts, for every way of linking.
CREATE VIEW engineering._first_shipments AS
SELECT f.*,
       -- where lead time starts from a pull request: the earlier of its
       -- first commit and its opening (a rebased or amended first commit
       -- can postdate the opening), as total_time measures it.  Only
       -- evaluated where a caller reads it.
       (SELECT min(least(pr.first_commit_at, pr.opened_at))
          FROM engineering.pull_requests pr
         WHERE pr.service = f.change_service AND pr.merge_commit_sha = f.commit_sha) AS pull_request_started_at
FROM (
    SELECT d.service, d.environment, d.id AS deployment_id, d.finished_at AS deployed_at,
           dc.linked_by, c.id AS change_id, c.service AS change_service, c.commit_sha,
           c.committed_at, c.authored_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    JOIN engineering.changes c ON c.id = dc.change_id
    WHERE d.status = 'success'
      AND dc.linked_by = 'inferred'
      AND NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes e
                      JOIN engineering.deployments ed ON ed.id = e.deployment_id
                      WHERE e.change_id = dc.change_id AND e.linked_by <> 'inferred'
                        AND ed.environment = d.environment AND ed.status = 'success'
                        AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
    UNION ALL
    SELECT d.service, d.environment, d.id, d.finished_at,
           dc.linked_by, c.id, c.service, c.commit_sha,
           c.committed_at, c.authored_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    JOIN engineering.changes c ON c.id = dc.change_id
    WHERE d.status = 'success'
      AND dc.linked_by <> 'inferred'
      AND NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes e
                      JOIN engineering.deployments ed ON ed.id = e.deployment_id
                      WHERE e.change_id = dc.change_id
                        AND ed.environment = d.environment AND ed.status = 'success'
                        AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
) f
-- committed after the service's first recorded deployment (the rule of
-- _service_first_deployments, written as a probe of the deployments index
-- rather than a join with the grouped view, which a filtered caller would
-- recompute in full)
WHERE EXISTS (SELECT 1
              FROM engineering.deployments x
              WHERE x.service = f.service
                AND coalesce(x.finished_at, x.started_at) < f.committed_at);

COMMENT ON VIEW engineering._first_shipments IS
    'internal: the linked changes that count, however linked: one row per change and environment at its first successful deployment there, only for changes committed after the service''s first recorded deployment; pull_request_started_at is the earlier of the first commit and the opening of the pull request the change merged';
COMMENT ON COLUMN engineering._first_shipments.service IS 'the deployed service';
COMMENT ON COLUMN engineering._first_shipments.environment IS 'the environment the change reached';
COMMENT ON COLUMN engineering._first_shipments.deployment_id IS 'the first successful deployment of this environment that shipped it';
COMMENT ON COLUMN engineering._first_shipments.deployed_at IS 'finished_at of that deployment';
COMMENT ON COLUMN engineering._first_shipments.linked_by IS 'how the link was made: connector, inferred (link_changes()) or manual';
COMMENT ON COLUMN engineering._first_shipments.change_id IS 'the change (engineering.changes.id)';
COMMENT ON COLUMN engineering._first_shipments.change_service IS 'the service of the change (pull requests are matched on it)';
COMMENT ON COLUMN engineering._first_shipments.commit_sha IS 'its commit';
COMMENT ON COLUMN engineering._first_shipments.committed_at IS 'committer date of the change: after the service''s first recorded deployment';
COMMENT ON COLUMN engineering._first_shipments.authored_at IS 'author date of the change';
COMMENT ON COLUMN engineering._first_shipments.pull_request_started_at IS
    'the earlier of first_commit_at and opened_at of the pull request the change merged (NULL for other changes)';
GRANT SELECT ON engineering._first_shipments TO engineering_reader;
CREATE OR REPLACE VIEW engineering.change_lead_times AS
SELECT f.service,
       f.environment,
       f.change_id,
       f.commit_sha,
       f.deployment_id,
       f.linked_by,
       f.committed_at,
       st.measured_from,
       f.deployed_at,
       CASE WHEN st.measured_from <= f.deployed_at THEN f.deployed_at - st.measured_from END AS lead_time
FROM engineering._first_shipments f
CROSS JOIN LATERAL (
    -- (the setting is read by a scalar subquery, evaluated once: a join
    -- with the unanalyzed one-row table would skew the row estimates)
    SELECT CASE (SELECT s.lead_time_start FROM engineering.dora_settings s)
               WHEN 'authored_at' THEN coalesce(f.authored_at, f.committed_at)
               WHEN 'pr_first_commit' THEN
                   coalesce(f.pull_request_started_at, f.committed_at)
               ELSE f.committed_at
           END AS measured_from
) st;

COMMENT ON COLUMN engineering.change_lead_times.measured_from IS
    'where its lead time starts, per dora_settings.lead_time_start (committed_at, authored_at, or the earlier of its pull request''s first commit and opening)';
CREATE OR REPLACE VIEW engineering.pull_request_cycle_times AS
SELECT pr.id AS pull_request_id,
       pr.service,
       pr.number,
       pr.title,
       pr.author,
       pr.first_commit_at,
       pr.opened_at,
       pr.merged_at,
       dep.deployment_id,
       dep.deployed_at,
       CASE WHEN pr.first_commit_at <= pr.opened_at THEN pr.opened_at - pr.first_commit_at END AS coding_time,
       pr.merged_at - pr.opened_at AS review_time,
       CASE WHEN dep.deployed_at >= pr.merged_at THEN dep.deployed_at - pr.merged_at END AS deploy_time,
       CASE WHEN dep.deployed_at >= pr.merged_at
            THEN dep.deployed_at - least(pr.first_commit_at, pr.opened_at) END AS total_time
FROM engineering.pull_requests pr
LEFT JOIN LATERAL (
    SELECT f.deployment_id, f.deployed_at
    FROM engineering._first_shipments f
    WHERE pr.merged_at IS NOT NULL
      AND f.change_service = pr.service
      AND f.commit_sha = pr.merge_commit_sha
      AND f.environment = (SELECT s.production_environment FROM engineering.dora_settings s)
    ORDER BY f.deployed_at, f.deployment_id
    LIMIT 1
) dep ON true;

COMMENT ON COLUMN engineering.pull_request_cycle_times.deployment_id IS
    'first successful deployment to the production environment that shipped its merge commit (NULL until then, and when the commit predates the service''s first deployment)';

-- dora() gains failed_deployment_recovery_time_level: a new result type.
DROP FUNCTION engineering.dora(timestamptz, timestamptz, text, text, integer, text);
DROP TYPE engineering.dora_report;
COMMENT ON FUNCTION engineering._dora_level(integer, text, interval, float8) IS
    'internal: the level of dora_benchmarks a lead time, time to restore, failed deployment recovery time (strictly below max_duration) or change failure rate (at most max_rate) reaches';
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

CREATE FUNCTION engineering.dora(
    from_ts         timestamptz,
    to_ts           timestamptz,
    service         text DEFAULT NULL,
    environment     text DEFAULT NULL,
    benchmark_year  integer DEFAULT NULL,
    lead_time_start text DEFAULT NULL)
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

    IF service IS NOT NULL THEN
        service_filter := 'AND d.service = $3';
        incident_filter := 'AND i.service = $3';
        wanted_rows := 'SELECT $3::text AS service';
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
           CASE WHEN service IS NULL
                THEN 'UNION ALL SELECT NULL, engineering.lead_time(s.started, s.finished_at) FROM shipped s'
                ELSE '' END)
    USING from_ts, to_ts, service, env, grading_year;
END
$fn$;

COMMENT ON FUNCTION engineering.dora(timestamptz, timestamptz, text, text, integer, text) IS
    'DORA report over successful deployments to an environment (default dora_settings.production_environment) that finished in [from_ts, to_ts): one row per service (or only the one given) plus a row for all services (service NULL); levels from dora_benchmarks for benchmark_year (default dora_settings.benchmark_year); lead_time_start overrides dora_settings.lead_time_start';
