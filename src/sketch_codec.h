/*-------------------------------------------------------------------------
 *
 * sketch_codec.h
 *		The duration sketch's bucket mapping and its text and binary forms,
 *		in plain C.
 *
 * This header and sketch_codec.c deliberately do not include postgres.h:
 * everything that turns untrusted bytes or text into a sketch lives here so
 * that a fuzzing harness can link these two files alone (with libc and
 * libm) and drive the decoders directly.  The PostgreSQL side
 * (duration_sketch.c) only adds memory management and error reporting.
 *
 * The mapping.  All values are durations in whole microseconds.  Zero is
 * counted apart.  A positive value v falls in bucket k, the smallest k with
 * floor(1.02^k) >= v, i.e. bucket k holds the integers in
 * (floor(1.02^(k-1)), floor(1.02^k)].  The bounds are computed once, with
 * exact decimal arithmetic, so the mapping is the same on every machine and
 * sketches built anywhere merge exactly.  Any value in a bucket is within
 * (1.02 - 1) / (1.02 + 1) < 0.991% of the bucket's representative (the
 * harmonic mean of its lowest and highest integer), and durations up to
 * 57 microseconds have a bucket of their own (exact).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef SKETCH_CODEC_H
#define SKETCH_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* version byte of the binary form; the text form starts with "v1" */
#define DSK_FORMAT_VERSION		1

/* buckets 0 .. DSK_NUM_BUCKETS - 1; the last one holds INT64_MAX */
#define DSK_NUM_BUCKETS			2207

/* the largest duration a sketch holds (that of the int64 microsecond) */
#define DSK_MAX_VALUE			INT64_MAX

/*
 * A safe bound on the binary form's length, for buffers: header fields
 * plus every bucket with the longest gap and count.  (Real sketches are far
 * smaller: at most 2,058 buckets can hold a duration, and the counts add up
 * to at most 2^63, so the longest possible value is under 19 kB.)
 */
#define DSK_MAX_ENCODED_SIZE	(2 + 4 * 10 + 19 + 2 + DSK_NUM_BUCKETS * (2 + 10))

/* relative error bound of a representative, (gamma - 1) / (gamma + 1) */
#define DSK_RELATIVE_ERROR		(0.02 / 2.02)

/*
 * 128-bit sums.  Declared 8-byte aligned (a typedef may lower alignment,
 * as PostgreSQL's own int128 does) because sketches live in memory that
 * palloc aligns to 8, and 16-byte vector moves on such memory would fault.
 */
typedef unsigned __int128 dsk_u128 __attribute__((aligned(8)));

/*
 * A sketch in its sparse, canonical form: the non-empty buckets in
 * ascending order.  "count" includes the zeros; "min" and "max" are exact
 * (0 when the sketch holds a zero); "sum" is the exact sum of all values.
 */
typedef struct DskSketch
{
	uint64_t	count;
	uint64_t	zeros;
	uint64_t	min;
	uint64_t	max;
	dsk_u128	sum;
	uint32_t	nbuckets;
	uint16_t	index[DSK_NUM_BUCKETS];
	uint64_t	counts[DSK_NUM_BUCKETS];
} DskSketch;

/* Build the bucket bounds (idempotent; every other function calls it). */
extern void dsk_init(void);

/* Bucket of a value 1 <= v <= DSK_MAX_VALUE. */
extern int	dsk_bucket_index(uint64_t v);

/*
 * The tables behind dsk_bucket_index_ready, for the inline fast path:
 * dsk_bound[k] = floor(1.02^k), and dsk_guess[b][m] the bucket of the
 * smallest integer whose highest set bit is b and whose next DSK_GUESS_BITS
 * bits are m.  Such a range is narrower (0.8%) than a bucket (2%), so the
 * guess is the answer or one below it.
 */
#define DSK_GUESS_BITS 7
#if defined(__GNUC__) || defined(__clang__)
#define DSK_HIDDEN __attribute__((visibility("hidden")))
#else
#define DSK_HIDDEN
#endif
extern DSK_HIDDEN uint64_t dsk_bound[DSK_NUM_BUCKETS];
extern DSK_HIDDEN uint16_t dsk_guess[63][1 << DSK_GUESS_BITS];

#if defined(__GNUC__) || defined(__clang__)
#define unlikely_dsk(x) __builtin_expect((x) != 0, 0)
#else
#define unlikely_dsk(x) (x)
#endif

/*
 * dsk_bucket_index_ready: dsk_bucket_index without the dsk_init check, for
 * per-row use once dsk_init has run.  Exact (the bound table decides), and
 * no floating point.
 */
static inline int
dsk_bucket_index_ready(uint64_t v)
{
	int			b;
	unsigned	m;
	int			k;

#if defined(__GNUC__) || defined(__clang__)
	b = 63 - __builtin_clzll(v);
#else
	b = 0;
	while ((v >> b) > 1)
		b++;
#endif
	if (b >= DSK_GUESS_BITS)
		m = (unsigned) (v >> (b - DSK_GUESS_BITS)) & ((1u << DSK_GUESS_BITS) - 1);
	else
		m = (unsigned) (v << (DSK_GUESS_BITS - b)) & ((1u << DSK_GUESS_BITS) - 1);
	k = dsk_guess[b][m];
	/* one step at most (checked for every range), taken without a branch */
	k += dsk_bound[k] < v;
	while (unlikely_dsk(dsk_bound[k] < v))
		k++;
	return k;
}

/* Lowest and highest integer of bucket k (low > high: bucket is empty). */
extern uint64_t dsk_bucket_low(int k);
extern uint64_t dsk_bucket_high(int k);

/*
 * Consistency of a decoded sketch: NULL when valid, else a message saying
 * what is wrong.  Every decoder calls it; so may anyone who built a sketch.
 */
extern const char *dsk_check(const DskSketch *s);

/* Binary form (see sketch_codec.c for the layout). */
extern size_t dsk_encoded_size(const DskSketch *s);
extern size_t dsk_encode(const DskSketch *s, uint8_t *out);
extern const char *dsk_decode(const uint8_t *buf, size_t len, DskSketch *out);

/* Text form; dsk_format_text returns the length written (without NUL). */
extern size_t dsk_text_size(const DskSketch *s);
extern size_t dsk_format_text(const DskSketch *s, char *out, size_t cap);
extern const char *dsk_parse_text(const char *str, DskSketch *out);

/*
 * Estimated percentile (0 <= fraction <= 1), in microseconds, not rounded:
 * the representatives of the two ranks that percentile_cont would read,
 * interpolated the same way, clamped to [min, max].
 */
extern double dsk_percentile(const DskSketch *s, double fraction);

/* Exact mean in microseconds, rounded half away from zero. */
extern uint64_t dsk_mean(const DskSketch *s);

#endif							/* SKETCH_CODEC_H */
