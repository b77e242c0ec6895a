/* The IPC codec: decode arbitrary bytes; what decodes must encode and decode the same. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg m, again;
	char err[256], buf[IPC_MAX_MSG + 1];
	int n;

	if (ipc_decode((const char *)data, size, &m, err, sizeof(err)) == -1)
		return 0;
	if ((n = ipc_encode(&m, buf, sizeof(buf))) < 0 ||
	    ipc_decode(buf, (size_t)n, &again, err, sizeof(err)) == -1 ||
	    memcmp(&m, &again, sizeof(m)) != 0)
		abort();
	return 0;
}
