-- Data for the load script: a small sample organisation (deployments,
-- changes, incidents of four services over 120 days, test/load/sample.sql)
-- and 20 SLOs with a week of one-minute measurements each (201,600 rows),
-- so that the dashboard queries read realistic amounts.
\i test/load/sample.sql
SELECT setseed(0.9) \g /dev/null
INSERT INTO engineering.slos (name, service, objective, period)
SELECT 'load-slo-' || k, (ARRAY['checkout', 'search', 'billing', 'mobile-api'])[1 + k % 4],
       (ARRAY[0.99, 0.999, 0.9995, 0.9999])[1 + k % 4], interval '7 days'
FROM generate_series(1, 20) k;
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT s.id, m, total - (random() * total * (1 - s.objective) * 2)::bigint, total
FROM engineering.slos s,
     generate_series(date_trunc('minute', now()) - interval '7 days', date_trunc('minute', now()), interval '1 minute') m,
     LATERAL (SELECT (500 + random() * 1000)::bigint + 0 * extract(epoch FROM m)::bigint AS total) t;
ANALYZE;
