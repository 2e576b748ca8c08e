/*
 * fs: the FUSE low-level adapter. The only module that includes libfuse.
 *
 * Its session serves the mount the daemon (daemon.h) has the privileged
 * helper make: inode numbers stay the same for a name across reloads,
 * and a new version of a secret in the cache invalidates what the kernel
 * holds of it.
 */
#ifndef SECRETSFS_FS_H
#define SECRETSFS_FS_H

#include <secretsfs/daemon.h>

/* The session, as daemon_main drives it. */
extern const struct daemon_frontend fs_frontend;

#endif
