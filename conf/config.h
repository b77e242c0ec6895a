/*
 * The configuration: a JSON file (comments allowed) read with json-c and
 * validated strictly. Every error names the file, the key path and the
 * problem, e.g. "clusterd.conf: routes[1].prefix: duplicate prefix "/a"".
 *
 * This layer is data only: it knows no process and no service. A route is
 * parsed to its prefix, the name of its service and its other options; the
 * master then resolves it through svc/ (svc_resolve_routes()), which fills
 * in the service and its validated private config.
 */
#ifndef CLUSTERD_CONFIG_H
#define CLUSTERD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include <sys/types.h>

#include "common/log.h"
#include "conf/addr.h"

struct service;                  /* svc/service.h: opaque here */

#define CONFIG_MAX_LISTEN 64         /* listen addresses, each a socket per slot */

struct route_conf {
	char *prefix;
	size_t prefix_len;
	char *service_name;          /* as written */
	json_object *options;        /* the route's object: a reference we hold */
	/* Filled in by svc_resolve_routes(); service_conf_free frees service_conf. */
	const struct service *service;
	void *service_conf;
	void (*service_conf_free)(void *conf);
};

struct limits_conf {
	long long max_header_bytes;
	long long max_body_bytes;
	long long read_timeout_ms;
	long long keepalive_timeout_ms;  /* 0 disables keep-alive */
	long long header_timeout_ms;     /* a request's line and headers, from its first byte */
	long long body_timeout_ms;       /* its body, from the end of its headers */
	long long max_connections;       /* per worker; 0: derived from the descriptor limit */
};

struct config {
	char *path;
	struct listen_addr *listen;
	size_t nlisten;
	int workers;                 /* resolved: "auto" is online CPUs */
	char *pid_file;              /* NULL: no pid file */
	char *error_log;             /* "stderr" or a path */
	enum log_level log_level;
	long long shutdown_timeout_ms;
	long long worker_rlimit_nofile;  /* 0: raise the soft limit to the hard one */
	long long heartbeat_interval_ms; /* a worker's loop reports this often */
	long long worker_timeout_ms;     /* silent this long: hung (0: never) */
	long long max_requests;          /* recycle a worker after so many (0: never) */
	long long max_requests_jitter;   /* plus a random 0..jitter per worker */
	long long max_worker_rss_mb;     /* recycle a worker over this RSS (0: never) */
	long long drain_delay_ms;        /* SIGQUIT: health fails this long before the stop */
	char *user;                  /* NULL: workers keep the master's identity */
	char *group;                 /* NULL: the user's primary group */
	uid_t uid;                   /* of user, looked up once here; -1 without one */
	gid_t gid;                   /* of group, or the user's primary group */
	char *access_log;            /* "off", "stderr" or a path */
	enum access_log_format { ACCESS_LOG_COMBINED, ACCESS_LOG_JSON } access_log_format;
	bool worker_pid_header;      /* every reply says which worker made it */
	struct limits_conf limits;
	struct route_conf *routes;
	size_t nroutes;
};

/* Command-line values that replace the file's (kept across reloads). */
struct config_overrides {
	int workers;                 /* 0: not given; -1: "auto" */
	char **listen;
	size_t nlisten;
	const char *pid_file;
};

/* Key lists the parser accepts, exported so that tests can check the man pages. */
extern const char *const config_top_keys[];
extern const char *const config_limits_keys[];
extern const char *const config_route_keys[];

/*
 * Reads and validates path. On success returns a config the caller frees
 * with config_free(); on failure NULL with "file: key: problem" in err.
 */
struct config *config_load(const char *path, const struct config_overrides *ov,
    char *err, size_t errlen);
/* The same from a string (path only names it in errors): for unit tests. */
struct config *config_parse(const char *path, const char *text, size_t len,
    const struct config_overrides *ov, char *err, size_t errlen);
void config_free(struct config *cfg);

int config_workers_parse(const char *s, int *out);

/*
 * Helpers for services' own route options. "path" is the key path of obj
 * (e.g. "routes[2]"); errors are written as "path.key: problem".
 * A missing optional key leaves *out at the default given.
 */
int conf_check_keys(json_object *obj, const char *path,
    const char *const *allowed, const char *const *allowed2,
    char *err, size_t errlen);
int conf_get_int(json_object *obj, const char *path, const char *key,
    long long min, long long max, long long def, long long *out,
    char *err, size_t errlen);
int conf_get_string(json_object *obj, const char *path, const char *key,
    bool required, const char *def, char **out, char *err, size_t errlen);
int conf_get_bool(json_object *obj, const char *path, const char *key, bool def,
    bool *out, char *err, size_t errlen);

#endif
