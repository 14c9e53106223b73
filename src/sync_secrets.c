/*-------------------------------------------------------------------------
 *
 * sync_secrets.c
 *		Where tokens come from, and how messages are kept free of them.
 *
 * A token may be stored in engineering.source_secrets (readable only by
 * the extension's owner), or read at request time from a file or an
 * environment variable of the server so that it never passes through SQL
 * text (config token_file / token_env).  Tokens are wiped from memory
 * after use, and every message the engine stores or logs is redacted.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"

#include "http_headers.h"
#include "sync_secrets.h"

#define EM_MAX_TOKEN_LEN	8192
#define EM_MAX_ERROR_LEN	1000
/* shortest piece of a token at the end of a message that is masked */
#define EM_MIN_TOKEN_PIECE	3

/*
 * redact_marker
 *
 * Blanks what follows an authentication keyword ("Bearer x", "token=x",
 * "GenieKey x", "PRIVATE-TOKEN: x", "Basic x"), whatever the token: a
 * vendor may echo request headers in an error body.
 */
static void
redact_marker(StringInfo s, const char *marker)
{
	size_t		mlen = strlen(marker);

	for (size_t i = 0; i + mlen <= (size_t) s->len; i++)
	{
		size_t		j;

		if (!emh_contains_ci(s->data + i, mlen, marker))
			continue;
		j = i + mlen;
		while (j < (size_t) s->len && s->data[j] == ' ')
			j++;
		while (j < (size_t) s->len && s->data[j] != ' ' && s->data[j] != '"' &&
			   s->data[j] != '\'' && s->data[j] != ',' && s->data[j] != '\n' &&
			   s->data[j] != '}' && s->data[j] != ';' && s->data[j] != '&')
			s->data[j++] = '*';
		i = j;
	}
}

/*
 * em_redact
 *
 * Every message stored in sync_runs or sources.last_error, or logged, goes
 * through here: the source's token is masked wherever it appears (a piece
 * of it where the message was cut), whatever follows an authentication
 * keyword is masked too, control characters become blanks and the length
 * is bounded.
 */
char *
em_redact(const char *msg, const char *token)
{
	static const char *const markers[] = {
		"bearer ", "token=", "token:", "geniekey ", "basic ", "api_key=", "apikey=", NULL
	};
	StringInfoData s;

	initStringInfo(&s);
	appendBinaryStringInfo(&s, msg, Min(strlen(msg), EM_MAX_ERROR_LEN));
	if (token != NULL && strlen(token) >= 4)
	{
		char	   *hit;
		size_t		tlen = strlen(token);

		while ((hit = strstr(s.data, token)) != NULL)
			memset(hit, '*', tlen);

		/*
		 * Messages are cut to a length (a body excerpt, EM_MAX_ERROR_LEN),
		 * and a cut can fall inside the token: whatever piece of it ends
		 * the message is masked too.
		 */
		for (size_t k = Min(tlen - 1, (size_t) s.len); k >= EM_MIN_TOKEN_PIECE; k--)
		{
			if (memcmp(s.data + s.len - k, token, k) == 0)
			{
				memset(s.data + s.len - k, '*', k);
				break;
			}
		}
	}
	for (int m = 0; markers[m] != NULL; m++)
		redact_marker(&s, markers[m]);
	for (int i = 0; i < s.len; i++)
		if ((unsigned char) s.data[i] < 0x20 || (unsigned char) s.data[i] == 0x7f)
			s.data[i] = ' ';
	return s.data;
}

/*
 * load_token
 *
 * A token comes from engineering.source_secrets, or from a file or an
 * environment variable of the server (config token_file / token_env) so
 * that it never has to pass through SQL.  It ends up in a header line, so
 * control characters (header injection) are refused.  Returns an error
 * message, or NULL.
 */
const char *
em_load_token(const char *stored, const char *file, const char *env, char **out)
{
	char		buf[EM_MAX_TOKEN_LEN + 1];
	size_t		len = 0;
	char	   *start;
	char	   *end;

	*out = NULL;
	if (stored != NULL)
	{
		len = strlen(stored);
		if (len > EM_MAX_TOKEN_LEN)
			return "the stored token is too long";
		memcpy(buf, stored, len);
	}
	else if (file != NULL)
	{
		int			fd = open(file, O_RDONLY | PG_BINARY, 0);
		ssize_t		n;

		if (fd < 0)
			return psprintf("could not open token_file \"%s\": %m", file);
		n = read(fd, buf, sizeof(buf));
		close(fd);
		if (n < 0)
			return psprintf("could not read token_file \"%s\": %m", file);
		if (n > EM_MAX_TOKEN_LEN)
			return psprintf("token_file \"%s\" is larger than %d bytes", file, EM_MAX_TOKEN_LEN);
		len = (size_t) n;
	}
	else if (env != NULL)
	{
		const char *v = getenv(env);

		if (v == NULL)
			return psprintf("environment variable \"%s\" (token_env) is not set in the server", env);
		len = strlen(v);
		if (len > EM_MAX_TOKEN_LEN)
			return psprintf("environment variable \"%s\" is too long for a token", env);
		memcpy(buf, v, len);
	}
	else
		return NULL;

	buf[len] = '\0';
	start = buf;
	end = buf + len;
	while (start < end && (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n'))
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	for (char *c = start; c < end; c++)
		if ((unsigned char) *c < 0x20 || *c == 0x7f)
		{
			explicit_bzero(buf, sizeof(buf));
			return "the token contains control characters";
		}
	if (start == end)
	{
		explicit_bzero(buf, sizeof(buf));
		return "the token is empty";
	}
	*out = pstrdup(start);
	explicit_bzero(buf, sizeof(buf));
	return NULL;
}

void
em_wipe(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
}

/*
 * em_hide_statement
 *
 * SQL: engineering._hide_statement(what text).  Replaces the calling
 * statement's text in pg_stat_activity (and in the postmaster's report of a
 * crashed backend) by a note naming the function: a call of add_source or
 * set_source_token carries a token in its text, which would otherwise stay
 * visible there while the session is idle, whether the call succeeded or
 * failed.  The server log is kept clean by the functions' own
 * log_min_error_statement setting.
 */
PG_FUNCTION_INFO_V1(em_hide_statement);

Datum
em_hide_statement(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(0));

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("-- engineering.%s(...): statement text hidden, it carries a token",
									what));
	PG_RETURN_VOID();
}
