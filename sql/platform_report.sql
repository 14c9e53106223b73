-- The platform report on a hand-worked organisation of two teams:
-- storefront owns shop (deploys every weekday, elite), payments owns pay
-- (one slow deployment that caused an incident).  Hires in January, a
-- survey in which payments is too small to be shown, an SLO each, a
-- service catalog with one golden path.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET extra_float_digits = 0;

INSERT INTO engineering.service_teams (service, team) VALUES ('shop', 'storefront'), ('pay', 'payments');

-- shop: every weekday of January and February a deployment at 12:00 of a
-- change committed at 10:00 (lead time 2 h, 5 deployment days a week, no
-- failure).  pay: one deployment on 2024-01-17 of a change committed on
-- 2024-01-10 (lead time 7 days), which caused a 2-hour incident, after a
-- first one on 2024-01-03 (changes from before a service's first deployment
-- are never attributed).  Renovate wrote most of shop's commits; Ann and
-- Bob one each.
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at, authored_at, author)
SELECT 'shop-' || d::date, 'shop', substr(md5(d::text), 1, 12), d + interval '10 hours', d + interval '10 hours',
       CASE d::date WHEN '2024-01-12' THEN 'ann-gh' WHEN '2024-01-18' THEN 'bob-gh' ELSE 'renovate[bot]' END
FROM generate_series(timestamptz '2024-01-01', '2024-02-29', '1 day') d WHERE extract(isodow FROM d) < 6;
INSERT INTO engineering.deployments (external_id, service, environment, status, commit_sha, started_at, finished_at)
SELECT 'shop-' || d::date, 'shop', 'production', 'success', substr(md5(d::text), 1, 12),
       d + interval '11 hours 50 minutes', d + interval '12 hours'
FROM generate_series(timestamptz '2024-01-01', '2024-02-29', '1 day') d WHERE extract(isodow FROM d) < 6;
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at, authored_at, author) VALUES
    ('pay-1', 'pay', 'dd00001', '2024-01-10 12:00', '2024-01-10 12:00', 'dee-gh');
INSERT INTO engineering.deployments (external_id, service, environment, status, commit_sha, started_at, finished_at) VALUES
    ('pay-0', 'pay', 'production', 'success', NULL, '2024-01-03 11:00', '2024-01-03 12:00'),
    ('pay-1', 'pay', 'production', 'success', 'dd00001', '2024-01-17 11:00', '2024-01-17 12:00');
INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at) VALUES
    ('inc-1', 'pay', 'resolved', '2024-01-17 13:00', '2024-01-17 15:00');
SELECT engineering.link_changes() AS linked, engineering.attribute_incidents() AS attributed;

-- people: three storefront hires in January (Ann merges her first pull
-- request 2 days in and ships 4 days in, Bob opens one 4 days in, Cem has
-- done nothing yet), one payments hire (Dee, 6 days), and a veteran.
INSERT INTO engineering.people (name, team, started_at) VALUES
    ('Ann', 'storefront', '2024-01-08 09:00'), ('Bob', 'storefront', '2024-01-15 09:00'),
    ('Cem', 'storefront', '2024-01-22 09:00'), ('Dee', 'payments', '2024-01-10 09:00'),
    ('Vic', 'payments', '2020-03-01 09:00'), ('Zed', 'discovery', '2021-05-01 09:00');
INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT id, 'github', lower(name) || '-gh' FROM engineering.people;
INSERT INTO engineering.pull_requests (external_id, service, number, author, opened_at, merged_at) VALUES
    ('p1', 'shop', 1, 'ann-gh', '2024-01-10 09:00', '2024-01-11 09:00'),
    ('p2', 'shop', 2, 'bob-gh', '2024-01-19 09:00', NULL),
    ('p3', 'pay', 3, 'dee-gh', '2024-01-16 09:00', '2024-01-17 09:00'),
    ('p4', 'pay', 4, 'vic-gh', '2024-01-16 09:00', '2024-01-17 09:00');

-- SLOs at the end of the window: shop has half its budget left (5 bad of
-- 1000, budget 10), pay has spent twice its budget (20 bad of 1000).
INSERT INTO engineering.slos (name, service, objective, period) VALUES
    ('shop-availability', 'shop', 0.99, '30 days'), ('pay-latency', 'pay', 0.99, '30 days');
SELECT engineering.record_slo_measurement('shop-availability', '2024-02-28 12:00', 995, 1000),
       engineering.record_slo_measurement('pay-latency', '2024-02-28 12:00', 980, 1000);

-- the service catalog: shop was created from the service template (the
-- golden path), pay was not; a deprecated component does not count
INSERT INTO engineering.catalog_entities (entity_ref, kind, type, namespace, name, owner, lifecycle, service, template, first_seen_at, last_seen_at) VALUES
    ('component:default/shop', 'component', 'service', 'default', 'shop', 'group:default/storefront', 'production', 'shop',
     'template:default/service-template', '2023-01-01', '2024-03-01'),
    ('component:default/pay', 'component', 'service', 'default', 'pay', 'group:default/payments', 'production', 'pay',
     NULL, '2023-01-01', '2024-03-01'),
    ('component:default/old-pay', 'component', 'service', 'default', 'old-pay', 'group:default/payments', 'deprecated', 'old-pay',
     NULL, '2023-01-01', '2024-03-01');
INSERT INTO engineering.golden_paths (name, kind, pattern) VALUES ('service template', 'template', 'service-template');

-- a survey in February: storefront 6 respondents (shown), payments 3
-- (suppressed), discovery 5 (hidden too: with payments the only small
-- group, the smallest group shown would give it away).  storefront
-- favorable: satisfaction 5,5,4,4,2,4 -> 5/6; NPS 10,10,9,9 promoters, 7
-- passive, 3 detractor -> 50.  Everyone (14): satisfaction favorable
-- 5 + 1 + 2 = 8 of 14; NPS promoters 4 + 1 + 1, detractors 1 + 2 + 3 -> 0.
INSERT INTO engineering.surveys (name, opened_at, closed_at) VALUES ('pulse', '2024-02-01', '2024-02-15');
INSERT INTO engineering.survey_questions (survey, question, kind) VALUES
    ('pulse', 'satisfaction', 'likert5'), ('pulse', 'recommend_platform', 'nps');
INSERT INTO engineering.survey_responses (survey, question, respondent, team, score)
SELECT 'pulse', q, r, t, s
FROM (VALUES ('r1', 'storefront', 5, 10), ('r2', 'storefront', 5, 10), ('r3', 'storefront', 4, 9),
             ('r4', 'storefront', 4, 7), ('r5', 'storefront', 2, 3), ('r9', 'storefront', 4, 9),
             ('r10', 'discovery', 3, 8), ('r11', 'discovery', 3, 5), ('r12', 'discovery', 4, 6),
             ('r13', 'discovery', 5, 10), ('r14', 'discovery', 2, 2),
             ('r6', 'payments', 4, 9), ('r7', 'payments', 3, 6), ('r8', 'payments', 2, 5)) v(r, t, sat, rec),
     LATERAL (VALUES ('satisfaction', sat), ('recommend_platform', rec)) a(q, s);

-- Expected:
--   adoption: storefront 1 of 1 (good), payments 0 of 1 (poor: old-pay is
--     deprecated, not eligible), everyone 1 of 2 (fair); discovery owns
--     nothing in the catalog.
--   onboarding, storefront: 3 hires; first PR 2 d (Ann), 4 d (Bob), - (Cem)
--     -> median 4 d, good (at most 7 d); first deploy: Ann's commit of
--     2024-01-12 shipped 4 d 3 h in, Bob's of 2024-01-18 3 d 3 h in, Cem -
--     -> median 4 d 3 h, good; tenth PR: nobody -> NULL.  payments: Dee,
--     first PR 6 d, first deploy 7 d 3 h (pay-1 shipped her commit), good.
--     everyone: first PR 2 d, 4 d, 6 d, - -> 5 d; first deploy 3 d 3 h,
--     4 d 3 h, 7 d 3 h, - -> 5 d 15 h.
--   satisfaction: storefront 5/6 (good), NPS 50 (good); payments and
--     discovery suppressed; everyone 8/14 (fair) and NPS 0 (fair).
--   delivery, storefront (shop): every key elite (good) but time to restore
--     (no incident: no level); payments (pay): deployment frequency medium
--     (fair: 2 deployment days in January, none in February, median month 1),
--     lead time 7 d, medium (fair: "high" is strictly below 7 days),
--     change failure rate 1/2 low (poor), time to restore 2 h high (good).
--   reliability: storefront 50% left (good), payments -100% (poor).
--   summary: storefront good, payments poor, everyone poor.
SELECT coalesce(team, 'everyone') AS team, area, measure,
       CASE unit WHEN 'seconds' THEN justify_hours(value * interval '1 second')::text
                 ELSE round(value::numeric, 4)::text || ' ' || unit END AS value,
       grade, reason
FROM engineering.platform_report('2024-01-01', '2024-03-01');

-- the delivery rows are dora()'s own figures
SELECT r.team, r.measure, r.value = extract(epoch FROM d.lead_time) AS lead_time_is_doras
FROM engineering.platform_report('2024-01-01', '2024-03-01') r
JOIN engineering.team_services ts ON ts.team = r.team
CROSS JOIN LATERAL engineering.dora('2024-01-01', '2024-03-01', ts.service) d
WHERE r.measure = 'lead time for changes';

-- thresholds are admins' to change: a first PR within 3 days is good now
UPDATE engineering.platform_thresholds SET good = 3 * 86400, fair = 5 * 86400 WHERE measure = 'time_to_first_pr';
SELECT coalesce(team, 'everyone') AS team, measure, grade
FROM engineering.platform_report('2024-01-01', '2024-03-01') WHERE measure = 'time to first PR';
UPDATE engineering.platform_thresholds SET fair = 1 WHERE measure = 'time_to_first_pr';

-- a window before anything: nothing graded, nothing fails
SELECT coalesce(team, 'everyone') AS team, area, measure, value, grade, reason
FROM engineering.platform_report('2023-01-01', '2023-02-01') WHERE area IN ('onboarding', 'satisfaction', 'summary');
SELECT * FROM engineering.platform_report('2024-03-01', '2024-01-01');
SELECT * FROM engineering.platform_report(NULL, '2024-01-01');
