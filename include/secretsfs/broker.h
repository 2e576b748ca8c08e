/*
 * broker: the core the filesystem talks to. It owns the config, the open
 * backends and the cache, and turns a secret name into a pinned value.
 *
 * The config can be replaced while requests run (SIGHUP, broker_reload),
 * so every request works on one *view*: a refcounted snapshot of the
 * config, its name index and its backends, pinned with broker_acquire()
 * for the length of the request and released after the reply. A secret's
 * index is only meaningful within the view it came from; names are
 * stable across views. The cache, keyed by name, outlives views.
 */
#ifndef SECRETSFS_BROKER_H
#define SECRETSFS_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <secretsfs/audit.h>
#include <secretsfs/cache.h>
#include <secretsfs/config.h>
#include <secretsfs/identity.h>
#include <secretsfs/policy.h>

struct broker;
struct broker_view;

/*
 * Open every backend of cfg and make the cache. Takes ownership of cfg
 * (also on failure). 0 and *out, or -errno with errbuf saying why.
 */
int broker_new(struct config *cfg, struct broker **out, char *errbuf,
    size_t errlen);
/* Stops what broker_start started first. NULL is fine. */
void broker_free(struct broker *b);

/*
 * Start the background refresh threads. Call once the process is in its
 * final form (after daemonizing: threads do not survive a fork). 0 or
 * -errno.
 */
int broker_start(struct broker *b);
/* Stop them (a fetch in flight finishes first). Idempotent. */
void broker_stop(struct broker *b);

/*
 * The current config. Valid until the next reload: request paths use a
 * view instead.
 */
const struct config *broker_config(const struct broker *b);

/* Pin the current view; never NULL. Release it with broker_release. */
struct broker_view *broker_acquire(struct broker *b);
/* NULL is fine. The last release of a replaced view frees it. */
void broker_release(struct broker_view *v);

const struct config *broker_view_config(const struct broker_view *v);

/* Index of the secret called name in v, or -1. O(1). */
ssize_t broker_view_lookup(const struct broker_view *v, const char *name);

/*
 * Pin the value of secret idx (fetching it when absent or due). The
 * backend's reason for a failure is logged here, once, with the name.
 * 0 and *out (release with cache_put), or -ENOENT/-EACCES/-EIO.
 */
int broker_get(struct broker_view *v, size_t idx, struct cache_snap **out);

/*
 * The files of secret idx when it is a directory ("as": "directory": the
 * keys of its JSON value; "as": "prefix": the secrets the backend lists
 * under its ref, refreshed every `refresh`). Names that are not valid
 * file names are left out. *names is a malloc'd array of malloc'd
 * strings (broker_names_free). 0, or -ENOTDIR, -ENOENT, -EACCES, -EIO.
 */
int broker_children(struct broker_view *v, size_t idx, char ***names,
    size_t *n);
void broker_names_free(char **names, size_t n);

/* Pin the value of file `child` of directory secret idx. As broker_get. */
int broker_get_child(struct broker_view *v, size_t idx, const char *child,
    struct cache_snap **out);

/* The cached value of idx without fetching; -ENOENT when none. */
int broker_peek(struct broker_view *v, size_t idx, struct cache_snap **out);

struct cache *broker_cache(struct broker *b);

/*
 * Who is asking: the FUSE request's pid/uid/gid resolved to a caller
 * (cgroup, container, and the Engine API's name/image/labels when a
 * runtime socket is configured). -ESRCH when the process is gone; the
 * caller then gets nothing.
 */
int broker_identify(struct broker *b, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out);

/* May c see secret idx? Fills d (rule id included). */
bool broker_allowed(struct broker_view *v, const struct caller *c,
    size_t idx, struct policy_decision *d);

/* The errno a denied name answers: ENOENT, or EACCES when configured. */
int broker_deny_errno(const struct broker_view *v);

/*
 * The access decision for the process pid (uid, gid as the request gives
 * them) on secret idx: broker_identify, then broker_allowed. A caller
 * that cannot be identified (its process is gone) is denied by the
 * default rule, with c holding just pid, uid and gid. Fills c and d;
 * true when allowed.
 */
bool broker_decide(struct broker_view *v, pid_t pid, uid_t uid, gid_t gid,
    size_t idx, struct caller *c, struct policy_decision *d);

/*
 * The same for a name that is no secret at all: the same identification
 * and rules, so that a missing name costs what a hidden one does (no
 * timing oracle). Always false: there is nothing to allow.
 */
bool broker_decide_missing(struct broker_view *v, pid_t pid, uid_t uid,
    gid_t gid, const char *name, struct caller *c,
    struct policy_decision *d);

/* An open(2) as the filesystem received it. */
struct broker_open_req {
	pid_t		 pid;		/* who asks, as the request says */
	uid_t		 uid;
	gid_t		 gid;
	size_t		 idx;		/* the secret, in the view */
	const char	*child;		/* a file of secret idx, or NULL */
	int		 flags;		/* open(2)'s */
};

/*
 * The whole pipeline of an open(): a directory secret answers -EISDIR
 * and a write -EROFS, neither decided nor recorded; then broker_decide.
 * A denial is recorded (with its rule) and answers -broker_deny_errno().
 * An allow whose caller the file's mode refuses (perm.h: uid, gid, the
 * groups and capabilities in /proc/<pid>/status) is recorded as a deny
 * with reason "mode" and answers -EACCES. An allowed open pins the
 * value and records the access, its failure included, before anything
 * is served: no record, no access. When the
 * record cannot be written (audit.on_failure "deny") the answer is -EIO
 * and nothing stays pinned. 0 and *out pinned (release with cache_put:
 * it keeps the bytes it pinned across reloads and rotations), or -errno
 * (the fetch's -ENOENT, -EACCES, -EIO...).
 */
int broker_open(struct broker_view *v, const struct broker_open_req *req,
    struct cache_snap **out);

/*
 * Audit records (child: a file of a directory secret, else NULL). Each
 * returns 0 when the record is on disk (or auditing is off), or -EIO
 * when it could not be written and the config says to fail closed: the
 * request must then be refused with EIO. A failure is logged here.
 * An allowed access with a version is also remembered for status (who
 * holds which version) and on_rotate, and counted for metrics.
 */
int broker_audit_access(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule,
    enum audit_outcome outcome, int err, const char *version);
/*
 * An open a rule allowed but something else refused (reason "mode": the
 * file's mode/uid/gid, errno EACCES): an access record with outcome deny,
 * the allowing rule, err and reason.
 */
int broker_audit_refused(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule, int err,
    const char *reason);
int broker_audit_lookup_denied(struct broker_view *v, const struct caller *c,
    size_t idx, const char *child, const char *rule);
/*
 * A lookup of a name that is no secret, recorded as a denied one is (event
 * lookup_denied, reason "no such secret" where a denial says "not
 * allowed"), so that the two take the same path through the daemon.
 */
int broker_audit_missing(struct broker_view *v, const struct caller *c,
    const char *name, const char *rule);

/*
 * One "repair" record for a dead bind the repair found or for publishing
 * the mount: its target, err (0: done, else a positive errno) and step
 * (NULL, or what failed), about the process pid (uid, gid) whose mount
 * namespace it was. 0, or -EIO as broker_audit_access() (logged here).
 */
int broker_audit_repair(struct broker *b, pid_t pid, uid_t uid, gid_t gid,
    const char *target, int err, const char *step);

/* The fetcher process exited (status as from waitpid) or started again. */
int broker_audit_fetcher(struct broker *b, bool started, pid_t pid,
    int status, unsigned restart_ms);

/* SIGHUP: reopen the audit file (logrotate moved it). */
void broker_audit_reopen(struct broker *b);

/*
 * SIGHUP: read the config file again. On any error (the file, a backend
 * that cannot be opened) keep the current config, log why and return
 * -errno. On success the new config serves the next request: new secrets
 * appear, removed ones vanish (their cached values are wiped), changed
 * rules decide the next open. Settings that need a restart (mount,
 * memory, audit, runtime, control) are kept and a warning says so. Either
 * outcome is audited ("reload"); a file whose JSON is unchanged (a SIGHUP
 * for logrotate) changes and records nothing. Not reentrant: one caller
 * at a time.
 */
int broker_reload(struct broker *b);

/* ------------------------------------------------------------------ */
/* What the filesystem tells the broker, and the reverse.             */

/*
 * Called after a new version of name ("secret" or "secret/file") is
 * installed, from the thread that fetched it: the filesystem invalidates
 * the kernel's attributes. It must not block.
 */
typedef void (*broker_changed_fn)(void *arg, const char *name);
void broker_set_changed_hook(struct broker *b, broker_changed_fn fn,
    void *arg);

/* The mount is live (path) or gone (NULL). */
void broker_set_mounted(struct broker *b, const char *mountpoint);
/* An open() handed out a snapshot (+1), a release() returned one (-1). */
void broker_note_open(struct broker *b, int delta);

/* ------------------------------------------------------------------ */
/* Operations: flush, refresh, health, status and metrics.            */

/*
 * Forget the cached value of secret name (and its files), or all when
 * name is NULL: the next read fetches. 0, or -ENOENT when no such secret
 * is configured.
 */
int broker_flush(struct broker *b, const char *name);

/*
 * Fetch secret name (and its cached files) now; an "as": "prefix" secret
 * is listed again at its next readdir and its cached files are fetched
 * (version "-"). 0 with the version in version, or -ENOENT (not
 * configured), or the fetch's -errno.
 */
int broker_refresh(struct broker *b, const char *name, char *version,
    size_t vlen);

/*
 * Healthy: mounted, and every backend reachable or failing for less
 * than max_stale: 0. Unhealthy (not mounted, a backend failing longer):
 * -EIO. Degraded (a backend asked that has never answered, failing for
 * less than max_stale): 1. why says which, and why.
 */
int broker_health(struct broker *b, char *why, size_t len);

/* Latency histogram bounds, in seconds; +Inf follows. */
#define BROKER_LATENCY_BUCKETS	12
extern const double broker_latency_bounds[BROKER_LATENCY_BUCKETS];

struct broker_backend_info {
	char		name[128];
	char		type[16];
	uint64_t	requests;	/* fetches and listings */
	uint64_t	errors;		/* those that failed */
	uint64_t	buckets[BROKER_LATENCY_BUCKETS + 1];	/* not cumulative */
	double		latency_sum;	/* seconds */
	int		reachable;	/* 1, 0, or -1 when not asked yet */
	int64_t		failing_ms;	/* since the first failure in a row; 0 */
	char		last_error[BACKEND_ERR_MAX];	/* never a value */
	bool		auth_known;
	char		auth_method[32];
	char		auth_action[16];
	bool		auth_ok;
	long long	auth_ttl;	/* seconds granted */
	int64_t		auth_age_ms;	/* since the event */
};

/* Someone who opened a version of a secret. */
struct broker_holder_info {
	bool		container;
	char		container_id[IDENTITY_ID_MAX];
	char		container_name[IDENTITY_NAME_MAX];
	char		runtime[16];
	/* From the kubelet (runtime.kubelet); empty when not known. */
	char		k8s_namespace[64];
	char		k8s_pod[254];
	char		k8s_service_account[254];
	char		k8s_container[64];
	pid_t		pid;		/* the last opener */
	char		comm[17];
	uid_t		uid;
	char		version[BACKEND_VERSION_MAX];	/* the one it opened last */
	struct timespec	last_open;
	pid_t		pids[8];	/* openers still running */
	size_t		npids;
};

struct broker_secret_info {
	char		 name[2 * 255 + 2];
	bool		 configured;	/* a configured secret (not a file of one) */
	bool		 cached;	/* the cache knows it */
	struct cache_entry_info cache;	/* when cached; name not set */
	bool		 rotated;	/* a rotation was seen since start */
	struct timespec	 rotated_at;	/* when it was seen */
	char		 previous[BACKEND_VERSION_MAX];	/* before the last rotation */
	size_t		 holders;	/* callers with an opener still running */
	/*
	 * Processes still running that opened an older version, one entry
	 * each (pid its own, pids just it): another process's read of the
	 * new version, in the same container too, does not clear it.
	 */
	struct broker_holder_info *behind;
	size_t		 nbehind;
	const char	*on_rotate;	/* signal name, or NULL */
	char		 backend[128];	/* its backend; "": not configured */
	int64_t		 refresh_ms;	/* its interval; 0: not configured */
	bool		 expired;	/* dropped past max_stale, not fetched
					   since */
	char		 last_error[BACKEND_ERR_MAX];	/* of the last fetch
					   when it failed, ""; never a value */
};

struct broker_snapshot {
	pid_t		 pid;
	char		 config_file[4096];
	char		 mountpoint[4096];
	bool		 mounted;
	struct timespec	 started, loaded;
	int64_t		 max_stale_ms;
	size_t		 locked_bytes, used_bytes;
	const char	*backing;
	uint64_t	 cache_max_bytes;
	struct cache_stats cache;
	bool		 audit_on;
	struct audit_stats audit;
	long		 open_files;
	uint64_t	 reads, read_errors, denials;
	uint64_t	 reloads, reload_errors, signals_sent;
	size_t		 n_secrets_configured;
	struct broker_backend_info *backends;
	size_t		 nbackends;
	struct broker_secret_info *secrets;	/* sorted by name; with_secrets */
	size_t		 nsecrets;
};

/* Everything status and metrics show. 0, or -ENOMEM. */
int broker_snapshot(struct broker *b, bool with_secrets,
    struct broker_snapshot *out);
void broker_snapshot_free(struct broker_snapshot *s);

#endif
