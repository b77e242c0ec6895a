/* The IPC codec: round trips, and malformed, truncated or oversized input rejected. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "t/tap.h"

static int
rejects_n(const char *text, size_t len, const char *why, const char *name)
{
	struct ipc_msg m;
	char err[256] = "";

	if (!ok(ipc_decode(text, len, &m, err, sizeof(err)) == -1, name))
		return 0;
	return like(err, why, "  ... and says why");
}

static int
rejects(const char *text, const char *why, const char *name)
{
	return rejects_n(text, strlen(text), why, name);
}

int
main(void)
{
	struct ipc_msg m = { .type = IPC_READY }, out;
	char buf[IPC_MAX_MSG + 16], err[256];
	int n, fds[2];

	m.u.ready.pid = 1234;
	m.u.ready.slot = 3;
	m.u.ready.generation = 7;
	n = ipc_encode(&m, buf, sizeof(buf));
	ok(n > 0, "encode ready");
	is_str(buf, "{\"type\":\"ready\",\"pid\":1234,\"slot\":3,\"generation\":7}", "ready wire format");
	ok(ipc_decode(buf, (size_t)n, &out, err, sizeof(err)) == 0, "decode ready");
	ok(out.type == IPC_READY && out.u.ready.pid == 1234 && out.u.ready.slot == 3 &&
	    out.u.ready.generation == 7, "ready round trip");

	m = (struct ipc_msg){ .type = IPC_STATS, .u.stats = { 99, 5000000000LL, 3, 7 } };
	n = ipc_encode(&m, buf, sizeof(buf));
	ok(ipc_decode(buf, (size_t)n, &out, err, sizeof(err)) == 0 &&
	    out.u.stats.requests == 5000000000LL && out.u.stats.in_flight == 3 &&
	    out.u.stats.connections == 7, "stats round trip keeps 64-bit counts");

	m = (struct ipc_msg){ .type = IPC_SHUTDOWN, .u.shutdown.mode = IPC_SHUTDOWN_FAST };
	n = ipc_encode(&m, buf, sizeof(buf));
	is_str(buf, "{\"type\":\"shutdown\",\"mode\":\"fast\"}", "shutdown wire format");
	ok(ipc_decode(buf, (size_t)n, &out, err, sizeof(err)) == 0 &&
	    out.u.shutdown.mode == IPC_SHUTDOWN_FAST, "shutdown round trip");
	m = (struct ipc_msg){ .type = IPC_REOPEN };
	n = ipc_encode(&m, buf, sizeof(buf));
	ok(ipc_decode(buf, (size_t)n, &out, err, sizeof(err)) == 0 && out.type == IPC_REOPEN,
	    "reopen round trip");

	m = (struct ipc_msg){ .type = IPC_FAILED, .u.failed.pid = 42 };
	snprintf(m.u.failed.reason, sizeof(m.u.failed.reason), "cannot open \"x\": denied");
	n = ipc_encode(&m, buf, sizeof(buf));
	is_str(buf, "{\"type\":\"failed\",\"pid\":42,\"reason\":\"cannot open \\\"x\\\": denied\"}",
	    "failed wire format");
	ok(ipc_decode(buf, (size_t)n, &out, err, sizeof(err)) == 0 && out.u.failed.pid == 42 &&
	    strcmp(out.u.failed.reason, "cannot open \"x\": denied") == 0, "failed round trip");
	memset(m.u.failed.reason, 'a', sizeof(m.u.failed.reason) - 1);
	m.u.failed.reason[sizeof(m.u.failed.reason) - 1] = '\0';
	n = ipc_encode(&m, buf, sizeof(buf));
	ok(n > 0 && ipc_decode(buf, (size_t)n, &out, err, sizeof(err)) == 0 &&
	    strlen(out.u.failed.reason) == sizeof(out.u.failed.reason) - 1, "the longest reason goes through");
	{
		char big[IPC_REASON_MAX + 64];
		snprintf(big, sizeof(big), "{\"type\":\"failed\",\"pid\":1,\"reason\":\"%0*d\"}",
		    IPC_REASON_MAX, 0);
		rejects(big, "less than", "a reason too long for its field");
	}
	rejects("{\"type\":\"failed\",\"pid\":1,\"reason\":\"a\\u0000b\"}", "no NUL", "a reason with a NUL");
	rejects("{\"type\":\"failed\",\"pid\":1,\"reason\":5}", "must be a string", "a reason that is no string");

	{
		/* descriptors travel with a message (adopt), and only with it */
		int sp[2], p[2], got[IPC_MAX_FDS];
		size_t ngot = 99;
		struct stat a, b;
		ok(ipc_pair(sp) == 0 && pipe(p) == 0, "a pair and a pipe");
		m = (struct ipc_msg){ .type = IPC_ADOPT, .u.adopt.slot = 3 };
		ok(ipc_send_fds(sp[0], &m, p, 2) == 0, "send adopt with two descriptors");
		ok(ipc_recv_fds(sp[1], &out, got, &ngot, err, sizeof(err)) == 1 &&
		    out.type == IPC_ADOPT && out.u.adopt.slot == 3 && ngot == 2, "received, with both");
		ok(ngot == 2 && fstat(got[0], &a) == 0 && fstat(p[0], &b) == 0 &&
		    a.st_ino == b.st_ino, "  ... the same pipe");
		ok(ngot == 2 && (fcntl(got[1], F_GETFD) & FD_CLOEXEC), "  ... close-on-exec");
		for (size_t i = 0; i < ngot && i < IPC_MAX_FDS; i++)
			close(got[i]);
		m = (struct ipc_msg){ .type = IPC_RELEASE, .u.release.slot = 3 };
		ok(ipc_send_fds(sp[0], &m, p, 1) == 0, "a release sent with a descriptor by mistake");
		ok(ipc_recv(sp[1], &out, err, sizeof(err)) == 1 && out.type == IPC_RELEASE,
		    "  ... is read by ipc_recv, which closes the descriptor");
		ok(ipc_send_fds(sp[0], &m, p, IPC_MAX_FDS + 1) == -1 && errno == EMSGSIZE,
		    "more than IPC_MAX_FDS descriptors are refused");
		close(sp[0]);
		close(sp[1]);
		close(p[0]);
		close(p[1]);
	}

	rejects_n("", 0, "0 bytes", "empty message");
	rejects("{\"type\":\"ready\",\"pid\":1", "not one JSON value", "truncated JSON");
	rejects("{\"type\":\"ready\"}xx", "not one JSON value", "trailing bytes");
	rejects("[1,2]", "not a JSON object", "an array");
	rejects("\"ready\"", "not a JSON object", "a string");
	rejects("{\"pid\":1}", "no string \"type\"", "no type");
	rejects("{\"type\":5}", "no string \"type\"", "numeric type");
	rejects("{\"type\":\"explode\"}", "unknown type", "unknown type");
	rejects("{\"type\":\"ready\",\"pid\":1,\"slot\":0}", "\"generation\" must be",
	    "missing field");
	rejects("{\"type\":\"ready\",\"pid\":\"1\",\"slot\":0,\"generation\":1}",
	    "\"pid\" must be an integer", "string where an integer belongs");
	rejects("{\"type\":\"ready\",\"pid\":-5,\"slot\":0,\"generation\":1}",
	    "must not be negative", "negative pid");
	rejects("{\"type\":\"shutdown\",\"mode\":\"slow\"}", "unknown mode",
	    "unknown mode");
	rejects("{\"type\":\"reopen\" /* c */}", "not one JSON value", "comments are not JSON");
	rejects_n("{\"type\":\"re\0pen\"}", 17, "", "embedded NUL");
	{
		/* Deep nesting must not recurse without bound. */
		static char deep[2100];
		size_t i;
		for (i = 0; i < 1000; i++)
			deep[i] = '[';
		for (; i < 2000; i++)
			deep[i] = ']';
		rejects_n(deep, 2000, "not one JSON value", "deeply nested input");
	}
	{
		char *big = malloc(IPC_MAX_MSG + 100);
		memset(big, ' ', IPC_MAX_MSG + 100);
		rejects_n(big, IPC_MAX_MSG + 100, "bytes", "oversized message");
		free(big);
	}

	/* Over a real socketpair: boundaries kept, oversized datagrams rejected whole. */
	ok(ipc_pair(fds) == 0, "socketpair");
	m = (struct ipc_msg){ .type = IPC_REOPEN };
	ipc_send(fds[0], &m);
	ipc_send(fds[0], &m);
	is_int(ipc_recv(fds[1], &out, err, sizeof(err)), 1, "first message");
	is_int(ipc_recv(fds[1], &out, err, sizeof(err)), 1, "second message, separately");
	ok(ipc_recv(fds[1], &out, err, sizeof(err)) == -1 && errno == EAGAIN, "then nothing");
	{
		char *big = malloc(IPC_MAX_MSG * 2);
		memset(big, '{', IPC_MAX_MSG * 2);
		ok(send(fds[0], big, IPC_MAX_MSG * 2, 0) == IPC_MAX_MSG * 2, "send an oversized datagram");
		ok(ipc_recv(fds[1], &out, err, sizeof(err)) == -1 && errno == EBADMSG,
		    "oversized datagram is a bad message");
		free(big);
	}
	ipc_send(fds[0], &m);
	is_int(ipc_recv(fds[1], &out, err, sizeof(err)), 1, "the next message still arrives");
	close(fds[0]);
	is_int(ipc_recv(fds[1], &out, err, sizeof(err)), 0, "end of file when the peer closes");
	close(fds[1]);
	return done_testing();
}
