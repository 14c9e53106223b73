-- What the background worker pulled, per source: its runs, HTTP requests,
-- pages (responses ingested), rows written, and where the time went.
\echo
\echo 'What the worker pulled (engineering.sync_runs per source)'
SELECT s.name AS source, s.kind,
       count(r.id) AS runs,
       coalesce(sum(r.http_requests), 0) AS requests,
       coalesce(sum(r.pages), 0) AS pages,
       coalesce(sum(r.items_upserted), 0) AS rows,
       round(coalesce(sum(r.http_seconds), 0)::numeric, 1) AS http_s,
       round(coalesce(sum(r.sql_seconds), 0)::numeric, 1) AS sql_s,
       coalesce(st.last_status, 'not yet') AS status,
       coalesce(left(s.last_error, 60), '') AS last_error
FROM engineering.sources s
JOIN engineering.source_status st ON st.id = s.id
LEFT JOIN engineering.sync_runs r ON r.source_id = s.id
GROUP BY s.id, s.name, s.kind, st.last_status, s.last_error
ORDER BY s.id;

SELECT (SELECT count(*) FROM engineering.pipeline_runs) AS pipeline_runs,
       (SELECT count(*) FROM engineering.changes) AS changes,
       (SELECT count(*) FROM engineering.pull_requests) AS pull_requests,
       (SELECT count(*) FROM engineering.deployments) AS deployments,
       (SELECT count(*) FROM engineering.deployment_changes) AS deployment_changes,
       (SELECT count(*) FROM engineering.incidents) AS incidents,
       (SELECT count(*) FROM engineering.slo_measurements) AS slo_measurements;
