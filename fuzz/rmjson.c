/*
 * readmongo's JSON writer (svc/readmongo/json.c) against libbson's
 * bson_as_relaxed_extended_json(), on any bytes taken as a BSON document:
 * the same text, or both refuse it. A difference aborts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "svc/readmongo/readmongo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rm_json_buf buf;   /* kept from one input to the next, as a pool thread keeps it */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *out;
	uint8_t *copy;
	char *ref;
	size_t len;
	bson_t doc;
	int rc;

	if (size < 5 || size > 64 * 1024 || (copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	/* a document's own length and its last byte, so that most inputs get read */
	copy[0] = (uint8_t)size;
	copy[1] = (uint8_t)(size >> 8);
	copy[2] = copy[3] = 0;
	copy[size - 1] = 0;
	if (!bson_init_static(&doc, copy, size) || (out = evbuffer_new()) == NULL) {
		free(copy);
		return 0;
	}
	ref = bson_as_relaxed_extended_json(&doc, &len);
	rc = rm_json_doc(out, &doc, &buf);
	if (ref == NULL ? rc != -1 || evbuffer_get_length(out) != 0 :
	    rc != 0 || evbuffer_get_length(out) != len ||
	    memcmp(evbuffer_pullup(out, -1), ref, len) != 0)
		abort();
	bson_free(ref);
	evbuffer_free(out);
	free(copy);
	return 0;
}
