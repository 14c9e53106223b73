-- Exact duration aggregates: lead_time, time_to_restore, mttr, downtime.
-- Every result is compared with the plain-SQL way of computing it on
-- thousands of random rows (setseed), with "=" and as text.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET search_path = engineering, public;

------------------------------------------------------------------------------
-- A worked example on the event tables (values worked out by hand).
-- Incidents of service api: 10:00-10:10 (10 min), 10:05-10:25 (20 min),
-- 11:00-11:30 (30 min), 12:00-12:40 (40 min), and one still open.
--   time_to_restore:       median of 10, 20, 30, 40 min = 25 min
--   time_to_restore(0.9):  rank 0.9 * 3 = 2.7: 30 + 0.7 * (40 - 30) = 37 min
--   mttr:                  (10 + 20 + 30 + 40) / 4 = 25 min
--   downtime:              [10:00, 10:25) + 30 + 40 min = 95 min = 01:35:00
------------------------------------------------------------------------------
INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at) VALUES
    ('i1', 'api', 'resolved', '2024-03-01 10:00', '2024-03-01 10:10'),
    ('i2', 'api', 'resolved', '2024-03-01 10:05', '2024-03-01 10:25'),
    ('i3', 'api', 'resolved', '2024-03-01 11:00', '2024-03-01 11:30'),
    ('i4', 'api', 'resolved', '2024-03-01 12:00', '2024-03-01 12:40'),
    ('i5', 'api', 'open',     '2024-03-01 13:00', NULL);
SELECT service,
       time_to_restore(opened_at, resolved_at) AS median,
       time_to_restore(opened_at, resolved_at, 0.9) AS p90,
       mttr(opened_at, resolved_at),
       downtime(opened_at, resolved_at)
FROM engineering.incidents GROUP BY service;
DELETE FROM engineering.incidents;

------------------------------------------------------------------------------
-- lead_time against percentile_cont.  Durations mix days, whole seconds
-- (ties), a few whole hours (many ties, zeros) and sub-second microseconds;
-- some rows have a NULL timestamp.
------------------------------------------------------------------------------
SELECT setseed(0.17);
CREATE TEMP TABLE lt AS
SELECT g AS id,
       'svc-' || (g % 7) AS service,
       CASE WHEN g % 101 = 0 THEN NULL ELSE changed_at END AS changed_at,
       CASE WHEN g % 97 = 0 THEN NULL ELSE changed_at + d END AS deployed_at
FROM (SELECT g,
             timestamptz '2024-01-01 00:00:00+00' + random() * interval '365 days' AS changed_at,
             CASE g % 4
                 WHEN 0 THEN random() * interval '90 days'
                 WHEN 1 THEN (random() * 86400)::int * interval '1 second'
                 WHEN 2 THEN floor(random() * 5) * interval '1 hour'
                 ELSE random() * interval '1 second'
             END AS d
      FROM generate_series(1, 4000) g) s;
-- a service whose deployments all lack a time: NULL from both sides
INSERT INTO lt SELECT 5000 + g, 'svc-none', timestamptz '2024-01-01', NULL FROM generate_series(1, 3) g;

-- fractions: the ends, usual ones, tiny ones, fractions landing exactly on
-- a row (k / (n - 1)), and random ones
CREATE TEMP TABLE fractions AS
SELECT unnest(ARRAY[0, 1, 0.5, 0.25, 0.75, 0.9, 0.95, 0.99, 0.999, 0.001,
                    1e-12, 1 - 1e-12, 1 / 3.0, 2 / 3.0]::float8[]) AS fraction
UNION ALL
SELECT k::float8 / (n - 1)
FROM (SELECT count(deployed_at - changed_at) AS n FROM lt) c, unnest(ARRAY[1, 2, 17, 1000, 2500]) k
UNION ALL
SELECT random() FROM generate_series(1, 60);

SELECT count(*) AS fractions,
       count(*) FILTER (WHERE mine = theirs) AS equal,
       count(*) FILTER (WHERE mine::text = theirs::text) AS same_text
FROM (SELECT f.fraction,
             (SELECT lead_time(changed_at, deployed_at, f.fraction) FROM lt) AS mine,
             (SELECT percentile_cont(f.fraction) WITHIN GROUP (ORDER BY deployed_at - changed_at) FROM lt) AS theirs
      FROM fractions f) x;

-- the two-argument form is the median
SELECT lead_time(changed_at, deployed_at) = percentile_cont(0.5) WITHIN GROUP (ORDER BY deployed_at - changed_at) AS equal,
       lead_time(changed_at, deployed_at)::text = (percentile_cont(0.5) WITHIN GROUP (ORDER BY deployed_at - changed_at))::text AS same_text
FROM lt;

-- grouped by service, 20 fractions each (svc-none gives NULL on both sides)
SELECT count(*) AS groups,
       count(*) FILTER (WHERE mine IS NOT DISTINCT FROM theirs
                        AND mine::text IS NOT DISTINCT FROM theirs::text) AS same,
       count(*) FILTER (WHERE mine IS NULL) AS null_groups
FROM (SELECT service, f.fraction,
             lead_time(changed_at, deployed_at, f.fraction) AS mine,
             percentile_cont(f.fraction) WITHIN GROUP (ORDER BY deployed_at - changed_at) AS theirs
      FROM lt CROSS JOIN (SELECT fraction FROM fractions ORDER BY fraction LIMIT 20) f
      GROUP BY service, f.fraction) x;

-- as a window aggregate the final function runs again after more rows:
-- a running median equals percentile_cont over the same prefix
SELECT count(*) AS rows_checked,
       count(*) FILTER (WHERE running IS NOT DISTINCT FROM
                        (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY deployed_at - changed_at)
                         FROM lt l2 WHERE l2.id <= l1.id)) AS same
FROM (SELECT id, lead_time(changed_at, deployed_at) OVER (ORDER BY id) AS running
      FROM lt WHERE id <= 300) l1;

------------------------------------------------------------------------------
-- time_to_restore: the same statistic over incidents; open incidents
-- (NULL resolved_at) are skipped.
------------------------------------------------------------------------------
SELECT setseed(0.23);
CREATE TEMP TABLE inc AS
SELECT g AS id,
       'svc-' || (g % 5) AS service,
       opened_at,
       CASE WHEN random() < 0.05 THEN NULL
            ELSE opened_at + (random() ^ 4) * interval '3 days' END AS resolved_at
FROM (SELECT g, timestamptz '2024-01-01' + g * interval '7 minutes' + random() * interval '1 hour' AS opened_at
      FROM generate_series(1, 5000) g) s;

SELECT count(*) AS checks,
       count(*) FILTER (WHERE mine IS NOT DISTINCT FROM theirs
                        AND mine::text IS NOT DISTINCT FROM theirs::text) AS same
FROM (SELECT service, f.fraction,
             time_to_restore(opened_at, resolved_at, f.fraction) AS mine,
             percentile_cont(f.fraction) WITHIN GROUP (ORDER BY resolved_at - opened_at) AS theirs
      FROM inc CROSS JOIN fractions f
      GROUP BY GROUPING SETS ((service, f.fraction), (f.fraction))) x;

SELECT time_to_restore(opened_at, resolved_at)
       = percentile_cont(0.5) WITHIN GROUP (ORDER BY resolved_at - opened_at) AS median_equal,
       count(*) FILTER (WHERE resolved_at IS NULL) > 0 AS had_open_incidents
FROM inc;

------------------------------------------------------------------------------
-- mttr: the exact mean.  avg(interval) divides in floating point and may
-- differ by a microsecond; the exact reference is the numeric mean of the
-- microseconds, rounded half away from zero.
------------------------------------------------------------------------------
SELECT count(*) AS groups,
       count(*) FILTER (WHERE extract(epoch FROM mine) * 1000000 = exact_us) AS exact,
       count(*) FILTER (WHERE mine::text = justify_hours(make_interval(secs => exact_us / 1000000))::text) AS same_text,
       count(*) FILTER (WHERE abs(extract(epoch FROM mine - avg_interval)) <= 0.000001) AS within_1us_of_avg
FROM (SELECT service,
             mttr(opened_at, resolved_at) AS mine,
             avg(resolved_at - opened_at) AS avg_interval,
             round(avg(extract(epoch FROM resolved_at - opened_at) * 1000000)) AS exact_us
      FROM inc GROUP BY ROLLUP (service)) x;

-- lead-time data too (durations up to 90 days, sub-second ones)
SELECT extract(epoch FROM mttr(changed_at, deployed_at)) * 1000000
       = round(avg(extract(epoch FROM deployed_at - changed_at) * 1000000)) AS exact
FROM lt;

-- a mean that rounds: 1 us and 2 us average to 1.5 us, rounded up to 2 us
SELECT mttr(a, a + b * interval '1 microsecond')
FROM (VALUES (timestamptz '2024-01-01', 1), ('2024-01-01', 2)) v(a, b);

-- a mean beyond a day is shown as timestamptz subtraction shows it
SELECT mttr(a, b) FROM (VALUES (timestamptz '2024-01-01', timestamptz '2024-01-03 06:00')) v(a, b);

------------------------------------------------------------------------------
-- downtime against the usual gaps-and-islands query.  Outages overlap
-- often; some are zero-length, some still open (NULL end).  The rows are in
-- random order (the general path), then in time order (the fast path).
------------------------------------------------------------------------------
SELECT setseed(0.31);
CREATE TEMP TABLE outages AS
SELECT 'svc-' || (g % 4) AS service, started_at,
       CASE WHEN g % 53 = 0 THEN NULL
            WHEN g % 41 = 0 THEN started_at
            ELSE started_at + (random() ^ 2) * interval '2 days' END AS ended_at
FROM (SELECT g, timestamptz '2024-01-01' + random() * interval '60 days' AS started_at
      FROM generate_series(1, 3000) g) s;
-- a service with only zero-length outages: downtime 0, not NULL
INSERT INTO outages VALUES ('svc-blip', '2024-02-01', '2024-02-01'), ('svc-blip', '2024-02-02', '2024-02-02');
CREATE TEMP TABLE outages_in_order AS SELECT * FROM outages ORDER BY started_at;

CREATE TEMP VIEW islands AS
WITH spans AS (
    SELECT service, started_at, ended_at FROM outages
    WHERE started_at IS NOT NULL AND ended_at IS NOT NULL),
marked AS (
    SELECT *, max(ended_at) OVER (PARTITION BY service ORDER BY started_at, ended_at
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
    FROM spans),
numbered AS (
    SELECT *, count(*) FILTER (WHERE previous_end IS NULL OR started_at > previous_end)
                  OVER (PARTITION BY service ORDER BY started_at, ended_at ROWS UNBOUNDED PRECEDING) AS island
    FROM marked)
SELECT service, sum(island_end - island_start) AS downtime
FROM (SELECT service, island, min(started_at) AS island_start, max(ended_at) AS island_end
      FROM numbered GROUP BY service, island) i
GROUP BY service;

SELECT 'random order' AS input, count(*) AS services,
       count(*) FILTER (WHERE d.downtime = i.downtime) AS equal,
       count(*) FILTER (WHERE d.downtime::text = justify_hours(i.downtime)::text) AS same_text
FROM (SELECT service, downtime(started_at, ended_at) FROM outages GROUP BY service) d
JOIN islands i USING (service)
UNION ALL
SELECT 'time order', count(*),
       count(*) FILTER (WHERE d.downtime = i.downtime),
       count(*) FILTER (WHERE d.downtime::text = justify_hours(i.downtime)::text)
FROM (SELECT service, downtime(started_at, ended_at) FROM outages_in_order GROUP BY service) d
JOIN islands i USING (service);

SELECT downtime(started_at, ended_at) FROM outages WHERE service = 'svc-blip';

-- touching spans [a, b) and [b, c) make one outage; a span inside another adds nothing
SELECT downtime(s, e) FROM (VALUES
    (timestamptz '2024-01-01 00:00', timestamptz '2024-01-01 01:00'),
    ('2024-01-01 01:00', '2024-01-01 02:00'),
    ('2024-01-01 00:30', '2024-01-01 00:40'),
    ('2024-01-02 00:00', '2024-01-02 00:00:00.000001')) v(s, e);

------------------------------------------------------------------------------
-- NULLs and empty input: NULL rows are skipped; no rows gives NULL.
------------------------------------------------------------------------------
SELECT lead_time(a, b), lead_time(a, b, 0.5), time_to_restore(a, b), time_to_restore(a, b, 0.9),
       mttr(a, b), downtime(a, b)
FROM (SELECT timestamptz '2024-01-01' AS a, timestamptz '2024-01-02' AS b WHERE false) empty;
SELECT lead_time(a, b), lead_time(a, b, 0.5), mttr(a, b), downtime(a, b)
FROM (VALUES (NULL::timestamptz, timestamptz '2024-01-02'), ('2024-01-01', NULL)) v(a, b);
-- a NULL fraction skips the row as well
SELECT lead_time(a, b, f) FROM (VALUES (timestamptz '2024-01-01', timestamptz '2024-01-02', NULL::float8),
                                       ('2024-01-01', '2024-01-01 06:00', 0.5)) v(a, b, f);

------------------------------------------------------------------------------
-- Errors: a reversed row (naming both values and the aggregate's own
-- argument names), infinite timestamps, bad fractions, a fraction that
-- changes within a group.
------------------------------------------------------------------------------
SELECT regress.error_of($$SELECT engineering.lead_time(c, d) FROM (VALUES (timestamptz '2024-01-02 10:00', timestamptz '2024-01-01 09:00')) v(c, d)$$);
SELECT regress.error_of($$SELECT engineering.time_to_restore(o, r, 0.5) FROM (VALUES (timestamptz '2024-01-02', timestamptz '2024-01-01')) v(o, r)$$);
SELECT regress.error_of($$SELECT engineering.mttr(o, r) FROM (VALUES (timestamptz '2024-01-02', timestamptz '2024-01-01')) v(o, r)$$);
SELECT regress.error_of($$SELECT engineering.downtime(s, e) FROM (VALUES (timestamptz '2024-01-02', timestamptz '2024-01-01')) v(s, e)$$);
SELECT regress.error_of($$SELECT engineering.mttr(o, r) FROM (VALUES (timestamptz '2024-01-01', timestamptz 'infinity')) v(o, r)$$);
SELECT regress.error_of($$SELECT engineering.lead_time(c, d) FROM (VALUES (timestamptz '-infinity', timestamptz '2024-01-01')) v(c, d)$$);
SELECT regress.error_of($$SELECT engineering.downtime(s, e) FROM (VALUES (timestamptz '4713-01-01 BC', timestamptz '294275-01-01')) v(s, e)$$);
SELECT regress.error_of($$SELECT engineering.lead_time(now(), now(), 1.5)$$);
SELECT regress.error_of($$SELECT engineering.lead_time(now(), now(), -0.1)$$);
SELECT regress.error_of($$SELECT engineering.time_to_restore(now(), now(), 'NaN')$$);
SELECT regress.error_of($$SELECT engineering.lead_time(c, d, f) FROM (VALUES (timestamptz '2024-01-01', timestamptz '2024-01-02', 0.5), ('2024-01-01', '2024-01-03', 0.9)) v(c, d, f)$$);
-- support functions with an internal or working state refuse to run
-- outside an aggregate; those of a plain state type return a new state
SELECT regress.error_of($$SELECT engineering._duration_sketch_trans(NULL, now(), now())$$);
SELECT engineering._mttr_trans('count=1 sum_us=60000000', '2024-01-01', '2024-01-01 00:02');

------------------------------------------------------------------------------
-- mttr_state: text form round trip and validation.
------------------------------------------------------------------------------
SELECT 'count=3 sum_us=10'::mttr_state, ' count=0   sum_us=0 '::mttr_state;
SELECT 'count=9223372036854775807 sum_us=85070591730234615847396907784232501249'::mttr_state::text
       = 'count=9223372036854775807 sum_us=85070591730234615847396907784232501249' AS largest_round_trips;
SELECT regress.error_of($$SELECT 'count=-1 sum_us=0'::engineering.mttr_state$$);
SELECT regress.error_of($$SELECT 'count=0 sum_us=5'::engineering.mttr_state$$);
SELECT regress.error_of($$SELECT 'count=1 sum_us=9223372036854775808'::engineering.mttr_state$$);
SELECT regress.error_of($$SELECT 'count=1sum_us=1'::engineering.mttr_state$$);
SELECT regress.error_of($$SELECT 'count=1 sum_us=1 extra'::engineering.mttr_state$$);
SELECT regress.error_of($$SELECT 'count=99999999999999999999 sum_us=1'::engineering.mttr_state$$);
SELECT regress.error_of($$SELECT ''::engineering.mttr_state$$);
