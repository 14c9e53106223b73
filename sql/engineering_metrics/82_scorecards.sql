-- engineering_metrics: platform engineering, part 3: service facts and
-- scorecards (service maturity).
--
-- service_facts gathers, per service, what the extension knows: catalog,
-- golden paths, SLOs and alerts, DORA and pipeline figures, incidents.
-- A scorecard is a ladder of levels (scorecard_levels), each with rules
-- (scorecard_rules): boolean SQL expressions over the columns of
-- service_facts.  A service reaches the highest level whose rules, and
-- those of every lower level, all pass.

------------------------------------------------------------------------------
-- service_facts_at(at) and the view service_facts (at = now())
------------------------------------------------------------------------------

CREATE FUNCTION engineering.service_facts_at(at timestamptz)
RETURNS TABLE (
    service                     text,
    in_catalog                  boolean,
    entity_ref                  text,
    owner                       text,
    team                        text,
    type                        text,
    lifecycle                   text,
    eligible                    boolean,
    system                      text,
    template                    text,
    tags                        text[],
    golden_paths                text[],
    on_golden_path              boolean,
    slos                        integer,
    worst_budget_remaining      numeric,
    alerts_firing               integer,
    deployments_90d             bigint,
    deployment_days_per_week    float8,
    deployment_frequency_level  text,
    lead_time                   interval,
    lead_time_level             text,
    change_failure_rate         float8,
    change_failure_rate_level   text,
    time_to_restore             interval,
    time_to_restore_level       text,
    dora_level                  text,
    pipeline_runs_30d           bigint,
    pipeline_success_rate       float8,
    flaky_rate                  float8,
    open_incidents              bigint,
    last_deployment_at          timestamptz,
    days_since_last_deployment  float8,
    failed_deployment_recovery_time       interval,
    failed_deployment_recovery_time_level text
)
LANGUAGE sql STABLE PARALLEL SAFE
SET jit = off
BEGIN ATOMIC
    WITH settings AS (
        SELECT coalesce((SELECT d.production_environment FROM engineering.dora_settings d LIMIT 1), 'production') AS env,
               coalesce((SELECT d.benchmark_year FROM engineering.dora_settings d LIMIT 1), 2023) AS year),
    catalog AS (
        SELECT * FROM engineering.catalog_services(service_facts_at.at)),
    dora AS (
        SELECT * FROM engineering.dora(service_facts_at.at - interval '90 days', service_facts_at.at) r
        WHERE r.service IS NOT NULL),
    paths AS (
        SELECT m.service, array_agg(m.golden_path ORDER BY m.golden_path) AS golden_paths
        FROM engineering.golden_path_services(service_facts_at.at) m GROUP BY m.service),
    slo AS (
        SELECT s.service, count(*)::integer AS slos, min(st.budget_remaining) AS worst_budget_remaining
        FROM engineering.slos s
        LEFT JOIN LATERAL engineering.slo_status(s.name, service_facts_at.at) st ON true
        GROUP BY s.service),
    alerts AS (
        SELECT a.service, count(*) FILTER (WHERE a.firing AND NOT a.suppressed)::integer AS firing
        FROM engineering.slo_alerts(service_facts_at.at) a GROUP BY a.service),
    -- pipeline_health()'s definitions over all of a service's pipelines:
    -- successes / (successes + failures) of the runs started in the last
    -- 30 days, and the share of (pipeline, branch, commit) builds that
    -- failed and then passed
    runs AS (
        SELECT r.service, r.pipeline, r.branch, r.commit_sha, r.status, coalesce(r.started_at, r.queued_at) AS began
        FROM engineering.pipeline_runs r
        WHERE coalesce(r.started_at, r.queued_at) >= service_facts_at.at - interval '30 days'
          AND coalesce(r.started_at, r.queued_at) < service_facts_at.at),
    ci AS (
        SELECT t.service, t.runs, t.success_rate, f.flaky::float8 / nullif(f.built, 0) AS flaky_rate
        FROM (SELECT r.service, count(*) AS runs,
                     count(*) FILTER (WHERE r.status = 'success')::float8
                         / nullif(count(*) FILTER (WHERE r.status IN ('success', 'failure')), 0) AS success_rate
              FROM runs r GROUP BY r.service) t
        LEFT JOIN (SELECT c.service, count(*) AS built, count(*) FILTER (WHERE c.last_success > c.first_failure) AS flaky
                   FROM (SELECT r.service, min(r.began) FILTER (WHERE r.status = 'failure') AS first_failure,
                                max(r.began) FILTER (WHERE r.status = 'success') AS last_success
                         FROM runs r
                         WHERE r.commit_sha IS NOT NULL AND r.status IN ('success', 'failure')
                         GROUP BY r.service, r.pipeline, r.branch, r.commit_sha) c
                   GROUP BY c.service) f ON f.service = t.service),
    incidents AS (
        SELECT i.service, count(*) AS open
        FROM engineering.incidents i
        WHERE i.opened_at <= service_facts_at.at AND (i.resolved_at IS NULL OR i.resolved_at > service_facts_at.at)
        GROUP BY i.service),
    last_deploy AS (
        SELECT d.service, max(d.finished_at) AS at
        FROM engineering.deployments d CROSS JOIN settings s
        WHERE d.status = 'success' AND d.environment = s.env AND d.finished_at <= service_facts_at.at
        GROUP BY d.service),
    services AS (
        SELECT c.service FROM catalog c
        UNION SELECT s.service FROM engineering.slos s
        UNION SELECT d.service FROM dora d)
    SELECT v.service, c.service IS NOT NULL, c.entity_ref, c.owner, c.team, c.type, c.lifecycle,
           coalesce(c.eligible, false), c.system, c.template, c.tags,
           coalesce(p.golden_paths, '{}'), p.golden_paths IS NOT NULL,
           coalesce(o.slos, 0), o.worst_budget_remaining, coalesce(a.firing, 0),
           coalesce(d.deployments, 0), d.deployment_days_per_week, d.deployment_frequency_level,
           d.lead_time, d.lead_time_level, d.change_failure_rate, d.change_failure_rate_level,
           d.time_to_restore, d.time_to_restore_level,
           -- the worst of the levels that are known (no incident: no time to restore level)
           (SELECT b.level
            FROM engineering.dora_benchmarks b CROSS JOIN settings s
            WHERE b.report_year = s.year
              AND (b.metric, b.level) IN (('deployment_frequency', d.deployment_frequency_level),
                                          ('lead_time', d.lead_time_level),
                                          ('change_failure_rate', d.change_failure_rate_level),
                                          ('time_to_restore', d.time_to_restore_level),
                                          ('failed_deployment_recovery_time', d.failed_deployment_recovery_time_level))
            ORDER BY b.rank DESC, b.metric LIMIT 1),
           coalesce(ci.runs, 0), ci.success_rate, ci.flaky_rate,
           coalesce(i.open, 0), l.at,
           extract(epoch FROM service_facts_at.at - l.at)::float8 / 86400,
           d.failed_deployment_recovery_time, d.failed_deployment_recovery_time_level
    FROM services v
    LEFT JOIN catalog c ON c.service = v.service
    LEFT JOIN dora d ON d.service = v.service
    LEFT JOIN paths p ON p.service = v.service
    LEFT JOIN slo o ON o.service = v.service
    LEFT JOIN alerts a ON a.service = v.service
    LEFT JOIN ci ON ci.service = v.service
    LEFT JOIN incidents i ON i.service = v.service
    LEFT JOIN last_deploy l ON l.service = v.service
    ORDER BY v.service;
END;
COMMENT ON FUNCTION engineering.service_facts_at(timestamptz) IS
    'service_facts as of a time: one row per service in the catalog then, with an SLO, or with a production deployment in the 90 days before';

CREATE VIEW engineering.service_facts AS
SELECT * FROM engineering.service_facts_at(now());
COMMENT ON VIEW engineering.service_facts IS
    'one row per service (in the catalog, with an SLO, or deployed to production in the last 90 days) with what the extension knows about it; the columns scorecard rules are written over';
COMMENT ON COLUMN engineering.service_facts.service IS 'the service name the event tables use';
COMMENT ON COLUMN engineering.service_facts.in_catalog IS 'whether a live catalog component maps to it';
COMMENT ON COLUMN engineering.service_facts.entity_ref IS 'its catalog component (the eligible one first when several map to it)';
COMMENT ON COLUMN engineering.service_facts.owner IS 'spec.owner of the component, a full entity ref';
COMMENT ON COLUMN engineering.service_facts.team IS 'the owning group''s name (for a user owner, their first group)';
COMMENT ON COLUMN engineering.service_facts.type IS 'spec.type of the component';
COMMENT ON COLUMN engineering.service_facts.lifecycle IS 'spec.lifecycle of the component';
COMMENT ON COLUMN engineering.service_facts.eligible IS 'whether it counts for golden-path adoption (type in platform_settings.eligible_types, not deprecated)';
COMMENT ON COLUMN engineering.service_facts.system IS 'spec.system, a full entity ref';
COMMENT ON COLUMN engineering.service_facts.template IS 'the template the component was created from';
COMMENT ON COLUMN engineering.service_facts.tags IS 'metadata.tags of the component';
COMMENT ON COLUMN engineering.service_facts.golden_paths IS 'the golden paths it is on (golden_path_services()), {} for none';
COMMENT ON COLUMN engineering.service_facts.on_golden_path IS 'whether it is on at least one golden path';
COMMENT ON COLUMN engineering.service_facts.slos IS 'SLOs defined for it';
COMMENT ON COLUMN engineering.service_facts.worst_budget_remaining IS 'the smallest budget_remaining of slo_status() over its SLOs (1 = untouched, 0 = spent, negative = overspent); NULL without an SLO or traffic';
COMMENT ON COLUMN engineering.service_facts.alerts_firing IS 'burn-rate alert rules of its SLOs firing and not suppressed (slo_alerts())';
COMMENT ON COLUMN engineering.service_facts.deployments_90d IS 'successful production deployments in the last 90 days (dora())';
COMMENT ON COLUMN engineering.service_facts.deployment_days_per_week IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.deployment_frequency_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.lead_time IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.lead_time_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.change_failure_rate IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.change_failure_rate_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.time_to_restore IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.time_to_restore_level IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.dora_level IS 'the worst (highest-ranked) of its four DORA levels that are known; NULL when none is';
COMMENT ON COLUMN engineering.service_facts.pipeline_runs_30d IS 'pipeline runs started in the last 30 days';
COMMENT ON COLUMN engineering.service_facts.pipeline_success_rate IS 'successes / (successes + failures) of those runs, all pipelines together';
COMMENT ON COLUMN engineering.service_facts.flaky_rate IS 'share of the (pipeline, branch, commit) builds of those runs that failed and then passed';
COMMENT ON COLUMN engineering.service_facts.open_incidents IS 'incidents open now';
COMMENT ON COLUMN engineering.service_facts.last_deployment_at IS 'its latest successful production deployment';
COMMENT ON COLUMN engineering.service_facts.days_since_last_deployment IS 'days since then (fractional); NULL when it never deployed';
COMMENT ON COLUMN engineering.service_facts.failed_deployment_recovery_time IS 'dora() over the last 90 days';
COMMENT ON COLUMN engineering.service_facts.failed_deployment_recovery_time_level IS 'dora() over the last 90 days (graded by the 2023 tiers; time_to_restore_level by the 2021 ones)';

------------------------------------------------------------------------------
-- Scorecards
------------------------------------------------------------------------------

CREATE TABLE engineering.scorecard_levels (
    scorecard       text NOT NULL
                    CHECK (btrim(scorecard) <> '' OR engineering._reject_value('scorecard_levels.scorecard', scorecard, 'a scorecard needs a non-empty name')),
    level           text NOT NULL
                    CHECK (btrim(level) <> '' OR engineering._reject_value('scorecard_levels.level', level, 'a level needs a non-empty name')),
    rank            integer NOT NULL
                    CHECK (rank >= 1 OR engineering._reject_value('scorecard_levels.rank', rank::text, 'ranks start at 1 (the lowest level)')),
    description     text,
    PRIMARY KEY (scorecard, level),
    CONSTRAINT scorecard_levels_rank_key UNIQUE (scorecard, rank)
);
COMMENT ON TABLE engineering.scorecard_levels IS 'the levels of each scorecard, lowest first (bronze < silver < gold); admins write it';
COMMENT ON COLUMN engineering.scorecard_levels.scorecard IS 'the scorecard';
COMMENT ON COLUMN engineering.scorecard_levels.level IS 'the level''s name';
COMMENT ON COLUMN engineering.scorecard_levels.rank IS 'order of the levels, 1 = the lowest; reaching a level needs every rule of it and of the levels below';
COMMENT ON COLUMN engineering.scorecard_levels.description IS 'what reaching the level means';

CREATE TABLE engineering.scorecard_rules (
    scorecard       text NOT NULL,
    level           text NOT NULL,
    rule            text NOT NULL
                    CHECK (btrim(rule) <> '' OR engineering._reject_value('scorecard_rules.rule', rule, 'a rule needs a non-empty name')),
    expression      text NOT NULL,
    description     text,
    PRIMARY KEY (scorecard, rule),
    CONSTRAINT scorecard_rules_level_fkey FOREIGN KEY (scorecard, level)
        REFERENCES engineering.scorecard_levels (scorecard, level) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX scorecard_rules_level_idx ON engineering.scorecard_rules (scorecard, level);
COMMENT ON TABLE engineering.scorecard_rules IS
    'the rules of each scorecard level: boolean SQL expressions over the columns of service_facts, checked when written; admins write it';
COMMENT ON COLUMN engineering.scorecard_rules.scorecard IS 'the scorecard';
COMMENT ON COLUMN engineering.scorecard_rules.level IS 'the level the rule belongs to';
COMMENT ON COLUMN engineering.scorecard_rules.rule IS 'the rule''s name, unique in its scorecard (what passed and failed list)';
COMMENT ON COLUMN engineering.scorecard_rules.expression IS
    'a boolean expression over service_facts columns, constants, operators and a few functions (see README); NULL counts as failed';
COMMENT ON COLUMN engineering.scorecard_rules.description IS 'what the rule asks for';

-- An expression is evaluated by whoever calls scorecards(), so it may
-- hold no more than a WHERE clause over one row of facts: column names,
-- constants, operators, casts and a short list of functions; no
-- subqueries, no other tables, no functions that could read or change
-- anything.  The words are checked here; the parser checks the rest.
CREATE FUNCTION engineering._scorecard_expression_words(expression text)
RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ARRAY(
    SELECT DISTINCT lower(w[1])
    FROM regexp_matches(regexp_replace(expression, '''([^'']|'''')*''', ' ', 'g'), '([A-Za-z_][A-Za-z_0-9]*)', 'g') AS w
    ORDER BY 1);
COMMENT ON FUNCTION engineering._scorecard_expression_words(text) IS
    'internal: the words (identifiers and keywords, lower case) of an expression outside its string constants';

CREATE FUNCTION engineering._scorecard_check_expression(rule text, expression text)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    stripped text := regexp_replace(coalesce(expression, ''), '''([^'']|'''')*''', '''''', 'g');
    bad text;
    result_type text;
BEGIN
    IF btrim(coalesce(expression, '')) = '' THEN
        RAISE EXCEPTION 'rule "%" needs an expression', rule USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- no backslash anywhere: without escapes, this function and the parser
    -- agree on where every string constant ends, whatever
    -- standard_conforming_strings says (and no backslash in the patterns
    -- here either, for the same reason)
    IF strpos(expression, chr(92)) > 0 OR expression ~ '[$;]' OR stripped ~ '("|--|/[*])' THEN
        RAISE EXCEPTION 'rule "%": the expression may not contain ;, $, ", comments or backslashes', rule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(expression) > 2000 THEN
        RAISE EXCEPTION 'rule "%": the expression is longer than 2000 characters', rule
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(w, ', ' ORDER BY w) INTO bad
    FROM unnest(engineering._scorecard_expression_words(expression)) w
    WHERE w NOT IN (
        SELECT a.attname::text FROM pg_attribute a
        WHERE a.attrelid = 'engineering.service_facts'::regclass AND a.attnum > 0 AND NOT a.attisdropped)
      AND w NOT IN (
        -- keywords of boolean expressions
        'and', 'or', 'not', 'is', 'null', 'true', 'false', 'unknown', 'in', 'like', 'ilike', 'similar', 'to',
        'escape', 'between', 'symmetric', 'distinct', 'from', 'any', 'all', 'some', 'array', 'case', 'when',
        'then', 'else', 'end',
        -- types for casts
        'text', 'numeric', 'integer', 'int', 'bigint', 'float8', 'double', 'precision', 'real', 'boolean',
        'interval', 'date', 'timestamptz',
        -- functions that read nothing but their arguments
        'coalesce', 'nullif', 'greatest', 'least', 'cardinality', 'array_length', 'array_position',
        'lower', 'upper', 'length', 'btrim', 'starts_with', 'abs', 'round', 'floor', 'ceil', 'extract', 'epoch',
        'day', 'days', 'hour', 'hours', 'minute', 'minutes', 'week', 'weeks', 'second', 'seconds');
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'rule "%": % in the expression is not a column of service_facts nor an allowed keyword or function', rule, bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A rule is a boolean expression over the columns of engineering.service_facts, such as "owner IS NOT NULL" or "slos > 0 AND worst_budget_remaining > 0".';
    END IF;
    BEGIN
        EXECUTE format('SELECT pg_typeof((%s))::text FROM (SELECT (NULL::engineering.service_facts).*) AS f', expression)
            INTO result_type;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'rule "%": the expression does not parse against service_facts: %', rule, SQLERRM
            USING ERRCODE = 'invalid_parameter_value';
    END;
    IF result_type IS DISTINCT FROM 'boolean' THEN
        RAISE EXCEPTION 'rule "%": the expression is of type %, not boolean', rule, result_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Compare it with something, e.g. "slos > 0" rather than "slos".';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._scorecard_check_expression(text, text) IS
    'internal: raises unless an expression uses only service_facts columns, constants, operators, casts and the allowed functions, parses, and is boolean';

CREATE FUNCTION engineering._scorecard_rules_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    PERFORM engineering._scorecard_check_expression(NEW.rule, NEW.expression);
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION engineering._scorecard_rules_check() IS
    'trigger: a rule is written only when its expression is a valid boolean expression over service_facts';
CREATE TRIGGER scorecard_rules_check BEFORE INSERT OR UPDATE OF expression, rule ON engineering.scorecard_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._scorecard_rules_check();

-- Keep edits across pg_dump/pg_restore (the shipped scorecard is seeded
-- again by CREATE EXTENSION before the dumped rows come back).
CREATE FUNCTION engineering._scorecard_levels_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.scorecard_levels
       SET rank = NEW.rank, description = NEW.description
     WHERE scorecard = NEW.scorecard AND level = NEW.level;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._scorecard_levels_restore() IS
    'internal trigger: an inserted scorecard_levels row whose (scorecard, level) exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER scorecard_levels_restore BEFORE INSERT ON engineering.scorecard_levels
    FOR EACH ROW EXECUTE FUNCTION engineering._scorecard_levels_restore();

CREATE FUNCTION engineering._scorecard_rules_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.scorecard_rules
       SET level = NEW.level, expression = NEW.expression, description = NEW.description
     WHERE scorecard = NEW.scorecard AND rule = NEW.rule;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._scorecard_rules_restore() IS
    'internal trigger: an inserted scorecard_rules row whose (scorecard, rule) exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER scorecard_rules_restore BEFORE INSERT ON engineering.scorecard_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._scorecard_rules_restore();

-- The shipped scorecard: the checks Port, Cortex, OpsLevel and Backstage
-- Tech Insights users write first (README, "Scorecards").
INSERT INTO engineering.scorecard_levels (scorecard, level, rank, description) VALUES
    ('production readiness', 'bronze', 1, 'known: someone owns it, it is not deprecated, and it ships'),
    ('production readiness', 'silver', 2, 'on the platform: a golden path, an SLO, no page firing, no incident open'),
    ('production readiness', 'gold',   3, 'delivers well: DORA high or better, error budget left, a healthy pipeline');
INSERT INTO engineering.scorecard_rules (scorecard, level, rule, expression, description) VALUES
    ('production readiness', 'bronze', 'has owner', 'owner IS NOT NULL', 'the catalog names an owner'),
    ('production readiness', 'bronze', 'not deprecated', 'lifecycle IS DISTINCT FROM ''deprecated''', 'its lifecycle is not deprecated'),
    ('production readiness', 'bronze', 'deployed in 90 days', 'days_since_last_deployment <= 90', 'a successful production deployment in the last 90 days'),
    ('production readiness', 'silver', 'on a golden path', 'on_golden_path', 'on at least one golden path'),
    ('production readiness', 'silver', 'has an SLO', 'slos > 0', 'at least one SLO'),
    ('production readiness', 'silver', 'no page firing', 'alerts_firing = 0', 'no burn-rate alert of its SLOs firing'),
    ('production readiness', 'silver', 'no open incident', 'open_incidents = 0', 'no incident open'),
    ('production readiness', 'gold', 'DORA high', 'dora_level IN (''elite'', ''high'')', 'every known DORA level of the last 90 days is high or elite'),
    ('production readiness', 'gold', 'error budget left', 'worst_budget_remaining > 0', 'every SLO has budget left'),
    ('production readiness', 'gold', 'healthy pipeline', 'pipeline_success_rate >= 0.9 AND coalesce(flaky_rate, 0) <= 0.1',
     'at least 90% of the last 30 days'' runs passed, at most 10% of builds were flaky');

SELECT pg_catalog.pg_extension_config_dump('engineering.scorecard_levels', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.scorecard_rules', '');

-- Each rule is evaluated on its own, so that one that fails (a division
-- by zero, a column an upgrade renamed) is an error for that rule and
-- every service, never a pass; the facts are computed once.  Subtransactions
-- catch the errors, so the function cannot run in a parallel worker.
CREATE FUNCTION engineering.scorecards(at timestamptz DEFAULT now())
RETURNS TABLE (service text, scorecard text, level text, passed text[], failed text[], errors text[])
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
SET jit = off
AS $$
DECLARE
    facts jsonb;
    r record;
    results jsonb;
    evals jsonb := '[]';
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'scorecards() needs a finite time, got %', at USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]') INTO facts FROM engineering.service_facts_at(at) f;
    FOR r IN
        SELECT x.scorecard, x.rule, x.expression, l.rank
        FROM engineering.scorecard_rules x
        JOIN engineering.scorecard_levels l ON l.scorecard = x.scorecard AND l.level = x.level
        ORDER BY x.scorecard, l.rank, x.rule
    LOOP
        BEGIN
            PERFORM engineering._scorecard_check_expression(r.rule, r.expression);
            EXECUTE format('SELECT coalesce(jsonb_object_agg(f.service, (%s)), ''{}'')
                            FROM jsonb_populate_recordset(NULL::engineering.service_facts, $1) AS f', r.expression)
                INTO results USING facts;
            evals := evals || jsonb_build_array(jsonb_build_object(
                'scorecard', r.scorecard, 'rule', r.rule, 'rank', r.rank, 'results', results));
        EXCEPTION WHEN OTHERS THEN
            evals := evals || jsonb_build_array(jsonb_build_object(
                'scorecard', r.scorecard, 'rule', r.rule, 'rank', r.rank, 'error', SQLERRM));
        END;
    END LOOP;

    RETURN QUERY
    WITH svc AS (
        SELECT f->>'service' AS service FROM jsonb_array_elements(facts) f),
    ev AS (
        SELECT e->>'scorecard' AS scorecard, e->>'rule' AS rule, (e->>'rank')::integer AS rank,
               e->'results' AS results, e->>'error' AS error
        FROM jsonb_array_elements(evals) e),
    outcome AS (
        SELECT s.service, ev.scorecard, ev.rule, ev.rank, ev.error,
               CASE WHEN ev.error IS NOT NULL THEN 'error'
                    WHEN (ev.results->>s.service)::boolean THEN 'pass'
                    ELSE 'fail' END AS outcome
        FROM svc s CROSS JOIN ev),
    cards AS (
        SELECT DISTINCT l.scorecard FROM engineering.scorecard_levels l)
    SELECT s.service, c.scorecard,
           (SELECT l.level FROM engineering.scorecard_levels l
            WHERE l.scorecard = c.scorecard
              AND NOT EXISTS (SELECT 1 FROM outcome o
                              WHERE o.service = s.service AND o.scorecard = c.scorecard
                                AND o.rank <= l.rank AND o.outcome <> 'pass')
            ORDER BY l.rank DESC LIMIT 1),
           coalesce((SELECT array_agg(o.rule ORDER BY o.rank, o.rule) FROM outcome o
                     WHERE o.service = s.service AND o.scorecard = c.scorecard AND o.outcome = 'pass'), '{}'),
           coalesce((SELECT array_agg(o.rule ORDER BY o.rank, o.rule) FROM outcome o
                     WHERE o.service = s.service AND o.scorecard = c.scorecard AND o.outcome = 'fail'), '{}'),
           coalesce((SELECT array_agg(o.rule || ': ' || o.error ORDER BY o.rank, o.rule) FROM outcome o
                     WHERE o.service = s.service AND o.scorecard = c.scorecard AND o.outcome = 'error'), '{}')
    FROM svc s CROSS JOIN cards c
    ORDER BY s.service, c.scorecard;
END;
$$;
COMMENT ON FUNCTION engineering.scorecards(timestamptz) IS
    'grades every service of service_facts_at(at) on every scorecard: the highest level whose rules and those of every lower level pass (NULL: not even the lowest), the rules passed, failed (false or NULL), and errors (rules that could not be evaluated, with the message; never a pass)';
