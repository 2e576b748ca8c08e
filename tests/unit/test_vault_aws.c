/*
 * Unit tests for the Vault backend's aws and jwt login methods: the
 * signed GetCallerIdentity request that an aws login hands to Vault, and
 * the configuration of both methods.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/aws.h>
#include <secretsfs/aws_creds.h>
#include <secretsfs/backend.h>
#include <secretsfs/cfg.h>
#include <secretsfs/secmem.h>
#include <secretsfs/sigv4.h>
#include <secretsfs/vault.h>

#define NOW	1700000000	/* 2023-11-14T22:13:20Z */
#define BODY	"Action=GetCallerIdentity&Version=2011-06-15"

static int
setup(void **state)
{
	char why[256];

	(void)state;
	return secmem_init(1u << 20, why, sizeof(why)) == 0 ? 0 : -1;
}

/* A base64 field of o, decoded into a NUL-terminated secmem string. */
static char *
field(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	uint8_t *out;
	size_t len;

	if (!s)
		fail_msg("no \"%s\"", key);
	if (aws_base64_decode(s, strlen(s), &out, &len) != 0)
		fail_msg("\"%s\" is not base64: %s", key, s);
	return (char *)out;
}

static const char *
hdr(const json_t *h, const char *name)
{
	const json_t *l = json_object_get(h, name);

	if (!json_is_array(l) || json_array_size(l) != 1)
		return NULL;
	return json_string_value(json_array_get(l, 0));
}

static void
login_fields(const char *server_id, const char *token, json_t **o,
    json_t **h)
{
	struct sigv4_signer s;
	struct aws_credentials c = { .access_key_id = "AKIDEXAMPLE" };
	char why[256], *hj;
	json_error_t je;

	c.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	c.session_token = (char *)token;
	assert_int_equal(sigv4_signer_init(&s, "us-east-1", "sts"), 0);
	*o = json_object();
	assert_int_equal(vault_aws_login_fields(&s, &c,
	    "https://sts.amazonaws.com/", server_id, NOW, *o, why,
	    sizeof(why)), 0);
	hj = field(*o, "iam_request_headers");
	if (!(*h = json_loads(hj, 0, &je)))
		fail_msg("headers are not JSON: %s", je.text);
	secmem_free(hj);
	sigv4_signer_wipe(&s);
}

/* Sign again what the fields say was sent: the same Authorization. */
static void
resign(const json_t *o, const json_t *h, const char *token)
{
	struct sigv4_signer s;
	struct sigv4_credentials c = { "AKIDEXAMPLE",
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token };
	struct sigv4_header in[2];
	struct sigv4_request req = { 0 };
	struct sigv4_out out;
	char *url = field(o, "iam_request_url"), *body;
	size_t n = 0;

	body = field(o, "iam_request_body");
	assert_string_equal(url, "https://sts.amazonaws.com/");
	assert_string_equal(body, BODY);
	in[n++] = (struct sigv4_header){ "Content-Type",
	    hdr(h, "Content-Type") };
	if (hdr(h, "X-Vault-AWS-IAM-Server-ID"))
		in[n++] = (struct sigv4_header){ "X-Vault-AWS-IAM-Server-ID",
		    hdr(h, "X-Vault-AWS-IAM-Server-ID") };
	req.method = json_string_value(json_object_get(o,
	    "iam_http_request_method"));
	req.path = "/";
	req.headers = in;
	req.nheaders = n;
	req.host = "sts.amazonaws.com";
	req.body = body;
	req.body_len = strlen(body);
	assert_int_equal(sigv4_signer_init(&s, "us-east-1", "sts"), 0);
	assert_int_equal(sigv4_sign(&s, &c, &req, NOW, &out), 0);
	assert_string_equal(out.authorization, hdr(h, "Authorization"));
	assert_string_equal(out.amz_date, hdr(h, "X-Amz-Date"));
	secmem_free(url);
	secmem_free(body);
}

static void
test_aws_login_signed_with_server_id(void **state)
{
	json_t *o, *h;
	const char *authz;
	char *dump;

	(void)state;
	login_fields("vault.example.com", "SESSIONTOKEN", &o, &h);
	assert_string_equal(json_string_value(json_object_get(o,
	    "iam_http_request_method")), "POST");
	assert_string_equal(hdr(h, "Content-Type"),
	    "application/x-www-form-urlencoded; charset=utf-8");
	assert_string_equal(hdr(h, "X-Vault-AWS-IAM-Server-ID"),
	    "vault.example.com");
	assert_string_equal(hdr(h, "X-Amz-Security-Token"), "SESSIONTOKEN");
	assert_string_equal(hdr(h, "X-Amz-Date"), "20231114T221320Z");
	assert_non_null(authz = hdr(h, "Authorization"));
	assert_non_null(strstr(authz, "AWS4-HMAC-SHA256 Credential="
	    "AKIDEXAMPLE/20231114/us-east-1/sts/aws4_request"));
	/* Vault refuses a server id that the signature does not cover. */
	assert_non_null(strstr(authz, "SignedHeaders=content-type;host;"
	    "x-amz-date;x-amz-security-token;x-vault-aws-iam-server-id,"));
	/* Never the secret key, in any field. */
	assert_non_null(dump = json_dumps(h, 0));
	assert_null(strstr(dump, "wJalrXUtnFEMI"));
	free(dump);
	resign(o, h, "SESSIONTOKEN");
	json_decref(o);
	json_decref(h);
}

static void
test_aws_login_signed_without_server_id(void **state)
{
	json_t *o, *h;

	(void)state;
	login_fields(NULL, NULL, &o, &h);
	assert_null(json_object_get(h, "X-Vault-AWS-IAM-Server-ID"));
	assert_null(json_object_get(h, "X-Amz-Security-Token"));
	assert_non_null(strstr(hdr(h, "Authorization"),
	    "SignedHeaders=content-type;host;x-amz-date,"));
	resign(o, h, NULL);
	json_decref(o);
	json_decref(h);
}

static void
test_aws_sts_url(void **state)
{
	char buf[128];

	(void)state;
	vault_aws_sts_url("us-east-1", buf, sizeof(buf));
	assert_string_equal(buf, "https://sts.amazonaws.com/");
	vault_aws_sts_url("eu-west-3", buf, sizeof(buf));
	assert_string_equal(buf, "https://sts.eu-west-3.amazonaws.com/");
	vault_aws_sts_url("cn-north-1", buf, sizeof(buf));
	assert_string_equal(buf, "https://sts.cn-north-1.amazonaws.com.cn/");
}

static void
test_aws_bad_url(void **state)
{
	struct sigv4_signer s;
	struct aws_credentials c = { .access_key_id = "AKIDEXAMPLE" };
	char why[256];
	json_t *o = json_object();

	(void)state;
	c.secret_access_key = "secret";
	assert_int_equal(sigv4_signer_init(&s, "us-east-1", "sts"), 0);
	assert_int_equal(vault_aws_login_fields(&s, &c,
	    "https://sts.amazonaws.com/x?y", NULL, NOW, o, why, sizeof(why)),
	    -EINVAL);
	assert_non_null(strstr(why, "STS URL"));
	assert_null(json_object_get(o, "iam_request_headers"));
	json_decref(o);
}

/* --- configuration ------------------------------------------------------- */

static int
validate(const char *auth, struct cfg_err *err)
{
	char text[1024];
	json_error_t je;
	json_t *obj;
	int r;

	snprintf(text, sizeof(text), "{\"type\":\"vault\",\"address\":"
	    "\"https://127.0.0.1:8200\",\"auth\":%s}", auth);
	if (!(obj = json_loads(text, 0, &je)))
		fail_msg("bad test JSON: %s: %s", text, je.text);
	memset(err, 0, sizeof(*err));
	r = backend_validate("vault", obj, "backends.v", err);
	json_decref(obj);
	return r;
}

static void
test_config_good(void **state)
{
	static const char *const good[] = {
		"{\"method\":\"aws\"}",
		"{\"method\":\"aws\",\"role\":\"r\",\"header_value\":\"v.x\","
		    "\"region\":\"eu-west-1\",\"profile\":\"p\","
		    "\"credentials_file\":\"/c\",\"config_file\":\"/f\","
		    "\"sts_endpoint\":\"http://127.0.0.1:1\","
		    "\"mount\":\"a/b\"}",
		"{\"method\":\"aws\",\"credentials\":{\"access_key_id\":\"A\","
		    "\"secret_access_key\":\"S\"}}",
		"{\"method\":\"jwt\",\"role\":\"r\",\"jwt_file\":\"/t\"}",
		"{\"method\":\"jwt\",\"role\":\"r\",\"jwt_file\":\"/t\","
		    "\"mount\":\"oidc\",\"namespace\":\"\"}",
	};
	struct cfg_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (validate(good[i], &err) != 0)
			fail_msg("%s: %s: %s", good[i], err.path, err.msg);
}

static void
test_config_errors(void **state)
{
	static const struct {
		const char	*auth, *path, *msg;
	} cases[] = {
		{ "{\"method\":\"aws\",\"region\":\"US East\"}",
		    "backends.v.auth.region", "region name" },
		{ "{\"method\":\"aws\",\"header_value\":\"\"}",
		    "backends.v.auth.header_value", "non-empty" },
		{ "{\"method\":\"aws\",\"header_value\":\"a\\nb\"}",
		    "backends.v.auth.header_value", "control" },
		{ "{\"method\":\"aws\",\"credentials_file\":\"rel\"}",
		    "backends.v.auth.credentials_file", "absolute" },
		{ "{\"method\":\"aws\",\"sts_endpoint\":\"ftp://x\"}",
		    "backends.v.auth.sts_endpoint", "http(s) URL" },
		{ "{\"method\":\"aws\",\"credentials\":{\"access_key_id\":"
		    "\"A\"}}", "backends.v.auth.credentials",
		    "secret_access_key" },
		{ "{\"method\":\"aws\",\"jwt_file\":\"/t\"}",
		    "backends.v.auth.jwt_file", "" },
		{ "{\"method\":\"jwt\",\"jwt_file\":\"/t\"}",
		    "backends.v.auth", "\"role\"" },
		{ "{\"method\":\"jwt\",\"role\":\"r\"}",
		    "backends.v.auth", "\"jwt_file\"" },
		{ "{\"method\":\"jwt\",\"role\":\"r\",\"jwt_file\":\"t\"}",
		    "backends.v.auth.jwt_file", "absolute" },
		{ "{\"method\":\"oidc\"}", "backends.v.auth.method",
		    "aws or jwt" },
	};
	struct cfg_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = validate(cases[i].auth, &err);

		if (r != -EINVAL || strcmp(err.path, cases[i].path) != 0 ||
		    !strstr(err.msg, cases[i].msg))
			fail_msg("%s: got %d, path \"%s\", msg \"%s\"",
			    cases[i].auth, r, err.path, err.msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_login_signed_with_server_id),
		cmocka_unit_test(test_aws_login_signed_without_server_id),
		cmocka_unit_test(test_aws_sts_url),
		cmocka_unit_test(test_aws_bad_url),
		cmocka_unit_test(test_config_good),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
