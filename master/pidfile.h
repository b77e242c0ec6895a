/*
 * The pid file: written whole to a temporary file and renamed into place
 * (readers never see it half-written), and locked (flock) by the running
 * master, so a second master with the same file refuses to start, and a
 * stale file left by a dead process is simply taken over.
 */
#ifndef CLUSTERD_PIDFILE_H
#define CLUSTERD_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes our pid and holds the lock; 0, or -1 with err. */
int pidfile_create(const char *path, char *err, size_t errlen);
/* Removes the file we created (no-op when none). */
void pidfile_remove(void);
/* The pid named in path, or -1 with err. */
pid_t pidfile_read(const char *path, char *err, size_t errlen);
/*
 * The pid of the master that holds path locked, or -1 with err: a stale
 * file (nobody holds its lock) names no master, whatever pid it holds.
 */
pid_t pidfile_running(const char *path, char *err, size_t errlen);

#endif
