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
#include "master/master.h"
#include "master/pidfile.h"

#define DEFAULT_CONFIG SYSCONFDIR "/clusterd/clusterd.conf"
#define MAX_LISTEN_FLAGS 64

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: clusterd [-c file] [-w n|auto] [-l addr]... [-p file] [-t] [-s signal] [-V] [-h]\n"
	    "  -c, --config FILE     config file (default %s)\n"
	    "  -w, --workers N|auto  override \"workers\"\n"
	    "  -l, --listen ADDR     override \"listen\"; repeatable; host:port, [v6addr]:port or :port\n"
	    "  -p, --pid-file FILE   override \"pid_file\"\n"
	    "  -t, --test-config     check the config, print \"ok\" or the error, exit 0 or 1\n"
	    "  -s, --signal SIG      send reload|stop|quit|reopen to the master named in the pid file\n"
	    "  -V, --version         print the version and exit\n"
	    "  -h, --help            print this help and exit\n", DEFAULT_CONFIG);
}

static int
signal_master(const struct config *cfg, const char *name)
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
	if (sig == 0) {
		fprintf(stderr, "clusterd: -s: unknown signal \"%s\" (reload, stop, quit, reopen)\n",
		    name);
		return 1;
	}
	if (cfg->pid_file == NULL) {
		fprintf(stderr, "clusterd: -s: %s sets no pid_file; name one with -p\n", cfg->path);
		return 1;
	}
	if ((pid = pidfile_running(cfg->pid_file, err, sizeof(err))) == -1) {
		fprintf(stderr, "clusterd: -s: %s\n", err);
		return 1;
	}
	if (kill(pid, sig) == -1) {
		fprintf(stderr, "clusterd: -s: cannot signal pid %ld from %s: %s\n", (long)pid,
		    cfg->pid_file, strerror(errno));
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
		{ NULL, 0, NULL, 0 },
	};
	static char *listen[MAX_LISTEN_FLAGS];
	struct config_overrides ov = { .listen = listen };
	const char *path = DEFAULT_CONFIG, *sig = NULL;
	struct config *cfg;
	char err[1024];
	int c, test = 0;

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
	if (optind < argc) {
		fprintf(stderr, "clusterd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if ((cfg = master_load_config(path, &ov, err, sizeof(err))) == NULL) {
		fprintf(stderr, "clusterd: %s\n", err);
		return 1;
	}
	if (test) {
		printf("ok\n");
		config_free(cfg);
		return 0;
	}
	if (sig != NULL) {
		int rc = signal_master(cfg, sig);
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
