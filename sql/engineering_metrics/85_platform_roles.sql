-- engineering_metrics: grants of the platform-engineering parts (catalog,
-- golden paths, scorecards), by the rules of 70_roles.sql: readers read
-- everything, writers write what is synced (the catalog, like the event
-- tables: hand-made catalogs, first_seen_at moved back to when a service
-- really started), admins write the choices (settings, paths, scorecards).
-- The functions run with the caller's rights and stay executable by PUBLIC
-- behind the schema's USAGE.

GRANT SELECT ON
    engineering.catalog_entities, engineering.catalog_groups, engineering.catalog_users,
    engineering.catalog_memberships, engineering.platform_settings, engineering.golden_paths,
    engineering.service_facts, engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON engineering.catalog_entities TO engineering_writer;

GRANT INSERT, UPDATE, DELETE ON
    engineering.platform_settings, engineering.golden_paths,
    engineering.scorecard_levels, engineering.scorecard_rules
TO engineering_admin;
