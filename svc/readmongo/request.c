/*
 * readmongo on the loop, before the pool: a request's path and query
 * parsed and checked (collections, Extended JSON, operators that would run
 * JavaScript, limits) into a job, or answered with a 400 or 404.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "svc/readmongo/readmongo.h"

#define SERVER_BATCH 1000           /* documents per server batch: bounds its memory */
#define ID_MAX       1024

/* Operators that run JavaScript on the server, refused at any depth. */
static const char *const js_operators[] = { "$where", "$function", "$accumulator", NULL };

static const char *
find_js(bson_iter_t *it)
{
	bson_iter_t child;
	const char *key, *found;

	while (bson_iter_next(it)) {
		key = bson_iter_key(it);
		for (size_t i = 0; js_operators[i] != NULL; i++)
			if (strcmp(key, js_operators[i]) == 0)
				return js_operators[i];
		if ((BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) &&
		    bson_iter_recurse(it, &child) && (found = find_js(&child)) != NULL)
			return found;
	}
	return NULL;
}

/*
 * Exactly one Extended JSON document, or NULL with error set:
 * bson_new_from_json would quietly drop whatever follows the first.
 */
static bson_t *
parse_json(const char *text, bson_error_t *error)
{
	bson_json_reader_t *reader = bson_json_data_reader_new(true, 0);
	bson_t *doc = bson_new(), extra = BSON_INITIALIZER;
	int first, second = 0;

	bson_json_data_reader_ingest(reader, (const uint8_t *)text, strlen(text));
	/* 1: a document, 0: the end of the text, -1: an error. */
	first = bson_json_reader_read(reader, doc, error);
	if (first == 0)
		bson_set_error(error, BSON_ERROR_JSON, 0, "Incomplete JSON");
	else if (first == 1 && (second = bson_json_reader_read(reader, &extra, error)) == 1)
		bson_set_error(error, BSON_ERROR_JSON, 0, "more than one JSON object");
	bson_destroy(&extra);
	bson_json_reader_destroy(reader);
	if (first != 1 || second != 0) {
		bson_destroy(doc);
		return NULL;
	}
	return doc;
}

/*
 * The Extended JSON object in query parameter name, or NULL (absent, or
 * invalid: then a 400 has been sent and *bad is set).
 */
static bson_t *
json_param(struct http_req *req, struct http_params *params, const char *name, int *bad)
{
	const char *text = http_params_get(params, name), *p;
	bson_error_t error;
	bson_iter_t it;
	const char *js;
	bson_t *doc;

	if (text == NULL)
		return NULL;
	for (p = text; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++)
		;
	if (*p != '{') {
		http_error(req, 400, "bad_request", "%s must be a JSON object, as in "
		    "%s={\"field\":1}", name, name);
		*bad = 1;
		return NULL;
	}
	if ((doc = parse_json(text, &error)) == NULL) {
		/* libbson says where, except when the text ends too soon. */
		if (strstr(error.message, "Incomplete JSON") == NULL)
			http_error(req, 400, "bad_request", "%s is not valid Extended JSON: %s",
			    name, error.message);
		else
			http_error(req, 400, "bad_request", "%s is not valid Extended JSON: the "
			    "text ends at position %zu, before the object is closed", name,
			    strlen(text));
		*bad = 1;
		return NULL;
	}
	if (bson_iter_init(&it, doc) && (js = find_js(&it)) != NULL) {
		http_error(req, 400, "bad_request", "%s uses %s, which runs JavaScript on "
		    "the server: not allowed here", name, js);
		bson_destroy(doc);
		*bad = 1;
		return NULL;
	}
	return doc;
}

/* A non-negative integer query parameter: 0, or -1 after a 400. */
static int
uint_param(struct http_req *req, struct http_params *params, const char *name,
    long long def, long long *out)
{
	const char *v = http_params_get(params, name);
	long long n;
	char *end;

	*out = def;
	if (v == NULL)
		return 0;
	/* Digits only: strtoll would take a sign, spaces and a 0x. */
	if (*v >= '0' && *v <= '9') {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno == 0 && *end == '\0') {
			*out = n;
			return 0;
		}
	}
	http_error(req, 400, "bad_request", "%s must be a non-negative integer, got \"%s\"",
	    name, v);
	return -1;
}

static int
limit_params(struct readmongo *rm, struct http_req *req, struct http_params *params,
    long long *limit, long long *skip)
{
	if (uint_param(req, params, "limit", rm->conf->default_limit, limit) == -1 ||
	    uint_param(req, params, "skip", 0, skip) == -1)
		return -1;
	if (*limit > rm->conf->max_limit) {
		http_error(req, 400, "bad_request", "limit %lld is over max_limit (%lld)",
		    *limit, rm->conf->max_limit);
		return -1;
	}
	return 0;
}

static bson_t *
find_opts(struct readmongo *rm, const bson_t *projection, const bson_t *sort,
    long long limit, long long skip)
{
	bson_t *opts = bson_new();

	if (projection != NULL)
		BSON_APPEND_DOCUMENT(opts, "projection", projection);
	if (sort != NULL)
		BSON_APPEND_DOCUMENT(opts, "sort", sort);
	BSON_APPEND_INT64(opts, "limit", limit);
	if (skip > 0)
		BSON_APPEND_INT64(opts, "skip", skip);
	BSON_APPEND_INT32(opts, "batchSize", limit < SERVER_BATCH ? (int32_t)limit : SERVER_BATCH);
	BSON_APPEND_INT64(opts, "maxTimeMS", rm->conf->max_time_ms);
	return opts;
}

static bson_t *
time_opts(struct readmongo *rm)
{
	bson_t *opts = bson_new();

	BSON_APPEND_INT64(opts, "maxTimeMS", rm->conf->max_time_ms);
	return opts;
}

static void
list(struct readmongo *rm, struct http_req *req, const char *coll,
    struct http_params *params)
{
	bson_t *filter = NULL, *projection = NULL, *sort = NULL;
	long long limit, skip;
	struct rm_job *j;
	int bad = 0;

	filter = json_param(req, params, "filter", &bad);
	if (!bad)
		projection = json_param(req, params, "projection", &bad);
	if (!bad)
		sort = json_param(req, params, "sort", &bad);
	if (bad || limit_params(rm, req, params, &limit, &skip) == -1)
		goto out;
	if (limit == 0) {
		/* To MongoDB 0 means no limit at all: here it means what it says. */
		http_reply(req, 200, "{\"documents\":[]}", 16);
		goto out;
	}
	if ((j = rm_job_new(rm, req, OP_LIST, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		goto out;
	}
	j->filter = filter != NULL ? filter : bson_new();
	filter = NULL;
	j->opts = find_opts(rm, projection, sort, limit, skip);
	rm_submit(rm, j);
out:
	if (filter != NULL)
		bson_destroy(filter);
	if (projection != NULL)
		bson_destroy(projection);
	if (sort != NULL)
		bson_destroy(sort);
}

static void
count(struct readmongo *rm, struct http_req *req, const char *coll,
    struct http_params *params)
{
	bson_t *filter;
	struct rm_job *j;
	int bad = 0;

	if ((filter = json_param(req, params, "filter", &bad)) == NULL && bad)
		return;
	if ((j = rm_job_new(rm, req, OP_COUNT, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		if (filter != NULL)
			bson_destroy(filter);
		return;
	}
	j->filter = filter != NULL ? filter : bson_new();
	j->opts = time_opts(rm);
	rm_submit(rm, j);
}

static void
get(struct readmongo *rm, struct http_req *req, const char *coll, const char *id)
{
	struct rm_job *j;
	bson_oid_t oid;

	if ((j = rm_job_new(rm, req, OP_GET, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		return;
	}
	j->filter = bson_new();
	if (strlen(id) == 24 && bson_oid_is_valid(id, 24)) {
		bson_oid_init_from_string(&oid, id);
		BSON_APPEND_OID(j->filter, "_id", &oid);
	} else {
		BSON_APPEND_UTF8(j->filter, "_id", id);
	}
	j->opts = time_opts(rm);
	BSON_APPEND_INT64(j->opts, "limit", 1);
	BSON_APPEND_BOOL(j->opts, "singleBatch", true);
	rm_submit(rm, j);
}

static bool
collection_allowed(const struct rm_conf *c, const char *name)
{
	if (c->all_collections)
		return true;
	for (size_t i = 0; c->collections[i] != NULL; i++)
		if (strcmp(c->collections[i], name) == 0)
			return true;
	return false;
}

/* Splits "/coll[/rest]" into the decoded collection and the raw rest; -1 after a 404. */
static int
parse_path(struct readmongo *rm, struct http_req *req, const char *subpath,
    char *coll, size_t len, const char **rest)
{
	const char *s = subpath[0] == '/' ? subpath + 1 : subpath;
	size_t n = strcspn(s, "/");

	*rest = s + n;
	if (n == 0) {
		http_error(req, 404, "not_found", "name a collection: %s/{collection}, "
		    "%s/{collection}/{id} or %s/{collection}/_count", rm->prefix, rm->prefix,
		    rm->prefix);
		return -1;
	}
	if (http_unescape(s, n, coll, len, 0) == -1 ||
	    !rm_valid_collection(rm->conf->database, coll, strlen(coll))) {
		http_error(req, 404, "not_found", "\"%.*s\" is not a valid collection name",
		    (int)(n > 200 ? 200 : n), s);
		return -1;
	}
	if (!collection_allowed(rm->conf, coll)) {
		http_error(req, 404, "not_found", "collection \"%s\" is not served here", coll);
		return -1;
	}
	return 0;
}

void
rm_handle(void *state, struct http_req *req, const char *subpath)
{
	struct readmongo *rm = state;
	char coll[NS_MAX + 1], id[ID_MAX + 1];
	struct http_params *params;
	const char *rest;

	if (parse_path(rm, req, subpath, coll, sizeof(coll), &rest) == -1)
		return;
	if (*rest == '/')
		rest++;
	if (strchr(rest, '/') != NULL) {
		http_error(req, 404, "not_found", "no such path: %s/{collection}/{id} is as "
		    "deep as it goes", rm->prefix);
		return;
	}
	if ((params = http_params_parse(req)) == NULL) {
		http_error(req, 400, "bad_request", "the query string is malformed");
		return;
	}
	if (*rest == '\0')
		list(rm, req, coll, params);
	else if (strcmp(rest, "_count") == 0)
		count(rm, req, coll, params);
	else if (http_unescape(rest, strlen(rest), id, sizeof(id), 0) == -1)
		http_error(req, 404, "not_found", "\"%.200s\" is not a valid id", rest);
	else
		get(rm, req, coll, id);
	http_params_free(params);
}

