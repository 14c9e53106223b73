/*-------------------------------------------------------------------------
 *
 * connector_github.c
 *		Transport glue of the GitHub connector (REST API v3).
 *
 * What is fetched and how it maps to rows lives in SQL
 * (sql/engineering_metrics/40_github.sql); this file only says how to
 * talk to GitHub: where, with which headers, and how to tell a rate limit
 * from other errors.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "http_headers.h"
#include "sync.h"

static const char *const github_headers[] = {
	"Accept: application/vnd.github+json",
	"X-GitHub-Api-Version: 2022-11-28",
	NULL
};

/*
 * Bulky fields no mapping reads: the repository objects repeated in every
 * workflow run (about 5 kB of a run's 7 kB) and pull request, commit
 * details of runs, hypermedia links, and free text (pull request bodies,
 * deployment payloads).
 */
static const char *const github_skip_keys[] = {
	"repository", "head_repository", "repo", "head_commit", "_links", "body", "payload",
	NULL
};

/*
 * github_is_rate_limited
 *
 * GitHub answers a primary rate limit with 403 or 429 and
 * x-ratelimit-remaining: 0, and a secondary one with 403/429, a message
 * mentioning the rate limit and sometimes Retry-After, while remaining
 * may still be positive.  A plain 403 (missing permission) is an error.
 */
static bool
github_is_rate_limited(const EmHttpResponse *resp)
{
	const char *remaining;

	if (resp->status != 403 && resp->status != 429)
		return false;
	remaining = em_http_header(resp, "x-ratelimit-remaining");
	if (remaining != NULL)
	{
		int64_t		n;

		if (emh_parse_int64(remaining, &n) && n == 0)
			return true;
	}
	if (em_http_header(resp, "retry-after") != NULL)
		return true;
	return emh_contains_ci(resp->body, resp->body_len, "rate limit");
}

const EmConnector em_connector_github = {
	.kind = "github",
	.default_base_url = "https://api.github.com",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: Bearer ",
	.basic_user_key = NULL,
	.fixed_headers = github_headers,
	.is_rate_limited = github_is_rate_limited,
	.skip_keys = github_skip_keys,
};
