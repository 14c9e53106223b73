/*-------------------------------------------------------------------------
 *
 * sketch_codec.c
 *		Bucket mapping, validation, and the binary and text forms of the
 *		duration sketch, in plain C (no PostgreSQL headers; see the header).
 *
 * Binary form, version 1 (the varlena payload, and what send/recv carry).
 * Integers are unsigned LEB128 varints in their shortest encoding:
 *
 *	 byte	version (1)
 *	 byte	flags (0; reserved)
 *	 varint count		every duration, zeros included (>= 1)
 *	 varint zeros		durations equal to zero
 *	 varint min			exact minimum, microseconds
 *	 varint max			exact maximum, microseconds
 *	 varint sum			exact sum, microseconds (up to 128 bits)
 *	 varint nbuckets	non-empty buckets that follow
 *	 nbuckets times:
 *	   varint gap		index - previous index - 1 (the first: index itself)
 *	   varint count		durations in the bucket (>= 1)
 *
 * The form is canonical: one sketch has exactly one encoding, so that
 * merging the sketches of parts gives, byte for byte, the sketch of the
 * whole.  Decoders refuse anything else: unknown versions or flags,
 * overlong or overflowing varints, bucket indexes out of range or out of
 * order, buckets that can hold no integer, empty buckets, counts that do
 * not add up, min/max outside their buckets, a sum outside the bounds the
 * buckets allow, and trailing bytes.
 *
 * Text form: "v1 count=N zeros=Z min_us=A max_us=B sum_us=S
 * buckets=k:c,k:c,..." on one line, the same fields in the same order.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "sketch_codec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * dsk_bound[k] = floor(1.02^k): bucket k holds (dsk_bound[k-1], dsk_bound[k]]
 * and bucket 0 holds 1.  dsk_guess: see the header.
 */
DSK_HIDDEN uint64_t dsk_bound[DSK_NUM_BUCKETS];
DSK_HIDDEN uint16_t dsk_guess[63][1 << DSK_GUESS_BITS];
static bool dsk_ready = false;

static int	bucket_by_search(uint64_t v);

/* base-10^9 digits of 102^k, least significant first (4,432 digits at most) */
#define DSK_BIGNUM_WORDS 520

/*
 * dsk_init
 *
 * floor(1.02^k) is floor(102^k / 10^(2k)): the decimal digits of 102^k
 * above the 2k lowest.  Exact integer arithmetic makes the bounds identical
 * on every platform and libm, which exact merging across machines needs; a
 * floating-point pow() would put values near a bound in different buckets
 * on different machines.  About a millisecond, once per process.
 */
void
dsk_init(void)
{
	static uint32_t digits[DSK_BIGNUM_WORDS];
	int			nwords = 1;

	if (dsk_ready)
		return;

	digits[0] = 1;
	for (int k = 0; k < DSK_NUM_BUCKETS; k++)
	{
		int			pos = 2 * k;
		int			w = pos / 9;
		int			r = pos % 9;
		uint64_t	scale = 1;
		dsk_u128	value;
		dsk_u128	mul;

		if (k > 0)
		{
			uint64_t	carry = 0;

			for (int i = 0; i < nwords; i++)
			{
				uint64_t	x = (uint64_t) digits[i] * 102 + carry;

				digits[i] = (uint32_t) (x % 1000000000u);
				carry = x / 1000000000u;
			}
			while (carry > 0 && nwords < DSK_BIGNUM_WORDS)
			{
				digits[nwords++] = (uint32_t) (carry % 1000000000u);
				carry /= 1000000000u;
			}
		}

		for (int i = 0; i < r; i++)
			scale *= 10;
		value = 0;
		if (w < nwords)
		{
			value = digits[w] / scale;
			mul = 1000000000u / scale;
			for (int i = w + 1; i < nwords; i++)
			{
				value += (dsk_u128) digits[i] * mul;
				mul *= 1000000000u;
			}
		}
		dsk_bound[k] = (uint64_t) value;
	}

	/* the guesses: the bucket of the lowest integer of each range */
	for (int b = 0; b < 63; b++)
	{
		for (unsigned m = 0; m < (1u << DSK_GUESS_BITS); m++)
		{
			uint64_t	low;

			if (b >= DSK_GUESS_BITS)
				low = ((uint64_t) 1 << b) | ((uint64_t) m << (b - DSK_GUESS_BITS));
			else if ((m & ((1u << (DSK_GUESS_BITS - b)) - 1)) != 0)
				continue;		/* no integer has these bits */
			else
				low = ((uint64_t) 1 << b) | (m >> (DSK_GUESS_BITS - b));
			dsk_guess[b][m] = (uint16_t) bucket_by_search(low);
		}
	}
	dsk_ready = true;
}

/*
 * bucket_by_search
 *
 * The smallest k with dsk_bound[k] >= v, by binary search: used only to
 * build the guesses.
 */
static int
bucket_by_search(uint64_t v)
{
	int			lo = 0;
	int			hi = DSK_NUM_BUCKETS - 1;

	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (dsk_bound[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * dsk_bucket_index
 *
 * The table decides, so the result is exact and the same everywhere.
 */
int
dsk_bucket_index(uint64_t v)
{
	dsk_init();
	return dsk_bucket_index_ready(v);
}

/* dsk_bucket_low: the lowest integer of bucket k (see the header) */
uint64_t
dsk_bucket_low(int k)
{
	dsk_init();
	return k == 0 ? 1 : dsk_bound[k - 1] + 1;
}

/* dsk_bucket_high: the highest integer of bucket k, capped at INT64_MAX */
uint64_t
dsk_bucket_high(int k)
{
	dsk_init();
	return dsk_bound[k] > (uint64_t) DSK_MAX_VALUE ? (uint64_t) DSK_MAX_VALUE : dsk_bound[k];
}

/*
 * dsk_check
 *
 * Everything a decoded sketch must satisfy for the accessors to give
 * meaningful answers; a sketch that fails any of it did not come from our
 * aggregates, so it is refused rather than half-trusted.
 */
const char *
dsk_check(const DskSketch *s)
{
	uint64_t	nonzero;
	uint64_t	total = 0;
	dsk_u128	lower = 0;
	dsk_u128	upper = 0;

	dsk_init();
	if (s->count == 0)
		return "a sketch holds at least one duration";
	if (s->count > (uint64_t) INT64_MAX)
		return "count is out of range";
	if (s->zeros > s->count)
		return "more zeros than durations";
	if (s->max > (uint64_t) DSK_MAX_VALUE)
		return "max is out of range";
	if (s->min > s->max)
		return "min exceeds max";
	if (s->nbuckets > DSK_NUM_BUCKETS)
		return "too many buckets";
	nonzero = s->count - s->zeros;
	if ((nonzero == 0) != (s->nbuckets == 0))
		return "buckets do not match the count of non-zero durations";

	for (uint32_t i = 0; i < s->nbuckets; i++)
	{
		int			k = s->index[i];
		uint64_t	low,
					high;

		if (k >= DSK_NUM_BUCKETS)
			return "bucket index out of range";
		if (i > 0 && k <= s->index[i - 1])
			return "bucket indexes are not in ascending order";
		low = dsk_bucket_low(k);
		high = dsk_bucket_high(k);
		if (low > high)
			return "bucket can hold no duration";
		if (s->counts[i] == 0)
			return "empty bucket";
		if (s->counts[i] > nonzero - total)
			return "bucket counts exceed the count";
		total += s->counts[i];
		/* the bucket's values lie in [low, high] and in [min, max] */
		if (low < s->min)
			low = s->min;
		if (high > s->max)
			high = s->max;
		if (low > high)
			return "bucket lies outside [min, max]";
		lower += (dsk_u128) s->counts[i] * low;
		upper += (dsk_u128) s->counts[i] * high;
	}
	if (total != nonzero)
		return "bucket counts do not add up to the count";

	if (s->zeros > 0)
	{
		if (s->min != 0)
			return "min must be 0 when the sketch holds a zero";
	}
	else if (s->min == 0 || dsk_bucket_index(s->min) != s->index[0])
		return "min does not lie in the first bucket";
	if (s->nbuckets == 0)
	{
		if (s->max != 0 || s->sum != 0)
			return "a sketch of zeros has max and sum 0";
		return NULL;
	}
	if (s->max == 0 || dsk_bucket_index(s->max) != s->index[s->nbuckets - 1])
		return "max does not lie in the last bucket";

	/* max occurs at least once, and so does min when it is not zero */
	{
		int			last = s->index[s->nbuckets - 1];
		uint64_t	last_low = dsk_bucket_low(last);
		uint64_t	first_high = dsk_bucket_high(s->index[0]);

		lower = lower - (last_low > s->min ? last_low : s->min) + s->max;
		if (s->zeros == 0)
			upper = upper - (first_high < s->max ? first_high : s->max) + s->min;
	}
	if (s->sum < lower || s->sum > upper)
		return "sum is inconsistent with the buckets";
	return NULL;
}

/* ---- binary form ---- */

/* varint_size: bytes of the shortest LEB128 encoding of v */
static size_t
varint_size(dsk_u128 v)
{
	size_t		n = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		n++;
	}
	return n;
}

/* put_varint: write v, shortest LEB128, and return the bytes written */
static size_t
put_varint(uint8_t *out, dsk_u128 v)
{
	size_t		n = 0;

	while (v >= 0x80)
	{
		out[n++] = (uint8_t) (v & 0x7f) | 0x80;
		v >>= 7;
	}
	out[n++] = (uint8_t) v;
	return n;
}

/*
 * get_varint
 *
 * Read one varint of at most maxbits bits.  Refuses a truncated buffer,
 * bits beyond maxbits, and non-shortest encodings (a final 0x00 byte after
 * a continuation), which keeps the binary form canonical.
 */
static bool
get_varint(const uint8_t *buf, size_t len, size_t *pos, int maxbits, dsk_u128 *result)
{
	dsk_u128	v = 0;
	int			shift = 0;

	for (;;)
	{
		uint8_t		b;

		if (*pos >= len || shift >= maxbits)
			return false;
		b = buf[(*pos)++];
		if (shift + 7 > maxbits && (b & 0x7f) >> (maxbits - shift) != 0)
			return false;
		v |= (dsk_u128) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
		{
			if (b == 0 && shift > 0)
				return false;
			break;
		}
		shift += 7;
	}
	*result = v;
	return true;
}

/* dsk_encoded_size: exact length of the binary form of s */
size_t
dsk_encoded_size(const DskSketch *s)
{
	size_t		n = 2;
	int			prev = -1;

	n += varint_size(s->count) + varint_size(s->zeros) + varint_size(s->min)
		+ varint_size(s->max) + varint_size(s->sum) + varint_size(s->nbuckets);
	for (uint32_t i = 0; i < s->nbuckets; i++)
	{
		n += varint_size((dsk_u128) (s->index[i] - prev - 1)) + varint_size(s->counts[i]);
		prev = s->index[i];
	}
	return n;
}

/* dsk_encode: write the binary form (dsk_encoded_size bytes) */
size_t
dsk_encode(const DskSketch *s, uint8_t *out)
{
	size_t		n = 0;
	int			prev = -1;

	out[n++] = DSK_FORMAT_VERSION;
	out[n++] = 0;
	n += put_varint(out + n, s->count);
	n += put_varint(out + n, s->zeros);
	n += put_varint(out + n, s->min);
	n += put_varint(out + n, s->max);
	n += put_varint(out + n, s->sum);
	n += put_varint(out + n, s->nbuckets);
	for (uint32_t i = 0; i < s->nbuckets; i++)
	{
		n += put_varint(out + n, (dsk_u128) (s->index[i] - prev - 1));
		n += put_varint(out + n, s->counts[i]);
		prev = s->index[i];
	}
	return n;
}

/*
 * dsk_decode
 *
 * Parse and validate the binary form; NULL on success, else why not.
 * "out" is fully overwritten either way.
 */
const char *
dsk_decode(const uint8_t *buf, size_t len, DskSketch *out)
{
	size_t		pos = 0;
	dsk_u128	v;
	int64_t		prev = -1;

	memset(out, 0, offsetof(DskSketch, index));
	if (len < 2)
		return "truncated header";
	if (buf[0] != DSK_FORMAT_VERSION)
		return "unsupported format version";
	if (buf[1] != 0)
		return "unknown flags";
	pos = 2;
	if (!get_varint(buf, len, &pos, 64, &v))
		return "bad or truncated count";
	out->count = (uint64_t) v;
	if (!get_varint(buf, len, &pos, 64, &v))
		return "bad or truncated zeros";
	out->zeros = (uint64_t) v;
	if (!get_varint(buf, len, &pos, 64, &v))
		return "bad or truncated min";
	out->min = (uint64_t) v;
	if (!get_varint(buf, len, &pos, 64, &v))
		return "bad or truncated max";
	out->max = (uint64_t) v;
	if (!get_varint(buf, len, &pos, 128, &v))
		return "bad or truncated sum";
	out->sum = v;
	if (!get_varint(buf, len, &pos, 32, &v) || v > DSK_NUM_BUCKETS)
		return "bad or truncated bucket count";
	out->nbuckets = (uint32_t) v;
	for (uint32_t i = 0; i < out->nbuckets; i++)
	{
		if (!get_varint(buf, len, &pos, 32, &v) || v >= DSK_NUM_BUCKETS)
			return "bad or truncated bucket index";
		prev = prev + 1 + (int64_t) v;
		if (prev >= DSK_NUM_BUCKETS)
			return "bucket index out of range";
		out->index[i] = (uint16_t) prev;
		if (!get_varint(buf, len, &pos, 64, &v))
			return "bad or truncated bucket count";
		out->counts[i] = (uint64_t) v;
	}
	if (pos != len)
		return "trailing bytes";
	return dsk_check(out);
}

/* ---- text form ---- */

/* format_u128: decimal digits of v into out (>= 40 bytes); returns length */
static size_t
format_u128(dsk_u128 v, char *out)
{
	char		tmp[40];
	size_t		n = 0;

	do
	{
		tmp[n++] = (char) ('0' + (int) (v % 10));
		v /= 10;
	} while (v > 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

/* dsk_text_size: a bound on the text form's length, NUL included */
size_t
dsk_text_size(const DskSketch *s)
{
	/* fixed part with 20-digit fields and a 39-digit sum, then ",k:count" */
	return 256 + (size_t) s->nbuckets * 26;
}

/* dsk_format_text: write the text form; returns its length */
size_t
dsk_format_text(const DskSketch *s, char *out, size_t cap)
{
	char		sum[40];
	size_t		n;

	format_u128(s->sum, sum);
	n = (size_t) snprintf(out, cap,
						  "v1 count=%llu zeros=%llu min_us=%llu max_us=%llu sum_us=%s buckets=",
						  (unsigned long long) s->count,
						  (unsigned long long) s->zeros,
						  (unsigned long long) s->min,
						  (unsigned long long) s->max, sum);
	for (uint32_t i = 0; i < s->nbuckets && n < cap; i++)
		n += (size_t) snprintf(out + n, cap - n, "%s%u:%llu", i > 0 ? "," : "",
							   (unsigned) s->index[i],
							   (unsigned long long) s->counts[i]);
	return n < cap ? n : cap - 1;
}

/* skip_space: past blanks (space, tab, newline, carriage return) */
static const char *
skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* parse_uint: decimal digits, at most maxbits bits; NULL when malformed */
static const char *
parse_uint(const char *p, int maxbits, dsk_u128 *result)
{
	dsk_u128	v = 0;
	dsk_u128	limit = maxbits >= 128 ? ~(dsk_u128) 0 : (((dsk_u128) 1 << maxbits) - 1);
	const char *start = p;

	while (*p >= '0' && *p <= '9')
	{
		int			d = *p - '0';

		if (v > (limit - (dsk_u128) d) / 10)
			return NULL;
		v = v * 10 + (dsk_u128) d;
		p++;
	}
	if (p == start || p - start > 40)
		return NULL;
	*result = v;
	return p;
}

/* parse_field: "<blanks>name=<number>"; NULL when anything else is found */
static const char *
parse_field(const char *p, const char *name, int maxbits, dsk_u128 *result)
{
	size_t		len = strlen(name);
	const char *q = skip_space(p);

	if (q == p || strncmp(q, name, len) != 0 || q[len] != '=')
		return NULL;
	return parse_uint(q + len + 1, maxbits, result);
}

/*
 * dsk_parse_text
 *
 * The text form written by dsk_format_text, with any blanks between the
 * fields; validated exactly like the binary form.
 */
const char *
dsk_parse_text(const char *str, DskSketch *out)
{
	const char *p = skip_space(str);
	dsk_u128	v;

	memset(out, 0, offsetof(DskSketch, index));
	if (strncmp(p, "v1", 2) != 0)
		return "expected \"v1\" (the format version) first";
	p += 2;
	if ((p = parse_field(p, "count", 64, &v)) == NULL)
		return "expected count=<number>";
	out->count = (uint64_t) v;
	if ((p = parse_field(p, "zeros", 64, &v)) == NULL)
		return "expected zeros=<number>";
	out->zeros = (uint64_t) v;
	if ((p = parse_field(p, "min_us", 64, &v)) == NULL)
		return "expected min_us=<number>";
	out->min = (uint64_t) v;
	if ((p = parse_field(p, "max_us", 64, &v)) == NULL)
		return "expected max_us=<number>";
	out->max = (uint64_t) v;
	if ((p = parse_field(p, "sum_us", 128, &v)) == NULL)
		return "expected sum_us=<number>";
	out->sum = v;
	{
		const char *q = skip_space(p);

		if (q == p || strncmp(q, "buckets=", 8) != 0)
			return "expected buckets=<index>:<count>,...";
		p = q + 8;
	}
	if (*p >= '0' && *p <= '9')
	{
		for (;;)
		{
			if (out->nbuckets >= DSK_NUM_BUCKETS)
				return "too many buckets";
			if ((p = parse_uint(p, 16, &v)) == NULL || v >= DSK_NUM_BUCKETS)
				return "bad bucket index";
			out->index[out->nbuckets] = (uint16_t) v;
			if (*p++ != ':')
				return "expected <index>:<count> in buckets";
			if ((p = parse_uint(p, 64, &v)) == NULL)
				return "bad bucket count";
			out->counts[out->nbuckets++] = (uint64_t) v;
			if (*p != ',')
				break;
			p++;
		}
	}
	if (*skip_space(p) != '\0')
		return "unexpected text after the buckets";
	return dsk_check(out);
}

/* ---- estimates ---- */

/*
 * value_at_rank
 *
 * The value of the rank-th smallest duration (0-based) as well as the
 * sketch knows it: exact for the smallest and largest, 0 among the zeros,
 * else the representative of the bucket holding that rank.  The
 * representative 2ab / (a + b) of the integers [a, b] a bucket can hold
 * (narrowed to [min, max]) has the smallest worst-case relative error.
 */
static double
value_at_rank(const DskSketch *s, uint64_t rank)
{
	uint64_t	seen;

	if (rank == 0)
		return (double) s->min;
	if (rank >= s->count - 1)
		return (double) s->max;
	if (rank < s->zeros)
		return 0.0;
	seen = s->zeros;
	for (uint32_t i = 0; i < s->nbuckets; i++)
	{
		seen += s->counts[i];
		if (rank < seen)
		{
			long double a = (long double) dsk_bucket_low(s->index[i]);
			long double b = (long double) dsk_bucket_high(s->index[i]);

			if (a < (long double) s->min)
				a = (long double) s->min;
			if (b > (long double) s->max)
				b = (long double) s->max;
			return (double) (2.0L * a * b / (a + b));
		}
	}
	return (double) s->max;
}

/*
 * dsk_percentile
 *
 * The same ranks and the same interpolation as percentile_cont, so the
 * estimate's error is that of the two representatives, never more.
 */
double
dsk_percentile(const DskSketch *s, double fraction)
{
	double		pos = fraction * (double) (s->count - 1);
	double		first = floor(pos);
	double		second = ceil(pos);
	double		lo = value_at_rank(s, (uint64_t) first);
	double		hi;

	if (first == second)
		return lo;
	hi = value_at_rank(s, (uint64_t) second);
	return lo + (hi - lo) * (pos - first);
}

/* dsk_mean: sum / count, rounded half away from zero */
uint64_t
dsk_mean(const DskSketch *s)
{
	dsk_u128	q = s->sum / s->count;
	dsk_u128	r = s->sum % s->count;

	if (2 * r >= s->count)
		q++;
	return (uint64_t) q;
}
