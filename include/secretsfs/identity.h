/*
 * identity: who is calling. From the FUSE request's pid/uid/gid to the
 * container the process runs in, by way of /proc/<pid>/cgroup.
 *
 * Trust model. uid and gid come from the FUSE request (the kernel), never
 * from /proc and never from a cache. The container is read from the
 * process's cgroup path as the broker's cgroup namespace shows it, so the
 * broker must run in the host's pid and cgroup namespaces. A container may
 * create cgroups below its own (when its runtime delegates a subtree), so
 * the OUTERMOST container component of a path is the one that counts: a
 * container that names a sub-cgroup "docker-<other id>.scope" is still
 * itself. But anyone given a subtree anywhere (a Delegate=yes service, a
 * user manager, a chowned directory) can name a cgroup after any
 * container, so a path's name is believed only where identity_verify()
 * finds that root alone could have made it, and a process is the host only
 * in the host's namespaces.
 */
#ifndef SECRETSFS_IDENTITY_H
#define SECRETSFS_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum identity_runtime {
	IDENTITY_RUNTIME_HOST = 0,	/* no container: a host process */
	IDENTITY_RUNTIME_DOCKER,
	IDENTITY_RUNTIME_PODMAN,	/* libpod */
	IDENTITY_RUNTIME_CONTAINERD,	/* cri-containerd */
	IDENTITY_RUNTIME_CRIO,
	IDENTITY_RUNTIME_KUBEPODS,	/* a pod slice whose runtime is not named */
	IDENTITY_RUNTIME_SYSTEMD,	/* a <name>.service outside any container */
	IDENTITY_RUNTIME_UNKNOWN,	/* not the host, no runtime we know */
};
#define IDENTITY_RUNTIME_COUNT	(IDENTITY_RUNTIME_UNKNOWN + 1)

#define IDENTITY_ID_MAX		65	/* 64 hex digits + NUL */
#define IDENTITY_CGROUP_MAX	512
#define IDENTITY_NAME_MAX	256
#define IDENTITY_LABELS_MAX	16

struct identity_label {
	char	key[128];
	char	value[256];
};

/*
 * What the kubelet said about the caller's pod (kubelet.h), when
 * runtime.kubelet is configured. NONE: no kubelet, or the caller is in no
 * pod. KNOWN: the kubelet lists the pod (and the container, when the cgroup
 * names one). UNLISTED: the kubelet answered and does not list them.
 * UNREACHABLE: it could not be asked and they were not known before. A
 * caller in UNLISTED or UNREACHABLE is denied every secret (policy.h).
 */
enum identity_k8s_state {
	IDENTITY_K8S_NONE = 0,
	IDENTITY_K8S_KNOWN,
	IDENTITY_K8S_UNLISTED,
	IDENTITY_K8S_UNREACHABLE,
};

#define IDENTITY_K8S_LABELS_MAX	16

/* A label key is [prefix/]name: a DNS subdomain (253) and 63 characters. */
struct identity_k8s_label {
	char	key[318];
	char	value[64];
};

/*
 * Sizes from the API's validation: a namespace and a container name are
 * DNS labels (63), a pod and a service account name DNS subdomains (253).
 * A value that does not fit is dropped, never truncated.
 */
struct identity_k8s {
	enum identity_k8s_state		 state;
	char				 namespace[64];
	char				 pod[254];
	char				 service_account[254];
	char				 container[64];	/* empty: pod level */
	char				 image[IDENTITY_NAME_MAX];
	size_t				 n_labels;
	struct identity_k8s_label	 labels[IDENTITY_K8S_LABELS_MAX];
	bool				 labels_truncated;
};

/*
 * A caller as the policy and the audit trail see it. Plain data: copied
 * by value, no pointers at all. Strings are NUL-terminated
 * and empty when unknown.
 *
 * cgroup: the path the identity was read from (the v2 line when it names
 * the container, else the v1 line that does); for a process outside any
 * container, the v2 path, else name=systemd's, else the first line's. A
 * path that does not fit is left EMPTY rather than truncated, so that a
 * glob can never match a cut-off path.
 *
 * runtime/container_id: container_id is 64 lowercase hex digits, or empty
 * for HOST, SYSTEMD and a KUBEPODS pod-level cgroup. pod_uid is normalised
 * to '-' separators (systemd slices spell it with '_'). unit is the
 * outermost "<name>.service" of the path, set only for SYSTEMD.
 *
 * The engine fields are filled by engine_enrich() (engine.h). A label whose
 * key or value does not fit is dropped, never truncated; labels beyond
 * IDENTITY_LABELS_MAX are dropped too and labels_truncated is set. A dropped
 * label cannot match a rule, so the loss fails closed. k8s is filled by
 * kubelet_enrich() the same way, from the pod the kubelet lists.
 */
struct caller {
	pid_t			 pid;
	uid_t			 uid;
	gid_t			 gid;
	uint64_t		 start_time;	/* /proc/<pid>/stat field 22 */
	char			 comm[17];
	char			 cgroup[IDENTITY_CGROUP_MAX];	/* see above */
	enum identity_runtime	 runtime;
	char			 container_id[IDENTITY_ID_MAX];
	char			 pod_uid[64];
	char			 unit[IDENTITY_NAME_MAX];	/* systemd service name */
	/* From the Engine API when configured; empty otherwise. */
	char			 container_name[IDENTITY_NAME_MAX];
	char			 image[IDENTITY_NAME_MAX];
	size_t			 n_labels;
	struct identity_label	 labels[IDENTITY_LABELS_MAX];
	bool			 labels_truncated;	/* some labels were dropped */
	/* From the kubelet when configured (kubelet.h); zero otherwise. */
	struct identity_k8s	 k8s;
	pid_t			 container_pid;	/* State.Pid, 0 when unknown */
	bool			 engine_checked; /* identity_verify_engine ran */
	/*
	 * From identity_verify(). refused: why the container the cgroup path
	 * names was not believed (empty when it was, or none was named); a
	 * caller with a reason is denied every secret. cgroup_owner: the uid
	 * owning the container's cgroup subtree, 0 for a runtime run by root;
	 * rootless: that owner is not root and the operator allowed it, so
	 * only rules naming "owner_uid" match.
	 */
	char			 refused[128];
	uid_t			 cgroup_owner;
	bool			 rootless;
	/* From identity_parse_cgroup(), for identity_verify(). */
	char			 cgroup_hier[64];	/* v1 controllers, "" for v2 */
	uint16_t		 cgroup_anchor;	/* bytes of cgroup through the
						   container component, or 0 */
	uint16_t		 cgroup_user_at; /* 1 + offset of a user@ unit
						    above it, or 0 */
};

/*
 * "host", "docker", "podman", "containerd", "cri-o", "kubepods", "systemd",
 * "unknown"; "unknown" also for a value out of range. Static storage.
 */
const char *identity_runtime_name(enum identity_runtime rt);

/* The inverse of identity_runtime_name(). 0, or -EINVAL for an unknown name. */
int identity_runtime_from_name(const char *name, enum identity_runtime *rt);

/*
 * True for a caller that runs in no container and no pod: runtime HOST or
 * SYSTEMD. The policy's "host" matcher uses exactly this.
 */
bool identity_is_host(const struct caller *c);

/*
 * Parse the text of a /proc/<pid>/cgroup file (v1 "N:ctrl,ctrl:/path" lines,
 * the v2 "0::/path" line, or both as on a hybrid host) into c->cgroup,
 * runtime, container_id, pod_uid and unit; other fields are untouched.
 * Each line's path is classified (container > pod > systemd service >
 * host); the best class wins, ties going to the v2 line, then name=systemd,
 * then the other v1 lines in file order.
 *
 * Recognised components (the outermost match in a path decides):
 *   docker-<64hex>.scope, docker/<64hex>           docker
 *   libpod-<64hex>[.scope]                         podman (libpod-conmon-* is not)
 *   cri-containerd-<64hex>.scope                   containerd
 *   crio-<64hex>.scope                             cri-o (crio-conmon-* is not)
 *   *kubepods*-pod<uid>.slice, kubepods/.../pod<uid> pod uid; a bare <64hex>
 *                                                  below it is the container
 *                                                  (runtime kubepods)
 *   <name>.service                                 systemd (unit = name.service)
 * Returns 0, or -EINVAL when text holds no well-formed line.
 */
int identity_parse_cgroup(const char *text, struct caller *c);

/*
 * What the kernel must confirm before a cgroup path is believed (see
 * identity_verify). cgroup_root: for tests, the directory holding every
 * hierarchy's tree (NULL: the mounts of /proc/self/mountinfo).
 */
struct identity_trust {
	bool		 rootless;	/* runtime.rootless */
	const char	*cgroup_root;
};

/*
 * Check c (as identity_parse_cgroup left it, pid filled) against the
 * kernel, and downgrade what does not hold:
 * - a container component is believed only if its cgroup directory and
 *   every ancestor up to the hierarchy's root are owned by root, writable
 *   by no group or other, carry no "user.delegate" or "trusted.delegate"
 *   xattr, and no "user@<uid>.service" lies above it. Otherwise, with
 *   t->rootless and a single non-root owner of the subtree, it is believed
 *   with rootless and cgroup_owner set; else container_id and pod_uid are
 *   cleared, runtime becomes systemd (below a user@ unit, with that unit)
 *   or unknown, and refused says why.
 * - a process the path calls host or systemd is one only if it has one
 *   pid in NSpid (the daemon's pid namespace, the host's), the first
 *   mount of its mountinfo is pid 1's (the same mount namespace), and its
 *   cgroup is "/" or below init.scope, system.slice or user.slice;
 *   otherwise its runtime becomes unknown.
 * proc_root: as identity_read(); under a proc root other than /proc the
 * namespace checks read its <pid>/status and <pid>/mountinfo and
 * 1/mountinfo, and the cgroup checks need t->cgroup_root (skipped
 * without). Returns 0; -ENOMEM. A file that cannot be read refuses.
 */
int identity_verify(const char *proc_root, const struct identity_trust *t,
    struct caller *c);

/*
 * With the Engine API: is c (a believed container whose engine fields are
 * filled) in the container its cgroup names? The container's State.Pid
 * (c->container_pid) must have as many pids on its NSpid line as the
 * caller (the same depth of pid namespace: a host process moved into a
 * container's cgroup has one) and a cgroup naming the same container by
 * the same path. Without ptrace access the two namespaces' identities
 * cannot be compared, only their depth. Refuses c (as identity_verify)
 * when not; returns 0. When that process is gone: with last, refused;
 * else -ESTALE, c untouched, so that the caller can ask the engine again.
 * -ENOMEM.
 */
int identity_verify_engine(const char *proc_root, struct caller *c,
    bool last);

/*
 * Pure helpers of identity_verify, for the unit tests: the number of pids
 * on the "NSpid:" line of a /proc/<pid>/status text (0 if none); the first
 * field of the first line of a mountinfo text (-1 if none); whether a
 * cgroup path is a host one (see above).
 */
int identity_parse_nspid(const char *status, pid_t *last);
long identity_parse_first_mount(const char *mountinfo);
bool identity_host_cgroup(const char *path);

/*
 * Parse the text of /proc/<pid>/stat: comm (between the first '(' and the
 * LAST ')', since comm may hold both) into comm[17], and field 22, the
 * start time in clock ticks since boot. Returns 0 or -EINVAL.
 */
int identity_parse_stat(const char *text, uint64_t *start_time, char comm[17]);

/*
 * Uncached: fill *out from <proc_root>/<pid>/{stat,cgroup} (proc_root NULL
 * means "/proc") and the uid/gid given. The engine fields are left empty.
 * Returns 0; -ESRCH when the process is gone, or was replaced by another
 * with the same pid while it was being read (start time changed between
 * the two stat reads around the cgroup read), or pid <= 0 (the kernel sends
 * pid 0 for a caller outside the broker's pid namespace); -EINVAL for a
 * file that does not parse; other -errno from /proc (-EACCES, -EFBIG).
 */
int identity_read(const char *proc_root, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out);

/* identity_read() and then identity_verify() under t (NULL: the defaults). */
int identity_read_trusted(const char *proc_root, const struct identity_trust *t,
    pid_t pid, uid_t uid, gid_t gid, struct caller *out);

/*
 * A bounded cache of identity_read() keyed by (pid, start_time): a reused
 * pid never inherits the previous process's identity. An entry normally
 * keeps <proc>/<pid>/comm open (a "pin"): that descriptor belongs to the
 * process, not to its number, and reading it fails once the process has
 * exited and been reaped, the only way its pid can be reused. A hit is then
 * one pread() of it, and an entry whose process is gone is dropped. Entries
 * beyond the descriptor budget (at most 256, and an eighth of
 * RLIMIT_NOFILE), and all entries under a proc root set for tests, are not
 * pinned: each lookup re-reads <proc>/<pid>/stat and compares the start
 * time instead. The cgroup file is read only on a miss. comm is always
 * fresh (from the pin or that stat read); uid/gid always come from the
 * arguments.
 *
 * max_entries bounds the cache (least recently used entry evicted first;
 * 0 disables caching). ttl_ms bounds how long a process that moves to
 * another cgroup keeps its old identity (0: no expiry by time).
 * Returns NULL on OOM. All functions below are thread-safe, except that
 * identity_cache_set_proc_root() must be called before the cache is shared.
 */
struct identity_cache;

struct identity_cache *identity_cache_new(size_t max_entries, int64_t ttl_ms);
/* Accepts NULL. */
void identity_cache_free(struct identity_cache *ic);

/* For unit tests: read "<root>/<pid>/..." instead of "/proc/<pid>/...".
 * The string is copied. 0 or -ENOMEM. */
int identity_cache_set_proc_root(struct identity_cache *ic, const char *root);

/* What identity_lookup() verifies under; copied. Before sharing the cache. */
void identity_cache_set_trust(struct identity_cache *ic,
    const struct identity_trust *t);

/* As identity_read_trusted(), through the cache. */
int identity_lookup(struct identity_cache *ic, pid_t pid, uid_t uid, gid_t gid,
    struct caller *out);

/* For tests: the most descriptors the cache may keep open (see above). */
void identity_cache_set_pin_max(struct identity_cache *ic, size_t n);

/*
 * Keep what identity_verify_engine() found (c->refused, and
 * engine_checked) in c's entry, if it still holds the same process, so
 * that a hit does not read /proc again. 0, or -ESRCH when there is no
 * such entry.
 */
int identity_cache_note(struct identity_cache *ic, const struct caller *c);

/* Drop every entry (e.g. on reload). */
void identity_cache_flush(struct identity_cache *ic);

struct identity_cache_stats {
	uint64_t	hits;
	uint64_t	misses;		/* each one read a cgroup file */
	uint64_t	evictions;	/* dropped to stay within max_entries */
	size_t		entries;
	size_t		pinned;		/* entries holding a descriptor */
};
void identity_cache_stats(struct identity_cache *ic,
    struct identity_cache_stats *st);

#endif
