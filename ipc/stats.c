#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "ipc/stats.h"

struct stats_shm *stats;

const uint64_t stats_bucket_us[STATS_BUCKETS] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

int
stats_map(void)
{
	void *p = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	stats = p;                       /* zero-filled: every counter starts at 0 */
	return 0;
}

int
stats_block_take(int slot)
{
	int n = atomic_load(&stats->nblocks);

	for (int b = 0; b < STATS_BLOCKS; b++) {
		if (atomic_load(&stats->blocks[b].live))
			continue;
		stats->blocks[b].slot = slot;
		atomic_store(&stats->blocks[b].live, 1);
		if (b >= n)
			atomic_store(&stats->nblocks, b + 1);
		return b;
	}
	return -1;
}

static void
fold_service(struct stats_service *to, struct stats_service *from)
{
	for (int c = 0; c < STATS_CODES; c++)
		stat_add(&to->requests[c], stat_get(&from->requests[c]));
	for (int k = 0; k < STATS_BUCKETS; k++)
		stat_add(&to->bucket[k], stat_get(&from->bucket[k]));
	stat_add(&to->duration_count, stat_get(&from->duration_count));
	stat_add(&to->duration_sum_us, stat_get(&from->duration_sum_us));
	stat_add(&to->response_bytes, stat_get(&from->response_bytes));
}

static bool
same_figure(const struct stats_figure *a, const char *route, const char *name,
    const char *label_value)
{
	return strcmp(a->route, route) == 0 && strcmp(a->name, name) == 0 &&
	    strcmp(a->label_value, label_value) == 0;
}

/* A counter of a worker gone: added to the retired one of the same key. */
static void
fold_figure(const struct stats_figure *f)
{
	struct stats_figure *r;

	for (int i = 0; i < STATS_RETIRED_FIGURES; i++) {
		r = &stats->retired_fig[i];
		if (atomic_load(&r->set) && same_figure(r, f->route, f->name, f->label_value)) {
			stat_add(&r->value, stat_get((stat_t *)&f->value));
			return;
		}
		if (!atomic_load(&r->set)) {
			r->counter = 1;
			memcpy(r->route, f->route, sizeof(r->route));
			memcpy(r->name, f->name, sizeof(r->name));
			memcpy(r->label, f->label, sizeof(r->label));
			memcpy(r->label_value, f->label_value, sizeof(r->label_value));
			stat_set(&r->value, stat_get((stat_t *)&f->value));
			atomic_store_explicit(&r->set, 1, memory_order_release);
			return;
		}
	}
	/* More distinct counters than places: the excess is lost, not miscounted. */
}

void
stats_block_retire(int b)
{
	struct stats_block *blk = &stats->blocks[b];

	/* Readers that overlap this see an odd or changed seq, and read again. */
	atomic_fetch_add_explicit(&stats->seq, 1, memory_order_acq_rel);
	atomic_thread_fence(memory_order_seq_cst);
	for (int s = 0; s < STATS_SERVICES; s++)
		fold_service(&stats->retired[s], &blk->svc[s]);
	for (int i = 0; i < STATS_FIGURES; i++)
		if (atomic_load(&blk->fig[i].set) && blk->fig[i].counter)
			fold_figure(&blk->fig[i]);
	memset((void *)blk->svc, 0, sizeof(blk->svc));
	memset((void *)blk->fig, 0, sizeof(blk->fig));
	stat_set(&blk->connections, 0);
	stat_set(&blk->in_flight, 0);
	atomic_thread_fence(memory_order_seq_cst);
	atomic_fetch_add_explicit(&stats->seq, 1, memory_order_acq_rel);
	atomic_store(&blk->live, 0);
}

void
stats_request(struct stats_block *b, int svc, int status, uint64_t duration_us,
    uint64_t bytes)
{
	struct stats_service *s = &b->svc[svc];
	int c = status / 100 - 1, k = 0;

	if (c < 0 || c >= STATS_CODES)
		c = STATS_CODES - 1;
	stat_add(&s->requests[c], 1);
	while (k < STATS_BUCKETS && duration_us > stats_bucket_us[k])
		k++;
	if (k < STATS_BUCKETS)           /* past the last bucket: only +Inf, that is count */
		stat_add(&s->bucket[k], 1);
	stat_add(&s->duration_count, 1);
	stat_add(&s->duration_sum_us, duration_us);
	stat_add(&s->response_bytes, bytes);
}

static void
copy_str(char *to, size_t len, const char *from)
{
	size_t n = from != NULL ? strnlen(from, len - 1) : 0;

	memcpy(to, from != NULL ? from : "", n);
	to[n] = '\0';
}

void
stats_figure(struct stats_block *b, int i, const char *route, const char *name,
    int counter, const char *label, const char *label_value, uint64_t value)
{
	struct stats_figure *f;

	if (i < 0 || i >= STATS_FIGURES)
		return;
	f = &b->fig[i];
	if (!atomic_load_explicit(&f->set, memory_order_relaxed)) {
		f->counter = counter;
		copy_str(f->route, sizeof(f->route), route);
		copy_str(f->name, sizeof(f->name), name);
		copy_str(f->label, sizeof(f->label), label);
		copy_str(f->label_value, sizeof(f->label_value), label_value);
		stat_set(&f->value, value);
		atomic_store_explicit(&f->set, 1, memory_order_release);
		return;
	}
	stat_set(&f->value, value);
}

static void
add_service(struct stats_view *v, int s, struct stats_service *from)
{
	for (int c = 0; c < STATS_CODES; c++)
		v->requests[s][c] += stat_get(&from->requests[c]);
	for (int k = 0; k < STATS_BUCKETS; k++)
		v->bucket[s][k] += stat_get(&from->bucket[k]);
	v->duration_count[s] += stat_get(&from->duration_count);
	v->duration_sum_us[s] += stat_get(&from->duration_sum_us);
	v->response_bytes[s] += stat_get(&from->response_bytes);
}

/* Adds a figure to the view, summed with those of the same key. */
static void
add_figure(struct stats_view *v, struct stats_figure *f)
{
	struct stats_figure_view *to;

	if (!atomic_load_explicit(&f->set, memory_order_acquire))
		return;
	for (size_t i = 0; i < v->nfig; i++) {
		to = &v->fig[i];
		if (strcmp(to->route, f->route) == 0 && strcmp(to->name, f->name) == 0 &&
		    strcmp(to->label_value, f->label_value) == 0) {
			to->value += stat_get(&f->value);
			return;
		}
	}
	if (v->nfig == STATS_RETIRED_FIGURES)
		return;
	to = &v->fig[v->nfig++];
	to->counter = f->counter;
	memcpy(to->route, f->route, sizeof(to->route));
	memcpy(to->name, f->name, sizeof(to->name));
	memcpy(to->label, f->label, sizeof(to->label));
	memcpy(to->label_value, f->label_value, sizeof(to->label_value));
	to->value = stat_get(&f->value);
}

static void
read_once(struct stats_view *v)
{
	int n = atomic_load(&stats->nblocks);

	memset(v, 0, sizeof(*v));
	v->workers = stat_get(&stats->workers);
	v->reloads_ok = stat_get(&stats->reloads_ok);
	v->reloads_failed = stat_get(&stats->reloads_failed);
	for (int r = 0; r < STATS_RESTART_REASONS; r++)
		v->restarts[r] = stat_get(&stats->restarts[r]);
	for (int s = 0; s < STATS_SLOTS; s++) {
		v->slots[s].rss_bytes = stat_get(&stats->slots[s].rss_bytes);
		v->slots[s].start_time = stat_get(&stats->slots[s].start_time);
	}
	for (int s = 0; s < STATS_SERVICES; s++)
		add_service(v, s, &stats->retired[s]);
	for (int i = 0; i < STATS_RETIRED_FIGURES; i++)
		add_figure(v, &stats->retired_fig[i]);
	for (int b = 0; b < n; b++) {
		struct stats_block *blk = &stats->blocks[b];
		if (!atomic_load(&blk->live))
			continue;
		v->connections += stat_get(&blk->connections);
		v->in_flight += stat_get(&blk->in_flight);
		for (int s = 0; s < STATS_SERVICES; s++)
			add_service(v, s, &blk->svc[s]);
		for (int i = 0; i < STATS_FIGURES; i++)
			add_figure(v, &blk->fig[i]);
	}
}

void
stats_read(struct stats_view *v)
{
	uint64_t before, after;

	/*
	 * The master folds rarely and quickly: a few tries always do. A master
	 * that died mid-fold leaves seq odd: then the worker must not spin for
	 * good (it exits when the master is gone), so the tries are bounded.
	 */
	for (int tries = 0; tries < 1000000; tries++) {
		if ((before = atomic_load_explicit(&stats->seq, memory_order_acquire)) & 1)
			continue;
		read_once(v);
		atomic_thread_fence(memory_order_acquire);
		after = atomic_load_explicit(&stats->seq, memory_order_acquire);
		if (before == after)
			return;
	}
	read_once(v);
}
