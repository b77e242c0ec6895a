/*
 * A connection: a WebSocket (wslay does the framing, fragmentation,
 * control frames, masking and UTF-8 checks), Engine.IO v4 on it (the open
 * packet, the server's pings), and Socket.IO v5 packets inside Engine.IO's
 * messages, each namespace a socket of its own.
 *
 * Memory: wslay's context is 8.5 kB (two 4 kB buffers), most of what a
 * connection would cost. An idle connection has none: the context is
 * freed when nothing is queued for the socket and no frame is half read
 * (we count the bytes wslay took against the frames it finished), and a
 * new one is made when the socket is readable or something is to be sent.
 *
 * Lifetime: a connection is freed only from its own events (I/O, timers)
 * or the drain, never from inside wslay or a delivery; anything else that
 * wants it gone asks sio_conn_close(), which only queues a close frame.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "conf/config.h"
#include "svc/socketio/socketio.h"

#define CLOSE_GRACE_MS 1000      /* a closing peer has this long to answer our close */

/* A binary packet waiting for its attachments. */
struct pending {
	struct sio_packet pkt;
	char *text;                  /* the packet's text, which pkt points into */
	unsigned char *att[SIO_MAX_ATTACH];
	size_t attlen[SIO_MAX_ATTACH];
	int got;
};

struct sio_conn {
	struct sio *s;
	int fd;
	struct event *rev, *wev;
	struct event *timer;         /* the ping cycle; then the close deadline */
	struct event *connect_ev;    /* no CONNECT yet: connect_timeout_ms */
	wslay_event_context_ptr ws;
	struct evbuffer *in;         /* what came after the upgrade request; NULL once read */
	struct evbuffer *out;        /* the rest of the 101 head; NULL once written */
	struct sio_sock **socks;     /* one per namespace of the route, NULL: not connected */
	struct pending *pend;
	const char *fail;            /* set inside a wslay callback: close once it returns */
	uint16_t fail_code;
	uint8_t hdr[14];             /* a frame header wslay gave, waiting for its payload */
	uint8_t hdrlen;
	uint64_t fed;                /* bytes handed to wslay */
	uint64_t framed;             /* bytes of the frames it has finished reading */
	uint64_t frame_size;         /* of the frame being read */
	bool in_msg;                 /* a fragmented message is being read */
	bool awaiting_pong;
	bool eof;                    /* the peer is gone */
	bool closing;
	bool dirty;
	TAILQ_ENTRY(sio_conn) link;      /* s->conns */
	TAILQ_ENTRY(sio_conn) dirty_link;
};

static void conn_write(struct sio_conn *c);

/* ---- wslay's I/O, on the socket ---- */

static ssize_t
ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct sio_conn *c = user;
	ssize_t n;

	(void)flags;
	if (c->in != NULL) {
		n = evbuffer_remove(c->in, buf, len);
		if (evbuffer_get_length(c->in) == 0) {
			evbuffer_free(c->in);
			c->in = NULL;
		}
		if (n > 0) {
			c->fed += (uint64_t)n;
			return n;
		}
	}
	while ((n = recv(c->fd, buf, len, 0)) == -1 && errno == EINTR)
		;
	if (n > 0) {
		c->fed += (uint64_t)n;
		return n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	else {
		c->eof = true;           /* EOF or a reset */
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

/*
 * wslay hands over a frame's header (with WSLAY_MSG_MORE) and its payload
 * in two calls; two send(2)s would cost a system call and a segment more
 * per frame. The header is kept here and goes out with the payload in one
 * writev(2).
 */
static ssize_t
ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	struct sio_conn *c = user;
	struct iovec iov[2];
	ssize_t n;
	int k = 0;

	if (c->out != NULL) {
		while (evbuffer_get_length(c->out) > 0 && evbuffer_write(c->out, c->fd) > 0)
			;
		if (evbuffer_get_length(c->out) > 0) {
			wslay_event_set_error(ctx, errno == EAGAIN ? WSLAY_ERR_WOULDBLOCK :
			    WSLAY_ERR_CALLBACK_FAILURE);
			return -1;
		}
		evbuffer_free(c->out);
		c->out = NULL;
	}
	if ((flags & WSLAY_MSG_MORE) && c->hdrlen == 0 && len <= sizeof(c->hdr)) {
		memcpy(c->hdr, data, len);       /* the header: its payload follows at once */
		c->hdrlen = (uint8_t)len;
		return (ssize_t)len;
	}
	if (c->hdrlen > 0)
		iov[k++] = (struct iovec){ c->hdr, c->hdrlen };
	iov[k++] = (struct iovec){ (void *)(uintptr_t)data, len };
	while ((n = writev(c->fd, iov, k)) == -1 && errno == EINTR)
		;
	if (n == -1) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ?
		    WSLAY_ERR_WOULDBLOCK : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (c->hdrlen > 0) {
		if ((size_t)n < c->hdrlen) {
			/* Part of the header went: the rest goes first, next time. */
			memmove(c->hdr, c->hdr + n, c->hdrlen - (size_t)n);
			c->hdrlen -= (uint8_t)n;
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		n -= c->hdrlen;
		c->hdrlen = 0;
		if (n == 0 && len > 0) {
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
	}
	return n;
}

/* A client's frame: its header is 2 bytes, the extended length, the mask. */
static void
ws_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *a,
    void *user)
{
	struct sio_conn *c = user;

	(void)ctx;
	c->frame_size = 2 + (a->payload_length > 65535 ? 8 : a->payload_length > 125 ? 2 : 0) +
	    4 + a->payload_length;
	if (!wslay_is_ctrl_frame(a->opcode))
		c->in_msg = !a->fin;
}

static void
ws_frame_end(wslay_event_context_ptr ctx, void *user)
{
	struct sio_conn *c = user;

	(void)ctx;
	c->framed += c->frame_size;
}

static void ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
    void *user);

/* The connection's wslay context, made if it has none: 0, or -1 out of memory. */
static int
ws_context(struct sio_conn *c)
{
	static const struct wslay_event_callbacks cbs = { ws_recv, ws_send, NULL,
	    ws_frame_start, NULL, ws_frame_end, ws_msg };

	if (c->ws != NULL)
		return 0;
	if (wslay_event_context_server_init(&c->ws, &cbs, c) != 0) {
		c->ws = NULL;
		return -1;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, (uint64_t)c->s->conf->max_payload_bytes);
	return 0;
}

/* Frees the context of a connection that needs none now (see the top). */
static void
ws_park(struct sio_conn *c)
{
	if (c->ws == NULL || c->closing || c->fail != NULL || c->in_msg || c->fed != c->framed ||
	    c->out != NULL || c->in != NULL || c->hdrlen > 0 || wslay_event_want_write(c->ws) ||
	    !wslay_event_get_read_enabled(c->ws) || !wslay_event_get_write_enabled(c->ws))
		return;
	wslay_event_context_free(c->ws);
	c->ws = NULL;
}

/* ---- sending ---- */

static void
mark_dirty(struct sio_conn *c)
{
	struct sio *s = c->s;

	if (c->dirty)
		return;
	c->dirty = true;
	TAILQ_INSERT_TAIL(&s->dirty, c, dirty_link);
	event_active(s->flush_ev, EV_WRITE, 0);
}

void
sio_flush(evutil_socket_t fd, short what, void *arg)
{
	struct sio *s = arg;
	struct sio_conn_list *l = &s->dirty;
	struct sio_conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(l)) != NULL) {
		TAILQ_REMOVE(l, c, dirty_link);
		c->dirty = false;
		conn_write(c);           /* may free c */
	}
}

int
sio_conn_send(struct sio_conn *c, int opcode, const void *p, size_t len)
{
	struct wslay_event_msg m = { (uint8_t)opcode, p, len };

	if (c->closing)
		return -1;
	if (ws_context(c) == -1) {
		/* not even a close frame can be queued: it goes at the next turn */
		c->fail = "out of memory";
		c->fail_code = 1011;
		mark_dirty(c);
		return -1;
	}
	if (wslay_event_get_queued_msg_length(c->ws) + len > (size_t)c->s->conf->send_queue_bytes) {
		/* It lets more pile up than it may: it goes, and takes its backlog along. */
		c->s->fig.closed_queue++;
		sio_conn_close(c, 1008, "send queue full");
		return -1;
	}
	if (wslay_event_queue_msg(c->ws, &m) != 0) {
		sio_conn_close(c, 1011, "out of memory");
		return -1;
	}
	mark_dirty(c);
	return 0;
}

static int
send_text(struct sio_conn *c, const char *s)
{
	return sio_conn_send(c, WSLAY_TEXT_FRAME, s, strlen(s));
}

/* "4" + a Socket.IO packet of type t for namespace index i, with an id and a JSON text. */
static void
send_packet(struct sio_conn *c, int t, int i, int64_t id, const char *json)
{
	const char *nsp = c->s->conf->namespaces[i >= 0 ? i : 0];
	bool root = strcmp(nsp, "/") == 0;
	char idbuf[24] = "", *buf;

	if (id >= 0)
		snprintf(idbuf, sizeof(idbuf), "%lld", (long long)id);
	if (asprintf(&buf, "4%d%s%s%s%s", t, root ? "" : nsp, root ? "" : ",", idbuf, json) < 0) {
		sio_conn_close(c, 1011, "out of memory");
		return;
	}
	send_text(c, buf);
	free(buf);
}

void
sio_conn_ack(struct sio_conn *c, struct sio_sock *k, int64_t id, const char *json)
{
	if (id >= 0)
		send_packet(c, SIO_ACK, sio_sock_nsp_index(k), id, json);
}

/* ---- closing ---- */

static void
close_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sio_conn_free(arg);          /* it did not answer our close in time */
}

void
sio_conn_close(struct sio_conn *c, uint16_t code, const char *reason)
{
	struct timeval tv = { CLOSE_GRACE_MS / 1000, (CLOSE_GRACE_MS % 1000) * 1000 };

	if (c->closing)
		return;
	c->closing = true;
	if (c->connect_ev != NULL)
		event_del(c->connect_ev);
	/* The same timer, now a deadline: whatever it was counting, it stops. */
	event_del(c->timer);
	event_assign(c->timer, c->s->w->base, -1, 0, close_deadline, c);
	event_add(c->timer, &tv);
	if (ws_context(c) == 0)
		wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, strlen(reason));
	mark_dirty(c);           /* without a context, it is freed there */
}

void
sio_conn_free(struct sio_conn *c)
{
	struct sio *s = c->s;

	if (c->dirty)
		TAILQ_REMOVE(&s->dirty, c, dirty_link);
	for (size_t i = 0; i < s->conf->nnsp; i++)
		if (c->socks[i] != NULL)
			sio_sock_free(c->socks[i]);
	if (c->pend != NULL) {
		for (int i = 0; i < c->pend->got; i++)
			free(c->pend->att[i]);
		free(c->pend->text);
		free(c->pend);
	}
	event_free(c->rev);
	event_free(c->wev);
	event_free(c->timer);
	if (c->connect_ev != NULL)
		event_free(c->connect_ev);
	if (c->ws != NULL)
		wslay_event_context_free(c->ws);
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	close(c->fd);
	TAILQ_REMOVE(&s->conns, c, link);
	s->nconns--;
	free(c->socks);
	free(c);
	sio_conn_gone(s);
}

/* ---- Socket.IO ---- */

static void
protocol_error(struct sio_conn *c, const char *why)
{
	if (c->fail == NULL) {
		c->fail = why;
		c->fail_code = 1002;
	}
}

static void
on_connect(struct sio_conn *c, const struct sio_packet *p, int i)
{
	const char *err;
	json_object *auth;
	char json[64];

	if (i < 0) {
		/* Not a namespace of ours: the client is told, and may try another. */
		char *nsp = strndup(p->nsp, p->nsplen), *buf = NULL;
		if (nsp == NULL || asprintf(&buf, "44%s,{\"message\":\"Invalid namespace\"}",
		    nsp) < 0)
			sio_conn_close(c, 1011, "out of memory");
		else
			send_text(c, buf);
		free(buf);
		free(nsp);
		return;
	}
	if ((auth = sio_packet_payload(p, &err)) == NULL) {
		protocol_error(c, err);
		return;
	}
	json_object_put(auth);       /* a hub checks no credentials of its own */
	if (c->socks[i] == NULL && (c->socks[i] = sio_sock_new(c->s, c->s->nsps[i], c)) == NULL) {
		sio_conn_close(c, 1011, "out of memory");
		return;
	}
	if (c->connect_ev != NULL) {
		event_free(c->connect_ev);
		c->connect_ev = NULL;
	}
	snprintf(json, sizeof(json), "{\"sid\":\"%s\"}", sio_sock_id(c->socks[i]));
	send_packet(c, SIO_CONNECT, i, -1, json);
}

static void
dispatch(struct sio_conn *c, const struct sio_packet *p, const struct sio_att *att, size_t natt)
{
	int i = sio_nsp_index(c->s, p->nsp, p->nsplen);
	json_object *payload;
	const char *err;

	if (p->type == SIO_CONNECT) {
		on_connect(c, p, i);
		return;
	}
	if (p->type == SIO_CONNECT_ERROR) {
		protocol_error(c, "a client does not send CONNECT_ERROR");
		return;
	}
	if (i < 0 || c->socks[i] == NULL) {
		protocol_error(c, "a packet for a namespace it has not connected to");
		return;
	}
	if (p->type == SIO_DISCONNECT) {
		if (p->data != NULL) {
			protocol_error(c, "invalid payload");
			return;
		}
		sio_sock_free(c->socks[i]);
		c->socks[i] = NULL;
		return;
	}
	if ((payload = sio_packet_payload(p, &err)) == NULL) {
		protocol_error(c, err);
		return;
	}
	if (p->type == SIO_EVENT || p->type == SIO_BINARY_EVENT)
		sio_hub_event(c->s, c->socks[i], p->id, payload, att, natt);
	/* An ACK answers an event sent with an ack id: the hub sends none. */
	json_object_put(payload);
}

static void
pending_done(struct sio_conn *c)
{
	struct pending *pd = c->pend;
	struct sio_att att[SIO_MAX_ATTACH];

	for (int i = 0; i < pd->got; i++)
		att[i] = (struct sio_att){ pd->att[i], pd->attlen[i] };
	dispatch(c, &pd->pkt, att, (size_t)pd->got);
	for (int i = 0; i < pd->got; i++)
		free(pd->att[i]);
	free(pd->text);
	free(pd);
	c->pend = NULL;
}

static void
on_sio_text(struct sio_conn *c, const char *msg, size_t len)
{
	struct sio_packet p;
	const char *err;
	char *copy;

	if (c->pend != NULL) {
		protocol_error(c, "a text packet while attachments were due");
		return;
	}
	if (sio_packet_parse(msg, len, &p, &err) == -1) {
		protocol_error(c, err);
		return;
	}
	if (p.nattach == 0) {
		dispatch(c, &p, NULL, 0);
		return;
	}
	/* Attachments follow as binary frames: keep the packet until they are in. */
	if ((c->pend = calloc(1, sizeof(*c->pend))) == NULL || (copy = malloc(len)) == NULL) {
		free(c->pend);
		c->pend = NULL;
		sio_conn_close(c, 1011, "out of memory");
		return;
	}
	memcpy(copy, msg, len);
	c->pend->text = copy;
	(void)sio_packet_parse(copy, len, &c->pend->pkt, &err);
}

static void
on_binary(struct sio_conn *c, const uint8_t *msg, size_t len)
{
	struct pending *pd = c->pend;
	unsigned char *copy;

	if (pd == NULL) {
		protocol_error(c, "binary data when no attachment was due");
		return;
	}
	if ((copy = malloc(len > 0 ? len : 1)) == NULL) {
		sio_conn_close(c, 1011, "out of memory");
		return;
	}
	memcpy(copy, msg, len);
	pd->att[pd->got] = copy;
	pd->attlen[pd->got++] = len;
	if (pd->got == pd->pkt.nattach)
		pending_done(c);
}

/* ---- Engine.IO ---- */

static void
ping_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sio_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->awaiting_pong) {
		/* Silent for ping_timeout_ms: the peer is gone or wedged. No close
		 * frame: nobody would read it. */
		c->s->fig.closed_ping++;
		sio_conn_free(c);
		return;
	}
	c->awaiting_pong = true;
	send_text(c, "2");
	event_add(c->timer, c->s->tv_pong);
}

static void
on_text(struct sio_conn *c, const uint8_t *msg, size_t len)
{
	if (len == 0) {
		protocol_error(c, "an empty Engine.IO packet");
		return;
	}
	switch (msg[0]) {
	case '4':
		on_sio_text(c, (const char *)msg + 1, len - 1);
		break;
	case '3':                    /* pong: the next ping after ping_interval_ms */
		if (len == 1 && c->awaiting_pong) {
			c->awaiting_pong = false;
			event_add(c->timer, c->s->tv_ping);
		}
		break;
	case '1':                    /* the client closes the session */
		if (c->fail == NULL) {
			c->fail = "the client closed the session";
			c->fail_code = 1000;
		}
		break;
	case '6':                    /* noop */
		break;
	default:                     /* a v4 client never pings, opens nor upgrades here */
		protocol_error(c, "an Engine.IO packet a client does not send");
	}
}

static void
ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct sio_conn *c = user;

	(void)ctx;
	if (wslay_is_ctrl_frame(arg->opcode) || c->closing || c->fail != NULL)
		return;                  /* wslay answers pings and closes itself */
	c->s->fig.frames_in++;
	if (arg->opcode == WSLAY_TEXT_FRAME)
		on_text(c, arg->msg, arg->msg_length);
	else
		on_binary(c, arg->msg, arg->msg_length);
}

/* ---- the socket's events ---- */

/* After wslay did its work: close what must close, watch what must be watched. */
static void
settle(struct sio_conn *c)
{
	if (c->ws == NULL) {         /* closing, and no memory to say so */
		sio_conn_free(c);
		return;
	}
	if (c->fail != NULL && !c->closing) {
		if (c->fail_code == 1002)
			c->s->fig.closed_protocol++;
		else
			c->s->fig.closed_client++;
		log_debug("socketio: closing a connection: %s", c->fail);
		sio_conn_close(c, c->fail_code, c->fail_code == 1002 ? "protocol error" : "");
	}
	if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
		sio_conn_free(c);        /* closed both ways */
		return;
	}
	if (!wslay_event_want_read(c->ws))
		event_del(c->rev);
	if (wslay_event_want_write(c->ws)) {
		if (!event_pending(c->wev, EV_WRITE, NULL))
			event_add(c->wev, NULL);
	} else
		event_del(c->wev);
	ws_park(c);
}

static void
conn_write(struct sio_conn *c)
{
	if (c->ws == NULL) {
		if (c->closing || c->fail != NULL)
			sio_conn_free(c);    /* a close it had no memory to queue */
		return;                  /* parked: nothing to send */
	}
	if (wslay_event_send(c->ws) != 0) {
		sio_conn_free(c);        /* the peer reset, or memory ran out */
		return;
	}
	settle(c);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct sio_conn *c = arg;
	int rc;

	(void)fd;
	(void)what;
	if (ws_context(c) == -1) {
		sio_conn_free(c);        /* out of memory: it cannot even be told */
		return;
	}
	if ((rc = wslay_event_recv(c->ws)) != 0) {
		log_debug("socketio: wslay_event_recv: %d%s", rc, c->eof ? " (the end)" : "");
		if (!c->eof && !c->closing) {
			/* A frame wslay could not parse: it says so with 1002, and reads no more. */
			c->s->fig.closed_protocol++;
			wslay_event_shutdown_read(c->ws);
			sio_conn_close(c, 1002, "protocol error");
			return;
		}
		if (!c->closing)
			c->s->fig.closed_client++;
		sio_conn_free(c);        /* EOF or a reset */
		return;
	}
	/* wslay may have queued a pong or the answer to a close: send it now. */
	conn_write(c);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_write(arg);
}

static void
connect_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sio_conn *c = arg;

	(void)fd;
	(void)what;
	c->s->fig.closed_connect++;
	sio_conn_close(c, 1000, "no CONNECT in time");
}

int
sio_conn_open(struct sio *s, int fd, struct evbuffer *in, struct evbuffer *out)
{
	const struct sio_conf *cf = s->conf;
	struct sio_conn *c = calloc(1, sizeof(*c));
	char open[256];

	if (c == NULL || (c->socks = calloc(cf->nnsp, sizeof(*c->socks))) == NULL)
		goto fail;
	c->s = s;
	c->fd = fd;
	c->in = in;
	c->out = out;
	if (evbuffer_get_length(out) == 0) {
		evbuffer_free(out);
		c->out = NULL;
	}
	if (evbuffer_get_length(in) == 0) {
		evbuffer_free(in);
		c->in = NULL;
	}
	in = out = NULL;
	if ((c->rev = event_new(s->w->base, fd, EV_READ | EV_PERSIST, on_readable, c)) == NULL ||
	    (c->wev = event_new(s->w->base, fd, EV_WRITE | EV_PERSIST, on_writable, c)) == NULL ||
	    (c->timer = evtimer_new(s->w->base, ping_fire, c)) == NULL ||
	    (c->connect_ev = evtimer_new(s->w->base, connect_fire, c)) == NULL)
		goto fail;
	TAILQ_INSERT_TAIL(&s->conns, c, link);
	s->nconns++;
	s->fig.connections_total++;
	if (event_add(c->rev, NULL) == -1 || event_add(c->timer, s->tv_ping) == -1 ||
	    event_add(c->connect_ev, s->tv_connect) == -1) {
		sio_conn_free(c);
		return -1;
	}
	{
		char sid[SIO_ID_LEN + 1];
		sio_random_id(sid);
		snprintf(open, sizeof(open), "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":%lld,"
		    "\"pingTimeout\":%lld,\"maxPayload\":%lld}", sid, cf->ping_interval_ms,
		    cf->ping_timeout_ms, cf->max_payload_bytes);
	}
	send_text(c, open);
	/* Bytes the client sent behind its upgrade request are read at once. */
	if (c->in != NULL)
		event_active(c->rev, EV_READ, 0);
	return 0;
fail:
	if (in != NULL)
		evbuffer_free(in);
	if (out != NULL)
		evbuffer_free(out);
	if (c != NULL) {
		if (c->in != NULL)
			evbuffer_free(c->in);
		if (c->out != NULL)
			evbuffer_free(c->out);
		if (c->rev != NULL)
			event_free(c->rev);
		if (c->wev != NULL)
			event_free(c->wev);
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->connect_ev != NULL)
			event_free(c->connect_ev);
		free(c->socks);
		free(c);
	}
	close(fd);
	return -1;
}

size_t
sio_conns_close(struct sio *s, size_t n, uint16_t code, const char *reason)
{
	struct sio_conn *c;
	size_t k = 0;

	/* Each one looked at moves to the end: the next call starts where this stopped. */
	for (size_t seen = 0; k < n && seen < s->nconns; seen++) {
		c = TAILQ_FIRST(&s->conns);
		TAILQ_REMOVE(&s->conns, c, link);
		TAILQ_INSERT_TAIL(&s->conns, c, link);
		if (!c->closing) {
			sio_conn_close(c, code, reason);
			k++;
		}
	}
	return k;
}

bool
sio_conn_closing(const struct sio_conn *c)
{
	return c->closing;
}
