/*
 * The HTTP/1.1 server of a worker.
 *
 * Each connection is a non-blocking socket with one read event and one
 * write event on the worker's loop. A read goes into one buffer shared by
 * the whole worker and is parsed at once by http_parser (Node's C parser),
 * which copes with requests split across reads; pipelined requests are
 * answered in order, one at a time. Replies are appended to the
 * connection's output buffer and written with one writev() once all the
 * input at hand is processed, so a keep-alive request costs one read() and
 * one write(), as in nginx. The write event is only armed when the kernel
 * buffer is full.
 *
 * A connection is IDLE (between requests), READING (a request has begun)
 * or in SERVICE (a service holds its request). While in SERVICE, further
 * input is kept aside until the reply is done. If the connection dies while
 * a service holds the request, the request is "gone": the service's reply
 * then only frees it.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include "common/json.h"
#include "common/log.h"
#include "common/time.h"
#include "worker/accesslog.h"
#include "http/http.h"

#define READ_BUF_SIZE (64 * 1024)
#define PIPELINE_MAX (256 * 1024)    /* pipelined input kept behind a request */
#define OUTPUT_MAX (256 * 1024)      /* replies a client has not read yet */
#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100          /* out of descriptors: wait before accepting */
#define EXTRA_HEADERS 256
#define NO_METHOD UINT_MAX           /* the request line was not understood */
#define DRAIN_GRACE_MS 1000          /* idle keep-alive while draining */
#define LINGER_PAUSE_MS 2000         /* lingering close: the longest pause in the input */
#define LINGER_TIME_MS 10000         /* lingering close: the longest in all */

enum cstate { C_IDLE, C_READING, C_SERVICE };
enum ctimer { T_NONE, T_READ, T_KEEPALIVE };

struct conn {
	struct http_server *srv;
	int fd;
	struct event *rev, *wev;
	http_parser parser;
	struct evbuffer *out;
	char *pending;               /* input that arrived behind a request in service */
	size_t pending_len;
	struct http_req *req;        /* being read, or in service */
	enum cstate state;
	enum ctimer timer;
	int close_after;             /* close once the output is written */
	int read_closed;             /* end of file, or no further request wanted */
	int paused;                  /* reading stopped: see update_reading() */
	int busy;                    /* inside one of our callbacks: defer the free */
	int dead;                    /* closed while busy */
	int linger;                  /* close through conn_linger() */
	int lingering;               /* only discarding input until it ends */
	struct timeval linger_end;
	size_t header_bytes;
	uint64_t body_bytes;
	int limit_status;            /* 413 or 431 found by a parser callback */
	char hname[16];              /* the current header name, if short */
	size_t hname_len;
	int in_value, expect_continue;
	char expect[12];             /* the start of an Expect value, maybe split across reads */
	size_t expect_len;
	struct sockaddr_storage peer;
	TAILQ_ENTRY(conn) link;
};

struct http_req {
	struct conn *conn;           /* NULL once the connection is gone */
	enum http_verb method;
	unsigned method_code;        /* http_parser's, for the access log */
	char *url;                   /* url_inline, or the heap for a long target */
	size_t url_len, url_cap;
	const char *path, *query;    /* into url, once split */
	int keep_alive, http10, head;
	int streaming;
	void (*drain_cb)(void *);    /* http_stream_on_drain() */
	void *drain_arg;
	size_t drain_below;
	char extra[EXTRA_HEADERS];   /* headers a service added */
	size_t extra_len;
	const char *service;
	struct timeval start;
	int status;
	uint64_t bytes;
	char client[INET6_ADDRSTRLEN];
	char url_inline[256];
	struct http_req *next_free;
};

struct http_server {
	struct event_base *base;
	const struct limits_conf *lim;
	http_handler handler;
	void *arg;
	struct event **lev;
	size_t nlev;
	struct event *accept_resume;
	TAILQ_HEAD(, conn) conns;
	size_t nconns;
	const struct timeval *read_tv, *keepalive_tv;
	const struct timeval *grace_tv;      /* keep-alive while draining */
	long long grace_ms;                  /* the same, for lingering connections */
	int draining;
	void (*drain_done)(void *);
	void *drain_arg;
	struct event *drain_ev;
};

static char read_buf[READ_BUF_SIZE];
static uint64_t served;
static size_t in_flight;

static void conn_close(struct conn *c);
static void conn_linger(struct conn *c);
static void on_eof(struct conn *c);
static void process(struct conn *c, const char *data, size_t len);

uint64_t
http_requests_served(void)
{
	return served;
}

size_t
http_in_flight(void)
{
	return in_flight;
}

/* ---- timers ---- */

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

/* ---- requests ---- */

/*
 * Requests are recycled through a short free list: a keep-alive request
 * then costs no malloc at all, and a target that fits url_inline none
 * either.
 */
#define FREE_REQS_MAX 64
static struct http_req *free_reqs;
static int nfree_reqs;

static struct http_req *
req_new(struct conn *c)
{
	struct http_req *r = free_reqs;

	if (r != NULL) {
		free_reqs = r->next_free;
		nfree_reqs--;
		memset(r, 0, offsetof(struct http_req, url_inline));
	} else if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->conn = c;
	r->status = 200;
	r->method_code = NO_METHOD;
	r->url = r->url_inline;
	r->url_cap = sizeof(r->url_inline);
	r->url_inline[0] = '\0';
	if (accesslog_enabled())
		gettimeofday(&r->start, NULL);
	return r;
}

static void
req_free(struct http_req *r)
{
	if (r->url != r->url_inline)
		free(r->url);
	if (nfree_reqs < FREE_REQS_MAX) {
		r->next_free = free_reqs;
		free_reqs = r;
		nfree_reqs++;
	} else
		free(r);
}

static const char *
reason(int status)
{
	switch (status) {
	case 100: return "Continue";
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
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* "Date: ...\r\n", formatted once a second. */
static const char *
date_header(struct event_base *base)
{
	static char buf[64];
	static time_t last;
	struct timeval tv;
	struct tm tm;

	event_base_gettimeofday_cached(base, &tv);
	if (tv.tv_sec != last) {
		last = tv.tv_sec;
		gmtime_r(&last, &tm);
		strftime(buf, sizeof(buf), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	}
	return buf;
}

static void
client_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "-");
}

static const char *
method_name(const struct http_req *r)
{
	return r->method_code == NO_METHOD ? "-" : http_method_str((enum http_method)r->method_code);
}

static void
log_access(const struct http_req *r)
{
	struct access_entry e;
	struct timeval now;
	char uri[4096];

	if (!accesslog_enabled())
		return;
	gettimeofday(&now, NULL);
	/* The target was split at '?' in place: join it again. */
	if (r->path != NULL)
		snprintf(uri, sizeof(uri), "%s%s%s", r->path, r->query ? "?" : "",
		    r->query ? r->query : "");
	else
		snprintf(uri, sizeof(uri), "%s", r->url != NULL ? r->url : "-");
	e.client = r->client;
	e.protocol = r->http10 ? "HTTP/1.0" : "HTTP/1.1";
	e.method = method_name(r);
	e.uri = uri;
	/* 499, as nginx logs it: the client went away before the answer. */
	e.status = r->conn == NULL ? 499 : r->status;
	e.bytes = r->bytes;
	e.duration_us = (uint64_t)(now.tv_sec - r->start.tv_sec) * 1000000 +
	    (uint64_t)now.tv_usec - (uint64_t)r->start.tv_usec;
	e.service = r->service;
	accesslog_write(&e);
}

/* Appends n bytes at p; returns the end. */
static char *
put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *
put_str(char *p, const char *s)
{
	return put(p, s, strlen(s));
}

static char *
put_uint(char *p, unsigned long long v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return put(p, digits + i, sizeof(digits) - i);
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/*
 * The status line and headers of a reply; length < 0: chunked or until
 * close. Built with memcpy rather than snprintf: it runs for every reply,
 * and printf's format parsing was the largest user-space cost of a
 * keep-alive request after the parser. Every piece has a known bound
 * (statuses are 3 digits, reasons are ours, extra is EXTRA_HEADERS), so
 * head cannot overflow.
 */
static void
write_head(struct conn *c, struct http_req *r, int status, long long length)
{
	char head[EXTRA_HEADERS + 256];
	char *p = head;
	const char *conn_hdr = NULL;

	if (length < 0 && r->http10)
		c->close_after = 1;      /* HTTP/1.0: the end of the body is the close */
	if (c->close_after || c->srv->draining || !r->keep_alive ||
	    c->srv->lim->keepalive_timeout_ms == 0) {
		c->close_after = 1;
		conn_hdr = "Connection: close\r\n";
	} else if (r->http10)
		conn_hdr = "Connection: keep-alive\r\n";
	p = PUT_LIT(p, "HTTP/1.1 ");
	p = put_uint(p, (unsigned)status % 1000);
	*p++ = ' ';
	p = put_str(p, reason(status));
	p = PUT_LIT(p, "\r\nContent-Type: application/json\r\n");
	if (length >= 0) {
		p = PUT_LIT(p, "Content-Length: ");
		p = put_uint(p, (unsigned long long)length);
		p = PUT_LIT(p, "\r\n");
	} else if (!r->http10)
		p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
	p = put(p, r->extra, r->extra_len);
	p = put_str(p, date_header(c->srv->base));
	if (conn_hdr != NULL)
		p = put_str(p, conn_hdr);
	p = PUT_LIT(p, "\r\n");
	evbuffer_add(c->out, head, (size_t)(p - head));
}

/* ---- connection output ---- */

static void
fire_drain(struct http_req *r)
{
	void (*cb)(void *) = r->drain_cb;

	r->drain_cb = NULL;
	cb(r->drain_arg);
}

/* Writes what it can; 0 if that closed the connection (c is freed then). */
static int
write_out(struct conn *c)
{
	while (evbuffer_get_length(c->out) > 0) {
		if (evbuffer_write(c->out, c->fd) >= 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			event_add(c->wev, c->srv->read_tv);
			return 1;
		}
		conn_close(c);           /* the peer is gone */
		return 0;
	}
	return 1;
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
	/* Idle between requests: keepalive; a request under way: read; in service: none. */
	if (!c->paused)
		set_timer(c, c->state == C_SERVICE ? T_NONE :
		    c->state == C_READING ? T_READ : T_KEEPALIVE);
}

/*
 * Leaves a callback of ours. This is where a connection moves on: it
 * writes what is pending, answers input that waited behind a request or
 * behind unread output, closes when it is done, and tells a waiting stream
 * that the output drained.
 */
static void
conn_release(struct conn *c)
{
	struct http_req *r;

	if (--c->busy > 0)
		return;
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
 * The service is done with r. Returns its connection, now ready for the
 * next request, or NULL when the client is gone (r is freed either way).
 */
static struct conn *
reply_done(struct http_req *r)
{
	struct conn *c = r->conn;

	in_flight--;
	served++;
	log_access(r);
	req_free(r);
	if (c == NULL)
		return NULL;
	c->req = NULL;
	c->state = C_IDLE;
	return c;
}

/* Everything a reply writes goes through here: at most one flush per callback. */
static struct conn *
enter(struct http_req *r)
{
	struct conn *c = r->conn;

	if (c != NULL)
		c->busy++;
	return c;
}

/* ---- replies ---- */

void
http_reply(struct http_req *req, int status, const char *body, size_t len)
{
	struct conn *c = enter(req);

	req->status = status;
	if (c != NULL) {
		write_head(c, req, status, (long long)len);
		if (!req->head) {
			evbuffer_add(c->out, body, len);
			req->bytes += len;
		}
	}
	if ((c = reply_done(req)) != NULL)
		conn_release(c);
}

void
http_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
	char msg[1024], *body;
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
	json_quote(buf, msg);
	evbuffer_add(buf, "}}", 2);
	body = (char *)evbuffer_pullup(buf, -1);
	http_reply(req, status, body != NULL ? body : "{}", body != NULL ?
	    evbuffer_get_length(buf) : 2);
	evbuffer_free(buf);
}

void
http_stream_start(struct http_req *req, int status)
{
	struct conn *c = enter(req);

	req->status = status;
	req->streaming = 1;
	if (c == NULL)
		return;
	write_head(c, req, status, -1);
	conn_release(c);
}

void
http_stream_chunk(struct http_req *req, struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	struct conn *c;

	if (len == 0)
		return;
	if (req->head || (c = enter(req)) == NULL) {
		evbuffer_drain(buf, len);
		return;
	}
	req->bytes += len;
	if (!req->http10)
		evbuffer_add_printf(c->out, "%zx\r\n", len);
	evbuffer_add_buffer(c->out, buf);
	if (!req->http10)
		evbuffer_add(c->out, "\r\n", 2);
	conn_release(c);
}

void
http_stream_end(struct http_req *req)
{
	struct conn *c = enter(req);

	if (c != NULL && !req->head && !req->http10)
		evbuffer_add(c->out, "0\r\n\r\n", 5);
	if ((c = reply_done(req)) != NULL)
		conn_release(c);
}

void
http_stream_on_drain(struct http_req *req, size_t below, void (*cb)(void *), void *arg)
{
	req->drain_cb = cb;
	req->drain_arg = arg;
	req->drain_below = below;
	if (cb != NULL && (req->conn == NULL || evbuffer_get_length(req->conn->out) <= below))
		fire_drain(req);         /* already there, or gone */
}

void
http_drop(struct http_req *req)
{
	if (req->conn == NULL)
		reply_done(req);
	else
		http_error(req, 503, "shutting_down", "the server is shutting down");
}

/* ---- request accessors ---- */

enum http_verb
http_req_method(struct http_req *req)
{
	return req->method;
}

const char *
http_req_path(struct http_req *req)
{
	return req->path;
}

const char *
http_req_query(struct http_req *req)
{
	return req->query;
}

void
http_req_add_header(struct http_req *req, const char *name, const char *value)
{
	int n = snprintf(req->extra + req->extra_len, sizeof(req->extra) - req->extra_len,
	    "%s: %s\r\n", name, value);

	if (n > 0 && req->extra_len + (size_t)n < sizeof(req->extra))
		req->extra_len += (size_t)n;
	else
		req->extra[req->extra_len] = '\0';   /* too long: dropped whole */
}

void
http_req_set_service(struct http_req *req, const char *name)
{
	req->service = name;
}

int
http_req_gone(const struct http_req *req)
{
	return req->conn == NULL;
}

/* ---- parsing ---- */

static struct conn *
conn_of(http_parser *p)
{
	return p->data;
}

/* Counts request-line and header bytes against max_header_bytes. */
static int
count_header(struct conn *c, size_t n)
{
	c->header_bytes += n;
	if (c->header_bytes > (size_t)c->srv->lim->max_header_bytes) {
		c->limit_status = 431;
		return -1;
	}
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct conn *c = conn_of(p);

	if ((c->req = req_new(c)) == NULL)
		return -1;
	c->state = C_READING;
	c->header_bytes = 0;
	c->body_bytes = 0;
	c->hname_len = 0;
	c->in_value = 0;
	c->expect_continue = 0;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	struct http_req *r = c->req;

	if (count_header(c, len) == -1)
		return -1;
	r->method_code = p->method;      /* known once the target begins */
	if (r->url_len + len + 1 > r->url_cap) {
		size_t cap = r->url_cap * 2;
		char *grown;
		while (cap < r->url_len + len + 1)
			cap *= 2;
		if (r->url == r->url_inline) {
			if ((grown = malloc(cap)) != NULL)
				memcpy(grown, r->url_inline, r->url_len);
		} else
			grown = realloc(r->url, cap);
		if (grown == NULL)
			return -1;
		r->url = grown;
		r->url_cap = cap;
	}
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	r->url[r->url_len] = '\0';
	return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);

	if (c->in_value) {           /* a new header begins */
		c->in_value = 0;
		c->hname_len = 0;
	}
	if (c->hname_len + len < sizeof(c->hname))
		memcpy(c->hname + c->hname_len, at, len);
	c->hname_len += len;
	return count_header(c, len + 4);     /* ": " and CRLF */
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);

	if (c->hname_len == 6 && strncasecmp(c->hname, "expect", 6) == 0) {
		size_t room, n;

		if (!c->in_value)        /* the first piece of this value */
			c->expect_len = 0;
		room = sizeof(c->expect) - c->expect_len;
		n = len < room ? len : room;
		memcpy(c->expect + c->expect_len, at, n);
		c->expect_len += n;
		if (c->expect_len == sizeof(c->expect) &&
		    strncasecmp(c->expect, "100-continue", sizeof(c->expect)) == 0)
			c->expect_continue = 1;
	}
	c->in_value = 1;
	return count_header(c, len);
}

static enum http_verb
verb(unsigned method)
{
	switch (method) {
	case HTTP_GET: return HTTP_M_GET;
	case HTTP_HEAD: return HTTP_M_HEAD;
	case HTTP_POST: return HTTP_M_POST;
	case HTTP_PUT: return HTTP_M_PUT;
	case HTTP_DELETE: return HTTP_M_DELETE;
	case HTTP_OPTIONS: return HTTP_M_OPTIONS;
	case HTTP_PATCH: return HTTP_M_PATCH;
	default: return HTTP_M_OTHER;
	}
}

static int
on_headers_complete(http_parser *p)
{
	struct conn *c = conn_of(p);
	struct http_req *r = c->req;

	r->method_code = p->method;
	r->method = verb(p->method);
	r->head = p->method == HTTP_HEAD;
	r->http10 = p->http_major == 1 && p->http_minor == 0;
	if (p->http_major != 1) {
		c->limit_status = 505;
		return -1;
	}
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > (uint64_t)c->srv->lim->max_body_bytes) {
		c->limit_status = 413;
		return -1;
	}
	/* A client that waits for our go-ahead before sending a body gets it. */
	if (c->expect_continue && !r->http10)
		evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);

	(void)at;                    /* no service takes a body yet */
	c->body_bytes += len;
	if (c->body_bytes > (uint64_t)c->srv->lim->max_body_bytes) {
		c->limit_status = 413;
		return -1;
	}
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	/* One request at a time: the loop in process() takes it from here. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Splits the request target into path and query; 0, or -1 if it has no path. */
static int
split_target(struct http_req *r)
{
	char *t = r->url, *q;

	if (t == NULL)
		return -1;
	/* absolute-form, "http://host/path?q": the authority ends at '/', '?' or '#' */
	if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
		t += t[4] == ':' ? 7 : 8;
		t += strcspn(t, "/?#");
		if (*t != '/') {         /* no path: it is "/" */
			r->path = "/";
			r->query = *t == '?' ? t + 1 : NULL;
			if ((q = strchr(t, '#')) != NULL)
				*q = '\0';
			return 0;
		}
	}
	if (t[0] != '/')
		return -1;
	if ((q = strchr(t, '#')) != NULL)
		*q = '\0';
	if ((q = strchr(t, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	r->path = t;
	return 0;
}

static void
dispatch(struct conn *c)
{
	struct http_req *r = c->req;

	c->state = C_SERVICE;
	in_flight++;
	r->keep_alive = http_should_keep_alive(&c->parser);
	if (accesslog_enabled())
		client_name(&c->peer, r->client, sizeof(r->client));
	if (split_target(r) == -1) {
		c->close_after = 1;
		c->linger = 1;           /* a pipelined request may follow */
		http_error(r, 400, "bad_request", "the request target must be an absolute path");
		return;
	}
	c->srv->handler(r, c->srv->arg);
}

/* Answers input the parser refused, then closes the connection. */
static void
bad_input(struct conn *c, enum http_errno e)
{
	struct http_req *r = c->req;
	int status = c->limit_status ? c->limit_status :
	    e == HPE_HEADER_OVERFLOW ? 431 : 400;

	if (r == NULL && (r = c->req = req_new(c)) == NULL) {
		conn_close(c);
		return;
	}
	c->state = C_SERVICE;
	c->close_after = 1;
	c->linger = 1;               /* it may still be sending: see conn_linger() */
	on_eof(c);                   /* read no more from this client */
	in_flight++;
	if (accesslog_enabled())
		client_name(&c->peer, r->client, sizeof(r->client));
	if (status == 413)
		http_error(r, 413, "too_large", "the request body exceeds %lld bytes",
		    c->srv->lim->max_body_bytes);
	else if (status == 505)
		http_error(r, 505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
	else if (status == 431)
		http_error(r, 431, "headers_too_large",
		    "the request line and headers exceed %lld bytes",
		    c->srv->lim->max_header_bytes);
	else
		http_error(r, 400, "bad_request", "malformed request: %s",
		    http_errno_description(e));
}

/* Keeps input that must wait: conn_release() comes back to it. */
static void
keep_pending(struct conn *c, const char *data, size_t len)
{
	char *grown = realloc(c->pending, c->pending_len + len);

	if (grown == NULL) {
		conn_close(c);
		return;
	}
	memcpy(grown + c->pending_len, data, len);
	c->pending = grown;
	c->pending_len += len;
}

/*
 * Parses data, answering each complete request before parsing the next.
 * Input waits while a request is in service or the client lets replies
 * pile up unread.
 */
static void
process(struct conn *c, const char *data, size_t len)
{
	while (len > 0 && !c->dead && !c->close_after) {
		size_t n;
		enum http_errno e;

		if (c->state == C_SERVICE || evbuffer_get_length(c->out) > OUTPUT_MAX) {
			keep_pending(c, data, len);
			return;
		}
		n = http_parser_execute(&c->parser, &parser_settings, data, len);
		e = HTTP_PARSER_ERRNO(&c->parser);
		data += n;
		len -= n;
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			dispatch(c);
		} else if (e != HPE_OK) {
			bad_input(c, e);
			return;
		}
	}
}

/* ---- connection events ---- */

/*
 * End of file: no further request will come. What was received is still
 * answered (a client may half-close after sending), then the connection
 * closes; a request cut off halfway can never complete.
 */
static void
on_eof(struct conn *c)
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
static int
linger_for(struct conn *c, long long ms)
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
static void
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
	if (linger_for(c, c->srv->draining ? c->srv->grace_ms : LINGER_TIME_MS) == -1)
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
	if (what & EV_TIMEOUT) {
		/* Idle or too slow to send; a reply still being written has its own timeout. */
		if (evbuffer_get_length(c->out) == 0)
			conn_close(c);
	} else if ((n = read(fd, read_buf, sizeof(read_buf))) > 0) {
		process(c, read_buf, (size_t)n);
	} else if (n == 0) {
		on_eof(c);
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

static void
drain_check(struct http_server *srv)
{
	if (srv->draining && srv->nconns == 0 && srv->drain_ev != NULL)
		event_active(srv->drain_ev, EV_TIMEOUT, 0);
}

static void
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
	drain_check(srv);
	if (gone != NULL && gone->drain_cb != NULL)
		fire_drain(gone);        /* a waiting stream learns the client left */
}

static void
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
	/* Replies go out whole in one write: Nagle would only delay streams. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	c->srv = srv;
	c->fd = fd;
	c->peer = *peer;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	srv->nconns++;
	c->timer = T_READ;
	event_add(c->rev, srv->read_tv);
	/* The listening sockets defer accept until data arrives: read it now. */
	on_read(fd, EV_READ, c);
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < srv->nlev; i++)
		event_add(srv->lev[i], NULL);
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct http_server *srv = arg;
	struct sockaddr_storage peer;
	socklen_t len;
	int fd;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(peer);
		fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_new(srv, fd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			struct timeval tv = ms_tv(ACCEPT_PAUSE_MS);
			log_warn("accept: %s: pausing for %d ms", strerror(errno), ACCEPT_PAUSE_MS);
			for (size_t j = 0; j < srv->nlev; j++)
				event_del(srv->lev[j]);
			evtimer_add(srv->accept_resume, &tv);
		}
		return;
	}
}

/* ---- the server ---- */

static void
drain_fire(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->drain_done != NULL) {
		void (*done)(void *) = srv->drain_done;
		srv->drain_done = NULL;
		done(srv->drain_arg);
	}
}

struct http_server *
http_server_new(struct event_base *base, const struct limits_conf *lim,
    http_handler handler, void *arg)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	struct timeval rt = ms_tv(lim->read_timeout_ms);
	struct timeval kt = ms_tv(lim->keepalive_timeout_ms);

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->lim = lim;
	srv->handler = handler;
	srv->arg = arg;
	TAILQ_INIT(&srv->conns);
	/* Common timeouts: O(1) to rearm, since every connection uses the same two. */
	srv->read_tv = event_base_init_common_timeout(base, &rt);
	srv->keepalive_tv = lim->keepalive_timeout_ms > 0 ?
	    event_base_init_common_timeout(base, &kt) : srv->read_tv;
	srv->accept_resume = evtimer_new(base, accept_resume, srv);
	srv->drain_ev = event_new(base, -1, 0, drain_fire, srv);
	if (srv->read_tv == NULL || srv->keepalive_tv == NULL || srv->accept_resume == NULL ||
	    srv->drain_ev == NULL) {
		http_server_free(srv);
		return NULL;
	}
	return srv;
}

int
http_server_listen(struct http_server *srv, const int *fds, size_t nfds)
{
	if ((srv->lev = calloc(nfds, sizeof(*srv->lev))) == NULL)
		return -1;
	for (size_t i = 0; i < nfds; i++) {
		srv->lev[i] = event_new(srv->base, fds[i], EV_READ | EV_PERSIST, on_accept, srv);
		if (srv->lev[i] == NULL || event_add(srv->lev[i], NULL) == -1)
			return -1;
		srv->nlev++;
	}
	return 0;
}

void
http_server_stop_accepting(struct http_server *srv)
{
	/*
	 * Closing our copy of a listening socket leaves the master's copy open:
	 * connections still queued on it wait for the next worker of the slot.
	 */
	for (size_t i = 0; i < srv->nlev; i++) {
		close(event_get_fd(srv->lev[i]));
		event_free(srv->lev[i]);
	}
	free(srv->lev);
	srv->lev = NULL;
	srv->nlev = 0;
	if (srv->accept_resume != NULL)
		event_del(srv->accept_resume);
}

int
http_drain(struct http_server *srv, void (*done)(void *), void *arg)
{
	long long grace_ms = srv->lim->keepalive_timeout_ms < DRAIN_GRACE_MS ?
	    srv->lim->keepalive_timeout_ms : DRAIN_GRACE_MS;
	struct timeval grace = ms_tv(grace_ms);
	struct conn *c;

	if ((srv->grace_tv = event_base_init_common_timeout(srv->base, &grace)) == NULL)
		return -1;
	srv->draining = 1;
	srv->grace_ms = grace_ms;
	srv->drain_done = done;
	srv->drain_arg = arg;
	/*
	 * Closing an idle keep-alive connection at once would race with the
	 * request its client may be sending right now, which a client that does
	 * not retry (wrk, many libraries) counts as failed. So an idle
	 * connection gets a short grace: a request that arrives is answered
	 * with "Connection: close", and one that stays idle is closed when the
	 * grace runs out, like any keep-alive connection that times out.
	 */
	TAILQ_FOREACH(c, &srv->conns, link) {
		if (c->lingering)        /* no longer than the grace either */
			(void)linger_for(c, srv->grace_ms);
		else if (c->state == C_IDLE && c->timer == T_KEEPALIVE && !c->paused) {
			c->timer = T_NONE;
			set_timer(c, T_KEEPALIVE);
		}
	}
	drain_check(srv);
	return 0;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	http_server_stop_accepting(srv);
	srv->draining = 0;
	while (!TAILQ_EMPTY(&srv->conns))
		conn_close(TAILQ_FIRST(&srv->conns));
	if (srv->accept_resume != NULL)
		event_free(srv->accept_resume);
	if (srv->drain_ev != NULL)
		event_free(srv->drain_ev);
	free(srv);
}
