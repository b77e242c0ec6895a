/*
 * The router: maps a request path to the route with the longest matching
 * prefix and hands it to that route's service. A prefix matches the path
 * itself and anything below it ("/a" matches "/a" and "/a/b", not "/ab").
 */
#ifndef CLUSTERD_ROUTER_H
#define CLUSTERD_ROUTER_H

#include "conf/config.h"
#include "svc/service.h"

struct router;

/* Pure matching, for unit tests: index of the route, or -1; *sub gets the rest. */
int router_match(const struct route_conf *routes, size_t nroutes, const char *path,
    const char **sub);

/* Initialises every route's service in this worker; NULL on failure. */
struct router *router_new(const struct config *cfg, const struct worker_info *w);
void router_free(struct router *r);
/* The HTTP handler; arg is the router. */
void router_handle(struct http_req *req, void *arg);
/*
 * Tells every route's service that a graceful stop began; done(arg) runs
 * once, when each has said it holds nothing more (at once if none holds
 * anything).
 */
void router_drain(struct router *r, void (*done)(void *arg), void *arg);
/*
 * A message on the bus for topic "service prefix": to that route's service,
 * if this worker has such a route (another generation may not).
 */
void router_bus(struct router *r, const char *topic, const unsigned char *msg, size_t len);
/* Every route's figures: emit(ctx, prefix, figure). */
void router_stats(struct router *r,
    void (*emit)(void *ctx, const char *prefix, const struct svc_figure *f), void *ctx);

#endif
