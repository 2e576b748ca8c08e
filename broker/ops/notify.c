/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list).
 *
 * The sd_notify datagram protocol: one AF_UNIX SOCK_DGRAM message per
 * call, to the address in NOTIFY_SOCKET. There is no answer to wait for,
 * so a missing or deaf systemd never blocks the daemon.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/clk.h>
#include <secretsfs/notify.h>

int
notify_parse_address(const char *env, struct sockaddr_un *sa,
    socklen_t *len)
{
	size_t n;

	if (!env || (env[0] != '/' && env[0] != '@'))
		return -EINVAL;
	n = strlen(env);
	if (n < 2 || n >= sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, env, n);
	if (env[0] == '@') {
		/* Abstract: no terminating NUL counts in the length. */
		sa->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int
notify_send(const char *state)
{
	const char *env = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t n;
	int fd, r;

	if (!env || !*env)
		return 0;
	if ((r = notify_parse_address(env, &sa, &len)) < 0)
		return r;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&sa, len);
	r = n < 0 ? -errno : 1;
	close(fd);
	return r;
}

int
notify_sendf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return notify_send(buf);
}

uint64_t
notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid;
	unsigned long long v;
	char *end;

	if (!usec || !*usec)
		return 0;
	if ((pid = getenv("WATCHDOG_PID")) && *pid &&
	    strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0)
		return 0;
	return v;
}

static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	pthread_t	 thread;
	bool		 running, stop;
	uint64_t	 usec;
	bool		(*alive)(void *);
	void		*arg;
} wd = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void *
watchdog(void *unused)
{
	struct timespec until;

	(void)unused;
	pthread_mutex_lock(&wd.lock);
	while (!wd.stop) {
		if (!wd.alive || wd.alive(wd.arg))
			notify_send("WATCHDOG=1");
		until = clk_deadline(CLOCK_REALTIME, (int64_t)(wd.usec / 2000));
		pthread_cond_timedwait(&wd.cond, &wd.lock, &until);
	}
	pthread_mutex_unlock(&wd.lock);
	return NULL;
}

int
notify_watchdog_start(bool (*alive)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	if (!getenv("NOTIFY_SOCKET") || !(wd.usec = notify_watchdog_usec()))
		return 0;
	wd.alive = alive;
	wd.arg = arg;
	wd.stop = false;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&wd.thread, NULL, watchdog, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	wd.running = true;
	return 0;
}

void
notify_watchdog_stop(void)
{
	if (!wd.running)
		return;
	pthread_mutex_lock(&wd.lock);
	wd.stop = true;
	pthread_cond_broadcast(&wd.cond);
	pthread_mutex_unlock(&wd.lock);
	pthread_join(wd.thread, NULL);
	wd.running = false;
}
