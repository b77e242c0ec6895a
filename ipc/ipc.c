/*
 * The IPC codec, driven by one table of message types, and the transport:
 * one message per SOCK_SEQPACKET datagram.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/util.h"
#include "ipc/ipc.h"

/*
 * The message table: one entry per type, with its fields. A new message is
 * its enum value, its struct in ipc.h's union, and one entry here; the
 * codec below never names a type.
 */
enum ftype { F_COUNT, F_ENUM, F_TEXT };   /* a non-negative int64; an enum as a name; a string */

struct field {
	const char *key;
	enum ftype type;
	size_t off;                  /* in struct ipc_msg */
	const char *const *names;    /* F_ENUM: the names of 0, 1, ... */
	size_t size;                 /* F_TEXT: of its char array, NUL included */
};

#define COUNT(key, member) { key, F_COUNT, offsetof(struct ipc_msg, member), NULL, 0 }
#define ENUM(key, member, names) { key, F_ENUM, offsetof(struct ipc_msg, member), names, 0 }
#define TEXT(key, member) { key, F_TEXT, offsetof(struct ipc_msg, member), NULL, \
	sizeof(((struct ipc_msg *)0)->member) }
#define MAX_FIELDS 4

static const char *const shutdown_modes[] = { "graceful", "fast", NULL };

static const struct kind {
	enum ipc_type type;
	const char *name;
	struct field fields[MAX_FIELDS];     /* ends at the first with no key */
} kinds[] = {
	{ IPC_READY, "ready", { COUNT("pid", u.ready.pid), COUNT("slot", u.ready.slot),
	    COUNT("generation", u.ready.generation) } },
	{ IPC_STATS, "stats", { COUNT("pid", u.stats.pid), COUNT("requests", u.stats.requests),
	    COUNT("in_flight", u.stats.in_flight), COUNT("connections", u.stats.connections) } },
	{ IPC_SHUTDOWN, "shutdown", { ENUM("mode", u.shutdown.mode, shutdown_modes) } },
	{ IPC_REOPEN, "reopen", { { NULL, F_COUNT, 0, NULL, 0 } } },
	{ IPC_DRAIN, "drain", { { NULL, F_COUNT, 0, NULL, 0 } } },
	{ IPC_FAILED, "failed", { COUNT("pid", u.failed.pid), TEXT("reason", u.failed.reason) } },
	{ IPC_ADOPT, "adopt", { COUNT("slot", u.adopt.slot) } },
	{ IPC_RELEASE, "release", { COUNT("slot", u.release.slot) } },
};

/* F_ENUM members are enums, read and written as int. */
_Static_assert(sizeof(enum ipc_shutdown_mode) == sizeof(int), "enum fields are ints");

static const struct kind *
kind_of(enum ipc_type type)
{
	for (size_t i = 0; i < nitems(kinds); i++)
		if (kinds[i].type == type)
			return &kinds[i];
	return NULL;
}

const char *
ipc_type_name(enum ipc_type type)
{
	const struct kind *k = kind_of(type);

	return k != NULL ? k->name : "unknown";
}

static int64_t *
count_at(const struct ipc_msg *msg, const struct field *f)
{
	return (int64_t *)(void *)((char *)(uintptr_t)msg + f->off);
}

static int *
enum_at(const struct ipc_msg *msg, const struct field *f)
{
	return (int *)(void *)((char *)(uintptr_t)msg + f->off);
}

static char *
text_at(const struct ipc_msg *msg, const struct field *f)
{
	return (char *)(uintptr_t)msg + f->off;
}

static json_object *
encode_field(const struct ipc_msg *msg, const struct field *f)
{
	int v;

	if (f->type == F_COUNT)
		return json_object_new_int64(*count_at(msg, f));
	if (f->type == F_TEXT)
		return json_object_new_string_len(text_at(msg, f), (int)strnlen(text_at(msg, f),
		    f->size - 1));
	v = *enum_at(msg, f);
	for (int i = 0; f->names[i] != NULL; i++)
		if (i == v)
			return json_object_new_string(f->names[i]);
	return NULL;
}

int
ipc_encode(const struct ipc_msg *msg, char *buf, size_t len)
{
	const struct kind *k = kind_of(msg->type);
	json_object *o, *v;
	const char *s;
	int n = -1;

	if (k == NULL || (o = json_object_new_object()) == NULL)
		return -1;
	if ((v = json_object_new_string(k->name)) == NULL ||
	    json_object_object_add(o, "type", v) != 0)
		goto out;
	for (const struct field *f = k->fields; f < k->fields + MAX_FIELDS && f->key; f++)
		if ((v = encode_field(msg, f)) == NULL || json_object_object_add(o, f->key, v) != 0)
			goto out;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (s != NULL && strlen(s) < len && strlen(s) <= IPC_MAX_MSG) {
		n = (int)strlen(s);
		memcpy(buf, s, (size_t)n + 1);
	}
out:
	json_object_put(o);
	return n;
}

static int
decode_field(json_object *o, struct ipc_msg *msg, const struct field *f, char *err,
    size_t errlen)
{
	json_object *v;
	const char *name;
	int64_t n;

	if (f->type == F_COUNT) {
		if (!json_object_object_get_ex(o, f->key, &v) ||
		    !json_object_is_type(v, json_type_int)) {
			snprintf(err, errlen, "\"%s\" must be an integer", f->key);
			return -1;
		}
		if ((n = json_object_get_int64(v)) < 0) {
			snprintf(err, errlen, "\"%s\" must not be negative", f->key);
			return -1;
		}
		*count_at(msg, f) = n;
		return 0;
	}
	if (f->type == F_TEXT) {
		if (!json_object_object_get_ex(o, f->key, &v) ||
		    !json_object_is_type(v, json_type_string)) {
			snprintf(err, errlen, "\"%s\" must be a string", f->key);
			return -1;
		}
		if ((size_t)json_object_get_string_len(v) >= f->size ||
		    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
			snprintf(err, errlen, "\"%s\" must be a string of less than %zu bytes "
			    "with no NUL", f->key, f->size);
			return -1;
		}
		memcpy(text_at(msg, f), json_object_get_string(v),
		    (size_t)json_object_get_string_len(v) + 1);
		return 0;
	}
	if (!json_object_object_get_ex(o, f->key, &v) ||
	    !json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "\"%s\" must be a string", f->key);
		return -1;
	}
	name = json_object_get_string(v);
	for (int i = 0; f->names[i] != NULL; i++) {
		if (strcmp(name, f->names[i]) == 0) {
			*enum_at(msg, f) = i;
			return 0;
		}
	}
	snprintf(err, errlen, "unknown %s \"%.32s\"", f->key, name);
	return -1;
}

int
ipc_decode(const char *buf, size_t len, struct ipc_msg *msg, char *err, size_t errlen)
{
	const struct kind *k = NULL;
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
	for (size_t i = 0; i < nitems(kinds) && k == NULL; i++)
		if (strcmp(name, kinds[i].name) == 0)
			k = &kinds[i];
	if (k == NULL) {
		snprintf(err, errlen, "unknown type \"%.32s\"", name);
		goto out;
	}
	msg->type = k->type;
	for (const struct field *f = k->fields; f < k->fields + MAX_FIELDS && f->key; f++)
		if (decode_field(o, msg, f, err, errlen) == -1)
			goto out;
	rc = 0;
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
ipc_send_fds(int fd, const struct ipc_msg *msg, const int *fds, size_t nfds)
{
	char buf[IPC_MAX_MSG + 1];
	union {                      /* aligned as a cmsghdr must be */
		char bytes[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int n;

	if ((n = ipc_encode(msg, buf, sizeof(buf))) < 0 || nfds > IPC_MAX_FDS) {
		errno = EMSGSIZE;
		return -1;
	}
	iov = (struct iovec){ .iov_base = buf, .iov_len = (size_t)n };
	if (nfds > 0) {
		struct cmsghdr *c;
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.bytes;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) != n)
		return -1;
	return 0;
}

int
ipc_send(int fd, const struct ipc_msg *msg)
{
	return ipc_send_fds(fd, msg, NULL, 0);
}

int
ipc_recv_fds(int fd, struct ipc_msg *msg, int *fds, size_t *nfds, char *err, size_t errlen)
{
	char buf[IPC_MAX_MSG + 1];
	union {
		char bytes[CMSG_SPACE(sizeof(int) * IPC_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.bytes,
	    .msg_controllen = sizeof(ctl.bytes) };
	ssize_t n;

	*nfds = 0;
	/* MSG_TRUNC makes recvmsg report the real size of an oversized message. */
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < IPC_MAX_FDS)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	if (n == 0)
		return 0;
	if (mh.msg_flags & MSG_CTRUNC) {
		snprintf(err, errlen, "a message with more than %d descriptors", IPC_MAX_FDS);
		errno = EBADMSG;
		return -1;
	}
	/* an oversized one is refused by its length, before its bytes are read */
	if (ipc_decode(buf, (size_t)n, msg, err, errlen) == -1) {
		errno = EBADMSG;
		return -1;
	}
	return 1;
}

int
ipc_recv(int fd, struct ipc_msg *msg, char *err, size_t errlen)
{
	int fds[IPC_MAX_FDS];
	size_t nfds;
	int rc = ipc_recv_fds(fd, msg, fds, &nfds, err, errlen);

	for (size_t i = 0; i < nfds; i++)   /* none expected: never leak one */
		close(fds[i]);
	return rc;
}
