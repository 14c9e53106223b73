-- The demo report: the four keys per service over the last 90 days, in
-- plain SQL over the event tables.
\echo
\echo 'Delivery over the last 90 days'
WITH window_ AS (SELECT now() - interval '90 days' AS from_ts, now() AS to_ts),
deploys AS (
    SELECT d.* FROM engineering.deployments d, window_ w
    WHERE d.status = 'success' AND d.environment = 'production'
      AND d.finished_at >= w.from_ts AND d.finished_at < w.to_ts
),
per_service AS (
    SELECT service,
           count(*) AS deployments,
           count(DISTINCT finished_at::date) AS deployment_days
    FROM deploys GROUP BY service
),
lead AS (
    SELECT d.service,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY d.finished_at - c.committed_at) AS lead_time
    FROM deploys d
    JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
    JOIN engineering.changes c ON c.id = dc.change_id
    GROUP BY d.service
),
failures AS (
    SELECT d.service,
           count(DISTINCT d.id) FILTER (WHERE i.id IS NOT NULL)::float8 / count(DISTINCT d.id) AS cfr
    FROM deploys d LEFT JOIN engineering.incidents i ON i.cause_deployment_id = d.id
    GROUP BY d.service
),
restore AS (
    SELECT i.service,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY i.resolved_at - i.opened_at) AS time_to_restore
    FROM engineering.incidents i, window_ w
    WHERE i.opened_at >= w.from_ts AND i.opened_at < w.to_ts AND i.resolved_at IS NOT NULL
    GROUP BY i.service
)
SELECT p.service, p.deployments, p.deployment_days,
       date_trunc('minute', l.lead_time) AS median_lead_time,
       round(100 * f.cfr)::text || '%' AS change_failure_rate,
       date_trunc('minute', r.time_to_restore) AS median_time_to_restore
FROM per_service p
LEFT JOIN lead l USING (service)
LEFT JOIN failures f USING (service)
LEFT JOIN restore r USING (service)
ORDER BY p.deployments DESC;
