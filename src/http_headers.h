/*-------------------------------------------------------------------------
 *
 * http_headers.h
 *		Pure-C parsing of the HTTP response headers the sync engine acts on:
 *		Link (pagination), Retry-After and the vendors' rate-limit resets,
 *		plus the same-origin test that keeps a token on its own host.
 *
 * Nothing here includes postgres.h or allocates memory, so a fuzzing
 * harness can link http_headers.c alone.  Every function accepts any byte
 * string (NUL-terminated) and never reads past it.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_HTTP_HEADERS_H
#define EM_HTTP_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* longest delay any header may impose on a source (one day) */
#define EMH_MAX_DELAY_SECONDS	86400
/* values of a reset header below this are seconds from now, above it epoch seconds */
#define EMH_EPOCH_THRESHOLD		1000000000LL
/* first delay of the exponential fallback for rate limits (seconds) */
#define EMH_RATE_LIMIT_BASE		60
/* first delay and cap of the exponential backoff after errors (seconds) */
#define EMH_ERROR_BASE			30
#define EMH_ERROR_CAP			3600

/*
 * Copy the target of the link whose rel includes "next" into out (at most
 * outlen bytes including the NUL).  Returns false when there is none, when
 * the header is malformed, or when the URL does not fit.
 */
extern bool emh_link_next(const char *link, char *out, size_t outlen);

/* strict decimal integer with optional surrounding blanks and sign */
extern bool emh_parse_int64(const char *s, int64_t *out);

/*
 * An IMF-fixdate (RFC 9110: "Sun, 06 Nov 1994 08:49:37 GMT") as epoch
 * seconds.  The obsolete RFC 850 and asctime forms are refused.
 */
extern bool emh_parse_http_date(const char *s, int64_t *epoch);

/*
 * Seconds to wait according to Retry-After (delta seconds or HTTP date),
 * relative to now (epoch seconds).  False when absent or unparsable.
 */
extern bool emh_retry_after_seconds(const char *value, int64_t now, int64_t *delay);

/*
 * Seconds to wait according to a reset header: values of 10^9 and above
 * are epoch seconds (GitHub x-ratelimit-reset, GitLab RateLimit-Reset),
 * smaller ones are seconds from now (PagerDuty ratelimit-reset).
 */
extern bool emh_reset_seconds(const char *value, int64_t now, int64_t *delay);

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

/*
 * Whether two absolute http(s) URLs share scheme, host and port (default
 * ports filled in, host compared case-insensitively).  URLs carrying user
 * information ("user:pass@host"), other schemes, or that cannot be parsed
 * are never the same origin as anything.
 */
extern bool emh_same_origin(const char *a, const char *b);

/* case-insensitive search of needle in the first len bytes of haystack */
extern bool emh_contains_ci(const char *haystack, size_t len, const char *needle);

#endif							/* EM_HTTP_HEADERS_H */
