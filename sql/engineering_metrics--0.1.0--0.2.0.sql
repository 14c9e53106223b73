-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 13: GitHub's rate-limit rule (a reset counts only when its quota is spent)
DROP FUNCTION engineering._backoff_seconds(boolean, text, text, text, timestamptz, integer);
CREATE FUNCTION engineering._backoff_seconds(rate_limited boolean, retry_after text,
                                             x_ratelimit_reset text, x_ratelimit_remaining text,
                                             ratelimit_reset text, ratelimit_remaining text,
                                             at timestamptz, failures integer)
RETURNS bigint
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_backoff_seconds';
COMMENT ON FUNCTION engineering._backoff_seconds(boolean, text, text, text, text, text, timestamptz, integer) IS
    'the engine''s backoff in seconds: Retry-After, then a reset whose remaining count is 0 or absent (x-ratelimit-reset, then ratelimit-reset; below 10^9 a delta, else epoch), else exponential from 60 s';

-- issue 18: an item repeated on one page is written once (its last copy)
CREATE OR REPLACE FUNCTION engineering._upsert_pipeline_runs(runs engineering.pipeline_runs[],
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

CREATE OR REPLACE FUNCTION engineering._upsert_deployments(deployments engineering.deployments[],
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

CREATE OR REPLACE FUNCTION engineering._upsert_pull_requests(pulls engineering.pull_requests[])
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

-- issue 19: one list of vendor kinds, the connector table in src/connectors.c
CREATE FUNCTION engineering._connector_kinds()
RETURNS text[]
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_kinds';
COMMENT ON FUNCTION engineering._connector_kinds() IS
    'internal: the kinds of source this build has a connector for (src/connectors.c), the one list of valid sources.kind values';

CREATE FUNCTION engineering._connector_kind_list()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_kind_list';
COMMENT ON FUNCTION engineering._connector_kind_list() IS
    'internal: the kinds of _connector_kinds() as an English list ("github, gitlab or jenkins"), for error hints';

ALTER TABLE engineering.sources
    DROP CONSTRAINT sources_kind_check,
    ADD CONSTRAINT sources_kind_check
        CHECK (kind = ANY (engineering._connector_kinds())
               OR engineering._reject_value('sources.kind', kind, 'expected ' || engineering._connector_kind_list()));
COMMENT ON COLUMN engineering.sources.kind IS 'connector: one of engineering._connector_kinds() (github, gitlab, ...)';

CREATE OR REPLACE FUNCTION engineering._validate_source(kind text, base_url text, config jsonb)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF kind IS NULL OR NOT kind = ANY (engineering._connector_kinds()) THEN
        RAISE EXCEPTION 'invalid source kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Expected ' || engineering._connector_kind_list() || '.';
    END IF;
    PERFORM engineering._validate_source_config(kind, coalesce(config, '{}'));
    RETURN engineering._normalize_base_url(kind, base_url);
END;
$$;
COMMENT ON FUNCTION engineering._validate_source(text, text, jsonb) IS
    'validates kind, base_url and config of a source for add_source() and alter_source(); returns the base_url to store';
