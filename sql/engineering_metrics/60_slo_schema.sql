-- engineering_metrics: service level objectives, their measurements, the
-- multiwindow burn-rate alert rules and the alert transitions.
--
-- The model is occurrence based: an SLI is a count of good events among all
-- eligible events, stored as (good, total) per measurement interval, and
-- every ratio is a ratio of sums over a window (never a mean of ratios).
-- Counts are kept as integers and every derived quantity is NUMERIC, so
-- that 1 - 0.999 is exactly 0.001 and a burn rate equal to a threshold is
-- exactly equal to it.

------------------------------------------------------------------------------
-- Small helpers shared by the SLO functions.
------------------------------------------------------------------------------

-- Windows and periods are fixed lengths: a day is 24 hours, whatever the
-- session's time zone does around a daylight saving change, so that a 30-day
-- period always weighs 720 hours in "budget share x period / window".
CREATE FUNCTION engineering._slo_fixed(length interval)
RETURNS interval
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN make_interval(secs => extract(epoch FROM length));
COMMENT ON FUNCTION engineering._slo_fixed(interval) IS
    'internal: an interval as a fixed number of seconds (days counted as 24 hours), so SLO windows do not stretch across daylight saving changes';

CREATE FUNCTION engineering._slo_burn_rate(bad numeric, total numeric, objective numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN total > 0 THEN trim_scale(bad / (total * (1 - objective))) END;
COMMENT ON FUNCTION engineering._slo_burn_rate(numeric, numeric, numeric) IS
    'internal: (bad / total) / (1 - objective) in NUMERIC with a single division; NULL when the window saw no traffic';

------------------------------------------------------------------------------
-- SLO definitions.
------------------------------------------------------------------------------

CREATE TABLE engineering.slos (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (btrim(name) <> '' OR engineering._reject_value('slos.name', name, 'an SLO needs a non-empty name')),
    service         text NOT NULL
                    CHECK (btrim(service) <> '' OR engineering._reject_value('slos.service', service, 'service must not be empty')),
    objective       numeric NOT NULL
                    CHECK ((objective > 0 AND objective < 1)
                           OR engineering._reject_value('slos.objective', objective::text,
                               CASE
                                   WHEN objective IN (1, 100) THEN
                                       'an objective of 100% leaves no error budget, so any error would burn it infinitely fast; use a fraction below 1 such as 0.9999'
                                   WHEN objective > 1 AND objective < 100 THEN
                                       format('the objective is a fraction, not a percentage: %s%% is %s', objective, trim_scale(objective / 100))
                                   ELSE
                                       'the objective is a fraction strictly between 0 and 1, such as 0.999 for 99.9%'
                               END)),
    period          interval NOT NULL DEFAULT '30 days'
                    CHECK ((period >= interval '1 hour' AND date_part('month', period) = 0 AND date_part('year', period) = 0)
                           OR engineering._reject_value('slos.period', period::text,
                               'the rolling period is a fixed length of at least 1 hour written in days or hours (''30 days'', ''28 days''), not in months')),
    min_events      bigint
                    CHECK (min_events >= 1 OR min_events IS NULL
                           OR engineering._reject_value('slos.min_events', min_events::text, 'min_events is a positive number of events, or NULL for no minimum')),
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slos_service_idx ON engineering.slos (service);

COMMENT ON TABLE engineering.slos IS
    'service level objectives: a target fraction of good events over a rolling period; see slo_status() and slo_alerts()';
COMMENT ON COLUMN engineering.slos.id IS 'surrogate key referenced by slo_measurements and slo_alert_events';
COMMENT ON COLUMN engineering.slos.name IS 'unique name used by slo_status(), slo_alerts(), notifications and the prometheus source';
COMMENT ON COLUMN engineering.slos.service IS 'the service the objective is about (joins with incidents and deployments)';
COMMENT ON COLUMN engineering.slos.objective IS 'target fraction of good events, strictly between 0 and 1 (0.999 for 99.9%); the error budget is 1 - objective';
COMMENT ON COLUMN engineering.slos.period IS 'rolling period the budget is computed over (default 30 days), a fixed length in days or hours';
COMMENT ON COLUMN engineering.slos.min_events IS 'optional minimum number of events in each window of an alert rule; below it the rule is suppressed (low traffic)';
COMMENT ON COLUMN engineering.slos.description IS 'free text: what is measured and why the objective was chosen';
COMMENT ON COLUMN engineering.slos.created_at IS 'when the SLO was defined';

-- Looks an SLO up by name for the functions that take one, with an error
-- that says what is wrong instead of an empty result.
CREATE FUNCTION engineering._slo_id(slo_name text)
RETURNS integer
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    found_id integer;
BEGIN
    SELECT s.id INTO found_id FROM engineering.slos s WHERE s.name = slo_name;
    IF found_id IS NULL THEN
        RAISE EXCEPTION 'slo "%" does not exist', slo_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SLOs are defined in engineering.slos.';
    END IF;
    RETURN found_id;
END
$$;
COMMENT ON FUNCTION engineering._slo_id(text) IS
    'internal: the id of the SLO with this name; raises undefined_object when there is none';

------------------------------------------------------------------------------
-- Measurements: counts for the interval that ends at measured_at.
------------------------------------------------------------------------------

CREATE TABLE engineering.slo_measurements (
    slo_id          integer NOT NULL REFERENCES engineering.slos (id) ON DELETE CASCADE,
    measured_at     timestamptz NOT NULL,
    good            bigint NOT NULL
                    CHECK (good >= 0 OR engineering._reject_value('slo_measurements.good', good::text, 'counts are never negative')),
    total           bigint NOT NULL,
    source_id       integer REFERENCES engineering.sources (id),
    PRIMARY KEY (slo_id, measured_at),
    CONSTRAINT slo_measurements_good_within_total
        CHECK (good <= total
               OR engineering._reject_value('slo_measurements.good', good::text, format('good must not exceed total (%s)', total)))
);
-- lets a source be deleted (its foreign key checked) without scanning every
-- hand-made measurement
CREATE INDEX slo_measurements_source_idx
    ON engineering.slo_measurements (source_id) WHERE source_id IS NOT NULL;

COMMENT ON TABLE engineering.slo_measurements IS
    'SLI counts per SLO: good and total events for the interval ending at measured_at; upsert on (slo_id, measured_at) to correct late data';
COMMENT ON COLUMN engineering.slo_measurements.slo_id IS 'the SLO measured';
COMMENT ON COLUMN engineering.slo_measurements.measured_at IS 'end of the interval the counts cover; a window (at - w, at] takes the measurements whose end falls in it';
COMMENT ON COLUMN engineering.slo_measurements.good IS 'good events in the interval (0 <= good <= total)';
COMMENT ON COLUMN engineering.slo_measurements.total IS 'eligible events in the interval; 0 means no traffic';
COMMENT ON COLUMN engineering.slo_measurements.source_id IS 'the source that synced these counts (prometheus); NULL for rows written by SQL or an ETL';

CREATE FUNCTION engineering.record_slo_measurement(slo_name text, measured_at timestamptz,
                                                   good bigint, total bigint)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
BEGIN ATOMIC
    INSERT INTO engineering.slo_measurements AS m (slo_id, measured_at, good, total)
    VALUES (engineering._slo_id(slo_name), measured_at, good, total)
    ON CONFLICT (slo_id, measured_at)
        DO UPDATE SET good = excluded.good, total = excluded.total, source_id = NULL;
END;
COMMENT ON FUNCTION engineering.record_slo_measurement(text, timestamptz, bigint, bigint) IS
    'stores the counts of an SLO for the interval ending at measured_at, replacing any earlier counts for that instant (late or corrected data)';

------------------------------------------------------------------------------
-- Alert rules: the multiwindow, multi-burn-rate table of the SRE Workbook.
--
-- A rule stores the share of the budget it guards and its two windows; its
-- burn-rate threshold follows from each SLO's period
-- (budget_share x period / long_window), so one table serves 30-day and
-- 28-day SLOs alike.  The built-in rows are seeded here; users may edit,
-- disable or add rules.  Built-in rules cannot be deleted (disable them
-- instead), which lets a pg_dump restore merge the dumped built-in rows into
-- the freshly seeded ones (see _slo_alert_rules_merge_builtin below).
------------------------------------------------------------------------------

CREATE TABLE engineering.slo_alert_rules (
    id              integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE
                    CHECK (btrim(name) <> '' OR engineering._reject_value('slo_alert_rules.name', name, 'a rule needs a non-empty name')),
    severity        text NOT NULL
                    CHECK (severity IN ('page', 'ticket')
                           OR engineering._reject_value('slo_alert_rules.severity', severity, 'expected page or ticket')),
    long_window     interval NOT NULL
                    CHECK ((long_window > interval '0' AND date_part('month', long_window) = 0 AND date_part('year', long_window) = 0)
                           OR engineering._reject_value('slo_alert_rules.long_window', long_window::text, 'a window is a positive fixed length in days, hours or minutes')),
    short_window    interval NOT NULL
                    CHECK ((short_window > interval '0' AND date_part('month', short_window) = 0 AND date_part('year', short_window) = 0)
                           OR engineering._reject_value('slo_alert_rules.short_window', short_window::text, 'a window is a positive fixed length in days, hours or minutes')),
    budget_share    numeric NOT NULL
                    CHECK ((budget_share > 0 AND budget_share <= 1)
                           OR engineering._reject_value('slo_alert_rules.budget_share', budget_share::text, 'the share of the error budget, in (0, 1]: 0.02 for 2%')),
    enabled         boolean NOT NULL DEFAULT true,
    builtin         boolean NOT NULL DEFAULT false,
    description     text,
    CONSTRAINT slo_alert_rules_short_within_long
        CHECK (engineering._slo_fixed(short_window) < engineering._slo_fixed(long_window)
               OR engineering._reject_value('slo_alert_rules.short_window', short_window::text,
                                            format('the short window must be shorter than the long window (%s)', long_window)))
);

COMMENT ON TABLE engineering.slo_alert_rules IS
    'multiwindow burn-rate alert rules applied to every SLO; a rule fires when both windows burn faster than budget_share x period / long_window';
COMMENT ON COLUMN engineering.slo_alert_rules.id IS 'surrogate key referenced by slo_alert_events';
COMMENT ON COLUMN engineering.slo_alert_rules.name IS 'unique name shown in slo_alerts() and notifications';
COMMENT ON COLUMN engineering.slo_alert_rules.severity IS 'page (wake someone up) or ticket (look at it during working hours)';
COMMENT ON COLUMN engineering.slo_alert_rules.long_window IS 'the window whose burn rate measures how much budget is being spent';
COMMENT ON COLUMN engineering.slo_alert_rules.short_window IS 'the window that confirms the burn is still going on (about 1/12 of the long one), so the alert resets quickly';
COMMENT ON COLUMN engineering.slo_alert_rules.budget_share IS 'share of the period''s error budget that, spent within the long window, fires the rule (0.02 = 2%)';
COMMENT ON COLUMN engineering.slo_alert_rules.enabled IS 'false switches the rule off for every SLO';
COMMENT ON COLUMN engineering.slo_alert_rules.builtin IS 'true for the rules seeded from the SRE Workbook; they can be edited or disabled but not deleted';
COMMENT ON COLUMN engineering.slo_alert_rules.description IS 'free text';

INSERT INTO engineering.slo_alert_rules (name, severity, long_window, short_window, budget_share, builtin, description)
VALUES ('page-1h-5m',    'page',   '1 hour',  '5 minutes',  0.02, true, '2% of the budget in 1 hour (14.4x for 30 days)'),
       ('page-6h-30m',   'page',   '6 hours', '30 minutes', 0.05, true, '5% of the budget in 6 hours (6x for 30 days)'),
       ('ticket-1d-2h',  'ticket', '1 day',   '2 hours',    0.10, true, '10% of the budget in 1 day (3x for 30 days)'),
       ('ticket-3d-6h',  'ticket', '3 days',  '6 hours',    0.10, true, '10% of the budget in 3 days (1x for 30 days)');

-- pg_dump dumps this table whole (see pg_extension_config_dump below), and
-- CREATE EXTENSION seeds the built-in rows again before the dumped rows are
-- restored: a restored built-in row then updates its seeded twin instead of
-- clashing with it, so edits to built-in rules survive dump and restore.
CREATE FUNCTION engineering._slo_alert_rules_merge_builtin()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF NEW.builtin THEN
        UPDATE engineering.slo_alert_rules r
           SET severity = NEW.severity, long_window = NEW.long_window,
               short_window = NEW.short_window, budget_share = NEW.budget_share,
               enabled = NEW.enabled, description = NEW.description
         WHERE r.name = NEW.name AND r.builtin;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._slo_alert_rules_merge_builtin() IS
    'internal trigger: inserting a built-in rule that already exists updates it (how pg_dump restores edited built-in rules)';
CREATE TRIGGER slo_alert_rules_merge_builtin
    BEFORE INSERT ON engineering.slo_alert_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._slo_alert_rules_merge_builtin();

CREATE FUNCTION engineering._slo_alert_rules_keep_builtin()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF OLD.builtin THEN
        RAISE EXCEPTION 'built-in alert rule "%" cannot be deleted', OLD.name
            USING ERRCODE = 'object_in_use',
                  HINT = format('Switch it off instead: UPDATE engineering.slo_alert_rules SET enabled = false WHERE name = %L;', OLD.name);
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION engineering._slo_alert_rules_keep_builtin() IS
    'internal trigger: refuses to delete a built-in rule (it would come back after a dump and restore); disable it instead';
CREATE TRIGGER slo_alert_rules_keep_builtin
    BEFORE DELETE ON engineering.slo_alert_rules
    FOR EACH ROW EXECUTE FUNCTION engineering._slo_alert_rules_keep_builtin();

------------------------------------------------------------------------------
-- Alert transitions, written by _evaluate_slo_alerts().
------------------------------------------------------------------------------

CREATE TABLE engineering.slo_alert_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slo_id          integer NOT NULL REFERENCES engineering.slos (id) ON DELETE CASCADE,
    rule_id         integer NOT NULL REFERENCES engineering.slo_alert_rules (id),
    state           text NOT NULL
                    CHECK (state IN ('firing', 'resolved')
                           OR engineering._reject_value('slo_alert_events.state', state, 'expected firing or resolved')),
    evaluated_at    timestamptz NOT NULL,
    severity        text NOT NULL,
    long_window     interval NOT NULL,
    short_window    interval NOT NULL,
    threshold       numeric,
    long_burn_rate  numeric,
    short_burn_rate numeric,
    long_events     bigint,
    short_events    bigint,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slo_alert_events_state_idx
    ON engineering.slo_alert_events (slo_id, rule_id, id);
CREATE INDEX slo_alert_events_rule_idx ON engineering.slo_alert_events (rule_id);

COMMENT ON TABLE engineering.slo_alert_events IS
    'history of alert transitions: one row each time a rule starts (firing) or stops (resolved) firing for an SLO; each row was also sent as NOTIFY engineering_slo_alerts';
COMMENT ON COLUMN engineering.slo_alert_events.id IS 'increasing event number, also in the notification payload';
COMMENT ON COLUMN engineering.slo_alert_events.slo_id IS 'the SLO';
COMMENT ON COLUMN engineering.slo_alert_events.rule_id IS 'the alert rule (a rule with history cannot be deleted; disable it instead)';
COMMENT ON COLUMN engineering.slo_alert_events.state IS 'firing (the rule started firing) or resolved (it stopped)';
COMMENT ON COLUMN engineering.slo_alert_events.evaluated_at IS 'the instant the rule was evaluated at (the end of both windows)';
COMMENT ON COLUMN engineering.slo_alert_events.severity IS 'the rule''s severity at the time';
COMMENT ON COLUMN engineering.slo_alert_events.long_window IS 'the rule''s long window at the time';
COMMENT ON COLUMN engineering.slo_alert_events.short_window IS 'the rule''s short window at the time';
COMMENT ON COLUMN engineering.slo_alert_events.threshold IS 'the burn-rate threshold both windows had to exceed; NULL when the rule no longer applies to the SLO';
COMMENT ON COLUMN engineering.slo_alert_events.long_burn_rate IS 'burn rate over the long window (NULL without traffic)';
COMMENT ON COLUMN engineering.slo_alert_events.short_burn_rate IS 'burn rate over the short window (NULL without traffic)';
COMMENT ON COLUMN engineering.slo_alert_events.long_events IS 'events counted in the long window';
COMMENT ON COLUMN engineering.slo_alert_events.short_events IS 'events counted in the short window';
COMMENT ON COLUMN engineering.slo_alert_events.recorded_at IS 'when the transition was recorded';

------------------------------------------------------------------------------
-- pg_dump: these tables hold user data and configuration, so their rows
-- (and their identity counters) are dumped although the tables belong to
-- the extension.
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('engineering.slos', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slos_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_measurements', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_rules', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_rules_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_events', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.slo_alert_events_id_seq', '');
