/*
 * The bus between a master's workers: length-prefixed frames over stream
 * socketpairs, through libevent's bufferevents (see bus.h).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "common/log.h"
#include "ipc/bus.h"

struct bus_end {
	struct bufferevent *bev;
	bus_recv_cb cb;              /* a worker's: topic and body */
	void (*raw)(void *arg, const unsigned char *frame, size_t len);   /* the master's */
	void *arg;
	uint64_t dropped;
	int broken;                  /* the peer sent garbage or is gone: nothing more is read */
};

int
bus_pair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
}

/* Splits a frame into topic and body, and hands it on. */
static void
deliver(struct bus_end *e, const unsigned char *frame, size_t len)
{
	const unsigned char *p = frame + 5, *nul;
	size_t n = len - 5;

	if (e->raw != NULL) {
		e->raw(e->arg, frame, len);
		return;
	}
	if ((nul = memchr(p, '\0', n < BUS_MAX_TOPIC ? n : BUS_MAX_TOPIC)) == NULL) {
		log_error("bus: a frame with no topic: ignored");
		return;
	}
	e->cb(e->arg, (const char *)p, nul + 1, n - (size_t)(nul + 1 - p));
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct bus_end *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned char hdr[4];
	uint32_t n;

	while (!e->broken && evbuffer_copyout(in, hdr, 4) == 4) {
		memcpy(&n, hdr, 4);
		n = ntohl(n);
		if (n < 3 || n > BUS_MAX_FRAME) {
			/* Only our own code writes here: a bad length is a bug, not data. */
			log_error("bus: a frame of %lu bytes: the peer is broken; no longer "
			    "reading it", (unsigned long)n);
			e->broken = 1;
			bufferevent_disable(bev, EV_READ);
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		if (evbuffer_get_length(in) < (size_t)n + 4) {
			/* Wake up when the whole frame is there, not at every segment. */
			bufferevent_setwatermark(bev, EV_READ, (size_t)n + 4, 0);
			return;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		deliver(e, evbuffer_pullup(in, (ssize_t)n + 4), (size_t)n + 4);
		evbuffer_drain(in, (size_t)n + 4);
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct bus_end *e = arg;

	(void)what;
	/* The peer is gone or the socket failed: its process's end is near, and the
	 * supervisor (or the IPC channel) deals with that. Queue nothing more. */
	e->broken = 1;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
}

static struct bus_end *
end_new(struct event_base *base, int fd)
{
	struct bus_end *e = calloc(1, sizeof(*e));

	if (e == NULL || (e->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL) {
		free(e);
		close(fd);
		return NULL;
	}
	bufferevent_setcb(e->bev, on_read, NULL, on_event, e);
	if (bufferevent_enable(e->bev, EV_READ | EV_WRITE) == -1) {
		bufferevent_free(e->bev);
		free(e);
		return NULL;
	}
	return e;
}

struct bus_end *
bus_end_new(struct event_base *base, int fd, bus_recv_cb cb, void *arg)
{
	struct bus_end *e = end_new(base, fd);

	if (e != NULL) {
		e->cb = cb;
		e->arg = arg;
	}
	return e;
}

struct bus_end *
bus_relay_new(struct event_base *base, int fd,
    void (*cb)(void *arg, const unsigned char *frame, size_t len), void *arg)
{
	struct bus_end *e = end_new(base, fd);

	if (e != NULL) {
		e->raw = cb;
		e->arg = arg;
	}
	return e;
}

void
bus_end_free(struct bus_end *e)
{
	if (e == NULL)
		return;
	bufferevent_free(e->bev);    /* closes the socket */
	free(e);
}

static int
room_for(struct bus_end *e, size_t len)
{
	if (e->broken || len > BUS_MAX_FRAME + 4 ||
	    evbuffer_get_length(bufferevent_get_output(e->bev)) + len > BUS_MAX_QUEUED) {
		e->dropped++;
		return 0;
	}
	return 1;
}

int
bus_frame_flags(const unsigned char *frame)
{
	return frame[4];
}

int
bus_end_send(struct bus_end *e, int flags, const char *topic, const struct iovec *iov,
    int iovcnt)
{
	struct evbuffer *out = bufferevent_get_output(e->bev);
	size_t tlen = strnlen(topic, BUS_MAX_TOPIC), len = 1 + tlen + 1;
	uint8_t f = (uint8_t)flags;
	uint32_t n;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (tlen == BUS_MAX_TOPIC || len > BUS_MAX_FRAME || !room_for(e, len + 4)) {
		if (tlen == BUS_MAX_TOPIC || len > BUS_MAX_FRAME)
			e->dropped++;
		return -1;
	}
	n = htonl((uint32_t)len);
	/* One frame goes in whole or not at all: the stream must stay framed. */
	if (evbuffer_expand(out, len + 4) == -1 || evbuffer_add(out, &n, 4) == -1 ||
	    evbuffer_add(out, &f, 1) == -1 || evbuffer_add(out, topic, tlen + 1) == -1)
		goto fail;
	for (int i = 0; i < iovcnt; i++)
		if (iov[i].iov_len > 0 && evbuffer_add(out, iov[i].iov_base, iov[i].iov_len) == -1)
			goto fail;
	return 0;
fail:
	/* evbuffer_expand() reserved the room, so this is not expected; if it
	 * happens the stream is no longer framed and the bus is unusable. */
	log_error("bus: out of memory in the middle of a frame: the bus is closed");
	e->broken = 1;
	bufferevent_disable(e->bev, EV_READ | EV_WRITE);
	return -1;
}

int
bus_end_forward(struct bus_end *e, const unsigned char *frame, size_t len)
{
	if (!room_for(e, len))
		return -1;
	if (bufferevent_write(e->bev, frame, len) == -1) {
		e->dropped++;
		return -1;
	}
	return 0;
}

uint64_t
bus_end_dropped(const struct bus_end *e)
{
	return e->dropped;
}

size_t
bus_end_queued(const struct bus_end *e)
{
	return evbuffer_get_length(bufferevent_get_output(e->bev));
}
