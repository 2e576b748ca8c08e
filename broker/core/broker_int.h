/*
 * What the files of the broker share; not part of its interface.
 *
 *   broker.c          views, lifecycle, reads, the open pipeline
 *   broker_holders.c  who holds which version of a secret; on_rotate
 *   broker_events.c   cache and backend events, the audit records
 *   broker_reload.c   a new config while requests run
 *   broker_status.c   backend statistics; flush, refresh, health, status
 */
#ifndef SECRETSFS_BROKER_INT_H
#define SECRETSFS_BROKER_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/broker.h>
#include <secretsfs/cache.h>
#include <secretsfs/config.h>
#include <secretsfs/identity.h>

/* A cache name: "secret" or "secret/file". */
#define NAME_CAP		(2 * NAME_MAX + 2)

struct engine;
struct sched;
struct track;

/* The last listing of an "as": "prefix" secret. */
struct listing {
	char		**names;
	size_t		  n;
	int64_t		  due;		/* monotonic ms */
};

/* A backend instance, shared by the views whose config defines it alike. */
struct shared_backend {
	int		 refs;
	struct backend	*be;
	char		*type;
	json_t		*opts;		/* its config object, to compare */
};

struct broker_view {
	int			 refs;
	struct broker		*b;
	struct config		*cfg;
	struct shared_backend	**backends;	/* one per cfg->backends */
	ssize_t			*index;		/* slot -> secret index, -1 empty */
	size_t			 nslots;
	pthread_mutex_t		 list_lock;
	struct listing		*listings;	/* one per secret */
};

/* Per backend name, across reloads. */
struct backend_stat {
	char		name[128];
	char		type[16];
	uint64_t	requests, errors;
	uint64_t	buckets[BROKER_LATENCY_BUCKETS + 1];
	double		sum;
	int		reachable;	/* -1 unknown */
	int64_t		fail_since;	/* monotonic ms; 0 */
	char		last_error[BACKEND_ERR_MAX];
	bool		auth_known, auth_ok;
	char		auth_method[32], auth_action[16];
	long long	auth_ttl;
	int64_t		auth_at;	/* monotonic ms */
};

struct broker {
	pthread_mutex_t		 view_lock;
	struct broker_view	*view;
	char			*config_file;
	struct cache		*cache;
	struct sched		*sched;
	struct identity_cache	*ids;
	struct engine		*engine;
	struct kubelet		*kubelet;	/* runtime.kubelet, or NULL */
	struct audit		*audit;
	struct timespec		 started, loaded;

	pthread_mutex_t		 stat_lock;	/* bstats, mounted */
	struct backend_stat	*bstats;
	size_t			 nbstats;
	char			 mountpoint[PATH_MAX];
	bool			 mounted;

	pthread_mutex_t		 track_lock;
	struct track		**tracks;	/* chained hash, grown at load 1 */
	size_t			 ntrack_slots;
	size_t			 ntracks;

	broker_changed_fn	 changed;
	void			*changed_arg;

	long			 open_files;	/* atomic */
	uint64_t		 reads, read_errors, denials;	/* atomic */
	uint64_t		 reloads, reload_errors, signals_sent;
};

static inline uint64_t
broker_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static inline void
broker_count(uint64_t *n)
{
	__atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

/* broker.c */

/*
 * A view of cfg (taken over, also on failure). Backends defined exactly
 * as in old (same name, type and options) are shared with it; the others
 * are opened.
 */
int broker_view_new(struct broker *b, struct config *cfg,
    struct broker_view *old, struct broker_view **out, char *errbuf,
    size_t errlen);
/* The cache's limits under cfg, capped by the locked arena. */
struct cache_limits broker_limits(const struct config *cfg);
/* The configured secret a cache name belongs to, in v; NULL if none. */
const struct config_secret *broker_secret_of(const struct broker_view *v,
    const char *name, const char **child);
/* The name and reference a record gives a secret or a file of one. */
void broker_record_names(const struct config_secret *s, const char *child,
    char *name, size_t nlen, char *ref, size_t rlen);
/* The cache_get_ex() flags of s's values. */
unsigned broker_cache_flags(const struct config_secret *s);

/* broker_holders.c; each but the last takes track_lock. */

/* An allowed open of version `version` of name by c. */
void broker_holders_open(struct broker *b, const char *name,
    const struct caller *c, const char *version);
/* Forget name and its files ("name/..."). */
void broker_holders_remove(struct broker *b, const char *name);
/* A new version of name is installed; old_version was served before. */
void broker_holders_rotated(struct broker *b, const char *name,
    const char *old_version);
/* on_rotate: signal the openers still running of another version. */
void broker_holders_signal(struct broker *b, const char *name,
    const char *version, int sig);
/* The holders of si (holders, rotation, the ones behind) for status. */
void broker_holders_fill(struct broker *b, struct broker_secret_info *si);
/* A fetch of name failed (why) or worked (why NULL). */
void broker_holders_fetched(struct broker *b, const char *name,
    const char *why);
/* name's value was dropped past cache.max_stale. */
void broker_holders_expired(struct broker *b, const char *name);
/* Free every track (broker_free). */
void broker_holders_free(struct broker *b);

/* broker_events.c */

/* The cache's event callback (cache_set_events). */
void broker_cache_event(void *arg, const struct cache_event *ev);
/* The backends' authentication hook (backend_set_auth_hook). */
void broker_auth_event(void *arg, const char *backend, const char *method,
    const char *action, bool ok, int err, long long ttl, const char *reason);

/* broker_status.c */

/* The statistics of backend name, made when new. stat_lock held. */
struct backend_stat *broker_bstat(struct broker *b, const char *name,
    const char *type);
/*
 * One request to a backend, done: r is what the reader gets (0, -ENOENT
 * and -EACCES are answers; -EIO is a backend we could not use).
 */
void broker_bstat_note(struct broker *b, const char *name, const char *type,
    int r, double secs, const char *why);

#endif
