/*
 * The worker's HTTP/1.1 server: connections accepted on the inherited
 * listening sockets, requests parsed with Node's http_parser, JSON replies
 * and errors, keep-alive and pipelining, the limits of the config, and the
 * bookkeeping that a graceful shutdown waits for.
 *
 * Every request handed to the handler must end in exactly one of
 * http_reply() / http_error() / http_stream_end() / http_drop(); the
 * request must not be used after that.
 */
#ifndef CLUSTERD_HTTP_H
#define CLUSTERD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf/config.h"

/* A request as routers and services see it. */
struct http_req;
struct http_server;

/* Request methods as bits, so that a service can name the set it takes. */
enum http_verb {
	HTTP_M_GET = 1 << 0, HTTP_M_HEAD = 1 << 1, HTTP_M_POST = 1 << 2, HTTP_M_PUT = 1 << 3,
	HTTP_M_DELETE = 1 << 4, HTTP_M_OPTIONS = 1 << 5, HTTP_M_PATCH = 1 << 6,
	HTTP_M_OTHER = 1 << 7,
};

typedef void (*http_handler)(struct http_req *req, void *arg);

/* A server on base with the limits of the config; handler gets every request. */
struct http_server *http_server_new(struct event_base *base, const struct limits_conf *lim,
    http_handler handler, void *arg);
/* Accepts on these listening sockets (the server takes them over). */
int http_server_listen(struct http_server *srv, const int *fds, size_t nfds);
/* Stops accepting and closes our copies of the listening sockets. */
void http_server_stop_accepting(struct http_server *srv);
/* Closes every connection; requests still held by services become gone. */
void http_server_free(struct http_server *srv);

/*
 * Draining: every further reply carries "Connection: close", idle
 * keep-alive connections get one second (or keepalive_timeout_ms, if
 * shorter) to send a last request before they close, and done() is called
 * (from the event loop, once) when no connection is left. Returns 0 or -1.
 */
int http_drain(struct http_server *srv, void (*done)(void *), void *arg);

/* Accounting, for the stats message. */
uint64_t http_requests_served(void);
size_t http_in_flight(void);

enum http_verb http_req_method(struct http_req *req);
/* The path of the request target, not decoded. */
const char *http_req_path(struct http_req *req);
/* The query string (after '?'), not decoded, or NULL. */
const char *http_req_query(struct http_req *req);
void http_req_add_header(struct http_req *req, const char *name, const char *value);
/* Names the service for the access log. */
void http_req_set_service(struct http_req *req, const char *name);
/* True once the client's connection is gone: a service may stop early. */
int http_req_gone(const struct http_req *req);

/*
 * Percent-decodes s[0..n) into out (NUL-terminated); '+' becomes a space if
 * plus. Returns 0, or -1 on a bad escape, an encoded NUL, or no room.
 */
int http_unescape(const char *s, size_t n, char *out, size_t outlen, int plus);

/* The query string, parsed and decoded. */
struct http_params;
/* NULL when the query string is malformed; an empty set when there is none. */
struct http_params *http_params_parse(struct http_req *req);
/* The value of key, or NULL. */
const char *http_params_get(const struct http_params *p, const char *key);
void http_params_free(struct http_params *p);

/* A whole JSON reply; body is copied. */
void http_reply(struct http_req *req, int status, const char *body, size_t len);
/* {"error":{"status":N,"code":"...","message":"..."}} */
void http_error(struct http_req *req, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A chunked JSON reply: start, any number of chunks (drained from buf), end. */
void http_stream_start(struct http_req *req, int status);
void http_stream_chunk(struct http_req *req, struct evbuffer *buf);
void http_stream_end(struct http_req *req);
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

#endif
