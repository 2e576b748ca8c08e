/*
 * identity: pid -> caller, by way of /proc/<pid>/{stat,cgroup}.
 *
 * Everything here trusts the kernel's view only: the pid, uid and gid of
 * the FUSE request, and the cgroup path as seen from the broker's cgroup
 * namespace. Nothing the process can set about itself (comm, environment,
 * argv) decides who it is.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <secretsfs/lru.h>
#include <secretsfs/clk.h>
#include <secretsfs/identity.h>

#define STAT_BUF_MAX	4096
/* A hybrid host writes a dozen lines of a few hundred bytes at most. */
#define CGROUP_BUF_MAX	(32 * 1024)

static const char *const runtime_names[IDENTITY_RUNTIME_COUNT] = {
	[IDENTITY_RUNTIME_HOST] = "host",
	[IDENTITY_RUNTIME_DOCKER] = "docker",
	[IDENTITY_RUNTIME_PODMAN] = "podman",
	[IDENTITY_RUNTIME_CONTAINERD] = "containerd",
	[IDENTITY_RUNTIME_CRIO] = "cri-o",
	[IDENTITY_RUNTIME_KUBEPODS] = "kubepods",
	[IDENTITY_RUNTIME_SYSTEMD] = "systemd",
};

const char *
identity_runtime_name(enum identity_runtime rt)
{
	if ((unsigned)rt >= IDENTITY_RUNTIME_COUNT)
		return "unknown";
	return runtime_names[rt];
}

int
identity_runtime_from_name(const char *name, enum identity_runtime *rt)
{
	size_t i;

	if (name == NULL)
		return -EINVAL;
	for (i = 0; i < IDENTITY_RUNTIME_COUNT; i++) {
		if (strcmp(name, runtime_names[i]) == 0) {
			*rt = (enum identity_runtime)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool
identity_is_host(const struct caller *c)
{
	return c->runtime == IDENTITY_RUNTIME_HOST ||
	    c->runtime == IDENTITY_RUNTIME_SYSTEMD;
}

/* ---- cgroup path classification ---------------------------------------- */

enum cls_rank {
	RANK_HOST = 0,
	RANK_SERVICE,
	RANK_POD,
	RANK_CONTAINER,
};

struct cls {
	enum cls_rank		 rank;
	enum identity_runtime	 rt;
	char			 id[IDENTITY_ID_MAX];
	char			 pod[64];
	char			 unit[IDENTITY_NAME_MAX];
};

/* A component of a path: not NUL-terminated. */
struct comp {
	const char	*p;
	size_t		 n;
};

static bool
comp_eq(struct comp c, const char *s)
{
	return strlen(s) == c.n && memcmp(c.p, s, c.n) == 0;
}

static bool
comp_prefix(struct comp c, const char *s)
{
	size_t n = strlen(s);

	return c.n >= n && memcmp(c.p, s, n) == 0;
}

static bool
comp_suffix(struct comp c, const char *s)
{
	size_t n = strlen(s);

	return c.n >= n && memcmp(c.p + c.n - n, s, n) == 0;
}

static bool
comp_contains(struct comp c, const char *s)
{
	size_t n = strlen(s), i;

	for (i = 0; i + n <= c.n; i++)
		if (memcmp(c.p + i, s, n) == 0)
			return true;
	return false;
}

/* Exactly 64 lowercase hex digits: what every runtime uses for an id. */
static bool
is_hex64(const char *p, size_t n)
{
	size_t i;

	if (n != IDENTITY_ID_MAX - 1)
		return false;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* "<prefix><64hex><suffix>" with suffix possibly optional. */
static bool
match_id(struct comp c, const char *prefix, const char *suffix,
    bool suffix_optional, char id[IDENTITY_ID_MAX])
{
	size_t pn = strlen(prefix), sn = strlen(suffix);
	const char *p;

	if (!comp_prefix(c, prefix))
		return false;
	p = c.p + pn;
	if (c.n == pn + 64 && suffix_optional)
		;
	else if (c.n == pn + 64 + sn && comp_suffix(c, suffix))
		;
	else
		return false;
	if (!is_hex64(p, 64))
		return false;
	memcpy(id, p, 64);
	id[64] = '\0';
	return true;
}

/*
 * A pod uid as the kubelet writes it: a UUID, or a 32-hex hash for a
 * static pod; systemd slices spell '-' as '_'.
 */
static bool
pod_uid_set(const char *p, size_t n, char out[64])
{
	size_t i;

	if (n == 0 || n >= 64)
		return false;
	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (ch == '_' || ch == '-')
			out[i] = '-';
		else if (isxdigit((unsigned char)ch))
			out[i] = (char)tolower((unsigned char)ch);
		else
			return false;
	}
	out[n] = '\0';
	return true;
}

/* "kubepods-burstable-pod<uid>.slice", "kubelet-kubepods-pod<uid>.slice". */
static bool
match_pod_slice(struct comp c, char out[64])
{
	const char *p, *end;

	if (!comp_suffix(c, ".slice") || !comp_contains(c, "kubepods"))
		return false;
	end = c.p + c.n - strlen(".slice");
	/* The uid is hex and '_': its own text cannot hold "-pod". */
	for (p = end - 4; p >= c.p; p--)
		if (memcmp(p, "-pod", 4) == 0)
			break;
	if (p < c.p)
		return false;
	p += 4;
	return pod_uid_set(p, (size_t)(end - p), out);
}

/*
 * "kubepods-besteffort-pod<uid>.slice:cri-containerd:<64hex>": containerd
 * driving the systemd cgroup driver on a cgroupfs hierarchy.
 */
static bool
match_colon_form(struct comp c, struct cls *out)
{
	static const struct {
		const char		*tag;
		enum identity_runtime	 rt;
	} tags[] = {
		{ ":cri-containerd:", IDENTITY_RUNTIME_CONTAINERD },
		{ ":crio:", IDENTITY_RUNTIME_CRIO },
		{ ":docker:", IDENTITY_RUNTIME_DOCKER },
	};
	size_t i, tn;
	struct comp slice;
	char pod[64];

	if (c.n < 64)
		return false;
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		tn = strlen(tags[i].tag);
		if (c.n < tn + 64 + 1 || !is_hex64(c.p + c.n - 64, 64) ||
		    memcmp(c.p + c.n - 64 - tn, tags[i].tag, tn) != 0)
			continue;
		slice.p = c.p;
		slice.n = c.n - 64 - tn;
		if (out->pod[0] == '\0' && match_pod_slice(slice, pod))
			memcpy(out->pod, pod, sizeof(pod));
		memcpy(out->id, c.p + c.n - 64, 64);
		out->id[64] = '\0';
		out->rt = tags[i].rt;
		return true;
	}
	return false;
}

/*
 * Classify one cgroup path. The walk goes from the root down and stops at
 * the first container component: a container may own the subtree below
 * it, so anything deeper is its own naming and proves nothing.
 */
static void
classify_path(const char *path, size_t len, struct cls *out)
{
	const char *p = path, *end = path + len, *slash;
	struct comp c, prev = { "", 0 };
	bool in_kubepods = false;

	memset(out, 0, sizeof(*out));
	out->rt = IDENTITY_RUNTIME_HOST;

	while (p < end) {
		slash = memchr(p, '/', (size_t)(end - p));
		c.p = p;
		c.n = slash ? (size_t)(slash - p) : (size_t)(end - p);
		p = slash ? slash + 1 : end;
		if (c.n == 0)
			continue;

		/*
		 * A systemd user manager delegates its subtree to an
		 * unprivileged user, who can name cgroups anything (including
		 * another container's id): nothing below it is trusted.
		 */
		if (comp_prefix(c, "user@") && comp_suffix(c, ".service")) {
			if (out->unit[0] == '\0' && out->pod[0] == '\0' &&
			    c.n < sizeof(out->unit)) {
				memcpy(out->unit, c.p, c.n);
				out->unit[c.n] = '\0';
			}
			break;
		}

		if (match_id(c, "docker-", ".scope", false, out->id)) {
			out->rt = IDENTITY_RUNTIME_DOCKER;
			break;
		}
		if (comp_eq(prev, "docker") && is_hex64(c.p, c.n)) {
			memcpy(out->id, c.p, 64);
			out->id[64] = '\0';
			out->rt = IDENTITY_RUNTIME_DOCKER;
			break;
		}
		/* libpod-conmon-<id> fails the hex test: conmon is not the container. */
		if (match_id(c, "libpod-", ".scope", true, out->id) ||
		    match_id(c, "libpod-payload-", "", true, out->id)) {
			out->rt = IDENTITY_RUNTIME_PODMAN;
			break;
		}
		if (match_id(c, "cri-containerd-", ".scope", false, out->id)) {
			out->rt = IDENTITY_RUNTIME_CONTAINERD;
			break;
		}
		if (match_id(c, "crio-", ".scope", false, out->id)) {
			out->rt = IDENTITY_RUNTIME_CRIO;
			break;
		}
		if (match_colon_form(c, out))
			break;
		if (out->pod[0] != '\0' && is_hex64(c.p, c.n)) {
			memcpy(out->id, c.p, 64);
			out->id[64] = '\0';
			out->rt = IDENTITY_RUNTIME_KUBEPODS;
			break;
		}

		if (comp_contains(c, "kubepods")) {
			in_kubepods = true;
			if (out->pod[0] == '\0')
				match_pod_slice(c, out->pod);
		} else if (in_kubepods && out->pod[0] == '\0' &&
		    comp_prefix(c, "pod")) {
			pod_uid_set(c.p + 3, c.n - 3, out->pod);
		} else if (out->unit[0] == '\0' && out->pod[0] == '\0' &&
		    c.n > strlen(".service") && comp_suffix(c, ".service") &&
		    c.n < sizeof(out->unit)) {
			memcpy(out->unit, c.p, c.n);
			out->unit[c.n] = '\0';
		}
		prev = c;
	}

	if (out->id[0] != '\0') {
		out->rank = RANK_CONTAINER;
		out->unit[0] = '\0';
	} else if (out->pod[0] != '\0') {
		out->rank = RANK_POD;
		out->rt = IDENTITY_RUNTIME_KUBEPODS;
		out->unit[0] = '\0';
	} else if (out->unit[0] != '\0') {
		out->rank = RANK_SERVICE;
		out->rt = IDENTITY_RUNTIME_SYSTEMD;
	} else {
		out->rank = RANK_HOST;
		out->rt = IDENTITY_RUNTIME_HOST;
	}
}

/* Does a comma-separated controller list hold this name? */
static bool
has_controller(const char *list, size_t n, const char *name)
{
	size_t len = strlen(name);
	const char *p = list, *end = list + n, *comma;

	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		if (!comma)
			comma = end;
		if ((size_t)(comma - p) == len && memcmp(p, name, len) == 0)
			return true;
		p = comma + 1;
	}
	return false;
}

int
identity_parse_cgroup(const char *text, struct caller *c)
{
	const char *line, *nl, *c1, *c2, *path;
	const char *best_path = NULL;
	size_t best_len = 0, plen;
	int best_prio = -1, prio;
	struct cls cur, best;
	bool digits;

	memset(&best, 0, sizeof(best));
	for (line = text; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		c1 = memchr(line, ':', nl ? (size_t)(nl - line) : strlen(line));
		if (!c1 || c1 == line)
			continue;
		digits = true;
		for (path = line; path < c1; path++)
			if (*path < '0' || *path > '9')
				digits = false;
		if (!digits)
			continue;
		c2 = memchr(c1 + 1, ':', nl ? (size_t)(nl - c1 - 1) :
		    strlen(c1 + 1));
		if (!c2)
			continue;
		path = c2 + 1;
		plen = nl ? (size_t)(nl - path) : strlen(path);
		if (plen == 0 || path[0] != '/')
			continue;

		if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1)
			prio = 3;	/* the v2 line */
		else if (has_controller(c1 + 1, (size_t)(c2 - c1 - 1),
		    "name=systemd"))
			prio = 2;
		else
			prio = 1;

		classify_path(path, plen, &cur);
		if (best_path == NULL || cur.rank > best.rank ||
		    (cur.rank == best.rank && prio > best_prio)) {
			best = cur;
			best_prio = prio;
			best_path = path;
			best_len = plen;
		}
	}
	if (best_path == NULL)
		return -EINVAL;

	/* Never a cut-off path: a glob could match what the whole does not. */
	if (best_len < sizeof(c->cgroup)) {
		memcpy(c->cgroup, best_path, best_len);
		c->cgroup[best_len] = '\0';
	} else
		c->cgroup[0] = '\0';
	c->runtime = best.rt;
	memcpy(c->container_id, best.id, sizeof(c->container_id));
	memcpy(c->pod_uid, best.pod, sizeof(c->pod_uid));
	memcpy(c->unit, best.unit, sizeof(c->unit));
	return 0;
}

int
identity_parse_stat(const char *text, uint64_t *start_time, char comm[17])
{
	const char *open, *close, *p;
	unsigned long long v;
	size_t n;
	char *end;
	int field;

	open = strchr(text, '(');
	close = strrchr(text, ')');
	if (!open || !close || close < open)
		return -EINVAL;
	n = (size_t)(close - open - 1);
	if (n > 16)
		n = 16;
	memcpy(comm, open + 1, n);
	comm[n] = '\0';

	/* After ')' come field 3 (state) onwards, one space apart. */
	p = close + 1;
	for (field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++;
		if (*p == '\0')
			return -EINVAL;
	}
	while (*p == ' ')
		p++;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || (*end != ' ' && *end != '\n' && *end != '\0'))
		return -EINVAL;
	*start_time = v;
	return 0;
}

/* ---- /proc reading ------------------------------------------------------ */

static int
proc_read(const char *root, pid_t pid, const char *name, char *buf,
    size_t size)
{
	char path[4096];
	size_t off = 0;
	ssize_t r;
	int fd, n, err;

	n = snprintf(path, sizeof(path), "%s/%d/%s", root ? root : "/proc",
	    (int)pid, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return errno == ENOENT ? -ESRCH : -errno;
	for (;;) {
		if (off == size - 1) {
			close(fd);
			return -EFBIG;
		}
		r = read(fd, buf + off, size - 1 - off);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			err = errno;
			close(fd);
			return err == ENOENT ? -ESRCH : -err;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	buf[off] = '\0';
	return 0;
}

static int
read_stat(const char *root, pid_t pid, uint64_t *start, char comm[17])
{
	char buf[STAT_BUF_MAX];
	int r;

	if ((r = proc_read(root, pid, "stat", buf, sizeof(buf))) < 0)
		return r;
	return identity_parse_stat(buf, start, comm);
}

/*
 * The cgroup of the process whose start time is `start`: read between two
 * stat reads so that a pid reused in between is caught, not misattributed.
 */
static int
read_cgroup(const char *root, pid_t pid, uint64_t start, struct caller *c)
{
	char *buf, comm[17];
	uint64_t again;
	int r;

	if ((buf = malloc(CGROUP_BUF_MAX)) == NULL)
		return -ENOMEM;
	r = proc_read(root, pid, "cgroup", buf, CGROUP_BUF_MAX);
	if (r == 0)
		r = identity_parse_cgroup(buf, c);
	free(buf);
	if (r < 0)
		return r;
	if ((r = read_stat(root, pid, &again, comm)) < 0)
		return r;
	return again == start ? 0 : -ESRCH;
}

int
identity_read(const char *proc_root, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out)
{
	struct caller c;
	int r;

	memset(out, 0, sizeof(*out));
	if (pid <= 0)
		return -ESRCH;
	memset(&c, 0, sizeof(c));
	if ((r = read_stat(proc_root, pid, &c.start_time, c.comm)) < 0)
		return r;
	if ((r = read_cgroup(proc_root, pid, c.start_time, &c)) < 0)
		return r;
	c.pid = pid;
	c.uid = uid;
	c.gid = gid;
	*out = c;
	return 0;
}

/* ---- the cache ---------------------------------------------------------- */

/*
 * Pinning. A hit must prove that the pid still names the process the entry
 * was read from. Re-reading /proc/<pid>/stat for the start time proves it
 * but costs an openat, two reads and a close, three times per open() of a
 * secret. Instead an entry keeps /proc/<pid>/comm open: the descriptor is
 * bound to the process (its struct pid), not to the number, and reading it
 * fails with ESRCH once that process has exited and been reaped, which is
 * the only way its number can be given to another. One pread() therefore
 * proves the pid is the same process and gives its current comm. This works
 * for a thread id as well as a process id (FUSE sends the caller's thread
 * id), on any kernel, unlike a pidfd of a non-leader thread.
 *
 * Descriptors are bounded: at most PIN_MAX, and no more than an eighth of
 * RLIMIT_NOFILE. An entry beyond that, and every entry of a fake /proc tree
 * (a test's, which has no processes behind it), falls back to the start
 * time comparison.
 */
#define PIN_MAX		256

/* Only what the cgroup file gives: never uid/gid, never engine data. */
struct id_entry {
	struct id_entry		*hnext;
	struct lru_node		 lru;
	pid_t			 pid;
	int			 pin;		/* /proc/<pid>/comm, or -1 */
	uint64_t		 start_time;
	int64_t			 expires_ms;
	enum identity_runtime	 runtime;
	char			 cgroup[IDENTITY_CGROUP_MAX];
	char			 container_id[IDENTITY_ID_MAX];
	char			 pod_uid[64];
	char			 unit[IDENTITY_NAME_MAX];
};

struct identity_cache {
	pthread_mutex_t		 lock;
	char			*proc_root;
	size_t			 max;
	int64_t			 ttl_ms;
	size_t			 nbuckets;	/* a power of two */
	struct id_entry		**buckets;
	struct lru		 lru;
	size_t			 count;
	size_t			 pins, pin_max;	/* pins counts reserved ones too */
	uint64_t		 hits, misses, evictions;
};

static size_t
bucket_of(const struct identity_cache *ic, pid_t pid)
{
	uint32_t h = (uint32_t)pid * 2654435761u;

	return (h ^ (h >> 16)) & (ic->nbuckets - 1);
}

static size_t
pin_budget(size_t max_entries)
{
	struct rlimit rl;
	size_t n = PIN_MAX;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 8 < n)
		n = (size_t)(rl.rlim_cur / 8);
	return n < max_entries ? n : max_entries;
}

static int
pin_open(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

/*
 * 0 and the process's comm as /proc/<pid>/stat would give it, or -errno:
 * -ESRCH once the pinned process is gone.
 */
static int
pin_read(int fd, char comm[17])
{
	char buf[64];
	ssize_t r;
	size_t n;

	do
		r = pread(fd, buf, sizeof(buf), 0);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -errno;
	if (r == 0)
		return -ESRCH;
	n = (size_t)r;
	if (buf[n - 1] == '\n')
		n--;
	if (n > 16)
		n = 16;
	memcpy(comm, buf, n);
	comm[n] = '\0';
	return 0;
}

struct identity_cache *
identity_cache_new(size_t max_entries, int64_t ttl_ms)
{
	struct identity_cache *ic;
	size_t nb = 16;

	if ((ic = calloc(1, sizeof(*ic))) == NULL)
		return NULL;
	while (nb < max_entries && nb < ((size_t)1 << 20))
		nb <<= 1;
	if ((ic->buckets = calloc(nb, sizeof(*ic->buckets))) == NULL) {
		free(ic);
		return NULL;
	}
	if (pthread_mutex_init(&ic->lock, NULL) != 0) {
		free(ic->buckets);
		free(ic);
		return NULL;
	}
	ic->nbuckets = nb;
	ic->max = max_entries;
	ic->ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
	ic->pin_max = pin_budget(max_entries);
	return ic;
}

static struct id_entry *
find_locked(struct identity_cache *ic, pid_t pid)
{
	struct id_entry *e;

	for (e = ic->buckets[bucket_of(ic, pid)]; e; e = e->hnext)
		if (e->pid == pid)
			return e;
	return NULL;
}

static void
unpin_locked(struct identity_cache *ic, struct id_entry *e)
{
	if (e->pin == -1)
		return;
	close(e->pin);
	e->pin = -1;
	ic->pins--;
}

static void
remove_locked(struct identity_cache *ic, struct id_entry *e)
{
	struct id_entry **pp;

	for (pp = &ic->buckets[bucket_of(ic, e->pid)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	lru_unlink(&ic->lru, &e->lru);
	unpin_locked(ic, e);
	ic->count--;
}

static void
flush_locked(struct identity_cache *ic)
{
	struct id_entry *e;

	while ((e = LRU_ENTRY(ic->lru.head, struct id_entry, lru)) != NULL) {
		remove_locked(ic, e);
		free(e);
	}
}

void
identity_cache_free(struct identity_cache *ic)
{
	if (ic == NULL)
		return;
	flush_locked(ic);
	pthread_mutex_destroy(&ic->lock);
	free(ic->buckets);
	free(ic->proc_root);
	free(ic);
}

int
identity_cache_set_proc_root(struct identity_cache *ic, const char *root)
{
	char *dup = NULL;

	if (root && (dup = strdup(root)) == NULL)
		return -ENOMEM;
	pthread_mutex_lock(&ic->lock);
	free(ic->proc_root);
	ic->proc_root = dup;
	flush_locked(ic);
	pthread_mutex_unlock(&ic->lock);
	return 0;
}

void
identity_cache_set_pin_max(struct identity_cache *ic, size_t n)
{
	pthread_mutex_lock(&ic->lock);
	ic->pin_max = n;
	pthread_mutex_unlock(&ic->lock);
}

void
identity_cache_flush(struct identity_cache *ic)
{
	pthread_mutex_lock(&ic->lock);
	flush_locked(ic);
	pthread_mutex_unlock(&ic->lock);
}

void
identity_cache_stats(struct identity_cache *ic, struct identity_cache_stats *st)
{
	struct id_entry *e;

	pthread_mutex_lock(&ic->lock);
	st->hits = ic->hits;
	st->misses = ic->misses;
	st->evictions = ic->evictions;
	st->entries = ic->count;
	st->pinned = 0;
	for (e = LRU_ENTRY(ic->lru.head, struct id_entry, lru); e;
	    e = LRU_ENTRY(e->lru.next, struct id_entry, lru))
		if (e->pin != -1)
			st->pinned++;
	pthread_mutex_unlock(&ic->lock);
}

/* Takes over pin (-1 for none), closing the entry's previous one. */
static void
entry_fill(struct identity_cache *ic, struct id_entry *e,
    const struct caller *c, int pin, int64_t expires)
{
	if (e->pin != pin)
		unpin_locked(ic, e);
	e->pin = pin;
	e->pid = c->pid;
	e->start_time = c->start_time;
	e->expires_ms = expires;
	e->runtime = c->runtime;
	memcpy(e->cgroup, c->cgroup, sizeof(e->cgroup));
	memcpy(e->container_id, c->container_id, sizeof(e->container_id));
	memcpy(e->pod_uid, c->pod_uid, sizeof(e->pod_uid));
	memcpy(e->unit, c->unit, sizeof(e->unit));
}

static void
hit_locked(struct identity_cache *ic, struct id_entry *e, struct caller *c)
{
	c->runtime = e->runtime;
	memcpy(c->cgroup, e->cgroup, sizeof(c->cgroup));
	memcpy(c->container_id, e->container_id, sizeof(c->container_id));
	memcpy(c->pod_uid, e->pod_uid, sizeof(c->pod_uid));
	memcpy(c->unit, e->unit, sizeof(c->unit));
	lru_unlink(&ic->lru, &e->lru);
	lru_push(&ic->lru, &e->lru);
	ic->hits++;
}

static bool
live_locked(const struct identity_cache *ic, const struct id_entry *e,
    int64_t now)
{
	return ic->ttl_ms == 0 || now < e->expires_ms;
}

int
identity_lookup(struct identity_cache *ic, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out)
{
	struct id_entry *e, *fresh;
	struct caller c;
	int64_t now;
	bool pinning = false;
	int r, pin = -1;

	memset(out, 0, sizeof(*out));
	if (pid <= 0)
		return -ESRCH;
	memset(&c, 0, sizeof(c));
	c.pid = pid;
	c.uid = uid;
	c.gid = gid;

	/*
	 * A pinned entry: one pread() under the lock, which also keeps the
	 * descriptor from being closed (and its number reused) meanwhile.
	 */
	now = clk_mono_ms();
	pthread_mutex_lock(&ic->lock);
	e = find_locked(ic, pid);
	if (e && e->pin != -1) {
		if (live_locked(ic, e, now) && pin_read(e->pin, c.comm) == 0) {
			c.start_time = e->start_time;
			hit_locked(ic, e, &c);
			pthread_mutex_unlock(&ic->lock);
			*out = c;
			return 0;
		}
		/* Gone or expired: whatever has this pid now is read afresh. */
		remove_locked(ic, e);
		free(e);
	}
	pthread_mutex_unlock(&ic->lock);

	/* Read outside the lock: /proc can be slow under memory pressure. */
	if ((r = read_stat(ic->proc_root, pid, &c.start_time, c.comm)) < 0)
		return r;

	pthread_mutex_lock(&ic->lock);
	e = find_locked(ic, pid);
	if (e && e->pin == -1 && e->start_time == c.start_time &&
	    live_locked(ic, e, now)) {
		hit_locked(ic, e, &c);
		pthread_mutex_unlock(&ic->lock);
		*out = c;
		return 0;
	}
	ic->misses++;
	/* Reserve a descriptor now so that racing misses cannot overrun it. */
	if (ic->proc_root == NULL && ic->max > 0 && ic->pins < ic->pin_max) {
		ic->pins++;
		pinning = true;
	}
	pthread_mutex_unlock(&ic->lock);

	/*
	 * Pinned before the cgroup read and checked after it: the pinned
	 * process then held the pid all along, so the second stat read (which
	 * matched the first's start time) and the cgroup read were its own.
	 */
	if (pinning)
		pin = pin_open(pid);
	r = read_cgroup(ic->proc_root, pid, c.start_time, &c);
	if (r == 0 && pin != -1 && pin_read(pin, c.comm) < 0) {
		close(pin);
		pin = -1;
	}
	if (r < 0) {
		if (pin != -1)
			close(pin);
		pin = -1;
	}
	if (pinning && pin == -1) {
		pthread_mutex_lock(&ic->lock);
		ic->pins--;
		pthread_mutex_unlock(&ic->lock);
	}
	if (r < 0)
		return r;
	*out = c;
	if (ic->max == 0)
		return 0;

	/* Failing to cache costs a re-read later, nothing else. */
	fresh = malloc(sizeof(*fresh));
	pthread_mutex_lock(&ic->lock);
	e = find_locked(ic, pid);
	if (e) {
		/* Same pid: a newer process, or another thread's miss. */
		entry_fill(ic, e, &c, pin, now + ic->ttl_ms);
		lru_unlink(&ic->lru, &e->lru);
		lru_push(&ic->lru, &e->lru);
		pin = -1;
	} else if (fresh) {
		while (ic->count >= ic->max && lru_oldest(&ic->lru)) {
			struct id_entry *old = LRU_ENTRY(lru_oldest(&ic->lru),
			    struct id_entry, lru);

			remove_locked(ic, old);
			free(old);
			ic->evictions++;
		}
		fresh->pin = -1;
		entry_fill(ic, fresh, &c, pin, now + ic->ttl_ms);
		fresh->hnext = ic->buckets[bucket_of(ic, pid)];
		ic->buckets[bucket_of(ic, pid)] = fresh;
		lru_push(&ic->lru, &fresh->lru);
		ic->count++;
		fresh = NULL;
		pin = -1;
	}
	if (pin != -1) {
		close(pin);
		ic->pins--;
	}
	pthread_mutex_unlock(&ic->lock);
	free(fresh);
	return 0;
}
