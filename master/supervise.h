/*
 * The supervision of live workers, as policy: which worker is hung (its
 * loop silent past worker_timeout_ms) and which has earned recycling
 * (max_requests plus its own jitter, max_worker_rss_mb). The master acts on
 * the verdicts; nothing here sends a signal or forks.
 */
#ifndef CLUSTERD_SUPERVISE_H
#define CLUSTERD_SUPERVISE_H

#include <stdint.h>
#include <sys/types.h>

/* Why a worker was replaced: the reasons of clusterd_worker_restarts_total. */
enum restart_reason {
	REASON_CRASH, REASON_HUNG, REASON_MAX_REQUESTS, REASON_MAX_RSS, REASON_RELOAD,
	REASON_SCALE, REASON_COUNT
};

extern const char *const restart_reason_names[REASON_COUNT];

struct supervise_limits {
	uint64_t worker_timeout_ms;      /* 0: never hung */
	uint64_t max_rss_bytes;          /* 0: no limit */
};

/* What the master knows of one live worker. */
struct supervised {
	uint64_t last_beat_ms;           /* its loop's last heartbeat (or its fork) */
	uint64_t requests;               /* served, from its last heartbeat */
	uint64_t max_requests;           /* its own limit, jitter included (0: none) */
	uint64_t rss_bytes;              /* from /proc at the last tick */
	int rss_over_at_start;           /* already over the limit when new: never recycled for it */
};

enum verdict { V_FINE, V_HUNG, V_MAX_REQUESTS, V_MAX_RSS };

enum verdict supervise_check(const struct supervise_limits *lim, const struct supervised *w,
    uint64_t now_ms);
/* A worker's request limit: max + a uniform 0..jitter from rnd (0: no limit). */
uint64_t supervise_request_limit(uint64_t max, uint64_t jitter, uint64_t rnd);
/* The resident set of pid in bytes, from /proc/pid/statm; 0 when unknown. */
uint64_t proc_rss_bytes(pid_t pid);

#endif
