/*
 * readmongo's route options, validated in the master at start and on every
 * reload: nothing here talks to MongoDB or starts a thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/config.h"
#include "svc/readmongo/readmongo.h"

const char *const rm_keys[] = {
	"uri", "database", "collections", "default_limit", "max_limit",
	"max_time_ms", "threads", "queue_limit", "stream_timeout_ms", "get_batch", NULL
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

/* Where the URI option key (any case) starts in the query of uri, or NULL. */
static const char *
find_option(const char *uri, const char *key)
{
	const char *p = strchr(uri, '?');
	size_t klen = strlen(key);

	while (p != NULL && *p != '\0') {
		const char *k = p + 1;

		if (strcspn(k, "=&;") == klen && strncasecmp(k, key, klen) == 0)
			return k;
		p = strpbrk(k, "&;");
	}
	return NULL;
}

/* The user's spelling of option key (the driver's messages lower-case it). */
static const char *
spelling(const char *uri, const char *key, char *buf, size_t len)
{
	const char *k = find_option(uri, key);

	snprintf(buf, len, "%.*s", (int)strlen(key), k != NULL ? k : key);
	return buf;
}

/* What the driver says while it parses a URI: an unknown option is noted, not printed. */
struct uri_notes {
	char unknown[64];                    /* the first unknown option, lower-cased */
};

static void
note_uri_message(mongoc_log_level_t level, const char *domain, const char *message, void *arg)
{
	struct uri_notes *n = arg;
	const char *q;

	(void)level;
	(void)domain;
	if (n->unknown[0] == '\0' && strncmp(message, "Unsupported URI option \"", 24) == 0 &&
	    (q = strchr(message + 24, '"')) != NULL)
		snprintf(n->unknown, sizeof(n->unknown), "%.*s", (int)(q - (message + 24)), message + 24);
	/* The rest repeats the error that parsing returns. */
}

/*
 * Parsing only: no client, thread or socket exists in the master. The
 * driver's own parser decides, with three more rules so that -t catches what
 * the driver would only find later, or would ignore: an option it does not
 * know (a typo would leave, say, the read preference at primary, with only
 * a warning), maxStalenessSeconds or readPreferenceTags with the primary
 * read preference (the driver says only "Invalid readPreferences"), and a
 * maxStalenessSeconds under what a replica set accepts (90 s, and
 * heartbeatFrequencyMS + 10 s), which would fail every query instead.
 */
static int
check_uri(const char *s, const char *path, char *err, size_t errlen)
{
	struct uri_notes notes = { .unknown = "" };
	const mongoc_read_prefs_t *prefs;
	bson_error_t error;
	mongoc_uri_t *uri;
	char key[64];
	int64_t staleness, least;

	mongoc_log_set_handler(note_uri_message, &notes);
	uri = mongoc_uri_new_with_error(s, &error);
	mongoc_log_set_handler(mongoc_log_default_handler, NULL);
	if (uri == NULL) {
		const char *opt = find_option(s, "maxStalenessSeconds") != NULL ?
		    "maxStalenessSeconds" : find_option(s, "readPreferenceTags") != NULL ?
		    "readPreferenceTags" : NULL;

		if (strstr(error.message, "Invalid readPreferences") != NULL && opt != NULL)
			snprintf(err, errlen, "%s.uri: %s needs a readPreference other than primary",
			    path, spelling(s, opt, key, sizeof(key)));
		else
			snprintf(err, errlen, "%s.uri: %s", path, error.message);
		return -1;
	}
	if (notes.unknown[0] != '\0') {
		snprintf(err, errlen, "%s.uri: unknown option \"%s\"", path,
		    spelling(s, notes.unknown, key, sizeof(key)));
		mongoc_uri_destroy(uri);
		return -1;
	}
	prefs = mongoc_uri_get_read_prefs_t(uri);
	staleness = prefs != NULL ? mongoc_read_prefs_get_max_staleness_seconds(prefs) :
	    MONGOC_NO_MAX_STALENESS;
	least = (mongoc_uri_get_option_as_int32(uri, MONGOC_URI_HEARTBEATFREQUENCYMS,
	    RM_HEARTBEAT_MS) + 10000 + 999) / 1000;
	if (least < MONGOC_SMALLEST_MAX_STALENESS_SECONDS)
		least = MONGOC_SMALLEST_MAX_STALENESS_SECONDS;
	if (staleness != MONGOC_NO_MAX_STALENESS && staleness < least) {
		snprintf(err, errlen, "%s.uri: %s=%lld is below %lld, the least a replica set "
		    "accepts (90 s, and heartbeatFrequencyMS + 10 s)", path,
		    spelling(s, "maxStalenessSeconds", key, sizeof(key)),
		    (long long)staleness, (long long)least);
		mongoc_uri_destroy(uri);
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
		&c->stream_timeout_ms, err, errlen) == -1 ||
	    conf_get_int(r, path, "get_batch", 1, RM_GET_BATCH_MAX, 64, &c->get_batch,
		err, errlen) == -1)
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

