/*
 * The master cycle. Signals arrive through a signalfd and only set flags;
 * master_cycle() then acts on the flags in one place, in order of urgency,
 * as nginx's master does. Everything else is a reaction to a worker:
 * a message on its socketpair, or its death.
 *
 * Generations: every accepted configuration is a generation with the
 * workers forked for it. A reload forks a new generation beside the old
 * one; once each of its slots has a worker that reported ready, the older
 * generations are retired gracefully. Sockets are per (address, slot) and
 * outlive generations, so a reload never has a bind gap.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/time.h"
#include "ipc/bus.h"
#include "ipc/ipc.h"
#include "ipc/stats.h"
#include "master/control.h"
#include "master/listen.h"
#include "master/master.h"
#include "master/notify.h"
#include "master/paths.h"
#include "master/pidfile.h"
#include "master/relay.h"
#include "master/restart.h"
#include "master/supervise.h"
#include "svc/service.h"
#include "worker/worker.h"

#define FAST_STOP_KILL_MS 2000   /* SIGTERM, then SIGKILL after this */
#define HUNG_KILL_MS 1000        /* a hung worker: SIGABRT, then SIGKILL after this */
#define MAX_LISTEN_PER_SLOT CONFIG_MAX_LISTEN
_Static_assert(MAX_LISTEN_PER_SLOT <= IPC_MAX_FDS, "a slot's sockets fit in one adopt message");

struct generation {
	long id;
	struct config *cfg;
	int live;                    /* workers of this generation alive */
	LIST_ENTRY(generation) link;
};

enum wstate { W_STARTING, W_READY, W_RETIRING };

struct worker {
	pid_t pid;
	int slot;
	struct generation *gen;
	enum wstate state;
	int ipc_fd;
	struct event *ipc_ev;
	struct relay_port *bus;      /* its port on the bus between workers */
	struct event *kill_ev;       /* SIGKILL deadline once asked to stop */
	uint64_t started_ms;
	struct supervised sv;        /* heartbeat, requests, limits, RSS */
	int64_t in_flight, connections;
	int beats;                   /* heartbeats since it was forked */
	int replacing;               /* a replacement is on its way: 1 + enum restart_reason */
	int stats_block;             /* its block of the shared figures, -1: none */
	time_t started_at;           /* wall clock, for clusterd_worker_start_time_seconds */
	bool hung;
	char failure[IPC_REASON_MAX];    /* why it cannot get ready, if it said */
	LIST_ENTRY(worker) link;
};

struct slot {
	struct restart restart;
	struct event *respawn_ev;    /* a delayed fork, when pending */
	pid_t adopter;               /* accepts for the slot while it has no worker; 0: none */
};

static struct {
	struct event_base *base;
	const struct config_overrides *ov;
	struct generation *current;
	struct generation *serving;  /* the last generation that got ready; NULL before */
	LIST_HEAD(, generation) gens;
	LIST_HEAD(, worker) workers;
	struct slot *slots;
	int nslots;
	int sfd;
	struct event *sig_ev;
	struct event *watchdog_ev;
	struct event *heartbeat_ev;  /* the supervision tick, every heartbeat_interval_ms */
	struct event *drain_delay_ev;    /* SIGQUIT with drain_delay_ms: then the stop */
	bool lame_duck;              /* in that delay: health fails, all else serves */
	uint64_t started_ms;
	uint64_t last_tick_ms;       /* the last heartbeat tick */
	struct {                     /* the last reload, for -s status */
		const char *result;      /* "none", "ok", "failed" */
		time_t at;
		char error[512];
	} last_reload;
	/* flags set by signals, acted on by master_cycle() */
	int sig_terminate, sig_quit, sig_reconfigure, sig_reopen, sig_child;
	int sig_more, sig_fewer;
	int stopping;                /* 0, or the IPC shutdown mode + 1 */
	long next_gen;
	bool announced;              /* the current generation was logged ready */
	bool start_failed;           /* the first generation cannot get ready */
	int exit_status;
	char host_uid[17];           /* names this master to other hosts (socketio over Redis) */
} M;

_Static_assert(REASON_COUNT == STATS_RESTART_REASONS, "one shared counter per reason");

static void master_cycle(void);

struct config *
master_load_config(const char *path, const struct config_overrides *ov, char *err,
    size_t errlen)
{
	struct config *cfg = config_load(path, ov, err, errlen);

	if (cfg != NULL && svc_resolve_routes(cfg, err, errlen) == -1) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}
static void spawn(int slot, struct generation *gen);

static int
live_workers(void)
{
	struct worker *w;
	int n = 0;

	LIST_FOREACH(w, &M.workers, link)
		n++;
	return n;
}

/* ---- generations ---- */

static struct generation *
gen_new(struct config *cfg)
{
	struct generation *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->id = ++M.next_gen;
	g->cfg = cfg;
	LIST_INSERT_HEAD(&M.gens, g, link);
	return g;
}

static void
gen_release_unused(void)
{
	struct generation *g, *next;

	for (g = LIST_FIRST(&M.gens); g != NULL; g = next) {
		next = LIST_NEXT(g, link);
		if (g == M.current || g == M.serving || g->live > 0)
			continue;
		LIST_REMOVE(g, link);
		config_free(g->cfg);
		free(g);
	}
}

static bool
cfg_has_addr(const struct config *cfg, const char *addr)
{
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (strcmp(cfg->listen[i].key, addr) == 0)
			return true;
	return false;
}

/*
 * A socket stays open while the current config or a live worker may use it.
 * A stopping master keeps none: the workers hold their own copies, and once
 * they have closed theirs the kernel refuses new connections at once,
 * instead of queueing them for no one (and resetting them at exit).
 */
static bool
socket_used(const char *addr, int slot, void *arg)
{
	struct worker *w;

	(void)arg;
	if (M.stopping)
		return false;
	if (slot < M.current->cfg->workers &&
	    cfg_has_addr(M.current->cfg, addr))
		return true;
	LIST_FOREACH(w, &M.workers, link)
		if (w->slot == slot && cfg_has_addr(w->gen->cfg, addr))
			return true;
	return false;
}

/* ---- slots ---- */

static void
respawn_fire(evutil_socket_t fd, short what, void *arg)
{
	int slot = (int)(intptr_t)arg;

	(void)fd;
	(void)what;
	if (M.stopping == 0 && slot < M.current->cfg->workers)
		spawn(slot, M.current);
}

/*
 * Each slot's respawn timer is made with the slot, so that a worker's death
 * never needs an allocation to schedule its replacement.
 */
static int
slots_grow(int n)
{
	struct slot *s;

	if (n <= M.nslots)
		return 0;
	if ((s = realloc(M.slots, (size_t)n * sizeof(*s))) == NULL)
		return -1;
	M.slots = s;
	for (; M.nslots < n; M.nslots++) {
		memset(&s[M.nslots], 0, sizeof(s[M.nslots]));
		s[M.nslots].respawn_ev = evtimer_new(M.base, respawn_fire,
		    (void *)(intptr_t)M.nslots);
		if (s[M.nslots].respawn_ev == NULL)
			return -1;
	}
	return 0;
}

static void
cancel_respawn(int slot)
{
	evtimer_del(M.slots[slot].respawn_ev);
}

static void
schedule_respawn(int slot, uint64_t lived_ms)
{
	struct slot *s = &M.slots[slot];
	uint64_t delay = restart_delay(&s->restart, lived_ms);
	struct timeval tv = ms_tv((long long)delay);

	if (evtimer_pending(s->respawn_ev, NULL))
		return;
	if (delay == 0) {
		spawn(slot, M.current);
		return;
	}
	log_warn("slot %d restarts too often: next worker in %llu ms", slot,
	    (unsigned long long)delay);
	if (evtimer_add(s->respawn_ev, &tv) == -1)
		fatal("slot %d: cannot arm the respawn timer", slot);
}

/* ---- workers ---- */

static struct worker *
worker_by_pid(pid_t pid)
{
	struct worker *w;

	LIST_FOREACH(w, &M.workers, link)
		if (w->pid == pid)
			return w;
	return NULL;
}

static void
kill_fire(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_warn("worker %ld (slot %d) did not exit in time: killing it", (long)w->pid, w->slot);
	kill(w->pid, SIGKILL);
}

static void
arm_kill(struct worker *w, uint64_t ms)
{
	struct timeval tv = ms_tv((long long)ms);

	if (evtimer_add(w->kill_ev, &tv) == -1)
		fatal("worker %ld: cannot arm the kill timer", (long)w->pid);
}

/* Asks a worker to stop: gracefully over IPC, or fast with SIGTERM. */
/* ---- slots without a worker: adopted by a live one ---- */

/*
 * A slot whose worker is gone keeps its listening socket (the master holds
 * it, so the replacement inherits the queue), and the kernel keeps dealing
 * it its share of new connections: with the slot in back-off they would
 * wait seconds. So a live worker accepts on that socket too, sent to it
 * over IPC, until the slot's new worker is ready.
 */
static bool
slot_served(int slot)
{
	struct worker *w;

	LIST_FOREACH(w, &M.workers, link)
		if (w->slot == slot && w->state == W_READY)
			return true;
	return false;
}

/* No worker of slot is alive but one retiring: it waits for a fork. */
static bool
slot_empty(int slot)
{
	struct worker *w;

	LIST_FOREACH(w, &M.workers, link)
		if (w->slot == slot && w->state != W_RETIRING)
			return false;
	return true;
}

static int
adoptions(pid_t pid)
{
	int n = 0;

	for (int s = 0; s < M.nslots; s++)
		n += M.slots[s].adopter == pid;
	return n;
}

static void
adopt_slot(int slot)
{
	const struct config *cfg = M.current->cfg;
	struct ipc_msg m = { .type = IPC_ADOPT, .u.adopt.slot = slot };
	struct worker *w, *best = NULL;
	int fds[MAX_LISTEN_PER_SLOT];
	size_t nfds;

	if (M.stopping || slot >= cfg->workers || M.slots[slot].adopter != 0 || slot_served(slot))
		return;
	LIST_FOREACH(w, &M.workers, link)
		if (w->state == W_READY && w->slot != slot &&
		    (best == NULL || adoptions(w->pid) < adoptions(best->pid)))
			best = w;
	if (best == NULL)
		return;              /* no one to take it: the connections wait */
	nfds = listen_slot_fds(cfg, slot, fds, MAX_LISTEN_PER_SLOT);
	if (nfds == 0)
		return;
	if (ipc_send_fds(best->ipc_fd, &m, fds, nfds) == -1) {
		log_warn("cannot hand slot %d's sockets to worker %ld: %s", slot, (long)best->pid,
		    strerror(errno));
		return;
	}
	M.slots[slot].adopter = best->pid;
	log_info("slot %d has no worker: worker %ld (slot %d) accepts its connections until "
	    "its new worker is ready", slot, (long)best->pid, best->slot);
}

static void
release_slot(int slot)
{
	struct ipc_msg m = { .type = IPC_RELEASE, .u.release.slot = slot };
	pid_t pid = M.slots[slot].adopter;
	struct worker *w;

	if (pid == 0)
		return;
	M.slots[slot].adopter = 0;
	if ((w = worker_by_pid(pid)) != NULL && w->state != W_RETIRING &&
	    ipc_send(w->ipc_fd, &m) == -1)
		log_warn("cannot tell worker %ld to stop accepting for slot %d: %s", (long)pid,
		    slot, strerror(errno));
}

/* pid accepts no more (gone or retiring): its adopted slots go to another. */
static void
orphans_rehome(pid_t pid)
{
	for (int s = 0; s < M.nslots; s++) {
		if (M.slots[s].adopter == pid) {
			M.slots[s].adopter = 0;
			adopt_slot(s);
		}
	}
}

static void
stop_worker(struct worker *w, enum ipc_shutdown_mode mode)
{
	struct ipc_msg m = { .type = IPC_SHUTDOWN };

	if (mode == IPC_SHUTDOWN_FAST) {
		kill(w->pid, SIGTERM);
		arm_kill(w, FAST_STOP_KILL_MS);
	} else {
		m.u.shutdown.mode = IPC_SHUTDOWN_GRACEFUL;
		if (ipc_send(w->ipc_fd, &m) == -1)
			kill(w->pid, SIGTERM);
		arm_kill(w, (uint64_t)w->gen->cfg->shutdown_timeout_ms);
	}
	w->state = W_RETIRING;
	orphans_rehome(w->pid);      /* it accepts no more: another takes its adoptions */
}

static void
worker_free(struct worker *w)
{
	LIST_REMOVE(w, link);
	w->gen->live--;
	/* Its counters join the retired totals: they never go down. */
	if (w->stats_block >= 0)
		stats_block_retire(w->stats_block);
	stat_set(&stats->workers, (uint64_t)live_workers());
	if (w->ipc_ev != NULL)
		event_free(w->ipc_ev);
	if (w->kill_ev != NULL)
		event_free(w->kill_ev);
	relay_port_free(w->bus);
	close(w->ipc_fd);
	free(w);
}

/* systemd's STATUS= line: what an operator sees in `systemctl status`. */
static void
notify_status(const char *state)
{
	struct worker *w;
	int current = 0, retiring = 0;
	char more[32] = "";

	LIST_FOREACH(w, &M.workers, link) {
		if (w->gen == M.current && w->state != W_RETIRING)
			current++;
		else
			retiring++;
	}
	if (retiring > 0)
		snprintf(more, sizeof(more), ", %d retiring", retiring);
	notify_send("%s%sSTATUS=%d worker(s), generation %ld%s", state, *state ? "\n" : "",
	    current, M.current->id, more);
}

/* Every slot of the current generation has a ready worker: retire the rest. */
static void
check_generation_ready(void)
{
	struct generation *g = M.current;
	struct worker *w;
	int ready = 0, retired = 0;

	if (M.announced || M.stopping)
		return;
	LIST_FOREACH(w, &M.workers, link)
		if (w->gen == g && w->state == W_READY)
			ready++;
	if (ready < g->cfg->workers)
		return;
	LIST_FOREACH(w, &M.workers, link) {
		if (w->gen != g && w->state != W_RETIRING) {
			stop_worker(w, IPC_SHUTDOWN_GRACEFUL);
			retired++;
		}
	}
	M.announced = true;
	M.serving = g;
	stat_add(&stats->restarts[REASON_RELOAD], (uint64_t)retired);
	if (g->id > 1) {             /* a reload, not the start */
		stat_add(&stats->reloads_ok, 1);
		M.last_reload.result = "ok";
		M.last_reload.at = time(NULL);
		M.last_reload.error[0] = '\0';
	}
	log_info("ready: generation %ld, %d worker(s)%s", g->id, ready,
	    retired ? ", retiring the previous generation" : "");
	notify_status("READY=1");
}

/* ---- supervision: hung workers, recycling ---- */

/*
 * Another worker of the current generation will go on serving slot: not one
 * being retired, nor one waiting for its replacement (if that replacement
 * dies, another must be started, or recycling would stop for good).
 */
static bool
slot_covered(int slot, const struct worker *except)
{
	struct worker *w;

	LIST_FOREACH(w, &M.workers, link)
		if (w != except && w->slot == slot && w->gen == M.current &&
		    w->state != W_RETIRING && !w->replacing)
			return true;
	return false;
}

/*
 * Recycling, as a reload does it for one slot: a replacement is forked, and
 * only once it is ready does w stop accepting and finish what it has
 * (retire_replaced()). No request fails, and the slot is never empty.
 */
static void
replace_worker(struct worker *w, enum restart_reason why)
{
	const struct config *cfg = w->gen->cfg;

	if (w->replacing || w->state != W_READY || M.stopping || w->gen != M.current ||
	    w->slot >= cfg->workers)
		return;
	w->replacing = (int)why + 1;
	stat_add(&stats->restarts[why], 1);
	if (why == REASON_MAX_REQUESTS)
		log_info("worker %ld (slot %d, generation %ld) served %llu requests, its "
		    "max_requests: replacing it", (long)w->pid, w->slot, w->gen->id,
		    (unsigned long long)w->sv.requests);
	else
		log_info("worker %ld (slot %d, generation %ld) uses %llu MB, over "
		    "max_worker_rss_mb (%lld): replacing it", (long)w->pid, w->slot, w->gen->id,
		    (unsigned long long)(w->sv.rss_bytes >> 20), cfg->max_worker_rss_mb);
	spawn(w->slot, M.current);
}

/* fresh is ready: the worker it replaces stops accepting and finishes what it has. */
static void
retire_replaced(const struct worker *fresh)
{
	struct worker *w;

	LIST_FOREACH(w, &M.workers, link) {
		if (w != fresh && w->slot == fresh->slot && w->replacing &&
		    w->state != W_RETIRING) {
			log_info("worker %ld (slot %d) retires: worker %ld took its place (%s)",
			    (long)w->pid, w->slot, (long)fresh->pid,
			    restart_reason_names[w->replacing - 1]);
			stop_worker(w, IPC_SHUTDOWN_GRACEFUL);
		}
	}
}

/*
 * A loop that stopped turning cannot be asked to stop. SIGABRT first, so
 * that a core dump (where enabled) shows where it is stuck; SIGKILL after
 * HUNG_KILL_MS for a process that ignores or cannot take it (a stopped
 * one). Its slot gets a new worker at once: the slot's socket, and the
 * connections queued on it, wait for that one.
 */
static void
hung_worker(struct worker *w, uint64_t silent_ms)
{
	log_error("worker %ld (slot %d, generation %ld) is hung: its event loop has not "
	    "answered for %llu ms (worker_timeout_ms %lld); sending SIGABRT, SIGKILL in %d ms",
	    (long)w->pid, w->slot, w->gen->id, (unsigned long long)silent_ms,
	    w->gen->cfg->worker_timeout_ms, HUNG_KILL_MS);
	kill(w->pid, SIGABRT);
	w->hung = true;
	w->state = W_RETIRING;
	arm_kill(w, HUNG_KILL_MS);
	stat_add(&stats->restarts[REASON_HUNG], 1);
	if (!M.stopping && w->gen == M.current && w->slot < M.current->cfg->workers &&
	    !slot_covered(w->slot, w))
		spawn(w->slot, M.current);
}

static void
supervise(struct worker *w, uint64_t now)
{
	const struct config *cfg = w->gen->cfg;
	struct supervise_limits lim = {
		.worker_timeout_ms = (uint64_t)cfg->worker_timeout_ms,
		.max_rss_bytes = (uint64_t)cfg->max_worker_rss_mb << 20,
	};

	w->sv.rss_bytes = proc_rss_bytes(w->pid);
	/* Over the limit from the start: recycling it would only fork another such. */
	if (w->state == W_READY && w->beats++ == 0 && lim.max_rss_bytes > 0 &&
	    w->sv.rss_bytes > lim.max_rss_bytes) {
		w->sv.rss_over_at_start = 1;
		log_warn("worker %ld (slot %d) uses %llu MB as it starts, over max_worker_rss_mb "
		    "(%lld): it will not be recycled for its size; raise the limit", (long)w->pid,
		    w->slot, (unsigned long long)(w->sv.rss_bytes >> 20), cfg->max_worker_rss_mb);
	}
	switch (supervise_check(&lim, &w->sv, now)) {
	case V_HUNG:
		hung_worker(w, now - w->sv.last_beat_ms);
		break;
	case V_MAX_REQUESTS:
		replace_worker(w, REASON_MAX_REQUESTS);
		break;
	case V_MAX_RSS:
		replace_worker(w, REASON_MAX_RSS);
		break;
	case V_FINE:
		break;
	}
}

/*
 * The per-slot gauges of the shared figures: the RSS and start time of the
 * worker that serves each slot (a replacement, once it is ready).
 */
static void
publish_slots(void)
{
	int n = M.current->cfg->workers < STATS_SLOTS ? M.current->cfg->workers : STATS_SLOTS;
	struct worker *w;

	for (int s = 0; s < STATS_SLOTS; s++) {
		const struct worker *best = NULL;
		if (s < n) {
			LIST_FOREACH(w, &M.workers, link)
				if (w->slot == s && w->state == W_READY && !w->replacing &&
				    (best == NULL || w->started_ms > best->started_ms))
					best = w;
		}
		stat_set(&stats->slots[s].rss_bytes, best != NULL ? best->sv.rss_bytes : 0);
		stat_set(&stats->slots[s].start_time, best != NULL ? (uint64_t)best->started_at : 0);
	}
}

static void
heartbeat_fire(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ms(), late = now - M.last_tick_ms;
	struct worker *w;

	(void)fd;
	(void)what;
	(void)arg;
	/*
	 * A master that was itself stopped (SIGSTOP, a frozen VM) has not read
	 * the heartbeats waiting for it: this tick judges nobody hung, and the
	 * silence starts again from now.
	 */
	M.last_tick_ms = now;
	if (late > (uint64_t)M.current->cfg->heartbeat_interval_ms * 2 + 1000)
		LIST_FOREACH(w, &M.workers, link)
			w->sv.last_beat_ms = now;
	/* spawn() inserts at the head: a worker forked here is not visited. */
	LIST_FOREACH(w, &M.workers, link)
		if (w->state != W_RETIRING)
			supervise(w, now);
	publish_slots();
}

static void
arm_heartbeat(const struct config *cfg)
{
	struct timeval tv = ms_tv(cfg->heartbeat_interval_ms);

	if (event_add(M.heartbeat_ev, &tv) == -1)
		fatal("cannot arm the heartbeat timer");
}

static uint64_t
random64(void)
{
	return (uint64_t)arc4random() << 32 | arc4random();
}

static void
send_drain(struct worker *w)
{
	struct ipc_msg m = { .type = IPC_DRAIN };

	if (ipc_send(w->ipc_fd, &m) == -1)
		log_warn("worker %ld: cannot tell it a drain begins: %s", (long)w->pid,
		    strerror(errno));
}

static void
on_worker_msg(struct worker *w, const struct ipc_msg *m)
{
	switch (m->type) {
	case IPC_READY:
		if (m->u.ready.pid != w->pid || m->u.ready.slot != w->slot ||
		    m->u.ready.generation != w->gen->id) {
			log_error("worker %ld sent a ready message that is not its own: killing it",
			    (long)w->pid);
			kill(w->pid, SIGKILL);
			return;
		}
		if (w->state == W_STARTING)
			w->state = W_READY;
		log_info("worker %ld ready: slot %d, generation %ld", (long)w->pid, w->slot,
		    w->gen->id);
		release_slot(w->slot);
		/* slots with no worker at all (in back-off) had no one to take them */
		for (int s = 0; s < M.nslots; s++)
			if (slot_empty(s))
				adopt_slot(s);
		retire_replaced(w);
		if (M.lame_duck)         /* started during drain_delay_ms: it fails health too */
			send_drain(w);
		check_generation_ready();
		/* Forked for a generation that was replaced meanwhile: it has no place. */
		if (w->gen != M.current && M.announced && w->state != W_RETIRING)
			stop_worker(w, IPC_SHUTDOWN_GRACEFUL);
		break;
	case IPC_FAILED:
		if (m->u.failed.pid == w->pid && w->state == W_STARTING)
			snprintf(w->failure, sizeof(w->failure), "%s", m->u.failed.reason);
		break;
	case IPC_STATS:
		/* The worker's loop sent it: the heartbeat. */
		w->sv.last_beat_ms = now_ms();
		w->sv.requests = (uint64_t)m->u.stats.requests;
		w->in_flight = m->u.stats.in_flight;
		w->connections = m->u.stats.connections;
		if (w->sv.max_requests > 0 && w->sv.requests >= w->sv.max_requests)
			replace_worker(w, REASON_MAX_REQUESTS);
		break;
	default:
		log_error("worker %ld sent an unexpected %s message: killing it",
		    (long)w->pid, ipc_type_name(m->type));
		kill(w->pid, SIGKILL);
	}
}

static void
on_worker_ipc(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct ipc_msg m;
	char err[256];
	int rc;

	(void)what;
	while ((rc = ipc_recv(fd, &m, err, sizeof(err))) == 1)
		on_worker_msg(w, &m);
	if (rc == 0) {
		/* It is exiting: SIGCHLD will follow. Stop listening to it. */
		event_del(w->ipc_ev);
	} else if (errno == EBADMSG) {
		log_error("worker %ld (slot %d) sent a malformed message (%s): killing it",
		    (long)w->pid, w->slot, err);
		event_del(w->ipc_ev);
		kill(w->pid, SIGKILL);
	}
}

static void
spawn(int slot, struct generation *gen)
{
	int pair[2] = { -1, -1 }, bus[2] = { -1, -1 }, fds[MAX_LISTEN_PER_SLOT];
	uint64_t limit = supervise_request_limit((uint64_t)gen->cfg->max_requests,
	    (uint64_t)gen->cfg->max_requests_jitter, random64());
	struct worker_args args;
	struct worker *w;
	size_t nfds;
	pid_t pid = -1;
	int block = stats_block_take(slot);

	if (block == -1)
		log_warn("slot %d: no block of shared figures left: this worker is not counted",
		    slot);
	/* Everything the master needs to watch the worker exists before the fork. */
	if ((w = calloc(1, sizeof(*w))) == NULL || ipc_pair(pair) == -1 || bus_pair(bus) == -1 ||
	    (w->ipc_ev = event_new(M.base, pair[0], EV_READ | EV_PERSIST, on_worker_ipc,
		w)) == NULL ||
	    (w->kill_ev = evtimer_new(M.base, kill_fire, w)) == NULL ||
	    event_add(w->ipc_ev, NULL) == -1 ||
	    (pid = fork()) == -1) {
		log_error("cannot start a worker for slot %d: %s", slot, strerror(errno));
		if (w != NULL && w->ipc_ev != NULL)
			event_free(w->ipc_ev);
		if (w != NULL && w->kill_ev != NULL)
			event_free(w->kill_ev);
		if (pair[0] != -1) {
			close(pair[0]);
			close(pair[1]);
		}
		if (bus[0] != -1) {
			close(bus[0]);
			close(bus[1]);
		}
		free(w);
		if (block != -1)
			stats_block_retire(block);
		schedule_respawn(slot, 0);   /* try again, with the slot's back-off */
		return;
	}
	nfds = listen_slot_fds(gen->cfg, slot, fds, MAX_LISTEN_PER_SLOT);
	if (pid == 0) {
		args = (struct worker_args){ .cfg = gen->cfg, .slot = slot,
		    .generation = gen->id, .ipc_fd = pair[1], .bus_fd = bus[1], .fds = fds,
		    .nfds = nfds, .master = getppid(), .max_requests = limit,
		    .stats_block = block, .host_uid = M.host_uid };
		worker_run(&args);
	}
	close(pair[1]);
	close(bus[1]);
	/* Without its port the worker serves on; only its broadcasts stay local. */
	if ((w->bus = relay_port_new(M.base, bus[0], pid)) == NULL)
		log_error("worker %ld: no port on the bus: %s", (long)pid, strerror(errno));
	w->pid = pid;
	w->slot = slot;
	w->gen = gen;
	w->ipc_fd = pair[0];
	w->started_ms = now_ms();
	w->sv.last_beat_ms = w->started_ms;
	w->sv.max_requests = limit;
	w->stats_block = block;
	w->started_at = time(NULL);
	gen->live++;
	LIST_INSERT_HEAD(&M.workers, w, link);
	stat_set(&stats->workers, (uint64_t)live_workers());
	log_info("started worker %ld: slot %d, generation %ld", (long)pid, slot, gen->id);
}

static void
describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit code %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d (%s)%s", WTERMSIG(status),
		    strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "status %d", status);
}

static void reload_failed(const char *err);
static void stop_all(enum ipc_shutdown_mode mode);

/*
 * The current generation cannot get ready. At start, the master gives up
 * (as nginx does) with the reason on stderr. On a reload the generation is
 * abandoned: its workers stop, the one serving goes on as the current one,
 * and the reload is reported failed.
 */
static void
not_ready(const char *why)
{
	struct generation *g = M.current;
	struct worker *w;
	char err[IPC_REASON_MAX + 256];

	if (M.serving == NULL) {
		log_fail("cannot start: generation %ld cannot get ready: %s", g->id, why);
		M.start_failed = true;
		stop_all(IPC_SHUTDOWN_FAST);
		return;
	}
	snprintf(err, sizeof(err), "generation %ld cannot get ready, generation %ld goes on "
	    "serving: %s", g->id, M.serving->id, why);
	reload_failed(err);
	M.current = M.serving;       /* first: what stop_worker() re-homes uses its config */
	M.announced = true;
	/* g's workers, and those of any generation between it and the serving one */
	LIST_FOREACH(w, &M.workers, link)
		if (w->gen != M.serving && w->state != W_RETIRING)
			stop_worker(w, w->gen == g ? IPC_SHUTDOWN_FAST : IPC_SHUTDOWN_GRACEFUL);
	if (strcmp(g->cfg->error_log, M.current->cfg->error_log) != 0 &&
	    log_open(M.current->cfg->error_log) == -1)
		log_error("cannot reopen the error log %s: %s", M.current->cfg->error_log,
		    strerror(errno));
	log_set_level(M.current->cfg->log_level);
	arm_heartbeat(M.current->cfg);
	/* A slot of the serving generation left empty meanwhile gets a worker again. */
	for (int s = 0; s < M.nslots; s++) {
		cancel_respawn(s);
		if (s < M.current->cfg->workers && !slot_covered(s, NULL))
			spawn(s, M.current);
	}
}

static void
drain_failure(struct worker *w)
{
	struct ipc_msg m;
	char err[256];

	while (ipc_recv(w->ipc_fd, &m, err, sizeof(err)) == 1)
		if (m.type == IPC_FAILED && m.u.failed.pid == w->pid && w->state == W_STARTING)
			snprintf(w->failure, sizeof(w->failure), "%s", m.u.failed.reason);
}

static void
reap(void)
{
	struct worker *w;
	char how[96];
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((w = worker_by_pid(pid)) == NULL)
			continue;
		/*
		 * Why it could not get ready, if it said so before it died:
		 * whichever of the two events the loop saw first. Only that: the
		 * process is gone, nothing else it sent can be acted on.
		 */
		drain_failure(w);
		describe_status(status, how, sizeof(how));
		int expected = w->state == W_RETIRING || M.stopping;
		int slot = w->slot;
		bool current = w->gen == M.current;
		uint64_t lived = now_ms() - w->started_ms;
		/*
		 * It exited on its own before it was ready, in a generation not
		 * yet serving: that generation cannot get ready. (One killed by
		 * a signal is only restarted.)
		 */
		bool cannot = !expected && current && !M.announced && w->state == W_STARTING &&
		    (w->failure[0] != '\0' || (WIFEXITED(status) && WEXITSTATUS(status) != 0));
		char why[IPC_REASON_MAX + 128];
		snprintf(why, sizeof(why), "its worker for slot %d exited before it was ready: %s",
		    slot, w->failure[0] ? w->failure : how);
		if (w->hung)
			log_error("hung worker %ld (slot %d, generation %ld) ended: %s", (long)pid,
			    slot, w->gen->id, how);
		else if (expected)
			log_info("worker %ld (slot %d, generation %ld) exited: %s", (long)pid,
			    slot, w->gen->id, how);
		else
			log_error("worker %ld (slot %d, generation %ld) died unexpectedly: %s",
			    (long)pid, slot, w->gen->id, how);
		worker_free(w);
		if (cannot) {
			not_ready(why);
			continue;
		}
		orphans_rehome(pid);
		if (!expected)
			stat_add(&stats->restarts[REASON_CRASH], 1);
		if (!expected && current)
			adopt_slot(slot);
		/* A replacement already on its way (recycling) takes the slot. */
		if (!expected && current && slot < M.current->cfg->workers &&
		    !slot_covered(slot, NULL))
			schedule_respawn(slot, lived);
	}
	gen_release_unused();
	listen_close_unused(socket_used, NULL);
	if (M.stopping && live_workers() == 0)
		event_base_loopbreak(M.base);
}

/* ---- signals and the cycle ---- */

static void
stop_all(enum ipc_shutdown_mode mode)
{
	struct worker *w;

	M.stopping = (int)mode + 1;
	notify_send("STOPPING=1");
	for (int i = 0; i < M.nslots; i++) {
		cancel_respawn(i);
	}
	LIST_FOREACH(w, &M.workers, link)
		if (mode == IPC_SHUTDOWN_FAST || w->state != W_RETIRING)
			stop_worker(w, mode);
	listen_close_unused(socket_used, NULL);
	if (live_workers() == 0)
		event_base_loopbreak(M.base);
}

/*
 * Workers open the log files themselves (and reopen them on SIGUSR1) after
 * dropping privileges: create them here, owned by the workers' user.
 */
static void
own_file(const char *path, uid_t uid, gid_t gid)
{
	int fd;

	if (path == NULL || strcmp(path, "stderr") == 0 || strcmp(path, "off") == 0)
		return;
	struct stat st;

	/* As root: never follow a link planted to make us chown another file. */
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) == -1) {
		log_error("cannot open %s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		log_error("%s is not a plain file of its own: not giving it to the workers", path);
		close(fd);
		return;
	}
	if (uid != (uid_t)-1 && fchown(fd, uid, gid) == -1)
		log_error("cannot give %s to the workers' user: %s", path, strerror(errno));
	close(fd);
}

static void
prepare_log_files(const struct config *cfg)
{
	uid_t uid = geteuid() == 0 ? cfg->uid : (uid_t)-1;

	own_file(cfg->error_log, uid, cfg->gid);
	own_file(cfg->access_log, uid, cfg->gid);
}

static void
watchdog_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	notify_send("WATCHDOG=1");
}

static void
setup_watchdog(void)
{
	uint64_t usec = notify_watchdog_usec();
	struct timeval tv = ms_tv((long long)(usec / 2000));   /* half the period */

	if (usec == 0)
		return;
	/* systemd would kill a master that never pets its watchdog: say why now. */
	if ((M.watchdog_ev = event_new(M.base, -1, EV_PERSIST, watchdog_fire, NULL)) == NULL ||
	    event_add(M.watchdog_ev, &tv) == -1)
		fatal("cannot arm the systemd watchdog timer: %s", strerror(errno));
}

static void
reload_failed(const char *err)
{
	log_error("reload failed, keeping the current configuration: %s", err);
	notify_send("READY=1\nSTATUS=reload failed: %.400s", err);
	stat_add(&stats->reloads_failed, 1);
	M.last_reload.result = "failed";
	M.last_reload.at = time(NULL);
	snprintf(M.last_reload.error, sizeof(M.last_reload.error), "%s", err);
}

static void
reload(void)
{
	char err[1024];
	struct config *cfg;
	struct generation *g;

	log_info("reloading %s", M.current->cfg->path);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now_ms() * 1000);
	if ((cfg = master_load_config(M.current->cfg->path, M.ov, err, sizeof(err))) == NULL) {
		reload_failed(err);
		return;
	}
	if (paths_check(cfg, err, sizeof(err)) == -1) {
		reload_failed(err);
		config_free(cfg);
		return;
	}
	snprintf(err, sizeof(err), "out of memory");
	if (listen_ensure(cfg, err, sizeof(err)) == -1 || slots_grow(cfg->workers) == -1 ||
	    (g = gen_new(cfg)) == NULL) {
		reload_failed(err);
		config_free(cfg);
		listen_close_unused(socket_used, NULL);
		return;
	}
	if (strcmp(cfg->error_log, M.current->cfg->error_log) != 0 &&
	    log_open(cfg->error_log) == -1)
		log_error("cannot open the error log %s: %s; keeping the old one",
		    cfg->error_log, strerror(errno));
	log_set_level(cfg->log_level);
	M.current = g;
	M.announced = false;
	arm_heartbeat(cfg);
	prepare_log_files(cfg);
	for (int s = 0; s < cfg->workers; s++) {
		cancel_respawn(s);
		spawn(s, g);
	}
	gen_release_unused();
}

static void
reopen(void)
{
	struct ipc_msg m = { .type = IPC_REOPEN };
	struct worker *w;

	if (log_reopen() == -1)
		log_error("cannot reopen the error log: %s", strerror(errno));
	else
		log_info("reopened the log files");
	prepare_log_files(M.current->cfg);
	LIST_FOREACH(w, &M.workers, link)
		ipc_send(w->ipc_fd, &m);
}

/* SIGTTIN / SIGTTOU: one worker slot more or fewer in the current generation. */
static void
resize(int delta)
{
	struct config *cfg = M.current->cfg;
	char err[512];
	struct worker *w;
	int slot;

	if (delta > 0) {
		cfg->workers++;
		snprintf(err, sizeof(err), "out of memory");
		if (slots_grow(cfg->workers) == -1 || listen_ensure(cfg, err, sizeof(err)) == -1) {
			log_error("cannot add a worker: %s", err);
			cfg->workers--;
			return;
		}
		log_info("adding a worker: %d now", cfg->workers);
		spawn(cfg->workers - 1, M.current);
		notify_status("");
		return;
	}
	if (cfg->workers <= 1) {
		log_warn("not removing the last worker");
		return;
	}
	slot = --cfg->workers;
	log_info("removing the worker of slot %d: %d now", slot, cfg->workers);
	cancel_respawn(slot);
	release_slot(slot);
	LIST_FOREACH(w, &M.workers, link) {
		if (w->slot == slot && w->state != W_RETIRING) {
			stop_worker(w, IPC_SHUTDOWN_GRACEFUL);
			stat_add(&stats->restarts[REASON_SCALE], 1);
		}
	}
	listen_close_unused(socket_used, NULL);
	notify_status("");
}

static void
drain_delay_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (M.stopping)
		return;
	log_info("graceful shutdown: the drain delay is over");
	stop_all(IPC_SHUTDOWN_GRACEFUL);
}

/*
 * SIGQUIT with drain_delay_ms: first the cluster tells load balancers it is
 * going (health checks fail, keep-alive connections close after their next
 * reply) while it still serves everything; only then does it stop accepting.
 */
static void
begin_drain_delay(void)
{
	long long ms = M.current->cfg->drain_delay_ms;
	struct timeval tv = ms_tv(ms);
	struct worker *w;

	M.lame_duck = true;
	notify_send("STOPPING=1");
	log_info("graceful shutdown in %lld ms (drain_delay_ms): health checks fail and "
	    "keep-alive connections close meanwhile; every request is still served", ms);
	LIST_FOREACH(w, &M.workers, link)
		if (w->state != W_RETIRING)
			send_drain(w);
	if ((M.drain_delay_ev = evtimer_new(M.base, drain_delay_fire, NULL)) == NULL ||
	    evtimer_add(M.drain_delay_ev, &tv) == -1) {
		log_error("cannot arm the drain delay: stopping now");
		stop_all(IPC_SHUTDOWN_GRACEFUL);
	}
}

static void
master_cycle(void)
{
	/*
	 * Stop requests first: a Ctrl-C reaches the workers too, and their
	 * deaths must not be taken for crashes to restart.
	 */
	if (M.sig_terminate) {
		M.sig_terminate = 0;
		if (M.stopping != IPC_SHUTDOWN_FAST + 1) {
			log_info("fast shutdown");
			stop_all(IPC_SHUTDOWN_FAST);
		}
	}
	if (M.sig_quit) {
		M.sig_quit = 0;
		if (!M.stopping && !M.lame_duck && M.current->cfg->drain_delay_ms > 0)
			begin_drain_delay();
		else if (!M.stopping && !M.lame_duck) {
			log_info("graceful shutdown");
			stop_all(IPC_SHUTDOWN_GRACEFUL);
		}
	}
	if (M.sig_child) {
		M.sig_child = 0;
		reap();
	}
	if (M.stopping)
		return;      /* a stopping master starts nothing new */
	if (M.sig_reopen) {
		M.sig_reopen = 0;
		reopen();
	}
	if (M.lame_duck)
		return;      /* nor one about to stop: no new generation, no new slot */
	if (M.sig_reconfigure) {
		M.sig_reconfigure = 0;
		reload();
	}
	for (; M.sig_more > 0; M.sig_more--)
		resize(1);
	for (; M.sig_fewer > 0; M.sig_fewer--)
		resize(-1);
}

static void
on_signalfd(evutil_socket_t fd, short what, void *arg)
{
	struct signalfd_siginfo si;

	(void)what;
	(void)arg;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD: M.sig_child = 1; break;
		case SIGTERM:
		case SIGINT: M.sig_terminate = 1; break;
		case SIGQUIT: M.sig_quit = 1; break;
		case SIGHUP: M.sig_reconfigure = 1; break;
		case SIGUSR1: M.sig_reopen = 1; break;
		case SIGTTIN: M.sig_more++; break;
		case SIGTTOU: M.sig_fewer++; break;
		}
	}
	master_cycle();
}

static int
setup_signals(void)
{
	static const int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP,
	    SIGUSR1, SIGTTIN, SIGTTOU };
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	/* Blocked signals wait in the signalfd; workers unblock them after fork. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) == -1 ||
	    (M.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	M.sig_ev = event_new(M.base, M.sfd, EV_READ | EV_PERSIST, on_signalfd, NULL);
	if (M.sig_ev == NULL || event_add(M.sig_ev, NULL) == -1)
		return -1;
	return 0;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Queued connections die with a closing socket unless the kernel migrates them. */
static void
hint_migrate_req(void)
{
	char c = '1';
	int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return;
	if (read(fd, &c, 1) == 1 && c == '0')
		log_info("hint: net.ipv4.tcp_migrate_req is 0, so connections still queued "
		    "on a socket that closes (fewer workers, a dropped address) are reset; "
		    "sysctl -w net.ipv4.tcp_migrate_req=1 moves them to the remaining sockets");
	close(fd);
}

static void
cleanup(void)
{
	struct generation *g;

	while (!LIST_EMPTY(&M.workers))
		worker_free(LIST_FIRST(&M.workers));
	for (int i = 0; i < M.nslots; i++)
		event_free(M.slots[i].respawn_ev);
	free(M.slots);
	while ((g = LIST_FIRST(&M.gens)) != NULL) {
		LIST_REMOVE(g, link);
		config_free(g->cfg);
		free(g);
	}
	if (M.sig_ev != NULL)
		event_free(M.sig_ev);
	if (M.watchdog_ev != NULL)
		event_free(M.watchdog_ev);
	if (M.heartbeat_ev != NULL)
		event_free(M.heartbeat_ev);
	if (M.drain_delay_ev != NULL)
		event_free(M.drain_delay_ev);
	notify_close();
	control_close();
	if (M.sfd != -1)
		close(M.sfd);
	listen_close_all();
	if (M.base != NULL)
		event_base_free(M.base);
	pidfile_remove();
	log_close();
}

static const char *const state_names[] = { "starting", "ready", "retiring" };

static json_object *
add_int(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
	return o;
}

static int
by_slot(const void *a, const void *b)
{
	json_object *const *x = a, *const *y = b, *v;
	int64_t sx, sy, gx, gy;

	json_object_object_get_ex(*x, "slot", &v);
	sx = json_object_get_int64(v);
	json_object_object_get_ex(*y, "slot", &v);
	sy = json_object_get_int64(v);
	json_object_object_get_ex(*x, "generation", &v);
	gx = json_object_get_int64(v);
	json_object_object_get_ex(*y, "generation", &v);
	gy = json_object_get_int64(v);
	return sx != sy ? (sx < sy ? -1 : 1) : gx < gy ? -1 : gx > gy;
}

/* The document `clusterd -s status` prints. */
static json_object *
status_json(void)
{
	json_object *doc = json_object_new_object(), *m = json_object_new_object();
	json_object *list = json_object_new_array(), *lr = json_object_new_object();
	uint64_t now = now_ms();
	struct worker *w;
	char when[32];

	if (doc == NULL || m == NULL || list == NULL || lr == NULL) {
		json_object_put(doc);
		json_object_put(m);
		json_object_put(list);
		json_object_put(lr);
		return NULL;
	}
	add_int(m, "pid", getpid());
	add_int(m, "generation", M.current->id);
	add_int(m, "workers", M.current->cfg->workers);
	add_int(m, "uptime_s", (int64_t)((now - M.started_ms) / 1000));
	json_object_object_add(m, "state", json_object_new_string(M.stopping ? "stopping" :
	    M.lame_duck ? "draining" : "running"));
	json_object_object_add(lr, "result", json_object_new_string(M.last_reload.result));
	if (M.last_reload.at != 0) {
		struct tm tm;
		gmtime_r(&M.last_reload.at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_object_add(lr, "at", json_object_new_string(when));
	}
	if (M.last_reload.error[0] != '\0')
		json_object_object_add(lr, "error", json_object_new_string(M.last_reload.error));
	json_object_object_add(m, "last_reload", lr);
	json_object_object_add(doc, "master", m);
	LIST_FOREACH(w, &M.workers, link) {
		json_object *o = json_object_new_object();
		if (o == NULL)
			continue;
		add_int(o, "slot", w->slot);
		add_int(o, "pid", w->pid);
		add_int(o, "generation", w->gen->id);
		json_object_object_add(o, "state", json_object_new_string(state_names[w->state]));
		add_int(o, "uptime_s", (int64_t)((now - w->started_ms) / 1000));
		add_int(o, "requests", (int64_t)w->sv.requests);
		add_int(o, "in_flight", w->in_flight);
		add_int(o, "connections", w->connections);
		add_int(o, "rss_bytes", (int64_t)proc_rss_bytes(w->pid));
		json_object_array_add(list, o);
	}
	json_object_array_sort(list, by_slot);
	json_object_object_add(doc, "workers", list);
	return doc;
}

int
master_run(struct config *cfg, const struct config_overrides *ov)
{
	char err[1024];

	M.ov = ov;
	M.sfd = -1;
	M.started_ms = now_ms();
	snprintf(M.host_uid, sizeof(M.host_uid), "%016llx", (unsigned long long)random64());
	M.last_tick_ms = M.started_ms;
	M.last_reload.result = "none";
	M.exit_status = 1;
	LIST_INIT(&M.gens);
	LIST_INIT(&M.workers);
	log_set_role("master");
	log_set_level(cfg->log_level);
	if (log_open(cfg->error_log) == -1) {
		fprintf(stderr, "clusterd: %s: error_log %s: %s\n", cfg->path, cfg->error_log,
		    strerror(errno));
		config_free(cfg);
		return 1;
	}
	/* From here on, a reason not to start goes to stderr too (log_fail). */
	if (stats_map() == -1) {
		log_fail("cannot start: the shared figures: %s", strerror(errno));
		config_free(cfg);
		goto out;
	}
	if ((M.current = gen_new(cfg)) == NULL) {
		log_fail("cannot start: out of memory");
		config_free(cfg);
		goto out;
	}
	if (notify_init() == -1)
		goto out;
	if (cfg->user != NULL && geteuid() != 0)
		log_warn("user %s: ignored, clusterd is not running as root", cfg->user);
	if (cfg->pid_file != NULL && pidfile_create(cfg->pid_file, err, sizeof(err)) == -1) {
		log_fail("cannot start: %s", err);
		goto out;
	}
	raise_nofile();
	if ((M.base = event_base_new()) == NULL || setup_signals() == -1) {
		log_fail("cannot start: cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	if (listen_ensure(cfg, err, sizeof(err)) == -1) {
		log_fail("cannot start: %s", err);
		goto out;
	}
	if (slots_grow(cfg->workers) == -1) {
		log_fail("cannot start: out of memory");
		goto out;
	}
	if (control_open(M.base, status_json) == -1) {
		log_fail("cannot start: the status socket: %s", strerror(errno));
		goto out;
	}
	hint_migrate_req();
	prepare_log_files(cfg);
	setup_watchdog();
	if ((M.heartbeat_ev = event_new(M.base, -1, EV_PERSIST, heartbeat_fire, NULL)) == NULL) {
		log_fail("cannot start: cannot set up the heartbeat timer: %s", strerror(errno));
		goto out;
	}
	arm_heartbeat(cfg);
	log_info("clusterd %s starting %d worker(s), config %s", PACKAGE_VERSION,
	    cfg->workers, cfg->path);
	for (int s = 0; s < cfg->workers; s++)
		spawn(s, M.current);
	event_base_dispatch(M.base);
	log_info("exiting");
	M.exit_status = M.start_failed ? 1 : 0;
out:
	cleanup();
	return M.exit_status;
}
