/*-------------------------------------------------------------------------
 *
 * backoff.h
 *		The backoff policy of the sync engine: when a source that failed
 *		or was rate limited is tried next.
 *
 * Pure C like http_headers.h, whose parsers it uses, so that the fuzzing
 * harness links the two alone.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_BACKOFF_H
#define EM_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* longest delay any header may impose on a source (one day) */
#define EMH_MAX_DELAY_SECONDS	86400
/* first delay of the exponential fallback for rate limits (seconds) */
#define EMH_RATE_LIMIT_BASE		60
/* first delay and cap of the exponential backoff after errors (seconds) */
#define EMH_ERROR_BASE			30
#define EMH_ERROR_CAP			3600

/*
 * The headers of a rate-limited response that the backoff routine reads;
 * any of them may be NULL (absent).  Each reset header comes with the
 * remaining count of the same family: GitHub's x-ratelimit-*, and the
 * RateLimit-* of GitLab and PagerDuty (or a connector's own wait header,
 * which has no remaining count).
 */
typedef struct EmhRateLimitHeaders
{
	const char *retry_after;
	const char *x_ratelimit_reset;
	const char *x_ratelimit_remaining;
	const char *ratelimit_reset;
	const char *ratelimit_remaining;
} EmhRateLimitHeaders;

/*
 * The single backoff routine of the sync engine: how many seconds from now
 * a source should next be tried.
 *
 * rate_limited (GitHub's documented rule, applied to every vendor):
 *   Retry-After first; a reset header only when its remaining count is 0
 *   or absent (x-ratelimit-reset, then ratelimit-reset); otherwise (a
 *   secondary limit with quota left, where the reset is the primary
 *   window's, up to an hour away) 60 s doubled per consecutive failure.
 *   A header that points to the past or is unparsable is skipped.
 *   Result in [1, one day].
 * otherwise (errors): 30 s doubled per consecutive failure, capped at an
 *   hour.
 *
 * failures counts this failure too (1 for the first).  h may be NULL.
 */
extern int64_t emh_backoff_seconds(bool rate_limited, const EmhRateLimitHeaders *h,
								   int64_t now, int failures);

#endif							/* EM_BACKOFF_H */
