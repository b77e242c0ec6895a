#include "config.h"

#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/addr.h"

int
addr_parse(const char *text, struct listen_addr *out, char *err, size_t errlen)
{
	char host[128];
	const char *port, *colon;
	struct addrinfo hints, *res = NULL;
	char *end;
	long portnum;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strlen(text) >= sizeof(out->text)) {
		snprintf(err, errlen, "address too long");
		return -1;
	}
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "\"%s\": expected [v6addr]:port", text);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - text - 1), text + 1);
		port = close + 2;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL || strchr(text, ':') != colon) {
			snprintf(err, errlen, "\"%s\": expected host:port, [v6addr]:port or :port", text);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
		port = colon + 1;
		if (host[0] == '\0')
			snprintf(host, sizeof(host), "0.0.0.0");
	}
	portnum = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || portnum < 0 || portnum > 65535) {
		snprintf(err, errlen, "\"%s\": port must be a number from 0 to 65535", text);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "\"%s\": %s", text, gai_strerror(rc));
		return -1;
	}
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(out->text, sizeof(out->text), "%s", text);
	/* ":80", "0.0.0.0:80" and "0:80" all bind the same: one key. */
	addr_format((struct sockaddr *)&out->ss, out->key, sizeof(out->key));
	return 0;
}

void
addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}
