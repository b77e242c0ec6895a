/*
 * The table of media types by extension (mime.h): the extensions sorted,
 * lowercase, each pointing at its type's Content-Type value.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/mime.h"

#define EXT_MAX 32               /* longer extensions are not looked up */
#define TYPE_MAX 96              /* longer types are skipped (the HTTP layer cuts at 128) */
#define CHARSET "; charset=utf-8"

struct mime_ext {
	char *ext;
	const char *type;
	size_t order;                /* the line it came from: the first one wins */
};

struct mime_table {
	struct mime_ext *v;
	size_t n, cap;
	char **types;                /* the Content-Type values, owned */
	size_t ntypes, types_cap;
};

static int
by_ext(const void *a, const void *b)
{
	const struct mime_ext *x = a, *y = b;
	int c = strcmp(x->ext, y->ext);

	return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

/* Text gets a charset, as Express (send) gives it. */
static int
is_text(const char *type)
{
	return strncmp(type, "text/", 5) == 0 || strcmp(type, "application/javascript") == 0 ||
	    strcmp(type, "application/json") == 0;
}

/* type/subtype: printable, no space, one slash, neither half empty. */
static int
valid_type(const char *s)
{
	const char *slash = strchr(s, '/');

	if (slash == NULL || slash == s || slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
	    strlen(s) > TYPE_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s >= 127 || *s == ';' || *s == '"')
			return 0;
	return 1;
}

static const char *
add_type(struct mime_table *t, const char *type)
{
	size_t n = strlen(type);
	char *v;

	if (t->ntypes == t->types_cap) {
		size_t cap = t->types_cap ? t->types_cap * 2 : 256;
		char **grown = realloc(t->types, cap * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		t->types = grown;
		t->types_cap = cap;
	}
	if ((v = malloc(n + sizeof(CHARSET))) == NULL)
		return NULL;
	memcpy(v, type, n + 1);
	if (is_text(type))
		memcpy(v + n, CHARSET, sizeof(CHARSET));
	t->types[t->ntypes++] = v;
	return v;
}

static int
add_ext(struct mime_table *t, const char *ext, const char *type, size_t order)
{
	size_t n = strlen(ext);
	char *e;

	if (n == 0 || n > EXT_MAX)
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct mime_ext *grown = realloc(t->v, cap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		t->v = grown;
		t->cap = cap;
	}
	if ((e = strdup(ext)) == NULL)
		return -1;
	for (char *p = e; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	t->v[t->n++] = (struct mime_ext){ .ext = e, .type = type, .order = order };
	return 0;
}

/* One line: a type and its extensions. 0, or -1 out of memory. */
static int
parse_line(struct mime_table *t, char *line, size_t order)
{
	static const char ws[] = " \t\r\n";
	char *save, *name, *word, *hash = strchr(line, '#');
	const char *type;

	if (hash != NULL)
		*hash = '\0';
	if ((name = strtok_r(line, ws, &save)) == NULL || !valid_type(name))
		return 0;
	if ((word = strtok_r(NULL, ws, &save)) == NULL)
		return 0;                /* a type with no extension */
	if ((type = add_type(t, name)) == NULL)
		return -1;
	for (; word != NULL; word = strtok_r(NULL, ws, &save))
		if (add_ext(t, word, type, order) == -1)
			return -1;
	return 0;
}

struct mime_table *
mime_load(const char *path, char *err, size_t errlen)
{
	struct mime_table *t = calloc(1, sizeof(*t));
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, order = 0, k = 0;

	if (t == NULL || f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(t == NULL ? ENOMEM : errno));
		goto fail;
	}
	while (getline(&line, &cap, f) != -1)
		if (parse_line(t, line, order++) == -1) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	free(line);
	fclose(f);
	/* Sorted by extension, then by line; the first of each extension stays. */
	if (t->n > 0)
		qsort(t->v, t->n, sizeof(*t->v), by_ext);
	for (size_t i = 0; i < t->n; i++) {
		if (k > 0 && strcmp(t->v[k - 1].ext, t->v[i].ext) == 0) {
			free(t->v[i].ext);
			continue;
		}
		t->v[k++] = t->v[i];
	}
	t->n = k;
	return t;
fail:
	free(line);
	if (f != NULL)
		fclose(f);
	mime_free(t);
	return NULL;
}

const char *
mime_lookup(const struct mime_table *t, const char *name)
{
	const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
	char ext[EXT_MAX + 1];
	size_t n, lo = 0, hi;

	if (t == NULL || dot == NULL || (slash != NULL && slash > dot) || dot[1] == '\0' ||
	    (n = strlen(dot + 1)) > EXT_MAX)
		return NULL;
	for (size_t i = 0; i <= n; i++)
		ext[i] = (char)tolower((unsigned char)dot[1 + i]);
	hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ext, t->v[mid].ext);
		if (c == 0)
			return t->v[mid].type;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t
mime_count(const struct mime_table *t)
{
	return t != NULL ? t->n : 0;
}

void
mime_free(struct mime_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].ext);
	for (size_t i = 0; i < t->ntypes; i++)
		free(t->types[i]);
	free(t->v);
	free(t->types);
	free(t);
}
