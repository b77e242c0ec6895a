/*
 * Parsing: bytes from a connection go through Node's http_parser, which
 * copes with requests split across reads; each complete request is
 * dispatched to the handler before the next is parsed (pipelined requests
 * are answered in order), and input the parser refuses gets its 4xx/5xx.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"

void
parse_init(struct conn *c)
{
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
}

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
	if (c->header_bytes > (size_t)c->srv->lim.max_header_bytes) {
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
	c->in_value = 0;
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
	int begins = c->in_value || c->req->nhdrs == 0;

	c->in_value = 0;
	if (count_header(c, len + 4) == -1)      /* ": " and CRLF */
		return -1;
	return req_header_name(c->req, begins, at, len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	int begins = !c->in_value;

	c->in_value = 1;
	if (count_header(c, len) == -1)
		return -1;
	return req_header_value(c->req, begins, at, len);
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
	const char *expect;

	r->method_code = p->method;
	r->method = verb(p->method);
	r->head = p->method == HTTP_HEAD;
	r->http10 = p->http_major == 1 && p->http_minor == 0;
	if (p->http_major != 1) {
		c->limit_status = 505;
		return -1;
	}
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > (uint64_t)c->srv->lim.max_body_bytes) {
		c->limit_status = 413;
		return -1;
	}
	if (req_headers_end(r) == -1)
		return -1;
	/* A client that waits for our go-ahead before sending a body gets it. */
	if (!r->http10 && (expect = http_req_header(r, "expect")) != NULL &&
	    strcasecmp(expect, "100-continue") == 0)
		evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);

	c->body_bytes += len;
	if (c->body_bytes > (uint64_t)c->srv->lim.max_body_bytes) {
		c->limit_status = 413;
		return -1;
	}
	return req_body_add(c->req, at, len);
}

static int
on_message_complete(http_parser *p)
{
	struct conn *c = conn_of(p);

	/* Trailers of a chunked body come as headers, with no headers_complete after. */
	if (c->req != NULL && req_headers_end(c->req) == -1)
		return -1;
	/* One request at a time: the loop in process() takes it from here. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
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
	c->srv->in_flight++;
	r->keep_alive = http_should_keep_alive(&c->parser);
	/* A request to switch protocols that the service answers otherwise ends
	 * the connection: what follows it is not HTTP. */
	r->upgrade = c->parser.upgrade;
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
	conn_on_eof(c);              /* read no more from this client */
	c->srv->in_flight++;
	if (status == 413)
		http_error(r, 413, "too_large", "the request body exceeds %lld bytes",
		    c->srv->lim.max_body_bytes);
	else if (status == 505)
		http_error(r, 505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served");
	else if (status == 431)
		http_error(r, 431, "headers_too_large",
		    "the request line and headers exceed %lld bytes",
		    c->srv->lim.max_header_bytes);
	else
		http_error(r, 400, "bad_request", "malformed request: %s",
		    http_errno_description(e));
}

/* Keeps input that must wait: conn_release() comes back to it. */
static void
keep_pending(struct conn *c, const char *data, size_t len)
{
	char *grown;

	if (len == 0)
		return;
	if ((grown = realloc(c->pending, c->pending_len + len)) == NULL) {
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
void
process(struct conn *c, const char *data, size_t len)
{
	while (len > 0 && !c->dead && !c->close_after && !c->upgraded) {
		size_t n;
		enum http_errno e;

		if (c->state == C_SERVICE || evbuffer_get_length(c->out) > OUTPUT_MAX) {
			keep_pending(c, data, len);
			return;
		}
		n = http_parser_execute(&c->parser, &settings, data, len);
		e = HTTP_PARSER_ERRNO(&c->parser);
		data += n;
		len -= n;
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			if (c->parser.upgrade) {
				/*
				 * What follows a request to switch protocols is not
				 * HTTP: it waits for the service's http_upgrade().
				 */
				keep_pending(c, data, len);
				dispatch(c);
				return;
			}
			dispatch(c);
		} else if (e != HPE_OK) {
			bad_input(c, e);
			return;
		}
	}
}

