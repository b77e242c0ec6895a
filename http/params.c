/*
 * Query strings: "a=1&b=x%20y" split into decoded key/value pairs.
 * '+' is a space (HTML forms); a bad %-escape makes the whole string
 * malformed, so that a service can answer 400 rather than guess.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "http/http.h"

struct http_param {
	char *key, *value;
};

struct http_params {
	struct http_param *v;
	size_t n;
	char *buf;                   /* every key and value, decoded in place */
};

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
http_unescape(const char *s, size_t n, char *out, size_t outlen, int plus)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+' && plus)
			c = ' ';
		else if (c == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = hi < 0 ? -1 : hexval(s[i + 2]);
			if (lo < 0)
				return -1;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (c == '\0' || k + 1 >= outlen)
			return -1;
		out[k++] = c;
	}
	out[k] = '\0';
	return 0;
}

/* Decodes s in place: the result is never longer. */
static int
decode(char *s)
{
	size_t n = strlen(s);

	return http_unescape(s, n, s, n + 1, 1);
}

static int
add(struct http_params *p, char *pair)
{
	char *eq = strchr(pair, '=');
	struct http_param *grown;

	if (*pair == '\0')
		return 0;               /* "a=1&&b=2": empty pieces are harmless */
	if ((grown = realloc(p->v, (p->n + 1) * sizeof(*grown))) == NULL)
		return -1;
	p->v = grown;
	if (eq != NULL)
		*eq = '\0';
	p->v[p->n].key = pair;
	p->v[p->n].value = eq != NULL ? eq + 1 : pair + strlen(pair);
	if (decode(p->v[p->n].key) == -1 || decode(p->v[p->n].value) == -1)
		return -1;
	p->n++;
	return 0;
}

struct http_params *
http_params_parse(struct http_req *req)
{
	const char *query = http_req_query(req);
	struct http_params *p = calloc(1, sizeof(*p));
	char *pair, *next;

	if (p == NULL)
		return NULL;
	if (query == NULL)
		return p;
	if ((p->buf = strdup(query)) == NULL)
		goto fail;
	for (pair = p->buf; pair != NULL; pair = next) {
		if ((next = strchr(pair, '&')) != NULL)
			*next++ = '\0';
		if (add(p, pair) == -1)
			goto fail;
	}
	return p;
fail:
	http_params_free(p);
	return NULL;
}

const char *
http_params_get(const struct http_params *p, const char *key)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].key, key) == 0)
			return p->v[i].value;
	return NULL;
}

void
http_params_free(struct http_params *p)
{
	if (p == NULL)
		return;
	free(p->v);
	free(p->buf);
	free(p);
}
