CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
-- errors are part of the expected output: their messages and hints, not
-- the PL/pgSQL call stacks
\set SHOW_CONTEXT never

-- The Prometheus connector's SQL, without a network: config validation,
-- durations, the reading of query_range responses (one series, several,
-- NaN and infinities, empty results, error bodies, odd sample times) and
-- the mapping of a window of steps to slo_measurements.  Fixtures are
-- written here by hand in the shape of Prometheus' HTTP API
-- ({"status": "success", "data": {"resultType": "matrix", "result":
-- [{"metric": {...}, "values": [[<unix time>, "<value>"], ...]}]}}).
-- The steps used below: 1719748860 is 2024-06-30 12:01:00 UTC, and every
-- later minute adds 60.

INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.999);

------------------------------------------------------------------------------
-- Config
------------------------------------------------------------------------------

SELECT engineering.add_source('prom', 'prometheus', 'http://127.0.0.1:9/prometheus/',
    '{"slo": "checkout-availability",
      "good_query": "sum(increase(http_requests_total{job=\"checkout\",code!~\"5..\"}[$step]))",
      "total_query": "sum(increase(http_requests_total{job=\"checkout\"}[$step]))",
      "step": "1m"}') AS id \gset
SELECT base_url, kind FROM engineering.sources WHERE name = 'prom';
-- there is no public Prometheus: base_url is required
SELECT engineering.add_source('bad', 'prometheus', NULL,
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m"}');
-- refused configs
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090', '{}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "search-latency", "good_query": "a", "total_query": "b", "step": "1m"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "step": "1m"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": " ", "step": "1m"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "0s"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1500ms"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "2d"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1 month"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m", "lookback": "8d"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m", "lookback": -60}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m", "max_points": 11001}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m", "max_points": "100"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m", "lookbak": "5m"}');
SELECT engineering.add_source('bad', 'prometheus', 'http://p:9090',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "1m", "since": "last week"}');
SELECT count(*) AS sources FROM engineering.sources;
-- alter_source validates the same way
SELECT engineering.alter_source('prom', config => '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": "-1m"}');

------------------------------------------------------------------------------
-- Durations and queries
------------------------------------------------------------------------------

-- Prometheus durations, seconds, and words; everything else is NULL
SELECT v AS duration, engineering._prometheus_seconds(v) AS seconds
FROM (VALUES ('"1m"'::jsonb), ('"30s"'), ('"1h30m"'), ('"2h"'), ('"1d"'), ('"1w"'), ('"1y"'),
             ('"1500ms"'), ('"5m30s"'), ('"60"'), ('"0.5"'), ('90'), ('" 10 minutes "'), ('"1 hour"'),
             ('"2 days"'), ('"1 month"'), ('"1m1h"'), ('"-1m"'), ('"5 m"'), ('""'), ('"abc"'),
             ('true'), ('null')) d (v);

-- a step as Prometheus writes it, what $step stands for
SELECT s, engineering._prometheus_duration(s) FROM unnest(ARRAY[1, 30, 60, 90, 300, 3600, 5400, 86400]) s;
SELECT engineering._prometheus_query(config, 'good_query', 60) AS good,
       engineering._prometheus_query('{"q": "rate(x[$step]) / rate(y[${step}]) + $steps"}', 'q', 300) AS other
FROM engineering.sources WHERE name = 'prom';
SELECT engineering._prometheus_url('sum(increase(x{code!~"5.."}[1m]))', 1719748860, 1719749100, 60) AS url;

------------------------------------------------------------------------------
-- Reading query_range responses
------------------------------------------------------------------------------

-- one series: the instants of the window, values as they come
SELECT engineering._prometheus_points(
    '{"status": "success", "data": {"resultType": "matrix", "result": [
      {"metric": {}, "values": [[1719748860, "1000"], [1719748920, "998.5"], [1719748980, "0"]]}]}}',
    1719748860, 1719749100, 60);
-- several series are summed per instant (as if the query were wrapped in
-- sum()); a series that has no sample at an instant adds nothing there:
-- 12:01 = 600 + 400, 12:02 = 610 + 395 + 1.5, 12:03 = 7 (one series only)
SELECT engineering._prometheus_points(
    '{"status": "success", "data": {"resultType": "matrix", "result": [
      {"metric": {"instance": "a"}, "values": [[1719748860, "600"], [1719748920, "610"]]},
      {"metric": {"instance": "b"}, "values": [[1719748860, "400"], [1719748920, "395"], [1719748980, "7"]]},
      {"metric": {"instance": "c"}, "values": [[1719748920, "1.5"]]}]}}',
    1719748860, 1719749100, 60);
-- NaN anywhere makes the instant NaN; +Inf stays +Inf; +Inf and -Inf make
-- NaN; exponents and signs are numbers
SELECT engineering._prometheus_points(
    '{"status": "success", "data": {"resultType": "matrix", "result": [
      {"metric": {"s": "1"}, "values": [[1719748860, "NaN"], [1719748920, "+Inf"], [1719748980, "+Inf"], [1719749040, "1e+3"], [1719749100, "-Inf"]]},
      {"metric": {"s": "2"}, "values": [[1719748860, "5"],   [1719748920, "5"],    [1719748980, "-Inf"], [1719749040, "+20"], [1719749100, "1"]]}]}}',
    1719748860, 1719749100, 60);
-- samples outside the window are left out; fractional unix times on the grid are fine
SELECT engineering._prometheus_points(
    '{"status": "success", "data": {"resultType": "matrix", "result": [
      {"metric": {}, "values": [[1719748800, "1"], [1719748860.000, "2"], [1719749160, "3"]]}]}}',
    1719748860, 1719749100, 60);
-- no series, or series without samples: no points (no traffic)
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": []}}',
                                      1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": []}, {"metric": {}}]}}',
                                      1719748860, 1719749100, 60);
-- warnings do not stop the reading
SELECT engineering._prometheus_points('{"status": "success", "warnings": ["partial response"], "data": {"resultType": "matrix", "result": [{"values": [[1719748860, "3"]]}]}}',
                                      1719748860, 1719749100, 60);
-- refused: an error body (as a 200 through a proxy; Prometheus sends it
-- with 400, 422 or 503, which the engine records without reading it)
SELECT engineering._prometheus_points(
    '{"status": "error", "errorType": "bad_data", "error": "1:11: parse error: unexpected right parenthesis '')''"}',
    1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "error"}', 1719748860, 1719749100, 60);
-- refused: other shapes
SELECT engineering._prometheus_points('[]', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"data": {"resultType": "matrix", "result": []}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "vector", "result": []}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": {}}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [[1719748860, "1"]]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1719748860, 1]]}]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [["1719748860", "1"]]}]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1719748860, "1", "2"]]}]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1719748860, "lots"]]}]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1719748860, "1e99999"]]}]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "histograms": [[1719748860, {"count": "3", "sum": "1.5"}]]}]}}', 1719748860, 1719749100, 60);
-- refused: a sample between two instants of the window (another step or
-- alignment than the one asked for)
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1719748890, "1"]]}]}}', 1719748860, 1719749100, 60);
SELECT engineering._prometheus_points('{"status": "success", "data": {"resultType": "matrix", "result": [{"values": [[1719748860.5, "1"]]}]}}', 1719748860, 1719749100, 60);

------------------------------------------------------------------------------
-- Mapping a window of steps
------------------------------------------------------------------------------

CREATE TEMP VIEW stored AS
SELECT m.measured_at, m.good, m.total, m.source_id IS NOT NULL AS synced
FROM engineering.slo_measurements m
WHERE m.slo_id = engineering._slo_id('checkout-availability')
ORDER BY m.measured_at;

-- A hand-made row inside the window is taken over by the source; one
-- before the window is left alone.
SELECT engineering.record_slo_measurement('checkout-availability', '2024-06-30 12:00+00', 50, 50);
SELECT engineering.record_slo_measurement('checkout-availability', '2024-06-30 12:02+00', 1, 1);

-- Window 12:01 .. 12:08 (eight steps):
--   12:01  total 1000, good 999          -> 999 / 1000
--   12:02  total 1000.4, good 997.6      -> rounded: 998 / 1000
--   12:03  total 500, good 501           -> good > total: clamped to 500 / 500
--   12:04  total 200, no good sample     -> nothing was good: 0 / 200
--   12:05  no total                      -> no traffic: no row
--   12:06  total 0.3, good 0             -> rounds to no traffic: no row
--   12:07  total NaN                     -> skipped
--   12:08  total 100, good +Inf          -> skipped (the latest skipped step)
SELECT jsonb_pretty(engineering._prometheus_map(:id, engineering._slo_id('checkout-availability'),
    1719748860, 1719749280, 60,
    '{"1719748860": "1000", "1719748920": "1000.4", "1719748980": "500", "1719749040": "200",
      "1719749160": "0.3", "1719749220": "NaN", "1719749280": "100"}',
    '{"1719748860": "999", "1719748920": "997.6", "1719748980": "501",
      "1719749100": "5", "1719749160": "0", "1719749280": "+Inf"}'));
SELECT * FROM stored;

-- The same window again: nothing changes, nothing is counted.
SELECT engineering._prometheus_map(:id, engineering._slo_id('checkout-availability'),
    1719748860, 1719749280, 60,
    '{"1719748860": "1000", "1719748920": "1000.4", "1719748980": "500", "1719749040": "200",
      "1719749160": "0.3", "1719749220": "NaN", "1719749280": "100"}',
    '{"1719748860": "999", "1719748920": "997.6", "1719748980": "501",
      "1719749100": "5", "1719749160": "0", "1719749280": "+Inf"}') - 'last_skipped' - 'last_clamped' AS again;

-- Late data: re-read 12:03 .. 12:08.  12:03 now has 520 / 510, 12:04 lost
-- its samples (the server no longer reports it: the row goes), 12:07 has
-- become 40 / 40; negative counts are not counts (skipped).
SELECT engineering._prometheus_map(:id, engineering._slo_id('checkout-availability'),
    1719748980, 1719749280, 60,
    '{"1719748980": "520", "1719749220": "40", "1719749280": "-3"}',
    '{"1719748980": "510", "1719749220": "40", "1719749280": "1"}') AS late;
SELECT * FROM stored;

-- keys that are not instants of the window are ignored; bad arguments refused
SELECT engineering._prometheus_map(:id, engineering._slo_id('checkout-availability'),
    1719749280, 1719749280, 60, '{"1719748860": "7", "x": "1", "1719749290": "3"}', '{}') - 'last_skipped' AS ignored;
SELECT engineering._prometheus_map(:id, engineering._slo_id('checkout-availability'),
    1719748860, 1719749280, 60, '[]', '{}');
SELECT * FROM stored;
DELETE FROM engineering.slo_measurements;

------------------------------------------------------------------------------
-- Plan and ingest
------------------------------------------------------------------------------

-- The first plan covers the SLO's period (30 days) up to the last whole
-- minute, in windows of max_points steps: the first window starts at the
-- first minute that begins after now() - 30 days.  (now() is the same
-- within a transaction.)
BEGIN;
SELECT engineering._prometheus_plan(s) FROM engineering.sources s WHERE s.name = 'prom';
SELECT t.stream,
       (t.payload->>'from')::bigint = floor(extract(epoch FROM now() - interval '30 days') / 60)::bigint * 60 + 60 AS from_ok,
       (t.payload->>'to')::bigint = (t.payload->>'from')::bigint + 10999 * 60 AS to_ok,
       (t.payload->>'until')::bigint = floor(extract(epoch FROM now()) / 60)::bigint * 60 AS until_ok,
       t.payload->'step' AS step,
       t.url LIKE '/api/v1/query_range?query=sum%28increase%28http_requests_total%7Bjob%3D%22checkout%22%7D%5B1m%5D%29%29&start=%&step=60s' AS url_ok
FROM engineering.sync_tasks t;
DELETE FROM engineering.sync_tasks;
COMMIT;

-- With a watermark, the plan re-reads lookback (default 10 minutes: ten
-- steps ending at the watermark) and goes on to now.
BEGIN;
UPDATE engineering.sources SET cursor = jsonb_build_object('synced_to',
    engineering._iso8601(date_trunc('minute', now()) - interval '1 hour'))
WHERE name = 'prom';
SELECT engineering._prometheus_plan(s) FROM engineering.sources s WHERE s.name = 'prom';
SELECT to_timestamp((payload->>'from')::bigint) = date_trunc('minute', now()) - interval '1 hour 9 minutes' AS from_ok,
       payload->'to' = payload->'until' AS one_window
FROM engineering.sync_tasks;
DELETE FROM engineering.sync_tasks;
COMMIT;
-- a watermark at the last whole minute and no lookback: nothing to ask
SELECT engineering.alter_source('prom', config => config || '{"lookback": "0s"}')
FROM engineering.sources WHERE name = 'prom';
BEGIN;
UPDATE engineering.sources SET cursor = jsonb_build_object('synced_to', engineering._iso8601(date_trunc('minute', now())))
WHERE name = 'prom';
SELECT engineering._prometheus_plan(s) FROM engineering.sources s WHERE s.name = 'prom';
SELECT count(*) AS tasks FROM engineering.sync_tasks;
COMMIT;

-- Ingest, with hand-made tasks for two windows of 5 steps, 12:01 .. 12:05
-- and 12:06 .. 12:10.  The total response queues the good request of the
-- same window with the totals.
SELECT engineering.alter_source('prom', config => config || '{"max_points": 5}')
FROM engineering.sources WHERE name = 'prom';
SELECT cursor FROM engineering.sources WHERE name = 'prom';
SELECT engineering._enqueue(:id, 'total',
    engineering._prometheus_url('sum(increase(http_requests_total{job="checkout"}[1m]))', 1719748860, 1719749100, 60),
    '{"from": 1719748860, "to": 1719749100, "until": 1719749400, "step": 60}');
CREATE TEMP VIEW queue AS
SELECT id, stream, replace(url, '/api/v1/query_range?query=', '') AS url, payload FROM engineering.sync_tasks ORDER BY id;
CREATE FUNCTION pg_temp.ingest_first(body jsonb) RETURNS bigint LANGUAGE sql AS $$
    WITH t AS (DELETE FROM engineering.sync_tasks
               WHERE id = (SELECT min(id) FROM engineering.sync_tasks) RETURNING *)
    SELECT engineering._prometheus_ingest(s, t, 200, '{}', body)
    FROM engineering.sources s, t WHERE s.name = 'prom'
$$;
SELECT pg_temp.ingest_first('{"status": "success", "warnings": ["the total query hit a partial response"],
    "data": {"resultType": "matrix", "result": [
    {"metric": {"i": "a"}, "values": [[1719748860, "500"], [1719748920, "500"], [1719748980, "500"]]},
    {"metric": {"i": "b"}, "values": [[1719748860, "500"], [1719748920, "500"], [1719748980, "NaN"]]}]}}') AS rows;
SELECT * FROM queue;
-- the good response writes the window, advances synced_to and queues the
-- next window (12:06 .. 12:10)
SELECT pg_temp.ingest_first('{"status": "success", "data": {"resultType": "matrix", "result": [
    {"metric": {}, "values": [[1719748860, "1000"], [1719748920, "990"], [1719748980, "1000"]]}]}}') AS rows;
SELECT * FROM stored;
SELECT jsonb_pretty(cursor) FROM engineering.sources WHERE name = 'prom';
SELECT * FROM queue;
-- a window whose totals are empty has no traffic: it is done without a
-- good request; until is reached, so nothing more is queued
SELECT pg_temp.ingest_first('{"status": "success", "data": {"resultType": "matrix", "result": []}}') AS rows;
SELECT count(*) AS tasks FROM engineering.sync_tasks;
SELECT cursor->'synced_to' AS synced_to, cursor ? 'warnings' AS has_warnings FROM engineering.sources WHERE name = 'prom';
-- an error body fails the page (the engine keeps the task and records the message)
SELECT engineering._enqueue(:id, 'good', '/api/v1/query_range?query=x&start=0&end=0&step=60s',
    '{"from": 1719749460, "to": 1719749460, "until": 1719749460, "step": 60, "totals": {}}');
SELECT pg_temp.ingest_first('{"status": "error", "errorType": "execution", "error": "query timed out in expression evaluation"}');
SELECT count(*) AS tasks FROM engineering.sync_tasks;
SELECT pg_temp.ingest_first('{"status": "success", "data": {"resultType": "matrix", "result": []}}') AS rows;

-- The source's measurements keep it from being removed, unless purged.
-- A removed SLO stops the source at its next plan.
SELECT count(*) AS measurements FROM engineering.slo_measurements;
SELECT engineering.remove_source('prom');
SELECT engineering.remove_source('prom', purge => true);
SELECT count(*) AS measurements FROM engineering.slo_measurements;
SELECT engineering.add_source('prom', 'prometheus', 'http://127.0.0.1:9/prometheus',
    '{"slo": "checkout-availability", "good_query": "a", "total_query": "b", "step": 60}') IS NOT NULL AS added;
-- a config changed behind add_source()'s back is refused when planning
UPDATE engineering.sources SET config = config - 'step' WHERE name = 'prom';
SELECT engineering._prometheus_plan(s) FROM engineering.sources s WHERE s.name = 'prom';
DELETE FROM engineering.slos;
SELECT engineering._prometheus_plan(s) FROM engineering.sources s WHERE s.name = 'prom';
