/*
 * The Redis adapter of the socketio service (see redis.h): the codec
 * between struct sio_bcast and the msgpack messages of
 * @socket.io/redis-adapter, and the two hiredis connections that carry
 * them, which retry for as long as Redis is away.
 *
 * Checked against the Node packages: @socket.io/redis-adapter 8.3.0,
 * @socket.io/redis-emitter 5.1.0, notepack.io 3.0.1 (their msgpack),
 * socket.io 4.8.4, socket.io-parser 4.2.7; and against hiredis 0.14.1's
 * async.c and libevent 2.1.12's evdns.c for who frees what, and when.
 */
#include "config.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <json-c/json.h>
#include <msgpack.h>
#include <msgpack/timestamp.h>

#include "common/log.h"
#include "common/time.h"
#include "svc/socketio/redis.h"

/* msgpack-c's MSGPACK_EMBED_STACK_SIZE: it cannot unpack deeper nesting. */
#define MSGPACK_NEST          32

#define CONNECT_TIMEOUT_MS    2000      /* name resolution and TCP connect */
#define BACKOFF_MIN_MS        100
#define BACKOFF_MAX_MS        5000
#define STABLE_MS             2000      /* a connection that lived this long resets the back-off */
#define MAX_INFLIGHT          (64u << 20) /* bytes of PUBLISH not yet answered */
#define LOG_EVERY_MS          60000     /* at most one line per kind of trouble */
#define KEEP_SBUF             (1u << 20) /* the encoding buffer kept between publishes */

/* ------------------------------------------------------------------ */
/* The URL                                                             */
/* ------------------------------------------------------------------ */

static int
url_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
url_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* n decimal digits and nothing else, at most max. */
static int
parse_number(const char *s, size_t n, long max, long *out)
{
	long v = 0;

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * A host name as RFC 1123 has it, with "_" besides (container and compose
 * service names have it, and resolvers take it). All digits and dots is a
 * mistyped IPv4 address, not a name.
 */
static bool
valid_name(const char *s, size_t n)
{
	size_t label = 0;
	bool letter = false;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-' && c != '_')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
		if (!is_digit(c) && c != '.')
			letter = true;
	}
	return letter && s[n - 1] != '-';
}

/* At most this much of what the user wrote goes back into a message. */
#define ECHO(n) ((int)((n) > 64 ? 64 : (n)))

int
sio_redis_url_parse(const char *url, struct sio_redis_url *out, char *err, size_t errlen)
{
	const char *auth, *end, *port = NULL;
	size_t hostlen, portlen = 0;
	struct in_addr a4;
	struct in6_addr a6;
	long v;

	memset(out, 0, sizeof(*out));
	if (url == NULL || *url == '\0')
		return url_fail(err, errlen, "redis: the URL is empty "
		    "(expected redis://host[:port][/db])");
	if (strncasecmp(url, "redis://", 8) != 0) {
		if (strncasecmp(url, "rediss://", 9) == 0)
			return url_fail(err, errlen, "redis: TLS (rediss://) is not supported");
		if (strncasecmp(url, "unix:", 5) == 0 || strncasecmp(url, "redis+unix:", 11) == 0 ||
		    strncasecmp(url, "redis-socket:", 13) == 0 || url[0] == '/')
			return url_fail(err, errlen, "redis: Unix sockets are not supported "
			    "(expected redis://host[:port][/db])");
		return url_fail(err, errlen, "redis: the URL must start with redis:// "
		    "(redis://host[:port][/db])");
	}
	/* Anywhere, so that no part of a password is ever echoed. */
	if (strchr(url, '@') != NULL)
		return url_fail(err, errlen, "redis: a user name or password in the URL "
		    "is not supported yet");
	auth = url + 8;
	end = auth + strcspn(auth, "/?#");
	if (auth == end)
		return url_fail(err, errlen, "redis: the URL has no host");

	if (*auth == '[') {
		const char *rb = memchr(auth, ']', (size_t)(end - auth));

		if (rb == NULL)
			return url_fail(err, errlen, "redis: the host has a [ but no ]");
		hostlen = (size_t)(rb - auth - 1);
		if (hostlen == 0 || hostlen >= sizeof(out->host))
			return url_fail(err, errlen, "redis: \"%.*s\" is not an IPv6 address",
			    ECHO(hostlen), auth + 1);
		memcpy(out->host, auth + 1, hostlen);
		out->host[hostlen] = '\0';
		if (inet_pton(AF_INET6, out->host, &a6) != 1)
			return url_fail(err, errlen, "redis: \"%.64s\" is not an IPv6 address",
			    out->host);
		out->numeric = true;
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return url_fail(err, errlen, "redis: unexpected \"%.*s\" after "
				    "the IPv6 address", ECHO(end - rb - 1), rb + 1);
			port = rb + 2;
			portlen = (size_t)(end - port);
		}
	} else {
		const char *colon = memchr(auth, ':', (size_t)(end - auth));

		if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
			return url_fail(err, errlen, "redis: an IPv6 address must be in brackets, "
			    "as in redis://[::1]:6379");
		hostlen = colon != NULL ? (size_t)(colon - auth) : (size_t)(end - auth);
		if (hostlen == 0)
			return url_fail(err, errlen, "redis: the URL has no host");
		if (hostlen >= sizeof(out->host))
			return url_fail(err, errlen, "redis: the host name is too long");
		memcpy(out->host, auth, hostlen);
		out->host[hostlen] = '\0';
		if (inet_pton(AF_INET, out->host, &a4) == 1)
			out->numeric = true;
		else if (!valid_name(out->host, hostlen))
			return url_fail(err, errlen, "redis: \"%.64s\" is not a valid host name "
			    "or IPv4 address", out->host);
		if (colon != NULL) {
			port = colon + 1;
			portlen = (size_t)(end - port);
		}
	}

	out->port = SIO_REDIS_DEFAULT_PORT;
	if (port != NULL) {
		if (parse_number(port, portlen, 65535, &v) == -1 || v == 0)
			return url_fail(err, errlen, "redis: bad port \"%.*s\" (expected 1-65535)",
			    ECHO(portlen), port);
		out->port = (int)v;
	}
	if (*end == '/') {
		const char *db = end + 1;
		size_t dblen = strcspn(db, "?#");

		if (dblen > 0) {
			if (parse_number(db, dblen, INT_MAX, &v) == -1)
				return url_fail(err, errlen, "redis: bad database \"%.*s\" "
				    "(expected a number)", ECHO(dblen), db);
			out->db = (int)v;
		}
		end = db + dblen;
	}
	if (*end == '?')
		return url_fail(err, errlen, "redis: URL options (\"?...\") are not supported");
	if (*end == '#')
		return url_fail(err, errlen, "redis: unexpected \"#\" in the URL");
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checks shared by both directions                                    */
/* ------------------------------------------------------------------ */

/*
 * Strict UTF-8 (no overlong forms, no surrogates). What we deliver ends up
 * in WebSocket text frames, where invalid UTF-8 makes clients close the
 * connection (1007).
 */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], cp, min;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Encoding: struct sio_bcast to msgpack                               */
/* ------------------------------------------------------------------ */

struct enc {
	msgpack_packer pk;
	const struct sio_bcast *b;
	char *err;
	size_t errlen;
};

static int
enc_fail(struct enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
enc_fail(struct enc *e, const char *fmt, ...)
{
	va_list ap;

	if (e->err != NULL && e->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(e->err, e->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	if (msgpack_pack_str(pk, n) != 0)
		return -1;
	return n == 0 ? 0 : msgpack_pack_str_body(pk, s, n);
}

static int
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
	if (msgpack_pack_bin(pk, n) != 0)
		return -1;
	return n == 0 ? 0 : msgpack_pack_bin_body(pk, p, n);
}

static int pack_json(struct enc *e, json_object *o, int depth);

/* An object: a placeholder becomes the attachment it names, in place. */
static int
pack_object(struct enc *e, json_object *o, int depth)
{
	json_object *ph, *num;
	int64_t i;

	/* socket.io-parser's test: "_placeholder" is true, other keys do not matter. */
	if (json_object_object_get_ex(o, "_placeholder", &ph) &&
	    json_object_is_type(ph, json_type_boolean) && json_object_get_boolean(ph)) {
		if (!json_object_object_get_ex(o, "num", &num) ||
		    !json_object_is_type(num, json_type_int))
			return enc_fail(e, "a placeholder without an integer num");
		i = json_object_get_int64(num);
		if (i < 0 || (uint64_t)i >= e->b->natt)
			return enc_fail(e, "placeholder num %" PRId64 " but %zu attachments",
			    i, e->b->natt);
		if (pack_bin(&e->pk, e->b->att[i].p, e->b->att[i].len) != 0)
			return enc_fail(e, "out of memory");
		return 0;
	}
	if (depth > SIO_REDIS_MAX_DEPTH)
		return enc_fail(e, "data nested deeper than %d levels", SIO_REDIS_MAX_DEPTH);
	if (msgpack_pack_map(&e->pk, (size_t)json_object_object_length(o)) != 0)
		return enc_fail(e, "out of memory");
	json_object_object_foreach(o, k, v) {
		if (!utf8_valid((const unsigned char *)k, strlen(k)))
			return enc_fail(e, "a key that is not valid UTF-8");
		if (pack_str(&e->pk, k, strlen(k)) != 0)
			return enc_fail(e, "out of memory");
		if (pack_json(e, v, depth + 1) == -1)
			return -1;
	}
	return 0;
}

static int
pack_json(struct enc *e, json_object *o, int depth)
{
	int rc;

	switch (json_object_get_type(o)) {
	case json_type_null:
		rc = msgpack_pack_nil(&e->pk);
		break;
	case json_type_boolean:
		rc = json_object_get_boolean(o) ? msgpack_pack_true(&e->pk) :
		    msgpack_pack_false(&e->pk);
		break;
	case json_type_double: {
		double d = json_object_get_double(o);

		/* json-c reads NaN and Infinity, JSON has neither: null, as JSON.stringify. */
		rc = isfinite(d) ? msgpack_pack_double(&e->pk, d) : msgpack_pack_nil(&e->pk);
		break;
	}
	case json_type_int: {
		int64_t v = json_object_get_int64(o);

		/* json-c keeps integers above INT64_MAX as unsigned; get_int64 clamps them. */
		rc = v == INT64_MAX ? msgpack_pack_uint64(&e->pk, json_object_get_uint64(o)) :
		    msgpack_pack_int64(&e->pk, v);
		break;
	}
	case json_type_string: {
		const char *p = json_object_get_string(o);
		size_t n = (size_t)json_object_get_string_len(o);

		/* json-c lets overlong forms through: other hosts would refuse them. */
		if (!utf8_valid((const unsigned char *)p, n))
			return enc_fail(e, "a string that is not valid UTF-8");
		rc = pack_str(&e->pk, p, n);
		break;
	}
	case json_type_array: {
		size_t n = json_object_array_length(o);

		if (depth > SIO_REDIS_MAX_DEPTH)
			return enc_fail(e, "data nested deeper than %d levels", SIO_REDIS_MAX_DEPTH);
		if (msgpack_pack_array(&e->pk, n) != 0)
			return enc_fail(e, "out of memory");
		for (size_t i = 0; i < n; i++)
			if (pack_json(e, json_object_array_get_idx(o, i), depth + 1) == -1)
				return -1;
		return 0;
	}
	case json_type_object:
		return pack_object(e, o, depth);
	default:
		return enc_fail(e, "unexpected JSON type");
	}
	return rc == 0 ? 0 : enc_fail(e, "out of memory");
}

static int
pack_list(msgpack_packer *pk, const char *const *v, size_t n)
{
	if (msgpack_pack_array(pk, n) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (pack_str(pk, v[i], strlen(v[i])) != 0)
			return -1;
	return 0;
}

static bool
valid_text(const char *s)
{
	return s != NULL && utf8_valid((const unsigned char *)s, strlen(s));
}

static bool
valid_list(const char *const *v, size_t n)
{
	if (n > 0 && v == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!valid_text(v[i]))
			return false;
	return true;
}

/*
 * [uid, {type: 2, data, nsp}, {rooms, except, flags: {}}]: the keys in the
 * order the adapter writes them, so that the bytes are the adapter's own.
 */
static int
encode(const struct sio_bcast *b, const char *uid, msgpack_sbuffer *out,
    char *err, size_t errlen)
{
	struct enc e = { .b = b, .err = err, .errlen = errlen };
	struct json_tokener *tok = NULL;
	json_object *data = NULL, *ev;
	const char *nsp;
	msgpack_packer *pk = &e.pk;
	int rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	out->size = 0;
	if (b == NULL || uid == NULL || b->data == NULL) {
		enc_fail(&e, "no broadcast");
		goto done;
	}
	nsp = b->nsp != NULL ? b->nsp : "/";
	if (!valid_text(uid) || !valid_text(nsp) || !valid_list(b->rooms, b->nrooms) ||
	    !valid_list(b->except, b->nexcept)) {
		enc_fail(&e, "a uid, namespace or room that is NULL or not UTF-8");
		goto done;
	}
	if (b->natt > 0 && b->att == NULL) {
		enc_fail(&e, "no attachment list");
		goto done;
	}
	if (b->natt > SIO_REDIS_MAX_ATT) {
		enc_fail(&e, "%zu attachments (at most %d)", b->natt, SIO_REDIS_MAX_ATT);
		goto done;
	}
	if (b->datalen > SIO_REDIS_MAX_MSG) {
		enc_fail(&e, "%zu bytes of data (at most %u)", b->datalen, SIO_REDIS_MAX_MSG);
		goto done;
	}
	/* Placeholders are objects in JSON but not in msgpack: one more level. */
	if ((tok = json_tokener_new_ex(SIO_REDIS_MAX_DEPTH + 2)) == NULL) {
		enc_fail(&e, "out of memory");
		goto done;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	data = json_tokener_parse_ex(tok, b->data, (int)b->datalen);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		enc_fail(&e, "data is not JSON: %s",
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		goto done;
	}
	/* A NUL ends json-c's input early. */
	if (json_tokener_get_parse_end(tok) != b->datalen) {
		enc_fail(&e, "data is not JSON: bytes after its end");
		goto done;
	}
	if (!json_object_is_type(data, json_type_array) || json_object_array_length(data) == 0 ||
	    (ev = json_object_array_get_idx(data, 0), !json_object_is_type(ev, json_type_string))) {
		enc_fail(&e, "data is not an array starting with the event name");
		goto done;
	}

	msgpack_packer_init(pk, out, msgpack_sbuffer_write);
	if (msgpack_pack_array(pk, 3) != 0 || pack_str(pk, uid, strlen(uid)) != 0 ||
	    msgpack_pack_map(pk, 3) != 0 || pack_str(pk, "type", 4) != 0 ||
	    msgpack_pack_int(pk, 2) != 0 || pack_str(pk, "data", 4) != 0) {
		enc_fail(&e, "out of memory");
		goto done;
	}
	if (pack_json(&e, data, 1) == -1)
		goto done;
	if (pack_str(pk, "nsp", 3) != 0 || pack_str(pk, nsp, strlen(nsp)) != 0 ||
	    msgpack_pack_map(pk, 3) != 0 ||
	    pack_str(pk, "rooms", 5) != 0 || pack_list(pk, b->rooms, b->nrooms) != 0 ||
	    pack_str(pk, "except", 6) != 0 || pack_list(pk, b->except, b->nexcept) != 0 ||
	    pack_str(pk, "flags", 5) != 0 || msgpack_pack_map(pk, 0) != 0) {
		enc_fail(&e, "out of memory");
		goto done;
	}
	/* The other hosts would refuse it. */
	if (out->size > SIO_REDIS_MAX_MSG) {
		enc_fail(&e, "%zu bytes encoded (at most %u)", out->size, SIO_REDIS_MAX_MSG);
		goto done;
	}
	rc = 0;
done:
	if (rc == -1)
		out->size = 0;
	json_object_put(data);
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

int
sio_redis_encode(const struct sio_bcast *b, const char *uid, msgpack_sbuffer *out)
{
	char err[160];

	return encode(b, uid, out, err, sizeof(err));
}

/* ------------------------------------------------------------------ */
/* Decoding: msgpack to struct sio_bcast                               */
/* ------------------------------------------------------------------ */

static int
fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A big-endian length of n bytes at p[*i]. */
static int
be_length(const unsigned char *p, size_t len, size_t *i, int n, uint64_t *v)
{
	if (len - *i < (size_t)n)
		return -1;
	*v = 0;
	while (n-- > 0)
		*v = *v << 8 | p[(*i)++];
	return 0;
}

/*
 * msgpack-c allocates room for all the elements an array or map declares
 * before it reads one: five bytes declaring 2^32 pairs would cost 200 GB.
 * So this walks the framing first, decoding no value: it refuses a message
 * that declares more values than it has bytes left for (each takes at
 * least one), holds more than SIO_REDIS_MAX_VALUES, nests deeper than
 * msgpack-c can, is truncated or has bytes after its value (notepack.io
 * refuses those too). What msgpack-c then allocates is bounded by the
 * values that are really there.
 */
static int
frame_check(const unsigned char *p, size_t len, char *err, size_t errlen)
{
	uint64_t left[MSGPACK_NEST];  /* values still due in each open container */
	uint64_t pending = 0;         /* their sum */
	size_t i = 0, top = 0, values = 0;

	do {
		unsigned b;
		uint64_t kids = 0, skip = 0, n;
		bool container = false;
		int lenbytes = 0, extra = 0, map = 0;

		if (i >= len)
			return fail(err, errlen, "truncated message");
		b = p[i++];
		if (top > 0) {
			left[top - 1]--;
			pending--;
		}
		values++;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			;
		else if (b <= 0x8f)
			container = true, kids = 2u * (b & 0x0f);
		else if (b <= 0x9f)
			container = true, kids = b & 0x0f;
		else if (b <= 0xbf)
			skip = b & 0x1f;
		else switch (b) {
		case 0xc4: case 0xd9: lenbytes = 1; break;              /* bin 8, str 8 */
		case 0xc5: case 0xda: lenbytes = 2; break;
		case 0xc6: case 0xdb: lenbytes = 4; break;
		case 0xc7: lenbytes = 1, extra = 1; break;              /* ext: length, type */
		case 0xc8: lenbytes = 2, extra = 1; break;
		case 0xc9: lenbytes = 4, extra = 1; break;
		case 0xcc: case 0xd0: skip = 1; break;
		case 0xcd: case 0xd1: skip = 2; break;
		case 0xca: case 0xce: case 0xd2: skip = 4; break;
		case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
		case 0xd4: skip = 2; break;                             /* fixext: type, data */
		case 0xd5: skip = 3; break;
		case 0xd6: skip = 5; break;
		case 0xd7: skip = 9; break;
		case 0xd8: skip = 17; break;
		case 0xdc: container = true, lenbytes = 2; break;
		case 0xdd: container = true, lenbytes = 4; break;
		case 0xde: container = true, lenbytes = 2, map = 1; break;
		case 0xdf: container = true, lenbytes = 4, map = 1; break;
		default:
			return fail(err, errlen, "invalid msgpack byte 0x%02x", b);
		}
		if (lenbytes > 0) {
			if (be_length(p, len, &i, lenbytes, &n) == -1)
				return fail(err, errlen, "truncated message");
			if (container)
				kids = map ? 2 * n : n;
			else
				skip = n + (uint64_t)extra;
		}
		if (skip > len - i)
			return fail(err, errlen, "truncated message");
		i += (size_t)skip;
		if (container) {
			if (top >= MSGPACK_NEST)
				return fail(err, errlen, "nested deeper than %d levels", MSGPACK_NEST);
			if (pending + kids > len - i)
				return fail(err, errlen, "a container declares %" PRIu64
				    " values, more than the message holds", kids);
			if (values + pending + kids > SIO_REDIS_MAX_VALUES)
				return fail(err, errlen, "more than %u values",
				    SIO_REDIS_MAX_VALUES);
			if (kids > 0) {
				left[top++] = kids;
				pending += kids;
			}
		}
		while (top > 0 && left[top - 1] == 0)
			top--;
	} while (top > 0);
	if (i != len)
		return fail(err, errlen, "%zu bytes after the message", len - i);
	return 0;
}

struct dec {
	struct sio_att *att;
	size_t natt, attcap;
	char *key;                    /* a map key, NUL-terminated for json-c */
	size_t keycap;
	char *err;
	size_t errlen;
};

static int to_json(struct dec *d, const msgpack_object *o, int depth, json_object **out);

/*
 * msgpack-c leaves the pointer of an empty string or bin NULL: never
 * hand that to memcpy() and friends, or to a caller.
 */
static const char *
str_ptr(const msgpack_object *o)
{
	return o->via.str.size > 0 ? o->via.str.ptr : "";
}

static bool
is_str(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(str_ptr(o), s, n) == 0;
}

/* A string for a C string: no NUL, valid UTF-8. */
static bool
valid_cstr(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR &&
	    memchr(str_ptr(o), '\0', o->via.str.size) == NULL &&
	    utf8_valid((const unsigned char *)str_ptr(o), o->via.str.size);
}

/* A number as JSON.stringify writes it: no NaN or infinity, no -0. */
static int
number_json(struct dec *d, double v, json_object **out)
{
	char s[32];

	if (!isfinite(v))
		return 0;
	if (v == 0)
		v = 0;
	/* The shortest of these that reads back the same double; 17 always does. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			break;
	}
	if ((*out = json_object_new_double_s(v, s)) == NULL)
		return fail(d->err, d->errlen, "out of memory");
	return 0;
}

/*
 * A msgpack timestamp, which notepack.io makes of a JS Date and reads back
 * as one: what JSON.stringify writes of that Date, as a Node server would
 * send it on. notepack.io computes the time as seconds * 1e3 + ns / 1e6
 * in doubles, and a Date truncates it to milliseconds; beyond 8.64e15 ms
 * it is an invalid Date, which JSON.stringify writes as null.
 */
static int
timestamp_json(struct dec *d, const msgpack_object *o, json_object **out)
{
	msgpack_timestamp ts;
	struct tm tm;
	time_t secs;
	double x;
	long long ms, msec, year;
	char s[40];

	if (!msgpack_object_to_timestamp(o, &ts))
		return fail(d->err, d->errlen, "a msgpack timestamp of %u bytes", o->via.ext.size);
	x = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
	if (!(x <= 8.64e15 && x >= -8.64e15))
		return 0;
	ms = (long long)x;            /* toward zero, as ECMAScript's TimeClip */
	secs = (time_t)(ms / 1000);
	msec = ms % 1000;
	if (msec < 0) {
		msec += 1000;
		secs--;
	}
	if (gmtime_r(&secs, &tm) == NULL)
		return fail(d->err, d->errlen, "a timestamp out of range");
	year = (long long)tm.tm_year + 1900;
	/* Date.prototype.toISOString: six digits and a sign outside 0-9999. */
	if (year >= 0 && year <= 9999)
		snprintf(s, sizeof(s), "%04lld", year);
	else
		snprintf(s, sizeof(s), "%c%06lld", year < 0 ? '-' : '+', year < 0 ? -year : year);
	snprintf(s + strlen(s), sizeof(s) - strlen(s), "-%02d-%02dT%02d:%02d:%02d.%03lldZ",
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
	if ((*out = json_object_new_string(s)) == NULL)
		return fail(d->err, d->errlen, "out of memory");
	return 0;
}

/* A bin: the next attachment, and its placeholder in the JSON. */
static int
placeholder_json(struct dec *d, const msgpack_object *o, json_object **out)
{
	json_object *j, *v;

	if (d->natt >= SIO_REDIS_MAX_ATT)
		return fail(d->err, d->errlen, "more than %d binaries", SIO_REDIS_MAX_ATT);
	if (d->natt == d->attcap) {
		size_t cap = d->attcap == 0 ? 4 : 2 * d->attcap;
		struct sio_att *a = realloc(d->att, cap * sizeof(*a));

		if (a == NULL)
			return fail(d->err, d->errlen, "out of memory");
		d->att = a;
		d->attcap = cap;
	}
	if ((j = json_object_new_object()) == NULL)
		return fail(d->err, d->errlen, "out of memory");
	if ((v = json_object_new_boolean(1)) == NULL ||
	    json_object_object_add(j, "_placeholder", v) != 0)
		goto oom;
	if ((v = json_object_new_int64((int64_t)d->natt)) == NULL ||
	    json_object_object_add(j, "num", v) != 0)
		goto oom;
	d->att[d->natt].p = (const unsigned char *)(o->via.bin.size > 0 ? o->via.bin.ptr : "");
	d->att[d->natt].len = o->via.bin.size;
	d->natt++;
	*out = j;
	return 0;
oom:
	json_object_put(v);
	json_object_put(j);
	return fail(d->err, d->errlen, "out of memory");
}

static int
array_json(struct dec *d, const msgpack_object *o, int depth, json_object **out)
{
	json_object *j, *v;

	if (depth > SIO_REDIS_MAX_DEPTH)
		return fail(d->err, d->errlen, "data nested deeper than %d levels",
		    SIO_REDIS_MAX_DEPTH);
	if ((j = json_object_new_array_ext((int)o->via.array.size)) == NULL)
		return fail(d->err, d->errlen, "out of memory");
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		if (to_json(d, &o->via.array.ptr[i], depth + 1, &v) == -1) {
			json_object_put(j);
			return -1;
		}
		if (json_object_array_add(j, v) != 0) {
			json_object_put(v);
			json_object_put(j);
			return fail(d->err, d->errlen, "out of memory");
		}
	}
	*out = j;
	return 0;
}

static int
map_json(struct dec *d, const msgpack_object *o, int depth, json_object **out)
{
	json_object *j, *v;

	if (depth > SIO_REDIS_MAX_DEPTH)
		return fail(d->err, d->errlen, "data nested deeper than %d levels",
		    SIO_REDIS_MAX_DEPTH);
	if ((j = json_object_new_object()) == NULL)
		return fail(d->err, d->errlen, "out of memory");
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;

		/* notepack.io would make "1" of 1: JSON keys are strings, and we say so. */
		if (k->type != MSGPACK_OBJECT_STR) {
			fail(d->err, d->errlen, "a map key that is not a string (msgpack type %d)",
			    (int)k->type);
			goto fail;
		}
		if (!valid_cstr(k)) {
			fail(d->err, d->errlen, "a map key with a NUL byte or invalid UTF-8");
			goto fail;
		}
		/*
		 * Clients would take it for an attachment: binaries come as bin,
		 * and the hub may trust every placeholder it is given.
		 */
		if (is_str(k, "_placeholder") && val->type == MSGPACK_OBJECT_BOOLEAN &&
		    val->via.boolean) {
			fail(d->err, d->errlen, "a map with \"_placeholder\": true");
			goto fail;
		}
		if (k->via.str.size >= d->keycap) {
			size_t cap = k->via.str.size + 64;
			char *p = realloc(d->key, cap);

			if (p == NULL) {
				fail(d->err, d->errlen, "out of memory");
				goto fail;
			}
			d->key = p;
			d->keycap = cap;
		}
		/* The value first: converting it reuses d->key. */
		if (to_json(d, val, depth + 1, &v) == -1)
			goto fail;
		memcpy(d->key, str_ptr(k), k->via.str.size);
		d->key[k->via.str.size] = '\0';
		/*
		 * JavaScript would keep the last, and lose a binary the first held
		 * while we had counted it: no encoder of a JS object writes one.
		 */
		if (json_object_object_get_ex(j, d->key, NULL)) {
			json_object_put(v);
			fail(d->err, d->errlen, "a map with a duplicate key");
			goto fail;
		}
		if (json_object_object_add(j, d->key, v) != 0) {
			json_object_put(v);
			fail(d->err, d->errlen, "out of memory");
			goto fail;
		}
	}
	*out = j;
	return 0;
fail:
	json_object_put(j);
	return -1;
}

/* *out is NULL for null, which json-c represents so. */
static int
to_json(struct dec *d, const msgpack_object *o, int depth, json_object **out)
{
	json_object *j;

	*out = NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return 0;
	case MSGPACK_OBJECT_BOOLEAN:
		j = json_object_new_boolean(o->via.boolean);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		j = o->via.u64 <= INT64_MAX ? json_object_new_int64((int64_t)o->via.u64) :
		    json_object_new_uint64(o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		j = json_object_new_int64(o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return number_json(d, o->via.f64, out);
	case MSGPACK_OBJECT_STR:
		if (!utf8_valid((const unsigned char *)str_ptr(o), o->via.str.size))
			return fail(d->err, d->errlen, "a string that is not valid UTF-8");
		j = json_object_new_string_len(str_ptr(o), (int)o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		return placeholder_json(d, o, out);
	case MSGPACK_OBJECT_EXT:
		if (o->via.ext.type != -1)
			return fail(d->err, d->errlen, "a msgpack ext of type %d (only "
			    "timestamps, type -1, are understood)", o->via.ext.type);
		return timestamp_json(d, o, out);
	case MSGPACK_OBJECT_ARRAY:
		return array_json(d, o, depth, out);
	case MSGPACK_OBJECT_MAP:
		return map_json(d, o, depth, out);
	default:
		return fail(d->err, d->errlen, "msgpack type %d", (int)o->type);
	}
	if (j == NULL)
		return fail(d->err, d->errlen, "out of memory");
	*out = j;
	return 0;
}

/* A map's value for a string key, the last one as in JavaScript; -1 for a key that is not a string. */
static int
map_get(const msgpack_object *map, const char *key, const msgpack_object **out)
{
	*out = NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type != MSGPACK_OBJECT_STR)
			return -1;
		if (is_str(&kv->key, key))
			*out = &kv->val;
	}
	return 0;
}

/*
 * rooms or except: absent or nil (none), or an array of strings and
 * integers (a Node app may join a number; its room is then that number's
 * text). Counts them and the bytes their C strings need.
 */
static int
check_rooms(const msgpack_object *v, const char *what, size_t *n, size_t *bytes,
    char *err, size_t errlen)
{
	*n = 0;
	if (v == NULL || v->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (v->type != MSGPACK_OBJECT_ARRAY)
		return fail(err, errlen, "%s is not an array", what);
	for (uint32_t i = 0; i < v->via.array.size; i++) {
		const msgpack_object *r = &v->via.array.ptr[i];

		if (r->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    r->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			*bytes += 21;
		else if (valid_cstr(r))
			*bytes += r->via.str.size + 1;
		else
			return fail(err, errlen, "%s[%" PRIu32 "] is not a string", what, i);
	}
	*n = v->via.array.size;
	return 0;
}

/* Strings handed to the callback, in one block freed after it. */
struct strs {
	char *p;
	size_t used;
};

static const char *
strs_put(struct strs *s, const char *p, size_t n)
{
	char *dst = s->p + s->used;

	memcpy(dst, p, n);
	dst[n] = '\0';
	s->used += n + 1;
	return dst;
}

static void
fill_rooms(const msgpack_object *v, const char **dst, size_t n, struct strs *s)
{
	for (size_t i = 0; i < n; i++) {
		const msgpack_object *r = &v->via.array.ptr[i];
		int len;

		if (r->type == MSGPACK_OBJECT_STR) {
			dst[i] = strs_put(s, str_ptr(r), r->via.str.size);
			continue;
		}
		if (r->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			len = snprintf(s->p + s->used, 21, "%" PRIu64, r->via.u64);
		else
			len = snprintf(s->p + s->used, 21, "%" PRId64, r->via.i64);
		dst[i] = s->p + s->used;
		s->used += (size_t)len + 1;
	}
}

int
sio_redis_decode(const char *buf, size_t len,
    void (*cb)(void *arg, const char *uid, const struct sio_bcast *b), void *arg,
    char *err, size_t errlen)
{
	struct dec d = { .err = err, .errlen = errlen };
	msgpack_unpacked up;
	msgpack_unpack_return ret;
	const msgpack_object *root, *uid, *packet, *opts, *type, *data, *nsp, *rooms, *except;
	json_object *j = NULL;
	const char *text, **lists = NULL;
	size_t off = 0, textlen, nrooms, nexcept, bytes = 0;
	struct strs s = { NULL, 0 };
	struct sio_bcast b;
	int rc = -1;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > SIO_REDIS_MAX_MSG)
		return fail(err, errlen, "a message of %zu bytes (at most %u)", len,
		    SIO_REDIS_MAX_MSG);
	if (frame_check((const unsigned char *)buf, len, err, errlen) == -1)
		return -1;
	msgpack_unpacked_init(&up);
	ret = msgpack_unpack_next(&up, buf, len, &off);
	if (ret != MSGPACK_UNPACK_SUCCESS || off != len) {
		fail(err, errlen, ret == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" :
		    "malformed msgpack");
		goto out;
	}
	root = &up.data;
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 3) {
		fail(err, errlen, "not an array [uid, packet, opts]");
		goto out;
	}
	uid = &root->via.array.ptr[0];
	packet = &root->via.array.ptr[1];
	opts = &root->via.array.ptr[2];
	if (!valid_cstr(uid)) {
		fail(err, errlen, "the uid is not a string");
		goto out;
	}
	if (packet->type != MSGPACK_OBJECT_MAP || opts->type != MSGPACK_OBJECT_MAP) {
		fail(err, errlen, "the packet or the options are not a map");
		goto out;
	}
	if (map_get(packet, "type", &type) == -1 || map_get(packet, "data", &data) == -1 ||
	    map_get(packet, "nsp", &nsp) == -1 || map_get(opts, "rooms", &rooms) == -1 ||
	    map_get(opts, "except", &except) == -1) {
		fail(err, errlen, "a map key that is not a string");
		goto out;
	}
	/* What the emitter and BroadcastOperator.emit() send: 2, EVENT, binaries or not. */
	if (type == NULL || type->type != MSGPACK_OBJECT_POSITIVE_INTEGER || type->via.u64 != 2) {
		fail(err, errlen, "not an EVENT packet (type 2)");
		goto out;
	}
	if (data == NULL || data->type != MSGPACK_OBJECT_ARRAY || data->via.array.size == 0 ||
	    data->via.array.ptr[0].type != MSGPACK_OBJECT_STR) {
		fail(err, errlen, "the data is not an array starting with the event name");
		goto out;
	}
	/* The adapter takes a missing nsp for "/". */
	if (nsp != NULL && nsp->type == MSGPACK_OBJECT_NIL)
		nsp = NULL;
	if (nsp != NULL && !valid_cstr(nsp)) {
		fail(err, errlen, "the namespace is not a string");
		goto out;
	}
	if (check_rooms(rooms, "rooms", &nrooms, &bytes, err, errlen) == -1 ||
	    check_rooms(except, "except", &nexcept, &bytes, err, errlen) == -1)
		goto out;

	if (to_json(&d, data, 1, &j) == -1)
		goto out;
	text = json_object_to_json_string_length(j,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &textlen);
	if (text == NULL) {
		fail(err, errlen, "out of memory");
		goto out;
	}

	bytes += uid->via.str.size + 1 + (nsp != NULL ? nsp->via.str.size + 1 : 2);
	if ((nrooms + nexcept > 0 && (lists = calloc(nrooms + nexcept, sizeof(*lists))) == NULL) ||
	    (s.p = malloc(bytes)) == NULL) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	memset(&b, 0, sizeof(b));
	b.nsp = nsp != NULL ? strs_put(&s, str_ptr(nsp), nsp->via.str.size) : strs_put(&s, "/", 1);
	if (nrooms > 0) {
		fill_rooms(rooms, lists, nrooms, &s);
		b.rooms = lists;
		b.nrooms = nrooms;
	}
	if (nexcept > 0) {
		fill_rooms(except, lists + nrooms, nexcept, &s);
		b.except = lists + nrooms;
		b.nexcept = nexcept;
	}
	b.data = text;
	b.datalen = textlen;
	b.att = d.att;
	b.natt = d.natt;
	cb(arg, strs_put(&s, str_ptr(uid), uid->via.str.size), &b);
	rc = 0;
out:
	free(s.p);
	free(lists);
	free(d.att);
	free(d.key);
	json_object_put(j);
	msgpack_unpacked_destroy(&up);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The connections                                                     */
/* ------------------------------------------------------------------ */

/*
 * Each connection goes WAIT -> (RESOLVING ->) CONNECTING -> UP and back to
 * WAIT when it fails or is lost; one timer serves as the back-off in WAIT
 * and the connect timeout in RESOLVING and CONNECTING (and, at once, to
 * drop a connection we cannot use: hiredis must not free a context from
 * within its own connect callback).
 *
 * hiredis 0.14.1 frees a context itself after its connect callback
 * reports a failure and after its disconnect callback; redisAsyncFree()
 * runs the reply callbacks with NULL and the disconnect callback. So
 * ac->data is the only way back to us, and it is cleared before we free a
 * context ourselves: a callback that finds it NULL does nothing.
 */
enum conn_state { C_WAIT, C_RESOLVING, C_CONNECTING, C_UP };

struct dns;
struct ticket;

struct conn {
	struct sio_redis *r;
	const char *role;             /* "publish", "subscribe" */
	enum conn_state state;
	redisAsyncContext *ac;
	struct event *timer;
	struct ticket *ticket;        /* the name resolution under way */
	struct evdns_getaddrinfo_request *req;
	const char *kill;             /* why the timer is to drop the connection */
	unsigned backoff_ms;
	uint64_t up_since;
	unsigned attempts;
	size_t inflight;              /* bytes of PUBLISH not yet answered */
	bool first;
};

/*
 * The resolver, shared by both connections and every request under way:
 * a cancelled evdns request still calls back, later, and must find it.
 */
struct dns {
	struct evdns_base *base;
	struct event_base *ev;
	unsigned refs;
};

struct ticket {
	struct conn *c;               /* NULL once cancelled */
	struct dns *dns;
};

struct ratelimit {
	uint64_t next_ms;
	uint64_t missed;
};

struct sio_redis {
	struct event_base *base;
	struct sio_redis_url url;
	char name[300];               /* "redis://host:port/db", for the log */
	char *key, *uid;
	size_t nnsps;
	char **nsps;
	char **prefixes;              /* "<key>#<nsp>#" */
	char **patterns;              /* the same, glob characters escaped, and "*" */
	sio_redis_deliver deliver;
	void *arg;
	struct conn sub, pub;
	struct dns *dns;
	msgpack_sbuffer sbuf;

	bool outage;
	uint64_t outage_ms;
	uint64_t outage_dropped;

	struct ratelimit rl_decode, rl_encode, rl_reply, rl_full;

	uint64_t published, received, dropped, errors, publish_errors, reconnects;
};

static void conn_start(struct conn *c);

static int
arm(struct event *ev, long long ms)
{
	struct timeval tv = ms_tv(ms);

	return evtimer_add(ev, &tv);
}

static bool
rl_allow(struct ratelimit *rl, uint64_t *missed)
{
	uint64_t now = now_ms();

	if (rl->next_ms != 0 && now < rl->next_ms) {
		rl->missed++;
		return false;
	}
	*missed = rl->missed;
	rl->missed = 0;
	rl->next_ms = now + LOG_EVERY_MS;
	return true;
}

static void
dns_put(struct dns *dns)
{
	if (dns == NULL || --dns->refs > 0)
		return;
	evdns_base_free(dns->base, 0);
	free(dns);
}

static void
dns_put_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dns_put(arg);
}

/*
 * From a resolution's callback: evdns does not touch its base after the
 * callback returns (2.1.12), but the last reference is dropped on the next
 * loop turn all the same rather than trust that.
 */
static void
dns_put_later(struct dns *dns)
{
	if (dns->refs > 1 || event_base_once(dns->ev, -1, EV_TIMEOUT, dns_put_cb, dns, NULL) == -1)
		dns_put(dns);
}

static void
conn_mark_up(struct conn *c)
{
	struct sio_redis *r = c->r;

	c->state = C_UP;
	c->up_since = now_ms();
	evtimer_del(c->timer);
	if (r->sub.state != C_UP || r->pub.state != C_UP)
		return;
	if (r->outage) {
		r->outage = false;
		log_info("redis %s: up again after %.1f s, %" PRIu64 " broadcasts not sent",
		    r->name, (double)(now_ms() - r->outage_ms) / 1000.0,
		    r->dropped - r->outage_dropped);
	} else {
		log_debug("redis %s: connected", r->name);
	}
}

/* The connection is gone (c->ac already NULL): say so once per outage, and retry. */
static void
conn_failed(struct conn *c, const char *reason)
{
	struct sio_redis *r = c->r;
	uint64_t now = now_ms();
	unsigned delay;

	c->state = C_WAIT;
	c->kill = NULL;
	c->inflight = 0;
	if (!r->outage) {
		r->outage = true;
		r->outage_ms = now;
		r->outage_dropped = r->dropped;
		log_warn("redis %s: down (%s): retrying; broadcasts to other hosts are "
		    "lost until it is back", r->name, reason);
	}
	/* A connection that was accepted, then closed at once, keeps backing off. */
	if (c->up_since != 0 && now - c->up_since >= STABLE_MS)
		c->backoff_ms = BACKOFF_MIN_MS;
	c->up_since = 0;
	delay = c->backoff_ms * 3 / 4 + arc4random_uniform(c->backoff_ms / 2 + 1);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	if (arm(c->timer, delay) == -1)
		log_error("redis %s: cannot arm the %s connection's timer: it will not "
		    "reconnect", r->name, c->role);
}

/* Frees our context: no callback of it will reach us. Not from within hiredis' connect callback. */
static void
conn_drop(struct conn *c)
{
	redisAsyncContext *ac = c->ac;

	if (ac == NULL)
		return;
	c->ac = NULL;
	ac->data = NULL;
	redisAsyncFree(ac);
}

static void
on_message(redisAsyncContext *ac, void *reply, void *privdata);

static void
on_connect(const redisAsyncContext *cac, int status)
{
	struct conn *c = cac->data;
	struct sio_redis *r;
	const char **argv;
	size_t *argvlen;

	if (c == NULL || c->ac != cac)
		return;
	r = c->r;
	if (status != REDIS_OK) {
		/* hiredis frees the context when this returns. */
		c->ac = NULL;
		conn_failed(c, cac->c.errstr[0] != '\0' ? cac->c.errstr : "cannot connect");
		return;
	}
	/* hiredis 0.14 has no read timeout: let TCP find a peer that vanished. */
	redisEnableKeepAlive(&c->ac->c);
	if (c != &r->sub) {
		conn_mark_up(c);
		return;
	}
	argv = calloc(r->nnsps + 1, sizeof(*argv));
	argvlen = calloc(r->nnsps + 1, sizeof(*argvlen));
	if (argv != NULL && argvlen != NULL) {
		argv[0] = "PSUBSCRIBE";
		argvlen[0] = 10;
		for (size_t i = 0; i < r->nnsps; i++) {
			argv[i + 1] = r->patterns[i];
			argvlen[i + 1] = strlen(r->patterns[i]);
		}
	}
	if (argv == NULL || argvlen == NULL ||
	    redisAsyncCommandArgv(c->ac, on_message, NULL, (int)r->nnsps + 1, argv,
	    argvlen) != REDIS_OK) {
		/* Dropped from the timer, outside hiredis. */
		c->kill = "cannot subscribe: out of memory";
		arm(c->timer, 0);
	} else {
		conn_mark_up(c);
	}
	free(argv);
	free(argvlen);
}

static void
on_disconnect(const redisAsyncContext *cac, int status)
{
	struct conn *c = cac->data;

	if (c == NULL || c->ac != cac)
		return;
	/* hiredis frees the context when this returns. */
	c->ac = NULL;
	conn_failed(c, status == REDIS_OK ? "disconnected" :
	    cac->c.errstr[0] != '\0' ? cac->c.errstr : "connection lost");
}

static void
connect_to(struct conn *c, const char *host)
{
	struct sio_redis *r = c->r;
	redisAsyncContext *ac;
	char reason[160];

	c->state = C_CONNECTING;
	/* An address: hiredis' getaddrinfo() does not block on it. */
	if ((ac = redisAsyncConnect(host, r->url.port)) == NULL) {
		conn_failed(c, "out of memory");
		return;
	}
	if (ac->err != 0) {
		snprintf(reason, sizeof(reason), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_failed(c, reason);
		return;
	}
	c->ac = ac;
	ac->data = c;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK ||
	    redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
	    redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
		conn_drop(c);
		conn_failed(c, "cannot watch the connection");
	}
}

static void
on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct ticket *t = arg;
	struct conn *c = t->c;
	struct evutil_addrinfo *ai;
	char host[INET6_ADDRSTRLEN], reason[160];
	unsigned n = 0, k;

	dns_put_later(t->dns);
	free(t);
	if (c == NULL) {
		/* cancelled: the timer or sio_redis_free() saw to the connection */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	c->ticket = NULL;
	c->req = NULL;
	if (result != 0) {
		snprintf(reason, sizeof(reason), "cannot resolve the name: %s",
		    evutil_gai_strerror(result));
		if (res != NULL)
			evutil_freeaddrinfo(res);
		conn_failed(c, reason);
		return;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
			n++;
	/* One address per attempt, in turn: a dead one is not tried forever. */
	k = n > 0 ? c->attempts % n : 0;
	host[0] = '\0';
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (k-- == 0) {
			const void *a = ai->ai_family == AF_INET ?
			    (const void *)&((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr :
			    (const void *)&((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;

			if (evutil_inet_ntop(ai->ai_family, a, host, sizeof(host)) == NULL)
				host[0] = '\0';
			break;
		}
	}
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (host[0] == '\0') {
		conn_failed(c, "the name has no IPv4 or IPv6 address");
		return;
	}
	connect_to(c, host);
}

static void
resolve(struct conn *c)
{
	struct sio_redis *r = c->r;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *req;
	struct ticket *t;

	c->state = C_RESOLVING;
	if (r->dns == NULL) {
		struct dns *dns = calloc(1, sizeof(*dns));

		if (dns == NULL || (dns->base = evdns_base_new(r->base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL) {
			free(dns);
			conn_failed(c, "cannot set up the resolver (/etc/resolv.conf?)");
			return;
		}
		dns->ev = r->base;
		dns->refs = 1;        /* r's */
		r->dns = dns;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		conn_failed(c, "out of memory");
		return;
	}
	t->c = c;
	t->dns = r->dns;
	r->dns->refs++;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* May call on_resolved() before it returns (/etc/hosts), and then returns NULL. */
	req = evdns_getaddrinfo(r->dns->base, r->url.host, NULL, &hints, on_resolved, t);
	if (req != NULL) {
		c->ticket = t;
		c->req = req;
	}
}

static void
conn_start(struct conn *c)
{
	struct sio_redis *r = c->r;

	if (!c->first) {
		c->attempts++;
		r->reconnects++;
	}
	c->first = false;
	/* One timeout for resolving and connecting. */
	arm(c->timer, CONNECT_TIMEOUT_MS);
	if (r->url.numeric)
		connect_to(c, r->url.host);
	else
		resolve(c);
}

static void
conn_cancel_dns(struct conn *c)
{
	if (c->ticket == NULL)
		return;
	/* The callback still comes, later, with EVUTIL_EAI_CANCEL; t->c tells it. */
	c->ticket->c = NULL;
	evdns_getaddrinfo_cancel(c->req);
	c->ticket = NULL;
	c->req = NULL;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char reason[80];

	(void)fd;
	(void)what;
	if (c->kill != NULL) {
		snprintf(reason, sizeof(reason), "%s", c->kill);
		conn_drop(c);
		conn_failed(c, reason);
		return;
	}
	switch (c->state) {
	case C_WAIT:
		conn_start(c);
		break;
	case C_RESOLVING:
		conn_cancel_dns(c);
		snprintf(reason, sizeof(reason), "no address for the name within %d s",
		    CONNECT_TIMEOUT_MS / 1000);
		conn_failed(c, reason);
		break;
	case C_CONNECTING:
		conn_drop(c);
		snprintf(reason, sizeof(reason), "no connection within %d s",
		    CONNECT_TIMEOUT_MS / 1000);
		conn_failed(c, reason);
		break;
	case C_UP:
		break;
	}
}

/* A message published on one of our patterns, and where. */
struct delivery {
	struct sio_redis *r;
	const char *channel;
	size_t chlen;
};

static void
on_decoded(void *arg, const char *uid, const struct sio_bcast *b)
{
	struct delivery *dv = arg;
	struct sio_redis *r = dv->r;

	/* Ours, back from Redis: the hub delivered it already. */
	if (strcmp(uid, r->uid) == 0)
		return;
	/* As the adapter: the channel and the packet must name the same namespace. */
	for (size_t i = 0; i < r->nnsps; i++) {
		size_t n = strlen(r->prefixes[i]);

		if (strcmp(b->nsp, r->nsps[i]) == 0 && dv->chlen >= n &&
		    memcmp(dv->channel, r->prefixes[i], n) == 0) {
			r->received++;
			/* Last: deliver() may free r. */
			r->deliver(r->arg, b);
			return;
		}
	}
}

/* For the log: what a channel name is, without what a terminal would act on. */
static void
printable(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 4 < dstlen; i++)
		dst[k++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (k < n) {
		memcpy(dst + k, "...", 3);
		k += 3;
	}
	dst[k] = '\0';
}

static void
on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct conn *c = ac->data;
	redisReply *rep = reply, *ch, *msg;
	struct delivery dv;
	char err[160], chan[100];
	uint64_t missed;

	(void)privdata;
	/* Not the PSUBSCRIBE confirmations, nor the NULL of a connection going away. */
	if (c == NULL || rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
	    rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "pmessage") != 0)
		return;
	ch = rep->element[2];
	msg = rep->element[3];
	if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING)
		return;
	dv = (struct delivery){ .r = c->r, .channel = ch->str, .chlen = ch->len };
	if (sio_redis_decode(msg->str, msg->len, on_decoded, &dv, err, sizeof(err)) == 0)
		return;           /* r may be gone */
	c->r->errors++;
	if (rl_allow(&c->r->rl_decode, &missed)) {
		printable(chan, sizeof(chan), ch->str, ch->len);
		log_warn("redis %s: refused a message on %s: %s (%" PRIu64 " more refused "
		    "since the last report)", c->r->name, chan, err, missed);
	}
}

static void
on_published(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct conn *c = ac->data;
	redisReply *rep = reply;
	size_t len = (size_t)(uintptr_t)privdata;
	uint64_t missed;

	if (c == NULL)
		return;
	c->inflight -= len < c->inflight ? len : c->inflight;
	if (rep == NULL) {
		/* lost with its connection: maybe sent, maybe not */
		c->r->publish_errors++;
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		c->r->publish_errors++;
		if (rl_allow(&c->r->rl_reply, &missed))
			log_warn("redis %s: PUBLISH failed: %s (%" PRIu64 " more since the last "
			    "report)", c->r->name, rep->str, missed);
	}
}

/* ------------------------------------------------------------------ */
/* The interface                                                       */
/* ------------------------------------------------------------------ */

/* PSUBSCRIBE takes a glob: a key or namespace may hold its characters. */
static char *
glob_escape(const char *s)
{
	size_t n = strlen(s), k = 0;
	char *p = malloc(2 * n + 1);

	if (p == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strchr("*?[]\\", s[i]) != NULL)
			p[k++] = '\\';
		p[k++] = s[i];
	}
	p[k] = '\0';
	return p;
}

/* a#b#tail */
static char *
channel_name(const char *a, const char *b, const char *tail)
{
	size_t na = strlen(a), nb = strlen(b), nt = strlen(tail);
	char *p = malloc(na + nb + nt + 3);

	if (p == NULL)
		return NULL;
	memcpy(p, a, na);
	p[na] = '#';
	memcpy(p + na + 1, b, nb);
	p[na + 1 + nb] = '#';
	memcpy(p + na + nb + 2, tail, nt + 1);
	return p;
}

/* <key>#<nsp>#, or <key>#<nsp>#<room># */
static char *
publish_channel(const char *key, const char *nsp, const char *room)
{
	char *tail = NULL, *p;
	size_t n;

	if (room != NULL) {
		n = strlen(room);
		if ((tail = malloc(n + 2)) == NULL)
			return NULL;
		memcpy(tail, room, n);
		memcpy(tail + n, "#", 2);
	}
	p = channel_name(key, nsp, tail != NULL ? tail : "");
	free(tail);
	return p;
}

static void
free_strv(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
conn_init(struct sio_redis *r, struct conn *c, const char *role)
{
	c->r = r;
	c->role = role;
	c->state = C_WAIT;
	c->backoff_ms = BACKOFF_MIN_MS;
	c->first = true;
	if ((c->timer = evtimer_new(r->base, on_timer, c)) == NULL)
		return -1;
	/* The first attempt from the loop, not from within sio_redis_new(). */
	return arm(c->timer, 0);
}

struct sio_redis *
sio_redis_new(struct event_base *base, const struct sio_redis_url *url, const char *key,
    const char *uid, const char *const *nsps, size_t nnsps, sio_redis_deliver deliver,
    void *arg)
{
	struct sio_redis *r;
	char *ekey = NULL, *ensp;

	if (base == NULL || url == NULL || uid == NULL || nsps == NULL || nnsps == 0 ||
	    nnsps > 1000 || deliver == NULL || url->host[0] == '\0' || url->port <= 0 ||
	    url->port > 65535)
		return NULL;
	for (size_t i = 0; i < nnsps; i++)
		if (nsps[i] == NULL)
			return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = base;
	r->url = *url;
	r->url.host[sizeof(r->url.host) - 1] = '\0';
	r->deliver = deliver;
	r->arg = arg;
	msgpack_sbuffer_init(&r->sbuf);
	snprintf(r->name, sizeof(r->name), strchr(r->url.host, ':') != NULL ?
	    "redis://[%s]:%d/%d" : "redis://%s:%d/%d", r->url.host, r->url.port, r->url.db);
	if ((r->key = strdup(key != NULL ? key : SIO_REDIS_DEFAULT_KEY)) == NULL ||
	    (r->uid = strdup(uid)) == NULL ||
	    (ekey = glob_escape(r->key)) == NULL ||
	    (r->nsps = calloc(nnsps, sizeof(char *))) == NULL ||
	    (r->prefixes = calloc(nnsps, sizeof(char *))) == NULL ||
	    (r->patterns = calloc(nnsps, sizeof(char *))) == NULL)
		goto fail;
	r->nnsps = nnsps;
	for (size_t i = 0; i < nnsps; i++) {
		if ((r->nsps[i] = strdup(nsps[i])) == NULL ||
		    (r->prefixes[i] = channel_name(r->key, nsps[i], "")) == NULL ||
		    (ensp = glob_escape(nsps[i])) == NULL)
			goto fail;
		r->patterns[i] = channel_name(ekey, ensp, "*");
		free(ensp);
		if (r->patterns[i] == NULL)
			goto fail;
	}
	free(ekey);
	ekey = NULL;
	if (conn_init(r, &r->sub, "subscribe") == -1 || conn_init(r, &r->pub, "publish") == -1)
		goto fail;
	return r;
fail:
	free(ekey);
	sio_redis_free(r);
	return NULL;
}

int
sio_redis_publish(struct sio_redis *r, const struct sio_bcast *b)
{
	struct conn *c = &r->pub;
	const char *argv[3];
	size_t argvlen[3];
	char err[160], *chan = NULL;
	const char *nsp;
	uint64_t missed;
	int rc = -1;

	/* Nothing is queued while Redis is away: a queue would only grow. */
	if (c->state != C_UP || c->ac == NULL || c->kill != NULL) {
		r->dropped++;
		return -1;
	}
	if (c->inflight >= MAX_INFLIGHT) {
		r->dropped++;
		if (rl_allow(&r->rl_full, &missed))
			log_warn("redis %s: %zu bytes published and not yet answered: dropping "
			    "broadcasts to other hosts (%" PRIu64 " more since the last report)",
			    r->name, c->inflight, missed);
		return -1;
	}
	if (encode(b, r->uid, &r->sbuf, err, sizeof(err)) == -1) {
		r->errors++;
		if (rl_allow(&r->rl_encode, &missed))
			log_warn("redis %s: cannot encode a broadcast: %s (%" PRIu64 " more since "
			    "the last report)", r->name, err, missed);
		goto done;
	}
	nsp = b->nsp != NULL ? b->nsp : "/";
	/* The adapter's channel: a single room is named in it, for Redis to filter. */
	if ((chan = publish_channel(r->key, nsp, b->nrooms == 1 ? b->rooms[0] : NULL)) == NULL) {
		r->dropped++;
		goto done;
	}
	argv[0] = "PUBLISH";
	argvlen[0] = 7;
	argv[1] = chan;
	argvlen[1] = strlen(chan);
	argv[2] = r->sbuf.data;
	argvlen[2] = r->sbuf.size;
	if (redisAsyncCommandArgv(c->ac, on_published, (void *)(uintptr_t)r->sbuf.size, 3,
	    argv, argvlen) != REDIS_OK) {
		r->dropped++;
		goto done;
	}
	c->inflight += r->sbuf.size;
	r->published++;
	rc = 0;
done:
	free(chan);
	/* hiredis copied the message: keep a small buffer for the next one. */
	if (r->sbuf.alloc > KEEP_SBUF) {
		msgpack_sbuffer_destroy(&r->sbuf);
		msgpack_sbuffer_init(&r->sbuf);
	}
	r->sbuf.size = 0;
	return rc;
}

void
sio_redis_figures(const struct sio_redis *r, struct sio_redis_figures *f)
{
	memset(f, 0, sizeof(*f));
	f->connected = r->sub.state == C_UP && r->pub.state == C_UP;
	f->published = r->published;
	f->received = r->received;
	f->dropped = r->dropped;
	f->errors = r->errors;
	f->publish_errors = r->publish_errors;
	f->reconnects = r->reconnects;
}

static void
conn_free(struct conn *c)
{
	conn_cancel_dns(c);
	conn_drop(c);
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = NULL;
}

void
sio_redis_free(struct sio_redis *r)
{
	if (r == NULL)
		return;
	/*
	 * From within deliver(), the subscriber's context is in a callback:
	 * hiredis then frees it when the callback returns, and finds ac->data
	 * NULL in the callbacks it runs meanwhile.
	 */
	conn_free(&r->sub);
	conn_free(&r->pub);
	/* Requests cancelled above hold their own references. */
	if (r->dns != NULL)
		dns_put(r->dns);
	msgpack_sbuffer_destroy(&r->sbuf);
	free_strv(r->patterns, r->nnsps);
	free_strv(r->prefixes, r->nnsps);
	free_strv(r->nsps, r->nnsps);
	free(r->uid);
	free(r->key);
	free(r);
}
