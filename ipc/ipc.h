/*
 * Master <-> worker messages. Each worker has one SOCK_SEQPACKET socketpair
 * with the master, so every message keeps its boundaries; a message is one
 * JSON object with a "type". The codec is separate from the transport so
 * that malformed input can be tested without sockets, and driven by one
 * table in ipc.c: a new message is an enum value, its struct in the union
 * below and one entry in that table.
 *
 *   worker -> master  {"type":"ready","pid":N,"slot":N,"generation":N}
 *   worker -> master  {"type":"stats","pid":N,"requests":N,"in_flight":N,"connections":N}
 *                     every heartbeat_interval_ms, from the worker's loop: its heartbeat
 *   worker -> master  {"type":"failed","pid":N,"reason":"..."}   it cannot get ready,
 *                                        and exits: why, for the master to report
 *   master -> worker  {"type":"shutdown","mode":"graceful"|"fast"}
 *   master -> worker  {"type":"reopen"}
 *   master -> worker  {"type":"drain"}   a graceful stop begins: fail health checks,
 *                                        close keep-alive connections, keep serving
 *   master -> worker  {"type":"adopt","slot":N}   with the slot's listening sockets
 *                     (SCM_RIGHTS): its worker is gone, accept on them too
 *   master -> worker  {"type":"release","slot":N}   its new worker is ready: stop
 */
#ifndef CLUSTERD_IPC_H
#define CLUSTERD_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_MAX_MSG 4096        /* larger messages are rejected */

enum ipc_type {
	IPC_READY = 1,
	IPC_STATS,
	IPC_SHUTDOWN,
	IPC_REOPEN,
	IPC_DRAIN,
	IPC_FAILED,
	IPC_ADOPT,
	IPC_RELEASE,
};

#define IPC_MAX_FDS 64          /* descriptors passed with one message: a slot's sockets */

#define IPC_REASON_MAX 512

enum ipc_shutdown_mode { IPC_SHUTDOWN_GRACEFUL, IPC_SHUTDOWN_FAST };

struct ipc_msg {
	enum ipc_type type;
	union {
		struct { int64_t pid, slot, generation; } ready;
		struct { int64_t pid, requests, in_flight, connections; } stats;
		struct { enum ipc_shutdown_mode mode; } shutdown;
		struct { int64_t pid; char reason[IPC_REASON_MAX]; } failed;
		struct { int64_t slot; } adopt, release;
	} u;
};

/* Encodes msg into buf; returns the length, or -1 if it does not fit. */
int ipc_encode(const struct ipc_msg *msg, char *buf, size_t len);
/* Decodes and validates; returns 0, or -1 with the reason in err. */
int ipc_decode(const char *buf, size_t len, struct ipc_msg *msg,
    char *err, size_t errlen);
const char *ipc_type_name(enum ipc_type type);

/* Creates the socketpair (both ends close-on-exec). */
int ipc_pair(int fds[2]);
/* Sends one message; returns 0 or -1 (errno set). Never blocks. */
int ipc_send(int fd, const struct ipc_msg *msg);
/* The same with descriptors (SCM_RIGHTS), which the receiver gets copies of. */
int ipc_send_fds(int fd, const struct ipc_msg *msg, const int *fds, size_t nfds);
/*
 * Receives one message. Returns 1 on a message, 0 on end of file,
 * -1 with errno EAGAIN when nothing is waiting, or -1 with errno EBADMSG
 * and a reason in err when the peer sent something malformed.
 */
int ipc_recv(int fd, struct ipc_msg *msg, char *err, size_t errlen);
/*
 * The same, keeping up to IPC_MAX_FDS descriptors that came with the
 * message (close-on-exec) in fds, their number in *nfds; the caller owns
 * them, whatever the return.
 */
int ipc_recv_fds(int fd, struct ipc_msg *msg, int *fds, size_t *nfds, char *err,
    size_t errlen);

#endif
