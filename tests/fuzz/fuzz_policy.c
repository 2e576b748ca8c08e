/*
 * libFuzzer harness for the access rules: policy_from_json() on fuzzed
 * rules, then policy_decide() for a caller and secret names also taken
 * from the input.
 *
 * Input: the "rules" array as JSON, a line "%%", then one directive per
 * line describing the caller and the names to decide:
 *
 *   cg 0::/machine.slice/libpod-<id>.scope    a /proc/<pid>/cgroup line
 *                                             (all cg lines are parsed
 *                                             together, as the file)
 *   uid 1000 | gid 1000 | comm node
 *   name payment-api | image registry/x:1 | label app=payments
 *   runtime podman | id <hex> | pod <uid> | unit backup.service
 *                                             (override what cg gave)
 *   secret db_password                        a name to decide (none: a
 *                                             few usual names)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/config.h>
#include <secretsfs/identity.h>
#include <secretsfs/policy.h>

#include "fuzz.h"

#define NAMES_MAX	16

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

static void
set(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

/* Build the caller from the directives in text (modified in place). */
static size_t
parse_caller(char *text, struct caller *c, const char **names)
{
	char cg[2048] = "", *line, *next, *arg;
	size_t nn = 0, cgl = 0, l;
	enum identity_runtime rt;

	memset(c, 0, sizeof(*c));
	c->pid = 4211;
	c->uid = 1000;
	c->gid = 1000;
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((arg = strchr(line, ' ')) == NULL)
			continue;
		*arg++ = '\0';
		if (strcmp(line, "cg") == 0) {
			l = strlen(arg);
			if (cgl + l + 2 <= sizeof(cg)) {
				memcpy(cg + cgl, arg, l);
				cgl += l;
				cg[cgl++] = '\n';
				cg[cgl] = '\0';
			}
		} else if (strcmp(line, "uid") == 0)
			c->uid = (uid_t)strtoul(arg, NULL, 0);
		else if (strcmp(line, "gid") == 0)
			c->gid = (gid_t)strtoul(arg, NULL, 0);
		else if (strcmp(line, "comm") == 0)
			set(c->comm, sizeof(c->comm), arg);
		else if (strcmp(line, "name") == 0)
			set(c->container_name, sizeof(c->container_name), arg);
		else if (strcmp(line, "image") == 0)
			set(c->image, sizeof(c->image), arg);
		else if (strcmp(line, "label") == 0) {
			char *eq = strchr(arg, '=');

			if (eq == NULL || c->n_labels == IDENTITY_LABELS_MAX)
				continue;
			*eq = '\0';
			set(c->labels[c->n_labels].key,
			    sizeof(c->labels[0].key), arg);
			set(c->labels[c->n_labels].value,
			    sizeof(c->labels[0].value), eq + 1);
			c->n_labels++;
		} else if (strcmp(line, "secret") == 0) {
			if (nn < NAMES_MAX)
				names[nn++] = arg;
		} else if (strcmp(line, "runtime") == 0) {
			if (identity_runtime_from_name(arg, &rt) == 0)
				c->runtime = rt;
		} else if (strcmp(line, "id") == 0)
			set(c->container_id, sizeof(c->container_id), arg);
		else if (strcmp(line, "pod") == 0)
			set(c->pod_uid, sizeof(c->pod_uid), arg);
		else if (strcmp(line, "unit") == 0)
			set(c->unit, sizeof(c->unit), arg);
		/*
		 * The cgroup comes first so that the lines above it can
		 * override what it yields; parse it as soon as it ends.
		 */
		if (cgl > 0 && (next == NULL || strncmp(next, "cg ", 3) != 0)) {
			(void)identity_parse_cgroup(cg, c);
			cgl = 0;
		}
	}
	return nn;
}

static void
decide(const struct policy *p, const struct caller *c, const char *name)
{
	struct policy_decision d, d2;
	size_t nrules = policy_rule_count(p);

	if (policy_decide(p, c, name, &d) != 0 || d.rule_id == NULL)
		abort();
	if (d.rule_index < 0) {
		if (d.allowed || d.rule_index != -1 ||
		    strcmp(d.rule_id, POLICY_DEFAULT_DENY_ID) != 0)
			abort();
	} else if ((size_t)d.rule_index >= nrules ||
	    d.rule_id != policy_rule_id(p, (size_t)d.rule_index))
		abort();
	if (name[0] == '\0' && d.allowed)
		abort();	/* an empty name is never served */
	/* Pure: asked again, the same answer. */
	if (policy_decide(p, c, name, &d2) != 0 || d2.allowed != d.allowed ||
	    d2.rule_index != d.rule_index)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const usual[] = { "db_password", "stripe_key",
	    "report_token", "db/password", "" };
	const char *names[NAMES_MAX];
	struct cfg_err err;
	struct policy *p = NULL;
	struct caller c;
	json_t *rules;
	char *text, *sep, *rest = NULL, empty[1] = "";
	size_t nn, i;
	int r;

	FUZZ_ARENA_BEGIN();
	text = fuzz_strndup(data, size);
	if ((sep = strstr(text, "\n%%\n")) != NULL) {
		*sep = '\0';
		rest = sep + 4;
	}
	rules = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	memset(&err, 0, sizeof(err));
	r = policy_from_json(rules, "rules", &p, &err);
	json_decref(rules);
	if (r != 0) {
		if ((r != -EINVAL && r != -ENOMEM) || p != NULL)
			abort();
		if (r == -EINVAL && (err.path[0] == '\0' ||
		    !memchr(err.path, '\0', sizeof(err.path)) ||
		    !memchr(err.msg, '\0', sizeof(err.msg))))
			abort();
		goto out;
	}
	for (i = 0; i < policy_rule_count(p); i++)
		if (policy_rule_id(p, i) == NULL)
			abort();
	if (policy_rule_id(p, policy_rule_count(p)) != NULL)
		abort();

	nn = parse_caller(rest != NULL ? rest : empty, &c, names);
	if (nn == 0)
		for (i = 0; i < sizeof(usual) / sizeof(usual[0]); i++)
			decide(p, &c, usual[i]);
	for (i = 0; i < nn; i++)
		decide(p, &c, names[i]);
	/* Without any policy, nothing is allowed. */
	{
		struct policy_decision d;

		if (policy_decide(NULL, &c, "db_password", &d) != 0 ||
		    d.allowed)
			abort();
	}
out:
	policy_free(p);
	free(text);
	FUZZ_ARENA_END();
	return 0;
}
