/*
 * libFuzzer harness for the /proc/<pid>/cgroup and /proc/<pid>/stat
 * parsers, with the guarantees identity.h gives the policy: a container id
 * is 64 lowercase hex digits exactly when the runtime names a container, a
 * cgroup path is never cut off, comm always fits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/identity.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_secmem_init();
	return 0;
}

static bool
hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

static bool
terminated(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

static void
check_caller(const struct caller *c, const char *text)
{
	size_t n;

	if (!terminated(c->cgroup, sizeof(c->cgroup)) ||
	    !terminated(c->container_id, sizeof(c->container_id)) ||
	    !terminated(c->pod_uid, sizeof(c->pod_uid)) ||
	    !terminated(c->unit, sizeof(c->unit)))
		abort();
	/* A path is the whole of one line's path, or empty. */
	n = strlen(c->cgroup);
	if (n > 0 && (c->cgroup[0] != '/' || strstr(text, c->cgroup) == NULL))
		abort();
	switch (c->runtime) {
	case IDENTITY_RUNTIME_DOCKER:
	case IDENTITY_RUNTIME_PODMAN:
	case IDENTITY_RUNTIME_CONTAINERD:
	case IDENTITY_RUNTIME_CRIO:
		if (!hex64(c->container_id) || c->unit[0] != '\0' ||
		    identity_is_host(c))
			abort();
		break;
	case IDENTITY_RUNTIME_KUBEPODS:
		if ((c->container_id[0] != '\0' && !hex64(c->container_id)) ||
		    (c->container_id[0] == '\0' && c->pod_uid[0] == '\0') ||
		    identity_is_host(c))
			abort();
		break;
	case IDENTITY_RUNTIME_HOST:
	case IDENTITY_RUNTIME_SYSTEMD:
		if (c->container_id[0] != '\0' || c->pod_uid[0] != '\0' ||
		    !identity_is_host(c))
			abort();
		if ((c->runtime == IDENTITY_RUNTIME_SYSTEMD) !=
		    (c->unit[0] != '\0'))
			abort();
		break;
	default:
		abort();
	}
	/* pod uids are normalised: lowercase hex and '-'. */
	for (n = 0; c->pod_uid[n]; n++)
		if (!((c->pod_uid[n] >= '0' && c->pod_uid[n] <= '9') ||
		    (c->pod_uid[n] >= 'a' && c->pod_uid[n] <= 'f') ||
		    c->pod_uid[n] == '-'))
			abort();
	if (strcmp(identity_runtime_name(c->runtime), "unknown") == 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct caller c, again;
	uint64_t start;
	char comm[17], *text;

	FUZZ_ARENA_BEGIN();
	text = fuzz_strndup(data, size);

	memset(&c, 0, sizeof(c));
	if (identity_parse_cgroup(text, &c) == 0) {
		check_caller(&c, text);
		/* Pure: the same text gives the same identity. */
		memset(&again, 0xa5, sizeof(again));
		again.uid = c.uid;
		if (identity_parse_cgroup(text, &again) != 0 ||
		    strcmp(again.cgroup, c.cgroup) != 0 ||
		    again.runtime != c.runtime ||
		    strcmp(again.container_id, c.container_id) != 0 ||
		    strcmp(again.pod_uid, c.pod_uid) != 0 ||
		    strcmp(again.unit, c.unit) != 0)
			abort();
	}

	memset(comm, 0x5a, sizeof(comm));
	if (identity_parse_stat(text, &start, comm) == 0 &&
	    !terminated(comm, sizeof(comm)))
		abort();

	free(text);
	FUZZ_ARENA_END();
	return 0;
}
