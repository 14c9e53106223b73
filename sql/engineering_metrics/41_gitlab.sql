-- engineering_metrics: the GitLab connector (REST API v4; README "Connectors >
-- GitLab", https://docs.gitlab.com/ee/api/rest/).
--
-- Streams (sync_tasks.stream) and what they feed:
--   pipelines       GET /projects/:id/pipelines?updated_after=..&order_by=updated_at&sort=asc
--                   (slim items): queues the detail of every pipeline that changed
--   pipeline        GET /projects/:id/pipelines/:pipeline_id: pipeline_runs
--   deployments     GET /projects/:id/deployments?updated_after=..&order_by=updated_at&sort=asc:
--                   deployments (environment kept)
--   merge_requests  GET /projects/:id/merge_requests?state=merged&updated_after=..: pull_requests
--   mr_commits      GET /projects/:id/merge_requests/:iid/commits: first_commit_at
--   compare         GET /projects/:id/repository/compare?from=prev&to=sha: changes and
--                   deployment_changes of each successful deployment
--
-- The three lists are read in updated_at order and re-anchored on every
-- page: the next request asks for items updated after the newest one just
-- read (less a millisecond, so that equal times are read twice rather than
-- never), instead of asking for page 2 of a list that items leave and join
-- while it is read.  Only a page whose items all share one millisecond
-- falls back to x-next-page.  Records still in progress (a running
-- pipeline, a deployment not finished yet) need no re-fetch by id: GitLab
-- bumps updated_at on every status change, so the next sync lists them
-- again.
--
-- Watermarks in sources.cursor (UTC, milliseconds): pipelines_updated,
-- deployments_updated, merge_requests_updated, advanced with every page.
-- The JSON-to-row mapping lives in the _gitlab_map_* functions so that
-- pg_regress can test it with fixtures (sql/gitlab.sql).

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._gitlab_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    project text := CASE jsonb_typeof(config->'project')
                        WHEN 'string' THEN config->>'project'
                        WHEN 'number' THEN config->>'project' END;
BEGIN
    IF project IS NULL
       OR (project !~ '^[1-9][0-9]{0,18}$'
           AND (project !~ '^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$'
                OR project ~ '(^|/)\.\.?(/|$)')) THEN
        RAISE EXCEPTION 'a gitlab source needs config project as "group/name" (subgroups allowed) or a numeric project id'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"project": "acme/platform/shop"} or {"project": 4242, "service": "shop"}.';
    END IF;
    IF project ~ '^[0-9]+$' AND NOT config ? 'service' THEN
        RAISE EXCEPTION 'a gitlab source with a numeric project id needs config service'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Without a path there is no project name to name the service after; add "service": "...".';
    END IF;
    IF config ? 'lookback' THEN
        BEGIN
            IF (config->>'lookback')::interval < interval '0' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
            END IF;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'config lookback must be a non-negative interval such as "5 minutes"'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_validate(jsonb) IS
    'checks a gitlab source''s config: project "group/name" or a numeric id (then service is required); optional service, service_map, since, lookback';

CREATE FUNCTION engineering._gitlab_project_url(config jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '/projects/' || engineering._urlencode(config->>'project');
COMMENT ON FUNCTION engineering._gitlab_project_url(jsonb) IS
    'the API path of a gitlab source''s project: /projects/ and the id or the URL-encoded path (group%2Fname)';

CREATE FUNCTION engineering._gitlab_service(config jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN engineering._map_service(config, regexp_replace(config->>'project', '^.*/', ''));
COMMENT ON FUNCTION engineering._gitlab_service(jsonb) IS
    'service of a gitlab source: config service (or service_map of the project name), else the project name (last path segment)';

CREATE FUNCTION engineering._gitlab_sha(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN lower(value) ~ '^[0-9a-f]{7,64}$' AND value !~ '^0+$' THEN lower(value) END;
COMMENT ON FUNCTION engineering._gitlab_sha(text) IS
    'a commit sha as stored (lowercase hexadecimal), NULL when the value is not one or is GitLab''s all-zero "no commit"';

CREATE FUNCTION engineering._gitlab_iso_ms(ts timestamptz)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN to_char(date_trunc('milliseconds', ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
COMMENT ON FUNCTION engineering._gitlab_iso_ms(timestamptz) IS
    'a time as ISO 8601 in UTC with milliseconds (GitLab''s precision), for query strings and the cursor';

CREATE FUNCTION engineering._gitlab_pipeline_status(status text, finished boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN status = 'success' THEN 'success'
    WHEN status = 'failed' THEN 'failure'
    WHEN status IN ('canceled', 'cancelled') THEN 'cancelled'
    WHEN status = 'skipped' THEN 'skipped'
    WHEN status IN ('running', 'canceling') THEN 'running'
    WHEN status IN ('created', 'waiting_for_resource', 'preparing', 'pending', 'scheduled', 'manual',
                    'waiting_for_callback') THEN 'queued'
    WHEN finished THEN 'failure'
    ELSE 'running' END;
COMMENT ON FUNCTION engineering._gitlab_pipeline_status(text, boolean) IS
    'pipeline_runs.status of a GitLab pipeline status; an unknown status is failure once the pipeline has finished_at, else running';

CREATE FUNCTION engineering._gitlab_deployment_status(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN status = 'success' THEN 'success'
    WHEN status = 'failed' THEN 'failure'
    WHEN status IN ('canceled', 'cancelled', 'skipped') THEN 'cancelled'
    ELSE 'running' END;
COMMENT ON FUNCTION engineering._gitlab_deployment_status(text) IS
    'deployments.status of a GitLab deployment status: created, running, blocked and unknown ones are running (listed again when they change)';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/gitlab.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._gitlab_map_pipelines(src_id integer, config jsonb, pipelines jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
    service text := engineering._gitlab_service(config);
BEGIN
    IF jsonb_typeof(pipelines) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab pipelines, got %', coalesce(jsonb_typeof(pipelines), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT p->>'id' AS external_id, o,
                   coalesce(nullif(btrim(p->>'name'), ''),
                            substring(p->>'web_url' FROM '^https?://[^/]+/(.+)/-/pipelines/[0-9]+$'),
                            config->>'project') AS pipeline,
                   p->>'ref' AS branch, engineering._gitlab_sha(p->>'sha') AS commit_sha,
                   p->>'source' AS event, st.status, t.queued, t.started,
                   CASE WHEN st.status IN ('success', 'failure', 'cancelled', 'skipped')
                        THEN greatest(coalesce(t.finished, t.started + make_interval(secs => t.duration),
                                               t.updated, t.started, t.queued),
                                      t.started, t.queued) END AS finished,
                   p->>'web_url' AS url,
                   jsonb_strip_nulls(jsonb_build_object(
                       'pipeline_id', p->'id', 'iid', p->'iid', 'gitlab_status', p->'status',
                       'duration', p->'duration', 'queued_duration', p->'queued_duration',
                       'before_sha', p->'before_sha', 'tag', p->'tag', 'user', p->'user'->'username',
                       'updated_at', p->'updated_at',
                       'detailed_status', p->'detailed_status'->'group')) AS attributes
            FROM jsonb_array_elements(pipelines) WITH ORDINALITY AS e(p, o),
                 LATERAL (SELECT engineering._ts(p->'created_at') AS created,
                                 engineering._ts(p->'started_at') AS started0,
                                 engineering._ts(p->'finished_at') AS finished,
                                 engineering._ts(p->'updated_at') AS updated,
                                 CASE WHEN jsonb_typeof(p->'duration') = 'number'
                                      THEN greatest((p->>'duration')::double precision, 0) END AS duration) t0,
                 LATERAL (SELECT t0.created AS queued,
                                 CASE WHEN t0.started0 IS NOT NULL
                                      THEN greatest(t0.started0, t0.created) END AS started,
                                 t0.finished, t0.updated, t0.duration) t,
                 LATERAL (SELECT engineering._gitlab_pipeline_status(p->>'status', t0.finished IS NOT NULL) AS status) st
            WHERE jsonb_typeof(p) = 'object' AND p->>'id' ~ '^[0-9]{1,18}$'
              AND (t.queued IS NOT NULL OR t.started IS NOT NULL)
        ) x
        ORDER BY external_id, o)
    SELECT engineering._upsert_pipeline_runs(array_agg(ROW(
               NULL, src_id, m.external_id, service, m.pipeline, m.branch, m.commit_sha, m.event, m.status,
               m.queued, m.started, m.finished, 1, m.url, m.attributes)::engineering.pipeline_runs))
    INTO n
    FROM m;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_pipelines(integer, jsonb, jsonb) IS
    'upserts GitLab pipelines (the single-pipeline shape, with started_at/finished_at) as pipeline_runs keyed by pipeline id; returns the rows changed';

CREATE FUNCTION engineering._gitlab_map_deployments(src_id integer, config jsonb, deployments jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
    newly_successful bigint[];
    service text := engineering._gitlab_service(config);
BEGIN
    IF jsonb_typeof(deployments) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab deployments, got %', coalesce(jsonb_typeof(deployments), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH m AS (
        SELECT DISTINCT ON (external_id) *
        FROM (
            SELECT d->>'id' AS external_id, o,
                   coalesce(nullif(btrim(d->'environment'->>'name'), ''), 'production') AS environment,
                   engineering._gitlab_sha(d->>'sha') AS commit_sha, st.status, t.started,
                   -- the deployment job's end is the deploy time; a deployment
                   -- updated by the API without a job ends at its last update
                   CASE WHEN st.status <> 'running'
                        THEN greatest(coalesce(t.job_finished, t.updated), t.started) END AS finished,
                   coalesce(d->'deployable'->>'web_url', d->'deployable'->'pipeline'->>'web_url') AS url,
                   jsonb_strip_nulls(jsonb_build_object(
                       'deployment_id', d->'id', 'iid', d->'iid', 'ref', d->'ref', 'gitlab_status', d->'status',
                       'environment_id', d->'environment'->'id', 'external_url', d->'environment'->'external_url',
                       'job_id', d->'deployable'->'id', 'job_name', d->'deployable'->'name',
                       'pipeline_id', d->'deployable'->'pipeline'->'id', 'user', d->'user'->'username',
                       'updated_at', d->'updated_at')) AS attributes
            FROM jsonb_array_elements(deployments) WITH ORDINALITY AS e(d, o),
                 LATERAL (SELECT coalesce(engineering._ts(d->'deployable'->'started_at'),
                                          engineering._ts(d->'created_at')) AS started,
                                 engineering._ts(d->'deployable'->'finished_at') AS job_finished,
                                 engineering._ts(d->'updated_at') AS updated) t,
                 LATERAL (SELECT engineering._gitlab_deployment_status(d->>'status') AS status) st
            WHERE jsonb_typeof(d) = 'object' AND d->>'id' ~ '^[0-9]{1,18}$'
              AND (st.status = 'running' OR coalesce(t.job_finished, t.updated) IS NOT NULL)
        ) x
        ORDER BY external_id, o)
    SELECT count(*), array_agg(u.id ORDER BY u.id) FILTER (WHERE u.status = 'success' AND NOT u.compare_decided)
    INTO n, newly_successful
    FROM engineering._upsert_deployments((
             SELECT array_agg(ROW(NULL, src_id, m.external_id, service, m.environment, m.commit_sha,
                                  m.started, m.finished, m.status, m.url, m.attributes)::engineering.deployments)
             FROM m)) u;

    IF newly_successful IS NOT NULL THEN
        PERFORM engineering._gitlab_link(src_id, config, newly_successful);
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_deployments(integer, jsonb, jsonb) IS
    'upserts GitLab deployments (environment name kept; deploy time = the deployment job''s finished_at) and queues the compare of new successes; returns the rows changed';

CREATE FUNCTION engineering._gitlab_map_merge_requests(src_id integer, config jsonb, merge_requests jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(merge_requests) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab merge requests' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH items AS (
        SELECT DISTINCT ON (iid) *
        FROM (SELECT (m->>'iid')::integer AS iid, m, o,
                     engineering._ts(m->'created_at') AS opened,
                     -- merge requests merged before GitLab recorded merged_at
                     -- have none: their last update is the best estimate
                     coalesce(engineering._ts(m->'merged_at'), engineering._ts(m->'updated_at')) AS merged,
                     m->'merged_at' IS NULL OR m->'merged_at' = 'null' AS estimated
              FROM jsonb_array_elements(merge_requests) WITH ORDINALITY AS e(m, o)
              WHERE jsonb_typeof(m) = 'object' AND m->>'iid' ~ '^[1-9][0-9]{0,8}$'
                AND m->>'state' = 'merged') x
        WHERE opened IS NOT NULL AND merged IS NOT NULL
        ORDER BY iid, o)
    SELECT engineering._upsert_pull_requests(array_agg(ROW(
               NULL, src_id, iid::text, engineering._gitlab_service(config), iid, m->>'title',
               m->'author'->>'username', opened, NULL, greatest(merged, opened),
               coalesce(engineering._gitlab_sha(m->>'merge_commit_sha'),
                        engineering._gitlab_sha(m->>'squash_commit_sha'),
                        engineering._gitlab_sha(m->>'sha')),
               jsonb_strip_nulls(jsonb_build_object(
                   'gitlab_id', m->'id', 'target_branch', m->'target_branch', 'source_branch', m->'source_branch',
                   'head_sha', m->'sha', 'squash_commit_sha', m->'squash_commit_sha',
                   'merged_by', coalesce(m->'merge_user'->'username', m->'merged_by'->'username'),
                   'updated_at', m->'updated_at', 'web_url', m->'web_url',
                   'merged_at_estimated', CASE WHEN estimated THEN true END))
           )::engineering.pull_requests))
    INTO n
    FROM items;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_merge_requests(integer, jsonb, jsonb) IS
    'upserts merged GitLab merge requests as pull_requests (number = iid; landed commit = merge, squash or head sha); returns the rows changed';

CREATE FUNCTION engineering._gitlab_map_mr_commits(src_id integer, iid integer, commits jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    earliest timestamptz;
BEGIN
    IF jsonb_typeof(commits) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab commits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT min(coalesce(engineering._ts(c->'authored_date'), engineering._ts(c->'committed_date'),
                        engineering._ts(c->'created_at')))
    INTO earliest FROM jsonb_array_elements(commits) c WHERE jsonb_typeof(c) = 'object';
    RETURN engineering._record_first_commit(src_id, _gitlab_map_mr_commits.iid::text, earliest);
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_mr_commits(integer, integer, jsonb) IS
    'sets a merge request''s first_commit_at to the earliest author date among its commits (one page at a time)';

CREATE FUNCTION engineering._gitlab_map_compare(src_id integer, config jsonb, deployment_id bigint, commits jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(commits) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of GitLab commits' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN engineering._record_shipped_changes(src_id, engineering._gitlab_service(config), deployment_id,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'sha', engineering._gitlab_sha(c->>'id'),
                    'authored_at', engineering._ts(c->'authored_date'),
                    'committed_at', coalesce(engineering._ts(c->'committed_date'), engineering._ts(c->'created_at'),
                                             engineering._ts(c->'authored_date')),
                    'author', c->>'author_name',
                    'title', coalesce(nullif(c->>'title', ''), split_part(c->>'message', E'\n', 1)),
                    'attributes', jsonb_strip_nulls(jsonb_build_object('web_url', c->'web_url',
                                                                       'committer', c->'committer_name',
                                                                       'author_email', c->'author_email')))),
                         '[]')
         FROM jsonb_array_elements(commits) c WHERE jsonb_typeof(c) = 'object'));
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_map_compare(integer, jsonb, bigint, jsonb) IS
    'upserts the commits of a compare as changes and links them to the deployment that shipped them; returns rows changed';

------------------------------------------------------------------------------
-- Linking deployments to the commits they shipped
------------------------------------------------------------------------------

CREATE FUNCTION engineering._gitlab_link(src_id integer, config jsonb, dep_ids bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    PERFORM engineering._enqueue(src_id, 'compare',
        engineering._gitlab_project_url(config) || '/repository/compare?from=' || c.base || '&to=' || c.head,
        jsonb_build_object('deployment_id', c.deployment_id, 'base', c.base, 'missing_ok', true))
    FROM engineering._compares_to_fetch(src_id, dep_ids) c;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_link(integer, jsonb, bigint[]) IS
    'after deployments became successful: queues the compares that record what they (and the next success of each environment) shipped';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._gitlab_list_url(config jsonb, stream text, after timestamptz, page integer)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN engineering._gitlab_project_url(config)
    || CASE stream
         WHEN 'pipelines' THEN '/pipelines?created_after='
             || engineering._urlencode(engineering._gitlab_iso_ms(engineering._since(config))) || '&'
         WHEN 'deployments' THEN '/deployments?'
         WHEN 'merge_requests' THEN '/merge_requests?state=merged&'
       END
    || 'updated_after=' || engineering._urlencode(engineering._gitlab_iso_ms(after))
    || '&order_by=updated_at&sort=asc&per_page=100'
    || CASE WHEN page > 1 THEN '&page=' || page ELSE '' END;
COMMENT ON FUNCTION engineering._gitlab_list_url(jsonb, text, timestamptz, integer) IS
    'the request for a page of pipelines, deployments or merged merge requests updated after a time, oldest update first';

CREATE FUNCTION engineering._gitlab_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    since timestamptz := engineering._since(src.config);
    lookback interval := coalesce((src.config->>'lookback')::interval, interval '5 minutes');
    stream text;
    after timestamptz;
BEGIN
    -- Each list starts a little before its watermark: an item committed
    -- just before the last sync read the list may only have become
    -- visible after it.  What is read twice changes nothing.
    FOREACH stream IN ARRAY ARRAY['pipelines', 'deployments', 'merge_requests'] LOOP
        after := greatest(since, engineering._ts(src.cursor->(stream || '_updated')) - lookback);
        PERFORM engineering._enqueue(src.id, stream, engineering._gitlab_list_url(src.config, stream, after, 1),
            jsonb_build_object('after', engineering._gitlab_iso_ms(after), 'page', 1));
    END LOOP;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_plan(engineering.sources) IS
    'connector interface: queues the first page of pipelines, deployments and merged merge requests updated since each watermark';

CREATE FUNCTION engineering._gitlab_ingest_list(src engineering.sources, task engineering.sync_tasks,
                                                headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    proj text := engineering._gitlab_project_url(src.config);
    since timestamptz := engineering._since(src.config);
    after timestamptz := engineering._ts(task.payload->'after');
    page integer := coalesce((task.payload->>'page')::integer, 1);
    items jsonb;
    newest timestamptz;
    more boolean;
    next_after timestamptz;
    n bigint := 0;
BEGIN
    IF jsonb_typeof(body) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected GitLab response: expected a JSON array of %', task.stream
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(i ORDER BY o), '[]'), max(engineering._ts(i->'updated_at'))
    INTO items, newest
    FROM jsonb_array_elements(body) WITH ORDINALITY AS e(i, o)
    WHERE jsonb_typeof(i) = 'object';

    CASE task.stream
    WHEN 'pipelines' THEN
        -- the list is slim: fetch the detail of what changed since it was stored
        INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
        SELECT src.id, 'pipeline', proj || '/pipelines/' || (i->>'id'), '{"missing_ok": true}'
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
        WHERE i->>'id' ~ '^[0-9]{1,18}$'
          AND NOT EXISTS (SELECT 1 FROM engineering.pipeline_runs r
                          WHERE r.source_id = src.id AND r.external_id = i->>'id'
                            AND engineering._ts(r.attributes->'updated_at') = engineering._ts(i->'updated_at'))
        ORDER BY o;
    WHEN 'deployments' THEN
        n := engineering._gitlab_map_deployments(src.id, src.config,
            (SELECT coalesce(jsonb_agg(i), '[]') FROM jsonb_array_elements(items) i
             WHERE engineering._ts(i->'created_at') >= since));
    WHEN 'merge_requests' THEN
        n := engineering._gitlab_map_merge_requests(src.id, src.config,
            (SELECT coalesce(jsonb_agg(i), '[]') FROM jsonb_array_elements(items) i
             WHERE coalesce(engineering._ts(i->'merged_at'), engineering._ts(i->'updated_at')) >= since));
        INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
        SELECT src.id, 'mr_commits', proj || '/merge_requests/' || pr.number || '/commits?per_page=100',
               jsonb_build_object('iid', pr.number, 'missing_ok', true)
        FROM engineering.pull_requests pr
        WHERE pr.source_id = src.id
          AND pr.external_id IN (SELECT i->>'iid' FROM jsonb_array_elements(items) i)
          AND NOT pr.attributes ? 'commits_fetched'
        ORDER BY pr.number;
    END CASE;

    -- More to read?  x-next-page is empty on the last page; behind a proxy
    -- that drops it, Link rel="next" or a full page says the same.
    more := CASE WHEN headers ? 'x-next-page' THEN coalesce(headers->>'x-next-page', '') <> ''
                 WHEN headers ? 'link' THEN engineering._link_next(headers->>'link') IS NOT NULL
                 ELSE jsonb_array_length(body) >= 100 END;
    IF more AND newest IS NOT NULL THEN
        next_after := date_trunc('milliseconds', newest) - interval '1 millisecond';
        IF next_after > after THEN
            PERFORM engineering._enqueue(src.id, task.stream,
                engineering._gitlab_list_url(src.config, task.stream, next_after, 1),
                jsonb_build_object('after', engineering._gitlab_iso_ms(next_after), 'page', 1));
        ELSE
            -- a whole page updated within one millisecond: only offsets move on
            PERFORM engineering._enqueue(src.id, task.stream,
                engineering._gitlab_list_url(src.config, task.stream, after, page + 1),
                jsonb_build_object('after', task.payload->'after', 'page', page + 1));
        END IF;
    END IF;

    -- Everything up to the newest update read is either stored or queued.
    UPDATE engineering.sources
    SET cursor = cursor || jsonb_build_object(task.stream || '_updated', engineering._gitlab_iso_ms(newest))
    WHERE id = src.id AND newest IS NOT NULL
      AND (engineering._ts(cursor->(task.stream || '_updated')) IS NULL
           OR engineering._ts(cursor->(task.stream || '_updated')) < newest);
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_ingest_list(engineering.sources, engineering.sync_tasks, jsonb, jsonb) IS
    'a page of pipelines, deployments or merge requests (oldest update first): maps or queues it, queues the page after the newest update read, advances the watermark';

CREATE FUNCTION engineering._gitlab_ingest(src engineering.sources, task engineering.sync_tasks,
                                           status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    proj text := engineering._gitlab_project_url(src.config);
    dep_id bigint;
    n bigint;
    next_page text := headers->>'x-next-page';
BEGIN
    CASE task.stream
    WHEN 'pipelines', 'deployments', 'merge_requests' THEN
        RETURN engineering._gitlab_ingest_list(src, task, headers, body);
    WHEN 'pipeline' THEN
        IF body IS NULL THEN
            -- deleted in GitLab (404): the API no longer holds it, nor do we
            DELETE FROM engineering.pipeline_runs
            WHERE source_id = src.id AND external_id = regexp_replace(task.url, '^.*/', '');
            GET DIAGNOSTICS n = ROW_COUNT;
            RETURN n;
        END IF;
        IF jsonb_typeof(body) IS DISTINCT FROM 'object' OR body->>'id' !~ '^[0-9]{1,18}$' THEN
            RAISE EXCEPTION 'unexpected GitLab response: expected a pipeline object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN engineering._gitlab_map_pipelines(src.id, src.config, jsonb_build_array(body));
    WHEN 'mr_commits' THEN
        IF body IS NULL THEN
            RETURN 0;       -- the merge request is gone
        END IF;
        n := engineering._gitlab_map_mr_commits(src.id, (task.payload->>'iid')::integer, body);
        IF next_page ~ '^[0-9]{1,6}$' THEN
            PERFORM engineering._enqueue(src.id, task.stream,
                proj || '/merge_requests/' || (task.payload->>'iid') || '/commits?per_page=100&page=' || next_page,
                task.payload);
        END IF;
        RETURN n;
    WHEN 'compare' THEN
        dep_id := (task.payload->>'deployment_id')::bigint;
        -- a newer decision about this deployment's base supersedes this compare
        IF body IS NULL OR NOT EXISTS (SELECT 1 FROM engineering.deployments d
                                       WHERE d.id = dep_id AND d.attributes->>'compare_base' = task.payload->>'base') THEN
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'commits') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected GitLab response: no commits array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN engineering._gitlab_map_compare(src.id, src.config, dep_id, body->'commits');
    ELSE
        RAISE EXCEPTION 'unknown GitLab stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._gitlab_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one GitLab response to rows, queues follow-up requests and advances the cursor; returns rows changed';
