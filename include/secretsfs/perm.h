/*
 * perm: a file's mode, owner and group applied to a caller, as the
 * kernel's generic_permission(9) does for a mount with
 * default_permissions, so that the daemon can refuse (and record) what
 * the kernel used to refuse without telling it.
 *
 * The caller is the FUSE request's fsuid and fsgid plus what only
 * /proc/<pid>/status has: the supplementary groups (Groups:) and the
 * effective capabilities (CapEff:). As in the kernel, a caller whose
 * effective set holds CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH reads any
 * file and searches any directory, but only when the file's owner and
 * group are mapped in its user namespace (/proc/<pid>/uid_map, gid_map):
 * root on the host, or a rootful container's root that kept the
 * capability, reads a 0400 file of uid 1000; a rootless container's
 * root, or a root that dropped the capability, does not.
 */
#ifndef SECRETSFS_PERM_H
#define SECRETSFS_PERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PERM_GROUPS_MAX	256	/* more are read as these many */
#define PERM_EXTENTS_MAX 16	/* uid_map/gid_map lines kept */

#define PERM_READ	4
#define PERM_WRITE	2
#define PERM_EXEC	1	/* search, for a directory */

struct perm_extent {
	uint32_t	inside, outside, count;
};

struct perm_cred {
	uid_t			 uid;		/* fsuid */
	gid_t			 gid;		/* fsgid */
	size_t			 n_groups;
	gid_t			 groups[PERM_GROUPS_MAX];
	uint64_t		 cap_eff;
	bool			 have_proc;	/* status was read */
	bool			 maps_read;
	size_t			 n_uid_map, n_gid_map;
	struct perm_extent	 uid_map[PERM_EXTENTS_MAX];
	struct perm_extent	 gid_map[PERM_EXTENTS_MAX];
};

/*
 * The caller uid/gid with pid's groups and capabilities. A process that
 * is gone (or a /proc that cannot be read) leaves no groups and no
 * capabilities: 0 is still returned, with have_proc false.
 */
int perm_cred_read(pid_t pid, uid_t uid, gid_t gid, struct perm_cred *out);

/*
 * Whether cr may have `want` (PERM_READ, PERM_EXEC, or both) on an
 * object of mode/owner/group. 0 or -EACCES. *by_cap says the mode alone
 * refused and a capability allowed (may be NULL). pid: where to read the
 * maps when a capability must be weighed (0: the caller is taken to be
 * in the initial user namespace).
 */
int perm_check(struct perm_cred *cr, pid_t pid, mode_t mode, uid_t owner,
    gid_t group, int want, bool *by_cap);

/*
 * Whether mode/owner/group would need the caller's groups or
 * capabilities to decide (false: the request's uid and gid settle it, and
 * perm_cred_read can be skipped).
 */
bool perm_needs_cred(mode_t mode, uid_t owner, uid_t uid, int want);

/*
 * The whole check for a request: the fast path (uid and gid settle it)
 * or perm_cred_read and perm_check. 0 or -EACCES.
 */
int perm_allows(pid_t pid, uid_t uid, gid_t gid, mode_t mode, uid_t owner,
    gid_t group, int want);

#endif
