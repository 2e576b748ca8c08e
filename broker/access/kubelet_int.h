/*
 * kubelet_int.h: what kubelet.c and kubelet_pods.c share.
 */
#ifndef SECRETSFS_KUBELET_INT_H
#define SECRETSFS_KUBELET_INT_H

#include <secretsfs/identity.h>
#include <secretsfs/kubelet.h>

struct kcontainer {
	char			 id[IDENTITY_ID_MAX];
	enum identity_runtime	 runtime;	/* from containerID's scheme */
	char			 name[64];
	char			 image[IDENTITY_NAME_MAX];
};

struct kpod {
	char				 uid[64];
	char				 namespace[64];
	char				 name[254];
	char				 service_account[254];
	size_t				 n_labels;
	struct identity_k8s_label	 labels[IDENTITY_K8S_LABELS_MAX];
	bool				 labels_truncated;
	size_t				 n_containers;
	/* KUBELET_CONTAINERS_MAX of them */
	struct kcontainer		*containers;
};

struct kubelet_pods {
	size_t		 n, cap;
	struct kpod	*pods;
};

const struct kpod *kubelet_pods_get(const struct kubelet_pods *p,
    const char *uid);
const struct kcontainer *kubelet_pod_container(const struct kpod *p,
    const struct caller *c);
void kubelet_fill(const struct kpod *p, const struct kcontainer *kc,
    struct caller *c);
enum identity_k8s_state kubelet_lookup(const struct kubelet_pods *pods,
    struct caller *c);

#endif
