/*
 * Prints every key the config parser accepts, from the parser's own lists,
 * for t/man.t to look up in clusterd.conf(5). One per line:
 *
 *   top KEY              config_top_keys
 *   limits KEY           config_limits_keys ("limits.KEY")
 *   route KEY            config_route_keys
 *   service NAME         every entry of services[]
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
	for (size_t i = 0; services[i] != NULL; i++) {
		printf("service %s\n", services[i]->name);
		for (const char *const *k = services[i]->keys; k != NULL && *k != NULL; k++)
			printf("option %s %s\n", services[i]->name, *k);
	}
	return ferror(stdout) ? 1 : 0;
}
