/*-------------------------------------------------------------------------
 *
 * json_parse.h
 *		Response bodies to jsonb, without the fields a connector never
 *		reads (json_parse.c).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_JSON_PARSE_H
#define EM_JSON_PARSE_H

/*
 * Body text (NUL-terminated, writable, database encoding) to jsonb; skip is
 * a NULL-terminated list of field names left out at any depth, or NULL.
 */
extern Datum em_json_to_jsonb(char *text, int len, const char *const *skip);

#endif							/* EM_JSON_PARSE_H */
