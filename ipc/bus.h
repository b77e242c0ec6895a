/*
 * The bus: what a service sends to its peers in the master's other workers
 * (a socketio broadcast). Each worker has one SOCK_STREAM socketpair with
 * the master besides its IPC one; the master relays every frame it reads
 * from one worker to all the others, in order, and looks at nothing inside.
 *
 *   frame = 4-byte big-endian length of the rest, flags (1 byte), topic, NUL, body
 *
 * With BUS_ECHO the master sends the frame back to its sender too, after
 * it has queued it for every other worker: the frames of all workers then
 * reach all of them in one order, the master's (a total order, which an
 * HTTP client that publishes through several workers in turn relies on).
 *
 * Neither side ever blocks on the other: each destination has a queue of
 * at most BUS_MAX_QUEUED bytes, and a frame that does not fit is dropped,
 * counted and logged once per episode. A hung worker is the supervisor's
 * to replace, not a reason for the master to stop.
 */
#ifndef CLUSTERD_BUS_H
#define CLUSTERD_BUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <event2/event.h>

#define BUS_MAX_FRAME (80u * 1024 * 1024)    /* topic and body: over any max_payload_bytes */
#define BUS_MAX_QUEUED (96u * 1024 * 1024)   /* per destination */
#define BUS_MAX_TOPIC 256
#define BUS_ECHO 0x01                        /* back to the sender too */

/* A bus endpoint: a worker's, or the master's end of one worker's pair. */
struct bus_end;

/* A frame arrived: topic and body borrowed until return. */
typedef void (*bus_recv_cb)(void *arg, const char *topic, const unsigned char *body,
    size_t len);

/* Creates the socketpair (both ends close-on-exec, non-blocking). */
int bus_pair(int fds[2]);

/* An endpoint on fd, which it owns (closed on failure too); cb gets every frame. */
struct bus_end *bus_end_new(struct event_base *base, int fd, bus_recv_cb cb, void *arg);
void bus_end_free(struct bus_end *e);
/*
 * Queues one frame (topic, then the iovecs, gathered). 0, or -1 when it
 * is too big or the queue is full (the frame is dropped and counted).
 */
int bus_end_send(struct bus_end *e, int flags, const char *topic, const struct iovec *iov,
    int iovcnt);
/* The same with a frame as read, length prefix included: what the master relays. */
int bus_end_forward(struct bus_end *e, const unsigned char *frame, size_t len);
/* Frames dropped on this endpoint since it was created. */
uint64_t bus_end_dropped(const struct bus_end *e);
/* Bytes waiting to be written. */
size_t bus_end_queued(const struct bus_end *e);

/*
 * The master's endpoint: its callback gets each frame whole, length
 * prefix included, to forward as it is; bus_frame_flags() reads its flags.
 */
struct bus_end *bus_relay_new(struct event_base *base, int fd,
    void (*cb)(void *arg, const unsigned char *frame, size_t len), void *arg);
int bus_frame_flags(const unsigned char *frame);

#endif
