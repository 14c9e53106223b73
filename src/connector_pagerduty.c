/*-------------------------------------------------------------------------
 *
 * connector_pagerduty.c
 *		Transport glue of the PagerDuty connector (REST API v2).
 *
 * What is fetched and how it maps to rows lives in SQL
 * (sql/engineering_metrics/43_pagerduty.sql); this file only says how to
 * talk to PagerDuty: where, with which headers, and how its rate limits
 * look.
 *
 * PagerDuty answers a rate limit with 429 (which the engine always treats
 * as one) and ratelimit-reset in seconds from now, which the engine's
 * backoff routine already reads; some 429s come without the header and
 * then the engine's exponential fallback applies.  No other status means
 * a rate limit, so there is no is_rate_limited hook: a 403 is a missing
 * permission and must show up as an error.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

/* without the versioned Accept header PagerDuty may answer in another API version */
static const char *const pagerduty_headers[] = {
	"Accept: application/vnd.pagerduty+json;version=2",
	NULL
};

const EmConnector em_connector_pagerduty = {
	.kind = "pagerduty",
	.default_base_url = "https://api.pagerduty.com",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: Token token=",
	.basic_user_key = NULL,
	.fixed_headers = pagerduty_headers,
	.is_rate_limited = NULL,
	.rate_limit_wait_header = NULL,
};
