/*
 * broker: the open pipeline (broker_open) and reloads, on the file backend
 * in a temporary directory, with a real audit trail read back. The caller
 * is this process: the rules match any caller, and deny or leave out the
 * names the tests need refused.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/broker.h>
#include <secretsfs/cache.h>
#include <secretsfs/config.h>
#include <secretsfs/secmem.h>

#define ARENA	(8u << 20)
#define KEY	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
/* What the values are: test data, never printed. */
#define ONE	"value-one"
#define TWO	"value-two"

struct t {
	char		 dir[64];
	char		 secrets[128];
	char		 logdir[128];
	char		 log[160];
	char		 key[160];
	char		 conf[160];
	struct broker	*b;
};

static void
write_file(const char *path, const char *s, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/*
 * The config: "api" is served from file api_ref; "db" is denied by rule
 * "no-db"; "hidden" is named by no rule (default-deny); "gone" is allowed
 * but its file does not exist; "bundle" is a directory secret.
 */
static void
config_text(const struct t *t, const char *api_ref, const char *dir,
    const char *on_failure, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len,
	    "{\n"
	    "  \"backends\": {\"dev\": {\"type\": \"file\", \"dir\": \"%s\"}},\n"
	    "  \"secrets\": {\n"
	    "    \"api\": {\"backend\": \"dev\", \"ref\": \"%s\"},\n"
	    "    \"db\": {\"backend\": \"dev\", \"ref\": \"db\"},\n"
	    "    \"hidden\": {\"backend\": \"dev\", \"ref\": \"db\"},\n"
	    "    \"gone\": {\"backend\": \"dev\", \"ref\": \"missing\"},\n"
	    "    \"bundle\": {\"backend\": \"dev\", \"ref\": \"db\","
	    " \"as\": \"directory\"}\n"
	    "  },\n"
	    "  \"rules\": [\n"
	    "    {\"id\": \"no-db\", \"match\": {\"any\": true},"
	    " \"deny\": [\"db\"]},\n"
	    "    {\"id\": \"readers\", \"match\": {\"any\": true},"
	    " \"allow\": [\"api\", \"db\", \"gone\", \"bundle\"]}\n"
	    "  ],\n"
	    "  \"audit\": {\"file\": \"%s\", \"key_file\": \"%s\","
	    " \"on_failure\": \"%s\"}\n"
	    "}\n", dir ? dir : t->secrets, api_ref, t->log, t->key, on_failure);
	assert_true(n > 0 && (size_t)n < len);
}

static void
write_config(const struct t *t, const char *api_ref, const char *dir)
{
	char buf[4096];

	config_text(t, api_ref, dir, "deny", buf, sizeof(buf));
	write_file(t->conf, buf, 0600);
}

/* A broker on the config file as written, started as the daemon does. */
static struct broker *
start(struct t *t, const char *on_failure)
{
	char buf[4096], why[512] = "";
	struct broker *b;
	struct cfg_err err;
	struct config *cfg;

	config_text(t, "api1", NULL, on_failure, buf, sizeof(buf));
	write_file(t->conf, buf, 0600);
	if (config_load_string(buf, t->conf, &cfg, &err) != 0)
		fail_msg("config: %s", err.msg);
	if (broker_new(cfg, &b, why, sizeof(why)) != 0)
		fail_msg("broker_new: %s", why);
	assert_int_equal(broker_start(b), 0);
	return b;
}

static int
open_as(struct broker_view *v, pid_t pid, const char *name, int flags,
    struct cache_snap **out)
{
	struct broker_open_req req = {
		.pid = pid, .uid = getuid(), .gid = getgid(), .flags = flags,
	};
	ssize_t i = broker_view_lookup(v, name);

	assert_true(i >= 0);
	req.idx = (size_t)i;
	*out = (struct cache_snap *)(uintptr_t)1;	/* must be reset */
	return broker_open(v, &req, out);
}

/* Open name as this process in the current view. */
static int
open_name(struct broker *b, const char *name, struct cache_snap **out)
{
	struct broker_view *v = broker_acquire(b);
	int r = open_as(v, getpid(), name, O_RDONLY, out);

	broker_release(v);
	return r;
}

static bool
holds(const struct cache_snap *s, const char *value)
{
	return s && s->len == strlen(value) &&
	    memcmp(s->data, value, s->len) == 0;
}

static size_t
records(const struct t *t)
{
	FILE *fp = fopen(t->log, "r");
	size_t n = 0;
	int c;

	assert_non_null(fp);
	while ((c = getc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

/* The last record of event ev (about secret, when not NULL), or NULL. */
static json_t *
last_record(const struct t *t, const char *ev, const char *secret)
{
	FILE *fp = fopen(t->log, "r");
	json_t *found = NULL, *rec;
	char *line = NULL;
	size_t cap = 0;
	const char *s;

	assert_non_null(fp);
	while (getline(&line, &cap, fp) > 0) {
		assert_non_null(rec = json_loads(line, 0, NULL));
		s = json_string_value(json_object_get(rec, "secret"));
		if (strcmp(json_string_value(json_object_get(rec, "event")),
		    ev) == 0 && (!secret || (s && strcmp(s, secret) == 0))) {
			json_decref(found);
			found = rec;
		} else
			json_decref(rec);
	}
	free(line);
	fclose(fp);
	return found;
}

static const char *
str(const json_t *rec, const char *key)
{
	const char *s = json_string_value(json_object_get(rec, key));

	return s ? s : "(none)";
}

static long long
num(const json_t *rec, const char *key)
{
	return json_integer_value(json_object_get(rec, key));
}

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	char path[256];

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_broker.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->secrets, sizeof(t->secrets), "%s/secrets", t->dir);
	snprintf(t->logdir, sizeof(t->logdir), "%s/log", t->dir);
	snprintf(t->log, sizeof(t->log), "%s/audit.log", t->logdir);
	snprintf(t->key, sizeof(t->key), "%s/audit.key", t->dir);
	snprintf(t->conf, sizeof(t->conf), "%s/config.json", t->dir);
	assert_int_equal(mkdir(t->secrets, 0700), 0);
	assert_int_equal(mkdir(t->logdir, 0700), 0);
	write_file(t->key, KEY, 0600);
	snprintf(path, sizeof(path), "%s/api1", t->secrets);
	write_file(path, ONE, 0600);
	snprintf(path, sizeof(path), "%s/api2", t->secrets);
	write_file(path, TWO, 0600);
	snprintf(path, sizeof(path), "%s/db", t->secrets);
	write_file(path, "{\"user\": \"u\"}", 0600);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t *t = *state;
	char cmd[128];

	broker_free(t->b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static int
group_setup(void **state)
{
	char why[256];

	(void)state;
	if (secmem_init(ARENA, why, sizeof(why)) != 0) {
		fprintf(stderr, "secmem_init: %s\n", why);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static void
test_allowed_open_is_audited_then_served(void **state)
{
	struct t *t = *state;
	struct cache_snap *s;
	json_t *rec;

	t->b = start(t, "deny");
	assert_int_equal(open_name(t->b, "api", &s), 0);
	assert_true(holds(s, ONE));
	assert_non_null(rec = last_record(t, "access", "api"));
	assert_string_equal(str(rec, "outcome"), "allow");
	assert_string_equal(str(rec, "rule"), "readers");
	assert_string_equal(str(rec, "version"), s->version);
	assert_int_equal(num(rec, "pid"), getpid());
	assert_int_equal(num(rec, "uid"), getuid());
	json_decref(rec);
	cache_put(s);
}

static void
test_refused_when_the_record_cannot_be_written(void **state)
{
	struct t *t = *state;
	struct broker_snapshot st;
	struct cache_snap *s;

	t->b = start(t, "deny");
	assert_int_equal(open_name(t->b, "api", &s), 0);
	cache_put(s);
	/* The trail and its directory go away under the daemon. */
	assert_int_equal(unlink(t->log), 0);
	assert_int_equal(rmdir(t->logdir), 0);
	/* The value is cached: only the record is missing, and that refuses. */
	assert_int_equal(open_name(t->b, "api", &s), -EIO);
	assert_null(s);
	/* A denial that cannot be recorded is an error too, not ENOENT. */
	assert_int_equal(open_name(t->b, "db", &s), -EIO);
	assert_null(s);
	assert_int_equal(broker_snapshot(t->b, false, &st), 0);
	assert_int_equal(st.reads, 1);
	assert_int_equal(st.read_errors, 1);
	assert_true(st.audit.failures >= 2);
	broker_snapshot_free(&st);
}

#define CHILD_CHECK(cond, code) do { if (!(cond)) _exit(code); } while (0)

static void
test_refused_when_the_disk_is_full(void **state)
{
	struct t *t = *state;
	pid_t pid;
	int status;
	json_t *rec;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct cache_snap *s;
		struct rlimit rl;
		struct stat sb;
		struct broker *b;
		char why[256];

		CHILD_CHECK(secmem_init_child(ARENA, why, sizeof(why)) == 0, 1);
		b = start(t, "deny");
		CHILD_CHECK(open_name(b, "api", &s) == 0 && holds(s, ONE), 2);
		cache_put(s);
		/* No room for one more byte of the trail: write(2) fails. */
		signal(SIGXFSZ, SIG_IGN);
		CHILD_CHECK(stat(t->log, &sb) == 0, 3);
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = (rlim_t)sb.st_size;
		CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 4);
		CHILD_CHECK(open_name(b, "api", &s) == -EIO && !s, 5);
		CHILD_CHECK(open_name(b, "gone", &s) == -EIO && !s, 6);
		CHILD_CHECK(stat(t->log, &sb) == 0 &&
		    rl.rlim_cur == (rlim_t)sb.st_size, 7);
		/* Room again: served, and recorded first. */
		rl.rlim_cur = rl.rlim_max;
		CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 8);
		CHILD_CHECK(open_name(b, "api", &s) == 0 && holds(s, ONE), 9);
		cache_put(s);
		broker_free(b);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* Two accesses recorded, neither refused one. */
	assert_non_null(rec = last_record(t, "access", "api"));
	assert_string_equal(str(rec, "outcome"), "allow");
	json_decref(rec);
	assert_null(last_record(t, "access", "gone"));
}

static void
test_on_failure_allow_serves_without_the_record(void **state)
{
	struct t *t = *state;
	struct cache_snap *s;

	t->b = start(t, "allow");
	assert_int_equal(unlink(t->log), 0);
	assert_int_equal(open_name(t->b, "api", &s), 0);
	assert_true(holds(s, ONE));
	cache_put(s);
}

static void
test_deny_is_audited_with_its_rule(void **state)
{
	struct t *t = *state;
	struct cache_snap *s;
	json_t *rec;

	t->b = start(t, "deny");
	assert_int_equal(open_name(t->b, "db", &s), -ENOENT);
	assert_null(s);
	assert_non_null(rec = last_record(t, "access", "db"));
	assert_string_equal(str(rec, "outcome"), "deny");
	assert_string_equal(str(rec, "rule"), "no-db");
	assert_int_equal(num(rec, "errno"), ENOENT);
	assert_int_equal(num(rec, "pid"), getpid());
	assert_false(json_is_string(json_object_get(rec, "version")));
	json_decref(rec);

	/* A name no rule allows is refused by the default. */
	assert_int_equal(open_name(t->b, "hidden", &s), -ENOENT);
	assert_null(s);
	assert_non_null(rec = last_record(t, "access", "hidden"));
	assert_string_equal(str(rec, "outcome"), "deny");
	assert_string_equal(str(rec, "rule"), "default-deny");
	json_decref(rec);
}

static void
test_unknown_caller_is_denied_by_default(void **state)
{
	struct t *t = *state;
	struct broker_view *v;
	struct cache_snap *s;
	json_t *rec;
	pid_t pid;

	t->b = start(t, "deny");
	/* A process gone by the time it is identified sees nothing. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	v = broker_acquire(t->b);
	assert_int_equal(open_as(v, pid, "api", O_RDONLY, &s), -ENOENT);
	assert_null(s);
	broker_release(v);
	assert_non_null(rec = last_record(t, "access", "api"));
	assert_string_equal(str(rec, "outcome"), "deny");
	assert_string_equal(str(rec, "rule"), "default-deny");
	assert_int_equal(num(rec, "pid"), pid);
	json_decref(rec);
}

static void
test_failed_fetch_is_audited_as_an_error(void **state)
{
	struct t *t = *state;
	struct cache_snap *s;
	json_t *rec;

	t->b = start(t, "deny");
	assert_int_equal(open_name(t->b, "gone", &s), -ENOENT);
	assert_null(s);
	assert_non_null(rec = last_record(t, "access", "gone"));
	assert_string_equal(str(rec, "outcome"), "error");
	assert_string_equal(str(rec, "rule"), "readers");
	assert_int_equal(num(rec, "errno"), ENOENT);
	json_decref(rec);
}

static void
test_directories_and_writes_are_refused_unrecorded(void **state)
{
	struct t *t = *state;
	struct broker_view *v;
	struct cache_snap *s;
	size_t n;

	t->b = start(t, "deny");
	n = records(t);
	v = broker_acquire(t->b);
	assert_int_equal(open_as(v, getpid(), "bundle", O_RDONLY, &s),
	    -EISDIR);
	assert_null(s);
	assert_int_equal(open_as(v, getpid(), "api", O_WRONLY, &s), -EROFS);
	assert_null(s);
	assert_int_equal(open_as(v, getpid(), "api", O_RDONLY | O_TRUNC, &s),
	    -EROFS);
	assert_null(s);
	/* Even a denied name: refused before it is decided. */
	assert_int_equal(open_as(v, getpid(), "db", O_RDWR, &s), -EROFS);
	assert_null(s);
	broker_release(v);
	assert_int_equal(records(t), n);
}

static void
test_pinned_snapshot_survives_a_reload(void **state)
{
	struct t *t = *state;
	struct broker_view *v;
	struct cache_snap *old, *s;
	json_t *rec;

	t->b = start(t, "deny");
	v = broker_acquire(t->b);
	assert_int_equal(open_as(v, getpid(), "api", O_RDONLY, &old), 0);
	assert_true(holds(old, ONE));

	/* "api" now names another file: its cached value is forgotten. */
	write_config(t, "api2", NULL);
	assert_int_equal(broker_reload(t->b), 0);
	assert_non_null(rec = last_record(t, "reload", NULL));
	assert_string_equal(str(rec, "outcome"), "ok");
	json_decref(rec);

	/* The open file reads what it pinned, in the old view and without. */
	assert_true(holds(old, ONE));
	broker_release(v);
	assert_true(holds(old, ONE));

	/* A new open gets the new value. */
	assert_int_equal(open_name(t->b, "api", &s), 0);
	assert_true(holds(s, TWO));
	assert_true(holds(old, ONE));
	cache_put(s);
	cache_put(old);
}

/*
 * "db", "hidden" and the files of "bundle" are one backend answer (file
 * db): one fetch for all of them, one version, a refresh of one moves them
 * all, and a missing key is that file's ENOENT alone, audited.
 */
static void
test_names_on_one_ref_share_one_fetch(void **state)
{
	struct t *t = *state;
	struct broker_view *v;
	struct cache_snap *whole, *user, *user2, *hidden;
	struct cache_stats st;
	struct timespec ts[2];
	char path[256], ver[64], **names;
	ssize_t bundle, db, hid;
	size_t n;
	json_t *rec;

	t->b = start(t, "deny");
	v = broker_acquire(t->b);
	bundle = broker_view_lookup(v, "bundle");
	db = broker_view_lookup(v, "db");
	hid = broker_view_lookup(v, "hidden");
	assert_true(bundle >= 0 && db >= 0 && hid >= 0);
	assert_int_equal(broker_children(v, (size_t)bundle, &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "user");
	broker_names_free(names, n);
	assert_int_equal(broker_get_child(v, (size_t)bundle, "user", &user), 0);
	assert_true(holds(user, "u"));
	assert_int_equal(broker_get(v, (size_t)db, &whole), 0);
	assert_int_equal(broker_get(v, (size_t)hid, &hidden), 0);
	assert_string_equal(whole->version, user->version);
	assert_string_equal(hidden->version, user->version);
	cache_stats(broker_cache(t->b), &st);
	assert_int_equal(st.fetches, 1);

	/* No such key: ENOENT for that file, audited; nothing fetched. */
	assert_int_equal(broker_get_child(v, (size_t)bundle, "none", &user2),
	    -ENOENT);
	assert_non_null(rec = last_record(t, "backend_error", "bundle/none"));
	json_decref(rec);
	cache_stats(broker_cache(t->b), &st);
	assert_int_equal(st.fetches, 1);

	/* A new version; one refresh of the directory moves every name. */
	snprintf(path, sizeof(path), "%s/db", t->secrets);
	write_file(path, "{\"user\": \"u2\"}", 0600);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += 5;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
	assert_int_equal(broker_refresh(t->b, "bundle", ver, sizeof(ver)), 0);
	cache_stats(broker_cache(t->b), &st);
	assert_int_equal(st.fetches, 2);
	assert_int_equal(st.rotations, 1);
	assert_string_not_equal(ver, user->version);
	assert_int_equal(broker_get_child(v, (size_t)bundle, "user", &user2), 0);
	assert_true(holds(user2, "u2"));
	assert_string_equal(user2->version, ver);
	cache_put(user2);
	assert_int_equal(broker_get(v, (size_t)db, &user2), 0);
	assert_string_equal(user2->version, ver);
	cache_put(user2);
	cache_stats(broker_cache(t->b), &st);
	assert_int_equal(st.fetches, 2);
	/* Each name was told (audited) of the rotation. */
	assert_non_null(rec = last_record(t, "rotate", "bundle/user"));
	assert_string_equal(str(rec, "new_version"), ver);
	json_decref(rec);
	assert_non_null(rec = last_record(t, "rotate", "hidden"));
	json_decref(rec);

	/* What was pinned before is intact. */
	assert_true(holds(user, "u"));
	assert_true(holds(whole, "{\"user\": \"u\"}"));
	cache_put(user);
	cache_put(whole);
	cache_put(hidden);
	broker_release(v);
}

static void
test_failed_reload_keeps_the_old_view(void **state)
{
	struct t *t = *state;
	const struct config *before;
	struct cache_snap *s;
	json_t *rec;

	t->b = start(t, "deny");
	before = broker_config(t->b);

	/* Not JSON. */
	write_file(t->conf, "{\"secrets\": ", 0600);
	assert_true(broker_reload(t->b) < 0);
	assert_ptr_equal(broker_config(t->b), before);
	assert_non_null(rec = last_record(t, "reload", NULL));
	assert_string_equal(str(rec, "outcome"), "error");
	assert_string_equal(str(rec, "reason"), "invalid configuration");
	json_decref(rec);
	assert_int_equal(open_name(t->b, "api", &s), 0);
	assert_true(holds(s, ONE));
	cache_put(s);

	/* Valid, but its backend cannot be opened. */
	write_config(t, "api2", "/nonexistent/secretsfs-test");
	assert_true(broker_reload(t->b) < 0);
	assert_ptr_equal(broker_config(t->b), before);
	assert_non_null(rec = last_record(t, "reload", NULL));
	assert_string_equal(str(rec, "outcome"), "error");
	assert_string_equal(str(rec, "reason"), "a backend cannot be opened");
	json_decref(rec);
	assert_int_equal(open_name(t->b, "api", &s), 0);
	assert_true(holds(s, ONE));
	cache_put(s);
	/* The rules of the old view still decide. */
	assert_int_equal(open_name(t->b, "db", &s), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_allowed_open_is_audited_then_served),
		T(test_refused_when_the_record_cannot_be_written),
		T(test_refused_when_the_disk_is_full),
		T(test_on_failure_allow_serves_without_the_record),
		T(test_deny_is_audited_with_its_rule),
		T(test_unknown_caller_is_denied_by_default),
		T(test_failed_fetch_is_audited_as_an_error),
		T(test_directories_and_writes_are_refused_unrecorded),
		T(test_pinned_snapshot_survives_a_reload),
		T(test_names_on_one_ref_share_one_fetch),
		T(test_failed_reload_keeps_the_old_view),
#undef T
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
