/*
 * The registry of services, the loading of those that live in modules, and
 * the resolution of a config's routes to them. A new service is a new file
 * under svc/ plus one line below: X(name) for one built in, M(name) for one
 * built as a module (svc/NAME.so, loaded only when a route names it).
 */
#include "config.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "svc/service.h"

#define SERVICES(X, M) \
	X(dummy) \
	X(health) \
	X(metrics) \
	X(static) \
	M(readmongo) \
	M(socketio)

#define DECLARE(name) extern const struct service name##_service;
#define NONE(name)
SERVICES(DECLARE, NONE)

static struct entry {
	const char *name;
	const struct service *svc;       /* NULL until its module is loaded */
	int module;
} registry[] = {
#define BUILTIN(name) { #name, &name##_service, 0 },
#define MODULE(name) { #name, NULL, 1 },
	SERVICES(BUILTIN, MODULE)
};

#define NENTRIES (sizeof(registry) / sizeof(registry[0]))

/*
 * Where NAME.so is: $CLUSTERD_MODULE_DIR, else beside the running binary
 * (a build tree), else the installed module directory.
 */
static void *
open_module(const char *name, char *err, size_t errlen)
{
	char dirs[3][PATH_MAX], path[PATH_MAX + 64];
	const char *env = getenv("CLUSTERD_MODULE_DIR");
	ssize_t n;
	int nd = 0;
	void *h;

	if (env != NULL && *env != '\0')
		snprintf(dirs[nd++], sizeof(dirs[0]), "%s", env);
	if ((n = readlink("/proc/self/exe", dirs[nd], sizeof(dirs[0]) - 1)) > 0) {
		char *slash;
		dirs[nd][n] = '\0';
		if ((slash = strrchr(dirs[nd], '/')) != NULL) {
			*slash = '\0';
			nd++;
		}
	}
	snprintf(dirs[nd++], sizeof(dirs[0]), "%s", MODULEDIR);
	/*
	 * libmongoc (readmongo's) initializes itself as it is loaded and keeps
	 * its counters, which clusterd never reads, in /dev/shm/mongoc-PID,
	 * made with O_EXCL: a process killed with -9 leaves the file behind,
	 * and a later process given the same pid logs a warning (clusterd -t
	 * then prints it before "ok"). Unless the environment says otherwise,
	 * it keeps them in memory.
	 */
	setenv("MONGOC_DISABLE_SHM", "1", 0);
	for (int i = 0; i < nd; i++) {
		snprintf(path, sizeof(path), "%.*s/%.32s.so", PATH_MAX - 1, dirs[i], name);
		if (access(path, R_OK) != 0)
			continue;
		/* RTLD_NOW: a module that does not fit this binary fails here, not mid-request. */
		if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
			return h;
		snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
		return NULL;
	}
	snprintf(err, errlen, "its module %s.so is not in $CLUSTERD_MODULE_DIR, beside the "
	    "program, nor in %s", name, MODULEDIR);
	return NULL;
}

/* The service of entry e, loading its module the first time. */
static const struct service *
load(struct entry *e, char *err, size_t errlen)
{
	char sym[64];
	void *h;

	if (e->svc != NULL)
		return e->svc;
	if ((h = open_module(e->name, err, errlen)) == NULL)
		return NULL;
	snprintf(sym, sizeof(sym), "%s_service", e->name);
	if ((e->svc = dlsym(h, sym)) == NULL) {
		snprintf(err, errlen, "module %s.so has no %s", e->name, sym);
		dlclose(h);
	}
	return e->svc;                   /* the module stays loaded for good */
}

size_t
service_count(void)
{
	return NENTRIES;
}

const char *
service_name_at(size_t i)
{
	return i < NENTRIES ? registry[i].name : NULL;
}

const struct service *
service_at(size_t i, char *err, size_t errlen)
{
	return i < NENTRIES ? load(&registry[i], err, errlen) : NULL;
}

const struct service *
service_find(const char *name, char *err, size_t errlen)
{
	for (size_t i = 0; i < NENTRIES; i++)
		if (strcmp(registry[i].name, name) == 0)
			return load(&registry[i], err, errlen);
	snprintf(err, errlen, "no such service");
	return NULL;
}

int
service_index(const char *name)
{
	for (size_t i = 0; i < NENTRIES; i++)
		if (registry[i].svc != NULL && registry[i].svc->name == name)
			return (int)i;
	return -1;
}

/* "dummy, health, ..." */
static void
service_names(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NENTRIES && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", registry[i].name);
}

static int
resolve(struct route_conf *rt, const char *path, char *err, size_t errlen)
{
	const struct service *svc = NULL;
	char known[256], why[512];
	size_t i;

	for (i = 0; i < NENTRIES && strcmp(registry[i].name, rt->service_name) != 0; i++)
		;
	if (i == NENTRIES) {
		service_names(known, sizeof(known));
		snprintf(err, errlen, "%s.service: unknown service \"%s\" (known: %s)",
		    path, rt->service_name, known);
		return -1;
	}
	if ((svc = load(&registry[i], why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s.service: \"%s\": %s", path, rt->service_name, why);
		return -1;
	}
	if (conf_check_keys(rt->options, path, config_route_keys, svc->keys, err, errlen) == -1)
		return -1;
	/* Everything but prefix and service belongs to the service's own validator. */
	if (svc->configure != NULL &&
	    svc->configure(rt->options, path, &rt->service_conf, err, errlen) == -1)
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
