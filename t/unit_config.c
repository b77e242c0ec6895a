/* The config parser: defaults, overrides, and an error naming file, key and problem. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/config.h"
#include "svc/service.h"
#include "t/tap.h"

#define MIN "\"listen\":[\"127.0.0.1:8080\"],\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"}]"

/* Parsed (conf/), then its routes resolved (svc/), as the master does. */
static struct config *
parse(const char *text, char *err, size_t errlen)
{
	struct config *cfg = config_parse("test.conf", text, strlen(text), NULL, err, errlen);

	if (cfg != NULL && svc_resolve_routes(cfg, err, errlen) == -1) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

static void
bad(const char *text, const char *want, const char *name)
{
	char err[1024] = "";
	struct config *cfg = parse(text, err, sizeof(err));

	if (!ok(cfg == NULL, name)) {
		config_free(cfg);
		return;
	}
	like(err, want, "  ... error names key and problem");
	ok(strncmp(err, "test.conf: ", 11) == 0, "  ... and the file");
}

int
main(void)
{
	char err[1024] = "";
	struct config *cfg;

	cfg = parse("// a comment\n{ /* inline */ " MIN " }", err, sizeof(err));
	if (!ok(cfg != NULL, "minimal config with comments parses"))
		printf("# %s\n", err);
	if (cfg != NULL) {
		is_int(cfg->nlisten, 1, "one listen address");
		ok(cfg->workers >= 1, "workers defaults to auto (online CPUs)");
		is_str(cfg->error_log, "stderr", "error_log defaults to stderr");
		is_int(cfg->log_level, LL_INFO, "log_level defaults to info");
		is_int(cfg->shutdown_timeout_ms, 10000, "shutdown_timeout_ms default");
		is_int(cfg->limits.max_header_bytes, 8192, "max_header_bytes default");
		is_int(cfg->limits.max_body_bytes, 1048576, "max_body_bytes default");
		is_int(cfg->limits.read_timeout_ms, 30000, "read_timeout_ms default");
		is_int(cfg->limits.keepalive_timeout_ms, 5000, "keepalive_timeout_ms default");
		ok(cfg->pid_file == NULL, "no pid file by default");
		is_int(cfg->heartbeat_interval_ms, 1000, "heartbeat_interval_ms default");
		is_int(cfg->worker_timeout_ms, 30000, "worker_timeout_ms default");
		is_int(cfg->max_requests, 0, "max_requests off by default");
		is_int(cfg->max_worker_rss_mb, 0, "max_worker_rss_mb off by default");
		ok(!cfg->worker_pid_header, "worker_pid_header off by default");
		is_str(cfg->routes[0].service->name, "dummy", "route service resolved");
		config_free(cfg);
	}

	cfg = parse("{\"listen\":[\"127.0.0.1:1\",\"[::1]:2\",\":3\"],\"workers\":3,"
	    "\"pid_file\":\"/tmp/x.pid\",\"log_level\":\"debug\",\"limits\":{\"read_timeout_ms\":5},"
	    "\"routes\":[{\"prefix\":\"/\",\"service\":\"dummy\"},{\"prefix\":\"/a/b\",\"service\":\"dummy\"}]}",
	    err, sizeof(err));
	if (!ok(cfg != NULL, "full config parses"))
		printf("# %s\n", err);
	if (cfg != NULL) {
		is_int(cfg->nlisten, 3, "three addresses, IPv4, IPv6 and wildcard");
		is_int(cfg->listen[1].ss.ss_family, AF_INET6, "[::1]:2 is IPv6");
		is_int(cfg->workers, 3, "workers 3");
		is_int(cfg->limits.read_timeout_ms, 5, "limits override one key");
		is_int(cfg->limits.max_header_bytes, 8192, "and keep the other defaults");
		is_int(cfg->log_level, LL_DEBUG, "log_level debug");
		config_free(cfg);
	}

	{
		char *ls[] = { "127.0.0.1:9" };
		struct config_overrides ov = { .workers = 5, .listen = ls, .nlisten = 1,
		    .pid_file = "/tmp/o.pid" };
		const char *text = "{" MIN ",\"workers\":2}";
		cfg = config_parse("t.conf", text, strlen(text), &ov, err, sizeof(err));
		ok(cfg != NULL && cfg->workers == 5 && cfg->nlisten == 1 &&
		    strcmp(cfg->listen[0].text, "127.0.0.1:9") == 0 &&
		    strcmp(cfg->pid_file, "/tmp/o.pid") == 0, "command-line overrides win");
		config_free(cfg);
	}

	bad("{" MIN ",\n \"workers\": ]}", "line 2, column 13", "invalid JSON says where");
	bad("{\n\n" MIN "\n", "line 4, column 1: invalid JSON: unexpected end of file", "unexpected end of file says where");
	bad("{" MIN "} x", "trailing data", "trailing data");
	bad("[]", "one JSON object", "not an object");
	/* strict: what json-c takes and a config must not have */
	bad("{" MIN ",\"routes\":[{\"prefix\":\"/e\",\"service\":\"dummy\"}]}",
	    "routes: line 1, column 75: a duplicate key", "a duplicate key is an error naming it");
	bad("{" MIN ",\"limits\":{\"max_body_bytes\":1,\n\"max_body_bytes\":2}}",
	    "limits.max_body_bytes: line 2, column 1: a duplicate key", "a nested duplicate key names its path");
	bad("{" MIN ",'workers':2,'workers':3}", "workers: line 1, column 87: a duplicate key",
	    "a duplicate key in single quotes");
	bad("{" MIN ",\"workers\":2,}", "test.conf: line 1, column 86: a trailing comma", "a trailing comma in an object");
	bad("{\"listen\":[\"127.0.0.1:8080\",],\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"}]}",
	    "test.conf: listen: line 1, column 28: a trailing comma", "a trailing comma in an array");
	bad("{" MIN ",\"pid_file\":\"/tmp/a\\u0000b\"}", "pid_file: line 1, column 93: a string holds \\u0000",
	    "\\u0000 in a string");
	bad("{\"listen\":[\"127.0.0.1:8080\\u0000x\"],\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"}]}",
	    "listen[0]: line 1, column 27: a string holds \\u0000", "\\u0000 in an array's string");
	cfg = parse("{" MIN ",\"worker_pid_header\":true}", err, sizeof(err));
	ok(cfg != NULL && cfg->worker_pid_header, "worker_pid_header: true");
	config_free(cfg);
	bad("{" MIN ",\"worker_pid_header\":1}", "worker_pid_header: expected true or false, got int",
	    "worker_pid_header: 1 is not a boolean");
	bad("{" MIN ",\"worker_pid_header\":\"yes\"}",
	    "worker_pid_header: expected true or false, got string", "... nor is \"yes\"");
	bad("{" MIN ",\"worker_rlimit_nofile\":3}", "worker_rlimit_nofile: 3 is too few",
	    "worker_rlimit_nofile 3 is too few");
	bad("{\"listen\":[\"localhost:8080\",\"127.0.0.1:8080\"],\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"}]}",
	    "listen[1]: duplicate address", "localhost:P beside 127.0.0.1:P");
	{
		/* comments, escapes and equal keys in different objects are fine */
		const char *text = "{ /* c */ \"listen\":[\"127.0.0.1:8080\"], // x\n"
		    "\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"},"
		    "{\"prefix\":\"/\\u0065\",\"service\":\"dummy\"}], \"limits\":{\"max_body_bytes\":5}}";
		cfg = config_parse("t.conf", text, strlen(text), NULL, err, sizeof(err));
		ok(cfg != NULL && cfg->nroutes == 2 && strcmp(cfg->routes[1].prefix, "/e") == 0,
		    "comments, escapes, one key in two objects: accepted");
		if (cfg == NULL)
			printf("# %s\n", err);
		config_free(cfg);
	}
	{
		/* 200k routes validate in O(n log n): a quadratic check takes minutes */
		size_t n = 200000, cap = n * 48 + 256, len = 0;
		char *text = malloc(cap);
		struct timespec t0, t1;
		len += (size_t)snprintf(text + len, cap - len, "{\"listen\":[\"127.0.0.1:8080\"],\"routes\":[");
		for (size_t i = 0; i < n; i++)
			len += (size_t)snprintf(text + len, cap - len, "%s{\"prefix\":\"/r%zu\",\"service\":\"dummy\"}",
			    i ? "," : "", i);
		len += (size_t)snprintf(text + len, cap - len, ",{\"prefix\":\"/r17\",\"service\":\"dummy\"}]}");
		clock_gettime(CLOCK_MONOTONIC, &t0);
		cfg = config_parse("t.conf", text, len, NULL, err, sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ok(cfg == NULL && strstr(err, "routes[200000].prefix: duplicate prefix \"/r17\" (also routes[17])") != NULL,
		    "a duplicate among 200001 routes is found");
		printf("# %ld ms\n", (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
		ok(t1.tv_sec - t0.tv_sec < 20, "  ... in well under 20 s");
		config_free(cfg);
		free(text);
	}
	bad("{" MIN ",\"wrokers\":2}", "wrokers: unknown key", "unknown key");
	bad("{\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"}]}", "listen: required",
	    "missing listen");
	bad("{\"listen\":[],\"routes\":[]}", "listen: expected a non-empty array", "empty listen");
	bad("{\"listen\":[\"nonsense\"],\"routes\":[]}", "listen[0]: \"nonsense\": expected host:port",
	    "bad address");
	bad("{\"listen\":[\"127.0.0.1:70000\"],\"routes\":[]}", "listen[0]: \"127.0.0.1:70000\": port",
	    "bad port");
	bad("{\"listen\":[\"127.0.0.1:1\",\"127.0.0.1:1\"],\"routes\":[]}", "listen[1]: duplicate address",
	    "duplicate address");
	bad("{" MIN ",\"workers\":0}", "workers: 0 is out of range (1 to 1024)", "zero workers");
	bad("{" MIN ",\"workers\":\"many\"}", "workers: expected a number or \"auto\"", "workers word");
	bad("{" MIN ",\"workers\":1.5}", "workers: expected an integer, got double", "workers fraction");
	bad("{" MIN ",\"log_level\":\"loud\"}", "log_level: \"loud\" is not one of", "bad log level");
	bad("{" MIN ",\"error_log\":5}", "error_log: expected a string, got int", "wrong type");
	bad("{" MIN ",\"shutdown_timeout_ms\":-1}", "shutdown_timeout_ms: -1 is out of range",
	    "negative timeout");
	bad("{" MIN ",\"limits\":{\"max_header_bytes\":10}}", "limits.max_header_bytes: 10 is out of range",
	    "limit too small");
	bad("{" MIN ",\"limits\":{\"colour\":1}}", "limits.colour: unknown key", "unknown limit");
	bad("{" MIN ",\"heartbeat_interval_ms\":500,\"worker_timeout_ms\":900}",
	    "worker_timeout_ms: 900 is less than twice heartbeat_interval_ms (500)",
	    "a worker timeout that one late beat would trip");
	bad("{" MIN ",\"heartbeat_interval_ms\":5}", "heartbeat_interval_ms: 5 is out of range",
	    "a heartbeat too fast");
	bad("{" MIN ",\"max_requests\":-1}", "max_requests: -1 is out of range", "negative max_requests");
	bad("{" MIN ",\"limits\":[]}", "limits: expected an object", "limits not an object");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[]}", "routes: expected a non-empty array", "no routes");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[{\"prefix\":\"/a\",\"service\":\"nope\"}]}",
	    "routes[0].service: unknown service \"nope\" (known: dummy", "unknown service");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[{\"prefix\":\"/a\"}]}",
	    "routes[0].service: required key is missing", "missing service");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[{\"prefix\":\"a\",\"service\":\"dummy\"}]}",
	    "routes[0].prefix: \"a\" must start with \"/\"", "relative prefix");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[{\"prefix\":\"/a/\",\"service\":\"dummy\"}]}",
	    "routes[0].prefix", "trailing slash prefix");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[{\"prefix\":\"/a\",\"service\":\"dummy\"},"
	    "{\"prefix\":\"/a\",\"service\":\"dummy\"}]}",
	    "routes[1].prefix: duplicate prefix \"/a\" (also routes[0])", "duplicate prefix");
	bad("{\"listen\":[\"127.0.0.1:1\"],\"routes\":[{\"prefix\":\"/a\",\"service\":\"dummy\",\"uri\":\"x\"}]}",
	    "routes[0].uri: unknown key", "an option the service does not take");

	{
		char text[8192];
		size_t n = (size_t)snprintf(text, sizeof(text), "{\"listen\":[");
		for (int i = 0; i < 65; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"127.0.0.1:%d\"",
			    i ? "," : "", 1000 + i);
		snprintf(text + n, sizeof(text) - n, "],\"routes\":[{\"prefix\":\"/d\",\"service\":\"dummy\"}]}");
		bad(text, "listen[64]: at most 64 addresses", "more than 64 addresses");
	}
	{
		int w;
		ok(config_workers_parse("auto", &w) == 0 && w == -1, "-w auto");
		ok(config_workers_parse("4", &w) == 0 && w == 4, "-w 4");
		ok(config_workers_parse("0", &w) == -1, "-w 0 rejected");
		ok(config_workers_parse("4x", &w) == -1, "-w 4x rejected");
	}
	/* conf/ alone knows no service: it keeps the name and the options. */
	cfg = config_parse("test.conf", "{" MIN "}", strlen("{" MIN "}"), NULL, err, sizeof(err));
	if (ok(cfg != NULL, "conf/ parses a route without resolving it")) {
		ok(cfg->routes[0].service == NULL, "  ... no service yet");
		is_str(cfg->routes[0].service_name, "dummy", "  ... the service's name kept");
		ok(cfg->routes[0].options != NULL, "  ... and the route's options");
		config_free(cfg);
	}
	cfg = config_load("/nonexistent/clusterd.conf", NULL, err, sizeof(err));
	ok(cfg == NULL, "missing file");
	like(err, "/nonexistent/clusterd.conf: No such file", "  ... names the file and the reason");
	return done_testing();
}
