/* readmongo's filter, sort and projection checks (Extended JSON, no JavaScript operators). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/readmongo/readmongo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[640], *text = malloc(size + 1);
	bson_t *doc;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';           /* a query parameter, decoded: a C string */
	if ((doc = rm_query_object("filter", text, why, sizeof(why))) != NULL)
		bson_destroy(doc);
	else if (why[0] == '\0')
		abort();             /* a refusal always says why */
	free(text);
	return 0;
}
