-- engineering_metrics: the platform report, "where does my team stand?".
--
-- The three platform-engineering measurements (golden-path adoption,
-- onboarding time, developer satisfaction) next to the DORA keys and SLO
-- budgets of each team's services, each graded with the reason for its
-- grade.  DORA keys are graded by dora_benchmarks; the other measures by
-- platform_thresholds, which ships defaults of ours (no published standard
-- grades them) for admins to replace.

CREATE TABLE engineering.service_teams (
    service         text PRIMARY KEY
                    CHECK (btrim(service) <> '' OR engineering._reject_value('service_teams.service', service, 'service must not be empty')),
    team            text NOT NULL
                    CHECK (btrim(team) <> '' OR engineering._reject_value('service_teams.team', team, 'team must not be empty'))
);
COMMENT ON TABLE engineering.service_teams IS
    'which team owns a service, for services no catalog describes (a catalog owner, when there is one, is used as well)';
COMMENT ON COLUMN engineering.service_teams.service IS 'the service, as the event tables name it';
COMMENT ON COLUMN engineering.service_teams.team IS 'the owning team, as people.team names it';

CREATE TABLE engineering.platform_thresholds (
    measure         text PRIMARY KEY
                    CHECK (measure IN ('golden_path_adoption', 'slo_budget_remaining', 'time_to_first_pr', 'time_to_first_deploy',
                                       'time_to_tenth_pr', 'favorable_rate', 'nps')
                           OR engineering._reject_value('platform_thresholds.measure', measure,
                                                        'expected golden_path_adoption, slo_budget_remaining, time_to_first_pr, time_to_first_deploy, time_to_tenth_pr, favorable_rate or nps')),
    higher_is_better boolean NOT NULL,
    good            float8 NOT NULL,
    fair            float8 NOT NULL,
    description     text,
    CONSTRAINT platform_thresholds_ordered
        CHECK (CASE WHEN higher_is_better THEN good >= fair ELSE good <= fair END
               OR engineering._reject_value('platform_thresholds.fair', fair::text, 'fair must be on the worse side of good'))
);
COMMENT ON TABLE engineering.platform_thresholds IS
    'grades of the platform report''s non-DORA measures: good when the figure reaches good, fair when it reaches fair, else poor; durations in seconds, rates 0 to 1, NPS in points.  Our defaults: edit them';
COMMENT ON COLUMN engineering.platform_thresholds.measure IS 'the measure of platform_report() it grades';
COMMENT ON COLUMN engineering.platform_thresholds.higher_is_better IS 'true: good means at least good; false: at most good';
COMMENT ON COLUMN engineering.platform_thresholds.good IS 'the bound of the grade good (seconds for durations)';
COMMENT ON COLUMN engineering.platform_thresholds.fair IS 'the bound of the grade fair (seconds for durations)';
COMMENT ON COLUMN engineering.platform_thresholds.description IS 'why these bounds';

INSERT INTO engineering.platform_thresholds (measure, higher_is_better, good, fair, description) VALUES
    ('golden_path_adoption', true, 0.8, 0.5, 'share of eligible services on a golden path'),
    ('slo_budget_remaining', true, 0.25, 0, 'the worst error budget left among the team''s SLOs at the end of the window'),
    ('time_to_first_pr', false, 7 * 86400, 14 * 86400, 'a first pull request within the first week'),
    ('time_to_first_deploy', false, 14 * 86400, 30 * 86400, 'something in production within two weeks'),
    ('time_to_tenth_pr', false, 30 * 86400, 60 * 86400, 'ten merged pull requests within the first month'),
    ('favorable_rate', true, 0.7, 0.5, 'mean share of favorable answers (top two boxes) over the survey''s questions'),
    ('nps', true, 30, 0, 'net promoter score of the platform, in points');

CREATE FUNCTION engineering._platform_thresholds_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.platform_thresholds
       SET higher_is_better = NEW.higher_is_better, good = NEW.good, fair = NEW.fair, description = NEW.description
     WHERE measure = NEW.measure;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._platform_thresholds_restore() IS
    'internal trigger: an inserted platform_thresholds row whose measure exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER platform_thresholds_restore BEFORE INSERT ON engineering.platform_thresholds
    FOR EACH ROW EXECUTE FUNCTION engineering._platform_thresholds_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.service_teams', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.platform_thresholds', '');

-- An admin's service_teams row wins over the catalog: it exists to correct
-- or complete what the catalog says.
CREATE VIEW engineering.team_services AS
SELECT st.team, st.service, 'service_teams'::text AS known_from
FROM engineering.service_teams st
UNION ALL
SELECT DISTINCT c.team, c.service, 'catalog'
FROM engineering.catalog_services() c
WHERE c.team IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM engineering.service_teams st WHERE st.service = c.service);
COMMENT ON VIEW engineering.team_services IS 'the services of each team, as the platform report groups them: service_teams, and the owners of the catalog''s live components for services it does not list';
COMMENT ON COLUMN engineering.team_services.team IS 'the team';
COMMENT ON COLUMN engineering.team_services.service IS 'one of its services';
COMMENT ON COLUMN engineering.team_services.known_from IS 'where the ownership comes from: service_teams, else catalog (the owning group of the live component, catalog_services())';

CREATE FUNCTION engineering._platform_grade(measure text, value float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN value IS NULL THEN NULL
        WHEN t.higher_is_better AND value >= t.good OR NOT t.higher_is_better AND value <= t.good THEN 'good'
        WHEN t.higher_is_better AND value >= t.fair OR NOT t.higher_is_better AND value <= t.fair THEN 'fair'
        ELSE 'poor'
    END
    FROM engineering.platform_thresholds t WHERE t.measure = _platform_grade.measure
$$;
COMMENT ON FUNCTION engineering._platform_grade(text, float8) IS
    'internal: good, fair or poor for a figure of the platform report, by platform_thresholds';

CREATE FUNCTION engineering._platform_bounds(measure text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT format('good %s %s, fair %s %s',
                  CASE WHEN t.higher_is_better THEN 'from' ELSE 'up to' END,
                  CASE WHEN t.measure LIKE 'time\_%' THEN justify_hours(t.good * interval '1 second')::text
                       WHEN t.measure = 'nps' THEN t.good::text
                       ELSE round(100 * t.good::numeric, 1) || '%' END,
                  CASE WHEN t.higher_is_better THEN 'from' ELSE 'up to' END,
                  CASE WHEN t.measure LIKE 'time\_%' THEN justify_hours(t.fair * interval '1 second')::text
                       WHEN t.measure = 'nps' THEN t.fair::text
                       ELSE round(100 * t.fair::numeric, 1) || '%' END)
    FROM engineering.platform_thresholds t WHERE t.measure = _platform_bounds.measure
$$;
COMMENT ON FUNCTION engineering._platform_bounds(text) IS
    'internal: the bounds of a platform report measure''s grades, in words (good up to 7 days, fair up to 14 days)';

-- Golden-path adoption per team, from the service catalog and the golden
-- paths (platform engineering part 1) with golden_path_adoption()'s
-- definitions: the eligible services are the catalog's eligible live
-- components, grouped by their owning team; without eligible components
-- there is nothing to count and the report says so.
CREATE FUNCTION engineering._platform_adoption(at timestamptz)
RETURNS TABLE (team text, adopted bigint, eligible bigint, detail text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH eligible AS (
        SELECT DISTINCT c.team, c.service FROM engineering.catalog_services(at) c WHERE c.eligible
    ), on_path AS (
        SELECT DISTINCT g.service FROM engineering.golden_path_services(at) g
    ), per_service AS (
        SELECT e.team, e.service, o.service IS NOT NULL AS adopted
        FROM eligible e LEFT JOIN on_path o ON o.service = e.service
    )
    SELECT CASE WHEN grouping(p.team) = 0 THEN p.team END,
           count(DISTINCT p.service) FILTER (WHERE p.adopted),
           count(DISTINCT p.service),
           CASE WHEN NOT EXISTS (SELECT 1 FROM engineering.golden_paths) THEN 'no golden paths defined yet'
                ELSE 'off every path: ' || coalesce(string_agg(DISTINCT p.service, ', ') FILTER (WHERE NOT p.adopted), 'none') END
    FROM per_service p
    GROUP BY GROUPING SETS ((p.team), ())
    HAVING grouping(p.team) = 1 OR p.team IS NOT NULL
$$;
COMMENT ON FUNCTION engineering._platform_adoption(timestamptz) IS
    'internal: golden-path adoption per team at a time (team NULL: all teams): adopted and eligible services, and which';

CREATE FUNCTION engineering.platform_report(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (team text, area text, measure text, value float8, unit text, grade text, reason text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- the plan's cost estimate (a dora() per service) triggers JIT, whose
-- compilation took 30 times as long as the report on the demo's data
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    latest text;
    bench_year integer;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts > to_ts THEN
        RAISE EXCEPTION 'platform_report needs finite from_ts <= to_ts' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT s.name INTO latest FROM engineering.surveys s
    WHERE s.opened_at < to_ts ORDER BY s.opened_at DESC, s.name DESC LIMIT 1;
    SELECT benchmark_year INTO bench_year FROM engineering.dora_settings;
    RETURN QUERY
    WITH teams AS (
        SELECT DISTINCT t AS team FROM (
            SELECT p.team AS t FROM engineering.people p
            WHERE p.team IS NOT NULL AND (p.left_at IS NULL OR p.left_at > from_ts)
            UNION SELECT ts.team FROM engineering.team_services ts) x
    ), scopes AS (
        SELECT t.team FROM teams t UNION ALL SELECT NULL
    ),
    -- delivery: each DORA key of the team, graded by its worst service
    dora_rows AS (
        SELECT ts.team, d.*
        FROM engineering.team_services ts
        CROSS JOIN LATERAL engineering.dora(from_ts, to_ts, ts.service) d
        UNION ALL
        SELECT NULL, d.* FROM engineering.dora(from_ts, to_ts) d WHERE d.service IS NULL
    ), dora_keys AS (
        SELECT r.team, r.service, k.ord, k.measure, k.unit, k.value, k.level,
               (SELECT b.rank FROM engineering.dora_benchmarks b
                WHERE b.report_year = bench_year AND b.metric = k.metric AND b.level = k.level) AS rank,
               (SELECT max(b.rank) FROM engineering.dora_benchmarks b
                WHERE b.report_year = bench_year AND b.metric = k.metric) AS lowest
        FROM dora_rows r
        CROSS JOIN LATERAL (VALUES
            (1, 'deployment_frequency', 'deployment frequency', 'deployment days/week', r.deployment_days_per_week, r.deployment_frequency_level),
            (2, 'lead_time', 'lead time for changes', 'seconds', extract(epoch FROM r.lead_time)::float8, r.lead_time_level),
            (3, 'change_failure_rate', 'change failure rate', 'ratio', r.change_failure_rate, r.change_failure_rate_level),
            (4, 'time_to_restore', 'time to restore', 'seconds', extract(epoch FROM r.time_to_restore)::float8, r.time_to_restore_level),
            (4, 'failed_deployment_recovery_time', 'failed deployment recovery time', 'seconds',
             extract(epoch FROM r.failed_deployment_recovery_time)::float8, r.failed_deployment_recovery_time_level))
            AS k(ord, metric, measure, unit, value, level)
        -- the recovery key the benchmark year grades: time to restore (2021)
        -- or failed deployment recovery time (2023)
        WHERE EXISTS (SELECT 1 FROM engineering.dora_benchmarks b
                      WHERE b.report_year = bench_year AND b.metric = k.metric)
    ), dora_team AS (
        SELECT DISTINCT ON (k.team, k.ord) k.team, k.ord, k.measure, k.unit, k.value, k.level,
               CASE WHEN k.rank IS NULL THEN NULL WHEN k.rank <= 2 THEN 'good' WHEN k.rank >= k.lowest THEN 'poor' ELSE 'fair' END AS grade,
               coalesce('level ' || k.level, 'no data')
               || CASE WHEN k.team IS NULL THEN ', all services together'
                       ELSE (SELECT ' (' || string_agg(x.service || ' ' || coalesce(x.level, 'no data'), ', ' ORDER BY x.service) || ')'
                             FROM dora_keys x WHERE x.team IS NOT DISTINCT FROM k.team AND x.ord = k.ord) END AS reason
        FROM dora_keys k
        ORDER BY k.team, k.ord, k.rank DESC NULLS LAST, k.service
    ),
    -- reliability: the worst error budget among the team's SLOs
    budgets AS (
        SELECT ts.team, st.slo, st.budget_remaining::float8 AS budget
        FROM engineering.slos s
        JOIN engineering.team_services ts ON ts.service = s.service
        CROSS JOIN LATERAL engineering.slo_status(s.name, to_ts) st
        UNION ALL
        SELECT NULL, st.slo, st.budget_remaining::float8
        FROM engineering.slos s CROSS JOIN LATERAL engineering.slo_status(s.name, to_ts) st
    ), budget_team AS (
        SELECT b.team, min(b.budget) AS worst,
               string_agg(b.slo || ': ' || coalesce(round(100 * b.budget::numeric, 1) || '% left', 'no data'), ', ' ORDER BY b.slo) AS reason
        FROM budgets b GROUP BY b.team
    ),
    -- onboarding: the people who started in the window, censored as in onboarding_cohorts
    hires AS (
        SELECT o.*, m.ord, m.milestone,
               CASE m.milestone WHEN 'first_pr' THEN o.first_pr_opened_at
                                WHEN 'first_deploy' THEN o.first_production_deploy_at
                                WHEN 'tenth_pr' THEN o.tenth_pr_merged_at END AS reached_at
        FROM engineering.onboarding o
        CROSS JOIN engineering._onboarding_milestones() m
        WHERE o.start_known AND o.started_at >= from_ts AND o.started_at < to_ts
          AND m.milestone IN ('first_pr', 'first_deploy', 'tenth_pr')
    ), hire_groups AS (
        SELECT CASE WHEN grouping(h.team) = 0 THEN h.team END AS team, grouping(h.team) = 1 AS is_total,
               h.ord, h.milestone, count(*) AS n, count(h.reached_at) AS r,
               engineering.lead_time(h.started_at, coalesce(h.reached_at, h.started_at + interval '1000 years'), 0.5) AS med
        FROM hires h
        GROUP BY GROUPING SETS ((h.team, h.ord, h.milestone), (h.ord, h.milestone))
    ), onboarding_rows AS (
        SELECT g.team, g.is_total, g.ord, g.milestone, g.n, g.r,
               CASE WHEN ceil(0.5::float8 * (g.n - 1)) < g.r THEN extract(epoch FROM g.med)::float8 END AS median
        FROM hire_groups g
    ),
    -- satisfaction: the latest survey opened before to_ts, suppression kept
    survey_rows AS (
        SELECT r.* FROM engineering.survey_results(latest, 'team') r WHERE latest IS NOT NULL AND r.group_value IS NOT NULL
        UNION ALL
        SELECT r.* FROM engineering.survey_results(latest) r WHERE latest IS NOT NULL
    ), survey_team AS (
        SELECT r.group_value AS team,
               avg(r.favorable_rate) FILTER (WHERE r.kind <> 'nps') AS favorable,
               bool_or(r.suppressed) FILTER (WHERE r.kind <> 'nps') AS favorable_suppressed,
               count(*) FILTER (WHERE r.kind <> 'nps') AS favorable_questions,
               avg(r.nps) FILTER (WHERE r.kind = 'nps') AS nps,
               bool_or(r.suppressed) FILTER (WHERE r.kind = 'nps') AS nps_suppressed,
               max(r.respondents) AS respondents,
               max(r.note) AS note
        FROM survey_rows r GROUP BY r.group_value
    ),
    adoption AS (
        SELECT a.* FROM engineering._platform_adoption(to_ts) a
    ),
    report AS (
        -- adoption
        SELECT s.team, 1 AS area_ord, 'adoption' AS area, 1 AS ord, 'golden path adoption' AS measure,
               a.adopted::float8 / nullif(a.eligible, 0) AS value, 'ratio' AS unit,
               engineering._platform_grade('golden_path_adoption', a.adopted::float8 / nullif(a.eligible, 0)) AS grade,
               CASE WHEN coalesce(a.eligible, 0) = 0 THEN 'no golden-path data: no eligible service of the team in the service catalog'
                    ELSE format('%s of %s eligible services on a golden path', a.adopted, a.eligible) || coalesce('; ' || a.detail, '') END AS reason
        FROM scopes s LEFT JOIN adoption a ON a.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- onboarding
        SELECT s.team, 2, 'onboarding', 0, 'hires', coalesce(max(o.n), 0)::float8, 'people', NULL,
               'people with a known start date in the window'
        FROM scopes s LEFT JOIN onboarding_rows o ON o.team IS NOT DISTINCT FROM s.team AND o.is_total = (s.team IS NULL)
        GROUP BY s.team
        UNION ALL
        SELECT s.team, 2, 'onboarding', m.ord,
               CASE m.milestone WHEN 'first_pr' THEN 'time to first PR' WHEN 'first_deploy' THEN 'time to first deploy'
                                ELSE 'time to 10th PR' END,
               o.median, 'seconds',
               engineering._platform_grade('time_to_' || CASE m.milestone WHEN 'first_pr' THEN 'first_pr'
                                                                       WHEN 'first_deploy' THEN 'first_deploy'
                                                                       ELSE 'tenth_pr' END, o.median),
               CASE WHEN o.n IS NULL THEN 'no hires in the window'
                    ELSE format('median of %s hires, %s reached it, %s not yet', o.n, o.r, o.n - o.r)
                         || CASE WHEN o.median IS NULL THEN ' (too few to have a median)' ELSE '' END END
        FROM scopes s
        CROSS JOIN engineering._onboarding_milestones() m
        LEFT JOIN onboarding_rows o ON o.team IS NOT DISTINCT FROM s.team AND o.is_total = (s.team IS NULL) AND o.milestone = m.milestone
        WHERE m.milestone IN ('first_pr', 'first_deploy', 'tenth_pr')
        UNION ALL
        -- satisfaction
        SELECT s.team, 3, 'satisfaction', 1, 'favorable rate',
               CASE WHEN NOT st.favorable_suppressed THEN st.favorable END, 'ratio',
               CASE WHEN NOT st.favorable_suppressed THEN engineering._platform_grade('favorable_rate', st.favorable) END,
               CASE WHEN latest IS NULL THEN 'no survey opened before the end of the window'
                    WHEN st.team IS NULL AND st.favorable_questions IS NULL THEN format('no answers in survey %s', latest)
                    WHEN st.favorable_suppressed THEN format('survey %s: %s', latest, st.note)
                    ELSE format('survey %s, %s respondents, favorable share averaged over %s question(s)', latest, st.respondents, st.favorable_questions) END
        FROM scopes s LEFT JOIN survey_team st ON st.team IS NOT DISTINCT FROM s.team
        UNION ALL
        SELECT s.team, 3, 'satisfaction', 2, 'NPS',
               CASE WHEN NOT st.nps_suppressed THEN st.nps END, 'points',
               CASE WHEN NOT st.nps_suppressed THEN engineering._platform_grade('nps', st.nps) END,
               CASE WHEN latest IS NULL THEN 'no survey opened before the end of the window'
                    WHEN st.nps_suppressed THEN format('survey %s: %s', latest, st.note)
                    WHEN st.nps IS NULL THEN format('survey %s has no answered nps question', latest)
                    ELSE format('survey %s, %s respondents', latest, st.respondents) END
        FROM scopes s LEFT JOIN survey_team st ON st.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- delivery
        SELECT s.team, 4, 'delivery', d.ord, d.measure, d.value, d.unit, d.grade, d.reason
        FROM scopes s JOIN dora_team d ON d.team IS NOT DISTINCT FROM s.team
        UNION ALL
        -- reliability
        SELECT s.team, 5, 'reliability', 1, 'SLO budget remaining', b.worst, 'ratio',
               engineering._platform_grade('slo_budget_remaining', b.worst),
               coalesce('worst of ' || b.reason, 'no SLOs on the team''s services')
        FROM scopes s LEFT JOIN budget_team b ON b.team IS NOT DISTINCT FROM s.team
    )
    SELECT r.team, r.area, r.measure, r.value, r.unit, r.grade,
           r.reason || coalesce(' (' || CASE WHEN r.grade IS NOT NULL THEN engineering._platform_bounds(
               CASE r.measure WHEN 'golden path adoption' THEN 'golden_path_adoption'
                              WHEN 'time to first PR' THEN 'time_to_first_pr'
                              WHEN 'time to first deploy' THEN 'time_to_first_deploy'
                              WHEN 'time to 10th PR' THEN 'time_to_tenth_pr'
                              WHEN 'favorable rate' THEN 'favorable_rate'
                              WHEN 'NPS' THEN 'nps'
                              WHEN 'SLO budget remaining' THEN 'slo_budget_remaining' END) END || ')', '')
    FROM (
        SELECT r.*, 0 AS summary_last FROM report r
        UNION ALL
        SELECT r.team, 6, 'summary', 1, 'maturity', NULL, NULL,
               (array_agg(r.grade ORDER BY CASE r.grade WHEN 'poor' THEN 1 WHEN 'fair' THEN 2 ELSE 3 END)
                FILTER (WHERE r.grade IS NOT NULL))[1],
               CASE WHEN count(r.grade) = 0 THEN 'nothing graded yet'
                    ELSE 'the lowest grade of: ' || string_agg(r.measure || ' ' || r.grade, ', ' ORDER BY r.area_ord, r.ord)
                                                     FILTER (WHERE r.grade IS NOT NULL) END,
               1
        FROM report r GROUP BY r.team
    ) r
    ORDER BY r.team NULLS FIRST, r.area_ord, r.ord;
END
$$;
COMMENT ON FUNCTION engineering.platform_report(timestamptz, timestamptz) IS
    'per team (team NULL: everyone) the platform engineering measures: golden-path adoption, onboarding of the people who started in [from_ts, to_ts), the latest survey''s favorable rate and NPS (suppression kept), the DORA keys (graded by the team''s worst service) and the worst SLO budget, each with a grade and its reason, and a maturity summary (the lowest grade)';
