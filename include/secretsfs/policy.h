/*
 * policy: which caller may read which secret. A pure function of (rules,
 * caller, secret name): no I/O, no clock, no global state. A parsed policy
 * is immutable, so any number of threads may call policy_decide() on it at
 * once.
 *
 * Grammar (the config's "rules" array; all keys are case-sensitive and an
 * unknown key anywhere is an error):
 *
 *   "rules": [ RULE, ... ]             evaluated in order
 *
 *   RULE = {
 *     "id":    STRING,                 optional, default "rules[N]"; unique;
 *                                      "default-deny" is reserved
 *     "match": MATCH,                  required
 *     "allow": [ NAMEGLOB, ... ],      at least one of "allow" and "deny",
 *     "deny":  [ NAMEGLOB, ... ]       each a non-empty list of non-empty
 *   }                                  strings
 *
 *   MATCH = { KEY: VALUE, ... }        at least one key; ALL keys must hold
 *     "any": true                      no key-based restriction, and lifts the
 *                                      container-only default (see Scope)
 *     "host": true                     host processes only
 *     "host": false                    containerised processes only (the
 *                                      default anyway)
 *     "container_id": HEX | [HEX, ...] 12 to 64 hex digits: the id or a prefix
 *     "container_name": GLOBS          Engine API name, no leading '/'
 *     "image": GLOBS                   Engine API Config.Image
 *     "label": { KEY: GLOBS, ... }     non-empty; every KEY (exact) must be
 *                                      present with a value that matches
 *     "runtime": RT | [RT, ...]        "docker" "podman" "containerd" "cri-o"
 *                                      "kubepods" "unknown"; "host" "systemd"
 *                                      (these two need "host": true)
 *     "cgroup": GLOBS                  the caller's cgroup path
 *     "pod_uid": GLOBS                 Kubernetes pod uid, '-' separated
 *     "unit": GLOBS                    systemd unit, e.g. "backup.service"
 *                                      (needs "host": true)
 *     "uid": N | [N, ...]              the FUSE request's uid (0..4294967294)
 *     "gid": N | [N, ...]              the FUSE request's gid
 *     "owner_uid": N | [N, ...]        the owner of the container's cgroup
 *                                      subtree (identity_verify): 0 for a
 *                                      runtime run by root
 *     "k8s": {                         the pod as the kubelet lists it
 *       "namespace": GLOBS,            (runtime.kubelet, kubelet.h); at
 *       "service_account": GLOBS,      least one key, all must hold;
 *       "pod": GLOBS,                  a caller the kubelet does not
 *       "container": GLOBS,            vouch for matches none of them
 *       "label": { KEY: GLOBS, ... }   the pod's labels, as "label"
 *     }
 *
 *   GLOBS = STRING | [STRING, ...]     a non-empty list matches when any
 *                                      element does
 *
 * Scope. A host process is one in no container and no pod (identity runtime
 * "host" or "systemd"). A rule matches a host process ONLY when its match
 * says "host": true or "any": true; every other match applies to
 * containerised callers only. So {"uid": 1000} matches containers running
 * as uid 1000 and never a host process; {"host": true, "uid": 1000} is the
 * host user; {"any": true, "uid": 0} is root anywhere. "any" and "host"
 * cannot be combined. A match that can never hold is an error: container
 * keys (container_id, container_name, image, label, pod_uid, k8s) or a
 * container runtime with "host": true; runtime "host"/"systemd" or "unit"
 * without it.
 *
 * Identities the kernel did not confirm (identity_verify). A caller with
 * `refused` set matches no rule. A rootless caller matches only rules with
 * "owner_uid". A caller of runtime "unknown" matches only rules with
 * "runtime" (which must then name "unknown") or "cgroup".
 *
 * Globs are fnmatch(3) patterns ('*', '?', '[...]', '\' escapes):
 *   secret names (allow, deny) and cgroup: FNM_PATHNAME, '*' and '?' never
 *     match '/': "stripe_*" does not match "stripe_live/key", and
 *     "/system.slice/docker-*.scope" does not match a sub-cgroup the
 *     container made below its own scope (one '*' per path level);
 *   container_name, image, label values, pod_uid, unit: no flags, '*' also
 *     matches '/': "registry.example.com/payments*" covers every repository
 *     below registry.example.com/payments.
 * A caller field that is empty (unknown: no engine, not a container) never
 * matches, not even "*"; a label value may be empty if the label is set.
 *
 * Decision. The FIRST rule whose match holds for the caller and whose deny
 * or allow list matches the secret name decides: deny if a deny glob
 * matches (deny wins inside one rule), else allow. A rule whose match holds
 * but whose lists do not mention the name is passed over. When no rule
 * decides, the answer is deny ("default-deny"). A caller whose k8s state
 * is UNLISTED or UNREACHABLE (identity.h) is denied by default whatever
 * the rules say: the kubelet does not know its pod.
 */
#ifndef SECRETSFS_POLICY_H
#define SECRETSFS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include <secretsfs/cfg.h>
#include <secretsfs/identity.h>

#define POLICY_DEFAULT_DENY_ID	"default-deny"

struct policy;

struct policy_decision {
	bool		 allowed;
	/*
	 * The deciding rule's id, or POLICY_DEFAULT_DENY_ID; never NULL.
	 * Points into the policy (or static storage): valid as long as the
	 * policy is, so copy it if the record outlives a config reload.
	 */
	const char	*rule_id;
	int		 rule_index;	/* 0-based; -1 for the default deny */
};

/*
 * Parse a "rules" array. rules NULL or JSON null: an empty policy (denies
 * everything). path is the array's key path used in error messages (NULL:
 * "rules"); errors name the exact key, e.g. "rules[2].match.label". The
 * JSON is not referenced after return. On success *out is owned by the
 * caller (policy_free). Returns 0; -EINVAL with err filled (err may be
 * NULL); -ENOMEM.
 */
int policy_from_json(const json_t *rules, const char *path,
    struct policy **out, struct cfg_err *err);

/* Accepts NULL. */
void policy_free(struct policy *p);

/* Number of rules; 0 for NULL (a policy that denies everything). */
size_t policy_rule_count(const struct policy *p);

/*
 * The index of the first rule with a "k8s" matcher, or -1: config refuses
 * one without runtime.kubelet.
 */
ssize_t policy_first_k8s_rule(const struct policy *p);

/* The id of rule i, or NULL when out of range. Owned by the policy. */
const char *policy_rule_id(const struct policy *p, size_t i);

/*
 * Rule i's allow (deny false) or deny globs, *n of them; NULL and 0 when
 * out of range or absent. Owned by the policy. For check-config.
 */
const char *const *policy_rule_names(const struct policy *p, size_t i,
    bool deny, size_t *n);

/*
 * Whether rule i matches on container_name, image or label, which only a
 * runtime's Engine API (runtime.socket) can tell.
 */
bool policy_rule_needs_engine(const struct policy *p, size_t i);

/*
 * Decide whether caller c may see secret_name. A NULL policy denies. Always
 * fills *out (a deny unless a rule allows). Returns 0, or -EINVAL (and a
 * deny) when c, secret_name or out is NULL.
 */
int policy_decide(const struct policy *p, const struct caller *c,
    const char *secret_name, struct policy_decision *out);

#endif
