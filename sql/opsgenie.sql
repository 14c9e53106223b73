CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- errors are part of the expected output: their messages and hints, not
-- the PL/pgSQL call stacks
\set SHOW_CONTEXT never

-- The Opsgenie connector's SQL, without a network: config validation, the
-- mapping of incident payloads, and what plan and ingest queue.  Fixtures
-- are written here by hand in Opsgenie's shapes.

------------------------------------------------------------------------------
-- Config
------------------------------------------------------------------------------

SELECT engineering.add_source('og', 'opsgenie', 'http://127.0.0.1:9/opsgenie',
    '{"query": "status:open OR status:resolved OR status:closed", "since": "2026-01-01",
      "service_map": {"6d0d3a43-0000-4000-8000-00000000c0de": "checkout"}}');
SELECT engineering.add_source('og-eu', 'opsgenie', NULL, '{"query": "*"}');
SELECT name, base_url FROM engineering.sources ORDER BY id;
SELECT engineering.alter_source('og-eu', base_url => 'https://api.eu.opsgenie.com');
SELECT name, base_url FROM engineering.sources ORDER BY id;
SELECT engineering.remove_source('og-eu');
-- refused configs: the query is mandatory
SELECT engineering.add_source('bad', 'opsgenie', NULL, '{}');
SELECT engineering.add_source('bad', 'opsgenie', NULL, '{"query": "  "}');
SELECT engineering.add_source('bad', 'opsgenie', NULL, '{"query": ["status:open"]}');
SELECT engineering.add_source('bad', 'opsgenie', NULL, '{"query": "*", "lookback": 600}');
SELECT count(*) AS sources FROM engineering.sources;

------------------------------------------------------------------------------
-- Helpers
------------------------------------------------------------------------------

-- closed counts as resolved; unknown statuses and NULL are open
SELECT s, engineering._opsgenie_status(s)
FROM unnest(ARRAY['open', 'resolved', 'closed', 'investigating', NULL]) s;

-- services: the first impacted service found in service_map, else the
-- first one through _map_service (config service, else the id), then
-- serviceId, then "unknown"
SELECT label, engineering._opsgenie_service(config, incident)
FROM (VALUES
    ('second one mapped', '{"service_map": {"svc-b": "checkout"}}'::jsonb,
                          '{"impactedServices": ["svc-a", "svc-b"]}'::jsonb),
    ('none mapped',       '{"service_map": {"svc-z": "checkout"}}', '{"impactedServices": ["svc-a", "svc-b"]}'),
    ('config service',    '{"service": "shop"}', '{"impactedServices": ["svc-a"]}'),
    ('serviceId only',    '{}', '{"serviceId": "svc-c"}'),
    ('not strings',       '{}', '{"impactedServices": [7, null, "svc-d"]}'),
    ('nothing',           '{}', '{"impactedServices": []}'),
    ('nothing, service',  '{"service": "shop"}', '{}')) v(label, config, incident);

SELECT engineering._opsgenie_incidents_url('{"query": "impactedServices:6d0d3a43 AND status:open"}');

------------------------------------------------------------------------------
-- Mapping incidents
------------------------------------------------------------------------------

-- Expected, worked out by hand:
--   OA resolved (DevLake-like record): opened at impactStartDate 18:20:28.003Z,
--      resolved at impactEndDate 18:21:21.49Z; P5
--   OB closed, no impact dates: opened at createdAt 10:00:00+02:00 = 08:00 UTC,
--      resolved at updatedAt 2026-03-01T09:30:00+0200 = 07:30 UTC?  That is before
--      it opened, so it is clamped to 08:00 (a vendor quirk must not break the page)
--   OC open, impactStartDate earlier than createdAt (impact began before the
--      incident was declared): opened 2026-03-02 05:00 UTC, mapped to checkout
--   OD unknown status "investigating": open; priority P1; unicode message
--   OE resolved, times as epoch milliseconds: created 1772445600000 =
--      2026-03-02 10:00:00 UTC, impact end 1772449200000 = 11:00:00 UTC
--   OF nulls: no message, no priority, no services: "unknown"
--   OG status open but an impactEndDate (reopened): open, resolved_at NULL
--   skipped: no createdAt, numeric id, an array
SELECT engineering._opsgenie_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'og'),
    (SELECT config FROM engineering.sources WHERE name = 'og'),
    $json$[
      {"id": "OA", "tinyId": "1", "message": "Incident#2", "status": "resolved", "priority": "P5",
       "impactedServices": ["695bce3d-4621-4630-8ae1-24eb89c22d6e"],
       "createdAt": "2023-09-05T18:20:28.003Z", "updatedAt": "2023-09-05T18:21:21.49Z",
       "impactStartDate": "2023-09-05T18:20:28.003Z", "impactEndDate": "2023-09-05T18:21:21.49Z",
       "tags": ["db"], "ownerTeam": "team-1"},
      {"id": "OB", "tinyId": "2", "message": "Queue backlog", "status": "closed", "priority": "P3",
       "createdAt": "2026-03-01T10:00:00+02:00", "updatedAt": "2026-03-01T09:30:00+0200"},
      {"id": "OC", "tinyId": "3", "message": "Checkout errors", "status": "open", "priority": "P2",
       "impactedServices": ["6d0d3a43-0000-4000-8000-00000000c0de"],
       "createdAt": "2026-03-02T06:00:00Z", "updatedAt": "2026-03-02T06:00:00Z",
       "impactStartDate": "2026-03-02T07:00:00+02:00"},
      {"id": "OD", "tinyId": "4", "message": "Paiement refusé – 決済エラー 💳", "status": "investigating",
       "priority": "P1", "createdAt": "2026-03-02T08:00:00Z", "impactedServices": ["svc-x"]},
      {"id": "OE", "tinyId": "5", "message": "Epoch", "status": "resolved", "priority": "P4",
       "createdAt": 1772445600000, "impactEndDate": 1772449200000},
      {"id": "OF", "tinyId": null, "message": null, "status": "open", "priority": null,
       "createdAt": "2026-03-03T00:00:00Z", "impactedServices": null, "tags": null},
      {"id": "OG", "tinyId": "7", "message": "Reopened", "status": "open", "priority": "P3",
       "createdAt": "2026-03-04T00:00:00Z", "impactStartDate": "2026-03-04T00:00:00Z",
       "impactEndDate": "2026-03-04T01:00:00Z"},
      {"id": "OX", "message": "no createdAt", "status": "open"},
      {"id": 9, "message": "numeric id", "status": "open", "createdAt": "2026-03-03T00:00:00Z"},
      ["not", "an", "object"]
    ]$json$) AS upserted;

SELECT external_id, service, title, severity, status, opened_at, acknowledged_at, resolved_at
FROM engineering.incidents ORDER BY external_id;
SELECT external_id, attributes FROM engineering.incidents WHERE external_id IN ('OA', 'OD', 'OF')
ORDER BY external_id;

-- the same record again changes nothing; OC resolved changes one row
SELECT engineering._opsgenie_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'og'), (SELECT config FROM engineering.sources WHERE name = 'og'),
    $json$[{"id": "OA", "tinyId": "1", "message": "Incident#2", "status": "resolved", "priority": "P5",
       "impactedServices": ["695bce3d-4621-4630-8ae1-24eb89c22d6e"],
       "createdAt": "2023-09-05T18:20:28.003Z", "updatedAt": "2023-09-05T18:21:21.49Z",
       "impactStartDate": "2023-09-05T18:20:28.003Z", "impactEndDate": "2023-09-05T18:21:21.49Z",
       "tags": ["db"], "ownerTeam": "team-1"}]$json$) AS unchanged;
SELECT engineering._opsgenie_map_incidents(
    (SELECT id FROM engineering.sources WHERE name = 'og'), (SELECT config FROM engineering.sources WHERE name = 'og'),
    $json$[{"id": "OC", "tinyId": "3", "message": "Checkout errors", "status": "resolved", "priority": "P2",
       "impactedServices": ["6d0d3a43-0000-4000-8000-00000000c0de"],
       "createdAt": "2026-03-02T06:00:00Z", "updatedAt": "2026-03-02T07:45:00Z",
       "impactStartDate": "2026-03-02T07:00:00+02:00", "impactEndDate": "2026-03-02T07:40:00Z"}]$json$) AS resolved_now;
SELECT external_id, status, opened_at, resolved_at, attributes->>'opsgenie_status' AS og_status
FROM engineering.incidents WHERE external_id = 'OC';

-- bad input: a clear error, nothing written
SELECT engineering._opsgenie_map_incidents(1, '{}',
    '[{"id": "OZ", "status": "open", "createdAt": "2026-03-02T08:00:00"}]');
SELECT engineering._opsgenie_map_incidents(1, '{}', '{"data": []}');
SELECT count(*) FROM engineering.incidents WHERE external_id = 'OZ';

------------------------------------------------------------------------------
-- Plan
------------------------------------------------------------------------------

-- A watermark of 2026-03-03 00:00 for this query and since: the first page
-- with the floor 10 minutes before it (2026-03-02 23:50), and the open incidents created before the
-- floor by id (OC was resolved above; OD created 03-02 08:00 is open; OF
-- was created at the watermark, after the floor; OG after it)
UPDATE engineering.sources SET cursor = jsonb_build_object(
    'incidents_created', '2026-03-03T00:00:00Z', 'incidents_scope', engineering._opsgenie_scope(config))
WHERE name = 'og';
SELECT engineering._opsgenie_plan(s) FROM engineering.sources s WHERE name = 'og';
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;

-- another query: the watermark does not apply to it (floor = since)
DELETE FROM engineering.sync_tasks;
SELECT engineering.alter_source('og', config => '{"query": "priority:P1", "since": "2026-01-01"}');
SELECT engineering._opsgenie_plan(s) FROM engineering.sources s WHERE name = 'og';
SELECT stream, url, payload FROM engineering.sync_tasks WHERE stream = 'incidents' ORDER BY id;

------------------------------------------------------------------------------
-- Ingest
------------------------------------------------------------------------------

-- a full page newer than the floor (2026-03-01): mapped, paging.next
-- (absolute, as Opsgenie sends it) followed, the newest createdAt carried
DELETE FROM engineering.sync_tasks WHERE stream = 'incident';
SELECT engineering._opsgenie_ingest(s, t, 200, '{}',
    $json$ {"data": [
        {"id": "ON1", "status": "open", "message": "n1", "createdAt": "2026-03-10T12:00:00.500Z"},
        {"id": "ON2", "status": "resolved", "message": "n2", "createdAt": "2026-03-09T12:00:00Z",
         "impactEndDate": "2026-03-09T13:00:00Z"}],
      "paging": {"first": "https://api.opsgenie.com/v1/incidents?query=priority%3AP1&offset=0&limit=2",
                 "next": "https://api.opsgenie.com/v1/incidents?query=priority%3AP1&offset=2&limit=2"},
      "took": 0.1, "requestId": "r1", "totalCount": 5} $json$)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og' AND t.stream = 'incidents';
DELETE FROM engineering.sync_tasks WHERE id = (SELECT min(id) FROM engineering.sync_tasks);
SELECT stream, url, payload FROM engineering.sync_tasks ORDER BY id;

-- the next page crosses the floor (2026-01-01): what is older is not
-- mapped, no further page is queued although paging.next is there, and
-- the watermark becomes the newest createdAt seen, for this scope
SELECT engineering._opsgenie_ingest(s, t, 200, '{}',
    $json$ {"data": [
        {"id": "ON3", "status": "closed", "message": "n3", "createdAt": "2026-01-02T00:00:00Z"},
        {"id": "OOLD", "status": "closed", "message": "old", "createdAt": "2025-12-31T23:59:59Z"}],
      "paging": {"next": "https://api.opsgenie.com/v1/incidents?query=priority%3AP1&offset=4&limit=2"},
      "took": 0.1, "requestId": "r2", "totalCount": 5} $json$)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og' AND t.stream = 'incidents';
DELETE FROM engineering.sync_tasks WHERE id = (SELECT min(id) FROM engineering.sync_tasks);
SELECT count(*) AS queued FROM engineering.sync_tasks;
SELECT external_id, status FROM engineering.incidents WHERE external_id LIKE 'O%N%' OR external_id = 'OOLD'
ORDER BY external_id;
SELECT cursor FROM engineering.sources WHERE name = 'og';

-- an empty result without paging.next ends the stream too (no watermark to move)
SELECT engineering._enqueue(id, 'incidents', '/v1/incidents?query=x', '{"floor": "2026-01-01T00:00:00Z"}')
FROM engineering.sources WHERE name = 'og';
SELECT engineering._opsgenie_ingest(s, t, 200, '{}', '{"data": [], "paging": {}, "totalCount": 0}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og' AND t.stream = 'incidents';
DELETE FROM engineering.sync_tasks;

-- an open incident fetched again: {"data": {...}}; a 404 marks it gone
SELECT engineering._enqueue(id, 'incident', '/v1/incidents/ON1?identifierType=id',
                            '{"incident": "ON1", "missing_ok": true}')
FROM engineering.sources WHERE name = 'og';
SELECT engineering._opsgenie_ingest(s, t, 200, '{}',
    '{"data": {"id": "ON1", "status": "resolved", "message": "n1", "createdAt": "2026-03-10T12:00:00.500Z",
               "updatedAt": "2026-03-10T12:30:00Z"}, "took": 0.01, "requestId": "r3"}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og' AND t.stream = 'incident';
SELECT external_id, status, resolved_at FROM engineering.incidents WHERE external_id = 'ON1';
SELECT engineering._opsgenie_ingest(s, t, 404, '{}', NULL)
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og' AND t.stream = 'incident';
SELECT external_id, attributes->'opsgenie_gone' AS gone FROM engineering.incidents WHERE external_id = 'ON1';

-- malformed bodies and unknown streams raise (the engine rolls the page back)
SELECT engineering._opsgenie_ingest(s, t, 200, '{}', '{"data": [{"id": "ON1"}]}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og' AND t.stream = 'incident';
UPDATE engineering.sync_tasks SET stream = 'incidents';
SELECT engineering._opsgenie_ingest(s, t, 200, '{}', '{"message": "ok"}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og';
UPDATE engineering.sync_tasks SET stream = 'alerts';
SELECT engineering._opsgenie_ingest(s, t, 200, '{}', '{"data": []}')
FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id
WHERE s.name = 'og';
