#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "master/supervise.h"

const char *const restart_reason_names[REASON_COUNT] = {
	"crash", "hung", "max_requests", "max_rss", "reload", "scale"
};

enum verdict
supervise_check(const struct supervise_limits *lim, const struct supervised *w,
    uint64_t now_ms)
{
	if (lim->worker_timeout_ms > 0 && now_ms > w->last_beat_ms &&
	    now_ms - w->last_beat_ms > lim->worker_timeout_ms)
		return V_HUNG;
	if (w->max_requests > 0 && w->requests >= w->max_requests)
		return V_MAX_REQUESTS;
	if (lim->max_rss_bytes > 0 && w->rss_bytes > lim->max_rss_bytes && !w->rss_over_at_start)
		return V_MAX_RSS;
	return V_FINE;
}

uint64_t
supervise_request_limit(uint64_t max, uint64_t jitter, uint64_t rnd)
{
	if (max == 0)
		return 0;
	return max + (jitter == UINT64_MAX ? rnd : rnd % (jitter + 1));
}

uint64_t
proc_rss_bytes(pid_t pid)
{
	char path[64], buf[128];
	unsigned long long size, resident;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
