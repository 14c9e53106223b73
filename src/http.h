/*-------------------------------------------------------------------------
 *
 * http.h
 *		libcurl transport of the sync engine: one GET with the engine's
 *		safety rules (protocols, TLS, timeouts, size cap, interrupts,
 *		same-origin redirects only).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_HTTP_H
#define EM_HTTP_H

#include "lib/stringinfo.h"

/* how a request ended, before looking at the HTTP status */
typedef enum EmHttpOutcome
{
	EM_HTTP_OK,					/* a response was received (any status) */
	EM_HTTP_TIMEOUT,			/* connect or total timeout */
	EM_HTTP_TOO_LARGE,			/* body exceeded max_response_size */
	EM_HTTP_BAD_REDIRECT,		/* redirect elsewhere, or too many */
	EM_HTTP_TRANSPORT			/* refused, DNS, TLS, truncated transfer, ... */
} EmHttpOutcome;

typedef struct EmHttpHeader
{
	char	   *name;			/* lower-cased */
	char	   *value;			/* trimmed; repeated headers joined by ", " */
} EmHttpHeader;

typedef struct EmHttpRequest
{
	const char *url;			/* absolute http(s) URL, no credentials */
	const char *const *headers; /* "Name: value" lines, NULL-terminated; may hold a token */
	const char *basic_user;		/* HTTP Basic user, or NULL */
	const char *basic_password; /* HTTP Basic password, or NULL */
	long		timeout_ms;
	long		connect_timeout_ms;
	size_t		max_size;		/* largest body accepted */
	const char *ca_file;		/* CA bundle for TLS verification, or NULL/"" */
} EmHttpRequest;

typedef struct EmHttpResponse
{
	EmHttpOutcome outcome;
	long		status;			/* HTTP status of the final response, 0 if none */
	char		error[256];		/* transport error, free of credentials */
	char	   *body;			/* NUL-terminated (palloc'd), may contain NULs */
	size_t		body_len;
	EmHttpHeader *headers;		/* palloc'd array */
	int			nheaders;
	int			requests;		/* HTTP requests made, redirects included */
	double		seconds;		/* wall time spent in transfers */
} EmHttpResponse;

/*
 * Perform a GET.  Remote failures are reported in resp->outcome/error, not
 * raised; an interrupt (cancel, terminate) aborts the transfer and is then
 * processed with CHECK_FOR_INTERRUPTS.  Results are allocated in the
 * current memory context.
 */
extern void em_http_get(const EmHttpRequest *req, EmHttpResponse *resp);

/* printable one-line excerpt of the body, for error messages */
extern char *em_http_body_excerpt(const EmHttpResponse *resp);

/* the headers as a JSON object text: {"lower-case name": "value", ...} */
extern char *em_http_headers_json(const EmHttpResponse *resp);

/* a header of the response by lower-case name, or NULL */
extern const char *em_http_header(const EmHttpResponse *resp, const char *name);

#endif							/* EM_HTTP_H */
