-- engineering_metrics: platform engineering, part 2: golden paths, their
-- adoption, and whether they pay off.
--
-- A golden path is the supported way to build and ship a service: a
-- Backstage template to start from, a shared deploy pipeline, or whatever
-- an annotation marks.  Adoption counts the eligible services (components
-- of an eligible type, alive, not deprecated: catalog_services()) on each
-- path; dora_by_golden_path() puts the DORA keys of the services on each
-- path next to those of the services off every path.

------------------------------------------------------------------------------
-- The paths
------------------------------------------------------------------------------

CREATE TABLE engineering.golden_paths (
    name            text PRIMARY KEY
                    CHECK (btrim(name) <> '' OR engineering._reject_value('golden_paths.name', name, 'a golden path needs a non-empty name')),
    kind            text NOT NULL
                    CHECK (kind IN ('template', 'pipeline', 'annotation')
                           OR engineering._reject_value('golden_paths.kind', kind, 'expected template, pipeline or annotation')),
    pattern         text NOT NULL
                    CHECK (btrim(pattern) <> '' OR engineering._reject_value('golden_paths.pattern', pattern, 'a golden path needs a pattern')),
    description     text
);
COMMENT ON TABLE engineering.golden_paths IS
    'the golden paths of the platform, written by admins: a template, a pipeline pattern or an annotation that puts a service on the path';
COMMENT ON COLUMN engineering.golden_paths.name IS 'the path''s name, as reports show it';
COMMENT ON COLUMN engineering.golden_paths.kind IS
    'template (components created from the template), pipeline (services whose production deployments ran through a matching pipeline) or annotation (components carrying an annotation value)';
COMMENT ON COLUMN engineering.golden_paths.pattern IS
    'template: an entity ref (template:default/go-service, or just go-service); pipeline: a regular expression on pipeline_runs.pipeline; annotation: key=value';
COMMENT ON COLUMN engineering.golden_paths.description IS 'what the path gives a team';

CREATE FUNCTION engineering._golden_paths_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    CASE NEW.kind
    WHEN 'pipeline' THEN
        BEGIN
            PERFORM '' ~ NEW.pattern;
        EXCEPTION WHEN invalid_regular_expression THEN
            RAISE EXCEPTION 'golden path "%": pattern % is not a valid regular expression', NEW.name, quote_literal(NEW.pattern)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A POSIX regular expression matched against pipeline_runs.pipeline, for example ''^Deploy$''.';
        END;
    WHEN 'annotation' THEN
        IF NEW.pattern !~ '^[^=\s]+=' THEN
            RAISE EXCEPTION 'golden path "%": an annotation pattern is key=value, got %', NEW.name, quote_literal(NEW.pattern)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example ''acme.com/golden-path=web-service''.';
        END IF;
    WHEN 'template' THEN
        IF btrim(NEW.pattern) !~ '^([^:/\s]+:)?([^:/\s]+/)?[^:/\s]+$' THEN
            RAISE EXCEPTION 'golden path "%": a template pattern is an entity ref, got %', NEW.name, quote_literal(NEW.pattern)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'For example ''template:default/go-service'' or ''go-service''.';
        END IF;
    ELSE
        NULL;   -- refused by the kind's CHECK
    END CASE;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION engineering._golden_paths_check() IS
    'trigger: a golden path''s pattern must fit its kind (a valid regular expression, key=value, or an entity ref)';
CREATE TRIGGER golden_paths_check BEFORE INSERT OR UPDATE ON engineering.golden_paths
    FOR EACH ROW EXECUTE FUNCTION engineering._golden_paths_check();

SELECT pg_catalog.pg_extension_config_dump('engineering.golden_paths', '');

------------------------------------------------------------------------------
-- Who is on which path
------------------------------------------------------------------------------

CREATE FUNCTION engineering._eligible_components(at timestamptz)
RETURNS TABLE (service text, entity_ref text, template text, annotations jsonb)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT e.service, e.entity_ref, e.template, e.annotations
    FROM engineering.catalog_entities e
    CROSS JOIN engineering.platform_settings s
    WHERE e.kind = 'component' AND e.service IS NOT NULL
      AND e.type = ANY (s.eligible_types)
      AND lower(coalesce(e.lifecycle, '')) <> 'deprecated'
      AND e.first_seen_at <= _eligible_components.at
      AND (e.removed_at IS NULL OR e.removed_at > _eligible_components.at);
END;
COMMENT ON FUNCTION engineering._eligible_components(timestamptz) IS
    'internal: the components that count for adoption at a time: type in platform_settings.eligible_types, first seen by then, not removed by then, lifecycle not deprecated';

-- A pipeline path is about how a service ships, so it asks the event
-- tables: every successful production deployment of the window must have
-- a run of a matching pipeline that built its commit (a service that did
-- not deploy in the window is not on the path).
CREATE FUNCTION engineering.golden_path_services(at timestamptz DEFAULT now())
RETURNS TABLE (golden_path text, kind text, service text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH eligible AS (
        SELECT * FROM engineering._eligible_components(golden_path_services.at)),
    settings AS (
        SELECT p.pipeline_window,
               coalesce((SELECT d.production_environment FROM engineering.dora_settings d LIMIT 1), 'production') AS env
        FROM engineering.platform_settings p)
    SELECT DISTINCT g.name, g.kind, c.service
    FROM engineering.golden_paths g
    JOIN eligible c ON g.kind = 'template' AND c.template = engineering._catalog_ref(g.pattern, 'template')
    UNION
    SELECT g.name, g.kind, c.service
    FROM engineering.golden_paths g
    JOIN eligible c ON g.kind = 'annotation'
                   AND c.annotations->>split_part(g.pattern, '=', 1) = substr(g.pattern, strpos(g.pattern, '=') + 1)
    UNION
    SELECT g.name, g.kind, d.service
    FROM engineering.golden_paths g
    CROSS JOIN settings s
    JOIN engineering.deployments d
      ON g.kind = 'pipeline' AND d.status = 'success' AND d.environment = s.env
     AND d.finished_at >= golden_path_services.at - s.pipeline_window AND d.finished_at < golden_path_services.at
    WHERE d.service IN (SELECT c.service FROM eligible c)
    GROUP BY g.name, g.kind, d.service
    HAVING bool_and(EXISTS (SELECT 1 FROM engineering.pipeline_runs r
                            WHERE r.service = d.service AND r.commit_sha = d.commit_sha
                              AND r.pipeline ~ g.pattern))
    ORDER BY 1, 3;
END;
COMMENT ON FUNCTION engineering.golden_path_services(timestamptz) IS
    'the eligible services on each golden path at a time: template (an eligible component created from it), annotation (one carrying key=value), pipeline (every successful production deployment of the platform_settings.pipeline_window before at was built by a run of a matching pipeline, and there was one)';

------------------------------------------------------------------------------
-- Adoption
------------------------------------------------------------------------------

CREATE FUNCTION engineering.golden_path_adoption(at timestamptz DEFAULT now())
RETURNS TABLE (golden_path text, kind text, adopted bigint, eligible bigint, adoption_rate float8)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH eligible AS (
        SELECT count(DISTINCT c.service) AS n FROM engineering._eligible_components(golden_path_adoption.at) c),
    members AS (
        SELECT m.golden_path, m.service FROM engineering.golden_path_services(golden_path_adoption.at) m),
    rows AS (
        SELECT g.name AS golden_path, g.kind,
               (SELECT count(DISTINCT m.service) FROM members m WHERE m.golden_path = g.name) AS adopted
        FROM engineering.golden_paths g
        UNION ALL
        SELECT NULL, NULL, (SELECT count(DISTINCT m.service) FROM members m))
    SELECT r.golden_path, r.kind, r.adopted, e.n,
           CASE WHEN e.n > 0 THEN r.adopted::float8 / e.n END
    FROM rows r CROSS JOIN eligible e
    ORDER BY r.golden_path NULLS LAST;
END;
COMMENT ON FUNCTION engineering.golden_path_adoption(timestamptz) IS
    'golden-path adoption at a time: per path, and overall (golden_path NULL: on at least one path), the eligible services on it, the eligible services, and their ratio (NULL without eligible services)';

CREATE FUNCTION engineering.golden_path_adoption_history(from_ts timestamptz, to_ts timestamptz,
                                                         step interval DEFAULT '1 week')
RETURNS TABLE (at timestamptz, golden_path text, kind text, adopted bigint, eligible bigint, adoption_rate float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR to_ts < from_ts THEN
        RAISE EXCEPTION 'golden_path_adoption_history() needs a finite window, got [%, %]', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF step IS NULL OR step <= interval '0' THEN
        RAISE EXCEPTION 'step must be a positive interval, got %', step USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(*) FROM generate_series(from_ts, to_ts, step) LIMIT 10001) > 10000 THEN
        RAISE EXCEPTION 'the window holds more than 10000 steps of %', step
            USING ERRCODE = 'program_limit_exceeded', HINT = 'Use a longer step.';
    END IF;
    RETURN QUERY
        SELECT t.t, a.golden_path, a.kind, a.adopted, a.eligible, a.adoption_rate
        FROM (SELECT g FROM generate_series(from_ts, to_ts, step) g UNION SELECT to_ts) AS t(t)
        CROSS JOIN LATERAL engineering.golden_path_adoption(t.t) a
        ORDER BY t.t, a.golden_path NULLS LAST;
END;
$$;
COMMENT ON FUNCTION engineering.golden_path_adoption_history(timestamptz, timestamptz, interval) IS
    'golden_path_adoption() at from_ts, from_ts + step, ... and at to_ts (the latest point is always the end of the window; at most 10000 steps), for a time series';

------------------------------------------------------------------------------
-- Do golden paths pay off?
------------------------------------------------------------------------------

CREATE FUNCTION engineering.dora_by_golden_path(from_ts timestamptz, to_ts timestamptz,
                                                environment text DEFAULT NULL,
                                                benchmark_year integer DEFAULT NULL,
                                                lead_time_start text DEFAULT NULL)
RETURNS TABLE (golden_path text, kind text, on_path boolean, services bigint,
               deployments bigint, deployment_days_per_week float8, deployment_frequency_level text,
               lead_time interval, lead_time_level text,
               change_failure_rate float8, change_failure_rate_level text,
               time_to_restore interval, time_to_restore_level text,
               failed_deployment_recovery_time interval, failed_deployment_recovery_time_level text,
               rework_rate float8)
LANGUAGE sql STABLE PARALLEL SAFE
SET jit = off
BEGIN ATOMIC
    WITH eligible AS (
        SELECT DISTINCT c.service FROM engineering._eligible_components(dora_by_golden_path.to_ts) c),
    members AS (
        SELECT m.golden_path, m.service FROM engineering.golden_path_services(dora_by_golden_path.to_ts) m),
    groups AS (
        SELECT g.name AS golden_path, g.kind, true AS on_path,
               ARRAY(SELECT m.service FROM members m WHERE m.golden_path = g.name ORDER BY 1) AS members, 1 AS o
        FROM engineering.golden_paths g
        UNION ALL
        SELECT NULL, NULL, true, ARRAY(SELECT DISTINCT m.service FROM members m ORDER BY 1), 2
        UNION ALL
        SELECT NULL, NULL, false,
               ARRAY(SELECT e.service FROM eligible e
                     WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.service = e.service) ORDER BY 1), 3)
    SELECT g.golden_path, g.kind, g.on_path, cardinality(g.members)::bigint,
           r.deployments, r.deployment_days_per_week, r.deployment_frequency_level,
           r.lead_time, r.lead_time_level, r.change_failure_rate, r.change_failure_rate_level,
           r.time_to_restore, r.time_to_restore_level, r.failed_deployment_recovery_time,
           r.failed_deployment_recovery_time_level, r.rework_rate
    FROM groups g
    CROSS JOIN LATERAL engineering._dora_report(dora_by_golden_path.from_ts, dora_by_golden_path.to_ts, g.members, false,
                                                dora_by_golden_path.environment, dora_by_golden_path.benchmark_year,
                                                dora_by_golden_path.lead_time_start) r
    ORDER BY g.o, g.golden_path;
END;
COMMENT ON FUNCTION engineering.dora_by_golden_path(timestamptz, timestamptz, text, integer, text) IS
    'the DORA keys of dora() over [from_ts, to_ts) for the services on each golden path (taken together), on at least one (golden_path NULL, on_path true) and off every path (on_path false); membership and eligibility as at to_ts';
