-- engineering_metrics: DORA analytics, part 3: views for dashboards and
-- joins.  Each is written so that filters on its service, environment and
-- time columns reach the indexes of the event tables (a dashboard panel
-- for one service and 30 days reads only that slice).

------------------------------------------------------------------------------
-- _first_shipments: the one place that decides which linked change counts,
-- at which deployment, whatever made the link (link_changes(), a
-- connector, a person, an ETL job).  A change counts once per environment,
-- at the first successful deployment there that shipped it (a change
-- re-linked to a later deployment, e.g. by a connector after a redeploy, is
-- not counted twice), and only when it was committed after the service's
-- first recorded deployment (service_first_deployments): a link that puts
-- years of history on a first deployment counts nothing.  change_lead_times,
-- dora() and pull_request_cycle_times all read links through it.
--
-- Each branch joins the change itself, so that a filter on the change (its
-- service and sha, as pull_request_cycle_times asks) reaches the changes
-- index inside the branch.  Links inferred by link_changes() are unique per
-- change and environment, so they only need checking against the
-- connector's and manual links (few); those are checked against all.  Two
-- anti-joins, rather than one condition with OR, keep the plan a hash join
-- that can run in parallel over a quarter of links.
------------------------------------------------------------------------------
CREATE VIEW engineering._first_shipments AS
SELECT f.*,
       -- where lead time starts from a pull request: the earlier of its
       -- first commit and its opening (a rebased or amended first commit
       -- can postdate the opening), as total_time measures it.  Only
       -- evaluated where a caller reads it.
       (SELECT min(least(pr.first_commit_at, pr.opened_at))
          FROM engineering.pull_requests pr
         WHERE pr.service = f.change_service AND pr.merge_commit_sha = f.commit_sha) AS pull_request_started_at
FROM (
    SELECT d.service, d.environment, d.id AS deployment_id, d.finished_at AS deployed_at,
           dc.linked_by, c.id AS change_id, c.service AS change_service, c.commit_sha,
           c.committed_at, c.authored_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    JOIN engineering.changes c ON c.id = dc.change_id
    WHERE d.status = 'success'
      AND dc.linked_by = 'inferred'
      AND NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes e
                      JOIN engineering.deployments ed ON ed.id = e.deployment_id
                      WHERE e.change_id = dc.change_id AND e.linked_by <> 'inferred'
                        AND ed.environment = d.environment AND ed.status = 'success'
                        AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
    UNION ALL
    SELECT d.service, d.environment, d.id, d.finished_at,
           dc.linked_by, c.id, c.service, c.commit_sha,
           c.committed_at, c.authored_at
    FROM engineering.deployment_changes dc
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    JOIN engineering.changes c ON c.id = dc.change_id
    WHERE d.status = 'success'
      AND dc.linked_by <> 'inferred'
      AND NOT EXISTS (SELECT 1
                      FROM engineering.deployment_changes e
                      JOIN engineering.deployments ed ON ed.id = e.deployment_id
                      WHERE e.change_id = dc.change_id
                        AND ed.environment = d.environment AND ed.status = 'success'
                        AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
) f
-- committed after the service's first recorded deployment
JOIN engineering.service_first_deployments fd ON fd.service = f.service
WHERE f.committed_at > fd.first_seen;

COMMENT ON VIEW engineering._first_shipments IS
    'internal: the linked changes that count, however linked: one row per change and environment at its first successful deployment there, only for changes committed after the service''s first recorded deployment; pull_request_started_at is the earlier of the first commit and the opening of the pull request the change merged';
COMMENT ON COLUMN engineering._first_shipments.service IS 'the deployed service';
COMMENT ON COLUMN engineering._first_shipments.environment IS 'the environment the change reached';
COMMENT ON COLUMN engineering._first_shipments.deployment_id IS 'the first successful deployment of this environment that shipped it';
COMMENT ON COLUMN engineering._first_shipments.deployed_at IS 'finished_at of that deployment';
COMMENT ON COLUMN engineering._first_shipments.linked_by IS 'how the link was made: connector, inferred (link_changes()) or manual';
COMMENT ON COLUMN engineering._first_shipments.change_id IS 'the change (engineering.changes.id)';
COMMENT ON COLUMN engineering._first_shipments.change_service IS 'the service of the change (pull requests are matched on it)';
COMMENT ON COLUMN engineering._first_shipments.commit_sha IS 'its commit';
COMMENT ON COLUMN engineering._first_shipments.committed_at IS 'committer date of the change: after the service''s first recorded deployment';
COMMENT ON COLUMN engineering._first_shipments.authored_at IS 'author date of the change';
COMMENT ON COLUMN engineering._first_shipments.pull_request_started_at IS
    'the earlier of first_commit_at and opened_at of the pull request the change merged (NULL for other changes)';

------------------------------------------------------------------------------
-- change_lead_times: one row per change and environment it shipped to, as
-- _first_shipments counts them.  Lead time starts where
-- dora_settings.lead_time_start says; from a pull request's first commit it
-- starts at the earlier of that commit and the pull request's opening (a
-- rebased or amended first commit can postdate the opening).
------------------------------------------------------------------------------
CREATE VIEW engineering.change_lead_times AS
SELECT f.service,
       f.environment,
       f.change_id,
       f.commit_sha,
       f.deployment_id,
       f.linked_by,
       f.committed_at,
       st.measured_from,
       f.deployed_at,
       CASE WHEN st.measured_from <= f.deployed_at THEN f.deployed_at - st.measured_from END AS lead_time
FROM engineering._first_shipments f
CROSS JOIN LATERAL (
    -- (the setting is read by a scalar subquery, evaluated once: a join
    -- with the unanalyzed one-row table would skew the row estimates)
    SELECT CASE (SELECT s.lead_time_start FROM engineering.dora_settings s)
               WHEN 'authored_at' THEN coalesce(f.authored_at, f.committed_at)
               WHEN 'pr_first_commit' THEN
                   coalesce(f.pull_request_started_at, f.committed_at)
               ELSE f.committed_at
           END AS measured_from
) st;

COMMENT ON VIEW engineering.change_lead_times IS
    'one row per shipped change and environment, at its first successful deployment there: when it was committed, deployed, and its lead time';
COMMENT ON COLUMN engineering.change_lead_times.service IS 'the deployed service';
COMMENT ON COLUMN engineering.change_lead_times.environment IS 'the environment the change reached';
COMMENT ON COLUMN engineering.change_lead_times.change_id IS 'the change (engineering.changes.id)';
COMMENT ON COLUMN engineering.change_lead_times.commit_sha IS 'its commit';
COMMENT ON COLUMN engineering.change_lead_times.deployment_id IS 'the first successful deployment of this environment that shipped it';
COMMENT ON COLUMN engineering.change_lead_times.linked_by IS 'how the link was made: connector, inferred (link_changes()) or manual';
COMMENT ON COLUMN engineering.change_lead_times.committed_at IS 'committer date of the change';
COMMENT ON COLUMN engineering.change_lead_times.measured_from IS
    'where its lead time starts, per dora_settings.lead_time_start (committed_at, authored_at, or the earlier of its pull request''s first commit and opening)';
COMMENT ON COLUMN engineering.change_lead_times.deployed_at IS 'finished_at of that deployment';
COMMENT ON COLUMN engineering.change_lead_times.lead_time IS
    'deployed_at - measured_from; NULL when measured_from is later than deployed_at (clock skew), and such rows are left out of dora()';

------------------------------------------------------------------------------
-- deployment_outcomes: one row per deployment with what followed it.
-- "failed" is a change failure (the deployment caused an incident), not a
-- deployment whose own run failed (that is status = 'failure').
------------------------------------------------------------------------------
CREATE VIEW engineering.deployment_outcomes AS
SELECT d.id AS deployment_id,
       d.service,
       d.environment,
       d.status,
       d.commit_sha,
       d.finished_at,
       (SELECT count(*) FROM engineering.deployment_changes dc WHERE dc.deployment_id = d.id) AS changes,
       coalesce(i.incident_count, 0) > 0 AS failed,
       coalesce(i.incident_count, 0) AS incident_count,
       i.first_incident_at,
       CASE WHEN i.open_count = 0 THEN i.last_resolved_at END AS recovered_at,
       CASE WHEN i.open_count = 0 AND i.last_resolved_at >= d.finished_at
            THEN i.last_resolved_at - d.finished_at END AS recovery_time,
       EXISTS (SELECT 1 FROM engineering.incidents o
               WHERE o.service = d.service
                 AND o.opened_at <= d.finished_at
                 AND (o.resolved_at IS NULL OR o.resolved_at > d.finished_at)) AS during_incident
FROM engineering.deployments d
LEFT JOIN LATERAL (
    SELECT count(*) AS incident_count,
           count(*) FILTER (WHERE x.resolved_at IS NULL) AS open_count,
           min(x.opened_at) AS first_incident_at,
           max(x.resolved_at) AS last_resolved_at
    FROM engineering.incidents x
    WHERE x.cause_deployment_id = d.id
) i ON true;

COMMENT ON VIEW engineering.deployment_outcomes IS
    'one row per deployment: whether it caused incidents (a change failure), when service was restored, and whether it went out during an incident (rework)';
COMMENT ON COLUMN engineering.deployment_outcomes.deployment_id IS 'the deployment';
COMMENT ON COLUMN engineering.deployment_outcomes.service IS 'its service';
COMMENT ON COLUMN engineering.deployment_outcomes.environment IS 'its environment';
COMMENT ON COLUMN engineering.deployment_outcomes.status IS 'its own status (success, failure, cancelled, running); DORA metrics use successful ones';
COMMENT ON COLUMN engineering.deployment_outcomes.commit_sha IS 'head commit deployed';
COMMENT ON COLUMN engineering.deployment_outcomes.finished_at IS 'when it finished';
COMMENT ON COLUMN engineering.deployment_outcomes.changes IS 'how many changes are linked to it (by any means)';
COMMENT ON COLUMN engineering.deployment_outcomes.failed IS 'true when at least one incident is attributed to it (counts once in the change failure rate however many)';
COMMENT ON COLUMN engineering.deployment_outcomes.incident_count IS 'incidents attributed to it';
COMMENT ON COLUMN engineering.deployment_outcomes.first_incident_at IS 'when the first of them opened';
COMMENT ON COLUMN engineering.deployment_outcomes.recovered_at IS 'when the last of them was resolved; NULL while any is open or when there are none';
COMMENT ON COLUMN engineering.deployment_outcomes.recovery_time IS 'recovered_at - finished_at: how long the failure lasted from the deployment on';
COMMENT ON COLUMN engineering.deployment_outcomes.during_incident IS
    'true when it finished while an incident of the same service was open (opened_at <= finished_at < resolved_at): the rework of the rework rate';

------------------------------------------------------------------------------
-- pull_request_cycle_times: the stages of a pull request, up to the first
-- successful deployment to production (dora_settings.production_environment)
-- that shipped its merge, squash or rebase commit.  A stage whose end
-- precedes its start (a rebased first commit, clocks) is NULL rather than
-- negative.
------------------------------------------------------------------------------
CREATE VIEW engineering.pull_request_cycle_times AS
SELECT pr.id AS pull_request_id,
       pr.service,
       pr.number,
       pr.title,
       pr.author,
       pr.first_commit_at,
       pr.opened_at,
       pr.merged_at,
       dep.deployment_id,
       dep.deployed_at,
       CASE WHEN pr.first_commit_at <= pr.opened_at THEN pr.opened_at - pr.first_commit_at END AS coding_time,
       pr.merged_at - pr.opened_at AS review_time,
       CASE WHEN dep.deployed_at >= pr.merged_at THEN dep.deployed_at - pr.merged_at END AS deploy_time,
       CASE WHEN dep.deployed_at >= pr.merged_at
            THEN dep.deployed_at - least(pr.first_commit_at, pr.opened_at) END AS total_time
FROM engineering.pull_requests pr
LEFT JOIN LATERAL (
    SELECT f.deployment_id, f.deployed_at
    FROM engineering._first_shipments f
    WHERE pr.merged_at IS NOT NULL
      AND f.change_service = pr.service
      AND f.commit_sha = pr.merge_commit_sha
      AND f.environment = (SELECT s.production_environment FROM engineering.dora_settings s)
    ORDER BY f.deployed_at, f.deployment_id
    LIMIT 1
) dep ON true;

COMMENT ON VIEW engineering.pull_request_cycle_times IS
    'one row per pull request: coding (first commit to opened), review (opened to merged), deploy (merged to first production deployment) and total time';
COMMENT ON COLUMN engineering.pull_request_cycle_times.pull_request_id IS 'the pull request (engineering.pull_requests.id)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.service IS 'its service';
COMMENT ON COLUMN engineering.pull_request_cycle_times.number IS 'its number';
COMMENT ON COLUMN engineering.pull_request_cycle_times.title IS 'its title';
COMMENT ON COLUMN engineering.pull_request_cycle_times.author IS 'its author';
COMMENT ON COLUMN engineering.pull_request_cycle_times.first_commit_at IS 'author date of its first commit';
COMMENT ON COLUMN engineering.pull_request_cycle_times.opened_at IS 'when it was opened';
COMMENT ON COLUMN engineering.pull_request_cycle_times.merged_at IS 'when it was merged (NULL while open)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.deployment_id IS
    'first successful deployment to the production environment that shipped its merge commit (NULL until then, and when the commit predates the service''s first deployment)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.deployed_at IS 'when that deployment finished';
COMMENT ON COLUMN engineering.pull_request_cycle_times.coding_time IS 'opened_at - first_commit_at (NULL when negative or unknown)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.review_time IS 'merged_at - opened_at';
COMMENT ON COLUMN engineering.pull_request_cycle_times.deploy_time IS 'deployed_at - merged_at (NULL when negative or not deployed)';
COMMENT ON COLUMN engineering.pull_request_cycle_times.total_time IS 'deployed_at - the earlier of first_commit_at and opened_at';
