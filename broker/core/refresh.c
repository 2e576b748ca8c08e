/*
 * Refresh timing: pure functions of an entry's clock, asked by the cache
 * on every read and by the scheduler (sched.c) for every entry.
 */
#include <stdint.h>

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
