-- engineering_metrics: what a deployment shipped, as the connectors that
-- can compare two commits (GitHub, GitLab) record it.
--
-- Both vendors answer "which commits lie between the previous successful
-- deployment's head and this one's", in different JSON.  The connector maps
-- its JSON to a neutral list of commits; what follows is the same for every
-- vendor: choosing which earlier deployment a deployment is compared with,
-- and turning a compare into changes and deployment_changes links.

CREATE FUNCTION engineering._choose_compare_base(dep_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    d engineering.deployments;
    base text;
BEGIN
    SELECT * INTO d FROM engineering.deployments WHERE id = dep_id;
    IF NOT FOUND OR d.status <> 'success' THEN
        RETURN NULL;
    END IF;
    -- the latest earlier success of the same source, service and environment
    SELECT p.commit_sha INTO base
    FROM engineering.deployments p
    WHERE p.source_id = d.source_id AND p.service = d.service AND p.environment = d.environment
      AND p.status = 'success' AND p.commit_sha IS NOT NULL
      AND (p.finished_at, p.id) < (d.finished_at, d.id)
    ORDER BY p.finished_at DESC, p.id DESC
    LIMIT 1;
    IF d.attributes ? 'compare_base' AND (d.attributes->>'compare_base') IS NOT DISTINCT FROM base THEN
        RETURN NULL;
    END IF;
    -- A new base (an earlier deployment arrived late, or this one became a
    -- success) makes the old links wrong: drop them until the new compare.
    UPDATE engineering.deployments SET attributes = attributes || jsonb_build_object('compare_base', base)
    WHERE id = dep_id;
    DELETE FROM engineering.deployment_changes WHERE deployment_id = dep_id AND linked_by = 'connector';
    -- The first deployment of an environment has no previous one: it
    -- records nothing rather than the repository's whole history.
    IF base IS NOT NULL AND d.commit_sha IS NOT NULL AND base <> d.commit_sha THEN
        RETURN base;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION engineering._choose_compare_base(bigint) IS
    'records which earlier successful deployment (same source, service, environment) a deployment is compared with in attributes.compare_base, drops its connector links when that changed, and returns the base commit to compare from (NULL: nothing to fetch)';

CREATE FUNCTION engineering._compares_to_fetch(src_id integer, dep_ids bigint[])
RETURNS TABLE (deployment_id bigint, base text, head text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    d record;
    nxt bigint;
    chosen text;
BEGIN
    -- Deployments arrive out of order (newest first, or by update), so a
    -- new success may also become the base of the success after it.
    FOR d IN SELECT x.id, x.service, x.environment, x.finished_at FROM engineering.deployments x
             WHERE x.id = ANY(dep_ids) AND x.status = 'success' ORDER BY x.finished_at, x.id
    LOOP
        SELECT n.id INTO nxt FROM engineering.deployments n
        WHERE n.source_id = src_id AND n.service = d.service AND n.environment = d.environment
          AND n.status = 'success' AND (n.finished_at, n.id) > (d.finished_at, d.id)
        ORDER BY n.finished_at, n.id LIMIT 1;
        FOREACH deployment_id IN ARRAY CASE WHEN nxt IS NULL THEN ARRAY[d.id] ELSE ARRAY[d.id, nxt] END
        LOOP
            chosen := engineering._choose_compare_base(deployment_id);
            IF chosen IS NOT NULL THEN
                base := chosen;
                SELECT x.commit_sha INTO head FROM engineering.deployments x WHERE x.id = deployment_id;
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION engineering._compares_to_fetch(integer, bigint[]) IS
    'after deployments of a source became successful: (re)decides their compare bases and that of the next success of each environment, and returns the compares to fetch (deployment, base commit, head commit)';

CREATE FUNCTION engineering._record_shipped_changes(src_id integer, service text, deployment_id bigint,
                                                    commits jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n_changes bigint;
    n_links bigint;
BEGIN
    -- commits: [{sha, authored_at, committed_at, author, title, attributes}]
    WITH items AS (
        SELECT DISTINCT ON (x.sha) x.*
        FROM jsonb_to_recordset(commits) AS x(sha text, authored_at timestamptz, committed_at timestamptz,
                                              author text, title text, attributes jsonb)
        WHERE x.sha IS NOT NULL AND x.committed_at IS NOT NULL
        ORDER BY x.sha),
    up AS (
        INSERT INTO engineering.changes AS ch
            (source_id, external_id, service, commit_sha, authored_at, committed_at, author, title, attributes)
        SELECT src_id, i.sha, _record_shipped_changes.service, i.sha, i.authored_at, i.committed_at,
               i.author, i.title, coalesce(i.attributes, '{}')
        FROM items i
        ON CONFLICT (source_id, external_id) DO UPDATE SET
            service = EXCLUDED.service,
            authored_at = EXCLUDED.authored_at, committed_at = EXCLUDED.committed_at,
            author = EXCLUDED.author, title = EXCLUDED.title, attributes = ch.attributes || EXCLUDED.attributes
        WHERE (ch.service, ch.authored_at, ch.committed_at, ch.author, ch.title)
              IS DISTINCT FROM (EXCLUDED.service, EXCLUDED.authored_at, EXCLUDED.committed_at, EXCLUDED.author,
                                EXCLUDED.title)
        RETURNING 1)
    SELECT count(*) INTO n_changes FROM up;

    -- every commit of the compare, also one stored by an earlier page or sync
    WITH links AS (
        INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
        SELECT _record_shipped_changes.deployment_id, ch.id, 'connector'
        FROM engineering.changes ch
        WHERE ch.source_id = src_id
          AND ch.external_id IN (SELECT c->>'sha' FROM jsonb_array_elements(commits) c)
        ON CONFLICT DO NOTHING
        RETURNING 1)
    SELECT count(*) INTO n_links FROM links;
    RETURN n_changes + n_links;
END;
$$;
COMMENT ON FUNCTION engineering._record_shipped_changes(integer, text, bigint, jsonb) IS
    'upserts the commits of a compare (a neutral JSON array of {sha, authored_at, committed_at, author, title, attributes}) as changes and links them to the deployment that shipped them (linked_by connector); returns rows changed';
