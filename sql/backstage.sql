CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- errors are part of the expected output: their messages and hints, not
-- the PL/pgSQL call stacks
\set SHOW_CONTEXT never

-- The Backstage connector's SQL, without a network: config validation,
-- entity references, the mapping of /entities/by-query pages, cursor
-- paging and removal after a complete listing.  Fixtures are written here
-- by hand in the shapes of Backstage's software catalog API.

------------------------------------------------------------------------------
-- Config
------------------------------------------------------------------------------

SELECT engineering.add_source('cat', 'backstage', 'https://backstage.example.com/api/catalog/',
    '{"filter": "kind=component,kind=api,kind=template,kind=group,kind=user", "page_size": 2,
      "service_annotation": "acme.com/service", "service_map": {"storefront-web": "storefront"}}', 'tok');
SELECT name, kind, base_url FROM engineering.sources ORDER BY id;
-- every Backstage is the user's own: no default URL
SELECT engineering.add_source('bad', 'backstage', NULL, '{}');
-- refused configs
SELECT engineering.add_source('bad', 'backstage', 'https://b.example.com/api/catalog', '{"filter": ""}');
SELECT engineering.add_source('bad', 'backstage', 'https://b.example.com/api/catalog', '{"filter": ["kind=user", 3]}');
SELECT engineering.add_source('bad', 'backstage', 'https://b.example.com/api/catalog', '{"page_size": 0}');
SELECT engineering.add_source('bad', 'backstage', 'https://b.example.com/api/catalog', '{"page_size": 2.5}');
SELECT engineering.add_source('bad', 'backstage', 'https://b.example.com/api/catalog', '{"service_annotation": ""}');
SELECT engineering.add_source('bad', 'backstage', 'https://b.example.com/api/catalog', '{"since": "2026-01-01"}');
SELECT count(*) AS sources FROM engineering.sources;

------------------------------------------------------------------------------
-- Entity references: [kind:][namespace/]name, lower case
------------------------------------------------------------------------------

SELECT r, k, ns, engineering._catalog_ref(r, k, ns)
FROM (VALUES ('payments', 'group', 'default'), ('Group:Payments', 'group', 'default'),
             ('ops/SRE', 'group', 'default'), ('user:jdoe', 'group', 'Platform'),
             ('template:default/go-service', 'template', 'x'), ('go-service', 'template', 'default'),
             ('', 'group', 'default'), (NULL, 'group', 'default')) v(r, k, ns);

------------------------------------------------------------------------------
-- URLs: the first page carries the filters, the next ones only the cursor
------------------------------------------------------------------------------

SELECT engineering._backstage_url('{}');
SELECT engineering._backstage_url('{"filter": ["kind=user", "kind=group,spec.type=team"], "page_size": 50}');
SELECT engineering._backstage_url('{"page_size": 50}', 'eyJmIjoxfQ==');

------------------------------------------------------------------------------
-- Mapping
------------------------------------------------------------------------------

-- a GitHub and a GitLab source whose repositories the catalog annotates
SELECT engineering.add_source('gh-pay', 'github', NULL, '{"repository": "acme/payments-api", "service": "payments"}');
SELECT engineering.add_source('gl-inv', 'gitlab', NULL, '{"project": "logistics/inventory"}');

-- page 1 of a listing (limit 2): a component created from a template with
-- a GitHub slug, and a Group; Backstage writes kinds capitalised
\set page1 '{"items": [{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"namespace": "default", "name": "payments-api", "title": "Payments API", "description": "Takes the money.", "uid": "7f3b6c2a-1d4e-4f5a-9b8c-0d1e2f3a4b5c", "etag": "1b2c3d4e5f", "tags": ["java", "pci"], "annotations": {"backstage.io/source-template": "template:default/springboot-service", "github.com/project-slug": "Acme/Payments-API", "backstage.io/techdocs-ref": "dir:.", "backstage.io/managed-by-location": "url:https://github.com/acme/payments-api/blob/main/catalog-info.yaml"}, "links": [{"url": "https://grafana.example.com/d/pay", "title": "Dashboard"}]}, "spec": {"type": "service", "lifecycle": "production", "owner": "payments", "system": "commerce", "providesApis": ["payments-api"]}, "relations": [{"type": "ownedBy", "targetRef": "group:default/payments", "target": {"kind": "group", "namespace": "default", "name": "payments"}}, {"type": "partOf", "targetRef": "system:default/commerce"}]}, {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"namespace": "default", "name": "payments", "uid": "0a1b2c3d-0000-4000-8000-000000000001", "etag": "aa"}, "spec": {"type": "team", "parent": "engineering", "profile": {"displayName": "Payments Team", "email": "payments@acme.example"}, "children": [], "members": ["jdoe"]}, "relations": [{"type": "childOf", "targetRef": "group:default/engineering"}, {"type": "hasMember", "targetRef": "user:default/jdoe"}]}], "totalItems": 10, "pageInfo": {"nextCursor": "eyJhZnRlciI6MX0="}}'
-- page 2: a GitLab component without a template, and a user in a namespace
\set page2 '{"items": [{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "inventory", "uid": "c0ffee00-0000-4000-8000-000000000002", "etag": "bb", "annotations": {"gitlab.com/project-slug": "logistics/inventory"}}, "spec": {"type": "service", "lifecycle": "experimental", "owner": "group:fulfilment"}, "relations": []}, {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"namespace": "Staff", "name": "JDoe", "uid": "c0ffee00-0000-4000-8000-000000000003", "etag": "cc"}, "spec": {"profile": {"displayName": "Jane Doe ✓", "email": "jane.doe@acme.example", "picture": "https://avatars.example.com/jdoe"}, "memberOf": ["default/payments", "group:default/guild-java"]}, "relations": [{"type": "memberOf", "targetRef": "group:default/payments"}]}], "totalItems": 10, "pageInfo": {"nextCursor": "eyJhZnRlciI6Mn0=", "prevCursor": "eyJiZWZvcmUiOjN9"}}'
-- page 3, the last: a deprecated component with its service in an
-- annotation, a website renamed by service_map, a template, an API whose
-- definition the engine drops, and things the mapping skips (no name,
-- not an object)
\set page3 '{"items": [{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "legacy-reports", "uid": "c0ffee00-0000-4000-8000-000000000004", "annotations": {"acme.com/service": "reports", "backstage.io/source-template": "springboot-service"}, "tags": ["cobol", 7]}, "spec": {"type": "service", "lifecycle": "deprecated", "owner": "user:jdoe"}}, {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "storefront-web", "title": "  "}, "spec": {"type": "website", "lifecycle": "production", "owner": "storefront"}}, {"apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template", "metadata": {"name": "springboot-service", "title": "Spring Boot Service", "tags": ["recommended", "java"]}, "spec": {"owner": "platform", "type": "service", "parameters": [], "steps": [{"id": "fetch", "action": "fetch:template"}]}}, {"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "payments-api"}, "spec": {"type": "openapi", "lifecycle": "production", "owner": "payments", "definition": "openapi: 3.0.0"}}, {"kind": "Component", "metadata": {"title": "no name"}}, "not an entity"], "totalItems": 10, "pageInfo": {}}'

SELECT engineering._backstage_plan(s) FROM engineering.sources s WHERE name = 'cat';
SELECT stream, url, payload - 'listing_started' AS payload, payload ? 'listing_started' AS has_start
FROM engineering.sync_tasks ORDER BY id;

-- the engine calls ingest with each response, then deletes the task
CREATE FUNCTION pg_temp.ingest(body jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    tid bigint;
BEGIN
    SELECT min(t.id) INTO tid FROM engineering.sync_tasks t
    WHERE t.source_id = (SELECT id FROM engineering.sources WHERE name = 'cat');
    SELECT engineering._backstage_ingest(s, t, 200, '{}', body) INTO n
    FROM engineering.sources s JOIN engineering.sync_tasks t ON t.source_id = s.id WHERE t.id = tid;
    DELETE FROM engineering.sync_tasks WHERE id = tid;
    RETURN n;
END $$;

SELECT pg_temp.ingest(:'page1') AS changed;
-- the next page is asked for by its cursor alone
SELECT stream, url, payload - 'listing_started' AS payload FROM engineering.sync_tasks ORDER BY id;
SELECT pg_temp.ingest(:'page2') AS changed;
SELECT pg_temp.ingest(:'page3') AS changed;
SELECT count(*) AS tasks_left FROM engineering.sync_tasks;
SELECT cursor - 'listed_at' AS cursor, cursor ? 'listed_at' AS has_listed_at
FROM engineering.sources WHERE name = 'cat';

SELECT entity_ref, kind, type, namespace, name, title, owner, lifecycle, system, service, template, tags
FROM engineering.catalog_entities ORDER BY entity_ref;
SELECT entity_ref, uid, description, annotations, relations
FROM engineering.catalog_entities WHERE entity_ref = 'component:default/payments-api';
-- the mapping keeps the spec as given (over HTTP the engine leaves out
-- an API's definition before the mapping sees it: 033_backstage_sync.pl)
SELECT entity_ref, spec FROM engineering.catalog_entities WHERE kind = 'api';

SELECT * FROM engineering.catalog_groups ORDER BY group_ref;
SELECT * FROM engineering.catalog_users ORDER BY user_ref;
SELECT * FROM engineering.catalog_memberships ORDER BY user_ref, group_ref;

------------------------------------------------------------------------------
-- The next listing: unchanged entities change nothing, a changed one is
-- rewritten, an entity gone from the catalog is marked removed (not
-- deleted), and one that comes back is live again
------------------------------------------------------------------------------

UPDATE engineering.catalog_entities SET first_seen_at = '2026-01-01', last_seen_at = '2026-01-01'
WHERE source_id = (SELECT id FROM engineering.sources WHERE name = 'cat');
SELECT engineering._backstage_plan(s) FROM engineering.sources s WHERE name = 'cat';
SELECT pg_temp.ingest(:'page1') AS changed;
SELECT pg_temp.ingest(jsonb_set(:'page2'::jsonb, '{items,0,spec,lifecycle}', '"production"')) AS changed;
-- the last page lost legacy-reports and the template
SELECT pg_temp.ingest(jsonb_set(:'page3'::jsonb, '{items}',
    (SELECT jsonb_agg(e) FROM jsonb_array_elements(:'page3'::jsonb->'items') e
     WHERE e->'metadata'->>'name' NOT IN ('legacy-reports', 'springboot-service')))) AS changed;
SELECT entity_ref, lifecycle, first_seen_at, last_seen_at > first_seen_at AS seen_again,
       removed_at IS NOT NULL AS removed
FROM engineering.catalog_entities ORDER BY entity_ref;

-- an interrupted listing marks nothing: page 1 alone, then the listing
-- starts again and completes with everything
SELECT engineering._backstage_plan(s) FROM engineering.sources s WHERE name = 'cat';
SELECT pg_temp.ingest(:'page1') AS changed;
SELECT count(*) FILTER (WHERE removed_at IS NULL) AS live, count(*) AS kept FROM engineering.catalog_entities;
DELETE FROM engineering.sync_tasks;
SELECT engineering._backstage_plan(s) FROM engineering.sources s WHERE name = 'cat';
SELECT pg_temp.ingest(:'page1') + pg_temp.ingest(:'page2') + pg_temp.ingest(:'page3') AS changed;
SELECT entity_ref, lifecycle, removed_at FROM engineering.catalog_entities
WHERE entity_ref IN ('component:default/legacy-reports', 'template:default/springboot-service', 'component:default/inventory');

------------------------------------------------------------------------------
-- Responses that are not a page of entities
------------------------------------------------------------------------------

SELECT engineering._backstage_plan(s) FROM engineering.sources s WHERE name = 'cat';
SELECT pg_temp.ingest('[{"kind": "Component"}]');
SELECT pg_temp.ingest('{"error": {"name": "NotFoundError", "message": "Not found"}}');
SELECT pg_temp.ingest('{"items": {"kind": "Component"}}');
SELECT engineering._backstage_map_entities(1, '{}', '"x"', now());
-- a page whose entity holds a kind or name Backstage would never write
-- (a colon or a slash) skips it rather than store a ref that cannot parse
SELECT pg_temp.ingest('{"items": [{"kind": "Com:ponent", "metadata": {"name": "x"}}, {"kind": "Component", "metadata": {"name": "a/b"}}], "pageInfo": {"nextCursor": "c"}}') AS changed;
DELETE FROM engineering.sync_tasks;

-- a source removed with its catalog
SELECT engineering.remove_source('cat');
SELECT engineering.remove_source('cat', purge => true);
SELECT count(*) AS entities_left FROM engineering.catalog_entities;
