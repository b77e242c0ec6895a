#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "http/http.h"
#include "worker/accesslog.h"

static int fd = -1;
static char *target;                 /* NULL for stderr */
static enum access_log_format format;

int
accesslog_open(const char *path, enum access_log_format fmt)
{
	accesslog_close();
	format = fmt;
	if (path == NULL || strcmp(path, "off") == 0)
		return 0;
	if (strcmp(path, "stderr") == 0) {
		fd = STDERR_FILENO;
		return 0;
	}
	if ((target = strdup(path)) == NULL)
		return -1;
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		free(target);
		target = NULL;
		return -1;
	}
	return 0;
}

int
accesslog_reopen(void)
{
	int nfd;

	if (target == NULL)
		return 0;
	if ((nfd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1)
		return -1;
	close(fd);
	fd = nfd;
	return 0;
}

void
accesslog_close(void)
{
	if (fd > STDERR_FILENO)
		close(fd);
	fd = -1;
	free(target);
	target = NULL;
}

int
accesslog_enabled(void)
{
	return fd != -1;
}

/*
 * Copies s into buf for a quoted field of the combined format, the way
 * nginx does: quotes and backslashes escaped, other bytes that would break
 * the line as \xHH. (The JSON format uses json_escape().)
 */
static size_t
escape_combined(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	for (; *s != '\0' && n + 5 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			n += (size_t)snprintf(buf + n, len - n, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(buf + n, len - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return n;
}

void
accesslog_write(const struct access_entry *e)
{
	char line[4096 + 512], uri[4096], when[64];
	struct timeval tv;
	struct tm tm;
	int n;

	if (fd == -1)
		return;
	gettimeofday(&tv, NULL);
	if (format == ACCESS_LOG_JSON)
		json_escape(uri, sizeof(uri), e->uri);
	else
		escape_combined(uri, sizeof(uri), e->uri);
	if (format == ACCESS_LOG_JSON) {
		gmtime_r(&tv.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "{\"time\":\"%s.%03ldZ\",\"client\":\"%s\","
		    "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes\":%llu,"
		    "\"duration_us\":%llu,\"service\":%s%s%s,\"pid\":%ld}\n",
		    when, (long)tv.tv_usec / 1000, e->client, e->method, uri, e->status,
		    (unsigned long long)e->bytes, (unsigned long long)e->duration_us,
		    e->service ? "\"" : "", e->service ? e->service : "null",
		    e->service ? "\"" : "", (long)getpid());
	} else {
		localtime_r(&tv.tv_sec, &tm);
		strftime(when, sizeof(when), "%d/%b/%Y:%H:%M:%S %z", &tm);
		n = snprintf(line, sizeof(line), "%s - - [%s] \"%s %s %s\" %d %llu "
		    "\"-\" \"-\" %lluus %s %ld\n", e->client, when, e->method, uri, e->protocol,
		    e->status,
		    (unsigned long long)e->bytes, (unsigned long long)e->duration_us,
		    e->service ? e->service : "-", (long)getpid());
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* One write per line: O_APPEND keeps the workers' lines whole. */
	if (write(fd, line, (size_t)n) < 0) {
		/* a full disk must not stop serving */
	}
}

void
accesslog_request(const struct http_req *req, void *arg)
{
	char uri[4096], client[64];
	struct access_entry e;

	(void)arg;
	http_req_target(req, uri, sizeof(uri));
	http_req_client(req, client, sizeof(client));
	e.client = client;
	e.method = http_req_method_name(req);
	e.uri = uri;
	e.protocol = http_req_version(req);
	e.status = http_req_status(req);
	e.bytes = http_req_bytes(req);
	e.duration_us = http_req_duration_us(req);
	e.service = http_req_service(req);
	accesslog_write(&e);
}
