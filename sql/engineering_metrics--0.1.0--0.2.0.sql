-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 19: one list of vendor kinds, the connector table in src/connectors.c
CREATE FUNCTION engineering._connector_kinds()
RETURNS text[]
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_kinds';
COMMENT ON FUNCTION engineering._connector_kinds() IS
    'internal: the kinds of source this build has a connector for (src/connectors.c), the one list of valid sources.kind values';

CREATE FUNCTION engineering._connector_kind_list()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_kind_list';
COMMENT ON FUNCTION engineering._connector_kind_list() IS
    'internal: the kinds of _connector_kinds() as an English list ("github, gitlab or jenkins"), for error hints';

ALTER TABLE engineering.sources
    DROP CONSTRAINT sources_kind_check,
    ADD CONSTRAINT sources_kind_check
        CHECK (kind = ANY (engineering._connector_kinds())
               OR engineering._reject_value('sources.kind', kind, 'expected ' || engineering._connector_kind_list()));
COMMENT ON COLUMN engineering.sources.kind IS 'connector: one of engineering._connector_kinds() (github, gitlab, ...)';

CREATE OR REPLACE FUNCTION engineering._validate_source(kind text, base_url text, config jsonb)
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

-- issue 17: incremental link_changes() and attribute_incidents()
-- (a backlog recorded by triggers on the event tables; each run redoes only
-- what it records)
------------------------------------------------------------------------------
-- dora_backlog: what link_changes() and attribute_incidents() still have to
-- look at.  Statement-level triggers on the event tables record, per job
-- and service, the earliest time their new, changed or deleted rows touch
-- (a change's committed_at, a deployment's started_at or finished_at, an
-- incident's opened_at); each job's run takes its rows and redoes only that
-- part.  A row with service NULL means every service, from the beginning.
-- Not dumped: after a restore CREATE EXTENSION puts those rows back, and
-- the first runs are full ones.
------------------------------------------------------------------------------
CREATE TABLE engineering.dora_backlog (
    job     text NOT NULL CHECK (job IN ('link_changes', 'attribute_incidents')),
    service text,
    since   timestamptz NOT NULL,
    CONSTRAINT dora_backlog_job_service_key UNIQUE NULLS NOT DISTINCT (job, service)
);
INSERT INTO engineering.dora_backlog (job, service, since)
VALUES ('link_changes', NULL, '-infinity'), ('attribute_incidents', NULL, '-infinity');
COMMENT ON TABLE engineering.dora_backlog IS
    'per job (link_changes, attribute_incidents) and service, the earliest time that rows written since the job''s last run touch; service NULL: every service (the next run is a full one)';
COMMENT ON COLUMN engineering.dora_backlog.job IS 'link_changes or attribute_incidents';
COMMENT ON COLUMN engineering.dora_backlog.service IS 'the service whose rows changed; NULL for every service';
COMMENT ON COLUMN engineering.dora_backlog.since IS 'the earliest committed_at, started_at, finished_at or opened_at the changed rows had before or after the change';

CREATE TABLE engineering.dora_job_arguments (
    job       text PRIMARY KEY CHECK (job = 'attribute_incidents'),
    arguments text NOT NULL
);
COMMENT ON TABLE engineering.dora_job_arguments IS
    'the arguments of the last full run of a DORA job: a run with other arguments is a full one (not dumped: the first run after a restore is full)';
COMMENT ON COLUMN engineering.dora_job_arguments.job IS 'attribute_incidents';
COMMENT ON COLUMN engineering.dora_job_arguments.arguments IS 'its arguments (max_gap and environment), as text';

-- The backlog is written and taken only through these functions, which
-- run as the extension's owner: a writer's INSERT into an event table
-- records its backlog without any privilege on the table.
-- The backlog of one job, from (service, time) pairs; earliest time wins.
CREATE FUNCTION engineering._dora_backlog_add(job text, touched jsonb)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO engineering.dora_backlog AS b (job, service, since)
    SELECT $1, t.service, min(t.since)
      FROM jsonb_to_recordset($2) AS t(service text, since timestamptz)
     WHERE t.service IS NOT NULL AND t.since IS NOT NULL
     GROUP BY t.service
     ORDER BY t.service
    ON CONFLICT (job, service) DO UPDATE SET since = least(b.since, excluded.since)
     WHERE excluded.since < b.since
$$;
COMMENT ON FUNCTION engineering._dora_backlog_add(text, jsonb) IS
    'internal: records in dora_backlog, for a job, the earliest touched time per service of a list of {service, since}';
REVOKE EXECUTE ON FUNCTION engineering._dora_backlog_add(text, jsonb) FROM PUBLIC;

CREATE FUNCTION engineering._dora_backlog_add_everything()
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO engineering.dora_backlog AS b (job, service, since)
    VALUES ('attribute_incidents', NULL, '-infinity'), ('link_changes', NULL, '-infinity')
    ON CONFLICT (job, service) DO UPDATE SET since = '-infinity'
$$;
COMMENT ON FUNCTION engineering._dora_backlog_add_everything() IS
    'internal: marks every service as to be redone in full by link_changes() and attribute_incidents() (after a TRUNCATE of an event table)';
REVOKE EXECUTE ON FUNCTION engineering._dora_backlog_add_everything() FROM PUBLIC;

-- A run takes (deletes) the backlog rows of its job, or of one service;
-- rows that concurrent writers add meanwhile stay for the next run.
CREATE FUNCTION engineering._dora_backlog_take(job text, only_service text DEFAULT NULL)
RETURNS TABLE (service text, since timestamptz)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM engineering.dora_backlog b
     WHERE b.job = $1 AND ($2 IS NULL OR b.service = $2)
    RETURNING b.service, b.since
$$;
COMMENT ON FUNCTION engineering._dora_backlog_take(text, text) IS
    'internal: removes and returns the dora_backlog rows of a job (of one service when given; service NULL: every service)';
REVOKE EXECUTE ON FUNCTION engineering._dora_backlog_take(text, text) FROM PUBLIC;

-- whether a job's arguments differ from its last run's (then remembered)
CREATE FUNCTION engineering._dora_job_arguments_changed(job text, arguments text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM engineering.dora_job_arguments a WHERE a.job = $1 AND a.arguments = $2) THEN
        RETURN false;
    END IF;
    INSERT INTO engineering.dora_job_arguments AS a (job, arguments) VALUES ($1, $2)
    ON CONFLICT ON CONSTRAINT dora_job_arguments_pkey DO UPDATE SET arguments = excluded.arguments;
    RETURN true;
END
$$;
COMMENT ON FUNCTION engineering._dora_job_arguments_changed(text, text) IS
    'internal: true (and the arguments remembered) when a DORA job runs with other arguments than its last run';
REVOKE EXECUTE ON FUNCTION engineering._dora_job_arguments_changed(text, text) FROM PUBLIC;

-- One trigger function for the four event tables; the rows of a statement
-- come as transition tables (old_rows for UPDATE and DELETE, new_rows for
-- INSERT and UPDATE).
CREATE FUNCTION engineering._dora_backlog_record()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched jsonb := '[]';
    part jsonb;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- no rows to look at: every service, from the beginning
        PERFORM engineering._dora_backlog_add_everything();
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format($q$SELECT coalesce(jsonb_agg(x), '[]') FROM (%s) x$q$,
                       engineering._dora_backlog_query(TG_TABLE_NAME, 'old_rows'))
           INTO part;
        touched := touched || part;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format($q$SELECT coalesce(jsonb_agg(x), '[]') FROM (%s) x$q$,
                       engineering._dora_backlog_query(TG_TABLE_NAME, 'new_rows'))
           INTO part;
        touched := touched || part;
    END IF;
    IF TG_TABLE_NAME = 'incidents' THEN
        -- attribute_incidents() writing its own results is not new input
        IF current_setting('engineering.attributing_incidents', true) IS DISTINCT FROM 'on' THEN
            PERFORM engineering._dora_backlog_add('attribute_incidents', touched);
        END IF;
    ELSE
        IF TG_TABLE_NAME = 'deployments' THEN
            PERFORM engineering._dora_backlog_add('attribute_incidents', touched);
        END IF;
        PERFORM engineering._dora_backlog_add('link_changes', touched);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION engineering._dora_backlog_record() IS
    'internal trigger: records in dora_backlog which services and times the rows of a statement on deployments, changes, deployment_changes or incidents touch';

-- (service, since) of the rows of a transition table, per table: what they
-- can change in the links or the attributions
CREATE FUNCTION engineering._dora_backlog_query(tab text, rows_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE $1
        WHEN 'deployments' THEN
            format('SELECT r.service, least(r.started_at, r.finished_at) AS since FROM %I r', $2)
        WHEN 'changes' THEN
            -- and the deployments whose head it is: their range ends at it
            format($q$SELECT r.service, least(r.committed_at,
                        (SELECT min(d.finished_at) FROM engineering.deployments d
                          WHERE d.service = r.service AND d.commit_sha = r.commit_sha)) AS since
                     FROM %I r$q$, $2)
        WHEN 'deployment_changes' THEN
            -- inferred links are link_changes()' output, not its input
            format($q$SELECT d.service, least(d.finished_at, c.committed_at) AS since
                     FROM %I r
                     JOIN engineering.deployments d ON d.id = r.deployment_id
                     LEFT JOIN engineering.changes c ON c.id = r.change_id
                     WHERE r.linked_by <> 'inferred'$q$, $2)
        WHEN 'incidents' THEN
            format('SELECT r.service, r.opened_at AS since FROM %I r', $2)
    END
$$;
COMMENT ON FUNCTION engineering._dora_backlog_query(text, text) IS
    'internal: the query giving (service, since) for the rows of a transition table of an event table';

CREATE TRIGGER deployments_backlog_insert AFTER INSERT ON engineering.deployments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployments_backlog_update AFTER UPDATE ON engineering.deployments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployments_backlog_delete AFTER DELETE ON engineering.deployments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployments_backlog_truncate AFTER TRUNCATE ON engineering.deployments
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_insert AFTER INSERT ON engineering.changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_update AFTER UPDATE ON engineering.changes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_delete AFTER DELETE ON engineering.changes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_truncate AFTER TRUNCATE ON engineering.changes
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_insert AFTER INSERT ON engineering.deployment_changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_update AFTER UPDATE ON engineering.deployment_changes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_delete AFTER DELETE ON engineering.deployment_changes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_truncate AFTER TRUNCATE ON engineering.deployment_changes
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_insert AFTER INSERT ON engineering.incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_update AFTER UPDATE ON engineering.incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_delete AFTER DELETE ON engineering.incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_truncate AFTER TRUNCATE ON engineering.incidents
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();

------------------------------------------------------------------------------
-- link_changes() and attribute_incidents(), incremental
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION engineering.link_changes(service text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- (JIT compiling these one-off plans costs seconds and saves nothing)
SET jit = off
AS $$
DECLARE
    only_service text := service;
    added bigint;
    nestloop text := current_setting('enable_nestloop');
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('engineering.link_changes'));

    IF to_regclass('pg_temp.em_link_scope') IS NOT NULL THEN
        DROP TABLE pg_temp.em_link_scope;
    END IF;
    IF to_regclass('pg_temp.em_link_heads') IS NOT NULL THEN
        DROP TABLE pg_temp.em_link_heads;
    END IF;
    IF to_regclass('pg_temp.em_wanted_links') IS NOT NULL THEN
        DROP TABLE pg_temp.em_wanted_links;
    END IF;

    -- The services to relink, and from when.
    CREATE TEMPORARY TABLE em_link_scope (service text PRIMARY KEY, since timestamptz NOT NULL) ON COMMIT DROP;
    IF only_service IS NOT NULL THEN
        INSERT INTO pg_temp.em_link_scope VALUES (only_service, '-infinity');
        PERFORM engineering._dora_backlog_take('link_changes', only_service);
    ELSE
        WITH taken AS (
            SELECT b.service, b.since FROM engineering._dora_backlog_take('link_changes') b
        )
        INSERT INTO pg_temp.em_link_scope (service, since)
        SELECT t.service, t.since FROM taken t
         WHERE t.service IS NOT NULL AND NOT EXISTS (SELECT 1 FROM taken a WHERE a.service IS NULL)
        UNION ALL
        SELECT DISTINCT d.service, '-infinity'::timestamptz FROM engineering.deployments d
         WHERE EXISTS (SELECT 1 FROM taken a WHERE a.service IS NULL);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_temp.em_link_scope) THEN
        RETURN 0;     -- nothing new since the last run
    END IF;
    ANALYZE pg_temp.em_link_scope;

    -- Every successful deployment of those services with its upper bound
    -- (the running maximum needs the earlier ones too), and whether it is
    -- to be redone: finished, or its head committed, at or after the
    -- service's backlog time.
    CREATE TEMPORARY TABLE em_link_heads ON COMMIT DROP AS
    SELECT d.id, d.service, d.environment, d.finished_at,
           coalesce(h.committed_at, d.finished_at) AS upper_bound,
           d.finished_at >= s.since OR h.committed_at >= s.since AS redo
    FROM engineering.deployments d
    JOIN pg_temp.em_link_scope s ON s.service = d.service
    LEFT JOIN LATERAL (
        -- the head commit as a known change of the service: exact
        -- sha, else (abbreviated sha) the unique change it prefixes
        SELECT coalesce(
            (SELECT min(c.committed_at) FROM engineering.changes c
              WHERE c.service = d.service AND c.commit_sha = d.commit_sha),
            (SELECT CASE WHEN count(*) = 1 THEN min(c.committed_at) END
               FROM engineering.changes c
              WHERE length(d.commit_sha) < 40
                AND c.service = d.service
                AND c.commit_sha > d.commit_sha AND c.commit_sha < d.commit_sha || 'g'
                AND left(c.commit_sha, length(d.commit_sha)) = d.commit_sha)
        ) AS committed_at
        WHERE d.commit_sha IS NOT NULL
    ) h ON true
    WHERE d.status = 'success';
    ANALYZE pg_temp.em_link_heads;

    -- The links that should exist on the deployments redone, in a
    -- temporary table so that the planner knows their number when it
    -- compares them with the links that do exist (there can be millions).
    CREATE TEMPORARY TABLE em_wanted_links ON COMMIT DROP AS
    WITH first_deployment AS (
        -- when each service was first seen deploying: nothing committed
        -- before that is attributed to it
        SELECT d.service, min(coalesce(d.finished_at, d.started_at)) AS since
        FROM engineering.deployments d
        JOIN pg_temp.em_link_scope s ON s.service = d.service
        WHERE coalesce(d.finished_at, d.started_at) IS NOT NULL
        GROUP BY d.service
    ),
    ranges AS (
        SELECT b.id, b.service, b.environment, b.lower_bound, b.upper_bound
        FROM (
            SELECT h.id, h.service, h.environment, h.upper_bound, h.redo,
                   greatest(f.since,
                            max(h.upper_bound) OVER (PARTITION BY h.service, h.environment
                                                     ORDER BY h.finished_at, h.id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS lower_bound
            FROM pg_temp.em_link_heads h
            JOIN first_deployment f ON f.service = h.service
        ) b
        WHERE b.redo
          AND b.upper_bound > b.lower_bound
          -- deployments described by their connector are left alone
          AND NOT EXISTS (SELECT 1 FROM engineering.deployment_changes r
                          WHERE r.deployment_id = b.id AND r.linked_by = 'connector')
    )
    SELECT r.id AS deployment_id, c.id AS change_id
    FROM ranges r
    JOIN engineering.changes c
      ON c.service = r.service
     AND c.committed_at > r.lower_bound
     AND c.committed_at <= r.upper_bound
    -- a change a connector or a person put on a deployment of this
    -- environment already has its deployment there
    WHERE NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes k
                      JOIN engineering.deployments kd ON kd.id = k.deployment_id
                      WHERE k.change_id = c.id AND k.linked_by <> 'inferred'
                        AND kd.environment = r.environment AND kd.status = 'success');
    ANALYZE pg_temp.em_wanted_links;

    -- The two comparisons of the wanted links with the existing ones are
    -- equi-joins over up to millions of rows: hash joins, whatever the
    -- statistics of deployment_changes say.  An autoanalyze that ran while
    -- a previous run's inserts were uncommitted records the table as empty,
    -- and a nested loop would then rescan the wanted links once per
    -- existing link (hours instead of seconds).
    PERFORM set_config('enable_nestloop', 'off', true);

    -- inferred links that no longer hold, on the deployments redone: the
    -- successful ones above, and any other of those services that finished
    -- after the backlog time (or not at all: re-synced as running)
    DELETE FROM engineering.deployment_changes dc
     USING engineering.deployments d, pg_temp.em_link_scope s
     WHERE dc.linked_by = 'inferred'
       AND d.id = dc.deployment_id
       AND s.service = d.service
       AND (d.finished_at IS NULL OR d.finished_at >= s.since
            OR EXISTS (SELECT 1 FROM pg_temp.em_link_heads h WHERE h.id = d.id AND h.redo))
       AND NOT EXISTS (SELECT 1 FROM pg_temp.em_wanted_links w
                        WHERE w.deployment_id = dc.deployment_id AND w.change_id = dc.change_id);

    -- the links that exist already need nothing (a separate statement: an
    -- INSERT whose SELECT reads the table it fills would rescan the rows
    -- it has just added)
    DELETE FROM pg_temp.em_wanted_links w
     USING engineering.deployment_changes dc
     WHERE dc.deployment_id = w.deployment_id AND dc.change_id = w.change_id;

    PERFORM set_config('enable_nestloop', nestloop, true);

    -- new ones, in the order of the changes so that the foreign-key checks
    -- read the changes table in order
    INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
    SELECT w.deployment_id, w.change_id, 'inferred'
      FROM pg_temp.em_wanted_links w
     ORDER BY w.change_id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;

    DROP TABLE pg_temp.em_wanted_links;
    DROP TABLE pg_temp.em_link_heads;
    DROP TABLE pg_temp.em_link_scope;
    RETURN added;
END
$$;

COMMENT ON FUNCTION engineering.link_changes(text) IS
    'links each change to the first successful deployment per environment that shipped it (by head commit, else by time), for deployments whose connector did not record their changes; never attributes changes older than the service''s first recorded deployment; idempotent; incremental (only what dora_backlog records since the last run); returns how many links it added (only one service, in full, when given)';

------------------------------------------------------------------------------
-- attribute_incidents(max_gap, environment)
--
-- An incident without a recorded cause is put on the latest successful
-- deployment of the same service in the production environment that
-- finished before the incident opened, at most max_gap earlier (NULL: no
-- limit, as Apache DevLake does).  Causes set by a connector or by hand
-- (cause_inferred false) are never touched; inferred ones are recomputed,
-- and cleared when no deployment qualifies any more (max_gap shrank, the
-- deployment was re-synced as failed).
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION engineering.attribute_incidents(max_gap interval DEFAULT '7 days', environment text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    env text := coalesce(environment,
                         (SELECT s.production_environment FROM engineering.dora_settings s));
    run_arguments text;
    full_run boolean;
    changed bigint;
BEGIN
    IF max_gap < interval '0' THEN
        RAISE EXCEPTION 'max_gap must not be negative: %', max_gap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    env := coalesce(env, 'production');
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('engineering.attribute_incidents'));

    -- Incremental: only the incidents of services in dora_backlog opened at
    -- or after its time (a new, moved or re-synced deployment changes the
    -- cause of later incidents only); a full run when the backlog says
    -- every service, or when the arguments are not those of the last run.
    IF to_regclass('pg_temp.em_attribution_scope') IS NOT NULL THEN
        DROP TABLE pg_temp.em_attribution_scope;
    END IF;
    CREATE TEMPORARY TABLE em_attribution_scope (service text PRIMARY KEY, since timestamptz NOT NULL) ON COMMIT DROP;
    run_arguments := format('max_gap=%s environment=%s', coalesce(max_gap::text, 'none'), env);
    full_run := engineering._dora_job_arguments_changed('attribute_incidents', run_arguments);
    WITH taken AS (
        SELECT b.service, b.since FROM engineering._dora_backlog_take('attribute_incidents') b
    ),
    everything AS (
        SELECT count(*) > 0 AS yes FROM taken WHERE taken.service IS NULL
    )
    INSERT INTO pg_temp.em_attribution_scope
    SELECT t.service, t.since FROM taken t
     WHERE t.service IS NOT NULL AND NOT (SELECT yes FROM everything)
    UNION ALL
    -- every service: a full run
    SELECT '', '-infinity' FROM everything WHERE yes;
    full_run := full_run OR EXISTS (SELECT 1 FROM pg_temp.em_attribution_scope s WHERE s.service = '');
    IF NOT full_run AND NOT EXISTS (SELECT 1 FROM pg_temp.em_attribution_scope) THEN
        RETURN 0;     -- nothing new since the last run
    END IF;

    -- its own writes are not new input for the next run
    PERFORM set_config('engineering.attributing_incidents', 'on', true);
    WITH candidates AS (
        SELECT i.id,
               (SELECT d.id
                  FROM engineering.deployments d
                 WHERE d.service = i.service
                   AND d.environment = env
                   AND d.status = 'success'
                   AND d.finished_at < i.opened_at
                   AND (max_gap IS NULL OR d.finished_at >= i.opened_at - max_gap)
                 ORDER BY d.finished_at DESC, d.id DESC
                 LIMIT 1) AS cause
        FROM engineering.incidents i
        WHERE (i.cause_deployment_id IS NULL OR i.cause_inferred)
          AND (full_run OR EXISTS (SELECT 1 FROM pg_temp.em_attribution_scope s
                                    WHERE s.service = i.service AND i.opened_at >= s.since))
    )
    UPDATE engineering.incidents i
       SET cause_deployment_id = c.cause,
           cause_inferred = c.cause IS NOT NULL
      FROM candidates c
     WHERE i.id = c.id
       -- re-checked on rows a connector changed meanwhile
       AND (i.cause_deployment_id IS NULL OR i.cause_inferred)
       AND (i.cause_deployment_id IS DISTINCT FROM c.cause
            OR i.cause_inferred IS DISTINCT FROM (c.cause IS NOT NULL));
    GET DIAGNOSTICS changed = ROW_COUNT;
    PERFORM set_config('engineering.attributing_incidents', 'off', true);
    DROP TABLE pg_temp.em_attribution_scope;
    RETURN changed;
END
$$;

COMMENT ON FUNCTION engineering.attribute_incidents(interval, text) IS
    'sets the inferred cause of incidents without a recorded one: the latest successful deployment of the same service and environment (default: dora_settings.production_environment) that finished before the incident opened, at most max_gap earlier (NULL: no limit); never overwrites causes set by a connector or by hand; recomputes inferred ones (incrementally: only what dora_backlog records since the last run with the same arguments); returns how many incidents it changed';
GRANT SELECT ON engineering.dora_backlog, engineering.dora_job_arguments TO engineering_reader;
-- what writers' inserts record in the backlog, and what their runs of
-- link_changes() and attribute_incidents() take from it
GRANT EXECUTE ON FUNCTION
    engineering._dora_backlog_add(text, jsonb),
    engineering._dora_backlog_add_everything(),
    engineering._dora_backlog_take(text, text),
    engineering._dora_job_arguments_changed(text, text)
TO engineering_writer;

-- issue 18 (2), issue 17: when each service was first seen deploying, kept
-- by the deployments' triggers, so that the rule of _first_shipments is one
-- hash join or one index probe
CREATE TABLE engineering.service_first_deployments (
    service    text PRIMARY KEY,
    first_seen timestamptz NOT NULL
);
COMMENT ON TABLE engineering.service_first_deployments IS
    'when each service was first seen deploying: the earliest coalesce(finished_at, started_at) of its deployments (any environment and status); nothing committed before it is counted';
COMMENT ON COLUMN engineering.service_first_deployments.service IS 'the service';
COMMENT ON COLUMN engineering.service_first_deployments.first_seen IS 'the earliest coalesce(finished_at, started_at) of its deployments';

CREATE FUNCTION engineering._first_deployments_note(earliest jsonb, recheck jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO engineering.service_first_deployments AS f (service, first_seen)
    SELECT e.service, e.first_seen
      FROM jsonb_to_recordset(earliest) AS e(service text, first_seen timestamptz)
     WHERE e.service IS NOT NULL AND e.first_seen IS NOT NULL
     ORDER BY e.service
    ON CONFLICT (service) DO UPDATE SET first_seen = excluded.first_seen
     WHERE excluded.first_seen < f.first_seen;
    IF jsonb_array_length(recheck) > 0 THEN
        -- (the expression index makes each minimum one probe)
        WITH now_first AS (
            SELECT r.service,
                   (SELECT min(coalesce(d.finished_at, d.started_at)) FROM engineering.deployments d
                     WHERE d.service = r.service) AS first_seen
              FROM (SELECT DISTINCT x AS service FROM jsonb_array_elements_text(recheck) x) r
        ),
        gone AS (
            DELETE FROM engineering.service_first_deployments f
             USING now_first n WHERE f.service = n.service AND n.first_seen IS NULL
        )
        INSERT INTO engineering.service_first_deployments AS f (service, first_seen)
        SELECT n.service, n.first_seen FROM now_first n WHERE n.first_seen IS NOT NULL ORDER BY n.service
        ON CONFLICT (service) DO UPDATE SET first_seen = excluded.first_seen
         WHERE excluded.first_seen IS DISTINCT FROM f.first_seen;
    END IF;
END
$$;
COMMENT ON FUNCTION engineering._first_deployments_note(jsonb, jsonb) IS
    'internal: keeps service_first_deployments: the earliest times of new deployments ({service, first_seen}), and the services whose deployments were updated or deleted, recomputed';
REVOKE EXECUTE ON FUNCTION engineering._first_deployments_note(jsonb, jsonb) FROM PUBLIC;

CREATE INDEX deployments_service_first_seen_idx
    ON engineering.deployments (service, (coalesce(finished_at, started_at)));
INSERT INTO engineering.service_first_deployments (service, first_seen)
SELECT d.service, min(coalesce(d.finished_at, d.started_at))
  FROM engineering.deployments d
 WHERE coalesce(d.finished_at, d.started_at) IS NOT NULL
 GROUP BY d.service;
CREATE OR REPLACE FUNCTION engineering._dora_backlog_record()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched jsonb := '[]';
    part jsonb;
    earliest jsonb := '[]';
    recheck jsonb := '[]';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- no rows to look at: every service, from the beginning
        PERFORM engineering._dora_backlog_add_everything();
        IF TG_TABLE_NAME = 'deployments' THEN
            PERFORM engineering._first_deployments_note('[]', (SELECT coalesce(jsonb_agg(f.service), '[]')
                                                                 FROM engineering.service_first_deployments f));
        END IF;
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'deployments' THEN
        -- (each transition table is read only where it exists)
        IF TG_OP <> 'DELETE' THEN
            SELECT coalesce(jsonb_agg(x), '[]') INTO earliest
              FROM (SELECT r.service, min(coalesce(r.finished_at, r.started_at)) AS first_seen
                      FROM new_rows r GROUP BY r.service) x;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            SELECT coalesce(jsonb_agg(DISTINCT r.service), '[]') INTO recheck FROM old_rows r;
        END IF;
        PERFORM engineering._first_deployments_note(earliest, recheck);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format($q$SELECT coalesce(jsonb_agg(x), '[]') FROM (%s) x$q$,
                       engineering._dora_backlog_query(TG_TABLE_NAME, 'old_rows'))
           INTO part;
        touched := touched || part;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format($q$SELECT coalesce(jsonb_agg(x), '[]') FROM (%s) x$q$,
                       engineering._dora_backlog_query(TG_TABLE_NAME, 'new_rows'))
           INTO part;
        touched := touched || part;
    END IF;
    IF TG_TABLE_NAME = 'incidents' THEN
        -- attribute_incidents() writing its own results is not new input
        IF current_setting('engineering.attributing_incidents', true) IS DISTINCT FROM 'on' THEN
            PERFORM engineering._dora_backlog_add('attribute_incidents', touched);
        END IF;
    ELSE
        IF TG_TABLE_NAME = 'deployments' THEN
            PERFORM engineering._dora_backlog_add('attribute_incidents', touched);
        END IF;
        PERFORM engineering._dora_backlog_add('link_changes', touched);
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION engineering.link_changes(service text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- (JIT compiling these one-off plans costs seconds and saves nothing)
SET jit = off
AS $$
DECLARE
    only_service text := service;
    added bigint;
    nestloop text := current_setting('enable_nestloop');
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('engineering.link_changes'));

    IF to_regclass('pg_temp.em_link_scope') IS NOT NULL THEN
        DROP TABLE pg_temp.em_link_scope;
    END IF;
    IF to_regclass('pg_temp.em_link_heads') IS NOT NULL THEN
        DROP TABLE pg_temp.em_link_heads;
    END IF;
    IF to_regclass('pg_temp.em_wanted_links') IS NOT NULL THEN
        DROP TABLE pg_temp.em_wanted_links;
    END IF;

    -- The services to relink, and from when.
    CREATE TEMPORARY TABLE em_link_scope (service text PRIMARY KEY, since timestamptz NOT NULL) ON COMMIT DROP;
    IF only_service IS NOT NULL THEN
        INSERT INTO pg_temp.em_link_scope VALUES (only_service, '-infinity');
        PERFORM engineering._dora_backlog_take('link_changes', only_service);
    ELSE
        WITH taken AS (
            SELECT b.service, b.since FROM engineering._dora_backlog_take('link_changes') b
        )
        INSERT INTO pg_temp.em_link_scope (service, since)
        SELECT t.service, t.since FROM taken t
         WHERE t.service IS NOT NULL AND NOT EXISTS (SELECT 1 FROM taken a WHERE a.service IS NULL)
        UNION ALL
        SELECT DISTINCT d.service, '-infinity'::timestamptz FROM engineering.deployments d
         WHERE EXISTS (SELECT 1 FROM taken a WHERE a.service IS NULL);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_temp.em_link_scope) THEN
        RETURN 0;     -- nothing new since the last run
    END IF;
    ANALYZE pg_temp.em_link_scope;

    -- Every successful deployment of those services with its upper bound
    -- (the running maximum needs the earlier ones too), and whether it is
    -- to be redone: finished, or its head committed, at or after the
    -- service's backlog time.
    CREATE TEMPORARY TABLE em_link_heads ON COMMIT DROP AS
    SELECT d.id, d.service, d.environment, d.finished_at,
           coalesce(h.committed_at, d.finished_at) AS upper_bound,
           d.finished_at >= s.since OR h.committed_at >= s.since AS redo
    FROM engineering.deployments d
    JOIN pg_temp.em_link_scope s ON s.service = d.service
    LEFT JOIN LATERAL (
        -- the head commit as a known change of the service: exact
        -- sha, else (abbreviated sha) the unique change it prefixes
        SELECT coalesce(
            (SELECT min(c.committed_at) FROM engineering.changes c
              WHERE c.service = d.service AND c.commit_sha = d.commit_sha),
            (SELECT CASE WHEN count(*) = 1 THEN min(c.committed_at) END
               FROM engineering.changes c
              WHERE length(d.commit_sha) < 40
                AND c.service = d.service
                AND c.commit_sha > d.commit_sha AND c.commit_sha < d.commit_sha || 'g'
                AND left(c.commit_sha, length(d.commit_sha)) = d.commit_sha)
        ) AS committed_at
        WHERE d.commit_sha IS NOT NULL
    ) h ON true
    WHERE d.status = 'success';
    ANALYZE pg_temp.em_link_heads;

    -- The links that should exist on the deployments redone, in a
    -- temporary table so that the planner knows their number when it
    -- compares them with the links that do exist (there can be millions).
    CREATE TEMPORARY TABLE em_wanted_links ON COMMIT DROP AS
    WITH first_deployment AS (
        -- when each service was first seen deploying: nothing committed
        -- before that is attributed to it
        SELECT f.service, f.first_seen AS since
        FROM engineering.service_first_deployments f
        JOIN pg_temp.em_link_scope s ON s.service = f.service
    ),
    ranges AS (
        SELECT b.id, b.service, b.environment, b.lower_bound, b.upper_bound
        FROM (
            SELECT h.id, h.service, h.environment, h.upper_bound, h.redo,
                   greatest(f.since,
                            max(h.upper_bound) OVER (PARTITION BY h.service, h.environment
                                                     ORDER BY h.finished_at, h.id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS lower_bound
            FROM pg_temp.em_link_heads h
            JOIN first_deployment f ON f.service = h.service
        ) b
        WHERE b.redo
          AND b.upper_bound > b.lower_bound
          -- deployments described by their connector are left alone
          AND NOT EXISTS (SELECT 1 FROM engineering.deployment_changes r
                          WHERE r.deployment_id = b.id AND r.linked_by = 'connector')
    )
    SELECT r.id AS deployment_id, c.id AS change_id
    FROM ranges r
    JOIN engineering.changes c
      ON c.service = r.service
     AND c.committed_at > r.lower_bound
     AND c.committed_at <= r.upper_bound
    -- a change a connector or a person put on a deployment of this
    -- environment already has its deployment there
    WHERE NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes k
                      JOIN engineering.deployments kd ON kd.id = k.deployment_id
                      WHERE k.change_id = c.id AND k.linked_by <> 'inferred'
                        AND kd.environment = r.environment AND kd.status = 'success');
    ANALYZE pg_temp.em_wanted_links;

    -- The two comparisons of the wanted links with the existing ones are
    -- equi-joins over up to millions of rows: hash joins, whatever the
    -- statistics of deployment_changes say.  An autoanalyze that ran while
    -- a previous run's inserts were uncommitted records the table as empty,
    -- and a nested loop would then rescan the wanted links once per
    -- existing link (hours instead of seconds).
    PERFORM set_config('enable_nestloop', 'off', true);

    -- inferred links that no longer hold, on the deployments redone: the
    -- successful ones above, and any other of those services that finished
    -- after the backlog time (or not at all: re-synced as running)
    DELETE FROM engineering.deployment_changes dc
     USING engineering.deployments d, pg_temp.em_link_scope s
     WHERE dc.linked_by = 'inferred'
       AND d.id = dc.deployment_id
       AND s.service = d.service
       AND (d.finished_at IS NULL OR d.finished_at >= s.since
            OR EXISTS (SELECT 1 FROM pg_temp.em_link_heads h WHERE h.id = d.id AND h.redo))
       AND NOT EXISTS (SELECT 1 FROM pg_temp.em_wanted_links w
                        WHERE w.deployment_id = dc.deployment_id AND w.change_id = dc.change_id);

    -- the links that exist already need nothing (a separate statement: an
    -- INSERT whose SELECT reads the table it fills would rescan the rows
    -- it has just added)
    DELETE FROM pg_temp.em_wanted_links w
     USING engineering.deployment_changes dc
     WHERE dc.deployment_id = w.deployment_id AND dc.change_id = w.change_id;

    PERFORM set_config('enable_nestloop', nestloop, true);

    -- new ones, in the order of the changes so that the foreign-key checks
    -- read the changes table in order
    INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
    SELECT w.deployment_id, w.change_id, 'inferred'
      FROM pg_temp.em_wanted_links w
     ORDER BY w.change_id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;

    DROP TABLE pg_temp.em_wanted_links;
    DROP TABLE pg_temp.em_link_heads;
    DROP TABLE pg_temp.em_link_scope;
    RETURN added;
END
$$;
CREATE OR REPLACE VIEW engineering._first_shipments AS
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
-- committed after the service's first recorded deployment
JOIN engineering.service_first_deployments fd ON fd.service = f.service
WHERE f.committed_at > fd.first_seen;

GRANT SELECT ON engineering.service_first_deployments TO engineering_reader;
GRANT EXECUTE ON FUNCTION engineering._first_deployments_note(jsonb, jsonb) TO engineering_writer;
