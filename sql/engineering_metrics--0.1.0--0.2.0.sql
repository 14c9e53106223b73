-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 19: one list of vendor kinds, the connector table in src/connectors.c
CREATE FUNCTION engineering._connector_kinds()
RETURNS text[]
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_kinds';
COMMENT ON FUNCTION engineering._connector_kinds() IS
    'internal: the kinds of source this build has a connector for (src/connectors.c), the one list of valid sources.kind values';

CREATE FUNCTION engineering._connector_kind_list()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_connector_kind_list';
COMMENT ON FUNCTION engineering._connector_kind_list() IS
    'internal: the kinds of _connector_kinds() as an English list ("github, gitlab or jenkins"), for error hints';

ALTER TABLE engineering.sources
    DROP CONSTRAINT sources_kind_check,
    ADD CONSTRAINT sources_kind_check
        CHECK (kind = ANY (engineering._connector_kinds())
               OR engineering._reject_value('sources.kind', kind, 'expected ' || engineering._connector_kind_list()));
COMMENT ON COLUMN engineering.sources.kind IS 'connector: one of engineering._connector_kinds() (github, gitlab, ...)';

CREATE OR REPLACE FUNCTION engineering._validate_source(kind text, base_url text, config jsonb)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    IF kind IS NULL OR NOT kind = ANY (engineering._connector_kinds()) THEN
        RAISE EXCEPTION 'invalid source kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Expected ' || engineering._connector_kind_list() || '.';
    END IF;
    PERFORM engineering._validate_source_config(kind, coalesce(config, '{}'));
    RETURN engineering._normalize_base_url(kind, base_url);
END;
$$;
COMMENT ON FUNCTION engineering._validate_source(text, text, jsonb) IS
    'validates kind, base_url and config of a source for add_source() and alter_source(); returns the base_url to store';

-- issue 14: the Backstage catalog, golden paths and scorecards

-- from 46_backstage.sql
-- engineering_metrics: the Backstage connector (software catalog API,
-- GET /entities/by-query), which feeds the service catalog.
--
-- Streams (sync_tasks.stream):
--   entities  GET /entities/by-query?filter=<config filter>&limit=<page_size>, then
--             GET /entities/by-query?cursor=<pageInfo.nextCursor>&limit=<page_size>
--             (a cursor carries the filter and the order; Backstage refuses
--             neither, but ignores a filter sent with it)
--
-- Every sync reads the complete listing: the catalog has no change feed,
-- and only a complete listing tells which entities went away.  Each page's
-- entities are upserted with last_seen_at = the page's transaction time;
-- the last page (no nextCursor) marks removed every entity of the source
-- not seen since the listing started.  An interrupted listing resumes from
-- its queued cursor and marks nothing until it completes.
--
-- Watermark in sources.cursor: listed_at (when the last complete listing
-- started), entities (how many it held) and total_items (what Backstage
-- said it would hold).

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

CREATE TABLE engineering.catalog_entities (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id       integer REFERENCES engineering.sources (id),
    entity_ref      text NOT NULL
                    CHECK (entity_ref ~ '^[a-z0-9][^:/]*:[^:/]+/[^:/]+$'
                           OR engineering._reject_value('catalog_entities.entity_ref', entity_ref, 'expected kind:namespace/name in lower case')),
    kind            text NOT NULL
                    CHECK ((btrim(kind) <> '' AND kind = lower(kind))
                           OR engineering._reject_value('catalog_entities.kind', kind, 'kind must be a non-empty lower-case word (component, group, ...)')),
    type            text,
    namespace       text NOT NULL DEFAULT 'default',
    name            text NOT NULL
                    CHECK (btrim(name) <> '' OR engineering._reject_value('catalog_entities.name', name, 'name must not be empty')),
    title           text,
    owner           text,
    lifecycle       text,
    system          text,
    service         text
                    CHECK (service IS NULL OR btrim(service) <> ''
                           OR engineering._reject_value('catalog_entities.service', service, 'service must not be empty')),
    template        text,
    tags            text[] NOT NULL DEFAULT '{}',
    annotations     jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(annotations) = 'object'
                           OR engineering._reject_value('catalog_entities.annotations', annotations::text, 'annotations must be a JSON object')),
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    uid             text,
    description     text,
    spec            jsonb NOT NULL DEFAULT '{}',
    relations       jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT catalog_entities_source_entity_ref_key UNIQUE (source_id, entity_ref),
    CONSTRAINT catalog_entities_ref_matches_parts
        CHECK (entity_ref = lower(kind || ':' || namespace || '/' || name)
               OR engineering._reject_value('catalog_entities.entity_ref', entity_ref,
                                            'entity_ref must be lower(kind:namespace/name)')),
    CONSTRAINT catalog_entities_last_seen_after_first
        CHECK (last_seen_at >= first_seen_at
               OR engineering._reject_order('catalog_entities.last_seen_at', last_seen_at, 'first_seen_at', first_seen_at)),
    CONSTRAINT catalog_entities_removed_after_first
        CHECK (removed_at >= first_seen_at OR removed_at IS NULL
               OR engineering._reject_order('catalog_entities.removed_at', removed_at, 'first_seen_at', first_seen_at))
);
CREATE UNIQUE INDEX catalog_entities_manual_entity_ref_key
    ON engineering.catalog_entities (entity_ref) WHERE source_id IS NULL;
CREATE INDEX catalog_entities_service_idx ON engineering.catalog_entities (service) WHERE kind = 'component';
CREATE INDEX catalog_entities_kind_idx ON engineering.catalog_entities (kind, source_id);

COMMENT ON TABLE engineering.catalog_entities IS
    'the service catalog: one row per Backstage entity (components, APIs, templates, groups, users, ...) of a source, kept after it leaves the catalog (removed_at) so that adoption history holds';
COMMENT ON COLUMN engineering.catalog_entities.id IS 'surrogate key';
COMMENT ON COLUMN engineering.catalog_entities.source_id IS 'the backstage source that synced this row; NULL for rows inserted by hand';
COMMENT ON COLUMN engineering.catalog_entities.entity_ref IS 'kind:namespace/name in lower case, as Backstage compares entity references; unique per source';
COMMENT ON COLUMN engineering.catalog_entities.kind IS 'entity kind in lower case (component, api, resource, system, domain, template, group, user, ...)';
COMMENT ON COLUMN engineering.catalog_entities.type IS 'spec.type (service, website, library for components; team for groups; ...)';
COMMENT ON COLUMN engineering.catalog_entities.namespace IS 'metadata.namespace (default when absent)';
COMMENT ON COLUMN engineering.catalog_entities.name IS 'metadata.name as written in the catalog';
COMMENT ON COLUMN engineering.catalog_entities.title IS 'metadata.title (users: spec.profile.displayName when there is no title)';
COMMENT ON COLUMN engineering.catalog_entities.owner IS 'spec.owner as a full entity ref (group:default/payments), lower case';
COMMENT ON COLUMN engineering.catalog_entities.lifecycle IS 'spec.lifecycle (experimental, production, deprecated, ...)';
COMMENT ON COLUMN engineering.catalog_entities.system IS 'spec.system as a full entity ref (system:default/checkout), lower case';
COMMENT ON COLUMN engineering.catalog_entities.service IS
    'components only: the service name the event tables use (the configured service_annotation, else service_map, else the GitHub/GitLab source of its project-slug annotation, else the entity name)';
COMMENT ON COLUMN engineering.catalog_entities.template IS
    'the template the entity was created from (annotation backstage.io/source-template, as a full lower-case ref); NULL when not created from a template';
COMMENT ON COLUMN engineering.catalog_entities.tags IS 'metadata.tags';
COMMENT ON COLUMN engineering.catalog_entities.annotations IS 'metadata.annotations as a JSON object of strings';
COMMENT ON COLUMN engineering.catalog_entities.first_seen_at IS 'when a sync first saw the entity';
COMMENT ON COLUMN engineering.catalog_entities.last_seen_at IS 'when a sync last saw the entity';
COMMENT ON COLUMN engineering.catalog_entities.removed_at IS 'when a complete listing first missed the entity; NULL while it is in the catalog (cleared if it comes back)';
COMMENT ON COLUMN engineering.catalog_entities.uid IS 'metadata.uid, Backstage''s own id of the entity';
COMMENT ON COLUMN engineering.catalog_entities.description IS 'metadata.description';
COMMENT ON COLUMN engineering.catalog_entities.spec IS 'the entity''s spec as Backstage returned it (profile, memberOf, members, parent, ...)';
COMMENT ON COLUMN engineering.catalog_entities.relations IS 'the entity''s relations as [{"type": ..., "targetRef": ...}] with lower-case refs';

SELECT pg_catalog.pg_extension_config_dump('engineering.catalog_entities', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.catalog_entities_id_seq', '');

------------------------------------------------------------------------------
-- Entity references
------------------------------------------------------------------------------

CREATE FUNCTION engineering._catalog_ref(ref text, default_kind text, default_namespace text DEFAULT 'default')
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN ref IS NULL OR btrim(ref) = '' THEN NULL
    ELSE lower(
        coalesce(substring(btrim(ref) FROM '^([^:/]+):'), default_kind) || ':'
        || coalesce(substring(regexp_replace(btrim(ref), '^[^:/]+:', '') FROM '^([^/]+)/'),
                    nullif(default_namespace, ''), 'default') || '/'
        || regexp_replace(btrim(ref), '^([^:/]+:)?([^/]+/)?', '')) END;
COMMENT ON FUNCTION engineering._catalog_ref(text, text, text) IS
    'a Backstage entity reference "[kind:][namespace/]name" completed with the defaults and lower-cased, as Backstage compares them (NULL for NULL or '''')';

------------------------------------------------------------------------------
-- Teams and people, read from the live Group and User entities
------------------------------------------------------------------------------

CREATE VIEW engineering.catalog_groups AS
SELECT e.source_id, e.entity_ref AS group_ref, e.name, e.namespace,
       coalesce(e.title, nullif(e.spec->'profile'->>'displayName', '')) AS title,
       e.type,
       engineering._catalog_ref(e.spec->>'parent', 'group', e.namespace) AS parent_ref,
       nullif(e.spec->'profile'->>'email', '') AS email
FROM engineering.catalog_entities e
WHERE e.kind = 'group' AND e.removed_at IS NULL;
COMMENT ON VIEW engineering.catalog_groups IS 'the groups (teams, departments) in the catalog now';
COMMENT ON COLUMN engineering.catalog_groups.source_id IS 'the backstage source';
COMMENT ON COLUMN engineering.catalog_groups.group_ref IS 'group:namespace/name, lower case (what owner and memberships refer to)';
COMMENT ON COLUMN engineering.catalog_groups.name IS 'metadata.name';
COMMENT ON COLUMN engineering.catalog_groups.namespace IS 'metadata.namespace';
COMMENT ON COLUMN engineering.catalog_groups.title IS 'metadata.title, else spec.profile.displayName';
COMMENT ON COLUMN engineering.catalog_groups.type IS 'spec.type (team, business-unit, ...)';
COMMENT ON COLUMN engineering.catalog_groups.parent_ref IS 'spec.parent as a full ref: the group this one belongs to';
COMMENT ON COLUMN engineering.catalog_groups.email IS 'spec.profile.email';

CREATE VIEW engineering.catalog_users AS
SELECT e.source_id, e.entity_ref AS user_ref, e.name, e.namespace,
       coalesce(nullif(e.spec->'profile'->>'displayName', ''), e.title) AS display_name,
       nullif(e.spec->'profile'->>'email', '') AS email
FROM engineering.catalog_entities e
WHERE e.kind = 'user' AND e.removed_at IS NULL;
COMMENT ON VIEW engineering.catalog_users IS 'the users in the catalog now';
COMMENT ON COLUMN engineering.catalog_users.source_id IS 'the backstage source';
COMMENT ON COLUMN engineering.catalog_users.user_ref IS 'user:namespace/name, lower case';
COMMENT ON COLUMN engineering.catalog_users.name IS 'metadata.name (often the login)';
COMMENT ON COLUMN engineering.catalog_users.namespace IS 'metadata.namespace';
COMMENT ON COLUMN engineering.catalog_users.display_name IS 'spec.profile.displayName, else metadata.title';
COMMENT ON COLUMN engineering.catalog_users.email IS 'spec.profile.email';

-- Backstage states membership three ways (User spec.memberOf, Group
-- spec.members, and the memberOf/hasMember relations it derives from
-- both); any one of them makes a member.
CREATE VIEW engineering.catalog_memberships AS
SELECT DISTINCT m.source_id, m.user_ref, m.group_ref
FROM (
    SELECT u.source_id, u.entity_ref AS user_ref, engineering._catalog_ref(g.ref, 'group', u.namespace) AS group_ref
    FROM engineering.catalog_entities u
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(u.spec->'memberOf') = 'array' THEN u.spec->'memberOf' ELSE '[]' END) g(ref)
    WHERE u.kind = 'user' AND u.removed_at IS NULL
    UNION ALL
    SELECT g.source_id, engineering._catalog_ref(m.ref, 'user', g.namespace), g.entity_ref
    FROM engineering.catalog_entities g
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(g.spec->'members') = 'array' THEN g.spec->'members' ELSE '[]' END) m(ref)
    WHERE g.kind = 'group' AND g.removed_at IS NULL
    UNION ALL
    SELECT e.source_id,
           CASE WHEN r->>'type' = 'memberOf' THEN e.entity_ref ELSE r->>'targetRef' END,
           CASE WHEN r->>'type' = 'memberOf' THEN r->>'targetRef' ELSE e.entity_ref END
    FROM engineering.catalog_entities e
    CROSS JOIN LATERAL jsonb_array_elements(e.relations) r
    WHERE e.kind IN ('user', 'group') AND e.removed_at IS NULL
      AND ((e.kind = 'user' AND r->>'type' = 'memberOf') OR (e.kind = 'group' AND r->>'type' = 'hasMember'))
) m
WHERE m.user_ref LIKE 'user:%' AND m.group_ref LIKE 'group:%';
COMMENT ON VIEW engineering.catalog_memberships IS
    'who belongs to which group now: from User spec.memberOf, Group spec.members and the memberOf/hasMember relations of live entities';
COMMENT ON COLUMN engineering.catalog_memberships.source_id IS 'the backstage source';
COMMENT ON COLUMN engineering.catalog_memberships.user_ref IS 'user:namespace/name, lower case';
COMMENT ON COLUMN engineering.catalog_memberships.group_ref IS 'group:namespace/name, lower case (direct membership; parents are in catalog_groups.parent_ref)';

------------------------------------------------------------------------------
-- Configuration
------------------------------------------------------------------------------

CREATE FUNCTION engineering._backstage_filters(config jsonb)
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE jsonb_typeof(config->'filter')
    WHEN 'string' THEN ARRAY[config->>'filter']
    WHEN 'array' THEN ARRAY(SELECT f FROM jsonb_array_elements_text(config->'filter') WITH ORDINALITY AS x(f, o) ORDER BY o)
    ELSE ARRAY['kind=component,kind=api,kind=resource,kind=system,kind=domain,kind=template,kind=group,kind=user'] END;
COMMENT ON FUNCTION engineering._backstage_filters(jsonb) IS
    'internal: the filter parameters of a backstage source (config filter, a string or an array of strings that Backstage ORs; default every kind the analytics read)';

CREATE FUNCTION engineering._backstage_page_size(config jsonb)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce((config->>'page_size')::integer, 200);
COMMENT ON FUNCTION engineering._backstage_page_size(jsonb) IS
    'internal: entities asked for per page (config page_size, default 200)';

CREATE FUNCTION engineering._backstage_validate(config jsonb)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    unknown text;
BEGIN
    SELECT string_agg(k, ', ' ORDER BY k) INTO unknown
    FROM jsonb_object_keys(config) k
    WHERE k NOT IN ('filter', 'page_size', 'service_annotation', 'service_map', 'token_file', 'token_env');
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown config key(s) for a backstage source: %', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A backstage source understands filter, page_size, service_annotation, service_map, token_file and token_env.';
    END IF;
    IF config ? 'filter' AND NOT (
        (jsonb_typeof(config->'filter') = 'string' AND btrim(config->>'filter') <> '' AND length(config->>'filter') <= 2000)
        OR (jsonb_typeof(config->'filter') = 'array' AND jsonb_array_length(config->'filter') BETWEEN 1 AND 20
            AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(config->'filter') f
                            WHERE jsonb_typeof(f) <> 'string' OR btrim(f #>> '{}') = '' OR length(f #>> '{}') > 2000))) THEN
        RAISE EXCEPTION 'config filter must be a Backstage entity filter, or an array of them (ORed)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example "kind=component,kind=api,kind=template,kind=group,kind=user" (the same key repeated matches any of its values).';
    END IF;
    IF config ? 'page_size' AND (jsonb_typeof(config->'page_size') <> 'number'
        OR (config->>'page_size')::numeric <> trunc((config->>'page_size')::numeric)
        OR (config->>'page_size')::numeric NOT BETWEEN 1 AND 1000) THEN
        RAISE EXCEPTION 'config page_size must be a whole number between 1 and 1000, got %', config->'page_size'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF config ? 'service_annotation' AND (jsonb_typeof(config->'service_annotation') <> 'string'
                                          OR btrim(config->>'service_annotation') = '') THEN
        RAISE EXCEPTION 'config service_annotation must name an annotation, such as "engineering-metrics/service"'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_validate(jsonb) IS
    'checks a backstage source''s config: optional filter (string or array of strings), page_size (1..1000), service_annotation, service_map; no other keys';

-- The repository annotations Backstage's GitHub and GitLab plugins read
-- tie a component to the service name those sources give its events, so
-- that the catalog and the event tables agree without a service_map.
CREATE FUNCTION engineering._backstage_service(config jsonb, entity jsonb)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(
        CASE WHEN config ? 'service_annotation'
             THEN nullif(btrim(entity->'metadata'->'annotations'->>(config->>'service_annotation')), '') END,
        config->'service_map'->>(entity->'metadata'->>'name'),
        (SELECT engineering._github_service(s.config) FROM engineering.sources s
          WHERE s.kind = 'github'
            AND lower(s.config->>'repository') = lower(btrim(entity->'metadata'->'annotations'->>'github.com/project-slug'))
          ORDER BY s.id LIMIT 1),
        (SELECT engineering._gitlab_service(s.config) FROM engineering.sources s
          WHERE s.kind = 'gitlab'
            AND lower(s.config->>'project') = lower(btrim(entity->'metadata'->'annotations'->>'gitlab.com/project-slug'))
          ORDER BY s.id LIMIT 1),
        entity->'metadata'->>'name');
END;
COMMENT ON FUNCTION engineering._backstage_service(jsonb, jsonb) IS
    'service name of a component: its config service_annotation value, else service_map[name], else the service of the github (gitlab) source whose repository (project) is its github.com/project-slug (gitlab.com/project-slug) annotation, else its name';

CREATE FUNCTION engineering._backstage_url(config jsonb, cursor text DEFAULT NULL)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '/entities/by-query?'
    || CASE WHEN cursor IS NOT NULL THEN 'cursor=' || engineering._urlencode(cursor)
            ELSE (SELECT string_agg('filter=' || engineering._urlencode(f), '&' ORDER BY o)
                  FROM unnest(engineering._backstage_filters(config)) WITH ORDINALITY AS x(f, o)) END
    || '&limit=' || engineering._backstage_page_size(config);
COMMENT ON FUNCTION engineering._backstage_url(jsonb, text) IS
    'internal: path of the first page of GET /entities/by-query (the config filters), or of the page a cursor points at (the cursor carries the filters)';

------------------------------------------------------------------------------
-- Mapping (fixtures in sql/backstage.sql)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._backstage_map_entities(src_id integer, config jsonb, items jsonb, seen_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'expected a JSON array of Backstage entities, got %', coalesce(jsonb_typeof(items), 'nothing')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- An entity without a kind or a name cannot be referred to: skipped
    -- (Backstage itself never returns one).
    WITH raw AS (
        SELECT DISTINCT ON (ref) e, ref, ns
        FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, o),
             LATERAL (SELECT coalesce(nullif(btrim(e->'metadata'->>'namespace'), ''), 'default') AS ns) n,
             LATERAL (SELECT lower((e->>'kind') || ':' || n.ns || '/' || (e->'metadata'->>'name')) AS ref) r
        WHERE jsonb_typeof(e) = 'object' AND jsonb_typeof(e->'kind') = 'string' AND btrim(e->>'kind') <> ''
          AND jsonb_typeof(e->'metadata') = 'object' AND jsonb_typeof(e->'metadata'->'name') = 'string'
          AND btrim(e->'metadata'->>'name') <> '' AND e->>'kind' !~ '[:/]' AND e->'metadata'->>'name' !~ '[:/]'
          AND n.ns !~ '[:/]'
        ORDER BY ref, o DESC),
    m AS (
        SELECT r.ref AS entity_ref, lower(e->>'kind') AS kind,
               CASE WHEN jsonb_typeof(e->'spec'->'type') = 'string' THEN nullif(btrim(e->'spec'->>'type'), '') END AS type,
               r.ns AS namespace, e->'metadata'->>'name' AS name,
               coalesce(CASE WHEN jsonb_typeof(e->'metadata'->'title') = 'string' THEN nullif(btrim(e->'metadata'->>'title'), '') END,
                        CASE WHEN lower(e->>'kind') = 'user' AND jsonb_typeof(e->'spec'->'profile'->'displayName') = 'string'
                             THEN nullif(btrim(e->'spec'->'profile'->>'displayName'), '') END) AS title,
               CASE WHEN jsonb_typeof(e->'spec'->'owner') = 'string'
                    THEN engineering._catalog_ref(e->'spec'->>'owner', 'group', r.ns) END AS owner,
               CASE WHEN jsonb_typeof(e->'spec'->'lifecycle') = 'string' THEN nullif(btrim(e->'spec'->>'lifecycle'), '') END AS lifecycle,
               CASE WHEN jsonb_typeof(e->'spec'->'system') = 'string'
                    THEN engineering._catalog_ref(e->'spec'->>'system', 'system', r.ns) END AS system,
               CASE WHEN lower(e->>'kind') = 'component' THEN engineering._backstage_service(config, e) END AS service,
               CASE WHEN jsonb_typeof(e->'metadata'->'annotations'->'backstage.io/source-template') = 'string'
                    THEN engineering._catalog_ref(e->'metadata'->'annotations'->>'backstage.io/source-template', 'template', r.ns) END AS template,
               ARRAY(SELECT t #>> '{}' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e->'metadata'->'tags') = 'array'
                                                             THEN e->'metadata'->'tags' ELSE '[]' END) WITH ORDINALITY AS g(t, o)
                     WHERE jsonb_typeof(t) = 'string' ORDER BY o) AS tags_json,
               coalesce((SELECT jsonb_object_agg(a.key, a.value) FROM jsonb_each(
                             CASE WHEN jsonb_typeof(e->'metadata'->'annotations') = 'object'
                                  THEN e->'metadata'->'annotations' ELSE '{}' END) a
                         WHERE jsonb_typeof(a.value) = 'string'), '{}') AS annotations,
               CASE WHEN jsonb_typeof(e->'metadata'->'uid') = 'string' THEN e->'metadata'->>'uid' END AS uid,
               CASE WHEN jsonb_typeof(e->'metadata'->'description') = 'string'
                    THEN nullif(btrim(e->'metadata'->>'description'), '') END AS description,
               CASE WHEN jsonb_typeof(e->'spec') = 'object' THEN e->'spec' ELSE '{}' END AS spec,
               coalesce((SELECT jsonb_agg(jsonb_build_object('type', rel->>'type', 'targetRef', t.ref) ORDER BY o)
                         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(e->'relations') = 'array'
                                                        THEN e->'relations' ELSE '[]' END) WITH ORDINALITY AS y(rel, o),
                              LATERAL (SELECT CASE
                                  WHEN jsonb_typeof(rel->'targetRef') = 'string' THEN engineering._catalog_ref(rel->>'targetRef', 'component', r.ns)
                                  WHEN jsonb_typeof(rel->'target') = 'object'
                                  THEN lower((rel->'target'->>'kind') || ':' || coalesce(rel->'target'->>'namespace', 'default')
                                             || '/' || (rel->'target'->>'name')) END AS ref) t
                         WHERE jsonb_typeof(rel->'type') = 'string' AND t.ref IS NOT NULL), '[]') AS relations
        FROM raw r),
    old AS (
        SELECT m.entity_ref,
               c.id IS NULL OR c.removed_at IS NOT NULL
               OR (c.kind, c.type, c.namespace, c.name, c.title, c.owner, c.lifecycle, c.system, c.service, c.template,
                   c.tags, c.annotations, c.uid, c.description, c.spec, c.relations)
                  IS DISTINCT FROM
                  (m.kind, m.type, m.namespace, m.name, m.title, m.owner, m.lifecycle, m.system, m.service, m.template,
                   m.tags_json, m.annotations, m.uid, m.description, m.spec, m.relations) AS changed
        FROM m LEFT JOIN engineering.catalog_entities c ON c.source_id = src_id AND c.entity_ref = m.entity_ref),
    up AS (
        INSERT INTO engineering.catalog_entities AS c
            (source_id, entity_ref, kind, type, namespace, name, title, owner, lifecycle, system, service, template,
             tags, annotations, first_seen_at, last_seen_at, removed_at, uid, description, spec, relations)
        SELECT src_id, m.entity_ref, m.kind, m.type, m.namespace, m.name, m.title, m.owner, m.lifecycle, m.system,
               m.service, m.template, m.tags_json, m.annotations, seen_at, seen_at, NULL, m.uid, m.description,
               m.spec, m.relations
        FROM m
        ON CONFLICT (source_id, entity_ref) DO UPDATE SET
            kind = EXCLUDED.kind, type = EXCLUDED.type, namespace = EXCLUDED.namespace, name = EXCLUDED.name,
            title = EXCLUDED.title, owner = EXCLUDED.owner, lifecycle = EXCLUDED.lifecycle, system = EXCLUDED.system,
            service = EXCLUDED.service, template = EXCLUDED.template, tags = EXCLUDED.tags,
            annotations = EXCLUDED.annotations,
            first_seen_at = least(c.first_seen_at, EXCLUDED.first_seen_at),
            last_seen_at = greatest(c.last_seen_at, EXCLUDED.last_seen_at),
            removed_at = NULL, uid = EXCLUDED.uid, description = EXCLUDED.description, spec = EXCLUDED.spec,
            relations = EXCLUDED.relations
        RETURNING c.entity_ref)
    SELECT count(*) INTO n FROM up JOIN old USING (entity_ref) WHERE old.changed;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_map_entities(integer, jsonb, jsonb, timestamptz) IS
    'upserts Backstage entities seen at seen_at (key: source and lower-case kind:namespace/name; a removed entity that is back is live again); returns the rows whose content changed';

CREATE FUNCTION engineering._backstage_mark_removed(src_id integer, listing_started timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE engineering.catalog_entities c SET removed_at = greatest(now(), c.first_seen_at)
    WHERE c.source_id = src_id AND c.removed_at IS NULL AND c.last_seen_at < listing_started;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_mark_removed(integer, timestamptz) IS
    'internal: after a complete listing, marks removed (now) the entities of the source it did not see; returns how many';

------------------------------------------------------------------------------
-- Plan and ingest (the connector interface)
------------------------------------------------------------------------------

CREATE FUNCTION engineering._backstage_plan(src engineering.sources)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
BEGIN
    PERFORM engineering._enqueue(src.id, 'entities', engineering._backstage_url(src.config),
        jsonb_build_object('listing_started', now(), 'seen', 0));
END;
$$;
COMMENT ON FUNCTION engineering._backstage_plan(engineering.sources) IS
    'connector interface: queues the first page of a complete listing of the entities the config filter selects';

CREATE FUNCTION engineering._backstage_ingest(src engineering.sources, task engineering.sync_tasks,
                                              status integer, headers jsonb, body jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, engineering, pg_temp
AS $$
DECLARE
    listing_started timestamptz := (task.payload->>'listing_started')::timestamptz;
    items jsonb := body->'items';
    next_cursor text;
    seen bigint;
    n bigint;
BEGIN
    IF task.stream IS DISTINCT FROM 'entities' THEN
        RAISE EXCEPTION 'unknown Backstage stream "%"', task.stream USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(body) IS DISTINCT FROM 'object' OR jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'unexpected Backstage response: expected {"items": [...], "pageInfo": {...}}'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The base_url must be the catalog API root, e.g. https://backstage.example.com/api/catalog.';
    END IF;
    n := engineering._backstage_map_entities(src.id, src.config, items, now());
    seen := coalesce((task.payload->>'seen')::bigint, 0) + jsonb_array_length(items);

    next_cursor := CASE WHEN jsonb_typeof(body->'pageInfo'->'nextCursor') = 'string'
                        THEN nullif(btrim(body->'pageInfo'->>'nextCursor'), '') END;
    IF next_cursor IS NOT NULL AND jsonb_array_length(items) > 0 THEN
        PERFORM engineering._enqueue(src.id, 'entities', engineering._backstage_url(src.config, next_cursor),
            task.payload || jsonb_strip_nulls(jsonb_build_object(
                'seen', seen, 'total_items', coalesce(task.payload->'total_items', body->'totalItems'))));
    ELSE
        -- the listing is complete: what it did not hold has left the catalog
        n := n + engineering._backstage_mark_removed(src.id, listing_started);
        UPDATE engineering.sources SET cursor = cursor || jsonb_strip_nulls(jsonb_build_object(
            'listed_at', engineering._iso8601(listing_started), 'entities', seen,
            'total_items', coalesce(task.payload->'total_items', body->'totalItems')))
        WHERE id = src.id;
    END IF;
    RETURN n;
END;
$$;
COMMENT ON FUNCTION engineering._backstage_ingest(engineering.sources, engineering.sync_tasks, integer, jsonb, jsonb) IS
    'connector interface: maps a page of entities, follows pageInfo.nextCursor, and after the last page marks removed what the listing did not hold; returns rows changed';

-- the catalog's grants (70_roles.sql)
------------------------------------------------------------------------------
-- The service catalog (the Backstage connector's tables): read like the
-- events, and written like them by writers (hand-made catalogs, start
-- dates moved back).
------------------------------------------------------------------------------

GRANT SELECT ON
    engineering.catalog_entities, engineering.catalog_groups, engineering.catalog_users,
    engineering.catalog_memberships
TO engineering_reader;
GRANT INSERT, UPDATE, DELETE ON engineering.catalog_entities TO engineering_writer;

-- dora() becomes a wrapper of _dora_report(), which dora_by_golden_path() shares (53_dora_report.sql)
-- _dora_report() is the report for a set of services: every service
-- (services NULL), one (single: dora(service => ...)), or the services of
-- a group taken together, as one row (dora_by_golden_path()); dora() and
-- the group reports share one definition of every figure.
CREATE FUNCTION engineering._dora_report(
    from_ts         timestamptz,
    to_ts           timestamptz,
    services        text[],
    single          boolean,
    environment     text,
    benchmark_year  integer,
    lead_time_start text)
RETURNS SETOF engineering.dora_report
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- JIT compiling these plans costs more than it saves (measured: dora() for
-- a year of 1M changes takes twice as long with jit = on)
SET jit = off
AS $fn$
DECLARE
    settings engineering.dora_settings;
    env text;
    grading_year integer;
    start_from text;
    start_expr text;
    service_filter text := '';
    incident_filter text := '';
    wanted_rows text;
BEGIN
    SELECT * INTO settings FROM engineering.dora_settings LIMIT 1;
    env := coalesce(environment, settings.production_environment, 'production');
    grading_year := coalesce(benchmark_year, settings.benchmark_year, 2023);
    start_from := coalesce(lead_time_start, settings.lead_time_start, 'committed_at');

    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'dora() needs a finite window, got [%, %)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'the window ends (%) before it starts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.dora_benchmarks b WHERE b.report_year = grading_year) THEN
        RAISE EXCEPTION 'no DORA benchmarks for report year %', grading_year
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('engineering.dora_benchmarks holds the years %s; add rows for others',
                                (SELECT coalesce(string_agg(DISTINCT b.report_year::text, ', '), 'none')
                                   FROM engineering.dora_benchmarks b));
    END IF;

    -- where lead time starts (the choices of dora_settings.lead_time_start)
    start_expr := CASE start_from
        WHEN 'committed_at' THEN 'c.committed_at'
        WHEN 'authored_at' THEN 'coalesce(c.authored_at, c.committed_at)'
        WHEN 'pr_first_commit' THEN
            'coalesce((SELECT min(coalesce(pr.first_commit_at, pr.opened_at))
                         FROM engineering.pull_requests pr
                        WHERE pr.service = c.service AND pr.merge_commit_sha = c.commit_sha),
                      c.committed_at)'
    END;
    IF start_expr IS NULL THEN
        RAISE EXCEPTION 'unknown lead_time_start "%"', start_from
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'expected committed_at, authored_at or pr_first_commit';
    END IF;

    IF single THEN
        service_filter := 'AND d.service = $3[1]';
        incident_filter := 'AND i.service = $3[1]';
        wanted_rows := 'SELECT $3[1]::text AS service';
    ELSIF services IS NOT NULL THEN
        service_filter := 'AND d.service = ANY ($3)';
        incident_filter := 'AND i.service = ANY ($3)';
        wanted_rows := 'SELECT NULL::text AS service';
    ELSE
        wanted_rows := 'SELECT s.service FROM (SELECT service FROM deploys UNION SELECT service FROM opened) s
                        UNION ALL SELECT NULL';
    END IF;

    RETURN QUERY EXECUTE format($q$
        WITH deploys AS MATERIALIZED (
            -- successful deployments to the environment finished in the window
            SELECT d.id, d.service, d.finished_at
              FROM engineering.deployments d
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
        ),
        opened AS MATERIALIZED (
            -- incidents opened in the window
            SELECT i.service, i.opened_at, i.resolved_at
              FROM engineering.incidents i
             WHERE i.opened_at >= $1 AND i.opened_at < $2
               %2$s
        ),
        frequency AS (
            SELECT d.service, count(*) AS deployments,
                   array_agg(DISTINCT (d.finished_at AT TIME ZONE 'UTC')::date) AS days
              FROM deploys d
             GROUP BY GROUPING SETS ((d.service), ())
        ),
        shipped AS NOT MATERIALIZED (
            -- each change counts at the first successful deployment of the
            -- environment that shipped it (see change_lead_times), and only
            -- with a lead time that is not negative (a commit clock ahead of
            -- the deployment's).  Links inferred by link_changes() are
            -- unique per change and environment, so they only need checking
            -- against the connector's and manual links; those are checked
            -- against all.  (Two anti-joins rather than one condition with
            -- OR, which would need a correlated subplan and no parallelism.)
            SELECT d.service, x.started, d.finished_at
              FROM engineering.deployments d
              JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
              JOIN engineering.changes c ON c.id = dc.change_id
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
               AND x.started <= d.finished_at
               AND dc.linked_by = 'inferred'
               AND NOT EXISTS (SELECT 1
                                 FROM engineering.deployment_changes e
                                 JOIN engineering.deployments ed ON ed.id = e.deployment_id
                                WHERE e.change_id = dc.change_id AND e.linked_by <> 'inferred'
                                  AND ed.environment = $4 AND ed.status = 'success'
                                  AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
            UNION ALL
            SELECT d.service, x.started, d.finished_at
              FROM engineering.deployments d
              JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
              JOIN engineering.changes c ON c.id = dc.change_id
             CROSS JOIN LATERAL (SELECT %3$s AS started) x
             WHERE d.status = 'success' AND d.environment = $4
               AND d.finished_at >= $1 AND d.finished_at < $2
               %1$s
               AND x.started <= d.finished_at
               AND dc.linked_by <> 'inferred'
               AND NOT EXISTS (SELECT 1
                                 FROM engineering.deployment_changes e
                                 JOIN engineering.deployments ed ON ed.id = e.deployment_id
                                WHERE e.change_id = dc.change_id
                                  AND ed.environment = $4 AND ed.status = 'success'
                                  AND (ed.finished_at, ed.id) < (d.finished_at, d.id))
        ),
        lead_times AS (
            -- two aggregations rather than GROUPING SETS, which PostgreSQL
            -- cannot run in parallel
            SELECT s.service, engineering.lead_time(s.started, s.finished_at) AS lead_time
              FROM shipped s GROUP BY s.service
            %5$s
        ),
        failures AS (
            -- a deployment with several incidents fails once
            SELECT d.service,
                   count(DISTINCT d.id) AS failed,
                   engineering.time_to_restore(d.finished_at, i.resolved_at)
                       FILTER (WHERE i.resolved_at >= d.finished_at) AS recovery
              FROM deploys d
              JOIN engineering.incidents i ON i.cause_deployment_id = d.id
             GROUP BY GROUPING SETS ((d.service), ())
        ),
        restore AS (
            SELECT o.service, engineering.time_to_restore(o.opened_at, o.resolved_at) AS time_to_restore
              FROM opened o
             GROUP BY GROUPING SETS ((o.service), ())
        ),
        rework AS (
            -- a sweep over each service's timeline: +1 when an incident
            -- opens, -1 when it is resolved, and each deployment reads how
            -- many are open.  At equal times resolutions come first, then
            -- openings, then deployments: an incident is open over
            -- [opened_at, resolved_at).
            SELECT t.service, count(*) FILTER (WHERE t.open_incidents > 0) AS during_incident
              FROM (
                  SELECT ev.service, ev.kind,
                         sum(ev.delta) OVER (PARTITION BY ev.service ORDER BY ev.at, ev.kind
                                             ROWS UNBOUNDED PRECEDING) AS open_incidents
                    FROM (
                        SELECT d.service, d.finished_at AS at, 2 AS kind, 0 AS delta FROM deploys d
                        UNION ALL
                        SELECT i.service, i.opened_at, 1, 1
                          FROM engineering.incidents i
                         WHERE i.opened_at < $2
                           AND (i.resolved_at IS NULL OR (i.resolved_at > $1 AND i.resolved_at > i.opened_at))
                           %2$s
                        UNION ALL
                        SELECT i.service, i.resolved_at, 0, -1
                          FROM engineering.incidents i
                         WHERE i.opened_at < $2
                           AND i.resolved_at > $1 AND i.resolved_at > i.opened_at
                           %2$s
                    ) ev
              ) t
             WHERE t.kind = 2
             GROUP BY GROUPING SETS ((t.service), ())
        ),
        wanted AS (%4$s)
        SELECT w.service,
               coalesce(f.deployments, 0),
               CASE WHEN f.deployments > 0
                    THEN engineering._deployment_days_per_period(f.days, $1, $2, 'week') END,
               engineering._dora_frequency_level($5, f.days, $1, $2),
               l.lead_time,
               engineering._dora_level($5, 'lead_time', l.lead_time, NULL),
               CASE WHEN f.deployments > 0
                    THEN coalesce(x.failed, 0)::float8 / f.deployments END,
               CASE WHEN f.deployments > 0
                    THEN engineering._dora_level($5, 'change_failure_rate', NULL,
                                                 coalesce(x.failed, 0)::float8 / f.deployments) END,
               r.time_to_restore,
               engineering._dora_level($5, 'time_to_restore', r.time_to_restore, NULL),
               x.recovery,
               CASE WHEN f.deployments > 0
                    THEN coalesce(rw.during_incident, 0)::float8 / f.deployments END
          FROM wanted w
          LEFT JOIN frequency f ON f.service IS NOT DISTINCT FROM w.service
          LEFT JOIN lead_times l ON l.service IS NOT DISTINCT FROM w.service
          LEFT JOIN failures x ON x.service IS NOT DISTINCT FROM w.service
          LEFT JOIN restore r ON r.service IS NOT DISTINCT FROM w.service
          LEFT JOIN rework rw ON rw.service IS NOT DISTINCT FROM w.service
         ORDER BY w.service NULLS LAST
        $q$, service_filter, incident_filter, start_expr, wanted_rows,
           CASE WHEN NOT single
                THEN 'UNION ALL SELECT NULL, engineering.lead_time(s.started, s.finished_at) FROM shipped s'
                ELSE '' END)
    USING from_ts, to_ts, services, env, grading_year;
END
$fn$;

COMMENT ON FUNCTION engineering._dora_report(timestamptz, timestamptz, text[], boolean, text, integer, text) IS
    'internal: dora() for every service and all together (services NULL), for one service (single, services[1]), or for a set of services as one row (service NULL)';

CREATE OR REPLACE FUNCTION engineering.dora(
    from_ts         timestamptz,
    to_ts           timestamptz,
    service         text DEFAULT NULL,
    environment     text DEFAULT NULL,
    benchmark_year  integer DEFAULT NULL,
    lead_time_start text DEFAULT NULL)
RETURNS SETOF engineering.dora_report
LANGUAGE sql STABLE PARALLEL SAFE
SET jit = off
BEGIN ATOMIC
    SELECT * FROM engineering._dora_report(from_ts, to_ts, CASE WHEN service IS NOT NULL THEN ARRAY[service] END,
                                           service IS NOT NULL, environment, benchmark_year, lead_time_start);
END;

COMMENT ON FUNCTION engineering.dora(timestamptz, timestamptz, text, text, integer, text) IS
    'DORA report over successful deployments to an environment (default dora_settings.production_environment) that finished in [from_ts, to_ts): one row per service (or only the one given) plus a row for all services (service NULL); levels from dora_benchmarks for benchmark_year (default dora_settings.benchmark_year); lead_time_start overrides dora_settings.lead_time_start';

-- from 80_platform_catalog.sql
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

-- from 81_golden_paths.sql
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
               failed_deployment_recovery_time interval, rework_rate float8)
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
           r.time_to_restore, r.time_to_restore_level, r.failed_deployment_recovery_time, r.rework_rate
    FROM groups g
    CROSS JOIN LATERAL engineering._dora_report(dora_by_golden_path.from_ts, dora_by_golden_path.to_ts, g.members, false,
                                                dora_by_golden_path.environment, dora_by_golden_path.benchmark_year,
                                                dora_by_golden_path.lead_time_start) r
    ORDER BY g.o, g.golden_path;
END;
COMMENT ON FUNCTION engineering.dora_by_golden_path(timestamptz, timestamptz, text, integer, text) IS
    'the DORA keys of dora() over [from_ts, to_ts) for the services on each golden path (taken together), on at least one (golden_path NULL, on_path true) and off every path (on_path false); membership and eligibility as at to_ts';

-- from 82_scorecards.sql
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
    days_since_last_deployment  float8
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
                                          ('time_to_restore', d.time_to_restore_level))
            ORDER BY b.rank DESC, b.metric LIMIT 1),
           coalesce(ci.runs, 0), ci.success_rate, ci.flaky_rate,
           coalesce(i.open, 0), l.at,
           extract(epoch FROM service_facts_at.at - l.at)::float8 / 86400
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

-- from 85_platform_roles.sql
-- engineering_metrics: grants of the platform-engineering parts (golden
-- paths, scorecards), by the rules of 70_roles.sql, which comes before
-- them (the catalog's own grants are there): readers read everything,
-- admins write the choices (settings, paths, scorecards).  The functions
-- run with the caller's rights and stay executable by PUBLIC behind the
-- schema's USAGE; scorecards() evaluates only rules checked when written.

GRANT SELECT ON
    engineering.platform_settings, engineering.golden_paths, engineering.service_facts,
    engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON
    engineering.platform_settings, engineering.golden_paths,
    engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_admin;

