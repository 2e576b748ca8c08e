/*
 * notify: systemd's readiness protocol (sd_notify(3)), without libsystemd.
 *
 * With Type=notify, systemd passes NOTIFY_SOCKET (a path, or "@name" for
 * the abstract namespace) and waits for a datagram "READY=1". Later
 * datagrams say STATUS=, RELOADING=1, STOPPING=1, and WATCHDOG=1 every
 * half of WATCHDOG_USEC when the unit has WatchdogSec=. Every function
 * does nothing (and returns 0) when NOTIFY_SOCKET is not set.
 */
#ifndef SECRETSFS_NOTIFY_H
#define SECRETSFS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * The address NOTIFY_SOCKET names: an absolute path, or "@name" for
 * the abstract namespace ('@' becomes the leading NUL). 0 with *sa and
 * *len filled, or -EINVAL (empty, relative, too long). Pure.
 */
int notify_parse_address(const char *env, struct sockaddr_un *sa,
    socklen_t *len);

/*
 * Send one datagram of newline-separated assignments, e.g.
 * "READY=1\nSTATUS=serving 3 secrets". 1 when sent, 0 when NOTIFY_SOCKET
 * is unset, -errno on failure.
 */
int notify_send(const char *state);
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The watchdog interval WATCHDOG_USEC asks for, in microseconds, when
 * WATCHDOG_PID is unset or names this process; 0 otherwise. Pure but for
 * getenv/getpid.
 */
uint64_t notify_watchdog_usec(void);

/*
 * Send WATCHDOG=1 every half interval from a thread of its own, as long
 * as alive(arg) says so (a hung daemon must stop petting the watchdog).
 * 0 (also when no watchdog is asked for) or -errno.
 */
int notify_watchdog_start(bool (*alive)(void *), void *arg);
void notify_watchdog_stop(void);

#endif
