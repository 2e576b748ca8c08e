/*
 * Runs in the FUSE process and in the fetcher, each installing its own
 * allow-list (SANDBOX_FUSE, SANDBOX_FETCHER) at its start.
 *
 * Giving up privileges: users, capabilities, no_new_privs, seccomp.
 *
 * The allow-lists name what each process does, grouped by why; a call
 * missing here kills the process, so a list is widened only with the
 * reason next to it. Both processes share the base: memory, threads,
 * time, files they already hold, and the syscalls glibc makes on its own.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <secretsfs/sandbox.h>

int
sandbox_lookup_user(const char *name, uid_t *uid, gid_t *gid, char *errbuf,
    size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	r = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (r != 0 || !res) {
		snprintf(errbuf, errlen, "privsep.user: no user \"%s\" on this "
		    "host (create it: useradd --system --no-create-home "
		    "--shell /usr/sbin/nologin %s)", name, name);
		return -ENOENT;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

static int
last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int n = CAP_LAST_CAP;

	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = CAP_LAST_CAP;
		fclose(f);
	}
	return n;
}

static int
set_caps(uint64_t keep)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = (uint32_t)keep;
	d[1].effective = d[1].permitted = (uint32_t)(keep >> 32);
	return syscall(SYS_capset, &h, d) == 0 ? 0 : -errno;
}

/* The bounding set bounds what an exec could ever give back. */
static int
drop_bounding(uint64_t keep)
{
	int cap, n = last_cap();

	for (cap = 0; cap <= n && cap < 64; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
			return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 &&
	    errno != EINVAL)
		return -errno;
	return 0;
}

int
sandbox_drop_user(uid_t uid, gid_t gid, uint64_t keep)
{
	int r;

	if ((r = drop_bounding(keep)) < 0)
		return r;
	/* Keep the permitted set across setresuid, to keep `keep`. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		return -errno;
	if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 ||
	    setresuid(uid, uid, uid) != 0)
		return -errno;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
		return -errno;
	if ((r = set_caps(keep)) < 0)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return -errno;
	/* Paranoia: getting root back must fail. */
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -EPERM;
	return 0;
}

int
sandbox_drop_caps(uint64_t keep)
{
	int r;

	if ((r = drop_bounding(keep)) < 0 || (r = set_caps(keep)) < 0)
		return r;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	return 0;
}

/* What every secretsfs process does, whatever its role. */
static const char *const base_calls[] = {
	/* memory: the heap, the locked arena's bounce buffers */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mlock",
	"mlock2", "munlock", "membarrier",
	/* threads and their locks (clone and clone3: see sandbox_seccomp) */
	"futex", "futex_waitv", "set_robust_list",
	"get_robust_list", "rseq", "set_tid_address", "gettid", "exit",
	"exit_group", "sched_yield", "sched_getaffinity",
	/* signals: sigwait, pthread_kill, abort */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
	"rt_sigpending", "sigaltstack", "tgkill", "tkill",
	/* time */
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
	"gettimeofday", "time",
	/* files and descriptors */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "lseek",
	"openat", "open", "close", "close_range", "fstat", "newfstatat",
	"stat", "lstat", "statx", "fcntl", "dup", "dup2", "dup3", "pipe2",
	"eventfd2", "fsync", "fdatasync", "ftruncate", "access", "faccessat",
	"faccessat2", "readlink", "readlinkat", "getdents64", "umask",
	"ioctl",
	/* waiting on several */
	"poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "epoll_pwait2",
	/* sockets (socket(2) itself: see sandbox_seccomp) */
	"socketpair", "connect", "sendto", "sendmsg", "sendmmsg",
	"recvfrom", "recvmsg", "recvmmsg", "getsockopt", "setsockopt",
	"getsockname", "getpeername", "shutdown",
	/* who am I, what machine */
	"getpid", "getppid", "getuid", "geteuid", "getgid", "getegid",
	"getresuid", "getresgid", "getgroups", "uname", "sysinfo",
	"getrlimit", "prlimit64", "getrusage", "times", "getcwd",
	"getrandom", "prctl",
	/* the restart of an interrupted call */
	"restart_syscall",
	NULL
};

/*
 * The FUSE process: /dev/fuse, the audit trail and its directory, the
 * control socket, the Engine API socket, /proc of callers, and signals to
 * the processes on_rotate names.
 */
static const char *const fuse_calls[] = {
	"bind", "listen", "accept", "accept4",	/* control, metrics sockets */
	"unlink", "unlinkat", "mkdir", "mkdirat", "rename", "renameat",
	"renameat2", "chmod", "fchmod", "fchmodat", "fchown", "fallocate",
	"kill", "pidfd_open", "pidfd_send_signal",	/* on_rotate */
	"chdir", "setsid",			/* fuse_daemonize */
	"splice", "vmsplice",			/* libfuse's splice path */
	"getxattr", "lgetxattr",		/* delegated cgroups (identity) */
	"statfs", "fstatfs",			/* the audit disk reserve */
	NULL
};

/* The fetcher: TCP and TLS to the backends, DNS, its files. */
static const char *const fetcher_calls[] = {
	"bind",					/* libcurl's local port */
	"sched_setaffinity",
	NULL
};

/* The FUSE process asking the kubelet: libcurl's resolver, as the fetcher. */
static const char *const kubelet_calls[] = {
	"sched_setaffinity",
	NULL
};

/*
 * The sanitizers' runtime walks /proc/self/maps and stops the world with
 * ptrace to look for leaks at exit: only in those builds.
 */
static const char *const sanitizer_calls[] = {
	"ptrace", "wait4", "waitid", "sched_setaffinity", "personality",
	"getdents",
	"process_vm_readv",
	NULL
};

/* Any of these in clone(2)'s flags would make a new namespace. */
#define CLONE_NAMESPACES	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | \
	CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
	CLONE_NEWTIME)

/*
 * Threads and processes, but no namespace: a new user namespace would
 * hand a compromised process a fresh set of capabilities over it.
 * clone3(2) passes its flags in memory a filter cannot read, so it fails
 * with ENOSYS, and glibc falls back to clone(2).
 */
static int
allow_clone(scmp_filter_ctx ctx)
{
	int r;

	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NAMESPACES, 0))) < 0)
		return r;
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3),
	    0);
}

/*
 * socket(2) by address family: the FUSE process has Unix sockets alone
 * (the control socket, the Engine API, syslog, sd_notify), so it cannot
 * open a network connection even if subverted (the metrics listener's TCP
 * socket is made and bound before the filter is installed, and only
 * accepted on afterwards: metrics.h); the fetcher has TCP and UDP over
 * IPv4 and IPv6, and netlink, which the resolver uses, and so has the FUSE
 * process when it asks the kubelet (SANDBOX_FUSE_KUBELET). Other
 * families fail with EAFNOSUPPORT rather than killing, as a library
 * probing for one is no attack.
 */
static int
allow_sockets(scmp_filter_ctx ctx, enum sandbox_role role)
{
	static const int fuse_fam[] = { AF_UNIX };
	static const int fetch_fam[] = { AF_UNIX, AF_INET, AF_INET6,
	    AF_NETLINK };
	const int *fam = role == SANDBOX_FUSE ? fuse_fam : fetch_fam;
	size_t i, n = role == SANDBOX_FUSE ?
	    sizeof(fuse_fam) / sizeof(fuse_fam[0]) :
	    sizeof(fetch_fam) / sizeof(fetch_fam[0]);
	int af, r;

	/*
	 * One rule per family: a rule without a comparison would take
	 * precedence over those with one, whatever their action.
	 */
	for (af = 0; af < AF_MAX; af++) {
		uint32_t action = SCMP_ACT_ERRNO(EAFNOSUPPORT);

		for (i = 0; i < n; i++)
			if (fam[i] == af)
				action = SCMP_ACT_ALLOW;
		if ((r = seccomp_rule_add(ctx, action, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)af, 0))) < 0)
			return r;
	}
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
	    SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)AF_MAX, 0));
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

static int
allow(scmp_filter_ctx ctx, const char *const *names, char *errbuf,
    size_t errlen)
{
	int nr, r;

	for (; *names; names++) {
		/* A name this kernel's architecture lacks is simply absent. */
		if ((nr = seccomp_syscall_resolve_name(*names)) ==
		    __NR_SCMP_ERROR || nr < 0)
			continue;
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) {
			snprintf(errbuf, errlen, "seccomp: cannot allow %s: %s",
			    *names, strerror(-r));
			return r;
		}
	}
	return 0;
}

int
sandbox_seccomp(enum sandbox_role role, char *errbuf, size_t errlen)
{
	scmp_filter_ctx ctx;
	int r;

	if (!(ctx = seccomp_init(SCMP_ACT_KILL_PROCESS))) {
		snprintf(errbuf, errlen, "seccomp: cannot make a filter");
		return -ENOMEM;
	}
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
	    (r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0) {
		snprintf(errbuf, errlen, "seccomp: %s", strerror(-r));
		goto out;
	}
	if ((r = allow(ctx, base_calls, errbuf, errlen)) < 0 ||
	    (r = allow(ctx, role != SANDBOX_FETCHER ? fuse_calls :
	    fetcher_calls, errbuf, errlen)) < 0 ||
	    (role == SANDBOX_FUSE_KUBELET &&
	    (r = allow(ctx, kubelet_calls, errbuf, errlen)) < 0))
		goto out;
	if ((r = allow_clone(ctx)) < 0 || (r = allow_sockets(ctx, role)) < 0) {
		snprintf(errbuf, errlen, "seccomp: cannot filter clone or "
		    "socket: %s", strerror(-r));
		goto out;
	}
#ifdef SANITIZED
	if ((r = allow(ctx, sanitizer_calls, errbuf, errlen)) < 0)
		goto out;
#else
	(void)sanitizer_calls;
#endif
	if ((r = seccomp_load(ctx)) < 0)
		snprintf(errbuf, errlen, "seccomp: cannot load the filter: %s",
		    strerror(-r));
out:
	seccomp_release(ctx);
	return r < 0 ? r : 0;
}
