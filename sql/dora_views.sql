-- The DORA views (change_lead_times, deployment_outcomes,
-- pull_request_cycle_times), pipeline_health(), and the two tables of
-- choices (dora_settings, dora_benchmarks).
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE FUNCTION pg_temp.dep(text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT id FROM engineering.deployments WHERE source_id IS NULL AND external_id = $1 $$;
CREATE FUNCTION pg_temp.chg(text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT id FROM engineering.changes WHERE source_id IS NULL AND external_id = $1 $$;

-- app: three production deployments and one to staging
--   D1 05-01 10:00  D2 05-02 10:00  D3 05-03 10:00 (failed run)  D4 05-04 10:00
--   DS staging 05-01 12:00
INSERT INTO engineering.deployments (external_id, service, environment, commit_sha, finished_at, status) VALUES
    ('D1', 'app', 'production', md5('m1'), '2024-05-01 10:00', 'success'),
    ('D2', 'app', 'production', md5('m3'), '2024-05-02 10:00', 'success'),
    ('D3', 'app', 'production', NULL,      '2024-05-03 10:00', 'failure'),
    ('D4', 'app', 'production', NULL,      '2024-05-04 10:00', 'success'),
    ('DS', 'app', 'staging',    md5('m1'), '2024-05-01 12:00', 'success');
-- changes: m1 (04-30 10:00, authored 04-29 10:00), m2 (05-01 09:00),
-- m3 (05-01 20:00, the squash commit of PR #1), mskew (05-02 11:00, a
-- committer clock ahead of D2 that shipped it)
INSERT INTO engineering.changes (external_id, service, commit_sha, authored_at, committed_at) VALUES
    ('m1',    'app', md5('m1'),    '2024-04-29 10:00', '2024-04-30 10:00'),
    ('m2',    'app', md5('m2'),    NULL,               '2024-05-01 09:00'),
    ('m3',    'app', md5('m3'),    NULL,               '2024-05-01 20:00'),
    ('mskew', 'app', md5('mskew'), NULL,               '2024-05-02 11:00');
-- D1 shipped m1 and m2; D2 m3 and mskew; D4 re-lists m2 (a connector that
-- reports a redeploy): m2 counts at D1 only.  DS (staging) shipped m1.
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
SELECT pg_temp.dep(d), pg_temp.chg(c), l FROM (VALUES
    ('D1', 'm1', 'connector'), ('D1', 'm2', 'connector'), ('D2', 'm3', 'manual'),
    ('D2', 'mskew', 'manual'), ('D4', 'm2', 'connector'), ('DS', 'm1', 'connector')) v(d, c, l);
INSERT INTO engineering.pull_requests (external_id, service, number, opened_at, first_commit_at, merged_at, merge_commit_sha) VALUES
    ('pr1', 'app', 1, '2024-04-30 12:00', '2024-04-30 08:00', '2024-05-01 20:00', md5('m3')),
    -- merged, its commit not deployed yet
    ('pr2', 'app', 2, '2024-05-02 09:00', '2024-05-02 10:00', '2024-05-02 12:00', md5('zz')),
    -- still open
    ('pr3', 'app', 3, '2024-05-03 09:00', '2024-05-03 08:00', NULL, NULL),
    -- merged by m1, which reached production with D1 and staging with DS
    ('pr4', 'app', 4, '2024-04-30 09:00', NULL, '2024-04-30 10:00', md5('m1'));

--
-- change_lead_times: one row per change and environment, at its first
-- successful deployment there:
--   production: m1 D1 (24 h), m2 D1 (1 h; not again at D4), m3 D2 (14 h),
--               mskew D2 (lead time NULL: committed after D2 finished)
--   staging:    m1 DS (26 h)
SELECT t.environment, c.external_id AS change, d.external_id AS deployment, t.linked_by,
       t.committed_at, t.measured_from, t.deployed_at, t.lead_time
FROM engineering.change_lead_times t
JOIN engineering.changes c ON c.id = t.change_id
JOIN engineering.deployments d ON d.id = t.deployment_id
ORDER BY t.environment, t.committed_at;
-- the same rows as plain SQL's "first deployment per change and
-- environment" (DISTINCT ON), in both directions
WITH plain AS (
    SELECT DISTINCT ON (dc.change_id, d.environment) d.environment, dc.change_id, d.id AS deployment_id
    FROM engineering.deployment_changes dc JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE d.status = 'success'
    ORDER BY dc.change_id, d.environment, d.finished_at, d.id
), view AS (
    SELECT environment, change_id, deployment_id FROM engineering.change_lead_times
)
SELECT (SELECT count(*) FROM (SELECT * FROM plain EXCEPT SELECT * FROM view) a) AS missing,
       (SELECT count(*) FROM (SELECT * FROM view EXCEPT SELECT * FROM plain) b) AS extra,
       (SELECT count(*) FROM view) AS rows;
-- lead time from the author date (m1: 04-29 10:00 -> 48 h; m2 keeps its
-- committed_at) and from the pull request's first commit (m3 landed PR
-- #1, first commit 04-30 08:00 -> 05-02 10:00 is 50 h)
UPDATE engineering.dora_settings SET lead_time_start = 'authored_at';
SELECT environment, commit_sha = md5('m1') AS is_m1, measured_from, lead_time
FROM engineering.change_lead_times WHERE change_id IN (pg_temp.chg('m1'), pg_temp.chg('m2')) ORDER BY 1, 2;
UPDATE engineering.dora_settings SET lead_time_start = 'pr_first_commit';
SELECT measured_from, lead_time FROM engineering.change_lead_times WHERE change_id = pg_temp.chg('m3');
UPDATE engineering.dora_settings SET lead_time_start = 'committed_at';

--
-- deployment_outcomes:
--   D1 caused E1 (05-01 11:00 to 13:00) and E2 (05-01 12:00, still open):
--      failed, 2 incidents, first at 11:00, not recovered (E2 open)
--   D2 caused E3 (05-02 12:00 to 05-02 16:00): recovered at 16:00, 6 h
--      after D2 finished; D2 itself finished while E2 was open (rework)
--   D3 (its own run failed) and D4 caused nothing; both finished while E2
--      was open; DS (staging, app) too: incidents are per service
INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at, cause_deployment_id) VALUES
    ('E1', 'app', 'resolved', '2024-05-01 11:00', '2024-05-01 13:00', pg_temp.dep('D1')),
    ('E2', 'app', 'open',     '2024-05-01 12:00', NULL,               pg_temp.dep('D1')),
    ('E3', 'app', 'resolved', '2024-05-02 12:00', '2024-05-02 16:00', pg_temp.dep('D2'));
SELECT external_id, o.status, o.changes, o.failed, o.incident_count, o.first_incident_at,
       o.recovered_at, o.recovery_time, o.during_incident
FROM engineering.deployment_outcomes o JOIN engineering.deployments d ON d.id = o.deployment_id
ORDER BY o.finished_at;
-- once E2 is resolved (05-03 12:00), D1 is recovered then: 2 days 2 h
UPDATE engineering.incidents SET status = 'resolved', resolved_at = '2024-05-03 12:00' WHERE external_id = 'E2';
SELECT o.recovered_at, o.recovery_time, o.during_incident
FROM engineering.deployment_outcomes o WHERE o.deployment_id = pg_temp.dep('D1');
-- D3 (05-03 10:00) still finished during E2; D4 (05-04 10:00) no longer
SELECT d.external_id, o.during_incident
FROM engineering.deployment_outcomes o JOIN engineering.deployments d ON d.id = o.deployment_id
WHERE d.external_id IN ('D3', 'D4') ORDER BY 1;

--
-- pull_request_cycle_times:
--   #1: coding 04-30 08:00 -> 12:00 = 4 h; review 12:00 -> 05-01 20:00 =
--       32 h; deploy: m3 first reached production with D2 (05-02 10:00):
--       14 h; total 08:00 04-30 -> 10:00 05-02 = 50 h
--   #2: merged by a commit no deployment shipped: deploy and total NULL;
--       its first commit (10:00) is after it was opened (09:00): coding
--       NULL; review 3 h
--   #3: open: review NULL; its first commit precedes opening: coding 1 h
--   #4: no first commit known: coding NULL; m1 reached production with
--       D1 (05-01 10:00): deploy 24 h, total from opened 04-30 09:00: 25 h
SELECT number, coding_time, review_time, d.external_id AS deployment, deployed_at, deploy_time, total_time
FROM engineering.pull_request_cycle_times p
LEFT JOIN engineering.deployments d ON d.id = p.deployment_id
ORDER BY number;
-- with staging as the production environment, #4's deployment is DS
-- (05-01 12:00, 26 h after the merge) and #1's is none
UPDATE engineering.dora_settings SET production_environment = 'staging';
SELECT number, deployed_at, deploy_time FROM engineering.pull_request_cycle_times WHERE number IN (1, 4) ORDER BY 1;
UPDATE engineering.dora_settings SET production_environment = 'production';

--
-- pipeline_health(): one service, two pipelines, runs started in
-- [05-01, 05-08); times as offsets from 05-01 00:00.
--   build on main:
--     r1 commit a: success, queued 00:00, started 00:01, finished 00:11 (10 min)
--     r2 commit b: failure, 01:00 / 01:02 / 01:22 (20 min)
--     r3 commit b: success (re-run, attempt 2), 02:00 / 02:00 / 02:30 (30 min)
--     r4 commit c: failure, 03:00 / 03:05 / 03:45 (40 min)
--     r5 commit c: failure (attempt 2), 04:00 / 04:01 / 04:51 (50 min)
--     r6 commit d: cancelled, 05:00 / 05:03, not finished
--     r7 commit e: success, 06:00 / 06:02 / 07:02 (60 min)
--   runs 7; success rate 3 / (3 + 3) = 0.5; durations 10, 20, 30, 40, 50,
--   60 min: median 35 min, p95 = 50 + 0.75 * 10 = 57.5 min (position
--   0.95 * 5 = 4.75 between the 5th and 6th); queue times 1, 2, 0, 5, 1,
--   3, 2 min: median 2 min; commits with a finished run a, b, c, e = 4,
--   of which b failed then passed: flaky 1 / 4 = 0.25
--   test on feature-x: one failure (commit f), 10 min; nothing flaky
--   a run started before the window is left out
INSERT INTO engineering.pipeline_runs (service, pipeline, branch, commit_sha, status, queued_at, started_at, finished_at, attempt)
SELECT 'app', p, b, md5(c), s, t + q::interval, t + st::interval, t + f::interval, a
FROM (VALUES
    ('build', 'main', 'a', 'success',   '00:00', '00:01', '00:11', 1),
    ('build', 'main', 'b', 'failure',   '01:00', '01:02', '01:22', 1),
    ('build', 'main', 'b', 'success',   '02:00', '02:00', '02:30', 2),
    ('build', 'main', 'c', 'failure',   '03:00', '03:05', '03:45', 1),
    ('build', 'main', 'c', 'failure',   '04:00', '04:01', '04:51', 2),
    ('build', 'main', 'd', 'cancelled', '05:00', '05:03', NULL,    1),
    ('build', 'main', 'e', 'success',   '06:00', '06:02', '07:02', 1),
    ('test',  'feature-x', 'f', 'failure', '08:00', '08:00', '08:10', 1),
    ('build', 'main', 'g', 'success',   '-02:00', '-02:00', '-01:00', 1)) v(p, b, c, s, q, st, f, a),
    LATERAL (SELECT timestamptz '2024-05-01') t(t);
SELECT * FROM engineering.pipeline_health('2024-05-01', '2024-05-08');
-- the same percentiles in plain SQL
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY finished_at - started_at) AS median,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY finished_at - started_at) AS p95
FROM engineering.pipeline_runs
WHERE pipeline = 'build' AND status IN ('success', 'failure') AND started_at >= '2024-05-01';
-- one service, and a service with no runs
SELECT service, pipeline, runs FROM engineering.pipeline_health('2024-05-01', '2024-05-08', 'app');
SELECT count(*) FROM engineering.pipeline_health('2024-05-01', '2024-05-08', 'nobody');
SELECT * FROM engineering.pipeline_health('2024-05-08', '2024-05-01');

--
-- dora_settings: one row, checked values
SELECT * FROM engineering.dora_settings;
UPDATE engineering.dora_settings SET lead_time_start = 'merged_at';
UPDATE engineering.dora_settings SET production_environment = ' ';
INSERT INTO engineering.dora_settings (singleton) VALUES (false);
-- a replayed row (as pg_restore inserts it after CREATE EXTENSION) replaces
-- the existing one instead of failing
INSERT INTO engineering.dora_settings (production_environment, lead_time_start, benchmark_year)
VALUES ('prod', 'authored_at', 2021);
SELECT * FROM engineering.dora_settings;

-- dora_benchmarks: each metric its own kind of bound
SELECT report_year, metric, count(*) AS levels, string_agg(level, ' > ' ORDER BY rank) AS ranking
FROM engineering.dora_benchmarks GROUP BY 1, 2 ORDER BY 1, 2;
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate) VALUES (2099, 'lead_time', 'x', 1, 0.5);
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, min_deployment_days) VALUES (2099, 'deployment_frequency', 'x', 1, 3);
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate) VALUES (2099, 'mttr', 'x', 1, 0.5);
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate) VALUES (2099, 'change_failure_rate', 'x', 0, 0.5);
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate) VALUES (2099, 'change_failure_rate', 'x', 1, 1.5);
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, per_period, min_deployment_days) VALUES (2099, 'deployment_frequency', 'x', 1, 'day', 3);
-- a replayed shipped row updates it
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate, description)
VALUES (2023, 'change_failure_rate', 'elite', 1, 0.04, 'edited');
SELECT level, max_rate, description FROM engineering.dora_benchmarks
WHERE report_year = 2023 AND metric = 'change_failure_rate' ORDER BY rank;
