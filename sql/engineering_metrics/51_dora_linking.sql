-- engineering_metrics: DORA analytics, part 2: linking changes to the
-- deployments that shipped them, and incidents to the deployments that
-- caused them.
--
-- Both functions are set-based (one statement each, whatever the volume),
-- idempotent (a second run changes nothing), and never overwrite what a
-- connector or a person recorded: only rows they inferred themselves are
-- recomputed.  Each takes a transaction-scoped advisory lock so that two
-- runs (say the background worker and a user) do not interleave.

------------------------------------------------------------------------------
-- link_changes()
--
-- For each service and environment, successful deployments are taken in
-- order of finished_at.  A deployment's upper bound is the committed_at of
-- its head commit when that commit is a known change of the service (a
-- squash merge then still finds its commit), else its finished_at.  Its
-- lower bound is the highest upper bound of the earlier deployments of the
-- same service and environment, and never earlier than the service's first
-- recorded deployment (in any environment, of any status): history from
-- before the service was instrumented is never attributed, which is what
-- gives other tools their years-old lead times (the same rule holds for
-- links made any other way: _first_shipments ignores them when read).  A
-- deployment ships the
-- changes committed in (lower, upper].  Because the lower bound is a running
-- maximum, a rollback to an older head ships nothing and the next deployment
-- does not ship again what the rolled-back one shipped: each change lands on
-- its first successful deployment per environment.
--
-- Left alone: deployments whose connector recorded their changes (any link
-- with linked_by = 'connector'), and changes that a connector or a person
-- already linked to a deployment of that environment.  Inferred links that
-- no longer hold (a deployment was re-synced as failed, a late deployment
-- arrived, a connector recorded the real changes) are removed.
------------------------------------------------------------------------------
CREATE FUNCTION engineering.link_changes(service text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- (JIT compiling these one-off plans costs seconds and saves nothing)
SET jit = off
AS $$
DECLARE
    only_service text := service;
    added bigint;
    nestloop text := current_setting('enable_nestloop');
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('engineering.link_changes'));

    -- The links that should exist, in a temporary table so that the
    -- planner knows their number when it compares them with the links that
    -- do exist (there can be millions).
    IF to_regclass('pg_temp.em_wanted_links') IS NOT NULL THEN
        DROP TABLE pg_temp.em_wanted_links;
    END IF;
    CREATE TEMPORARY TABLE em_wanted_links ON COMMIT DROP AS
    WITH first_deployment AS (
        -- when each service was first seen deploying: nothing committed
        -- before that is attributed to it
        SELECT d.service, min(coalesce(d.finished_at, d.started_at)) AS since
        FROM engineering.deployments d
        WHERE coalesce(d.finished_at, d.started_at) IS NOT NULL
          AND (only_service IS NULL OR d.service = only_service)
        GROUP BY d.service
    ),
    heads AS (
        SELECT d.id, d.service, d.environment, d.finished_at,
               coalesce(h.committed_at, d.finished_at) AS upper_bound
        FROM engineering.deployments d
        LEFT JOIN LATERAL (
            -- the head commit as a known change of the service: exact
            -- sha, else (abbreviated sha) the unique change it prefixes
            SELECT coalesce(
                (SELECT min(c.committed_at) FROM engineering.changes c
                  WHERE c.service = d.service AND c.commit_sha = d.commit_sha),
                (SELECT CASE WHEN count(*) = 1 THEN min(c.committed_at) END
                   FROM engineering.changes c
                  WHERE length(d.commit_sha) < 40
                    AND c.service = d.service
                    AND c.commit_sha > d.commit_sha AND c.commit_sha < d.commit_sha || 'g'
                    AND left(c.commit_sha, length(d.commit_sha)) = d.commit_sha)
            ) AS committed_at
            WHERE d.commit_sha IS NOT NULL
        ) h ON true
        WHERE d.status = 'success'
          AND (only_service IS NULL OR d.service = only_service)
    ),
    ranges AS (
        SELECT b.id, b.service, b.environment, b.lower_bound, b.upper_bound
        FROM (
            SELECT h.id, h.service, h.environment, h.upper_bound,
                   greatest(f.since,
                            max(h.upper_bound) OVER (PARTITION BY h.service, h.environment
                                                     ORDER BY h.finished_at, h.id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS lower_bound
            FROM heads h
            JOIN first_deployment f ON f.service = h.service
        ) b
        WHERE b.upper_bound > b.lower_bound
          -- deployments described by their connector are left alone
          AND NOT EXISTS (SELECT 1 FROM engineering.deployment_changes r
                          WHERE r.deployment_id = b.id AND r.linked_by = 'connector')
    )
    SELECT r.id AS deployment_id, c.id AS change_id
    FROM ranges r
    JOIN engineering.changes c
      ON c.service = r.service
     AND c.committed_at > r.lower_bound
     AND c.committed_at <= r.upper_bound
    -- a change a connector or a person put on a deployment of this
    -- environment already has its deployment there
    WHERE NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes k
                      JOIN engineering.deployments kd ON kd.id = k.deployment_id
                      WHERE k.change_id = c.id AND k.linked_by <> 'inferred'
                        AND kd.environment = r.environment AND kd.status = 'success');
    ANALYZE pg_temp.em_wanted_links;

    -- The two comparisons of the wanted links with the existing ones are
    -- equi-joins over up to millions of rows: hash joins, whatever the
    -- statistics of deployment_changes say.  An autoanalyze that ran while
    -- a previous run's inserts were uncommitted records the table as empty,
    -- and a nested loop would then rescan the wanted links once per
    -- existing link (hours instead of seconds).
    PERFORM set_config('enable_nestloop', 'off', true);

    -- inferred links that no longer hold
    DELETE FROM engineering.deployment_changes dc
     USING engineering.deployments d
     WHERE dc.linked_by = 'inferred'
       AND d.id = dc.deployment_id
       AND (only_service IS NULL OR d.service = only_service)
       AND NOT EXISTS (SELECT 1 FROM pg_temp.em_wanted_links w
                        WHERE w.deployment_id = dc.deployment_id AND w.change_id = dc.change_id);

    -- the links that exist already need nothing (a separate statement: an
    -- INSERT whose SELECT reads the table it fills would rescan the rows
    -- it has just added)
    DELETE FROM pg_temp.em_wanted_links w
     USING engineering.deployment_changes dc
     WHERE dc.deployment_id = w.deployment_id AND dc.change_id = w.change_id;

    PERFORM set_config('enable_nestloop', nestloop, true);

    -- new ones, in the order of the changes so that the foreign-key checks
    -- read the changes table in order
    INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
    SELECT w.deployment_id, w.change_id, 'inferred'
      FROM pg_temp.em_wanted_links w
     ORDER BY w.change_id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;

    DROP TABLE pg_temp.em_wanted_links;
    RETURN added;
END
$$;

COMMENT ON FUNCTION engineering.link_changes(text) IS
    'links each change to the first successful deployment per environment that shipped it (by head commit, else by time), for deployments whose connector did not record their changes; never attributes changes older than the service''s first recorded deployment; idempotent; returns how many links it added (only one service when given)';

------------------------------------------------------------------------------
-- attribute_incidents(max_gap, environment)
--
-- An incident without a recorded cause is put on the latest successful
-- deployment of the same service in the production environment that
-- finished before the incident opened, at most max_gap earlier (NULL: no
-- limit, as Apache DevLake does).  Causes set by a connector or by hand
-- (cause_inferred false) are never touched; inferred ones are recomputed,
-- and cleared when no deployment qualifies any more (max_gap shrank, the
-- deployment was re-synced as failed).
------------------------------------------------------------------------------
CREATE FUNCTION engineering.attribute_incidents(max_gap interval DEFAULT '7 days', environment text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    env text := coalesce(environment,
                         (SELECT s.production_environment FROM engineering.dora_settings s));
    changed bigint;
BEGIN
    IF max_gap < interval '0' THEN
        RAISE EXCEPTION 'max_gap must not be negative: %', max_gap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    env := coalesce(env, 'production');
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('engineering.attribute_incidents'));

    WITH candidates AS (
        SELECT i.id,
               (SELECT d.id
                  FROM engineering.deployments d
                 WHERE d.service = i.service
                   AND d.environment = env
                   AND d.status = 'success'
                   AND d.finished_at < i.opened_at
                   AND (max_gap IS NULL OR d.finished_at >= i.opened_at - max_gap)
                 ORDER BY d.finished_at DESC, d.id DESC
                 LIMIT 1) AS cause
        FROM engineering.incidents i
        WHERE i.cause_deployment_id IS NULL OR i.cause_inferred
    )
    UPDATE engineering.incidents i
       SET cause_deployment_id = c.cause,
           cause_inferred = c.cause IS NOT NULL
      FROM candidates c
     WHERE i.id = c.id
       -- re-checked on rows a connector changed meanwhile
       AND (i.cause_deployment_id IS NULL OR i.cause_inferred)
       AND (i.cause_deployment_id IS DISTINCT FROM c.cause
            OR i.cause_inferred IS DISTINCT FROM (c.cause IS NOT NULL));
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END
$$;

COMMENT ON FUNCTION engineering.attribute_incidents(interval, text) IS
    'sets the inferred cause of incidents without a recorded one: the latest successful deployment of the same service and environment (default: dora_settings.production_environment) that finished before the incident opened, at most max_gap earlier (NULL: no limit); never overwrites causes set by a connector or by hand; recomputes inferred ones; returns how many incidents it changed';
