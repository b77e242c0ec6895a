#include "config.h"

#include "master/restart.h"

uint64_t
restart_delay(struct restart *r, uint64_t lived_ms)
{
	uint64_t delay;

	if (lived_ms >= RESTART_STABLE_MS)
		r->failures = 0;
	if (r->failures == 0)
		delay = 0;
	else if (r->failures > 20)   /* no shift past the cap */
		delay = RESTART_MAX_MS;
	else
		delay = (uint64_t)RESTART_MIN_MS << (r->failures - 1);
	if (delay > RESTART_MAX_MS)
		delay = RESTART_MAX_MS;
	r->failures++;
	return delay;
}
