/* The config parser (json-c, then the strict checks and every key), on arbitrary text. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include "conf/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct config *cfg = config_parse("fuzz.conf", (const char *)data, size, NULL, err,
	    sizeof(err));

	config_free(cfg);
	return 0;
}
