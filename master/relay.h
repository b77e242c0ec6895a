/*
 * The master's side of the bus (ipc/bus.h): one port per worker, and every
 * frame read from one port written to all the others.
 */
#ifndef CLUSTERD_RELAY_H
#define CLUSTERD_RELAY_H

#include <sys/types.h>

#include <event2/event.h>

struct relay_port;

/* A port for worker pid on fd (which it owns from now, even on failure). */
struct relay_port *relay_port_new(struct event_base *base, int fd, pid_t pid);
void relay_port_free(struct relay_port *p);

#endif
