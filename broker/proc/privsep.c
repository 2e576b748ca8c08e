/*
 * Runs in the FUSE process (the SANDBOX_FUSE allow-list): its side of the
 * privileged helper, which is priv.c.
 *
 * The helper's reports (a fetcher started or exited, a dead bind
 * repaired) are read here, by the fetcher client's reader thread once it
 * runs; the replies to mount and unmount by the caller that waits.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <secretsfs/config.h>
#include <secretsfs/fetcher.h>
#include <secretsfs/log.h>
#include <secretsfs/privsep.h>
#include <secretsfs/repair.h>
#include <secretsfs/sandbox.h>
#include <secretsfs/wire.h>

#include "privsep_int.h"

static struct {
	int			fd;	/* to the helper */
	pid_t			pid;
	bool			have_fetcher;
	struct privsep_hooks	hooks;
} P = { .fd = -1 };

static void
got_fetcher(struct wire_in *in, int passfd)
{
	pid_t pid = (pid_t)wire_get_u32(in);

	if (in->err || passfd < 0) {
		log_warnx("privileged helper: malformed fetcher report");
		if (passfd >= 0)
			close(passfd);
		return;
	}
	if (!P.have_fetcher) {
		P.have_fetcher = true;
		fetcher_client_init(passfd, pid);
		return;
	}
	fetcher_attach(passfd, pid);
	if (P.hooks.fetcher)
		P.hooks.fetcher(P.hooks.arg, true, pid, 0, 0);
}

static void
got_fetcher_exit(struct wire_in *in)
{
	pid_t pid = (pid_t)wire_get_u32(in);
	int status = (int)wire_get_u32(in);
	unsigned ms = wire_get_u32(in);

	if (in->err)
		return;
	if (WIFSIGNALED(status))
		log_warnx("fetcher process %d killed by signal %d%s; restarting "
		    "it in %u ms", (int)pid, WTERMSIG(status),
		    WTERMSIG(status) == SIGSYS ? " (a system call outside its "
		    "seccomp allow-list)" : "", ms);
	else
		log_warnx("fetcher process %d exited with status %d; "
		    "restarting it in %u ms", (int)pid, WEXITSTATUS(status),
		    ms);
	if (P.hooks.fetcher)
		P.hooks.fetcher(P.hooks.arg, false, pid, status, ms);
}

static void
got_repaired(struct wire_in *in)
{
	struct repair_result res = { 0 };
	char comm[64], target[PATH_MAX], step[128];
	bool step_null;

	res.pid = (pid_t)wire_get_u32(in);
	res.uid = (uid_t)wire_get_u32(in);
	res.gid = (gid_t)wire_get_u32(in);
	res.mntns = wire_get_u64(in);
	wire_get_str(in, comm, sizeof(comm), NULL);
	wire_get_str(in, target, sizeof(target), NULL);
	res.err = (int)wire_get_u32(in);
	wire_get_str(in, step, sizeof(step), &step_null);
	if (in->err) {
		log_warnx("privileged helper: malformed repair report");
		return;
	}
	res.comm = comm;
	res.target = target;
	res.step = step_null ? NULL : step;
	if (P.hooks.repaired)
		P.hooks.repaired(P.hooks.arg, &res);
}

/*
 * Read one message from the helper. The reports are handled here; a
 * reply of type want is copied into buf (its fd into *fd) and 1 returned.
 * 0 for a report, -errno when the helper is gone.
 */
static int
priv_read(uint32_t want, uint8_t *buf, size_t cap, size_t *len, int *fd)
{
	uint8_t tmp[MSG_MAX];
	struct wire_hdr h;
	struct wire_in in;
	int passfd, r;

	if ((r = wire_recv_hdr(P.fd, &h, &passfd)) < 0)
		return r;
	if (h.len > sizeof(tmp) || (r = wire_recv_body(P.fd, tmp,
	    h.len)) < 0) {
		if (passfd >= 0)
			close(passfd);
		return r < 0 ? r : -EPROTO;
	}
	in = (struct wire_in){ tmp, h.len, 0, false };
	if (want && h.type == want && h.len <= cap) {
		memcpy(buf, tmp, h.len);
		*len = h.len;
		if (fd)
			*fd = passfd;
		else if (passfd >= 0)
			close(passfd);
		return 1;
	}
	switch (h.type) {
	case PRIV_FETCHER:
		got_fetcher(&in, passfd);
		passfd = -1;
		break;
	case PRIV_FETCHER_EXIT:
		got_fetcher_exit(&in);
		break;
	case PRIV_REPAIRED:
		got_repaired(&in);
		break;
	default:
		log_warnx("privileged helper: unexpected message %u", h.type);
		break;
	}
	if (passfd >= 0)
		close(passfd);
	return 0;
}

static int
priv_wait(uint32_t want, uint8_t *buf, size_t cap, size_t *len, int *fd)
{
	int r;

	while ((r = priv_read(want, buf, cap, len, fd)) == 0)
		;
	return r < 0 ? r : 0;
}

int
privsep_start(struct config *cfg, int own_fd, char *errbuf, size_t errlen)
{
	uint8_t buf[64];
	size_t len;
	uid_t uid;
	gid_t gid;
	int sp[2], r;
	pid_t pid;

	if (geteuid() != 0) {
		snprintf(errbuf, errlen, "secretsfs mount must run as root: it "
		    "mounts, then gives root up");
		return -EPERM;
	}
	if ((r = sandbox_lookup_user(cfg->fetcher_user, &uid, &gid, errbuf,
	    errlen)) < 0)
		return r;
	if (uid == 0)
		log_warnx("privsep.user is %s: the fetcher keeps uid 0 (with "
		    "CAP_IPC_LOCK alone); use an unprivileged user in "
		    "production", cfg->fetcher_user);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		snprintf(errbuf, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	if ((pid = fork()) < 0) {
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		close(sp[0]);
		close(sp[1]);
		return -errno;
	}
	if (pid == 0) {
		size_t locked = cfg->locked_bytes;

		close(sp[0]);
		/* The helper keeps nothing of the config, keys included. */
		config_free(cfg);
		if (own_fd >= 0)
			close(own_fd);
		log_detach();
		priv_main(sp[1], uid, gid, locked);
	}
	close(sp[1]);
	P.fd = sp[0];
	P.pid = pid;
	/* The helper's first word is the first fetcher's socket. */
	while (!P.have_fetcher)
		if ((r = priv_read(0, buf, sizeof(buf), &len, NULL)) < 0) {
			snprintf(errbuf, errlen, "the privileged helper exited "
			    "at start");
			return -EIO;
		}
	log_info("fetcher process %d runs as %s (uid %u)", (int)fetcher_pid(),
	    cfg->fetcher_user, (unsigned)uid);
	return 0;
}

int
privsep_drop(void)
{
	/*
	 * CAP_KILL: on_rotate signals processes of any user. CAP_IPC_LOCK:
	 * each thread locks its bounce buffer later, and the arena alone may
	 * exceed RLIMIT_MEMLOCK.
	 */
	return sandbox_drop_caps((1ULL << CAP_KILL) | (1ULL << CAP_IPC_LOCK));
}

int
privsep_sandbox(bool kubelet, char *errbuf, size_t errlen)
{
	return sandbox_seccomp(kubelet ? SANDBOX_FUSE_KUBELET : SANDBOX_FUSE,
	    errbuf, errlen);
}

int
privsep_mount(const char *mp, bool allow_other, int *fd, char *errbuf,
    size_t errlen)
{
	uint8_t out[MSG_MAX], in[MSG_MAX];
	struct wire_out o = { out, sizeof(out), 0, false };
	struct wire_in rin;
	char why[PATH_MAX + 128];
	uint32_t err;
	size_t len;
	int r;

	*fd = -1;
	wire_put_str(&o, mp);
	wire_put_u32(&o, allow_other);
	if (o.err)
		return -ENAMETOOLONG;
	if ((r = wire_send(P.fd, PRIV_MOUNT, 0, out, o.len, -1)) < 0 ||
	    (r = priv_wait(PRIV_MOUNTED, in, sizeof(in), &len, fd)) < 0) {
		snprintf(errbuf, errlen, "the privileged helper is gone: %s",
		    strerror(-r));
		return -EIO;
	}
	rin = (struct wire_in){ in, len, 0, false };
	err = wire_get_u32(&rin);
	wire_get_str(&rin, why, sizeof(why), NULL);
	if (rin.err)
		err = EPROTO;
	if (err) {
		snprintf(errbuf, errlen, "%s", why[0] ? why : strerror(err));
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -(int)err;
	}
	if (*fd < 0) {
		snprintf(errbuf, errlen, "the privileged helper sent no "
		    "descriptor");
		return -EPROTO;
	}
	return 0;
}

static int
on_helper(void *arg)
{
	int r;

	(void)arg;
	if ((r = priv_read(0, NULL, 0, NULL, NULL)) < 0) {
		log_warnx("the privileged helper exited: the fetcher will not "
		    "be restarted if it dies, and the mount stays at stop");
		return r;
	}
	return 0;
}

int
privsep_start_reader(const struct privsep_hooks *hooks)
{
	P.hooks = *hooks;
	return fetcher_start_reader(P.fd, on_helper, NULL);
}

void
privsep_serving(void)
{
	if (wire_send(P.fd, PRIV_SERVING, 0, NULL, 0, -1) < 0)
		log_warnx("cannot ask the privileged helper to repair dead "
		    "binds");
}

void
privsep_stop(bool unmount)
{
	uint8_t in[64];
	struct wire_in rin;
	size_t len;
	uint32_t err;

	/* The helper's replies are ours to read from here on. */
	fetcher_stop_reader();
	if (P.fd >= 0 && unmount) {
		/* The helper also stops restarting fetchers. */
		if (wire_send(P.fd, PRIV_UNMOUNT, 0, NULL, 0, -1) < 0 ||
		    priv_wait(PRIV_UNMOUNTED, in, sizeof(in), &len, NULL) < 0)
			log_warnx("the privileged helper is gone: the mount "
			    "stays; the next start clears it");
		else {
			rin = (struct wire_in){ in, len, 0, false };
			if ((err = wire_get_u32(&rin)) != 0)
				log_warnx("cannot unmount: %s", strerror((int)err));
		}
	}
	/* Its socket closed, the fetcher exits; then the helper does. */
	fetcher_client_shutdown();
	if (P.fd >= 0)
		close(P.fd);
	P.fd = -1;
}

pid_t
privsep_helper_pid(void)
{
	return P.pid;
}
