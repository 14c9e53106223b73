-- Event schema: every table accepts a well-formed row and refuses bad rows
-- with a message that names the column and the value.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- the extension lives in its own schema
SELECT extname, extnamespace::regnamespace, extrelocatable, extversion
FROM pg_extension WHERE extname = 'engineering_metrics';

-- a source to hang synced rows on
INSERT INTO engineering.sources (name, kind, base_url, config)
VALUES ('gh', 'github', 'https://api.github.com', '{"repository": "acme/shop"}');
INSERT INTO engineering.sources (name, kind, base_url) VALUES ('bad', 'svn', 'x');
INSERT INTO engineering.sources (name, kind, base_url) VALUES ('  ', 'github', 'x');
INSERT INTO engineering.sources (name, kind, base_url, config) VALUES ('arr', 'github', 'x', '[1]');
INSERT INTO engineering.sources (name, kind, base_url, poll_interval) VALUES ('fast', 'github', 'x', '1 second');
INSERT INTO engineering.sources (name, kind, base_url) VALUES ('gh', 'gitlab', 'x');
-- the valid kinds are the connectors of the build, each with its default URL
SELECT kind, engineering._connector_default_url(kind) AS default_url
FROM unnest(engineering._connector_kinds()) WITH ORDINALITY AS k(kind, n) ORDER BY n;
SELECT engineering._connector_kind_list();

--
-- deployments
--
INSERT INTO engineering.deployments
    (source_id, external_id, service, commit_sha, started_at, finished_at, status)
VALUES (1, 'd1', 'checkout', 'abc1234', '2024-05-01 10:00+02', '2024-05-01 10:05+02', 'success');
-- environment defaults to production, attributes to {}
SELECT service, environment, commit_sha, started_at, finished_at, status, attributes
FROM engineering.deployments;
-- hand-made rows need no source and no external id
INSERT INTO engineering.deployments (service, finished_at, status)
VALUES ('checkout', '2024-05-02 09:00Z', 'success'),
       ('checkout', '2024-05-02 09:30Z', 'success');
-- but a hand-made external id is unique among hand-made rows
INSERT INTO engineering.deployments (external_id, service, finished_at, status)
VALUES ('manual-1', 'checkout', '2024-05-02 10:00Z', 'success');
INSERT INTO engineering.deployments (external_id, service, finished_at, status)
VALUES ('manual-1', 'checkout', '2024-05-02 11:00Z', 'success');
-- synced rows are unique per (source_id, external_id) ...
INSERT INTO engineering.deployments (source_id, external_id, service, finished_at, status)
VALUES (1, 'd1', 'checkout', '2024-05-03 10:00Z', 'success');
-- ... which is what idempotent upserts rely on
INSERT INTO engineering.deployments (source_id, external_id, service, finished_at, status)
VALUES (1, 'd1', 'checkout', '2024-05-01 08:06Z', 'success')
ON CONFLICT (source_id, external_id) DO UPDATE SET finished_at = excluded.finished_at;
SELECT external_id, finished_at FROM engineering.deployments WHERE source_id = 1;
-- synced rows must carry their external id
INSERT INTO engineering.deployments (source_id, service, finished_at, status)
VALUES (1, 'checkout', '2024-05-03 10:00Z', 'success');
-- unknown source
INSERT INTO engineering.deployments (source_id, external_id, service, finished_at, status)
VALUES (42, 'x', 'checkout', '2024-05-03 10:00Z', 'success');
-- bad status, service, environment, sha
INSERT INTO engineering.deployments (service, finished_at, status) VALUES ('checkout', '2024-05-01 10:00Z', 'succeeded');
INSERT INTO engineering.deployments (service, finished_at, status) VALUES ('', '2024-05-01 10:00Z', 'success');
INSERT INTO engineering.deployments (service, finished_at, status) VALUES (NULL, '2024-05-01 10:00Z', 'success');
INSERT INTO engineering.deployments (service, environment, finished_at, status) VALUES ('checkout', ' ', '2024-05-01 10:00Z', 'success');
INSERT INTO engineering.deployments (service, commit_sha, finished_at, status) VALUES ('checkout', 'ABC1234', '2024-05-01 10:00Z', 'success');
INSERT INTO engineering.deployments (service, commit_sha, finished_at, status) VALUES ('checkout', 'zz', '2024-05-01 10:00Z', 'success');
-- time order
INSERT INTO engineering.deployments (service, started_at, finished_at, status)
VALUES ('checkout', '2024-05-01 10:00Z', '2024-05-01 09:59Z', 'success');
-- a completed deployment needs its finish time; a running one does not
INSERT INTO engineering.deployments (service, started_at, status) VALUES ('checkout', '2024-05-01 10:00Z', 'success');
INSERT INTO engineering.deployments (service, started_at, status) VALUES ('checkout', '2024-05-01 10:00Z', 'failure');
INSERT INTO engineering.deployments (service, started_at, status) VALUES ('checkout', '2024-05-01 10:00Z', 'running');
-- updates are checked too
UPDATE engineering.deployments SET status = 'done' WHERE external_id = 'd1';
SELECT count(*) AS deployments FROM engineering.deployments;

--
-- changes and deployment_changes
--
INSERT INTO engineering.changes (source_id, external_id, service, commit_sha, authored_at, committed_at, author, title)
VALUES (1, 'abc1234', 'checkout', 'abc1234', '2024-04-30 12:00-07', '2024-04-30 13:00-07', 'ada', 'Fix rounding of totals ✓');
SELECT service, commit_sha, authored_at, committed_at, author, title FROM engineering.changes;
INSERT INTO engineering.changes (service, commit_sha) VALUES ('checkout', 'def5678');
INSERT INTO engineering.changes (service, committed_at) VALUES ('checkout', '2024-05-01 10:00Z');
INSERT INTO engineering.changes (service, commit_sha, committed_at) VALUES ('checkout', 'not-a-sha', '2024-05-01 10:00Z');
INSERT INTO engineering.changes (service, commit_sha, committed_at) VALUES (' ', 'def5678', '2024-05-01 10:00Z');
INSERT INTO engineering.changes (source_id, service, commit_sha, committed_at) VALUES (1, 'checkout', 'def5678', '2024-05-01 10:00Z');
INSERT INTO engineering.changes (source_id, external_id, service, commit_sha, committed_at)
VALUES (1, 'abc1234', 'checkout', 'abc1234', '2024-05-01 10:00Z');

INSERT INTO engineering.deployment_changes (deployment_id, change_id)
SELECT d.id, c.id FROM engineering.deployments d, engineering.changes c WHERE d.external_id = 'd1';
SELECT linked_by FROM engineering.deployment_changes;
-- each pair once
INSERT INTO engineering.deployment_changes (deployment_id, change_id)
SELECT d.id, c.id FROM engineering.deployments d, engineering.changes c WHERE d.external_id = 'd1';
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by) VALUES (1, 1, 'guessed');
INSERT INTO engineering.deployment_changes (deployment_id, change_id) VALUES (1, 999);

--
-- pull_requests
--
INSERT INTO engineering.pull_requests (source_id, external_id, service, number, title, author, opened_at, first_commit_at, merged_at, merge_commit_sha)
VALUES (1, 'pr-7', 'checkout', 7, 'Faster checkout', 'ada', '2024-04-30T10:00:00+02:00', '2024-04-29T09:00:00Z', '2024-04-30T15:00:00Z', 'abc1234');
SELECT number, opened_at, first_commit_at, merged_at, merge_commit_sha FROM engineering.pull_requests;
INSERT INTO engineering.pull_requests (service, number, opened_at) VALUES ('checkout', 0, '2024-05-01 10:00Z');
INSERT INTO engineering.pull_requests (service, number) VALUES ('checkout', 8);
INSERT INTO engineering.pull_requests (service, number, opened_at, merged_at)
VALUES ('checkout', 9, '2024-05-01 10:00Z', '2024-05-01 09:00Z');
INSERT INTO engineering.pull_requests (service, number, opened_at, merge_commit_sha)
VALUES ('checkout', 10, '2024-05-01 10:00Z', 'XYZ');

--
-- incidents
--
INSERT INTO engineering.incidents (source_id, external_id, service, title, severity, status, opened_at, acknowledged_at, resolved_at)
VALUES (1, 'i1', 'checkout', 'Payments failing', 'high', 'resolved', '2024-05-01 12:00Z', '2024-05-01 12:05Z', '2024-05-01 13:00Z');
INSERT INTO engineering.incidents (service, status, opened_at) VALUES ('checkout', 'open', '2024-05-02 12:00Z');
SELECT service, status, opened_at, acknowledged_at, resolved_at, cause_deployment_id, cause_inferred FROM engineering.incidents ORDER BY id;
INSERT INTO engineering.incidents (service, status, opened_at) VALUES ('checkout', 'closed', '2024-05-01 10:00Z');
INSERT INTO engineering.incidents (service, status) VALUES ('checkout', 'open');
INSERT INTO engineering.incidents (service, status, opened_at, resolved_at)
VALUES ('checkout', 'resolved', '2024-05-01 12:00Z', '2024-05-01 11:00Z');
INSERT INTO engineering.incidents (service, status, opened_at, acknowledged_at)
VALUES ('checkout', 'open', '2024-05-01 12:00Z', '2024-05-01 11:00Z');
INSERT INTO engineering.incidents (service, status, opened_at) VALUES ('checkout', 'resolved', '2024-05-01 12:00Z');
INSERT INTO engineering.incidents (service, status, opened_at, resolved_at)
VALUES ('checkout', 'open', '2024-05-01 12:00Z', '2024-05-01 13:00Z');
-- a cause that is deleted leaves the incident without a cause
INSERT INTO engineering.deployments (external_id, service, finished_at, status)
VALUES ('doomed', 'checkout', '2024-05-01 11:00Z', 'success');
UPDATE engineering.incidents SET cause_deployment_id = (SELECT id FROM engineering.deployments WHERE external_id = 'doomed')
WHERE external_id = 'i1';
DELETE FROM engineering.deployments WHERE external_id = 'doomed';
SELECT external_id, cause_deployment_id FROM engineering.incidents WHERE external_id = 'i1';
UPDATE engineering.incidents SET cause_deployment_id = 12345 WHERE external_id = 'i1';

--
-- pipeline_runs
--
INSERT INTO engineering.pipeline_runs (source_id, external_id, service, pipeline, branch, commit_sha, event, status, queued_at, started_at, finished_at, attempt)
VALUES (1, 'r1:1', 'checkout', 'CI', 'main', 'abc1234', 'push', 'failure', '2024-05-01 10:00Z', '2024-05-01 10:01Z', '2024-05-01 10:09Z', 1),
       (1, 'r1:2', 'checkout', 'CI', 'main', 'abc1234', 'push', 'success', '2024-05-01 10:10Z', '2024-05-01 10:10Z', '2024-05-01 10:18Z', 2);
INSERT INTO engineering.pipeline_runs (service, pipeline, status, queued_at) VALUES ('checkout', 'CI', 'queued', '2024-05-01 10:00Z');
SELECT external_id, status, attempt, finished_at - started_at AS duration FROM engineering.pipeline_runs ORDER BY id;
INSERT INTO engineering.pipeline_runs (service, pipeline, status, queued_at) VALUES ('checkout', 'CI', 'passed', '2024-05-01 10:00Z');
INSERT INTO engineering.pipeline_runs (service, pipeline, status) VALUES ('checkout', 'CI', 'queued');
INSERT INTO engineering.pipeline_runs (service, pipeline, status, queued_at) VALUES ('checkout', '', 'queued', '2024-05-01 10:00Z');
INSERT INTO engineering.pipeline_runs (service, pipeline, status, queued_at, attempt) VALUES ('checkout', 'CI', 'queued', '2024-05-01 10:00Z', 0);
INSERT INTO engineering.pipeline_runs (service, pipeline, status, queued_at, started_at)
VALUES ('checkout', 'CI', 'running', '2024-05-01 10:00Z', '2024-05-01 09:00Z');
INSERT INTO engineering.pipeline_runs (service, pipeline, status, started_at, finished_at)
VALUES ('checkout', 'CI', 'success', '2024-05-01 10:00Z', '2024-05-01 09:00Z');
INSERT INTO engineering.pipeline_runs (service, pipeline, status, started_at)
VALUES ('checkout', 'CI', 'success', '2024-05-01 10:00Z');

-- a source with events cannot be deleted out from under them
DELETE FROM engineering.sources WHERE name = 'gh';

-- the indexes that serve per-service, per-time-range queries exist
SELECT indexrelid::regclass AS index
FROM pg_index
WHERE indrelid::regclass::text IN ('engineering.deployments', 'engineering.changes', 'engineering.incidents',
                                   'engineering.pull_requests', 'engineering.pipeline_runs')
  AND NOT indisprimary
ORDER BY 1::text;

-- DROP EXTENSION removes every object it created; only the schema that
-- CREATE EXTENSION made from the control file remains, empty.
DROP EXTENSION engineering_metrics;
SELECT count(*) AS objects_left
FROM pg_class WHERE relnamespace = 'engineering'::regnamespace;
SELECT count(*) AS functions_left
FROM pg_proc WHERE pronamespace = 'engineering'::regnamespace;
SELECT count(*) AS types_left
FROM pg_type WHERE typnamespace = 'engineering'::regnamespace;
DROP SCHEMA engineering;
CREATE EXTENSION engineering_metrics;
SELECT count(*) > 0 AS recreated FROM pg_class WHERE relnamespace = 'engineering'::regnamespace;
