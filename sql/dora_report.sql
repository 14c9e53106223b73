-- dora(): hand-built timelines with every figure worked out in the
-- comments, cross-checked against plain SQL over the same rows; then
-- Middleware's and Pelorus' published fixtures.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- Hand-made rows; deployments, changes and incidents are named by their
-- external_id.  The window is April 2024's first four weeks:
-- [2024-04-01 Mon, 2024-04-29 Mon), weeks W1 = 04-01..07, W2 = 04-08..14,
-- W3 = 04-15..21, W4 = 04-22..28.
CREATE FUNCTION pg_temp.dep(text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT id FROM engineering.deployments WHERE source_id IS NULL AND external_id = $1 $$;
CREATE FUNCTION pg_temp.chg(text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT id FROM engineering.changes WHERE source_id IS NULL AND external_id = $1 $$;

-- api: production deployments (A5 failed, A0 is before the window), and one
-- to staging
INSERT INTO engineering.deployments (external_id, service, environment, finished_at, status) VALUES
    ('A0',  'api', 'production', '2024-03-28 10:00', 'success'),
    ('A1',  'api', 'production', '2024-04-01 10:00', 'success'),
    ('A2',  'api', 'production', '2024-04-01 15:00', 'success'),
    ('A3',  'api', 'production', '2024-04-03 10:00', 'success'),
    ('A4',  'api', 'production', '2024-04-09 10:00', 'success'),
    ('A5',  'api', 'production', '2024-04-10 12:00', 'failure'),
    ('A6',  'api', 'production', '2024-04-16 10:00', 'success'),
    ('A7',  'api', 'production', '2024-04-17 10:00', 'success'),
    ('A8',  'api', 'production', '2024-04-18 10:00', 'success'),
    ('AS1', 'api', 'staging',    '2024-04-02 10:00', 'success'),
-- web: deployments but no incidents
    ('W1',  'web', 'production', '2024-04-02 09:00', 'success'),
    ('W2',  'web', 'production', '2024-04-02 11:00', 'success'),
    ('W3',  'web', 'production', '2024-04-23 09:00', 'success');

-- changes and what shipped them (linked by hand, so link_changes() plays
-- no part here), with their lead times from committed_at:
--   A1: c1 (04-01 08:00, 2 h), c2 (03-31 10:00, 24 h)
--   A2: c3 (04-01 14:00, 1 h; the squash commit of pull request #7)
--   A3: c4 (04-02 10:00, 24 h), cskew (04-03 11:00: committed after the
--       deployment finished, a clock ahead; left out of lead time)
--   A4: c5 (04-08 10:00, 24 h)
--   A6: c6 (04-15 22:00, 12 h), and c5 again (re-linked by a connector: c5
--       counts once, at A4, its first deployment)
--   A7: c8 (04-16 22:00, 12 h)
--   A8: c7 (04-11 10:00, 168 h)
--   AS1 (staging): c1, c2, c3 (not production)
--   W1: w1 (04-01 09:00, 24 h);  W3: w2 (04-22 09:00, 24 h)
INSERT INTO engineering.changes (external_id, service, commit_sha, authored_at, committed_at) VALUES
    ('c1',    'api', md5('c1'),    '2024-04-01 07:00', '2024-04-01 08:00'),
    ('c2',    'api', md5('c2'),    NULL,               '2024-03-31 10:00'),
    ('c3',    'api', md5('c3'),    '2024-04-01 13:00', '2024-04-01 14:00'),
    ('c4',    'api', md5('c4'),    '2024-04-01 10:00', '2024-04-02 10:00'),
    ('cskew', 'api', md5('cskew'), NULL,               '2024-04-03 11:00'),
    ('c5',    'api', md5('c5'),    NULL,               '2024-04-08 10:00'),
    ('c6',    'api', md5('c6'),    NULL,               '2024-04-15 22:00'),
    ('c7',    'api', md5('c7'),    NULL,               '2024-04-11 10:00'),
    ('c8',    'api', md5('c8'),    NULL,               '2024-04-16 22:00'),
    ('w1',    'web', md5('w1'),    NULL,               '2024-04-01 09:00'),
    ('w2',    'web', md5('w2'),    NULL,               '2024-04-22 09:00');
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
SELECT pg_temp.dep(d), pg_temp.chg(c), l
FROM (VALUES ('A1', 'c1', 'manual'), ('A1', 'c2', 'manual'), ('A2', 'c3', 'manual'),
             ('A3', 'c4', 'manual'), ('A3', 'cskew', 'manual'), ('A4', 'c5', 'manual'),
             ('A6', 'c6', 'connector'), ('A6', 'c5', 'connector'), ('A7', 'c8', 'manual'),
             ('A8', 'c7', 'manual'), ('AS1', 'c1', 'manual'), ('AS1', 'c2', 'manual'),
             ('AS1', 'c3', 'manual'), ('W1', 'w1', 'manual'), ('W3', 'w2', 'manual')) v(d, c, l);
INSERT INTO engineering.pull_requests (external_id, service, number, opened_at, first_commit_at, merged_at, merge_commit_sha)
VALUES ('pr7', 'api', 7, '2024-03-31 09:00', '2024-03-30 14:00', '2024-04-01 14:00', md5('c3'));

-- incidents:
--   Iopen: opened 03-31 20:00, resolved 04-01 12:00 (before the window; A1
--          at 04-01 10:00 finished while it was open: rework)
--   I2, I3: both caused by A3 (two incidents on one deployment, and they
--          overlap): 04-03 11:00-13:00 (2 h) and 12:00-18:00 (6 h)
--   I4: caused by A6, 04-16 11:00 to 04-17 11:00 (24 h); A7 (04-17 10:00)
--          finished while it was open: rework
--   B1: batch, which never deployed (an incident with no deployment before
--          it), 04-05 00:00-00:30
INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at, cause_deployment_id) VALUES
    ('Iopen', 'api',   'resolved', '2024-03-31 20:00', '2024-04-01 12:00', NULL),
    ('I2',    'api',   'resolved', '2024-04-03 11:00', '2024-04-03 13:00', pg_temp.dep('A3')),
    ('I3',    'api',   'resolved', '2024-04-03 12:00', '2024-04-03 18:00', pg_temp.dep('A3')),
    ('I4',    'api',   'resolved', '2024-04-16 11:00', '2024-04-17 11:00', pg_temp.dep('A6')),
    ('B1',    'batch', 'resolved', '2024-04-05 00:00', '2024-04-05 00:30', NULL);

-- api, over the window:
--   deployments: A1 A2 A3 A4 A6 A7 A8 = 7 (A5 failed, A0 is outside, AS1
--     is staging)
--   deployment days per week: W1 {04-01, 04-03} = 2, W2 {04-09} = 1,
--     W3 {04-16, 04-17, 04-18} = 3, W4 none = 0; median of 0,1,2,3 = 1.5
--     -> 2023 level high (>= 1 day a week, not >= 5)
--   lead time: 1, 2, 12, 12, 24, 24, 24, 168 h (cskew left out, c5 once);
--     interpolated median (12 + 24) / 2 = 18 h -> elite (< 1 day)
--   change failure rate: A3 and A6 failed (A3 once despite two incidents)
--     = 2 / 7 = 0.2857... -> low (> 15%)
--   time to restore: incidents opened in the window I2 2 h, I3 6 h, I4 24 h:
--     median 6 h -> high (< 1 day)
--   failed deployment recovery time: I2 13:00 - A3 10:00 = 3 h, I3 8 h,
--     I4 04-17 11:00 - A6 04-16 10:00 = 25 h: median 8 h
--   rework rate: A1 (during Iopen), A7 (during I4) = 2 / 7
-- web:
--   deployments 3; days per week W1 {04-02} = 1, W2 0, W3 0, W4 {04-23} = 1:
--     median of 0,0,1,1 = 0.5 -> not high (< 1 a week); medium needs 1
--     day a month: the window holds no complete month, so its 2 days are
--     scaled to a month: 2 * 30.44 / 28 = 2.17 >= 1 -> medium
--   lead time 24 h, 24 h: median 1 day -> high (elite is strictly < 1 day)
--   change failure rate 0 / 3 = 0 -> elite; time to restore and recovery
--     NULL (no incidents); rework 0
-- batch: no deployments (deployment figures NULL); time to restore 30 min
--   -> elite
-- all services:
--   deployments 10; days W1 {04-01, 04-02, 04-03} = 3, W2 1, W3 3,
--     W4 {04-23} = 1: median of 1,1,3,3 = 2 -> high
--   lead time: 1, 2, 12, 12, 24, 24, 24, 24, 24, 168 h: median 24 h -> high
--   change failure rate 2 / 10 = 0.2 -> low; time to restore 0.5, 2, 6,
--     24 h: median 4 h -> high; recovery 3, 8, 25 h: 8 h; rework 2 / 10
SELECT * FROM engineering.dora('2024-04-01', '2024-04-29');

-- The same figures in plain SQL (percentile_cont, explicit joins), written
-- independently of dora(): every column must agree.
WITH d AS (
    SELECT * FROM engineering.deployments
    WHERE status = 'success' AND environment = 'production'
      AND finished_at >= '2024-04-01' AND finished_at < '2024-04-29'
), firsts AS (
    -- each change at its first successful production deployment
    SELECT DISTINCT ON (dc.change_id) dc.change_id, x.id AS deployment_id, x.service, x.finished_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments x ON x.id = dc.deployment_id
    WHERE x.status = 'success' AND x.environment = 'production'
    ORDER BY dc.change_id, x.finished_at
), lt AS (
    SELECT f.service, f.finished_at - c.committed_at AS lead
    FROM firsts f JOIN engineering.changes c ON c.id = f.change_id
    WHERE f.deployment_id IN (SELECT id FROM d) AND c.committed_at <= f.finished_at
), weeks AS (
    SELECT s.service, w.start,
           (SELECT count(DISTINCT (finished_at AT TIME ZONE 'UTC')::date) FROM d
             WHERE (s.service IS NULL OR d.service = s.service)
               AND finished_at >= w.start AND finished_at < w.start + interval '7 days') AS days
    FROM (SELECT DISTINCT service FROM d UNION ALL SELECT NULL) s,
         generate_series(timestamptz '2024-04-01', '2024-04-22', '7 days') w(start)
), plain AS (
    SELECT s.service,
           (SELECT count(*) FROM d WHERE s.service IS NULL OR d.service = s.service) AS deployments,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY days) FROM weeks w
             WHERE w.service IS NOT DISTINCT FROM s.service) AS days_per_week,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lead) FROM lt
             WHERE s.service IS NULL OR lt.service = s.service) AS lead_time,
           (SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM engineering.incidents i WHERE i.cause_deployment_id = d.id))::float8
                   / count(*) FROM d WHERE s.service IS NULL OR d.service = s.service) AS cfr,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY resolved_at - opened_at) FROM engineering.incidents i
             WHERE opened_at >= '2024-04-01' AND opened_at < '2024-04-29'
               AND (s.service IS NULL OR i.service = s.service)) AS ttr,
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY i.resolved_at - d.finished_at)
              FROM d JOIN engineering.incidents i ON i.cause_deployment_id = d.id
             WHERE s.service IS NULL OR d.service = s.service) AS fdrt,
           (SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM engineering.incidents i
                                                  WHERE i.service = d.service AND i.opened_at <= d.finished_at
                                                    AND (i.resolved_at IS NULL OR i.resolved_at > d.finished_at)))::float8
                   / count(*) FROM d WHERE s.service IS NULL OR d.service = s.service) AS rework
    FROM (SELECT DISTINCT service FROM d UNION ALL SELECT NULL) s
)
SELECT p.service,
       r.deployments = p.deployments AS deployments,
       r.deployment_days_per_week = p.days_per_week AS days_per_week,
       r.lead_time = p.lead_time AS lead_time,
       r.change_failure_rate = p.cfr AS change_failure_rate,
       r.time_to_restore IS NOT DISTINCT FROM p.ttr AS time_to_restore,
       r.failed_deployment_recovery_time IS NOT DISTINCT FROM p.fdrt AS recovery,
       r.rework_rate = p.rework AS rework_rate
FROM plain p
JOIN engineering.dora('2024-04-01', '2024-04-29') r ON r.service IS NOT DISTINCT FROM p.service
ORDER BY p.service NULLS LAST;

-- one service: only its row (no all-services row)
SELECT service, deployments, deployment_days_per_week, lead_time, change_failure_rate, rework_rate
FROM engineering.dora('2024-04-01', '2024-04-29', 'web');
-- a service with nothing in the window still gets its row, with NULLs
SELECT * FROM engineering.dora('2024-04-01', '2024-04-29', 'nobody');

-- an empty window: the all-services row, deployments 0, every figure NULL
SELECT * FROM engineering.dora('2030-01-01', '2030-02-01');
SELECT * FROM engineering.dora('2024-04-01', '2024-04-01');

-- staging: only AS1 (04-02, a Tuesday), which shipped c1 (26 h), c2
-- (48 h) and c3 (20 h): median 26 h.  Days per week: W1 1, W2-W4 0 ->
-- median 0 -> not high; 1 deployment day in 28 days scaled to a month is
-- 1.09 -> medium
SELECT service, deployments, deployment_days_per_week, deployment_frequency_level, lead_time, lead_time_level
FROM engineering.dora('2024-04-01', '2024-04-29', environment => 'staging');

-- the 2021 tiers: api lead time 18 h is high (elite is < 1 h), its change
-- failure rate 28.6% is medium (<= 30%); its frequency is high (>= 1
-- deployment day a month: 6 days in 28 days scaled to a month is 6.5)
SELECT service, deployment_frequency_level, lead_time_level, change_failure_rate_level, time_to_restore_level
FROM engineering.dora('2024-04-01', '2024-04-29', benchmark_year => 2021);

-- where lead time starts:
--   authored_at: c1 authored 07:00 (3 h), c3 13:00 (2 h), c4 04-01 10:00
--     (48 h); the others have no author date and keep committed_at.  api:
--     2, 3, 12, 12, 24, 24, 48, 168 h -> (12 + 24) / 2 = 18 h
--   pr_first_commit: c3 is the squash commit of #7, first commit 03-30
--     14:00: 04-01 15:00 - 03-30 14:00 = 49 h; api: 2, 12, 12, 24, 24, 24,
--     49, 168 -> (24 + 24) / 2 = 24 h
SELECT service, lead_time FROM engineering.dora('2024-04-01', '2024-04-29', 'api', lead_time_start => 'authored_at');
SELECT service, lead_time FROM engineering.dora('2024-04-01', '2024-04-29', 'api', lead_time_start => 'pr_first_commit');
-- the setting changes the default
UPDATE engineering.dora_settings SET lead_time_start = 'pr_first_commit';
SELECT service, lead_time FROM engineering.dora('2024-04-01', '2024-04-29', 'api');
UPDATE engineering.dora_settings SET lead_time_start = 'committed_at';

-- a window that holds no complete week: [04-03 Wed, 04-10 Wed) has api
-- deployment days 04-03 and 04-09: 2 days * 7 / 7 days = 2 per week
SELECT service, deployments, deployment_days_per_week
FROM engineering.dora('2024-04-03', '2024-04-10', 'api');
-- partial weeks at the edges are left out: [03-28 Thu, 04-29) has the
-- same four complete weeks as above (A0 on 03-28 counts as a deployment,
-- not in the weekly median): api 1.5 as before, 8 deployments
SELECT service, deployments, deployment_days_per_week
FROM engineering.dora('2024-03-28', '2024-04-29', 'api');

-- bad input gets a clear error
SELECT * FROM engineering.dora('2024-04-01', '2024-04-29', benchmark_year => 2022);
SELECT * FROM engineering.dora('2024-04-01', '2024-04-29', lead_time_start => 'merged_at');
SELECT * FROM engineering.dora('2024-04-29', '2024-04-01');
SELECT * FROM engineering.dora(NULL, '2024-04-01');
SELECT * FROM engineering.dora('-infinity', '2024-04-01');

-- benchmarks are the user's: with elite lead time below 2 days instead of
-- 1, web's 1 day is elite
UPDATE engineering.dora_benchmarks SET max_duration = '2 days'
WHERE report_year = 2023 AND metric = 'lead_time' AND level = 'elite';
SELECT service, lead_time, lead_time_level FROM engineering.dora('2024-04-01', '2024-04-29', 'web');
UPDATE engineering.dora_benchmarks SET max_duration = '1 day'
WHERE report_year = 2023 AND metric = 'lead_time' AND level = 'elite';
-- and a year of one's own
INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate)
VALUES (2099, 'change_failure_rate', 'fine', 1, 0.25), (2099, 'change_failure_rate', 'not fine', 2, NULL);
SELECT service, change_failure_rate, change_failure_rate_level, lead_time_level
FROM engineering.dora('2024-04-01', '2024-04-29', benchmark_year => 2099);

--
-- Middleware (middlewarehq/middleware,
-- backend/analytics_server/tests/service/Incidents/test_change_failure_rate.py,
-- "multi incidents multi deployments"): six deployments and seven
-- incidents, times relative to T = 2024-06-01 00:00; the incident before
-- the first deployment is ignored and four of the six deployments failed.
-- Middleware attributes an incident to the deployment interval it opened
-- in; attribute_incidents() (latest deployment before it, within 7 days)
-- gives the same links here:
--   I0 T-10d: no deployment before it          -> none
--   I1 T-5d:  D2 (T-6d)                        I2 T-3d: D3 (T-4d)
--   I3 T-20h: D4 (T-2d)                        I4, I5, I6 T-4h/-2h/-1h: D5 (T-6h)
--   D1 (T-7d) and D6 (T-30min) caused nothing -> 4 / 6
--
INSERT INTO engineering.deployments (external_id, service, finished_at, status)
SELECT 'mw-D' || n, 'middleware', timestamptz '2024-06-01' - t, 'success'
FROM (VALUES (1, interval '7 days'), (2, '6 days'), (3, '4 days'), (4, '2 days'),
             (5, '6 hours'), (6, '30 minutes')) v(n, t);
INSERT INTO engineering.incidents (external_id, service, status, opened_at)
SELECT 'mw-I' || n, 'middleware', 'open', timestamptz '2024-06-01' - t
FROM (VALUES (0, interval '10 days'), (1, '5 days'), (2, '3 days'), (3, '20 hours'),
             (4, '4 hours'), (5, '2 hours'), (6, '1 hour')) v(n, t);
-- (7 incidents: the six above and api's Iopen, which gets A0 from 3.4
-- days before it)
SELECT engineering.attribute_incidents() AS attributed;
SELECT i.external_id AS incident, d.external_id AS cause
FROM engineering.incidents i LEFT JOIN engineering.deployments d ON d.id = i.cause_deployment_id
WHERE i.service = 'middleware' ORDER BY i.opened_at;
SELECT service, deployments, change_failure_rate, round((change_failure_rate * 6)::numeric, 9) AS failed_deployments
FROM engineering.dora('2024-05-20', '2024-06-02', 'middleware');

--
-- Pelorus (dora-metrics/pelorus, _test/prometheus/test.yaml): commit and
-- deployment timestamps (epoch seconds) with expected outputs.  Pelorus
-- joins commits and deployments on the image and measures from a commit's
-- first deployment, exactly our rule of counting a change at its first
-- deployment; it has no environments, so all deployments go to
-- production here.  It reports means: by commit, basic-nginx 111, 282 and
-- 2918139 s (mean 972844), kenwilli-basic-spring-boot 1028589 s (its
-- commit deployed three times, counted at the first: 1591796089 -
-- 1590767500), global mean of the app means 1000716.5; time to restore
-- by app 2306 s (mean of 4575 and 37) and 278 s, global 1292.  (Its
-- change failure rate counts failures per deployment without linking
-- them, which is not a DORA change failure rate, so it is not compared.)
--
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at)
SELECT k, app, k, to_timestamp(t) FROM (VALUES
    ('b4db23e0d91699165e92ea38ba03ac277c778397', 'basic-nginx', 1594759624),
    ('9421e2898111a38fd5b6a17d6c94c2e3569b5c2f', 'basic-nginx', 1594760778),
    ('c8683ac2ae37cb9dd7c4c576747bf8f3d74c4f28', 'basic-nginx', 1594760961),
    ('ea67853d8f9b4f43400500f807d72cdfb5b0936d', 'kenwilli-basic-spring-boot', 1590767500)) v(k, app, t);
INSERT INTO engineering.deployments (external_id, service, finished_at, status)
SELECT image, app, to_timestamp(t), 'success' FROM (VALUES
    ('a344eb56', 'basic-nginx', 1594759735), ('9e1348e3', 'basic-nginx', 1594761060),
    ('3131dfa2', 'basic-nginx', 1597679100), ('c291840e', 'basic-nginx', 1594164059),
    ('37452860', 'basic-nginx', 1594759265), ('1e4ae2dd', 'basic-nginx', 1594759432),
    ('08ab5ef5', 'kenwilli-basic-spring-boot', 1591796089),
    ('46332b41', 'kenwilli-basic-spring-boot', 1591813199),
    ('382947b7', 'kenwilli-basic-spring-boot', 1591814663)) v(image, app, t);
-- the (image, commit) pairs of the fixture, as a connector would record them
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
SELECT pg_temp.dep(image), pg_temp.chg(k), 'connector' FROM (VALUES
    ('a344eb56', 'b4db23e0d91699165e92ea38ba03ac277c778397'),
    ('9e1348e3', '9421e2898111a38fd5b6a17d6c94c2e3569b5c2f'),
    ('3131dfa2', 'c8683ac2ae37cb9dd7c4c576747bf8f3d74c4f28'),
    ('08ab5ef5', 'ea67853d8f9b4f43400500f807d72cdfb5b0936d'),
    ('46332b41', 'ea67853d8f9b4f43400500f807d72cdfb5b0936d'),
    ('382947b7', 'ea67853d8f9b4f43400500f807d72cdfb5b0936d')) v(image, k);
INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at)
SELECT issue, app, 'resolved', to_timestamp(o), to_timestamp(r) FROM (VALUES
    ('MDT-6', 'basic-nginx', 1597170899, 1597175474),
    ('MDT-4', 'basic-nginx', 1588262309, 1588262346),
    ('MDT-3', 'kenwilli-basic-spring-boot', 1587750306, 1587750584)) v(issue, app, o, r);
-- lead time by commit and by app (means, as Pelorus reports them)
SELECT service, commit_sha, extract(epoch FROM lead_time) AS lead_seconds
FROM engineering.change_lead_times
WHERE service IN ('basic-nginx', 'kenwilli-basic-spring-boot') ORDER BY service, lead_time;
WITH by_app AS (
    SELECT service, avg(extract(epoch FROM lead_time)) AS mean_seconds
    FROM engineering.change_lead_times
    WHERE service IN ('basic-nginx', 'kenwilli-basic-spring-boot') GROUP BY service
)
SELECT service, mean_seconds FROM by_app
UNION ALL SELECT 'global (mean of the app means)', avg(mean_seconds) FROM by_app;
-- time to restore by app: dora()'s interpolated median of two values is
-- their mean, so it reproduces Pelorus' 2306 and 278 s; mttr agrees, and
-- the mean of the app means is 1292
WITH r AS (
    SELECT service, extract(epoch FROM time_to_restore) AS dora_seconds
    FROM engineering.dora('2020-01-01', '2021-01-01')
    WHERE service IN ('basic-nginx', 'kenwilli-basic-spring-boot')
)
SELECT r.service, r.dora_seconds,
       (SELECT extract(epoch FROM engineering.mttr(opened_at, resolved_at))
          FROM engineering.incidents i WHERE i.service = r.service) AS mttr_seconds
FROM r
UNION ALL SELECT 'global (mean of the app means)', avg(dora_seconds), NULL FROM r
ORDER BY 1;
-- their median lead times (ours): basic-nginx 282 s (middle of three),
-- kenwilli 1028589 s = 11 days 21:43:09
SELECT service, lead_time FROM engineering.dora('2020-01-01', '2021-01-01')
WHERE service IN ('basic-nginx', 'kenwilli-basic-spring-boot');
