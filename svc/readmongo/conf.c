/*
 * readmongo's route options, validated in the master at start and on every
 * reload: nothing here talks to MongoDB or starts a thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "svc/readmongo/readmongo.h"

const char *const rm_keys[] = {
	"uri", "database", "collections", "default_limit", "max_limit",
	"max_time_ms", "threads", "queue_limit", "stream_timeout_ms", NULL
};

static bool
valid_database(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 && strpbrk(s, "/\\. \"$") == NULL;
}

/* MongoDB's rules for a collection name, and the namespace length. */
bool
rm_valid_collection(const char *db, const char *s, size_t n)
{
	return n > 0 && strlen(db) + 1 + n <= NS_MAX && memchr(s, '\0', n) == NULL &&
	    memchr(s, '$', n) == NULL && s[0] != '.' &&
	    !(n >= 7 && memcmp(s, "system.", 7) == 0);
}

void
rm_conf_free(void *p)
{
	struct rm_conf *c = p;

	if (c == NULL)
		return;
	for (size_t i = 0; c->collections != NULL && c->collections[i] != NULL; i++)
		free(c->collections[i]);
	free(c->collections);
	free(c->uri);
	free(c->database);
	free(c);
}

static int
check_uri(const char *s, const char *path, char *err, size_t errlen)
{
	bson_error_t error;
	mongoc_uri_t *uri;

	/* Parsing only: no client, thread or socket exists in the master. */
	if ((uri = mongoc_uri_new_with_error(s, &error)) == NULL) {
		snprintf(err, errlen, "%s.uri: %s", path, error.message);
		return -1;
	}
	mongoc_uri_destroy(uri);
	return 0;
}

static int
get_collections(json_object *route, const char *path, struct rm_conf *c,
    char *err, size_t errlen)
{
	json_object *v, *item;
	const char *name;
	size_t n, k = 0;

	if (!json_object_object_get_ex(route, "collections", &v)) {
		snprintf(err, errlen, "%s.collections: required key is missing", path);
		return -1;
	}
	if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0) {
		snprintf(err, errlen, "%s.collections: expected a non-empty array of "
		    "collection names (\"*\" allows all)", path);
		return -1;
	}
	if ((c->collections = calloc(n + 1, sizeof(char *))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		item = json_object_array_get_idx(v, i);
		if (!json_object_is_type(item, json_type_string)) {
			snprintf(err, errlen, "%s.collections[%zu]: expected a string, got %s",
			    path, i, json_type_to_name(json_object_get_type(item)));
			return -1;
		}
		name = json_object_get_string(item);
		if (strcmp(name, "*") == 0) {
			c->all_collections = true;
			continue;
		}
		if (!rm_valid_collection(c->database, name, strlen(name))) {
			snprintf(err, errlen, "%s.collections[%zu]: \"%s\" is not a valid "
			    "collection name", path, i, name);
			return -1;
		}
		if ((c->collections[k++] = strdup(name)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int
get_limits(json_object *r, const char *path, struct rm_conf *c, char *err, size_t errlen)
{
	if (conf_get_int(r, path, "max_limit", 1, 1000000000, 1000, &c->max_limit,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "default_limit", 1, 1000000000, 100, &c->default_limit,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "max_time_ms", 1, 3600000, 2000, &c->max_time_ms,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "threads", 1, 64, 4, &c->threads, err, errlen) == -1 ||
	    conf_get_int(r, path, "queue_limit", 1, 1000000, 1024, &c->queue_limit,
		err, errlen) == -1 ||
	    conf_get_int(r, path, "stream_timeout_ms", 1, 86400000, 300000,
		&c->stream_timeout_ms, err, errlen) == -1)
		return -1;
	if (c->default_limit > c->max_limit) {
		snprintf(err, errlen, "%s.default_limit: %lld is over max_limit (%lld)",
		    path, c->default_limit, c->max_limit);
		return -1;
	}
	return 0;
}

int
rm_configure(json_object *route, const char *path, void **conf, char *err, size_t errlen)
{
	struct rm_conf *c = calloc(1, sizeof(*c));

	*conf = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (conf_get_string(route, path, "uri", true, NULL, &c->uri, err, errlen) == -1 ||
	    check_uri(c->uri, path, err, errlen) == -1 ||
	    conf_get_string(route, path, "database", true, NULL, &c->database,
		err, errlen) == -1)
		goto fail;
	if (!valid_database(c->database)) {
		snprintf(err, errlen, "%s.database: \"%s\" is not a valid database name",
		    path, c->database);
		goto fail;
	}
	if (get_collections(route, path, c, err, errlen) == -1 ||
	    get_limits(route, path, c, err, errlen) == -1)
		goto fail;
	*conf = c;
	return 0;
fail:
	rm_conf_free(c);
	return -1;
}

