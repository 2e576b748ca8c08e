/*
 * The cache is two chained hash tables under one mutex: sources (one
 * backend answer each, what is fetched and refreshed) and names (what
 * readers ask for, each served from one source: cache_int.h). The mutex
 * is held only to find an entry, decide (refresh.h) and take a
 * reference; fetches and selections run unlocked, and a second reader
 * that misses on a source already being fetched waits for that one fetch
 * to finish (on the cache's one condition variable, re-checking its
 * entry: one per entry would cost 48 bytes for each of thousands of
 * secrets). Entries are never freed before the cache is (only their
 * values), so a fetch in flight can always land in its entry; a forget
 * bumps the entry's epoch and the landing fetch is then discarded.
 *
 * Events (a rotation, a value served stale, dropped...) happen to a
 * source and are told of each of its names; they are collected under the
 * lock and delivered after it is released.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#include <secretsfs/lru.h>
#include <secretsfs/clk.h>
#include <secretsfs/cache.h>
#include <secretsfs/secmem.h>

#include "cache_int.h"

/*
 * A fetch that failed slowly (a backend that hangs until the timeout) is
 * remembered for as long as it took, at most SLOW_FAIL_MAX_MS: the kernel
 * serializes lookups of one name, so without this the readers queued
 * behind it would each wait a whole timeout of their own. A fast failure
 * is not remembered: the next read asks again at once.
 */
#define SLOW_FAIL_MS		1000
#define SLOW_FAIL_MAX_MS	5000

uint64_t
cache_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* xorshift64*: jitter only, never security. Locked. */
static uint32_t
rnd(struct cache *c)
{
	c->rnd ^= c->rnd >> 12;
	c->rnd ^= c->rnd << 25;
	c->rnd ^= c->rnd >> 27;
	return (uint32_t)((c->rnd * 2685821657736338717ULL) >> 32);
}

static struct refresh_policy
policy(const struct cache *c)
{
	return (struct refresh_policy){
		.max_stale_ms = c->lim.max_stale_ms,
		.delete_grace_ms = c->lim.delete_grace_ms,
	};
}

struct cache *
cache_new(const struct cache_limits *lim, cache_fetch_fn fn, void *arg)
{
	struct cache *c;
	struct timespec ts;

	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->nbuckets = 64;
	if (!(c->buckets = calloc(c->nbuckets, sizeof(*c->buckets)))) {
		free(c);
		return NULL;
	}
	c->nnames = 64;
	if (!(c->names = calloc(c->nnames, sizeof(*c->names))) ||
	    getrandom(c->vkey, sizeof(c->vkey), 0) != sizeof(c->vkey)) {
		free(c->names);
		free(c->buckets);
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->landed, NULL);
	c->lim = *lim;
	c->fetch = fn;
	c->arg = arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->rnd = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
	    (uint64_t)(uintptr_t)c;
	if (c->rnd == 0)
		c->rnd = 88172645463325252ULL;
	return c;
}

void
cache_set_limits(struct cache *c, const struct cache_limits *lim)
{
	pthread_mutex_lock(&c->lock);
	c->lim = *lim;
	pthread_mutex_unlock(&c->lock);
}

void
cache_set_source(struct cache *c, const struct cache_source *src, void *arg)
{
	pthread_mutex_lock(&c->lock);
	memset(&c->source, 0, sizeof(c->source));
	if (src)
		c->source = *src;
	c->source_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

void
cache_set_events(struct cache *c, cache_event_fn fn, void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->events = fn;
	c->events_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

void
cache_set_waker(struct cache *c, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&c->lock);
	c->waker = fn;
	c->waker_arg = arg;
	pthread_mutex_unlock(&c->lock);
}

static const char *
last_version(const struct entry *e)
{
	if (e->snap)
		return e->snap->version;
	return e->last_version ? e->last_version : "";
}

/*
 * Locked. Sized to fit, replaced only when it changes. Out of memory the
 * history is lost, as after a forget: a rotation then goes unannounced,
 * nothing is served wrongly.
 */
static void
set_last_version(struct entry *e, const char *v)
{
	if (e->snap && v == e->snap->version) {
		free(e->last_version);
		e->last_version = NULL;
		return;
	}
	if (v && *v == '\0')
		v = NULL;
	if (v && e->last_version && strcmp(v, e->last_version) == 0)
		return;
	free(e->last_version);
	e->last_version = v ? strdup(v) : NULL;
}

/* Locked. */
static void
wake(struct cache *c)
{
	if (c->waker)
		c->waker(c->waker_arg);
}

/* Locked. Out of memory the event is lost, as a log line would be. */
static void
queue_name(struct evq *q, enum cache_event_type type, const char *name,
    const char *version, const char *old, int64_t age_ms, int err)
{
	struct pending *p;

	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 4;

		if (!(p = realloc(q->ev, cap * sizeof(*p))))
			return;
		q->ev = p;
		q->cap = cap;
	}
	p = &q->ev[q->n++];
	p->type = type;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->version, sizeof(p->version), "%s", version ? version : "");
	snprintf(p->old, sizeof(p->old), "%s", old ? old : "");
	p->age_ms = age_ms;
	p->err = err;
}

/* Locked: an event of source e, told of each of its names. */
static void
queue(struct evq *q, enum cache_event_type type, const struct entry *e,
    const char *version, const char *old, int64_t age_ms, int err)
{
	const struct member *m;

	for (m = e->members; m; m = m->sibling)
		queue_name(q, type, m->name, version, old, age_ms, err);
}

/* Unlocked: hand the collected events over. */
static void
deliver(struct cache *c, struct evq *q)
{
	cache_event_fn fn;
	void *arg;
	size_t i;

	if (q->n == 0) {
		free(q->ev);
		q->ev = NULL;
		q->cap = 0;
		return;
	}
	pthread_mutex_lock(&c->lock);
	fn = c->events;
	arg = c->events_arg;
	pthread_mutex_unlock(&c->lock);
	for (i = 0; fn && i < q->n; i++) {
		struct cache_event ev = {
			.type = q->ev[i].type,
			.name = q->ev[i].name,
			.version = q->ev[i].version,
			.old_version = q->ev[i].old[0] ? q->ev[i].old : NULL,
			.age_ms = q->ev[i].age_ms,
			.err = q->ev[i].err,
		};

		fn(arg, &ev);
	}
	free(q->ev);
	q->ev = NULL;
	q->n = q->cap = 0;
}

void
cache_put(struct cache_snap *s)
{
	if (!s)
		return;
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		/* secmem_free wipes. */
		secmem_free((void *)s->data);
		explicit_bzero(s, sizeof(*s) + strlen(s->version));
		free(s);
	}
}

void
cache_pin(struct cache_snap *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

/* Drop the entry's value (readers keep theirs). Locked. */
void
cache_drop_value(struct cache *c, struct entry *e)
{
	cache_members_drop(c, e);
	if (e->snap) {
		/* The version outlives the value. */
		struct cache_snap *s = e->snap;

		e->snap = NULL;
		set_last_version(e, s->version);
		c->st.bytes -= s->len;
		cache_put(s);
	}
	lru_unlink(&c->lru, &e->lru);
	e->rt.state = REFRESH_EMPTY;
	e->rt.gone_since = 0;
	e->failures = 0;
}

static void
grow(struct cache *c)
{
	size_t n = c->nbuckets * 2, i;
	struct entry **b, *e, *next;

	if (!(b = calloc(n, sizeof(*b))))
		return;		/* longer chains, still correct */
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = next) {
			next = e->next;
			e->next = b[cache_hash(e->name) & (n - 1)];
			b[cache_hash(e->name) & (n - 1)] = e;
		}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

struct entry *
cache_entry_find(struct cache *c, const char *name, bool create)
{
	struct entry *e;
	size_t b = cache_hash(name) & (c->nbuckets - 1);

	for (e = c->buckets[b]; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	if (!create)
		return NULL;
	if (!(e = calloc(1, sizeof(*e) + strlen(name) + 1)))
		return NULL;
	memcpy(e->name, name, strlen(name) + 1);
	e->next = c->buckets[b];
	c->buckets[b] = e;
	if (++c->count > c->nbuckets)
		grow(c);
	return e;
}

/*
 * Make room for `need` more bytes by dropping least recently used values
 * that no fetch is replacing. Locked.
 */
int
cache_make_room(struct cache *c, struct entry *keep, size_t need)
{
	struct entry *e, *prev;

	if (need > c->lim.max_bytes)
		return -EFBIG;
	for (e = LRU_ENTRY(lru_oldest(&c->lru), struct entry, lru);
	    e && c->st.bytes + need > c->lim.max_bytes; e = prev) {
		prev = LRU_ENTRY(e->lru.prev, struct entry, lru);
		if (e == keep || e->rt.fetching || !e->snap)
			continue;
		cache_drop_value(c, e);
	}
	return c->st.bytes + need > c->lim.max_bytes ? -ENOSPC : 0;
}

/* Store a fetched value as the entry's snapshot. Locked. */
static int
install(struct cache *c, struct entry *e, struct backend_value *v)
{
	struct cache_snap *s;
	size_t old = e->snap ? e->snap->len : 0, vlen;
	int r;

	/* The old value's bytes are released below; count only the rest. */
	if (v->len > old && (r = cache_make_room(c, e, v->len - old)) < 0)
		return r;
	vlen = strnlen(v->version, sizeof(v->version) - 1);
	if (!(s = calloc(1, sizeof(*s) + vlen + 1)))
		return -ENOMEM;
	s->data = v->data;
	s->len = v->len;
	memcpy(s->version, v->version, vlen);
	clock_gettime(CLOCK_REALTIME, &s->fetched);
	s->changed = v->changed.tv_sec ? v->changed : s->fetched;
	/* A version the backend gave no time keeps the one it came with. */
	if (!v->changed.tv_sec && e->snap && strcmp(e->snap->version,
	    s->version) == 0)
		s->changed = e->snap->changed;
	s->refs = 1;
	if (e->gen == 0 || strcmp(last_version(e), s->version) != 0)
		e->gen++;
	s->generation = e->gen;
	e->installs++;
	/* Selections of the old value are made again from the new one. */
	cache_members_drop(c, e);
	if (e->snap) {
		c->st.bytes -= e->snap->len;
		cache_put(e->snap);
	}
	e->snap = s;
	c->st.bytes += s->len;
	v->data = NULL;
	v->len = 0;
	return 0;
}

/* Drop a value served too long: stale past max_stale, or deleted. Locked. */
static void
expire_value(struct cache *c, struct entry *e, int64_t now, struct evq *q)
{
	bool gone = e->rt.state == REFRESH_GONE;

	queue(q, gone ? CACHE_EV_REMOVED : CACHE_EV_EXPIRED, e,
	    e->snap ? e->snap->version : last_version(e), NULL,
	    now - e->rt.fetched, e->last_err);
	if (gone)
		e->neg_until = now + c->lim.negative_ttl_ms;
	else
		c->st.expired++;
	cache_drop_value(c, e);
}

/* What a fetch that is about to start needs to remember. Locked. */
struct claim {
	uint64_t	epoch;
	int64_t		started;
};

static void
claim(struct entry *e, struct claim *cl)
{
	e->rt.fetching = true;
	cl->epoch = e->epoch;
	cl->started = clk_mono_ms();
}

/*
 * Unlocked. An answer without a version (KV v1, say) gets a digest of its
 * bytes for one, keyed so that it cannot be checked against a guess:
 * rotations, holders and on_rotate then work as for any backend.
 */
static int
versionize(struct cache *c, struct backend_value *v)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0, i;

	if (v->version[0])
		return 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, c->vkey,
	    sizeof(c->vkey), v->data, v->len, md, sizeof(md), &mdlen) ||
	    mdlen < CACHE_VERSION_HASH / 2) {
		backend_value_clear(v);
		return -EIO;
	}
	for (i = 0; i < CACHE_VERSION_HASH / 2; i++) {
		v->version[2 * i] = hex[md[i] >> 4];
		v->version[2 * i + 1] = hex[md[i] & 0xf];
	}
	v->version[2 * i] = '\0';
	explicit_bzero(md, sizeof(md));
	return 0;
}

/*
 * Unlocked, right after a fetch that worked: a new version is announced,
 * for each name that served another one, before it is installed (its
 * audit record must precede its readers').
 */
static void
announce(struct cache *c, struct entry *e, const struct claim *cl,
    const struct backend_value *v, struct evq *q)
{
	struct member *m;

	pthread_mutex_lock(&c->lock);
	if (e->epoch == cl->epoch)
		for (m = e->members; m; m = m->sibling)
			if (m->last_version && strncmp(m->last_version,
			    v->version, sizeof(v->version)) != 0) {
				queue_name(q, CACHE_EV_ROTATING, m->name,
				    v->version, m->last_version, 0, 0);
				m->announced = true;
			}
	pthread_mutex_unlock(&c->lock);
	deliver(c, q);
}

/*
 * Locked: each name of e now serves version v; the ones that served
 * another are told (a name that joined while the fetch ran is announced
 * here, late rather than never).
 */
static void
rotate_members(struct cache *c, struct entry *e, const char *v,
    struct evq *q)
{
	struct member *m;
	bool rotated = false;

	for (m = e->members; m; m = m->sibling) {
		if (m->last_version && strcmp(m->last_version, v) != 0) {
			if (!m->announced)
				queue_name(q, CACHE_EV_ROTATING, m->name, v,
				    m->last_version, 0, 0);
			queue_name(q, CACHE_EV_ROTATED, m->name, v,
			    m->last_version, 0, 0);
			rotated = true;
		}
		m->announced = false;
		cache_member_set_version(m, v);
	}
	if (rotated)
		c->st.rotations++;
}

/*
 * Land a fetch in its entry. Locked. Returns the fetch's result for the
 * one who fetched: 0, -errno, or -EAGAIN when a forget overtook it and
 * the result was discarded.
 */
static int
land(struct cache *c, struct entry *e, const struct claim *cl, int r,
    struct backend_value *v, int64_t ttl, struct evq *q)
{
	enum refresh_state was = e->rt.state;
	int64_t now = clk_mono_ms();
	struct member *m;

	e->rt.fetching = false;
	e->done++;
	pthread_cond_broadcast(&c->landed);
	c->st.fetches++;
	if (e->epoch != cl->epoch) {
		if (r == 0)
			backend_value_clear(v);
		for (m = e->members; m; m = m->sibling)
			m->announced = false;
		e->last_err = -EAGAIN;
		return -EAGAIN;
	}
	if (r == 0 && (r = install(c, e, v)) < 0)
		backend_value_clear(v);
	e->last_err = r;
	if (r == 0) {
		e->rt.state = REFRESH_FRESH;
		e->rt.fetched = now;
		e->rt.ttl = ttl;
		e->rt.ahead = refresh_ahead(now, ttl, rnd(c));
		/* The fetching read itself does not make the value hot. */
		e->rt.last_access = now;
		e->rt.gone_since = 0;
		e->neg_until = e->err_until = 0;
		e->failures = 0;
		e->kicked = false;
		set_last_version(e, e->snap->version);
		if (was == REFRESH_STALE || was == REFRESH_GONE)
			queue(q, CACHE_EV_RECOVERED, e, e->snap->version, NULL,
			    0, 0);
		rotate_members(c, e, e->snap->version, q);
		lru_touch(&c->lru, &e->lru);
		wake(c);
		return 0;
	}
	for (m = e->members; m; m = m->sibling)
		m->announced = false;
	c->st.fetch_errors++;
	if (r == -ESTALE) {
		/* No longer configured: nothing to serve, no grace. */
		cache_drop_value(c, e);
		e->neg_until = now + c->lim.negative_ttl_ms;
		e->last_err = r = -ENOENT;
		return r;
	}
	if (!e->snap) {
		if (r == -ENOENT || r == -EACCES)
			e->neg_until = now + c->lim.negative_ttl_ms;
		else if (now - cl->started >= SLOW_FAIL_MS)
			e->err_until = now + (now - cl->started < SLOW_FAIL_MAX_MS ?
			    now - cl->started : SLOW_FAIL_MAX_MS);
		return r;
	}
	if (r == -ENOENT) {
		if (c->lim.delete_grace_ms <= 0) {
			/* Gone from the backend: stop serving it. */
			queue(q, CACHE_EV_REMOVED, e, e->snap->version, NULL,
			    now - e->rt.fetched, r);
			cache_drop_value(c, e);
			e->neg_until = now + c->lim.negative_ttl_ms;
			return r;
		}
		if (e->rt.state != REFRESH_GONE) {
			e->rt.state = REFRESH_GONE;
			e->rt.gone_since = now;
			queue(q, CACHE_EV_GONE, e, e->snap->version, NULL,
			    now - e->rt.fetched, r);
		}
	} else if (e->rt.state == REFRESH_FRESH) {
		e->rt.state = REFRESH_STALE;
		queue(q, CACHE_EV_STALE, e, e->snap->version, NULL,
		    now - e->rt.fetched, r);
	}
	e->failures++;
	e->rt.retry_at = now + refresh_backoff(e->failures, e->rt.ttl, rnd(c));
	wake(c);
	return r;
}

/* A value served to a reader. Locked. */
static void
touch(struct cache *c, struct entry *e, int64_t now)
{
	e->rt.last_access = now;
	lru_touch(&c->lru, &e->lru);
	/* Near expiry and read: the scheduler may have passed it as idle. */
	if (e->rt.state == REFRESH_FRESH && now >= e->rt.ahead &&
	    !e->rt.fetching && !e->kicked && refresh_is_hot(&e->rt)) {
		e->kicked = true;
		wake(c);
	}
}

/*
 * Locked: the source of name, resolved when new. Its interval is the
 * shortest of its names' and it is watched when one of them is.
 */
static int
source(struct cache *c, const char *name, int64_t ttl_ms, unsigned flags,
    struct member **mp, struct entry **ep)
{
	struct member *m, *o;
	struct entry *e;
	int r;

	if (!(m = cache_member_find(c, name, true)))
		return -ENOMEM;
	m->watched = (flags & CACHE_WATCHED) != 0;
	/* A reload may have changed the interval: the next decision uses it. */
	m->ttl = ttl_ms;
	if ((r = cache_member_bind(c, m)) < 0)
		return r == -ESTALE ? -ENOENT : r;
	e = m->src;
	e->rt.ttl = m->ttl;
	e->rt.watched = false;
	for (o = e->members; o; o = o->sibling) {
		if (o->ttl < e->rt.ttl)
			e->rt.ttl = o->ttl;
		e->rt.watched |= o->watched;
	}
	*mp = m;
	*ep = e;
	return 0;
}

/* Unlocked: a source's answer, through one of its names. */
static int
fetch_source(struct cache *c, const char *name, struct backend_value *v)
{
	char ebuf[BACKEND_ERR_MAX];
	int r;

	memset(v, 0, sizeof(*v));
	ebuf[0] = '\0';
	if ((r = c->fetch(c->arg, name, v, ebuf, sizeof(ebuf))) == 0)
		r = versionize(c, v);
	return r;
}

int
cache_get_ex(struct cache *c, const char *name, int64_t ttl_ms,
    unsigned flags, struct cache_snap **out)
{
	struct refresh_policy pol;
	struct backend_value v;
	struct member *m;
	struct entry *e;
	struct claim cl;
	struct evq q = { 0 };
	uint64_t seen;
	int64_t now, ttl;
	int r;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
rebind:
	if ((r = source(c, name, ttl_ms, flags, &m, &e)) < 0) {
		pthread_mutex_unlock(&c->lock);
		deliver(c, &q);
		return r;
	}
again:
	for (;;) {
		now = clk_mono_ms();
		pol = policy(c);
		if (e->snap) {
			switch (refresh_read_decide(&e->rt, &pol, now)) {
			case REFRESH_READ_HIT:
				c->st.hits++;
				goto hit;
			case REFRESH_READ_STALE:
				c->st.hits++;
				c->st.stale_served++;
				goto hit;
			case REFRESH_READ_EXPIRE:
				expire_value(c, e, now, &q);
				break;
			case REFRESH_READ_FETCH:
				break;
			}
		}
		if (!e->snap && now < e->neg_until) {
			c->st.hits++;
			r = e->last_err == -EACCES ? -EACCES : -ENOENT;
			pthread_mutex_unlock(&c->lock);
			deliver(c, &q);
			return r;
		}
		if (!e->snap && now < e->err_until && e->last_err < 0 &&
		    !e->rt.fetching) {
			r = e->last_err;
			pthread_mutex_unlock(&c->lock);
			deliver(c, &q);
			return r;
		}
		if (!e->rt.fetching)
			break;
		/* Someone is fetching this source: wait for that one result. */
		seen = e->done;
		while (e->rt.fetching && e->done == seen)
			pthread_cond_wait(&c->landed, &c->lock);
		if (m->src != e)
			goto rebind;
		if (!e->snap && e->done != seen && e->last_err < 0 &&
		    e->last_err != -EAGAIN) {
			r = e->last_err;
			pthread_mutex_unlock(&c->lock);
			deliver(c, &q);
			return r;
		}
	}

	c->st.misses++;
	ttl = e->rt.ttl;
	claim(e, &cl);
	pthread_mutex_unlock(&c->lock);

	if ((r = fetch_source(c, name, &v)) == 0)
		announce(c, e, &cl, &v, &q);

	pthread_mutex_lock(&c->lock);
	r = land(c, e, &cl, r, &v, ttl, &q);
	if (r == -EAGAIN) {
		if (m->src != e)
			goto rebind;
		goto again;
	}
	if (!e->snap) {
		pthread_mutex_unlock(&c->lock);
		deliver(c, &q);
		return r < 0 ? r : -EIO;
	}
	if (r < 0)
		c->st.stale_served++;	/* the last good value, after a failure */
	now = clk_mono_ms();
hit:
	touch(c, e, now);
	r = cache_member_serve(c, m, out);
	pthread_mutex_unlock(&c->lock);
	deliver(c, &q);
	return r;
}

/* Locked. */
void
cache_entry_forget(struct cache *c, struct entry *e, bool history)
{
	cache_drop_value(c, e);
	e->neg_until = e->err_until = 0;
	e->rt.fetched = e->rt.ahead = 0;
	e->epoch++;
	if (history)
		set_last_version(e, NULL);
}

int
cache_refresh_now(struct cache *c, const char *name, int64_t ttl_ms,
    unsigned flags, char *version, size_t vlen)
{
	struct backend_value v;
	struct evq q = { 0 };
	struct member *m;
	struct entry *e;
	struct claim cl;
	int64_t ttl;
	int r, tries = 0;

	if (version && vlen)
		version[0] = '\0';
	pthread_mutex_lock(&c->lock);
	do {
		if ((r = source(c, name, ttl_ms, flags, &m, &e)) < 0)
			break;
		while (e->rt.fetching)
			pthread_cond_wait(&c->landed, &c->lock);
		if (m->src != e) {
			r = -EAGAIN;
			continue;
		}
		c->st.misses++;
		ttl = e->rt.ttl;
		claim(e, &cl);
		pthread_mutex_unlock(&c->lock);
		if ((r = fetch_source(c, name, &v)) == 0)
			announce(c, e, &cl, &v, &q);
		pthread_mutex_lock(&c->lock);
		r = land(c, e, &cl, r, &v, ttl, &q);
	} while (r == -EAGAIN && ++tries < 3);
	if (r == 0 && version && vlen)
		snprintf(version, vlen, "%s", e->snap->version);
	pthread_mutex_unlock(&c->lock);
	deliver(c, &q);
	return r;
}

int
cache_refresh_step(struct cache *c, int64_t now, int64_t *next)
{
	struct refresh_policy pol;
	enum refresh_action act = REFRESH_NONE;
	struct backend_value v;
	struct evq q = { 0 };
	struct entry *e, *best = NULL;
	char name[CACHE_NAME_CAP];
	struct claim cl;
	int64_t n, ttl;
	size_t i;
	int r;

	*next = INT64_MAX;
	pthread_mutex_lock(&c->lock);
	pol = policy(c);
	for (i = 0; i < c->nbuckets && !best; i++)
		for (e = c->buckets[i]; e && !best; e = e->next) {
			/* A source nobody names any more is not kept fresh. */
			if (!e->snap || !e->members)
				continue;
			act = refresh_decide(&e->rt, &pol, now, &n);
			if (act != REFRESH_NONE)
				best = e;
			else if (n < *next)
				*next = n;
		}
	if (!best) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	e = best;
	if (act != REFRESH_FETCH) {
		expire_value(c, e, now, &q);
		pthread_mutex_unlock(&c->lock);
		deliver(c, &q);
		return 1;
	}
	ttl = e->rt.ttl;
	/* Any of its names will do: they all make the same request. */
	snprintf(name, sizeof(name), "%s", e->members->name);
	claim(e, &cl);
	pthread_mutex_unlock(&c->lock);

	if ((r = fetch_source(c, name, &v)) == 0)
		announce(c, e, &cl, &v, &q);

	pthread_mutex_lock(&c->lock);
	c->st.refreshes++;
	if (r < 0)
		c->st.refresh_errors++;
	land(c, e, &cl, r, &v, ttl, &q);
	pthread_mutex_unlock(&c->lock);
	deliver(c, &q);
	return 1;
}

void
cache_free(struct cache *c)
{
	struct member *m, *mnext;
	struct entry *e, *next;
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nnames; i++)
		for (m = c->names[i]; m; m = mnext) {
			mnext = m->next;
			cache_put(m->snap);
			free(m->field);
			free(m->last_version);
			free(m);
		}
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = next) {
			next = e->next;
			if (e->snap)
				cache_put(e->snap);
			free(e->last_version);
			free(e);
		}
	free(c->names);
	free(c->buckets);
	explicit_bzero(c->vkey, sizeof(c->vkey));
	pthread_cond_destroy(&c->landed);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
