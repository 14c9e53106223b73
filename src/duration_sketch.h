/*-------------------------------------------------------------------------
 *
 * duration_sketch.h
 *		The duration_sketch type on the PostgreSQL side: its working form
 *		inside aggregates (an expanded object) and reading any datum of it.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_DURATION_SKETCH_H
#define EM_DURATION_SKETCH_H

#include "fmgr.h"
#include "utils/expandeddatum.h"

#include "sketch_codec.h"

/*
 * The working form.  Transition functions add to a dense window of bucket
 * counts [lo, lo + len) that grows as values arrive; the compact binary
 * form is produced only when PostgreSQL flattens the object (to store it,
 * send it to another process, or copy it out of the aggregate), and is
 * cached until the next change.
 */
typedef struct SketchExpanded
{
	ExpandedObjectHeader hdr;
	uint64		count;
	uint64		zeros;
	uint64		min;
	uint64		max;
	uint128		sum;
	int			lo;
	int			len;
	uint64	   *counts;
	uint8	   *flat;			/* cached binary form, or NULL */
	Size		flat_len;
} SketchExpanded;

/* a new, empty working sketch in a child context of "parent" */
extern SketchExpanded *sketch_expanded_new(MemoryContext parent);

/* our expanded object behind a datum, or NULL when it is flat */
extern SketchExpanded *sketch_expanded_from_datum(Datum d);

/* what sketch_add needs off its fast path */
extern void sketch_reserve(SketchExpanded *sk, int first, int last);
extern void sketch_count_overflow(void) pg_attribute_noreturn();

/*
 * sketch_add: add one duration (microseconds).  Inline: it runs once per
 * row, and a sketch must stay within twice the cost of count(*).
 */
static inline void
sketch_add(SketchExpanded *sk, uint64 us)
{
	if (unlikely(sk->count >= (uint64) PG_INT64_MAX))
		sketch_count_overflow();
	if (sk->count == 0)
		sk->min = sk->max = us;
	else if (us < sk->min)
		sk->min = us;
	else if (us > sk->max)
		sk->max = us;
	sk->count++;
	sk->sum += us;
	if (us == 0)
		sk->zeros++;
	else
	{
		int			k = dsk_bucket_index_ready(us);

		if (unlikely(k < sk->lo || k >= sk->lo + sk->len))
			sketch_reserve(sk, k, k);
		sk->counts[k - sk->lo]++;
	}
	if (unlikely(sk->flat != NULL))
	{
		/* the cached binary form is stale */
		pfree(sk->flat);
		sk->flat = NULL;
	}
}

/*
 * sketch_owned_rw: the working sketch behind a datum when it is a
 * read/write expanded object of ours, i.e. the state this aggregate
 * returned on the previous row (the executor keeps it as is, since we
 * return the same pointer); else NULL.
 */
extern const ExpandedObjectMethods em_sketch_methods;

static inline SketchExpanded *
sketch_owned_rw(Datum d)
{
	if (VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)))
	{
		varatt_expanded pointer;

		/* DatumGetEOHP, without a call per row */
		memcpy(&pointer, VARDATA_EXTERNAL(DatumGetPointer(d)), sizeof(pointer));
		if (pointer.eohptr->eoh_methods == &em_sketch_methods)
			return (SketchExpanded *) pointer.eohptr;
	}
	return NULL;
}

/* add every duration of a decoded sketch */
extern void sketch_merge(SketchExpanded *sk, const DskSketch *s);

/* the sparse form of a working sketch */
extern void sketch_to_sparse(const SketchExpanded *sk, DskSketch *out);

/*
 * Any duration_sketch datum (flat, packed, toasted or expanded) as a
 * decoded, validated sketch.  Stored bytes that fail validation raise
 * data_corrupted.
 */
extern void sketch_read(Datum d, DskSketch *out);

#endif							/* EM_DURATION_SKETCH_H */
