/*
 * The hand-over of a connection to a service that speaks another protocol
 * on it (a WebSocket, say): the 101 answer, then the socket, the input that
 * followed the request and the unsent output change owner. From then on the
 * HTTP layer neither reads, writes, times out nor drains the connection: a
 * graceful stop reaches it through its service's drain hook.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/internal.h"

int
http_upgrade(struct http_req *req, struct http_upgraded *u)
{
	struct conn *c = reply_enter(req);
	struct evbuffer *in;

	req->status = 101;
	in = NULL;
	if (c == NULL || !req->upgrade || (in = evbuffer_new()) == NULL ||
	    evbuffer_add(in, c->pending, c->pending_len) == -1) {
		if (in != NULL)
			evbuffer_free(in);
		if (c != NULL && !req->upgrade) {
			/* Only a request that asked to switch protocols can be switched. */
			http_error(req, 400, "bad_request", "this request did not ask for an "
			    "upgrade (no Upgrade and Connection: upgrade headers)");
			conn_release(c);
		} else if (c != NULL) {
			/* No memory to hand it over with: answer as if refused. */
			c->close_after = 1;
			http_error(req, 503, "overloaded", "out of memory");
			conn_release(c);
		} else
			reply_done(req);     /* the client is gone */
		return -1;
	}
	write_head(c, req, 101, -1);
	reply_done(req);
	/* Most often the socket takes the head at once; the rest is the new owner's. */
	while (evbuffer_get_length(c->out) > 0 && evbuffer_write(c->out, c->fd) > 0)
		;
	if (c->corked) {             /* a file reply corked it: the new owner's frames go at once */
		int off = 0;
		setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
		c->corked = 0;
	}
	u->fd = c->fd;
	u->in = in;
	u->out = c->out;
	u->peer = c->peer;
	c->upgraded = 1;
	c->fd = -1;
	c->out = NULL;
	conn_release(c);             /* detaches it, now or when our callback unwinds */
	return 0;
}
