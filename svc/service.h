/*
 * The service interface. A service is a request handler mounted on a path
 * prefix by a route; the router knows nothing of any service beyond this.
 *
 * It has two halves that run in different processes:
 * - the config half (keys, configure, conf_free) runs in the master, at
 *   start and on every reload: it validates the route's own options into a
 *   private config, which the workers inherit across fork();
 * - the runtime half runs in each worker, on its event loop, and must never
 *   block: init() after fork, handle() for each request, drain() when a
 *   graceful stop begins, stats() when figures are asked for, shutdown()
 *   when the worker exits.
 */
#ifndef CLUSTERD_SERVICE_H
#define CLUSTERD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/event.h>
#include <json-c/json.h>

struct config;
struct route_conf;
struct http_req;

/* What a service learns about the worker it runs in. */
struct worker_info {
	struct event_base *base;
	pid_t pid;
	int slot;
	long generation;
	bool draining;               /* a graceful stop has begun (drain_delay_ms, then the drain) */
	long long shutdown_timeout_ms;   /* a graceful stop's deadline: drains fit in it */
	const char *host_uid;        /* 16 hex digits naming this master, the same in all its workers */
	/*
	 * Sends one message (the iovecs, gathered) to the same route's service
	 * in each of this master's other workers, in order, through the master
	 * (ipc/bus.h); topic is "service prefix". With echo, to this worker
	 * too, once the master has queued it for all the others: messages sent
	 * with echo reach every worker in one order. 0, or -1 when it was
	 * dropped (too big, or the bus is backed up). Never blocks.
	 */
	int (*bus_send)(const char *topic, bool echo, const struct iovec *iov, int iovcnt);
};

/*
 * One figure a service reports: a counter (only ever grows while the
 * worker lives) or a gauge, with at most one label besides the route's
 * prefix. Names follow Prometheus' conventions, without the "clusterd_".
 */
enum svc_figure_kind { SVC_COUNTER, SVC_GAUGE };

struct svc_figure {
	const char *name;            /* "readmongo_errors_total" */
	enum svc_figure_kind kind;
	const char *label;           /* "kind", or NULL */
	const char *label_value;     /* "unavailable" */
	uint64_t value;
};

typedef void (*svc_emit)(void *ctx, const struct svc_figure *f);

struct service {
	const char *name;
	/* The methods it takes (enum http_verb bits); the router answers others
	 * with 405 and an Allow header derived from these. */
	int methods;

	/* ---- the config half: in the master (all NULL: it takes no option) ---- */
	const char *const *keys;     /* route options, besides prefix and service */
	int (*configure)(json_object *route, const char *path, void **conf,
	    char *err, size_t errlen);
	void (*conf_free)(void *conf);

	/* ---- the runtime half: in a worker, on its loop ---- */
	/* Returns the worker's state for the route, or NULL (the worker exits). */
	void *(*init)(const struct route_conf *route, const struct worker_info *w);
	/* subpath: the path after the prefix ("" or "/..."), not decoded. */
	void (*handle)(void *state, struct http_req *req, const char *subpath);
	/*
	 * A graceful stop began. Requests in flight are the HTTP layer's to
	 * wait for; what the service holds beyond them (connections taken over
	 * with http_upgrade(), subscriptions) it must now tell to go, and call
	 * done(arg) once when nothing is left, at once if nothing was. NULL:
	 * the service holds nothing beyond its requests.
	 */
	void (*drain)(void *state, void (*done)(void *arg), void *arg);
	/* A message from the same route in another worker (bus_send). NULL: none. */
	void (*bus_recv)(void *state, const unsigned char *msg, size_t len);
	/* Reports the route's figures through emit(ctx, ...). NULL: none. */
	void (*stats)(void *state, svc_emit emit, void *ctx);
	void (*shutdown)(void *state);
};

/*
 * The registry (svc/registry.c). Some services are modules (NAME.so),
 * loaded the first time they are asked for: a failure to load says why in
 * err. Indexes are stable for the life of the process.
 */
size_t service_count(void);
const char *service_name_at(size_t i);
const struct service *service_at(size_t i, char *err, size_t errlen);
const struct service *service_find(const char *name, char *err, size_t errlen);
/* The index of the loaded service whose name is this very pointer, or -1. */
int service_index(const char *name);

/*
 * Resolves every route of cfg to its service and has the service validate
 * the route's options into its private config (in the master, at start and
 * on every reload). 0, or -1 with "file: routes[i].key: problem" in err.
 */
int svc_resolve_routes(struct config *cfg, char *err, size_t errlen);

#endif
