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
