/*
 * mongo-ceiling: the test MongoDB server's own ceiling, through libmongoc
 * (the driver clusterd uses) and no HTTP. THREADS threads, each with a
 * client from one pool, run a benchmark scenario's query in a loop for
 * SECONDS: one query in flight per thread.
 *
 *   mongo-ceiling URI get|list IDS_FILE GROUPS SECONDS THREADS
 *
 * get:  find {_id: ObjectId} limit 1, cycling over the ids of IDS_FILE
 * list: find {group: N} limit 20, N cycling over 0..GROUPS-1
 *
 * Prints one line: BENCH_JSON {"requests":N,"duration_us":D,"errors":E,
 * "p50_us":P,"p99_us":Q}, the percentiles of the queries' latencies: the
 * test server's own tail, with THREADS queries in flight.
 */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_IDS 100000
#define MAX_SAMPLES 2000000         /* latencies kept per thread */

static mongoc_client_pool_t *pool;
static int list_mode, ngroups;
static char ids[MAX_IDS][25];
static int nids;
static double end_at;

struct counts {
	long requests, errors;
	int seed;
	float *lat_us;               /* one per request, up to MAX_SAMPLES */
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *
run(void *arg)
{
	struct counts *c = arg;
	mongoc_client_t *client = mongoc_client_pool_pop(pool);
	mongoc_collection_t *coll = mongoc_client_get_collection(client, "bench", "items");
	long i = c->seed;

	while (now() < end_at) {
		bson_t *filter = bson_new(), *opts;
		bson_oid_t oid;
		const bson_t *doc;
		bson_error_t error;
		mongoc_cursor_t *cur;

		if (list_mode) {
			BSON_APPEND_INT32(filter, "group", (int32_t)(i % ngroups));
			opts = BCON_NEW("limit", BCON_INT64(20));
		} else {
			bson_oid_init_from_string(&oid, ids[i % nids]);
			BSON_APPEND_OID(filter, "_id", &oid);
			opts = BCON_NEW("limit", BCON_INT64(1), "singleBatch", BCON_BOOL(true));
		}
		i++;
		double t = now();
		cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
		while (mongoc_cursor_next(cur, &doc))
			;
		if (mongoc_cursor_error(cur, &error))
			c->errors++;
		else if (c->requests < MAX_SAMPLES)
			c->lat_us[c->requests++] = (float)((now() - t) * 1e6);
		else
			c->requests++;
		mongoc_cursor_destroy(cur);
		bson_destroy(filter);
		bson_destroy(opts);
	}
	mongoc_collection_destroy(coll);
	mongoc_client_pool_push(pool, client);
	return NULL;
}

static int
by_value(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	mongoc_uri_t *uri;
	FILE *f;
	char line[64];
	int nthreads, i;
	double secs, t0;
	long requests = 0, errors = 0, nlat = 0;
	float *lat;

	if (argc != 7) {
		fprintf(stderr, "usage: mongo-ceiling URI get|list IDS_FILE GROUPS SECONDS THREADS\n");
		return 2;
	}
	list_mode = strcmp(argv[2], "list") == 0;
	ngroups = atoi(argv[4]) > 0 ? atoi(argv[4]) : 1;
	secs = atof(argv[5]);
	nthreads = atoi(argv[6]) > 0 ? atoi(argv[6]) : 1;
	if ((f = fopen(argv[3], "r")) == NULL) {
		perror(argv[3]);
		return 1;
	}
	while (nids < MAX_IDS && fgets(line, sizeof(line), f) != NULL)
		if (strlen(line) >= 24 && bson_oid_is_valid(line, 24))
			memcpy(ids[nids++], line, 24);
	fclose(f);
	if (nids == 0) {
		fprintf(stderr, "mongo-ceiling: no ObjectId in %s\n", argv[3]);
		return 1;
	}

	mongoc_init();
	if ((uri = mongoc_uri_new(argv[1])) == NULL) {
		fprintf(stderr, "mongo-ceiling: bad URI %s\n", argv[1]);
		return 1;
	}
	pool = mongoc_client_pool_new(uri);
	mongoc_client_pool_max_size(pool, (uint32_t)nthreads);

	pthread_t th[nthreads];
	struct counts c[nthreads];

	t0 = now();
	end_at = t0 + secs;
	for (i = 0; i < nthreads; i++) {
		c[i] = (struct counts){ 0, 0, i * 7, malloc(MAX_SAMPLES * sizeof(float)) };
		if (c[i].lat_us == NULL) {
			fprintf(stderr, "mongo-ceiling: out of memory\n");
			return 1;
		}
		pthread_create(&th[i], NULL, run, &c[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		requests += c[i].requests;
		errors += c[i].errors;
	}
	double took = now() - t0;
	if ((lat = malloc((size_t)(requests > 0 ? requests : 1) * sizeof(float))) == NULL) {
		fprintf(stderr, "mongo-ceiling: out of memory\n");
		return 1;
	}
	for (i = 0; i < nthreads; i++) {
		long n = c[i].requests < MAX_SAMPLES ? c[i].requests : MAX_SAMPLES;
		memcpy(lat + nlat, c[i].lat_us, (size_t)n * sizeof(float));
		nlat += n;
		free(c[i].lat_us);
	}
	qsort(lat, (size_t)nlat, sizeof(float), by_value);
	printf("BENCH_JSON {\"requests\":%ld,\"duration_us\":%.0f,\"errors\":%ld,"
	    "\"p50_us\":%.0f,\"p99_us\":%.0f}\n", requests, took * 1e6, errors,
	    nlat > 0 ? lat[nlat / 2] : 0.0, nlat > 0 ? lat[nlat * 99 / 100] : 0.0);
	free(lat);
	mongoc_client_pool_destroy(pool);
	mongoc_uri_destroy(uri);
	mongoc_cleanup();
	return 0;
}
