/*
 * The master's status socket, for `clusterd -s status`: an abstract AF_UNIX
 * socket named after the master's pid, answering one JSON document per
 * connection to the master's own user and root (SO_PEERCRED), and a refusal
 * to anyone else.
 */
#ifndef CLUSTERD_CONTROL_H
#define CLUSTERD_CONTROL_H

#include <stddef.h>
#include <sys/types.h>

#include <event2/event.h>
#include <json-c/json.h>

/* Listens on the status socket of this process; status() builds the answer. */
int control_open(struct event_base *base, json_object *(*status)(void));
void control_close(void);
/*
 * The client: the status document of the master pid, as text, into a
 * malloc'd string (*out); 0, or -1 with err.
 */
int control_query(pid_t pid, char **out, char *err, size_t errlen);

#endif
