-- engineering_metrics 0.1.0 -> 0.2.0
--
-- Every change of release 0.2.0 to the SQL objects, in the order it was made.
-- A fresh 0.2.0 install (the parts in sql/engineering_metrics/) and a 0.1.0
-- install updated by this script must end up with the same catalog:
-- test/t/003_upgrade.pl compares them object by object.

\echo Use "ALTER EXTENSION engineering_metrics UPDATE TO '0.2.0'" to load this file. \quit

-- issue 13: GitHub's rate-limit rule (a reset counts only when its quota is spent)
DROP FUNCTION engineering._backoff_seconds(boolean, text, text, text, timestamptz, integer);
CREATE FUNCTION engineering._backoff_seconds(rate_limited boolean, retry_after text,
                                             x_ratelimit_reset text, x_ratelimit_remaining text,
                                             ratelimit_reset text, ratelimit_remaining text,
                                             at timestamptz, failures integer)
RETURNS bigint
LANGUAGE C IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_backoff_seconds';
COMMENT ON FUNCTION engineering._backoff_seconds(boolean, text, text, text, text, text, timestamptz, integer) IS
    'the engine''s backoff in seconds: Retry-After, then a reset whose remaining count is 0 or absent (x-ratelimit-reset, then ratelimit-reset; below 10^9 a delta, else epoch), else exponential from 60 s';
