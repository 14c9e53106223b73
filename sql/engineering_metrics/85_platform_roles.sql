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
