/*
 * The bus relay: the shape of @socket.io/cluster-adapter, where the primary
 * forwards every worker's broadcast to the other workers. Frames from one
 * worker reach each other worker in the order sent. A worker that does not
 * read has its frames dropped past BUS_MAX_QUEUED: the master never waits.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/queue.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/bus.h"
#include "master/relay.h"

struct relay_port {
	struct bus_end *end;
	pid_t pid;
	int full;                    /* dropping frames for it: logged once per episode */
	uint64_t dropped_logged;
	LIST_ENTRY(relay_port) link;
};

static LIST_HEAD(, relay_port) ports = LIST_HEAD_INITIALIZER(ports);

static void
forward(struct relay_port *to, const unsigned char *frame, size_t len)
{
	if (bus_end_forward(to->end, frame, len) == 0) {
		/* Room again once it has read half its backlog: a new episode may begin. */
		if (to->full && bus_end_queued(to->end) < BUS_MAX_QUEUED / 2) {
			log_info("bus: worker %ld reads again; %llu broadcast(s) to it were "
			    "dropped", (long)to->pid,
			    (unsigned long long)(bus_end_dropped(to->end) - to->dropped_logged));
			to->dropped_logged = bus_end_dropped(to->end);
			to->full = 0;
		}
		return;
	}
	if (!to->full) {
		to->full = 1;
		log_warn("bus: worker %ld is not reading (%zu bytes queued): dropping "
		    "broadcasts to it", (long)to->pid, bus_end_queued(to->end));
	}
}

static void
relay(void *arg, const unsigned char *frame, size_t len)
{
	struct relay_port *from = arg, *to;

	LIST_FOREACH(to, &ports, link)
		if (to != from)
			forward(to, frame, len);
	/* Last: when it is back, every other worker has it queued, in order. */
	if (bus_frame_flags(frame) & BUS_ECHO)
		forward(from, frame, len);
}

struct relay_port *
relay_port_new(struct event_base *base, int fd, pid_t pid)
{
	struct relay_port *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		close(fd);
		return NULL;
	}
	if ((p->end = bus_relay_new(base, fd, relay, p)) == NULL) {
		free(p);
		return NULL;
	}
	p->pid = pid;
	LIST_INSERT_HEAD(&ports, p, link);
	return p;
}

void
relay_port_free(struct relay_port *p)
{
	if (p == NULL)
		return;
	LIST_REMOVE(p, link);
	bus_end_free(p->end);
	free(p);
}
