/*-------------------------------------------------------------------------
 *
 * http_headers.h
 *		Pure-C parsing of the HTTP response headers the sync engine acts on:
 *		Link (pagination), Retry-After and the vendors' rate-limit resets,
 *		plus the same-origin test that keeps a token on its own host.
 *		What the engine does with the rate-limit headers is backoff.h.
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

/* values of a reset header below this are seconds from now, above it epoch seconds */
#define EMH_EPOCH_THRESHOLD		1000000000LL

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
 * Whether two absolute http(s) URLs share scheme, host and port (default
 * ports filled in, host compared case-insensitively).  URLs carrying user
 * information ("user:pass@host"), other schemes, or that cannot be parsed
 * are never the same origin as anything.
 */
extern bool emh_same_origin(const char *a, const char *b);

/* case-insensitive search of needle in the first len bytes of haystack */
extern bool emh_contains_ci(const char *haystack, size_t len, const char *needle);

#endif							/* EM_HTTP_HEADERS_H */
