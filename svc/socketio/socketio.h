/*
 * The socketio service's own declarations, shared by its files:
 *   conf.c     the route's options, validated in the master
 *   packet.c   Socket.IO packets: parsing and encoding, no I/O
 *   ws.c       the WebSocket: the handshake, and wslay on a socket
 *   conn.c     a connection: Engine.IO over the WebSocket, Socket.IO on it
 *   hub.c      namespaces, rooms, delivery, the built-in events
 *   emit.c     POST {prefix}/emit, for back ends
 *   cluster.c  broadcasts to the other workers (the bus) and hosts (redis.c)
 *   service.c  the worker's state for the route, and the service's table
 */
#ifndef CLUSTERD_SOCKETIO_H
#define CLUSTERD_SOCKETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <wslay/wslay.h>

#include "svc/service.h"
#include "svc/socketio/bcast.h"
#include "svc/socketio/redis.h"

#define SIO_MAX_NSP 32           /* namespaces per route */
#define SIO_MAX_ROOMS 100        /* rooms a socket may join */
#define SIO_MAX_ROOM_LEN 200
#define SIO_MAX_ATTACH 10        /* binary attachments per packet, as socket.io-parser */
#define SIO_JSON_DEPTH 64
#define SIO_ID_LEN 20            /* Engine.IO and Socket.IO ids: 15 random bytes, base64url */

/* ---- conf.c ---- */
struct sio_conf {
	char **namespaces;           /* "/" ... */
	size_t nnsp;
	long long connect_timeout_ms, ping_interval_ms, ping_timeout_ms;
	long long max_payload_bytes, max_connections, send_queue_bytes, reconnect_spread_ms;
	char *publish_token;         /* NULL: POST emit is open */
	char *redis;                 /* NULL: no other host */
	struct sio_redis_url redis_url;
	char *redis_key;
};

extern const char *const sio_keys[];
int sio_configure(json_object *route, const char *path, void **conf, char *err, size_t errlen);
void sio_conf_free(void *conf);

/* ---- packet.c ---- */
enum sio_type {
	SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR,
	SIO_BINARY_EVENT, SIO_BINARY_ACK,
};

struct sio_packet {
	enum sio_type type;
	int nattach;                 /* binary attachments that follow */
	const char *nsp;             /* not NUL-terminated */
	size_t nsplen;
	int64_t id;                  /* ack id, -1: none */
	const char *data;            /* the JSON text, NULL: none */
	size_t datalen;
};

/* Splits a packet's text (after Engine.IO's "4"): 0, or -1 with why in err. */
int sio_packet_parse(const char *s, size_t len, struct sio_packet *p, const char **err);
/* Parses p->data as the JSON its type needs; NULL with why in err. */
json_object *sio_packet_payload(const struct sio_packet *p, const char **err);
/* True if name may be an event's name (not one socket.io reserves). */
bool sio_event_name_ok(const char *name);

/* ---- the worker's state (service.c) ---- */
struct sio_conn;
struct sio_sock;
struct sio_nsp;
TAILQ_HEAD(sio_conn_list, sio_conn);

struct sio_figures {
	uint64_t connections_total, refused, frames_in, deliveries;
	uint64_t bcast_local, bcast_bus, bcast_redis, bus_dropped, bad_bus;
	uint64_t closed_ping, closed_queue, closed_protocol, closed_connect, closed_drain,
	    closed_client;
	uint64_t emits;
};

struct sio {
	const struct route_conf *route;
	const struct sio_conf *conf;
	const struct worker_info *w;
	char topic[256];          /* "socketio /prefix": the bus topic */
	struct sio_nsp *nsps[SIO_MAX_NSP];
	struct sio_conn_list conns;
	size_t nconns;
	struct sio_conn_list dirty;  /* connections with frames to send this turn */
	struct event *flush_ev;
	const struct timeval *tv_ping, *tv_pong, *tv_connect;   /* common timeouts */
	struct sio_redis *redis;
	struct emit_wait *emits_head, **emits_tail;   /* emits waiting for their echo, in order */
	uint64_t seq;                /* marks sockets already served by one delivery */
	/* the drain: connections are closed a few at a time */
	struct event *drain_ev;
	void (*drained)(void *);
	void *drained_arg;
	uint64_t drain_started_ms, drain_spread_ms;
	size_t drain_total, drain_asked;
	bool draining;
	struct sio_figures fig;
};

/* ---- ws.c ---- */
/* base64(SHA-1(key + GUID)) into accept (29 bytes); 0, or -1 for a bad key. */
int sio_ws_accept(const char *key, char accept[29]);
void sio_random_id(char id[SIO_ID_LEN + 1]);

/* ---- conn.c ---- */
/* Takes over an upgraded socket as an Engine.IO session: 0, or -1 (closed). */
int sio_conn_open(struct sio *s, int fd, struct evbuffer *in, struct evbuffer *out);
/* Queues a text or binary frame. -1 when the connection is going. */
int sio_conn_send(struct sio_conn *c, int opcode, const void *p, size_t len);
/* Closes with a WebSocket close code (then drops it if it does not answer). */
void sio_conn_close(struct sio_conn *c, uint16_t code, const char *reason);
/* Frees the connection at once, the socket closed, its sockets leaving their rooms. */
void sio_conn_free(struct sio_conn *c);
/* Writes what was queued this turn (the flush event). */
void sio_flush(evutil_socket_t fd, short what, void *arg);
/* Answers an event's ack id (nothing if id < 0) with a JSON array text. */
void sio_conn_ack(struct sio_conn *c, struct sio_sock *k, int64_t id, const char *json);
bool sio_conn_closing(const struct sio_conn *c);
/* Asks up to n more connections to close with code; returns how many it asked. */
size_t sio_conns_close(struct sio *s, size_t n, uint16_t code, const char *reason);
/* A connection was freed (service.c: the drain may be over). */
void sio_conn_gone(struct sio *s);

/* ---- hub.c ---- */
struct sio_nsp *sio_nsp_new(const char *name, int index);
void sio_nsp_free(struct sio_nsp *n);
int sio_nsp_index(const struct sio *s, const char *name, size_t len);
size_t sio_nsp_rooms(const struct sio_nsp *n);
size_t sio_nsp_sockets(const struct sio_nsp *n);
/* A socket for connection c in namespace n; NULL when out of memory. */
struct sio_sock *sio_sock_new(struct sio *s, struct sio_nsp *n, struct sio_conn *c);
const char *sio_sock_id(const struct sio_sock *k);
int sio_sock_nsp_index(const struct sio_sock *k);
void sio_sock_free(struct sio_sock *k);
/* An EVENT from a socket: the built-in events. args is the payload array. */
void sio_hub_event(struct sio *s, struct sio_sock *k, int64_t ack, json_object *args,
    const struct sio_att *att, size_t natt);
/* Delivers to this worker's sockets (but skip, when not NULL). */
void sio_hub_deliver(struct sio *s, const struct sio_bcast *b, const struct sio_sock *skip);
/* Delivers here, and hands on to the other workers and hosts. */
void sio_broadcast(struct sio *s, const struct sio_bcast *b, const struct sio_sock *skip);

/* ---- cluster.c ---- */
/* A broadcast as the bus carries it, decoded: b points into the message. */
struct sio_bus_msg {
	struct sio_bcast b;
	bool echoed;                 /* its sender waits for it to come back */
	uint32_t pid;                /* its sender */
	const char **rooms, **except;    /* allocated: sio_bus_msg_free() */
	struct sio_att att[SIO_MAX_ATTACH];
};
int sio_bus_decode(const unsigned char *msg, size_t len, struct sio_bus_msg *m);
void sio_bus_msg_free(struct sio_bus_msg *m);
void sio_bus_recv(void *state, const unsigned char *msg, size_t len);
/* To the other workers; with echo, back here too once they all have it. */
int sio_bus_send(struct sio *s, const struct sio_bcast *b, bool echo);
void sio_redis_recv(void *arg, const struct sio_bcast *b);

/* ---- emit.c ---- */
struct http_req;
void sio_emit(struct sio *s, struct http_req *req);
/* One of this worker's emits came back through the master: deliver, answer. */
void sio_emit_echoed(struct sio *s, const struct sio_bcast *b);
/* The service stops: emits still waiting for their echo get a 503. */
void sio_emit_drop_all(struct sio *s);

#endif
