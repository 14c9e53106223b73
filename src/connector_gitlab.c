/*-------------------------------------------------------------------------
 *
 * connector_gitlab.c
 *		Transport glue of the GitLab connector (REST API v4).
 *
 * What is fetched and how it maps to rows lives in SQL
 * (sql/engineering_metrics/41_gitlab.sql); this file only says how to
 * talk to GitLab: where, with which headers, and how to tell a rate limit
 * from other errors.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

static const char *const gitlab_headers[] = {
	"Accept: application/json",
	NULL
};

/*
 * gitlab_is_rate_limited
 *
 * GitLab throttles with 429 (which the engine always treats as a rate
 * limit), with RateLimit-Reset and Retry-After, or without them on some
 * GitLab.com paths.  A 403 is a permission problem.  Rate limiters in
 * front of self-managed instances (an ingress, a WAF) answer 503 with
 * Retry-After: that is a request to wait, not a failure of the source.
 */
static bool
gitlab_is_rate_limited(const EmHttpResponse *resp)
{
	return resp->status == 503 && em_http_header(resp, "retry-after") != NULL;
}

const EmConnector em_connector_gitlab = {
	.kind = "gitlab",
	.default_base_url = "https://gitlab.com/api/v4",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "PRIVATE-TOKEN: ",
	.basic_user_key = NULL,
	.fixed_headers = gitlab_headers,
	.is_rate_limited = gitlab_is_rate_limited,
};
