-- engineering_metrics: onboarding time.
--
-- Onboarding is measured from a person's start to their first commit, pull
-- request, merge and production deployment, and to their tenth merged pull
-- request (the onboarding measure of the developer-experience literature).
-- Only what a person did from their start counts: contributions from
-- before it (as a contractor, an open-source contributor, under an alias
-- reused later) are not onboarding.

CREATE VIEW engineering.onboarding AS
WITH acts AS (
    SELECT a.person_id, a.activity, a.activity_id, a.at, a.merged_at
    FROM engineering.person_activity a
    WHERE a.person_id IS NOT NULL
), first_seen AS (
    SELECT a.person_id, min(a.at) AS first_activity_at FROM acts a GROUP BY a.person_id
), base AS (
    SELECT p.id AS person_id, p.name, p.team,
           coalesce(p.started_at, f.first_activity_at) AS started_at,
           p.started_at IS NOT NULL AS start_known
    FROM engineering.people p
    LEFT JOIN first_seen f ON f.person_id = p.id
), since_start AS (
    SELECT a.*, b.started_at,
           row_number() OVER (PARTITION BY a.person_id, a.activity, a.merged_at IS NOT NULL
                              ORDER BY a.merged_at, a.activity_id) AS merge_rank
    FROM acts a JOIN base b ON b.person_id = a.person_id AND a.at >= b.started_at
), firsts AS (
    SELECT s.person_id,
           min(s.at) FILTER (WHERE s.activity = 'commit') AS first_commit_at,
           min(s.at) FILTER (WHERE s.activity = 'pull_request') AS first_pr_opened_at,
           min(s.merged_at) FILTER (WHERE s.activity = 'pull_request') AS first_pr_merged_at,
           min(s.merged_at) FILTER (WHERE s.activity = 'pull_request' AND s.merged_at IS NOT NULL
                                    AND s.merge_rank = 10) AS tenth_pr_merged_at
    FROM since_start s
    GROUP BY s.person_id
), deploys AS (
    SELECT s.person_id, min(d.finished_at) AS first_production_deploy_at
    FROM since_start s
    JOIN engineering.deployment_changes dc ON dc.change_id = s.activity_id
    JOIN engineering.deployments d ON d.id = dc.deployment_id
    WHERE s.activity = 'commit' AND d.status = 'success'
      AND d.environment = (SELECT production_environment FROM engineering.dora_settings)
    GROUP BY s.person_id
)
SELECT b.person_id, b.name, b.team, b.started_at, b.start_known,
       f.first_commit_at, f.first_pr_opened_at, f.first_pr_merged_at,
       d.first_production_deploy_at, f.tenth_pr_merged_at,
       f.first_commit_at - b.started_at AS time_to_first_commit,
       f.first_pr_opened_at - b.started_at AS time_to_first_pr,
       f.first_pr_merged_at - b.started_at AS time_to_first_merge,
       d.first_production_deploy_at - b.started_at AS time_to_first_deploy,
       f.tenth_pr_merged_at - b.started_at AS time_to_tenth_pr
FROM base b
LEFT JOIN firsts f ON f.person_id = b.person_id
LEFT JOIN deploys d ON d.person_id = b.person_id;

COMMENT ON VIEW engineering.onboarding IS
    'one row per person: start, first commit, pull request, merge and production deployment, tenth merged pull request, and the time from the start to each (only activity from the start counts)';
COMMENT ON COLUMN engineering.onboarding.person_id IS 'the person (people.id)';
COMMENT ON COLUMN engineering.onboarding.name IS 'the person''s name';
COMMENT ON COLUMN engineering.onboarding.team IS 'the person''s team';
COMMENT ON COLUMN engineering.onboarding.started_at IS 'people.started_at when known, else the person''s first commit or pull request';
COMMENT ON COLUMN engineering.onboarding.start_known IS 'true when started_at is the recorded start date, false when it is the first activity';
COMMENT ON COLUMN engineering.onboarding.first_commit_at IS 'author date of the person''s first commit from the start';
COMMENT ON COLUMN engineering.onboarding.first_pr_opened_at IS 'when the person''s first pull request (opened from the start) was opened';
COMMENT ON COLUMN engineering.onboarding.first_pr_merged_at IS 'the first merge of a pull request the person opened from the start';
COMMENT ON COLUMN engineering.onboarding.first_production_deploy_at IS
    'the first successful deployment to the production environment (dora_settings) that shipped a commit of the person''s from the start';
COMMENT ON COLUMN engineering.onboarding.tenth_pr_merged_at IS 'when the tenth of the person''s pull requests (opened from the start) was merged, in order of merging';
COMMENT ON COLUMN engineering.onboarding.time_to_first_commit IS 'first_commit_at - started_at';
COMMENT ON COLUMN engineering.onboarding.time_to_first_pr IS 'first_pr_opened_at - started_at: time to first pull request';
COMMENT ON COLUMN engineering.onboarding.time_to_first_merge IS 'first_pr_merged_at - started_at';
COMMENT ON COLUMN engineering.onboarding.time_to_first_deploy IS 'first_production_deploy_at - started_at: time to first production deployment';
COMMENT ON COLUMN engineering.onboarding.time_to_tenth_pr IS 'tenth_pr_merged_at - started_at: "time to 10th PR"';

-- The milestones in report order, with the onboarding column each reads.
CREATE FUNCTION engineering._onboarding_milestones()
RETURNS TABLE (ord integer, milestone text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    VALUES (1, 'first_commit'), (2, 'first_pr'), (3, 'first_merge'), (4, 'first_deploy'), (5, 'tenth_pr')
$$;
COMMENT ON FUNCTION engineering._onboarding_milestones() IS
    'internal: the onboarding milestones in report order';

-- A person who has not reached a milestone is counted as slower than
-- everyone who has: the aggregate is fed a far-future end for them (a
-- thousand years after the start), and a percentile whose ranks reach one
-- of them is NULL.  So a median exists once the people at its ranks have
-- all reached the milestone: for an odd cohort as soon as half of it (the
-- middle person) has, for an even one once more than half have.
CREATE FUNCTION engineering.onboarding_cohorts(from_ts timestamptz, to_ts timestamptz,
                                               step interval DEFAULT '1 month')
RETURNS TABLE (cohort_start timestamptz, cohort_end timestamptz, team text, milestone text,
               people bigint, reached bigint, not_reached bigint, median interval, p90 interval)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
#variable_conflict use_column
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR step IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'onboarding_cohorts needs finite from_ts, to_ts and a step' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts >= to_ts THEN
        RAISE EXCEPTION 'onboarding_cohorts: from_ts % is not before to_ts %', from_ts, to_ts
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF from_ts + step <= from_ts THEN
        RAISE EXCEPTION 'onboarding_cohorts: step % must be positive', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH cohorts AS (
        SELECT c AS c_start, least(c + step, to_ts) AS c_end
        FROM generate_series(from_ts, to_ts, step) c
        WHERE c < to_ts
    ), members AS (
        SELECT k.c_start, k.c_end, coalesce(o.team, '(no team)') AS team, o.started_at, m.ord, m.milestone,
               CASE m.milestone
                   WHEN 'first_commit' THEN o.first_commit_at
                   WHEN 'first_pr' THEN o.first_pr_opened_at
                   WHEN 'first_merge' THEN o.first_pr_merged_at
                   WHEN 'first_deploy' THEN o.first_production_deploy_at
                   WHEN 'tenth_pr' THEN o.tenth_pr_merged_at
               END AS reached_at
        FROM engineering.onboarding o
        JOIN cohorts k ON o.started_at >= k.c_start AND o.started_at < k.c_end
        CROSS JOIN engineering._onboarding_milestones() m
        WHERE o.start_known
    ), groups AS (
        SELECT m.c_start, m.c_end, CASE WHEN grouping(m.team) = 0 THEN m.team END AS team,
               m.ord, m.milestone,
               count(*) AS n, count(m.reached_at) AS r,
               engineering.lead_time(m.started_at, coalesce(m.reached_at, m.started_at + interval '1000 years'), 0.5) AS med,
               engineering.lead_time(m.started_at, coalesce(m.reached_at, m.started_at + interval '1000 years'), 0.9) AS p90
        FROM members m
        GROUP BY GROUPING SETS ((m.c_start, m.c_end, m.ord, m.milestone, m.team), (m.c_start, m.c_end, m.ord, m.milestone))
    )
    SELECT g.c_start, g.c_end, g.team, g.milestone, g.n, g.r, g.n - g.r,
           CASE WHEN ceil(0.5::float8 * (g.n - 1)) < g.r THEN g.med END,
           CASE WHEN ceil(0.9::float8 * (g.n - 1)) < g.r THEN g.p90 END
    FROM groups g
    ORDER BY g.c_start, g.team NULLS FIRST, g.ord;
END
$$;
COMMENT ON FUNCTION engineering.onboarding_cohorts(timestamptz, timestamptz, interval) IS
    'per start cohort [from_ts + k*step, +step) and per team (team NULL: all teams), for each onboarding milestone: people with a known start, how many reached it, how many not yet, and the interpolated median and p90 of the time to it (NULL while a rank falls on someone who has not reached it)';
