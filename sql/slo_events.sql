-- Alert transitions: _evaluate_slo_alerts() records a row (and sends a
-- notification) only when a rule starts or stops firing, so evaluating
-- again with nothing changed writes nothing.  Delivery of the notifications
-- to a listening session is tested in test/t/030_slo_notify.pl.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- checkout: 99.9%, 1,000 requests a minute for three days before 12:00 and
-- until 12:20; the ten minutes ending 12:01 .. 12:10 have 100 bad each.
INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('checkout-availability'), t,
       CASE WHEN t > '2024-06-30 12:00+00' AND t <= '2024-06-30 12:10+00' THEN 900 ELSE 1000 END, 1000
FROM generate_series(timestamptz '2024-06-27 12:01+00', '2024-06-30 12:20+00', '1 minute') t;

-- search: 99%, 100 requests a minute only since 11:00 (a young SLO, judged
-- on the events it has); the same ten minutes fail completely.
INSERT INTO engineering.slos (name, service, objective) VALUES ('search-availability', 'search', 0.99);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('search-availability'), t,
       CASE WHEN t > '2024-06-30 12:00+00' AND t <= '2024-06-30 12:10+00' THEN 0 ELSE 100 END, 100
FROM generate_series(timestamptz '2024-06-30 11:01+00', '2024-06-30 12:20+00', '1 minute') t;

CREATE TEMP VIEW events AS
SELECT e.id, s.name AS slo, r.name AS rule, e.state, e.evaluated_at,
       e.long_burn_rate, e.short_burn_rate, e.threshold
FROM engineering.slo_alert_events e
JOIN engineering.slos s ON s.id = e.slo_id
JOIN engineering.slo_alert_rules r ON r.id = e.rule_id
ORDER BY e.id;

-- 12:00, before the outage: nothing fires, nothing is recorded
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:00+00');
-- 12:05: checkout 5m = 500/5,000 -> BR 100, but 1h = 500/60,000 -> 8.33 is
-- below 14.4: nothing.  search's 1h (500/6,000/0.01 = 8.33) does not page
-- either, but its longer windows only hold its 65 minutes of history
-- (500 bad of 6,500: BR 7.69), above 6, 3 and 1, with 30m = 500/3,000/0.01
-- = 16.67 and 2h = 6h = 7.69: page-6h-30m, ticket-1d-2h and ticket-3d-6h
-- fire.  Three transitions.
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:05+00');
SELECT count(*) FROM engineering.slo_alert_events;

-- 12:10: 1h = 1,000/60,000/0.001 = 16.67 > 14.4 for checkout and
-- 1,000/6,000/0.01 = 16.67 for search, 5m = 100 for both: page-1h-5m fires
-- for each.  checkout's 6h window (1,000/360,000 -> 2.78) keeps its other
-- rules quiet.  Two transitions.
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:10+00');
SELECT * FROM events;
-- evaluating the same instant again, and a minute later while nothing has
-- changed (checkout 5m = 400/5,000 -> 80, 1h still 16.67): no new rows
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:10+00');
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:11+00');
SELECT count(*) FROM engineering.slo_alert_events;

-- what NOTIFY engineering_slo_alerts carried for the first transition
SELECT jsonb_pretty(engineering._slo_alert_payload(1)::jsonb);

-- switching a rule off while it fires resolves it (no burn rates: the rule
-- no longer applies)
UPDATE engineering.slo_alert_rules SET enabled = false WHERE name = 'ticket-3d-6h';
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:12+00');
SELECT * FROM events WHERE id > 5;

-- 12:15: the 5-minute windows (12:10, 12:15] are clean: both page-1h-5m
-- alerts resolve.  search's 30m (1,000/3,000 -> 33) and 6h (1,000/7,500 ->
-- 13.3) still exceed 6, and its 2h/1d still exceed 3: those keep firing.
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:15+00');
SELECT * FROM events WHERE id > 6;

-- switched back on, ticket-3d-6h fires again for search (13.2 > 1 in both
-- windows) but not for checkout (3d: 1,000/4,320,000 -> 0.23)
UPDATE engineering.slo_alert_rules SET enabled = true WHERE name = 'ticket-3d-6h';
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:16+00');
SELECT * FROM events WHERE id > 8;
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:16+00');

-- the last recorded state of each (SLO, rule) agrees with slo_alerts() at
-- the last evaluation
SELECT a.slo, a.rule, a.firing, coalesce(last.state = 'firing', false) AS recorded_firing
FROM engineering.slo_alerts('2024-06-30 12:16+00') a
LEFT JOIN LATERAL (
    SELECT e.state FROM events e WHERE e.slo = a.slo AND e.rule = a.rule ORDER BY e.id DESC LIMIT 1
) last ON true
ORDER BY 1, 2;

-- A rule of one's own (1% of the budget in 2 hours, confirmed over 10
-- minutes: threshold 0.01 x 720 / 2 = 3.6) fires for both SLOs at 12:17:
-- checkout 2h = 1,000/120,000/0.001 = 8.33, 10m = 300/10,000/0.001 = 30;
-- search 2h = 1,000/7,700/0.01 = 12.99, 10m = 300/1,000/0.01 = 30.
INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share)
VALUES ('ticket-2h-10m', 'ticket', '2 hours', '10 minutes', 0.01);
SELECT engineering._evaluate_slo_alerts('2024-06-30 12:17+00');
SELECT * FROM events WHERE id > 9;
-- a rule with alert history cannot be deleted (disable it instead)
DELETE FROM engineering.slo_alert_rules WHERE name = 'ticket-2h-10m';
-- deleting an SLO deletes its measurements and its alert history
DELETE FROM engineering.slos WHERE name = 'search-availability';
SELECT slo, count(*) FROM events GROUP BY slo ORDER BY slo;
SELECT count(*) FROM engineering.slo_measurements
WHERE slo_id NOT IN (SELECT id FROM engineering.slos);

-- the no-argument form the background worker calls evaluates now(): the
-- data above is far in the past, so checkout's firing rule (ticket-2h-10m)
-- resolves
SELECT engineering._evaluate_slo_alerts();
SELECT slo, rule, state, long_burn_rate, short_burn_rate FROM events WHERE id > 11;
SELECT engineering._evaluate_slo_alerts();
