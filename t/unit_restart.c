/* The restart policy: immediate first, then doubling to a cap, reset when stable. */
#include "config.h"

#include "master/restart.h"
#include "t/tap.h"

int
main(void)
{
	struct restart r = { 0 };

	is_int(restart_delay(&r, 10), 0, "first quick death: restart at once");
	is_int(restart_delay(&r, 10), RESTART_MIN_MS, "second: the minimum delay");
	is_int(restart_delay(&r, 10), 2 * RESTART_MIN_MS, "third: doubled");
	is_int(restart_delay(&r, 10), 4 * RESTART_MIN_MS, "fourth: doubled again");
	for (int i = 0; i < 40; i++)
		restart_delay(&r, 10);
	is_int(restart_delay(&r, 10), RESTART_MAX_MS, "a long crash loop stays at the cap");
	is_int(restart_delay(&r, RESTART_STABLE_MS), 0, "a worker that lived a stable minute resets");
	is_int(restart_delay(&r, RESTART_STABLE_MS - 1), RESTART_MIN_MS,
	    "and the back-off starts again from the minimum");
	return done_testing();
}
