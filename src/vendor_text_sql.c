/*-------------------------------------------------------------------------
 *
 * vendor_text_sql.c
 *		The SQL face of the parsers every connector applies to what a
 *		vendor sends: engineering._ts() (timestamps, vendor_time.c),
 *		_link_next() (Link headers, http_headers.c) and _urlencode().
 *
 * They are C rather than PL/pgSQL because connectors call them for every
 * field of every row they map (a backfill maps hundreds of thousands of
 * timestamps), and because their parsers must be exact about what they
 * accept.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "http_headers.h"
#include "vendor_time.h"

PG_FUNCTION_INFO_V1(em_ts_text);
PG_FUNCTION_INFO_V1(em_ts_jsonb);
PG_FUNCTION_INFO_V1(em_link_next);
PG_FUNCTION_INFO_V1(em_urlencode);

/*
 * parse_vendor_timestamp
 *
 * The grammar is vendor_time.c's; here the fields become an instant.
 */
static TimestampTz
parse_vendor_timestamp(const char *s, int len)
{
	EmvTimestamp t;
	struct pg_tm tm;
	int			tz;
	int			shown = len;
	TimestampTz result;

	/* messages quote the value without its trailing blanks */
	while (shown > 0 && (s[shown - 1] == ' ' || s[shown - 1] == '\t'))
		shown--;
	if (!emv_parse_timestamp(s, (size_t) len, &t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("invalid vendor timestamp: \"%.*s\"", Min(shown, 100), s),
				 errhint("Expected ISO 8601 with a time zone (Z, +02:00, +0200), "
						 "\"YYYY-MM-DD HH:MM:SS +0200\", or epoch milliseconds as a JSON number.")));

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = t.year;
	tm.tm_mon = t.month;
	tm.tm_mday = t.day;
	tm.tm_hour = t.hour;
	tm.tm_min = t.minute;
	tm.tm_sec = t.second;
	/* PostgreSQL counts offsets west of Greenwich as positive */
	tz = -t.offset_seconds;
	if (tm2timestamp(&tm, (fsec_t) t.microsecond, &tz, &result) != 0 || !IS_VALID_TIMESTAMP(result))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("vendor timestamp out of range: \"%.*s\"", Min(shown, 100), s)));
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
