#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http.h"
#include "worker/router.h"

struct router {
	const struct config *cfg;
	void **states;               /* one per route, from service->init */
	/* router_drain(): services yet to say they are done, and whom to tell */
	size_t draining;
	void (*drained)(void *);
	void *drained_arg;
	int stopping;                /* router_free() is shutting the services down */
};

int
router_match(const struct route_conf *routes, size_t nroutes, const char *path,
    const char **sub)
{
	int best = -1;
	size_t best_len = 0;

	for (size_t i = 0; i < nroutes; i++) {
		const struct route_conf *rt = &routes[i];
		size_t n = rt->prefix_len;

		if (n == 1) {   /* "/" matches everything */
			if (best == -1) {
				best = (int)i;
				best_len = 0;
			}
			continue;
		}
		if (strncmp(path, rt->prefix, n) != 0 || (path[n] != '\0' && path[n] != '/'))
			continue;
		if (best == -1 || n > best_len) {
			best = (int)i;
			best_len = n;
		}
	}
	if (best != -1 && sub != NULL)
		*sub = path + best_len;
	return best;
}

struct router *
router_new(const struct config *cfg, const struct worker_info *w)
{
	struct router *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->states = calloc(cfg->nroutes, sizeof(void *))) == NULL) {
		free(r);
		return NULL;
	}
	r->cfg = cfg;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct route_conf *rt = &cfg->routes[i];
		if ((r->states[i] = rt->service->init(rt, w)) == NULL) {
			log_error("route %s: service %s failed to start", rt->prefix,
			    rt->service->name);
			router_free(r);
			return NULL;
		}
	}
	return r;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	/*
	 * A service's shutdown answers the requests it holds; a request
	 * pipelined behind one of them is then parsed and routed, perhaps to
	 * a service already shut down: it gets a 503 instead.
	 */
	r->stopping = 1;
	for (size_t i = 0; i < r->cfg->nroutes; i++) {
		void *state = r->states[i];
		r->states[i] = NULL;
		if (state != NULL)
			r->cfg->routes[i].service->shutdown(state);
	}
	free(r->states);
	free(r);
}

static void
route_drained(void *arg)
{
	struct router *r = arg;

	if (r->draining > 0 && --r->draining == 0)
		r->drained(r->drained_arg);
}

void
router_drain(struct router *r, void (*done)(void *arg), void *arg)
{
	r->drained = done;
	r->drained_arg = arg;
	/* One more than the services, released below, so done() runs once, last. */
	r->draining = r->cfg->nroutes + 1;
	for (size_t i = 0; i < r->cfg->nroutes; i++) {
		const struct service *svc = r->cfg->routes[i].service;
		if (svc->drain != NULL)
			svc->drain(r->states[i], route_drained, r);
		else
			route_drained(r);
	}
	route_drained(r);
}

void
router_bus(struct router *r, const char *topic, const unsigned char *msg, size_t len)
{
	const char *sp = strchr(topic, ' ');

	if (r->stopping || sp == NULL)
		return;
	for (size_t i = 0; i < r->cfg->nroutes; i++) {
		const struct route_conf *rt = &r->cfg->routes[i];
		if (rt->service->bus_recv != NULL && strcmp(rt->prefix, sp + 1) == 0 &&
		    strlen(rt->service->name) == (size_t)(sp - topic) &&
		    strncmp(rt->service->name, topic, (size_t)(sp - topic)) == 0) {
			rt->service->bus_recv(r->states[i], msg, len);
			return;
		}
	}
}

struct stats_ctx {
	void (*emit)(void *ctx, const char *prefix, const struct svc_figure *f);
	void *ctx;
	const char *prefix;
};

static void
emit_route(void *arg, const struct svc_figure *f)
{
	struct stats_ctx *s = arg;

	s->emit(s->ctx, s->prefix, f);
}

void
router_stats(struct router *r,
    void (*emit)(void *ctx, const char *prefix, const struct svc_figure *f), void *ctx)
{
	struct stats_ctx s = { emit, ctx, NULL };

	for (size_t i = 0; i < r->cfg->nroutes; i++) {
		const struct service *svc = r->cfg->routes[i].service;
		s.prefix = r->cfg->routes[i].prefix;
		if (svc->stats != NULL)
			svc->stats(r->states[i], emit_route, &s);
	}
}

void
router_handle(struct http_req *req, void *arg)
{
	struct router *r = arg;
	const struct service *svc;
	const char *path = http_req_path(req), *sub;
	int i;

	if (r->stopping) {
		http_error(req, 503, "shutting_down", "the server is shutting down");
		return;
	}
	if (path == NULL || path[0] != '/') {
		http_error(req, 400, "bad_request", "the request target must be an absolute path");
		return;
	}
	if ((i = router_match(r->cfg->routes, r->cfg->nroutes, path, &sub)) == -1) {
		http_error(req, 404, "not_found", "no route for this path");
		return;
	}
	svc = r->cfg->routes[i].service;
	http_req_set_service(req, svc->name);
	if ((http_req_method(req) & svc->methods) == 0) {
		char allow[64];
		http_allow(svc->methods, allow, sizeof(allow));
		http_req_add_header(req, "Allow", allow);
		http_error(req, 405, "method_not_allowed", "this path takes %s", allow);
		return;
	}
	svc->handle(r->states[i], req, sub);
}
