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

/*
 * The Extended JSON object in query parameter name, or NULL (absent, or
 * invalid: then a 400 has been sent and *bad is set).
 */
static bson_t *
json_param(struct http_req *req, struct http_params *params, const char *name, int *bad)
{
	const char *text = http_params_get(params, name);
	char why[640];
	bson_t *doc;

	if (text == NULL)
		return NULL;
	if ((doc = rm_query_object(name, text, why, sizeof(why))) == NULL) {
		http_error(req, 400, "bad_request", "%s", why);
		*bad = 1;
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
	j->opts = j->opts_own = find_opts(rm, projection, sort, limit, skip);
	j->one_find = limit <= SERVER_BATCH;    /* batchSize is the limit */
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
	j->opts = rm->count_opts;
	rm_submit(rm, j);
}

static void
get(struct readmongo *rm, struct http_req *req, const char *coll, const char *id)
{
	struct rm_job *j;

	if ((j = rm_job_new(rm, req, OP_GET, coll)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		return;
	}
	j->filter = bson_new();
	if (strlen(id) == 24 && bson_oid_is_valid(id, 24)) {
		bson_oid_init_from_string(&j->oid, id);
		BSON_APPEND_OID(j->filter, "_id", &j->oid);
		j->batchable = rm->conf->get_batch > 1;
	} else {
		BSON_APPEND_UTF8(j->filter, "_id", id);
	}
	j->opts = rm->get_opts;
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

