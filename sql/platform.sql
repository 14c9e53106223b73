CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

-- Platform engineering analytics on a hand-made catalog and history whose
-- answers are worked out below by hand: golden-path adoption (now and over
-- time), DORA on and off the paths, service facts and scorecards.
--
-- The catalog (hand-made rows, source_id NULL), as of 2026-03-01:
--
--   component  type     lifecycle   template    annotation      first seen  removed
--   checkout   service  production  go-service                  2026-01-01
--   payments   service  production  go-service  acme.com/tier=1 2026-01-01
--   search     service  production                              2026-01-01
--   billing    service  production                              2026-02-15
--   oldsvc     service  production  go-service                  2026-01-01  2026-02-10
--   legacy     service  deprecated  go-service                  2026-01-01
--   web        website  production  go-service                  2026-01-01
--
-- Paths: go (template go-service), deploy (pipeline ^Deploy$), tier1
-- (annotation acme.com/tier=1).  Production deployments (all successful):
--
--   checkout  aaa1 2026-01-31 10:00 (a Deploy run built aaa1), aaa2 2026-02-20 10:00 (Deploy)
--   search    bbb1 2026-02-20 12:00 (Deploy)
--   payments  ccc1 2026-02-05 10:00 (Deploy), ccc2 2026-02-25 10:00 (only a CI run): an
--             incident caused by ccc1, 2026-02-05 11:00 to 13:00
--
-- At 2026-03-01 (pipeline window: 2026-01-30 to 2026-03-01):
--   eligible: checkout, payments, search, billing (oldsvc is removed, legacy
--   deprecated, web a website) = 4
--   go: checkout, payments = 2 (0.5); deploy: checkout (aaa1, aaa2 both by
--   Deploy), search = 2 (0.5), not payments (ccc2), not billing (no
--   deployment); tier1: payments = 1 (0.25); on any: 3 (0.75)
-- At 2026-02-01 (window 2026-01-02 to 2026-02-01):
--   eligible: checkout, payments, search, oldsvc = 4 (billing not yet seen)
--   go: checkout, payments, oldsvc = 3 (0.75); deploy: checkout (aaa1) = 1
--   (0.25); tier1: 1 (0.25); on any: checkout, payments, oldsvc = 3 (0.75)

INSERT INTO engineering.catalog_entities
    (entity_ref, kind, type, name, owner, lifecycle, service, template, annotations, first_seen_at, last_seen_at, removed_at)
VALUES
    ('component:default/checkout', 'component', 'service', 'checkout', 'group:default/storefront', 'production', 'checkout',
     'template:default/go-service', '{}', '2026-01-01', '2026-03-01', NULL),
    ('component:default/payments', 'component', 'service', 'payments', 'group:default/payments', 'production', 'payments',
     'template:default/go-service', '{"acme.com/tier": "1"}', '2026-01-01', '2026-03-01', NULL),
    ('component:default/search', 'component', 'service', 'search', 'user:default/ann', 'production', 'search',
     NULL, '{}', '2026-01-01', '2026-03-01', NULL),
    ('component:default/billing', 'component', 'service', 'billing', NULL, 'production', 'billing',
     NULL, '{}', '2026-02-15', '2026-03-01', NULL),
    ('component:default/oldsvc', 'component', 'service', 'oldsvc', 'group:default/payments', 'production', 'oldsvc',
     'template:default/go-service', '{}', '2026-01-01', '2026-02-09', '2026-02-10'),
    ('component:default/legacy', 'component', 'service', 'legacy', 'group:default/payments', 'deprecated', 'legacy',
     'template:default/go-service', '{}', '2026-01-01', '2026-03-01', NULL),
    ('component:default/web', 'component', 'website', 'web', 'group:default/storefront', 'production', 'web',
     'template:default/go-service', '{}', '2026-01-01', '2026-03-01', NULL),
    ('user:default/ann', 'user', NULL, 'ann', NULL, NULL, NULL, NULL, '{}', '2026-01-01', '2026-03-01', NULL);
UPDATE engineering.catalog_entities SET spec = '{"memberOf": ["discovery"]}' WHERE entity_ref = 'user:default/ann';
-- a component without a type is no service (not eligible); hand-made rows
-- follow the connector's conventions (lower-case kind, ref from the parts)
INSERT INTO engineering.catalog_entities (entity_ref, kind, name, service, first_seen_at, last_seen_at)
VALUES ('component:default/untyped', 'component', 'untyped', 'untyped', '2026-01-01', '2026-03-01');
INSERT INTO engineering.catalog_entities (entity_ref, kind, name) VALUES ('component:default/x', 'Component', 'x');
INSERT INTO engineering.catalog_entities (entity_ref, kind, name) VALUES ('component:default/x', 'component', 'y');

INSERT INTO engineering.deployments (external_id, service, environment, commit_sha, started_at, finished_at, status) VALUES
    ('d-aaa1', 'checkout', 'production', 'aaaaaaa1', '2026-01-31 09:50+00', '2026-01-31 10:00+00', 'success'),
    ('d-aaa2', 'checkout', 'production', 'aaaaaaa2', '2026-02-20 09:50+00', '2026-02-20 10:00+00', 'success'),
    ('d-bbb1', 'search', 'production', 'bbbbbbb1', '2026-02-20 11:50+00', '2026-02-20 12:00+00', 'success'),
    ('d-ccc1', 'payments', 'production', 'ccccccc1', '2026-02-05 09:50+00', '2026-02-05 10:00+00', 'success'),
    ('d-ccc2', 'payments', 'production', 'ccccccc2', '2026-02-25 09:50+00', '2026-02-25 10:00+00', 'success'),
    -- staging does not count for pipeline paths
    ('d-bil0', 'billing', 'staging', 'ddddddd1', '2026-02-26 09:50+00', '2026-02-26 10:00+00', 'success');
INSERT INTO engineering.pipeline_runs (external_id, service, pipeline, branch, commit_sha, status, started_at, finished_at) VALUES
    ('r1', 'checkout', 'Deploy', 'main', 'aaaaaaa1', 'success', '2026-01-31 09:40+00', '2026-01-31 09:50+00'),
    ('r2', 'checkout', 'Deploy', 'main', 'aaaaaaa2', 'success', '2026-02-20 09:40+00', '2026-02-20 09:50+00'),
    ('r3', 'search', 'Deploy', 'main', 'bbbbbbb1', 'success', '2026-02-20 11:40+00', '2026-02-20 11:50+00'),
    ('r4', 'payments', 'Deploy', 'main', 'ccccccc1', 'success', '2026-02-05 09:40+00', '2026-02-05 09:50+00'),
    ('r5', 'payments', 'CI', 'main', 'ccccccc2', 'failure', '2026-02-25 09:00+00', '2026-02-25 09:10+00'),
    ('r6', 'payments', 'CI', 'main', 'ccccccc2', 'success', '2026-02-25 09:20+00', '2026-02-25 09:30+00'),
    ('r7', 'billing', 'Deploy', 'main', 'ddddddd1', 'success', '2026-02-26 09:40+00', '2026-02-26 09:50+00');
INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at, cause_deployment_id)
SELECT 'i-1', 'payments', 'resolved', '2026-02-05 11:00+00', '2026-02-05 13:00+00', id
FROM engineering.deployments WHERE external_id = 'd-ccc1';

------------------------------------------------------------------------------
-- Golden paths: written by admins, patterns checked
------------------------------------------------------------------------------

INSERT INTO engineering.golden_paths (name, kind, pattern, description) VALUES
    ('go', 'template', 'go-service', 'the Go service template'),
    ('deploy', 'pipeline', '^Deploy$', 'the shared deploy workflow'),
    ('tier1', 'annotation', 'acme.com/tier=1', 'tier-1 services');
INSERT INTO engineering.golden_paths VALUES ('bad', 'pipeline', 'Deploy(', NULL);
INSERT INTO engineering.golden_paths VALUES ('bad', 'annotation', 'acme.com/tier', NULL);
INSERT INTO engineering.golden_paths VALUES ('bad', 'template', 'template:a/b/c', NULL);
INSERT INTO engineering.golden_paths VALUES ('bad', 'script', 'x', NULL);

------------------------------------------------------------------------------
-- Services of the catalog, and who is on which path
------------------------------------------------------------------------------

SELECT service, type, lifecycle, owner, team, template, eligible
FROM engineering.catalog_services('2026-03-01') ORDER BY service;
SELECT * FROM engineering.golden_path_services('2026-03-01');
SELECT * FROM engineering.golden_path_services('2026-02-01');

------------------------------------------------------------------------------
-- Adoption: the figures worked out in the header
------------------------------------------------------------------------------

SELECT * FROM engineering.golden_path_adoption('2026-03-01');
SELECT * FROM engineering.golden_path_adoption('2026-02-01');
-- before anything was in the catalog: nothing eligible, rates NULL
SELECT * FROM engineering.golden_path_adoption('2025-12-01');
SELECT at, golden_path, adopted, eligible, adoption_rate
FROM engineering.golden_path_adoption_history('2026-02-01', '2026-03-01', '28 days');
-- the history at each step is golden_path_adoption() at that time
SELECT count(*) AS steps_differing
FROM (SELECT h.* FROM engineering.golden_path_adoption_history('2026-01-01', '2026-02-26', '1 week') h
      EXCEPT
      SELECT t, a.* FROM generate_series('2026-01-01'::timestamptz, '2026-02-26', '1 week') t,
                         engineering.golden_path_adoption(t) a) d;
-- the last point is the end of the window, even off the step
SELECT DISTINCT at FROM engineering.golden_path_adoption_history('2026-02-01', '2026-03-01', '20 days') ORDER BY 1;
SELECT * FROM engineering.golden_path_adoption_history('2026-03-01', '2026-02-01');
SELECT * FROM engineering.golden_path_adoption_history('2026-02-01', '2026-03-01', '0 days');
SELECT * FROM engineering.golden_path_adoption_history('2026-02-01', 'infinity');
SELECT count(*) FROM engineering.golden_path_adoption_history('2000-01-01', '2026-03-01', '1 hour');

-- an admin changes what counts: websites are services too
UPDATE engineering.platform_settings SET eligible_types = '{service,website}';
SELECT golden_path, adopted, eligible, adoption_rate FROM engineering.golden_path_adoption('2026-03-01');
UPDATE engineering.platform_settings SET eligible_types = '{service}';
UPDATE engineering.platform_settings SET pipeline_window = '0 days';

------------------------------------------------------------------------------
-- Do golden paths pay off?  Window [2026-02-01, 2026-03-01), membership at
-- its end: go {checkout, payments}: aaa2, ccc1, ccc2 = 3 deployments, one
-- failed (ccc1): 1/3; deploy {checkout, search}: aaa2, bbb1 = 2, none
-- failed; tier1 {payments}: 2, 1/2; on any path {checkout, payments,
-- search}: 4, 1/4; off every path {billing}: none (staging does not count)
------------------------------------------------------------------------------

SELECT golden_path, kind, on_path, services, deployments, change_failure_rate, time_to_restore
FROM engineering.dora_by_golden_path('2026-02-01', '2026-03-01');
-- a group of one service gets exactly dora()'s row for it
SELECT (SELECT row(g.deployments, g.deployment_days_per_week, g.deployment_frequency_level, g.lead_time, g.lead_time_level,
                   g.change_failure_rate, g.change_failure_rate_level, g.time_to_restore, g.time_to_restore_level,
                   g.failed_deployment_recovery_time, g.failed_deployment_recovery_time_level, g.rework_rate)::text
        FROM engineering.dora_by_golden_path('2026-02-01', '2026-03-01') g WHERE g.golden_path = 'tier1')
     = (SELECT row(d.deployments, d.deployment_days_per_week, d.deployment_frequency_level, d.lead_time, d.lead_time_level,
                   d.change_failure_rate, d.change_failure_rate_level, d.time_to_restore, d.time_to_restore_level,
                   d.failed_deployment_recovery_time, d.failed_deployment_recovery_time_level, d.rework_rate)::text
        FROM engineering.dora('2026-02-01', '2026-03-01', 'payments') d) AS same_as_dora;
SELECT * FROM engineering.dora_by_golden_path('2026-03-01', '2026-02-01');

------------------------------------------------------------------------------
-- Service facts at 2026-03-01 (90 days back: every deployment above)
------------------------------------------------------------------------------

SELECT service, in_catalog, owner, team, eligible, golden_paths, on_golden_path, slos, alerts_firing,
       deployments_90d, change_failure_rate, pipeline_runs_30d, pipeline_success_rate, flaky_rate,
       open_incidents, last_deployment_at, days_since_last_deployment
FROM engineering.service_facts_at('2026-03-01');

------------------------------------------------------------------------------
-- Scorecards
------------------------------------------------------------------------------

-- rules are checked when written: they must be boolean expressions over
-- service_facts, with no way to reach anything else
INSERT INTO engineering.scorecard_levels VALUES ('test', 'one', 1, NULL), ('test', 'two', 2, NULL), ('test', 'three', 3, NULL);
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'deployments_90d');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'no_such_column > 0');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'slos > ');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', '(SELECT true)');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'pg_sleep(1) IS NULL');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'true; DROP TABLE engineering.golden_paths');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'owner = E''\'' OR pg_sleep(1) IS NULL OR ''''');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'true -- comment');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', 'pg_catalog.now() IS NULL');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'one', 'r', '"owner" IS NULL');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression) VALUES ('test', 'nine', 'r', 'true');
-- a word inside a string constant is only text
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression, description) VALUES
    ('test', 'one', 'owned', 'owner IS NOT NULL AND owner <> ''select pg_sleep(1)''', 'has an owner'),
    ('test', 'two', 'deploys', 'deployments_90d >= 2', 'two deployments in 90 days'),
    ('test', 'two', 'on path', 'on_golden_path', NULL),
    -- fails at evaluation (a division by zero), for every service: an error, never a pass
    ('test', 'three', 'broken', 'deployments_90d / (deployments_90d - deployments_90d) > 0', NULL);

-- hand-worked at 2026-03-01:
--   checkout: owned, 2 deployments, on go and deploy        -> two (three has the broken rule)
--   payments: owned, 2 deployments, on go and tier1         -> two
--   search:   owned (by a user), 1 deployment               -> one
--   billing:  no owner                                      -> none
--   legacy, web: owned, no deployment                       -> one
--   untyped: no owner                                       -> none
SELECT service, level, passed, failed, errors FROM engineering.scorecards('2026-03-01') WHERE scorecard = 'test';

-- the shipped scorecard: bronze needs an owner, not deprecated, a
-- production deployment in 90 days; silver a path, an SLO, no page, no
-- incident open.  No service has an SLO, so none gets past bronze.
SELECT level, rank, description FROM engineering.scorecard_levels WHERE scorecard = 'production readiness' ORDER BY rank;
SELECT service, level, failed FROM engineering.scorecards('2026-03-01') WHERE scorecard = 'production readiness';
-- an SLO with a budget for checkout
INSERT INTO engineering.slos (name, service, objective, period) VALUES ('checkout-availability', 'checkout', 0.99, '30 days');
SELECT engineering.record_slo_measurement('checkout-availability', '2026-02-28 12:00+00', 995, 1000);
SELECT service, slos, worst_budget_remaining FROM engineering.service_facts_at('2026-03-01') WHERE service = 'checkout';
SELECT service, level, passed, failed FROM engineering.scorecards('2026-03-01')
WHERE scorecard = 'production readiness' AND service = 'checkout';

-- a rule that an upgrade or an admin left broken is an error, not a pass
ALTER TABLE engineering.scorecard_rules DISABLE TRIGGER scorecard_rules_check;
UPDATE engineering.scorecard_rules SET expression = 'owner IS NOT NULL AND vanished_column' WHERE rule = 'owned';
ALTER TABLE engineering.scorecard_rules ENABLE TRIGGER scorecard_rules_check;
SELECT service, level, passed, errors FROM engineering.scorecards('2026-03-01') WHERE scorecard = 'test' AND service = 'checkout';
SELECT * FROM engineering.scorecards('infinity');
