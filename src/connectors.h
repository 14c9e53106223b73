/*-------------------------------------------------------------------------
 *
 * connectors.h
 *		The connector registry: how the engine talks to each vendor.
 *
 * The table in connectors.c is the one list of source kinds: the CHECK on
 * engineering.sources.kind and the validation of add_source() read it
 * through engineering._connector_kinds(), so a kind exists exactly when
 * this build has a connector for it (README, "Writing a connector").
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_CONNECTORS_H
#define EM_CONNECTORS_H

#include "http.h"

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

/* the connector of a kind, or NULL when this build has none */
extern const EmConnector *em_find_connector(const char *kind);

#endif							/* EM_CONNECTORS_H */
