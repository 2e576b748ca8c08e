/*
 * cache: secret values by name, in locked memory.
 *
 * Readers pin a refcounted snapshot at open() and read from it until
 * release(), so a value replaced meanwhile never tears a read. Concurrent
 * misses on one name share a single fetch (singleflight). The total of the
 * cached values is capped.
 */
#ifndef SECRETSFS_CACHE_H
#define SECRETSFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <secretsfs/backend.h>

/* An immutable cached value. Valid while the reader holds a reference. */
struct cache_snap {
	const uint8_t	*data;		/* secmem */
	size_t		 len;
	char		 version[BACKEND_VERSION_MAX];
	struct timespec	 changed;	/* from the backend, else fetch time */
	struct timespec	 fetched;	/* CLOCK_REALTIME */
	uint64_t	 generation;	/* bumps when the version changes */
	/* private */
	int		 refs;
};

/*
 * Fetch the named secret into *out (a backend_value the cache takes over).
 * errbuf explains a failure. Called without any cache lock held, from the
 * thread that missed.
 */
typedef int (*cache_fetch_fn)(void *arg, const char *name,
    struct backend_value *out, char *errbuf, size_t errlen);

struct cache_limits {
	uint64_t	max_bytes;	/* cap on the cached values */
	int64_t		negative_ttl_ms;	/* how long -ENOENT is remembered */
	int64_t		max_stale_ms;	/* serve the old value this long when a refresh fails */
};

struct cache;

/* NULL on OOM. fn/arg are used for every fetch. */
struct cache *cache_new(const struct cache_limits *lim, cache_fetch_fn fn,
    void *arg);
/* All snapshots must have been released. NULL is fine. */
void cache_free(struct cache *c);

/*
 * Pin the value of name, fetching it when absent or due. A fetched value
 * is due for a refresh ttl_ms after it was fetched.
 * 0 and *out pinned (release with cache_put), or -errno from the fetch
 * (-ENOENT, -EACCES, -EIO, -EFBIG when the value alone exceeds the cap).
 */
int cache_get(struct cache *c, const char *name, int64_t ttl_ms,
    struct cache_snap **out);

/* Pin the cached value without fetching; -ENOENT when there is none. */
int cache_peek(struct cache *c, const char *name, struct cache_snap **out);

/* Drop one reference; the last one wipes and frees. NULL is fine. */
void cache_put(struct cache_snap *s);

/* Forget one name (or all when name is NULL): the next get refetches. */
void cache_forget(struct cache *c, const char *name);

struct cache_stats {
	uint64_t	hits, misses, fetches, fetch_errors, stale_served;
	uint64_t	bytes, entries;
};
void cache_stats(struct cache *c, struct cache_stats *st);

#endif
