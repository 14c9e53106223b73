/*-------------------------------------------------------------------------
 *
 * agg_burn_rate.c
 *		burn_rate and error_budget_remaining over (good, total) counts or
 *		one boolean per event, and their state type burn_rate_state.
 *
 * burn rate = (1 - sum(good) / sum(total)) / (1 - objective): a ratio of
 * sums, never a mean of ratios.  In binary floating point 1 - 0.999 is
 * 0.0010000000000000009, so the textbook example (900 bad of 60,000 at
 * 99.9%) computed as 900.0 / 60000 / (1 - 0.999) comes out as
 * 14.999999999999986, and (1 - 59100.0 / 60000) / (1 - 0.999) is off in
 * other windows (7.7500000000000275 for 930 of 120,000).  We take the objective as
 * the decimal its shortest text form shows (0.999 = 999 / 1000), so the
 * budget is the exact fraction 1 / 1000, and compute
 *
 *	 burn = bad * 10^k / (total * (10^k - digits))
 *
 * in 128-bit integers, reduced, with a single rounding to double when the
 * terms fit in 53 bits (always, for real traffic): the result is the
 * correctly rounded value of the exact ratio.  error_budget_remaining is
 * the exact 1 - burn the same way, so it is not clamped and goes negative
 * when the budget is overspent.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "agg_common.h"

PG_FUNCTION_INFO_V1(em_burn_rate_state_in);
PG_FUNCTION_INFO_V1(em_burn_rate_state_out);
PG_FUNCTION_INFO_V1(em_burn_rate_state_recv);
PG_FUNCTION_INFO_V1(em_burn_rate_state_send);
PG_FUNCTION_INFO_V1(em_burn_rate_trans_counts);
PG_FUNCTION_INFO_V1(em_burn_rate_trans_ok);
PG_FUNCTION_INFO_V1(em_burn_rate_combine);
PG_FUNCTION_INFO_V1(em_burn_rate_final);
PG_FUNCTION_INFO_V1(em_error_budget_remaining_final);

#define BR_VERSION			1
#define BR_FLAG_OBJECTIVE	0x01

/* ALIGNMENT = double and STORAGE = plain, like mttr_state */
typedef struct BurnRateState
{
	int32		vl_len_;
	uint8		version;
	uint8		flags;			/* BR_FLAG_OBJECTIVE once a row was seen */
	uint16		padding;		/* 0 */
	float8		objective;		/* 0 while unset */
	int64		good;
	int64		total;
} BurnRateState;

/* burn_rate_state_new: the empty state (the aggregates' INITCOND) */
static BurnRateState *
burn_rate_state_new(void)
{
	BurnRateState *state = palloc0(sizeof(BurnRateState));

	SET_VARSIZE(state, sizeof(BurnRateState));
	state->version = BR_VERSION;
	return state;
}

/* objective_is_valid: strictly between 0 and 1 (NaN is not) */
static inline bool
objective_is_valid(double objective)
{
	return objective > 0 && objective < 1;
}

/*
 * burn_rate_state_check
 *
 * What every decoded state must satisfy: a known version and flags, counts
 * that are not negative with good <= total, and an objective in (0, 1)
 * once set (an unset objective means no row was counted).
 */
static void
burn_rate_state_check(const BurnRateState *state, int errcode_on_failure)
{
	const char *problem = NULL;

	if (state->version != BR_VERSION)
		problem = "unsupported version";
	else if ((state->flags & ~BR_FLAG_OBJECTIVE) != 0 || state->padding != 0)
		problem = "unknown flags";
	else if (state->good < 0 || state->total < 0)
		problem = "negative count";
	else if (state->good > state->total)
		problem = "good exceeds total";
	else if ((state->flags & BR_FLAG_OBJECTIVE) && !objective_is_valid(state->objective))
		problem = "objective is not between 0 and 1";
	else if (!(state->flags & BR_FLAG_OBJECTIVE) &&
			 (state->objective != 0 || state->total != 0))
		problem = "counts without an objective";
	if (problem)
		ereport(ERROR,
				(errcode(errcode_on_failure),
				 errmsg("invalid burn_rate_state: %s", problem)));
}

/*
 * em_burn_rate_state_in
 *
 * "objective=0.999 good=59100 total=60000", or "good=0 total=0" for the
 * empty state.
 */
Datum
em_burn_rate_state_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	const char *p = str;
	BurnRateState *state = burn_rate_state_new();
	uint128		good;
	uint128		total;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (strncmp(p, "objective=", 10) == 0)
	{
		char	   *end;

		errno = 0;
		state->objective = strtod(p + 10, &end);
		if (end == p + 10 || errno != 0 || !objective_is_valid(state->objective) ||
			(*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r'))
			goto syntax;
		state->flags = BR_FLAG_OBJECTIVE;
		p = end;
	}
	if (!em_parse_uint_field(&p, "good", PG_INT64_MAX, &good) ||
		!em_parse_uint_field(&p, "total", PG_INT64_MAX, &total) ||
		!em_parse_end(p))
		goto syntax;
	state->good = (int64) good;
	state->total = (int64) total;
	burn_rate_state_check(state, ERRCODE_INVALID_TEXT_REPRESENTATION);
	PG_RETURN_POINTER(state);

syntax:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type burn_rate_state: \"%s\"", str),
			 errdetail("Expected \"objective=<number between 0 and 1> good=<integer> total=<integer>\".")));
}

/* em_burn_rate_state_out: shortest exact text of the objective */
Datum
em_burn_rate_state_out(PG_FUNCTION_ARGS)
{
	BurnRateState *state = (BurnRateState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	char		objective[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (!(state->flags & BR_FLAG_OBJECTIVE))
		PG_RETURN_CSTRING(psprintf("good=%lld total=%lld",
								   (long long) state->good, (long long) state->total));
	double_to_shortest_decimal_buf(state->objective, objective);
	PG_RETURN_CSTRING(psprintf("objective=%s good=%lld total=%lld", objective,
							   (long long) state->good, (long long) state->total));
}

/* em_burn_rate_state_recv: version, flags, objective, good, total */
Datum
em_burn_rate_state_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	BurnRateState *state = burn_rate_state_new();

	state->version = (uint8) pq_getmsgbyte(buf);
	state->flags = (uint8) pq_getmsgbyte(buf);
	state->objective = pq_getmsgfloat8(buf);
	state->good = pq_getmsgint64(buf);
	state->total = pq_getmsgint64(buf);
	burn_rate_state_check(state, ERRCODE_INVALID_BINARY_REPRESENTATION);
	PG_RETURN_POINTER(state);
}

/* em_burn_rate_state_send: see em_burn_rate_state_recv */
Datum
em_burn_rate_state_send(PG_FUNCTION_ARGS)
{
	BurnRateState *state = (BurnRateState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, state->version);
	pq_sendbyte(&buf, state->flags);
	pq_sendfloat8(&buf, state->objective);
	pq_sendint64(&buf, state->good);
	pq_sendint64(&buf, state->total);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* state_for_update: in place inside an aggregate, else a copy */
static inline BurnRateState *
state_for_update(FunctionCallInfo fcinfo)
{
	Pointer		arg = DatumGetPointer(PG_GETARG_DATUM(0));

	if (likely(!VARATT_IS_EXTENDED(arg) && em_in_aggregate(fcinfo)))
		return (BurnRateState *) arg;
	return (BurnRateState *) pg_detoast_datum_copy((struct varlena *) arg);
}

/*
 * set_objective
 *
 * The objective is a property of the SLO, not of a row: one group with two
 * objectives has no meaningful burn rate, so that is an error.
 */
static inline void
set_objective(BurnRateState *state, double objective)
{
	/* the same bits as the first row's: one integer comparison per row */
	if (likely((state->flags & BR_FLAG_OBJECTIVE) &&
			   memcmp(&objective, &state->objective, sizeof(double)) == 0))
		return;
	if (!objective_is_valid(objective))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("objective %s is not between 0 and 1 (both excluded)",
						em_double_text(objective)),
				 errhint("Write the objective as a fraction: 0.999 for 99.9%%.")));
	if (state->flags & BR_FLAG_OBJECTIVE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("objective changes within a group: %s, then %s",
						em_double_text(state->objective), em_double_text(objective)),
				 errhint("Group by the SLO, or pass one objective per group.")));
	state->objective = objective;
	state->flags |= BR_FLAG_OBJECTIVE;
}

/* add_counts: overflow-checked sums */
static inline void
add_counts(BurnRateState *state, int64 good, int64 total)
{
	if (unlikely(pg_add_s64_overflow(state->good, good, &state->good) ||
				 pg_add_s64_overflow(state->total, total, &state->total)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("burn rate counts are out of range")));
}

/* em_burn_rate_trans_counts: (state, good, total, objective), STRICT */
Datum
em_burn_rate_trans_counts(PG_FUNCTION_ARGS)
{
	BurnRateState *state = state_for_update(fcinfo);
	int64		good = PG_GETARG_INT64(1);
	int64		total = PG_GETARG_INT64(2);

	if (unlikely(good < 0 || total < 0 || good > total))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid event counts: good = %lld, total = %lld",
						(long long) good, (long long) total),
				 errhint("Counts are not negative and good is at most total.")));
	set_objective(state, PG_GETARG_FLOAT8(3));
	add_counts(state, good, total);
	PG_RETURN_POINTER(state);
}

/* em_burn_rate_trans_ok: (state, ok, objective), one event per row, STRICT */
Datum
em_burn_rate_trans_ok(PG_FUNCTION_ARGS)
{
	BurnRateState *state = state_for_update(fcinfo);

	set_objective(state, PG_GETARG_FLOAT8(2));
	/* good <= total, so only total can overflow */
	if (unlikely(state->total == PG_INT64_MAX))
		add_counts(state, 0, 1);
	state->total++;
	state->good += PG_GETARG_BOOL(1) ? 1 : 0;
	PG_RETURN_POINTER(state);
}

/* em_burn_rate_combine: add a partial state; objectives must agree */
Datum
em_burn_rate_combine(PG_FUNCTION_ARGS)
{
	BurnRateState *state = state_for_update(fcinfo);
	BurnRateState *other = (BurnRateState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(1));

	if (other->flags & BR_FLAG_OBJECTIVE)
		set_objective(state, other->objective);
	add_counts(state, other->good, other->total);
	PG_RETURN_POINTER(state);
}

/*
 * objective_as_decimal
 *
 * The objective as digits / 10^scale, read from its shortest round-trip
 * text (what the user typed, for any objective written with up to 17
 * significant digits).  False when the scale would not fit in int64
 * arithmetic (objectives below 1e-18 or so), where we fall back to
 * floating point.
 */
static bool
objective_as_decimal(double objective, int64 *digits, int *scale)
{
	char		text[DOUBLE_SHORTEST_DECIMAL_LEN];
	const char *p = text;
	int64		mantissa = 0;
	int			ndigits = 0;
	int			fraction_digits = 0;
	int			exponent = 0;
	bool		point = false;

	double_to_shortest_decimal_buf(objective, text);
	for (; *p; p++)
	{
		if (*p >= '0' && *p <= '9')
		{
			if (++ndigits > 18)
				return false;
			mantissa = mantissa * 10 + (*p - '0');
			if (point)
				fraction_digits++;
		}
		else if (*p == '.')
			point = true;
		else if (*p == 'e' || *p == 'E')
		{
			exponent = atoi(p + 1);
			break;
		}
		else
			return false;
	}
	*digits = mantissa;
	*scale = fraction_digits - exponent;
	return *scale >= 1 && *scale <= 18;
}

/*
 * exact_ratio
 *
 * num / den (den > 0) rounded once: after dividing out the gcd, both terms
 * usually fit in a double's 53 bits, and IEEE division of exact operands
 * is correctly rounded.  Larger terms go through long double.
 */
static double
exact_ratio(int128 num, int128 den)
{
	bool		negative = num < 0;
	int128		a = negative ? -num : num;
	int128		b = den;
	int128		x = a;
	int128		y = b;
	double		result;

	while (y != 0)
	{
		int128		t = x % y;

		x = y;
		y = t;
	}
	if (x > 1)
	{
		a /= x;
		b /= x;
	}
	if (a <= ((int128) 1 << 53) && b <= ((int128) 1 << 53))
		result = (double) a / (double) b;
	else
		result = (double) ((long double) a / (long double) b);
	return negative ? -result : result;
}

/*
 * burn_and_remaining
 *
 * Both results from one exact fraction; false when no event was counted
 * (sum(total) = 0), which the finals turn into NULL.
 */
static bool
burn_and_remaining(const BurnRateState *state, double *burn, double *remaining)
{
	int64		bad = state->total - state->good;
	int64		digits;
	int			scale;

	if (state->total == 0)
		return false;
	if (objective_as_decimal(state->objective, &digits, &scale))
	{
		int128		pow10 = 1;
		int128		num;
		int128		den;

		for (int i = 0; i < scale; i++)
			pow10 *= 10;
		num = (int128) bad * pow10;
		den = (int128) state->total * (pow10 - digits);
		*burn = exact_ratio(num, den);
		*remaining = exact_ratio(den - num, den);
	}
	else
	{
		*burn = ((double) bad / (double) state->total) / (1.0 - state->objective);
		*remaining = 1.0 - *burn;
	}
	return true;
}

/* em_burn_rate_final: NULL when nothing was counted */
Datum
em_burn_rate_final(PG_FUNCTION_ARGS)
{
	BurnRateState *state = (BurnRateState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	double		burn;
	double		remaining;

	if (!burn_and_remaining(state, &burn, &remaining))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(burn);
}

/* em_error_budget_remaining_final: 1 - burn rate, never clamped */
Datum
em_error_budget_remaining_final(PG_FUNCTION_ARGS)
{
	BurnRateState *state = (BurnRateState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	double		burn;
	double		remaining;

	if (!burn_and_remaining(state, &burn, &remaining))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(remaining);
}
