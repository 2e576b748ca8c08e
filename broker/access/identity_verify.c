/*
 * identity: what the kernel must confirm before a cgroup path is believed.
 *
 * A cgroup's name is chosen by whoever may create it, and the kernel lets
 * anyone with write access to a cgroup directory create children there:
 * systemd gives that to a Delegate=yes service's user and to every user's
 * user@<uid>.service, and an operator may chown a subtree to a CI runner.
 * Such a user could name a child "libpod-<another container's id>.scope"
 * and move itself into it. So a container component is believed only when
 * no one but root could have made it: every directory from the hierarchy's
 * root down to it owned by root, writable by no group and no other, and
 * not marked delegated. And a process is the host only when its namespaces
 * are pid 1's: a runtime we do not know still makes namespaces.
 *
 * What a daemon without CAP_SYS_PTRACE can read decides how: the links in
 * /proc/<pid>/ns need ptrace access to the caller, /proc/<pid>/status and
 * /proc/<pid>/mountinfo do not. NSpid lists a pid per pid namespace from
 * the reader's down; mountinfo's first line is the first mount of the
 * caller's mount namespace, whose id no other namespace shares.
 *
 * Runs in the FUSE process (its allow-list has getxattr for this) and in
 * `secretsfs explain`.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <secretsfs/identity.h>

#include "identity_int.h"

#define HEAD_MAX	1024
#define STATUS_MAX	4096

/* ---- the hierarchy a path lives in -------------------------------------- */

/* Does the comma-separated list opts hold every controller of hier? */
static bool
opts_cover(const char *opts, size_t olen, const char *hier)
{
	const char *p = hier, *comma, *q, *qe, *end = opts + olen;
	size_t n;
	bool found;

	while (*p) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		found = false;
		for (q = opts; q < end; q = qe + 1) {
			qe = memchr(q, ',', (size_t)(end - q));
			if (qe == NULL)
				qe = end;
			if ((size_t)(qe - q) == n && memcmp(q, p, n) == 0)
				found = true;
		}
		if (!found)
			return false;
		p = comma ? comma + 1 : p + n;
	}
	return true;
}

/*
 * The directory of the hierarchy's root (hier "" for cgroup2) into dir,
 * and the length of the prefix of a /proc/<pid>/cgroup path the mount
 * shows at its top (its root field; 0 for "/"). Read line by line: a host
 * with many containers has a long mountinfo.
 */
static int
hierarchy_scan(const char *hier, char *dir, size_t len, size_t *strip)
{
	char *line = NULL, *f[6], *sep, *fstype, *sopts, *p;
	size_t cap = 0;
	FILE *fp;
	int r = -ENOENT, i;

	if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -errno;
	while (getline(&line, &cap, fp) > 0) {
		line[strcspn(line, "\n")] = '\0';
		p = line;
		for (i = 0; i < 6 && p; i++) {
			f[i] = p;
			if ((p = strchr(p, ' ')) != NULL)
				*p++ = '\0';
		}
		if (i < 6 || p == NULL || (sep = strstr(p, "- ")) == NULL)
			continue;
		fstype = sep + 2;
		if ((p = strchr(fstype, ' ')) == NULL)
			continue;
		*p++ = '\0';
		if ((sopts = strchr(p, ' ')) == NULL)
			continue;
		sopts++;
		if (hier[0] == '\0' ? strcmp(fstype, "cgroup2") != 0 :
		    (strcmp(fstype, "cgroup") != 0 ||
		    !opts_cover(sopts, strlen(sopts), hier)))
			continue;
		if ((size_t)snprintf(dir, len, "%s", f[4]) >= len) {
			r = -ENAMETOOLONG;
			break;
		}
		*strip = strcmp(f[3], "/") == 0 ? 0 : strlen(f[3]);
		r = 0;
		break;
	}
	free(line);
	fclose(fp);
	return r;
}

/*
 * The hierarchies found, kept for the life of the process: cgroup file
 * systems are mounted at boot, and one that moves afterwards makes its
 * directories missing, which refuses, never admits.
 */
#define HIER_CACHE	16

static struct {
	pthread_mutex_t	 lock;
	size_t		 n;
	struct {
		char	 hier[64];
		char	 dir[4096];
		size_t	 strip;
	} e[HIER_CACHE];
} hiers = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int
hierarchy_dir(const char *hier, char *dir, size_t len, size_t *strip)
{
	size_t i;
	int r;

	pthread_mutex_lock(&hiers.lock);
	for (i = 0; i < hiers.n; i++) {
		if (strcmp(hiers.e[i].hier, hier) != 0)
			continue;
		r = (size_t)snprintf(dir, len, "%s", hiers.e[i].dir) >= len ?
		    -ENAMETOOLONG : 0;
		*strip = hiers.e[i].strip;
		pthread_mutex_unlock(&hiers.lock);
		return r;
	}
	pthread_mutex_unlock(&hiers.lock);
	if ((r = hierarchy_scan(hier, dir, len, strip)) < 0)
		return r;
	pthread_mutex_lock(&hiers.lock);
	if (hiers.n < HIER_CACHE && strlen(hier) < sizeof(hiers.e[0].hier) &&
	    strlen(dir) < sizeof(hiers.e[0].dir)) {
		snprintf(hiers.e[hiers.n].hier, sizeof(hiers.e[0].hier), "%s",
		    hier);
		snprintf(hiers.e[hiers.n].dir, sizeof(hiers.e[0].dir), "%s",
		    dir);
		hiers.e[hiers.n].strip = *strip;
		hiers.n++;
	}
	pthread_mutex_unlock(&hiers.lock);
	return 0;
}

/* ---- the cgroup directories --------------------------------------------- */

struct walk {
	uid_t		 owner;		/* the non-root owner met */
	bool		 foreign;	/* some directory is not root's */
	bool		 two_owners;	/* ... not all one user */
	bool		 writable;	/* group or other may write */
	bool		 delegated;	/* a delegate xattr */
	char		 at[64];	/* the first one wanting */
	const char	*what;
};

static bool
has_xattr(const char *path, const char *name)
{
	/* ENODATA: not set; ENOTSUP: a kernel without xattrs on cgroupfs. */
	return getxattr(path, name, NULL, 0) >= 0 ||
	    (errno != ENODATA && errno != ENOTSUP);
}

static void
note(struct walk *w, const char *what, const char *rel, size_t n)
{
	if (w->what)
		return;
	w->what = what;
	snprintf(w->at, sizeof(w->at), "/%.*s", (int)n, rel);
}

static int
check_dir(const char *path, const char *rel, size_t n, struct walk *w)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != 0) {
		if (w->foreign && w->owner != st.st_uid)
			w->two_owners = true;
		w->foreign = true;
		w->owner = st.st_uid;
		note(w, "owned by a user", rel, n);
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		w->writable = true;
		note(w, "writable by group or other", rel, n);
	}
	/*
	 * systemd marks what it delegates: trusted.delegate as the system
	 * manager (readable only with CAP_SYS_ADMIN, so here a delegated
	 * subtree is caught by its owner instead), user.delegate too.
	 */
	if (has_xattr(path, "user.delegate") ||
	    has_xattr(path, "trusted.delegate")) {
		w->delegated = true;
		note(w, "delegated (xattr)", rel, n);
	}
	return 0;
}

/*
 * Every directory from the hierarchy's root through the first `len`
 * bytes of the caller's cgroup path.
 */
static int
walk_cgroup(const struct identity_trust *t, const struct caller *c,
    size_t len, struct walk *w)
{
	char dir[4096], path[4096];
	const char *rel;
	size_t strip = 0, i, n, dl;
	int r;

	if (t->cgroup_root) {
		if ((size_t)snprintf(dir, sizeof(dir), "%s",
		    t->cgroup_root) >= sizeof(dir))
			return -ENAMETOOLONG;
	} else if ((r = hierarchy_dir(c->cgroup_hier, dir, sizeof(dir),
	    &strip)) < 0)
		return r;
	if (strip > 0 && (strncmp(c->cgroup, "/", 1) != 0 || strip > len))
		return -ENOENT;
	rel = c->cgroup + strip;
	len -= strip;
	while (len > 0 && *rel == '/') {
		rel++;
		len--;
	}
	dl = strlen(dir);
	if ((r = check_dir(dir, rel, 0, w)) < 0)
		return r;
	for (i = 0; i <= len; i++) {
		if (i < len && rel[i] != '/')
			continue;
		n = i;
		if (n == 0 || dl + 1 + n >= sizeof(path))
			continue;
		memcpy(path, dir, dl);
		path[dl] = '/';
		memcpy(path + dl + 1, rel, n);
		path[dl + 1 + n] = '\0';
		if ((r = check_dir(path, rel, n, w)) < 0)
			return r;
	}
	return 0;
}

static void
refuse(struct caller *c, const char *why, const char *at)
{
	snprintf(c->refused, sizeof(c->refused), "%s%s%s", why,
	    at && *at ? " at " : "", at ? at : "");
	c->container_id[0] = '\0';
	c->pod_uid[0] = '\0';
	c->rootless = false;
	c->cgroup_owner = 0;
	c->runtime = c->cgroup_user_at ? IDENTITY_RUNTIME_SYSTEMD :
	    IDENTITY_RUNTIME_UNKNOWN;
}

static int
verify_container(const struct identity_trust *t, const char *proc_root,
    struct caller *c)
{
	struct walk w;
	int r;

	memset(&w, 0, sizeof(w));
	if (proc_root && !t->cgroup_root)
		return 0;
	if (c->cgroup_anchor == 0 || c->cgroup_anchor > strlen(c->cgroup)) {
		refuse(c, "container cgroup path unknown", NULL);
		return 0;
	}
	if ((r = walk_cgroup(t, c, c->cgroup_anchor, &w)) < 0) {
		if (r == -ENOMEM)
			return r;
		refuse(c, "cgroup cannot be checked", strerror(-r));
		return 0;
	}
	if (!w.foreign && !w.writable && !w.delegated && !c->cgroup_user_at) {
		c->cgroup_owner = 0;
		c->rootless = false;
		return 0;
	}
	/*
	 * A rootless runtime's subtree: believed only as that one user's
	 * naming, which rules must accept by naming the user.
	 */
	if (t->rootless && w.foreign && !w.two_owners && !w.writable) {
		c->cgroup_owner = w.owner;
		c->rootless = true;
		return 0;
	}
	refuse(c, w.what ? w.what : "below a user manager (user@.service)",
	    w.what ? w.at : NULL);
	return 0;
}

/* ---- the host ------------------------------------------------------------ */

static bool
host_namespaces(const char *proc_root, pid_t pid)
{
	char buf[STATUS_MAX], head[HEAD_MAX];
	long mine, init;

	if (identity_proc_read(proc_root, pid, "status", buf, sizeof(buf),
	    false) < 0 || identity_parse_nspid(buf, NULL) != 1)
		return false;
	if (identity_proc_read(proc_root, pid, "mountinfo", head,
	    sizeof(head), true) < 0 ||
	    (mine = identity_parse_first_mount(head)) < 0)
		return false;
	if (identity_proc_read(proc_root, 1, "mountinfo", head, sizeof(head),
	    true) < 0 || (init = identity_parse_first_mount(head)) < 0)
		return false;
	return mine == init;
}

int
identity_verify(const char *proc_root, const struct identity_trust *t,
    struct caller *c)
{
	static const struct identity_trust dflt;
	struct caller orig;
	int r;

	if (t == NULL)
		t = &dflt;
	c->refused[0] = '\0';
	c->rootless = false;
	c->cgroup_owner = 0;
	/*
	 * Below a user manager the path names a container only for a
	 * rootless runtime; refused, the caller stays what the parse said
	 * (that user's systemd unit), denied everything.
	 */
	if (c->cgroup_user_at) {
		orig = *c;
		if (identity_parse_delegated(c->cgroup, c) == 0) {
			if (t->rootless &&
			    (r = verify_container(t, proc_root, c)) < 0)
				return r;
			if (!t->rootless || c->refused[0]) {
				snprintf(orig.refused, sizeof(orig.refused),
				    "%s", c->refused[0] ? c->refused :
				    "below a user manager (user@.service)");
				*c = orig;
			}
			return 0;
		}
	}
	if (!identity_is_host(c))
		return verify_container(t, proc_root, c);
	if (!identity_host_cgroup(c->cgroup) ||
	    !host_namespaces(proc_root, c->pid)) {
		c->runtime = IDENTITY_RUNTIME_UNKNOWN;
		c->unit[0] = '\0';
	}
	return 0;
}

/* ---- the engine's word --------------------------------------------------- */

int
identity_verify_engine(const char *proc_root, struct caller *c, bool last)
{
	char buf[STATUS_MAX], *cg;
	struct caller init;
	int n_init, n_mine, r;

	if (c->container_id[0] == '\0' || c->container_pid <= 0 ||
	    c->refused[0] != '\0')
		return 0;
	r = identity_proc_read(proc_root, c->container_pid, "status", buf,
	    sizeof(buf), false);
	if (r == -ESRCH)
		goto gone;
	n_init = r == 0 ? identity_parse_nspid(buf, NULL) : 0;
	r = identity_proc_read(proc_root, c->pid, "status", buf, sizeof(buf),
	    false);
	n_mine = r == 0 ? identity_parse_nspid(buf, NULL) : -1;
	if (n_init == 0 || n_mine != n_init) {
		refuse(c, "not in the container's pid namespace", NULL);
		return 0;
	}
	if ((cg = malloc(32 * 1024)) == NULL)
		return -ENOMEM;
	memset(&init, 0, sizeof(init));
	r = identity_proc_read(proc_root, c->container_pid, "cgroup", cg,
	    32 * 1024, false);
	if (r == 0)
		r = identity_parse_cgroup(cg, &init);
	free(cg);
	if (r == -ESRCH)
		goto gone;
	if (r < 0 || strcmp(init.container_id, c->container_id) != 0 ||
	    init.cgroup_anchor != c->cgroup_anchor ||
	    strncmp(init.cgroup, c->cgroup, c->cgroup_anchor) != 0)
		refuse(c, "cgroup is not the container's own", NULL);
	return 0;
gone:
	if (!last)
		return -ESTALE;
	refuse(c, "the container's process is gone", NULL);
	return 0;
}
