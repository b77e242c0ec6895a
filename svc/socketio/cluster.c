/*
 * Broadcasts beyond this worker: to the master's other workers over the
 * bus (in a compact binary form of struct sio_bcast, below), and to other
 * hosts through Redis (redis.c). What comes in from either is delivered
 * here only: it is never handed on again, so nothing loops.
 *
 *   u8 version (1), u8 flags (ECHOED: its sender waits for it), u32 sender's pid
 *   str nsp, u16 nrooms, str room..., u16 nexcept, str except...
 *   u32 datalen, data, u8 natt, (u32 len, bytes)...
 *   where str = u16 length, the bytes, a NUL (counted in the length)
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "svc/socketio/socketio.h"

#define BUS_VERSION 1
#define F_ECHOED 0x01
#define BUS_MAX_LIST 4096        /* rooms or excepts in one broadcast */

static int
put_str(struct evbuffer *b, const char *s)
{
	size_t n = strlen(s) + 1;
	uint16_t len = htons((uint16_t)n);

	if (n > UINT16_MAX)
		return -1;
	return evbuffer_add(b, &len, 2) == -1 || evbuffer_add(b, s, n) == -1 ? -1 : 0;
}

static int
put_list(struct evbuffer *b, const char *const *v, size_t n)
{
	uint16_t len = htons((uint16_t)n);

	if (n > BUS_MAX_LIST || evbuffer_add(b, &len, 2) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (put_str(b, v[i]) == -1)
			return -1;
	return 0;
}

static int
put_u32(struct evbuffer *b, size_t v)
{
	uint32_t n = htonl((uint32_t)v);

	return v > UINT32_MAX ? -1 : evbuffer_add(b, &n, 4);
}

int
sio_bus_send(struct sio *s, const struct sio_bcast *b, bool echo)
{
	struct evbuffer *e = evbuffer_new();
	struct iovec iov[3 + 2 * SIO_MAX_ATTACH];
	uint32_t lens[SIO_MAX_ATTACH];
	uint8_t version = BUS_VERSION, natt = (uint8_t)b->natt, flags = echo ? F_ECHOED : 0;
	uint32_t pid = htonl((uint32_t)s->w->pid);
	int n = 0, rc = -1;

	if (s->w->bus_send == NULL)
		goto out;
	/* The head in one buffer; data and attachments as they are, gathered. */
	if (e == NULL || b->natt > SIO_MAX_ATTACH || evbuffer_add(e, &version, 1) == -1 ||
	    evbuffer_add(e, &flags, 1) == -1 || evbuffer_add(e, &pid, 4) == -1 || put_str(e, b->nsp) == -1 || put_list(e, b->rooms, b->nrooms) == -1 ||
	    put_list(e, b->except, b->nexcept) == -1 || put_u32(e, b->datalen) == -1)
		goto out;
	iov[n++] = (struct iovec){ evbuffer_pullup(e, -1), evbuffer_get_length(e) };
	iov[n++] = (struct iovec){ (void *)(uintptr_t)b->data, b->datalen };
	iov[n++] = (struct iovec){ &natt, 1 };
	for (size_t i = 0; i < b->natt; i++) {
		lens[i] = htonl((uint32_t)b->att[i].len);
		iov[n++] = (struct iovec){ &lens[i], 4 };
		iov[n++] = (struct iovec){ (void *)(uintptr_t)b->att[i].p, b->att[i].len };
	}
	rc = s->w->bus_send(s->topic, echo, iov, n);
	if (rc == 0)
		s->fig.bcast_bus++;
	else
		s->fig.bus_dropped++;
out:
	if (e != NULL)
		evbuffer_free(e);
	return rc;
}

/* ---- reading ---- */

struct reader {
	const unsigned char *p;
	size_t left;
	int bad;
};

static const unsigned char *
take(struct reader *r, size_t n)
{
	const unsigned char *p = r->p;

	if (r->bad || n > r->left) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static size_t
get_uint(struct reader *r, size_t width)
{
	const unsigned char *p = take(r, width);
	size_t v = 0;

	for (size_t i = 0; p != NULL && i < width; i++)
		v = v << 8 | p[i];
	return v;
}

static const char *
get_str(struct reader *r)
{
	size_t n = get_uint(r, 2);
	const unsigned char *p = take(r, n);

	if (p == NULL || n == 0 || p[n - 1] != '\0' || memchr(p, '\0', n - 1) != NULL) {
		r->bad = 1;
		return NULL;
	}
	return (const char *)p;
}

static const char **
get_list(struct reader *r, size_t *count)
{
	size_t n = get_uint(r, 2);
	const char **v;

	*count = 0;
	if (r->bad || n == 0)
		return NULL;
	if (n > BUS_MAX_LIST || (v = calloc(n, sizeof(*v))) == NULL) {
		r->bad = 1;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = get_str(r);
	*count = n;
	return v;
}

int
sio_bus_decode(const unsigned char *msg, size_t len, struct sio_bus_msg *m)
{
	struct reader r = { msg, len, 0 };

	memset(m, 0, sizeof(*m));
	if (get_uint(&r, 1) != BUS_VERSION)
		r.bad = 1;
	m->echoed = (get_uint(&r, 1) & F_ECHOED) != 0;
	m->pid = (uint32_t)get_uint(&r, 4);
	m->b.nsp = get_str(&r);
	m->rooms = get_list(&r, &m->b.nrooms);
	m->except = get_list(&r, &m->b.nexcept);
	m->b.datalen = get_uint(&r, 4);
	m->b.data = (const char *)take(&r, m->b.datalen);
	m->b.natt = get_uint(&r, 1);
	if (m->b.natt > SIO_MAX_ATTACH)
		r.bad = 1;
	for (size_t i = 0; !r.bad && i < m->b.natt; i++) {
		m->att[i].len = get_uint(&r, 4);
		m->att[i].p = take(&r, m->att[i].len);
	}
	m->b.rooms = m->rooms;
	m->b.except = m->except;
	m->b.att = m->att;
	if (r.bad || r.left != 0) {
		sio_bus_msg_free(m);
		return -1;
	}
	return 0;
}

void
sio_bus_msg_free(struct sio_bus_msg *m)
{
	free(m->rooms);
	free(m->except);
	m->rooms = m->except = NULL;
}

void
sio_bus_recv(void *state, const unsigned char *msg, size_t len)
{
	struct sio *s = state;
	struct sio_bus_msg m;

	if (sio_bus_decode(msg, len, &m) == -1) {
		s->fig.bad_bus++;
		log_error("socketio: a malformed broadcast on the bus: ignored");
		return;
	}
	if (m.echoed && m.pid == (uint32_t)s->w->pid)
		sio_emit_echoed(s, &m.b);        /* our own, back in the master's order */
	else
		sio_hub_deliver(s, &m.b, NULL);
	sio_bus_msg_free(&m);
}

void
sio_redis_recv(void *arg, const struct sio_bcast *b)
{
	struct sio *s = arg;

	s->fig.bcast_redis++;
	sio_hub_deliver(s, b, NULL);
}
