/*
 * The error log: one line per event, "time [level] pid role: message".
 * Every process (master and each worker) writes its own lines with one
 * write(2) to an O_APPEND descriptor, so lines never interleave mid-line.
 */
#ifndef CLUSTERD_LOG_H
#define CLUSTERD_LOG_H

#include <stdarg.h>

/* LL_, not LOG_: <syslog.h> owns LOG_INFO and LOG_DEBUG. */
enum log_level { LL_ERROR = 0, LL_WARN, LL_INFO, LL_DEBUG };

/* "stderr" or a path; returns 0, or -1 with errno set. */
int log_open(const char *target);
/* Reopens the same target (SIGUSR1); on failure the old descriptor stays. */
int log_reopen(void);
void log_close(void);
int log_fd(void);
void log_set_level(enum log_level level);
/* "master" or "worker slot N" */
void log_set_role(const char *role);
int log_level_parse(const char *name, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LL_DEBUG, __VA_ARGS__)

/*
 * An error that ends the process (a master that cannot start): logged, and
 * written to stderr too when the log is a file, where the one who started
 * it looks.
 */
void log_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The message of the last error logged since log_forget_error(), "" if none. */
const char *log_last_error(void);
/* A new worker forgets the master's last error, inherited with its memory. */
void log_forget_error(void);

/*
 * For setup errors that leave nothing sensible to do (an allocation of
 * the process's own fixed state, an event base): logs the reason as an
 * error, to stderr too when the log is a file, and exits 1.
 */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
