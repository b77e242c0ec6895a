/*
 * What json-c lets through and a config must not have. json-c parses the
 * config non-strict, since strict mode would refuse the comments that
 * config files want; it then also takes trailing commas, keeps the last of
 * two equal keys without a word ("routes" twice: the first list is lost),
 * and ends a string at "\u0000" for every C string we take from it. This
 * scan of the text, after json-c has accepted it, refuses all three and
 * names the key where each is.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "conf/strict.h"

struct frame {
	int object;                  /* else an array */
	size_t index;                /* an array's element */
	char *key;                   /* an object's current key */
	char **keys;                 /* an object's keys so far, sorted */
	size_t nkeys, capkeys;
};

struct scan {
	const char *text, *p, *end;
	struct frame *stack;
	size_t depth, cap;
	char *why;
	size_t whylen;
};

/* "routes[3].prefix": where the scan is, for messages; top: with the innermost key or index. */
static void
where(const struct scan *s, int top, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i + !top < s->depth && n < len; i++) {
		const struct frame *f = &s->stack[i];
		if (f->object && f->key != NULL)
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "." : "", f->key);
		else if (!f->object)
			n += (size_t)snprintf(buf + n, len - n, "[%zu]", f->index);
	}
}

static int
fail(struct scan *s, int top, const char *what)
{
	char path[256];
	int line = 1, col = 1;

	for (const char *q = s->text; q < s->p; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	where(s, top, path, sizeof(path));
	snprintf(s->why, s->whylen, "%s%sline %d, column %d: %s", path, *path ? ": " : "",
	    line, col, what);
	return -1;
}

static void
skip_space(struct scan *s)
{
	while (s->p < s->end) {
		if (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r') {
			s->p++;
		} else if (s->p + 1 < s->end && s->p[0] == '/' && s->p[1] == '/') {
			while (s->p < s->end && *s->p != '\n')
				s->p++;
		} else if (s->p + 1 < s->end && s->p[0] == '/' && s->p[1] == '*') {
			const char *e = s->p + 2;
			while (e + 1 < s->end && !(e[0] == '*' && e[1] == '/'))
				e++;
			s->p = e + 2 <= s->end ? e + 2 : s->end;
		} else
			break;
	}
}

/*
 * A string token at s->p, in double or (as json-c takes them) single
 * quotes: its decoded text (malloc'd), or NULL with s->why set.
 */
static char *
string_token(struct scan *s)
{
	const char *start = s->p, *q = s->p + 1;
	char quote = *s->p;
	json_object *o;
	char *copy, *out = NULL;

	for (; q < s->end && *q != quote; q++) {
		if (*q != '\\')
			continue;
		if (q + 5 < s->end && memcmp(q, "\\u0000", 6) == 0) {
			s->p = q;
			fail(s, 1, "a string holds \\u0000, which would cut it short");
			return NULL;
		}
		q++;                 /* the escaped character */
	}
	s->p = q < s->end ? q + 1 : s->end;
	/* json-c decodes it, escapes and all, as it did the whole text */
	if ((copy = strndup(start, (size_t)(s->p - start))) == NULL) {
		snprintf(s->why, s->whylen, "out of memory");
		return NULL;
	}
	if ((o = json_tokener_parse(copy)) != NULL && json_object_is_type(o, json_type_string))
		out = strdup(json_object_get_string(o));
	json_object_put(o);
	free(copy);
	if (out == NULL)
		snprintf(s->why, s->whylen, "out of memory");
	return out;
}

/* Adds key to the object on top; -1 if it has it already. */
static int
add_key(struct scan *s, char *key)
{
	struct frame *f = &s->stack[s->depth - 1];
	size_t lo = 0, hi = f->nkeys;

	while (lo < hi) {        /* sorted: O(log n) a key, whatever the object's size */
		size_t mid = (lo + hi) / 2;
		int c = strcmp(f->keys[mid], key);
		if (c == 0)
			return -1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (f->nkeys == f->capkeys) {
		size_t cap = f->capkeys ? f->capkeys * 2 : 8;
		char **grown = realloc(f->keys, cap * sizeof(*grown));
		if (grown == NULL)
			return -2;
		f->keys = grown;
		f->capkeys = cap;
	}
	memmove(f->keys + lo + 1, f->keys + lo, (f->nkeys - lo) * sizeof(*f->keys));
	f->keys[lo] = key;
	f->nkeys++;
	return 0;
}

static int
push(struct scan *s, int object)
{
	if (s->depth == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct frame *grown = realloc(s->stack, cap * sizeof(*grown));
		if (grown == NULL) {
			snprintf(s->why, s->whylen, "out of memory");
			return -1;
		}
		s->stack = grown;
		s->cap = cap;
	}
	s->stack[s->depth++] = (struct frame){ .object = object };
	return 0;
}

static void
pop(struct scan *s)
{
	struct frame *f = &s->stack[--s->depth];

	for (size_t i = 0; i < f->nkeys; i++)
		free(f->keys[i]);
	free(f->keys);
}

int
json_strict_check(const char *text, size_t len, char *why, size_t whylen)
{
	struct scan s = { .text = text, .p = text, .end = text + len, .why = why,
	    .whylen = whylen };
	int want_key = 0, rc = -1;

	for (;;) {
		skip_space(&s);
		if (s.p >= s.end) {
			rc = 0;
			break;
		}
		char ch = *s.p;
		if (ch == '{' || ch == '[') {
			if (push(&s, ch == '{') == -1)
				break;
			s.p++;
			want_key = ch == '{';
		} else if (ch == '}' || ch == ']') {
			if (s.depth > 0)
				pop(&s);
			s.p++;
			want_key = 0;
		} else if (ch == ',') {
			const char *comma = s.p++;
			skip_space(&s);
			if (s.p < s.end && (*s.p == '}' || *s.p == ']')) {
				s.p = comma;
				fail(&s, 0, "a trailing comma");
				break;
			}
			if (s.depth > 0) {
				struct frame *f = &s.stack[s.depth - 1];
				f->index++;
				want_key = f->object;
			}
		} else if (ch == '"' || ch == '\'') {
			const char *start = s.p;
			char *str = string_token(&s);
			if (str == NULL)
				break;
			if (!want_key || s.depth == 0) {
				free(str);
				continue;
			}
			struct frame *f = &s.stack[s.depth - 1];
			f->key = str;        /* for messages, until the next key */
			int added = add_key(&s, str);
			if (added == -2) {
				free(str);
				snprintf(why, whylen, "out of memory");
				break;
			}
			if (added == -1) {
				s.p = start;
				fail(&s, 1, "a duplicate key: the object has it already");
				free(str);
				break;
			}
			want_key = 0;
		} else
			s.p++;           /* ':' and the bytes of numbers and literals */
	}
	while (s.depth > 0)
		pop(&s);
	free(s.stack);
	return rc;
}
