/*
 * The hub: namespaces, their sockets and rooms, the delivery of a
 * broadcast to this worker's sockets, and the events every client may
 * send (join, leave, publish). Rooms are json-c's hash tables (seeded
 * hashes: room names come from clients); a membership is one small struct
 * on two lists, the room's and the socket's, so that leaving is cheap
 * both ways.
 *
 * Delivery never frees anything: a socket that cannot take more is asked
 * to close, and goes later, from its own events. So the lists walked here
 * stay intact during a walk.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/linkhash.h>

#include "common/log.h"
#include "conf/config.h"
#include "svc/socketio/socketio.h"

struct sio_room;

struct member {
	struct sio_room *room;
	struct sio_sock *sock;
	LIST_ENTRY(member) in_room, in_sock;
};

struct sio_room {
	LIST_HEAD(, member) members;
	char name[];
};

struct sio_sock {
	struct sio_conn *conn;
	struct sio_nsp *nsp;
	LIST_HEAD(, member) rooms;
	int nrooms;
	uint64_t mark;               /* = the delivery's seq: served or excluded already */
	TAILQ_ENTRY(sio_sock) link;
	char id[SIO_ID_LEN + 1];
};

struct sio_nsp {
	struct lh_table *rooms;      /* name -> struct sio_room */
	struct lh_table *ids;        /* socket id -> struct sio_sock: its own room */
	TAILQ_HEAD(, sio_sock) socks;
	size_t nsocks;
	int index;
	char name[];
};

/* ---- namespaces ---- */

static void
free_room(struct lh_entry *e)
{
	free(lh_entry_v(e));         /* the key is the room's own name */
}

struct sio_nsp *
sio_nsp_new(const char *name, int index)
{
	struct sio_nsp *n = calloc(1, sizeof(*n) + strlen(name) + 1);

	if (n == NULL)
		return NULL;
	strcpy(n->name, name);
	n->index = index;
	TAILQ_INIT(&n->socks);
	if ((n->rooms = lh_kchar_table_new(64, free_room)) == NULL ||
	    (n->ids = lh_kchar_table_new(64, NULL)) == NULL) {
		sio_nsp_free(n);
		return NULL;
	}
	return n;
}

void
sio_nsp_free(struct sio_nsp *n)
{
	if (n == NULL)
		return;
	if (n->rooms != NULL)
		lh_table_free(n->rooms);
	if (n->ids != NULL)
		lh_table_free(n->ids);
	free(n);
}

int
sio_nsp_index(const struct sio *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->conf->nnsp; i++)
		if (strlen(s->conf->namespaces[i]) == len &&
		    memcmp(s->conf->namespaces[i], name, len) == 0)
			return (int)i;
	return -1;
}

size_t
sio_nsp_rooms(const struct sio_nsp *n)
{
	return (size_t)lh_table_length(n->rooms);
}

size_t
sio_nsp_sockets(const struct sio_nsp *n)
{
	return n->nsocks;
}

/* ---- sockets and rooms ---- */

struct sio_sock *
sio_sock_new(struct sio *s, struct sio_nsp *n, struct sio_conn *c)
{
	struct sio_sock *k = calloc(1, sizeof(*k));

	(void)s;
	if (k == NULL)
		return NULL;
	k->conn = c;
	k->nsp = n;
	LIST_INIT(&k->rooms);
	sio_random_id(k->id);
	if (lh_table_insert(n->ids, k->id, k) != 0) {
		free(k);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&n->socks, k, link);
	n->nsocks++;
	return k;
}

const char *
sio_sock_id(const struct sio_sock *k)
{
	return k->id;
}

int
sio_sock_nsp_index(const struct sio_sock *k)
{
	return k->nsp->index;
}

static void
leave(struct sio_sock *k, struct member *m)
{
	struct sio_room *r = m->room;

	LIST_REMOVE(m, in_room);
	LIST_REMOVE(m, in_sock);
	k->nrooms--;
	free(m);
	if (LIST_EMPTY(&r->members))
		lh_table_delete(k->nsp->rooms, r->name);     /* frees r */
}

void
sio_sock_free(struct sio_sock *k)
{
	struct member *m;

	while ((m = LIST_FIRST(&k->rooms)) != NULL)
		leave(k, m);
	lh_table_delete(k->nsp->ids, k->id);
	TAILQ_REMOVE(&k->nsp->socks, k, link);
	k->nsp->nsocks--;
	free(k);
}

static struct member *
membership(struct sio_sock *k, const char *room)
{
	struct member *m;

	LIST_FOREACH(m, &k->rooms, in_sock)
		if (strcmp(m->room->name, room) == 0)
			return m;
	return NULL;
}

/* 0, or -1 with why in *err. */
static int
join(struct sio_sock *k, const char *name, const char **err)
{
	struct sio_room *r;
	struct member *m;
	void *v;

	if (membership(k, name) != NULL)
		return 0;
	if (k->nrooms >= SIO_MAX_ROOMS) {
		*err = "too many rooms (100)";
		return -1;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		*err = "out of memory";
		return -1;
	}
	if (lh_table_lookup_ex(k->nsp->rooms, name, &v))
		r = v;
	else {
		if ((r = calloc(1, sizeof(*r) + strlen(name) + 1)) == NULL) {
			free(m);
			*err = "out of memory";
			return -1;
		}
		strcpy(r->name, name);
		LIST_INIT(&r->members);
		if (lh_table_insert(k->nsp->rooms, r->name, r) != 0) {
			free(r);
			free(m);
			*err = "out of memory";
			return -1;
		}
	}
	m->room = r;
	m->sock = k;
	LIST_INSERT_HEAD(&r->members, m, in_room);
	LIST_INSERT_HEAD(&k->rooms, m, in_sock);
	k->nrooms++;
	return 0;
}

/* ---- delivery ---- */

/* "4" then the Socket.IO EVENT (or BINARY_EVENT) packet of a broadcast. */
static char *
encode(const struct sio_bcast *b, size_t *len)
{
	bool root = strcmp(b->nsp, "/") == 0;
	char head[64];
	size_t nsplen = root ? 0 : strlen(b->nsp) + 1, hl;
	char *buf;

	if (b->natt > 0)
		hl = (size_t)snprintf(head, sizeof(head), "45%zu-", b->natt);
	else
		hl = (size_t)snprintf(head, sizeof(head), "42");
	*len = hl + nsplen + b->datalen;
	if ((buf = malloc(*len)) == NULL)
		return NULL;
	memcpy(buf, head, hl);
	if (!root) {
		memcpy(buf + hl, b->nsp, nsplen - 1);
		buf[hl + nsplen - 1] = ',';
	}
	memcpy(buf + hl + nsplen, b->data, b->datalen);
	return buf;
}

static void
deliver_to(struct sio *s, struct sio_sock *k, const char *text, size_t len,
    const struct sio_bcast *b)
{
	if (sio_conn_closing(k->conn))
		return;
	if (sio_conn_send(k->conn, WSLAY_TEXT_FRAME, text, len) == -1)
		return;
	for (size_t i = 0; i < b->natt; i++)
		if (sio_conn_send(k->conn, WSLAY_BINARY_FRAME, b->att[i].p, b->att[i].len) == -1)
			return;
	s->fig.deliveries++;
}

void
sio_hub_deliver(struct sio *s, const struct sio_bcast *b, const struct sio_sock *skip)
{
	int i = sio_nsp_index(s, b->nsp, strlen(b->nsp));
	struct sio_nsp *n;
	struct sio_sock *k;
	struct member *m;
	uint64_t seq;
	size_t len;
	char *text;
	void *v;

	if (i < 0 || (n = s->nsps[i])->nsocks == 0)
		return;
	if ((text = encode(b, &len)) == NULL) {
		log_error("socketio: out of memory: a broadcast is lost");
		return;
	}
	seq = ++s->seq;
	/* The excluded first, then the union of the rooms, each socket once. */
	for (size_t j = 0; j < b->nexcept; j++) {
		if (lh_table_lookup_ex(n->rooms, b->except[j], &v))
			LIST_FOREACH(m, &((struct sio_room *)v)->members, in_room)
				m->sock->mark = seq;
		if (lh_table_lookup_ex(n->ids, b->except[j], &v))
			((struct sio_sock *)v)->mark = seq;
	}
	if (b->nrooms == 0) {
		TAILQ_FOREACH(k, &n->socks, link)
			if (k->mark != seq && k != skip)
				deliver_to(s, k, text, len, b);
	}
	for (size_t j = 0; j < b->nrooms; j++) {
		if (lh_table_lookup_ex(n->rooms, b->rooms[j], &v))
			LIST_FOREACH(m, &((struct sio_room *)v)->members, in_room) {
				if (m->sock->mark == seq || m->sock == skip)
					continue;
				m->sock->mark = seq;
				deliver_to(s, m->sock, text, len, b);
			}
		if (lh_table_lookup_ex(n->ids, b->rooms[j], &v) &&
		    (k = v)->mark != seq && k != skip) {
			k->mark = seq;
			deliver_to(s, k, text, len, b);
		}
	}
	free(text);
}

void
sio_broadcast(struct sio *s, const struct sio_bcast *b, const struct sio_sock *skip)
{
	s->fig.bcast_local++;
	sio_hub_deliver(s, b, skip);
	sio_bus_send(s, b, false);
	if (s->redis != NULL)
		sio_redis_publish(s->redis, b);
}

/* ---- the built-in events ---- */

static void
ack_error(struct sio_sock *k, int64_t ack, const char *msg)
{
	json_object *a, *o;

	if (ack < 0)
		return;
	a = json_object_new_array();
	o = json_object_new_object();
	if (a == NULL || o == NULL || json_object_object_add(o, "error",
	    json_object_new_string(msg)) != 0 || json_object_array_add(a, o) != 0) {
		json_object_put(a);
		json_object_put(o);
		sio_conn_close(k->conn, 1011, "out of memory");
		return;
	}
	sio_conn_ack(k->conn, k, ack, json_object_to_json_string_ext(a,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
}

static void
ack_ok(struct sio_sock *k, int64_t ack)
{
	sio_conn_ack(k->conn, k, ack, "[{\"ok\":true}]");
}

/* A room name as the events take it, or NULL with why in *err. */
static const char *
room_arg(json_object *v, const char **err)
{
	size_t n;

	if (v == NULL || !json_object_is_type(v, json_type_string) ||
	    (n = (size_t)json_object_get_string_len(v)) == 0 || n > SIO_MAX_ROOM_LEN ||
	    memchr(json_object_get_string(v), '\0', n) != NULL) {
		*err = "room must be a string of 1 to 200 bytes";
		return NULL;
	}
	return json_object_get_string(v);
}

static void
on_publish(struct sio *s, struct sio_sock *k, int64_t ack, json_object *arg,
    const struct sio_att *att, size_t natt)
{
	json_object *room, *event, *data, *out;
	const char *err, *name;
	struct sio_bcast b;

	if (arg == NULL || !json_object_is_type(arg, json_type_object)) {
		ack_error(k, ack, "publish needs an object {room, event, data}");
		return;
	}
	if ((name = room_arg(json_object_object_get_ex(arg, "room", &room) ? room : NULL,
	    &err)) == NULL) {
		ack_error(k, ack, err);
		return;
	}
	if (!json_object_object_get_ex(arg, "event", &event) ||
	    !json_object_is_type(event, json_type_string) ||
	    json_object_get_string_len(event) == 0) {
		ack_error(k, ack, "event must be a non-empty string");
		return;
	}
	if (!sio_event_name_ok(json_object_get_string(event))) {
		ack_error(k, ack, "event name is reserved");
		return;
	}
	if (!json_object_object_get_ex(arg, "data", &data))
		data = NULL;             /* JSON has no undefined: null, as JSON.stringify */
	if ((out = json_object_new_array_ext(2)) == NULL ||
	    json_object_array_add(out, json_object_get(event)) != 0 ||
	    json_object_array_add(out, json_object_get(data)) != 0) {
		json_object_put(out);
		ack_error(k, ack, "out of memory");
		return;
	}
	b = (struct sio_bcast){ .nsp = k->nsp->name, .rooms = &name, .nrooms = 1,
	    .except = (const char *const[]){ k->id }, .nexcept = 1, .att = att, .natt = natt };
	b.data = json_object_to_json_string_length(out,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &b.datalen);
	if (b.data == NULL) {
		json_object_put(out);
		ack_error(k, ack, "out of memory");
		return;
	}
	sio_broadcast(s, &b, k);
	json_object_put(out);
	ack_ok(k, ack);
}

void
sio_hub_event(struct sio *s, struct sio_sock *k, int64_t ack, json_object *args,
    const struct sio_att *att, size_t natt)
{
	json_object *first = json_object_array_get_idx(args, 0);
	json_object *arg = json_object_array_get_idx(args, 1);
	const char *name, *room, *err;
	struct member *m;

	if (!json_object_is_type(first, json_type_string)) {
		if (ack >= 0)
			ack_error(k, ack, "unknown event");
		return;
	}
	name = json_object_get_string(first);
	if (strcmp(name, "join") == 0) {
		if ((room = room_arg(arg, &err)) == NULL || join(k, room, &err) == -1)
			ack_error(k, ack, err);
		else
			ack_ok(k, ack);
	} else if (strcmp(name, "leave") == 0) {
		if ((room = room_arg(arg, &err)) == NULL) {
			ack_error(k, ack, err);
			return;
		}
		if ((m = membership(k, room)) != NULL)
			leave(k, m);
		ack_ok(k, ack);
	} else if (strcmp(name, "publish") == 0)
		on_publish(s, k, ack, arg, att, natt);
	else if (ack >= 0)
		ack_error(k, ack, "unknown event");
}
