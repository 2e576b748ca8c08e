/*
 * audit: denials that cannot flood the trail.
 *
 * A denial costs the denied caller nothing, and a record costs the host
 * disk: one container looking up names it may not see could fill the
 * audit file system, and with on_failure "deny" a full trail refuses every
 * reader on the host. So per caller (its container id; the uid of a host
 * process; the cgroup of any other) the first denied_per_caller denied
 * records of each denied_interval are written in full, the rest only
 * counted, and one "denied_summary" record per caller and interval gives
 * their count and a hash of their names. Below the disk reserve no denied
 * record is written in full, only counted. Allowed accesses and errors
 * never come here: they are written, or the access fails.
 *
 * A summary is written when its caller's next interval begins, when any
 * record is written after its interval has ended, by the flusher thread
 * (audit.c) within a flush interval of its end, when its entry is
 * evicted, and at close.
 *
 * Runs in the FUSE process (its allow-list has statfs for the reserve).
 */
#include <sys/statvfs.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/audit.h>
#include <secretsfs/clk.h>
#include <secretsfs/lru.h>

#include "audit_int.h"

#define LIMIT_CALLERS	512
#define LIMIT_BUCKETS	1024	/* a power of two */
#define SWEEP_MAX	16	/* summaries one record may write */
#define DISK_CHECK_MS	50	/* a free-space answer holds this long */
#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

/* What a summary says of its caller: no labels, nothing of the engine's. */
struct lim_who {
	pid_t			 pid;
	uid_t			 uid;
	gid_t			 gid;
	char			 comm[17];
	enum identity_runtime	 runtime;
	char			 container_id[IDENTITY_ID_MAX];
	char			 container_name[IDENTITY_NAME_MAX];
	char			 cgroup[IDENTITY_CGROUP_MAX];
	char			 refused[128];
};

struct lim_entry {
	struct lim_entry	*hnext;
	struct lru_node		 lru;
	uint64_t		 hkey;
	char			 key[IDENTITY_CGROUP_MAX + 16];
	int64_t			 start_ms;	/* of this interval */
	uint32_t		 written;
	uint64_t		 suppressed;
	uint64_t		 names;		/* FNV-1a of their names */
	bool			 low_disk;	/* some for the reserve */
	struct lim_who		 who;		/* the last counted */
};

struct audit_limit {
	pthread_mutex_t		 lock;
	uint32_t		 burst;		/* 0: no limit */
	int64_t			 interval_ms;
	uint64_t		 reserve;	/* bytes; 0: none */
	struct lim_entry	*buckets[LIMIT_BUCKETS];
	struct lru		 lru;
	size_t			 count;
	_Atomic int64_t		 next_sweep_ms;
	int64_t			 disk_at_ms;
	bool			 disk_low;
};

/* A summary to write once the limiter's lock is let go. */
struct lim_due {
	uint64_t		 count, names;
	bool			 low_disk;
	struct lim_who		 who;
};

static uint64_t
fnv(uint64_t h, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV_PRIME;
	}
	return h;
}

struct audit_limit *
audit_limit_new(uint32_t burst, int64_t interval_ms, uint64_t reserve)
{
	struct audit_limit *l;

	if (burst == 0 && reserve == 0)
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if (pthread_mutex_init(&l->lock, NULL) != 0) {
		free(l);
		return NULL;
	}
	l->burst = burst;
	l->interval_ms = interval_ms > 0 ? interval_ms : 1000;
	l->reserve = reserve;
	atomic_store(&l->next_sweep_ms, INT64_MAX);
	return l;
}

void
audit_limit_free(struct audit_limit *l)
{
	struct lim_entry *e;

	if (l == NULL)
		return;
	while ((e = LRU_ENTRY(l->lru.head, struct lim_entry, lru)) != NULL) {
		lru_unlink(&l->lru, &e->lru);
		free(e);
	}
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static void
caller_key(const struct caller *c, char *key, size_t len)
{
	if (c == NULL)
		snprintf(key, len, "n:");
	else if (c->container_id[0] != '\0')
		snprintf(key, len, "c:%s", c->container_id);
	else if (identity_is_host(c) && c->refused[0] == '\0')
		snprintf(key, len, "u:%u", (unsigned)c->uid);
	else
		snprintf(key, len, "g:%u:%s", (unsigned)c->uid, c->cgroup);
}

static void
who_set(struct lim_who *w, const struct caller *c)
{
	memset(w, 0, sizeof(*w));
	if (c == NULL)
		return;
	w->pid = c->pid;
	w->uid = c->uid;
	w->gid = c->gid;
	memcpy(w->comm, c->comm, sizeof(w->comm));
	w->runtime = c->runtime;
	memcpy(w->container_id, c->container_id, sizeof(w->container_id));
	memcpy(w->container_name, c->container_name,
	    sizeof(w->container_name));
	memcpy(w->cgroup, c->cgroup, sizeof(w->cgroup));
	memcpy(w->refused, c->refused, sizeof(w->refused));
}

static void
take_due(struct lim_entry *e, struct lim_due *d)
{
	d->count = e->suppressed;
	d->names = e->names;
	d->low_disk = e->low_disk;
	d->who = e->who;
	e->suppressed = 0;
	e->names = FNV_OFFSET;
	e->low_disk = false;
}

static void
unhash_locked(struct audit_limit *l, struct lim_entry *e)
{
	struct lim_entry **pp;

	for (pp = &l->buckets[e->hkey & (LIMIT_BUCKETS - 1)]; *pp;
	    pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	lru_unlink(&l->lru, &e->lru);
	l->count--;
}

/* The entries whose interval is over and who have a count: at most max. */
static size_t
sweep_locked(struct audit_limit *l, int64_t now, bool all,
    struct lim_due *due, size_t max)
{
	struct lim_entry *e;
	int64_t next = INT64_MAX;
	size_t n = 0;

	for (e = LRU_ENTRY(l->lru.head, struct lim_entry, lru); e;
	    e = LRU_ENTRY(e->lru.next, struct lim_entry, lru)) {
		if (e->suppressed == 0)
			continue;
		if ((all || now - e->start_ms >= l->interval_ms) && n < max)
			take_due(e, &due[n++]);
		else if (e->start_ms + l->interval_ms < next)
			next = e->start_ms + l->interval_ms;
	}
	atomic_store(&l->next_sweep_ms, next);
	return n;
}

static void
write_due(struct audit *a, const struct lim_due *due, size_t n)
{
	char hash[32], reason[AUDIT_REASON_MAX];
	struct caller *c;
	size_t i;

	if (n == 0 || (c = malloc(sizeof(*c))) == NULL)
		return;
	for (i = 0; i < n; i++) {
		const struct lim_who *w = &due[i].who;
		struct audit_kv kv[] = {
			AUDIT_NUM(AUDIT_F_OUTCOME, AUDIT_OUTCOME_DENY),
			AUDIT_STR(AUDIT_F_REASON, reason),
			AUDIT_NUM(AUDIT_F_COUNT, (long long)due[i].count),
			AUDIT_STR(AUDIT_F_NAMES_HASH, hash),
		};
		struct rec rc = { .ev = AUDIT_EV_DENIED_SUMMARY,
		    .with_caller = true, .who = c };
		size_t k;

		memset(c, 0, sizeof(*c));
		c->pid = w->pid;
		c->uid = w->uid;
		c->gid = w->gid;
		memcpy(c->comm, w->comm, sizeof(c->comm));
		c->runtime = w->runtime;
		memcpy(c->container_id, w->container_id,
		    sizeof(c->container_id));
		memcpy(c->container_name, w->container_name,
		    sizeof(c->container_name));
		memcpy(c->cgroup, w->cgroup, sizeof(c->cgroup));
		memcpy(c->refused, w->refused, sizeof(c->refused));
		snprintf(hash, sizeof(hash), "fnv1a64:%016llx",
		    (unsigned long long)due[i].names);
		snprintf(reason, sizeof(reason), "%s",
		    due[i].low_disk ? "audit disk reserve reached" :
		    "denied records over the per-caller limit");
		for (k = 0; k < sizeof(kv) / sizeof(kv[0]); k++)
			rc.slot[kv[k].field] = &kv[k];
		(void)audit_emit(a, &rc);
	}
	free(c);
}

/* Is the audit file system below the reserve? Asked at most every 50 ms. */
static bool
disk_low_locked(struct audit *a, struct audit_limit *l, int64_t now)
{
	struct statvfs sv;

	if (l->reserve == 0)
		return false;
	if (l->disk_at_ms != 0 && now - l->disk_at_ms < DISK_CHECK_MS)
		return l->disk_low;
	l->disk_at_ms = now;
	/* By path: the descriptor changes under the writer's lock. */
	if (statvfs(a->path, &sv) == 0)
		l->disk_low = (uint64_t)sv.f_bavail * sv.f_frsize < l->reserve;
	return l->disk_low;
}

int
audit_limit_denied(struct audit *a, const struct caller *c, const char *name)
{
	struct audit_limit *l = a->limit;
	struct lim_due due[SWEEP_MAX + 2];
	struct lim_entry *e, *old;
	char key[sizeof(e->key)];
	uint64_t hk;
	int64_t now = clk_mono_ms();
	size_t n = 0;
	bool write;

	if (l == NULL)
		return 1;
	caller_key(c, key, sizeof(key));
	hk = fnv(FNV_OFFSET, key, strlen(key));
	pthread_mutex_lock(&l->lock);
	for (e = l->buckets[hk & (LIMIT_BUCKETS - 1)]; e; e = e->hnext)
		if (e->hkey == hk && strcmp(e->key, key) == 0)
			break;
	if (e == NULL) {
		while (l->count >= LIMIT_CALLERS &&
		    (old = LRU_ENTRY(lru_oldest(&l->lru), struct lim_entry,
		    lru)) != NULL) {
			unhash_locked(l, old);
			if (old->suppressed > 0)
				take_due(old, &due[n++]);
			free(old);
			if (n == 1)
				break;
		}
		if ((e = calloc(1, sizeof(*e))) == NULL) {
			/* Unable to count it: write it in full. */
			pthread_mutex_unlock(&l->lock);
			write_due(a, due, n);
			return 1;
		}
		e->hkey = hk;
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->start_ms = now;
		e->names = FNV_OFFSET;
		e->hnext = l->buckets[hk & (LIMIT_BUCKETS - 1)];
		l->buckets[hk & (LIMIT_BUCKETS - 1)] = e;
		lru_push(&l->lru, &e->lru);
		l->count++;
	} else
		lru_touch(&l->lru, &e->lru);

	if (now - e->start_ms >= l->interval_ms) {
		if (e->suppressed > 0)
			take_due(e, &due[n++]);
		e->start_ms = now;
		e->written = 0;
	}
	if (!disk_low_locked(a, l, now) &&
	    (l->burst == 0 || e->written < l->burst)) {
		e->written++;
		write = true;
	} else {
		int64_t due_ms = e->start_ms + l->interval_ms;

		if (e->suppressed++ == 0 &&
		    due_ms < atomic_load(&l->next_sweep_ms))
			atomic_store(&l->next_sweep_ms, due_ms);
		if (name)
			e->names = fnv(e->names, name, strlen(name) + 1);
		e->low_disk = e->low_disk || l->disk_low;
		who_set(&e->who, c);
		write = false;
	}
	if (now >= atomic_load(&l->next_sweep_ms))
		n += sweep_locked(l, now, false, due + n, SWEEP_MAX);
	pthread_mutex_unlock(&l->lock);
	write_due(a, due, n);
	return write ? 1 : 0;
}

void
audit_limit_sweep(struct audit *a, bool all)
{
	struct audit_limit *l = a->limit;
	struct lim_due *due;
	int64_t now;
	size_t n;

	if (l == NULL)
		return;
	now = clk_mono_ms();
	if (!all && now < atomic_load(&l->next_sweep_ms))
		return;
	n = all ? LIMIT_CALLERS : SWEEP_MAX;
	if ((due = calloc(n, sizeof(*due))) == NULL)
		return;
	pthread_mutex_lock(&l->lock);
	n = sweep_locked(l, now, all, due, n);
	pthread_mutex_unlock(&l->lock);
	write_due(a, due, n);
	free(due);
}
