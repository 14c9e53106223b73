-- engineering_metrics: SLO burn rate and remaining error budget.
--
-- burn_rate = (1 - sum(good) / sum(total)) / (1 - objective), a ratio of
-- sums; error_budget_remaining = 1 - burn_rate (not clamped).  The state is
-- a real type with a combine function so that Citus can push the aggregates
-- down.  The C code is in src/agg_burn_rate.c.

CREATE TYPE engineering.burn_rate_state;

CREATE FUNCTION engineering._burn_rate_state_in(cstring)
RETURNS engineering.burn_rate_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_in';
COMMENT ON FUNCTION engineering._burn_rate_state_in(cstring) IS
    'internal: input function of burn_rate_state ("objective=<x> good=<n> total=<n>")';

CREATE FUNCTION engineering._burn_rate_state_out(engineering.burn_rate_state)
RETURNS cstring
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_out';
COMMENT ON FUNCTION engineering._burn_rate_state_out(engineering.burn_rate_state) IS
    'internal: output function of burn_rate_state';

CREATE FUNCTION engineering._burn_rate_state_recv(internal)
RETURNS engineering.burn_rate_state
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_recv';
COMMENT ON FUNCTION engineering._burn_rate_state_recv(internal) IS
    'internal: binary input function of burn_rate_state (validated)';

CREATE FUNCTION engineering._burn_rate_state_send(engineering.burn_rate_state)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_state_send';
COMMENT ON FUNCTION engineering._burn_rate_state_send(engineering.burn_rate_state) IS
    'internal: binary output function of burn_rate_state';

CREATE TYPE engineering.burn_rate_state (
    INPUT = engineering._burn_rate_state_in,
    OUTPUT = engineering._burn_rate_state_out,
    RECEIVE = engineering._burn_rate_state_recv,
    SEND = engineering._burn_rate_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE engineering.burn_rate_state IS
    'state of burn_rate() and error_budget_remaining(): the objective and the sums of good and total events';

CREATE FUNCTION engineering._burn_rate_trans(state engineering.burn_rate_state, good bigint, total bigint, objective float8)
RETURNS engineering.burn_rate_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_trans_counts';
COMMENT ON FUNCTION engineering._burn_rate_trans(engineering.burn_rate_state, bigint, bigint, float8) IS
    'internal: transition of burn_rate(good, total, objective); validates and adds the counts';

CREATE FUNCTION engineering._burn_rate_trans(state engineering.burn_rate_state, ok boolean, objective float8)
RETURNS engineering.burn_rate_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_trans_ok';
COMMENT ON FUNCTION engineering._burn_rate_trans(engineering.burn_rate_state, boolean, float8) IS
    'internal: transition of burn_rate(ok, objective); counts one event';

CREATE FUNCTION engineering._burn_rate_combine(state engineering.burn_rate_state, other engineering.burn_rate_state)
RETURNS engineering.burn_rate_state
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_combine';
COMMENT ON FUNCTION engineering._burn_rate_combine(engineering.burn_rate_state, engineering.burn_rate_state) IS
    'internal: combines partial burn-rate states (parallel workers, Citus workers)';

CREATE FUNCTION engineering._burn_rate_final(state engineering.burn_rate_state)
RETURNS float8
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_burn_rate_final';
COMMENT ON FUNCTION engineering._burn_rate_final(engineering.burn_rate_state) IS
    'internal: final of burn_rate(); NULL when sum(total) = 0';

CREATE FUNCTION engineering._error_budget_remaining_final(state engineering.burn_rate_state)
RETURNS float8
LANGUAGE C STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_error_budget_remaining_final';
COMMENT ON FUNCTION engineering._error_budget_remaining_final(engineering.burn_rate_state) IS
    'internal: final of error_budget_remaining(); 1 - burn rate, NULL when sum(total) = 0';

CREATE AGGREGATE engineering.burn_rate(good bigint, total bigint, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._burn_rate_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.burn_rate(bigint, bigint, float8) IS
    'SLO burn rate (1 - sum(good)/sum(total)) / (1 - objective); objective in (0,1), the same on every row; NULL when sum(total) = 0';

CREATE AGGREGATE engineering.burn_rate(ok boolean, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._burn_rate_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.burn_rate(boolean, float8) IS
    'SLO burn rate over one row per event (ok = good event): (1 - good/total) / (1 - objective); NULL for no rows';

CREATE AGGREGATE engineering.error_budget_remaining(good bigint, total bigint, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._error_budget_remaining_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.error_budget_remaining(bigint, bigint, float8) IS
    'fraction of the error budget left over the rows given: 1 - burn_rate; negative when overspent, never clamped';

CREATE AGGREGATE engineering.error_budget_remaining(ok boolean, objective float8) (
    SFUNC = engineering._burn_rate_trans,
    STYPE = engineering.burn_rate_state,
    INITCOND = 'good=0 total=0',
    FINALFUNC = engineering._error_budget_remaining_final,
    COMBINEFUNC = engineering._burn_rate_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.error_budget_remaining(boolean, float8) IS
    'fraction of the error budget left over one row per event: 1 - burn_rate(ok, objective); never clamped';
