-- Roles and grants: the three group roles exist with the right membership,
-- every object of the extension has a decision (the catalog lists them, so
-- an object added later shows up here), and each role can do exactly its
-- part, tried for real as login roles that belong to one of them.
CALL regress.reset_extension();
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';

------------------------------------------------------------------------------
-- The roles: NOLOGIN groups, each including the one before it.
------------------------------------------------------------------------------
SELECT rolname, rolcanlogin, rolinherit, rolsuper, rolcreaterole, rolcreatedb,
       (SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_auth_members m
        JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS member_of,
       shobj_description(r.oid, 'pg_authid') IS NOT NULL AS has_comment
FROM pg_roles r WHERE rolname LIKE 'engineering\_%' ORDER BY rolname;

------------------------------------------------------------------------------
-- Every relation (table, view, sequence) of the extension and what each
-- role may do with it: S(elect) I(nsert) U(pdate) D(elete) T(runcate)
-- R(eferences) t(rigger) u(sage, sequences).  A new relation appears here
-- and must get a decision in 70_roles.sql.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.rel_privs(role name, rel oid) RETURNS text
LANGUAGE sql AS $$
    SELECT CASE WHEN c.relkind = 'S' THEN
               CASE WHEN has_sequence_privilege(role, rel, 'SELECT') THEN 'S' ELSE '' END ||
               CASE WHEN has_sequence_privilege(role, rel, 'USAGE') THEN 'u' ELSE '' END ||
               CASE WHEN has_sequence_privilege(role, rel, 'UPDATE') THEN 'U' ELSE '' END
           ELSE
               CASE WHEN has_table_privilege(role, rel, 'SELECT') THEN 'S' ELSE '' END ||
               CASE WHEN has_table_privilege(role, rel, 'INSERT') THEN 'I' ELSE '' END ||
               CASE WHEN has_table_privilege(role, rel, 'UPDATE') THEN 'U' ELSE '' END ||
               CASE WHEN has_table_privilege(role, rel, 'DELETE') THEN 'D' ELSE '' END ||
               CASE WHEN has_table_privilege(role, rel, 'TRUNCATE') THEN 'T' ELSE '' END ||
               CASE WHEN has_table_privilege(role, rel, 'REFERENCES') THEN 'R' ELSE '' END ||
               CASE WHEN has_table_privilege(role, rel, 'TRIGGER') THEN 't' ELSE '' END
           END
    FROM pg_class c WHERE c.oid = rel
$$;
-- PUBLIC's own grants, read from the ACL (has_*_privilege needs a role);
-- a NULL ACL means the defaults, which the callers below tell apart
CREATE FUNCTION pg_temp.public_privs(acl aclitem[]) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce(string_agg(privilege_type, ',' ORDER BY privilege_type), '')
    FROM aclexplode(acl) a WHERE a.grantee = 0
$$;
CREATE TEMP VIEW ext_objects AS
SELECT d.classid, d.objid
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'engineering_metrics');

SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'matview'
                      WHEN 'S' THEN 'sequence' ELSE c.relkind::text END AS kind,
       c.relname AS name,
       pg_temp.rel_privs('engineering_reader', c.oid) AS reader,
       pg_temp.rel_privs('engineering_writer', c.oid) AS writer,
       pg_temp.rel_privs('engineering_admin', c.oid) AS admin,
       pg_temp.public_privs(c.relacl) AS public
FROM ext_objects o JOIN pg_class c ON c.oid = o.objid
WHERE o.classid = 'pg_class'::regclass
ORDER BY c.relkind DESC, c.relname COLLATE "C";

------------------------------------------------------------------------------
-- Functions.  By default a function is executable by PUBLIC; that is safe
-- only when it runs with the caller's rights (the caller's table privileges
-- still apply) and does nothing else.  Listed: every function whose EXECUTE
-- was taken from PUBLIC or that runs as its owner, with who may call it.
------------------------------------------------------------------------------
SELECT p.oid::regprocedure AS function,
       CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END AS rights,
       has_function_privilege('engineering_reader', p.oid, 'EXECUTE') AS reader,
       has_function_privilege('engineering_writer', p.oid, 'EXECUTE') AS writer,
       has_function_privilege('engineering_admin', p.oid, 'EXECUTE') AS admin,
       p.proacl IS NULL OR pg_temp.public_privs(p.proacl) <> '' AS public
FROM ext_objects o JOIN pg_proc p ON p.oid = o.objid
WHERE o.classid = 'pg_proc'::regclass
  AND (p.prosecdef OR pg_temp.public_privs(p.proacl) = '' AND p.proacl IS NOT NULL)
ORDER BY p.oid::regprocedure::text COLLATE "C";

-- the rule behind the list above: nothing runs as its owner for PUBLIC
SELECT count(*) AS definer_functions_public
FROM ext_objects o JOIN pg_proc p ON p.oid = o.objid
WHERE o.classid = 'pg_proc'::regclass AND p.prosecdef
  AND (p.proacl IS NULL OR pg_temp.public_privs(p.proacl) <> '');
-- and a definer function fixes its search_path (no hijacking by a caller's schema)
SELECT p.oid::regprocedure AS definer_without_search_path
FROM ext_objects o JOIN pg_proc p ON p.oid = o.objid
WHERE o.classid = 'pg_proc'::regclass AND p.prosecdef
  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%');
-- Every search_path the extension sets ends with pg_temp: left out, the
-- caller's temporary schema is searched FIRST for tables and types, so a
-- caller's temporary type could take the place of "text" inside a function
-- running as the owner (see the attempt below).
SELECT p.oid::regprocedure AS search_path_without_pg_temp_last
FROM ext_objects o JOIN pg_proc p ON p.oid = o.objid, unnest(p.proconfig) c
WHERE o.classid = 'pg_proc'::regclass AND c LIKE 'search_path=%' AND c NOT LIKE '%, pg_temp';

-- Every other function runs with the caller's rights and stays executable
-- by PUBLIC (reachable only through the schema, which PUBLIC cannot use).
-- They are listed by name, apart from the support functions of the
-- extension's aggregates and types, which nobody calls directly; a new
-- function shows up here.
SELECT DISTINCT p.proname COLLATE "C" AS invoker_function
FROM ext_objects o JOIN pg_proc p ON p.oid = o.objid
WHERE o.classid = 'pg_proc'::regclass AND NOT p.prosecdef
  AND (p.proacl IS NULL OR pg_temp.public_privs(p.proacl) <> '')
  AND NOT EXISTS (SELECT 1 FROM pg_aggregate a
                  WHERE p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                  a.aggserialfn, a.aggdeserialfn))
  AND NOT EXISTS (SELECT 1 FROM pg_type t
                  WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend))
ORDER BY 1;
SELECT count(*) AS support_functions
FROM ext_objects o JOIN pg_proc p ON p.oid = o.objid
WHERE o.classid = 'pg_proc'::regclass
  AND (EXISTS (SELECT 1 FROM pg_aggregate a
               WHERE p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn))
       OR EXISTS (SELECT 1 FROM pg_type t
                  WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend)));

-- types: usable by everyone who can reach the schema
SELECT t.typname, t.typacl IS NULL AS default_acl
FROM ext_objects o JOIN pg_type t ON t.oid = o.objid
WHERE o.classid = 'pg_type'::regclass ORDER BY t.typname COLLATE "C";

-- the schema: the roles may use it, PUBLIC may not
SELECT has_schema_privilege('engineering_reader', 'engineering', 'USAGE') AS reader_usage,
       has_schema_privilege('engineering_reader', 'engineering', 'CREATE') AS reader_create,
       has_schema_privilege('engineering_admin', 'engineering', 'CREATE') AS admin_create,
       pg_temp.public_privs(nspacl) AS public
FROM pg_namespace WHERE nspname = 'engineering';

------------------------------------------------------------------------------
-- Behaviour, as login roles.  SET SESSION AUTHORIZATION, not SET ROLE,
-- because the token_file check looks at the session user.
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_em_reader, regress_em_writer, regress_em_admin, regress_em_nobody;
RESET client_min_messages;
SELECT current_user AS regress_user \gset
CREATE ROLE regress_em_reader LOGIN IN ROLE engineering_reader;
CREATE ROLE regress_em_writer LOGIN IN ROLE engineering_writer;
CREATE ROLE regress_em_admin LOGIN IN ROLE engineering_admin;
CREATE ROLE regress_em_nobody LOGIN;

-- fixture, as the owner: a source with a token, an SLO, an event
SELECT engineering.add_source('fixture', 'github', 'http://127.0.0.1:1',
                              '{"repository": "acme/shop"}', token => 'ghp_RegressRolesSecret42') AS fixture_id;
INSERT INTO engineering.slos (name, service, objective) VALUES ('api-availability', 'api', 0.999);
INSERT INTO engineering.deployments (service, status, finished_at, external_id)
VALUES ('api', 'success', '2024-05-01 10:00+00', 'manual-1');
INSERT INTO engineering.sync_runs (source_id, source, status, error)
SELECT id, name, 'error', 'HTTP 401: Bad credentials' FROM engineering.sources WHERE name = 'fixture';

-- a role outside the groups cannot even reach the schema
SET SESSION AUTHORIZATION regress_em_nobody;
SELECT regress.error_of('SELECT count(*) FROM engineering.deployments') AS nobody_reads;
SELECT regress.error_of('SELECT engineering.sync(''fixture'')') AS nobody_syncs;
RESET SESSION AUTHORIZATION;

-- engineering_reader
SET SESSION AUTHORIZATION regress_em_reader;
SELECT count(*) AS deployments FROM engineering.deployments;
SELECT name, kind, base_url, enabled FROM engineering.sources;
SELECT source, status, error FROM engineering.sync_runs;
SELECT name, last_status FROM engineering.source_status;
SELECT engineering.lead_time(finished_at - interval '1 hour', finished_at) AS aggregate_runs FROM engineering.deployments;
SELECT slo, total_events FROM engineering.slo_status('api-availability', '2024-05-02');
SELECT count(*) AS alerts FROM engineering.slo_alerts('2024-05-02');
SELECT count(*) > 0 AS dora_report FROM engineering.dora('2024-04-01', '2024-06-01');
SELECT count(*) AS lead_times FROM engineering.change_lead_times;
SELECT count(*) AS outcomes FROM engineering.deployment_outcomes;
SELECT count(*) AS settings FROM engineering.dora_settings;
SELECT regress.error_of($$SELECT engineering.link_changes()$$) AS link_changes;
SELECT regress.error_of($$UPDATE engineering.dora_settings SET production_environment = 'production'$$) AS change_dora_settings;
SELECT regress.error_of('SELECT * FROM engineering.source_secrets') AS read_tokens;
SELECT regress.error_of('SELECT * FROM engineering.sync_tasks') AS read_queue;
SELECT regress.error_of($$INSERT INTO engineering.deployments (service, status, finished_at) VALUES ('api', 'success', now())$$) AS insert_event;
SELECT regress.error_of($$UPDATE engineering.deployments SET service = 'x'$$) AS update_event;
SELECT regress.error_of($$SELECT engineering.record_slo_measurement('api-availability', '2024-05-01 10:00+00', 9, 10)$$) AS write_measurement;
SELECT regress.error_of($$SELECT engineering.add_source('mine', 'github', 'http://127.0.0.1:1', '{"repository": "a/b"}')$$) AS add_source;
SELECT regress.error_of($$SELECT engineering.alter_source('fixture', base_url => 'http://127.0.0.1:2')$$) AS alter_source;
SELECT regress.error_of($$UPDATE engineering.sources SET base_url = 'http://127.0.0.1:2'$$) AS update_sources;
SELECT regress.error_of($$SELECT engineering.set_source_token('fixture', 'x')$$) AS set_token;
SELECT regress.error_of($$SELECT engineering.remove_source('fixture')$$) AS remove_source;
SELECT regress.error_of($$SELECT engineering.sync('fixture')$$) AS sync;
SELECT regress.error_of($$SELECT engineering._sync_source(1)$$) AS sync_internal;
SELECT regress.error_of($$SELECT engineering.wake()$$) AS wake;
SELECT regress.error_of($$SELECT engineering._store_token(1, 'x')$$) AS store_token;
SELECT regress.error_of($$SELECT engineering._evaluate_slo_alerts()$$) AS evaluate_alerts;
SELECT regress.error_of($$INSERT INTO engineering.slos (name, service, objective) VALUES ('x', 'x', 0.9)$$) AS define_slo;
SELECT regress.error_of($$TRUNCATE engineering.deployments$$) AS truncate;
SELECT regress.error_of($$CREATE TABLE engineering.mine (x int)$$) AS create_in_schema;
RESET SESSION AUTHORIZATION;

-- engineering_writer
SET SESSION AUTHORIZATION regress_em_writer;
SELECT regress.error_of($$INSERT INTO engineering.deployments (service, status, finished_at, external_id) VALUES ('api', 'failure', '2024-05-01 11:00+00', 'manual-2')$$) AS insert_event;
SELECT regress.error_of($$INSERT INTO engineering.incidents (service, status, opened_at, resolved_at, external_id) VALUES ('api', 'resolved', '2024-05-01 11:05+00', '2024-05-01 11:35+00', 'inc-1')$$) AS insert_incident;
SELECT regress.error_of($$INSERT INTO engineering.deployments (service, status, finished_at, external_id) VALUES ('api', 'success', '2024-05-01 12:00+00', 'manual-2') ON CONFLICT (external_id) WHERE source_id IS NULL DO UPDATE SET status = excluded.status$$) AS upsert_event;
SELECT regress.error_of($$UPDATE engineering.incidents SET severity = 'high' WHERE external_id = 'inc-1'$$) AS update_event;
SELECT regress.error_of($$DELETE FROM engineering.incidents WHERE external_id = 'inc-1'$$) AS delete_event;
SELECT regress.error_of($$SELECT engineering.record_slo_measurement('api-availability', '2024-05-01 10:00+00', 9, 10)$$) AS write_measurement;
SELECT regress.error_of($$SELECT engineering.record_slo_measurement('api-availability', '2024-05-01 10:00+00', 10, 10)$$) AS correct_measurement;
SELECT regress.error_of('SELECT * FROM engineering.source_secrets') AS read_tokens;
SELECT regress.error_of($$SELECT engineering.set_source_token('fixture', 'x')$$) AS set_token;
SELECT regress.error_of($$SELECT engineering.add_source('mine', 'github', 'http://127.0.0.1:1', '{"repository": "a/b"}')$$) AS add_source;
SELECT regress.error_of($$SELECT engineering.sync('fixture')$$) AS sync;
SELECT regress.error_of($$INSERT INTO engineering.slos (name, service, objective) VALUES ('x', 'x', 0.9)$$) AS define_slo;
SELECT regress.error_of($$UPDATE engineering.slo_alert_rules SET enabled = false$$) AS change_alert_rules;
SELECT regress.error_of($$INSERT INTO engineering.sync_runs (source, status) VALUES ('forged', 'ok')$$) AS forge_run;
SELECT regress.error_of($$TRUNCATE engineering.deployments$$) AS truncate;
SELECT regress.error_of($$SELECT engineering.link_changes()$$) AS link_changes;
SELECT regress.error_of($$SELECT engineering.attribute_incidents()$$) AS attribute_incidents;
SELECT regress.error_of($$UPDATE engineering.dora_settings SET production_environment = 'production'$$) AS change_dora_settings;
RESET SESSION AUTHORIZATION;
SELECT external_id, status, finished_at FROM engineering.deployments ORDER BY external_id COLLATE "C";
SELECT good, total FROM engineering.slo_measurements;

-- engineering_admin
SET SESSION AUTHORIZATION regress_em_admin;
SET engineering_metrics.http_retries = 0;
SELECT regress.error_of($$SELECT engineering.add_source('admins', 'gitlab', 'http://127.0.0.1:1', '{"project": "acme/api"}', token => 'glpat-RegressAdminToken7')$$) AS add_source;
SELECT regress.error_of($$SELECT engineering.set_source_token('fixture', 'ghp_RegressRolesRotated43')$$) AS set_token;
SELECT regress.error_of($$SELECT engineering.alter_source('admins', poll_interval => '1 hour')$$) AS alter_source;
SELECT regress.error_of('SELECT * FROM engineering.source_secrets') AS read_tokens;
SELECT regress.error_of($$UPDATE engineering.sources SET base_url = 'http://127.0.0.1:2'$$) AS update_sources_directly;
SELECT regress.error_of($$INSERT INTO engineering.sources (name, kind, base_url) VALUES ('raw', 'github', 'file:///etc/passwd')$$) AS insert_sources_directly;
SELECT regress.error_of($$SELECT engineering.add_source('bad', 'github', 'file:///etc/passwd', '{"repository": "a/b"}')$$) AS file_url;
SELECT regress.error_of($$SELECT engineering.add_source('bad', 'github', 'ftp://127.0.0.1/', '{"repository": "a/b"}')$$) AS ftp_url;
SELECT regress.error_of($$SELECT engineering.add_source('bad', 'github', 'http://user:pw@127.0.0.1/', '{"repository": "a/b"}')$$) AS url_with_credentials;
SELECT regress.error_of($$SELECT engineering.add_source('bad', 'github', 'http://127.0.0.1:1', '{"repository": "a/b", "token_file": "/etc/passwd"}')$$) AS token_file;
SELECT regress.error_of($$SELECT engineering.add_source('bad', 'github', 'http://127.0.0.1:1', '{"repository": "a/b", "token_env": "HOME"}')$$) AS token_env;
SELECT status, error LIKE 'transport error: %' AS transport_error FROM engineering.sync('admins');
SELECT regress.error_of($$SELECT engineering.wake()$$) AS wake;
SELECT regress.error_of($$INSERT INTO engineering.slos (name, service, objective) VALUES ('api-latency', 'api', 0.99)$$) AS define_slo;
SELECT regress.error_of($$UPDATE engineering.slo_alert_rules SET enabled = false WHERE name = 'ticket-3d-6h'$$) AS change_alert_rules;
SELECT regress.error_of($$SELECT count(*) FROM engineering.sync_tasks$$) AS read_queue;
SELECT regress.error_of($$DELETE FROM engineering.sync_tasks$$) AS change_queue;
SELECT regress.error_of($$UPDATE engineering.dora_settings SET production_environment = 'production'$$) AS change_dora_settings;
SELECT regress.error_of($$SELECT engineering._sync_source(1)$$) AS sync_internal;
SELECT regress.error_of($$SELECT engineering._store_token(1, 'x')$$) AS store_token;
SELECT regress.error_of($$SELECT engineering._evaluate_slo_alerts()$$) AS evaluate_alerts;
SELECT regress.error_of($$SELECT engineering.remove_source('admins')$$) AS remove_source;
-- an admin cannot read a stored token by moving its source to a server of
-- theirs: another scheme, host or port forgets the token (a new path on
-- the same origin keeps it)
SELECT engineering.add_source('moving', 'gitlab', 'http://127.0.0.1:1', '{"project": "acme/api"}',
                              token => 'glpat-RegressMovingToken8') > 0 AS moving_added;
SELECT engineering.alter_source('moving', base_url => 'http://127.0.0.1:1/gitlab');
RESET SESSION AUTHORIZATION;
SELECT count(*) AS token_kept_on_same_origin FROM engineering.source_secrets sec
JOIN engineering.sources s ON s.id = sec.source_id WHERE s.name = 'moving';
SET SESSION AUTHORIZATION regress_em_admin;
SELECT engineering.alter_source('moving', base_url => 'http://127.0.0.2:1/gitlab');
RESET SESSION AUTHORIZATION;
-- what the admin did, as the owner sees it: the rotated token is stored,
-- the second source's token went with it, the moved source's was forgotten
SELECT s.name, sec.token FROM engineering.source_secrets sec JOIN engineering.sources s ON s.id = sec.source_id;
SELECT name, poll_interval FROM engineering.sources ORDER BY name COLLATE "C";
-- no token anywhere a reader can look
SELECT count(*) AS token_visible
FROM (SELECT s::text AS t FROM engineering.sources s
      UNION ALL SELECT r::text FROM engineering.sync_runs r
      UNION ALL SELECT st::text FROM engineering.source_status st) x
WHERE t LIKE '%ghp_Regress%' OR t LIKE '%glpat-Regress%';
SELECT engineering.remove_source('moving');

-- An admin's own temporary objects cannot run as the owner: a temporary
-- domain named "text" whose check calls the admin's function would be
-- picked by functions running as the owner if their search_path left
-- pg_temp out (it is then searched first for types), and the function would
-- run as a superuser.  A fresh session, so that no function is compiled yet.
\c - regress_em_admin
SET engineering_metrics.http_retries = 0;
CREATE TABLE pg_temp.seen (who name);
CREATE FUNCTION pg_temp.escalate(v pg_catalog.text) RETURNS boolean LANGUAGE sql
AS $$ INSERT INTO pg_temp.seen SELECT current_user RETURNING true $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.escalate(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.escalate(VALUE::pg_catalog.text));
CREATE DOMAIN pg_temp.regprocedure AS pg_catalog.regprocedure CHECK (pg_temp.escalate(VALUE::pg_catalog.text));
SELECT engineering.set_source_token('fixture', 'ghp_RegressRolesRotated43') IS NOT NULL AS token_set;
SELECT engineering.add_source('trap', 'gitlab', 'http://127.0.0.1:1/', '{"project": "a/b"}') > 0 AS source_added;
SELECT engineering.alter_source('trap', config => '{"project": "a/c"}') IS NOT NULL AS source_altered;
SELECT status FROM engineering.sync('trap');
SELECT engineering.remove_source('trap') IS NOT NULL AS source_removed;
SELECT count(*) AS ran_as_owner FROM pg_temp.seen;
\c - :regress_user

------------------------------------------------------------------------------
-- The roles outlive the extension (DROP EXTENSION cannot drop cluster-wide
-- roles) and a new installation, in this database or another one, reuses
-- them.
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP EXTENSION engineering_metrics CASCADE;
RESET client_min_messages;
SELECT count(*) AS roles_after_drop FROM pg_roles WHERE rolname LIKE 'engineering\_%';
CREATE EXTENSION engineering_metrics;
SELECT has_table_privilege('engineering_reader', 'engineering.deployments', 'SELECT') AS reader_again;

SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_em_second;
RESET client_min_messages;
CREATE DATABASE regress_em_second;
\c regress_em_second
CREATE EXTENSION engineering_metrics;
SELECT has_table_privilege('engineering_reader', 'engineering.deployments', 'SELECT') AS reader_in_second_db,
       has_table_privilege('engineering_writer', 'engineering.incidents', 'INSERT') AS writer_in_second_db,
       has_function_privilege('engineering_admin', 'engineering.sync(text)', 'EXECUTE') AS admin_in_second_db,
       has_table_privilege('engineering_admin', 'engineering.source_secrets', 'SELECT') AS admin_reads_tokens;
SELECT count(*) AS roles FROM pg_roles WHERE rolname LIKE 'engineering\_%';
\c :regress_db
DROP DATABASE regress_em_second;

DROP ROLE regress_em_reader, regress_em_writer, regress_em_admin, regress_em_nobody;
