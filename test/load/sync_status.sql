-- the operations panel: sources and recent runs, and CI runs per day (the
-- table the worker is writing to)
SELECT * FROM engineering.source_status;
SELECT source, status, started_at, items_upserted, error FROM engineering.sync_runs ORDER BY id DESC LIMIT 20;
SELECT date_trunc('day', coalesce(started_at, queued_at)) AS day, status, count(*)
FROM engineering.pipeline_runs
WHERE coalesce(started_at, queued_at) >= timestamptz '2024-01-01' AND coalesce(started_at, queued_at) < timestamptz '2024-01-15'
GROUP BY 1, 2;
