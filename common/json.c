#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/json.h"

/* The escape for c ("\\n", "\\u001f", ...) into e; 0 when c needs none. */
static size_t
escape_char(unsigned char c, char e[7])
{
	switch (c) {
	case '"': return (size_t)snprintf(e, 7, "\\\"");
	case '\\': return (size_t)snprintf(e, 7, "\\\\");
	case '\n': return (size_t)snprintf(e, 7, "\\n");
	case '\r': return (size_t)snprintf(e, 7, "\\r");
	case '\t': return (size_t)snprintf(e, 7, "\\t");
	default:
		if (c < 0x20 || c == 0x7f)
			return (size_t)snprintf(e, 7, "\\u%04x", c);
		return 0;
	}
}

size_t
json_escape(char *out, size_t outlen, const char *s)
{
	size_t n = 0, k;
	char e[7];

	if (outlen == 0)
		return 0;
	for (; *s != '\0'; s++) {
		if ((k = escape_char((unsigned char)*s, e)) == 0) {
			if (n + 1 >= outlen)
				break;
			out[n++] = *s;
			continue;
		}
		if (n + k >= outlen)
			break;
		memcpy(out + n, e, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}

void
json_quote(struct evbuffer *buf, const char *s)
{
	const char *run = s;
	size_t k;
	char e[7];

	evbuffer_add(buf, "\"", 1);
	for (; *s != '\0'; s++) {
		if ((k = escape_char((unsigned char)*s, e)) == 0)
			continue;
		evbuffer_add(buf, run, (size_t)(s - run));
		evbuffer_add(buf, e, k);
		run = s + 1;
	}
	evbuffer_add(buf, run, (size_t)(s - run));
	evbuffer_add(buf, "\"", 1);
}
