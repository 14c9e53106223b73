-- engineering_metrics: DORA analytics, part 1: the choices.
--
-- The open-source DORA tools disagree on definitions (where lead time
-- starts, which environment counts, what "daily" means, which tiers grade a
-- team), and their users complain about exactly that.  Every contested
-- choice is stated here, in two user-editable tables:
--
--   dora_settings     one row: the defaults every DORA function and view uses
--                     (each function also takes them as parameters);
--   dora_benchmarks   the performance tiers of the DORA reports, looked up by
--                     dora() for its *_level columns.
--
-- Both are extension configuration tables, so pg_dump keeps the user's
-- edits.  A restore replays the dumped rows after CREATE EXTENSION has put
-- the defaults back; the BEFORE INSERT triggers below turn such a replayed
-- row into an update of the row it replaces instead of a duplicate-key error.

CREATE TABLE engineering.dora_settings (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CHECK (singleton OR engineering._reject_value('dora_settings.singleton', singleton::text, 'dora_settings holds exactly one row')),
    production_environment text NOT NULL DEFAULT 'production'
                    CHECK (btrim(production_environment) <> ''
                           OR engineering._reject_value('dora_settings.production_environment', production_environment, 'name the environment that counts as production')),
    lead_time_start text NOT NULL DEFAULT 'committed_at'
                    CHECK (lead_time_start IN ('committed_at', 'authored_at', 'pr_first_commit')
                           OR engineering._reject_value('dora_settings.lead_time_start', lead_time_start, 'expected committed_at, authored_at or pr_first_commit')),
    benchmark_year  integer NOT NULL DEFAULT 2023
);
INSERT INTO engineering.dora_settings DEFAULT VALUES;

COMMENT ON TABLE engineering.dora_settings IS
    'the one row of DORA defaults: which environment is production, where lead time starts, which report year grades the levels; edit it with UPDATE';
COMMENT ON COLUMN engineering.dora_settings.singleton IS 'always true: the table has exactly one row';
COMMENT ON COLUMN engineering.dora_settings.production_environment IS
    'the deployments.environment that dora(), attribute_incidents() and pull_request_cycle_times use when not told otherwise (default production)';
COMMENT ON COLUMN engineering.dora_settings.lead_time_start IS
    'where lead time starts: committed_at (committer date, default), authored_at (author date), or pr_first_commit (first commit of the pull request a merge or squash commit landed)';
COMMENT ON COLUMN engineering.dora_settings.benchmark_year IS
    'the report year of dora_benchmarks that dora() grades with when not told otherwise (default 2023)';

CREATE TABLE engineering.dora_benchmarks (
    report_year     integer NOT NULL,
    metric          text NOT NULL
                    CHECK (metric IN ('deployment_frequency', 'lead_time', 'change_failure_rate', 'time_to_restore',
                                      'failed_deployment_recovery_time')
                           OR engineering._reject_value('dora_benchmarks.metric', metric,
                                                        'expected deployment_frequency, lead_time, change_failure_rate, time_to_restore or failed_deployment_recovery_time')),
    level           text NOT NULL
                    CHECK (btrim(level) <> '' OR engineering._reject_value('dora_benchmarks.level', level, 'a level needs a name')),
    rank            integer NOT NULL
                    CHECK (rank >= 1 OR engineering._reject_value('dora_benchmarks.rank', rank::text, 'ranks start at 1 (the best level)')),
    min_deployment_days numeric
                    CHECK (min_deployment_days IS NULL OR min_deployment_days > 0
                           OR engineering._reject_value('dora_benchmarks.min_deployment_days', min_deployment_days::text, 'must be positive')),
    per_period      text
                    CHECK (per_period IS NULL OR per_period IN ('week', 'month', 'half-year')
                           OR engineering._reject_value('dora_benchmarks.per_period', per_period, 'expected week, month or half-year')),
    max_duration    interval
                    CHECK (max_duration IS NULL OR max_duration > interval '0'
                           OR engineering._reject_value('dora_benchmarks.max_duration', max_duration::text, 'must be positive')),
    max_rate        numeric
                    CHECK (max_rate IS NULL OR max_rate BETWEEN 0 AND 1
                           OR engineering._reject_value('dora_benchmarks.max_rate', max_rate::text, 'a rate between 0 and 1')),
    description     text,
    PRIMARY KEY (report_year, metric, level),
    CONSTRAINT dora_benchmarks_rank_key UNIQUE (report_year, metric, rank),
    -- each metric is graded by its own kind of bound; a row without a bound
    -- is the catch-all (lowest) level
    CONSTRAINT dora_benchmarks_bound_fits_metric CHECK (
        CASE metric
            WHEN 'deployment_frequency' THEN max_duration IS NULL AND max_rate IS NULL
                                             AND (min_deployment_days IS NULL) = (per_period IS NULL)
            WHEN 'change_failure_rate' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_duration IS NULL
            WHEN 'lead_time' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            WHEN 'time_to_restore' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            WHEN 'failed_deployment_recovery_time' THEN min_deployment_days IS NULL AND per_period IS NULL AND max_rate IS NULL
            ELSE true   -- an unknown metric is refused by its own check
        END
        OR engineering._reject_value('dora_benchmarks bounds', metric,
                                     'deployment_frequency rows set min_deployment_days and per_period, lead_time, time_to_restore and failed_deployment_recovery_time rows max_duration, change_failure_rate rows max_rate (or none of them for the lowest level)'))
);

COMMENT ON TABLE engineering.dora_benchmarks IS
    'DORA performance tiers per report year; dora() gives each metric the best-ranked level whose bound it meets.  Edit or add years freely';
COMMENT ON COLUMN engineering.dora_benchmarks.report_year IS 'year of the State of DevOps report the tiers come from (2021 and 2023 are shipped)';
COMMENT ON COLUMN engineering.dora_benchmarks.metric IS
    'deployment_frequency, lead_time, change_failure_rate, time_to_restore (graded by the 2021 report) or failed_deployment_recovery_time (which the 2023 report grades in its place)';
COMMENT ON COLUMN engineering.dora_benchmarks.level IS 'the level name dora() reports (elite, high, medium, low)';
COMMENT ON COLUMN engineering.dora_benchmarks.rank IS 'order of the levels, 1 = best; the first level (by rank) whose bound holds is the one reported';
COMMENT ON COLUMN engineering.dora_benchmarks.min_deployment_days IS
    'deployment_frequency: the level holds when the median number of days with a deployment per per_period is at least this';
COMMENT ON COLUMN engineering.dora_benchmarks.per_period IS
    'deployment_frequency: week (Monday to Sunday, UTC), month or half-year (January-June, July-December)';
COMMENT ON COLUMN engineering.dora_benchmarks.max_duration IS
    'lead_time, time_to_restore, failed_deployment_recovery_time: the level holds when the median is strictly below this (PostgreSQL compares a month as 30 days)';
COMMENT ON COLUMN engineering.dora_benchmarks.max_rate IS 'change_failure_rate: the level holds when the rate (0 to 1) is at most this';
COMMENT ON COLUMN engineering.dora_benchmarks.description IS 'what the report calls the tier';

-- The tiers as Apache DevLake encodes the 2021 and 2023 reports (see
-- README, "DORA analytics"): "on demand" is at least 5 deployment days in
-- the median week.  The 2023 report replaced time to restore (from the
-- incident's opening) by failed deployment recovery time (from the
-- deployment): its recovery tiers grade that figure.
INSERT INTO engineering.dora_benchmarks
    (report_year, metric, level, rank, min_deployment_days, per_period, max_duration, max_rate, description)
VALUES
    (2021, 'deployment_frequency', 'elite',  1, 5, 'week',      NULL, NULL, 'on demand (multiple deploys per day)'),
    (2021, 'deployment_frequency', 'high',   2, 1, 'month',     NULL, NULL, 'between once per day and once per month'),
    (2021, 'deployment_frequency', 'medium', 3, 1, 'half-year', NULL, NULL, 'between once per month and once every six months'),
    (2021, 'deployment_frequency', 'low',    4, NULL, NULL,     NULL, NULL, 'fewer than once every six months'),
    (2021, 'lead_time',            'elite',  1, NULL, NULL, '1 hour',   NULL, 'less than one hour'),
    (2021, 'lead_time',            'high',   2, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2021, 'lead_time',            'medium', 3, NULL, NULL, '6 mons',   NULL, 'between one week and six months'),
    (2021, 'lead_time',            'low',    4, NULL, NULL, NULL,       NULL, 'more than six months'),
    (2021, 'change_failure_rate',  'elite',  1, NULL, NULL, NULL,       0.15, '0-15%'),
    (2021, 'change_failure_rate',  'high',   2, NULL, NULL, NULL,       0.20, '16-20%'),
    (2021, 'change_failure_rate',  'medium', 3, NULL, NULL, NULL,       0.30, '21-30%'),
    (2021, 'change_failure_rate',  'low',    4, NULL, NULL, NULL,       NULL, 'more than 30%'),
    (2021, 'time_to_restore',      'elite',  1, NULL, NULL, '1 hour',   NULL, 'less than one hour'),
    (2021, 'time_to_restore',      'high',   2, NULL, NULL, '1 day',    NULL, 'less than one day'),
    (2021, 'time_to_restore',      'medium', 3, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2021, 'time_to_restore',      'low',    4, NULL, NULL, NULL,       NULL, 'more than one week'),
    (2023, 'deployment_frequency', 'elite',  1, 5, 'week',      NULL, NULL, 'on demand (multiple deploys per day)'),
    (2023, 'deployment_frequency', 'high',   2, 1, 'week',      NULL, NULL, 'between once per day and once per week'),
    (2023, 'deployment_frequency', 'medium', 3, 1, 'month',     NULL, NULL, 'between once per week and once per month'),
    (2023, 'deployment_frequency', 'low',    4, NULL, NULL,     NULL, NULL, 'fewer than once per month'),
    (2023, 'lead_time',            'elite',  1, NULL, NULL, '1 day',    NULL, 'less than one day'),
    (2023, 'lead_time',            'high',   2, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2023, 'lead_time',            'medium', 3, NULL, NULL, '1 mon',    NULL, 'between one week and one month'),
    (2023, 'lead_time',            'low',    4, NULL, NULL, NULL,       NULL, 'more than one month'),
    (2023, 'change_failure_rate',  'elite',  1, NULL, NULL, NULL,       0.05, '0-5%'),
    (2023, 'change_failure_rate',  'high',   2, NULL, NULL, NULL,       0.10, '5-10%'),
    (2023, 'change_failure_rate',  'medium', 3, NULL, NULL, NULL,       0.15, '10-15%'),
    (2023, 'change_failure_rate',  'low',    4, NULL, NULL, NULL,       NULL, 'more than 15%'),
    (2023, 'failed_deployment_recovery_time', 'elite', 1, NULL, NULL, '1 hour',   NULL, 'less than one hour'),
    (2023, 'failed_deployment_recovery_time', 'high', 2, NULL, NULL, '1 day',    NULL, 'less than one day'),
    (2023, 'failed_deployment_recovery_time', 'medium', 3, NULL, NULL, '7 days',   NULL, 'between one day and one week'),
    (2023, 'failed_deployment_recovery_time', 'low', 4, NULL, NULL, NULL,       NULL, 'more than one week');

-- Keep edits across pg_dump/pg_restore (see the header).
CREATE FUNCTION engineering._dora_settings_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.dora_settings
       SET production_environment = NEW.production_environment,
           lead_time_start = NEW.lead_time_start,
           benchmark_year = NEW.benchmark_year
     WHERE singleton = NEW.singleton;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._dora_settings_restore() IS
    'internal trigger: an inserted dora_settings row (as pg_restore replays it) replaces the existing one';
CREATE TRIGGER dora_settings_restore BEFORE INSERT ON engineering.dora_settings
    FOR EACH ROW EXECUTE FUNCTION engineering._dora_settings_restore();

CREATE FUNCTION engineering._dora_benchmarks_restore()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE engineering.dora_benchmarks
       SET rank = NEW.rank,
           min_deployment_days = NEW.min_deployment_days,
           per_period = NEW.per_period,
           max_duration = NEW.max_duration,
           max_rate = NEW.max_rate,
           description = NEW.description
     WHERE report_year = NEW.report_year AND metric = NEW.metric AND level = NEW.level;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._dora_benchmarks_restore() IS
    'internal trigger: an inserted dora_benchmarks row whose (report_year, metric, level) exists (as pg_restore replays it) replaces that row';
CREATE TRIGGER dora_benchmarks_restore BEFORE INSERT ON engineering.dora_benchmarks
    FOR EACH ROW EXECUTE FUNCTION engineering._dora_benchmarks_restore();

SELECT pg_catalog.pg_extension_config_dump('engineering.dora_settings', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.dora_benchmarks', '');

-- Indexes the DORA functions and views need beyond those of the event
-- schema: deployments whose links came from a connector or a person (few)
-- are found without reading every link.
CREATE INDEX deployment_changes_recorded_idx
    ON engineering.deployment_changes (deployment_id) WHERE linked_by <> 'inferred';
CREATE INDEX deployment_changes_recorded_change_idx
    ON engineering.deployment_changes (change_id) WHERE linked_by <> 'inferred';
