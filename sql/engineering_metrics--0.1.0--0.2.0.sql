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
