/* The supervision policy: hung, recycling by requests (with jitter) and by size. */
#include "config.h"

#include <unistd.h>

#include "master/supervise.h"
#include "t/tap.h"

int
main(void)
{
	struct supervise_limits lim = { .worker_timeout_ms = 1000, .max_rss_bytes = 100 << 20 };
	struct supervised w = { .last_beat_ms = 5000, .requests = 10, .max_requests = 100,
	    .rss_bytes = 50 << 20 };

	is_int(supervise_check(&lim, &w, 5500), V_FINE, "a worker that beat 500 ms ago is fine");
	is_int(supervise_check(&lim, &w, 6000), V_FINE, "... and at exactly worker_timeout_ms");
	is_int(supervise_check(&lim, &w, 6001), V_HUNG, "past worker_timeout_ms it is hung");
	is_int(supervise_check(&lim, &w, 4000), V_FINE, "a beat from the future is not a hang");
	lim.worker_timeout_ms = 0;
	is_int(supervise_check(&lim, &w, 1000000), V_FINE, "worker_timeout_ms 0: never hung");
	w.requests = 100;
	is_int(supervise_check(&lim, &w, 5500), V_MAX_REQUESTS, "its own max_requests reached");
	w.max_requests = 0;
	is_int(supervise_check(&lim, &w, 5500), V_FINE, "max_requests 0: never");
	w.rss_bytes = (100 << 20) + 1;
	is_int(supervise_check(&lim, &w, 5500), V_MAX_RSS, "over max_worker_rss_mb");
	w.rss_over_at_start = 1;
	is_int(supervise_check(&lim, &w, 5500), V_FINE, "... unless it was so from the start");
	w.rss_over_at_start = 0;
	lim.max_rss_bytes = 0;
	is_int(supervise_check(&lim, &w, 5500), V_FINE, "max_worker_rss_mb 0: no limit");

	is_int((long long)supervise_request_limit(0, 50, 7), 0, "no max_requests, no limit");
	is_int((long long)supervise_request_limit(1000, 0, 12345), 1000, "no jitter: the limit itself");
	{
		int lo = 0, hi = 0, inside = 1;
		for (uint64_t r = 0; r < 1000; r++) {
			uint64_t l = supervise_request_limit(1000, 50, r * 7919);
			inside &= l >= 1000 && l <= 1050;
			lo |= l == 1000;
			hi |= l == 1050;
		}
		ok(inside, "jitter adds 0..jitter");
		ok(lo && hi, "... both ends included");
	}
	ok(proc_rss_bytes(getpid()) > 100 * 1024, "our own RSS from /proc");
	is_int((long long)proc_rss_bytes(0x7ffffff0), 0, "0 for a process that does not exist");
	return done_testing();
}
