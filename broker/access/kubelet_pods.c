/*
 * kubelet_pods: the kubelet's v1 PodList, parsed into what identifies a
 * caller, and the "runtime.kubelet" configuration. Runs in the FUSE
 * process, the config loaders and `secretsfs explain`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/http.h>
#include <secretsfs/kubelet.h>

#include "kubelet_int.h"

/* ---- configuration ------------------------------------------------------ */

void
kubelet_config_clear(struct kubelet_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->url);
	free(cfg->token_file);
	free(cfg->ca_file);
	memset(cfg, 0, sizeof(*cfg));
}

static int
dup_opt(const char *s, char **out)
{
	if (s == NULL)
		return 0;
	return (*out = strdup(s)) ? 0 : -ENOMEM;
}

int
kubelet_config_from_json(const json_t *obj, const char *path,
    struct kubelet_config *out, struct cfg_err *err)
{
	static const char *const keys[] = { "url", "token_file", "ca_file",
	    "read_only_port", "timeout", "cache_ttl", "min_refresh", NULL };
	const char *url = NULL, *token = NULL, *ca = NULL;
	char kpath[CFG_PATH_MAX];
	int r;

	memset(out, 0, sizeof(*out));
	out->timeout_ms = KUBELET_DEFAULT_TIMEOUT_MS;
	out->ttl_ms = KUBELET_DEFAULT_TTL_MS;
	out->min_refresh_ms = KUBELET_DEFAULT_MIN_REFRESH_MS;
	if (!json_is_object(obj))
		return cfg_err_set(err, path, "expected an object");
	if ((r = cfg_check_keys(obj, path, keys, err)) < 0 ||
	    (r = cfg_get_string(obj, path, "url", CFG_NULL, &url, err)) < 0 ||
	    (r = cfg_get_path(obj, path, "token_file", CFG_NULL, &token,
	    err)) < 0 ||
	    (r = cfg_get_path(obj, path, "ca_file", CFG_NULL, &ca, err)) < 0 ||
	    (r = cfg_get_bool(obj, path, "read_only_port", CFG_NULL,
	    &out->read_only_port, err)) < 0 ||
	    (r = cfg_get_duration(obj, path, "timeout", CFG_NULL | CFG_NONZERO,
	    &out->timeout_ms, err)) < 0 ||
	    (r = cfg_get_duration(obj, path, "cache_ttl", CFG_NULL |
	    CFG_NONZERO, &out->ttl_ms, err)) < 0 ||
	    (r = cfg_get_duration(obj, path, "min_refresh", CFG_NULL,
	    &out->min_refresh_ms, err)) < 0)
		return r;
	if (url) {
		char why[128];

		if (http_check_url(url, !out->read_only_port, why,
		    sizeof(why)) < 0) {
			cfg_path_key(kpath, sizeof(kpath), path, "url");
			return cfg_err_set(err, kpath, "%s", why);
		}
	}
	if (out->read_only_port && (token || ca)) {
		cfg_path_key(kpath, sizeof(kpath), path, "read_only_port");
		return cfg_err_set(err, kpath, "the read-only port takes no "
		    "token and has no TLS: drop token_file and ca_file");
	}
	if ((r = dup_opt(url, &out->url)) < 0 ||
	    (r = dup_opt(token, &out->token_file)) < 0 ||
	    (r = dup_opt(ca, &out->ca_file)) < 0) {
		kubelet_config_clear(out);
		return r;
	}
	return 0;
}

/* ---- parsing ------------------------------------------------------------ */

/* Copy only if the whole string fits: a prefix is not the value. */
static bool
copy_whole(char *dst, size_t size, const json_t *v)
{
	const char *s;
	size_t n;

	dst[0] = '\0';
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	/* "a\u0000b" is not "a". */
	if (n >= size || strlen(s) != n)
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

static bool
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

/* "containerd://<64 hex>" and the others into id and the runtime. */
static bool
parse_container_id(const char *s, char id[IDENTITY_ID_MAX],
    enum identity_runtime *rt)
{
	static const struct {
		const char		*scheme;
		enum identity_runtime	 rt;
	} schemes[] = {
		{ "containerd://", IDENTITY_RUNTIME_CONTAINERD },
		{ "cri-o://", IDENTITY_RUNTIME_CRIO },
		{ "docker://", IDENTITY_RUNTIME_DOCKER },
	};
	size_t i, n;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		n = strlen(schemes[i].scheme);
		if (strncmp(s, schemes[i].scheme, n) != 0)
			continue;
		if (!is_hex64(s + n))
			return false;
		memcpy(id, s + n, IDENTITY_ID_MAX);
		*rt = schemes[i].rt;
		return true;
	}
	return false;
}

static int
parse_statuses(const json_t *list, struct kpod *p)
{
	struct kcontainer *kc;
	const json_t *st;
	size_t i;

	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return -EPROTO;
	json_array_foreach(list, i, st) {
		const json_t *cid;

		if (!json_is_object(st))
			return -EPROTO;
		cid = json_object_get(st, "containerID");
		/* Not started yet, or a runtime we cannot see in a cgroup. */
		if (!json_is_string(cid))
			continue;
		if (p->n_containers == KUBELET_CONTAINERS_MAX)
			break;
		kc = &p->containers[p->n_containers];
		memset(kc, 0, sizeof(*kc));
		if (!parse_container_id(json_string_value(cid), kc->id,
		    &kc->runtime))
			continue;
		copy_whole(kc->name, sizeof(kc->name),
		    json_object_get(st, "name"));
		copy_whole(kc->image, sizeof(kc->image),
		    json_object_get(st, "image"));
		p->n_containers++;
	}
	return 0;
}

static int
parse_labels(const json_t *labels, struct kpod *p)
{
	struct identity_k8s_label *l;
	const char *key;
	json_t *v;

	if (labels == NULL || json_is_null(labels))
		return 0;
	if (!json_is_object(labels))
		return -EPROTO;
	json_object_foreach((json_t *)labels, key, v) {
		if (*key == '\0' || p->n_labels == IDENTITY_K8S_LABELS_MAX ||
		    strlen(key) >= sizeof(l->key)) {
			p->labels_truncated = true;
			continue;
		}
		l = &p->labels[p->n_labels];
		memcpy(l->key, key, strlen(key) + 1);
		if (!copy_whole(l->value, sizeof(l->value), v)) {
			memset(l, 0, sizeof(*l));
			p->labels_truncated = true;
			continue;
		}
		p->n_labels++;
	}
	return 0;
}

static int
parse_pod(const json_t *item, struct kpod *p)
{
	const json_t *meta, *spec, *status;
	int r;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(item))
		return -EPROTO;
	meta = json_object_get(item, "metadata");
	spec = json_object_get(item, "spec");
	status = json_object_get(item, "status");
	if (!json_is_object(meta) || (spec && !json_is_object(spec)) ||
	    (status && !json_is_object(status)))
		return -EPROTO;
	/* No uid, or one that does not fit: no cgroup can name this pod. */
	if (!copy_whole(p->uid, sizeof(p->uid), json_object_get(meta, "uid")) ||
	    p->uid[0] == '\0')
		return 1;
	copy_whole(p->namespace, sizeof(p->namespace),
	    json_object_get(meta, "namespace"));
	copy_whole(p->name, sizeof(p->name), json_object_get(meta, "name"));
	copy_whole(p->service_account, sizeof(p->service_account),
	    json_object_get(spec, "serviceAccountName"));
	if ((p->containers = calloc(KUBELET_CONTAINERS_MAX,
	    sizeof(*p->containers))) == NULL)
		return -ENOMEM;
	if ((r = parse_labels(json_object_get(meta, "labels"), p)) < 0 ||
	    (r = parse_statuses(json_object_get(status,
	    "containerStatuses"), p)) < 0 ||
	    (r = parse_statuses(json_object_get(status,
	    "initContainerStatuses"), p)) < 0 ||
	    (r = parse_statuses(json_object_get(status,
	    "ephemeralContainerStatuses"), p)) < 0)
		return r;
	return 0;
}

void
kubelet_pods_free(struct kubelet_pods *p)
{
	size_t i;

	if (p == NULL)
		return;
	/* The slot past the last pod may hold a half-parsed one. */
	for (i = 0; p->pods && i <= p->n && i < p->cap; i++)
		free(p->pods[i].containers);
	free(p->pods);
	free(p);
}

size_t
kubelet_pods_count(const struct kubelet_pods *p)
{
	return p ? p->n : 0;
}

int
kubelet_parse_pods(const char *body, size_t len, struct kubelet_pods **out)
{
	struct kubelet_pods *p = NULL;
	json_t *root, *items, *item, *kind;
	size_t i, n;
	int r = -EPROTO;

	*out = NULL;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root))
		goto out;
	kind = json_object_get(root, "kind");
	if (kind && (!json_is_string(kind) ||
	    strcmp(json_string_value(kind), "PodList") != 0))
		goto out;
	items = json_object_get(root, "items");
	/* An empty list is "items": null from some kubelets. */
	if (items != NULL && !json_is_array(items) && !json_is_null(items))
		goto out;
	n = json_is_array(items) ? json_array_size(items) : 0;
	if (n > KUBELET_PODS_MAX)
		n = KUBELET_PODS_MAX;
	r = -ENOMEM;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (n > 0 && (p->pods = calloc(n, sizeof(*p->pods))) == NULL))
		goto out;
	p->cap = n;
	for (i = 0; i < n; i++) {
		item = json_array_get(items, i);
		r = parse_pod(item, &p->pods[p->n]);
		if (r < 0)
			goto out;
		if (r == 0)
			p->n++;
		else {
			free(p->pods[p->n].containers);
			p->pods[p->n].containers = NULL;
		}
	}
	r = 0;
	*out = p;
	p = NULL;
out:
	json_decref(root);
	kubelet_pods_free(p);
	return r;
}

/* ---- lookups ------------------------------------------------------------ */

const struct kpod *
kubelet_pods_get(const struct kubelet_pods *p, const char *uid)
{
	size_t i;

	if (p == NULL || *uid == '\0')
		return NULL;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->pods[i].uid, uid) == 0)
			return &p->pods[i];
	return NULL;
}

/*
 * The cgroup's runtime must be the one the kubelet names: a cri-o id under
 * a containerd scope is not that container. "kubepods" (cgroupfs driver,
 * a bare id) does not say which runtime made it.
 */
static bool
runtime_agrees(enum identity_runtime cg, enum identity_runtime kl)
{
	return cg == IDENTITY_RUNTIME_KUBEPODS || cg == kl;
}

const struct kcontainer *
kubelet_pod_container(const struct kpod *p, const struct caller *c)
{
	size_t i;

	for (i = 0; i < p->n_containers; i++)
		if (strcmp(p->containers[i].id, c->container_id) == 0)
			return runtime_agrees(c->runtime,
			    p->containers[i].runtime) ? &p->containers[i] :
			    NULL;
	return NULL;
}

void
kubelet_fill(const struct kpod *p, const struct kcontainer *kc,
    struct caller *c)
{
	struct identity_k8s *k = &c->k8s;

	memset(k, 0, sizeof(*k));
	k->state = IDENTITY_K8S_KNOWN;
	memcpy(k->namespace, p->namespace, sizeof(k->namespace));
	memcpy(k->pod, p->name, sizeof(k->pod));
	memcpy(k->service_account, p->service_account,
	    sizeof(k->service_account));
	memcpy(k->labels, p->labels, sizeof(k->labels));
	k->n_labels = p->n_labels;
	k->labels_truncated = p->labels_truncated;
	if (kc) {
		memcpy(k->container, kc->name, sizeof(k->container));
		memcpy(k->image, kc->image, sizeof(k->image));
	}
}

/* KNOWN, or UNLISTED; NONE for a caller in no pod. */
enum identity_k8s_state
kubelet_lookup(const struct kubelet_pods *pods, struct caller *c)
{
	const struct kcontainer *kc = NULL;
	const struct kpod *p;

	if (c->pod_uid[0] == '\0')
		return IDENTITY_K8S_NONE;
	if ((p = kubelet_pods_get(pods, c->pod_uid)) == NULL)
		return IDENTITY_K8S_UNLISTED;
	if (c->container_id[0] != '\0' &&
	    (kc = kubelet_pod_container(p, c)) == NULL)
		return IDENTITY_K8S_UNLISTED;
	kubelet_fill(p, kc, c);
	return IDENTITY_K8S_KNOWN;
}

void
kubelet_pods_resolve(const struct kubelet_pods *p, struct caller *c)
{
	enum identity_k8s_state st;

	if (c->pod_uid[0] == '\0')
		return;
	if ((st = kubelet_lookup(p, c)) != IDENTITY_K8S_KNOWN) {
		memset(&c->k8s, 0, sizeof(c->k8s));
		c->k8s.state = st;
	}
}

int
kubelet_pods_find(const struct kubelet_pods *p, const char *ns,
    const char *name, const char *container, char pod_uid[64],
    char container_id[IDENTITY_ID_MAX])
{
	size_t i, j;

	for (i = 0; p && i < p->n; i++) {
		const struct kpod *kp = &p->pods[i];

		if (strcmp(kp->namespace, ns) != 0 ||
		    strcmp(kp->name, name) != 0)
			continue;
		for (j = 0; j < kp->n_containers; j++) {
			if (container && strcmp(kp->containers[j].name,
			    container) != 0)
				continue;
			memcpy(pod_uid, kp->uid, 64);
			memcpy(container_id, kp->containers[j].id,
			    IDENTITY_ID_MAX);
			return 0;
		}
		return -ENOENT;
	}
	return -ENOENT;
}

const char *
kubelet_state_name(enum identity_k8s_state s)
{
	switch (s) {
	case IDENTITY_K8S_KNOWN:
		return "known";
	case IDENTITY_K8S_UNLISTED:
		return "unlisted";
	case IDENTITY_K8S_UNREACHABLE:
		return "unreachable";
	default:
		return NULL;
	}
}
