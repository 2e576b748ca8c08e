/*
 * policy: (rules, caller, secret name) -> allow/deny and the rule that said
 * so. The grammar and the semantics are documented in policy.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/policy.h>

enum scope {
	SCOPE_CONTAINER = 0,	/* the default: containerised callers only */
	SCOPE_HOST,
	SCOPE_ANY,
};

struct strlist {
	size_t	  n;
	char	**v;
};

struct idlist {
	size_t		 n;
	uint32_t	*v;
};

struct label_match {
	char		*key;
	struct strlist	 values;
};

/* "k8s": {...}: the pod as the kubelet lists it (kubelet.h). */
struct k8s_match {
	bool			 set;
	struct strlist		 namespace, service_account, pod, container;
	size_t			 n_labels;
	struct label_match	*labels;
};

struct rule {
	char			*id;
	enum scope		 scope;
	struct strlist		 container_id;	/* lowercase hex prefixes */
	struct strlist		 container_name;
	struct strlist		 image;
	struct strlist		 cgroup;
	struct strlist		 pod_uid;
	struct strlist		 unit;
	uint32_t		 runtimes;	/* bit per identity_runtime; 0: any */
	size_t			 n_labels;
	struct label_match	*labels;
	struct idlist		 uid, gid;
	struct k8s_match	 k8s;
	struct idlist		 owner_uid;	/* a subtree's owner */
	struct strlist		 allow, deny;
};

struct policy {
	size_t		 n;
	struct rule	*rules;
};

/* ---- error paths -------------------------------------------------------- */

/* base[i] when v is a list, base itself for a single value. */
static void
path_item(char *buf, size_t size, const char *base, const json_t *v, size_t i)
{
	if (json_is_array(v))
		cfg_path_index(buf, size, base, i);
	else
		snprintf(buf, size, "%s", base);
}

#define PATH_MAX_LEN	CFG_PATH_MAX

static int
fail(struct cfg_err *err, const char *path, const char *msg)
{
	if (err == NULL)
		return -EINVAL;
	return cfg_err_set(err, path, "%s", msg);
}

/* ---- freeing ------------------------------------------------------------ */

static void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
rule_free(struct rule *r)
{
	size_t i;

	free(r->id);
	strlist_free(&r->container_id);
	strlist_free(&r->container_name);
	strlist_free(&r->image);
	strlist_free(&r->cgroup);
	strlist_free(&r->pod_uid);
	strlist_free(&r->unit);
	for (i = 0; i < r->n_labels; i++) {
		free(r->labels[i].key);
		strlist_free(&r->labels[i].values);
	}
	free(r->labels);
	strlist_free(&r->k8s.namespace);
	strlist_free(&r->k8s.service_account);
	strlist_free(&r->k8s.pod);
	strlist_free(&r->k8s.container);
	for (i = 0; i < r->k8s.n_labels; i++) {
		free(r->k8s.labels[i].key);
		strlist_free(&r->k8s.labels[i].values);
	}
	free(r->k8s.labels);
	free(r->uid.v);
	free(r->gid.v);
	free(r->owner_uid.v);
	strlist_free(&r->allow);
	strlist_free(&r->deny);
}

void
policy_free(struct policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++)
		rule_free(&p->rules[i]);
	free(p->rules);
	free(p);
}

/* ---- parsing ------------------------------------------------------------ */

/* A JSON string with no NUL inside: "db\u0000x" must not become "db". */
static bool
plain_string(const json_t *v)
{
	return json_is_string(v) &&
	    strlen(json_string_value(v)) == json_string_length(v);
}

/*
 * STRING or [STRING, ...] (non-empty list, non-empty strings unless
 * allow_empty) into l. list_only refuses a bare string.
 */
static int
parse_strings(const json_t *v, const char *path, bool list_only,
    bool allow_empty, struct strlist *l, struct cfg_err *err)
{
	char ipath[PATH_MAX_LEN];
	const json_t *item;
	size_t i, n;

	if (json_is_string(v) && !list_only)
		n = 1;
	else if (json_is_array(v))
		n = json_array_size(v);
	else
		return fail(err, path, list_only ?
		    "must be a list of strings" :
		    "must be a string or a list of strings");
	if (n == 0)
		return fail(err, path, "must not be an empty list");
	if ((l->v = calloc(n, sizeof(*l->v))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		item = json_is_array(v) ? json_array_get(v, i) : v;
		path_item(ipath, sizeof(ipath), path, v, i);
		if (!plain_string(item))
			return fail(err, ipath, "must be a string");
		if (!allow_empty && *json_string_value(item) == '\0')
			return fail(err, ipath, "must not be empty");
		if ((l->v[i] = strdup(json_string_value(item))) == NULL)
			return -ENOMEM;
		l->n = i + 1;
	}
	return 0;
}

static int
parse_ids(const json_t *v, const char *path, struct idlist *l,
    struct cfg_err *err)
{
	char ipath[PATH_MAX_LEN];
	const json_t *item;
	json_int_t x;
	size_t i, n;

	if (json_is_integer(v))
		n = 1;
	else if (json_is_array(v))
		n = json_array_size(v);
	else
		return fail(err, path, "must be a number or a list of numbers");
	if (n == 0)
		return fail(err, path, "must not be an empty list");
	if ((l->v = calloc(n, sizeof(*l->v))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		item = json_is_array(v) ? json_array_get(v, i) : v;
		path_item(ipath, sizeof(ipath), path, v, i);
		if (!json_is_integer(item))
			return fail(err, ipath, "must be a whole number");
		x = json_integer_value(item);
		/* (uid_t)-1 means "no change" to the kernel: never a real id. */
		if (x < 0 || x >= (json_int_t)UINT32_MAX)
			return fail(err, ipath,
			    "must be between 0 and 4294967294");
		l->v[i] = (uint32_t)x;
		l->n = i + 1;
	}
	return 0;
}

static int
parse_container_ids(const json_t *v, const char *path, struct strlist *l,
    struct cfg_err *err)
{
	char ipath[PATH_MAX_LEN];
	size_t i, len;
	char *s;
	int r;

	if ((r = parse_strings(v, path, false, false, l, err)) < 0)
		return r;
	for (i = 0; i < l->n; i++) {
		path_item(ipath, sizeof(ipath), path, v, i);
		len = strlen(l->v[i]);
		if (len < 12 || len > 64)
			return fail(err, ipath,
			    "must be 12 to 64 hex digits (an id or its prefix)");
		for (s = l->v[i]; *s; s++) {
			if (!isxdigit((unsigned char)*s))
				return fail(err, ipath,
				    "must be hex digits only (no globs)");
			*s = (char)tolower((unsigned char)*s);
		}
	}
	return 0;
}

static int
parse_runtimes(const json_t *v, const char *path, uint32_t *mask,
    struct cfg_err *err)
{
	char ipath[PATH_MAX_LEN];
	struct strlist l = { 0, NULL };
	enum identity_runtime rt;
	size_t i;
	int r;

	if ((r = parse_strings(v, path, false, false, &l, err)) < 0)
		goto out;
	for (i = 0; i < l.n; i++) {
		if (identity_runtime_from_name(l.v[i], &rt) < 0) {
			path_item(ipath, sizeof(ipath), path, v, i);
			r = fail(err, ipath, "unknown runtime (one of "
			    "docker, podman, containerd, cri-o, kubepods, "
			    "unknown, host, systemd)");
			goto out;
		}
		*mask |= 1u << rt;
	}
out:
	strlist_free(&l);
	return r;
}

static int
parse_label_list(const json_t *v, const char *path, struct label_match **out,
    size_t *count, struct cfg_err *err)
{
	char kpath[PATH_MAX_LEN];
	const char *key;
	json_t *val;
	size_t n;
	int rc;

	if (!json_is_object(v))
		return fail(err, path, "must be an object of label: glob");
	if ((n = json_object_size(v)) == 0)
		return fail(err, path, "must name at least one label");
	if ((*out = calloc(n, sizeof(**out))) == NULL)
		return -ENOMEM;
	json_object_foreach((json_t *)v, key, val) {
		struct label_match *lm = &(*out)[*count];

		cfg_path_key(kpath, sizeof(kpath), path, key);
		if (*key == '\0')
			return fail(err, kpath, "label key must not be empty");
		if ((lm->key = strdup(key)) == NULL)
			return -ENOMEM;
		(*count)++;
		/* A label set to "" is a label: let a glob match it. */
		if ((rc = parse_strings(val, kpath, false, true, &lm->values,
		    err)) < 0)
			return rc;
	}
	return 0;
}

static int
parse_labels(const json_t *v, const char *path, struct rule *r,
    struct cfg_err *err)
{
	return parse_label_list(v, path, &r->labels, &r->n_labels, err);
}

static int
parse_k8s(const json_t *v, const char *path, struct k8s_match *k,
    struct cfg_err *err)
{
	char kpath[PATH_MAX_LEN];
	struct strlist *l;
	const char *key;
	json_t *val;
	int rc;

	if (!json_is_object(v))
		return fail(err, path, "must be an object (namespace, "
		    "service_account, pod, container, label)");
	if (json_object_size(v) == 0)
		return fail(err, path, "must name at least one of namespace, "
		    "service_account, pod, container, label");
	k->set = true;
	json_object_foreach((json_t *)v, key, val) {
		cfg_path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "label") == 0) {
			if ((rc = parse_label_list(val, kpath, &k->labels,
			    &k->n_labels, err)) < 0)
				return rc;
			continue;
		}
		if (strcmp(key, "namespace") == 0)
			l = &k->namespace;
		else if (strcmp(key, "service_account") == 0)
			l = &k->service_account;
		else if (strcmp(key, "pod") == 0)
			l = &k->pod;
		else if (strcmp(key, "container") == 0)
			l = &k->container;
		else
			return fail(err, kpath, "unknown key (namespace, "
			    "service_account, pod, container, label)");
		if ((rc = parse_strings(val, kpath, false, false, l, err)) < 0)
			return rc;
	}
	return 0;
}

#define RT_BIT(x)	(1u << IDENTITY_RUNTIME_##x)
#define RT_HOSTLIKE	(RT_BIT(HOST) | RT_BIT(SYSTEMD))

static int
parse_match(const json_t *m, const char *path, struct rule *r,
    struct cfg_err *err)
{
	char kpath[PATH_MAX_LEN];
	const char *key;
	json_t *v;
	bool any = false, has_host = false, host = false;
	bool container_keys = false;
	int rc;

	if (!json_is_object(m))
		return fail(err, path, "must be an object");
	if (json_object_size(m) == 0)
		return fail(err, path, "empty match would apply to every "
		    "caller; write \"any\": true to mean that");

	json_object_foreach((json_t *)m, key, v) {
		cfg_path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "any") == 0) {
			if (!json_is_true(v))
				return fail(err, kpath, "must be true");
			any = true;
		} else if (strcmp(key, "host") == 0) {
			if (!json_is_boolean(v))
				return fail(err, kpath, "must be true or false");
			has_host = true;
			host = json_is_true(v);
		} else if (strcmp(key, "container_id") == 0) {
			container_keys = true;
			if ((rc = parse_container_ids(v, kpath,
			    &r->container_id, err)) < 0)
				return rc;
		} else if (strcmp(key, "container_name") == 0) {
			container_keys = true;
			if ((rc = parse_strings(v, kpath, false, false,
			    &r->container_name, err)) < 0)
				return rc;
		} else if (strcmp(key, "image") == 0) {
			container_keys = true;
			if ((rc = parse_strings(v, kpath, false, false,
			    &r->image, err)) < 0)
				return rc;
		} else if (strcmp(key, "label") == 0) {
			container_keys = true;
			if ((rc = parse_labels(v, kpath, r, err)) < 0)
				return rc;
		} else if (strcmp(key, "pod_uid") == 0) {
			container_keys = true;
			if ((rc = parse_strings(v, kpath, false, false,
			    &r->pod_uid, err)) < 0)
				return rc;
		} else if (strcmp(key, "k8s") == 0) {
			container_keys = true;
			if ((rc = parse_k8s(v, kpath, &r->k8s, err)) < 0)
				return rc;
		} else if (strcmp(key, "runtime") == 0) {
			if ((rc = parse_runtimes(v, kpath, &r->runtimes,
			    err)) < 0)
				return rc;
		} else if (strcmp(key, "cgroup") == 0) {
			if ((rc = parse_strings(v, kpath, false, false,
			    &r->cgroup, err)) < 0)
				return rc;
		} else if (strcmp(key, "unit") == 0) {
			if ((rc = parse_strings(v, kpath, false, false,
			    &r->unit, err)) < 0)
				return rc;
		} else if (strcmp(key, "uid") == 0) {
			if ((rc = parse_ids(v, kpath, &r->uid, err)) < 0)
				return rc;
		} else if (strcmp(key, "gid") == 0) {
			if ((rc = parse_ids(v, kpath, &r->gid, err)) < 0)
				return rc;
		} else if (strcmp(key, "owner_uid") == 0) {
			container_keys = true;
			if ((rc = parse_ids(v, kpath, &r->owner_uid, err)) < 0)
				return rc;
		} else
			return fail(err, kpath, "unknown key (any, host, "
			    "container_id, container_name, image, label, "
			    "runtime, cgroup, pod_uid, unit, uid, gid, "
			    "owner_uid, k8s)");
	}

	/* Refuse what can never match: it is always a mistake. */
	if (any && has_host) {
		cfg_path_key(kpath, sizeof(kpath), path, "any");
		return fail(err, kpath, "\"any\" and \"host\" exclude each "
		    "other");
	}
	r->scope = any ? SCOPE_ANY : (host ? SCOPE_HOST : SCOPE_CONTAINER);
	if (r->scope == SCOPE_HOST) {
		cfg_path_key(kpath, sizeof(kpath), path, "host");
		if (container_keys)
			return fail(err, kpath, "a host process has no "
			    "container: this match can never hold");
		if (r->runtimes & ~RT_HOSTLIKE)
			return fail(err, kpath, "a host process runs in no "
			    "container runtime: this match can never hold");
	} else if (r->scope == SCOPE_CONTAINER) {
		if (r->runtimes != 0 && (r->runtimes & ~RT_HOSTLIKE) == 0) {
			cfg_path_key(kpath, sizeof(kpath), path, "runtime");
			return fail(err, kpath, "runtime host and systemd "
			    "match host processes: add \"host\": true");
		}
		if (r->unit.n > 0) {
			cfg_path_key(kpath, sizeof(kpath), path, "unit");
			return fail(err, kpath, "a systemd unit is a host "
			    "process: add \"host\": true");
		}
	}
	return 0;
}

static int
parse_rule(const json_t *o, const char *base, const char *path, size_t index,
    struct rule *r, const struct policy *p, struct cfg_err *err)
{
	char kpath[PATH_MAX_LEN], other[PATH_MAX_LEN];
	const json_t *match = NULL;
	const char *key;
	json_t *v;
	size_t i;
	int rc;

	if (!json_is_object(o))
		return fail(err, path, "must be an object");
	json_object_foreach((json_t *)o, key, v) {
		cfg_path_key(kpath, sizeof(kpath), path, key);
		if (strcmp(key, "id") == 0) {
			if (!plain_string(v) || *json_string_value(v) == '\0')
				return fail(err, kpath,
				    "must be a non-empty string");
			if (strcmp(json_string_value(v),
			    POLICY_DEFAULT_DENY_ID) == 0)
				return fail(err, kpath, "\"" POLICY_DEFAULT_DENY_ID
				    "\" is reserved for the default decision");
			if ((r->id = strdup(json_string_value(v))) == NULL)
				return -ENOMEM;
		} else if (strcmp(key, "match") == 0) {
			match = v;
		} else if (strcmp(key, "allow") == 0) {
			if ((rc = parse_strings(v, kpath, true, false,
			    &r->allow, err)) < 0)
				return rc;
		} else if (strcmp(key, "deny") == 0) {
			if ((rc = parse_strings(v, kpath, true, false,
			    &r->deny, err)) < 0)
				return rc;
		} else
			return fail(err, kpath,
			    "unknown key (id, match, allow, deny)");
	}
	if (match == NULL) {
		cfg_path_key(kpath, sizeof(kpath), path, "match");
		return fail(err, kpath, "missing: every rule needs a match "
		    "(\"any\": true for every caller)");
	}
	cfg_path_key(kpath, sizeof(kpath), path, "match");
	if ((rc = parse_match(match, kpath, r, err)) < 0)
		return rc;
	if (r->allow.n == 0 && r->deny.n == 0)
		return fail(err, path, "a rule needs \"allow\" or \"deny\"");
	if (r->id == NULL) {
		snprintf(kpath, sizeof(kpath), "rules[%zu]", index);
		if ((r->id = strdup(kpath)) == NULL)
			return -ENOMEM;
	}
	/* Audit records name rules by id: two rules, one id is ambiguous. */
	for (i = 0; i < p->n; i++) {
		if (strcmp(p->rules[i].id, r->id) == 0) {
			cfg_path_key(kpath, sizeof(kpath), path, "id");
			cfg_path_index(other, sizeof(other), base, i);
			if (err == NULL)
				return -EINVAL;
			return cfg_err_set(err, kpath,
			    "duplicate id (also %s)", other);
		}
	}
	return 0;
}

int
policy_from_json(const json_t *rules, const char *path, struct policy **out,
    struct cfg_err *err)
{
	char rpath[PATH_MAX_LEN];
	struct policy *p;
	size_t i, n;
	int rc;

	*out = NULL;
	if (path == NULL)
		path = "rules";
	if (rules != NULL && !json_is_null(rules) && !json_is_array(rules))
		return fail(err, path, "must be a list of rules");
	n = json_is_array(rules) ? json_array_size(rules) : 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	if (n > 0 && (p->rules = calloc(n, sizeof(*p->rules))) == NULL) {
		free(p);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		cfg_path_index(rpath, sizeof(rpath), path, i);
		rc = parse_rule(json_array_get(rules, i), path, rpath, i,
		    &p->rules[i], p, err);
		if (rc < 0) {
			rule_free(&p->rules[i]);
			policy_free(p);
			return rc;
		}
		p->n = i + 1;
	}
	*out = p;
	return 0;
}

size_t
policy_rule_count(const struct policy *p)
{
	return p ? p->n : 0;
}

ssize_t
policy_first_k8s_rule(const struct policy *p)
{
	size_t i;

	for (i = 0; p && i < p->n; i++)
		if (p->rules[i].k8s.set)
			return (ssize_t)i;
	return -1;
}

const char *
policy_rule_id(const struct policy *p, size_t i)
{
	if (p == NULL || i >= p->n)
		return NULL;
	return p->rules[i].id;
}

const char *const *
policy_rule_names(const struct policy *p, size_t i, bool deny, size_t *n)
{
	const struct strlist *l;

	*n = 0;
	if (p == NULL || i >= p->n)
		return NULL;
	l = deny ? &p->rules[i].deny : &p->rules[i].allow;
	*n = l->n;
	return (const char *const *)l->v;
}

/* The keys whose values only the Engine API gives (identity.h). */
bool
policy_rule_needs_engine(const struct policy *p, size_t i)
{
	const struct rule *r;

	if (p == NULL || i >= p->n)
		return false;
	r = &p->rules[i];
	return r->container_name.n > 0 || r->image.n > 0 || r->n_labels > 0;
}

/* ---- deciding ----------------------------------------------------------- */

static bool
glob_any(const struct strlist *l, const char *s, int flags)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (fnmatch(l->v[i], s, flags) == 0)
			return true;
	return false;
}

/* An absent matcher holds; an unknown (empty) field never matches one. */
static bool
field_ok(const struct strlist *l, const char *field, int flags)
{
	if (l->n == 0)
		return true;
	return *field != '\0' && glob_any(l, field, flags);
}

static bool
ids_ok(const struct idlist *l, uint32_t id)
{
	size_t i;

	if (l->n == 0)
		return true;
	for (i = 0; i < l->n; i++)
		if (l->v[i] == id)
			return true;
	return false;
}

/* The pod's labels, as the kubelet lists them. */
static bool
k8s_labels_ok(const struct k8s_match *k, const struct identity_k8s *ck)
{
	size_t i, j;
	bool found;

	for (i = 0; i < k->n_labels; i++) {
		found = false;
		for (j = 0; j < ck->n_labels && j < IDENTITY_K8S_LABELS_MAX;
		    j++) {
			if (strcmp(ck->labels[j].key, k->labels[i].key) != 0)
				continue;
			found = glob_any(&k->labels[i].values,
			    ck->labels[j].value, 0);
			break;
		}
		if (!found)
			return false;
	}
	return true;
}

static bool
k8s_ok(const struct k8s_match *k, const struct identity_k8s *ck)
{
	if (!k->set)
		return true;
	/* Only what the kubelet vouches for: never a cgroup's claim. */
	if (ck->state != IDENTITY_K8S_KNOWN)
		return false;
	return field_ok(&k->namespace, ck->namespace, 0) &&
	    field_ok(&k->service_account, ck->service_account, 0) &&
	    field_ok(&k->pod, ck->pod, 0) &&
	    field_ok(&k->container, ck->container, 0) &&
	    k8s_labels_ok(k, ck);
}

static bool
labels_ok(const struct rule *r, const struct caller *c)
{
	size_t i, j;
	bool found;

	for (i = 0; i < r->n_labels; i++) {
		found = false;
		for (j = 0; j < c->n_labels && j < IDENTITY_LABELS_MAX; j++) {
			if (strcmp(c->labels[j].key, r->labels[i].key) != 0)
				continue;
			found = glob_any(&r->labels[i].values,
			    c->labels[j].value, 0);
			break;
		}
		if (!found)
			return false;
	}
	return true;
}

static bool
container_id_ok(const struct strlist *l, const char *id)
{
	size_t i;

	if (l->n == 0)
		return true;
	if (*id == '\0')
		return false;
	for (i = 0; i < l->n; i++)
		if (strncmp(id, l->v[i], strlen(l->v[i])) == 0)
			return true;
	return false;
}

static bool
caller_matches(const struct rule *r, const struct caller *c)
{
	bool host = identity_is_host(c);

	/*
	 * A rootless runtime's container is only its owner's word: a rule
	 * must name that owner. An unknown runtime is only what its cgroup
	 * or a rule for "unknown" says it is.
	 */
	if (c->rootless && r->owner_uid.n == 0)
		return false;
	if (c->runtime == IDENTITY_RUNTIME_UNKNOWN && r->runtimes == 0 &&
	    r->cgroup.n == 0)
		return false;
	if (r->owner_uid.n > 0 && !ids_ok(&r->owner_uid,
	    (uint32_t)c->cgroup_owner))
		return false;

	switch (r->scope) {
	case SCOPE_HOST:
		if (!host)
			return false;
		break;
	case SCOPE_CONTAINER:
		if (host)
			return false;
		break;
	case SCOPE_ANY:
		break;
	}
	if (r->runtimes != 0 && ((unsigned)c->runtime >= 32 ||
	    (r->runtimes & (1u << c->runtime)) == 0))
		return false;
	return ids_ok(&r->uid, (uint32_t)c->uid) &&
	    ids_ok(&r->gid, (uint32_t)c->gid) &&
	    container_id_ok(&r->container_id, c->container_id) &&
	    field_ok(&r->container_name, c->container_name, 0) &&
	    field_ok(&r->image, c->image, 0) &&
	    field_ok(&r->pod_uid, c->pod_uid, 0) &&
	    field_ok(&r->unit, c->unit, 0) &&
	    field_ok(&r->cgroup, c->cgroup, FNM_PATHNAME) &&
	    labels_ok(r, c) && k8s_ok(&r->k8s, &c->k8s);
}

int
policy_decide(const struct policy *p, const struct caller *c,
    const char *secret_name, struct policy_decision *out)
{
	const struct rule *r;
	size_t i;

	if (out == NULL)
		return -EINVAL;
	out->allowed = false;
	out->rule_id = POLICY_DEFAULT_DENY_ID;
	out->rule_index = -1;
	if (c == NULL || secret_name == NULL)
		return -EINVAL;
	if (p == NULL || *secret_name == '\0')
		return 0;
	/*
	 * A cgroup that lied about its container gets nothing at all; nor
	 * does a pod the kubelet does not list (or could not be asked
	 * about): a cgroup named like a pod, not a pod.
	 */
	if (c->refused[0] != '\0' || c->k8s.state == IDENTITY_K8S_UNLISTED ||
	    c->k8s.state == IDENTITY_K8S_UNREACHABLE)
		return 0;
	for (i = 0; i < p->n; i++) {
		r = &p->rules[i];
		if (!caller_matches(r, c))
			continue;
		if (glob_any(&r->deny, secret_name, FNM_PATHNAME)) {
			out->rule_id = r->id;
			out->rule_index = (int)i;
			return 0;
		}
		if (glob_any(&r->allow, secret_name, FNM_PATHNAME)) {
			out->allowed = true;
			out->rule_id = r->id;
			out->rule_index = (int)i;
			return 0;
		}
	}
	return 0;
}
