/*
 * clusterd: a prefork HTTP server. This file is the command line only.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "master/control.h"
#include "master/master.h"
#include "master/paths.h"
#include "master/pidfile.h"

#define DEFAULT_CONFIG SYSCONFDIR "/clusterd/clusterd.conf"
#define MAX_LISTEN_FLAGS 64

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: clusterd [-c file] [-w n|auto] [-l addr]... [-p file] [-t] [-s signal [--json]] [-V] [-h]\n"
	    "  -c, --config FILE     config file (default %s)\n"
	    "  -w, --workers N|auto  override \"workers\"\n"
	    "  -l, --listen ADDR     override \"listen\"; repeatable; host:port, [v6addr]:port or :port\n"
	    "  -p, --pid-file FILE   override \"pid_file\"\n"
	    "  -t, --test-config     check the config, print \"ok\" or the error, exit 0 or 1\n"
	    "  -s, --signal SIG      send reload|stop|quit|reopen to the master named in the pid file,\n"
	    "                        or print its status (-s status [--json])\n"
	    "      --json            with -s status: one JSON object instead of a table\n"
	    "  -V, --version         print the version and exit\n"
	    "  -h, --help            print this help and exit\n", DEFAULT_CONFIG);
}

/* "42s", "3m07s", "5h02m", "2d03h" */
static const char *
duration(long long s, char *buf, size_t len)
{
	if (s >= 86400)
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, len, "%llds", s);
	return buf;
}

static long long
get_int(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? (long long)json_object_get_int64(v) : 0;
}

static const char *
get_str(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

/* The status document as a table: one line per worker, then the master's. */
static void
print_status(json_object *doc)
{
	json_object *m = NULL, *ws = NULL, *lr = NULL;
	char up[32];

	json_object_object_get_ex(doc, "master", &m);
	json_object_object_get_ex(doc, "workers", &ws);
	printf("%-5s %-8s %-4s %-9s %-8s %-10s %-6s %s\n", "SLOT", "PID", "GEN", "STATE",
	    "UPTIME", "REQUESTS", "CONNS", "RSS");
	for (size_t i = 0; ws != NULL && i < json_object_array_length(ws); i++) {
		json_object *w = json_object_array_get_idx(ws, i);
		printf("%-5lld %-8lld %-4lld %-9s %-8s %-10lld %-6lld %.1f MB\n", get_int(w, "slot"),
		    get_int(w, "pid"), get_int(w, "generation"), get_str(w, "state"),
		    duration(get_int(w, "uptime_s"), up, sizeof(up)), get_int(w, "requests"),
		    get_int(w, "connections"), (double)get_int(w, "rss_bytes") / (1 << 20));
	}
	json_object_object_get_ex(m, "last_reload", &lr);
	printf("master %lld, generation %lld, %lld worker(s), %s, up %s", get_int(m, "pid"),
	    get_int(m, "generation"), get_int(m, "workers"), get_str(m, "state"),
	    duration(get_int(m, "uptime_s"), up, sizeof(up)));
	printf("; last reload: %s", get_str(lr, "result"));
	if (*get_str(lr, "at"))
		printf(" at %s", get_str(lr, "at"));
	if (*get_str(lr, "error"))
		printf(" (%s)", get_str(lr, "error"));
	printf("\n");
}

static int
status_master(pid_t pid, int as_json)
{
	char err[512], *text;
	json_object *doc, *e;

	if (control_query(pid, &text, err, sizeof(err)) == -1) {
		fprintf(stderr, "clusterd: -s status: %s\n", err);
		return 1;
	}
	if ((doc = json_tokener_parse(text)) == NULL ||
	    !json_object_is_type(doc, json_type_object)) {
		fprintf(stderr, "clusterd: -s status: the master answered no JSON object\n");
		json_object_put(doc);
		free(text);
		return 1;
	}
	if (json_object_object_get_ex(doc, "error", &e)) {
		fprintf(stderr, "clusterd: -s status: %s\n", json_object_get_string(e));
		json_object_put(doc);
		free(text);
		return 1;
	}
	if (as_json)
		printf("%s\n", text);
	else
		print_status(doc);
	json_object_put(doc);
	free(text);
	return ferror(stdout) ? 1 : 0;
}

static int
signal_master(const char *pid_file, const char *name, int as_json)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "reload", SIGHUP }, { "stop", SIGTERM }, { "quit", SIGQUIT },
		{ "reopen", SIGUSR1 },
	};
	char err[512];
	pid_t pid;
	int sig = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i].name) == 0)
			sig = names[i].sig;
	if (sig == 0 && strcmp(name, "status") != 0) {
		fprintf(stderr, "clusterd: -s: unknown signal \"%s\" (reload, stop, quit, reopen, "
		    "status)\n", name);
		return 1;
	}
	if (as_json && sig != 0) {
		fprintf(stderr, "clusterd: --json goes with -s status only\n");
		return 1;
	}
	if (pid_file == NULL) {
		fprintf(stderr, "clusterd: -s: the config sets no pid_file; name one with -p\n");
		return 1;
	}
	if ((pid = pidfile_running(pid_file, err, sizeof(err))) == -1) {
		fprintf(stderr, "clusterd: -s: %s\n", err);
		return 1;
	}
	if (sig == 0)
		return status_master(pid, as_json);
	if (kill(pid, sig) == -1) {
		fprintf(stderr, "clusterd: -s: cannot signal pid %ld from %s: %s\n", (long)pid,
		    pid_file, strerror(errno));
		return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "workers", required_argument, NULL, 'w' },
		{ "listen", required_argument, NULL, 'l' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "test-config", no_argument, NULL, 't' },
		{ "signal", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'J' },
		{ NULL, 0, NULL, 0 },
	};
	static char *listen[MAX_LISTEN_FLAGS];
	struct config_overrides ov = { .listen = listen };
	const char *path = DEFAULT_CONFIG, *sig = NULL;
	struct config *cfg;
	char err[1024];
	int c, test = 0, as_json = 0;

	while ((c = getopt_long(argc, argv, "c:w:l:p:ts:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'w':
			if (config_workers_parse(optarg, &ov.workers) == -1) {
				fprintf(stderr, "clusterd: -w: \"%s\" is not a number from 1 "
				    "to 1024 or \"auto\"\n", optarg);
				return 1;
			}
			break;
		case 'l':
			if (ov.nlisten == MAX_LISTEN_FLAGS) {
				fprintf(stderr, "clusterd: -l: at most %d addresses\n", MAX_LISTEN_FLAGS);
				return 1;
			}
			listen[ov.nlisten++] = optarg;
			break;
		case 'p':
			ov.pid_file = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 's':
			sig = optarg;
			break;
		case 'J':
			as_json = 1;
			break;
		case 'V':
			printf("clusterd %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (as_json && sig == NULL) {
		fprintf(stderr, "clusterd: --json goes with -s status only\n");
		return 1;
	}
	if (optind < argc) {
		fprintf(stderr, "clusterd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	/* -s with -p needs no config: it works while the file is being edited. */
	if (sig != NULL && !test && ov.pid_file != NULL)
		return signal_master(ov.pid_file, sig, as_json);
	if ((cfg = master_load_config(path, &ov, err, sizeof(err))) == NULL ||
	    /* -s only reads the pid file: the logs' directories are not its business */
	    (sig == NULL && paths_check(cfg, err, sizeof(err)) == -1)) {
		fprintf(stderr, "clusterd: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (test) {
		printf("ok\n");
		config_free(cfg);
		return 0;
	}
	if (sig != NULL) {
		int rc = signal_master(cfg->pid_file, sig, as_json);
		config_free(cfg);
		return rc;
	}
	/*
	 * No evthread_use_pthreads(): only a worker's loop thread touches its
	 * event base. Its MongoDB threads hand results over through a mutex
	 * and an eventfd (worker/mongo_pool.c), so the base needs no locks,
	 * which every event_add() and loop turn would otherwise take.
	 */
	return master_run(cfg, &ov);
}
