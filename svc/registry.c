/*
 * The registry of services, and the resolution of a config's routes to
 * them. A new service is a new file under svc/ plus one line below.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf/config.h"
#include "svc/service.h"

/* The registry: one line per service, X(name) for its name##_service. */
#define SERVICES(X) \
	X(dummy) \
	X(health) \
	X(metrics) \
	X(readmongo)

#define DECLARE(name) extern const struct service name##_service;
#define ENTRY(name) &name##_service,
SERVICES(DECLARE)
const struct service *const services[] = { SERVICES(ENTRY) NULL };

const struct service *
service_find(const char *name)
{
	for (size_t i = 0; services[i] != NULL; i++)
		if (strcmp(services[i]->name, name) == 0)
			return services[i];
	return NULL;
}

int
service_index(const char *name)
{
	for (int i = 0; services[i] != NULL; i++)
		if (services[i]->name == name)
			return i;
	return -1;
}

/* "dummy, readmongo" */
static void
service_names(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; services[i] != NULL && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", services[i]->name);
}

static int
resolve(struct route_conf *rt, const char *path, char *err, size_t errlen)
{
	const struct service *svc = service_find(rt->service_name);
	char known[256];

	if (svc == NULL) {
		service_names(known, sizeof(known));
		snprintf(err, errlen, "%s.service: unknown service \"%s\" (known: %s)",
		    path, rt->service_name, known);
		return -1;
	}
	if (conf_check_keys(rt->options, path, config_route_keys, svc->keys, err, errlen) == -1)
		return -1;
	/* Everything but prefix and service belongs to the service's own validator. */
	if (svc->configure(rt->options, path, &rt->service_conf, err, errlen) == -1)
		return -1;
	rt->service = svc;
	rt->service_conf_free = svc->conf_free;
	return 0;
}

int
svc_resolve_routes(struct config *cfg, char *err, size_t errlen)
{
	char path[32], why[768];

	for (size_t i = 0; i < cfg->nroutes; i++) {
		snprintf(path, sizeof(path), "routes[%zu]", i);
		if (resolve(&cfg->routes[i], path, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s", cfg->path, why);
			return -1;
		}
	}
	return 0;
}
