/*
 * cfg: the key-path rule, the unknown-key check, each typed getter's
 * error (path and message), and placing a path in the text.
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

#include <secretsfs/cfg.h>

static json_t *
doc(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	assert_non_null(j);
	return j;
}

static void
test_path_quoting(void **state)
{
	char buf[CFG_PATH_MAX], small[12];

	(void)state;
	cfg_path_key(buf, sizeof(buf), "mount", "path");
	assert_string_equal(buf, "mount.path");
	cfg_path_key(buf, sizeof(buf), "", "mount");
	assert_string_equal(buf, "mount");
	cfg_path_key(buf, sizeof(buf), NULL, "a.b");
	assert_string_equal(buf, "\"a.b\"");
	cfg_path_key(buf, sizeof(buf), "x", "Az09_-");
	assert_string_equal(buf, "x.Az09_-");
	cfg_path_key(buf, sizeof(buf), "secrets", "tls.crt");
	assert_string_equal(buf, "secrets.\"tls.crt\"");
	cfg_path_key(buf, sizeof(buf), "m", "x y");
	assert_string_equal(buf, "m.\"x y\"");
	cfg_path_key(buf, sizeof(buf), "m", "a/b");
	assert_string_equal(buf, "m.\"a/b\"");
	cfg_path_key(buf, sizeof(buf), "m", "");
	assert_string_equal(buf, "m.\"\"");
	cfg_path_key(buf, sizeof(buf), "m", "say \"hi\"\\");
	assert_string_equal(buf, "m.\"say \\\"hi\\\"\\\\\"");
	cfg_path_key(buf, sizeof(buf), "m", "caf\xc3\xa9");
	assert_string_equal(buf, "m.\"caf\xc3\xa9\"");

	cfg_path_index(buf, sizeof(buf), "rules", 3);
	assert_string_equal(buf, "rules[3]");
	cfg_path_index(buf, sizeof(buf), "rules[3].allow", 0);
	assert_string_equal(buf, "rules[3].allow[0]");

	/* Too long: cut, and it says so. */
	cfg_path_key(small, sizeof(small), "secrets", "abcdefgh");
	assert_string_equal(small, "secrets....");
	cfg_path_key(small, sizeof(small), "s", "a.bcdefghij");
	assert_string_equal(small, "s.\"a.bcd...");
	assert_int_equal(strlen(small), sizeof(small) - 1);
	cfg_path_index(small, sizeof(small), "rules.rules", 12);
	assert_string_equal(small, "rules.ru...");
}

static void
test_unknown_keys(void **state)
{
	static const char *const allowed[] = { "path", "allow_other", NULL };
	static const char *const none[] = { NULL };
	struct cfg_err err;
	json_t *j;

	(void)state;
	j = doc("{\"path\": \"/x\", \"allow_other\": true}");
	assert_int_equal(cfg_check_keys(j, "mount", allowed, &err), 0);
	json_decref(j);

	j = doc("{\"path\": \"/x\", \"a.b\": 1}");
	assert_int_equal(cfg_check_keys(j, "mount", allowed, &err), -EINVAL);
	assert_string_equal(err.path, "mount.\"a.b\"");
	assert_string_equal(err.msg, "unknown key");
	assert_int_equal(err.line, 0);
	assert_int_equal(cfg_check_keys(j, "", allowed, &err), -EINVAL);
	assert_string_equal(err.path, "\"a.b\"");
	json_decref(j);

	j = doc("{}");
	assert_int_equal(cfg_check_keys(j, "x", none, &err), 0);
	json_decref(j);
	j = doc("{\"pathx\": 1}");
	assert_int_equal(cfg_check_keys(j, "x", allowed, &err), -EINVAL);
	assert_string_equal(err.path, "x.pathx");
	json_decref(j);
}

/* One getter's failure: -EINVAL, at path, with exactly msg. */
#define assert_fails(call, p, m) do {					\
	memset(&err, 0, sizeof(err));					\
	assert_int_equal((call), -EINVAL);				\
	assert_string_equal(err.path, (p));				\
	assert_string_equal(err.msg, (m));				\
} while (0)

static void
test_missing_and_null(void **state)
{
	struct cfg_err err;
	const char *s = "keep";
	json_t *j = doc("{\"n\": null, \"o\": {\"k\": 1}}"), *o;
	int64_t ms = 7;

	(void)state;
	/* Missing: untouched and fine, unless required. */
	assert_int_equal(cfg_get_string(j, "m", "nope", 0, &s, &err), 0);
	assert_string_equal(s, "keep");
	assert_int_equal(cfg_get_duration(j, "m", "nope", 0, &ms, &err), 0);
	assert_int_equal(ms, 7);
	assert_fails(cfg_get_string(j, "m", "nope", CFG_REQUIRED, &s, &err),
	    "m", "missing required key \"nope\"");
	assert_fails(cfg_get_object(j, "", "nope", CFG_REQUIRED, &o, &err),
	    "nope", "missing required key \"nope\"");
	/* null: a wrong value, or missing with CFG_NULL. */
	assert_fails(cfg_get_string(j, "m", "n", 0, &s, &err), "m.n",
	    "expected a non-empty string");
	assert_int_equal(cfg_get_string(j, "m", "n", CFG_NULL, &s, &err), 0);
	assert_string_equal(s, "keep");
	assert_fails(cfg_get_string(j, "m", "n", CFG_NULL | CFG_REQUIRED, &s,
	    &err), "m", "missing required key \"n\"");
	/* An object getter says NULL when there is none. */
	o = (void *)1;
	assert_int_equal(cfg_get_object(j, "", "nope", 0, &o, &err), 0);
	assert_null(o);
	assert_int_equal(cfg_get_object(j, "", "o", 0, &o, &err), 0);
	assert_ptr_equal(o, json_object_get(j, "o"));
	json_decref(j);
}

static void
test_getters(void **state)
{
	struct cfg_err err;
	const char *s = NULL;
	json_t *j, *o;
	long long n = 0;
	uint64_t b = 0;
	int64_t ms = 0;
	mode_t m = 0;
	bool t = false;

	(void)state;
	j = doc("{\"s\": \"v\", \"e\": \"\", \"i\": 3, \"t\": true, "
	    "\"d\": \"250ms\", \"ds\": 2, \"z\": \"0s\", \"sz\": \"64KiB\", "
	    "\"szn\": 10, \"mo\": \"0640\", \"p\": \"/etc/x\", "
	    "\"rel\": \"etc/x\", \"bad\": \"soon\", \"neg\": -1, "
	    "\"a.b\": [] }");

	assert_int_equal(cfg_get_string(j, "x", "s", 0, &s, &err), 0);
	assert_string_equal(s, "v");
	assert_fails(cfg_get_string(j, "x", "e", 0, &s, &err), "x.e",
	    "expected a non-empty string");
	assert_fails(cfg_get_string(j, "x", "i", 0, &s, &err), "x.i",
	    "expected a non-empty string");

	assert_int_equal(cfg_get_path(j, "x", "p", 0, &s, &err), 0);
	assert_string_equal(s, "/etc/x");
	assert_fails(cfg_get_path(j, "x", "rel", 0, &s, &err), "x.rel",
	    "expected an absolute path");
	assert_fails(cfg_get_path(j, "x", "i", 0, &s, &err), "x.i",
	    "expected a file path");
	assert_fails(cfg_get_path(j, "x", "e", 0, &s, &err), "x.e",
	    "expected a file path");

	assert_int_equal(cfg_get_bool(j, "x", "t", 0, &t, &err), 0);
	assert_true(t);
	assert_fails(cfg_get_bool(j, "x", "s", 0, &t, &err), "x.s",
	    "expected true or false");

	assert_int_equal(cfg_get_int(j, "x", "i", 0, 0, 10, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_fails(cfg_get_int(j, "x", "i", 0, 0, 2, &n, &err), "x.i",
	    "expected an integer from 0 to 2");
	assert_fails(cfg_get_int(j, "x", "s", 0, 0, 2, &n, &err), "x.s",
	    "expected an integer from 0 to 2");
	assert_int_equal(n, 3);

	assert_int_equal(cfg_get_duration(j, "x", "d", 0, &ms, &err), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(cfg_get_duration(j, "x", "ds", 0, &ms, &err), 0);
	assert_int_equal(ms, 2000);
	assert_int_equal(cfg_get_duration(j, "x", "z", 0, &ms, &err), 0);
	assert_int_equal(ms, 0);
	assert_fails(cfg_get_duration(j, "x", "z", CFG_NONZERO, &ms, &err),
	    "x.z", "must be more than 0");
	assert_fails(cfg_get_duration(j, "x", "bad", 0, &ms, &err), "x.bad",
	    "expected a duration such as \"500ms\", \"30s\", \"5m\" or \"1h\"");
	assert_fails(cfg_get_duration(j, "x", "neg", 0, &ms, &err), "x.neg",
	    "expected a duration such as \"500ms\", \"30s\", \"5m\" or \"1h\"");

	assert_int_equal(cfg_get_size(j, "x", "sz", 0, &b, &err), 0);
	assert_int_equal(b, 65536);
	assert_int_equal(cfg_get_size(j, "x", "szn", 0, &b, &err), 0);
	assert_int_equal(b, 10);
	assert_fails(cfg_get_size(j, "x", "bad", 0, &b, &err), "x.bad",
	    "expected a size such as \"4096\", \"64KiB\" or \"16MiB\"");
	assert_fails(cfg_get_size(j, "x", "neg", 0, &b, &err), "x.neg",
	    "expected a size such as \"4096\", \"64KiB\" or \"16MiB\"");

	assert_int_equal(cfg_get_mode(j, "x", "mo", 0, &m, &err), 0);
	assert_int_equal(m, 0640);
	assert_fails(cfg_get_mode(j, "x", "i", 0, &m, &err), "x.i",
	    "expected an octal string such as \"0440\"");
	assert_fails(cfg_get_mode(j, "x", "s", 0, &m, &err), "x.s",
	    "expected an octal string such as \"0440\"");

	assert_fails(cfg_get_object(j, "x", "a.b", 0, &o, &err),
	    "x.\"a.b\"", "expected an object");
	json_decref(j);

	j = doc("{\"m\": \"99999\"}");
	assert_fails(cfg_get_mode(j, "", "m", 0, &m, &err), "m",
	    "expected an octal string such as \"0440\"");
	json_decref(j);
}

static void
test_locate(void **state)
{
	static const char text[] =
	    "{\n"
	    "  \"mount\": {\"path\": \"/r\"},\n"
	    "  \"backends\": {\n"
	    "    \"v.1\": {\"type\": \"vault\" ,\n"
	    "      \"tls\": {\"x y\": 1, \"q\\\"\\\\\": 2}},\n"
	    "    \"a\\u002eb\": {\"k\": 1}\n"
	    "  },\n"
	    "  \"rules\": [ {\"id\": \"a\"},\n"
	    "     {\"match\": {\"any\": true}} ]\n"
	    "}\n";
	static const struct {
		const char	*path;
		int		 line, col;
	} cases[] = {
		{ "", 1, 1 },
		{ "mount", 2, 3 },
		{ "mount.path", 2, 13 },
		{ "backends.\"v.1\"", 4, 5 },
		{ "backends.\"v.1\".tls.\"x y\"", 5, 15 },
		/* An escaped key in the path and in the text. */
		{ "backends.\"v.1\".tls.\"q\\\"\\\\\"", 5, 25 },
		{ "backends.\"a.b\".k", 6, 18 },
		{ "rules[0].id", 8, 15 },
		{ "rules[1].match.any", 9, 17 },
		/* As deep as the path can be followed. */
		{ "backends.\"v.1\".nope", 4, 5 },
		{ "backends.v.1", 3, 3 },
		{ "rules[5]", 8, 3 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int line = -1, col = -1;

		print_message("case %zu: %s\n", i, cases[i].path);
		cfg_locate(text, strlen(text), cases[i].path, &line, &col);
		assert_int_equal(line, cases[i].line);
		assert_int_equal(col, cases[i].col);
	}
}

/* A typo is named with its nearest key; a word far from all is not. */
static void
test_did_you_mean(void **state)
{
	static const char *const allowed[] = { "path", "allow_other",
	    "mode", NULL };
	static const char *const names[] = { "db_password", "api_token" };
	struct cfg_err err;
	json_t *j;

	(void)state;
	assert_string_equal(cfg_nearest("moed", allowed, SIZE_MAX), "mode");
	assert_string_equal(cfg_nearest("allow_othr", allowed, SIZE_MAX),
	    "allow_other");
	assert_string_equal(cfg_nearest("pth", allowed, SIZE_MAX), "path");
	assert_null(cfg_nearest("bogus", allowed, SIZE_MAX));
	assert_null(cfg_nearest("mode", allowed, SIZE_MAX));
	assert_string_equal(cfg_nearest("db_pasword", names, 2),
	    "db_password");
	/* n bounds the list: the second name is not looked at. */
	assert_null(cfg_nearest("api_tokn", names, 1));
	assert_null(cfg_nearest("x", names, 2));

	j = doc("{\"moed\": \"0440\"}");
	assert_int_equal(cfg_check_keys(j, "secrets.a", allowed, &err),
	    -EINVAL);
	assert_string_equal(err.path, "secrets.a.moed");
	assert_string_equal(err.msg, "unknown key (did you mean \"mode\"?)");
	json_decref(j);
}

static void
test_err_format(void **state)
{
	struct cfg_err err;
	char buf[512];

	(void)state;
	cfg_err_set(&err, "mount.\"a.b\"", "unknown %s", "key");
	cfg_err_format(&err, "c.json", buf, sizeof(buf));
	assert_string_equal(buf, "c.json: mount.\"a.b\": unknown key");
	err.line = 3;
	err.col = 7;
	cfg_err_format(&err, "c.json", buf, sizeof(buf));
	assert_string_equal(buf, "c.json:3:7: mount.\"a.b\": unknown key");
	cfg_err_set(&err, NULL, "bad");
	cfg_err_format(&err, "c.json", buf, sizeof(buf));
	assert_string_equal(buf, "c.json: bad");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_quoting),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_missing_and_null),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_locate),
		cmocka_unit_test(test_did_you_mean),
		cmocka_unit_test(test_err_format),
	};

	return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
