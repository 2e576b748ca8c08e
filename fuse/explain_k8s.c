/*
 * explain_k8s: the kubelet side of `secretsfs explain`. Runs in the CLI
 * (no sandbox).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/engine.h>
#include <secretsfs/kubelet.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

#include "explain_k8s.h"

struct kubelet *
explain_k8s_client(const struct config *cfg)
{
	struct kubelet *k;
	char why[256];

	int r;

	/*
	 * The PodList and the token are received into locked memory; room
	 * for the engine's answers too, as this arena is the process's one.
	 */
	if ((r = secmem_init(2 * KUBELET_BODY_MAX + 2 * ENGINE_BODY_MAX, why,
	    sizeof(why))) < 0 && r != -EALREADY) {
		log_warnx("%s", why);
		return NULL;
	}
	if (kubelet_new(cfg->kubelet, &k, why, sizeof(why)) < 0) {
		log_warnx("runtime.kubelet: %s", why);
		return NULL;
	}
	return k;
}

int
explain_k8s_pod_pid(struct kubelet *k, const char *spec,
    const char *container, pid_t *pid)
{
	char ns[64], uid[64], id[IDENTITY_ID_MAX];
	const char *slash = strchr(spec, '/');
	struct caller c;
	struct dirent *de;
	DIR *d;
	long v;
	char *end;
	int r;

	*pid = 0;
	if (!slash || slash == spec || !slash[1] ||
	    (size_t)(slash - spec) >= sizeof(ns) || strchr(slash + 1, '/')) {
		log_warnx("--pod %s: expected NAMESPACE/NAME", spec);
		return -EINVAL;
	}
	memcpy(ns, spec, (size_t)(slash - spec));
	ns[slash - spec] = '\0';
	if ((r = kubelet_find(k, ns, slash + 1, container, uid, id)) < 0) {
		if (r == -EHOSTUNREACH)
			log_warnx("--pod %s: the kubelet could not be asked",
			    spec);
		else
			log_warnx("--pod %s: the kubelet lists no such pod%s%s "
			    "with a running container", spec,
			    container ? ", container " : "",
			    container ? container : "");
		return r;
	}
	if (!(d = opendir("/proc")))
		return -errno;
	while ((de = readdir(d)) != NULL) {
		errno = 0;
		v = strtol(de->d_name, &end, 10);
		if (errno || *end || v <= 0)
			continue;
		if (identity_read(NULL, (pid_t)v, 0, 0, &c) < 0)
			continue;
		if (strcmp(c.pod_uid, uid) == 0 &&
		    strcmp(c.container_id, id) == 0 &&
		    (*pid == 0 || (pid_t)v < *pid))
			*pid = (pid_t)v;
	}
	closedir(d);
	if (*pid == 0) {
		log_warnx("--pod %s: no process of container %.12s on this "
		    "host", spec, id);
		return -ESRCH;
	}
	return 0;
}

void
explain_k8s_show(struct kubelet *k, struct caller *c)
{
	const struct identity_k8s *p = &c->k8s;
	size_t i;

	kubelet_enrich(k, c);
	switch (p->state) {
	case IDENTITY_K8S_NONE:
		return;
	case IDENTITY_K8S_UNLISTED:
		printf("  k8s pod %s not listed by the kubelet: denied\n",
		    c->pod_uid);
		return;
	case IDENTITY_K8S_UNREACHABLE:
		printf("  k8s pod %s unknown, the kubelet unreachable: "
		    "denied\n", c->pod_uid);
		return;
	case IDENTITY_K8S_KNOWN:
		break;
	}
	printf("  k8s namespace %s, pod %s, service account %s",
	    p->namespace[0] ? p->namespace : "(none)",
	    p->pod[0] ? p->pod : "(none)",
	    p->service_account[0] ? p->service_account : "(none)");
	if (p->container[0])
		printf(", container %s", p->container);
	if (p->image[0])
		printf(", image %s", p->image);
	printf("\n");
	for (i = 0; i < p->n_labels; i++)
		printf("  pod label %s=%s\n", p->labels[i].key,
		    p->labels[i].value);
}
