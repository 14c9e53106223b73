/*-------------------------------------------------------------------------
 *
 * sync_sql.c
 *		SQL-callable functions of the sync engine: sync and wake entry
 *		points, and the helpers every connector's SQL uses (vendor
 *		timestamps, Link headers, URL encoding, the backoff routine).
 *
 * The helpers are C rather than PL/pgSQL because connectors call them for
 * every field of every row they map (a backfill maps hundreds of
 * thousands of timestamps), and because their parsers must be exact about
 * what they accept.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "http_headers.h"
#include "sync.h"

PG_FUNCTION_INFO_V1(em_sync_source_sql);
PG_FUNCTION_INFO_V1(em_wake);
PG_FUNCTION_INFO_V1(em_sources_changed);
PG_FUNCTION_INFO_V1(em_ts_text);
PG_FUNCTION_INFO_V1(em_ts_jsonb);
PG_FUNCTION_INFO_V1(em_link_next);
PG_FUNCTION_INFO_V1(em_backoff_seconds);
PG_FUNCTION_INFO_V1(em_urlencode);

/*
 * em_sync_source_sql
 *
 * engineering._sync_source(source_id): the body of engineering.sync().
 * Not re-entrant: a connector's SQL must not start another sync.
 */
Datum
em_sync_source_sql(PG_FUNCTION_ARGS)
{
	if (em_in_sync)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("engineering.sync() cannot be called while a sync is running in this session")));
	PG_RETURN_INT64(em_sync_source(PG_GETARG_INT32(0), false));
}

/* engineering.wake(): the background worker looks for due sources on commit */
Datum
em_wake(PG_FUNCTION_ARGS)
{
	em_wake_at_commit();
	PG_RETURN_VOID();
}

/* statement trigger on engineering.sources: a change may make a source due */
Datum
em_sources_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("engineering._sources_changed() must be called as a trigger")));
	em_wake_at_commit();
	return PointerGetDatum(NULL);
}

static void
bad_timestamp(const char *s, int len)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
			 errmsg("invalid vendor timestamp: \"%.*s\"", Min(len, 100), s),
			 errhint("Expected ISO 8601 with a time zone (Z, +02:00, +0200), "
					 "\"YYYY-MM-DD HH:MM:SS +0200\", or epoch milliseconds as a JSON number.")));
}

/* exactly n digits at s[*i] */
static bool
digits(const char *s, int len, int *i, int n, int *out)
{
	int			v = 0;

	if (*i + n > len)
		return false;
	for (int k = 0; k < n; k++)
	{
		char		c = s[*i + k];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*i += n;
	*out = v;
	return true;
}

/*
 * parse_vendor_timestamp
 *
 * YYYY-MM-DD('T'|' ')HH:MM[:SS[.fraction]][' ']('Z'|±HH[[:]MM])
 *
 * timestamptz_in would also accept 'now', 'epoch', time zone names and,
 * worst, values without an offset, which it reads in the session's time
 * zone: a silently wrong instant.  Vendor data gets this strict grammar.
 */
static TimestampTz
parse_vendor_timestamp(const char *s, int len)
{
	struct pg_tm tm;
	fsec_t		fsec = 0;
	int			tz = 0;
	int			i = 0;
	int			year,
				mon,
				mday,
				hour,
				min,
				sec = 0;
	TimestampTz result;

	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (!digits(s, len, &i, 4, &year) || i >= len || s[i++] != '-' ||
		!digits(s, len, &i, 2, &mon) || i >= len || s[i++] != '-' ||
		!digits(s, len, &i, 2, &mday) || i >= len ||
		(s[i] != 'T' && s[i] != 't' && s[i] != ' '))
		bad_timestamp(s, len);
	i++;
	if (!digits(s, len, &i, 2, &hour) || i >= len || s[i++] != ':' ||
		!digits(s, len, &i, 2, &min))
		bad_timestamp(s, len);
	if (i < len && s[i] == ':')
	{
		i++;
		if (!digits(s, len, &i, 2, &sec))
			bad_timestamp(s, len);
		if (i < len && (s[i] == '.' || s[i] == ','))
		{
			int64		scale = 100000;
			int			ndig = 0;
			bool		round_up = false;

			i++;
			while (i < len && s[i] >= '0' && s[i] <= '9')
			{
				if (ndig < 6)
				{
					fsec += (s[i] - '0') * scale;
					scale /= 10;
				}
				else if (ndig == 6)
					round_up = s[i] >= '5';
				ndig++;
				i++;
			}
			if (ndig == 0)
				bad_timestamp(s, len);
			if (round_up)
				fsec++;
		}
	}
	while (i < len && s[i] == ' ')
		i++;
	if (i < len && (s[i] == 'Z' || s[i] == 'z'))
		i++;
	else if (i < len && (s[i] == '+' || s[i] == '-'))
	{
		int			sign = s[i] == '-' ? -1 : 1;
		int			oh,
					om = 0;

		i++;
		if (!digits(s, len, &i, 2, &oh))
			bad_timestamp(s, len);
		if (i < len && s[i] == ':')
		{
			i++;
			if (!digits(s, len, &i, 2, &om))
				bad_timestamp(s, len);
		}
		else if (i < len)
		{
			if (!digits(s, len, &i, 2, &om))
				bad_timestamp(s, len);
		}
		if (oh > 15 || om > 59)
			bad_timestamp(s, len);
		/* PostgreSQL counts offsets west of Greenwich as positive */
		tz = -sign * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE);
	}
	else
		bad_timestamp(s, len);
	if (i != len)
		bad_timestamp(s, len);

	if (year < 1 || mon < 1 || mon > 12 || mday < 1 ||
		mday > day_tab[isleap(year)][mon - 1] ||
		hour > 23 || min > 59 || sec > 60)
		bad_timestamp(s, len);

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year;
	tm.tm_mon = mon;
	tm.tm_mday = mday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	if (tm2timestamp(&tm, fsec, &tz, &result) != 0 || !IS_VALID_TIMESTAMP(result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("vendor timestamp out of range: \"%.*s\"", Min(len, 100), s)));
	return result;
}

/*
 * em_ts_text
 *
 * engineering._ts(text): NULL and '' are NULL (vendors send either for
 * "not yet"), everything else must parse.
 */
Datum
em_ts_text(PG_FUNCTION_ARGS)
{
	text	   *t;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	if (VARSIZE_ANY_EXHDR(t) == 0)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(parse_vendor_timestamp(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}

/*
 * em_ts_jsonb
 *
 * engineering._ts(jsonb): JSON null and "" are NULL, strings as above,
 * numbers are epoch milliseconds (Jenkins), computed in integer
 * microseconds so that no millisecond is lost to floating point.
 */
Datum
em_ts_jsonb(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb;
	JsonbValue	v;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	jb = PG_GETARG_JSONB_P(0);
	if (!JsonbExtractScalar(&jb->root, &v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid vendor timestamp: a JSON %s is not a time",
						JB_ROOT_IS_ARRAY(jb) ? "array" : "object")));
	switch (v.type)
	{
		case jbvNull:
			PG_RETURN_NULL();
		case jbvString:
			if (v.val.string.len == 0)
				PG_RETURN_NULL();
			PG_RETURN_TIMESTAMPTZ(parse_vendor_timestamp(v.val.string.val, v.val.string.len));
		case jbvNumeric:
			{
				/* 1e400 becomes infinity here, refused below, not a float8 error */
				double		ms = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
																	NumericGetDatum(v.val.numeric)));
				double		us = rint(ms * 1000.0);
				TimestampTz result;

				if (isnan(us) || us < -9.0e15 || us > 9.0e15)
				{
					char	   *shown = DatumGetCString(DirectFunctionCall1(numeric_out,
																			NumericGetDatum(v.val.numeric)));

					/* a hostile 1e400 would otherwise fill the message with 401 digits */
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("epoch milliseconds out of range: %.40s%s",
									shown, strlen(shown) > 40 ? "..." : "")));
				}
				result = (TimestampTz) us -
					((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
				if (!IS_VALID_TIMESTAMP(result))
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("epoch milliseconds out of range")));
				PG_RETURN_TIMESTAMPTZ(result);
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("invalid vendor timestamp: a JSON boolean is not a time")));
	}
	PG_RETURN_NULL();
}

/* engineering._link_next(link text): the rel="next" URL of a Link header */
Datum
em_link_next(PG_FUNCTION_ARGS)
{
	char	   *link = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char		out[8192];

	if (!emh_link_next(link, out, sizeof(out)))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * engineering._backoff_seconds(rate_limited, retry_after,
 *     x_ratelimit_reset, x_ratelimit_remaining, ratelimit_reset,
 *     ratelimit_remaining, at, failures)
 *
 * The engine's backoff routine, exposed so that its rules are tested in
 * pg_regress with fixed times.
 */
Datum
em_backoff_seconds(PG_FUNCTION_ARGS)
{
	const char *v[5] = {NULL, NULL, NULL, NULL, NULL};
	EmhRateLimitHeaders h;
	TimestampTz at;
	int64		now;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(6) || PG_ARGISNULL(7))
		PG_RETURN_NULL();
	for (int i = 0; i < 5; i++)
		if (!PG_ARGISNULL(i + 1))
			v[i] = text_to_cstring(PG_GETARG_TEXT_PP(i + 1));
	h.retry_after = v[0];
	h.x_ratelimit_reset = v[1];
	h.x_ratelimit_remaining = v[2];
	h.ratelimit_reset = v[3];
	h.ratelimit_remaining = v[4];
	at = PG_GETARG_TIMESTAMPTZ(6);
	now = at / USECS_PER_SEC +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	PG_RETURN_INT64(emh_backoff_seconds(PG_GETARG_BOOL(0), &h, now, PG_GETARG_INT32(7)));
}

/*
 * engineering._urlencode(text): RFC 3986 percent-encoding of everything
 * but the unreserved characters, byte by byte (UTF-8 stays UTF-8).
 */
Datum
em_urlencode(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	const unsigned char *s = (const unsigned char *) VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);
	StringInfoData out;
	static const char hex[] = "0123456789ABCDEF";

	initStringInfo(&out);
	for (int i = 0; i < len; i++)
	{
		unsigned char c = s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~')
			appendStringInfoChar(&out, (char) c);
		else
		{
			appendStringInfoChar(&out, '%');
			appendStringInfoChar(&out, hex[c >> 4]);
			appendStringInfoChar(&out, hex[c & 15]);
		}
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
