/*
 * The access log: one line per request, written by each worker with one
 * write(2) to an O_APPEND descriptor, so lines from several workers never
 * interleave mid-line. "combined" is Apache/nginx's combined format with
 * the duration, service and worker pid appended; "json" is one object per
 * line.
 */
#ifndef CLUSTERD_ACCESSLOG_H
#define CLUSTERD_ACCESSLOG_H

#include <stdint.h>

#include "conf/config.h"

struct access_entry {
	const char *client;
	const char *method;
	const char *uri;             /* the request target as sent */
	const char *protocol;        /* "HTTP/1.1" */
	int status;
	uint64_t bytes;
	uint64_t duration_us;
	const char *service;         /* NULL: answered by the router */
};

/* path: "stderr" or a file; NULL or "off" disables. 0, or -1 with errno. */
int accesslog_open(const char *path, enum access_log_format format);
int accesslog_reopen(void);
void accesslog_close(void);
int accesslog_enabled(void);
void accesslog_write(const struct access_entry *e);

struct http_req;
/* The HTTP server's completion hook: one line for req. */
void accesslog_request(const struct http_req *req, void *arg);

#endif
