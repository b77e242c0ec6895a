#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "worker/http.h"

/*
 * A request in flight: dispatched to a service and not yet completely
 * written to the client. evhttp tells us when the last byte of a reply is
 * written (on_complete) and when a connection goes away (closecb); a request
 * leaves the list at whichever comes first. A server connection carries at
 * most one request at a time, so the connection identifies the request.
 */
struct inflight {
	struct http_req *req;
	struct evhttp_connection *evcon;
	TAILQ_ENTRY(inflight) link;
};

static TAILQ_HEAD(, inflight) inflight_list = TAILQ_HEAD_INITIALIZER(inflight_list);
static size_t inflight_count;
static uint64_t served;
static int draining;
static void (*drain_done)(void *);
static void *drain_arg;
static struct event_base *drain_base;
static const struct limits_conf *limits;

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
drain_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (drain_done != NULL) {
		void (*done)(void *) = drain_done;
		drain_done = NULL;
		done(drain_arg);
	}
}

/* Runs done() from the loop, never from inside an evhttp callback. */
static void
drain_check(void)
{
	if (draining && inflight_count == 0 && drain_done != NULL)
		event_base_once(drain_base, -1, EV_TIMEOUT, drain_fire, NULL, NULL);
}

void
http_drain(struct event_base *base, void (*done)(void *), void *arg)
{
	draining = 1;
	drain_base = base;
	drain_done = done;
	drain_arg = arg;
	drain_check();
}

static void
inflight_remove(struct inflight *f)
{
	TAILQ_REMOVE(&inflight_list, f, link);
	inflight_count--;
	free(f);
	drain_check();
}

static void
set_timeout(struct evhttp_connection *evcon, long long ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evhttp_connection_set_timeout_tv(evcon, &tv);
}

/* The one place a service's request becomes evhttp's and back. */
static struct evhttp_request *
ev(struct http_req *req)
{
	return (struct evhttp_request *)req;
}

static void
on_complete(struct evhttp_request *req, void *arg)
{
	struct inflight *f = arg;

	(void)req;
	served++;
	/* The connection is idle now: the keep-alive timeout applies. */
	if (f->evcon != NULL && limits->keepalive_timeout_ms > 0)
		set_timeout(f->evcon, limits->keepalive_timeout_ms);
	inflight_remove(f);
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
	struct inflight *f;

	(void)arg;
	TAILQ_FOREACH(f, &inflight_list, link) {
		if (f->evcon == evcon) {
			inflight_remove(f);
			return;
		}
	}
}

void
http_request_begin(struct http_req *req)
{
	struct inflight *f = calloc(1, sizeof(*f));
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev(req));

	if (f == NULL)
		return;         /* not tracked: a drain will not wait for it */
	f->req = req;
	f->evcon = evcon;
	TAILQ_INSERT_TAIL(&inflight_list, f, link);
	inflight_count++;
	evhttp_request_set_on_complete_cb(ev(req), on_complete, f);
	if (evcon != NULL) {
		evhttp_connection_set_closecb(evcon, on_close, NULL);
		set_timeout(evcon, limits->read_timeout_ms);
	}
}

enum http_method
http_req_method(struct http_req *req)
{
	switch (evhttp_request_get_command(ev(req))) {
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
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev(req));

	return uri != NULL ? evhttp_uri_get_path(uri) : NULL;
}

void
http_req_add_header(struct http_req *req, const char *name, const char *value)
{
	evhttp_add_header(evhttp_request_get_output_headers(ev(req)), name, value);
}

struct http_params {
	struct evkeyvalq q;
};

struct http_params *
http_params_parse(struct http_req *req)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev(req));
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
	struct evkeyvalq *h = evhttp_request_get_output_headers(ev(req));

	evhttp_add_header(h, "Content-Type", type);
	if (draining || limits->keepalive_timeout_ms == 0)
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
	struct evbuffer *buf = evbuffer_new();
	char clen[24];

	add_common_headers(req, "application/json");
	if (http_req_method(req) == HTTP_HEAD) {
		/* evhttp would send the body of a HEAD reply: send the length only. */
		snprintf(clen, sizeof(clen), "%zu", len);
		http_req_add_header(req, "Content-Length", clen);
	} else if (buf != NULL) {
		evbuffer_add(buf, body, len);
	}
	evhttp_send_reply(ev(req), status, reason(status), buf);
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
		evhttp_send_error(ev(req), status, NULL);
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
	add_common_headers(req, "application/json");
	evhttp_send_reply_start(ev(req), status, reason(status));
}

void
http_stream_chunk(struct http_req *req, struct evbuffer *buf)
{
	if (http_req_method(req) == HTTP_HEAD)
		evbuffer_drain(buf, evbuffer_get_length(buf));
	else
		evhttp_send_reply_chunk(ev(req), buf);
}

void
http_stream_end(struct http_req *req)
{
	evhttp_send_reply_end(ev(req));
}

/* evhttp hands every request to this, and it to the router. */
struct handler_ctx {
	http_handler handler;
	void *arg;
};
static struct handler_ctx handler_ctx;

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct handler_ctx *h = arg;

	h->handler((struct http_req *)req, h->arg);
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
