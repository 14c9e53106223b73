/*-------------------------------------------------------------------------
 *
 * engineering_metrics.c
 *		Module entry point: load-time set-up and build information.
 *
 * The module is useful in two ways.  Loaded on demand (the first call to
 * one of its SQL functions), it provides aggregates and types.  Loaded
 * through shared_preload_libraries, it also starts the background worker
 * that syncs sources.  _PG_init must therefore be harmless when it runs
 * late, and register background work only during preload.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "engineering_metrics.h"

PG_MODULE_MAGIC;

/* PostgreSQL 16 declares this in fmgr.h; 15 leaves it to the module */
#if PG_VERSION_NUM < 160000
extern PGDLLEXPORT void _PG_init(void);
#endif

PG_FUNCTION_INFO_V1(em_build_info);

/*
 * _PG_init
 *
 * Binary upgrade runs with no workers and no network, so nothing is set up
 * then.  Settings are defined in every process so that SHOW and ALTER SYSTEM
 * work in ordinary backends; the worker registers only while the postmaster
 * preloads us, since a later load has no postmaster to ask.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	em_define_settings();
	MarkGUCPrefixReserved("engineering_metrics");

	if (process_shared_preload_libraries_in_progress)
		em_register_workers();
}

/*
 * em_build_info
 *
 * Support requests start with "which build is this?"; answering from the
 * loaded module (rather than the catalog) also reveals a stale .so after an
 * upgrade, the failure pgvector#302 describes.
 */
Datum
em_build_info(PG_FUNCTION_ARGS)
{
	curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
	char	   *info;

	info = psprintf("engineering_metrics %s, libcurl %s, %s",
					EM_VERSION,
					curl->version,
					process_shared_preload_libraries_done && em_preloaded
					? "preloaded (background worker registered)"
					: "not preloaded (no background worker)");

	PG_RETURN_TEXT_P(cstring_to_text(info));
}
