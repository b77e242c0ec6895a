/*
 * Listen addresses: "host:port", "[v6addr]:port" or ":port" (all IPv4
 * interfaces). Port 0 asks the kernel for a free port once; every worker
 * slot then binds that same port.
 */
#ifndef CLUSTERD_ADDR_H
#define CLUSTERD_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

struct listen_addr {
	char text[128];                  /* as written in the config */
	char key[64];                    /* what it binds, "0.0.0.0:80": equal keys, same socket */
	struct sockaddr_storage ss;
	socklen_t sslen;
};

/* Returns 0, or -1 with a reason in err. */
int addr_parse(const char *text, struct listen_addr *out, char *err, size_t errlen);
/* "127.0.0.1:8080" / "[::1]:8080" of a bound address. */
void addr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
