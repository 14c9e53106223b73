/*-------------------------------------------------------------------------
 *
 * fuzz_vendor_time.c
 *		libFuzzer harness for the strict vendor timestamp grammar
 *		(vendor_time.c), what engineering._ts() applies to every time a
 *		vendor sends.
 *
 * Properties checked besides memory safety: an accepted timestamp has
 * fields in their ranges (a real calendar day, an offset within ±15:59),
 * and the parser reads only the len bytes it is given (the input is not
 * NUL-terminated).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vendor_time.h"

static void
fail(const char *what)
{
	fprintf(stderr, "vendor time invariant broken: %s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: AddressSanitizer catches any read past len */
	char	   *buf = malloc(size > 0 ? size : 1);
	EmvTimestamp t;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (emv_parse_timestamp(buf, size, &t))
	{
		if (t.year < 1 || t.year > 9999 || t.month < 1 || t.month > 12 ||
			t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 || t.second > 60 ||
			t.microsecond < 0 || t.microsecond > 1000000 ||
			t.offset_seconds < -(15 * 3600 + 59 * 60) || t.offset_seconds > 15 * 3600 + 59 * 60)
			fail("an accepted timestamp has a field out of range");
		if (t.month == 2 && t.day > 29)
			fail("February has more than 29 days");
	}
	free(buf);
	return 0;
}
