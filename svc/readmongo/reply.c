/*
 * readmongo on the loop, after the pool: a job's batches streamed to its
 * request with back-pressure, its end written as a reply or an error, and
 * the backend's errors counted.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/time.h"
#include "common/util.h"
#include "http/http.h"
#include "svc/readmongo/readmongo.h"

#define STREAM_LOW_WATER (256 * 1024)  /* unwritten bytes a stream may leave queued */

void
rm_job_free(struct rm_job *j)
{
	if (j->deadline_ev != NULL)
		event_free(j->deadline_ev);
	if (j->batch != NULL)
		evbuffer_free(j->batch);
	if (j->out != NULL)
		evbuffer_free(j->out);
	if (j->filter != NULL)
		bson_destroy(j->filter);
	if (j->opts_own != NULL)
		bson_destroy(j->opts_own);
	free(j);
}

static void deliver_end(struct pool_msg *m);

/* The list's next step (or, with stop set, its last): back to the pool. */
static void
next_step(struct rm_job *j)
{
	j->parked = 0;
	if (pool_resubmit(j->rm->pool, &j->job) == -1) {
		/* the pool is stopping: the loop closes the cursor itself */
		rm_cursor_close(j);
		deliver_end(&j->end_msg);
	}
}

/* The connection has written most of the last batch, or the client left. */
static void
drained(void *arg)
{
	struct rm_job *j = arg;

	if (http_req_gone(j->req))
		j->stop = 1;
	next_step(j);
}

/*
 * stream_timeout_ms: the whole stream takes no longer, however steadily a
 * slow client reads. It is cut (the connection closes, so that the client
 * sees the body incomplete) and its cursor closed.
 */
static void
stream_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct rm_job *j = arg;

	(void)fd;
	(void)what;
	if (j->req == NULL)
		return;
	log_warn("route %s: a result stream took longer than stream_timeout_ms (%lld ms): "
	    "cut after %llu bytes", j->rm->prefix, j->rm->conf->stream_timeout_ms,
	    (unsigned long long)http_req_bytes(j->req));
	j->rm->errors[RM_ERR_TIMEOUT]++;
	http_stream_abort(j->req);
	j->req = NULL;               /* the loop's field: the thread never reads it */
	if (j->parked) {             /* the loop's job now: stop it */
		j->stop = 1;
		next_step(j);
	}                            /* else the step under way comes back, and stops */
}

static void
deliver_batch(struct pool_msg *m)
{
	struct rm_job *j = container_of(m, struct rm_job, batch_msg);
	struct evbuffer *buf = j->batch;

	j->batch = NULL;
	if (j->req == NULL || j->rm->stopping || http_req_gone(j->req)) {
		evbuffer_free(buf);
		if (j->rm->stopping && j->err.status == 0)   /* the list says it is cut */
			rm_set_error(&j->err, 503, "shutting_down", "the server is shutting down");
		j->stop = 1;
		next_step(j);
		return;
	}
	if (!j->started) {
		struct timeval tv = ms_tv(j->rm->conf->stream_timeout_ms);
		http_stream_start(j->req, 200);
		j->started = 1;
		if ((j->deadline_ev = evtimer_new(j->rm->base, stream_deadline, j)) != NULL)
			evtimer_add(j->deadline_ev, &tv);
	}
	http_stream_chunk(j->req, buf);
	evbuffer_free(buf);
	/* Back-pressure: the next step is queued once this batch is mostly out. */
	j->parked = 1;
	http_stream_on_drain(j->req, STREAM_LOW_WATER, drained, j);
}

void
rm_job_unpark(struct rm_job *j)
{
	if (!j->parked)
		return;              /* queued or running: its next batch comes back and stops */
	http_stream_on_drain(j->req, 0, NULL, NULL);
	if (j->err.status == 0)
		rm_set_error(&j->err, 503, "shutting_down", "the server is shutting down");
	j->stop = 1;
	next_step(j);
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

/* Counts an error of the backend (not the client's 400s and 404s). */
static void
count_error(struct readmongo *rm, const char *code)
{
	for (int k = 0; k < RM_ERR_KINDS; k++)
		if (strcmp(code, rm_err_names[k]) == 0)
			rm->errors[k]++;
}

static void
deliver_end(struct pool_msg *m)
{
	struct rm_job *j = container_of(m, struct rm_job, end_msg);

	TAILQ_REMOVE(&j->rm->jobs, j, link);
	if (j->batched)
		j->rm->batched_gets++;
	if (j->err.status != 0)
		count_error(j->rm, j->err.code);
	if (j->req == NULL) {
		/* a stream cut at stream_timeout_ms: its request is over */
	} else if (j->rm->stopping && !j->started) {
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
	rm_job_free(j);
}

struct rm_job *
rm_job_new(struct readmongo *rm, struct http_req *req, enum rm_op op, const char *coll)
{
	struct rm_job *j = calloc(1, sizeof(*j));
	size_t n;

	if (j == NULL)
		return NULL;
	if ((j->out = evbuffer_new()) == NULL) {
		rm_job_free(j);
		return NULL;
	}
	j->job.run = rm_job_run;
	j->job.cancel = rm_job_cancel;
	j->batch_msg.deliver = deliver_batch;
	j->end_msg.deliver = deliver_end;
	j->rm = rm;
	j->req = req;
	j->op = op;
	n = strnlen(coll, NS_MAX);
	memcpy(j->coll, coll, n);
	j->coll[n] = '\0';
	return j;
}

void
rm_submit(struct readmongo *rm, struct rm_job *j)
{
	j->queued_at = bson_get_monotonic_time();
	/* The gets waiting for a find under way wait in the queue's stead. */
	if (pool_depth(rm->pool) + rm_gets_waiting(rm) >= (size_t)rm->conf->queue_limit ||
	    (!rm_gets_wait(j) && pool_submit(rm->pool, &j->job) == -1)) {
		rm->errors[RM_ERR_OVERLOADED]++;
		http_error(j->req, 503, "overloaded", "too many queries are waiting for "
		    "MongoDB (queue_limit %lld); try again later", rm->conf->queue_limit);
		rm_job_free(j);
		return;
	}
	TAILQ_INSERT_TAIL(&rm->jobs, j, link);
}

