/*-------------------------------------------------------------------------
 *
 * sync.h
 *		The run loop of the sync engine, shared by the background worker
 *		and engineering.sync().  The connectors it drives are in
 *		connectors.h, its settings in settings.h.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_SYNC_H
#define EM_SYNC_H

/*
 * First key of the per-source advisory lock (the second is the source id);
 * visible in pg_locks as classid.  "EMSY" in ASCII.
 */
#define EM_SYNC_LOCK_CLASS 1162695513

/* true while this process runs a sync, so that its own writes wake nobody */
extern bool em_in_sync;

/*
 * Run one sync of a source (sync.c).  worker_mode: each unit of work is its
 * own transaction (the caller holds none); otherwise units are
 * subtransactions of the caller's transaction (engineering.sync()).
 * Returns the sync_runs id, or 0 when the worker skipped the source because
 * another process holds it.
 */
extern int64 em_sync_source(int32 source_id, bool worker_mode);

#endif							/* EM_SYNC_H */
