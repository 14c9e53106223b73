CREATE FUNCTION engineering.build_info()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_build_info';
COMMENT ON FUNCTION engineering.build_info() IS
    'version of the loaded module, its libcurl, and whether it was preloaded (background worker available)';
