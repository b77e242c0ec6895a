#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "master/listen.h"

#define BACKLOG 4096            /* the kernel caps it at net.core.somaxconn */

struct lsock {
	char addr[64];               /* what it binds: listen_addr's key */
	char bound_key[64];          /* what it got: the same, with port 0 resolved */
	int slot;
	int fd;
	struct sockaddr_storage bound;
	socklen_t boundlen;
};

static struct lsock *socks;
static size_t nsocks;

/* "127.0.0.1:0" in one config and the port it got in the next are one address. */
static bool
is_addr(const struct lsock *ls, const char *addr)
{
	return strcmp(ls->addr, addr) == 0 || strcmp(ls->bound_key, addr) == 0;
}

static struct lsock *
find(const char *addr, int slot)
{
	for (size_t i = 0; i < nsocks; i++)
		if (socks[i].slot == slot && is_addr(&socks[i], addr))
			return &socks[i];
	return NULL;
}

/* Any socket of the address: its bound port is the one every slot uses. */
static struct lsock *
find_addr(const char *addr)
{
	for (size_t i = 0; i < nsocks; i++)
		if (is_addr(&socks[i], addr))
			return &socks[i];
	return NULL;
}

static int
bind_one(const struct listen_addr *la, int slot, char *err, size_t errlen)
{
	struct sockaddr_storage ss = la->ss;
	socklen_t sslen = la->sslen;
	struct lsock *first = find_addr(la->key), *grown;
	int fd, on = 1;

	if (first != NULL) {            /* same port as the other slots (port 0) */
		ss = first->bound;
		sslen = first->boundlen;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1 ||
	    (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1) ||
	    /* Wake a worker only once the request has arrived (nginx's "deferred"). */
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &on, sizeof(on)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, sslen) == -1 ||
	    listen(fd, BACKLOG) == -1) {
		snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((grown = realloc(socks, (nsocks + 1) * sizeof(*socks))) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -1;
	}
	socks = grown;
	memset(&socks[nsocks], 0, sizeof(socks[nsocks]));
	snprintf(socks[nsocks].addr, sizeof(socks[nsocks].addr), "%s", la->key);
	socks[nsocks].slot = slot;
	socks[nsocks].fd = fd;
	socks[nsocks].boundlen = sizeof(socks[nsocks].bound);
	getsockname(fd, (struct sockaddr *)&socks[nsocks].bound, &socks[nsocks].boundlen);
	addr_format((struct sockaddr *)&socks[nsocks].bound, socks[nsocks].bound_key,
	    sizeof(socks[nsocks].bound_key));
	nsocks++;
	return 0;
}

/*
 * SO_REUSEPORT lets any process of the same user bind the address too and
 * take a share of its connections without a word. So before the first
 * socket of an address, a probe binds it without SO_REUSEPORT: that fails
 * while anyone else listens there. (Port 0 is a fresh port by definition.)
 */
static in_port_t
port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port :
	    ((const struct sockaddr_in *)ss)->sin_port;
}

/* We hold a socket on that port already (0.0.0.0:80 when 127.0.0.1:80 comes). */
static bool
ours(const struct listen_addr *la)
{
	for (size_t i = 0; i < nsocks; i++)
		if (socks[i].bound.ss_family == la->ss.ss_family &&
		    port_of(&socks[i].bound) == port_of(&la->ss))
			return true;
	return false;
}

static int
probe_free(const struct listen_addr *la, char *err, size_t errlen)
{
	int fd, on = 1, rc = 0;

	if ((la->ss.ss_family == AF_INET && ((const struct sockaddr_in *)&la->ss)->sin_port == 0) ||
	    (la->ss.ss_family == AF_INET6 &&
	    ((const struct sockaddr_in6 *)&la->ss)->sin6_port == 0))
		return 0;
	if ((fd = socket(la->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (la->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)) {
		snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		rc = -1;
	} else if (bind(fd, (const struct sockaddr *)&la->ss, la->sslen) == -1 &&
	    !(errno == EADDRINUSE && ours(la))) {
		if (errno == EADDRINUSE)
			snprintf(err, errlen, "listen %s: another process already listens on %s "
			    "(another clusterd?): refusing to share it", la->text, la->key);
		else
			snprintf(err, errlen, "listen %s: %s", la->text, strerror(errno));
		rc = -1;
	}
	if (fd != -1)
		close(fd);
	return rc;
}

int
listen_ensure(const struct config *cfg, char *err, size_t errlen)
{
	size_t before = nsocks;

	for (size_t a = 0; a < cfg->nlisten; a++) {
		int fresh = find_addr(cfg->listen[a].key) == NULL;
		if (fresh && probe_free(&cfg->listen[a], err, errlen) == -1)
			goto undo;
		for (int s = 0; s < cfg->workers; s++) {
			if (find(cfg->listen[a].key, s) != NULL)
				continue;
			if (bind_one(&cfg->listen[a], s, err, errlen) == -1)
				goto undo;
		}
		if (fresh) {
			char name[160];
			listen_bound_name(cfg->listen[a].key, name, sizeof(name));
			log_info("listening on %s (%s), %d socket(s)", name,
			    cfg->listen[a].text, cfg->workers);
		}
	}
	return 0;
undo:
	while (nsocks > before)
		close(socks[--nsocks].fd);
	return -1;
}

size_t
listen_slot_fds(const struct config *cfg, int slot, int *fds, size_t max)
{
	size_t n = 0;

	for (size_t a = 0; a < cfg->nlisten && n < max; a++) {
		struct lsock *ls = find(cfg->listen[a].key, slot);
		if (ls != NULL)
			fds[n++] = ls->fd;
	}
	return n;
}

void
listen_close_unused(bool (*used)(const char *addr, int slot, void *arg), void *arg)
{
	size_t i = 0;

	while (i < nsocks) {
		if (used(socks[i].addr, socks[i].slot, arg) ||
		    used(socks[i].bound_key, socks[i].slot, arg)) {
			i++;
			continue;
		}
		log_info("closing the socket of %s for slot %d", socks[i].addr, socks[i].slot);
		close(socks[i].fd);
		socks[i] = socks[--nsocks];
	}
}

void
listen_close_all(void)
{
	for (size_t i = 0; i < nsocks; i++)
		close(socks[i].fd);
	free(socks);
	socks = NULL;
	nsocks = 0;
}

void
listen_bound_name(const char *addr, char *buf, size_t len)
{
	struct lsock *ls = find_addr(addr);

	if (ls == NULL)
		snprintf(buf, len, "%s", addr);
	else
		addr_format((struct sockaddr *)&ls->bound, buf, len);
}
