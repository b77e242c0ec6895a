#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "master/control.h"

#define ANSWER_MAX (4 << 20)         /* a status document, at the most */

static int lfd = -1;
static struct event *lev;
static json_object *(*build)(void);

/* "\0clusterd-status-PID": abstract, so nothing is left on disk. */
static socklen_t
control_addr(pid_t pid, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "clusterd-status-%ld",
	    (long)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void
answer(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	json_object *doc;
	const char *text;
	char refusal[160];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return;
	if (cred.uid != 0 && cred.uid != geteuid()) {
		snprintf(refusal, sizeof(refusal), "{\"error\":\"the status of this master is "
		    "for uid %ld and root only, not uid %ld\"}\n", (long)geteuid(), (long)cred.uid);
		text = refusal;
		doc = NULL;
	} else if ((doc = build()) == NULL ||
	    (text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN)) == NULL) {
		text = "{\"error\":\"out of memory\"}";
	}
	/* Small, and the peer reads: one blocking write with a timeout will do. */
	for (size_t off = 0, n = strlen(text); off < n;) {
		ssize_t w = write(fd, text + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	json_object_put(doc);
}

static void
on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 1, 0 };
	int c;

	(void)what;
	(void)arg;
	while ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		answer(c);
		close(c);
	}
}

int
control_open(struct event_base *base, json_object *(*status)(void))
{
	struct sockaddr_un sa;
	socklen_t len = control_addr(getpid(), &sa);

	build = status;
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sa, len) == -1 || listen(lfd, 16) == -1 ||
	    (lev = event_new(base, lfd, EV_READ | EV_PERSIST, on_accept, NULL)) == NULL ||
	    event_add(lev, NULL) == -1) {
		control_close();
		return -1;
	}
	return 0;
}

void
control_close(void)
{
	if (lev != NULL)
		event_free(lev);
	lev = NULL;
	if (lfd != -1)
		close(lfd);
	lfd = -1;
}

int
control_query(pid_t pid, char **out, char *err, size_t errlen)
{
	struct timeval tv = { 5, 0 };
	struct sockaddr_un sa;
	socklen_t len = control_addr(pid, &sa);
	size_t n = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t r;
	int fd;

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    connect(fd, (struct sockaddr *)&sa, len) == -1) {
		snprintf(err, errlen, "the master (pid %ld) does not answer on its status "
		    "socket: %s", (long)pid, strerror(errno));
		goto fail;
	}
	while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (n + 1 == cap) {
			char *grown;
			if (cap >= ANSWER_MAX || (grown = realloc(buf, cap * 2)) == NULL) {
				snprintf(err, errlen, "the status is too large");
				goto fail;
			}
			buf = grown;
			cap *= 2;
		}
	}
	if (r == -1) {
		snprintf(err, errlen, "reading the status of pid %ld: %s", (long)pid,
		    strerror(errno));
		goto fail;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return -1;
}
