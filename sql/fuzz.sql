-- SQL-level fuzz: untrusted bytes and text reach our C code through type
-- input (casts, text COPY), binary COPY (the types' recv functions) and the
-- parsers connectors apply to vendor data.  Random, truncated and mutated
-- inputs must be refused with an ordinary error or give a consistent value;
-- never a crash, and never an internal error (XX000), which would mean an
-- elog() reached from input.  aggregates_corrupt already pins the exact
-- messages of hand-made corruptions and the sketch's every truncation by
-- cast; this file feeds random bytes through binary COPY itself, one row
-- per COPY, for the three state types, and fuzzes the vendor-data parsers.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
SET search_path = engineering, public;
SELECT setseed(0.5);

-- n random bytes
CREATE FUNCTION pg_temp.random_bytes(n integer) RETURNS bytea
LANGUAGE sql AS $$
    SELECT decode(coalesce(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), ''), 'hex')
    FROM generate_series(1, n)
$$;

-- random text of n characters drawn from an alphabet
CREATE FUNCTION pg_temp.random_text(n integer, alphabet text) RETURNS text
LANGUAGE sql AS $$
    SELECT coalesce(string_agg(substr(alphabet, 1 + (random() * (length(alphabet) - 1))::int, 1), ''), '')
    FROM generate_series(1, n)
$$;

-- copy_in(bytes, type): writes a binary COPY file whose single row holds
-- these bytes as the field, then COPYs it into a table of the given type.
-- Returns 'accepted', or the SQLSTATE of the refusal.
CREATE TABLE pg_temp.sink_sketch (v duration_sketch);
CREATE TABLE pg_temp.sink_mttr (v mttr_state);
CREATE TABLE pg_temp.sink_burn (v burn_rate_state);
CREATE FUNCTION pg_temp.copy_in(bytes bytea, sink text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    f text := current_setting('data_directory') || '/em_fuzz_copy.bin';
BEGIN
    EXECUTE format('COPY (SELECT %L::bytea) TO %L WITH (FORMAT binary)', bytes, f);
    EXECUTE format('COPY %s FROM %L WITH (FORMAT binary)', sink, f);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- the same through the type's input function
CREATE FUNCTION pg_temp.cast_in(input text, type text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT %L::%s', input, type);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

------------------------------------------------------------------------------
-- duration_sketch through binary COPY: every prefix of real sketches, random
-- bytes (half with a valid header), and single-byte mutations.
------------------------------------------------------------------------------
CREATE TEMP TABLE sketches AS
SELECT g AS k, duration_sketch(t, t + exp(random() * (4 + g)) * interval '1 second') AS sketch
FROM generate_series(1, 4) g, LATERAL generate_series(1, 50 * g) i,
     (SELECT timestamptz '2024-01-01' AS t) t
GROUP BY g;

CREATE TEMP TABLE outcomes (test text, outcome text);
INSERT INTO outcomes
SELECT 'sketch prefixes', pg_temp.copy_in(substring(sketch::bytea FROM 1 FOR n), 'pg_temp.sink_sketch')
FROM sketches, generate_series(0, octet_length(sketch::bytea) - 1) n;
INSERT INTO outcomes
SELECT 'sketch whole', pg_temp.copy_in(sketch::bytea, 'pg_temp.sink_sketch') FROM sketches;
INSERT INTO outcomes
SELECT 'sketch random', pg_temp.copy_in(CASE WHEN i % 2 = 0 THEN '\x0100'::bytea ELSE '\x'::bytea END
                                        || pg_temp.random_bytes((random() * 60)::int + i * 0),
                                        'pg_temp.sink_sketch')
FROM generate_series(1, 400) i;
INSERT INTO outcomes
SELECT 'sketch mutated', pg_temp.copy_in(set_byte(b, (random() * (octet_length(b) - 1))::int, (random() * 255)::int),
                                         'pg_temp.sink_sketch')
FROM (SELECT sketch::bytea AS b FROM sketches) s, generate_series(1, 100);

-- Every prefix is refused (a prefix is never a whole sketch), every whole
-- sketch accepted; random and mutated bytes are refused with 22P03
-- (invalid_binary_representation) or accepted.
SELECT test, outcome, count(*) FROM outcomes
WHERE test IN ('sketch prefixes', 'sketch whole')
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT test, count(*) AS inputs,
       count(*) FILTER (WHERE outcome = '22P03') > 0 AS some_refused,
       count(*) FILTER (WHERE outcome NOT IN ('22P03', 'accepted')) AS other_outcomes
FROM outcomes WHERE test IN ('sketch random', 'sketch mutated') GROUP BY 1 ORDER BY 1;

-- what COPY accepted is a consistent sketch: its forms agree and every
-- accessor answers within [min, max]
SELECT count(*) > 0 AS some_rows,
       bool_and(v::text::duration_sketch::bytea = v::bytea
                AND percentile(v, 0) <= percentile(v, 0.5)
                AND percentile(v, 0.5) <= percentile(v, 1)
                AND sample_count(v) >= 1
                AND mean(v) BETWEEN percentile(v, 0) AND percentile(v, 1)) AS all_consistent
FROM pg_temp.sink_sketch;
-- and rolls up with the real ones without complaint
SELECT sample_count(rollup(v)) >= (SELECT sum(sample_count(sketch)) FROM sketches) AS rollup_ok
FROM pg_temp.sink_sketch;

------------------------------------------------------------------------------
-- mttr_state and burn_rate_state through binary COPY: random bytes of every
-- length around the real ones, and every prefix of real values.
------------------------------------------------------------------------------
TRUNCATE outcomes;
INSERT INTO outcomes
SELECT 'mttr random', pg_temp.copy_in(pg_temp.random_bytes((random() * 40)::int + i * 0), 'pg_temp.sink_mttr')
FROM generate_series(1, 300) i;
INSERT INTO outcomes
SELECT 'mttr prefixes', pg_temp.copy_in(substring(_mttr_state_send('count=3 sum_us=10') FROM 1 FOR n), 'pg_temp.sink_mttr')
FROM generate_series(0, octet_length(_mttr_state_send('count=3 sum_us=10')) - 1) n;
INSERT INTO outcomes
SELECT 'burn random', pg_temp.copy_in(CASE WHEN i % 2 = 0 THEN '\x01'::bytea ELSE '\x'::bytea END
                                      || pg_temp.random_bytes((random() * 40)::int + i * 0), 'pg_temp.sink_burn')
FROM generate_series(1, 300) i;
INSERT INTO outcomes
SELECT 'burn prefixes', pg_temp.copy_in(substring(_burn_rate_state_send('objective=0.999 good=5 total=10') FROM 1 FOR n),
                                        'pg_temp.sink_burn')
FROM generate_series(0, octet_length(_burn_rate_state_send('objective=0.999 good=5 total=10')) - 1) n;
INSERT INTO outcomes
VALUES ('mttr whole', pg_temp.copy_in(_mttr_state_send('count=3 sum_us=10'), 'pg_temp.sink_mttr')),
       ('burn whole', pg_temp.copy_in(_burn_rate_state_send('objective=0.999 good=5 total=10'), 'pg_temp.sink_burn'));
-- (a value cut short is refused by PostgreSQL's message reader, 08P01
-- "insufficient data left in message", as for its own types; a value of the
-- right length by the type's validation, 22P03)
SELECT test, count(*) AS inputs,
       count(*) FILTER (WHERE outcome = 'accepted') AS accepted,
       string_agg(DISTINCT outcome, ' ' ORDER BY outcome) AS outcomes
FROM outcomes GROUP BY 1 ORDER BY 1;
-- accepted states are consistent: they print and read back to themselves
SELECT count(*) AS mttr_rows, count(*) FILTER (WHERE v::text::mttr_state::text <> v::text) AS mttr_inconsistent
FROM pg_temp.sink_mttr;
SELECT count(*) AS burn_rows, count(*) FILTER (WHERE v::text::burn_rate_state::text <> v::text) AS burn_inconsistent
FROM pg_temp.sink_burn;

------------------------------------------------------------------------------
-- Text input of the three types: random strings over each form's alphabet,
-- and mutations of real text forms.
------------------------------------------------------------------------------
TRUNCATE outcomes;
INSERT INTO outcomes
SELECT 'sketch text random', pg_temp.cast_in(pg_temp.random_text((random() * 80)::int + i * 0,
                                              'v1 count=zeros_minaxum:,0123456789'), 'duration_sketch')
FROM generate_series(1, 300) i;
INSERT INTO outcomes
SELECT 'sketch text mutated', pg_temp.cast_in(overlay(t PLACING pg_temp.random_text(1 + (random() * 3)::int, E'0123456789 ,:=-\t\\x')
                                                      FROM 1 + (random() * (length(t) - 1))::int FOR (random() * 3)::int),
                                              'duration_sketch')
FROM (SELECT sketch::text AS t FROM sketches) s, generate_series(1, 75);
INSERT INTO outcomes
SELECT 'mttr text random', pg_temp.cast_in(pg_temp.random_text((random() * 40)::int + i * 0, 'count=sum_ 0123456789-+e.'), 'mttr_state')
FROM generate_series(1, 300) i;
INSERT INTO outcomes
SELECT 'burn text random', pg_temp.cast_in(pg_temp.random_text((random() * 50)::int + i * 0, 'objective=godtal 0123456789-+e.Na'), 'burn_rate_state')
FROM generate_series(1, 300) i;
SELECT test, count(*) AS inputs,
       count(*) FILTER (WHERE outcome = '22P02') > 0 AS some_refused,
       count(*) FILTER (WHERE outcome NOT IN ('22P02', '22003', 'accepted')) AS other_outcomes
FROM outcomes GROUP BY 1 ORDER BY 1;

------------------------------------------------------------------------------
-- The parsers connectors apply to what vendors send: timestamps, Link
-- headers, URL encoding and the backoff routine.  Whatever the input, an
-- answer or an ordinary error, never an internal one.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.try(query text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
TRUNCATE outcomes;
INSERT INTO outcomes
SELECT '_ts(text)', pg_temp.try(format('SELECT engineering._ts(%L::text)',
           pg_temp.random_text((random() * 40)::int + i * 0, '0123456789-:T Z+.tz')))
FROM generate_series(1, 400) i;
INSERT INTO outcomes
SELECT '_ts(jsonb)', pg_temp.try(format('SELECT engineering._ts(%L::jsonb)',
           CASE i % 3 WHEN 0 THEN to_jsonb(pg_temp.random_text((random() * 30)::int, '0123456789-:TZ+'))
                      WHEN 1 THEN to_jsonb((random() - 0.5) * 10 ^ (random() * 25))
                      ELSE to_jsonb(pg_temp.random_text((random() * 18)::int, '0123456789')::text) END))
FROM generate_series(1, 300) i;
INSERT INTO outcomes
SELECT '_link_next', pg_temp.try(format('SELECT engineering._link_next(%L)',
           pg_temp.random_text((random() * 80)::int + i * 0, '<>;,=" relnxtp:/ah')))
FROM generate_series(1, 300) i;
INSERT INTO outcomes
SELECT '_urlencode', pg_temp.try(format('SELECT engineering._urlencode(%L)',
           pg_temp.random_text((random() * 30)::int + i * 0, 'aZ09-._~ /?&=%é€😀')))
FROM generate_series(1, 200) i;
INSERT INTO outcomes
SELECT '_backoff_seconds', pg_temp.try(format('SELECT engineering._backoff_seconds(%L, %L, %L, %L, %L, %L, now(), %s)',
           i % 2 = 0, pg_temp.random_text((random() * 12)::int, '0123456789- '),
           pg_temp.random_text((random() * 12)::int, '0123456789-'),
           pg_temp.random_text((random() * 3)::int, '0123456789-'),
           pg_temp.random_text((random() * 30)::int, 'SunMo, 0123456789:GT'),
           pg_temp.random_text((random() * 3)::int, '0123456789-'),
           (random() * 100 - 10)::int))
FROM generate_series(1, 200) i;
SELECT test, count(*) AS inputs,
       count(*) FILTER (WHERE outcome = 'XX000') AS internal_errors,
       string_agg(DISTINCT outcome, ' ' ORDER BY outcome) AS outcomes
FROM outcomes GROUP BY 1 ORDER BY 1;
-- and the backoff stays between a second and a day whatever the headers say
SELECT min(d) >= 1 AND max(d) <= 86400 AS backoff_in_range
FROM (SELECT engineering._backoff_seconds(true, pg_temp.random_text((random() * 12)::int, '0123456789-'),
                                          pg_temp.random_text((random() * 12)::int, '0123456789'),
                                          pg_temp.random_text((random() * 2)::int, '0123456789'),
                                          pg_temp.random_text((random() * 12)::int, '0123456789'),
                                          pg_temp.random_text((random() * 2)::int, '0123456789'),
                                          now(), (random() * 100)::int + i * 0) AS d
      FROM generate_series(1, 500) i) x;
