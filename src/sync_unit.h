/*-------------------------------------------------------------------------
 *
 * sync_unit.h
 *		Units of work of the sync engine and the SPI plumbing around them.
 *
 * A unit is a transaction in the background worker, and in a SQL function
 * (engineering.sync()) either a subtransaction ("step": a page, the plan)
 * or simply the caller's transaction ("main": bookkeeping whose failure
 * should fail the call).  Either way the unit is connected to SPI.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_SYNC_UNIT_H
#define EM_SYNC_UNIT_H

#include "executor/spi.h"
#include "portability/instr_time.h"
#include "utils/resowner.h"

typedef struct EmUnit
{
	MemoryContext oldcxt;
	ResourceOwner oldowner;
	bool		worker_mode;
	bool		step;
	instr_time	start;
	double	   *seconds;		/* the unit's duration is added here */
} EmUnit;

extern void em_unit_begin(EmUnit *u, bool worker_mode, bool step, double *seconds);
extern void em_unit_commit(EmUnit *u);
extern ErrorData *em_unit_abort(EmUnit *u, MemoryContext errcxt);

extern void em_spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
						const char *nulls, int expected);
extern void em_spi_exec_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types,
							 Datum *values, const char *nulls, int expected);
extern void em_spi_free_plan(SPIPlanPtr *slot);
extern char *em_spi_string(int col, MemoryContext cxt);

#endif							/* EM_SYNC_UNIT_H */
