/*
 * The readmongo service's own declarations, shared by its files, which are
 * split by where they run:
 *   conf.c      the route's options, validated in the master
 *   service.c   the worker's state: the driver, the thread pool, figures
 *   request.c   on the loop: a request parsed and checked into a job
 *   job.c       on a pool thread: the query, run with the blocking driver
 *   batch.c     on a pool thread: waiting gets by ObjectId, run as one find
 *   json.c      on a pool thread: a document as relaxed Extended JSON
 *   reply.c     on the loop: a job's results written to its request
 */
#ifndef CLUSTERD_READMONGO_H
#define CLUSTERD_READMONGO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <json-c/json.h>
#include <mongoc/mongoc.h>

#include "worker/pool.h"

struct http_req;

#define NS_MAX       255            /* "database.collection", as mongod limits it */
#define RM_SOCKET_MARGIN_MS 1000    /* socketTimeoutMS past max_time_ms, unless the URI sets it */
#define RM_HEARTBEAT_MS 10000       /* the driver's heartbeatFrequencyMS for a pool of clients */
#define RM_GET_BATCH_MAX 1000       /* get_batch's limit */

struct rm_conf {
	char *uri;
	char *database;
	char **collections;          /* NULL-terminated; "*" is kept out of it */
	bool all_collections;
	long long default_limit, max_limit, max_time_ms, threads, queue_limit;
	long long get_batch;         /* gets by ObjectId one find may answer (batch.c) */
	long long stream_timeout_ms;     /* a streamed list's whole time */
};

/* The backend's errors, counted for figures under their JSON error codes. */
enum rm_err_kind { RM_ERR_UNAVAILABLE, RM_ERR_TIMEOUT, RM_ERR_MONGO, RM_ERR_OVERLOADED,
	RM_ERR_KINDS };
extern const char *const rm_err_names[RM_ERR_KINDS];

struct readmongo {
	const struct rm_conf *conf;
	const char *prefix;
	struct event_base *base;
	mongoc_client_pool_t *clients;
	struct pool *pool;
	TAILQ_HEAD(, rm_job) jobs;   /* submitted and not yet answered */
	int stopping;
	uint64_t errors[RM_ERR_KINDS];   /* answers that were errors of the backend */
	uint64_t batched_gets;       /* gets answered by a find shared with others */

	/*
	 * batch.c's: the collections that a find of gets is under way for
	 * (conf->threads slots, "" when free), and the gets a thread found
	 * waiting for one of them: the thread running it takes them next.
	 */
	pthread_mutex_t gets_mu;
	char (*gets_running)[NS_MAX + 1];
	STAILQ_HEAD(, rm_job) gets_waiting;
	size_t gets_waiting_n;
	/* The options of every get and every count: the same for all, read-only. */
	bson_t *get_opts, *count_opts;
	/*
	 * Lists holding a find's answer (atomic), and how many may: as many as
	 * lists that keep a cursor may (maxPoolSize less threads), since each
	 * may wait up to stream_timeout_ms for a slow reader with up to 16 MB.
	 */
	int replies_kept, replies_max;

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

/* json.c's output buffer, reused from one document to the next. */
struct rm_json_buf {
	char *p;
	size_t len, cap;
	int failed;                  /* out of memory: libbson writes the document */
};

/*
 * A pool thread's context: its own client, for as long as the thread lives,
 * and the collection handles it made last (mongoc_client_get_collection
 * copies the client's read preferences and concerns each time: 4,400
 * instructions of a get by id). A handle is used by its thread only.
 */
#define RM_THREAD_COLLECTIONS 8
struct rm_thread {
	mongoc_client_t *client;
	struct {
		char name[NS_MAX + 1];
		mongoc_collection_t *coll;
	} colls[RM_THREAD_COLLECTIONS];
	unsigned next;               /* the slot a new name takes */
	struct rm_json_buf json;
	/* A get's command options: the client's read concern, if any (else NULL). */
	bson_t *cmd_opts;
	bool retry_reads;            /* the URI's retryReads (default true) */
};

/*
 * query.c: the Extended JSON object given as query parameter name (filter,
 * sort, projection): a new document, or NULL with why (for a 400).
 */
bson_t *rm_query_object(const char *name, const char *text, char *why, size_t whylen);

struct rm_error {
	int status;                  /* 0: no error */
	const char *code;
	char message[640];
};

/*
 * One request's query. The loop builds it and owns it. A thread runs it a
 * step at a time: a get or a count in one step; a list one batch of JSON
 * per step, after which its find's answer, or its cursor and the client
 * it needs, waits in the job, holding no thread, until the loop has written the batch out and
 * queues the next step. Loop and thread never touch the job at once: the
 * pool's queue and its messages hand it over.
 */
struct rm_job {
	struct pool_job job;
	struct pool_msg batch_msg;   /* a step made a batch: in `batch` */
	struct pool_msg end_msg;     /* the last step is done: out and err are final */
	struct readmongo *rm;
	struct http_req *req;        /* NULL once a cut stream ended it */
	enum rm_op op;
	char coll[NS_MAX + 1];
	bson_t *filter;
	/* A get whose id is an ObjectId (oid), on a route with get_batch > 1. */
	bool batchable;
	bson_oid_t oid;
	bool answered, batched;      /* batch.c's: found in a shared find's answer */
	STAILQ_ENTRY(rm_job) wait_link;  /* in gets_waiting */
	const bson_t *opts;          /* opts_own, or the route's get_opts or count_opts */
	bson_t *opts_own;
	int64_t queued_at;           /* bson_get_monotonic_time() */
	int64_t run_at;              /* when its current driver call began: the same clock */
	TAILQ_ENTRY(rm_job) link;

	/*
	 * A list's, between its steps: a list of at most one server batch
	 * (one_find) as the reply of one find, whose documents are still to
	 * write from `rest` on; a longer one (or one the server cut short)
	 * as a cursor with a client of its own, from the pool of clients.
	 */
	bool one_find;
	bool replied;                /* reply is initialized and counted in replies_kept */
	bson_t reply;
	bson_iter_t rest;
	mongoc_client_t *client;
	mongoc_collection_t *collection;
	mongoc_cursor_t *cursor;
	uint64_t docs;               /* documents out so far */
	struct evbuffer *batch;      /* made by a step, for the loop */
	int stop;                    /* the next step only lets go of the answer or cursor */

	/* The loop's. */
	int started;                 /* the stream's status line is out */
	int parked;                  /* waiting for the output to drain: not queued */
	struct event *deadline_ev;   /* stream_timeout_ms, from the first batch */

	struct evbuffer *out;        /* the (rest of the) body */
	struct rm_error err;
};

/* conf.c */
extern const char *const rm_keys[];
int rm_configure(json_object *route, const char *path, void **conf, char *err, size_t errlen);
void rm_conf_free(void *conf);
bool rm_valid_collection(const char *db, const char *s, size_t n);

/* request.c */
void rm_handle(void *state, struct http_req *req, const char *subpath);

/* job.c */
void rm_job_run(struct pool_job *pj, void *thread);
void rm_job_cancel(struct pool_job *pj);
void rm_run_get(struct rm_job *j, mongoc_collection_t *coll, struct rm_thread *t);
void rm_not_found(struct rm_job *j);
bool rm_find(mongoc_collection_t *coll, const bson_t *cmd, struct rm_thread *t, bson_t *reply,
    bson_error_t *error);
bool rm_first_batch(const bson_t *reply, bson_iter_t *batch, int64_t *cursor_id);
bool rm_iter_doc(const bson_iter_t *it, bson_t *doc);
void rm_kill_cursor(mongoc_collection_t *coll, int64_t cursor_id, struct rm_thread *t);
void rm_driver_error(struct rm_job *j, struct rm_error *e, const bson_error_t *error);
bool rm_found_down(struct rm_job *j);
int rm_append_doc(struct evbuffer *buf, const bson_t *doc, bool comma, struct rm_thread *t);
mongoc_collection_t *rm_thread_collection(struct rm_thread *t, const char *db, const char *name);
/* A list's reply, or its cursor and client, released (may talk to MongoDB: killCursors). */
void rm_cursor_close(struct rm_job *j);
void rm_set_error(struct rm_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * json.c: doc as relaxed Extended JSON appended to out, the bytes
 * bson_as_relaxed_extended_json() gives; -1 where it gives NULL. buf is
 * the caller's (NULL: libbson writes it).
 */
int rm_json_doc(struct evbuffer *out, const bson_t *doc, struct rm_json_buf *buf);
void rm_json_buf_free(struct rm_json_buf *buf);

/*
 * batch.c: a get by ObjectId, with the gets like it that wait, in one find
 * (or alone); their ends posted. Or, while a find of gets of its
 * collection is under way, j waits for that find's thread to take it.
 */
void rm_run_gets(struct rm_job *j, struct rm_thread *t);
/* On the loop: j waits for a find of gets under way (true), or goes to the queue. */
bool rm_gets_wait(struct rm_job *j);
/* Gets waiting for a find under way: they count against queue_limit too. */
size_t rm_gets_waiting(struct readmongo *rm);

/* reply.c */
struct rm_job *rm_job_new(struct readmongo *rm, struct http_req *req, enum rm_op op,
    const char *coll);
void rm_job_free(struct rm_job *j);
void rm_submit(struct readmongo *rm, struct rm_job *j);
/* At shutdown: a list parked between batches ends now, on the loop. */
void rm_job_unpark(struct rm_job *j);

#endif
