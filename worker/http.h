/*
 * The worker's HTTP server: evhttp over the inherited listening sockets,
 * the limits of the config, JSON replies and errors, and the bookkeeping of
 * requests in flight that a graceful shutdown waits for.
 *
 * Every request the router dispatches must end in exactly one of
 * http_reply() / http_error() / http_stream_end().
 */
#ifndef CLUSTERD_HTTP_H
#define CLUSTERD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "conf/config.h"

typedef void (*http_handler)(struct evhttp_request *req, void *arg);

/* Sets up evhttp on base with cfg's limits; handler gets every request. */
struct evhttp *http_server_new(struct event_base *base, const struct limits_conf *lim,
    http_handler handler, void *arg);
int http_server_listen(struct evhttp *http, const int *fds, size_t nfds);
/* Stops accepting; in-flight requests go on. */
void http_server_stop_accepting(struct evhttp *http);

/*
 * Draining: every further reply carries "Connection: close", and done()
 * is called (from the event loop, once) when no request is in flight.
 */
void http_drain(struct event_base *base, void (*done)(void *), void *arg);

/* Accounting, for the stats message. */
uint64_t http_requests_served(void);
size_t http_in_flight(void);

/* Called by the router before a request goes to a service. */
void http_request_begin(struct evhttp_request *req);

/* A whole JSON reply; body is copied. */
void http_reply(struct evhttp_request *req, int status, const char *body, size_t len);
/* {"error":{"status":N,"code":"...","message":"..."}} */
void http_error(struct evhttp_request *req, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A chunked JSON reply: start, any number of chunks (drained from buf), end. */
void http_stream_start(struct evhttp_request *req, int status);
void http_stream_chunk(struct evhttp_request *req, struct evbuffer *buf);
void http_stream_end(struct evhttp_request *req);

/* Appends s to buf as a JSON string literal, quotes included. */
void http_json_quote(struct evbuffer *buf, const char *s);

#endif
