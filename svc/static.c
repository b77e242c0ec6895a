/*
 * The static service: the files under a directory, as nginx's root or
 * Express's express.static serve them.
 *
 *   GET {prefix}/path   the file root/path, with ETag, Last-Modified,
 *                       Cache-Control and Accept-Ranges; 304 to a request
 *                       whose If-None-Match or If-Modified-Since it meets,
 *                       206 to a single byte range, 416 past the end
 *   GET {prefix}/dir/   root/dir/index.html (the index option)
 *   GET {prefix}/dir    301 to {prefix}/dir/ when that has an index
 *
 * The body goes out with sendfile() (http_reply_file()): a worker never
 * reads a file, so a large one costs it no memory and no loop time; opening
 * and fstat()ing one is all it does on the loop, as nginx does. Nothing
 * outside the root is ever served: each segment of the path is decoded
 * apart, and one that starts with "." or decodes to "/", "\" or NUL is 404;
 * the file is opened with openat2(RESOLVE_BENEATH) from the root's
 * descriptor, so that no symbolic link leads out. Directories are never
 * listed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/config.h"
#include "http/http.h"
#include "svc/mime.h"
#include "svc/service.h"
#include "svc/static.h"

#define MAX_AGE_MAX 31536000         /* a year, as RFC 2616 advised for Expires */
#define LOCATION_MAX 400             /* a redirect's Location fits the headers a reply may add */
#define FILE_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY)    /* O_NONBLOCK: a FIFO never blocks */

static const char *const static_keys[] = { "root", "index", "max_age_s", "mime_types", NULL };

/* The route's config, made in the master and inherited by the workers. */
struct static_conf {
	char *root;
	char *index;
	long long max_age_s;
	struct mime_table *mime;     /* NULL: every file is application/octet-stream */
};

/* A worker's state for the route. */
struct static_state {
	const struct static_conf *conf;
	const char *prefix;
	int rootfd;
	int walk;                    /* openat2() is not available: static_open()'s walk */
	char cache_control[32];
};

/* ---- the pure parts (static.h) ---- */

int
static_path(const char *sub, char *out, size_t outlen, int *slash)
{
	const char *p = sub, *end = sub + strlen(sub), *e;
	char seg[NAME_MAX + 1];
	size_t k = 0, n;

	*slash = end > sub && end[-1] == '/';
	if (outlen == 0)
		return -1;
	out[0] = '\0';
	for (; p < end; p = e + 1) {
		if ((e = memchr(p, '/', (size_t)(end - p))) == NULL)
			e = end;
		if (e == p)
			continue;            /* "//" */
		/* A bad escape, an encoded NUL, or longer than a file name can be: -1. */
		if (http_unescape(p, (size_t)(e - p), seg, sizeof(seg), 0) == -1 ||
		    seg[0] == '.' || strpbrk(seg, "/\\") != NULL)
			return -1;
		n = strlen(seg);
		if (k + (k > 0) + n + 1 > outlen)
			return -1;
		if (k > 0)
			out[k++] = '/';
		memcpy(out + k, seg, n + 1);
		k += n;
	}
	return 0;
}

static int
open_beneath(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (unsigned)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, rootfd, *rel != '\0' ? rel : ".", &how, sizeof(how));
}

/* Without openat2(): a directory at a time, no symbolic link followed. */
static int
open_walk(int rootfd, const char *rel, int flags)
{
	char name[NAME_MAX + 1];
	const char *p = rel, *slash;
	int dirfd = rootfd, fd;

	if (*rel == '\0')
		return openat(rootfd, ".", flags | O_CLOEXEC);
	for (;;) {
		size_t n = (slash = strchr(p, '/')) != NULL ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n > NAME_MAX) {
			errno = ENOENT;
			fd = -1;
		} else {
			memcpy(name, p, n);
			name[n] = '\0';
			fd = openat(dirfd, name, O_NOFOLLOW | O_CLOEXEC |
			    (slash != NULL ? O_PATH | O_DIRECTORY : flags));
		}
		if (dirfd != rootfd) {
			int saved = errno;
			close(dirfd);
			errno = saved;
		}
		if (fd == -1 || slash == NULL)
			return fd;
		dirfd = fd;
		p = slash + 1;
	}
}

int
static_open(int rootfd, const char *rel, int flags, int walk)
{
	return walk ? open_walk(rootfd, rel, flags) : open_beneath(rootfd, rel, flags);
}

/* Digits into *v, saturated; 0 if there are none. */
static int
digits(const char **p, off_t *v)
{
	const char *s = *p;
	off_t x = 0;

	for (; *s >= '0' && *s <= '9'; s++)
		x = x > (INT64_MAX - 9) / 10 ? INT64_MAX : x * 10 + (*s - '0');
	if (s == *p)
		return 0;
	*p = s;
	*v = x;
	return 1;
}

static const char *
ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

enum static_range
static_range(const char *v, off_t size, off_t *from, off_t *len)
{
	off_t first = -1, last = -1, suffix = -1;

	if (strncasecmp(v, "bytes=", 6) != 0)
		return RANGE_IGNORE;
	v = ows(v + 6);
	if (*v == '-') {
		v++;
		if (!digits(&v, &suffix))
			return RANGE_IGNORE;
	} else {
		if (!digits(&v, &first) || *v++ != '-')
			return RANGE_IGNORE;
		if (digits(&v, &last) && last < first)
			return RANGE_IGNORE;     /* invalid, RFC 9110 14.1.1 */
	}
	if (*(v = ows(v)) != '\0')
		return RANGE_IGNORE;         /* "," : several ranges; or garbage */
	if (suffix >= 0) {
		if (suffix == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*len = suffix < size ? suffix : size;
		*from = size - *len;
		return RANGE_OK;
	}
	if (first >= size)
		return RANGE_UNSATISFIABLE;
	if (last < 0 || last >= size)
		last = size - 1;
	*from = first;
	*len = last - first + 1;
	return RANGE_OK;
}

int
static_etag_match(const char *list, const char *etag, int weak)
{
	size_t n = strlen(etag);
	const char *p = list, *q;
	int w;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		if (*p == '*')
			return 1;
		w = p[0] == 'W' && p[1] == '/';
		if (w)
			p += 2;
		if (*p != '"' || (q = strchr(p + 1, '"')) == NULL)
			return 0;            /* malformed: nothing matches */
		if ((weak || !w) && (size_t)(q + 1 - p) == n && memcmp(p, etag, n) == 0)
			return 1;
		p = q + 1;
	}
}

/* ---- the config half, in the master ---- */

static void
static_conf_free(void *p)
{
	struct static_conf *c = p;

	if (c == NULL)
		return;
	free(c->root);
	free(c->index);
	mime_free(c->mime);
	free(c);
}

/*
 * A relative root is taken from the directory clusterd runs in, as the
 * paths of the logs are, and kept absolute from then on.
 */
static int
check_root(char **rootp, const char *path, char *err, size_t errlen)
{
	char cwd[PATH_MAX], *abs;
	const char *root = *rootp;
	struct stat st;
	size_t n;

	if (root[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			snprintf(err, errlen, "%s.root: %s: the current directory: %s", path, root,
			    strerror(errno));
			return -1;
		}
		n = strlen(cwd) + strlen(root) + 2;
		if ((abs = malloc(n)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		snprintf(abs, n, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", root);
		free(*rootp);
		*rootp = abs;
		root = abs;
	}
	if (stat(root, &st) == -1) {
		snprintf(err, errlen, "%s.root: %s: %s", path, root, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s.root: %s is not a directory", path, root);
		return -1;
	}
	return 0;
}

/* A file name: no "/", "\" or control character, not starting with ".". */
static int
check_index(const char *s, const char *path, char *err, size_t errlen)
{
	size_t n = strlen(s);

	for (const char *p = s; *p != '\0'; p++)
		if (*p == '/' || *p == '\\' || (unsigned char)*p < ' ' || *p == 127)
			n = 0;
	if (n == 0 || n > NAME_MAX || s[0] == '.') {
		snprintf(err, errlen, "%s.index: \"%s\" must be a file name: no \"/\", \"\\\" or "
		    "control character, not starting with \".\"", path, s);
		return -1;
	}
	return 0;
}

/*
 * mime_types: a file that was named must be read; the default
 * /etc/mime.types may be missing (no media-types package), which leaves
 * every file application/octet-stream, with a warning.
 */
static int
load_mime(json_object *route, const char *path, struct static_conf *c, char *err,
    size_t errlen)
{
	char *file = NULL, why[512];
	int named = json_object_object_get_ex(route, "mime_types", NULL);

	if (conf_get_string(route, path, "mime_types", false, MIME_DEFAULT_PATH, &file,
	    err, errlen) == -1)
		return -1;
	if ((c->mime = mime_load(file, why, sizeof(why))) == NULL) {
		if (named) {
			snprintf(err, errlen, "%s.mime_types: %s", path, why);
			free(file);
			return -1;
		}
		log_warn("%s: cannot read %s: every file is served as %s (install the "
		    "media-types package, or set mime_types)", path, why, MIME_UNKNOWN);
	}
	free(file);
	return 0;
}

static int
static_configure(json_object *route, const char *path, void **conf, char *err,
    size_t errlen)
{
	struct static_conf *c = calloc(1, sizeof(*c));

	*conf = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (conf_get_string(route, path, "root", true, NULL, &c->root, err, errlen) == -1 ||
	    check_root(&c->root, path, err, errlen) == -1 ||
	    conf_get_string(route, path, "index", false, "index.html", &c->index,
		err, errlen) == -1 ||
	    check_index(c->index, path, err, errlen) == -1 ||
	    conf_get_int(route, path, "max_age_s", 0, MAX_AGE_MAX, 0, &c->max_age_s,
		err, errlen) == -1 ||
	    load_mime(route, path, c, err, errlen) == -1) {
		static_conf_free(c);
		return -1;
	}
	*conf = c;
	return 0;
}

/* ---- the runtime half, in a worker ---- */

static void *
static_init(const struct route_conf *route, const struct worker_info *w)
{
	struct static_state *s = calloc(1, sizeof(*s));
	int fd;

	(void)w;
	if (s == NULL)
		return NULL;
	s->conf = route->service_conf;
	s->prefix = route->prefix;
	snprintf(s->cache_control, sizeof(s->cache_control), "max-age=%lld", s->conf->max_age_s);
	/* After the switch to the workers' user: the root must be theirs to read. */
	if ((s->rootfd = open(s->conf->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_error("route %s: cannot open the root %s: %s", route->prefix, s->conf->root,
		    strerror(errno));
		free(s);
		return NULL;
	}
	/* openat2() came with Linux 5.6, and a seccomp filter may refuse it. */
	if ((fd = open_beneath(s->rootfd, "", O_PATH)) >= 0)
		close(fd);
	else if (errno == ENOSYS || errno == EPERM || errno == EINVAL || errno == E2BIG) {
		s->walk = 1;
		log_warn("route %s: openat2() is not available (%s): no symbolic link under %s "
		    "is followed", route->prefix, strerror(errno), s->conf->root);
	}
	return s;
}

static void
not_found(struct http_req *req)
{
	http_error(req, 404, "not_found", "no such file");
}

/* The file or index could not be opened: 404, unless we are short of something. */
static void
open_failed(struct http_req *req)
{
	if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
		http_error(req, 503, "overloaded", "cannot open a file: %s", strerror(errno));
	else
		not_found(req);
}

/* Percent-encodes a decoded path for a Location: all but unreserved, sub-delims, ":@/". */
static int
encode_path(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t k = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (k + 4 > outlen)
			return -1;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~!$&'()*+,;=:@/", c) != NULL)
			out[k++] = (char)c;
		else {
			out[k++] = '%';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	out[k] = '\0';
	return 0;
}

/* {prefix}/{rel}/ and the query: the directory asked for without its slash. */
static void
redirect(struct static_state *s, struct http_req *req, const char *rel)
{
	char enc[LOCATION_MAX], loc[LOCATION_MAX];
	const char *query = http_req_query(req);
	const char *prefix = strcmp(s->prefix, "/") == 0 ? "" : s->prefix;
	int n;

	if (encode_path(rel, enc, sizeof(enc)) == -1 ||
	    (n = snprintf(loc, sizeof(loc), "%s/%s%s%s%s", prefix, enc, *enc ? "/" : "",
		query ? "?" : "", query ? query : "")) < 0 || (size_t)n >= sizeof(loc)) {
		not_found(req);          /* no Location would fit the reply's headers */
		return;
	}
	http_req_add_header(req, "Location", loc);
	http_reply_type(req, 301, "text/plain; charset=utf-8", "", 0);
}

/* If-Range: the validator given is still the file's (an entity tag, strong, or the date). */
static int
if_range(const char *v, const char *etag, time_t mtime)
{
	time_t t;

	if (v[0] == '"')
		return strcmp(v, etag) == 0;
	if (v[0] == 'W' && v[1] == '/')
		return 0;
	return http_date_parse(v, &t) == 0 && t == mtime;
}

/*
 * The preconditions of RFC 9110, 13.2.2, in its order: 412 for If-Match
 * (or else If-Unmodified-Since), then 304 for If-None-Match (or else
 * If-Modified-Since). Returns the status, or 0 to go on.
 */
static int
preconditions(struct http_req *req, const char *etag, time_t mtime)
{
	const char *v;
	time_t t;

	if ((v = http_req_header(req, "If-Match")) != NULL) {
		if (!static_etag_match(v, etag, 0))
			return 412;
	} else if ((v = http_req_header(req, "If-Unmodified-Since")) != NULL &&
	    http_date_parse(v, &t) == 0 && mtime > t)
		return 412;
	if ((v = http_req_header(req, "If-None-Match")) != NULL) {
		if (static_etag_match(v, etag, 1))
			return 304;
	} else if ((v = http_req_header(req, "If-Modified-Since")) != NULL &&
	    http_date_parse(v, &t) == 0 && mtime <= t)
		return 304;
	return 0;
}

/* fd: a regular file, st its status, name its name (for its type). */
static void
serve(struct static_state *s, struct http_req *req, int fd, const struct stat *st,
    const char *name)
{
	const char *type = mime_lookup(s->conf->mime, name), *v;
	char etag[48], date[HTTP_DATE_LEN], crange[96];
	off_t from = 0, len = st->st_size;
	int status;

	/* nginx's: the modification time and the size, in hexadecimal */
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st->st_mtime,
	    (unsigned long long)st->st_size);
	http_date(st->st_mtime, date, sizeof(date));
	if ((status = preconditions(req, etag, st->st_mtime)) == 412) {
		close(fd);
		http_error(req, 412, "precondition_failed", "the file has changed");
		return;
	}
	http_req_add_header(req, "ETag", etag);
	http_req_add_header(req, "Last-Modified", date);
	http_req_add_header(req, "Cache-Control", s->cache_control);
	if (status == 304) {
		close(fd);
		http_reply(req, 304, NULL, 0);
		return;
	}
	http_req_add_header(req, "Accept-Ranges", "bytes");
	status = 200;
	/* Only GET has ranges (RFC 9110, 14.2); one If-Range no longer meets is ignored. */
	if (http_req_method(req) == HTTP_M_GET && (v = http_req_header(req, "Range")) != NULL &&
	    ((v = http_req_header(req, "If-Range")) == NULL ||
		if_range(v, etag, st->st_mtime))) {
		switch (static_range(http_req_header(req, "Range"), st->st_size, &from, &len)) {
		case RANGE_OK:
			status = 206;
			snprintf(crange, sizeof(crange), "bytes %lld-%lld/%lld", (long long)from,
			    (long long)(from + len - 1), (long long)st->st_size);
			http_req_add_header(req, "Content-Range", crange);
			break;
		case RANGE_UNSATISFIABLE:
			close(fd);
			snprintf(crange, sizeof(crange), "bytes */%lld", (long long)st->st_size);
			http_req_add_header(req, "Content-Range", crange);
			http_error(req, 416, "range_not_satisfiable",
			    "the file has %lld bytes", (long long)st->st_size);
			return;
		case RANGE_IGNORE:
			break;
		}
	}
	http_reply_file(req, status, type != NULL ? type : MIME_UNKNOWN, fd, from, len);
}

static void
static_handle(void *state, struct http_req *req, const char *subpath)
{
	struct static_state *s = state;
	char rel[PATH_MAX], index[PATH_MAX];
	const char *name;
	struct stat st;
	int slash, fd;

	if (static_path(subpath, rel, sizeof(rel), &slash) == -1) {
		not_found(req);
		return;
	}
	if ((fd = static_open(s->rootfd, rel, FILE_FLAGS, s->walk)) == -1) {
		open_failed(req);
		return;
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		open_failed(req);
		return;
	}
	name = rel;
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		if ((size_t)snprintf(index, sizeof(index), "%s%s%s", rel, *rel ? "/" : "",
		    s->conf->index) >= sizeof(index)) {
			not_found(req);
			return;
		}
		if ((fd = static_open(s->rootfd, index, FILE_FLAGS, s->walk)) == -1) {
			open_failed(req);
			return;
		}
		if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
			close(fd);
			not_found(req);
			return;
		}
		if (!slash) {            /* nginx and Express send "/dir" to "/dir/" */
			close(fd);
			redirect(s, req, rel);
			return;
		}
		name = s->conf->index;
	} else if (!S_ISREG(st.st_mode) || slash) {
		close(fd);               /* a device, a FIFO; or "file/" */
		not_found(req);
		return;
	}
	serve(s, req, fd, &st, name);
}

static void
static_shutdown(void *state)
{
	struct static_state *s = state;

	close(s->rootfd);
	free(s);
}

const struct service static_service = {
	.name = "static",
	.methods = HTTP_M_GET | HTTP_M_HEAD,
	.keys = static_keys,
	.configure = static_configure,
	.conf_free = static_conf_free,
	.init = static_init,
	.handle = static_handle,
	.shutdown = static_shutdown,
};
