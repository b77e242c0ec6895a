/*
 * selftest_client: runs queries through libmongoc for t/mongo/selftest.
 *
 *   selftest_client [--heartbeat] mongodb://127.0.0.1:PORT/ < queries.jsonl
 *
 * Each stdin line is one Extended JSON query:
 *   {"op":"find","db":D,"coll":C,"filter":{..},"opts":{..}}     opts: projection, sort, limit, skip, batchSize...
 *   {"op":"aggregate","db":D,"coll":C,"pipeline":[..],"opts":{..}}
 *   {"op":"count","db":D,"coll":C,"filter":{..},"opts":{..}}    mongoc_collection_count_documents
 *   {"op":"command","db":D,"command":{..}}                      mongoc_client_command_simple
 * Output per query: each result document as canonical Extended JSON on one
 * line (count prints "COUNT n"), an "ERROR <domain> <code> <message>" line
 * on failure, then "END".
 *
 * With --heartbeat, after the last query the client waits (10 s at most) for
 * one more server heartbeat to succeed, as seen by libmongoc's APM
 * server-heartbeat-succeeded callback, and exits 3 if none did. A client
 * (single-threaded) only checks the server when it selects one and the last
 * check is heartbeatFrequencyMS old, so it selects the server in a poll until
 * then. The handshake already negotiated helloOk, so that heartbeat is a
 * "hello" over OP_QUERY.
 */
#define _POSIX_C_SOURCE 200809L /* getline */

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int heartbeats_ok; /* server heartbeats that succeeded */

static void heartbeat_succeeded (const mongoc_apm_server_heartbeat_succeeded_t *event)
{
   (void) event;
   heartbeats_ok++;
}

static int64_t now_ms (void)
{
   struct timespec ts;

   clock_gettime (CLOCK_MONOTONIC, &ts);
   return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls server selection until a heartbeat after `before` succeeds; 0 if none in `ms`. */
static int await_heartbeat (mongoc_client_t *client, int before, int64_t ms)
{
   const struct timespec tick = { 0, 10 * 1000 * 1000 };
   int64_t deadline = now_ms () + ms;
   mongoc_server_description_t *sd;
   bson_error_t error;

   while (heartbeats_ok == before) {
      if (now_ms () > deadline) {
         return 0;
      }
      sd = mongoc_client_select_server (client, false, NULL, &error);
      if (sd) {
         mongoc_server_description_destroy (sd);
      }
      if (heartbeats_ok == before) {
         nanosleep (&tick, NULL);
      }
   }
   return 1;
}

static void print_doc (const bson_t *doc)
{
   char *json = bson_as_canonical_extended_json (doc, NULL);
   puts (json);
   bson_free (json);
}

static void print_error (const bson_error_t *error)
{
   printf ("ERROR %u %u %s\n", error->domain, error->code, error->message);
}

/* Points *out at the sub-document / array `key` of `doc`; empty if absent. */
static void get_sub (const bson_t *doc, const char *key, bson_t *out)
{
   bson_iter_t it;
   const uint8_t *data;
   uint32_t len;

   if (bson_iter_init_find (&it, doc, key) &&
       (BSON_ITER_HOLDS_DOCUMENT (&it) || BSON_ITER_HOLDS_ARRAY (&it))) {
      if (BSON_ITER_HOLDS_DOCUMENT (&it)) {
         bson_iter_document (&it, &len, &data);
      } else {
         bson_iter_array (&it, &len, &data);
      }
      if (bson_init_static (out, data, len)) {
         return;
      }
   }
   bson_init (out);
}

static const char *get_str (const bson_t *doc, const char *key)
{
   bson_iter_t it;

   if (bson_iter_init_find (&it, doc, key) && BSON_ITER_HOLDS_UTF8 (&it)) {
      return bson_iter_utf8 (&it, NULL);
   }
   return "";
}

static void drain_cursor (mongoc_cursor_t *cursor)
{
   const bson_t *doc;
   bson_error_t error;

   while (mongoc_cursor_next (cursor, &doc)) {
      print_doc (doc);
   }
   if (mongoc_cursor_error (cursor, &error)) {
      print_error (&error);
   }
   mongoc_cursor_destroy (cursor);
}

static void run_query (mongoc_client_t *client, const bson_t *q)
{
   const char *op = get_str (q, "op");
   mongoc_collection_t *coll =
      mongoc_client_get_collection (client, get_str (q, "db"), get_str (q, "coll"));
   bson_t filter, opts, pipeline, command, wrapped, reply;
   bson_error_t error;

   get_sub (q, "filter", &filter);
   get_sub (q, "opts", &opts);
   get_sub (q, "pipeline", &pipeline);
   get_sub (q, "command", &command);

   if (strcmp (op, "find") == 0) {
      drain_cursor (mongoc_collection_find_with_opts (coll, &filter, &opts, NULL));
   } else if (strcmp (op, "aggregate") == 0) {
      bson_init (&wrapped);
      BSON_APPEND_ARRAY (&wrapped, "pipeline", &pipeline);
      drain_cursor (
         mongoc_collection_aggregate (coll, MONGOC_QUERY_NONE, &wrapped, &opts, NULL));
      bson_destroy (&wrapped);
   } else if (strcmp (op, "count") == 0) {
      int64_t n =
         mongoc_collection_count_documents (coll, &filter, &opts, NULL, NULL, &error);
      if (n < 0) {
         print_error (&error);
      } else {
         printf ("COUNT %lld\n", (long long) n);
      }
   } else if (strcmp (op, "command") == 0) {
      if (mongoc_client_command_simple (
             client, get_str (q, "db"), &command, NULL, &reply, &error)) {
         print_doc (&reply);
      } else {
         print_error (&error);
      }
      bson_destroy (&reply);
   } else {
      printf ("ERROR 0 0 unknown op '%s'\n", op);
   }
   puts ("END");
   fflush (stdout);

   bson_destroy (&filter);
   bson_destroy (&opts);
   bson_destroy (&pipeline);
   bson_destroy (&command);
   mongoc_collection_destroy (coll);
}

int main (int argc, char **argv)
{
   mongoc_client_t *client;
   mongoc_apm_callbacks_t *callbacks;
   const char *uri;
   int heartbeat = 0;
   char *line = NULL;
   size_t cap = 0;
   ssize_t len;
   bson_error_t error;
   int rc = 0;

   if (argc == 3 && strcmp (argv[1], "--heartbeat") == 0) {
      heartbeat = 1;
   } else if (argc != 2) {
      fprintf (stderr, "usage: %s [--heartbeat] MONGODB-URI < queries.jsonl\n", argv[0]);
      return 2;
   }
   uri = argv[argc - 1];
   mongoc_init ();
   client = mongoc_client_new (uri);
   if (!client) {
      fprintf (stderr, "bad URI %s\n", uri);
      return 2;
   }
   mongoc_client_set_error_api (client, MONGOC_ERROR_API_VERSION_2);
   callbacks = mongoc_apm_callbacks_new ();
   mongoc_apm_set_server_heartbeat_succeeded_cb (callbacks, heartbeat_succeeded);
   mongoc_client_set_apm_callbacks (client, callbacks, NULL);
   mongoc_apm_callbacks_destroy (callbacks);

   while ((len = getline (&line, &cap, stdin)) > 0) {
      bson_t *q;

      if (len <= 1) {
         continue;
      }
      q = bson_new_from_json ((const uint8_t *) line, len, &error);
      if (!q) {
         fprintf (stderr, "bad query line: %s\n", error.message);
         rc = 2;
         break;
      }
      run_query (client, q);
      bson_destroy (q);
   }

   if (rc == 0 && heartbeat && !await_heartbeat (client, heartbeats_ok, 10000)) {
      fprintf (stderr, "no server heartbeat succeeded within 10 s after the queries\n");
      rc = 3;
   }
   free (line);
   mongoc_client_destroy (client);
   mongoc_cleanup ();
   return rc;
}
