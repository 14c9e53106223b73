/*-------------------------------------------------------------------------
 *
 * agg_downtime.c
 *		downtime(started_at, ended_at): the length of the union of
 *		[started_at, ended_at) spans, overlaps counted once.
 *
 * The plain-SQL way is a gaps-and-islands query: two window passes over
 * rows sorted by start, then a GROUP BY.  Here the state is a list of
 * spans that is kept sorted and coalesced while rows arrive in time order
 * (the usual case: incidents are inserted as they happen), so that input
 * costs O(1) per row and the state holds only the disjoint outages.  Rows
 * out of order are appended and the list is sorted and coalesced when it
 * fills up, which bounds memory by the number of disjoint outages plus the
 * recent arrivals.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "agg_common.h"

PG_FUNCTION_INFO_V1(em_spans_trans);
PG_FUNCTION_INFO_V1(em_spans_combine);
PG_FUNCTION_INFO_V1(em_spans_serialize);
PG_FUNCTION_INFO_V1(em_spans_deserialize);
PG_FUNCTION_INFO_V1(em_spans_union_final);

typedef struct Span
{
	TimestampTz start;
	TimestampTz end;			/* exclusive; start < end */
} Span;

/*
 * The spans of a group.  When "coalesced" is true they are sorted by start
 * and pairwise disjoint and non-adjacent (each starts after the previous
 * one ends); otherwise they are in no particular order.
 */
typedef struct SpanList
{
	Span	   *spans;
	int64		count;
	int64		capacity;
	bool		coalesced;
} SpanList;

#define SL_VERSION			1
#define SL_FLAG_COALESCED	0x01
#define SL_HEADER_SIZE		16	/* version, flags, 6 zero bytes, count */
#define SL_MAX_SPANS		((int64) ((MaxAllocHugeSize - SL_HEADER_SIZE - VARHDRSZ) / sizeof(Span)))

/* spans_new: an empty, coalesced list in the aggregate context */
static SpanList *
spans_new(MemoryContext context, int64 capacity)
{
	SpanList   *list = MemoryContextAllocZero(context, sizeof(SpanList));

	list->capacity = Max(capacity, 16);
	list->spans = MemoryContextAllocHuge(context, list->capacity * sizeof(Span));
	list->coalesced = true;
	return list;
}

/* spans_grow: room for "need" spans in all */
static void
spans_grow(SpanList *list, int64 need)
{
	int64		capacity = list->capacity;

	if (need <= capacity)
		return;
	if (need > SL_MAX_SPANS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many disjoint spans in one group for downtime")));
	while (capacity < need)
		capacity = Min(capacity * 2, SL_MAX_SPANS);
	list->spans = repalloc_huge(list->spans, capacity * sizeof(Span));
	list->capacity = capacity;
}

/* span_cmp: by start, then by end */
static int
span_cmp(const void *a, const void *b)
{
	const Span *x = a;
	const Span *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

/*
 * spans_coalesce
 *
 * Sort, then merge each span into the previous one when they overlap or
 * touch: [a, b) and [b, c) are one outage, [a, c).
 */
static void
spans_coalesce(SpanList *list)
{
	int64		out = 0;

	if (list->coalesced)
		return;
	qsort(list->spans, list->count, sizeof(Span), span_cmp);
	for (int64 i = 0; i < list->count; i++)
	{
		if (out > 0 && list->spans[i].start <= list->spans[out - 1].end)
		{
			if (list->spans[i].end > list->spans[out - 1].end)
				list->spans[out - 1].end = list->spans[i].end;
		}
		else
			list->spans[out++] = list->spans[i];
	}
	list->count = out;
	list->coalesced = true;
}

/*
 * spans_add
 *
 * In time order, a span either extends the last outage or starts a new
 * one after it; only an earlier start breaks the order.  A full unordered
 * list is coalesced first and grows only if that freed less than half.
 */
static inline void
spans_add(SpanList *list, TimestampTz start, TimestampTz end)
{
	if (list->coalesced && list->count > 0)
	{
		Span	   *last = &list->spans[list->count - 1];

		if (start >= last->start)
		{
			if (start <= last->end)
			{
				if (end > last->end)
					last->end = end;
				return;
			}
		}
		else
			list->coalesced = false;
	}
	if (unlikely(list->count == list->capacity))
	{
		if (!list->coalesced)
			spans_coalesce(list);
		if (list->count > list->capacity / 2)
			spans_grow(list, list->capacity + 1);
		/* coalescing may have sorted the new span in: it is appended below */
		if (list->count > 0 && start < list->spans[list->count - 1].start)
			list->coalesced = false;
		else if (list->count > 0 && start <= list->spans[list->count - 1].end)
		{
			if (end > list->spans[list->count - 1].end)
				list->spans[list->count - 1].end = end;
			return;
		}
	}
	list->spans[list->count].start = start;
	list->spans[list->count].end = end;
	list->count++;
}

/*
 * em_spans_trans
 *
 * NULL bounds skip the row (an outage still going on has no end yet).  A
 * zero-length span adds nothing to the union but still makes the group
 * non-empty: its downtime is 0, not NULL.
 */
Datum
em_spans_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SpanList   *list;
	TimestampTz start;
	TimestampTz end;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_spans_trans");
	list = PG_ARGISNULL(0) ? NULL : (SpanList *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (list == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(list);
	}
	start = PG_GETARG_TIMESTAMPTZ(1);
	end = PG_GETARG_TIMESTAMPTZ(2);
	(void) em_duration_us(fcinfo, 1, start, end);

	if (list == NULL)
		list = spans_new(aggcontext, 0);
	if (end > start)
		spans_add(list, start, end);
	PG_RETURN_POINTER(list);
}

/*
 * em_spans_combine
 *
 * Two coalesced lists (the usual result of workers scanning in time order)
 * merge in one linear pass; anything else is appended and left for the
 * final sort.  Non-strict: a worker that saw no rows sends NULL.
 */
Datum
em_spans_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SpanList   *state;
	SpanList   *other;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		em_not_aggregate("_spans_combine");
	state = PG_ARGISNULL(0) ? NULL : (SpanList *) PG_GETARG_POINTER(0);
	other = PG_ARGISNULL(1) ? NULL : (SpanList *) PG_GETARG_POINTER(1);

	if (other == NULL)
	{
		if (state == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(state);
	}
	if (state == NULL)
	{
		state = spans_new(aggcontext, other->count);
		memcpy(state->spans, other->spans, other->count * sizeof(Span));
		state->count = other->count;
		state->coalesced = other->coalesced;
		PG_RETURN_POINTER(state);
	}

	if (state->coalesced && other->coalesced)
	{
		Span	   *merged;
		int64		i = 0,
					j = 0,
					out = 0;

		if (state->count + other->count > SL_MAX_SPANS)
			spans_grow(state, state->count + other->count);
		merged = MemoryContextAllocHuge(aggcontext,
										Max(state->count + other->count, 16) * sizeof(Span));
		while (i < state->count || j < other->count)
		{
			Span		next;

			if (j >= other->count ||
				(i < state->count && state->spans[i].start <= other->spans[j].start))
				next = state->spans[i++];
			else
				next = other->spans[j++];
			if (out > 0 && next.start <= merged[out - 1].end)
			{
				if (next.end > merged[out - 1].end)
					merged[out - 1].end = next.end;
			}
			else
				merged[out++] = next;
		}
		pfree(state->spans);
		state->spans = merged;
		state->capacity = Max(state->count + other->count, 16);
		state->count = out;
	}
	else
	{
		spans_grow(state, state->count + other->count);
		memcpy(state->spans + state->count, other->spans, other->count * sizeof(Span));
		state->count += other->count;
		state->coalesced = false;
	}
	PG_RETURN_POINTER(state);
}

/* em_spans_serialize: internal -> bytea for parallel workers */
Datum
em_spans_serialize(PG_FUNCTION_ARGS)
{
	SpanList   *list;
	bytea	   *result;
	char	   *p;
	Size		size;

	if (!AggCheckCallContext(fcinfo, NULL))
		em_not_aggregate("_spans_serialize");
	list = (SpanList *) PG_GETARG_POINTER(0);
	size = VARHDRSZ + SL_HEADER_SIZE + list->count * sizeof(Span);
	result = palloc_extended(size, MCXT_ALLOC_HUGE);
	SET_VARSIZE(result, size);
	p = VARDATA(result);
	memset(p, 0, SL_HEADER_SIZE);
	p[0] = SL_VERSION;
	p[1] = list->coalesced ? SL_FLAG_COALESCED : 0;
	memcpy(p + 8, &list->count, sizeof(int64));
	memcpy(p + SL_HEADER_SIZE, list->spans, list->count * sizeof(Span));
	PG_RETURN_BYTEA_P(result);
}

/*
 * em_spans_deserialize
 *
 * Validates the header, the length, every span (finite, valid timestamps,
 * start < end) and, when the flag claims so, the order and disjointness
 * that the merge in combine relies on.
 */
Datum
em_spans_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *bytes;
	const char *p;
	Size		len;
	int64		count;
	SpanList   *list;

	if (!AggCheckCallContext(fcinfo, NULL))
		em_not_aggregate("_spans_deserialize");
	bytes = PG_GETARG_BYTEA_PP(0);
	p = VARDATA_ANY(bytes);
	len = VARSIZE_ANY_EXHDR(bytes);

	if (len < SL_HEADER_SIZE || p[0] != SL_VERSION || (p[1] & ~SL_FLAG_COALESCED) != 0)
		goto corrupt;
	for (int i = 2; i < 8; i++)
		if (p[i] != 0)
			goto corrupt;
	memcpy(&count, p + 8, sizeof(int64));
	if (count < 0 || count > SL_MAX_SPANS || len != SL_HEADER_SIZE + count * sizeof(Span))
		goto corrupt;

	list = palloc0(sizeof(SpanList));
	list->capacity = Max(count, 1);
	list->spans = palloc_extended(list->capacity * sizeof(Span), MCXT_ALLOC_HUGE);
	memcpy(list->spans, p + SL_HEADER_SIZE, count * sizeof(Span));
	list->count = count;
	list->coalesced = (p[1] & SL_FLAG_COALESCED) != 0;
	for (int64 i = 0; i < count; i++)
	{
		Span	   *s = &list->spans[i];

		if (!IS_VALID_TIMESTAMP(s->start) || !IS_VALID_TIMESTAMP(s->end) ||
			s->start >= s->end)
			goto corrupt;
		if (list->coalesced && i > 0 && s->start <= list->spans[i - 1].end)
			goto corrupt;
	}
	PG_RETURN_POINTER(list);

corrupt:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid serialized state for downtime")));
}

/*
 * em_spans_union_final
 *
 * Total length of the coalesced spans.  The union of valid timestamps is
 * shorter than the timestamp range, but the range itself is wider than
 * int64 microseconds, so the sum is checked.
 */
Datum
em_spans_union_final(PG_FUNCTION_ARGS)
{
	SpanList   *list;
	int64		total = 0;

	if (!AggCheckCallContext(fcinfo, NULL))
		em_not_aggregate("_spans_union_final");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	list = (SpanList *) PG_GETARG_POINTER(0);
	spans_coalesce(list);
	for (int64 i = 0; i < list->count; i++)
	{
		int64		length;

		if (pg_sub_s64_overflow(list->spans[i].end, list->spans[i].start, &length) ||
			pg_add_s64_overflow(total, length, &total))
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("downtime is out of range")));
	}
	PG_RETURN_INTERVAL_P(em_interval_from_us(total));
}
