/*
 * The socketio service's Redis adapter: carries broadcasts between hosts
 * over Redis pub/sub, in the wire format of the Node packages
 * @socket.io/redis-adapter 8.3 and @socket.io/redis-emitter 5.1, so that a
 * Node back end using the emitter reaches our clients and a Node socket.io
 * server with the Redis adapter shares rooms with us.
 *
 *   PUBLISH <key>#<nsp>#          [uid, {type: 2, data: [event, args...], nsp}, {rooms, except, flags}]
 *   PUBLISH <key>#<nsp>#<room>#   the same, when there is exactly one room
 *
 * in msgpack (as notepack.io writes it), binaries as msgpack bin in place.
 * Each host subscribes to <key>#<nsp>#* and skips the messages it sent
 * itself (same uid); the emitter's uid is "emitter".
 *
 * Runs in a worker, on its event loop, and never blocks it: host names are
 * resolved with libevent's asynchronous resolver (evdns: /etc/hosts, then
 * the name servers of /etc/resolv.conf; no NSS modules), addresses need
 * no resolution at all.
 */
#ifndef CLUSTERD_SIO_REDIS_H
#define CLUSTERD_SIO_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "svc/socketio/bcast.h"

struct event_base;
struct sio_redis;

/*
 * Limits on one message, both ways. A message beyond them is refused (and
 * counted) rather than delivered in part.
 */
#define SIO_REDIS_MAX_MSG     (16u << 20)   /* bytes */
#define SIO_REDIS_MAX_VALUES  (1u << 18)    /* msgpack values: bounds what decoding allocates */
#define SIO_REDIS_MAX_ATT     256           /* binary attachments */
/*
 * Nesting of the event's data array and what it holds (the array itself
 * is level 1). msgpack-c cannot decode more than 32 nested containers,
 * and the message puts data at level 3.
 */
#define SIO_REDIS_MAX_DEPTH   30

#define SIO_REDIS_DEFAULT_KEY "socket.io"
#define SIO_REDIS_DEFAULT_PORT 6379

struct sio_redis_url {
	char host[254];              /* a name (at most 253) or an address, without [] */
	bool numeric;                /* host is an IPv4 or IPv6 address */
	int port;
	/*
	 * Accepted for the URL's sake, and shown in logs, but unused: Redis
	 * pub/sub ignores databases (a message published while on db 3
	 * reaches subscribers on every db of the server).
	 */
	int db;
};

/* What sio_redis_figures() reports: counters grow for the life of r. */
struct sio_redis_figures {
	int connected;               /* 1 when both connections (publish, subscribe) are up */
	uint64_t published;          /* broadcasts handed to Redis */
	uint64_t received;           /* foreign broadcasts delivered */
	uint64_t dropped;            /* broadcasts not sent: Redis down, or too much unanswered */
	uint64_t errors;             /* messages refused: undecodable, or a broadcast we cannot encode */
	uint64_t publish_errors;     /* PUBLISH answered with an error, or lost with its connection */
	uint64_t reconnects;         /* connection attempts after the first one */
};

typedef void (*sio_redis_deliver)(void *arg, const struct sio_bcast *b);

/*
 * Parses "redis://host[:port][/db]": host an IPv4 address, an IPv6 address
 * in brackets or a name; port 6379 and db 0 by default. Refuses anything
 * else, a user or password among them (not supported yet). For the config
 * check in the master: nothing is resolved or connected. 0, or -1 with
 * "redis: ..." in err (which never repeats a password).
 */
int sio_redis_url_parse(const char *url, struct sio_redis_url *out, char *err, size_t errlen);

/*
 * Starts connecting to Redis from base's loop, with one connection to
 * publish and one to subscribe to <key>#<nsp>#* for each of nsps (copied).
 * key NULL means "socket.io"; uid names this host in what it publishes
 * (and its own messages are skipped). deliver(arg, b) is called from the
 * loop for every foreign broadcast of one of nsps; it may publish, and
 * may even call sio_redis_free().
 *
 * A Redis that is down or unreachable is not an error: the connections
 * retry with back-off (100 ms doubling to 5 s, with jitter; 2 s to
 * connect), with one warning per outage and one line when it is over.
 * NULL only on bad arguments or when memory runs out.
 */
struct sio_redis *sio_redis_new(struct event_base *base, const struct sio_redis_url *url,
    const char *key, const char *uid, const char *const *nsps, size_t nnsps,
    sio_redis_deliver deliver, void *arg);

/*
 * Publishes b, encoded once. 0 when handed to Redis's connection; -1 when
 * Redis is down or too far behind (b is then not sent to other hosts, and
 * counted as dropped) or b cannot be encoded (counted as an error). Never
 * blocks, never queues while Redis is down.
 */
int sio_redis_publish(struct sio_redis *r, const struct sio_bcast *b);

void sio_redis_figures(const struct sio_redis *r, struct sio_redis_figures *f);

/* Closes both connections; broadcasts not yet written are lost. NULL is fine. */
void sio_redis_free(struct sio_redis *r);

/* ---- the codec alone (unit tests, a fuzzer) ---- */

/*
 * Appends the message for b, published by uid, to out (which should be
 * empty). The data's placeholders {"_placeholder":true,"num":i} become
 * msgpack bin of attachment i. 0, or -1 when b's data is not a JSON
 * array starting with the event name, names a missing attachment, nests
 * too deep, or memory runs out; out is then emptied.
 */
int sio_redis_encode(const struct sio_bcast *b, const char *uid, msgpack_sbuffer *out);

/*
 * Decodes one message and calls cb(arg, uid, b), everything borrowed
 * until cb returns: each msgpack bin in the data becomes attachment i,
 * standing as {"_placeholder":true,"num":i} in b->data, numbered in the
 * order met. A msgpack timestamp (a JS Date, from notepack.io) becomes the
 * ISO string JSON.stringify would write, or null for a date JavaScript
 * cannot hold; NaN and infinities become null, as in JSON.stringify.
 * Integer rooms become their decimal text. 0, or -1 with the reason in
 * err: not a broadcast (type other than 2 EVENT, data not an array
 * starting with a string), truncated or trailing bytes, a map key that is
 * not a string or comes twice, a map holding "_placeholder": true (only a
 * bin may stand for a binary), other ext types, invalid UTF-8, or a limit
 * above.
 */
int sio_redis_decode(const char *buf, size_t len,
    void (*cb)(void *arg, const char *uid, const struct sio_bcast *b), void *arg,
    char *err, size_t errlen);

#endif
