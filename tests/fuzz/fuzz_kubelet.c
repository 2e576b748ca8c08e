/*
 * libFuzzer harness for the kubelet's PodList parser (GET /pods): the
 * namespace, pod, service account, labels and container names it yields
 * are what "k8s" rules match, so nothing may be cut off, every string must
 * be terminated, and a caller the list does not hold must come out
 * UNLISTED with its fields empty.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/identity.h>
#include <secretsfs/kubelet.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The pods and containers of the seeds (seeds/kubelet/). */
static const struct {
	const char		*pod, *id;
	enum identity_runtime	 rt;
} callers[] = {
	{ "6f1c3a2e-9b7d-4e21-8a3f-0c5d7e9b1a24",
	  "3f5c0e1d2b4a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0",
	  IDENTITY_RUNTIME_CONTAINERD },
	{ "6f1c3a2e-9b7d-4e21-8a3f-0c5d7e9b1a24", "",
	  IDENTITY_RUNTIME_KUBEPODS },
	{ "a2d4f6b8-1c3e-4a5b-9d7f-2e4c6a8b0d1f",
	  "3333333333333333333333333333333333333333333333333333333333333333",
	  IDENTITY_RUNTIME_CRIO },
	{ "a2d4f6b8-1c3e-4a5b-9d7f-2e4c6a8b0d1f",
	  "3333333333333333333333333333333333333333333333333333333333333333",
	  IDENTITY_RUNTIME_KUBEPODS },
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_secmem_init();
	return 0;
}

static bool
terminated(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static void
check(const struct caller *c)
{
	const struct identity_k8s *k = &c->k8s;
	size_t i, j;

	if (k->state != IDENTITY_K8S_KNOWN) {
		if (k->state != IDENTITY_K8S_UNLISTED || k->namespace[0] ||
		    k->pod[0] || k->service_account[0] || k->container[0] ||
		    k->image[0] || k->n_labels || k->labels_truncated)
			abort();
		return;
	}
	if (!terminated(k->namespace, sizeof(k->namespace)) ||
	    !terminated(k->pod, sizeof(k->pod)) ||
	    !terminated(k->service_account, sizeof(k->service_account)) ||
	    !terminated(k->container, sizeof(k->container)) ||
	    !terminated(k->image, sizeof(k->image)) ||
	    k->n_labels > IDENTITY_K8S_LABELS_MAX)
		abort();
	/* A pod-level caller has no container. */
	if (c->container_id[0] == '\0' && (k->container[0] || k->image[0]))
		abort();
	for (i = 0; i < k->n_labels; i++) {
		if (!terminated(k->labels[i].key, sizeof(k->labels[i].key)) ||
		    !terminated(k->labels[i].value,
		    sizeof(k->labels[i].value)) || k->labels[i].key[0] == '\0')
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(k->labels[i].key, k->labels[j].key) == 0)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kubelet_pods *p = NULL;
	char uid[64], id[IDENTITY_ID_MAX];
	struct caller c;
	size_t i;
	int r;

	FUZZ_ARENA_BEGIN();
	r = kubelet_parse_pods((const char *)data, size, &p);
	if (r < 0) {
		if ((r != -EPROTO && r != -ENOMEM) || p != NULL)
			abort();
	} else {
		if (p == NULL || kubelet_pods_count(p) > KUBELET_PODS_MAX)
			abort();
		for (i = 0; i < sizeof(callers) / sizeof(callers[0]); i++) {
			memset(&c, 0, sizeof(c));
			c.runtime = callers[i].rt;
			strcpy(c.pod_uid, callers[i].pod);
			strcpy(c.container_id, callers[i].id);
			/* Stale values must not survive an UNLISTED answer. */
			strcpy(c.k8s.namespace, "stale");
			c.k8s.n_labels = 3;
			kubelet_pods_resolve(p, &c);
			check(&c);
		}
		if (kubelet_pods_find(p, "payments", "api-7d9f", NULL, uid,
		    id) == 0 && (!terminated(uid, sizeof(uid)) ||
		    strlen(id) != 64))
			abort();
	}
	kubelet_pods_free(p);
	FUZZ_ARENA_END();
	return 0;
}
