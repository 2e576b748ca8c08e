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
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/log.h>

static const char *log_progname = "secretsfs";
static char log_ident[64] = "secretsfs";	/* progname[proc] in a child */
static bool log_debugging;
static bool log_syslog;
static bool log_stderr_too;	/* a daemon still attached to its terminal */

void
log_init(const char *progname, bool debug, bool to_syslog)
{
	log_progname = progname;
	snprintf(log_ident, sizeof(log_ident), "%s", progname);
	log_debugging = debug;
	log_syslog = to_syslog;
	if (to_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
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
 * A daemon lets go of the terminal it was started from: stdio to
 * /dev/null, the log to syslog alone. Each process of the family does it
 * for itself, or the shell that started us would wait on their copies.
 * Nothing to do in the foreground.
 */
void
log_detach(void)
{
	int fd;

	if (!log_syslog)
		return;
	log_stderr_too = false;
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
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
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_syslog) {
		if (suffix)
			syslog(pri, "%s: %s", msg, suffix);
		else
			syslog(pri, "%s", msg);
		if (!log_stderr_too)
			return;
	}
	/* One fprintf per line so concurrent threads do not interleave. */
	if (suffix)
		fprintf(stderr, "%s: %s: %s\n", log_ident, msg, suffix);
	else
		fprintf(stderr, "%s: %s\n", log_ident, msg);
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
