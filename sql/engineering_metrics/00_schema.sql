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

-- The kinds of source are the connectors of the loaded build (the table in
-- src/connectors.c): the CHECK on sources.kind and add_source() read them from
-- there, so no list of kinds is kept in SQL.
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

------------------------------------------------------------------------------
-- Sources: where synced events come from.  The sync engine owns the
-- behaviour; the event tables only need a stable key to point at.
------------------------------------------------------------------------------

CREATE TABLE engineering.sources (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (btrim(name) <> '' OR engineering._reject_value('sources.name', name, 'a source needs a non-empty name')),
    kind            text NOT NULL
                    CHECK (kind = ANY (engineering._connector_kinds())
                           OR engineering._reject_value('sources.kind', kind, 'expected ' || engineering._connector_kind_list())),
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
COMMENT ON COLUMN engineering.sources.kind IS 'connector: one of engineering._connector_kinds() (github, gitlab, ...)';
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
