/*
 * Small shared macros: container_of() to go from an embedded member back to
 * its owner (how pool jobs and messages find the request they belong to),
 * and nitems() for the length of a static array.
 */
#ifndef CLUSTERD_UTIL_H
#define CLUSTERD_UTIL_H

#include <stddef.h>

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

#endif
