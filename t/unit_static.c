/*
 * The static service's pure parts (svc/static.h) and the mime.types table
 * (svc/mime.h): request paths to files, opening beneath the root with
 * openat2() and with the walk that replaces it, Range headers and entity
 * tag lists.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc/mime.h"
#include "svc/static.h"
#include "t/tap.h"

static char dir[64];

static void
put(const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF || fclose(f) == EOF)
		printf("# cannot write %s\n", path);
}

static void
mkd(const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (mkdir(path, 0755) == -1)
		printf("# mkdir %s: %s\n", path, strerror(errno));
}

static void
lnk(const char *target, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if (symlink(target, path) == -1)
		printf("# symlink %s: %s\n", path, strerror(errno));
}

/* What static_path() makes of sub: the relative path, "-1", and "/" appended if slash. */
static const char *
path_of(const char *sub)
{
	static char out[256];
	char rel[200];
	int slash;

	if (static_path(sub, rel, sizeof(rel), &slash) == -1)
		return "-1";
	snprintf(out, sizeof(out), "%s%s", rel, slash ? "|/" : "");
	return out;
}

/* What opening rel gives, in mode walk: "ok:" and the first bytes, or errno's name. */
static const char *
open_as(int rootfd, const char *rel, int walk)
{
	static char out[64];
	char buf[32];
	int fd = static_open(rootfd, rel, O_RDONLY, walk);
	ssize_t n;

	if (fd == -1) {
		snprintf(out, sizeof(out), "%s", errno == ENOENT ? "ENOENT" : errno == EXDEV ?
		    "EXDEV" : errno == ELOOP ? "ELOOP" : errno == ENOTDIR ? "ENOTDIR" : "other");
		return out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	snprintf(out, sizeof(out), "ok:%s", n >= 0 ? buf : "(dir)");
	return out;
}

static const char *
range_of(const char *v, long long size)
{
	static char out[64];
	off_t from = -1, len = -1;

	switch (static_range(v, (off_t)size, &from, &len)) {
	case RANGE_OK:
		snprintf(out, sizeof(out), "%lld+%lld", (long long)from, (long long)len);
		break;
	case RANGE_UNSATISFIABLE:
		return "416";
	case RANGE_IGNORE:
		return "whole";
	}
	return out;
}

int
main(void)
{
	char err[256], path[PATH_MAX];
	struct mime_table *m;
	int rootfd;

	/* ---- request paths ---- */
	is_str(path_of(""), "", "the prefix itself: the root, no slash");
	is_str(path_of("/"), "|/", "the prefix and a slash: the root");
	is_str(path_of("/a/b.css"), "a/b.css", "segments joined");
	is_str(path_of("/a//b/"), "a/b|/", "empty segments dropped; the final slash seen");
	is_str(path_of("/a%20b/%C3%A9.txt"), "a b/\xC3\xA9.txt", "segments percent-decoded");
	is_str(path_of("/.."), "-1", "..");
	is_str(path_of("/a/../b"), "-1", "a/../b");
	is_str(path_of("/."), "-1", ".");
	is_str(path_of("/%2e%2e/x"), "-1", "%2e%2e");
	is_str(path_of("/%2E%2e/x"), "-1", "%2E%2e");
	is_str(path_of("/.%2e/x"), "-1", ".%2e");
	is_str(path_of("/a%2f..%2fb"), "-1", "%2f: an encoded slash");
	is_str(path_of("/a%2Fb"), "-1", "%2F");
	is_str(path_of("/a%00b"), "-1", "%00: an encoded NUL");
	is_str(path_of("/a\\b"), "-1", "a backslash");
	is_str(path_of("/a%5cb"), "-1", "%5c: an encoded backslash");
	is_str(path_of("/..\\x"), "-1", "..\\");
	is_str(path_of("/.env"), "-1", "a dotfile");
	is_str(path_of("/a/.git/config"), "-1", "a dot directory");
	is_str(path_of("/%2eenv"), "-1", "an encoded dotfile");
	is_str(path_of("/a%zz"), "-1", "a bad escape");
	is_str(path_of("/a%2"), "-1", "a cut escape");
	is_str(path_of("/a.b.c"), "a.b.c", "dots inside a name are fine");
	memset(path, 'a', 300);
	path[0] = '/';
	path[300] = '\0';
	is_str(path_of(path), "-1", "a segment longer than a file name can be");

	/* ---- opening beneath the root ---- */
	snprintf(dir, sizeof(dir), "/tmp/unit_static.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	mkd("root");
	mkd("root/sub");
	put("root/sub/f.txt", "inside");
	put("secret.txt", "outside");
	lnk("sub/f.txt", "root/rel-in");          /* relative, stays beneath */
	lnk("../secret.txt", "root/rel-out");     /* relative, leads out */
	lnk("../../secret.txt", "root/sub/deep-out");
	lnk("..", "root/sub/up");                 /* a directory link to the root itself */
	lnk("../..", "root/sub/upup");            /* ... and above it */
	snprintf(path, sizeof(path), "%s/secret.txt", dir);
	lnk(path, "root/abs-out");                /* absolute */
	snprintf(path, sizeof(path), "%s/root/sub/f.txt", dir);
	lnk(path, "root/abs-in");                 /* absolute, to a file beneath */
	lnk("/etc", "root/etc");
	snprintf(path, sizeof(path), "%s/root", dir);
	rootfd = open(path, O_PATH | O_DIRECTORY);
	ok(rootfd >= 0, "the root opens");

	is_str(open_as(rootfd, "sub/f.txt", 0), "ok:inside", "openat2: a file beneath");
	is_str(open_as(rootfd, "rel-in", 0), "ok:inside", "openat2: a link that stays beneath");
	is_str(open_as(rootfd, "sub/up/sub/f.txt", 0), "ok:inside",
	    "openat2: a directory link that stays beneath");
	is_str(open_as(rootfd, "rel-out", 0), "EXDEV", "openat2: a relative link out");
	is_str(open_as(rootfd, "sub/deep-out", 0), "EXDEV", "openat2: a deeper link out");
	is_str(open_as(rootfd, "sub/upup/secret.txt", 0), "EXDEV",
	    "openat2: a directory link out");
	is_str(open_as(rootfd, "abs-out", 0), "EXDEV", "openat2: an absolute link");
	is_str(open_as(rootfd, "abs-in", 0), "EXDEV",
	    "openat2: an absolute link, even to a file beneath");
	is_str(open_as(rootfd, "etc/passwd", 0), "EXDEV", "openat2: a link to /etc");
	is_str(open_as(rootfd, "nope", 0), "ENOENT", "openat2: a missing file");
	is_str(open_as(rootfd, "", 0), "ok:(dir)", "openat2: \"\" is the root");

	is_str(open_as(rootfd, "sub/f.txt", 1), "ok:inside", "walk: a file beneath");
	is_str(open_as(rootfd, "rel-in", 1), "ELOOP", "walk: no link is followed");
	is_str(open_as(rootfd, "sub/up/sub/f.txt", 1), "ENOTDIR",
	    "walk: no directory link either");
	is_str(open_as(rootfd, "rel-out", 1), "ELOOP", "walk: a relative link out");
	is_str(open_as(rootfd, "sub/upup/secret.txt", 1), "ENOTDIR", "walk: a directory link out");
	is_str(open_as(rootfd, "abs-out", 1), "ELOOP", "walk: an absolute link");
	is_str(open_as(rootfd, "etc/passwd", 1), "ENOTDIR", "walk: a link to /etc");
	is_str(open_as(rootfd, "nope/x", 1), "ENOENT", "walk: a missing directory");
	is_str(open_as(rootfd, "", 1), "ok:(dir)", "walk: \"\" is the root");
	close(rootfd);

	/* ---- Range ---- */
	is_str(range_of("bytes=0-9", 100), "0+10", "bytes=0-9");
	is_str(range_of("bytes=90-", 100), "90+10", "bytes=90-");
	is_str(range_of("bytes=-10", 100), "90+10", "bytes=-10: the last 10");
	is_str(range_of("bytes=-1000", 100), "0+100", "a suffix longer than the file: all of it");
	is_str(range_of("bytes=50-5000", 100), "50+50", "a last byte past the end: cut at the end");
	is_str(range_of("bytes=99-99", 100), "99+1", "the last byte");
	is_str(range_of("BYTES = 0-0", 100), "whole", "no space before the =");
	is_str(range_of("Bytes=0-0", 100), "0+1", "the unit in any case");
	is_str(range_of("bytes= 1-2 ", 100), "1+2", "spaces around the range");
	is_str(range_of("bytes=100-", 100), "416", "a first byte at the end: 416");
	is_str(range_of("bytes=200-300", 100), "416", "... or past it");
	is_str(range_of("bytes=-0", 100), "416", "a suffix of 0 bytes: 416");
	is_str(range_of("bytes=0-", 0), "416", "an empty file: every range is 416");
	is_str(range_of("bytes=-5", 0), "416", "... a suffix too");
	is_str(range_of("bytes=0-1,5-6", 100), "whole", "several ranges: the whole file");
	is_str(range_of("bytes=0-1, 5-6", 100), "whole", "... with a space");
	is_str(range_of("bytes=5-1", 100), "whole", "last before first: invalid, ignored");
	is_str(range_of("bytes=a-b", 100), "whole", "not numbers: ignored");
	is_str(range_of("bytes=-", 100), "whole", "no number at all: ignored");
	is_str(range_of("bytes=1", 100), "whole", "no dash: ignored");
	is_str(range_of("items=0-1", 100), "whole", "another unit: ignored");
	is_str(range_of("bytes=0-99999999999999999999999", 100), "0+100",
	    "a huge last byte saturates: all of it");
	is_str(range_of("bytes=99999999999999999999999-", 100), "416", "a huge first byte: 416");
	is_str(range_of("bytes=-99999999999999999999999", 100), "0+100", "a huge suffix: all of it");

	/* ---- entity tags ---- */
	ok(static_etag_match("\"a-1\"", "\"a-1\"", 1), "the same tag matches");
	ok(static_etag_match("\"x\", \"a-1\"", "\"a-1\"", 1), "... in a list");
	ok(static_etag_match("\"x\",\"a-1\"", "\"a-1\"", 0), "... without a space, strongly");
	ok(static_etag_match("W/\"a-1\"", "\"a-1\"", 1), "weak comparison: W/ matches");
	ok(!static_etag_match("W/\"a-1\"", "\"a-1\"", 0), "strong comparison: W/ does not");
	ok(static_etag_match("*", "\"a-1\"", 0), "* matches");
	ok(!static_etag_match("\"a-2\"", "\"a-1\"", 1), "another tag does not");
	ok(!static_etag_match("\"a-1", "\"a-1\"", 1), "an unterminated tag does not");
	ok(!static_etag_match("a-1", "\"a-1\"", 1), "an unquoted one does not");
	ok(!static_etag_match("\"a-10\"", "\"a-1\"", 1), "a longer one does not");
	ok(!static_etag_match("", "\"a-1\"", 1), "an empty list matches nothing");

	/* ---- mime.types ---- */
	put("mime.types", "# comment\n"
	    "text/html\t\t\t\thtml htm shtml\n"
	    "  text/css css # trailing comment\n"
	    "application/javascript js mjs\n"
	    "image/png png\n"
	    "image/x-icon ico\n"
	    "text/x-dup  png\n"           /* a second type for png: the first wins */
	    "application/x-noext\n"       /* a type without extension */
	    "badtype nope\n"              /* no slash: skipped */
	    "application/json json\n"
	    "\n");
	snprintf(path, sizeof(path), "%s/mime.types", dir);
	m = mime_load(path, err, sizeof(err));
	ok(m != NULL, "a mime.types file loads");
	is_int((long long)mime_count(m), 9, "9 extensions (a duplicate kept once, a bad line skipped)");
	is_str(mime_lookup(m, "index.html"), "text/html; charset=utf-8", "html: text gets a charset");
	is_str(mime_lookup(m, "a/b/site.CSS"), "text/css; charset=utf-8", "CSS: any case");
	is_str(mime_lookup(m, "app.mjs"), "application/javascript; charset=utf-8",
	    "JavaScript gets a charset too");
	is_str(mime_lookup(m, "data.json"), "application/json; charset=utf-8", "so does JSON");
	is_str(mime_lookup(m, "logo.png"), "image/png", "png: the first type listed");
	is_str(mime_lookup(m, "favicon.ico"), "image/x-icon", "ico");
	ok(mime_lookup(m, "README") == NULL, "no extension: none");
	ok(mime_lookup(m, "x.nope") == NULL, "a bad line's extension: none");
	ok(mime_lookup(m, "dir.png/file") == NULL, "a dot in a directory is no extension");
	ok(mime_lookup(m, "file.") == NULL, "a final dot: none");
	mime_free(m);
	m = mime_load("/nonexistent/mime.types", err, sizeof(err));
	ok(m == NULL, "a missing file does not load");
	like(err, "/nonexistent/mime.types: No such file or directory", "... and says why");
	ok(mime_lookup(NULL, "a.html") == NULL, "no table: no type");
	if (access(MIME_DEFAULT_PATH, R_OK) == 0) {
		m = mime_load(MIME_DEFAULT_PATH, err, sizeof(err));
		ok(m != NULL && mime_count(m) > 500, "Debian's /etc/mime.types loads");
		is_str(mime_lookup(m, "a.html"), "text/html; charset=utf-8", "... html");
		is_str(mime_lookup(m, "a.svg"), "image/svg+xml", "... svg");
		is_str(mime_lookup(m, "a.woff2"), "font/woff2", "... woff2");
		mime_free(m);
	} else {
		printf("ok %d # skip no %s (the media-types package)\n", ++tap_n, MIME_DEFAULT_PATH);
	}

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		printf("# cannot remove %s\n", dir);
	return done_testing();
}
