-- Untrusted bytes and text: duration_sketch, mttr_state and
-- burn_rate_state refuse corrupt, truncated and random input with an
-- error (never a crash), and whatever they accept is a consistent value.
-- recv is exercised for real through binary COPY.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET search_path = engineering, public;

-- accepts(bytes): false when the bytea cast (recv's validation) refuses the
-- bytes; true when it accepts them, after checking that the value is
-- consistent: it reads back to the same bytes through the text form, and
-- every accessor answers.  Any other error propagates and fails the test.
CREATE FUNCTION pg_temp.accepts(bytes bytea) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s engineering.duration_sketch;
BEGIN
    s := bytes::engineering.duration_sketch;
    IF s::text::engineering.duration_sketch::bytea <> bytes
       OR engineering.percentile(s, 0.5) IS NULL OR engineering.mean(s) IS NULL
       OR engineering.sample_count(s) < 1
       OR engineering.percentile(s, 0) > engineering.percentile(s, 1) THEN
        RAISE EXCEPTION 'accepted an inconsistent sketch: %', bytes;
    END IF;
    RETURN true;
EXCEPTION WHEN invalid_binary_representation THEN
    RETURN false;
END $$;

-- accepts_text(text): the same for the text form
CREATE FUNCTION pg_temp.accepts_text(input text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s engineering.duration_sketch;
BEGIN
    s := input::engineering.duration_sketch;
    IF s::text::engineering.duration_sketch::bytea <> s::bytea
       OR engineering.percentile(s, 0.5) IS NULL OR engineering.sample_count(s) < 1 THEN
        RAISE EXCEPTION 'accepted an inconsistent sketch: %', input;
    END IF;
    RETURN true;
EXCEPTION WHEN invalid_text_representation THEN
    RETURN false;
END $$;

SELECT setseed(0.91);
CREATE TEMP TABLE base AS
SELECT duration_sketch(t, t + exp(random() * 12) * interval '1 second') AS sketch
FROM generate_series(1, 3000), (SELECT timestamptz '2024-01-01' AS t) t;
SELECT octet_length(sketch::bytea) > 200 AS has_many_buckets FROM base;

------------------------------------------------------------------------------
-- Binary form.
------------------------------------------------------------------------------
-- every truncation is refused, and so is a byte too many
SELECT count(*) AS prefixes, count(*) FILTER (WHERE NOT pg_temp.accepts(substring(b FROM 1 FOR n))) AS refused
FROM (SELECT sketch::bytea AS b FROM base) s, generate_series(0, octet_length(b) - 1) n;
SELECT pg_temp.accepts(sketch::bytea || '\x00'::bytea) AS accepts_trailing_byte FROM base;

-- 3,000 random single-byte changes: each refused, or a consistent sketch
SELECT count(*) AS mutations,
       count(*) FILTER (WHERE NOT ok) > 0 AS some_refused
FROM (SELECT pg_temp.accepts(set_byte(b, (random() * (octet_length(b) - 1))::int, (random() * 255)::int)) AS ok
      FROM (SELECT sketch::bytea AS b FROM base) s, generate_series(1, 3000)) x;

-- 2,000 random byte strings of 0 to 40 bytes, half of them with a valid header
SELECT count(*) AS random_inputs, count(*) FILTER (WHERE NOT ok) > 0 AS some_refused
FROM (SELECT pg_temp.accepts(CASE WHEN i % 2 = 0 THEN '\x0100'::bytea ELSE '\x'::bytea END || r.bytes) AS ok
      FROM generate_series(1, 2000) i,
      LATERAL (SELECT decode(coalesce(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), ''), 'hex') AS bytes
               FROM generate_series(1, (random() * 40)::int + i * 0)) r) x;

-- what exactly is refused (count=1 zeros=0 min=max=sum=1, one bucket, index 0, count 1: 01 00 01 00 01 01 01 01 00 01)
SELECT pg_temp.accepts('\x01000100010101010001') AS valid_minimal;
SELECT regress.error_of($$SELECT '\x02000100010101010001'::bytea::engineering.duration_sketch$$) AS version_2;
SELECT regress.error_of($$SELECT '\x01010100010101010001'::bytea::engineering.duration_sketch$$) AS flags;
SELECT regress.error_of($$SELECT '\x0100810000010101010001'::bytea::engineering.duration_sketch$$) AS overlong_varint;
SELECT regress.error_of($$SELECT '\x0100ffffffffffffffffff7f00010101010001'::bytea::engineering.duration_sketch$$) AS varint_overflow;
SELECT regress.error_of($$SELECT '\x01000100010101010002'::bytea::engineering.duration_sketch$$) AS counts_mismatch;
SELECT regress.error_of($$SELECT '\x01000100010101010100'::bytea::engineering.duration_sketch$$) AS empty_bucket_index_1;
SELECT regress.error_of($$SELECT '\x0100010001010101ff1101'::bytea::engineering.duration_sketch$$) AS index_out_of_range;
SELECT regress.error_of($$SELECT '\x'::bytea::engineering.duration_sketch$$) AS empty;

------------------------------------------------------------------------------
-- Text form.
------------------------------------------------------------------------------
SELECT count(*) AS prefixes, count(*) FILTER (WHERE NOT pg_temp.accepts_text(left(t, n))) AS refused
FROM (SELECT sketch::text AS t FROM base) s, generate_series(0, length(t) - 1) n;

SELECT count(*) AS mutations, count(*) FILTER (WHERE NOT ok) > 0 AS some_refused
FROM (SELECT pg_temp.accepts_text(overlay(t PLACING substr('0123456789 ,:=_-vxe', (random() * 19)::int + 1, 1)
                                           FROM (random() * (length(t) - 1))::int + 1 FOR 1)) AS ok
      FROM (SELECT sketch::text AS t FROM base) s, generate_series(1, 2000)) x;

SELECT pg_temp.accepts_text('v1 count=1 zeros=0 min_us=1 max_us=1 sum_us=1 buckets=0:1') AS valid_minimal,
       pg_temp.accepts_text(E'  v1\tcount=1\nzeros=0 min_us=1 max_us=1 sum_us=1 buckets=0:1  ') AS blanks_accepted;
SELECT regress.error_of($$SELECT 'v2 count=1 zeros=0 min_us=1 max_us=1 sum_us=1 buckets=0:1'::engineering.duration_sketch$$) AS version;
SELECT regress.error_of($$SELECT 'v1 count=0 zeros=0 min_us=0 max_us=0 sum_us=0 buckets='::engineering.duration_sketch$$) AS empty_sketch;
SELECT regress.error_of($$SELECT 'v1 count=2 zeros=0 min_us=1 max_us=1 sum_us=2 buckets=0:1'::engineering.duration_sketch$$) AS count_mismatch;
SELECT regress.error_of($$SELECT 'v1 count=1 zeros=0 min_us=1 max_us=1 sum_us=1 buckets=5:1'::engineering.duration_sketch$$) AS bucket_without_integers;
SELECT regress.error_of($$SELECT 'v1 count=2 zeros=0 min_us=1 max_us=2 sum_us=3 buckets=36:1,0:1'::engineering.duration_sketch$$) AS out_of_order;
SELECT regress.error_of($$SELECT 'v1 count=2 zeros=0 min_us=1 max_us=2 sum_us=3 buckets=0:1,0:1'::engineering.duration_sketch$$) AS duplicate_index;
SELECT regress.error_of($$SELECT 'v1 count=1 zeros=0 min_us=2 max_us=2 sum_us=2 buckets=0:1'::engineering.duration_sketch$$) AS min_outside_bucket;
SELECT regress.error_of($$SELECT 'v1 count=2 zeros=0 min_us=1 max_us=2 sum_us=9 buckets=0:1,36:1'::engineering.duration_sketch$$) AS sum_inconsistent;
SELECT regress.error_of($$SELECT 'v1 count=2 zeros=1 min_us=1 max_us=2 sum_us=2 buckets=36:1'::engineering.duration_sketch$$) AS min_with_zeros;
SELECT regress.error_of($$SELECT 'v1 count=1 zeros=0 min_us=1 max_us=1 sum_us=1 buckets=0:0'::engineering.duration_sketch$$) AS zero_count_bucket;
SELECT regress.error_of($$SELECT 'v1 count=1 zeros=0 min_us=1 max_us=1 sum_us=1 buckets=0:1 junk'::engineering.duration_sketch$$) AS trailing_text;
SELECT regress.error_of($$SELECT 'v1 count=1 zeros=0 max_us=1 min_us=1 sum_us=1 buckets=0:1'::engineering.duration_sketch$$) AS fields_out_of_order;
SELECT regress.error_of($$SELECT 'v1 count=1 zeros=0 min_us=9223372036854775808 max_us=9223372036854775808 sum_us=9223372036854775808 buckets=2206:1'::engineering.duration_sketch$$) AS beyond_int64;

------------------------------------------------------------------------------
-- recv through binary COPY: valid values round-trip, corrupt ones are
-- refused with an error.
------------------------------------------------------------------------------
CREATE TEMP TABLE sketch_in (sketch duration_sketch);
CREATE TEMP TABLE mttr_in (state mttr_state);
CREATE TEMP TABLE burn_in (state burn_rate_state);

\copy (SELECT sketch FROM base) TO 'results/agg_sketch.bin' WITH (FORMAT binary)
\copy sketch_in FROM 'results/agg_sketch.bin' WITH (FORMAT binary)
SELECT s.sketch::bytea = b.sketch::bytea AS sketch_round_trips FROM sketch_in s, base b;
\copy (SELECT substring(sketch::bytea FROM 1 FOR 40) FROM base) TO 'results/agg_sketch_bad.bin' WITH (FORMAT binary)
\copy sketch_in FROM 'results/agg_sketch_bad.bin' WITH (FORMAT binary)
\copy (SELECT set_byte(sketch::bytea, 0, 7) FROM base) TO 'results/agg_sketch_bad.bin' WITH (FORMAT binary)
\copy sketch_in FROM 'results/agg_sketch_bad.bin' WITH (FORMAT binary)

-- mttr_state: version byte, count, sum (high and low 64 bits)
SELECT engineering._mttr_state_send('count=3 sum_us=10') AS mttr_state_bytes;
\copy (SELECT engineering._mttr_state_send('count=3 sum_us=10')) TO 'results/agg_mttr.bin' WITH (FORMAT binary)
\copy mttr_in FROM 'results/agg_mttr.bin' WITH (FORMAT binary)
SELECT state FROM mttr_in;
CREATE TEMP VIEW mttr_bytes AS SELECT engineering._mttr_state_send('count=3 sum_us=10') AS b;
-- version 2
\copy (SELECT set_byte(b, 0, 2) FROM mttr_bytes) TO 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
\copy mttr_in FROM 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
-- negative count
\copy (SELECT overlay(b PLACING '\xffffffffffffffff' FROM 2 FOR 8) FROM mttr_bytes) TO 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
\copy mttr_in FROM 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
-- a sum larger than count times the longest duration
\copy (SELECT overlay(b PLACING '\x7fffffffffffffff' FROM 10 FOR 8) FROM mttr_bytes) TO 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
\copy mttr_in FROM 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
-- truncated
\copy (SELECT substring(b FROM 1 FOR 11) FROM mttr_bytes) TO 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
\copy mttr_in FROM 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
-- a byte too many
\copy (SELECT b || '\x00'::bytea FROM mttr_bytes) TO 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
\copy mttr_in FROM 'results/agg_mttr_bad.bin' WITH (FORMAT binary)
SELECT count(*) AS rows_loaded FROM mttr_in;

-- burn_rate_state: version, flags, objective, good, total
SELECT engineering._burn_rate_state_send('objective=0.999 good=5 total=10') AS burn_rate_state_bytes;
\copy (SELECT engineering._burn_rate_state_send('objective=0.999 good=5 total=10')) TO 'results/agg_burn.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn.bin' WITH (FORMAT binary)
SELECT state FROM burn_in;
CREATE TEMP VIEW burn_bytes AS SELECT engineering._burn_rate_state_send('objective=0.999 good=5 total=10') AS b;
-- good (11) > total (10)
\copy (SELECT set_byte(b, 17, 11) FROM burn_bytes) TO 'results/agg_burn_bad.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn_bad.bin' WITH (FORMAT binary)
-- objective 1.0
\copy (SELECT overlay(b PLACING float8send(1.0) FROM 3 FOR 8) FROM burn_bytes) TO 'results/agg_burn_bad.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn_bad.bin' WITH (FORMAT binary)
-- objective NaN
\copy (SELECT overlay(b PLACING float8send('NaN') FROM 3 FOR 8) FROM burn_bytes) TO 'results/agg_burn_bad.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn_bad.bin' WITH (FORMAT binary)
-- unknown flag
\copy (SELECT set_byte(b, 1, 3) FROM burn_bytes) TO 'results/agg_burn_bad.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn_bad.bin' WITH (FORMAT binary)
-- counts without an objective
\copy (SELECT set_byte(b, 1, 0) FROM burn_bytes) TO 'results/agg_burn_bad.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn_bad.bin' WITH (FORMAT binary)
-- truncated
\copy (SELECT substring(b FROM 1 FOR 9) FROM burn_bytes) TO 'results/agg_burn_bad.bin' WITH (FORMAT binary)
\copy burn_in FROM 'results/agg_burn_bad.bin' WITH (FORMAT binary)
SELECT count(*) AS rows_loaded FROM burn_in;
