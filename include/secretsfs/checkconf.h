/*
 * checkconf: what `secretsfs check-config` checks beyond the document:
 * every check `mount` makes short of mounting (the files it reads, their
 * modes, the fetcher user's access to each of its own), and what can
 * never work (a rule no caller can match, an allow naming no secret).
 */
#ifndef SECRETSFS_CHECKCONF_H
#define SECRETSFS_CHECKCONF_H

#include <stddef.h>
#include <stdio.h>

struct config;

struct checkconf_result {
	unsigned	errors;		/* mount would refuse to start */
	unsigned	warnings;	/* it would start; this cannot work */
};

/*
 * Run every check on cfg (loaded by config_load), printing one line per
 * finding on out: "FILE: KEYPATH: MESSAGE" for an error, "FILE: warning:
 * KEYPATH: MESSAGE" for a warning. The fetcher's files are opened in a
 * child process that has become privsep.user, as the fetcher does (only
 * when run as root; otherwise as the caller, and a line says so).
 */
void checkconf_run(const struct config *cfg, FILE *out,
    struct checkconf_result *res);

/*
 * A directory to mount on must be empty: the kernel mounts over files
 * and hides them. 0, or -ENOTEMPTY (-errno) with a message in why.
 * Shared by the privileged helper's mount and check-config.
 */
int checkconf_mountpoint_empty(const char *mp, const char *real, char *why,
    size_t len);

#endif
