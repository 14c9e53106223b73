/*-------------------------------------------------------------------------
 *
 * sync.h
 *		The sync engine: connector registry, settings and the run loop
 *		shared by the background worker and engineering.sync().
 *
 * Adding a connector for kind K = one file src/connector_K.c defining an
 * EmConnector named em_connector_K, one extern line below and one line in
 * the table of sync.c, plus engineering._K_plan/_K_ingest in SQL.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_SYNC_H
#define EM_SYNC_H

#include "http.h"

/*
 * First key of the per-source advisory lock (the second is the source id);
 * visible in pg_locks as classid.  "EMSY" in ASCII.
 */
#define EM_SYNC_LOCK_CLASS 1162695513

/* how the token becomes part of a request */
typedef enum EmAuthStyle
{
	EM_AUTH_HEADER,				/* header line = auth_prefix || token */
	EM_AUTH_BASIC				/* HTTP Basic: user from config->>basic_user_key, password = token */
} EmAuthStyle;

typedef struct EmConnector
{
	const char *kind;			/* engineering.sources.kind */
	const char *default_base_url;	/* used when add_source gets no base_url; NULL: required */
	EmAuthStyle auth_style;
	const char *auth_prefix;	/* EM_AUTH_HEADER: e.g. "Authorization: Bearer " */
	const char *basic_user_key; /* EM_AUTH_BASIC: config key holding the user */
	const char *const *fixed_headers;	/* NULL-terminated "Name: value" lines, or NULL */

	/*
	 * Whether a non-2xx response is a rate limit (then the source waits for
	 * the reset instead of counting an error).  429 is always a rate limit;
	 * this hook adds vendor rules (GitHub: 403 with remaining 0).  May be
	 * NULL.
	 */
	bool		(*is_rate_limited) (const EmHttpResponse *resp);

	/*
	 * Object fields (at any depth) whose values the connector never reads:
	 * the engine validates them but leaves them out of the jsonb it hands to
	 * the ingest function.  NULL-terminated, or NULL for none.
	 */
	const char *const *skip_keys;

	/*
	 * Lower-case name of a vendor header giving the seconds to wait after a
	 * rate limit, read in place of a missing ratelimit-reset (Opsgenie
	 * sends only x-ratelimit-period-in-sec, the period of the bucket it
	 * throttled).  May be NULL.
	 */
	const char *rate_limit_wait_header;
} EmConnector;

/* connectors (one line per connector file) */
extern const EmConnector em_connector_github;
extern const EmConnector em_connector_gitlab;
extern const EmConnector em_connector_jenkins;
extern const EmConnector em_connector_pagerduty;
extern const EmConnector em_connector_opsgenie;
extern const EmConnector em_connector_prometheus;

extern const EmConnector *em_find_connector(const char *kind);

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
