-- SLOs, burn rates and error budgets: the SRE Workbook's worked example
-- (reference anchors-slo.md, section 7), its sub-cases and the edge-case
-- policies.  Measurements are generated; the only literal expectations are
-- the Workbook's published numbers, quoted in the comments.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

--
-- Definitions and their validation
--
INSERT INTO engineering.slos (name, service, objective, description)
VALUES ('checkout-availability', 'checkout', 0.999, 'Workbook example: 99.9% over a rolling 30 days');
-- the period defaults to 30 days; no minimum number of events
SELECT name, service, objective, period, min_events FROM engineering.slos;
-- (b) an objective of 100% leaves no budget: refused, with a hint
INSERT INTO engineering.slos (name, service, objective) VALUES ('perfect', 'checkout', 1.0);
INSERT INTO engineering.slos (name, service, objective) VALUES ('perfect', 'checkout', 100);
-- a percentage instead of a fraction
INSERT INTO engineering.slos (name, service, objective) VALUES ('pct', 'checkout', 99.9);
INSERT INTO engineering.slos (name, service, objective) VALUES ('zero', 'checkout', 0);
INSERT INTO engineering.slos (name, service, objective) VALUES ('neg', 'checkout', -0.5);
-- rolling periods are fixed lengths (a month is not), of at least an hour
INSERT INTO engineering.slos (name, service, objective, period) VALUES ('monthly', 'checkout', 0.99, '1 month');
INSERT INTO engineering.slos (name, service, objective, period) VALUES ('short', 'checkout', 0.99, '30 minutes');
INSERT INTO engineering.slos (name, service, objective, min_events) VALUES ('m', 'checkout', 0.99, 0);
INSERT INTO engineering.slos (name, service, objective) VALUES ('  ', 'checkout', 0.99);
INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.99);
-- counts: 0 <= good <= total
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total) VALUES (1, '2024-06-01', 11, 10);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total) VALUES (1, '2024-06-01', -1, 10);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total) VALUES (1, '2024-06-01', 0, -1);
SELECT engineering.record_slo_measurement('no-such-slo', '2024-06-01', 1, 1);
SELECT * FROM engineering.slo_status('no-such-slo', '2024-06-01');

--
-- The worked example.  Objective 99.9%, 30 days, B = 0.001.  Every hour has
-- 60,000 requests (1,000 a minute) and 30 bad, except the latest hour, which
-- has 900 bad: 100 in its last 5 minutes, 450 in its last 30.
--
-- One measurement per minute; minute k ends at T - k minutes, T = at =
-- 2024-06-30 12:00 UTC, so the window (T - w, T] holds minutes 0 .. w-1.
--   k in 0..4    : 20 bad each   -> 100 in the last 5 minutes
--   k in 5..29   : 14 bad each   -> 100 + 350 = 450 in the last 30 minutes
--   k in 30..59  : 15 bad each   -> 450 + 450 = 900 in the last hour
--   k >= 60      : 1 bad when k is even -> 30 in every later hour
--
CREATE TEMP TABLE workbook AS
SELECT k, timestamptz '2024-06-30 12:00+00' - k * interval '1 minute' AS measured_at,
       1000::bigint AS total,
       CASE WHEN k < 5 THEN 20 WHEN k < 30 THEN 14 WHEN k < 60 THEN 15
            ELSE (k % 2 = 0)::int END::bigint AS bad
FROM generate_series(0, 43199) AS k;

INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('checkout-availability'), measured_at, total - bad, total FROM workbook;
-- Two measurements on the edges that must not count: one ending exactly
-- 30 days before T (its interval is outside (T - 30 d, T]) and one after T.
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
VALUES (engineering._slo_id('checkout-availability'), '2024-05-31 12:00+00', 0, 1000000),
       (engineering._slo_id('checkout-availability'), '2024-06-30 12:01+00', 0, 1000000);

-- Workbook table: BR 5m = 20, 30m = 15, 1h = 15, 2h = 7.75, 6h = 35/12 =
-- 2.9167, 1d = 53/48 = 1.1042, 3d = 101/144 = 0.70139, 30d = 749/1440 =
-- 0.52014.  Budget: 43,200 bad allowed, 22,470 spent, consumed 0.520139,
-- remaining 0.479861 (20,730 events); at 900 bad an hour (BR 15) the
-- remainder lasts 20,730 / 900 h = 23.0333 h = 23:02:00.
\x on
SELECT * FROM engineering.slo_status('checkout-availability', '2024-06-30 12:00+00');
\x off

-- the same numbers from the Workbook's fractions, to its precision
SELECT burn_rate_5m = 20 AS br_5m, burn_rate_30m = 15 AS br_30m, burn_rate_1h = 15 AS br_1h,
       burn_rate_2h = 7.75 AS br_2h,
       round(burn_rate_6h, 12) = round(35 / 12.0, 12) AS br_6h,
       round(burn_rate_1d, 12) = round(53 / 48.0, 12) AS br_1d,
       round(burn_rate_3d, 12) = round(101 / 144.0, 12) AS br_3d,
       round(burn_rate_period, 12) = round(749 / 1440.0, 12) AS br_30d,
       round(budget_consumed, 6) AS consumed, round(budget_remaining, 6) AS remaining,
       budget_consumed + budget_remaining = 1 AS sums_to_one,
       budget_events = 0.001 * 43200000 AS allowed_43200,
       budget_remaining_events = 43200 - 22470 AS left_20730,
       time_to_exhaustion = interval '1 hour' * 20730 / 900 AS exhaustion_23h02m
FROM engineering.slo_status('checkout-availability', '2024-06-30 12:00+00');

-- and from plain SQL over the generated rows (ratio of sums per window)
SELECT w.label, trim_scale(sum(bad)::numeric / sum(total) / 0.001) AS plain_sql
FROM workbook
CROSS JOIN (VALUES ('5m', 5), ('30m', 30), ('1h', 60), ('2h', 120), ('6h', 360),
                   ('1d', 1440), ('3d', 4320), ('30d', 43200)) AS w (label, minutes)
WHERE k < w.minutes
GROUP BY w.label, w.minutes ORDER BY w.minutes;

-- Alerts (30-day thresholds 14.4, 6, 3, 1; fire when both windows are >):
-- page 1h/5m: 15 > 14.4 and 20 > 14.4 -> fires; page 6h/30m: 2.92 > 6 is
-- false; ticket 1d/2h: 1.10 > 3 false; ticket 3d/6h: 0.70 > 1 false.
SELECT * FROM engineering.slo_alerts('2024-06-30 12:00+00');
-- the two edge measurements have made their point
DELETE FROM engineering.slo_measurements
WHERE slo_id = engineering._slo_id('checkout-availability') AND total = 1000000;

--
-- (a) The last 5 minutes had no traffic (total = bad = 0): the 5 m burn
-- rate is NULL, not 0 and not an error, and the page does not fire although
-- the 1 h window alone (800 / 55,000 -> BR 14.545) would.  Remaining over
-- 30 days: 1 - 22,370 / 43,195 = 0.482116.
--
INSERT INTO engineering.slos (name, service, objective) VALUES ('quiet-minutes', 'checkout', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('quiet-minutes'), measured_at,
       CASE WHEN k < 5 THEN 0 ELSE total - bad END, CASE WHEN k < 5 THEN 0 ELSE total END
FROM workbook;
SELECT burn_rate_5m, round(burn_rate_1h, 6) AS br_1h,
       round(burn_rate_1h, 12) = round(800 / 55000.0 / 0.001, 12) AS br_1h_is_800_of_55000,
       round(budget_remaining, 6) AS remaining,
       round(budget_remaining, 12) = round(1 - 22370 / 43195.0, 12) AS remaining_is_1_minus_22370_of_43195
FROM engineering.slo_status('quiet-minutes', '2024-06-30 12:00+00');
SELECT rule, long_burn_rate, short_burn_rate, threshold, short_events, firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'quiet-minutes';

-- no traffic at all: every burn rate and the budget are unknown (NULL), and
-- nothing fires
INSERT INTO engineering.slos (name, service, objective) VALUES ('no-traffic', 'checkout', 0.999);
SELECT burn_rate_5m, burn_rate_period, sli, total_events, budget_events, budget_remaining, time_to_exhaustion
FROM engineering.slo_status('no-traffic', '2024-06-30 12:00+00');
SELECT count(*) AS rules, count(*) FILTER (WHERE firing) AS firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'no-traffic';

--
-- (c) Ratio of sums, not mean of ratios: two 5-minute buckets, 5 bad of 10
-- and 0 bad of 990.  Error ratio = 5 / 1000 = 0.005 (BR 5); the mean of the
-- two ratios would be (0.5 + 0) / 2 = 0.25 (BR 250).  The 5-minute window
-- (11:55, 12:00] holds only the 12:00 bucket (5 bad of 10: BR 500); the
-- 30-minute window holds both.
--
INSERT INTO engineering.slos (name, service, objective) VALUES ('uneven-traffic', 'checkout', 0.999);
SELECT engineering.record_slo_measurement('uneven-traffic', '2024-06-30 12:00+00', 5, 10);
SELECT engineering.record_slo_measurement('uneven-traffic', '2024-06-30 11:55+00', 990, 990);
SELECT burn_rate_5m, burn_rate_30m, sli FROM engineering.slo_status('uneven-traffic', '2024-06-30 12:00+00');
SELECT avg((total - good)::numeric / total) / 0.001 AS mean_of_ratios_would_say
FROM engineering.slo_measurements WHERE slo_id = engineering._slo_id('uneven-traffic');

--
-- Exactness: a burn rate equal to the threshold does not fire (>), and it
-- is exactly equal.  10,000 requests a minute with 144 bad at 99.9% is
-- 0.0144 / 0.001 = 14.4 in both page windows.
--
INSERT INTO engineering.slos (name, service, objective) VALUES ('at-threshold', 'checkout', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('at-threshold'), timestamptz '2024-06-30 12:00+00' - k * interval '1 minute', 10000 - 144, 10000
FROM generate_series(0, 59) k;
SELECT rule, long_burn_rate, short_burn_rate, threshold, firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'at-threshold' AND rule = 'page-1h-5m';
-- At 90%, 1 bad in 10 is a burn rate of exactly 1, the 3-day ticket's
-- threshold: it must not fire.  In float8, 1 - 0.9 = 0.09999999999999998 and
-- the same ratio would come out above 1 and fire.
INSERT INTO engineering.slos (name, service, objective) VALUES ('ninety', 'checkout', 0.9);
SELECT engineering.record_slo_measurement('ninety', '2024-06-30 12:00+00', 9, 10);
SELECT rule, long_burn_rate, short_burn_rate, threshold, firing,
       (1 / 10::float8) / (1 - 0.9::float8) > 1 AS float8_would_fire
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'ninety' AND rule = 'ticket-3d-6h';

--
-- Thresholds follow each SLO's period: budget_share x period / long window.
-- 28 days (672 h): 0.02 x 672 = 13.44, 0.05 x 672 / 6 = 5.6,
-- 0.10 x 672 / 24 = 2.8, 0.10 x 672 / 72 = 0.9333...
-- 7 days (168 h): 3.36, 1.4, 0.7, 0.2333...
-- 2 days: the 3-day rule does not apply (its window is longer than the period).
--
INSERT INTO engineering.slos (name, service, objective, period) VALUES
    ('four-weeks', 'search', 0.995, '28 days'),
    ('one-week', 'search', 0.995, '7 days'),
    ('two-days', 'search', 0.995, '2 days');
SELECT slo, rule, threshold,
       threshold = round(budget_share * period_hours / window_hours, 20) AS derived
FROM engineering.slo_alerts('2024-06-30 12:00+00') a
JOIN engineering.slo_alert_rules r ON r.name = a.rule
CROSS JOIN LATERAL (SELECT extract(epoch FROM s.period) / 3600 AS period_hours,
                           extract(epoch FROM r.long_window) / 3600 AS window_hours
                    FROM engineering.slos s WHERE s.name = a.slo) h
WHERE a.service = 'search'
ORDER BY slo, a.severity, r.long_window;

--
-- Minimum events per window: 2 requests a minute for an hour, 1 bad in
-- each of the last 5 minutes: BR 1h = 5 / 120 / 0.001 = 41.67 and BR 5m =
-- 5 / 10 / 0.001 = 500, both above 14.4.  Without a minimum the page fires;
-- with min_events = 100 the 5-minute window (10 events) is too thin.
--
INSERT INTO engineering.slos (name, service, objective) VALUES ('low-traffic', 'admin', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('low-traffic'), timestamptz '2024-06-30 12:00+00' - k * interval '1 minute',
       CASE WHEN k < 5 THEN 1 ELSE 2 END, 2
FROM generate_series(0, 59) k;
SELECT rule, long_burn_rate, short_burn_rate, long_events, short_events, suppressed, firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'low-traffic' AND rule = 'page-1h-5m';
UPDATE engineering.slos SET min_events = 100 WHERE name = 'low-traffic';
SELECT rule, long_burn_rate, short_burn_rate, long_events, short_events, suppressed, firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'low-traffic' AND rule = 'page-1h-5m';
UPDATE engineering.slos SET min_events = 10 WHERE name = 'low-traffic';
SELECT rule, long_events, short_events, suppressed, firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'low-traffic' AND rule = 'page-1h-5m';
-- 5 bad of 120 spends 5 / 0.12 = 41.67 budgets: the remaining budget is
-- negative (not clamped at 0), and there is no time left to exhaustion
SELECT burn_rate_period, budget_remaining, budget_remaining_events, time_to_exhaustion
FROM engineering.slo_status('low-traffic', '2024-06-30 12:00+00');

--
-- Late and corrected data: recording the same instant again replaces it.
--
INSERT INTO engineering.slos (name, service, objective) VALUES ('late-data', 'checkout', 0.99);
SELECT engineering.record_slo_measurement('late-data', '2024-06-30 11:59+00', 95, 100);
SELECT engineering.record_slo_measurement('late-data', '2024-06-30 12:00+00', 90, 100);
SELECT burn_rate_5m FROM engineering.slo_status('late-data', '2024-06-30 12:00+00');  -- 15/200/0.01 = 7.5
-- the 12:00 counts are corrected: 99 good of 100
SELECT engineering.record_slo_measurement('late-data', '2024-06-30 12:00+00', 99, 100);
SELECT measured_at, good, total FROM engineering.slo_measurements
WHERE slo_id = engineering._slo_id('late-data') ORDER BY measured_at;
SELECT burn_rate_5m FROM engineering.slo_status('late-data', '2024-06-30 12:00+00');  -- 6/200/0.01 = 3
-- a plain INSERT of an existing instant is refused; an ETL upserts instead
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
VALUES (engineering._slo_id('late-data'), '2024-06-30 12:00+00', 100, 100);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
VALUES (engineering._slo_id('late-data'), '2024-06-30 12:00+00', 100, 100)
ON CONFLICT (slo_id, measured_at) DO UPDATE SET good = excluded.good, total = excluded.total;
SELECT burn_rate_5m FROM engineering.slo_status('late-data', '2024-06-30 12:00+00');  -- 5/200/0.01 = 2.5

--
-- An SLO younger than its period is judged on the events it has: one day
-- of data, 1 bad in 1,000 each hour, gives a period burn rate of 1 (no
-- extrapolation, no assumed good traffic); first_measured_at shows how far
-- back the data goes.
--
INSERT INTO engineering.slos (name, service, objective) VALUES ('new-service', 'search', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('new-service'), timestamptz '2024-06-30 12:00+00' - k * interval '1 hour', 999, 1000
FROM generate_series(0, 23) k;
SELECT burn_rate_1d, burn_rate_3d, burn_rate_period, total_events, budget_remaining,
       time_to_exhaustion, first_measured_at
FROM engineering.slo_status('new-service', '2024-06-30 12:00+00');

--
-- Windows are fixed lengths: across a daylight saving change (New York,
-- 2024-03-10) the 3-day window still holds 72 hours of minutes.
--
SET timezone = 'America/New_York';
INSERT INTO engineering.slos (name, service, objective) VALUES ('dst', 'search', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('dst'), timestamptz '2024-03-11 12:00' - k * interval '1 minute', 1, 1
FROM generate_series(0, 6000) k;
SELECT rule, long_events, long_events = 72 * 60 AS three_days_of_minutes
FROM engineering.slo_alerts('2024-03-11 12:00') WHERE slo = 'dst' AND rule = 'ticket-3d-6h';
SET timezone = 'UTC';

--
-- The rules table
--
SELECT name, severity, long_window, short_window, budget_share, enabled, builtin
FROM engineering.slo_alert_rules ORDER BY id;
-- invalid rules
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share)
VALUES ('x', 'email', '1 hour', '5 minutes', 0.02);
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share)
VALUES ('x', 'page', '1 hour', '1 hour', 0.02);
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share)
VALUES ('x', 'page', '1 mon', '1 hour', 0.02);
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share)
VALUES ('x', 'page', '1 hour', '5 minutes', 2);
-- built-in rules are disabled, not deleted
DELETE FROM engineering.slo_alert_rules WHERE name = 'ticket-3d-6h';
UPDATE engineering.slo_alert_rules SET enabled = false WHERE name = 'ticket-3d-6h';
-- a rule of one's own: 5% of the budget in 12 hours (3x for 30 days)
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share)
VALUES ('ticket-12h-1h', 'ticket', '12 hours', '1 hour', 0.05);
SELECT rule, severity, threshold, firing
FROM engineering.slo_alerts('2024-06-30 12:00+00') WHERE slo = 'checkout-availability';
-- user rules can be deleted (while they have no alert history)
DELETE FROM engineering.slo_alert_rules WHERE name = 'ticket-12h-1h';
-- what a pg_dump restore does: the dumped built-in row lands on its
-- freshly seeded twin and updates it instead of duplicating it
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share, enabled, builtin)
VALUES ('ticket-3d-6h', 'ticket', '3 days', '6 hours', 0.12, false, true);
SELECT name, budget_share, enabled, builtin FROM engineering.slo_alert_rules ORDER BY id;
UPDATE engineering.slo_alert_rules SET enabled = true, budget_share = 0.10 WHERE name = 'ticket-3d-6h';
-- the tables holding users' data are dumped by pg_dump
SELECT c AS dumped FROM pg_extension, unnest(extconfig::regclass[]) AS c
WHERE extname = 'engineering_metrics' AND c::text LIKE 'engineering.slo%' ORDER BY c::text COLLATE "C";

--
-- History for charts: one pass over the measurements, and at every point
-- the same budget slo_status() computes at that instant (checked here at
-- all 25 hourly points of the last day of the example).
--
SELECT * FROM engineering.slo_history('checkout-availability', '2024-06-30 06:00+00', '2024-06-30 13:00+00', '1 hour');  -- nothing after 12:00
SELECT count(*) AS points,
       count(*) FILTER (WHERE h.burn_rate IS NOT DISTINCT FROM s.burn_rate_1h
                          AND h.budget_remaining IS NOT DISTINCT FROM s.budget_remaining) AS same_as_slo_status
FROM engineering.slo_history('checkout-availability', '2024-06-29 12:00+00', '2024-06-30 12:00+00', '1 hour') h
CROSS JOIN LATERAL engineering.slo_status('checkout-availability', h.at) s;
-- 5-minute points over the last hour: the last one is the 5 m burn rate
SELECT at, burn_rate FROM engineering.slo_history('checkout-availability', '2024-06-30 11:40+00', '2024-06-30 12:00+00', '5 minutes');
SELECT * FROM engineering.slo_history('checkout-availability', '2024-06-01', '2024-06-30', '7 days');
SELECT * FROM engineering.slo_history('checkout-availability', '2024-06-30', '2024-06-01', '1 day');
