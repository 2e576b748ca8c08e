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

#include <secretsfs/clk.h>
#include <secretsfs/identity.h>
#include <secretsfs/lru.h>

#include "identity_int.h"

#define STAT_BUF_MAX	4096
/* A hybrid host writes a dozen lines of a few hundred bytes at most. */
#define CGROUP_BUF_MAX	(32 * 1024)

/* ---- /proc reading ------------------------------------------------------ */

int
identity_proc_read(const char *root, pid_t pid, const char *name, char *buf,
    size_t size, bool head)
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
		/* A seq_file gives whole lines: one read has the first. */
		if (head)
			break;
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

	r = identity_proc_read(root, pid, "stat", buf, sizeof(buf), false);
	if (r < 0)
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
	r = identity_proc_read(root, pid, "cgroup", buf, CGROUP_BUF_MAX,
	    false);
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

int
identity_read_trusted(const char *proc_root, const struct identity_trust *t,
    pid_t pid, uid_t uid, gid_t gid, struct caller *out)
{
	int r;

	if ((r = identity_read(proc_root, pid, uid, gid, out)) < 0)
		return r;
	if ((r = identity_verify(proc_root, t, out)) < 0)
		memset(out, 0, sizeof(*out));
	return r;
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
	char			 refused[128];
	uid_t			 cgroup_owner;
	bool			 rootless;
	char			 cgroup_hier[64];
	uint16_t		 cgroup_anchor, cgroup_user_at;
	bool			 engine_checked;
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
	bool			 verify;	/* a trust was set */
	struct identity_trust	 trust;	/* cgroup_root: a copy */
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
	free((char *)ic->trust.cgroup_root);
	free(ic);
}

void
identity_cache_set_trust(struct identity_cache *ic,
    const struct identity_trust *t)
{
	pthread_mutex_lock(&ic->lock);
	free((char *)ic->trust.cgroup_root);
	ic->trust.rootless = t->rootless;
	ic->trust.cgroup_root = t->cgroup_root ? strdup(t->cgroup_root) : NULL;
	/* Without the copy every container would be refused: fail closed. */
	ic->verify = true;
	flush_locked(ic);
	pthread_mutex_unlock(&ic->lock);
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

int
identity_cache_note(struct identity_cache *ic, const struct caller *c)
{
	struct id_entry *e;
	int r = -ESRCH;

	pthread_mutex_lock(&ic->lock);
	e = find_locked(ic, c->pid);
	if (e && e->start_time == c->start_time) {
		memcpy(e->refused, c->refused, sizeof(e->refused));
		if (c->refused[0] != '\0') {
			e->container_id[0] = '\0';
			e->pod_uid[0] = '\0';
			e->runtime = c->runtime;
		}
		e->engine_checked = c->engine_checked;
		r = 0;
	}
	pthread_mutex_unlock(&ic->lock);
	return r;
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
	memcpy(e->refused, c->refused, sizeof(e->refused));
	e->cgroup_owner = c->cgroup_owner;
	e->rootless = c->rootless;
	memcpy(e->cgroup_hier, c->cgroup_hier, sizeof(e->cgroup_hier));
	e->cgroup_anchor = c->cgroup_anchor;
	e->cgroup_user_at = c->cgroup_user_at;
	e->engine_checked = false;
}

static void
hit_locked(struct identity_cache *ic, struct id_entry *e, struct caller *c)
{
	c->runtime = e->runtime;
	memcpy(c->cgroup, e->cgroup, sizeof(c->cgroup));
	memcpy(c->container_id, e->container_id, sizeof(c->container_id));
	memcpy(c->pod_uid, e->pod_uid, sizeof(c->pod_uid));
	memcpy(c->unit, e->unit, sizeof(c->unit));
	memcpy(c->refused, e->refused, sizeof(c->refused));
	c->cgroup_owner = e->cgroup_owner;
	c->rootless = e->rootless;
	memcpy(c->cgroup_hier, e->cgroup_hier, sizeof(c->cgroup_hier));
	c->cgroup_anchor = e->cgroup_anchor;
	c->cgroup_user_at = e->cgroup_user_at;
	c->engine_checked = e->engine_checked;
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
	if (r == 0 && ic->verify)
		r = identity_verify(ic->proc_root, &ic->trust, &c);
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
