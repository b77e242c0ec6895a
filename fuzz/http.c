/*
 * The HTTP connection code fed arbitrary bytes in arbitrary splits: the real
 * path from a socket's read to a reply (conn.c, parse.c, request.c,
 * reply.c), on a real loop. The first bytes of the input choose the sizes
 * of the writes; a handler answers plainly, streams, reads the query and
 * headers, or takes an upgrade, by the path.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "http/internal.h"

static struct event_base *base;
static struct http_server *srv;

static void
handler(struct http_req *r, void *arg)
{
	const char *path = http_req_path(r), *n, *v;
	struct http_params *q;
	struct http_upgraded up;
	size_t len;

	(void)arg;
	if (strncmp(path, "/up", 3) == 0) {
		http_req_add_header(r, "Upgrade", "test");
		if (http_upgrade(r, &up) == 0) {
			close(up.fd);
			evbuffer_free(up.in);
			evbuffer_free(up.out);
		}
		return;
	}
	if (strncmp(path, "/st", 3) == 0) {
		struct evbuffer *b = evbuffer_new();
		http_stream_start(r, 200);
		if (b != NULL) {
			evbuffer_add(b, "chunk", 5);
			http_stream_chunk(r, b);
			evbuffer_free(b);
		}
		http_stream_end(r);
		return;
	}
	if ((q = http_params_parse(r)) == NULL) {
		http_error(r, 400, "bad_query", "bad query");
		return;
	}
	(void)http_params_get(q, "a");
	http_params_free(q);
	for (size_t i = 0; http_req_header_at(r, i, &n, &v) == 0; i++)
		;
	(void)http_req_body(r, &len);
	http_reply(r, 200, "{}", 2);
}

static void
setup(void)
{
	struct http_limits lim = { .max_header_bytes = 8192, .max_body_bytes = 65536,
	    .read_timeout_ms = 1000, .keepalive_timeout_ms = 1000, .header_timeout_ms = 1000,
	    .body_timeout_ms = 1000, .max_connections = 16 };

	signal(SIGPIPE, SIG_IGN);    /* as in the worker: a client gone is an error, not a death */
	if ((base = event_base_new()) == NULL ||
	    (srv = http_server_new(base, &lim, handler, NULL)) == NULL)
		abort();
}

static void
turn(int peer)
{
	char sink[65536];

	for (int i = 0; i < 2; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		while (read(peer, sink, sizeof(sink)) > 0)
			;            /* the replies: read, so that output never piles up */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage peer = { .ss_family = AF_UNIX };
	unsigned seed;
	int sv[2];

	if (base == NULL)
		setup();
	if (size < 2)
		return 0;
	seed = (unsigned)data[0] << 8 | data[1];
	data += 2;
	size -= 2;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	conn_new(srv, sv[1], &peer);
	while (size > 0) {
		size_t n = 1 + (seed % 97);
		ssize_t w;
		seed = seed * 1103515245u + 12345u;
		if (n > size)
			n = size;
		if ((w = write(sv[0], data, n)) <= 0) {
			if (errno != EAGAIN)
				break;   /* the worker closed the connection */
			turn(sv[0]);     /* the socket is full: let the worker read */
			continue;
		}
		data += w;
		size -= (size_t)w;
		turn(sv[0]);
	}
	shutdown(sv[0], SHUT_WR);
	for (int i = 0; i < 16 && http_server_connections(srv) > 0; i++)
		turn(sv[0]);
	close(sv[0]);
	for (int i = 0; i < 16 && http_server_connections(srv) > 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	/* Whatever the input, the connection is gone once the client is. */
	if (http_server_connections(srv) != 0)
		abort();
	return 0;
}
