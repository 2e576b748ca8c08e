/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list once it serves):
 * the daemon's start-up sequence and the services around its request
 * loop.
 *
 * Order matters: read the config (its size decides the arena, main did
 * it); fork the helper and the fetcher while there is one thread and no
 * secret; lock the arena; drop root's capabilities; open the broker; then
 * mount and serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <secretsfs/clk.h>
#include <secretsfs/control.h>
#include <secretsfs/daemon.h>
#include <secretsfs/log.h>
#include <secretsfs/metrics.h>
#include <secretsfs/notify.h>
#include <secretsfs/privsep.h>
#include <secretsfs/repair.h>
#include <secretsfs/secmem.h>

struct daemon {
	struct broker			*broker;
	const struct daemon_frontend	*fe;
	void				*fs;	/* the frontend's session */

	pthread_t			 hup;	/* the signal thread */
	pthread_t			 main_thread;	/* runs the loop */
	bool				 hup_running;
	volatile sig_atomic_t		 stopping;
};

/* ---- start-up ------------------------------------------------------- */

/*
 * Without -f: fork before anything is locked or forked for privilege
 * separation, so that the daemon, its helper and its fetcher are one
 * family and the arena is never split by a fork. The process the shell
 * started waits until the daemon serves (a 0 byte: exit 0) or dies (exit
 * 1). Until then every line the daemon logs comes down the same pipe and
 * the waiter prints it on its stderr, so an error before serving always
 * reaches the person who started it, whatever became of the daemon's own
 * stdio. Only the daemon holds the write end (privsep_start closes it in
 * the helper), but the waiter also watches the daemon's exit, which says
 * the same thing sooner.
 */
static int
detach_relay(int fd)
{
	char buf[4096];
	ssize_t n;
	char *z;

	if ((n = read(fd, buf, sizeof(buf))) < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return -1;
	if ((z = memchr(buf, 0, n)) != NULL) {
		fwrite(buf, 1, z - buf, stderr);
		fflush(stderr);
		return 1;
	}
	fwrite(buf, 1, n, stderr);
	fflush(stderr);
	return 0;
}

static int
detach_start(void)
{
	struct pollfd pfd;
	int p[2], status, r;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0) {
		log_warn("cannot detach: pipe");
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		log_warn("cannot detach: fork");
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		log_set_relay(p[1]);
		if (setsid() < 0)
			log_warn("setsid");
		return p[1];
	}
	close(p[1]);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 200) > 0) {
			if ((r = detach_relay(p[0])) != 0)
				_exit(r > 0 ? 0 : 1);
			continue;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			/* What it wrote before it died is still in the pipe. */
			fcntl(p[0], F_SETFL, O_NONBLOCK);
			while ((r = detach_relay(p[0])) == 0)
				;
			_exit(r > 0 ? 0 : 1);
		}
	}
}

/*
 * Serving: tell the process that started us, and let go of its terminal.
 * From here on the log is syslog alone; without syslog, stderr if it is
 * a terminal or a file, and nothing if it is a pipe (whose reader would
 * wait for our exit): the last line through the pipe says so.
 */
static void
detach_done(int ready_fd)
{
	const char ok = 0;

	if (!log_to_syslog() && !log_detach_keeps_stderr())
		log_warnx("no syslog and stderr is a pipe: the daemon's log "
		    "ends here; run it with -f under a supervisor, or give it "
		    "a syslog socket");
	log_detach();
	if (write(ready_fd, &ok, 1) != 1)
		log_warn("cannot tell the starting process we serve");
	close(ready_fd);
}

/* ---- the signal thread ---------------------------------------------- */

/* SIGUSR1 only interrupts the loop's wait; the handler does nothing. */
static void
wake(int sig)
{
	(void)sig;
}

/*
 * The signal thread. SIGTERM, SIGINT and SIGHUP are blocked in every
 * thread of the daemon (daemon_main blocks them before it starts any) and
 * taken here with sigwait, so no handler ever runs inside a request or
 * inside a helper thread. A handler that ran in, say, the refresh thread
 * would end the session while the loop's main thread slept on, never to
 * notice. TERM and INT end the session and wake the loop; HUP reloads
 * the config and reopens the audit file (logrotate). At stop, serve
 * sends it SIGHUP with `stopping` set.
 */
static void *
hup_thread(void *arg)
{
	struct daemon *d = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (d->stopping)
			break;
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" :
			    "SIGINT");
			d->fe->end(d->fs);
			pthread_kill(d->main_thread, SIGUSR1);
			continue;
		}
		/* systemd's Type=notify-reload wants the time of the request. */
		notify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading "
		    "%s", (unsigned long long)clk_mono_us(),
		    broker_config(d->broker)->file);
		broker_reload(d->broker);
		broker_audit_reopen(d->broker);
		/* The new config was parsed here; it may hold static keys. */
		secmem_wipe_registers();
		notify_sendf("READY=1\nSTATUS=serving %zu secrets",
		    broker_config(d->broker)->n_secrets);
	}
	return NULL;
}

static int
start_hup_thread(struct daemon *d)
{
	struct sigaction sa;
	sigset_t set;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if ((r = pthread_sigmask(SIG_BLOCK, &set, NULL)) != 0)
		return -r;
	d->main_thread = pthread_self();
	if ((r = pthread_create(&d->hup, NULL, hup_thread, d)) != 0)
		return -r;
	d->hup_running = true;
	return 0;
}

static void
stop_hup_thread(struct daemon *d)
{
	if (!d->hup_running)
		return;
	d->stopping = 1;
	pthread_kill(d->hup, SIGHUP);
	pthread_join(d->hup, NULL);
	d->hup_running = false;
}

/* ---- serving -------------------------------------------------------- */

/* The watchdog is petted only while the loop runs. */
static bool
serving(void *arg)
{
	struct daemon *d = arg;

	return !d->stopping && !d->fe->ended(d->fs);
}

/* A repaired (or unrepairable) bind of a dead mount: into the audit trail. */
static void
on_repaired(void *arg, const struct repair_result *res)
{
	broker_audit_repair(arg, res->pid, res->uid, res->gid, res->target,
	    res->err, res->step);
}

/* The fetcher died, or its successor started: into the audit trail. */
static void
on_fetcher(void *arg, bool started, pid_t pid, int status, unsigned ms)
{
	broker_audit_fetcher(arg, started, pid, status, ms);
}

/*
 * Mount, serve until SIGTERM/SIGINT (or an unmount), unmount. A stale
 * mount of a dead daemon at the mountpoint is cleared first. Returns 0 on
 * a clean stop, -errno when the mount failed (logged).
 */
static int
serve(struct daemon *d, const char *mp, bool allow_other, bool debug,
    int ready_fd)
{
	const struct daemon_frontend *fe = d->fe;
	struct broker *b = d->broker;
	/* The first config may be freed by a reload: hold it while we use it. */
	struct broker_view *v0 = broker_acquire(b);
	const struct config *cfg = broker_view_config(v0);
	struct control *ctl = NULL;
	struct metrics *mx = NULL;
	struct privsep_hooks hooks = { .repaired = on_repaired,
	    .fetcher = on_fetcher, .arg = b };
	char sock[256], why[512];
	bool mounted = false;
	int fusefd = -1;
	int r = -EIO;

	if (!(d->fs = fe->open(b, debug)))
		goto out;
	/* The helper clears a dead mount, mounts, and hands /dev/fuse over. */
	if ((r = privsep_mount(mp, allow_other, &fusefd, why,
	    sizeof(why))) < 0) {
		log_warnx("%s", why);
		goto out;
	}
	mounted = true;
	if ((r = fe->attach(d->fs, fusefd, mp)) < 0)
		goto out_unmount;
	/* A file size limit must fail the audit write (EFBIG), not kill us. */
	signal(SIGXFSZ, SIG_IGN);
	/*
	 * Before the sandbox, which lets this process create Unix sockets
	 * alone: the metrics listener's socket is bound now and only
	 * accepted on later. Asked for, so required.
	 */
	if (cfg->metrics && (r = metrics_open(cfg->metrics, b, &mx, why,
	    sizeof(why))) < 0) {
		log_warnx("%s", why);
		goto out_unmount;
	}
	/* Every thread from here on (and any before: the filter syncs them). */
	if ((r = privsep_sandbox(cfg->kubelet != NULL, why,
	    sizeof(why))) < 0) {
		log_warnx("%s", why);
		goto out_unmount;
	}
	if ((r = privsep_start_reader(&hooks)) < 0) {
		log_warnx("cannot start the fetcher's reader: %s",
		    strerror(-r));
		goto out_unmount;
	}
	if ((r = start_hup_thread(d)) < 0) {
		log_warnx("cannot start the SIGHUP thread: %s", strerror(-r));
		goto out_unmount;
	}
	if ((r = fe->start(d->fs)) < 0 || (r = broker_start(b)) < 0) {
		log_warnx("cannot start the refresh threads: %s", strerror(-r));
		goto out_threads;
	}
	/* Status and metrics are a convenience: serve without them if need be. */
	if (control_socket_path(cfg->control_socket, mp, sock,
	    sizeof(sock)) < 0)
		log_warnx("control socket: path too long; set control.socket");
	else if ((r = control_open(sock, b, &ctl, why, sizeof(why))) < 0)
		log_warnx("control socket: %s; status, metrics and health are "
		    "not available", why);
	else
		log_info("control socket %s", sock);
	/*
	 * The helper publishes the mount to the host and gives dead binds of
	 * the last one ours, once the loop below answers.
	 */
	privsep_serving();
	broker_set_mounted(b, mp);
	log_info("serving %zu secrets on %s", cfg->n_secrets, mp);
	/* Requests queue in the kernel until the loop below takes them. */
	if ((r = notify_sendf("READY=1\nMAINPID=%d\nSTATUS=serving %zu secrets "
	    "on %s", (int)getpid(), cfg->n_secrets, mp)) < 0)
		log_warnx("sd_notify: %s", strerror(-r));
	broker_release(v0);
	v0 = NULL;
	cfg = NULL;
	if (ready_fd >= 0)
		detach_done(ready_fd);
	if ((r = notify_watchdog_start(serving, d)) < 0)
		log_warnx("sd_notify watchdog: %s", strerror(-r));
	r = fe->loop(d->fs);
	notify_send("STOPPING=1");
	log_info("unmounting %s", mp);
out_threads:
	d->stopping = 1;
	notify_watchdog_stop();
	broker_set_mounted(b, NULL);
	control_close(ctl);
	stop_hup_thread(d);
	broker_stop(b);
	fe->stop(d->fs);
out_unmount:
	metrics_close(mx);
	/* The helper unmounts; then it and the fetcher exit. */
	privsep_stop(mounted);
out:
	fe->close(d->fs);
	d->fs = NULL;
	broker_release(v0);
	return r;
}

int
daemon_main(struct config *cfg, const struct daemon_options *opt,
    const struct daemon_frontend *fe)
{
	struct daemon d = { .fe = fe };
	char why[512], mp[PATH_MAX];
	bool allow_other = cfg->allow_other;
	int ready_fd = -1, r;
	sigset_t sigs;

	/* opt->mountpoint may point into cfg, which the broker may free. */
	snprintf(mp, sizeof(mp), "%s", opt->mountpoint);
	if (!opt->foreground && (ready_fd = detach_start()) < 0) {
		config_free(cfg);
		return 1;
	}

	/*
	 * Before any thread exists: every thread inherits these blocked and
	 * the signal thread alone takes them (sigwait).
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	/*
	 * Up to 64 FUSE threads would each get a malloc arena, and each
	 * arena keeps what it freed: RSS would drift up with the number of
	 * threads that ever ran. A few arenas hold the heap flat.
	 */
	mallopt(M_ARENA_MAX, 2);

	/* One thread, nothing secret yet: fork the helper and the fetcher. */
	if ((r = privsep_start(cfg, ready_fd, why, sizeof(why))) < 0) {
		log_warnx("%s", why);
		config_free(cfg);
		return 1;
	}
	if ((r = secmem_init(cfg->locked_bytes, why, sizeof(why))) < 0) {
		log_warnx("%s", why);
		config_free(cfg);
		return 1;
	}
	log_info("locked %zu bytes for secrets (%s)", secmem_locked_bytes(),
	    secmem_backing());
	/* Still one thread: capabilities are per thread. */
	if ((r = privsep_drop()) < 0) {
		log_warnx("cannot give up root's capabilities: %s",
		    strerror(-r));
		config_free(cfg);
		return 1;
	}
	if ((r = broker_new(cfg, &d.broker, why, sizeof(why))) < 0) {
		log_warnx("%s", why);
		return 1;
	}
	/* libfuse's trace prints request data; keep it to the foreground. */
	r = serve(&d, mp, allow_other, opt->debug && opt->foreground,
	    ready_fd);
	broker_free(d.broker);
	secmem_shutdown();
	return r < 0 ? 1 : 0;
}
