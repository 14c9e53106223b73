-- The demo's report: DORA per service and overall over the last 90 days
-- (engineering.dora), the SLOs now and the alerts firing, the incidents
-- still open, golden-path adoption and DORA on and off the paths, the
-- production readiness scorecard, the platform report per team (when
-- people are recorded), and a few queries to try.
\set QUIET 1
\pset footer off
\pset null '–'
SET client_min_messages = warning;

-- durations the way people say them: 42 min, 3 h 05 min, 2 d 4 h, 23 days
CREATE FUNCTION pg_temp.human(d interval) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
               WHEN s IS NULL THEN NULL
               WHEN s < 60 THEN floor(s) || ' s'
               WHEN s < 3600 THEN floor(s / 60) || ' min'
               WHEN s < 86400 THEN floor(s / 3600) || ' h ' || lpad((floor(s / 60)::bigint % 60)::text, 2, '0') || ' min'
               WHEN s < 14 * 86400 THEN floor(s / 86400) || ' d ' || (floor(s / 3600)::bigint % 24) || ' h'
               ELSE round(s / 86400) || ' days'
           END
    FROM (SELECT extract(epoch FROM d)::float8 AS s) x
$$;
CREATE FUNCTION pg_temp.pct(r float8) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT to_char(100 * r, 'FM990.0') || ' %' $$;
CREATE FUNCTION pg_temp.leveled(value text, level text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT value || coalesce('  ' || level, '') $$;

SELECT to_regproc('engineering.platform_report') IS NOT NULL AND EXISTS (SELECT 1 FROM engineering.people) AS platform \gset
\if :platform
\else
\unset platform
\endif
SELECT to_char(now() - interval '90 days', 'YYYY-MM-DD HH24:MI') AS from_ts,
       to_char(now(), 'YYYY-MM-DD HH24:MI') AS to_ts,
       (SELECT production_environment FROM engineering.dora_settings) AS env,
       (SELECT benchmark_year FROM engineering.dora_settings) AS year \gset

\echo
\echo 'DORA, last 90 days (':from_ts' to ':to_ts' UTC), ':env' deployments, levels of the ':year' report'
\echo '(engineering.dora(now() - interval ''90 days'', now()); rates of successful deployments, medians of durations)'
SELECT coalesce(d.service, 'all services') AS service,
       d.deployments AS deploys,
       pg_temp.leveled(to_char(d.deployment_days_per_week, 'FM0.0') || ' d/wk', d.deployment_frequency_level) AS "deployment frequency",
       pg_temp.leveled(pg_temp.human(d.lead_time), d.lead_time_level) AS "lead time",
       pg_temp.leveled(pg_temp.pct(d.change_failure_rate), d.change_failure_rate_level) AS "change failure rate",
       pg_temp.leveled(pg_temp.human(d.time_to_restore), d.time_to_restore_level) AS "time to restore",
       pg_temp.leveled(pg_temp.human(d.failed_deployment_recovery_time), d.failed_deployment_recovery_time_level) AS "failed deployment recovery",
       pg_temp.pct(d.rework_rate) AS rework
FROM engineering.dora(now() - interval '90 days', now()) d;

\echo
\echo 'SLOs now (engineering.slo_status): budget left over the period, burn rates (1 = spending exactly the budget)'
SELECT st.slo, st.service, to_char(100 * st.objective, 'FM990.09') || ' %' AS objective,
       st.period, to_char(100 * st.sli, 'FM990.000') || ' %' AS sli,
       pg_temp.pct(st.budget_remaining) AS "budget left",
       round(st.burn_rate_5m, 1) AS "burn 5m", round(st.burn_rate_1h, 1) AS "burn 1h",
       round(st.burn_rate_6h, 1) AS "burn 6h", round(st.burn_rate_1d, 1) AS "burn 1d",
       pg_temp.human(st.time_to_exhaustion) AS "budget gone in"
FROM engineering.slos s, engineering.slo_status(s.name) st
ORDER BY st.budget_remaining NULLS LAST;

\echo
\echo 'Alerts firing now (engineering.slo_alerts(): multiwindow burn-rate rules of the SRE Workbook)'
SELECT a.slo, a.severity, a.rule, round(a.long_burn_rate, 1) AS "long window burn",
       round(a.short_burn_rate, 1) AS "short window burn", round(a.threshold, 2) AS threshold,
       to_char((SELECT max(e.evaluated_at) FROM engineering.slo_alert_events e
                JOIN engineering.slos s ON s.id = e.slo_id JOIN engineering.slo_alert_rules r ON r.id = e.rule_id
                WHERE s.name = a.slo AND r.name = a.rule AND e.state = 'firing'), 'HH24:MI') AS "notified at"
FROM engineering.slo_alerts() a
WHERE a.firing
ORDER BY a.severity, a.slo, a.rule;

\echo
\echo 'Incidents still open'
SELECT i.service, i.title, i.severity, i.status, pg_temp.human(now() - i.opened_at) AS "open for",
       s.kind AS "from"
FROM engineering.incidents i
LEFT JOIN engineering.sources s ON s.id = i.source_id
WHERE i.resolved_at IS NULL
ORDER BY i.opened_at;

\if :{?platform}
\echo
\echo 'Platform engineering, last 90 days, per team (engineering.platform_report(now() - interval ''90 days'', now()))'
\echo '(onboarding: medians over the people hired in the window; satisfaction: the latest survey, groups under 5 respondents suppressed;'
\echo ' delivery: the DORA key of the team''s weakest service; reliability: the worst SLO budget left; grade: good, fair or poor)'
CREATE FUNCTION pg_temp.graded(value text, grade text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(value, '–') || coalesce(' ' || grade, '') $$;
SELECT coalesce(r.team, 'everyone') AS team,
       max(pg_temp.graded(to_char(100 * r.value, 'FM990') || ' %', r.grade)) FILTER (WHERE r.measure = 'golden path adoption') AS "golden paths",
       (max(r.value) FILTER (WHERE r.measure = 'hires'))::integer AS hires,
       max(pg_temp.graded(pg_temp.human(r.value * interval '1 second'), r.grade)) FILTER (WHERE r.measure = 'time to first PR') AS "first PR",
       max(pg_temp.graded(pg_temp.human(r.value * interval '1 second'), r.grade)) FILTER (WHERE r.measure = 'time to first deploy') AS "first deploy",
       max(pg_temp.graded(pg_temp.human(r.value * interval '1 second'), r.grade)) FILTER (WHERE r.measure = 'time to 10th PR') AS "10th PR",
       max(pg_temp.graded(pg_temp.pct(r.value), r.grade)) FILTER (WHERE r.measure = 'favorable rate') AS favorable,
       max(pg_temp.graded(round(r.value)::text, r.grade)) FILTER (WHERE r.measure = 'NPS') AS nps,
       (array_agg(r.grade ORDER BY CASE r.grade WHEN 'poor' THEN 1 WHEN 'fair' THEN 2 ELSE 3 END)
            FILTER (WHERE r.area = 'delivery' AND r.grade IS NOT NULL))[1] AS delivery,
       max(pg_temp.graded(pg_temp.pct(r.value), r.grade)) FILTER (WHERE r.measure = 'SLO budget remaining') AS "SLO budget",
       max(r.grade) FILTER (WHERE r.area = 'summary') AS maturity
FROM engineering.platform_report(now() - interval '90 days', now()) r
GROUP BY r.team
ORDER BY r.team NULLS FIRST;

\echo
\echo 'Why: every measure below good, with its reason'
SELECT coalesce(r.team, 'everyone') AS team, r.measure, r.grade, r.reason
FROM engineering.platform_report(now() - interval '90 days', now()) r
WHERE r.grade IN ('fair', 'poor') AND r.area <> 'summary'
ORDER BY r.team NULLS FIRST, r.grade DESC, r.measure;

\echo
\echo 'Left out of people metrics as bots (engineering.excluded_authors; the pattern is engineering.people_settings.bot_pattern)'
SELECT author, commits, pull_requests, array_to_string(services, ', ') AS services FROM engineering.excluded_authors ORDER BY author;
\endif

\echo
\echo 'Golden-path adoption now (engineering.golden_path_adoption(): eligible services, i.e. catalog components of type service, live, not deprecated)'
SELECT coalesce(a.golden_path, 'on at least one path') AS "golden path", a.kind,
       a.adopted || ' of ' || a.eligible AS services, pg_temp.pct(a.adoption_rate) AS adoption
FROM engineering.golden_path_adoption() a;

\echo
\echo 'Do golden paths pay off?  DORA over the last 90 days, services on each path and off every path (engineering.dora_by_golden_path)'
SELECT coalesce(g.golden_path, CASE WHEN g.on_path THEN 'on at least one path' ELSE 'off every path' END) AS "golden path",
       g.services, g.deployments AS deploys,
       pg_temp.leveled(to_char(g.deployment_days_per_week, 'FM0.0') || ' d/wk', g.deployment_frequency_level) AS "deployment frequency",
       pg_temp.leveled(pg_temp.human(g.lead_time), g.lead_time_level) AS "lead time",
       pg_temp.leveled(pg_temp.pct(g.change_failure_rate), g.change_failure_rate_level) AS "change failure rate",
       pg_temp.leveled(pg_temp.human(g.time_to_restore), g.time_to_restore_level) AS "time to restore"
FROM engineering.dora_by_golden_path(now() - interval '90 days', now()) g;

\echo
\echo 'Scorecard "production readiness" (engineering.scorecards(): the highest level whose rules, and those below, all pass)'
SELECT c.service, f.team, coalesce(c.level, 'none') AS level,
       array_to_string(c.failed || c.errors, ', ') AS "missing"
FROM engineering.scorecards() c
JOIN engineering.service_facts f ON f.service = c.service
WHERE c.scorecard = 'production readiness'
ORDER BY (SELECT l.rank FROM engineering.scorecard_levels l
          WHERE l.scorecard = c.scorecard AND l.level = c.level) DESC NULLS LAST, c.service;

\echo
\echo 'Try, in psql (SET search_path = engineering, public saves typing):'
\echo '  -- one service, this quarter, against the 2021 tiers'
\echo '  SELECT * FROM engineering.dora(date_trunc(''quarter'', now()), now(), ''checkout'', benchmark_year => 2021);'
\echo '  -- weekly trend of the median lead time per service'
\echo '  SELECT service, date_trunc(''week'', deployed_at) AS week, engineering.lead_time(measured_from, deployed_at)'
\echo '    FROM engineering.change_lead_times WHERE environment = ''production'' GROUP BY 1, 2 ORDER BY 1, 2;'
\echo '  -- which deployments caused incidents, and how long recovery took'
\echo '  SELECT * FROM engineering.deployment_outcomes WHERE failed ORDER BY finished_at DESC LIMIT 10;'
\echo '  -- pull requests: coding, review and deploy time'
\echo '  SELECT service, percentile_cont(0.5) WITHIN GROUP (ORDER BY review_time) FROM engineering.pull_request_cycle_times GROUP BY 1;'
\echo '  -- the flakiest pipelines on main over the last 30 days'
\echo '  SELECT * FROM engineering.pipeline_health(now() - interval ''30 days'', now())'
\echo '    WHERE branch = ''main'' ORDER BY flaky_rate DESC NULLS LAST LIMIT 10;'
\echo '  -- an SLO''s budget, hour by hour, over the last day'
\echo '  SELECT * FROM engineering.slo_history(''checkout-availability'', now() - interval ''1 day'', now());'
\echo '  -- which services are on which golden path, and what every scorecard rule sees'
\echo '  SELECT * FROM engineering.golden_path_services();  SELECT * FROM engineering.service_facts;'
\echo '  -- wait for pages: LISTEN engineering_slo_alerts;'
\echo '  -- onboarding cohorts by month, and a survey per team (small groups suppressed)'
\echo '  SELECT * FROM engineering.onboarding_cohorts(now() - interval ''180 days'', now()) WHERE team IS NULL;'
\echo '  SELECT * FROM engineering.survey_results(''developer survey 2'', ''team'');'
