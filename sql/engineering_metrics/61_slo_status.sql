-- engineering_metrics: SLO status (burn rates, error budget) and the
-- multiwindow burn-rate alerts.
--
-- Conventions, shared with README "SLOs and error budgets":
--   * a window w ending at "at" is the half-open interval (at - w, at]: it
--     takes every measurement whose measured_at falls in it, because a
--     measurement holds the counts of the interval ending at measured_at;
--   * error ratio e(w) = sum(total - good) / sum(total) over the window (a
--     ratio of sums), burn rate BR(w) = e(w) / (1 - objective);
--   * a window without traffic (sum(total) = 0 or no rows) has a NULL burn
--     rate, and a NULL side never fires an alert;
--   * an alert rule fires when BOTH windows burn strictly faster (>) than
--     its threshold budget_share x period / long_window;
--   * everything is NUMERIC, so equality with a threshold is exact.

CREATE FUNCTION engineering.slo_status(slo_name text, at timestamptz DEFAULT now())
RETURNS TABLE (
    slo                     text,
    service                 text,
    objective               numeric,
    period                  interval,
    burn_rate_5m            numeric,
    burn_rate_30m           numeric,
    burn_rate_1h            numeric,
    burn_rate_2h            numeric,
    burn_rate_6h            numeric,
    burn_rate_1d            numeric,
    burn_rate_3d            numeric,
    burn_rate_period        numeric,
    sli                     numeric,
    total_events            bigint,
    bad_events              bigint,
    budget_events           numeric,
    budget_consumed         numeric,
    budget_remaining        numeric,
    budget_remaining_events numeric,
    time_to_exhaustion      interval,
    first_measured_at       timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    -- Each window is summed by its own range scan of the primary key: the
    -- short windows read a few rows, and only the period reads them all
    -- (several times faster than one scan with a FILTER per window).
    WITH the_slo AS (
        SELECT s.* FROM engineering.slos s WHERE s.id = engineering._slo_id(slo_name)
    ),
    sums AS (
        SELECT v.label, x.total, x.bad, x.first_measured_at
        FROM the_slo s
        CROSS JOIN LATERAL (VALUES ('5m', interval '5 minutes'), ('30m', interval '30 minutes'),
                                   ('1h', interval '1 hour'), ('2h', interval '2 hours'),
                                   ('6h', interval '6 hours'), ('1d', interval '24 hours'),
                                   ('3d', interval '72 hours'),
                                   ('period', engineering._slo_fixed(s.period))) AS v (label, length)
        CROSS JOIN LATERAL (
            SELECT sum(m.total) AS total, sum(m.total - m.good) AS bad,
                   min(m.measured_at) AS first_measured_at
            FROM engineering.slo_measurements m
            WHERE m.slo_id = s.id
              AND m.measured_at > at - v.length
              AND m.measured_at <= at
        ) x
    ),
    w AS (
        SELECT max(total) FILTER (WHERE label = '5m')     AS total_5m,
               max(bad)   FILTER (WHERE label = '5m')     AS bad_5m,
               max(total) FILTER (WHERE label = '30m')    AS total_30m,
               max(bad)   FILTER (WHERE label = '30m')    AS bad_30m,
               max(total) FILTER (WHERE label = '1h')     AS total_1h,
               max(bad)   FILTER (WHERE label = '1h')     AS bad_1h,
               max(total) FILTER (WHERE label = '2h')     AS total_2h,
               max(bad)   FILTER (WHERE label = '2h')     AS bad_2h,
               max(total) FILTER (WHERE label = '6h')     AS total_6h,
               max(bad)   FILTER (WHERE label = '6h')     AS bad_6h,
               max(total) FILTER (WHERE label = '1d')     AS total_1d,
               max(bad)   FILTER (WHERE label = '1d')     AS bad_1d,
               max(total) FILTER (WHERE label = '3d')     AS total_3d,
               max(bad)   FILTER (WHERE label = '3d')     AS bad_3d,
               max(total) FILTER (WHERE label = 'period') AS total_p,
               max(bad)   FILTER (WHERE label = 'period') AS bad_p,
               max(first_measured_at) FILTER (WHERE label = 'period') AS first_measured_at
        FROM sums
    )
    SELECT s.name, s.service, s.objective, s.period,
           engineering._slo_burn_rate(w.bad_5m, w.total_5m, s.objective),
           engineering._slo_burn_rate(w.bad_30m, w.total_30m, s.objective),
           engineering._slo_burn_rate(w.bad_1h, w.total_1h, s.objective),
           engineering._slo_burn_rate(w.bad_2h, w.total_2h, s.objective),
           engineering._slo_burn_rate(w.bad_6h, w.total_6h, s.objective),
           engineering._slo_burn_rate(w.bad_1d, w.total_1d, s.objective),
           engineering._slo_burn_rate(w.bad_3d, w.total_3d, s.objective),
           b.burn_rate_period,
           CASE WHEN w.total_p > 0 THEN trim_scale((w.total_p - w.bad_p) / w.total_p) END,
           coalesce(w.total_p, 0)::bigint,
           coalesce(w.bad_p, 0)::bigint,
           trim_scale((1 - s.objective) * coalesce(w.total_p, 0)),
           b.burn_rate_period,
           1 - b.burn_rate_period,
           CASE WHEN w.total_p > 0 THEN trim_scale((1 - s.objective) * w.total_p - w.bad_p) END,
           -- remaining x period / BR(1h), written as one division of exact
           -- terms: (B.total_p - bad_p) x period x total_1h / (total_p x bad_1h)
           CASE WHEN w.total_p > 0 AND w.bad_1h > 0 AND (1 - s.objective) * w.total_p > w.bad_p THEN
               make_interval(secs => round(((1 - s.objective) * w.total_p - w.bad_p)
                                           * extract(epoch FROM s.period) * w.total_1h
                                           / (w.total_p * w.bad_1h)))
           END,
           w.first_measured_at
    FROM the_slo s
    CROSS JOIN w
    CROSS JOIN LATERAL (
        SELECT engineering._slo_burn_rate(w.bad_p, w.total_p, s.objective) AS burn_rate_period
    ) b
$$;
COMMENT ON FUNCTION engineering.slo_status(text, timestamptz) IS
    'burn rates over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period, SLI, error budget consumed and remaining, and time until the budget is exhausted at the current 1h burn rate, for windows (at - w, at]';

-- The alert rules applied to every SLO at one instant, with ids for
-- _evaluate_slo_alerts().  Each distinct window of each SLO is summed once
-- with an index range scan on slo_measurements' primary key.
CREATE FUNCTION engineering._slo_alert_states(at timestamptz)
RETURNS TABLE (
    slo_id          integer,
    rule_id         integer,
    slo             text,
    service         text,
    rule            text,
    severity        text,
    long_window     interval,
    short_window    interval,
    long_burn_rate  numeric,
    short_burn_rate numeric,
    threshold       numeric,
    long_events     bigint,
    short_events    bigint,
    suppressed      boolean,
    firing          boolean
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH pairs AS (
        SELECT s.id AS slo_id, r.id AS rule_id, s.name AS slo, s.service, s.objective, s.min_events,
               r.name AS rule, r.severity, r.long_window, r.short_window,
               trim_scale(r.budget_share * extract(epoch FROM s.period) / extract(epoch FROM r.long_window)) AS threshold
        FROM engineering.slos s
        CROSS JOIN engineering.slo_alert_rules r
        WHERE r.enabled
          AND engineering._slo_fixed(r.long_window) <= engineering._slo_fixed(s.period)
    ),
    windows AS (
        SELECT DISTINCT p.slo_id, engineering._slo_fixed(v.length) AS length
        FROM pairs p
        CROSS JOIN LATERAL (VALUES (p.long_window), (p.short_window)) v (length)
    ),
    sums AS (
        SELECT w.slo_id, w.length, x.total, x.bad
        FROM windows w
        CROSS JOIN LATERAL (
            SELECT sum(m.total) AS total, sum(m.total - m.good) AS bad
            FROM engineering.slo_measurements m
            WHERE m.slo_id = w.slo_id
              AND m.measured_at > at - w.length
              AND m.measured_at <= at
        ) x
    ),
    rated AS (
        SELECT p.*,
               engineering._slo_burn_rate(l.bad, l.total, p.objective) AS long_burn_rate,
               engineering._slo_burn_rate(sh.bad, sh.total, p.objective) AS short_burn_rate,
               coalesce(l.total, 0)::bigint AS long_events,
               coalesce(sh.total, 0)::bigint AS short_events
        FROM pairs p
        JOIN sums l ON l.slo_id = p.slo_id AND l.length = engineering._slo_fixed(p.long_window)
        JOIN sums sh ON sh.slo_id = p.slo_id AND sh.length = engineering._slo_fixed(p.short_window)
    )
    SELECT r.slo_id, r.rule_id, r.slo, r.service, r.rule, r.severity, r.long_window, r.short_window,
           r.long_burn_rate, r.short_burn_rate, r.threshold, r.long_events, r.short_events,
           sup.suppressed,
           NOT sup.suppressed
               AND coalesce(r.long_burn_rate > r.threshold AND r.short_burn_rate > r.threshold, false)
    FROM rated r
    CROSS JOIN LATERAL (
        SELECT coalesce(r.long_events < r.min_events OR r.short_events < r.min_events, false) AS suppressed
    ) sup
    ORDER BY r.slo, r.severity, engineering._slo_fixed(r.long_window), r.rule
$$;
COMMENT ON FUNCTION engineering._slo_alert_states(timestamptz) IS
    'internal: slo_alerts() with the SLO and rule ids, for _evaluate_slo_alerts()';

CREATE FUNCTION engineering.slo_alerts(at timestamptz DEFAULT now())
RETURNS TABLE (
    slo             text,
    service         text,
    rule            text,
    severity        text,
    long_window     interval,
    short_window    interval,
    long_burn_rate  numeric,
    short_burn_rate numeric,
    threshold       numeric,
    long_events     bigint,
    short_events    bigint,
    suppressed      boolean,
    firing          boolean
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT a.slo, a.service, a.rule, a.severity, a.long_window, a.short_window,
           a.long_burn_rate, a.short_burn_rate, a.threshold, a.long_events, a.short_events,
           a.suppressed, a.firing
    FROM engineering._slo_alert_states(at) a
$$;
COMMENT ON FUNCTION engineering.slo_alerts(timestamptz) IS
    'one row per SLO and enabled alert rule at an instant: burn rates of both windows, the threshold derived from the SLO''s period, and whether the rule fires (both windows > threshold, enough events)';
