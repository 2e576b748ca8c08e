/*
 * fs: the FUSE low-level adapter. The only module that includes libfuse.
 */
#ifndef SECRETSFS_FS_H
#define SECRETSFS_FS_H

#include <stdbool.h>

#include <secretsfs/broker.h>

struct fs_options {
	const char	*mountpoint;
	bool		 foreground;
	bool		 debug;		/* libfuse's own request trace */
	bool		 allow_other;
	/*
	 * Without -f: written (one zero byte) once the mount serves, which
	 * lets the process that started us exit 0; stdio then goes to
	 * /dev/null. -1 in the foreground.
	 */
	int		 ready_fd;
};

/*
 * Mount, serve until SIGTERM/SIGINT (or an unmount), unmount. A stale
 * mount of a dead daemon at the mountpoint is cleared first. While
 * serving: the broker's refresh threads run, the control socket
 * (control.h) answers, SIGHUP reloads the config and reopens the audit
 * file, and systemd is told READY=1 (notify.h) once the mount is live.
 * Inode numbers stay the same for a name across reloads. Returns 0 on a
 * clean stop, -errno when the mount failed (logged). The broker stays
 * the caller's.
 */
int fs_run(struct broker *b, const struct fs_options *opt);

#endif
