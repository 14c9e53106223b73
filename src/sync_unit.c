/*-------------------------------------------------------------------------
 *
 * sync_unit.c
 *		Units of work of the sync engine: the transaction boilerplate of
 *		the background worker and the subtransactions of sync().
 *
 * The worker follows the usual discipline for each short piece of work
 * (statement start time, transaction, snapshot, SPI, commit, memory context
 * restored, statistics reported); a SQL function cannot commit, so sync()
 * isolates each page in a subtransaction instead, rolled back alone when
 * the page fails.  One interface for both keeps the run loop in sync.c
 * free of the difference.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "sync_unit.h"

/*
 * em_unit_begin
 *
 * Allocations made while the unit runs go to SPI's procedure context
 * (freed with the unit); the caller's context is restored afterwards.
 */
void
em_unit_begin(EmUnit *u, bool worker_mode, bool step, double *seconds)
{
	u->oldcxt = CurrentMemoryContext;
	u->oldowner = CurrentResourceOwner;
	u->worker_mode = worker_mode;
	u->step = step;
	u->seconds = seconds;
	INSTR_TIME_SET_CURRENT(u->start);
	if (worker_mode)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	else if (step)
		BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(u->oldcxt);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
unit_account(EmUnit *u)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, u->start);
	if (u->seconds != NULL)
		*u->seconds += INSTR_TIME_GET_DOUBLE(now);
}

void
em_unit_commit(EmUnit *u)
{
	SPI_finish();
	if (u->worker_mode)
	{
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	else if (u->step)
		ReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(u->oldcxt);
	CurrentResourceOwner = u->oldowner;
	unit_account(u);
	if (u->worker_mode)
		pgstat_report_stat(false);
}

/*
 * em_unit_abort
 *
 * Called from PG_CATCH: keeps a copy of the error (in errcxt), undoes the
 * unit and puts memory context and resource owner back.  In sync(), an
 * error outside a step, and a cancel anywhere (the user's, or
 * statement_timeout), belong to the caller and are raised again.
 */
ErrorData *
em_unit_abort(EmUnit *u, MemoryContext errcxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(errcxt);
	edata = CopyErrorData();
	FlushErrorState();
	if (u->worker_mode)
		AbortCurrentTransaction();
	else if (u->step)
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(u->oldcxt);
	CurrentResourceOwner = u->oldowner;
	unit_account(u);
	if (!u->worker_mode && (!u->step || edata->sqlerrcode == ERRCODE_QUERY_CANCELED))
		ReThrowError(edata);
	return edata;
}

void
em_spi_exec(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
			int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "engineering_metrics: unexpected SPI result %d", rc);
}

/*
 * em_spi_exec_plan
 *
 * Every page runs the same statements; preparing them once per run rather
 * than per page saves their parse and plan time.  Kept plans outlive the
 * transactions (and rolled-back subtransactions) of the run; the caller
 * frees them with em_spi_free_plan.
 */
void
em_spi_exec_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types,
				 Datum *values, const char *nulls, int expected)
{
	int			rc;

	if (*slot == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

		if (plan == NULL)
			elog(ERROR, "engineering_metrics: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "engineering_metrics: SPI_keepplan failed");
		*slot = plan;
	}
	rc = SPI_execute_plan(*slot, values, nulls, false, 0);
	if (rc != expected)
		elog(ERROR, "engineering_metrics: unexpected SPI result %d", rc);
}

void
em_spi_free_plan(SPIPlanPtr *slot)
{
	if (*slot != NULL)
		SPI_freeplan(*slot);
	*slot = NULL;
}

/* column of the first result row as a string in cxt, or NULL */
char *
em_spi_string(int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}
