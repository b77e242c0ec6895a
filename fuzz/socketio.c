/*
 * socketio's decoders on arbitrary input: the first byte picks one.
 *   0: a Socket.IO packet (the text after Engine.IO's "4") and its JSON payload
 *   1: a broadcast as the bus between workers carries it
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/socketio/socketio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
packet(const char *s, size_t n)
{
	struct sio_packet p;
	const char *err;
	json_object *o;

	if (sio_packet_parse(s, n, &p, &err) == -1)
		return;
	/* what it points at is inside the input (but the default namespace) */
	if (((p.nsp < s || p.nsp + p.nsplen > s + n) && strcmp(p.nsp, "/") != 0) ||
	    (p.data != NULL &&
	    (p.data < s || p.data + p.datalen > s + n)) || p.nattach > SIO_MAX_ATTACH)
		abort();
	if ((o = sio_packet_payload(&p, &err)) != NULL)
		json_object_put(o);
}

static void
bus(const unsigned char *s, size_t n)
{
	struct sio_bus_msg m;
	size_t sum = 0;

	if (sio_bus_decode(s, n, &m) == -1)
		return;
	/* every string ends in the message, every length adds up */
	sum += strlen(m.b.nsp);
	for (size_t i = 0; i < m.b.nrooms; i++)
		sum += strlen(m.b.rooms[i]);
	for (size_t i = 0; i < m.b.nexcept; i++)
		sum += strlen(m.b.except[i]);
	for (size_t i = 0; i < m.b.natt; i++)
		sum += m.b.att[i].len;
	if (sum + m.b.datalen > n)
		abort();
	sio_bus_msg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		bus(data + 1, size - 1);
	else
		packet((const char *)data + 1, size - 1);
	return 0;
}
