-- People and identities: aliases of every kind, e-mails found in commit
-- attributes, a name two people claim, unknown authors kept as
-- themselves, bots left out and listed, the bot pattern changed and an
-- invalid one refused, and the constraints of the tables.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

INSERT INTO engineering.people (name, email, team, started_at) VALUES
    ('Ada Lovelace', 'ada@acme.example', 'storefront', '2024-03-04'),
    ('Grace Hopper', 'grace@acme.example', 'payments', NULL),
    ('Alan Turing', NULL, 'payments', '2024-01-15');
INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT p.id, a.kind, a.alias
FROM (VALUES ('Ada Lovelace', 'github', 'ada-l'),
             ('Ada Lovelace', 'name', 'Ada L.'),
             ('Grace Hopper', 'gitlab', 'ghopper'),
             ('Grace Hopper', 'gitlab', 'sam'),          -- claimed by two people: resolves to neither
             ('Alan Turing', 'name', 'Sam'),
             ('Alan Turing', 'jenkins', 'build-bot')     -- looks like a bot, is a person's alias
     ) a(name, kind, alias)
JOIN engineering.people p ON p.name = a.name;

INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at, author, attributes) VALUES
    ('c1', 'shop', 'a000001', '2024-03-05 10:00', 'ada-l', '{}'),            -- GitHub login
    ('c2', 'shop', 'a000002', '2024-03-06 10:00', 'ADA L.', '{}'),           -- commit name, other case
    ('c3', 'shop', 'a000003', '2024-03-07 10:00', 'Lovelace, A.',            -- unknown name, known e-mail
     '{"author_email": "Ada@Acme.Example"}'),
    ('c4', 'pay',  'b000001', '2024-03-05 11:00', 'sam', '{}'),              -- ambiguous: stays "sam"
    ('c5', 'pay',  'b000002', '2024-03-05 12:00', 'newbie', '{}'),           -- unknown: stays "newbie"
    ('c6', 'pay',  'b000003', '2024-03-05 13:00', 'renovate', '{}'),         -- bot
    ('c7', 'pay',  'b000004', '2024-03-05 14:00', 'build-bot', '{}'),        -- Alan
    ('c8', 'pay',  'b000005', '2024-03-05 15:00', 'release-bot', '{}'),      -- bot
    ('c9', 'pay',  'b000006', '2024-03-05 16:00', 'robot-ops', '{}');        -- a person nobody recorded
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at, author) VALUES
    ('c10', 'pay', 'b000007', '2024-03-05 17:00', NULL);                     -- no author: nobody's
INSERT INTO engineering.pull_requests (external_id, service, number, author, opened_at, merged_at) VALUES
    ('p1', 'shop', 1, 'ada-l', '2024-03-05 09:00', '2024-03-05 12:00'),
    ('p2', 'pay', 2, 'ghopper', '2024-03-04 09:00', NULL),
    ('p3', 'pay', 3, 'dependabot[bot]', '2024-03-04 10:00', '2024-03-04 11:00'),
    ('p4', 'shop', 4, 'Renovate[bot]', '2024-03-04 10:00', NULL),
    ('p5', 'shop', 5, 'github-actions[bot]', '2024-03-06 10:00', '2024-03-06 10:05'),
    ('p6', 'pay', 6, 'project_42_bot', '2024-03-06 11:00', NULL);

SELECT * FROM engineering.person_identities ORDER BY identity COLLATE "C";

SELECT activity, service, author, person_id IS NOT NULL AS resolved, person, team, at, merged_at
FROM engineering.person_activity ORDER BY at, activity, author COLLATE "C";

-- what was left out, so that an admin can check it
SELECT * FROM engineering.excluded_authors ORDER BY author COLLATE "C";

-- per person: every identity counted once, unknown authors as themselves
SELECT person, team, count(*) FILTER (WHERE activity = 'commit') AS commits,
       count(*) FILTER (WHERE activity = 'pull_request') AS pull_requests
FROM engineering.person_activity GROUP BY person, team ORDER BY person COLLATE "C";

SELECT a AS author, engineering.is_bot(a) AS is_bot
FROM unnest(ARRAY['dependabot[bot]', 'dependabot', 'renovate-bot', 'mend-bolt-for-github[bot]', 'group_7_bot',
                  'snyk-bot', 'ci_bot', 'robot', 'abbott', 'botanist', NULL]) a;

-- the pattern is a setting: our CI account is a bot, dependabot is not
UPDATE engineering.people_settings SET bot_pattern = '^(ci-|dependabot)';
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at, author) VALUES
    ('c11', 'pay', 'b000008', '2024-03-08 10:00', 'ci-runner');
SELECT * FROM engineering.excluded_authors ORDER BY author COLLATE "C";
SELECT count(*) AS renovate_rows_now_counted FROM engineering.person_activity WHERE author ILIKE 'renovate%';
-- an invalid pattern is refused when written
UPDATE engineering.people_settings SET bot_pattern = '(unclosed';
-- a second settings row is not possible; a replayed one (pg_restore) replaces the first
INSERT INTO engineering.people_settings (singleton, bot_pattern) VALUES (false, 'x');
INSERT INTO engineering.people_settings (singleton, bot_pattern) VALUES (true, '\[bot\]$');
SELECT * FROM engineering.people_settings;

-- constraints
INSERT INTO engineering.people (name) VALUES ('  ');
INSERT INTO engineering.people (name, email) VALUES ('X', 'not an address');
INSERT INTO engineering.people (name, email) VALUES ('Ada Twin', 'ADA@acme.example');
INSERT INTO engineering.people (name, started_at, left_at) VALUES ('Y', '2024-02-01', '2024-01-01');
INSERT INTO engineering.people (name, attributes) VALUES ('Z', '[]');
INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT id, 'slack', 'ada' FROM engineering.people WHERE name = 'Ada Lovelace';
INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT id, 'github', 'ADA-L' FROM engineering.people WHERE name = 'Grace Hopper';
INSERT INTO engineering.person_aliases (person_id, kind, alias)
SELECT id, 'github', ' ' FROM engineering.people WHERE name = 'Grace Hopper';
-- deleting a person deletes their aliases; their activity becomes unknown again
DELETE FROM engineering.people WHERE name = 'Ada Lovelace';
SELECT count(*) AS aliases_left FROM engineering.person_aliases;
SELECT author, person_id, person FROM engineering.person_activity WHERE service = 'shop' ORDER BY at, author COLLATE "C";

-- People from the service catalog's User entities: Grace is found by her
-- e-mail (and gets her team from the group she is a member of), Linus is
-- new (with his GitHub login as an alias), Ken left the catalog and so
-- left; a second refresh changes nothing.
INSERT INTO engineering.catalog_entities (entity_ref, kind, namespace, name, spec, annotations, relations, first_seen_at, removed_at) VALUES
    ('user:default/grace', 'user', 'default', 'grace',
     '{"profile": {"displayName": "Grace B. Hopper", "email": "Grace@acme.example"}, "memberOf": ["platform"]}', '{}', '[]', '2024-01-01', NULL),
    ('user:default/linus', 'user', 'default', 'linus',
     '{"profile": {"displayName": "Linus", "email": "linus@acme.example"}, "memberOf": []}', '{"github.com/user-login": "torvalds"}',
     '[{"type": "memberOf", "targetRef": "group:default/kernel"}]', '2024-01-01', NULL),
    ('user:default/ken', 'user', 'default', 'ken',
     '{"profile": {"displayName": "Ken", "email": "ken@acme.example"}, "memberOf": ["unix"]}', '{}', '[]', '2024-01-01', NULL);
SELECT * FROM engineering.refresh_people_from_catalog();
UPDATE engineering.catalog_entities SET removed_at = '2024-04-01', last_seen_at = '2024-03-31' WHERE entity_ref = 'user:default/ken';
SELECT * FROM engineering.refresh_people_from_catalog();
SELECT * FROM engineering.refresh_people_from_catalog();
SELECT p.name, p.email, p.team, p.left_at, string_agg(a.kind || ':' || a.alias, ', ' ORDER BY a.kind, a.alias) AS aliases
FROM engineering.people p LEFT JOIN engineering.person_aliases a ON a.person_id = p.id
GROUP BY p.id ORDER BY p.id;
