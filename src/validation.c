/*-------------------------------------------------------------------------
 *
 * validation.c
 *		Error reporting for the event tables' CHECK constraints.
 *
 * A failed CHECK constraint names only the constraint.  Each constraint of
 * the event schema is written as "<rule> OR engineering._reject_...(...)",
 * so these functions run only for a row that breaks the rule, and turn the
 * failure into a message that names the column and the refused value.
 * They never return normally.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(em_reject_value);
PG_FUNCTION_INFO_V1(em_reject_order);
PG_FUNCTION_INFO_V1(em_reject_missing);

/*
 * text_arg_or
 *
 * The helpers are not STRICT (a NULL value is worth reporting as such), so
 * every argument may be NULL.
 */
static char *
text_arg_or(FunctionCallInfo fcinfo, int argno, const char *fallback)
{
	if (PG_ARGISNULL(argno))
		return pstrdup(fallback);
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/*
 * em_reject_value
 *
 * Quote the value the way SQL would so that blanks and empty strings are
 * visible in the message.
 */
Datum
em_reject_value(PG_FUNCTION_ARGS)
{
	char	   *column = text_arg_or(fcinfo, 0, "?");
	char	   *expected = text_arg_or(fcinfo, 2, "");
	const char *shown;

	if (PG_ARGISNULL(1))
		shown = "NULL";
	else
		shown = quote_literal_cstr(text_to_cstring(PG_GETARG_TEXT_PP(1)));

	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("invalid value for %s: %s", column, shown),
			 errhint("%s", expected)));
	PG_RETURN_BOOL(false);
}

/*
 * em_reject_order
 *
 * Show both timestamps, since the mistake is in their relation rather than
 * in either value alone (typically a vendor offset parsed as local time).
 */
Datum
em_reject_order(PG_FUNCTION_ARGS)
{
	char	   *column = text_arg_or(fcinfo, 0, "?");
	char	   *earlier_column = text_arg_or(fcinfo, 2, "?");
	const char *value = "NULL";
	const char *earlier = "NULL";

	/* timestamptz_to_str returns a static buffer: copy before the next call */
	if (!PG_ARGISNULL(1))
		value = pstrdup(timestamptz_to_str(PG_GETARG_TIMESTAMPTZ(1)));
	if (!PG_ARGISNULL(3))
		earlier = pstrdup(timestamptz_to_str(PG_GETARG_TIMESTAMPTZ(3)));

	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("invalid value for %s: %s is earlier than %s (%s)",
					column, value, earlier_column, earlier),
			 errhint("%s must not be earlier than %s", column, earlier_column)));
	PG_RETURN_BOOL(false);
}

/*
 * em_reject_missing
 *
 * For columns that are required only in combination with others (a
 * completed deployment needs finished_at), which NOT NULL cannot express.
 */
Datum
em_reject_missing(PG_FUNCTION_ARGS)
{
	char	   *column = text_arg_or(fcinfo, 0, "?");
	char	   *reason = text_arg_or(fcinfo, 1, "");

	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("missing value for %s", column),
			 errdetail("%s", reason)));
	PG_RETURN_BOOL(false);
}
