/*
 * A document as relaxed Extended JSON, written byte for byte as libbson's
 * bson_as_relaxed_extended_json() writes it (libbson 1.23: "{ "k" : v, ... }",
 * its escapes, "%.20g" doubles, ISO-8601 dates), without its allocations:
 * libbson builds a string per document, and a string per key and per value
 * on the way (about 35,000 instructions for a small document; this, about a
 * tenth of that). Output goes to a buffer the pool thread keeps (in its
 * struct rm_thread, not in thread-local storage: that would cost a
 * __tls_get_addr() call per use in a dlopen()ed module, and outlive the
 * thread), then once into the reply.
 *
 * What this does not know for certain to write as libbson does, libbson
 * writes: the rare types (regular expressions, code, symbols, DBPointers),
 * invalid UTF-8, corrupt BSON, dates past the year 9999, nesting deeper
 * than MAX_DEPTH. For those the whole document goes to
 * bson_as_relaxed_extended_json(), so a document it refuses (NULL) is
 * refused here too. t/unit_rm_json compares the two on every type and on
 * random documents.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/readmongo/readmongo.h"

#define MAX_DEPTH    100           /* libbson writes "{ ... }" at 200 */
#define SCRATCH_KEEP (1024 * 1024)  /* a thread keeps a buffer up to this size */

/* Outcomes of the encoder: written, or to be left to libbson. */
enum { J_OK = 0, J_LIBBSON = 1 };

static int
grow(struct rm_json_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *p;

	while (cap - b->len < n)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Room for n more bytes, or NULL once out of memory (the document goes to libbson). */
static inline char *
room(struct rm_json_buf *b, size_t n)
{
	if (b->failed || (b->cap - b->len < n && grow(b, n) == -1))
		return NULL;
	return b->p + b->len;
}

static inline void
put(struct rm_json_buf *b, const char *s, size_t n)
{
	char *d = room(b, n);

	if (d == NULL)
		return;
	memcpy(d, s, n);
	b->len += n;
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static void
put_u64(struct rm_json_buf *b, uint64_t v, int neg)
{
	char tmp[24], *e = tmp + sizeof(tmp), *s = e;

	do {
		*--s = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (neg)
		*--s = '-';
	put(b, s, (size_t)(e - s));
}

static void
put_i64(struct rm_json_buf *b, int64_t v)
{
	put_u64(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

/*
 * Text that libbson would escape back to the same bytes: ASCII, or UTF-8
 * that bson_utf8_validate() accepts and that holds no 0xC0 (its two-byte
 * NUL, which it accepts in a string and then fails to escape).
 */
static int
plain_utf8(const char *s, size_t n, bool allow_null)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n; i++)
		if (p[i] >= 0x80)
			return bson_utf8_validate(s, n, allow_null) && memchr(s, 0xC0, n) == NULL;
	return 1;
}

/*
 * "%.20g" of v without snprintf (2,000 instructions) where that is exact: a
 * multiple of 2^-10 below 2^53 in magnitude has a finite decimal expansion
 * of at most 16 + 10 digits, which "%.20g" prints as it is, trailing zeros
 * dropped, when it has at most 20 significant digits; and it is never below
 * 1e-4, where "%g" would turn to an exponent. Integers and halves, quarters,
 * ... of them. The length of the string written to tmp, or 0: ask snprintf.
 */
static int
short_double(char *tmp, double v)
{
	double a = v < 0 ? -v : v, scaled = a * 1024.0;
	uint64_t k, ip;
	unsigned frac, nf;
	char digits[24], fd[10];
	int ni = 0, n = 0;

	if (!(a < 9007199254740992.0) || (double)(k = (uint64_t)scaled) != scaled)
		return 0;
	ip = k >> 10;
	frac = (unsigned)(k & 1023);
	do {
		digits[ni++] = (char)('0' + ip % 10);
		ip /= 10;
	} while (ip != 0);
	/* frac / 2^10 = frac * 5^10 / 10^10: ten decimals, then without trailing zeros */
	nf = 0;
	if (frac != 0) {
		uint64_t f = (uint64_t)frac * 9765625;
		for (int i = 9; i >= 0; i--, f /= 10)
			fd[i] = (char)('0' + f % 10);
		for (nf = 10; fd[nf - 1] == '0'; nf--)
			;
		if ((k >> 10) != 0 && ni + (int)nf > 20)
			return 0;
	}
	if (signbit(v))
		tmp[n++] = '-';
	while (ni > 0)
		tmp[n++] = digits[--ni];
	if (nf != 0) {
		tmp[n++] = '.';
		memcpy(tmp + n, fd, nf);
		n += (int)nf;
	}
	tmp[n] = '\0';
	return n;
}

/* The bytes put_string() escapes: below 0x20, '"' and '\\'. */
static const unsigned char must_escape[256] = {
	[0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

/*
 * '"', s escaped as bson_utf8_escape_for_json() escapes it, '"', then tail:
 * '"' and '\\' with a backslash, \b \f \n \r \t, other bytes below 0x20 as
 * \u00xx (NUL too, inside a string), everything else as it is. That copy
 * is exact only for valid UTF-8 (libbson decodes and encodes again): where
 * s has a byte from 0x80 that plain_utf8() does not accept, J_LIBBSON.
 */
static int
put_string(struct rm_json_buf *b, const char *s, size_t n, bool allow_null, const char *tail,
    size_t tlen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	unsigned char high = 0, c;
	char *d = room(b, 6 * n + 2 + tlen), *start = d;

	if (d == NULL)
		return J_OK;             /* out of memory: b->failed says so */
	*d++ = '"';
	for (; p < end; p++) {
		high |= c = *p;
		if (!must_escape[c]) {
			*d++ = (char)c;
			continue;
		}
		*d++ = '\\';
		switch (c) {
		case '"': *d++ = '"'; break;
		case '\\': *d++ = '\\'; break;
		case '\b': *d++ = 'b'; break;
		case '\f': *d++ = 'f'; break;
		case '\n': *d++ = 'n'; break;
		case '\r': *d++ = 'r'; break;
		case '\t': *d++ = 't'; break;
		default:
			memcpy(d, "u00", 3);
			d[3] = hex[c >> 4];
			d[4] = hex[c & 15];
			d += 5;
		}
	}
	*d++ = '"';
	memcpy(d, tail, tlen);
	b->len += (size_t)(d + tlen - start);
	if ((high & 0x80) && !plain_utf8(s, n, allow_null))
		return J_LIBBSON;
	return J_OK;
}

static void
put_double(struct rm_json_buf *b, double v)
{
	char tmp[64];
	int n;

	if (v != v) {
		PUTS(b, "{ \"$numberDouble\" : \"NaN\" }");
		return;
	}
	if (v * 0 != 0) {
		if (v > 0)
			PUTS(b, "{ \"$numberDouble\" : \"Infinity\" }");
		else
			PUTS(b, "{ \"$numberDouble\" : \"-Infinity\" }");
		return;
	}
	if ((n = short_double(tmp, v)) == 0)
		n = snprintf(tmp, sizeof(tmp), "%.20g", v);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = 1;
		return;
	}
	put(b, tmp, (size_t)n);
	/* libbson's trailing ".0", so that 3.0 does not read as an integer */
	if (strspn(tmp, "0123456789-") == (size_t)n)
		PUTS(b, ".0");
}

/* Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm). */
static void
civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static inline void
two(char *d, unsigned v)
{
	d[0] = (char)('0' + v / 10);
	d[1] = (char)('0' + v % 10);
}

/*
 * A date from 1970 to 9999: "%Y-%m-%dT%H:%M:%S" and ".mmm" unless the
 * milliseconds are 0, then "Z", as libbson's _bson_iso8601_date_format().
 */
static void
put_date(struct rm_json_buf *b, int64_t ms)
{
	int64_t secs = ms / 1000, y;
	unsigned msec = (unsigned)(ms % 1000), sod = (unsigned)(secs % 86400), m, d;
	char tmp[32];

	civil(secs / 86400, &y, &m, &d);
	tmp[0] = (char)('0' + y / 1000);
	tmp[1] = (char)('0' + y / 100 % 10);
	tmp[2] = (char)('0' + y / 10 % 10);
	tmp[3] = (char)('0' + y % 10);
	tmp[4] = '-';
	two(tmp + 5, m);
	tmp[7] = '-';
	two(tmp + 8, d);
	tmp[10] = 'T';
	two(tmp + 11, sod / 3600);
	tmp[13] = ':';
	two(tmp + 14, sod / 60 % 60);
	tmp[16] = ':';
	two(tmp + 17, sod % 60);
	if (msec != 0) {
		tmp[19] = '.';
		tmp[20] = (char)('0' + msec / 100);
		two(tmp + 21, msec % 100);
		tmp[23] = 'Z';
		put(b, tmp, 24);
	} else {
		tmp[19] = 'Z';
		put(b, tmp, 20);
	}
}

static void
put_base64(struct rm_json_buf *b, const uint8_t *s, uint32_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *d = room(b, ((size_t)n + 2) / 3 * 4);
	uint32_t i = 0;

	if (d == NULL)
		return;
	for (; i + 2 < n; i += 3, d += 4) {
		d[0] = a[s[i] >> 2];
		d[1] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		d[2] = a[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		d[3] = a[s[i + 2] & 63];
	}
	if (n - i == 1) {
		d[0] = a[s[i] >> 2];
		d[1] = a[(s[i] & 3) << 4];
		d[2] = d[3] = '=';
	} else if (n - i == 2) {
		d[0] = a[s[i] >> 2];
		d[1] = a[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		d[2] = a[(s[i + 1] & 15) << 2];
		d[3] = '=';
	}
	b->len += ((size_t)n + 2) / 3 * 4;
}

static int put_elements(struct rm_json_buf *b, bson_iter_t *it, bool keys, int depth);

/* A nested document or array, as libbson's visitor takes it. */
static int
put_nested(struct rm_json_buf *b, const bson_iter_t *it, bool array, int depth)
{
	const uint8_t *data = NULL;
	uint32_t len = 0;
	bson_iter_t child;
	bson_t sub;

	if (depth >= MAX_DEPTH)
		return J_LIBBSON;
	if (array)
		bson_iter_array(it, &len, &data);
	else
		bson_iter_document(it, &len, &data);
	/* Where these fail, libbson writes nothing for the value (or "{ ... }"): its call. */
	if (data == NULL || !bson_init_static(&sub, data, len) || !bson_iter_init(&child, &sub))
		return J_LIBBSON;
	if (array)
		PUTS(b, "[ ");
	else
		PUTS(b, "{ ");
	if (put_elements(b, &child, !array, depth + 1) != J_OK)
		return J_LIBBSON;
	if (array)
		PUTS(b, " ]");
	else
		PUTS(b, " }");
	return J_OK;
}

static int
put_value(struct rm_json_buf *b, bson_iter_t *it, int depth)
{
	const char *s;
	uint32_t n;

	switch (bson_iter_type(it)) {
	case BSON_TYPE_DOUBLE:
		put_double(b, bson_iter_double(it));
		return J_OK;
	case BSON_TYPE_UTF8:
		s = bson_iter_utf8(it, &n);
		return put_string(b, s, n, true, "", 0);
	case BSON_TYPE_DOCUMENT:
		return put_nested(b, it, false, depth);
	case BSON_TYPE_ARRAY:
		return put_nested(b, it, true, depth);
	case BSON_TYPE_BINARY: {
		static const char hex[] = "0123456789abcdef";
		bson_subtype_t subtype = BSON_SUBTYPE_BINARY;
		const uint8_t *data = NULL;
		char st[2];

		n = 0;
		bson_iter_binary(it, &subtype, &n, &data);
		if (data == NULL && n != 0)
			return J_LIBBSON;
		PUTS(b, "{ \"$binary\" : { \"base64\" : \"");
		put_base64(b, data, n);
		PUTS(b, "\", \"subType\" : \"");
		st[0] = hex[(subtype >> 4) & 15];
		st[1] = hex[subtype & 15];
		put(b, st, 2);
		PUTS(b, "\" } }");
		return J_OK;
	}
	case BSON_TYPE_UNDEFINED:
		PUTS(b, "{ \"$undefined\" : true }");
		return J_OK;
	case BSON_TYPE_OID: {
		char hex[25];

		bson_oid_to_string(bson_iter_oid(it), hex);
		PUTS(b, "{ \"$oid\" : \"");
		put(b, hex, 24);
		PUTS(b, "\" }");
		return J_OK;
	}
	case BSON_TYPE_BOOL:
		if (bson_iter_bool(it))
			PUTS(b, "true");
		else
			PUTS(b, "false");
		return J_OK;
	case BSON_TYPE_DATE_TIME: {
		int64_t ms = bson_iter_date_time(it);

		if (ms < 0) {
			PUTS(b, "{ \"$date\" : { \"$numberLong\" : \"");
			put_i64(b, ms);
			PUTS(b, "\" } }");
		} else if (ms < INT64_C(253402300800000)) {   /* 10000-01-01 */
			PUTS(b, "{ \"$date\" : \"");
			put_date(b, ms);
			PUTS(b, "\" }");
		} else {
			return J_LIBBSON;        /* gmtime's years past 9999 */
		}
		return J_OK;
	}
	case BSON_TYPE_NULL:
		PUTS(b, "null");
		return J_OK;
	case BSON_TYPE_INT32:
		put_i64(b, bson_iter_int32(it));
		return J_OK;
	case BSON_TYPE_INT64:
		put_i64(b, bson_iter_int64(it));
		return J_OK;
	case BSON_TYPE_TIMESTAMP: {
		uint32_t t, i;

		bson_iter_timestamp(it, &t, &i);
		PUTS(b, "{ \"$timestamp\" : { \"t\" : ");
		put_u64(b, t, 0);
		PUTS(b, ", \"i\" : ");
		put_u64(b, i, 0);
		PUTS(b, " } }");
		return J_OK;
	}
	case BSON_TYPE_DECIMAL128: {
		char dec[BSON_DECIMAL128_STRING];
		bson_decimal128_t v;

		if (!bson_iter_decimal128(it, &v))
			return J_LIBBSON;
		bson_decimal128_to_string(&v, dec);
		PUTS(b, "{ \"$numberDecimal\" : \"");
		put(b, dec, strlen(dec));
		PUTS(b, "\" }");
		return J_OK;
	}
	case BSON_TYPE_MAXKEY:
		PUTS(b, "{ \"$maxKey\" : 1 }");
		return J_OK;
	case BSON_TYPE_MINKEY:
		PUTS(b, "{ \"$minKey\" : 1 }");
		return J_OK;
	default:
		/* regex, DBPointer, code, symbol, code with scope, and what is not BSON */
		return J_LIBBSON;
	}
}

/* The elements of a document or array, ", " between them. */
static int
put_elements(struct rm_json_buf *b, bson_iter_t *it, bool keys, int depth)
{
	bool first = true;
	const char *key;
	size_t klen;

	while (bson_iter_next(it)) {
		key = bson_iter_key(it);
		klen = bson_iter_key_len(it);
		if (!first)
			PUTS(b, ", ");
		first = false;
		/* libbson's visitor validates every key, even an array's */
		if (keys ? put_string(b, key, klen, false, " : ", 3) != J_OK :
		    !plain_utf8(key, klen, false))
			return J_LIBBSON;
		if (put_value(b, it, depth) != J_OK)
			return J_LIBBSON;
	}
	/* The end, or corrupt BSON, which libbson refuses. */
	return it->err_off != 0 ? J_LIBBSON : J_OK;
}

/* libbson's own JSON, for what the encoder leaves to it. */
static int
rm_json_fallback(struct evbuffer *out, const bson_t *doc)
{
	size_t len;
	char *json = bson_as_relaxed_extended_json(doc, &len);
	int rc = 0;

	if (json == NULL)
		return -1;
	if (evbuffer_add(out, json, len) == -1)
		rc = -1;
	bson_free(json);
	return rc;
}

static int
encode(struct rm_json_buf *b, const bson_t *doc)
{
	bson_iter_t it;

	if (bson_empty0(doc)) {
		PUTS(b, "{ }");
		return J_OK;
	}
	if (!bson_iter_init(&it, doc))
		return J_LIBBSON;
	PUTS(b, "{ ");
	if (put_elements(b, &it, true, 0) != J_OK)
		return J_LIBBSON;
	PUTS(b, " }");
	return J_OK;
}

int
rm_json_doc(struct evbuffer *out, const bson_t *doc, struct rm_json_buf *b)
{
	int rc = 0;

	if (b == NULL)
		return rm_json_fallback(out, doc);
	b->len = 0;
	b->failed = 0;
	if (encode(b, doc) == J_OK && !b->failed) {
		if (evbuffer_add(out, b->p, b->len) == -1)
			rc = -1;
	} else {
		rc = rm_json_fallback(out, doc);
	}
	if (b->cap > SCRATCH_KEEP)
		rm_json_buf_free(b);
	return rc;
}

void
rm_json_buf_free(struct rm_json_buf *b)
{
	free(b->p);
	*b = (struct rm_json_buf){ 0 };
}
