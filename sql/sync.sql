-- Sync engine: managing sources, the helpers connectors use (vendor
-- timestamps, Link headers, URL encoding, the backoff routine), and who may
-- read tokens.  Nothing here talks to a network (see test/t/010-019 for that).
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY terse

--
-- add_source
--
SELECT engineering.add_source('gh', 'github', NULL, '{"repository": "acme/shop"}') AS id;
-- the vendor default base URL, the default schedule, no token column anywhere
SELECT name, kind, base_url, config, enabled, poll_interval, cursor, consecutive_failures,
       next_sync_at <= now() AS due_now
FROM engineering.sources;
SELECT count(*) AS columns_named_like_token FROM information_schema.columns
WHERE table_schema = 'engineering' AND table_name = 'sources' AND column_name ~ 'token|secret';

-- a base URL keeps its path prefix and loses trailing slashes
SELECT engineering.add_source('ghe', 'github', 'https://ghe.example.com/api/v3/', '{"repository": "a/b"}',
                              poll_interval => '1 hour') AS id;
SELECT base_url, poll_interval FROM engineering.sources WHERE name = 'ghe';

-- refused: duplicates, unknown kinds, kinds without a connector in this
-- build (every kind has one now: the lookup itself is tried), URLs that are
-- not plain http(s), configs a connector cannot use
SELECT engineering.add_source('gh', 'github', NULL, '{"repository": "acme/shop"}');
SELECT engineering.add_source('x', 'svn', NULL, '{}');
SELECT engineering.add_source('x', NULL, NULL, '{}');
SELECT engineering.add_source(NULL, 'github', NULL, '{}');
SELECT engineering._connector_default_url('svn');
SELECT engineering.add_source('x', 'github', 'ftp://example.com', '{"repository": "a/b"}');
SELECT engineering.add_source('x', 'github', 'file:///etc/passwd', '{"repository": "a/b"}');
SELECT engineering.add_source('x', 'github', 'https://user:pw@example.com', '{"repository": "a/b"}');
SELECT engineering.add_source('x', 'github', 'https://example.com/api?x=1', '{"repository": "a/b"}');
SELECT engineering.add_source('x', 'github', 'example.com', '{"repository": "a/b"}');
SELECT engineering.add_source('x', 'github', NULL, '[]');
SELECT engineering.add_source('x', 'github', NULL, '{}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "no-slash"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b/c"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/.."}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": 42}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "deployment_workflows": "(unclosed"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "deployment_workflows": ""}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "lookback": "-1 hour"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "lookback": "soon"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "since": "last tuesday"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "since": "2024-01-01 00:00"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "service": ""}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "service_map": {"b": 1}}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "token_file": "relative/path"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "token_env": "NOT-A-NAME"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b", "token_env": "A", "token_file": "/t"}');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b"}', token => '   ');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b"}', token => E'abc\r\nX-Injected: 1');
SELECT engineering.add_source('x', 'github', NULL, '{"repository": "a/b"}', poll_interval => '1 second');
-- nothing was half-created by the refused calls
SELECT count(*) AS sources FROM engineering.sources;

-- accepted: since as a date (midnight UTC) or a time with an offset
SELECT engineering.add_source('since-date', 'github', NULL, '{"repository": "a/b", "since": "2024-03-01"}') IS NOT NULL AS added;
SELECT engineering.add_source('since-ts', 'github', NULL, '{"repository": "a/b", "since": "2024-03-01T02:00:00+02:00"}') IS NOT NULL AS added;
SELECT name, engineering._since(config) FROM engineering.sources WHERE name LIKE 'since-%' ORDER BY name;
-- without since, the backfill starts 180 days ago
SELECT engineering._since('{}') = now() - interval '180 days' AS default_since;

--
-- tokens: stored trimmed, readable only by the owner
--
SELECT engineering.add_source('private', 'github', NULL, '{"repository": "a/b"}', E' s3cr3t-token-1\n') IS NOT NULL AS added;
SELECT s.name, length(t.token), t.token = 's3cr3t-token-1' AS trimmed
FROM engineering.source_secrets t JOIN engineering.sources s ON s.id = t.source_id;
SELECT engineering.set_source_token('private', 's3cr3t-token-2');
SELECT token = 's3cr3t-token-2' AS replaced FROM engineering.source_secrets;
SELECT engineering.set_source_token('private', NULL);
SELECT count(*) AS secrets_after_removal FROM engineering.source_secrets;
SELECT engineering.set_source_token('nope', 'x');

CREATE ROLE em_sync_reader;
GRANT USAGE ON SCHEMA engineering TO em_sync_reader;
GRANT SELECT ON engineering.sources, engineering.sync_runs TO em_sync_reader;
SET ROLE em_sync_reader;
SELECT count(*) >= 0 AS can_read_sources FROM engineering.sources;
SELECT * FROM engineering.source_secrets;
SELECT engineering.add_source('r', 'github', NULL, '{"repository": "a/b"}');
SELECT engineering.set_source_token('gh', 'x');
SELECT engineering.sync('gh');
SELECT engineering.remove_source('gh');
SELECT engineering.wake();
RESET ROLE;

-- Only roles that may read server files may make a source send one (or a
-- server environment variable) as its token, however the row is written.
GRANT ALL ON SCHEMA engineering TO em_sync_reader;
GRANT engineering_admin TO em_sync_reader;
GRANT UPDATE ON engineering.sources TO em_sync_reader;
SET SESSION AUTHORIZATION em_sync_reader;
SELECT engineering.add_source('tf', 'github', NULL, '{"repository": "a/b", "token_file": "/etc/passwd"}');
SELECT engineering.add_source('te', 'github', NULL, '{"repository": "a/b", "token_env": "HOME"}');
UPDATE engineering.sources SET config = config || '{"token_env": "PGDATA"}' WHERE name = 'gh';
SELECT engineering.add_source('plain', 'github', NULL, '{"repository": "a/b"}') IS NOT NULL AS added;
RESET SESSION AUTHORIZATION;
SELECT engineering.add_source('tf', 'github', NULL, '{"repository": "a/b", "token_file": "/run/secrets/gh"}') IS NOT NULL AS added;
SELECT config->>'token_file' FROM engineering.sources WHERE name = 'tf';
REVOKE ALL ON SCHEMA engineering FROM em_sync_reader;
REVOKE ALL ON engineering.sources, engineering.sync_runs FROM em_sync_reader;
REVOKE engineering_admin FROM em_sync_reader;

--
-- alter_source
--
UPDATE engineering.sources SET next_sync_at = '2999-01-01', consecutive_failures = 3,
       cursor = '{"runs_created": "2024-05-01T00:00:00Z"}' WHERE name = 'gh';
-- only the poll interval changes: the watermarks stay
SELECT engineering.alter_source('gh', poll_interval => '7 minutes');
SELECT cursor FROM engineering.sources WHERE name = 'gh';
-- a new config forgets them, so the next sync backfills with the new settings
SELECT engineering.alter_source('gh', config => '{"repository": "acme/shop", "service": "shop"}',
                                poll_interval => '10 minutes', enabled => false);
SELECT name, base_url, config, poll_interval, enabled, next_sync_at <= now() AS due_now, consecutive_failures,
       cursor
FROM engineering.sources WHERE name = 'gh';
SELECT engineering.alter_source('gh', base_url => 'gopher://x');
SELECT engineering.alter_source('gh', config => '{"repository": "only-owner"}');
SELECT engineering.alter_source('missing', enabled => true);
SELECT base_url, config->>'service' AS service FROM engineering.sources WHERE name = 'gh';

--
-- remove_source: refuses while synced rows exist, purge deletes them
--
INSERT INTO engineering.pipeline_runs (source_id, external_id, service, pipeline, status, queued_at)
SELECT id, '1/1', 'shop', 'CI', 'queued', '2024-05-01 10:00Z' FROM engineering.sources WHERE name = 'gh';
INSERT INTO engineering.sync_runs (source_id, source, status)
SELECT id, name, 'ok' FROM engineering.sources WHERE name = 'gh';
SELECT engineering._enqueue(id, 'runs', '/x') FROM engineering.sources WHERE name = 'gh';
SELECT engineering.remove_source('gh');
SELECT engineering.remove_source('gh', purge => true);
SELECT count(*) AS runs_left FROM engineering.pipeline_runs;
SELECT count(*) AS tasks_left FROM engineering.sync_tasks;
-- the history of runs stays, detached from the removed source
SELECT source, source_id, status FROM engineering.sync_runs;
SELECT engineering.remove_source('gh');
SELECT engineering.remove_source('plain');
SELECT count(*) AS sources_left FROM engineering.sources WHERE name IN ('gh', 'plain');

--
-- vendor timestamps
--
SELECT v, engineering._ts(v)
FROM (VALUES ('2024-05-01T12:00:00Z'), ('2024-05-01T14:00:00+02:00'), ('2024-05-01T14:00:00+0200'),
             ('2024-05-01 14:00:00 +0200'), ('2024-05-01T07:30:00-04:30'), ('2024-05-01t12:00:00z'),
             ('2024-05-01T12:00Z'), ('2024-05-01T12:00:00.123456Z'), ('2024-05-01T12:00:00.1234567Z'),
             ('2022-11-03T06:23:06.000000Z'), ('2024-02-29T23:59:59+14:00'), ('  2024-05-01T12:00:00Z  '),
             ('2024-05-01T12:00:00+02'), ('')) AS t(v);
-- JSON: strings as above, numbers are epoch milliseconds, null and "" are NULL
SELECT v, engineering._ts(v::jsonb)
FROM (VALUES ('"2024-05-01T14:00:00+02:00"'), ('1650024049161'), ('1650024049161.6'), ('0'),
             ('-1000'), ('null'), ('""')) AS t(v);
SELECT engineering._ts(NULL::text) IS NULL AS null_text, engineering._ts(NULL::jsonb) IS NULL AS null_json;
-- refused: no time zone (the session's would be a silent guess), words,
-- impossible dates, anything that is not a time
SELECT engineering._ts('2024-05-01T12:00:00');
SELECT engineering._ts('2024-05-01');
SELECT engineering._ts('now');
SELECT engineering._ts('epoch');
SELECT engineering._ts('2024-02-30T00:00:00Z');
SELECT engineering._ts('2023-02-29T00:00:00Z');
SELECT engineering._ts('2024-05-01T24:00:00Z');
SELECT engineering._ts('2024-05-01T12:00:00+2:00');
SELECT engineering._ts('2024-05-01T12:00:00+16:00');
SELECT engineering._ts('2024-05-01T12:00:00 UTC');
SELECT engineering._ts('2024-05-01T12:00:00.Z');
SELECT engineering._ts('1714564800');
SELECT engineering._ts('true'::jsonb);
SELECT engineering._ts('{"t": 1}'::jsonb);
SELECT engineering._ts('[1]'::jsonb);
SELECT engineering._ts('1e30'::jsonb);
SELECT engineering._ts('1e400'::jsonb);
SELECT engineering._ts('-1e400'::jsonb);
-- the session's time zone changes how a time is shown, not which instant it is
SET timezone = 'America/New_York';
SELECT engineering._ts('2024-05-01T14:00:00+02:00') = '2024-05-01 12:00:00+00' AS same_instant,
       engineering._iso8601(engineering._ts('2024-05-01T14:00:00+02:00')) AS iso;
SET timezone = 'UTC';

--
-- Link headers
--
SELECT engineering._link_next(v)
FROM (VALUES
    ('<https://api.github.com/repos/a/b/actions/runs?page=2>; rel="next", <https://api.github.com/repos/a/b/actions/runs?page=9>; rel="last"'),
    ('<https://x/last>; rel="last", <https://x/next>; rel="next"'),
    ('<https://x/p?a=1,2>; rel="prev"; title="a, b; c", <https://x/n>; rel=next'),
    ('<https://x/both>; rel="next last"'),
    ('<https://x/p>; REL="NEXT"'),
    ('<https://x/p>; rel="prev", <https://x/f>; rel="first"'),
    ('<https://x/bad url>; rel="next"'),
    ('<https://x/unterminated; rel="next"'),
    ('https://x/no-brackets; rel="next"'),
    ('<https://x/p>; title="unterminated; rel="next"'),
    (''), ('  ,  ')) AS t(v);

--
-- backoff: one routine for every vendor (at = 2024-05-01 12:00:00Z = epoch 1714564800)
--
SELECT label, engineering._backoff_seconds(rl, ra, xr, xn, rr, rn, '2024-05-01 12:00:00Z', f) AS seconds
FROM (VALUES
    ('Retry-After seconds wins',          true,  '120', '1714565400', '0', '30', NULL, 1),
    ('Retry-After HTTP date',             true,  'Wed, 01 May 2024 12:05:00 GMT', NULL, NULL, NULL, NULL, 1),
    ('Retry-After wins with quota left',  true,  '7', '1714568400', '4000', NULL, NULL, 1),
    ('x-ratelimit-reset, remaining 0',    true,  NULL, '1714565400', '0', '30', NULL, 1),
    ('x-ratelimit-reset, no remaining',   true,  NULL, '1714565400', NULL, NULL, NULL, 1),
    ('secondary: quota left, 1st',        true,  NULL, '1714568400', '4000', NULL, NULL, 1),
    ('secondary: quota left, 3rd',        true,  NULL, '1714568400', '4000', NULL, NULL, 3),
    ('secondary: reset = now, quota left', true, NULL, '1714564800', '4000', NULL, NULL, 1),
    ('secondary: reset in 1 s, quota left', true, NULL, '1714564801', '1', NULL, NULL, 1),
    ('GitHub quota left, ratelimit-reset', true, NULL, '1714568400', '12', '45', NULL, 1),
    ('RateLimit-Reset epoch, remaining 0', true, NULL, NULL, NULL, '1714564900', '0', 1),
    ('RateLimit-Reset epoch, no remaining', true, NULL, NULL, NULL, '1714564900', NULL, 1),
    ('RateLimit-Reset, quota left',       true,  NULL, NULL, NULL, '1714564900', '599', 1),
    ('ratelimit-reset delta, remaining 0', true, NULL, NULL, NULL, '30', '0', 1),
    ('ratelimit-reset delta, quota left', true,  NULL, NULL, NULL, '30', '5', 2),
    ('unparsable remaining: trusted',     true,  NULL, NULL, NULL, '30', 'many', 1),
    ('negative remaining: trusted',       true,  NULL, '1714565400', '-1', NULL, NULL, 1),
    ('reset in the past: exponential',    true,  NULL, '1714564000', '0', NULL, NULL, 1),
    ('Retry-After 0 is skipped',          true,  '0', NULL, NULL, '45', NULL, 1),
    ('garbage headers: exponential',      true,  'soon', '0x10', NULL, 'abc', NULL, 2),
    ('no headers, 1st failure',           true,  NULL, NULL, NULL, NULL, NULL, 1),
    ('no headers, 3rd failure',           true,  NULL, NULL, NULL, NULL, NULL, 3),
    ('no headers, capped at an hour',     true,  NULL, NULL, NULL, NULL, NULL, 30),
    ('headers capped at a day',           true,  '999999', NULL, NULL, NULL, NULL, 1),
    ('ten years of Retry-After: a day',   true,  '315360000', NULL, NULL, NULL, NULL, 1),
    ('error, 1st failure',                false, '120', NULL, NULL, NULL, NULL, 1),
    ('error, 4th failure',                false, NULL, NULL, NULL, NULL, NULL, 4),
    ('error, capped at an hour',          false, NULL, NULL, NULL, NULL, NULL, 50)
) AS t(label, rl, ra, xr, xn, rr, rn, f);

--
-- URL encoding and service names
--
SELECT engineering._urlencode('2024-01-01T00:00:00Z..2024-02-01T00:00:00+02:00') AS created,
       engineering._urlencode('group/sub project') AS path,
       engineering._urlencode('café ✓') AS unicode,
       engineering._urlencode('A-Z_a.z~09') AS unreserved;
SELECT engineering._map_service('{"service_map": {"PX1": "checkout"}, "service": "fallback"}', 'PX1') AS mapped,
       engineering._map_service('{"service_map": {"PX1": "checkout"}, "service": "fallback"}', 'PX2') AS configured,
       engineering._map_service('{}', 'shop') AS vendor_name;

--
-- the queue and runs carry what the engine needs
--
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = 'engineering' AND table_name = 'sync_runs' ORDER BY ordinal_position;
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = 'engineering' AND table_name = 'sync_tasks' ORDER BY ordinal_position;
-- sync() names what it cannot find
SELECT engineering.sync('nope');

--
-- prune_sync_runs: finished runs older than the cut go; runs still going
-- and each source's latest run stay, however old
--
DELETE FROM engineering.sync_runs;
SELECT engineering.add_source('prune-a', 'github', NULL, '{"repository": "a/prune"}') AS prune_a \gset
SELECT engineering.add_source('prune-b', 'github', NULL, '{"repository": "b/prune"}') AS prune_b \gset
INSERT INTO engineering.sync_runs (source_id, source, started_at, finished_at, status) VALUES
    (:prune_a, 'prune-a', now() - interval '100 days', now() - interval '100 days', 'ok'),
    (:prune_a, 'prune-a', now() - interval '95 days', now() - interval '95 days' + interval '1 minute', 'error'),
    (:prune_a, 'prune-a', now() - interval '120 days', NULL, 'running'),
    (:prune_a, 'prune-a', now() - interval '1 day', now() - interval '1 day', 'ok'),
    (:prune_b, 'prune-b', now() - interval '200 days', now() - interval '200 days', 'rate_limited'),
    (NULL, 'removed-source', now() - interval '100 days', now() - interval '100 days', 'ok'),
    (NULL, 'removed-source', now() - interval '10 days', now() - interval '10 days', 'error');
-- goes: prune-a's two old finished runs and the removed source's old one
SELECT engineering.prune_sync_runs('90 days') AS pruned;
SELECT source, status, round(extract(epoch FROM now() - started_at) / 86400) AS days_ago
FROM engineering.sync_runs ORDER BY source, started_at;
SELECT engineering.prune_sync_runs('90 days') AS pruned_again;
-- 0 keeps only the latest of each source (and what is running)
SELECT engineering.prune_sync_runs('0') AS pruned_to_latest;
SELECT source, status FROM engineering.sync_runs ORDER BY source, started_at;
SELECT engineering.prune_sync_runs('-1 day');
SELECT engineering.prune_sync_runs(NULL) IS NULL AS null_prunes_nothing;
SELECT engineering.remove_source('prune-a');
SELECT engineering.remove_source('prune-b');

DROP ROLE em_sync_reader;
