-- engineering_metrics: the GitHub connector (REST API; README "Connectors >
-- GitHub", https://docs.github.com/rest).
--
-- Streams (sync_tasks.stream) and what they feed:
--   repository           GET /repos/{o}/{r}: default_branch (deployment workflows only)
--   runs                 GET .../actions/runs?created=FROM..TO: pipeline_runs, in created
--                        windows kept under the 1,000-result cap of filtered lists
--   run, run_attempt     GET .../actions/runs/{id}[/attempts/{n}]: runs not final yet, and
--                        earlier attempts of re-run workflows (one row per attempt)
--   deployments          GET .../deployments: new deployments, newest first, down to the
--                        watermark; each one's statuses are fetched next
--   deployment_statuses  GET .../deployments/{id}/statuses: deployments
--   pulls                GET .../pulls?state=closed&sort=updated: merged pull_requests
--   pull_commits         GET .../pulls/{n}/commits: first_commit_at
--   compare              GET .../compare/{prev}...{sha}: changes + deployment_changes
--
-- Watermarks in sources.cursor: runs_created, deployments_created,
-- pulls_updated, default_branch.  The JSON-to-row mapping lives in the
-- _github_map_* functions so that pg_regress can test it with fixtures.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._github_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(config->'repository') IS DISTINCT FROM 'string'
       OR config->>'repository' !~ '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'
       OR split_part(config->>'repository', '/', 2) IN ('.', '..') THEN
        RAISE EXCEPTION 'a github source needs config repository as "owner/name"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"repository": "octo-org/shop"}.';
    END IF;
    IF config ? 'deployment_workflows' THEN
        IF jsonb_typeof(config->'deployment_workflows') <> 'string' OR config->>'deployment_workflows' = '' THEN
            RAISE EXCEPTION 'config deployment_workflows must be a regular expression'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
            PERFORM '' ~ (config->>'deployment_workflows');
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'config deployment_workflows is not a valid regular expression: %', SQLERRM
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
    IF config ? 'deployment_environment' AND (jsonb_typeof(config->'deployment_environment') <> 'string'
                                             OR btrim(config->>'deployment_environment') = '') THEN
        RAISE EXCEPTION 'config deployment_environment must be a non-empty string'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'default_branch' AND (jsonb_typeof(config->'default_branch') <> 'string'
                                     OR config->>'default_branch' = '') THEN
        RAISE EXCEPTION 'config default_branch must be a branch name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'lookback' THEN
        BEGIN
            IF (config->>'lookback')::interval < interval '0' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
            END IF;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'config lookback must be a non-negative interval such as "6 hours"'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._github_validate(jsonb) IS
    'checks a github source''s config: repository "owner/name"; optional service, deployment_workflows (regex), deployment_environment, default_branch, lookback, since';

CREATE FUNCTION engineering._github_service(config jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN engineering._map_service(config, split_part(config->>'repository', '/', 2));
COMMENT ON FUNCTION engineering._github_service(jsonb) IS
    'service of a github source: config service (or service_map of the repository name), else the repository name';

CREATE FUNCTION engineering._github_sha(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN lower(value) ~ '^[0-9a-f]{7,64}$' THEN lower(value) END;
COMMENT ON FUNCTION engineering._github_sha(text) IS
    'a commit sha as stored (lowercase hexadecimal), NULL when the value is not one';

CREATE FUNCTION engineering._github_run_status(status text, conclusion text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN status = 'completed' OR (status IS NULL AND conclusion IS NOT NULL) THEN
        CASE conclusion
            WHEN 'success' THEN 'success'
            WHEN 'neutral' THEN 'success'
            WHEN 'skipped' THEN 'skipped'
            WHEN 'cancelled' THEN 'cancelled'
            WHEN 'stale' THEN 'cancelled'
            ELSE 'failure' END
    WHEN status = 'in_progress' THEN 'running'
    WHEN status IN ('queued', 'waiting', 'requested', 'pending', 'action_required') THEN 'queued'
    ELSE 'running' END;
COMMENT ON FUNCTION engineering._github_run_status(text, text) IS
    'pipeline_runs.status of a workflow run: completed runs by conclusion (failure for unknown ones), else queued or running (fetched again until final)';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/github.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._github_map_runs(src_id integer, config jsonb, default_branch text, runs jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    run_rows engineering.pipeline_runs[];
    deploy_rows engineering.deployments[];
    n_runs bigint;
    n_deploys bigint;
    new_deploys bigint[];
    re text := config->>'deployment_workflows';
    service text := engineering._github_service(config);
BEGIN
    IF jsonb_typeof(runs) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of workflow runs, got %', coalesce(jsonb_typeof(runs), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT (r->>'id') || '/' || a.attempt AS external_id, (r->>'id')::bigint AS run_id, a.attempt,
                   coalesce(nullif(btrim(r->>'name'), ''), nullif(r->>'path', ''),
                            'workflow ' || coalesce(r->>'workflow_id', '?')) AS pipeline,
                   r->>'path' AS path, r->>'head_branch' AS branch,
                   engineering._github_sha(r->>'head_sha') AS commit_sha, r->>'event' AS event,
                   t.st AS status, q1.q AS queued_at, s1.s AS started_at,
                   CASE WHEN t.st IN ('success', 'failure', 'cancelled', 'skipped')
                        THEN greatest(coalesce(t.u, s1.s, q1.q), s1.s, q1.q) END AS finished_at,
                   r->>'html_url' AS url,
                   jsonb_strip_nulls(jsonb_build_object(
                       'run_id', r->'id', 'workflow_id', r->'workflow_id', 'workflow_path', r->'path',
                       'run_number', r->'run_number', 'github_status', r->'status',
                       'github_conclusion', r->'conclusion', 'actor', r->'actor'->'login',
                       'display_title', r->'display_title',
                       'pull_requests', (SELECT jsonb_agg(p->'number') FROM jsonb_array_elements(
                           CASE WHEN jsonb_typeof(r->'pull_requests') = 'array'
                                THEN r->'pull_requests' ELSE '[]' END) p))) AS attributes
            FROM jsonb_array_elements(runs) r,
                 LATERAL (SELECT CASE WHEN r->>'run_attempt' ~ '^\d{1,4}$'
                                      THEN greatest((r->>'run_attempt')::integer, 1) ELSE 1 END AS attempt) a,
                 LATERAL (SELECT engineering._github_run_status(r->>'status', r->>'conclusion') AS st,
                                 engineering._ts(r->'created_at') AS created,
                                 engineering._ts(r->'run_started_at') AS rs,
                                 engineering._ts(r->'updated_at') AS u) t,
                 LATERAL (SELECT CASE WHEN a.attempt = 1 THEN t.created END AS q) q1,
                 LATERAL (SELECT CASE WHEN t.rs IS NOT NULL THEN greatest(t.rs, q1.q)
                                      WHEN a.attempt > 1 THEN t.created END AS s) s1
            WHERE jsonb_typeof(r) = 'object' AND r->>'id' ~ '^\d{1,18}$'
        ) x
        ORDER BY external_id)
    SELECT array_agg(ROW(NULL, src_id, m.external_id, service, m.pipeline, m.branch, m.commit_sha, m.event,
                         m.status, m.queued_at, m.started_at, m.finished_at, m.attempt, m.url,
                         m.attributes)::engineering.pipeline_runs),
           -- Repositories that deploy from a workflow instead of the
           -- Deployments API: each successful run of a matching workflow on
           -- the default branch is a deployment.
           array_agg(ROW(NULL, src_id, 'run:' || m.external_id, service,
                         coalesce(config->>'deployment_environment', 'production'), m.commit_sha,
                         m.started_at, m.finished_at, 'success', m.url,
                         jsonb_build_object('workflow_run_id', m.run_id, 'attempt', m.attempt,
                                            'workflow', m.pipeline))::engineering.deployments)
               FILTER (WHERE re IS NOT NULL AND default_branch IS NOT NULL
                         AND m.status = 'success' AND m.branch = default_branch
                         AND (m.pipeline ~ re OR coalesce(m.path, '') ~ re))
    INTO run_rows, deploy_rows
    FROM m;

    n_runs := engineering._upsert_pipeline_runs(run_rows);
    SELECT count(*), array_agg(u.id ORDER BY u.id) FILTER (WHERE NOT u.compare_decided)
    INTO n_deploys, new_deploys
    FROM engineering._upsert_deployments(deploy_rows) u;

    IF new_deploys IS NOT NULL THEN
        PERFORM engineering._github_link(src_id, config, new_deploys);
    END IF;
    RETURN n_runs + n_deploys;
END;
$$;
COMMENT ON FUNCTION engineering._github_map_runs(integer, jsonb, text, jsonb) IS
    'upserts workflow runs (one pipeline_runs row per attempt, external_id "run_id/attempt") and, with deployment_workflows, the deployments they are; returns the rows changed';

CREATE FUNCTION engineering._github_map_deployment(src_id integer, config jsonb, deployment jsonb, statuses jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    st record;
    started timestamptz := engineering._ts(deployment->'created_at');
    dep_status text;
    finished timestamptz;
    dep_id bigint;
    was_linked boolean;
BEGIN
    IF jsonb_typeof(deployment) IS DISTINCT FROM 'object' OR coalesce(deployment->>'id', '') !~ '^\d+$' THEN
        RAISE EXCEPTION 'expected a GitHub deployment object with an id' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(statuses) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of deployment statuses' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- The deployment's own created_at is when it was requested; it is
    -- deployed when its first success status says so.
    SELECT min(t) FILTER (WHERE state = 'success') AS success_at,
           min(t) FILTER (WHERE state IN ('failure', 'error')) AS failed_at,
           (array_agg(state ORDER BY t DESC NULLS LAST, id DESC))[1] AS latest_state,
           max(t) AS latest_at,
           (array_agg(url ORDER BY t DESC NULLS LAST, id DESC) FILTER (WHERE url IS NOT NULL))[1] AS url
    INTO st
    FROM (SELECT s->>'state' AS state, engineering._ts(s->'created_at') AS t,
                 (s->>'id')::numeric AS id,
                 coalesce(nullif(s->>'environment_url', ''), nullif(s->>'log_url', ''), nullif(s->>'target_url', '')) AS url
          FROM jsonb_array_elements(statuses) s WHERE jsonb_typeof(s) = 'object') x;

    IF st.success_at IS NOT NULL THEN
        dep_status := 'success'; finished := st.success_at;
    ELSIF st.failed_at IS NOT NULL THEN
        dep_status := 'failure'; finished := st.failed_at;
    ELSIF st.latest_state = 'inactive' THEN
        dep_status := 'cancelled'; finished := st.latest_at;
    ELSE
        dep_status := 'running'; finished := NULL;
    END IF;
    IF finished < started THEN
        finished := started;    -- a status stamped before the request: clock skew
    END IF;

    SELECT u.id, u.compare_decided INTO dep_id, was_linked
    FROM engineering._upsert_deployments(ARRAY[ROW(
        NULL, src_id, deployment->>'id', engineering._github_service(config),
        coalesce(nullif(btrim(deployment->>'environment'), ''), 'production'),
        engineering._github_sha(deployment->>'sha'), started, finished, dep_status, st.url,
        jsonb_strip_nulls(jsonb_build_object(
            'github_id', deployment->'id', 'ref', deployment->'ref', 'task', deployment->'task',
            'github_state', st.latest_state, 'creator', deployment->'creator'->'login',
            'production_environment', deployment->'production_environment',
            'transient_environment', deployment->'transient_environment',
            'deployment', jsonb_strip_nulls(jsonb_build_object(
                'id', deployment->'id', 'sha', deployment->'sha', 'ref', deployment->'ref',
                'task', deployment->'task', 'environment', deployment->'environment',
                'created_at', deployment->'created_at',
                'production_environment', deployment->'production_environment')))))::engineering.deployments]) u;

    IF dep_status = 'success' AND dep_id IS NOT NULL AND NOT was_linked THEN
        PERFORM engineering._github_link(src_id, config, ARRAY[dep_id]);
    END IF;
    RETURN dep_id;
END;
$$;
COMMENT ON FUNCTION engineering._github_map_deployment(integer, jsonb, jsonb, jsonb) IS
    'upserts a deployment from its statuses: first success = deployed (finished_at), failure/error = failure, only inactive = cancelled, else running; returns its id, NULL when nothing changed';

CREATE FUNCTION engineering._github_map_pulls(src_id integer, config jsonb, pulls jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(pulls) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of pull requests' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH items AS (
        SELECT DISTINCT ON (number) *
        FROM (SELECT (p->>'number')::integer AS number, p,
                     engineering._ts(p->'created_at') AS opened, engineering._ts(p->'merged_at') AS merged
              FROM jsonb_array_elements(pulls) p
              WHERE jsonb_typeof(p) = 'object' AND p->>'number' ~ '^[1-9]\d{0,8}$') x
        WHERE merged IS NOT NULL AND opened IS NOT NULL
        ORDER BY number)
    SELECT engineering._upsert_pull_requests(array_agg(ROW(
               NULL, src_id, number::text, engineering._github_service(config), number, p->>'title',
               p->'user'->>'login', opened, NULL, greatest(merged, opened),
               engineering._github_sha(p->>'merge_commit_sha'),
               jsonb_strip_nulls(jsonb_build_object(
                   'github_id', p->'id', 'base_ref', p->'base'->'ref', 'head_ref', p->'head'->'ref',
                   'head_sha', p->'head'->'sha', 'closed_at', p->'closed_at',
                   'updated_at', p->'updated_at', 'html_url', p->'html_url'))
           )::engineering.pull_requests))
    INTO n
    FROM items;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._github_map_pulls(integer, jsonb, jsonb) IS
    'upserts the merged pull requests of a list page (closed unmerged ones are skipped); returns the rows changed';

CREATE FUNCTION engineering._github_map_pull_commits(src_id integer, number integer, commits jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    earliest timestamptz;
BEGIN
    IF jsonb_typeof(commits) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of commits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(coalesce(engineering._ts(c->'commit'->'author'->'date'),
                        engineering._ts(c->'commit'->'committer'->'date')))
    INTO earliest FROM jsonb_array_elements(commits) c WHERE jsonb_typeof(c) = 'object';
    RETURN engineering._record_first_commit(src_id, _github_map_pull_commits.number::text, earliest);
END;
$$;
COMMENT ON FUNCTION engineering._github_map_pull_commits(integer, integer, jsonb) IS
    'sets a pull request''s first_commit_at to the earliest author date among its commits';

CREATE FUNCTION engineering._github_map_compare(src_id integer, config jsonb, deployment_id bigint, commits jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(commits) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of commits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN engineering._record_shipped_changes(src_id, engineering._github_service(config), deployment_id,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'sha', engineering._github_sha(c->>'sha'),
                    'authored_at', engineering._ts(c->'commit'->'author'->'date'),
                    'committed_at', coalesce(engineering._ts(c->'commit'->'committer'->'date'),
                                             engineering._ts(c->'commit'->'author'->'date')),
                    'author', coalesce(c->'author'->>'login', c->'commit'->'author'->>'name'),
                    'title', split_part(c->'commit'->>'message', E'\n', 1),
                    'attributes', jsonb_strip_nulls(jsonb_build_object('html_url', c->'html_url',
                                                                       'committer', c->'committer'->'login')))),
                         '[]')
         FROM jsonb_array_elements(commits) c WHERE jsonb_typeof(c) = 'object'));
END;
$$;
COMMENT ON FUNCTION engineering._github_map_compare(integer, jsonb, bigint, jsonb) IS
    'upserts the commits of a compare page as changes and links them to the deployment that shipped them; returns rows changed';

------------------------------------------------------------------------------
-- Linking deployments to the commits they shipped
------------------------------------------------------------------------------

CREATE FUNCTION engineering._github_link(src_id integer, config jsonb, dep_ids bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    PERFORM engineering._enqueue(src_id, 'compare',
        '/repos/' || (config->>'repository') || '/compare/' || c.base || '...' || c.head || '?per_page=100',
        jsonb_build_object('deployment_id', c.deployment_id, 'base', c.base, 'missing_ok', true))
    FROM engineering._compares_to_fetch(src_id, dep_ids) c;
END;
$$;
COMMENT ON FUNCTION engineering._github_link(integer, jsonb, bigint[]) IS
    'after deployments became successful: queues the compares that record what they (and the next success of each environment) shipped';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._github_enqueue_runs(src_id integer, config jsonb, from_ts timestamptz, to_ts timestamptz)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    SELECT engineering._enqueue(src_id, 'runs',
        '/repos/' || (config->>'repository') || '/actions/runs?per_page=100&created='
            || engineering._urlencode(engineering._iso8601(from_ts) || '..' || engineering._iso8601(to_ts)),
        jsonb_build_object('from', engineering._iso8601(from_ts), 'to', engineering._iso8601(to_ts), 'first', true));
END;
COMMENT ON FUNCTION engineering._github_enqueue_runs(integer, jsonb, timestamptz, timestamptz) IS
    'queues the first page of workflow runs created in [from, to]';

CREATE FUNCTION engineering._github_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    repo text := '/repos/' || (src.config->>'repository');
    since timestamptz := engineering._since(src.config);
    lookback interval := coalesce((src.config->>'lookback')::interval, interval '6 hours');
    upto timestamptz := date_trunc('second', now());
    runs_from timestamptz;
BEGIN
    IF src.config ? 'deployment_workflows' AND NOT src.config ? 'default_branch' THEN
        PERFORM engineering._enqueue(src.id, 'repository', repo);
    END IF;

    -- Runs have no "updated" filter: scan by created from the watermark,
    -- looking back a little for re-runs, and fetch unfinished runs by id.
    runs_from := greatest(since, coalesce(engineering._ts(src.cursor->'runs_created') - lookback, since));
    IF runs_from < upto THEN
        PERFORM engineering._github_enqueue_runs(src.id, src.config, runs_from, upto);
    END IF;
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'run', repo || '/actions/runs/' || run_id, '{"missing_ok": true}'
    FROM (SELECT DISTINCT attributes->>'run_id' AS run_id FROM engineering.pipeline_runs
          WHERE source_id = src.id AND status IN ('queued', 'running') AND attributes ? 'run_id') r
    ORDER BY run_id;

    IF NOT src.config ? 'deployment_workflows' THEN
        PERFORM engineering._enqueue(src.id, 'deployments', repo || '/deployments?per_page=100',
            jsonb_build_object('watermark', src.cursor->'deployments_created', 'since', engineering._iso8601(since)));
        INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
        SELECT src.id, 'deployment_statuses',
               repo || '/deployments/' || (attributes->>'github_id') || '/statuses?per_page=100',
               jsonb_build_object('deployment', attributes->'deployment', 'missing_ok', true)
        FROM engineering.deployments
        WHERE source_id = src.id AND status = 'running' AND attributes ? 'deployment'
        ORDER BY id;
    END IF;

    PERFORM engineering._enqueue(src.id, 'pulls',
        repo || '/pulls?state=closed&sort=updated&direction=desc&per_page=100',
        jsonb_build_object('watermark', src.cursor->'pulls_updated', 'since', engineering._iso8601(since)));
END;
$$;
COMMENT ON FUNCTION engineering._github_plan(engineering.sources) IS
    'connector interface: queues the first requests of a github sync from the watermarks in the source''s cursor';

CREATE FUNCTION engineering._github_ingest_runs(src engineering.sources, task engineering.sync_tasks,
                                                headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    from_ts timestamptz := engineering._ts(task.payload->'from');
    to_ts timestamptz := engineering._ts(task.payload->'to');
    total bigint;
    parts integer;
    step interval;
    n bigint;
    next_url text;
    runs jsonb := body->'workflow_runs';
BEGIN
    IF jsonb_typeof(runs) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected GitHub response: no workflow_runs array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    total := CASE WHEN body->>'total_count' ~ '^\d{1,15}$' THEN (body->>'total_count')::bigint END;

    -- A filtered list returns at most 1,000 runs: split the window first.
    IF (task.payload->>'first')::boolean AND total > 1000 AND to_ts - from_ts > interval '2 seconds' THEN
        parts := least(greatest(ceil(total / 500.0)::integer, 2), 64);
        step := (to_ts - from_ts) / parts;
        FOR i IN 0 .. parts - 1 LOOP
            PERFORM engineering._github_enqueue_runs(src.id, src.config,
                date_trunc('second', from_ts + step * i),
                CASE WHEN i = parts - 1 THEN to_ts ELSE date_trunc('second', from_ts + step * (i + 1)) END);
        END LOOP;
        RETURN 0;
    END IF;

    n := engineering._github_map_runs(src.id, src.config,
                                      coalesce(src.config->>'default_branch', src.cursor->>'default_branch'),
                                      runs);
    PERFORM engineering._github_enqueue_attempts(src, runs);

    next_url := engineering._link_next(headers->>'link');
    IF next_url IS NOT NULL THEN
        PERFORM engineering._enqueue(src.id, 'runs', next_url, task.payload || '{"first": false}');
    ELSE
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object('runs_created',
            engineering._iso8601(greatest(engineering._ts(cursor->'runs_created'), to_ts)))
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._github_ingest_runs(engineering.sources, engineering.sync_tasks, jsonb, jsonb) IS
    'a page of workflow runs: splits windows over the 1,000-result cap, maps the runs, follows Link next, advances runs_created when a window is done';

CREATE FUNCTION engineering._github_enqueue_attempts(src engineering.sources, runs jsonb)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'run_attempt',
           '/repos/' || (src.config->>'repository') || '/actions/runs/' || (r->>'id') || '/attempts/' || k,
           '{"missing_ok": true}'
    FROM jsonb_array_elements(runs) r,
         generate_series(1, least(coalesce((r->>'run_attempt')::integer, 1), 100) - 1) k
    WHERE jsonb_typeof(r) = 'object' AND r->>'id' ~ '^\d+$' AND r->>'run_attempt' ~ '^\d{1,4}$'
      AND NOT EXISTS (SELECT 1 FROM engineering.pipeline_runs p
                      WHERE p.source_id = src.id AND p.external_id = (r->>'id') || '/' || k
                        AND p.status NOT IN ('queued', 'running'))
    ORDER BY (r->>'id')::bigint, k;
END;
COMMENT ON FUNCTION engineering._github_enqueue_attempts(engineering.sources, jsonb) IS
    'queues the earlier attempts of re-run workflow runs that are not stored as final yet';

CREATE FUNCTION engineering._github_ingest_listing(src engineering.sources, task engineering.sync_tasks,
                                                   headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    repo text := '/repos/' || (src.config->>'repository');
    is_pulls boolean := task.stream = 'pulls';
    time_key text := CASE WHEN task.stream = 'pulls' THEN 'updated_at' ELSE 'created_at' END;
    watermark timestamptz := engineering._ts(task.payload->'watermark');
    floor_ts timestamptz := greatest(engineering._ts(task.payload->'since'), engineering._ts(task.payload->'watermark'));
    newest timestamptz;
    reached_end boolean;
    fresh jsonb;
    n bigint := 0;
    next_url text;
BEGIN
    IF jsonb_typeof(body) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected GitHub response: expected a JSON array of %', task.stream
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Lists come newest first: everything older than the watermark (or the
    -- backfill start) was seen before, and so is everything after it.
    SELECT bool_or(engineering._ts(i->time_key) < floor_ts), max(engineering._ts(i->time_key)),
           coalesce(jsonb_agg(i ORDER BY o) FILTER (WHERE floor_ts IS NULL
                                                    OR engineering._ts(i->time_key) >= floor_ts), '[]')
    INTO reached_end, newest, fresh
    FROM jsonb_array_elements(body) WITH ORDINALITY AS e(i, o)
    WHERE jsonb_typeof(i) = 'object';
    newest := greatest(newest, engineering._ts(task.payload->'newest'));

    IF is_pulls THEN
        n := engineering._github_map_pulls(src.id, src.config, fresh);
        INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
        SELECT src.id, 'pull_commits', repo || '/pulls/' || pr.number || '/commits?per_page=100',
               jsonb_build_object('number', pr.number, 'missing_ok', true)
        FROM engineering.pull_requests pr
        WHERE pr.source_id = src.id
          AND pr.external_id IN (SELECT i->>'number' FROM jsonb_array_elements(fresh) i)
          AND NOT pr.attributes ? 'commits_fetched'
        ORDER BY pr.number;
    ELSE
        INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
        SELECT src.id, 'deployment_statuses', repo || '/deployments/' || (i->>'id') || '/statuses?per_page=100',
               jsonb_build_object('deployment', i, 'missing_ok', true)
        FROM jsonb_array_elements(fresh) WITH ORDINALITY AS e(i, o)
        -- known deployments are final, or fetched again by the plan until they are
        WHERE i->>'id' ~ '^\d+$'
          AND NOT EXISTS (SELECT 1 FROM engineering.deployments d
                          WHERE d.source_id = src.id AND d.external_id = i->>'id')
        ORDER BY o;
    END IF;

    next_url := engineering._link_next(headers->>'link');
    IF next_url IS NOT NULL AND NOT coalesce(reached_end, false) THEN
        PERFORM engineering._enqueue(src.id, task.stream, next_url,
            task.payload || jsonb_build_object('newest', engineering._iso8601(newest)));
    ELSE
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object(
            CASE WHEN is_pulls THEN 'pulls_updated' ELSE 'deployments_created' END,
            engineering._iso8601(greatest(watermark, newest)))
        WHERE id = src.id AND greatest(watermark, newest) IS NOT NULL;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._github_ingest_listing(engineering.sources, engineering.sync_tasks, jsonb, jsonb) IS
    'a page of deployments or pull requests (newest first): maps or queues what is new, stops at the watermark, then advances it';

CREATE FUNCTION engineering._github_ingest(src engineering.sources, task engineering.sync_tasks,
                                           status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    dep_id bigint;
    n bigint;
    next_url text;
BEGIN
    IF body IS NULL THEN
        RETURN 0;       -- 404/410 of a missing_ok task: the object is gone
    END IF;
    CASE task.stream
    WHEN 'repository' THEN
        IF jsonb_typeof(body->'default_branch') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'unexpected GitHub response: no default_branch' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object('default_branch', body->'default_branch')
        WHERE id = src.id;
        RETURN 0;
    WHEN 'runs' THEN
        RETURN engineering._github_ingest_runs(src, task, headers, body);
    WHEN 'run', 'run_attempt' THEN
        n := engineering._github_map_runs(src.id, src.config,
                                          coalesce(src.config->>'default_branch', src.cursor->>'default_branch'),
                                          jsonb_build_array(body));
        IF task.stream = 'run' THEN
            PERFORM engineering._github_enqueue_attempts(src, jsonb_build_array(body));
        END IF;
        RETURN n;
    WHEN 'deployments', 'pulls' THEN
        RETURN engineering._github_ingest_listing(src, task, headers, body);
    WHEN 'deployment_statuses' THEN
        dep_id := engineering._github_map_deployment(src.id, src.config, task.payload->'deployment', body);
        RETURN CASE WHEN dep_id IS NULL THEN 0 ELSE 1 END;
    WHEN 'pull_commits' THEN
        n := engineering._github_map_pull_commits(src.id, (task.payload->>'number')::integer, body);
        next_url := engineering._link_next(headers->>'link');
        IF next_url IS NOT NULL THEN
            PERFORM engineering._enqueue(src.id, task.stream, next_url, task.payload);
        END IF;
        RETURN n;
    WHEN 'compare' THEN
        dep_id := (task.payload->>'deployment_id')::bigint;
        -- a newer decision about this deployment's base supersedes this compare
        IF NOT EXISTS (SELECT 1 FROM engineering.deployments d
                       WHERE d.id = dep_id AND d.attributes->>'compare_base' = task.payload->>'base') THEN
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'commits') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected GitHub response: no commits array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := engineering._github_map_compare(src.id, src.config, dep_id, body->'commits');
        next_url := engineering._link_next(headers->>'link');
        IF next_url IS NOT NULL THEN
            PERFORM engineering._enqueue(src.id, task.stream, next_url, task.payload);
        END IF;
        RETURN n;
    ELSE
        RAISE EXCEPTION 'unknown GitHub stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._github_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one GitHub response to rows, queues follow-up requests and advances the cursor; returns rows changed';
