-- burn_rate and error_budget_remaining: the SRE workbook example
-- (reference anchors-slo.md section 7) and random data against exact
-- numeric arithmetic.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET search_path = engineering, public;

------------------------------------------------------------------------------
-- The workbook example: objective 99.9%, 30 days of minutes before "now"
-- (2024-04-01 00:00), 1,000 requests a minute.  Every hour has 30 bad
-- requests (one every other minute) except the latest, which has 900:
-- 15 a minute in [now-60m, now-30m), 14 in [now-30m, now-5m), 20 in the last
-- 5 minutes, i.e. 450 in the last 30 minutes and 100 in the last 5.
------------------------------------------------------------------------------
CREATE TEMP TABLE slo_minutes AS
SELECT timestamptz '2024-04-01 00:00' - i * interval '1 minute' AS minute,
       1000::bigint AS total,
       1000 - CASE WHEN i <= 5 THEN 20
                   WHEN i <= 30 THEN 14
                   WHEN i <= 60 THEN 15
                   WHEN i % 2 = 0 THEN 1
                   ELSE 0 END::bigint AS good
FROM generate_series(1, 43200) i;

CREATE TEMP TABLE windows (label text, length interval, ord int);
INSERT INTO windows VALUES ('5 m', '5 minutes', 1), ('30 m', '30 minutes', 2), ('1 h', '1 hour', 3),
    ('2 h', '2 hours', 4), ('6 h', '6 hours', 5), ('1 d', '1 day', 6), ('3 d', '3 days', 7), ('30 d', '30 days', 8);

-- Workbook table: BR = bad / total / 0.001.
--   5 m: 100/5,000 = 20          30 m: 450/30,000 = 15     1 h: 900/60,000 = 15
--   2 h: 930/120,000 = 7.75      6 h: 1,050/360,000 = 35/12 = 2.91666...
--   1 d: 1,590/1,440,000 = 53/48 = 1.1041666...    3 d: 3,030/4,320,000 = 101/144 = 0.701388...
--  30 d: 22,470/43,200,000 = 749/1440 = 0.5201388..., remaining 1 - 749/1440 = 0.4798611...
-- "exact" compares with the exact ratio computed in numeric, then rounded
-- once; naive_float is the plain float8 expression, off in the last digits
-- because 1 - 0.999 is 0.0010000000000000009 in binary.
CREATE TEMP VIEW workbook AS
SELECT w.label, sum(m.total) AS total, sum(m.total - m.good) AS bad,
       burn_rate(m.good, m.total, 0.999) AS burn_rate,
       error_budget_remaining(m.good, m.total, 0.999) AS remaining,
       burn_rate(m.good, m.total, 0.999)
           = ((sum(m.total) - sum(m.good))::numeric(40, 30) / nullif(sum(m.total), 0) / 0.001)::float8
       AND error_budget_remaining(m.good, m.total, 0.999)
           = (1 - (sum(m.total) - sum(m.good))::numeric(40, 30) / nullif(sum(m.total), 0) / 0.001)::float8 AS exact,
       (1 - sum(m.good)::float8 / nullif(sum(m.total), 0)) / (1 - 0.999::float8) AS naive_float
FROM windows w
JOIN slo_minutes m ON m.minute >= timestamptz '2024-04-01 00:00' - w.length
GROUP BY w.label, w.ord
ORDER BY w.ord;
SELECT * FROM workbook;

-- The multiwindow alerts: page on 1 h AND 5 m > 14.4 (fires), page on
-- 6 h AND 30 m > 6, ticket on 1 d AND 2 h > 3, ticket on 3 d AND 6 h > 1
-- (none of those fire).
SELECT (SELECT burn_rate FROM workbook WHERE label = '1 h') > 14.4
           AND (SELECT burn_rate FROM workbook WHERE label = '5 m') > 14.4 AS page_fast,
       (SELECT burn_rate FROM workbook WHERE label = '6 h') > 6
           AND (SELECT burn_rate FROM workbook WHERE label = '30 m') > 6 AS page_slow,
       (SELECT burn_rate FROM workbook WHERE label = '1 d') > 3
           AND (SELECT burn_rate FROM workbook WHERE label = '2 h') > 3 AS ticket_fast,
       (SELECT burn_rate FROM workbook WHERE label = '3 d') > 1
           AND (SELECT burn_rate FROM workbook WHERE label = '6 h') > 1 AS ticket_slow;

-- Sub-case (a): no traffic in the last 5 minutes (rows with total = 0).
--   5 m: NULL, no error; 1 h: 800 / 55,000 / 0.001 = 14.5454...;
--   30 d remaining: 1 - 22,370 / 43,195 = 0.482116...
UPDATE slo_minutes SET total = 0, good = 0 WHERE minute >= timestamptz '2024-04-01 00:00' - interval '5 minutes';
SELECT * FROM workbook WHERE label IN ('5 m', '1 h', '30 d');
-- a NULL short window is not "exceeded": the fast page does not fire
SELECT coalesce((SELECT burn_rate FROM workbook WHERE label = '1 h') > 14.4
                AND (SELECT burn_rate FROM workbook WHERE label = '5 m') > 14.4, false) AS page_fast;

-- Sub-case (c): two 5-minute buckets, 5 bad of 10 and 0 bad of 990.  The
-- ratio of sums is 5 / 1,000 = 0.005, burn rate 5; the mean of the ratios
-- (0.5 + 0) / 2 = 0.25 would give 250.
SELECT burn_rate(good, total, 0.999),
       avg((total - good)::float8 / total) / 0.001 AS mean_of_ratios_is_wrong
FROM (VALUES (5::bigint, 10::bigint), (990, 990)) v(good, total);

-- Sub-case (b): an objective of 100% has no error budget.
SELECT regress.error_of($$SELECT engineering.burn_rate(5, 10, 1.0)$$);

-- Sub-case (d), timeslices: 10,073 good one-minute slices of 10,080 at
-- 99.95%: budget 5.04 slices, 7 bad: burn 7 / 5.04 = 1.3888..., remaining
-- -0.3888... (overspent, not clamped).
SELECT burn_rate(10073, 10080, 0.9995), error_budget_remaining(10073, 10080, 0.9995);

------------------------------------------------------------------------------
-- Random counts and events, several objectives, against numeric.
------------------------------------------------------------------------------
SELECT setseed(0.61);
CREATE TEMP TABLE slo_counts AS
SELECT 'slo-' || (g % 6) AS slo,
       (ARRAY[0.9, 0.99, 0.999, 0.9995, 0.99999, 0.95])[g % 6 + 1]::float8 AS objective,
       total, total - (random() * 0.02 * total)::bigint AS good
FROM (SELECT g, CASE WHEN g % 13 = 0 THEN 0 ELSE (random() * 100000)::bigint END AS total
      FROM generate_series(1, 6000) g) s;
INSERT INTO slo_counts VALUES ('slo-idle', 0.999, 0, 0), ('slo-idle', 0.999, 0, 0);

SELECT count(*) AS groups,
       count(*) FILTER (WHERE total > 0) AS with_traffic,
       count(*) FILTER (WHERE burn = exact::float8) AS burn_exact,
       count(*) FILTER (WHERE remaining = (1 - exact)::float8) AS remaining_exact,
       count(*) FILTER (WHERE burn IS NULL AND remaining IS NULL AND total = 0) AS idle_is_null
FROM (SELECT slo, sum(total) AS total,
             burn_rate(good, total, objective) AS burn,
             error_budget_remaining(good, total, objective) AS remaining,
             (sum(total) - sum(good))::numeric(60, 30) / nullif(sum(total), 0) / (1 - objective::numeric) AS exact
      FROM slo_counts GROUP BY slo, objective) x;

CREATE TEMP TABLE slo_events AS
SELECT 'slo-' || (g % 3) AS slo, (ARRAY[0.99, 0.999, 0.9])[g % 3 + 1]::float8 AS objective,
       random() > 0.004 AS ok
FROM generate_series(1, 20000) g;
SELECT count(*) AS groups,
       count(*) FILTER (WHERE burn = exact::float8 AND remaining = (1 - exact)::float8) AS exact
FROM (SELECT slo, burn_rate(ok, objective) AS burn, error_budget_remaining(ok, objective) AS remaining,
             (count(*) FILTER (WHERE NOT ok))::numeric(60, 30) / count(*) / (1 - objective::numeric) AS exact
      FROM slo_events GROUP BY slo, objective) x;

------------------------------------------------------------------------------
-- NULLs, empty input, bad input.
------------------------------------------------------------------------------
SELECT burn_rate(good, total, 0.999), error_budget_remaining(good, total, 0.999), burn_rate(good > 0, 0.999)
FROM (SELECT 1::bigint AS good, 1::bigint AS total WHERE false) empty;
SELECT burn_rate(g, t, o), burn_rate(ok, o)
FROM (VALUES (NULL::bigint, 10::bigint, 0.99::float8, NULL::boolean), (9, NULL, 0.99, NULL), (9, 10, NULL, true)) v(g, t, o, ok);
SELECT burn_rate(g, t, 0.99) FROM (VALUES (NULL::bigint, 10::bigint), (9, 10)) v(g, t);

SELECT regress.error_of($$SELECT engineering.burn_rate(11, 10, 0.99)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(-1, 10, 0.99)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(0, -10, 0.99)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(1, 10, 0)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(1, 10, 99.9)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(true, 'NaN')$$);
SELECT regress.error_of($$SELECT engineering.error_budget_remaining(1, 10, -0.5)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(g, 10, o) FROM (VALUES (1::bigint, 0.99::float8), (1, 0.999)) v(g, o)$$);
SELECT regress.error_of($$SELECT engineering.burn_rate(t, t, 0.99) FROM (VALUES (9223372036854775807::bigint), (1)) v(t)$$);

------------------------------------------------------------------------------
-- burn_rate_state: text form round trip and validation.
------------------------------------------------------------------------------
SELECT 'objective=0.999 good=59100 total=60000'::burn_rate_state, 'good=0 total=0'::burn_rate_state,
       ' objective=0.9995  good=0 total=0 '::burn_rate_state;
SELECT regress.error_of($$SELECT 'objective=1 good=1 total=2'::engineering.burn_rate_state$$);
SELECT regress.error_of($$SELECT 'objective=nan good=1 total=2'::engineering.burn_rate_state$$);
SELECT regress.error_of($$SELECT 'objective=0.99 good=3 total=2'::engineering.burn_rate_state$$);
SELECT regress.error_of($$SELECT 'good=1 total=2'::engineering.burn_rate_state$$);
SELECT regress.error_of($$SELECT 'objective=0.99good=1 total=2'::engineering.burn_rate_state$$);
SELECT regress.error_of($$SELECT 'objective=0.99 total=2 good=1'::engineering.burn_rate_state$$);
