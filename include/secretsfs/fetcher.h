/*
 * fetcher: the process that talks to the backends (fetch.c), and the
 * FUSE process's side of its socketpair (fetcher.c).
 *
 * The fetcher holds the backends' credentials and their network
 * connections; the FUSE process holds neither. Backends are opened in
 * the fetcher from their config objects, sent as JSON, and used through
 * proxies that look like any other backend (backend_set_remote), so the
 * broker and the cache do not know which process fetched.
 *
 * If the fetcher dies, calls in flight fail with -EIO, later calls fail
 * at once until the privileged parent has started a new one and handed
 * its socket over (fetcher_attach), at which point the proxies' backends
 * are opened in it again.
 */
#ifndef SECRETSFS_FETCHER_H
#define SECRETSFS_FETCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <secretsfs/backend.h>

/*
 * The fetcher process's life: serve the socket fd until it closes, then
 * exit. The process has dropped its privileges and installed its
 * sandbox already. Never returns.
 */
void fetcher_serve(int fd) __attribute__((noreturn));

/*
 * The fetcher's start, in the child the privileged helper forked (with
 * none of the helper's descriptors but fd): lock an arena of
 * locked_bytes, become uid/gid with CAP_IPC_LOCK alone, install the
 * fetcher's allow-list, serve fd. Never returns.
 */
void fetcher_main(int fd, uid_t uid, gid_t gid, size_t locked_bytes)
    __attribute__((noreturn));

/* ---- In the FUSE process ---------------------------------------------- */

/*
 * Take the socket to the first fetcher (pid for the logs) and route every
 * backend_open of this process to it. Before fetcher_start_reader, calls
 * read their replies themselves (the process has one thread then).
 */
int fetcher_client_init(int fd, pid_t pid);

/*
 * From here on a reader thread takes replies and events. It also watches
 * extra_fd (the privileged helper's socket) and calls on_extra(arg) when
 * it is readable; a negative return stops that.
 */
int fetcher_start_reader(int extra_fd, int (*on_extra)(void *), void *arg);

/*
 * A new fetcher replaced a dead one (called by privsep when the parent
 * hands its socket over): open every live backend in it again.
 */
void fetcher_attach(int fd, pid_t pid);

/* The fetcher pid, or 0 while none is attached. */
pid_t fetcher_pid(void);

/* Stop the reader thread; calls then read for themselves again. */
void fetcher_stop_reader(void);

/* Stop the reader, close the socket (the fetcher then exits). */
void fetcher_client_shutdown(void);

/* The proxy operations that backend_set_remote installs. */
extern const struct backend_ops fetcher_backend_ops;

#endif
