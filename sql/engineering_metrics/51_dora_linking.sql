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
-- dora_backlog: what link_changes() and attribute_incidents() still have to
-- look at.  Statement-level triggers on the event tables record, per job
-- and service, the earliest time their new, changed or deleted rows touch
-- (a change's committed_at, a deployment's started_at or finished_at, an
-- incident's opened_at); each job's run takes its rows and redoes only that
-- part.  A row with service NULL means every service, from the beginning.
-- Not dumped: after a restore CREATE EXTENSION puts those rows back, and
-- the first runs are full ones.
------------------------------------------------------------------------------
CREATE TABLE engineering.dora_backlog (
    job     text NOT NULL CHECK (job IN ('link_changes', 'attribute_incidents')),
    service text,
    since   timestamptz NOT NULL,
    CONSTRAINT dora_backlog_job_service_key UNIQUE NULLS NOT DISTINCT (job, service)
);
INSERT INTO engineering.dora_backlog (job, service, since)
VALUES ('link_changes', NULL, '-infinity'), ('attribute_incidents', NULL, '-infinity');
COMMENT ON TABLE engineering.dora_backlog IS
    'per job (link_changes, attribute_incidents) and service, the earliest time that rows written since the job''s last run touch; service NULL: every service (the next run is a full one)';
COMMENT ON COLUMN engineering.dora_backlog.job IS 'link_changes or attribute_incidents';
COMMENT ON COLUMN engineering.dora_backlog.service IS 'the service whose rows changed; NULL for every service';
COMMENT ON COLUMN engineering.dora_backlog.since IS 'the earliest committed_at, started_at, finished_at or opened_at the changed rows had before or after the change';

CREATE TABLE engineering.dora_job_arguments (
    job       text PRIMARY KEY CHECK (job = 'attribute_incidents'),
    arguments text NOT NULL
);
COMMENT ON TABLE engineering.dora_job_arguments IS
    'the arguments of the last full run of a DORA job: a run with other arguments is a full one (not dumped: the first run after a restore is full)';
COMMENT ON COLUMN engineering.dora_job_arguments.job IS 'attribute_incidents';
COMMENT ON COLUMN engineering.dora_job_arguments.arguments IS 'its arguments (max_gap and environment), as text';

-- The backlog is written and taken only through these functions, which
-- run as the extension's owner: a writer's INSERT into an event table
-- records its backlog without any privilege on the table.
-- The backlog of one job, from (service, time) pairs; earliest time wins.
CREATE FUNCTION engineering._dora_backlog_add(job text, touched jsonb)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO engineering.dora_backlog AS b (job, service, since)
    SELECT $1, t.service, min(t.since)
      FROM jsonb_to_recordset($2) AS t(service text, since timestamptz)
     WHERE t.service IS NOT NULL AND t.since IS NOT NULL
     GROUP BY t.service
     ORDER BY t.service
    ON CONFLICT (job, service) DO UPDATE SET since = least(b.since, excluded.since)
     WHERE excluded.since < b.since
$$;
COMMENT ON FUNCTION engineering._dora_backlog_add(text, jsonb) IS
    'internal: records in dora_backlog, for a job, the earliest touched time per service of a list of {service, since}';
REVOKE EXECUTE ON FUNCTION engineering._dora_backlog_add(text, jsonb) FROM PUBLIC;

CREATE FUNCTION engineering._dora_backlog_add_everything()
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO engineering.dora_backlog AS b (job, service, since)
    VALUES ('attribute_incidents', NULL, '-infinity'), ('link_changes', NULL, '-infinity')
    ON CONFLICT (job, service) DO UPDATE SET since = '-infinity'
$$;
COMMENT ON FUNCTION engineering._dora_backlog_add_everything() IS
    'internal: marks every service as to be redone in full by link_changes() and attribute_incidents() (after a TRUNCATE of an event table)';
REVOKE EXECUTE ON FUNCTION engineering._dora_backlog_add_everything() FROM PUBLIC;

-- A run takes (deletes) the backlog rows of its job, or of one service;
-- rows that concurrent writers add meanwhile stay for the next run.
CREATE FUNCTION engineering._dora_backlog_take(job text, only_service text DEFAULT NULL)
RETURNS TABLE (service text, since timestamptz)
LANGUAGE sql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM engineering.dora_backlog b
     WHERE b.job = $1 AND ($2 IS NULL OR b.service = $2)
    RETURNING b.service, b.since
$$;
COMMENT ON FUNCTION engineering._dora_backlog_take(text, text) IS
    'internal: removes and returns the dora_backlog rows of a job (of one service when given; service NULL: every service)';
REVOKE EXECUTE ON FUNCTION engineering._dora_backlog_take(text, text) FROM PUBLIC;

-- whether a job's arguments differ from its last run's (then remembered)
CREATE FUNCTION engineering._dora_job_arguments_changed(job text, arguments text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM engineering.dora_job_arguments a WHERE a.job = $1 AND a.arguments = $2) THEN
        RETURN false;
    END IF;
    INSERT INTO engineering.dora_job_arguments AS a (job, arguments) VALUES ($1, $2)
    ON CONFLICT ON CONSTRAINT dora_job_arguments_pkey DO UPDATE SET arguments = excluded.arguments;
    RETURN true;
END
$$;
COMMENT ON FUNCTION engineering._dora_job_arguments_changed(text, text) IS
    'internal: true (and the arguments remembered) when a DORA job runs with other arguments than its last run';
REVOKE EXECUTE ON FUNCTION engineering._dora_job_arguments_changed(text, text) FROM PUBLIC;

------------------------------------------------------------------------------
-- service_first_deployments: when each service was first seen deploying
-- (its earliest deployment in any environment, of any status, by
-- coalesce(finished_at, started_at)).  Nothing committed before that time
-- is ever counted (see _first_shipments, link_changes()).  Kept by the
-- deployments' triggers in the writing transaction, so it is never stale:
-- new rows can only move a time earlier; for the services of updated or
-- deleted rows it is recomputed.  Not dumped: a restore's COPY of
-- deployments fills it again.
------------------------------------------------------------------------------
CREATE TABLE engineering.service_first_deployments (
    service    text PRIMARY KEY,
    first_seen timestamptz NOT NULL
);
COMMENT ON TABLE engineering.service_first_deployments IS
    'when each service was first seen deploying: the earliest coalesce(finished_at, started_at) of its deployments (any environment and status); nothing committed before it is counted';
COMMENT ON COLUMN engineering.service_first_deployments.service IS 'the service';
COMMENT ON COLUMN engineering.service_first_deployments.first_seen IS 'the earliest coalesce(finished_at, started_at) of its deployments';

CREATE FUNCTION engineering._first_deployments_note(earliest jsonb, recheck jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO engineering.service_first_deployments AS f (service, first_seen)
    SELECT e.service, e.first_seen
      FROM jsonb_to_recordset(earliest) AS e(service text, first_seen timestamptz)
     WHERE e.service IS NOT NULL AND e.first_seen IS NOT NULL
     ORDER BY e.service
    ON CONFLICT (service) DO UPDATE SET first_seen = excluded.first_seen
     WHERE excluded.first_seen < f.first_seen;
    IF jsonb_array_length(recheck) > 0 THEN
        -- (the expression index makes each minimum one probe)
        WITH now_first AS (
            SELECT r.service,
                   (SELECT min(coalesce(d.finished_at, d.started_at)) FROM engineering.deployments d
                     WHERE d.service = r.service) AS first_seen
              FROM (SELECT DISTINCT x AS service FROM jsonb_array_elements_text(recheck) x) r
        ),
        gone AS (
            DELETE FROM engineering.service_first_deployments f
             USING now_first n WHERE f.service = n.service AND n.first_seen IS NULL
        )
        INSERT INTO engineering.service_first_deployments AS f (service, first_seen)
        SELECT n.service, n.first_seen FROM now_first n WHERE n.first_seen IS NOT NULL ORDER BY n.service
        ON CONFLICT (service) DO UPDATE SET first_seen = excluded.first_seen
         WHERE excluded.first_seen IS DISTINCT FROM f.first_seen;
    END IF;
END
$$;
COMMENT ON FUNCTION engineering._first_deployments_note(jsonb, jsonb) IS
    'internal: keeps service_first_deployments: the earliest times of new deployments ({service, first_seen}), and the services whose deployments were updated or deleted, recomputed';
REVOKE EXECUTE ON FUNCTION engineering._first_deployments_note(jsonb, jsonb) FROM PUBLIC;

CREATE INDEX deployments_service_first_seen_idx
    ON engineering.deployments (service, (coalesce(finished_at, started_at)));

-- One trigger function for the four event tables; the rows of a statement
-- come as transition tables (old_rows for UPDATE and DELETE, new_rows for
-- INSERT and UPDATE).
CREATE FUNCTION engineering._dora_backlog_record()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched jsonb := '[]';
    part jsonb;
    earliest jsonb := '[]';
    recheck jsonb := '[]';
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- no rows to look at: every service, from the beginning
        PERFORM engineering._dora_backlog_add_everything();
        IF TG_TABLE_NAME = 'deployments' THEN
            PERFORM engineering._first_deployments_note('[]', (SELECT coalesce(jsonb_agg(f.service), '[]')
                                                                 FROM engineering.service_first_deployments f));
        END IF;
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'deployments' THEN
        -- (each transition table is read only where it exists)
        IF TG_OP <> 'DELETE' THEN
            SELECT coalesce(jsonb_agg(x), '[]') INTO earliest
              FROM (SELECT r.service, min(coalesce(r.finished_at, r.started_at)) AS first_seen
                      FROM new_rows r GROUP BY r.service) x;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            SELECT coalesce(jsonb_agg(DISTINCT r.service), '[]') INTO recheck FROM old_rows r;
        END IF;
        PERFORM engineering._first_deployments_note(earliest, recheck);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format($q$SELECT coalesce(jsonb_agg(x), '[]') FROM (%s) x$q$,
                       engineering._dora_backlog_query(TG_TABLE_NAME, 'old_rows'))
           INTO part;
        touched := touched || part;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format($q$SELECT coalesce(jsonb_agg(x), '[]') FROM (%s) x$q$,
                       engineering._dora_backlog_query(TG_TABLE_NAME, 'new_rows'))
           INTO part;
        touched := touched || part;
    END IF;
    IF TG_TABLE_NAME = 'incidents' THEN
        -- attribute_incidents() writing its own results is not new input
        IF current_setting('engineering.attributing_incidents', true) IS DISTINCT FROM 'on' THEN
            PERFORM engineering._dora_backlog_add('attribute_incidents', touched);
        END IF;
    ELSE
        IF TG_TABLE_NAME = 'deployments' THEN
            PERFORM engineering._dora_backlog_add('attribute_incidents', touched);
        END IF;
        PERFORM engineering._dora_backlog_add('link_changes', touched);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION engineering._dora_backlog_record() IS
    'internal trigger: records in dora_backlog which services and times the rows of a statement on deployments, changes, deployment_changes or incidents touch';

-- (service, since) of the rows of a transition table, per table: what they
-- can change in the links or the attributions
CREATE FUNCTION engineering._dora_backlog_query(tab text, rows_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE $1
        WHEN 'deployments' THEN
            format('SELECT r.service, least(r.started_at, r.finished_at) AS since FROM %I r', $2)
        WHEN 'changes' THEN
            -- and the deployments whose head it is: their range ends at it
            format($q$SELECT r.service, least(r.committed_at,
                        (SELECT min(d.finished_at) FROM engineering.deployments d
                          WHERE d.service = r.service AND d.commit_sha = r.commit_sha)) AS since
                     FROM %I r$q$, $2)
        WHEN 'deployment_changes' THEN
            -- inferred links are link_changes()' output, not its input
            format($q$SELECT d.service, least(d.finished_at, c.committed_at) AS since
                     FROM %I r
                     JOIN engineering.deployments d ON d.id = r.deployment_id
                     LEFT JOIN engineering.changes c ON c.id = r.change_id
                     WHERE r.linked_by <> 'inferred'$q$, $2)
        WHEN 'incidents' THEN
            format('SELECT r.service, r.opened_at AS since FROM %I r', $2)
    END
$$;
COMMENT ON FUNCTION engineering._dora_backlog_query(text, text) IS
    'internal: the query giving (service, since) for the rows of a transition table of an event table';

CREATE TRIGGER deployments_backlog_insert AFTER INSERT ON engineering.deployments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployments_backlog_update AFTER UPDATE ON engineering.deployments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployments_backlog_delete AFTER DELETE ON engineering.deployments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployments_backlog_truncate AFTER TRUNCATE ON engineering.deployments
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_insert AFTER INSERT ON engineering.changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_update AFTER UPDATE ON engineering.changes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_delete AFTER DELETE ON engineering.changes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER changes_backlog_truncate AFTER TRUNCATE ON engineering.changes
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_insert AFTER INSERT ON engineering.deployment_changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_update AFTER UPDATE ON engineering.deployment_changes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_delete AFTER DELETE ON engineering.deployment_changes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER deployment_changes_backlog_truncate AFTER TRUNCATE ON engineering.deployment_changes
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_insert AFTER INSERT ON engineering.incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_update AFTER UPDATE ON engineering.incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_delete AFTER DELETE ON engineering.incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();
CREATE TRIGGER incidents_backlog_truncate AFTER TRUNCATE ON engineering.incidents
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._dora_backlog_record();

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
--
-- Incremental: without a service, a run relinks only the services in
-- dora_backlog, and of each only the deployments that finished (or whose
-- head commit was made) at or after the earliest time its new or changed
-- rows touched; everything before is as the previous run left it, because
-- a deployment's range depends only on earlier deployments and on the
-- changes committed up to its head.  A run with nothing in the backlog
-- does nothing.  The backlog's "every service" row (after CREATE
-- EXTENSION, an upgrade or a restore) makes the next run a full one.
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

    IF to_regclass('pg_temp.em_link_scope') IS NOT NULL THEN
        DROP TABLE pg_temp.em_link_scope;
    END IF;
    IF to_regclass('pg_temp.em_link_heads') IS NOT NULL THEN
        DROP TABLE pg_temp.em_link_heads;
    END IF;
    IF to_regclass('pg_temp.em_wanted_links') IS NOT NULL THEN
        DROP TABLE pg_temp.em_wanted_links;
    END IF;

    -- The services to relink, and from when.
    CREATE TEMPORARY TABLE em_link_scope (service text PRIMARY KEY, since timestamptz NOT NULL) ON COMMIT DROP;
    IF only_service IS NOT NULL THEN
        INSERT INTO pg_temp.em_link_scope VALUES (only_service, '-infinity');
        PERFORM engineering._dora_backlog_take('link_changes', only_service);
    ELSE
        WITH taken AS (
            SELECT b.service, b.since FROM engineering._dora_backlog_take('link_changes') b
        )
        INSERT INTO pg_temp.em_link_scope (service, since)
        SELECT t.service, t.since FROM taken t
         WHERE t.service IS NOT NULL AND NOT EXISTS (SELECT 1 FROM taken a WHERE a.service IS NULL)
        UNION ALL
        SELECT DISTINCT d.service, '-infinity'::timestamptz FROM engineering.deployments d
         WHERE EXISTS (SELECT 1 FROM taken a WHERE a.service IS NULL);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_temp.em_link_scope) THEN
        RETURN 0;     -- nothing new since the last run
    END IF;
    ANALYZE pg_temp.em_link_scope;

    -- Every successful deployment of those services with its upper bound
    -- (the running maximum needs the earlier ones too), and whether it is
    -- to be redone: finished, or its head committed, at or after the
    -- service's backlog time.
    CREATE TEMPORARY TABLE em_link_heads ON COMMIT DROP AS
    SELECT d.id, d.service, d.environment, d.finished_at,
           coalesce(h.committed_at, d.finished_at) AS upper_bound,
           d.finished_at >= s.since OR h.committed_at >= s.since AS redo
    FROM engineering.deployments d
    JOIN pg_temp.em_link_scope s ON s.service = d.service
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
    WHERE d.status = 'success';
    ANALYZE pg_temp.em_link_heads;

    -- The links that should exist on the deployments redone, in a
    -- temporary table so that the planner knows their number when it
    -- compares them with the links that do exist (there can be millions).
    CREATE TEMPORARY TABLE em_wanted_links ON COMMIT DROP AS
    WITH first_deployment AS (
        -- when each service was first seen deploying: nothing committed
        -- before that is attributed to it
        SELECT f.service, f.first_seen AS since
        FROM engineering.service_first_deployments f
        JOIN pg_temp.em_link_scope s ON s.service = f.service
    ),
    ranges AS (
        SELECT b.id, b.service, b.environment, b.lower_bound, b.upper_bound
        FROM (
            SELECT h.id, h.service, h.environment, h.upper_bound, h.redo,
                   greatest(f.since,
                            max(h.upper_bound) OVER (PARTITION BY h.service, h.environment
                                                     ORDER BY h.finished_at, h.id
                                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS lower_bound
            FROM pg_temp.em_link_heads h
            JOIN first_deployment f ON f.service = h.service
        ) b
        WHERE b.redo
          AND b.upper_bound > b.lower_bound
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

    -- inferred links that no longer hold, on the deployments redone: the
    -- successful ones above, and any other of those services that finished
    -- after the backlog time (or not at all: re-synced as running)
    DELETE FROM engineering.deployment_changes dc
     USING engineering.deployments d, pg_temp.em_link_scope s
     WHERE dc.linked_by = 'inferred'
       AND d.id = dc.deployment_id
       AND s.service = d.service
       AND (d.finished_at IS NULL OR d.finished_at >= s.since
            OR EXISTS (SELECT 1 FROM pg_temp.em_link_heads h WHERE h.id = d.id AND h.redo))
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
    DROP TABLE pg_temp.em_link_heads;
    DROP TABLE pg_temp.em_link_scope;
    RETURN added;
END
$$;

COMMENT ON FUNCTION engineering.link_changes(text) IS
    'links each change to the first successful deployment per environment that shipped it (by head commit, else by time), for deployments whose connector did not record their changes; never attributes changes older than the service''s first recorded deployment; idempotent; incremental (only what dora_backlog records since the last run); returns how many links it added (only one service, in full, when given)';

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
    run_arguments text;
    full_run boolean;
    changed bigint;
BEGIN
    IF max_gap < interval '0' THEN
        RAISE EXCEPTION 'max_gap must not be negative: %', max_gap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    env := coalesce(env, 'production');
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('engineering.attribute_incidents'));

    -- Incremental: only the incidents of services in dora_backlog opened at
    -- or after its time (a new, moved or re-synced deployment changes the
    -- cause of later incidents only); a full run when the backlog says
    -- every service, or when the arguments are not those of the last run.
    IF to_regclass('pg_temp.em_attribution_scope') IS NOT NULL THEN
        DROP TABLE pg_temp.em_attribution_scope;
    END IF;
    CREATE TEMPORARY TABLE em_attribution_scope (service text PRIMARY KEY, since timestamptz NOT NULL) ON COMMIT DROP;
    run_arguments := format('max_gap=%s environment=%s', coalesce(max_gap::text, 'none'), env);
    full_run := engineering._dora_job_arguments_changed('attribute_incidents', run_arguments);
    WITH taken AS (
        SELECT b.service, b.since FROM engineering._dora_backlog_take('attribute_incidents') b
    ),
    everything AS (
        SELECT count(*) > 0 AS yes FROM taken WHERE taken.service IS NULL
    )
    INSERT INTO pg_temp.em_attribution_scope
    SELECT t.service, t.since FROM taken t
     WHERE t.service IS NOT NULL AND NOT (SELECT yes FROM everything)
    UNION ALL
    -- every service: a full run
    SELECT '', '-infinity' FROM everything WHERE yes;
    full_run := full_run OR EXISTS (SELECT 1 FROM pg_temp.em_attribution_scope s WHERE s.service = '');
    IF NOT full_run AND NOT EXISTS (SELECT 1 FROM pg_temp.em_attribution_scope) THEN
        RETURN 0;     -- nothing new since the last run
    END IF;

    -- its own writes are not new input for the next run
    PERFORM set_config('engineering.attributing_incidents', 'on', true);
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
        WHERE (i.cause_deployment_id IS NULL OR i.cause_inferred)
          AND (full_run OR EXISTS (SELECT 1 FROM pg_temp.em_attribution_scope s
                                    WHERE s.service = i.service AND i.opened_at >= s.since))
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
    PERFORM set_config('engineering.attributing_incidents', 'off', true);
    DROP TABLE pg_temp.em_attribution_scope;
    RETURN changed;
END
$$;

COMMENT ON FUNCTION engineering.attribute_incidents(interval, text) IS
    'sets the inferred cause of incidents without a recorded one: the latest successful deployment of the same service and environment (default: dora_settings.production_environment) that finished before the incident opened, at most max_gap earlier (NULL: no limit); never overwrites causes set by a connector or by hand; recomputes inferred ones (incrementally: only what dora_backlog records since the last run with the same arguments); returns how many incidents it changed';
