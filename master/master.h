/*
 * The master: binds the sockets, forks and supervises the workers, and
 * reacts to signals. It never serves a request.
 */
#ifndef CLUSTERD_MASTER_H
#define CLUSTERD_MASTER_H

#include "conf/config.h"

/* Takes ownership of cfg; returns the process exit status. */
int master_run(struct config *cfg, const struct config_overrides *ov);

#endif
