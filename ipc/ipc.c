#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ipc/ipc.h"

static const struct {
	enum ipc_type type;
	const char *name;
} ipc_types[] = {
	{ IPC_READY, "ready" },
	{ IPC_STATS, "stats" },
	{ IPC_SHUTDOWN, "shutdown" },
	{ IPC_REOPEN, "reopen" },
};

const char *
ipc_type_name(enum ipc_type type)
{
	for (size_t i = 0; i < sizeof(ipc_types) / sizeof(ipc_types[0]); i++)
		if (ipc_types[i].type == type)
			return ipc_types[i].name;
	return "unknown";
}

static int
add_int(json_object *o, const char *key, int64_t v)
{
	return json_object_object_add(o, key, json_object_new_int64(v));
}

int
ipc_encode(const struct ipc_msg *msg, char *buf, size_t len)
{
	json_object *o = json_object_new_object();
	const char *s;
	int n = -1;

	if (o == NULL)
		return -1;
	json_object_object_add(o, "type",
	    json_object_new_string(ipc_type_name(msg->type)));
	switch (msg->type) {
	case IPC_READY:
		add_int(o, "pid", msg->u.ready.pid);
		add_int(o, "slot", msg->u.ready.slot);
		add_int(o, "generation", msg->u.ready.generation);
		break;
	case IPC_STATS:
		add_int(o, "pid", msg->u.stats.pid);
		add_int(o, "requests", msg->u.stats.requests);
		add_int(o, "in_flight", msg->u.stats.in_flight);
		break;
	case IPC_SHUTDOWN:
		json_object_object_add(o, "mode", json_object_new_string(
		    msg->u.shutdown.mode == IPC_SHUTDOWN_FAST ? "fast" : "graceful"));
		break;
	case IPC_REOPEN:
		break;
	}
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (s != NULL && strlen(s) < len && strlen(s) <= IPC_MAX_MSG) {
		n = (int)strlen(s);
		memcpy(buf, s, (size_t)n + 1);
	}
	json_object_put(o);
	return n;
}

/* A non-negative integer field; 0 or -1 with err. */
static int
get_count(json_object *o, const char *key, int64_t *out, char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int)) {
		snprintf(err, errlen, "\"%s\" must be an integer", key);
		return -1;
	}
	*out = json_object_get_int64(v);
	if (*out < 0) {
		snprintf(err, errlen, "\"%s\" must not be negative", key);
		return -1;
	}
	return 0;
}

static int
decode_fields(json_object *o, struct ipc_msg *msg, char *err, size_t errlen)
{
	json_object *v;
	const char *mode;

	switch (msg->type) {
	case IPC_READY:
		if (get_count(o, "pid", &msg->u.ready.pid, err, errlen) ||
		    get_count(o, "slot", &msg->u.ready.slot, err, errlen) ||
		    get_count(o, "generation", &msg->u.ready.generation, err, errlen))
			return -1;
		return 0;
	case IPC_STATS:
		if (get_count(o, "pid", &msg->u.stats.pid, err, errlen) ||
		    get_count(o, "requests", &msg->u.stats.requests, err, errlen) ||
		    get_count(o, "in_flight", &msg->u.stats.in_flight, err, errlen))
			return -1;
		return 0;
	case IPC_SHUTDOWN:
		if (!json_object_object_get_ex(o, "mode", &v) ||
		    !json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "\"mode\" must be a string");
			return -1;
		}
		mode = json_object_get_string(v);
		if (strcmp(mode, "graceful") == 0)
			msg->u.shutdown.mode = IPC_SHUTDOWN_GRACEFUL;
		else if (strcmp(mode, "fast") == 0)
			msg->u.shutdown.mode = IPC_SHUTDOWN_FAST;
		else {
			snprintf(err, errlen, "unknown shutdown mode \"%.32s\"", mode);
			return -1;
		}
		return 0;
	case IPC_REOPEN:
		return 0;
	}
	return -1;
}

int
ipc_decode(const char *buf, size_t len, struct ipc_msg *msg, char *err, size_t errlen)
{
	json_tokener *tok;
	json_object *o = NULL, *t;
	const char *name;
	int rc = -1;

	memset(msg, 0, sizeof(*msg));
	if (len == 0 || len > IPC_MAX_MSG) {
		snprintf(err, errlen, "message of %zu bytes (1 to %d allowed)", len, IPC_MAX_MSG);
		return -1;
	}
	/* Messages are flat objects: a depth of 4 is plenty and bounds the parser. */
	if ((tok = json_tokener_new_ex(4)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (o == NULL || json_tokener_get_parse_end(tok) != len) {
		snprintf(err, errlen, "not one JSON value: %s",
		    o == NULL ? json_tokener_error_desc(json_tokener_get_error(tok)) :
		    "trailing bytes");
		goto out;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(o, "type", &t) ||
	    !json_object_is_type(t, json_type_string)) {
		snprintf(err, errlen, "no string \"type\"");
		goto out;
	}
	name = json_object_get_string(t);
	for (size_t i = 0; i < sizeof(ipc_types) / sizeof(ipc_types[0]); i++)
		if (strcmp(name, ipc_types[i].name) == 0)
			msg->type = ipc_types[i].type;
	if (msg->type == 0) {
		snprintf(err, errlen, "unknown type \"%.32s\"", name);
		goto out;
	}
	rc = decode_fields(o, msg, err, errlen);
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

int
ipc_pair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
}

int
ipc_send(int fd, const struct ipc_msg *msg)
{
	char buf[IPC_MAX_MSG + 1];
	int n;

	if ((n = ipc_encode(msg, buf, sizeof(buf))) < 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		return -1;
	return 0;
}

int
ipc_recv(int fd, struct ipc_msg *msg, char *err, size_t errlen)
{
	char buf[IPC_MAX_MSG + 1];
	ssize_t n;

	/* MSG_TRUNC makes recv report the real size of an oversized message. */
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	if (ipc_decode(buf, (size_t)n, msg, err, errlen) == -1) {
		errno = EBADMSG;
		return -1;
	}
	return 1;
}
