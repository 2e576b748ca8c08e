/*
 * explain_k8s: what `secretsfs explain` asks the kubelet (runtime.kubelet):
 * the process of a pod named NAMESPACE/NAME, and the Kubernetes identity
 * of a caller, as the daemon would see them.
 */
#ifndef SECRETSFS_EXPLAIN_K8S_H
#define SECRETSFS_EXPLAIN_K8S_H

#include <sys/types.h>

#include <secretsfs/config.h>
#include <secretsfs/identity.h>

struct kubelet;

/* A kubelet client for cfg->kubelet, or NULL (logged). */
struct kubelet *explain_k8s_client(const struct config *cfg);

/*
 * The lowest pid on this host in container (NULL: the pod's first one) of
 * pod "NAMESPACE/NAME", as the kubelet lists it. 0, or -errno (logged).
 */
int explain_k8s_pod_pid(struct kubelet *k, const char *spec,
    const char *container, pid_t *pid);

/* c->k8s from the kubelet, and its lines of explain's header. */
void explain_k8s_show(struct kubelet *k, struct caller *c);

#endif
