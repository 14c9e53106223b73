/*-------------------------------------------------------------------------
 *
 * http.c
 *		libcurl transport of the sync engine.
 *
 * Rules this file enforces (README, Development, house rules 5 and 6):
 *	- curl is initialised lazily in the process that first needs it, never
 *	  in _PG_init or the postmaster (libcurl is not fork-safe);
 *	- only http and https, TLS verification on, connect and total timeouts;
 *	- the body is capped while it arrives (the transfer is aborted);
 *	- a cancel or terminate request aborts the transfer from the progress
 *	  callback and is processed right after curl returns, so that no
 *	  ereport ever runs inside a curl callback;
 *	- redirects are followed here, only to the same scheme, host and port,
 *	  so that a token is never sent to another host;
 *	- never CURLOPT_VERBOSE, and no error message carries a credential.
 *
 * Callbacks use malloc rather than palloc: palloc reports out-of-memory by
 * ereport, which must not unwind through libcurl.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "utils/json.h"
#include "portability/instr_time.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"

#include "http.h"
#include "http_headers.h"

#define EM_MAX_REDIRECTS	3
#define EM_MAX_HEADERS		200
#define EM_USER_AGENT		"engineering_metrics/" EM_VERSION

/*
 * Headers are kept in memory and handed to SQL as JSON: a server sending a
 * megabyte of them (one huge line, or a header repeated) is refused like
 * an oversized body.  Real APIs send a few kB.
 */
#define EM_MAX_HEADER_KB	256
#define EM_MAX_HEADER_BYTES ((size_t) EM_MAX_HEADER_KB * 1024)

/* per-process libcurl state; the easy handle keeps connections alive */
static bool curl_initialised = false;
static CURL *curl_handle = NULL;

typedef struct Transfer
{
	char	   *buf;
	size_t		len;
	size_t		cap;
	size_t		max;
	bool		too_large;
	bool		headers_too_large;
	size_t		header_bytes;	/* of every response of the transfer */
	bool		out_of_memory;
	bool		interrupted;
	bool		postmaster_died;
	char	   *hname[EM_MAX_HEADERS];
	char	   *hvalue[EM_MAX_HEADERS];
	int			nh;
} Transfer;

static void
transfer_clear_headers(Transfer *t)
{
	for (int i = 0; i < t->nh; i++)
	{
		free(t->hname[i]);
		free(t->hvalue[i]);
	}
	t->nh = 0;
}

static void
transfer_free(Transfer *t)
{
	transfer_clear_headers(t);
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

/*
 * write_cb
 *
 * Appends body bytes, refusing to grow past the cap: returning a short
 * count makes curl abort with CURLE_WRITE_ERROR.
 */
static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nmemb;

	if (n > t->max || t->len > t->max - n)
	{
		t->too_large = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap)
	{
		size_t		newcap = t->cap ? t->cap : 16384;
		char	   *nb;

		while (newcap < t->len + n + 1)
			newcap *= 2;
		if (newcap > t->max + 1)
			newcap = t->max + 1;
		nb = realloc(t->buf, newcap);
		if (nb == NULL)
		{
			t->out_of_memory = true;
			return 0;
		}
		t->buf = nb;
		t->cap = newcap;
	}
	memcpy(t->buf + t->len, ptr, n);
	t->len += n;
	return n;
}

static char *
dup_span(const char *s, size_t len)
{
	char	   *d = malloc(len + 1);

	if (d != NULL)
	{
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

/*
 * header_cb
 *
 * Called once per header line, for every response of the transfer
 * (interim 1xx responses included), so a status line starts the list
 * afresh.  Names are lower-cased and repeated headers joined with ", ",
 * which is what SQL receives.  Bytes outside printable ASCII are replaced:
 * header values end up in JSON and in error messages.
 */
static size_t
header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nitems;
	size_t		len = n;
	size_t		colon;
	char	   *name;
	char	   *value;
	size_t		vstart;

	if (n > EM_MAX_HEADER_BYTES || t->header_bytes > EM_MAX_HEADER_BYTES - n)
	{
		t->headers_too_large = true;
		return 0;
	}
	t->header_bytes += n;

	while (len > 0 && (ptr[len - 1] == '\r' || ptr[len - 1] == '\n'))
		len--;
	if (len >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
	{
		transfer_clear_headers(t);
		return n;
	}
	for (colon = 0; colon < len && ptr[colon] != ':'; colon++)
		;
	if (colon == 0 || colon >= len)
		return n;				/* blank line, folding or garbage: skip */

	vstart = colon + 1;
	while (vstart < len && (ptr[vstart] == ' ' || ptr[vstart] == '\t'))
		vstart++;
	while (len > vstart && (ptr[len - 1] == ' ' || ptr[len - 1] == '\t'))
		len--;

	name = dup_span(ptr, colon);
	value = dup_span(ptr + vstart, len - vstart);
	if (name == NULL || value == NULL)
	{
		free(name);
		free(value);
		t->out_of_memory = true;
		return 0;
	}
	for (char *c = name; *c; c++)
	{
		if (*c >= 'A' && *c <= 'Z')
			*c += 'a' - 'A';
		else if ((unsigned char) *c < 0x21 || (unsigned char) *c > 0x7e)
			*c = '_';
	}
	for (char *c = value; *c; c++)
		if ((unsigned char) *c < 0x20 || (unsigned char) *c > 0x7e)
			*c = '?';

	for (int i = 0; i < t->nh; i++)
	{
		if (strcmp(t->hname[i], name) == 0)
		{
			size_t		l1 = strlen(t->hvalue[i]);
			size_t		l2 = strlen(value);
			char	   *joined = malloc(l1 + 2 + l2 + 1);

			if (joined == NULL)
			{
				free(name);
				free(value);
				t->out_of_memory = true;
				return 0;
			}
			memcpy(joined, t->hvalue[i], l1);
			memcpy(joined + l1, ", ", 2);
			memcpy(joined + l1 + 2, value, l2 + 1);
			free(t->hvalue[i]);
			t->hvalue[i] = joined;
			free(name);
			free(value);
			return n;
		}
	}
	if (t->nh >= EM_MAX_HEADERS)
	{
		free(name);
		free(value);
		return n;
	}
	t->hname[t->nh] = name;
	t->hvalue[t->nh] = value;
	t->nh++;
	return n;
}

/*
 * progress_cb
 *
 * The only way to stop a blocking transfer early: curl calls this about
 * once a second even when no data flows.  It only looks at flags; the
 * interrupt itself is processed after curl returns.
 */
static int
progress_cb(void *userdata,
			curl_off_t dltotal pg_attribute_unused(),
			curl_off_t dlnow pg_attribute_unused(),
			curl_off_t ultotal pg_attribute_unused(),
			curl_off_t ulnow pg_attribute_unused())
{
	Transfer   *t = (Transfer *) userdata;

	if (InterruptPending && (QueryCancelPending || ProcDiePending))
	{
		t->interrupted = true;
		return 1;
	}
	if (!PostmasterIsAlive())
	{
		t->postmaster_died = true;
		return 1;
	}
	return 0;
}

static void
ensure_curl(void)
{
	if (!curl_initialised)
	{
		CURLcode	rc = curl_global_init(CURL_GLOBAL_DEFAULT);

		if (rc != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_SYSTEM_ERROR),
					 errmsg("could not initialise libcurl: %s", curl_easy_strerror(rc))));
		curl_initialised = true;
	}
	if (curl_handle == NULL)
	{
		curl_handle = curl_easy_init();
		if (curl_handle == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
	}
}

/* printable copy of a curl message into the response's error buffer */
static void
set_error(EmHttpResponse *resp, EmHttpOutcome outcome, const char *msg)
{
	size_t		i;

	resp->outcome = outcome;
	for (i = 0; msg[i] != '\0' && i < sizeof(resp->error) - 1; i++)
	{
		unsigned char c = (unsigned char) msg[i];

		resp->error[i] = (c < 0x20 || c > 0x7e) ? ' ' : (char) c;
	}
	resp->error[i] = '\0';
}

/*
 * configure
 *
 * Options are set afresh for every request (curl_easy_reset keeps live
 * connections, so keep-alive still works across pages).
 */
static struct curl_slist *
configure(CURL *h, const EmHttpRequest *req, const char *url, Transfer *t,
		  char *errbuf)
{
	struct curl_slist *list = NULL;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (req->ca_file != NULL && req->ca_file[0] != '\0')
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) req->max_size);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, EM_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
	if (req->basic_user != NULL)
	{
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, req->basic_user);
		curl_easy_setopt(h, CURLOPT_PASSWORD,
						 req->basic_password ? req->basic_password : "");
	}
	if (req->headers != NULL)
	{
		for (const char *const *hp = req->headers; *hp != NULL; hp++)
		{
			struct curl_slist *next = curl_slist_append(list, *hp);

			if (next == NULL)
			{
				curl_slist_free_all(list);
				return NULL;
			}
			list = next;
		}
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	}
	return list;
}

/* header lists may hold a token: wipe them before giving the memory back */
static void
free_header_list(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l != NULL; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

/* move the transfer's results into palloc'd memory */
static void
take_results(Transfer *t, EmHttpResponse *resp)
{
	resp->body = palloc(t->len + 1);
	if (t->len > 0)
		memcpy(resp->body, t->buf, t->len);
	resp->body[t->len] = '\0';
	resp->body_len = t->len;
	resp->nheaders = t->nh;
	resp->headers = palloc0(sizeof(EmHttpHeader) * Max(t->nh, 1));
	for (int i = 0; i < t->nh; i++)
	{
		resp->headers[i].name = pstrdup(t->hname[i]);
		resp->headers[i].value = pstrdup(t->hvalue[i]);
	}
}

/*
 * em_http_get
 *
 * See http.h.  The redirect loop asks curl where a 3xx points (it resolves
 * relative Locations) and follows it only within the origin of the URL
 * first requested.
 */
void
em_http_get(const EmHttpRequest *req, EmHttpResponse *resp)
{
	char	   *url = pstrdup(req->url);
	char		errbuf[CURL_ERROR_SIZE];
	Transfer	t;
	instr_time	start,
				elapsed;

	memset(resp, 0, sizeof(*resp));
	memset(&t, 0, sizeof(t));
	ensure_curl();
	INSTR_TIME_SET_CURRENT(start);

	for (int hop = 0;; hop++)
	{
		struct curl_slist *list;
		CURLcode	rc;
		long		status = 0;
		char	   *location = NULL;

		transfer_free(&t);
		memset(&t, 0, sizeof(t));
		t.max = req->max_size;
		errbuf[0] = '\0';

		list = configure(curl_handle, req, url, &t, errbuf);
		if (req->headers != NULL && list == NULL)
		{
			set_error(resp, EM_HTTP_TRANSPORT, "out of memory building request headers");
			break;
		}
		rc = curl_easy_perform(curl_handle);
		resp->requests++;
		curl_easy_setopt(curl_handle, CURLOPT_HTTPHEADER, NULL);
		free_header_list(list);

		if (t.interrupted || t.postmaster_died)
		{
			transfer_free(&t);
			if (t.postmaster_died)
				ereport(FATAL,
						(errcode(ERRCODE_ADMIN_SHUTDOWN),
						 errmsg("terminating because the postmaster died")));
			CHECK_FOR_INTERRUPTS();
			set_error(resp, EM_HTTP_TRANSPORT, "transfer interrupted");
			break;
		}
		if (rc != CURLE_OK)
		{
			const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);

			if (t.headers_too_large)
				set_error(resp, EM_HTTP_TOO_LARGE, "response headers exceed " CppAsString2(EM_MAX_HEADER_KB) " kB");
			else if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED)
				set_error(resp, EM_HTTP_TOO_LARGE, "response body exceeds engineering_metrics.max_response_size");
			else if (rc == CURLE_OPERATION_TIMEDOUT)
				set_error(resp, EM_HTTP_TIMEOUT, msg);
			else if (t.out_of_memory)
				set_error(resp, EM_HTTP_TRANSPORT, "out of memory receiving the response");
			else
				set_error(resp, EM_HTTP_TRANSPORT, msg);
			break;
		}

		curl_easy_getinfo(curl_handle, CURLINFO_RESPONSE_CODE, &status);
		resp->status = status;
		if ((status == 301 || status == 302 || status == 303 ||
			 status == 307 || status == 308) &&
			curl_easy_getinfo(curl_handle, CURLINFO_REDIRECT_URL, &location) == CURLE_OK &&
			location != NULL)
		{
			if (!emh_same_origin(location, req->url))
			{
				set_error(resp, EM_HTTP_BAD_REDIRECT,
						  "redirect to a different scheme, host or port refused");
				break;
			}
			if (hop >= EM_MAX_REDIRECTS)
			{
				set_error(resp, EM_HTTP_BAD_REDIRECT, "too many redirects");
				break;
			}
			url = pstrdup(location);
			continue;
		}

		resp->outcome = EM_HTTP_OK;
		take_results(&t, resp);
		break;
	}
	transfer_free(&t);

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	resp->seconds = INSTR_TIME_GET_DOUBLE(elapsed);
	if (resp->body == NULL)
	{
		resp->body = pstrdup("");
		resp->headers = palloc0(sizeof(EmHttpHeader));
	}
}

const char *
em_http_header(const EmHttpResponse *resp, const char *name)
{
	for (int i = 0; i < resp->nheaders; i++)
		if (strcmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

/* printable one-line excerpt of a response body for an error message */
char *
em_http_body_excerpt(const EmHttpResponse *resp)
{
	StringInfoData s;
	bool		space = false;

	initStringInfo(&s);
	for (size_t i = 0; i < resp->body_len && s.len < 200; i++)
	{
		unsigned char c = (unsigned char) resp->body[i];

		if (c <= 0x20 || c >= 0x7f)
		{
			space = true;
			continue;
		}
		if (space && s.len > 0)
			appendStringInfoChar(&s, ' ');
		space = false;
		appendStringInfoChar(&s, (char) c);
	}
	return s.data;
}

/* response headers as a JSON object text (values are printable ASCII) */
char *
em_http_headers_json(const EmHttpResponse *resp)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '{');
	for (int i = 0; i < resp->nheaders; i++)
	{
		if (i > 0)
			appendStringInfoChar(&s, ',');
		escape_json(&s, resp->headers[i].name);
		appendStringInfoChar(&s, ':');
		escape_json(&s, resp->headers[i].value);
	}
	appendStringInfoChar(&s, '}');
	return s.data;
}
