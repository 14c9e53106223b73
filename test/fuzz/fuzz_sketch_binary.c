/*-------------------------------------------------------------------------
 *
 * fuzz_sketch_binary.c
 *		libFuzzer harness for the duration sketch's binary form
 *		(dsk_decode: what _recv, the bytea cast and Citus feed it).
 *
 * Beyond "no crash, no sanitizer report", every input the decoder
 * accepts must behave like a sketch our aggregates built: its encoding is
 * canonical (re-encoding gives the input back, byte for byte), its text
 * form reads back to the same sketch, and the estimates stay within
 * [min, max].  Any other outcome aborts, which libFuzzer reports as a
 * crash with the input saved.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sketch_codec.h"

/* a sketch is about 22 kB: keep them off the stack */
static DskSketch decoded;
static DskSketch reparsed;
static uint8_t encoded[DSK_MAX_ENCODED_SIZE];
static char text[256 + DSK_NUM_BUCKETS * 26];

static void
fail(const char *what)
{
	fprintf(stderr, "sketch invariant broken: %s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		n;

	if (dsk_decode(data, size, &decoded) != NULL)
		return 0;

	if (dsk_check(&decoded) != NULL)
		fail("an accepted sketch fails dsk_check");
	if (dsk_encoded_size(&decoded) != size)
		fail("encoded size differs from the input's");
	n = dsk_encode(&decoded, encoded);
	if (n != size || memcmp(encoded, data, size) != 0)
		fail("the encoding is not canonical");

	if (dsk_text_size(&decoded) > sizeof(text))
		fail("text size bound exceeds the buffer");
	n = dsk_format_text(&decoded, text, sizeof(text));
	if (n + 1 > dsk_text_size(&decoded) || text[n] != '\0')
		fail("text form overran its size bound");
	if (dsk_parse_text(text, &reparsed) != NULL)
		fail("the text form of an accepted sketch is refused");
	n = dsk_encode(&reparsed, encoded);
	if (n != size || memcmp(encoded, data, size) != 0)
		fail("text round trip changed the sketch");

	for (int i = 0; i <= 20; i++)
	{
		double		p = dsk_percentile(&decoded, i / 20.0);

		if (!(p >= (double) decoded.min && p <= (double) decoded.max))
			fail("a percentile lies outside [min, max]");
	}
	if (dsk_mean(&decoded) < decoded.min || dsk_mean(&decoded) > decoded.max)
		fail("the mean lies outside [min, max]");
	return 0;
}
