/* The files a config names, checked when it is read. */
#ifndef CLUSTERD_MASTER_PATHS_H
#define CLUSTERD_MASTER_PATHS_H

#include <stddef.h>

#include "conf/config.h"

/* 0, or -1 with err naming the config file, the key and the problem. */
int paths_check(const struct config *cfg, char *err, size_t errlen);

#endif
