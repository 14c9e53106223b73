/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The engineering_metrics.* configuration parameters.
 *
 * Every process defines them, so that SHOW and ALTER SYSTEM work in
 * ordinary backends and sync() sessions see the same limits as the worker.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"
#include "utils/memutils.h"

#include "engineering_metrics.h"
#include "settings.h"

/* settings */
char	   *em_database = NULL;
bool		em_enabled = true;
int			em_naptime_s = 10;
int			em_slo_interval_s = 60;
int			em_sync_runs_retention_min = 90 * 24 * 60;
int			em_http_timeout_ms = 30000;
int			em_http_connect_timeout_ms = 10000;
int			em_max_response_size = 50 * 1024 * 1024;
int			em_max_pages_per_run = 100;
int			em_http_retries = 2;
char	   *em_http_ca_file = NULL;

/*
 * em_define_settings
 *
 * Defined in every process so that SHOW works in backends and sync()
 * sessions can lower the HTTP limits for themselves; what only the worker
 * uses is reloadable with SIGHUP.
 */
void
em_define_settings(void)
{
	DefineCustomStringVariable("engineering_metrics.database",
							   "Database the background worker syncs sources in.",
							   NULL, &em_database, "postgres",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("engineering_metrics.enabled",
							 "Whether the background worker syncs sources.",
							 NULL, &em_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.naptime",
							"Longest pause of the background worker between two looks for due sources.",
							NULL, &em_naptime_s, 10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.slo_evaluation_interval",
							"How often the background worker evaluates the SLO alert rules.",
							"Each evaluation records and notifies the rules that started or stopped firing.",
							&em_slo_interval_s, 60, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.sync_runs_retention",
							"How long the background worker keeps finished sync runs.",
							"Pruned hourly; each source's latest run is always kept.  0 keeps them all.",
							&em_sync_runs_retention_min, 90 * 24 * 60, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MIN, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.http_timeout",
							"Total time allowed for one HTTP request of a sync.",
							NULL, &em_http_timeout_ms, 30000, 100, 600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.http_connect_timeout",
							"Time allowed to connect to a source's API.",
							NULL, &em_http_connect_timeout_ms, 10000, 100, 600000,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.max_response_size",
							"Largest HTTP response body a sync accepts.",
							NULL, &em_max_response_size, 50 * 1024 * 1024,
							1024, (int) (MaxAllocSize - 1),
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.max_pages_per_run",
							"Pages one sync run fetches before letting other sources go first.",
							"The source's queue persists, so the next run continues where this one stopped.",
							&em_max_pages_per_run, 100, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("engineering_metrics.http_retries",
							"Quick retries of a request after a timeout, a transport error or a 5xx.",
							NULL, &em_http_retries, 2, 0, 10,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("engineering_metrics.http_ca_file",
							   "CA bundle used to verify TLS servers (empty: the system's).",
							   NULL, &em_http_ca_file, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
}
