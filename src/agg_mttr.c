/*-------------------------------------------------------------------------
 *
 * agg_mttr.c
 *		mttr(opened_at, resolved_at): the exact mean time to restore, and
 *		its state type engineering.mttr_state.
 *
 * The state is a count and a 128-bit sum of microseconds, so the mean is
 * exact for any number of incidents of any length (avg(interval) sums
 * months, days and microseconds separately in 32/64-bit fields and divides
 * in floating point).  It is a real varlena type with in/out/send/recv and
 * a combine function, which lets Citus push the aggregate down to workers.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "agg_common.h"

PG_FUNCTION_INFO_V1(em_mttr_state_in);
PG_FUNCTION_INFO_V1(em_mttr_state_out);
PG_FUNCTION_INFO_V1(em_mttr_state_recv);
PG_FUNCTION_INFO_V1(em_mttr_state_send);
PG_FUNCTION_INFO_V1(em_mttr_trans);
PG_FUNCTION_INFO_V1(em_mttr_combine);
PG_FUNCTION_INFO_V1(em_mttr_final);

#define MTTR_VERSION	1

/*
 * The in-memory form.  Declared ALIGNMENT = double and STORAGE = plain,
 * so a datum is never packed and its int64 fields are aligned.
 */
typedef struct MttrState
{
	int32		vl_len_;
	uint8		version;
	uint8		flags;			/* 0; reserved */
	uint16		padding;		/* 0 */
	int64		count;
	int128		sum;			/* microseconds */
} MttrState;

/*
 * mttr_state_check
 *
 * Every field a decoder fills: the count is not negative, the sum is
 * between 0 and count times the longest duration, and an empty state sums
 * to 0.  A state that fails this did not come from our aggregate.
 */
static void
mttr_state_check(const MttrState *state, int errcode_on_failure)
{
	const char *problem = NULL;

	if (state->version != MTTR_VERSION)
		problem = "unsupported version";
	else if (state->flags != 0 || state->padding != 0)
		problem = "unknown flags";
	else if (state->count < 0)
		problem = "negative count";
	else if (state->sum < 0)
		problem = "negative sum";
	else if (state->sum > (int128) state->count * PG_INT64_MAX)
		problem = "sum exceeds count times the longest duration";
	if (problem)
		ereport(ERROR,
				(errcode(errcode_on_failure),
				 errmsg("invalid mttr_state: %s", problem)));
}

/* mttr_state_new: an empty state */
static MttrState *
mttr_state_new(void)
{
	MttrState  *state = palloc0(sizeof(MttrState));

	SET_VARSIZE(state, sizeof(MttrState));
	state->version = MTTR_VERSION;
	return state;
}

/* em_mttr_state_in: "count=N sum_us=S" */
Datum
em_mttr_state_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	const char *p = str;
	MttrState  *state = mttr_state_new();
	uint128		count;
	uint128		sum;

	if (!em_parse_uint_field(&p, "count", PG_INT64_MAX, &count) ||
		!em_parse_uint_field(&p, "sum_us", (uint128) PG_INT64_MAX * PG_INT64_MAX, &sum) ||
		!em_parse_end(p))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type mttr_state: \"%s\"", str),
				 errdetail("Expected \"count=<integer> sum_us=<integer>\".")));
	state->count = (int64) count;
	state->sum = (int128) sum;
	mttr_state_check(state, ERRCODE_INVALID_TEXT_REPRESENTATION);
	PG_RETURN_POINTER(state);
}

/* em_mttr_state_out: the text form, which em_mttr_state_in reads back */
Datum
em_mttr_state_out(PG_FUNCTION_ARGS)
{
	MttrState  *state = (MttrState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	char		sum[EM_UINT128_DIGITS];

	em_format_uint128((uint128) state->sum, sum);
	PG_RETURN_CSTRING(psprintf("count=%lld sum_us=%s", (long long) state->count, sum));
}

/* em_mttr_state_recv: version byte, count, sum as high and low 64 bits */
Datum
em_mttr_state_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	MttrState  *state = mttr_state_new();
	uint64		high;
	uint64		low;

	state->version = (uint8) pq_getmsgbyte(buf);
	state->count = pq_getmsgint64(buf);
	high = (uint64) pq_getmsgint64(buf);
	low = (uint64) pq_getmsgint64(buf);
	state->sum = (int128) (((uint128) high << 64) | low);
	mttr_state_check(state, ERRCODE_INVALID_BINARY_REPRESENTATION);
	PG_RETURN_POINTER(state);
}

/* em_mttr_state_send: see em_mttr_state_recv */
Datum
em_mttr_state_send(PG_FUNCTION_ARGS)
{
	MttrState  *state = (MttrState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, state->version);
	pq_sendint64(&buf, state->count);
	pq_sendint64(&buf, (int64) ((uint128) state->sum >> 64));
	pq_sendint64(&buf, (int64) (uint64) state->sum);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * state_for_update
 *
 * Inside an aggregate the state is ours (the INITCOND copy in the
 * aggregate context, or what we returned), so it is updated in place;
 * called directly, the function must not scribble on its argument.
 */
static inline MttrState *
state_for_update(FunctionCallInfo fcinfo)
{
	Pointer		arg = DatumGetPointer(PG_GETARG_DATUM(0));

	if (likely(!VARATT_IS_EXTENDED(arg) && em_in_aggregate(fcinfo)))
		return (MttrState *) arg;
	return (MttrState *) pg_detoast_datum_copy((struct varlena *) arg);
}

/* mttr_add: count n more durations summing to sum */
static void
mttr_add(MttrState *state, int64 n, int128 sum)
{
	if (pg_add_s64_overflow(state->count, n, &state->count))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("mttr: too many incidents")));
	state->sum += sum;
}

/*
 * em_mttr_trans
 *
 * STRICT: rows with a NULL timestamp (open incidents) never get here.
 */
Datum
em_mttr_trans(PG_FUNCTION_ARGS)
{
	MttrState  *state = state_for_update(fcinfo);
	int64		us = em_duration_us(fcinfo, 1, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_TIMESTAMPTZ(2));

	mttr_add(state, 1, us);
	PG_RETURN_POINTER(state);
}

/* em_mttr_combine: add a partial state (from a worker, or Citus) */
Datum
em_mttr_combine(PG_FUNCTION_ARGS)
{
	MttrState  *state = state_for_update(fcinfo);
	MttrState  *other = (MttrState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(1));

	mttr_add(state, other->count, other->sum);
	PG_RETURN_POINTER(state);
}

/* em_mttr_final: the mean, as timestamptz subtraction would show it */
Datum
em_mttr_final(PG_FUNCTION_ARGS)
{
	MttrState  *state = (MttrState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));

	if (state->count == 0)
		PG_RETURN_NULL();
	PG_RETURN_INTERVAL_P(em_interval_from_us(em_rounded_mean(state->sum, state->count)));
}
