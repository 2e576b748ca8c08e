/*
 * Unit tests for audit (the writer) and auditlog (verify and show).
 */
#ifndef _GNU_SOURCE
#endif

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <secretsfs/audit.h>
#include <secretsfs/secmem.h>
#include <secretsfs/auditlog.h>

#define KEY_A	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_B	"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define ZEROS	"0000000000000000000000000000000000000000000000000000000000000000"
/* What a secret's bytes might be; the audit API has nowhere to put them. */
#define VALUE	"s3cr3t-VALUE-hunter2"

struct t {
	char	dir[64];
	char	log[160];
	char	key[160];
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

static char *
slurp(const char *path)
{
	FILE	*fp = fopen(path, "r");
	char	*buf;
	long	 n;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = calloc(1, n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, fp), (size_t)n);
	fclose(fp);
	return buf;
}

/* Lines of a file, each with its "\n" (the last maybe without). */
struct lines {
	char	*l[4096];
	int	 n;
};

static void
read_lines(const char *path, struct lines *ls)
{
	char	*buf = slurp(path), *p = buf, *nl;

	ls->n = 0;
	while (*p != '\0') {
		nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p + 1) : strlen(p);
		assert_true(ls->n < 4096);
		ls->l[ls->n++] = strndup(p, len);
		p += len;
	}
	free(buf);
}

static void
write_lines(const char *path, struct lines *ls)
{
	FILE	*fp = fopen(path, "w");
	int	 i;

	assert_non_null(fp);
	for (i = 0; i < ls->n; i++)
		fputs(ls->l[i], fp);
	fclose(fp);
}

static void
free_lines(struct lines *ls)
{
	int	i;

	for (i = 0; i < ls->n; i++)
		free(ls->l[i]);
	ls->n = 0;
}

/* The key and parsed records live in the locked arena, as in the daemon. */
static int
arena_setup(void **state)
{
	char why[256];

	(void)state;
	if (secmem_init(8u << 20, why, sizeof(why)) != 0) {
		fprintf(stderr, "secmem_init: %s\n", why);
		return -1;
	}
	secmem_install_json_allocator();
	return 0;
}

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	snprintf(t->dir, sizeof(t->dir), "/tmp/test_audit.XXXXXX");
	if (t == NULL || mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->log, sizeof(t->log), "%s/audit.log", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/audit.key", t->dir);
	write_file(t->key, KEY_A "\n", 0600);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t	*t = *state;
	char		 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static void
config(struct t *t, struct audit_config *cfg)
{
	audit_config_init(cfg);
	cfg->file = strdup(t->log);
	cfg->key_file = strdup(t->key);
	cfg->host_name = strdup("testhost");
	cfg->flush_interval_ms = 0;
}

static struct audit *
open_audit(struct t *t)
{
	struct audit_config	 cfg;
	struct audit		*a = NULL;
	char			 err[512] = "";

	config(t, &cfg);
	if (audit_open(&cfg, &a, err, sizeof(err)) != 0)
		fail_msg("audit_open: %s", err);
	audit_config_clear(&cfg);
	return a;
}

static void
container_caller(struct caller *c, const char *name, const char *id)
{
	memset(c, 0, sizeof(*c));
	c->pid = 4242;
	c->uid = 1000;
	c->gid = 1001;
	snprintf(c->comm, sizeof(c->comm), "payments");
	snprintf(c->cgroup, sizeof(c->cgroup),
	    "/machine.slice/libpod-%s.scope/container", id);
	c->runtime = IDENTITY_RUNTIME_PODMAN;
	snprintf(c->container_id, sizeof(c->container_id), "%s", id);
	snprintf(c->container_name, sizeof(c->container_name), "%s", name);
	snprintf(c->image, sizeof(c->image), "localhost/pay:1.2");
}

#define ID1 "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
#define ID2 "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999"

static int
access_one(struct audit *a, const char *secret, const struct caller *c,
    enum audit_outcome o)
{
	struct audit_access acc = {
		.secret = secret,
		.backend = "vault-prod",
		.ref = "kv/data/payments/db",
		.version = o == AUDIT_OUTCOME_ALLOW ? "7" : NULL,
		.rule = "payments-db",
		.outcome = o,
		.err = o == AUDIT_OUTCOME_ALLOW ? 0 : ENOENT,
		.caller = c,
	};

	return audit_access(a, &acc);
}

/* start, n accesses, stop: n + 2 lines. */
static void
clean_log(struct t *t, int n)
{
	struct audit	*a = open_audit(t);
	struct caller	 c;
	int		 i;

	container_caller(&c, "web", ID1);
	for (i = 0; i < n; i++)
		assert_int_equal(access_one(a, "db_password", &c,
		    AUDIT_OUTCOME_ALLOW), 0);
	audit_close(a);
}

static struct audit_key *
key_a(void)
{
	struct audit_key *k = audit_key_new(KEY_A, 64);

	assert_non_null(k);
	return k;
}

static int
verify_opts(char **files, int n, const struct auditlog_opts *opts,
    struct auditlog_result *res)
{
	struct audit_key	*k = key_a();
	int			 r;

	r = auditlog_verify(k, files, n, opts, NULL, res);
	audit_key_free(k);
	return r;
}

static int
verify(char **files, int n, struct auditlog_result *res)
{
	return verify_opts(files, n, NULL, res);
}

static int
verify1(const char *path, struct auditlog_result *res)
{
	char	*files[] = { (char *)path };

	return verify(files, 1, res);
}

static json_t *
line_json(const char *path, int lineno)
{
	struct lines	 ls;
	json_t		*o;

	read_lines(path, &ls);
	assert_true(lineno >= 1 && lineno <= ls.n);
	o = json_loads(ls.l[lineno - 1], 0, NULL);
	free_lines(&ls);
	assert_non_null(o);
	return o;
}

/* ------------------------------------------------------------------ */

static void
test_config_ok(void **state)
{
	struct audit_config	 cfg;
	struct cfg_err	 err;
	json_t			*o;

	(void)state;
	o = json_loads("{\"file\":\"/var/log/secretsfs/audit.log\","
	    "\"key_file\":\"/etc/secretsfs/audit.key\",\"on_failure\":\"allow\","
	    "\"flush_interval\":\"250ms\",\"max_size\":\"100MiB\","
	    "\"syslog\":true,\"stdout\":true,\"host_name\":\"node-1\"}", 0, NULL);
	assert_non_null(o);
	assert_int_equal(audit_config_from_json(o, "audit", &cfg, &err), 0);
	assert_string_equal(cfg.file, "/var/log/secretsfs/audit.log");
	assert_string_equal(cfg.key_file, "/etc/secretsfs/audit.key");
	assert_int_equal(cfg.on_failure, AUDIT_ON_FAILURE_ALLOW);
	assert_int_equal(cfg.flush_interval_ms, 250);
	assert_int_equal(cfg.max_size, 100ull << 20);
	assert_true(cfg.syslog);
	assert_true(cfg.to_stdout);
	assert_string_equal(cfg.host_name, "node-1");
	audit_config_clear(&cfg);
	json_decref(o);

	/* Defaults. */
	o = json_loads("{\"file\":\"/a\",\"key_file\":\"/k\"}", 0, NULL);
	assert_int_equal(audit_config_from_json(o, "audit", &cfg, &err), 0);
	assert_int_equal(cfg.on_failure, AUDIT_ON_FAILURE_DENY);
	assert_int_equal(cfg.flush_interval_ms, 1000);
	assert_int_equal(cfg.max_size, 0);
	assert_false(cfg.syslog);
	assert_false(cfg.to_stdout);
	assert_null(cfg.host_name);
	audit_config_clear(&cfg);
	json_decref(o);
}

static void
config_fails(const char *text, const char *path, const char *msgpart)
{
	struct audit_config	 cfg;
	struct cfg_err	 err;
	json_t			*o = json_loads(text, 0, NULL);

	assert_non_null(o);
	memset(&err, 0, sizeof(err));
	assert_int_equal(audit_config_from_json(o, "audit", &cfg, &err),
	    -EINVAL);
	assert_string_equal(err.path, path);
	if (strstr(err.msg, msgpart) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, msgpart);
	assert_null(cfg.file);
	json_decref(o);
}

static void
test_config_errors(void **state)
{
	(void)state;
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\",\"bogus\":1}",
	    "audit.bogus", "unknown key");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\",\"a.b\":1}",
	    "audit.\"a.b\"", "unknown key");
	config_fails("{\"key_file\":\"/k\"}", "audit.file", "required");
	config_fails("{\"file\":\"/a\"}", "audit.key_file", "required");
	config_fails("{\"file\":\"rel/a\",\"key_file\":\"/k\"}", "audit.file",
	    "absolute");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\",\"on_failure\":\"x\"}",
	    "audit.on_failure", "deny");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\","
	    "\"flush_interval\":\"soon\"}", "audit.flush_interval", "duration");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\",\"max_size\":100}",
	    "audit.max_size", "4KiB");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\",\"syslog\":\"yes\"}",
	    "audit.syslog", "true or false");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\",\"host_name\":\"a b\"}",
	    "audit.host_name", "spaces");
	config_fails("[]", "audit", "object");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\","
	    "\"denied_per_caller\":-1}", "audit.denied_per_caller",
	    "expected an integer");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\","
	    "\"denied_interval\":\"500ms\"}", "audit.denied_interval",
	    "between 1s and 1h");
	config_fails("{\"file\":\"/a\",\"key_file\":\"/k\","
	    "\"reserve\":\"lots\"}", "audit.reserve", "expected a size");
}

static void
test_config_limits(void **state)
{
	struct audit_config	 cfg;
	struct cfg_err		 err;
	json_t			*o;

	(void)state;
	o = json_loads("{\"file\":\"/a\",\"key_file\":\"/k\"}", 0, NULL);
	assert_int_equal(audit_config_from_json(o, "audit", &cfg, &err), 0);
	/* On by default: a flood is limited without asking. */
	assert_int_equal(cfg.denied_per_caller, 100);
	assert_int_equal(cfg.denied_interval_ms, 10000);
	assert_int_equal(cfg.reserve, 0);
	audit_config_clear(&cfg);
	json_decref(o);
	o = json_loads("{\"file\":\"/a\",\"key_file\":\"/k\","
	    "\"denied_per_caller\":0,\"denied_interval\":\"1m\","
	    "\"reserve\":\"64MiB\"}", 0, NULL);
	assert_int_equal(audit_config_from_json(o, "audit", &cfg, &err), 0);
	assert_int_equal(cfg.denied_per_caller, 0);
	assert_int_equal(cfg.denied_interval_ms, 60000);
	assert_int_equal(cfg.reserve, 64ULL << 20);
	audit_config_clear(&cfg);
	json_decref(o);
}

static const char *const access_keys[] = {
	"time", "seq", "event", "secret", "backend", "ref", "version",
	"outcome", "errno", "rule", "pid", "uid", "gid", "comm", "container",
	"cgroup", "host", "key_id", "prev", "mac", NULL
};

static void
assert_keys(json_t *o, const char *const *keys)
{
	void	*it = json_object_iter(o);
	int	 i;

	/* jansson keeps insertion order, i.e. the order in the line. */
	for (i = 0; keys[i] != NULL; i++, it = json_object_iter_next(o, it)) {
		assert_non_null(it);
		assert_string_equal(json_object_iter_key(it), keys[i]);
	}
	assert_null(it);
}

static void
test_record_fields(void **state)
{
	struct t	*t = *state;
	struct audit	*a = open_audit(t);
	struct caller	 c;
	struct stat	 sb;
	json_t		*o, *ct;
	char		*all;
	const char	*tm;

	container_caller(&c, "web", ID1);
	assert_int_equal(access_one(a, "db_password", &c, AUDIT_OUTCOME_ALLOW),
	    0);
	audit_close(a);

	assert_int_equal(stat(t->log, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	o = line_json(t->log, 2);
	assert_keys(o, access_keys);
	assert_string_equal(json_string_value(json_object_get(o, "event")),
	    "access");
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 2);
	assert_string_equal(json_string_value(json_object_get(o, "secret")),
	    "db_password");
	assert_string_equal(json_string_value(json_object_get(o, "backend")),
	    "vault-prod");
	assert_string_equal(json_string_value(json_object_get(o, "ref")),
	    "kv/data/payments/db");
	assert_string_equal(json_string_value(json_object_get(o, "version")),
	    "7");
	assert_string_equal(json_string_value(json_object_get(o, "outcome")),
	    "allow");
	assert_int_equal(json_integer_value(json_object_get(o, "errno")), 0);
	assert_string_equal(json_string_value(json_object_get(o, "rule")),
	    "payments-db");
	assert_int_equal(json_integer_value(json_object_get(o, "pid")), 4242);
	assert_int_equal(json_integer_value(json_object_get(o, "uid")), 1000);
	assert_int_equal(json_integer_value(json_object_get(o, "gid")), 1001);
	assert_string_equal(json_string_value(json_object_get(o, "comm")),
	    "payments");
	assert_string_equal(json_string_value(json_object_get(o, "host")),
	    "testhost");
	assert_string_equal(json_string_value(json_object_get(o, "cgroup")),
	    c.cgroup);
	ct = json_object_get(o, "container");
	{
		static const char *const ck[] = { "id", "name", "image",
		    "runtime", NULL };
		assert_keys(ct, ck);
	}
	assert_string_equal(json_string_value(json_object_get(ct, "id")), ID1);
	assert_string_equal(json_string_value(json_object_get(ct, "name")),
	    "web");
	assert_string_equal(json_string_value(json_object_get(ct, "image")),
	    "localhost/pay:1.2");
	assert_string_equal(json_string_value(json_object_get(ct, "runtime")),
	    "podman");
	tm = json_string_value(json_object_get(o, "time"));
	assert_non_null(tm);
	/* 2026-11-22T13:17:14.123456Z */
	assert_int_equal(strlen(tm), 27);
	assert_true(tm[4] == '-' && tm[10] == 'T' && tm[19] == '.' &&
	    tm[26] == 'Z');
	assert_int_equal(strlen(json_string_value(json_object_get(o,
	    "key_id"))), 16);
	json_decref(o);

	/* The start and stop records. */
	o = line_json(t->log, 1);
	assert_string_equal(json_string_value(json_object_get(o, "event")),
	    "start");
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 1);
	assert_string_equal(json_string_value(json_object_get(o, "prev")),
	    ZEROS);
	assert_int_equal(json_integer_value(json_object_get(o, "pid")),
	    getpid());
	json_decref(o);
	o = line_json(t->log, 3);
	assert_string_equal(json_string_value(json_object_get(o, "event")),
	    "stop");
	json_decref(o);

	/* Compact: no whitespace between tokens, one record per line. */
	all = slurp(t->log);
	assert_null(strstr(all, "\": "));
	assert_null(strstr(all, ", \""));
	assert_null(strstr(all, VALUE));
	free(all);
}

static void
test_record_unknowns_are_null(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	struct caller		 c;
	struct audit_access	 acc = {
		.secret = "api_token", .outcome = AUDIT_OUTCOME_DENY,
		.err = ENOENT, .caller = &c,
	};
	json_t			*o;

	memset(&c, 0, sizeof(c));
	c.pid = 77;
	c.uid = 0;
	assert_int_equal(audit_access(a, &acc), 0);
	acc.caller = NULL;
	assert_int_equal(audit_lookup_denied(a, &acc), 0);
	audit_close(a);

	o = line_json(t->log, 2);
	assert_keys(o, access_keys);
	assert_true(json_is_null(json_object_get(o, "container")));
	assert_true(json_is_null(json_object_get(o, "version")));
	assert_true(json_is_null(json_object_get(o, "rule")));
	assert_true(json_is_null(json_object_get(o, "comm")));
	assert_true(json_is_null(json_object_get(o, "cgroup")));
	assert_string_equal(json_string_value(json_object_get(o, "outcome")),
	    "deny");
	assert_int_equal(json_integer_value(json_object_get(o, "errno")),
	    ENOENT);
	json_decref(o);

	o = line_json(t->log, 3);
	assert_keys(o, access_keys);
	assert_string_equal(json_string_value(json_object_get(o, "event")),
	    "lookup_denied");
	assert_true(json_is_null(json_object_get(o, "pid")));
	json_decref(o);
}

/*
 * The writer formats records itself; this is how they were built before,
 * with jansson, kept here as the reference: the same members in the same
 * order, dumped compact.
 */
static size_t
ref_utf8_len(const unsigned char *p)
{
	unsigned char	c = p[0], lo = 0x80, hi = 0xbf;
	size_t		n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

static json_t *
ref_jstr(const char *s, size_t max, bool empty_is_null)
{
	char			 buf[AUDIT_STR_MAX];
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 o = 0, n;

	if (s == NULL || (empty_is_null && *s == '\0'))
		return json_null();
	if (max > sizeof(buf))
		max = sizeof(buf);
	while (*p != '\0' && o < max) {
		if ((n = ref_utf8_len(p)) == 0) {
			buf[o++] = '?';
			p++;
			continue;
		}
		if (o + n > max)
			break;
		memcpy(buf + o, p, n);
		o += n;
		p += n;
	}
	return json_stringn(buf, o);
}

/* The canonical bytes the jansson writer made of this access record. */
static char *
ref_access_line(json_t *written, const struct audit_access *acc,
    const char *host)
{
	const struct caller	*c = acc->caller;
	json_t			*o = json_object(), *ct;
	char			*s;

	json_object_set(o, "time", json_object_get(written, "time"));
	json_object_set(o, "seq", json_object_get(written, "seq"));
	json_object_set_new(o, "event", json_string("access"));
	json_object_set_new(o, "secret", ref_jstr(acc->secret, AUDIT_STR_MAX, false));
	json_object_set_new(o, "backend", ref_jstr(acc->backend, AUDIT_STR_MAX, false));
	json_object_set_new(o, "ref", ref_jstr(acc->ref, AUDIT_STR_MAX, false));
	json_object_set_new(o, "version", ref_jstr(acc->version, AUDIT_STR_MAX, false));
	json_object_set_new(o, "outcome", json_string("allow"));
	json_object_set_new(o, "errno", json_integer(acc->err));
	json_object_set_new(o, "rule", ref_jstr(acc->rule, AUDIT_STR_MAX, false));
	json_object_set_new(o, "pid", json_integer(c->pid));
	json_object_set_new(o, "uid", json_integer(c->uid));
	json_object_set_new(o, "gid", json_integer(c->gid));
	json_object_set_new(o, "comm", ref_jstr(c->comm, sizeof(c->comm), true));
	ct = json_object();
	json_object_set_new(ct, "id", ref_jstr(c->container_id, AUDIT_STR_MAX, true));
	json_object_set_new(ct, "name", ref_jstr(c->container_name, AUDIT_STR_MAX, true));
	json_object_set_new(ct, "image", ref_jstr(c->image, AUDIT_STR_MAX, true));
	json_object_set_new(ct, "runtime", json_string("podman"));
	json_object_set_new(o, "container", ct);
	json_object_set_new(o, "cgroup", ref_jstr(c->cgroup, AUDIT_STR_MAX, true));
	json_object_set_new(o, "host", ref_jstr(host, 255, false));
	json_object_set(o, "key_id", json_object_get(written, "key_id"));
	json_object_set(o, "prev", json_object_get(written, "prev"));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	assert_non_null(s);
	return s;
}

/* Every control character, quotes, backslashes, DEL, and bad UTF-8. */
static void
hostile(char *buf, size_t size, int seed)
{
	static const char *const bits[] = {
		"\"", "\\", "/", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf5\x80",
		"\x80", "\xe2\x82", "\\u0000", "</script>", "\"}\n{\"seq\":1,",
	};
	size_t	o = 0, n;
	int	i = seed;

	while (o + 8 < size) {
		if (i % 3 == 0) {
			buf[o++] = (char)(1 + (i / 3) % 31);	/* 0x01..0x1f */
		} else {
			const char *b = bits[i % (sizeof(bits) / sizeof(bits[0]))];

			n = strlen(b);
			if (o + n >= size - 1)
				break;
			memcpy(buf + o, b, n);
			o += n;
		}
		i++;
	}
	buf[o] = '\0';
}

static void
test_record_hostile_strings(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	struct caller		 c;
	static char		 secret[2000], ref[700], version[300], rule[513];
	struct audit_access	 acc = {
		.secret = secret, .backend = "b\x01\"\\", .ref = ref,
		.version = version, .rule = rule,
		.outcome = AUDIT_OUTCOME_ALLOW, .err = 0, .caller = &c,
	};
	struct auditlog_result	 res;
	struct lines		 ls;
	json_error_t		 jerr;
	json_t			*o;
	char			*want, *again;
	json_free_t		 jfree;
	size_t			 len;
	int			 round;

	/* json_dumps allocates in the locked arena here, as in the daemon. */
	json_get_alloc_funcs(NULL, &jfree);

	for (round = 0; round < 40; round++) {
		container_caller(&c, "web", ID1);
		hostile(secret, sizeof(secret), round);
		hostile(ref, sizeof(ref), round + 1);
		hostile(version, sizeof(version), round + 2);
		hostile(rule, sizeof(rule), round + 3);
		hostile(c.comm, sizeof(c.comm), round + 4);
		hostile(c.cgroup, sizeof(c.cgroup), round + 5);
		hostile(c.container_name, sizeof(c.container_name), round + 6);
		hostile(c.image, sizeof(c.image), round + 7);
		/* A multi-byte character straddling the 512-byte cut. */
		if (round == 0) {
			memset(secret, 'x', 511);
			memcpy(secret + 511, "\xe2\x82\xac tail", 9);
		}
		assert_int_equal(audit_access(a, &acc), 0);
		read_lines(t->log, &ls);
		len = strlen(ls.l[ls.n - 1]);
		assert_true(len > AUDIT_MAC_SUFFIX_LEN + 1);
		/* It parses, with jansson, duplicates refused ... */
		o = json_loadb(ls.l[ls.n - 1], len - 1, JSON_REJECT_DUPLICATES,
		    &jerr);
		if (o == NULL)
			fail_msg("round %d: %s: %s", round, jerr.text,
			    ls.l[ls.n - 1]);
		/* ... re-dumps to the very same bytes ... */
		again = json_dumps(o, JSON_COMPACT);
		assert_non_null(again);
		assert_int_equal(strlen(again), len - 1);
		assert_memory_equal(again, ls.l[ls.n - 1], len - 1);
		jfree(again);
		/* ... and is what the jansson writer made of the same fields. */
		json_object_del(o, "mac");
		want = ref_access_line(o, &acc, "testhost");
		assert_int_equal(strlen(want), len - AUDIT_MAC_SUFFIX_LEN);
		assert_memory_equal(want, ls.l[ls.n - 1], len - AUDIT_MAC_SUFFIX_LEN - 1);
		assert_int_equal(want[strlen(want) - 1], '}');
		jfree(want);
		json_decref(o);
		free_lines(&ls);
	}
	audit_close(a);
	/* And the chain holds. */
	assert_int_equal(verify1(t->log, &res), 0);
	assert_int_equal(res.records, 42);
}

static void
test_mac_chain(void **state)
{
	struct t	*t = *state;
	struct lines	 ls;
	uint8_t		 md[32], kid[32];
	unsigned int	 mdlen;
	char		 hex[65], prev[65] = ZEROS, *canon;
	size_t		 len;
	int		 i, j;
	json_t		*o;

	clean_log(t, 3);
	read_lines(t->log, &ls);
	assert_int_equal(ls.n, 5);
	EVP_Digest(KEY_A, 64, kid, NULL, EVP_sha256(), NULL);
	for (i = 0; i < ls.n; i++) {
		/* An independent check of the documented canonical bytes. */
		len = strlen(ls.l[i]);
		assert_true(ls.l[i][len - 1] == '\n');
		len -= 1 + AUDIT_MAC_SUFFIX_LEN;
		assert_memory_equal(ls.l[i] + len, ",\"mac\":\"", 8);
		canon = malloc(len + 2);
		memcpy(canon, ls.l[i], len);
		memcpy(canon + len, "}", 2);
		HMAC(EVP_sha256(), KEY_A, 64, (uint8_t *)canon, len + 1, md,
		    &mdlen);
		for (j = 0; j < 32; j++)
			sprintf(hex + 2 * j, "%02x", md[j]);
		assert_memory_equal(ls.l[i] + len + 8, hex, 64);

		/* The record with mac removed is exactly the canonical bytes. */
		o = json_loads(ls.l[i], 0, NULL);
		assert_non_null(o);
		assert_int_equal(json_integer_value(json_object_get(o, "seq")),
		    i + 1);
		assert_string_equal(json_string_value(json_object_get(o,
		    "prev")), prev);
		assert_string_equal(json_string_value(json_object_get(o,
		    "mac")), hex);
		json_object_del(o, "mac");
		{
			char		*s = json_dumps(o, JSON_COMPACT);
			json_free_t	 jfree;

			assert_string_equal(s, canon);
			json_get_alloc_funcs(NULL, &jfree);
			jfree(s);
		}
		for (j = 0; j < 8; j++)
			sprintf(hex + 2 * j, "%02x", kid[j]);
		assert_string_equal(json_string_value(json_object_get(o,
		    "key_id")), hex);
		memcpy(prev, ls.l[i] + len + 8, 64);
		json_decref(o);
		free(canon);
	}
	free_lines(&ls);
}

static void
test_event_api(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	char			 longs[2000], bad[] = "ab\xff\xfe" "cd\xc3\xa9";
	struct audit_kv		 kv[3];
	struct audit_rotate	 rot = { .secret = "db_password",
		.backend = "vault-prod", .ref = "kv/data/db",
		.old_version = "6", .new_version = "7" };
	json_t			*o;

	assert_int_equal(audit_event(a, AUDIT_EV_START, NULL, NULL, 0), -EINVAL);
	assert_int_equal(audit_event(a, AUDIT_EV_STOP, NULL, NULL, 0), -EINVAL);
	assert_int_equal(audit_event(a, AUDIT_EV__MAX, NULL, NULL, 0), -EINVAL);
	kv[0] = AUDIT_STR(AUDIT_F__MAX, "x");
	assert_int_equal(audit_event(a, AUDIT_EV_RELOAD, NULL, kv, 1), -EINVAL);
	kv[0] = AUDIT_STR(AUDIT_F_CONFIG, "/etc/a");
	kv[1] = AUDIT_STR(AUDIT_F_CONFIG, "/etc/b");
	assert_int_equal(audit_event(a, AUDIT_EV_RELOAD, NULL, kv, 2), -EINVAL);
	kv[1] = AUDIT_NUM(AUDIT_F_OUTCOME, 99);
	assert_int_equal(audit_event(a, AUDIT_EV_RELOAD, NULL, kv, 2), -EINVAL);

	/* Given out of order, written in field order. */
	kv[0] = AUDIT_NUM(AUDIT_F_ERRNO, 0);
	kv[1] = AUDIT_STR(AUDIT_F_CONFIG, "/etc/secretsfs/config.json");
	kv[2] = AUDIT_NUM(AUDIT_F_OUTCOME, AUDIT_OUTCOME_OK);
	assert_int_equal(audit_event(a, AUDIT_EV_RELOAD, NULL, kv, 3), 0);
	assert_int_equal(audit_rotate(a, &rot), 0);

	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	kv[0] = AUDIT_STR(AUDIT_F_REASON, longs);
	kv[1] = AUDIT_STR(AUDIT_F_TARGET, bad);
	assert_int_equal(audit_event(a, AUDIT_EV_REPAIR, NULL, kv, 2), 0);
	/* A cut never splits a UTF-8 character. */
	memset(longs, 'x', AUDIT_REASON_MAX - 1);
	strcpy(longs + AUDIT_REASON_MAX - 1, "\xc3\xa9");
	kv[0] = AUDIT_STR(AUDIT_F_REASON, longs);
	assert_int_equal(audit_event(a, AUDIT_EV_REPAIR, NULL, kv, 1), 0);
	audit_close(a);

	o = line_json(t->log, 2);
	{
		static const char *const k[] = { "time", "seq", "event",
		    "outcome", "errno", "config", "host", "key_id", "prev",
		    "mac", NULL };
		assert_keys(o, k);
	}
	assert_string_equal(json_string_value(json_object_get(o, "outcome")),
	    "ok");
	json_decref(o);

	o = line_json(t->log, 3);
	{
		static const char *const k[] = { "time", "seq", "event",
		    "secret", "backend", "ref", "old_version", "new_version",
		    "host", "key_id", "prev", "mac", NULL };
		assert_keys(o, k);
	}
	assert_string_equal(json_string_value(json_object_get(o,
	    "new_version")), "7");
	json_decref(o);

	o = line_json(t->log, 4);
	assert_int_equal(strlen(json_string_value(json_object_get(o, "reason"))),
	    AUDIT_REASON_MAX);
	/* Invalid UTF-8 becomes '?', valid multibyte characters stay. */
	assert_string_equal(json_string_value(json_object_get(o, "target")),
	    "ab??cd\xc3\xa9");
	json_decref(o);

	o = line_json(t->log, 5);
	assert_int_equal(strlen(json_string_value(json_object_get(o, "reason"))),
	    AUDIT_REASON_MAX - 1);
	json_decref(o);

	assert_int_equal(verify1(t->log, NULL), 0);
}

/* ------------------------------------------------------------------ */
/* Tampering                                                          */

static void
expect_bad(const char *path, enum auditlog_bad kind, unsigned long line,
    uint64_t records)
{
	struct auditlog_result	res;
	char			*files[] = { (char *)path };
	struct audit_key	*k = key_a();
	char			*buf = NULL;
	size_t			 blen = 0;
	FILE			*out = open_memstream(&buf, &blen);

	assert_int_equal(auditlog_verify(k, files, 1, NULL, out, &res), 1);
	fclose(out);
	audit_key_free(k);
	if (res.kind != kind || res.line != line)
		fail_msg("expected %s at line %lu, got %s at line %lu: %s",
		    auditlog_bad_name(kind), line, auditlog_bad_name(res.kind),
		    res.line, buf);
	assert_string_equal(res.file, path);
	assert_int_equal(res.records, records);
	/* The report names file, line and kind. */
	{
		char want[256];
		snprintf(want, sizeof(want), "%s:%lu: %s: ", path, line,
		    auditlog_bad_name(kind));
		assert_non_null(strstr(buf, want));
	}
	free(buf);
}

static void
test_verify_clean(void **state)
{
	struct t		*t = *state;
	struct auditlog_result	 res;
	char			*buf = NULL;
	size_t			 blen = 0;
	FILE			*out;
	char			*files[] = { t->log };

	clean_log(t, 5);
	assert_int_equal(verify1(t->log, &res), 0);
	assert_int_equal(res.kind, AUDITLOG_CLEAN);
	assert_int_equal(res.records, 7);
	assert_int_equal(res.first_seq, 1);
	assert_int_equal(res.last_seq, 7);

	out = open_memstream(&buf, &blen);
	assert_int_equal(auditlog_verify_files(t->key, files, 1, NULL, out), 0);
	fclose(out);
	assert_non_null(strstr(buf, "OK: 7 records"));
	free(buf);

	/* Under another key every record fails. */
	write_file(t->key, KEY_B, 0600);
	assert_int_equal(auditlog_verify_files(t->key, files, 1, NULL, NULL), 1);
}

static void
test_verify_edited(void **state)
{
	struct t	*t = *state;
	struct lines	 ls;
	char		*p;

	clean_log(t, 5);
	read_lines(t->log, &ls);
	p = strstr(ls.l[2], "\"uid\":1000");
	assert_non_null(p);
	memcpy(p, "\"uid\":1001", 10);
	write_lines(t->log, &ls);
	free_lines(&ls);
	expect_bad(t->log, AUDITLOG_EDITED, 3, 2);
}

static void
test_verify_removed(void **state)
{
	struct t	*t = *state;
	struct lines	 ls;

	clean_log(t, 5);
	read_lines(t->log, &ls);
	free(ls.l[2]);
	memmove(&ls.l[2], &ls.l[3], (ls.n - 3) * sizeof(char *));
	ls.n--;
	write_lines(t->log, &ls);
	free_lines(&ls);
	/* The record after the gap, now on line 3. */
	expect_bad(t->log, AUDITLOG_REMOVED, 3, 2);
}

static void
test_verify_inserted(void **state)
{
	struct t	*t = *state;
	struct lines	 ls;

	clean_log(t, 5);
	read_lines(t->log, &ls);
	/* A replayed copy of record 2 after record 4. */
	memmove(&ls.l[5], &ls.l[4], (ls.n - 4) * sizeof(char *));
	ls.l[4] = strdup(ls.l[1]);
	ls.n++;
	write_lines(t->log, &ls);
	free_lines(&ls);
	expect_bad(t->log, AUDITLOG_INSERTED, 5, 4);
}

static void
test_verify_inserted_other_chain(void **state)
{
	struct t	*t = *state;
	struct lines	 ls, other;
	char		 log2[160];

	/* A second chain under the same key, same seq numbers. */
	snprintf(log2, sizeof(log2), "%s", t->log);
	clean_log(t, 5);
	snprintf(t->log, sizeof(t->log), "%s/other.log", t->dir);
	clean_log(t, 5);
	snprintf(t->log, sizeof(t->log), "%s", log2);

	read_lines(t->log, &ls);
	snprintf(log2, sizeof(log2), "%s/other.log", t->dir);
	read_lines(log2, &other);
	free(ls.l[2]);
	ls.l[2] = strdup(other.l[2]);
	write_lines(t->log, &ls);
	free_lines(&ls);
	free_lines(&other);
	expect_bad(t->log, AUDITLOG_INSERTED, 3, 2);
}

static void
test_verify_swapped(void **state)
{
	struct t	*t = *state;
	struct lines	 ls;
	char		*tmp;

	clean_log(t, 5);
	read_lines(t->log, &ls);
	tmp = ls.l[2];
	ls.l[2] = ls.l[3];
	ls.l[3] = tmp;
	write_lines(t->log, &ls);
	free_lines(&ls);
	expect_bad(t->log, AUDITLOG_REORDERED, 3, 2);
}

static void
test_verify_truncated(void **state)
{
	struct t	*t = *state;
	struct stat	 sb;

	clean_log(t, 5);
	assert_int_equal(stat(t->log, &sb), 0);
	/* Cut in the middle of the last record. */
	assert_int_equal(truncate(t->log, sb.st_size - 40), 0);
	expect_bad(t->log, AUDITLOG_TRUNCATED, 7, 6);
	/* Only the newline missing: still a cut file. */
	assert_int_equal(truncate(t->log, 0), 0);
	assert_int_equal(unlink(t->log), 0);
	clean_log(t, 5);
	assert_int_equal(truncate(t->log, sb.st_size - 1), 0);
	expect_bad(t->log, AUDITLOG_TRUNCATED, 7, 6);
}

static void
test_verify_truncated_with_newline(void **state)
{
	struct t	*t = *state;
	struct lines	 ls;

	clean_log(t, 3);
	read_lines(t->log, &ls);
	/* A partial last record that happens to end with "\n". */
	strcpy(ls.l[ls.n - 1] + 30, "\n");
	write_lines(t->log, &ls);
	free_lines(&ls);
	expect_bad(t->log, AUDITLOG_TRUNCATED, 5, 4);

	/* The same garbage in the middle is malformed. */
	read_lines(t->log, &ls);
	{
		char *dup = strdup(ls.l[ls.n - 1]);
		ls.l[ls.n++] = dup;
	}
	write_lines(t->log, &ls);
	free_lines(&ls);
	expect_bad(t->log, AUDITLOG_MALFORMED, 5, 4);
}

static void
test_verify_foreign_key(void **state)
{
	struct t	*t = *state;
	struct lines	 ls, other;
	char		 other_log[160];

	clean_log(t, 5);
	/* The same events under another key. */
	snprintf(other_log, sizeof(other_log), "%s", t->log);
	snprintf(t->log, sizeof(t->log), "%s/other.log", t->dir);
	write_file(t->key, KEY_B "\n", 0600);
	clean_log(t, 5);
	write_file(t->key, KEY_A "\n", 0600);

	read_lines(t->log, &other);
	snprintf(t->log, sizeof(t->log), "%s", other_log);
	read_lines(t->log, &ls);
	free(ls.l[3]);
	ls.l[3] = strdup(other.l[3]);
	write_lines(t->log, &ls);
	free_lines(&ls);
	free_lines(&other);
	expect_bad(t->log, AUDITLOG_FOREIGN_KEY, 4, 3);
}

static void
test_verify_restarted(void **state)
{
	struct t	*t = *state;
	char		 old[160];
	char		*files[2];
	struct auditlog_result res;

	clean_log(t, 2);
	snprintf(old, sizeof(old), "%s/old-chain", t->dir);
	/* Not "<file>.*": the writer must not continue from it. */
	assert_int_equal(rename(t->log, old), 0);
	clean_log(t, 2);
	files[0] = t->log;
	files[1] = old;
	/* Both start at seq 1: kept in the order given. */
	assert_int_equal(verify(files, 2, &res), 1);
	assert_int_equal(res.kind, AUDITLOG_RESTARTED);
	assert_string_equal(res.file, old);
	assert_int_equal(res.line, 1);
	assert_int_equal(res.records, 4);
}

/* ------------------------------------------------------------------ */
/* The two ends of the chain                                          */

/* The mac of line lineno of path. */
static void
line_mac(const char *path, int lineno, char mac[AUDIT_MAC_HEX + 1])
{
	json_t	*o = line_json(path, lineno);

	snprintf(mac, AUDIT_MAC_HEX + 1, "%s",
	    json_string_value(json_object_get(o, "mac")));
	json_decref(o);
	assert_int_equal(strlen(mac), AUDIT_MAC_HEX);
}

/* Drop lines [first, first + count) (1-based) of path. */
static void
drop_lines(const char *path, int first, int count)
{
	struct lines	ls;
	int		i;

	read_lines(path, &ls);
	assert_true(first >= 1 && first - 1 + count <= ls.n);
	for (i = 0; i < count; i++)
		free(ls.l[first - 1 + i]);
	memmove(&ls.l[first - 1], &ls.l[first - 1 + count],
	    (ls.n - (first - 1 + count)) * sizeof(char *));
	ls.n -= count;
	write_lines(path, &ls);
	free_lines(&ls);
}

/* verify with opts; the report goes to *buf (free it). */
static int
verify_report(const char *path, const struct auditlog_opts *opts,
    struct auditlog_result *res, char **buf)
{
	struct audit_key	*k = key_a();
	char			*files[] = { (char *)path };
	size_t			 blen = 0;
	FILE			*out = open_memstream(buf, &blen);
	int			 r;

	assert_non_null(out);
	r = auditlog_verify(k, files, 1, opts, out, res);
	fclose(out);
	audit_key_free(k);
	return r;
}

static void
test_verify_end_confirmed_by_stop(void **state)
{
	struct t		*t = *state;
	struct auditlog_result	 res;
	char			*buf;

	clean_log(t, 5);
	assert_int_equal(verify_report(t->log, NULL, &res, &buf), AUDITLOG_OK);
	assert_int_equal(res.kind, AUDITLOG_CLEAN);
	assert_int_equal(res.end, AUDITLOG_END_STOP);
	assert_non_null(strstr(buf, "OK: 7 records verified in 1 file"));
	assert_non_null(strstr(buf, "end: a \"stop\" record"));
	free(buf);

	/* The stop record cut away: the chain holds, its end is unknown. */
	drop_lines(t->log, 7, 1);
	assert_int_equal(verify_report(t->log, NULL, &res, &buf),
	    AUDITLOG_UNCONFIRMED);
	assert_int_equal(res.kind, AUDITLOG_CLEAN);
	assert_int_equal(res.end, AUDITLOG_END_UNCONFIRMED);
	assert_int_equal(res.last_seq, 6);
	assert_non_null(strstr(buf, "UNCONFIRMED END: 6 records verified"));
	assert_non_null(strstr(buf, "-c CONFIG"));
	assert_non_null(strstr(buf, "--to SEQ"));
	assert_null(strstr(buf, "OK:"));
	free(buf);
}

static void
test_verify_tail_removed(void **state)
{
	struct t		*t = *state;
	struct auditlog_opts	 o = { 0 };
	struct auditlog_result	 res;
	char			 head[AUDIT_MAC_HEX + 1], mac5[AUDIT_MAC_HEX + 1];
	char			*buf;

	clean_log(t, 5);
	line_mac(t->log, 7, head);
	line_mac(t->log, 5, mac5);

	/* The daemon's head is the last line: confirmed. */
	o.head_seq = 7;
	o.head_mac = head;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_OK);
	assert_int_equal(res.end, AUDITLOG_END_HEAD);
	free(buf);
	/* An older head: records written after it are no tampering. */
	o.head_seq = 5;
	o.head_mac = mac5;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_OK);
	assert_int_equal(res.end, AUDITLOG_END_HEAD);
	free(buf);
	/* The right seq with another mac is not the daemon's record. */
	o.head_mac = head;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_MISMATCH);
	assert_int_equal(res.line, 5);
	free(buf);

	/* The last two records cut at a line boundary: the chain holds... */
	drop_lines(t->log, 6, 2);
	assert_int_equal(verify_report(t->log, NULL, &res, &buf),
	    AUDITLOG_UNCONFIRMED);
	free(buf);
	/* ...the daemon's head shows the cut, at the last line left... */
	o.head_seq = 7;
	o.head_mac = head;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_TAIL_REMOVED);
	assert_string_equal(res.file, t->log);
	assert_int_equal(res.line, 5);
	assert_int_equal(res.records, 5);
	assert_non_null(strstr(buf, ":5: tail-removed: the chain ends at seq 5, "
	    "but the daemon's last record is seq 7: records 6..7 are missing"));
	free(buf);
	/* ...and so does --to. */
	memset(&o, 0, sizeof(o));
	o.to = 7;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_TAIL_REMOVED);
	assert_int_equal(res.line, 5);
	assert_non_null(strstr(buf, "records 6..7 are missing from its end"));
	free(buf);
	o.to = 5;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_OK);
	assert_int_equal(res.end, AUDITLOG_END_TO);
	free(buf);
	/* A chain that goes on past --to is not the one asserted. */
	o.to = 4;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_MISMATCH);
	assert_int_equal(res.line, 5);
	assert_int_equal(res.records, 4);
	free(buf);
}

static void
test_verify_head_removed(void **state)
{
	struct t		*t = *state;
	struct auditlog_opts	 o = { 0 };
	struct auditlog_result	 res;
	char			*buf;

	clean_log(t, 5);
	/* --from past the start: those are not the records asserted. */
	o.from = 3;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_MISMATCH);
	assert_int_equal(res.line, 1);
	free(buf);

	drop_lines(t->log, 1, 1);
	assert_int_equal(verify_report(t->log, NULL, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_HEAD_REMOVED);
	assert_string_equal(res.file, t->log);
	assert_int_equal(res.line, 1);
	assert_int_equal(res.records, 0);
	assert_non_null(strstr(buf, ":1: head-removed: the chain starts at seq "
	    "2, not 1: records 1..1 are missing before it"));
	assert_non_null(strstr(buf, "--from SEQ"));
	assert_null(strstr(buf, "OK"));
	free(buf);
	/* Retention deleted them: said with --from, the rest is sound. */
	o.from = 2;
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_OK);
	assert_int_equal(res.first_seq, 2);
	assert_int_equal(res.records, 6);
	free(buf);

	/* Another record gone from the head: --from 2 sees it. */
	drop_lines(t->log, 1, 1);
	assert_int_equal(verify_report(t->log, &o, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_HEAD_REMOVED);
	assert_non_null(strstr(buf, "records 2..2 are missing before it"));
	assert_null(strstr(buf, "--from SEQ"));
	free(buf);

	/* Nothing at all left. */
	write_file(t->log, "", 0600);
	assert_int_equal(verify_report(t->log, NULL, &res, &buf), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_HEAD_REMOVED);
	assert_int_equal(res.line, 0);
	assert_non_null(strstr(buf, "no record at all"));
	free(buf);
}

/*
 * The six kinds of tampering, in a chain of two files (the rotated one
 * and the current one): start + 3 accesses | 3 accesses + stop.
 */
static void
two_files(struct t *t, const char *rotated)
{
	struct audit	*a;
	struct caller	 c;
	int		 i;

	unlink(t->log);
	unlink(rotated);
	a = open_audit(t);
	container_caller(&c, "web", ID1);
	for (i = 0; i < 3; i++)
		assert_int_equal(access_one(a, "a", &c, AUDIT_OUTCOME_ALLOW), 0);
	assert_int_equal(rename(t->log, rotated), 0);
	assert_int_equal(audit_reopen(a), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(access_one(a, "b", &c, AUDIT_OUTCOME_DENY), 0);
	audit_close(a);
}

static void
expect_bad2(struct t *t, const char *rotated, enum auditlog_bad kind,
    const char *file, unsigned long line, uint64_t records)
{
	struct auditlog_result	res;
	char			*files[] = { t->log, (char *)rotated };

	assert_int_equal(verify(files, 2, &res), AUDITLOG_BAD);
	if (res.kind != kind || res.line != line)
		fail_msg("expected %s at %s:%lu, got %s at %s:%lu: %s",
		    auditlog_bad_name(kind), file, line,
		    auditlog_bad_name(res.kind), res.file, res.line, res.detail);
	assert_string_equal(res.file, file);
	assert_int_equal(res.records, records);
}

static void
test_verify_tampering_across_two_files(void **state)
{
	struct t		*t = *state;
	struct auditlog_result	 res;
	struct lines		 a, b, other;
	char			 rotated[200], other_log[160], keep[160];
	char			*files[2], *tmp;
	struct stat		 sb;

	snprintf(rotated, sizeof(rotated), "%s.1", t->log);
	two_files(t, rotated);
	files[0] = t->log;
	files[1] = rotated;
	assert_int_equal(verify(files, 2, &res), AUDITLOG_OK);
	assert_int_equal(res.records, 8);
	read_lines(rotated, &a);
	read_lines(t->log, &b);
	assert_int_equal(a.n, 4);
	assert_int_equal(b.n, 4);
	free_lines(&a);
	free_lines(&b);

	/* edited: a denial in the second file made an allow. */
	read_lines(t->log, &b);
	tmp = strstr(b.l[1], "\"outcome\":\"deny\"");
	assert_non_null(tmp);
	memcpy(tmp, "\"outcome\":\"allo\"", 16);
	write_lines(t->log, &b);
	free_lines(&b);
	expect_bad2(t, rotated, AUDITLOG_EDITED, t->log, 2, 5);

	/* removed: the last record of the first file. */
	two_files(t, rotated);
	drop_lines(rotated, 4, 1);
	expect_bad2(t, rotated, AUDITLOG_REMOVED, t->log, 1, 3);
	/* removed: the first record of the second file. */
	two_files(t, rotated);
	drop_lines(t->log, 1, 1);
	expect_bad2(t, rotated, AUDITLOG_REMOVED, t->log, 1, 4);

	/* swapped across the boundary: seq 4 and seq 5 trade files. */
	two_files(t, rotated);
	read_lines(rotated, &a);
	read_lines(t->log, &b);
	tmp = a.l[3];
	a.l[3] = b.l[0];
	b.l[0] = tmp;
	write_lines(rotated, &a);
	write_lines(t->log, &b);
	free_lines(&a);
	free_lines(&b);
	expect_bad2(t, rotated, AUDITLOG_REORDERED, rotated, 4, 3);

	/* inserted: a copy of a record of the first file in the second. */
	two_files(t, rotated);
	read_lines(rotated, &a);
	read_lines(t->log, &b);
	memmove(&b.l[2], &b.l[1], (b.n - 1) * sizeof(char *));
	b.l[1] = strdup(a.l[2]);
	b.n++;
	write_lines(t->log, &b);
	free_lines(&a);
	free_lines(&b);
	expect_bad2(t, rotated, AUDITLOG_INSERTED, t->log, 2, 5);

	/* truncated: the first file cut in its last record. */
	two_files(t, rotated);
	assert_int_equal(stat(rotated, &sb), 0);
	assert_int_equal(truncate(rotated, sb.st_size - 30), 0);
	expect_bad2(t, rotated, AUDITLOG_TRUNCATED, rotated, 4, 3);

	/* foreign key: a record of the same chain written under key B. */
	snprintf(keep, sizeof(keep), "%s", t->log);
	snprintf(other_log, sizeof(other_log), "%s/other.log", t->dir);
	snprintf(t->log, sizeof(t->log), "%s", other_log);
	write_file(t->key, KEY_B "\n", 0600);
	clean_log(t, 6);
	write_file(t->key, KEY_A "\n", 0600);
	snprintf(t->log, sizeof(t->log), "%s", keep);
	two_files(t, rotated);
	read_lines(other_log, &other);
	read_lines(t->log, &b);
	free(b.l[2]);
	b.l[2] = strdup(other.l[6]);
	write_lines(t->log, &b);
	free_lines(&b);
	free_lines(&other);
	expect_bad2(t, rotated, AUDITLOG_FOREIGN_KEY, t->log, 3, 6);
}

/* ------------------------------------------------------------------ */
/* Continuity                                                         */

static void
test_reopen_after_rename(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	struct caller		 c;
	struct auditlog_result	 res;
	struct lines		 l1, l2;
	char			 rotated[200];
	char			*files[2];
	json_t			*o;

	container_caller(&c, "web", ID1);
	assert_int_equal(access_one(a, "a", &c, AUDIT_OUTCOME_ALLOW), 0);
	assert_int_equal(access_one(a, "b", &c, AUDIT_OUTCOME_ALLOW), 0);
	snprintf(rotated, sizeof(rotated), "%s.1", t->log);
	assert_int_equal(rename(t->log, rotated), 0);
	/* Still the old inode until SIGHUP: mv is not a failure. */
	assert_int_equal(access_one(a, "c", &c, AUDIT_OUTCOME_ALLOW), 0);
	assert_int_equal(audit_reopen(a), 0);
	/* Reopening the same file again changes nothing. */
	assert_int_equal(audit_reopen(a), 0);
	assert_int_equal(access_one(a, "d", &c, AUDIT_OUTCOME_DENY), 0);
	audit_close(a);

	read_lines(rotated, &l1);
	read_lines(t->log, &l2);
	assert_int_equal(l1.n, 4);
	assert_int_equal(l2.n, 2);
	o = json_loads(l2.l[0], 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(o, "seq")), 5);
	assert_memory_equal(json_string_value(json_object_get(o, "prev")),
	    l1.l[3] + strlen(l1.l[3]) - 1 - 2 - 64, 64);
	json_decref(o);
	free_lines(&l1);
	free_lines(&l2);

	/* Given newest first, as a shell glob does: sorted by first seq. */
	files[0] = t->log;
	files[1] = rotated;
	assert_int_equal(verify(files, 2, &res), 0);
	assert_int_equal(res.records, 6);
	assert_string_equal(files[0], rotated);

	/*
	 * The new file alone has lost its head; it is a clean part of the
	 * chain when told where it starts.
	 */
	assert_int_equal(verify1(t->log, &res), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_HEAD_REMOVED);
	assert_int_equal(res.line, 1);
	{
		struct auditlog_opts o = { .from = 5 };
		char *f1[] = { t->log };

		assert_int_equal(verify_opts(f1, 1, &o, &res), AUDITLOG_OK);
		assert_int_equal(res.first_seq, 5);
		assert_int_equal(res.end, AUDITLOG_END_STOP);
	}

	/* A removed middle file shows as a gap. */
	{
		char *f3[] = { rotated, t->log };
		struct lines ls;

		read_lines(rotated, &ls);
		free(ls.l[--ls.n]);
		write_lines(rotated, &ls);
		free_lines(&ls);
		assert_int_equal(verify(f3, 2, &res), 1);
		assert_int_equal(res.kind, AUDITLOG_REMOVED);
		assert_string_equal(res.file, t->log);
		assert_int_equal(res.line, 1);
	}
}

static void
test_restart_continues_chain(void **state)
{
	struct t		*t = *state;
	struct auditlog_result	 res;
	struct audit		*a;
	struct audit_stats	 st;

	clean_log(t, 2);
	a = open_audit(t);
	audit_get_stats(a, &st);
	assert_int_equal(st.seq, 5);
	audit_close(a);
	assert_int_equal(verify1(t->log, &res), 0);
	assert_int_equal(res.records, 6);
}

static void
test_continue_from_rotated_sibling(void **state)
{
	struct t		*t = *state;
	struct auditlog_result	 res;
	char			 rotated[200], junk[200];
	char			*files[2];

	clean_log(t, 2);
	snprintf(rotated, sizeof(rotated), "%s.20260101T000000.000000Z",
	    t->log);
	assert_int_equal(rename(t->log, rotated), 0);
	/* A sibling we cannot continue is ignored, not fatal. */
	snprintf(junk, sizeof(junk), "%s.2.gz", t->log);
	write_file(junk, "\x1f\x8b garbage", 0600);
	/* logrotate's "create": an empty file at the path. */
	write_file(t->log, "", 0600);
	clean_log(t, 1);
	files[0] = t->log;
	files[1] = rotated;
	assert_int_equal(verify(files, 2, &res), 0);
	assert_int_equal(res.records, 7);
}

static void
test_open_refuses_bad_tail(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a;
	struct stat		 sb;
	char			 err[512];
	char			*before;
	struct lines		 ls;

	clean_log(t, 2);
	config(t, &cfg);

	/* A partial last line. */
	assert_int_equal(stat(t->log, &sb), 0);
	assert_int_equal(truncate(t->log, sb.st_size - 10), 0);
	before = slurp(t->log);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), -EBADMSG);
	assert_null(a);
	assert_non_null(strstr(err, "partial record"));
	{
		/* Nothing was appended: the chain is not forked. */
		char *after = slurp(t->log);
		assert_string_equal(before, after);
		free(after);
	}
	free(before);

	/* An edited last record. */
	assert_int_equal(unlink(t->log), 0);
	clean_log(t, 2);
	read_lines(t->log, &ls);
	/* Still valid JSON: only the MAC can tell. */
	strstr(ls.l[ls.n - 1], "\"stop\"")[4] = 'q';
	write_lines(t->log, &ls);
	free_lines(&ls);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "MAC"));

	/* Written under another key. */
	assert_int_equal(unlink(t->log), 0);
	clean_log(t, 2);
	write_file(t->key, KEY_B "\n", 0600);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "another key"));

	/* Not an audit file. */
	write_file(t->log, "hello\n", 0600);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), -EBADMSG);
	audit_config_clear(&cfg);
}

static void
test_key_file_rules(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a;
	char			 err[512];

	config(t, &cfg);
	write_file(t->key, "too-short\n", 0600);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "must be"));
	write_file(t->key, KEY_A "\n", 0644);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), -EPERM);
	audit_config_clear(&cfg);
	/* Nothing was written without a key. */
	assert_int_equal(access(t->log, F_OK), -1);
}

/* ------------------------------------------------------------------ */
/* Failing closed                                                     */

#define CHILD_CHECK(cond, code) do { if (!(cond)) _exit(code); } while (0)

static void
test_fail_closed_partial_write(void **state)
{
	struct t		*t = *state;
	struct auditlog_result	 res;
	pid_t			 pid;
	int			 status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char			 why[256];
		CHILD_CHECK(secmem_init_child(8u << 20, why, sizeof(why)) == 0, 1);
		struct audit		*a = open_audit(t);
		struct caller		 c;
		struct audit_stats	 st;
		struct rlimit		 rl;
		struct stat		 sb;
		uint64_t		 size;

		container_caller(&c, "web", ID1);
		CHILD_CHECK(!audit_allow_on_failure(a), 2);
		CHILD_CHECK(access_one(a, "x", &c, AUDIT_OUTCOME_ALLOW) == 0, 3);
		audit_get_stats(a, &st);
		CHILD_CHECK(st.seq == 2, 4);
		size = st.file_size;

		/* Room for part of a record: write(2) is cut short, then EFBIG. */
		signal(SIGXFSZ, SIG_IGN);
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = size + 40;
		CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 5);
		CHILD_CHECK(access_one(a, "y", &c, AUDIT_OUTCOME_ALLOW) == -EIO, 6);
		audit_get_stats(a, &st);
		CHILD_CHECK(st.seq == 2 && st.failures == 1, 7);
		CHILD_CHECK(st.last_error == EFBIG, 8);
		CHILD_CHECK(stat(t->log, &sb) == 0 && (uint64_t)sb.st_size == size,
		    9);

		/* No room at all. */
		rl.rlim_cur = size;
		CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 10);
		CHILD_CHECK(access_one(a, "y", &c, AUDIT_OUTCOME_ALLOW) == -EIO,
		    11);
		audit_get_stats(a, &st);
		CHILD_CHECK(st.seq == 2 && st.failures == 2, 12);

		/* Room again: the chain goes on from where it was. */
		rl.rlim_cur = rl.rlim_max;
		CHILD_CHECK(setrlimit(RLIMIT_FSIZE, &rl) == 0, 13);
		CHILD_CHECK(access_one(a, "z", &c, AUDIT_OUTCOME_ALLOW) == 0, 14);
		audit_get_stats(a, &st);
		CHILD_CHECK(st.seq == 3, 15);
		audit_close(a);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(verify1(t->log, &res), 0);
	assert_int_equal(res.records, 4);	/* start, x, z, stop */
}

static void
test_deleted_file_fails(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	struct caller		 c;
	struct audit_stats	 st;
	struct auditlog_result	 res;

	container_caller(&c, "web", ID1);
	assert_int_equal(access_one(a, "a", &c, AUDIT_OUTCOME_ALLOW), 0);
	assert_int_equal(unlink(t->log), 0);
	assert_int_equal(access_one(a, "b", &c, AUDIT_OUTCOME_ALLOW), -EIO);
	audit_get_stats(a, &st);
	assert_int_equal(st.seq, 2);
	assert_int_equal(st.last_error, ENOENT);
	assert_int_equal(audit_reopen(a), 0);
	assert_int_equal(access_one(a, "c", &c, AUDIT_OUTCOME_ALLOW), 0);
	audit_close(a);
	/* The records of the deleted file are missing from the head... */
	assert_int_equal(verify1(t->log, &res), AUDITLOG_BAD);
	assert_int_equal(res.kind, AUDITLOG_HEAD_REMOVED);
	/* ...and the rest is sound. */
	{
		struct auditlog_opts o = { .from = 3 };
		char *f1[] = { t->log };

		assert_int_equal(verify_opts(f1, 1, &o, &res), AUDITLOG_OK);
		assert_int_equal(res.first_seq, 3);
		assert_int_equal(res.records, 2);
	}
}

static void
test_on_failure_allow(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a;
	char			 err[256];

	config(t, &cfg);
	cfg.on_failure = AUDIT_ON_FAILURE_ALLOW;
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), 0);
	assert_true(audit_allow_on_failure(a));
	audit_close(a);
	audit_config_clear(&cfg);
}

static void
test_reopen_refuses_foreign_file(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	struct caller		 c;
	struct auditlog_result	 res;
	char			 rotated[200], other[160];

	container_caller(&c, "web", ID1);
	assert_int_equal(access_one(a, "a", &c, AUDIT_OUTCOME_ALLOW), 0);
	snprintf(rotated, sizeof(rotated), "%s.1", t->log);
	assert_int_equal(rename(t->log, rotated), 0);
	/* Someone puts an unrelated chain at the path. */
	snprintf(other, sizeof(other), "%s/x.log", t->dir);
	{
		char saved[160];
		snprintf(saved, sizeof(saved), "%s", t->log);
		snprintf(t->log, sizeof(t->log), "%s", other);
		clean_log(t, 1);
		snprintf(t->log, sizeof(t->log), "%s", saved);
	}
	assert_int_equal(rename(other, t->log), 0);
	assert_int_equal(audit_reopen(a), -EBADMSG);
	/* Records keep going to the file we had. */
	assert_int_equal(access_one(a, "b", &c, AUDIT_OUTCOME_ALLOW), 0);
	audit_close(a);
	assert_int_equal(verify1(rotated, &res), 0);
	assert_int_equal(res.records, 4);
}

/* ------------------------------------------------------------------ */
/* Rotation, threads, outputs                                         */

static int
rotated_files(struct t *t, char **files, int max)
{
	DIR		*d = opendir(t->dir);
	struct dirent	*de;
	int		 n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < max) {
		if (strncmp(de->d_name, "audit.log", 9) != 0)
			continue;
		if (asprintf(&files[n++], "%s/%s", t->dir, de->d_name) < 0)
			fail();
	}
	closedir(d);
	return n;
}

static void
test_size_rotation(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a;
	struct audit_stats	 st;
	struct auditlog_result	 res;
	struct caller		 c;
	struct stat		 sb;
	char			 err[256], *files[64];
	int			 i, n;

	config(t, &cfg);
	cfg.max_size = 4096;
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), 0);
	audit_config_clear(&cfg);
	container_caller(&c, "web", ID1);
	for (i = 0; i < 40; i++)
		assert_int_equal(access_one(a, "db_password", &c,
		    AUDIT_OUTCOME_ALLOW), 0);
	audit_get_stats(a, &st);
	assert_true(st.rotations >= 3);
	assert_int_equal(st.rotate_errors, 0);
	assert_true(st.file_size < 4096);
	audit_close(a);

	n = rotated_files(t, files, 64);
	assert_int_equal((uint64_t)n, st.rotations + 1);
	for (i = 0; i < n; i++) {
		assert_int_equal(stat(files[i], &sb), 0);
		if (strcmp(files[i], t->log) != 0) {
			/* audit.log.20261122T131714.123456Z */
			const char *sfx = files[i] + strlen(t->log);
			assert_int_equal(strlen(sfx), 24);
			assert_true(sfx[0] == '.' && sfx[9] == 'T' &&
			    sfx[16] == '.' && sfx[23] == 'Z');
			assert_true(sb.st_size >= 4096 && sb.st_size < 4096 + 1024);
		}
	}
	assert_int_equal(verify(files, n, &res), 0);
	assert_int_equal(res.records, 42);
	assert_int_equal(res.first_seq, 1);
	for (i = 0; i < n; i++)
		free(files[i]);
}

struct worker {
	struct audit	*a;
	int		 id;
	int		 fails;
};

static void *
worker(void *arg)
{
	struct worker	*w = arg;
	struct caller	 c;
	char		 name[32];
	int		 i;

	container_caller(&c, "web", ID1);
	c.pid = 1000 + w->id;
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "s%d-%d", w->id, i);
		if (access_one(w->a, name, &c, AUDIT_OUTCOME_ALLOW) != 0)
			w->fails++;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a;
	struct auditlog_result	 res;
	struct worker		 w[8];
	pthread_t		 th[8];
	char			 err[256];
	int			 i;

	config(t, &cfg);
	cfg.flush_interval_ms = 5;	/* the flusher runs during the test */
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), 0);
	assert_int_equal(audit_start(a), 0);
	assert_int_equal(audit_start(a), 0);	/* again: nothing more */
	audit_config_clear(&cfg);
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){ .a = a, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].fails, 0);
	}
	assert_int_equal(audit_flush(a), 0);
	audit_close(a);
	assert_int_equal(verify1(t->log, &res), 0);
	assert_int_equal(res.records, 8 * 200 + 2);
}

static void
test_syslog_and_stdout(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a;
	struct sockaddr_un	 sun = { .sun_family = AF_UNIX };
	struct caller		 c;
	struct lines		 ls;
	char			 err[256], buf[8192];
	ssize_t			 n;
	int			 s, i;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/log.sock", t->dir);
	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);

	config(t, &cfg);
	cfg.syslog = true;
	cfg.syslog_socket = strdup(sun.sun_path);
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), 0);
	audit_config_clear(&cfg);
	container_caller(&c, "web", ID1);
	assert_int_equal(access_one(a, "db_password", &c, AUDIT_OUTCOME_ALLOW),
	    0);
	audit_close(a);

	read_lines(t->log, &ls);
	for (i = 0; i < 3; i++) {
		n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);
		assert_true(n > 0);
		buf[n] = '\0';
		/* <authpriv.info>1 TIME HOST APP PID MSGID - MSG */
		assert_memory_equal(buf, "<86>1 ", 6);
		assert_memory_equal(buf + 6, ls.l[i] + 9, 27);
		assert_non_null(strstr(buf, " testhost secretsfs "));
		assert_non_null(strstr(buf, " audit - {"));
		/* MSG is the line, without its newline. */
		ls.l[i][strlen(ls.l[i]) - 1] = '\0';
		assert_string_equal(strstr(buf, " - {") + 3, ls.l[i]);
	}
	free_lines(&ls);
	close(s);
}

/* ------------------------------------------------------------------ */
/* Show                                                               */

static char *
show(struct t *t, const struct auditlog_filter *f, bool json, int *rc)
{
	char	*buf = NULL, *files[] = { t->log };
	size_t	 len = 0;
	FILE	*out = open_memstream(&buf, &len);

	*rc = auditlog_show(files, 1, f, json, out);
	fclose(out);
	return buf;
}

static int
count_lines(const char *s)
{
	int	n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
test_show(void **state)
{
	struct t		*t = *state;
	struct audit		*a = open_audit(t);
	struct caller		 web, db;
	struct auditlog_filter	 f;
	char			*out;
	int			 rc;

	container_caller(&web, "web", ID1);
	container_caller(&db, "db", ID2);
	assert_int_equal(access_one(a, "db_password", &web, AUDIT_OUTCOME_ALLOW), 0);
	assert_int_equal(access_one(a, "db_password", &db, AUDIT_OUTCOME_DENY), 0);
	assert_int_equal(access_one(a, "api_token", &web, AUDIT_OUTCOME_ALLOW), 0);
	audit_close(a);

	out = show(t, NULL, true, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(count_lines(out), 5);
	free(out);

	f = (struct auditlog_filter){ .secret = "db_*" };
	out = show(t, &f, true, &rc);
	assert_int_equal(count_lines(out), 2);
	free(out);

	f = (struct auditlog_filter){ .container = "web" };
	out = show(t, &f, true, &rc);
	assert_int_equal(count_lines(out), 2);
	assert_null(strstr(out, ID2));
	free(out);

	f = (struct auditlog_filter){ .container = "aaaabbbbcccc" };
	out = show(t, &f, true, &rc);
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "\"outcome\":\"deny\""));
	free(out);

	f = (struct auditlog_filter){ .since = "1h" };
	out = show(t, &f, true, &rc);
	assert_int_equal(count_lines(out), 5);
	free(out);

	f = (struct auditlog_filter){ .since = "2999-01-01T00:00:00Z" };
	out = show(t, &f, true, &rc);
	assert_int_equal(count_lines(out), 0);
	free(out);

	f = (struct auditlog_filter){ .since = "yesterday-ish" };
	out = show(t, &f, true, &rc);
	assert_int_equal(rc, -EINVAL);
	free(out);

	/* The table: a header and one row per record. */
	f = (struct auditlog_filter){ .secret = "api_token" };
	out = show(t, &f, false, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(count_lines(out), 2);
	assert_non_null(strstr(out, "TIME"));
	assert_non_null(strstr(out, "CONTAINER"));
	assert_non_null(strstr(out, "api_token"));
	assert_non_null(strstr(out, " web "));
	assert_non_null(strstr(out, "payments-db"));
	assert_non_null(strstr(out, "4242"));
	free(out);
}

static void
test_parse_since(void **state)
{
	int64_t	us, now = 1800000000LL * 1000000;

	(void)state;
	assert_int_equal(auditlog_parse_since("2026-11-22T13:17:14Z", now, &us), 0);
	assert_int_equal(us, 1795353434LL * 1000000);
	assert_int_equal(auditlog_parse_since("2026-11-22T13:17:14.5Z", now,
	    &us), 0);
	assert_int_equal(us, 1795353434LL * 1000000 + 500000);
	assert_int_equal(auditlog_parse_since("2026-11-22T15:17:14+02:00", now,
	    &us), 0);
	assert_int_equal(us, 1795353434LL * 1000000);
	assert_int_equal(auditlog_parse_since("2026-11-22", now, &us), 0);
	assert_int_equal(us, 1795305600LL * 1000000);
	assert_int_equal(auditlog_parse_since("1h", now, &us), 0);
	assert_int_equal(us, now - 3600LL * 1000000);
	assert_int_equal(auditlog_parse_since("2026-13-01", now, &us), -EINVAL);
	assert_int_equal(auditlog_parse_since("2026-11-22T13:17", now, &us),
	    -EINVAL);
	assert_int_equal(auditlog_parse_since("", now, &us), -EINVAL);
}

/* Denied records beyond the per-caller limit are counted, then summed up. */
static void
test_denied_limit(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a = NULL;
	struct audit_access	 acc;
	struct caller		 c1, c2;
	struct lines		 ls;
	char			 err[512] = "";
	const char		*ev;
	int			 i, full1 = 0, full2 = 0, allowed = 0, summ = 0;
	json_t			*o;

	config(t, &cfg);
	cfg.denied_per_caller = 3;
	cfg.denied_interval_ms = 3600 * 1000;
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), 0);
	audit_config_clear(&cfg);
	container_caller(&c1, "noisy", ID1);
	container_caller(&c2, "quiet", ID2);
	memset(&acc, 0, sizeof(acc));
	acc.backend = "dev";
	acc.outcome = AUDIT_OUTCOME_DENY;
	acc.err = ENOENT;
	for (i = 0; i < 10; i++) {
		acc.caller = &c1;
		acc.secret = i % 2 ? "x" : "y";
		assert_int_equal(audit_lookup_denied(a, &acc), 0);
	}
	acc.caller = &c2;
	acc.secret = "z";
	assert_int_equal(audit_access(a, &acc), 0);
	/* Allowed accesses are never limited. */
	acc.caller = &c1;
	acc.outcome = AUDIT_OUTCOME_ALLOW;
	acc.err = 0;
	for (i = 0; i < 10; i++)
		assert_int_equal(audit_access(a, &acc), 0);
	audit_close(a);

	read_lines(t->log, &ls);
	for (i = 0; i < ls.n; i++) {
		o = json_loads(ls.l[i], 0, NULL);
		assert_non_null(o);
		ev = json_string_value(json_object_get(o, "event"));
		if (strcmp(ev, "lookup_denied") == 0)
			full1++;
		else if (strcmp(ev, "access") == 0 && strcmp(json_string_value(
		    json_object_get(o, "outcome")), "deny") == 0)
			full2++;
		else if (strcmp(ev, "access") == 0)
			allowed++;
		else if (strcmp(ev, "denied_summary") == 0) {
			summ++;
			assert_int_equal(json_integer_value(json_object_get(o,
			    "count")), 7);
			assert_string_equal(json_string_value(json_object_get(
			    json_object_get(o, "container"), "id")), ID1);
			assert_string_equal(json_string_value(json_object_get(o,
			    "outcome")), "deny");
			assert_int_equal(strlen(json_string_value(
			    json_object_get(o, "names_hash"))), 8 + 16);
			/* Written before the stop record. */
			assert_true(i == ls.n - 2);
		}
		json_decref(o);
	}
	free_lines(&ls);
	assert_int_equal(full1, 3);
	assert_int_equal(full2, 1);
	assert_int_equal(allowed, 10);
	assert_int_equal(summ, 1);
	assert_int_equal(verify1(t->log, NULL), 0);
}

/* With a flusher, a caller gone quiet gets its summary without waiting. */
static void
test_denied_summary_in_time(void **state)
{
	struct t		*t = *state;
	struct audit_config	 cfg;
	struct audit		*a = NULL;
	struct audit_access	 acc;
	struct caller		 c;
	char			 err[512] = "", *text;
	int			 i;

	config(t, &cfg);
	cfg.flush_interval_ms = 100;
	cfg.denied_per_caller = 1;
	cfg.denied_interval_ms = 1000;
	assert_int_equal(audit_open(&cfg, &a, err, sizeof(err)), 0);
	audit_config_clear(&cfg);
	assert_int_equal(audit_start(a), 0);
	container_caller(&c, "noisy", ID1);
	memset(&acc, 0, sizeof(acc));
	acc.secret = "x";
	acc.outcome = AUDIT_OUTCOME_DENY;
	acc.err = ENOENT;
	acc.caller = &c;
	for (i = 0; i < 5; i++)
		assert_int_equal(audit_lookup_denied(a, &acc), 0);
	for (i = 0; i < 40; i++) {
		text = slurp(t->log);
		if (strstr(text, "\"denied_summary\"") != NULL) {
			assert_non_null(strstr(text, "\"count\":4,"));
			free(text);
			break;
		}
		free(text);
		usleep(50 * 1000);
	}
	assert_true(i < 40);
	audit_close(a);
	assert_int_equal(verify1(t->log, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_ok),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_limits),
		cmocka_unit_test(test_parse_since),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_record_fields),
		T(test_record_unknowns_are_null),
		T(test_record_hostile_strings),
		T(test_mac_chain),
		T(test_event_api),
		T(test_verify_clean),
		T(test_verify_edited),
		T(test_verify_removed),
		T(test_verify_inserted),
		T(test_verify_inserted_other_chain),
		T(test_verify_swapped),
		T(test_verify_truncated),
		T(test_verify_truncated_with_newline),
		T(test_verify_foreign_key),
		T(test_verify_restarted),
		T(test_verify_end_confirmed_by_stop),
		T(test_verify_tail_removed),
		T(test_verify_head_removed),
		T(test_verify_tampering_across_two_files),
		T(test_reopen_after_rename),
		T(test_restart_continues_chain),
		T(test_continue_from_rotated_sibling),
		T(test_open_refuses_bad_tail),
		T(test_key_file_rules),
		T(test_fail_closed_partial_write),
		T(test_deleted_file_fails),
		T(test_on_failure_allow),
		T(test_reopen_refuses_foreign_file),
		T(test_size_rotation),
		T(test_threads),
		T(test_syslog_and_stdout),
		T(test_show),
		T(test_denied_limit),
		T(test_denied_summary_in_time),
#undef T
	};

	return cmocka_run_group_tests(tests, arena_setup, NULL);
}
