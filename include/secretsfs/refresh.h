/*
 * refresh: when a cached secret is fetched again.
 *
 * The timing decisions are pure functions of an entry's times, so that
 * the unit tests can drive them with a made-up clock; the cache asks them
 * on every read (refresh_read_decide) and, for the scheduler threads of
 * sched.h, for every entry (refresh_decide). All times are CLOCK_MONOTONIC
 * milliseconds.
 *
 * The life of a value:
 *
 *   FRESH   fetched less than `ttl` ago. At `ahead` (refresh_ahead: 10 to
 *           25 % of ttl before expiry, jittered so that secrets fetched
 *           together are not refreshed together) the scheduler fetches it
 *           again in the background if it is *hot*: read in the second half
 *           of its interval (so that a reader at ttl + 1 never waits), or
 *           watched (an on_rotate action needs the rotation even when
 *           nobody reads). A value nobody read since it was fetched is left
 *           to expire, and the next read fetches it.
 *   STALE   a refresh failed: the last good value is served, without
 *           waiting, until expiry + max_stale; meanwhile the scheduler
 *           retries with exponential backoff and jitter (refresh_backoff).
 *           Past that, the value is dropped and reads fetch (and fail,
 *           closed) like a secret never fetched.
 *   GONE    the backend answered "no such secret": the value is served for
 *           delete_grace more (a delete-and-recreate rotation leaves no
 *           ENOENT window), retried with backoff, then dropped.
 *   EMPTY   no value: a read fetches and waits.
 */
#ifndef SECRETSFS_REFRESH_H
#define SECRETSFS_REFRESH_H

#include <stdbool.h>
#include <stdint.h>

/* Bounds of the backoff between retries of a failing refresh. */
#define REFRESH_RETRY_BASE_MS	500
#define REFRESH_RETRY_MIN_CAP_MS	1000
#define REFRESH_RETRY_MAX_CAP_MS	30000

enum refresh_state {
	REFRESH_EMPTY = 0,
	REFRESH_FRESH,
	REFRESH_STALE,
	REFRESH_GONE,
};

/* What the decisions look at: a copy of one cache entry's clock. */
struct refresh_entry {
	enum refresh_state	 state;
	bool			 fetching;	/* a fetch is in flight */
	bool			 watched;	/* keep fresh even when idle */
	int64_t			 fetched;	/* last successful fetch */
	int64_t			 ttl;		/* refresh interval */
	int64_t			 ahead;		/* from refresh_ahead() */
	int64_t			 last_access;	/* last read of the value */
	int64_t			 retry_at;	/* STALE, GONE: next attempt */
	int64_t			 gone_since;	/* GONE: first "no such secret" */
};

struct refresh_policy {
	int64_t		max_stale_ms;	/* serve a stale value this long past expiry */
	int64_t		delete_grace_ms;	/* serve a deleted one this long */
};

enum refresh_action {
	REFRESH_NONE = 0,	/* nothing to do before *next */
	REFRESH_FETCH,		/* fetch it now, in the background */
	REFRESH_EXPIRE,		/* stale past max_stale: drop the value */
	REFRESH_REMOVE,		/* deleted past the grace: drop the value */
};

enum refresh_read {
	REFRESH_READ_HIT = 0,	/* serve the value */
	REFRESH_READ_STALE,	/* serve it; it is stale or deleted (count it) */
	REFRESH_READ_FETCH,	/* fetch (or join the fetch in flight) and wait */
	REFRESH_READ_EXPIRE,	/* drop the value first, then fetch */
};

/*
 * The refresh-ahead point of a value fetched at `fetched`: fetched + ttl
 * minus 10 to 25 % of ttl, chosen by rnd. Never before fetched.
 */
int64_t refresh_ahead(int64_t fetched, int64_t ttl, uint32_t rnd);

/*
 * Delay before retry number `failures` (1 for the first retry) of a
 * failing refresh: REFRESH_RETRY_BASE_MS doubled per failure, capped at
 * ttl (within [REFRESH_RETRY_MIN_CAP_MS, REFRESH_RETRY_MAX_CAP_MS]), then
 * "equal jitter": between half of that and all of it, chosen by rnd.
 */
int64_t refresh_backoff(unsigned failures, int64_t ttl, uint32_t rnd);

/* Read in the second half of its interval, or watched. */
bool refresh_is_hot(const struct refresh_entry *e);

/* The time past which a value may no longer be served (INT64_MAX: none). */
int64_t refresh_serve_limit(const struct refresh_entry *e,
    const struct refresh_policy *p);

/*
 * The scheduler's decision for e at now. *next is when to look at e again
 * if nothing changes (INT64_MAX: only after a read or a fetch).
 */
enum refresh_action refresh_decide(const struct refresh_entry *e,
    const struct refresh_policy *p, int64_t now, int64_t *next);

/* A read's decision for e at now. */
enum refresh_read refresh_read_decide(const struct refresh_entry *e,
    const struct refresh_policy *p, int64_t now);

#endif
