/*-------------------------------------------------------------------------
 *
 * connector_opsgenie.c
 *		Transport glue of the Opsgenie connector (Incident API v1).
 *
 * What is fetched and how it maps to rows lives in SQL
 * (sql/engineering_metrics/44_opsgenie.sql); this file only says how to
 * talk to Opsgenie: where, with which headers, and how its rate limits
 * look.
 *
 * Opsgenie throttles with 429 (always a rate limit for the engine) and
 * says neither when to retry nor when the bucket resets: it only sends
 * X-RateLimit-State: THROTTLED and X-RateLimit-Period-In-Sec, the period
 * (1 or 60 seconds) of the bucket that overflowed.  Waiting one period
 * refills that bucket, so that header stands in for a reset delta.  EU
 * accounts point base_url at https://api.eu.opsgenie.com.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

static const char *const opsgenie_headers[] = {
	"Accept: application/json",
	NULL
};

const EmConnector em_connector_opsgenie = {
	.kind = "opsgenie",
	.default_base_url = "https://api.opsgenie.com",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: GenieKey ",
	.basic_user_key = NULL,
	.fixed_headers = opsgenie_headers,
	.is_rate_limited = NULL,
	.rate_limit_wait_header = "x-ratelimit-period-in-sec",
};
