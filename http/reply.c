/*
 * Replies: the status line and headers, whole replies, errors, chunked
 * streams, and the end of a request (counters, completion hooks). A reply
 * is appended to its connection's output and written once the callback
 * that made it unwinds (conn_release()), so a keep-alive request costs one
 * write.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "http/internal.h"

#define CONTENT_TYPE_MAX 128

static const char *
reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* RFC 9110: 1xx, 204 and 304 replies never carry a body. */
static int
no_body(int status)
{
	return status < 200 || status == 204 || status == 304;
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
 * (statuses are 3 digits, reasons are ours, the content type is cut at
 * CONTENT_TYPE_MAX, extra is EXTRA_HEADERS and the server's SERVER_HEADERS),
 * so head cannot overflow.
 */
void
write_head(struct conn *c, struct http_req *r, int status, long long length)
{
	char head[EXTRA_HEADERS + SERVER_HEADERS + CONTENT_TYPE_MAX + 256];
	char *p = head;
	const char *conn_hdr = NULL;

	if (status == 101)
		conn_hdr = "Connection: Upgrade\r\n";
	else {
		if ((length < 0 && r->http10) || r->upgrade)
			c->close_after = 1;  /* HTTP/1.0: the end of the body is the close */
		if (c->close_after || c->srv->draining || c->srv->no_keepalive || !r->keep_alive ||
		    c->srv->lim.keepalive_timeout_ms == 0) {
			c->close_after = 1;
			conn_hdr = "Connection: close\r\n";
		} else if (r->http10)
			conn_hdr = "Connection: keep-alive\r\n";
	}
	p = PUT_LIT(p, "HTTP/1.1 ");
	p = put_uint(p, (unsigned)status % 1000);
	*p++ = ' ';
	p = put_str(p, reason(status));
	p = PUT_LIT(p, "\r\n");
	if (!no_body(status)) {
		p = PUT_LIT(p, "Content-Type: ");
		if (r->content_type == NULL)
			p = PUT_LIT(p, "application/json");
		else
			p = put(p, r->content_type, strnlen(r->content_type, CONTENT_TYPE_MAX));
		p = PUT_LIT(p, "\r\n");
		if (length >= 0) {
			p = PUT_LIT(p, "Content-Length: ");
			p = put_uint(p, (unsigned long long)length);
			p = PUT_LIT(p, "\r\n");
		} else if (!r->http10)
			p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
	}
	p = put(p, r->extra, r->extra_len);
	p = put(p, c->srv->extra, c->srv->extra_len);
	p = put_str(p, date_header(c->srv->base));
	if (conn_hdr != NULL)
		p = put_str(p, conn_hdr);
	p = PUT_LIT(p, "\r\n");
	evbuffer_add(c->out, head, (size_t)(p - head));
}

/*
 * The service is done with r: the counters and completion hooks see it,
 * then it is freed. Returns its connection, now ready for the next
 * request, or NULL when the client is gone.
 */
struct conn *
reply_done(struct http_req *r)
{
	struct http_server *srv = r->srv;
	struct conn *c = r->conn;

	srv->in_flight--;
	srv->served++;
	for (size_t i = 0; i < srv->nhooks; i++)
		srv->hooks[i].cb(r, srv->hooks[i].arg);
	req_free(r);
	if (c == NULL)
		return NULL;
	c->req = NULL;
	c->state = C_IDLE;
	return c;
}

/* Everything a reply writes goes through here: at most one flush per callback. */
struct conn *
reply_enter(struct http_req *r)
{
	struct conn *c = r->conn;

	if (c != NULL)
		c->busy++;
	return c;
}

void
http_reply(struct http_req *req, int status, const char *body, size_t len)
{
	struct conn *c = reply_enter(req);

	req->status = status;
	if (no_body(status))
		len = 0;
	if (c != NULL) {
		write_head(c, req, status, (long long)len);
		if (!req->head && len > 0) {
			evbuffer_add(c->out, body, len);
			req->bytes += len;
		}
	}
	if ((c = reply_done(req)) != NULL)
		conn_release(c);
}

/*
 * The body is a libevent file segment in the connection's output, which
 * drains to the socket (EVBUFFER_FLAG_DRAINS_TO_FD): write_out() sends it
 * with sendfile(), after the head, and the segment closes fd when the last
 * byte is out or the connection is freed.
 */
void
http_reply_file(struct http_req *req, int status, const char *type, int fd, off_t offset,
    off_t length)
{
	struct evbuffer_file_segment *seg;
	struct conn *c = req->conn;
	int failed;

	if (no_body(status) || req->head || length <= 0 || c == NULL) {
		close(fd);
		req->content_type = type;
		/* HEAD gets the Content-Length a GET would have */
		http_reply(req, status, NULL, no_body(status) ? 0 : (size_t)(length > 0 ? length : 0));
		return;
	}
	seg = evbuffer_file_segment_new(fd, offset, length,
	    EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING);
	if (seg == NULL) {
		close(fd);
		http_error(req, 500, "internal", "out of memory");
		return;
	}
	c = reply_enter(req);
	req->status = status;
	req->content_type = type;
	write_head(c, req, status, (long long)length);
	failed = evbuffer_add_file_segment(c->out, seg, 0, length) == -1;
	if (!failed)
		req->bytes += (uint64_t)length;
	/*
	 * The head goes out with writev(), the body with sendfile(): corked,
	 * they leave in full segments (one, for a small file), as nginx's
	 * tcp_nopush does, rather than the head alone in a packet of its own.
	 * write_out() uncorks once the output is written.
	 */
	if (!failed && !c->corked) {
		int on = 1;
		c->corked = setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0;
	}
	evbuffer_file_segment_free(seg);     /* the output holds its own reference */
	if ((c = reply_done(req)) != NULL) {
		if (failed)
			conn_close(c);       /* out of memory after the head: only a close says so */
		conn_release(c);
	}
}

void
http_reply_type(struct http_req *req, int status, const char *type, const char *body,
    size_t len)
{
	req->content_type = type;
	http_reply(req, status, body, len);
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
	req->content_type = NULL;    /* errors are JSON, whatever the service chose */
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
	struct conn *c = reply_enter(req);

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
	if (req->head || no_body(req->status) || (c = reply_enter(req)) == NULL) {
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
	struct conn *c = reply_enter(req);

	if (c != NULL && !req->head && !req->http10 && !no_body(req->status))
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
http_stream_abort(struct http_req *req)
{
	struct conn *c = reply_enter(req);

	req->drain_cb = NULL;
	if ((c = reply_done(req)) != NULL) {
		/*
		 * A reset, not a FIN: what the kernel still holds for a slow
		 * reader (megabytes) is dropped, and the client learns now.
		 */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		conn_close(c);       /* busy: it is closed as conn_release() unwinds */
		conn_release(c);
	}
}

void
http_drop(struct http_req *req)
{
	if (req->conn == NULL)
		reply_done(req);
	else if (req->streaming)     /* a head is out: only a cut can say it failed */
		http_stream_abort(req);
	else
		http_error(req, 503, "shutting_down", "the server is shutting down");
}

