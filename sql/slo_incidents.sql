-- incident_availability(): good/total minutes from the union of a
-- service's incidents, for availability SLOs without request metrics.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- Range (10:00, 11:00]; minute i is (10:00 + i, 10:00 + i + 1].
INSERT INTO engineering.incidents (external_id, service, title, status, opened_at, resolved_at) VALUES
    -- minutes 0, 1, 2
    ('a', 'payments', 'starts mid-minute',              'resolved', '2024-06-30 10:00:30+00', '2024-06-30 10:03:00+00'),
    -- minutes 2 .. 5, overlapping the first: together 0 .. 5, six bad minutes
    ('b', 'payments', 'overlaps a',                     'resolved', '2024-06-30 10:02:00+00', '2024-06-30 10:05:10+00'),
    -- ends where the range starts: nothing
    ('c', 'payments', 'before the range',               'resolved', '2024-06-30 09:55:00+00', '2024-06-30 10:00:00+00'),
    -- zero length: nothing
    ('d', 'payments', 'instant',                        'resolved', '2024-06-30 10:20:00+00', '2024-06-30 10:20:00+00'),
    -- two seconds across a minute boundary: minutes 25 and 26
    ('e', 'payments', 'straddles 10:26',                'resolved', '2024-06-30 10:25:59+00', '2024-06-30 10:26:01+00'),
    -- minutes 29 (step ending 10:30) and 30 (step ending 10:40)
    ('f', 'payments', 'straddles a step',               'resolved', '2024-06-30 10:29:30+00', '2024-06-30 10:31:00+00'),
    -- minutes 41, 42, 43, with one incident inside another
    ('g', 'payments', 'outer',                          'resolved', '2024-06-30 10:41:00+00', '2024-06-30 10:44:00+00'),
    ('h', 'payments', 'inner',                          'resolved', '2024-06-30 10:42:00+00', '2024-06-30 10:43:00+00'),
    -- still open: down until the end of the range, minutes 50 .. 59
    ('i', 'payments', 'open',                           'open',     '2024-06-30 10:50:00+00', NULL),
    -- another service: ignored
    ('j', 'ledger',   'other service',                  'resolved', '2024-06-30 10:00:00+00', '2024-06-30 11:00:00+00');

-- Bad minutes per 10-minute step: (10:00,10:10] 6; (10:10,10:20] 0;
-- (10:20,10:30] 3 (25, 26, 29); (10:30,10:40] 1 (30); (10:40,10:50] 3;
-- (10:50,11:00] 10.
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '10 minutes');

-- the same from a brute-force scan of every minute against every incident
WITH minutes AS (
    SELECT i, timestamptz '2024-06-30 10:00+00' + i * interval '1 minute' AS slice_start
    FROM generate_series(0, 59) i
),
bad AS (
    SELECT m.i, EXISTS (
               SELECT 1 FROM engineering.incidents x
               WHERE x.service = 'payments'
                 AND x.opened_at < m.slice_start + interval '1 minute'
                 AND coalesce(x.resolved_at, '2024-06-30 11:00+00') > m.slice_start) AS down
    FROM minutes m
),
brute AS (
    SELECT timestamptz '2024-06-30 10:00+00' + (i / 10 + 1) * interval '10 minutes' AS measured_at,
           count(*) FILTER (WHERE NOT down) AS good, count(*) AS total
    FROM bad GROUP BY 1
)
SELECT count(*) AS steps, count(*) FILTER (WHERE a.good = b.good AND a.total = b.total) AS agree
FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '10 minutes') a
JOIN brute b USING (measured_at);

-- the default step is a minute; one hour in one step; a trailing partial
-- step is left out (10:50 .. 10:55 is not a whole step)
SELECT count(*) AS minutes, sum(good) AS good, sum(total) AS total
FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00');
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '1 hour');
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 10:55+00', '10 minutes');
-- a service without incidents is fully available
SELECT * FROM engineering.incident_availability('search', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '30 minutes');

-- bad arguments
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '30 seconds');
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '90 seconds');
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00', '1 month');
SELECT * FROM engineering.incident_availability('payments', '2024-06-30 11:00+00', '2024-06-30 10:00+00');
SELECT * FROM engineering.incident_availability(NULL, '2024-06-30 10:00+00', '2024-06-30 11:00+00');

-- feeding an availability SLO: 99% of minutes over a day, upserted so the
-- job can re-run over a window that overlaps the previous run
INSERT INTO engineering.slos (name, service, objective, period)
VALUES ('payments-uptime', 'payments', 0.99, '1 day');
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('payments-uptime'), a.measured_at, a.good, a.total
FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 10:30+00') a
ON CONFLICT (slo_id, measured_at) DO UPDATE SET good = excluded.good, total = excluded.total;
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('payments-uptime'), a.measured_at, a.good, a.total
FROM engineering.incident_availability('payments', '2024-06-30 10:00+00', '2024-06-30 11:00+00') a
ON CONFLICT (slo_id, measured_at) DO UPDATE SET good = excluded.good, total = excluded.total;
-- 23 bad minutes of 60: SLI 37/60, burn rate 23/60/0.01 = 38.33
SELECT total_events, bad_events, round(sli, 6) AS sli, round(burn_rate_period, 4) AS burn_rate
FROM engineering.slo_status('payments-uptime', '2024-06-30 11:00+00');
