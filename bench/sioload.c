/*
 * sioload: a Socket.IO v5 / Engine.IO v4 load generator, WebSocket transport
 * only, for bench/run. One thread, epoll, 127.0.0.1 only.
 *
 *   sioload --port P --conns N [--rate R] [--inflight K] [--path /socket.io/]
 *           [--room bench] [--connect-timeout S]
 *           [--idle S [--idle-cmd CMD]]
 *           [--publish [--window W] [--msgs-per-sec M] [--duration S]
 *            [--warmup S] [--payload BYTES] [--snapshot CMD] [--grace S]]
 *           [--deadline S]
 *
 * Phases, in this order:
 *   connect  N receivers: TCP, the WebSocket upgrade (Sec-WebSocket-Accept
 *            checked), Engine.IO's open packet, CONNECT "40", its answer
 *            "40{...}", then 421["join",ROOM] and its ack 431[{"ok":true}].
 *            --rate R starts R connections a second (0: as fast as
 *            --inflight K handshakes at a time allow). Reports the rate at
 *            which sockets got "connected + joined", and the time each took
 *            (with --snapshot's answers before the first and after the last).
 *   idle     (--idle S) holds them S seconds, answering the server's pings;
 *            CMD (sh -c) runs half-way through, its output kept in the
 *            results (bench/run reads the servers' RSS there).
 *   publish  (--publish) one more socket, the publisher, not in the room,
 *            emits 42<id>["publish",{"room":ROOM,"event":"m","data":
 *            {"t":<CLOCK_MONOTONIC ns>,"s":<seq>,"pad":"x..."}}] (BYTES of
 *            pad); the hub leaves the sender out, so each of the N receivers
 *            gets each message, and the latency is the receive time minus t.
 *            Two modes, each a phase of --warmup S then --duration S:
 *              sat   (--window W) open loop at the hub's pace: at most W
 *                    messages in flight, a message being in flight until
 *                    every receiver has it (or --grace S went by). The
 *                    publish acks are counted, not waited for: the hub acks
 *                    once it has handed a message on, before the other
 *                    workers have written it, so pacing on acks alone lets
 *                    their backlog grow without bound.
 *              rate  (--msgs-per-sec M) M messages a second, on schedule.
 *            --snapshot CMD: a co-process started before the connect
 *            phase; at the start and end of that phase and of each measured
 *            window it is sent a newline, and its answer line is kept
 *            (bench/run: lib/proc.py cpu-lines PGID, the server's CPU ticks).
 *
 * Everything is bounded in time: the connect phase by --connect-timeout, the
 * tail of each phase by --grace, the whole run by --deadline (an alarm ends
 * the process). stdout gets one JSON line of results, stderr what went wrong.
 * Client frames are masked with keys from getrandom() (RFC 6455 5.3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#define RBUF_SIZE (256 * 1024)          /* one read, shared by every connection */
#define MAX_FRAME (16u << 20)           /* larger frames from a server: an error */
#define MAX_HEAD 8192                   /* the 101's head */
#define RING (1u << 16)                 /* messages tracked at once */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- time ---- */

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* ---- a histogram: exact below 128 us, then 64 sub-buckets per power of 2 ---- */

#define HBUCKETS (128 + 50 * 64)

struct hist {
	uint64_t n[HBUCKETS];
	uint64_t count, max;
};

static unsigned
hbucket(uint64_t v)
{
	unsigned msb, shift;

	if (v < 128)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - 6;
	if (shift > 50)
		return HBUCKETS - 1;
	return 128 + (shift - 1) * 64 + (unsigned)((v >> shift) - 64);
}

static uint64_t
hvalue(unsigned b)        /* the upper end of a bucket */
{
	unsigned shift;

	if (b < 128)
		return b;
	shift = (b - 128) / 64 + 1;
	return (((uint64_t)((b - 128) % 64) + 64 + 1) << shift) - 1;
}

static void
hadd(struct hist *h, uint64_t v)
{
	h->n[hbucket(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static uint64_t
hpct(const struct hist *h, double p)
{
	uint64_t want, seen = 0;

	if (h->count == 0)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->count + 0.5);
	if (want < 1)
		want = 1;
	for (unsigned b = 0; b < HBUCKETS; b++)
		if ((seen += h->n[b]) >= want)
			return hvalue(b) < h->max ? hvalue(b) : h->max;
	return h->max;
}

/* ---- output: a growing string ---- */

struct str {
	char *p;
	size_t len, cap;
};

static void
sadd(struct str *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (s->len + (size_t)n < s->cap) {
			s->len += (size_t)n;
			return;
		}
		s->cap = (s->cap + (size_t)n) * 2 + 256;
		if ((s->p = realloc(s->p, s->cap)) == NULL) {
			perror("sioload: realloc");
			exit(2);
		}
	}
}

static void
sadd_json_string(struct str *s, const char *v)
{
	sadd(s, "\"");
	for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			sadd(s, "\\%c", *p);
		else if (*p < 0x20)
			sadd(s, "\\u%04x", *p);
		else
			sadd(s, "%c", *p);
	}
	sadd(s, "\"");
}

static void
sadd_hist(struct str *s, const char *name, const struct hist *h, double div)
{
	sadd(s, "\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
	    "\"p999\":%.3f,\"max\":%.3f}", name, h->count, (double)hpct(h, 50) / div,
	    (double)hpct(h, 90) / div, (double)hpct(h, 99) / div, (double)hpct(h, 99.9) / div,
	    (double)h->max / div);
}

/* ---- options ---- */

static struct {
	int port;
	long conns, inflight;
	double rate;
	const char *path, *room;
	double connect_timeout, idle, warmup, duration, grace, deadline;
	const char *idle_cmd, *snapshot;
	bool publish;
	long window, payload;
	double mps;
} opt = {
	.port = 0, .conns = 100, .inflight = 200, .rate = 0, .path = "/socket.io/",
	.room = "bench", .connect_timeout = 60, .idle = 0, .warmup = 1, .duration = 5,
	.grace = 5, .deadline = 0, .window = 0, .payload = 64, .mps = 0,
};

static void
usage(void)
{
	fputs("usage: sioload --port P --conns N [--rate R] [--inflight K] [--path P] [--room R]\n"
	    "               [--connect-timeout S] [--idle S [--idle-cmd CMD]]\n"
	    "               [--publish [--window W] [--msgs-per-sec M] [--duration S] [--warmup S]\n"
	    "                [--payload BYTES] [--snapshot CMD] [--grace S]] [--deadline S]\n", stderr);
	exit(2);
}

static double
num(const char *name, const char *v, double lo, double hi)
{
	char *end;
	double d = strtod(v, &end);

	if (*v == '\0' || *end != '\0' || d < lo || d > hi) {
		fprintf(stderr, "sioload: %s: %s is not a number from %g to %g\n", name, v, lo, hi);
		exit(2);
	}
	return d;
}

static void
parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(n) (strcmp(a, n) == 0 && (v != NULL || (usage(), 0)) && ++i)
		if (strcmp(a, "--publish") == 0)
			opt.publish = true;
		else if (ARG("--port"))
			opt.port = (int)num(a, v, 1, 65535);
		else if (ARG("--conns"))
			opt.conns = (long)num(a, v, 0, 1000000);
		else if (ARG("--rate"))
			opt.rate = num(a, v, 0, 1e7);
		else if (ARG("--inflight"))
			opt.inflight = (long)num(a, v, 1, 100000);
		else if (ARG("--path"))
			opt.path = v;
		else if (ARG("--room"))
			opt.room = v;
		else if (ARG("--connect-timeout"))
			opt.connect_timeout = num(a, v, 0.1, 3600);
		else if (ARG("--idle"))
			opt.idle = num(a, v, 0, 3600);
		else if (ARG("--idle-cmd"))
			opt.idle_cmd = v;
		else if (ARG("--window"))
			opt.window = (long)num(a, v, 0, RING / 2);
		else if (ARG("--msgs-per-sec"))
			opt.mps = num(a, v, 0, 1e6);
		else if (ARG("--duration"))
			opt.duration = num(a, v, 0.1, 3600);
		else if (ARG("--warmup"))
			opt.warmup = num(a, v, 0, 3600);
		else if (ARG("--payload"))
			opt.payload = (long)num(a, v, 0, 1 << 20);
		else if (ARG("--snapshot"))
			opt.snapshot = v;
		else if (ARG("--grace"))
			opt.grace = num(a, v, 0.1, 3600);
		else if (ARG("--deadline"))
			opt.deadline = num(a, v, 1, 86400);
		else
			usage();
#undef ARG
	}
	if (opt.port == 0)
		usage();
	if (opt.publish && opt.window == 0 && opt.mps == 0) {
		fputs("sioload: --publish needs --window W, --msgs-per-sec M or both\n", stderr);
		exit(2);
	}
	if (strlen(opt.room) > 200 || strpbrk(opt.room, "\"\\") != NULL) {
		fputs("sioload: --room: at most 200 characters, no quote or backslash\n", stderr);
		exit(2);
	}
}

/* ---- random bytes: masks and keys ---- */

static void
random_bytes(void *p, size_t n)
{
	static uint8_t pool[4096];
	static size_t left;
	uint8_t *out = p;

	while (n > 0) {
		if (left == 0) {
			if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool)) {
				perror("sioload: getrandom");
				exit(2);
			}
			left = sizeof(pool);
		}
		size_t k = n < left ? n : left;
		memcpy(out, pool + sizeof(pool) - left, k);
		left -= k;
		out += k;
		n -= k;
	}
}

/* ---- connections ---- */

enum state { S_CONNECTING, S_HANDSHAKE, S_OPEN_WAIT, S_CONNECT_WAIT, S_JOIN_WAIT, S_READY,
	S_DEAD };

struct conn {
	int fd;
	uint8_t state;
	bool pub;
	bool in_frag;
	uint8_t frag_op;
	uint32_t want_events;
	uint8_t key[16];             /* Sec-WebSocket-Key, raw */
	uint8_t *rbuf;               /* bytes kept for the next read: a partial frame */
	uint32_t rlen;
	uint8_t *msg;                /* a fragmented message so far */
	uint32_t mlen;
	uint8_t *wbuf;               /* bytes the kernel did not take yet */
	uint32_t wlen, woff;
	int64_t t_start;
};

static int ep = -1;
static struct conn *conns;      /* receivers, then the publisher */
static struct conn *pubc;
static long started, inflight, joined, failed, closed_after_join;
static struct hist connect_hist;    /* us, from connect() to the join's ack */
static int64_t t_first_start, t_last_joined;
static uint8_t *rb;

static struct {
	uint64_t server_close, proto, io, refused, timeout, connect_error, pings, binary,
	    unexpected, publish_errors;
	char first[256];
} err;

static void
note(const char *fmt, ...)
{
	va_list ap;

	if (err.first[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(err.first, sizeof(err.first), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sioload: %s\n", err.first);
}

/* ---- messages in flight (the publisher's) ---- */

struct slot {
	uint64_t seq;
	int64_t sent_ns;
	uint32_t expected, got;
};

static struct slot ring[RING];
static uint64_t seq_next, done_upto, acked, acks_ok;
static uint64_t delivered_total, expected_total;

/* The measured window of a phase. */
static struct {
	bool on;                     /* deliveries are being counted */
	int64_t start, end;          /* receive time: [start, end) */
	uint64_t first_seq, end_seq; /* messages sent in the window: [first_seq, end_seq) */
	uint64_t delivered;          /* received in [start, end) */
	uint64_t lat_count;          /* deliveries of the window's messages, whenever */
	uint64_t expected;           /* deliveries due for the window's messages */
	struct hist lat;             /* us */
} win;

static void conn_fail(struct conn *c, uint64_t *counter, const char *why);

static void
set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (c->want_events == ev)
		return;
	c->want_events = ev;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == -1)
		conn_fail(c, &err.io, "epoll_ctl");
}

static void
conn_close(struct conn *c)
{
	if (c->state == S_DEAD)
		return;
	if (c->state < S_READY) {
		inflight--;
		failed++;
	} else if (!c->pub)
		closed_after_join++;
	c->state = S_DEAD;
	close(c->fd);                /* epoll forgets it */
	c->fd = -1;
	free(c->rbuf);
	free(c->msg);
	free(c->wbuf);
	c->rbuf = c->msg = c->wbuf = NULL;
	c->rlen = c->mlen = c->wlen = c->woff = 0;
}

static void
conn_fail(struct conn *c, uint64_t *counter, const char *why)
{
	if (c->state == S_DEAD)
		return;
	(*counter)++;
	note("%s connection %ld: %s", c->pub ? "publisher" : "receiver", (long)(c - conns), why);
	conn_close(c);
}

/* Writes what it can; keeps the rest for EPOLLOUT. */
static void
conn_write(struct conn *c, const void *p, size_t len)
{
	ssize_t n = 0;

	if (c->state == S_DEAD)
		return;
	if (c->wlen == c->woff) {
		c->wlen = c->woff = 0;
		while ((n = send(c->fd, p, len, MSG_NOSIGNAL)) == -1 && errno == EINTR)
			;
		if (n == -1 && errno != EAGAIN) {
			conn_fail(c, &err.io, strerror(errno));
			return;
		}
		if (n == -1)
			n = 0;
		if ((size_t)n == len)
			return;
	}
	size_t rest = len - (size_t)n;
	uint8_t *nb = realloc(c->wbuf, c->wlen + rest);
	if (nb == NULL) {
		conn_fail(c, &err.io, "out of memory");
		return;
	}
	c->wbuf = nb;
	memcpy(c->wbuf + c->wlen, (const uint8_t *)p + n, rest);
	c->wlen += (uint32_t)rest;
	set_events(c, EPOLLIN | EPOLLOUT);
}

static void
conn_flush(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n == -1) {
			conn_fail(c, &err.io, strerror(errno));
			return;
		}
		c->woff += (uint32_t)n;
	}
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
	set_events(c, EPOLLIN);
}

/* A client frame: FIN, the opcode, a fresh random mask, the masked payload. */
static void
ws_send(struct conn *c, int op, const void *payload, size_t len)
{
	static uint8_t *buf;
	static size_t cap;
	size_t hl = 2 + (len > 65535 ? 8 : len > 125 ? 2 : 0) + 4;
	uint8_t *f, mask[4];
	const uint8_t *p = payload;

	if (cap < hl + len) {
		cap = (hl + len) * 2;
		if ((buf = realloc(buf, cap)) == NULL) {
			perror("sioload: realloc");
			exit(2);
		}
	}
	f = buf;
	*f++ = (uint8_t)(0x80 | op);
	if (len > 65535) {
		*f++ = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			*f++ = (uint8_t)((uint64_t)len >> (8 * i));
	} else if (len > 125) {
		*f++ = 0x80 | 126;
		*f++ = (uint8_t)(len >> 8);
		*f++ = (uint8_t)len;
	} else
		*f++ = (uint8_t)(0x80 | len);
	random_bytes(mask, 4);
	memcpy(f, mask, 4);
	f += 4;
	for (size_t i = 0; i < len; i++)
		f[i] = p[i] ^ mask[i & 3];
	conn_write(c, buf, hl + len);
}

static void
ws_text(struct conn *c, const char *s)
{
	ws_send(c, 1, s, strlen(s));
}

static void
conn_start(struct conn *c)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct epoll_event e = { .events = EPOLLOUT, .data.ptr = c };
	int one = 1;

	c->t_start = now_ns();
	if (t_first_start == 0)
		t_first_start = c->t_start;
	started++;
	inflight++;
	c->state = S_CONNECTING;
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		c->state = S_CONNECTING;
		note("socket: %s (raise ulimit -n?)", strerror(errno));
		err.connect_error++;
		inflight--;
		failed++;
		c->state = S_DEAD;
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->want_events = EPOLLOUT;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) == -1) {
		conn_fail(c, &err.io, "epoll_ctl add");
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 && errno != EINPROGRESS)
		conn_fail(c, &err.connect_error, strerror(errno));
}

static void
send_upgrade(struct conn *c)
{
	char req[512], key[25];
	int n;

	random_bytes(c->key, sizeof(c->key));
	base64_encode_raw(key, sizeof(c->key), c->key);
	key[24] = '\0';
	n = snprintf(req, sizeof(req), "GET %s?EIO=4&transport=websocket HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", opt.path, opt.port, key);
	c->state = S_HANDSHAKE;
	set_events(c, EPOLLIN);
	conn_write(c, req, (size_t)n);
}

/* The 101's head, up to its blank line: 0, or -1 (the connection failed). */
static int
check_101(struct conn *c, const char *head, size_t len)
{
	char key[25], expect[29];
	uint8_t digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx sha;
	const char *p, *end = head + len;

	if (len < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0) {
		char line[64];
		size_t k = strcspn(head, "\r\n");
		snprintf(line, sizeof(line), "%.*s", (int)(k < 60 ? k : 60), head);
		if (len >= 12 && memcmp(head + 9, "503", 3) == 0)
			conn_fail(c, &err.refused, line);
		else
			conn_fail(c, &err.proto, line);
		return -1;
	}
	base64_encode_raw(key, sizeof(c->key), c->key);
	key[24] = '\0';
	sha1_init(&sha);
	sha1_update(&sha, 24, (const uint8_t *)key);
	sha1_update(&sha, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof(digest), digest);
	base64_encode_raw(expect, sizeof(digest), digest);
	expect[28] = '\0';
	for (p = head; p < end; ) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > 21 && strncasecmp(p, "Sec-WebSocket-Accept:", 21) == 0) {
			const char *v = p + 21;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			if (eol - v >= 28 && memcmp(v, expect, 28) == 0)
				return 0;
			conn_fail(c, &err.proto, "wrong Sec-WebSocket-Accept");
			return -1;
		}
		p = eol + 2;
	}
	conn_fail(c, &err.proto, "no Sec-WebSocket-Accept");
	return -1;
}

static uint64_t
parse_u64(const uint8_t *p, const uint8_t *end, bool *ok)
{
	uint64_t v = 0;
	const uint8_t *s = p;

	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	*ok = p > s;
	return v;
}

/* "key": followed by digits, in [p, end). */
static bool
find_u64(const uint8_t *p, size_t len, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	const uint8_t *k = memmem(p, len, key, kl);
	bool ok;

	if (k == NULL)
		return false;
	*v = parse_u64(k + kl, p + len, &ok);
	return ok;
}

static void
on_delivery(struct conn *c, const uint8_t *p, size_t len, int64_t now)
{
	uint64_t t, s;
	struct slot *sl;

	(void)c;
	if (!find_u64(p, len, "\"t\":", &t) || !find_u64(p, len, "\"s\":", &s)) {
		err.unexpected++;
		return;
	}
	delivered_total++;
	if (win.on && now >= win.start && now < win.end)
		win.delivered++;
	if (s >= win.first_seq && s < win.end_seq) {
		win.lat_count++;
		hadd(&win.lat, now > (int64_t)t ? (uint64_t)(now - (int64_t)t) / 1000 : 0);
	}
	sl = &ring[s % RING];
	if (sl->seq == s)
		sl->got++;
}

static void
on_ack(struct conn *c, const uint8_t *p, size_t len, int64_t now)
{
	bool ok;
	uint64_t id = parse_u64(p, p + len, &ok);
	bool good = memmem(p, len, "\"ok\":true", 9) != NULL;

	if (!ok) {
		conn_fail(c, &err.proto, "an ack without an id");
		return;
	}
	if (c->pub) {
		acked++;
		if (good)
			acks_ok++;
		else
			err.publish_errors++;
		return;
	}
	if (c->state != S_JOIN_WAIT || id != 1) {
		err.unexpected++;
		return;
	}
	if (!good) {
		conn_fail(c, &err.proto, "the join was refused");
		return;
	}
	c->state = S_READY;
	inflight--;
	joined++;
	t_last_joined = now;
	hadd(&connect_hist, (uint64_t)(now - c->t_start) / 1000);
}

/* One whole WebSocket message from the server. */
static void
on_message(struct conn *c, int op, const uint8_t *p, size_t len, int64_t now)
{
	char join[256];

	if (op == 2) {
		err.binary++;
		return;
	}
	if (len == 0) {
		conn_fail(c, &err.proto, "an empty Engine.IO packet");
		return;
	}
	switch (p[0]) {
	case '0':                    /* open */
		if (c->state != S_OPEN_WAIT) {
			conn_fail(c, &err.proto, "a second open packet");
			return;
		}
		c->state = S_CONNECT_WAIT;
		ws_text(c, "40");
		return;
	case '2':                    /* ping */
		err.pings++;
		ws_text(c, "3");
		return;
	case '4':
		break;
	case '6':
		return;
	default:
		conn_fail(c, &err.proto, "an unexpected Engine.IO packet");
		return;
	}
	if (len < 2) {
		conn_fail(c, &err.proto, "an empty Socket.IO packet");
		return;
	}
	switch (p[1]) {
	case '2':                    /* EVENT */
		if (!c->pub && c->state == S_READY && len > 6 && memcmp(p + 2, "[\"m\",", 5) == 0)
			on_delivery(c, p + 2, len - 2, now);
		else
			err.unexpected++;
		return;
	case '3':                    /* ACK */
		on_ack(c, p + 2, len - 2, now);
		return;
	case '0':                    /* CONNECT answered */
		if (c->state != S_CONNECT_WAIT || len < 3 || p[2] != '{') {
			conn_fail(c, &err.proto, "an unexpected CONNECT");
			return;
		}
		if (c->pub) {
			c->state = S_READY;
			inflight--;
			return;
		}
		c->state = S_JOIN_WAIT;
		snprintf(join, sizeof(join), "421[\"join\",\"%s\"]", opt.room);
		ws_text(c, join);
		return;
	case '4':
		conn_fail(c, &err.proto, "CONNECT_ERROR");
		return;
	case '1':
		conn_fail(c, &err.server_close, "DISCONNECT from the server");
		return;
	default:
		err.unexpected++;
	}
}

/* Frames in [p, p + len): returns the bytes used (the rest is a partial frame). */
static size_t
parse_frames(struct conn *c, const uint8_t *p, size_t len, int64_t now)
{
	size_t used = 0;

	while (c->state != S_DEAD && len - used >= 2) {
		const uint8_t *f = p + used;
		size_t avail = len - used, hl = 2;
		uint64_t plen = f[1] & 0x7f;
		bool fin = f[0] & 0x80;
		int op = f[0] & 0x0f;

		if ((f[0] & 0x70) != 0 || (f[1] & 0x80) != 0) {
			conn_fail(c, &err.proto, "RSV bits or a masked frame from the server");
			break;
		}
		if (plen == 126) {
			if (avail < 4)
				break;
			plen = (uint64_t)f[2] << 8 | f[3];
			hl = 4;
		} else if (plen == 127) {
			if (avail < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			hl = 10;
		}
		if (plen > MAX_FRAME) {
			conn_fail(c, &err.proto, "a frame over 16 MiB");
			break;
		}
		if (avail < hl + plen)
			break;
		used += hl + (size_t)plen;
		const uint8_t *pl = f + hl;
		if (op >= 8) {           /* control frames */
			if (!fin || plen > 125) {
				conn_fail(c, &err.proto, "a bad control frame");
				break;
			}
			if (op == 8) {
				char why[64];
				unsigned code = plen >= 2 ? (unsigned)(pl[0] << 8 | pl[1]) : 0;
				snprintf(why, sizeof(why), "close frame from the server (%u)", code);
				conn_fail(c, &err.server_close, why);
			} else if (op == 9)
				ws_send(c, 10, pl, (size_t)plen);
			continue;
		}
		if (op == 0 || c->in_frag || !fin) {      /* fragments */
			if ((op == 0) != c->in_frag) {
				conn_fail(c, &err.proto, "bad fragmentation");
				break;
			}
			if (op != 0)
				c->frag_op = (uint8_t)op;
			if (c->mlen + plen > MAX_FRAME) {
				conn_fail(c, &err.proto, "a message over 16 MiB");
				break;
			}
			uint8_t *m = realloc(c->msg, c->mlen + (size_t)plen + 1);
			if (m == NULL) {
				conn_fail(c, &err.io, "out of memory");
				break;
			}
			c->msg = m;
			memcpy(c->msg + c->mlen, pl, (size_t)plen);
			c->mlen += (uint32_t)plen;
			c->in_frag = !fin;
			if (fin) {
				on_message(c, c->frag_op, c->msg, c->mlen, now);
				free(c->msg);
				c->msg = NULL;
				c->mlen = 0;
			}
			continue;
		}
		if (op != 1 && op != 2) {
			conn_fail(c, &err.proto, "an unknown opcode");
			break;
		}
		on_message(c, op, pl, (size_t)plen, now);
	}
	return used;
}

static void
on_readable(struct conn *c)
{
	size_t have = c->rlen, used;
	ssize_t n;
	int64_t now;

	if (have > 0)
		memcpy(rb, c->rbuf, have);
	while ((n = recv(c->fd, rb + have, RBUF_SIZE - have, 0)) == -1 && errno == EINTR)
		;
	if (n == -1 && errno == EAGAIN)
		return;
	if (n <= 0) {
		conn_fail(c, n == 0 ? &err.server_close : &err.io,
		    n == 0 ? "the server closed the connection" : strerror(errno));
		return;
	}
	now = now_ns();
	have += (size_t)n;
	used = 0;
	if (c->state == S_HANDSHAKE) {
		uint8_t *e = memmem(rb, have, "\r\n\r\n", 4);
		if (e == NULL) {
			if (have > MAX_HEAD) {
				conn_fail(c, &err.proto, "the 101's head is too long");
				return;
			}
		} else {
			rb[e - rb] = '\0';          /* check_101 reads it as a string */
			if (check_101(c, (char *)rb, (size_t)(e - rb)) == -1)
				return;
			c->state = S_OPEN_WAIT;
			used = (size_t)(e - rb) + 4;
		}
	}
	if (c->state >= S_OPEN_WAIT)
		used += parse_frames(c, rb + used, have - used, now);
	if (c->state == S_DEAD)
		return;
	if (used == have) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rlen = 0;
		return;
	}
	if (have - used > RBUF_SIZE / 2) {
		conn_fail(c, &err.proto, "a frame larger than the read buffer");
		return;
	}
	uint8_t *nb = realloc(c->rbuf, have - used);
	if (nb == NULL) {
		conn_fail(c, &err.io, "out of memory");
		return;
	}
	c->rbuf = nb;
	memmove(c->rbuf, rb + used, have - used);
	c->rlen = (uint32_t)(have - used);
}

static void
on_event(struct conn *c, uint32_t ev)
{
	if (c->state == S_DEAD)
		return;
	if (c->state == S_CONNECTING) {
		int e = 0;
		socklen_t l = sizeof(e);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) == -1 || e != 0) {
			conn_fail(c, &err.connect_error, strerror(e ? e : errno));
			return;
		}
		send_upgrade(c);
		return;
	}
	if (ev & EPOLLOUT)
		conn_flush(c);
	if (c->state != S_DEAD && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		on_readable(c);
}

/* Waits up to until_ns, handles what came: returns the events handled. */
static int
poll_once(int64_t until_ns)
{
	static struct epoll_event evs[1024];
	int64_t now = now_ns();
	int ms = until_ns <= now ? 0 : (int)((until_ns - now + 999999) / 1000000);
	int n;

	if (ms > 100)
		ms = 100;
	n = epoll_wait(ep, evs, 1024, ms);
	if (n == -1 && errno != EINTR) {
		perror("sioload: epoll_wait");
		exit(2);
	}
	for (int i = 0; i < n; i++)
		on_event(evs[i].data.ptr, evs[i].events);
	return n < 0 ? 0 : n;
}

/* ---- the phases ---- */

static int64_t hard_deadline;

static void
on_alarm(int sig)
{
	static const char msg[] = "sioload: the --deadline passed: giving up\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(3);
}

static void
check_deadline(void)
{
	if (now_ns() > hard_deadline)
		on_alarm(0);
}

/* Runs CMD (sh -c) and returns its output, trailing newlines cut; NULL on failure. */
static char *
run_cmd(const char *cmd)
{
	FILE *f;
	struct str s = { 0 };
	char buf[4096];
	size_t n;

	if (cmd == NULL)
		return NULL;
	fflush(NULL);
	if ((f = popen(cmd, "r")) == NULL) {
		note("popen %s: %s", cmd, strerror(errno));
		return NULL;
	}
	sadd(&s, "%s", "");
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sadd(&s, "%.*s", (int)n, buf);
	if (pclose(f) != 0)
		note("%s: failed", cmd);
	while (s.len > 0 && (s.p[s.len - 1] == '\n' || s.p[s.len - 1] == '\r'))
		s.p[--s.len] = '\0';
	return s.p;
}

/*
 * --snapshot CMD runs once, from before the first warm-up to the end: each
 * snapshot writes a newline to its stdin and reads a line from its stdout
 * (bench/run: proc.py cpu-lines PGID), so that no process start-up falls
 * inside a measured window.
 */
static struct {
	pid_t pid;
	FILE *to, *from;
} snap = { -1, NULL, NULL };

static void
snap_start(const char *cmd)
{
	int in[2], out[2];

	if (cmd == NULL)
		return;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1) {
		note("pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	if ((snap.pid = fork()) == -1) {
		note("fork: %s", strerror(errno));
		return;
	}
	if (snap.pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	snap.to = fdopen(in[1], "w");
	snap.from = fdopen(out[0], "r");
}

static char *
snapshot(void)
{
	char line[1024];

	if (snap.to == NULL || snap.from == NULL)
		return NULL;
	if (fputc('\n', snap.to) == EOF || fflush(snap.to) == EOF ||
	    fgets(line, sizeof(line), snap.from) == NULL) {
		note("--snapshot: no answer");
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return strdup(line);
}

static void
snap_stop(void)
{
	int st;

	if (snap.to != NULL)
		fclose(snap.to);     /* EOF: it exits */
	if (snap.from != NULL)
		fclose(snap.from);
	if (snap.pid > 0)
		waitpid(snap.pid, &st, 0);
}

static void
connect_phase(struct str *out)
{
	char *snap0 = snapshot(), *snap1;
	int64_t t0 = now_ns(), stop = t0 + (int64_t)(opt.connect_timeout * 1e9);
	long next = 0;
	int64_t cpu0 = cpu_us(), t_end;

	while (joined + failed < opt.conns && now_ns() < stop) {
		int64_t now = now_ns(), due = INT64_MAX;
		while (next < opt.conns && inflight < opt.inflight) {
			if (opt.rate > 0) {
				int64_t at = t0 + (int64_t)((double)next * 1e9 / opt.rate);
				if (at > now) {
					due = at;
					break;
				}
			}
			conn_start(&conns[next++]);
		}
		poll_once(due < stop ? due : stop);
		check_deadline();
	}
	t_end = now_ns();
	snap1 = snapshot();
	for (long i = 0; i < opt.conns; i++)
		if (conns[i].state != S_DEAD && conns[i].state != S_READY) {
			err.timeout++;
			conn_close(&conns[i]);
		}
	double secs = t_last_joined > t_first_start ? (double)(t_last_joined - t_first_start) / 1e9 : 0;
	sadd(out, "\"connect\":{\"conns\":%ld,\"joined\":%ld,\"failed\":%ld,\"secs\":%.4f,"
	    "\"per_sec\":%.1f,\"rate_asked\":%g,\"inflight\":%ld,\"gen_cpu_pct\":%.1f,",
	    opt.conns, joined, failed, secs, secs > 0 ? (double)joined / secs : 0, opt.rate,
	    opt.inflight, t_end > t0 ? 100.0 * (double)(cpu_us() - cpu0) * 1000 / (double)(t_end - t0) : 0);
	sadd_hist(out, "latency_ms", &connect_hist, 1000.0);
	sadd(out, ",\"snap_before\":");
	sadd_json_string(out, snap0);
	sadd(out, ",\"snap_after\":");
	sadd_json_string(out, snap1);
	sadd(out, "}");
	free(snap0);
	free(snap1);
}

static void
idle_phase(struct str *out)
{
	int64_t t0 = now_ns(), mid = t0 + (int64_t)(opt.idle * 1e9 / 2), end = t0 + (int64_t)(opt.idle * 1e9);
	int64_t cpu0 = cpu_us();
	char *cmd_out = NULL;
	bool ran = opt.idle_cmd == NULL;
	long open0 = joined - closed_after_join, open_at_cmd = 0;

	while (now_ns() < end) {
		poll_once(ran ? end : mid);
		if (!ran && now_ns() >= mid) {
			open_at_cmd = joined - closed_after_join;
			cmd_out = run_cmd(opt.idle_cmd);
			ran = true;
		}
		if (opt.idle_cmd == NULL)
			open_at_cmd = joined - closed_after_join;
		check_deadline();
	}
	sadd(out, ",\"idle\":{\"secs\":%g,\"open_at_start\":%ld,\"open_at_cmd\":%ld,"
	    "\"open_at_end\":%ld,\"gen_cpu_pct\":%.1f,\"cmd_out\":", opt.idle, open0, open_at_cmd,
	    joined - closed_after_join, 100.0 * (double)(cpu_us() - cpu0) * 1000 / (double)(now_ns() - t0));
	sadd_json_string(out, cmd_out);
	sadd(out, "}");
	free(cmd_out);
}

static uint32_t
receivers_now(void)
{
	return (uint32_t)(joined - closed_after_join);
}

static void
publish_one(int64_t now)
{
	static struct str msg;
	struct slot *sl = &ring[seq_next % RING];

	msg.len = 0;
	sadd(&msg, "42%" PRIu64 "[\"publish\",{\"room\":\"%s\",\"event\":\"m\",\"data\":{\"t\":%" PRId64
	    ",\"s\":%" PRIu64 ",\"pad\":\"%*s\"}}]", seq_next, opt.room, now, seq_next,
	    (int)opt.payload, "");
	/* the pad: spaces to x (JSON strings may hold spaces, but x reads better) */
	for (char *q = msg.p + msg.len - 4 - opt.payload; q < msg.p + msg.len - 4; q++)
		*q = 'x';
	sl->seq = seq_next;
	sl->sent_ns = now;
	sl->expected = receivers_now();
	sl->got = 0;
	expected_total += sl->expected;
	seq_next++;
	ws_send(pubc, 1, msg.p, msg.len);
}

/* Moves done_upto past the messages every receiver has, or that waited --grace. */
static void
advance_done(int64_t now)
{
	int64_t grace = (int64_t)(opt.grace * 1e9);

	while (done_upto < seq_next) {
		struct slot *sl = &ring[done_upto % RING];
		if (sl->got < sl->expected && now - sl->sent_ns < grace)
			break;
		done_upto++;
	}
}

struct phase_res {
	uint64_t sent, behind;
	double secs;
};

/* Publishes from now to until (or, with until = 0, not at all), paced by the
 * window or the rate. */
static void
publish_until(int64_t until, long window, double mps, struct phase_res *r)
{
	int64_t t0 = now_ns(), next_due = t0;
	uint64_t k = 0;

	for (;;) {
		int64_t now = now_ns(), wake = until;
		if (now >= until || pubc->state != S_READY)
			break;
		advance_done(now);
		if (window > 0) {
			while (seq_next - done_upto < (uint64_t)window && seq_next - done_upto < RING - 1) {
				publish_one(now_ns());
				r->sent++;
			}
		} else {
			int burst = 0;
			while (now >= next_due && seq_next - done_upto < RING - 1 && burst++ < 1000) {
				if (now - next_due > 1000000)
					r->behind++;            /* over 1 ms late */
				publish_one(now_ns());
				r->sent++;
				k++;
				next_due = t0 + (int64_t)((double)k * 1e9 / mps);
			}
			wake = next_due < until ? next_due : until;
		}
		poll_once(wake);
		check_deadline();
	}
}

static void
drain(int64_t until)
{
	for (;;) {
		int64_t now = now_ns();
		advance_done(now);
		if (done_upto >= seq_next || now >= until || pubc->state != S_READY)
			break;
		poll_once(until);
		check_deadline();
	}
}

static void
publish_phase(struct str *out, const char *name, long window, double mps, bool first)
{
	struct phase_res warm = { 0 }, meas = { 0 };
	int64_t now, cpu0, cpu1;
	char *snap0, *snap1;
	uint64_t del_total0 = delivered_total;

	/* warm-up: unrecorded */
	if (opt.warmup > 0)
		publish_until(now_ns() + (int64_t)(opt.warmup * 1e9), window, mps, &warm);
	/* the window: marks, the CPU times of the servers (snapshot) and ours */
	snap0 = snapshot();
	memset(&win, 0, sizeof(win));
	now = now_ns();
	win.on = true;
	win.start = now;
	win.end = now + (int64_t)(opt.duration * 1e9);
	win.first_seq = seq_next;
	win.end_seq = UINT64_MAX;
	uint64_t exp0 = expected_total;
	cpu0 = cpu_us();
	publish_until(win.end, window, mps, &meas);
	cpu1 = cpu_us();
	now = now_ns();
	win.end_seq = seq_next;
	win.expected = expected_total - exp0;
	snap1 = snapshot();
	/* the tail: what the window sent, given --grace to arrive */
	drain(now_ns() + (int64_t)(opt.grace * 1e9));
	win.on = false;
	meas.secs = (double)(win.end - win.start) / 1e9;

	sadd(out, "%s{\"name\":\"%s\",\"window\":%ld,\"msgs_per_sec_asked\":%g,\"receivers\":%u,"
	    "\"payload\":%ld,\"warmup\":%g,\"secs\":%.4f,\"sent\":%" PRIu64 ",\"sent_per_sec\":%.1f,"
	    "\"sent_late\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"delivered_per_sec\":%.1f,"
	    "\"expected\":%" PRIu64 ",\"received_of_window\":%" PRIu64 ",\"lost\":%" PRId64 ","
	    "\"in_flight_at_end\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"delivered_in_warmup\":%" PRIu64 ","
	    "\"gen_cpu_pct\":%.1f,\"gen_cpu_us_per_msg\":%.3f,",
	    first ? "" : ",", name, window, mps, receivers_now(), opt.payload, opt.warmup, meas.secs,
	    meas.sent, (double)meas.sent / meas.secs, meas.behind, win.delivered,
	    (double)win.delivered / meas.secs, win.expected, win.lat_count,
	    (int64_t)win.expected - (int64_t)win.lat_count, seq_next - done_upto, acked,
	    win.start > 0 ? delivered_total - del_total0 - win.lat_count : 0,
	    100.0 * (double)(cpu1 - cpu0) * 1000 / (double)(win.end - win.start),
	    win.delivered ? (double)(cpu1 - cpu0) / (double)win.delivered : 0);
	(void)now;
	sadd_hist(out, "latency_ms", &win.lat, 1000.0);
	sadd(out, ",\"snap_before\":");
	sadd_json_string(out, snap0);
	sadd(out, ",\"snap_after\":");
	sadd_json_string(out, snap1);
	sadd(out, "}");
	free(snap0);
	free(snap1);
}

int
main(int argc, char **argv)
{
	struct str out = { 0 };
	struct rlimit rl;
	double budget;
	int64_t t0 = now_ns();

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	budget = opt.connect_timeout + opt.idle + 10 +
	    (opt.publish ? 2 * (opt.warmup + opt.duration + opt.grace + 2) + opt.connect_timeout : 0);
	if (opt.deadline == 0)
		opt.deadline = budget;
	hard_deadline = t0 + (int64_t)(opt.deadline * 1e9);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)opt.deadline + 5);   /* the loop's own check comes first */

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)opt.conns + 64) {
		rl.rlim_cur = (rlim_t)opt.conns + 64 < rl.rlim_max ? (rlim_t)opt.conns + 64 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)opt.conns + 64)
			fprintf(stderr, "sioload: ulimit -n is %llu: too few for %ld connections\n",
			    (unsigned long long)rl.rlim_cur, opt.conns);
	}
	if ((conns = calloc((size_t)opt.conns + 1, sizeof(*conns))) == NULL ||
	    (rb = malloc(RBUF_SIZE)) == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("sioload");
		return 2;
	}
	for (long i = 0; i <= opt.conns; i++)
		conns[i].fd = -1;

	sadd(&out, "{\"port\":%d,\"conns\":%ld,", opt.port, opt.conns);
	snap_start(opt.snapshot);
	connect_phase(&out);
	if (opt.idle > 0)
		idle_phase(&out);
	if (opt.publish) {
		int64_t stop = now_ns() + (int64_t)(opt.connect_timeout * 1e9);
		pubc = &conns[opt.conns];
		pubc->pub = true;
		conn_start(pubc);
		while (pubc->state != S_READY && pubc->state != S_DEAD && now_ns() < stop)
			poll_once(stop);
		sadd(&out, ",\"phases\":[");
		if (pubc->state != S_READY) {
			note("the publisher did not connect");
			conn_close(pubc);
		} else {
			if (opt.window > 0)
				publish_phase(&out, "sat", opt.window, 0, true);
			if (opt.mps > 0 && pubc->state == S_READY)
				publish_phase(&out, "rate", 0, opt.mps, opt.window == 0);
		}
		sadd(&out, "]");
	}
	snap_stop();
	sadd(&out, ",\"closed_after_join\":%ld,\"errors\":{\"server_close\":%" PRIu64 ",\"protocol\":%"
	    PRIu64 ",\"io\":%" PRIu64 ",\"refused_503\":%" PRIu64 ",\"connect\":%" PRIu64 ","
	    "\"timeout\":%" PRIu64 ",\"publish_acks_not_ok\":%" PRIu64 ",\"unexpected\":%" PRIu64
	    ",\"binary\":%" PRIu64 "},\"pings\":%" PRIu64 ",\"first_error\":",
	    closed_after_join, err.server_close, err.proto, err.io, err.refused, err.connect_error,
	    err.timeout, err.publish_errors, err.unexpected, err.binary, err.pings);
	sadd_json_string(&out, err.first);
	sadd(&out, ",\"secs\":%.3f}", (double)(now_ns() - t0) / 1e9);
	puts(out.p);
	fflush(stdout);
	free(out.p);
	return joined == opt.conns ? 0 : 1;
}
