/*
 * readmongo's JSON writer (svc/readmongo/json.c) against libbson's
 * bson_as_relaxed_extended_json(), byte for byte: every BSON type with its
 * edge values, strings and keys of every kind of byte, nesting, and random
 * documents, valid and then corrupted, where both must agree on refusing
 * one too. The test also counts how many documents the writer left to
 * libbson, so that a writer that always fell back could not pass.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "svc/readmongo/readmongo.h"
#include "t/tap.h"

#define RANDOM_DOCS 30000

/*
 * json.c falls back on this for what it does not write itself: counted
 * here, and answered by libbson (which is what this function does).
 */
static long fallbacks;
static bson_json_opts_t *relaxed;

static char *
reference(const bson_t *doc, size_t *len)
{
	if (relaxed == NULL)
		relaxed = bson_json_opts_new(BSON_JSON_MODE_RELAXED, BSON_MAX_LEN_UNLIMITED);
	return bson_as_json_with_opts(doc, len, relaxed);
}

char *
bson_as_relaxed_extended_json(const bson_t *bson, size_t *length)
{
	fallbacks++;
	return reference(bson, length);
}

static long mismatches;
static struct rm_json_buf buf;

/* 1 when ours and libbson's agree (the same bytes, or both refuse). */
static int
same(const bson_t *doc, const char *name)
{
	struct evbuffer *out = evbuffer_new();
	size_t rlen = 0, olen;
	char *ref = reference(doc, &rlen);
	int rc = rm_json_doc(out, doc, &buf), agree;
	const char *got;

	olen = evbuffer_get_length(out);
	got = (const char *)evbuffer_pullup(out, -1);
	if (ref == NULL)
		agree = rc == -1 && olen == 0;
	else
		agree = rc == 0 && olen == rlen && memcmp(got, ref, rlen) == 0;
	if (!agree && mismatches++ < 10)
		printf("# %s: libbson %s\n#   ours (rc %d) %.*s\n", name, ref ? ref : "(NULL)",
		    rc, (int)olen, got ? got : "");
	bson_free(ref);
	evbuffer_free(out);
	return agree;
}

static void
check(const bson_t *doc, const char *name)
{
	ok(same(doc, name), name);
}

static uint32_t rnd(uint32_t n);

/* ---- fixed cases ---- */

static void
doubles(void)
{
	static const double v[] = { 0.0, -0.0, 1.0, -1.0, 0.25, 0.1, 1.1, 3.0, 1e15, 1e16, 1e17,
	    0.0009765625, 0.00048828125, -0.0009765625, 123456789.0009765625, 4503599627370495.5,
	    9007199254740991.0, 9007199254740992.0, 1234567890123.75, 12345678901.0009765625,
	    1e21, 1e22, 1e300, -1e300, 1e-7, 1e-300, 5e-324, 2.2250738585072014e-308,
	    1.7976931348623157e308, 9007199254740993.0, 123456789.125, 0.3333333333333333 };
	bson_t doc = BSON_INITIALIZER;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		BSON_APPEND_DOUBLE(&doc, "d", v[i]);
	BSON_APPEND_DOUBLE(&doc, "nan", NAN);
	BSON_APPEND_DOUBLE(&doc, "-nan", -NAN);
	BSON_APPEND_DOUBLE(&doc, "inf", INFINITY);
	BSON_APPEND_DOUBLE(&doc, "-inf", -INFINITY);
	check(&doc, "doubles: finite, signed zero, NaN, infinities");
	bson_destroy(&doc);
}

/* Doubles that are multiples of a small power of 2 (the writer's own digits), and others. */
static void
random_doubles(void)
{
	int failed = 0;

	mismatches = 0;
	for (int i = 0; i < 200000 && !failed; i++) {
		bson_t doc = BSON_INITIALIZER;
		uint64_t m = ((uint64_t)rnd(UINT32_MAX) << 32 | rnd(UINT32_MAX)) >> rnd(64);
		double v = ldexp((double)(m & ((UINT64_C(1) << 53) - 1)), -(int)rnd(14));

		BSON_APPEND_DOUBLE(&doc, "d", rnd(2) ? v : -v);
		BSON_APPEND_DOUBLE(&doc, "e", (double)(int64_t)m);
		BSON_APPEND_DOUBLE(&doc, "f", ldexp((double)rnd(UINT32_MAX), (int)rnd(80) - 60));
		failed = !same(&doc, "random doubles");
		bson_destroy(&doc);
	}
	ok(!failed, "200,000 documents of random doubles, most of them multiples of 2^-k");
}

static void
integers_and_scalars(void)
{
	bson_t doc = BSON_INITIALIZER;
	bson_oid_t oid;
	bson_decimal128_t dec;

	BSON_APPEND_INT32(&doc, "a", 0);
	BSON_APPEND_INT32(&doc, "b", INT32_MIN);
	BSON_APPEND_INT32(&doc, "c", INT32_MAX);
	BSON_APPEND_INT64(&doc, "d", INT64_MIN);
	BSON_APPEND_INT64(&doc, "e", INT64_MAX);
	BSON_APPEND_INT64(&doc, "f", -1);
	BSON_APPEND_BOOL(&doc, "t", true);
	BSON_APPEND_BOOL(&doc, "f", false);
	BSON_APPEND_NULL(&doc, "n");
	BSON_APPEND_UNDEFINED(&doc, "u");
	BSON_APPEND_MINKEY(&doc, "min");
	BSON_APPEND_MAXKEY(&doc, "max");
	BSON_APPEND_TIMESTAMP(&doc, "ts", 0, 0);
	BSON_APPEND_TIMESTAMP(&doc, "ts2", UINT32_MAX, UINT32_MAX);
	bson_oid_init_from_string(&oid, "65a1b2c3d4e5f6a7b8c90000");
	BSON_APPEND_OID(&doc, "_id", &oid);
	bson_oid_init_from_string(&oid, "ffffffffffffffffffffffff");
	BSON_APPEND_OID(&doc, "o2", &oid);
	bson_decimal128_from_string("1.5E-10", &dec);
	BSON_APPEND_DECIMAL128(&doc, "dec", &dec);
	bson_decimal128_from_string("NaN", &dec);
	BSON_APPEND_DECIMAL128(&doc, "dec2", &dec);
	bson_decimal128_from_string("-0.00", &dec);
	BSON_APPEND_DECIMAL128(&doc, "dec3", &dec);
	check(&doc, "integers, booleans, null, undefined, min/max key, timestamps, ObjectIds, decimals");
	is_int(fallbacks, 0, "none of these left to libbson");
	bson_destroy(&doc);
}

static void
dates(void)
{
	static const int64_t v[] = { 0, 1, 999, 1000, 1001, 86399999, 86400000, 951782400000,
	    951868799999, 1700000000000, 1600000000123, 4102444800000, 253402300799999,
	    253402300800000, 253402300800001, INT64_MAX, -1, -1000, -86400001, INT64_MIN };
	long before = fallbacks;
	char name[64];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		bson_t doc = BSON_INITIALIZER;
		BSON_APPEND_DATE_TIME(&doc, "t", v[i]);
		snprintf(name, sizeof(name), "date %lld", (long long)v[i]);
		check(&doc, name);
		bson_destroy(&doc);
	}
	/* every day of the leap-year cycles around 2000 and 2100 */
	for (int64_t day = 10900; day < 10900 + 3 * 1461; day += 1) {
		bson_t doc = BSON_INITIALIZER;
		BSON_APPEND_DATE_TIME(&doc, "t", day * 86400000 + (day % 7) * 3723004);
		BSON_APPEND_DATE_TIME(&doc, "u", (day + 36500) * 86400000 + 86399000);
		if (!same(&doc, "a day"))
			break;
		bson_destroy(&doc);
	}
	ok(mismatches == 0, "dates: every day from 1999 to 2012 and from 2099 to 2112");
	is_int(fallbacks - before, 3, "dates past 9999 (3) left to libbson");
}

static void
binaries(void)
{
	static const uint8_t data[] = "\x00\x01\xfe\xff binary \x80";
	static const int subtypes[] = { 0, 1, 3, 4, 5, 6, 7, 8, 0x80, 0xff };
	bson_t doc = BSON_INITIALIZER;
	uint8_t sub2[4 + 5] = { 5, 0, 0, 0, 'a', 'b', 'c', 'd', 'e' };
	char key[8];

	for (size_t i = 0; i < sizeof(subtypes) / sizeof(subtypes[0]); i++)
		for (uint32_t n = 0; n <= 6; n++) {
			snprintf(key, sizeof(key), "%x_%u", subtypes[i], n);
			bson_append_binary(&doc, key, -1, (bson_subtype_t)subtypes[i], data, n);
		}
	bson_append_binary(&doc, "long", -1, BSON_SUBTYPE_BINARY, data, sizeof(data));
	/* the old binary subtype keeps a length of its own inside the value */
	bson_append_binary(&doc, "old", -1, BSON_SUBTYPE_BINARY_DEPRECATED, sub2, sizeof(sub2));
	check(&doc, "binary: every length mod 3, subtypes, the old subtype 2");
	bson_destroy(&doc);
}

static void
strings(void)
{
	static const char *v[] = { "", "plain", "quote \" backslash \\ slash /", "\b\f\n\r\t",
	    "\x01\x02\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\xe4\xb8\xad\xe6\x96\x87",
	    "\xef\xbf\xbf \xf4\x8f\xbf\xbf", "<script>&amp;</script>", "\\u0041" };
	bson_t doc = BSON_INITIALIZER;
	long before = fallbacks;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		BSON_APPEND_UTF8(&doc, v[i], v[i]);
		bson_append_utf8(&doc, "k", -1, v[i], -1);
	}
	bson_append_utf8(&doc, "nul", -1, "a\0b\0", 4);
	check(&doc, "strings and keys: escapes, control bytes, UTF-8 of 2, 3 and 4 bytes, NUL");
	is_int(fallbacks - before, 0, "none of these left to libbson");
	bson_destroy(&doc);
}

static void
invalid_text(void)
{
	static const char *v[] = { "\xc0\x80", "a\xc0\x80z", "\xff", "\xc3", "\xc3\x28",
	    "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\xc1\xbf",
	    "\xe0\x80\xaf", "\x80", "ok\xc3" };
	char name[64];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		bson_t doc = BSON_INITIALIZER;
		bson_append_utf8(&doc, "s", -1, v[i], -1);
		snprintf(name, sizeof(name), "invalid UTF-8 %zu in a value", i);
		check(&doc, name);
		bson_reinit(&doc);
		bson_append_int32(&doc, v[i], -1, 1);
		snprintf(name, sizeof(name), "invalid UTF-8 %zu in a key", i);
		check(&doc, name);
		bson_destroy(&doc);
	}
}

static void
nesting(void)
{
	bson_t doc = BSON_INITIALIZER, empty = BSON_INITIALIZER, child, arr, deep[160];
	bson_oid_t oid;

	bson_oid_init_from_string(&oid, "000000000000000000000001");
	BSON_APPEND_DOCUMENT(&doc, "empty", &empty);
	BSON_APPEND_ARRAY(&doc, "none", &empty);
	BSON_APPEND_DOCUMENT_BEGIN(&doc, "d", &child);
	BSON_APPEND_ARRAY_BEGIN(&child, "a", &arr);
	BSON_APPEND_INT32(&arr, "0", 1);
	BSON_APPEND_UTF8(&arr, "1", "two");
	BSON_APPEND_OID(&arr, "2", &oid);
	bson_append_array_end(&child, &arr);
	BSON_APPEND_DOCUMENT(&child, "e", &empty);
	bson_append_document_end(&doc, &child);
	check(&doc, "nested documents and arrays, empty ones");
	check(&empty, "the empty document");
	bson_destroy(&doc);

	/* deeper than MAX_DEPTH: left to libbson, which says "{ ... }" past 200 */
	for (int depth = 90; depth <= 150; depth += 30) {
		char name[64];
		bson_init(&deep[0]);
		for (int i = 0; i < depth; i++)
			bson_append_document_begin(&deep[i], "x", 1, &deep[i + 1]);
		BSON_APPEND_INT32(&deep[depth], "leaf", 1);
		for (int i = depth; i > 0; i--)
			bson_append_document_end(&deep[i - 1], &deep[i]);
		snprintf(name, sizeof(name), "%d nested documents", depth);
		check(&deep[0], name);
		bson_destroy(&deep[0]);
	}
}

static void
rare_types(void)
{
	bson_t doc = BSON_INITIALIZER, scope = BSON_INITIALIZER;
	bson_oid_t oid;
	long before = fallbacks;

	bson_oid_init_from_string(&oid, "000000000000000000000001");
	BSON_APPEND_INT32(&scope, "x", 1);
	BSON_APPEND_REGEX(&doc, "re", "^a\"b", "xmi");
	BSON_APPEND_CODE(&doc, "code", "function () { return \"x\"; }");
	BSON_APPEND_CODE_WITH_SCOPE(&doc, "cws", "x", &scope);
	BSON_APPEND_SYMBOL(&doc, "sym", "sy\"m");
	BSON_APPEND_DBPOINTER(&doc, "ptr", "db.c", &oid);
	check(&doc, "regular expression, code, code with scope, symbol, DBPointer");
	is_int(fallbacks - before, 1, "left to libbson");
	bson_destroy(&doc);
	bson_destroy(&scope);
}

/* ---- random documents ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

/* A string of tricky pieces; invalid UTF-8 only if bad. */
static size_t
rnd_text(char *buf, size_t cap, int bad, int nul)
{
	static const char *piece[] = { "a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f",
	    "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xef\xbb\xbf", "$", ".", "0",
	    "\xdf\xbf", "\xf4\x8f\xbf\xbf", "\xee\x80\x80" };
	static const char *badp[] = { "\xc0\x80", "\xff", "\xc3", "\xed\xa0\x80", "\x80",
	    "\xf4\x90\x80\x80", "\xe0\x80\xaf" };
	size_t n = 0, k = rnd(12);

	for (size_t i = 0; i < k; i++) {
		const char *p;
		size_t pl;
		if (nul && rnd(20) == 0) {
			p = "\0";
			pl = 1;
		} else if (bad && rnd(8) == 0) {
			p = badp[rnd(sizeof(badp) / sizeof(badp[0]))];
			pl = strlen(p);
		} else {
			p = piece[rnd(sizeof(piece) / sizeof(piece[0]))];
			pl = strlen(p);
		}
		if (n + pl >= cap)
			break;
		memcpy(buf + n, p, pl);
		n += pl;
	}
	buf[n] = '\0';
	return n;
}

static void rnd_doc(bson_t *doc, int depth, int bad, int array);

static void
rnd_value(bson_t *doc, const char *key, int depth, int bad)
{
	static const double dv[] = { 0.0, -0.0, 0.5, 1e100, 2.5e-5, 12345.678, 1e16 };
	char text[64];
	size_t n;
	bson_t child;
	bson_oid_t oid;
	uint8_t bin[8];

	switch (rnd(depth < 3 ? 18 : 16)) {
	case 0: BSON_APPEND_DOUBLE(doc, key, dv[rnd(7)] * (rnd(2) ? 1 : -1) + rnd(1000) / 7.0); break;
	case 1:
		n = rnd_text(text, sizeof(text), bad, 1);
		bson_append_utf8(doc, key, -1, text, (int)n);
		break;
	case 2: BSON_APPEND_INT32(doc, key, (int32_t)(rnd(UINT32_MAX) - INT32_MAX)); break;
	case 3: BSON_APPEND_INT64(doc, key, ((int64_t)rnd(UINT32_MAX) << 31) - ((int64_t)1 << 60)); break;
	case 4: BSON_APPEND_BOOL(doc, key, rnd(2)); break;
	case 5: BSON_APPEND_NULL(doc, key); break;
	case 6:
		BSON_APPEND_DATE_TIME(doc, key, (int64_t)rnd(UINT32_MAX) * (int64_t)rnd(100000) -
		    (rnd(10) == 0 ? (int64_t)1 << 40 : 0));
		break;
	case 7:
		for (size_t i = 0; i < sizeof(bin); i++)
			bin[i] = (uint8_t)rnd(256);
		bson_append_binary(doc, key, -1, (bson_subtype_t)(rnd(2) ? rnd(9) : 0x80 + rnd(128)),
		    bin, rnd(sizeof(bin) + 1));
		break;
	case 8:
		bson_oid_init(&oid, NULL);
		BSON_APPEND_OID(doc, key, &oid);
		break;
	case 9: BSON_APPEND_TIMESTAMP(doc, key, rnd(UINT32_MAX), rnd(UINT32_MAX)); break;
	case 10: BSON_APPEND_UNDEFINED(doc, key); break;
	case 11: BSON_APPEND_MINKEY(doc, key); break;
	case 12: BSON_APPEND_MAXKEY(doc, key); break;
	case 13:
		if (rnd(10) == 0) {
			BSON_APPEND_REGEX(doc, key, "a.b", "i");
		} else {
			bson_decimal128_t dec;
			snprintf(text, sizeof(text), "%d.%dE%d", (int)rnd(100000) - 50000, (int)rnd(1000),
			    (int)rnd(100) - 50);
			bson_decimal128_from_string(text, &dec);
			BSON_APPEND_DECIMAL128(doc, key, &dec);
		}
		break;
	case 14: BSON_APPEND_DOUBLE(doc, key, (double)rnd(UINT32_MAX)); break;
	case 15: BSON_APPEND_INT32(doc, key, (int32_t)rnd(100)); break;
	case 16:
		bson_append_document_begin(doc, key, -1, &child);
		rnd_doc(&child, depth + 1, bad, 0);
		bson_append_document_end(doc, &child);
		break;
	default:
		bson_append_array_begin(doc, key, -1, &child);
		rnd_doc(&child, depth + 1, bad, 1);
		bson_append_array_end(doc, &child);
	}
}

static void
rnd_doc(bson_t *doc, int depth, int bad, int array)
{
	uint32_t n = rnd(8);
	char key[64];

	for (uint32_t i = 0; i < n; i++) {
		if (array)
			snprintf(key, sizeof(key), "%u", i);
		else
			rnd_text(key, sizeof(key), bad && rnd(4) == 0, 0);
		rnd_value(doc, key, depth, bad);
	}
}

static void
random_docs(void)
{
	long left = 0, corrupt_refused = 0, corrupt_agreed = 0, bad_docs = 0, before;
	char name[64];
	int failed = 0;

	mismatches = 0;
	for (int i = 0; i < RANDOM_DOCS && !failed; i++) {
		bson_t doc = BSON_INITIALIZER;
		int bad = i % 4 == 3;
		rnd_doc(&doc, 0, bad, 0);
		snprintf(name, sizeof(name), "random document %d", i);
		before = fallbacks;
		failed = !same(&doc, name);
		left += fallbacks - before;
		bad_docs += bad;
		/* the same bytes with one or a few changed: both must agree */
		for (int k = 0; k < 4 && !failed && doc.len > 5; k++) {
			uint8_t *copy = bson_malloc(doc.len);
			bson_t c;
			memcpy(copy, bson_get_data(&doc), doc.len);
			for (uint32_t m = 0, nm = 1 + rnd(3); m < nm; m++)
				copy[4 + rnd(doc.len - 5)] = (uint8_t)(rnd(3) ? rnd(256) : rnd(20));
			if (bson_init_static(&c, copy, doc.len)) {
				size_t len;
				char *ref = reference(&c, &len);
				corrupt_refused += ref == NULL;
				bson_free(ref);
				snprintf(name, sizeof(name), "corrupted document %d.%d", i, k);
				failed = !same(&c, name);
				corrupt_agreed++;
			}
			bson_free(copy);
		}
		bson_destroy(&doc);
	}
	ok(!failed, "random documents, and corrupted copies of them: the same bytes as libbson");
	printf("# %d random documents (%ld with invalid UTF-8 in places), %ld corrupted copies "
	    "(%ld refused by libbson); of the random documents, %ld left to libbson\n", RANDOM_DOCS, bad_docs,
	    corrupt_agreed, corrupt_refused, left);
	ok(left < RANDOM_DOCS / 2, "most random documents written without libbson");
	ok(corrupt_refused > 1000, "many corrupted documents refused, by both");
}

int
main(void)
{
	integers_and_scalars();
	doubles();
	random_doubles();
	dates();
	binaries();
	strings();
	invalid_text();
	nesting();
	rare_types();
	random_docs();
	bson_json_opts_destroy(relaxed);
	rm_json_buf_free(&buf);
	return done_testing();
}
