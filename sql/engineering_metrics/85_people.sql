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
