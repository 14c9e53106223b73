-- duration_sketch: percentiles within 1% of percentile_cont on several
-- distributions, exact mean and count, exact merges (byte for byte),
-- bounded size, text and binary round trips.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET search_path = engineering, public;

-- microseconds of an interval, exactly (numeric)
CREATE FUNCTION pg_temp.us(i interval) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT extract(epoch FROM i) * 1000000 $$;

------------------------------------------------------------------------------
-- Distributions, 4,000 durations each, spread over 10 days of start times.
------------------------------------------------------------------------------
SELECT setseed(0.77);
CREATE TEMP TABLE durations (dist text, started_at timestamptz, ended_at timestamptz);
INSERT INTO durations
SELECT dist, started_at, started_at + d
FROM (SELECT timestamptz '2024-05-01' + random() * interval '10 days' AS started_at,
             random() AS u1, random() AS u2, g
      FROM generate_series(1, 4000) g) r,
LATERAL (VALUES
    -- uniform between 1 second and a day
    ('uniform', interval '1 second' + r.u1 * interval '1 day'),
    -- log-normal: median one hour, sigma 1.5 (Box-Muller)
    ('log-normal', exp(sqrt(-2 * ln(1 - r.u1)) * cos(2 * pi() * r.u2) * 1.5) * interval '1 hour'),
    -- heavy tail (Pareto, alpha 0.5): one minute / u^2, capped at 10 years
    ('heavy tail', least(interval '1 minute' / ((1 - r.u1) ^ 2), interval '3650 days')),
    -- all equal
    ('all equal', interval '37 minutes'),
    -- a third zeros, the rest up to an hour
    ('zeros', CASE WHEN r.u2 < 0.33 THEN interval '0' ELSE r.u1 * interval '1 hour' END),
    -- log-uniform from a microsecond to a year
    ('1 us to 1 year', (365.0 * 86400 * 1000000) ^ r.u1 * interval '1 microsecond'),
    -- microseconds: whole microseconds below 2 ms
    ('microseconds', floor(r.u1 * 2000) * interval '1 microsecond')
) AS v(dist, d);

CREATE TEMP TABLE sketches AS
SELECT dist, duration_sketch(started_at, ended_at) AS sketch FROM durations GROUP BY dist;

CREATE TEMP TABLE fractions AS
SELECT unnest(ARRAY[0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]::float8[]) AS fraction
UNION ALL SELECT random() FROM generate_series(1, 30);

-- Relative error against percentile_cont.  The guarantee is 1% of the
-- exact value; an interval has microsecond resolution, so below 10 ms the
-- rounding of both results to the microsecond can add 1 us (checked
-- separately on the microsecond distribution).
CREATE TEMP TABLE accuracy AS
SELECT s.dist, f.fraction,
       pg_temp.us(percentile(s.sketch, f.fraction)) AS estimate,
       (SELECT pg_temp.us(percentile_cont(f.fraction) WITHIN GROUP (ORDER BY ended_at - started_at))
        FROM durations d WHERE d.dist = s.dist) AS exact
FROM sketches s CROSS JOIN fractions f;

SELECT dist, count(*) AS checks,
       count(*) FILTER (WHERE abs(estimate - exact) <= 0.01 * exact) AS within_1_percent,
       count(*) FILTER (WHERE abs(estimate - exact) <= 0.01 * exact + 1) AS within_1_percent_plus_1us,
       max(abs(estimate - exact) / nullif(exact, 0)) <= 0.01 AS max_relative_error_at_most_1_percent
FROM accuracy GROUP BY dist ORDER BY dist;

-- the ends are exact: percentile 0 is the minimum, 1 the maximum
SELECT count(*) AS dists,
       count(*) FILTER (WHERE lo.estimate = lo.exact AND hi.estimate = hi.exact) AS exact_ends
FROM accuracy lo JOIN accuracy hi USING (dist)
WHERE lo.fraction = 0 AND hi.fraction = 1;

-- mean and sample_count are exact
SELECT count(*) AS dists,
       count(*) FILTER (WHERE pg_temp.us(mean(sketch)) = exact_mean) AS exact_mean,
       count(*) FILTER (WHERE sample_count(sketch) = n) AS exact_count
FROM sketches JOIN (SELECT dist, count(*) AS n,
                           round(avg(pg_temp.us(ended_at - started_at))) AS exact_mean
                    FROM durations GROUP BY dist) e USING (dist);

-- all equal: every percentile is the value itself
SELECT percentile(sketch, 0.5), percentile(sketch, 0.99), mean(sketch), sample_count(sketch)
FROM sketches WHERE dist = 'all equal';

------------------------------------------------------------------------------
-- Exact merges: daily sketches rolled up give the sketch of all rows, byte
-- for byte, in any order.  This is the two-step pattern: store a sketch per
-- day, roll them up per month.
------------------------------------------------------------------------------
CREATE TEMP TABLE daily AS
SELECT dist, date_trunc('day', started_at) AS day, duration_sketch(started_at, ended_at) AS sketch
FROM durations GROUP BY 1, 2;

SELECT count(*) AS dists,
       count(*) FILTER (WHERE r.merged::bytea = s.sketch::bytea) AS merged_equals_whole,
       count(*) FILTER (WHERE r.shuffled::bytea = s.sketch::bytea) AS any_order_equals_whole,
       count(*) FILTER (WHERE r.days > 1) AS had_several_days
FROM sketches s
JOIN (SELECT dist, rollup(sketch) AS merged, count(*) AS days,
             (SELECT rollup(d2.sketch ORDER BY random()) FROM daily d2 WHERE d2.dist = d1.dist) AS shuffled
      FROM daily d1 GROUP BY dist) r USING (dist);

-- per-dist sketches rolled up equal the sketch of the whole table
SELECT rollup(sketch)::bytea = (SELECT duration_sketch(started_at, ended_at)::bytea FROM durations) AS all_equal
FROM sketches;

-- rollup skips NULL sketches; no sketches give NULL
SELECT sample_count(rollup(s)) FROM (SELECT sketch AS s FROM sketches WHERE dist = 'zeros' UNION ALL SELECT NULL) x;
SELECT rollup(sketch) FROM sketches WHERE false;

-- As window aggregates: a running sketch counts every row so far, a moving
-- median over 10 rows stays within 1% of percentile_cont over the same
-- rows, and a running rollup of the daily sketches counts every day so far.
CREATE TEMP TABLE window_rows AS
SELECT row_number() OVER (ORDER BY started_at) AS n, started_at, ended_at
FROM durations WHERE dist = 'log-normal' ORDER BY started_at LIMIT 300;
SELECT count(*) AS rows_checked,
       count(*) FILTER (WHERE running_count = n) AS running_count_exact,
       count(*) FILTER (WHERE abs(pg_temp.us(moving_median) - pg_temp.us(exact))
                              <= 0.01 * pg_temp.us(exact)) AS moving_median_within_1_percent
FROM (SELECT n,
             sample_count(duration_sketch(started_at, ended_at) OVER (ORDER BY n)) AS running_count,
             percentile(duration_sketch(started_at, ended_at)
                        OVER (ORDER BY n ROWS BETWEEN 9 PRECEDING AND CURRENT ROW), 0.5) AS moving_median,
             (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w2.ended_at - w2.started_at)
              FROM window_rows w2 WHERE w2.n BETWEEN w1.n - 9 AND w1.n) AS exact
      FROM window_rows w1) x;
SELECT count(*) AS days,
       count(*) FILTER (WHERE running = expected) AS running_rollup_exact
FROM (SELECT sample_count(rollup(sketch) OVER (ORDER BY day)) AS running,
             sum(sample_count(sketch)) OVER (ORDER BY day) AS expected
      FROM daily WHERE dist = 'uniform') x;

------------------------------------------------------------------------------
-- Size: bounded whatever the sketch holds.
------------------------------------------------------------------------------
SELECT dist, octet_length(sketch::bytea) < 4096 AS under_4_kb FROM sketches ORDER BY dist;
-- a duration in every bucket from 1 us to 261,000 years (the middle of
-- bucket k is 1.02^(k - 0.5)), each 50 times
CREATE TEMP TABLE every_bucket AS
SELECT duration_sketch(timestamptz '2000-01-01',
                       timestamptz '2000-01-01' + round(1.02 ^ (k - 0.5)) * interval '1 microsecond') AS sketch
FROM generate_series(0, 2200) k, generate_series(1, 50) copies;
SELECT octet_length(sketch::bytea) BETWEEN 4096 AND 26000 AS bounded,
       sample_count(sketch), percentile(sketch, 0) AS min, percentile(sketch, 1) AS max
FROM every_bucket;

------------------------------------------------------------------------------
-- Text and binary forms round-trip; a small sketch, readable.
------------------------------------------------------------------------------
SELECT count(*) AS dists,
       count(*) FILTER (WHERE sketch::text::duration_sketch::bytea = sketch::bytea) AS text_round_trip,
       count(*) FILTER (WHERE sketch::bytea::duration_sketch::text = sketch::text) AS bytea_round_trip
FROM sketches;

-- 1 s, 2 s and 3 s: three buckets; zeros and NULLs
SELECT duration_sketch(s, s + d)
FROM (VALUES (timestamptz '2024-01-01', interval '1 second'), ('2024-01-01', '2 seconds'),
             ('2024-01-01', '3 seconds')) v(s, d);
SELECT duration_sketch(s, e), mean(duration_sketch(s, e)), percentile(duration_sketch(s, e), 0.5)
FROM (VALUES (timestamptz '2024-01-01', timestamptz '2024-01-01'), ('2024-01-02', '2024-01-02'),
             (NULL, '2024-01-02'), ('2024-01-02', NULL)) v(s, e);
SELECT duration_sketch(s, e) FROM (SELECT timestamptz '2024-01-01' AS s, timestamptz '2024-01-02' AS e WHERE false) x;
-- durations up to 57 us have a bucket of their own: exact
SELECT percentile(duration_sketch(s, s + d * interval '1 microsecond'), 0.5) AS median_of_1_to_57_us
FROM generate_series(1, 57) d, (SELECT timestamptz '2024-01-01' AS s) t;

-- bad fractions, a reversed row
SELECT regress.error_of($$SELECT engineering.percentile(sketch, 1.5) FROM sketches$$);
SELECT regress.error_of($$SELECT engineering.percentile(sketch, 'NaN') FROM sketches$$);
SELECT regress.error_of($$SELECT engineering.duration_sketch(timestamptz '2024-01-02', timestamptz '2024-01-01')$$);
