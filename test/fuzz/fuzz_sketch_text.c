/*-------------------------------------------------------------------------
 *
 * fuzz_sketch_text.c
 *		libFuzzer harness for the duration sketch's text form
 *		(dsk_parse_text: what '...'::duration_sketch and text COPY feed it).
 *
 * The input is any bytes; the parser sees them up to the first NUL, as
 * the type's input function does.  An accepted text must pass dsk_check,
 * and formatting it and parsing again gives the same sketch, whose binary
 * form decodes to it too.
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

static DskSketch parsed;
static DskSketch again;
static uint8_t encoded[DSK_MAX_ENCODED_SIZE];
static uint8_t encoded2[DSK_MAX_ENCODED_SIZE];
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
	char	   *input = malloc(size + 1);
	size_t		n,
				n2;

	if (input == NULL)
		return 0;
	memcpy(input, data, size);
	input[size] = '\0';

	if (dsk_parse_text(input, &parsed) == NULL)
	{
		if (dsk_check(&parsed) != NULL)
			fail("an accepted text fails dsk_check");
		n = dsk_format_text(&parsed, text, sizeof(text));
		if (n + 1 > dsk_text_size(&parsed))
			fail("text form overran its size bound");
		if (dsk_parse_text(text, &again) != NULL)
			fail("the canonical text of an accepted sketch is refused");
		n = dsk_encode(&parsed, encoded);
		n2 = dsk_encode(&again, encoded2);
		if (n != n2 || memcmp(encoded, encoded2, n) != 0)
			fail("text round trip changed the sketch");
		if (dsk_decode(encoded, n, &again) != NULL)
			fail("the binary form of an accepted text is refused");
	}
	free(input);
	return 0;
}
