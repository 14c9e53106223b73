/*-------------------------------------------------------------------------
 *
 * fuzz_http_headers.c
 *		libFuzzer harness for the header parsing of the sync engine
 *		(http_headers.c, backoff.c): Link, Retry-After, rate-limit resets, HTTP dates,
 *		the backoff routine and the same-origin test.
 *
 * The input is split at newlines into up to four header values, as a
 * response could carry them, and every parser gets them.  Properties
 * checked besides memory safety: a next link is a non-empty piece of the
 * header without blanks or control characters that fits the buffer; a
 * fourth line, when it is an integer, is the clock (any instant, even
 * absurd ones: the SQL helper _backoff_seconds takes one from its caller);
 * parsed integer prints back to itself; the backoff is always between one
 * second and one day; same-origin is symmetric.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "http_headers.h"

#define NFIELDS 4
/* a fixed "now" keeps runs reproducible (2024-06-01T00:00:00Z) */
#define FUZZ_NOW INT64_C(1717200000)

static void
fail(const char *what)
{
	fprintf(stderr, "header invariant broken: %s\n", what);
	abort();
}

static void
check_link(const char *value, size_t outlen)
{
	char		out[512];
	size_t		len;

	if (!emh_link_next(value, out, outlen))
		return;
	len = strlen(out);
	if (len == 0 || len >= outlen)
		fail("link target empty or longer than the buffer");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char) out[i] <= 0x20 || out[i] == 0x7f)
			fail("link target holds a blank or control character");
	if (strstr(value, out) == NULL)
		fail("link target is not a piece of the header");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *buf = malloc(size + 1);
	char	   *field[NFIELDS] = {NULL, NULL, NULL, NULL};
	int			nfields = 0;
	char	   *p;
	int64_t		v,
				v2,
				now = FUZZ_NOW;
	char		printed[32];

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	p = buf;
	while (nfields < NFIELDS)
	{
		char	   *nl = strchr(p, '\n');

		field[nfields++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}

	/* Link: with a roomy buffer and with tight ones */
	check_link(field[0], 512);
	check_link(field[0], 1 + size % 64);
	check_link(field[0], 1);

	if (emh_parse_int64(field[0], &v))
	{
		snprintf(printed, sizeof(printed), "%" PRId64, v);
		if (!emh_parse_int64(printed, &v2) || v2 != v)
			fail("a parsed integer does not print back to itself");
	}
	/* a fourth line that is an integer is the clock: any value at all */
	if (nfields == NFIELDS)
		(void) emh_parse_int64(field[3], &now);

	(void) emh_parse_http_date(field[0], &v);
	(void) emh_retry_after_seconds(field[0], now, &v);
	(void) emh_reset_seconds(field[0], now, &v);

	for (int rate_limited = 0; rate_limited <= 1; rate_limited++)
	{
		int			failures = (int) (size % 80) - 5;
		/* each reset also serves as the other family's remaining count */
		EmhRateLimitHeaders h = {
			.retry_after = field[0],
			.x_ratelimit_reset = field[1],
			.x_ratelimit_remaining = field[2],
			.ratelimit_reset = field[2],
			.ratelimit_remaining = field[1],
		};
		int64_t		d = emh_backoff_seconds(rate_limited, &h, now, failures);

		if (d < 1 || d > EMH_MAX_DELAY_SECONDS)
			fail("backoff outside [1 s, 1 day]");
	}

	for (int i = 0; i < nfields; i++)
		for (int j = 0; j < nfields; j++)
			if (emh_same_origin(field[i], field[j]) != emh_same_origin(field[j], field[i]))
				fail("same-origin is not symmetric");

	if (nfields > 1)
		(void) emh_contains_ci(field[0], strlen(field[0]), field[1]);

	free(buf);
	return 0;
}
