/*
 * The error log: one line per event, "time [level] pid role: message".
 * Every process (master and each worker) writes its own lines with one
 * write(2) to an O_APPEND descriptor, so lines never interleave mid-line.
 */
#ifndef CLUSTERD_LOG_H
#define CLUSTERD_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

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
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
