/* The percent decoder and the query-string parser, on arbitrary input. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[512];

	if (size > 0)
		(void)http_unescape((const char *)data + 1, size - 1, out,
		    (size_t)data[0] % sizeof(out) + 1, data[0] & 1);
	return 0;
}
