#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "http/http.h"
#include "worker/router.h"

struct router {
	const struct config *cfg;
	void **states;               /* one per route, from service->init */
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
	for (size_t i = 0; i < r->cfg->nroutes; i++)
		if (r->states[i] != NULL)
			r->cfg->routes[i].service->shutdown(r->states[i]);
	free(r->states);
	free(r);
}

void
router_handle(struct http_req *req, void *arg)
{
	struct router *r = arg;
	const struct service *svc;
	const char *path = http_req_path(req), *sub;
	int i;

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
		http_req_add_header(req, "Allow", svc->allow);
		http_error(req, 405, "method_not_allowed", "this path takes %s", svc->allow);
		return;
	}
	svc->handle(r->states[i], req, sub);
}
