/*
 * readmongo on a pool thread: a job's query run with the blocking driver,
 * a list serialized to JSON in batches that wait for the loop to pass them
 * on, and the driver's errors turned into HTTP answers. A job talks back to
 * the loop only through pool_post().
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "svc/readmongo/readmongo.h"

#define BATCH_BYTES  (64 * 1024)    /* JSON handed to the loop at a time */

void
rm_set_error(struct rm_error *e, int status, const char *code, const char *fmt, ...)
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
driver_error(struct rm_job *j, struct rm_error *e, const bson_error_t *error)
{
	struct readmongo *rm = j->rm;
	int64_t waited_ms = (bson_get_monotonic_time() - j->run_at) / 1000;

	/* The socket timeout, which max_time_ms sets unless the URI does: a stall. */
	if (error->domain == MONGOC_ERROR_STREAM &&
	    waited_ms >= rm->conf->max_time_ms + RM_SOCKET_MARGIN_MS / 2) {
		rm_set_error(e, 504, "timeout", "MongoDB did not answer within %lld ms "
		    "(max_time_ms and a margin): %s", (long long)waited_ms, error->message);
		return;
	}
	if (error->domain == MONGOC_ERROR_SERVER_SELECTION ||
	    error->domain == MONGOC_ERROR_STREAM) {
		rm_set_error(e, 503, "mongo_unavailable", "MongoDB is unreachable: %s",
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
		rm_set_error(e, 504, "timeout", "the query ran past max_time_ms (%lld ms): %s",
		    rm->conf->max_time_ms, error->message);
	else
		rm_set_error(e, 502, "mongo_error", "MongoDB answered with an error: %s (code %u)",
		    error->message, error->code);
}

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
		rm_set_error(&j->err, 503, "overloaded", "out of memory");
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
	/* run_at: when the operation that may fail began (driver_error()) */
	while ((j->run_at = bson_get_monotonic_time(), mongoc_cursor_next(cursor, &doc))) {
		if (append_doc(j->out, doc, !first) == -1) {
			rm_set_error(&j->err, 502, "mongo_error",
			    "a document could not be converted to JSON");
			break;
		}
		first = false;
		if (evbuffer_get_length(j->out) >= BATCH_BYTES && hand_over(j, &j->out) == -1)
			break;
	}
	if (j->err.status == 0 && mongoc_cursor_error(cursor, &error))
		driver_error(j, &j->err, &error);
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
			rm_set_error(&j->err, 502, "mongo_error",
			    "the document could not be converted to JSON");
	} else if (mongoc_cursor_error(cursor, &error)) {
		driver_error(j, &j->err, &error);
	} else {
		/* The loop words the 404: it knows how the id was written. */
		rm_set_error(&j->err, 404, "not_found", "%s", "");
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
		driver_error(j, &j->err, &error);
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
		rm_set_error(&j->err, 503, "mongo_unavailable", "MongoDB is unreachable: %s",
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

void
rm_job_run(struct pool_job *pj, void *client)
{
	struct rm_job *j = container_of(pj, struct rm_job, job);

	j->run_at = bson_get_monotonic_time();
	if (!found_down(j))
		run_query(j, client);
	/* The last touch: from here on the loop may free the job. */
	pool_post(j->rm->pool, &j->end_msg);
}

/* On the loop, as the pool stops: the job never ran. */
void
rm_job_cancel(struct pool_job *pj)
{
	struct rm_job *j = container_of(pj, struct rm_job, job);

	rm_set_error(&j->err, 503, "shutting_down", "the server is shutting down");
	pool_post(j->rm->pool, &j->end_msg);
}

