/*
 * The master: binds the sockets, forks and supervises the workers, and
 * reacts to signals. It never serves a request.
 */
#ifndef CLUSTERD_MASTER_H
#define CLUSTERD_MASTER_H

#include "conf/config.h"

/*
 * Reads path (conf/) and resolves its routes to their services (svc/):
 * a config ready to run, or NULL with "file: key: problem" in err.
 */
struct config *master_load_config(const char *path, const struct config_overrides *ov,
    char *err, size_t errlen);
/* Takes ownership of cfg; returns the process exit status. */
int master_run(struct config *cfg, const struct config_overrides *ov);

#endif
