/*
 * config: a valid document, and each kind of error with the key path and
 * the line/column it names.
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

#include <secretsfs/config.h>
#include <secretsfs/kubelet.h>

static const char valid[] =
"{\n"
"  \"mount\": {\"path\": \"/run/secretsfs\"},\n"
"  \"memory\": {\"locked_bytes\": \"16MiB\"},\n"
"  \"cache\": {\"max_bytes\": \"4MiB\", \"negative_ttl\": \"2s\"},\n"
"  \"defaults\": {\"mode\": \"0440\", \"uid\": 0, \"gid\": 0, \"refresh\": \"5m\"},\n"
"  \"backends\": {\"dev\": {\"type\": \"file\", \"dir\": \"/etc/secrets\"}},\n"
"  \"secrets\": {\n"
"    \"db_password\": {\"backend\": \"dev\", \"ref\": \"db\", \"uid\": 1000, \"gid\": 1001},\n"
"    \"api.json\": {\"backend\": \"dev\", \"field\": \"token\", \"mode\": \"0400\", \"refresh\": 30}\n"
"  }\n"
"}\n";

static void
test_valid(void **state)
{
	struct cfg_err err;
	struct config *cfg;

	(void)state;
	assert_int_equal(config_load_string(valid, "t.json", &cfg, &err), 0);
	assert_string_equal(cfg->mountpoint, "/run/secretsfs");
	assert_int_equal(cfg->locked_bytes, 16u << 20);
	assert_int_equal(cfg->cache_max_bytes, 4u << 20);
	assert_int_equal(cfg->negative_ttl_ms, 2000);
	assert_true(cfg->allow_other);
	assert_int_equal(cfg->n_backends, 1);
	assert_string_equal(cfg->backends[0].type, "file");
	assert_int_equal(cfg->n_secrets, 2);

	ssize_t i = config_find_secret(cfg, "db_password");
	assert_true(i >= 0);
	assert_string_equal(cfg->secrets[i].ref, "db");
	assert_null(cfg->secrets[i].field);
	assert_int_equal(cfg->secrets[i].mode, 0440);	/* from defaults */
	assert_int_equal(cfg->secrets[i].uid, 1000);
	assert_int_equal(cfg->secrets[i].gid, 1001);
	assert_int_equal(cfg->secrets[i].refresh_ms, 300000);

	i = config_find_secret(cfg, "api.json");
	assert_true(i >= 0);
	assert_string_equal(cfg->secrets[i].ref, "api.json");	/* defaults to the name */
	assert_string_equal(cfg->secrets[i].field, "token");
	assert_int_equal(cfg->secrets[i].mode, 0400);
	assert_int_equal(cfg->secrets[i].refresh_ms, 30000);
	assert_int_equal(config_find_secret(cfg, "nope"), -1);
	config_free(cfg);
}

struct bad {
	const char	*text;
	const char	*path;
	int		 line, col;
	const char	*msg;		/* a substring */
};

static void
test_errors_name_path_and_position(void **state)
{
	static const struct bad cases[] = {
		/* Syntax errors come from jansson with its position. */
		{ "{\n  \"backends\": {,\n}", "", 2, 16, "invalid JSON" },
		{ "[1]", "", 1, 1, "must be a JSON object" },
		{ "{\n \"bogus\": 1}", "bogus", 2, 2, "unknown key" },
		{ "{\"secrets\": {}}", "backends", 1, 1, "missing required key" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\n"
		  "  \"s\": {\"backend\": \"a\",\n"
		  "         \"mode\": \"0777\"}}}",
		  "secrets.s.mode", 4, 10, "more than read" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"b\"}}}",
		  "secrets.s.backend", 2, 19, "no backend named \"b\"" },
		{ "{\"backends\": {\"a\": {\"type\": \"nope\"}},\n\"secrets\": {}}",
		  "backends.a.type", 1, 21, "unknown backend type" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\"}},\n\"secrets\": {}}",
		  "backends.a", 1, 15, "missing required key \"dir\"" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"tls.crt\": {\"backend\": \"a\", \"refresh\": \"soon\"}}}",
		  "secrets.\"tls.crt\".refresh", 2, 41, "expected a duration" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"a/b\": {\"backend\": \"a\"}}}",
		  "secrets.\"a/b\"", 2, 13, "not a valid file name" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"uid\": \"no-such-user-xyz\"}}}",
		  "secrets.s.uid", 2, 35, "no such user" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"cache\": {\"max_bytes\": \"64MiB\"}, \"secrets\": {}}",
		  "cache.max_bytes", 2, 11, "half of memory.locked_bytes" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"as\": \"dir\"}}}",
		  "secrets.s.as", 2, 35, "expected \"file\", \"directory\"" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"as\": \"directory\", \"field\": \"k\"}}}",
		  "secrets.s.field", 2, 54, "not with \"as\": \"directory\"" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"rules\": [{\"match\": {\"bogus\": 1}, \"allow\": [\"*\"]}], \"secrets\": {}}",
		  "rules[0].match.bogus", 2, 22, "" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"access\": {\"denied\": \"eperm\"}, \"secrets\": {}}",
		  "access.denied", 2, 12, "expected \"enoent\"" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"audit\": {\"file\": \"/var/log/a\"}, \"secrets\": {}}",
		  "audit.key_file", 2, 1, "" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\"}, \"s\": {\"backend\": \"a\"}}}",
		  "", 2, 0, "duplicate object key" },
		/* Each kind of wrong JSON type or value, with its position. */
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"mount\": [], \"secrets\": {}}",
		  "mount", 2, 1, "expected an object" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": 7}}}",
		  "secrets.s.backend", 2, 19, "expected a non-empty string" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"ref\": \"x\\u0000y\"}}}",
		  "", 2, 51, "\\u0000 is not allowed" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"mount\": {\"allow_other\": \"yes\"}, \"secrets\": {}}",
		  "mount.allow_other", 2, 11, "expected true or false" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"mode\": 400}}}",
		  "secrets.s.mode", 2, 35, "expected an octal string" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"uid\": -1}}}",
		  "secrets.s.uid", 2, 35, "out of range" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"gid\": true}}}",
		  "secrets.s.gid", 2, 35, "expected a number or a group name" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"cache\": {\"max_bytes\": \"lots\"}, \"secrets\": {}}",
		  "cache.max_bytes", 2, 11, "expected a size" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\", \"refresh\": \"0s\"}}}",
		  "secrets.s.refresh", 2, 35, "at least 1s" },
		{ "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"s\": {\"backend\": \"a\",\n"
		  "  \"on_rotate\": {\"signal\": \"SIGFOO\"}}}}",
		  "secrets.s.on_rotate.signal", 3, 17, "expected one of SIGHUP" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg_err err;
		struct config *cfg = (void *)1;

		print_message("case %zu: %s\n", i, cases[i].path);
		assert_int_equal(config_load_string(cases[i].text, "t.json",
		    &cfg, &err), -EINVAL);
		assert_null(cfg);
		assert_string_equal(err.path, cases[i].path);
		assert_int_equal(err.line, cases[i].line);
		if (cases[i].col)
			assert_int_equal(err.col, cases[i].col);
		assert_non_null(strstr(err.msg, cases[i].msg));
	}
}

static void
test_error_format(void **state)
{
	struct cfg_err err;
	struct config *cfg;
	char buf[512];

	(void)state;
	assert_int_equal(config_load_string("{\n  \"bogus\": 1}", "c.json",
	    &cfg, &err), -EINVAL);
	cfg_err_format(&err, "c.json", buf, sizeof(buf));
	assert_string_equal(buf, "c.json:2:3: bogus: unknown key");
}

/*
 * An unknown key inside every section is reported at its own path, quoted
 * when it holds anything but [A-Za-z0-9_-], and at its own line and
 * column: each case puts it at the start of a line, after two spaces.
 */
#define FILE_BACKEND \
	"{\"backends\": {\"f\": {\"type\": \"file\", \"dir\": \"/x\"}},\n" \
	"\"secrets\": {},\n"
#define VAULT_BACKEND(extra) \
	"{\"secrets\": {},\n" \
	"\"backends\": {\"v\": {\"type\": \"vault\", " \
	"\"address\": \"https://vault:8200\", " \
	"\"auth\": {\"method\": \"token\", \"token_file\": \"/t\"}, " extra
#define AWS_BACKEND(extra) \
	"{\"secrets\": {},\n" \
	"\"backends\": {\"a\": {\"type\": \"aws\", " \
	"\"region\": \"us-east-1\", " extra

static void
test_unknown_key_in_every_section(void **state)
{
	static const char unknown[] = "unknown key";
	static const struct {
		const char	*text;
		const char	*path;
		int		 line, col;
		const char	*msg;	/* the whole message */
	} cases[] = {
		{ "{\"secrets\": {},\n  \"a.b\": 1}", "\"a.b\"", 2, 3, unknown },
		{ FILE_BACKEND "\"mount\": {\"path\": \"/run/s\",\n  \"a.b\": 1}}",
		  "mount.\"a.b\"", 4, 3, unknown },
		{ FILE_BACKEND "\"memory\": {\n  \"x y\": 1}}",
		  "memory.\"x y\"", 4, 3, unknown },
		{ FILE_BACKEND "\"cache\": {\"max_bytes\": 4096,\n  \"a.b\": 1}}",
		  "cache.\"a.b\"", 4, 3, unknown },
		{ FILE_BACKEND "\"defaults\": {\n  \"x y\": 1}}",
		  "defaults.\"x y\"", 4, 3, unknown },
		{ FILE_BACKEND "\"defaults\": {\"on_rotate\": {\n  \"a.b\": 1}}}",
		  "defaults.on_rotate.\"a.b\"", 4, 3, unknown },
		{ "{\"backends\": {\"f\": {\"type\": \"file\", \"dir\": \"/x\"}},\n"
		  "\"secrets\": {\"tls.crt\": {\"backend\": \"f\",\n  \"x y\": 1}}}",
		  "secrets.\"tls.crt\".\"x y\"", 3, 3, unknown },
		{ "{\"secrets\": {},\n"
		  "\"backends\": {\"f.1\": {\"type\": \"file\", \"dir\": \"/x\",\n"
		  "  \"a.b\": 1}}}",
		  "backends.\"f.1\".\"a.b\"", 3, 3, unknown },
		{ VAULT_BACKEND("\n  \"x y\": 1}}}"),
		  "backends.v.\"x y\"", 3, 3, unknown },
		{ VAULT_BACKEND("\"tls\": {\n  \"a.b\": 1}}}}"),
		  "backends.v.tls.\"a.b\"", 3, 3, unknown },
		{ VAULT_BACKEND("\"http\": {\n  \"a.b\": 1}}}}"),
		  "backends.v.http.\"a.b\"", 3, 3, unknown },
		{ VAULT_BACKEND("\"kv\": {\n  \"a.b\": 1}}}}"),
		  "backends.v.kv.\"a.b\"", 3, 3, unknown },
		{ "{\"secrets\": {},\n"
		  "\"backends\": {\"v\": {\"type\": \"vault\", "
		  "\"address\": \"https://vault:8200\",\n"
		  "\"auth\": {\"method\": \"token\", \"token_file\": \"/t\",\n"
		  "  \"a.b\": 1}}}}",
		  "backends.v.auth.\"a.b\"", 4, 3, unknown },
		{ AWS_BACKEND("\n  \"a.b\": 1}}}"),
		  "backends.a.\"a.b\"", 3, 3, unknown },
		{ AWS_BACKEND("\"tls\": {\n  \"x y\": 1}}}}"),
		  "backends.a.tls.\"x y\"", 3, 3, unknown },
		{ AWS_BACKEND("\"http\": {\n  \"x y\": 1}}}}"),
		  "backends.a.http.\"x y\"", 3, 3, unknown },
		{ AWS_BACKEND("\"credentials\": {\n  \"a.b\": 1}}}}"),
		  "backends.a.credentials.\"a.b\"", 3, 3, unknown },
		{ FILE_BACKEND "\"audit\": {\n  \"a.b\": 1, \"file\": \"/a\", "
		  "\"key_file\": \"/k\"}}",
		  "audit.\"a.b\"", 4, 3, unknown },
		{ FILE_BACKEND "\"rules\": [{\"match\": {\"any\": true}, "
		  "\"allow\": [\"*\"],\n  \"a.b\": 1}]}",
		  "rules[0].\"a.b\"", 4, 3, "unknown key (id, match, allow, deny)" },
		{ FILE_BACKEND "\"rules\": [{\"allow\": [\"*\"], \"match\": {\n"
		  "  \"x y\": 1}}]}",
		  "rules[0].match.\"x y\"", 4, 3, "unknown key (any, host, "
		  "container_id, container_name, image, label, runtime, cgroup, "
		  "pod_uid, unit, uid, gid, owner_uid, k8s)" },
		{ FILE_BACKEND "\"access\": {\n  \"a.b\": 1}}",
		  "access.\"a.b\"", 4, 3, unknown },
		{ FILE_BACKEND "\"runtime\": {\n  \"x y\": 1}}",
		  "runtime.\"x y\"", 4, 3, unknown },
		{ FILE_BACKEND "\"control\": {\n  \"a.b\": 1}}",
		  "control.\"a.b\"", 4, 3, unknown },
		{ FILE_BACKEND "\"privsep\": {\n  \"x y\": 1}}",
		  "privsep.\"x y\"", 4, 3, unknown },
	};
	char buf[512], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cfg_err err;
		struct config *cfg = (void *)1;

		print_message("case %zu: %s\n", i, cases[i].path);
		assert_int_equal(config_load_string(cases[i].text, "t.json",
		    &cfg, &err), -EINVAL);
		assert_null(cfg);
		cfg_err_format(&err, "t.json", buf, sizeof(buf));
		snprintf(want, sizeof(want), "t.json:%d:%d: %s: %s",
		    cases[i].line, cases[i].col, cases[i].path, cases[i].msg);
		assert_string_equal(buf, want);
	}
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_file_permissions(void **state)
{
	char dir[] = "/tmp/secretsfs-config-XXXXXX", path[64];
	struct cfg_err err;
	struct config *cfg;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.json", dir);

	write_file(path, valid, 0600);
	assert_int_equal(config_load(path, &cfg, &err), 0);
	config_free(cfg);

	write_file(path, valid, 0644);
	assert_int_equal(config_load(path, &cfg, &err), -EPERM);
	assert_non_null(strstr(err.msg, "group or other"));

	write_file(path, valid, 0620);
	assert_int_equal(config_load(path, &cfg, &err), -EPERM);

	unlink(path);
	assert_int_equal(config_load(path, &cfg, &err), -ENOENT);
	rmdir(dir);
}

static void
test_durations_and_sizes(void **state)
{
	int64_t ms;
	uint64_t b;

	(void)state;
	assert_int_equal(cfg_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(cfg_parse_duration("30s", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(cfg_parse_duration("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(cfg_parse_duration("1.5h", &ms), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(cfg_parse_duration("2d", &ms), 0);
	assert_int_equal(ms, 172800000);
	assert_int_equal(cfg_parse_duration("12", &ms), 0);
	assert_int_equal(ms, 12000);
	assert_int_equal(cfg_parse_duration("-1s", &ms), -EINVAL);
	assert_int_equal(cfg_parse_duration("5 m", &ms), -EINVAL);
	assert_int_equal(cfg_parse_duration("", &ms), -EINVAL);
	assert_int_equal(cfg_parse_duration("1w", &ms), -EINVAL);

	assert_int_equal(cfg_parse_size("4096", &b), 0);
	assert_int_equal(b, 4096);
	assert_int_equal(cfg_parse_size("64KiB", &b), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(cfg_parse_size("16MiB", &b), 0);
	assert_int_equal(b, 16u << 20);
	assert_int_equal(cfg_parse_size("2MB", &b), 0);
	assert_int_equal(b, 2000000);
	assert_int_equal(cfg_parse_size("1.5MiB", &b), -EINVAL);
	assert_int_equal(cfg_parse_size("-1", &b), -EINVAL);
	assert_int_equal(cfg_parse_size("99999999999999999999", &b), -ERANGE);
}

/*
 * The parsed document is not kept: a reload compares digests, which must
 * be equal exactly when the documents are (whatever the order of keys or
 * the spacing), and the restart-only sections are kept for its warnings.
 */
static void
test_reload_digest(void **state)
{
	static const char a[] =
	    "{\"mount\": {\"path\": \"/run/s\"}, \"backends\": {\"dev\": "
	    "{\"type\": \"file\", \"dir\": \"/etc/s\"}}, \"secrets\": "
	    "{\"x\": {\"backend\": \"dev\"}, \"y\": {\"backend\": \"dev\"}}}";
	static const char a_reordered[] =
	    "{ \"secrets\": {\"y\": {\"backend\": \"dev\"},\n \"x\": "
	    "{\"backend\": \"dev\"}}, \"backends\": {\"dev\": {\"dir\": "
	    "\"/etc/s\", \"type\": \"file\"}}, \"mount\": {\"path\": \"/run/s\"} }";
	static const char b[] =
	    "{\"mount\": {\"path\": \"/run/s\"}, \"backends\": {\"dev\": "
	    "{\"type\": \"file\", \"dir\": \"/etc/s\"}}, \"secrets\": "
	    "{\"x\": {\"backend\": \"dev\"}, \"y\": {\"backend\": \"dev\", "
	    "\"mode\": \"0400\"}}}";
	struct cfg_err err;
	struct config *ca, *cr, *cb;

	(void)state;
	assert_int_equal(config_load_string(a, "a.json", &ca, &err), 0);
	assert_int_equal(config_load_string(a_reordered, "a.json", &cr, &err), 0);
	assert_int_equal(config_load_string(b, "b.json", &cb, &err), 0);
	assert_memory_equal(ca->digest, cr->digest, sizeof(ca->digest));
	assert_memory_not_equal(ca->digest, cb->digest, sizeof(ca->digest));
	assert_non_null(json_object_get(ca->restart, "mount"));
	assert_null(json_object_get(ca->restart, "secrets"));
	assert_true(json_equal(ca->restart, cb->restart));
	config_free(ca);
	config_free(cr);
	config_free(cb);
}

static void
test_kubelet_section(void **state)
{
	static const char k8s_rule[] =
	    "\"rules\": [{\"match\": {\"any\": true}, \"allow\": [\"a\"]},\n"
	    "  {\"match\": {\"k8s\": {\"namespace\": \"pay\"}}, "
	    "\"allow\": [\"b\"]}]";
	struct config *cfg = (void *)1;
	struct cfg_err err;
	char text[1024];

	(void)state;
	/* A k8s matcher without a kubelet to ask is refused, at its key. */
	snprintf(text, sizeof(text), FILE_BACKEND "%s}", k8s_rule);
	assert_int_equal(config_load_string(text, "t.json", &cfg, &err),
	    -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.path, "rules[1].match.k8s");
	assert_non_null(strstr(err.msg, "runtime"));
	assert_int_equal(err.line, 4);

	/* With runtime.kubelet (and no Engine API socket) it loads. */
	snprintf(text, sizeof(text), FILE_BACKEND "%s,\n\"runtime\": "
	    "{\"kubelet\": {\"url\": \"https://node-1:10250\", "
	    "\"cache_ttl\": \"10s\"}}}", k8s_rule);
	assert_int_equal(config_load_string(text, "t.json", &cfg, &err), 0);
	assert_non_null(cfg->kubelet);
	assert_null(cfg->runtime_socket);
	assert_string_equal(cfg->kubelet->url, "https://node-1:10250");
	assert_int_equal(cfg->kubelet->ttl_ms, 10000);
	config_free(cfg);

	/* Its own keys are checked, with their path. */
	snprintf(text, sizeof(text), FILE_BACKEND "\"runtime\": "
	    "{\"kubelet\": {\n  \"tokenfile\": \"/t\"}}}");
	assert_int_equal(config_load_string(text, "t.json", &cfg, &err),
	    -EINVAL);
	assert_string_equal(err.path, "runtime.kubelet.tokenfile");
	/* An empty runtime still needs one of its sources. */
	snprintf(text, sizeof(text), FILE_BACKEND "\"runtime\": {}}");
	assert_int_equal(config_load_string(text, "t.json", &cfg, &err),
	    -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_reload_digest),
		cmocka_unit_test(test_kubelet_section),
		cmocka_unit_test(test_errors_name_path_and_position),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_unknown_key_in_every_section),
		cmocka_unit_test(test_file_permissions),
		cmocka_unit_test(test_durations_and_sizes),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
