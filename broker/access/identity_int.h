/*
 * identity: what identity_parse.c gives identity_verify.c.
 */
#ifndef SECRETSFS_IDENTITY_INT_H
#define SECRETSFS_IDENTITY_INT_H

#include <secretsfs/identity.h>

/*
 * The container or pod that the part of path (c->cgroup) below the user@
 * unit at c->cgroup_user_at names, as if that unit were the root: fills
 * runtime, container_id, pod_uid and cgroup_anchor (from the start of
 * path) and clears unit. -ENOENT (c untouched) when it names none.
 */
int identity_parse_delegated(const char *path, struct caller *c);

/*
 * <root>/<pid>/<name> (root NULL: /proc) into buf, NUL-terminated: the
 * whole file (-EFBIG when it does not fit), or with head only what the
 * first read() gives. -ESRCH for a process that is gone.
 */
int identity_proc_read(const char *root, pid_t pid, const char *name,
    char *buf, size_t size, bool head);

#endif
