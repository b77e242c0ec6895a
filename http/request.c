/*
 * Requests: their recycling, the headers and body the parser hands over,
 * and the accessors that services and completion hooks read.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "http/internal.h"

/*
 * Requests are recycled through a short free list: a keep-alive request
 * then costs no malloc at all, and a target that fits url_inline none
 * either; the header and body buffers a request grew are kept with it.
 */
#define FREE_REQS_MAX 64
static struct http_req *free_reqs;
static int nfree_reqs;

struct http_req *
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
	r->srv = c->srv;
	r->status = 200;
	r->method_code = NO_METHOD;
	r->url = r->url_inline;
	r->url_cap = sizeof(r->url_inline);
	r->url_inline[0] = '\0';
	r->peer.ss_family = 0;
	if (c->srv->nhooks > 0) {
		gettimeofday(&r->start, NULL);
		r->peer = c->peer;
	}
	return r;
}

static void
req_destroy(struct http_req *r)
{
	free(r->hdrs);
	free(r->hbuf);
	free(r->body);
	free(r);
}

#define KEEP_MAX (64 * 1024)         /* larger buffers are not kept for the next request */

void
req_free(struct http_req *r)
{
	if (r->url != r->url_inline)
		free(r->url);
	/* A request with a large body must not pin its memory for good. */
	if (r->body_cap > KEEP_MAX) {
		free(r->body);
		r->body = NULL;
		r->body_cap = 0;
	}
	if (r->hbuf_cap > KEEP_MAX) {
		free(r->hbuf);
		r->hbuf = NULL;
		r->hbuf_cap = 0;
	}
	if (nfree_reqs < FREE_REQS_MAX) {
		r->next_free = free_reqs;
		free_reqs = r;
		nfree_reqs++;
	} else
		req_destroy(r);
}

/* Grows *buf to hold need bytes; 0, or -1 when out of memory. */
static int
grow(char **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 256;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if ((p = realloc(*buf, n)) == NULL)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

/* Appends n bytes, and room for one more (a NUL) after them. */
static inline int
hbuf_add(struct http_req *r, const char *s, size_t n)
{
	if (r->hbuf_len + n + 2 > r->hbuf_cap &&
	    grow(&r->hbuf, &r->hbuf_cap, r->hbuf_len + n + 2) == -1)
		return -1;
	memcpy(r->hbuf + r->hbuf_len, s, n);
	r->hbuf_len += n;
	return 0;
}

/* A NUL: hbuf_add() always leaves room for it. */
static inline void
hbuf_nul(struct http_req *r)
{
	r->hbuf[r->hbuf_len++] = '\0';
}

/* Ends the current header's value (or a name that got none), trimmed. */
static int
hdr_close(struct http_req *r)
{
	struct hdr *h = &r->hdrs[r->nhdrs - 1];

	if (h->value == 0 && h->value_len == 0) {     /* no value came */
		hbuf_nul(r);                 /* ends the name */
		h->value = (uint32_t)r->hbuf_len;
		if (hbuf_add(r, "", 0) == -1)
			return -1;
	}
	while (h->value_len > 0 && (r->hbuf[h->value + h->value_len - 1] == ' ' ||
	    r->hbuf[h->value + h->value_len - 1] == '\t'))
		h->value_len--;
	r->hbuf_len = h->value + h->value_len;
	hbuf_nul(r);
	return 0;
}

int
req_header_name(struct http_req *r, int begins, const char *at, size_t len)
{
	struct hdr *h;

	if (begins) {
		if (r->nhdrs > 0 && hdr_close(r) == -1)
			return -1;
		if (r->nhdrs == r->hdrs_cap) {
			size_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
			struct hdr *grown = realloc(r->hdrs, cap * sizeof(*grown));
			if (grown == NULL)
				return -1;
			r->hdrs = grown;
			r->hdrs_cap = cap;
		}
		h = &r->hdrs[r->nhdrs++];
		*h = (struct hdr){ .name = (uint32_t)r->hbuf_len };
	}
	h = &r->hdrs[r->nhdrs - 1];
	h->name_len += (uint32_t)len;
	return hbuf_add(r, at, len);
}

int
req_header_value(struct http_req *r, int begins, const char *at, size_t len)
{
	struct hdr *h = &r->hdrs[r->nhdrs - 1];

	if (begins) {
		hbuf_nul(r);                 /* ends the name */
		h->value = (uint32_t)r->hbuf_len;
	}
	h->value_len += (uint32_t)len;
	return hbuf_add(r, at, len);
}

int
req_headers_end(struct http_req *r)
{
	return r->nhdrs > 0 ? hdr_close(r) : 0;
}

int
req_body_add(struct http_req *r, const char *at, size_t len)
{
	if (grow(&r->body, &r->body_cap, r->body_len + len + 1) == -1)
		return -1;
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

/* ---- accessors ---- */

enum http_verb
http_req_method(const struct http_req *req)
{
	return req->method;
}

const char *
http_req_method_name(const struct http_req *req)
{
	return req->method_code == NO_METHOD ? "-" :
	    llhttp_method_name((llhttp_method_t)req->method_code);
}

const char *
http_req_version(const struct http_req *req)
{
	return req->http10 ? "HTTP/1.0" : "HTTP/1.1";
}

const char *
http_req_path(const struct http_req *req)
{
	return req->path;
}

const char *
http_req_query(const struct http_req *req)
{
	return req->query;
}

void
http_req_target(const struct http_req *req, char *buf, size_t len)
{
	/* The target was split at '?' in place: join it again. */
	if (req->path != NULL)
		snprintf(buf, len, "%s%s%s", req->path, req->query ? "?" : "",
		    req->query ? req->query : "");
	else
		snprintf(buf, len, "%s", req->url != NULL && req->url[0] ? req->url : "-");
}

int
http_req_header_at(const struct http_req *req, size_t i, const char **name,
    const char **value)
{
	if (i >= req->nhdrs)
		return -1;
	*name = req->hbuf + req->hdrs[i].name;
	*value = req->hbuf + req->hdrs[i].value;
	return 0;
}

const char *
http_req_header(const struct http_req *req, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < req->nhdrs; i++)
		if (req->hdrs[i].name_len == n &&
		    strncasecmp(req->hbuf + req->hdrs[i].name, name, n) == 0)
			return req->hbuf + req->hdrs[i].value;
	return NULL;
}

const char *
http_req_body(const struct http_req *req, size_t *len)
{
	*len = req->body_len;
	return req->body_len > 0 ? req->body : "";
}

int
http_req_gone(const struct http_req *req)
{
	return req->conn == NULL;
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
http_req_set_content_type(struct http_req *req, const char *type)
{
	req->content_type = type;
}

void
http_req_set_service(struct http_req *req, const char *name)
{
	req->service = name;
}

int
http_req_status(const struct http_req *req)
{
	/* 499, as nginx logs it: the client went away before the answer. */
	return req->conn == NULL ? 499 : req->status;
}

uint64_t
http_req_bytes(const struct http_req *req)
{
	return req->bytes;
}

uint64_t
http_req_duration_us(const struct http_req *req)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (uint64_t)(now.tv_sec - req->start.tv_sec) * 1000000 +
	    (uint64_t)now.tv_usec - (uint64_t)req->start.tv_usec;
}

const char *
http_req_service(const struct http_req *req)
{
	return req->service;
}

void
http_req_client(const struct http_req *req, char *buf, size_t len)
{
	const struct sockaddr_storage *ss = &req->peer;
	const void *a = ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (ss->ss_family == 0 || inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "-");
}

void
http_allow(int methods, char *buf, size_t len)
{
	static const struct { int bit; const char *name; } names[] = {
		{ HTTP_M_GET, "GET" }, { HTTP_M_HEAD, "HEAD" }, { HTTP_M_POST, "POST" },
		{ HTTP_M_PUT, "PUT" }, { HTTP_M_DELETE, "DELETE" }, { HTTP_M_OPTIONS, "OPTIONS" },
		{ HTTP_M_PATCH, "PATCH" },
	};
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((methods & names[i].bit) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names[i].name);
}
