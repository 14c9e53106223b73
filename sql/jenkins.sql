-- Jenkins connector: the SQL that maps Jenkins' JSON to rows, plans a sync
-- and ingests pages, exercised with hand-written fixture payloads (no
-- network).  Shapes follow the remote access API
-- (https://www.jenkins.io/doc/book/using/remote-access-api/).
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY terse

--
-- configuration
--
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{}');
SELECT engineering.add_source('bad', 'jenkins', NULL, '{"job": "shop/build"}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"job": 7}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"jobs": "shop/build"}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"jobs": ["shop/build", 3]}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"job": "/shop/build"}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"jobs": ["shop//build"]}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"job": "shop/../admin"}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"job": "shop", "user": ""}');
SELECT engineering.add_source('bad', 'jenkins', 'http://127.0.0.1:9/jenkins', '{"job": "shop", "deployment_jobs": "(["}');
SELECT engineering.add_source('jk', 'jenkins', 'http://127.0.0.1:9/jenkins/', $json$
    {"job": "shop/build", "jobs": ["shop/deploy-prod", "shop/build", "web"], "user": "ci-bot",
     "deployment_jobs": "(^|/)deploy", "environment_parameter": "ENVIRONMENT",
     "service_map": {"web": "storefront"}, "since": "2022-01-01"}$json$) AS jk \gset
SELECT name, base_url, engineering._jenkins_jobs(config) AS jobs FROM engineering.sources;

-- URLs: each folder level is /job/<name>/, names URL-encoded once
SELECT p, engineering._jenkins_job_url(p)
FROM (VALUES ('shop/build'), ('Équipe A/déploiement 🚀'), ('web/feature%2Flogin'), ('single')) AS t(p);
SELECT engineering._jenkins_builds_url('shop/build', 200);
-- services: service_map of the job or of the configured path, else service, else the configured job's name
SELECT root, path, engineering._jenkins_service(config, root, path)
FROM (VALUES ('{}'::jsonb, 'shop/build', 'shop/build'),
             ('{"service_map": {"web": "storefront"}}', 'web', 'web/main'),
             ('{"service_map": {"web/main": "home"}, "service": "web"}', 'web', 'web/main'),
             ('{"service": "checkout"}', 'shop/build', 'shop/build')) AS t(config, root, path);

--
-- status, trigger and branch names
--
SELECT r, b, engineering._jenkins_run_status(r, b)
FROM (VALUES ('SUCCESS', false), ('FAILURE', false), ('UNSTABLE', false), ('ABORTED', false),
             ('NOT_BUILT', false), ('BRAND_NEW', false), (NULL, false), (NULL, true),
             ('SUCCESS', true), ('FAILURE', NULL)) AS t(r, b);
SELECT c, engineering._jenkins_event(jsonb_build_array(jsonb_build_object('_class', c)))
FROM (VALUES ('hudson.model.Cause$UserIdCause'), ('hudson.triggers.SCMTrigger$SCMTriggerCause'),
             ('hudson.triggers.TimerTrigger$TimerTriggerCause'), ('hudson.model.Cause$UpstreamCause'),
             ('hudson.model.Cause$RemoteCause'), ('jenkins.branch.BranchIndexingCause'),
             ('jenkins.branch.BranchEventCause'), ('com.cloudbees.jenkins.GitHubPushCause'),
             ('org.jenkinsci.plugins.workflow.cps.replay.ReplayCause'), ('com.example.SomethingNewCause')) AS t(c);
SELECT engineering._jenkins_event('[]') AS no_cause, engineering._jenkins_event(NULL) AS null_cause;
SELECT n, engineering._jenkins_unescape(n)
FROM (VALUES ('feature%2Flogin'), ('PR-12'), ('release%2F1.x%20%E2%9C%93'), ('100%'), ('bad%FF'), ('ctl%0Aend%7f'), ('%2f%2F')) AS t(n);

--
-- builds -> pipeline_runs
--
SELECT engineering._jenkins_map_builds(:jk, '{"job": "shop/build"}', 'shop/build', 'shop/build', $json$[
  {"_class": "hudson.model.FreeStyleBuild", "number": 31, "result": "SUCCESS", "building": false,
   "timestamp": 1650024049161, "duration": 1587, "queueId": 1031,
   "url": "https://ci.example.com/job/shop/job/build/31/",
   "actions": [
     {"_class": "hudson.model.CauseAction", "causes": [{"_class": "hudson.model.Cause$UserIdCause", "userId": "merico"}]},
     {"_class": "hudson.plugins.git.util.BuildData",
      "lastBuiltRevision": {"SHA1": "0F886C74949C3EE7E489188911C7DC0C1D547418", "branch": [{"name": "refs/remotes/origin/main"}]},
      "remoteUrls": ["https://github.com/merico-dev/lake.git"]}, {},
     {"_class": "jenkins.metrics.impl.TimeInQueueAction", "queuingDurationMillis": 2500}]},
  {"number": 32, "result": "UNSTABLE", "building": false, "timestamp": 1650027600000, "duration": 61000,
   "actions": [{"_class": "hudson.plugins.git.util.BuildData",
                "lastBuiltRevision": {"SHA1": "1f886c74949c3ee7e489188911c7dc0c1d547418", "branch": [{"name": "origin/release/1.x"}]}}]},
  {"number": 33, "result": null, "building": true, "timestamp": 1650031200000, "duration": 0, "actions": []},
  {"number": 34, "result": "SUCCESS", "building": true, "timestamp": 1650034800000, "duration": 0},
  {"number": 35, "result": "ABORTED", "building": false, "timestamp": 1650038400000, "duration": 5000, "actions": null},
  {"number": 36, "result": "NOT_BUILT", "building": false, "timestamp": 1650042000000, "duration": 0},
  {"number": 37, "result": "WEIRD", "building": false, "timestamp": 1650045600000, "duration": 125,
   "actions": [{"_class": "hudson.model.CauseAction", "causes": [{"_class": "hudson.triggers.TimerTrigger$TimerTriggerCause"}]},
               {"_class": "hudson.plugins.git.util.BuildData", "remoteUrls": ["https://git.example.com/ci/shared-library.git"],
                "lastBuiltRevision": {"SHA1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "branch": [{"name": "master"}]}},
               {"_class": "hudson.plugins.git.util.BuildData", "remoteUrls": ["https://git.example.com/acme/shop.git"],
                "lastBuiltRevision": {"SHA1": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "branch": [{"name": "refs/heads/main"}]}}]},
  {"number": 38, "result": "SUCCESS", "timestamp": "2022-04-15T12:00:00Z", "duration": 10},
  {"number": "abc", "result": "SUCCESS", "timestamp": 1650045600000},
  {"number": 31, "result": "FAILURE", "building": false, "timestamp": 1650024049161, "duration": 1},
  "not a build"
]$json$) AS rows_changed;
SELECT external_id, service, pipeline, branch, commit_sha, event, status, queued_at, started_at, finished_at,
       attributes->>'jenkins_result' AS result, attributes->>'duration_ms' AS duration_ms
FROM engineering.pipeline_runs ORDER BY started_at;
-- repository_url picks the checkout of the right repository
SELECT engineering._jenkins_map_builds(:jk, '{"job": "shop/build", "repository_url": "shared-library"}', 'shop/build', 'shop/build', $json$[
  {"number": 37, "result": "WEIRD", "building": false, "timestamp": 1650045600000, "duration": 125,
   "actions": [{"_class": "hudson.model.CauseAction", "causes": [{"_class": "hudson.triggers.TimerTrigger$TimerTriggerCause"}]},
               {"_class": "hudson.plugins.git.util.BuildData", "remoteUrls": ["https://git.example.com/ci/shared-library.git"],
                "lastBuiltRevision": {"SHA1": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "branch": [{"name": "master"}]}},
               {"_class": "hudson.plugins.git.util.BuildData", "remoteUrls": ["https://git.example.com/acme/shop.git"],
                "lastBuiltRevision": {"SHA1": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "branch": [{"name": "refs/heads/main"}]}}]}
]$json$) AS rows_changed;
SELECT external_id, branch, commit_sha FROM engineering.pipeline_runs WHERE external_id = 'shop/build#37';
-- the same build again changes nothing; the running build finishes
SELECT engineering._jenkins_map_builds(:jk, '{"job": "shop/build"}', 'shop/build', 'shop/build',
    '[{"number": 33, "result": null, "building": true, "timestamp": 1650031200000, "duration": 0, "actions": []}]') AS unchanged;
SELECT engineering._jenkins_map_builds(:jk, '{"job": "shop/build"}', 'shop/build', 'shop/build',
    '[{"number": 33, "result": "FAILURE", "building": false, "timestamp": 1650031200000, "duration": 3723456, "actions": []}]') AS finished;
SELECT external_id, status, started_at, finished_at FROM engineering.pipeline_runs WHERE external_id = 'shop/build#33';
-- a unicode job name, a multibranch branch, a page that is not an array
SELECT engineering._jenkins_map_builds(:jk, '{"service": "web"}', 'web', 'web/feature%2Flogin',
    '[{"number": 1, "result": "SUCCESS", "building": false, "timestamp": 1700000000000, "duration": 60000,
       "actions": [{"lastBuiltRevision": {"SHA1": "cccccccccccccccccccccccccccccccccccccccc", "branch": [{"name": "feature/login"}]}}]}]',
    'feature/login') AS rows_changed;
SELECT engineering._jenkins_map_builds(:jk, '{}', 'Équipe A/déploiement 🚀', 'Équipe A/déploiement 🚀',
    '[{"number": 7, "result": "SUCCESS", "building": false, "timestamp": 1700000000000, "duration": 1}]') AS rows_changed;
SELECT external_id, service, pipeline, branch, status, attributes->>'branch_hint' AS branch_hint
FROM engineering.pipeline_runs WHERE started_at = '2023-11-14 22:13:20+00' ORDER BY external_id;
SELECT engineering._jenkins_map_builds(:jk, '{}', 'x', 'x', '{"allBuilds": []}');
SELECT count(*) AS runs FROM engineering.pipeline_runs;

--
-- builds of deployment jobs -> deployments too
--
SELECT engineering._jenkins_map_builds(:jk,
    '{"deployment_jobs": "(^|/)deploy", "environment_parameter": "ENVIRONMENT", "deployment_environment": "prod"}',
    'shop/deploy-prod', 'shop/deploy-prod', $json$[
  {"number": 5, "result": "SUCCESS", "building": false, "timestamp": 1650024049161, "duration": 90000,
   "url": "https://ci.example.com/job/shop/job/deploy-prod/5/",
   "actions": [{"_class": "hudson.model.ParametersAction",
                "parameters": [{"name": "VERSION", "value": "1.2.3"}, {"name": "ENVIRONMENT", "value": "staging"}]},
               {"lastBuiltRevision": {"SHA1": "dddddddddddddddddddddddddddddddddddddddd", "branch": [{"name": "origin/main"}]}}]},
  {"number": 6, "result": "FAILURE", "building": false, "timestamp": 1650027600000, "duration": 30000, "actions": []},
  {"number": 7, "result": "ABORTED", "building": false, "timestamp": 1650031200000, "duration": 1000},
  {"number": 8, "result": null, "building": true, "timestamp": 1650034800000, "duration": 0,
   "actions": [{"parameters": [{"name": "ENVIRONMENT", "value": ""}]}]},
  {"number": 9, "result": "NOT_BUILT", "building": false, "timestamp": 1650038400000, "duration": 0}
]$json$) AS rows_changed;
SELECT external_id, service, environment, commit_sha, started_at, finished_at, status, url
FROM engineering.deployments ORDER BY started_at;
SELECT external_id, status FROM engineering.pipeline_runs WHERE pipeline = 'shop/deploy-prod' ORDER BY started_at;

--
-- ingest: the connector interface, fed with tasks and responses
--
CREATE FUNCTION pg_temp.ingest(source_name text, stream text, url text, payload jsonb, body jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    t engineering.sync_tasks;
    n bigint;
BEGIN
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT id, stream, url, payload FROM engineering.sources WHERE name = source_name RETURNING * INTO t;
    SELECT engineering._jenkins_ingest(s, t, 200, '{"x-jenkins": "2.452.3"}', body) INTO n
    FROM engineering.sources s WHERE s.name = source_name;
    DELETE FROM engineering.sync_tasks WHERE id = t.id;
    RETURN n;
END $$;
DELETE FROM engineering.pipeline_runs;
DELETE FROM engineering.deployments;

-- a full page of 100 builds above the floor: the next range is queued
SELECT pg_temp.ingest('jk', 'builds', '/x',
    '{"path": "shop/build", "root": "shop/build", "first": 0, "depth": 0, "floor": 1699990000000}',
    jsonb_build_object('_class', 'hudson.model.FreeStyleProject', 'fullName', 'shop/build', 'allBuilds',
        (SELECT jsonb_agg(jsonb_build_object('number', 300 - i, 'timestamp', 1700000000000 - i * 60000::bigint,
                                             'result', 'SUCCESS', 'building', false, 'duration', 1000) ORDER BY i)
         FROM generate_series(0, 99) i))) AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
SELECT cursor FROM engineering.sources WHERE name = 'jk';
DELETE FROM engineering.sync_tasks;
-- the next page reaches the floor: builds below it are left out, the scan
-- ends and the job's watermark becomes the newest build of the scan
SELECT pg_temp.ingest('jk', 'builds', '/x',
    '{"path": "shop/build", "root": "shop/build", "first": 100, "depth": 0, "floor": 1699990000000,
      "newest": 1700000000000, "newest_number": 300}',
    jsonb_build_object('allBuilds',
        (SELECT jsonb_agg(jsonb_build_object('number', 300 - i, 'timestamp', 1700000000000 - i * 60000::bigint,
                                             'result', 'SUCCESS', 'building', false, 'duration', 1000) ORDER BY i)
         FROM generate_series(100, 199) i))) AS rows_changed;
SELECT count(*) AS builds, min(started_at), max(started_at) FROM engineering.pipeline_runs;
SELECT count(*) AS tasks FROM engineering.sync_tasks;
SELECT cursor FROM engineering.sources WHERE name = 'jk';
-- an older scan does not move the watermark back
SELECT pg_temp.ingest('jk', 'builds', '/x',
    '{"path": "shop/build", "root": "shop/build", "first": 0, "depth": 0, "floor": 0}',
    '{"allBuilds": [{"number": 1, "timestamp": 1600000000000, "result": "SUCCESS", "building": false, "duration": 5}]}') AS rows_changed;
SELECT cursor->'jobs'->'shop/build' AS watermark FROM engineering.sources WHERE name = 'jk';

-- a folder: its jobs are queued, each from its own watermark
SELECT pg_temp.ingest('jk', 'builds', '/x',
    '{"path": "shop", "root": "shop", "first": 0, "depth": 0, "floor": 1640995200000}',
    '{"_class": "com.cloudbees.hudson.plugins.folder.Folder", "fullName": "shop",
      "jobs": [{"_class": "hudson.model.FreeStyleProject", "name": "build"},
               {"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob", "name": "deploy-prod"},
               {"name": ".."}, {"name": 5}]}') AS rows_changed;
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
-- a multibranch project: branch jobs carry their branch name
SELECT pg_temp.ingest('jk', 'builds', '/x',
    '{"path": "web", "root": "web", "first": 0, "depth": 0, "floor": 1640995200000}',
    '{"_class": "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject",
      "jobs": [{"name": "feature%2Flogin"}, {"name": "main"}]}') AS rows_changed;
SELECT payload->>'path' AS path, payload->>'branch' AS branch, payload->>'depth' AS depth FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;
SELECT pg_temp.ingest('jk', 'builds', '/x', '{"path": "deep", "root": "a", "depth": 5, "floor": 0}', '{"jobs": [{"name": "x"}]}');
SELECT pg_temp.ingest('jk', 'builds', '/x', '{"path": "view", "root": "view", "depth": 0, "floor": 0}', '{"_class": "hudson.model.ListView"}');
SELECT pg_temp.ingest('jk', 'builds', '/x', '{"path": "x", "root": "x", "depth": 0, "floor": 0}', '[]');

-- a running build fetched by number finishes; one the retention policy removed is given up
SELECT pg_temp.ingest('jk', 'builds', '/x', '{"path": "shop/build", "root": "shop/build", "first": 0, "depth": 0, "floor": 1700000000000}',
    '{"allBuilds": [{"number": 301, "timestamp": 1700000100000, "result": null, "building": true, "duration": 0},
                    {"number": 302, "timestamp": 1700000200000, "result": null, "building": true, "duration": 0}]}') AS rows_changed;
SELECT pg_temp.ingest('jk', 'build', '/job/shop/job/build/301/api/json',
    '{"path": "shop/build", "root": "shop/build", "number": 301, "missing_ok": true}',
    '{"number": 301, "timestamp": 1700000100000, "result": "SUCCESS", "building": false, "duration": 42000}') AS rows_changed;
SELECT pg_temp.ingest('jk', 'build', '/job/shop/job/build/302/api/json',
    '{"path": "shop/build", "root": "shop/build", "number": 302, "missing_ok": true}', NULL) AS gone;
SELECT external_id, status, finished_at, attributes->>'jenkins_missing' AS missing
FROM engineering.pipeline_runs WHERE external_id IN ('shop/build#301', 'shop/build#302') ORDER BY 1;
-- a running deployment given up is marked missing on both rows; when the
-- build turns up again (restored from a backup), the mark goes from both
SELECT pg_temp.ingest('jk', 'build', '/job/shop/job/deploy-prod/8/api/json',
    '{"path": "shop/deploy-prod", "root": "shop/deploy-prod", "number": 8, "missing_ok": true}',
    '{"number": 8, "timestamp": 1650034800000, "result": null, "building": true, "duration": 0}') AS rows_changed;
SELECT pg_temp.ingest('jk', 'build', '/job/shop/job/deploy-prod/8/api/json',
    '{"path": "shop/deploy-prod", "root": "shop/deploy-prod", "number": 8, "missing_ok": true}', NULL) AS gone;
SELECT 'run' AS row, status, attributes->>'jenkins_missing' AS missing
FROM engineering.pipeline_runs WHERE external_id = 'shop/deploy-prod#8'
UNION ALL
SELECT 'deployment', status, attributes->>'jenkins_missing'
FROM engineering.deployments WHERE external_id = 'shop/deploy-prod#8';
SELECT pg_temp.ingest('jk', 'build', '/job/shop/job/deploy-prod/8/api/json',
    '{"path": "shop/deploy-prod", "root": "shop/deploy-prod", "number": 8, "missing_ok": true}',
    '{"number": 8, "timestamp": 1650034800000, "result": "SUCCESS", "building": false, "duration": 60000}') AS rows_changed;
SELECT 'run' AS row, status, finished_at, attributes->>'jenkins_missing' AS missing
FROM engineering.pipeline_runs WHERE external_id = 'shop/deploy-prod#8'
UNION ALL
SELECT 'deployment', status, finished_at, attributes->>'jenkins_missing'
FROM engineering.deployments WHERE external_id = 'shop/deploy-prod#8';
SELECT pg_temp.ingest('jk', 'build', '/x', '{"path": "shop/build", "root": "shop/build", "number": 1}', '[1]');
SELECT pg_temp.ingest('jk', 'mystery', '/x', '{}', '{}');

--
-- plan: the builds still running when last seen (by number), then the
-- first page of every configured job, from its watermark
--
DELETE FROM engineering.sync_tasks;
SELECT cursor FROM engineering.sources WHERE name = 'jk';
INSERT INTO engineering.pipeline_runs (source_id, external_id, service, pipeline, status, started_at, attributes)
VALUES (:jk, 'web/main#9', 'storefront', 'web/main', 'running', '2023-11-14 22:00:00+00',
        '{"job": "web/main", "root": "web", "number": 9}'),
       (:jk, 'shop/build#303', 'shop', 'shop/build', 'running', '2023-11-14 22:20:00+00',
        '{"job": "shop/build", "root": "shop/build", "number": 303}'),
       (:jk, 'old/job#1', 'old', 'old/job', 'running', '2023-11-14 22:00:00+00',
        '{"job": "old/job", "root": "old/job", "number": 1}');
SELECT engineering._jenkins_plan(s) FROM engineering.sources s WHERE name = 'jk';
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;
DELETE FROM engineering.sync_tasks;

-- every mapped row passed the event tables' constraints; the source can be purged
SELECT engineering.remove_source('jk', purge => true);
SELECT (SELECT count(*) FROM engineering.pipeline_runs) AS runs,
       (SELECT count(*) FROM engineering.deployments) AS deployments;
