#include "config.h"

#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/log.h"
#include "common/time.h"
#include "ipc/bus.h"
#include "ipc/ipc.h"
#include "ipc/stats.h"
#include "svc/service.h"
#include "worker/accesslog.h"
#include "http/http.h"
#include "worker/router.h"
#include "worker/worker.h"

/*
 * The worker's state lives in one static object: it is reachable for the
 * whole life of the process, so a fast exit that skips the frees is not a
 * leak to LeakSanitizer either.
 */
static struct {
	const struct worker_args *args;
	struct worker_info info;
	struct event_base *base;
	struct http_server *http;
	struct router *router;
	struct event *ipc_ev, *stats_ev;
	struct bus_end *bus;         /* to the other workers, through the master */
	struct event *sig_ev[6];
	int shutting_down;
	int draining;                /* the HTTP server and the router, until done */
	int limit_told;              /* the master knows max_requests was reached */
	struct stats_block *stats;   /* its block of the shared figures, or NULL */
	int nfig;                    /* figures written at this heartbeat so far */
	int fast;
} W;

/* Closes every descriptor inherited from the master but those in keep. */
static void
close_stray_fds(const int *keep, size_t nkeep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name), kept = 0;
		if (e->d_name[0] == '.' || fd <= STDERR_FILENO || fd == dirfd(d))
			continue;
		for (size_t i = 0; i < nkeep; i++)
			kept |= keep[i] == fd;
		if (!kept)
			close(fd);
	}
	closedir(d);
}

/* If the master dies, so do we: no orphan keeps serving an old config. */
static void
follow_master(pid_t master)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master)
		_exit(1);
}

static void
detach_from_master(const struct worker_args *a)
{
	int keep[3 + CONFIG_MAX_LISTEN];
	size_t n = 0;
	sigset_t none;

	/* The master blocks the signals it reads from a signalfd. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	follow_master(a->master);
	keep[n++] = a->ipc_fd;
	keep[n++] = a->bus_fd;
	keep[n++] = log_fd();
	for (size_t i = 0; i < a->nfds && n < sizeof(keep) / sizeof(keep[0]); i++)
		keep[n++] = a->fds[i];
	close_stray_fds(keep, n);
}

static void
raise_nofile(long long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (want > 0) {
		rl.rlim_cur = (rlim_t)want;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;     /* only root may do this */
	} else
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot set the open-files limit to %llu: %s",
		    (unsigned long long)rl.rlim_cur, strerror(errno));
}

/*
 * Started as root with "user" set: become that user for good. The master
 * stays root (it binds on reload); a worker that could get root back is a
 * bug, so it checks and refuses to run.
 */
static int
drop_privileges(const struct config *cfg)
{
	if (cfg->user == NULL || geteuid() != 0)
		return 0;
	/* The ids were looked up once, when the config was read. */
	if (initgroups(cfg->user, cfg->gid) == -1 || setgid(cfg->gid) == -1 ||
	    setuid(cfg->uid) == -1) {
		log_error("cannot become %s: %s", cfg->user, strerror(errno));
		return -1;
	}
	if (cfg->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		log_error("could get root back after becoming %s: refusing to run", cfg->user);
		return -1;
	}
	return 0;
}

static void
reopen_logs(void)
{
	if (log_reopen() == -1)
		log_error("cannot reopen the error log: %s", strerror(errno));
	if (accesslog_reopen() == -1)
		log_error("cannot reopen the access log %s: %s", W.args->cfg->access_log,
		    strerror(errno));
}

static void
drained(void *arg)
{
	(void)arg;
	if (--W.draining == 0)
		event_base_loopexit(W.base, NULL);
}

/* A graceful stop is coming: health checks fail, keep-alive ends, all else serves. */
static void
lame_duck(void)
{
	W.info.draining = true;
	http_server_close_keepalive(W.http);
}

static void
shutdown_worker(int fast)
{
	if (fast) {
		W.fast = 1;
		event_base_loopbreak(W.base);
		return;
	}
	if (W.shutting_down)
		return;
	W.shutting_down = 1;
	W.info.draining = true;
	log_info("graceful shutdown: %zu request(s) in flight",
	    http_server_in_flight(W.http));
	/* Done when the HTTP connections and every service's own are; it stops accepting. */
	W.draining = 2;
	if (http_drain(W.http, drained, NULL) == -1) {
		shutdown_worker(1);
		return;
	}
	router_drain(W.router, drained, NULL);
}

/* Every request, into the worker's block of the shared figures. */
static void
count_figures(const struct http_req *req, void *arg)
{
	int svc = service_index(http_req_service(req));

	(void)arg;
	stats_request(W.stats, svc >= 0 && svc < STATS_SERVICES - 1 ? svc : STATS_SERVICES - 1,
	    http_req_status(req), http_req_duration_us(req), http_req_bytes(req));
	stat_set(&W.stats->connections, http_server_connections(W.http));
	stat_set(&W.stats->in_flight, http_server_in_flight(W.http));
}

static void
put_figure(void *ctx, const char *prefix, const struct svc_figure *f)
{
	static int warned;

	(void)ctx;
	if (W.nfig >= STATS_FIGURES && !warned++)
		log_warn("the services report more than %d figures: the rest are not in /metrics",
		    STATS_FIGURES);
	stats_figure(W.stats, W.nfig++, prefix, f->name, f->kind == SVC_COUNTER, f->label,
	    f->label_value, f->value);
}

/* The services' own figures and the gauges, at every heartbeat. */
static void
publish_figures(void)
{
	if (W.stats == NULL)
		return;
	W.nfig = 0;
	router_stats(W.router, put_figure, NULL);
	stat_set(&W.stats->connections, http_server_connections(W.http));
	stat_set(&W.stats->in_flight, http_server_in_flight(W.http));
}

static void
send_stats(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_msg m = { .type = IPC_STATS };

	(void)fd;
	(void)what;
	(void)arg;
	m.u.stats.pid = W.info.pid;
	m.u.stats.requests = (int64_t)http_server_requests(W.http);
	m.u.stats.in_flight = (int64_t)http_server_in_flight(W.http);
	m.u.stats.connections = (int64_t)http_server_connections(W.http);
	ipc_send(W.args->ipc_fd, &m);
	publish_figures();
}

/*
 * max_requests reached: the master hears it now, not at the next heartbeat,
 * and starts the replacement; this worker serves on until that one is ready.
 */
static void
count_request(const struct http_req *req, void *arg)
{
	(void)req;
	(void)arg;
	if (!W.limit_told && http_server_requests(W.http) >= W.args->max_requests) {
		W.limit_told = 1;
		send_stats(-1, 0, NULL);
	}
}

static void
on_ipc(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_msg m;
	char err[256];
	int rc, fds[IPC_MAX_FDS];
	size_t nfds;

	(void)what;
	(void)arg;
	while ((rc = ipc_recv_fds(fd, &m, fds, &nfds, err, sizeof(err))) != -1 ||
	    errno == EBADMSG) {
		if (rc == 1 && m.type == IPC_ADOPT) {
			/* the server owns the descriptors from here, whatever happens */
			if (http_server_adopt(W.http, (int)m.u.adopt.slot, fds, nfds) == 0)
				log_info("accepting for slot %lld too, until its new worker is ready",
				    (long long)m.u.adopt.slot);
			continue;
		}
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);   /* no other message comes with any */
		if (rc == 0) {
			log_error("the master is gone; exiting");
			shutdown_worker(1);
			return;
		}
		if (rc == -1) {
			log_error("bad message from the master: %s", err);
			continue;
		}
		if (m.type == IPC_SHUTDOWN)
			shutdown_worker(m.u.shutdown.mode == IPC_SHUTDOWN_FAST);
		else if (m.type == IPC_REOPEN)
			reopen_logs();
		else if (m.type == IPC_DRAIN)
			lame_duck();
		else if (m.type == IPC_RELEASE) {
			http_server_release(W.http, (int)m.u.release.slot);
			log_info("no longer accepting for slot %lld", (long long)m.u.release.slot);
		}
		else
			log_warn("unexpected %s message from the master", ipc_type_name(m.type));
	}
}

static void
on_bus(void *arg, const char *topic, const unsigned char *body, size_t len)
{
	(void)arg;
	router_bus(W.router, topic, body, len);
}

static int
bus_send(const char *topic, bool echo, const struct iovec *iov, int iovcnt)
{
	return W.bus != NULL ? bus_end_send(W.bus, echo ? BUS_ECHO : 0, topic, iov, iovcnt) : -1;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	if (sig == SIGQUIT)
		shutdown_worker(0);
	else if (sig == SIGUSR1)
		reopen_logs();
	else
		shutdown_worker(1);
}

static int
setup_loop(const struct worker_args *a)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGQUIT, SIGUSR1 };
	struct event_config *ec = event_config_new();
	struct timeval stats_tv = ms_tv(a->cfg->heartbeat_interval_ms);
	struct http_limits lim;
	char pid[24];

	/* The changelist folds the epoll_ctl calls of one loop iteration into one. */
	if (ec != NULL)
		event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	W.base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (W.base == NULL)
		return -1;
	W.info.base = W.base;
	/* Before the services start: they may send at once. */
	if ((W.bus = bus_end_new(W.base, a->bus_fd, on_bus, NULL)) == NULL)
		return -1;
	W.info.bus_send = bus_send;
	lim = (struct http_limits){
		.max_header_bytes = a->cfg->limits.max_header_bytes,
		.max_body_bytes = a->cfg->limits.max_body_bytes,
		.read_timeout_ms = a->cfg->limits.read_timeout_ms,
		.keepalive_timeout_ms = a->cfg->limits.keepalive_timeout_ms,
		.header_timeout_ms = a->cfg->limits.header_timeout_ms,
		.body_timeout_ms = a->cfg->limits.body_timeout_ms,
		.max_connections = a->cfg->limits.max_connections,
	};
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if ((W.router = router_new(a->cfg, &W.info)) == NULL ||
	    (W.http = http_server_new(W.base, &lim, router_handle, W.router)) == NULL ||
	    (a->cfg->worker_pid_header &&
		http_server_add_header(W.http, "X-Worker-Pid", pid) == -1) ||
	    (accesslog_enabled() &&
		http_server_on_complete(W.http, accesslog_request, NULL) == -1) ||
	    (a->max_requests > 0 &&
		http_server_on_complete(W.http, count_request, NULL) == -1) ||
	    (W.stats != NULL &&
		http_server_on_complete(W.http, count_figures, NULL) == -1) ||
	    http_server_listen(W.http, a->fds, a->nfds) == -1)
		return -1;
	W.ipc_ev = event_new(W.base, a->ipc_fd, EV_READ | EV_PERSIST, on_ipc, NULL);
	W.stats_ev = event_new(W.base, -1, EV_PERSIST, send_stats, NULL);
	if (W.ipc_ev == NULL || W.stats_ev == NULL ||
	    event_add(W.ipc_ev, NULL) == -1 || event_add(W.stats_ev, &stats_tv) == -1)
		return -1;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		W.sig_ev[i] = evsignal_new(W.base, sigs[i], on_signal, NULL);
		if (W.sig_ev[i] == NULL || event_add(W.sig_ev[i], NULL) == -1)
			return -1;
	}
	return 0;
}

static void
teardown(void)
{
	for (size_t i = 0; i < sizeof(W.sig_ev) / sizeof(W.sig_ev[0]); i++)
		if (W.sig_ev[i] != NULL)
			event_free(W.sig_ev[i]);
	if (W.ipc_ev != NULL)
		event_free(W.ipc_ev);
	if (W.stats_ev != NULL)
		event_free(W.stats_ev);
	/* Services first: ending the requests they hold still needs the server. */
	router_free(W.router);
	bus_end_free(W.bus);
	http_server_free(W.http);
	if (W.base != NULL)
		event_base_free(W.base);
	accesslog_close();
	log_close();
}

/*
 * The worker cannot get ready: it says why, in the log and to the master,
 * which reports it where the operator looks (and stops, or abandons the
 * reload), and exits.
 */
static void __attribute__((noreturn, format(printf, 2, 3)))
init_failed(const struct worker_args *a, const char *fmt, ...)
{
	struct ipc_msg m = { .type = IPC_FAILED };
	va_list ap;

	m.u.failed.pid = getpid();
	va_start(ap, fmt);
	vsnprintf(m.u.failed.reason, sizeof(m.u.failed.reason), fmt, ap);
	va_end(ap);
	log_error("cannot start: %s", m.u.failed.reason);
	(void)ipc_send(a->ipc_fd, &m);
	exit(1);
}

void
worker_run(const struct worker_args *a)
{
	char role[32];
	struct ipc_msg ready = { .type = IPC_READY };

	W.args = a;
	W.stats = stats != NULL && a->stats_block >= 0 ? &stats->blocks[a->stats_block] : NULL;
	W.info.pid = getpid();
	W.info.slot = a->slot;
	W.info.generation = a->generation;
	W.info.host_uid = a->host_uid;
	W.info.shutdown_timeout_ms = a->cfg->shutdown_timeout_ms;
	snprintf(role, sizeof(role), "worker slot %d", a->slot);
	log_set_role(role);
	log_forget_error();
	detach_from_master(a);
	raise_nofile(a->cfg->worker_rlimit_nofile);
	/* Opened before dropping privileges, as the master made them ours. */
	if (accesslog_open(a->cfg->access_log, a->cfg->access_log_format) == -1)
		init_failed(a, "cannot open the access log %s: %s", a->cfg->access_log,
		    strerror(errno));
	if (drop_privileges(a->cfg) == -1)
		init_failed(a, "%s", log_last_error());
	follow_master(a->master);    /* a credential change cleared it */
	errno = 0;
	if (setup_loop(a) == -1)     /* a service that fails says why in the log */
		init_failed(a, "%s", *log_last_error() ? log_last_error() :
		    errno ? strerror(errno) : "setting up the loop failed");
	ready.u.ready.pid = W.info.pid;
	ready.u.ready.slot = a->slot;
	ready.u.ready.generation = a->generation;
	if (ipc_send(a->ipc_fd, &ready) == -1)
		fatal("cannot report to the master: %s", strerror(errno));
	log_debug("serving, generation %ld", a->generation);
	event_base_dispatch(W.base);
	if (W.fast)
		exit(0);     /* requests in flight are dropped; no cleanup owed */
	teardown();
	exit(0);
}
