/*
 * Longest-prefix routing on whole path segments; the router's drain and
 * figures over every route's service.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conf/config.h"
#include "svc/service.h"
#include "t/tap.h"
#include "worker/router.h"

/* A service that holds something long-lived: its drain finishes later. */
static void (*held_done)(void *);
static void *held_arg;
static int drains, router_drained;

static void *
fake_init(const struct route_conf *route, const struct worker_info *w)
{
	(void)route;
	(void)w;
	return &drains;
}

static void
fake_handle(void *state, struct http_req *req, const char *subpath)
{
	(void)state;
	(void)req;
	(void)subpath;
}

static void
fake_drain(void *state, void (*done)(void *), void *arg)
{
	(void)state;
	drains++;
	held_done = done;
	held_arg = arg;
}

static void
fake_stats(void *state, svc_emit emit, void *ctx)
{
	struct svc_figure f = { .name = "fake_things", .kind = SVC_GAUGE, .value = 7 };

	(void)state;
	emit(ctx, &f);
}

static void
fake_shutdown(void *state)
{
	(void)state;
}

static const struct service holding = {
	.name = "holding", .methods = 1, .init = fake_init, .handle = fake_handle,
	.drain = fake_drain, .stats = fake_stats, .shutdown = fake_shutdown,
};
static const struct service plain = {
	.name = "plain", .methods = 1, .init = fake_init, .handle = fake_handle,
	.shutdown = fake_shutdown,
};

static void
on_drained(void *arg)
{
	(void)arg;
	router_drained++;
}

static char seen[256];

static void
on_figure(void *ctx, const char *prefix, const struct svc_figure *f)
{
	(void)ctx;
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s %s=%llu;", prefix,
	    f->name, (unsigned long long)f->value);
}

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

	{
		struct route_conf rs[] = {
			{ .prefix = "/a", .prefix_len = 2, .service = &plain },
			{ .prefix = "/b", .prefix_len = 2, .service = &holding },
			{ .prefix = "/c", .prefix_len = 2, .service = &plain },
		};
		struct config cfg = { .routes = rs, .nroutes = 3 };
		struct worker_info w = { 0 };
		struct router *r = router_new(&cfg, &w);

		ok(r != NULL, "a router over three routes");
		router_stats(r, on_figure, NULL);
		is_str(seen, "/b fake_things=7;", "figures come from the services that have them, "
		    "with their route");
		router_drain(r, on_drained, NULL);
		is_int(drains, 1, "the drain reaches the service that holds something");
		is_int(router_drained, 0, "... and waits for it");
		if (held_done != NULL)
			held_done(held_arg);
		is_int(router_drained, 1, "done once that service is done");
		router_free(r);

		struct route_conf ps[] = { { .prefix = "/a", .prefix_len = 2, .service = &plain } };
		struct config cfg2 = { .routes = ps, .nroutes = 1 };
		router_drained = 0;
		r = router_new(&cfg2, &w);
		router_drain(r, on_drained, NULL);
		is_int(router_drained, 1, "services that hold nothing: done at once");
		router_free(r);
	}
	return done_testing();
}
