-- GitHub connector: the SQL that maps GitHub's JSON to rows, plans a sync
-- and ingests pages, exercised with hand-written fixture payloads (no
-- network).  Shapes follow the REST API (https://docs.github.com/rest).
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY terse

SELECT engineering.add_source('gh', 'github', 'http://127.0.0.1:9/github',
                              '{"repository": "acme/shop", "since": "2024-01-01"}') AS id;
SELECT engineering.add_source('gh-deploy', 'github', 'http://127.0.0.1:9/github',
    '{"repository": "acme/web", "service": "web", "deployment_workflows": "^Deploy|deploy\\.yml$"}') AS id;

--
-- workflow run status
--
SELECT s, c, engineering._github_run_status(s, c)
FROM (VALUES ('completed', 'success'), ('completed', 'neutral'), ('completed', 'failure'),
             ('completed', 'timed_out'), ('completed', 'startup_failure'), ('completed', 'action_required'),
             ('completed', 'cancelled'), ('completed', 'stale'), ('completed', 'skipped'),
             ('completed', 'brand_new_conclusion'), ('completed', NULL), (NULL, 'success'),
             ('in_progress', NULL), ('queued', NULL), ('waiting', NULL), ('requested', NULL),
             ('pending', NULL), ('brand_new_status', NULL), (NULL, NULL)) AS t(s, c);

--
-- workflow runs -> pipeline_runs (one row per attempt)
--
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop"}', 'main', $json$[
  {"id": 101, "name": "CI", "path": ".github/workflows/ci.yml", "workflow_id": 7, "run_number": 12,
   "head_branch": "main", "head_sha": "0123456789abcdef0123456789abcdef01234567", "event": "push",
   "status": "completed", "conclusion": "success", "run_attempt": 1,
   "created_at": "2024-05-01T10:00:00Z", "run_started_at": "2024-05-01T10:00:30Z",
   "updated_at": "2024-05-01T10:05:00Z", "html_url": "https://github.com/acme/shop/actions/runs/101",
   "actor": {"login": "mona"}, "pull_requests": [{"number": 5}, {"number": 6}]},
  {"id": 102, "name": "CI", "path": ".github/workflows/ci.yml", "head_branch": "feature/x",
   "head_sha": "ABCDEF0123456789ABCDEF0123456789ABCDEF01", "event": "pull_request",
   "status": "completed", "conclusion": "failure", "run_attempt": 2,
   "created_at": "2024-05-01T12:00:00+02:00", "run_started_at": "2024-05-01T12:30:00+02:00",
   "updated_at": "2024-05-01T12:41:15+02:00"},
  {"id": 103, "name": "Déploiement 🚀 «prod»", "path": ".github/workflows/deploy.yml",
   "head_branch": "main", "head_sha": "not-a-sha", "status": "in_progress", "conclusion": null,
   "created_at": "2024-05-01T11:00:00Z", "run_started_at": "2024-05-01T11:00:05Z",
   "updated_at": "2024-05-01T11:00:05Z"},
  {"id": 104, "name": null, "path": ".github/workflows/nightly.yml", "head_sha": null,
   "status": "completed", "conclusion": "startup_failure", "run_attempt": null,
   "created_at": "2024-05-01T03:00:00Z", "run_started_at": null, "updated_at": "2024-05-01T03:00:02Z"},
  {"id": 105, "name": "  ", "path": "", "workflow_id": 9, "status": "waiting", "conclusion": null,
   "created_at": "2024-05-01T04:00:00Z", "run_started_at": "2024-05-01T04:00:01Z", "updated_at": null},
  {"id": 106, "name": "Lint", "status": "brand_new_status", "conclusion": null,
   "created_at": "2024-05-01T05:00:00.250Z", "run_started_at": "2024-05-01T04:59:59Z",
   "updated_at": "2024-05-01T05:00:09Z"},
  {"id": 107, "name": "Lint", "status": "completed", "conclusion": "skipped", "run_attempt": "x",
   "created_at": "2024-05-01T06:00:00Z", "run_started_at": "2024-05-01T06:00:01Z",
   "updated_at": "2024-05-01T06:00:01Z"},
  {"id": 101, "name": "CI", "path": ".github/workflows/ci.yml", "status": "completed", "conclusion": "success",
   "run_attempt": 1, "created_at": "2024-05-01T10:00:00Z", "run_started_at": "2024-05-01T10:00:30Z",
   "updated_at": "2024-05-01T10:05:00Z"},
  42, {"name": "no id"}, {"id": "abc"}
]$json$) AS rows_changed;

SELECT external_id, pipeline, branch, commit_sha, event, status, queued_at, started_at, finished_at,
       attempt, url, attributes->>'github_conclusion' AS conclusion, attributes->'pull_requests' AS prs
FROM engineering.pipeline_runs ORDER BY external_id;

-- the same page again changes nothing; a run that completed is updated
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop"}', 'main', $json$[
  {"id": 101, "name": "CI", "path": ".github/workflows/ci.yml", "workflow_id": 7, "run_number": 12,
   "head_branch": "main", "head_sha": "0123456789abcdef0123456789abcdef01234567", "event": "push",
   "status": "completed", "conclusion": "success", "run_attempt": 1,
   "created_at": "2024-05-01T10:00:00Z", "run_started_at": "2024-05-01T10:00:30Z",
   "updated_at": "2024-05-01T10:05:00Z", "html_url": "https://github.com/acme/shop/actions/runs/101",
   "actor": {"login": "mona"}, "pull_requests": [{"number": 5}, {"number": 6}]}
]$json$) AS unchanged;
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop"}', 'main', $json$[
  {"id": 103, "name": "Déploiement 🚀 «prod»", "path": ".github/workflows/deploy.yml",
   "head_branch": "main", "head_sha": "not-a-sha", "status": "completed", "conclusion": "success",
   "created_at": "2024-05-01T11:00:00Z", "run_started_at": "2024-05-01T11:00:05Z",
   "updated_at": "2024-05-01T11:09:59Z"}
]$json$) AS completed;
SELECT external_id, status, finished_at FROM engineering.pipeline_runs WHERE external_id = '103/1';
-- a service override applies to every row
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop", "service": "storefront"}', 'main',
    '[{"id": 108, "name": "CI", "status": "queued", "created_at": "2024-05-02T00:00:00Z"}]') AS rows_changed;
SELECT external_id, service, status FROM engineering.pipeline_runs WHERE external_id = '108/1';
-- not an array, or a time that is not one: the page is refused as a whole
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop"}', 'main', '{"workflow_runs": []}');
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop"}', 'main',
    '[{"id": 109, "status": "queued", "created_at": "2024-05-02 00:00:00"}]');
SELECT count(*) AS runs FROM engineering.pipeline_runs;

--
-- deployment workflows: successful runs on the default branch are deployments
--
SELECT engineering._github_map_runs(2, '{"repository": "acme/web", "service": "web", "deployment_workflows": "^Deploy|deploy\\.yml$"}',
    'main', $json$[
  {"id": 201, "name": "Deploy", "path": ".github/workflows/deploy.yml", "head_branch": "main",
   "head_sha": "aaaaaaa000000000000000000000000000000001", "status": "completed", "conclusion": "success",
   "created_at": "2024-06-01T10:00:00Z", "run_started_at": "2024-06-01T10:00:10Z", "updated_at": "2024-06-01T10:10:00Z"},
  {"id": 202, "name": "Release", "path": ".github/workflows/deploy.yml", "head_branch": "main",
   "head_sha": "aaaaaaa000000000000000000000000000000002", "status": "completed", "conclusion": "success",
   "created_at": "2024-06-02T10:00:00Z", "run_started_at": "2024-06-02T10:00:10Z", "updated_at": "2024-06-02T10:12:00Z"},
  {"id": 203, "name": "Deploy", "path": ".github/workflows/deploy.yml", "head_branch": "feature/y",
   "head_sha": "aaaaaaa000000000000000000000000000000003", "status": "completed", "conclusion": "success",
   "created_at": "2024-06-03T10:00:00Z", "run_started_at": "2024-06-03T10:00:10Z", "updated_at": "2024-06-03T10:12:00Z"},
  {"id": 204, "name": "Deploy", "path": ".github/workflows/deploy.yml", "head_branch": "main",
   "head_sha": "aaaaaaa000000000000000000000000000000004", "status": "completed", "conclusion": "failure",
   "created_at": "2024-06-04T10:00:00Z", "run_started_at": "2024-06-04T10:00:10Z", "updated_at": "2024-06-04T10:12:00Z"},
  {"id": 205, "name": "CI", "path": ".github/workflows/ci.yml", "head_branch": "main",
   "head_sha": "aaaaaaa000000000000000000000000000000005", "status": "completed", "conclusion": "success",
   "created_at": "2024-06-05T10:00:00Z", "run_started_at": "2024-06-05T10:00:10Z", "updated_at": "2024-06-05T10:12:00Z"}
]$json$) AS rows_changed;
SELECT external_id, service, environment, commit_sha, started_at, finished_at, status,
       attributes->>'compare_base' AS compare_base, attributes ? 'compare_base' AS decided
FROM engineering.deployments WHERE source_id = 2 ORDER BY finished_at;
-- the second deployment is compared with the first; the first, with nothing
SELECT stream, url, payload - 'deployment_id' AS payload FROM engineering.sync_tasks WHERE source_id = 2;
-- without a known default branch, no run is taken for a deployment
SELECT engineering._github_map_runs(2, '{"repository": "acme/web", "deployment_workflows": "^Deploy"}', NULL,
    '[{"id": 206, "name": "Deploy", "head_branch": "main", "status": "completed", "conclusion": "success",
       "created_at": "2024-06-06T10:00:00Z", "run_started_at": "2024-06-06T10:00:10Z", "updated_at": "2024-06-06T10:12:00Z"}]') AS rows_changed;
SELECT count(*) AS workflow_deployments FROM engineering.deployments WHERE source_id = 2;
DELETE FROM engineering.sync_tasks;

--
-- deployments: the deploy time is the first success status
--
SELECT d, engineering._github_map_deployment(1, '{"repository": "acme/shop"}', dep::jsonb, st::jsonb) IS NOT NULL AS mapped
FROM (VALUES
  ('success after progress',
   '{"id": 301, "sha": "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ref": "main", "task": "deploy", "environment": "production",
     "created_at": "2024-05-01T09:00:00Z", "production_environment": true, "creator": {"login": "deployer"}}',
   '[{"id": 2, "state": "success", "created_at": "2024-05-01T09:04:00Z", "log_url": "https://ci.example.com/301"},
     {"id": 1, "state": "in_progress", "created_at": "2024-05-01T09:00:05Z"}]'),
  ('first of two successes, offsets',
   '{"id": 302, "sha": "2222222AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "environment": "production", "created_at": "2024-05-02T11:00:00+02:00"}',
   '[{"id": 5, "state": "success", "created_at": "2024-05-02T11:30:00+02:00"},
     {"id": 4, "state": "success", "created_at": "2024-05-02T11:10:00+02:00"},
     {"id": 3, "state": "queued", "created_at": "2024-05-02T11:00:01+02:00"}]'),
  ('error is a failure',
   '{"id": 303, "sha": "3333333aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "environment": "production", "created_at": "2024-05-03T09:00:00Z"}',
   '[{"id": 6, "state": "error", "created_at": "2024-05-03T09:02:00Z"}]'),
  ('superseded before it finished',
   '{"id": 304, "sha": "4444444aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "environment": "staging", "created_at": "2024-05-04T09:00:00Z"}',
   '[{"id": 8, "state": "inactive", "created_at": "2024-05-04T09:30:00Z"},
     {"id": 7, "state": "pending", "created_at": "2024-05-04T09:00:01Z"}]'),
  ('still pending',
   '{"id": 305, "sha": "5555555aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "environment": "", "created_at": "2024-05-05T09:00:00Z"}',
   '[{"id": 9, "state": "pending", "created_at": "2024-05-05T09:00:01Z"}, {"id": 10, "state": "new_state_x", "created_at": "2024-05-05T09:00:02Z"}]'),
  ('no statuses yet',
   '{"id": 306, "sha": "not a sha", "environment": "production", "created_at": "2024-05-06T09:00:00Z"}', '[]'),
  ('success stamped before the request',
   '{"id": 307, "sha": "7777777aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "environment": "production", "created_at": "2024-05-07T09:00:00Z"}',
   '[{"id": 11, "state": "success", "created_at": "2024-05-07T08:59:58Z"}]')
) AS t(d, dep, st);
SELECT external_id, service, environment, commit_sha, started_at, finished_at, status, url,
       attributes->>'github_state' AS github_state, attributes->>'compare_base' AS compare_base
FROM engineering.deployments WHERE source_id = 1 ORDER BY external_id;
-- successes of production are chained to the previous one; 301 is the first
SELECT url, payload->>'base' AS base FROM engineering.sync_tasks WHERE stream = 'compare' ORDER BY id;
SELECT engineering._github_map_deployment(1, '{"repository": "acme/shop"}', '{"sha": "x"}', '[]');
SELECT engineering._github_map_deployment(1, '{"repository": "acme/shop"}', '{"id": 399}', '{}');

-- Deployments arrive newest first and out of order: each new success also
-- re-decides the base of the success after it.
DELETE FROM engineering.sync_tasks;
SELECT engineering.add_source('order', 'github', 'http://127.0.0.1:9/github', '{"repository": "acme/order"}') AS id;
SELECT d, engineering._github_map_deployment(3, '{"repository": "acme/order"}',
           format('{"id": %s, "sha": "%s", "environment": "production", "created_at": "%s"}', d, sha, t)::jsonb,
           format('[{"id": 1, "state": "success", "created_at": "%s"}]', t)::jsonb) IS NOT NULL AS mapped
FROM (VALUES (403, 'ccccccc', '2024-07-03T00:00:00Z'), (401, 'aaaaaaa', '2024-07-01T00:00:00Z'),
             (402, 'bbbbbbb', '2024-07-02T00:00:00Z')) AS v(d, sha, t);
SELECT external_id, commit_sha, attributes->>'compare_base' AS compare_base
FROM engineering.deployments WHERE source_id = 3 ORDER BY external_id;
SELECT url, payload->>'base' AS base FROM engineering.sync_tasks WHERE source_id = 3 ORDER BY id;

--
-- compare -> changes + deployment_changes
--
SELECT engineering._github_map_compare(3, '{"repository": "acme/order"}',
    (SELECT id FROM engineering.deployments WHERE source_id = 3 AND external_id = '403'), $json$[
  {"sha": "bbbbbbb1111111111111111111111111111111111", "author": {"login": "mona"},
   "commit": {"author": {"name": "Mona", "date": "2024-07-02T08:00:00+02:00"},
              "committer": {"name": "GitHub", "date": "2024-07-02T09:00:00+02:00"},
              "message": "Fix the checkout total\n\nRounded once instead of per line."}},
  {"sha": "CCCCCCC", "author": null,
   "commit": {"author": {"name": "Zoë Ünïcode", "date": "2024-07-02T12:00:00Z"}, "committer": null,
              "message": "Ajouter le thème ✨"}},
  {"sha": "not-hex", "commit": {"author": {"date": "2024-07-02T12:00:00Z"}, "message": "skipped"}},
  {"sha": "ddddddd", "commit": {"author": {"date": null}, "committer": {"date": null}, "message": "no dates"}}
]$json$) AS rows_changed;
SELECT external_id, service, commit_sha, authored_at, committed_at, author, title FROM engineering.changes ORDER BY external_id;
SELECT d.external_id AS deployment, c.commit_sha, dc.linked_by
FROM engineering.deployment_changes dc
JOIN engineering.deployments d ON d.id = dc.deployment_id
JOIN engineering.changes c ON c.id = dc.change_id ORDER BY 1, 2;
-- idempotent
SELECT engineering._github_map_compare(3, '{"repository": "acme/order"}',
    (SELECT id FROM engineering.deployments WHERE source_id = 3 AND external_id = '403'),
    '[{"sha": "bbbbbbb1111111111111111111111111111111111", "author": {"login": "mona"},
       "commit": {"author": {"name": "Mona", "date": "2024-07-02T08:00:00+02:00"},
                  "committer": {"name": "GitHub", "date": "2024-07-02T09:00:00+02:00"},
                  "message": "Fix the checkout total\n\nRounded once instead of per line."}}]') AS rows_changed;

--
-- pull requests: merged ones only
--
SELECT engineering._github_map_pulls(1, '{"repository": "acme/shop"}', $json$[
  {"number": 11, "id": 9011, "title": "Add a cart ✓", "user": {"login": "mona"}, "state": "closed",
   "created_at": "2024-05-01T08:00:00Z", "updated_at": "2024-05-02T10:00:00Z", "closed_at": "2024-05-02T09:00:00Z",
   "merged_at": "2024-05-02T09:00:00Z", "merge_commit_sha": "EEEEEEE000000000000000000000000000000000",
   "base": {"ref": "main"}, "head": {"ref": "cart", "sha": "eeeeeee111111111111111111111111111111111"}},
  {"number": 12, "title": "Offsets", "user": {"login": "hubot"}, "state": "closed",
   "created_at": "2024-05-01T10:00:00+02:00", "updated_at": "2024-05-01T12:00:00+02:00",
   "merged_at": "2024-05-01T11:30:00+02:00", "merge_commit_sha": null},
  {"number": 13, "title": "Closed without merge", "state": "closed",
   "created_at": "2024-05-01T08:00:00Z", "updated_at": "2024-05-01T09:00:00Z", "merged_at": null},
  {"number": 14, "title": "Merged before opened (clock skew)", "user": null,
   "created_at": "2024-05-01T08:00:00Z", "merged_at": "2024-05-01T07:59:00Z", "merge_commit_sha": "zzz"},
  {"number": -1, "title": "bad number", "created_at": "2024-05-01T08:00:00Z", "merged_at": "2024-05-01T09:00:00Z"},
  {"number": 15, "title": "no created_at", "merged_at": "2024-05-01T09:00:00Z"}
]$json$) AS rows_changed;
SELECT number, external_id, service, title, author, opened_at, merged_at, merge_commit_sha,
       attributes->>'head_ref' AS head_ref
FROM engineering.pull_requests ORDER BY number;
SELECT engineering._github_map_pull_commits(1, 11, $json$[
  {"sha": "e1", "commit": {"author": {"date": "2024-05-01T09:00:00+02:00"}, "committer": {"date": "2024-05-01T09:30:00Z"}}},
  {"sha": "e2", "commit": {"author": {"date": "2024-04-30T22:00:00Z"}}},
  {"sha": "e3", "commit": {"author": null, "committer": {"date": "2024-05-01T10:00:00Z"}}}
]$json$) AS updated;
SELECT engineering._github_map_pull_commits(1, 11, '[]') AS nothing_to_update;
SELECT number, first_commit_at, attributes->>'commits_fetched' AS fetched FROM engineering.pull_requests WHERE number = 11;

--
-- ingest: the connector interface, fed with tasks and responses
--
DELETE FROM engineering.sync_tasks;
CREATE FUNCTION pg_temp.ingest(source_name text, stream text, url text, payload jsonb, headers jsonb, body jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    t engineering.sync_tasks;
    n bigint;
BEGIN
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT id, stream, url, payload FROM engineering.sources WHERE name = source_name RETURNING * INTO t;
    SELECT engineering._github_ingest(s, t, 200, headers, body) INTO n
    FROM engineering.sources s WHERE s.name = source_name;
    DELETE FROM engineering.sync_tasks WHERE id = t.id;
    RETURN n;
END $$;

-- over 1,000 runs in a window: it is split (ceil(2500 / 500) = 5 parts), nothing mapped
SELECT pg_temp.ingest('gh', 'runs', '/repos/acme/shop/actions/runs?per_page=100&created=x',
    '{"from": "2024-01-01T00:00:00Z", "to": "2024-01-06T00:00:00Z", "first": true}', '{}',
    '{"total_count": 2500, "workflow_runs": [{"id": 1}]}') AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
-- a page with a next link queues it; the last page of a window moves the watermark
SELECT pg_temp.ingest('gh', 'runs', '/x', '{"from": "2024-01-01T00:00:00Z", "to": "2024-01-06T00:00:00Z", "first": true}',
    '{"link": "<http://127.0.0.1:9/github/repos/acme/shop/actions/runs?page=2>; rel=\"next\""}',
    '{"total_count": 150, "workflow_runs": [{"id": 501, "name": "CI", "status": "completed", "conclusion": "success", "run_attempt": 3,
      "created_at": "2024-01-02T00:00:00Z", "run_started_at": "2024-01-02T00:00:01Z", "updated_at": "2024-01-02T00:05:00Z"}]}') AS rows_changed;
-- the earlier attempts of the re-run are queued too
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
SELECT cursor FROM engineering.sources WHERE name = 'gh';
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('gh', 'runs', 'http://127.0.0.1:9/github/x?page=2', '{"from": "2024-01-01T00:00:00Z", "to": "2024-01-06T00:00:00Z", "first": false}',
    '{}', '{"total_count": 150, "workflow_runs": []}') AS rows_changed;
SELECT cursor FROM engineering.sources WHERE name = 'gh';
SELECT pg_temp.ingest('gh', 'runs', '/x', '{"from": "2023-01-01T00:00:00Z", "to": "2023-01-06T00:00:00Z", "first": true}',
    '{}', '{"total_count": 0, "workflow_runs": []}') AS older_window;
SELECT cursor->>'runs_created' AS watermark_kept FROM engineering.sources WHERE name = 'gh';
SELECT pg_temp.ingest('gh', 'runs', '/x', '{}', '{}', '{"message": "Not what we asked for"}');

-- deployments, newest first: only those at or after the watermark are
-- looked at, and the listing stops there
UPDATE engineering.sources SET cursor = cursor || '{"deployments_created": "2024-05-03T00:00:00Z"}' WHERE name = 'gh';
SELECT pg_temp.ingest('gh', 'deployments', '/repos/acme/shop/deployments?per_page=100',
    '{"watermark": "2024-05-03T00:00:00Z", "since": "2024-01-01T00:00:00Z"}',
    '{"link": "<http://127.0.0.1:9/github/repos/acme/shop/deployments?per_page=100&page=2>; rel=\"next\""}',
    $json$[{"id": 310, "sha": "aaaaaaa", "environment": "production", "created_at": "2024-05-09T00:00:00Z"},
           {"id": 301, "sha": "1111111", "environment": "production", "created_at": "2024-05-04T00:00:00Z"},
           {"id": 305, "sha": "5555555", "environment": "production", "created_at": "2024-05-03T00:00:00Z"},
           {"id": 299, "sha": "9999999", "environment": "production", "created_at": "2024-05-02T23:59:59Z"}]$json$) AS rows_changed;
-- only 310 is new (301 is final, 305 is fetched again by the plan while it
-- runs); 299 is older than the watermark: no next page
SELECT stream, url, payload->'deployment'->>'id' AS deployment FROM engineering.sync_tasks ORDER BY id;
SELECT cursor->>'deployments_created' AS watermark FROM engineering.sources WHERE name = 'gh';
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('gh', 'deployment_statuses', '/x',
    '{"deployment": {"id": 310, "sha": "aaaaaaa", "environment": "production", "created_at": "2024-05-09T00:00:00Z"}}', '{}',
    '[{"id": 1, "state": "success", "created_at": "2024-05-09T00:03:00Z"}]') AS rows_changed;
SELECT external_id, status, finished_at, attributes->>'compare_base' AS compare_base
FROM engineering.deployments WHERE external_id = '310';

-- pull requests by updated time: the first page of a backfill continues
SELECT pg_temp.ingest('gh', 'pulls', '/repos/acme/shop/pulls?state=closed',
    '{"watermark": null, "since": "2024-01-01T00:00:00Z"}',
    '{"link": "<http://127.0.0.1:9/github/repos/acme/shop/pulls?state=closed&page=2>; rel=\"next\""}',
    $json$[{"number": 21, "title": "New", "created_at": "2024-05-09T00:00:00Z", "updated_at": "2024-05-10T00:00:00Z", "merged_at": "2024-05-09T12:00:00Z"},
           {"number": 11, "title": "Add a cart ✓", "user": {"login": "mona"},
            "created_at": "2024-05-01T08:00:00Z", "updated_at": "2024-05-02T10:00:00Z", "closed_at": "2024-05-02T09:00:00Z",
            "merged_at": "2024-05-02T09:00:00Z", "merge_commit_sha": "EEEEEEE000000000000000000000000000000000",
            "base": {"ref": "main"}, "head": {"ref": "cart", "sha": "eeeeeee111111111111111111111111111111111"}, "id": 9011}]$json$) AS rows_changed;
-- the next page, and the commits of the new merged pull request (11's are
-- known); the compare of deployment 310 is still queued from above
SELECT stream, url, payload - 'deployment_id' AS payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('gh', 'pulls', 'http://127.0.0.1:9/github/x?page=2',
    '{"watermark": null, "since": "2024-05-01T00:00:00Z", "newest": "2024-05-10T00:00:00Z"}', '{}',
    $json$[{"number": 9, "title": "Before the backfill", "created_at": "2023-12-01T00:00:00Z",
            "updated_at": "2023-12-02T00:00:00Z", "merged_at": "2023-12-02T00:00:00Z"}]$json$) AS rows_changed;
SELECT cursor->>'pulls_updated' AS watermark FROM engineering.sources WHERE name = 'gh';
SELECT count(*) AS pull_9 FROM engineering.pull_requests WHERE number = 9;

-- the repository's default branch, for deployment workflows
SELECT pg_temp.ingest('gh-deploy', 'repository', '/repos/acme/web', '{}', '{}', '{"id": 1, "default_branch": "trunk"}');
SELECT cursor->>'default_branch' AS default_branch FROM engineering.sources WHERE name = 'gh-deploy';
-- a compare superseded by a newer decision is ignored
SELECT pg_temp.ingest('order', 'compare', '/x',
    jsonb_build_object('deployment_id', (SELECT id FROM engineering.deployments WHERE external_id = '403' AND source_id = 3),
                       'base', 'aaaaaaa'), '{}',
    '{"commits": [{"sha": "fffffff", "commit": {"author": {"date": "2024-07-01T00:00:00Z"}}}]}') AS stale_compare;
SELECT count(*) AS change_fffffff FROM engineering.changes WHERE commit_sha = 'fffffff';
-- gone (404 on a missing_ok task), and streams the connector does not know
SELECT pg_temp.ingest('gh', 'run', '/x', '{"missing_ok": true}', '{}', NULL) AS gone;
SELECT pg_temp.ingest('gh', 'mystery', '/x', '{}', '{}', '{}');

--
-- shapes of real responses: when a run ends
--
DELETE FROM engineering.sync_tasks;
-- PyGithub's run of 2022-12-24, whose updated_at GitHub moved 13 months
-- later: stored with updated_at at first, its jobs are queued, and the
-- latest job's completed_at (07:33:10) becomes its end, kept when the run
-- is listed again
SELECT pg_temp.ingest('gh', 'runs', '/x', '{"from": "2022-12-24T00:00:00Z", "to": "2022-12-25T00:00:00Z", "first": true}', '{}',
    $json$
    {"total_count": 1, "workflow_runs": [
      {"id": 3770390952, "name": "CI", "node_id": "WFR_kwLOADYVqM7gu0Do", "head_branch": "main",
       "head_sha": "1f1a4bd5a4ed5cf5baf9f4bbb4a8c7b1d6cfc6a2", "path": ".github/workflows/ci.yml", "display_title": "CI",
       "run_number": 3059, "event": "pull_request", "status": "completed", "conclusion": "success",
       "workflow_id": 1903133, "check_suite_id": 10054338722, "url": "https://api.github.com/repos/PyGithub/PyGithub/actions/runs/3770390952",
       "html_url": "https://github.com/PyGithub/PyGithub/actions/runs/3770390952", "pull_requests": [],
       "created_at": "2022-12-24T07:29:12Z", "updated_at": "2024-01-29T23:29:45Z",
       "actor": {"login": "dependabot[bot]"}, "run_attempt": 1, "run_started_at": "2022-12-24T07:29:12Z"}]}
    $json$) AS rows_changed;
SELECT external_id, started_at, finished_at FROM engineering.pipeline_runs WHERE external_id = '3770390952/1';
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('gh', 'run_jobs', '/repos/acme/shop/actions/runs/3770390952/attempts/1/jobs?per_page=100',
    '{"run": "3770390952/1", "missing_ok": true}', '{}',
    $json$
    {"total_count": 3, "jobs": [
      {"id": 10262005511, "run_id": 3770390952, "run_attempt": 1, "status": "completed", "conclusion": "success",
       "created_at": "2022-12-24T07:29:13Z", "started_at": "2022-12-24T07:29:21Z", "completed_at": "2022-12-24T07:31:02Z", "name": "lint"},
      {"id": 10262005512, "run_id": 3770390952, "run_attempt": 1, "status": "completed", "conclusion": "success",
       "created_at": "2022-12-24T07:29:13Z", "started_at": "2022-12-24T07:29:20Z", "completed_at": "2022-12-24T07:33:10Z", "name": "test (3.11)"},
      {"id": 10262005513, "run_id": 3770390952, "run_attempt": 1, "status": "completed", "conclusion": "skipped",
       "created_at": "2022-12-24T07:29:13Z", "started_at": "2022-12-24T07:29:13Z", "completed_at": "2022-12-24T07:29:13Z", "name": "deploy"}]}
    $json$) AS jobs_read;
SELECT external_id, started_at, finished_at, finished_at - started_at AS took,
       attributes->'jobs_read' AS jobs_read, attributes->>'jobs_completed_at' AS jobs_completed_at
FROM engineering.pipeline_runs WHERE external_id = '3770390952/1';
SELECT pg_temp.ingest('gh', 'runs', '/x', '{"from": "2022-12-24T00:00:00Z", "to": "2022-12-25T00:00:00Z", "first": true}', '{}',
    $json$
    {"total_count": 1, "workflow_runs": [
      {"id": 3770390952, "name": "CI", "head_branch": "main", "head_sha": "1f1a4bd5a4ed5cf5baf9f4bbb4a8c7b1d6cfc6a2",
       "path": ".github/workflows/ci.yml", "display_title": "CI", "run_number": 3059, "event": "pull_request",
       "status": "completed", "conclusion": "success", "workflow_id": 1903133,
       "html_url": "https://github.com/PyGithub/PyGithub/actions/runs/3770390952", "pull_requests": [],
       "created_at": "2022-12-24T07:29:12Z", "updated_at": "2024-01-29T23:29:45Z",
       "actor": {"login": "dependabot[bot]"}, "run_attempt": 1, "run_started_at": "2022-12-24T07:29:12Z"}]}
    $json$) AS listed_again;
SELECT finished_at FROM engineering.pipeline_runs WHERE external_id = '3770390952/1';
SELECT count(*) AS jobs_queued_again FROM engineering.sync_tasks WHERE stream = 'run_jobs';
DELETE FROM engineering.sync_tasks;
-- the May 2020 shape: no name, path, run_started_at or run_attempt.  The
-- pipeline is "workflow <workflow_id>" (nothing else names it), queued at
-- created_at, started when its jobs say (NULL until then, not created_at);
-- the jobs are asked for without an attempt, over two pages
SELECT pg_temp.ingest('gh', 'runs', '/x', '{"from": "2020-05-20T00:00:00Z", "to": "2020-05-21T00:00:00Z", "first": true}', '{}',
    $json$
    {"total_count": 1, "workflow_runs": [
      {"id": 110932306, "node_id": "MDExOldvcmtmbG93UnVuMTEwOTMyMzA2", "head_branch": "master",
       "head_sha": "6ac5cb6b8a2b4e0f9d39d8e9e4b7b2f7e9d1a2b3", "run_number": 1161, "event": "push",
       "status": "completed", "conclusion": "success", "workflow_id": 1095766,
       "url": "https://api.github.com/repos/PyGithub/PyGithub/actions/runs/110932306",
       "html_url": "https://github.com/PyGithub/PyGithub/actions/runs/110932306", "pull_requests": [],
       "created_at": "2020-05-20T23:59:37Z", "updated_at": "2020-05-21T00:02:14Z",
       "jobs_url": "https://api.github.com/repos/PyGithub/PyGithub/actions/runs/110932306/jobs"}]}
    $json$) AS rows_changed;
SELECT external_id, pipeline, queued_at, started_at, finished_at FROM engineering.pipeline_runs WHERE external_id = '110932306/1';
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('gh', 'run_jobs', '/repos/acme/shop/actions/runs/110932306/jobs?per_page=100',
    '{"run": "110932306/1", "missing_ok": true}',
    '{"link": "<http://127.0.0.1:9/github/repos/acme/shop/actions/runs/110932306/jobs?per_page=100&page=2>; rel=\"next\""}',
    '{"total_count": 2, "jobs": [{"id": 1, "status": "completed", "started_at": "2020-05-21T00:00:05Z", "completed_at": "2020-05-21T00:01:30Z"}]}')
    AS first_page;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
SELECT started_at, finished_at FROM engineering.pipeline_runs WHERE external_id = '110932306/1';
SELECT pg_temp.ingest(s.name, t.stream, t.url, t.payload, '{}',
    '{"total_count": 2, "jobs": [{"id": 2, "status": "completed", "started_at": "2020-05-20T23:59:50Z", "completed_at": "2020-05-21T00:02:01Z"}]}')
    AS last_page
FROM engineering.sync_tasks t JOIN engineering.sources s ON s.id = t.source_id;
DELETE FROM engineering.sync_tasks;
SELECT external_id, pipeline, queued_at, started_at, finished_at, attributes->>'jobs_started_at' AS jobs_started_at
FROM engineering.pipeline_runs WHERE external_id = '110932306/1';
-- a re-run (attempt 2 of PyGithub's run 26365060973): created_at is the
-- first attempt's (five days earlier), so the attempt has no queued_at and
-- starts at run_started_at
SELECT engineering._github_map_runs(1, '{"repository": "acme/shop"}', 'main', $json$[
  {"id": 26365060973, "name": "CodeQL Advanced", "head_branch": "main", "head_sha": "9d0d8e3c2b1a4f5e6d7c8b9a0f1e2d3c4b5a6f7e",
   "path": ".github/workflows/codeql.yml", "run_number": 312, "event": "schedule", "status": "completed",
   "conclusion": "success", "workflow_id": 74523610, "created_at": "2026-05-24T15:20:04Z",
   "updated_at": "2026-05-29T15:43:47Z", "run_attempt": 2, "run_started_at": "2026-05-29T15:42:05Z",
   "previous_attempt_url": "https://api.github.com/repos/PyGithub/PyGithub/actions/runs/26365060973/attempts/1"}
]$json$) AS rows_changed;
SELECT external_id, attempt, queued_at, started_at, finished_at FROM engineering.pipeline_runs WHERE external_id = '26365060973/2';
-- jobs that are gone (404): read, the run keeps updated_at
SELECT pg_temp.ingest('gh', 'run_jobs', '/x', '{"run": "26365060973/2", "missing_ok": true}', '{}', NULL) AS gone;
SELECT finished_at, attributes->'jobs_read' AS jobs_read FROM engineering.pipeline_runs WHERE external_id = '26365060973/2';
SELECT pg_temp.ingest('gh', 'run_jobs', '/x', '{"run": "26365060973/2"}', '{}', '{"message": "x"}');
DELETE FROM engineering.pipeline_runs WHERE external_id IN ('3770390952/1', '110932306/1', '26365060973/2');
DELETE FROM engineering.sync_tasks;

--
-- plan: the first requests of a sync, from the watermarks
--
DELETE FROM engineering.sync_tasks;
UPDATE engineering.sources SET cursor = '{"runs_created": "2024-05-10T12:00:00Z", "deployments_created": "2024-05-09T00:00:00Z", "pulls_updated": "2024-05-10T00:00:00Z"}'
WHERE name = 'gh';
SELECT engineering._github_plan(s) FROM engineering.sources s WHERE name = 'gh';
-- runs from the watermark minus the 6 hour look-back, unfinished runs and
-- deployments by id, then deployments and pull requests down to their watermarks
SELECT stream, split_part(url, '..', 1) AS url, payload - 'to' AS payload
FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
-- (the repository first, for its default branch; no Deployments API; runs
-- from the default since, 180 days ago).  One transaction, so that now()
-- is the same instant in both statements (a second may tick between them).
BEGIN;
SELECT engineering._github_plan(s) FROM engineering.sources s WHERE name = 'gh-deploy';
SELECT stream, split_part(url, '&created=', 1) AS url,
       engineering._ts(payload->'from') = date_trunc('second', now() - interval '180 days') AS from_since
FROM engineering.sync_tasks ORDER BY id;
COMMIT;

--
-- a renamed service (config.service changed; alter_source then re-reads the
-- history) reaches the rows that already exist, as does a new
-- deployment_environment for workflow deployments
--
SELECT engineering._github_map_pulls(1, '{"repository": "acme/shop", "service": "storefront"}', $json$[
  {"number": 11, "id": 9011, "title": "Add a cart ✓", "user": {"login": "mona"}, "state": "closed",
   "created_at": "2024-05-01T08:00:00Z", "updated_at": "2024-05-02T10:00:00Z", "closed_at": "2024-05-02T09:00:00Z",
   "merged_at": "2024-05-02T09:00:00Z", "merge_commit_sha": "EEEEEEE000000000000000000000000000000000",
   "base": {"ref": "main"}, "head": {"ref": "cart", "sha": "eeeeeee111111111111111111111111111111111"}}
]$json$) AS rows_changed;
SELECT number, service FROM engineering.pull_requests WHERE source_id = 1 ORDER BY number;
SELECT engineering._github_map_runs(2, '{"repository": "acme/web", "service": "website", "deployment_workflows": "^Deploy", "deployment_environment": "eu-prod"}',
    'main', $json$[
  {"id": 201, "name": "Deploy", "path": ".github/workflows/deploy.yml", "head_branch": "main",
   "head_sha": "aaaaaaa000000000000000000000000000000001", "status": "completed", "conclusion": "success",
   "created_at": "2024-06-01T10:00:00Z", "run_started_at": "2024-06-01T10:00:10Z", "updated_at": "2024-06-01T10:10:00Z"}
]$json$) AS rows_changed;
SELECT external_id, service, environment FROM engineering.deployments
WHERE source_id = 2 AND external_id LIKE 'run:%' ORDER BY external_id;
SELECT engineering._github_map_compare(3, '{"repository": "acme/order", "service": "orders"}',
    (SELECT id FROM engineering.deployments WHERE source_id = 3 AND external_id = '403'),
    '[{"sha": "bbbbbbb1111111111111111111111111111111111", "author": {"login": "mona"},
       "commit": {"author": {"name": "Mona", "date": "2024-07-02T08:00:00+02:00"},
                  "committer": {"name": "GitHub", "date": "2024-07-02T09:00:00+02:00"},
                  "message": "Fix the checkout total\n\nRounded once instead of per line."}}]') AS rows_changed;
SELECT commit_sha, service FROM engineering.changes WHERE source_id = 3 ORDER BY commit_sha;
