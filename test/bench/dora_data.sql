-- Generated organisation for test/bench/dora: :services services (psql
-- variable, default 50) over 2024; per service 20,000 changes, 2,000
-- deployments, 200 incidents, 2,000 pull requests and about 10,000
-- pipeline runs (50 services: 1M changes, 100k deployments, 10k incidents,
-- 100k pull requests and 500k pipeline runs).  Deterministic (setseed), loaded without any links: the
-- benchmark times link_changes() and attribute_incidents() from scratch.
\set ON_ERROR_STOP 1
\if :{?services}
\else
\set services 50
\endif
SET client_min_messages = warning;
SET timezone = 'UTC';
SELECT setseed(0.42);

CREATE TEMP TABLE bench_services AS
SELECT format('svc-%s', lpad(n::text, 2, '0')) AS service, n
FROM generate_series(1, :services) n;

-- 20,000 commits per service spread over the year (about 55 a day),
-- inserted in time order as a sync would
INSERT INTO engineering.changes (service, commit_sha, authored_at, committed_at, author, title)
SELECT c.service, md5(c.service || '/' || c.k), c.t - random() * interval '2 days', c.t,
       format('dev%s', (random() * 20)::int), format('change %s', c.k)
FROM (SELECT s.service, k, timestamptz '2024-01-01' + random() * interval '366 days' AS t
      FROM bench_services s CROSS JOIN generate_series(1, 20000) k) c
ORDER BY c.t;

-- 2,000 deployments per service: 1,600 to production, 400 to staging; 4%
-- of them fail, 1% are cancelled.  The head commit is the latest change
-- committed a few minutes before the deployment finished (known for 90% of
-- them; the others carry no sha, and link by time).
CREATE TEMP TABLE bench_deploys AS
SELECT s.service,
       CASE WHEN k <= 1600 THEN 'production' ELSE 'staging' END AS environment,
       timestamptz '2024-01-01' + random() * interval '366 days' AS finished_at,
       CASE WHEN random() < 0.04 THEN 'failure' WHEN random() < 0.01 THEN 'cancelled' ELSE 'success' END AS status,
       random() < 0.9 AS sha_known
FROM bench_services s
CROSS JOIN generate_series(1, 2000) k;
ANALYZE engineering.changes;

INSERT INTO engineering.deployments (service, environment, commit_sha, started_at, finished_at, status)
SELECT d.service, d.environment,
       CASE WHEN d.sha_known THEN
           (SELECT c.commit_sha FROM engineering.changes c
             WHERE c.service = d.service AND c.committed_at <= d.finished_at - interval '10 minutes'
             ORDER BY c.committed_at DESC LIMIT 1)
       END,
       d.finished_at - interval '8 minutes', d.finished_at,
       CASE WHEN d.status = 'cancelled' THEN 'cancelled' ELSE d.status END
FROM bench_deploys d
ORDER BY d.finished_at;

-- 200 incidents per service; durations exponential with a mean of 3 hours;
-- those opened on the last day of the year are still open
INSERT INTO engineering.incidents (service, title, status, opened_at, resolved_at)
SELECT i.service, format('incident %s', i.k),
       CASE WHEN i.opened >= '2024-12-31' THEN 'open' ELSE 'resolved' END,
       i.opened,
       CASE WHEN i.opened < '2024-12-31' THEN i.opened + (-ln(1 - random()) * interval '3 hours') END
FROM (SELECT s.service, k, timestamptz '2024-01-01' + random() * interval '366 days' AS opened
      FROM bench_services s CROSS JOIN generate_series(1, 200) k) i
ORDER BY i.opened;

-- about 2,000 pull requests per service, landed by one change in ten
-- (squash merges), chosen by the first hex digit pair of the sha
INSERT INTO engineering.pull_requests (service, number, title, author, opened_at, first_commit_at, merged_at, merge_commit_sha)
SELECT p.service, row_number() OVER (PARTITION BY p.service ORDER BY p.committed_at),
       p.title, p.author, p.opened, p.opened - random() * interval '2 days', p.committed_at, p.commit_sha
FROM (SELECT c.*, c.committed_at - random() * interval '3 days' AS opened
      FROM engineering.changes c
      WHERE ('x' || left(c.commit_sha, 2))::bit(8)::int < 26) p
ORDER BY p.committed_at;

-- 9,000 pipeline runs per service (3 pipelines, main and feature branches),
-- 85% pass, 10% fail, 5% are cancelled; about half of the failures are
-- re-run (attempt 2), and 60% of those re-runs pass (flaky)
CREATE TEMP TABLE bench_runs AS
SELECT x.service,
       (ARRAY['build', 'test', 'deploy'])[1 + (x.k % 3)] AS pipeline,
       CASE WHEN random() < 0.7 THEN 'main' ELSE format('feature-%s', (random() * 40)::int) END AS branch,
       md5(x.service || '/' || (1 + (random() * 19999)::int)) AS commit_sha,
       x.q AS queued_at,
       x.q + random() * interval '5 minutes' AS started_at,
       random() AS r
FROM (SELECT s.service, k, timestamptz '2024-01-01' + random() * interval '366 days' AS q
      FROM bench_services s CROSS JOIN generate_series(1, 9500) k) x
ORDER BY x.q;

INSERT INTO engineering.pipeline_runs (service, pipeline, branch, commit_sha, event, status, queued_at, started_at, finished_at, attempt)
SELECT service, pipeline, branch, commit_sha, 'push',
       CASE WHEN r < 0.85 THEN 'success' WHEN r < 0.95 THEN 'failure' ELSE 'cancelled' END,
       queued_at, started_at,
       started_at + interval '2 minutes' + random() * interval '18 minutes',
       1
FROM bench_runs ORDER BY queued_at;

INSERT INTO engineering.pipeline_runs (service, pipeline, branch, commit_sha, event, status, queued_at, started_at, finished_at, attempt)
SELECT service, pipeline, branch, commit_sha, 'rerun',
       CASE WHEN random() < 0.6 THEN 'success' ELSE 'failure' END,
       started_at + interval '30 minutes', started_at + interval '31 minutes',
       started_at + interval '33 minutes' + random() * interval '18 minutes',
       2
FROM bench_runs
WHERE r >= 0.85 AND r < 0.95 AND random() < 0.5;

VACUUM ANALYZE engineering.changes;
VACUUM ANALYZE engineering.deployments;
VACUUM ANALYZE engineering.incidents;
VACUUM ANALYZE engineering.pull_requests;
VACUUM ANALYZE engineering.pipeline_runs;
