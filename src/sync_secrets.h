/*-------------------------------------------------------------------------
 *
 * sync_secrets.h
 *		Tokens: where they are read from, and how they are kept out of
 *		messages and memory (sync_secrets.c).
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef EM_SYNC_SECRETS_H
#define EM_SYNC_SECRETS_H

/*
 * The token of a source: the stored one, else the file, else the
 * environment variable.  Returns NULL and sets *out (NULL: anonymous), or
 * an error message free of the token.
 */
extern const char *em_load_token(const char *stored, const char *file,
								 const char *env, char **out);
/* msg with the token, and whatever follows an authentication keyword, masked */
extern char *em_redact(const char *msg, const char *token);
/* overwrite a string before its memory is given back */
extern void em_wipe(char *s);

#endif							/* EM_SYNC_SECRETS_H */
