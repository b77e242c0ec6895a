/*
 * readmongo on a pool thread: gets by ObjectId that wait in the queue of
 * the pool, answered together by one find, {_id: {$in: [...]}}.
 *
 * Why: most of a get's cost is not the query but the round trip around
 * it: the thread's sleep and wake-up for MongoDB's answer (2.2 context
 * switches a get before this, 0.4 after, under load), the driver's work
 * per command (server selection, session) and the loop's wake-up for the
 * result. A thread that takes a get takes up to get_batch - 1 more of the
 * same collection along and pays all that once.
 *
 * One find of gets per collection is under way at a time: a thread that
 * takes a get while one is leaves it waiting (gets_waiting) and goes on
 * to other work, and the thread of the find under way runs the waiting
 * gets as its next batch as soon as it is back. So gets do not spread
 * thinly over the threads (many small finds, a context switch each);
 * lists and counts still have every thread. Nothing waits to form a
 * batch: a get that finds no find of its collection under way starts
 * one at once (DataLoader's idea, without its timer), so batches grow
 * with the load, which is when the saving is needed.
 *
 * Every get still reads what its own find would have read: the batch is
 * sent after each of its gets arrived, with the route's read preference,
 * read concern and maxTimeMS. Only ObjectIds are batched: they match
 * byte for byte, where strings could match under a collation and numbers
 * across types, and a document could then not be told apart from another
 * get's. A batch the server cut short (cursor left open: more than 16 MiB
 * of documents) answers what it holds, and the gets it did not answer run
 * alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "svc/readmongo/readmongo.h"

/* pool_take()'s test: another get by ObjectId in the same collection. */
static int
same_get(struct pool_job *pj, void *arg)
{
	const struct rm_job *lead = arg, *j = container_of(pj, struct rm_job, job);

	return j->batchable && strcmp(j->coll, lead->coll) == 0;
}

static int
by_oid(const void *a, const void *b)
{
	const struct rm_job *x = *(struct rm_job *const *)a, *y = *(struct rm_job *const *)b;

	return bson_oid_compare(&x->oid, &y->oid);
}

/* The first of the n jobs (sorted by ObjectId) that asked for oid, or -1. */
static long
find_oid(struct rm_job **jobs, size_t n, const bson_oid_t *oid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bson_oid_compare(&jobs[mid]->oid, oid) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && bson_oid_equal(&jobs[lo]->oid, oid) ? (long)lo : -1;
}

/* The document in each job that asked for it (more than one may have). */
static void
hand_out(struct rm_job **jobs, size_t n, const bson_t *doc, struct rm_thread *t)
{
	bson_iter_t it;
	long i;

	if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it) ||
	    (i = find_oid(jobs, n, bson_iter_oid(&it))) == -1)
		return;              /* not one of ours: cannot happen with $in */
	for (; (size_t)i < n && bson_oid_equal(&jobs[i]->oid, bson_iter_oid(&it)); i++) {
		struct rm_job *j = jobs[i];
		if (j->answered)
			continue;
		j->answered = true;
		if (rm_append_doc(j->out, doc, false, t) == -1)
			rm_set_error(&j->err, 502, "mongo_error",
			    "the document could not be converted to JSON");
	}
}

/* {find, filter: {_id: {$in: [...]}}, maxTimeMS, limit: n, batchSize: n}: all n, or an error. */
static void
run_batch(struct rm_job **jobs, size_t n, mongoc_collection_t *coll, struct rm_thread *t)
{
	bson_t cmd = BSON_INITIALIZER, filter, id, in, reply;
	bson_iter_t batch;
	bson_error_t error;
	int64_t cursor_id;
	char key[16];
	const char *k;
	bool ok;

	BSON_APPEND_UTF8(&cmd, "find", jobs[0]->coll);
	BSON_APPEND_DOCUMENT_BEGIN(&cmd, "filter", &filter);
	BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &id);
	BSON_APPEND_ARRAY_BEGIN(&id, "$in", &in);
	for (size_t i = 0; i < n; i++) {
		bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
		bson_append_oid(&in, k, -1, &jobs[i]->oid);
	}
	bson_append_array_end(&id, &in);
	bson_append_document_end(&filter, &id);
	bson_append_document_end(&cmd, &filter);
	BSON_APPEND_INT64(&cmd, "maxTimeMS", jobs[0]->rm->conf->max_time_ms);
	/* n: duplicates ask for one document, so the limit is never short */
	BSON_APPEND_INT64(&cmd, "limit", (int64_t)n);
	BSON_APPEND_INT32(&cmd, "batchSize", (int32_t)n);
	ok = rm_find(coll, &cmd, t, &reply, &error);
	bson_destroy(&cmd);
	if (ok && !rm_first_batch(&reply, &batch, &cursor_id)) {
		ok = false;
		bson_set_error(&error, MONGOC_ERROR_PROTOCOL, MONGOC_ERROR_PROTOCOL_INVALID_REPLY,
		    "Invalid reply to find command.");
	}
	if (!ok) {
		for (size_t i = 0; i < n; i++)
			rm_driver_error(jobs[i], &jobs[i]->err, &error);
		bson_destroy(&reply);
		return;
	}
	while (bson_iter_next(&batch) && BSON_ITER_HOLDS_DOCUMENT(&batch)) {
		bson_t doc;

		if (rm_iter_doc(&batch, &doc))
			hand_out(jobs, n, &doc, t);
	}
	bson_destroy(&reply);
	/*
	 * Cut short: the cursor closed first (the session the driver hands
	 * out next is, most likely, the one it was opened in), then the rest
	 * alone.
	 */
	if (cursor_id != 0)
		rm_kill_cursor(coll, cursor_id, t);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->answered)
			continue;
		if (cursor_id == 0)
			rm_not_found(jobs[i]);
		else
			rm_run_get(jobs[i], coll, t);
	}
}

/*
 * With gets_mu held: if a find of gets of j's collection is under way, j
 * waits for it in gets_waiting (-2); else the first free slot (-1: none).
 */
static int
wait_or_slot(struct rm_job *j)
{
	struct readmongo *rm = j->rm;
	int slot = -1;

	for (int i = 0; i < (int)rm->conf->threads; i++) {
		if (rm->gets_running[i][0] == '\0') {
			if (slot == -1)
				slot = i;
		} else if (strcmp(rm->gets_running[i], j->coll) == 0) {
			STAILQ_INSERT_TAIL(&rm->gets_waiting, j, wait_link);
			__atomic_store_n(&rm->gets_waiting_n, rm->gets_waiting_n + 1, __ATOMIC_RELAXED);
			return -2;
		}
	}
	return slot;
}

/* On a pool thread: j's slot of gets_running, or -1 and j waits. */
static int
begin(struct rm_job *j)
{
	int slot;

	pthread_mutex_lock(&j->rm->gets_mu);
	/* A slot per thread, and this thread holds none: one is free. */
	if ((slot = wait_or_slot(j)) >= 0)
		memcpy(j->rm->gets_running[slot], j->coll, sizeof(j->coll));
	pthread_mutex_unlock(&j->rm->gets_mu);
	return slot >= 0 ? slot : -1;
}

/*
 * On the loop, instead of the queue: a get waits for the find under way
 * of its collection, if there is one, without waking a thread for it.
 */
bool
rm_gets_wait(struct rm_job *j)
{
	bool waits;

	if (!j->batchable)
		return false;
	pthread_mutex_lock(&j->rm->gets_mu);
	waits = wait_or_slot(j) == -2;
	pthread_mutex_unlock(&j->rm->gets_mu);
	return waits;
}

/* Up to max gets of coll out of gets_waiting, into out: how many. gets_mu held. */
static size_t
take_locked(struct readmongo *rm, const char *coll, struct rm_job **out, size_t max)
{
	struct rm_job *j, *next;
	size_t n = 0;

	for (j = STAILQ_FIRST(&rm->gets_waiting); j != NULL && n < max; j = next) {
		next = STAILQ_NEXT(j, wait_link);
		if (strcmp(j->coll, coll) != 0)
			continue;
		STAILQ_REMOVE(&rm->gets_waiting, j, rm_job, wait_link);
		__atomic_store_n(&rm->gets_waiting_n, rm->gets_waiting_n - 1, __ATOMIC_RELAXED);
		out[n++] = j;
	}
	return n;
}

/*
 * The next get waiting for this slot's collection, or NULL and the slot
 * is free. While other queries wait in the queue, the waiting gets go to
 * its end instead, behind them: a steady stream of gets would otherwise
 * keep the thread (with threads 1, every thread) from them for good.
 */
static struct rm_job *
next_or_end(struct readmongo *rm, int slot)
{
	bool others = pool_depth(rm->pool) > 0;
	struct rm_job *j = NULL, *w;

	pthread_mutex_lock(&rm->gets_mu);
	if (others) {
		while (take_locked(rm, rm->gets_running[slot], &w, 1) == 1)
			if (pool_resubmit(rm->pool, &w->job) == -1)
				rm_job_cancel(&w->job);     /* the pool stops: it ends now */
		rm->gets_running[slot][0] = '\0';
	} else if (take_locked(rm, rm->gets_running[slot], &j, 1) == 0) {
		rm->gets_running[slot][0] = '\0';
	}
	pthread_mutex_unlock(&rm->gets_mu);
	return j;
}

/*
 * One batch: lead, the gets waiting for it, then those still queued, up
 * to get_batch in all, run as one find (or lead alone), and their ends
 * posted: from then on the loop may free them.
 */
static void
run_once(struct rm_job *lead, mongoc_collection_t *coll, struct rm_thread *t)
{
	struct rm_job *all[RM_GET_BATCH_MAX], *jobs[RM_GET_BATCH_MAX];
	struct pool_job *taken[RM_GET_BATCH_MAX];
	struct readmongo *rm = lead->rm;
	size_t max = (size_t)rm->conf->get_batch, n = 1, k = 0, q;
	int64_t now;

	all[0] = lead;
	pthread_mutex_lock(&rm->gets_mu);
	n += take_locked(rm, lead->coll, all + 1, max - 1);
	pthread_mutex_unlock(&rm->gets_mu);
	q = pool_take(rm->pool, same_get, lead, taken, max - n);
	for (size_t i = 0; i < q; i++)
		all[n++] = container_of(taken[i], struct rm_job, job);
	now = bson_get_monotonic_time();
	for (size_t i = 0; i < n; i++) {
		all[i]->run_at = now;
		if (rm_found_down(all[i]))
			pool_post(rm->pool, &all[i]->end_msg);
		else
			jobs[k++] = all[i];
	}
	if (k == 1) {
		rm_run_get(jobs[0], coll, t);
	} else if (k > 1) {
		qsort(jobs, k, sizeof(*jobs), by_oid);
		run_batch(jobs, k, coll, t);
		for (size_t i = 0; i < k; i++)
			jobs[i]->batched = true;
	}
	for (size_t i = 0; i < k; i++)
		pool_post(rm->pool, &jobs[i]->end_msg);
}

void
rm_run_gets(struct rm_job *j, struct rm_thread *t)
{
	struct readmongo *rm = j->rm;
	mongoc_collection_t *coll = rm_thread_collection(t, rm->conf->database, j->coll);
	int slot;

	if ((slot = begin(j)) == -1)
		return;              /* it waits: the find under way takes it next */
	do
		run_once(j, coll, t);
	while ((j = next_or_end(rm, slot)) != NULL);
}

size_t
rm_gets_waiting(struct readmongo *rm)
{
	return __atomic_load_n(&rm->gets_waiting_n, __ATOMIC_RELAXED);
}
