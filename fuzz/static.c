/*
 * The static service's parsers, on arbitrary input: request paths
 * (static_path()), Range headers, entity-tag lists, HTTP dates, and the
 * mime.types lookup. The first byte picks one and its small parameters.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http.h"
#include "svc/mime.h"
#include "svc/static.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mime_table *mime;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	mime = mime_load(MIME_DEFAULT_PATH, err, sizeof(err));     /* NULL without media-types */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[600], *s;
	off_t from = -1, len = -1;
	time_t t;
	int slash;

	if (size == 0)
		return 0;
	/* the rest, NUL-terminated: headers and paths reach the services that way */
	if ((s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 5) {
	case 0:
		if (static_path(s, out, (size_t)data[0] % sizeof(out) + 1, &slash) == 0 &&
		    (strstr(out, "..") == out || strstr(out, "/.") != NULL || out[0] == '.' ||
			strchr(out, '\\') != NULL || strstr(out, "//") != NULL || out[0] == '/'))
			abort();         /* a path that could leave the root got through */
		break;
	case 1:
		if (static_range(s, (off_t)(data[0] >> 3) * 1000, &from, &len) == RANGE_OK &&
		    (from < 0 || len <= 0 || from + len > (off_t)(data[0] >> 3) * 1000))
			abort();         /* a range outside the file */
		break;
	case 2:
		(void)static_etag_match(s, "\"6b10cf26-1000\"", data[0] & 8);
		break;
	case 3:
		if (http_date_parse(s, &t) == 0) {
			http_date(t, out, sizeof(out));
			time_t back;
			if (http_date_parse(out, &back) != 0 || back != t)
				abort();     /* what it formats, it reads back */
		}
		break;
	case 4:
		(void)mime_lookup(mime, s);
		break;
	}
	free(s);
	return 0;
}
