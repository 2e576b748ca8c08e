/*
 * The cache is a chained hash table under one mutex. The mutex is held
 * only to find an entry, decide (refresh.h) and take a reference; fetches
 * run unlocked, and a second reader that misses on a name already being
 * fetched waits for that one fetch to finish (on the cache's one condition
 * variable, re-checking its entry: one per entry would cost 48 bytes for
 * each of thousands of secrets). Entries are never freed before the cache is (only their
 * values), so a fetch in flight can always land in its entry; a forget
 * bumps the entry's epoch and the landing fetch is then discarded.
 *
 * Events (a rotation, a value served stale, dropped...) are collected
 * under the lock and delivered after it is released.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/lru.h>
#include <secretsfs/clk.h>
#include <secretsfs/cache.h>
#include <secretsfs/secmem.h>

#define NAME_CAP	512	/* "secret/file": 2 * NAME_MAX + 2 */
#define MAX_EVENTS	4
/*
 * A fetch that failed slowly (a backend that hangs until the timeout) is
 * remembered for as long as it took, at most SLOW_FAIL_MAX_MS: the kernel
 * serializes lookups of one name, so without this the readers queued
 * behind it would each wait a whole timeout of their own. A fast failure
 * is not remembered: the next read asks again at once.
 */
#define SLOW_FAIL_MS		1000
#define SLOW_FAIL_MAX_MS	5000

struct entry {
	struct entry		*next;		/* hash chain */
	struct lru_node		 lru;
	struct cache_snap	*snap;		/* current value, or NULL */
	struct refresh_entry	 rt;		/* state, times, fetching */
	int64_t			 neg_until;	/* monotonic ms; remembered -ENOENT
						   or -EACCES (last_err) */
	int64_t			 err_until;	/* monotonic ms; remembered slow failure */
	unsigned		 failures;	/* consecutive failed fetches */
	int			 last_err;
	uint64_t		 done;		/* count of finished fetches */
	uint64_t		 epoch;		/* bumps on forget */
	uint64_t		 gen;		/* bumps with the version */
	bool			 kicked;	/* the scheduler was woken for it */
	/*
	 * The version last fetched: while there is a value, its snapshot's
	 * (and this is NULL); else malloc'd when one was seen, NULL when none.
	 */
	char			*last_version;
	char			 name[];	/* immutable */
};

struct pending {
	enum cache_event_type	 type;
	char			 name[NAME_CAP];
	char			 version[BACKEND_VERSION_MAX];
	char			 old[BACKEND_VERSION_MAX];
	int64_t			 age_ms;
	int			 err;
};

struct evq {
	struct pending	ev[MAX_EVENTS];
	size_t		n;
};

struct cache {
	pthread_mutex_t		 lock;
	pthread_cond_t		 landed;	/* a fetch landed (any entry) */
	struct entry		**buckets;
	size_t			 nbuckets, count;
	struct lru		 lru;
	struct cache_limits	 lim;
	cache_fetch_fn		 fetch;
	void			*arg;
	cache_event_fn		 events;
	void			*events_arg;
	void			(*waker)(void *);
	void			*waker_arg;
	uint64_t		 rnd;
	struct cache_stats	 st;
};

static uint64_t
hash(const char *s)
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

static void
queue(struct evq *q, enum cache_event_type type, const struct entry *e,
    const char *version, const char *old, int64_t age_ms, int err)
{
	struct pending *p;

	if (q->n == MAX_EVENTS)
		return;
	p = &q->ev[q->n++];
	p->type = type;
	snprintf(p->name, sizeof(p->name), "%s", e->name);
	snprintf(p->version, sizeof(p->version), "%s", version ? version : "");
	snprintf(p->old, sizeof(p->old), "%s", old ? old : "");
	p->age_ms = age_ms;
	p->err = err;
}

/* Unlocked: hand the collected events over. */
static void
deliver(struct cache *c, struct evq *q)
{
	cache_event_fn fn;
	void *arg;
	size_t i;

	if (q->n == 0)
		return;
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
	q->n = 0;
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

static void
pin(struct cache_snap *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

/* Drop the entry's value (readers keep theirs). Locked. */
static void
drop_value(struct cache *c, struct entry *e)
{
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
			e->next = b[hash(e->name) & (n - 1)];
			b[hash(e->name) & (n - 1)] = e;
		}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

static struct entry *
find(struct cache *c, const char *name, bool create)
{
	struct entry *e;
	size_t b = hash(name) & (c->nbuckets - 1);

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
static int
make_room(struct cache *c, struct entry *keep, size_t need)
{
	struct entry *e, *prev;

	if (need > c->lim.max_bytes)
		return -EFBIG;
	for (e = LRU_ENTRY(lru_oldest(&c->lru), struct entry, lru);
	    e && c->st.bytes + need > c->lim.max_bytes; e = prev) {
		prev = LRU_ENTRY(e->lru.prev, struct entry, lru);
		if (e == keep || e->rt.fetching || !e->snap)
			continue;
		drop_value(c, e);
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
	if (v->len > old && (r = make_room(c, e, v->len - old)) < 0)
		return r;
	vlen = strnlen(v->version, sizeof(v->version) - 1);
	if (!(s = calloc(1, sizeof(*s) + vlen + 1)))
		return -ENOMEM;
	s->data = v->data;
	s->len = v->len;
	memcpy(s->version, v->version, vlen);
	clock_gettime(CLOCK_REALTIME, &s->fetched);
	s->changed = v->changed.tv_sec ? v->changed : s->fetched;
	s->refs = 1;
	if (e->gen == 0 || strcmp(last_version(e), s->version) != 0)
		e->gen++;
	s->generation = e->gen;
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
	drop_value(c, e);
}

/* What a fetch that is about to start needs to remember. Locked. */
struct claim {
	uint64_t	epoch;
	int64_t		started;
	char		last_version[BACKEND_VERSION_MAX];
};

static void
claim(struct entry *e, struct claim *cl)
{
	e->rt.fetching = true;
	cl->epoch = e->epoch;
	cl->started = clk_mono_ms();
	snprintf(cl->last_version, sizeof(cl->last_version), "%s",
	    last_version(e));
}

/*
 * Unlocked, right after a fetch that worked: a new version is announced
 * before it is installed (its audit record must precede its readers').
 */
static void
announce(struct cache *c, const struct entry *e, const struct claim *cl,
    const struct backend_value *v, struct evq *q)
{
	if (cl->last_version[0] && strncmp(cl->last_version, v->version,
	    sizeof(cl->last_version)) != 0) {
		queue(q, CACHE_EV_ROTATING, e, v->version, cl->last_version, 0, 0);
		deliver(c, q);
	}
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
	char old[BACKEND_VERSION_MAX];
	int64_t now = clk_mono_ms();

	e->rt.fetching = false;
	e->done++;
	pthread_cond_broadcast(&c->landed);
	c->st.fetches++;
	if (e->epoch != cl->epoch) {
		if (r == 0)
			backend_value_clear(v);
		e->last_err = -EAGAIN;
		return -EAGAIN;
	}
	snprintf(old, sizeof(old), "%s", last_version(e));
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
		if (old[0] && strcmp(old, e->snap->version) != 0) {
			c->st.rotations++;
			queue(q, CACHE_EV_ROTATED, e, e->snap->version, old,
			    0, 0);
		}
		lru_touch(&c->lru, &e->lru);
		wake(c);
		return 0;
	}
	c->st.fetch_errors++;
	if (r == -ESTALE) {
		/* No longer configured: nothing to serve, no grace. */
		drop_value(c, e);
		e->neg_until = now + c->lim.negative_ttl_ms;
		e->last_err = r = -ENOENT;
		return r;
	}
	if (!e->snap) {
		/* A refusal is an answer too: no backend request per read. */
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
			drop_value(c, e);
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

int
cache_get_ex(struct cache *c, const char *name, int64_t ttl_ms,
    unsigned flags, struct cache_snap **out)
{
	struct refresh_policy pol;
	struct backend_value v;
	struct entry *e;
	struct claim cl;
	struct evq q = { .n = 0 };
	char ebuf[BACKEND_ERR_MAX];
	uint64_t seen;
	int64_t now;
	int r;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	if (!(e = find(c, name, true))) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	e->rt.watched = (flags & CACHE_WATCHED) != 0;
	/* A reload may have changed the interval: the next decision uses it. */
	e->rt.ttl = ttl_ms;
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
		/* Someone is fetching this name: wait for that one result. */
		seen = e->done;
		while (e->rt.fetching && e->done == seen)
			pthread_cond_wait(&c->landed, &c->lock);
		if (!e->snap && e->done != seen && e->last_err < 0 &&
		    e->last_err != -EAGAIN) {
			r = e->last_err;
			pthread_mutex_unlock(&c->lock);
			deliver(c, &q);
			return r;
		}
	}

	c->st.misses++;
	e->rt.ttl = ttl_ms;
	claim(e, &cl);
	pthread_mutex_unlock(&c->lock);

	memset(&v, 0, sizeof(v));
	ebuf[0] = '\0';
	r = c->fetch(c->arg, name, &v, ebuf, sizeof(ebuf));
	if (r == 0)
		announce(c, e, &cl, &v, &q);

	pthread_mutex_lock(&c->lock);
	r = land(c, e, &cl, r, &v, ttl_ms, &q);
	if (r == -EAGAIN)
		goto again;
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
	pin(e->snap);
	*out = e->snap;
	pthread_mutex_unlock(&c->lock);
	deliver(c, &q);
	return 0;
}

int
cache_get(struct cache *c, const char *name, int64_t ttl_ms,
    struct cache_snap **out)
{
	return cache_get_ex(c, name, ttl_ms, 0, out);
}

int
cache_peek(struct cache *c, const char *name, struct cache_snap **out)
{
	struct entry *e;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	if ((e = find(c, name, false)) && e->snap) {
		pin(e->snap);
		*out = e->snap;
	}
	pthread_mutex_unlock(&c->lock);
	return *out ? 0 : -ENOENT;
}

/* Locked. */
static void
forget(struct entry *e, struct cache *c, bool history)
{
	drop_value(c, e);
	e->neg_until = e->err_until = 0;
	e->rt.fetched = e->rt.ahead = 0;
	e->epoch++;
	if (history)
		set_last_version(e, NULL);
}

void
cache_forget(struct cache *c, const char *name)
{
	struct entry *e;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next)
			if (!name || strcmp(e->name, name) == 0)
				forget(e, c, false);
	pthread_mutex_unlock(&c->lock);
}

void
cache_forget_tree(struct cache *c, const char *name, bool history)
{
	size_t i, n = name ? strlen(name) : 0;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next)
			if (!name || strcmp(e->name, name) == 0 ||
			    (strncmp(e->name, name, n) == 0 && e->name[n] == '/'))
				forget(e, c, history);
	pthread_mutex_unlock(&c->lock);
}

int
cache_refresh_now(struct cache *c, const char *name, int64_t ttl_ms,
    unsigned flags, char *version, size_t vlen)
{
	struct backend_value v;
	struct evq q = { .n = 0 };
	char ebuf[BACKEND_ERR_MAX];
	struct entry *e;
	struct claim cl;
	int r, tries = 0;

	if (version && vlen)
		version[0] = '\0';
	pthread_mutex_lock(&c->lock);
	if (!(e = find(c, name, true))) {
		pthread_mutex_unlock(&c->lock);
		return -ENOMEM;
	}
	e->rt.watched = (flags & CACHE_WATCHED) != 0;
	do {
		while (e->rt.fetching)
			pthread_cond_wait(&c->landed, &c->lock);
		c->st.misses++;
		claim(e, &cl);
		pthread_mutex_unlock(&c->lock);
		memset(&v, 0, sizeof(v));
		ebuf[0] = '\0';
		r = c->fetch(c->arg, name, &v, ebuf, sizeof(ebuf));
		if (r == 0)
			announce(c, e, &cl, &v, &q);
		pthread_mutex_lock(&c->lock);
		r = land(c, e, &cl, r, &v, ttl_ms, &q);
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
	struct evq q = { .n = 0 };
	struct entry *e, *best = NULL;
	char ebuf[BACKEND_ERR_MAX];
	struct claim cl;
	int64_t n, ttl;
	size_t i;
	int r;

	*next = INT64_MAX;
	pthread_mutex_lock(&c->lock);
	pol = policy(c);
	for (i = 0; i < c->nbuckets && !best; i++)
		for (e = c->buckets[i]; e && !best; e = e->next) {
			if (!e->snap)
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
	claim(e, &cl);
	pthread_mutex_unlock(&c->lock);

	memset(&v, 0, sizeof(v));
	ebuf[0] = '\0';
	/* e->name never changes and e is never freed before the cache. */
	r = c->fetch(c->arg, e->name, &v, ebuf, sizeof(ebuf));
	if (r == 0)
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
cache_stats(struct cache *c, struct cache_stats *st)
{
	struct entry *e;
	size_t i;

	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->entries = st->stale = 0;
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next) {
			st->entries += e->snap != NULL;
			st->stale += e->snap != NULL &&
			    (e->rt.state == REFRESH_STALE ||
			    e->rt.state == REFRESH_GONE);
		}
	pthread_mutex_unlock(&c->lock);
}

void
cache_foreach(struct cache *c,
    void (*fn)(void *arg, const struct cache_entry_info *e), void *arg)
{
	struct cache_entry_info info;
	struct refresh_policy pol;
	struct entry *e;
	int64_t now = clk_mono_ms(), next;
	size_t i;

	pthread_mutex_lock(&c->lock);
	pol = policy(c);
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next) {
			memset(&info, 0, sizeof(info));
			info.name = e->name;
			info.state = e->snap ? e->rt.state : REFRESH_EMPTY;
			info.fetching = e->rt.fetching;
			snprintf(info.version, sizeof(info.version), "%s",
			    e->snap ? e->snap->version : last_version(e));
			info.failures = e->failures;
			info.last_err = e->last_err;
			info.age_ms = info.next_ms = -1;
			if (e->snap) {
				info.len = e->snap->len;
				info.changed = e->snap->changed;
				info.fetched = e->snap->fetched;
				info.age_ms = now - e->rt.fetched;
				if (e->rt.state != REFRESH_FRESH &&
				    now > e->rt.fetched + e->rt.ttl)
					info.stale_ms = now - e->rt.fetched -
					    e->rt.ttl;
				if (refresh_decide(&e->rt, &pol, now, &next) !=
				    REFRESH_NONE)
					info.next_ms = 0;
				else if (next != INT64_MAX)
					info.next_ms = next - now;
				else if (e->rt.state == REFRESH_FRESH)
					/* idle: fetched again at its next read */
					info.next_ms = -1;
			}
			fn(arg, &info);
		}
	pthread_mutex_unlock(&c->lock);
}

void
cache_free(struct cache *c)
{
	struct entry *e, *next;
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = next) {
			next = e->next;
			if (e->snap)
				cache_put(e->snap);
			free(e->last_version);
			free(e);
		}
	free(c->buckets);
	pthread_cond_destroy(&c->landed);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
