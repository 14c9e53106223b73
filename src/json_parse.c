/*-------------------------------------------------------------------------
 *
 * json_parse.c
 *		Response bodies to jsonb, leaving out the bulky sub-objects a
 *		connector never reads.
 *
 * A page of 100 GitHub workflow runs is about 700 kB, most of it two copies
 * of the repository object per run.  Building all of that into jsonb, then
 * copying it through the connector's SQL, took most of a sync's time.  This
 * parser runs PostgreSQL's JSON lexer over the whole body (so the body is
 * validated exactly as jsonb_in would) but only builds the parts the
 * connector needs: the value of any object field whose name is in the
 * connector's skip list is parsed and discarded.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "json_parse.h"

/* PostgreSQL 16 made the semantic actions return an error code */
#if PG_VERSION_NUM >= 160000
#define SEM_RETURN_TYPE JsonParseErrorType
#define SEM_RETURN return JSON_SUCCESS
#else
#define SEM_RETURN_TYPE void
#define SEM_RETURN return
#endif

typedef struct SkipState
{
	JsonbParseState *parse;
	JsonbValue *result;
	const char *const *skip;	/* NULL-terminated field names */
	int			depth;			/* containers open */
	int			skip_at;		/* depth of the field being skipped, or -1 */
} SkipState;

static bool
skipped_name(const SkipState *s, const char *fname)
{
	if (s->skip == NULL)
		return false;
	for (const char *const *k = s->skip; *k != NULL; k++)
		if (strcmp(*k, fname) == 0)
			return true;
	return false;
}

/* where a value goes: an element of the open array, or the open field's value */
static JsonbIteratorToken
value_token(const SkipState *s)
{
	return s->parse->contVal.type == jbvArray ? WJB_ELEM : WJB_VALUE;
}

static SEM_RETURN_TYPE
skip_object_start(void *state)
{
	SkipState  *s = (SkipState *) state;

	s->depth++;
	if (s->skip_at < 0)
		s->result = pushJsonbValue(&s->parse, WJB_BEGIN_OBJECT, NULL);
	SEM_RETURN;
}

static SEM_RETURN_TYPE
skip_object_end(void *state)
{
	SkipState  *s = (SkipState *) state;

	s->depth--;
	if (s->skip_at < 0)
		s->result = pushJsonbValue(&s->parse, WJB_END_OBJECT, NULL);
	SEM_RETURN;
}

static SEM_RETURN_TYPE
skip_array_start(void *state)
{
	SkipState  *s = (SkipState *) state;

	s->depth++;
	if (s->skip_at < 0)
		s->result = pushJsonbValue(&s->parse, WJB_BEGIN_ARRAY, NULL);
	SEM_RETURN;
}

static SEM_RETURN_TYPE
skip_array_end(void *state)
{
	SkipState  *s = (SkipState *) state;

	s->depth--;
	if (s->skip_at < 0)
		s->result = pushJsonbValue(&s->parse, WJB_END_ARRAY, NULL);
	SEM_RETURN;
}

/*
 * skip_field_start
 *
 * A field of an open object: either its key is pushed, or (name in the
 * skip list) everything up to the matching field end is ignored.
 */
static SEM_RETURN_TYPE
skip_field_start(void *state, char *fname, bool isnull pg_attribute_unused())
{
	SkipState  *s = (SkipState *) state;
	JsonbValue	key;

	if (s->skip_at >= 0)
		SEM_RETURN;
	if (skipped_name(s, fname))
	{
		s->skip_at = s->depth;
		SEM_RETURN;
	}
	key.type = jbvString;
	key.val.string.len = strlen(fname);
	key.val.string.val = fname;
	if (key.val.string.len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string")));
	s->result = pushJsonbValue(&s->parse, WJB_KEY, &key);
	SEM_RETURN;
}

static SEM_RETURN_TYPE
skip_field_end(void *state, char *fname pg_attribute_unused(), bool isnull pg_attribute_unused())
{
	SkipState  *s = (SkipState *) state;

	if (s->skip_at == s->depth)
		s->skip_at = -1;
	SEM_RETURN;
}

static SEM_RETURN_TYPE
skip_scalar(void *state, char *token, JsonTokenType tokentype)
{
	SkipState  *s = (SkipState *) state;
	JsonbValue	v;

	if (s->skip_at >= 0)
		SEM_RETURN;
	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.len = strlen(token);
			v.val.string.val = token;
			if (v.val.string.len > JENTRY_OFFLENMASK)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("string too long to represent as jsonb string")));
			break;
		case JSON_TOKEN_NUMBER:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (tokentype == JSON_TOKEN_TRUE);
			break;
		default:
			v.type = jbvNull;
			break;
	}

	if (s->parse == NULL)
	{
		/* a bare scalar is stored as a one-element "raw scalar" array */
		JsonbValue	array;

		array.type = jbvArray;
		array.val.array.rawScalar = true;
		array.val.array.nElems = 1;
		pushJsonbValue(&s->parse, WJB_BEGIN_ARRAY, &array);
		pushJsonbValue(&s->parse, WJB_ELEM, &v);
		s->result = pushJsonbValue(&s->parse, WJB_END_ARRAY, NULL);
	}
	else
		s->result = pushJsonbValue(&s->parse, value_token(s), &v);
	SEM_RETURN;
}

/*
 * replace_nul_escapes
 *
 * jsonb refuses the escape \u0000 (text cannot hold U+0000), so one such
 * character in a commit message or an incident title would fail its page
 * on every retry.  It becomes \uFFFD, the replacement character, in place
 * (the same six bytes).  A backslash outside a string is a syntax error
 * anyway, so pairs are skipped without tracking strings: "\\u0000" is an
 * escaped backslash followed by plain text and stays as it is.
 */
static void
replace_nul_escapes(char *text, int len)
{
	for (int i = 0; i + 1 < len; i++)
	{
		if (text[i] != '\\')
			continue;
		if (text[i + 1] == 'u' && i + 5 < len &&
			text[i + 2] == '0' && text[i + 3] == '0' &&
			text[i + 4] == '0' && text[i + 5] == '0')
			memcpy(text + i + 2, "FFFD", 4);
		i++;
	}
}

/*
 * em_json_to_jsonb
 *
 * text must be NUL-terminated, writable (\u0000 escapes are replaced in
 * place) and in the database encoding.  Raises
 * ERRCODE_INVALID_TEXT_REPRESENTATION for anything that is not JSON, with
 * the lexer's own detail, like jsonb_in.
 */
Datum
em_json_to_jsonb(char *text, int len, const char *const *skip)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	SkipState	s;
	JsonParseErrorType rc;

	replace_nul_escapes(text, len);
	memset(&s, 0, sizeof(s));
	s.skip = skip;
	s.skip_at = -1;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &s;
	sem.object_start = skip_object_start;
	sem.object_end = skip_object_end;
	sem.array_start = skip_array_start;
	sem.array_end = skip_array_end;
	sem.object_field_start = skip_field_start;
	sem.object_field_end = skip_field_end;
	sem.scalar = skip_scalar;

#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, text, len, GetDatabaseEncoding(), true);
#else
	lex = makeJsonLexContextCstringLen(text, len, GetDatabaseEncoding(), true);
#endif
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type json"),
				 errdetail("%s", json_errdetail(rc, lex))));
	if (s.result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type json"),
				 errdetail("The input string ended unexpectedly.")));
	return JsonbPGetDatum(JsonbValueToJsonb(s.result));
}
