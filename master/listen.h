/*
 * The master's listening sockets: one SO_REUSEPORT socket per listen
 * address and worker slot. The master keeps every socket open for as long
 * as a slot may use it, so a worker that replaces another inherits the same
 * socket and the connections queued on it.
 */
#ifndef CLUSTERD_LISTEN_H
#define CLUSTERD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"

/* Binds what cfg needs and is not bound yet. 0, or -1 with err (nothing new kept). */
int listen_ensure(const struct config *cfg, char *err, size_t errlen);
/* The sockets of a slot, in cfg->listen order; returns how many (nlisten). */
size_t listen_slot_fds(const struct config *cfg, int slot, int *fds, size_t max);
/*
 * Closes every socket for which used(addr, slot, arg) is false.
 * addr is the address's key (what it binds, as in struct listen_addr), or
 * what it got bound to (port 0 resolved): a socket is used if either is.
 */
void listen_close_unused(bool (*used)(const char *addr, int slot, void *arg), void *arg);
void listen_close_all(void);
/* Fills buf with the bound address of addr ("127.0.0.1:41234"). */
void listen_bound_name(const char *addr, char *buf, size_t len);

#endif
