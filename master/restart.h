/*
 * The restart policy of a worker slot. A worker that dies unexpectedly is
 * replaced at once the first time; if its replacements keep dying young, the
 * delay doubles from RESTART_MIN_MS up to RESTART_MAX_MS, so a crash loop
 * cannot become a fork storm. A worker that lived RESTART_STABLE_MS resets
 * the slot's count.
 */
#ifndef CLUSTERD_RESTART_H
#define CLUSTERD_RESTART_H

#include <stdint.h>

#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 10000
#define RESTART_STABLE_MS 60000

struct restart {
	unsigned failures;           /* quick deaths in a row */
};

/* The delay before the next fork of a slot whose worker lived lived_ms. */
uint64_t restart_delay(struct restart *r, uint64_t lived_ms);

#endif
