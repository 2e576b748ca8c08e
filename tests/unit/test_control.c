/*
 * control: the request parser on good and hostile lines, the socket path,
 * the renderers (Prometheus text that a strict reader accepts, status JSON
 * that parses), and the server end to end over a real socket, a real
 * broker and the file backend: status, metrics, flush, refresh, health,
 * and who has not reopened a secret since it changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/broker.h>
#include <secretsfs/control.h>
#include <secretsfs/log.h>
#include <secretsfs/secmem.h>

static int
parse(const char *line, struct control_cmd *c)
{
	return control_parse(line, strlen(line), c);
}

static void
test_parse_good_requests(void **state)
{
	struct control_cmd c;

	(void)state;
	assert_int_equal(parse("status", &c), 0);
	assert_int_equal(c.verb, CONTROL_STATUS);
	assert_false(c.json);
	assert_int_equal(parse("status json", &c), 0);
	assert_true(c.json);
	assert_int_equal(parse("metrics", &c), 0);
	assert_int_equal(c.verb, CONTROL_METRICS);
	assert_int_equal(parse("health", &c), 0);
	assert_int_equal(c.verb, CONTROL_HEALTH);
	assert_int_equal(parse("flush", &c), 0);
	assert_int_equal(c.verb, CONTROL_FLUSH);
	assert_false(c.has_name);
	assert_int_equal(parse("flush db_password", &c), 0);
	assert_true(c.has_name);
	assert_string_equal(c.name, "db_password");
	assert_int_equal(parse("refresh tls.crt", &c), 0);
	assert_int_equal(c.verb, CONTROL_REFRESH);
	assert_string_equal(c.name, "tls.crt");
	/* Names may hold spaces and UTF-8, as config names may. */
	assert_int_equal(parse("refresh my key é", &c), 0);
	assert_string_equal(c.name, "my key é");
	/* Not NUL-terminated: only len bytes count. */
	assert_int_equal(control_parse("flush abcdef", 8, &c), 0);
	assert_string_equal(c.name, "ab");
}

static void
test_parse_refuses_everything_else(void **state)
{
	static const char *const bad[] = {
		"", " ", "status ", "status  json", "status xml", "Status",
		"metrics now", "health check", "refresh", "refresh ",
		"refresh a/b", "refresh .", "refresh ..", "flush  x", "flush ../x",
		"flush x\r", "refresh a\tb", "refresh \x7f", "rm -rf /",
		"statusjson", " status", "flushx", "refresh\x01",
	};
	struct control_cmd c;
	char big[CONTROL_LINE_MAX + 8], name[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &c), -EINVAL);
	/* An embedded NUL is a control byte like any other. */
	assert_int_equal(control_parse("flush a\0b", 9, &c), -EINVAL);
	memset(name, 'n', sizeof(name));
	snprintf(big, sizeof(big), "refresh %.*s", CONTROL_NAME_MAX, name);
	assert_int_equal(parse(big, &c), 0);
	assert_int_equal(strlen(c.name), CONTROL_NAME_MAX);
	snprintf(big, sizeof(big), "refresh %.*s", CONTROL_NAME_MAX + 1, name);
	assert_int_equal(parse(big, &c), -ENAMETOOLONG);
	memset(big, 'x', sizeof(big));
	assert_int_equal(control_parse(big, CONTROL_LINE_MAX, &c), -E2BIG);
	/* Every byte value at every position of a short line: no crash. */
	for (i = 0; i < 256; i++) {
		char line[] = "flush ab";

		line[6] = (char)i;
		(void)control_parse(line, sizeof(line) - 1, &c);
		line[2] = (char)i;
		(void)control_parse(line, sizeof(line) - 1, &c);
	}
}

static void
test_socket_path(void **state)
{
	char buf[256], longpath[200];

	(void)state;
	assert_int_equal(control_socket_path(NULL, "/run/secretsfs", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/run/secretsfs.sock");
	assert_string_equal(CONTROL_DEFAULT_SOCKET, "/run/secretsfs.sock");
	assert_int_equal(control_socket_path(NULL, "/mnt/s//", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/mnt/s.sock");
	assert_int_equal(control_socket_path("/run/x/ctl.sock", "/mnt/s", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "/run/x/ctl.sock");
	assert_int_equal(control_socket_path(NULL, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, CONTROL_DEFAULT_SOCKET);
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(control_socket_path(NULL, longpath, buf, sizeof(buf)),
	    -ENAMETOOLONG);
}

/* ---- renderers ------------------------------------------------------- */

static bool
metric_name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    s[i] == '_' || s[i] == ':' || (i && s[i] >= '0' && s[i] <= '9')))
			return false;
	return n > 0;
}

/*
 * A strict reading of the text format: HELP and TYPE before the samples
 * of a family, each sample "name{labels} value", every family's samples
 * together. Returns the number of samples; fails the test otherwise.
 */
static int
check_prometheus(char *text)
{
	char family[128] = "", *line, *save = NULL;
	int samples = 0;

	for (line = strtok_r(text, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		char name[128], *p, *end;
		size_t n;

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			p = line + 7;
			n = strcspn(p, " ");
			assert_true(metric_name_ok(p, n));
			snprintf(family, sizeof(family), "%.*s", (int)n, p);
			p += n + 1;
			assert_true(strcmp(p, "counter") == 0 ||
			    strcmp(p, "gauge") == 0 ||
			    strcmp(p, "histogram") == 0);
			continue;
		}
		assert_true(line[0] != '#');
		n = strcspn(line, "{ ");
		assert_true(metric_name_ok(line, n));
		snprintf(name, sizeof(name), "%.*s", (int)n, line);
		/* The sample belongs to the family last declared. */
		assert_true(strncmp(name, family, strlen(family)) == 0);
		p = line + n;
		if (*p == '{') {
			/* label="value",... with escapes */
			p++;
			while (*p != '}') {
				n = strcspn(p, "=");
				assert_true(metric_name_ok(p, n));
				p += n;
				assert_int_equal(*p++, '=');
				assert_int_equal(*p++, '"');
				while (*p != '"') {
					assert_true(*p != '\0');
					if (*p == '\\') {
						p++;
						assert_true(*p == '\\' || *p == '"' ||
						    *p == 'n');
					}
					p++;
				}
				p++;
				if (*p == ',')
					p++;
			}
			p++;
		}
		assert_int_equal(*p++, ' ');
		if (strcmp(p, "+Inf") != 0) {
			(void)strtod(p, &end);
			assert_true(end != p && *end == '\0');
		}
		samples++;
	}
	return samples;
}

static void
fake_snapshot(struct broker_snapshot *s)
{
	static struct broker_backend_info be[2];
	static struct broker_secret_info si[2];
	static struct broker_holder_info h[1];

	memset(s, 0, sizeof(*s));
	memset(be, 0, sizeof(be));
	memset(si, 0, sizeof(si));
	memset(h, 0, sizeof(h));
	s->pid = 42;
	snprintf(s->config_file, sizeof(s->config_file), "/etc/s\"fs.json");
	snprintf(s->mountpoint, sizeof(s->mountpoint), "/run/secretsfs");
	s->mounted = true;
	s->backing = "mlock";
	s->reads = 7;
	s->denials = 2;
	s->cache.hits = 15;
	s->cache.misses = 1;
	s->audit_on = true;
	s->audit.records = 9;
	s->audit.seq = 12;
	snprintf(s->audit.mac, sizeof(s->audit.mac), "%064x", 0xabc);
	s->locked_bytes = 1 << 20;
	snprintf(be[0].name, sizeof(be[0].name), "va\"ult\\\n");
	snprintf(be[0].type, sizeof(be[0].type), "vault");
	be[0].requests = 3;
	be[0].buckets[0] = 1;
	be[0].buckets[4] = 2;
	be[0].latency_sum = 0.123;
	be[0].reachable = 1;
	be[0].auth_known = true;
	snprintf(be[0].auth_method, sizeof(be[0].auth_method), "cert");
	snprintf(be[0].auth_action, sizeof(be[0].auth_action), "login");
	be[0].auth_ok = true;
	be[0].auth_ttl = 3600;
	be[0].auth_age_ms = 1000;
	snprintf(be[1].name, sizeof(be[1].name), "sm");
	snprintf(be[1].type, sizeof(be[1].type), "aws");
	be[1].reachable = -1;
	s->backends = be;
	s->nbackends = 2;
	snprintf(si[0].name, sizeof(si[0].name), "db\x01\xff\"pw");
	si[0].configured = si[0].cached = true;
	si[0].cache.state = REFRESH_FRESH;
	snprintf(si[0].cache.version, sizeof(si[0].cache.version), "3");
	si[0].holders = 1;
	h[0].container = true;
	snprintf(h[0].container_id, sizeof(h[0].container_id), "%064d", 7);
	snprintf(h[0].version, sizeof(h[0].version), "2");
	h[0].pid = 99;
	h[0].pids[0] = 99;
	h[0].npids = 1;
	si[0].behind = h;
	si[0].nbehind = 1;
	snprintf(si[1].name, sizeof(si[1].name), "never_read");
	si[1].configured = true;
	s->secrets = si;
	s->nsecrets = 2;
}

static char *
render(bool metrics, bool json, struct broker_snapshot *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	if (metrics)
		control_render_metrics(s, f);
	else
		control_render_status(s, json, f);
	fclose(f);
	return buf;
}

static void
test_metrics_are_strict_prometheus_text(void **state)
{
	struct broker_snapshot s;
	char *text, *copy;

	(void)state;
	fake_snapshot(&s);
	text = render(true, false, &s);
	assert_non_null(strstr(text, "\nsecretsfs_reads_total 7\n"));
	assert_non_null(strstr(text, "\nsecretsfs_cache_hits_total 15\n"));
	assert_non_null(strstr(text, "\nsecretsfs_audit_records_total 9\n"));
	/* Escaped label value; cumulative buckets ending in +Inf = count. */
	assert_non_null(strstr(text, "backend=\"va\\\"ult\\\\\\n\""));
	assert_non_null(strstr(text, "le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "le=\"0.1\"} 3\n"));
	assert_non_null(strstr(text, "le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "_count{backend=\"va\\\"ult\\\\\\n\"} 3\n"));
	/* An unknown state is left out rather than made up. */
	assert_null(strstr(text, "secretsfs_backend_up{backend=\"sm\"}"));
	assert_non_null(strstr(text, "secretsfs_backend_token_ttl_seconds{"
	    "backend=\"va\\\"ult\\\\\\n\"} 3599\n"));
	copy = strdup(text);
	assert_true(check_prometheus(copy) > 30);
	free(copy);
	free(text);
}

static void
test_status_json_parses(void **state)
{
	struct broker_snapshot s;
	json_error_t je;
	json_t *doc, *sec, *nr, *au;
	char *text;

	(void)state;
	fake_snapshot(&s);
	text = render(false, true, &s);
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "config")),
	    "/etc/s\"fs.json");
	assert_true(json_is_true(json_object_get(doc, "mounted")));
	sec = json_array_get(json_object_get(doc, "secrets"), 0);
	/* Control bytes escaped, invalid UTF-8 replaced. */
	assert_string_equal(json_string_value(json_object_get(sec, "name")),
	    "db\x01?\"pw");
	assert_string_equal(json_string_value(json_object_get(sec, "state")),
	    "fresh");
	nr = json_array_get(json_object_get(sec, "not_reopened"), 0);
	assert_string_equal(json_string_value(json_object_get(nr, "kind")),
	    "container");
	assert_string_equal(json_string_value(json_object_get(nr, "version")),
	    "2");
	sec = json_array_get(json_object_get(doc, "secrets"), 1);
	assert_string_equal(json_string_value(json_object_get(sec, "state")),
	    "unread");
	assert_true(json_is_null(json_object_get(sec, "version")));
	assert_true(json_is_null(json_object_get(json_array_get(
	    json_object_get(doc, "backends"), 1), "reachable")));
	/* The head of the audit chain, for `audit verify -c`. */
	au = json_object_get(doc, "audit");
	assert_int_equal(json_integer_value(json_object_get(au, "seq")), 12);
	assert_string_equal(json_string_value(json_object_get(au, "mac")),
	    s.audit.mac);
	assert_int_equal(json_integer_value(json_object_get(au, "records")), 9);
	json_decref(doc);
	free(text);
	/* The text form names who lags behind, and the head. */
	text = render(false, false, &s);
	assert_non_null(strstr(text, "not reopened since version 3"));
	assert_non_null(strstr(text, "container 000000000000"));
	assert_non_null(strstr(text, "audit: last record seq 12 mac "
	    "0000000000000000000000000000000000000000000000000000000000000abc"));
	free(text);
	/* No trail: null, and said so. */
	s.audit_on = false;
	text = render(false, true, &s);
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(doc);
	assert_true(json_is_null(json_object_get(doc, "audit")));
	assert_non_null(json_object_get(doc, "audit"));
	json_decref(doc);
	free(text);
}

/* ---- the server, end to end ----------------------------------------- */

/* ---- per-secret metrics ---------------------------------------------- */

static int
si_by_name(const void *a, const void *b)
{
	return strcmp(((const struct broker_secret_info *)a)->name,
	    ((const struct broker_secret_info *)b)->name);
}

static struct broker_secret_info *
add_secret(struct broker_secret_info *si, size_t *n, const char *name,
    bool configured, enum refresh_state st)
{
	struct broker_secret_info *e = &si[(*n)++];

	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->configured = configured;
	e->cached = st != (enum refresh_state)-1;
	e->cache.state = e->cached ? st : REFRESH_EMPTY;
	e->cache.age_ms = 1000;
	e->cache.next_ms = 5000;
	e->refresh_ms = 60000;
	snprintf(e->backend, sizeof(e->backend), "files");
	return e;
}

/* The version_id label of the series of secret (escaped as in the text). */
static void
version_id_of(const char *text, const char *secret, char *out)
{
	char key[256];
	const char *p;

	snprintf(key, sizeof(key), "secretsfs_secret_version_info{secret=%s,",
	    secret);
	assert_non_null(p = strstr(text, key));
	assert_non_null(p = strstr(p, "version_id=\""));
	p += strlen("version_id=\"");
	assert_int_equal(strspn(p, "0123456789abcdef"), 12);
	assert_int_equal(p[12], '"');
	memcpy(out, p, 12);
	out[12] = '\0';
}

static void
test_secret_metrics_states_holders_and_escaping(void **state)
{
	static struct broker_secret_info si[16];
	struct broker_snapshot s;
	struct broker_secret_info *e;
	char *text, *copy, id1[13], id2[13], id3[13];
	size_t n = 0;
	/* The secret name "a\"b\\c\nd" as a label value, escaped. */
	const char *odd = "\"a\\\"b\\\\c\\nd\"";

	(void)state;
	memset(&s, 0, sizeof(s));
	e = add_secret(si, &n, "a\"b\\c\nd", true, REFRESH_FRESH);
	snprintf(e->backend, sizeof(e->backend), "v\"1\\");
	snprintf(e->cache.version, sizeof(e->cache.version), "7");
	e->cache.fetched.tv_sec = 1700000000;
	e->nbehind = 2;
	e = add_secret(si, &n, "due_one", true, REFRESH_FRESH);
	e->cache.age_ms = 70000;
	add_secret(si, &n, "stale_one", true, REFRESH_STALE);
	e = add_secret(si, &n, "exp", true, REFRESH_EMPTY);
	e->cache.last_err = -EIO;
	snprintf(e->cache.version, sizeof(e->cache.version), "3");
	e = add_secret(si, &n, "fail", true, REFRESH_EMPTY);
	e->cache.last_err = -EIO;
	add_secret(si, &n, "unread", true, (enum refresh_state)-1);
	/* A prefix: its files make it; "pfx-z" sorts between and is not one. */
	add_secret(si, &n, "pfx", true, (enum refresh_state)-1);
	e = add_secret(si, &n, "pfx-z", true, REFRESH_FRESH);
	e->cache.fetched.tv_sec = 1500000000;
	e = add_secret(si, &n, "pfx/x", false, REFRESH_FRESH);
	e->cache.fetched.tv_sec = 1650000000;
	snprintf(e->cache.version, sizeof(e->cache.version), "1");
	e->nbehind = 1;
	e = add_secret(si, &n, "pfx/y", false, REFRESH_STALE);
	e->cache.fetched.tv_sec = 1600000000;
	qsort(si, n, sizeof(si[0]), si_by_name);
	s.secrets = si;
	s.nsecrets = n;

	text = render(true, false, &s);
	copy = strdup(text);
	assert_true(check_prometheus(copy) > 40);
	free(copy);
	/* Quotes, backslashes and newlines escaped, in names and backends. */
	assert_non_null(strstr(text, "\nsecretsfs_secret_old_version_holders{"
	    "secret=\"a\\\"b\\\\c\\nd\"} 2\n"));
	assert_non_null(strstr(text, "backend=\"v\\\"1\\\\\""));
	assert_non_null(strstr(text, "\nsecretsfs_secret_fetched_timestamp_"
	    "seconds{secret=\"a\\\"b\\\\c\\nd\"} 1700000000\n"));
	assert_null(strstr(text, "a\"b"));
	/* The version never appears, only its keyed hash, stable... */
	version_id_of(text, odd, id1);
	assert_string_not_equal(id1, "7");
	free(text);
	text = render(true, false, &s);
	version_id_of(text, odd, id2);
	assert_string_equal(id1, id2);
	free(text);
	/* ...and changed by a rotation. */
	for (n = 0; n < s.nsecrets; n++)
		if (si[n].name[0] == 'a')
			snprintf(si[n].cache.version, sizeof(si[n].cache.version),
			    "8");
	text = render(true, false, &s);
	version_id_of(text, odd, id3);
	assert_string_not_equal(id1, id3);

	/* One state of five is 1; none before the first read. */
	assert_non_null(strstr(text, "{secret=\"due_one\",state=\"due\"} 1\n"));
	assert_non_null(strstr(text, "{secret=\"due_one\",state=\"fresh\"} 0\n"));
	assert_non_null(strstr(text, "{secret=\"stale_one\",state=\"stale\"} 1\n"));
	assert_non_null(strstr(text, "{secret=\"exp\",state=\"expired\"} 1\n"));
	assert_non_null(strstr(text, "{secret=\"exp\",state=\"failed\"} 0\n"));
	assert_non_null(strstr(text, "{secret=\"fail\",state=\"failed\"} 1\n"));
	assert_non_null(strstr(text, "{secret=\"unread\",state=\"fresh\"} 0\n"));
	assert_null(strstr(text, "{secret=\"unread\",state=\"fresh\"} 1"));
	assert_non_null(strstr(text, "{secret=\"a\\\"b\\\\c\\nd\",state=\"fresh\"}"
	    " 1\n"));
	/* A prefix: the worst of its files, their holders, the oldest fetch. */
	assert_non_null(strstr(text, "{secret=\"pfx\",state=\"stale\"} 1\n"));
	assert_non_null(strstr(text, "holders{secret=\"pfx\"} 1\n"));
	assert_non_null(strstr(text, "seconds{secret=\"pfx\"} 1600000000\n"));
	assert_non_null(strstr(text, "holders{secret=\"pfx-z\"} 0\n"));
	assert_non_null(strstr(text, "{secret=\"pfx-z\",state=\"fresh\"} 1\n"));
	assert_non_null(strstr(text, "seconds{secret=\"pfx-z\"} 1500000000\n"));
	/* Bounded: one series per configured secret, none per file. */
	assert_null(strstr(text, "pfx/"));
	assert_null(strstr(text, "version_info{secret=\"pfx\""));
	free(text);
}

struct world {
	char		 dir[64];
	char		 sock[100];
	struct broker	*b;
	struct control	*ctl;
};

static struct world W;

static char *
ask(const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *buf = malloc(1 << 20);
	size_t len = 0;
	ssize_t n;
	int fd;

	assert_non_null(buf);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", W.sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + len, (1 << 20) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return buf;
}

static void
write_secret(const char *name, const char *value, time_t mtime)
{
	char path[256];
	struct timeval tv[2] = { { mtime, 0 }, { mtime, 0 } };
	int fd;

	snprintf(path, sizeof(path), "%s/%s", W.dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, value, strlen(value)),
	    (ssize_t)strlen(value));
	close(fd);
	assert_int_equal(utimes(path, tv), 0);
}

static int
world_up(void **state)
{
	struct cfg_err err;
	struct config *cfg;
	char text[1024], why[256];
	void *start;
	size_t len;

	(void)state;
	log_init("test_control", false, false);
	secmem_arena_range(&start, &len);
	if (!start && secmem_init(4u << 20, why, sizeof(why)) != 0)
		return -1;
	snprintf(W.dir, sizeof(W.dir), "/tmp/test_control.XXXXXX");
	if (!mkdtemp(W.dir))
		return -1;
	snprintf(W.sock, sizeof(W.sock), "%s/ctl.sock", W.dir);
	write_secret("db", "first", 1700000000);
	write_secret("audit.key", "00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", 1700000000);
	snprintf(text, sizeof(text),
	    "{\"mount\": {\"path\": \"/mnt/none\"},"
	    " \"backends\": {\"dev\": {\"type\": \"file\", \"dir\": \"%s\"}},"
	    " \"secrets\": {\"db\": {\"backend\": \"dev\"},"
	    "               \"other\": {\"backend\": \"dev\", \"ref\": \"db\"}},"
	    " \"rules\": [{\"match\": {\"any\": true}, \"allow\": [\"*\"]}],"
	    " \"audit\": {\"file\": \"%s/audit.log\","
	    "             \"key_file\": \"%s/audit.key\"}}",
	    W.dir, W.dir, W.dir);
	if (config_load_string(text, "test.json", &cfg, &err) != 0)
		return -1;
	if (broker_new(cfg, &W.b, why, sizeof(why)) != 0)
		return -1;
	if (control_open(W.sock, W.b, &W.ctl, why, sizeof(why)) != 0)
		return -1;
	return 0;
}

static int
world_down(void **state)
{
	char path[256];

	(void)state;
	control_close(W.ctl);
	broker_free(W.b);
	snprintf(path, sizeof(path), "%s/db", W.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/audit.key", W.dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/audit.log", W.dir);
	unlink(path);
	rmdir(W.dir);
	return 0;
}

static void
test_server_answers_and_refuses(void **state)
{
	struct stat st;
	char *a;

	(void)state;
	assert_int_equal(stat(W.sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	a = ask("bogus\n");
	assert_int_equal(strncmp(a, "error unknown request", 21), 0);
	free(a);
	a = ask("flush nope\n");
	assert_string_equal(a, "error no secret \"nope\" in the configuration\n");
	free(a);
	a = ask("flush\n");
	assert_string_equal(a, "ok\nflushed every secret\n");
	free(a);
	/* Not mounted: unhealthy. */
	a = ask("health\n");
	assert_string_equal(a, "error not mounted\n");
	free(a);
	broker_set_mounted(W.b, "/mnt/none");
	a = ask("health");		/* no newline: the close ends the line */
	assert_string_equal(a, "ok\nhealthy: mounted on /mnt/none\n");
	free(a);
	/* A second daemon on the same socket is refused. */
	struct control *second;
	char why[256];

	assert_int_equal(control_open(W.sock, W.b, &second, why, sizeof(why)),
	    -EADDRINUSE);
}

static void
test_status_metrics_and_who_lags_behind(void **state)
{
	struct broker_view *v;
	struct cache_snap *snap;
	struct caller me;
	json_t *doc, *secs, *s, *nr;
	json_error_t je;
	char *a, buf[1024], comm[17];
	ssize_t idx;
	size_t i;
	int fd, n;

	(void)state;
	/* Who we are, as the filesystem would say. */
	memset(&me, 0, sizeof(me));
	me.pid = getpid();
	fd = open("/proc/self/stat", O_RDONLY);
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n] = '\0';
	assert_int_equal(identity_parse_stat(buf, &me.start_time, comm), 0);
	memcpy(me.comm, comm, sizeof(me.comm));
	me.runtime = IDENTITY_RUNTIME_HOST;

	/* An open of db, version 1700000000.000000000. */
	v = broker_acquire(W.b);
	idx = broker_view_lookup(v, "db");
	assert_true(idx >= 0);
	assert_int_equal(broker_get(v, (size_t)idx, &snap), 0);
	assert_int_equal(broker_audit_access(v, &me, (size_t)idx, NULL, "r",
	    AUDIT_OUTCOME_ALLOW, 0, snap->version), 0);
	cache_put(snap);
	broker_release(v);

	/* Rotated in the backend; refreshed on the operator's word. */
	write_secret("db", "second", 1700000100);
	a = ask("refresh db\n");
	assert_string_equal(a, "ok\nrefreshed db: version "
	    "1700000100.000000000\n");
	free(a);

	a = ask("status json\n");
	assert_int_equal(strncmp(a, "ok\n", 3), 0);
	doc = json_loads(a + 3, 0, &je);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "pid")),
	    getpid());
	secs = json_object_get(doc, "secrets");
	assert_int_equal(json_array_size(secs), 2);
	s = NULL;
	for (i = 0; i < json_array_size(secs); i++)
		if (strcmp(json_string_value(json_object_get(
		    json_array_get(secs, i), "name")), "db") == 0)
			s = json_array_get(secs, i);
	assert_non_null(s);
	assert_string_equal(json_string_value(json_object_get(s, "version")),
	    "1700000100.000000000");
	assert_string_equal(json_string_value(json_object_get(s,
	    "previous_version")), "1700000000.000000000");
	nr = json_object_get(s, "not_reopened");
	assert_int_equal(json_array_size(nr), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(nr, 0), "kind")), "process");
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(nr, 0), "pid")), getpid());
	json_decref(doc);
	free(a);
	/* The same holder, counted in the metrics of the configured secret. */
	a = ask("metrics\n");
	assert_non_null(strstr(a, "\nsecretsfs_secret_old_version_holders{"
	    "secret=\"db\"} 1\n"));
	assert_non_null(strstr(a, "secretsfs_secret_version_info{secret=\"db\","
	    "backend=\"dev\",version_id=\""));
	assert_null(strstr(a, "1700000100.000000000"));
	free(a);

	/* Reopened: no longer behind. */
	v = broker_acquire(W.b);
	assert_int_equal(broker_get(v, (size_t)idx, &snap), 0);
	assert_int_equal(broker_audit_access(v, &me, (size_t)idx, NULL, "r",
	    AUDIT_OUTCOME_ALLOW, 0, snap->version), 0);
	cache_put(snap);
	broker_release(v);
	a = ask("status\n");
	assert_null(strstr(a, "not reopened"));
	assert_non_null(strstr(a, "1700000100.000000000"));
	free(a);

	a = ask("metrics\n");
	assert_int_equal(strncmp(a, "ok\n", 3), 0);
	assert_non_null(strstr(a, "\nsecretsfs_reads_total 2\n"));
	assert_non_null(strstr(a, "\nsecretsfs_rotations_total 1\n"));
	assert_non_null(strstr(a, "secretsfs_backend_requests_total{backend="
	    "\"dev\"} 2\n"));
	assert_non_null(strstr(a, "\nsecretsfs_secret_old_version_holders{"
	    "secret=\"db\"} 0\n"));
	assert_true(check_prometheus(a + 3) > 30);
	free(a);
}

/* The last line of the audit file: its seq and mac. */
static void
last_record(uint64_t *seq, char mac[65])
{
	char path[256], line[4096], last[4096] = "";
	json_t *o;
	FILE *f;

	snprintf(path, sizeof(path), "%s/audit.log", W.dir);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f))
		memcpy(last, line, sizeof(last));
	fclose(f);
	assert_non_null(o = json_loads(last, 0, NULL));
	*seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
	snprintf(mac, 65, "%s", json_string_value(json_object_get(o, "mac")));
	json_decref(o);
}

static void
test_audit_head_is_the_last_record(void **state)
{
	struct broker_view *v;
	struct cache_snap *snap;
	struct caller me = { .pid = 1, .runtime = IDENTITY_RUNTIME_HOST };
	char mac[65], fmac[65], why[256], nowhere[128];
	uint64_t seq, fseq;
	ssize_t idx;

	(void)state;
	assert_int_equal(control_audit_head(W.sock, &seq, mac, sizeof(mac),
	    why, sizeof(why)), 0);
	last_record(&fseq, fmac);
	assert_true(fseq >= 1);
	assert_int_equal(seq, fseq);
	assert_string_equal(mac, fmac);

	/* One more record: the head moves with it. */
	v = broker_acquire(W.b);
	idx = broker_view_lookup(v, "db");
	assert_true(idx >= 0);
	assert_int_equal(broker_get(v, (size_t)idx, &snap), 0);
	assert_int_equal(broker_audit_access(v, &me, (size_t)idx, NULL, "r",
	    AUDIT_OUTCOME_ALLOW, 0, snap->version), 0);
	cache_put(snap);
	broker_release(v);
	assert_int_equal(control_audit_head(W.sock, &seq, mac, sizeof(mac),
	    why, sizeof(why)), 0);
	assert_int_equal(seq, fseq + 1);
	last_record(&fseq, fmac);
	assert_int_equal(seq, fseq);
	assert_string_equal(mac, fmac);

	/* No daemon there. */
	snprintf(nowhere, sizeof(nowhere), "%s/none.sock", W.dir);
	assert_int_equal(control_audit_head(nowhere, &seq, mac, sizeof(mac),
	    why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "cannot reach the daemon"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good_requests),
		cmocka_unit_test(test_parse_refuses_everything_else),
		cmocka_unit_test(test_socket_path),
		cmocka_unit_test(test_metrics_are_strict_prometheus_text),
		cmocka_unit_test(test_status_json_parses),
		cmocka_unit_test(test_secret_metrics_states_holders_and_escaping),
		cmocka_unit_test(test_server_answers_and_refuses),
		cmocka_unit_test(test_status_metrics_and_who_lags_behind),
		cmocka_unit_test(test_audit_head_is_the_last_record),
	};

	return cmocka_run_group_tests_name("control", tests, world_up,
	    world_down);
}
