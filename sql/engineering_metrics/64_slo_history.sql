-- engineering_metrics: an SLO over time, for charts (budget burn-down,
-- burn rate per step).
--
-- Calling slo_status() at every point of a chart re-reads the whole period
-- for each point.  slo_history() reads the measurements once: it sums them
-- per step, then slides the period over the step sums, so the budget at
-- each point is exactly what slo_status() returns at that instant.

CREATE FUNCTION engineering.slo_history(slo_name text, from_ts timestamptz, to_ts timestamptz,
                                        step interval DEFAULT '1 hour')
RETURNS TABLE (at timestamptz, total_events bigint, bad_events bigint,
               burn_rate numeric, budget_remaining numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    the_slo         engineering.slos;
    step_seconds    numeric;
    period_steps    bigint;
    point_count     bigint;
BEGIN
    IF slo_name IS NULL OR from_ts IS NULL OR to_ts IS NULL OR step IS NULL THEN
        RAISE EXCEPTION 'slo_history() needs an SLO, a range and a step'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO the_slo FROM engineering.slos s WHERE s.id = engineering._slo_id(slo_name);
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'invalid range for slo_history(): to_ts (%) is before from_ts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    step_seconds := extract(epoch FROM step);
    IF date_part('month', step) <> 0 OR date_part('year', step) <> 0 OR step_seconds <= 0
       OR extract(epoch FROM the_slo.period) % step_seconds <> 0 THEN
        RAISE EXCEPTION 'invalid step for slo_history(): %', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The step is a fixed length that divides the SLO''s period (%s) evenly, such as ''5 minutes'', ''1 hour'' or ''1 day''.', the_slo.period);
    END IF;

    period_steps := extract(epoch FROM the_slo.period) / step_seconds;
    point_count := floor(extract(epoch FROM to_ts - from_ts) / step_seconds) + 1;

    RETURN QUERY
    WITH per_step AS (
        -- step k is (from_ts + (k-1) step, from_ts + k step]; steps k <= 0
        -- hold the history the first points' periods reach back into
        SELECT ceil(extract(epoch FROM m.measured_at - from_ts) / step_seconds)::bigint AS k,
               sum(m.total) AS step_total,
               sum(m.total - m.good) AS step_bad
        FROM engineering.slo_measurements m
        WHERE m.slo_id = the_slo.id
          AND m.measured_at > from_ts - engineering._slo_fixed(the_slo.period)
          AND m.measured_at <= from_ts + make_interval(secs => (point_count - 1) * step_seconds)
        GROUP BY 1
    ),
    dense AS (
        SELECT g.k, coalesce(p.step_total, 0) AS step_total, coalesce(p.step_bad, 0) AS step_bad
        FROM generate_series(1 - period_steps, point_count - 1) AS g (k)
        LEFT JOIN per_step p ON p.k = g.k
    ),
    rolling AS (
        SELECT d.k, d.step_total, d.step_bad,
               sum(d.step_total) OVER period_frame AS period_total,
               sum(d.step_bad) OVER period_frame AS period_bad
        FROM dense d
        WINDOW period_frame AS (ORDER BY d.k ROWS BETWEEN period_steps - 1 PRECEDING AND CURRENT ROW)
    )
    SELECT from_ts + make_interval(secs => r.k * step_seconds),
           r.step_total::bigint,
           r.step_bad::bigint,
           engineering._slo_burn_rate(r.step_bad, r.step_total, the_slo.objective),
           1 - engineering._slo_burn_rate(r.period_bad, r.period_total, the_slo.objective)
    FROM rolling r
    WHERE r.k >= 0
    ORDER BY r.k;
END
$$;
COMMENT ON FUNCTION engineering.slo_history(text, timestamptz, timestamptz, interval) IS
    'an SLO at each point from_ts, from_ts + step, ... up to to_ts: events and burn rate of the step ending there, and the error budget remaining over the period ending there (as slo_status() at that instant)';
