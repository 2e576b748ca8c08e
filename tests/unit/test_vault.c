/*
 * Unit tests for the Vault backend's parsers and configuration.
 *
 * The example payloads are read at test time from the directory given as
 * argv[1], else $VAULT_EXAMPLES, else ../shared/reference/api-examples/vault
 * (relative to the repository root). The 404 envelope of a deleted or
 * destroyed KV v2 version has no example file; it is written here after
 * backend-api.md A3 (the whole envelope, data.data null).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/backend.h>
#include <secretsfs/config.h>
#include <secretsfs/secmem.h>
#include <secretsfs/vault.h>

#define DEFAULT_EXAMPLES	"../shared/reference/api-examples/vault"

static const char *examples = DEFAULT_EXAMPLES;

static int
setup(void **state)
{
	char why[256];
	void *start;
	size_t len;

	(void)state;
	secmem_arena_range(&start, &len);
	if (!start && secmem_init(4u << 20, why, sizeof(why)) != 0)
		return -1;
	/* Parsed secrets live in the arena, as in the daemon. */
	secmem_install_json_allocator();
	unsetenv("VAULT_ADDR");
	unsetenv("VAULT_NAMESPACE");
	unsetenv("VAULT_CACERT");
	unsetenv("VAULT_CLIENT_CERT");
	unsetenv("VAULT_CLIENT_KEY");
	return 0;
}

/* The whole example file; the caller frees it. */
static uint8_t *
example(const char *name, size_t *len)
{
	char path[1024];
	uint8_t *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", examples, name);
	if (!(f = fopen(path, "rb")))
		fail_msg("cannot open %s (pass the examples directory as "
		    "argv[1])", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	assert_true(n > 0);
	assert_non_null(buf = malloc((size_t)n + 1));
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#define S(x)	((const uint8_t *)(x)), strlen(x)

/* --- KV v2 --------------------------------------------------------------- */

static void
test_kv2_read_example(void **state)
{
	struct backend_value v;
	char why[256] = "";
	uint8_t *body;
	size_t len;

	(void)state;
	body = example("kv-v2-read-secret-version.response.json", &len);
	assert_int_equal(vault_parse_kv2(body, len, &v, why, sizeof(why)), 0);
	assert_int_equal(v.len, strlen("{\"foo\":\"bar\"}"));
	assert_memory_equal(v.data, "{\"foo\":\"bar\"}", v.len);
	assert_true(secmem_owns(v.data));
	assert_string_equal(v.version, "2");
	/* created_time 2018-03-22T02:24:06.945319214Z */
	assert_int_equal(v.changed.tv_sec, 1521685446);
	assert_int_equal(v.changed.tv_nsec, 945319214);
	backend_value_clear(&v);
	assert_null(v.data);
	free(body);
}

static void
test_kv2_field_selection_on_the_value(void **state)
{
	struct backend_value v;
	char why[256];
	uint8_t *body;
	size_t len;

	(void)state;
	body = example("kv-v2-read-secret-version.response.json", &len);
	assert_int_equal(vault_parse_kv2(body, len, &v, why, sizeof(why)), 0);
	assert_int_equal(backend_select_field(&v, "foo", why, sizeof(why)), 0);
	assert_int_equal(v.len, 3);
	assert_memory_equal(v.data, "bar", 3);
	assert_int_equal(backend_select_field(&v, "foo", why, sizeof(why)),
	    -EINVAL);
	backend_value_clear(&v);
	free(body);
}

static const char deleted_404[] =
    "{\"request_id\":\"3f1f7c37-7a0b-4b5e-9e3e-0d6c5a1a2b3c\",\"lease_id\":\"\","
    "\"renewable\":false,\"lease_duration\":0,\"data\":{\"data\":null,"
    "\"metadata\":{\"created_time\":\"2018-03-22T02:24:06.945319214Z\","
    "\"custom_metadata\":null,\"deletion_time\":"
    "\"2018-03-22T02:36:43.986212308Z\",\"destroyed\":false,\"version\":2}},"
    "\"wrap_info\":null,\"warnings\":null,\"auth\":null,\"mount_type\":\"kv\"}";

static const char destroyed_404[] =
    "{\"request_id\":\"3f1f7c37-7a0b-4b5e-9e3e-0d6c5a1a2b3d\",\"lease_id\":\"\","
    "\"renewable\":false,\"lease_duration\":0,\"data\":{\"data\":null,"
    "\"metadata\":{\"created_time\":\"2018-03-22T02:24:06.945319214Z\","
    "\"custom_metadata\":null,\"deletion_time\":\"\",\"destroyed\":true,"
    "\"version\":3}},\"wrap_info\":null,\"warnings\":null,\"auth\":null,"
    "\"mount_type\":\"kv\"}";

/* delete_version_after: a deletion_time in the future, data still there. */
static const char scheduled[] =
    "{\"data\":{\"data\":{\"k\":\"v\"},\"metadata\":{\"created_time\":"
    "\"2018-03-22T02:24:06Z\",\"custom_metadata\":null,\"deletion_time\":"
    "\"2999-01-01T00:00:00Z\",\"destroyed\":false,\"version\":7}}}";

static void
test_kv2_deleted_and_destroyed(void **state)
{
	struct backend_value v;
	char why[256];

	(void)state;
	assert_int_equal(vault_parse_kv2(S(deleted_404), &v, why, sizeof(why)),
	    -ENOENT);
	assert_null(v.data);
	assert_non_null(strstr(why, "version 2"));
	assert_non_null(strstr(why, "deleted"));
	assert_non_null(strstr(why, "2018-03-22T02:36:43.986212308Z"));

	assert_int_equal(vault_parse_kv2(S(destroyed_404), &v, why,
	    sizeof(why)), -ENOENT);
	assert_null(v.data);
	assert_non_null(strstr(why, "version 3 is destroyed"));

	assert_int_equal(vault_parse_kv2(S(scheduled), &v, why, sizeof(why)),
	    0);
	assert_string_equal(v.version, "7");
	assert_memory_equal(v.data, "{\"k\":\"v\"}", v.len);
	assert_int_equal(v.changed.tv_sec, 1521685446);
	assert_int_equal(v.changed.tv_nsec, 0);
	backend_value_clear(&v);
}

static void
test_kv2_not_kv2(void **state)
{
	/* What the fake sends for its "malformed" fault. */
	static const char truncated[] = "{\"request_id\":\"x\",\"lease_id\":\"\","
	    "\"renewable\":false,\"data\":{\"data\":{\"value\":\"tru";
	struct backend_value v;
	char why[256];
	uint8_t *body;
	size_t len;

	(void)state;
	assert_int_equal(vault_parse_kv2(S(truncated), &v, why, sizeof(why)),
	    -EIO);
	assert_null(v.data);
	/* The body is never quoted. */
	assert_null(strstr(why, "tru"));
	assert_int_equal(vault_parse_kv2(S("{\"errors\":[]}"), &v, why,
	    sizeof(why)), -EIO);
	assert_int_equal(vault_parse_kv2(S("[]"), &v, why, sizeof(why)), -EIO);
	assert_int_equal(vault_parse_kv2(NULL, 0, &v, why, sizeof(why)), -EIO);
	assert_int_equal(vault_parse_kv2(S("{\"data\":{\"data\":\"str\","
	    "\"metadata\":{\"version\":1}}}"), &v, why, sizeof(why)), -EIO);
	/* A KV v1 answer is not a v2 one (a mount of the wrong version). */
	body = example("kv-v1-read-secret.response.json", &len);
	assert_int_equal(vault_parse_kv2(body, len, &v, why, sizeof(why)),
	    -EIO);
	free(body);
	/* Nor is the metadata of a secret. */
	body = example("kv-v2-read-secret-metadata.response.json", &len);
	assert_int_equal(vault_parse_kv2(body, len, &v, why, sizeof(why)),
	    -EIO);
	free(body);
}

/* --- KV v1 --------------------------------------------------------------- */

static void
test_kv1_read_example(void **state)
{
	struct backend_value v;
	char why[256];
	uint8_t *body;
	size_t len;

	(void)state;
	body = example("kv-v1-read-secret.response.json", &len);
	assert_int_equal(vault_parse_kv1(body, len, &v, why, sizeof(why)), 0);
	assert_int_equal(v.len, strlen("{\"foo\":\"bar\",\"ttl\":\"1h\"}"));
	assert_memory_equal(v.data, "{\"foo\":\"bar\",\"ttl\":\"1h\"}", v.len);
	assert_true(secmem_owns(v.data));
	/* KV v1 keeps no versions. */
	assert_string_equal(v.version, "");
	assert_int_equal(v.changed.tv_sec, 0);
	backend_value_clear(&v);
	free(body);

	assert_int_equal(vault_parse_kv1(S("{\"data\":null}"), &v, why,
	    sizeof(why)), -EIO);
	assert_int_equal(vault_parse_kv1(S("{\"data\":{\"a\":"), &v, why,
	    sizeof(why)), -EIO);
}

/* --- auth ---------------------------------------------------------------- */

static void
check_auth(const char *file, const char *token, int64_t ttl, bool renewable)
{
	struct vault_auth a;
	char why[256];
	uint8_t *body;
	size_t len;

	body = example(file, &len);
	assert_int_equal(vault_parse_auth(body, len, &a, why, sizeof(why)), 0);
	assert_string_equal(a.token, token);
	assert_true(secmem_owns(a.token));
	assert_int_equal(a.ttl_s, ttl);
	assert_int_equal(a.renewable, renewable);
	vault_auth_clear(&a);
	assert_null(a.token);
	free(body);
}

static void
test_auth_examples(void **state)
{
	(void)state;
	check_auth("auth-cert-login.response.json",
	    "cf95f87d-f95b-47ff-b1f5-ba7bff850425", 3600, true);
	check_auth("auth-approle-login.response.json",
	    "5b1a0318-679c-9c45-e5c6-d1b9a9035d49", 1200, true);
	check_auth("auth-kubernetes-login.response.json",
	    "62b858f9-529c-6b26-e0b8-0457b6aacdb4", 2764800, true);
	check_auth("auth-token-renew-self.response.json", "ABCD", 3600, true);
}

/* A batch token (docs concepts/tokens: hvb., not renewable). */
static void
test_auth_batch_token(void **state)
{
	struct vault_auth a;
	char why[128];
	uint8_t *body;
	size_t len;

	(void)state;
	assert_int_equal(vault_parse_auth(S("{\"auth\":{\"client_token\":"
	    "\"hvb.AAAA\",\"lease_duration\":1200,\"renewable\":false,"
	    "\"token_type\":\"batch\"}}"), &a, why, sizeof(why)), 0);
	assert_true(a.batch);
	assert_false(a.renewable);
	assert_int_equal(a.ttl_s, 1200);
	vault_auth_clear(&a);
	assert_false(a.batch);
	body = example("auth-approle-login.response.json", &len);
	assert_int_equal(vault_parse_auth(body, len, &a, why, sizeof(why)), 0);
	assert_false(a.batch);
	vault_auth_clear(&a);
	free(body);
}

/*
 * sys/internal/ui/mounts/<path> (logical_system.go pathInternalUIMountRead;
 * the fake's answer, tests/fakes/vault_server.py ui_mount, is built after
 * it): the mount holding a path, its type and options.
 */
static void
test_ui_mount(void **state)
{
	char mount[64];
	int ver;

	(void)state;
	assert_int_equal(vault_parse_ui_mount(S("{\"data\":{\"type\":\"kv\","
	    "\"path\":\"secret/\",\"options\":{\"version\":\"2\"}}}"), &ver,
	    mount, sizeof(mount)), 0);
	assert_int_equal(ver, 2);
	assert_string_equal(mount, "secret/");
	assert_int_equal(vault_parse_ui_mount(S("{\"data\":{\"type\":\"kv\","
	    "\"path\":\"team/kv/\",\"options\":{\"version\":\"1\"}}}"), &ver,
	    mount, sizeof(mount)), 0);
	assert_int_equal(ver, 1);
	assert_string_equal(mount, "team/kv/");
	/* A KV v1 mount made without options; the old "generic" type. */
	assert_int_equal(vault_parse_ui_mount(S("{\"data\":{\"type\":\"kv\","
	    "\"path\":\"kv/\",\"options\":null}}"), &ver, mount,
	    sizeof(mount)), 0);
	assert_int_equal(ver, 1);
	assert_int_equal(vault_parse_ui_mount(S("{\"data\":{\"type\":"
	    "\"generic\",\"path\":\"old/\"}}"), &ver, mount, sizeof(mount)),
	    0);
	assert_int_equal(ver, 1);
	/* Not KV: an auth mount, a transit engine, an unknown version. */
	assert_int_equal(vault_parse_ui_mount(S("{\"data\":{\"type\":"
	    "\"approle\",\"path\":\"approle/\",\"options\":null}}"), &ver,
	    mount, sizeof(mount)), -ENOTSUP);
	assert_int_equal(vault_parse_ui_mount(S("{\"data\":{\"type\":\"kv\","
	    "\"path\":\"x/\",\"options\":{\"version\":\"3\"}}}"), &ver,
	    mount, sizeof(mount)), -ENOTSUP);
	/* The 403 of a path in no mount, and garbage. */
	assert_int_equal(vault_parse_ui_mount(S("{\"errors\":[\"preflight "
	    "capability check returned 403, please ensure client's policies "
	    "grant access to path \\\"nope/\\\"\"]}"), &ver, mount,
	    sizeof(mount)), -EIO);
	assert_int_equal(vault_parse_ui_mount(S("nope"), &ver, mount,
	    sizeof(mount)), -EIO);
	assert_int_equal(ver, 0);
}

/* 2/3 of the lease, jittered down by at most a tenth of that. */
static void
test_renew_delay(void **state)
{
	(void)state;
	assert_int_equal(vault_renew_in_ms(0, 7), 0);
	assert_int_equal(vault_renew_in_ms(3600000, 0), 2400000);
	assert_int_equal(vault_renew_in_ms(3600000, 240000), 2160000);
	for (uint32_t r = 0; r < 1000000; r += 997) {
		int64_t in = vault_renew_in_ms(3600000, r * 7919u);

		assert_true(in >= 2160000 && in <= 2400000);
	}
	/* Two brokers started together do not renew together. */
	assert_true(vault_renew_in_ms(3600000, 1) !=
	    vault_renew_in_ms(3600000, 2));
	assert_int_equal(vault_renew_in_ms(300, 5), 250);
}

static void
test_auth_malformed(void **state)
{
	struct vault_auth a;
	char why[256];
	uint8_t *body;
	size_t len;

	(void)state;
	/* "auth": null, as every non-login answer has. */
	body = example("kv-v1-read-secret.response.json", &len);
	assert_int_equal(vault_parse_auth(body, len, &a, why, sizeof(why)),
	    -EIO);
	assert_null(a.token);
	free(body);
	assert_int_equal(vault_parse_auth(S("{\"auth\":{\"client_token\":\"\"}}"),
	    &a, why, sizeof(why)), -EIO);
	assert_int_equal(vault_parse_auth(S("{\"auth\":{\"client_token\":\"t\","
	    "\"lease_duration\":\"1h\"}}"), &a, why, sizeof(why)), -EIO);
	assert_int_equal(vault_parse_auth(S("{\"auth\":{\"client_token\":\"t\","
	    "\"lease_duration\":-5}}"), &a, why, sizeof(why)), -EIO);
	assert_int_equal(vault_parse_auth(S("{\"errors\":[\"invalid role or "
	    "secret ID\"]}"), &a, why, sizeof(why)), -EIO);
	/* A token is never repeated in the message. */
	assert_int_equal(vault_parse_auth(S("{\"auth\":{\"client_token\":"
	    "\"hvs.SECRET\",\"lease_duration\":\"x\"}}"), &a, why, sizeof(why)),
	    -EIO);
	assert_null(strstr(why, "hvs.SECRET"));
	/* No lease: a token that does not expire. */
	assert_int_equal(vault_parse_auth(S("{\"auth\":{\"client_token\":"
	    "\"root\"}}"), &a, why, sizeof(why)), 0);
	assert_int_equal(a.ttl_s, 0);
	assert_false(a.renewable);
	vault_auth_clear(&a);
}

static void
test_lookup_self_example(void **state)
{
	char why[256];
	uint8_t *body;
	bool renewable;
	int64_t ttl;
	size_t len;

	(void)state;
	body = example("auth-token-lookup-self.response.json", &len);
	assert_int_equal(vault_parse_lookup(body, len, &ttl, &renewable, why,
	    sizeof(why)), 0);
	assert_int_equal(ttl, 2764790);
	assert_true(renewable);
	free(body);
	assert_int_equal(vault_parse_lookup(S("{\"data\":{}}"), &ttl,
	    &renewable, why, sizeof(why)), -EIO);
}

/* --- errors and lists ---------------------------------------------------- */

static void
test_errors(void **state)
{
	char msg[64];
	uint8_t *body;
	size_t len;

	(void)state;
	body = example("error-list-empty-404.response.json", &len);
	assert_int_equal(vault_parse_errors(body, len, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	free(body);
	assert_int_equal(vault_parse_errors(S("{\"errors\":[\"permission "
	    "denied\"]}"), msg, sizeof(msg)), 1);
	assert_string_equal(msg, "permission denied");
	assert_int_equal(vault_parse_errors(S("{\"errors\":[\"Vault is sealed\","
	    "\"second\"]}"), msg, sizeof(msg)), 2);
	assert_string_equal(msg, "Vault is sealed");
	/* Vault 1.5's multierror wrapping: no control characters survive. */
	assert_int_equal(vault_parse_errors(S("{\"errors\":[\"1 error "
	    "occurred:\\n\\t* permission denied\\n\\n\"]}"), msg, sizeof(msg)),
	    1);
	assert_string_equal(msg, "1 error occurred: * permission denied");
	/* Truncated to the buffer. */
	assert_int_equal(vault_parse_errors(S("{\"errors\":[\"aaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaa\"]}"), msg, sizeof(msg)), 1);
	assert_int_equal(strlen(msg), sizeof(msg) - 1);
	body = example("kv-v2-read-secret-version.response.json", &len);
	assert_int_equal(vault_parse_errors(body, len, msg, sizeof(msg)), -EIO);
	free(body);
	assert_int_equal(vault_parse_errors(S("not json"), msg, sizeof(msg)),
	    -EIO);
}

/*
 * Vault's refusals, as its sources and docs word them (the fake's bodies,
 * tests/fakes/vault_server.py, cite where each comes from).
 */
static void
test_refusal_classification(void **state)
{
	static const struct {
		long		 status;
		const char	*body;
		bool		 login;
		enum vault_refusal want;
	} cases[] = {
		/* tokens.mdx "Error Responses": a dead token, Vault >= 2024 */
		{ 403, "{\"errors\":[\"permission denied\",\"invalid token\"]}",
		    false, VAULT_REFUSAL_DEAD_TOKEN },
		/* the same as one go-multierror text */
		{ 403, "{\"errors\":[\"2 errors occurred:\\n\\t* permission "
		    "denied\\n\\t* invalid token\\n\\n\"]}", false,
		    VAULT_REFUSAL_DEAD_TOKEN },
		/* a missing capability (ACL, multierror-wrapped) */
		{ 403, "{\"errors\":[\"1 error occurred:\\n\\t* permission "
		    "denied\\n\\n\"]}", false, VAULT_REFUSAL_DENIED },
		/* older Vault and OpenBao: a dead token, or no capability */
		{ 403, "{\"errors\":[\"permission denied\"]}", false,
		    VAULT_REFUSAL_DENIED },
		/* a 403 that is no Vault answer: lookup-self decides */
		{ 403, "<html>Forbidden</html>", false, VAULT_REFUSAL_NONE },
		{ 404, "{\"errors\":[]}", false, VAULT_REFUSAL_NONE },
		{ 503, "{\"errors\":[\"Vault is sealed\"]}", false,
		    VAULT_REFUSAL_NONE },
		/* "invalid token" only counts on a 403 */
		{ 400, "{\"errors\":[\"invalid token\"]}", false,
		    VAULT_REFUSAL_NONE },
		/* user lockout: request_handling.go, ErrPermissionDenied */
		{ 403, "{\"errors\":[\"permission denied\"]}", true,
		    VAULT_REFUSAL_LOCKED_OUT },
		/* approle path_login.go: unknown, expired or used-up secret_id */
		{ 400, "{\"errors\":[\"invalid role or secret ID\"]}", true,
		    VAULT_REFUSAL_CREDENTIALS },
		{ 400, "{\"errors\":[\"invalid certificate or no client "
		    "certificate supplied\"]}", true, VAULT_REFUSAL_CREDENTIALS },
		{ 500, "{\"errors\":[\"internal error\"]}", true,
		    VAULT_REFUSAL_NONE },
		{ 200, "{}", false, VAULT_REFUSAL_NONE },
	};
	uint8_t *body;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (vault_classify_refusal(cases[i].status,
		    (const uint8_t *)cases[i].body, strlen(cases[i].body),
		    cases[i].login) != cases[i].want)
			fail_msg("case %zu: %ld %s", i, cases[i].status,
			    cases[i].body);
	}
	/* Vault's own bodies that are not refusals */
	body = example("error-list-empty-404.response.json", &len);
	assert_int_equal(vault_classify_refusal(403, body, len, false),
	    VAULT_REFUSAL_NONE);
	free(body);
	body = example("auth-token-lookup-self.response.json", &len);
	assert_int_equal(vault_classify_refusal(200, body, len, false),
	    VAULT_REFUSAL_NONE);
	free(body);
	assert_int_equal(vault_classify_refusal(403, NULL, 0, false),
	    VAULT_REFUSAL_NONE);
}

static void
check_list(const char *file)
{
	char why[256], **names;
	uint8_t *body;
	size_t len, n;

	body = example(file, &len);
	assert_int_equal(vault_parse_list(body, len, &names, &n, why,
	    sizeof(why)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "foo");
	assert_string_equal(names[1], "foo/");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(body);
}

static void
test_list_examples(void **state)
{
	char why[256], **names;
	size_t n;

	(void)state;
	check_list("kv-v2-list-secrets.response.json");
	check_list("kv-v1-list-secrets.response.json");
	assert_int_equal(vault_parse_list(S("{\"data\":{\"keys\":[]}}"), &names,
	    &n, why, sizeof(why)), 0);
	assert_int_equal(n, 0);
	free(names);
	assert_int_equal(vault_parse_list(S("{\"errors\":[]}"), &names, &n, why,
	    sizeof(why)), -EIO);
	assert_null(names);
	assert_int_equal(vault_parse_list(S("{\"data\":{\"keys\":[\"a\",7]}}"),
	    &names, &n, why, sizeof(why)), -EIO);
	assert_null(names);
	assert_non_null(strstr(why, "keys[1]"));
	assert_int_equal(vault_parse_list(S("{\"data\":{\"keys\":[\"\"]}}"),
	    &names, &n, why, sizeof(why)), -EIO);
}

/* --- time ---------------------------------------------------------------- */

static void
test_time(void **state)
{
	struct timespec ts;

	(void)state;
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06.945319214Z", &ts),
	    0);
	assert_int_equal(ts.tv_sec, 1521685446);
	assert_int_equal(ts.tv_nsec, 945319214);
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06Z", &ts), 0);
	assert_int_equal(ts.tv_sec, 1521685446);
	assert_int_equal(ts.tv_nsec, 0);
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06.5Z", &ts), 0);
	assert_int_equal(ts.tv_nsec, 500000000);
	/* More digits than nanoseconds: the rest is dropped. */
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06.1234567891Z",
	    &ts), 0);
	assert_int_equal(ts.tv_nsec, 123456789);
	/* lookup-self's expire_time carries an offset. */
	assert_int_equal(vault_parse_time("2018-05-19T11:35:54.466476215-04:00",
	    &ts), 0);
	assert_int_equal(ts.tv_sec, 1526744154);
	assert_int_equal(ts.tv_nsec, 466476215);
	assert_int_equal(vault_parse_time("2018-05-19T17:35:54+02:00", &ts), 0);
	/* 17:35:54+02:00 is 15:35:54Z, the same instant as above. */
	assert_int_equal(ts.tv_sec, 1526744154);
	assert_int_equal(vault_parse_time("", &ts), -EINVAL);
	assert_int_equal(vault_parse_time("2018-03-22", &ts), -EINVAL);
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06", &ts), -EINVAL);
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06.Z", &ts),
	    -EINVAL);
	assert_int_equal(vault_parse_time("2018-03-22T02:24:06Zjunk", &ts),
	    -EINVAL);
	assert_int_equal(vault_parse_time(" 2018-03-22T02:24:06Z", &ts),
	    -EINVAL);
}

/* --- configuration ------------------------------------------------------- */

static int
validate(const char *text, struct cfg_err *err)
{
	json_error_t je;
	json_t *obj = json_loads(text, 0, &je);
	int r;

	if (!obj)
		fail_msg("bad test JSON: %s: %s", text, je.text);
	memset(err, 0, sizeof(*err));
	r = backend_validate("vault", obj, "backends.v", err);
	json_decref(obj);
	return r;
}

#define TLS	"\"tls\":{\"ca_file\":\"/etc/ca.pem\",\"client_cert\":" \
		"\"/etc/c.crt\",\"client_key\":\"/etc/c.key\"}"
#define ADDR	"\"address\":\"https://127.0.0.1:8200\""

static void
test_config_valid(void **state)
{
	static const char *const good[] = {
		"{\"type\":\"vault\"," ADDR "," TLS ",\"auth\":{\"method\":"
		    "\"cert\"}}",
		"{\"type\":\"vault\"," ADDR "," TLS ",\"namespace\":\"ns1/\","
		    "\"kv\":{\"mount\":\"team/kv\",\"version\":1},"
		    "\"http\":{\"timeout\":\"5s\"},"
		    "\"auth\":{\"method\":\"cert\",\"mount\":\"cert2\","
		    "\"name\":\"web\"}}",
		"{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"approle\","
		    "\"role_id_file\":\"/etc/r\",\"secret_id_file\":\"/etc/s\"}}",
		"{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"approle\","
		    "\"mount\":\"ar\",\"role_id_file\":\"/etc/r\"}}",
		"{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":"
		    "\"kubernetes\",\"role\":\"app\"}}",
		"{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":"
		    "\"kubernetes\",\"role\":\"app\",\"jwt_file\":\"/t\"}}",
		"{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/etc/token\"}}",
		"{\"type\":\"vault\",\"address\":\"http://127.0.0.1:8200\","
		    "\"tls\":false,\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/etc/token\"}}",
		"{\"type\":\"vault\"," ADDR ",\"kv\":{\"version\":\"auto\"},"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		"{\"type\":\"vault\",\"addresses\":[\"https://127.0.0.1:8200\","
		    "\"https://127.0.0.2:8200/\"],\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/t\"}}",
		/* auth in a parent namespace, or the root one */
		"{\"type\":\"vault\"," ADDR ",\"namespace\":\"org/team\","
		    "\"auth\":{\"method\":\"approle\",\"namespace\":\"org\","
		    "\"role_id_file\":\"/etc/r\"}}",
		"{\"type\":\"vault\"," ADDR ",\"namespace\":\"org\","
		    "\"auth\":{\"method\":\"token\",\"namespace\":\"\","
		    "\"token_file\":\"/etc/token\"}}",
	};
	struct cfg_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (validate(good[i], &err) != 0)
			fail_msg("%s: %s: %s", good[i], err.path, err.msg);
}

static void
test_config_errors_name_their_path(void **state)
{
	static const struct {
		const char	*text;
		const char	*path;
		const char	*msg;
	} cases[] = {
		{ "{\"type\":\"vault\"," ADDR ",\"bogus\":1,\"auth\":{\"method\":"
		    "\"token\",\"token_file\":\"/t\"}}", "backends.v.bogus",
		    "unknown key" },
		{ "{\"type\":\"vault\",\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/t\"}}", "backends.v", "VAULT_ADDR" },
		{ "{\"type\":\"vault\"," ADDR "}", "backends.v",
		    "\"auth\"" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{}}", "backends.v.auth",
		    "\"method\"" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"ldap\"}}",
		    "backends.v.auth.method", "unknown auth method" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"cert\"}}",
		    "backends.v.auth.method", "client certificate" },
		{ "{\"type\":\"vault\"," ADDR "," TLS ",\"auth\":{\"method\":"
		    "\"cert\",\"role\":\"x\"}}", "backends.v.auth.role",
		    "unknown key" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":"
		    "\"approle\"}}", "backends.v.auth", "role_id_file" },
		{ "{\"type\":\"vault\"," ADDR ",\"addresses\":[\"https://a\"],"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.addresses", "not both" },
		{ "{\"type\":\"vault\",\"addresses\":[],\"auth\":{\"method\":"
		    "\"token\",\"token_file\":\"/t\"}}", "backends.v.addresses",
		    "1 to 8" },
		{ "{\"type\":\"vault\",\"addresses\":[\"https://a\",\"ftp://b\"],"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.addresses", "" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":"
		    "\"approle\",\"role_id_file\":\"/r\",\"namespace\":\"a\\n\"}}",
		    "backends.v.auth.namespace", "control character" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":"
		    "\"approle\",\"role_id_file\":\"/r\",\"namespace\":1}}",
		    "backends.v.auth.namespace", "" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"approle\","
		    "\"role_id_file\":\"role-id\"}}",
		    "backends.v.auth.role_id_file", "absolute" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":"
		    "\"kubernetes\"}}", "backends.v.auth", "\"role\"" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"token\"}}",
		    "backends.v.auth", "token_file" },
		{ "{\"type\":\"vault\"," ADDR ",\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/t\",\"mount\":\"x\"}}",
		    "backends.v.auth.mount", "unknown key" },
		{ "{\"type\":\"vault\"," ADDR ",\"kv\":{\"version\":3},"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.kv.version", "1 or 2" },
		{ "{\"type\":\"vault\"," ADDR ",\"kv\":{\"mount\":\"/secret\"},"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.kv.mount", "mount path" },
		{ "{\"type\":\"vault\"," ADDR ",\"kv\":{\"mount\":\"a/../b\"},"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.kv.mount", "mount path" },
		{ "{\"type\":\"vault\"," ADDR ",\"kv\":{\"path\":\"x\"},"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.kv.path", "unknown key" },
		{ "{\"type\":\"vault\",\"address\":\"http://vault.example:8200\","
		    "\"tls\":false,\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/t\"}}", "backends.v.address", "loopback" },
		{ "{\"type\":\"vault\",\"address\":\"http://127.0.0.1:8200\","
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.address", "http://" },
		{ "{\"type\":\"vault\"," ADDR ",\"tls\":{\"client_key\":"
		    "\"k.pem\"},\"auth\":{\"method\":\"token\","
		    "\"token_file\":\"/t\"}}", "backends.v.tls.client_key",
		    "absolute" },
		{ "{\"type\":\"vault\"," ADDR ",\"http\":{\"timeout\":\"x\"},"
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.http.timeout", "duration" },
		{ "{\"type\":\"vault\"," ADDR ",\"namespace\":\"\","
		    "\"auth\":{\"method\":\"token\",\"token_file\":\"/t\"}}",
		    "backends.v.namespace", "non-empty" },
	};
	struct cfg_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = validate(cases[i].text, &err);

		if (r != -EINVAL || strcmp(err.path, cases[i].path) != 0 ||
		    !strstr(err.msg, cases[i].msg))
			fail_msg("%s: got %d, path \"%s\", msg \"%s\"",
			    cases[i].text, r, err.path, err.msg);
	}
}

static void
test_config_environment_defaults(void **state)
{
	static const char no_addr[] = "{\"type\":\"vault\",\"auth\":"
	    "{\"method\":\"cert\"}}";
	struct cfg_err err;

	(void)state;
	setenv("VAULT_ADDR", "https://vault.example:8200", 1);
	/* cert auth needs a certificate: the environment may give it. */
	assert_int_equal(validate(no_addr, &err), -EINVAL);
	setenv("VAULT_CLIENT_CERT", "/etc/c.crt", 1);
	assert_int_equal(validate(no_addr, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "together"));
	setenv("VAULT_CLIENT_KEY", "/etc/c.key", 1);
	assert_int_equal(validate(no_addr, &err), 0);
	setenv("VAULT_CACERT", "relative/ca.pem", 1);
	assert_int_equal(validate(no_addr, &err), -EINVAL);
	assert_string_equal(err.path, "backends.v.tls");
	assert_non_null(strstr(err.msg, "VAULT_CACERT"));
	setenv("VAULT_CACERT", "/etc/ca.pem", 1);
	assert_int_equal(validate(no_addr, &err), 0);
	/* "tls": false turns the TLS variables off, and the address rule on. */
	assert_int_equal(validate("{\"type\":\"vault\",\"tls\":false,\"auth\":"
	    "{\"method\":\"token\",\"token_file\":\"/t\"}}", &err), -EINVAL);
	assert_string_equal(err.path, "backends.v.address");
	setenv("VAULT_ADDR", "http://127.0.0.1:8200", 1);
	assert_int_equal(validate("{\"type\":\"vault\",\"tls\":false,\"auth\":"
	    "{\"method\":\"token\",\"token_file\":\"/t\"}}", &err), 0);
	assert_int_equal(validate("{\"type\":\"vault\",\"tls\":false,\"auth\":"
	    "{\"method\":\"cert\"}}", &err), -EINVAL);
	/*
	 * $VAULT_NAMESPACE is the namespace when the config has none: a
	 * value unfit for a header is refused under its own name, and the
	 * config's namespace, when given, wins over it.
	 */
	setenv("VAULT_ADDR", "https://vault.example:8200", 1);
	setenv("VAULT_NAMESPACE", "team-a\r\nX-Vault-Token: x", 1);
	assert_int_equal(validate(no_addr, &err), -EINVAL);
	assert_string_equal(err.path, "backends.v.namespace");
	assert_non_null(strstr(err.msg, "$VAULT_NAMESPACE"));
	assert_int_equal(validate("{\"type\":\"vault\",\"namespace\":"
	    "\"team-b\",\"auth\":{\"method\":\"cert\"}}", &err), 0);
	assert_int_equal(validate("{\"type\":\"vault\",\"namespace\":"
	    "\"team\\tb\",\"auth\":{\"method\":\"cert\"}}", &err), -EINVAL);
	assert_string_equal(err.path, "backends.v.namespace");
	assert_non_null(strstr(err.msg, "the namespace"));
	setenv("VAULT_NAMESPACE", "team-a/sub/", 1);
	assert_int_equal(validate(no_addr, &err), 0);
	unsetenv("VAULT_NAMESPACE");
	unsetenv("VAULT_ADDR");
	unsetenv("VAULT_CACERT");
	unsetenv("VAULT_CLIENT_CERT");
	unsetenv("VAULT_CLIENT_KEY");
}

/* --- open ---------------------------------------------------------------- */

static char tmpdir[] = "/tmp/test_vault.XXXXXX";

static void
put(const char *name, mode_t mode, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs("x\n", f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static int
open_with(const char *text, struct backend **b, char *why, size_t len)
{
	struct config_backend cb = { .name = "v", .type = "vault",
	    .path = "backends.v" };
	json_error_t je;
	int r;

	assert_non_null(cb.options = json_loads(text, 0, &je));
	r = backend_open(&cb, b, why, len);
	json_decref(cb.options);
	return r;
}

static void
test_open_refuses_readable_credentials(void **state)
{
	char role[300], secret[300], key[300], cert[300], jwt[300];
	char text[2048], why[512];
	struct backend *b;

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	put("role-id", 0600, role, sizeof(role));
	put("secret-id", 0644, secret, sizeof(secret));
	put("c.crt", 0644, cert, sizeof(cert));
	put("c.key", 0600, key, sizeof(key));
	put("jwt", 0644, jwt, sizeof(jwt));

	snprintf(text, sizeof(text), "{\"type\":\"vault\"," ADDR ",\"auth\":"
	    "{\"method\":\"approle\",\"role_id_file\":\"%s\","
	    "\"secret_id_file\":\"%s\"}}", role, secret);
	assert_int_equal(open_with(text, &b, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, secret));
	assert_int_equal(chmod(secret, 0600), 0);
	assert_int_equal(open_with(text, &b, why, sizeof(why)), 0);
	/* Lazy: opening makes no request and starts no thread. */
	assert_string_equal(backend_type(b), "vault");
	backend_close(b);

	/* A service-account token is 0644 in every pod: accepted. */
	snprintf(text, sizeof(text), "{\"type\":\"vault\"," ADDR ",\"auth\":"
	    "{\"method\":\"kubernetes\",\"role\":\"r\",\"jwt_file\":\"%s\"}}",
	    jwt);
	assert_int_equal(open_with(text, &b, why, sizeof(why)), 0);
	backend_close(b);

	/* The client key goes through the http layer's check. */
	assert_int_equal(chmod(key, 0604), 0);
	snprintf(text, sizeof(text), "{\"type\":\"vault\"," ADDR ",\"tls\":"
	    "{\"client_cert\":\"%s\",\"client_key\":\"%s\"},\"auth\":"
	    "{\"method\":\"cert\"}}", cert, key);
	assert_int_equal(open_with(text, &b, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, key));
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(open_with(text, &b, why, sizeof(why)), 0);
	backend_close(b);

	unlink(role);
	unlink(secret);
	unlink(cert);
	unlink(key);
	unlink(jwt);
	rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv2_read_example),
		cmocka_unit_test(test_kv2_field_selection_on_the_value),
		cmocka_unit_test(test_kv2_deleted_and_destroyed),
		cmocka_unit_test(test_kv2_not_kv2),
		cmocka_unit_test(test_kv1_read_example),
		cmocka_unit_test(test_auth_examples),
		cmocka_unit_test(test_auth_malformed),
		cmocka_unit_test(test_auth_batch_token),
		cmocka_unit_test(test_renew_delay),
		cmocka_unit_test(test_ui_mount),
		cmocka_unit_test(test_lookup_self_example),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_refusal_classification),
		cmocka_unit_test(test_list_examples),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_config_valid),
		cmocka_unit_test(test_config_errors_name_their_path),
		cmocka_unit_test(test_config_environment_defaults),
		cmocka_unit_test(test_open_refuses_readable_credentials),
	};

	if (argc > 1)
		examples = argv[1];
	else if (getenv("VAULT_EXAMPLES"))
		examples = getenv("VAULT_EXAMPLES");
	return cmocka_run_group_tests(tests, setup, NULL);
}
