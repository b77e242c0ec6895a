/*
 * JSON string escaping, the one escaper of the project: the HTTP layer's
 * error bodies, readmongo's stream trailers and the JSON access log use it.
 */
#ifndef CLUSTERD_JSON_H
#define CLUSTERD_JSON_H

#include <stddef.h>

struct evbuffer;

/*
 * Writes s as the inside of a JSON string literal (no quotes) into out,
 * which always ends NUL-terminated; an escape that does not fit is left out
 * whole. Returns the length written.
 */
size_t json_escape(char *out, size_t outlen, const char *s);
/* Appends s to buf as a JSON string literal, quotes included. */
void json_quote(struct evbuffer *buf, const char *s);

#endif
