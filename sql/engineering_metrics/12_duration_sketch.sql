-- engineering_metrics: duration sketches for rollups and scale.
--
-- duration_sketch(started_at, ended_at) builds a sketch; rollup() merges
-- sketches exactly; percentile() (relative error < 1%), mean() and
-- sample_count() (exact) read them.  The sketch type is its own aggregate
-- state, with send/recv and a combine function, so that Citus pushes both
-- aggregates down.  The C code is in src/duration_sketch*.c and
-- src/sketch_codec.c (format documented there and in README.md).

CREATE TYPE engineering.duration_sketch;

CREATE FUNCTION engineering._duration_sketch_in(cstring)
RETURNS engineering.duration_sketch
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_in';
COMMENT ON FUNCTION engineering._duration_sketch_in(cstring) IS
    'internal: input function of duration_sketch (validated text form "v1 count=... buckets=...")';

CREATE FUNCTION engineering._duration_sketch_out(engineering.duration_sketch)
RETURNS cstring
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_out';
COMMENT ON FUNCTION engineering._duration_sketch_out(engineering.duration_sketch) IS
    'internal: output function of duration_sketch';

CREATE FUNCTION engineering._duration_sketch_recv(internal)
RETURNS engineering.duration_sketch
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_recv';
COMMENT ON FUNCTION engineering._duration_sketch_recv(internal) IS
    'internal: binary input function of duration_sketch (validated)';

CREATE FUNCTION engineering._duration_sketch_send(engineering.duration_sketch)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_send';
COMMENT ON FUNCTION engineering._duration_sketch_send(engineering.duration_sketch) IS
    'internal: binary output function of duration_sketch';

CREATE TYPE engineering.duration_sketch (
    INPUT = engineering._duration_sketch_in,
    OUTPUT = engineering._duration_sketch_out,
    RECEIVE = engineering._duration_sketch_recv,
    SEND = engineering._duration_sketch_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = extended
);
COMMENT ON TYPE engineering.duration_sketch IS
    'mergeable summary of durations: percentiles within 1% relative error, exact mean, count, min and max; a few kB, under 19 kB whatever it holds';

CREATE FUNCTION engineering.duration_sketch_from_bytea(bytes bytea)
RETURNS engineering.duration_sketch
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_from_bytea';
COMMENT ON FUNCTION engineering.duration_sketch_from_bytea(bytea) IS
    'a duration_sketch from its binary form (as duration_sketch_to_bytea or binary COPY wrote it), validated';

CREATE FUNCTION engineering.duration_sketch_to_bytea(sketch engineering.duration_sketch)
RETURNS bytea
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_to_bytea';
COMMENT ON FUNCTION engineering.duration_sketch_to_bytea(engineering.duration_sketch) IS
    'the binary form of a duration_sketch (canonical: equal sketches have equal bytes)';

CREATE CAST (bytea AS engineering.duration_sketch)
    WITH FUNCTION engineering.duration_sketch_from_bytea(bytea);
CREATE CAST (engineering.duration_sketch AS bytea)
    WITH FUNCTION engineering.duration_sketch_to_bytea(engineering.duration_sketch);
COMMENT ON CAST (bytea AS engineering.duration_sketch) IS
    'validated binary form to sketch (duration_sketch_from_bytea)';
COMMENT ON CAST (engineering.duration_sketch AS bytea) IS
    'sketch to its canonical binary form (duration_sketch_to_bytea)';

CREATE FUNCTION engineering._duration_sketch_trans(state engineering.duration_sketch,
                                                  started_at timestamptz, ended_at timestamptz)
RETURNS engineering.duration_sketch
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_trans';
COMMENT ON FUNCTION engineering._duration_sketch_trans(engineering.duration_sketch, timestamptz, timestamptz) IS
    'internal: transition of duration_sketch(); adds ended_at - started_at';

CREATE FUNCTION engineering._duration_sketch_merge(state engineering.duration_sketch,
                                                  other engineering.duration_sketch)
RETURNS engineering.duration_sketch
LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_merge';
COMMENT ON FUNCTION engineering._duration_sketch_merge(engineering.duration_sketch, engineering.duration_sketch) IS
    'internal: transition of rollup() and combine function of both sketch aggregates; exact merge';

CREATE AGGREGATE engineering.duration_sketch(started_at timestamptz, ended_at timestamptz) (
    SFUNC = engineering._duration_sketch_trans,
    STYPE = engineering.duration_sketch,
    COMBINEFUNC = engineering._duration_sketch_merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.duration_sketch(timestamptz, timestamptz) IS
    'sketch of ended_at - started_at (NULL rows skipped); read it with percentile(), mean(), sample_count(), merge with rollup()';

CREATE AGGREGATE engineering.rollup(engineering.duration_sketch) (
    SFUNC = engineering._duration_sketch_merge,
    STYPE = engineering.duration_sketch,
    COMBINEFUNC = engineering._duration_sketch_merge,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE engineering.rollup(engineering.duration_sketch) IS
    'merges duration sketches exactly: the rollup of the sketches of parts is the sketch of the whole';

CREATE FUNCTION engineering.percentile(sketch engineering.duration_sketch, fraction float8)
RETURNS interval
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_percentile';
COMMENT ON FUNCTION engineering.percentile(engineering.duration_sketch, float8) IS
    'estimated percentile (fraction 0 to 1) as percentile_cont would interpolate it, within 1% relative error; 0 and 1 give the exact min and max';

CREATE FUNCTION engineering.mean(sketch engineering.duration_sketch)
RETURNS interval
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_mean';
COMMENT ON FUNCTION engineering.mean(engineering.duration_sketch) IS
    'exact mean duration of a sketch, rounded to the microsecond';

CREATE FUNCTION engineering.sample_count(sketch engineering.duration_sketch)
RETURNS bigint
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'em_duration_sketch_sample_count';
COMMENT ON FUNCTION engineering.sample_count(engineering.duration_sketch) IS
    'exact number of durations in a sketch';
