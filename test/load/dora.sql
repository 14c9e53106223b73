-- the DORA panels: the report per service over 90 days, and the views
-- behind the drill-downs
SELECT * FROM engineering.dora(now() - interval '90 days', now());
SELECT service, percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_time) AS median_lead_time
FROM engineering.change_lead_times WHERE deployed_at >= now() - interval '90 days' GROUP BY service;
SELECT service, count(*) FILTER (WHERE failed) AS failed, count(*) AS deployments
FROM engineering.deployment_outcomes WHERE finished_at >= now() - interval '90 days' GROUP BY service;
