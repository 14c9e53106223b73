-- engineering_metrics: the Jenkins connector (JSON remote access API; README
-- "Connectors > Jenkins", https://www.jenkins.io/doc/book/using/remote-access-api/).
--
-- Config: "job" (a path such as "folder/sub/job") and/or "jobs" (a list of
-- paths); a path that names a folder or a multibranch project stands for
-- every job inside it, found at sync time.  Streams (sync_tasks.stream):
--   builds  GET {job}/api/json?tree=_class,jobs[..],allBuilds[..]{M,N}: a page
--           of a job's builds, newest first, down to the job's watermark; for a
--           folder, its jobs, each queued as a builds stream of its own
--   build   GET {job}/{number}/api/json?tree=..: a build that was still running
--           when last seen (asked for at every sync until it is final or gone)
-- Builds feed pipeline_runs; builds of jobs matching "deployment_jobs"
-- also feed deployments.
--
-- Jenkins has no time filter: allBuilds is sliced with {M,N} ranges of 100,
-- newest first, and the scan stops at the first build that started before
-- the job's watermark.  Watermarks in sources.cursor:
--   {"jobs": {"folder/sub/job": {"timestamp": epoch ms, "number": n}, ...}}
-- the newest build seen per job, advanced when the job's scan ends.
-- The JSON-to-row mapping lives in _jenkins_map_builds() so that pg_regress
-- can test it with fixtures (sql/jenkins.sql).

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._jenkins_jobs(config jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT coalesce(array_agg(j ORDER BY first_seen), '{}')
        FROM (SELECT j, min(o) AS first_seen
              FROM (SELECT config->>'job' AS j, 0::bigint AS o WHERE jsonb_typeof(config->'job') = 'string'
                    UNION ALL
                    SELECT e #>> '{}', o FROM jsonb_array_elements(
                        CASE WHEN jsonb_typeof(config->'jobs') = 'array' THEN config->'jobs' ELSE '[]' END)
                        WITH ORDINALITY AS x(e, o)
                    WHERE jsonb_typeof(e) = 'string') a
              GROUP BY j) b);
COMMENT ON FUNCTION engineering._jenkins_jobs(jsonb) IS
    'the job paths a jenkins source reads: config job, then config jobs, without duplicates';

CREATE FUNCTION engineering._jenkins_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    key text;
    bad text;
BEGIN
    IF config ? 'job' AND jsonb_typeof(config->'job') <> 'string' THEN
        RAISE EXCEPTION 'config job must be a job path such as "folder/sub/job"' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'jobs' AND (jsonb_typeof(config->'jobs') <> 'array'
                            OR EXISTS (SELECT 1 FROM jsonb_array_elements(config->'jobs') e
                                       WHERE jsonb_typeof(e) <> 'string')) THEN
        RAISE EXCEPTION 'config jobs must be an array of job paths' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(engineering._jenkins_jobs(config)) = 0 THEN
        RAISE EXCEPTION 'a jenkins source needs config job (or jobs): the path of a job, folder or multibranch project'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"job": "shop/build", "user": "ci-bot"} or {"jobs": ["shop/build", "shop/deploy"]}.';
    END IF;
    SELECT j INTO bad FROM unnest(engineering._jenkins_jobs(config)) j
    WHERE j !~ '^[^/]+(/[^/]+)*$' OR j ~ '(^|/)\.\.?(/|$)' OR j ~ '[\x01-\x1f\x7f]' OR j <> btrim(j)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'invalid Jenkins job path "%"', bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give the job''s full name as Jenkins shows it, folders separated by "/", without "job/" or slashes at the ends.';
    END IF;
    FOREACH key IN ARRAY ARRAY['user', 'deployment_environment', 'environment_parameter'] LOOP
        IF config ? key AND (jsonb_typeof(config->key) <> 'string' OR btrim(config->>key) = '') THEN
            RAISE EXCEPTION 'config % must be a non-empty string', key USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END LOOP;
    FOREACH key IN ARRAY ARRAY['deployment_jobs', 'repository_url'] LOOP
        IF config ? key THEN
            IF jsonb_typeof(config->key) <> 'string' OR config->>key = '' THEN
                RAISE EXCEPTION 'config % must be a regular expression', key USING ERRCODE = 'invalid_parameter_value';
            END IF;
            BEGIN
                PERFORM '' ~ (config->>key);
            EXCEPTION WHEN invalid_regular_expression THEN
                RAISE EXCEPTION 'config % is not a valid regular expression: %', key, SQLERRM
                    USING ERRCODE = 'invalid_parameter_value';
            END;
        END IF;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION engineering._jenkins_validate(jsonb) IS
    'checks a jenkins source''s config: job and/or jobs (paths); optional user, service, service_map, deployment_jobs and repository_url (regexes), deployment_environment, environment_parameter, since';

CREATE FUNCTION engineering._jenkins_job_url(path text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT string_agg('/job/' || engineering._urlencode(seg), '' ORDER BY o) || '/'
        FROM regexp_split_to_table(path, '/') WITH ORDINALITY AS s(seg, o));
COMMENT ON FUNCTION engineering._jenkins_job_url(text) IS
    'the URL path of a job from its full name: folder/sub/job -> /job/folder/job/sub/job/job/, each name URL-encoded';

CREATE FUNCTION engineering._jenkins_build_tree()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'number,url,timestamp,duration,building,result,queueId,'
    || 'actions[_class,lastBuiltRevision[SHA1,branch[name]],remoteUrls,causes[_class,shortDescription,userId],'
    || 'parameters[name,value],queuingDurationMillis]';
COMMENT ON FUNCTION engineering._jenkins_build_tree() IS
    'the properties of a build the connector asks Jenkins for (tree parameter)';

CREATE FUNCTION engineering._jenkins_builds_url(path text, first integer)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN engineering._jenkins_job_url(path) || 'api/json?tree='
    || engineering._urlencode('_class,fullName,jobs[name,_class],allBuilds[' || engineering._jenkins_build_tree()
                              || ']{' || first || ',' || (first + 100) || '}');
COMMENT ON FUNCTION engineering._jenkins_builds_url(text, integer) IS
    'the request for 100 builds of a job from the first-th newest, or for a folder''s jobs';

CREATE FUNCTION engineering._jenkins_service(config jsonb, root text, path text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(config->'service_map'->>path, config->'service_map'->>root,
                engineering._map_service(config, regexp_replace(root, '^.*/', '')));
COMMENT ON FUNCTION engineering._jenkins_service(jsonb, text, text) IS
    'service of a Jenkins job: service_map of its path or of the configured path it was found under, else config service, else the configured job''s name';

CREATE FUNCTION engineering._jenkins_run_status(result text, building boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    -- a Pipeline may set its result before it ends: running until building is false
    WHEN coalesce(building, false) OR result IS NULL THEN 'running'
    WHEN result = 'SUCCESS' THEN 'success'
    WHEN result = 'ABORTED' THEN 'cancelled'
    WHEN result = 'NOT_BUILT' THEN 'skipped'
    ELSE 'failure' END;
COMMENT ON FUNCTION engineering._jenkins_run_status(text, boolean) IS
    'pipeline_runs.status of a build: running while building or without result; SUCCESS, ABORTED (cancelled), NOT_BUILT (skipped), anything else (FAILURE, UNSTABLE, unknown) failure';

CREATE FUNCTION engineering._jenkins_event(causes jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT CASE
            WHEN c ~ 'UserIdCause|UserCause' THEN 'manual'
            WHEN c ~ 'TimerTrigger' THEN 'schedule'
            WHEN c ~ 'UpstreamCause' THEN 'upstream'
            WHEN c ~ 'RemoteCause' THEN 'api'
            WHEN c ~ 'ReplayCause' THEN 'replay'
            WHEN c ~ 'RebuildCause' THEN 'rebuild'
            WHEN c ~ 'BranchIndexingCause' THEN 'branch_indexing'
            WHEN c ~ 'PullRequest|Ghprb|MergeRequest' THEN 'pull_request'
            WHEN c ~ 'SCMTrigger|BranchEventCause|PushCause|WebHookCause' THEN 'push'
            ELSE nullif(lower(regexp_replace(c, '^.*[.$]', '')), '') END
        FROM (SELECT x->>'_class' AS c FROM jsonb_array_elements(
                  CASE WHEN jsonb_typeof(causes) = 'array' THEN causes ELSE '[]' END) WITH ORDINALITY AS e(x, o)
              WHERE jsonb_typeof(x) = 'object' AND x ? '_class'
              ORDER BY o LIMIT 1) first_cause);
COMMENT ON FUNCTION engineering._jenkins_event(jsonb) IS
    'pipeline_runs.event from the first cause of a build: manual, schedule, push, upstream, api, pull_request, replay, ... (else the cause''s class name)';

CREATE FUNCTION engineering._jenkins_unescape(name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
-- Multibranch projects name a branch's job with the characters that cannot
-- be in a job name percent-encoded ("feature%2Flogin"); those are ASCII.
-- Other escapes, and control characters, stay as they are.
RETURN (SELECT coalesce(string_agg(CASE WHEN m[1] ~ '^%[2-7][0-9A-Fa-f]$' AND upper(m[1]) <> '%7F'
                                        THEN chr(('x' || substr(m[1], 2))::bit(8)::integer)
                                        ELSE m[1] END, '' ORDER BY o), '')
        FROM regexp_matches(name, '%[0-9A-Fa-f]{2}|[^%]+|%', 'g') WITH ORDINALITY AS t(m, o));
COMMENT ON FUNCTION engineering._jenkins_unescape(text) IS
    'a multibranch job name decoded to its branch name (feature%2Flogin -> feature/login): printable ASCII escapes only';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/jenkins.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._jenkins_map_builds(src_id integer, config jsonb, root text, path text,
                                                builds jsonb, branch_hint text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    run_rows engineering.pipeline_runs[];
    deploy_rows engineering.deployments[];
    n_runs bigint;
    n_deploys bigint;
    service text := engineering._jenkins_service(config, root, path);
    is_deploy boolean := config->>'deployment_jobs' IS NOT NULL AND path ~ (config->>'deployment_jobs');
    repo_re text := config->>'repository_url';
BEGIN
    IF jsonb_typeof(builds) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of Jenkins builds, got %', coalesce(jsonb_typeof(builds), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT path || '#' || (b->>'number') AS external_id, o, b, st.status, t.started, t.queued,
                   CASE WHEN st.status <> 'running'
                        THEN t.started + make_interval(secs => t.duration_ms / 1000.0) END AS finished,
                   CASE WHEN lower(rev.sha) ~ '^[0-9a-f]{7,64}$' THEN lower(rev.sha) END AS commit_sha,
                   coalesce(branch_hint,
                            regexp_replace(rev.branch, '^(refs/remotes/[^/]+/|refs/heads/|origin/)', '')) AS branch,
                   (SELECT p->>'value'
                    FROM jsonb_array_elements(b->'actions') a, jsonb_array_elements(a->'parameters') p
                    WHERE jsonb_typeof(b->'actions') = 'array' AND jsonb_typeof(a->'parameters') = 'array'
                      AND p->>'name' = config->>'environment_parameter'
                    LIMIT 1) AS environment_param,
                   rev.remote_urls
            FROM jsonb_array_elements(builds) WITH ORDINALITY AS e(b, o)
            CROSS JOIN LATERAL (SELECT CASE WHEN jsonb_typeof(b->'actions') = 'array'
                                            THEN b->'actions' ELSE '[]' END AS actions) act
            -- the git revision: the checkout whose remote matches repository_url,
            -- else the last one (a Pipeline's shared libraries check out first)
            LEFT JOIN LATERAL (
                SELECT a->'lastBuiltRevision'->>'SHA1' AS sha,
                       a->'lastBuiltRevision'->'branch'->0->>'name' AS branch, a->'remoteUrls' AS remote_urls
                FROM jsonb_array_elements(act.actions) WITH ORDINALITY AS x(a, ao)
                WHERE jsonb_typeof(a->'lastBuiltRevision') = 'object'
                ORDER BY (repo_re IS NOT NULL AND EXISTS (
                             SELECT 1 FROM jsonb_array_elements_text(
                                 CASE WHEN jsonb_typeof(a->'remoteUrls') = 'array' THEN a->'remoteUrls' ELSE '[]' END) u
                             WHERE u ~ repo_re)) DESC, ao DESC
                LIMIT 1) rev ON true
            CROSS JOIN LATERAL (
                SELECT engineering._ts(b->'timestamp') AS started,
                       CASE WHEN jsonb_typeof(b->'duration') = 'number'
                            THEN greatest((b->>'duration')::double precision, 0) ELSE 0 END AS duration_ms,
                       (SELECT (a->>'queuingDurationMillis')::double precision
                        FROM jsonb_array_elements(act.actions) a
                        WHERE jsonb_typeof(a->'queuingDurationMillis') = 'number'
                          AND (a->>'queuingDurationMillis')::double precision >= 0
                        LIMIT 1) AS queuing_ms) t0
            CROSS JOIN LATERAL (SELECT t0.started, t0.duration_ms,
                                       t0.started - make_interval(secs => t0.queuing_ms / 1000.0) AS queued) t
            CROSS JOIN LATERAL (SELECT engineering._jenkins_run_status(b->>'result',
                                           CASE WHEN jsonb_typeof(b->'building') = 'boolean'
                                                THEN (b->>'building')::boolean END) AS status) st
            WHERE jsonb_typeof(b) = 'object' AND b->>'number' ~ '^[0-9]{1,9}$'
              AND jsonb_typeof(b->'timestamp') = 'number'
        ) x
        ORDER BY external_id, o)
    SELECT array_agg(ROW(
               NULL, src_id, m.external_id, service, path, m.branch, m.commit_sha,
               engineering._jenkins_event((SELECT a->'causes' FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(m.b->'actions') = 'array' THEN m.b->'actions' ELSE '[]' END) a
                   WHERE jsonb_typeof(a->'causes') = 'array' LIMIT 1)),
               m.status, m.queued, m.started, m.finished, 1, m.b->>'url',
               jsonb_strip_nulls(jsonb_build_object(
                   'job', path, 'root', root, 'number', (m.b->>'number')::integer,
                   'jenkins_result', m.b->'result', 'building', m.b->'building',
                   'duration_ms', m.b->'duration', 'queue_id', m.b->'queueId',
                   'remote_urls', m.remote_urls, 'branch_hint', branch_hint))
           )::engineering.pipeline_runs),
           array_agg(ROW(
               NULL, src_id, m.external_id, service,
               coalesce(nullif(btrim(m.environment_param), ''), config->>'deployment_environment', 'production'),
               m.commit_sha, m.started, m.finished,
               CASE m.status WHEN 'skipped' THEN 'cancelled' ELSE m.status END, m.b->>'url',
               jsonb_build_object('job', path, 'number', (m.b->>'number')::integer, 'jenkins_result', m.b->'result')
           )::engineering.deployments) FILTER (WHERE is_deploy)
    INTO run_rows, deploy_rows
    FROM m;

    -- a build seen again is no longer missing
    n_runs := engineering._upsert_pipeline_runs(run_rows, cleared_keys => '{jenkins_missing}');
    SELECT count(*) INTO n_deploys
    FROM engineering._upsert_deployments(deploy_rows, cleared_keys => '{jenkins_missing}');
    RETURN n_runs + n_deploys;
END;
$$;
COMMENT ON FUNCTION engineering._jenkins_map_builds(integer, jsonb, text, text, jsonb, text) IS
    'upserts builds of one job as pipeline_runs (external_id "job#number"; epoch-millisecond timestamp and duration) and, for jobs matching deployment_jobs, as deployments; returns the rows changed';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._jenkins_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    since_ms numeric := floor(extract(epoch FROM engineering._since(src.config)) * 1000);
BEGIN
    -- Builds still running when last seen are asked for by number: the scan
    -- stops at the newest build already seen, and a running build that was
    -- deleted (its job's retention, a discarded abort) is never listed again.
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'build',
           engineering._jenkins_job_url(r.attributes->>'job') || (r.attributes->>'number')
               || '/api/json?tree=' || engineering._urlencode(engineering._jenkins_build_tree()),
           jsonb_build_object('path', r.attributes->'job', 'root', r.attributes->'root',
                              'number', r.attributes->'number', 'branch', r.attributes->'branch_hint',
                              'missing_ok', true)
    FROM engineering.pipeline_runs r
    WHERE r.source_id = src.id AND r.status IN ('queued', 'running')
      AND r.attributes->>'root' = ANY (engineering._jenkins_jobs(src.config))
      AND r.attributes->>'number' ~ '^[0-9]{1,9}$'
    ORDER BY r.started_at, r.id;

    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'builds', engineering._jenkins_builds_url(j, 0),
           jsonb_build_object('path', j, 'root', j, 'first', 0, 'depth', 0,
                              'floor', greatest(since_ms, coalesce((src.cursor->'jobs'->j->>'timestamp')::numeric, since_ms)))
    FROM unnest(engineering._jenkins_jobs(src.config)) WITH ORDINALITY AS x(j, o)
    ORDER BY o;
END;
$$;
COMMENT ON FUNCTION engineering._jenkins_plan(engineering.sources) IS
    'connector interface: queues the builds still running when last seen, then the first page of builds of every configured job down to its watermark';

CREATE FUNCTION engineering._jenkins_ingest_builds(src engineering.sources, task engineering.sync_tasks, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    path text := task.payload->>'path';
    floor_ms numeric := (task.payload->>'floor')::numeric;
    first integer := coalesce((task.payload->>'first')::integer, 0);
    depth integer := coalesce((task.payload->>'depth')::integer, 0);
    fresh jsonb;
    reached_end boolean;
    newest numeric;
    newest_number integer;
    n bigint;
BEGIN
    IF jsonb_typeof(body) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'unexpected Jenkins response for "%": expected a JSON object', path
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    IF jsonb_typeof(body->'allBuilds') IS DISTINCT FROM 'array' THEN
        IF jsonb_typeof(body->'jobs') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected Jenkins response: "%" is neither a job with builds nor a folder', path
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Check config job: the full name of a job, folder or multibranch project.';
        END IF;
        -- A folder or a multibranch project: each job inside is read on its
        -- own, with its own watermark (the nesting is bounded, not the width).
        IF depth >= 5 THEN
            RAISE EXCEPTION 'Jenkins folders nested deeper than 5 levels under "%"', task.payload->>'root'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
        SELECT src.id, 'builds', engineering._jenkins_builds_url(path || '/' || (c->>'name'), 0),
               jsonb_build_object('path', path || '/' || (c->>'name'), 'root', task.payload->'root',
                                  'first', 0, 'depth', depth + 1,
                                  'branch', CASE WHEN body->>'_class' ~* 'multibranch'
                                                 THEN engineering._jenkins_unescape(c->>'name') END,
                                  'floor', greatest(floor_ms,
                                      coalesce((src.cursor->'jobs'->(path || '/' || (c->>'name'))->>'timestamp')::numeric,
                                               floor_ms)))
        FROM jsonb_array_elements(body->'jobs') WITH ORDINALITY AS e(c, o)
        WHERE jsonb_typeof(c->'name') = 'string' AND c->>'name' !~ '^\.\.?$|/' AND c->>'name' <> ''
        ORDER BY o;
        RETURN 0;
    END IF;

    -- A page of builds, newest first: what started at or after the floor
    -- is new or may have changed; the first one below it ends the scan.
    SELECT bool_or((b->>'timestamp')::numeric < floor_ms),
           coalesce(jsonb_agg(b ORDER BY o) FILTER (WHERE (b->>'timestamp')::numeric >= floor_ms), '[]'),
           max((b->>'timestamp')::numeric), max((b->>'number')::integer)
    INTO reached_end, fresh, newest, newest_number
    FROM jsonb_array_elements(body->'allBuilds') WITH ORDINALITY AS e(b, o)
    WHERE jsonb_typeof(b) = 'object' AND jsonb_typeof(b->'timestamp') = 'number' AND b->>'number' ~ '^[0-9]{1,9}$';
    n := engineering._jenkins_map_builds(src.id, src.config, task.payload->>'root', path, fresh,
                                         task.payload->>'branch');
    newest := greatest(newest, (task.payload->>'newest')::numeric);
    newest_number := greatest(newest_number, (task.payload->>'newest_number')::integer);

    IF jsonb_array_length(body->'allBuilds') >= 100 AND NOT coalesce(reached_end, false) THEN
        PERFORM engineering._enqueue(src.id, 'builds', engineering._jenkins_builds_url(path, first + 100),
            task.payload || jsonb_build_object('first', first + 100, 'newest', newest, 'newest_number', newest_number));
    ELSIF newest IS NOT NULL THEN
        UPDATE engineering.sources
        SET cursor = jsonb_set(CASE WHEN jsonb_typeof(cursor->'jobs') = 'object' THEN cursor
                                    ELSE cursor || '{"jobs": {}}' END,
                               ARRAY['jobs', path],
                               jsonb_build_object('timestamp', newest, 'number', newest_number))
        WHERE id = src.id
          AND coalesce((cursor->'jobs'->path->>'timestamp')::numeric, -1) <= newest;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._jenkins_ingest_builds(engineering.sources, engineering.sync_tasks, jsonb) IS
    'a page of a job''s allBuilds (maps those at or after the watermark, queues the next {M,N} range or advances the job''s watermark), or a folder''s jobs (queued)';

CREATE FUNCTION engineering._jenkins_ingest(src engineering.sources, task engineering.sync_tasks,
                                            status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
    build_id text := (task.payload->>'path') || '#' || (task.payload->>'number');
BEGIN
    CASE task.stream
    WHEN 'builds' THEN
        RETURN engineering._jenkins_ingest_builds(src, task, body);
    WHEN 'build' THEN
        IF body IS NULL THEN
            -- discarded by the job's retention policy before it was seen
            -- finishing: it will never finish, and is no longer asked for
            UPDATE engineering.pipeline_runs r
            SET status = 'cancelled', attributes = r.attributes || '{"jenkins_missing": true}'
            WHERE r.source_id = src.id AND r.external_id = build_id AND r.status IN ('queued', 'running');
            GET DIAGNOSTICS n = ROW_COUNT;
            UPDATE engineering.deployments d
            SET status = 'cancelled', attributes = d.attributes || '{"jenkins_missing": true}'
            WHERE d.source_id = src.id AND d.external_id = build_id AND d.status = 'running';
            RETURN n;
        END IF;
        IF jsonb_typeof(body) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'unexpected Jenkins response: expected a build object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN engineering._jenkins_map_builds(src.id, src.config, task.payload->>'root', task.payload->>'path',
                                               jsonb_build_array(body), task.payload->>'branch');
    ELSE
        RAISE EXCEPTION 'unknown Jenkins stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._jenkins_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one Jenkins response to rows, queues follow-up requests and advances the cursor; returns rows changed';
