/*
 * The Redis adapter's decoder on arbitrary input; whatever it decodes, it
 * encodes again, and that decodes to the same broadcast.
 */
#include "config.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "svc/socketio/redis.h"

struct copy { char *data; size_t datalen, natt; size_t attsum; char uid[64]; int calls; };

static void
second(void *arg, const char *uid, const struct sio_bcast *b)
{
	struct copy *c = arg;
	size_t sum = 0;

	(void)uid;
	for (size_t i = 0; i < b->natt; i++)
		sum += b->att[i].len;
	if (b->datalen != c->datalen || memcmp(b->data, c->data, b->datalen) != 0 ||
	    b->natt != c->natt || sum != c->attsum)
		abort();
	c->calls++;
}

static void
first(void *arg, const char *uid, const struct sio_bcast *b)
{
	struct copy *c = arg;
	msgpack_sbuffer sb;
	char err[256];

	if ((c->data = malloc(b->datalen + 1)) == NULL)
		abort();
	memcpy(c->data, b->data, b->datalen);
	c->datalen = b->datalen;
	c->natt = b->natt;
	for (size_t i = 0; i < b->natt; i++)
		c->attsum += b->att[i].len;
	msgpack_sbuffer_init(&sb);
	if (sio_redis_encode(b, uid, &sb) != 0)
		abort();        /* what we decoded, we can encode */
	if (sio_redis_decode(sb.data, sb.size, second, c, err, sizeof(err)) != 0 || c->calls != 1)
		abort();
	msgpack_sbuffer_destroy(&sb);
	free(c->data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct copy c = { 0 };
	char err[256];

	sio_redis_decode((const char *)data, size, first, &c, err, sizeof(err));
	return 0;
}
