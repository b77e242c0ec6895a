/*
 * socketio's route options, validated in the master at start and on every
 * reload: nothing here opens a socket.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "svc/socketio/socketio.h"

const char *const sio_keys[] = {
	"namespaces", "connect_timeout_ms", "ping_interval_ms", "ping_timeout_ms",
	"max_payload_bytes", "max_connections", "send_queue_bytes", "reconnect_spread_ms",
	"publish_token", "redis", "redis_key", NULL
};

void
sio_conf_free(void *p)
{
	struct sio_conf *c = p;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nnsp; i++)
		free(c->namespaces[i]);
	free(c->namespaces);
	free(c->publish_token);
	free(c->redis);
	free(c->redis_key);
	free(c);
}

/* As socket.io names them: "/" then anything printable but ",". */
static bool
valid_nsp(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || s[i] == ',' || s[i] == 0x7f)
			return false;
	return true;
}

/* "/" is always there, as in socket.io; the list adds the others. */
static int
get_namespaces(json_object *route, const char *path, struct sio_conf *c, char *err,
    size_t errlen)
{
	json_object *v, *item;
	const char *name;
	size_t n = 0;

	if (json_object_object_get_ex(route, "namespaces", &v) &&
	    (!json_object_is_type(v, json_type_array) ||
		(n = json_object_array_length(v)) == 0 || n >= SIO_MAX_NSP)) {
		snprintf(err, errlen, "%s.namespaces: expected an array of 1 to %d namespaces "
		    "(\"/\", \"/chat\", ...)", path, SIO_MAX_NSP - 1);
		return -1;
	}
	if ((c->namespaces = calloc(n + 1, sizeof(char *))) == NULL ||
	    (c->namespaces[0] = strdup("/")) == NULL)
		goto oom;
	c->nnsp = 1;
	for (size_t i = 0; i < n; i++) {
		item = json_object_array_get_idx(v, i);
		if (!json_object_is_type(item, json_type_string) ||
		    !valid_nsp(name = json_object_get_string(item))) {
			snprintf(err, errlen, "%s.namespaces[%zu]: expected a string that starts "
			    "with \"/\", of at most 128 printable characters and no comma", path, i);
			return -1;
		}
		for (size_t j = 1; j < c->nnsp; j++)
			if (strcmp(c->namespaces[j], name) == 0) {
				snprintf(err, errlen, "%s.namespaces[%zu]: \"%s\" is listed twice",
				    path, i, name);
				return -1;
			}
		if (strcmp(name, "/") == 0)
			continue;
		if ((c->namespaces[c->nnsp] = strdup(name)) == NULL)
			goto oom;
		c->nnsp++;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int
get_numbers(json_object *r, const char *path, struct sio_conf *c, char *err, size_t errlen)
{
	return conf_get_int(r, path, "connect_timeout_ms", 1, 3600000, 45000,
		&c->connect_timeout_ms, err, errlen) == -1 ||
	    conf_get_int(r, path, "ping_interval_ms", 100, 3600000, 25000,
		&c->ping_interval_ms, err, errlen) == -1 ||
	    conf_get_int(r, path, "ping_timeout_ms", 100, 3600000, 20000,
		&c->ping_timeout_ms, err, errlen) == -1 ||
	    conf_get_int(r, path, "max_payload_bytes", 64, 64 * 1024 * 1024, 1000000,
		&c->max_payload_bytes, err, errlen) == -1 ||
	    conf_get_int(r, path, "max_connections", 1, 10000000, 10000,
		&c->max_connections, err, errlen) == -1 ||
	    conf_get_int(r, path, "send_queue_bytes", 1024, 1LL << 32, 1048576,
		&c->send_queue_bytes, err, errlen) == -1 ||
	    conf_get_int(r, path, "reconnect_spread_ms", 0, 3600000, 5000,
		&c->reconnect_spread_ms, err, errlen) == -1 ? -1 : 0;
}

int
sio_configure(json_object *route, const char *path, void **conf, char *err, size_t errlen)
{
	struct sio_conf *c = calloc(1, sizeof(*c));
	char why[256];

	*conf = NULL;
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (get_namespaces(route, path, c, err, errlen) == -1 ||
	    get_numbers(route, path, c, err, errlen) == -1 ||
	    conf_get_string(route, path, "publish_token", false, NULL, &c->publish_token,
		err, errlen) == -1 ||
	    conf_get_string(route, path, "redis", false, NULL, &c->redis, err, errlen) == -1 ||
	    conf_get_string(route, path, "redis_key", false, "socket.io", &c->redis_key,
		err, errlen) == -1)
		goto fail;
	if (c->publish_token != NULL && (strlen(c->publish_token) < 8 ||
	    strpbrk(c->publish_token, " \t\r\n") != NULL)) {
		snprintf(err, errlen, "%s.publish_token: expected at least 8 characters, no "
		    "white space", path);
		goto fail;
	}
	if (c->redis != NULL &&
	    sio_redis_url_parse(c->redis, &c->redis_url, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s.redis: %s", path, why);
		goto fail;
	}
	if (c->redis_key[0] == '\0' || strlen(c->redis_key) > 128 ||
	    strchr(c->redis_key, '#') != NULL) {
		snprintf(err, errlen, "%s.redis_key: expected 1 to 128 characters, no \"#\"", path);
		goto fail;
	}
	*conf = c;
	return 0;
fail:
	sio_conf_free(c);
	return -1;
}
