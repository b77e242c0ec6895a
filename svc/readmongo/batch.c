/*
 * readmongo on a pool thread: gets by ObjectId that wait in the queue of
 * the pool, answered together by one find, {_id: {$in: [...]}}.
 *
 * Why: on 2 cores most of a get's cost is not the query but the round
 * trip around it: the thread's sleep and wake-up for MongoDB's answer,
 * the driver's work per command (server selection, session) and the
 * loop's wake-up for the result. A thread that takes a get while others
 * wait takes up to get_batch - 1 of them along and pays all that once.
 * Nothing waits to form a batch: a get that finds a thread free runs
 * alone, so batches grow only while the threads are all busy, which is
 * when the saving is needed (DataLoader's idea, without its timer).
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

	return j->op == OP_GET && j->by_oid && strcmp(j->coll, lead->coll) == 0;
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
		const uint8_t *data;
		uint32_t len;
		bson_t doc;

		bson_iter_document(&batch, &len, &data);
		if (bson_init_static(&doc, data, len))
			hand_out(jobs, n, &doc, t);
	}
	bson_destroy(&reply);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->answered)
			continue;
		if (cursor_id == 0)
			rm_not_found(jobs[i]);
		else
			rm_run_get(jobs[i], coll, t);   /* cut short: the rest alone */
	}
	if (cursor_id != 0)
		rm_kill_cursor(coll, cursor_id, t);
}

void
rm_run_gets(struct rm_job *lead, mongoc_collection_t *coll, struct rm_thread *t)
{
	struct pool_job *taken[RM_GET_BATCH_MAX - 1];
	struct rm_job *jobs[RM_GET_BATCH_MAX];
	size_t n, k = 1;

	n = pool_take(lead->rm->pool, same_get, lead, taken, (size_t)lead->rm->conf->get_batch - 1);
	jobs[0] = lead;
	for (size_t i = 0; i < n; i++) {
		struct rm_job *j = container_of(taken[i], struct rm_job, job);
		j->run_at = lead->run_at;
		if (rm_found_down(j))
			pool_post(j->rm->pool, &j->end_msg);
		else
			jobs[k++] = j;
	}
	if (k == 1) {
		rm_run_get(lead, coll, t);
		return;
	}
	qsort(jobs, k, sizeof(*jobs), by_oid);
	run_batch(jobs, k, coll, t);
	/* The lead's end is posted by rm_job_run(), after this returns. */
	for (size_t i = 0; i < k; i++) {
		jobs[i]->batched = true;
		if (jobs[i] != lead)
			pool_post(lead->rm->pool, &jobs[i]->end_msg);
	}
}
