/*
 * A worker's MongoDB threads. libmongoc blocks, so its calls never run on
 * the event loop: the loop submits jobs to a bounded queue, a few threads
 * run them, each with its own client from a mongoc_client_pool_t, and hand
 * results back as messages that the loop reads when an eventfd wakes it
 * (the way memcached hands connections to its threads).
 *
 * Threading rules: submit() and free() run on the loop thread; a job's
 * run() on a pool thread, which talks back only through post(); a
 * message's deliver() on the loop thread, in the order posted.
 */
#ifndef CLUSTERD_MONGO_POOL_H
#define CLUSTERD_MONGO_POOL_H

#include <stddef.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <mongoc/mongoc.h>

struct mongo_pool;

struct mongo_msg {
	void (*deliver)(struct mongo_msg *msg);
	STAILQ_ENTRY(mongo_msg) link;
};

struct mongo_job {
	/*
	 * client is NULL when the pool stopped before the job could run: the
	 * job must still post whatever message ends it.
	 */
	void (*run)(struct mongo_job *job, mongoc_client_t *client);
	STAILQ_ENTRY(mongo_job) link;
};

/* Starts nthreads threads; clients stays the caller's and must outlive the pool. */
struct mongo_pool *mongo_pool_new(struct event_base *base, mongoc_client_pool_t *clients,
    int nthreads, size_t queue_limit);
/* Queues job: 0, or -1 when queue_limit jobs already wait. */
int mongo_pool_submit(struct mongo_pool *p, struct mongo_job *job);
/* From a pool thread: msg->deliver(msg) will run on the loop. */
void mongo_pool_post(struct mongo_pool *p, struct mongo_msg *msg);
/*
 * Stops the threads once their current job returns (the caller must have
 * told running jobs to stop), runs the jobs still queued with no client,
 * delivers every message left, and frees the pool.
 */
void mongo_pool_free(struct mongo_pool *p);

#endif
