/*
 * The health service, for load balancers (HAProxy's option httpchk, a
 * Kubernetes readiness probe):
 *
 *   GET {prefix}   200 {"status":"ok","generation":N} while the cluster serves,
 *                  503 {"status":"draining"} from the moment a graceful stop begins
 *
 * With drain_delay_ms, the master lets this fail for that long while every
 * other route still serves, so that a balancer moves traffic away before a
 * single connection is refused.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "http/http.h"
#include "svc/service.h"

struct health {
	const struct worker_info *w;
	const char *prefix;
	char ok[80];
	int ok_len;
};

static void *
health_init(const struct route_conf *route, const struct worker_info *w)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->w = w;
	h->prefix = route->prefix;
	h->ok_len = snprintf(h->ok, sizeof(h->ok), "{\"status\":\"ok\",\"generation\":%ld}",
	    w->generation);
	return h;
}

static void
health_handle(void *state, struct http_req *req, const char *subpath)
{
	static const char draining[] = "{\"status\":\"draining\"}";
	struct health *h = state;

	if (subpath[0] != '\0' && strcmp(subpath, "/") != 0) {
		http_error(req, 404, "not_found", "the health service answers %s only", h->prefix);
		return;
	}
	/* A balancer must not cache a verdict. */
	http_req_add_header(req, "Cache-Control", "no-store");
	if (h->w->draining)
		http_reply(req, 503, draining, sizeof(draining) - 1);
	else
		http_reply(req, 200, h->ok, (size_t)h->ok_len);
}

static void
health_shutdown(void *state)
{
	free(state);
}

const struct service health_service = {
	.name = "health",
	.methods = HTTP_M_GET | HTTP_M_HEAD,
	.init = health_init,
	.handle = health_handle,
	.shutdown = health_shutdown,
};
