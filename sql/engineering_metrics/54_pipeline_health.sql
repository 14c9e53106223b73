-- engineering_metrics: DORA analytics, part 5: pipeline health.
--
-- The CI side of delivery: how often each pipeline passes, how long it
-- takes and waits, and how flaky it is.  One run is one attempt
-- (engineering.pipeline_runs).  Runs belong to the window by their start
-- (queued_at when the start is unknown), the expression the event schema
-- indexes.

CREATE TYPE engineering.pipeline_health_report AS (
    service           text,
    pipeline          text,
    branch            text,
    runs              bigint,
    success_rate      float8,
    median_duration   interval,
    p95_duration      interval,
    median_queue_time interval,
    flaky_rate        float8
);
COMMENT ON TYPE engineering.pipeline_health_report IS 'a row of engineering.pipeline_health(): one pipeline on one branch';
COMMENT ON COLUMN engineering.pipeline_health_report.service IS 'the service';
COMMENT ON COLUMN engineering.pipeline_health_report.pipeline IS 'workflow, pipeline or job name';
COMMENT ON COLUMN engineering.pipeline_health_report.branch IS 'branch built (NULL when the source did not say)';
COMMENT ON COLUMN engineering.pipeline_health_report.runs IS 'runs (attempts) that started in the window, whatever their status';
COMMENT ON COLUMN engineering.pipeline_health_report.success_rate IS 'successes / (successes + failures); cancelled, skipped and unfinished runs are left out';
COMMENT ON COLUMN engineering.pipeline_health_report.median_duration IS 'interpolated median of finished_at - started_at over finished runs (success or failure)';
COMMENT ON COLUMN engineering.pipeline_health_report.p95_duration IS 'interpolated 95th percentile of the same durations';
COMMENT ON COLUMN engineering.pipeline_health_report.median_queue_time IS 'interpolated median of started_at - queued_at over runs that know both';
COMMENT ON COLUMN engineering.pipeline_health_report.flaky_rate IS
    'share of the commits built (with a finished run) that failed and then passed on a later run of the same commit';

CREATE FUNCTION engineering.pipeline_health(from_ts timestamptz, to_ts timestamptz, service text DEFAULT NULL)
RETURNS SETOF engineering.pipeline_health_report
LANGUAGE plpgsql STABLE PARALLEL SAFE
-- (as for dora(): JIT compiling the plan costs more than it saves)
SET jit = off
AS $fn$
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION 'pipeline_health() needs a window, got [%, %)', from_ts, to_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_ts < from_ts THEN
        RAISE EXCEPTION 'the window ends (%) before it starts (%)', to_ts, from_ts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- dynamic so that the plan sees whether a service was given (and uses
    -- the (service, start) index when it was)
    RETURN QUERY EXECUTE format($q$
        WITH runs AS (
            SELECT r.service, r.pipeline, r.branch, r.commit_sha, r.status,
                   coalesce(r.started_at, r.queued_at) AS began,
                   r.queued_at, r.started_at, r.finished_at, r.attempt
              FROM engineering.pipeline_runs r
             WHERE coalesce(r.started_at, r.queued_at) >= $1
               AND coalesce(r.started_at, r.queued_at) < $2
               %s
        ),
        commits AS (
            -- a commit is flaky on a pipeline when one of its runs failed
            -- and a later one passed
            SELECT c.service, c.pipeline, c.branch,
                   count(*) AS built,
                   count(*) FILTER (WHERE c.last_success > c.first_failure) AS flaky
              FROM (
                  SELECT r.service, r.pipeline, r.branch, r.commit_sha,
                         min(r.began) FILTER (WHERE r.status = 'failure') AS first_failure,
                         max(r.began) FILTER (WHERE r.status = 'success') AS last_success
                    FROM runs r
                   WHERE r.commit_sha IS NOT NULL AND r.status IN ('success', 'failure')
                   GROUP BY r.service, r.pipeline, r.branch, r.commit_sha
              ) c
             GROUP BY c.service, c.pipeline, c.branch
        ),
        totals AS (
            SELECT r.service, r.pipeline, r.branch,
                   count(*) AS runs,
                   count(*) FILTER (WHERE r.status = 'success')::float8
                       / nullif(count(*) FILTER (WHERE r.status IN ('success', 'failure')), 0) AS success_rate,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.finished_at - r.started_at)
                       FILTER (WHERE r.status IN ('success', 'failure')) AS median_duration,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY r.finished_at - r.started_at)
                       FILTER (WHERE r.status IN ('success', 'failure')) AS p95_duration,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.started_at - r.queued_at) AS median_queue_time
              FROM runs r
             GROUP BY r.service, r.pipeline, r.branch
        )
        SELECT t.service, t.pipeline, t.branch, t.runs, t.success_rate,
               t.median_duration, t.p95_duration, t.median_queue_time,
               c.flaky::float8 / nullif(c.built, 0)
          FROM totals t
          LEFT JOIN commits c
            ON c.service = t.service AND c.pipeline = t.pipeline AND c.branch IS NOT DISTINCT FROM t.branch
         ORDER BY t.service, t.pipeline, t.branch NULLS LAST
        $q$, CASE WHEN service IS NOT NULL THEN 'AND r.service = $3' ELSE '' END)
    USING from_ts, to_ts, service;
END
$fn$;

COMMENT ON FUNCTION engineering.pipeline_health(timestamptz, timestamptz, text) IS
    'CI health per service, pipeline and branch over the runs that started in [from_ts, to_ts): runs, success rate, median and p95 duration, median queue time, flaky rate';
