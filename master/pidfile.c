#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master/pidfile.h"

/*
 * Two locked descriptors: the file that was at the path when we started
 * (so that a second master that opened it too cannot lock it), and the
 * file we wrote and renamed into place (so that one that opens the path
 * later cannot either). Renaming a complete file into place means that a
 * reader never sees an empty or half-written pid file.
 */
static int guard_fd = -1, pid_fd = -1;
static char *pid_path;

static int
lock_or_explain(int fd, const char *path, char *err, size_t errlen)
{
	char why[256];
	pid_t other;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	other = pidfile_read(path, why, sizeof(why));
	snprintf(err, errlen, "pid file %s is locked: clusterd is already running (pid %ld)",
	    path, (long)other);
	return -1;
}

int
pidfile_create(const char *path, char *err, size_t errlen)
{
	char buf[32], *tmp = NULL;
	int n, fd = -1, guard;

	if ((guard = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	if (lock_or_explain(guard, path, err, errlen) == -1)
		goto fail;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (asprintf(&tmp, "%s.%ld.tmp", path, (long)getpid()) == -1) {
		tmp = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1 ||
	    flock(fd, LOCK_EX | LOCK_NB) == -1 || write(fd, buf, (size_t)n) != n ||
	    rename(tmp, path) == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	free(tmp);
	if ((pid_path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		unlink(path);
		close(fd);
		close(guard);
		return -1;
	}
	guard_fd = guard;
	pid_fd = fd;
	return 0;
fail:
	free(tmp);
	if (fd != -1)
		close(fd);
	close(guard);
	return -1;
}

void
pidfile_remove(void)
{
	struct stat ours, now;

	if (pid_fd == -1)
		return;
	/* Only our own file: never one that an operator put there since. */
	if (fstat(pid_fd, &ours) == 0 && stat(pid_path, &now) == 0 &&
	    ours.st_dev == now.st_dev && ours.st_ino == now.st_ino)
		unlink(pid_path);
	close(pid_fd);
	close(guard_fd);
	pid_fd = guard_fd = -1;
	free(pid_path);
	pid_path = NULL;
}

pid_t
pidfile_read(const char *path, char *err, size_t errlen)
{
	char buf[32];
	char *end;
	ssize_t n;
	long pid;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "pid file %s is empty", path);
		return -1;
	}
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (pid <= 0 || (*end != '\n' && *end != '\0')) {
		snprintf(err, errlen, "pid file %s does not hold a pid", path);
		return -1;
	}
	return (pid_t)pid;
}

pid_t
pidfile_running(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int held;

	if (fd == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	held = flock(fd, LOCK_SH | LOCK_NB) == -1 && errno == EWOULDBLOCK;
	close(fd);
	if (!held) {
		snprintf(err, errlen, "pid file %s is stale: no clusterd is running with it", path);
		return -1;
	}
	return pidfile_read(path, err, errlen);
}
