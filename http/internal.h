/*
 * The HTTP layer's own structures, shared by its files and by nothing else:
 * a connection, a request, the server. Services see only http.h.
 *
 * A connection is IDLE (between requests), READING (a request has begun)
 * or in SERVICE (a service holds its request). While in SERVICE, further
 * input is kept aside until the reply is done. If the connection dies while
 * a service holds the request, the request is "gone": the service's reply
 * then only frees it.
 */
#ifndef CLUSTERD_HTTP_INTERNAL_H
#define CLUSTERD_HTTP_INTERNAL_H

#include <limits.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <llhttp.h>

#include "http/http.h"

#define PIPELINE_MAX (256 * 1024)    /* pipelined input kept behind a request */
#define OUTPUT_MAX (256 * 1024)      /* replies a client has not read yet */
#define EXTRA_HEADERS 512            /* bytes of headers a service may add */
#define SERVER_HEADERS 128           /* bytes of headers added to every reply */
#define NO_METHOD UINT_MAX           /* the request line was not understood */
#define HOOKS_MAX 4                  /* request-completion subscribers */

enum cstate { C_IDLE, C_READING, C_SERVICE };
enum ctimer { T_NONE, T_READ, T_KEEPALIVE, T_DEADLINE };

struct conn {
	struct http_server *srv;
	int fd;
	struct event *rev, *wev;
	llhttp_t parser;
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
	int upgraded;                /* handed over by http_upgrade(): free, do not close */
	int corked;                  /* TCP_CORK until the output is written (http_reply_file()) */
	struct timeval linger_end;
	size_t header_bytes;
	uint64_t body_bytes;
	int in_body;                 /* the request's headers are in, its body is not */
	int head_scan, head_text;    /* scan_head()'s state */
	const char *chunk_end;       /* where the last chunk data seen ended, in the input */
	int chunk_term;              /* bytes of the CRLF after it seen so far */
	int in_chunk_term;           /* between a chunk's data and its chunk_complete */
	int chunk_paused;            /* llhttp paused at a chunk's end */
	uint64_t deadline;           /* now_ms() by which the head (or body) must be in; 0: unset */
	int limit_status;            /* a refusal found by a parser callback */
	const char *refusal;         /* and its reason, when it has its own */
	int in_value;                /* the parser is inside a header's value */
	struct sockaddr_storage peer;
	TAILQ_ENTRY(conn) link;
};

/* A request header: offsets into its request's hbuf. */
struct hdr {
	uint32_t name, name_len, value, value_len;
};

struct http_req {
	/* Reset for every request: everything up to `url_inline` (keep it small). */
	struct conn *conn;           /* NULL once the connection is gone */
	struct http_server *srv;
	enum http_verb method;
	unsigned method_code;        /* llhttp's, for the access log */
	char *url;                   /* url_inline, or the heap for a long target */
	size_t url_len, url_cap;
	const char *path, *query;    /* into url, once split */
	int keep_alive, http10, head, upgrade;
	int streaming;
	void (*drain_cb)(void *);    /* http_stream_on_drain() */
	void *drain_arg;
	size_t drain_below;
	const char *content_type;    /* NULL: application/json */
	size_t extra_len;            /* of extra[] */
	const char *service;
	struct timeval start;        /* when a hook is subscribed */
	int status;
	uint64_t bytes;
	size_t nhdrs, hbuf_len, body_len;

	/* Set before use, or kept across the recycling of a request (grown as needed). */
	char url_inline[256];
	char extra[EXTRA_HEADERS];   /* headers a service added: extra_len of them */
	struct sockaddr_storage peer;    /* when a hook is subscribed, else family 0 */
	struct hdr *hdrs;
	size_t hdrs_cap;
	char *hbuf;                  /* header names and values, NUL-terminated */
	size_t hbuf_cap;
	char *body;
	size_t body_cap;
	struct http_req *next_free;
};

struct hook {
	http_complete_cb cb;
	void *arg;
};

struct http_server {
	struct event_base *base;
	struct http_limits lim;
	http_handler handler;
	void *arg;
	struct event **lev;
	int *lev_slot;                       /* -1: our own; else the slot adopted */
	size_t nlev;
	int stopped;                         /* http_server_stop_accepting() was called */
	int accept_paused;                   /* listeners_set(srv, 0) */
	struct event *accept_resume;
	size_t max_conns;                    /* limits.max_connections, or derived */
	int full;                            /* at max_conns: accepting paused or reaping */
	uint64_t reaped;                     /* idle connections closed for room, this episode */
	int reserve_fd;                      /* spent to accept-and-close when out of descriptors */
	uint64_t shed;                       /* connections closed that way, this episode */
	TAILQ_HEAD(, conn) conns;
	size_t nconns;
	const struct timeval *read_tv, *keepalive_tv;
	const struct timeval *grace_tv;      /* keep-alive while draining */
	long long grace_ms;                  /* the same, for lingering connections */
	int draining;
	int no_keepalive;                    /* http_server_close_keepalive() */
	void (*drain_done)(void *);
	void *drain_arg;
	struct event *drain_ev;
	struct hook hooks[HOOKS_MAX];
	size_t nhooks;
	char extra[SERVER_HEADERS];          /* http_server_add_header(): extra_len of them */
	size_t extra_len;
	uint64_t served;                     /* requests completed */
	size_t in_flight;                    /* requests held by services */
};

/* conn.c */
void conn_new(struct http_server *srv, int fd, const struct sockaddr_storage *peer);
void conn_close(struct conn *c);
void conn_release(struct conn *c);
void conn_linger(struct conn *c);
int conn_linger_for(struct conn *c, long long ms);
void conn_on_eof(struct conn *c);
void conn_set_keepalive_timer(struct conn *c);
void conn_drain_check(struct http_server *srv);
void conn_detach(struct conn *c);
struct conn *conn_idle_oldest(struct http_server *srv);

/* server.c */
void server_room(struct http_server *srv);
void fire_drain(struct http_req *r);

/* parse.c */
void parse_init(struct conn *c);
void process(struct conn *c, const char *data, size_t len);
void request_timeout(struct conn *c);

/* request.c */
struct http_req *req_new(struct conn *c);
void req_free(struct http_req *r);
/* A piece of a header's name or value; begins: the first piece. 0 or -1. */
int req_header_name(struct http_req *r, int begins, const char *at, size_t len);
int req_header_value(struct http_req *r, int begins, const char *at, size_t len);
int req_headers_end(struct http_req *r);
int req_body_add(struct http_req *r, const char *at, size_t len);

/* reply.c */
struct conn *reply_enter(struct http_req *r);
struct conn *reply_done(struct http_req *r);
void write_head(struct conn *c, struct http_req *r, int status, long long length);

#endif
