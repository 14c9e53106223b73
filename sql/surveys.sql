-- Surveys: two quarterly surveys imported from the sample CSV
-- (test/data/survey_responses.csv, the COPY documented in README), hand-
-- worked figures (mean and its t interval, favorable rate, NPS and its
-- interval, response rate), suppression at the threshold and the
-- secondary suppression that keeps a small group from being derived,
-- min_group_size below 3 refused, out-of-scale scores refused (INSERT,
-- UPDATE, COPY, a question's kind changed), the trend, and the Typeform
-- import.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET extra_float_digits = 0;

INSERT INTO engineering.surveys (name, opened_at, closed_at) VALUES
    ('2024-q1', '2024-01-15', '2024-01-31'),
    ('2024-q2', '2024-04-08', '2024-04-30');
INSERT INTO engineering.survey_questions (survey, question, kind, text)
SELECT s, q, k, t
FROM unnest(ARRAY['2024-q1', '2024-q2']) s,
     (VALUES ('satisfaction', 'likert5', 'How satisfied are you with our developer tools?'),
             ('ease_of_deploy', 'likert7', 'Deploying my service is easy'),
             ('recommend_platform', 'nps', 'How likely are you to recommend the platform to a colleague?')) q(q, k, t);

-- The teams' people: storefront 8 (and one who left before the first
-- survey, one who joined between the two), payments 5, discovery 4.
INSERT INTO engineering.people (name, team, started_at, left_at)
SELECT 'sf' || k, 'storefront', timestamptz '2023-01-01', NULL::timestamptz FROM generate_series(1, 8) k
UNION ALL SELECT 'sf-left', 'storefront', '2023-01-01', '2024-01-10'
UNION ALL SELECT 'sf-new', 'storefront', '2024-02-01', NULL
UNION ALL SELECT 'pay' || k, 'payments', NULL, NULL FROM generate_series(1, 5) k
UNION ALL SELECT 'disc' || k, 'discovery', '2023-06-01', NULL FROM generate_series(1, 4) k;

\copy engineering.survey_responses (survey, question, respondent, team, answered_at, score) FROM 'test/data/survey_responses.csv' WITH (FORMAT csv, HEADER true)
SELECT survey, team, count(DISTINCT respondent) AS respondents, count(*) AS answers
FROM engineering.survey_responses GROUP BY 1, 2 ORDER BY 1, 2;

-- 2024-q1, everyone (12 respondents, 17 people here during the survey):
--   satisfaction 5,4,4,3,2, 4,4,5,3, 2,3,2: mean 41/12 = 3.4167, s = 1.0836,
--   t(11) = 2.2010: 3.4167 +- 0.6885 = [2.728, 4.105]; favorable (4 and 5) 6/12
--   recommend_platform: promoters (9, 10) 5, detractors (0-6) 4: NPS 100 x 1/12 = 8.3,
--   +- 1.96 x 100 x sqrt((5/12 + 4/12 - (1/12)^2) / 12) = 48.77: [-40.44, 57.11]
SELECT question, kind, group_value, respondents, group_size, round(response_rate::numeric, 4) AS response_rate,
       round(mean::numeric, 4) AS mean, round(mean_ci_low::numeric, 3) AS ci_low, round(mean_ci_high::numeric, 3) AS ci_high,
       round(favorable_rate::numeric, 4) AS favorable, round(nps::numeric, 2) AS nps,
       round(nps_ci_low::numeric, 2) AS nps_low, round(nps_ci_high::numeric, 2) AS nps_high, suppressed, note
FROM engineering.survey_results('2024-q1');

-- per team: storefront has exactly 5 respondents (the threshold: shown);
-- payments (4) and discovery (3) are below it and say so.
--   storefront satisfaction 5,4,4,3,2: mean 3.6, s = 1.1402, t(4) = 2.7764:
--   [2.184, 5.016]; favorable 3/5; 5 of 8 people answered.
--   storefront NPS: 10,9 promoters, 6,3 detractors: 0 +- 78.4
SELECT question, group_value, respondents, group_size, round(response_rate::numeric, 4) AS response_rate,
       round(mean::numeric, 4) AS mean, round(mean_ci_low::numeric, 3) AS ci_low, round(mean_ci_high::numeric, 3) AS ci_high,
       round(favorable_rate::numeric, 4) AS favorable, round(nps::numeric, 2) AS nps,
       round(nps_ci_low::numeric, 2) AS nps_low, round(nps_ci_high::numeric, 2) AS nps_high, suppressed, note
FROM engineering.survey_results('2024-q1', 'team');

-- 2024-q2: discovery (2) is suppressed and is the only small group, so the
-- smallest group shown next to it (payments, 5) is hidden too: otherwise
-- everyone's figures minus storefront's and payments' would be discovery's.
SELECT question, group_value, respondents, group_size, round(mean::numeric, 4) AS mean, suppressed, note
FROM engineering.survey_results('2024-q2', 'team') WHERE question = 'satisfaction';

-- the threshold is a parameter, never below 3
SELECT group_value, respondents, suppressed, note
FROM engineering.survey_results('2024-q1', 'team', 3) WHERE question = 'satisfaction';
SELECT group_value, respondents, suppressed, note
FROM engineering.survey_results('2024-q1', 'team', 4) WHERE question = 'satisfaction';
SELECT * FROM engineering.survey_results('2024-q1', 'team', 2);
SELECT * FROM engineering.survey_results('2024-q1', 'team', NULL);
SELECT * FROM engineering.survey_results('no such survey');
SELECT * FROM engineering.survey_results('2024-q1', ' ');

-- the extension's t quantiles against the tables (df 1, 4, 11, 30) and the
-- expansion beyond them (df 40: 2.021075, 120: 1.979930)
SELECT df, round(engineering._t_975(df)::numeric, 5) AS t FROM unnest(ARRAY[1, 4, 11, 30, 31, 40, 120, 100000]) df;

-- the trend of a question: each survey's figure, the change, and whether it
-- exceeds the combined margin sqrt(m1^2 + m2^2).
--   satisfaction, everyone: 3.4167 +- 0.6885, then 53/13 = 4.0769 +- 0.4590:
--   +0.6603 within sqrt(0.6885^2 + 0.4590^2) = 0.8275: not beyond the noise.
--   ease_of_deploy, everyone: 58/12 = 4.8333 +- 1.0434, then 86/13 = 6.6154 +- 0.3060:
--   +1.7821 beyond sqrt(1.0434^2 + 0.3060^2) = 1.0873.
SELECT survey, group_value, respondents, figure, round(value::numeric, 4) AS value,
       round(change::numeric, 4) AS change, round(change_margin::numeric, 4) AS margin, exceeds_ci, suppressed
FROM engineering.survey_trend('satisfaction');
SELECT survey, group_value, respondents, figure, round(value::numeric, 4) AS value,
       round(change::numeric, 4) AS change, round(change_margin::numeric, 4) AS margin, exceeds_ci, suppressed
FROM engineering.survey_trend('ease_of_deploy');
SELECT survey, group_value, respondents, figure, round(value::numeric, 2) AS value,
       round(change::numeric, 2) AS change, exceeds_ci, suppressed
FROM engineering.survey_trend('recommend_platform', 'team');

-- out-of-scale scores are refused, whatever the way in
INSERT INTO engineering.survey_responses (survey, question, respondent, team, score)
VALUES ('2024-q1', 'satisfaction', 'r-x01', 'storefront', 6);
INSERT INTO engineering.survey_responses (survey, question, respondent, team, score)
VALUES ('2024-q1', 'recommend_platform', 'r-x01', 'storefront', -1);
INSERT INTO engineering.survey_responses (survey, question, respondent, team, score)
VALUES ('2024-q1', 'ease_of_deploy', 'r-x01', 'storefront', 0);
UPDATE engineering.survey_responses SET score = 8 WHERE survey = '2024-q1' AND question = 'ease_of_deploy' AND respondent = 'r-s01';
COPY engineering.survey_responses (survey, question, respondent, team, answered_at, score) FROM stdin WITH (FORMAT csv);
2024-q1,satisfaction,r-x02,payments,2024-01-20 10:00:00+00,4
2024-q1,satisfaction,r-x03,payments,2024-01-20 10:00:00+00,11
\.
SELECT count(*) AS nothing_from_the_refused_copy FROM engineering.survey_responses WHERE respondent IN ('r-x02', 'r-x03');
-- the edges of each scale are accepted
INSERT INTO engineering.survey_responses (survey, question, respondent, score) VALUES
    ('2024-q1', 'satisfaction', 'r-edge', 1), ('2024-q1', 'ease_of_deploy', 'r-edge', 7), ('2024-q1', 'recommend_platform', 'r-edge', 0);
-- a question cannot change to a scale its answers do not fit
UPDATE engineering.survey_questions SET kind = 'likert5' WHERE survey = '2024-q1' AND question = 'ease_of_deploy';
UPDATE engineering.survey_questions SET kind = 'likert7' WHERE survey = '2024-q1' AND question = 'satisfaction';
UPDATE engineering.survey_questions SET kind = 'likert5' WHERE survey = '2024-q1' AND question = 'satisfaction';
-- other refusals: an e-mail as respondent, an unknown question, a kind, a survey closing before it opens
INSERT INTO engineering.survey_responses (survey, question, respondent, score) VALUES ('2024-q1', 'satisfaction', 'ann@acme.example', 4);
INSERT INTO engineering.survey_responses (survey, question, respondent, score) VALUES ('2024-q1', 'mood', 'r-x04', 4);
INSERT INTO engineering.survey_questions (survey, question, kind) VALUES ('2024-q1', 'mood', 'stars10');
INSERT INTO engineering.surveys (name, opened_at, closed_at) VALUES ('backwards', '2024-02-01', '2024-01-01');
SELECT * FROM engineering.survey_scale('nps');

-- Typeform's Responses API page: numeric answers mapped by field ref, the
-- team and the role from hidden fields, other answer types skipped;
-- importing twice changes nothing.
INSERT INTO engineering.surveys (name, opened_at) VALUES ('typeform', '2024-06-01');
INSERT INTO engineering.survey_questions (survey, question, kind) VALUES
    ('typeform', 'satisfaction', 'likert5'), ('typeform', 'recommend_platform', 'nps');
SELECT * FROM engineering.import_typeform_responses('typeform', $json$
{"total_items": 3, "page_count": 1, "items": [
  {"landing_id": "l1", "token": "tok-a1", "response_id": "tok-a1", "landed_at": "2024-06-03T09:58:01Z",
   "submitted_at": "2024-06-03T10:00:00Z", "hidden": {"team": "storefront", "role": "backend"},
   "calculated": {"score": 0},
   "answers": [
     {"field": {"id": "f1", "type": "opinion_scale", "ref": "sat"}, "type": "number", "number": 4},
     {"field": {"id": "f2", "type": "nps", "ref": "recommend_platform"}, "type": "number", "number": 9},
     {"field": {"id": "f3", "type": "long_text", "ref": "comments"}, "type": "text", "text": "faster CI please"}]},
  {"token": "tok-b2", "submitted_at": "2024-06-03T11:30:00+02:00", "hidden": {"team": "payments", "role": "frontend"},
   "answers": [
     {"field": {"id": "f1", "type": "opinion_scale", "ref": "sat"}, "type": "number", "number": 2},
     {"field": {"id": "f2", "type": "nps", "ref": "recommend_platform"}, "type": "number", "number": 6}]},
  {"token": "tok-c3", "submitted_at": "2024-06-04T08:00:00Z", "hidden": {},
   "answers": [{"field": {"id": "f2", "type": "nps", "ref": "recommend_platform"}, "type": "number", "number": 10}]}
]}$json$, '{"sat": "satisfaction"}');
SELECT * FROM engineering.import_typeform_responses('typeform',
    '{"items": [{"token": "tok-a1", "submitted_at": "2024-06-03T10:00:00Z", "hidden": {"team": "storefront", "role": "backend"}, "answers": [{"field": {"ref": "sat"}, "type": "number", "number": 4}]}]}',
    '{"sat": "satisfaction"}');
SELECT question, respondent, team, answered_at, score, attributes FROM engineering.survey_responses
WHERE survey = 'typeform' ORDER BY respondent, question;
\set VERBOSITY terse
SELECT * FROM engineering.import_typeform_responses('typeform',
    '{"items": [{"token": "tok-d4", "answers": [{"field": {"ref": "sat"}, "type": "number", "number": 9}]}]}', '{"sat": "satisfaction"}');
SELECT * FROM engineering.import_typeform_responses('typeform', '[]');
SELECT * FROM engineering.import_typeform_responses('nope', '{"items": []}');
\set VERBOSITY default
-- group by an attribute (role, from the hidden fields): 2 and 1 respondents, both below 3
SELECT question, group_value, respondents, suppressed, note
FROM engineering.survey_results('typeform', 'role', 3) ORDER BY question, group_value NULLS FIRST;
