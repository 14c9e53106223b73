/*-------------------------------------------------------------------------
 *
 * connector_jenkins.c
 *		Transport glue of the Jenkins connector (the JSON remote access API).
 *
 * What is fetched and how it maps to rows lives in SQL
 * (sql/engineering_metrics/42_jenkins.sql).  Jenkins has no public
 * default address: every source names its server.  Requests authenticate
 * with HTTP Basic, the user from config "user" and the API token as the
 * password; API-token requests need no CSRF crumb, and the connector only
 * reads.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

static const char *const jenkins_headers[] = {
	"Accept: application/json",
	NULL
};

/*
 * jenkins_is_rate_limited
 *
 * Jenkins itself never rate-limits, but the proxies and throttling
 * plugins in front of it answer 429 (always a rate limit for the engine)
 * or 503 with Retry-After.  A 503 without it is Jenkins starting up or
 * down: an error, retried with the engine's error backoff.
 */
static bool
jenkins_is_rate_limited(const EmHttpResponse *resp)
{
	return resp->status == 503 && em_http_header(resp, "retry-after") != NULL;
}

const EmConnector em_connector_jenkins = {
	.kind = "jenkins",
	.default_base_url = NULL,
	.auth_style = EM_AUTH_BASIC,
	.auth_prefix = NULL,
	.basic_user_key = "user",
	.fixed_headers = jenkins_headers,
	.is_rate_limited = jenkins_is_rate_limited,
};
