-- engineering_metrics: event schema.
--
-- The tables below are the public API that analysts, dashboards and data
-- teams query, so their names and columns stay stable.  Every constraint
-- that a metric depends on is enforced here, and a refused row gets an error
-- that names the column and the offending value (see _reject_* below).

\echo Use "CREATE EXTENSION engineering_metrics" to load this file. \quit

COMMENT ON SCHEMA engineering IS
    'engineering_metrics: delivery events (deployments, changes, pull requests, incidents, pipeline runs), DORA and SLO analytics, and the sources that sync them';

------------------------------------------------------------------------------
-- Validation helpers used by CHECK constraints.
--
-- A plain CHECK failure only names the constraint.  Each constraint below is
-- written as "<the rule> OR engineering._reject_...(...)": when the rule
-- holds, the helper is never called (the fast path stays a native
-- comparison); when it does not, the helper (src/validation.c) raises an error with the
-- column, the value and what was expected.  The helpers are VOLATILE on
-- purpose: an IMMUTABLE function whose arguments are all constants would be
-- folded (and raise) while the constraint is planned, before the OR could
-- short-circuit.
------------------------------------------------------------------------------

CREATE FUNCTION engineering._reject_value(column_name text, value text, expected text)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_reject_value';
COMMENT ON FUNCTION engineering._reject_value(text, text, text) IS
    'internal: raises check_violation naming a column and its refused value; used by CHECK constraints';

CREATE FUNCTION engineering._reject_order(column_name text, value timestamptz,
                                          earlier_column text, earlier_value timestamptz)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_reject_order';
COMMENT ON FUNCTION engineering._reject_order(text, timestamptz, text, timestamptz) IS
    'internal: raises check_violation when a timestamp precedes the one it must follow; used by CHECK constraints';

CREATE FUNCTION engineering._reject_missing(column_name text, reason text)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_reject_missing';
COMMENT ON FUNCTION engineering._reject_missing(text, text) IS
    'internal: raises not_null_violation when a column is required by the row''s other values; used by CHECK constraints';

------------------------------------------------------------------------------
-- Sources: where synced events come from.  The sync engine owns the
-- behaviour; the event tables only need a stable key to point at.
------------------------------------------------------------------------------

CREATE TABLE engineering.sources (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (btrim(name) <> '' OR engineering._reject_value('sources.name', name, 'a source needs a non-empty name')),
    kind            text NOT NULL
                    CHECK (kind IN ('github', 'gitlab', 'jenkins', 'pagerduty', 'opsgenie', 'prometheus')
                           OR engineering._reject_value('sources.kind', kind, 'expected github, gitlab, jenkins, pagerduty, opsgenie or prometheus')),
    base_url        text NOT NULL,
    config          jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(config) = 'object' OR engineering._reject_value('sources.config', config::text, 'config must be a JSON object')),
    enabled         boolean NOT NULL DEFAULT true,
    poll_interval   interval NOT NULL DEFAULT '5 minutes'
                    CHECK (poll_interval >= interval '10 seconds'
                           OR engineering._reject_value('sources.poll_interval', poll_interval::text, 'poll_interval must be at least 10 seconds')),
    next_sync_at    timestamptz NOT NULL DEFAULT now(),
    last_synced_at  timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    cursor          jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(cursor) = 'object' OR engineering._reject_value('sources.cursor', cursor::text, 'cursor must be a JSON object')),
    consecutive_failures integer NOT NULL DEFAULT 0
);
COMMENT ON TABLE engineering.sources IS
    'CI/CD and incident systems the background worker pulls from; tokens are stored elsewhere and never shown here';
COMMENT ON COLUMN engineering.sources.id IS 'surrogate key referenced by the source_id of every synced event';
COMMENT ON COLUMN engineering.sources.name IS 'unique name chosen by the user, used by sync() and in reports';
COMMENT ON COLUMN engineering.sources.kind IS 'connector: github, gitlab, jenkins, pagerduty, opsgenie or prometheus';
COMMENT ON COLUMN engineering.sources.base_url IS 'API root the connector talks to (vendor default, an enterprise host or a mock)';
COMMENT ON COLUMN engineering.sources.config IS 'connector settings as a JSON object (repository, project, job, query, service mapping, since, ...)';
COMMENT ON COLUMN engineering.sources.enabled IS 'false stops the background worker from syncing this source';
COMMENT ON COLUMN engineering.sources.poll_interval IS 'how long the worker waits after a successful sync before the next one';
COMMENT ON COLUMN engineering.sources.next_sync_at IS 'when the worker will next sync this source (pushed back by rate limits and errors)';
COMMENT ON COLUMN engineering.sources.last_synced_at IS 'when the last successful sync finished';
COMMENT ON COLUMN engineering.sources.last_error IS 'redacted error of the last failed sync, NULL after a success';
COMMENT ON COLUMN engineering.sources.created_at IS 'when the source was registered';
COMMENT ON COLUMN engineering.sources.cursor IS 'the connector''s watermarks (JSON object), advanced in the same transaction as the data they cover';
COMMENT ON COLUMN engineering.sources.consecutive_failures IS 'failed or rate-limited syncs since the last success; drives the exponential backoff';

------------------------------------------------------------------------------
-- Event tables.
------------------------------------------------------------------------------

CREATE TABLE engineering.deployments (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    external_id     text,
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('deployments.service', service, 'service must not be empty')),
    environment     text NOT NULL DEFAULT 'production'
                    CHECK (btrim(environment) <> '' OR engineering._reject_value('deployments.environment', environment, 'environment must not be empty')),
    commit_sha      text
                    CHECK (commit_sha IS NULL OR commit_sha ~ '^[0-9a-f]{7,64}$'
                           OR engineering._reject_value('deployments.commit_sha', commit_sha, 'expected 7 to 64 lowercase hexadecimal digits')),
    started_at      timestamptz,
    finished_at     timestamptz,
    status          text NOT NULL
                    CHECK (status IN ('success', 'failure', 'cancelled', 'running')
                           OR engineering._reject_value('deployments.status', status, 'expected success, failure, cancelled or running')),
    url             text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT deployments_source_external_id_key UNIQUE (source_id, external_id),
    CONSTRAINT deployments_synced_rows_have_external_id
        CHECK (source_id IS NULL OR external_id IS NOT NULL
               OR engineering._reject_missing('deployments.external_id', 'rows with a source_id are keyed by (source_id, external_id)')),
    CONSTRAINT deployments_finished_after_started
        CHECK (finished_at >= started_at OR finished_at IS NULL OR started_at IS NULL
               OR engineering._reject_order('deployments.finished_at', finished_at, 'started_at', started_at)),
    CONSTRAINT deployments_completed_have_finished_at
        CHECK (status NOT IN ('success', 'failure') OR finished_at IS NOT NULL
               OR engineering._reject_missing('deployments.finished_at', format('a deployment with status %s needs finished_at', status)))
);
CREATE UNIQUE INDEX deployments_manual_external_id_key
    ON engineering.deployments (external_id) WHERE source_id IS NULL;
CREATE INDEX deployments_service_time_idx
    ON engineering.deployments (service, environment, finished_at);
CREATE INDEX deployments_finished_at_idx ON engineering.deployments (finished_at);
CREATE INDEX deployments_commit_sha_idx ON engineering.deployments (commit_sha);

COMMENT ON TABLE engineering.deployments IS
    'one row per deployment of a service to an environment; successful ones drive deployment frequency and lead time';
COMMENT ON COLUMN engineering.deployments.id IS 'surrogate key';
COMMENT ON COLUMN engineering.deployments.source_id IS 'the source that synced this row; NULL for rows inserted by hand or by an ETL';
COMMENT ON COLUMN engineering.deployments.external_id IS 'the id in the source system; unique per source, and among hand-made rows';
COMMENT ON COLUMN engineering.deployments.service IS 'the deployed service; shared with incidents and changes of the same system';
COMMENT ON COLUMN engineering.deployments.environment IS 'target environment (production, staging, a cluster or a customer)';
COMMENT ON COLUMN engineering.deployments.commit_sha IS 'head commit that was deployed, lowercase hexadecimal';
COMMENT ON COLUMN engineering.deployments.started_at IS 'when the deployment started';
COMMENT ON COLUMN engineering.deployments.finished_at IS 'when the deployment finished; the deployment time used by every metric';
COMMENT ON COLUMN engineering.deployments.status IS 'success, failure, cancelled or running';
COMMENT ON COLUMN engineering.deployments.url IS 'link to the deployment in the source system';
COMMENT ON COLUMN engineering.deployments.attributes IS 'anything else the source reported, as JSON';

CREATE TABLE engineering.changes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    external_id     text,
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('changes.service', service, 'service must not be empty')),
    commit_sha      text NOT NULL
                    CHECK (commit_sha ~ '^[0-9a-f]{7,64}$'
                           OR engineering._reject_value('changes.commit_sha', commit_sha, 'expected 7 to 64 lowercase hexadecimal digits')),
    authored_at     timestamptz,
    committed_at    timestamptz NOT NULL,
    author          text,
    title           text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT changes_source_external_id_key UNIQUE (source_id, external_id),
    CONSTRAINT changes_synced_rows_have_external_id
        CHECK (source_id IS NULL OR external_id IS NOT NULL
               OR engineering._reject_missing('changes.external_id', 'rows with a source_id are keyed by (source_id, external_id)'))
);
CREATE UNIQUE INDEX changes_manual_external_id_key
    ON engineering.changes (external_id) WHERE source_id IS NULL;
CREATE INDEX changes_service_time_idx ON engineering.changes (service, committed_at);
CREATE INDEX changes_service_sha_idx ON engineering.changes (service, commit_sha);

COMMENT ON TABLE engineering.changes IS 'one row per commit of a service; the start of lead time for changes';
COMMENT ON COLUMN engineering.changes.id IS 'surrogate key';
COMMENT ON COLUMN engineering.changes.source_id IS 'the source that synced this row; NULL for rows inserted by hand or by an ETL';
COMMENT ON COLUMN engineering.changes.external_id IS 'the id in the source system (usually the sha); unique per source';
COMMENT ON COLUMN engineering.changes.service IS 'the service the commit belongs to';
COMMENT ON COLUMN engineering.changes.commit_sha IS 'commit hash, lowercase hexadecimal';
COMMENT ON COLUMN engineering.changes.authored_at IS 'author date of the commit';
COMMENT ON COLUMN engineering.changes.committed_at IS 'committer date of the commit; lead time is measured from here';
COMMENT ON COLUMN engineering.changes.author IS 'commit author (name or login)';
COMMENT ON COLUMN engineering.changes.title IS 'first line of the commit message';
COMMENT ON COLUMN engineering.changes.attributes IS 'anything else the source reported, as JSON';

CREATE TABLE engineering.pull_requests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    external_id     text,
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('pull_requests.service', service, 'service must not be empty')),
    number          integer NOT NULL
                    CHECK (number > 0 OR engineering._reject_value('pull_requests.number', number::text, 'pull request numbers are positive')),
    title           text,
    author          text,
    opened_at       timestamptz NOT NULL,
    first_commit_at timestamptz,
    merged_at       timestamptz,
    merge_commit_sha text
                    CHECK (merge_commit_sha IS NULL OR merge_commit_sha ~ '^[0-9a-f]{7,64}$'
                           OR engineering._reject_value('pull_requests.merge_commit_sha', merge_commit_sha, 'expected 7 to 64 lowercase hexadecimal digits')),
    attributes      jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT pull_requests_source_external_id_key UNIQUE (source_id, external_id),
    CONSTRAINT pull_requests_synced_rows_have_external_id
        CHECK (source_id IS NULL OR external_id IS NOT NULL
               OR engineering._reject_missing('pull_requests.external_id', 'rows with a source_id are keyed by (source_id, external_id)')),
    CONSTRAINT pull_requests_merged_after_opened
        CHECK (merged_at >= opened_at OR merged_at IS NULL
               OR engineering._reject_order('pull_requests.merged_at', merged_at, 'opened_at', opened_at))
);
CREATE UNIQUE INDEX pull_requests_manual_external_id_key
    ON engineering.pull_requests (external_id) WHERE source_id IS NULL;
CREATE INDEX pull_requests_service_merged_idx ON engineering.pull_requests (service, merged_at);
CREATE INDEX pull_requests_merge_commit_sha_idx ON engineering.pull_requests (merge_commit_sha);

COMMENT ON TABLE engineering.pull_requests IS 'pull or merge requests of a service; the stages of cycle time';
COMMENT ON COLUMN engineering.pull_requests.id IS 'surrogate key';
COMMENT ON COLUMN engineering.pull_requests.source_id IS 'the source that synced this row; NULL for rows inserted by hand or by an ETL';
COMMENT ON COLUMN engineering.pull_requests.external_id IS 'the id in the source system; unique per source';
COMMENT ON COLUMN engineering.pull_requests.service IS 'the service the repository belongs to';
COMMENT ON COLUMN engineering.pull_requests.number IS 'the pull or merge request number (GitHub number, GitLab iid)';
COMMENT ON COLUMN engineering.pull_requests.title IS 'title';
COMMENT ON COLUMN engineering.pull_requests.author IS 'author login';
COMMENT ON COLUMN engineering.pull_requests.opened_at IS 'when it was opened';
COMMENT ON COLUMN engineering.pull_requests.first_commit_at IS 'author date of its earliest commit (start of coding time)';
COMMENT ON COLUMN engineering.pull_requests.merged_at IS 'when it was merged; NULL while unmerged';
COMMENT ON COLUMN engineering.pull_requests.merge_commit_sha IS 'the commit that landed it (merge, squash or rebase head)';
COMMENT ON COLUMN engineering.pull_requests.attributes IS 'anything else the source reported, as JSON';

CREATE TABLE engineering.deployment_changes (
    deployment_id   bigint NOT NULL REFERENCES engineering.deployments (id) ON DELETE CASCADE,
    change_id       bigint NOT NULL REFERENCES engineering.changes (id) ON DELETE CASCADE,
    linked_by       text NOT NULL DEFAULT 'connector'
                    CHECK (linked_by IN ('connector', 'inferred', 'manual')
                           OR engineering._reject_value('deployment_changes.linked_by', linked_by, 'expected connector, inferred or manual')),
    PRIMARY KEY (deployment_id, change_id)
);
CREATE INDEX deployment_changes_change_idx ON engineering.deployment_changes (change_id);

COMMENT ON TABLE engineering.deployment_changes IS 'which changes each deployment shipped';
COMMENT ON COLUMN engineering.deployment_changes.deployment_id IS 'the deployment';
COMMENT ON COLUMN engineering.deployment_changes.change_id IS 'a change it shipped';
COMMENT ON COLUMN engineering.deployment_changes.linked_by IS 'who made the link: connector (from the source API), inferred (by link_changes()) or manual';

CREATE TABLE engineering.incidents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    external_id     text,
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('incidents.service', service, 'service must not be empty')),
    title           text,
    severity        text,
    status          text NOT NULL
                    CHECK (status IN ('open', 'acknowledged', 'resolved')
                           OR engineering._reject_value('incidents.status', status, 'expected open, acknowledged or resolved')),
    opened_at       timestamptz NOT NULL,
    acknowledged_at timestamptz,
    resolved_at     timestamptz,
    cause_deployment_id bigint REFERENCES engineering.deployments (id) ON DELETE SET NULL,
    cause_inferred  boolean NOT NULL DEFAULT false,
    attributes      jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT incidents_source_external_id_key UNIQUE (source_id, external_id),
    CONSTRAINT incidents_synced_rows_have_external_id
        CHECK (source_id IS NULL OR external_id IS NOT NULL
               OR engineering._reject_missing('incidents.external_id', 'rows with a source_id are keyed by (source_id, external_id)')),
    CONSTRAINT incidents_acknowledged_after_opened
        CHECK (acknowledged_at >= opened_at OR acknowledged_at IS NULL
               OR engineering._reject_order('incidents.acknowledged_at', acknowledged_at, 'opened_at', opened_at)),
    CONSTRAINT incidents_resolved_after_opened
        CHECK (resolved_at >= opened_at OR resolved_at IS NULL
               OR engineering._reject_order('incidents.resolved_at', resolved_at, 'opened_at', opened_at)),
    CONSTRAINT incidents_resolved_have_resolved_at
        CHECK (status <> 'resolved' OR resolved_at IS NOT NULL
               OR engineering._reject_missing('incidents.resolved_at', 'a resolved incident needs resolved_at')),
    CONSTRAINT incidents_open_have_no_resolved_at
        CHECK (status = 'resolved' OR resolved_at IS NULL
               OR engineering._reject_value('incidents.status', status, 'an incident with resolved_at must have status resolved'))
);
CREATE UNIQUE INDEX incidents_manual_external_id_key
    ON engineering.incidents (external_id) WHERE source_id IS NULL;
CREATE INDEX incidents_service_time_idx ON engineering.incidents (service, opened_at);
CREATE INDEX incidents_cause_deployment_idx ON engineering.incidents (cause_deployment_id);

COMMENT ON TABLE engineering.incidents IS 'production incidents; drive change failure rate and time to restore';
COMMENT ON COLUMN engineering.incidents.id IS 'surrogate key';
COMMENT ON COLUMN engineering.incidents.source_id IS 'the source that synced this row; NULL for rows inserted by hand or by an ETL';
COMMENT ON COLUMN engineering.incidents.external_id IS 'the id in the source system; unique per source';
COMMENT ON COLUMN engineering.incidents.service IS 'the affected service; shared with its deployments';
COMMENT ON COLUMN engineering.incidents.title IS 'title or message';
COMMENT ON COLUMN engineering.incidents.severity IS 'severity as the source names it (urgency, priority)';
COMMENT ON COLUMN engineering.incidents.status IS 'open, acknowledged or resolved';
COMMENT ON COLUMN engineering.incidents.opened_at IS 'when the incident started (impact start when known)';
COMMENT ON COLUMN engineering.incidents.acknowledged_at IS 'when someone first acknowledged it';
COMMENT ON COLUMN engineering.incidents.resolved_at IS 'when service was restored; NULL while open';
COMMENT ON COLUMN engineering.incidents.cause_deployment_id IS 'the deployment that caused it, set by a connector, by hand or by attribute_incidents()';
COMMENT ON COLUMN engineering.incidents.cause_inferred IS 'true when cause_deployment_id was inferred by attribute_incidents() and may be recomputed';
COMMENT ON COLUMN engineering.incidents.attributes IS 'anything else the source reported, as JSON';

CREATE TABLE engineering.pipeline_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    external_id     text,
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('pipeline_runs.service', service, 'service must not be empty')),
    pipeline        text NOT NULL
                    CHECK (btrim(pipeline) <> '' OR engineering._reject_value('pipeline_runs.pipeline', pipeline, 'pipeline must not be empty')),
    branch          text,
    commit_sha      text
                    CHECK (commit_sha IS NULL OR commit_sha ~ '^[0-9a-f]{7,64}$'
                           OR engineering._reject_value('pipeline_runs.commit_sha', commit_sha, 'expected 7 to 64 lowercase hexadecimal digits')),
    event           text,
    status          text NOT NULL
                    CHECK (status IN ('queued', 'running', 'success', 'failure', 'cancelled', 'skipped')
                           OR engineering._reject_value('pipeline_runs.status', status, 'expected queued, running, success, failure, cancelled or skipped')),
    queued_at       timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    attempt         integer NOT NULL DEFAULT 1
                    CHECK (attempt >= 1 OR engineering._reject_value('pipeline_runs.attempt', attempt::text, 'attempts are numbered from 1')),
    url             text,
    attributes      jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT pipeline_runs_source_external_id_key UNIQUE (source_id, external_id),
    CONSTRAINT pipeline_runs_synced_rows_have_external_id
        CHECK (source_id IS NULL OR external_id IS NOT NULL
               OR engineering._reject_missing('pipeline_runs.external_id', 'rows with a source_id are keyed by (source_id, external_id)')),
    CONSTRAINT pipeline_runs_have_a_time
        CHECK (queued_at IS NOT NULL OR started_at IS NOT NULL
               OR engineering._reject_missing('pipeline_runs.queued_at', 'a pipeline run needs queued_at or started_at')),
    CONSTRAINT pipeline_runs_started_after_queued
        CHECK (started_at >= queued_at OR started_at IS NULL OR queued_at IS NULL
               OR engineering._reject_order('pipeline_runs.started_at', started_at, 'queued_at', queued_at)),
    CONSTRAINT pipeline_runs_finished_after_started
        CHECK (finished_at >= started_at OR finished_at IS NULL OR started_at IS NULL
               OR engineering._reject_order('pipeline_runs.finished_at', finished_at, 'started_at', started_at)),
    CONSTRAINT pipeline_runs_completed_have_finished_at
        CHECK (status NOT IN ('success', 'failure') OR finished_at IS NOT NULL
               OR engineering._reject_missing('pipeline_runs.finished_at', format('a run with status %s needs finished_at', status)))
);
CREATE UNIQUE INDEX pipeline_runs_manual_external_id_key
    ON engineering.pipeline_runs (external_id) WHERE source_id IS NULL;
CREATE INDEX pipeline_runs_service_time_idx
    ON engineering.pipeline_runs (service, (coalesce(started_at, queued_at)));
CREATE INDEX pipeline_runs_commit_sha_idx ON engineering.pipeline_runs (commit_sha);

COMMENT ON TABLE engineering.pipeline_runs IS 'CI/CD pipeline, workflow or job runs, one row per attempt';
COMMENT ON COLUMN engineering.pipeline_runs.id IS 'surrogate key';
COMMENT ON COLUMN engineering.pipeline_runs.source_id IS 'the source that synced this row; NULL for rows inserted by hand or by an ETL';
COMMENT ON COLUMN engineering.pipeline_runs.external_id IS 'the id in the source system (including the attempt when the source re-runs in place); unique per source';
COMMENT ON COLUMN engineering.pipeline_runs.service IS 'the service the pipeline builds or deploys';
COMMENT ON COLUMN engineering.pipeline_runs.pipeline IS 'workflow, pipeline or job name';
COMMENT ON COLUMN engineering.pipeline_runs.branch IS 'branch or ref that was built';
COMMENT ON COLUMN engineering.pipeline_runs.commit_sha IS 'commit that was built, lowercase hexadecimal';
COMMENT ON COLUMN engineering.pipeline_runs.event IS 'what triggered the run (push, pull_request, schedule, manual, ...)';
COMMENT ON COLUMN engineering.pipeline_runs.status IS 'queued, running, success, failure, cancelled or skipped';
COMMENT ON COLUMN engineering.pipeline_runs.queued_at IS 'when the run was created or queued';
COMMENT ON COLUMN engineering.pipeline_runs.started_at IS 'when it started running';
COMMENT ON COLUMN engineering.pipeline_runs.finished_at IS 'when it finished';
COMMENT ON COLUMN engineering.pipeline_runs.attempt IS 'attempt number, 1 for the first run and higher for re-runs of the same run';
COMMENT ON COLUMN engineering.pipeline_runs.url IS 'link to the run in the source system';
COMMENT ON COLUMN engineering.pipeline_runs.attributes IS 'anything else the source reported (vendor status, conclusion, ...), as JSON';

------------------------------------------------------------------------------
-- The rows of extension tables are not dumped by pg_dump unless registered
-- here; without this a backup of the database would hold the schema but
-- none of the events.
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('engineering.sources', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sources_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.deployments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.changes', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.changes_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.pull_requests', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.pull_requests_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.deployment_changes', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.incidents', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.incidents_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.pipeline_runs', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.pipeline_runs_id_seq', '');
CREATE FUNCTION engineering.build_info()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_build_info';
COMMENT ON FUNCTION engineering.build_info() IS
    'version of the loaded module, its libcurl, and whether it was preloaded (background worker available)';
-- engineering_metrics: exact duration aggregates.
--
-- lead_time and time_to_restore return exactly what percentile_cont returns
-- over end - start (same interval, same text), mttr the exact mean,
-- downtime the length of the union of the spans.  All skip rows with a NULL
-- timestamp, return NULL for no rows, and refuse a row whose end precedes
-- its start.  The C code is in src/agg_*.c.

------------------------------------------------------------------------------
-- Exact percentiles: lead_time, time_to_restore.  The state is internal (an
-- array of microsecond durations), with serialize/deserialize for parallel
-- workers.
------------------------------------------------------------------------------

CREATE FUNCTION engineering._durations_trans(state internal, started_at timestamptz, ended_at timestamptz)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_trans';
COMMENT ON FUNCTION engineering._durations_trans(internal, timestamptz, timestamptz) IS
    'internal: transition of lead_time/time_to_restore (median form); appends ended_at - started_at';

CREATE FUNCTION engineering._durations_trans(state internal, started_at timestamptz, ended_at timestamptz, fraction float8)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_trans_fraction';
COMMENT ON FUNCTION engineering._durations_trans(internal, timestamptz, timestamptz, float8) IS
    'internal: transition of lead_time/time_to_restore with a fraction; appends ended_at - started_at';

CREATE FUNCTION engineering._durations_combine(state internal, other internal)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_combine';
COMMENT ON FUNCTION engineering._durations_combine(internal, internal) IS
    'internal: combines partial lead_time/time_to_restore states of parallel workers';

CREATE FUNCTION engineering._durations_serialize(state internal)
RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_serialize';
COMMENT ON FUNCTION engineering._durations_serialize(internal) IS
    'internal: serializes a lead_time/time_to_restore state for a parallel worker';

CREATE FUNCTION engineering._durations_deserialize(bytes bytea, dummy internal)
RETURNS internal
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_deserialize';
COMMENT ON FUNCTION engineering._durations_deserialize(bytea, internal) IS
    'internal: validates and deserializes a lead_time/time_to_restore state';

CREATE FUNCTION engineering._durations_percentile_final(state internal)
RETURNS interval
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_percentile_final';
COMMENT ON FUNCTION engineering._durations_percentile_final(internal) IS
    'internal: final of lead_time/time_to_restore; the percentile exactly as percentile_cont computes it';

CREATE AGGREGATE engineering.lead_time(changed_at timestamptz, deployed_at timestamptz) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.lead_time(timestamptz, timestamptz) IS
    'median of deployed_at - changed_at, exactly percentile_cont(0.5) WITHIN GROUP (ORDER BY deployed_at - changed_at); NULL rows skipped';

CREATE AGGREGATE engineering.lead_time(changed_at timestamptz, deployed_at timestamptz, fraction float8) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.lead_time(timestamptz, timestamptz, float8) IS
    'percentile (0 to 1, the same on every row) of deployed_at - changed_at, exactly as percentile_cont(fraction) computes it';

CREATE AGGREGATE engineering.time_to_restore(opened_at timestamptz, resolved_at timestamptz) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.time_to_restore(timestamptz, timestamptz) IS
    'median of resolved_at - opened_at over resolved incidents (NULL resolved_at skipped), exactly as percentile_cont(0.5)';

CREATE AGGREGATE engineering.time_to_restore(opened_at timestamptz, resolved_at timestamptz, fraction float8) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.time_to_restore(timestamptz, timestamptz, float8) IS
    'percentile of resolved_at - opened_at over resolved incidents, exactly as percentile_cont(fraction) computes it';

------------------------------------------------------------------------------
-- mttr: exact mean.  Its state is a real type (not internal) so that Citus
-- can push the aggregate down.
------------------------------------------------------------------------------

CREATE TYPE engineering.mttr_state;

CREATE FUNCTION engineering._mttr_state_in(cstring)
RETURNS engineering.mttr_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_in';
COMMENT ON FUNCTION engineering._mttr_state_in(cstring) IS
    'internal: input function of mttr_state ("count=<n> sum_us=<n>")';

CREATE FUNCTION engineering._mttr_state_out(engineering.mttr_state)
RETURNS cstring
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_out';
COMMENT ON FUNCTION engineering._mttr_state_out(engineering.mttr_state) IS
    'internal: output function of mttr_state';

CREATE FUNCTION engineering._mttr_state_recv(internal)
RETURNS engineering.mttr_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_recv';
COMMENT ON FUNCTION engineering._mttr_state_recv(internal) IS
    'internal: binary input function of mttr_state (validated)';

CREATE FUNCTION engineering._mttr_state_send(engineering.mttr_state)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_send';
COMMENT ON FUNCTION engineering._mttr_state_send(engineering.mttr_state) IS
    'internal: binary output function of mttr_state';

CREATE TYPE engineering.mttr_state (
    INPUT = engineering._mttr_state_in,
    OUTPUT = engineering._mttr_state_out,
    RECEIVE = engineering._mttr_state_recv,
    SEND = engineering._mttr_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE engineering.mttr_state IS
    'state of mttr(): number of durations and their exact 128-bit sum in microseconds';

CREATE FUNCTION engineering._mttr_trans(state engineering.mttr_state, opened_at timestamptz, resolved_at timestamptz)
RETURNS engineering.mttr_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_trans';
COMMENT ON FUNCTION engineering._mttr_trans(engineering.mttr_state, timestamptz, timestamptz) IS
    'internal: transition of mttr(); counts resolved_at - opened_at';

CREATE FUNCTION engineering._mttr_combine(state engineering.mttr_state, other engineering.mttr_state)
RETURNS engineering.mttr_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_combine';
COMMENT ON FUNCTION engineering._mttr_combine(engineering.mttr_state, engineering.mttr_state) IS
    'internal: combines partial mttr() states (parallel workers, Citus workers)';

CREATE FUNCTION engineering._mttr_final(state engineering.mttr_state)
RETURNS interval
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_final';
COMMENT ON FUNCTION engineering._mttr_final(engineering.mttr_state) IS
    'internal: final of mttr(); the exact mean, NULL for no rows';

CREATE AGGREGATE engineering.mttr(opened_at timestamptz, resolved_at timestamptz) (
    SFUNC = engineering._mttr_trans,
    STYPE = engineering.mttr_state,
    INITCOND = 'count=0 sum_us=0',
    FINALFUNC = engineering._mttr_final,
    COMBINEFUNC = engineering._mttr_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.mttr(timestamptz, timestamptz) IS
    'mean time to restore: exact mean of resolved_at - opened_at over resolved incidents, rounded to the microsecond';

------------------------------------------------------------------------------
-- downtime: length of the union of [started_at, ended_at) spans.
------------------------------------------------------------------------------

CREATE FUNCTION engineering._spans_trans(state internal, started_at timestamptz, ended_at timestamptz)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_trans';
COMMENT ON FUNCTION engineering._spans_trans(internal, timestamptz, timestamptz) IS
    'internal: transition of downtime(); adds [started_at, ended_at), merging with overlapping spans';

CREATE FUNCTION engineering._spans_combine(state internal, other internal)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_combine';
COMMENT ON FUNCTION engineering._spans_combine(internal, internal) IS
    'internal: combines partial downtime() states of parallel workers';

CREATE FUNCTION engineering._spans_serialize(state internal)
RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_serialize';
COMMENT ON FUNCTION engineering._spans_serialize(internal) IS
    'internal: serializes a downtime() state for a parallel worker';

CREATE FUNCTION engineering._spans_deserialize(bytes bytea, dummy internal)
RETURNS internal
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_deserialize';
COMMENT ON FUNCTION engineering._spans_deserialize(bytea, internal) IS
    'internal: validates and deserializes a downtime() state';

CREATE FUNCTION engineering._spans_union_final(state internal)
RETURNS interval
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_union_final';
COMMENT ON FUNCTION engineering._spans_union_final(internal) IS
    'internal: final of downtime(); total length of the merged spans';

CREATE AGGREGATE engineering.downtime(started_at timestamptz, ended_at timestamptz) (
    SFUNC = engineering._spans_trans,
    STYPE = internal,
    FINALFUNC = engineering._spans_union_final,
    COMBINEFUNC = engineering._spans_combine,
    SERIALFUNC = engineering._spans_serialize,
    DESERIALFUNC = engineering._spans_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.downtime(timestamptz, timestamptz) IS
    'length of the union of [started_at, ended_at) spans: overlapping outages counted once; NULL rows skipped';
-- engineering_metrics: SLO burn rate and remaining error budget.
--
-- burn_rate = (1 - sum(good) / sum(total)) / (1 - objective), a ratio of
-- sums; error_budget_remaining = 1 - burn_rate (not clamped).  The state is
-- a real type with a combine function so that Citus can push the aggregates
-- down.  The C code is in src/agg_burn_rate.c.

CREATE TYPE engineering.burn_rate_state;

CREATE FUNCTION engineering._burn_rate_state_in(cstring)
RETURNS engineering.burn_rate_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_in';
COMMENT ON FUNCTION engineering._burn_rate_state_in(cstring) IS
    'internal: input function of burn_rate_state ("objective=<x> good=<n> total=<n>")';

CREATE FUNCTION engineering._burn_rate_state_out(engineering.burn_rate_state)
RETURNS cstring
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_out';
COMMENT ON FUNCTION engineering._burn_rate_state_out(engineering.burn_rate_state) IS
    'internal: output function of burn_rate_state';

CREATE FUNCTION engineering._burn_rate_state_recv(internal)
RETURNS engineering.burn_rate_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_recv';
COMMENT ON FUNCTION engineering._burn_rate_state_recv(internal) IS
    'internal: binary input function of burn_rate_state (validated)';

CREATE FUNCTION engineering._burn_rate_state_send(engineering.burn_rate_state)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_send';
COMMENT ON FUNCTION engineering._burn_rate_state_send(engineering.burn_rate_state) IS
    'internal: binary output function of burn_rate_state';

CREATE TYPE engineering.burn_rate_state (
    INPUT = engineering._burn_rate_state_in,
    OUTPUT = engineering._burn_rate_state_out,
    RECEIVE = engineering._burn_rate_state_recv,
    SEND = engineering._burn_rate_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE engineering.burn_rate_state IS
    'state of burn_rate() and error_budget_remaining(): the objective and the sums of good and total events';

CREATE FUNCTION engineering._burn_rate_trans(state engineering.burn_rate_state, good bigint, total bigint, objective float8)
RETURNS engineering.burn_rate_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_trans_counts';
COMMENT ON FUNCTION engineering._burn_rate_trans(engineering.burn_rate_state, bigint, bigint, float8) IS
    'internal: transition of burn_rate(good, total, objective); validates and adds the counts';

CREATE FUNCTION engineering._burn_rate_trans(state engineering.burn_rate_state, ok boolean, objective float8)
RETURNS engineering.burn_rate_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_trans_ok';
COMMENT ON FUNCTION engineering._burn_rate_trans(engineering.burn_rate_state, boolean, float8) IS
    'internal: transition of burn_rate(ok, objective); counts one event';

CREATE FUNCTION engineering._burn_rate_combine(state engineering.burn_rate_state, other engineering.burn_rate_state)
RETURNS engineering.burn_rate_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_combine';
COMMENT ON FUNCTION engineering._burn_rate_combine(engineering.burn_rate_state, engineering.burn_rate_state) IS
    'internal: combines partial burn-rate states (parallel workers, Citus workers)';

CREATE FUNCTION engineering._burn_rate_final(state engineering.burn_rate_state)
RETURNS float8
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_final';
COMMENT ON FUNCTION engineering._burn_rate_final(engineering.burn_rate_state) IS
    'internal: final of burn_rate(); NULL when sum(total) = 0';

CREATE FUNCTION engineering._error_budget_remaining_final(state engineering.burn_rate_state)
RETURNS float8
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_error_budget_remaining_final';
COMMENT ON FUNCTION engineering._error_budget_remaining_final(engineering.burn_rate_state) IS
    'internal: final of error_budget_remaining(); 1 - burn rate, NULL when sum(total) = 0';

CREATE AGGREGATE engineering.burn_rate(good bigint, total bigint, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._burn_rate_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.burn_rate(bigint, bigint, float8) IS
    'SLO burn rate (1 - sum(good)/sum(total)) / (1 - objective); objective in (0,1), the same on every row; NULL when sum(total) = 0';

CREATE AGGREGATE engineering.burn_rate(ok boolean, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._burn_rate_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.burn_rate(boolean, float8) IS
    'SLO burn rate over one row per event (ok = good event): (1 - good/total) / (1 - objective); NULL for no rows';

CREATE AGGREGATE engineering.error_budget_remaining(good bigint, total bigint, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._error_budget_remaining_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.error_budget_remaining(bigint, bigint, float8) IS
    'fraction of the error budget left over the rows given: 1 - burn_rate; negative when overspent, never clamped';

CREATE AGGREGATE engineering.error_budget_remaining(ok boolean, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._error_budget_remaining_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.error_budget_remaining(boolean, float8) IS
    'fraction of the error budget left over one row per event: 1 - burn_rate(ok, objective); never clamped';
-- engineering_metrics: duration sketches for rollups and scale.
--
-- duration_sketch(started_at, ended_at) builds a sketch; rollup() merges
-- sketches exactly; percentile() (relative error < 1%), mean() and
-- sample_count() (exact) read them.  The sketch type is its own aggregate
-- state, with send/recv and a combine function, so that Citus pushes both
-- aggregates down.  The C code is in src/duration_sketch*.c and
-- src/sketch_codec.c (format documented there and in README.md).

CREATE TYPE engineering.duration_sketch;

CREATE FUNCTION engineering._duration_sketch_in(cstring)
RETURNS engineering.duration_sketch
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_in';
COMMENT ON FUNCTION engineering._duration_sketch_in(cstring) IS
    'internal: input function of duration_sketch (validated text form "v1 count=... buckets=...")';

CREATE FUNCTION engineering._duration_sketch_out(engineering.duration_sketch)
RETURNS cstring
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_out';
COMMENT ON FUNCTION engineering._duration_sketch_out(engineering.duration_sketch) IS
    'internal: output function of duration_sketch';

CREATE FUNCTION engineering._duration_sketch_recv(internal)
RETURNS engineering.duration_sketch
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_recv';
COMMENT ON FUNCTION engineering._duration_sketch_recv(internal) IS
    'internal: binary input function of duration_sketch (validated)';

CREATE FUNCTION engineering._duration_sketch_send(engineering.duration_sketch)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_send';
COMMENT ON FUNCTION engineering._duration_sketch_send(engineering.duration_sketch) IS
    'internal: binary output function of duration_sketch';

CREATE TYPE engineering.duration_sketch (
    INPUT = engineering._duration_sketch_in,
    OUTPUT = engineering._duration_sketch_out,
    RECEIVE = engineering._duration_sketch_recv,
    SEND = engineering._duration_sketch_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);
COMMENT ON TYPE engineering.duration_sketch IS
    'mergeable summary of durations: percentiles within 1% relative error, exact mean, count, min and max; a few kB, under 19 kB whatever it holds';

CREATE FUNCTION engineering.duration_sketch_from_bytea(bytes bytea)
RETURNS engineering.duration_sketch
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_from_bytea';
COMMENT ON FUNCTION engineering.duration_sketch_from_bytea(bytea) IS
    'a duration_sketch from its binary form (as duration_sketch_to_bytea or binary COPY wrote it), validated';

CREATE FUNCTION engineering.duration_sketch_to_bytea(sketch engineering.duration_sketch)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_to_bytea';
COMMENT ON FUNCTION engineering.duration_sketch_to_bytea(engineering.duration_sketch) IS
    'the binary form of a duration_sketch (canonical: equal sketches have equal bytes)';

CREATE CAST (bytea AS engineering.duration_sketch)
    WITH FUNCTION engineering.duration_sketch_from_bytea(bytea);
CREATE CAST (engineering.duration_sketch AS bytea)
    WITH FUNCTION engineering.duration_sketch_to_bytea(engineering.duration_sketch);
COMMENT ON CAST (bytea AS engineering.duration_sketch) IS
    'validated binary form to sketch (duration_sketch_from_bytea)';
COMMENT ON CAST (engineering.duration_sketch AS bytea) IS
    'sketch to its canonical binary form (duration_sketch_to_bytea)';

CREATE FUNCTION engineering._duration_sketch_trans(state engineering.duration_sketch,
                                                  started_at timestamptz, ended_at timestamptz)
RETURNS engineering.duration_sketch
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_trans';
COMMENT ON FUNCTION engineering._duration_sketch_trans(engineering.duration_sketch, timestamptz, timestamptz) IS
    'internal: transition of duration_sketch(); adds ended_at - started_at';

CREATE FUNCTION engineering._duration_sketch_merge(state engineering.duration_sketch,
                                                  other engineering.duration_sketch)
RETURNS engineering.duration_sketch
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_merge';
COMMENT ON FUNCTION engineering._duration_sketch_merge(engineering.duration_sketch, engineering.duration_sketch) IS
    'internal: transition of rollup() and combine function of both sketch aggregates; exact merge';

CREATE AGGREGATE engineering.duration_sketch(started_at timestamptz, ended_at timestamptz) (
    SFUNC = engineering._duration_sketch_trans,
    STYPE = engineering.duration_sketch,
    COMBINEFUNC = engineering._duration_sketch_merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.duration_sketch(timestamptz, timestamptz) IS
    'sketch of ended_at - started_at (NULL rows skipped); read it with percentile(), mean(), sample_count(), merge with rollup()';

CREATE AGGREGATE engineering.rollup(engineering.duration_sketch) (
    SFUNC = engineering._duration_sketch_merge,
    STYPE = engineering.duration_sketch,
    COMBINEFUNC = engineering._duration_sketch_merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.rollup(engineering.duration_sketch) IS
    'merges duration sketches exactly: the rollup of the sketches of parts is the sketch of the whole';

CREATE FUNCTION engineering.percentile(sketch engineering.duration_sketch, fraction float8)
RETURNS interval
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_percentile';
COMMENT ON FUNCTION engineering.percentile(engineering.duration_sketch, float8) IS
    'estimated percentile (fraction 0 to 1) as percentile_cont would interpolate it, within 1% relative error; 0 and 1 give the exact min and max';

CREATE FUNCTION engineering.mean(sketch engineering.duration_sketch)
RETURNS interval
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_mean';
COMMENT ON FUNCTION engineering.mean(engineering.duration_sketch) IS
    'exact mean duration of a sketch, rounded to the microsecond';

CREATE FUNCTION engineering.sample_count(sketch engineering.duration_sketch)
RETURNS bigint
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_sample_count';
COMMENT ON FUNCTION engineering.sample_count(engineering.duration_sketch) IS
    'exact number of durations in a sketch';
-- engineering_metrics: the sync engine.
--
-- Sources are synced by working through a persistent per-source queue of
-- HTTP GETs (sync_tasks).  The C run loop (src/sync.c) takes the first
-- task, fetches it, and calls the connector's engineering._<kind>_ingest()
-- with the parsed response; the rows, the task's deletion and the run's
-- counters commit together.  When the queue is empty, the next run starts
-- with engineering._<kind>_plan(), which enqueues the first requests from
-- the watermarks in sources.cursor.  Every run is recorded in sync_runs.

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE engineering.source_secrets (
    source_id   integer PRIMARY KEY REFERENCES engineering.sources (id) ON DELETE CASCADE,
    token       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Only the extension's owner reads tokens: no role gets a grant here, ever.
REVOKE ALL ON engineering.source_secrets FROM PUBLIC;
COMMENT ON TABLE engineering.source_secrets IS
    'API tokens of sources stored through add_source()/set_source_token(); readable only by the extension''s owner';
COMMENT ON COLUMN engineering.source_secrets.source_id IS 'the source the token authenticates';
COMMENT ON COLUMN engineering.source_secrets.token IS 'the token, sent by the C transport only to the source''s own scheme, host and port';
COMMENT ON COLUMN engineering.source_secrets.updated_at IS 'when the token was last set';

CREATE TABLE engineering.sync_tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id   integer NOT NULL REFERENCES engineering.sources (id) ON DELETE CASCADE,
    stream      text NOT NULL,
    url         text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_tasks_source_idx ON engineering.sync_tasks (source_id, id);
COMMENT ON TABLE engineering.sync_tasks IS
    'pending HTTP GETs of each source, processed in id order; a task is deleted in the transaction that ingests its response';
COMMENT ON COLUMN engineering.sync_tasks.id IS 'processing order within a source';
COMMENT ON COLUMN engineering.sync_tasks.source_id IS 'the source the request belongs to';
COMMENT ON COLUMN engineering.sync_tasks.stream IS 'connector-defined kind of request (runs, deployments, compare, ...)';
COMMENT ON COLUMN engineering.sync_tasks.url IS 'path appended to the source''s base_url (starts with /), or an absolute URL on the same scheme, host and port';
COMMENT ON COLUMN engineering.sync_tasks.payload IS 'connector state carried to the ingest function; "missing_ok": true passes a 404/410 to it instead of failing';
COMMENT ON COLUMN engineering.sync_tasks.created_at IS 'when the task was enqueued';

CREATE TABLE engineering.sync_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id) ON DELETE SET NULL,
    source          text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamptz,
    status          text NOT NULL
                    CHECK (status IN ('running', 'ok', 'error', 'rate_limited')),
    http_requests   integer NOT NULL DEFAULT 0,
    items_upserted  bigint NOT NULL DEFAULT 0,
    pages           integer NOT NULL DEFAULT 0,
    error           text,
    pid             integer,
    started_by      text NOT NULL DEFAULT 'sync'
                    CHECK (started_by IN ('worker', 'sync')),
    http_seconds    double precision NOT NULL DEFAULT 0,
    sql_seconds     double precision NOT NULL DEFAULT 0,
    next_sync_at    timestamptz
);
CREATE INDEX sync_runs_source_started_idx ON engineering.sync_runs (source_id, started_at);
CREATE INDEX sync_runs_running_idx ON engineering.sync_runs (source_id) WHERE status = 'running';
COMMENT ON TABLE engineering.sync_runs IS 'one row per sync of a source, by the background worker or by sync()';
COMMENT ON COLUMN engineering.sync_runs.id IS 'surrogate key';
COMMENT ON COLUMN engineering.sync_runs.source_id IS 'the source synced (NULL once the source is removed)';
COMMENT ON COLUMN engineering.sync_runs.source IS 'the source''s name at the time of the run';
COMMENT ON COLUMN engineering.sync_runs.started_at IS 'when the run started';
COMMENT ON COLUMN engineering.sync_runs.finished_at IS 'when the run ended; NULL while running';
COMMENT ON COLUMN engineering.sync_runs.status IS 'running, ok, error or rate_limited';
COMMENT ON COLUMN engineering.sync_runs.http_requests IS 'HTTP requests made, retries and redirects included';
COMMENT ON COLUMN engineering.sync_runs.items_upserted IS 'rows inserted or changed by the pages ingested';
COMMENT ON COLUMN engineering.sync_runs.pages IS 'responses ingested (committed)';
COMMENT ON COLUMN engineering.sync_runs.error IS 'what went wrong, redacted (never a token); NULL when ok';
COMMENT ON COLUMN engineering.sync_runs.pid IS 'process that ran the sync';
COMMENT ON COLUMN engineering.sync_runs.started_by IS 'worker (the background worker) or sync (engineering.sync())';
COMMENT ON COLUMN engineering.sync_runs.http_seconds IS 'seconds spent in HTTP transfers';
COMMENT ON COLUMN engineering.sync_runs.sql_seconds IS 'seconds spent in SQL (mapping, upserts, bookkeeping, commits)';
COMMENT ON COLUMN engineering.sync_runs.next_sync_at IS 'when the source was scheduled next after this run (backoff after errors and rate limits)';

CREATE VIEW engineering.source_status AS
SELECT s.id, s.name, s.kind, s.enabled, s.next_sync_at, s.last_synced_at, s.last_error,
       s.consecutive_failures,
       (SELECT count(*) FROM engineering.sync_tasks t WHERE t.source_id = s.id) AS pending_tasks,
       r.status AS last_status, r.started_at AS last_started_at, r.items_upserted AS last_items
FROM engineering.sources s
LEFT JOIN LATERAL (SELECT status, started_at, items_upserted FROM engineering.sync_runs r
                   WHERE r.source_id = s.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1) r ON true;
COMMENT ON VIEW engineering.source_status IS 'each source with its schedule, queue length and latest run';
COMMENT ON COLUMN engineering.source_status.id IS 'source id';
COMMENT ON COLUMN engineering.source_status.name IS 'source name';
COMMENT ON COLUMN engineering.source_status.kind IS 'connector';
COMMENT ON COLUMN engineering.source_status.enabled IS 'whether the worker syncs it';
COMMENT ON COLUMN engineering.source_status.next_sync_at IS 'when it is next due';
COMMENT ON COLUMN engineering.source_status.last_synced_at IS 'last successful sync';
COMMENT ON COLUMN engineering.source_status.last_error IS 'error of the last failed sync, NULL after a success';
COMMENT ON COLUMN engineering.source_status.consecutive_failures IS 'failures since the last success';
COMMENT ON COLUMN engineering.source_status.pending_tasks IS 'requests queued for the next runs (non-zero during a backfill)';
COMMENT ON COLUMN engineering.source_status.last_status IS 'status of the latest run';
COMMENT ON COLUMN engineering.source_status.last_started_at IS 'start of the latest run';
COMMENT ON COLUMN engineering.source_status.last_items IS 'rows upserted by the latest run';

-- pg_dump keeps the queue, the history and the tokens with the sources
-- (a backup of the database is as sensitive as the database).
SELECT pg_catalog.pg_extension_config_dump('engineering.source_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_tasks', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_tasks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_runs', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.sync_runs_id_seq', '');

------------------------------------------------------------------------------
-- Helpers for connectors (C, src/sync_sql.c, unless SQL)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._ts(value text)
RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_ts_text';
COMMENT ON FUNCTION engineering._ts(text) IS
    'vendor time: ISO 8601 with Z or an offset (+02:00, +0200), or "YYYY-MM-DD HH:MM:SS +0200"; '''' is NULL; anything else raises';

CREATE FUNCTION engineering._ts(value jsonb)
RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_ts_jsonb';
COMMENT ON FUNCTION engineering._ts(jsonb) IS
    'vendor time from JSON: a string as _ts(text), a number as epoch milliseconds, null and "" as NULL';

CREATE FUNCTION engineering._iso8601(ts timestamptz)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
COMMENT ON FUNCTION engineering._iso8601(timestamptz) IS
    'a time as ISO 8601 in UTC with Z and whole seconds, whatever the session''s TimeZone (for vendor query strings and cursors)';

CREATE FUNCTION engineering._since(config jsonb)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN config->>'since' IS NULL OR config->>'since' = '' THEN now() - interval '180 days'
    WHEN config->>'since' ~ '^\d{4}-\d{2}-\d{2}$' THEN engineering._ts((config->>'since') || 'T00:00:00Z')
    ELSE engineering._ts(config->'since') END;
COMMENT ON FUNCTION engineering._since(jsonb) IS
    'start of the backfill: config since (a timestamp with time zone, or a date meaning midnight UTC), default 180 days ago';

CREATE FUNCTION engineering._map_service(config jsonb, vendor_name text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(config->'service_map'->>vendor_name, config->>'service', vendor_name);
COMMENT ON FUNCTION engineering._map_service(jsonb, text) IS
    'service name of a vendor object: config service_map[vendor_name], else config service, else the vendor''s name';

CREATE FUNCTION engineering._urlencode(value text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_urlencode';
COMMENT ON FUNCTION engineering._urlencode(text) IS
    'RFC 3986 percent-encoding of everything except unreserved characters (for query values and path segments)';

CREATE FUNCTION engineering._link_next(link text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_link_next';
COMMENT ON FUNCTION engineering._link_next(text) IS
    'the URL of the rel="next" entry of an HTTP Link header, or NULL';

CREATE FUNCTION engineering._backoff_seconds(rate_limited boolean, retry_after text,
                                             x_ratelimit_reset text, ratelimit_reset text,
                                             at timestamptz, failures integer)
RETURNS bigint
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_backoff_seconds';
COMMENT ON FUNCTION engineering._backoff_seconds(boolean, text, text, text, timestamptz, integer) IS
    'the engine''s backoff in seconds: Retry-After, then x-ratelimit-reset, then ratelimit-reset (below 10^9 a delta, else epoch), else exponential';

CREATE FUNCTION engineering._connector_default_url(kind text)
RETURNS text
LANGUAGE C STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_default_url';
COMMENT ON FUNCTION engineering._connector_default_url(text) IS
    'the vendor''s public API root for a kind (NULL if it has none); raises if this build has no connector for the kind';

CREATE FUNCTION engineering._enqueue(source_id integer, stream text, url text, payload jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    VALUES (source_id, stream, url, coalesce(payload, '{}'));
END;
COMMENT ON FUNCTION engineering._enqueue(integer, text, text, jsonb) IS
    'queue an HTTP GET for a source: a path appended to base_url, or an absolute URL on the same origin';

------------------------------------------------------------------------------
-- Validation of sources
------------------------------------------------------------------------------

CREATE FUNCTION engineering._normalize_base_url(kind text, base_url text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    url text := btrim(coalesce(base_url, ''));
BEGIN
    IF url = '' THEN
        url := engineering._connector_default_url(kind);
        IF url IS NULL THEN
            RAISE EXCEPTION 'a % source needs a base_url', kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass the URL of your server''s API, e.g. https://ci.example.com.';
        END IF;
    END IF;
    IF url !~* '^https?://[^/?#@\s\\]+(/[^?#\s]*)?$' THEN
        RAISE EXCEPTION 'invalid base_url "%"', url
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use an http:// or https:// URL without credentials, query or fragment; put credentials in the token.';
    END IF;
    RETURN rtrim(url, '/');
END;
$$;
COMMENT ON FUNCTION engineering._normalize_base_url(text, text) IS
    'validates a source''s base_url (http or https, no credentials, query or fragment), applies the vendor default and drops trailing slashes';

CREATE FUNCTION engineering._validate_source_config(kind text, config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    validator regprocedure;
BEGIN
    IF jsonb_typeof(config) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'config must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'token_file' AND config ? 'token_env' THEN
        RAISE EXCEPTION 'config may name token_file or token_env, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'token_file' AND (jsonb_typeof(config->'token_file') <> 'string'
                                  OR config->>'token_file' !~ '^/') THEN
        RAISE EXCEPTION 'config token_file must be an absolute path on the database server'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'token_env' AND (jsonb_typeof(config->'token_env') <> 'string'
                                 OR config->>'token_env' !~ '^[A-Za-z_][A-Za-z0-9_]*$') THEN
        RAISE EXCEPTION 'config token_env must be the name of an environment variable'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'service' AND (jsonb_typeof(config->'service') <> 'string' OR btrim(config->>'service') = '') THEN
        RAISE EXCEPTION 'config service must be a non-empty string' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'service_map' AND (jsonb_typeof(config->'service_map') <> 'object'
        OR EXISTS (SELECT 1 FROM jsonb_each(config->'service_map') e
                   WHERE jsonb_typeof(e.value) <> 'string' OR btrim(e.value #>> '{}') = '')) THEN
        RAISE EXCEPTION 'config service_map must map vendor names to non-empty service names'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'since' THEN
        BEGIN
            PERFORM engineering._since(config);
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
            RAISE EXCEPTION 'config since must be a timestamp with a time zone or a date: %', config->>'since'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example "2024-01-01" (midnight UTC) or "2024-01-01T00:00:00+02:00".';
        END;
    END IF;
    validator := to_regprocedure(format('engineering.%I(jsonb)', '_' || kind || '_validate'));
    IF validator IS NOT NULL THEN
        EXECUTE format('SELECT engineering.%I($1)', '_' || kind || '_validate') USING config;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._validate_source_config(text, jsonb) IS
    'checks the keys every connector shares (token_file, token_env, service, service_map, since), then engineering._<kind>_validate(config) if the connector has one';

CREATE FUNCTION engineering._validate_source(kind text, base_url text, config jsonb)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF kind IS NULL OR kind NOT IN ('github', 'gitlab', 'jenkins', 'pagerduty', 'opsgenie', 'prometheus') THEN
        RAISE EXCEPTION 'invalid source kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Expected github, gitlab, jenkins, pagerduty, opsgenie or prometheus.';
    END IF;
    PERFORM engineering._connector_default_url(kind);      -- raises without a connector
    PERFORM engineering._validate_source_config(kind, coalesce(config, '{}'));
    RETURN engineering._normalize_base_url(kind, base_url);
END;
$$;
COMMENT ON FUNCTION engineering._validate_source(text, text, jsonb) IS
    'validates kind, base_url and config of a source for add_source() and alter_source(); returns the base_url to store';

CREATE FUNCTION engineering._sources_guard()
RETURNS trigger
LANGUAGE plpgsql PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    -- Reading a server file or variable and sending it to a URL of one's
    -- choosing is reading it: only roles that may read server files can,
    -- however the row is written.
    IF (NEW.config ? 'token_file' OR NEW.config ? 'token_env')
       AND (TG_OP = 'INSERT' OR NEW.config->'token_file' IS DISTINCT FROM OLD.config->'token_file'
            OR NEW.config->'token_env' IS DISTINCT FROM OLD.config->'token_env'
            OR NEW.base_url IS DISTINCT FROM OLD.base_url)
       AND NOT pg_has_role(session_user, 'pg_read_server_files', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied to use token_file or token_env'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only superusers and members of pg_read_server_files may point a source at a server-side secret.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION engineering._sources_guard() IS
    'trigger: only roles that may read server files may set token_file or token_env, or move such a source to another URL';

CREATE TRIGGER sources_guard
    BEFORE INSERT OR UPDATE OF base_url, config ON engineering.sources
    FOR EACH ROW EXECUTE FUNCTION engineering._sources_guard();

CREATE FUNCTION engineering._sources_changed()
RETURNS trigger
LANGUAGE C PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_sources_changed';
COMMENT ON FUNCTION engineering._sources_changed() IS
    'trigger: a new or changed source wakes the background worker when the transaction commits';

CREATE TRIGGER sources_wake
    AFTER INSERT OR UPDATE ON engineering.sources
    FOR EACH STATEMENT EXECUTE FUNCTION engineering._sources_changed();

------------------------------------------------------------------------------
-- Public API
------------------------------------------------------------------------------

CREATE FUNCTION engineering._store_token(source_id integer, token text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    clean text := btrim(token, E' \t\r\n');
BEGIN
    IF token IS NULL THEN
        DELETE FROM engineering.source_secrets s WHERE s.source_id = _store_token.source_id;
        RETURN;
    END IF;
    IF clean = '' THEN
        RAISE EXCEPTION 'token must not be empty' USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL for a source that needs no token.';
    END IF;
    IF clean ~ '[\x01-\x1f\x7f]' THEN
        RAISE EXCEPTION 'token must not contain control characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO engineering.source_secrets AS s (source_id, token)
    VALUES (_store_token.source_id, clean)
    ON CONFLICT ON CONSTRAINT source_secrets_pkey DO UPDATE SET token = EXCLUDED.token, updated_at = now();
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering._store_token(integer, text) FROM PUBLIC;
COMMENT ON FUNCTION engineering._store_token(integer, text) IS
    'internal: stores (or with NULL removes) a source''s token; never echoes it';

CREATE FUNCTION engineering.add_source(name text, kind text, base_url text, config jsonb,
                                       token text DEFAULT NULL,
                                       poll_interval interval DEFAULT '5 minutes')
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    new_id integer;
BEGIN
    IF add_source.name IS NULL OR add_source.kind IS NULL THEN
        RAISE EXCEPTION 'a source needs a name and a kind' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM engineering.sources s WHERE s.name = add_source.name) THEN
        RAISE EXCEPTION 'source "%" already exists', add_source.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or remove the existing source with engineering.remove_source().';
    END IF;
    INSERT INTO engineering.sources (name, kind, base_url, config, poll_interval)
    VALUES (add_source.name, add_source.kind,
            engineering._validate_source(add_source.kind, add_source.base_url, add_source.config),
            coalesce(add_source.config, '{}'), coalesce(add_source.poll_interval, interval '5 minutes'))
    RETURNING id INTO new_id;
    IF add_source.token IS NOT NULL THEN
        PERFORM engineering._store_token(new_id, add_source.token);
    END IF;
    RETURN new_id;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.add_source(text, text, text, jsonb, text, interval) FROM PUBLIC;
COMMENT ON FUNCTION engineering.add_source(text, text, text, jsonb, text, interval) IS
    'registers a source (base_url NULL or '''' means the vendor''s public API) and returns its id; it is synced at once if the worker runs';

CREATE FUNCTION engineering.set_source_token(name text, token text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    sid integer;
BEGIN
    SELECT s.id INTO sid FROM engineering.sources s WHERE s.name = set_source_token.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', set_source_token.name USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM engineering._store_token(sid, set_source_token.token);
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.set_source_token(text, text) FROM PUBLIC;
COMMENT ON FUNCTION engineering.set_source_token(text, text) IS
    'replaces a source''s stored token (NULL removes it)';

CREATE FUNCTION engineering.alter_source(name text, base_url text DEFAULT NULL, config jsonb DEFAULT NULL,
                                         poll_interval interval DEFAULT NULL, enabled boolean DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    s engineering.sources;
BEGIN
    SELECT * INTO s FROM engineering.sources src WHERE src.name = alter_source.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', alter_source.name USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE engineering.sources src SET
        base_url = engineering._validate_source(s.kind, coalesce(alter_source.base_url, s.base_url),
                                                coalesce(alter_source.config, s.config)),
        config = coalesce(alter_source.config, s.config),
        poll_interval = coalesce(alter_source.poll_interval, s.poll_interval),
        enabled = coalesce(alter_source.enabled, s.enabled),
        -- a changed source is looked at again now, without waiting out a backoff
        next_sync_at = least(src.next_sync_at, now()),
        consecutive_failures = 0
    WHERE src.id = s.id;
    -- A stored token goes only to the origin it was given for: moving the
    -- source to another scheme, host or port forgets it, or whoever may
    -- alter a source could have the token sent to a server of theirs.
    IF alter_source.base_url IS NOT NULL
       AND (SELECT lower(substring(src.base_url FROM '^[^:]+://[^/]+'))
            FROM engineering.sources src WHERE src.id = s.id)
           IS DISTINCT FROM lower(substring(s.base_url FROM '^[^:]+://[^/]+'))
       AND EXISTS (SELECT 1 FROM engineering.source_secrets sec WHERE sec.source_id = s.id) THEN
        DELETE FROM engineering.source_secrets sec WHERE sec.source_id = s.id;
        RAISE NOTICE 'source "%" moved to another host: its stored token was removed', s.name
            USING HINT = 'Set it again with engineering.set_source_token().';
    END IF;
    -- Queued requests and watermarks were made from the old URL or config
    -- (another project, a job that does not exist, an older service_map):
    -- once a sync of the source has finished, drop both, so that the next
    -- run plans from the new config and backfills from "since" again.  The
    -- upserts are idempotent, so re-reading history only re-maps it.
    IF (alter_source.base_url IS NOT NULL OR alter_source.config IS NOT NULL)
       AND (SELECT (src.base_url, src.config) IS DISTINCT FROM (s.base_url, s.config)
            FROM engineering.sources src WHERE src.id = s.id) THEN
        PERFORM pg_advisory_xact_lock(1162695513, s.id);
        DELETE FROM engineering.sync_tasks t WHERE t.source_id = s.id;
        UPDATE engineering.sources src SET cursor = '{}' WHERE src.id = s.id;
    END IF;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.alter_source(text, text, jsonb, interval, boolean) FROM PUBLIC;
COMMENT ON FUNCTION engineering.alter_source(text, text, jsonb, interval, boolean) IS
    'changes a source''s base_url, config, poll_interval or enabled (NULL keeps the value), validated like add_source(), and makes it due now; a new base_url or config drops the queued requests and the watermarks, so the next sync backfills from since with the new settings; a base_url on another scheme, host or port removes the stored token';

CREATE FUNCTION engineering.remove_source(name text, purge boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    sid integer;
    ref record;
    found_rows boolean;
BEGIN
    SELECT s.id INTO sid FROM engineering.sources s WHERE s.name = remove_source.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', remove_source.name USING ERRCODE = 'undefined_object';
    END IF;
    -- wait for a sync of this source to finish (the worker holds this lock between pages)
    PERFORM pg_advisory_xact_lock(1162695513, sid);
    -- every table keyed by source (event tables, and those later parts add)
    FOR ref IN
        SELECT c.conrelid::regclass AS tab, a.attname AS col
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid = 'engineering.sources'::regclass
          AND c.conrelid NOT IN ('engineering.sync_runs'::regclass, 'engineering.sync_tasks'::regclass,
                                 'engineering.source_secrets'::regclass)
        ORDER BY 1::text
    LOOP
        IF remove_source.purge THEN
            EXECUTE format('DELETE FROM %s WHERE %I = $1', ref.tab, ref.col) USING sid;
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I = $1)', ref.tab, ref.col)
                INTO found_rows USING sid;
            IF found_rows THEN
                RAISE EXCEPTION 'source "%" still has synced rows in %', remove_source.name, ref.tab
                    USING ERRCODE = 'dependent_objects_still_exist',
                          HINT = 'Call engineering.remove_source(name, purge => true) to delete them with the source.';
            END IF;
        END IF;
    END LOOP;
    DELETE FROM engineering.sources s WHERE s.id = sid;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.remove_source(text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION engineering.remove_source(text, boolean) IS
    'removes a source with its token, queue and schedule; refuses while it has synced rows unless purge deletes them too';

CREATE FUNCTION engineering.wake()
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_wake';
REVOKE EXECUTE ON FUNCTION engineering.wake() FROM PUBLIC;
COMMENT ON FUNCTION engineering.wake() IS
    'asks the background worker to look for due sources when the calling transaction commits';

CREATE FUNCTION engineering._sync_source(source_id integer)
RETURNS bigint
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'em_sync_source_sql';
REVOKE EXECUTE ON FUNCTION engineering._sync_source(integer) FROM PUBLIC;
COMMENT ON FUNCTION engineering._sync_source(integer) IS
    'internal: runs one sync of a source in this session (each page in a subtransaction) and returns the sync_runs id';

CREATE FUNCTION engineering.sync(source_name text)
RETURNS engineering.sync_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    sid integer;
    run_id bigint;
    result engineering.sync_runs;
BEGIN
    SELECT s.id INTO sid FROM engineering.sources s WHERE s.name = source_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', source_name
            USING ERRCODE = 'undefined_object', HINT = 'engineering.sources lists the registered sources.';
    END IF;
    run_id := engineering._sync_source(sid);
    SELECT * INTO result FROM engineering.sync_runs r WHERE r.id = run_id;
    RETURN result;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.sync(text) FROM PUBLIC;
COMMENT ON FUNCTION engineering.sync(text) IS
    'syncs a source now in this session (at most engineering_metrics.max_pages_per_run pages) and returns the sync_runs row';

CREATE FUNCTION engineering.prune_sync_runs(older_than interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must not be negative, got %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Runs still going are never touched, and each source keeps its
    -- latest run, which source_status reports however old it is.
    DELETE FROM engineering.sync_runs r
    WHERE r.status <> 'running' AND r.finished_at < now() - older_than
      AND (r.source_id IS NULL
           OR EXISTS (SELECT 1 FROM engineering.sync_runs l
                      WHERE l.source_id = r.source_id AND (l.started_at, l.id) > (r.started_at, r.id)));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
REVOKE EXECUTE ON FUNCTION engineering.prune_sync_runs(interval) FROM PUBLIC;
COMMENT ON FUNCTION engineering.prune_sync_runs(interval) IS
    'deletes the sync runs that finished more than older_than ago, except each source''s latest and those still running; returns how many it deleted (the background worker calls it hourly with engineering_metrics.sync_runs_retention)';
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
-- engineering_metrics: the one rule by which every connector writes a
-- synced pipeline run, deployment or pull request (and a pull request's
-- first commit).
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
-- source lock rows in the same order and never deadlock.  Columns other
-- steps own (id, first_commit_at) are never taken from the rows given.

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
    FROM unnest(runs) r
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
FROM unnest(deployments) r
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
    FROM unnest(pulls) r
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
-- engineering_metrics: the GitHub connector (REST API, api-contracts.md section 1).
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
-- engineering_metrics: the GitLab connector (REST API v4, api-contracts.md section 2).
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
-- engineering_metrics: the Jenkins connector (JSON remote access API,
-- api-contracts.md section 3).
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
-- engineering_metrics: the PagerDuty connector (REST API v2, api-contracts.md section 4).
--
-- Streams (sync_tasks.stream) and what they feed:
--   incidents    GET /incidents?since=&until=&sort_by=created_at:asc&limit=100&offset=:
--                incidents created in a window (since/until filter on created_at).
--                Windows span at most 90 days (the API refuses more than 6 months);
--                a window that would page past offset + limit = 10,000 (a 400) is
--                continued as a new window from the newest created_at seen.
--   incident     GET /incidents/{id}: incidents not resolved yet, fetched again every
--                sync until they are (a 404 marks them gone and stops that)
--   log_entries  GET /incidents/{id}/log_entries?is_overview=true: the first
--                acknowledge_log_entry gives acknowledged_at; read once per incident,
--                when it is first seen acknowledged or resolved
--
-- Watermark in sources.cursor: incidents_created (end of the last complete
-- window), valid for incidents_scope (service_ids and since; a change
-- restarts the backfill).  The JSON-to-row mapping lives in _pagerduty_map_incidents and
-- _pagerduty_map_log_entries so that pg_regress tests it with fixtures.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._pagerduty_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF config ? 'service_ids' AND (jsonb_typeof(config->'service_ids') <> 'array'
        OR jsonb_array_length(config->'service_ids') = 0
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(config->'service_ids') e
                   WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' !~ '^[A-Za-z0-9]{1,64}$')) THEN
        RAISE EXCEPTION 'config service_ids must be a non-empty array of PagerDuty service ids'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"service_ids": ["PIJ90N7", "P1ABCDE"]}; leave it out to read every service.';
    END IF;
    IF config ? 'log_entries' AND jsonb_typeof(config->'log_entries') <> 'boolean' THEN
        RAISE EXCEPTION 'config log_entries must be true or false' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'lookback' THEN
        BEGIN
            IF jsonb_typeof(config->'lookback') <> 'string'
               OR (config->>'lookback')::interval < interval '0'
               OR (config->>'lookback')::interval > interval '30 days' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
            END IF;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'config lookback must be an interval between 0 and 30 days, such as "10 minutes"'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_validate(jsonb) IS
    'checks a pagerduty source''s config: optional service_ids (array of ids), service, service_map, log_entries (boolean), lookback, since';

CREATE FUNCTION engineering._pagerduty_service(config jsonb, service jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(config->'service_map'->>(service->>'id'),
                engineering._map_service(config, coalesce(nullif(btrim(service->>'summary'), ''),
                                                          nullif(btrim(service->>'id'), ''))),
                'unknown');
COMMENT ON FUNCTION engineering._pagerduty_service(jsonb, jsonb) IS
    'service of a PagerDuty service reference: service_map by id, else by name (then config service, then the name), else the id, else "unknown"';

CREATE FUNCTION engineering._pagerduty_status(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE status
    WHEN 'triggered' THEN 'open'
    WHEN 'acknowledged' THEN 'acknowledged'
    WHEN 'resolved' THEN 'resolved'
    ELSE 'open' END;
COMMENT ON FUNCTION engineering._pagerduty_status(text) IS
    'incidents.status of a PagerDuty status: triggered open, acknowledged, resolved; anything else open (kept in attributes, fetched again until resolved)';

CREATE FUNCTION engineering._pagerduty_scope(config jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('service_ids', config->'service_ids', 'since', config->'since');
COMMENT ON FUNCTION engineering._pagerduty_scope(jsonb) IS
    'what a watermark was reached for (service_ids and since): a change restarts the backfill';

CREATE FUNCTION engineering._pagerduty_incidents_url(config jsonb, from_ts timestamptz, to_ts timestamptz,
                                                     page_offset integer)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN '/incidents?since=' || engineering._urlencode(engineering._iso8601(from_ts))
    || '&until=' || engineering._urlencode(engineering._iso8601(to_ts))
    || '&sort_by=created_at%3Aasc&limit=100&offset=' || page_offset
    || coalesce((SELECT string_agg('&service_ids%5B%5D=' || engineering._urlencode(id), '' ORDER BY o)
                 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(config->'service_ids') = 'array'
                                                     THEN config->'service_ids' ELSE '[]' END)
                      WITH ORDINALITY AS s(id, o)), '');
COMMENT ON FUNCTION engineering._pagerduty_incidents_url(jsonb, timestamptz, timestamptz, integer) IS
    'path of a page of GET /incidents: created in [from, to], oldest first, 100 per page, filtered by config service_ids';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/pagerduty.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._pagerduty_map_incidents(src_id integer, config jsonb, items jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of PagerDuty incidents, got %', coalesce(jsonb_typeof(items), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- An incident without an id or a creation time cannot be placed: it
    -- is skipped.  A bad timestamp raises (the page is refused whole).
    WITH raw AS (
        SELECT DISTINCT ON (i->>'id') i
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(i->'id') = 'string' AND btrim(i->>'id') <> ''
          AND jsonb_typeof(i->'created_at') IN ('string', 'number') AND i->>'created_at' <> ''
        ORDER BY i->>'id', o DESC),
    m AS (
        SELECT i->>'id' AS external_id,
               engineering._pagerduty_service(config, i->'service') AS service,
               coalesce(nullif(btrim(i->>'title'), ''), nullif(btrim(i->>'summary'), '')) AS title,
               CASE WHEN jsonb_typeof(i->'urgency') = 'string' THEN nullif(i->>'urgency', '') END AS severity,
               engineering._pagerduty_status(i->>'status') AS status,
               t.opened AS opened_at,
               CASE WHEN a.ack IS NOT NULL THEN greatest(a.ack, t.opened) END AS acknowledged_at,
               CASE WHEN engineering._pagerduty_status(i->>'status') = 'resolved'
                    THEN greatest(coalesce(engineering._ts(i->'resolved_at'),
                                           engineering._ts(i->'last_status_change_at'),
                                           engineering._ts(i->'updated_at'), t.opened), t.opened) END AS resolved_at,
               jsonb_strip_nulls(jsonb_build_object(
                   'pagerduty_id', i->'id', 'incident_number', i->'incident_number',
                   'incident_key', i->'incident_key', 'pagerduty_status', i->'status',
                   'urgency', i->'urgency', 'priority', i->'priority'->'summary',
                   'service_id', i->'service'->'id', 'service_name', i->'service'->'summary',
                   'html_url', i->'html_url', 'escalation_policy', i->'escalation_policy'->'summary',
                   'last_status_change_at', i->'last_status_change_at',
                   'resolve_reason', i->'resolve_reason'->'type',
                   'teams', (SELECT jsonb_agg(x->'summary') FROM jsonb_array_elements(
                                CASE WHEN jsonb_typeof(i->'teams') = 'array' THEN i->'teams' ELSE '[]' END) x
                             WHERE jsonb_typeof(x) = 'object' AND x ? 'summary'),
                   'assignees', (SELECT jsonb_agg(x->'assignee'->'summary') FROM jsonb_array_elements(
                                    CASE WHEN jsonb_typeof(i->'assignments') = 'array' THEN i->'assignments' ELSE '[]' END) x
                                 WHERE jsonb_typeof(x->'assignee') = 'object' AND x->'assignee' ? 'summary'))) AS attributes
        FROM raw,
             LATERAL (SELECT engineering._ts(i->'created_at') AS opened) t,
             -- until the log entries are read: the current acknowledgements,
             -- or the last status change of an incident that is acknowledged now
             LATERAL (SELECT coalesce(
                          (SELECT min(engineering._ts(x->'at')) FROM jsonb_array_elements(
                               CASE WHEN jsonb_typeof(i->'acknowledgements') = 'array'
                                    THEN i->'acknowledgements' ELSE '[]' END) x
                           WHERE jsonb_typeof(x) = 'object'),
                          CASE WHEN i->>'status' = 'acknowledged'
                               THEN engineering._ts(i->'last_status_change_at') END) AS ack) a),
    up AS (
        INSERT INTO engineering.incidents AS p
            (source_id, external_id, service, title, severity, status, opened_at, acknowledged_at,
             resolved_at, attributes)
        SELECT src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at,
               m.acknowledged_at, m.resolved_at, m.attributes
        FROM m
        ON CONFLICT (source_id, external_id) DO UPDATE SET
            service = EXCLUDED.service, title = EXCLUDED.title, severity = EXCLUDED.severity,
            status = EXCLUDED.status, opened_at = EXCLUDED.opened_at,
            -- the first acknowledgement ever seen (log entries know it best)
            acknowledged_at = CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                                   THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at),
                                                 EXCLUDED.opened_at) END,
            resolved_at = EXCLUDED.resolved_at,
            attributes = EXCLUDED.attributes || jsonb_strip_nulls(jsonb_build_object(
                'log_entries_read', p.attributes->'log_entries_read',
                'acknowledged_by', p.attributes->'acknowledged_by'))
        WHERE (p.service, p.title, p.severity, p.status, p.opened_at, p.acknowledged_at, p.resolved_at,
               p.attributes)
              IS DISTINCT FROM
              (EXCLUDED.service, EXCLUDED.title, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.opened_at,
               CASE WHEN least(p.acknowledged_at, EXCLUDED.acknowledged_at) IS NOT NULL
                    THEN greatest(least(p.acknowledged_at, EXCLUDED.acknowledged_at), EXCLUDED.opened_at) END,
               EXCLUDED.resolved_at,
               EXCLUDED.attributes || jsonb_strip_nulls(jsonb_build_object(
                   'log_entries_read', p.attributes->'log_entries_read',
                   'acknowledged_by', p.attributes->'acknowledged_by')))
        RETURNING 1)
    SELECT count(*) INTO n FROM up;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_map_incidents(integer, jsonb, jsonb) IS
    'upserts PagerDuty incident objects (external_id = incident id; urgency as severity; acknowledged_at never moves later); returns the rows changed';

CREATE FUNCTION engineering._pagerduty_map_log_entries(src_id integer, incident_id text, entries jsonb,
                                                       complete boolean)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    first_ack timestamptz;
    agent text;
    n bigint;
BEGIN
    IF jsonb_typeof(entries) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of PagerDuty log entries, got %', coalesce(jsonb_typeof(entries), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t, who INTO first_ack, agent
    FROM (SELECT engineering._ts(e->'created_at') AS t, e->'agent'->>'summary' AS who, o
          FROM jsonb_array_elements(entries) WITH ORDINALITY AS x(e, o)
          WHERE jsonb_typeof(e) = 'object' AND e->>'type' = 'acknowledge_log_entry') a
    WHERE t IS NOT NULL
    ORDER BY t, o
    LIMIT 1;

    UPDATE engineering.incidents p SET
        acknowledged_at = CASE WHEN least(p.acknowledged_at, first_ack) IS NOT NULL
                               THEN greatest(least(p.acknowledged_at, first_ack), p.opened_at) END,
        attributes = p.attributes
            || CASE WHEN first_ack IS NOT NULL AND agent IS NOT NULL
                         AND (p.acknowledged_at IS NULL OR first_ack <= p.acknowledged_at
                              OR NOT p.attributes ? 'acknowledged_by')
                    THEN jsonb_build_object('acknowledged_by', agent) ELSE '{}' END
            || CASE WHEN complete THEN '{"log_entries_read": true}'::jsonb ELSE '{}' END
    WHERE p.source_id = src_id AND p.external_id = incident_id
      AND ((first_ack IS NOT NULL AND (p.acknowledged_at IS NULL OR first_ack < p.acknowledged_at))
           OR (complete AND NOT p.attributes ? 'log_entries_read')
           OR (first_ack IS NOT NULL AND agent IS NOT NULL AND NOT p.attributes ? 'acknowledged_by'));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_map_log_entries(integer, text, jsonb, boolean) IS
    'applies a page of an incident''s log entries: the earliest acknowledge_log_entry becomes acknowledged_at (and its agent acknowledged_by); complete marks the log as read';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._pagerduty_enqueue_log_entries(src engineering.sources, incident_ids text[])
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'log_entries',
           '/incidents/' || engineering._urlencode(p.external_id)
               || '/log_entries?is_overview=true&limit=100&offset=0',
           jsonb_build_object('incident', p.external_id, 'offset', 0, 'missing_ok', true)
    FROM engineering.incidents p
    WHERE p.source_id = src.id AND p.external_id = ANY (incident_ids)
      AND coalesce(src.config->'log_entries', 'true') = 'true'
      AND p.attributes->>'pagerduty_status' IN ('acknowledged', 'resolved')
      AND NOT p.attributes ? 'log_entries_read'
      AND NOT EXISTS (SELECT 1 FROM engineering.sync_tasks t
                      WHERE t.source_id = src.id AND t.stream = 'log_entries'
                        AND t.payload->>'incident' = p.external_id)
    ORDER BY p.opened_at, p.external_id;
END;
COMMENT ON FUNCTION engineering._pagerduty_enqueue_log_entries(engineering.sources, text[]) IS
    'queues the log entries of those incidents that left the triggered state and whose log was not read yet (once per incident; off with config log_entries false)';

CREATE FUNCTION engineering._pagerduty_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    since timestamptz := engineering._since(src.config);
    lookback interval := coalesce((src.config->>'lookback')::interval, interval '10 minutes');
    upto timestamptz := date_trunc('second', now());
    watermark timestamptz;
    from_ts timestamptz;
    w timestamptz;
BEGIN
    -- New incidents: created since the watermark (less a look-back for
    -- incidents that reach the list late), in windows the API accepts.
    -- A watermark belongs to the service_ids and since it was reached
    -- with: when either changes, the backfill starts again.
    IF src.cursor->'incidents_scope' IS NOT DISTINCT FROM engineering._pagerduty_scope(src.config) THEN
        watermark := engineering._ts(src.cursor->'incidents_created');
    END IF;
    from_ts := date_trunc('second', greatest(since, coalesce(watermark - lookback, since)));
    w := from_ts;
    WHILE w < upto LOOP
        PERFORM engineering._enqueue(src.id, 'incidents',
            engineering._pagerduty_incidents_url(src.config, w, least(w + interval '90 days', upto), 0),
            jsonb_build_object('from', engineering._iso8601(w),
                               'to', engineering._iso8601(least(w + interval '90 days', upto)), 'offset', 0));
        w := w + interval '90 days';
    END LOOP;

    -- Incidents created before that and not resolved yet: by id.
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'incident', '/incidents/' || engineering._urlencode(external_id),
           jsonb_build_object('incident', external_id, 'missing_ok', true)
    FROM engineering.incidents
    WHERE source_id = src.id AND status <> 'resolved' AND opened_at < from_ts
      AND NOT attributes ? 'pagerduty_gone'
    ORDER BY opened_at, external_id;

    -- Logs still unread (the log_entries setting was switched on, say).
    PERFORM engineering._pagerduty_enqueue_log_entries(src,
        ARRAY(SELECT external_id FROM engineering.incidents
              WHERE source_id = src.id AND attributes->>'pagerduty_status' IN ('acknowledged', 'resolved')
                AND NOT attributes ? 'log_entries_read'));
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_plan(engineering.sources) IS
    'connector interface: queues the windows of new incidents since the watermark, the unresolved incidents by id, and unread logs';

CREATE FUNCTION engineering._pagerduty_ingest_incidents(src engineering.sources, task engineering.sync_tasks,
                                                        body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    from_ts timestamptz := engineering._ts(task.payload->'from');
    to_ts timestamptz := engineering._ts(task.payload->'to');
    page_offset integer := coalesce((task.payload->>'offset')::integer, 0);
    items jsonb := body->'incidents';
    newest timestamptz;
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected PagerDuty response: no incidents array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n := engineering._pagerduty_map_incidents(src.id, src.config, items);
    PERFORM engineering._pagerduty_enqueue_log_entries(src,
        ARRAY(SELECT i->>'id' FROM jsonb_array_elements(items) i WHERE jsonb_typeof(i) = 'object'));

    IF body->'more' = 'true'::jsonb AND jsonb_array_length(items) > 0 THEN
        IF page_offset + 200 <= 10000 THEN
            PERFORM engineering._enqueue(src.id, 'incidents',
                engineering._pagerduty_incidents_url(src.config, from_ts, to_ts, page_offset + 100),
                task.payload || jsonb_build_object('offset', page_offset + 100));
        ELSE
            -- The next page would break offset + limit <= 10,000: go on with
            -- a window starting at the newest incident of this page (sorted
            -- by created_at, so nothing older is left; the incidents of that
            -- very second are read again, harmlessly).
            SELECT date_trunc('second', max(engineering._ts(i->'created_at'))) INTO newest
            FROM jsonb_array_elements(items) i
            WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(i->'created_at') IN ('string', 'number');
            IF newest IS NULL OR newest <= from_ts THEN
                RAISE EXCEPTION 'more than 10,000 PagerDuty incidents were created at %, which the API cannot page through',
                    engineering._iso8601(from_ts)
                    USING ERRCODE = 'program_limit_exceeded';
            END IF;
            PERFORM engineering._enqueue(src.id, 'incidents',
                engineering._pagerduty_incidents_url(src.config, newest, to_ts, 0),
                jsonb_build_object('from', engineering._iso8601(newest), 'to', engineering._iso8601(to_ts),
                                   'offset', 0));
        END IF;
    ELSE
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object(
            'incidents_created', engineering._iso8601(CASE
                WHEN cursor->'incidents_scope' IS NOT DISTINCT FROM engineering._pagerduty_scope(src.config)
                THEN greatest(engineering._ts(cursor->'incidents_created'), to_ts) ELSE to_ts END),
            'incidents_scope', engineering._pagerduty_scope(src.config))
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_ingest_incidents(engineering.sources, engineering.sync_tasks, jsonb) IS
    'a page of incidents: maps them, queues their unread logs, pages on (re-windowing before offset 10,000), advances incidents_created when a window is done';

CREATE FUNCTION engineering._pagerduty_ingest(src engineering.sources, task engineering.sync_tasks,
                                              status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    incident_id text := task.payload->>'incident';
    page_offset integer := coalesce((task.payload->>'offset')::integer, 0);
    n bigint;
BEGIN
    CASE task.stream
    WHEN 'incidents' THEN
        RETURN engineering._pagerduty_ingest_incidents(src, task, body);
    WHEN 'incident' THEN
        IF body IS NULL THEN
            -- 404/410: deleted, or the token lost access; stop asking
            UPDATE engineering.incidents SET attributes = attributes || '{"pagerduty_gone": true}'
            WHERE source_id = src.id AND external_id = incident_id;
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'incident') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'unexpected PagerDuty response: no incident object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := engineering._pagerduty_map_incidents(src.id, src.config, jsonb_build_array(body->'incident'));
        PERFORM engineering._pagerduty_enqueue_log_entries(src, ARRAY[body->'incident'->>'id']);
        RETURN n;
    WHEN 'log_entries' THEN
        IF body IS NULL THEN
            RETURN engineering._pagerduty_map_log_entries(src.id, incident_id, '[]', true);
        END IF;
        IF jsonb_typeof(body->'log_entries') IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'unexpected PagerDuty response: no log_entries array' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF body->'more' = 'true'::jsonb AND jsonb_array_length(body->'log_entries') > 0
           AND page_offset + 200 <= 10000 THEN
            PERFORM engineering._enqueue(src.id, 'log_entries',
                '/incidents/' || engineering._urlencode(incident_id)
                    || '/log_entries?is_overview=true&limit=100&offset=' || (page_offset + 100),
                task.payload || jsonb_build_object('offset', page_offset + 100));
            RETURN engineering._pagerduty_map_log_entries(src.id, incident_id, body->'log_entries', false);
        END IF;
        RETURN engineering._pagerduty_map_log_entries(src.id, incident_id, body->'log_entries', true);
    ELSE
        RAISE EXCEPTION 'unknown PagerDuty stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._pagerduty_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one PagerDuty response to rows, queues follow-up requests and advances the cursor; returns rows changed';
-- engineering_metrics: the Opsgenie connector (Incident API v1, api-contracts.md section 5).
--
-- Streams (sync_tasks.stream) and what they feed:
--   incidents  GET /v1/incidents?query=&offset=0&limit=100&sort=createdAt&order=desc:
--              newest first, down to the watermark; pages follow paging.next verbatim
--              (the API has no time filter)
--   incident   GET /v1/incidents/{id}?identifierType=id: open incidents created before
--              the watermark, fetched again every sync until resolved or closed (a 404
--              marks them gone and stops that)
--
-- Watermark in sources.cursor: incidents_created (the newest createdAt seen),
-- valid for incidents_scope (query and since; a change restarts the backfill).
-- The JSON-to-row mapping lives in _opsgenie_map_incidents so that pg_regress
-- tests it with fixtures.

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._opsgenie_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(config->'query') IS DISTINCT FROM 'string' OR btrim(config->>'query') = ''
       OR length(config->>'query') > 2000 THEN
        RAISE EXCEPTION 'an opsgenie source needs config query, an Opsgenie incident search query'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"query": "impactedServices:6d0d3a43-1cd3-4e4a-a1b4-5f5b7b6c3e1a"} or {"query": "status:open OR status:resolved OR status:closed"}.';
    END IF;
    IF config ? 'lookback' THEN
        BEGIN
            IF jsonb_typeof(config->'lookback') <> 'string'
               OR (config->>'lookback')::interval < interval '0'
               OR (config->>'lookback')::interval > interval '30 days' THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_datetime_format';
            END IF;
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
            RAISE EXCEPTION 'config lookback must be an interval between 0 and 30 days, such as "10 minutes"'
                USING ERRCODE = 'invalid_parameter_value';
        END;
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_validate(jsonb) IS
    'checks an opsgenie source''s config: query (required); optional service, service_map, lookback, since';

CREATE FUNCTION engineering._opsgenie_service(config jsonb, incident jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(
        (SELECT config->'service_map'->>s.id
         FROM jsonb_array_elements_text(svc.ids) WITH ORDINALITY AS s(id, o)
         WHERE config->'service_map' ? s.id ORDER BY s.o LIMIT 1),
        engineering._map_service(config, (SELECT nullif(btrim(s.id), '')
                                          FROM jsonb_array_elements_text(svc.ids) WITH ORDINALITY AS s(id, o)
                                          ORDER BY s.o LIMIT 1)),
        'unknown')
    FROM (SELECT coalesce(
              (SELECT jsonb_agg(e ORDER BY o) FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(incident->'impactedServices') = 'array'
                        THEN incident->'impactedServices' ELSE '[]' END) WITH ORDINALITY AS x(e, o)
               WHERE jsonb_typeof(e) = 'string'),
              CASE WHEN jsonb_typeof(incident->'serviceId') = 'string'
                   THEN jsonb_build_array(incident->'serviceId') END,
              '[]') AS ids) svc;
END;
COMMENT ON FUNCTION engineering._opsgenie_service(jsonb, jsonb) IS
    'service of an Opsgenie incident: the first impacted service id found in service_map, else the first one through _map_service (config service, else the id), else "unknown"';

CREATE FUNCTION engineering._opsgenie_status(status text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE status
    WHEN 'open' THEN 'open'
    WHEN 'resolved' THEN 'resolved'
    WHEN 'closed' THEN 'resolved'
    ELSE 'open' END;
COMMENT ON FUNCTION engineering._opsgenie_status(text) IS
    'incidents.status of an Opsgenie status: open; resolved and closed resolved; anything else open (kept in attributes, fetched again until resolved)';

CREATE FUNCTION engineering._opsgenie_scope(config jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_build_object('query', config->'query', 'since', config->'since');
COMMENT ON FUNCTION engineering._opsgenie_scope(jsonb) IS
    'what a watermark was reached for (query and since): a change restarts the backfill';

CREATE FUNCTION engineering._opsgenie_incidents_url(config jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '/v1/incidents?query=' || engineering._urlencode(config->>'query')
    || '&offset=0&limit=100&sort=createdAt&order=desc';
COMMENT ON FUNCTION engineering._opsgenie_incidents_url(jsonb) IS
    'path of the first page of GET /v1/incidents for the config query, newest first, 100 per page';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/opsgenie.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._opsgenie_map_incidents(src_id integer, config jsonb, items jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of Opsgenie incidents, got %', coalesce(jsonb_typeof(items), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- An incident without an id or a creation time cannot be placed: it
    -- is skipped.  A bad timestamp raises (the page is refused whole).
    WITH raw AS (
        SELECT DISTINCT ON (i->>'id') i
        FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(i->'id') = 'string' AND btrim(i->>'id') <> ''
          AND jsonb_typeof(i->'createdAt') IN ('string', 'number') AND i->>'createdAt' <> ''
        ORDER BY i->>'id', o DESC),
    m AS (
        SELECT i->>'id' AS external_id,
               engineering._opsgenie_service(config, i) AS service,
               nullif(btrim(i->>'message'), '') AS title,
               CASE WHEN jsonb_typeof(i->'priority') = 'string' THEN nullif(i->>'priority', '') END AS severity,
               engineering._opsgenie_status(i->>'status') AS status,
               t.opened AS opened_at,
               CASE WHEN engineering._opsgenie_status(i->>'status') = 'resolved'
                    THEN greatest(coalesce(engineering._ts(i->'impactEndDate'), engineering._ts(i->'updatedAt'),
                                           t.opened), t.opened) END AS resolved_at,
               jsonb_strip_nulls(jsonb_build_object(
                   'opsgenie_id', i->'id', 'tiny_id', i->'tinyId', 'opsgenie_status', i->'status',
                   'priority', i->'priority', 'impacted_services', i->'impactedServices',
                   'service_id', i->'serviceId', 'created_at', i->'createdAt', 'updated_at', i->'updatedAt',
                   'impact_start_date', i->'impactStartDate', 'impact_end_date', i->'impactEndDate',
                   'tags', i->'tags', 'owner_team', i->'ownerTeam')) AS attributes
        FROM raw,
             LATERAL (SELECT coalesce(engineering._ts(i->'impactStartDate'), engineering._ts(i->'createdAt')) AS opened) t),
    up AS (
        INSERT INTO engineering.incidents AS p
            (source_id, external_id, service, title, severity, status, opened_at, resolved_at, attributes)
        SELECT src_id, m.external_id, m.service, m.title, m.severity, m.status, m.opened_at, m.resolved_at,
               m.attributes
        FROM m
        ON CONFLICT (source_id, external_id) DO UPDATE SET
            service = EXCLUDED.service, title = EXCLUDED.title, severity = EXCLUDED.severity,
            status = EXCLUDED.status, opened_at = EXCLUDED.opened_at,
            -- Opsgenie incidents have no acknowledgement; keep one set by hand
            acknowledged_at = CASE WHEN p.acknowledged_at >= EXCLUDED.opened_at THEN p.acknowledged_at END,
            resolved_at = EXCLUDED.resolved_at, attributes = EXCLUDED.attributes
        WHERE (p.service, p.title, p.severity, p.status, p.opened_at, p.resolved_at, p.attributes)
              IS DISTINCT FROM
              (EXCLUDED.service, EXCLUDED.title, EXCLUDED.severity, EXCLUDED.status, EXCLUDED.opened_at,
               EXCLUDED.resolved_at, EXCLUDED.attributes)
        RETURNING 1)
    SELECT count(*) INTO n FROM up;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_map_incidents(integer, jsonb, jsonb) IS
    'upserts Opsgenie incident objects (external_id = incident id; opened at impact start, else createdAt; resolved at impact end, else updatedAt); returns the rows changed';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._opsgenie_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    since timestamptz := engineering._since(src.config);
    lookback interval := coalesce((src.config->>'lookback')::interval, interval '10 minutes');
    watermark timestamptz;
    floor_ts timestamptz;
BEGIN
    -- The list has no time filter: read it newest first down to the
    -- watermark, less a look-back for incidents that reach search late.
    -- A watermark belongs to the query and since it was reached with: when
    -- either changes, the backfill starts again (upserts make that safe).
    IF src.cursor->'incidents_scope' IS DISTINCT FROM engineering._opsgenie_scope(src.config) THEN
        watermark := NULL;
    ELSE
        watermark := engineering._ts(src.cursor->'incidents_created');
    END IF;
    floor_ts := greatest(since, coalesce(watermark - lookback, since));
    PERFORM engineering._enqueue(src.id, 'incidents', engineering._opsgenie_incidents_url(src.config),
        jsonb_build_object('floor', engineering._iso8601(floor_ts), 'watermark', engineering._iso8601(watermark),
                           'scope', engineering._opsgenie_scope(src.config)));

    -- Incidents created before that and not resolved yet: by id.
    INSERT INTO engineering.sync_tasks (source_id, stream, url, payload)
    SELECT src.id, 'incident', '/v1/incidents/' || engineering._urlencode(external_id) || '?identifierType=id',
           jsonb_build_object('incident', external_id, 'missing_ok', true)
    FROM engineering.incidents
    WHERE source_id = src.id AND status <> 'resolved'
      AND coalesce(engineering._ts(attributes->'created_at'), opened_at) < floor_ts
      AND NOT attributes ? 'opsgenie_gone'
    ORDER BY opened_at, external_id;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_plan(engineering.sources) IS
    'connector interface: queues the first page of incidents (newest first, down to the watermark) and the open incidents older than it by id';

CREATE FUNCTION engineering._opsgenie_ingest_incidents(src engineering.sources, task engineering.sync_tasks,
                                                       body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    items jsonb := body->'data';
    floor_ts timestamptz := engineering._ts(task.payload->'floor');
    watermark timestamptz := engineering._ts(task.payload->'watermark');
    newest timestamptz;
    reached_end boolean;
    fresh jsonb;
    next_url text;
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected Opsgenie response: no data array' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Newest first: once an incident is older than the floor, so is the rest.
    SELECT bool_or(c < floor_ts), max(c), coalesce(jsonb_agg(i ORDER BY o) FILTER (WHERE c IS NULL OR c >= floor_ts), '[]')
    INTO reached_end, newest, fresh
    FROM (SELECT i, o, CASE WHEN jsonb_typeof(i->'createdAt') IN ('string', 'number')
                            THEN engineering._ts(i->'createdAt') END AS c
          FROM jsonb_array_elements(items) WITH ORDINALITY AS e(i, o)
          WHERE jsonb_typeof(i) = 'object') x;
    newest := greatest(newest, engineering._ts(task.payload->'newest'));
    n := engineering._opsgenie_map_incidents(src.id, src.config, fresh);

    next_url := CASE WHEN jsonb_typeof(body->'paging'->'next') = 'string' THEN nullif(btrim(body->'paging'->>'next'), '') END;
    IF next_url IS NOT NULL AND jsonb_array_length(items) > 0 AND NOT coalesce(reached_end, false) THEN
        PERFORM engineering._enqueue(src.id, 'incidents', next_url,
            task.payload || jsonb_strip_nulls(jsonb_build_object('newest', engineering._iso8601(newest))));
    ELSIF greatest(watermark, newest) IS NOT NULL THEN
        UPDATE engineering.sources SET cursor = cursor || jsonb_build_object(
            'incidents_created', engineering._iso8601(greatest(watermark, newest)),
            'incidents_scope', task.payload->'scope')
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_ingest_incidents(engineering.sources, engineering.sync_tasks, jsonb) IS
    'a page of incidents (newest first): maps those at or after the floor, follows paging.next until the floor, then advances incidents_created';

CREATE FUNCTION engineering._opsgenie_ingest(src engineering.sources, task engineering.sync_tasks,
                                             status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    CASE task.stream
    WHEN 'incidents' THEN
        RETURN engineering._opsgenie_ingest_incidents(src, task, body);
    WHEN 'incident' THEN
        IF body IS NULL THEN
            -- 404/410: deleted, or the key lost access; stop asking
            UPDATE engineering.incidents SET attributes = attributes || '{"opsgenie_gone": true}'
            WHERE source_id = src.id AND external_id = task.payload->>'incident';
            RETURN 0;
        END IF;
        IF jsonb_typeof(body->'data') IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'unexpected Opsgenie response: no data object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN engineering._opsgenie_map_incidents(src.id, src.config, jsonb_build_array(body->'data'));
    ELSE
        RAISE EXCEPTION 'unknown Opsgenie stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END CASE;
END;
$$;
COMMENT ON FUNCTION engineering._opsgenie_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps one Opsgenie response to rows, queues follow-up requests and advances the cursor; returns rows changed';
-- engineering_metrics: the Prometheus connector (HTTP API v1, range queries),
-- which feeds an SLO's measurements.
--
-- A source names one SLO and two PromQL expressions that return, at each
-- evaluation instant t, the number of good and of total events in the step
-- ending at t (for example sum(increase(http_requests_total[1m])) with a
-- 1m step).  Each step becomes one engineering.slo_measurements row with
-- measured_at = t, upserted on (slo_id, measured_at).
--
-- Streams (sync_tasks.stream), two per window of steps:
--   total   GET /api/v1/query_range?query=<total_query>&start=&end=&step=
--           the window's totals, summed over series, are carried in the
--           payload of the window's good request (or, for a window without
--           traffic, the window is done at once);
--   good    the same window for good_query: the window's measurements are
--           written, the watermark advances, the next window is queued.
-- A window holds at most max_points steps (default 11,000, Prometheus'
-- limit on points per series).  Steps lie on a grid of multiples of the
-- step since the epoch, so that re-reads land on the same instants.
--
-- Watermark in sources.cursor: synced_to, the last step of the last window
-- written.  Each sync re-reads the steps of the last lookback before it
-- (late samples, remote-write delays) and then everything up to now.  Also
-- in the cursor, for the user: last_skipped (the latest step whose value
-- was not a count), last_clamped (the latest step with good > total) and
-- warnings (Prometheus' warnings for the latest window, if any).

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

-- Durations are written as Prometheus writes them ("30s", "1m", "1h30m",
-- "500ms"), as a number of seconds, or in words ("10 minutes"), because
-- users copy them from their dashboards and rules.  Parsed with regular
-- expressions only (no cast that could raise), so that a bad value gets
-- the connector's own message.
CREATE FUNCTION engineering._prometheus_seconds(value jsonb)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN jsonb_typeof(value) = 'number' THEN (value #>> '{}')::numeric
    WHEN jsonb_typeof(value) IS DISTINCT FROM 'string' THEN NULL
    WHEN btrim(value #>> '{}') ~ '^\d{1,12}(\.\d{1,9})?$' THEN btrim(value #>> '{}')::numeric
    WHEN btrim(value #>> '{}') ~ '^(\d{1,12}y)?(\d{1,12}w)?(\d{1,12}d)?(\d{1,12}h)?(\d{1,12}m)?(\d{1,12}s)?(\d{1,12}ms)?$'
         AND btrim(value #>> '{}') <> '' THEN
        (SELECT coalesce(m[1]::numeric * 31536000, 0) + coalesce(m[2]::numeric * 604800, 0)
                + coalesce(m[3]::numeric * 86400, 0) + coalesce(m[4]::numeric * 3600, 0)
                + coalesce(m[5]::numeric * 60, 0) + coalesce(m[6]::numeric, 0)
                + coalesce(trim_scale(m[7]::numeric / 1000), 0)
         FROM regexp_match(btrim(value #>> '{}'),
                           '^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$') m)
    WHEN lower(btrim(value #>> '{}')) ~ '^\d{1,12}\s*(seconds?|secs?|minutes?|mins?|hours?|days?|weeks?)$' THEN
        (SELECT m[1]::numeric * CASE
                    WHEN m[2] LIKE 'sec%' THEN 1 WHEN m[2] LIKE 'min%' THEN 60
                    WHEN m[2] LIKE 'hour%' THEN 3600 WHEN m[2] LIKE 'day%' THEN 86400
                    ELSE 604800 END
         FROM regexp_match(lower(btrim(value #>> '{}')), '^(\d+)\s*([a-z]+)$') m)
    END;
COMMENT ON FUNCTION engineering._prometheus_seconds(jsonb) IS
    'internal: a duration in seconds from a Prometheus duration ("30s", "1m", "1h30m", "500ms"), a number of seconds, or words ("10 minutes"); NULL when it is none of these';

CREATE FUNCTION engineering._prometheus_duration(seconds bigint)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN seconds % 3600 = 0 THEN (seconds / 3600) || 'h'
    WHEN seconds % 60 = 0 THEN (seconds / 60) || 'm'
    ELSE seconds || 's' END;
COMMENT ON FUNCTION engineering._prometheus_duration(bigint) IS
    'internal: whole seconds as a Prometheus duration ("1m", "90s", "2h"), what $step stands for in the queries';

CREATE FUNCTION engineering._prometheus_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    unknown text;
    step numeric := engineering._prometheus_seconds(config->'step');
    lookback numeric := engineering._prometheus_seconds(config->'lookback');
BEGIN
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
    FROM jsonb_object_keys(config) k
    WHERE k NOT IN ('slo', 'good_query', 'total_query', 'step', 'since', 'lookback', 'max_points',
                    'token_file', 'token_env');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown config key(s) for a prometheus source: %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A prometheus source understands slo, good_query, total_query, step, since, lookback, max_points, token_file and token_env.';
    END IF;
    IF jsonb_typeof(config->'slo') IS DISTINCT FROM 'string' OR btrim(config->>'slo') = '' THEN
        RAISE EXCEPTION 'a prometheus source needs config slo, the name of the SLO it measures'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"slo": "checkout-availability", "good_query": "...", "total_query": "...", "step": "1m"}.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.slos s WHERE s.name = config->>'slo') THEN
        RAISE EXCEPTION 'config slo "%" is not an SLO', config->>'slo'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Define it first in engineering.slos (name, service, objective, period).';
    END IF;
    IF jsonb_typeof(config->'good_query') IS DISTINCT FROM 'string' OR btrim(config->>'good_query') = ''
       OR jsonb_typeof(config->'total_query') IS DISTINCT FROM 'string' OR btrim(config->>'total_query') = '' THEN
        RAISE EXCEPTION 'a prometheus source needs config good_query and total_query, PromQL expressions that count events per step'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example "sum(increase(http_requests_total{code!~\"5..\"}[$step]))" and "sum(increase(http_requests_total[$step]))".';
    END IF;
    IF step IS NULL OR step <> trunc(step) OR step < 1 OR step > 86400 THEN
        RAISE EXCEPTION 'config step must be a whole number of seconds between 1s and 1d, got %',
                coalesce((config->'step')::text, 'nothing')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A Prometheus duration such as "30s", "1m" or "5m", or a number of seconds; the finest step that still fits the shortest alert window (5 minutes) is the best, usually "1m".';
    END IF;
    IF config ? 'lookback' AND (lookback IS NULL OR lookback < 0 OR lookback > 604800) THEN
        RAISE EXCEPTION 'config lookback must be a duration between 0 and 7 days, got %', config->'lookback'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example "10m" or "10 minutes".';
    END IF;
    IF config ? 'max_points' AND (jsonb_typeof(config->'max_points') <> 'number'
        OR (config->>'max_points')::numeric <> trunc((config->>'max_points')::numeric)
        OR (config->>'max_points')::numeric NOT BETWEEN 1 AND 11000) THEN
        RAISE EXCEPTION 'config max_points must be a whole number between 1 and 11000, got %', config->'max_points'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Prometheus refuses more than 11,000 points per series; lower it for servers with a smaller limit.';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_validate(jsonb) IS
    'checks a prometheus source''s config: slo (an existing SLO), good_query, total_query, step (1s..1d, whole seconds); optional since, lookback (0..7 days), max_points (1..11000); no other keys';

CREATE FUNCTION engineering._prometheus_query(config jsonb, which text, step_seconds bigint)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(config->>which, '\$\{step\}|\$step\M',
                      engineering._prometheus_duration(step_seconds), 'g');
COMMENT ON FUNCTION engineering._prometheus_query(jsonb, text, bigint) IS
    'internal: config good_query or total_query with $step (or ${step}) replaced by the step as a Prometheus duration';

CREATE FUNCTION engineering._prometheus_url(query text, from_s bigint, to_s bigint, step_seconds bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN '/api/v1/query_range?query=' || engineering._urlencode(query)
    || '&start=' || engineering._urlencode(engineering._iso8601(to_timestamp(from_s)))
    || '&end=' || engineering._urlencode(engineering._iso8601(to_timestamp(to_s)))
    || '&step=' || step_seconds || 's';
COMMENT ON FUNCTION engineering._prometheus_url(text, bigint, bigint, bigint) IS
    'internal: path of a range query evaluated at from_s, from_s + step, ... up to to_s (epoch seconds)';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/prometheus.sql)
------------------------------------------------------------------------------

-- Reads one query_range response: checks its shape, keeps the samples at
-- the window's instants and sums the series per instant (a query that
-- returns one series per instance or status code counts all of them, as
-- if it were wrapped in sum()).  Values are kept as text: a finite sum,
-- or NaN, +Inf, -Inf, which _prometheus_map refuses as counts.
CREATE FUNCTION engineering._prometheus_points(body jsonb, from_s bigint, to_s bigint, step_seconds bigint)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    result jsonb := body->'data'->'result';
    bad jsonb;
    points jsonb;
BEGIN
    IF jsonb_typeof(body) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'unexpected Prometheus response: expected a JSON object, got %', coalesce(jsonb_typeof(body), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body->>'status' = 'error' THEN
        RAISE EXCEPTION 'prometheus query failed (%): %',
                coalesce(body->>'errorType', 'no error type'), coalesce(body->>'error', 'no message')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body->>'status' IS DISTINCT FROM 'success' THEN
        RAISE EXCEPTION 'unexpected Prometheus response: status %', coalesce((body->'status')::text, 'missing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF body->'data'->>'resultType' IS DISTINCT FROM 'matrix' THEN
        RAISE EXCEPTION 'unexpected Prometheus result type %, expected "matrix"', coalesce((body->'data'->'resultType')::text, 'missing')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A range query returns a matrix for any expression that yields an instant vector or a scalar.';
    END IF;
    IF jsonb_typeof(result) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected Prometheus response: data.result is not an array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT s INTO bad
    FROM jsonb_array_elements(result) s
    WHERE CASE WHEN jsonb_typeof(s) <> 'object' THEN true
               ELSE s ? 'values' AND jsonb_typeof(s->'values') <> 'array' END
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unexpected Prometheus series: %', left(bad::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(result) s WHERE s ? 'histograms') THEN
        RAISE EXCEPTION 'the query returned native histogram samples, not counts'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Count observations with histogram_count(), e.g. sum(histogram_count(increase(x[$step]))).';
    END IF;
    SELECT p INTO bad
    FROM jsonb_array_elements(result) s,
         jsonb_array_elements(coalesce(s->'values', '[]')) p
    WHERE CASE WHEN jsonb_typeof(p) <> 'array' THEN true
               WHEN jsonb_array_length(p) <> 2 THEN true
               WHEN jsonb_typeof(p->0) <> 'number' OR jsonb_typeof(p->1) <> 'string' THEN true
               ELSE NOT (p->>1 ~ '^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?$'
                         OR p->>1 IN ('NaN', '+Inf', 'Inf', '-Inf')) END
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unexpected Prometheus sample %, expected [<unix time>, "<value>"]', left(bad::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the instants asked for are from_s, from_s + step, ..., to_s
    SELECT p INTO bad
    FROM jsonb_array_elements(result) s,
         jsonb_array_elements(coalesce(s->'values', '[]')) p
    WHERE (p->>0)::numeric BETWEEN from_s AND to_s
      AND ((p->>0)::numeric - from_s) % step_seconds <> 0
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'unexpected Prometheus sample time % (the query asked for every % s from %)',
                bad->0, step_seconds, engineering._iso8601(to_timestamp(from_s))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT jsonb_object_agg(t::text, v ORDER BY t) INTO points
    FROM (SELECT x.t,
                 CASE WHEN bool_or(x.v = 'NaN')
                           OR (bool_or(x.v IN ('+Inf', 'Inf')) AND bool_or(x.v = '-Inf')) THEN 'NaN'
                      WHEN bool_or(x.v IN ('+Inf', 'Inf')) THEN '+Inf'
                      WHEN bool_or(x.v = '-Inf') THEN '-Inf'
                      ELSE trim_scale(sum(CASE WHEN x.v NOT IN ('NaN', '+Inf', 'Inf', '-Inf')
                                               THEN x.v::numeric END))::text END AS v
          FROM (SELECT (p->>0)::numeric::bigint AS t, p->>1 AS v
                FROM jsonb_array_elements(result) s,
                     jsonb_array_elements(coalesce(s->'values', '[]')) p
                WHERE (p->>0)::numeric BETWEEN from_s AND to_s) x
          GROUP BY x.t) y;
    RETURN coalesce(points, '{}');
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_points(jsonb, bigint, bigint, bigint) IS
    'internal: a query_range response as {"<epoch>": "<value>"} for the window''s instants, series summed per instant (NaN, +Inf, -Inf kept as such); raises on an error body or an unexpected shape';

-- Writes a window: the steps with a total become measurements, and the
-- source's earlier measurements in the window that the server no longer
-- reports are removed, so that after each window the stored rows are
-- exactly what the server says now (late and corrected data included).
CREATE FUNCTION engineering._prometheus_map(src_id integer, slo_id integer, from_s bigint, to_s bigint,
                                            step_seconds bigint, totals jsonb, goods jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    summary jsonb;
BEGIN
    IF jsonb_typeof(totals) IS DISTINCT FROM 'object' OR jsonb_typeof(goods) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'expected two JSON objects of points' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- A step without a total has no traffic: no row.  A step with a total
    -- but no good sample had no good events (sum() over nothing returns
    -- nothing, not 0).  Counts are rounded: increase() extrapolates, so the
    -- counts it returns are rarely whole.
    WITH raw AS (
        SELECT k.t, k.tv, k.gv,
               CASE WHEN k.tv NOT IN ('NaN', '+Inf', 'Inf', '-Inf') THEN round(k.tv::numeric) END AS total_r,
               CASE WHEN k.gv IS NULL THEN 0
                    WHEN k.gv NOT IN ('NaN', '+Inf', 'Inf', '-Inf') THEN round(k.gv::numeric) END AS good_r
        FROM (SELECT e.key::bigint AS t, e.value AS tv, goods->>e.key AS gv
              FROM jsonb_each_text(totals) e
              WHERE e.key ~ '^\d{1,15}$') k
        WHERE k.t BETWEEN from_s AND to_s AND (k.t - from_s) % step_seconds = 0
    ),
    judged AS (
        SELECT r.*,
               CASE WHEN r.tv IN ('NaN', '+Inf', 'Inf', '-Inf') THEN 'total is ' || r.tv
                    WHEN r.gv IN ('NaN', '+Inf', 'Inf', '-Inf') THEN 'good is ' || r.gv
                    WHEN r.total_r < 0 THEN 'total is negative (' || r.tv || ')'
                    WHEN r.good_r < 0 THEN 'good is negative (' || r.gv || ')'
                    WHEN r.total_r > 9223372036854775807 OR r.good_r > 9223372036854775807
                        THEN 'count out of range'
               END AS problem
        FROM raw r
    ),
    steps AS MATERIALIZED (
        SELECT j.t, to_timestamp(j.t) AS at, j.problem,
               CASE WHEN j.problem IS NULL THEN least(j.good_r, j.total_r)::bigint END AS good,
               CASE WHEN j.problem IS NULL THEN j.total_r::bigint END AS total,
               j.problem IS NULL AND j.good_r > j.total_r AS clamped
        FROM judged j
        WHERE j.problem IS NOT NULL OR j.total_r > 0
    ),
    up AS (
        INSERT INTO engineering.slo_measurements AS m (slo_id, measured_at, good, total, source_id)
        SELECT _prometheus_map.slo_id, p.at, p.good, p.total, src_id
        FROM steps p
        WHERE p.problem IS NULL
        ON CONFLICT ON CONSTRAINT slo_measurements_pkey DO UPDATE
            SET good = EXCLUDED.good, total = EXCLUDED.total, source_id = EXCLUDED.source_id
            WHERE (m.good, m.total, m.source_id) IS DISTINCT FROM (EXCLUDED.good, EXCLUDED.total, EXCLUDED.source_id)
        RETURNING 1
    ),
    gone AS (
        -- the window covers the steps (from_s - step, from_s] ... (to_s - step, to_s]
        DELETE FROM engineering.slo_measurements m
        WHERE m.slo_id = _prometheus_map.slo_id AND m.source_id = src_id
          AND m.measured_at > to_timestamp(from_s - step_seconds) AND m.measured_at <= to_timestamp(to_s)
          -- (a hashed subplan: one probe per stored row)
          AND m.measured_at NOT IN (SELECT p.at FROM steps p WHERE p.problem IS NULL)
        RETURNING 1
    )
    SELECT jsonb_build_object(
               'upserted', (SELECT count(*) FROM up),
               'deleted', (SELECT count(*) FROM gone),
               'steps', (SELECT count(*) FROM steps WHERE problem IS NULL),
               'skipped', (SELECT count(*) FROM steps WHERE problem IS NOT NULL),
               'clamped', (SELECT count(*) FROM steps WHERE clamped),
               'last_skipped', (SELECT jsonb_build_object('at', engineering._iso8601(to_timestamp(p.t)), 'reason', p.problem)
                                FROM steps p WHERE p.problem IS NOT NULL
                                ORDER BY p.t DESC LIMIT 1),
               'last_clamped', (SELECT jsonb_build_object('at', engineering._iso8601(to_timestamp(p.t)),
                                                          'good', goods->>(p.t::text), 'total', totals->>(p.t::text))
                                FROM steps p WHERE p.clamped
                                ORDER BY p.t DESC LIMIT 1))
    INTO summary;
    RETURN summary;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_map(integer, integer, bigint, bigint, bigint, jsonb, jsonb) IS
    'writes a window of steps as measurements of an SLO (good clamped to total, non-counts skipped, the source''s rows the server no longer reports removed); returns {upserted, deleted, steps, skipped, clamped, last_skipped, last_clamped}';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._prometheus_enqueue_window(src engineering.sources, from_s bigint, until_s bigint,
                                                       step_seconds bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    to_s bigint := least(from_s + (coalesce((src.config->>'max_points')::bigint, 11000) - 1) * step_seconds, until_s);
BEGIN
    PERFORM engineering._enqueue(src.id, 'total',
        engineering._prometheus_url(engineering._prometheus_query(src.config, 'total_query', step_seconds),
                                    from_s, to_s, step_seconds),
        jsonb_build_object('from', from_s, 'to', to_s, 'until', until_s, 'step', step_seconds));
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_enqueue_window(engineering.sources, bigint, bigint, bigint) IS
    'internal: queues the total request of the window of at most max_points steps starting at from_s (epoch seconds), not past until_s';

CREATE FUNCTION engineering._prometheus_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    step_seconds bigint := engineering._prometheus_seconds(src.config->'step');
    the_slo engineering.slos;
    since timestamptz;
    lookback_steps bigint;
    first_s bigint;
    until_s bigint;
    synced_s bigint;
    from_s bigint;
BEGIN
    -- sources written without add_source(), and SLOs renamed or removed
    -- since, fail here with the message add_source() would have given
    PERFORM engineering._prometheus_validate(src.config);
    SELECT * INTO the_slo FROM engineering.slos s WHERE s.id = engineering._slo_id(src.config->>'slo');
    -- by default, the SLO's current period: what slo_status() reads
    since := CASE WHEN coalesce(src.config->>'since', '') = '' THEN now() - the_slo.period
                  ELSE engineering._since(src.config) END;
    -- the first step ends at the first instant of the grid after since
    first_s := floor(extract(epoch FROM since) / step_seconds)::bigint * step_seconds + step_seconds;
    -- the last is the last one that has ended
    until_s := floor(extract(epoch FROM now()) / step_seconds)::bigint * step_seconds;
    lookback_steps := ceil(coalesce(engineering._prometheus_seconds(src.config->'lookback'), 600) / step_seconds);
    synced_s := floor(extract(epoch FROM engineering._ts(src.cursor->'synced_to')) / step_seconds)::bigint * step_seconds;

    from_s := CASE WHEN synced_s IS NULL THEN first_s
                   ELSE greatest(first_s, synced_s - (lookback_steps - 1) * step_seconds) END;
    IF from_s <= until_s THEN
        PERFORM engineering._prometheus_enqueue_window(src, from_s, until_s, step_seconds);
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_plan(engineering.sources) IS
    'connector interface: queues the first window of steps, from since (default: the SLO''s period ago) or from the watermark less lookback (default 10 minutes), up to the last step that has ended';

CREATE FUNCTION engineering._prometheus_ingest(src engineering.sources, task engineering.sync_tasks,
                                               status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    from_s bigint := (task.payload->>'from')::bigint;
    to_s bigint := (task.payload->>'to')::bigint;
    until_s bigint := (task.payload->>'until')::bigint;
    step_seconds bigint := (task.payload->>'step')::bigint;
    points jsonb;
    summary jsonb;
    warnings jsonb;
BEGIN
    IF task.stream NOT IN ('total', 'good') THEN
        RAISE EXCEPTION 'unknown Prometheus stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END IF;
    points := engineering._prometheus_points(body, from_s, to_s, step_seconds);
    warnings := coalesce(task.payload->'warnings', '[]')
        || CASE WHEN jsonb_typeof(body->'warnings') = 'array' THEN body->'warnings' ELSE '[]' END;

    IF task.stream = 'total' AND points <> '{}' THEN
        PERFORM engineering._enqueue(src.id, 'good',
            engineering._prometheus_url(engineering._prometheus_query(src.config, 'good_query', step_seconds),
                                        from_s, to_s, step_seconds),
            task.payload || jsonb_build_object('totals', points, 'warnings', warnings));
        RETURN 0;
    END IF;

    -- a window without any total needs no good request: it has no traffic
    summary := engineering._prometheus_map(src.id, engineering._slo_id(src.config->>'slo'),
                                           from_s, to_s, step_seconds,
                                           CASE WHEN task.stream = 'good' THEN task.payload->'totals' ELSE '{}' END,
                                           CASE WHEN task.stream = 'good' THEN points ELSE '{}' END);
    UPDATE engineering.sources s SET cursor = (s.cursor - 'warnings')
        || jsonb_build_object('synced_to', engineering._iso8601(to_timestamp(
               greatest(to_s, extract(epoch FROM engineering._ts(s.cursor->'synced_to'))::bigint))))
        || jsonb_strip_nulls(jsonb_build_object(
               'last_skipped', summary->'last_skipped',
               'last_clamped', summary->'last_clamped',
               'warnings', CASE WHEN warnings <> '[]' THEN warnings END))
    WHERE s.id = src.id;
    IF to_s < until_s THEN
        PERFORM engineering._prometheus_enqueue_window(src, to_s + step_seconds, until_s, step_seconds);
    END IF;
    RETURN (summary->>'upserted')::bigint + (summary->>'deleted')::bigint;
END;
$$;
COMMENT ON FUNCTION engineering._prometheus_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: a window''s totals queue its good request; its good counts write the measurements, advance synced_to and queue the next window; returns measurements changed';
-- engineering_metrics: DORA analytics, part 1: the choices.
--
-- The open-source DORA tools disagree on definitions (where lead time
-- starts, which environment counts, what "daily" means, which tiers grade a
-- team), and their users complain about exactly that.  Every contested
-- choice is stated here, in two user-editable tables:
--
--   dora_settings     one row: the defaults every DORA function and view uses
--                     (each function also takes them as parameters);
--   dora_benchmarks   the performance tiers of the DORA reports, looked up by
--                     dora() for its *_level columns.
--
-- Both are extension configuration tables, so pg_dump keeps the user's
-- edits.  A restore replays the dumped rows after CREATE EXTENSION has put
-- the defaults back; the BEFORE INSERT triggers below turn such a replayed
-- row into an update of the row it replaces instead of a duplicate-key error.

CREATE TABLE engineering.dora_settings (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CHECK (singleton OR engineering._reject_value('dora_settings.singleton', singleton::text, 'dora_settings holds exactly one row')),
    production_environment text NOT NULL DEFAULT 'production'
                    CHECK (btrim(production_environment) <> ''
                           OR engineering._reject_value('dora_settings.production_environment', production_environment, 'name the environment that counts as production')),
    lead_time_start text NOT NULL DEFAULT 'committed_at'
                    CHECK (lead_time_start IN ('committed_at', 'authored_at', 'pr_first_commit')
                           OR engineering._reject_value('dora_settings.lead_time_start', lead_time_start, 'expected committed_at, authored_at or pr_first_commit')),
    benchmark_year  integer NOT NULL DEFAULT 2023
);
INSERT INTO engineering.dora_settings DEFAULT VALUES;

COMMENT ON TABLE engineering.dora_settings IS
    'the one row of DORA defaults: which environment is production, where lead time starts, which report year grades the levels; edit it with UPDATE';
COMMENT ON COLUMN engineering.dora_settings.singleton IS 'always true: the table has exactly one row';
COMMENT ON COLUMN engineering.dora_settings.production_environment IS
    'the deployments.environment that dora(), attribute_incidents() and pull_request_cycle_times use when not told otherwise (default production)';
COMMENT ON COLUMN engineering.dora_settings.lead_time_start IS
    'where lead time starts: committed_at (committer date, default), authored_at (author date), or pr_first_commit (first commit of the pull request a merge or squash commit landed)';
COMMENT ON COLUMN engineering.dora_settings.benchmark_year IS
    'the report year of dora_benchmarks that dora() grades with when not told otherwise (default 2023)';

CREATE TABLE engineering.dora_benchmarks (
    report_year     integer NOT NULL,
    metric          text NOT NULL
                    CHECK (metric IN ('deployment_frequency', 'lead_time', 'change_failure_rate', 'time_to_restore')
                           OR engineering._reject_value('dora_benchmarks.metric', metric,
                                                        'expected deployment_frequency, lead_time, change_failure_rate or time_to_restore')),
    level           text NOT NULL
                    CHECK (btrim(level) <> '' OR engineering._reject_value('dora_benchmarks.level', level, 'a level needs a name')),
    rank            integer NOT NULL
                    CHECK (rank >= 1 OR engineering._reject_value('dora_benchmarks.rank', rank::text, 'ranks start at 1 (the best level)')),
    min_deployment_days numeric
                    CHECK (min_deployment_days IS NULL OR min_deployment_days > 0
                           OR engineering._reject_value('dora_benchmarks.min_deployment_days', min_deployment_days::text, 'must be positive')),
    per_period      text
                    CHECK (per_period IS NULL OR per_period IN ('week', 'month', 'half-year')
                           OR engineering._reject_value('dora_benchmarks.per_period', per_period, 'expected week, month or half-year')),
    max_duration    interval
                    CHECK (max_duration IS NULL OR max_duration > interval '0'
                           OR engineering._reject_value('dora_benchmarks.max_duration', max_duration::text, 'must be positive')),
    max_rate        numeric
                    CHECK (max_rate IS NULL OR max_rate BETWEEN 0 AND 1
                           OR engineering._reject_value('dora_benchmarks.max_rate', max_rate::text, 'a rate between 0 and 1')),
    description     text,
    PRIMARY KEY (report_year, metric, level),
    CONSTRAINT dora_benchmarks_rank_key UNIQUE (report_year, metric, rank),
    -- each metric is graded by its own kind of bound; a row without a bound
    -- is the catch-all (lowest) level
    CONSTRAINT dora_benchmarks_bound_fits_metric CHECK (
        CASE metric
            WHEN 'deployment_frequency' THEN max_duration IS NULL AND max_rate IS NULL
                                             AND (min_deployment_days IS NULL) = (per_period IS NULL)
            WHEN 'change_failure_rate' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_duration IS NULL
            WHEN 'lead_time' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            WHEN 'time_to_restore' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            ELSE true   -- an unknown metric is refused by its own check
        END
        OR engineering._reject_value('dora_benchmarks bounds', metric,
                                     'deployment_frequency rows set min_deployment_days and per_period, lead_time and time_to_restore rows max_duration, change_failure_rate rows max_rate (or none of them for the lowest level)'))
);

COMMENT ON TABLE engineering.dora_benchmarks IS
    'DORA performance tiers per report year; dora() gives each metric the best-ranked level whose bound it meets.  Edit or add years freely';
COMMENT ON COLUMN engineering.dora_benchmarks.report_year IS 'year of the State of DevOps report the tiers come from (2021 and 2023 are shipped)';
COMMENT ON COLUMN engineering.dora_benchmarks.metric IS 'deployment_frequency, lead_time, change_failure_rate or time_to_restore';
COMMENT ON COLUMN engineering.dora_benchmarks.level IS 'the level name dora() reports (elite, high, medium, low)';
COMMENT ON COLUMN engineering.dora_benchmarks.rank IS 'order of the levels, 1 = best; the first level (by rank) whose bound holds is the one reported';
COMMENT ON COLUMN engineering.dora_benchmarks.min_deployment_days IS
    'deployment_frequency: the level holds when the median number of days with a deployment per per_period is at least this';
COMMENT ON COLUMN engineering.dora_benchmarks.per_period IS
    'deployment_frequency: week (Monday to Sunday, UTC), month or half-year (January-June, July-December)';
COMMENT ON COLUMN engineering.dora_benchmarks.max_duration IS
    'lead_time, time_to_restore: the level holds when the median is strictly below this (PostgreSQL compares a month as 30 days)';
COMMENT ON COLUMN engineering.dora_benchmarks.max_rate IS 'change_failure_rate: the level holds when the rate (0 to 1) is at most this';
COMMENT ON COLUMN engineering.dora_benchmarks.description IS 'what the report calls the tier';

-- The tiers as Apache DevLake encodes the 2021 and 2023 reports (see
-- README, "DORA analytics"): "on demand" is at least 5 deployment days in
-- the median week.
INSERT INTO engineering.dora_benchmarks
    (report_year, metric, level, rank, min_deployment_days, per_period, max_duration, max_rate, description)
VALUES
    (2021, 'deployment_frequency', 'elite',  1, 5, 'week',      NULL, NULL, 'on demand (multiple deploys per day)'),
    (2021, 'deployment_frequency', 'high',   2, 1, 'month',     NULL, NULL, 'between once per day and once per month'),
    (2021, 'deployment_frequency', 'medium', 3, 1, 'half-year', NULL, NULL, 'between once per month and once every six months'),
    (2021, 'deployment_frequency', 'low',    4, NULL, NULL,     NULL, NULL, 'fewer than once every six months'),
    (2021, 'lead_time',            'elite',  1, NULL, NULL, '1 hour',   NULL, 'less than one hour'),
    (2021, 'lead_time',            'high',   2, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2021, 'lead_time',            'medium', 3, NULL, NULL, '6 mons',   NULL, 'between one week and six months'),
    (2021, 'lead_time',            'low',    4, NULL, NULL, NULL,       NULL, 'more than six months'),
    (2021, 'change_failure_rate',  'elite',  1, NULL, NULL, NULL,       0.15, '0-15%'),
    (2021, 'change_failure_rate',  'high',   2, NULL, NULL, NULL,       0.20, '16-20%'),
    (2021, 'change_failure_rate',  'medium', 3, NULL, NULL, NULL,       0.30, '21-30%'),
    (2021, 'change_failure_rate',  'low',    4, NULL, NULL, NULL,       NULL, 'more than 30%'),
    (2021, 'time_to_restore',      'elite',  1, NULL, NULL, '1 hour',   NULL, 'less than one hour'),
    (2021, 'time_to_restore',      'high',   2, NULL, NULL, '1 day',    NULL, 'less than one day'),
    (2021, 'time_to_restore',      'medium', 3, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2021, 'time_to_restore',      'low',    4, NULL, NULL, NULL,       NULL, 'more than one week'),
    (2023, 'deployment_frequency', 'elite',  1, 5, 'week',      NULL, NULL, 'on demand (multiple deploys per day)'),
    (2023, 'deployment_frequency', 'high',   2, 1, 'week',      NULL, NULL, 'between once per day and once per week'),
    (2023, 'deployment_frequency', 'medium', 3, 1, 'month',     NULL, NULL, 'between once per week and once per month'),
    (2023, 'deployment_frequency', 'low',    4, NULL, NULL,     NULL, NULL, 'fewer than once per month'),
    (2023, 'lead_time',            'elite',  1, NULL, NULL, '1 day',    NULL, 'less than one day'),
    (2023, 'lead_time',            'high',   2, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2023, 'lead_time',            'medium', 3, NULL, NULL, '1 mon',    NULL, 'between one week and one month'),
    (2023, 'lead_time',            'low',    4, NULL, NULL, NULL,       NULL, 'more than one month'),
    (2023, 'change_failure_rate',  'elite',  1, NULL, NULL, NULL,       0.05, '0-5%'),
    (2023, 'change_failure_rate',  'high',   2, NULL, NULL, NULL,       0.10, '5-10%'),
    (2023, 'change_failure_rate',  'medium', 3, NULL, NULL, NULL,       0.15, '10-15%'),
    (2023, 'change_failure_rate',  'low',    4, NULL, NULL, NULL,       NULL, 'more than 15%'),
    (2023, 'time_to_restore',      'elite',  1, NULL, NULL, '1 hour',   NULL, 'less than one hour (failed deployment recovery time)'),
    (2023, 'time_to_restore',      'high',   2, NULL, NULL, '1 day',    NULL, 'less than one day'),
    (2023, 'time_to_restore',      'medium', 3, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2023, 'time_to_restore',      'low',    4, NULL, NULL, NULL,       NULL, 'more than one week');

-- Keep edits across pg_dump/pg_restore (see the header).
CREATE FUNCTION engineering._dora_settings_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.dora_settings
       SET production_environment = NEW.production_environment,
           lead_time_start = NEW.lead_time_start,
           benchmark_year = NEW.benchmark_year
     WHERE singleton = NEW.singleton;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._dora_settings_restore() IS
    'internal trigger: an inserted dora_settings row (as pg_restore replays it) replaces the existing one';
CREATE TRIGGER dora_settings_restore BEFORE INSERT ON engineering.dora_settings
    FOR EACH ROW EXECUTE FUNCTION engineering._dora_settings_restore();

CREATE FUNCTION engineering._dora_benchmarks_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.dora_benchmarks
       SET rank = NEW.rank,
           min_deployment_days = NEW.min_deployment_days,
           per_period = NEW.per_period,
           max_duration = NEW.max_duration,
           max_rate = NEW.max_rate,
           description = NEW.description
     WHERE report_year = NEW.report_year AND metric = NEW.metric AND level = NEW.level;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._dora_benchmarks_restore() IS
    'internal trigger: an inserted dora_benchmarks row whose (report_year, metric, level) exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER dora_benchmarks_restore BEFORE INSERT ON engineering.dora_benchmarks
    FOR EACH ROW EXECUTE FUNCTION engineering._dora_benchmarks_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.dora_settings', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.dora_benchmarks', '');

-- Indexes the DORA functions and views need beyond those of the event
-- schema: deployments whose links came from a connector or a person (few)
-- are found without reading every link.
CREATE INDEX deployment_changes_recorded_idx
    ON engineering.deployment_changes (deployment_id) WHERE linked_by <> 'inferred';
CREATE INDEX deployment_changes_recorded_change_idx
    ON engineering.deployment_changes (change_id) WHERE linked_by <> 'inferred';
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
-- gives other tools their years-old lead times.  A deployment ships the
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
-- engineering_metrics: DORA analytics, part 3: views for dashboards and
-- joins.  Each is written so that filters on its service, environment and
-- time columns reach the indexes of the event tables (a dashboard panel
-- for one service and 30 days reads only that slice).

------------------------------------------------------------------------------
-- change_lead_times: one row per change and environment it shipped to, at
-- the first successful deployment of that environment that shipped it (a
-- change re-linked to a later deployment, e.g. by a connector after a
-- redeploy, is not counted twice).  Lead time starts where
-- dora_settings.lead_time_start says.
------------------------------------------------------------------------------
CREATE VIEW engineering.change_lead_times AS
SELECT f.service,
       f.environment,
       c.id AS change_id,
       c.commit_sha,
       f.deployment_id,
       f.linked_by,
       c.committed_at,
       st.measured_from,
       f.deployed_at,
       CASE WHEN st.measured_from <= f.deployed_at THEN f.deployed_at - st.measured_from END AS lead_time
FROM (
    -- The first successful deployment per change and environment.  Links
    -- inferred by link_changes() are unique per change and environment, so
    -- they only need checking against the connector's and manual links
    -- (few); those are checked against all.  Two anti-joins, rather than
    -- one condition with OR, keep the plan a hash join that can run in
    -- parallel over a quarter of links.
    SELECT d.service, d.environment, d.id AS deployment_id, dc.change_id, dc.linked_by,
           d.finished_at AS deployed_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE d.status = 'success'
      AND dc.linked_by = 'inferred'
      AND NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes e
                      JOIN engineering.deployments ed ON ed.id = e.deployment_id
                      WHERE e.change_id = dc.change_id AND e.linked_by <> 'inferred'
                        AND ed.environment = d.environment AND ed.status = 'success'
                        AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
    UNION ALL
    SELECT d.service, d.environment, d.id, dc.change_id, dc.linked_by, d.finished_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE d.status = 'success'
      AND dc.linked_by <> 'inferred'
      AND NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes e
                      JOIN engineering.deployments ed ON ed.id = e.deployment_id
                      WHERE e.change_id = dc.change_id
                        AND ed.environment = d.environment AND ed.status = 'success'
                        AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
) f
JOIN engineering.changes c ON c.id = f.change_id
CROSS JOIN LATERAL (
    -- (the setting is read by a scalar subquery, evaluated once: a join
    -- with the unanalyzed one-row table would skew the row estimates)
    SELECT CASE (SELECT s.lead_time_start FROM engineering.dora_settings s)
               WHEN 'authored_at' THEN coalesce(c.authored_at, c.committed_at)
               WHEN 'pr_first_commit' THEN
                   coalesce((SELECT min(coalesce(pr.first_commit_at, pr.opened_at))
                               FROM engineering.pull_requests pr
                              WHERE pr.service = c.service AND pr.merge_commit_sha = c.commit_sha),
                            c.committed_at)
               ELSE c.committed_at
           END AS measured_from
) st;

COMMENT ON VIEW engineering.change_lead_times IS
    'one row per shipped change and environment, at its first successful deployment there: when it was committed, deployed, and its lead time';
COMMENT ON COLUMN engineering.change_lead_times.service IS 'the deployed service';
COMMENT ON COLUMN engineering.change_lead_times.environment IS 'the environment the change reached';
COMMENT ON COLUMN engineering.change_lead_times.change_id IS 'the change (engineering.changes.id)';
COMMENT ON COLUMN engineering.change_lead_times.commit_sha IS 'its commit';
COMMENT ON COLUMN engineering.change_lead_times.deployment_id IS 'the first successful deployment of this environment that shipped it';
COMMENT ON COLUMN engineering.change_lead_times.linked_by IS 'how the link was made: connector, inferred (link_changes()) or manual';
COMMENT ON COLUMN engineering.change_lead_times.committed_at IS 'committer date of the change';
COMMENT ON COLUMN engineering.change_lead_times.measured_from IS
    'where its lead time starts, per dora_settings.lead_time_start (committed_at, authored_at, or the first commit of its pull request)';
COMMENT ON COLUMN engineering.change_lead_times.deployed_at IS 'finished_at of that deployment';
COMMENT ON COLUMN engineering.change_lead_times.lead_time IS
    'deployed_at - measured_from; NULL when measured_from is later than deployed_at (clock skew), and such rows are left out of dora()';

------------------------------------------------------------------------------
-- deployment_outcomes: one row per deployment with what followed it.
-- "failed" is a change failure (the deployment caused an incident), not a
-- deployment whose own run failed (that is status = 'failure').
------------------------------------------------------------------------------
CREATE VIEW engineering.deployment_outcomes AS
SELECT d.id AS deployment_id,
       d.service,
       d.environment,
       d.status,
       d.commit_sha,
       d.finished_at,
       (SELECT count(*) FROM engineering.deployment_changes dc WHERE dc.deployment_id = d.id) AS changes,
       coalesce(i.incident_count, 0) > 0 AS failed,
       coalesce(i.incident_count, 0) AS incident_count,
       i.first_incident_at,
       CASE WHEN i.open_count = 0 THEN i.last_resolved_at END AS recovered_at,
       CASE WHEN i.open_count = 0 AND i.last_resolved_at >= d.finished_at
            THEN i.last_resolved_at - d.finished_at END AS recovery_time,
       EXISTS (SELECT 1 FROM engineering.incidents o
               WHERE o.service = d.service
                 AND o.opened_at <= d.finished_at
                 AND (o.resolved_at IS NULL OR o.resolved_at > d.finished_at)) AS during_incident
FROM engineering.deployments d
LEFT JOIN LATERAL (
    SELECT count(*) AS incident_count,
           count(*) FILTER (WHERE x.resolved_at IS NULL) AS open_count,
           min(x.opened_at) AS first_incident_at,
           max(x.resolved_at) AS last_resolved_at
    FROM engineering.incidents x
    WHERE x.cause_deployment_id = d.id
) i ON true;

COMMENT ON VIEW engineering.deployment_outcomes IS
    'one row per deployment: whether it caused incidents (a change failure), when service was restored, and whether it went out during an incident (rework)';
COMMENT ON COLUMN engineering.deployment_outcomes.deployment_id IS 'the deployment';
COMMENT ON COLUMN engineering.deployment_outcomes.service IS 'its service';
COMMENT ON COLUMN engineering.deployment_outcomes.environment IS 'its environment';
COMMENT ON COLUMN engineering.deployment_outcomes.status IS 'its own status (success, failure, cancelled, running); DORA metrics use successful ones';
COMMENT ON COLUMN engineering.deployment_outcomes.commit_sha IS 'head commit deployed';
COMMENT ON COLUMN engineering.deployment_outcomes.finished_at IS 'when it finished';
COMMENT ON COLUMN engineering.deployment_outcomes.changes IS 'how many changes are linked to it (by any means)';
COMMENT ON COLUMN engineering.deployment_outcomes.failed IS 'true when at least one incident is attributed to it (counts once in the change failure rate however many)';
COMMENT ON COLUMN engineering.deployment_outcomes.incident_count IS 'incidents attributed to it';
COMMENT ON COLUMN engineering.deployment_outcomes.first_incident_at IS 'when the first of them opened';
COMMENT ON COLUMN engineering.deployment_outcomes.recovered_at IS 'when the last of them was resolved; NULL while any is open or when there are none';
COMMENT ON COLUMN engineering.deployment_outcomes.recovery_time IS 'recovered_at - finished_at: how long the failure lasted from the deployment on';
COMMENT ON COLUMN engineering.deployment_outcomes.during_incident IS
    'true when it finished while an incident of the same service was open (opened_at <= finished_at < resolved_at): the rework of the rework rate';

------------------------------------------------------------------------------
-- pull_request_cycle_times: the stages of a pull request, up to the first
-- successful deployment to production (dora_settings.production_environment)
-- that shipped its merge, squash or rebase commit.  A stage whose end
-- precedes its start (a rebased first commit, clocks) is NULL rather than
-- negative.
------------------------------------------------------------------------------
CREATE VIEW engineering.pull_request_cycle_times AS
SELECT pr.id AS pull_request_id,
       pr.service,
       pr.number,
       pr.title,
       pr.author,
       pr.first_commit_at,
       pr.opened_at,
       pr.merged_at,
       dep.deployment_id,
       dep.deployed_at,
       CASE WHEN pr.first_commit_at <= pr.opened_at THEN pr.opened_at - pr.first_commit_at END AS coding_time,
       pr.merged_at - pr.opened_at AS review_time,
       CASE WHEN dep.deployed_at >= pr.merged_at THEN dep.deployed_at - pr.merged_at END AS deploy_time,
       CASE WHEN dep.deployed_at >= pr.merged_at
            THEN dep.deployed_at - least(pr.first_commit_at, pr.opened_at) END AS total_time
FROM engineering.pull_requests pr
LEFT JOIN LATERAL (
    SELECT d.id AS deployment_id, d.finished_at AS deployed_at
    FROM engineering.changes c
    JOIN engineering.deployment_changes dc ON dc.change_id = c.id
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE pr.merged_at IS NOT NULL
      AND c.service = pr.service
      AND c.commit_sha = pr.merge_commit_sha
      AND d.status = 'success'
      AND d.environment = (SELECT s.production_environment FROM engineering.dora_settings s)
    ORDER BY d.finished_at, d.id
    LIMIT 1
) dep ON true;

COMMENT ON VIEW engineering.pull_request_cycle_times IS
    'one row per pull request: coding (first commit to opened), review (opened to merged), deploy (merged to first production deployment) and total time';
COMMENT ON COLUMN engineering.pull_request_cycle_times.pull_request_id IS 'the pull request (engineering.pull_requests.id)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.service IS 'its service';
COMMENT ON COLUMN engineering.pull_request_cycle_times.number IS 'its number';
COMMENT ON COLUMN engineering.pull_request_cycle_times.title IS 'its title';
COMMENT ON COLUMN engineering.pull_request_cycle_times.author IS 'its author';
COMMENT ON COLUMN engineering.pull_request_cycle_times.first_commit_at IS 'author date of its first commit';
COMMENT ON COLUMN engineering.pull_request_cycle_times.opened_at IS 'when it was opened';
COMMENT ON COLUMN engineering.pull_request_cycle_times.merged_at IS 'when it was merged (NULL while open)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.deployment_id IS
    'first successful deployment to the production environment that shipped its merge commit (NULL until then)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.deployed_at IS 'when that deployment finished';
COMMENT ON COLUMN engineering.pull_request_cycle_times.coding_time IS 'opened_at - first_commit_at (NULL when negative or unknown)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.review_time IS 'merged_at - opened_at';
COMMENT ON COLUMN engineering.pull_request_cycle_times.deploy_time IS 'deployed_at - merged_at (NULL when negative or not deployed)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.total_time IS 'deployed_at - the earlier of first_commit_at and opened_at';
-- engineering_metrics: DORA analytics, part 4: the report, dora().
--
-- Every figure is defined in README.md ("DORA analytics"); the comments
-- here say how it is computed.  Days and weeks are UTC; weeks start on
-- Monday.

------------------------------------------------------------------------------
-- _deployment_days_per_period(days, from_ts, to_ts, period)
--
-- The median, over the calendar periods (week from Monday, month, half-year)
-- that lie entirely inside [from_ts, to_ts), of the number of the given
-- days (UTC dates with a deployment) that fall in each; periods without a
-- deployment count as 0.  Partial periods at the window's edges are left
-- out, because a 2-day stub of a week would drag the median down; a window
-- that holds no complete period instead gives its days scaled to the
-- period's length (days * 7 / window length in days, for weeks).
------------------------------------------------------------------------------
CREATE FUNCTION engineering._deployment_days_per_period(days date[], from_ts timestamptz, to_ts timestamptz, period text)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
    lo timestamp := from_ts AT TIME ZONE 'UTC';
    hi timestamp := to_ts AT TIME ZONE 'UTC';
    step interval;
    first_start timestamp;
    period_days float8;
    result float8;
BEGIN
    IF days IS NULL OR lo IS NULL OR hi IS NULL OR hi <= lo THEN
        RETURN NULL;
    END IF;
    CASE period
        WHEN 'week' THEN
            step := interval '7 days';
            first_start := date_trunc('week', lo);
            period_days := 7;
        WHEN 'month' THEN
            step := interval '1 month';
            first_start := date_trunc('month', lo);
            period_days := 365.2425 / 12;
        WHEN 'half-year' THEN
            step := interval '6 months';
            first_start := date_trunc('year', lo);
            period_days := 365.2425 / 2;
        ELSE
            RAISE EXCEPTION 'unknown period "%"', period
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'expected week, month or half-year';
    END CASE;

    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(n.deployment_days, 0))
      INTO result
      FROM generate_series(first_start, hi, step) AS p(start)
      LEFT JOIN (
          SELECT CASE period
                     WHEN 'week' THEN date_trunc('week', x.day::timestamp)
                     WHEN 'month' THEN date_trunc('month', x.day::timestamp)
                     ELSE date_trunc('year', x.day::timestamp)
                          + CASE WHEN extract(month FROM x.day) >= 7 THEN interval '6 months' ELSE interval '0' END
                 END AS start,
                 count(DISTINCT x.day) AS deployment_days
            FROM unnest(days) AS x(day)
           GROUP BY 1
      ) n ON n.start = p.start
     WHERE p.start >= lo AND p.start + step <= hi;

    IF result IS NULL THEN
        -- no complete period in the window: scale its deployment days
        SELECT count(DISTINCT x.day) * period_days
               / (extract(epoch FROM hi - lo)::float8 / 86400)
          INTO result
          FROM unnest(days) AS x(day);
    END IF;
    RETURN result;
END
$$;

COMMENT ON FUNCTION engineering._deployment_days_per_period(date[], timestamptz, timestamptz, text) IS
    'internal: median over the complete weeks (from Monday), months or half-years of a window (UTC) of the number of days with a deployment; a window without a complete period gives its deployment days scaled to the period';

------------------------------------------------------------------------------
-- Levels: the best-ranked row of dora_benchmarks whose bound the value
-- meets.  NULL values get no level.
------------------------------------------------------------------------------
CREATE FUNCTION engineering._dora_level(report_year integer, metric text, duration interval, rate float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT b.level
      FROM engineering.dora_benchmarks b
     WHERE b.report_year = $1
       AND b.metric = $2
       AND ($3 IS NOT NULL OR $4 IS NOT NULL)
       AND CASE WHEN $2 = 'change_failure_rate'
                THEN b.max_rate IS NULL OR $4 <= b.max_rate
                ELSE b.max_duration IS NULL OR $3 < b.max_duration
           END
     ORDER BY b.rank
     LIMIT 1
$$;
COMMENT ON FUNCTION engineering._dora_level(integer, text, interval, float8) IS
    'internal: the level of dora_benchmarks a lead time, time to restore (strictly below max_duration) or change failure rate (at most max_rate) reaches';

CREATE FUNCTION engineering._dora_frequency_level(report_year integer, days date[], from_ts timestamptz, to_ts timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT b.level
      FROM engineering.dora_benchmarks b
     WHERE b.report_year = $1
       AND b.metric = 'deployment_frequency'
       AND cardinality($2) > 0
       AND (b.min_deployment_days IS NULL
            OR engineering._deployment_days_per_period($2, $3, $4, b.per_period) >= b.min_deployment_days)
     ORDER BY b.rank
     LIMIT 1
$$;
COMMENT ON FUNCTION engineering._dora_frequency_level(integer, date[], timestamptz, timestamptz) IS
    'internal: the deployment frequency level of dora_benchmarks that the days with a deployment in a window reach';

------------------------------------------------------------------------------
-- dora(): the report.  The result type is named (rather than RETURNS
-- TABLE) because its column "service" shares its name with a parameter.
------------------------------------------------------------------------------
CREATE TYPE engineering.dora_report AS (
    service                         text,
    deployments                     bigint,
    deployment_days_per_week        float8,
    deployment_frequency_level      text,
    lead_time                       interval,
    lead_time_level                 text,
    change_failure_rate             float8,
    change_failure_rate_level       text,
    time_to_restore                 interval,
    time_to_restore_level           text,
    failed_deployment_recovery_time interval,
    rework_rate                     float8
);
COMMENT ON TYPE engineering.dora_report IS 'a row of engineering.dora(): the DORA figures of one service, or of all services when service is NULL';
COMMENT ON COLUMN engineering.dora_report.service IS 'the service; NULL on the row for all services together';
COMMENT ON COLUMN engineering.dora_report.deployments IS 'successful deployments to the environment that finished in the window';
COMMENT ON COLUMN engineering.dora_report.deployment_days_per_week IS
    'median over the complete calendar weeks (Monday, UTC) in the window of the days with at least one deployment (weeks without count as 0)';
COMMENT ON COLUMN engineering.dora_report.deployment_frequency_level IS 'level of dora_benchmarks reached by the deployment frequency';
COMMENT ON COLUMN engineering.dora_report.lead_time IS 'interpolated median of deployment finish minus lead time start over the changes these deployments shipped first';
COMMENT ON COLUMN engineering.dora_report.lead_time_level IS 'level of dora_benchmarks reached by the lead time';
COMMENT ON COLUMN engineering.dora_report.change_failure_rate IS 'share (0 to 1) of these deployments that caused at least one incident';
COMMENT ON COLUMN engineering.dora_report.change_failure_rate_level IS 'level of dora_benchmarks reached by the change failure rate';
COMMENT ON COLUMN engineering.dora_report.time_to_restore IS 'interpolated median of resolved_at - opened_at over the resolved incidents opened in the window';
COMMENT ON COLUMN engineering.dora_report.time_to_restore_level IS 'level of dora_benchmarks reached by the time to restore';
COMMENT ON COLUMN engineering.dora_report.failed_deployment_recovery_time IS
    'interpolated median of resolved_at - deployment finished_at over the resolved incidents attributed to these deployments';
COMMENT ON COLUMN engineering.dora_report.rework_rate IS
    'share (0 to 1) of these deployments that finished while an incident of the same service was open';

CREATE FUNCTION engineering.dora(
    from_ts         timestamptz,
    to_ts           timestamptz,
    service         text DEFAULT NULL,
    environment     text DEFAULT NULL,
    benchmark_year  integer DEFAULT NULL,
    lead_time_start text DEFAULT NULL)
RETURNS SETOF engineering.dora_report
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- JIT compiling these plans costs more than it saves (measured: dora() for
-- a year of 1M changes takes twice as long with jit = on)
SET jit = off
AS $fn$
DECLARE
    settings engineering.dora_settings;
    env text;
    grading_year integer;
    start_from text;
    start_expr text;
    service_filter text := '';
    incident_filter text := '';
    wanted_rows text;
BEGIN
    SELECT * INTO settings FROM engineering.dora_settings LIMIT 1;
    env := coalesce(environment, settings.production_environment, 'production');
    grading_year := coalesce(benchmark_year, settings.benchmark_year, 2023);
    start_from := coalesce(lead_time_start, settings.lead_time_start, 'committed_at');

    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'dora() needs a finite window, got [%, %)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'the window ends (%) before it starts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.dora_benchmarks b WHERE b.report_year = grading_year) THEN
        RAISE EXCEPTION 'no DORA benchmarks for report year %', grading_year
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('engineering.dora_benchmarks holds the years %s; add rows for others',
                                (SELECT coalesce(string_agg(DISTINCT b.report_year::text, ', '), 'none')
                                   FROM engineering.dora_benchmarks b));
    END IF;

    -- where lead time starts (the choices of dora_settings.lead_time_start)
    start_expr := CASE start_from
        WHEN 'committed_at' THEN 'c.committed_at'
        WHEN 'authored_at' THEN 'coalesce(c.authored_at, c.committed_at)'
        WHEN 'pr_first_commit' THEN
            'coalesce((SELECT min(coalesce(pr.first_commit_at, pr.opened_at))
                         FROM engineering.pull_requests pr
                        WHERE pr.service = c.service AND pr.merge_commit_sha = c.commit_sha),
                      c.committed_at)'
    END;
    IF start_expr IS NULL THEN
        RAISE EXCEPTION 'unknown lead_time_start "%"', start_from
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'expected committed_at, authored_at or pr_first_commit';
    END IF;

    IF service IS NOT NULL THEN
        service_filter := 'AND d.service = $3';
        incident_filter := 'AND i.service = $3';
        wanted_rows := 'SELECT $3::text AS service';
    ELSE
        wanted_rows := 'SELECT s.service FROM (SELECT service FROM deploys UNION SELECT service FROM opened) s
                        UNION ALL SELECT NULL';
    END IF;

    RETURN QUERY EXECUTE format($q$
        WITH deploys AS MATERIALIZED (
            -- successful deployments to the environment finished in the window
            SELECT d.id, d.service, d.finished_at
              FROM engineering.deployments d
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
        ),
        opened AS MATERIALIZED (
            -- incidents opened in the window
            SELECT i.service, i.opened_at, i.resolved_at
              FROM engineering.incidents i
             WHERE i.opened_at >= $1 AND i.opened_at < $2
               %2$s
        ),
        frequency AS (
            SELECT d.service, count(*) AS deployments,
                   array_agg(DISTINCT (d.finished_at AT TIME ZONE 'UTC')::date) AS days
              FROM deploys d
             GROUP BY GROUPING SETS ((d.service), ())
        ),
        shipped AS NOT MATERIALIZED (
            -- each change counts at the first successful deployment of the
            -- environment that shipped it (see change_lead_times), and only
            -- with a lead time that is not negative (a commit clock ahead of
            -- the deployment's).  Links inferred by link_changes() are
            -- unique per change and environment, so they only need checking
            -- against the connector's and manual links; those are checked
            -- against all.  (Two anti-joins rather than one condition with
            -- OR, which would need a correlated subplan and no parallelism.)
            SELECT d.service, x.started, d.finished_at
              FROM engineering.deployments d
              JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
              JOIN engineering.changes c ON c.id = dc.change_id
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
               AND x.started <= d.finished_at
               AND dc.linked_by = 'inferred'
               AND NOT EXISTS (SELECT 1
                                 FROM engineering.deployment_changes e
                                 JOIN engineering.deployments ed ON ed.id = e.deployment_id
                                WHERE e.change_id = dc.change_id AND e.linked_by <> 'inferred'
                                  AND ed.environment = $4 AND ed.status = 'success'
                                  AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
            UNION ALL
            SELECT d.service, x.started, d.finished_at
              FROM engineering.deployments d
              JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
              JOIN engineering.changes c ON c.id = dc.change_id
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
               AND x.started <= d.finished_at
               AND dc.linked_by <> 'inferred'
               AND NOT EXISTS (SELECT 1
                                 FROM engineering.deployment_changes e
                                 JOIN engineering.deployments ed ON ed.id = e.deployment_id
                                WHERE e.change_id = dc.change_id
                                  AND ed.environment = $4 AND ed.status = 'success'
                                  AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
        ),
        lead_times AS (
            -- two aggregations rather than GROUPING SETS, which PostgreSQL
            -- cannot run in parallel
            SELECT s.service, engineering.lead_time(s.started, s.finished_at) AS lead_time
              FROM shipped s GROUP BY s.service
            %5$s
        ),
        failures AS (
            -- a deployment with several incidents fails once
            SELECT d.service,
                   count(DISTINCT d.id) AS failed,
                   engineering.time_to_restore(d.finished_at, i.resolved_at)
                       FILTER (WHERE i.resolved_at >= d.finished_at) AS recovery
              FROM deploys d
              JOIN engineering.incidents i ON i.cause_deployment_id = d.id
             GROUP BY GROUPING SETS ((d.service), ())
        ),
        restore AS (
            SELECT o.service, engineering.time_to_restore(o.opened_at, o.resolved_at) AS time_to_restore
              FROM opened o
             GROUP BY GROUPING SETS ((o.service), ())
        ),
        rework AS (
            -- a sweep over each service's timeline: +1 when an incident
            -- opens, -1 when it is resolved, and each deployment reads how
            -- many are open.  At equal times resolutions come first, then
            -- openings, then deployments: an incident is open over
            -- [opened_at, resolved_at).
            SELECT t.service, count(*) FILTER (WHERE t.open_incidents > 0) AS during_incident
              FROM (
                  SELECT ev.service, ev.kind,
                         sum(ev.delta) OVER (PARTITION BY ev.service ORDER BY ev.at, ev.kind
                                             ROWS UNBOUNDED PRECEDING) AS open_incidents
                    FROM (
                        SELECT d.service, d.finished_at AS at, 2 AS kind, 0 AS delta FROM deploys d
                        UNION ALL
                        SELECT i.service, i.opened_at, 1, 1
                          FROM engineering.incidents i
                         WHERE i.opened_at < $2
                           AND (i.resolved_at IS NULL OR (i.resolved_at > $1 AND i.resolved_at > i.opened_at))
                           %2$s
                        UNION ALL
                        SELECT i.service, i.resolved_at, 0, -1
                          FROM engineering.incidents i
                         WHERE i.opened_at < $2
                           AND i.resolved_at > $1 AND i.resolved_at > i.opened_at
                           %2$s
                    ) ev
              ) t
             WHERE t.kind = 2
             GROUP BY GROUPING SETS ((t.service), ())
        ),
        wanted AS (%4$s)
        SELECT w.service,
               coalesce(f.deployments, 0),
               CASE WHEN f.deployments > 0
                    THEN engineering._deployment_days_per_period(f.days, $1, $2, 'week') END,
               engineering._dora_frequency_level($5, f.days, $1, $2),
               l.lead_time,
               engineering._dora_level($5, 'lead_time', l.lead_time, NULL),
               CASE WHEN f.deployments > 0
                    THEN coalesce(x.failed, 0)::float8 / f.deployments END,
               CASE WHEN f.deployments > 0
                    THEN engineering._dora_level($5, 'change_failure_rate', NULL,
                                                 coalesce(x.failed, 0)::float8 / f.deployments) END,
               r.time_to_restore,
               engineering._dora_level($5, 'time_to_restore', r.time_to_restore, NULL),
               x.recovery,
               CASE WHEN f.deployments > 0
                    THEN coalesce(rw.during_incident, 0)::float8 / f.deployments END
          FROM wanted w
          LEFT JOIN frequency f ON f.service IS NOT DISTINCT FROM w.service
          LEFT JOIN lead_times l ON l.service IS NOT DISTINCT FROM w.service
          LEFT JOIN failures x ON x.service IS NOT DISTINCT FROM w.service
          LEFT JOIN restore r ON r.service IS NOT DISTINCT FROM w.service
          LEFT JOIN rework rw ON rw.service IS NOT DISTINCT FROM w.service
         ORDER BY w.service NULLS LAST
        $q$, service_filter, incident_filter, start_expr, wanted_rows,
           CASE WHEN service IS NULL
                THEN 'UNION ALL SELECT NULL, engineering.lead_time(s.started, s.finished_at) FROM shipped s'
                ELSE '' END)
    USING from_ts, to_ts, service, env, grading_year;
END
$fn$;

COMMENT ON FUNCTION engineering.dora(timestamptz, timestamptz, text, text, integer, text) IS
    'DORA report over successful deployments to an environment (default dora_settings.production_environment) that finished in [from_ts, to_ts): one row per service (or only the one given) plus a row for all services (service NULL); levels from dora_benchmarks for benchmark_year (default dora_settings.benchmark_year); lead_time_start overrides dora_settings.lead_time_start';
-- engineering_metrics: DORA analytics, part 5: pipeline health.
--
-- The CI side of delivery: how often each pipeline passes, how long it
-- takes and waits, and how flaky it is.  One run is one attempt
-- (engineering.pipeline_runs).  Runs belong to the window by their start
-- (queued_at when the start is unknown), the expression the event schema
-- indexes.

CREATE TYPE engineering.pipeline_health_report AS (
    service           text,
    pipeline          text,
    branch            text,
    runs              bigint,
    success_rate      float8,
    median_duration   interval,
    p95_duration      interval,
    median_queue_time interval,
    flaky_rate        float8
);
COMMENT ON TYPE engineering.pipeline_health_report IS 'a row of engineering.pipeline_health(): one pipeline on one branch';
COMMENT ON COLUMN engineering.pipeline_health_report.service IS 'the service';
COMMENT ON COLUMN engineering.pipeline_health_report.pipeline IS 'workflow, pipeline or job name';
COMMENT ON COLUMN engineering.pipeline_health_report.branch IS 'branch built (NULL when the source did not say)';
COMMENT ON COLUMN engineering.pipeline_health_report.runs IS 'runs (attempts) that started in the window, whatever their status';
COMMENT ON COLUMN engineering.pipeline_health_report.success_rate IS 'successes / (successes + failures); cancelled, skipped and unfinished runs are left out';
COMMENT ON COLUMN engineering.pipeline_health_report.median_duration IS 'interpolated median of finished_at - started_at over finished runs (success or failure)';
COMMENT ON COLUMN engineering.pipeline_health_report.p95_duration IS 'interpolated 95th percentile of the same durations';
COMMENT ON COLUMN engineering.pipeline_health_report.median_queue_time IS 'interpolated median of started_at - queued_at over runs that know both';
COMMENT ON COLUMN engineering.pipeline_health_report.flaky_rate IS
    'share of the commits built (with a finished run) that failed and then passed on a later run of the same commit';

CREATE FUNCTION engineering.pipeline_health(from_ts timestamptz, to_ts timestamptz, service text DEFAULT NULL)
RETURNS SETOF engineering.pipeline_health_report
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- (as for dora(): JIT compiling the plan costs more than it saves)
SET jit = off
AS $fn$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'pipeline_health() needs a window, got [%, %)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'the window ends (%) before it starts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- dynamic so that the plan sees whether a service was given (and uses
    -- the (service, start) index when it was)
    RETURN QUERY EXECUTE format($q$
        WITH runs AS (
            SELECT r.service, r.pipeline, r.branch, r.commit_sha, r.status,
                   coalesce(r.started_at, r.queued_at) AS began,
                   r.queued_at, r.started_at, r.finished_at, r.attempt
              FROM engineering.pipeline_runs r
             WHERE coalesce(r.started_at, r.queued_at) >= $1
               AND coalesce(r.started_at, r.queued_at) < $2
               %s
        ),
        commits AS (
            -- a commit is flaky on a pipeline when one of its runs failed
            -- and a later one passed
            SELECT c.service, c.pipeline, c.branch,
                   count(*) AS built,
                   count(*) FILTER (WHERE c.last_success > c.first_failure) AS flaky
              FROM (
                  SELECT r.service, r.pipeline, r.branch, r.commit_sha,
                         min(r.began) FILTER (WHERE r.status = 'failure') AS first_failure,
                         max(r.began) FILTER (WHERE r.status = 'success') AS last_success
                    FROM runs r
                   WHERE r.commit_sha IS NOT NULL AND r.status IN ('success', 'failure')
                   GROUP BY r.service, r.pipeline, r.branch, r.commit_sha
              ) c
             GROUP BY c.service, c.pipeline, c.branch
        ),
        totals AS (
            SELECT r.service, r.pipeline, r.branch,
                   count(*) AS runs,
                   count(*) FILTER (WHERE r.status = 'success')::float8
                       / nullif(count(*) FILTER (WHERE r.status IN ('success', 'failure')), 0) AS success_rate,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.finished_at - r.started_at)
                       FILTER (WHERE r.status IN ('success', 'failure')) AS median_duration,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY r.finished_at - r.started_at)
                       FILTER (WHERE r.status IN ('success', 'failure')) AS p95_duration,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.started_at - r.queued_at) AS median_queue_time
              FROM runs r
             GROUP BY r.service, r.pipeline, r.branch
        )
        SELECT t.service, t.pipeline, t.branch, t.runs, t.success_rate,
               t.median_duration, t.p95_duration, t.median_queue_time,
               c.flaky::float8 / nullif(c.built, 0)
          FROM totals t
          LEFT JOIN commits c
            ON c.service = t.service AND c.pipeline = t.pipeline AND c.branch IS NOT DISTINCT FROM t.branch
         ORDER BY t.service, t.pipeline, t.branch NULLS LAST
        $q$, CASE WHEN service IS NOT NULL THEN 'AND r.service = $3' ELSE '' END)
    USING from_ts, to_ts, service;
END
$fn$;

COMMENT ON FUNCTION engineering.pipeline_health(timestamptz, timestamptz, text) IS
    'CI health per service, pipeline and branch over the runs that started in [from_ts, to_ts): runs, success rate, median and p95 duration, median queue time, flaky rate';
-- engineering_metrics: service level objectives, their measurements, the
-- multiwindow burn-rate alert rules and the alert transitions.
--
-- The model is occurrence based: an SLI is a count of good events among all
-- eligible events, stored as (good, total) per measurement interval, and
-- every ratio is a ratio of sums over a window (never a mean of ratios).
-- Counts are kept as integers and every derived quantity is NUMERIC, so
-- that 1 - 0.999 is exactly 0.001 and a burn rate equal to a threshold is
-- exactly equal to it.

------------------------------------------------------------------------------
-- Small helpers shared by the SLO functions.
------------------------------------------------------------------------------

-- Windows and periods are fixed lengths: a day is 24 hours, whatever the
-- session's time zone does around a daylight saving change, so that a 30-day
-- period always weighs 720 hours in "budget share x period / window".
CREATE FUNCTION engineering._slo_fixed(length interval)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN make_interval(secs => extract(epoch FROM length));
COMMENT ON FUNCTION engineering._slo_fixed(interval) IS
    'internal: an interval as a fixed number of seconds (days counted as 24 hours), so SLO windows do not stretch across daylight saving changes';

CREATE FUNCTION engineering._slo_burn_rate(bad numeric, total numeric, objective numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN total > 0 THEN trim_scale(bad / (total * (1 - objective))) END;
COMMENT ON FUNCTION engineering._slo_burn_rate(numeric, numeric, numeric) IS
    'internal: (bad / total) / (1 - objective) in NUMERIC with a single division; NULL when the window saw no traffic';

------------------------------------------------------------------------------
-- SLO definitions.
------------------------------------------------------------------------------

CREATE TABLE engineering.slos (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (btrim(name) <> '' OR engineering._reject_value('slos.name', name, 'an SLO needs a non-empty name')),
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('slos.service', service, 'service must not be empty')),
    objective       numeric NOT NULL
                    CHECK ((objective > 0 AND objective < 1)
                           OR engineering._reject_value('slos.objective', objective::text,
                               CASE
                                   WHEN objective IN (1, 100) THEN
                                       'an objective of 100% leaves no error budget, so any error would burn it infinitely fast; use a fraction below 1 such as 0.9999'
                                   WHEN objective > 1 AND objective < 100 THEN
                                       format('the objective is a fraction, not a percentage: %s%% is %s', objective, trim_scale(objective / 100))
                                   ELSE
                                       'the objective is a fraction strictly between 0 and 1, such as 0.999 for 99.9%'
                               END)),
    period          interval NOT NULL DEFAULT '30 days'
                    CHECK ((period >= interval '1 hour' AND date_part('month', period) = 0 AND date_part('year', period) = 0)
                           OR engineering._reject_value('slos.period', period::text,
                               'the rolling period is a fixed length of at least 1 hour written in days or hours (''30 days'', ''28 days''), not in months')),
    min_events      bigint
                    CHECK (min_events >= 1 OR min_events IS NULL
                           OR engineering._reject_value('slos.min_events', min_events::text, 'min_events is a positive number of events, or NULL for no minimum')),
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slos_service_idx ON engineering.slos (service);

COMMENT ON TABLE engineering.slos IS
    'service level objectives: a target fraction of good events over a rolling period; see slo_status() and slo_alerts()';
COMMENT ON COLUMN engineering.slos.id IS 'surrogate key referenced by slo_measurements and slo_alert_events';
COMMENT ON COLUMN engineering.slos.name IS 'unique name used by slo_status(), slo_alerts(), notifications and the prometheus source';
COMMENT ON COLUMN engineering.slos.service IS 'the service the objective is about (joins with incidents and deployments)';
COMMENT ON COLUMN engineering.slos.objective IS 'target fraction of good events, strictly between 0 and 1 (0.999 for 99.9%); the error budget is 1 - objective';
COMMENT ON COLUMN engineering.slos.period IS 'rolling period the budget is computed over (default 30 days), a fixed length in days or hours';
COMMENT ON COLUMN engineering.slos.min_events IS 'optional minimum number of events in each window of an alert rule; below it the rule is suppressed (low traffic)';
COMMENT ON COLUMN engineering.slos.description IS 'free text: what is measured and why the objective was chosen';
COMMENT ON COLUMN engineering.slos.created_at IS 'when the SLO was defined';

-- Looks an SLO up by name for the functions that take one, with an error
-- that says what is wrong instead of an empty result.
CREATE FUNCTION engineering._slo_id(slo_name text)
RETURNS integer
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    found_id integer;
BEGIN
    SELECT s.id INTO found_id FROM engineering.slos s WHERE s.name = slo_name;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'slo "%" does not exist', slo_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SLOs are defined in engineering.slos.';
    END IF;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION engineering._slo_id(text) IS
    'internal: the id of the SLO with this name; raises undefined_object when there is none';

------------------------------------------------------------------------------
-- Measurements: counts for the interval that ends at measured_at.
------------------------------------------------------------------------------

CREATE TABLE engineering.slo_measurements (
    slo_id          integer NOT NULL REFERENCES engineering.slos (id) ON DELETE CASCADE,
    measured_at     timestamptz NOT NULL,
    good            bigint NOT NULL
                    CHECK (good >= 0 OR engineering._reject_value('slo_measurements.good', good::text, 'counts are never negative')),
    total           bigint NOT NULL,
    source_id       integer REFERENCES engineering.sources (id),
    PRIMARY KEY (slo_id, measured_at),
    CONSTRAINT slo_measurements_good_within_total
        CHECK (good <= total
               OR engineering._reject_value('slo_measurements.good', good::text, format('good must not exceed total (%s)', total)))
);
-- lets a source be deleted (its foreign key checked) without scanning every
-- hand-made measurement
CREATE INDEX slo_measurements_source_idx
    ON engineering.slo_measurements (source_id) WHERE source_id IS NOT NULL;

COMMENT ON TABLE engineering.slo_measurements IS
    'SLI counts per SLO: good and total events for the interval ending at measured_at; upsert on (slo_id, measured_at) to correct late data';
COMMENT ON COLUMN engineering.slo_measurements.slo_id IS 'the SLO measured';
COMMENT ON COLUMN engineering.slo_measurements.measured_at IS 'end of the interval the counts cover; a window (at - w, at] takes the measurements whose end falls in it';
COMMENT ON COLUMN engineering.slo_measurements.good IS 'good events in the interval (0 <= good <= total)';
COMMENT ON COLUMN engineering.slo_measurements.total IS 'eligible events in the interval; 0 means no traffic';
COMMENT ON COLUMN engineering.slo_measurements.source_id IS 'the source that synced these counts (prometheus); NULL for rows written by SQL or an ETL';

CREATE FUNCTION engineering.record_slo_measurement(slo_name text, measured_at timestamptz,
                                                   good bigint, total bigint)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.slo_measurements AS m (slo_id, measured_at, good, total)
    VALUES (engineering._slo_id(slo_name), measured_at, good, total)
    ON CONFLICT (slo_id, measured_at)
        DO UPDATE SET good = excluded.good, total = excluded.total, source_id = NULL;
END;
COMMENT ON FUNCTION engineering.record_slo_measurement(text, timestamptz, bigint, bigint) IS
    'stores the counts of an SLO for the interval ending at measured_at, replacing any earlier counts for that instant (late or corrected data)';

------------------------------------------------------------------------------
-- Alert rules: the multiwindow, multi-burn-rate table of the SRE Workbook.
--
-- A rule stores the share of the budget it guards and its two windows; its
-- burn-rate threshold follows from each SLO's period
-- (budget_share x period / long_window), so one table serves 30-day and
-- 28-day SLOs alike.  The built-in rows are seeded here; users may edit,
-- disable or add rules.  Built-in rules cannot be deleted (disable them
-- instead), which lets a pg_dump restore merge the dumped built-in rows into
-- the freshly seeded ones (see _slo_alert_rules_merge_builtin below).
------------------------------------------------------------------------------

CREATE TABLE engineering.slo_alert_rules (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (btrim(name) <> '' OR engineering._reject_value('slo_alert_rules.name', name, 'a rule needs a non-empty name')),
    severity        text NOT NULL
                    CHECK (severity IN ('page', 'ticket')
                           OR engineering._reject_value('slo_alert_rules.severity', severity, 'expected page or ticket')),
    long_window     interval NOT NULL
                    CHECK ((long_window > interval '0' AND date_part('month', long_window) = 0 AND date_part('year', long_window) = 0)
                           OR engineering._reject_value('slo_alert_rules.long_window', long_window::text, 'a window is a positive fixed length in days, hours or minutes')),
    short_window    interval NOT NULL
                    CHECK ((short_window > interval '0' AND date_part('month', short_window) = 0 AND date_part('year', short_window) = 0)
                           OR engineering._reject_value('slo_alert_rules.short_window', short_window::text, 'a window is a positive fixed length in days, hours or minutes')),
    budget_share    numeric NOT NULL
                    CHECK ((budget_share > 0 AND budget_share <= 1)
                           OR engineering._reject_value('slo_alert_rules.budget_share', budget_share::text, 'the share of the error budget, in (0, 1]: 0.02 for 2%')),
    enabled         boolean NOT NULL DEFAULT true,
    builtin         boolean NOT NULL DEFAULT false,
    description     text,
    CONSTRAINT slo_alert_rules_short_within_long
        CHECK (engineering._slo_fixed(short_window) < engineering._slo_fixed(long_window)
               OR engineering._reject_value('slo_alert_rules.short_window', short_window::text,
                                            format('the short window must be shorter than the long window (%s)', long_window)))
);

COMMENT ON TABLE engineering.slo_alert_rules IS
    'multiwindow burn-rate alert rules applied to every SLO; a rule fires when both windows burn faster than budget_share x period / long_window';
COMMENT ON COLUMN engineering.slo_alert_rules.id IS 'surrogate key referenced by slo_alert_events';
COMMENT ON COLUMN engineering.slo_alert_rules.name IS 'unique name shown in slo_alerts() and notifications';
COMMENT ON COLUMN engineering.slo_alert_rules.severity IS 'page (wake someone up) or ticket (look at it during working hours)';
COMMENT ON COLUMN engineering.slo_alert_rules.long_window IS 'the window whose burn rate measures how much budget is being spent';
COMMENT ON COLUMN engineering.slo_alert_rules.short_window IS 'the window that confirms the burn is still going on (about 1/12 of the long one), so the alert resets quickly';
COMMENT ON COLUMN engineering.slo_alert_rules.budget_share IS 'share of the period''s error budget that, spent within the long window, fires the rule (0.02 = 2%)';
COMMENT ON COLUMN engineering.slo_alert_rules.enabled IS 'false switches the rule off for every SLO';
COMMENT ON COLUMN engineering.slo_alert_rules.builtin IS 'true for the rules seeded from the SRE Workbook; they can be edited or disabled but not deleted';
COMMENT ON COLUMN engineering.slo_alert_rules.description IS 'free text';

INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share, builtin, description)
VALUES ('page-1h-5m',    'page',   '1 hour',  '5 minutes',  0.02, true, '2% of the budget in 1 hour (14.4x for 30 days)'),
       ('page-6h-30m',   'page',   '6 hours', '30 minutes', 0.05, true, '5% of the budget in 6 hours (6x for 30 days)'),
       ('ticket-1d-2h',  'ticket', '1 day',   '2 hours',    0.10, true, '10% of the budget in 1 day (3x for 30 days)'),
       ('ticket-3d-6h',  'ticket', '3 days',  '6 hours',    0.10, true, '10% of the budget in 3 days (1x for 30 days)');

-- pg_dump dumps this table whole (see pg_extension_config_dump below), and
-- CREATE EXTENSION seeds the built-in rows again before the dumped rows are
-- restored: a restored built-in row then updates its seeded twin instead of
-- clashing with it, so edits to built-in rules survive dump and restore.
CREATE FUNCTION engineering._slo_alert_rules_merge_builtin()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF NEW.builtin THEN
        UPDATE engineering.slo_alert_rules r
           SET severity = NEW.severity, long_window = NEW.long_window,
               short_window = NEW.short_window, budget_share = NEW.budget_share,
               enabled = NEW.enabled, description = NEW.description
         WHERE r.name = NEW.name AND r.builtin;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._slo_alert_rules_merge_builtin() IS
    'internal trigger: inserting a built-in rule that already exists updates it (how pg_dump restores edited built-in rules)';
CREATE TRIGGER slo_alert_rules_merge_builtin
    BEFORE INSERT ON engineering.slo_alert_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._slo_alert_rules_merge_builtin();

CREATE FUNCTION engineering._slo_alert_rules_keep_builtin()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF OLD.builtin THEN
        RAISE EXCEPTION 'built-in alert rule "%" cannot be deleted', OLD.name
            USING ERRCODE = 'object_in_use',
                  HINT = format('Switch it off instead: UPDATE engineering.slo_alert_rules SET enabled = false WHERE name = %L;', OLD.name);
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION engineering._slo_alert_rules_keep_builtin() IS
    'internal trigger: refuses to delete a built-in rule (it would come back after a dump and restore); disable it instead';
CREATE TRIGGER slo_alert_rules_keep_builtin
    BEFORE DELETE ON engineering.slo_alert_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._slo_alert_rules_keep_builtin();

------------------------------------------------------------------------------
-- Alert transitions, written by _evaluate_slo_alerts().
------------------------------------------------------------------------------

CREATE TABLE engineering.slo_alert_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slo_id          integer NOT NULL REFERENCES engineering.slos (id) ON DELETE CASCADE,
    rule_id         integer NOT NULL REFERENCES engineering.slo_alert_rules (id),
    state           text NOT NULL
                    CHECK (state IN ('firing', 'resolved')
                           OR engineering._reject_value('slo_alert_events.state', state, 'expected firing or resolved')),
    evaluated_at    timestamptz NOT NULL,
    severity        text NOT NULL,
    long_window     interval NOT NULL,
    short_window    interval NOT NULL,
    threshold       numeric,
    long_burn_rate  numeric,
    short_burn_rate numeric,
    long_events     bigint,
    short_events    bigint,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slo_alert_events_state_idx
    ON engineering.slo_alert_events (slo_id, rule_id, id);
CREATE INDEX slo_alert_events_rule_idx ON engineering.slo_alert_events (rule_id);

COMMENT ON TABLE engineering.slo_alert_events IS
    'history of alert transitions: one row each time a rule starts (firing) or stops (resolved) firing for an SLO; each row was also sent as NOTIFY engineering_slo_alerts';
COMMENT ON COLUMN engineering.slo_alert_events.id IS 'increasing event number, also in the notification payload';
COMMENT ON COLUMN engineering.slo_alert_events.slo_id IS 'the SLO';
COMMENT ON COLUMN engineering.slo_alert_events.rule_id IS 'the alert rule (a rule with history cannot be deleted; disable it instead)';
COMMENT ON COLUMN engineering.slo_alert_events.state IS 'firing (the rule started firing) or resolved (it stopped)';
COMMENT ON COLUMN engineering.slo_alert_events.evaluated_at IS 'the instant the rule was evaluated at (the end of both windows)';
COMMENT ON COLUMN engineering.slo_alert_events.severity IS 'the rule''s severity at the time';
COMMENT ON COLUMN engineering.slo_alert_events.long_window IS 'the rule''s long window at the time';
COMMENT ON COLUMN engineering.slo_alert_events.short_window IS 'the rule''s short window at the time';
COMMENT ON COLUMN engineering.slo_alert_events.threshold IS 'the burn-rate threshold both windows had to exceed; NULL when the rule no longer applies to the SLO';
COMMENT ON COLUMN engineering.slo_alert_events.long_burn_rate IS 'burn rate over the long window (NULL without traffic)';
COMMENT ON COLUMN engineering.slo_alert_events.short_burn_rate IS 'burn rate over the short window (NULL without traffic)';
COMMENT ON COLUMN engineering.slo_alert_events.long_events IS 'events counted in the long window';
COMMENT ON COLUMN engineering.slo_alert_events.short_events IS 'events counted in the short window';
COMMENT ON COLUMN engineering.slo_alert_events.recorded_at IS 'when the transition was recorded';

------------------------------------------------------------------------------
-- pg_dump: these tables hold user data and configuration, so their rows
-- (and their identity counters) are dumped although the tables belong to
-- the extension.
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('engineering.slos', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slos_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_measurements', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_rules_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_events', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_events_id_seq', '');
-- engineering_metrics: SLO status (burn rates, error budget) and the
-- multiwindow burn-rate alerts.
--
-- Conventions, shared with README "SLOs and error budgets":
--   * a window w ending at "at" is the half-open interval (at - w, at]: it
--     takes every measurement whose measured_at falls in it, because a
--     measurement holds the counts of the interval ending at measured_at;
--   * error ratio e(w) = sum(total - good) / sum(total) over the window (a
--     ratio of sums), burn rate BR(w) = e(w) / (1 - objective);
--   * a window without traffic (sum(total) = 0 or no rows) has a NULL burn
--     rate, and a NULL side never fires an alert;
--   * an alert rule fires when BOTH windows burn strictly faster (>) than
--     its threshold budget_share x period / long_window;
--   * everything is NUMERIC, so equality with a threshold is exact.

CREATE FUNCTION engineering.slo_status(slo_name text, at timestamptz DEFAULT now())
RETURNS TABLE (
    slo                     text,
    service                 text,
    objective               numeric,
    period                  interval,
    burn_rate_5m            numeric,
    burn_rate_30m           numeric,
    burn_rate_1h            numeric,
    burn_rate_2h            numeric,
    burn_rate_6h            numeric,
    burn_rate_1d            numeric,
    burn_rate_3d            numeric,
    burn_rate_period        numeric,
    sli                     numeric,
    total_events            bigint,
    bad_events              bigint,
    budget_events           numeric,
    budget_consumed         numeric,
    budget_remaining        numeric,
    budget_remaining_events numeric,
    time_to_exhaustion      interval,
    first_measured_at       timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- Each window is summed by its own range scan of the primary key: the
    -- short windows read a few rows, and only the period reads them all
    -- (several times faster than one scan with a FILTER per window).
    WITH the_slo AS (
        SELECT s.* FROM engineering.slos s WHERE s.id = engineering._slo_id(slo_name)
    ),
    sums AS (
        SELECT v.label, x.total, x.bad, x.first_measured_at
        FROM the_slo s
        CROSS JOIN LATERAL (VALUES ('5m', interval '5 minutes'), ('30m', interval '30 minutes'),
                                   ('1h', interval '1 hour'), ('2h', interval '2 hours'),
                                   ('6h', interval '6 hours'), ('1d', interval '24 hours'),
                                   ('3d', interval '72 hours'),
                                   ('period', engineering._slo_fixed(s.period))) AS v (label, length)
        CROSS JOIN LATERAL (
            SELECT sum(m.total) AS total, sum(m.total - m.good) AS bad,
                   min(m.measured_at) AS first_measured_at
            FROM engineering.slo_measurements m
            WHERE m.slo_id = s.id
              AND m.measured_at > at - v.length
              AND m.measured_at <= at
        ) x
    ),
    w AS (
        SELECT max(total) FILTER (WHERE label = '5m')     AS total_5m,
               max(bad)   FILTER (WHERE label = '5m')     AS bad_5m,
               max(total) FILTER (WHERE label = '30m')    AS total_30m,
               max(bad)   FILTER (WHERE label = '30m')    AS bad_30m,
               max(total) FILTER (WHERE label = '1h')     AS total_1h,
               max(bad)   FILTER (WHERE label = '1h')     AS bad_1h,
               max(total) FILTER (WHERE label = '2h')     AS total_2h,
               max(bad)   FILTER (WHERE label = '2h')     AS bad_2h,
               max(total) FILTER (WHERE label = '6h')     AS total_6h,
               max(bad)   FILTER (WHERE label = '6h')     AS bad_6h,
               max(total) FILTER (WHERE label = '1d')     AS total_1d,
               max(bad)   FILTER (WHERE label = '1d')     AS bad_1d,
               max(total) FILTER (WHERE label = '3d')     AS total_3d,
               max(bad)   FILTER (WHERE label = '3d')     AS bad_3d,
               max(total) FILTER (WHERE label = 'period') AS total_p,
               max(bad)   FILTER (WHERE label = 'period') AS bad_p,
               max(first_measured_at) FILTER (WHERE label = 'period') AS first_measured_at
        FROM sums
    )
    SELECT s.name, s.service, s.objective, s.period,
           engineering._slo_burn_rate(w.bad_5m, w.total_5m, s.objective),
           engineering._slo_burn_rate(w.bad_30m, w.total_30m, s.objective),
           engineering._slo_burn_rate(w.bad_1h, w.total_1h, s.objective),
           engineering._slo_burn_rate(w.bad_2h, w.total_2h, s.objective),
           engineering._slo_burn_rate(w.bad_6h, w.total_6h, s.objective),
           engineering._slo_burn_rate(w.bad_1d, w.total_1d, s.objective),
           engineering._slo_burn_rate(w.bad_3d, w.total_3d, s.objective),
           b.burn_rate_period,
           CASE WHEN w.total_p > 0 THEN trim_scale((w.total_p - w.bad_p) / w.total_p) END,
           coalesce(w.total_p, 0)::bigint,
           coalesce(w.bad_p, 0)::bigint,
           trim_scale((1 - s.objective) * coalesce(w.total_p, 0)),
           b.burn_rate_period,
           1 - b.burn_rate_period,
           CASE WHEN w.total_p > 0 THEN trim_scale((1 - s.objective) * w.total_p - w.bad_p) END,
           -- remaining x period / BR(1h), written as one division of exact
           -- terms: (B.total_p - bad_p) x period x total_1h / (total_p x bad_1h)
           CASE WHEN w.total_p > 0 AND w.bad_1h > 0 AND (1 - s.objective) * w.total_p > w.bad_p THEN
               make_interval(secs => round(((1 - s.objective) * w.total_p - w.bad_p)
                                           * extract(epoch FROM s.period) * w.total_1h
                                           / (w.total_p * w.bad_1h)))
           END,
           w.first_measured_at
    FROM the_slo s
    CROSS JOIN w
    CROSS JOIN LATERAL (
        SELECT engineering._slo_burn_rate(w.bad_p, w.total_p, s.objective) AS burn_rate_period
    ) b
$$;
COMMENT ON FUNCTION engineering.slo_status(text, timestamptz) IS
    'burn rates over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period, SLI, error budget consumed and remaining, and time until the budget is exhausted at the current 1h burn rate, for windows (at - w, at]';

-- The alert rules applied to every SLO at one instant, with ids for
-- _evaluate_slo_alerts().  Each distinct window of each SLO is summed once
-- with an index range scan on slo_measurements' primary key.
CREATE FUNCTION engineering._slo_alert_states(at timestamptz)
RETURNS TABLE (
    slo_id          integer,
    rule_id         integer,
    slo             text,
    service         text,
    rule            text,
    severity        text,
    long_window     interval,
    short_window    interval,
    long_burn_rate  numeric,
    short_burn_rate numeric,
    threshold       numeric,
    long_events     bigint,
    short_events    bigint,
    suppressed      boolean,
    firing          boolean
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH pairs AS (
        SELECT s.id AS slo_id, r.id AS rule_id, s.name AS slo, s.service, s.objective, s.min_events,
               r.name AS rule, r.severity, r.long_window, r.short_window,
               trim_scale(r.budget_share * extract(epoch FROM s.period) / extract(epoch FROM r.long_window)) AS threshold
        FROM engineering.slos s
        CROSS JOIN engineering.slo_alert_rules r
        WHERE r.enabled
          AND engineering._slo_fixed(r.long_window) <= engineering._slo_fixed(s.period)
    ),
    windows AS (
        SELECT DISTINCT p.slo_id, engineering._slo_fixed(v.length) AS length
        FROM pairs p
        CROSS JOIN LATERAL (VALUES (p.long_window), (p.short_window)) v (length)
    ),
    sums AS (
        SELECT w.slo_id, w.length, x.total, x.bad
        FROM windows w
        CROSS JOIN LATERAL (
            SELECT sum(m.total) AS total, sum(m.total - m.good) AS bad
            FROM engineering.slo_measurements m
            WHERE m.slo_id = w.slo_id
              AND m.measured_at > at - w.length
              AND m.measured_at <= at
        ) x
    ),
    rated AS (
        SELECT p.*,
               engineering._slo_burn_rate(l.bad, l.total, p.objective) AS long_burn_rate,
               engineering._slo_burn_rate(sh.bad, sh.total, p.objective) AS short_burn_rate,
               coalesce(l.total, 0)::bigint AS long_events,
               coalesce(sh.total, 0)::bigint AS short_events
        FROM pairs p
        JOIN sums l ON l.slo_id = p.slo_id AND l.length = engineering._slo_fixed(p.long_window)
        JOIN sums sh ON sh.slo_id = p.slo_id AND sh.length = engineering._slo_fixed(p.short_window)
    )
    SELECT r.slo_id, r.rule_id, r.slo, r.service, r.rule, r.severity, r.long_window, r.short_window,
           r.long_burn_rate, r.short_burn_rate, r.threshold, r.long_events, r.short_events,
           sup.suppressed,
           NOT sup.suppressed
               AND coalesce(r.long_burn_rate > r.threshold AND r.short_burn_rate > r.threshold, false)
    FROM rated r
    CROSS JOIN LATERAL (
        SELECT coalesce(r.long_events < r.min_events OR r.short_events < r.min_events, false) AS suppressed
    ) sup
    ORDER BY r.slo, r.severity, engineering._slo_fixed(r.long_window), r.rule
$$;
COMMENT ON FUNCTION engineering._slo_alert_states(timestamptz) IS
    'internal: slo_alerts() with the SLO and rule ids, for _evaluate_slo_alerts()';

CREATE FUNCTION engineering.slo_alerts(at timestamptz DEFAULT now())
RETURNS TABLE (
    slo             text,
    service         text,
    rule            text,
    severity        text,
    long_window     interval,
    short_window    interval,
    long_burn_rate  numeric,
    short_burn_rate numeric,
    threshold       numeric,
    long_events     bigint,
    short_events    bigint,
    suppressed      boolean,
    firing          boolean
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT a.slo, a.service, a.rule, a.severity, a.long_window, a.short_window,
           a.long_burn_rate, a.short_burn_rate, a.threshold, a.long_events, a.short_events,
           a.suppressed, a.firing
    FROM engineering._slo_alert_states(at) a
$$;
COMMENT ON FUNCTION engineering.slo_alerts(timestamptz) IS
    'one row per SLO and enabled alert rule at an instant: burn rates of both windows, the threshold derived from the SLO''s period, and whether the rule fires (both windows > threshold, enough events)';
-- engineering_metrics: alert transitions and notifications.
--
-- The background worker calls engineering._evaluate_slo_alerts() once a
-- minute.  It compares slo_alerts(now()) with the last recorded state of
-- each (SLO, rule) and records only the changes, so calling it again with
-- nothing changed writes nothing and sends nothing: it is safe to run as
-- often as one likes, by the worker, by pg_cron or by hand.

-- The notification text is built from the stored event so that what a
-- listener receives and what the history table says are the same thing.
CREATE FUNCTION engineering._slo_alert_payload(event_id bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
               'event_id', e.id,
               'slo', s.name,
               'service', s.service,
               'objective', s.objective,
               'rule', r.name,
               'severity', e.severity,
               'state', e.state,
               'at', e.evaluated_at,
               'long_window_seconds', trim_scale(extract(epoch FROM e.long_window)),
               'short_window_seconds', trim_scale(extract(epoch FROM e.short_window)),
               'long_burn_rate', e.long_burn_rate,
               'short_burn_rate', e.short_burn_rate,
               'threshold', e.threshold,
               'long_events', e.long_events,
               'short_events', e.short_events)::text
    FROM engineering.slo_alert_events e
    JOIN engineering.slos s ON s.id = e.slo_id
    JOIN engineering.slo_alert_rules r ON r.id = e.rule_id
    WHERE e.id = event_id
$$;
COMMENT ON FUNCTION engineering._slo_alert_payload(bigint) IS
    'internal: the JSON text sent with NOTIFY engineering_slo_alerts for an alert event';

CREATE FUNCTION engineering._evaluate_slo_alerts(at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    change      record;
    new_id      bigint;
    changes     integer := 0;
BEGIN
    -- One evaluation at a time: two concurrent ones would both see the old
    -- state and record the same transition twice.  Readers are not blocked.
    LOCK TABLE engineering.slo_alert_events IN SHARE ROW EXCLUSIVE MODE;

    FOR change IN
        WITH current_state AS (
            SELECT * FROM engineering._slo_alert_states(at)
        ),
        last_state AS (
            SELECT DISTINCT ON (e.slo_id, e.rule_id) e.slo_id, e.rule_id, e.state
            FROM engineering.slo_alert_events e
            ORDER BY e.slo_id, e.rule_id, e.id DESC
        ),
        was_firing AS (
            SELECT l.slo_id, l.rule_id FROM last_state l WHERE l.state = 'firing'
        )
        -- A rule that no longer applies (disabled, or an SLO period shorter
        -- than its long window) while it was firing is resolved too.
        SELECT coalesce(c.slo_id, f.slo_id) AS slo_id,
               coalesce(c.rule_id, f.rule_id) AS rule_id,
               CASE WHEN coalesce(c.firing, false) THEN 'firing' ELSE 'resolved' END AS state,
               c.long_burn_rate, c.short_burn_rate, c.threshold, c.long_events, c.short_events
        FROM current_state c
        FULL JOIN was_firing f ON f.slo_id = c.slo_id AND f.rule_id = c.rule_id
        WHERE coalesce(c.firing, false) <> (f.slo_id IS NOT NULL)
        ORDER BY 1, 2
    LOOP
        INSERT INTO engineering.slo_alert_events
            (slo_id, rule_id, state, evaluated_at, severity, long_window, short_window,
             threshold, long_burn_rate, short_burn_rate, long_events, short_events)
        SELECT change.slo_id, change.rule_id, change.state, at, r.severity, r.long_window, r.short_window,
               change.threshold, change.long_burn_rate, change.short_burn_rate,
               change.long_events, change.short_events
        FROM engineering.slo_alert_rules r
        WHERE r.id = change.rule_id
        RETURNING id INTO new_id;

        -- Delivered when (and only if) this transaction commits, with the row.
        PERFORM pg_notify('engineering_slo_alerts', engineering._slo_alert_payload(new_id));
        changes := changes + 1;
    END LOOP;

    RETURN changes;
END
$$;
COMMENT ON FUNCTION engineering._evaluate_slo_alerts(timestamptz) IS
    'records in slo_alert_events each alert rule that started or stopped firing at this instant and sends NOTIFY engineering_slo_alerts for it; returns the number of transitions';

CREATE FUNCTION engineering._evaluate_slo_alerts()
RETURNS integer
LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN engineering._evaluate_slo_alerts(now());
COMMENT ON FUNCTION engineering._evaluate_slo_alerts() IS
    'evaluates the SLO alert rules now (called by the background worker every minute); see _evaluate_slo_alerts(timestamptz)';
-- engineering_metrics: an availability SLI from incidents, for teams without
-- request metrics.
--
-- Time is cut into one-minute slices aligned on from_ts; a slice is bad when
-- any incident of the service covers part of it (a time-slice SLI: an
-- incident from 10:00:30 to 10:01:30 makes two bad minutes), and the union
-- of the incidents is taken, so overlapping incidents count once.  Each
-- step reports total = its minutes and good = its minutes without incident,
-- with measured_at = the end of the step, ready for slo_measurements.

CREATE FUNCTION engineering.incident_availability(service text, from_ts timestamptz, to_ts timestamptz,
                                                  step interval DEFAULT '1 minute')
RETURNS TABLE (measured_at timestamptz, good bigint, total bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    step_minutes    bigint;
    step_count      bigint;
    range_end       timestamptz;
BEGIN
    IF service IS NULL OR from_ts IS NULL OR to_ts IS NULL OR step IS NULL THEN
        RAISE EXCEPTION 'incident_availability() needs a service, a range and a step'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_ts <= from_ts THEN
        RAISE EXCEPTION 'invalid range for incident_availability(): to_ts (%) is not after from_ts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF date_part('month', step) <> 0 OR date_part('year', step) <> 0
       OR extract(epoch FROM step) < 60 OR extract(epoch FROM step) % 60 <> 0 THEN
        RAISE EXCEPTION 'invalid step for incident_availability(): %', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The step is a whole number of minutes, at least one: ''1 minute'', ''1 hour'', ''1 day''.';
    END IF;

    step_minutes := extract(epoch FROM step) / 60;
    -- whole steps only: a trailing partial step would report a partial total
    step_count := floor(extract(epoch FROM to_ts - from_ts) / (step_minutes * 60));
    range_end := from_ts + make_interval(mins => (step_count * step_minutes)::integer);

    RETURN QUERY
    WITH down_minutes AS (
        -- Minute i is the slice (from_ts + i min, from_ts + (i+1) min].  An
        -- incident [opened, resolved) touches it when it starts before its end
        -- and ends after its start.  Open incidents last until the range end.
        SELECT DISTINCT g.minute
        FROM engineering.incidents i
        CROSS JOIN LATERAL (
            SELECT greatest(i.opened_at, from_ts) AS down_from,
                   least(coalesce(i.resolved_at, range_end), range_end) AS down_to
        ) c
        CROSS JOIN LATERAL generate_series(
            floor(extract(epoch FROM c.down_from - from_ts) / 60)::bigint,
            ceil(extract(epoch FROM c.down_to - from_ts) / 60)::bigint - 1) AS g (minute)
        WHERE i.service = incident_availability.service
          AND i.opened_at < range_end
          AND (i.resolved_at IS NULL OR i.resolved_at > from_ts)
          AND c.down_to > c.down_from
    ),
    down_per_step AS (
        SELECT d.minute / step_minutes + 1 AS step_no, count(*) AS down
        FROM down_minutes d
        GROUP BY 1
    )
    SELECT from_ts + make_interval(mins => (k * step_minutes)::integer),
           step_minutes - coalesce(d.down, 0),
           step_minutes
    FROM generate_series(1::bigint, step_count) AS k
    LEFT JOIN down_per_step d ON d.step_no = k
    ORDER BY k;
END
$$;
COMMENT ON FUNCTION engineering.incident_availability(text, timestamptz, timestamptz, interval) IS
    'availability minutes of a service from its incidents: for each step of (from_ts, to_ts], total minutes and good minutes (not touched by any incident, overlaps counted once), ending at measured_at';
-- engineering_metrics: an SLO over time, for charts (budget burn-down,
-- burn rate per step).
--
-- Calling slo_status() at every point of a chart re-reads the whole period
-- for each point.  slo_history() reads the measurements once: it sums them
-- per step, then slides the period over the step sums, so the budget at
-- each point is exactly what slo_status() returns at that instant.

CREATE FUNCTION engineering.slo_history(slo_name text, from_ts timestamptz, to_ts timestamptz,
                                        step interval DEFAULT '1 hour')
RETURNS TABLE (at timestamptz, total_events bigint, bad_events bigint,
               burn_rate numeric, budget_remaining numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    the_slo         engineering.slos;
    step_seconds    numeric;
    period_steps    bigint;
    point_count     bigint;
BEGIN
    IF slo_name IS NULL OR from_ts IS NULL OR to_ts IS NULL OR step IS NULL THEN
        RAISE EXCEPTION 'slo_history() needs an SLO, a range and a step'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO the_slo FROM engineering.slos s WHERE s.id = engineering._slo_id(slo_name);
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'invalid range for slo_history(): to_ts (%) is before from_ts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    step_seconds := extract(epoch FROM step);
    IF date_part('month', step) <> 0 OR date_part('year', step) <> 0 OR step_seconds <= 0
       OR extract(epoch FROM the_slo.period) % step_seconds <> 0 THEN
        RAISE EXCEPTION 'invalid step for slo_history(): %', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The step is a fixed length that divides the SLO''s period (%s) evenly, such as ''5 minutes'', ''1 hour'' or ''1 day''.', the_slo.period);
    END IF;

    period_steps := extract(epoch FROM the_slo.period) / step_seconds;
    point_count := floor(extract(epoch FROM to_ts - from_ts) / step_seconds) + 1;

    RETURN QUERY
    WITH per_step AS (
        -- step k is (from_ts + (k-1) step, from_ts + k step]; steps k <= 0
        -- hold the history the first points' periods reach back into
        SELECT ceil(extract(epoch FROM m.measured_at - from_ts) / step_seconds)::bigint AS k,
               sum(m.total) AS step_total,
               sum(m.total - m.good) AS step_bad
        FROM engineering.slo_measurements m
        WHERE m.slo_id = the_slo.id
          AND m.measured_at > from_ts - engineering._slo_fixed(the_slo.period)
          AND m.measured_at <= from_ts + make_interval(secs => (point_count - 1) * step_seconds)
        GROUP BY 1
    ),
    dense AS (
        SELECT g.k, coalesce(p.step_total, 0) AS step_total, coalesce(p.step_bad, 0) AS step_bad
        FROM generate_series(1 - period_steps, point_count - 1) AS g (k)
        LEFT JOIN per_step p ON p.k = g.k
    ),
    rolling AS (
        SELECT d.k, d.step_total, d.step_bad,
               sum(d.step_total) OVER period_frame AS period_total,
               sum(d.step_bad) OVER period_frame AS period_bad
        FROM dense d
        WINDOW period_frame AS (ORDER BY d.k ROWS BETWEEN period_steps - 1 PRECEDING AND CURRENT ROW)
    )
    SELECT from_ts + make_interval(secs => r.k * step_seconds),
           r.step_total::bigint,
           r.step_bad::bigint,
           engineering._slo_burn_rate(r.step_bad, r.step_total, the_slo.objective),
           1 - engineering._slo_burn_rate(r.period_bad, r.period_total, the_slo.objective)
    FROM rolling r
    WHERE r.k >= 0
    ORDER BY r.k;
END
$$;
COMMENT ON FUNCTION engineering.slo_history(text, timestamptz, timestamptz, interval) IS
    'an SLO at each point from_ts, from_ts + step, ... up to to_ts: events and burn rate of the step ending there, and the error budget remaining over the period ending there (as slo_status() at that instant)';
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
    engineering.add_source(text, text, text, jsonb, text, interval),
    engineering.alter_source(text, text, jsonb, interval, boolean),
    engineering.remove_source(text, boolean),
    engineering.prune_sync_runs(interval),
    engineering.set_source_token(text, text),
    engineering.sync(text),
    engineering.wake()
TO engineering_admin;

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
GRANT INSERT, UPDATE, DELETE ON engineering.dora_settings, engineering.dora_benchmarks TO engineering_admin;

------------------------------------------------------------------------------
-- Left to the extension's owner (the background worker runs as a
-- superuser): engineering.source_secrets (REVOKEd from PUBLIC in the sync
-- part), _store_token and _sync_source (idem), and the alert evaluation,
-- which writes alert history and sends NOTIFYs once a minute for everyone.
------------------------------------------------------------------------------

REVOKE EXECUTE ON FUNCTION engineering._evaluate_slo_alerts(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION engineering._evaluate_slo_alerts() FROM PUBLIC;
