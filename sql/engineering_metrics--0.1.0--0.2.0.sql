-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

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
                    CHECK (btrim(kind) <> '' OR engineering._reject_value('catalog_entities.kind', kind, 'kind must not be empty')),
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

