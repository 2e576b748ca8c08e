/*
 * Unit tests for the aws backend: GetSecretValue answers (string and
 * binary), error answers and their mapping, base64, ListSecrets pages,
 * config validation, what open/fetch say when nothing answers, and where
 * the region comes from.
 *
 * The AWS example payloads are read at test time from the directory in
 * argv[1], else $AWS_EXAMPLES, else ../shared/reference/api-examples/aws.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <secretsfs/aws.h>
#include <secretsfs/backend.h>
#include <secretsfs/secmem.h>

static const char *examples = "../shared/reference/api-examples/aws";

static char *
slurp(const char *name, size_t *len)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", examples, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open example %s", path);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)st.st_size, f);
	assert_int_equal(*len, (size_t)st.st_size);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* --- GetSecretValue --------------------------------------------------------- */

static void
test_secret_string_example(void **state)
{
	struct backend_value v;
	char err[256] = "";
	size_t len;
	char *doc = slurp("secretsmanager-GetSecretValue.example-output.json",
	    &len);
	static const char want[] =
	    "{\n  \"username\":\"david\",\n  \"password\":\"EXAMPLE-PASSWORD\"\n}\n";

	(void)state;
	assert_int_equal(aws_parse_secret_value(doc, len, &v, err,
	    sizeof(err)), 0);
	/* raw, so backend.c's field selection sees the JSON text */
	assert_int_equal(v.len, strlen(want));
	assert_memory_equal(v.data, want, v.len);
	assert_true(secmem_owns(v.data));
	assert_string_equal(v.version, "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1");
	assert_int_equal(v.changed.tv_sec, 1523477145);
	assert_true(v.changed.tv_nsec > 712000000 && v.changed.tv_nsec < 714000000);

	/* and the generic field selection works on it */
	assert_int_equal(backend_select_field(&v, "password", err,
	    sizeof(err)), 0);
	assert_int_equal(v.len, strlen("EXAMPLE-PASSWORD"));
	assert_memory_equal(v.data, "EXAMPLE-PASSWORD", v.len);
	backend_value_clear(&v);
	free(doc);
}

static void
test_secret_binary(void **state)
{
	static const char doc[] =
	    "{\"ARN\":\"arn:aws:secretsmanager:us-east-1:1:secret:b-abcdef\","
	    "\"Name\":\"b\",\"VersionId\":\"v-1\",\"SecretBinary\":\"AAEC/w==\","
	    "\"VersionStages\":[\"AWSCURRENT\"],\"CreatedDate\":1700000000}";
	static const uint8_t want[] = { 0x00, 0x01, 0x02, 0xff };
	struct backend_value v;
	char err[256];

	(void)state;
	assert_int_equal(aws_parse_secret_value(doc, strlen(doc), &v, err,
	    sizeof(err)), 0);
	assert_int_equal(v.len, 4);
	assert_memory_equal(v.data, want, 4);
	assert_string_equal(v.version, "v-1");
	assert_int_equal(v.changed.tv_sec, 1700000000);
	assert_int_equal(v.changed.tv_nsec, 0);
	backend_value_clear(&v);
}

static void
test_secret_value_malformed(void **state)
{
	static const char *const bad[] = {
		"{\"Name\":\"x\",\"VersionId\":\"v\"}",		/* no value */
		"{\"SecretBinary\":\"not base64!\"}",
		"{\"SecretBinary\":\"QUJD\\nREVG\"}",		/* a line break */
		"{\"SecretString\": \"hunter2\"",		/* truncated */
		"[\"hunter2\"]",
		"",
	};
	struct backend_value v;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (aws_parse_secret_value(bad[i], strlen(bad[i]), &v, err,
		    sizeof(err)) != -EIO)
			fail_msg("case %zu parsed", i);
		assert_null(v.data);
		assert_true(err[0] != '\0');
		/* never the value, nor a piece of the document */
		assert_null(strstr(err, "hunter2"));
		assert_null(strstr(err, "base64!"));
	}
}

static void
test_base64(void **state)
{
	static const struct { const char *in; const char *out; size_t n; } ok[] = {
		{ "", "", 0 },
		{ "YQ==", "a", 1 },
		{ "YWI=", "ab", 2 },
		{ "YWJj", "abc", 3 },
		{ "YWJjZA==", "abcd", 4 },
		{ "AAAA", "\0\0\0", 3 },
		{ "+/+/", "\xfb\xff\xbf", 3 },
	};
	static const char *const bad[] = { "Y", "YQ=", "YQ", "Y===", "=YQ=",
	    "YQ==YQ==", "Y*Q=", "YQ= ", " YQ=", "YW-_", "YQ=a" };
	uint8_t *out;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(aws_base64_decode(ok[i].in, strlen(ok[i].in),
		    &out, &n), 0);
		assert_int_equal(n, ok[i].n);
		assert_memory_equal(out, ok[i].out, n);
		assert_int_equal(out[n], 0);
		assert_true(secmem_owns(out));
		secmem_free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (aws_base64_decode(bad[i], strlen(bad[i]), &out, &n) !=
		    -EINVAL)
			fail_msg("\"%s\" decoded", bad[i]);
		assert_null(out);
	}
}

/* --- errors ----------------------------------------------------------------- */

static void
test_error_type_sanitize(void **state)
{
	static const char *const cases[][2] = {
		{ "FooError", "FooError" },
		{ "aws.protocoltests#FooError:http://internal.amazon.com/coral/"
		    "com.amazon.coral.validate/", "FooError" },
		{ "aws.protocoltests.restjson#FooError", "FooError" },
		{ "FooError:http://internal.amazon.com/coral/x/", "FooError" },
		{ "com.amazon.coral.service#ExpiredTokenException",
		    "ExpiredTokenException" },
		{ " ResourceNotFoundException ", "ResourceNotFoundException" },
		{ "", "" },
	};
	char out[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		aws_error_type_sanitize(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
	}
}

struct error_case {
	long		 status;
	const char	*body;
	const char	*header;
	int		 want;
	const char	*type;
	const char	*errbuf;
};

static void
test_errors(void **state)
{
	static const struct error_case cases[] = {
		{ 400, "{\"__type\":\"ResourceNotFoundException\",\"message\":"
		    "\"Secrets Manager can't find the specified secret.\"}",
		    "ResourceNotFoundException", -ENOENT,
		    "ResourceNotFoundException",
		    "AWS ResourceNotFoundException (request id rid-1): "
		    "Secrets Manager can't find the specified secret." },
		/* the model's casing: Message */
		{ 400, "{\"__type\":\"com.amazonaws.secretsmanager#"
		    "ResourceNotFoundException\",\"Message\":\"gone\"}", NULL,
		    -ENOENT, "ResourceNotFoundException",
		    "AWS ResourceNotFoundException (request id rid-1): gone" },
		/* only the header names the type */
		{ 400, "{\"message\":\"no\"}", "AccessDeniedException:http://"
		    "internal.amazon.com/coral/com.amazonaws.secretsmanager/",
		    -EACCES, "AccessDeniedException",
		    "AWS AccessDeniedException (request id rid-1): no" },
		{ 400, "{\"__type\":\"InvalidSignatureException\",\"message\":"
		    "\"The request signature we calculated does not match\"}",
		    NULL, -EACCES, "InvalidSignatureException", NULL },
		{ 400, "{\"__type\":\"com.amazon.coral.service#"
		    "UnrecognizedClientException\",\"message\":\"The security "
		    "token included in the request is invalid.\"}", NULL,
		    -EACCES, "UnrecognizedClientException", NULL },
		{ 400, "{\"__type\":\"IncompleteSignatureException\"}", NULL,
		    -EACCES, "IncompleteSignatureException",
		    "AWS IncompleteSignatureException (request id rid-1): no "
		    "message" },
		{ 403, "{\"code\":\"SignatureDoesNotMatch\"}", NULL, -EACCES,
		    "SignatureDoesNotMatch", NULL },
		{ 400, "{\"__type\":\"ExpiredTokenException\",\"message\":"
		    "\"The security token included in the request is expired\"}",
		    NULL, AWS_ERR_EXPIRED, "ExpiredTokenException", NULL },
		{ 400, "{\"__type\":\"ThrottlingException\",\"message\":"
		    "\"Rate exceeded\"}", NULL, AWS_ERR_RETRY,
		    "ThrottlingException", NULL },
		{ 500, "{\"__type\":\"InternalServiceError\"}", NULL,
		    AWS_ERR_RETRY, "InternalServiceError", NULL },
		{ 503, "<html>Service Unavailable</html>", NULL, AWS_ERR_RETRY,
		    "HTTP 503", "AWS HTTP 503 (request id rid-1): no message" },
		{ 429, "", NULL, AWS_ERR_RETRY, "HTTP 429", NULL },
		{ 400, "{\"__type\":\"DecryptionFailure\",\"Message\":"
		    "\"Secrets Manager can't decrypt\"}", NULL, -EIO,
		    "DecryptionFailure", NULL },
		{ 400, "{\"__type\":\"InvalidRequestException\",\"message\":"
		    "\"marked for deletion\"}", NULL, -EIO,
		    "InvalidRequestException", NULL },
		/* control bytes in a message do not reach the log */
		{ 400, "{\"__type\":\"X\",\"message\":\"a\\nb\\u001b[31m\"}",
		    NULL, -EIO, "X", "AWS X (request id rid-1): a?b?[31m" },
	};
	char type[128], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct error_case *c = &cases[i];
		int r = aws_parse_error(c->status, c->body, strlen(c->body),
		    c->header, "rid-1", type, sizeof(type), err, sizeof(err));

		if (r != c->want)
			fail_msg("case %zu: %d, want %d (%s)", i, r, c->want, err);
		assert_string_equal(type, c->type);
		if (c->errbuf)
			assert_string_equal(err, c->errbuf);
		else {
			char head[200];

			snprintf(head, sizeof(head), "AWS %s (request id rid-1): ",
			    c->type);
			assert_true(strncmp(err, head, strlen(head)) == 0);
		}
	}
	/* no request id */
	aws_parse_error(400, "{}", 2, "", "", type, sizeof(type), err,
	    sizeof(err));
	assert_string_equal(err, "AWS HTTP 400 (request id -): no message");
}

/* --- ListSecrets ------------------------------------------------------------- */

static void
test_list(void **state)
{
	static const char page[] =
	    "{\"SecretList\":[{\"Name\":\"app/db/password\"},"
	    "{\"Name\":\"app/db/user\"},{\"Name\":\"app/api-key\"},"
	    "{\"Name\":\"app\"},{\"Name\":\"application\"},"
	    "{\"Name\":\"other/x\"}],\"NextToken\":\"tok2\"}";
	char **names = NULL, next[64];
	size_t n = 0, len;
	char *doc = slurp("secretsmanager-ListSecrets.example-output.json",
	    &len);

	(void)state;
	assert_int_equal(aws_parse_list(doc, len, "", &names, &n, next,
	    sizeof(next)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "MyTestDatabaseSecret");
	assert_string_equal(names[1], "MyTestDatabaseSecret1");
	assert_string_equal(next, "");
	free(doc);

	/* the next page adds, deduplicated, only what is under the prefix */
	assert_int_equal(aws_parse_list(page, strlen(page), "", &names, &n,
	    next, sizeof(next)), 0);
	assert_string_equal(next, "tok2");
	assert_int_equal(n, 6);
	assert_string_equal(names[2], "app/");
	assert_string_equal(names[3], "app");
	assert_string_equal(names[4], "application");
	assert_string_equal(names[5], "other/");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	names = NULL;
	n = 0;

	assert_int_equal(aws_parse_list(page, strlen(page), "app/", &names,
	    &n, next, sizeof(next)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "db/");
	assert_string_equal(names[1], "api-key");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);

	names = NULL;
	n = 0;
	assert_int_equal(aws_parse_list("{\"Secrets\":[]}", 14, "", &names, &n,
	    next, sizeof(next)), -EIO);
	assert_int_equal(aws_parse_list(page, strlen(page), "", &names, &n,
	    next, 4), -ENAMETOOLONG);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* --- config and open ----------------------------------------------------------- */

static void
test_validate(void **state)
{
	static const struct { const char *json; const char *path; } bad[] = {
		{ "{\"type\":\"aws\",\"regoin\":\"us-east-1\"}", "b.regoin" },
		{ "{\"type\":\"aws\",\"region\":\"US East\"}", "b.region" },
		{ "{\"type\":\"aws\",\"region\":\"\"}", "b.region" },
		{ "{\"type\":\"aws\",\"endpoint\":\"ftp://x\"}", "b.endpoint" },
		{ "{\"type\":\"aws\",\"endpoint\":\"https://u@x\"}", "b.endpoint" },
		{ "{\"type\":\"aws\",\"sts_endpoint\":7}", "b.sts_endpoint" },
		{ "{\"type\":\"aws\",\"credentials\":\"AKIA\"}", "b.credentials" },
		{ "{\"type\":\"aws\",\"credentials\":{\"access_key_id\":\"A\"}}",
		    "b.credentials" },
		{ "{\"type\":\"aws\",\"credentials\":{\"access_key_id\":\"A\","
		    "\"secret_access_key\":\"s\",\"token\":\"t\"}}",
		    "b.credentials.token" },
		{ "{\"type\":\"aws\",\"version_stage\":\"\"}", "b.version_stage" },
		{ "{\"type\":\"aws\",\"credentials_file\":\"aws/credentials\"}",
		    "b.credentials_file" },
		{ "{\"type\":\"aws\",\"config_file\":\"\"}", "b.config_file" },
		{ "{\"type\":\"aws\",\"tls\":{\"ca\":\"/x\"}}", "b.tls.ca" },
		{ "{\"type\":\"aws\",\"http\":{\"timeout\":\"soon\"}}",
		    "b.http.timeout" },
	};
	static const char good[] =
	    "{\"type\":\"aws\",\"region\":\"eu-west-1\","
	    "\"endpoint\":\"https://127.0.0.1:8443\","
	    "\"tls\":{\"ca_file\":\"/etc/ssl/ca.pem\"},\"http\":{\"timeout\":\"5s\"},"
	    "\"credentials\":{\"access_key_id\":\"AKIA\",\"secret_access_key\":\"s\","
	    "\"session_token\":\"t\"},\"profile\":\"p\","
	    "\"credentials_file\":\"/etc/secretsfs/aws/credentials\","
	    "\"config_file\":\"/etc/secretsfs/aws/config\","
	    "\"sts_endpoint\":\"https://sts.example\","
	    "\"imds_endpoint\":\"http://127.0.0.1:1\","
	    "\"version_stage\":\"AWSPENDING\"}";
	struct cfg_err err;
	json_t *o;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = json_loads(bad[i].json, 0, NULL);
		assert_non_null(o);
		memset(&err, 0, sizeof(err));
		if (backend_validate("aws", o, "b", &err) != -EINVAL)
			fail_msg("case %zu validated", i);
		assert_string_equal(err.path, bad[i].path);
		json_decref(o);
	}
	o = json_loads(good, 0, NULL);
	assert_int_equal(backend_validate("aws", o, "b", &err), 0);
	json_decref(o);
}

static int
open_json(const char *json, struct backend **b, char *err, size_t errlen)
{
	struct config_backend cb = { .name = "aws", .type = "aws",
	    .path = "backends.aws" };
	int r;

	cb.options = json_loads(json, 0, NULL);
	assert_non_null(cb.options);
	r = backend_open(&cb, b, err, errlen);
	json_decref(cb.options);
	return r;
}

static void
test_open_and_fetch_unreachable(void **state)
{
	struct backend_request req = { .ref = "db" };
	struct backend_value v;
	struct backend *b;
	char err[BACKEND_ERR_MAX];

	(void)state;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	assert_int_equal(open_json("{\"type\":\"aws\",\"credentials\":"
	    "{\"access_key_id\":\"AKIA\",\"secret_access_key\":\"s3cr3t\"}}",
	    &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "region"));

	setenv("AWS_REGION", "us-east-1", 1);
	/* http:// to a non-loopback address is refused by the http layer */
	assert_true(open_json("{\"type\":\"aws\",\"tls\":false,"
	    "\"endpoint\":\"http://192.0.2.1\",\"credentials\":"
	    "{\"access_key_id\":\"AKIA\",\"secret_access_key\":\"s3cr3t\"}}",
	    &b, err, sizeof(err)) < 0);

	assert_int_equal(open_json("{\"type\":\"aws\",\"tls\":false,"
	    "\"endpoint\":\"http://127.0.0.1:1\",\"http\":{\"max_retries\":1,"
	    "\"retry_base\":\"1ms\",\"retry_max\":\"2ms\"},\"credentials\":"
	    "{\"access_key_id\":\"AKIA\",\"secret_access_key\":\"s3cr3t\"}}",
	    &b, err, sizeof(err)), 0);
	assert_string_equal(backend_type(b), "aws");
	assert_int_equal(backend_fetch(b, &req, &v, err, sizeof(err)), -EIO);
	assert_null(v.data);
	assert_non_null(strstr(err, "AWS GetSecretValue"));
	assert_null(strstr(err, "s3cr3t"));
	/* a reference longer than a SecretId may be */
	{
		char big[2100];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		req.ref = big;
		assert_int_equal(backend_fetch(b, &req, &v, err, sizeof(err)),
		    -EINVAL);
	}
	backend_close(b);
	unsetenv("AWS_REGION");
}

/* --- the region ---------------------------------------------------------------- */

static char region_dir[] = "/tmp/test_aws.XXXXXX";

/* A shared config file whose default profile has a region. */
static const char *
region_config(void)
{
	static char path[sizeof(region_dir) + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/config", region_dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("[default]\nregion = ap-southeast-2\n", f);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void
test_region_order(void **state)
{
	char buf[64], err[256];

	(void)state;
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	setenv("AWS_CONFIG_FILE", region_config(), 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);

	/* the backend's "region" over everything */
	assert_int_equal(aws_region("sa-east-1", NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), 0);
	assert_string_equal(buf, "sa-east-1");
	/* then AWS_REGION, over AWS_DEFAULT_REGION */
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), 0);
	assert_string_equal(buf, "eu-west-1");
	/* an empty variable counts as unset */
	setenv("AWS_REGION", "", 1);
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), 0);
	assert_string_equal(buf, "us-west-2");
	/* AWS_DEFAULT_REGION alone, still over the profile */
	unsetenv("AWS_REGION");
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), 0);
	assert_string_equal(buf, "us-west-2");
	/* and last the profile's region */
	unsetenv("AWS_DEFAULT_REGION");
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), 0);
	assert_string_equal(buf, "ap-southeast-2");
	/* from the file the backend's "config_file" names, over the variable */
	unsetenv("AWS_CONFIG_FILE");
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(aws_region(NULL, NULL, region_config(), buf,
	    sizeof(buf), err, sizeof(err)), 0);
	assert_string_equal(buf, "ap-southeast-2");
}

static void
test_region_none_or_bad(void **state)
{
	char buf[64], err[256];

	(void)state;
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), -EINVAL);
	/* the message names every place a region may come from */
	assert_non_null(strstr(err, "no region"));
	assert_non_null(strstr(err, "\"region\""));
	assert_non_null(strstr(err, "AWS_REGION"));
	assert_non_null(strstr(err, "AWS_DEFAULT_REGION"));
	assert_non_null(strstr(err, "profile"));

	/* a bad name is blamed on the variable it came from */
	setenv("AWS_DEFAULT_REGION", "Not A Region", 1);
	assert_int_equal(aws_region(NULL, NULL, NULL, buf, sizeof(buf), err,
	    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "AWS_DEFAULT_REGION \"Not A Region\""));

	/* and open takes AWS_DEFAULT_REGION when nothing else is set */
	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	{
		struct config_backend cb = { .name = "aws", .type = "aws",
		    .path = "backends.aws" };
		struct backend *b;

		cb.options = json_loads("{\"type\":\"aws\",\"credentials\":"
		    "{\"access_key_id\":\"AKIA\",\"secret_access_key\":\"s\"}}",
		    0, NULL);
		assert_int_equal(backend_open(&cb, &b, err, sizeof(err)), 0);
		backend_close(b);
		unsetenv("AWS_DEFAULT_REGION");
		assert_int_equal(backend_open(&cb, &b, err, sizeof(err)),
		    -EINVAL);
		assert_non_null(strstr(err, "no region"));
		json_decref(cb.options);
	}
	unsetenv("AWS_CONFIG_FILE");
}

static int
setup(void **state)
{
	char err[256];

	(void)state;
	if (secmem_init(4u << 20, err, sizeof(err)) < 0)
		return -1;
	secmem_install_json_allocator();
	if (!mkdtemp(region_dir))
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char path[sizeof(region_dir) + 16];

	(void)state;
	snprintf(path, sizeof(path), "%s/config", region_dir);
	unlink(path);
	return rmdir(region_dir) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_string_example),
		cmocka_unit_test(test_secret_binary),
		cmocka_unit_test(test_secret_value_malformed),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_error_type_sanitize),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_open_and_fetch_unreachable),
		cmocka_unit_test(test_region_order),
		cmocka_unit_test(test_region_none_or_bad),
	};

	if (argc > 1)
		examples = argv[1];
	else if (getenv("AWS_EXAMPLES"))
		examples = getenv("AWS_EXAMPLES");
	return cmocka_run_group_tests(tests, setup, teardown);
}
