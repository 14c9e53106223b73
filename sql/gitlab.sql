-- GitLab connector: the SQL that maps GitLab's JSON to rows, plans a sync
-- and ingests pages, exercised with hand-written fixture payloads (no
-- network).  Shapes follow the REST API v4 (https://docs.gitlab.com/ee/api/rest/).
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY terse

--
-- configuration
--
SELECT engineering.add_source('bad', 'gitlab', NULL, '{}');
SELECT engineering.add_source('bad', 'gitlab', NULL, '{"project": "shop"}');
SELECT engineering.add_source('bad', 'gitlab', NULL, '{"project": "acme/../shop"}');
SELECT engineering.add_source('bad', 'gitlab', NULL, '{"project": "acme/shop?x=1"}');
SELECT engineering.add_source('bad', 'gitlab', NULL, '{"project": 4242}');
SELECT engineering.add_source('bad', 'gitlab', NULL, '{"project": "acme/shop", "lookback": "soon"}');
SELECT engineering.add_source('gl', 'gitlab', 'http://127.0.0.1:9/gitlab',
                              '{"project": "acme/platform/shop", "since": "2024-01-01"}') AS gl \gset
SELECT engineering.add_source('gl-id', 'gitlab', NULL, '{"project": 4242, "service": "billing", "since": "2024-02-01T00:00:00+01:00"}') AS gl_id \gset
SELECT name, base_url, engineering._gitlab_project_url(config) AS project_url,
       engineering._gitlab_service(config) AS service
FROM engineering.sources ORDER BY id;

--
-- status mapping
--
SELECT s, engineering._gitlab_pipeline_status(s, false) AS unfinished,
       engineering._gitlab_pipeline_status(s, true) AS finished,
       engineering._gitlab_deployment_status(s) AS deployment
FROM (VALUES ('success'), ('failed'), ('canceled'), ('canceling'), ('skipped'), ('running'), ('created'),
             ('waiting_for_resource'), ('preparing'), ('pending'), ('scheduled'), ('manual'), ('blocked'),
             ('brand_new_status'), (NULL)) AS t(s);

--
-- pipelines (the single-pipeline shape) -> pipeline_runs
--
SELECT engineering._gitlab_map_pipelines(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 47, "iid": 12, "project_id": 1, "status": "success", "source": "push", "ref": "main",
   "sha": "A91957A858320C0E17F3A0ECA7CFACBFF50EA29A", "name": null,
   "web_url": "https://gitlab.example.com/acme/platform/shop/-/pipelines/47",
   "created_at": "2024-05-01T10:00:00.085Z", "updated_at": "2024-05-01T10:06:00.169Z",
   "started_at": "2024-05-01T10:00:06.197Z", "finished_at": "2024-05-01T10:05:50.175Z",
   "duration": 334, "queued_duration": 6, "before_sha": "0000000000000000000000000000000000000000",
   "tag": false, "user": {"username": "root"}, "detailed_status": {"group": "success"}},
  {"id": 48, "status": "failed", "source": "merge_request_event", "ref": "refs/merge-requests/3/head",
   "sha": "b91957a858320c0e17f3a0eca7cfacbff50ea29a", "name": "Build pipeline",
   "created_at": "2024-05-01T12:00:00.000+02:00", "updated_at": "2024-05-01T12:11:00.000+02:00",
   "started_at": "2024-05-01T12:01:00.000+02:00", "finished_at": "2024-05-01T12:10:30.500+02:00", "duration": 569},
  {"id": 49, "status": "running", "source": "schedule", "ref": "main", "sha": "0000000000000000000000000000000000000000",
   "name": "Nächtlicher Lauf 🌙", "created_at": "2024-05-01T03:00:00+0200", "updated_at": "2024-05-01T03:00:09+0200",
   "started_at": "2024-05-01T03:00:09+0200", "finished_at": null, "duration": null},
  {"id": 50, "status": "canceled", "source": "web", "ref": "main", "sha": "not-a-sha",
   "created_at": "2024-05-01T04:00:00Z", "updated_at": "2024-05-01T04:30:00Z", "started_at": null, "finished_at": null},
  {"id": 51, "status": "manual", "source": "push", "ref": "main", "created_at": "2024-05-01T05:00:00Z",
   "updated_at": "2024-05-01T05:09:00Z", "started_at": "2024-05-01T05:00:30Z", "finished_at": null},
  {"id": 52, "status": "exploded", "source": "api", "ref": "main", "created_at": "2024-05-01T06:00:00Z",
   "updated_at": "2024-05-01T06:10:00Z", "started_at": "2024-05-01T06:00:10Z", "finished_at": "2024-05-01T06:09:00Z"},
  {"id": 53, "status": "exploded", "source": "api", "ref": "main", "created_at": "2024-05-01T07:00:00Z",
   "updated_at": "2024-05-01T07:00:00Z", "started_at": null, "finished_at": null},
  {"id": 54, "status": "success", "source": "push", "ref": "v1.0", "tag": true,
   "created_at": "2024-05-01T08:00:00Z", "updated_at": "2024-05-01T08:10:00Z",
   "started_at": "2024-05-01T07:59:00Z", "finished_at": null, "duration": 300},
  {"id": 47, "status": "success", "created_at": "2024-05-01T10:00:00.085Z"},
  42, {"status": "success"}, {"id": "x47"}, {"id": 55, "status": "pending"}
]$json$) AS rows_changed;
SELECT external_id, service, pipeline, branch, commit_sha, event, status, queued_at, started_at, finished_at,
       attempt, url, attributes->>'gitlab_status' AS gitlab_status, attributes->>'duration' AS duration
FROM engineering.pipeline_runs ORDER BY external_id::integer;

-- the same pipeline again changes nothing; a running pipeline that finished is updated
SELECT engineering._gitlab_map_pipelines(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 49, "status": "running", "source": "schedule", "ref": "main", "sha": "0000000000000000000000000000000000000000",
   "name": "Nächtlicher Lauf 🌙", "created_at": "2024-05-01T03:00:00+0200", "updated_at": "2024-05-01T03:00:09+0200",
   "started_at": "2024-05-01T03:00:09+0200", "finished_at": null, "duration": null}]$json$) AS unchanged;
SELECT engineering._gitlab_map_pipelines(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 49, "status": "success", "source": "schedule", "ref": "main", "sha": "c0ffee0000000000000000000000000000000000",
   "name": "Nächtlicher Lauf 🌙", "created_at": "2024-05-01T03:00:00+0200", "updated_at": "2024-05-01T03:20:01+0200",
   "started_at": "2024-05-01T03:00:09+0200", "finished_at": "2024-05-01T03:20:00+0200", "duration": 1191}]$json$) AS finished;
SELECT external_id, status, commit_sha, finished_at, attributes->>'updated_at' AS updated_at
FROM engineering.pipeline_runs WHERE external_id = '49';
-- service overrides apply; a page that is not an array, or a time without a zone, is refused whole
SELECT engineering._gitlab_map_pipelines(:gl_id, '{"project": 4242, "service": "billing"}',
    '[{"id": 60, "status": "pending", "created_at": "2024-05-02T00:00:00Z"}]') AS rows_changed;
SELECT external_id, service, pipeline, status FROM engineering.pipeline_runs WHERE source_id = :gl_id;
SELECT engineering._gitlab_map_pipelines(:gl, '{"project": "acme/platform/shop"}', '{"id": 61}');
SELECT engineering._gitlab_map_pipelines(:gl, '{"project": "acme/platform/shop"}',
    '[{"id": 61, "status": "pending", "created_at": "2024-05-02 00:00:00"}]');
SELECT count(*) AS runs FROM engineering.pipeline_runs;

--
-- deployments -> deployments, and the compare of each new success
--
SELECT engineering._gitlab_map_deployments(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 41, "iid": 1, "ref": "main", "sha": "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "success",
   "created_at": "2024-05-01T07:36:40.222Z", "updated_at": "2024-05-01T07:38:12.414Z",
   "environment": {"id": 9, "name": "production", "external_url": "https://shop.example.com"},
   "user": {"username": "root"},
   "deployable": {"id": 657, "name": "deploy", "status": "success", "created_at": "2024-05-01T07:36:27.357Z",
                  "started_at": null, "finished_at": "2024-05-01T07:38:10.851Z",
                  "pipeline": {"id": 36, "web_url": "https://gitlab.example.com/acme/platform/shop/-/pipelines/36"}}},
  {"id": 42, "iid": 2, "ref": "main", "sha": "2222222AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "status": "success",
   "created_at": "2024-05-02T11:00:00+02:00", "updated_at": "2024-05-02T11:09:00+02:00",
   "environment": {"id": 9, "name": "production"},
   "deployable": {"id": 664, "status": "success", "started_at": "2024-05-02T11:01:00+0200",
                  "finished_at": "2024-05-02T11:08:00+0200", "web_url": "https://gitlab.example.com/acme/platform/shop/-/jobs/664"}},
  {"id": 43, "iid": 3, "ref": "main", "sha": "3333333aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "failed",
   "created_at": "2024-05-03T09:00:00Z", "updated_at": "2024-05-03T09:05:00Z",
   "environment": {"id": 9, "name": "production"},
   "deployable": {"id": 670, "status": "failed", "started_at": "2024-05-03T09:00:30Z", "finished_at": "2024-05-03T09:04:00Z"}},
  {"id": 44, "iid": 4, "ref": "main", "sha": "4444444aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "running",
   "created_at": "2024-05-04T09:00:00Z", "updated_at": "2024-05-04T09:00:30Z",
   "environment": {"id": 10, "name": "staging ✨"},
   "deployable": {"id": 680, "status": "running", "started_at": "2024-05-04T09:00:30Z", "finished_at": null}},
  {"id": 45, "iid": 5, "ref": "main", "sha": "5555555aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "blocked",
   "created_at": "2024-05-05T09:00:00Z", "updated_at": "2024-05-05T09:00:00Z", "environment": null, "deployable": null},
  {"id": 46, "iid": 6, "ref": "main", "sha": "6666666aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "canceled",
   "created_at": "2024-05-06T09:00:00Z", "updated_at": "2024-05-06T09:02:00Z",
   "environment": {"name": "production"}, "deployable": {"id": 690, "status": "canceled", "started_at": null, "finished_at": null}},
  {"id": 47, "iid": 7, "ref": "main", "sha": "7777777aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "success",
   "created_at": "2024-05-07T09:00:00Z", "updated_at": "2024-05-07T09:03:00Z",
   "environment": {"name": "production"}, "deployable": null},
  {"id": 48, "status": "time_travelled", "created_at": "2024-05-08T09:00:00Z", "updated_at": "2024-05-08T09:00:00Z",
   "environment": {"name": "production"}},
  {"id": "x"}, 7
]$json$) AS rows_changed;
SELECT external_id, service, environment, commit_sha, started_at, finished_at, status, url,
       attributes->>'gitlab_status' AS gitlab_status, attributes->>'compare_base' AS compare_base
FROM engineering.deployments WHERE source_id = :gl ORDER BY external_id;
-- 41 is the first success of production: no compare; 42 after 41; 47 after 42 (43 failed)
SELECT stream, url, payload - 'deployment_id' AS payload,
       (SELECT external_id FROM engineering.deployments d WHERE d.id = (t.payload->>'deployment_id')::bigint) AS deployment
FROM engineering.sync_tasks t ORDER BY id;
DELETE FROM engineering.sync_tasks;

-- a success that finished between two known ones arrives late: it is
-- compared with 42, and 47 is now compared with it
SELECT engineering._gitlab_map_deployments(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 49, "iid": 8, "ref": "main", "sha": "9999999aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "success",
   "created_at": "2024-05-06T10:00:00Z", "updated_at": "2024-05-09T00:00:00Z",
   "environment": {"name": "production"},
   "deployable": {"id": 700, "status": "success", "started_at": "2024-05-06T10:00:00Z", "finished_at": "2024-05-06T10:05:00Z"}}
]$json$) AS rows_changed;
SELECT stream, url, (SELECT external_id FROM engineering.deployments d WHERE d.id = (t.payload->>'deployment_id')::bigint) AS deployment
FROM engineering.sync_tasks t ORDER BY id;
-- the running deployment finishes: it is the first success of staging
SELECT engineering._gitlab_map_deployments(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 44, "iid": 4, "ref": "main", "sha": "4444444aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "success",
   "created_at": "2024-05-04T09:00:00Z", "updated_at": "2024-05-04T09:07:00Z",
   "environment": {"id": 10, "name": "staging ✨"},
   "deployable": {"id": 680, "status": "success", "started_at": "2024-05-04T09:00:30Z", "finished_at": "2024-05-04T09:06:59Z"}}
]$json$) AS rows_changed;
SELECT external_id, environment, status, finished_at, attributes->>'compare_base' AS compare_base,
       attributes ? 'compare_base' AS decided
FROM engineering.deployments WHERE external_id = '44';
SELECT count(*) AS tasks FROM engineering.sync_tasks;
DELETE FROM engineering.sync_tasks;

--
-- merge requests: merged ones only
--
SELECT engineering._gitlab_map_merge_requests(:gl, '{"project": "acme/platform/shop"}', $json$[
  {"id": 9011, "iid": 11, "title": "Add a cart ✓", "state": "merged", "author": {"username": "mona"},
   "created_at": "2024-05-01T08:00:00.000Z", "updated_at": "2024-05-02T10:00:00.000Z",
   "merged_at": "2024-05-02T09:00:00.520Z", "merge_commit_sha": "EEEEEEE000000000000000000000000000000000",
   "squash_commit_sha": null, "sha": "eeeeeee111111111111111111111111111111111",
   "target_branch": "main", "source_branch": "cart", "merge_user": {"username": "maintainer"},
   "web_url": "https://gitlab.example.com/acme/platform/shop/-/merge_requests/11"},
  {"iid": 12, "title": "Squashed", "state": "merged", "author": {"username": "hubot"},
   "created_at": "2024-05-01T10:00:00+02:00", "updated_at": "2024-05-01T12:00:00+02:00",
   "merged_at": "2024-05-01T11:30:00+0200", "merge_commit_sha": null,
   "squash_commit_sha": "5a5a5a5000000000000000000000000000000000", "sha": "ccccccc222222222222222222222222222222222"},
  {"iid": 13, "title": "Fast-forward", "state": "merged", "created_at": "2024-05-01T08:00:00Z",
   "updated_at": "2024-05-01T09:00:00Z", "merged_at": "2024-05-01T09:00:00Z",
   "merge_commit_sha": null, "squash_commit_sha": null, "sha": "ddddddd333333333333333333333333333333333"},
  {"iid": 14, "title": "Merged long ago, no merged_at", "state": "merged", "created_at": "2019-05-01T08:00:00Z",
   "updated_at": "2019-05-03T09:00:00Z", "merged_at": null},
  {"iid": 15, "title": "Still open", "state": "opened", "created_at": "2024-05-01T08:00:00Z",
   "updated_at": "2024-05-01T09:00:00Z", "merged_at": null},
  {"iid": 16, "title": "Merged before opened (clock skew)", "state": "merged", "author": null,
   "created_at": "2024-05-01T08:00:00Z", "merged_at": "2024-05-01T07:59:00Z", "merge_commit_sha": "zzz"},
  {"iid": 0, "title": "bad iid", "state": "merged", "created_at": "2024-05-01T08:00:00Z", "merged_at": "2024-05-01T09:00:00Z"},
  {"iid": 17, "title": "no created_at", "state": "merged", "merged_at": "2024-05-01T09:00:00Z"}
]$json$) AS rows_changed;
SELECT number, external_id, service, title, author, opened_at, merged_at, merge_commit_sha,
       attributes->>'merged_by' AS merged_by, attributes->>'merged_at_estimated' AS estimated
FROM engineering.pull_requests ORDER BY number;
-- first_commit_at: the earliest author date, over pages
SELECT engineering._gitlab_map_mr_commits(:gl, 11, $json$[
  {"id": "e1", "authored_date": "2024-05-01T09:00:00+02:00", "committed_date": "2024-05-01T09:30:00Z"},
  {"id": "e2", "authored_date": null, "committed_date": "2024-04-30T23:00:00Z"}
]$json$) AS updated;
SELECT engineering._gitlab_map_mr_commits(:gl, 11, '[{"id": "e3", "authored_date": "2024-04-30T22:00:00.250Z"}]') AS updated;
SELECT engineering._gitlab_map_mr_commits(:gl, 11, '[]') AS nothing_to_update;
SELECT number, first_commit_at, attributes->>'commits_fetched' AS fetched FROM engineering.pull_requests WHERE number = 11;

--
-- ingest: the connector interface, fed with tasks and responses
--
CREATE FUNCTION pg_temp.ingest(source_name text, stream text, url text, payload jsonb, headers jsonb, body jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    t engineering.sync_tasks;
    n bigint;
BEGIN
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT id, stream, url, payload FROM engineering.sources WHERE name = source_name RETURNING * INTO t;
    SELECT engineering._gitlab_ingest(s, t, 200, headers, body) INTO n
    FROM engineering.sources s WHERE s.name = source_name;
    DELETE FROM engineering.sync_tasks WHERE id = t.id;
    RETURN n;
END $$;

-- a page of pipelines: details are queued for what changed (47 is stored
-- with this updated_at, 48 is not), then the page after the newest update
SELECT pg_temp.ingest('gl', 'pipelines', '/x', '{"after": "2024-05-01T00:00:00.000Z", "page": 1}',
    '{"x-next-page": "2", "x-page": "1", "x-per-page": "100"}',
    $json$[{"id": 47, "status": "success", "created_at": "2024-05-01T10:00:00.085Z", "updated_at": "2024-05-01T10:06:00.169Z"},
           {"id": 48, "status": "failed", "created_at": "2024-05-01T12:00:00.000+02:00", "updated_at": "2024-05-01T12:15:00.000+02:00"},
           {"id": 56, "status": "pending", "created_at": "2024-05-01T11:00:00Z", "updated_at": "2024-05-01T11:00:00.250Z"}]$json$) AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
SELECT cursor FROM engineering.sources WHERE name = 'gl';
DELETE FROM engineering.sync_tasks;
-- a full page updated within one millisecond: the next request moves by offset
SELECT pg_temp.ingest('gl', 'pipelines', '/x', '{"after": "2024-05-01T10:59:59.999Z", "page": 3}',
    '{"x-next-page": "4"}',
    $json$[{"id": 57, "status": "pending", "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T11:00:00.000Z"}]$json$) AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks WHERE stream = 'pipelines';
DELETE FROM engineering.sync_tasks;
-- the last page (x-next-page empty) queues no next page; an older page keeps the watermark
SELECT pg_temp.ingest('gl', 'pipelines', '/x', '{"after": "2024-04-01T00:00:00.000Z", "page": 1}',
    '{"x-next-page": "", "x-total": "1"}',
    '[{"id": 58, "status": "success", "created_at": "2024-04-01T00:00:00Z", "updated_at": "2024-04-02T00:00:00Z"}]') AS rows_changed;
SELECT stream, url FROM engineering.sync_tasks ORDER BY id;
SELECT cursor->>'pipelines_updated' AS watermark_kept FROM engineering.sources WHERE name = 'gl';
DELETE FROM engineering.sync_tasks;
-- without x-next-page (a proxy dropped it), Link rel="next" says there is more
SELECT pg_temp.ingest('gl', 'pipelines', '/x', '{"after": "2024-04-01T00:00:00.000Z", "page": 1}',
    '{"link": "<http://127.0.0.1:9/gitlab/projects/1/pipelines?page=2>; rel=\"next\""}',
    '[{"id": 58, "status": "success", "created_at": "2024-04-01T00:00:00Z", "updated_at": "2024-04-02T00:00:00Z"}]') AS rows_changed;
SELECT stream, url FROM engineering.sync_tasks WHERE stream = 'pipelines';
DELETE FROM engineering.sync_tasks;
-- an empty page ends the stream without touching the watermark
SELECT pg_temp.ingest('gl', 'deployments', '/x', '{"after": "2024-05-01T00:00:00.000Z", "page": 1}',
    '{"x-next-page": ""}', '[]') AS rows_changed;
SELECT cursor FROM engineering.sources WHERE name = 'gl';

-- the pipeline detail maps it; a deleted pipeline (404) is deleted here too
SELECT pg_temp.ingest('gl', 'pipeline', '/projects/acme%2Fplatform%2Fshop/pipelines/56', '{"missing_ok": true}', '{}',
    '{"id": 56, "status": "pending", "ref": "main", "created_at": "2024-05-01T11:00:00Z", "updated_at": "2024-05-01T11:00:00.250Z"}') AS rows_changed;
SELECT external_id, status, queued_at, started_at, attributes->>'updated_at' AS updated_at
FROM engineering.pipeline_runs WHERE external_id = '56';
SELECT pg_temp.ingest('gl', 'pipeline', '/projects/acme%2Fplatform%2Fshop/pipelines/56', '{"missing_ok": true}', '{}', NULL) AS deleted;
SELECT count(*) AS pipeline_56 FROM engineering.pipeline_runs WHERE external_id = '56';
SELECT pg_temp.ingest('gl', 'pipeline', '/x', '{}', '{}', '[{"id": 56}]');

-- deployments before the backfill start are skipped
SELECT pg_temp.ingest('gl', 'deployments', '/x', '{"after": "2023-01-01T00:00:00.000Z", "page": 1}', '{"x-next-page": ""}',
    $json$[{"id": 30, "status": "success", "sha": "3000000", "created_at": "2023-12-31T23:59:59Z", "updated_at": "2024-01-02T00:00:00Z",
            "environment": {"name": "production"}, "deployable": {"finished_at": "2024-01-01T00:00:00Z"}},
           {"id": 31, "status": "running", "sha": "3100000", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-03T00:00:00Z",
            "environment": {"name": "production"}}]$json$) AS rows_changed;
SELECT external_id, status FROM engineering.deployments WHERE external_id IN ('30', '31') ORDER BY 1;

-- merged merge requests: mapped, with their commits queued once
SELECT pg_temp.ingest('gl', 'merge_requests', '/x', '{"after": "2024-01-01T00:00:00.000Z", "page": 1}', '{"x-next-page": ""}',
    $json$[{"iid": 21, "title": "New", "state": "merged", "created_at": "2024-05-09T00:00:00Z",
            "updated_at": "2024-05-10T00:00:00Z", "merged_at": "2024-05-09T12:00:00Z"},
           {"iid": 11, "title": "Add a cart ✓", "state": "merged", "author": {"username": "mona"},
            "created_at": "2024-05-01T08:00:00.000Z", "updated_at": "2024-05-02T10:00:00.000Z",
            "merged_at": "2024-05-02T09:00:00.520Z", "merge_commit_sha": "EEEEEEE000000000000000000000000000000000"},
           {"iid": 9, "title": "Before the backfill", "state": "merged", "created_at": "2023-12-01T00:00:00Z",
            "updated_at": "2024-01-02T00:00:00Z", "merged_at": "2023-12-02T00:00:00Z"}]$json$) AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
SELECT count(*) AS mr_9 FROM engineering.pull_requests WHERE number = 9;
DELETE FROM engineering.sync_tasks;
-- commits over several pages: x-next-page queues the next one
SELECT pg_temp.ingest('gl', 'mr_commits', '/x', '{"iid": 21, "missing_ok": true}', '{"x-next-page": "2"}',
    '[{"id": "f1", "authored_date": "2024-05-08T10:00:00Z"}]') AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('gl', 'mr_commits', '/x', '{"iid": 21, "missing_ok": true}', '{"x-next-page": ""}',
    '[{"id": "f0", "authored_date": "2024-05-07T10:00:00+02:00"}]') AS rows_changed;
SELECT number, first_commit_at FROM engineering.pull_requests WHERE number = 21;
SELECT count(*) AS tasks FROM engineering.sync_tasks;

-- a compare links the commits it lists to the deployment
SELECT pg_temp.ingest('gl', 'compare', '/x',
    jsonb_build_object('deployment_id', (SELECT id FROM engineering.deployments WHERE source_id = :gl AND external_id = '42'),
                       'base', '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'missing_ok', true), '{}',
    $json$ {"commit": null, "compare_timeout": false, "commits": [
      {"id": "1a1a1a1000000000000000000000000000000000", "title": "Fix the checkout total", "message": "Fix the checkout total\n\nRounded once.",
       "author_name": "Mona", "authored_date": "2024-05-01T08:00:00+02:00", "committed_date": "2024-05-01T09:00:00+02:00"},
      {"id": "2222222AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "title": "", "message": "Ünïcödé title\nbody",
       "author_name": "Zoë", "authored_date": "2024-05-02T07:00:00Z", "committed_date": null, "created_at": "2024-05-02T07:30:00Z"},
      {"id": "no-sha", "title": "skipped"}]} $json$) AS rows_changed;
SELECT d.external_id AS deployment, c.commit_sha, c.service, c.authored_at, c.committed_at, c.author, c.title
FROM engineering.deployment_changes dc
JOIN engineering.deployments d ON d.id = dc.deployment_id
JOIN engineering.changes c ON c.id = dc.change_id
ORDER BY c.committed_at;
-- a compare superseded by a newer decision, or gone (404), is ignored
SELECT pg_temp.ingest('gl', 'compare', '/x',
    jsonb_build_object('deployment_id', (SELECT id FROM engineering.deployments WHERE source_id = :gl AND external_id = '47'),
                       'base', '2222222aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'), '{}',
    '{"commits": [{"id": "fffffff", "committed_date": "2024-05-01T00:00:00Z"}]}') AS stale_compare;
SELECT pg_temp.ingest('gl', 'compare', '/x', '{"deployment_id": 1, "base": "x", "missing_ok": true}', '{}', NULL) AS gone;
SELECT count(*) AS change_fffffff FROM engineering.changes WHERE commit_sha = 'fffffff';
SELECT pg_temp.ingest('gl', 'deployments', '/x', '{"after": "2024-05-01T00:00:00.000Z"}', '{}', '{"message": "404 Project Not Found"}');
SELECT pg_temp.ingest('gl', 'mystery', '/x', '{}', '{}', '{}');

--
-- plan: the first requests of a sync, from the watermarks
--
DELETE FROM engineering.sync_tasks;
UPDATE engineering.sources SET cursor = '{}' WHERE name = 'gl';
SELECT engineering._gitlab_plan(s) FROM engineering.sources s WHERE name = 'gl';
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
-- later: a few minutes before each watermark (lookback), never before since
UPDATE engineering.sources
SET cursor = '{"pipelines_updated": "2024-06-01T12:00:00.500Z", "deployments_updated": "2023-12-31T23:59:00.000Z"}',
    config = config || '{"lookback": "10 minutes"}'
WHERE name = 'gl';
SELECT engineering._gitlab_plan(s) FROM engineering.sources s WHERE name = 'gl';
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
-- a numeric project id is used as it is
SELECT engineering._gitlab_plan(s) FROM engineering.sources s WHERE name = 'gl-id';
SELECT stream, url FROM engineering.sync_tasks WHERE stream = 'deployments';
DELETE FROM engineering.sync_tasks;

-- every mapped row passed the event tables' constraints; the source can be purged
SELECT engineering.remove_source('gl', purge => true);
SELECT (SELECT count(*) FROM engineering.pipeline_runs WHERE source_id = :gl) AS runs,
       (SELECT count(*) FROM engineering.deployments WHERE source_id = :gl) AS deployments,
       (SELECT count(*) FROM engineering.changes WHERE source_id = :gl) AS changes;
