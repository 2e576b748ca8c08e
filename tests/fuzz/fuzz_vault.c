/*
 * libFuzzer harness for the Vault answer parsers: every parser reads every
 * input (a KV v2 or v1 read, a login, a token lookup, an error body, a
 * LIST), then a parsed secret goes through backend_select_field() as a
 * "field" in the config would take it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>
#include <secretsfs/vault.h>

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

/* The first member name of the object v holds, or "" (copied to key). */
static void
first_key(const struct backend_value *v, char *key, size_t len)
{
	json_t *doc = json_loadb((const char *)v->data, v->len, 0, NULL);
	void *it = json_object_iter(doc);

	key[0] = '\0';
	if (it)
		snprintf(key, len, "%s", json_object_iter_key(it));
	json_decref(doc);
}

static void
check_value(int r, struct backend_value *v)
{
	char err[256], key[128];

	if (r != 0) {
		if (v->data != NULL || v->len != 0)
			abort();
		return;
	}
	/* Compact JSON of an object, NUL-terminated, in the arena. */
	if (!secmem_owns(v->data) || v->data[v->len] != '\0' ||
	    v->len < 2 || v->data[0] != '{' || v->data[v->len - 1] != '}')
		abort();
	if (strnlen(v->version, sizeof(v->version)) == sizeof(v->version))
		abort();
	/* The message names the field, which comes from the config: not
	 * checked here, where it comes from the body. */
	first_key(v, key, sizeof(key));
	r = backend_select_field(v, key[0] ? key : "password", err,
	    sizeof(err));
	if ((r == 0 && (!secmem_owns(v->data) || v->data[v->len] != '\0')) ||
	    (r != 0 && r != -ENOENT && r != -EINVAL && r != -ENOMEM))
		abort();
	backend_value_clear(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct backend_value v;
	struct vault_auth a;
	struct timespec ts;
	char err[256], msg[160], **names, *s;
	size_t n, i;
	int64_t ttl;
	bool renewable;
	int r;

	FUZZ_ARENA_BEGIN();

	err[0] = '\0';
	r = vault_parse_kv2(data, size, &v, err, sizeof(err));
	if (r != 0 && r != -ENOENT && r != -EIO && r != -ENOMEM)
		abort();
	if (r != 0)
		fuzz_check_msg(err, sizeof(err));
	check_value(r, &v);

	err[0] = '\0';
	r = vault_parse_kv1(data, size, &v, err, sizeof(err));
	if (r != 0)
		fuzz_check_msg(err, sizeof(err));
	check_value(r, &v);

	err[0] = '\0';
	r = vault_parse_auth(data, size, &a, err, sizeof(err));
	if (r == 0) {
		if (a.token == NULL || !secmem_owns(a.token) ||
		    a.token[0] == '\0' || a.ttl_s < 0)
			abort();
		/* Messages never carry the token. */
		if (strstr(err, a.token) != NULL)
			abort();
	} else {
		fuzz_check_msg(err, sizeof(err));
		if (a.token != NULL)
			abort();
	}
	vault_auth_clear(&a);

	err[0] = '\0';
	r = vault_parse_lookup(data, size, &ttl, &renewable, err, sizeof(err));
	if ((r == 0 && ttl < 0) || (r != 0 && (ttl != 0 || renewable)))
		abort();

	r = vault_parse_errors(data, size, msg, sizeof(msg));
	if (r < 0 && r != -EIO)
		abort();
	fuzz_check_msg(msg, sizeof(msg));

	/* Only a 403 is a token's refusal; only a login's 400 is its own. */
	if (vault_classify_refusal(200, data, size, false) !=
	    VAULT_REFUSAL_NONE ||
	    vault_classify_refusal(400, data, size, false) !=
	    VAULT_REFUSAL_NONE ||
	    vault_classify_refusal(403, data, size, true) ==
	    VAULT_REFUSAL_DEAD_TOKEN)
		abort();

	err[0] = '\0';
	r = vault_parse_list(data, size, &names, &n, err, sizeof(err));
	if (r == 0) {
		for (i = 0; i < n; i++) {
			if (names[i] == NULL || names[i][0] == '\0')
				abort();
			free(names[i]);
		}
		free(names);
	} else if (names != NULL || n != 0)
		abort();

	/* The time parser on its own, as created_time would reach it. */
	if (size < 64) {
		s = fuzz_strndup(data, size);
		if (vault_parse_time(s, &ts) == 0 &&
		    (ts.tv_nsec < 0 || ts.tv_nsec > 999999999))
			abort();
		free(s);
	}

	FUZZ_ARENA_END();
	return 0;
}
