-- A small sample organisation for the load script: four services with
-- different delivery rhythms over the last 120 days.  Deterministic
-- (setseed), and relative to the current day.
SELECT setseed(0.42) \g /dev/null

CREATE TEMP TABLE demo_service (service text, deploys_per_day float8, commits_per_deploy int,
                                lead_hours float8, failure_share float8, restore_hours float8);
INSERT INTO demo_service VALUES
    ('checkout', 3.0, 3, 6, 0.04, 0.5),
    ('search',   1.0, 5, 30, 0.10, 3),
    ('billing',  0.3, 12, 120, 0.22, 20),
    ('mobile-api', 0.15, 20, 300, 0.35, 60);

-- deployments: Poisson-ish arrivals during working hours
INSERT INTO engineering.deployments (external_id, service, environment, commit_sha, started_at, finished_at, status)
SELECT format('%s-%s', s.service, n),
       s.service, 'production',
       substr(md5(s.service || n), 1, 40),
       t - interval '7 minutes', t,
       CASE WHEN random() < 0.05 THEN 'failure' ELSE 'success' END
FROM demo_service s,
     LATERAL generate_series(1, (120 * s.deploys_per_day)::int) AS n,
     LATERAL (SELECT date_trunc('day', now()) - interval '120 days'
                     + (n / s.deploys_per_day) * interval '1 day'
                     + (9 + 8 * random()) * interval '1 hour' AS t) AS at
WHERE t < now();

-- changes: each successful deployment ships a few commits made before it
INSERT INTO engineering.changes (external_id, service, commit_sha, authored_at, committed_at, author, title)
SELECT format('%s-c%s', d.external_id, k), d.service,
       substr(md5(d.external_id || k), 1, 40),
       c - interval '1 hour', c,
       (ARRAY['ada', 'grace', 'linus', 'margaret', 'ken'])[1 + floor(random() * 5)::int],
       format('change %s of %s', k, d.external_id)
FROM engineering.deployments d
JOIN demo_service s USING (service)
CROSS JOIN LATERAL generate_series(1, s.commits_per_deploy) AS k
CROSS JOIN LATERAL (SELECT d.finished_at
                           - (s.lead_hours * (0.2 + 1.6 * random())) * interval '1 hour' AS c) AS at
WHERE d.status = 'success';

INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
SELECT d.id, c.id, 'manual'
FROM engineering.changes c
JOIN engineering.deployments d ON c.external_id LIKE d.external_id || '-c%';

-- incidents: a share of deployments cause one, opened shortly after
INSERT INTO engineering.incidents (external_id, service, title, severity, status, opened_at,
                                   acknowledged_at, resolved_at, cause_deployment_id)
SELECT 'inc-' || d.external_id, d.service,
       format('%s degraded after deploy', d.service),
       CASE WHEN random() < 0.3 THEN 'high' ELSE 'low' END,
       CASE WHEN o + r < now() THEN 'resolved' ELSE 'open' END,
       o, o + interval '4 minutes',
       CASE WHEN o + r < now() THEN o + r END,
       d.id
FROM engineering.deployments d
JOIN demo_service s USING (service)
CROSS JOIN LATERAL (SELECT d.finished_at + (10 + 50 * random()) * interval '1 minute' AS o,
                           (s.restore_hours * (0.3 + 1.4 * random())) * interval '1 hour' AS r,
                           random() + 0 * d.id AS u) AS t
WHERE d.status = 'success' AND t.u < s.failure_share;
