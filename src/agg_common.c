/*-------------------------------------------------------------------------
 *
 * agg_common.c
 *		Helpers shared by the duration and burn-rate aggregates: turning a
 *		pair of timestamps into a duration, and the errors about it.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "common/int.h"
#include "common/shortest_dec.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "agg_common.h"

/*
 * argument_names
 *
 * The error about a reversed duration is only useful if it says which
 * columns were swapped, so look up the names the user sees: the
 * aggregate's argument names when we run inside one (AggGetAggref), else
 * those of the support function itself (whose arguments after the state
 * carry the same names).  Runs only on the error path.
 */
static void
argument_names(FunctionCallInfo fcinfo, int startarg,
			   char **function, char **startname, char **endname)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	Oid			fn = aggref ? aggref->aggfnoid : fcinfo->flinfo->fn_oid;
	int			offset = aggref ? 0 : startarg;
	HeapTuple	tuple;

	*function = NULL;
	*startname = pstrdup("start");
	*endname = pstrdup("end");
	if (!OidIsValid(fn))
		return;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tuple))
		return;
	{
		Oid		   *types;
		char	  **names;
		char	   *modes;
		int			nargs = get_func_arg_info(tuple, &types, &names, &modes);

		if (names != NULL && offset + 1 < nargs &&
			names[offset][0] != '\0' && names[offset + 1][0] != '\0')
		{
			*startname = names[offset];
			*endname = names[offset + 1];
		}
		if (aggref)
			*function = pstrdup(NameStr(((Form_pg_proc) GETSTRUCT(tuple))->proname));
	}
	ReleaseSysCache(tuple);
}

/*
 * em_duration_error
 *
 * A negative duration is bad data (a clock skew, swapped columns); an
 * aggregate that silently skipped it would report a better number than
 * the truth, and one that counted it would be wrong, so we stop and show
 * the row's two values.
 */
void
em_duration_error(FunctionCallInfo fcinfo, int startarg, TimestampTz start, TimestampTz end)
{
	char	   *function;
	char	   *startname;
	char	   *endname;
	const char *prefix;
	char	   *startstr;
	char	   *endstr;

	argument_names(fcinfo, startarg, &function, &startname, &endname);
	prefix = function ? psprintf("%s: ", function) : "";
	/* timestamptz_to_str returns a static buffer: copy each result */
	startstr = pstrdup(timestamptz_to_str(start));
	endstr = pstrdup(timestamptz_to_str(end));

	if (TIMESTAMP_NOT_FINITE(start) || TIMESTAMP_NOT_FINITE(end))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%sdurations need finite timestamps, got %s %s and %s %s",
						prefix, startname, startstr, endname, endstr)));
	if (end < start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s%s %s is earlier than %s %s",
						prefix, endname, endstr, startname, startstr),
				 errhint("A duration cannot be negative: fix the row, or exclude it with a WHERE clause.")));
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("%sduration from %s %s to %s %s is out of range",
					prefix, startname, startstr, endname, endstr)));
}

/*
 * em_interval_from_us
 *
 * timestamptz_mi returns justify_hours() of the microsecond difference;
 * returning the same form makes our results compare equal to the plain-SQL
 * ones not only with "=" but also as text.
 */
Interval *
em_interval_from_us(int64 us)
{
	Interval   *result = (Interval *) palloc(sizeof(Interval));

	Assert(us >= 0);
	result->month = 0;
	result->day = (int32) (us / USECS_PER_DAY);
	result->time = us % USECS_PER_DAY;
	return result;
}

/*
 * em_double_text
 *
 * %g keeps six digits, so two different fractions or objectives could be
 * reported as the same number; the shortest round-trip text cannot.
 */
char *
em_double_text(double value)
{
	char	   *text = palloc(DOUBLE_SHORTEST_DECIMAL_LEN);

	double_to_shortest_decimal_buf(value, text);
	return text;
}

/* em_check_fraction: the range percentile_cont accepts, NaN refused */
void
em_check_fraction(double fraction)
{
	if (isnan(fraction) || fraction < 0 || fraction > 1)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("fraction %s is not between 0 and 1", em_double_text(fraction))));
}

/*
 * em_same_fraction
 *
 * percentile_cont takes its fraction once per group; an ordinary aggregate
 * sees it on every row, and a fraction that changed within a group would
 * leave the answer undefined, so that is an error rather than a choice.
 */
void
em_same_fraction(double fraction, bool *have, double *group_fraction)
{
	if (likely(*have && fraction == *group_fraction))
		return;
	em_check_fraction(fraction);
	if (!*have)
	{
		*have = true;
		*group_fraction = fraction;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("fraction changes within a group: %s, then %s",
					em_double_text(*group_fraction), em_double_text(fraction)),
			 errhint("Pass the same fraction on every row, e.g. a constant.")));
}

/* em_rounded_mean: integer division with the remainder rounded, half up */
int64
em_rounded_mean(int128 sum, int64 count)
{
	int128		q = sum / count;
	int128		r = sum % count;

	Assert(sum >= 0 && count > 0);
	if (2 * r >= count)
		q++;
	return (int64) q;
}

/* em_not_aggregate: support functions refuse to run outside an aggregate */
void
em_not_aggregate(const char *function)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s can only be called as part of an aggregate", function)));
}

/* skip_blanks: past spaces, tabs and line breaks */
static const char *
skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* em_parse_uint_field: see agg_common.h */
bool
em_parse_uint_field(const char **p, const char *key, uint128 max, uint128 *result)
{
	const char *s = skip_blanks(*p);
	size_t		keylen = strlen(key);
	uint128		value = 0;
	const char *digits;

	if (strncmp(s, key, keylen) != 0 || s[keylen] != '=')
		return false;
	s += keylen + 1;
	digits = s;
	while (*s >= '0' && *s <= '9')
	{
		unsigned	d = (unsigned) (*s - '0');

		if (value > (max - d) / 10)
			return false;
		value = value * 10 + d;
		s++;
	}
	if (s == digits || (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r'))
		return false;
	*result = value;
	*p = s;
	return true;
}

/* em_parse_end: nothing but blanks left */
bool
em_parse_end(const char *p)
{
	return *skip_blanks(p) == '\0';
}

/* em_format_uint128: printf has no 128-bit conversion */
void
em_format_uint128(uint128 value, char *buf)
{
	char		tmp[EM_UINT128_DIGITS];
	int			n = 0;

	do
	{
		tmp[n++] = (char) ('0' + (int) (value % 10));
		value /= 10;
	} while (value > 0);
	for (int i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
}
