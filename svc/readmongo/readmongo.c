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
 * the cursor into batches of about BATCH_BYTES and hands each to the loop,
 * then waits until the loop has passed it to the connection and the
 * connection has written all but STREAM_LOW_WATER bytes of it. So a worker holds
 * a few batches per stream, whatever the size of the result, and a client
 * that reads slowly slows its own cursor down, nothing else.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <mongoc/mongoc.h>

#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "conf/config.h"
#include "http/http.h"
#include "worker/pool.h"
#include "svc/service.h"

#define BATCH_BYTES  (64 * 1024)    /* JSON handed to the loop at a time */
#define STREAM_LOW_WATER (256 * 1024)  /* unwritten bytes a stream may leave queued */
#define SERVER_BATCH 1000           /* documents per server batch: bounds its memory */
#define NS_MAX       255            /* "database.collection", as mongod limits it */
#define ID_MAX       1024

static const char *const readmongo_keys[] = {
	"uri", "database", "collections", "default_limit", "max_limit",
	"max_time_ms", "threads", "queue_limit", NULL
};

/* Operators that run JavaScript on the server, refused at any depth. */
static const char *const js_operators[] = { "$where", "$function", "$accumulator", NULL };

struct rm_conf {
	char *uri;
	char *database;
	char **collections;          /* NULL-terminated; "*" is kept out of it */
	bool all_collections;
	long long default_limit, max_limit, max_time_ms, threads, queue_limit;
};

struct readmongo {
	const struct rm_conf *conf;
	const char *prefix;
	struct event_base *base;
	mongoc_client_pool_t *clients;
	struct pool *pool;
	TAILQ_HEAD(, rm_job) jobs;   /* submitted and not yet answered */
	int stopping;

	/*
	 * The last time a query found MongoDB unreachable, and why. A query
	 * that was already queued then fails at once instead of waiting out
	 * a server selection of its own: with the threads busy waiting for a
	 * server that is gone, the queue would otherwise answer later and
	 * later. Queries that arrive after it try for themselves.
	 */
	pthread_mutex_t down_mu;
	int64_t down_at;             /* bson_get_monotonic_time() */
	char down_why[BSON_ERROR_BUFFER_SIZE];
};

enum rm_op { OP_LIST, OP_GET, OP_COUNT };

struct rm_error {
	int status;                  /* 0: no error */
	const char *code;
	char message[640];
};

/*
 * One request's query. The loop builds it and owns it; the thread that
 * runs it shares the fields under mu, and owns out and err until it posts
 * end_msg, after which it never touches the job again.
 */
struct rm_job {
	struct pool_job job;
	struct pool_msg batch_msg;   /* batch is ready */
	struct pool_msg end_msg;     /* the thread is done: out and err are final */
	struct readmongo *rm;
	struct http_req *req;
	enum rm_op op;
	char coll[NS_MAX + 1];
	bson_t *filter, *opts;
	int64_t queued_at;           /* bson_get_monotonic_time() */
	TAILQ_ENTRY(rm_job) link;

	/* The loop's. */
	int started;                 /* the stream's status line is out */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct evbuffer *batch;      /* handed to the loop */
	int unacked;                 /* batch not yet written out */
	int cancel;                  /* the loop wants the thread to stop */

	struct evbuffer *out;        /* the (rest of the) body */
	struct rm_error err;
};

/* ---- configuration (runs in the master) ---- */

static bool
valid_database(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 && strpbrk(s, "/\\. \"$") == NULL;
}

/* MongoDB's rules for a collection name, and the namespace length. */
static bool
valid_collection(const char *db, const char *s, size_t n)
{
	return n > 0 && strlen(db) + 1 + n <= NS_MAX && memchr(s, '\0', n) == NULL &&
	    memchr(s, '$', n) == NULL && s[0] != '.' &&
	    !(n >= 7 && memcmp(s, "system.", 7) == 0);
}

static void
rm_conf_free(void *p)
{
	struct rm_conf *c = p;

	if (c == NULL)
		return;
	for (size_t i = 0; c->collections != NULL && c->collections[i] != NULL; i++)
		free(c->collections[i]);
	free(c->collections);
	free(c->uri);
	free(c->database);
	free(c);
}

static int
check_uri(const char *s, const char *path, char *err, size_t errlen)
{
	bson_error_t error;
	mongoc_uri_t *uri;

	/* Parsing only: no client, thread or socket exists in the master. */
	if ((uri = mongoc_uri_new_with_error(s, &error)) == NULL) {
		snprintf(err, errlen, "%s.uri: %s", path, error.message);
		return -1;
	}
	mongoc_uri_destroy(uri);
	return 0;
}

static int
get_collections(json_object *route, const char *path, struct rm_conf *c,
    char *err, size_t errlen)
{
	json_object *v, *item;
	const char *name;
	size_t n, k = 0;

	if (!json_object_object_get_ex(route, "collections", &v)) {
		snprintf(err, errlen, "%s.collections: required key is missing", path);
		return -1;
	}
	if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0) {
		snprintf(err, errlen, "%s.collections: expected a non-empty array of "
		    "collection names (\"*\" allows all)", path);
		return -1;
	}
	if ((c->collections = calloc(n + 1, sizeof(char *))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		item = json_object_array_get_idx(v, i);
		if (!json_object_is_type(item, json_type_string)) {
			snprintf(err, errlen, "%s.collections[%zu]: expected a string, got %s",
			    path, i, json_type_to_name(json_object_get_type(item)));
			return -1;
		}
		name = json_object_get_string(item);
		if (strcmp(name, "*") == 0) {
			c->all_collections = true;
			continue;
		}
		if (!valid_collection(c->database, name, strlen(name))) {
			snprintf(err, errlen, "%s.collections[%zu]: \"%s\" is not a valid "
			    "collection name", path, i, name);
			return -1;
		}
		if ((c->collections[k++] = strdup(name)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int
get_limits(json_object *r, const char *path, struct rm_conf *c, char *err, size_t errlen)
{
	if (conf_get_int(r, path, "max_limit", 1, 1000000000, 1000, &c->max_limit,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "default_limit", 1, 1000000000, 100, &c->default_limit,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "max_time_ms", 1, 3600000, 2000, &c->max_time_ms,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "threads", 1, 64, 4, &c->threads, err, errlen) == -1 ||
	    conf_get_int(r, path, "queue_limit", 1, 1000000, 1024, &c->queue_limit,
		err, errlen) == -1)
		return -1;
	if (c->default_limit > c->max_limit) {
		snprintf(err, errlen, "%s.default_limit: %lld is over max_limit (%lld)",
		    path, c->default_limit, c->max_limit);
		return -1;
	}
	return 0;
}

static int
rm_configure(json_object *route, const char *path, void **conf, char *err, size_t errlen)
{
	struct rm_conf *c = calloc(1, sizeof(*c));

	*conf = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (conf_get_string(route, path, "uri", true, NULL, &c->uri, err, errlen) == -1 ||
	    check_uri(c->uri, path, err, errlen) == -1 ||
	    conf_get_string(route, path, "database", true, NULL, &c->database,
		err, errlen) == -1)
		goto fail;
	if (!valid_database(c->database)) {
		snprintf(err, errlen, "%s.database: \"%s\" is not a valid database name",
		    path, c->database);
		goto fail;
	}
	if (get_collections(route, path, c, err, errlen) == -1 ||
	    get_limits(route, path, c, err, errlen) == -1)
		goto fail;
	*conf = c;
	return 0;
fail:
	rm_conf_free(c);
	return -1;
}

/* ---- the driver, per worker ---- */

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

static mongoc_client_pool_t *
clients_new(const char *text, const char *prefix)
{
	mongoc_client_pool_t *clients = NULL;
	bson_error_t error;
	mongoc_uri_t *uri;

	if ((uri = mongoc_uri_new_with_error(text, &error)) == NULL ||
	    (clients = mongoc_client_pool_new_with_error(uri, &error)) == NULL)
		log_error("route %s: %s", prefix, error.message);
	else
		mongoc_client_pool_set_error_api(clients, MONGOC_ERROR_API_VERSION_2);
	mongoc_uri_destroy(uri);
	return clients;
}

/* A pool thread's context: its own client, for as long as the thread lives. */
static void *
thread_client(void *clients)
{
	return mongoc_client_pool_pop(clients);
}

static void
thread_client_done(void *clients, void *client)
{
	mongoc_client_pool_push(clients, client);
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
	if ((rm->clients = clients_new(c->uri, route->prefix)) == NULL ||
	    (rm->pool = pool_new(w->base, (int)c->threads, (size_t)c->queue_limit,
		thread_client, thread_client_done, rm->clients)) == NULL) {
		log_error("route %s: cannot start the MongoDB threads", route->prefix);
		if (rm->clients != NULL)
			mongoc_client_pool_destroy(rm->clients);
		pthread_mutex_destroy(&rm->down_mu);
		free(rm);
		return NULL;
	}
	return rm;
}

/* ---- errors ---- */

static void
set_error(struct rm_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
set_error(struct rm_error *e, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/*
 * The driver's error as an HTTP answer: no server to talk to is 503, the
 * server's time limit 504, anything else the server or driver says 502.
 */
static void
driver_error(struct readmongo *rm, struct rm_error *e, const bson_error_t *error)
{
	if (error->domain == MONGOC_ERROR_SERVER_SELECTION ||
	    error->domain == MONGOC_ERROR_STREAM) {
		set_error(e, 503, "mongo_unavailable", "MongoDB is unreachable: %s",
		    error->message);
		/* A whole selection timeout without a server; not one lost connection. */
		if (error->domain != MONGOC_ERROR_SERVER_SELECTION)
			return;
		pthread_mutex_lock(&rm->down_mu);
		rm->down_at = bson_get_monotonic_time();
		snprintf(rm->down_why, sizeof(rm->down_why), "%s", error->message);
		pthread_mutex_unlock(&rm->down_mu);
	} else if ((error->domain == MONGOC_ERROR_SERVER || error->domain == MONGOC_ERROR_QUERY) &&
	    (error->code == 50 || error->code == 262))
		set_error(e, 504, "timeout", "the query ran past max_time_ms (%lld ms): %s",
		    rm->conf->max_time_ms, error->message);
	else
		set_error(e, 502, "mongo_error", "MongoDB answered with an error: %s (code %u)",
		    error->message, error->code);
}

/* ---- on a pool thread ---- */

static void
job_wait_acked(struct rm_job *j)
{
	pthread_mutex_lock(&j->mu);
	while (j->unacked && !j->cancel)
		pthread_cond_wait(&j->cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
}

/*
 * Hands *buf to the loop once the previous batch is out, and gives the
 * thread a new buffer. -1 when the loop wants the job stopped.
 */
static int
hand_over(struct rm_job *j, struct evbuffer **buf)
{
	struct evbuffer *next = evbuffer_new();
	int cancel;

	if (next == NULL) {
		set_error(&j->err, 503, "overloaded", "out of memory");
		return -1;
	}
	pthread_mutex_lock(&j->mu);
	while (j->unacked && !j->cancel)
		pthread_cond_wait(&j->cv, &j->mu);
	if (!(cancel = j->cancel)) {
		j->batch = *buf;
		j->unacked = 1;
	}
	pthread_mutex_unlock(&j->mu);
	if (cancel) {
		evbuffer_free(next);
		return -1;
	}
	*buf = next;
	pool_post(j->rm->pool, &j->batch_msg);
	return 0;
}

static int
append_doc(struct evbuffer *buf, const bson_t *doc, bool comma)
{
	size_t len;
	char *json = bson_as_relaxed_extended_json(doc, &len);

	if (json == NULL)
		return -1;
	if (comma)
		evbuffer_add(buf, ",", 1);
	evbuffer_add(buf, json, len);
	bson_free(json);
	return 0;
}

static void
run_list(struct rm_job *j, mongoc_collection_t *coll)
{
	mongoc_cursor_t *cursor;
	const bson_t *doc;
	bson_error_t error;
	bool first = true;

	cursor = mongoc_collection_find_with_opts(coll, j->filter, j->opts, NULL);
	evbuffer_add(j->out, "{\"documents\":[", 14);
	while (mongoc_cursor_next(cursor, &doc)) {
		if (append_doc(j->out, doc, !first) == -1) {
			set_error(&j->err, 502, "mongo_error",
			    "a document could not be converted to JSON");
			break;
		}
		first = false;
		if (evbuffer_get_length(j->out) >= BATCH_BYTES && hand_over(j, &j->out) == -1)
			break;
	}
	if (j->err.status == 0 && mongoc_cursor_error(cursor, &error))
		driver_error(j->rm, &j->err, &error);
	mongoc_cursor_destroy(cursor);
	/* The tail follows the last batch out, so that a stream holds one at a time. */
	job_wait_acked(j);
}

static void
run_get(struct rm_job *j, mongoc_collection_t *coll)
{
	mongoc_cursor_t *cursor;
	const bson_t *doc;
	bson_error_t error;

	cursor = mongoc_collection_find_with_opts(coll, j->filter, j->opts, NULL);
	if (mongoc_cursor_next(cursor, &doc)) {
		if (append_doc(j->out, doc, false) == -1)
			set_error(&j->err, 502, "mongo_error",
			    "the document could not be converted to JSON");
	} else if (mongoc_cursor_error(cursor, &error)) {
		driver_error(j->rm, &j->err, &error);
	} else {
		/* The loop words the 404: it knows how the id was written. */
		set_error(&j->err, 404, "not_found", "%s", "");
	}
	mongoc_cursor_destroy(cursor);
}

static void
run_count(struct rm_job *j, mongoc_collection_t *coll)
{
	bson_error_t error;
	int64_t n;

	n = mongoc_collection_count_documents(coll, j->filter, j->opts, NULL, NULL, &error);
	if (n < 0)
		driver_error(j->rm, &j->err, &error);
	else
		evbuffer_add_printf(j->out, "{\"count\":%lld}", (long long)n);
}

/* Did MongoDB turn out unreachable while j waited in the queue? */
static bool
found_down(struct rm_job *j)
{
	struct readmongo *rm = j->rm;
	bool down;

	pthread_mutex_lock(&rm->down_mu);
	if ((down = rm->down_at > j->queued_at))
		set_error(&j->err, 503, "mongo_unavailable", "MongoDB is unreachable: %s",
		    rm->down_why);
	pthread_mutex_unlock(&rm->down_mu);
	return down;
}

static void
run_query(struct rm_job *j, mongoc_client_t *client)
{
	mongoc_collection_t *coll;

	coll = mongoc_client_get_collection(client, j->rm->conf->database, j->coll);
	if (j->op == OP_LIST)
		run_list(j, coll);
	else if (j->op == OP_GET)
		run_get(j, coll);
	else
		run_count(j, coll);
	mongoc_collection_destroy(coll);
}

static void
job_run(struct pool_job *pj, void *client)
{
	struct rm_job *j = container_of(pj, struct rm_job, job);

	if (!found_down(j))
		run_query(j, client);
	/* The last touch: from here on the loop may free the job. */
	pool_post(j->rm->pool, &j->end_msg);
}

/* On the loop, as the pool stops: the job never ran. */
static void
job_cancel(struct pool_job *pj)
{
	struct rm_job *j = container_of(pj, struct rm_job, job);

	set_error(&j->err, 503, "shutting_down", "the server is shutting down");
	pool_post(j->rm->pool, &j->end_msg);
}

/* ---- on the loop ---- */

static void
job_free(struct rm_job *j)
{
	if (j->batch != NULL)
		evbuffer_free(j->batch);
	if (j->out != NULL)
		evbuffer_free(j->out);
	if (j->filter != NULL)
		bson_destroy(j->filter);
	if (j->opts != NULL)
		bson_destroy(j->opts);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

/* Lets the thread go on with the next batch (or stop, if cancel). */
static void
job_ack(struct rm_job *j, int cancel)
{
	pthread_mutex_lock(&j->mu);
	j->unacked = 0;
	if (cancel)
		j->cancel = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* The connection has written most of the last batch, or the client left. */
static void
drained(void *arg)
{
	struct rm_job *j = arg;

	job_ack(j, http_req_gone(j->req));
}

static void
deliver_batch(struct pool_msg *m)
{
	struct rm_job *j = container_of(m, struct rm_job, batch_msg);
	struct evbuffer *buf;

	pthread_mutex_lock(&j->mu);
	buf = j->batch;
	j->batch = NULL;
	pthread_mutex_unlock(&j->mu);
	if (!j->started && !http_req_gone(j->req)) {
		http_stream_start(j->req, 200);
		j->started = 1;
	}
	if (j->started)
		http_stream_chunk(j->req, buf);
	evbuffer_free(buf);
	/* Back-pressure: the thread fetches the next batch once this one is out. */
	http_stream_on_drain(j->req, STREAM_LOW_WATER, drained, j);
}

static void
reply_error(struct rm_job *j)
{
	char id[25];
	bson_iter_t it;

	if (j->err.status != 404) {
		http_error(j->req, j->err.status, j->err.code, "%s", j->err.message);
		return;
	}
	/* The filter of a get is {_id: ...}: show it the way the user wrote it. */
	if (bson_iter_init_find(&it, j->filter, "_id") && BSON_ITER_HOLDS_OID(&it)) {
		bson_oid_to_string(bson_iter_oid(&it), id);
		http_error(j->req, 404, "not_found", "no document with _id ObjectId(\"%s\") in "
		    "collection \"%s\"", id, j->coll);
	} else {
		http_error(j->req, 404, "not_found", "no document with _id \"%s\" in "
		    "collection \"%s\"", bson_iter_init_find(&it, j->filter, "_id") ?
		    bson_iter_utf8(&it, NULL) : "", j->coll);
	}
}

/* A list's closing: the end of the array, and the error that cut it short. */
static void
close_list(struct rm_job *j)
{
	if (j->err.status == 0) {
		evbuffer_add(j->out, "]}", 2);
		return;
	}
	log_warn("route %s: a result stream was cut short: %s", j->rm->prefix, j->err.message);
	evbuffer_add_printf(j->out, "],\"error\":{\"status\":%d,\"code\":\"%s\",\"message\":",
	    j->err.status, j->err.code);
	json_quote(j->out, j->err.message);
	evbuffer_add(j->out, "}}", 2);
}

static void
deliver_end(struct pool_msg *m)
{
	struct rm_job *j = container_of(m, struct rm_job, end_msg);

	TAILQ_REMOVE(&j->rm->jobs, j, link);
	if (j->rm->stopping && !j->started) {
		http_drop(j->req);
	} else if (j->started) {
		close_list(j);
		http_stream_chunk(j->req, j->out);
		http_stream_end(j->req);
	} else if (j->err.status != 0) {
		reply_error(j);
	} else {
		if (j->op == OP_LIST)
			close_list(j);
		http_reply(j->req, 200, (const char *)evbuffer_pullup(j->out, -1),
		    evbuffer_get_length(j->out));
	}
	job_free(j);
}

static struct rm_job *
job_new(struct readmongo *rm, struct http_req *req, enum rm_op op, const char *coll)
{
	struct rm_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	if ((j->out = evbuffer_new()) == NULL) {
		job_free(j);
		return NULL;
	}
	j->job.run = job_run;
	j->job.cancel = job_cancel;
	j->batch_msg.deliver = deliver_batch;
	j->end_msg.deliver = deliver_end;
	j->rm = rm;
	j->req = req;
	j->op = op;
	snprintf(j->coll, sizeof(j->coll), "%s", coll);
	return j;
}

static void
submit(struct readmongo *rm, struct rm_job *j)
{
	j->queued_at = bson_get_monotonic_time();
	if (pool_submit(rm->pool, &j->job) == -1) {
		http_error(j->req, 503, "overloaded", "too many queries are waiting for "
		    "MongoDB (queue_limit %lld); try again later", rm->conf->queue_limit);
		job_free(j);
		return;
	}
	TAILQ_INSERT_TAIL(&rm->jobs, j, link);
}

/* ---- parsing and validation, on the loop ---- */

/* Returns the JavaScript operator found in the document at it, or NULL. */
static const char *
find_js(bson_iter_t *it)
{
	bson_iter_t child;
	const char *key, *found;

	while (bson_iter_next(it)) {
		key = bson_iter_key(it);
		for (size_t i = 0; js_operators[i] != NULL; i++)
			if (strcmp(key, js_operators[i]) == 0)
				return js_operators[i];
		if ((BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) &&
		    bson_iter_recurse(it, &child) && (found = find_js(&child)) != NULL)
			return found;
	}
	return NULL;
}

/*
 * Exactly one Extended JSON document, or NULL with error set:
 * bson_new_from_json would quietly drop whatever follows the first.
 */
static bson_t *
parse_json(const char *text, bson_error_t *error)
{
	bson_json_reader_t *reader = bson_json_data_reader_new(true, 0);
	bson_t *doc = bson_new(), extra = BSON_INITIALIZER;
	int first, second = 0;

	bson_json_data_reader_ingest(reader, (const uint8_t *)text, strlen(text));
	/* 1: a document, 0: the end of the text, -1: an error. */
	first = bson_json_reader_read(reader, doc, error);
	if (first == 0)
		bson_set_error(error, BSON_ERROR_JSON, 0, "Incomplete JSON");
	else if (first == 1 && (second = bson_json_reader_read(reader, &extra, error)) == 1)
		bson_set_error(error, BSON_ERROR_JSON, 0, "more than one JSON object");
	bson_destroy(&extra);
	bson_json_reader_destroy(reader);
	if (first != 1 || second != 0) {
		bson_destroy(doc);
		return NULL;
	}
	return doc;
}

/*
 * The Extended JSON object in query parameter name, or NULL (absent, or
 * invalid: then a 400 has been sent and *bad is set).
 */
static bson_t *
json_param(struct http_req *req, struct http_params *params, const char *name, int *bad)
{
	const char *text = http_params_get(params, name), *p;
	bson_error_t error;
	bson_iter_t it;
	const char *js;
	bson_t *doc;

	if (text == NULL)
		return NULL;
	for (p = text; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++)
		;
	if (*p != '{') {
		http_error(req, 400, "bad_request", "%s must be a JSON object, as in "
		    "%s={\"field\":1}", name, name);
		*bad = 1;
		return NULL;
	}
	if ((doc = parse_json(text, &error)) == NULL) {
		/* libbson says where, except when the text ends too soon. */
		if (strstr(error.message, "Incomplete JSON") == NULL)
			http_error(req, 400, "bad_request", "%s is not valid Extended JSON: %s",
			    name, error.message);
		else
			http_error(req, 400, "bad_request", "%s is not valid Extended JSON: the "
			    "text ends at position %zu, before the object is closed", name,
			    strlen(text));
		*bad = 1;
		return NULL;
	}
	if (bson_iter_init(&it, doc) && (js = find_js(&it)) != NULL) {
		http_error(req, 400, "bad_request", "%s uses %s, which runs JavaScript on "
		    "the server: not allowed here", name, js);
		bson_destroy(doc);
		*bad = 1;
		return NULL;
	}
	return doc;
}

/* A non-negative integer query parameter: 0, or -1 after a 400. */
static int
uint_param(struct http_req *req, struct http_params *params, const char *name,
    long long def, long long *out)
{
	const char *v = http_params_get(params, name);
	long long n;
	char *end;

	*out = def;
	if (v == NULL)
		return 0;
	/* Digits only: strtoll would take a sign, spaces and a 0x. */
	if (*v >= '0' && *v <= '9') {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno == 0 && *end == '\0') {
			*out = n;
			return 0;
		}
	}
	http_error(req, 400, "bad_request", "%s must be a non-negative integer, got \"%s\"",
	    name, v);
	return -1;
}

static int
limit_params(struct readmongo *rm, struct http_req *req, struct http_params *params,
    long long *limit, long long *skip)
{
	if (uint_param(req, params, "limit", rm->conf->default_limit, limit) == -1 ||
	    uint_param(req, params, "skip", 0, skip) == -1)
		return -1;
	if (*limit > rm->conf->max_limit) {
		http_error(req, 400, "bad_request", "limit %lld is over max_limit (%lld)",
		    *limit, rm->conf->max_limit);
		return -1;
	}
	return 0;
}

static bson_t *
find_opts(struct readmongo *rm, const bson_t *projection, const bson_t *sort,
    long long limit, long long skip)
{
	bson_t *opts = bson_new();

	if (projection != NULL)
		BSON_APPEND_DOCUMENT(opts, "projection", projection);
	if (sort != NULL)
		BSON_APPEND_DOCUMENT(opts, "sort", sort);
	BSON_APPEND_INT64(opts, "limit", limit);
	if (skip > 0)
		BSON_APPEND_INT64(opts, "skip", skip);
	BSON_APPEND_INT32(opts, "batchSize", limit < SERVER_BATCH ? (int32_t)limit : SERVER_BATCH);
	BSON_APPEND_INT64(opts, "maxTimeMS", rm->conf->max_time_ms);
	return opts;
}

static bson_t *
time_opts(struct readmongo *rm)
{
	bson_t *opts = bson_new();

	BSON_APPEND_INT64(opts, "maxTimeMS", rm->conf->max_time_ms);
	return opts;
}

static void
list(struct readmongo *rm, struct http_req *req, const char *coll,
    struct http_params *params)
{
	bson_t *filter = NULL, *projection = NULL, *sort = NULL;
	long long limit, skip;
	struct rm_job *j;
	int bad = 0;

	filter = json_param(req, params, "filter", &bad);
	if (!bad)
		projection = json_param(req, params, "projection", &bad);
	if (!bad)
		sort = json_param(req, params, "sort", &bad);
	if (bad || limit_params(rm, req, params, &limit, &skip) == -1)
		goto out;
	if (limit == 0) {
		/* To MongoDB 0 means no limit at all: here it means what it says. */
		http_reply(req, 200, "{\"documents\":[]}", 16);
		goto out;
	}
	if ((j = job_new(rm, req, OP_LIST, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		goto out;
	}
	j->filter = filter != NULL ? filter : bson_new();
	filter = NULL;
	j->opts = find_opts(rm, projection, sort, limit, skip);
	submit(rm, j);
out:
	if (filter != NULL)
		bson_destroy(filter);
	if (projection != NULL)
		bson_destroy(projection);
	if (sort != NULL)
		bson_destroy(sort);
}

static void
count(struct readmongo *rm, struct http_req *req, const char *coll,
    struct http_params *params)
{
	bson_t *filter;
	struct rm_job *j;
	int bad = 0;

	if ((filter = json_param(req, params, "filter", &bad)) == NULL && bad)
		return;
	if ((j = job_new(rm, req, OP_COUNT, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		if (filter != NULL)
			bson_destroy(filter);
		return;
	}
	j->filter = filter != NULL ? filter : bson_new();
	j->opts = time_opts(rm);
	submit(rm, j);
}

static void
get(struct readmongo *rm, struct http_req *req, const char *coll, const char *id)
{
	struct rm_job *j;
	bson_oid_t oid;

	if ((j = job_new(rm, req, OP_GET, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		return;
	}
	j->filter = bson_new();
	if (strlen(id) == 24 && bson_oid_is_valid(id, 24)) {
		bson_oid_init_from_string(&oid, id);
		BSON_APPEND_OID(j->filter, "_id", &oid);
	} else {
		BSON_APPEND_UTF8(j->filter, "_id", id);
	}
	j->opts = time_opts(rm);
	BSON_APPEND_INT64(j->opts, "limit", 1);
	BSON_APPEND_BOOL(j->opts, "singleBatch", true);
	submit(rm, j);
}

static bool
collection_allowed(const struct rm_conf *c, const char *name)
{
	if (c->all_collections)
		return true;
	for (size_t i = 0; c->collections[i] != NULL; i++)
		if (strcmp(c->collections[i], name) == 0)
			return true;
	return false;
}

/* Splits "/coll[/rest]" into the decoded collection and the raw rest; -1 after a 404. */
static int
parse_path(struct readmongo *rm, struct http_req *req, const char *subpath,
    char *coll, size_t len, const char **rest)
{
	const char *s = subpath[0] == '/' ? subpath + 1 : subpath;
	size_t n = strcspn(s, "/");

	*rest = s + n;
	if (n == 0) {
		http_error(req, 404, "not_found", "name a collection: %s/{collection}, "
		    "%s/{collection}/{id} or %s/{collection}/_count", rm->prefix, rm->prefix,
		    rm->prefix);
		return -1;
	}
	if (http_unescape(s, n, coll, len, 0) == -1 ||
	    !valid_collection(rm->conf->database, coll, strlen(coll))) {
		http_error(req, 404, "not_found", "\"%.*s\" is not a valid collection name",
		    (int)(n > 200 ? 200 : n), s);
		return -1;
	}
	if (!collection_allowed(rm->conf, coll)) {
		http_error(req, 404, "not_found", "collection \"%s\" is not served here", coll);
		return -1;
	}
	return 0;
}

static void
rm_handle(void *state, struct http_req *req, const char *subpath)
{
	struct readmongo *rm = state;
	char coll[NS_MAX + 1], id[ID_MAX + 1];
	struct http_params *params;
	const char *rest;

	if (parse_path(rm, req, subpath, coll, sizeof(coll), &rest) == -1)
		return;
	if (*rest == '/')
		rest++;
	if (strchr(rest, '/') != NULL) {
		http_error(req, 404, "not_found", "no such path: %s/{collection}/{id} is as "
		    "deep as it goes", rm->prefix);
		return;
	}
	if ((params = http_params_parse(req)) == NULL) {
		http_error(req, 400, "bad_request", "the query string is malformed");
		return;
	}
	if (*rest == '\0')
		list(rm, req, coll, params);
	else if (strcmp(rest, "_count") == 0)
		count(rm, req, coll, params);
	else if (http_unescape(rest, strlen(rest), id, sizeof(id), 0) == -1)
		http_error(req, 404, "not_found", "\"%.200s\" is not a valid id", rest);
	else
		get(rm, req, coll, id);
	http_params_free(params);
}

static void
rm_shutdown(void *state)
{
	struct readmongo *rm = state;
	struct rm_job *j;

	rm->stopping = 1;
	/* Running lists stop at their next batch; the pool answers the rest. */
	TAILQ_FOREACH(j, &rm->jobs, link)
		job_ack(j, 1);
	pool_free(rm->pool);
	mongoc_client_pool_destroy(rm->clients);
	pthread_mutex_destroy(&rm->down_mu);
	free(rm);
}

const struct service readmongo_service = {
	.name = "readmongo",
	.methods = HTTP_M_GET | HTTP_M_HEAD,
	.keys = readmongo_keys,
	.configure = rm_configure,
	.conf_free = rm_conf_free,
	.init = rm_init,
	.handle = rm_handle,
	.shutdown = rm_shutdown,
};
