/*-------------------------------------------------------------------------
 *
 * vendor_time.h
 *		The strict grammar of the timestamps vendors send, in plain C.
 *
 *		YYYY-MM-DD('T'|'t'|' ')HH:MM[:SS[(.|,)fraction]][' ']('Z'|'z'|±HH[[:]MM])
 *
 * timestamptz_in would also accept 'now', 'epoch', time zone names and,
 * worst, values without an offset, which it reads in the session's time
 * zone: a silently wrong instant.  Vendor data gets this grammar instead.
 * Like http_headers.h, nothing here includes postgres.h or allocates, so a
 * fuzzing harness links vendor_time.c alone; any byte string is accepted
 * as input and never read past len.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_VENDOR_TIME_H
#define EM_VENDOR_TIME_H

#include <stdbool.h>
#include <stddef.h>

typedef struct EmvTimestamp
{
	int			year;			/* 1 .. 9999 */
	int			month;			/* 1 .. 12 */
	int			day;			/* valid for the month (leap years counted) */
	int			hour;			/* 0 .. 23 */
	int			minute;			/* 0 .. 59 */
	int			second;			/* 0 .. 60 (a leap second is accepted) */
	int			microsecond;	/* 0 .. 1000000: the seventh fractional digit rounds */
	int			offset_seconds; /* east of Greenwich; -15:59 .. +15:59 */
} EmvTimestamp;

/*
 * Parses s[0..len) (blanks around it allowed).  False when the text does
 * not follow the grammar or names an impossible date or time.
 */
extern bool emv_parse_timestamp(const char *s, size_t len, EmvTimestamp *out);

#endif							/* EM_VENDOR_TIME_H */
