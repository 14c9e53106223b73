/*-------------------------------------------------------------------------
 *
 * sync_sql.c
 *		The sync engine's SQL entry points: engineering.sync() and wake(),
 *		the trigger that wakes the worker when sources change, and the
 *		backoff routine exposed for tests with fixed times.  The parsers
 *		connectors apply to vendor text are in vendor_text_sql.c.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "backoff.h"
#include "sync.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(em_sync_source_sql);
PG_FUNCTION_INFO_V1(em_wake);
PG_FUNCTION_INFO_V1(em_sources_changed);
PG_FUNCTION_INFO_V1(em_backoff_seconds);

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
