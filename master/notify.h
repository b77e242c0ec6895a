/*
 * The systemd notify protocol, spoken directly: one datagram per state
 * change to the AF_UNIX socket named in $NOTIFY_SOCKET ("@name" for the
 * abstract namespace). Without $NOTIFY_SOCKET every call is a no-op.
 */
#ifndef CLUSTERD_NOTIFY_H
#define CLUSTERD_NOTIFY_H

#include <stdint.h>

/* Reads the environment; 0, or -1 if $NOTIFY_SOCKET is set but unusable. */
int notify_init(void);
void notify_close(void);
/* Sends "KEY=value\n..." lines as one datagram. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog period in microseconds ($WATCHDOG_USEC for us), or 0. */
uint64_t notify_watchdog_usec(void);

#endif
