/*
 * cache: secret values by name, in locked memory.
 *
 * Readers pin a refcounted snapshot at open() and read from it until
 * release(), so a value replaced meanwhile never tears a read. Concurrent
 * misses on one name share a single fetch (singleflight). Names that are
 * parts of one backend answer (a directory's keys, every `field` of one
 * reference and version: see cache_set_source) share one fetch, one
 * refresh and one version: a new version replaces all of them at once. The total of the
 * cached values is capped. When each value is fetched again, how long a
 * stale or deleted one is still served, and the backoff of failing
 * refreshes are refresh.h's decisions; the scheduler threads of sched.h
 * drive cache_refresh_step().
 */
#ifndef SECRETSFS_CACHE_H
#define SECRETSFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <secretsfs/backend.h>
#include <secretsfs/refresh.h>

/* An immutable cached value. Valid while the reader holds a reference. */
struct cache_snap {
	const uint8_t	*data;		/* secmem */
	size_t		 len;
	struct timespec	 changed;	/* from the backend, else fetch time */
	struct timespec	 fetched;	/* CLOCK_REALTIME */
	uint64_t	 generation;	/* bumps when the version changes */
	/* private */
	int		 refs;
	/* Sized to fit; shorter than BACKEND_VERSION_MAX. */
	char		 version[];
};

/*
 * Fetch the named secret into *out (a backend_value the cache takes over).
 * errbuf explains a failure. Called without any cache lock held, from the
 * thread that missed or a scheduler thread. -ESTALE means "no longer
 * configured": the value is dropped at once, without a grace, and readers
 * get -ENOENT. With a source (cache_set_source), name is one of the names
 * of the source being fetched and the fetch brings the whole answer (no
 * field selected): the cache selects. An answer without a version gets
 * one: the first 16 hex digits of HMAC-SHA256 of the value under a key
 * drawn at cache_new(), so it tells a change and nothing of the value.
 */
typedef int (*cache_fetch_fn)(void *arg, const char *name,
    struct backend_value *out, char *errbuf, size_t errlen);

struct cache_limits {
	uint64_t	max_bytes;	/* cap on the cached values */
	int64_t		negative_ttl_ms;	/* how long -ENOENT is remembered */
	int64_t		max_stale_ms;	/* serve the old value this long when a refresh fails */
	int64_t		delete_grace_ms;	/* serve a deleted value this long */
};

/*
 * What happened to a value, for the log, the audit trail and the
 * filesystem. Strings are copies, valid for the call only.
 */
enum cache_event_type {
	/*
	 * A fetch brought another version than the last one seen: called
	 * before the new value is installed, so that the record of the
	 * rotation precedes every access to the new version.
	 */
	CACHE_EV_ROTATING = 0,
	/* The new version is installed: readers from now on get it. */
	CACHE_EV_ROTATED,
	/* A refresh failed: the last good value is served stale (age_ms). */
	CACHE_EV_STALE,
	/* Stale past max_stale: dropped; reads fail until a fetch works. */
	CACHE_EV_EXPIRED,
	/* A refresh worked again after failures. */
	CACHE_EV_RECOVERED,
	/* The backend no longer has it: served for the deletion grace. */
	CACHE_EV_GONE,
	/* Deleted past the grace: dropped. */
	CACHE_EV_REMOVED,
};

struct cache_event {
	enum cache_event_type	 type;
	const char		*name;
	const char		*version;	/* the value's (new) version */
	const char		*old_version;	/* ROTATING, ROTATED */
	int64_t			 age_ms;	/* since the value was fetched */
	int			 err;		/* STALE, GONE: -errno of the fetch */
};

/* Called without the cache lock, from the thread that saw the event. */
typedef void (*cache_event_fn)(void *arg, const struct cache_event *ev);

struct cache;

/*
 * Where a name's value comes from. resolve: the key of the backend answer
 * name is part of (names with equal keys share one fetch) and, when
 * *has_field, the member of that answer's JSON object it serves (a string
 * as its text, anything else as compact JSON). 0, or -ESTALE (not
 * configured: readers get -ENOENT). Called without the cache lock, only
 * when the name has no source yet (or lost it to cache_forget_tree with
 * history). select_failed: a selection could not be made (no such field:
 * err -ENOENT; not a JSON object: -EINVAL), once per value and name; why
 * never holds the value.
 */
struct cache_source {
	int	(*resolve)(void *arg, const char *name, char *key, size_t klen,
		    char *field, size_t flen, bool *has_field);
	void	(*select_failed)(void *arg, const char *name, int err,
		    const char *why);
	/* Optional: name's selection worked again after select_failed. */
	void	(*selected)(void *arg, const char *name);
};

/* NULL on OOM. fn/arg are used for every fetch. */
struct cache *cache_new(const struct cache_limits *lim, cache_fetch_fn fn,
    void *arg);
/* All snapshots must have been released. NULL is fine. */
void cache_free(struct cache *c);

/* New limits (a reload); values over a smaller cap go at the next fetch. */
void cache_set_limits(struct cache *c, const struct cache_limits *lim);

/* Register the sources (NULL: each name its own). Set before sharing. */
void cache_set_source(struct cache *c, const struct cache_source *src,
    void *arg);

/* Register the event callback (NULL: none). Set before sharing the cache. */
void cache_set_events(struct cache *c, cache_event_fn fn, void *arg);

/*
 * Who to wake when an entry needs the scheduler's attention sooner than it
 * planned (a new value, a read near expiry). Called with the cache lock
 * held: it must only signal. NULL unregisters; after that returns, the old
 * waker is never called again.
 */
void cache_set_waker(struct cache *c, void (*fn)(void *), void *arg);

/*
 * Pin the value of name, fetching it when absent or due. A fetched value
 * is due for a refresh ttl_ms after it was fetched.
 * 0 and *out pinned (release with cache_put), or -errno from the fetch
 * (-ENOENT, -EACCES, -EIO, -EFBIG when the value alone exceeds the cap).
 */
int cache_get(struct cache *c, const char *name, int64_t ttl_ms,
    struct cache_snap **out);

/* CACHE_WATCHED: keep it fresh even when nobody reads (on_rotate). */
#define CACHE_WATCHED	0x1

/* cache_get() with flags. */
int cache_get_ex(struct cache *c, const char *name, int64_t ttl_ms,
    unsigned flags, struct cache_snap **out);

/* Pin the cached value without fetching; -ENOENT when there is none. */
int cache_peek(struct cache *c, const char *name, struct cache_snap **out);

/* Drop one reference; the last one wipes and frees. NULL is fine. */
void cache_put(struct cache_snap *s);

/* Forget one name (or all when name is NULL): the next get refetches. */
void cache_forget(struct cache *c, const char *name);

/*
 * Forget name and every "name/..." entry (all when name is NULL), and the
 * values of their sources (the other names of a source fetch again too).
 * With
 * history, also the last version seen, so that the next fetch is not
 * taken for a rotation (a secret removed from, or redefined in, the
 * config). A fetch in flight for one of them is discarded.
 */
void cache_forget_tree(struct cache *c, const char *name, bool history);

/*
 * Fetch name now, whether or not it is due (waiting for a fetch in
 * flight first), and keep the result as a read's fetch would. ttl_ms and
 * flags as cache_get_ex. 0 and the version fetched in version (may be
 * NULL), or -errno.
 */
int cache_refresh_now(struct cache *c, const char *name, int64_t ttl_ms,
    unsigned flags, char *version, size_t vlen);

/*
 * The scheduler's step: perform one due action (a background fetch, or
 * dropping a value stale or deleted for too long) and return 1, or
 * return 0 with *next the monotonic ms when something will be due.
 */
int cache_refresh_step(struct cache *c, int64_t now_ms, int64_t *next);

struct cache_stats {
	uint64_t	hits, misses, fetches, fetch_errors, stale_served;
	uint64_t	bytes, entries;
	uint64_t	refreshes;	/* background fetches */
	uint64_t	refresh_errors;
	uint64_t	rotations;	/* of sources */
	uint64_t	expired;	/* values dropped past max_stale */
	uint64_t	stale;		/* values now served stale or deleted */
};
void cache_stats(struct cache *c, struct cache_stats *st);

/* One name as status shows it (its source's state). */
struct cache_entry_info {
	const char		*name;
	enum refresh_state	 state;
	bool			 fetching;
	char			 version[BACKEND_VERSION_MAX];	/* "" when none seen */
	size_t			 len;
	struct timespec		 changed;	/* the version's time */
	struct timespec		 fetched;	/* realtime of the last good fetch */
	int64_t			 age_ms;	/* since fetched; -1 without value */
	int64_t			 stale_ms;	/* past expiry while failing; 0 */
	int64_t			 next_ms;	/* until the next planned fetch; -1 */
	unsigned		 failures;	/* consecutive failed refreshes */
	int			 last_err;	/* -errno of the last fetch, 0 */
};

/*
 * Call fn for each entry (those without a value included), with the cache
 * locked: fn must not call into the cache.
 */
void cache_foreach(struct cache *c,
    void (*fn)(void *arg, const struct cache_entry_info *e), void *arg);

#endif
