/*
 * log: the daemon's diagnostics, in the manner of OpenSMTPD's log.c.
 *
 * Leaf modules return -errno and let their caller log once. No function here
 * may ever be handed a secret value, token or key: callers pass names and
 * references only.
 */
#ifndef SECRETSFS_LOG_H
#define SECRETSFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/* Where log lines go. stderr is the default; syslog when daemonised. */
void log_init(const char *progname, bool debug, bool to_syslog);
/* In a child process: name it in every line, "progname[proc]". */
void log_procinit(const char *proc);
void log_set_stderr(bool on);
bool log_to_syslog(void);
void log_set_relay(int fd);
bool log_detach_keeps_stderr(void);
void log_detach(void);
void log_set_debug(bool debug);
bool log_debug_enabled(void);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Only before the mount, or when an invariant is broken: log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
