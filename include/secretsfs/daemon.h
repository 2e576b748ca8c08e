/*
 * daemon: the life of `secretsfs mount` in the FUSE process, from a
 * loaded config to the stop.
 *
 * Start-up, in this order: detach from the terminal (without -f), fork
 * the privileged helper and the fetcher (privsep.h) while there is one
 * thread and no secret, lock the arena, give up root's capabilities,
 * open the broker, mount (through the helper) and serve. While serving,
 * the daemon's services run around the request loop: the signal thread
 * (SIGHUP reloads the config and reopens the audit file, SIGTERM and
 * SIGINT stop), the broker's refresh threads, the control socket
 * (control.h), sd_notify READY/RELOADING/STOPPING and the watchdog
 * (notify.h).
 *
 * The request loop itself is the frontend's: the FUSE adapter (fuse/fs.c)
 * implements struct daemon_frontend, so that nothing here knows libfuse.
 */
#ifndef SECRETSFS_DAEMON_H
#define SECRETSFS_DAEMON_H

#include <stdbool.h>

#include <secretsfs/broker.h>
#include <secretsfs/config.h>

/* What serves the mount, as the daemon drives it. Called in this order. */
struct daemon_frontend {
	/*
	 * A session for b, nothing mounted yet (debug: the frontend's own
	 * request trace); NULL when it cannot be made, logged.
	 */
	void	*(*open)(struct broker *b, bool debug);
	/*
	 * Serve the mount at mp whose /dev/fuse descriptor is fd (the
	 * session takes it, or closes it on failure). 0, or -errno logged.
	 */
	int	 (*attach)(void *fe, int fd, const char *mp);
	/* Start and stop passing the broker's changes on to the kernel. */
	int	 (*start)(void *fe);
	void	 (*stop)(void *fe);
	/* Serve requests until the session ends: 0, or -errno. */
	int	 (*loop)(void *fe);
	/* End the loop; from any thread. */
	void	 (*end)(void *fe);
	/* Whether the loop has ended. */
	bool	 (*ended)(void *fe);
	/* Free the session (after the unmount). NULL ok. */
	void	 (*close)(void *fe);
};

struct daemon_options {
	const char	*mountpoint;	/* may point into cfg */
	bool		 foreground;	/* -f: stay attached, log to stderr */
	bool		 debug;		/* -d */
};

/*
 * Run the daemon on cfg (taken: freed, or handed to the broker) until it
 * stops. Call from main with one thread, before anything is locked, with
 * the log set up (log_init). Returns the exit status: 0 after a clean
 * stop, 1 when start-up failed (logged).
 */
int daemon_main(struct config *cfg, const struct daemon_options *opt,
    const struct daemon_frontend *fe);

#endif
