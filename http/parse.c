/*
 * Parsing: bytes from a connection go through llhttp, Node's parser, in its
 * strict mode; it copes with requests split across reads. Each complete
 * request is dispatched to the handler before the next is parsed (pipelined
 * requests are answered in order). Input that llhttp or the checks here
 * refuse gets its 4xx/5xx and the connection closes: after a framing error
 * nothing that follows can be trusted to be a request of its own.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"

static const llhttp_settings_t settings;

/*
 * What llhttp 8.1.0, as Debian 12 ships it, lets through and later llhttp
 * releases refuse (8.1.1 and 9.x; CVE-2023-30589 is the first): a line of
 * the head ended by a bare CR, a header name with a space inside, a chunk's
 * data followed by anything up to a LF instead of CRLF. Each of these lets
 * a proxy in front and the worker disagree on where a request ends, so each
 * is checked here, on top of llhttp: the head's line endings by a scan
 * (scan_head()), names and targets by a table, chunk ends by pausing llhttp
 * there (on_chunk_complete()).
 */

/* RFC 9110's tchar: what a header name is made of. */
static const unsigned char tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
	['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
	['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
	['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
	['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
	['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
	['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
	['y'] = 1, ['z'] = 1,
};

/* Head scan states: where in "\r\n\r\n" the bytes so far end. */
enum { H_TEXT, H_CR, H_CRLF, H_CRLFCR, H_DONE };

/*
 * Checks that every line of a request's head ends in CRLF, the bytes of
 * its head at a time (it may come in pieces), up to the empty line that
 * ends it. 0, or -1 for a bare CR or LF.
 */
static int
scan_head(struct conn *c, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	int m = c->head_scan;

	while (m != H_DONE && p < end) {
		if (m == H_TEXT) {       /* the rest of a line at once */
			const char *cr = memchr(p, '\r', (size_t)(end - p));
			if (memchr(p, '\n', (size_t)((cr != NULL ? cr : end) - p)) != NULL)
				return -1;
			c->head_text |= cr != p;
			if (cr == NULL)
				break;
			p = cr + 1;
			m = H_CR;
			continue;
		}
		char b = *p++;
		if (m == H_CR || m == H_CRLFCR) {
			if (b != '\n')
				return -1;
			m = m == H_CR ? H_CRLF : H_DONE;
		} else if (b == '\n') {         /* H_CRLF */
			return -1;
		} else if (b == '\r') {
			/* empty lines before a request line are allowed (RFC 9112 2.2) */
			m = c->head_text ? H_CRLFCR : H_CR;
		} else {
			m = H_TEXT;
			c->head_text = 1;
		}
	}
	c->head_scan = m;
	return 0;
}

void
parse_init(struct conn *c)
{
	llhttp_init(&c->parser, HTTP_REQUEST, &settings);
	c->parser.data = c;
}

static struct conn *
conn_of(llhttp_t *p)
{
	return p->data;
}

/* Refuses the request with status and a message of its own. */
static int
refuse(struct conn *c, int status, const char *why)
{
	c->limit_status = status;
	c->refusal = why;
	return -1;
}

/* Counts request-line and header bytes against max_header_bytes. */
static int
count_header(struct conn *c, size_t n)
{
	c->header_bytes += n;
	if (c->header_bytes > (size_t)c->srv->lim.max_header_bytes)
		return refuse(c, 431, NULL);
	return 0;
}

static int
on_message_begin(llhttp_t *p)
{
	struct conn *c = conn_of(p);

	if ((c->req = req_new(c)) == NULL)
		return -1;
	c->state = C_READING;
	c->header_bytes = 0;
	c->body_bytes = 0;
	c->in_value = 0;
	c->in_body = 0;
	c->deadline = 0;
	return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	struct http_req *r = c->req;

	if (count_header(c, len) == -1)
		return -1;
	for (size_t i = 0; i < len; i++)      /* llhttp 8.1 lets a tab through */
		if ((unsigned char)at[i] <= ' ' || at[i] == 0x7f)
			return refuse(c, 400, "a control character or space in the request target");
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
on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);
	int begins = c->in_value || c->req->nhdrs == 0;

	c->in_value = 0;
	if (count_header(c, len + 4) == -1)      /* ": " and CRLF */
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!tchar[(unsigned char)at[i]])
			return refuse(c, 400, "a header name holds a character other than a token's");
	return req_header_name(c->req, begins, at, len);
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
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

/* How many headers are called name. */
static int
header_count(const struct http_req *r, const char *name)
{
	const char *n, *v;
	int count = 0;

	for (size_t i = 0; http_req_header_at(r, i, &n, &v) == 0; i++)
		count += strcasecmp(n, name) == 0;
	return count;
}

/*
 * What llhttp leaves to us (RFC 9112): exactly one Host in HTTP/1.1, and
 * no transfer coding but a single "chunked", the only one we decode (two
 * servers that disagree on a request's length are how requests are
 * smuggled past a proxy).
 */
static int
check_framing(struct conn *c, struct http_req *r, const llhttp_t *p)
{
	const char *n, *v;
	int hosts;

	if (p->http_major != 1)
		return refuse(c, 505, NULL);
	if (!r->http10 && (hosts = header_count(r, "host")) != 1)
		return refuse(c, 400, hosts == 0 ? "HTTP/1.1 requires a Host header" :
		    "more than one Host header");
	if (!(p->flags & F_TRANSFER_ENCODING))
		return 0;
	if (r->http10)
		return refuse(c, 400, "Transfer-Encoding is not allowed in HTTP/1.0");
	if (header_count(r, "transfer-encoding") != 1)
		return refuse(c, 501, "only a single \"Transfer-Encoding: chunked\" is implemented");
	for (size_t i = 0; http_req_header_at(r, i, &n, &v) == 0; i++)
		if (strcasecmp(n, "transfer-encoding") == 0 && strcasecmp(v, "chunked") != 0)
			return refuse(c, 501, "only a single \"Transfer-Encoding: chunked\" is implemented");
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct conn *c = conn_of(p);
	struct http_req *r = c->req;
	const char *expect;

	r->method_code = p->method;
	r->method = verb(p->method);
	r->head = p->method == HTTP_HEAD;
	r->http10 = p->http_major == 1 && p->http_minor == 0;
	if (req_headers_end(r) == -1 || check_framing(c, r, p) == -1)
		return -1;
	if ((p->flags & F_CONTENT_LENGTH) &&
	    p->content_length > (uint64_t)c->srv->lim.max_body_bytes)
		return refuse(c, 413, NULL);
	/* A body follows: it has a deadline of its own (see update_reading()). */
	if ((p->flags & F_CHUNKED) || p->content_length > 0) {
		c->in_body = 1;
		c->deadline = 0;
	}
	/* A client that waits for our go-ahead before sending a body gets it. */
	if (!r->http10 && (expect = http_req_header(r, "expect")) != NULL &&
	    strcasecmp(expect, "100-continue") == 0)
		evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = conn_of(p);

	c->body_bytes += len;
	if (c->body_bytes > (uint64_t)c->srv->lim.max_body_bytes)
		return refuse(c, 413, NULL);
	if (p->flags & F_CHUNKED) {      /* the chunk's CRLF comes next */
		c->chunk_end = at + len;
		c->chunk_term = 0;
		c->in_chunk_term = 1;
	}
	return req_body_add(c->req, at, len);
}

static int
on_message_complete(llhttp_t *p)
{
	struct conn *c = conn_of(p);

	c->deadline = 0;
	c->head_scan = H_TEXT;           /* the next request's head */
	c->head_text = 0;
	/* Trailers of a chunked body come as headers, with no headers_complete after. */
	if (c->req != NULL && req_headers_end(c->req) == -1)
		return -1;
	/* One request at a time: the loop in process() takes it from here. */
	return HPE_PAUSED;
}

/*
 * The last chunk's size line is in: what follows (trailers, then an empty
 * line) is checked like a head, by scan_head(), before llhttp reads it.
 */
static int
on_chunk_header(llhttp_t *p)
{
	struct conn *c = conn_of(p);

	if (p->content_length != 0)
		return 0;
	c->head_scan = H_CRLF;           /* its size line ended in CRLF */
	c->head_text = 1;
	c->chunk_paused = 1;
	return HPE_PAUSED;
}

/* A chunk's data and what ended it are in: process() checks that it was CRLF. */
static int
on_chunk_complete(llhttp_t *p)
{
	struct conn *c = conn_of(p);

	if (!c->in_chunk_term)
		return 0;            /* the last chunk, which has no data */
	c->chunk_paused = 1;
	return HPE_PAUSED;
}

/* The bytes between a chunk's data and where llhttp now is, [from, to). */
static int
chunk_term(struct conn *c, const char *from, const char *to)
{
	for (; from < to; from++)
		if (c->chunk_term >= 2 || *from != "\r\n"[c->chunk_term++])
			return refuse(c, 400, "a chunk's data is not followed by CRLF");
	return 0;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
	.on_chunk_header = on_chunk_header,
	.on_chunk_complete = on_chunk_complete,
};

/*
 * Splits the request target into path and query; 0, or -1 if it has no
 * path ("GET http://host" is as malformed as "GET host").
 */
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
	r->keep_alive = llhttp_should_keep_alive(&c->parser);
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
bad_input(struct conn *c, llhttp_errno_t e)
{
	struct http_req *r = c->req;
	/* llhttp knows HTTP/0.9 to 2.0; anything else is a version it refuses */
	int status = c->limit_status ? c->limit_status : e == HPE_INVALID_VERSION ? 505 : 400;

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
	else if (status == 408)
		http_error(r, 408, "request_timeout", "%s took longer than %lld ms", c->refusal,
		    c->in_body ? c->srv->lim.body_timeout_ms : c->srv->lim.header_timeout_ms);
	else if (status == 501)
		http_error(r, 501, "not_implemented", "%s", c->refusal);
	else if (c->refusal != NULL)
		http_error(r, 400, "bad_request", "malformed request: %s", c->refusal);
	else
		http_error(r, 400, "bad_request", "malformed request: %s",
		    llhttp_get_error_reason(&c->parser));
}

/* The request's head or body missed its deadline: 408, and the connection closes. */
void
request_timeout(struct conn *c)
{
	c->limit_status = 408;
	c->refusal = c->in_body ? "the request body" : "the request line and headers";
	bad_input(c, HPE_OK);
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
		llhttp_errno_t e;

		if (c->state == C_SERVICE || evbuffer_get_length(c->out) > OUTPUT_MAX) {
			keep_pending(c, data, len);
			return;
		}
		if (c->head_scan != H_DONE && scan_head(c, data, len) == -1) {
			c->refusal = "a line of the request head does not end in CRLF";
			bad_input(c, HPE_OK);
			return;
		}
		e = llhttp_execute(&c->parser, data, len);
		/* how far it got: all of it, or up to the pause or the error */
		n = e == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&c->parser) - data);
		if (c->in_chunk_term && (e == HPE_OK || e == HPE_PAUSED) &&
		    chunk_term(c, c->chunk_end >= data && c->chunk_end <= data + n ?
		    c->chunk_end : data, data + n) == -1) {
			bad_input(c, HPE_OK);
			return;
		}
		c->chunk_end = NULL;     /* the input buffer is reused for the next read */
		data += n;
		len -= n;
		if (e == HPE_PAUSED && c->chunk_paused && !c->in_chunk_term) {
			c->chunk_paused = 0;     /* the last chunk: its trailers are scanned next */
			llhttp_resume(&c->parser);
			continue;
		}
		if (e == HPE_PAUSED && c->chunk_paused) {
			c->chunk_paused = 0;
			if (c->chunk_term != 2) {
				refuse(c, 400, "a chunk's data is not followed by CRLF");
				bad_input(c, HPE_OK);
				return;
			}
			c->in_chunk_term = 0;
			llhttp_resume(&c->parser);
			continue;
		}
		if (e == HPE_PAUSED) {
			llhttp_resume(&c->parser);
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

