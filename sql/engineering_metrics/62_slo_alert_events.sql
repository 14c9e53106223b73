-- engineering_metrics: alert transitions and notifications.
--
-- The background worker calls engineering._evaluate_slo_alerts() once a
-- minute.  It compares slo_alerts(now()) with the last recorded state of
-- each (SLO, rule) and records only the changes, so calling it again with
-- nothing changed writes nothing and sends nothing: it is safe to run as
-- often as one likes, by the worker, by pg_cron or by hand.

-- The notification text is built from the stored event so that what a
-- listener receives and what the history table says are the same thing.
CREATE FUNCTION engineering._slo_alert_payload(event_id bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
               'event_id', e.id,
               'slo', s.name,
               'service', s.service,
               'objective', s.objective,
               'rule', r.name,
               'severity', e.severity,
               'state', e.state,
               'at', e.evaluated_at,
               'long_window_seconds', trim_scale(extract(epoch FROM e.long_window)),
               'short_window_seconds', trim_scale(extract(epoch FROM e.short_window)),
               'long_burn_rate', e.long_burn_rate,
               'short_burn_rate', e.short_burn_rate,
               'threshold', e.threshold,
               'long_events', e.long_events,
               'short_events', e.short_events)::text
    FROM engineering.slo_alert_events e
    JOIN engineering.slos s ON s.id = e.slo_id
    JOIN engineering.slo_alert_rules r ON r.id = e.rule_id
    WHERE e.id = event_id
$$;
COMMENT ON FUNCTION engineering._slo_alert_payload(bigint) IS
    'internal: the JSON text sent with NOTIFY engineering_slo_alerts for an alert event';

CREATE FUNCTION engineering._evaluate_slo_alerts(at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    change      record;
    new_id      bigint;
    changes     integer := 0;
BEGIN
    -- One evaluation at a time: two concurrent ones would both see the old
    -- state and record the same transition twice.  Readers are not blocked.
    LOCK TABLE engineering.slo_alert_events IN SHARE ROW EXCLUSIVE MODE;

    FOR change IN
        WITH current_state AS (
            SELECT * FROM engineering._slo_alert_states(at)
        ),
        last_state AS (
            SELECT DISTINCT ON (e.slo_id, e.rule_id) e.slo_id, e.rule_id, e.state
            FROM engineering.slo_alert_events e
            ORDER BY e.slo_id, e.rule_id, e.id DESC
        ),
        was_firing AS (
            SELECT l.slo_id, l.rule_id FROM last_state l WHERE l.state = 'firing'
        )
        -- A rule that no longer applies (disabled, or an SLO period shorter
        -- than its long window) while it was firing is resolved too.
        SELECT coalesce(c.slo_id, f.slo_id) AS slo_id,
               coalesce(c.rule_id, f.rule_id) AS rule_id,
               CASE WHEN coalesce(c.firing, false) THEN 'firing' ELSE 'resolved' END AS state,
               c.long_burn_rate, c.short_burn_rate, c.threshold, c.long_events, c.short_events
        FROM current_state c
        FULL JOIN was_firing f ON f.slo_id = c.slo_id AND f.rule_id = c.rule_id
        WHERE coalesce(c.firing, false) <> (f.slo_id IS NOT NULL)
        ORDER BY 1, 2
    LOOP
        INSERT INTO engineering.slo_alert_events
            (slo_id, rule_id, state, evaluated_at, severity, long_window, short_window,
             threshold, long_burn_rate, short_burn_rate, long_events, short_events)
        SELECT change.slo_id, change.rule_id, change.state, at, r.severity, r.long_window, r.short_window,
               change.threshold, change.long_burn_rate, change.short_burn_rate,
               change.long_events, change.short_events
        FROM engineering.slo_alert_rules r
        WHERE r.id = change.rule_id
        RETURNING id INTO new_id;

        -- Delivered when (and only if) this transaction commits, with the row.
        PERFORM pg_notify('engineering_slo_alerts', engineering._slo_alert_payload(new_id));
        changes := changes + 1;
    END LOOP;

    RETURN changes;
END
$$;
COMMENT ON FUNCTION engineering._evaluate_slo_alerts(timestamptz) IS
    'records in slo_alert_events each alert rule that started or stopped firing at this instant and sends NOTIFY engineering_slo_alerts for it; returns the number of transitions';

CREATE FUNCTION engineering._evaluate_slo_alerts()
RETURNS integer
LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN engineering._evaluate_slo_alerts(now());
COMMENT ON FUNCTION engineering._evaluate_slo_alerts() IS
    'evaluates the SLO alert rules now (called by the background worker every minute); see _evaluate_slo_alerts(timestamptz)';
