#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int log_fd_ = STDERR_FILENO;
static char *log_target;          /* NULL means stderr */
static enum log_level log_level_ = LL_INFO;
static char log_role[32] = "master";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static int
open_target(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

int
log_open(const char *target)
{
	int fd = STDERR_FILENO;
	char *copy = NULL;

	if (target != NULL && strcmp(target, "stderr") != 0) {
		if ((copy = strdup(target)) == NULL)
			return -1;
		if ((fd = open_target(target)) == -1) {
			free(copy);
			return -1;
		}
	}
	log_close();
	log_fd_ = fd;
	log_target = copy;
	return 0;
}

int
log_reopen(void)
{
	int fd;

	if (log_target == NULL)
		return 0;
	if ((fd = open_target(log_target)) == -1)
		return -1;
	if (log_fd_ != STDERR_FILENO)
		close(log_fd_);
	log_fd_ = fd;
	return 0;
}

void
log_close(void)
{
	if (log_fd_ != STDERR_FILENO)
		close(log_fd_);
	log_fd_ = STDERR_FILENO;
	free(log_target);
	log_target = NULL;
}

int
log_fd(void)
{
	return log_fd_;
}

void
log_set_level(enum log_level level)
{
	log_level_ = level;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static char last_error[512];

const char *
log_last_error(void)
{
	return last_error;
}

void
log_forget_error(void)
{
	last_error[0] = '\0';
}

/* Formats and writes one line; to stderr as well when also_stderr. */
static void __attribute__((format(printf, 3, 0)))
log_line(enum log_level level, int also_stderr, const char *fmt, va_list ap)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int saved_errno = errno;

	if (level > log_level_)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld [%s] %ld %s: ",
	    (long)tv.tv_usec / 1000, level_names[level], (long)getpid(), log_role);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (level == LL_ERROR)       /* what a worker that cannot start tells the master */
		snprintf(last_error, sizeof(last_error), "%s", line + n);
	n = strlen(line);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: O_APPEND keeps lines from different processes whole. */
	if (write(log_fd_, line, n) < 0) {
		/* nowhere left to report it */
	}
	if (also_stderr && log_fd_ != STDERR_FILENO && write(STDERR_FILENO, line, n) < 0) {
		/* the same */
	}
	errno = saved_errno;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(level, 0, fmt, ap);
	va_end(ap);
}

void
log_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(LL_ERROR, 1, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(LL_ERROR, 1, fmt, ap);
	va_end(ap);
	exit(1);
}
