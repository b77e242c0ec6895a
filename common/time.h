/*
 * Time helpers shared by every process: a monotonic clock in milliseconds,
 * and milliseconds as the struct timeval that libevent's timers take.
 */
#ifndef CLUSTERD_TIME_H
#define CLUSTERD_TIME_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds: for durations and deadlines, never dates. */
static inline uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline struct timeval
ms_tv(long long ms)
{
	return (struct timeval){ .tv_sec = (time_t)(ms / 1000),
	    .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
}

#endif
