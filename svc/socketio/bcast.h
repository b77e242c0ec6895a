/*
 * One broadcast, as the socketio service's parts hand it to each other:
 * the hub delivers it to its own sockets, the cluster bus carries it to
 * the master's other workers, the Redis adapter to other hosts.
 *
 * Everything is borrowed: a receiver copies what it keeps.
 */
#ifndef CLUSTERD_SIO_BCAST_H
#define CLUSTERD_SIO_BCAST_H

#include <stddef.h>

/* A binary attachment. */
struct sio_att {
	const unsigned char *p;
	size_t len;
};

struct sio_bcast {
	const char *nsp;             /* "/" or "/admin" */
	const char *const *rooms;    /* the union of these rooms; none: every socket of nsp */
	size_t nrooms;
	const char *const *except;   /* minus the sockets in any of these (a socket id is a room) */
	size_t nexcept;
	/*
	 * The event and its arguments: the text of a JSON array whose first
	 * element is the event name, ["news",{"a":1}], in which binary
	 * attachment i stands as {"_placeholder":true,"num":i}.
	 */
	const char *data;
	size_t datalen;
	const struct sio_att *att;   /* in the order of their "num" */
	size_t natt;
};

#endif
