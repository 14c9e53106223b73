/*-------------------------------------------------------------------------
 *
 * duration_sketch_agg.c
 *		The aggregates duration_sketch(started_at, ended_at) and
 *		rollup(duration_sketch), and the accessors percentile(), mean()
 *		and sample_count().
 *
 * Both aggregates use duration_sketch itself as their state, with one
 * merge function as rollup's transition and as the combine function of
 * both, so parallel workers and Citus workers build partial sketches and
 * the leader merges them exactly.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "agg_common.h"
#include "duration_sketch.h"

PG_FUNCTION_INFO_V1(em_duration_sketch_trans);
PG_FUNCTION_INFO_V1(em_duration_sketch_merge);
PG_FUNCTION_INFO_V1(em_duration_sketch_percentile);
PG_FUNCTION_INFO_V1(em_duration_sketch_mean);
PG_FUNCTION_INFO_V1(em_duration_sketch_sample_count);

/*
 * scratch_sketch
 *
 * A decoded sketch is about 22 kB; rollup reads one per input row, so the
 * buffer is allocated once per call site and reused.
 */
static DskSketch *
scratch_sketch(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(DskSketch));
	return (DskSketch *) fcinfo->flinfo->fn_extra;
}

/*
 * own_state
 *
 * The transition state as a working sketch we may change: normally the
 * read/write expanded object we returned on the previous row.  Anything
 * else (a flat value, e.g. from a rollup's first input or after the
 * executor copied the state) is loaded into a new working sketch.
 */
static SketchExpanded *
own_state(FunctionCallInfo fcinfo, MemoryContext aggcontext)
{
	Datum		d = PG_GETARG_DATUM(0);
	SketchExpanded *sk = sketch_expanded_from_datum(d);

	if (sk != NULL && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)) &&
		sk->hdr.eoh_context->parent == aggcontext)
		return sk;
	{
		DskSketch  *sparse = scratch_sketch(fcinfo);
		SketchExpanded *copy = sketch_expanded_new(aggcontext);

		sketch_read(d, sparse);
		sketch_merge(copy, sparse);
		return copy;
	}
}

/*
 * em_duration_sketch_trans
 *
 * (state, started_at, ended_at); NULL timestamps skip the row, and no rows
 * leave the state (and the result) NULL.
 */
Datum
em_duration_sketch_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SketchExpanded *sk;
	int64		us;

	/* every row but the first: our own working sketch, updated in place */
	if (likely(!PG_ARGISNULL(0) && !PG_ARGISNULL(1) && !PG_ARGISNULL(2) &&
			   em_in_aggregate(fcinfo) &&
			   (sk = sketch_owned_rw(PG_GETARG_DATUM(0))) != NULL))
	{
		us = em_duration_us(fcinfo, 1, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_TIMESTAMPTZ(2));
		sketch_add(sk, (uint64) us);
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_duration_sketch_trans");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	us = em_duration_us(fcinfo, 1, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_TIMESTAMPTZ(2));
	sk = PG_ARGISNULL(0) ? sketch_expanded_new(aggcontext) : own_state(fcinfo, aggcontext);
	sketch_add(sk, (uint64) us);
	PG_RETURN_DATUM(EOHPGetRWDatum(&sk->hdr));
}

/*
 * em_duration_sketch_merge
 *
 * rollup's transition and the combine function of both aggregates.
 * Non-strict: either side may be NULL (a group or a worker without rows).
 */
Datum
em_duration_sketch_merge(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SketchExpanded *sk;
	DskSketch  *sparse;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_duration_sketch_merge");
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	sk = PG_ARGISNULL(0) ? sketch_expanded_new(aggcontext) : own_state(fcinfo, aggcontext);
	sparse = scratch_sketch(fcinfo);
	sketch_read(PG_GETARG_DATUM(1), sparse);
	sketch_merge(sk, sparse);
	PG_RETURN_DATUM(EOHPGetRWDatum(&sk->hdr));
}

/*
 * em_duration_sketch_percentile
 *
 * The estimate rounded to the microsecond (the interval's resolution) and
 * returned in the form timestamptz subtraction uses.
 */
Datum
em_duration_sketch_percentile(PG_FUNCTION_ARGS)
{
	DskSketch  *sparse = scratch_sketch(fcinfo);
	double		fraction = PG_GETARG_FLOAT8(1);
	double		estimate;
	int64		us;

	em_check_fraction(fraction);
	sketch_read(PG_GETARG_DATUM(0), sparse);
	estimate = rint(dsk_percentile(sparse, fraction));
	us = (int64) estimate;
	if (estimate < (double) sparse->min)
		us = (int64) sparse->min;
	if (estimate >= (double) sparse->max)
		us = (int64) sparse->max;
	PG_RETURN_INTERVAL_P(em_interval_from_us(us));
}

/* em_duration_sketch_mean: exact, from the exact sum and count */
Datum
em_duration_sketch_mean(PG_FUNCTION_ARGS)
{
	DskSketch  *sparse = scratch_sketch(fcinfo);

	sketch_read(PG_GETARG_DATUM(0), sparse);
	PG_RETURN_INTERVAL_P(em_interval_from_us((int64) dsk_mean(sparse)));
}

/* em_duration_sketch_sample_count: durations counted, zeros included */
Datum
em_duration_sketch_sample_count(PG_FUNCTION_ARGS)
{
	DskSketch  *sparse = scratch_sketch(fcinfo);

	sketch_read(PG_GETARG_DATUM(0), sparse);
	PG_RETURN_INT64((int64) sparse->count);
}
