/*
 * The metrics service: the whole cluster's figures in the Prometheus text
 * format 0.0.4, whichever worker takes the request.
 *
 *   GET {prefix}   text/plain; version=0.0.4
 *
 * It reads the shared figures (ipc/stats.h): counters summed over every
 * worker, those gone included, so that none ever goes down while the
 * master lives; gauges of the workers alive; per-slot gauges from the
 * master; and the figures services report (readmongo's queue and errors).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf/config.h"
#include "http/http.h"
#include "ipc/stats.h"
#include "svc/service.h"

/* clusterd_worker_restarts_total's reasons, in master/supervise.h's order. */
static const char *const reasons[STATS_RESTART_REASONS] = {
	"crash", "hung", "max_requests", "max_rss", "reload", "scale"
};

struct metrics {
	const char *prefix;
};

static void *
metrics_init(const struct route_conf *route, const struct worker_info *w)
{
	struct metrics *m = calloc(1, sizeof(*m));

	(void)w;
	if (m == NULL)
		return NULL;
	m->prefix = route->prefix;
	return m;
}

static const char *
service_name(int s)
{
	const char *name = service_name_at((size_t)s);

	return name != NULL && s < STATS_SERVICES - 1 ? name : "none";
}

static void
family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the format wants: \\, \" and \n. */
static void
label_value(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static int
service_used(const struct stats_view *v, int s)
{
	return v->duration_count[s] > 0;
}

static void
render_requests(struct evbuffer *b, struct stats_view *v)
{
	family(b, "clusterd_requests_total", "counter",
	    "Requests answered, by service and status class.");
	for (int s = 0; s < STATS_SERVICES; s++)
		for (int c = 0; c < STATS_CODES; c++)
			if (v->requests[s][c] > 0)
				evbuffer_add_printf(b, "clusterd_requests_total{service=\"%s\","
				    "code=\"%dxx\"} %llu\n", service_name(s), c + 1,
				    (unsigned long long)v->requests[s][c]);
	family(b, "clusterd_request_duration_seconds", "histogram",
	    "Time from the start of a request to the end of its answer.");
	for (int s = 0; s < STATS_SERVICES; s++) {
		uint64_t cum = 0;
		if (!service_used(v, s))
			continue;
		for (int k = 0; k < STATS_BUCKETS; k++) {
			cum += v->bucket[s][k];
			evbuffer_add_printf(b, "clusterd_request_duration_seconds_bucket{service=\"%s\","
			    "le=\"%g\"} %llu\n", service_name(s), (double)stats_bucket_us[k] / 1e6,
			    (unsigned long long)cum);
		}
		/* Read without a lock while workers count: +Inf never below a bucket. */
		if (cum > v->duration_count[s])
			v->duration_count[s] = cum;
		evbuffer_add_printf(b, "clusterd_request_duration_seconds_bucket{service=\"%s\","
		    "le=\"+Inf\"} %llu\n", service_name(s), (unsigned long long)v->duration_count[s]);
		evbuffer_add_printf(b, "clusterd_request_duration_seconds_sum{service=\"%s\"} %.6f\n",
		    service_name(s), (double)v->duration_sum_us[s] / 1e6);
		evbuffer_add_printf(b, "clusterd_request_duration_seconds_count{service=\"%s\"} %llu\n",
		    service_name(s), (unsigned long long)v->duration_count[s]);
	}
	family(b, "clusterd_response_bytes_total", "counter",
	    "Bytes of response bodies sent, by service.");
	for (int s = 0; s < STATS_SERVICES; s++)
		if (service_used(v, s))
			evbuffer_add_printf(b, "clusterd_response_bytes_total{service=\"%s\"} %llu\n",
			    service_name(s), (unsigned long long)v->response_bytes[s]);
}

static void
render_cluster(struct evbuffer *b, const struct stats_view *v)
{
	family(b, "clusterd_connections", "gauge", "Open client connections, in every worker.");
	evbuffer_add_printf(b, "clusterd_connections %llu\n", (unsigned long long)v->connections);
	family(b, "clusterd_requests_in_flight", "gauge", "Requests held by services now.");
	evbuffer_add_printf(b, "clusterd_requests_in_flight %llu\n",
	    (unsigned long long)v->in_flight);
	family(b, "clusterd_workers", "gauge", "Worker processes alive.");
	evbuffer_add_printf(b, "clusterd_workers %llu\n", (unsigned long long)v->workers);
	family(b, "clusterd_worker_restarts_total", "counter",
	    "Workers replaced, by reason.");
	for (int r = 0; r < STATS_RESTART_REASONS; r++)
		evbuffer_add_printf(b, "clusterd_worker_restarts_total{reason=\"%s\"} %llu\n",
		    reasons[r], (unsigned long long)v->restarts[r]);
	family(b, "clusterd_reloads_total", "counter", "Reloads of the configuration, by result.");
	evbuffer_add_printf(b, "clusterd_reloads_total{result=\"ok\"} %llu\n"
	    "clusterd_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)v->reloads_ok, (unsigned long long)v->reloads_failed);
	family(b, "clusterd_worker_rss_bytes", "gauge",
	    "Resident set of the worker of each slot, at the master's last heartbeat.");
	for (int s = 0; s < STATS_SLOTS; s++)
		if (v->slots[s].start_time != 0)
			evbuffer_add_printf(b, "clusterd_worker_rss_bytes{slot=\"%d\"} %llu\n", s,
			    (unsigned long long)v->slots[s].rss_bytes);
	family(b, "clusterd_worker_start_time_seconds", "gauge",
	    "Start of the worker of each slot, in seconds since the epoch.");
	for (int s = 0; s < STATS_SLOTS; s++)
		if (v->slots[s].start_time != 0)
			evbuffer_add_printf(b, "clusterd_worker_start_time_seconds{slot=\"%d\"} %llu\n",
			    s, (unsigned long long)v->slots[s].start_time);
}

/* The services' own figures: one family per name, in order of first sight. */
static void
render_figures(struct evbuffer *b, const struct stats_view *v)
{
	for (size_t i = 0; i < v->nfig; i++) {
		const struct stats_figure_view *f = &v->fig[i];
		char name[64];
		size_t j;

		for (j = 0; j < i && strcmp(v->fig[j].name, f->name) != 0; j++)
			;
		if (j < i)
			continue;        /* its family is out already */
		snprintf(name, sizeof(name), "clusterd_%s", f->name);
		family(b, name, f->counter ? "counter" : "gauge", "Reported by the service.");
		for (j = i; j < v->nfig; j++) {
			const struct stats_figure_view *g = &v->fig[j];
			if (strcmp(g->name, f->name) != 0)
				continue;
			evbuffer_add_printf(b, "%s{route=\"", name);
			label_value(b, g->route);
			if (g->label[0] != '\0') {
				evbuffer_add_printf(b, "\",%s=\"", g->label);
				label_value(b, g->label_value);
			}
			evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)g->value);
		}
	}
}

static void
metrics_handle(void *state, struct http_req *req, const char *subpath)
{
	struct metrics *m = state;
	struct stats_view *v;
	struct evbuffer *b;

	if (subpath[0] != '\0' && strcmp(subpath, "/") != 0) {
		http_error(req, 404, "not_found", "the metrics service answers %s only", m->prefix);
		return;
	}
	if (stats == NULL || (v = malloc(sizeof(*v))) == NULL) {
		http_error(req, 503, "overloaded", "no figures to read");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		free(v);
		http_error(req, 503, "overloaded", "out of memory");
		return;
	}
	stats_read(v);
	family(b, "clusterd_build_info", "gauge", "The version of clusterd.");
	evbuffer_add_printf(b, "clusterd_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	render_requests(b, v);
	render_cluster(b, v);
	render_figures(b, v);
	http_reply_type(req, 200, "text/plain; version=0.0.4; charset=utf-8",
	    (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
	free(v);
}

static void
metrics_shutdown(void *state)
{
	free(state);
}

const struct service metrics_service = {
	.name = "metrics",
	.methods = HTTP_M_GET | HTTP_M_HEAD,
	.init = metrics_init,
	.handle = metrics_handle,
	.shutdown = metrics_shutdown,
};
