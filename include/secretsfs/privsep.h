/*
 * privsep: secretsfs's three processes, after OpenSMTPD.
 *
 *   the FUSE process   serves the mount, decides, audits. After start-up
 *                      it keeps uid 0 (its config, audit directory and key
 *                      are root's files) but no capability except CAP_KILL
 *                      (on_rotate signals) and CAP_IPC_LOCK (locked
 *                      buffers beyond RLIMIT_MEMLOCK), with no_new_privs and a
 *                      seccomp allow-list. It holds no backend credential
 *                      and opens no network connection.
 *   the fetcher        talks to the backends (fetch.c): runs as the
 *                      unprivileged privsep.user with CAP_IPC_LOCK alone,
 *                      its own allow-list. Restarted with backoff if it dies.
 *   the privileged     a small root process forked first. It mounts
 *   helper             (/dev/fuse and mount(2), the descriptor is passed
 *                      over), repairs dead binds in containers, starts and
 *                      restarts the fetcher, and unmounts at stop. It reads
 *                      only fixed messages from the FUSE process.
 *
 * Everything here is called from the FUSE process (privsep.c); the
 * helper itself is priv.c.
 */
#ifndef SECRETSFS_PRIVSEP_H
#define SECRETSFS_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <secretsfs/cfg.h>
#include <secretsfs/repair.h>

/* What the FUSE process is told about the helper's work. */
struct privsep_hooks {
	/* A dead bind repaired, or not (repair.h). */
	void	(*repaired)(void *arg, const struct repair_result *res);
	/*
	 * The fetcher exited (status as from waitpid, restart_ms until the
	 * next one) or a new one started (status 0).
	 */
	void	(*fetcher)(void *arg, bool started, pid_t pid, int status,
		    unsigned restart_ms);
	void	*arg;
};

/*
 * Fork the privileged helper and, through it, the first fetcher, and
 * route this process's backends to it. Call with one thread, before the
 * locked arena exists. cfg is freed in the children, not here. own_fd
 * (or -1) is this process's alone, closed in the helper: the readiness
 * pipe of a daemon that has not detached yet. 0, or -errno with errbuf
 * filled (an unknown privsep.user, a fork failure).
 */
int privsep_start(struct config *cfg, int own_fd, char *errbuf,
    size_t errlen);

/*
 * Give up this process's privileges: every capability but CAP_KILL and
 * CAP_IPC_LOCK, no_new_privs. One thread only, after secmem_init. 0 or
 * -errno.
 */
int privsep_drop(void);

/*
 * The FUSE process's seccomp allow-list, all threads; with kubelet, the
 * network families the kubelet client needs (SANDBOX_FUSE_KUBELET).
 */
int privsep_sandbox(bool kubelet, char *errbuf, size_t errlen);

/*
 * Have the helper clear a dead mount at mp, refuse a live one (-EBUSY),
 * and mount secretsfs there; *fd is the /dev/fuse descriptor to serve.
 * Before privsep_start_reader.
 */
int privsep_mount(const char *mp, bool allow_other, int *fd, char *errbuf,
    size_t errlen);

/* Start taking the helper's reports and the fetcher's replies in a thread. */
int privsep_start_reader(const struct privsep_hooks *hooks);

/* The loop is about to serve: the helper repairs dead binds now. */
void privsep_serving(void);

/* Stop the reader, unmount, let the helper and fetcher exit. */
void privsep_stop(bool unmount);

/* The pids of the helper and the current fetcher (0 if none). */
pid_t privsep_helper_pid(void);

#endif
