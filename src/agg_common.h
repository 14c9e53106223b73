/*-------------------------------------------------------------------------
 *
 * agg_common.h
 *		Helpers shared by the duration and burn-rate aggregates.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_AGG_COMMON_H
#define EM_AGG_COMMON_H

#ifndef HAVE_INT128
#error "engineering_metrics needs a compiler with 128-bit integers"
#endif

#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/timestamp.h"

/* the error path of em_duration_us (agg_common.c) */
extern void em_duration_error(FunctionCallInfo fcinfo, int startarg,
							  TimestampTz start, TimestampTz end) pg_attribute_noreturn();

/*
 * em_duration_us
 *
 * Microseconds from start to end, the timestamptz arguments at positions
 * startarg and startarg + 1 of an aggregate support function.  Raises an
 * error naming both values (and the aggregate's own argument names) when
 * end precedes start, when either is infinite, or when the difference does
 * not fit in 64 bits.  Inline: it runs once per row.
 */
static inline int64
em_duration_us(FunctionCallInfo fcinfo, int startarg, TimestampTz start, TimestampTz end)
{
	int64		us;

	if (unlikely(end < start || TIMESTAMP_NOT_FINITE(start) || TIMESTAMP_NOT_FINITE(end) ||
				 pg_sub_s64_overflow(end, start, &us)))
		em_duration_error(fcinfo, startarg, start, end);
	return us;
}

/*
 * A duration of us >= 0 microseconds as the interval that timestamptz
 * subtraction returns for it (justify_hours: whole days, then the time).
 */
extern Interval *em_interval_from_us(int64 us);

/* A double as its shortest exact text (what float8out shows), palloc'd. */
extern char *em_double_text(double value);

/* Raise the percentile_cont-style error unless 0 <= fraction <= 1. */
extern void em_check_fraction(double fraction);

/*
 * Make sure the fraction of this row equals that of the previous rows of
 * the group (*have false: first row, remember it).
 */
extern void em_same_fraction(double fraction, bool *have, double *group_fraction);

/* Mean of count values summing to sum, rounded half away from zero. */
extern int64 em_rounded_mean(int128 sum, int64 count);

/*
 * Text forms of the state types: "key=<unsigned integer>" fields separated
 * by blanks.  em_parse_uint_field advances *p past one field and fails on
 * anything else (a missing or different key, no digits, a value above max,
 * no blank or end after the digits); em_parse_end accepts trailing blanks.
 */
extern bool em_parse_uint_field(const char **p, const char *key, uint128 max, uint128 *result);
extern bool em_parse_end(const char *p);

/* decimal digits of a uint128 into buf (EM_UINT128_DIGITS bytes) */
#define EM_UINT128_DIGITS 40
extern void em_format_uint128(uint128 value, char *buf);

/*
 * em_in_aggregate: the test AggCheckCallContext starts with, inline, for
 * transition functions that run once per row and need no aggcontext.
 */
static inline bool
em_in_aggregate(FunctionCallInfo fcinfo)
{
	return fcinfo->context != NULL &&
		(IsA(fcinfo->context, AggState) || IsA(fcinfo->context, WindowAggState));
}

/* The "called in non-aggregate context" error of every support function. */
extern void em_not_aggregate(const char *function) pg_attribute_noreturn();

#endif							/* EM_AGG_COMMON_H */
