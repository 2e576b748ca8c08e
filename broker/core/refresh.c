/*
 * Refresh timing and the scheduler threads. The decisions are pure; the
 * threads only ask the cache for one due entry at a time and sleep until
 * the next one is due or the cache wakes them (a new value, a read of a
 * value near its expiry).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <secretsfs/clk.h>
#include <secretsfs/cache.h>
#include <secretsfs/refresh.h>

int64_t
refresh_ahead(int64_t fetched, int64_t ttl, uint32_t rnd)
{
	int64_t lead;

	if (ttl <= 0)
		return fetched;
	/* 10 % of ttl, plus up to 15 % more by rnd. */
	lead = ttl / 10 + (int64_t)(((uint64_t)ttl * 15 / 100) *
	    (rnd % 1000) / 1000);
	return fetched + ttl - lead;
}

int64_t
refresh_backoff(unsigned failures, int64_t ttl, uint32_t rnd)
{
	int64_t cap, d;

	cap = ttl;
	if (cap < REFRESH_RETRY_MIN_CAP_MS)
		cap = REFRESH_RETRY_MIN_CAP_MS;
	if (cap > REFRESH_RETRY_MAX_CAP_MS)
		cap = REFRESH_RETRY_MAX_CAP_MS;
	if (failures == 0)
		failures = 1;
	d = REFRESH_RETRY_BASE_MS;
	while (--failures > 0 && d < cap)
		d *= 2;
	if (d > cap)
		d = cap;
	/* Equal jitter: never a retry storm at zero, never longer than d. */
	return d / 2 + (int64_t)(rnd % (uint32_t)(d / 2 + 1));
}

bool
refresh_is_hot(const struct refresh_entry *e)
{
	return e->watched || e->last_access >= e->fetched + e->ttl / 2;
}

static int64_t
min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int64_t
refresh_serve_limit(const struct refresh_entry *e,
    const struct refresh_policy *p)
{
	int64_t stale_end = e->fetched + e->ttl + p->max_stale_ms;

	switch (e->state) {
	case REFRESH_STALE:
	case REFRESH_FRESH:
		return stale_end;
	case REFRESH_GONE:
		return min64(stale_end, e->gone_since + p->delete_grace_ms);
	default:
		return INT64_MAX;
	}
}

enum refresh_action
refresh_decide(const struct refresh_entry *e, const struct refresh_policy *p,
    int64_t now, int64_t *next)
{
	int64_t limit;

	*next = INT64_MAX;
	/* A fetch in flight wakes the scheduler when it lands. */
	if (e->fetching || e->state == REFRESH_EMPTY)
		return REFRESH_NONE;
	if (e->state == REFRESH_FRESH) {
		if (now < e->ahead) {
			*next = e->ahead;
			return REFRESH_NONE;
		}
		/* Idle values expire; a later read wakes us again. */
		return refresh_is_hot(e) ? REFRESH_FETCH : REFRESH_NONE;
	}
	limit = refresh_serve_limit(e, p);
	if (now >= limit)
		return e->state == REFRESH_GONE ? REFRESH_REMOVE : REFRESH_EXPIRE;
	if (now >= e->retry_at)
		return REFRESH_FETCH;
	*next = min64(e->retry_at, limit);
	return REFRESH_NONE;
}

enum refresh_read
refresh_read_decide(const struct refresh_entry *e,
    const struct refresh_policy *p, int64_t now)
{
	switch (e->state) {
	case REFRESH_FRESH:
		return now < e->fetched + e->ttl ? REFRESH_READ_HIT :
		    REFRESH_READ_FETCH;
	case REFRESH_STALE:
	case REFRESH_GONE:
		/* A refresh ahead of expiry failed: the value is not stale yet. */
		if (now < e->fetched + e->ttl)
			return REFRESH_READ_HIT;
		/* Never wait on a backend that is failing: the scheduler retries. */
		return now < refresh_serve_limit(e, p) ? REFRESH_READ_STALE :
		    REFRESH_READ_EXPIRE;
	default:
		return REFRESH_READ_FETCH;
	}
}

/* ------------------------------------------------------------------ */

struct refresh {
	struct cache	*cache;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;	/* CLOCK_MONOTONIC */
	uint64_t	 kicks;
	bool		 stop;
	pthread_t	*threads;
	unsigned	 nthreads;
};

static void *
worker(void *arg)
{
	struct refresh *r = arg;
	struct timespec until;
	uint64_t seen;
	int64_t next, now;
	int did;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		seen = r->kicks;
		pthread_mutex_unlock(&r->lock);
		now = clk_mono_ms();
		did = cache_refresh_step(r->cache, now, &next);
		pthread_mutex_lock(&r->lock);
		if (did || r->kicks != seen || r->stop)
			continue;
		/* Look again at least once a minute, whatever happens. */
		if (next > now + 60000)
			next = now + 60000;
		until = clk_at_ms(next);
		pthread_cond_timedwait(&r->cond, &r->lock, &until);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

void
refresh_kick(struct refresh *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->kicks++;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void
waker(void *arg)
{
	refresh_kick(arg);
}

int
refresh_start(struct cache *c, unsigned nthreads, struct refresh **out)
{
	sigset_t all, old;
	struct refresh *r;
	unsigned i;
	int e;

	*out = NULL;
	if (nthreads == 0)
		nthreads = 1;
	if (!(r = calloc(1, sizeof(*r))) ||
	    !(r->threads = calloc(nthreads, sizeof(*r->threads)))) {
		free(r);
		return -ENOMEM;
	}
	r->cache = c;
	pthread_mutex_init(&r->lock, NULL);
	/* glibc's pthread_cond_init cannot fail: nothing to undo. */
	(void)clk_cond_init(&r->cond);
	/* Signals are the FUSE loop's and the SIGHUP thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		if ((e = pthread_create(&r->threads[i], NULL, worker, r)) != 0)
			break;
		r->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r->nthreads == 0) {
		refresh_stop(r);
		return -e;
	}
	cache_set_waker(c, waker, r);
	*out = r;
	return 0;
}

void
refresh_stop(struct refresh *r)
{
	unsigned i;

	if (!r)
		return;
	cache_set_waker(r->cache, NULL, NULL);
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->threads);
	free(r);
}
