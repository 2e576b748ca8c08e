/*
 * What the files of the cache share; not part of its interface.
 *
 *   cache.c        sources: fetches, singleflight, landing, refresh steps
 *   cache_names.c  names: which source each serves, the selection made
 *                  from it, forgets, status
 *
 * A *source* (struct entry) is one backend answer: a backend, a reference
 * and a pinned version, fetched and refreshed once. A *name* (struct
 * member) is what a reader asks for ("secret" or "secret/file"): the
 * whole value of one source, or one member of its JSON object, selected
 * when it is served. All of it under the cache's one mutex.
 */
#ifndef SECRETSFS_CACHE_INT_H
#define SECRETSFS_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <secretsfs/cache.h>
#include <secretsfs/lru.h>

#define CACHE_NAME_CAP	512	/* "secret/file": 2 * NAME_MAX + 2 */
#define CACHE_KEY_CAP	2048	/* backend, version and reference */
#define CACHE_VKEY_LEN	32	/* the version key (HMAC-SHA256) */
#define CACHE_VERSION_HASH	16	/* hex digits of a made-up version */

struct member;

struct entry {
	struct entry		*next;		/* hash chain */
	struct lru_node		 lru;
	struct cache_snap	*snap;		/* current value, or NULL */
	struct refresh_entry	 rt;		/* state, times, fetching */
	int64_t			 neg_until;	/* monotonic ms; remembered -ENOENT
						   or -EACCES (last_err): a refusal
						   is an answer too */
	int64_t			 err_until;	/* monotonic ms; remembered slow failure */
	unsigned		 failures;	/* consecutive failed fetches */
	int			 last_err;
	uint64_t		 done;		/* count of finished fetches */
	uint64_t		 epoch;		/* bumps on forget */
	uint64_t		 gen;		/* bumps with the version */
	uint64_t		 installs;	/* bumps with every value */
	bool			 kicked;	/* the scheduler was woken for it */
	/*
	 * The version last fetched: while there is a value, its snapshot's
	 * (and this is NULL); else malloc'd when one was seen, NULL when none.
	 */
	char			*last_version;
	struct member		*members;	/* the names served from it */
	char			 name[];	/* the source key; immutable */
};

struct member {
	struct member		*next;		/* hash chain */
	struct member		*sibling;	/* next name of the same source */
	struct entry		*src;		/* NULL until resolved */
	char			*field;		/* selection; NULL: the whole value */
	struct cache_snap	*snap;		/* the selection, kept; or NULL */
	uint64_t		 serial;	/* src->installs it was made from */
	int			 sel_err;	/* the selection failed at serial */
	char			*last_version;	/* for its rotations; malloc'd */
	int64_t			 ttl;
	bool			 watched;
	bool			 announced;	/* ROTATING went out for the fetch */
	char			 name[];	/* immutable */
};

struct pending {
	enum cache_event_type	 type;
	char			 name[CACHE_NAME_CAP];
	char			 version[BACKEND_VERSION_MAX];
	char			 old[BACKEND_VERSION_MAX];
	int64_t			 age_ms;
	int			 err;
};

/* Events collected under the lock, delivered after it. */
struct evq {
	struct pending	*ev;
	size_t		 n, cap;
};

struct cache {
	pthread_mutex_t		 lock;
	pthread_cond_t		 landed;	/* a fetch landed (any entry) */
	struct entry		**buckets;
	size_t			 nbuckets, count;
	struct member		**names;
	size_t			 nnames, nmembers;
	struct lru		 lru;
	struct cache_limits	 lim;
	cache_fetch_fn		 fetch;
	void			*arg;
	struct cache_source	 source;	/* all NULL: a name is its source */
	void			*source_arg;
	cache_event_fn		 events;
	void			*events_arg;
	void			(*waker)(void *);
	void			*waker_arg;
	uint64_t		 rnd;
	struct cache_stats	 st;
	uint8_t			 vkey[CACHE_VKEY_LEN];
};

/* cache.c; all locked. */
uint64_t cache_hash(const char *s);
struct entry *cache_entry_find(struct cache *c, const char *key, bool create);
void cache_pin(struct cache_snap *s);
void cache_drop_value(struct cache *c, struct entry *e);
int cache_make_room(struct cache *c, struct entry *keep, size_t need);
/* Forget a source's value (and its version too with history). */
void cache_entry_forget(struct cache *c, struct entry *e, bool history);

/* cache_names.c; all locked. */
struct member *cache_member_find(struct cache *c, const char *name,
    bool create);
/*
 * Resolve m to its source when it has none (unlocking for the resolver):
 * 0, or -errno (-ESTALE: not configured).
 */
int cache_member_bind(struct cache *c, struct member *m);
/* Drop the selections made from e's value (the value is going). */
void cache_members_drop(struct cache *c, struct entry *e);
void cache_member_set_version(struct member *m, const char *v);
/*
 * Pin what m serves from its source's current value (which must be
 * there): the value itself, or the selection of m's field, made now
 * (unlocking meanwhile) unless already made from this value.
 * 0 and *out, or -ENOENT (no such field), -EIO.
 */
int cache_member_serve(struct cache *c, struct member *m,
    struct cache_snap **out);

#endif
