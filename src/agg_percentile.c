/*-------------------------------------------------------------------------
 *
 * agg_percentile.c
 *		Exact percentiles of durations: lead_time and time_to_restore.
 *
 * percentile_cont(f) WITHIN GROUP (ORDER BY end - start) sorts every
 * 16-byte interval through interval_cmp (an fmgr call per comparison) to
 * read one or two rows.  These aggregates keep the durations as int64
 * microseconds in a growable array and select the one or two ranks in
 * O(n) (introselect), then build the answer with the very functions
 * percentile_cont uses (interval_mi, interval_mul, interval_pl) so that it
 * is equal both with "=" and as text.
 *
 * The state is "internal": partial aggregation in parallel workers goes
 * through serialize/deserialize; the array is in native byte order since
 * it only travels between processes of one server.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "agg_common.h"

PG_FUNCTION_INFO_V1(em_durations_trans);
PG_FUNCTION_INFO_V1(em_durations_trans_fraction);
PG_FUNCTION_INFO_V1(em_durations_combine);
PG_FUNCTION_INFO_V1(em_durations_serialize);
PG_FUNCTION_INFO_V1(em_durations_deserialize);
PG_FUNCTION_INFO_V1(em_durations_percentile_final);

/* the durations of a group, in microseconds, in arrival order */
typedef struct DurationList
{
	int64	   *values;
	int64		count;
	int64		capacity;
	bool		has_fraction;	/* the 3-argument form saw a row */
	double		fraction;
} DurationList;

/* serialized header: version, flags, 6 zero bytes, fraction, count */
#define DL_VERSION			1
#define DL_FLAG_FRACTION	0x01
#define DL_HEADER_SIZE		24
#define DL_MAX_VALUES		((int64) ((MaxAllocHugeSize - DL_HEADER_SIZE - VARHDRSZ) / sizeof(int64)))

/* durations_new: an empty list in the aggregate context */
static DurationList *
durations_new(MemoryContext aggcontext, int64 capacity)
{
	DurationList *list = MemoryContextAllocZero(aggcontext, sizeof(DurationList));

	list->capacity = Max(capacity, 64);
	list->values = MemoryContextAllocHuge(aggcontext, list->capacity * sizeof(int64));
	return list;
}

/*
 * durations_reserve
 *
 * Doubling keeps appends amortised O(1); huge allocations lift the 1 GB
 * palloc limit, which 134 million durations would reach.
 */
static void
durations_reserve(DurationList *list, int64 extra)
{
	int64		need = list->count + extra;
	int64		capacity = list->capacity;

	if (need <= capacity)
		return;
	if (need > DL_MAX_VALUES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many durations in one group for an exact percentile"),
				 errhint("Use duration_sketch() and percentile() for groups of more than %lld rows.",
						 (long long) DL_MAX_VALUES)));
	while (capacity < need)
		capacity = Min(capacity * 2, DL_MAX_VALUES);
	list->values = repalloc_huge(list->values, capacity * sizeof(int64));
	list->capacity = capacity;
}

/*
 * durations_add_row
 *
 * The transition of both forms: NULL timestamps skip the row (an open
 * incident has no time to restore yet); a reversed pair is an error.
 */
static DurationList *
durations_add_row(FunctionCallInfo fcinfo, bool with_fraction)
{
	MemoryContext aggcontext;
	DurationList *list;
	int64		us;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_durations_trans");
	list = PG_ARGISNULL(0) ? NULL : (DurationList *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || (with_fraction && PG_ARGISNULL(3)))
		return list;

	us = em_duration_us(fcinfo, 1, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_TIMESTAMPTZ(2));
	if (list == NULL)
		list = durations_new(aggcontext, 0);
	if (with_fraction)
		em_same_fraction(PG_GETARG_FLOAT8(3), &list->has_fraction, &list->fraction);
	if (unlikely(list->count == list->capacity))
		durations_reserve(list, 1);
	list->values[list->count++] = us;
	return list;
}

/* em_durations_trans: (state, start, end) */
Datum
em_durations_trans(PG_FUNCTION_ARGS)
{
	DurationList *list = durations_add_row(fcinfo, false);

	if (list == NULL)
		PG_RETURN_NULL();
	PG_RETURN_POINTER(list);
}

/* em_durations_trans_fraction: (state, start, end, fraction) */
Datum
em_durations_trans_fraction(PG_FUNCTION_ARGS)
{
	DurationList *list = durations_add_row(fcinfo, true);

	if (list == NULL)
		PG_RETURN_NULL();
	PG_RETURN_POINTER(list);
}

/*
 * em_durations_combine
 *
 * Non-strict, as an internal-state combine must be: either side may be
 * NULL (a worker that saw no rows).  The right side lives in a per-tuple
 * context (it was just deserialized), so it is copied, never adopted.
 */
Datum
em_durations_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	DurationList *state;
	DurationList *other;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_durations_combine");
	state = PG_ARGISNULL(0) ? NULL : (DurationList *) PG_GETARG_POINTER(0);
	other = PG_ARGISNULL(1) ? NULL : (DurationList *) PG_GETARG_POINTER(1);

	if (other == NULL || (other->count == 0 && !other->has_fraction))
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	if (state == NULL)
		state = durations_new(aggcontext, other->count);
	if (other->has_fraction)
		em_same_fraction(other->fraction, &state->has_fraction, &state->fraction);
	durations_reserve(state, other->count);
	memcpy(state->values + state->count, other->values, other->count * sizeof(int64));
	state->count += other->count;
	PG_RETURN_POINTER(state);
}

/* em_durations_serialize: internal -> bytea for parallel workers */
Datum
em_durations_serialize(PG_FUNCTION_ARGS)
{
	DurationList *list;
	bytea	   *result;
	char	   *p;
	double		fraction;
	int64		count;

	if (!AggCheckCallContext(fcinfo, NULL))
		em_not_aggregate("_durations_serialize");
	list = (DurationList *) PG_GETARG_POINTER(0);
	fraction = list->has_fraction ? list->fraction : 0.0;
	count = list->count;

	result = palloc_extended(VARHDRSZ + DL_HEADER_SIZE + count * sizeof(int64),
							 MCXT_ALLOC_HUGE);
	SET_VARSIZE(result, VARHDRSZ + DL_HEADER_SIZE + count * sizeof(int64));
	p = VARDATA(result);
	memset(p, 0, DL_HEADER_SIZE);
	p[0] = DL_VERSION;
	p[1] = list->has_fraction ? DL_FLAG_FRACTION : 0;
	memcpy(p + 8, &fraction, sizeof(double));
	memcpy(p + 16, &count, sizeof(int64));
	memcpy(p + DL_HEADER_SIZE, list->values, count * sizeof(int64));
	PG_RETURN_BYTEA_P(result);
}

/*
 * em_durations_deserialize
 *
 * Checks every byte: the header, the length against the count, and each
 * duration (never negative), as tdigest and hll learnt to do.
 */
Datum
em_durations_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	bytea	   *bytes;
	const char *p;
	Size		len;
	double		fraction;
	int64		count;
	DurationList *list;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_durations_deserialize");
	bytes = PG_GETARG_BYTEA_PP(0);
	p = VARDATA_ANY(bytes);
	len = VARSIZE_ANY_EXHDR(bytes);

	if (len < DL_HEADER_SIZE || p[0] != DL_VERSION || (p[1] & ~DL_FLAG_FRACTION) != 0)
		goto corrupt;
	for (int i = 2; i < 8; i++)
		if (p[i] != 0)
			goto corrupt;
	memcpy(&fraction, p + 8, sizeof(double));
	memcpy(&count, p + 16, sizeof(int64));
	if (count < 0 || count > DL_MAX_VALUES || len != DL_HEADER_SIZE + count * sizeof(int64))
		goto corrupt;
	if ((p[1] & DL_FLAG_FRACTION) ? (isnan(fraction) || fraction < 0 || fraction > 1)
		: fraction != 0.0)
		goto corrupt;

	/* allocated where the caller runs: combine copies what it keeps */
	list = palloc0(sizeof(DurationList));
	list->capacity = Max(count, 1);
	list->values = palloc_extended(list->capacity * sizeof(int64), MCXT_ALLOC_HUGE);
	memcpy(list->values, p + DL_HEADER_SIZE, count * sizeof(int64));
	for (int64 i = 0; i < count; i++)
		if (list->values[i] < 0)
			goto corrupt;
	list->count = count;
	list->has_fraction = (p[1] & DL_FLAG_FRACTION) != 0;
	list->fraction = fraction;
	PG_RETURN_POINTER(list);

corrupt:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid serialized state for an exact duration percentile")));
}

/* int64_cmp: qsort comparator for the fallback of select_kth */
static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * select_kth
 *
 * Rearrange v[0..n) so that v[k] holds the value a sort would put there,
 * with nothing larger before it and nothing smaller after it.  Quickselect
 * with a median-of-three pivot and Hoare partitioning (which splits runs of
 * equal values evenly); if the recursion gets too deep (adversarial input)
 * the remaining range is sorted instead, which bounds the worst case at
 * O(n log n).
 */
static void
select_kth(int64 *v, int64 n, int64 k)
{
	int64		lo = 0;
	int64		hi = n - 1;
	int			depth = 2 * (pg_leftmost_one_pos64((uint64) n) + 1);

	while (hi - lo >= 16)
	{
		int64		mid = lo + (hi - lo) / 2;
		int64		i,
					j,
					pivot,
					tmp;

		if (--depth < 0)
		{
			qsort(v + lo, hi - lo + 1, sizeof(int64), int64_cmp);
			return;
		}
		/* order v[lo], v[mid], v[hi], then move the median to v[lo] */
		if (v[mid] < v[lo])
			tmp = v[mid], v[mid] = v[lo], v[lo] = tmp;
		if (v[hi] < v[lo])
			tmp = v[hi], v[hi] = v[lo], v[lo] = tmp;
		if (v[hi] < v[mid])
			tmp = v[hi], v[hi] = v[mid], v[mid] = tmp;
		tmp = v[lo], v[lo] = v[mid], v[mid] = tmp;
		pivot = v[lo];

		/* Hoare: afterwards v[lo..j] <= pivot <= v[j+1..hi], lo <= j < hi */
		i = lo - 1;
		j = hi + 1;
		for (;;)
		{
			do
				i++;
			while (v[i] < pivot);
			do
				j--;
			while (v[j] > pivot);
			if (i >= j)
				break;
			tmp = v[i], v[i] = v[j], v[j] = tmp;
		}
		if (k <= j)
			hi = j;
		else
			lo = j + 1;
	}

	/* insertion sort of the last few */
	for (int64 i = lo + 1; i <= hi; i++)
	{
		int64		x = v[i];
		int64		j = i - 1;

		while (j >= lo && v[j] > x)
		{
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
}

/*
 * em_durations_percentile_final
 *
 * Mirrors percentile_cont_final_common: the same double arithmetic for the
 * two ranks and the proportion, and interval_lerp's three calls, so the
 * result is the same interval, not merely an equal one.  Reordering the
 * array in place is harmless: the state is a multiset, and a window
 * aggregate may call us again after more rows.
 */
Datum
em_durations_percentile_final(PG_FUNCTION_ARGS)
{
	DurationList *list;
	double		fraction;
	double		first_row;
	double		second_row;
	int64		first;
	int64		second_value;
	Datum		lo;
	Datum		hi;
	Datum		diff;
	Datum		scaled;

	if (!AggCheckCallContext(fcinfo, NULL))
		em_not_aggregate("_durations_percentile_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	list = (DurationList *) PG_GETARG_POINTER(0);
	if (list->count == 0)
		PG_RETURN_NULL();
	fraction = list->has_fraction ? list->fraction : 0.5;

	first_row = floor(fraction * (list->count - 1));
	second_row = ceil(fraction * (list->count - 1));
	first = (int64) first_row;

	select_kth(list->values, list->count, first);
	lo = IntervalPGetDatum(em_interval_from_us(list->values[first]));
	if (first_row == second_row)
		PG_RETURN_DATUM(lo);

	/* the next rank is the smallest value after the selected one */
	second_value = list->values[first + 1];
	for (int64 i = first + 2; i < list->count; i++)
		if (list->values[i] < second_value)
			second_value = list->values[i];
	hi = IntervalPGetDatum(em_interval_from_us(second_value));

	diff = DirectFunctionCall2(interval_mi, hi, lo);
	scaled = DirectFunctionCall2(interval_mul, diff,
								 Float8GetDatum(fraction * (list->count - 1) - first_row));
	PG_RETURN_DATUM(DirectFunctionCall2(interval_pl, scaled, lo));
}
