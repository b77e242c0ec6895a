/*
 * The readmongo service: read-only HTTP access to the collections of one
 * MongoDB database.
 *
 *   GET {prefix}/{coll}?filter=&projection=&sort=&limit=&skip=   {"documents":[...]}
 *   GET {prefix}/{coll}/{id}                                     the document, or 404
 *   GET {prefix}/{coll}/_count?filter=                           {"count":N}
 *
 * filter, projection and sort are Extended JSON; documents come out as
 * relaxed Extended JSON. HEAD works like GET; other methods get 405.
 *
 * The driver blocks, so the loop only parses and validates; the queries run
 * on the worker's thread pool (worker/pool.c). A list streams: its thread serializes
 * its find's answer, or its cursor, into batches of about BATCH_BYTES and hands each to the loop,
 * then waits until the loop has passed it to the connection and the
 * connection has written all but STREAM_LOW_WATER bytes of it. So a worker holds
 * a few batches per stream, whatever the size of the result, and a client
 * that reads slowly slows its own cursor down, nothing else.
 */
#include "config.h"

#include <stdlib.h>

#include "common/log.h"
#include "conf/config.h"
#include "http/http.h"
#include "svc/readmongo/readmongo.h"
#include "svc/service.h"

const char *const rm_err_names[RM_ERR_KINDS] = {
	"mongo_unavailable", "timeout", "mongo_error", "overloaded"
};

static pthread_once_t mongoc_once = PTHREAD_ONCE_INIT;

/* The driver's own messages go to our log; it logs from any thread. */
static void
log_from_mongoc(mongoc_log_level_t level, const char *domain, const char *message,
    void *arg)
{
	(void)arg;
	switch (level) {
	case MONGOC_LOG_LEVEL_ERROR:
	case MONGOC_LOG_LEVEL_CRITICAL:
		log_error("mongoc %s: %s", domain, message);
		break;
	case MONGOC_LOG_LEVEL_WARNING:
		log_warn("mongoc %s: %s", domain, message);
		break;
	case MONGOC_LOG_LEVEL_MESSAGE:
	case MONGOC_LOG_LEVEL_INFO:
		log_debug("mongoc %s: %s", domain, message);
		break;
	default:
		break;
	}
}

static void
mongoc_setup(void)
{
	mongoc_init();
	mongoc_log_set_handler(log_from_mongoc, NULL);
}

/*
 * maxTimeMS bounds a query on the server only: a server that stalls (or a
 * network that drops everything) would hold a pool thread for libmongoc's
 * socketTimeoutMS, 5 minutes by default. Unless the URI sets its own, the
 * socket timeout is max_time_ms and a margin for the server's answer that
 * it ran out of time; a query cut there is a 504 (driver_error()).
 */
static void
bound_socket_wait(mongoc_uri_t *uri, const struct rm_conf *c)
{
	if (mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		return;
	mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
	    (int32_t)(c->max_time_ms + RM_SOCKET_MARGIN_MS));
}

/* The pool of clients, and in *streams how many lists may hold an answer at once. */
static mongoc_client_pool_t *
clients_new(const struct rm_conf *c, const char *prefix, int *streams)
{
	mongoc_client_pool_t *clients = NULL;
	bson_error_t error;
	mongoc_uri_t *uri;

	if ((uri = mongoc_uri_new_with_error(c->uri, &error)) != NULL) {
		bound_socket_wait(uri, c);
		/* the clients a thread does not hold: what lists with a cursor may use */
		*streams = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_MAXPOOLSIZE, 100) -
		    (int)c->threads;
		if (*streams < 1)
			*streams = 1;
	}
	if (uri == NULL || (clients = mongoc_client_pool_new_with_error(uri, &error)) == NULL)
		log_error("route %s: %s", prefix, error.message);
	else
		mongoc_client_pool_set_error_api(clients, MONGOC_ERROR_API_VERSION_2);
	mongoc_uri_destroy(uri);
	return clients;
}

/* A pool thread's context (struct rm_thread): its own client, its collection handles, its JSON buffer. */
static void *
thread_client(void *clients)
{
	struct rm_thread *t = calloc(1, sizeof(*t));

	const mongoc_read_concern_t *rc;

	if (t == NULL)
		return NULL;
	t->client = mongoc_client_pool_pop(clients);
	t->retry_reads = mongoc_uri_get_option_as_bool(mongoc_client_get_uri(t->client),
	    MONGOC_URI_RETRYREADS, true);
	rc = mongoc_client_get_read_concern(t->client);
	if (!mongoc_read_concern_is_default(rc) && (t->cmd_opts = bson_new()) != NULL &&
	    !mongoc_read_concern_append((mongoc_read_concern_t *)rc, t->cmd_opts)) {
		bson_destroy(t->cmd_opts);
		t->cmd_opts = NULL;
	}
	return t;
}

static void
thread_client_done(void *clients, void *ctx)
{
	struct rm_thread *t = ctx;

	if (t == NULL)
		return;
	for (int i = 0; i < RM_THREAD_COLLECTIONS; i++)
		if (t->colls[i].coll != NULL)
			mongoc_collection_destroy(t->colls[i].coll);
	rm_json_buf_free(&t->json);
	if (t->cmd_opts != NULL)
		bson_destroy(t->cmd_opts);
	mongoc_client_pool_push(clients, t->client);
	free(t);
}

/*
 * The options of a get ({maxTimeMS, limit: 1, singleBatch: true}) and of a
 * count ({maxTimeMS}), made once: the driver only reads them.
 */
static int
fixed_opts(struct readmongo *rm)
{
	if ((rm->get_opts = bson_new()) == NULL || (rm->count_opts = bson_new()) == NULL)
		return -1;
	BSON_APPEND_INT64(rm->get_opts, "maxTimeMS", rm->conf->max_time_ms);
	BSON_APPEND_INT64(rm->get_opts, "limit", 1);
	BSON_APPEND_BOOL(rm->get_opts, "singleBatch", true);
	BSON_APPEND_INT64(rm->count_opts, "maxTimeMS", rm->conf->max_time_ms);
	return 0;
}

static void
fixed_opts_free(struct readmongo *rm)
{
	if (rm->get_opts != NULL)
		bson_destroy(rm->get_opts);
	if (rm->count_opts != NULL)
		bson_destroy(rm->count_opts);
}

static void *
rm_init(const struct route_conf *route, const struct worker_info *w)
{
	struct readmongo *rm = calloc(1, sizeof(*rm));
	const struct rm_conf *c = route->service_conf;

	if (rm == NULL)
		return NULL;
	/* After fork, once per process: nothing of the driver crosses a fork. */
	pthread_once(&mongoc_once, mongoc_setup);
	rm->conf = c;
	rm->prefix = route->prefix;
	rm->base = w->base;
	TAILQ_INIT(&rm->jobs);
	pthread_mutex_init(&rm->down_mu, NULL);
	pthread_mutex_init(&rm->gets_mu, NULL);
	STAILQ_INIT(&rm->gets_waiting);
	if (fixed_opts(rm) == -1 ||
	    (rm->gets_running = calloc((size_t)c->threads, sizeof(*rm->gets_running))) == NULL ||
	    (rm->clients = clients_new(c, route->prefix, &rm->replies_max)) == NULL ||
	    (rm->pool = pool_new(w->base, (int)c->threads, (size_t)c->queue_limit,
		thread_client, thread_client_done, rm->clients)) == NULL) {
		log_error("route %s: cannot start the MongoDB threads", route->prefix);
		if (rm->clients != NULL)
			mongoc_client_pool_destroy(rm->clients);
		fixed_opts_free(rm);
		free(rm->gets_running);
		pthread_mutex_destroy(&rm->gets_mu);
		pthread_mutex_destroy(&rm->down_mu);
		free(rm);
		return NULL;
	}
	return rm;
}

/* The route's figures: the queue of the pool, and the backend's errors. */
static void
rm_stats(void *state, svc_emit emit, void *ctx)
{
	struct readmongo *rm = state;
	struct svc_figure f = { .name = "readmongo_queue_depth", .kind = SVC_GAUGE,
	    .value = pool_depth(rm->pool) + rm_gets_waiting(rm) };

	emit(ctx, &f);
	f = (struct svc_figure){ .name = "readmongo_batched_gets_total", .kind = SVC_COUNTER,
	    .value = rm->batched_gets };
	emit(ctx, &f);
	f = (struct svc_figure){ .name = "readmongo_errors_total", .kind = SVC_COUNTER,
	    .label = "kind" };
	for (int k = 0; k < RM_ERR_KINDS; k++) {
		f.label_value = rm_err_names[k];
		f.value = rm->errors[k];
		emit(ctx, &f);
	}
}

static void
rm_shutdown(void *state)
{
	struct readmongo *rm = state;
	struct rm_job *j, *next;

	rm->stopping = 1;
	/* Lists between batches stop now, those under way at their next batch; the pool answers the rest. */
	for (j = TAILQ_FIRST(&rm->jobs); j != NULL; j = next) {
		next = TAILQ_NEXT(j, link);
		rm_job_unpark(j);
	}
	pool_free(rm->pool);
	mongoc_client_pool_destroy(rm->clients);
	fixed_opts_free(rm);
	free(rm->gets_running);
	pthread_mutex_destroy(&rm->gets_mu);
	pthread_mutex_destroy(&rm->down_mu);
	free(rm);
}

const struct service readmongo_service = {
	.name = "readmongo",
	.methods = HTTP_M_GET | HTTP_M_HEAD,
	.keys = rm_keys,
	.configure = rm_configure,
	.conf_free = rm_conf_free,
	.init = rm_init,
	.handle = rm_handle,
	.stats = rm_stats,
	.shutdown = rm_shutdown,
};

