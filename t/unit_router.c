/* Longest-prefix routing on whole path segments. */
#include "config.h"

#include <string.h>

#include "worker/router.h"
#include "t/tap.h"

static struct route_conf routes[] = {
	{ .prefix = "/api" }, { .prefix = "/api/v2" }, { .prefix = "/dummy" },
	{ .prefix = "/api/v2/users" },
};
#define N (sizeof(routes) / sizeof(routes[0]))

static void
check(const char *path, int want, const char *want_sub)
{
	const char *sub = NULL;
	char name[128];
	int got = router_match(routes, N, path, &sub);

	snprintf(name, sizeof(name), "%s -> %d", path, want);
	is_int(got, want, name);
	if (want >= 0) {
		snprintf(name, sizeof(name), "%s: subpath \"%s\"", path, want_sub);
		is_str(sub, want_sub, name);
	}
}

int
main(void)
{
	for (size_t i = 0; i < N; i++)
		routes[i].prefix_len = strlen(routes[i].prefix);
	check("/api", 0, "");
	check("/api/", 0, "/");
	check("/api/x", 0, "/x");
	check("/apix", -1, NULL);
	check("/api/v2", 1, "");
	check("/api/v2/users/7", 3, "/7");
	check("/api/v2x", 0, "/v2x");
	check("/dummy/delay", 2, "/delay");
	check("/", -1, NULL);
	check("/other", -1, NULL);

	/* "/" is the catch-all and loses to any longer match. */
	struct route_conf with_root[] = { { .prefix = "/", .prefix_len = 1 },
		{ .prefix = "/a", .prefix_len = 2 } };
	const char *sub;
	is_int(router_match(with_root, 2, "/zzz", &sub), 0, "/ catches what nothing else takes");
	is_str(sub, "/zzz", "and hands over the whole path");
	is_int(router_match(with_root, 2, "/a/b", &sub), 1, "a longer prefix beats /");
	is_int(router_match(with_root + 1, 1, "/", &sub), -1, "no catch-all, no match");
	return done_testing();
}
