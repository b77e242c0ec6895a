/*
 * A worker's thread pool, for work that blocks (a database driver, disk
 * I/O), which must never run on the event loop. The loop submits jobs to a
 * bounded queue; a few threads run them and hand results back as messages
 * that the loop reads when an eventfd wakes it (the way memcached hands
 * connections to its threads), or, while jobs wait in the queue, on a
 * timer every millisecond, without a wake-up per result (the result that
 * leaves the queue empty still wakes it). Each thread may
 * keep a context of its own, made by thread_init (a database client, say)
 * and undone by thread_fini.
 *
 * Threading rules: submit(), depth() and free() run on the loop thread; a
 * job's run() on a pool thread, which talks back only through post(); a
 * message's deliver() on the loop thread, in the order posted, and it
 * must not free the pool; a job's cancel() on the loop thread, for a job
 * the pool stopped before it ran.
 */
#ifndef CLUSTERD_POOL_H
#define CLUSTERD_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <event2/event.h>

struct pool;

struct pool_msg {
	void (*deliver)(struct pool_msg *msg);
	STAILQ_ENTRY(pool_msg) link;
};

struct pool_job {
	void (*run)(struct pool_job *job, void *thread_ctx);
	/* Never ran (the pool is stopping): must still post what ends it. */
	void (*cancel)(struct pool_job *job);
	STAILQ_ENTRY(pool_job) link;
};

/*
 * Starts nthreads threads. thread_init(arg) runs first on each thread and
 * returns its context (NULL is a valid context); thread_fini(arg, ctx)
 * runs on it last. Either may be NULL. NULL with errno on failure.
 */
struct pool *pool_new(struct event_base *base, int nthreads, size_t queue_limit,
    void *(*thread_init)(void *arg), void (*thread_fini)(void *arg, void *ctx), void *arg);
/* Queues job: 0, or -1 when queue_limit jobs already wait. */
int pool_submit(struct pool *p, struct pool_job *job);
/*
 * Queues the next step of a job already admitted (a stream's next batch),
 * whatever the queue holds: 0, or -1 when the pool is stopping.
 */
int pool_resubmit(struct pool *p, struct pool_job *job);
/*
 * From a job's run(), on its pool thread: takes out of the queue, in
 * order, up to max more jobs that match(job, arg) accepts, into out, and
 * returns how many. The caller runs them together with its own (a batch);
 * each taken job still posts what ends it, as if it had run alone.
 */
size_t pool_take(struct pool *p, int (*match)(struct pool_job *job, void *arg), void *arg,
    struct pool_job **out, size_t max);
/* Jobs queued and not yet taken by a thread. */
size_t pool_depth(struct pool *p);
/*
 * Whether the loop collects results on its timer (jobs wait), and, if woken
 * is not NULL, whether a wake-up of the loop is on its way: for tests.
 */
bool pool_collecting(struct pool *p, bool *woken);
/* From a pool thread: msg->deliver(msg) will run on the loop. */
void pool_post(struct pool *p, struct pool_msg *msg);
/*
 * Stops the threads once their current job returns (the caller must have
 * told running jobs to stop), cancels the jobs still queued, delivers every
 * message left, and frees the pool.
 */
void pool_free(struct pool *p);

#endif
