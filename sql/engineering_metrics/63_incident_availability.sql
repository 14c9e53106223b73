-- engineering_metrics: an availability SLI from incidents, for teams without
-- request metrics.
--
-- Time is cut into one-minute slices aligned on from_ts; a slice is bad when
-- any incident of the service covers part of it (a time-slice SLI: an
-- incident from 10:00:30 to 10:01:30 makes two bad minutes), and the union
-- of the incidents is taken, so overlapping incidents count once.  Each
-- step reports total = its minutes and good = its minutes without incident,
-- with measured_at = the end of the step, ready for slo_measurements.

CREATE FUNCTION engineering.incident_availability(service text, from_ts timestamptz, to_ts timestamptz,
                                                  step interval DEFAULT '1 minute')
RETURNS TABLE (measured_at timestamptz, good bigint, total bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    step_minutes    bigint;
    step_count      bigint;
    range_end       timestamptz;
BEGIN
    IF service IS NULL OR from_ts IS NULL OR to_ts IS NULL OR step IS NULL THEN
        RAISE EXCEPTION 'incident_availability() needs a service, a range and a step'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF to_ts <= from_ts THEN
        RAISE EXCEPTION 'invalid range for incident_availability(): to_ts (%) is not after from_ts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF date_part('month', step) <> 0 OR date_part('year', step) <> 0
       OR extract(epoch FROM step) < 60 OR extract(epoch FROM step) % 60 <> 0 THEN
        RAISE EXCEPTION 'invalid step for incident_availability(): %', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The step is a whole number of minutes, at least one: ''1 minute'', ''1 hour'', ''1 day''.';
    END IF;

    step_minutes := extract(epoch FROM step) / 60;
    -- whole steps only: a trailing partial step would report a partial total
    step_count := floor(extract(epoch FROM to_ts - from_ts) / (step_minutes * 60));
    range_end := from_ts + make_interval(mins => (step_count * step_minutes)::integer);

    RETURN QUERY
    WITH down_minutes AS (
        -- Minute i is the slice (from_ts + i min, from_ts + (i+1) min].  An
        -- incident [opened, resolved) touches it when it starts before its end
        -- and ends after its start.  Open incidents last until the range end.
        SELECT DISTINCT g.minute
        FROM engineering.incidents i
        CROSS JOIN LATERAL (
            SELECT greatest(i.opened_at, from_ts) AS down_from,
                   least(coalesce(i.resolved_at, range_end), range_end) AS down_to
        ) c
        CROSS JOIN LATERAL generate_series(
            floor(extract(epoch FROM c.down_from - from_ts) / 60)::bigint,
            ceil(extract(epoch FROM c.down_to - from_ts) / 60)::bigint - 1) AS g (minute)
        WHERE i.service = incident_availability.service
          AND i.opened_at < range_end
          AND (i.resolved_at IS NULL OR i.resolved_at > from_ts)
          AND c.down_to > c.down_from
    ),
    down_per_step AS (
        SELECT d.minute / step_minutes + 1 AS step_no, count(*) AS down
        FROM down_minutes d
        GROUP BY 1
    )
    SELECT from_ts + make_interval(mins => (k * step_minutes)::integer),
           step_minutes - coalesce(d.down, 0),
           step_minutes
    FROM generate_series(1::bigint, step_count) AS k
    LEFT JOIN down_per_step d ON d.step_no = k
    ORDER BY k;
END
$$;
COMMENT ON FUNCTION engineering.incident_availability(text, timestamptz, timestamptz, interval) IS
    'availability minutes of a service from its incidents: for each step of (from_ts, to_ts], total minutes and good minutes (not touched by any incident, overlaps counted once), ending at measured_at';
