/*-------------------------------------------------------------------------
 *
 * worker.h
 *		What the rest of the module asks of the background worker
 *		(worker.c).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_WORKER_H
#define EM_WORKER_H

/* ask the launcher to look for work when this transaction commits */
extern void em_wake_at_commit(void);

#endif							/* EM_WORKER_H */
