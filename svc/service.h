/*
 * The service interface. A service is a request handler mounted on a path
 * prefix by a route; the router knows nothing of any service beyond this.
 *
 * Life cycle: configure() validates the route's own options in the master
 * (at start and on every reload) and builds a private config; init() runs in
 * each worker after fork; handle() serves requests on the event loop and
 * must never block; shutdown() releases the worker's state when it exits.
 */
#ifndef CLUSTERD_SERVICE_H
#define CLUSTERD_SERVICE_H

#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>
#include <json-c/json.h>

struct route_conf;
struct http_req;

/* What a service learns about the worker it runs in. */
struct worker_info {
	struct event_base *base;
	pid_t pid;
	int slot;
	long generation;
};

struct service {
	const char *name;
	const char *const *keys;     /* route options, besides prefix and service */
	int methods;                 /* enum http_verb bits it takes; others get 405 */
	const char *allow;           /* the Allow header for a 405 */
	int (*configure)(json_object *route, const char *path, void **conf,
	    char *err, size_t errlen);
	void (*conf_free)(void *conf);
	/* Returns the worker's state for the route, or NULL (the worker exits). */
	void *(*init)(const struct route_conf *route, const struct worker_info *w);
	/* subpath: the path after the prefix ("" or "/..."), not decoded. */
	void (*handle)(void *state, struct http_req *req, const char *subpath);
	void (*shutdown)(void *state);
};

struct config;

/* NULL-terminated list of every service: svc/registry.c. */
extern const struct service *const services[];
const struct service *service_find(const char *name);

/*
 * Resolves every route of cfg to its service and has the service validate
 * the route's options into its private config (in the master, at start and
 * on every reload). 0, or -1 with "file: routes[i].key: problem" in err.
 */
int svc_resolve_routes(struct config *cfg, char *err, size_t errlen);

#endif
