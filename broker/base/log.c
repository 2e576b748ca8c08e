/*
 * Diagnostics to stderr (foreground) or syslog (daemon), after OpenSMTPD's
 * log.c. Callers never pass secret values; this module cannot tell, so the
 * rule lives with them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/log.h>

#ifndef _PATH_LOG
#define _PATH_LOG	"/dev/log"
#endif

static const char *log_progname = "secretsfs";
static char log_ident[64] = "secretsfs";	/* progname[proc] in a child */
static bool log_debugging;
static bool log_daemon;		/* asked for syslog: will detach */
static bool log_syslog;		/* ... and a syslog socket answered */
static bool log_stderr_too;	/* a daemon still attached to its terminal */
static int log_relay = -1;	/* stderr lines go here instead (detaching) */

/*
 * glibc's syslog drops every line without a word when nothing listens on
 * /dev/log (a container, a minimal host): try the socket as it would.
 */
static int
syslog_reachable(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	int fd, err = ENOENT;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", _PATH_LOG);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if ((fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0)) < 0)
			return errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return 0;
		}
		err = errno;
		close(fd);
		if (err != EPROTOTYPE)
			break;
	}
	return err;
}

/*
 * A daemon (to_syslog) writes to stderr as well until it detaches, so the
 * person who started it sees why start-up failed. Without a syslog socket
 * it says so, once, and its log stays on stderr.
 */
void
log_init(const char *progname, bool debug, bool to_syslog)
{
	int err;

	log_progname = progname;
	snprintf(log_ident, sizeof(log_ident), "%s", progname);
	log_debugging = debug;
	log_daemon = to_syslog;
	log_syslog = false;
	log_stderr_too = to_syslog;
	if (!to_syslog)
		return;
	if ((err = syslog_reachable()) != 0) {
		fprintf(stderr, "%s: no syslog socket at %s (%s): logging to "
		    "stderr\n", log_ident, _PATH_LOG, strerror(err));
		return;
	}
	log_syslog = true;
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

bool
log_to_syslog(void)
{
	return log_syslog;
}

/*
 * A daemon between its fork and serving: what it would print goes down
 * the readiness pipe, and the process the person started prints it. -1
 * stops that.
 */
void
log_set_relay(int fd)
{
	log_relay = fd;
}

/*
 * A process of the family other than the FUSE process says which one it
 * is in every line, as OpenSMTPD's log_procinit: "secretsfs[fetch]". Call
 * it first thing in the new process, before its sandbox is installed:
 * openlog connects to syslog here.
 */
void
log_procinit(const char *proc)
{
	snprintf(log_ident, sizeof(log_ident), "%s[%s]", log_progname, proc);
	if (log_syslog) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

/*
 * A daemon that has not detached yet also writes to stderr, so that the
 * person who started it sees why start-up failed.
 */
void
log_set_stderr(bool on)
{
	log_stderr_too = on;
}

/*
 * Without syslog, would stderr take the daemon's log for its whole life
 * without holding anyone up? A terminal or a file does; a pipe or a
 * socket is someone (a shell's $(...), a test) reading until EOF, who
 * would wait for the daemon's exit.
 */
bool
log_detach_keeps_stderr(void)
{
	struct stat st;

	if (log_syslog || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return S_ISCHR(st.st_mode) || S_ISREG(st.st_mode);
}

/*
 * A daemon lets go of the terminal it was started from: stdio to
 * /dev/null, the log to syslog alone (or to a stderr that holds no one
 * up, with no syslog). Each process of the family does it for itself,
 * or the shell that started us would wait on their copies. Nothing to do
 * in the foreground.
 */
void
log_detach(void)
{
	bool keep = log_detach_keeps_stderr();
	int fd;

	log_relay = -1;
	if (!log_daemon)
		return;
	log_stderr_too = false;
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (!keep)
		dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

void
log_set_debug(bool debug)
{
	log_debugging = debug;
}

bool
log_debug_enabled(void)
{
	return log_debugging;
}

static void
vlog(int pri, const char *fmt, va_list ap, const char *suffix)
{
	char msg[1024], line[1280];
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		if (suffix)
			syslog(pri, "%s: %s", msg, suffix);
		else
			syslog(pri, "%s", msg);
		if (!log_stderr_too && log_relay < 0)
			return;
	}
	if (suffix)
		n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_ident, msg,
		    suffix);
	else
		n = snprintf(line, sizeof(line), "%s: %s\n", log_ident, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* One write per line (under PIPE_BUF) so threads do not interleave. */
	if (log_relay >= 0) {
		if (write(log_relay, line, n) == n)
			return;
	}
	fputs(line, stderr);
}

void
log_warn(const char *fmt, ...)
{
	char ebuf[128];
	int saved = errno;
	va_list ap;

	/* GNU strerror_r may return a static string rather than fill ebuf. */
	const char *es = strerror_r(saved, ebuf, sizeof(ebuf));
	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, es);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debugging)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	char ebuf[128];
	int saved = errno;
	va_list ap;

	const char *es = strerror_r(saved, ebuf, sizeof(ebuf));
	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, es);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
