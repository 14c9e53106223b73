-- delivery panels: deployments per day, median and p90 lead time, time to
-- restore, per service over 90 days
SELECT date_trunc('day', finished_at) AS day, count(*) AS deployments
FROM engineering.deployments
WHERE status = 'success' AND finished_at >= now() - interval '90 days'
GROUP BY 1 ORDER BY 1;
SELECT d.service,
       engineering.lead_time(c.committed_at, d.finished_at) AS median,
       engineering.lead_time(c.committed_at, d.finished_at, 0.9) AS p90
FROM engineering.deployments d
JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
JOIN engineering.changes c ON c.id = dc.change_id
WHERE d.status = 'success' AND d.finished_at >= now() - interval '90 days'
GROUP BY d.service;
SELECT service, engineering.time_to_restore(opened_at, resolved_at) AS median,
       engineering.mttr(opened_at, resolved_at), engineering.downtime(opened_at, resolved_at)
FROM engineering.incidents WHERE opened_at >= now() - interval '90 days' GROUP BY service;
