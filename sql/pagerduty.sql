CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- errors are part of the expected output: their messages and hints, not
-- the PL/pgSQL call stacks
\set SHOW_CONTEXT never

-- The PagerDuty connector's SQL, without a network: config validation, the
-- mapping of incident and log-entry payloads, and what plan and ingest
-- queue.  Fixtures are written here by hand in PagerDuty's shapes.

------------------------------------------------------------------------------
-- Config
------------------------------------------------------------------------------

SELECT engineering.add_source('pd', 'pagerduty', 'http://127.0.0.1:9/pagerduty',
    '{"service_map": {"PCHK001": "checkout", "Billing API": "billing"}}');
SELECT base_url FROM engineering.sources WHERE name = 'pd';
-- the public API is the default
SELECT engineering.add_source('pd-default', 'pagerduty', NULL, '{}');
SELECT base_url FROM engineering.sources WHERE name = 'pd-default';
SELECT engineering.remove_source('pd-default');
-- refused configs
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"service_ids": "PCHK001"}');
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"service_ids": []}');
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"service_ids": ["P1", "no spaces"]}');
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"log_entries": "yes"}');
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"lookback": "-5 minutes"}');
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"lookback": "soon"}');
SELECT engineering.add_source('bad', 'pagerduty', NULL, '{"service_map": {"P1": ""}}');
SELECT count(*) AS sources FROM engineering.sources;

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- statuses: unknown ones and NULL are open (fetched again until resolved)
SELECT s, engineering._pagerduty_status(s)
FROM unnest(ARRAY['triggered', 'acknowledged', 'resolved', 'snoozed', NULL]) s;

-- services: map by id, then by name, then config service, then the name,
-- then the id, then "unknown"
SELECT label, engineering._pagerduty_service(config, service)
FROM (VALUES
    ('map by id',      '{"service_map": {"PCHK001": "checkout"}}'::jsonb, '{"id": "PCHK001", "summary": "Checkout"}'::jsonb),
    ('map by name',    '{"service_map": {"Billing API": "billing"}}', '{"id": "PBIL001", "summary": "Billing API"}'),
    ('config service', '{"service": "shop"}', '{"id": "PXXX001", "summary": "Whatever"}'),
    ('vendor name',    '{}', '{"id": "PXXX001", "summary": "  Search  "}'),
    ('id only',        '{}', '{"id": "PXXX001", "summary": ""}'),
    ('no service',     '{}', 'null'),
    ('not an object',  '{}', '"PXXX001"')) v(label, config, service);

-- list URLs: whole seconds in UTC, oldest first, 100 per page, service filter
SELECT engineering._pagerduty_incidents_url('{"service_ids": ["PCHK001", "PBIL001"]}',
    '2026-01-01 00:00:00.75+02', '2026-03-01 12:00+00', 300);
SELECT engineering._pagerduty_incidents_url('{}', '2026-01-01 00:00+00', '2026-03-01 00:00+00', 0);

------------------------------------------------------------------------------
-- Mapping incidents
------------------------------------------------------------------------------

-- Expected, worked out by hand:
--   PA resolved, Z times: resolved_at 10:40:23 from resolved_at; P2 in attributes
--   PB triggered, +02:00: opened 2026-02-01 06:00 UTC; unicode title kept
--   PC acknowledged, ack at 09:15:00+0200 = 07:15 UTC from acknowledgements
--   PD unknown status "snoozed": open, status kept in attributes
--   PE resolved, resolved_at null: last_status_change_at in epoch ms
--      1770000000000 = 2026-02-02 02:40:00 UTC
--   PF nulls: service unknown, no title (summary is used when title is empty), no severity
--   PG resolved_at before created_at (a vendor quirk): clamped to created_at
--   PH listed twice: the later copy wins (title "second")
--   skipped: no created_at, created_at "", numeric id, not an object
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'),
    (SELECT config FROM engineering.sources WHERE name = 'pd'),
    $json$[
      {"id": "PA", "incident_number": 1, "title": "The server is on fire.", "status": "resolved",
       "urgency": "high", "created_at": "2026-02-01T10:30:42Z", "updated_at": "2026-02-01T10:40:23Z",
       "last_status_change_at": "2026-02-01T10:40:23Z", "resolved_at": "2026-02-01T10:40:23Z",
       "service": {"id": "PCHK001", "type": "service_reference", "summary": "Checkout"},
       "priority": {"id": "PP2", "type": "priority_reference", "summary": "P2"},
       "escalation_policy": {"id": "PEP1", "summary": "Default"},
       "teams": [{"id": "PT1", "summary": "Payments"}],
       "assignments": [], "acknowledgements": [], "html_url": "https://acme.pagerduty.com/incidents/PA"},
      {"id": "PB", "incident_number": 2, "title": "Zahlungsdienst ausgefallen – ☕ 支付失败", "status": "triggered",
       "urgency": "low", "created_at": "2026-02-01T08:00:00+02:00", "updated_at": "2026-02-01T08:00:00+02:00",
       "last_status_change_at": "2026-02-01T08:00:00+02:00", "resolved_at": null,
       "service": {"id": "PBIL001", "summary": "Billing API"}, "priority": null,
       "assignments": [{"at": "2026-02-01T08:00:00+02:00", "assignee": {"id": "PU1", "summary": "Ada"}}]},
      {"id": "PC", "incident_number": 3, "title": "Latency", "status": "acknowledged", "urgency": "high",
       "created_at": "2026-02-01T09:00:00+0200", "last_status_change_at": "2026-02-01T09:15:00+0200",
       "acknowledgements": [{"at": "2026-02-01T09:15:00+0200", "acknowledger": {"summary": "Grace"}}],
       "service": {"id": "PCHK001", "summary": "Checkout"}},
      {"id": "PD", "incident_number": 4, "title": "Snoozed", "status": "snoozed", "urgency": "critical",
       "created_at": "2026-02-01T11:00:00Z", "service": {"id": "POTH001", "summary": "Search"}},
      {"id": "PE", "incident_number": 5, "title": "Epoch", "status": "resolved", "urgency": "low",
       "created_at": "2026-02-02 01:00:00 +0000", "resolved_at": null, "last_status_change_at": 1770000000000,
       "service": {"id": "PCHK001", "summary": "Checkout"}},
      {"id": "PF", "incident_number": 6, "title": "", "summary": "[#6] From the summary", "status": null,
       "urgency": null, "created_at": "2026-02-03T00:00:00Z", "service": null, "teams": null},
      {"id": "PG", "incident_number": 7, "title": "Clock skew", "status": "resolved", "urgency": "high",
       "created_at": "2026-02-04T12:00:00Z", "resolved_at": "2026-02-04T11:59:00Z",
       "service": {"id": "PCHK001"}},
      {"id": "PH", "title": "first", "status": "triggered", "created_at": "2026-02-05T00:00:00Z"},
      {"id": "PH", "title": "second", "status": "triggered", "created_at": "2026-02-05T00:00:00Z"},
      {"id": "PX1", "title": "no created_at", "status": "triggered"},
      {"id": "PX2", "title": "empty created_at", "status": "triggered", "created_at": ""},
      {"id": 42, "title": "numeric id", "status": "triggered", "created_at": "2026-02-05T00:00:00Z"},
      "not an object"
    ]$json$) AS upserted;

SELECT external_id, service, title, severity, status, opened_at, acknowledged_at, resolved_at
FROM engineering.incidents ORDER BY external_id;
SELECT external_id, attributes FROM engineering.incidents WHERE external_id IN ('PA', 'PB', 'PD', 'PF')
ORDER BY external_id;

-- the same payload again changes nothing
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), (SELECT config FROM engineering.sources WHERE name = 'pd'),
    $json$[{"id": "PA", "incident_number": 1, "title": "The server is on fire.", "status": "resolved",
       "urgency": "high", "created_at": "2026-02-01T10:30:42Z", "updated_at": "2026-02-01T10:40:23Z",
       "last_status_change_at": "2026-02-01T10:40:23Z", "resolved_at": "2026-02-01T10:40:23Z",
       "service": {"id": "PCHK001", "type": "service_reference", "summary": "Checkout"},
       "priority": {"id": "PP2", "type": "priority_reference", "summary": "P2"},
       "escalation_policy": {"id": "PEP1", "summary": "Default"},
       "teams": [{"id": "PT1", "summary": "Payments"}],
       "assignments": [], "acknowledgements": [], "html_url": "https://acme.pagerduty.com/incidents/PA"}]$json$)
    AS unchanged;

-- PC moves on: resolved at 10:00+02 = 08:00 UTC; its acknowledgements are
-- gone from the payload, the first acknowledgement stays 07:15
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), (SELECT config FROM engineering.sources WHERE name = 'pd'),
    $json$[{"id": "PC", "incident_number": 3, "title": "Latency", "status": "resolved", "urgency": "high",
       "created_at": "2026-02-01T09:00:00+0200", "last_status_change_at": "2026-02-01T10:00:00+0200",
       "resolved_at": "2026-02-01T10:00:00+02:00", "acknowledgements": [],
       "service": {"id": "PCHK001", "summary": "Checkout"}}]$json$) AS resolved_now;
SELECT external_id, status, acknowledged_at, resolved_at, attributes->>'pagerduty_status' AS pd_status
FROM engineering.incidents WHERE external_id = 'PC';

-- bad input: a clear error, nothing written
SELECT engineering._pagerduty_map_incidents(1, '{}',
    '[{"id": "PZ", "status": "triggered", "created_at": "yesterday"}]');
SELECT engineering._pagerduty_map_incidents(1, '{}', '{"incidents": []}');
SELECT count(*) FROM engineering.incidents WHERE external_id = 'PZ';

------------------------------------------------------------------------------
-- Mapping log entries
------------------------------------------------------------------------------

-- PB (triggered, opened 06:00 UTC): newest first as PagerDuty lists them;
-- two acknowledgements, the first (06:05Z) counts, by Ada
SELECT engineering._pagerduty_map_log_entries(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), 'PB',
    $json$[
      {"id": "R4", "type": "resolve_log_entry", "created_at": "2026-02-01T09:00:00+02:00", "agent": {"summary": "Ada"}},
      {"id": "R3", "type": "acknowledge_log_entry", "created_at": "2026-02-01T08:30:00+02:00", "agent": {"summary": "Grace"}},
      {"id": "R2", "type": "acknowledge_log_entry", "created_at": "2026-02-01T06:05:00Z", "agent": {"summary": "Ada"}},
      {"id": "R1", "type": "trigger_log_entry", "created_at": "2026-02-01T06:00:00Z", "channel": {"type": "api"}},
      {"id": "R0", "type": "notify_log_entry", "created_at": null},
      "junk"
    ]$json$, true) AS changed;
SELECT external_id, acknowledged_at, attributes->>'acknowledged_by' AS by,
       attributes->'log_entries_read' AS log_read
FROM engineering.incidents WHERE external_id = 'PB';
-- again: nothing to change
SELECT engineering._pagerduty_map_log_entries(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), 'PB',
    '[{"type": "acknowledge_log_entry", "created_at": "2026-02-01T06:05:00Z", "agent": {"summary": "Ada"}}]', true)
    AS unchanged;
-- PC: a log entry earlier than the acknowledgement seen so far (07:15)
-- moves it back to 07:10; a first page (complete false) does not mark the
-- log read
SELECT engineering._pagerduty_map_log_entries(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), 'PC',
    '[{"type": "acknowledge_log_entry", "created_at": "2026-02-01T07:10:00Z", "agent": {"summary": "Linus"}}]', false)
    AS moved;
SELECT external_id, acknowledged_at, attributes->>'acknowledged_by' AS by, attributes ? 'log_entries_read' AS log_read
FROM engineering.incidents WHERE external_id = 'PC';
-- PE: no acknowledgement at all; the log is read, acknowledged_at stays NULL
SELECT engineering._pagerduty_map_log_entries(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), 'PE',
    '[{"type": "resolve_log_entry", "created_at": "2026-02-02T02:40:00Z"}]', true) AS marked;
SELECT external_id, acknowledged_at, attributes->'log_entries_read' AS log_read
FROM engineering.incidents WHERE external_id = 'PE';
SELECT engineering._pagerduty_map_log_entries(1, 'PE', '{"log_entries": []}', true);

------------------------------------------------------------------------------
-- Plan
------------------------------------------------------------------------------

-- With a watermark of one hour ago (same scope), one window from the
-- watermark less the 10-minute look-back; unresolved incidents opened
-- before it (PB, PD, PF, PH) again by id; PA and PG resolved, unread,
-- so their logs are queued (PC and PE were handled above: PC's log is
-- unread too, PE's was read).  One transaction, so that now() is the same
-- instant in the three statements (a slow server crosses a second).
BEGIN;
UPDATE engineering.sources SET cursor = jsonb_build_object(
    'incidents_created', engineering._iso8601(now() - interval '1 hour'),
    'incidents_scope', engineering._pagerduty_scope(config))
WHERE name = 'pd';
SELECT engineering._pagerduty_plan(s) FROM engineering.sources s WHERE name = 'pd';
SELECT stream,
       regexp_replace(url, 'since=[^&]+&until=[^&]+', 'since=…&until=…') AS url,
       payload - 'from' - 'to' AS payload,
       (payload->>'from')::timestamptz = date_trunc('second', now() - interval '70 minutes') AS from_lookback,
       (payload->>'to')::timestamptz = date_trunc('second', now()) AS to_now
FROM engineering.sync_tasks ORDER BY id;
COMMIT;

-- A changed scope (other service_ids) forgets the watermark: windows of
-- 90 days from since (2025-06-01) to now (the same now(): one transaction)
DELETE FROM engineering.sync_tasks;
SELECT engineering.alter_source('pd', config => '{"service_ids": ["PCHK001"], "since": "2025-06-01", "log_entries": false}');
BEGIN;
SELECT engineering._pagerduty_plan(s) FROM engineering.sources s WHERE name = 'pd';
SELECT count(*) = ceil(extract(epoch FROM now() - '2025-06-01 00:00+00'::timestamptz) / (90 * 86400)) AS windows_cover_since,
       min((payload->>'from')::timestamptz) AS first_from,
       bool_and(url LIKE '%&service_ids%5B%5D=PCHK001') AS filtered,
       bool_and((payload->>'to')::timestamptz - (payload->>'from')::timestamptz <= interval '90 days') AS short_windows
FROM engineering.sync_tasks WHERE stream = 'incidents';
COMMIT;
-- log_entries false: no log is queued
SELECT stream, count(*) FROM engineering.sync_tasks GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------------
-- Ingest
------------------------------------------------------------------------------

DELETE FROM engineering.sync_tasks;
SELECT engineering.alter_source('pd', config => '{"service_map": {"PCHK001": "checkout"}}');
UPDATE engineering.sources SET cursor = '{}' WHERE name = 'pd';
SELECT engineering._enqueue(id, 'incidents',
    engineering._pagerduty_incidents_url(config, '2026-01-01 00:00+00', '2026-03-01 00:00+00', 0),
    '{"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "offset": 0}')
FROM engineering.sources WHERE name = 'pd';

-- a first page with more: the next offset is queued; PQ1 is resolved, so
-- its log is queued too
SELECT engineering._pagerduty_ingest(s, t, 200, '{}',
    $json$ {"incidents": [
        {"id": "PQ1", "status": "resolved", "created_at": "2026-01-05T00:00:00Z", "resolved_at": "2026-01-05T01:00:00Z",
         "service": {"id": "PCHK001"}},
        {"id": "PQ2", "status": "triggered", "created_at": "2026-01-06T00:00:00Z", "service": {"id": "PCHK001"}}],
      "limit": 100, "offset": 0, "more": true, "total": null} $json$)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.id = (SELECT min(id) FROM engineering.sync_tasks);
DELETE FROM engineering.sync_tasks WHERE id = (SELECT min(id) FROM engineering.sync_tasks);
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;

-- the page at offset 9,900 with more: offset 10,000 would be refused, so
-- a new window starts at the newest incident of the page (2026-02-10 12:00:07,
-- whole seconds)
UPDATE engineering.sync_tasks SET payload = payload || '{"offset": 9900}'
WHERE stream = 'incidents';
SELECT engineering._pagerduty_ingest(s, t, 200, '{}',
    $json$ {"incidents": [
        {"id": "PQ3", "status": "triggered", "created_at": "2026-02-10T12:00:05Z"},
        {"id": "PQ4", "status": "triggered", "created_at": "2026-02-10T14:00:07.250+02:00"}],
      "limit": 100, "offset": 9900, "more": true} $json$)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.stream = 'incidents';
DELETE FROM engineering.sync_tasks WHERE id = (SELECT min(id) FROM engineering.sync_tasks WHERE stream = 'incidents');
SELECT stream, url, payload FROM engineering.sync_tasks WHERE stream = 'incidents' ORDER BY id;

-- ... and if a whole page at offset 9,900 shares the window's first
-- second, it cannot go on: an error, not a silent gap
UPDATE engineering.sync_tasks SET payload = payload || '{"offset": 9900}' WHERE stream = 'incidents';
SELECT engineering._pagerduty_ingest(s, t, 200, '{}',
    $json$ {"incidents": [{"id": "PQ5", "status": "triggered", "created_at": "2026-02-10T12:00:07Z"}],
      "limit": 100, "offset": 9900, "more": true} $json$)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.stream = 'incidents';
UPDATE engineering.sync_tasks SET payload = payload || '{"offset": 0}' WHERE stream = 'incidents';

-- the last page (more false) completes the window: the watermark moves to
-- its end, with the scope it belongs to
SELECT engineering._pagerduty_ingest(s, t, 200, '{}', '{"incidents": [], "limit": 100, "offset": 0, "more": false}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.stream = 'incidents';
SELECT cursor FROM engineering.sources WHERE name = 'pd';

-- a log with more pages queues the next one and does not mark the log read
SELECT engineering._pagerduty_ingest(s, t, 200, '{}',
    '{"log_entries": [{"type": "acknowledge_log_entry", "created_at": "2026-01-05T00:10:00Z"}], "limit": 100, "offset": 0, "more": true}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.stream = 'log_entries' AND t.payload->>'incident' = 'PQ1';
SELECT stream, url, payload FROM engineering.sync_tasks WHERE stream = 'log_entries' ORDER BY id;
SELECT external_id, acknowledged_at, attributes ? 'log_entries_read' AS log_read
FROM engineering.incidents WHERE external_id = 'PQ1';

-- an incident fetched again that is gone (404: body NULL) is not asked for again
SELECT engineering._enqueue(id, 'incident', '/incidents/PQ2', '{"incident": "PQ2", "missing_ok": true}')
FROM engineering.sources WHERE name = 'pd';
SELECT engineering._pagerduty_ingest(s, t, 404, '{}', NULL)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.stream = 'incident';
SELECT external_id, status, attributes->'pagerduty_gone' AS gone FROM engineering.incidents WHERE external_id = 'PQ2';
DELETE FROM engineering.sync_tasks;
SELECT engineering._pagerduty_plan(s) FROM engineering.sources s WHERE name = 'pd';
SELECT count(*) AS refetch_pq2 FROM engineering.sync_tasks WHERE payload->>'incident' = 'PQ2';

-- malformed bodies and unknown streams raise (the engine rolls the page back)
SELECT engineering._pagerduty_ingest(s, t, 200, '{}', '{"incident": "PQ1"}')
FROM engineering.sources s JOIN LATERAL (SELECT * FROM engineering.sync_tasks WHERE stream = 'incident' LIMIT 1) t ON true
WHERE s.name = 'pd';
SELECT engineering._pagerduty_ingest(s, t, 200, '{}', '{"error": {"message": "x"}}')
FROM engineering.sources s JOIN LATERAL (SELECT * FROM engineering.sync_tasks WHERE stream = 'incidents' LIMIT 1) t ON true
WHERE s.name = 'pd';
UPDATE engineering.sync_tasks SET stream = 'services' WHERE id = (SELECT min(id) FROM engineering.sync_tasks);
SELECT engineering._pagerduty_ingest(s, t, 200, '{}', '{}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'pd' AND t.stream = 'services';

------------------------------------------------------------------------------
-- The shared incident upsert (_upsert_incidents)
------------------------------------------------------------------------------

-- PU: seen acknowledged at 07:20 with a team; then its log (07:05 by Ada)
-- is read, someone attributes it to a deployment and adds a key of their
-- own, and it is marked gone; a fresh copy (resolved, acknowledgements and
-- teams gone) keeps the log's acknowledgement and its keys, the attribution
-- and the foreign key, and drops what the copy no longer has (teams, gone)
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), '{}',
    $json$[{"id": "PU", "title": "Upsert", "status": "acknowledged", "urgency": "high",
       "created_at": "2026-02-03T07:00:00Z", "last_status_change_at": "2026-02-03T07:20:00Z",
       "acknowledgements": [{"at": "2026-02-03T07:20:00Z", "acknowledger": {"summary": "Grace"}}],
       "teams": [{"summary": "Payments"}], "service": {"id": "PSVC", "summary": "Search"}}]$json$) AS first_copy;
SELECT engineering._pagerduty_map_log_entries(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), 'PU',
    '[{"type": "acknowledge_log_entry", "created_at": "2026-02-03T07:05:00Z", "agent": {"summary": "Ada"}}]', true)
    AS log_read;
INSERT INTO engineering.deployments (service, environment, commit_sha, started_at, finished_at, status, external_id)
VALUES ('search', 'production', 'abc1234', '2026-02-03 06:00+00', '2026-02-03 06:10+00', 'success', 'upsert-dep');
UPDATE engineering.incidents
SET cause_deployment_id = (SELECT id FROM engineering.deployments WHERE external_id = 'upsert-dep'),
    cause_inferred = false,
    attributes = attributes || '{"postmortem": "PM-7", "pagerduty_gone": true}'
WHERE external_id = 'PU';
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), '{}',
    $json$[{"id": "PU", "title": "Upsert", "status": "resolved", "urgency": "high",
       "created_at": "2026-02-03T07:00:00Z", "resolved_at": "2026-02-03T08:00:00Z",
       "acknowledgements": [], "teams": [], "service": {"id": "PSVC", "summary": "Search"}}]$json$) AS fresh_copy;
SELECT status, acknowledged_at, resolved_at, cause_deployment_id IS NOT NULL AS attributed, cause_inferred,
       attributes - 'pagerduty_id' AS attributes
FROM engineering.incidents WHERE external_id = 'PU';
-- the same copy again: nothing to rewrite
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), '{}',
    $json$[{"id": "PU", "title": "Upsert", "status": "resolved", "urgency": "high",
       "created_at": "2026-02-03T07:00:00Z", "resolved_at": "2026-02-03T08:00:00Z",
       "acknowledgements": [], "teams": [], "service": {"id": "PSVC", "summary": "Search"}}]$json$) AS unchanged;
-- rows given out of order, an acknowledgement before the opening (clamped
-- to it), an empty array
SELECT engineering._upsert_incidents(ARRAY[
    ROW(NULL, s.id, 'PW2', 'search', 'w2', NULL, 'open', '2026-02-04 10:00+00', '2026-02-04 09:00+00', NULL, NULL, false, '{}'),
    ROW(NULL, s.id, 'PW1', 'search', 'w1', NULL, 'open', '2026-02-04 10:00+00', NULL, NULL, NULL, false, NULL)
    ]::engineering.incidents[]) AS written,
       engineering._upsert_incidents('{}') AS none
FROM engineering.sources s WHERE s.name = 'pd';
SELECT external_id, opened_at, acknowledged_at, attributes FROM engineering.incidents
WHERE external_id IN ('PW1', 'PW2') ORDER BY external_id;
DELETE FROM engineering.incidents WHERE external_id IN ('PU', 'PW1', 'PW2');
DELETE FROM engineering.deployments WHERE external_id = 'upsert-dep';

------------------------------------------------------------------------------
-- Shapes of real responses
------------------------------------------------------------------------------

-- the API schema's acknowledged incident: acknowledged_by from its own
-- acknowledgements[] (before any log is read); DevLake's recording: an
-- acknowledged incident with acknowledgements (Keon), a triggered one whose
-- last status change was made by a service (no acknowledger), microsecond
-- times, a resolved one without resolved_at (last_status_change_at)
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), '{}',
    $json$[
      {"id": "PT1A2B3", "type": "incident", "summary": "[#1234] The server is on fire.", "incident_number": 1234,
       "created_at": "2015-10-06T21:30:42Z", "updated_at": "2015-10-06T21:40:23Z", "status": "acknowledged",
       "title": "The server is on fire.", "incident_key": "baf7cf21b1da41b4b0221008339ff357",
       "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service"},
       "assignments": [{"at": "2015-11-10T00:31:52Z", "assignee": {"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt"}}],
       "last_status_change_at": "2015-10-06T21:38:23Z",
       "last_status_change_by": {"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt"},
       "acknowledgements": [{"at": "2015-11-10T00:32:52Z", "acknowledger": {"id": "PXPGF42", "type": "user_reference", "summary": "Earline Greenholt"}}],
       "urgency": "high", "priority": {"id": "P53ZZH5", "type": "priority_reference", "summary": "P2"}},
      {"id": "Q3CZAU7Q4008QD", "incident_number": 5, "title": "Checkout latency", "status": "acknowledged",
       "created_at": "2022-11-03T06:44:28.000000Z", "last_status_change_at": "2022-11-03T06:44:37.000000Z",
       "last_status_change_by": {"id": "PQYACO3", "type": "user_reference", "summary": "Keon Amini"},
       "acknowledgements": [{"at": "2022-11-03T06:44:37.000000Z", "acknowledger": {"id": "PQYACO3", "type": "user_reference", "summary": "Keon Amini"}}],
       "service": {"id": "PIKL83L", "type": "service_reference", "summary": "DevService"}, "urgency": "high", "priority": null},
      {"id": "Q3YON8WNWTZMRQ", "incident_number": 6, "title": "Disk full", "status": "triggered",
       "created_at": "2022-11-03T06:23:06.000000Z", "last_status_change_at": "2022-11-03T07:02:36.000000Z",
       "last_status_change_by": {"id": "PIKL83L", "type": "service_reference", "summary": "DevService"},
       "acknowledgements": [], "service": {"id": "PIKL83L", "type": "service_reference", "summary": "DevService"}, "urgency": "high"},
      {"id": "Q1OHFWFP3GPXOG", "incident_number": 7, "title": "Queue stuck", "status": "resolved",
       "created_at": "2022-11-03T06:45:36.000000Z", "last_status_change_at": "2022-11-03T06:51:44.000000Z",
       "last_status_change_by": {"id": "PQYACO3", "type": "user_reference", "summary": "Keon Amini"},
       "acknowledgements": [], "service": {"id": "PIKL83L", "type": "service_reference", "summary": "DevService"}, "urgency": "low"}
    ]$json$) AS real_shapes;
SELECT external_id, service, severity, status, opened_at, acknowledged_at, resolved_at,
       attributes->>'acknowledged_by' AS acknowledged_by, attributes->>'priority' AS priority
FROM engineering.incidents WHERE external_id IN ('PT1A2B3', 'Q3CZAU7Q4008QD', 'Q3YON8WNWTZMRQ', 'Q1OHFWFP3GPXOG')
ORDER BY external_id;
-- an acknowledged incident seen only through last_status_change_by (no
-- acknowledgements listed): that user acknowledged it
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), '{}',
    $json$[{"id": "PLSCB", "title": "x", "status": "acknowledged", "created_at": "2026-02-05T10:00:00Z",
       "last_status_change_at": "2026-02-05T10:03:00Z",
       "last_status_change_by": {"id": "PU1", "type": "user_reference", "summary": "Grace"},
       "service": {"id": "PSVC", "summary": "Search"}}]$json$) AS by_status_change;
SELECT acknowledged_at, attributes->>'acknowledged_by' AS acknowledged_by FROM engineering.incidents WHERE external_id = 'PLSCB';
-- the log later says Ada acknowledged it earlier: she wins, and a fresh
-- copy of the incident (Grace still shown) does not take it back
SELECT engineering._pagerduty_map_log_entries(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), 'PLSCB',
    '[{"type": "acknowledge_log_entry", "created_at": "2026-02-05T10:01:00Z", "agent": {"summary": "Ada"}}]', true)
    AS log_read;
SELECT engineering._pagerduty_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'pd'), '{}',
    $json$[{"id": "PLSCB", "title": "x", "status": "acknowledged", "created_at": "2026-02-05T10:00:00Z",
       "last_status_change_at": "2026-02-05T10:03:00Z",
       "last_status_change_by": {"id": "PU1", "type": "user_reference", "summary": "Grace"},
       "service": {"id": "PSVC", "summary": "Search"}}]$json$) AS unchanged;
SELECT acknowledged_at, attributes->>'acknowledged_by' AS acknowledged_by FROM engineering.incidents WHERE external_id = 'PLSCB';
DELETE FROM engineering.incidents
WHERE external_id IN ('PT1A2B3', 'Q3CZAU7Q4008QD', 'Q3YON8WNWTZMRQ', 'Q1OHFWFP3GPXOG', 'PLSCB');
