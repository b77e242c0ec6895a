/*
 * The dummy service: a trivial JSON answer, the baseline for benchmarks and
 * health checks.
 *
 *   GET {prefix}                  {"service":"dummy","ok":true,"pid":..,"slot":..,"generation":..}
 *   GET {prefix}/delay?ms=N       the same plus "delayed_ms":N, after N ms (0..60000)
 *
 * A delayed request costs one timer and no thread: one worker holds
 * thousands of them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "common/time.h"
#include "conf/config.h"
#include "http/http.h"
#include "svc/service.h"

#define DELAY_MAX_MS 60000

struct delayed;

struct dummy {
	const struct worker_info *w;
	TAILQ_HEAD(, delayed) pending;   /* delayed requests not answered yet */
	const char *prefix;
	char body[160];              /* the answer is the same for every request */
	int body_len;
};

struct delayed {
	struct dummy *d;
	struct http_req *req;
	struct event *timer;
	long ms;
	TAILQ_ENTRY(delayed) link;
};

static void *
dummy_init(const struct route_conf *route, const struct worker_info *w)
{
	struct dummy *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->w = w;
	d->prefix = route->prefix;
	TAILQ_INIT(&d->pending);
	d->body_len = snprintf(d->body, sizeof(d->body),
	    "{\"service\":\"dummy\",\"ok\":true,\"pid\":%ld,\"slot\":%d,\"generation\":%ld}",
	    (long)w->pid, w->slot, w->generation);
	return d;
}

static void
delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *dl = arg;
	char body[200];
	int n;

	(void)fd;
	(void)what;
	/* The same object with one more member: cut the closing brace. */
	n = snprintf(body, sizeof(body), "%.*s,\"delayed_ms\":%ld}",
	    dl->d->body_len - 1, dl->d->body, dl->ms);
	http_reply(dl->req, 200, body, (size_t)n);
	TAILQ_REMOVE(&dl->d->pending, dl, link);
	event_free(dl->timer);
	free(dl);
}

/* ms from the query string: 0..DELAY_MAX_MS, or -1. */
static long
parse_ms(struct http_req *req)
{
	struct http_params *params = http_params_parse(req);
	const char *v;
	char *end;
	long ms = -1;

	if (params == NULL)
		return -1;
	if ((v = http_params_get(params, "ms")) != NULL && *v >= '0' && *v <= '9') {
		errno = 0;
		ms = strtol(v, &end, 10);
		if (errno != 0 || *end != '\0' || ms > DELAY_MAX_MS)
			ms = -1;
	}
	http_params_free(params);
	return ms;
}

static void
delay(struct dummy *d, struct http_req *req)
{
	struct delayed *dl;
	long ms = parse_ms(req);

	if (ms < 0) {
		http_error(req, 400, "bad_request",
		    "ms must be an integer from 0 to %d", DELAY_MAX_MS);
		return;
	}
	if ((dl = calloc(1, sizeof(*dl))) == NULL ||
	    (dl->timer = evtimer_new(d->w->base, delay_done, dl)) == NULL) {
		free(dl);
		http_error(req, 503, "overloaded", "out of memory");
		return;
	}
	dl->d = d;
	dl->req = req;
	dl->ms = ms;
	TAILQ_INSERT_TAIL(&d->pending, dl, link);
	struct timeval tv = ms_tv(ms);
	evtimer_add(dl->timer, &tv);
}

static void
dummy_handle(void *state, struct http_req *req, const char *subpath)
{
	struct dummy *d = state;

	if (subpath[0] == '\0' || strcmp(subpath, "/") == 0)
		http_reply(req, 200, d->body, (size_t)d->body_len);
	else if (strcmp(subpath, "/delay") == 0)
		delay(d, req);
	else
		http_error(req, 404, "not_found", "the dummy service serves %s and %s/delay?ms=N",
		    d->prefix, d->prefix);
}

static void
dummy_stats(void *state, svc_emit emit, void *ctx)
{
	struct dummy *d = state;
	struct svc_figure f = { .name = "dummy_delayed_requests", .kind = SVC_GAUGE };
	struct delayed *dl;

	TAILQ_FOREACH(dl, &d->pending, link)
		f.value++;
	emit(ctx, &f);
}

static void
dummy_shutdown(void *state)
{
	struct dummy *d = state;
	struct delayed *dl;

	/* Only requests whose clients left can still wait here after a drain. */
	while ((dl = TAILQ_FIRST(&d->pending)) != NULL) {
		TAILQ_REMOVE(&d->pending, dl, link);
		event_free(dl->timer);
		http_drop(dl->req);
		free(dl);
	}
	free(d);
}

const struct service dummy_service = {
	.name = "dummy",
	.methods = HTTP_M_GET | HTTP_M_HEAD,
	.init = dummy_init,
	.handle = dummy_handle,
	.stats = dummy_stats,
	.shutdown = dummy_shutdown,
};
