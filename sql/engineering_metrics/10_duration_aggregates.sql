-- engineering_metrics: exact duration aggregates.
--
-- lead_time and time_to_restore return exactly what percentile_cont returns
-- over end - start (same interval, same text), mttr the exact mean,
-- downtime the length of the union of the spans.  All skip rows with a NULL
-- timestamp, return NULL for no rows, and refuse a row whose end precedes
-- its start.  The C code is in src/agg_*.c.

------------------------------------------------------------------------------
-- Exact percentiles: lead_time, time_to_restore.  The state is internal (an
-- array of microsecond durations), with serialize/deserialize for parallel
-- workers.
------------------------------------------------------------------------------

CREATE FUNCTION engineering._durations_trans(state internal, started_at timestamptz, ended_at timestamptz)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_trans';
COMMENT ON FUNCTION engineering._durations_trans(internal, timestamptz, timestamptz) IS
    'internal: transition of lead_time/time_to_restore (median form); appends ended_at - started_at';

CREATE FUNCTION engineering._durations_trans(state internal, started_at timestamptz, ended_at timestamptz, fraction float8)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_trans_fraction';
COMMENT ON FUNCTION engineering._durations_trans(internal, timestamptz, timestamptz, float8) IS
    'internal: transition of lead_time/time_to_restore with a fraction; appends ended_at - started_at';

CREATE FUNCTION engineering._durations_combine(state internal, other internal)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_combine';
COMMENT ON FUNCTION engineering._durations_combine(internal, internal) IS
    'internal: combines partial lead_time/time_to_restore states of parallel workers';

CREATE FUNCTION engineering._durations_serialize(state internal)
RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_serialize';
COMMENT ON FUNCTION engineering._durations_serialize(internal) IS
    'internal: serializes a lead_time/time_to_restore state for a parallel worker';

CREATE FUNCTION engineering._durations_deserialize(bytes bytea, dummy internal)
RETURNS internal
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_deserialize';
COMMENT ON FUNCTION engineering._durations_deserialize(bytea, internal) IS
    'internal: validates and deserializes a lead_time/time_to_restore state';

CREATE FUNCTION engineering._durations_percentile_final(state internal)
RETURNS interval
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_durations_percentile_final';
COMMENT ON FUNCTION engineering._durations_percentile_final(internal) IS
    'internal: final of lead_time/time_to_restore; the percentile exactly as percentile_cont computes it';

CREATE AGGREGATE engineering.lead_time(changed_at timestamptz, deployed_at timestamptz) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.lead_time(timestamptz, timestamptz) IS
    'median of deployed_at - changed_at, exactly percentile_cont(0.5) WITHIN GROUP (ORDER BY deployed_at - changed_at); NULL rows skipped';

CREATE AGGREGATE engineering.lead_time(changed_at timestamptz, deployed_at timestamptz, fraction float8) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.lead_time(timestamptz, timestamptz, float8) IS
    'percentile (0 to 1, the same on every row) of deployed_at - changed_at, exactly as percentile_cont(fraction) computes it';

CREATE AGGREGATE engineering.time_to_restore(opened_at timestamptz, resolved_at timestamptz) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.time_to_restore(timestamptz, timestamptz) IS
    'median of resolved_at - opened_at over resolved incidents (NULL resolved_at skipped), exactly as percentile_cont(0.5)';

CREATE AGGREGATE engineering.time_to_restore(opened_at timestamptz, resolved_at timestamptz, fraction float8) (
    SFUNC = engineering._durations_trans,
    STYPE = internal,
    FINALFUNC = engineering._durations_percentile_final,
    COMBINEFUNC = engineering._durations_combine,
    SERIALFUNC = engineering._durations_serialize,
    DESERIALFUNC = engineering._durations_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.time_to_restore(timestamptz, timestamptz, float8) IS
    'percentile of resolved_at - opened_at over resolved incidents, exactly as percentile_cont(fraction) computes it';

------------------------------------------------------------------------------
-- mttr: exact mean.  Its state is a real type (not internal) so that Citus
-- can push the aggregate down.
------------------------------------------------------------------------------

CREATE TYPE engineering.mttr_state;

CREATE FUNCTION engineering._mttr_state_in(cstring)
RETURNS engineering.mttr_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_in';
COMMENT ON FUNCTION engineering._mttr_state_in(cstring) IS
    'internal: input function of mttr_state ("count=<n> sum_us=<n>")';

CREATE FUNCTION engineering._mttr_state_out(engineering.mttr_state)
RETURNS cstring
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_out';
COMMENT ON FUNCTION engineering._mttr_state_out(engineering.mttr_state) IS
    'internal: output function of mttr_state';

CREATE FUNCTION engineering._mttr_state_recv(internal)
RETURNS engineering.mttr_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_recv';
COMMENT ON FUNCTION engineering._mttr_state_recv(internal) IS
    'internal: binary input function of mttr_state (validated)';

CREATE FUNCTION engineering._mttr_state_send(engineering.mttr_state)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_state_send';
COMMENT ON FUNCTION engineering._mttr_state_send(engineering.mttr_state) IS
    'internal: binary output function of mttr_state';

CREATE TYPE engineering.mttr_state (
    INPUT = engineering._mttr_state_in,
    OUTPUT = engineering._mttr_state_out,
    RECEIVE = engineering._mttr_state_recv,
    SEND = engineering._mttr_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE engineering.mttr_state IS
    'state of mttr(): number of durations and their exact 128-bit sum in microseconds';

CREATE FUNCTION engineering._mttr_trans(state engineering.mttr_state, opened_at timestamptz, resolved_at timestamptz)
RETURNS engineering.mttr_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_trans';
COMMENT ON FUNCTION engineering._mttr_trans(engineering.mttr_state, timestamptz, timestamptz) IS
    'internal: transition of mttr(); counts resolved_at - opened_at';

CREATE FUNCTION engineering._mttr_combine(state engineering.mttr_state, other engineering.mttr_state)
RETURNS engineering.mttr_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_combine';
COMMENT ON FUNCTION engineering._mttr_combine(engineering.mttr_state, engineering.mttr_state) IS
    'internal: combines partial mttr() states (parallel workers, Citus workers)';

CREATE FUNCTION engineering._mttr_final(state engineering.mttr_state)
RETURNS interval
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_mttr_final';
COMMENT ON FUNCTION engineering._mttr_final(engineering.mttr_state) IS
    'internal: final of mttr(); the exact mean, NULL for no rows';

CREATE AGGREGATE engineering.mttr(opened_at timestamptz, resolved_at timestamptz) (
    SFUNC = engineering._mttr_trans,
    STYPE = engineering.mttr_state,
    INITCOND = 'count=0 sum_us=0',
    FINALFUNC = engineering._mttr_final,
    COMBINEFUNC = engineering._mttr_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.mttr(timestamptz, timestamptz) IS
    'mean time to restore: exact mean of resolved_at - opened_at over resolved incidents, rounded to the microsecond';

------------------------------------------------------------------------------
-- downtime: length of the union of [started_at, ended_at) spans.
------------------------------------------------------------------------------

CREATE FUNCTION engineering._spans_trans(state internal, started_at timestamptz, ended_at timestamptz)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_trans';
COMMENT ON FUNCTION engineering._spans_trans(internal, timestamptz, timestamptz) IS
    'internal: transition of downtime(); adds [started_at, ended_at), merging with overlapping spans';

CREATE FUNCTION engineering._spans_combine(state internal, other internal)
RETURNS internal
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_combine';
COMMENT ON FUNCTION engineering._spans_combine(internal, internal) IS
    'internal: combines partial downtime() states of parallel workers';

CREATE FUNCTION engineering._spans_serialize(state internal)
RETURNS bytea
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_serialize';
COMMENT ON FUNCTION engineering._spans_serialize(internal) IS
    'internal: serializes a downtime() state for a parallel worker';

CREATE FUNCTION engineering._spans_deserialize(bytes bytea, dummy internal)
RETURNS internal
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_deserialize';
COMMENT ON FUNCTION engineering._spans_deserialize(bytea, internal) IS
    'internal: validates and deserializes a downtime() state';

CREATE FUNCTION engineering._spans_union_final(state internal)
RETURNS interval
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_spans_union_final';
COMMENT ON FUNCTION engineering._spans_union_final(internal) IS
    'internal: final of downtime(); total length of the merged spans';

CREATE AGGREGATE engineering.downtime(started_at timestamptz, ended_at timestamptz) (
    SFUNC = engineering._spans_trans,
    STYPE = internal,
    FINALFUNC = engineering._spans_union_final,
    COMBINEFUNC = engineering._spans_combine,
    SERIALFUNC = engineering._spans_serialize,
    DESERIALFUNC = engineering._spans_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.downtime(timestamptz, timestamptz) IS
    'length of the union of [started_at, ended_at) spans: overlapping outages counted once; NULL rows skipped';
