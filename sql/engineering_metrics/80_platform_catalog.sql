-- engineering_metrics: platform engineering, part 1: the services of the
-- catalog.
--
-- The catalog (catalog_entities, filled by backstage sources or by hand)
-- says which services exist, who owns them and how they were made; the
-- event tables say how they deliver and run.  Both meet on the service
-- name (catalog_entities.service).  Every figure is defined in README.md
-- ("Platform engineering").

------------------------------------------------------------------------------
-- The choices, in one row
------------------------------------------------------------------------------

CREATE TABLE engineering.platform_settings (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CHECK (singleton OR engineering._reject_value('platform_settings.singleton', singleton::text, 'platform_settings holds exactly one row')),
    eligible_types  text[] NOT NULL DEFAULT '{service}'
                    CHECK (cardinality(eligible_types) > 0
                           OR engineering._reject_value('platform_settings.eligible_types', eligible_types::text, 'name at least one component type')),
    pipeline_window interval NOT NULL DEFAULT '30 days'
                    CHECK ((pipeline_window > interval '0' AND pipeline_window <= interval '366 days')
                           OR engineering._reject_value('platform_settings.pipeline_window', pipeline_window::text, 'expected a window between 0 and 366 days'))
);
INSERT INTO engineering.platform_settings DEFAULT VALUES;

COMMENT ON TABLE engineering.platform_settings IS
    'the one row of platform-engineering defaults: which components golden-path adoption counts, and how far back pipeline paths look; edit it with UPDATE';
COMMENT ON COLUMN engineering.platform_settings.singleton IS 'always true: the table has exactly one row';
COMMENT ON COLUMN engineering.platform_settings.eligible_types IS
    'the component spec.type values that count as services for adoption and scorecards (default {service})';
COMMENT ON COLUMN engineering.platform_settings.pipeline_window IS
    'a pipeline golden path looks at the production deployments of this window before the time asked for (default 30 days)';

-- Keep edits across pg_dump/pg_restore, as dora_settings does.
CREATE FUNCTION engineering._platform_settings_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.platform_settings
       SET eligible_types = NEW.eligible_types,
           pipeline_window = NEW.pipeline_window
     WHERE singleton = NEW.singleton;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._platform_settings_restore() IS
    'internal trigger: an inserted platform_settings row (as pg_restore replays it) replaces the existing one';
CREATE TRIGGER platform_settings_restore BEFORE INSERT ON engineering.platform_settings
    FOR EACH ROW EXECUTE FUNCTION engineering._platform_settings_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.platform_settings', '');

------------------------------------------------------------------------------
-- catalog_services(at): the services of the catalog at a time
------------------------------------------------------------------------------

-- Components alive at a time: first seen by then and not removed by then.
-- Lifecycle, type and owner are the entity's current ones (the catalog
-- keeps no history of them).
CREATE FUNCTION engineering.catalog_services(at timestamptz DEFAULT now())
RETURNS TABLE (service text, entity_ref text, source_id integer, type text, lifecycle text,
               owner text, team text, system text, template text, tags text[], first_seen_at timestamptz,
               eligible boolean, components bigint)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT DISTINCT ON (c.service)
           c.service, c.entity_ref, c.source_id, c.type, c.lifecycle, c.owner,
           CASE WHEN c.owner LIKE 'group:%' THEN split_part(c.owner, '/', 2)
                WHEN c.owner LIKE 'user:%' THEN
                    (SELECT min(split_part(m.group_ref, '/', 2)) FROM engineering.catalog_memberships m
                      WHERE m.user_ref = c.owner AND m.source_id IS NOT DISTINCT FROM c.source_id) END,
           c.system, c.template, c.tags, c.first_seen_at, c.eligible,
           count(*) OVER (PARTITION BY c.service)
    FROM (SELECT e.*,
                 coalesce(e.type = ANY (s.eligible_types), false)
                 AND lower(coalesce(e.lifecycle, '')) <> 'deprecated' AS eligible
          FROM engineering.catalog_entities e
          CROSS JOIN engineering.platform_settings s
          WHERE e.kind = 'component' AND e.service IS NOT NULL
            AND e.first_seen_at <= catalog_services.at
            AND (e.removed_at IS NULL OR e.removed_at > catalog_services.at)) c
    ORDER BY c.service, c.eligible DESC, c.source_id, c.entity_ref;
END;
COMMENT ON FUNCTION engineering.catalog_services(timestamptz) IS
    'the services of the catalog at a time (components first seen by then and not removed by then), one row per service (the eligible component first when several map to it): owner, team (the owning group''s name), lifecycle, template, and whether it is eligible for adoption (type in platform_settings.eligible_types, lifecycle not deprecated)';
