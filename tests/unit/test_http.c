/*
 * http: option parsing (errors name their key path), the loopback rule
 * for plain http://, refusal of a readable client key, backoff bounds,
 * and the request loop (retries, Retry-After, the size cap, timeouts,
 * methods and headers) against a scripted plain-HTTP server on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <secretsfs/config.h>
#include <secretsfs/http.h>
#include <secretsfs/secmem.h>

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
	return http_global_init();
}

/* --- options ------------------------------------------------------------- */

/* Parse text as a backend object; returns r, err filled. */
static int
parse(const char *text, struct http_options *o, struct cfg_err *err)
{
	json_error_t je;
	json_t *obj = json_loads(text, 0, &je);
	int r;

	assert_non_null(obj);
	memset(err, 0, sizeof(*err));
	r = http_options_from_json(obj, "backends.v", o, err);
	json_decref(obj);
	return r;
}

static void
test_defaults(void **state)
{
	struct http_options o;
	struct cfg_err err;

	(void)state;
	assert_int_equal(parse("{\"type\":\"vault\"}", &o, &err), 0);
	assert_true(o.tls);
	assert_null(o.ca_file);
	assert_null(o.client_cert);
	assert_int_equal(o.connect_timeout_ms, 5000);
	assert_int_equal(o.timeout_ms, 15000);
	assert_int_equal(o.max_retries, 3);
	assert_int_equal(o.retry_base_ms, 100);
	assert_int_equal(o.retry_max_ms, 2000);
	assert_int_equal(o.max_response_bytes, 1u << 20);
}

static void
test_full_options(void **state)
{
	struct http_options o;
	struct cfg_err err;
	json_error_t je;
	json_t *obj;

	(void)state;
	obj = json_loads("{\"tls\":{\"ca_file\":\"/etc/ca.pem\","
	    "\"client_cert\":\"/etc/c.crt\",\"client_key\":\"/etc/c.key\","
	    "\"pinned_pubkey\":\"sha256//AAAA\"},"
	    "\"http\":{\"connect_timeout\":2,\"timeout\":\"30s\","
	    "\"max_retries\":5,\"retry_base\":\"250ms\",\"retry_max\":\"4s\","
	    "\"max_response_bytes\":\"64KiB\"}}", 0, &je);
	assert_non_null(obj);
	assert_int_equal(http_options_from_json(obj, "b", &o, &err), 0);
	assert_true(o.tls);
	assert_string_equal(o.ca_file, "/etc/ca.pem");
	assert_string_equal(o.client_cert, "/etc/c.crt");
	assert_string_equal(o.client_key, "/etc/c.key");
	assert_string_equal(o.pinned_pubkey, "sha256//AAAA");
	assert_int_equal(o.connect_timeout_ms, 2000);
	assert_int_equal(o.timeout_ms, 30000);
	assert_int_equal(o.max_retries, 5);
	assert_int_equal(o.retry_base_ms, 250);
	assert_int_equal(o.retry_max_ms, 4000);
	assert_int_equal(o.max_response_bytes, 64u << 10);
	json_decref(obj);
}

static void
test_tls_false(void **state)
{
	struct http_options o;
	struct cfg_err err;

	(void)state;
	assert_int_equal(parse("{\"tls\":false}", &o, &err), 0);
	assert_false(o.tls);
}

static void
test_option_errors_name_their_path(void **state)
{
	static const struct {
		const char	*text;
		const char	*path;
		const char	*msg;	/* substring */
	} cases[] = {
		{ "{\"tls\":true}", "backends.v.tls", "object" },
		{ "{\"tls\":\"yes\"}", "backends.v.tls", "object" },
		{ "{\"tls\":{\"bogus\":1}}", "backends.v.tls.bogus",
		    "unknown key" },
		{ "{\"tls\":{\"ca_file\":\"ca.pem\"}}", "backends.v.tls.ca_file",
		    "absolute" },
		{ "{\"tls\":{\"client_cert\":\"/c.crt\",\"client_key\":"
		    "\"keys/c.key\"}}", "backends.v.tls.client_key",
		    "absolute" },
		{ "{\"tls\":{\"client_cert\":\"/c.crt\"}}",
		    "backends.v.tls.client_key", "private key" },
		{ "{\"tls\":{\"client_key\":\"/c.key\"}}",
		    "backends.v.tls.client_cert", "certificate" },
		{ "{\"tls\":{\"ca_file\":7}}", "backends.v.tls.ca_file",
		    "file path" },
		{ "{\"tls\":{\"pinned_pubkey\":\"md5//x\"}}",
		    "backends.v.tls.pinned_pubkey", "sha256//" },
		{ "{\"http\":[]}", "backends.v.http", "object" },
		{ "{\"http\":{\"retries\":1}}", "backends.v.http.retries",
		    "unknown key" },
		{ "{\"http\":{\"timeout\":\"fast\"}}", "backends.v.http.timeout",
		    "duration" },
		{ "{\"http\":{\"timeout\":0}}", "backends.v.http.timeout",
		    "more than 0" },
		{ "{\"http\":{\"connect_timeout\":-1}}",
		    "backends.v.http.connect_timeout", "duration" },
		{ "{\"http\":{\"max_retries\":11}}",
		    "backends.v.http.max_retries", "0 to 10" },
		{ "{\"http\":{\"max_retries\":\"3\"}}",
		    "backends.v.http.max_retries", "integer" },
		{ "{\"http\":{\"max_response_bytes\":\"10B\"}}",
		    "backends.v.http.max_response_bytes", "1KiB" },
		{ "{\"http\":{\"max_response_bytes\":\"1TiB\"}}",
		    "backends.v.http.max_response_bytes", "size" },
		{ "{\"http\":{\"retry_base\":\"1s\",\"retry_max\":\"500ms\"}}",
		    "backends.v.http.retry_max", "retry_base" },
	};
	struct http_options o;
	struct cfg_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse(cases[i].text, &o, &err);

		if (r != -EINVAL || strcmp(err.path, cases[i].path) != 0 ||
		    !strstr(err.msg, cases[i].msg))
			fail_msg("%s: got %d, path \"%s\", msg \"%s\"",
			    cases[i].text, r, err.path, err.msg);
	}
}

/* --- the loopback rule --------------------------------------------------- */

static void
test_plain_http_only_to_loopback(void **state)
{
	static const struct {
		const char	*url;
		bool		 tls;
		bool		 ok;
	} cases[] = {
		{ "http://127.0.0.1:8200", false, true },
		{ "http://127.1.2.3", false, true },
		{ "http://[::1]:8200", false, true },
		{ "http://localhost:8200", false, true },
		{ "http://LOCALHOST", false, true },
		{ "http://[::ffff:127.0.0.1]:1", false, true },
		{ "http://10.0.0.1:8200", false, false },
		{ "http://128.0.0.1", false, false },
		{ "http://vault.example:8200", false, false },
		{ "http://localhost.example.com", false, false },
		{ "http://[::2]", false, false },
		{ "http://127.0.0.1:8200", true, false },
		{ "https://vault.example:8200", true, true },
		{ "https://127.0.0.1:8200", false, false },
		{ "ftp://127.0.0.1", false, false },
		{ "https://user:pw@vault.example", true, false },
		{ "https://vault.example/?x=1", true, false },
		{ "not a url", true, false },
	};
	struct http_options o;
	struct http_client *c;
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r1, r2;

		http_options_default(&o);
		o.tls = cases[i].tls;
		why[0] = '\0';
		r1 = http_check_url(cases[i].url, cases[i].tls, why,
		    sizeof(why));
		r2 = http_client_new(cases[i].url, &o, &c, why, sizeof(why));
		if ((r1 == 0) != cases[i].ok || (r2 == 0) != cases[i].ok)
			fail_msg("%s tls=%d: check %d, new %d (%s)",
			    cases[i].url, cases[i].tls, r1, r2, why);
		if (!cases[i].ok) {
			assert_int_equal(r2, -EINVAL);
			assert_true(why[0] != '\0');
			/* A password in the URL is never echoed. */
			assert_null(strstr(why, "pw@"));
		}
		http_client_free(c);
	}
	http_check_url("http://10.0.0.1:8200", false, why, sizeof(why));
	assert_non_null(strstr(why, "loopback"));
}

static void
test_metadata_addresses_need_the_flag(void **state)
{
	static const char *const meta[] = { "http://169.254.169.254",
	    "http://169.254.170.2/v2/credentials", "http://169.254.170.23",
	    "http://[fd00:ec2::254]", "http://[fd00:ec2::23]:80" };
	static const char *const never[] = { "http://169.254.1.1",
	    "http://169.254.169.253", "http://[fd00:ec2::1]" };
	struct http_options o;
	struct http_client *c;
	char why[256];

	(void)state;
	http_options_default(&o);
	assert_false(o.metadata_http);
	o.tls = false;
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++) {
		o.metadata_http = false;
		assert_int_equal(http_client_new(meta[i], &o, &c, why,
		    sizeof(why)), -EINVAL);
		/* Config checks never allow them. */
		assert_int_equal(http_check_url(meta[i], false, why,
		    sizeof(why)), -EINVAL);
		o.metadata_http = true;
		if (http_client_new(meta[i], &o, &c, why, sizeof(why)) != 0)
			fail_msg("%s: %s", meta[i], why);
		http_client_free(c);
	}
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		assert_int_equal(http_client_new(never[i], &o, &c, why,
		    sizeof(why)), -EINVAL);
	/* The flag never turns TLS off by itself. */
	o.tls = true;
	assert_int_equal(http_client_new("http://169.254.169.254", &o, &c, why,
	    sizeof(why)), -EINVAL);
}

/* --- key files ----------------------------------------------------------- */

static char tmpdir[] = "/tmp/test_http.XXXXXX";

static void
write_file(const char *name, const char *text, mode_t mode, char *path,
    size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_readable_client_key_is_refused(void **state)
{
	char cert[300], key[300], ca[300], why[512];
	struct http_options o;
	struct http_client *c;

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	write_file("c.crt", "-----BEGIN CERTIFICATE-----\n", 0644, cert,
	    sizeof(cert));
	write_file("c.key", "-----BEGIN PRIVATE KEY-----\n", 0644, key,
	    sizeof(key));
	write_file("ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644, ca,
	    sizeof(ca));
	http_options_default(&o);
	o.ca_file = ca;
	o.client_cert = cert;
	o.client_key = key;
	assert_int_equal(http_client_new("https://127.0.0.1:8200", &o, &c,
	    why, sizeof(why)), -EPERM);
	assert_null(c);
	assert_non_null(strstr(why, key));
	assert_non_null(strstr(why, "chmod 600"));

	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(http_client_new("https://127.0.0.1:8200", &o, &c,
	    why, sizeof(why)), -EPERM);

	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(http_client_new("https://127.0.0.1:8200", &o, &c,
	    why, sizeof(why)), 0);
	http_client_free(c);

	/* Missing files are named at start, not at the first request. */
	o.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(http_client_new("https://127.0.0.1:8200", &o, &c,
	    why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "/nonexistent/ca.pem"));
	o.ca_file = ca;
	o.client_key = "/nonexistent/c.key";
	assert_int_equal(http_client_new("https://127.0.0.1:8200", &o, &c,
	    why, sizeof(why)), -ENOENT);
	o.client_key = NULL;
	assert_int_equal(http_client_new("https://127.0.0.1:8200", &o, &c,
	    why, sizeof(why)), -EINVAL);

	unlink(cert);
	unlink(key);
	unlink(ca);
	rmdir(tmpdir);
}

/* --- backoff ------------------------------------------------------------- */

static void
test_backoff_full_jitter_bounds(void **state)
{
	struct http_options o;

	(void)state;
	http_options_default(&o);
	o.retry_base_ms = 100;
	o.retry_max_ms = 2000;
	for (int n = 1; n <= 12; n++) {
		int64_t bound = 100LL << n, lo = INT64_MAX, hi = -1;

		if (bound > 2000)
			bound = 2000;
		for (int i = 0; i < 4000; i++) {
			int64_t d = http_backoff_ms(&o, n);

			if (d < 0 || d > bound)
				fail_msg("attempt %d: %lld outside [0, %lld]",
				    n, (long long)d, (long long)bound);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* Full jitter spreads over the whole range, not just its top. */
		assert_true(lo < bound / 4);
		assert_true(hi > bound * 3 / 4);
	}
	/* Huge attempt numbers stay at the cap, no overflow. */
	for (int i = 0; i < 1000; i++) {
		int64_t d = http_backoff_ms(&o, 1000);

		assert_true(d >= 0 && d <= 2000);
	}
}

/* --- a scripted server --------------------------------------------------- */

struct server {
	int		 fd;
	int		 port;
	pthread_t	 thread;
	const char	*const *script;	/* one raw answer per request */
	size_t		 nscript;
	int		 requests;
	bool		 silent;	/* accept, read, never answer */
	char		 first_line[256];
	char		 headers[4096];
	char		 body[1024];
};

static void *
serve(void *arg)
{
	struct server *s = arg;

	for (;;) {
		char buf[8192];
		size_t have = 0;
		ssize_t n;
		char *end, *cl;
		int c;

		if ((c = accept(s->fd, NULL, NULL)) < 0)
			return NULL;
		while (have < sizeof(buf) - 1 &&
		    (n = read(c, buf + have, sizeof(buf) - 1 - have)) > 0) {
			have += (size_t)n;
			buf[have] = '\0';
			if ((end = strstr(buf, "\r\n\r\n"))) {
				size_t hlen = (size_t)(end + 4 - buf), blen = 0;

				if ((cl = strcasestr(buf, "Content-Length:")))
					blen = strtoul(cl + 15, NULL, 10);
				if (have >= hlen + blen)
					break;
			}
		}
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n"))) {
			snprintf(s->first_line, sizeof(s->first_line), "%.*s",
			    (int)(end - buf), buf);
			snprintf(s->headers, sizeof(s->headers), "%.4000s", buf);
		}
		if ((end = strstr(buf, "\r\n\r\n")))
			snprintf(s->body, sizeof(s->body), "%s", end + 4);
		if (s->silent) {
			sleep(2);
			close(c);
			continue;
		}
		{
			size_t i = (size_t)s->requests;
			const char *a = s->script[i < s->nscript ? i :
			    s->nscript - 1];

			__atomic_add_fetch(&s->requests, 1, __ATOMIC_SEQ_CST);
			(void)!write(c, a, strlen(a));
		}
		close(c);
	}
}

static void
server_start(struct server *s, const char *const *script, size_t n)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->script = script;
	s->nscript = n;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((s->fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &sl), 0);
	s->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void
server_stop(struct server *s)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(s->thread, NULL);
}

static struct http_client *
client_for(const struct server *s, struct http_options *o)
{
	struct http_client *c;
	char url[64], why[256];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	o->tls = false;
	if (http_client_new(url, o, &c, why, sizeof(why)) != 0)
		fail_msg("http_client_new: %s", why);
	return c;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define OK_BODY	"{\"data\":{\"v\":1}}"
#define A200	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
		"Content-Length: 16\r\nConnection: close\r\n\r\n" OK_BODY
#define A503	"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 29\r\n" \
		"Connection: close\r\n\r\n{\"errors\":[\"Vault is sealed\"]}"
#define A429RA	"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n" \
		"Content-Length: 0\r\nConnection: close\r\n\r\n"
#define A403	"HTTP/1.1 403 Forbidden\r\nContent-Length: 32\r\n" \
		"Connection: close\r\n\r\n{\"errors\":[\"permission denied\"]}"

static void
test_retry_5xx_then_ok(void **state)
{
	static const char *const script[] = { A503, A200 };
	struct http_request req = { .method = "GET", .path = "/v1/x",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];

	(void)state;
	server_start(&s, script, 2);
	http_options_default(&o);
	o.retry_base_ms = 10;
	o.retry_max_ms = 20;
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(s.requests, 2);
	assert_int_equal(resp.body_len, strlen(OK_BODY));
	assert_string_equal((char *)resp.body, OK_BODY);
	/* The body went straight into locked memory. */
	assert_true(secmem_owns(resp.body));
	http_response_clear(&resp);
	assert_null(resp.body);
	http_client_free(c);
	server_stop(&s);
}

static void
test_no_retry_when_not_asked(void **state)
{
	static const char *const script[] = { A503, A200 };
	struct http_request req = { .method = "GET", .path = "/v1/x" };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];

	(void)state;
	server_start(&s, script, 2);
	http_options_default(&o);
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_int_equal(resp.status, 503);
	assert_int_equal(s.requests, 1);
	http_response_clear(&resp);
	http_client_free(c);
	server_stop(&s);
}

static void
test_403_is_not_retried(void **state)
{
	static const char *const script[] = { A403, A200 };
	struct http_request req = { .method = "GET", .path = "/v1/x",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];

	(void)state;
	server_start(&s, script, 2);
	http_options_default(&o);
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_int_equal(resp.status, 403);
	assert_int_equal(s.requests, 1);
	http_response_clear(&resp);
	http_client_free(c);
	server_stop(&s);
}

static void
test_retries_are_bounded(void **state)
{
	static const char *const script[] = { A503 };
	struct http_request req = { .method = "GET", .path = "/v1/x",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];

	(void)state;
	server_start(&s, script, 1);
	http_options_default(&o);
	o.max_retries = 2;
	o.retry_base_ms = 5;
	o.retry_max_ms = 10;
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	/* The last answer is handed back for the caller to judge. */
	assert_int_equal(resp.status, 503);
	assert_int_equal(s.requests, 3);
	http_response_clear(&resp);
	http_client_free(c);
	server_stop(&s);
}

static void
test_retry_after_is_honoured(void **state)
{
	static const char *const script[] = { A429RA, A200 };
	struct http_request req = { .method = "GET", .path = "/v1/x",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];
	int64_t t0;

	(void)state;
	server_start(&s, script, 2);
	http_options_default(&o);
	o.retry_base_ms = 1;
	o.retry_max_ms = 2;
	c = client_for(&s, &o);
	t0 = now_ms();
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(s.requests, 2);
	assert_true(now_ms() - t0 >= 900);
	http_response_clear(&resp);

	/* A Retry-After beyond the time left: the 429 stands, at once. */
	s.requests = 0;
	http_client_free(c);
	o.timeout_ms = 500;
	c = client_for(&s, &o);
	t0 = now_ms();
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_int_equal(resp.status, 429);
	assert_int_equal(resp.retry_after_ms, 1000);
	assert_int_equal(s.requests, 1);
	assert_true(now_ms() - t0 < 400);
	http_response_clear(&resp);
	http_client_free(c);
	server_stop(&s);
}

static void
test_oversized_answer_is_refused(void **state)
{
	static char big_cl[4096], big_chunked[4096];
	static const char *script_cl[] = { big_cl };
	static const char *script_ch[] = { big_chunked };
	struct http_request req = { .method = "GET", .path = "/v1/x",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256], pad[2100];
	size_t used;

	(void)state;
	memset(pad, 'A', 2000);
	pad[2000] = '\0';
	snprintf(big_cl, sizeof(big_cl), "HTTP/1.1 200 OK\r\nContent-Length: "
	    "2000\r\nConnection: close\r\n\r\n%s", pad);
	/* Without a length, the write callback has to stop it. */
	snprintf(big_chunked, sizeof(big_chunked), "HTTP/1.1 200 OK\r\n"
	    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	    "7d0\r\n%s\r\n0\r\n\r\n", pad);

	http_options_default(&o);
	o.max_response_bytes = 1024;
	used = secmem_used_bytes();
	server_start(&s, script_cl, 1);
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), -EFBIG);
	assert_non_null(strstr(why, "max_response_bytes"));
	assert_null(resp.body);
	/* Not retried: a bigger answer will not get smaller. */
	assert_int_equal(s.requests, 1);
	http_client_free(c);
	server_stop(&s);

	server_start(&s, script_ch, 1);
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), -EFBIG);
	assert_null(resp.body);
	assert_null(strstr(why, "AAAA"));
	http_client_free(c);
	server_stop(&s);
	assert_int_equal(secmem_used_bytes(), used);
}

static void
test_connection_refused(void **state)
{
	static const char *const script[] = { A200 };
	struct http_request req = { .method = "GET", .path = "/v1/x",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];

	(void)state;
	/* A port that was just free. */
	server_start(&s, script, 1);
	server_stop(&s);
	http_options_default(&o);
	o.retry_base_ms = 1;
	o.retry_max_ms = 2;
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)),
	    -ECONNREFUSED);
	assert_non_null(strstr(why, "http://127.0.0.1:"));
	assert_non_null(strstr(why, "/v1/x"));
	http_client_free(c);
}

static void
test_total_timeout(void **state)
{
	static const char *const script[] = { A200 };
	struct http_request req = { .method = "GET", .path = "/v1/slow",
	    .retry = true };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];
	int64_t t0;

	(void)state;
	server_start(&s, script, 1);
	s.silent = true;
	http_options_default(&o);
	o.timeout_ms = 300;
	c = client_for(&s, &o);
	t0 = now_ms();
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)),
	    -ETIMEDOUT);
	/* Retries included, the whole request stays within timeout. */
	assert_true(now_ms() - t0 < 1000);
	assert_non_null(strstr(why, "timed out"));
	http_client_free(c);
	server_stop(&s);
}

static void
test_methods_headers_and_body(void **state)
{
	static const char *const script[] = { A200 };
	static const struct http_header hdrs[] = {
		{ "X-Vault-Request", "true" },
		{ "X-Vault-Token", "hvs.not-a-real-token" },
	};
	static const struct http_header bad[] = {
		{ "X-Injected", "a\r\nX-Evil: 1" },
	};
	static const uint8_t body[] = "{\"role_id\":\"r\"}";
	struct http_request req = { .method = "LIST", .path = "/v1/kv/dir/",
	    .headers = hdrs, .nheaders = 2 };
	struct http_response resp;
	struct http_options o;
	struct http_client *c;
	struct server s;
	char why[256];

	(void)state;
	server_start(&s, script, 1);
	http_options_default(&o);
	c = client_for(&s, &o);
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_string_equal(s.first_line, "LIST /v1/kv/dir/ HTTP/1.1");
	assert_non_null(strstr(s.headers, "X-Vault-Request: true\r\n"));
	assert_non_null(strstr(s.headers,
	    "X-Vault-Token: hvs.not-a-real-token\r\n"));
	assert_null(strstr(s.headers, "Expect:"));
	http_response_clear(&resp);

	req.method = "POST";
	req.path = "/v1/auth/approle/login";
	req.body = body;
	req.body_len = sizeof(body) - 1;
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_string_equal(s.first_line,
	    "POST /v1/auth/approle/login HTTP/1.1");
	assert_string_equal(s.body, (const char *)body);
	http_response_clear(&resp);

	/* The same handle, back to a plain GET. */
	req.method = "GET";
	req.path = "/v1/sys/health";
	req.body = NULL;
	req.body_len = 0;
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), 0);
	assert_string_equal(s.first_line, "GET /v1/sys/health HTTP/1.1");
	assert_string_equal(s.body, "");
	http_response_clear(&resp);

	/* Header injection is refused, and the value is not echoed. */
	req.headers = bad;
	req.nheaders = 1;
	assert_int_equal(http_do(c, &req, &resp, why, sizeof(why)), -EINVAL);
	assert_null(strstr(why, "Evil"));
	http_client_free(c);
	server_stop(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_options),
		cmocka_unit_test(test_tls_false),
		cmocka_unit_test(test_option_errors_name_their_path),
		cmocka_unit_test(test_plain_http_only_to_loopback),
		cmocka_unit_test(test_metadata_addresses_need_the_flag),
		cmocka_unit_test(test_readable_client_key_is_refused),
		cmocka_unit_test(test_backoff_full_jitter_bounds),
		cmocka_unit_test(test_retry_5xx_then_ok),
		cmocka_unit_test(test_no_retry_when_not_asked),
		cmocka_unit_test(test_403_is_not_retried),
		cmocka_unit_test(test_retries_are_bounded),
		cmocka_unit_test(test_retry_after_is_honoured),
		cmocka_unit_test(test_oversized_answer_is_refused),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_total_timeout),
		cmocka_unit_test(test_methods_headers_and_body),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
