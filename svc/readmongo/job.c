/*
 * readmongo on a pool thread: a job's query run with the blocking driver,
 * a list serialized to JSON a batch per step (its find's reply, or its
 * cursor, waits between steps in the job, not in a thread), and the
 * driver's errors turned into HTTP answers. A job talks back to the loop
 * only through pool_post().
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
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
void
rm_driver_error(struct rm_job *j, struct rm_error *e, const bson_error_t *error)
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

int
rm_append_doc(struct evbuffer *buf, const bson_t *doc, bool comma, struct rm_thread *t)
{
	if (comma)
		evbuffer_add(buf, ",", 1);
	return rm_json_doc(buf, doc, t != NULL ? &t->json : NULL);
}

/* A list's find's answer, freed, and its place among replies_kept. */
static void
drop_reply(struct rm_job *j)
{
	bson_destroy(&j->reply);
	j->replied = false;
	__atomic_sub_fetch(&j->rm->replies_kept, 1, __ATOMIC_RELAXED);
}

void
rm_cursor_close(struct rm_job *j)
{
	if (j->replied)
		drop_reply(j);
	if (j->cursor != NULL)
		mongoc_cursor_destroy(j->cursor);
	if (j->collection != NULL)
		mongoc_collection_destroy(j->collection);
	if (j->client != NULL)
		mongoc_client_pool_push(j->rm->clients, j->client);
	j->cursor = NULL;
	j->collection = NULL;
	j->client = NULL;
}

/*
 * Whether libmongoc's find cursor would retry a read that failed so
 * (_mongoc_read_error_get_type(), 1.23): a network error, an invalid reply,
 * or a server error saying the node is stepping down, shutting down or
 * cannot be reached.
 */
static bool
retryable_error(const bson_error_t *error)
{
	if (error->domain == MONGOC_ERROR_STREAM ||
	    (error->domain == MONGOC_ERROR_PROTOCOL &&
	     error->code == MONGOC_ERROR_PROTOCOL_INVALID_REPLY))
		return true;
	if (error->domain != MONGOC_ERROR_SERVER)
		return false;
	switch (error->code) {
	case 11600:          /* InterruptedAtShutdown */
	case 11602:          /* InterruptedDueToReplStateChange */
	case 10107:          /* NotWritablePrimary */
	case 13435:          /* NotPrimaryNoSecondaryOk */
	case 13436:          /* NotPrimaryOrSecondary */
	case 189:            /* PrimarySteppedDown */
	case 91:             /* ShutdownInProgress */
	case 7:              /* HostNotFound */
	case 6:              /* HostUnreachable */
	case 89:             /* NetworkTimeout */
	case 9001:           /* SocketException */
		return true;
	default:
		return strstr(error->message, "not master") != NULL ||
		    strstr(error->message, "node is recovering") != NULL;
	}
}

/*
 * A find command run so that a get or a list is read as
 * mongoc_collection_find_with_opts() and mongoc_cursor_next() would read
 * it, without the cursor, which selects
 * a server and copies its description twice (once to choose between find
 * and OP_QUERY): the same read preference (the collection's), read concern
 * (the collection's, in t->cmd_opts: a raw command does not add it) and
 * implicit session. The command is run raw so that the driver does not
 * retry it itself: its command helpers, after a failed retry's server
 * selection, report the first error, where the cursor reports the
 * selection's (a 503 that marks MongoDB down). The retry here is the
 * cursor's: once, after a retryable error, with a new server selection.
 * reply is always initialized.
 */
bool
rm_find(mongoc_collection_t *coll, const bson_t *cmd, struct rm_thread *t, bson_t *reply,
    bson_error_t *error)
{
	bool ok;
	int tries = 0;

	for (;;) {
		ok = mongoc_collection_command_with_opts(coll, cmd, NULL, t->cmd_opts, reply, error);
		if (ok || tries++ > 0 || !t->retry_reads || !retryable_error(error))
			return ok;
		bson_destroy(reply);
	}
}

/*
 * The documents of a find's reply, {cursor: {id, firstBatch: [...]}}, as
 * _mongoc_cursor_start_reading_response() reads them: batch set to iterate
 * over them, *cursor_id the cursor left open on the server (0: none).
 * false if the reply is not a find's.
 */
bool
rm_first_batch(const bson_t *reply, bson_iter_t *batch, int64_t *cursor_id)
{
	bson_iter_t it, child;
	bool in_batch = false;

	*cursor_id = 0;
	if (bson_iter_init_find(&it, reply, "cursor") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
	    bson_iter_recurse(&it, &child))
		while (bson_iter_next(&child)) {
			if ((BSON_ITER_IS_KEY(&child, "firstBatch") ||
			    BSON_ITER_IS_KEY(&child, "nextBatch")) &&
			    BSON_ITER_HOLDS_ARRAY(&child) && bson_iter_recurse(&child, batch))
				in_batch = true;
			else if (BSON_ITER_IS_KEY(&child, "id") && BSON_ITER_HOLDS_INT(&child))
				*cursor_id = bson_iter_as_int64(&child);
		}
	return in_batch;
}

/*
 * The document that it, an iterator over a batch, is at, as doc (pointing
 * into the reply): false if it is at something else, or a bad length.
 */
bool
rm_iter_doc(const bson_iter_t *it, bson_t *doc)
{
	const uint8_t *data;
	uint32_t len;

	if (!BSON_ITER_HOLDS_DOCUMENT(it))
		return false;
	bson_iter_document(it, &len, &data);
	return bson_init_static(doc, data, len);
}

/*
 * j's filter and options as one find command on coll: its reply (always
 * initialized) and the reply's first batch. false after an error, which
 * j->err says.
 */
static bool
find_batch(struct rm_job *j, mongoc_collection_t *coll, struct rm_thread *t, bson_t *reply,
    bson_iter_t *batch, int64_t *cursor_id)
{
	bson_t cmd = BSON_INITIALIZER;
	bson_error_t error;
	bool ok;

	BSON_APPEND_UTF8(&cmd, "find", j->coll);
	BSON_APPEND_DOCUMENT(&cmd, "filter", j->filter);
	bson_concat(&cmd, j->opts);
	ok = rm_find(coll, &cmd, t, reply, &error);
	bson_destroy(&cmd);
	if (ok && !rm_first_batch(reply, batch, cursor_id)) {
		ok = false;
		bson_set_error(&error, MONGOC_ERROR_PROTOCOL, MONGOC_ERROR_PROTOCOL_INVALID_REPLY,
		    "Invalid reply to find command.");
	}
	if (!ok)
		rm_driver_error(j, &j->err, &error);
	return ok;
}

/* A get by id as one find command, {find, filter, maxTimeMS, limit: 1, singleBatch: true}. */
void
rm_run_get(struct rm_job *j, mongoc_collection_t *coll, struct rm_thread *t)
{
	bson_t reply;
	bson_iter_t batch;
	int64_t cursor_id;

	if (!find_batch(j, coll, t, &reply, &batch, &cursor_id)) {
		;                    /* j->err is set */
	} else if (bson_iter_next(&batch) && BSON_ITER_HOLDS_DOCUMENT(&batch)) {
		bson_t doc;

		if (!rm_iter_doc(&batch, &doc) || rm_append_doc(j->out, &doc, false, t) == -1)
			rm_set_error(&j->err, 502, "mongo_error",
			    "the document could not be converted to JSON");
	} else {
		rm_not_found(j);
	}
	bson_destroy(&reply);
}

static void
too_many_streams(struct rm_job *j)
{
	rm_set_error(&j->err, 503, "overloaded", "too many results are being streamed at "
	    "once: as many as the worker's MongoDB clients allow (maxPoolSize less threads); "
	    "try again later");
}

/*
 * A list of at most one server batch, as one find command on the thread's
 * own client (rm_find, as a get): no client from the pool, no cursor, one
 * copy of the server's description instead of two. The reply is then the
 * whole result, kept in the job until its last document is written. 1 when
 * it is; 0 when the server cut the batch short (16 MB) and left a cursor
 * open, which is closed: the list runs again with a cursor of its own;
 * -1 when it failed, or too many lists hold an answer (j->err says why).
 */
static int
list_find(struct rm_job *j, struct rm_thread *t)
{
	struct readmongo *rm = j->rm;
	mongoc_collection_t *coll;
	int64_t cursor_id;

	if (__atomic_add_fetch(&rm->replies_kept, 1, __ATOMIC_RELAXED) > rm->replies_max) {
		__atomic_sub_fetch(&rm->replies_kept, 1, __ATOMIC_RELAXED);
		too_many_streams(j);
		return -1;
	}
	j->replied = true;           /* find_batch initializes the reply either way */
	coll = rm_thread_collection(t, rm->conf->database, j->coll);
	if (!find_batch(j, coll, t, &j->reply, &j->rest, &cursor_id))
		return -1;
	if (cursor_id == 0)
		return 1;
	rm_kill_cursor(coll, cursor_id, t);
	drop_reply(j);
	return 0;
}

/* A list's cursor, with a client of its own; -1 (j->err set) when none is free. */
static int
list_open_cursor(struct rm_job *j)
{
	/* mongoc_client_pool_pop would wait for a client: never wait here */
	if ((j->client = mongoc_client_pool_try_pop(j->rm->clients)) == NULL) {
		too_many_streams(j);
		return -1;
	}
	j->collection = mongoc_client_get_collection(j->client, j->rm->conf->database, j->coll);
	j->cursor = mongoc_collection_find_with_opts(j->collection, j->filter, j->opts, NULL);
	return 0;
}

/*
 * The next document of a list, from its reply or its cursor: false at the
 * end, or on an error (a cursor's is read after). doc lives until the
 * next call.
 */
static bool
list_next(struct rm_job *j, const bson_t **doc, bson_t *held)
{
	/* run_at: when the operation that may fail began (rm_driver_error()) */
	if (!j->replied)
		return (j->run_at = bson_get_monotonic_time(), mongoc_cursor_next(j->cursor, doc));
	if (!bson_iter_next(&j->rest))
		return false;
	if (!rm_iter_doc(&j->rest, held)) {
		rm_set_error(&j->err, 502, "mongo_error", "MongoDB answered a find with "
		    "something other than a document in its batch");
		return false;
	}
	*doc = held;
	return true;
}

/*
 * One step of a list: up to BATCH_BYTES of documents. A full batch goes to
 * the loop (batch_msg) and the step returns: the reply, or the cursor with
 * its own client, waits in the job while a slow client reads, and no thread
 * waits with it. The last step (the end, an error, or stop) releases them
 * and posts end_msg. 1 when it posted end_msg.
 */
static int
list_step(struct rm_job *j, struct rm_thread *t)
{
	const bson_t *doc;
	bson_t held;
	bson_error_t error;

	if (j->stop)
		goto end;
	if (!j->replied && j->cursor == NULL) {
		int found = j->one_find && t != NULL ? list_find(j, t) : 0;

		if (found == -1 || (found == 0 && list_open_cursor(j) == -1))
			goto end;
		evbuffer_add(j->out, "{\"documents\":[", 14);
	}
	while (list_next(j, &doc, &held)) {
		if (rm_append_doc(j->out, doc, j->docs++ > 0, t) == -1) {
			rm_set_error(&j->err, 502, "mongo_error",
			    "a document could not be converted to JSON");
			goto end;
		}
		if (evbuffer_get_length(j->out) >= BATCH_BYTES) {
			struct evbuffer *next = evbuffer_new();
			if (next == NULL) {
				rm_set_error(&j->err, 503, "overloaded", "out of memory");
				goto end;
			}
			j->batch = j->out;
			j->out = next;
			pool_post(j->rm->pool, &j->batch_msg);
			return 0;
		}
	}
	if (!j->replied && mongoc_cursor_error(j->cursor, &error))
		rm_driver_error(j, &j->err, &error);
end:
	rm_cursor_close(j);
	pool_post(j->rm->pool, &j->end_msg);
	return 1;
}

/* A cursor a find left open, closed on the server: best effort. */
void
rm_kill_cursor(mongoc_collection_t *coll, int64_t cursor_id, struct rm_thread *t)
{
	bson_t cmd = BSON_INITIALIZER, ids, reply;
	bson_error_t error;

	BSON_APPEND_UTF8(&cmd, "killCursors", mongoc_collection_get_name(coll));
	BSON_APPEND_ARRAY_BEGIN(&cmd, "cursors", &ids);
	BSON_APPEND_INT64(&ids, "0", cursor_id);
	bson_append_array_end(&cmd, &ids);
	if (!mongoc_collection_command_with_opts(coll, &cmd, NULL, t->cmd_opts, &reply, &error))
		log_debug("readmongo: killCursors: %s", error.message);
	bson_destroy(&reply);
	bson_destroy(&cmd);
}

/* The loop words the 404: it knows how the id was written. */
void
rm_not_found(struct rm_job *j)
{
	rm_set_error(&j->err, 404, "not_found", "%s", "");
}

static void
run_count(struct rm_job *j, mongoc_collection_t *coll)
{
	bson_error_t error;
	int64_t n;

	n = mongoc_collection_count_documents(coll, j->filter, j->opts, NULL, NULL, &error);
	if (n < 0)
		rm_driver_error(j, &j->err, &error);
	else
		evbuffer_add_printf(j->out, "{\"count\":%lld}", (long long)n);
}

/* Did MongoDB turn out unreachable while j waited in the queue? */
bool
rm_found_down(struct rm_job *j)
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

/* The thread's handle on collection name, made on first use. */
mongoc_collection_t *
rm_thread_collection(struct rm_thread *t, const char *db, const char *name)
{
	unsigned i;

	for (i = 0; i < RM_THREAD_COLLECTIONS; i++)
		if (t->colls[i].coll != NULL && strcmp(t->colls[i].name, name) == 0)
			return t->colls[i].coll;
	i = t->next++ % RM_THREAD_COLLECTIONS;
	if (t->colls[i].coll != NULL)
		mongoc_collection_destroy(t->colls[i].coll);
	snprintf(t->colls[i].name, sizeof(t->colls[i].name), "%s", name);
	t->colls[i].coll = mongoc_client_get_collection(t->client, db, name);
	return t->colls[i].coll;
}

/* A get or a count, with the thread's own client, in one step. */
static void
run_query(struct rm_job *j, struct rm_thread *t)
{
	mongoc_collection_t *coll;

	if (t == NULL) {             /* its context could not be allocated */
		rm_set_error(&j->err, 503, "overloaded", "out of memory");
		return;
	}
	coll = rm_thread_collection(t, j->rm->conf->database, j->coll);
	if (j->op == OP_GET)
		rm_run_get(j, coll, t);
	else
		run_count(j, coll);
}

void
rm_job_run(struct pool_job *pj, void *thread)
{
	struct rm_job *j = container_of(pj, struct rm_job, job);

	j->run_at = bson_get_monotonic_time();
	if (j->cursor == NULL && !j->replied && rm_found_down(j))
		j->stop = 1;         /* a list's first step, or a get or count: it ends here */
	if (j->op == OP_LIST) {
		list_step(j, thread); /* it posts what it made; the job is the loop's again */
		return;
	}
	if (!j->stop && j->batchable && thread != NULL) {
		rm_run_gets(j, thread);  /* it posts the ends of the gets it ran */
		return;
	}
	if (!j->stop)
		run_query(j, thread);
	/* The last touch: from here on the loop may free the job. */
	pool_post(j->rm->pool, &j->end_msg);
}

/* On the loop, as the pool stops: the job (or a list's next step) never ran. */
void
rm_job_cancel(struct pool_job *pj)
{
	struct rm_job *j = container_of(pj, struct rm_job, job);

	rm_cursor_close(j);          /* the pool's threads are gone: the loop may */
	if (j->err.status == 0)
		rm_set_error(&j->err, 503, "shutting_down", "the server is shutting down");
	pool_post(j->rm->pool, &j->end_msg);
}

