/*-------------------------------------------------------------------------
 *
 * connectors.c
 *		The connector table: for every source kind, how the engine talks
 *		to the vendor (address, authentication, headers, rate limits).
 *
 * This table is the one list of source kinds.  SQL reads it through
 * engineering._connector_kinds() (the CHECK on sources.kind and
 * add_source()'s validation) and engineering._connector_default_url(), so
 * a kind is accepted exactly when this build can sync it.  What is fetched
 * and how it maps to rows lives in each vendor's SQL part
 * (sql/engineering_metrics/4N_<kind>.sql); README, "Writing a connector",
 * lists every step of adding one.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "connectors.h"
#include "http_headers.h"

PG_FUNCTION_INFO_V1(em_connector_kinds);
PG_FUNCTION_INFO_V1(em_connector_kind_list);
PG_FUNCTION_INFO_V1(em_connector_default_url);

/*
 * GitHub: REST API v3; mapping in sql/engineering_metrics/40_github.sql.
 */

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

static const EmConnector connector_github = {
	.kind = "github",
	.default_base_url = "https://api.github.com",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: Bearer ",
	.basic_user_key = NULL,
	.fixed_headers = github_headers,
	.is_rate_limited = github_is_rate_limited,
	.skip_keys = github_skip_keys,
};

/*
 * GitLab: REST API v4; mapping in sql/engineering_metrics/41_gitlab.sql.
 */

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

static const EmConnector connector_gitlab = {
	.kind = "gitlab",
	.default_base_url = "https://gitlab.com/api/v4",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "PRIVATE-TOKEN: ",
	.basic_user_key = NULL,
	.fixed_headers = gitlab_headers,
	.is_rate_limited = gitlab_is_rate_limited,
};

/*
 * Jenkins: the JSON remote access API; mapping in
 * sql/engineering_metrics/42_jenkins.sql.
 *
 * Jenkins has no public default address: every source names its server.
 * Requests authenticate with HTTP Basic, the user from config "user" and
 * the API token as the password; API-token requests need no CSRF crumb,
 * and the connector only reads.
 */

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

static const EmConnector connector_jenkins = {
	.kind = "jenkins",
	.default_base_url = NULL,
	.auth_style = EM_AUTH_BASIC,
	.auth_prefix = NULL,
	.basic_user_key = "user",
	.fixed_headers = jenkins_headers,
	.is_rate_limited = jenkins_is_rate_limited,
};

/*
 * PagerDuty: REST API v2; mapping in sql/engineering_metrics/43_pagerduty.sql.
 *
 * PagerDuty answers a rate limit with 429 (which the engine always treats
 * as one) and ratelimit-reset in seconds from now, which the engine's
 * backoff routine already reads; some 429s come without the header and
 * then the engine's exponential fallback applies.  No other status means
 * a rate limit, so there is no is_rate_limited hook: a 403 is a missing
 * permission and must show up as an error.
 */

/* without the versioned Accept header PagerDuty may answer in another API version */
static const char *const pagerduty_headers[] = {
	"Accept: application/vnd.pagerduty+json;version=2",
	NULL
};

static const EmConnector connector_pagerduty = {
	.kind = "pagerduty",
	.default_base_url = "https://api.pagerduty.com",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: Token token=",
	.basic_user_key = NULL,
	.fixed_headers = pagerduty_headers,
	.is_rate_limited = NULL,
	.rate_limit_wait_header = NULL,
};

/*
 * Opsgenie: Incident API v1; mapping in sql/engineering_metrics/44_opsgenie.sql.
 *
 * Opsgenie throttles with 429 (always a rate limit for the engine) and
 * says neither when to retry nor when the bucket resets: it only sends
 * X-RateLimit-State: THROTTLED and X-RateLimit-Period-In-Sec, the period
 * (1 or 60 seconds) of the bucket that overflowed.  Waiting one period
 * refills that bucket, so that header stands in for a reset delta.  EU
 * accounts point base_url at https://api.eu.opsgenie.com.
 */

static const char *const opsgenie_headers[] = {
	"Accept: application/json",
	NULL
};

static const EmConnector connector_opsgenie = {
	.kind = "opsgenie",
	.default_base_url = "https://api.opsgenie.com",
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: GenieKey ",
	.basic_user_key = NULL,
	.fixed_headers = opsgenie_headers,
	.is_rate_limited = NULL,
	.rate_limit_wait_header = "x-ratelimit-period-in-sec",
};

/*
 * Prometheus: HTTP API v1, /api/v1/query_range; mapping to SLO
 * measurements in sql/engineering_metrics/45_prometheus.sql.
 *
 * For a Prometheus-compatible server there is no public default
 * (every server is the user's own), authentication is optional and, when
 * a token is stored, a Bearer token (Prometheus behind an authenticating
 * proxy, Grafana Cloud, Mimir, Thanos or VictoriaMetrics gateways).
 *
 * Prometheus itself never rate limits.  Its errors are 400 (bad
 * parameters, including more than 11,000 points per series), 422 (the
 * expression cannot be executed) and 503 (timeout or cancellation), each
 * with a JSON body {"status": "error", "errorType", "error"}; the engine
 * records them as error runs with that body, and retries 503 like any
 * 5xx.  A 429 from a proxy or a hosted service is a rate limit for the
 * engine anyway, so no is_rate_limited hook is needed.
 *
 * Series labels ("metric") are never read, since the mapping sums all
 * series of a query per step: the engine leaves them out of the JSON it
 * hands over, which keeps wide queries cheap.
 */

static const char *const prometheus_headers[] = {
	"Accept: application/json",
	NULL
};

static const char *const prometheus_skip_keys[] = {
	"metric",
	NULL
};

static const EmConnector connector_prometheus = {
	.kind = "prometheus",
	.default_base_url = NULL,
	.auth_style = EM_AUTH_HEADER,
	.auth_prefix = "Authorization: Bearer ",
	.basic_user_key = NULL,
	.fixed_headers = prometheus_headers,
	.is_rate_limited = NULL,
	.skip_keys = prometheus_skip_keys,
	.rate_limit_wait_header = NULL,
};

/* the connector table, in the order error hints list the kinds */
static const EmConnector *const connectors[] = {
	&connector_github,
	&connector_gitlab,
	&connector_jenkins,
	&connector_pagerduty,
	&connector_opsgenie,
	&connector_prometheus,
	NULL
};

const EmConnector *
em_find_connector(const char *kind)
{
	for (int i = 0; connectors[i] != NULL; i++)
		if (strcmp(connectors[i]->kind, kind) == 0)
			return connectors[i];
	return NULL;
}

/*
 * engineering._connector_kinds(): the kinds as text[], in table order; the
 * CHECK on sources.kind tests membership with = ANY.
 */
Datum
em_connector_kinds(PG_FUNCTION_ARGS)
{
	Datum		kinds[lengthof(connectors)];
	int			n = 0;

	while (connectors[n] != NULL)
	{
		kinds[n] = CStringGetTextDatum(connectors[n]->kind);
		n++;
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(kinds, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * engineering._connector_kind_list(): the kinds as an English list
 * ("github, gitlab or jenkins"), for the hints that name the valid kinds.
 */
Datum
em_connector_kind_list(PG_FUNCTION_ARGS)
{
	StringInfoData out;

	initStringInfo(&out);
	for (int i = 0; connectors[i] != NULL; i++)
	{
		if (i > 0)
			appendStringInfoString(&out, connectors[i + 1] == NULL ? " or " : ", ");
		appendStringInfoString(&out, connectors[i]->kind);
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/*
 * engineering._connector_default_url(kind): the vendor's public API root,
 * NULL when the kind has none (self-hosted only), and an error when this
 * build has no connector for the kind (a source it could never sync).
 */
Datum
em_connector_default_url(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const EmConnector *c = em_find_connector(kind);

	if (c == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("no connector for kind \"%s\" in this build of engineering_metrics", kind)));
	if (c->default_base_url == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(c->default_base_url));
}
