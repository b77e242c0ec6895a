/*
 * The socketio service: a Socket.IO v5 hub (Engine.IO v4, WebSocket only)
 * on a route, and the worker's state for it.
 *
 *   GET  {prefix}/?EIO=4&transport=websocket   the WebSocket, a session
 *   POST {prefix}/emit                         a back end's broadcast
 *
 * Engine.IO's handshake errors are its own: 400 with {"code":N,"message":...}.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/time.h"
#include "conf/config.h"
#include "http/http.h"
#include "svc/socketio/socketio.h"

#define DRAIN_TICK_MS 20

/* Engine.IO's errors (engine.io's Server.errors), and its answer. */
enum eio_error { EIO_TRANSPORT_UNKNOWN, EIO_UNKNOWN_SID, EIO_BAD_HANDSHAKE_METHOD,
	EIO_BAD_REQUEST, EIO_FORBIDDEN, EIO_UNSUPPORTED_PROTOCOL_VERSION };

static void
eio_error(struct http_req *req, enum eio_error code)
{
	static const char *const msg[] = { "Transport unknown", "Session ID unknown",
	    "Bad handshake method", "Bad request", "Forbidden", "Unsupported protocol version" };
	char body[96];
	int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", (int)code,
	    msg[code]);

	http_reply(req, code == EIO_FORBIDDEN ? 403 : 400, body, (size_t)n);
}

static bool
has_token(const char *list, const char *token)
{
	size_t n = strlen(token);

	for (const char *p = list; p != NULL && *p != '\0'; ) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 && (p[n] == '\0' || p[n] == ',' ||
		    p[n] == ' ' || p[n] == '\t'))
			return true;
		p = strchr(p, ',');
	}
	return false;
}

/* The Engine.IO handshake, in engine.io's order of checks, then the WebSocket's. */
static void
handshake(struct sio *s, struct http_req *req)
{
	struct http_params *q = http_params_parse(req);
	const char *transport, *eio, *key, *version, *upgrade;
	char accept[29];
	struct http_upgraded u;

	if (q == NULL) {
		eio_error(req, EIO_BAD_REQUEST);
		return;
	}
	transport = http_params_get(q, "transport");
	eio = http_params_get(q, "EIO");
	/* Long polling would need every request of a session on one process. */
	if (transport == NULL || strcmp(transport, "websocket") != 0)
		eio_error(req, EIO_TRANSPORT_UNKNOWN);
	else if (http_params_get(q, "sid") != NULL)
		eio_error(req, EIO_UNKNOWN_SID);   /* sessions do not outlive their socket */
	else if (http_req_method(req) != HTTP_M_GET)
		eio_error(req, EIO_BAD_HANDSHAKE_METHOD);
	else if (eio == NULL || strcmp(eio, "4") != 0)
		eio_error(req, EIO_UNSUPPORTED_PROTOCOL_VERSION);
	else if ((upgrade = http_req_header(req, "Upgrade")) == NULL ||
	    !has_token(upgrade, "websocket") ||
	    !has_token(http_req_header(req, "Connection"), "upgrade") ||
	    strcmp(http_req_version(req), "HTTP/1.1") != 0 ||
	    sio_ws_accept(http_req_header(req, "Sec-WebSocket-Key"), accept) == -1)
		eio_error(req, EIO_BAD_REQUEST);
	else if ((version = http_req_header(req, "Sec-WebSocket-Version")) == NULL ||
	    strcmp(version, "13") != 0) {
		http_req_add_header(req, "Sec-WebSocket-Version", "13");
		eio_error(req, EIO_BAD_REQUEST);
	} else if (s->draining || s->w->draining) {
		s->fig.refused++;
		http_error(req, 503, "shutting_down", "this worker is stopping: connect again");
	} else if ((long long)s->nconns >= s->conf->max_connections) {
		/* Refused, not accepted and dropped: the client backs off, and may land on
		 * another worker. */
		s->fig.refused++;
		http_error(req, 503, "overloaded", "this worker holds max_connections (%lld) "
		    "sockets", s->conf->max_connections);
	} else {
		(void)key;
		http_req_add_header(req, "Upgrade", "websocket");
		http_req_add_header(req, "Sec-WebSocket-Accept", accept);
		if (http_upgrade(req, &u) == 0)
			sio_conn_open(s, u.fd, u.in, u.out);
	}
	http_params_free(q);
}

static void
sio_handle(void *state, struct http_req *req, const char *subpath)
{
	struct sio *s = state;

	if (strcmp(subpath, "/emit") == 0) {
		if (http_req_method(req) != HTTP_M_POST) {
			http_req_add_header(req, "Allow", "POST");
			http_error(req, 405, "method_not_allowed", "this path takes POST");
			return;
		}
		sio_emit(s, req);
	} else if (subpath[0] == '\0' || strcmp(subpath, "/") == 0)
		handshake(s, req);
	else
		http_error(req, 404, "not_found", "no such path under the socketio route");
}

/* ---- the worker's state ---- */

static void
sio_free(struct sio *s)
{
	struct sio_conn *c;

	sio_emit_drop_all(s);
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		sio_conn_free(c);
	for (size_t i = 0; i < SIO_MAX_NSP; i++)
		sio_nsp_free(s->nsps[i]);
	if (s->redis != NULL)
		sio_redis_free(s->redis);
	if (s->flush_ev != NULL)
		event_free(s->flush_ev);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	free(s);
}

static void *
sio_init(const struct route_conf *route, const struct worker_info *w)
{
	struct sio *s = calloc(1, sizeof(*s));
	struct timeval tv;

	if (s == NULL)
		return NULL;
	s->route = route;
	s->conf = route->service_conf;
	s->w = w;
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->dirty);
	s->emits_tail = &s->emits_head;
	snprintf(s->topic, sizeof(s->topic), "socketio %s", route->prefix);
	for (size_t i = 0; i < s->conf->nnsp; i++)
		if ((s->nsps[i] = sio_nsp_new(s->conf->namespaces[i], (int)i)) == NULL)
			goto fail;
	/* Thousands of connections share three durations: common timeouts are O(1). */
	tv = ms_tv(s->conf->ping_interval_ms);
	s->tv_ping = event_base_init_common_timeout(w->base, &tv);
	tv = ms_tv(s->conf->ping_timeout_ms);
	s->tv_pong = event_base_init_common_timeout(w->base, &tv);
	tv = ms_tv(s->conf->connect_timeout_ms);
	s->tv_connect = event_base_init_common_timeout(w->base, &tv);
	if (s->tv_ping == NULL || s->tv_pong == NULL || s->tv_connect == NULL ||
	    (s->flush_ev = event_new(w->base, -1, 0, sio_flush, s)) == NULL)
		goto fail;
	if (s->conf->redis != NULL &&
	    (s->redis = sio_redis_new(w->base, &s->conf->redis_url, s->conf->redis_key,
		w->host_uid, (const char *const *)s->conf->namespaces, s->conf->nnsp,
		sio_redis_recv, s)) == NULL)
		goto fail;
	return s;
fail:
	log_error("route %s: socketio: out of memory", route->prefix);
	sio_free(s);
	return NULL;
}

/* ---- the drain: 1001 for everyone, spread out so they do not all come back at once ---- */

static void
drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sio *s = arg;
	struct timeval tv = ms_tv(DRAIN_TICK_MS);
	uint64_t elapsed = now_ms() - s->drain_started_ms;
	size_t due, n;

	(void)fd;
	(void)what;
	/* As many as the time gone says, evenly over the spread. */
	due = elapsed >= s->drain_spread_ms ? s->drain_total :
	    (size_t)((s->drain_total * elapsed + s->drain_spread_ms - 1) / s->drain_spread_ms);
	if (due > s->drain_asked) {
		/* Those that left by themselves meanwhile count as asked. */
		n = sio_conns_close(s, due - s->drain_asked, 1001, "server going away");
		s->fig.closed_drain += n;
		s->drain_asked = due;
	}
	if (s->drain_asked < s->drain_total)
		event_add(s->drain_ev, &tv);
}

void
sio_conn_gone(struct sio *s)
{
	if (s->draining && s->nconns == 0 && s->drained != NULL) {
		void (*done)(void *) = s->drained;
		s->drained = NULL;
		done(s->drained_arg);
	}
}

static void
sio_drain(void *state, void (*done)(void *arg), void *arg)
{
	struct sio *s = state;
	long long spread = s->conf->reconnect_spread_ms;
	/* Within the stop's deadline, with a second left for the last closes. */
	long long room = s->w->shutdown_timeout_ms - 1000;

	s->draining = true;
	s->drained = done;
	s->drained_arg = arg;
	if (s->nconns == 0) {
		sio_conn_gone(s);
		return;
	}
	if (spread > room)
		spread = room > 0 ? room : 0;
	s->drain_total = s->nconns;
	s->drain_spread_ms = (uint64_t)spread;
	s->drain_started_ms = now_ms();
	s->drain_asked = 0;
	if (spread > 0 && (s->drain_ev = evtimer_new(s->w->base, drain_tick, s)) == NULL)
		s->drain_spread_ms = 0;          /* no timer: all at once, still closed */
	log_info("socketio %s: closing %zu connection(s) over %lld ms", s->route->prefix,
	    s->nconns, (long long)s->drain_spread_ms);
	drain_tick(-1, 0, s);
}

static void
sio_shutdown(void *state)
{
	sio_free(state);
}

/* ---- figures ---- */

static void
sio_stats(void *state, svc_emit emit, void *ctx)
{
	struct sio *s = state;
	struct sio_figures *f = &s->fig;
	uint64_t sockets = 0, rooms = 0;
	struct svc_figure fig;

	for (size_t i = 0; i < s->conf->nnsp; i++) {
		sockets += sio_nsp_sockets(s->nsps[i]);
		rooms += sio_nsp_rooms(s->nsps[i]);
	}
#define G(n, v) (fig = (struct svc_figure){ .name = n, .kind = SVC_GAUGE, .value = (v) }, \
	emit(ctx, &fig))
#define C(n, v) (fig = (struct svc_figure){ .name = n, .kind = SVC_COUNTER, .value = (v) }, \
	emit(ctx, &fig))
#define CL(n, l, lv, v) (fig = (struct svc_figure){ .name = n, .kind = SVC_COUNTER, \
	.label = l, .label_value = lv, .value = (v) }, emit(ctx, &fig))
	G("socketio_connections", s->nconns);
	G("socketio_sockets", sockets);
	G("socketio_rooms", rooms);
	C("socketio_connections_total", f->connections_total);
	C("socketio_refused_total", f->refused);
	C("socketio_frames_received_total", f->frames_in);
	C("socketio_deliveries_total", f->deliveries);
	C("socketio_emits_total", f->emits);
	CL("socketio_broadcasts_total", "origin", "local", f->bcast_local);
	CL("socketio_broadcasts_total", "origin", "bus", f->bcast_bus);
	CL("socketio_broadcasts_total", "origin", "redis", f->bcast_redis);
	C("socketio_bus_dropped_total", f->bus_dropped);
	CL("socketio_disconnects_total", "reason", "ping_timeout", f->closed_ping);
	CL("socketio_disconnects_total", "reason", "send_queue", f->closed_queue);
	CL("socketio_disconnects_total", "reason", "protocol", f->closed_protocol);
	CL("socketio_disconnects_total", "reason", "connect_timeout", f->closed_connect);
	CL("socketio_disconnects_total", "reason", "drain", f->closed_drain);
	CL("socketio_disconnects_total", "reason", "client", f->closed_client);
	if (s->redis != NULL) {
		struct sio_redis_figures rf;
		sio_redis_figures(s->redis, &rf);
		G("socketio_redis_up", rf.connected);
		C("socketio_redis_published_total", rf.published);
		C("socketio_redis_received_total", rf.received);
		C("socketio_redis_dropped_total", rf.dropped);
	}
#undef G
#undef C
#undef CL
}

const struct service socketio_service = {
	.name = "socketio",
	.methods = HTTP_M_GET | HTTP_M_POST,
	.keys = sio_keys,
	.configure = sio_configure,
	.conf_free = sio_conf_free,
	.init = sio_init,
	.handle = sio_handle,
	.drain = sio_drain,
	.bus_recv = sio_bus_recv,
	.stats = sio_stats,
	.shutdown = sio_shutdown,
};
