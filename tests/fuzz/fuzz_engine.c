/*
 * libFuzzer harness for the Engine API inspect parser (Docker's and
 * Podman's `GET /containers/<id>/json`): name, image and labels end up in
 * the caller that the access rules match, so nothing may be cut off and a
 * failure must leave them empty.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/engine.h>
#include <secretsfs/identity.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The ids of the seed bodies (tests/unit/test_engine.c). */
static const char *const ids[] = {
	NULL,
	"f2b1c7a3e6d94c8fa0b5e1d27c3a9b4f6e8d0c1a2b3c4d5e6f708192a3b4c5d6",
	"4e7c64d53e2ddc0b8d6ea6da486f8e87d3e29c148e56e64ac049ba30163d78be",
	"9884fa9cb219ecbd12d77d32cbb70d1fc6e1023b7a427e8a71e05a2fafb28565",
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
check(int r, const struct caller *c)
{
	size_t i, j;

	if (r != 0) {
		if (r != -EPROTO || c->container_name[0] != '\0' ||
		    c->image[0] != '\0' || c->n_labels != 0 ||
		    c->labels_truncated)
			abort();
		return;
	}
	if (!terminated(c->container_name, sizeof(c->container_name)) ||
	    !terminated(c->image, sizeof(c->image)) ||
	    c->n_labels > IDENTITY_LABELS_MAX)
		abort();
	for (i = 0; i < c->n_labels; i++) {
		if (!terminated(c->labels[i].key, sizeof(c->labels[i].key)) ||
		    !terminated(c->labels[i].value,
		    sizeof(c->labels[i].value)) ||
		    c->labels[i].key[0] == '\0')
			abort();
		/* Duplicate keys are refused, so each key appears once. */
		for (j = 0; j < i; j++)
			if (strcmp(c->labels[i].key, c->labels[j].key) == 0)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct caller c;
	size_t i;
	int r;

	FUZZ_ARENA_BEGIN();
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		memset(&c, 0, sizeof(c));
		/* Stale values from an earlier answer must go. */
		strcpy(c.container_name, "stale");
		strcpy(c.image, "stale");
		c.n_labels = 1;
		strcpy(c.labels[0].key, "stale");
		c.labels_truncated = true;
		r = engine_parse_inspect((const char *)data, size, ids[i], &c);
		check(r, &c);
		if (r == 0 && strcmp(c.container_name, "stale") == 0 &&
		    memmem(data, size, "stale", 5) == NULL)
			abort();
	}
	FUZZ_ARENA_END();
	return 0;
}
