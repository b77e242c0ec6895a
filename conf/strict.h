/* The checks of a config's JSON text that json-c does not make. */
#ifndef CLUSTERD_CONF_STRICT_H
#define CLUSTERD_CONF_STRICT_H

#include <stddef.h>

/*
 * text, which json-c has parsed: 0, or -1 with why saying where (key path,
 * line and column) it has a trailing comma, a duplicate key or a \u0000.
 */
int json_strict_check(const char *text, size_t len, char *why, size_t whylen);

#endif
