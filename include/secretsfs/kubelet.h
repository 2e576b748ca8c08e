/*
 * kubelet: a caller's Kubernetes identity (namespace, pod, service account,
 * pod labels, container name and image) from the kubelet's authenticated
 * GET /pods, the way SPIRE's k8s workload attestor does it.
 *
 * The pod uid and container id come from the caller's cgroup (identity.h),
 * which the kernel vouches for; the kubelet maps them to names. The whole
 * PodList is kept as one snapshot, replaced by every successful refresh, so
 * a pod that left the node is dropped with it. A caller whose pod (or
 * container) is not in the snapshot triggers one refresh; concurrent
 * callers wait for that same request (singleflight), and refreshes are at
 * least min_refresh apart. When the kubelet cannot be reached the snapshot
 * is kept: known pods keep their identity (answered from it, the kubelet
 * asked again at most once a second), unknown ones are UNREACHABLE and
 * denied.
 *
 * Authentication: the bearer token in token_file (a projected service
 * account token, re-read at every refresh since the kubelet rotates it),
 * over TLS verified against ca_file. The kubelet authorizes GET /pods as
 * "get" on nodes/proxy (or nodes/pods, with KubeletFineGrainedAuthz). With
 * read_only_port the request goes, without token, to the read-only port
 * (10255, plain HTTP, loopback only), when the cluster still has one.
 *
 * The requests go through the HTTP module (http.h).
 */
#ifndef SECRETSFS_KUBELET_H
#define SECRETSFS_KUBELET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <secretsfs/cfg.h>
#include <secretsfs/identity.h>

#define KUBELET_DEFAULT_PORT		10250
#define KUBELET_DEFAULT_RO_URL		"http://127.0.0.1:10255"
#define KUBELET_DEFAULT_TOKEN_FILE \
	"/var/run/secrets/kubernetes.io/serviceaccount/token"
#define KUBELET_DEFAULT_CA_FILE \
	"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
#define KUBELET_DEFAULT_TIMEOUT_MS	2000
#define KUBELET_DEFAULT_TTL_MS		30000
#define KUBELET_DEFAULT_MIN_REFRESH_MS	200
#define KUBELET_BODY_MAX		(4 * 1024 * 1024)
#define KUBELET_TOKEN_MAX		16384
#define KUBELET_PODS_MAX		1024	/* max-pods is 110 by default */
#define KUBELET_CONTAINERS_MAX		64	/* per pod, all three kinds */

/*
 * "runtime": {"kubelet": {...}}. Keys (others are errors):
 *   url             https://HOST:PORT; default https://$NODE_NAME:10250
 *                   when NODE_NAME is set, else https://127.0.0.1:10250
 *                   (resolved by kubelet_new, not at parse time)
 *   token_file      absolute path; default KUBELET_DEFAULT_TOKEN_FILE
 *   ca_file         absolute path; default KUBELET_DEFAULT_CA_FILE
 *   read_only_port  bool, default false: plain HTTP without a token, to
 *                   http://127.0.0.1:10255 unless url says otherwise
 *   timeout         duration, default 2s: one request, connect included
 *   cache_ttl       duration, default 30s: a snapshot older than this is
 *                   refreshed before it is used
 *   min_refresh     duration, default 200ms: refreshes at most this often
 */
struct kubelet_config {
	char	*url;		/* NULL: the default above */
	char	*token_file;
	char	*ca_file;
	bool	 read_only_port;
	int64_t	 timeout_ms;
	int64_t	 ttl_ms;
	int64_t	 min_refresh_ms;
};

/* 0, or -EINVAL with err naming the key; -ENOMEM. */
int kubelet_config_from_json(const json_t *obj, const char *path,
    struct kubelet_config *out, struct cfg_err *err);
/* Free the strings; NULL is fine. */
void kubelet_config_clear(struct kubelet_config *cfg);

/* ---- the PodList ----------------------------------------------------- */

struct kubelet_pods;

/*
 * Parse a v1 PodList. Pods without a uid are skipped; containers are
 * taken from status.containerStatuses, initContainerStatuses and
 * ephemeralContainerStatuses whose containerID is
 * "containerd://<64 hex>", "cri-o://<64 hex>" or "docker://<64 hex>"; a
 * string that does not fit its field is dropped (the pod or container is
 * then known without that name, and cannot match a rule on it). 0 and
 * *out, or -EPROTO (not a PodList), -ENOMEM.
 */
int kubelet_parse_pods(const char *body, size_t len, struct kubelet_pods **out);
void kubelet_pods_free(struct kubelet_pods *p);
size_t kubelet_pods_count(const struct kubelet_pods *p);

/*
 * c->k8s from the snapshot for c->pod_uid and c->container_id: KNOWN and
 * the fields, or UNLISTED (pod missing; container id given and not one of
 * the pod's, or listed under another runtime than the cgroup's). NONE,
 * untouched fields, for a caller with no pod uid.
 */
void kubelet_pods_resolve(const struct kubelet_pods *p, struct caller *c);

/*
 * The pod uid and the container id of container (NULL: the first
 * container with an id) of pod namespace/name, for explain --pod. 0, or
 * -ENOENT (no such pod or container, or it has no running id).
 */
int kubelet_pods_find(const struct kubelet_pods *p, const char *ns,
    const char *name, const char *container, char pod_uid[64],
    char container_id[IDENTITY_ID_MAX]);

/* ---- the source -------------------------------------------------------- */

struct kubelet;

/* cfg is copied. 0 and *out, or -errno with errbuf saying why. */
int kubelet_new(const struct kubelet_config *cfg, struct kubelet **out,
    char *errbuf, size_t errlen);
/* Accepts NULL. */
void kubelet_free(struct kubelet *k);

/*
 * Fill c->k8s (see identity.h for the states) from the snapshot, after a
 * refresh when it is stale or does not know the caller. Thread-safe.
 * Returns 0 (also, NONE, for a caller in no pod).
 */
int kubelet_enrich(struct kubelet *k, struct caller *c);

/* kubelet_pods_find on a fresh snapshot (refreshing first). */
int kubelet_find(struct kubelet *k, const char *ns, const char *name,
    const char *container, char pod_uid[64],
    char container_id[IDENTITY_ID_MAX]);

struct kubelet_stats {
	uint64_t	requests;	/* GET /pods sent */
	uint64_t	errors;		/* of those, without a PodList back */
	uint64_t	hits;		/* callers answered from the snapshot */
	size_t		pods;		/* in the snapshot */
	long		last_status;	/* HTTP status of the last answer; 0 */
};
void kubelet_stats(struct kubelet *k, struct kubelet_stats *st);

/* "known", "unlisted", "unreachable"; NULL for NONE. Static storage. */
const char *kubelet_state_name(enum identity_k8s_state s);

#endif
