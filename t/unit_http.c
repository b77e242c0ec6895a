/*
 * The HTTP layer's interface for services, driven through a real socket:
 * request headers and bodies, content types, statuses without a body,
 * completion hooks, Allow, the hand-over of a connection (http_upgrade())
 * with the bytes that followed the request, and bodies sent from files
 * (http_reply_file()).
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "http/http.h"
#include "t/tap.h"

static struct event_base *base;
static struct http_server *srv;
static struct http_upgraded up, first;
static int upgraded = -2, hooks, last_status, drained;
static uint64_t last_bytes;

static struct http_req *held;
static char file_path[64];
static off_t file_len;
static int file_fds;

static void
answer_held(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	http_reply(held, 200, "later", 5);
}

static void
handler(struct http_req *req, void *arg)
{
	const char *path = http_req_path(req), *name, *value;
	char buf[4096];
	size_t len;
	int n = 0;

	(void)arg;
	if (strcmp(path, "/headers") == 0) {
		for (size_t i = 0; http_req_header_at(req, i, &name, &value) == 0; i++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s=%s;", name, value);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "x-a:%s",
		    http_req_header(req, "X-A") ? http_req_header(req, "x-a") : "none");
		http_reply_type(req, 200, "text/plain", buf, (size_t)n);
	} else if (strcmp(path, "/body") == 0) {
		const char *body = http_req_body(req, &len);
		http_req_add_header(req, "X-Len", len > 5 ? "long" : "short");
		http_reply_type(req, 200, "application/octet-stream", body, len);
	} else if (strcmp(path, "/nocontent") == 0) {
		http_reply(req, 204, "dropped", 7);
	} else if (strcmp(path, "/notmodified") == 0) {
		http_reply(req, 304, "dropped", 7);
	} else if (strcmp(path, "/upgrade") == 0) {
		http_req_add_header(req, "Upgrade", "test");
		upgraded = http_upgrade(req, &up);
	} else if (strcmp(path, "/later") == 0) {
		struct timeval tv = { 0, 20000 };
		held = req;
		event_base_once(base, -1, EV_TIMEOUT, answer_held, NULL, &tv);
	} else if (strncmp(path, "/file", 5) == 0) {
		/* /file: all of it; /file/part: 4 bytes from offset 3; /file/304 */
		int fd = open(file_path, O_RDONLY);
		if (strcmp(path, "/file") == 0)
			http_reply_file(req, 200, "text/plain", fd, 0, file_len);
		else if (strcmp(path, "/file/part") == 0)
			http_reply_file(req, 206, "text/plain", fd, 3, 4);
		else
			http_reply_file(req, 304, "text/plain", fd, 0, file_len);
		file_fds++;
	} else if (strcmp(path, "/refuse") == 0) {
		http_error(req, 400, "bad_request", "no upgrade here");
	} else {
		http_error(req, 404, "not_found", "nothing");
	}
}

static void
on_complete(const struct http_req *req, void *arg)
{
	(void)arg;
	hooks++;
	last_status = http_req_status(req);
	last_bytes = http_req_bytes(req);
}

static void
on_drained(void *arg)
{
	(void)arg;
	drained = 1;
}

/* Turns the loop for about 5 ms. */
static void
turn(void)
{
	struct timeval tv = { 0, 5000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/*
 * Reads from fd while the loop turns, until buf holds want (after the
 * first `after`, if given) or fd closes: 5 s at most.
 */
static size_t
collect_after(int fd, char *buf, size_t cap, const char *after, const char *want, int *closed)
{
	size_t n = 0;

	*closed = 0;
	buf[0] = '\0';
	for (int i = 0; i < 1000; i++) {
		ssize_t r = recv(fd, buf + n, cap - n - 1, MSG_DONTWAIT);
		if (r > 0) {
			n += (size_t)r;
			buf[n] = '\0';
		} else if (r == 0) {
			*closed = 1;
			break;
		}
		const char *from = after != NULL ? strstr(buf, after) : buf;
		if (want != NULL && from != NULL && strstr(from, want) != NULL)
			break;
		turn();
	}
	return n;
}

static size_t
collect(int fd, char *buf, size_t cap, const char *want, int *closed)
{
	return collect_after(fd, buf, cap, NULL, want, closed);
}

static int
client(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		return -1;
	return fd;
}

/* The descriptors this process holds. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3;            /* ".", ".." and the directory's own */
}

static void
send_all(int fd, const char *s)
{
	if (send(fd, s, strlen(s), 0) != (ssize_t)strlen(s))
		printf("# short send\n");
}

int
main(void)
{
	struct http_limits lim = { .max_header_bytes = 8192, .max_body_bytes = 1 << 20,
	    .read_timeout_ms = 5000, .keepalive_timeout_ms = 5000, .header_timeout_ms = 5000,
	    .body_timeout_ms = 5000 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);
	char buf[8192], allow[64];
	int lfd, fd, port, closed;

	base = event_base_new();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 16) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &slen) == -1) {
		printf("Bail out! cannot listen on 127.0.0.1: %s\n", strerror(errno));
		return 1;
	}
	port = ntohs(sa.sin_port);
	srv = http_server_new(base, &lim, handler, NULL);
	ok(srv != NULL && http_server_listen(srv, &lfd, 1) == 0, "a server on 127.0.0.1");
	ok(http_server_on_complete(srv, on_complete, NULL) == 0, "a completion hook");

	http_allow(1 | 2, allow, sizeof(allow));
	is_str(allow, "GET, HEAD", "Allow derives from the method bits");

	fd = client(port);
	/* A header split across two segments, names in mixed case. */
	send_all(fd, "GET /headers HTTP/1.1\r\nHost: x\r\nX-A: one  \r\nX-Long-Na");
	turn();
	send_all(fd, "me: two\r\nEmpty:\r\n\r\n");
	collect(fd, buf, sizeof(buf), "x-a:", &closed);
	like(buf, "Content-Type: text/plain\r\n", "the service's content type");
	like(buf, "Host=x;X-A=one;X-Long-Name=two;Empty=;x-a:one",
	    "every header in order, split values joined, trailing space trimmed, any-case lookup");
	is_int(hooks, 1, "the hook saw the request");
	is_int(last_status, 200, "... and its status");

	send_all(fd, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world");
	collect(fd, buf, sizeof(buf), "hello world", &closed);
	like(buf, "Content-Length: 11\r\n", "a body of Content-Length");
	like(buf, "X-Len: long\r\n", "the service's own header");
	like(buf, "\r\n\r\nhello world", "the body reaches the service");
	is_int((long long)last_bytes, 11, "the hook counts the body bytes sent");

	send_all(fd, "POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
	collect(fd, buf, sizeof(buf), "abcdefg", &closed);
	like(buf, "\r\n\r\nabcdefg", "a chunked body arrives de-chunked");

	send_all(fd, "GET /nocontent HTTP/1.1\r\nHost: x\r\n\r\nGET /notmodified HTTP/1.1\r\nHost: x\r\n\r\n");
	collect_after(fd, buf, sizeof(buf), "304 Not Modified", "\r\n\r\n", &closed);
	like(buf, "HTTP/1.1 204 No Content\r\n", "204 has its reason");
	ok(strstr(buf, "dropped") == NULL, "204 and 304 carry no body");
	ok(strstr(buf, "Content-Length") == NULL && strstr(buf, "Content-Type") == NULL,
	    "... nor its headers");
	ok(!closed, "... and the connection lives on");

	/* A request to switch protocols that the service refuses closes the connection. */
	send_all(fd, "GET /refuse HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nJUNK");
	collect(fd, buf, sizeof(buf), NULL, &closed);
	like(buf, "400 Bad Request", "a refused upgrade gets the service's answer");
	like(buf, "Connection: close", "... with Connection: close");
	ok(closed, "... and the connection closes: what followed is not HTTP");
	close(fd);

	/* The hand-over, with bytes of the new protocol in the same segment. */
	fd = client(port);
	send_all(fd, "GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nHELLO");
	collect(fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	is_int(upgraded, 0, "http_upgrade() hands the connection over");
	like(buf, "HTTP/1.1 101 Switching Protocols\r\n", "101 Switching Protocols");
	like(buf, "Upgrade: test\r\n", "... with the service's Upgrade header");
	like(buf, "Connection: Upgrade\r\n", "... and Connection: Upgrade");
	ok(strstr(buf, "Content-Length") == NULL, "... and no Content-Length");
	is_int(last_status, 101, "the hook saw the 101");
	if (upgraded == 0) {
		size_t n = evbuffer_get_length(up.in);
		char in[16] = "";
		evbuffer_copyout(up.in, in, n < sizeof(in) - 1 ? n : sizeof(in) - 1);
		is_str(in, "HELLO", "the input that followed the request is handed over, all of it");
		is_int((long long)evbuffer_get_length(up.out), 0, "the 101 went out");
		turn();
		is_int((long long)http_server_connections(srv), 0, "the server let go of the connection");
		send_all(up.fd, "ECHO");
		collect(fd, buf, sizeof(buf), "ECHO", &closed);
		is_str(buf, "ECHO", "the new owner writes on the socket");
		send_all(fd, "MORE");
		turn();
		ok(recv(up.fd, buf, sizeof(buf), MSG_DONTWAIT) == 4 && memcmp(buf, "MORE", 4) == 0,
		    "... and reads it, the HTTP layer no longer does");
		first = up;
	}
	close(fd);

	/* The new protocol's first byte may be a LF: it is handed over too. */
	upgraded = -2;
	fd = client(port);
	send_all(fd, "GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n\nLF");
	collect(fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	is_int(upgraded, 0, "a second hand-over");
	if (upgraded == 0) {
		char in[16] = "";
		size_t n = evbuffer_get_length(up.in);
		evbuffer_copyout(up.in, in, n < sizeof(in) - 1 ? n : sizeof(in) - 1);
		is_str(in, "\nLF", "... with a first byte that is a LF");
		close(up.fd);
		evbuffer_free(up.in);
		evbuffer_free(up.out);
	}
	close(fd);

	/* An upgrade that waited behind a slower request is handed over when its turn comes. */
	upgraded = -2;
	fd = client(port);
	send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nBEHIND");
	collect_after(fd, buf, sizeof(buf), "101 Switching", "\r\n\r\n", &closed);
	like(buf, "later", "the first request is answered");
	is_int(upgraded, 0, "then the pipelined upgrade is handed over");
	if (upgraded == 0) {
		char in[16] = "";
		size_t n = evbuffer_get_length(up.in);
		evbuffer_copyout(up.in, in, n < sizeof(in) - 1 ? n : sizeof(in) - 1);
		is_str(in, "BEHIND", "... with what followed it");
		turn();
		is_int((long long)http_server_connections(srv), 0, "... and the server let go of it");
		close(up.fd);
		evbuffer_free(up.in);
		evbuffer_free(up.out);
	}
	close(fd);

	/* A request that did not ask to switch protocols cannot be handed over. */
	fd = client(port);
	send_all(fd, "GET /upgrade HTTP/1.1\r\nHost: x\r\n\r\n");
	upgraded = -2;
	collect(fd, buf, sizeof(buf), "\r\n\r\n", &closed);
	is_int(upgraded, -1, "http_upgrade() refuses a request without Upgrade");
	like(buf, "400 Bad Request", "... with a 400");
	close(fd);

	/* Trailers of a chunked body are headers too, each one terminated. */
	fd = client(port);
	send_all(fd, "POST /headers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "1\r\na\r\n0\r\nX-Trailer: t1  \r\n\r\n");
	collect(fd, buf, sizeof(buf), "x-a:", &closed);
	like(buf, "X-Trailer=t1;x-a:none", "a trailer is a header, trimmed and terminated");
	close(fd);

	/* http_reply_file(): the body from a file, never read into memory. */
	{
		static char big[1 << 16];
		int ffd, fds_before;
		size_t n;

		snprintf(file_path, sizeof(file_path), "/tmp/unit_http.XXXXXX");
		ffd = mkstemp(file_path);
		if (ffd == -1 || write(ffd, "0123456789", 10) != 10)
			printf("# cannot write %s\n", file_path);
		close(ffd);
		file_len = 10;
		fd = client(port);
		turn();
		fds_before = open_fds();     /* the connection, both ends */
		send_all(fd, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /file/part HTTP/1.1\r\nHost: x\r\n\r\n"
		    "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /file/304 HTTP/1.1\r\nHost: x\r\n\r\n");
		collect_after(fd, buf, sizeof(buf), "304 Not Modified", "\r\n\r\n", &closed);
		like(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n",
		    "a file: its type and length");
		like(buf, "\r\n\r\n0123456789HTTP/1.1 206", "... and its bytes, then the next reply");
		like(buf, "206 Partial Content\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n",
		    "a part of it: the length given");
		like(buf, "\r\n\r\n3456HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
		    "Content-Length: 10\r\n", "... from the offset given; HEAD: the same head");
		ok(strstr(strstr(buf, "3456") ? strstr(buf, "3456") : buf, "0123") == NULL,
		    "... without the body");
		like(buf, "304 Not Modified\r\n", "a 304");
		ok(!closed, "the connection lives on");
		is_int((long long)last_bytes, 0, "the hook counts no body for a 304");
		turn();
		is_int(open_fds(), fds_before, "every file is closed (HEAD and 304 at once)");
		is_int(file_fds, 4, "... the 4 of them");
		close(fd);

		/*
		 * A file truncated while it is sent: the connection closes early.
		 * 64 MiB (sparse) is more than the socket buffers take before the
		 * client reads.
		 */
		ffd = open(file_path, O_WRONLY);
		file_len = (off_t)64 << 20;
		if (ftruncate(ffd, file_len) == -1)
			printf("# ftruncate: %s\n", strerror(errno));
		turn();
		fds_before = open_fds();     /* ffd, closed below, and then the client's end */
		fd = client(port);
		send_all(fd, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
		for (int i = 0; i < 4; i++)
			turn();
		if (ftruncate(ffd, 1000) == -1)
			printf("# ftruncate: %s\n", strerror(errno));
		close(ffd);
		n = 0;
		for (int i = 0; i < 1000; i++) {
			ssize_t r = recv(fd, big, sizeof(big), MSG_DONTWAIT);
			if (r == 0)
				break;
			if (r > 0)
				n += (size_t)r;
			else
				turn();
		}
		ok(n > 0 && n < (64u << 20), "a file truncated as it is sent: the body stops short");
		is_int(open_fds(), fds_before, "... the server's end and the file are closed");
		close(fd);
		unlink(file_path);
	}

	/* A header of the server's on every reply (the worker's pid), after the service's. */
	{
		char big[200];

		memset(big, 'v', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ok(http_server_add_header(srv, "X-Worker-Pid", "4242") == 0,
		    "http_server_add_header()");
		ok(http_server_add_header(srv, "X-Big", big) == -1,
		    "... refuses a header past 128 bytes");
		fd = client(port);
		send_all(fd, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
		    "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
		    "GET /nocontent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
		collect(fd, buf, sizeof(buf), NULL, &closed);
		like(buf, "X-Len: short\r\nX-Worker-Pid: 4242\r\n",
		    "... on a reply, after the service's own header");
		like(buf, "404 Not Found\r\nContent-Type: application/json\r\n"
		    "Content-Length: 63\r\nX-Worker-Pid: 4242\r\n", "... on an error");
		like(buf, "204 No Content\r\nX-Worker-Pid: 4242\r\n", "... on a 204");
		ok(strstr(buf, "X-Big") == NULL, "... and the refused one is on none");
		close(fd);
	}

	/* HTTP dates: IMF-fixdate out; the three formats of RFC 9110 in. */
	{
		char date[HTTP_DATE_LEN];
		time_t t = -1;

		http_date(784111777, date, sizeof(date));
		is_str(date, "Sun, 06 Nov 1994 08:49:37 GMT", "http_date(): IMF-fixdate");
		ok(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t) == 0 && t == 784111777,
		    "http_date_parse(): IMF-fixdate");
		t = -1;
		ok(http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t) == 0 && t == 784111777,
		    "... RFC 850");
		t = -1;
		ok(http_date_parse("Sun Nov  6 08:49:37 1994", &t) == 0 && t == 784111777,
		    "... asctime");
		ok(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT junk", &t) == -1, "... not junk after");
		ok(http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", &t) == -1, "... nor a bad month");
		ok(http_date_parse("Sun, 06 Nov 1994 25:49:37 GMT", &t) == -1, "... nor a bad hour");
		ok(http_date_parse("yesterday", &t) == -1, "... nor anything else");
		ok(http_date_parse("", &t) == -1, "... nor nothing");
	}

	/* Last, the drain: it does not wait for connections handed over. */
	if (first.fd > 0) {
		ok(http_drain(srv, on_drained, NULL) == 0, "a drain");
		for (int i = 0; i < 100 && !drained; i++)
			turn();
		ok(drained, "... ends without waiting for the handed-over connection");
		ok(send(first.fd, "X", 1, MSG_NOSIGNAL) == 1,
		    "... which is still open, its owner's to drain");
		close(first.fd);
		evbuffer_free(first.in);
		evbuffer_free(first.out);
	}
	http_server_free(srv);
	event_base_free(base);
	return done_testing();
}
