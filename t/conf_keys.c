/*
 * Prints every key the config parser accepts, from the parser's own lists,
 * for t/man.t to look up in clusterd.conf(5). One per line:
 *
 *   top KEY              config_top_keys
 *   limits KEY           config_limits_keys ("limits.KEY")
 *   route KEY            config_route_keys
 *   service NAME         every service of the registry (modules loaded)
 *   option NAME KEY      each of that service's route options (its keys)
 */
#include "config.h"

#include <stdio.h>

#include "conf/config.h"
#include "svc/service.h"

static void
list(const char *kind, const char *const *keys)
{
	for (; keys != NULL && *keys != NULL; keys++)
		printf("%s %s\n", kind, *keys);
}

int
main(void)
{
	list("top", config_top_keys);
	list("limits", config_limits_keys);
	list("route", config_route_keys);
	for (size_t i = 0; i < service_count(); i++) {
		char err[512];
		const struct service *svc = service_at(i, err, sizeof(err));
		if (svc == NULL) {
			fprintf(stderr, "conf_keys: %s: %s\n", service_name_at(i), err);
			return 1;
		}
		printf("service %s\n", svc->name);
		for (const char *const *k = svc->keys; k != NULL && *k != NULL; k++)
			printf("option %s %s\n", svc->name, *k);
	}
	return ferror(stdout) ? 1 : 0;
}
