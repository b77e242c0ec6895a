/*
 * The cluster's figures in shared memory, the second channel between the
 * master and its workers (nginx's stub_status counters work this way).
 *
 * The master maps one segment before it forks anything. Each live worker
 * owns one block, given to it at fork, and is the only writer of its
 * counters: single-writer relaxed atomics, so the hot path takes no lock
 * and no locked instruction. Any worker's metrics service reads every block
 * to answer for the whole cluster, with no round trip through the master.
 * When a worker is gone, the master folds its counters into the retired
 * totals and frees its block, inside a sequence lock that readers retry
 * on, so a counter never goes down and never counts twice.
 */
#ifndef CLUSTERD_STATS_H
#define CLUSTERD_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STATS_SERVICES 16            /* kinds of service (registry order), the last: none */
#define STATS_CODES 5                /* 1xx .. 5xx */
#define STATS_BUCKETS 16             /* request duration buckets, +Inf aside */
#define STATS_FIGURES 48             /* service figures per worker */
#define STATS_RETIRED_FIGURES 256    /* distinct counters kept from workers gone */
#define STATS_SLOTS 1024             /* per-slot gauges */
#define STATS_BLOCKS 2176            /* two generations of 1024 slots, and spares */
#define STATS_RESTART_REASONS 6

typedef _Atomic uint64_t stat_t;

/* The upper bounds of the duration buckets, in microseconds. */
extern const uint64_t stats_bucket_us[STATS_BUCKETS];

struct stats_service {
	stat_t requests[STATS_CODES];
	stat_t bucket[STATS_BUCKETS];    /* not cumulative: the readers add up */
	stat_t duration_count;
	stat_t duration_sum_us;
	stat_t response_bytes;
};

/* A figure a service reported: strings set once, before `set`, then only value. */
struct stats_figure {
	_Atomic int set;
	int counter;                     /* 1: a counter, 0: a gauge */
	char route[64];
	char name[48];
	char label[16];
	char label_value[32];
	stat_t value;
};

struct stats_block {
	_Atomic int live;                /* owned by a worker */
	int slot;
	stat_t connections, in_flight;   /* gauges */
	struct stats_service svc[STATS_SERVICES];
	struct stats_figure fig[STATS_FIGURES];
} __attribute__((aligned(64)));

struct stats_slot {
	stat_t rss_bytes;
	stat_t start_time;               /* unix seconds; 0: no worker */
};

struct stats_shm {
	_Atomic uint64_t seq;            /* odd while the master folds a block */
	stat_t workers;                  /* worker processes alive */
	stat_t reloads_ok, reloads_failed;
	stat_t restarts[STATS_RESTART_REASONS];
	_Atomic int nblocks;             /* blocks ever used: readers look no further */
	struct stats_slot slots[STATS_SLOTS];
	struct stats_service retired[STATS_SERVICES];
	struct stats_figure retired_fig[STATS_RETIRED_FIGURES];
	struct stats_block blocks[STATS_BLOCKS];
};

/* The segment: mapped by the master, inherited by every worker. */
extern struct stats_shm *stats;

/* ---- the master ---- */
int stats_map(void);
/* A free block for a worker about to fork, made live; -1 when none is left. */
int stats_block_take(int slot);
/* The worker of block b is gone: its counters join the retired totals. */
void stats_block_retire(int b);

/* ---- a worker: its own block; single writer ---- */
static inline void
stat_add(stat_t *s, uint64_t n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

static inline void
stat_set(stat_t *s, uint64_t v)
{
	atomic_store_explicit(s, v, memory_order_relaxed);
}

static inline uint64_t
stat_get(stat_t *s)
{
	return atomic_load_explicit(s, memory_order_relaxed);
}

/* One request done: its service index, status, duration and bytes. */
void stats_request(struct stats_block *b, int svc, int status, uint64_t duration_us,
    uint64_t bytes);
/* A service's figure, in the i-th place of the block (the same every time). */
void stats_figure(struct stats_block *b, int i, const char *route, const char *name,
    int counter, const char *label, const char *label_value, uint64_t value);

/* ---- readers ---- */
struct stats_view {
	uint64_t workers, reloads_ok, reloads_failed, restarts[STATS_RESTART_REASONS];
	uint64_t connections, in_flight;
	uint64_t requests[STATS_SERVICES][STATS_CODES];
	uint64_t bucket[STATS_SERVICES][STATS_BUCKETS];
	uint64_t duration_count[STATS_SERVICES], duration_sum_us[STATS_SERVICES];
	uint64_t response_bytes[STATS_SERVICES];
	struct stats_slot_view { uint64_t rss_bytes, start_time; } slots[STATS_SLOTS];
	struct stats_figure_view {
		int counter;
		char route[64], name[48], label[16], label_value[32];
		uint64_t value;
	} fig[STATS_RETIRED_FIGURES];
	size_t nfig;
};

/* The whole cluster at one instant: retired totals plus every live block. */
void stats_read(struct stats_view *v);

#endif
