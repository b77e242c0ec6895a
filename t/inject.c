/*
 * Fault injection for the tests, LD_PRELOADed into clusterd: in the
 * processes it forks (its workers), open() of a path that contains
 * $CLUSTERD_INJECT_EACCES fails with EACCES. It makes a worker that cannot
 * get ready out of a config that -t rightly accepts. And in every process
 * (the master's config check too), fopen() of a path that contains
 * $CLUSTERD_INJECT_ENOENT fails with ENOENT: a file of the system, such as
 * /etc/mime.types, that is missing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static pid_t first;

__attribute__((constructor)) static void
remember(void)
{
	first = getpid();
}

static int
refused(const char *path)
{
	const char *pat = getenv("CLUSTERD_INJECT_EACCES");

	return getpid() != first && pat != NULL && *pat != '\0' && path != NULL &&
	    strstr(path, pat) != NULL;
}

#define WRAP(name)							\
int name(const char *path, int flags, ...)				\
{									\
	int (*real)(const char *, int, ...) =				\
	    (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);	\
	mode_t mode = 0;						\
	va_list ap;							\
									\
	if (flags & (O_CREAT | O_TMPFILE)) {				\
		va_start(ap, flags);					\
		mode = (mode_t)va_arg(ap, int);				\
		va_end(ap);						\
	}								\
	if (refused(path)) {						\
		errno = EACCES;						\
		return -1;						\
	}								\
	return real(path, flags, mode);					\
}

WRAP(open)
WRAP(open64)

static int
missing(const char *path)
{
	const char *pat = getenv("CLUSTERD_INJECT_ENOENT");

	return pat != NULL && *pat != '\0' && path != NULL && strstr(path, pat) != NULL;
}

#define WRAP_FOPEN(name)						\
FILE *name(const char *path, const char *mode)				\
{									\
	FILE *(*real)(const char *, const char *) =			\
	    (FILE *(*)(const char *, const char *))dlsym(RTLD_NEXT, #name);	\
									\
	if (missing(path)) {						\
		errno = ENOENT;						\
		return NULL;						\
	}								\
	return real(path, mode);					\
}

WRAP_FOPEN(fopen)
WRAP_FOPEN(fopen64)
