-- Onboarding: a hand-worked timeline of six people (aliases, activity from
-- before a start date, a staging deployment, someone with no start date,
-- someone who has done nothing yet), the onboarding view, and the cohorts
-- with people who have not reached a milestone counted (censored), not
-- dropped.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

INSERT INTO engineering.people (name, email, team, started_at) VALUES
    ('Ann', 'ann@acme.example', 'storefront', '2024-01-08 09:00'),
    ('Bob', 'bob@acme.example', 'storefront', '2024-01-15 09:00'),
    ('Cem', NULL, 'storefront', '2024-01-22 09:00'),
    ('Dee', NULL, 'payments', '2024-01-10 09:00'),
    ('Eve', NULL, 'payments', NULL),
    ('Fay', NULL, 'payments', '2024-02-05 09:00');
INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT p.id, a.kind, a.alias
FROM (VALUES ('Ann', 'github', 'ann-gh'), ('Bob', 'github', 'bob-gh'), ('Dee', 'github', 'dee-gh'),
             ('Dee', 'name', 'Dee Dee'), ('Eve', 'github', 'eve-gh'), ('Fay', 'github', 'fay-gh')) a(name, kind, alias)
JOIN engineering.people p ON p.name = a.name;

-- Commits (sha, author, author date).  Ann's first commit is from before her
-- start (she contributed as a contractor): it is not onboarding.  Her
-- GitLab commit is found through its e-mail, written in capitals.
INSERT INTO engineering.changes (external_id, service, commit_sha, authored_at, committed_at, author, attributes) VALUES
    ('c0', 'shop', 'a000000', '2023-12-20 09:00', '2023-12-20 09:00', 'ann-gh', '{}'),
    ('c1', 'shop', 'a000001', '2024-01-09 09:00', '2024-01-09 10:00', 'Ann L.', '{"author_email": "ANN@acme.example"}'),
    ('c2', 'shop', 'b000001', '2024-01-16 09:00', '2024-01-16 09:30', 'bob-gh', '{}'),
    ('c3', 'pay',  'd000001', '2024-01-12 09:00', '2024-01-12 09:00', 'Dee Dee', '{}'),
    ('c4', 'pay',  'e000001', '2024-01-03 09:00', '2024-01-03 09:00', 'eve-gh', '{}'),
    ('c5', 'pay',  'e000002', '2024-01-04 09:00', '2024-01-04 09:00', 'eve-gh', '{}');

-- Pull requests: Ann merges ten from her start (the tenth on 2024-02-07,
-- 30 days in) and leaves one open; Bob, Dee and Fay one each.
INSERT INTO engineering.pull_requests (external_id, service, number, author, opened_at, merged_at) VALUES
    ('p1', 'shop', 1, 'ann-gh', '2024-01-10 09:00', '2024-01-11 09:00'),
    ('p2', 'shop', 2, 'bob-gh', '2024-01-19 09:00', '2024-01-22 09:00'),
    ('p3', 'pay',  3, 'dee-gh', '2024-01-16 09:00', '2024-01-17 09:00'),
    ('p4', 'pay',  4, 'fay-gh', '2024-02-06 09:00', NULL),
    ('p5', 'shop', 5, 'ann-gh', '2024-01-31 09:00', NULL);
INSERT INTO engineering.pull_requests (external_id, service, number, author, opened_at, merged_at)
SELECT 'pa' || k, 'shop', 100 + k, 'ann-gh',
       timestamptz '2024-01-12 09:00' + (k - 2) * interval '1 day',
       timestamptz '2024-01-30 09:00' + (k - 2) * interval '1 day'
FROM generate_series(2, 10) k;

-- Deployments: Ann's contractor commit went out before her start; Bob's
-- commit reached staging first, production later.
INSERT INTO engineering.deployments (external_id, service, environment, status, started_at, finished_at) VALUES
    ('d0', 'shop', 'production', 'success', '2023-12-21 09:00', '2023-12-21 09:00'),
    ('d1', 'shop', 'production', 'success', '2024-01-12 09:00', '2024-01-12 09:00'),
    ('d2', 'shop', 'staging',    'success', '2024-01-17 09:00', '2024-01-17 09:00'),
    ('d3', 'shop', 'production', 'failure', '2024-01-18 09:00', '2024-01-18 09:00'),
    ('d4', 'shop', 'production', 'success', '2024-01-24 09:00', '2024-01-24 09:00');
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
SELECT d.id, c.id, 'manual'
FROM (VALUES ('d0', 'c0'), ('d1', 'c1'), ('d2', 'c2'), ('d3', 'c2'), ('d4', 'c2')) l(d, c)
JOIN engineering.deployments d ON d.external_id = l.d
JOIN engineering.changes c ON c.external_id = l.c;

-- Expected, from each start: Ann commit 1 d, PR 2 d, merge 3 d, deploy 4 d,
-- tenth PR 30 d; Bob commit 1 d, PR 4 d, merge 7 d, deploy 9 d (staging and
-- the failed run do not count); Cem nothing; Dee commit 2 d, PR 6 d, merge
-- 7 d, no deploy; Eve has no start date: her first commit is her start;
-- Fay PR 1 d, unmerged.
SELECT name, team, started_at, start_known, time_to_first_commit, time_to_first_pr, time_to_first_merge,
       time_to_first_deploy, time_to_tenth_pr
FROM engineering.onboarding ORDER BY person_id;
SELECT name, first_commit_at, first_pr_opened_at, first_pr_merged_at, first_production_deploy_at, tenth_pr_merged_at
FROM engineering.onboarding WHERE name IN ('Ann', 'Bob') ORDER BY person_id;

-- Cohorts by month.  January, all teams: Ann, Bob, Cem, Dee (Eve's start is
-- not known, so she is in no cohort).  Sorted times with the censored last:
--   first_pr     2 d, 4 d, 6 d, -   median at rank 1.5 = 5 d; p90 at 2.7 reaches "-": NULL
--   first_commit 1 d, 1 d, 2 d, -   median 1 d 12 h
--   first_merge  3 d, 7 d, 7 d, -   median 7 d
--   first_deploy 4 d, 9 d, -, -     median at 1.5 reaches "-": NULL (only half reached it)
--   tenth_pr     30 d, -, -, -      NULL
-- storefront (Ann, Bob, Cem): first_pr 2 d, 4 d, - : median 4 d, p90 at 1.8: NULL;
-- first_deploy 4 d, 9 d, -: median 9 d.  payments (Dee alone): first_pr 6 d
-- is both median and p90.  February: Fay, first_pr 1 d.
SELECT cohort_start, cohort_end, coalesce(team, 'all teams') AS team, milestone, people, reached, not_reached, median, p90
FROM engineering.onboarding_cohorts('2024-01-01', '2024-03-01');

-- the extension's aggregate gives the same median as percentile_cont over
-- the people who reached it, when the censored ranks are not touched
SELECT engineering.lead_time(started_at, first_pr_opened_at) = percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_first_pr) AS same_as_percentile_cont
FROM engineering.onboarding WHERE team = 'storefront' AND time_to_first_pr IS NOT NULL;

-- a cohort step of a week, one team's people only, a window with nobody
SELECT cohort_start, team, milestone, people, reached, median
FROM engineering.onboarding_cohorts('2024-01-08', '2024-01-22', '1 week')
WHERE milestone = 'first_pr';
SELECT count(*) AS rows_without_people FROM engineering.onboarding_cohorts('2020-01-01', '2020-06-01');

-- bad windows are refused
SELECT * FROM engineering.onboarding_cohorts('2024-03-01', '2024-01-01');
SELECT * FROM engineering.onboarding_cohorts('2024-01-01', '2024-03-01', '0 days');
SELECT * FROM engineering.onboarding_cohorts(NULL, '2024-03-01');
SELECT * FROM engineering.onboarding_cohorts('-infinity', '2024-03-01');

-- a bot is never a person's onboarding, and an unknown author is nobody's
INSERT INTO engineering.pull_requests (external_id, service, number, author, opened_at, merged_at) VALUES
    ('b1', 'shop', 900, 'dependabot[bot]', '2024-01-23 09:00', '2024-01-23 10:00'),
    ('u1', 'shop', 901, 'stranger', '2024-01-23 09:00', NULL);
SELECT count(*) AS people_rows, count(*) FILTER (WHERE name = 'Cem' AND first_pr_opened_at IS NULL) AS cem_still_waiting
FROM engineering.onboarding;
