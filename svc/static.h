/*
 * The static service's pure parts, apart for the unit tests
 * (t/unit_static.c): the mapping of a request path to a file under the
 * root, the opening of that file beneath the root, and the reading of the
 * Range and entity-tag headers.
 */
#ifndef CLUSTERD_STATIC_H
#define CLUSTERD_STATIC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * The path of the file, relative to the root, that subpath (as sent, "" or
 * "/...") names: each segment percent-decoded, empty segments dropped,
 * joined with "/". -1 if a segment is malformed, starts with "." (".",
 * "..", a dotfile) or decodes to something holding "/", "\" or NUL, or if
 * out is too small. *slash: subpath ends with "/" (a directory is asked for).
 */
int static_path(const char *subpath, char *out, size_t outlen, int *slash);

/*
 * Opens rel (from static_path(), "" for the root itself) beneath the
 * directory rootfd: with openat2() and RESOLVE_BENEATH, which follows a
 * symbolic link only while it stays beneath rootfd, or, with walk, one
 * component at a time with O_NOFOLLOW, which follows none. A file beneath
 * rootfd by no path that stays there fails with EXDEV or ELOOP.
 */
int static_open(int rootfd, const char *rel, int flags, int walk);

/* The outcome of a Range header for a file of size bytes. */
enum static_range { RANGE_IGNORE, RANGE_OK, RANGE_UNSATISFIABLE };

/*
 * One range, "bytes=a-b", "bytes=a-" or "bytes=-n": RANGE_OK with its
 * first byte and length; RANGE_UNSATISFIABLE if it starts past the end (or
 * asks for a suffix of 0 bytes, or the file is empty); RANGE_IGNORE for
 * anything else, malformed or several ranges, which the whole file answers
 * (RFC 9110 lets a server ignore Range).
 */
enum static_range static_range(const char *value, off_t size, off_t *from, off_t *len);

/*
 * Whether the list of entity tags of an If-None-Match (weak: W/"x" matches
 * "x") or If-Match (strong: a weak tag matches nothing) holds etag, or is
 * "*".
 */
int static_etag_match(const char *list, const char *etag, int weak);

#endif
