/*
 * What a readmongo request may ask: its filter, sort and projection, each
 * exactly one Extended JSON object with no operator that would run
 * JavaScript on the server. Apart from the request so that it can be
 * fuzzed on its own (fuzz/readmongo.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "svc/readmongo/readmongo.h"

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

bson_t *
rm_query_object(const char *name, const char *text, char *why, size_t whylen)
{
	const char *p, *js;
	bson_error_t error;
	bson_iter_t it;
	bson_t *doc;

	for (p = text; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++)
		;
	if (*p != '{') {
		snprintf(why, whylen, "%s must be a JSON object, as in %s={\"field\":1}", name, name);
		return NULL;
	}
	if ((doc = parse_json(text, &error)) == NULL) {
		/* libbson says where, except when the text ends too soon. */
		if (strstr(error.message, "Incomplete JSON") == NULL)
			snprintf(why, whylen, "%s is not valid Extended JSON: %s", name, error.message);
		else
			snprintf(why, whylen, "%s is not valid Extended JSON: the text ends at "
			    "position %zu, before the object is closed", name, strlen(text));
		return NULL;
	}
	if (bson_iter_init(&it, doc) && (js = find_js(&it)) != NULL) {
		snprintf(why, whylen, "%s uses %s, which runs JavaScript on the server: not "
		    "allowed here", name, js);
		bson_destroy(doc);
		return NULL;
	}
	return doc;
}
