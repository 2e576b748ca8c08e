/*
 * Runs in the privileged helper (its repair child, no allow-list) and in
 * the `secretsfs repair` CLI.
 *
 * repair: put a live mount in place of the dead binds a crashed daemon
 * left in containers' mount namespaces. See repair.h for the why.
 *
 * The work on a container's namespace happens in a child forked per
 * mount: setns(CLONE_NEWNS) needs a process that shares its filesystem
 * context with no other thread, and the daemon has threads (audit flush,
 * FUSE workers). The child makes system calls only, on strings the parent
 * prepared, so that forking a threaded process is safe; it reports one
 * (errno, step) pair through a pipe and exits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <secretsfs/log.h>
#include <secretsfs/repair.h>

/*
 * The new mount API. glibc 2.36 declares it in <sys/mount.h>, older ones
 * do not, and <linux/mount.h> clashes with 2.36's: spell out what we use
 * and call the kernel directly.
 */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE		1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC	O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH	0x00000004
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY	0x00000001
#define MOUNT_ATTR_NOSUID	0x00000002
#define MOUNT_ATTR_NODEV	0x00000004
#define MOUNT_ATTR_NOEXEC	0x00000008
struct mount_attr {
	uint64_t	attr_set;
	uint64_t	attr_clr;
	uint64_t	propagation;
	uint64_t	userns_fd;
};
#endif
#ifndef UMOUNT_NOFOLLOW
#define UMOUNT_NOFOLLOW		0x00000008
#endif

#define CHILD_TIMEOUT_MS	10000	/* a stuck setns or umount: give up */

struct devs {
	dev_t		*v;
	size_t		 n, cap;
};

struct repair {
	char		 mp[PATH_MAX];	/* canonical mountpoint */
	struct devs	 dead;		/* dead at mp when repair_new() looked */
	uint64_t	*hinted;	/* mount namespaces the operator named */
	size_t		 nhinted;
	pid_t		 origin;	/* where to publish; 0: our parent */
};

/* ------------------------------------------------------------------ */
/* Small sets                                                         */

static int
devs_add(struct devs *d, dev_t dev)
{
	dev_t *v;

	for (size_t i = 0; i < d->n; i++)
		if (d->v[i] == dev)
			return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;

		if (!(v = reallocarray(d->v, cap, sizeof(*v))))
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = dev;
	return 0;
}

static bool
devs_has(const struct devs *d, dev_t dev)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i] == dev)
			return true;
	return false;
}

static void
devs_del(struct devs *d, dev_t dev)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i] == dev) {
			d->v[i] = d->v[--d->n];
			return;
		}
}

static void
devs_clear(struct devs *d)
{
	free(d->v);
	memset(d, 0, sizeof(*d));
}

/* Mount namespaces seen: an open-addressing set of inode numbers. */
struct nsset {
	uint64_t	*v;
	size_t		 cap, n;
};

static int
nsset_add(struct nsset *s, uint64_t ino)
{
	size_t i;

	if (ino == 0)
		return -EINVAL;
	if ((s->n + 1) * 2 > s->cap) {
		struct nsset g = { .cap = s->cap ? s->cap * 2 : 256 };

		if (!(g.v = calloc(g.cap, sizeof(*g.v))))
			return -ENOMEM;
		for (i = 0; i < s->cap; i++)
			if (s->v[i])
				nsset_add(&g, s->v[i]);
		free(s->v);
		*s = g;
	}
	for (i = ino % s->cap; s->v[i]; i = (i + 1) % s->cap)
		if (s->v[i] == ino)
			return 0;
	s->v[i] = ino;
	s->n++;
	return 1;
}

/* ------------------------------------------------------------------ */

static uint64_t
ns_of(pid_t pid)
{
	char path[64];
	struct stat st;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/mnt");
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/*
 * The canonical mountpoint without stat(2)ing the mount itself: a dead
 * one fails, ours may not be served yet. The parent is resolved, the last
 * component kept.
 */
static int
canonical(const char *mp, char *out, size_t len)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *dirpart, *base;
	char *slash;
	size_t n;

	if (realpath(mp, out) && strlen(out) < len)
		return 0;
	if ((n = strlen(mp)) == 0 || n >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, mp, n + 1);
	while (n > 1 && tmp[n - 1] == '/')
		tmp[--n] = '\0';
	if (!(slash = strrchr(tmp, '/'))) {
		dirpart = ".";
		base = tmp;
	} else if (slash == tmp) {
		dirpart = "/";
		base = tmp + 1;
	} else {
		*slash = '\0';
		dirpart = tmp;
		base = slash + 1;
	}
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EINVAL;
	if (!realpath(dirpart, dir))
		return -errno;
	n = (size_t)snprintf(out, len, "%s/%s", strcmp(dir, "/") == 0 ? "" :
	    dir, base);
	return n < len ? 0 : -ENAMETOOLONG;
}

struct repair *
repair_new(const char *mountpoint)
{
	struct repair_mountinfo *mi = NULL;
	struct repair *rp;
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r;

	if (!(rp = calloc(1, sizeof(*rp))))
		return NULL;
	if ((r = canonical(mountpoint, rp->mp, sizeof(rp->mp))) < 0) {
		free(rp);
		errno = -r;
		return NULL;
	}
	/* A live mount there is another daemon's; only a dead one is noted. */
	if (stat(rp->mp, &st) == 0 || errno != ENOTCONN)
		return rp;
	if (!(mi = malloc(sizeof(*mi))) ||
	    !(f = fopen("/proc/self/mountinfo", "re"))) {
		free(mi);
		return rp;
	}
	while (getline(&line, &cap, f) > 0)
		if (repair_parse_mountinfo(line, mi) == 0 &&
		    repair_is_secretsfs(mi) && strcmp(mi->target, rp->mp) == 0 &&
		    devs_add(&rp->dead, makedev(mi->major, mi->minor)) < 0)
			break;
	free(line);
	free(mi);
	fclose(f);
	return rp;
}

int
repair_add_pid(struct repair *rp, pid_t pid)
{
	uint64_t ns, *v;

	if (pid <= 0)
		return -EINVAL;
	if (!(ns = ns_of(pid)))
		return errno == ENOENT ? -ESRCH : -errno;
	if (!(v = reallocarray(rp->hinted, rp->nhinted + 1, sizeof(*v))))
		return -ENOMEM;
	rp->hinted = v;
	rp->hinted[rp->nhinted++] = ns;
	return 0;
}

void
repair_free(struct repair *rp)
{
	if (!rp)
		return;
	devs_clear(&rp->dead);
	free(rp->hinted);
	free(rp);
}

static bool
hinted(const struct repair *rp, uint64_t ns)
{
	for (size_t i = 0; i < rp->nhinted; i++)
		if (rp->hinted[i] == ns)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* One mount                                                          */

/*
 * Split an absolute target into the parent, relative to the root ("." for
 * the root itself), and the last component. -EINVAL for "/".
 */
static int
split_target(const char *target, char *parent, size_t plen,
    const char **last)
{
	const char *rel = target + 1, *slash;
	size_t n;

	if (target[0] != '/' || *rel == '\0')
		return -EINVAL;
	if (!(slash = strrchr(rel, '/'))) {
		snprintf(parent, plen, ".");
		*last = rel;
		return 0;
	}
	if ((n = (size_t)(slash - rel)) >= plen || slash[1] == '\0')
		return -EINVAL;
	memcpy(parent, rel, n);
	parent[n] = '\0';
	*last = slash + 1;
	return 0;
}

/* The directory parent beneath root, through no symbolic link. */
static int
open_beneath(int rootfd, const char *parent)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		    RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, rootfd, parent, &how, sizeof(how));
}

/* Is the mount at target, under rootfd, a dead FUSE mount? */
static bool
is_dead(int rootfd, const char *target)
{
	char parent[PATH_MAX];
	const char *last;
	struct stat st;
	bool dead;
	int pfd;

	if (split_target(target, parent, sizeof(parent), &last) < 0 ||
	    (pfd = open_beneath(rootfd, parent)) < 0)
		return false;
	dead = fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
	    errno == ENOTCONN;
	close(pfd);
	return dead;
}

enum step {
	STEP_OK = 0,
	STEP_OPEN_NS,
	STEP_OPEN_ROOT,
	STEP_OPEN_TREE,
	STEP_SETATTR,
	STEP_SETNS,
	STEP_RESOLVE,
	STEP_RECHECK,
	STEP_CHDIR,
	STEP_UMOUNT,
	STEP_MOVE,
	STEP_FORK,
	STEP_CHILD,
};

static const char *const step_names[] = {
	[STEP_OK]		= NULL,
	[STEP_OPEN_NS]		= "open the mount namespace",
	[STEP_OPEN_ROOT]	= "open the process's root",
	[STEP_OPEN_TREE]	= "clone the live mount (open_tree)",
	[STEP_SETATTR]		= "make the clone read-only (mount_setattr)",
	[STEP_SETNS]		= "enter the mount namespace (setns)",
	[STEP_RESOLVE]		= "resolve the mount point",
	[STEP_RECHECK]		= "mount point no longer dead",
	[STEP_CHDIR]		= "enter the mount point's directory",
	[STEP_UMOUNT]		= "detach the dead mount (umount2)",
	[STEP_MOVE]		= "attach the clone (move_mount)",
	[STEP_FORK]		= "fork",
	[STEP_CHILD]		= "repair process failed",
};

struct child_msg {
	int	err;
	int	step;
};

/* Everything the child needs, prepared before fork(). */
struct job {
	char		 ns[64];		/* /proc/<pid>/ns/mnt */
	char		 root[64];		/* /proc/<pid>/root */
	const char	*src;			/* our live mountpoint */
	char		 parent[PATH_MAX];	/* target's directory, relative */
	const char	*last;			/* target's last component */
	bool		 publish;		/* may mount over a plain directory */
};

static void __attribute__((noreturn))
child_fail(int fd, int step)
{
	struct child_msg m = { .err = errno ? errno : EIO, .step = step };

	(void)!write(fd, &m, sizeof(m));
	_exit(1);
}

/*
 * In the child: system calls only. Descriptors of the parent (the FUSE
 * device, the audit file, backend sockets) are closed first, so that none
 * of them is held by the container's namespace side for a moment longer.
 */
static void __attribute__((noreturn))
child(const struct job *j, int wfd)
{
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
		    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
	};
	struct child_msg ok = { 0, STEP_OK };
	struct stat st;
	int fd = 3, nsfd, rootfd, tree, pfd;

	if (wfd != fd && dup2(wfd, fd) < 0)
		_exit(2);
	syscall(SYS_close_range, fd + 1, ~0U, 0);
	if ((nsfd = open(j->ns, O_RDONLY | O_CLOEXEC)) < 0)
		child_fail(fd, STEP_OPEN_NS);
	if ((rootfd = open(j->root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		child_fail(fd, STEP_OPEN_ROOT);
	tree = (int)syscall(SYS_open_tree, AT_FDCWD, j->src,
	    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		child_fail(fd, STEP_OPEN_TREE);
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr,
	    sizeof(attr)) != 0)
		child_fail(fd, STEP_SETATTR);
	if (setns(nsfd, CLONE_NEWNS) != 0)
		child_fail(fd, STEP_SETNS);
	if ((pfd = open_beneath(rootfd, j->parent)) < 0)
		child_fail(fd, STEP_RESOLVE);
	/* Another repair may have been quicker. */
	if (fstatat(pfd, j->last, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!j->publish || !S_ISDIR(st.st_mode)) {
			errno = j->publish ? ENOTDIR : EALREADY;
			child_fail(fd, STEP_RECHECK);
		}
	} else if (errno != ENOTCONN)
		child_fail(fd, STEP_RECHECK);
	else {
		/* umount2() has no directory descriptor: stand in the directory. */
		if (fchdir(pfd) != 0)
			child_fail(fd, STEP_CHDIR);
		if (umount2(j->last, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
			child_fail(fd, STEP_UMOUNT);
	}
	if (syscall(SYS_move_mount, tree, "", pfd, j->last,
	    MOVE_MOUNT_F_EMPTY_PATH) != 0)
		child_fail(fd, STEP_MOVE);
	(void)!write(fd, &ok, sizeof(ok));
	_exit(0);
}

static int
repair_one(const struct repair *rp, pid_t pid, const char *target,
    bool publish, const char **step)
{
	struct child_msg m = { EIO, STEP_CHILD };
	struct pollfd pfd;
	struct job j;
	pid_t kid;
	int p[2], status;
	ssize_t n;

	memset(&j, 0, sizeof(j));
	snprintf(j.ns, sizeof(j.ns), "/proc/%d/ns/mnt", (int)pid);
	snprintf(j.root, sizeof(j.root), "/proc/%d/root", (int)pid);
	j.src = rp->mp;
	j.publish = publish;
	if (split_target(target, j.parent, sizeof(j.parent), &j.last) < 0) {
		*step = step_names[STEP_RESOLVE];
		return EINVAL;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		*step = step_names[STEP_FORK];
		return errno;
	}
	if ((kid = fork()) < 0) {
		m.err = errno;
		close(p[0]);
		close(p[1]);
		*step = step_names[STEP_FORK];
		return m.err;
	}
	if (kid == 0)
		child(&j, p[1]);
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	if (poll(&pfd, 1, CHILD_TIMEOUT_MS) == 1) {
		n = read(p[0], &m, sizeof(m));
		if (n != (ssize_t)sizeof(m))
			m = (struct child_msg){ EIO, STEP_CHILD };
	} else {
		kill(kid, SIGKILL);
		m = (struct child_msg){ ETIMEDOUT, STEP_CHILD };
	}
	close(p[0]);
	while (waitpid(kid, &status, 0) < 0 && errno == EINTR)
		;
	if (m.step < 0 || (size_t)m.step >= sizeof(step_names) /
	    sizeof(step_names[0]))
		m = (struct child_msg){ EIO, STEP_CHILD };
	*step = step_names[m.step];
	return m.step == STEP_OK ? 0 : (m.err ? m.err : EIO);
}

/* ------------------------------------------------------------------ */
/* The scan                                                           */

struct run {
	struct repair		*rp;
	repair_fn		 fn;
	void			*arg;
	dev_t			 live;
	struct devs		 others;	/* secretsfs devices at other
						   mountpoints here */
	struct repair_stats	 st;
	struct repair_mountinfo	 mi;
};

enum how { HOW_REPAIR, HOW_PUBLISH, HOW_SUBDIR };

static void
proc_ids(pid_t pid, uid_t *uid, gid_t *gid)
{
	char path[64], line[256];
	unsigned r, e, s, f;
	FILE *fp;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(fp = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "Uid: %u %u %u %u", &r, &e, &s, &f) == 4)
			*uid = f;
		else if (sscanf(line, "Gid: %u %u %u %u", &r, &e, &s, &f) == 4)
			*gid = f;
	}
	fclose(fp);
}

static void
proc_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(buf, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if ((n = read(fd, buf, len - 1)) > 0) {
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	close(fd);
}

static void
attempt(struct run *run, pid_t pid, uint64_t ns, const char *target,
    enum how how)
{
	struct repair_result res = { .pid = pid, .mntns = ns,
	    .target = target };
	char comm[32];

	proc_comm(pid, comm, sizeof(comm));
	proc_ids(pid, &res.uid, &res.gid);
	res.comm = comm;
	if (how == HOW_PUBLISH)
		run->st.published++;
	else
		run->st.found++;
	if (how == HOW_SUBDIR) {
		res.err = EOPNOTSUPP;
		res.step = "a bind of a subdirectory of the mount";
	} else
		res.err = repair_one(run->rp, pid, target, how == HOW_PUBLISH,
		    &res.step);
	if (res.err == 0 && how == HOW_PUBLISH)
		log_info("published the mount at %s into the mount namespace "
		    "of process %d (%s), %llu", target, (int)pid, comm,
		    (unsigned long long)ns);
	else if (res.err == 0)
		log_info("repaired the dead mount at %s of process %d (%s), "
		    "mount namespace %llu", target, (int)pid, comm,
		    (unsigned long long)ns);
	else
		log_warnx("cannot %s the %smount at %s of process %d (%s), "
		    "mount namespace %llu: %s: %s", how == HOW_PUBLISH ?
		    "publish" : "repair", how == HOW_PUBLISH ? "" : "dead ",
		    target, (int)pid, comm, (unsigned long long)ns, res.step,
		    strerror(res.err));
	if (res.err == 0 && how != HOW_PUBLISH)
		run->st.repaired++;
	else if (res.err != 0)
		run->st.failed++;
	if (run->fn)
		run->fn(run->arg, &res);
}

static void
scan_ns(struct run *run, pid_t pid, uint64_t ns)
{
	struct repair_mountinfo *mi = &run->mi;
	char path[64], *line = NULL;
	size_t cap = 0;
	int rootfd = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	if (!(f = fopen(path, "re")))
		return;
	run->st.namespaces++;
	while (getline(&line, &cap, f) > 0) {
		enum repair_owner own;
		dev_t dev;
		bool ours;

		if (repair_parse_mountinfo(line, mi) < 0 ||
		    !repair_is_secretsfs(mi))
			continue;
		dev = makedev(mi->major, mi->minor);
		if (dev == run->live)
			continue;
		own = repair_owner(mi->source, run->rp->mp);
		if (own == REPAIR_OWNER_OTHER ||
		    (own == REPAIR_OWNER_UNNAMED && devs_has(&run->others, dev)))
			continue;
		ours = own == REPAIR_OWNER_OURS ||
		    devs_has(&run->rp->dead, dev) || hinted(run->rp, ns);
		if (rootfd < 0) {
			snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
			if ((rootfd = open(path, O_PATH | O_DIRECTORY |
			    O_CLOEXEC)) < 0)
				break;
		}
		if (!is_dead(rootfd, mi->target))
			continue;
		if (!ours) {
			run->st.foreign++;
			log_debug("dead secretsfs mount at %s of process %d, "
			    "mount namespace %llu: not known to be %s's",
			    mi->target, (int)pid, (unsigned long long)ns,
			    run->rp->mp);
			continue;
		}
		attempt(run, pid, ns, mi->target, strcmp(mi->root, "/") == 0 ?
		    HOW_REPAIR : HOW_SUBDIR);
	}
	if (rootfd >= 0)
		close(rootfd);
	free(line);
	fclose(f);
}

/* Our live mount's device, and the secretsfs devices mounted elsewhere. */
static int
look_here(struct run *run)
{
	struct repair_mountinfo *mi = &run->mi;
	char *line = NULL;
	size_t cap = 0;
	bool live = false, reused = false;
	dev_t was_dead = 0;
	struct stat st;
	FILE *f;
	int r = 0;

	if (!(f = fopen("/proc/self/mountinfo", "re")))
		return -errno;
	while (r == 0 && getline(&line, &cap, f) > 0) {
		dev_t dev;

		if (repair_parse_mountinfo(line, mi) < 0 ||
		    !repair_is_secretsfs(mi))
			continue;
		dev = makedev(mi->major, mi->minor);
		if (strcmp(mi->target, run->rp->mp) != 0)
			r = devs_add(&run->others, dev);
		else if (!devs_has(&run->rp->dead, dev)) {
			/* Stacked mounts are listed bottom first. */
			run->live = dev;
			live = true;
		} else {
			was_dead = dev;
			reused = true;
		}
	}
	free(line);
	fclose(f);
	if (r < 0)
		return r;
	/*
	 * The kernel hands a freed anonymous device number out again: once
	 * the dead mount was detached and no bind held its superblock, the
	 * new mount may get its number. The mount at our path that answers
	 * with that device is the live one, and no bind of the dead one can
	 * remain (its number was free): it is no longer a dead device.
	 */
	if (!live && reused && stat(run->rp->mp, &st) == 0 &&
	    st.st_dev == was_dead) {
		run->live = was_dead;
		live = true;
		devs_del(&run->rp->dead, was_dead);
	}
	/* What the mountpoint answers with must be that mount. */
	if (!live || stat(run->rp->mp, &st) != 0 || st.st_dev != run->live)
		return -ENOTCONN;
	return 0;
}

/*
 * A daemon in a mount namespace of its own (systemd's ProtectSystem=,
 * PrivateTmp=, ReadWritePaths=... all make one, and cut propagation
 * towards the host) mounts where no one else looks. Put a clone of the
 * mount at the same path in the namespace we were started from (our
 * parent's: PID 1 under systemd, or after daemonizing), unless propagation
 * already brought it there (a shared bind, as Kubernetes' Bidirectional
 * makes).
 */
static void
publish(struct run *run)
{
	struct repair_mountinfo *mi = &run->mi;
	pid_t parent = run->rp->origin ? run->rp->origin : getppid();
	uint64_t mine = ns_of(0), theirs;
	bool ours_there = false, other_there = false;
	char *line = NULL, path[64];
	size_t cap = 0;
	int rootfd;
	FILE *f;

	if (parent <= 0 || !mine || !(theirs = ns_of(parent)) ||
	    mine == theirs)
		return;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)parent);
	if (!(f = fopen(path, "re")))
		return;
	while (getline(&line, &cap, f) > 0) {
		if (repair_parse_mountinfo(line, mi) < 0)
			continue;
		if (repair_is_secretsfs(mi) &&
		    makedev(mi->major, mi->minor) == run->live)
			goto out;	/* visible already */
		if (strcmp(mi->target, run->rp->mp) == 0) {
			if (repair_is_secretsfs(mi))
				ours_there = true;
			else
				other_there = true;
		}
	}
	/* A dead secretsfs at our path there is ours; anything else is not. */
	snprintf(path, sizeof(path), "/proc/%d/root", (int)parent);
	if ((rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto out;
	if (other_there || (ours_there && !is_dead(rootfd, run->rp->mp)))
		log_warnx("cannot publish the mount at %s into the mount "
		    "namespace of process %d: something else is mounted there",
		    run->rp->mp, (int)parent);
	else
		attempt(run, parent, theirs, run->rp->mp, HOW_PUBLISH);
	close(rootfd);
out:
	free(line);
	fclose(f);
}

int
repair_run(struct repair *rp, repair_fn fn, void *arg,
    struct repair_stats *st)
{
	struct nsset seen = { 0 };
	struct run *run;
	struct dirent *de;
	DIR *d;
	int r;

	if (!(run = calloc(1, sizeof(*run))))
		return -ENOMEM;
	run->rp = rp;
	run->fn = fn;
	run->arg = arg;
	if ((r = look_here(run)) < 0)
		goto out;
	publish(run);
	if (!(d = opendir("/proc"))) {
		r = -errno;
		goto out;
	}
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		uint64_t ns;

		if (*end != '\0' || pid <= 0 || pid > INT_MAX)
			continue;
		if (!(ns = ns_of((pid_t)pid)))
			continue;	/* gone, or a kernel thread */
		if ((r = nsset_add(&seen, ns)) < 0)
			break;
		if (r == 1)
			scan_ns(run, (pid_t)pid, ns);
		r = 0;
	}
	closedir(d);
	if (r < 0)
		goto out;
	if (run->st.foreign)
		log_info("left %u dead secretsfs mount%s alone: not known to "
		    "be binds of %s (name a process of its container with "
		    "`secretsfs repair --pid`)", run->st.foreign,
		    run->st.foreign == 1 ? "" : "s", rp->mp);
	if (run->st.found)
		log_info("repaired %u of %u dead mount%s of %s",
		    run->st.repaired, run->st.found,
		    run->st.found == 1 ? "" : "s", rp->mp);
	r = (int)run->st.repaired;
out:
	if (st)
		*st = run->st;
	free(seen.v);
	devs_clear(&run->others);
	free(run);
	return r;
}

void
repair_set_origin(struct repair *rp, pid_t pid)
{
	if (rp)
		rp->origin = pid;
}
