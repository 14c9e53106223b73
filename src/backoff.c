/*-------------------------------------------------------------------------
 *
 * backoff.c
 *		The backoff policy of the sync engine (see backoff.h): one routine
 *		for every vendor, so that the order of precedence of the rate-limit
 *		headers is decided once.
 *
 * No postgres.h and no allocation: the fuzzing harness of the header
 * parsers (test/fuzz/fuzz_http_headers.c) links this file too and checks
 * that the result always lies between a second and a day.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "backoff.h"
#include "http_headers.h"

/* base doubled (failures - 1) times, capped */
static int64_t
exponential(int64_t base, int failures, int64_t cap)
{
	int64_t		d = base;

	if (failures < 1)
		failures = 1;
	for (int i = 1; i < failures && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

/*
 * quota_left
 *
 * Whether a remaining-count header says the quota is not used up.  Absent
 * or unparsable counts say nothing, so the reset beside them is trusted.
 */
static bool
quota_left(const char *remaining)
{
	int64_t		n;

	return emh_parse_int64(remaining, &n) && n > 0;
}

/*
 * emh_backoff_seconds
 *
 * One routine for every vendor, so that the order of precedence is decided
 * once: an explicit Retry-After is the server's own instruction, a reset
 * time is the next best thing when the quota it resets is spent, and only
 * without either do we guess.
 */
int64_t
emh_backoff_seconds(bool rate_limited, const EmhRateLimitHeaders *h,
					int64_t now, int failures)
{
	static const EmhRateLimitHeaders none = {0};
	int64_t		delay;

	if (!rate_limited)
		return exponential(EMH_ERROR_BASE, failures, EMH_ERROR_CAP);
	if (h == NULL)
		h = &none;

	if ((emh_retry_after_seconds(h->retry_after, now, &delay) && delay > 0) ||
		(!quota_left(h->x_ratelimit_remaining) &&
		 emh_reset_seconds(h->x_ratelimit_reset, now, &delay) && delay > 0) ||
		(!quota_left(h->ratelimit_remaining) &&
		 emh_reset_seconds(h->ratelimit_reset, now, &delay) && delay > 0))
		return delay > EMH_MAX_DELAY_SECONDS ? EMH_MAX_DELAY_SECONDS : delay;

	return exponential(EMH_RATE_LIMIT_BASE, failures, EMH_ERROR_CAP);
}
