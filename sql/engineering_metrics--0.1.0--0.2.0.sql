-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 15: people, onboarding, surveys and the platform report

-- engineering_metrics: people and their identities (platform engineering,
-- part 2).
--
-- Events name their authors the way each vendor does (a GitHub login, a
-- GitLab username, a commit's author name or e-mail).  People metrics need
-- the one person behind those names, so people and their aliases are
-- recorded here, by admins or from Backstage User entities.  An author
-- nobody recorded stays visible as themselves in person_activity rather
-- than vanishing; an author matching the bot pattern is left out of every
-- people metric and listed in excluded_authors, so that what was left out
-- can be checked.

CREATE TABLE engineering.people (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL
                    CHECK (btrim(name) <> '' OR engineering._reject_value('people.name', name, 'a person needs a non-empty name')),
    email           text
                    CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                           OR engineering._reject_value('people.email', email, 'expected an e-mail address')),
    team            text
                    CHECK (team IS NULL OR btrim(team) <> '' OR engineering._reject_value('people.team', team, 'team must not be empty (NULL for none)')),
    started_at      timestamptz,
    left_at         timestamptz,
    attributes      jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(attributes) = 'object'
                           OR engineering._reject_value('people.attributes', attributes::text, 'attributes must be a JSON object')),
    CONSTRAINT people_left_after_started
        CHECK (left_at >= started_at OR left_at IS NULL OR started_at IS NULL
               OR engineering._reject_order('people.left_at', left_at, 'started_at', started_at))
);
CREATE UNIQUE INDEX people_email_key ON engineering.people (lower(email));
CREATE INDEX people_team_idx ON engineering.people (team);

COMMENT ON TABLE engineering.people IS
    'the engineers behind the events: one row per person, filled by admins or by refresh_people_from_catalog() from Backstage User entities';
COMMENT ON COLUMN engineering.people.id IS 'surrogate key referenced by person_aliases';
COMMENT ON COLUMN engineering.people.name IS 'display name';
COMMENT ON COLUMN engineering.people.email IS 'work e-mail; unique (case-insensitive) and matched against commit e-mails like an alias';
COMMENT ON COLUMN engineering.people.team IS 'the team the person belongs to now (a Backstage group name when filled from the catalog); people metrics are reported per team';
COMMENT ON COLUMN engineering.people.started_at IS 'when the person joined (the start of onboarding); NULL when not known';
COMMENT ON COLUMN engineering.people.left_at IS 'when the person left; NULL while they are here';
COMMENT ON COLUMN engineering.people.attributes IS 'other attributes (role, location, level, ...) as a JSON object; survey_results can group by any of its keys';

CREATE TABLE engineering.person_aliases (
    person_id       integer NOT NULL REFERENCES engineering.people (id) ON DELETE CASCADE,
    kind            text NOT NULL
                    CHECK (kind IN ('github', 'gitlab', 'email', 'name', 'pagerduty', 'opsgenie', 'jenkins', 'backstage', 'other')
                           OR engineering._reject_value('person_aliases.kind', kind,
                                                        'expected github, gitlab, email, name, pagerduty, opsgenie, jenkins, backstage or other')),
    alias           text NOT NULL
                    CHECK (btrim(alias) <> '' OR engineering._reject_value('person_aliases.alias', alias, 'an alias must not be empty'))
);
CREATE UNIQUE INDEX person_aliases_kind_alias_key ON engineering.person_aliases (kind, lower(alias));
CREATE INDEX person_aliases_person_idx ON engineering.person_aliases (person_id);

COMMENT ON TABLE engineering.person_aliases IS
    'the identities of a person in the systems the extension reads: one person, many logins, usernames, commit names and e-mails';
COMMENT ON COLUMN engineering.person_aliases.person_id IS 'the person';
COMMENT ON COLUMN engineering.person_aliases.kind IS
    'where the alias is used: github (login), gitlab (username), email (commit e-mail), name (commit author name), pagerduty, opsgenie, jenkins, backstage (the User entity ref), other';
COMMENT ON COLUMN engineering.person_aliases.alias IS
    'the identity as the system writes it; matched case-insensitively against changes.author, pull_requests.author and commit e-mails';

CREATE TABLE engineering.people_settings (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CHECK (singleton OR engineering._reject_value('people_settings.singleton', singleton::text, 'people_settings holds exactly one row')),
    -- compiling the pattern against '' refuses an invalid regular expression
    -- when it is written, not when the first report runs
    bot_pattern     text NOT NULL
                    DEFAULT '(\[bot\]$|^(dependabot|renovate|github-actions|snyk-bot|mend-bolt|greenkeeper)|[-_ ]bot$|^(project|group)_[0-9]+_bot)'
                    CHECK (('' ~* bot_pattern) IS NOT NULL)
);
INSERT INTO engineering.people_settings DEFAULT VALUES;

COMMENT ON TABLE engineering.people_settings IS
    'the one row of people settings: which authors are bots; edit it with UPDATE';
COMMENT ON COLUMN engineering.people_settings.singleton IS 'always true: the table has exactly one row';
COMMENT ON COLUMN engineering.people_settings.bot_pattern IS
    'case-insensitive regular expression: an author it matches is a bot (left out of people metrics, listed in excluded_authors) unless it is an alias or e-mail of a person';

CREATE FUNCTION engineering._people_settings_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.people_settings SET bot_pattern = NEW.bot_pattern WHERE singleton = NEW.singleton;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._people_settings_restore() IS
    'internal trigger: an inserted people_settings row (as pg_restore replays it) replaces the existing one';
CREATE TRIGGER people_settings_restore BEFORE INSERT ON engineering.people_settings
    FOR EACH ROW EXECUTE FUNCTION engineering._people_settings_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.people', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.people_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.person_aliases', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.people_settings', '');

-- A name that two people claim (one's GitHub login is the other's commit
-- name) resolves to neither: guessing would credit one person with the
-- other's work.
CREATE VIEW engineering.person_identities AS
SELECT identity, min(person_id) AS person_id
FROM (SELECT lower(a.alias) AS identity, a.person_id FROM engineering.person_aliases a
      UNION
      SELECT lower(p.email), p.id FROM engineering.people p WHERE p.email IS NOT NULL) i
GROUP BY identity
HAVING count(DISTINCT person_id) = 1;

COMMENT ON VIEW engineering.person_identities IS
    'every alias and e-mail (lower-case) that names exactly one person; a name claimed by two people resolves to neither';
COMMENT ON COLUMN engineering.person_identities.identity IS 'an alias or e-mail, lower-case';
COMMENT ON COLUMN engineering.person_identities.person_id IS 'the one person it names';

CREATE FUNCTION engineering.is_bot(author text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT author ~* s.bot_pattern FROM engineering.people_settings s
$$;
COMMENT ON FUNCTION engineering.is_bot(text) IS
    'whether an author name matches people_settings.bot_pattern (case-insensitive); NULL for a NULL author';

-- The raw activity of every author, with the e-mail a commit carries (GitLab
-- commits record it in attributes) as a second way to find the person.
CREATE VIEW engineering._author_activity AS
SELECT 'commit'::text AS activity, c.id AS activity_id, c.source_id, c.service, c.author,
       coalesce(c.attributes->>'author_email', c.attributes->>'email') AS author_email,
       coalesce(c.authored_at, c.committed_at) AS at, NULL::timestamptz AS merged_at
FROM engineering.changes c
WHERE c.author IS NOT NULL
UNION ALL
SELECT 'pull_request', pr.id, pr.source_id, pr.service, pr.author, NULL, pr.opened_at, pr.merged_at
FROM engineering.pull_requests pr
WHERE pr.author IS NOT NULL;

COMMENT ON VIEW engineering._author_activity IS
    'internal: commits and pull requests with their raw author, before people and bots are resolved';
COMMENT ON COLUMN engineering._author_activity.activity IS 'commit or pull_request';
COMMENT ON COLUMN engineering._author_activity.activity_id IS 'changes.id or pull_requests.id';
COMMENT ON COLUMN engineering._author_activity.source_id IS 'the source that synced the row';
COMMENT ON COLUMN engineering._author_activity.service IS 'the service';
COMMENT ON COLUMN engineering._author_activity.author IS 'the author as the source wrote it';
COMMENT ON COLUMN engineering._author_activity.author_email IS 'the commit e-mail when the source recorded one';
COMMENT ON COLUMN engineering._author_activity.at IS 'commit: author date (else committer date); pull request: opened_at';
COMMENT ON COLUMN engineering._author_activity.merged_at IS 'pull request: merged_at';

CREATE VIEW engineering.person_activity AS
SELECT a.activity, a.activity_id, a.source_id, a.service, a.author,
       coalesce(by_name.person_id, by_email.person_id) AS person_id,
       coalesce(p.name, a.author) AS person,
       p.team, a.at, a.merged_at
FROM engineering._author_activity a
LEFT JOIN engineering.person_identities by_name ON by_name.identity = lower(a.author)
LEFT JOIN engineering.person_identities by_email ON by_email.identity = lower(a.author_email)
LEFT JOIN engineering.people p ON p.id = coalesce(by_name.person_id, by_email.person_id)
WHERE by_name.person_id IS NOT NULL OR by_email.person_id IS NOT NULL
   OR NOT engineering.is_bot(a.author);

COMMENT ON VIEW engineering.person_activity IS
    'commits (changes) and pull requests resolved to people through person_aliases and e-mails; unknown authors stay as themselves (person_id NULL), bots are left out (see excluded_authors)';
COMMENT ON COLUMN engineering.person_activity.activity IS 'commit (a row of changes) or pull_request';
COMMENT ON COLUMN engineering.person_activity.activity_id IS 'changes.id or pull_requests.id';
COMMENT ON COLUMN engineering.person_activity.source_id IS 'the source that synced the row; NULL for hand-made rows';
COMMENT ON COLUMN engineering.person_activity.service IS 'the service';
COMMENT ON COLUMN engineering.person_activity.author IS 'the author as the source wrote it';
COMMENT ON COLUMN engineering.person_activity.person_id IS 'the person the author (or the commit e-mail) is an alias of; NULL for an unknown author';
COMMENT ON COLUMN engineering.person_activity.person IS 'the person''s name, else the author as written';
COMMENT ON COLUMN engineering.person_activity.team IS 'the person''s team; NULL for an unknown author';
COMMENT ON COLUMN engineering.person_activity.at IS 'commit: author date (else committer date); pull request: when it was opened';
COMMENT ON COLUMN engineering.person_activity.merged_at IS 'pull request: when it was merged (NULL while unmerged); NULL for commits';

CREATE VIEW engineering.excluded_authors AS
SELECT a.author,
       count(*) FILTER (WHERE a.activity = 'commit') AS commits,
       count(*) FILTER (WHERE a.activity = 'pull_request') AS pull_requests,
       array_agg(DISTINCT a.service ORDER BY a.service) AS services,
       min(a.at) AS first_seen_at,
       max(a.at) AS last_seen_at
FROM engineering._author_activity a
WHERE engineering.is_bot(a.author)
  AND NOT EXISTS (SELECT 1 FROM engineering.person_identities i
                  WHERE i.identity IN (lower(a.author), lower(a.author_email)))
GROUP BY a.author;

COMMENT ON VIEW engineering.excluded_authors IS
    'the authors left out of people metrics because they match people_settings.bot_pattern (and are no person''s alias), with what they did';
COMMENT ON COLUMN engineering.excluded_authors.author IS 'the author as the source wrote it';
COMMENT ON COLUMN engineering.excluded_authors.commits IS 'its commits (rows of changes)';
COMMENT ON COLUMN engineering.excluded_authors.pull_requests IS 'its pull requests';
COMMENT ON COLUMN engineering.excluded_authors.services IS 'the services it touched';
COMMENT ON COLUMN engineering.excluded_authors.first_seen_at IS 'its earliest commit or pull request';
COMMENT ON COLUMN engineering.excluded_authors.last_seen_at IS 'its latest commit or pull request';

-- engineering_metrics: onboarding time.
--
-- Onboarding is measured from a person's start to their first commit, pull
-- request, merge and production deployment, and to their tenth merged pull
-- request (the onboarding measure of the developer-experience literature).
-- Only what a person did from their start counts: contributions from
-- before it (as a contractor, an open-source contributor, under an alias
-- reused later) are not onboarding.

CREATE VIEW engineering.onboarding AS
WITH acts AS (
    SELECT a.person_id, a.activity, a.activity_id, a.at, a.merged_at
    FROM engineering.person_activity a
    WHERE a.person_id IS NOT NULL
), first_seen AS (
    SELECT a.person_id, min(a.at) AS first_activity_at FROM acts a GROUP BY a.person_id
), base AS (
    SELECT p.id AS person_id, p.name, p.team,
           coalesce(p.started_at, f.first_activity_at) AS started_at,
           p.started_at IS NOT NULL AS start_known
    FROM engineering.people p
    LEFT JOIN first_seen f ON f.person_id = p.id
), since_start AS (
    SELECT a.*, b.started_at,
           row_number() OVER (PARTITION BY a.person_id, a.activity, a.merged_at IS NOT NULL
                              ORDER BY a.merged_at, a.activity_id) AS merge_rank
    FROM acts a JOIN base b ON b.person_id = a.person_id AND a.at >= b.started_at
), firsts AS (
    SELECT s.person_id,
           min(s.at) FILTER (WHERE s.activity = 'commit') AS first_commit_at,
           min(s.at) FILTER (WHERE s.activity = 'pull_request') AS first_pr_opened_at,
           min(s.merged_at) FILTER (WHERE s.activity = 'pull_request') AS first_pr_merged_at,
           min(s.merged_at) FILTER (WHERE s.activity = 'pull_request' AND s.merged_at IS NOT NULL
                                    AND s.merge_rank = 10) AS tenth_pr_merged_at
    FROM since_start s
    GROUP BY s.person_id
), deploys AS (
    SELECT s.person_id, min(d.finished_at) AS first_production_deploy_at
    FROM since_start s
    JOIN engineering.deployment_changes dc ON dc.change_id = s.activity_id
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE s.activity = 'commit' AND d.status = 'success'
      AND d.environment = (SELECT production_environment FROM engineering.dora_settings)
    GROUP BY s.person_id
)
SELECT b.person_id, b.name, b.team, b.started_at, b.start_known,
       f.first_commit_at, f.first_pr_opened_at, f.first_pr_merged_at,
       d.first_production_deploy_at, f.tenth_pr_merged_at,
       f.first_commit_at - b.started_at AS time_to_first_commit,
       f.first_pr_opened_at - b.started_at AS time_to_first_pr,
       f.first_pr_merged_at - b.started_at AS time_to_first_merge,
       d.first_production_deploy_at - b.started_at AS time_to_first_deploy,
       f.tenth_pr_merged_at - b.started_at AS time_to_tenth_pr
FROM base b
LEFT JOIN firsts f ON f.person_id = b.person_id
LEFT JOIN deploys d ON d.person_id = b.person_id;

COMMENT ON VIEW engineering.onboarding IS
    'one row per person: start, first commit, pull request, merge and production deployment, tenth merged pull request, and the time from the start to each (only activity from the start counts)';
COMMENT ON COLUMN engineering.onboarding.person_id IS 'the person (people.id)';
COMMENT ON COLUMN engineering.onboarding.name IS 'the person''s name';
COMMENT ON COLUMN engineering.onboarding.team IS 'the person''s team';
COMMENT ON COLUMN engineering.onboarding.started_at IS 'people.started_at when known, else the person''s first commit or pull request';
COMMENT ON COLUMN engineering.onboarding.start_known IS 'true when started_at is the recorded start date, false when it is the first activity';
COMMENT ON COLUMN engineering.onboarding.first_commit_at IS 'author date of the person''s first commit from the start';
COMMENT ON COLUMN engineering.onboarding.first_pr_opened_at IS 'when the person''s first pull request (opened from the start) was opened';
COMMENT ON COLUMN engineering.onboarding.first_pr_merged_at IS 'the first merge of a pull request the person opened from the start';
COMMENT ON COLUMN engineering.onboarding.first_production_deploy_at IS
    'the first successful deployment to the production environment (dora_settings) that shipped a commit of the person''s from the start';
COMMENT ON COLUMN engineering.onboarding.tenth_pr_merged_at IS 'when the tenth of the person''s pull requests (opened from the start) was merged, in order of merging';
COMMENT ON COLUMN engineering.onboarding.time_to_first_commit IS 'first_commit_at - started_at';
COMMENT ON COLUMN engineering.onboarding.time_to_first_pr IS 'first_pr_opened_at - started_at: time to first pull request';
COMMENT ON COLUMN engineering.onboarding.time_to_first_merge IS 'first_pr_merged_at - started_at';
COMMENT ON COLUMN engineering.onboarding.time_to_first_deploy IS 'first_production_deploy_at - started_at: time to first production deployment';
COMMENT ON COLUMN engineering.onboarding.time_to_tenth_pr IS 'tenth_pr_merged_at - started_at: "time to 10th PR"';

-- The milestones in report order, with the onboarding column each reads.
CREATE FUNCTION engineering._onboarding_milestones()
RETURNS TABLE (ord integer, milestone text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES (1, 'first_commit'), (2, 'first_pr'), (3, 'first_merge'), (4, 'first_deploy'), (5, 'tenth_pr')
$$;
COMMENT ON FUNCTION engineering._onboarding_milestones() IS
    'internal: the onboarding milestones in report order';

-- A person who has not reached a milestone is counted as slower than
-- everyone who has: the aggregate is fed a far-future end for them (a
-- thousand years after the start), and a percentile whose ranks reach one
-- of them is NULL.  So a median exists once the people at its ranks have
-- all reached the milestone: for an odd cohort as soon as half of it (the
-- middle person) has, for an even one once more than half have.
CREATE FUNCTION engineering.onboarding_cohorts(from_ts timestamptz, to_ts timestamptz,
                                               step interval DEFAULT '1 month')
RETURNS TABLE (cohort_start timestamptz, cohort_end timestamptz, team text, milestone text,
               people bigint, reached bigint, not_reached bigint, median interval, p90 interval)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
#variable_conflict use_column
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR step IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'onboarding_cohorts needs finite from_ts, to_ts and a step' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts >= to_ts THEN
        RAISE EXCEPTION 'onboarding_cohorts: from_ts % is not before to_ts %', from_ts, to_ts
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts + step <= from_ts THEN
        RAISE EXCEPTION 'onboarding_cohorts: step % must be positive', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH cohorts AS (
        SELECT c AS c_start, least(c + step, to_ts) AS c_end
        FROM generate_series(from_ts, to_ts, step) c
        WHERE c < to_ts
    ), members AS (
        SELECT k.c_start, k.c_end, coalesce(o.team, '(no team)') AS team, o.started_at, m.ord, m.milestone,
               CASE m.milestone
                   WHEN 'first_commit' THEN o.first_commit_at
                   WHEN 'first_pr' THEN o.first_pr_opened_at
                   WHEN 'first_merge' THEN o.first_pr_merged_at
                   WHEN 'first_deploy' THEN o.first_production_deploy_at
                   WHEN 'tenth_pr' THEN o.tenth_pr_merged_at
               END AS reached_at
        FROM engineering.onboarding o
        JOIN cohorts k ON o.started_at >= k.c_start AND o.started_at < k.c_end
        CROSS JOIN engineering._onboarding_milestones() m
        WHERE o.start_known
    ), groups AS (
        SELECT m.c_start, m.c_end, CASE WHEN grouping(m.team) = 0 THEN m.team END AS team,
               m.ord, m.milestone,
               count(*) AS n, count(m.reached_at) AS r,
               engineering.lead_time(m.started_at, coalesce(m.reached_at, m.started_at + interval '1000 years'), 0.5) AS med,
               engineering.lead_time(m.started_at, coalesce(m.reached_at, m.started_at + interval '1000 years'), 0.9) AS p90
        FROM members m
        GROUP BY GROUPING SETS ((m.c_start, m.c_end, m.ord, m.milestone, m.team), (m.c_start, m.c_end, m.ord, m.milestone))
    )
    SELECT g.c_start, g.c_end, g.team, g.milestone, g.n, g.r, g.n - g.r,
           CASE WHEN ceil(0.5::float8 * (g.n - 1)) < g.r THEN g.med END,
           CASE WHEN ceil(0.9::float8 * (g.n - 1)) < g.r THEN g.p90 END
    FROM groups g
    ORDER BY g.c_start, g.team NULLS FIRST, g.ord;
END
$$;
COMMENT ON FUNCTION engineering.onboarding_cohorts(timestamptz, timestamptz, interval) IS
    'per start cohort [from_ts + k*step, +step) and per team (team NULL: all teams), for each onboarding milestone: people with a known start, how many reached it, how many not yet, and the interpolated median and p90 of the time to it (NULL while a rank falls on someone who has not reached it)';

-- engineering_metrics: developer satisfaction surveys.
--
-- Responses are kept under pseudonyms and read only by admins; everyone
-- else sees them through survey_results(), which runs as the extension's
-- owner and never shows a group with fewer than min_group_size respondents
-- (nor a group whose figures could be derived from the total and the
-- groups shown).

CREATE TABLE engineering.surveys (
    name            text PRIMARY KEY
                    CHECK (btrim(name) <> '' OR engineering._reject_value('surveys.name', name, 'a survey needs a non-empty name')),
    opened_at       timestamptz NOT NULL,
    closed_at       timestamptz,
    description     text,
    CONSTRAINT surveys_closed_after_opened
        CHECK (closed_at >= opened_at OR closed_at IS NULL
               OR engineering._reject_order('surveys.closed_at', closed_at, 'opened_at', opened_at))
);
COMMENT ON TABLE engineering.surveys IS 'developer surveys: one row per survey run (e.g. one per quarter)';
COMMENT ON COLUMN engineering.surveys.name IS 'unique name, e.g. 2024-q2';
COMMENT ON COLUMN engineering.surveys.opened_at IS 'when the survey opened; orders surveys in survey_trend()';
COMMENT ON COLUMN engineering.surveys.closed_at IS 'when it closed; NULL while open.  Group sizes count the people here at some point between opened_at and closed_at';
COMMENT ON COLUMN engineering.surveys.description IS 'free text';

CREATE TABLE engineering.survey_questions (
    survey          text NOT NULL REFERENCES engineering.surveys (name) ON UPDATE CASCADE ON DELETE CASCADE,
    question        text NOT NULL
                    CHECK (btrim(question) <> '' OR engineering._reject_value('survey_questions.question', question, 'a question needs a non-empty key')),
    kind            text NOT NULL
                    CHECK (kind IN ('likert5', 'likert7', 'nps', 'csat5')
                           OR engineering._reject_value('survey_questions.kind', kind, 'expected likert5, likert7, nps or csat5')),
    text            text,
    PRIMARY KEY (survey, question)
);
COMMENT ON TABLE engineering.survey_questions IS
    'the questions of each survey; the same question key in several surveys is what survey_trend() follows';
COMMENT ON COLUMN engineering.survey_questions.survey IS 'the survey';
COMMENT ON COLUMN engineering.survey_questions.question IS 'a stable key for the question (e.g. satisfaction, ease_of_deploy), the same across surveys';
COMMENT ON COLUMN engineering.survey_questions.kind IS
    'the scale: likert5 (1-5), likert7 (1-7), csat5 (1-5), nps (0-10, "how likely are you to recommend")';
COMMENT ON COLUMN engineering.survey_questions.text IS 'the wording shown to respondents';

CREATE TABLE engineering.survey_responses (
    survey          text NOT NULL,
    question        text NOT NULL,
    respondent      text NOT NULL
                    CHECK ((btrim(respondent) <> '' AND respondent !~ '@')
                           OR engineering._reject_value('survey_responses.respondent', respondent,
                                                        'a non-empty pseudonym, not an e-mail address (store e.g. a salted hash)')),
    team            text,
    answered_at     timestamptz,
    score           integer NOT NULL,
    attributes      jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(attributes) = 'object'
                           OR engineering._reject_value('survey_responses.attributes', attributes::text, 'attributes must be a JSON object')),
    PRIMARY KEY (survey, question, respondent),
    FOREIGN KEY (survey, question) REFERENCES engineering.survey_questions (survey, question)
        ON UPDATE CASCADE ON DELETE CASCADE
);
COMMENT ON TABLE engineering.survey_responses IS
    'raw answers, one per respondent and question, under a pseudonym; readable by admins only (others use survey_results)';
COMMENT ON COLUMN engineering.survey_responses.survey IS 'the survey';
COMMENT ON COLUMN engineering.survey_responses.question IS 'the question key';
COMMENT ON COLUMN engineering.survey_responses.respondent IS 'a pseudonym the survey tool gives each respondent (never a name or an e-mail)';
COMMENT ON COLUMN engineering.survey_responses.team IS 'the respondent''s team as the survey tool recorded it; NULL when not asked';
COMMENT ON COLUMN engineering.survey_responses.answered_at IS 'when the answer was submitted';
COMMENT ON COLUMN engineering.survey_responses.score IS 'the answer on the question''s scale; a score outside it is refused';
COMMENT ON COLUMN engineering.survey_responses.attributes IS
    'other demographics the survey tool recorded (role, tenure, ...) as a JSON object; survey_results can group by its keys';

SELECT pg_catalog.pg_extension_config_dump('engineering.surveys', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.survey_questions', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.survey_responses', '');

CREATE FUNCTION engineering.survey_scale(kind text, OUT low integer, OUT high integer, OUT favorable_from integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT v.low, v.high, v.favorable_from
    FROM (VALUES ('likert5', 1, 5, 4), ('likert7', 1, 7, 6), ('csat5', 1, 5, 4), ('nps', 0, 10, 9))
         AS v(kind, low, high, favorable_from)
    WHERE v.kind = survey_scale.kind
$$;
COMMENT ON FUNCTION engineering.survey_scale(text) IS
    'the scale of a question kind: lowest and highest score, and the lowest favorable score (the top two boxes; for nps the promoters, 9 and 10)';

CREATE FUNCTION engineering._check_survey_score()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    q_kind text;
    s record;
BEGIN
    SELECT q.kind INTO q_kind FROM engineering.survey_questions q
    WHERE q.survey = NEW.survey AND q.question = NEW.question;
    IF NOT FOUND THEN
        RETURN NEW;   -- the foreign key reports it
    END IF;
    s := engineering.survey_scale(q_kind);
    IF NEW.score < s.low OR NEW.score > s.high THEN
        RAISE EXCEPTION 'survey_responses.score: % is outside the scale of question "%" of survey "%"',
                        NEW.score, NEW.question, NEW.survey
              USING ERRCODE = 'check_violation',
                    DETAIL = format('%s questions are answered from %s to %s (respondent %s)', q_kind, s.low, s.high, NEW.respondent);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._check_survey_score() IS
    'internal trigger: refuses a survey response whose score is outside its question''s scale';
CREATE TRIGGER survey_responses_score_in_scale BEFORE INSERT OR UPDATE ON engineering.survey_responses
    FOR EACH ROW EXECUTE FUNCTION engineering._check_survey_score();

CREATE FUNCTION engineering._check_survey_question_kind()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    s record;
    bad integer;
BEGIN
    s := engineering.survey_scale(NEW.kind);
    SELECT r.score INTO bad FROM engineering.survey_responses r
    WHERE r.survey = OLD.survey AND r.question = OLD.question AND (r.score < s.low OR r.score > s.high)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'survey_questions.kind: question "%" of survey "%" has a response scored %, outside the % scale',
                        OLD.question, OLD.survey, bad, NEW.kind
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._check_survey_question_kind() IS
    'internal trigger: refuses changing a question''s kind to a scale its responses do not fit';
CREATE TRIGGER survey_questions_kind_fits_responses BEFORE UPDATE OF kind ON engineering.survey_questions
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION engineering._check_survey_question_kind();

-- Typeform's Responses API (GET /forms/{form_id}/responses) is the survey
-- export with a stable, documented JSON shape that developer surveys most
-- often come from: {"items": [{"token", "submitted_at", "hidden": {...},
-- "answers": [{"field": {"ref", "type"}, "type": "number", "number": 8}]}]}.
-- Numeric answers (opinion scale, rating, NPS fields) become responses; the
-- question key is the field's ref (or question_map->>ref), the respondent
-- the response token, the team and other demographics its hidden fields.
CREATE FUNCTION engineering.import_typeform_responses(survey text, payload jsonb,
                                                      question_map jsonb DEFAULT '{}',
                                                      team_field text DEFAULT 'team')
RETURNS TABLE (imported bigint, skipped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
#variable_conflict use_column
DECLARE
    items jsonb := payload -> 'items';
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'import_typeform_responses: expected a Typeform responses page, a JSON object with an "items" array'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(question_map) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'import_typeform_responses: question_map must be a JSON object {"field ref": "question"}'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.surveys s WHERE s.name = import_typeform_responses.survey) THEN
        RAISE EXCEPTION 'import_typeform_responses: no survey named "%"', import_typeform_responses.survey
              USING ERRCODE = 'invalid_parameter_value', HINT = 'INSERT INTO engineering.surveys and survey_questions first';
    END IF;
    RETURN QUERY
    WITH answers AS (
        SELECT coalesce(question_map ->> (a -> 'field' ->> 'ref'), a -> 'field' ->> 'ref') AS question,
               coalesce(i ->> 'token', i ->> 'response_id') AS respondent,
               i -> 'hidden' ->> team_field AS team,
               engineering._ts(i -> 'submitted_at') AS answered_at,
               CASE WHEN a ->> 'type' = 'number' AND jsonb_typeof(a -> 'number') = 'number'
                    THEN (a ->> 'number')::numeric END AS score,
               coalesce(i -> 'hidden', '{}') - team_field AS attributes
        FROM jsonb_array_elements(items) i, jsonb_array_elements(coalesce(i -> 'answers', '[]')) a
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(a) = 'object'
    ), usable AS (
        SELECT a.* FROM answers a
        WHERE a.score IS NOT NULL AND a.score = trunc(a.score) AND a.respondent IS NOT NULL
          AND EXISTS (SELECT 1 FROM engineering.survey_questions q
                      WHERE q.survey = import_typeform_responses.survey AND q.question = a.question)
    ), stored AS (
        INSERT INTO engineering.survey_responses AS r (survey, question, respondent, team, answered_at, score, attributes)
        SELECT import_typeform_responses.survey, u.question, u.respondent, u.team, u.answered_at, u.score::integer,
               CASE WHEN jsonb_typeof(u.attributes) = 'object' THEN u.attributes ELSE '{}' END
        FROM usable u
        ON CONFLICT (survey, question, respondent) DO UPDATE
            SET team = EXCLUDED.team, answered_at = EXCLUDED.answered_at,
                score = EXCLUDED.score, attributes = EXCLUDED.attributes
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM answers) - (SELECT count(*) FROM stored);
END
$$;
COMMENT ON FUNCTION engineering.import_typeform_responses(text, jsonb, jsonb, text) IS
    'imports a page of Typeform''s Responses API into survey_responses (numeric answers to the survey''s questions, keyed by field ref; respondent = response token; team and attributes from hidden fields); idempotent; returns how many answers were stored and skipped';

-- Student's t quantile for a two-sided 95% interval: the table up to 30
-- degrees of freedom, then the Cornish-Fisher expansion (error below 1e-6).
CREATE FUNCTION engineering._t_975(df integer)
RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN df IS NULL OR df < 1 THEN NULL
        WHEN df <= 30 THEN (ARRAY[12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624,
                                  2.306004, 2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787,
                                  2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963, 2.079614,
                                  2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407,
                                  2.045230, 2.042272]::float8[])[df]
        ELSE z + (z^3 + z) / 4 / df
               + (5 * z^5 + 16 * z^3 + 3 * z) / 96 / df^2
               + (3 * z^7 + 19 * z^5 + 17 * z^3 - 15 * z) / 384 / df^3
               + (79 * z^9 + 776 * z^7 + 1482 * z^5 - 1920 * z^3 - 945 * z) / 92160 / df^4
    END
    FROM (SELECT 1.959963984540054::float8 AS z) c
$$;
COMMENT ON FUNCTION engineering._t_975(integer) IS
    'internal: the 97.5% quantile of Student''s t with df degrees of freedom (two-sided 95% intervals)';

CREATE FUNCTION engineering.survey_results(survey text, group_by text DEFAULT NULL, min_group_size integer DEFAULT 5)
RETURNS TABLE (question text, kind text, group_value text,
               respondents bigint, group_size bigint, response_rate float8,
               mean float8, mean_ci_low float8, mean_ci_high float8,
               favorable_rate float8, nps float8, nps_ci_low float8, nps_ci_high float8,
               suppressed boolean, note text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    s engineering.surveys;
BEGIN
    IF min_group_size IS NULL OR min_group_size < 3 THEN
        RAISE EXCEPTION 'survey_results: min_group_size % is below 3', coalesce(min_group_size::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'groups smaller than 3 would show individual answers';
    END IF;
    SELECT * INTO s FROM engineering.surveys v WHERE v.name = survey_results.survey;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'survey_results: no survey named "%"', survey_results.survey USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF group_by IS NOT NULL AND btrim(group_by) = '' THEN
        RAISE EXCEPTION 'survey_results: group_by must be NULL, team or an attribute key' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH answers AS (
        SELECT r.question, q.kind, r.score, sc.favorable_from,
               CASE WHEN group_by IS NULL THEN NULL
                    WHEN group_by = 'team' THEN coalesce(r.team, '(none)')
                    ELSE coalesce(r.attributes ->> group_by, '(none)') END AS grp
        FROM engineering.survey_responses r
        JOIN engineering.survey_questions q ON q.survey = r.survey AND q.question = r.question
        CROSS JOIN LATERAL engineering.survey_scale(q.kind) sc
        WHERE r.survey = s.name
    ), members AS (
        -- the people here at some point while the survey was open
        SELECT CASE WHEN group_by = 'team' THEN coalesce(p.team, '(none)')
                    ELSE coalesce(p.attributes ->> group_by, '(none)') END AS grp
        FROM engineering.people p
        WHERE (p.started_at IS NULL OR p.started_at <= coalesce(s.closed_at, s.opened_at))
          AND (p.left_at IS NULL OR p.left_at > s.opened_at)
    ), sizes AS (
        SELECT m.grp, count(*) AS n FROM members m GROUP BY GROUPING SETS ((m.grp), ())
    ), figures AS (
        SELECT a.question, a.kind,
               grouping(a.grp) = 1 AS is_total,
               CASE WHEN grouping(a.grp) = 0 THEN a.grp END AS grp,
               count(*) AS n,
               avg(a.score)::float8 AS mean,
               stddev_samp(a.score)::float8 AS sd,
               (count(*) FILTER (WHERE a.score >= a.favorable_from))::float8 / count(*) AS favorable,
               (count(*) FILTER (WHERE a.score >= 9))::float8 / count(*) AS promoters,
               (count(*) FILTER (WHERE a.score <= 6))::float8 / count(*) AS detractors
        FROM answers a
        GROUP BY GROUPING SETS ((a.question, a.kind, a.grp), (a.question, a.kind))
    ), primary_cut AS (
        SELECT f.*, f.n < min_group_size AS small FROM figures f
        -- without group_by both grouping sets are the same rows: keep one
        WHERE group_by IS NOT NULL OR f.is_total
    ), secondary_cut AS (
        -- One small group hidden next to a total shown is no protection: the
        -- total and the other groups give it away.  Then the smallest group
        -- shown is hidden too.
        SELECT p.*,
               (NOT p.small AND NOT p.is_total
                AND (SELECT count(*) FROM primary_cut x WHERE x.question = p.question AND NOT x.is_total AND x.small) = 1
                AND p.grp = (SELECT x.grp FROM primary_cut x
                             WHERE x.question = p.question AND NOT x.is_total AND NOT x.small
                             ORDER BY x.n, x.grp LIMIT 1)) AS hidden_too
        FROM primary_cut p
    )
    SELECT c.question, c.kind, c.grp,
           CASE WHEN hide THEN NULL ELSE c.n END,
           CASE WHEN hide THEN NULL ELSE z.n END,
           CASE WHEN hide OR coalesce(z.n, 0) = 0 THEN NULL ELSE c.n::float8 / z.n END,
           CASE WHEN hide THEN NULL ELSE c.mean END,
           CASE WHEN hide THEN NULL ELSE c.mean - engineering._t_975((c.n - 1)::integer) * c.sd / sqrt(c.n) END,
           CASE WHEN hide THEN NULL ELSE c.mean + engineering._t_975((c.n - 1)::integer) * c.sd / sqrt(c.n) END,
           CASE WHEN hide THEN NULL ELSE c.favorable END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL ELSE 100 * (c.promoters - c.detractors) END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL
                ELSE 100 * (c.promoters - c.detractors
                            - 1.959963984540054 * sqrt((c.promoters + c.detractors - (c.promoters - c.detractors)^2) / c.n)) END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL
                ELSE 100 * (c.promoters - c.detractors
                            + 1.959963984540054 * sqrt((c.promoters + c.detractors - (c.promoters - c.detractors)^2) / c.n)) END,
           hide,
           CASE WHEN c.small THEN format('suppressed: fewer than %s respondents', min_group_size)
                WHEN c.hidden_too THEN 'suppressed: it would reveal a smaller suppressed group through the total' END
    FROM secondary_cut c
    CROSS JOIN LATERAL (SELECT c.small OR c.hidden_too AS hide) h
    LEFT JOIN sizes z ON (z.grp IS NULL AND c.is_total) OR z.grp = c.grp
    ORDER BY c.question, c.grp NULLS FIRST;
END
$$;
COMMENT ON FUNCTION engineering.survey_results(text, text, integer) IS
    'per question and group (group_by: NULL, team, or a key of the responses'' and people''s attributes; group NULL: everyone): respondents, response rate against the group in people, mean with its 95% t interval, favorable rate (top two boxes), NPS with its 95% interval; a group below min_group_size (at least 3) is suppressed, and so is the smallest other group when only one would be';

CREATE FUNCTION engineering.survey_trend(question text, group_by text DEFAULT NULL, min_group_size integer DEFAULT 5)
RETURNS TABLE (survey text, opened_at timestamptz, group_value text, respondents bigint, figure text,
               value float8, ci_low float8, ci_high float8, previous_value float8, change float8,
               change_margin float8, exceeds_ci boolean, suppressed boolean)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH per_survey AS (
        SELECT s.name, s.opened_at, r.group_value, r.respondents, r.suppressed,
               CASE WHEN r.kind = 'nps' THEN 'nps' ELSE 'mean' END AS figure,
               CASE WHEN r.kind = 'nps' THEN r.nps ELSE r.mean END AS value,
               CASE WHEN r.kind = 'nps' THEN r.nps_ci_low ELSE r.mean_ci_low END AS ci_low,
               CASE WHEN r.kind = 'nps' THEN r.nps_ci_high ELSE r.mean_ci_high END AS ci_high
        FROM engineering.surveys s
        JOIN engineering.survey_questions q ON q.survey = s.name AND q.question = survey_trend.question
        CROSS JOIN LATERAL engineering.survey_results(s.name, survey_trend.group_by, survey_trend.min_group_size) r
        WHERE r.question = survey_trend.question
    ), with_previous AS (
        SELECT p.*,
               lag(p.value) OVER w AS prev_value,
               lag((p.ci_high - p.ci_low) / 2) OVER w AS prev_margin
        FROM per_survey p
        WINDOW w AS (PARTITION BY p.group_value ORDER BY p.opened_at, p.name)
    )
    SELECT w.name, w.opened_at, w.group_value, w.respondents, w.figure, w.value, w.ci_low, w.ci_high,
           w.prev_value, w.value - w.prev_value,
           sqrt(w.prev_margin^2 + ((w.ci_high - w.ci_low) / 2)^2),
           abs(w.value - w.prev_value) > sqrt(w.prev_margin^2 + ((w.ci_high - w.ci_low) / 2)^2),
           w.suppressed
    FROM with_previous w
    ORDER BY w.group_value NULLS FIRST, w.opened_at, w.name
$$;
COMMENT ON FUNCTION engineering.survey_trend(text, text, integer) IS
    'one question across the surveys that asked it, per group: the figure (mean, or NPS for nps questions) with its 95% interval, the change from the previous survey and whether it exceeds the combined margin sqrt(previous margin^2 + margin^2); suppression as in survey_results';

-- engineering_metrics: the platform report, "where does my team stand?".
--
-- The three platform-engineering measurements (golden-path adoption,
-- onboarding time, developer satisfaction) next to the DORA keys and SLO
-- budgets of each team's services, each graded with the reason for its
-- grade.  DORA keys are graded by dora_benchmarks; the other measures by
-- platform_thresholds, which ships defaults of ours (no published standard
-- grades them) for admins to replace.

CREATE TABLE engineering.service_teams (
    service         text PRIMARY KEY
                    CHECK (btrim(service) <> '' OR engineering._reject_value('service_teams.service', service, 'service must not be empty')),
    team            text NOT NULL
                    CHECK (btrim(team) <> '' OR engineering._reject_value('service_teams.team', team, 'team must not be empty'))
);
COMMENT ON TABLE engineering.service_teams IS
    'which team owns a service, for services no catalog describes (a catalog owner, when there is one, is used as well)';
COMMENT ON COLUMN engineering.service_teams.service IS 'the service, as the event tables name it';
COMMENT ON COLUMN engineering.service_teams.team IS 'the owning team, as people.team names it';

CREATE TABLE engineering.platform_thresholds (
    measure         text PRIMARY KEY
                    CHECK (measure IN ('golden_path_adoption', 'slo_budget_remaining', 'time_to_first_pr', 'time_to_first_deploy',
                                       'time_to_tenth_pr', 'favorable_rate', 'nps')
                           OR engineering._reject_value('platform_thresholds.measure', measure,
                                                        'expected golden_path_adoption, slo_budget_remaining, time_to_first_pr, time_to_first_deploy, time_to_tenth_pr, favorable_rate or nps')),
    higher_is_better boolean NOT NULL,
    good            float8 NOT NULL,
    fair            float8 NOT NULL,
    description     text,
    CONSTRAINT platform_thresholds_ordered
        CHECK (CASE WHEN higher_is_better THEN good >= fair ELSE good <= fair END
               OR engineering._reject_value('platform_thresholds.fair', fair::text, 'fair must be on the worse side of good'))
);
COMMENT ON TABLE engineering.platform_thresholds IS
    'grades of the platform report''s non-DORA measures: good when the figure reaches good, fair when it reaches fair, else poor; durations in seconds, rates 0 to 1, NPS in points.  Our defaults: edit them';
COMMENT ON COLUMN engineering.platform_thresholds.measure IS 'the measure of platform_report() it grades';
COMMENT ON COLUMN engineering.platform_thresholds.higher_is_better IS 'true: good means at least good; false: at most good';
COMMENT ON COLUMN engineering.platform_thresholds.good IS 'the bound of the grade good (seconds for durations)';
COMMENT ON COLUMN engineering.platform_thresholds.fair IS 'the bound of the grade fair (seconds for durations)';
COMMENT ON COLUMN engineering.platform_thresholds.description IS 'why these bounds';

INSERT INTO engineering.platform_thresholds (measure, higher_is_better, good, fair, description) VALUES
    ('golden_path_adoption', true, 0.8, 0.5, 'share of eligible services on a golden path'),
    ('slo_budget_remaining', true, 0.25, 0, 'the worst error budget left among the team''s SLOs at the end of the window'),
    ('time_to_first_pr', false, 7 * 86400, 14 * 86400, 'a first pull request within the first week'),
    ('time_to_first_deploy', false, 14 * 86400, 30 * 86400, 'something in production within two weeks'),
    ('time_to_tenth_pr', false, 30 * 86400, 60 * 86400, 'ten merged pull requests within the first month'),
    ('favorable_rate', true, 0.7, 0.5, 'mean share of favorable answers (top two boxes) over the survey''s questions'),
    ('nps', true, 30, 0, 'net promoter score of the platform, in points');

CREATE FUNCTION engineering._platform_thresholds_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.platform_thresholds
       SET higher_is_better = NEW.higher_is_better, good = NEW.good, fair = NEW.fair, description = NEW.description
     WHERE measure = NEW.measure;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._platform_thresholds_restore() IS
    'internal trigger: an inserted platform_thresholds row whose measure exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER platform_thresholds_restore BEFORE INSERT ON engineering.platform_thresholds
    FOR EACH ROW EXECUTE FUNCTION engineering._platform_thresholds_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.service_teams', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.platform_thresholds', '');

CREATE VIEW engineering.team_services AS
SELECT st.team, st.service, 'service_teams'::text AS known_from
FROM engineering.service_teams st;
COMMENT ON VIEW engineering.team_services IS 'the services of each team, as the platform report groups them';
COMMENT ON COLUMN engineering.team_services.team IS 'the team';
COMMENT ON COLUMN engineering.team_services.service IS 'one of its services';
COMMENT ON COLUMN engineering.team_services.known_from IS 'where the ownership comes from: service_teams (or the catalog)';

CREATE FUNCTION engineering._platform_grade(measure text, value float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value IS NULL THEN NULL
        WHEN t.higher_is_better AND value >= t.good OR NOT t.higher_is_better AND value <= t.good THEN 'good'
        WHEN t.higher_is_better AND value >= t.fair OR NOT t.higher_is_better AND value <= t.fair THEN 'fair'
        ELSE 'poor'
    END
    FROM engineering.platform_thresholds t WHERE t.measure = _platform_grade.measure
$$;
COMMENT ON FUNCTION engineering._platform_grade(text, float8) IS
    'internal: good, fair or poor for a figure of the platform report, by platform_thresholds';

CREATE FUNCTION engineering._platform_bounds(measure text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT format('good %s %s, fair %s %s',
                  CASE WHEN t.higher_is_better THEN 'from' ELSE 'up to' END,
                  CASE WHEN t.measure LIKE 'time\_%' THEN justify_hours(t.good * interval '1 second')::text
                       WHEN t.measure = 'nps' THEN t.good::text
                       ELSE round(100 * t.good::numeric, 1) || '%' END,
                  CASE WHEN t.higher_is_better THEN 'from' ELSE 'up to' END,
                  CASE WHEN t.measure LIKE 'time\_%' THEN justify_hours(t.fair * interval '1 second')::text
                       WHEN t.measure = 'nps' THEN t.fair::text
                       ELSE round(100 * t.fair::numeric, 1) || '%' END)
    FROM engineering.platform_thresholds t WHERE t.measure = _platform_bounds.measure
$$;
COMMENT ON FUNCTION engineering._platform_bounds(text) IS
    'internal: the bounds of a platform report measure''s grades, in words (good up to 7 days, fair up to 14 days)';

-- Golden-path adoption per team.  This is the hook to the service catalog
-- (platform engineering part 1): without it there is nothing to count and
-- the report says so.
CREATE FUNCTION engineering._platform_adoption(at timestamptz)
RETURNS TABLE (team text, adopted bigint, eligible bigint, detail text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT NULL::text, NULL::bigint, NULL::bigint, NULL::text WHERE false
$$;
COMMENT ON FUNCTION engineering._platform_adoption(timestamptz) IS
    'internal: golden-path adoption per team at a time (team NULL: all teams): adopted and eligible services, and which';

CREATE FUNCTION engineering.platform_report(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (team text, area text, measure text, value float8, unit text, grade text, reason text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the plan's cost estimate (a dora() per service) triggers JIT, whose
-- compilation took 30 times as long as the report on the demo's data
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    latest text;
    bench_year integer;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts > to_ts THEN
        RAISE EXCEPTION 'platform_report needs finite from_ts <= to_ts' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.name INTO latest FROM engineering.surveys s
    WHERE s.opened_at < to_ts ORDER BY s.opened_at DESC, s.name DESC LIMIT 1;
    SELECT benchmark_year INTO bench_year FROM engineering.dora_settings;
    RETURN QUERY
    WITH teams AS (
        SELECT DISTINCT t AS team FROM (
            SELECT p.team AS t FROM engineering.people p
            WHERE p.team IS NOT NULL AND (p.left_at IS NULL OR p.left_at > from_ts)
            UNION SELECT ts.team FROM engineering.team_services ts) x
    ), scopes AS (
        SELECT t.team FROM teams t UNION ALL SELECT NULL
    ),
    -- delivery: each DORA key of the team, graded by its worst service
    dora_rows AS (
        SELECT ts.team, d.*
        FROM engineering.team_services ts
        CROSS JOIN LATERAL engineering.dora(from_ts, to_ts, ts.service) d
        UNION ALL
        SELECT NULL, d.* FROM engineering.dora(from_ts, to_ts) d WHERE d.service IS NULL
    ), dora_keys AS (
        SELECT r.team, r.service, k.ord, k.measure, k.unit, k.value, k.level,
               (SELECT b.rank FROM engineering.dora_benchmarks b
                WHERE b.report_year = bench_year AND b.metric = k.metric AND b.level = k.level) AS rank,
               (SELECT max(b.rank) FROM engineering.dora_benchmarks b
                WHERE b.report_year = bench_year AND b.metric = k.metric) AS lowest
        FROM dora_rows r
        CROSS JOIN LATERAL (VALUES
            (1, 'deployment_frequency', 'deployment frequency', 'deployment days/week', r.deployment_days_per_week, r.deployment_frequency_level),
            (2, 'lead_time', 'lead time for changes', 'seconds', extract(epoch FROM r.lead_time)::float8, r.lead_time_level),
            (3, 'change_failure_rate', 'change failure rate', 'ratio', r.change_failure_rate, r.change_failure_rate_level),
            (4, 'time_to_restore', 'time to restore', 'seconds', extract(epoch FROM r.time_to_restore)::float8, r.time_to_restore_level))
            AS k(ord, metric, measure, unit, value, level)
    ), dora_team AS (
        SELECT DISTINCT ON (k.team, k.ord) k.team, k.ord, k.measure, k.unit, k.value, k.level,
               CASE WHEN k.rank IS NULL THEN NULL WHEN k.rank <= 2 THEN 'good' WHEN k.rank >= k.lowest THEN 'poor' ELSE 'fair' END AS grade,
               coalesce('level ' || k.level, 'no data')
               || CASE WHEN k.team IS NULL THEN ', all services together'
                       ELSE (SELECT ' (' || string_agg(x.service || ' ' || coalesce(x.level, 'no data'), ', ' ORDER BY x.service) || ')'
                             FROM dora_keys x WHERE x.team IS NOT DISTINCT FROM k.team AND x.ord = k.ord) END AS reason
        FROM dora_keys k
        ORDER BY k.team, k.ord, k.rank DESC NULLS LAST, k.service
    ),
    -- reliability: the worst error budget among the team's SLOs
    budgets AS (
        SELECT ts.team, st.slo, st.budget_remaining::float8 AS budget
        FROM engineering.slos s
        JOIN engineering.team_services ts ON ts.service = s.service
        CROSS JOIN LATERAL engineering.slo_status(s.name, to_ts) st
        UNION ALL
        SELECT NULL, st.slo, st.budget_remaining::float8
        FROM engineering.slos s CROSS JOIN LATERAL engineering.slo_status(s.name, to_ts) st
    ), budget_team AS (
        SELECT b.team, min(b.budget) AS worst,
               string_agg(b.slo || ': ' || coalesce(round(100 * b.budget::numeric, 1) || '% left', 'no data'), ', ' ORDER BY b.slo) AS reason
        FROM budgets b GROUP BY b.team
    ),
    -- onboarding: the people who started in the window, censored as in onboarding_cohorts
    hires AS (
        SELECT o.*, m.ord, m.milestone,
               CASE m.milestone WHEN 'first_pr' THEN o.first_pr_opened_at
                                WHEN 'first_deploy' THEN o.first_production_deploy_at
                                WHEN 'tenth_pr' THEN o.tenth_pr_merged_at END AS reached_at
        FROM engineering.onboarding o
        CROSS JOIN engineering._onboarding_milestones() m
        WHERE o.start_known AND o.started_at >= from_ts AND o.started_at < to_ts
          AND m.milestone IN ('first_pr', 'first_deploy', 'tenth_pr')
    ), hire_groups AS (
        SELECT CASE WHEN grouping(h.team) = 0 THEN h.team END AS team, grouping(h.team) = 1 AS is_total,
               h.ord, h.milestone, count(*) AS n, count(h.reached_at) AS r,
               engineering.lead_time(h.started_at, coalesce(h.reached_at, h.started_at + interval '1000 years'), 0.5) AS med
        FROM hires h
        GROUP BY GROUPING SETS ((h.team, h.ord, h.milestone), (h.ord, h.milestone))
    ), onboarding_rows AS (
        SELECT g.team, g.is_total, g.ord, g.milestone, g.n, g.r,
               CASE WHEN ceil(0.5::float8 * (g.n - 1)) < g.r THEN extract(epoch FROM g.med)::float8 END AS median
        FROM hire_groups g
    ),
    -- satisfaction: the latest survey opened before to_ts, suppression kept
    survey_rows AS (
        SELECT r.* FROM engineering.survey_results(latest, 'team') r WHERE latest IS NOT NULL AND r.group_value IS NOT NULL
        UNION ALL
        SELECT r.* FROM engineering.survey_results(latest) r WHERE latest IS NOT NULL
    ), survey_team AS (
        SELECT r.group_value AS team,
               avg(r.favorable_rate) FILTER (WHERE r.kind <> 'nps') AS favorable,
               bool_or(r.suppressed) FILTER (WHERE r.kind <> 'nps') AS favorable_suppressed,
               count(*) FILTER (WHERE r.kind <> 'nps') AS favorable_questions,
               avg(r.nps) FILTER (WHERE r.kind = 'nps') AS nps,
               bool_or(r.suppressed) FILTER (WHERE r.kind = 'nps') AS nps_suppressed,
               max(r.respondents) AS respondents,
               max(r.note) AS note
        FROM survey_rows r GROUP BY r.group_value
    ),
    adoption AS (
        SELECT a.* FROM engineering._platform_adoption(to_ts) a
    ),
    report AS (
        -- adoption
        SELECT s.team, 1 AS area_ord, 'adoption' AS area, 1 AS ord, 'golden path adoption' AS measure,
               a.adopted::float8 / nullif(a.eligible, 0) AS value, 'ratio' AS unit,
               engineering._platform_grade('golden_path_adoption', a.adopted::float8 / nullif(a.eligible, 0)) AS grade,
               CASE WHEN a.eligible IS NULL THEN 'no golden-path data: needs the service catalog and engineering.golden_paths'
                    ELSE format('%s of %s eligible services on a golden path', a.adopted, a.eligible) || coalesce('; ' || a.detail, '') END AS reason
        FROM scopes s LEFT JOIN adoption a ON a.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- onboarding
        SELECT s.team, 2, 'onboarding', 0, 'hires', coalesce(max(o.n), 0)::float8, 'people', NULL,
               'people with a known start date in the window'
        FROM scopes s LEFT JOIN onboarding_rows o ON o.team IS NOT DISTINCT FROM s.team AND o.is_total = (s.team IS NULL)
        GROUP BY s.team
        UNION ALL
        SELECT s.team, 2, 'onboarding', m.ord,
               CASE m.milestone WHEN 'first_pr' THEN 'time to first PR' WHEN 'first_deploy' THEN 'time to first deploy'
                                ELSE 'time to 10th PR' END,
               o.median, 'seconds',
               engineering._platform_grade('time_to_' || CASE m.milestone WHEN 'first_pr' THEN 'first_pr'
                                                                       WHEN 'first_deploy' THEN 'first_deploy'
                                                                       ELSE 'tenth_pr' END, o.median),
               CASE WHEN o.n IS NULL THEN 'no hires in the window'
                    ELSE format('median of %s hires, %s reached it, %s not yet', o.n, o.r, o.n - o.r)
                         || CASE WHEN o.median IS NULL THEN ' (too few to have a median)' ELSE '' END END
        FROM scopes s
        CROSS JOIN engineering._onboarding_milestones() m
        LEFT JOIN onboarding_rows o ON o.team IS NOT DISTINCT FROM s.team AND o.is_total = (s.team IS NULL) AND o.milestone = m.milestone
        WHERE m.milestone IN ('first_pr', 'first_deploy', 'tenth_pr')
        UNION ALL
        -- satisfaction
        SELECT s.team, 3, 'satisfaction', 1, 'favorable rate',
               CASE WHEN NOT st.favorable_suppressed THEN st.favorable END, 'ratio',
               CASE WHEN NOT st.favorable_suppressed THEN engineering._platform_grade('favorable_rate', st.favorable) END,
               CASE WHEN latest IS NULL THEN 'no survey opened before the end of the window'
                    WHEN st.team IS NULL AND st.favorable_questions IS NULL THEN format('no answers in survey %s', latest)
                    WHEN st.favorable_suppressed THEN format('survey %s: %s', latest, st.note)
                    ELSE format('survey %s, %s respondents, favorable share averaged over %s question(s)', latest, st.respondents, st.favorable_questions) END
        FROM scopes s LEFT JOIN survey_team st ON st.team IS NOT DISTINCT FROM s.team
        UNION ALL
        SELECT s.team, 3, 'satisfaction', 2, 'NPS',
               CASE WHEN NOT st.nps_suppressed THEN st.nps END, 'points',
               CASE WHEN NOT st.nps_suppressed THEN engineering._platform_grade('nps', st.nps) END,
               CASE WHEN latest IS NULL THEN 'no survey opened before the end of the window'
                    WHEN st.nps_suppressed THEN format('survey %s: %s', latest, st.note)
                    WHEN st.nps IS NULL THEN format('survey %s has no answered nps question', latest)
                    ELSE format('survey %s, %s respondents', latest, st.respondents) END
        FROM scopes s LEFT JOIN survey_team st ON st.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- delivery
        SELECT s.team, 4, 'delivery', d.ord, d.measure, d.value, d.unit, d.grade, d.reason
        FROM scopes s JOIN dora_team d ON d.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- reliability
        SELECT s.team, 5, 'reliability', 1, 'SLO budget remaining', b.worst, 'ratio',
               engineering._platform_grade('slo_budget_remaining', b.worst),
               coalesce('worst of ' || b.reason, 'no SLOs on the team''s services')
        FROM scopes s LEFT JOIN budget_team b ON b.team IS NOT DISTINCT FROM s.team
    )
    SELECT r.team, r.area, r.measure, r.value, r.unit, r.grade,
           r.reason || coalesce(' (' || CASE WHEN r.grade IS NOT NULL THEN engineering._platform_bounds(
               CASE r.measure WHEN 'golden path adoption' THEN 'golden_path_adoption'
                              WHEN 'time to first PR' THEN 'time_to_first_pr'
                              WHEN 'time to first deploy' THEN 'time_to_first_deploy'
                              WHEN 'time to 10th PR' THEN 'time_to_tenth_pr'
                              WHEN 'favorable rate' THEN 'favorable_rate'
                              WHEN 'NPS' THEN 'nps'
                              WHEN 'SLO budget remaining' THEN 'slo_budget_remaining' END) END || ')', '')
    FROM (
        SELECT r.*, 0 AS summary_last FROM report r
        UNION ALL
        SELECT r.team, 6, 'summary', 1, 'maturity', NULL, NULL,
               (array_agg(r.grade ORDER BY CASE r.grade WHEN 'poor' THEN 1 WHEN 'fair' THEN 2 ELSE 3 END)
                FILTER (WHERE r.grade IS NOT NULL))[1],
               CASE WHEN count(r.grade) = 0 THEN 'nothing graded yet'
                    ELSE 'the lowest grade of: ' || string_agg(r.measure || ' ' || r.grade, ', ' ORDER BY r.area_ord, r.ord)
                                                     FILTER (WHERE r.grade IS NOT NULL) END,
               1
        FROM report r GROUP BY r.team
    ) r
    ORDER BY r.team NULLS FIRST, r.area_ord, r.ord;
END
$$;
COMMENT ON FUNCTION engineering.platform_report(timestamptz, timestamptz) IS
    'per team (team NULL: everyone) the platform engineering measures: golden-path adoption, onboarding of the people who started in [from_ts, to_ts), the latest survey''s favorable rate and NPS (suppression kept), the DORA keys (graded by the team''s worst service) and the worst SLO budget, each with a grade and its reason, and a maturity summary (the lowest grade)';

-- engineering_metrics: roles for people, onboarding, surveys and the
-- platform report (the rest of the decisions are in 70_roles.sql, which
-- runs before these objects exist).
--
-- Readers see people, identities, onboarding and the reports; raw survey
-- responses are readable by admins only: readers get the figures through
-- survey_results(), which runs as the owner (SECURITY DEFINER, fixed
-- search_path) and suppresses small groups.  People, aliases, surveys and
-- the settings are written by admins.

GRANT SELECT ON
    engineering.people, engineering.person_aliases, engineering.people_settings,
    engineering.person_identities, engineering.person_activity, engineering.excluded_authors,
    engineering.onboarding,
    engineering.surveys, engineering.survey_questions,
    engineering.service_teams, engineering.platform_thresholds, engineering.team_services
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON
    engineering.people, engineering.person_aliases, engineering.people_settings,
    engineering.surveys, engineering.survey_questions, engineering.survey_responses,
    engineering.service_teams, engineering.platform_thresholds
TO engineering_admin;
GRANT SELECT ON engineering.survey_responses TO engineering_admin;

-- Left out of PUBLIC: the raw activity view is read through person_activity
-- only (it is internal), and survey_results() is granted by role because it
-- runs as the owner.
REVOKE EXECUTE ON FUNCTION engineering.survey_results(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION engineering.survey_results(text, text, integer) TO engineering_reader;
