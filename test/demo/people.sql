-- The people of a generated organisation (the mock's manifest), and two
-- developer surveys, written after its sources have synced.  Used by the
-- demo (test/demo/run) and the dashboard test (test/t/050_dashboards.pl):
--
--   psql -v manifest="$(curl .../_control/org)" -f people.sql
--
-- What an HR feed and a survey tool would give, derived from the synced
-- history so that it fits it:
--   - service_teams from the manifest (who owns which service);
--   - one person per author of the synced pull requests (the mock names
--     them <team>-devN), with aliases: the GitHub login, the GitLab
--     username, the commit author name as GitLab writes it; the commit
--     e-mail is the person's e-mail;
--   - start dates: everyone joined a year before the history, except, in
--     each team, dev5 (hired 40 days before the last pull request) and
--     dev6 (20 days before); their pull requests from before (they were
--     contractors) are not onboarding.  One person's start date is not
--     known, one left a month ago;
--   - the catalog's users (refresh_people_from_catalog), which add their
--     groups and Backstage refs;
--   - bots: a few pull requests by Dependabot and Renovate, which the
--     people metrics leave out (engineering.excluded_authors lists them);
--   - two surveys, 100 and 30 days before the end of the history, with
--     three questions (satisfaction, likert5; ease_of_deploy, likert7;
--     recommend_platform, nps); about three people in four answer, under
--     a pseudonym; a team with few respondents is suppressed by
--     survey_results.
-- Idempotent: a second run changes nothing.
\set ON_ERROR_STOP 1

INSERT INTO engineering.service_teams (service, team)
SELECT s->>'name', s->>'team'
FROM jsonb_array_elements(:'manifest'::jsonb -> 'services') s
ON CONFLICT (service) DO NOTHING;

CREATE TEMP TABLE demo_span AS
SELECT min(opened_at) AS history_start, max(opened_at) AS anchor FROM engineering.pull_requests;

CREATE TEMP TABLE demo_people AS
SELECT DISTINCT ON (pr.author) pr.author AS login,
       initcap(replace(pr.author, '-', ' ')) AS name,
       t.team,
       substring(pr.author FROM '[0-9]+$')::integer AS k
FROM engineering.pull_requests pr
JOIN engineering.service_teams t ON split_part(t.team, '-', 1) = split_part(pr.author, '-', 1)
WHERE pr.author ~ '^[a-z]+-dev[0-9]+$'
ORDER BY pr.author, t.team;

INSERT INTO engineering.people (name, email, team, started_at, left_at)
SELECT p.name, p.login || '@acme.example', p.team,
       CASE WHEN p.team = 'comms' AND p.k = 4 THEN NULL
            WHEN p.k = 5 THEN s.anchor - interval '40 days'
            WHEN p.k = 6 THEN s.anchor - interval '20 days'
            ELSE s.history_start - interval '1 year' END,
       CASE WHEN p.team = 'discovery' AND p.k = 1 THEN s.anchor - interval '30 days' END
FROM demo_people p CROSS JOIN demo_span s
WHERE NOT EXISTS (SELECT 1 FROM engineering.people x WHERE lower(x.email) = p.login || '@acme.example');

INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT pe.id, a.kind, a.alias
FROM demo_people p
JOIN engineering.people pe ON lower(pe.email) = p.login || '@acme.example'
CROSS JOIN LATERAL (VALUES ('github', p.login), ('gitlab', p.login), ('name', initcap(p.login))) a(kind, alias)
ON CONFLICT DO NOTHING;

-- The catalog's User entities (the Backstage source synced them): their
-- groups and entity refs join the people above, matched by e-mail; users
-- the history does not know are added without a start date.
SELECT added, updated, left_catalog FROM engineering.refresh_people_from_catalog();

-- Dependabot and Renovate, weekly on each GitHub service
INSERT INTO engineering.pull_requests (external_id, service, number, title, author, opened_at, merged_at)
SELECT format('demo-%s-%s-%s', b.bot, st.service, w), st.service, 90000 + w * 2 + b.n,
       b.title, b.bot, s.history_start + w * interval '7 days' + b.n * interval '3 hours',
       s.history_start + w * interval '7 days' + b.n * interval '3 hours' + interval '2 hours'
FROM engineering.service_teams st
CROSS JOIN demo_span s
CROSS JOIN generate_series(0, floor(extract(epoch FROM s.anchor - s.history_start) / (7 * 86400))::integer) w
CROSS JOIN (VALUES (0, 'dependabot[bot]', 'Bump lodash from 4.17.20 to 4.17.21'),
                   (1, 'renovate[bot]', 'Update dependency eslint to v9')) b(n, bot, title)
WHERE EXISTS (SELECT 1 FROM engineering.pull_requests pr JOIN engineering.sources so ON so.id = pr.source_id
              WHERE pr.service = st.service AND so.kind = 'github')
ON CONFLICT (external_id) WHERE source_id IS NULL DO NOTHING;

-- Two surveys.  A person answers when a hash of their name and the survey
-- says so (about 3 in 4); scores lean by team and improve in the second
-- survey, as after a platform investment.
INSERT INTO engineering.surveys (name, opened_at, closed_at, description)
SELECT v.name, s.anchor - v.opened, s.anchor - v.opened + interval '14 days', v.description
FROM demo_span s
CROSS JOIN (VALUES ('developer survey 1', interval '100 days', 'quarterly developer experience survey'),
                   ('developer survey 2', interval '30 days', 'quarterly developer experience survey')) v(name, opened, description)
ON CONFLICT (name) DO NOTHING;
INSERT INTO engineering.survey_questions (survey, question, kind, text)
SELECT s.name, q.question, q.kind, q.text
FROM engineering.surveys s
CROSS JOIN (VALUES ('satisfaction', 'likert5', 'Overall, how satisfied are you with our developer tools?'),
                   ('ease_of_deploy', 'likert7', 'Deploying my service to production is easy'),
                   ('recommend_platform', 'nps', 'How likely are you to recommend our platform to another engineer?')) q(question, kind, text)
WHERE s.name LIKE 'developer survey _'
ON CONFLICT DO NOTHING;

INSERT INTO engineering.survey_responses (survey, question, respondent, team, answered_at, score)
SELECT sv.name, q.question,
       'r-' || left(md5('demo-salt/' || pe.email), 12),
       pe.team,
       sv.opened_at + (h.b % 10) * interval '1 day' + (h.b % 7) * interval '1 hour',
       greatest(sc.low, least(sc.high,
           CASE q.kind WHEN 'nps' THEN 6 WHEN 'likert7' THEN 4 ELSE 3 END
           + (h.b % 3) - 1
           + CASE WHEN sv.name LIKE '%2' THEN 1 ELSE 0 END
           + CASE pe.team WHEN 'storefront' THEN 1 WHEN 'discovery' THEN 1 WHEN 'finance-eng' THEN -1 ELSE 0 END
           + CASE WHEN q.kind = 'nps' THEN (h.b % 5) - 1 ELSE 0 END))
FROM engineering.surveys sv
JOIN engineering.survey_questions q ON q.survey = sv.name
JOIN engineering.people pe ON (pe.started_at IS NULL OR pe.started_at <= sv.closed_at)
                          AND (pe.left_at IS NULL OR pe.left_at > sv.opened_at)
CROSS JOIN LATERAL (SELECT ('x' || left(md5(pe.email || '/' || sv.name || '/' || q.question), 8))::bit(32)::integer & 2147483647 AS b,
                           ('x' || left(md5(pe.email || '/' || sv.name), 8))::bit(32)::integer & 2147483647 AS answers) h
CROSS JOIN LATERAL engineering.survey_scale(q.kind) sc
WHERE sv.name LIKE 'developer survey _' AND h.answers % 4 <> 0
ON CONFLICT DO NOTHING;

\echo
\echo 'People, bots and surveys of the generated organisation'
SELECT (SELECT count(*) FROM engineering.people) AS people,
       (SELECT count(*) FROM engineering.people p, demo_span s WHERE p.started_at > s.history_start) AS hired_in_history,
       (SELECT count(*) FROM engineering.person_aliases) AS aliases,
       (SELECT count(*) FROM engineering.excluded_authors) AS bots_excluded,
       (SELECT count(*) FROM engineering.surveys) AS surveys,
       (SELECT count(DISTINCT (survey, respondent)) FROM engineering.survey_responses) AS survey_responses;
