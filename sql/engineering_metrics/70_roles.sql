-- engineering_metrics: roles and grants.
--
-- Three group roles divide the work (README "Roles and secrets"):
--
--   engineering_reader  reads events, reports and sync history; runs the
--                       aggregates and SLO reports
--   engineering_writer  + inserts, corrects and deletes events and SLO
--                       measurements
--   engineering_admin   + manages sources (URLs, settings, tokens), SLO
--                       definitions and alert rules, and runs sync()
--
-- Each includes the one above it, so a user gets exactly one of them
-- (GRANT engineering_writer TO alice).  No role, admin included, can read a
-- token: tokens are written through SECURITY DEFINER functions and read only
-- by the sync engine, which runs as the extension's owner.
--
-- Roles belong to the cluster, not to a database, so they are created here
-- only when missing (a second database installing the extension reuses
-- them) and DROP EXTENSION cannot drop them.  They are NOLOGIN group roles:
-- people and services log in as their own roles and are granted one of
-- these.
--
-- Every table, view, sequence and function of the extension has a decision
-- below or is deliberately left to its owner; the regression test "roles"
-- lists the privileges of every object from the catalog, so an object added
-- later shows up there until it gets its decision.

DO $roles$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT * FROM (VALUES
            ('engineering_reader', NULL,
             'engineering_metrics: reads events, reports and sync history; runs the aggregates'),
            ('engineering_writer', 'engineering_reader',
             'engineering_metrics: engineering_reader, and writes events and SLO measurements'),
            ('engineering_admin', 'engineering_writer',
             'engineering_metrics: engineering_writer, and manages sources, tokens, SLOs and alert rules')
        ) AS v(name, member_of, description)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r.name);
                EXECUTE format('COMMENT ON ROLE %I IS %L', r.name, r.description);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                -- another database created it at the same moment
                NULL;
            END;
        END IF;
        IF r.member_of IS NOT NULL AND NOT pg_catalog.pg_has_role(r.name, r.member_of, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', r.member_of, r.name);
        END IF;
    END LOOP;
END
$roles$;

------------------------------------------------------------------------------
-- The schema: nothing in it is reachable without USAGE (PUBLIC has none).
------------------------------------------------------------------------------

GRANT USAGE ON SCHEMA engineering TO engineering_reader;

------------------------------------------------------------------------------
-- engineering_reader: read everything but tokens and the sync queue.
------------------------------------------------------------------------------

GRANT SELECT ON
    engineering.deployments, engineering.changes, engineering.pull_requests,
    engineering.deployment_changes, engineering.incidents, engineering.pipeline_runs,
    engineering.sources, engineering.sync_runs, engineering.source_status,
    engineering.slos, engineering.slo_measurements, engineering.slo_alert_rules,
    engineering.slo_alert_events
TO engineering_reader;

------------------------------------------------------------------------------
-- engineering_writer: events and SLO measurements.  Identity columns take
-- their values without any privilege on their sequences, so none is granted.
------------------------------------------------------------------------------

GRANT INSERT, UPDATE, DELETE ON
    engineering.deployments, engineering.changes, engineering.pull_requests,
    engineering.deployment_changes, engineering.incidents, engineering.pipeline_runs,
    engineering.slo_measurements
TO engineering_writer;

------------------------------------------------------------------------------
-- engineering_admin: sources only through the validating functions (never
-- UPDATE on engineering.sources: a base_url or token_file written directly
-- would skip the checks), SLO definitions and alert rules as tables, and the
-- sync queue for diagnosis.
------------------------------------------------------------------------------

GRANT EXECUTE ON FUNCTION
    engineering.alter_source(text, text, jsonb, interval, boolean),
    engineering.remove_source(text, boolean),
    engineering.prune_sync_runs(interval),
    engineering.sync(text),
    engineering.wake()
TO engineering_admin;
-- add_source and set_source_token carry a token in their statement: PUBLIC
-- may call them and they check for engineering_admin themselves, because
-- the executor's own refusal would log the statement, token included,
-- before the function could prevent it (30_sync.sql).
GRANT EXECUTE ON FUNCTION
    engineering.add_source(text, text, text, jsonb, text, interval),
    engineering.set_source_token(text, text)
TO PUBLIC;

GRANT INSERT, UPDATE, DELETE ON engineering.slos, engineering.slo_alert_rules TO engineering_admin;
GRANT SELECT ON engineering.sync_tasks TO engineering_admin;

------------------------------------------------------------------------------
-- The DORA part: its settings, benchmarks and views are read like the
-- rest, and changed by admins.  link_changes() and attribute_incidents()
-- run with the caller's rights: writers may run them (they write
-- deployment_changes and incidents), readers may not.
------------------------------------------------------------------------------

GRANT SELECT ON
    engineering.dora_settings, engineering.dora_benchmarks,
    engineering.change_lead_times, engineering.deployment_outcomes,
    engineering.pull_request_cycle_times
TO engineering_reader;
-- dora() runs with the caller's rights and reads the links through this view
GRANT SELECT ON engineering._first_shipments TO engineering_reader;
GRANT SELECT ON engineering.dora_backlog, engineering.dora_job_arguments, engineering.service_first_deployments
TO engineering_reader;
-- what writers' inserts record in the backlog, and what their runs of
-- link_changes() and attribute_incidents() take from it
GRANT EXECUTE ON FUNCTION
    engineering._dora_backlog_add(text, jsonb),
    engineering._dora_backlog_add_everything(),
    engineering._dora_backlog_take(text, text),
    engineering._dora_job_arguments_changed(text, text),
    engineering._first_deployments_note(jsonb, jsonb)
TO engineering_writer;
GRANT INSERT, UPDATE, DELETE ON engineering.dora_settings, engineering.dora_benchmarks TO engineering_admin;

------------------------------------------------------------------------------
-- The service catalog (the Backstage connector's tables): read like the
-- events, and written like them by writers (hand-made catalogs, start
-- dates moved back).
------------------------------------------------------------------------------

GRANT SELECT ON
    engineering.catalog_entities, engineering.catalog_groups, engineering.catalog_users,
    engineering.catalog_memberships
TO engineering_reader;
GRANT INSERT, UPDATE, DELETE ON engineering.catalog_entities TO engineering_writer;

------------------------------------------------------------------------------
-- Left to the extension's owner (the background worker runs as a
-- superuser): engineering.source_secrets (REVOKEd from PUBLIC in the sync
-- part), _store_token and _sync_source (idem), and the alert evaluation,
-- which writes alert history and sends NOTIFYs once a minute for everyone.
------------------------------------------------------------------------------

REVOKE EXECUTE ON FUNCTION engineering._evaluate_slo_alerts(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION engineering._evaluate_slo_alerts() FROM PUBLIC;
