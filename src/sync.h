/*-------------------------------------------------------------------------
 *
 * sync.h
 *		The sync engine: settings and the run loop shared by the
 *		background worker and engineering.sync().  The connectors it
 *		drives are in connectors.h.
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

/* settings (settings.c) */
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

/* json_parse.c: body text (NUL-terminated, database encoding) to jsonb */
extern Datum em_json_to_jsonb(char *text, int len, const char *const *skip);

/* sync_secrets.c */
extern const char *em_load_token(const char *stored, const char *file,
								 const char *env, char **out);
extern char *em_redact(const char *msg, const char *token);
extern void em_wipe(char *s);

/* worker.c: ask the launcher to look for work when this transaction commits */
extern void em_wake_at_commit(void);

#endif							/* EM_SYNC_H */
