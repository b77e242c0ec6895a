/*
 * The server: accepting on the listening sockets, the drain of a graceful
 * stop, completion hooks and the server's figures.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/time.h"
#include "http/internal.h"

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100          /* out of descriptors: wait before accepting */
#define DRAIN_GRACE_MS 1000          /* idle keep-alive while draining */
#define DRAIN_ACCEPT_MAX 4096        /* queued connections taken in by a drain, per socket */
#define FD_SPARE 64                  /* descriptors kept from connections: logs, MongoDB, pipes */

static void
listeners_set(struct http_server *srv, int on)
{
	srv->accept_paused = !on;
	for (size_t i = 0; i < srv->nlev; i++)
		if (on)
			event_add(srv->lev[i], NULL);
		else
			event_del(srv->lev[i]);
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	listeners_set(arg, 1);
}

/*
 * At max_connections, room is made by closing an idle keep-alive
 * connection once a new one is accepted; when none is idle, accepting
 * stops until one ends (server_room()), and new connections wait in the
 * backlog, where the kernel holds them for free. -1 when there is no room;
 * else 0, with *victim the connection to close, if any.
 */
static int
make_room(struct http_server *srv, struct conn **victim)
{
	*victim = NULL;
	if (srv->nconns < srv->max_conns)
		return 0;
	if (!srv->full) {
		srv->full = 1;
		log_warn("%zu connections, limits.max_connections: closing idle keep-alive "
		    "connections for new ones, else leaving them in the backlog", srv->nconns);
	}
	if ((*victim = conn_idle_oldest(srv)) != NULL)
		return 0;
	listeners_set(srv, 0);
	return -1;
}

/* A connection ended: accepting goes on if it had stopped for want of room. */
void
server_room(struct http_server *srv)
{
	if (srv->full && srv->nconns < srv->max_conns && srv->nlev > 0 &&
	    !event_pending(srv->accept_resume, EV_TIMEOUT, NULL))
		listeners_set(srv, 1);
}

/* The backlog is empty: an episode of being full ends if there is room. */
static void
caught_up(struct http_server *srv)
{
	if (srv->full && srv->nconns < srv->max_conns) {
		log_info("below limits.max_connections again: %llu idle connections were closed for room",
		    (unsigned long long)srv->reaped);
		srv->full = 0;
		srv->reaped = 0;
	}
}

/*
 * Out of descriptors (other than connections: max_connections keeps
 * FD_SPARE of them): the reserve descriptor is spent to accept the
 * connection and close it at once, so that the client learns now instead
 * of waiting in the backlog, and the listening socket does not wake the
 * loop again and again. 0 if it did; -1 if there is no reserve.
 */
static int
shed(struct http_server *srv, int lfd)
{
	int fd;

	if (srv->reserve_fd < 0)
		return -1;
	close(srv->reserve_fd);
	if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		close(fd);
		if (srv->shed++ == 0)
			log_warn("accept: %s: closing new connections unanswered until "
			    "descriptors are free", strerror(EMFILE));
	}
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? 0 : -1;
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct http_server *srv = arg;
	struct sockaddr_storage peer;
	socklen_t len;
	int fd;

	(void)what;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct conn *victim;

		if (make_room(srv, &victim) == -1)
			return;
		len = sizeof(peer);
		fd = accept4(lfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (victim != NULL) {
				conn_close(victim);
				srv->reaped++;
			}
			if (srv->shed > 0) {
				log_warn("accept: descriptors free again: %llu connections were "
				    "closed unanswered", (unsigned long long)srv->shed);
				srv->shed = 0;
			}
			conn_new(srv, fd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			caught_up(srv);
			return;
		}
		if ((errno == EMFILE || errno == ENFILE) && shed(srv, lfd) == 0)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			struct timeval tv = ms_tv(ACCEPT_PAUSE_MS);
			log_warn("accept: %s: pausing for %d ms", strerror(errno), ACCEPT_PAUSE_MS);
			listeners_set(srv, 0);
			evtimer_add(srv->accept_resume, &tv);
		}
		return;
	}
}

/* limits.max_connections, or what the open-files limit leaves for connections. */
static size_t
max_connections(const struct http_limits *lim)
{
	struct rlimit rl;

	if (lim->max_connections > 0)
		return (size_t)lim->max_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return 1 << 20;
	return rl.rlim_cur > 2 * FD_SPARE ? (size_t)rl.rlim_cur - FD_SPARE :
	    rl.rlim_cur > 2 ? (size_t)rl.rlim_cur / 2 : 1;
}

static void
drain_fire(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *srv = arg;

	(void)fd;
	(void)what;
	if (srv->drain_done != NULL) {
		void (*done)(void *) = srv->drain_done;
		srv->drain_done = NULL;
		done(srv->drain_arg);
	}
}

struct http_server *
http_server_new(struct event_base *base, const struct http_limits *lim,
    http_handler handler, void *arg)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	struct timeval rt = ms_tv(lim->read_timeout_ms);
	struct timeval kt = ms_tv(lim->keepalive_timeout_ms);

	if (srv == NULL)
		return NULL;
	srv->base = base;
	srv->lim = *lim;
	srv->max_conns = max_connections(lim);
	srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv->handler = handler;
	srv->arg = arg;
	TAILQ_INIT(&srv->conns);
	/* Common timeouts: O(1) to rearm, since every connection uses the same two. */
	srv->read_tv = event_base_init_common_timeout(base, &rt);
	srv->keepalive_tv = lim->keepalive_timeout_ms > 0 ?
	    event_base_init_common_timeout(base, &kt) : srv->read_tv;
	srv->accept_resume = evtimer_new(base, accept_resume, srv);
	srv->drain_ev = event_new(base, -1, 0, drain_fire, srv);
	if (srv->read_tv == NULL || srv->keepalive_tv == NULL || srv->accept_resume == NULL ||
	    srv->drain_ev == NULL) {
		http_server_free(srv);
		return NULL;
	}
	return srv;
}

int
http_server_add_header(struct http_server *srv, const char *name, const char *value)
{
	size_t room = sizeof(srv->extra) - srv->extra_len;
	int n = snprintf(srv->extra + srv->extra_len, room, "%s: %s\r\n", name, value);

	if (n < 0 || (size_t)n >= room) {
		srv->extra[srv->extra_len] = '\0';
		return -1;
	}
	srv->extra_len += (size_t)n;
	return 0;
}

/* Adds listeners for fds, tagged with slot (-1: our own). */
static int
add_listeners(struct http_server *srv, int slot, const int *fds, size_t nfds)
{
	struct event **lev = realloc(srv->lev, (srv->nlev + nfds) * sizeof(*lev));
	int *tag;

	if (lev == NULL)
		return -1;
	srv->lev = lev;
	if ((tag = realloc(srv->lev_slot, (srv->nlev + nfds) * sizeof(*tag))) == NULL)
		return -1;
	srv->lev_slot = tag;
	for (size_t i = 0; i < nfds; i++) {
		struct event *ev = event_new(srv->base, fds[i], EV_READ | EV_PERSIST, on_accept, srv);
		if (ev == NULL)
			return -1;
		srv->lev[srv->nlev] = ev;
		srv->lev_slot[srv->nlev] = slot;
		srv->nlev++;
		/* while accepting is paused (full, out of descriptors) it waits too */
		if (!srv->accept_paused && event_add(ev, NULL) == -1)
			return -1;
	}
	return 0;
}

int
http_server_listen(struct http_server *srv, const int *fds, size_t nfds)
{
	return add_listeners(srv, -1, fds, nfds);
}

int
http_server_adopt(struct http_server *srv, int slot, const int *fds, size_t nfds)
{
	size_t before;

	if (srv->stopped || slot < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	http_server_release(srv, slot);      /* adopted again: the new copies replace */
	before = srv->nlev;
	if (add_listeners(srv, slot, fds, nfds) == -1) {
		/* those added are released below; the rest were never taken */
		for (size_t i = srv->nlev - before; i < nfds; i++)
			close(fds[i]);
		http_server_release(srv, slot);
		return -1;
	}
	return 0;
}

void
http_server_release(struct http_server *srv, int slot)
{
	size_t kept = 0;

	for (size_t i = 0; i < srv->nlev; i++) {
		if (srv->lev_slot[i] == slot) {
			close(event_get_fd(srv->lev[i]));
			event_free(srv->lev[i]);
			continue;
		}
		srv->lev[kept] = srv->lev[i];
		srv->lev_slot[kept] = srv->lev_slot[i];
		kept++;
	}
	srv->nlev = kept;
}

void
http_server_stop_accepting(struct http_server *srv)
{
	/*
	 * Closing our copy of a listening socket leaves the master's copy open:
	 * connections still queued on it wait for the next worker of the slot.
	 */
	for (size_t i = 0; i < srv->nlev; i++) {
		close(event_get_fd(srv->lev[i]));
		event_free(srv->lev[i]);
	}
	free(srv->lev);
	free(srv->lev_slot);
	srv->lev = NULL;
	srv->lev_slot = NULL;
	srv->nlev = 0;
	srv->stopped = 1;
	if (srv->accept_resume != NULL)
		event_del(srv->accept_resume);
}

/*
 * The connections the kernel has queued on our listening sockets, up to
 * max_connections: a drain answers them (with "Connection: close") rather
 * than leave them to be reset when the last copy of the socket closes.
 */
static void
take_queued(struct http_server *srv)
{
	for (size_t i = 0; i < srv->nlev; i++) {
		int lfd = event_get_fd(srv->lev[i]);

		for (int n = 0; n < DRAIN_ACCEPT_MAX && srv->nconns < srv->max_conns; n++) {
			struct sockaddr_storage peer;
			socklen_t len = sizeof(peer);
			int fd = accept4(lfd, (struct sockaddr *)&peer, &len,
			    SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd >= 0)
				conn_new(srv, fd, &peer);
			else if (errno != EINTR && errno != ECONNABORTED)
				break;           /* EAGAIN: the queue is empty */
		}
	}
}

int
http_drain(struct http_server *srv, void (*done)(void *), void *arg)
{
	long long grace_ms = srv->lim.keepalive_timeout_ms < DRAIN_GRACE_MS ?
	    srv->lim.keepalive_timeout_ms : DRAIN_GRACE_MS;
	struct timeval grace = ms_tv(grace_ms);
	struct conn *c;

	if ((srv->grace_tv = event_base_init_common_timeout(srv->base, &grace)) == NULL)
		return -1;
	srv->draining = 1;
	srv->grace_ms = grace_ms;
	srv->drain_done = done;
	srv->drain_arg = arg;
	/*
	 * Accepting stops, but what is already queued is taken in first: the
	 * master closes its copies of the sockets when the cluster stops, so
	 * once ours close too the kernel refuses new connections (a balancer
	 * sends those elsewhere, as it does any refused connection), and a
	 * connection still queued would be reset after its request was sent.
	 */
	if (!srv->stopped) {
		take_queued(srv);
		http_server_stop_accepting(srv);
	}
	/*
	 * Closing an idle keep-alive connection at once would race with the
	 * request its client may be sending right now, which a client that does
	 * not retry (wrk, many libraries) counts as failed. So an idle
	 * connection gets a short grace: a request that arrives is answered
	 * with "Connection: close", and one that stays idle is closed when the
	 * grace runs out, like any keep-alive connection that times out.
	 */
	TAILQ_FOREACH(c, &srv->conns, link) {
		if (c->lingering)        /* no longer than the grace either */
			(void)conn_linger_for(c, srv->grace_ms);
		else
			conn_set_keepalive_timer(c);
	}
	conn_drain_check(srv);
	return 0;
}

void
http_server_close_keepalive(struct http_server *srv)
{
	srv->no_keepalive = 1;
}

int
http_server_on_complete(struct http_server *srv, http_complete_cb cb, void *arg)
{
	if (srv->nhooks == HOOKS_MAX)
		return -1;
	srv->hooks[srv->nhooks].cb = cb;
	srv->hooks[srv->nhooks].arg = arg;
	srv->nhooks++;
	return 0;
}

uint64_t
http_server_requests(const struct http_server *srv)
{
	return srv->served;
}

size_t
http_server_in_flight(const struct http_server *srv)
{
	return srv->in_flight;
}

size_t
http_server_connections(const struct http_server *srv)
{
	return srv->nconns;
}

void
http_server_free(struct http_server *srv)
{
	if (srv == NULL)
		return;
	http_server_stop_accepting(srv);
	srv->draining = 0;
	while (!TAILQ_EMPTY(&srv->conns))
		conn_close(TAILQ_FIRST(&srv->conns));
	if (srv->accept_resume != NULL)
		event_free(srv->accept_resume);
	if (srv->drain_ev != NULL)
		event_free(srv->drain_ev);
	if (srv->reserve_fd >= 0)
		close(srv->reserve_fd);
	free(srv);
}
