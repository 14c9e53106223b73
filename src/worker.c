/*-------------------------------------------------------------------------
 *
 * worker.c
 *		Background worker registration and settings.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "engineering_metrics.h"

/* true in processes forked from a postmaster that preloaded the module */
bool		em_preloaded = false;

/*
 * em_define_settings
 *
 * The sync engine defines its settings here; until it exists there is
 * nothing to configure.
 */
void
em_define_settings(void)
{
}

/*
 * em_register_workers
 *
 * Called only while preloading; remembers that fact for build_info().
 */
void
em_register_workers(void)
{
	em_preloaded = true;
}
