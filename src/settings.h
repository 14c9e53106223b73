/*-------------------------------------------------------------------------
 *
 * settings.h
 *		The engineering_metrics.* configuration parameters (settings.c),
 *		read by the sync engine and the background worker.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_SETTINGS_H
#define EM_SETTINGS_H

extern char *em_database;
extern bool em_enabled;
extern int	em_naptime_s;
extern int	em_slo_interval_s;
extern int	em_sync_runs_retention_min;
extern int	em_http_timeout_ms;
extern int	em_http_connect_timeout_ms;
extern int	em_max_response_size;
extern int	em_max_pages_per_run;
extern int	em_http_retries;
extern char *em_http_ca_file;

#endif							/* EM_SETTINGS_H */
