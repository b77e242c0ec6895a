/*
 * A worker process: one libevent loop serving HTTP on the listening sockets
 * of its slot, talking to the master over its end of a socketpair.
 */
#ifndef CLUSTERD_WORKER_H
#define CLUSTERD_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/config.h"

struct worker_args {
	const struct config *cfg;
	int slot;
	long generation;
	int ipc_fd;
	int bus_fd;                  /* the bus to the other workers (ipc/bus.h) */
	const char *host_uid;        /* the master's, the same in all its workers */
	const int *fds;              /* this slot's listening sockets */
	size_t nfds;
	pid_t master;
	uint64_t max_requests;       /* its own limit, jitter included; 0: none */
	int stats_block;             /* its block of the shared figures; -1: none */
};

/* Runs in the child after fork(); never returns. */
void worker_run(const struct worker_args *a) __attribute__((noreturn));

#endif
