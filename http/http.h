/*
 * The worker's HTTP/1.x server, as services and the worker see it:
 * connections accepted on the inherited listening sockets, requests parsed
 * with llhttp (Node's parser, strict), replies (JSON by default), streaming, keep-alive
 * and pipelining, the limits, a graceful drain, request-completion hooks,
 * and the hand-over of a connection to a service (http_upgrade()).
 *
 * Every request handed to the handler must end in exactly one of
 * http_reply() / http_reply_type() / http_reply_file() / http_error() /
 * http_stream_end() / http_upgrade() / http_drop(); the request must not be
 * used after that.
 */
#ifndef CLUSTERD_HTTP_H
#define CLUSTERD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

struct http_req;
struct http_server;

/* The limits of the HTTP layer (the worker copies them from the config). */
struct http_limits {
	long long max_header_bytes;
	long long max_body_bytes;
	long long read_timeout_ms;
	long long keepalive_timeout_ms;      /* 0 disables keep-alive */
	long long header_timeout_ms;         /* a request's line and headers, from its first byte */
	long long body_timeout_ms;           /* its body, from the end of its headers */
	long long max_connections;           /* 0: derived from RLIMIT_NOFILE */
};

/* Request methods as bits, so that a service can name the set it takes. */
enum http_verb {
	HTTP_M_GET = 1 << 0, HTTP_M_HEAD = 1 << 1, HTTP_M_POST = 1 << 2, HTTP_M_PUT = 1 << 3,
	HTTP_M_DELETE = 1 << 4, HTTP_M_OPTIONS = 1 << 5, HTTP_M_PATCH = 1 << 6,
	HTTP_M_OTHER = 1 << 7,
};

typedef void (*http_handler)(struct http_req *req, void *arg);
/* Called as every request completes, before it is freed (the access log, figures). */
typedef void (*http_complete_cb)(const struct http_req *req, void *arg);

/* ---- the server ---- */

/* A server on base with these limits (copied); handler gets every request. */
struct http_server *http_server_new(struct event_base *base, const struct http_limits *lim,
    http_handler handler, void *arg);
/* Accepts on these listening sockets (the server takes them over). */
int http_server_listen(struct http_server *srv, const int *fds, size_t nfds);
/* Stops accepting and closes our copies of the listening sockets. */
void http_server_stop_accepting(struct http_server *srv);
/*
 * Accepts on these listening sockets too, those of another slot whose
 * worker is gone, until http_server_release(srv, slot). The server owns
 * the descriptors either way (closed at once if it no longer accepts).
 * Returns 0 or -1.
 */
int http_server_adopt(struct http_server *srv, int slot, const int *fds, size_t nfds);
/* Stops accepting on the sockets adopted for slot, and closes them. */
void http_server_release(struct http_server *srv, int slot);
/* Closes every connection; requests still held by services become gone. */
void http_server_free(struct http_server *srv);
/*
 * Adds "name: value" to the head of every reply from now on (the worker's
 * pid, say), after the service's own headers: 0, or -1 (nothing added) when
 * the server's headers would pass 128 bytes.
 */
int http_server_add_header(struct http_server *srv, const char *name, const char *value);
/* Subscribes cb to the completion of every request: 0, or -1 when full. */
int http_server_on_complete(struct http_server *srv, http_complete_cb cb, void *arg);

/*
 * Draining: accepting stops (the connections already queued on the
 * listening sockets are taken in first), every further reply carries
 * "Connection: close", idle keep-alive connections get one second (or
 * keepalive_timeout_ms, if shorter) to send a last request before they
 * close, and done() is called
 * (from the event loop, once) when no connection is left. Connections
 * handed over with http_upgrade() are their new owner's to drain.
 * Returns 0 or -1.
 */
int http_drain(struct http_server *srv, void (*done)(void *), void *arg);

/*
 * From now on every reply carries "Connection: close", while the server
 * still accepts: the start of a drain that a load balancer must notice.
 */
void http_server_close_keepalive(struct http_server *srv);

/* Figures of the server's life. */
uint64_t http_server_requests(const struct http_server *srv);   /* completed */
size_t http_server_in_flight(const struct http_server *srv);    /* held by services */
size_t http_server_connections(const struct http_server *srv);  /* open, not upgraded */

/* ---- the request ---- */

enum http_verb http_req_method(const struct http_req *req);
/* "GET", or "-" when the request line was not understood. */
const char *http_req_method_name(const struct http_req *req);
/* "HTTP/1.0" or "HTTP/1.1" */
const char *http_req_version(const struct http_req *req);
/* The path of the request target, not decoded. */
const char *http_req_path(const struct http_req *req);
/* The query string (after '?'), not decoded, or NULL. */
const char *http_req_query(const struct http_req *req);
/* The target as sent (path and query), into buf. */
void http_req_target(const struct http_req *req, char *buf, size_t len);
/* The first request header of that name (any case), or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/* The i-th request header, in the order sent: 0, or -1 past the last. */
int http_req_header_at(const struct http_req *req, size_t i, const char **name,
    const char **value);
/* The request body (up to max_body_bytes; a chunked body is de-chunked). */
const char *http_req_body(const struct http_req *req, size_t *len);
/* True once the client's connection is gone: a service may stop early. */
int http_req_gone(const struct http_req *req);

/* Adds a header to the reply; one that does not fit is dropped whole. */
void http_req_add_header(struct http_req *req, const char *name, const char *value);
/* The reply's Content-Type (a static string); application/json by default. */
void http_req_set_content_type(struct http_req *req, const char *type);
/* Names the service, for the access log and figures. */
void http_req_set_service(struct http_req *req, const char *name);

/* What completion hooks read. */
int http_req_status(const struct http_req *req);        /* 499: the client left first */
uint64_t http_req_bytes(const struct http_req *req);    /* body bytes sent */
uint64_t http_req_duration_us(const struct http_req *req);
const char *http_req_service(const struct http_req *req);   /* NULL: none */
void http_req_client(const struct http_req *req, char *buf, size_t len);

/* "GET, HEAD" for the bits of methods: the value of an Allow header. */
void http_allow(int methods, char *buf, size_t len);

/*
 * Percent-decodes s[0..n) into out (NUL-terminated); '+' becomes a space if
 * plus. Returns 0, or -1 on a bad escape, an encoded NUL, or no room.
 */
int http_unescape(const char *s, size_t n, char *out, size_t outlen, int plus);

/* An HTTP date, IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (HTTP_DATE_LEN with the NUL). */
#define HTTP_DATE_LEN 30
void http_date(time_t t, char *buf, size_t len);
/*
 * Reads an HTTP date in any of the three formats a recipient must take
 * (RFC 9110, 5.6.7): IMF-fixdate, RFC 850, asctime. 0, or -1 if s is none.
 */
int http_date_parse(const char *s, time_t *t);

/* The query string, parsed and decoded. */
struct http_params;
/* NULL when the query string is malformed; an empty set when there is none. */
struct http_params *http_params_parse(struct http_req *req);
/* The value of key, or NULL. */
const char *http_params_get(const struct http_params *p, const char *key);
void http_params_free(struct http_params *p);

/* ---- replies ---- */

/* A whole reply with the content type set (JSON by default); body is copied. */
void http_reply(struct http_req *req, int status, const char *body, size_t len);
/* The same with this Content-Type (a static string). */
void http_reply_type(struct http_req *req, int status, const char *type,
    const char *body, size_t len);
/*
 * A whole reply whose body is length bytes of the open file fd from offset,
 * with this Content-Type (a static string) and Content-Length: length. The
 * kernel sends the body (sendfile(), through a libevent file segment): it is
 * never read into memory, and nothing here blocks. The HTTP layer owns fd
 * from the call on, and closes it when the body is out, or at once for HEAD
 * (the headers of the GET reply), for 204 and 304, and when the client is
 * gone. A file found shorter than length as it is sent (truncated meanwhile)
 * closes the connection: the client sees the body incomplete.
 */
void http_reply_file(struct http_req *req, int status, const char *type, int fd,
    off_t offset, off_t length);
/* {"error":{"status":N,"code":"...","message":"..."}} */
void http_error(struct http_req *req, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A chunked reply: start, any number of chunks (drained from buf), end. */
void http_stream_start(struct http_req *req, int status);
void http_stream_chunk(struct http_req *req, struct evbuffer *buf);
void http_stream_end(struct http_req *req);
/*
 * Cuts a stream short: the connection is reset at once, without the end of
 * the body and dropping what the kernel still holds for it, so that the
 * client sees it incomplete now. The request is done.
 */
void http_stream_abort(struct http_req *req);
/*
 * Calls cb(arg) once when the unsent bytes fall to `below` or fewer, or
 * when the client is gone (check http_req_gone()): at once if that is
 * already so. A later call replaces the earlier; cb NULL cancels; ending
 * the request cancels.
 */
void http_stream_on_drain(struct http_req *req, size_t below, void (*cb)(void *), void *arg);
/*
 * Ends a request the service cannot finish (it is shutting down): a 503 if
 * the client is still there, nothing if it is gone.
 */
void http_drop(struct http_req *req);

/*
 * A connection handed over to a service, which now owns all of it: the
 * socket (non-blocking), what the client sent after the request, and what
 * is still to be written (the 101 head, if the socket did not take it all).
 */
struct http_upgraded {
	int fd;
	struct evbuffer *in;
	struct evbuffer *out;
	struct sockaddr_storage peer;
};

/*
 * Answers req with "101 Switching Protocols", "Connection: Upgrade" and the
 * headers the service added (Upgrade, Sec-WebSocket-Accept, ...), completes
 * the request, and hands the connection over in *u. Returns 0, or -1 when
 * the client is gone or memory ran out (then req is freed and nothing is
 * handed over).
 */
int http_upgrade(struct http_req *req, struct http_upgraded *u);

#endif
