-- engineering_metrics: roles for people, onboarding, surveys and the
-- platform report (the rest of the decisions are in 70_roles.sql, which
-- runs before these objects exist).
--
-- Readers see people, identities, onboarding and the reports; raw survey
-- responses are readable by admins only: readers get the figures through
-- survey_results(), which runs as the owner (SECURITY DEFINER, fixed
-- search_path) and suppresses small groups.  People, aliases, surveys and
-- the settings are written by admins.

GRANT SELECT ON
    engineering.people, engineering.person_aliases, engineering.people_settings,
    engineering.person_identities, engineering.person_activity, engineering.excluded_authors,
    engineering.onboarding,
    engineering.surveys, engineering.survey_questions,
    engineering.service_teams, engineering.platform_thresholds, engineering.team_services
TO engineering_reader;

GRANT INSERT, UPDATE, DELETE ON
    engineering.people, engineering.person_aliases, engineering.people_settings,
    engineering.surveys, engineering.survey_questions, engineering.survey_responses,
    engineering.service_teams, engineering.platform_thresholds
TO engineering_admin;
GRANT SELECT ON engineering.survey_responses TO engineering_admin;

-- Left out of PUBLIC: the raw activity view is read through person_activity
-- only (it is internal), and survey_results() is granted by role because it
-- runs as the owner.
REVOKE EXECUTE ON FUNCTION engineering.survey_results(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION engineering.survey_results(text, text, integer) TO engineering_reader;
