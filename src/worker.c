/*-------------------------------------------------------------------------
 *
 * worker.c
 *		Shared state and the two background workers of the sync engine: a
 *		launcher and short-lived sync workers.
 *
 * The launcher is a static worker that connects to no database, so it
 * never holds one open: DROP DATABASE is never blocked by it, and it keeps
 * running whatever happens to the database it serves.  Every naptime, or
 * when woken, it starts one dynamic *sync* worker connected to the
 * database named by engineering_metrics.database (if it exists) and waits
 * for it without blocking (latch + polling).  The sync worker runs every
 * due source once, evaluates SLO alerts once a minute and prunes the sync
 * history hourly if that code is installed, reports when the next source
 * is due, and exits.  It is connected only while it works, so DROP
 * DATABASE succeeds whenever it is idle and DROP DATABASE ... WITH (FORCE)
 * terminates it safely.
 *
 * Backends wake the launcher on commit (engineering.wake(), add_source,
 * changes to engineering.sources) through an XactCallback, instead of the
 * launcher polling tables (pg_net#199).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "engineering_metrics.h"
#include "settings.h"
#include "sync.h"
#include "sync_unit.h"
#include "worker.h"

PGDLLEXPORT void em_launcher_main(Datum arg);
PGDLLEXPORT void em_sync_worker_main(Datum arg);

/* true in processes forked from a postmaster that preloaded the module */
bool		em_preloaded = false;

/* shortest pause between two sync workers that made no progress */
#define EM_IDLE_FLOOR_MS	1000

/* how often the sync history is pruned (it changes slowly) */
#define EM_PRUNE_PERIOD_MS	(60 * 60 * 1000)

typedef struct EmShared
{
	slock_t		mutex;
	Latch	   *launcher_latch; /* NULL while no launcher runs */
	TimestampTz next_due;		/* earliest next_sync_at seen by the last sync worker */
	bool		next_due_known;
	bool		progress;		/* did the last sync worker run anything? */
	bool		slo_present;	/* is engineering._evaluate_slo_alerts() installed? */
	TimestampTz slo_last_eval;
	TimestampTz last_prune;		/* last pruning of sync_runs */
	pg_atomic_uint32 wake;		/* a backend asked for a sync */
} EmShared;

static EmShared *em_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* wake-on-commit state of this backend */
static bool wake_at_commit = false;
static bool xact_callback_registered = false;

/* the sync worker the launcher is waiting for, terminated if it exits */
static BackgroundWorkerHandle *current_sync_worker = NULL;

static void
em_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(EmShared)));
}

/*
 * em_shmem_startup
 *
 * Runs in the postmaster at start and after every crash restart; children
 * inherit the pointer.
 */
static void
em_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	em_shared = ShmemInitStruct("engineering_metrics", sizeof(EmShared), &found);
	if (!found)
	{
		memset(em_shared, 0, sizeof(EmShared));
		SpinLockInit(&em_shared->mutex);
		pg_atomic_init_u32(&em_shared->wake, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * em_register_workers
 *
 * Called only while the postmaster preloads the module.  The launcher is
 * restarted 5 s after it exits non-zero (errors) or crashes.
 */
void
em_register_workers(void)
{
	BackgroundWorker worker;

	em_preloaded = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = em_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = em_shmem_startup;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "engineering_metrics");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "em_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "engineering_metrics launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "engineering_metrics launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------------
 * Wake on commit
 * ---------------------------------------------------------------------
 */

static void
wake_launcher_now(void)
{
	Latch	   *latch;

	if (em_shared == NULL)
		return;
	pg_atomic_write_u32(&em_shared->wake, 1);
	SpinLockAcquire(&em_shared->mutex);
	latch = em_shared->launcher_latch;
	SpinLockRelease(&em_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

static void
em_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit)
				wake_launcher_now();
			wake_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * em_wake_at_commit
 *
 * A new or changed source is visible to the worker only after commit, so
 * waking earlier would make it look at stale data and sleep again.  Writes
 * made by a sync itself wake nobody (the launcher learns the next due time
 * from the sync worker).
 */
void
em_wake_at_commit(void)
{
	if (em_shared == NULL || em_in_sync)
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(em_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;
}

/* ---------------------------------------------------------------------
 * Launcher
 * ---------------------------------------------------------------------
 */

static void
launcher_detach(int code pg_attribute_unused(), Datum arg pg_attribute_unused())
{
	if (current_sync_worker != NULL)
		TerminateBackgroundWorker(current_sync_worker);
	if (em_shared != NULL)
	{
		SpinLockAcquire(&em_shared->mutex);
		em_shared->launcher_latch = NULL;
		SpinLockRelease(&em_shared->mutex);
	}
}

/* true if the configuration was reloaded (the database or naptime may differ) */
static bool
launcher_reload_config(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		return true;
	}
	return false;
}

/*
 * lookup_database
 *
 * A launcher without a database can still read the shared catalog
 * pg_database inside a transaction, but only with a heap scan: the
 * relcache entries of its indexes are not built for such a process (the
 * autovacuum launcher reads it the same way).  Databases that refuse
 * connections, or are half-dropped, count as missing.
 */
static Oid
lookup_database(const char *name)
{
	Oid			oid = InvalidOid;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0)
		{
			if (db->datallowconn && db->datconnlimit != -2)
				oid = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return oid;
}

/*
 * run_sync_worker
 *
 * Starts one sync worker and waits for it to stop, watching the latch so
 * that SIGTERM, SIGHUP and postmaster death are handled while waiting.
 * Returns false when no worker could be started.
 */
static bool
run_sync_worker(Oid dboid)
{
	BackgroundWorker worker;
	static bool slots_warned = false;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_notify_pid = MyProcPid;
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "engineering_metrics");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "em_sync_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "engineering_metrics sync");
	snprintf(worker.bgw_type, BGW_MAXLEN, "engineering_metrics sync");

	if (!RegisterDynamicBackgroundWorker(&worker, &current_sync_worker))
	{
		current_sync_worker = NULL;
		if (!slots_warned)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("engineering_metrics could not start a sync worker: out of background worker slots"),
					 errhint("Raise max_worker_processes.")));
		slots_warned = true;
		return false;
	}
	slots_warned = false;

	for (;;)
	{
		pid_t		pid;
		BgwHandleStatus status = GetBackgroundWorkerPid(current_sync_worker, &pid);

		if (status == BGWH_STOPPED)
			break;
		if (status == BGWH_POSTMASTER_DIED)
			proc_exit(1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		launcher_reload_config();
	}
	pfree(current_sync_worker);
	current_sync_worker = NULL;
	return true;
}

/*
 * next_launch_time
 *
 * When the next sync worker is needed: the earliest due source, but no
 * later than a naptime from now (sources may be added by hand, clocks may
 * jump) nor than the next SLO evaluation.  If the last worker ran nothing
 * although something was due (another process held it), wait a little so
 * as not to spin.
 */
static TimestampTz
next_launch_time(TimestampTz now)
{
	TimestampTz next = TimestampTzPlusMilliseconds(now, (int64) em_naptime_s * 1000);
	TimestampTz floor = now;

	SpinLockAcquire(&em_shared->mutex);
	if (em_shared->next_due_known && em_shared->next_due < next)
		next = em_shared->next_due;
	if (em_shared->slo_present)
	{
		TimestampTz slo = TimestampTzPlusMilliseconds(em_shared->slo_last_eval,
													  em_slo_interval_s * 1000);

		if (slo < next)
			next = slo;
	}
	if (!em_shared->progress)
		floor = TimestampTzPlusMilliseconds(now, EM_IDLE_FLOOR_MS);
	SpinLockRelease(&em_shared->mutex);

	return next < floor ? floor : next;
}

/*
 * em_launcher_main
 *
 * See the file header.  Exits only through die() (SIGTERM: exit code 1,
 * so the postmaster restarts it) or postmaster death.
 */
void
em_launcher_main(Datum arg pg_attribute_unused())
{
	TimestampTz next_launch = 0;
	bool		missing_logged = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	if (em_shared == NULL)
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("engineering_metrics shared memory is not initialised")));

	SpinLockAcquire(&em_shared->mutex);
	em_shared->launcher_latch = MyLatch;
	em_shared->progress = true;
	SpinLockRelease(&em_shared->mutex);
	before_shmem_exit(launcher_detach, 0);

	ereport(LOG,
			(errmsg("engineering_metrics launcher started (database \"%s\")",
					em_database)));

	for (;;)
	{
		TimestampTz now;
		bool		woken;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		/* another database or naptime: look again now rather than at the old time */
		if (launcher_reload_config())
			next_launch = 0;

		now = GetCurrentTimestamp();
		woken = pg_atomic_exchange_u32(&em_shared->wake, 0) != 0;
		if (em_enabled && (woken || now >= next_launch))
		{
			Oid			dboid = lookup_database(em_database);

			if (!OidIsValid(dboid))
			{
				if (!missing_logged)
					ereport(LOG,
							(errmsg("engineering_metrics: database \"%s\" does not exist; sources will be synced once it does",
									em_database),
							 errhint("Set engineering_metrics.database to the database where the extension is installed.")));
				missing_logged = true;
				SpinLockAcquire(&em_shared->mutex);
				em_shared->next_due_known = false;
				em_shared->slo_present = false;
				SpinLockRelease(&em_shared->mutex);
			}
			else
			{
				missing_logged = false;
				if (!run_sync_worker(dboid))
				{
					SpinLockAcquire(&em_shared->mutex);
					em_shared->next_due_known = false;
					SpinLockRelease(&em_shared->mutex);
				}
			}
			now = GetCurrentTimestamp();
			next_launch = next_launch_time(now);
		}
		else if (!em_enabled)
			next_launch = TimestampTzPlusMilliseconds(now, (int64) em_naptime_s * 1000);

		/* a wake that arrived while the worker ran is handled at once */
		if (pg_atomic_read_u32(&em_shared->wake) != 0)
			continue;

		wait_ms = (long) ((next_launch - now) / 1000);
		if (wait_ms < 0)
			wait_ms = 0;
		if (wait_ms > (long) em_naptime_s * 1000)
			wait_ms = (long) em_naptime_s * 1000;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------------
 * Sync worker
 * ---------------------------------------------------------------------
 */

/*
 * installed_and_ready
 *
 * The worker must idle quietly in a database where the extension is not
 * installed, or is being created or dropped: it checks the extension and
 * the tables it needs (pg_net#264: a schema without its tables).  Also
 * closes runs left 'running' by a process that died (their source's
 * advisory lock is free).
 */
static bool
installed_and_ready(void)
{
	EmUnit		u;
	bool		ready;

	em_unit_begin(&u, true, false, NULL);
	ready = OidIsValid(get_extension_oid("engineering_metrics", true));
	if (ready)
	{
		int			rc = SPI_execute("SELECT to_regclass('engineering.sources') IS NOT NULL"
									 " AND to_regclass('engineering.sync_runs') IS NOT NULL"
									 " AND to_regclass('engineering.sync_tasks') IS NOT NULL",
									 true, 1);
		bool		isnull;

		ready = rc == SPI_OK_SELECT && SPI_processed == 1 &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	if (ready)
		SPI_execute("UPDATE engineering.sync_runs r"
					" SET status = 'error', finished_at = now(),"
					"     error = 'interrupted: the process running this sync ended before it finished'"
					" WHERE r.status = 'running' AND NOT EXISTS ("
					"   SELECT 1 FROM pg_catalog.pg_locks l"
					"   WHERE l.locktype = 'advisory' AND l.granted"
					"     AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
					"     AND l.classid = " CppAsString2(EM_SYNC_LOCK_CLASS) "::oid"
					"     AND l.objid = r.source_id::oid AND l.objsubid = 2)",
					false, 0);
	em_unit_commit(&u);
	return ready;
}

/* ids of the enabled sources that are due, earliest first */
static List *
due_sources(MemoryContext cxt)
{
	EmUnit		u;
	List	   *ids = NIL;

	em_unit_begin(&u, true, false, NULL);
	if (SPI_execute("SELECT id FROM engineering.sources"
					" WHERE enabled AND next_sync_at <= now()"
					" ORDER BY next_sync_at, id", true, 0) == SPI_OK_SELECT)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			ids = lappend_int(ids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
															   SPI_tuptable->tupdesc,
															   1, &isnull)));
		}
		MemoryContextSwitchTo(old);
	}
	em_unit_commit(&u);
	return ids;
}

/*
 * run_periodic_function
 *
 * The worker's periodic jobs call a function of the extension that an
 * older or half-created installation may lack, so its presence is checked
 * first.  Each runs in its own transaction, and a failure is logged and
 * retried at the next period: housekeeping must never stop the syncs.
 * Returns whether the function exists.
 */
static bool
run_periodic_function(MemoryContext cxt, const char *signature, const char *call,
					  const char *activity)
{
	volatile bool present = false;
	EmUnit		u;

	PG_TRY();
	{
		bool		isnull;
		char		probe[160];

		snprintf(probe, sizeof(probe), "SELECT to_regprocedure('%s') IS NOT NULL", signature);
		em_unit_begin(&u, true, false, NULL);
		if (SPI_execute(probe, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
			present = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
		if (present)
		{
			pgstat_report_activity(STATE_RUNNING, activity);
			SPI_execute(call, false, 0);
		}
		em_unit_commit(&u);
	}
	PG_CATCH();
	{
		ErrorData  *edata = em_unit_abort(&u, cxt);

		MemoryContextSwitchTo(cxt);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("%s failed: %s", activity, edata->message)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return present;
}

/* evaluate the SLO alert rules when engineering_metrics.slo_evaluation_interval has passed */
static void
evaluate_slo_alerts(MemoryContext cxt)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz last;
	bool		present;

	SpinLockAcquire(&em_shared->mutex);
	last = em_shared->slo_last_eval;
	SpinLockRelease(&em_shared->mutex);
	if (last != 0 && !TimestampDifferenceExceeds(last, now, em_slo_interval_s * 1000 - 500))
		return;

	present = run_periodic_function(cxt, "engineering._evaluate_slo_alerts()",
									"SELECT engineering._evaluate_slo_alerts()",
									"engineering_metrics: evaluating SLO alerts");

	SpinLockAcquire(&em_shared->mutex);
	em_shared->slo_last_eval = now;
	em_shared->slo_present = present;
	SpinLockRelease(&em_shared->mutex);
}

/*
 * prune_sync_runs
 *
 * A source synced every five minutes writes a hundred thousand runs a
 * year; the history is worth keeping for a while, not forever.  Hourly,
 * and first in each postmaster's life.
 */
static void
prune_sync_runs(MemoryContext cxt)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz last;
	char		call[128];

	if (em_sync_runs_retention_min <= 0)
		return;
	SpinLockAcquire(&em_shared->mutex);
	last = em_shared->last_prune;
	SpinLockRelease(&em_shared->mutex);
	if (last != 0 && !TimestampDifferenceExceeds(last, now, EM_PRUNE_PERIOD_MS))
		return;

	snprintf(call, sizeof(call), "SELECT engineering.prune_sync_runs(make_interval(mins => %d))",
			 em_sync_runs_retention_min);
	run_periodic_function(cxt, "engineering.prune_sync_runs(interval)", call,
						  "engineering_metrics: pruning sync_runs");

	SpinLockAcquire(&em_shared->mutex);
	em_shared->last_prune = now;
	SpinLockRelease(&em_shared->mutex);
}

/* tell the launcher when the next source is due */
static void
report_next_due(bool progress)
{
	EmUnit		u;
	bool		known = false;
	TimestampTz due = 0;

	em_unit_begin(&u, true, false, NULL);
	if (SPI_execute("SELECT min(next_sync_at) FROM engineering.sources WHERE enabled",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			known = true;
			due = DatumGetTimestampTz(d);
		}
	}
	em_unit_commit(&u);

	SpinLockAcquire(&em_shared->mutex);
	em_shared->next_due_known = known;
	em_shared->next_due = due;
	em_shared->progress = progress;
	SpinLockRelease(&em_shared->mutex);
}

/*
 * em_sync_worker_main
 *
 * One pass over the due sources, each getting one run (bounded by
 * max_pages_per_run), then exit 0.  Errors inside a run are recorded as
 * rows by the run loop; anything escaping it ends this worker with a
 * non-zero code, which only means the launcher tries again later.
 */
void
em_sync_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext cxt;
	List	   *ids;
	ListCell   *lc;
	bool		progress = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("engineering_metrics sync");
	em_in_sync = true;

	/*
	 * Each page commits its rows together with the deletion of its task, so
	 * losing the last commits in a crash only means fetching those pages
	 * again: waiting for the WAL flush of every page buys nothing.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	cxt = AllocSetContextCreate(TopMemoryContext, "engineering_metrics sync worker",
								ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	if (em_shared == NULL || !installed_and_ready())
	{
		ereport(DEBUG1,
				(errmsg("engineering_metrics: extension not installed in this database; nothing to sync")));
		if (em_shared != NULL)
		{
			SpinLockAcquire(&em_shared->mutex);
			em_shared->next_due_known = false;
			em_shared->slo_present = false;
			em_shared->progress = true;
			SpinLockRelease(&em_shared->mutex);
		}
		proc_exit(0);
	}

	ids = due_sources(cxt);
	foreach(lc, ids)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (!em_enabled)
				break;
		}
		if (em_sync_source(lfirst_int(lc), true) != 0)
			progress = true;
		MemoryContextSwitchTo(cxt);
	}
	/* nothing due counts as progress: there was nothing to wait for */
	if (ids == NIL)
		progress = true;

	/*
	 * The extension may have been dropped while sources were synced (each
	 * failed run was logged): then there is nothing left to report on, and
	 * querying the tables would only end this worker with an error.
	 */
	if (!installed_and_ready())
		proc_exit(0);

	evaluate_slo_alerts(cxt);
	prune_sync_runs(cxt);
	report_next_due(progress);
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
