#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/strict.h"

const char *const config_top_keys[] = {
	"listen", "workers", "pid_file", "error_log", "log_level",
	"shutdown_timeout_ms", "worker_rlimit_nofile", "user", "group", "access_log",
	"access_log_format", "limits", "routes", "heartbeat_interval_ms", "worker_timeout_ms",
	"max_requests", "max_requests_jitter", "max_worker_rss_mb", "drain_delay_ms",
	"worker_pid_header", NULL
};
const char *const config_limits_keys[] = {
	"max_header_bytes", "max_body_bytes", "read_timeout_ms",
	"keepalive_timeout_ms", "header_timeout_ms", "body_timeout_ms", "max_connections", NULL
};
const char *const config_route_keys[] = { "prefix", "service", NULL };

#define MAX_WORKERS 1024
#define RLIMIT_NOFILE_MIN 32

static bool
key_in(const char *key, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(key, *list) == 0)
			return true;
	return false;
}

static const char *
type_name(json_object *v)
{
	return json_type_to_name(json_object_get_type(v));
}

int
conf_check_keys(json_object *obj, const char *path, const char *const *allowed,
    const char *const *allowed2, char *err, size_t errlen)
{
	json_object_object_foreach(obj, key, val) {
		(void)val;
		if (!key_in(key, allowed) && !key_in(key, allowed2)) {
			snprintf(err, errlen, "%s%s%s: unknown key", path,
			    *path ? "." : "", key);
			return -1;
		}
	}
	return 0;
}

int
conf_get_int(json_object *obj, const char *path, const char *key, long long min,
    long long max, long long def, long long *out, char *err, size_t errlen)
{
	json_object *v;
	long long n;

	*out = def;
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "%s%s%s: expected an integer, got %s", path,
		    *path ? "." : "", key, type_name(v));
		return -1;
	}
	errno = 0;
	n = json_object_get_int64(v);
	if (errno != 0 || n < min || n > max) {
		snprintf(err, errlen, "%s%s%s: %s is out of range (%lld to %lld)",
		    path, *path ? "." : "", key, json_object_get_string(v), min, max);
		return -1;
	}
	*out = n;
	return 0;
}

int
conf_get_bool(json_object *obj, const char *path, const char *key, bool def, bool *out,
    char *err, size_t errlen)
{
	json_object *v;

	*out = def;
	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "%s%s%s: expected true or false, got %s", path,
		    *path ? "." : "", key, type_name(v));
		return -1;
	}
	*out = json_object_get_boolean(v) != 0;
	return 0;
}

int
conf_get_string(json_object *obj, const char *path, const char *key, bool required,
    const char *def, char **out, char *err, size_t errlen)
{
	json_object *v;
	const char *s = def;

	if (json_object_object_get_ex(obj, key, &v)) {
		if (!json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "%s%s%s: expected a string, got %s",
			    path, *path ? "." : "", key, type_name(v));
			return -1;
		}
		s = json_object_get_string(v);
		if (*s == '\0') {
			snprintf(err, errlen, "%s%s%s: must not be empty",
			    path, *path ? "." : "", key);
			return -1;
		}
	} else if (required) {
		snprintf(err, errlen, "%s%s%s: required key is missing",
		    path, *path ? "." : "", key);
		return -1;
	}
	*out = NULL;
	if (s != NULL && (*out = strdup(s)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int
config_workers_parse(const char *s, int *out)
{
	char *end;
	long n;

	if (strcmp(s, "auto") == 0) {
		*out = -1;
		return 0;
	}
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || n < 1 || n > MAX_WORKERS)
		return -1;
	*out = (int)n;
	return 0;
}

static int
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

static int
parse_workers(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	json_object *v;
	long long n;

	cfg->workers = online_cpus();
	if (!json_object_object_get_ex(root, "workers", &v))
		return 0;
	if (json_object_is_type(v, json_type_string)) {
		if (strcmp(json_object_get_string(v), "auto") != 0) {
			snprintf(err, errlen, "workers: expected a number or \"auto\", got \"%s\"",
			    json_object_get_string(v));
			return -1;
		}
		return 0;
	}
	if (conf_get_int(root, "", "workers", 1, MAX_WORKERS, 1, &n, err, errlen) == -1)
		return -1;
	cfg->workers = (int)n;
	return 0;
}

static int
add_listen(struct config *cfg, const char *text, const char *path, char *err, size_t errlen)
{
	struct listen_addr *a;
	char why[256];

	if (cfg->nlisten == CONFIG_MAX_LISTEN) {
		snprintf(err, errlen, "%s: at most %d addresses", path, CONFIG_MAX_LISTEN);
		return -1;
	}
	a = realloc(cfg->listen, (cfg->nlisten + 1) * sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cfg->listen = a;
	if (addr_parse(text, &cfg->listen[cfg->nlisten], why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	/* Compared by what they bind, not as written. */
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (strcmp(cfg->listen[i].key, cfg->listen[cfg->nlisten].key) == 0) {
			snprintf(err, errlen, "%s: duplicate address \"%s\" (%s, as \"%s\" before it)",
			    path, text, cfg->listen[i].key, cfg->listen[i].text);
			return -1;
		}
	}
	cfg->nlisten++;
	return 0;
}

static int
parse_listen(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	json_object *v;
	char path[32];

	if (!json_object_object_get_ex(root, "listen", &v)) {
		snprintf(err, errlen, "listen: required key is missing");
		return -1;
	}
	if (json_object_is_type(v, json_type_string))
		return add_listen(cfg, json_object_get_string(v), "listen", err, errlen);
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
		snprintf(err, errlen, "listen: expected a non-empty array of addresses");
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		json_object *e = json_object_array_get_idx(v, i);
		snprintf(path, sizeof(path), "listen[%zu]", i);
		if (!json_object_is_type(e, json_type_string)) {
			snprintf(err, errlen, "%s: expected a string, got %s", path, type_name(e));
			return -1;
		}
		if (add_listen(cfg, json_object_get_string(e), path, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static int
parse_limits(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	struct limits_conf *l = &cfg->limits;
	json_object *o = NULL;

	if (json_object_object_get_ex(root, "limits", &o) &&
	    !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "limits: expected an object, got %s", type_name(o));
		return -1;
	}
	if (o == NULL)
		o = json_object_new_object();
	else
		json_object_get(o);
	int rc = -1;
	if (conf_check_keys(o, "limits", config_limits_keys, NULL, err, errlen) == 0 &&
	    /* 80 KiB: one request's head is held whole, in one buffer */
	    conf_get_int(o, "limits", "max_header_bytes", 256, 80 * 1024, 8192,
		&l->max_header_bytes, err, errlen) == 0 &&
	    conf_get_int(o, "limits", "max_body_bytes", 0, 1LL << 30, 1 << 20,
		&l->max_body_bytes, err, errlen) == 0 &&
	    conf_get_int(o, "limits", "read_timeout_ms", 1, 3600000, 30000,
		&l->read_timeout_ms, err, errlen) == 0 &&
	    conf_get_int(o, "limits", "keepalive_timeout_ms", 0, 3600000, 5000,
		&l->keepalive_timeout_ms, err, errlen) == 0 &&
	    conf_get_int(o, "limits", "header_timeout_ms", 1, 3600000, 10000,
		&l->header_timeout_ms, err, errlen) == 0 &&
	    conf_get_int(o, "limits", "body_timeout_ms", 1, 3600000, 60000,
		&l->body_timeout_ms, err, errlen) == 0 &&
	    conf_get_int(o, "limits", "max_connections", 0, 16777216, 0,
		&l->max_connections, err, errlen) == 0)
		rc = 0;
	json_object_put(o);
	return rc;
}

static int
valid_prefix(const char *p)
{
	size_t n = strlen(p);

	if (p[0] != '/' || (n > 1 && p[n - 1] == '/'))
		return 0;
	for (; *p; p++)
		if (*p == '?' || *p == '#' || *p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

static int
parse_route(struct config *cfg, json_object *r, size_t idx, char *err, size_t errlen)
{
	struct route_conf *rt = &cfg->routes[idx];
	char path[32];
	char *svc = NULL;
	int rc = -1;

	snprintf(path, sizeof(path), "routes[%zu]", idx);
	if (!json_object_is_type(r, json_type_object)) {
		snprintf(err, errlen, "%s: expected an object, got %s", path, type_name(r));
		return -1;
	}
	if (conf_get_string(r, path, "prefix", true, NULL, &rt->prefix, err, errlen) == -1 ||
	    conf_get_string(r, path, "service", true, NULL, &svc, err, errlen) == -1)
		goto out;
	if (!valid_prefix(rt->prefix)) {
		snprintf(err, errlen, "%s.prefix: \"%s\" must start with \"/\", not end "
		    "with \"/\" (except \"/\" itself), and hold no spaces, \"?\" or \"#\"",
		    path, rt->prefix);
		goto out;
	}
	rt->prefix_len = strlen(rt->prefix);
	/* The service and its options are the master's to resolve, through svc/. */
	rt->service_name = svc;
	svc = NULL;
	rt->options = json_object_get(r);
	rc = 0;
out:
	free(svc);
	return rc;
}

/* 0 (the hard limit), or enough for a worker's own descriptors and then some. */
static int
parse_rlimit(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	if (conf_get_int(root, "", "worker_rlimit_nofile", 0, 1 << 24, 0,
	    &cfg->worker_rlimit_nofile, err, errlen) == -1)
		return -1;
	if (cfg->worker_rlimit_nofile > 0 && cfg->worker_rlimit_nofile < RLIMIT_NOFILE_MIN) {
		snprintf(err, errlen, "worker_rlimit_nofile: %lld is too few for a worker's own "
		    "descriptors (loop, master, listeners, logs): 0 or %d to %d",
		    cfg->worker_rlimit_nofile, RLIMIT_NOFILE_MIN, 1 << 24);
		return -1;
	}
	return 0;
}

static const struct route_conf *sort_routes;

/* By prefix, then by position: the first of equals comes first. */
static int
by_prefix(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(sort_routes[i].prefix, sort_routes[j].prefix);

	return c != 0 ? c : i < j ? -1 : i > j;
}

/* No two routes with one prefix: sorted, in O(n log n) however many routes. */
static int
check_prefixes(struct config *cfg, char *err, size_t errlen)
{
	size_t *order = malloc(cfg->nroutes * sizeof(*order)), dup = 0, first = 0;
	int found = 0;

	if (order == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->nroutes; i++)
		order[i] = i;
	sort_routes = cfg->routes;
	qsort(order, cfg->nroutes, sizeof(*order), by_prefix);
	/* of all duplicates, the one the earliest in the file is named */
	for (size_t k = 1; k < cfg->nroutes; k++) {
		if (strcmp(cfg->routes[order[k]].prefix, cfg->routes[order[k - 1]].prefix) == 0 &&
		    (!found || order[k] < dup)) {
			found = 1;
			dup = order[k];
			first = order[k - 1];
		}
	}
	free(order);
	if (found)
		snprintf(err, errlen, "routes[%zu].prefix: duplicate prefix \"%s\" (also routes[%zu])",
		    dup, cfg->routes[dup].prefix, first);
	return found ? -1 : 0;
}

static int
parse_routes(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(root, "routes", &v)) {
		snprintf(err, errlen, "routes: required key is missing");
		return -1;
	}
	if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0) {
		snprintf(err, errlen, "routes: expected a non-empty array of routes");
		return -1;
	}
	n = json_object_array_length(v);
	if ((cfg->routes = calloc(n, sizeof(*cfg->routes))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		cfg->nroutes = i + 1;
		if (parse_route(cfg, json_object_array_get_idx(v, i), i, err, errlen) == -1)
			return -1;
	}
	return check_prefixes(cfg, err, errlen);
}

/*
 * user and group must exist when the config is read, not when a worker
 * forks: they are looked up here, once, and the ids kept.
 */
static int
check_identity(struct config *cfg, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	cfg->uid = (uid_t)-1;
	cfg->gid = (gid_t)-1;
	if (cfg->group != NULL && cfg->user == NULL) {
		snprintf(err, errlen, "group: needs \"user\" too");
		return -1;
	}
	if (cfg->user == NULL)
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		snprintf(err, errlen, "user: no such user \"%s\"", cfg->user);
		return -1;
	}
	cfg->uid = pw->pw_uid;
	cfg->gid = pw->pw_gid;
	if (cfg->group != NULL) {
		if ((gr = getgrnam(cfg->group)) == NULL) {
			snprintf(err, errlen, "group: no such group \"%s\"", cfg->group);
			return -1;
		}
		cfg->gid = gr->gr_gid;
	}
	return 0;
}

static int
parse_access_log(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	char *format = NULL;
	int rc = -1;

	if (conf_get_string(root, "", "access_log", false, "off", &cfg->access_log,
	    err, errlen) == -1 ||
	    conf_get_string(root, "", "access_log_format", false, "combined", &format,
	    err, errlen) == -1)
		goto out;
	if (strcmp(format, "combined") == 0)
		cfg->access_log_format = ACCESS_LOG_COMBINED;
	else if (strcmp(format, "json") == 0)
		cfg->access_log_format = ACCESS_LOG_JSON;
	else {
		snprintf(err, errlen, "access_log_format: \"%s\" is not one of combined, json",
		    format);
		goto out;
	}
	rc = 0;
out:
	free(format);
	return rc;
}

/* How the master watches its workers (heartbeats, hangs, recycling) and stops them. */
static int
parse_supervision(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	if (conf_get_int(root, "", "heartbeat_interval_ms", 10, 60000, 1000,
		&cfg->heartbeat_interval_ms, err, errlen) == -1 ||
	    conf_get_int(root, "", "worker_timeout_ms", 0, 3600000, 30000,
		&cfg->worker_timeout_ms, err, errlen) == -1 ||
	    conf_get_int(root, "", "max_requests", 0, 1000000000000LL, 0,
		&cfg->max_requests, err, errlen) == -1 ||
	    conf_get_int(root, "", "max_requests_jitter", 0, 1000000000000LL, 0,
		&cfg->max_requests_jitter, err, errlen) == -1 ||
	    conf_get_int(root, "", "max_worker_rss_mb", 0, 1 << 20, 0,
		&cfg->max_worker_rss_mb, err, errlen) == -1 ||
	    conf_get_int(root, "", "drain_delay_ms", 0, 3600000, 0,
		&cfg->drain_delay_ms, err, errlen) == -1)
		return -1;
	/* A worker must be able to miss a beat without being taken for hung. */
	if (cfg->worker_timeout_ms > 0 && cfg->worker_timeout_ms < 2 * cfg->heartbeat_interval_ms) {
		snprintf(err, errlen, "worker_timeout_ms: %lld is less than twice "
		    "heartbeat_interval_ms (%lld)", cfg->worker_timeout_ms,
		    cfg->heartbeat_interval_ms);
		return -1;
	}
	return 0;
}

static int
parse_root(struct config *cfg, json_object *root, char *err, size_t errlen)
{
	char *level = NULL;
	int rc = -1;

	if (!json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "the file must hold one JSON object");
		return -1;
	}
	if (conf_check_keys(root, "", config_top_keys, NULL, err, errlen) == -1 ||
	    parse_listen(cfg, root, err, errlen) == -1 ||
	    parse_workers(cfg, root, err, errlen) == -1 ||
	    conf_get_string(root, "", "pid_file", false, NULL, &cfg->pid_file, err, errlen) == -1 ||
	    conf_get_string(root, "", "error_log", false, "stderr", &cfg->error_log, err, errlen) == -1 ||
	    conf_get_string(root, "", "log_level", false, "info", &level, err, errlen) == -1 ||
	    conf_get_int(root, "", "shutdown_timeout_ms", 0, 3600000, 10000,
		&cfg->shutdown_timeout_ms, err, errlen) == -1 ||
	    parse_rlimit(cfg, root, err, errlen) == -1 ||
	    parse_supervision(cfg, root, err, errlen) == -1 ||
	    conf_get_string(root, "", "user", false, NULL, &cfg->user, err, errlen) == -1 ||
	    conf_get_string(root, "", "group", false, NULL, &cfg->group, err, errlen) == -1 ||
	    check_identity(cfg, err, errlen) == -1 ||
	    parse_access_log(cfg, root, err, errlen) == -1 ||
	    conf_get_bool(root, "", "worker_pid_header", false, &cfg->worker_pid_header,
		err, errlen) == -1 ||
	    parse_limits(cfg, root, err, errlen) == -1 ||
	    parse_routes(cfg, root, err, errlen) == -1)
		goto out;
	if (log_level_parse(level, &cfg->log_level) == -1) {
		snprintf(err, errlen, "log_level: \"%s\" is not one of error, warn, info, debug", level);
		goto out;
	}
	rc = 0;
out:
	free(level);
	return rc;
}

static int
apply_overrides(struct config *cfg, const struct config_overrides *ov, char *err, size_t errlen)
{
	if (ov == NULL)
		return 0;
	if (ov->workers > 0)
		cfg->workers = ov->workers;
	else if (ov->workers == -1)
		cfg->workers = online_cpus();
	if (ov->pid_file != NULL) {
		free(cfg->pid_file);
		if ((cfg->pid_file = strdup(ov->pid_file)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (ov->nlisten > 0) {
		free(cfg->listen);
		cfg->listen = NULL;
		cfg->nlisten = 0;
		for (size_t i = 0; i < ov->nlisten; i++)
			if (add_listen(cfg, ov->listen[i], "--listen", err, errlen) == -1)
				return -1;
	}
	return 0;
}

/* 1-based line and column of a byte offset, for parse errors. */
static void
line_col(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else
			(*col)++;
	}
}

struct config *
config_parse(const char *path, const char *text, size_t len,
    const struct config_overrides *ov, char *err, size_t errlen)
{
	struct config *cfg;
	json_tokener *tok = NULL;
	json_object *root = NULL;
	char why[512] = "";
	size_t end;

	if ((cfg = calloc(1, sizeof(*cfg))) == NULL || (cfg->path = strdup(path)) == NULL ||
	    (tok = json_tokener_new_ex(64)) == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	/* Not strict: json-c then accepts comments, which config files want. */
	root = json_tokener_parse_ex(tok, text, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		int line, col;
		enum json_tokener_error e = json_tokener_get_error(tok);
		line_col(text, end, &line, &col);
		snprintf(why, sizeof(why), "line %d, column %d: invalid JSON: %s", line, col,
		    e == json_tokener_continue ? "unexpected end of file" : json_tokener_error_desc(e));
		goto fail;
	}
	if (json_strict_check(text, len, why, sizeof(why)) == -1)
		goto fail;
	for (; end < len; end++) {
		if (text[end] != ' ' && text[end] != '\n' && text[end] != '\t' && text[end] != '\r') {
			int line, col;
			line_col(text, end, &line, &col);
			snprintf(why, sizeof(why), "line %d, column %d: trailing data after the JSON object",
			    line, col);
			goto fail;
		}
	}
	if (parse_root(cfg, root, why, sizeof(why)) == -1 ||
	    apply_overrides(cfg, ov, why, sizeof(why)) == -1)
		goto fail;
	json_object_put(root);
	json_tokener_free(tok);
	return cfg;
fail:
	snprintf(err, errlen, "%s: %s", path, why);
	json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	config_free(cfg);
	return NULL;
}

struct config *
config_load(const char *path, const struct config_overrides *ov, char *err, size_t errlen)
{
	FILE *f;
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	struct config *cfg = NULL;

	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (len + 4096 + 1 > cap) {
			char *t;
			cap = cap ? cap * 2 : 8192;
			if (cap > (1 << 24) || (t = realloc(text, cap)) == NULL) {
				snprintf(err, errlen, "%s: file too large", path);
				goto out;
			}
			text = t;
		}
		n = fread(text + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	text[len] = '\0';
	cfg = config_parse(path, text, len, ov, err, errlen);
out:
	free(text);
	fclose(f);
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		struct route_conf *rt = &cfg->routes[i];
		if (rt->service_conf_free != NULL)
			rt->service_conf_free(rt->service_conf);
		json_object_put(rt->options);
		free(rt->service_name);
		free(rt->prefix);
	}
	free(cfg->routes);
	free(cfg->listen);
	free(cfg->pid_file);
	free(cfg->error_log);
	free(cfg->user);
	free(cfg->group);
	free(cfg->access_log);
	free(cfg->path);
	free(cfg);
}
