/*
 * The generic thread pool: jobs run on pool threads with the context their
 * thread_init made, results come back on the loop in the order posted, the
 * queue is bounded, freeing the pool cancels what never ran, and a running
 * job can take queued jobs that match along (pool_take).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common/util.h"
#include "t/tap.h"
#include "worker/pool.h"

#define NJOBS 200

static struct pool *pool;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inits, finis, gate_open, delivered, cancelled, bad_ctx, loop_thread_runs;
static int order[NJOBS], norder;
static pthread_t loop_thread;

struct job {
	struct pool_job pj;
	struct pool_msg done;
	int id;
	int gated;                   /* waits until gate_open is at least this */
	int taker;                   /* then takes the even ids queued, 3 at most */
	int was_cancelled;
};

static int took[NJOBS], ntook;
static size_t depth_after_take;

static void *
thread_init(void *arg)
{
	int *ctx = malloc(sizeof(*ctx));

	pthread_mutex_lock(&mu);
	*ctx = ++inits;
	pthread_mutex_unlock(&mu);
	(void)arg;
	return ctx;
}

static void
thread_fini(void *arg, void *ctx)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	finis++;
	pthread_mutex_unlock(&mu);
	free(ctx);
}

static void
deliver(struct pool_msg *m)
{
	struct job *j = container_of(m, struct job, done);

	if (pthread_equal(pthread_self(), loop_thread))
		loop_thread_runs++;
	if (j->was_cancelled)
		cancelled++;
	else if (norder < NJOBS)
		order[norder++] = j->id;
	delivered++;
	free(j);
}

static int
even(struct pool_job *pj, void *arg)
{
	(void)arg;
	return container_of(pj, struct job, pj)->id % 2 == 0;
}

static void
run(struct pool_job *pj, void *ctx)
{
	struct job *j = container_of(pj, struct job, pj);
	int *n = ctx;

	if (n == NULL || *n < 1 || *n > 2) {
		pthread_mutex_lock(&mu);
		bad_ctx++;
		pthread_mutex_unlock(&mu);
	}
	if (j->gated) {
		pthread_mutex_lock(&mu);
		while (gate_open < j->gated)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	if (j->taker) {
		struct pool_job *out[3];
		size_t got = pool_take(pool, even, NULL, out, 3);
		depth_after_take = pool_depth(pool);
		for (size_t i = 0; i < got; i++) {
			struct job *t = container_of(out[i], struct job, pj);
			took[ntook++] = t->id;
			pool_post(pool, &t->done);
		}
	}
	pool_post(pool, &j->done);
}

static void
cancel(struct pool_job *pj)
{
	struct job *j = container_of(pj, struct job, pj);

	j->was_cancelled = 1;
	pool_post(pool, &j->done);
}

static struct job *
job_new(int id, int gated)
{
	struct job *j = calloc(1, sizeof(*j));

	j->pj.run = run;
	j->pj.cancel = cancel;
	j->done.deliver = deliver;
	j->id = id;
	j->gated = gated;
	return j;
}

static void
submit(int id, int gated)
{
	pool_submit(pool, &job_new(id, gated)->pj);
}

static void *
free_pool(void *arg)
{
	(void)arg;
	pool_free(pool);
	return NULL;
}

/* Polls until no job waits in the queue; 1, or 0 after 10 s. */
static int
wait_depth(size_t want)
{
	struct timespec ms = { 0, 1000000 };

	for (int i = 0; i < 10000; i++) {
		if (pool_depth(pool) == want)
			return 1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

/* Lets the jobs gated at level or below go on. */
static void
open_gate_to(int level)
{
	pthread_mutex_lock(&mu);
	gate_open = level;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void
open_gate(void)
{
	open_gate_to(1);
}

/* Polls until a wake-up of the loop is on its way; 1, or 0 after 10 s. */
static int
wait_woken(void)
{
	struct timespec ms = { 0, 1000000 };
	bool woken;

	for (int i = 0; i < 10000; i++) {
		pool_collecting(pool, &woken);
		if (woken)
			return 1;
		nanosleep(&ms, NULL);
	}
	return 0;
}

/*
 * pool_free() on another thread, with jobs held at the gate: once it has
 * taken the queue (depth 0), the gate opens and the held jobs finish.
 */
static void
free_held_pool(const char *took_queue)
{
	pthread_t t;

	pthread_create(&t, NULL, free_pool, NULL);
	ok(wait_depth(0), took_queue);
	open_gate();
	pthread_join(t, NULL);
}

/* Runs the loop until want messages were delivered, or 10 s passed. */
static void
loop_until(struct event_base *base, int want)
{
	struct timeval tick = { 0, 10000 };

	for (int i = 0; i < 1000 && delivered < want; i++) {
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
}

int
main(void)
{
	struct event_base *base = event_base_new();
	int sorted = 1;

	loop_thread = pthread_self();
	pool = pool_new(base, 1, NJOBS, thread_init, thread_fini, NULL);
	ok(pool != NULL, "a pool of one thread");
	for (int i = 0; i < NJOBS; i++)
		submit(i, 0);
	loop_until(base, NJOBS);
	is_int(delivered, NJOBS, "every job's message is delivered on the loop");
	is_int(loop_thread_runs, NJOBS, "... on the loop's thread");
	for (int i = 0; i < norder; i++)
		sorted &= order[i] == i;
	ok(sorted, "one thread: messages come in the order posted");
	is_int(inits, 1, "thread_init ran once for the thread");
	is_int(bad_ctx, 0, "every job saw its thread's context");
	pool_free(pool);
	is_int(finis, 1, "thread_fini ran when the pool was freed");

	/*
	 * pool_take: one thread, held at the gate by a job that then takes
	 * the even ids of the ten queued behind it: 2, 4 and 6, in order. The
	 * other seven run as usual, each once, and the thread does not wait
	 * on the posts of the three taken (the pool would not drain).
	 */
	delivered = norder = 0;
	gate_open = 0;
	pool = pool_new(base, 1, NJOBS, thread_init, thread_fini, NULL);
	{
		struct job *t = job_new(0, 1);
		t->taker = 1;
		pool_submit(pool, &t->pj);
	}
	ok(wait_depth(0), "pool_take: the taker runs");
	for (int i = 1; i <= 10; i++)
		submit(i, 0);
	open_gate();
	loop_until(base, 11);
	is_int(ntook, 3, "pool_take took max jobs");
	ok(ntook == 3 && took[0] == 2 && took[1] == 4 && took[2] == 6, "... the matching ones, in queue order");
	is_int((long long)depth_after_take, 7, "... out of the queue");
	is_int(delivered, 11, "every job delivered");
	{
		int seen[11] = { 0 }, once = 1;
		for (int i = 0; i < norder; i++)
			if (order[i] >= 0 && order[i] <= 10)
				seen[order[i]]++;
		for (int i = 0; i <= 10; i++)
			once &= seen[i] == 1;
		ok(once, "... each once");
	}
	pool_free(pool);
	gate_open = 0;

	/*
	 * Collecting: one thread held at the gate and a job queued behind it
	 * (more jobs than threads) turn the eventfd's wake-up per result into
	 * the loop's timer; the timer delivers both, in order, and once no job
	 * waits the pool is back to a wake-up per result, which delivers a
	 * lone job as before.
	 */
	delivered = norder = 0;
	pool = pool_new(base, 1, NJOBS, thread_init, thread_fini, NULL);
	submit(0, 1);
	ok(wait_depth(0), "collecting: the first job runs");
	ok(!pool_collecting(pool, NULL), "... one job, one thread: a wake-up per result");
	submit(1, 0);
	ok(pool_collecting(pool, NULL), "... a second job waits: the loop collects on its timer");
	open_gate();
	loop_until(base, 2);
	ok(delivered == 2 && order[0] == 0 && order[1] == 1, "... which delivers both, in order");
	ok(!pool_collecting(pool, NULL), "... and stops once no job waits");
	gate_open = 0;
	submit(2, 0);
	loop_until(base, 3);
	ok(delivered == 3 && order[2] == 2, "... a lone job after it is delivered");
	ok(!pool_collecting(pool, NULL), "... without the timer");
	/*
	 * A tick with nothing to deliver ends collecting: the held job cannot
	 * post, so the first tick finds nothing, and the loop does not tick on
	 * for as long as a slow job runs. Its result and the next wake the loop.
	 */
	submit(6, 1);
	ok(wait_depth(0), "... a job held");
	submit(7, 0);
	ok(pool_collecting(pool, NULL), "... and one behind it: collecting");
	{
		struct timeval ms20 = { 0, 20000 };
		event_base_loopexit(base, &ms20);
		event_base_dispatch(base);
	}
	ok(delivered == 3 && !pool_collecting(pool, NULL), "... a tick that finds nothing ends it");
	open_gate();
	loop_until(base, 5);
	ok(delivered == 5 && order[3] == 6 && order[4] == 7, "... and both results come, in order");
	gate_open = 0;
	/*
	 * While collecting, a result that leaves jobs waiting does not wake
	 * the loop, but the one that leaves none does: the threads are about
	 * to run dry, and the loop delivers and reads the next requests at
	 * once instead of at its tick. One thread: jobs 10, 11 and 12 held
	 * at gates 1, 2 and 3.
	 */
	{
		bool woken = true;

		submit(10, 1);
		ok(wait_depth(0), "... a job held");
		submit(11, 2);
		submit(12, 3);
		ok(pool_collecting(pool, NULL), "... two behind it: collecting");
		open_gate_to(1);
		ok(wait_depth(1), "... the first posts, the next runs");
		ok(pool_collecting(pool, &woken) && !woken, "... a result while two jobs wait: no wake-up");
		open_gate_to(2);
		ok(wait_depth(0), "... the second posts, the last runs");
		ok(pool_collecting(pool, &woken) && !woken, "... a result while one job waits: no wake-up");
		open_gate_to(3);
		ok(wait_woken(), "... the result that leaves no job waiting wakes the loop");
		loop_until(base, 8);
		ok(delivered == 8 && order[5] == 10 && order[6] == 11 && order[7] == 12,
		    "... which delivers them, in order");
		gate_open = 0;
	}
	/* The timer pending when the pool is freed: freed with it, messages delivered. */
	submit(3, 1);
	ok(wait_depth(0), "... a job held again");
	submit(4, 0);
	submit(5, 0);
	ok(pool_collecting(pool, NULL), "... and two behind it: collecting");
	free_held_pool("pool_free took the queue while collecting");
	is_int(delivered, 11, "... every message delivered, the timer freed");
	gate_open = 0;

	/* Two threads held at a gate, a bounded queue of three behind them. */
	inits = finis = delivered = norder = cancelled = 0;
	pool = pool_new(base, 2, 3, thread_init, thread_fini, NULL);
	submit(0, 1);
	submit(1, 1);
	ok(wait_depth(0), "both threads took a job");
	for (int i = 2; i < 5; i++)
		submit(i, 0);
	is_int((long long)pool_depth(pool), 3, "depth counts the waiting jobs");
	{
		struct job *extra = job_new(99, 0);
		is_int(pool_submit(pool, &extra->pj), -1, "a full queue refuses the next job");
		free(extra);
	}
	/* The two running jobs finish, the three queued ones are cancelled, never run. */
	free_held_pool("pool_free took the queue");
	is_int(delivered, 5, "pool_free delivers every message left");
	is_int(norder, 2, "the two running jobs finished");
	is_int(cancelled, 3, "the three queued jobs were cancelled");
	is_int(inits, 2, "two threads, two contexts");
	is_int(finis, 2, "both undone");
	event_base_free(base);
	return done_testing();
}
