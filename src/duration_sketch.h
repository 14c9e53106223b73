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

/* add one duration (microseconds) */
extern void sketch_add(SketchExpanded *sk, uint64 us);

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
