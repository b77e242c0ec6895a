/*
 * The files a config names (error_log, access_log, pid_file), checked when
 * the config is read (-t, start, reload): a path whose directory is missing
 * or not writable would otherwise pass the check and fail later, in every
 * worker or at the next start.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "master/paths.h"

/* 0, or -1 with why: path can be written, or created in its directory. */
static int
writable(const char *path, char *why, size_t len)
{
	char dir[4096];
	const char *slash;
	struct stat st;

	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			snprintf(why, len, "%s is a directory", path);
			return -1;
		}
		if (access(path, W_OK) == -1) {
			snprintf(why, len, "%s cannot be written: %s", path, strerror(errno));
			return -1;
		}
		return 0;
	}
	if ((slash = strrchr(path, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (stat(dir, &st) == -1) {
		snprintf(why, len, "cannot create %s: %s: %s", path, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, len, "cannot create %s: %s is not a directory", path, dir);
		return -1;
	}
	if (access(dir, W_OK | X_OK) == -1) {
		snprintf(why, len, "cannot create %s: %s: %s", path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
paths_check(const struct config *cfg, char *err, size_t errlen)
{
	const struct { const char *key, *path; } files[] = {
		{ "error_log", strcmp(cfg->error_log, "stderr") == 0 ? NULL : cfg->error_log },
		{ "access_log", strcmp(cfg->access_log, "off") == 0 ||
		    strcmp(cfg->access_log, "stderr") == 0 ? NULL : cfg->access_log },
		{ "pid_file", cfg->pid_file },
	};
	char why[4400];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].path != NULL && writable(files[i].path, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "%s: %s: %s", cfg->path, files[i].key, why);
			return -1;
		}
	}
	return 0;
}
