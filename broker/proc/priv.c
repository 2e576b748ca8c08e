/*
 * Runs in the privileged helper process (no seccomp allow-list: it keeps
 * root to mount, to repair dead binds and to start fetchers).
 *
 * The helper is forked first, while the daemon has one thread and no
 * secret yet. It keeps root because mounting, detaching dead mounts in
 * containers' namespaces and starting a fetcher as another user need it,
 * and it does nothing else: it reads small typed messages from the FUSE
 * process, never a backend answer, a request from a container or a config
 * file. Its client side is privsep.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/checkconf.h>
#include <secretsfs/clk.h>
#include <secretsfs/fetcher.h>
#include <secretsfs/log.h>
#include <secretsfs/repair.h>
#include <secretsfs/wire.h>

#include "privsep_int.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	30000
#define STABLE_MS	60000	/* a fetcher that lived this long resets it */
#define LIVE_TIMEOUT_MS	30000	/* how long repair waits for the loop */

static struct {
	int		 fd;		/* to the FUSE process */
	uid_t		 uid;		/* the fetcher's */
	gid_t		 gid;
	size_t		 locked_bytes;
	pid_t		 fetcher;
	struct timespec	 started;
	unsigned	 backoff_ms;
	struct timespec	 restart_at;	/* 0: none pending */
	char		 mp[PATH_MAX];
	struct repair	*rp;
	pid_t		 repairer;	/* the child scanning for dead binds */
	int		 repair_fd;	/* its reports, relayed */
	int		 sfd;		/* SIGCHLD, as a descriptor */
	bool		 stopping;	/* unmounted: no more fetchers */
} H = { .fd = -1, .repair_fd = -1, .sfd = -1 };

static void
h_send(uint32_t type, const struct wire_out *o, int passfd)
{
	/* The FUSE process is gone: so are we. */
	if (wire_send(H.fd, type, 0, o ? o->buf : NULL, o ? o->len : 0,
	    passfd) < 0)
		_exit(0);
}

/* In the new fetcher: it keeps none of the helper's descriptors. */
static void __attribute__((noreturn))
fetcher_child(int fd)
{
	close(H.fd);
	close(H.sfd);
	if (H.repair_fd >= 0)
		close(H.repair_fd);
	fetcher_main(fd, H.uid, H.gid, H.locked_bytes);
}

static void
spawn_fetcher(void)
{
	uint8_t buf[16];
	struct wire_out o = { buf, sizeof(buf), 0, false };
	int sp[2];
	pid_t pid;

	memset(&H.restart_at, 0, sizeof(H.restart_at));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		log_warn("cannot make a socketpair for the fetcher");
		goto retry;
	}
	if ((pid = fork()) < 0) {
		log_warn("cannot fork the fetcher");
		close(sp[0]);
		close(sp[1]);
		goto retry;
	}
	if (pid == 0) {
		close(sp[0]);
		fetcher_child(sp[1]);
	}
	close(sp[1]);
	H.fetcher = pid;
	clock_gettime(CLOCK_MONOTONIC, &H.started);
	wire_put_u32(&o, (uint32_t)pid);
	h_send(PRIV_FETCHER, &o, sp[0]);
	close(sp[0]);
	return;
retry:
	clock_gettime(CLOCK_MONOTONIC, &H.restart_at);
	H.restart_at.tv_sec += 1;
}

static void
reap(void)
{
	uint8_t buf[32];
	struct wire_out o;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == H.repairer)
			H.repairer = 0;
		if (pid != H.fetcher)
			continue;
		H.fetcher = 0;
		if (H.stopping)
			continue;
		if (clk_since_ms(&H.started) >= STABLE_MS)
			H.backoff_ms = BACKOFF_MIN_MS;
		o = (struct wire_out){ buf, sizeof(buf), 0, false };
		wire_put_u32(&o, (uint32_t)pid);
		wire_put_u32(&o, (uint32_t)status);
		wire_put_u32(&o, H.backoff_ms);
		h_send(PRIV_FETCHER_EXIT, &o, -1);
		clock_gettime(CLOCK_MONOTONIC, &H.restart_at);
		H.restart_at.tv_sec += H.backoff_ms / 1000;
		H.restart_at.tv_nsec += (long)(H.backoff_ms % 1000) * 1000000;
		if (H.restart_at.tv_nsec >= 1000000000) {
			H.restart_at.tv_sec++;
			H.restart_at.tv_nsec -= 1000000000;
		}
		H.backoff_ms = H.backoff_ms * 2 > BACKOFF_MAX_MS ?
		    BACKOFF_MAX_MS : H.backoff_ms * 2;
	}
}

/*
 * A daemon killed with its mount in place leaves a mountpoint that
 * answers ENOTCONN. Detach it so we can mount afresh. A live mount is
 * another daemon's: leave it and refuse.
 */
static int
clear_stale_mount(const char *mp, char *why, size_t len)
{
	struct stat st;

	if (stat(mp, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(why, len, "mountpoint %s is not a directory",
			    mp);
			return -ENOTDIR;
		}
		return 0;
	}
	if (errno == ENOENT) {
		if (mkdir(mp, 0755) != 0 && errno != EEXIST) {
			snprintf(why, len, "mkdir %s: %s", mp, strerror(errno));
			return -errno;
		}
		return 0;
	}
	if (errno != ENOTCONN) {
		snprintf(why, len, "mountpoint %s: %s", mp, strerror(errno));
		return -errno;
	}
	if (umount2(mp, MNT_DETACH) != 0) {
		snprintf(why, len, "found a stale mount at %s (its daemon "
		    "died) but could not detach it: %s", mp, strerror(errno));
		return -errno;
	}
	log_info("cleared a stale mount at %s left by a daemon that died",
	    mp);
	return 0;
}

static bool
already_mounted(const char *real)
{
	char line[4096], path[PATH_MAX];
	bool found = false;
	FILE *f;

	if (!(f = fopen("/proc/self/mountinfo", "re")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint ... - fstype ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", path) == 1 &&
		    strcmp(path, real) == 0 &&
		    strstr(line, " - " REPAIR_FSTYPE " "))
			found = true;
	}
	fclose(f);
	return found;
}

static int
do_mount(struct wire_in *in, int *fusefd, char *why, size_t len)
{
	char mp[PATH_MAX], fsname[PATH_MAX + 16], real[PATH_MAX];
	char data[PATH_MAX + 256];
	bool allow_other;
	struct stat st;
	int fd, r;

	*fusefd = -1;
	wire_get_str(in, mp, sizeof(mp), NULL);
	allow_other = wire_get_u32(in) != 0;
	if (in->err || H.mp[0]) {
		snprintf(why, len, "malformed or repeated mount request");
		return -EPROTO;
	}
	/* Before a dead mount is cleared: its device finds its binds. */
	H.rp = repair_new(mp);
	if ((r = clear_stale_mount(mp, why, len)) < 0)
		return r;
	if (!realpath(mp, real)) {
		snprintf(why, len, "mountpoint %s: %s", mp, strerror(errno));
		return -errno;
	}
	/* Every bind of the mount, in any container, says whose it is. */
	if (repair_fsname(real, fsname, sizeof(fsname)) < 0)
		snprintf(fsname, sizeof(fsname), "%s", REPAIR_FSNAME);
	if (already_mounted(real)) {
		snprintf(why, len, "%s is already served by a running "
		    "secretsfs", mp);
		return -EBUSY;
	}
	if (stat(real, &st) != 0) {
		snprintf(why, len, "mountpoint %s: %s", mp, strerror(errno));
		return -errno;
	}
	if ((r = checkconf_mountpoint_empty(mp, real, why, len)) < 0)
		return r;
	if ((fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(why, len, "cannot open /dev/fuse: %s", strerror(errno));
		return -errno;
	}
	/*
	 * What libfuse would pass, for a daemon running as root; without
	 * default_permissions: the daemon applies each file's mode itself
	 * (perm.h), so that a refusal is audited like every other.
	 */
	snprintf(data, sizeof(data), "fd=%d,rootmode=%o,user_id=0,group_id=0"
	    "%s", fd, st.st_mode & S_IFMT, allow_other ? ",allow_other" : "");
	if (mount(fsname, real, REPAIR_FSTYPE, MS_RDONLY | MS_NOSUID |
	    MS_NODEV | MS_NOEXEC, data) != 0) {
		r = -errno;
		snprintf(why, len, "cannot mount on %s: %s", mp, strerror(errno));
		close(fd);
		return r;
	}
	snprintf(H.mp, sizeof(H.mp), "%s", real);
	*fusefd = fd;
	return 0;
}

static void
send_repaired(void *arg, const struct repair_result *res)
{
	uint8_t buf[MSG_MAX];
	struct wire_out o = { buf, sizeof(buf), 0, false };

	(void)arg;
	wire_put_u32(&o, (uint32_t)res->pid);
	wire_put_u32(&o, (uint32_t)res->uid);
	wire_put_u32(&o, (uint32_t)res->gid);
	wire_put_u64(&o, res->mntns);
	wire_put_str(&o, res->comm);
	wire_put_str(&o, res->target);
	wire_put_u32(&o, (uint32_t)res->err);
	wire_put_str(&o, res->step);
	if (!o.err)
		h_send(PRIV_REPAIRED, &o, -1);
}

/* pid's parent, from /proc; 1 when it cannot be read. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 1;
	FILE *f;

	if (pid <= 1)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "re")))
		return 1;
	/* pid (comm) state ppid ...: comm may hold anything but ')'. */
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) &&
	    sscanf(p + 1, " %*c %d", &ppid) != 1)
		ppid = 1;
	fclose(f);
	return ppid > 0 ? ppid : 1;
}

/*
 * In a child, so that the helper still answers (an unmount at stop, a
 * fetcher to restart) while a scan of every mount namespace runs. Its
 * reports come back over a socketpair and are relayed from the loop.
 */
static void
start_repair(void)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	struct stat st;
	int sp[2], r, waited = 0;
	pid_t pid;

	if (!H.rp)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0 ||
	    (pid = fork()) < 0) {
		log_warn("cannot start the repair of dead binds");
		goto out;
	}
	if (pid == 0) {
		close(sp[0]);
		close(H.fd);
		H.fd = sp[1];
		/* Publish where the daemon was started from: there. */
		repair_set_origin(H.rp, parent_of(parent_of(getppid())));
		/* The first stat(2) waits for the FUSE loop to answer it. */
		while (stat(H.mp, &st) != 0 && waited < LIVE_TIMEOUT_MS) {
			nanosleep(&pause, NULL);
			waited += 50;
		}
		if ((r = repair_run(H.rp, send_repaired, NULL, NULL)) < 0)
			log_warnx("cannot look for dead binds of %s: %s", H.mp,
			    strerror(-r));
		_exit(0);
	}
	close(sp[1]);
	H.repairer = pid;
	H.repair_fd = sp[0];
out:
	repair_free(H.rp);
	H.rp = NULL;
}

/* One report from the repairer, passed on; at its end, forget it. */
static void
relay_repair(void)
{
	uint8_t buf[MSG_MAX];
	struct wire_out o = { buf, sizeof(buf), 0, false };
	struct wire_hdr h;
	int passfd;

	if (wire_recv_hdr(H.repair_fd, &h, &passfd) < 0 ||
	    h.len > sizeof(buf) || wire_recv_body(H.repair_fd, buf, h.len) < 0) {
		close(H.repair_fd);
		H.repair_fd = -1;
		return;
	}
	if (passfd >= 0)
		close(passfd);
	o.len = h.len;
	h_send(h.type, &o, -1);
}

static void
request(void)
{
	uint8_t buf[MSG_MAX], out[MSG_MAX];
	struct wire_out o = { out, sizeof(out), 0, false };
	struct wire_hdr h;
	struct wire_in in;
	char why[PATH_MAX + 128] = "";
	int passfd, fd, r;

	if (wire_recv_hdr(H.fd, &h, &passfd) < 0 || h.len > sizeof(buf) ||
	    wire_recv_body(H.fd, buf, h.len) < 0) {
		/* The FUSE process stopped or died; the mount stays as is. */
		if (H.fetcher > 0)
			kill(H.fetcher, SIGTERM);
		_exit(0);
	}
	if (passfd >= 0)
		close(passfd);
	in = (struct wire_in){ buf, h.len, 0, false };
	switch (h.type) {
	case PRIV_MOUNT:
		r = do_mount(&in, &fd, why, sizeof(why));
		wire_put_u32(&o, (uint32_t)-r);
		wire_put_str(&o, why);
		h_send(PRIV_MOUNTED, &o, fd);
		if (fd >= 0)
			/* Ours open would keep a dead daemon's mount alive. */
			close(fd);
		break;
	case PRIV_SERVING:
		start_repair();
		break;
	case PRIV_UNMOUNT:
		/* A scan still running at stop has nothing left to repair for. */
		if (H.repairer > 0)
			kill(H.repairer, SIGKILL);
		r = 0;
		if (H.mp[0] && umount2(H.mp, MNT_DETACH) != 0)
			r = -errno;
		wire_put_u32(&o, (uint32_t)-r);
		h_send(PRIV_UNMOUNTED, &o, -1);
		H.mp[0] = '\0';
		H.stopping = true;
		memset(&H.restart_at, 0, sizeof(H.restart_at));
		break;
	default:
		log_warnx("privileged helper: unknown request %u", h.type);
		break;
	}
}

void
priv_main(int fd, uid_t uid, gid_t gid, size_t locked_bytes)
{
	struct pollfd p[3];
	sigset_t set;
	int sfd, timeout;

	log_procinit("priv");
	H.fd = fd;
	H.uid = uid;
	H.gid = gid;
	H.locked_bytes = locked_bytes;
	H.backoff_ms = BACKOFF_MIN_MS;
	prctl(PR_SET_NAME, "secretsfs-priv", 0, 0, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		fatal("privileged helper: signalfd");
	H.sfd = sfd;
	spawn_fetcher();
	for (;;) {
		timeout = -1;
		if (H.restart_at.tv_sec) {
			int64_t left = -clk_since_ms(&H.restart_at);

			timeout = left < 0 ? 0 : (int)left;
		}
		p[0] = (struct pollfd){ .fd = H.fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = H.repair_fd, .events = POLLIN };
		if (poll(p, 3, timeout) < 0) {
			if (errno != EINTR)
				fatal("privileged helper: poll");
			continue;
		}
		if (p[2].revents)
			relay_repair();
		if (p[1].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			reap();
		}
		if (p[0].revents)
			request();
		if (H.restart_at.tv_sec && clk_since_ms(&H.restart_at) >= 0 &&
		    H.fetcher == 0)
			spawn_fetcher();
	}
}
