/*-------------------------------------------------------------------------
 *
 * connector_prometheus.c
 *		Transport glue of the Prometheus connector (HTTP API v1,
 *		/api/v1/query_range).
 *
 * What is fetched and how it maps to SLO measurements lives in SQL
 * (sql/engineering_metrics/45_prometheus.sql); this file only says how to
 * talk to a Prometheus-compatible server: there is no public default
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
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "sync.h"

static const char *const prometheus_headers[] = {
	"Accept: application/json",
	NULL
};

static const char *const prometheus_skip_keys[] = {
	"metric",
	NULL
};

const EmConnector em_connector_prometheus = {
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
