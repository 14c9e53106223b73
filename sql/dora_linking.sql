-- link_changes() and attribute_incidents(): hand-built timelines with the
-- expected links worked out in the comments.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE FUNCTION pg_temp.dep(text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT id FROM engineering.deployments WHERE source_id IS NULL AND external_id = $1 $$;
CREATE FUNCTION pg_temp.chg(text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT id FROM engineering.changes WHERE source_id IS NULL AND external_id = $1 $$;
-- the links, readable
CREATE VIEW pg_temp.links AS
SELECT d.service, d.environment, d.external_id AS deployment, c.external_id AS change, dc.linked_by
FROM engineering.deployment_changes dc
JOIN engineering.deployments d ON d.id = dc.deployment_id
JOIN engineering.changes c ON c.id = dc.change_id
ORDER BY d.service, d.environment, d.finished_at, c.committed_at;

--
-- shop: commits (sha = md5 of the name), all in March 2024 except c0
--   c0 2023-06-01 (old history)   c1 03-04 09:00   c2 03-04 11:00
--   c3 03-04 13:00                c4 03-05 08:00   c5 03-05 09:30
--   c6 03-06 10:00
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at) VALUES
    ('c0', 'shop', md5('c0'), '2023-06-01 00:00'),
    ('c1', 'shop', md5('c1'), '2024-03-04 09:00'),
    ('c2', 'shop', md5('c2'), '2024-03-04 11:00'),
    ('c3', 'shop', md5('c3'), '2024-03-04 13:00'),
    ('c4', 'shop', md5('c4'), '2024-03-05 08:00'),
    ('c5', 'shop', md5('c5'), '2024-03-05 09:30'),
    ('c6', 'shop', md5('c6'), '2024-03-06 10:00');
-- deployments and what each should ship (a deployment ships what was
-- committed after the highest head of the earlier deployments of its
-- environment, and up to its own head commit, or its finish when the head
-- is unknown; never anything from before the service's first recorded
-- deployment, S1 at 03-04 09:30):
--   S1 staging    03-04 09:30 head c1: c1 is older than S1 itself -> nothing
--   P1 production 03-04 10:00 head c1: same -> nothing (c0, c1: history)
--   S2 staging    03-04 14:00 head c3: (09:30, 13:00] -> c2, c3
--   P2 production 03-04 15:00 head c3: (09:30, 13:00] -> c2, c3
--   P3 production 03-05 09:00 failed -> nothing
--   P4 production 03-05 10:00 no sha: by time (13:00, 03-05 10:00] -> c4, c5
--   P5 production 03-05 12:00 head c2 (a rollback): below the high-water
--                 mark -> nothing
--   S3 staging    03-06 09:00 no sha: (03-04 13:00, 03-06 09:00] -> c4, c5
--   P6 production 03-06 11:00 head abbreviated to 7 digits of c6:
--                 (03-05 10:00, 03-06 10:00] -> c6 (c4, c5 not again)
INSERT INTO engineering.deployments (external_id, service, environment, commit_sha, finished_at, status) VALUES
    ('S1', 'shop', 'staging',    md5('c1'),         '2024-03-04 09:30', 'success'),
    ('P1', 'shop', 'production', md5('c1'),         '2024-03-04 10:00', 'success'),
    ('S2', 'shop', 'staging',    md5('c3'),         '2024-03-04 14:00', 'success'),
    ('P2', 'shop', 'production', md5('c3'),         '2024-03-04 15:00', 'success'),
    ('P3', 'shop', 'production', md5('c4'),         '2024-03-05 09:00', 'failure'),
    ('P4', 'shop', 'production', NULL,              '2024-03-05 10:00', 'success'),
    ('P5', 'shop', 'production', md5('c2'),         '2024-03-05 12:00', 'success'),
    ('S3', 'shop', 'staging',    NULL,              '2024-03-06 09:00', 'success'),
    ('P6', 'shop', 'production', left(md5('c6'), 7), '2024-03-06 11:00', 'success');

--
-- cart: a connector recorded what K1 shipped (k1, k2); K2 has no
-- recorded changes, and k4 was linked to it by hand.
--   k1 03-01 09:00  k2 03-01 12:00  k3 03-01 13:00  k4 03-01 14:00
--   K1 03-01 11:00 head k1 (connector links k1, k2: left alone)
--   K2 03-01 15:00 no sha: (k1 09:00, 15:00] would be k2, k3, k4, but k2
--      is on K1 by the connector and k4 is on K2 by hand -> k3 only
INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at) VALUES
    ('k1', 'cart', md5('k1'), '2024-03-01 09:00'),
    ('k2', 'cart', md5('k2'), '2024-03-01 12:00'),
    ('k3', 'cart', md5('k3'), '2024-03-01 13:00'),
    ('k4', 'cart', md5('k4'), '2024-03-01 14:00');
INSERT INTO engineering.deployments (external_id, service, commit_sha, started_at, finished_at, status) VALUES
    ('K0', 'cart', NULL,      '2024-03-01 08:00', NULL, 'running'),
    ('K1', 'cart', md5('k1'), NULL, '2024-03-01 11:00', 'success'),
    ('K2', 'cart', NULL,      NULL, '2024-03-01 15:00', 'success');
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by) VALUES
    (pg_temp.dep('K1'), pg_temp.chg('k1'), 'connector'),
    (pg_temp.dep('K1'), pg_temp.chg('k2'), 'connector'),
    (pg_temp.dep('K2'), pg_temp.chg('k4'), 'manual');
-- (K0, still running, started at 08:00: it is cart's first recorded
-- deployment, so k1 at 09:00 is not history)

-- 10 links are made: S2 (2), P2 (2), P4 (2), S3 (2), P6 (1) and K2 (1)
SELECT engineering.link_changes() AS links_made;
SELECT * FROM pg_temp.links;

-- idempotent: a second run makes nothing and changes nothing
SELECT engineering.link_changes() AS links_made;
SELECT count(*) AS links FROM engineering.deployment_changes;

-- P4 is re-synced as failed: its inferred links no longer hold.  c4 and c5
-- now ship with P6 (the next successful production deployment: its range
-- starts at P2's head, 03-04 13:00, the highest before it): 2 new links,
-- P4's 2 removed
UPDATE engineering.deployments SET status = 'failure' WHERE external_id = 'P4';
SELECT engineering.link_changes() AS links_made;
SELECT deployment, change FROM pg_temp.links WHERE environment = 'production';
UPDATE engineering.deployments SET status = 'success' WHERE external_id = 'P4';
SELECT engineering.link_changes() AS links_made;
SELECT deployment, change FROM pg_temp.links WHERE environment = 'production';

-- a connector later records what P6 shipped: c5 and c6.  P6 is then the
-- connector's, and c5, which the connector puts on P6, is no longer
-- inferred on P4: that link goes, nothing is added
INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
VALUES (pg_temp.dep('P6'), pg_temp.chg('c5'), 'connector'),
       (pg_temp.dep('P6'), pg_temp.chg('c6'), 'connector')
ON CONFLICT (deployment_id, change_id) DO UPDATE SET linked_by = excluded.linked_by;
SELECT engineering.link_changes() AS links_made;
SELECT deployment, change, linked_by FROM pg_temp.links WHERE environment = 'production';

-- linking one service leaves the others alone: cart's inferred link is
-- removed by hand, and relinking shop does not bring it back
DELETE FROM engineering.deployment_changes WHERE linked_by = 'inferred'
  AND deployment_id = pg_temp.dep('K2');
SELECT engineering.link_changes('shop') AS links_made;
SELECT count(*) AS cart_inferred FROM pg_temp.links WHERE service = 'cart' AND linked_by = 'inferred';
SELECT engineering.link_changes('cart') AS links_made;

-- staging agrees with an independent plain-SQL reading of the rule (its
-- heads are each the latest commit before the deployment, so time and sha
-- give the same ranges): each change committed after the first recorded
-- deployment goes to the first successful staging deployment that
-- finished at or after it was committed; no difference either way
WITH expected AS (
    SELECT c.external_id AS change, d.external_id AS deployment
    FROM engineering.changes c
    CROSS JOIN LATERAL (
        SELECT x.external_id FROM engineering.deployments x
        WHERE x.service = c.service AND x.environment = 'staging' AND x.status = 'success'
          AND x.finished_at >= c.committed_at
        ORDER BY x.finished_at LIMIT 1) d
    WHERE c.service = 'shop' AND c.committed_at > '2024-03-04 09:30'
), actual AS (
    SELECT change, deployment FROM pg_temp.links WHERE environment = 'staging'
)
SELECT 'expected' AS only_in, * FROM (SELECT * FROM expected EXCEPT SELECT * FROM actual) a
UNION ALL
SELECT 'actual', * FROM (SELECT * FROM actual EXCEPT SELECT * FROM expected) b;
SELECT count(*) AS staging_links FROM pg_temp.links WHERE environment = 'staging';

--
-- attribute_incidents(): the latest successful production deployment of
-- the service that finished before the incident opened, within max_gap
--   J1 shop 03-04 09:45: only staging S1 before it -> none
--   J2 shop 03-04 16:00 -> P2 (15:00)
--   J3 shop 03-04 17:00 -> P2 too (two incidents on one deployment)
--   J4 shop 03-05 09:30: P3 (09:00) failed -> P2, 18.5 h earlier
--   J5 shop 03-20 00:00: P6 (03-06 11:00) is 13.5 days earlier -> none
--   J6 shop 03-06 12:00: cause P4 set by its connector -> untouched
--   J7 cart 03-01 16:00 -> K2
INSERT INTO engineering.incidents (external_id, service, status, opened_at, cause_deployment_id) VALUES
    ('J1', 'shop', 'open', '2024-03-04 09:45', NULL),
    ('J2', 'shop', 'open', '2024-03-04 16:00', NULL),
    ('J3', 'shop', 'open', '2024-03-04 17:00', NULL),
    ('J4', 'shop', 'open', '2024-03-05 09:30', NULL),
    ('J5', 'shop', 'open', '2024-03-20 00:00', NULL),
    ('J6', 'shop', 'open', '2024-03-06 12:00', pg_temp.dep('P4')),
    ('J7', 'cart', 'open', '2024-03-01 16:00', NULL);
CREATE VIEW pg_temp.causes AS
SELECT i.external_id AS incident, d.external_id AS cause, i.cause_inferred
FROM engineering.incidents i LEFT JOIN engineering.deployments d ON d.id = i.cause_deployment_id
ORDER BY i.external_id;
SELECT engineering.attribute_incidents() AS set;
SELECT * FROM pg_temp.causes;
-- idempotent
SELECT engineering.attribute_incidents() AS set;
-- without a limit (as Apache DevLake does) J5 goes to P6, 13.5 days back
SELECT engineering.attribute_incidents(NULL) AS set;
SELECT * FROM pg_temp.causes WHERE incident = 'J5';
-- a tighter gap recomputes the inferred causes: with 12 hours, J4 (18.5 h)
-- and J5 lose theirs; J6's connector cause stays
SELECT engineering.attribute_incidents('12 hours') AS set;
SELECT * FROM pg_temp.causes;
-- a cause set by hand is never overwritten
UPDATE engineering.incidents SET cause_deployment_id = pg_temp.dep('P1'), cause_inferred = false
WHERE external_id = 'J3';
SELECT engineering.attribute_incidents() AS set;
SELECT * FROM pg_temp.causes WHERE incident IN ('J3', 'J6');
-- another environment: every inferred cause follows it.  J1 goes to
-- staging's S1 (15 minutes before), J2 and J4 to S2 (03-04 14:00), J7
-- loses K2 (cart has no staging), J3 and J6 keep theirs: 4 changed
SELECT engineering.attribute_incidents(environment => 'staging') AS set;
SELECT * FROM pg_temp.causes;
SELECT engineering.attribute_incidents('-1 hour');
