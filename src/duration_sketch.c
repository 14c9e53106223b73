/*-------------------------------------------------------------------------
 *
 * duration_sketch.c
 *		The duration_sketch type: text and binary I/O, casts to and from
 *		bytea, and the expanded (working) form used inside aggregates.
 *
 * The varlena payload is the codec's binary form (sketch_codec.c), which
 * is also what send/recv carry, so Citus and binary COPY move sketches
 * without conversion.  Every way in (_in, _recv, the bytea cast) runs the
 * codec's full validation.
 *
 * Why an expanded object: the aggregates' state type must be the varlena
 * type itself (Citus pushes an aggregate down only if its state has
 * send/recv), but decoding and re-encoding the compact form on every row
 * would be slow.  PostgreSQL keeps a read/write expanded object as the
 * state without copying it (ExecAggTransReparent), and flattens it, by
 * calling the methods below, only when the value leaves the aggregate.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "duration_sketch.h"

PG_FUNCTION_INFO_V1(em_duration_sketch_in);
PG_FUNCTION_INFO_V1(em_duration_sketch_out);
PG_FUNCTION_INFO_V1(em_duration_sketch_recv);
PG_FUNCTION_INFO_V1(em_duration_sketch_send);
PG_FUNCTION_INFO_V1(em_duration_sketch_from_bytea);
PG_FUNCTION_INFO_V1(em_duration_sketch_to_bytea);

static Size sketch_get_flat_size(ExpandedObjectHeader *eohptr);
static void sketch_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size);

const ExpandedObjectMethods em_sketch_methods = {
	sketch_get_flat_size,
	sketch_flatten_into
};

/* buckets added on the side a window grows, to make growth rare */
#define SKETCH_WINDOW_SLACK 32

/*
 * sketch_expanded_new
 *
 * The object gets its own small context under the aggregate context: the
 * executor recognises a state it need not copy by exactly that parentage,
 * and frees the object by deleting the context.
 */
SketchExpanded *
sketch_expanded_new(MemoryContext parent)
{
	MemoryContext context = AllocSetContextCreate(parent, "duration_sketch",
												  ALLOCSET_SMALL_SIZES);
	SketchExpanded *sk = MemoryContextAllocZero(context, sizeof(SketchExpanded));

	dsk_init();					/* sketch_add relies on the bucket tables */

	EOH_init_header(&sk->hdr, &em_sketch_methods, context);
	return sk;
}

/* sketch_expanded_from_datum: see duration_sketch.h */
SketchExpanded *
sketch_expanded_from_datum(Datum d)
{
	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
	{
		ExpandedObjectHeader *eoh = DatumGetEOHP(d);

		if (eoh->eoh_methods == &em_sketch_methods)
			return (SketchExpanded *) eoh;
	}
	return NULL;
}

/*
 * sketch_reserve
 *
 * Make the window cover buckets [first, last], with some slack on a side
 * that had to grow: values usually arrive spread around a typical
 * duration, so a few growths reach the final window.
 */
void
sketch_reserve(SketchExpanded *sk, int first, int last)
{
	int			newlo;
	int			newhi;
	uint64	   *counts;

	if (sk->len > 0 && first >= sk->lo && last < sk->lo + sk->len)
		return;
	newlo = sk->len > 0 && sk->lo <= first ? sk->lo : Max(first - SKETCH_WINDOW_SLACK, 0);
	newhi = sk->len > 0 && sk->lo + sk->len > last ? sk->lo + sk->len
		: Min(last + 1 + SKETCH_WINDOW_SLACK, DSK_NUM_BUCKETS);
	counts = MemoryContextAllocZero(sk->hdr.eoh_context, (newhi - newlo) * sizeof(uint64));
	if (sk->len > 0)
	{
		memcpy(counts + (sk->lo - newlo), sk->counts, sk->len * sizeof(uint64));
		pfree(sk->counts);
	}
	sk->counts = counts;
	sk->lo = newlo;
	sk->len = newhi - newlo;
}

/* sketch_count_overflow: more durations than a bigint counts */
void
sketch_count_overflow(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("duration_sketch holds too many durations")));
}

/* sketch_merge: see duration_sketch.h */
void
sketch_merge(SketchExpanded *sk, const DskSketch *s)
{
	if (s->count > (uint64) PG_INT64_MAX - sk->count)
		sketch_count_overflow();
	if (sk->count == 0)
	{
		sk->min = s->min;
		sk->max = s->max;
	}
	else
	{
		sk->min = Min(sk->min, s->min);
		sk->max = Max(sk->max, s->max);
	}
	sk->count += s->count;
	sk->zeros += s->zeros;
	sk->sum += s->sum;
	if (s->nbuckets > 0)
	{
		sketch_reserve(sk, s->index[0], s->index[s->nbuckets - 1]);
		for (uint32 i = 0; i < s->nbuckets; i++)
			sk->counts[s->index[i] - sk->lo] += s->counts[i];
	}
	if (sk->flat != NULL)
	{
		pfree(sk->flat);
		sk->flat = NULL;
	}
}

/* sketch_to_sparse: see duration_sketch.h */
void
sketch_to_sparse(const SketchExpanded *sk, DskSketch *out)
{
	out->count = sk->count;
	out->zeros = sk->zeros;
	out->min = sk->min;
	out->max = sk->max;
	out->sum = sk->sum;
	out->nbuckets = 0;
	for (int i = 0; i < sk->len; i++)
	{
		if (sk->counts[i] == 0)
			continue;
		out->index[out->nbuckets] = (uint16) (sk->lo + i);
		out->counts[out->nbuckets] = sk->counts[i];
		out->nbuckets++;
	}
}

/*
 * sketch_get_flat_size
 *
 * Encode once and keep the bytes: PostgreSQL asks for the size, then
 * flattens into a buffer of that size.
 */
static Size
sketch_get_flat_size(ExpandedObjectHeader *eohptr)
{
	SketchExpanded *sk = (SketchExpanded *) eohptr;

	if (sk->flat == NULL)
	{
		DskSketch  *sparse = palloc(sizeof(DskSketch));
		uint8	   *flat;

		sketch_to_sparse(sk, sparse);
		flat = MemoryContextAlloc(sk->hdr.eoh_context, dsk_encoded_size(sparse));
		sk->flat_len = dsk_encode(sparse, flat);
		sk->flat = flat;
		pfree(sparse);
	}
	return VARHDRSZ + sk->flat_len;
}

/* sketch_flatten_into: copy the cached bytes behind a varlena header */
static void
sketch_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	SketchExpanded *sk = (SketchExpanded *) eohptr;

	Assert(sk->flat != NULL && allocated_size == VARHDRSZ + sk->flat_len);
	memcpy(VARDATA(result), sk->flat, sk->flat_len);
	SET_VARSIZE(result, allocated_size);
}

/* sketch_read: see duration_sketch.h */
void
sketch_read(Datum d, DskSketch *out)
{
	SketchExpanded *sk = sketch_expanded_from_datum(d);
	struct varlena *flat;
	const char *problem;

	if (sk != NULL)
	{
		sketch_to_sparse(sk, out);
		return;
	}
	flat = PG_DETOAST_DATUM_PACKED(d);
	problem = dsk_decode((const uint8 *) VARDATA_ANY(flat), VARSIZE_ANY_EXHDR(flat), out);
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("corrupt duration_sketch value: %s", problem)));
}

/* sketch_from_bytes: validate bytes from outside and make a datum of them */
static bytea *
sketch_from_bytes(const char *bytes, Size len)
{
	DskSketch  *sparse = palloc(sizeof(DskSketch));
	const char *problem = dsk_decode((const uint8 *) bytes, len, sparse);
	bytea	   *result;

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary duration_sketch: %s", problem)));
	pfree(sparse);
	/* a valid encoding is canonical: keep the bytes as they are */
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), bytes, len);
	return result;
}

/* em_duration_sketch_in: the text form (see sketch_codec.c) */
Datum
em_duration_sketch_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	DskSketch  *sparse = palloc(sizeof(DskSketch));
	const char *problem = dsk_parse_text(str, sparse);
	bytea	   *result;
	Size		len;

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type duration_sketch: %s", problem),
				 errdetail("Expected \"v1 count=<n> zeros=<n> min_us=<n> max_us=<n> sum_us=<n> buckets=<index>:<count>,...\".")));
	len = dsk_encoded_size(sparse);
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	dsk_encode(sparse, (uint8 *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}

/* em_duration_sketch_out: one line a user can read and paste back */
Datum
em_duration_sketch_out(PG_FUNCTION_ARGS)
{
	DskSketch  *sparse = palloc(sizeof(DskSketch));
	char	   *text;
	Size		cap;

	sketch_read(PG_GETARG_DATUM(0), sparse);
	cap = dsk_text_size(sparse);
	text = palloc(cap);
	dsk_format_text(sparse, text, cap);
	PG_RETURN_CSTRING(text);
}

/* em_duration_sketch_recv: the rest of the message is the binary form */
Datum
em_duration_sketch_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			len = buf->len - buf->cursor;
	bytea	   *result = sketch_from_bytes(pq_getmsgbytes(buf, len), len);

	PG_RETURN_BYTEA_P(result);
}

/*
 * sketch_bytes
 *
 * The binary form of any datum: the cached encoding of a working sketch,
 * else the stored payload (validated, as for any read).
 */
static bytea *
sketch_bytes(Datum d)
{
	SketchExpanded *sk = sketch_expanded_from_datum(d);
	bytea	   *result;
	DskSketch  *sparse;

	if (sk != NULL)
	{
		Size		size = sketch_get_flat_size(&sk->hdr);

		result = palloc(size);
		sketch_flatten_into(&sk->hdr, result, size);
		return result;
	}
	sparse = palloc(sizeof(DskSketch));
	sketch_read(d, sparse);
	pfree(sparse);
	return (bytea *) PG_DETOAST_DATUM_COPY(d);
}

/* em_duration_sketch_send: the payload, unchanged */
Datum
em_duration_sketch_send(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = sketch_bytes(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbytes(&buf, VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* em_duration_sketch_from_bytea: the bytea cast, validated like recv */
Datum
em_duration_sketch_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_BYTEA_P(sketch_from_bytes(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes)));
}

/* em_duration_sketch_to_bytea: the binary form as bytea */
Datum
em_duration_sketch_to_bytea(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(sketch_bytes(PG_GETARG_DATUM(0)));
}
