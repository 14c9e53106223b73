-- Parallel aggregation of every aggregate: the plans have a Partial
-- Aggregate, and the results (including the sketch's bytes) equal the
-- serial ones, also when a worker or a group sees no rows.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET search_path = engineering, public;

-- has_partial_aggregate(query): does the plan aggregate partially in workers?
CREATE FUNCTION pg_temp.has_partial_aggregate(query text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        IF line ~ 'Partial (Hash|Group)?Aggregate' THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END $$;

-- Parallel workers cannot read temporary tables, so these are real ones.
-- Services come in contiguous runs of rows, so that with a parallel scan
-- some groups are seen by one process only.
SELECT setseed(0.5);
CREATE TABLE agg_parallel_events AS
SELECT g AS id,
       'svc-' || (g / 4000) AS service,
       started_at,
       CASE WHEN g % 89 = 0 THEN NULL
            ELSE started_at + (random() ^ 3) * interval '5 days' END AS ended_at,
       (random() * 1000)::bigint AS total,
       random() < 0.995 AS ok
FROM (SELECT g, timestamptz '2024-01-01' + g * interval '1 minute' + random() * interval '3 hours' AS started_at
      FROM generate_series(1, 30000) g) s;
ALTER TABLE agg_parallel_events ADD COLUMN good bigint;
UPDATE agg_parallel_events SET good = total - (random() * 0.01 * total)::bigint;
ANALYZE agg_parallel_events;

CREATE TEMP VIEW all_aggregates AS
SELECT service,
       lead_time(started_at, ended_at) AS median,
       lead_time(started_at, ended_at, 0.9) AS p90,
       time_to_restore(started_at, ended_at, 0.25) AS p25,
       mttr(started_at, ended_at) AS mttr,
       downtime(started_at, ended_at) AS downtime,
       burn_rate(good, total, 0.999) AS burn_counts,
       error_budget_remaining(good, total, 0.999) AS remaining,
       burn_rate(ok, 0.99) AS burn_events,
       duration_sketch(started_at, ended_at)::bytea AS sketch
FROM agg_parallel_events
GROUP BY service;

-- serial reference
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE serial_results AS SELECT * FROM all_aggregates;
CREATE TEMP TABLE serial_total AS
SELECT lead_time(started_at, ended_at) AS median, mttr(started_at, ended_at) AS mttr,
       downtime(started_at, ended_at) AS downtime, burn_rate(good, total, 0.999) AS burn,
       duration_sketch(started_at, ended_at)::bytea AS sketch
FROM agg_parallel_events;

-- parallel
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;

EXPLAIN (COSTS OFF)
SELECT lead_time(started_at, ended_at), mttr(started_at, ended_at), downtime(started_at, ended_at),
       burn_rate(good, total, 0.999), duration_sketch(started_at, ended_at)
FROM agg_parallel_events;

SELECT pg_temp.has_partial_aggregate('SELECT * FROM all_aggregates') AS grouped_is_partial;

SELECT p.median = s.median AND p.mttr = s.mttr AND p.downtime = s.downtime
       AND p.burn = s.burn AND p.sketch = s.sketch AS total_equals_serial
FROM (SELECT lead_time(started_at, ended_at) AS median, mttr(started_at, ended_at) AS mttr,
             downtime(started_at, ended_at) AS downtime, burn_rate(good, total, 0.999) AS burn,
             duration_sketch(started_at, ended_at)::bytea AS sketch
      FROM agg_parallel_events) p, serial_total s;

-- grouped, by hashing and by sorting
SELECT 'hashed' AS strategy, count(*) AS groups,
       count(*) FILTER (WHERE (p.*)::text = (s.*)::text) AS equal_to_serial
FROM all_aggregates p JOIN serial_results s USING (service);
SET enable_hashagg = off;
SELECT pg_temp.has_partial_aggregate('SELECT * FROM all_aggregates') AS sorted_is_partial;
SELECT 'sorted' AS strategy, count(*) AS groups,
       count(*) FILTER (WHERE (p.*)::text = (s.*)::text) AS equal_to_serial
FROM all_aggregates p JOIN serial_results s USING (service);
RESET enable_hashagg;

-- No rows at all, in parallel: every aggregate is NULL.  (The planner
-- expects a third of the rows to have ended_at < started_at; none has.)
SELECT pg_temp.has_partial_aggregate($$SELECT mttr(started_at, ended_at) FROM agg_parallel_events WHERE ended_at < started_at$$) AS empty_is_partial;
SELECT lead_time(started_at, ended_at), mttr(started_at, ended_at), downtime(started_at, ended_at),
       burn_rate(good, total, 0.999), burn_rate(ok, 0.99), duration_sketch(started_at, ended_at)
FROM agg_parallel_events WHERE ended_at < started_at;

-- Only the first block has matching rows: the process that scans it sends
-- a partial state, the others send empty ones (NULL or the INITCOND).
CREATE TEMP VIEW first_rows_only AS
SELECT lead_time(started_at, ended_at) AS median,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ended_at - started_at) AS reference,
       extract(epoch FROM mttr(started_at, ended_at)) * 1000000 AS mttr_us,
       round(avg(extract(epoch FROM ended_at - started_at) * 1000000)) AS avg_us,
       downtime(started_at, ended_at) AS downtime,
       sample_count(duration_sketch(started_at, ended_at)) AS sketch_count,
       count(ended_at - started_at) AS durations,
       burn_rate(good, total, 0.999) AS burn,
       (sum(total) - sum(good))::numeric(40, 30) / sum(total) / 0.001 AS exact_burn
FROM agg_parallel_events WHERE id <= 3 OR ended_at < started_at;
SELECT pg_temp.has_partial_aggregate($$SELECT lead_time(started_at, ended_at), mttr(started_at, ended_at),
       downtime(started_at, ended_at), duration_sketch(started_at, ended_at), burn_rate(good, total, 0.999)
       FROM agg_parallel_events WHERE id <= 3 OR ended_at < started_at$$) AS first_rows_is_partial;
SELECT median = reference AS lead_time_ok, mttr_us = avg_us AS mttr_ok,
       downtime IS NOT NULL AS downtime_ok, sketch_count = durations AS sketch_ok,
       burn = exact_burn::float8 AS burn_ok
FROM first_rows_only;

-- rollup of stored sketches in parallel equals the sketch of all rows
CREATE TABLE agg_parallel_daily AS
SELECT date_trunc('day', started_at) AS day, duration_sketch(started_at, ended_at) AS sketch
FROM agg_parallel_events GROUP BY 1;
ANALYZE agg_parallel_daily;
SELECT pg_temp.has_partial_aggregate($$SELECT rollup(sketch) FROM agg_parallel_daily$$) AS rollup_is_partial;
SELECT rollup(sketch)::bytea = (SELECT sketch FROM serial_total) AS rollup_equals_whole
FROM agg_parallel_daily;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP VIEW all_aggregates, first_rows_only;
DROP TABLE agg_parallel_events, agg_parallel_daily;
