#include "config.h"

#include <stdio.h>
#include <string.h>

#include "svc/service.h"

extern const struct service dummy_service;
extern const struct service readmongo_service;

/* The registry: add a service here and it can be routed to. */
const struct service *const services[] = {
	&dummy_service,
	&readmongo_service,
	NULL
};

const struct service *
service_find(const char *name)
{
	for (size_t i = 0; services[i] != NULL; i++)
		if (strcmp(services[i]->name, name) == 0)
			return services[i];
	return NULL;
}

void
service_names(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; services[i] != NULL && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", services[i]->name);
}
