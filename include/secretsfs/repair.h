/*
 * repair: give the containers of a dead daemon their mount back.
 *
 * When a FUSE daemon dies, every bind of its mount answers ENOTCONN for
 * good, in every mount namespace holding one. Mounting afresh on the host
 * does not reach a container's bind: that bind is its own mount of the
 * dead superblock, in the container's namespace. So after the new mount
 * is live, for each dead bind of it:
 *
 *   1. in a forked, single-threaded child (setns(CLONE_NEWNS) refuses a
 *      process whose filesystem context other threads share), take a
 *      detached clone of the live mount, open_tree(OPEN_TREE_CLONE), and
 *      make it ro,nosuid,nodev,noexec with mount_setattr();
 *   2. setns() into the container's mount namespace (/proc/<pid>/ns/mnt);
 *   3. umount2(MNT_DETACH) the dead mount and move_mount() the clone in its
 *      place. The container's next open() reaches the new daemon.
 *
 * Finding them: every mount namespace is scanned once, through the first
 * process in it (/proc/<pid>/mountinfo, fstype "fuse.secretsfs"). A mount
 * is dead when stat(2) of it, through /proc/<pid>/root, gives ENOTCONN.
 * Paths inside a container are the container's to change: they are
 * resolved beneath its root with no symbolic link followed.
 *
 * Whose is a dead mount? Only one whose daemon served our mountpoint may
 * be replaced, or a container would get another configuration's mount:
 *
 *   - its source (the FUSE fsname) is "secretsfs:<our mountpoint>", as
 *     repair_fsname() makes it; any other "secretsfs:<path>" is not ours;
 *   - or it is unnamed (source "secretsfs") and its device is the one that
 *     was dead at our mountpoint when repair_new() looked, before the
 *     stale mount was cleared;
 *   - or it is unnamed, its device is not mounted at another mountpoint
 *     here, and the operator named a process of its namespace
 *     (repair_add_pid(), `secretsfs repair --pid`).
 *
 * A bind of a subdirectory of the mount (a directory secret bound on its
 * own) cannot be rebuilt, since the daemon itself may not look names up:
 * it is reported with EOPNOTSUPP.
 *
 * Publishing: a daemon that runs in a mount namespace of its own (systemd's
 * ProtectSystem= and friends make one, cut off from the host's) mounts
 * where the host does not look. The same clone-and-move puts its mount at
 * the same path in the namespace of the process that started it.
 *
 * Needs CAP_SYS_ADMIN (mounts, setns), CAP_SYS_CHROOT (setns into a mount
 * namespace) and CAP_SYS_PTRACE (/proc/<pid>/ns and root of processes
 * whose capabilities are not a subset of ours). Plain C: no libfuse.
 */
#ifndef SECRETSFS_REPAIR_H
#define SECRETSFS_REPAIR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REPAIR_FSTYPE	"fuse.secretsfs"
#define REPAIR_FSNAME	"secretsfs"

/* One line of /proc/<pid>/mountinfo, octal escapes decoded. */
struct repair_mountinfo {
	int		 mnt_id;
	int		 parent_id;
	unsigned	 major, minor;		/* the superblock's device */
	char		 root[PATH_MAX];	/* root of the mount in its fs */
	char		 target[PATH_MAX];	/* mount point, relative to the
						   reading process's root */
	char		 options[256];		/* per-mount options */
	char		 fstype[64];
	char		 source[PATH_MAX];
};

/*
 * Parse one line (a trailing "\n" is fine). \040 (space), \011 (tab),
 * \012 (newline) and \134 (backslash), as the kernel writes them, are
 * decoded. Optional fields (shared:N, master:N...) are skipped. Returns 0,
 * -EINVAL for a malformed line or escape, -ENAMETOOLONG when a field does
 * not fit in *out.
 */
int repair_parse_mountinfo(const char *line, struct repair_mountinfo *out);

/* fstype is "fuse.secretsfs". */
bool repair_is_secretsfs(const struct repair_mountinfo *mi);

/*
 * The fsname to mount with so that every bind of the mount says whose it
 * is: "secretsfs:" + mountpoint, mountpoint absolute and canonical (as
 * realpath(3) gives it). Written into buf (NUL-terminated). -EINVAL for a
 * relative path or one holding a ',' or '\\' (they would split libfuse's
 * option string): mount with plain REPAIR_FSNAME then. -ENAMETOOLONG.
 */
int repair_fsname(const char *mountpoint, char *buf, size_t len);

enum repair_owner {
	REPAIR_OWNER_OURS = 0,	/* "secretsfs:<mountpoint>" */
	REPAIR_OWNER_OTHER,	/* "secretsfs:<another path>", or not ours at all */
	REPAIR_OWNER_UNNAMED,	/* plain "secretsfs" (older daemons) */
};

/* Whose mount a source string says it is; mountpoint canonical. */
enum repair_owner repair_owner(const char *source, const char *mountpoint);

/* One dead mount found, and what became of it. Valid for the call only. */
struct repair_result {
	pid_t		 pid;		/* the process the namespace was seen through */
	uid_t		 uid;		/* its ids, as FUSE would see them */
	gid_t		 gid;
	uint64_t	 mntns;		/* inode of the mount namespace */
	const char	*comm;
	const char	*target;	/* the mount point, as pid sees it */
	int		 err;		/* 0: repaired; else a positive errno */
	const char	*step;		/* NULL, or what failed (fixed text) */
};

/*
 * Called once per dead mount of ours, after the attempt (the daemon
 * writes its audit record here). Runs in the thread that repairs.
 */
typedef void (*repair_fn)(void *arg, const struct repair_result *res);

struct repair_stats {
	unsigned	namespaces;	/* mount namespaces scanned */
	unsigned	found;		/* dead mounts of ours */
	unsigned	repaired;
	unsigned	failed;		/* repairs and publishing that failed */
	unsigned	published;	/* 1 when the mount was put into the
					   parent's mount namespace */
	unsigned	foreign;	/* dead secretsfs mounts left alone: not ours,
					   or not known to be */
};

struct repair;

/*
 * Start a repair of the binds of mountpoint. Call it BEFORE a dead mount
 * at mountpoint is cleared: it notes that mount's device, to know its
 * binds in containers afterwards (stat(2)s mountpoint; a mount served by
 * a live daemon answers it). NULL on OOM or when mountpoint cannot be
 * resolved (errno set).
 */
struct repair *repair_new(const char *mountpoint);

/* The operator says the dead unnamed mounts in pid's namespace are ours. */
int repair_add_pid(struct repair *rp, pid_t pid);

/* NULL is fine. */
void repair_free(struct repair *rp);

/*
 * Find the dead mounts of ours in every mount namespace and put the live
 * mount at mountpoint in their place, now, in this thread; each is logged
 * and handed to fn (may be NULL). First, when this process runs in a
 * mount namespace other than its parent's (PID 1 under systemd) and the
 * live mount is not visible there (systemd's ProtectSystem=, PrivateTmp=,
 * ReadWritePaths=... make such a namespace, and cut propagation to the
 * host), a clone of it is published at the same path in the parent's
 * namespace, replacing a dead secretsfs mount there; that is logged and
 * handed to fn too (with the parent's pid). The live mount must be served by a
 * running daemon other than this thread. Returns the number repaired,
 * -ENOTCONN when no live secretsfs mount is at mountpoint, or -errno.
 * *st (may be NULL) gets the counts.
 */
int repair_run(struct repair *rp, repair_fn fn, void *arg,
    struct repair_stats *st);

/*
 * The process whose mount namespace the mount is published into, when it
 * is not our parent's (the privileged helper publishes for the FUSE
 * process, whose parent started the daemon).
 */
void repair_set_origin(struct repair *rp, pid_t pid);

#endif
