-- engineering_metrics: the one rule by which every connector writes a
-- synced pipeline run, deployment, pull request (and a pull request's
-- first commit) or incident.
--
-- A connector maps its vendor's JSON to rows of the event table and hands
-- them over here.  Keeping the upsert in one place keeps the rule the same
-- for every vendor: rows are keyed by (source_id, external_id); a row is
-- rewritten only when something in it changed, so that "rows changed"
-- counts real changes and an unchanged page leaves no dead tuples; the
-- attributes merge, so that keys written by other steps (compare_base,
-- commits_fetched) survive a refresh, less the keys the caller names as
-- made stale by a fresh copy (Jenkins' mark of a build it lost); and rows
-- are written in external_id order, so that two sessions syncing the same
-- source lock rows in the same order and never deadlock.  An item given
-- twice (a server that repeats one on a page) is written once, from its
-- last copy: ON CONFLICT cannot touch a row twice in one statement.  Columns other
-- steps own (id, first_commit_at, cause_deployment_id, cause_inferred) are
-- never taken from the rows given.

CREATE FUNCTION engineering._upsert_pipeline_runs(runs engineering.pipeline_runs[],
                                                  cleared_keys text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
WITH up AS (
    INSERT INTO engineering.pipeline_runs AS p
        (source_id, external_id, service, pipeline, branch, commit_sha, event, status,
         queued_at, started_at, finished_at, attempt, url, attributes)
    SELECT r.source_id, r.external_id, r.service, r.pipeline, r.branch, r.commit_sha, r.event, r.status,
           r.queued_at, r.started_at, r.finished_at, coalesce(r.attempt, 1), r.url, coalesce(r.attributes, '{}')
    FROM (SELECT DISTINCT ON (u.source_id, u.external_id) u.*
          FROM unnest(runs) WITH ORDINALITY u
          ORDER BY u.source_id, u.external_id, u.ordinality DESC) r
    ORDER BY r.external_id
    ON CONFLICT (source_id, external_id) DO UPDATE SET
        service = EXCLUDED.service, pipeline = EXCLUDED.pipeline, branch = EXCLUDED.branch,
        commit_sha = EXCLUDED.commit_sha, event = EXCLUDED.event, status = EXCLUDED.status,
        queued_at = EXCLUDED.queued_at, started_at = EXCLUDED.started_at,
        finished_at = EXCLUDED.finished_at, url = EXCLUDED.url,
        attributes = p.attributes - cleared_keys || EXCLUDED.attributes
    WHERE (p.service, p.pipeline, p.branch, p.commit_sha, p.event, p.status, p.queued_at,
           p.started_at, p.finished_at, p.url, p.attributes)
          IS DISTINCT FROM
          (EXCLUDED.service, EXCLUDED.pipeline, EXCLUDED.branch, EXCLUDED.commit_sha, EXCLUDED.event,
           EXCLUDED.status, EXCLUDED.queued_at, EXCLUDED.started_at, EXCLUDED.finished_at,
           EXCLUDED.url, p.attributes - cleared_keys || EXCLUDED.attributes)
    RETURNING 1)
SELECT count(*) FROM up;
$$;
COMMENT ON FUNCTION engineering._upsert_pipeline_runs(engineering.pipeline_runs[], text[]) IS
    'writes synced pipeline runs keyed by (source_id, external_id), rewriting a row only when it changed (attributes merge, less cleared_keys, which a fresh copy makes stale; the attempt of a stored row is kept); returns the rows changed';

CREATE FUNCTION engineering._upsert_deployments(deployments engineering.deployments[],
                                                cleared_keys text[] DEFAULT '{}')
RETURNS TABLE (id bigint, status text, compare_decided boolean)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
INSERT INTO engineering.deployments AS d
    (source_id, external_id, service, environment, commit_sha, started_at, finished_at,
     status, url, attributes)
SELECT r.source_id, r.external_id, r.service, coalesce(r.environment, 'production'), r.commit_sha,
       r.started_at, r.finished_at, r.status, r.url, coalesce(r.attributes, '{}')
FROM (SELECT DISTINCT ON (u.source_id, u.external_id) u.*
      FROM unnest(deployments) WITH ORDINALITY u
      ORDER BY u.source_id, u.external_id, u.ordinality DESC) r
ORDER BY r.external_id
ON CONFLICT (source_id, external_id) DO UPDATE SET
    service = EXCLUDED.service, environment = EXCLUDED.environment, commit_sha = EXCLUDED.commit_sha,
    started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, status = EXCLUDED.status,
    url = EXCLUDED.url, attributes = d.attributes - cleared_keys || EXCLUDED.attributes
WHERE (d.service, d.environment, d.commit_sha, d.started_at, d.finished_at, d.status, d.url, d.attributes)
      IS DISTINCT FROM (EXCLUDED.service, EXCLUDED.environment, EXCLUDED.commit_sha, EXCLUDED.started_at,
                        EXCLUDED.finished_at, EXCLUDED.status, EXCLUDED.url,
                        d.attributes - cleared_keys || EXCLUDED.attributes)
RETURNING d.id, d.status, d.attributes ? 'compare_base';
$$;
COMMENT ON FUNCTION engineering._upsert_deployments(engineering.deployments[], text[]) IS
    'writes synced deployments keyed by (source_id, external_id), rewriting a row only when it changed (attributes merge, less cleared_keys, which a fresh copy makes stale); returns each changed row''s id, its status and whether a compare base was already chosen for it';

CREATE FUNCTION engineering._upsert_pull_requests(pulls engineering.pull_requests[])
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
WITH up AS (
    INSERT INTO engineering.pull_requests AS pr
        (source_id, external_id, service, number, title, author, opened_at, merged_at,
         merge_commit_sha, attributes)
    SELECT r.source_id, r.external_id, r.service, r.number, r.title, r.author, r.opened_at, r.merged_at,
           r.merge_commit_sha, coalesce(r.attributes, '{}')
    FROM (SELECT DISTINCT ON (u.source_id, u.external_id) u.*
          FROM unnest(pulls) WITH ORDINALITY u
          ORDER BY u.source_id, u.external_id, u.ordinality DESC) r
    ORDER BY r.external_id
    ON CONFLICT (source_id, external_id) DO UPDATE SET
        service = EXCLUDED.service, title = EXCLUDED.title, author = EXCLUDED.author,
        opened_at = EXCLUDED.opened_at, merged_at = EXCLUDED.merged_at,
        merge_commit_sha = EXCLUDED.merge_commit_sha, attributes = pr.attributes || EXCLUDED.attributes
    WHERE (pr.service, pr.title, pr.author, pr.opened_at, pr.merged_at, pr.merge_commit_sha, pr.attributes)
          IS DISTINCT FROM (EXCLUDED.service, EXCLUDED.title, EXCLUDED.author, EXCLUDED.opened_at,
                            EXCLUDED.merged_at, EXCLUDED.merge_commit_sha, pr.attributes || EXCLUDED.attributes)
    RETURNING 1)
SELECT count(*) FROM up;
$$;
COMMENT ON FUNCTION engineering._upsert_pull_requests(engineering.pull_requests[]) IS
    'writes synced pull requests keyed by (source_id, external_id), rewriting a row only when it changed (attributes merge; first_commit_at, set from the commits, is kept); returns the rows changed';

CREATE FUNCTION engineering._record_first_commit(src_id integer, pull_external_id text, earliest timestamptz)
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
WITH up AS (
    UPDATE engineering.pull_requests pr
    SET first_commit_at = least(pr.first_commit_at, earliest),
        attributes = pr.attributes || '{"commits_fetched": true}'
    WHERE pr.source_id = src_id AND pr.external_id = pull_external_id
      -- least() skips NULLs: no earlier commit known, or none on this page
      AND (pr.first_commit_at IS DISTINCT FROM least(pr.first_commit_at, earliest)
           OR NOT pr.attributes ? 'commits_fetched')
    RETURNING 1)
SELECT count(*) FROM up;
$$;
COMMENT ON FUNCTION engineering._record_first_commit(integer, text, timestamptz) IS
    'moves a synced pull request''s first_commit_at back to earliest (a page of its commits may hold an earlier one; NULL changes nothing) and marks its commits fetched; returns the rows changed';

CREATE FUNCTION engineering._upsert_incidents(incidents engineering.incidents[],
                                              cleared_keys text[] DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
-- An incident's first acknowledgement only ever moves earlier: a vendor
-- shows current acknowledgements only (PagerDuty drops them on resolve), and
-- a better source (a log read later, a hand-set value) may already have
-- stored an earlier one.  acknowledged_by belongs to the acknowledgement
-- kept, so the stored one survives unless the given row's is earlier.
WITH up AS (
    INSERT INTO engineering.incidents AS p
        (source_id, external_id, service, title, severity, status, opened_at, acknowledged_at,
         resolved_at, attributes)
    SELECT r.source_id, r.external_id, r.service, r.title, r.severity, r.status, r.opened_at,
           CASE WHEN r.acknowledged_at IS NOT NULL THEN greatest(r.acknowledged_at, r.opened_at) END,
           r.resolved_at, coalesce(r.attributes, '{}')
    FROM unnest(incidents) r
    ORDER BY r.external_id
    ON CONFLICT (source_id, external_id) DO UPDATE SET
        service = EXCLUDED.service, title = EXCLUDED.title, severity = EXCLUDED.severity,
        status = EXCLUDED.status, opened_at = EXCLUDED.opened_at,
        acknowledged_at = CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                               THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at),
                                             EXCLUDED.opened_at) END,
        resolved_at = EXCLUDED.resolved_at,
        attributes = p.attributes - cleared_keys
            || CASE WHEN p.attributes ? 'acknowledged_by'
                         AND p.acknowledged_at <= coalesce(EXCLUDED.acknowledged_at, 'infinity')
                    THEN EXCLUDED.attributes - 'acknowledged_by' ELSE EXCLUDED.attributes END
    WHERE (p.service, p.title, p.severity, p.status, p.opened_at, p.acknowledged_at, p.resolved_at,
           p.attributes)
          IS DISTINCT FROM
          (EXCLUDED.service, EXCLUDED.title, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.opened_at,
           CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at), EXCLUDED.opened_at) END,
           EXCLUDED.resolved_at,
           p.attributes - cleared_keys
               || CASE WHEN p.attributes ? 'acknowledged_by'
                            AND p.acknowledged_at <= coalesce(EXCLUDED.acknowledged_at, 'infinity')
                       THEN EXCLUDED.attributes - 'acknowledged_by' ELSE EXCLUDED.attributes END)
    RETURNING 1)
SELECT count(*) FROM up;
$$;
COMMENT ON FUNCTION engineering._upsert_incidents(engineering.incidents[], text[]) IS
    'writes synced incidents keyed by (source_id, external_id), rewriting a row only when it changed (attributes merge, less cleared_keys, which a fresh copy makes stale; acknowledged_at only moves earlier, never before opened_at, and acknowledged_by follows it; cause_deployment_id and cause_inferred are kept); returns the rows changed';
