/*
 * The cache is a chained hash table under one mutex. The mutex is held
 * only to find an entry and take a reference; fetches run unlocked, and a
 * second reader that misses on a name already being fetched waits on the
 * entry's condition variable for that one fetch to finish.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/cache.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

struct entry {
	struct entry		*next;		/* hash chain */
	struct entry		*lru_prev, *lru_next;
	char			*name;
	struct cache_snap	*snap;		/* current value, or NULL */
	int64_t			 expires;	/* monotonic ms */
	int64_t			 neg_until;	/* monotonic ms; remembered -ENOENT */
	int64_t			 stale_since;	/* first failed refresh, 0 if none */
	bool			 fetching;
	int			 last_err;
	uint64_t		 done;		/* count of finished fetches */
	pthread_cond_t		 cond;
};

struct cache {
	pthread_mutex_t		 lock;
	struct entry		**buckets;
	size_t			 nbuckets, count;
	struct entry		*lru_head, *lru_tail;	/* head = most recent */
	struct cache_limits	 lim;
	cache_fetch_fn		 fetch;
	void			*arg;
	struct cache_stats	 st;
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

struct cache *
cache_new(const struct cache_limits *lim, cache_fetch_fn fn, void *arg)
{
	struct cache *c;

	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->nbuckets = 64;
	if (!(c->buckets = calloc(c->nbuckets, sizeof(*c->buckets)))) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->lim = *lim;
	c->fetch = fn;
	c->arg = arg;
	return c;
}

void
cache_put(struct cache_snap *s)
{
	if (!s)
		return;
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		/* secmem_free wipes. */
		secmem_free((void *)s->data);
		explicit_bzero(s, sizeof(*s));
		free(s);
	}
}

static void
pin(struct cache_snap *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
}

static void
lru_unlink(struct cache *c, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else if (c->lru_head == e)
		c->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else if (c->lru_tail == e)
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void
lru_touch(struct cache *c, struct entry *e)
{
	if (c->lru_head == e)
		return;
	lru_unlink(c, e);
	e->lru_next = c->lru_head;
	if (c->lru_head)
		c->lru_head->lru_prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

/* Drop the entry's value (readers keep theirs). Locked. */
static void
drop_value(struct cache *c, struct entry *e)
{
	if (!e->snap)
		return;
	c->st.bytes -= e->snap->len;
	cache_put(e->snap);
	e->snap = NULL;
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
	if (!(e = calloc(1, sizeof(*e))) || !(e->name = strdup(name))) {
		free(e);
		return NULL;
	}
	pthread_cond_init(&e->cond, NULL);
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
	for (e = c->lru_tail; e && c->st.bytes + need > c->lim.max_bytes;
	    e = prev) {
		prev = e->lru_prev;
		if (e == keep || e->fetching || !e->snap)
			continue;
		drop_value(c, e);
		lru_unlink(c, e);
	}
	return c->st.bytes + need > c->lim.max_bytes ? -ENOSPC : 0;
}

/* Store a fetched value as the entry's snapshot. Locked. */
static int
install(struct cache *c, struct entry *e, struct backend_value *v)
{
	struct cache_snap *s;
	size_t old = e->snap ? e->snap->len : 0;
	int r;

	/* The old value's bytes are released below; count only the rest. */
	if (v->len > old && (r = make_room(c, e, v->len - old)) < 0)
		return r;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	s->data = v->data;
	s->len = v->len;
	memcpy(s->version, v->version, sizeof(s->version));
	clock_gettime(CLOCK_REALTIME, &s->fetched);
	s->changed = v->changed.tv_sec ? v->changed : s->fetched;
	s->refs = 1;
	s->generation = 1;
	if (e->snap) {
		s->generation = e->snap->generation +
		    (strcmp(e->snap->version, s->version) != 0);
		drop_value(c, e);
	}
	e->snap = s;
	c->st.bytes += s->len;
	v->data = NULL;
	v->len = 0;
	return 0;
}

int
cache_get(struct cache *c, const char *name, int64_t ttl_ms,
    struct cache_snap **out)
{
	struct backend_value v;
	struct entry *e;
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
	for (;;) {
		now = now_ms();
		if (e->snap && now < e->expires) {
			c->st.hits++;
			goto hit;
		}
		if (!e->snap && now < e->neg_until) {
			c->st.hits++;
			pthread_mutex_unlock(&c->lock);
			return -ENOENT;
		}
		if (!e->fetching)
			break;
		/* Someone is fetching this name: wait for that one result. */
		seen = e->done;
		while (e->fetching && e->done == seen)
			pthread_cond_wait(&e->cond, &c->lock);
		if (e->snap && (e->last_err == 0 || e->stale_since)) {
			c->st.hits++;
			goto hit;
		}
		if (e->last_err) {
			r = e->last_err;
			pthread_mutex_unlock(&c->lock);
			return r;
		}
	}

	c->st.misses++;
	e->fetching = true;
	pthread_mutex_unlock(&c->lock);

	r = c->fetch(c->arg, name, &v, ebuf, sizeof(ebuf));

	pthread_mutex_lock(&c->lock);
	c->st.fetches++;
	now = now_ms();
	if (r == 0 && (r = install(c, e, &v)) < 0)
		backend_value_clear(&v);
	if (r == 0) {
		e->expires = now + ttl_ms;
		e->neg_until = 0;
		e->stale_since = 0;
	} else {
		c->st.fetch_errors++;
		if (r == -ENOENT) {
			/* Gone from the backend: stop serving it. */
			drop_value(c, e);
			lru_unlink(c, e);
			e->neg_until = now + c->lim.negative_ttl_ms;
		} else if (e->snap) {
			if (!e->stale_since)
				e->stale_since = now;
			if (now - e->stale_since > c->lim.max_stale_ms) {
				drop_value(c, e);
				lru_unlink(c, e);
			} else {
				/* Retry soon, serve the last good value meanwhile. */
				e->expires = now + 1000;
				c->st.stale_served++;
			}
		}
	}
	e->last_err = r;
	e->fetching = false;
	e->done++;
	pthread_cond_broadcast(&e->cond);
	if (!e->snap) {
		pthread_mutex_unlock(&c->lock);
		return r < 0 ? r : -EIO;
	}
hit:
	lru_touch(c, e);
	pin(e->snap);
	*out = e->snap;
	pthread_mutex_unlock(&c->lock);
	return 0;
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

void
cache_forget(struct cache *c, const char *name)
{
	struct entry *e;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next)
			if (!name || strcmp(e->name, name) == 0) {
				drop_value(c, e);
				lru_unlink(c, e);
				e->neg_until = 0;
				e->expires = 0;
			}
	pthread_mutex_unlock(&c->lock);
}

void
cache_stats(struct cache *c, struct cache_stats *st)
{
	struct entry *e;
	size_t i;

	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->entries = 0;
	for (i = 0; i < c->nbuckets; i++)
		for (e = c->buckets[i]; e; e = e->next)
			st->entries += e->snap != NULL;
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
			drop_value(c, e);
			pthread_cond_destroy(&e->cond);
			free(e->name);
			free(e);
		}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
