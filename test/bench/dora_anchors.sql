-- The same computations as engineering_metrics' DORA functions, written the
-- way the anchors do them (see README, "Performance > DORA report"), for
-- test/bench/dora to run side by side.  Each is a function in pg_temp so
-- that the runner can time it like ours.
--
--   linking        Apache DevLake's deploymentCommitsGenerator and
--                  change-lead-time calculation: one query per deployment
--                  (previous successful deployment of the service and
--                  environment, then the changes between the two).
--   attribution    DevLake's connectIncidentToDeployment as one SQL
--                  statement: every incident joined with every earlier
--                  successful deployment, ranked, the latest kept.
--   report         Four Keys' queries/*.sql and dashboard panels translated
--                  to PostgreSQL, per service plus all services: deployments
--                  x changes joins with PERCENTILE_CONT medians, change
--                  failure rate over deployments x changes x incidents,
--                  deployment days per week over a calendar of days;
--                  failed-deployment recovery time as DevLake computes it,
--                  rework rate (no anchor has it) as a correlated EXISTS.
--   views          plain joins and GROUP BYs over the event tables.

CREATE FUNCTION pg_temp.anchor_link_changes() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    d record;
    prev timestamptz;
    n bigint := 0;
    k bigint;
BEGIN
    FOR d IN SELECT id, service, environment, finished_at FROM engineering.deployments
             WHERE status = 'success' ORDER BY service, environment, finished_at
    LOOP
        SELECT max(p.finished_at) INTO prev FROM engineering.deployments p
         WHERE p.service = d.service AND p.environment = d.environment AND p.status = 'success'
           AND p.finished_at < d.finished_at;
        IF prev IS NULL THEN
            CONTINUE;   -- DevLake skips the first deployment of each series
        END IF;
        INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
        SELECT d.id, c.id, 'inferred' FROM engineering.changes c
         WHERE c.service = d.service AND c.committed_at > prev AND c.committed_at <= d.finished_at
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
    END LOOP;
    RETURN n;
END $$;

CREATE FUNCTION pg_temp.anchor_attribute_incidents() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE engineering.incidents i
       SET cause_deployment_id = x.deployment_id, cause_inferred = true
      FROM (SELECT DISTINCT ON (i.id) i.id, d.id AS deployment_id
              FROM engineering.incidents i
              JOIN engineering.deployments d
                ON d.service = i.service AND d.environment = 'production' AND d.status = 'success'
               AND d.finished_at < i.opened_at
             WHERE i.cause_deployment_id IS NULL OR i.cause_inferred
             ORDER BY i.id, d.finished_at DESC) x
     WHERE x.id = i.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Four Keys' report, per service (GROUP BY) plus all services (a second
-- pass over the same rows, as its dashboard's separate panels do)
CREATE FUNCTION pg_temp.anchor_dora(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (service text, deployments bigint, deployment_days_per_week float8, lead_time interval,
               change_failure_rate float8, time_to_restore interval, recovery interval, rework_rate float8)
LANGUAGE sql AS $$
WITH deploys AS MATERIALIZED (
    SELECT d.id AS deploy_id, d.service, d.finished_at AS time_created
    FROM engineering.deployments d
    WHERE d.status = 'success' AND d.environment = 'production'
      AND d.finished_at >= from_ts AND d.finished_at < to_ts
),
deploy_changes AS MATERIALIZED (   -- Four Keys' deployments view: a row per (deployment, change)
    SELECT d.deploy_id, d.service, d.time_created, c.committed_at
    FROM deploys d
    JOIN engineering.deployment_changes dc ON dc.deployment_id = d.deploy_id
    JOIN engineering.changes c ON c.id = dc.change_id
),
calendar AS (                       -- last_three_months: a calendar of days
    SELECT day::date AS day FROM generate_series(from_ts, to_ts - interval '1 day', '1 day') day
),
days AS (
    SELECT DISTINCT service, time_created::date AS day FROM deploys
),
weekly AS (                          -- days deployed per week, empty weeks included
    SELECT s.service, date_trunc('week', cal.day) AS week, count(DISTINCT d.day) AS days_deployed
    FROM (SELECT DISTINCT service FROM deploys UNION ALL SELECT NULL) s
    CROSS JOIN calendar cal
    LEFT JOIN days d ON d.day = cal.day AND (s.service IS NULL OR d.service = s.service)
    GROUP BY 1, 2
),
cfr AS (                             -- deployments x changes x incidents
    SELECT x.service, x.deploy_id, i.id AS incident_id
    FROM deploy_changes x
    LEFT JOIN engineering.incidents i ON i.cause_deployment_id = x.deploy_id
),
lead AS (
    SELECT x.service, percentile_cont(0.5) WITHIN GROUP (ORDER BY x.time_created - x.committed_at) AS lead_time
    FROM deploy_changes x WHERE x.time_created - x.committed_at > interval '0' GROUP BY x.service
    UNION ALL
    SELECT NULL, percentile_cont(0.5) WITHIN GROUP (ORDER BY x.time_created - x.committed_at)
    FROM deploy_changes x WHERE x.time_created - x.committed_at > interval '0'
),
failure AS (
    SELECT c.service, count(DISTINCT c.deploy_id) FILTER (WHERE c.incident_id IS NOT NULL)::float8
                      / count(DISTINCT c.deploy_id) AS change_failure_rate
    FROM cfr c GROUP BY c.service
    UNION ALL
    SELECT NULL, count(DISTINCT c.deploy_id) FILTER (WHERE c.incident_id IS NOT NULL)::float8 / count(DISTINCT c.deploy_id)
    FROM cfr c
),
restore AS (
    SELECT i.service, percentile_cont(0.5) WITHIN GROUP (ORDER BY i.resolved_at - i.opened_at) AS ttr
    FROM engineering.incidents i WHERE i.opened_at >= from_ts AND i.opened_at < to_ts GROUP BY i.service
    UNION ALL
    SELECT NULL, percentile_cont(0.5) WITHIN GROUP (ORDER BY i.resolved_at - i.opened_at)
    FROM engineering.incidents i WHERE i.opened_at >= from_ts AND i.opened_at < to_ts
),
recovery AS (
    SELECT d.service, percentile_cont(0.5) WITHIN GROUP (ORDER BY i.resolved_at - d.time_created) AS fdrt
    FROM deploys d JOIN engineering.incidents i ON i.cause_deployment_id = d.deploy_id
    WHERE i.resolved_at >= d.time_created GROUP BY d.service
    UNION ALL
    SELECT NULL, percentile_cont(0.5) WITHIN GROUP (ORDER BY i.resolved_at - d.time_created)
    FROM deploys d JOIN engineering.incidents i ON i.cause_deployment_id = d.deploy_id
    WHERE i.resolved_at >= d.time_created
),
rework AS (
    SELECT r.service, count(*) AS deployments, avg(r.during)::float8 AS rework_rate
    FROM (SELECT d.service, CASE WHEN EXISTS (SELECT 1 FROM engineering.incidents i
                                              WHERE i.service = d.service AND i.opened_at <= d.time_created
                                                AND (i.resolved_at IS NULL OR i.resolved_at > d.time_created))
                                 THEN 1 ELSE 0 END AS during
            FROM deploys d) r
    GROUP BY ROLLUP (r.service)
)
SELECT r.service, r.deployments,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w.days_deployed) FROM weekly w
         WHERE w.service IS NOT DISTINCT FROM r.service),
       l.lead_time, f.change_failure_rate, t.ttr, v.fdrt, r.rework_rate
FROM rework r
LEFT JOIN lead l ON l.service IS NOT DISTINCT FROM r.service
LEFT JOIN failure f ON f.service IS NOT DISTINCT FROM r.service
LEFT JOIN restore t ON t.service IS NOT DISTINCT FROM r.service
LEFT JOIN recovery v ON v.service IS NOT DISTINCT FROM r.service
$$;
