#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <dirent.h>
#include <netinet/in.h>

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "worker/accesslog.h"
#include "worker/http.h"

/*
 * Our side of a request. evhttp owns the evhttp_request; we own this, and
 * services hold a pointer to it until they reply.
 *
 * A request is "in flight" from dispatch until evhttp has written the last
 * byte of its reply (on_complete) or its connection went away (on_close),
 * whichever comes first. If the connection goes away before the service
 * replied, evhttp detaches the request instead of freeing it; the service's
 * reply then just frees it. A server connection carries at most one
 * request at a time, so its close callback names the request in flight.
 */
struct http_req {
	struct evhttp_request *ev;
	struct evhttp_connection *evcon;   /* NULL once the connection is gone */
	const char *service;               /* for the access log; NULL: router */
	struct timeval start;
	int status;
	uint64_t bytes;                    /* body bytes handed to evhttp */
	int replied;                       /* the service has finished */
	int completed;                     /* evhttp wrote the whole reply */
	int in_flight;                     /* on inflight_list */
	char client[64];                   /* for the access log */
	char *uri;
	TAILQ_ENTRY(http_req) link;
};

static TAILQ_HEAD(, http_req) inflight_list = TAILQ_HEAD_INITIALIZER(inflight_list);
static size_t inflight_count;
static uint64_t served;
static const struct limits_conf *limits;

/*
 * A graceful drain must not close a connection that was accepted but has
 * not sent its first request yet: its client has no reason to retry, so
 * closing it would fail a request. evhttp does not list its connections,
 * so we remember which descriptors have carried a request (set when a
 * request is dispatched, cleared when evhttp frees the connection); any
 * other TCP socket on one of our listening ports is such a fresh
 * connection, and the drain waits for it to send its request or to time
 * out. Idle keep-alive connections are closed: their clients retry.
 */
static uint8_t *used_fds;           /* one byte per descriptor number */
static size_t nused_fds;
static uint16_t listen_ports[64];
static size_t nlisten_ports;

#define DRAIN_POLL_MS 10

static struct {
	int active;
	struct event *timer;
	void (*done)(void *);
	void *arg;
} drain;

uint64_t
http_requests_served(void)
{
	return served;
}

size_t
http_in_flight(void)
{
	return inflight_count;
}

static void
mark_fd(int fd, uint8_t used)
{
	if (fd < 0)
		return;
	if ((size_t)fd >= nused_fds) {
		size_t n = (size_t)fd * 2 + 64;
		uint8_t *grown = realloc(used_fds, n);
		if (grown == NULL)
			return;
		memset(grown + nused_fds, 0, n - nused_fds);
		used_fds = grown;
		nused_fds = n;
	}
	used_fds[fd] = used;
}

static uint16_t
local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* Is fd a connection accepted on one of our ports that never sent a request? */
static int
is_fresh_connection(int fd)
{
	int listening = 0, type = 0;
	socklen_t len = sizeof(listening);
	uint16_t port;

	if ((size_t)fd < nused_fds && used_fds[fd])
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 || type != SOCK_STREAM)
		return 0;
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == -1 || listening)
		return 0;
	port = local_port(fd);
	for (size_t i = 0; i < nlisten_ports; i++)
		if (port != 0 && port == listen_ports[i])
			return 1;
	return 0;
}

static int
fresh_connections(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && n == 0) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != dirfd(d))
			n += is_fresh_connection(fd);
	}
	closedir(d);
	return n;
}

/* Runs from the loop: done() once nothing is in flight and no client waits. */
static void
drain_poll(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	(void)arg;
	if (inflight_count > 0 || fresh_connections() > 0) {
		evtimer_add(drain.timer, &tv);
		return;
	}
	event_free(drain.timer);
	drain.timer = NULL;
	drain.done(drain.arg);
}

int
http_drain(struct event_base *base, void (*done)(void *), void *arg)
{
	struct timeval now = { 0, 0 };

	if (drain.active)
		return 0;
	if ((drain.timer = evtimer_new(base, drain_poll, NULL)) == NULL)
		return -1;
	drain.active = 1;
	drain.done = done;
	drain.arg = arg;
	evtimer_add(drain.timer, &now);
	return 0;
}

static void
set_timeout(struct evhttp_connection *evcon, long long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evhttp_connection_set_timeout_tv(evcon, &tv);
}

static int
conn_fd(struct evhttp_connection *evcon)
{
	return bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
}

static void
leave_flight(struct http_req *r)
{
	if (!r->in_flight)
		return;
	TAILQ_REMOVE(&inflight_list, r, link);
	r->in_flight = 0;
	inflight_count--;
}

static void on_close(struct evhttp_connection *evcon, void *arg);

static const char *
method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "-";
	}
}

/* The request is over for us: log it and free our side. */
static void
finish(struct http_req *r)
{
	struct access_entry e;
	struct timeval now;

	leave_flight(r);
	served++;
	if (accesslog_enabled()) {
		gettimeofday(&now, NULL);
		e.client = r->client;
		e.method = method_name(evhttp_request_get_command(r->ev));
		e.uri = r->uri;
		e.status = r->evcon == NULL && !r->completed ? 499 : r->status;
		e.bytes = r->bytes;
		e.duration_us = (uint64_t)(now.tv_sec - r->start.tv_sec) * 1000000 +
		    (uint64_t)(now.tv_usec - r->start.tv_usec);
		e.service = r->service;
		accesslog_write(&e);
	}
	free(r->uri);
	free(r);
}

static void
on_complete(struct evhttp_request *req, void *arg)
{
	struct http_req *r = arg;

	(void)req;
	r->completed = 1;
	if (r->evcon != NULL) {
		/* The connection is idle now: the keep-alive timeout applies. */
		if (limits->keepalive_timeout_ms > 0)
			set_timeout(r->evcon, limits->keepalive_timeout_ms);
		evhttp_connection_set_closecb(r->evcon, on_close, NULL);
	}
	finish(r);
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct http_req *r = arg;

	mark_fd(conn_fd(evcon), 0);
	if (r == NULL)
		return;
	r->evcon = NULL;
	leave_flight(r);
	if (r->replied)         /* the reply could not be written: evhttp frees it */
		finish(r);
}

static struct http_req *
request_new(struct evhttp_request *ev)
{
	struct http_req *r = calloc(1, sizeof(*r));
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);

	if (r == NULL)
		return NULL;
	r->ev = ev;
	r->evcon = evcon;
	r->status = 200;
	gettimeofday(&r->start, NULL);
	if (accesslog_enabled()) {
		char *host = NULL;
		ev_uint16_t port = 0;
		const char *uri = evhttp_request_get_uri(ev);
		if (evcon != NULL)
			evhttp_connection_get_peer(evcon, &host, &port);
		snprintf(r->client, sizeof(r->client), "%s", host != NULL ? host : "-");
		r->uri = strdup(uri != NULL ? uri : "-");
	}
	TAILQ_INSERT_TAIL(&inflight_list, r, link);
	r->in_flight = 1;
	inflight_count++;
	evhttp_request_set_on_complete_cb(ev, on_complete, r);
	if (evcon != NULL) {
		mark_fd(conn_fd(evcon), 1);
		evhttp_connection_set_closecb(evcon, on_close, r);
		set_timeout(evcon, limits->read_timeout_ms);
	}
	return r;
}

void
http_req_set_service(struct http_req *req, const char *name)
{
	req->service = name;
}

int
http_req_gone(const struct http_req *req)
{
	return req->evcon == NULL;
}

/*
 * Marks the service's part done. Returns 1 if the reply should go to
 * evhttp, 0 if the client is gone (the request is freed here).
 */
static int
reply_done(struct http_req *r, int status)
{
	r->replied = 1;
	if (status != 0)
		r->status = status;
	if (r->evcon != NULL)
		return 1;
	evhttp_request_free(r->ev);     /* detached by evhttp: ours to free */
	finish(r);
	return 0;
}

enum http_method
http_req_method(struct http_req *req)
{
	switch (evhttp_request_get_command(req->ev)) {
	case EVHTTP_REQ_GET: return HTTP_GET;
	case EVHTTP_REQ_HEAD: return HTTP_HEAD;
	case EVHTTP_REQ_POST: return HTTP_POST;
	case EVHTTP_REQ_PUT: return HTTP_PUT;
	case EVHTTP_REQ_DELETE: return HTTP_DELETE;
	case EVHTTP_REQ_OPTIONS: return HTTP_OPTIONS;
	case EVHTTP_REQ_PATCH: return HTTP_PATCH;
	default: return HTTP_OTHER;
	}
}

const char *
http_req_path(struct http_req *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->ev);

	return uri != NULL ? evhttp_uri_get_path(uri) : NULL;
}

void
http_req_add_header(struct http_req *req, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(req->ev), name, value);
}

struct http_params {
	struct evkeyvalq q;
};

struct http_params *
http_params_parse(struct http_req *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->ev);
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct http_params *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	TAILQ_INIT(&p->q);
	if (query != NULL && evhttp_parse_query_str(query, &p->q) != 0) {
		http_params_free(p);
		return NULL;
	}
	return p;
}

const char *
http_params_get(const struct http_params *p, const char *key)
{
	return evhttp_find_header(&p->q, key);
}

void
http_params_free(struct http_params *p)
{
	if (p == NULL)
		return;
	evhttp_clear_headers(&p->q);
	free(p);
}

static void
add_common_headers(struct http_req *req, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req->ev);

	evhttp_add_header(h, "Content-Type", type);
	if (drain.active || limits->keepalive_timeout_ms == 0)
		evhttp_add_header(h, "Connection", "close");
}

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return NULL;   /* evhttp picks the standard phrase */
	}
}

void
http_reply(struct http_req *req, int status, const char *body, size_t len)
{
	struct evhttp_request *ev = req->ev;
	struct evbuffer *buf;
	char clen[24];

	add_common_headers(req, "application/json");
	if (http_req_method(req) == HTTP_HEAD) {
		/* evhttp would send the body of a HEAD reply: send the length only. */
		snprintf(clen, sizeof(clen), "%zu", len);
		http_req_add_header(req, "Content-Length", clen);
		len = 0;
	}
	req->bytes += len;
	/* After reply_done, req may be gone: only ev is used below. */
	if (!reply_done(req, status))
		return;
	if ((buf = evbuffer_new()) != NULL)
		evbuffer_add(buf, body, len);
	evhttp_send_reply(ev, status, reason(status), buf);
	if (buf != NULL)
		evbuffer_free(buf);
}

void
http_json_quote(struct evbuffer *buf, const char *s)
{
	evbuffer_add(buf, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			evbuffer_add_printf(buf, "\\%c", c);
		else if (c < 0x20)
			evbuffer_add_printf(buf, "\\u%04x", c);
		else
			evbuffer_add(buf, s, 1);
	}
	evbuffer_add(buf, "\"", 1);
}

void
http_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	struct evbuffer *buf = evbuffer_new();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (buf == NULL) {
		http_reply(req, status, "{}", 2);
		return;
	}
	evbuffer_add_printf(buf, "{\"error\":{\"status\":%d,\"code\":\"%s\",\"message\":",
	    status, code);
	http_json_quote(buf, msg);
	evbuffer_add(buf, "}}", 2);
	http_reply(req, status, (const char *)evbuffer_pullup(buf, -1), evbuffer_get_length(buf));
	evbuffer_free(buf);
}

void
http_stream_start(struct http_req *req, int status)
{
	req->status = status;
	if (req->evcon == NULL)
		return;
	add_common_headers(req, "application/json");
	evhttp_send_reply_start(req->ev, status, reason(status));
}

void
http_stream_chunk(struct http_req *req, struct evbuffer *buf)
{
	if (req->evcon == NULL || http_req_method(req) == HTTP_HEAD) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return;
	}
	req->bytes += evbuffer_get_length(buf);
	evhttp_send_reply_chunk(req->ev, buf);
}

size_t
http_stream_pending(struct http_req *req)
{
	struct bufferevent *bev;

	if (req->evcon == NULL || (bev = evhttp_connection_get_bufferevent(req->evcon)) == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(bev));
}

void
http_stream_end(struct http_req *req)
{
	struct evhttp_request *ev = req->ev;

	if (reply_done(req, 0))
		evhttp_send_reply_end(ev);
}

void
http_drop(struct http_req *req)
{
	if (req->evcon == NULL)
		reply_done(req, 0);
	else
		http_error(req, 503, "shutting_down", "the server is shutting down");
}

/* evhttp hands every request to this, and it to the router. */
struct handler_ctx {
	http_handler handler;
	void *arg;
};
static struct handler_ctx handler_ctx;

static void
on_request(struct evhttp_request *ev, void *arg)
{
	struct handler_ctx *h = arg;
	struct http_req *r = request_new(ev);

	if (r == NULL) {
		evhttp_send_error(ev, 503, "Service Unavailable");
		return;
	}
	h->handler(r, h->arg);
}

struct evhttp *
http_server_new(struct event_base *base, const struct limits_conf *lim,
    http_handler handler, void *arg)
{
	struct evhttp *http = evhttp_new(base);

	if (http == NULL)
		return NULL;
	limits = lim;
	evhttp_set_max_headers_size(http, lim->max_header_bytes);
	evhttp_set_max_body_size(http, lim->max_body_bytes);
	/* Until the first request arrives, a connection gets the read timeout. */
	evhttp_set_timeout_tv(http, &(struct timeval){ .tv_sec = lim->read_timeout_ms / 1000,
	    .tv_usec = (lim->read_timeout_ms % 1000) * 1000 });
	/* Accept every method, so that the router answers 405 in JSON itself. */
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
	    EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	handler_ctx = (struct handler_ctx){ handler, arg };
	evhttp_set_gencb(http, on_request, &handler_ctx);
	return http;
}

int
http_server_listen(struct evhttp *http, const int *fds, size_t nfds)
{
	for (size_t i = 0; i < nfds; i++) {
		if (nlisten_ports < sizeof(listen_ports) / sizeof(listen_ports[0]))
			listen_ports[nlisten_ports++] = local_port(fds[i]);
		if (evhttp_accept_socket_with_handle(http, fds[i]) == NULL) {
			log_error("cannot accept on socket %d", fds[i]);
			return -1;
		}
	}
	return 0;
}

static void
first_bound(struct evhttp_bound_socket *bound, void *arg)
{
	struct evhttp_bound_socket **first = arg;

	if (*first == NULL)
		*first = bound;
}

void
http_server_stop_accepting(struct evhttp *http)
{
	struct evhttp_bound_socket *bound;

	/*
	 * Closing our copy of a listening socket leaves the master's copy open:
	 * connections still queued on it wait for the next worker of the slot.
	 */
	for (;;) {
		bound = NULL;
		evhttp_foreach_bound_socket(http, first_bound, &bound);
		if (bound == NULL)
			break;
		evhttp_del_accept_socket(http, bound);
	}
}
