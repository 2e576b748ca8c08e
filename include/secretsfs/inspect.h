/*
 * inspect: what `secretsfs explain` adds to the rules' answer, so that a
 * pre-rollout check is not a false green: whether the file's mode lets
 * the process read what a rule allows (perm.h, the check the daemon
 * makes at open), and whether the process sees a live bind of the mount
 * at all.
 */
#ifndef SECRETSFS_INSPECT_H
#define SECRETSFS_INSPECT_H

#include <stdio.h>
#include <sys/types.h>

struct caller;
struct config;

/*
 * The table of secrets: NAME, ACCESS (allow, deny, or EACCES when a rule
 * allows but the mode refuses), RULE, and for EACCES the reason:
 * `allow by rule X, but EACCES: mode 0440 root:1500, caller
 * 10001:10001`. The caller's groups and capabilities are pid's.
 */
void inspect_table(FILE *out, const struct config *cfg,
    const struct caller *c, pid_t pid);

/*
 * Whether pid sees the mount served at mountpoint: prints "  mount
 * TARGET: a live bind of MOUNTPOINT" on out, or warns (log.h) about a
 * process that sees no bind (started before the broker, or bound
 * without rslave) or only a dead one. 0 when it sees a live bind,
 * -ENOENT otherwise.
 */
int inspect_mount_view(FILE *out, pid_t pid, const char *mountpoint);

#endif
