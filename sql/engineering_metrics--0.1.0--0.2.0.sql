-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 13: GitHub's rate-limit rule (a reset counts only when its quota is spent)
DROP FUNCTION engineering._backoff_seconds(boolean, text, text, text, timestamptz, integer);
CREATE FUNCTION engineering._backoff_seconds(rate_limited boolean, retry_after text,
                                             x_ratelimit_reset text, x_ratelimit_remaining text,
                                             ratelimit_reset text, ratelimit_remaining text,
                                             at timestamptz, failures integer)
RETURNS bigint
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_backoff_seconds';
COMMENT ON FUNCTION engineering._backoff_seconds(boolean, text, text, text, text, text, timestamptz, integer) IS
    'the engine''s backoff in seconds: Retry-After, then a reset whose remaining count is 0 or absent (x-ratelimit-reset, then ratelimit-reset; below 10^9 a delta, else epoch), else exponential from 60 s';

-- issue 18: an item repeated on one page is written once (its last copy)
CREATE OR REPLACE FUNCTION engineering._upsert_pipeline_runs(runs engineering.pipeline_runs[],
                                                  cleared_keys text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
WITH up AS (
    INSERT INTO engineering.pipeline_runs AS p
        (source_id, external_id, service, pipeline, branch, commit_sha, event, status,
         queued_at, started_at, finished_at, attempt, url, attributes)
    SELECT r.source_id, r.external_id, r.service, r.pipeline, r.branch, r.commit_sha, r.event, r.status,
           r.queued_at, r.started_at, r.finished_at, coalesce(r.attempt, 1), r.url, coalesce(r.attributes, '{}')
    FROM (SELECT DISTINCT ON (u.source_id, u.external_id) u.*
          FROM unnest(runs) WITH ORDINALITY u
          ORDER BY u.source_id, u.external_id, u.ordinality DESC) r
    ORDER BY r.external_id
    ON CONFLICT (source_id, external_id) DO UPDATE SET
        service = EXCLUDED.service, pipeline = EXCLUDED.pipeline, branch = EXCLUDED.branch,
        commit_sha = EXCLUDED.commit_sha, event = EXCLUDED.event, status = EXCLUDED.status,
        queued_at = EXCLUDED.queued_at, started_at = EXCLUDED.started_at,
        finished_at = EXCLUDED.finished_at, url = EXCLUDED.url,
        attributes = p.attributes - cleared_keys || EXCLUDED.attributes
    WHERE (p.service, p.pipeline, p.branch, p.commit_sha, p.event, p.status, p.queued_at,
           p.started_at, p.finished_at, p.url, p.attributes)
          IS DISTINCT FROM
          (EXCLUDED.service, EXCLUDED.pipeline, EXCLUDED.branch, EXCLUDED.commit_sha, EXCLUDED.event,
           EXCLUDED.status, EXCLUDED.queued_at, EXCLUDED.started_at, EXCLUDED.finished_at,
           EXCLUDED.url, p.attributes - cleared_keys || EXCLUDED.attributes)
    RETURNING 1)
SELECT count(*) FROM up;
$$;

CREATE OR REPLACE FUNCTION engineering._upsert_deployments(deployments engineering.deployments[],
                                                cleared_keys text[] DEFAULT '{}')
RETURNS TABLE (id bigint, status text, compare_decided boolean)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
INSERT INTO engineering.deployments AS d
    (source_id, external_id, service, environment, commit_sha, started_at, finished_at,
     status, url, attributes)
SELECT r.source_id, r.external_id, r.service, coalesce(r.environment, 'production'), r.commit_sha,
       r.started_at, r.finished_at, r.status, r.url, coalesce(r.attributes, '{}')
FROM (SELECT DISTINCT ON (u.source_id, u.external_id) u.*
      FROM unnest(deployments) WITH ORDINALITY u
      ORDER BY u.source_id, u.external_id, u.ordinality DESC) r
ORDER BY r.external_id
ON CONFLICT (source_id, external_id) DO UPDATE SET
    service = EXCLUDED.service, environment = EXCLUDED.environment, commit_sha = EXCLUDED.commit_sha,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, status = EXCLUDED.status,
    url = EXCLUDED.url, attributes = d.attributes - cleared_keys || EXCLUDED.attributes
WHERE (d.service, d.environment, d.commit_sha, d.started_at, d.finished_at, d.status, d.url, d.attributes)
      IS DISTINCT FROM (EXCLUDED.service, EXCLUDED.environment, EXCLUDED.commit_sha, EXCLUDED.started_at,
                        EXCLUDED.finished_at, EXCLUDED.status, EXCLUDED.url,
                        d.attributes - cleared_keys || EXCLUDED.attributes)
RETURNING d.id, d.status, d.attributes ? 'compare_base';
$$;

CREATE OR REPLACE FUNCTION engineering._upsert_pull_requests(pulls engineering.pull_requests[])
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
WITH up AS (
    INSERT INTO engineering.pull_requests AS pr
        (source_id, external_id, service, number, title, author, opened_at, merged_at,
         merge_commit_sha, attributes)
    SELECT r.source_id, r.external_id, r.service, r.number, r.title, r.author, r.opened_at, r.merged_at,
           r.merge_commit_sha, coalesce(r.attributes, '{}')
    FROM (SELECT DISTINCT ON (u.source_id, u.external_id) u.*
          FROM unnest(pulls) WITH ORDINALITY u
          ORDER BY u.source_id, u.external_id, u.ordinality DESC) r
    ORDER BY r.external_id
    ON CONFLICT (source_id, external_id) DO UPDATE SET
        service = EXCLUDED.service, title = EXCLUDED.title, author = EXCLUDED.author,
        opened_at = EXCLUDED.opened_at, merged_at = EXCLUDED.merged_at,
        merge_commit_sha = EXCLUDED.merge_commit_sha, attributes = pr.attributes || EXCLUDED.attributes
    WHERE (pr.service, pr.title, pr.author, pr.opened_at, pr.merged_at, pr.merge_commit_sha, pr.attributes)
          IS DISTINCT FROM (EXCLUDED.service, EXCLUDED.title, EXCLUDED.author, EXCLUDED.opened_at,
                            EXCLUDED.merged_at, EXCLUDED.merge_commit_sha, pr.attributes || EXCLUDED.attributes)
    RETURNING 1)
SELECT count(*) FROM up;
$$;

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
-- issue 14: the Backstage catalog, golden paths and scorecards

-- from 46_backstage.sql
-- engineering_metrics: the Backstage connector (software catalog API,
-- GET /entities/by-query), which feeds the service catalog.
--
-- Streams (sync_tasks.stream):
--   entities  GET /entities/by-query?filter=<config filter>&limit=<page_size>, then
--             GET /entities/by-query?cursor=<pageInfo.nextCursor>&limit=<page_size>
--             (a cursor carries the filter and the order; Backstage refuses
--             neither, but ignores a filter sent with it)
--
-- Every sync reads the complete listing: the catalog has no change feed,
-- and only a complete listing tells which entities went away.  Each page's
-- entities are upserted with last_seen_at = the page's transaction time;
-- the last page (no nextCursor) marks removed every entity of the source
-- not seen since the listing started.  An interrupted listing resumes from
-- its queued cursor and marks nothing until it completes.
--
-- Watermark in sources.cursor: listed_at (when the last complete listing
-- started), entities (how many it held) and total_items (what Backstage
-- said it would hold).

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE engineering.catalog_entities (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    entity_ref      text NOT NULL
                    CHECK (entity_ref ~ '^[a-z0-9][^:/]*:[^:/]+/[^:/]+$'
                           OR engineering._reject_value('catalog_entities.entity_ref', entity_ref, 'expected kind:namespace/name in lower case')),
    kind            text NOT NULL
                    CHECK ((btrim(kind) <> '' AND kind = lower(kind))
                           OR engineering._reject_value('catalog_entities.kind', kind, 'kind must be a non-empty lower-case word (component, group, ...)')),
    type            text,
    namespace       text NOT NULL DEFAULT 'default',
    name            text NOT NULL
                    CHECK (btrim(name) <> '' OR engineering._reject_value('catalog_entities.name', name, 'name must not be empty')),
    title           text,
    owner           text,
    lifecycle       text,
    system          text,
    service         text
                    CHECK (service IS NULL OR btrim(service) <> ''
                           OR engineering._reject_value('catalog_entities.service', service, 'service must not be empty')),
    template        text,
    tags            text[] NOT NULL DEFAULT '{}',
    annotations     jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(annotations) = 'object'
                           OR engineering._reject_value('catalog_entities.annotations', annotations::text, 'annotations must be a JSON object')),
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    uid             text,
    description     text,
    spec            jsonb NOT NULL DEFAULT '{}',
    relations       jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT catalog_entities_source_entity_ref_key UNIQUE (source_id, entity_ref),
    CONSTRAINT catalog_entities_ref_matches_parts
        CHECK (entity_ref = lower(kind || ':' || namespace || '/' || name)
               OR engineering._reject_value('catalog_entities.entity_ref', entity_ref,
                                            'entity_ref must be lower(kind:namespace/name)')),
    CONSTRAINT catalog_entities_last_seen_after_first
        CHECK (last_seen_at >= first_seen_at
               OR engineering._reject_order('catalog_entities.last_seen_at', last_seen_at, 'first_seen_at', first_seen_at)),
    CONSTRAINT catalog_entities_removed_after_first
        CHECK (removed_at >= first_seen_at OR removed_at IS NULL
               OR engineering._reject_order('catalog_entities.removed_at', removed_at, 'first_seen_at', first_seen_at))
);
CREATE UNIQUE INDEX catalog_entities_manual_entity_ref_key
    ON engineering.catalog_entities (entity_ref) WHERE source_id IS NULL;
CREATE INDEX catalog_entities_service_idx ON engineering.catalog_entities (service) WHERE kind = 'component';
CREATE INDEX catalog_entities_kind_idx ON engineering.catalog_entities (kind, source_id);

COMMENT ON TABLE engineering.catalog_entities IS
    'the service catalog: one row per Backstage entity (components, APIs, templates, groups, users, ...) of a source, kept after it leaves the catalog (removed_at) so that adoption history holds';
COMMENT ON COLUMN engineering.catalog_entities.id IS 'surrogate key';
COMMENT ON COLUMN engineering.catalog_entities.source_id IS 'the backstage source that synced this row; NULL for rows inserted by hand';
COMMENT ON COLUMN engineering.catalog_entities.entity_ref IS 'kind:namespace/name in lower case, as Backstage compares entity references; unique per source';
COMMENT ON COLUMN engineering.catalog_entities.kind IS 'entity kind in lower case (component, api, resource, system, domain, template, group, user, ...)';
COMMENT ON COLUMN engineering.catalog_entities.type IS 'spec.type (service, website, library for components; team for groups; ...)';
COMMENT ON COLUMN engineering.catalog_entities.namespace IS 'metadata.namespace (default when absent)';
COMMENT ON COLUMN engineering.catalog_entities.name IS 'metadata.name as written in the catalog';
COMMENT ON COLUMN engineering.catalog_entities.title IS 'metadata.title (users: spec.profile.displayName when there is no title)';
COMMENT ON COLUMN engineering.catalog_entities.owner IS 'spec.owner as a full entity ref (group:default/payments), lower case';
COMMENT ON COLUMN engineering.catalog_entities.lifecycle IS 'spec.lifecycle (experimental, production, deprecated, ...)';
COMMENT ON COLUMN engineering.catalog_entities.system IS 'spec.system as a full entity ref (system:default/checkout), lower case';
COMMENT ON COLUMN engineering.catalog_entities.service IS
    'components only: the service name the event tables use (the configured service_annotation, else service_map, else the GitHub/GitLab source of its project-slug annotation, else the entity name)';
COMMENT ON COLUMN engineering.catalog_entities.template IS
    'the template the entity was created from (annotation backstage.io/source-template, as a full lower-case ref); NULL when not created from a template';
COMMENT ON COLUMN engineering.catalog_entities.tags IS 'metadata.tags';
COMMENT ON COLUMN engineering.catalog_entities.annotations IS 'metadata.annotations as a JSON object of strings';
COMMENT ON COLUMN engineering.catalog_entities.first_seen_at IS 'when a sync first saw the entity';
COMMENT ON COLUMN engineering.catalog_entities.last_seen_at IS 'when a sync last saw the entity';
COMMENT ON COLUMN engineering.catalog_entities.removed_at IS 'when a complete listing first missed the entity; NULL while it is in the catalog (cleared if it comes back)';
COMMENT ON COLUMN engineering.catalog_entities.uid IS 'metadata.uid, Backstage''s own id of the entity';
COMMENT ON COLUMN engineering.catalog_entities.description IS 'metadata.description';
COMMENT ON COLUMN engineering.catalog_entities.spec IS 'the entity''s spec as Backstage returned it (profile, memberOf, members, parent, ...)';
COMMENT ON COLUMN engineering.catalog_entities.relations IS 'the entity''s relations as [{"type": ..., "targetRef": ...}] with lower-case refs';

SELECT pg_catalog.pg_extension_config_dump('engineering.catalog_entities', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.catalog_entities_id_seq', '');

------------------------------------------------------------------------------
-- Entity references
------------------------------------------------------------------------------

CREATE FUNCTION engineering._catalog_ref(ref text, default_kind text, default_namespace text DEFAULT 'default')
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN ref IS NULL OR btrim(ref) = '' THEN NULL
    ELSE lower(
        coalesce(substring(btrim(ref) FROM '^([^:/]+):'), default_kind) || ':'
        || coalesce(substring(regexp_replace(btrim(ref), '^[^:/]+:', '') FROM '^([^/]+)/'),
                    nullif(default_namespace, ''), 'default') || '/'
        || regexp_replace(btrim(ref), '^([^:/]+:)?([^/]+/)?', '')) END;
COMMENT ON FUNCTION engineering._catalog_ref(text, text, text) IS
    'a Backstage entity reference "[kind:][namespace/]name" completed with the defaults and lower-cased, as Backstage compares them (NULL for NULL or '''')';

------------------------------------------------------------------------------
-- Teams and people, read from the live Group and User entities
------------------------------------------------------------------------------

CREATE VIEW engineering.catalog_groups AS
SELECT e.source_id, e.entity_ref AS group_ref, e.name, e.namespace,
       coalesce(e.title, nullif(e.spec->'profile'->>'displayName', '')) AS title,
       e.type,
       engineering._catalog_ref(e.spec->>'parent', 'group', e.namespace) AS parent_ref,
       nullif(e.spec->'profile'->>'email', '') AS email
FROM engineering.catalog_entities e
WHERE e.kind = 'group' AND e.removed_at IS NULL;
COMMENT ON VIEW engineering.catalog_groups IS 'the groups (teams, departments) in the catalog now';
COMMENT ON COLUMN engineering.catalog_groups.source_id IS 'the backstage source';
COMMENT ON COLUMN engineering.catalog_groups.group_ref IS 'group:namespace/name, lower case (what owner and memberships refer to)';
COMMENT ON COLUMN engineering.catalog_groups.name IS 'metadata.name';
COMMENT ON COLUMN engineering.catalog_groups.namespace IS 'metadata.namespace';
COMMENT ON COLUMN engineering.catalog_groups.title IS 'metadata.title, else spec.profile.displayName';
COMMENT ON COLUMN engineering.catalog_groups.type IS 'spec.type (team, business-unit, ...)';
COMMENT ON COLUMN engineering.catalog_groups.parent_ref IS 'spec.parent as a full ref: the group this one belongs to';
COMMENT ON COLUMN engineering.catalog_groups.email IS 'spec.profile.email';

CREATE VIEW engineering.catalog_users AS
SELECT e.source_id, e.entity_ref AS user_ref, e.name, e.namespace,
       coalesce(nullif(e.spec->'profile'->>'displayName', ''), e.title) AS display_name,
       nullif(e.spec->'profile'->>'email', '') AS email
FROM engineering.catalog_entities e
WHERE e.kind = 'user' AND e.removed_at IS NULL;
COMMENT ON VIEW engineering.catalog_users IS 'the users in the catalog now';
COMMENT ON COLUMN engineering.catalog_users.source_id IS 'the backstage source';
COMMENT ON COLUMN engineering.catalog_users.user_ref IS 'user:namespace/name, lower case';
COMMENT ON COLUMN engineering.catalog_users.name IS 'metadata.name (often the login)';
COMMENT ON COLUMN engineering.catalog_users.namespace IS 'metadata.namespace';
COMMENT ON COLUMN engineering.catalog_users.display_name IS 'spec.profile.displayName, else metadata.title';
COMMENT ON COLUMN engineering.catalog_users.email IS 'spec.profile.email';

-- Backstage states membership three ways (User spec.memberOf, Group
-- spec.members, and the memberOf/hasMember relations it derives from
-- both); any one of them makes a member.
CREATE VIEW engineering.catalog_memberships AS
SELECT DISTINCT m.source_id, m.user_ref, m.group_ref
FROM (
    SELECT u.source_id, u.entity_ref AS user_ref, engineering._catalog_ref(g.ref, 'group', u.namespace) AS group_ref
    FROM engineering.catalog_entities u
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(u.spec->'memberOf') = 'array' THEN u.spec->'memberOf' ELSE '[]' END) g(ref)
    WHERE u.kind = 'user' AND u.removed_at IS NULL
    UNION ALL
    SELECT g.source_id, engineering._catalog_ref(m.ref, 'user', g.namespace), g.entity_ref
    FROM engineering.catalog_entities g
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(g.spec->'members') = 'array' THEN g.spec->'members' ELSE '[]' END) m(ref)
    WHERE g.kind = 'group' AND g.removed_at IS NULL
    UNION ALL
    SELECT e.source_id,
           CASE WHEN r->>'type' = 'memberOf' THEN e.entity_ref ELSE r->>'targetRef' END,
           CASE WHEN r->>'type' = 'memberOf' THEN r->>'targetRef' ELSE e.entity_ref END
    FROM engineering.catalog_entities e
    CROSS JOIN LATERAL jsonb_array_elements(e.relations) r
    WHERE e.kind IN ('user', 'group') AND e.removed_at IS NULL
      AND ((e.kind = 'user' AND r->>'type' = 'memberOf') OR (e.kind = 'group' AND r->>'type' = 'hasMember'))
) m
WHERE m.user_ref LIKE 'user:%' AND m.group_ref LIKE 'group:%';
COMMENT ON VIEW engineering.catalog_memberships IS
    'who belongs to which group now: from User spec.memberOf, Group spec.members and the memberOf/hasMember relations of live entities';
COMMENT ON COLUMN engineering.catalog_memberships.source_id IS 'the backstage source';
COMMENT ON COLUMN engineering.catalog_memberships.user_ref IS 'user:namespace/name, lower case';
COMMENT ON COLUMN engineering.catalog_memberships.group_ref IS 'group:namespace/name, lower case (direct membership; parents are in catalog_groups.parent_ref)';

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._backstage_filters(config jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE jsonb_typeof(config->'filter')
    WHEN 'string' THEN ARRAY[config->>'filter']
    WHEN 'array' THEN ARRAY(SELECT f FROM jsonb_array_elements_text(config->'filter') WITH ORDINALITY AS x(f, o) ORDER BY o)
    ELSE ARRAY['kind=component,kind=api,kind=resource,kind=system,kind=domain,kind=template,kind=group,kind=user'] END;
COMMENT ON FUNCTION engineering._backstage_filters(jsonb) IS
    'internal: the filter parameters of a backstage source (config filter, a string or an array of strings that Backstage ORs; default every kind the analytics read)';

CREATE FUNCTION engineering._backstage_page_size(config jsonb)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((config->>'page_size')::integer, 200);
COMMENT ON FUNCTION engineering._backstage_page_size(jsonb) IS
    'internal: entities asked for per page (config page_size, default 200)';

CREATE FUNCTION engineering._backstage_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
    FROM jsonb_object_keys(config) k
    WHERE k NOT IN ('filter', 'page_size', 'service_annotation', 'service_map', 'token_file', 'token_env');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown config key(s) for a backstage source: %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A backstage source understands filter, page_size, service_annotation, service_map, token_file and token_env.';
    END IF;
    IF config ? 'filter' AND NOT (
        (jsonb_typeof(config->'filter') = 'string' AND btrim(config->>'filter') <> '' AND length(config->>'filter') <= 2000)
        OR (jsonb_typeof(config->'filter') = 'array' AND jsonb_array_length(config->'filter') BETWEEN 1 AND 20
            AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(config->'filter') f
                            WHERE jsonb_typeof(f) <> 'string' OR btrim(f #>> '{}') = '' OR length(f #>> '{}') > 2000))) THEN
        RAISE EXCEPTION 'config filter must be a Backstage entity filter, or an array of them (ORed)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example "kind=component,kind=api,kind=template,kind=group,kind=user" (the same key repeated matches any of its values).';
    END IF;
    IF config ? 'page_size' AND (jsonb_typeof(config->'page_size') <> 'number'
        OR (config->>'page_size')::numeric <> trunc((config->>'page_size')::numeric)
        OR (config->>'page_size')::numeric NOT BETWEEN 1 AND 1000) THEN
        RAISE EXCEPTION 'config page_size must be a whole number between 1 and 1000, got %', config->'page_size'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'service_annotation' AND (jsonb_typeof(config->'service_annotation') <> 'string'
                                          OR btrim(config->>'service_annotation') = '') THEN
        RAISE EXCEPTION 'config service_annotation must name an annotation, such as "engineering-metrics/service"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_validate(jsonb) IS
    'checks a backstage source''s config: optional filter (string or array of strings), page_size (1..1000), service_annotation, service_map; no other keys';

-- The repository annotations Backstage's GitHub and GitLab plugins read
-- tie a component to the service name those sources give its events, so
-- that the catalog and the event tables agree without a service_map.
CREATE FUNCTION engineering._backstage_service(config jsonb, entity jsonb)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(
        CASE WHEN config ? 'service_annotation'
             THEN nullif(btrim(entity->'metadata'->'annotations'->>(config->>'service_annotation')), '') END,
        config->'service_map'->>(entity->'metadata'->>'name'),
        (SELECT engineering._github_service(s.config) FROM engineering.sources s
          WHERE s.kind = 'github'
            AND lower(s.config->>'repository') = lower(btrim(entity->'metadata'->'annotations'->>'github.com/project-slug'))
          ORDER BY s.id LIMIT 1),
        (SELECT engineering._gitlab_service(s.config) FROM engineering.sources s
          WHERE s.kind = 'gitlab'
            AND lower(s.config->>'project') = lower(btrim(entity->'metadata'->'annotations'->>'gitlab.com/project-slug'))
          ORDER BY s.id LIMIT 1),
        entity->'metadata'->>'name');
END;
COMMENT ON FUNCTION engineering._backstage_service(jsonb, jsonb) IS
    'service name of a component: its config service_annotation value, else service_map[name], else the service of the github (gitlab) source whose repository (project) is its github.com/project-slug (gitlab.com/project-slug) annotation, else its name';

CREATE FUNCTION engineering._backstage_url(config jsonb, cursor text DEFAULT NULL)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '/entities/by-query?'
    || CASE WHEN cursor IS NOT NULL THEN 'cursor=' || engineering._urlencode(cursor)
            ELSE (SELECT string_agg('filter=' || engineering._urlencode(f), '&' ORDER BY o)
                  FROM unnest(engineering._backstage_filters(config)) WITH ORDINALITY AS x(f, o)) END
    || '&limit=' || engineering._backstage_page_size(config);
COMMENT ON FUNCTION engineering._backstage_url(jsonb, text) IS
    'internal: path of the first page of GET /entities/by-query (the config filters), or of the page a cursor points at (the cursor carries the filters)';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/backstage.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._backstage_map_entities(src_id integer, config jsonb, items jsonb, seen_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of Backstage entities, got %', coalesce(jsonb_typeof(items), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- An entity without a kind or a name cannot be referred to: skipped
    -- (Backstage itself never returns one).
    WITH raw AS (
        SELECT DISTINCT ON (ref) e, ref, ns
        FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, o),
             LATERAL (SELECT coalesce(nullif(btrim(e->'metadata'->>'namespace'), ''), 'default') AS ns) n,
             LATERAL (SELECT lower((e->>'kind') || ':' || n.ns || '/' || (e->'metadata'->>'name')) AS ref) r
        WHERE jsonb_typeof(e) = 'object' AND jsonb_typeof(e->'kind') = 'string' AND btrim(e->>'kind') <> ''
          AND jsonb_typeof(e->'metadata') = 'object' AND jsonb_typeof(e->'metadata'->'name') = 'string'
          AND btrim(e->'metadata'->>'name') <> '' AND e->>'kind' !~ '[:/]' AND e->'metadata'->>'name' !~ '[:/]'
          AND n.ns !~ '[:/]'
        ORDER BY ref, o DESC),
    m AS (
        SELECT r.ref AS entity_ref, lower(e->>'kind') AS kind,
               CASE WHEN jsonb_typeof(e->'spec'->'type') = 'string' THEN nullif(btrim(e->'spec'->>'type'), '') END AS type,
               r.ns AS namespace, e->'metadata'->>'name' AS name,
               coalesce(CASE WHEN jsonb_typeof(e->'metadata'->'title') = 'string' THEN nullif(btrim(e->'metadata'->>'title'), '') END,
                        CASE WHEN lower(e->>'kind') = 'user' AND jsonb_typeof(e->'spec'->'profile'->'displayName') = 'string'
                             THEN nullif(btrim(e->'spec'->'profile'->>'displayName'), '') END) AS title,
               CASE WHEN jsonb_typeof(e->'spec'->'owner') = 'string'
                    THEN engineering._catalog_ref(e->'spec'->>'owner', 'group', r.ns) END AS owner,
               CASE WHEN jsonb_typeof(e->'spec'->'lifecycle') = 'string' THEN nullif(btrim(e->'spec'->>'lifecycle'), '') END AS lifecycle,
               CASE WHEN jsonb_typeof(e->'spec'->'system') = 'string'
                    THEN engineering._catalog_ref(e->'spec'->>'system', 'system', r.ns) END AS system,
               CASE WHEN lower(e->>'kind') = 'component' THEN engineering._backstage_service(config, e) END AS service,
               CASE WHEN jsonb_typeof(e->'metadata'->'annotations'->'backstage.io/source-template') = 'string'
                    THEN engineering._catalog_ref(e->'metadata'->'annotations'->>'backstage.io/source-template', 'template', r.ns) END AS template,
               ARRAY(SELECT t #>> '{}' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e->'metadata'->'tags') = 'array'
                                                             THEN e->'metadata'->'tags' ELSE '[]' END) WITH ORDINALITY AS g(t, o)
                     WHERE jsonb_typeof(t) = 'string' ORDER BY o) AS tags_json,
               coalesce((SELECT jsonb_object_agg(a.key, a.value) FROM jsonb_each(
                             CASE WHEN jsonb_typeof(e->'metadata'->'annotations') = 'object'
                                  THEN e->'metadata'->'annotations' ELSE '{}' END) a
                         WHERE jsonb_typeof(a.value) = 'string'), '{}') AS annotations,
               CASE WHEN jsonb_typeof(e->'metadata'->'uid') = 'string' THEN e->'metadata'->>'uid' END AS uid,
               CASE WHEN jsonb_typeof(e->'metadata'->'description') = 'string'
                    THEN nullif(btrim(e->'metadata'->>'description'), '') END AS description,
               CASE WHEN jsonb_typeof(e->'spec') = 'object' THEN e->'spec' ELSE '{}' END AS spec,
               coalesce((SELECT jsonb_agg(jsonb_build_object('type', rel->>'type', 'targetRef', t.ref) ORDER BY o)
                         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e->'relations') = 'array'
                                                        THEN e->'relations' ELSE '[]' END) WITH ORDINALITY AS y(rel, o),
                              LATERAL (SELECT CASE
                                  WHEN jsonb_typeof(rel->'targetRef') = 'string' THEN engineering._catalog_ref(rel->>'targetRef', 'component', r.ns)
                                  WHEN jsonb_typeof(rel->'target') = 'object'
                                  THEN lower((rel->'target'->>'kind') || ':' || coalesce(rel->'target'->>'namespace', 'default')
                                             || '/' || (rel->'target'->>'name')) END AS ref) t
                         WHERE jsonb_typeof(rel->'type') = 'string' AND t.ref IS NOT NULL), '[]') AS relations
        FROM raw r),
    old AS (
        SELECT m.entity_ref,
               c.id IS NULL OR c.removed_at IS NOT NULL
               OR (c.kind, c.type, c.namespace, c.name, c.title, c.owner, c.lifecycle, c.system, c.service, c.template,
                   c.tags, c.annotations, c.uid, c.description, c.spec, c.relations)
                  IS DISTINCT FROM
                  (m.kind, m.type, m.namespace, m.name, m.title, m.owner, m.lifecycle, m.system, m.service, m.template,
                   m.tags_json, m.annotations, m.uid, m.description, m.spec, m.relations) AS changed
        FROM m LEFT JOIN engineering.catalog_entities c ON c.source_id = src_id AND c.entity_ref = m.entity_ref),
    up AS (
        INSERT INTO engineering.catalog_entities AS c
            (source_id, entity_ref, kind, type, namespace, name, title, owner, lifecycle, system, service, template,
             tags, annotations, first_seen_at, last_seen_at, removed_at, uid, description, spec, relations)
        SELECT src_id, m.entity_ref, m.kind, m.type, m.namespace, m.name, m.title, m.owner, m.lifecycle, m.system,
               m.service, m.template, m.tags_json, m.annotations, seen_at, seen_at, NULL, m.uid, m.description,
               m.spec, m.relations
        FROM m
        ON CONFLICT (source_id, entity_ref) DO UPDATE SET
            kind = EXCLUDED.kind, type = EXCLUDED.type, namespace = EXCLUDED.namespace, name = EXCLUDED.name,
            title = EXCLUDED.title, owner = EXCLUDED.owner, lifecycle = EXCLUDED.lifecycle, system = EXCLUDED.system,
            service = EXCLUDED.service, template = EXCLUDED.template, tags = EXCLUDED.tags,
            annotations = EXCLUDED.annotations,
            first_seen_at = least(c.first_seen_at, EXCLUDED.first_seen_at),
            last_seen_at = greatest(c.last_seen_at, EXCLUDED.last_seen_at),
            removed_at = NULL, uid = EXCLUDED.uid, description = EXCLUDED.description, spec = EXCLUDED.spec,
            relations = EXCLUDED.relations
        RETURNING c.entity_ref)
    SELECT count(*) INTO n FROM up JOIN old USING (entity_ref) WHERE old.changed;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_map_entities(integer, jsonb, jsonb, timestamptz) IS
    'upserts Backstage entities seen at seen_at (key: source and lower-case kind:namespace/name; a removed entity that is back is live again); returns the rows whose content changed';

CREATE FUNCTION engineering._backstage_mark_removed(src_id integer, listing_started timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE engineering.catalog_entities c SET removed_at = greatest(now(), c.first_seen_at)
    WHERE c.source_id = src_id AND c.removed_at IS NULL AND c.last_seen_at < listing_started;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_mark_removed(integer, timestamptz) IS
    'internal: after a complete listing, marks removed (now) the entities of the source it did not see; returns how many';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._backstage_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    PERFORM engineering._enqueue(src.id, 'entities', engineering._backstage_url(src.config),
        jsonb_build_object('listing_started', now(), 'seen', 0));
END;
$$;
COMMENT ON FUNCTION engineering._backstage_plan(engineering.sources) IS
    'connector interface: queues the first page of a complete listing of the entities the config filter selects';

CREATE FUNCTION engineering._backstage_ingest(src engineering.sources, task engineering.sync_tasks,
                                              status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    listing_started timestamptz := (task.payload->>'listing_started')::timestamptz;
    items jsonb := body->'items';
    next_cursor text;
    seen bigint;
    n bigint;
BEGIN
    IF task.stream IS DISTINCT FROM 'entities' THEN
        RAISE EXCEPTION 'unknown Backstage stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(body) IS DISTINCT FROM 'object' OR jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected Backstage response: expected {"items": [...], "pageInfo": {...}}'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The base_url must be the catalog API root, e.g. https://backstage.example.com/api/catalog.';
    END IF;
    n := engineering._backstage_map_entities(src.id, src.config, items, now());
    seen := coalesce((task.payload->>'seen')::bigint, 0) + jsonb_array_length(items);

    next_cursor := CASE WHEN jsonb_typeof(body->'pageInfo'->'nextCursor') = 'string'
                        THEN nullif(btrim(body->'pageInfo'->>'nextCursor'), '') END;
    IF next_cursor IS NOT NULL AND jsonb_array_length(items) > 0 THEN
        PERFORM engineering._enqueue(src.id, 'entities', engineering._backstage_url(src.config, next_cursor),
            task.payload || jsonb_strip_nulls(jsonb_build_object(
                'seen', seen, 'total_items', coalesce(task.payload->'total_items', body->'totalItems'))));
    ELSE
        -- the listing is complete: what it did not hold has left the catalog
        n := n + engineering._backstage_mark_removed(src.id, listing_started);
        UPDATE engineering.sources SET cursor = cursor || jsonb_strip_nulls(jsonb_build_object(
            'listed_at', engineering._iso8601(listing_started), 'entities', seen,
            'total_items', coalesce(task.payload->'total_items', body->'totalItems')))
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps a page of entities, follows pageInfo.nextCursor, and after the last page marks removed what the listing did not hold; returns rows changed';

-- the catalog's grants (70_roles.sql)
------------------------------------------------------------------------------
-- The service catalog (the Backstage connector's tables): read like the
-- events, and written like them by writers (hand-made catalogs, start
-- dates moved back).
------------------------------------------------------------------------------

GRANT SELECT ON
    engineering.catalog_entities, engineering.catalog_groups, engineering.catalog_users,
    engineering.catalog_memberships
TO engineering_reader;
GRANT INSERT, UPDATE, DELETE ON engineering.catalog_entities TO engineering_writer;

-- dora() becomes a wrapper of _dora_report(), which dora_by_golden_path() shares (53_dora_report.sql)
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
        WHEN 'committed_at' THEN 'c.committed_at'
        WHEN 'authored_at' THEN 'coalesce(c.authored_at, c.committed_at)'
        WHEN 'pr_first_commit' THEN
            'coalesce((SELECT min(coalesce(pr.first_commit_at, pr.opened_at))
                         FROM engineering.pull_requests pr
                        WHERE pr.service = c.service AND pr.merge_commit_sha = c.commit_sha),
                      c.committed_at)'
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
            -- each change counts at the first successful deployment of the
            -- environment that shipped it (see change_lead_times), and only
            -- with a lead time that is not negative (a commit clock ahead of
            -- the deployment's).  Links inferred by link_changes() are
            -- unique per change and environment, so they only need checking
            -- against the connector's and manual links; those are checked
            -- against all.  (Two anti-joins rather than one condition with
            -- OR, which would need a correlated subplan and no parallelism.)
            SELECT d.service, x.started, d.finished_at
              FROM engineering.deployments d
              JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
              JOIN engineering.changes c ON c.id = dc.change_id
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
               AND x.started <= d.finished_at
               AND dc.linked_by = 'inferred'
               AND NOT EXISTS (SELECT 1
                                 FROM engineering.deployment_changes e
                                 JOIN engineering.deployments ed ON ed.id = e.deployment_id
                                WHERE e.change_id = dc.change_id AND e.linked_by <> 'inferred'
                                  AND ed.environment = $4 AND ed.status = 'success'
                                  AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
            UNION ALL
            SELECT d.service, x.started, d.finished_at
              FROM engineering.deployments d
              JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
              JOIN engineering.changes c ON c.id = dc.change_id
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
               AND x.started <= d.finished_at
               AND dc.linked_by <> 'inferred'
               AND NOT EXISTS (SELECT 1
                                 FROM engineering.deployment_changes e
                                 JOIN engineering.deployments ed ON ed.id = e.deployment_id
                                WHERE e.change_id = dc.change_id
                                  AND ed.environment = $4 AND ed.status = 'success'
                                  AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
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

CREATE OR REPLACE FUNCTION engineering.dora(
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

-- from 80_platform_catalog.sql
-- engineering_metrics: platform engineering, part 1: the services of the
-- catalog.
--
-- The catalog (catalog_entities, filled by backstage sources or by hand)
-- says which services exist, who owns them and how they were made; the
-- event tables say how they deliver and run.  Both meet on the service
-- name (catalog_entities.service).  Every figure is defined in README.md
-- ("Platform engineering").

------------------------------------------------------------------------------
-- The choices, in one row
------------------------------------------------------------------------------

CREATE TABLE engineering.platform_settings (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CHECK (singleton OR engineering._reject_value('platform_settings.singleton', singleton::text, 'platform_settings holds exactly one row')),
    eligible_types  text[] NOT NULL DEFAULT '{service}'
                    CHECK (cardinality(eligible_types) > 0
                           OR engineering._reject_value('platform_settings.eligible_types', eligible_types::text, 'name at least one component type')),
    pipeline_window interval NOT NULL DEFAULT '30 days'
                    CHECK ((pipeline_window > interval '0' AND pipeline_window <= interval '366 days')
                           OR engineering._reject_value('platform_settings.pipeline_window', pipeline_window::text, 'expected a window between 0 and 366 days'))
);
INSERT INTO engineering.platform_settings DEFAULT VALUES;

COMMENT ON TABLE engineering.platform_settings IS
    'the one row of platform-engineering defaults: which components golden-path adoption counts, and how far back pipeline paths look; edit it with UPDATE';
COMMENT ON COLUMN engineering.platform_settings.singleton IS 'always true: the table has exactly one row';
COMMENT ON COLUMN engineering.platform_settings.eligible_types IS
    'the component spec.type values that count as services for adoption and scorecards (default {service})';
COMMENT ON COLUMN engineering.platform_settings.pipeline_window IS
    'a pipeline golden path looks at the production deployments of this window before the time asked for (default 30 days)';

-- Keep edits across pg_dump/pg_restore, as dora_settings does.
CREATE FUNCTION engineering._platform_settings_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.platform_settings
       SET eligible_types = NEW.eligible_types,
           pipeline_window = NEW.pipeline_window
     WHERE singleton = NEW.singleton;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._platform_settings_restore() IS
    'internal trigger: an inserted platform_settings row (as pg_restore replays it) replaces the existing one';
CREATE TRIGGER platform_settings_restore BEFORE INSERT ON engineering.platform_settings
    FOR EACH ROW EXECUTE FUNCTION engineering._platform_settings_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.platform_settings', '');

------------------------------------------------------------------------------
-- catalog_services(at): the services of the catalog at a time
------------------------------------------------------------------------------

-- Components alive at a time: first seen by then and not removed by then.
-- Lifecycle, type and owner are the entity's current ones (the catalog
-- keeps no history of them).
CREATE FUNCTION engineering.catalog_services(at timestamptz DEFAULT now())
RETURNS TABLE (service text, entity_ref text, source_id integer, type text, lifecycle text,
               owner text, team text, system text, template text, tags text[], first_seen_at timestamptz,
               eligible boolean, components bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT DISTINCT ON (c.service)
           c.service, c.entity_ref, c.source_id, c.type, c.lifecycle, c.owner,
           CASE WHEN c.owner LIKE 'group:%' THEN split_part(c.owner, '/', 2)
                WHEN c.owner LIKE 'user:%' THEN
                    (SELECT min(split_part(m.group_ref, '/', 2)) FROM engineering.catalog_memberships m
                      WHERE m.user_ref = c.owner AND m.source_id IS NOT DISTINCT FROM c.source_id) END,
           c.system, c.template, c.tags, c.first_seen_at, c.eligible,
           count(*) OVER (PARTITION BY c.service)
    FROM (SELECT e.*,
                 coalesce(e.type = ANY (s.eligible_types), false)
                 AND lower(coalesce(e.lifecycle, '')) <> 'deprecated' AS eligible
          FROM engineering.catalog_entities e
          CROSS JOIN engineering.platform_settings s
          WHERE e.kind = 'component' AND e.service IS NOT NULL
            AND e.first_seen_at <= catalog_services.at
            AND (e.removed_at IS NULL OR e.removed_at > catalog_services.at)) c
    ORDER BY c.service, c.eligible DESC, c.source_id, c.entity_ref;
END;
COMMENT ON FUNCTION engineering.catalog_services(timestamptz) IS
    'the services of the catalog at a time (components first seen by then and not removed by then), one row per service (the eligible component first when several map to it): owner, team (the owning group''s name), lifecycle, template, and whether it is eligible for adoption (type in platform_settings.eligible_types, lifecycle not deprecated)';

-- from 81_golden_paths.sql
-- engineering_metrics: platform engineering, part 2: golden paths, their
-- adoption, and whether they pay off.
--
-- A golden path is the supported way to build and ship a service: a
-- Backstage template to start from, a shared deploy pipeline, or whatever
-- an annotation marks.  Adoption counts the eligible services (components
-- of an eligible type, alive, not deprecated: catalog_services()) on each
-- path; dora_by_golden_path() puts the DORA keys of the services on each
-- path next to those of the services off every path.

------------------------------------------------------------------------------
-- The paths
------------------------------------------------------------------------------

CREATE TABLE engineering.golden_paths (
    name            text PRIMARY KEY
                    CHECK (btrim(name) <> '' OR engineering._reject_value('golden_paths.name', name, 'a golden path needs a non-empty name')),
    kind            text NOT NULL
                    CHECK (kind IN ('template', 'pipeline', 'annotation')
                           OR engineering._reject_value('golden_paths.kind', kind, 'expected template, pipeline or annotation')),
    pattern         text NOT NULL
                    CHECK (btrim(pattern) <> '' OR engineering._reject_value('golden_paths.pattern', pattern, 'a golden path needs a pattern')),
    description     text
);
COMMENT ON TABLE engineering.golden_paths IS
    'the golden paths of the platform, written by admins: a template, a pipeline pattern or an annotation that puts a service on the path';
COMMENT ON COLUMN engineering.golden_paths.name IS 'the path''s name, as reports show it';
COMMENT ON COLUMN engineering.golden_paths.kind IS
    'template (components created from the template), pipeline (services whose production deployments ran through a matching pipeline) or annotation (components carrying an annotation value)';
COMMENT ON COLUMN engineering.golden_paths.pattern IS
    'template: an entity ref (template:default/go-service, or just go-service); pipeline: a regular expression on pipeline_runs.pipeline; annotation: key=value';
COMMENT ON COLUMN engineering.golden_paths.description IS 'what the path gives a team';

CREATE FUNCTION engineering._golden_paths_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    CASE NEW.kind
    WHEN 'pipeline' THEN
        BEGIN
            PERFORM '' ~ NEW.pattern;
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'golden path "%": pattern % is not a valid regular expression', NEW.name, quote_literal(NEW.pattern)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A POSIX regular expression matched against pipeline_runs.pipeline, for example ''^Deploy$''.';
        END;
    WHEN 'annotation' THEN
        IF NEW.pattern !~ '^[^=\s]+=' THEN
            RAISE EXCEPTION 'golden path "%": an annotation pattern is key=value, got %', NEW.name, quote_literal(NEW.pattern)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example ''acme.com/golden-path=web-service''.';
        END IF;
    WHEN 'template' THEN
        IF btrim(NEW.pattern) !~ '^([^:/\s]+:)?([^:/\s]+/)?[^:/\s]+$' THEN
            RAISE EXCEPTION 'golden path "%": a template pattern is an entity ref, got %', NEW.name, quote_literal(NEW.pattern)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example ''template:default/go-service'' or ''go-service''.';
        END IF;
    ELSE
        NULL;   -- refused by the kind's CHECK
    END CASE;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION engineering._golden_paths_check() IS
    'trigger: a golden path''s pattern must fit its kind (a valid regular expression, key=value, or an entity ref)';
CREATE TRIGGER golden_paths_check BEFORE INSERT OR UPDATE ON engineering.golden_paths
    FOR EACH ROW EXECUTE FUNCTION engineering._golden_paths_check();

SELECT pg_catalog.pg_extension_config_dump('engineering.golden_paths', '');

------------------------------------------------------------------------------
-- Who is on which path
------------------------------------------------------------------------------

CREATE FUNCTION engineering._eligible_components(at timestamptz)
RETURNS TABLE (service text, entity_ref text, template text, annotations jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT e.service, e.entity_ref, e.template, e.annotations
    FROM engineering.catalog_entities e
    CROSS JOIN engineering.platform_settings s
    WHERE e.kind = 'component' AND e.service IS NOT NULL
      AND e.type = ANY (s.eligible_types)
      AND lower(coalesce(e.lifecycle, '')) <> 'deprecated'
      AND e.first_seen_at <= _eligible_components.at
      AND (e.removed_at IS NULL OR e.removed_at > _eligible_components.at);
END;
COMMENT ON FUNCTION engineering._eligible_components(timestamptz) IS
    'internal: the components that count for adoption at a time: type in platform_settings.eligible_types, first seen by then, not removed by then, lifecycle not deprecated';

-- A pipeline path is about how a service ships, so it asks the event
-- tables: every successful production deployment of the window must have
-- a run of a matching pipeline that built its commit (a service that did
-- not deploy in the window is not on the path).
CREATE FUNCTION engineering.golden_path_services(at timestamptz DEFAULT now())
RETURNS TABLE (golden_path text, kind text, service text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH eligible AS (
        SELECT * FROM engineering._eligible_components(golden_path_services.at)),
    settings AS (
        SELECT p.pipeline_window,
               coalesce((SELECT d.production_environment FROM engineering.dora_settings d LIMIT 1), 'production') AS env
        FROM engineering.platform_settings p)
    SELECT DISTINCT g.name, g.kind, c.service
    FROM engineering.golden_paths g
    JOIN eligible c ON g.kind = 'template' AND c.template = engineering._catalog_ref(g.pattern, 'template')
    UNION
    SELECT g.name, g.kind, c.service
    FROM engineering.golden_paths g
    JOIN eligible c ON g.kind = 'annotation'
                   AND c.annotations->>split_part(g.pattern, '=', 1) = substr(g.pattern, strpos(g.pattern, '=') + 1)
    UNION
    SELECT g.name, g.kind, d.service
    FROM engineering.golden_paths g
    CROSS JOIN settings s
    JOIN engineering.deployments d
      ON g.kind = 'pipeline' AND d.status = 'success' AND d.environment = s.env
     AND d.finished_at >= golden_path_services.at - s.pipeline_window AND d.finished_at < golden_path_services.at
    WHERE d.service IN (SELECT c.service FROM eligible c)
    GROUP BY g.name, g.kind, d.service
    HAVING bool_and(EXISTS (SELECT 1 FROM engineering.pipeline_runs r
                            WHERE r.service = d.service AND r.commit_sha = d.commit_sha
                              AND r.pipeline ~ g.pattern))
    ORDER BY 1, 3;
END;
COMMENT ON FUNCTION engineering.golden_path_services(timestamptz) IS
    'the eligible services on each golden path at a time: template (an eligible component created from it), annotation (one carrying key=value), pipeline (every successful production deployment of the platform_settings.pipeline_window before at was built by a run of a matching pipeline, and there was one)';

------------------------------------------------------------------------------
-- Adoption
------------------------------------------------------------------------------

CREATE FUNCTION engineering.golden_path_adoption(at timestamptz DEFAULT now())
RETURNS TABLE (golden_path text, kind text, adopted bigint, eligible bigint, adoption_rate float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH eligible AS (
        SELECT count(DISTINCT c.service) AS n FROM engineering._eligible_components(golden_path_adoption.at) c),
    members AS (
        SELECT m.golden_path, m.service FROM engineering.golden_path_services(golden_path_adoption.at) m),
    rows AS (
        SELECT g.name AS golden_path, g.kind,
               (SELECT count(DISTINCT m.service) FROM members m WHERE m.golden_path = g.name) AS adopted
        FROM engineering.golden_paths g
        UNION ALL
        SELECT NULL, NULL, (SELECT count(DISTINCT m.service) FROM members m))
    SELECT r.golden_path, r.kind, r.adopted, e.n,
           CASE WHEN e.n > 0 THEN r.adopted::float8 / e.n END
    FROM rows r CROSS JOIN eligible e
    ORDER BY r.golden_path NULLS LAST;
END;
COMMENT ON FUNCTION engineering.golden_path_adoption(timestamptz) IS
    'golden-path adoption at a time: per path, and overall (golden_path NULL: on at least one path), the eligible services on it, the eligible services, and their ratio (NULL without eligible services)';

CREATE FUNCTION engineering.golden_path_adoption_history(from_ts timestamptz, to_ts timestamptz,
                                                         step interval DEFAULT '1 week')
RETURNS TABLE (at timestamptz, golden_path text, kind text, adopted bigint, eligible bigint, adoption_rate float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR to_ts < from_ts THEN
        RAISE EXCEPTION 'golden_path_adoption_history() needs a finite window, got [%, %]', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF step IS NULL OR step <= interval '0' THEN
        RAISE EXCEPTION 'step must be a positive interval, got %', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(*) FROM generate_series(from_ts, to_ts, step) LIMIT 10001) > 10000 THEN
        RAISE EXCEPTION 'the window holds more than 10000 steps of %', step
            USING ERRCODE = 'program_limit_exceeded', HINT = 'Use a longer step.';
    END IF;
    RETURN QUERY
        SELECT t.t, a.golden_path, a.kind, a.adopted, a.eligible, a.adoption_rate
        FROM (SELECT g FROM generate_series(from_ts, to_ts, step) g UNION SELECT to_ts) AS t(t)
        CROSS JOIN LATERAL engineering.golden_path_adoption(t.t) a
        ORDER BY t.t, a.golden_path NULLS LAST;
END;
$$;
COMMENT ON FUNCTION engineering.golden_path_adoption_history(timestamptz, timestamptz, interval) IS
    'golden_path_adoption() at from_ts, from_ts + step, ... and at to_ts (the latest point is always the end of the window; at most 10000 steps), for a time series';

------------------------------------------------------------------------------
-- Do golden paths pay off?
------------------------------------------------------------------------------

CREATE FUNCTION engineering.dora_by_golden_path(from_ts timestamptz, to_ts timestamptz,
                                                environment text DEFAULT NULL,
                                                benchmark_year integer DEFAULT NULL,
                                                lead_time_start text DEFAULT NULL)
RETURNS TABLE (golden_path text, kind text, on_path boolean, services bigint,
               deployments bigint, deployment_days_per_week float8, deployment_frequency_level text,
               lead_time interval, lead_time_level text,
               change_failure_rate float8, change_failure_rate_level text,
               time_to_restore interval, time_to_restore_level text,
               failed_deployment_recovery_time interval, failed_deployment_recovery_time_level text,
               rework_rate float8)
LANGUAGE sql STABLE PARALLEL SAFE
SET jit = off
BEGIN ATOMIC
    WITH eligible AS (
        SELECT DISTINCT c.service FROM engineering._eligible_components(dora_by_golden_path.to_ts) c),
    members AS (
        SELECT m.golden_path, m.service FROM engineering.golden_path_services(dora_by_golden_path.to_ts) m),
    groups AS (
        SELECT g.name AS golden_path, g.kind, true AS on_path,
               ARRAY(SELECT m.service FROM members m WHERE m.golden_path = g.name ORDER BY 1) AS members, 1 AS o
        FROM engineering.golden_paths g
        UNION ALL
        SELECT NULL, NULL, true, ARRAY(SELECT DISTINCT m.service FROM members m ORDER BY 1), 2
        UNION ALL
        SELECT NULL, NULL, false,
               ARRAY(SELECT e.service FROM eligible e
                     WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.service = e.service) ORDER BY 1), 3)
    SELECT g.golden_path, g.kind, g.on_path, cardinality(g.members)::bigint,
           r.deployments, r.deployment_days_per_week, r.deployment_frequency_level,
           r.lead_time, r.lead_time_level, r.change_failure_rate, r.change_failure_rate_level,
           r.time_to_restore, r.time_to_restore_level, r.failed_deployment_recovery_time,
           r.failed_deployment_recovery_time_level, r.rework_rate
    FROM groups g
    CROSS JOIN LATERAL engineering._dora_report(dora_by_golden_path.from_ts, dora_by_golden_path.to_ts, g.members, false,
                                                dora_by_golden_path.environment, dora_by_golden_path.benchmark_year,
                                                dora_by_golden_path.lead_time_start) r
    ORDER BY g.o, g.golden_path;
END;
COMMENT ON FUNCTION engineering.dora_by_golden_path(timestamptz, timestamptz, text, integer, text) IS
    'the DORA keys of dora() over [from_ts, to_ts) for the services on each golden path (taken together), on at least one (golden_path NULL, on_path true) and off every path (on_path false); membership and eligibility as at to_ts';

-- from 82_scorecards.sql
-- engineering_metrics: platform engineering, part 3: service facts and
-- scorecards (service maturity).
--
-- service_facts gathers, per service, what the extension knows: catalog,
-- golden paths, SLOs and alerts, DORA and pipeline figures, incidents.
-- A scorecard is a ladder of levels (scorecard_levels), each with rules
-- (scorecard_rules): boolean SQL expressions over the columns of
-- service_facts.  A service reaches the highest level whose rules, and
-- those of every lower level, all pass.

------------------------------------------------------------------------------
-- service_facts_at(at) and the view service_facts (at = now())
------------------------------------------------------------------------------

CREATE FUNCTION engineering.service_facts_at(at timestamptz)
RETURNS TABLE (
    service                     text,
    in_catalog                  boolean,
    entity_ref                  text,
    owner                       text,
    team                        text,
    type                        text,
    lifecycle                   text,
    eligible                    boolean,
    system                      text,
    template                    text,
    tags                        text[],
    golden_paths                text[],
    on_golden_path              boolean,
    slos                        integer,
    worst_budget_remaining      numeric,
    alerts_firing               integer,
    deployments_90d             bigint,
    deployment_days_per_week    float8,
    deployment_frequency_level  text,
    lead_time                   interval,
    lead_time_level             text,
    change_failure_rate         float8,
    change_failure_rate_level   text,
    time_to_restore             interval,
    time_to_restore_level       text,
    dora_level                  text,
    pipeline_runs_30d           bigint,
    pipeline_success_rate       float8,
    flaky_rate                  float8,
    open_incidents              bigint,
    last_deployment_at          timestamptz,
    days_since_last_deployment  float8,
    failed_deployment_recovery_time       interval,
    failed_deployment_recovery_time_level text
)
LANGUAGE sql STABLE PARALLEL SAFE
SET jit = off
BEGIN ATOMIC
    WITH settings AS (
        SELECT coalesce((SELECT d.production_environment FROM engineering.dora_settings d LIMIT 1), 'production') AS env,
               coalesce((SELECT d.benchmark_year FROM engineering.dora_settings d LIMIT 1), 2023) AS year),
    catalog AS (
        SELECT * FROM engineering.catalog_services(service_facts_at.at)),
    dora AS (
        SELECT * FROM engineering.dora(service_facts_at.at - interval '90 days', service_facts_at.at) r
        WHERE r.service IS NOT NULL),
    paths AS (
        SELECT m.service, array_agg(m.golden_path ORDER BY m.golden_path) AS golden_paths
        FROM engineering.golden_path_services(service_facts_at.at) m GROUP BY m.service),
    slo AS (
        SELECT s.service, count(*)::integer AS slos, min(st.budget_remaining) AS worst_budget_remaining
        FROM engineering.slos s
        LEFT JOIN LATERAL engineering.slo_status(s.name, service_facts_at.at) st ON true
        GROUP BY s.service),
    alerts AS (
        SELECT a.service, count(*) FILTER (WHERE a.firing AND NOT a.suppressed)::integer AS firing
        FROM engineering.slo_alerts(service_facts_at.at) a GROUP BY a.service),
    -- pipeline_health()'s definitions over all of a service's pipelines:
    -- successes / (successes + failures) of the runs started in the last
    -- 30 days, and the share of (pipeline, branch, commit) builds that
    -- failed and then passed
    runs AS (
        SELECT r.service, r.pipeline, r.branch, r.commit_sha, r.status, coalesce(r.started_at, r.queued_at) AS began
        FROM engineering.pipeline_runs r
        WHERE coalesce(r.started_at, r.queued_at) >= service_facts_at.at - interval '30 days'
          AND coalesce(r.started_at, r.queued_at) < service_facts_at.at),
    ci AS (
        SELECT t.service, t.runs, t.success_rate, f.flaky::float8 / nullif(f.built, 0) AS flaky_rate
        FROM (SELECT r.service, count(*) AS runs,
                     count(*) FILTER (WHERE r.status = 'success')::float8
                         / nullif(count(*) FILTER (WHERE r.status IN ('success', 'failure')), 0) AS success_rate
              FROM runs r GROUP BY r.service) t
        LEFT JOIN (SELECT c.service, count(*) AS built, count(*) FILTER (WHERE c.last_success > c.first_failure) AS flaky
                   FROM (SELECT r.service, min(r.began) FILTER (WHERE r.status = 'failure') AS first_failure,
                                max(r.began) FILTER (WHERE r.status = 'success') AS last_success
                         FROM runs r
                         WHERE r.commit_sha IS NOT NULL AND r.status IN ('success', 'failure')
                         GROUP BY r.service, r.pipeline, r.branch, r.commit_sha) c
                   GROUP BY c.service) f ON f.service = t.service),
    incidents AS (
        SELECT i.service, count(*) AS open
        FROM engineering.incidents i
        WHERE i.opened_at <= service_facts_at.at AND (i.resolved_at IS NULL OR i.resolved_at > service_facts_at.at)
        GROUP BY i.service),
    last_deploy AS (
        SELECT d.service, max(d.finished_at) AS at
        FROM engineering.deployments d CROSS JOIN settings s
        WHERE d.status = 'success' AND d.environment = s.env AND d.finished_at <= service_facts_at.at
        GROUP BY d.service),
    services AS (
        SELECT c.service FROM catalog c
        UNION SELECT s.service FROM engineering.slos s
        UNION SELECT d.service FROM dora d)
    SELECT v.service, c.service IS NOT NULL, c.entity_ref, c.owner, c.team, c.type, c.lifecycle,
           coalesce(c.eligible, false), c.system, c.template, c.tags,
           coalesce(p.golden_paths, '{}'), p.golden_paths IS NOT NULL,
           coalesce(o.slos, 0), o.worst_budget_remaining, coalesce(a.firing, 0),
           coalesce(d.deployments, 0), d.deployment_days_per_week, d.deployment_frequency_level,
           d.lead_time, d.lead_time_level, d.change_failure_rate, d.change_failure_rate_level,
           d.time_to_restore, d.time_to_restore_level,
           -- the worst of the levels that are known (no incident: no time to restore level)
           (SELECT b.level
            FROM engineering.dora_benchmarks b CROSS JOIN settings s
            WHERE b.report_year = s.year
              AND (b.metric, b.level) IN (('deployment_frequency', d.deployment_frequency_level),
                                          ('lead_time', d.lead_time_level),
                                          ('change_failure_rate', d.change_failure_rate_level),
                                          ('time_to_restore', d.time_to_restore_level),
                                          ('failed_deployment_recovery_time', d.failed_deployment_recovery_time_level))
            ORDER BY b.rank DESC, b.metric LIMIT 1),
           coalesce(ci.runs, 0), ci.success_rate, ci.flaky_rate,
           coalesce(i.open, 0), l.at,
           extract(epoch FROM service_facts_at.at - l.at)::float8 / 86400,
           d.failed_deployment_recovery_time, d.failed_deployment_recovery_time_level
    FROM services v
    LEFT JOIN catalog c ON c.service = v.service
    LEFT JOIN dora d ON d.service = v.service
    LEFT JOIN paths p ON p.service = v.service
    LEFT JOIN slo o ON o.service = v.service
    LEFT JOIN alerts a ON a.service = v.service
    LEFT JOIN ci ON ci.service = v.service
    LEFT JOIN incidents i ON i.service = v.service
    LEFT JOIN last_deploy l ON l.service = v.service
    ORDER BY v.service;
END;
COMMENT ON FUNCTION engineering.service_facts_at(timestamptz) IS
    'service_facts as of a time: one row per service in the catalog then, with an SLO, or with a production deployment in the 90 days before';

CREATE VIEW engineering.service_facts AS
SELECT * FROM engineering.service_facts_at(now());
COMMENT ON VIEW engineering.service_facts IS
    'one row per service (in the catalog, with an SLO, or deployed to production in the last 90 days) with what the extension knows about it; the columns scorecard rules are written over';
COMMENT ON COLUMN engineering.service_facts.service IS 'the service name the event tables use';
COMMENT ON COLUMN engineering.service_facts.in_catalog IS 'whether a live catalog component maps to it';
COMMENT ON COLUMN engineering.service_facts.entity_ref IS 'its catalog component (the eligible one first when several map to it)';
COMMENT ON COLUMN engineering.service_facts.owner IS 'spec.owner of the component, a full entity ref';
COMMENT ON COLUMN engineering.service_facts.team IS 'the owning group''s name (for a user owner, their first group)';
COMMENT ON COLUMN engineering.service_facts.type IS 'spec.type of the component';
COMMENT ON COLUMN engineering.service_facts.lifecycle IS 'spec.lifecycle of the component';
COMMENT ON COLUMN engineering.service_facts.eligible IS 'whether it counts for golden-path adoption (type in platform_settings.eligible_types, not deprecated)';
COMMENT ON COLUMN engineering.service_facts.system IS 'spec.system, a full entity ref';
COMMENT ON COLUMN engineering.service_facts.template IS 'the template the component was created from';
COMMENT ON COLUMN engineering.service_facts.tags IS 'metadata.tags of the component';
COMMENT ON COLUMN engineering.service_facts.golden_paths IS 'the golden paths it is on (golden_path_services()), {} for none';
COMMENT ON COLUMN engineering.service_facts.on_golden_path IS 'whether it is on at least one golden path';
COMMENT ON COLUMN engineering.service_facts.slos IS 'SLOs defined for it';
COMMENT ON COLUMN engineering.service_facts.worst_budget_remaining IS 'the smallest budget_remaining of slo_status() over its SLOs (1 = untouched, 0 = spent, negative = overspent); NULL without an SLO or traffic';
COMMENT ON COLUMN engineering.service_facts.alerts_firing IS 'burn-rate alert rules of its SLOs firing and not suppressed (slo_alerts())';
COMMENT ON COLUMN engineering.service_facts.deployments_90d IS 'successful production deployments in the last 90 days (dora())';
COMMENT ON COLUMN engineering.service_facts.deployment_days_per_week IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.deployment_frequency_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.lead_time IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.lead_time_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.change_failure_rate IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.change_failure_rate_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.time_to_restore IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.time_to_restore_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.dora_level IS 'the worst (highest-ranked) of its four DORA levels that are known; NULL when none is';
COMMENT ON COLUMN engineering.service_facts.pipeline_runs_30d IS 'pipeline runs started in the last 30 days';
COMMENT ON COLUMN engineering.service_facts.pipeline_success_rate IS 'successes / (successes + failures) of those runs, all pipelines together';
COMMENT ON COLUMN engineering.service_facts.flaky_rate IS 'share of the (pipeline, branch, commit) builds of those runs that failed and then passed';
COMMENT ON COLUMN engineering.service_facts.open_incidents IS 'incidents open now';
COMMENT ON COLUMN engineering.service_facts.last_deployment_at IS 'its latest successful production deployment';
COMMENT ON COLUMN engineering.service_facts.days_since_last_deployment IS 'days since then (fractional); NULL when it never deployed';
COMMENT ON COLUMN engineering.service_facts.failed_deployment_recovery_time IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.failed_deployment_recovery_time_level IS 'dora() over the last 90 days (graded by the 2023 tiers; time_to_restore_level by the 2021 ones)';

------------------------------------------------------------------------------
-- Scorecards
------------------------------------------------------------------------------

CREATE TABLE engineering.scorecard_levels (
    scorecard       text NOT NULL
                    CHECK (btrim(scorecard) <> '' OR engineering._reject_value('scorecard_levels.scorecard', scorecard, 'a scorecard needs a non-empty name')),
    level           text NOT NULL
                    CHECK (btrim(level) <> '' OR engineering._reject_value('scorecard_levels.level', level, 'a level needs a non-empty name')),
    rank            integer NOT NULL
                    CHECK (rank >= 1 OR engineering._reject_value('scorecard_levels.rank', rank::text, 'ranks start at 1 (the lowest level)')),
    description     text,
    PRIMARY KEY (scorecard, level),
    CONSTRAINT scorecard_levels_rank_key UNIQUE (scorecard, rank)
);
COMMENT ON TABLE engineering.scorecard_levels IS 'the levels of each scorecard, lowest first (bronze < silver < gold); admins write it';
COMMENT ON COLUMN engineering.scorecard_levels.scorecard IS 'the scorecard';
COMMENT ON COLUMN engineering.scorecard_levels.level IS 'the level''s name';
COMMENT ON COLUMN engineering.scorecard_levels.rank IS 'order of the levels, 1 = the lowest; reaching a level needs every rule of it and of the levels below';
COMMENT ON COLUMN engineering.scorecard_levels.description IS 'what reaching the level means';

CREATE TABLE engineering.scorecard_rules (
    scorecard       text NOT NULL,
    level           text NOT NULL,
    rule            text NOT NULL
                    CHECK (btrim(rule) <> '' OR engineering._reject_value('scorecard_rules.rule', rule, 'a rule needs a non-empty name')),
    expression      text NOT NULL,
    description     text,
    PRIMARY KEY (scorecard, rule),
    CONSTRAINT scorecard_rules_level_fkey FOREIGN KEY (scorecard, level)
        REFERENCES engineering.scorecard_levels (scorecard, level) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX scorecard_rules_level_idx ON engineering.scorecard_rules (scorecard, level);
COMMENT ON TABLE engineering.scorecard_rules IS
    'the rules of each scorecard level: boolean SQL expressions over the columns of service_facts, checked when written; admins write it';
COMMENT ON COLUMN engineering.scorecard_rules.scorecard IS 'the scorecard';
COMMENT ON COLUMN engineering.scorecard_rules.level IS 'the level the rule belongs to';
COMMENT ON COLUMN engineering.scorecard_rules.rule IS 'the rule''s name, unique in its scorecard (what passed and failed list)';
COMMENT ON COLUMN engineering.scorecard_rules.expression IS
    'a boolean expression over service_facts columns, constants, operators and a few functions (see README); NULL counts as failed';
COMMENT ON COLUMN engineering.scorecard_rules.description IS 'what the rule asks for';

-- An expression is evaluated by whoever calls scorecards(), so it may
-- hold no more than a WHERE clause over one row of facts: column names,
-- constants, operators, casts and a short list of functions; no
-- subqueries, no other tables, no functions that could read or change
-- anything.  The words are checked here; the parser checks the rest.
CREATE FUNCTION engineering._scorecard_expression_words(expression text)
RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(
    SELECT DISTINCT lower(w[1])
    FROM regexp_matches(regexp_replace(expression, '''([^'']|'''')*''', ' ', 'g'), '([A-Za-z_][A-Za-z_0-9]*)', 'g') AS w
    ORDER BY 1);
COMMENT ON FUNCTION engineering._scorecard_expression_words(text) IS
    'internal: the words (identifiers and keywords, lower case) of an expression outside its string constants';

CREATE FUNCTION engineering._scorecard_check_expression(rule text, expression text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    stripped text := regexp_replace(coalesce(expression, ''), '''([^'']|'''')*''', '''''', 'g');
    bad text;
    result_type text;
BEGIN
    IF btrim(coalesce(expression, '')) = '' THEN
        RAISE EXCEPTION 'rule "%" needs an expression', rule USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- no backslash anywhere: without escapes, this function and the parser
    -- agree on where every string constant ends, whatever
    -- standard_conforming_strings says (and no backslash in the patterns
    -- here either, for the same reason)
    IF strpos(expression, chr(92)) > 0 OR expression ~ '[$;]' OR stripped ~ '("|--|/[*])' THEN
        RAISE EXCEPTION 'rule "%": the expression may not contain ;, $, ", comments or backslashes', rule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(expression) > 2000 THEN
        RAISE EXCEPTION 'rule "%": the expression is longer than 2000 characters', rule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(w, ', ' ORDER BY w) INTO bad
    FROM unnest(engineering._scorecard_expression_words(expression)) w
    WHERE w NOT IN (
        SELECT a.attname::text FROM pg_attribute a
        WHERE a.attrelid = 'engineering.service_facts'::regclass AND a.attnum > 0 AND NOT a.attisdropped)
      AND w NOT IN (
        -- keywords of boolean expressions
        'and', 'or', 'not', 'is', 'null', 'true', 'false', 'unknown', 'in', 'like', 'ilike', 'similar', 'to',
        'escape', 'between', 'symmetric', 'distinct', 'from', 'any', 'all', 'some', 'array', 'case', 'when',
        'then', 'else', 'end',
        -- types for casts
        'text', 'numeric', 'integer', 'int', 'bigint', 'float8', 'double', 'precision', 'real', 'boolean',
        'interval', 'date', 'timestamptz',
        -- functions that read nothing but their arguments
        'coalesce', 'nullif', 'greatest', 'least', 'cardinality', 'array_length', 'array_position',
        'lower', 'upper', 'length', 'btrim', 'starts_with', 'abs', 'round', 'floor', 'ceil', 'extract', 'epoch',
        'day', 'days', 'hour', 'hours', 'minute', 'minutes', 'week', 'weeks', 'second', 'seconds');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'rule "%": % in the expression is not a column of service_facts nor an allowed keyword or function', rule, bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A rule is a boolean expression over the columns of engineering.service_facts, such as "owner IS NOT NULL" or "slos > 0 AND worst_budget_remaining > 0".';
    END IF;
    BEGIN
        EXECUTE format('SELECT pg_typeof((%s))::text FROM (SELECT (NULL::engineering.service_facts).*) AS f', expression)
            INTO result_type;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'rule "%": the expression does not parse against service_facts: %', rule, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF result_type IS DISTINCT FROM 'boolean' THEN
        RAISE EXCEPTION 'rule "%": the expression is of type %, not boolean', rule, result_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Compare it with something, e.g. "slos > 0" rather than "slos".';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._scorecard_check_expression(text, text) IS
    'internal: raises unless an expression uses only service_facts columns, constants, operators, casts and the allowed functions, parses, and is boolean';

CREATE FUNCTION engineering._scorecard_rules_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    PERFORM engineering._scorecard_check_expression(NEW.rule, NEW.expression);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION engineering._scorecard_rules_check() IS
    'trigger: a rule is written only when its expression is a valid boolean expression over service_facts';
CREATE TRIGGER scorecard_rules_check BEFORE INSERT OR UPDATE OF expression, rule ON engineering.scorecard_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._scorecard_rules_check();

-- Keep edits across pg_dump/pg_restore (the shipped scorecard is seeded
-- again by CREATE EXTENSION before the dumped rows come back).
CREATE FUNCTION engineering._scorecard_levels_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.scorecard_levels
       SET rank = NEW.rank, description = NEW.description
     WHERE scorecard = NEW.scorecard AND level = NEW.level;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._scorecard_levels_restore() IS
    'internal trigger: an inserted scorecard_levels row whose (scorecard, level) exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER scorecard_levels_restore BEFORE INSERT ON engineering.scorecard_levels
    FOR EACH ROW EXECUTE FUNCTION engineering._scorecard_levels_restore();

CREATE FUNCTION engineering._scorecard_rules_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.scorecard_rules
       SET level = NEW.level, expression = NEW.expression, description = NEW.description
     WHERE scorecard = NEW.scorecard AND rule = NEW.rule;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._scorecard_rules_restore() IS
    'internal trigger: an inserted scorecard_rules row whose (scorecard, rule) exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER scorecard_rules_restore BEFORE INSERT ON engineering.scorecard_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._scorecard_rules_restore();

-- The shipped scorecard: the checks Port, Cortex, OpsLevel and Backstage
-- Tech Insights users write first (README, "Scorecards").
INSERT INTO engineering.scorecard_levels (scorecard, level, rank, description) VALUES
    ('production readiness', 'bronze', 1, 'known: someone owns it, it is not deprecated, and it ships'),
    ('production readiness', 'silver', 2, 'on the platform: a golden path, an SLO, no page firing, no incident open'),
    ('production readiness', 'gold',   3, 'delivers well: DORA high or better, error budget left, a healthy pipeline');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression, description) VALUES
    ('production readiness', 'bronze', 'has owner', 'owner IS NOT NULL', 'the catalog names an owner'),
    ('production readiness', 'bronze', 'not deprecated', 'lifecycle IS DISTINCT FROM ''deprecated''', 'its lifecycle is not deprecated'),
    ('production readiness', 'bronze', 'deployed in 90 days', 'days_since_last_deployment <= 90', 'a successful production deployment in the last 90 days'),
    ('production readiness', 'silver', 'on a golden path', 'on_golden_path', 'on at least one golden path'),
    ('production readiness', 'silver', 'has an SLO', 'slos > 0', 'at least one SLO'),
    ('production readiness', 'silver', 'no page firing', 'alerts_firing = 0', 'no burn-rate alert of its SLOs firing'),
    ('production readiness', 'silver', 'no open incident', 'open_incidents = 0', 'no incident open'),
    ('production readiness', 'gold', 'DORA high', 'dora_level IN (''elite'', ''high'')', 'every known DORA level of the last 90 days is high or elite'),
    ('production readiness', 'gold', 'error budget left', 'worst_budget_remaining > 0', 'every SLO has budget left'),
    ('production readiness', 'gold', 'healthy pipeline', 'pipeline_success_rate >= 0.9 AND coalesce(flaky_rate, 0) <= 0.1',
     'at least 90% of the last 30 days'' runs passed, at most 10% of builds were flaky');

SELECT pg_catalog.pg_extension_config_dump('engineering.scorecard_levels', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.scorecard_rules', '');

-- Each rule is evaluated on its own, so that one that fails (a division
-- by zero, a column an upgrade renamed) is an error for that rule and
-- every service, never a pass; the facts are computed once.  Subtransactions
-- catch the errors, so the function cannot run in a parallel worker.
CREATE FUNCTION engineering.scorecards(at timestamptz DEFAULT now())
RETURNS TABLE (service text, scorecard text, level text, passed text[], failed text[], errors text[])
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
SET jit = off
AS $$
DECLARE
    facts jsonb;
    r record;
    results jsonb;
    evals jsonb := '[]';
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'scorecards() needs a finite time, got %', at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]') INTO facts FROM engineering.service_facts_at(at) f;
    FOR r IN
        SELECT x.scorecard, x.rule, x.expression, l.rank
        FROM engineering.scorecard_rules x
        JOIN engineering.scorecard_levels l ON l.scorecard = x.scorecard AND l.level = x.level
        ORDER BY x.scorecard, l.rank, x.rule
    LOOP
        BEGIN
            PERFORM engineering._scorecard_check_expression(r.rule, r.expression);
            EXECUTE format('SELECT coalesce(jsonb_object_agg(f.service, (%s)), ''{}'')
                            FROM jsonb_populate_recordset(NULL::engineering.service_facts, $1) AS f', r.expression)
                INTO results USING facts;
            evals := evals || jsonb_build_array(jsonb_build_object(
                'scorecard', r.scorecard, 'rule', r.rule, 'rank', r.rank, 'results', results));
        EXCEPTION WHEN OTHERS THEN
            evals := evals || jsonb_build_array(jsonb_build_object(
                'scorecard', r.scorecard, 'rule', r.rule, 'rank', r.rank, 'error', SQLERRM));
        END;
    END LOOP;

    RETURN QUERY
    WITH svc AS (
        SELECT f->>'service' AS service FROM jsonb_array_elements(facts) f),
    ev AS (
        SELECT e->>'scorecard' AS scorecard, e->>'rule' AS rule, (e->>'rank')::integer AS rank,
               e->'results' AS results, e->>'error' AS error
        FROM jsonb_array_elements(evals) e),
    outcome AS (
        SELECT s.service, ev.scorecard, ev.rule, ev.rank, ev.error,
               CASE WHEN ev.error IS NOT NULL THEN 'error'
                    WHEN (ev.results->>s.service)::boolean THEN 'pass'
                    ELSE 'fail' END AS outcome
        FROM svc s CROSS JOIN ev),
    cards AS (
        SELECT DISTINCT l.scorecard FROM engineering.scorecard_levels l)
    SELECT s.service, c.scorecard,
           (SELECT l.level FROM engineering.scorecard_levels l
            WHERE l.scorecard = c.scorecard
              AND NOT EXISTS (SELECT 1 FROM outcome o
                              WHERE o.service = s.service AND o.scorecard = c.scorecard
                                AND o.rank <= l.rank AND o.outcome <> 'pass')
            ORDER BY l.rank DESC LIMIT 1),
           coalesce((SELECT array_agg(o.rule ORDER BY o.rank, o.rule) FROM outcome o
                     WHERE o.service = s.service AND o.scorecard = c.scorecard AND o.outcome = 'pass'), '{}'),
           coalesce((SELECT array_agg(o.rule ORDER BY o.rank, o.rule) FROM outcome o
                     WHERE o.service = s.service AND o.scorecard = c.scorecard AND o.outcome = 'fail'), '{}'),
           coalesce((SELECT array_agg(o.rule || ': ' || o.error ORDER BY o.rank, o.rule) FROM outcome o
                     WHERE o.service = s.service AND o.scorecard = c.scorecard AND o.outcome = 'error'), '{}')
    FROM svc s CROSS JOIN cards c
    ORDER BY s.service, c.scorecard;
END;
$$;
COMMENT ON FUNCTION engineering.scorecards(timestamptz) IS
    'grades every service of service_facts_at(at) on every scorecard: the highest level whose rules and those of every lower level pass (NULL: not even the lowest), the rules passed, failed (false or NULL), and errors (rules that could not be evaluated, with the message; never a pass)';

-- from 85_platform_roles.sql
-- engineering_metrics: grants of the platform-engineering parts (golden
-- paths, scorecards), by the rules of 70_roles.sql, which comes before
-- them (the catalog's own grants are there): readers read everything,
-- admins write the choices (settings, paths, scorecards).  The functions
-- run with the caller's rights and stay executable by PUBLIC behind the
-- schema's USAGE; scorecards() evaluates only rules checked when written.

GRANT SELECT ON
    engineering.platform_settings, engineering.golden_paths, engineering.service_facts,
    engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON
    engineering.platform_settings, engineering.golden_paths,
    engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_admin;

-- issue 15: people, onboarding, surveys and the platform report

-- engineering_metrics: people and their identities (platform engineering,
-- part 2).
--
-- Events name their authors the way each vendor does (a GitHub login, a
-- GitLab username, a commit's author name or e-mail).  People metrics need
-- the one person behind those names, so people and their aliases are
-- recorded here, by admins or from Backstage User entities.  An author
-- nobody recorded stays visible as themselves in person_activity rather
-- than vanishing; an author matching the bot pattern is left out of every
-- people metric and listed in excluded_authors, so that what was left out
-- can be checked.

CREATE TABLE engineering.people (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL
                    CHECK (btrim(name) <> '' OR engineering._reject_value('people.name', name, 'a person needs a non-empty name')),
    email           text
                    CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                           OR engineering._reject_value('people.email', email, 'expected an e-mail address')),
    team            text
                    CHECK (team IS NULL OR btrim(team) <> '' OR engineering._reject_value('people.team', team, 'team must not be empty (NULL for none)')),
    started_at      timestamptz,
    left_at         timestamptz,
    attributes      jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(attributes) = 'object'
                           OR engineering._reject_value('people.attributes', attributes::text, 'attributes must be a JSON object')),
    CONSTRAINT people_left_after_started
        CHECK (left_at >= started_at OR left_at IS NULL OR started_at IS NULL
               OR engineering._reject_order('people.left_at', left_at, 'started_at', started_at))
);
CREATE UNIQUE INDEX people_email_key ON engineering.people (lower(email));
CREATE INDEX people_team_idx ON engineering.people (team);

COMMENT ON TABLE engineering.people IS
    'the engineers behind the events: one row per person, filled by admins or by refresh_people_from_catalog() from Backstage User entities';
COMMENT ON COLUMN engineering.people.id IS 'surrogate key referenced by person_aliases';
COMMENT ON COLUMN engineering.people.name IS 'display name';
COMMENT ON COLUMN engineering.people.email IS 'work e-mail; unique (case-insensitive) and matched against commit e-mails like an alias';
COMMENT ON COLUMN engineering.people.team IS 'the team the person belongs to now (a Backstage group name when filled from the catalog); people metrics are reported per team';
COMMENT ON COLUMN engineering.people.started_at IS 'when the person joined (the start of onboarding); NULL when not known';
COMMENT ON COLUMN engineering.people.left_at IS 'when the person left; NULL while they are here';
COMMENT ON COLUMN engineering.people.attributes IS 'other attributes (role, location, level, ...) as a JSON object; survey_results can group by any of its keys';

CREATE TABLE engineering.person_aliases (
    person_id       integer NOT NULL REFERENCES engineering.people (id) ON DELETE CASCADE,
    kind            text NOT NULL
                    CHECK (kind IN ('github', 'gitlab', 'email', 'name', 'pagerduty', 'opsgenie', 'jenkins', 'backstage', 'other')
                           OR engineering._reject_value('person_aliases.kind', kind,
                                                        'expected github, gitlab, email, name, pagerduty, opsgenie, jenkins, backstage or other')),
    alias           text NOT NULL
                    CHECK (btrim(alias) <> '' OR engineering._reject_value('person_aliases.alias', alias, 'an alias must not be empty'))
);
CREATE UNIQUE INDEX person_aliases_kind_alias_key ON engineering.person_aliases (kind, lower(alias));
CREATE INDEX person_aliases_person_idx ON engineering.person_aliases (person_id);

COMMENT ON TABLE engineering.person_aliases IS
    'the identities of a person in the systems the extension reads: one person, many logins, usernames, commit names and e-mails';
COMMENT ON COLUMN engineering.person_aliases.person_id IS 'the person';
COMMENT ON COLUMN engineering.person_aliases.kind IS
    'where the alias is used: github (login), gitlab (username), email (commit e-mail), name (commit author name), pagerduty, opsgenie, jenkins, backstage (the User entity ref), other';
COMMENT ON COLUMN engineering.person_aliases.alias IS
    'the identity as the system writes it; matched case-insensitively against changes.author, pull_requests.author and commit e-mails';

CREATE TABLE engineering.people_settings (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CHECK (singleton OR engineering._reject_value('people_settings.singleton', singleton::text, 'people_settings holds exactly one row')),
    -- compiling the pattern against '' refuses an invalid regular expression
    -- when it is written, not when the first report runs
    bot_pattern     text NOT NULL
                    DEFAULT '(\[bot\]$|^(dependabot|renovate|github-actions|snyk-bot|mend-bolt|greenkeeper)|[-_ ]bot$|^(project|group)_[0-9]+_bot)'
                    CHECK (('' ~* bot_pattern) IS NOT NULL)
);
INSERT INTO engineering.people_settings DEFAULT VALUES;

COMMENT ON TABLE engineering.people_settings IS
    'the one row of people settings: which authors are bots; edit it with UPDATE';
COMMENT ON COLUMN engineering.people_settings.singleton IS 'always true: the table has exactly one row';
COMMENT ON COLUMN engineering.people_settings.bot_pattern IS
    'case-insensitive regular expression: an author it matches is a bot (left out of people metrics, listed in excluded_authors) unless it is an alias or e-mail of a person';

CREATE FUNCTION engineering._people_settings_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.people_settings SET bot_pattern = NEW.bot_pattern WHERE singleton = NEW.singleton;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._people_settings_restore() IS
    'internal trigger: an inserted people_settings row (as pg_restore replays it) replaces the existing one';
CREATE TRIGGER people_settings_restore BEFORE INSERT ON engineering.people_settings
    FOR EACH ROW EXECUTE FUNCTION engineering._people_settings_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.people', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.people_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.person_aliases', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.people_settings', '');

-- A name that two people claim (one's GitHub login is the other's commit
-- name) resolves to neither: guessing would credit one person with the
-- other's work.
CREATE VIEW engineering.person_identities AS
SELECT identity, min(person_id) AS person_id
FROM (SELECT lower(a.alias) AS identity, a.person_id FROM engineering.person_aliases a
      UNION
      SELECT lower(p.email), p.id FROM engineering.people p WHERE p.email IS NOT NULL) i
GROUP BY identity
HAVING count(DISTINCT person_id) = 1;

COMMENT ON VIEW engineering.person_identities IS
    'every alias and e-mail (lower-case) that names exactly one person; a name claimed by two people resolves to neither';
COMMENT ON COLUMN engineering.person_identities.identity IS 'an alias or e-mail, lower-case';
COMMENT ON COLUMN engineering.person_identities.person_id IS 'the one person it names';

CREATE FUNCTION engineering.is_bot(author text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT author ~* s.bot_pattern FROM engineering.people_settings s
$$;
COMMENT ON FUNCTION engineering.is_bot(text) IS
    'whether an author name matches people_settings.bot_pattern (case-insensitive); NULL for a NULL author';

-- The raw activity of every author, with the e-mail a commit carries (GitLab
-- commits record it in attributes) as a second way to find the person.
CREATE VIEW engineering._author_activity AS
SELECT 'commit'::text AS activity, c.id AS activity_id, c.source_id, c.service, c.author,
       coalesce(c.attributes->>'author_email', c.attributes->>'email') AS author_email,
       coalesce(c.authored_at, c.committed_at) AS at, NULL::timestamptz AS merged_at
FROM engineering.changes c
WHERE c.author IS NOT NULL
UNION ALL
SELECT 'pull_request', pr.id, pr.source_id, pr.service, pr.author, NULL, pr.opened_at, pr.merged_at
FROM engineering.pull_requests pr
WHERE pr.author IS NOT NULL;

COMMENT ON VIEW engineering._author_activity IS
    'internal: commits and pull requests with their raw author, before people and bots are resolved';
COMMENT ON COLUMN engineering._author_activity.activity IS 'commit or pull_request';
COMMENT ON COLUMN engineering._author_activity.activity_id IS 'changes.id or pull_requests.id';
COMMENT ON COLUMN engineering._author_activity.source_id IS 'the source that synced the row';
COMMENT ON COLUMN engineering._author_activity.service IS 'the service';
COMMENT ON COLUMN engineering._author_activity.author IS 'the author as the source wrote it';
COMMENT ON COLUMN engineering._author_activity.author_email IS 'the commit e-mail when the source recorded one';
COMMENT ON COLUMN engineering._author_activity.at IS 'commit: author date (else committer date); pull request: opened_at';
COMMENT ON COLUMN engineering._author_activity.merged_at IS 'pull request: merged_at';

CREATE VIEW engineering.person_activity AS
SELECT a.activity, a.activity_id, a.source_id, a.service, a.author,
       coalesce(by_name.person_id, by_email.person_id) AS person_id,
       coalesce(p.name, a.author) AS person,
       p.team, a.at, a.merged_at
FROM engineering._author_activity a
LEFT JOIN engineering.person_identities by_name ON by_name.identity = lower(a.author)
LEFT JOIN engineering.person_identities by_email ON by_email.identity = lower(a.author_email)
LEFT JOIN engineering.people p ON p.id = coalesce(by_name.person_id, by_email.person_id)
WHERE by_name.person_id IS NOT NULL OR by_email.person_id IS NOT NULL
   OR NOT engineering.is_bot(a.author);

COMMENT ON VIEW engineering.person_activity IS
    'commits (changes) and pull requests resolved to people through person_aliases and e-mails; unknown authors stay as themselves (person_id NULL), bots are left out (see excluded_authors)';
COMMENT ON COLUMN engineering.person_activity.activity IS 'commit (a row of changes) or pull_request';
COMMENT ON COLUMN engineering.person_activity.activity_id IS 'changes.id or pull_requests.id';
COMMENT ON COLUMN engineering.person_activity.source_id IS 'the source that synced the row; NULL for hand-made rows';
COMMENT ON COLUMN engineering.person_activity.service IS 'the service';
COMMENT ON COLUMN engineering.person_activity.author IS 'the author as the source wrote it';
COMMENT ON COLUMN engineering.person_activity.person_id IS 'the person the author (or the commit e-mail) is an alias of; NULL for an unknown author';
COMMENT ON COLUMN engineering.person_activity.person IS 'the person''s name, else the author as written';
COMMENT ON COLUMN engineering.person_activity.team IS 'the person''s team; NULL for an unknown author';
COMMENT ON COLUMN engineering.person_activity.at IS 'commit: author date (else committer date); pull request: when it was opened';
COMMENT ON COLUMN engineering.person_activity.merged_at IS 'pull request: when it was merged (NULL while unmerged); NULL for commits';

CREATE VIEW engineering.excluded_authors AS
SELECT a.author,
       count(*) FILTER (WHERE a.activity = 'commit') AS commits,
       count(*) FILTER (WHERE a.activity = 'pull_request') AS pull_requests,
       array_agg(DISTINCT a.service ORDER BY a.service) AS services,
       min(a.at) AS first_seen_at,
       max(a.at) AS last_seen_at
FROM engineering._author_activity a
WHERE engineering.is_bot(a.author)
  AND NOT EXISTS (SELECT 1 FROM engineering.person_identities i
                  WHERE i.identity IN (lower(a.author), lower(a.author_email)))
GROUP BY a.author;

COMMENT ON VIEW engineering.excluded_authors IS
    'the authors left out of people metrics because they match people_settings.bot_pattern (and are no person''s alias), with what they did';
COMMENT ON COLUMN engineering.excluded_authors.author IS 'the author as the source wrote it';
COMMENT ON COLUMN engineering.excluded_authors.commits IS 'its commits (rows of changes)';
COMMENT ON COLUMN engineering.excluded_authors.pull_requests IS 'its pull requests';
COMMENT ON COLUMN engineering.excluded_authors.services IS 'the services it touched';
COMMENT ON COLUMN engineering.excluded_authors.first_seen_at IS 'its earliest commit or pull request';
COMMENT ON COLUMN engineering.excluded_authors.last_seen_at IS 'its latest commit or pull request';

-- engineering_metrics: grants of the platform-engineering parts (catalog,
-- golden paths, scorecards), by the rules of 70_roles.sql: readers read
-- everything, writers write what is synced (the catalog, like the event
-- tables: hand-made catalogs, first_seen_at moved back to when a service
-- really started), admins write the choices (settings, paths, scorecards).
-- The functions run with the caller's rights and stay executable by PUBLIC
-- behind the schema's USAGE.

GRANT SELECT ON
    engineering.catalog_entities, engineering.catalog_groups, engineering.catalog_users,
    engineering.catalog_memberships, engineering.platform_settings, engineering.golden_paths,
    engineering.service_facts, engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON engineering.catalog_entities TO engineering_writer;

GRANT INSERT, UPDATE, DELETE ON
    engineering.platform_settings, engineering.golden_paths,
    engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_admin;

-- engineering_metrics: onboarding time.
--
-- Onboarding is measured from a person's start to their first commit, pull
-- request, merge and production deployment, and to their tenth merged pull
-- request (the onboarding measure of the developer-experience literature).
-- Only what a person did from their start counts: contributions from
-- before it (as a contractor, an open-source contributor, under an alias
-- reused later) are not onboarding.

CREATE VIEW engineering.onboarding AS
WITH acts AS (
    SELECT a.person_id, a.activity, a.activity_id, a.at, a.merged_at
    FROM engineering.person_activity a
    WHERE a.person_id IS NOT NULL
), first_seen AS (
    SELECT a.person_id, min(a.at) AS first_activity_at FROM acts a GROUP BY a.person_id
), base AS (
    SELECT p.id AS person_id, p.name, p.team,
           coalesce(p.started_at, f.first_activity_at) AS started_at,
           p.started_at IS NOT NULL AS start_known
    FROM engineering.people p
    LEFT JOIN first_seen f ON f.person_id = p.id
), since_start AS (
    SELECT a.*, b.started_at,
           row_number() OVER (PARTITION BY a.person_id, a.activity, a.merged_at IS NOT NULL
                              ORDER BY a.merged_at, a.activity_id) AS merge_rank
    FROM acts a JOIN base b ON b.person_id = a.person_id AND a.at >= b.started_at
), firsts AS (
    SELECT s.person_id,
           min(s.at) FILTER (WHERE s.activity = 'commit') AS first_commit_at,
           min(s.at) FILTER (WHERE s.activity = 'pull_request') AS first_pr_opened_at,
           min(s.merged_at) FILTER (WHERE s.activity = 'pull_request') AS first_pr_merged_at,
           min(s.merged_at) FILTER (WHERE s.activity = 'pull_request' AND s.merged_at IS NOT NULL
                                    AND s.merge_rank = 10) AS tenth_pr_merged_at
    FROM since_start s
    GROUP BY s.person_id
), deploys AS (
    SELECT s.person_id, min(d.finished_at) AS first_production_deploy_at
    FROM since_start s
    JOIN engineering.deployment_changes dc ON dc.change_id = s.activity_id
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE s.activity = 'commit' AND d.status = 'success'
      AND d.environment = (SELECT production_environment FROM engineering.dora_settings)
    GROUP BY s.person_id
)
SELECT b.person_id, b.name, b.team, b.started_at, b.start_known,
       f.first_commit_at, f.first_pr_opened_at, f.first_pr_merged_at,
       d.first_production_deploy_at, f.tenth_pr_merged_at,
       f.first_commit_at - b.started_at AS time_to_first_commit,
       f.first_pr_opened_at - b.started_at AS time_to_first_pr,
       f.first_pr_merged_at - b.started_at AS time_to_first_merge,
       d.first_production_deploy_at - b.started_at AS time_to_first_deploy,
       f.tenth_pr_merged_at - b.started_at AS time_to_tenth_pr
FROM base b
LEFT JOIN firsts f ON f.person_id = b.person_id
LEFT JOIN deploys d ON d.person_id = b.person_id;

COMMENT ON VIEW engineering.onboarding IS
    'one row per person: start, first commit, pull request, merge and production deployment, tenth merged pull request, and the time from the start to each (only activity from the start counts)';
COMMENT ON COLUMN engineering.onboarding.person_id IS 'the person (people.id)';
COMMENT ON COLUMN engineering.onboarding.name IS 'the person''s name';
COMMENT ON COLUMN engineering.onboarding.team IS 'the person''s team';
COMMENT ON COLUMN engineering.onboarding.started_at IS 'people.started_at when known, else the person''s first commit or pull request';
COMMENT ON COLUMN engineering.onboarding.start_known IS 'true when started_at is the recorded start date, false when it is the first activity';
COMMENT ON COLUMN engineering.onboarding.first_commit_at IS 'author date of the person''s first commit from the start';
COMMENT ON COLUMN engineering.onboarding.first_pr_opened_at IS 'when the person''s first pull request (opened from the start) was opened';
COMMENT ON COLUMN engineering.onboarding.first_pr_merged_at IS 'the first merge of a pull request the person opened from the start';
COMMENT ON COLUMN engineering.onboarding.first_production_deploy_at IS
    'the first successful deployment to the production environment (dora_settings) that shipped a commit of the person''s from the start';
COMMENT ON COLUMN engineering.onboarding.tenth_pr_merged_at IS 'when the tenth of the person''s pull requests (opened from the start) was merged, in order of merging';
COMMENT ON COLUMN engineering.onboarding.time_to_first_commit IS 'first_commit_at - started_at';
COMMENT ON COLUMN engineering.onboarding.time_to_first_pr IS 'first_pr_opened_at - started_at: time to first pull request';
COMMENT ON COLUMN engineering.onboarding.time_to_first_merge IS 'first_pr_merged_at - started_at';
COMMENT ON COLUMN engineering.onboarding.time_to_first_deploy IS 'first_production_deploy_at - started_at: time to first production deployment';
COMMENT ON COLUMN engineering.onboarding.time_to_tenth_pr IS 'tenth_pr_merged_at - started_at: "time to 10th PR"';

-- The milestones in report order, with the onboarding column each reads.
CREATE FUNCTION engineering._onboarding_milestones()
RETURNS TABLE (ord integer, milestone text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES (1, 'first_commit'), (2, 'first_pr'), (3, 'first_merge'), (4, 'first_deploy'), (5, 'tenth_pr')
$$;
COMMENT ON FUNCTION engineering._onboarding_milestones() IS
    'internal: the onboarding milestones in report order';

-- A person who has not reached a milestone is counted as slower than
-- everyone who has: the aggregate is fed a far-future end for them (a
-- thousand years after the start), and a percentile whose ranks reach one
-- of them is NULL.  So a median exists once the people at its ranks have
-- all reached the milestone: for an odd cohort as soon as half of it (the
-- middle person) has, for an even one once more than half have.
CREATE FUNCTION engineering.onboarding_cohorts(from_ts timestamptz, to_ts timestamptz,
                                               step interval DEFAULT '1 month')
RETURNS TABLE (cohort_start timestamptz, cohort_end timestamptz, team text, milestone text,
               people bigint, reached bigint, not_reached bigint, median interval, p90 interval)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
#variable_conflict use_column
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR step IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'onboarding_cohorts needs finite from_ts, to_ts and a step' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts >= to_ts THEN
        RAISE EXCEPTION 'onboarding_cohorts: from_ts % is not before to_ts %', from_ts, to_ts
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts + step <= from_ts THEN
        RAISE EXCEPTION 'onboarding_cohorts: step % must be positive', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH cohorts AS (
        SELECT c AS c_start, least(c + step, to_ts) AS c_end
        FROM generate_series(from_ts, to_ts, step) c
        WHERE c < to_ts
    ), members AS (
        SELECT k.c_start, k.c_end, coalesce(o.team, '(no team)') AS team, o.started_at, m.ord, m.milestone,
               CASE m.milestone
                   WHEN 'first_commit' THEN o.first_commit_at
                   WHEN 'first_pr' THEN o.first_pr_opened_at
                   WHEN 'first_merge' THEN o.first_pr_merged_at
                   WHEN 'first_deploy' THEN o.first_production_deploy_at
                   WHEN 'tenth_pr' THEN o.tenth_pr_merged_at
               END AS reached_at
        FROM engineering.onboarding o
        JOIN cohorts k ON o.started_at >= k.c_start AND o.started_at < k.c_end
        CROSS JOIN engineering._onboarding_milestones() m
        WHERE o.start_known
    ), groups AS (
        SELECT m.c_start, m.c_end, CASE WHEN grouping(m.team) = 0 THEN m.team END AS team,
               m.ord, m.milestone,
               count(*) AS n, count(m.reached_at) AS r,
               engineering.lead_time(m.started_at, coalesce(m.reached_at, m.started_at + interval '1000 years'), 0.5) AS med,
               engineering.lead_time(m.started_at, coalesce(m.reached_at, m.started_at + interval '1000 years'), 0.9) AS p90
        FROM members m
        GROUP BY GROUPING SETS ((m.c_start, m.c_end, m.ord, m.milestone, m.team), (m.c_start, m.c_end, m.ord, m.milestone))
    )
    SELECT g.c_start, g.c_end, g.team, g.milestone, g.n, g.r, g.n - g.r,
           CASE WHEN ceil(0.5::float8 * (g.n - 1)) < g.r THEN g.med END,
           CASE WHEN ceil(0.9::float8 * (g.n - 1)) < g.r THEN g.p90 END
    FROM groups g
    ORDER BY g.c_start, g.team NULLS FIRST, g.ord;
END
$$;
COMMENT ON FUNCTION engineering.onboarding_cohorts(timestamptz, timestamptz, interval) IS
    'per start cohort [from_ts + k*step, +step) and per team (team NULL: all teams), for each onboarding milestone: people with a known start, how many reached it, how many not yet, and the interpolated median and p90 of the time to it (NULL while a rank falls on someone who has not reached it)';

-- engineering_metrics: developer satisfaction surveys.
--
-- Responses are kept under pseudonyms and read only by admins; everyone
-- else sees them through survey_results(), which runs as the extension's
-- owner and never shows a group with fewer than min_group_size respondents
-- (nor a group whose figures could be derived from the total and the
-- groups shown).

CREATE TABLE engineering.surveys (
    name            text PRIMARY KEY
                    CHECK (btrim(name) <> '' OR engineering._reject_value('surveys.name', name, 'a survey needs a non-empty name')),
    opened_at       timestamptz NOT NULL,
    closed_at       timestamptz,
    description     text,
    CONSTRAINT surveys_closed_after_opened
        CHECK (closed_at >= opened_at OR closed_at IS NULL
               OR engineering._reject_order('surveys.closed_at', closed_at, 'opened_at', opened_at))
);
COMMENT ON TABLE engineering.surveys IS 'developer surveys: one row per survey run (e.g. one per quarter)';
COMMENT ON COLUMN engineering.surveys.name IS 'unique name, e.g. 2024-q2';
COMMENT ON COLUMN engineering.surveys.opened_at IS 'when the survey opened; orders surveys in survey_trend()';
COMMENT ON COLUMN engineering.surveys.closed_at IS 'when it closed; NULL while open.  Group sizes count the people here at some point between opened_at and closed_at';
COMMENT ON COLUMN engineering.surveys.description IS 'free text';

CREATE TABLE engineering.survey_questions (
    survey          text NOT NULL REFERENCES engineering.surveys (name) ON UPDATE CASCADE ON DELETE CASCADE,
    question        text NOT NULL
                    CHECK (btrim(question) <> '' OR engineering._reject_value('survey_questions.question', question, 'a question needs a non-empty key')),
    kind            text NOT NULL
                    CHECK (kind IN ('likert5', 'likert7', 'nps', 'csat5')
                           OR engineering._reject_value('survey_questions.kind', kind, 'expected likert5, likert7, nps or csat5')),
    text            text,
    PRIMARY KEY (survey, question)
);
COMMENT ON TABLE engineering.survey_questions IS
    'the questions of each survey; the same question key in several surveys is what survey_trend() follows';
COMMENT ON COLUMN engineering.survey_questions.survey IS 'the survey';
COMMENT ON COLUMN engineering.survey_questions.question IS 'a stable key for the question (e.g. satisfaction, ease_of_deploy), the same across surveys';
COMMENT ON COLUMN engineering.survey_questions.kind IS
    'the scale: likert5 (1-5), likert7 (1-7), csat5 (1-5), nps (0-10, "how likely are you to recommend")';
COMMENT ON COLUMN engineering.survey_questions.text IS 'the wording shown to respondents';

CREATE TABLE engineering.survey_responses (
    survey          text NOT NULL,
    question        text NOT NULL,
    respondent      text NOT NULL
                    CHECK ((btrim(respondent) <> '' AND respondent !~ '@')
                           OR engineering._reject_value('survey_responses.respondent', respondent,
                                                        'a non-empty pseudonym, not an e-mail address (store e.g. a salted hash)')),
    team            text,
    answered_at     timestamptz,
    score           integer NOT NULL,
    attributes      jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(attributes) = 'object'
                           OR engineering._reject_value('survey_responses.attributes', attributes::text, 'attributes must be a JSON object')),
    PRIMARY KEY (survey, question, respondent),
    FOREIGN KEY (survey, question) REFERENCES engineering.survey_questions (survey, question)
        ON UPDATE CASCADE ON DELETE CASCADE
);
COMMENT ON TABLE engineering.survey_responses IS
    'raw answers, one per respondent and question, under a pseudonym; readable by admins only (others use survey_results)';
COMMENT ON COLUMN engineering.survey_responses.survey IS 'the survey';
COMMENT ON COLUMN engineering.survey_responses.question IS 'the question key';
COMMENT ON COLUMN engineering.survey_responses.respondent IS 'a pseudonym the survey tool gives each respondent (never a name or an e-mail)';
COMMENT ON COLUMN engineering.survey_responses.team IS 'the respondent''s team as the survey tool recorded it; NULL when not asked';
COMMENT ON COLUMN engineering.survey_responses.answered_at IS 'when the answer was submitted';
COMMENT ON COLUMN engineering.survey_responses.score IS 'the answer on the question''s scale; a score outside it is refused';
COMMENT ON COLUMN engineering.survey_responses.attributes IS
    'other demographics the survey tool recorded (role, tenure, ...) as a JSON object; survey_results can group by its keys';

SELECT pg_catalog.pg_extension_config_dump('engineering.surveys', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.survey_questions', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.survey_responses', '');

CREATE FUNCTION engineering.survey_scale(kind text, OUT low integer, OUT high integer, OUT favorable_from integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT v.low, v.high, v.favorable_from
    FROM (VALUES ('likert5', 1, 5, 4), ('likert7', 1, 7, 6), ('csat5', 1, 5, 4), ('nps', 0, 10, 9))
         AS v(kind, low, high, favorable_from)
    WHERE v.kind = survey_scale.kind
$$;
COMMENT ON FUNCTION engineering.survey_scale(text) IS
    'the scale of a question kind: lowest and highest score, and the lowest favorable score (the top two boxes; for nps the promoters, 9 and 10)';

CREATE FUNCTION engineering._check_survey_score()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    q_kind text;
    s record;
BEGIN
    SELECT q.kind INTO q_kind FROM engineering.survey_questions q
    WHERE q.survey = NEW.survey AND q.question = NEW.question;
    IF NOT FOUND THEN
        RETURN NEW;   -- the foreign key reports it
    END IF;
    s := engineering.survey_scale(q_kind);
    IF NEW.score < s.low OR NEW.score > s.high THEN
        RAISE EXCEPTION 'survey_responses.score: % is outside the scale of question "%" of survey "%"',
                        NEW.score, NEW.question, NEW.survey
              USING ERRCODE = 'check_violation',
                    DETAIL = format('%s questions are answered from %s to %s (respondent %s)', q_kind, s.low, s.high, NEW.respondent);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._check_survey_score() IS
    'internal trigger: refuses a survey response whose score is outside its question''s scale';
CREATE TRIGGER survey_responses_score_in_scale BEFORE INSERT OR UPDATE ON engineering.survey_responses
    FOR EACH ROW EXECUTE FUNCTION engineering._check_survey_score();

CREATE FUNCTION engineering._check_survey_question_kind()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    s record;
    bad integer;
BEGIN
    s := engineering.survey_scale(NEW.kind);
    SELECT r.score INTO bad FROM engineering.survey_responses r
    WHERE r.survey = OLD.survey AND r.question = OLD.question AND (r.score < s.low OR r.score > s.high)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'survey_questions.kind: question "%" of survey "%" has a response scored %, outside the % scale',
                        OLD.question, OLD.survey, bad, NEW.kind
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._check_survey_question_kind() IS
    'internal trigger: refuses changing a question''s kind to a scale its responses do not fit';
CREATE TRIGGER survey_questions_kind_fits_responses BEFORE UPDATE OF kind ON engineering.survey_questions
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION engineering._check_survey_question_kind();

-- Typeform's Responses API (GET /forms/{form_id}/responses) is the survey
-- export with a stable, documented JSON shape that developer surveys most
-- often come from: {"items": [{"token", "submitted_at", "hidden": {...},
-- "answers": [{"field": {"ref", "type"}, "type": "number", "number": 8}]}]}.
-- Numeric answers (opinion scale, rating, NPS fields) become responses; the
-- question key is the field's ref (or question_map->>ref), the respondent
-- the response token, the team and other demographics its hidden fields.
CREATE FUNCTION engineering.import_typeform_responses(survey text, payload jsonb,
                                                      question_map jsonb DEFAULT '{}',
                                                      team_field text DEFAULT 'team')
RETURNS TABLE (imported bigint, skipped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
#variable_conflict use_column
DECLARE
    items jsonb := payload -> 'items';
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'import_typeform_responses: expected a Typeform responses page, a JSON object with an "items" array'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(question_map) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'import_typeform_responses: question_map must be a JSON object {"field ref": "question"}'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.surveys s WHERE s.name = import_typeform_responses.survey) THEN
        RAISE EXCEPTION 'import_typeform_responses: no survey named "%"', import_typeform_responses.survey
              USING ERRCODE = 'invalid_parameter_value', HINT = 'INSERT INTO engineering.surveys and survey_questions first';
    END IF;
    RETURN QUERY
    WITH answers AS (
        SELECT coalesce(question_map ->> (a -> 'field' ->> 'ref'), a -> 'field' ->> 'ref') AS question,
               coalesce(i ->> 'token', i ->> 'response_id') AS respondent,
               i -> 'hidden' ->> team_field AS team,
               engineering._ts(i -> 'submitted_at') AS answered_at,
               CASE WHEN a ->> 'type' = 'number' AND jsonb_typeof(a -> 'number') = 'number'
                    THEN (a ->> 'number')::numeric END AS score,
               coalesce(i -> 'hidden', '{}') - team_field AS attributes
        FROM jsonb_array_elements(items) i, jsonb_array_elements(coalesce(i -> 'answers', '[]')) a
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(a) = 'object'
    ), usable AS (
        SELECT a.* FROM answers a
        WHERE a.score IS NOT NULL AND a.score = trunc(a.score) AND a.respondent IS NOT NULL
          AND EXISTS (SELECT 1 FROM engineering.survey_questions q
                      WHERE q.survey = import_typeform_responses.survey AND q.question = a.question)
    ), stored AS (
        INSERT INTO engineering.survey_responses AS r (survey, question, respondent, team, answered_at, score, attributes)
        SELECT import_typeform_responses.survey, u.question, u.respondent, u.team, u.answered_at, u.score::integer,
               CASE WHEN jsonb_typeof(u.attributes) = 'object' THEN u.attributes ELSE '{}' END
        FROM usable u
        ON CONFLICT (survey, question, respondent) DO UPDATE
            SET team = EXCLUDED.team, answered_at = EXCLUDED.answered_at,
                score = EXCLUDED.score, attributes = EXCLUDED.attributes
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM answers) - (SELECT count(*) FROM stored);
END
$$;
COMMENT ON FUNCTION engineering.import_typeform_responses(text, jsonb, jsonb, text) IS
    'imports a page of Typeform''s Responses API into survey_responses (numeric answers to the survey''s questions, keyed by field ref; respondent = response token; team and attributes from hidden fields); idempotent; returns how many answers were stored and skipped';

-- Student's t quantile for a two-sided 95% interval: the table up to 30
-- degrees of freedom, then the Cornish-Fisher expansion (error below 1e-6).
CREATE FUNCTION engineering._t_975(df integer)
RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN df IS NULL OR df < 1 THEN NULL
        WHEN df <= 30 THEN (ARRAY[12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624,
                                  2.306004, 2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787,
                                  2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963, 2.079614,
                                  2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407,
                                  2.045230, 2.042272]::float8[])[df]
        ELSE z + (z^3 + z) / 4 / df
               + (5 * z^5 + 16 * z^3 + 3 * z) / 96 / df^2
               + (3 * z^7 + 19 * z^5 + 17 * z^3 - 15 * z) / 384 / df^3
               + (79 * z^9 + 776 * z^7 + 1482 * z^5 - 1920 * z^3 - 945 * z) / 92160 / df^4
    END
    FROM (SELECT 1.959963984540054::float8 AS z) c
$$;
COMMENT ON FUNCTION engineering._t_975(integer) IS
    'internal: the 97.5% quantile of Student''s t with df degrees of freedom (two-sided 95% intervals)';

CREATE FUNCTION engineering.survey_results(survey text, group_by text DEFAULT NULL, min_group_size integer DEFAULT 5)
RETURNS TABLE (question text, kind text, group_value text,
               respondents bigint, group_size bigint, response_rate float8,
               mean float8, mean_ci_low float8, mean_ci_high float8,
               favorable_rate float8, nps float8, nps_ci_low float8, nps_ci_high float8,
               suppressed boolean, note text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    s engineering.surveys;
BEGIN
    IF min_group_size IS NULL OR min_group_size < 3 THEN
        RAISE EXCEPTION 'survey_results: min_group_size % is below 3', coalesce(min_group_size::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'groups smaller than 3 would show individual answers';
    END IF;
    SELECT * INTO s FROM engineering.surveys v WHERE v.name = survey_results.survey;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'survey_results: no survey named "%"', survey_results.survey USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF group_by IS NOT NULL AND btrim(group_by) = '' THEN
        RAISE EXCEPTION 'survey_results: group_by must be NULL, team or an attribute key' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH answers AS (
        SELECT r.question, q.kind, r.score, sc.favorable_from,
               CASE WHEN group_by IS NULL THEN NULL
                    WHEN group_by = 'team' THEN coalesce(r.team, '(none)')
                    ELSE coalesce(r.attributes ->> group_by, '(none)') END AS grp
        FROM engineering.survey_responses r
        JOIN engineering.survey_questions q ON q.survey = r.survey AND q.question = r.question
        CROSS JOIN LATERAL engineering.survey_scale(q.kind) sc
        WHERE r.survey = s.name
    ), members AS (
        -- the people here at some point while the survey was open
        SELECT CASE WHEN group_by = 'team' THEN coalesce(p.team, '(none)')
                    ELSE coalesce(p.attributes ->> group_by, '(none)') END AS grp
        FROM engineering.people p
        WHERE (p.started_at IS NULL OR p.started_at <= coalesce(s.closed_at, s.opened_at))
          AND (p.left_at IS NULL OR p.left_at > s.opened_at)
    ), sizes AS (
        SELECT m.grp, count(*) AS n FROM members m GROUP BY GROUPING SETS ((m.grp), ())
    ), figures AS (
        SELECT a.question, a.kind,
               grouping(a.grp) = 1 AS is_total,
               CASE WHEN grouping(a.grp) = 0 THEN a.grp END AS grp,
               count(*) AS n,
               avg(a.score)::float8 AS mean,
               stddev_samp(a.score)::float8 AS sd,
               (count(*) FILTER (WHERE a.score >= a.favorable_from))::float8 / count(*) AS favorable,
               (count(*) FILTER (WHERE a.score >= 9))::float8 / count(*) AS promoters,
               (count(*) FILTER (WHERE a.score <= 6))::float8 / count(*) AS detractors
        FROM answers a
        GROUP BY GROUPING SETS ((a.question, a.kind, a.grp), (a.question, a.kind))
    ), primary_cut AS (
        SELECT f.*, f.n < min_group_size AS small FROM figures f
        -- without group_by both grouping sets are the same rows: keep one
        WHERE group_by IS NOT NULL OR f.is_total
    ), secondary_cut AS (
        -- One small group hidden next to a total shown is no protection: the
        -- total and the other groups give it away.  Then the smallest group
        -- shown is hidden too.
        SELECT p.*,
               (NOT p.small AND NOT p.is_total
                AND (SELECT count(*) FROM primary_cut x WHERE x.question = p.question AND NOT x.is_total AND x.small) = 1
                AND p.grp = (SELECT x.grp FROM primary_cut x
                             WHERE x.question = p.question AND NOT x.is_total AND NOT x.small
                             ORDER BY x.n, x.grp LIMIT 1)) AS hidden_too
        FROM primary_cut p
    )
    SELECT c.question, c.kind, c.grp,
           CASE WHEN hide THEN NULL ELSE c.n END,
           CASE WHEN hide THEN NULL ELSE z.n END,
           CASE WHEN hide OR coalesce(z.n, 0) = 0 THEN NULL ELSE c.n::float8 / z.n END,
           CASE WHEN hide THEN NULL ELSE c.mean END,
           CASE WHEN hide THEN NULL ELSE c.mean - engineering._t_975((c.n - 1)::integer) * c.sd / sqrt(c.n) END,
           CASE WHEN hide THEN NULL ELSE c.mean + engineering._t_975((c.n - 1)::integer) * c.sd / sqrt(c.n) END,
           CASE WHEN hide THEN NULL ELSE c.favorable END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL ELSE 100 * (c.promoters - c.detractors) END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL
                ELSE 100 * (c.promoters - c.detractors
                            - 1.959963984540054 * sqrt((c.promoters + c.detractors - (c.promoters - c.detractors)^2) / c.n)) END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL
                ELSE 100 * (c.promoters - c.detractors
                            + 1.959963984540054 * sqrt((c.promoters + c.detractors - (c.promoters - c.detractors)^2) / c.n)) END,
           hide,
           CASE WHEN c.small THEN format('suppressed: fewer than %s respondents', min_group_size)
                WHEN c.hidden_too THEN 'suppressed: it would reveal a smaller suppressed group through the total' END
    FROM secondary_cut c
    CROSS JOIN LATERAL (SELECT c.small OR c.hidden_too AS hide) h
    LEFT JOIN sizes z ON (z.grp IS NULL AND c.is_total) OR z.grp = c.grp
    ORDER BY c.question, c.grp NULLS FIRST;
END
$$;
COMMENT ON FUNCTION engineering.survey_results(text, text, integer) IS
    'per question and group (group_by: NULL, team, or a key of the responses'' and people''s attributes; group NULL: everyone): respondents, response rate against the group in people, mean with its 95% t interval, favorable rate (top two boxes), NPS with its 95% interval; a group below min_group_size (at least 3) is suppressed, and so is the smallest other group when only one would be';

CREATE FUNCTION engineering.survey_trend(question text, group_by text DEFAULT NULL, min_group_size integer DEFAULT 5)
RETURNS TABLE (survey text, opened_at timestamptz, group_value text, respondents bigint, figure text,
               value float8, ci_low float8, ci_high float8, previous_value float8, change float8,
               change_margin float8, exceeds_ci boolean, suppressed boolean)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH per_survey AS (
        SELECT s.name, s.opened_at, r.group_value, r.respondents, r.suppressed,
               CASE WHEN r.kind = 'nps' THEN 'nps' ELSE 'mean' END AS figure,
               CASE WHEN r.kind = 'nps' THEN r.nps ELSE r.mean END AS value,
               CASE WHEN r.kind = 'nps' THEN r.nps_ci_low ELSE r.mean_ci_low END AS ci_low,
               CASE WHEN r.kind = 'nps' THEN r.nps_ci_high ELSE r.mean_ci_high END AS ci_high
        FROM engineering.surveys s
        JOIN engineering.survey_questions q ON q.survey = s.name AND q.question = survey_trend.question
        CROSS JOIN LATERAL engineering.survey_results(s.name, survey_trend.group_by, survey_trend.min_group_size) r
        WHERE r.question = survey_trend.question
    ), with_previous AS (
        SELECT p.*,
               lag(p.value) OVER w AS prev_value,
               lag((p.ci_high - p.ci_low) / 2) OVER w AS prev_margin
        FROM per_survey p
        WINDOW w AS (PARTITION BY p.group_value ORDER BY p.opened_at, p.name)
    )
    SELECT w.name, w.opened_at, w.group_value, w.respondents, w.figure, w.value, w.ci_low, w.ci_high,
           w.prev_value, w.value - w.prev_value,
           sqrt(w.prev_margin^2 + ((w.ci_high - w.ci_low) / 2)^2),
           abs(w.value - w.prev_value) > sqrt(w.prev_margin^2 + ((w.ci_high - w.ci_low) / 2)^2),
           w.suppressed
    FROM with_previous w
    ORDER BY w.group_value NULLS FIRST, w.opened_at, w.name
$$;
COMMENT ON FUNCTION engineering.survey_trend(text, text, integer) IS
    'one question across the surveys that asked it, per group: the figure (mean, or NPS for nps questions) with its 95% interval, the change from the previous survey and whether it exceeds the combined margin sqrt(previous margin^2 + margin^2); suppression as in survey_results';

-- engineering_metrics: the platform report, "where does my team stand?".
--
-- The three platform-engineering measurements (golden-path adoption,
-- onboarding time, developer satisfaction) next to the DORA keys and SLO
-- budgets of each team's services, each graded with the reason for its
-- grade.  DORA keys are graded by dora_benchmarks; the other measures by
-- platform_thresholds, which ships defaults of ours (no published standard
-- grades them) for admins to replace.

CREATE TABLE engineering.service_teams (
    service         text PRIMARY KEY
                    CHECK (btrim(service) <> '' OR engineering._reject_value('service_teams.service', service, 'service must not be empty')),
    team            text NOT NULL
                    CHECK (btrim(team) <> '' OR engineering._reject_value('service_teams.team', team, 'team must not be empty'))
);
COMMENT ON TABLE engineering.service_teams IS
    'which team owns a service, for services no catalog describes (a catalog owner, when there is one, is used as well)';
COMMENT ON COLUMN engineering.service_teams.service IS 'the service, as the event tables name it';
COMMENT ON COLUMN engineering.service_teams.team IS 'the owning team, as people.team names it';

CREATE TABLE engineering.platform_thresholds (
    measure         text PRIMARY KEY
                    CHECK (measure IN ('golden_path_adoption', 'slo_budget_remaining', 'time_to_first_pr', 'time_to_first_deploy',
                                       'time_to_tenth_pr', 'favorable_rate', 'nps')
                           OR engineering._reject_value('platform_thresholds.measure', measure,
                                                        'expected golden_path_adoption, slo_budget_remaining, time_to_first_pr, time_to_first_deploy, time_to_tenth_pr, favorable_rate or nps')),
    higher_is_better boolean NOT NULL,
    good            float8 NOT NULL,
    fair            float8 NOT NULL,
    description     text,
    CONSTRAINT platform_thresholds_ordered
        CHECK (CASE WHEN higher_is_better THEN good >= fair ELSE good <= fair END
               OR engineering._reject_value('platform_thresholds.fair', fair::text, 'fair must be on the worse side of good'))
);
COMMENT ON TABLE engineering.platform_thresholds IS
    'grades of the platform report''s non-DORA measures: good when the figure reaches good, fair when it reaches fair, else poor; durations in seconds, rates 0 to 1, NPS in points.  Our defaults: edit them';
COMMENT ON COLUMN engineering.platform_thresholds.measure IS 'the measure of platform_report() it grades';
COMMENT ON COLUMN engineering.platform_thresholds.higher_is_better IS 'true: good means at least good; false: at most good';
COMMENT ON COLUMN engineering.platform_thresholds.good IS 'the bound of the grade good (seconds for durations)';
COMMENT ON COLUMN engineering.platform_thresholds.fair IS 'the bound of the grade fair (seconds for durations)';
COMMENT ON COLUMN engineering.platform_thresholds.description IS 'why these bounds';

INSERT INTO engineering.platform_thresholds (measure, higher_is_better, good, fair, description) VALUES
    ('golden_path_adoption', true, 0.8, 0.5, 'share of eligible services on a golden path'),
    ('slo_budget_remaining', true, 0.25, 0, 'the worst error budget left among the team''s SLOs at the end of the window'),
    ('time_to_first_pr', false, 7 * 86400, 14 * 86400, 'a first pull request within the first week'),
    ('time_to_first_deploy', false, 14 * 86400, 30 * 86400, 'something in production within two weeks'),
    ('time_to_tenth_pr', false, 30 * 86400, 60 * 86400, 'ten merged pull requests within the first month'),
    ('favorable_rate', true, 0.7, 0.5, 'mean share of favorable answers (top two boxes) over the survey''s questions'),
    ('nps', true, 30, 0, 'net promoter score of the platform, in points');

CREATE FUNCTION engineering._platform_thresholds_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.platform_thresholds
       SET higher_is_better = NEW.higher_is_better, good = NEW.good, fair = NEW.fair, description = NEW.description
     WHERE measure = NEW.measure;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._platform_thresholds_restore() IS
    'internal trigger: an inserted platform_thresholds row whose measure exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER platform_thresholds_restore BEFORE INSERT ON engineering.platform_thresholds
    FOR EACH ROW EXECUTE FUNCTION engineering._platform_thresholds_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.service_teams', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.platform_thresholds', '');

-- An admin's service_teams row wins over the catalog: it exists to correct
-- or complete what the catalog says.
CREATE VIEW engineering.team_services AS
SELECT st.team, st.service, 'service_teams'::text AS known_from
FROM engineering.service_teams st
UNION ALL
SELECT DISTINCT c.team, c.service, 'catalog'
FROM engineering.catalog_services() c
WHERE c.team IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM engineering.service_teams st WHERE st.service = c.service);
COMMENT ON VIEW engineering.team_services IS 'the services of each team, as the platform report groups them: service_teams, and the owners of the catalog''s live components for services it does not list';
COMMENT ON COLUMN engineering.team_services.team IS 'the team';
COMMENT ON COLUMN engineering.team_services.service IS 'one of its services';
COMMENT ON COLUMN engineering.team_services.known_from IS 'where the ownership comes from: service_teams, else catalog (the owning group of the live component, catalog_services())';

CREATE FUNCTION engineering._platform_grade(measure text, value float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value IS NULL THEN NULL
        WHEN t.higher_is_better AND value >= t.good OR NOT t.higher_is_better AND value <= t.good THEN 'good'
        WHEN t.higher_is_better AND value >= t.fair OR NOT t.higher_is_better AND value <= t.fair THEN 'fair'
        ELSE 'poor'
    END
    FROM engineering.platform_thresholds t WHERE t.measure = _platform_grade.measure
$$;
COMMENT ON FUNCTION engineering._platform_grade(text, float8) IS
    'internal: good, fair or poor for a figure of the platform report, by platform_thresholds';

CREATE FUNCTION engineering._platform_bounds(measure text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT format('good %s %s, fair %s %s',
                  CASE WHEN t.higher_is_better THEN 'from' ELSE 'up to' END,
                  CASE WHEN t.measure LIKE 'time\_%' THEN justify_hours(t.good * interval '1 second')::text
                       WHEN t.measure = 'nps' THEN t.good::text
                       ELSE round(100 * t.good::numeric, 1) || '%' END,
                  CASE WHEN t.higher_is_better THEN 'from' ELSE 'up to' END,
                  CASE WHEN t.measure LIKE 'time\_%' THEN justify_hours(t.fair * interval '1 second')::text
                       WHEN t.measure = 'nps' THEN t.fair::text
                       ELSE round(100 * t.fair::numeric, 1) || '%' END)
    FROM engineering.platform_thresholds t WHERE t.measure = _platform_bounds.measure
$$;
COMMENT ON FUNCTION engineering._platform_bounds(text) IS
    'internal: the bounds of a platform report measure''s grades, in words (good up to 7 days, fair up to 14 days)';

-- Golden-path adoption per team, from the service catalog and the golden
-- paths (platform engineering part 1) with golden_path_adoption()'s
-- definitions: the eligible services are the catalog's eligible live
-- components, grouped by their owning team; without eligible components
-- there is nothing to count and the report says so.
CREATE FUNCTION engineering._platform_adoption(at timestamptz)
RETURNS TABLE (team text, adopted bigint, eligible bigint, detail text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH eligible AS (
        SELECT DISTINCT c.team, c.service FROM engineering.catalog_services(at) c WHERE c.eligible
    ), on_path AS (
        SELECT DISTINCT g.service FROM engineering.golden_path_services(at) g
    ), per_service AS (
        SELECT e.team, e.service, o.service IS NOT NULL AS adopted
        FROM eligible e LEFT JOIN on_path o ON o.service = e.service
    )
    SELECT CASE WHEN grouping(p.team) = 0 THEN p.team END,
           count(DISTINCT p.service) FILTER (WHERE p.adopted),
           count(DISTINCT p.service),
           CASE WHEN NOT EXISTS (SELECT 1 FROM engineering.golden_paths) THEN 'no golden paths defined yet'
                ELSE 'off every path: ' || coalesce(string_agg(DISTINCT p.service, ', ') FILTER (WHERE NOT p.adopted), 'none') END
    FROM per_service p
    GROUP BY GROUPING SETS ((p.team), ())
    HAVING grouping(p.team) = 1 OR p.team IS NOT NULL
$$;
COMMENT ON FUNCTION engineering._platform_adoption(timestamptz) IS
    'internal: golden-path adoption per team at a time (team NULL: all teams): adopted and eligible services, and which';

CREATE FUNCTION engineering.platform_report(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (team text, area text, measure text, value float8, unit text, grade text, reason text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the plan's cost estimate (a dora() per service) triggers JIT, whose
-- compilation took 30 times as long as the report on the demo's data
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    latest text;
    bench_year integer;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts > to_ts THEN
        RAISE EXCEPTION 'platform_report needs finite from_ts <= to_ts' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.name INTO latest FROM engineering.surveys s
    WHERE s.opened_at < to_ts ORDER BY s.opened_at DESC, s.name DESC LIMIT 1;
    SELECT benchmark_year INTO bench_year FROM engineering.dora_settings;
    RETURN QUERY
    WITH teams AS (
        SELECT DISTINCT t AS team FROM (
            SELECT p.team AS t FROM engineering.people p
            WHERE p.team IS NOT NULL AND (p.left_at IS NULL OR p.left_at > from_ts)
            UNION SELECT ts.team FROM engineering.team_services ts) x
    ), scopes AS (
        SELECT t.team FROM teams t UNION ALL SELECT NULL
    ),
    -- delivery: each DORA key of the team, graded by its worst service
    dora_rows AS (
        SELECT ts.team, d.*
        FROM engineering.team_services ts
        CROSS JOIN LATERAL engineering.dora(from_ts, to_ts, ts.service) d
        UNION ALL
        SELECT NULL, d.* FROM engineering.dora(from_ts, to_ts) d WHERE d.service IS NULL
    ), dora_keys AS (
        SELECT r.team, r.service, k.ord, k.measure, k.unit, k.value, k.level,
               (SELECT b.rank FROM engineering.dora_benchmarks b
                WHERE b.report_year = bench_year AND b.metric = k.metric AND b.level = k.level) AS rank,
               (SELECT max(b.rank) FROM engineering.dora_benchmarks b
                WHERE b.report_year = bench_year AND b.metric = k.metric) AS lowest
        FROM dora_rows r
        CROSS JOIN LATERAL (VALUES
            (1, 'deployment_frequency', 'deployment frequency', 'deployment days/week', r.deployment_days_per_week, r.deployment_frequency_level),
            (2, 'lead_time', 'lead time for changes', 'seconds', extract(epoch FROM r.lead_time)::float8, r.lead_time_level),
            (3, 'change_failure_rate', 'change failure rate', 'ratio', r.change_failure_rate, r.change_failure_rate_level),
            (4, 'time_to_restore', 'time to restore', 'seconds', extract(epoch FROM r.time_to_restore)::float8, r.time_to_restore_level),
            (4, 'failed_deployment_recovery_time', 'failed deployment recovery time', 'seconds',
             extract(epoch FROM r.failed_deployment_recovery_time)::float8, r.failed_deployment_recovery_time_level))
            AS k(ord, metric, measure, unit, value, level)
        -- the recovery key the benchmark year grades: time to restore (2021)
        -- or failed deployment recovery time (2023)
        WHERE EXISTS (SELECT 1 FROM engineering.dora_benchmarks b
                      WHERE b.report_year = bench_year AND b.metric = k.metric)
    ), dora_team AS (
        SELECT DISTINCT ON (k.team, k.ord) k.team, k.ord, k.measure, k.unit, k.value, k.level,
               CASE WHEN k.rank IS NULL THEN NULL WHEN k.rank <= 2 THEN 'good' WHEN k.rank >= k.lowest THEN 'poor' ELSE 'fair' END AS grade,
               coalesce('level ' || k.level, 'no data')
               || CASE WHEN k.team IS NULL THEN ', all services together'
                       ELSE (SELECT ' (' || string_agg(x.service || ' ' || coalesce(x.level, 'no data'), ', ' ORDER BY x.service) || ')'
                             FROM dora_keys x WHERE x.team IS NOT DISTINCT FROM k.team AND x.ord = k.ord) END AS reason
        FROM dora_keys k
        ORDER BY k.team, k.ord, k.rank DESC NULLS LAST, k.service
    ),
    -- reliability: the worst error budget among the team's SLOs
    budgets AS (
        SELECT ts.team, st.slo, st.budget_remaining::float8 AS budget
        FROM engineering.slos s
        JOIN engineering.team_services ts ON ts.service = s.service
        CROSS JOIN LATERAL engineering.slo_status(s.name, to_ts) st
        UNION ALL
        SELECT NULL, st.slo, st.budget_remaining::float8
        FROM engineering.slos s CROSS JOIN LATERAL engineering.slo_status(s.name, to_ts) st
    ), budget_team AS (
        SELECT b.team, min(b.budget) AS worst,
               string_agg(b.slo || ': ' || coalesce(round(100 * b.budget::numeric, 1) || '% left', 'no data'), ', ' ORDER BY b.slo) AS reason
        FROM budgets b GROUP BY b.team
    ),
    -- onboarding: the people who started in the window, censored as in onboarding_cohorts
    hires AS (
        SELECT o.*, m.ord, m.milestone,
               CASE m.milestone WHEN 'first_pr' THEN o.first_pr_opened_at
                                WHEN 'first_deploy' THEN o.first_production_deploy_at
                                WHEN 'tenth_pr' THEN o.tenth_pr_merged_at END AS reached_at
        FROM engineering.onboarding o
        CROSS JOIN engineering._onboarding_milestones() m
        WHERE o.start_known AND o.started_at >= from_ts AND o.started_at < to_ts
          AND m.milestone IN ('first_pr', 'first_deploy', 'tenth_pr')
    ), hire_groups AS (
        SELECT CASE WHEN grouping(h.team) = 0 THEN h.team END AS team, grouping(h.team) = 1 AS is_total,
               h.ord, h.milestone, count(*) AS n, count(h.reached_at) AS r,
               engineering.lead_time(h.started_at, coalesce(h.reached_at, h.started_at + interval '1000 years'), 0.5) AS med
        FROM hires h
        GROUP BY GROUPING SETS ((h.team, h.ord, h.milestone), (h.ord, h.milestone))
    ), onboarding_rows AS (
        SELECT g.team, g.is_total, g.ord, g.milestone, g.n, g.r,
               CASE WHEN ceil(0.5::float8 * (g.n - 1)) < g.r THEN extract(epoch FROM g.med)::float8 END AS median
        FROM hire_groups g
    ),
    -- satisfaction: the latest survey opened before to_ts, suppression kept
    survey_rows AS (
        SELECT r.* FROM engineering.survey_results(latest, 'team') r WHERE latest IS NOT NULL AND r.group_value IS NOT NULL
        UNION ALL
        SELECT r.* FROM engineering.survey_results(latest) r WHERE latest IS NOT NULL
    ), survey_team AS (
        SELECT r.group_value AS team,
               avg(r.favorable_rate) FILTER (WHERE r.kind <> 'nps') AS favorable,
               bool_or(r.suppressed) FILTER (WHERE r.kind <> 'nps') AS favorable_suppressed,
               count(*) FILTER (WHERE r.kind <> 'nps') AS favorable_questions,
               avg(r.nps) FILTER (WHERE r.kind = 'nps') AS nps,
               bool_or(r.suppressed) FILTER (WHERE r.kind = 'nps') AS nps_suppressed,
               max(r.respondents) AS respondents,
               max(r.note) AS note
        FROM survey_rows r GROUP BY r.group_value
    ),
    adoption AS (
        SELECT a.* FROM engineering._platform_adoption(to_ts) a
    ),
    report AS (
        -- adoption
        SELECT s.team, 1 AS area_ord, 'adoption' AS area, 1 AS ord, 'golden path adoption' AS measure,
               a.adopted::float8 / nullif(a.eligible, 0) AS value, 'ratio' AS unit,
               engineering._platform_grade('golden_path_adoption', a.adopted::float8 / nullif(a.eligible, 0)) AS grade,
               CASE WHEN coalesce(a.eligible, 0) = 0 THEN 'no golden-path data: no eligible service of the team in the service catalog'
                    ELSE format('%s of %s eligible services on a golden path', a.adopted, a.eligible) || coalesce('; ' || a.detail, '') END AS reason
        FROM scopes s LEFT JOIN adoption a ON a.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- onboarding
        SELECT s.team, 2, 'onboarding', 0, 'hires', coalesce(max(o.n), 0)::float8, 'people', NULL,
               'people with a known start date in the window'
        FROM scopes s LEFT JOIN onboarding_rows o ON o.team IS NOT DISTINCT FROM s.team AND o.is_total = (s.team IS NULL)
        GROUP BY s.team
        UNION ALL
        SELECT s.team, 2, 'onboarding', m.ord,
               CASE m.milestone WHEN 'first_pr' THEN 'time to first PR' WHEN 'first_deploy' THEN 'time to first deploy'
                                ELSE 'time to 10th PR' END,
               o.median, 'seconds',
               engineering._platform_grade('time_to_' || CASE m.milestone WHEN 'first_pr' THEN 'first_pr'
                                                                       WHEN 'first_deploy' THEN 'first_deploy'
                                                                       ELSE 'tenth_pr' END, o.median),
               CASE WHEN o.n IS NULL THEN 'no hires in the window'
                    ELSE format('median of %s hires, %s reached it, %s not yet', o.n, o.r, o.n - o.r)
                         || CASE WHEN o.median IS NULL THEN ' (too few to have a median)' ELSE '' END END
        FROM scopes s
        CROSS JOIN engineering._onboarding_milestones() m
        LEFT JOIN onboarding_rows o ON o.team IS NOT DISTINCT FROM s.team AND o.is_total = (s.team IS NULL) AND o.milestone = m.milestone
        WHERE m.milestone IN ('first_pr', 'first_deploy', 'tenth_pr')
        UNION ALL
        -- satisfaction
        SELECT s.team, 3, 'satisfaction', 1, 'favorable rate',
               CASE WHEN NOT st.favorable_suppressed THEN st.favorable END, 'ratio',
               CASE WHEN NOT st.favorable_suppressed THEN engineering._platform_grade('favorable_rate', st.favorable) END,
               CASE WHEN latest IS NULL THEN 'no survey opened before the end of the window'
                    WHEN st.team IS NULL AND st.favorable_questions IS NULL THEN format('no answers in survey %s', latest)
                    WHEN st.favorable_suppressed THEN format('survey %s: %s', latest, st.note)
                    ELSE format('survey %s, %s respondents, favorable share averaged over %s question(s)', latest, st.respondents, st.favorable_questions) END
        FROM scopes s LEFT JOIN survey_team st ON st.team IS NOT DISTINCT FROM s.team
        UNION ALL
        SELECT s.team, 3, 'satisfaction', 2, 'NPS',
               CASE WHEN NOT st.nps_suppressed THEN st.nps END, 'points',
               CASE WHEN NOT st.nps_suppressed THEN engineering._platform_grade('nps', st.nps) END,
               CASE WHEN latest IS NULL THEN 'no survey opened before the end of the window'
                    WHEN st.nps_suppressed THEN format('survey %s: %s', latest, st.note)
                    WHEN st.nps IS NULL THEN format('survey %s has no answered nps question', latest)
                    ELSE format('survey %s, %s respondents', latest, st.respondents) END
        FROM scopes s LEFT JOIN survey_team st ON st.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- delivery
        SELECT s.team, 4, 'delivery', d.ord, d.measure, d.value, d.unit, d.grade, d.reason
        FROM scopes s JOIN dora_team d ON d.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- reliability
        SELECT s.team, 5, 'reliability', 1, 'SLO budget remaining', b.worst, 'ratio',
               engineering._platform_grade('slo_budget_remaining', b.worst),
               coalesce('worst of ' || b.reason, 'no SLOs on the team''s services')
        FROM scopes s LEFT JOIN budget_team b ON b.team IS NOT DISTINCT FROM s.team
    )
    SELECT r.team, r.area, r.measure, r.value, r.unit, r.grade,
           r.reason || coalesce(' (' || CASE WHEN r.grade IS NOT NULL THEN engineering._platform_bounds(
               CASE r.measure WHEN 'golden path adoption' THEN 'golden_path_adoption'
                              WHEN 'time to first PR' THEN 'time_to_first_pr'
                              WHEN 'time to first deploy' THEN 'time_to_first_deploy'
                              WHEN 'time to 10th PR' THEN 'time_to_tenth_pr'
                              WHEN 'favorable rate' THEN 'favorable_rate'
                              WHEN 'NPS' THEN 'nps'
                              WHEN 'SLO budget remaining' THEN 'slo_budget_remaining' END) END || ')', '')
    FROM (
        SELECT r.*, 0 AS summary_last FROM report r
        UNION ALL
        SELECT r.team, 6, 'summary', 1, 'maturity', NULL, NULL,
               (array_agg(r.grade ORDER BY CASE r.grade WHEN 'poor' THEN 1 WHEN 'fair' THEN 2 ELSE 3 END)
                FILTER (WHERE r.grade IS NOT NULL))[1],
               CASE WHEN count(r.grade) = 0 THEN 'nothing graded yet'
                    ELSE 'the lowest grade of: ' || string_agg(r.measure || ' ' || r.grade, ', ' ORDER BY r.area_ord, r.ord)
                                                     FILTER (WHERE r.grade IS NOT NULL) END,
               1
        FROM report r GROUP BY r.team
    ) r
    ORDER BY r.team NULLS FIRST, r.area_ord, r.ord;
END
$$;
COMMENT ON FUNCTION engineering.platform_report(timestamptz, timestamptz) IS
    'per team (team NULL: everyone) the platform engineering measures: golden-path adoption, onboarding of the people who started in [from_ts, to_ts), the latest survey''s favorable rate and NPS (suppression kept), the DORA keys (graded by the team''s worst service) and the worst SLO budget, each with a grade and its reason, and a maturity summary (the lowest grade)';

-- engineering_metrics: people from the service catalog's User entities.
--
-- Backstage knows who works here (User entities, their profile e-mail,
-- the groups they are members of), not when they joined: the refresh
-- writes names, e-mails, teams and aliases, and leaves started_at to
-- admins (an HR export), except that a user who left the catalog is
-- recorded as having left.

CREATE FUNCTION engineering.refresh_people_from_catalog()
RETURNS TABLE (added bigint, updated bigint, left_catalog bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
#variable_conflict use_column
DECLARE
    n_added bigint;
    n_updated bigint;
    n_left bigint;
    c record;
    pid integer;
BEGIN
    -- one user of several catalogs counts once: the first source's entity
    CREATE TEMP TABLE IF NOT EXISTS _catalog_people (
        user_ref text, name text, email text, team text, github text, person_id integer) ON COMMIT DROP;
    TRUNCATE _catalog_people;
    INSERT INTO _catalog_people (user_ref, name, email, team, github)
    SELECT DISTINCT ON (u.user_ref) u.user_ref, coalesce(u.display_name, u.name), lower(u.email),
           (SELECT min(split_part(m.group_ref, '/', 2)) FROM engineering.catalog_memberships m
             WHERE m.user_ref = u.user_ref AND m.source_id IS NOT DISTINCT FROM u.source_id),
           nullif(e.annotations->>'github.com/user-login', '')
    FROM engineering.catalog_users u
    JOIN engineering.catalog_entities e ON e.source_id IS NOT DISTINCT FROM u.source_id AND e.entity_ref = u.user_ref
    ORDER BY u.user_ref, u.source_id NULLS LAST;

    -- a person is found by their backstage alias, else by their e-mail
    UPDATE _catalog_people cp
       SET person_id = coalesce(
               (SELECT a.person_id FROM engineering.person_aliases a
                 WHERE a.kind = 'backstage' AND lower(a.alias) = cp.user_ref),
               (SELECT p.id FROM engineering.people p WHERE lower(p.email) = cp.email));

    WITH changed AS (
        UPDATE engineering.people p
           SET name = cp.name, email = coalesce(cp.email, p.email), team = coalesce(cp.team, p.team)
          FROM _catalog_people cp
         WHERE cp.person_id = p.id
           AND (p.name, p.email, p.team) IS DISTINCT FROM (cp.name, coalesce(cp.email, p.email), coalesce(cp.team, p.team))
        RETURNING 1)
    SELECT count(*) INTO n_updated FROM changed;

    n_added := 0;
    FOR c IN SELECT * FROM _catalog_people WHERE person_id IS NULL ORDER BY user_ref LOOP
        INSERT INTO engineering.people (name, email, team) VALUES (c.name, c.email, c.team)
        RETURNING id INTO pid;
        UPDATE _catalog_people SET person_id = pid WHERE user_ref = c.user_ref;
        n_added := n_added + 1;
    END LOOP;

    INSERT INTO engineering.person_aliases (person_id, kind, alias)
    SELECT cp.person_id, a.kind, a.alias
    FROM _catalog_people cp
    CROSS JOIN LATERAL (VALUES ('backstage', cp.user_ref), ('github', cp.github)) a(kind, alias)
    WHERE cp.person_id IS NOT NULL AND a.alias IS NOT NULL
    ON CONFLICT DO NOTHING;

    -- the user's entity left every catalog it was in: the person left then
    WITH gone AS (
        UPDATE engineering.people p
           SET left_at = r.removed_at
          FROM (SELECT a.person_id, max(e.removed_at) AS removed_at
                FROM engineering.person_aliases a
                JOIN engineering.catalog_entities e ON e.entity_ref = lower(a.alias) AND e.kind = 'user'
                WHERE a.kind = 'backstage'
                GROUP BY a.person_id
                HAVING bool_and(e.removed_at IS NOT NULL)) r
         WHERE p.id = r.person_id AND p.left_at IS NULL
           AND (p.started_at IS NULL OR p.started_at <= r.removed_at)
        RETURNING 1)
    SELECT count(*) INTO n_left FROM gone;

    RETURN QUERY SELECT n_added, n_updated, n_left;
END
$$;
COMMENT ON FUNCTION engineering.refresh_people_from_catalog() IS
    'fills people from the catalog''s live User entities (name, profile e-mail, first group as team, aliases backstage and github.com/user-login), matching by backstage alias then e-mail; a user gone from the catalog gets left_at; start dates are left to admins; returns how many people were added, updated and marked as left';

-- engineering_metrics: roles for people, onboarding, surveys and the
-- platform report (the rest of the decisions are in 70_roles.sql, which
-- runs before these objects exist).
--
-- Readers see people, identities, onboarding and the reports; raw survey
-- responses are readable by admins only: readers get the figures through
-- survey_results(), which runs as the owner (SECURITY DEFINER, fixed
-- search_path) and suppresses small groups.  People, aliases, surveys and
-- the settings are written by admins.

GRANT SELECT ON
    engineering.people, engineering.person_aliases, engineering.people_settings,
    engineering.person_identities, engineering.person_activity, engineering.excluded_authors,
    engineering.onboarding,
    engineering.surveys, engineering.survey_questions,
    engineering.service_teams, engineering.platform_thresholds, engineering.team_services
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON
    engineering.people, engineering.person_aliases, engineering.people_settings,
    engineering.surveys, engineering.survey_questions, engineering.survey_responses,
    engineering.service_teams, engineering.platform_thresholds
TO engineering_admin;
GRANT SELECT ON engineering.survey_responses TO engineering_admin;

-- Left out of PUBLIC: the raw activity view is read through person_activity
-- only (it is internal), and survey_results() is granted by role because it
-- runs as the owner.
REVOKE EXECUTE ON FUNCTION engineering.survey_results(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION engineering.survey_results(text, text, integer) TO engineering_reader;

-- issues 14 and 18 together: dora() and the group reports share _dora_report(),
-- which counts shipped changes as _first_shipments does and grades failed
-- deployment recovery time (the merged text of 53_dora_report.sql)

-- _dora_report() is the report for a set of services: every service
-- (services NULL), one (single: dora(service => ...)), or the services of
-- a group taken together, as one row (dora_by_golden_path()); dora() and
-- the group reports share one definition of every figure.
CREATE OR REPLACE FUNCTION engineering._dora_report(
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

CREATE OR REPLACE FUNCTION engineering.dora(
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
