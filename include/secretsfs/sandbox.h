/*
 * sandbox: what each secretsfs process gives up once it has what it
 * needs: its user, its capabilities, new privileges, and every system
 * call outside its allow-list (seccomp, libseccomp).
 *
 * Capabilities are per thread: sandbox_drop_* must run while the process
 * has one thread. sandbox_seccomp synchronises every thread.
 */
#ifndef SECRETSFS_SANDBOX_H
#define SECRETSFS_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum sandbox_role {
	SANDBOX_FUSE,		/* serves the mount, audits, reads /proc */
	SANDBOX_FETCHER,	/* talks to the backends */
	/*
	 * SANDBOX_FUSE, and TCP/UDP over IPv4 and IPv6 and netlink (the
	 * resolver) besides Unix sockets: runtime.kubelet asks the kubelet
	 * from the process that identifies callers. Only with a kubelet.
	 */
	SANDBOX_FUSE_KUBELET,
};

/*
 * Look up a user for a later sandbox_drop_user; 0, or -ENOENT with a
 * message in errbuf that says how to create it.
 */
int sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid,
    char *errbuf, size_t errlen);

/*
 * Become uid/gid (no supplementary groups) keeping only the capabilities
 * in keep (a mask of 1 << CAP_x) in the effective, permitted and bounding
 * sets, with PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE 0. With uid 0 the
 * other capabilities go just the same. 0 or -errno; the caller must exit
 * on failure.
 */
int sandbox_drop_user(uid_t uid, gid_t gid, uint64_t keep);

/*
 * Keep the uid, keep only the capabilities in keep (a mask of 1 << CAP_x)
 * in the effective, permitted and bounding sets, and set
 * PR_SET_NO_NEW_PRIVS. 0 or -errno.
 */
int sandbox_drop_caps(uint64_t keep);

/*
 * Install the role's allow-list, every thread included: any other system
 * call kills the whole process (SECCOMP_RET_KILL_PROCESS). 0 or -errno.
 */
int sandbox_seccomp(enum sandbox_role role, char *errbuf, size_t errlen);

#endif
