/*
 * Media types by file name extension, read from a mime.types file
 * (Debian's /etc/mime.types, of the media-types package): lines of a type
 * and its extensions, "#" comments. Read once, when a config is loaded, into
 * a sorted table; a lookup is a binary search and allocates nothing.
 */
#ifndef CLUSTERD_MIME_H
#define CLUSTERD_MIME_H

#include <stddef.h>

#define MIME_DEFAULT_PATH "/etc/mime.types"
#define MIME_UNKNOWN "application/octet-stream"

struct mime_table;

/*
 * Reads path. Extensions are matched in any case; one listed twice keeps
 * its first type. The types returned are Content-Type values: those of
 * text (text/..., application/javascript, application/json) say
 * "; charset=utf-8", as Express does. A line whose first word is not a
 * type/subtype of printable characters is skipped. NULL, with errno's
 * message in err, if the file cannot be read.
 */
struct mime_table *mime_load(const char *path, char *err, size_t errlen);
/* The type of a file name by its extension (after its last dot), or NULL. */
const char *mime_lookup(const struct mime_table *t, const char *name);
/* The number of extensions known. */
size_t mime_count(const struct mime_table *t);
void mime_free(struct mime_table *t);

#endif
