/*
 * Connections: each is a non-blocking socket with one read event and one
 * write event on the worker's loop. A read goes into one buffer shared by
 * the whole worker and is parsed at once; replies are appended to the
 * connection's output buffer and written with one writev() once all the
 * input at hand is processed, so a keep-alive request costs one read() and
 * one write(), as in nginx. The write event is only armed when the kernel
 * buffer is full. Timeouts, lingering close and the end of a connection
 * live here too.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/time.h"
#include "http/internal.h"

#define READ_BUF_SIZE (64 * 1024)
#define LINGER_PAUSE_MS 2000         /* lingering close: the longest pause in the input */
#define LINGER_TIME_MS 10000         /* lingering close: the longest in all */
#define REAP_SCAN 64                 /* connections looked at for an idle one to close */

static char read_buf[READ_BUF_SIZE];

static void
set_timer(struct conn *c, enum ctimer t)
{
	const struct timeval *tv = t == T_READ ? c->srv->read_tv :
	    t == T_KEEPALIVE ? (c->srv->draining ? c->srv->grace_tv : c->srv->keepalive_tv) :
	    NULL;

	if (c->timer == t || c->paused)
		return;
	c->timer = t;
	/* event_add() with no time leaves an old timeout in place: remove it. */
	if (tv == NULL)
		event_remove_timer(c->rev);
	else
		event_add(c->rev, tv);
}


void
fire_drain(struct http_req *r)
{
	void (*cb)(void *) = r->drain_cb;

	r->drain_cb = NULL;
	cb(r->drain_arg);
}

/*
 * Writes what it can; 0 if that closed the connection (c is freed then).
 * Memory goes out with writev(), a file segment (http_reply_file()) with
 * sendfile(), which libevent makes return 0, not -1, when the socket is
 * full: errno tells that apart from a file that ended early.
 */
static int
write_out(struct conn *c)
{
	while (evbuffer_get_length(c->out) > 0) {
		errno = 0;
		int n = evbuffer_write(c->out, c->fd);
		if (n > 0 || errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			event_add(c->wev, c->srv->read_tv);
			return 1;
		}
		/*
		 * The peer is gone, or sendfile() found the file shorter than
		 * the Content-Length already sent (it was truncated): only a
		 * close tells the client that the body is incomplete.
		 */
		conn_close(c);
		return 0;
	}
	if (c->corked) {             /* all out: the last partial segment goes now */
		int off = 0;
		setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
		c->corked = 0;
	}
	return 1;
}

/*
 * A request under way must be in by its deadline, however steadily it
 * trickles: the read timeout measures silence only, so the event's timeout
 * is the nearer of the two, set again after every read. Only a request
 * split across reads comes here; one that arrives whole never does.
 */
static void
arm_deadline(struct conn *c)
{
	uint64_t now = now_ms();
	long long left;
	struct timeval tv;

	if (c->deadline == 0)
		c->deadline = now + (uint64_t)(c->in_body ? c->srv->lim.body_timeout_ms :
		    c->srv->lim.header_timeout_ms);
	left = c->deadline > now ? (long long)(c->deadline - now) : 0;
	/* which of the two the timeout is: libevent's clock and ours round differently */
	c->timer = left <= c->srv->lim.read_timeout_ms ? T_DEADLINE : T_READ;
	if (left > c->srv->lim.read_timeout_ms)
		left = c->srv->lim.read_timeout_ms;
	tv = ms_tv(left);
	event_add(c->rev, &tv);
}

/*
 * Reading stops while a client has much unanswered input or unread output
 * with us, so that no client can make a worker buffer without bound; it
 * also stops for good at end of file.
 */
static void
update_reading(struct conn *c)
{
	int want = !c->read_closed && c->pending_len <= PIPELINE_MAX &&
	    evbuffer_get_length(c->out) <= OUTPUT_MAX;

	if (want && c->paused) {
		c->paused = 0;
		c->timer = T_NONE;       /* set_timer() below re-adds the event */
	} else if (!want && !c->paused) {
		c->paused = 1;
		event_del(c->rev);
	}
	/* Idle between requests: keepalive; a request under way: its deadline; in service: none. */
	if (c->paused)
		return;
	if (c->state == C_READING)
		arm_deadline(c);
	else
		set_timer(c, c->state == C_SERVICE ? T_NONE : T_KEEPALIVE);
}

/*
 * Leaves a callback of ours. This is where a connection moves on: it
 * writes what is pending, answers input that waited behind a request or
 * behind unread output, closes when it is done, and tells a waiting stream
 * that the output drained.
 */
void
conn_release(struct conn *c)
{
	struct http_req *r;

	if (--c->busy > 0)
		return;
	if (c->upgraded) {
		conn_detach(c);
		return;
	}
	for (;;) {
		if (c->dead) {
			conn_close(c);
			return;
		}
		if (!write_out(c))
			return;
		if (c->state == C_SERVICE || c->pending_len == 0 || c->close_after ||
		    evbuffer_get_length(c->out) > OUTPUT_MAX)
			break;
		char *pending = c->pending;
		size_t len = c->pending_len;
		c->pending = NULL;
		c->pending_len = 0;
		c->busy++;
		process(c, pending, len);
		c->busy--;
		free(pending);
		if (c->upgraded) {       /* a request that waited was handed over */
			conn_detach(c);
			return;
		}
	}
	if (evbuffer_get_length(c->out) == 0 && c->state != C_SERVICE &&
	    (c->close_after || (c->read_closed && c->pending_len == 0))) {
		if (c->linger)
			conn_linger(c);
		else
			conn_close(c);
		return;
	}
	update_reading(c);
	r = c->state == C_SERVICE ? c->req : NULL;
	if (r != NULL && r->drain_cb != NULL && evbuffer_get_length(c->out) <= r->drain_below)
		fire_drain(r);           /* last: it may write more, and so free c */
}

/*
 * End of file: no further request will come. What was received is still
 * answered (a client may half-close after sending), then the connection
 * closes; a request cut off halfway can never complete.
 */
void
conn_on_eof(struct conn *c)
{
	c->read_closed = 1;
	if (c->state == C_READING)
		c->close_after = 1;
	if (!c->paused) {
		c->paused = 1;
		event_del(c->rev);
	}
}

/* Lingers for ms from now at the most, waiting LINGER_PAUSE_MS at the most for input. */
int
conn_linger_for(struct conn *c, long long ms)
{
	struct timeval left = ms_tv(ms);
	struct timeval pause = ms_tv(ms < LINGER_PAUSE_MS ? ms : LINGER_PAUSE_MS);
	struct timeval now;

	event_base_gettimeofday_cached(c->srv->base, &now);
	timeradd(&now, &left, &c->linger_end);
	return event_add(c->rev, &pause);
}

/*
 * Closing a socket with unread input makes the kernel answer with a reset,
 * which can destroy our reply before the client has read it, and makes the
 * client's own send fail: a client sending a body over max_body_bytes would
 * see "connection reset" instead of the 413. So after an error the reply is
 * followed by a shutdown of our side only, and what the client still sends is
 * read and dropped until it closes, pauses for LINGER_PAUSE_MS, or
 * LINGER_TIME_MS have passed (nginx's lingering_close does the same).
 */
void
conn_linger(struct conn *c)
{
	if (shutdown(c->fd, SHUT_WR) == -1) {
		conn_close(c);
		return;
	}
	event_del(c->wev);           /* nothing is left to write */
	c->lingering = 1;
	c->paused = 0;
	c->timer = T_NONE;
	if (conn_linger_for(c, c->srv->draining ? c->srv->grace_ms : LINGER_TIME_MS) == -1)
		conn_close(c);
}

/* One read a wakeup, so that a fast sender cannot hold the loop. */
static void
linger_read(struct conn *c, short what)
{
	struct timeval now;
	ssize_t n;

	event_base_gettimeofday_cached(c->srv->base, &now);
	if (what & EV_TIMEOUT || !timercmp(&now, &c->linger_end, <)) {
		conn_close(c);
		return;
	}
	n = read(c->fd, read_buf, sizeof(read_buf));
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		conn_close(c);
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;

	if (c->lingering) {
		linger_read(c, what);
		return;
	}
	c->busy++;
	if (c->state == C_READING && c->deadline != 0 &&
	    ((what & EV_TIMEOUT) ? c->timer == T_DEADLINE : now_ms() >= c->deadline)) {
		request_timeout(c);      /* whatever came, it came too late */
	} else if (what & EV_TIMEOUT) {
		/* Idle or too slow to send; a reply still being written has its own timeout. */
		if (evbuffer_get_length(c->out) == 0)
			conn_close(c);
	} else if ((n = read(fd, read_buf, sizeof(read_buf))) > 0) {
		process(c, read_buf, (size_t)n);
	} else if (n == 0) {
		conn_on_eof(c);
	} else if (errno != EAGAIN && errno != EINTR) {
		conn_close(c);
	}
	conn_release(c);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		conn_close(c);
		return;
	}
	c->busy++;
	conn_release(c);             /* flushes */
}

void
conn_drain_check(struct http_server *srv)
{
	if (srv->draining && srv->nconns == 0 && srv->drain_ev != NULL)
		event_active(srv->drain_ev, EV_TIMEOUT, 0);
}

void
conn_close(struct conn *c)
{
	struct http_server *srv = c->srv;

	if (c->busy > 0) {           /* freed when the callback unwinds */
		if (!c->dead) {
			c->dead = 1;
			event_del(c->rev);
			event_del(c->wev);
		}
		return;
	}
	struct http_req *gone = NULL;

	if (c->req != NULL) {
		if (c->state == C_SERVICE) {
			gone = c->req;
			gone->conn = NULL;       /* the service's reply frees it */
		} else
			req_free(c->req);
	}
	event_free(c->rev);
	event_free(c->wev);
	evbuffer_free(c->out);
	close(c->fd);
	free(c->pending);
	TAILQ_REMOVE(&srv->conns, c, link);
	srv->nconns--;
	free(c);
	conn_drain_check(srv);
	server_room(srv);
	if (gone != NULL && gone->drain_cb != NULL)
		fire_drain(gone);        /* a waiting stream learns the client left */
}

/* Idle and between requests: (re)arms the keep-alive timer, the drain's grace if draining. */
void
conn_set_keepalive_timer(struct conn *c)
{
	if (c->state == C_IDLE && c->timer == T_KEEPALIVE && !c->paused) {
		c->timer = T_NONE;
		set_timer(c, T_KEEPALIVE);
	}
}

/*
 * http_upgrade(): the connection leaves the server, which forgets it
 * without closing its socket or freeing its output (both handed over).
 */
void
conn_detach(struct conn *c)
{
	struct http_server *srv = c->srv;

	event_free(c->rev);
	event_free(c->wev);
	free(c->pending);
	TAILQ_REMOVE(&srv->conns, c, link);
	srv->nconns--;
	free(c);
	conn_drain_check(srv);
	server_room(srv);
}

/*
 * The oldest connection idle between requests, which max_connections
 * closes to make room (nginx reuses its keep-alive connections the same
 * way), looking at the oldest few only; NULL if none.
 */
struct conn *
conn_idle_oldest(struct http_server *srv)
{
	struct conn *c;
	int looked = 0;

	TAILQ_FOREACH(c, &srv->conns, link) {
		if (++looked > REAP_SCAN)
			break;
		if (c->state == C_IDLE && c->timer == T_KEEPALIVE && c->busy == 0 &&
		    c->pending_len == 0 && evbuffer_get_length(c->out) == 0)
			return c;
	}
	return NULL;
}

void
conn_new(struct http_server *srv, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	int on = 1;

	if (c == NULL || (c->out = evbuffer_new()) == NULL ||
	    (c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_read, c)) == NULL ||
	    (c->wev = event_new(srv->base, fd, EV_WRITE, on_write, c)) == NULL) {
		if (c != NULL) {
			if (c->rev != NULL)
				event_free(c->rev);
			if (c->out != NULL)
				evbuffer_free(c->out);
		}
		free(c);
		close(fd);
		return;
	}
	/* http_reply_file(): file segments go out with sendfile(), never read in. */
	evbuffer_set_flags(c->out, EVBUFFER_FLAG_DRAINS_TO_FD);
	/* Replies go out whole in one write: Nagle would only delay streams. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c->srv = srv;
	c->fd = fd;
	c->peer = *peer;
	parse_init(c);
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	srv->nconns++;
	c->timer = T_READ;
	event_add(c->rev, srv->read_tv);
	/* The listening sockets defer accept until data arrives: read it now. */
	on_read(fd, EV_READ, c);
}

