#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "master/pidfile.h"

static int pid_fd = -1;
static char *pid_path;

int
pidfile_create(const char *path, char *err, size_t errlen)
{
	char buf[32];
	int fd, n;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		return -1;
	}
	/* The lock, not the file's existence, says that a master is running. */
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		char why[256];
		pid_t other;
		int e = errno;
		other = pidfile_read(path, why, sizeof(why));
		if (e == EWOULDBLOCK)
			snprintf(err, errlen, "pid file %s is locked: clusterd is already "
			    "running (pid %ld)", path, (long)other);
		else
			snprintf(err, errlen, "pid file %s: %s", path, strerror(e));
		close(fd);
		return -1;
	}
	/* One write replaces the old number; readers stop at the newline. */
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) == -1) {
		snprintf(err, errlen, "pid file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if ((pid_path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -1;
	}
	pid_fd = fd;
	return 0;
}

void
pidfile_remove(void)
{
	if (pid_fd == -1)
		return;
	unlink(pid_path);
	close(pid_fd);
	pid_fd = -1;
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
