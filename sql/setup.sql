-- Run first (the Makefile puts it at the head of REGRESS): the helpers every
-- other regression file shares, in a schema of their own that outlives the
-- sessions of the files and is no part of the extension.  pg_regress has
-- already created the extension (--load-extension), so this file also
-- records what a fresh install holds, for regress.reset_extension().
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS regress CASCADE;
RESET client_min_messages;
CREATE SCHEMA regress;
COMMENT ON SCHEMA regress IS 'helpers of the regression suite (sql/setup.sql)';
-- roles.sql calls the helpers as its login roles
GRANT USAGE ON SCHEMA regress TO PUBLIC;

-- error_of(query): 'ok', or the SQLSTATE and message the query raises, so
-- that each attempt is one line of the expected output
CREATE FUNCTION regress.error_of(query text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- The rows and sequence positions of a fresh install (the built-in DORA
-- settings and benchmarks, the built-in alert rules), kept as jsonb so that
-- nothing here depends on the extension's types: schema.sql drops and
-- recreates the extension.
CREATE FUNCTION regress.rows_of(relname text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    rows jsonb;
BEGIN
    EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), ''[]'') FROM engineering.%I t',
                   relname) INTO rows;
    RETURN rows;
END $$;
CREATE TABLE regress.installed_rows AS
SELECT relname::text, regress.rows_of(relname) AS rows
FROM pg_class WHERE relnamespace = 'engineering'::regnamespace AND relkind = 'r';
CREATE TABLE regress.installed_sequences AS
SELECT sequencename::text AS sequencename, last_value
FROM pg_sequences WHERE schemaname = 'engineering';

-- CALL reset_extension(): every table of the extension back to its rows of a
-- fresh install, identities restarted, as if the extension had just been
-- created.  A file that writes to the extension's tables calls it first, so
-- that it neither sees nor depends on what the files before it left.
-- Triggers are off (session_replication_role) while the installed rows go
-- back: they would take them for a restore of a dump.
CREATE PROCEDURE regress.reset_extension()
LANGUAGE plpgsql SET session_replication_role = replica AS $$
DECLARE
    r record;
BEGIN
    EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('engineering.%I', relname), ', ')
                    || ' RESTART IDENTITY CASCADE'
             FROM pg_class WHERE relnamespace = 'engineering'::regnamespace AND relkind = 'r');
    FOR r IN SELECT * FROM regress.installed_rows WHERE rows <> '[]' LOOP
        EXECUTE format('INSERT INTO engineering.%I OVERRIDING SYSTEM VALUE
                        SELECT * FROM jsonb_populate_recordset(NULL::engineering.%I, $1)',
                       r.relname, r.relname) USING r.rows;
    END LOOP;
    PERFORM setval(format('engineering.%I', sequencename), last_value)
    FROM regress.installed_sequences WHERE last_value IS NOT NULL;
END $$;

-- the reset gives back exactly the install's rows and sequence positions
INSERT INTO engineering.slos (name, service, objective) VALUES ('left-over', 'api', 0.99);
UPDATE engineering.dora_settings SET production_environment = 'left-over';
UPDATE engineering.slo_alert_rules SET enabled = false WHERE builtin;
CALL regress.reset_extension();
SELECT count(*) FILTER (WHERE rows <> '[]') > 0 AS some_installed_rows,
       count(*) FILTER (WHERE rows IS DISTINCT FROM regress.rows_of(relname)) AS tables_not_as_installed
FROM regress.installed_rows;
SELECT count(*) AS sequences_not_as_installed
FROM regress.installed_sequences i JOIN pg_sequences s
  ON s.schemaname = 'engineering' AND s.sequencename = i.sequencename
WHERE s.last_value IS DISTINCT FROM i.last_value;
