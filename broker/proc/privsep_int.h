/*
 * The protocol between the FUSE process (privsep.c) and the privileged
 * helper (priv.c): typed messages on a socketpair (wire.h), descriptors
 * passed alongside.
 */
#ifndef SECRETSFS_PRIVSEP_INT_H
#define SECRETSFS_PRIVSEP_INT_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

enum priv_msg {
	/* FUSE process -> helper */
	PRIV_MOUNT = 100,	/* mountpoint, allow_other */
	PRIV_SERVING,		/* the loop runs: repair dead binds */
	PRIV_UNMOUNT,
	/* helper -> FUSE process */
	PRIV_MOUNTED,		/* errno, message; the /dev/fuse fd rides along */
	PRIV_UNMOUNTED,		/* errno */
	PRIV_FETCHER,		/* pid; its socket rides along */
	PRIV_FETCHER_EXIT,	/* pid, wait status, ms until the next one */
	PRIV_REPAIRED,		/* a repair_result */
};

#define MSG_MAX		(3 * PATH_MAX + 256)

/*
 * The helper's life, in the child privsep_start forked: serve the FUSE
 * process on fd, start (and restart) fetchers as uid/gid with an arena
 * of locked_bytes, until fd closes. Never returns.
 */
void priv_main(int fd, uid_t uid, gid_t gid, size_t locked_bytes)
    __attribute__((noreturn));

#endif
