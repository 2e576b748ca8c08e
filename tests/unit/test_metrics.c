/*
 * metrics: the scrape endpoint's request router on good and hostile
 * heads, the "metrics" section's rules at their line and column, and
 * the listen address parser. The listener, its TLS and the textfile run
 * against real daemons in tests/system/test_metrics.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include <secretsfs/config.h>
#include <secretsfs/metrics.h>

static int
route(const char *head, enum metrics_route *r, bool *h)
{
	return metrics_http_route(head, strlen(head), r, h);
}

static void
test_route(void **state)
{
	static const struct {
		const char	*head;
		int		 status;
		enum metrics_route route;
		bool		 head_only;
	} cases[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200,
		  METRICS_ROUTE_METRICS, false },
		{ "GET /metrics?name[]=up HTTP/1.0\r\n\r\n", 200,
		  METRICS_ROUTE_METRICS, false },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", 200, METRICS_ROUTE_METRICS,
		  true },
		{ "GET /healthz HTTP/1.1\n\n", 200, METRICS_ROUTE_HEALTHZ, false },
		/* Nothing else is served. */
		{ "GET / HTTP/1.1\r\n\r\n", 404, 0, false },
		{ "GET /metrics/ HTTP/1.1\r\n\r\n", 404, 0, false },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", 404, 0, false },
		{ "GET /healthz/../secrets HTTP/1.1\r\n\r\n", 404, 0, false },
		{ "GET /%6detrics HTTP/1.1\r\n\r\n", 404, 0, false },
		{ "GET /run/secretsfs/db_password HTTP/1.1\r\n\r\n", 404, 0,
		  false },
		{ "POST /metrics HTTP/1.1\r\n\r\n", 405, 0, false },
		{ "PUT /healthz HTTP/1.1\r\n\r\n", 405, 0, false },
		{ "get /metrics HTTP/1.1\r\n\r\n", 405, 0, false },
		{ "DELETE /nope HTTP/1.1\r\n\r\n", 404, 0, false },
		/* Not HTTP/1.x. */
		{ "GET /metrics\r\n\r\n", 400, 0, false },
		{ "GET /metrics HTTP/2.0\r\n\r\n", 400, 0, false },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", 400, 0, false },
		{ "GET http://x/metrics HTTP/1.1\r\n\r\n", 400, 0, false },
		{ "G(T /metrics HTTP/1.1\r\n\r\n", 400, 0, false },
		{ "GET /met\trics HTTP/1.1\r\n\r\n", 400, 0, false },
		{ " /metrics HTTP/1.1\r\n\r\n", 400, 0, false },
		{ "GET /metrics HTTP/1.1", 400, 0, false },
		{ "", 400, 0, false },
	};
	enum metrics_route r;
	bool h;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %zu: %s\n", i, cases[i].head);
		r = (enum metrics_route)-1;
		h = !cases[i].head_only;
		assert_int_equal(route(cases[i].head, &r, &h), cases[i].status);
		if (cases[i].status == 200) {
			assert_int_equal(r, cases[i].route);
			assert_int_equal(h, cases[i].head_only);
		}
	}
	/* A NUL in the request line is no request. */
	assert_int_equal(metrics_http_route("GET /metrics\0 HTTP/1.1\r\n\r\n",
	    27, &r, &h), 400);
}

static void
test_listen_addresses(void **state)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	bool lo;
	char why[128];
	static const char *const bad[] = { "9464", ":9464", "127.0.0.1",
	    "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:94x",
	    "127.0.0.1:-1", "localhost:9464", "::1:9464", "[::1]", "[127.0.0.1]:1",
	    "unix:", "unix:relative.sock", "[::1:9464", NULL };
	size_t i;

	(void)state;
	assert_int_equal(config_metrics_addr("127.0.0.1:9464", &ss, &sl, &lo,
	    why, sizeof(why)), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9464);
	assert_true(lo);
	assert_int_equal(config_metrics_addr("10.1.2.3:9464", &ss, &sl, &lo,
	    why, sizeof(why)), 0);
	assert_false(lo);
	assert_int_equal(config_metrics_addr("[::1]:1", &ss, &sl, &lo, why,
	    sizeof(why)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_true(lo);
	assert_int_equal(config_metrics_addr("[fd00::7]:9464", &ss, &sl, &lo,
	    why, sizeof(why)), 0);
	assert_false(lo);
	assert_int_equal(config_metrics_addr("unix:/run/m.sock", &ss, &sl,
	    &lo, why, sizeof(why)), 0);
	assert_int_equal(ss.ss_family, AF_UNIX);
	assert_string_equal(((struct sockaddr_un *)&ss)->sun_path,
	    "/run/m.sock");
	assert_true(lo);
	for (i = 0; bad[i]; i++) {
		print_message("bad %s\n", bad[i]);
		assert_int_equal(config_metrics_addr(bad[i], &ss, &sl, &lo, why,
		    sizeof(why)), -EINVAL);
	}
}

#define BASE "{\"backends\": {\"a\": {\"type\": \"file\", \"dir\": \"/x\"}}, " \
	"\"secrets\": {},\n"

static void
test_config_section(void **state)
{
	static const struct {
		const char	*text;
		const char	*path;
		int		 line, col;
		const char	*msg;
	} bad[] = {
		{ BASE "\"metrics\": {\n  \"a.b\": 1}}", "metrics.\"a.b\"", 3, 3,
		  "unknown key" },
		{ BASE "\"metrics\": {}}", "metrics", 2, 1, "expected \"listen\"" },
		{ BASE "\"metrics\": {\"listen\": \"localhost:9464\"}}",
		  "metrics.listen", 2, 13, "expected \"IPv4:PORT\"" },
		{ BASE "\"metrics\": {\"listen\": \"0.0.0.0:9464\"}}",
		  "metrics.listen", 2, 13, "not a loopback address" },
		{ BASE "\"metrics\": {\"listen\": \"10.0.0.1:9464\", \"tls\": "
		  "{\"cert_file\": \"/c\", \"key_file\": \"/k\"}}}",
		  "metrics.listen", 2, 13, "client_ca_file" },
		{ BASE "\"metrics\": {\"listen\": \"unix:/m.sock\", \"tls\": "
		  "{\"cert_file\": \"/c\", \"key_file\": \"/k\"}}}",
		  "metrics.tls", 2, 39, "only with a TCP address" },
		{ BASE "\"metrics\": {\"listen\": \"127.0.0.1:1\", \"tls\": "
		  "{\"cert_file\": \"/c\"}}}",
		  "metrics.tls", 2, 38, "missing required key \"key_file\"" },
		{ BASE "\"metrics\": {\"listen\": \"127.0.0.1:1\", \"tls\": "
		  "{\"cert_file\": \"c\", \"key_file\": \"/k\"}}}",
		  "metrics.tls.cert_file", 2, 46, "absolute path" },
		{ BASE "\"metrics\": {\"listen\": \"127.0.0.1:1\", \"tls\": "
		  "{\"cert_file\": \"/c\", \"key_file\": \"/k\",\n  \"x y\": 1}}}",
		  "metrics.tls.\"x y\"", 3, 3, "unknown key" },
		{ BASE "\"mount\": {\"path\": \"/run/s\"},\n\"metrics\": "
		  "{\"listen\": \"unix:/run/s/m.sock\"}}",
		  "metrics.listen", 3, 13, "inside the mount" },
		{ BASE "\"metrics\": {\"textfile\": \"/var/lib/ne/secretsfs.txt\"}}",
		  "metrics.textfile", 2, 13, "ending in .prom" },
		{ BASE "\"metrics\": {\"textfile\": \"/var/lib/ne/.prom\"}}",
		  "metrics.textfile", 2, 13, "ending in .prom" },
		{ BASE "\"metrics\": {\"textfile\": \"secretsfs.prom\"}}",
		  "metrics.textfile", 2, 13, "absolute path" },
		{ BASE "\"metrics\": {\"listen\": \"127.0.0.1:1\", \"interval\": "
		  "\"5s\"}}", "metrics.interval", 2, 38, "only with \"textfile\"" },
		{ BASE "\"metrics\": {\"textfile\": \"/t/s.prom\", \"interval\": "
		  "\"500ms\"}}", "metrics.interval", 2, 38, "at least 1s" },
	};
	struct config *cfg;
	struct cfg_err err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("case %zu: %s\n", i, bad[i].path);
		cfg = (void *)1;
		assert_int_equal(config_load_string(bad[i].text, "t.json", &cfg,
		    &err), -EINVAL);
		assert_null(cfg);
		print_message("  %d:%d %s: %s\n", err.line, err.col, err.path,
		    err.msg);
		assert_string_equal(err.path, bad[i].path);
		assert_int_equal(err.line, bad[i].line);
		assert_int_equal(err.col, bad[i].col);
		assert_non_null(strstr(err.msg, bad[i].msg));
	}

	/* Absent: neither; given: what it says, the interval's default. */
	assert_int_equal(config_load_string(BASE "\"mount\": {}}", "t.json",
	    &cfg, &err), 0);
	assert_null(cfg->metrics);
	config_free(cfg);
	assert_int_equal(config_load_string(BASE "\"metrics\": {\"listen\": "
	    "\"[fd00::1]:9464\", \"tls\": {\"cert_file\": \"/c\", \"key_file\": "
	    "\"/k\", \"client_ca_file\": \"/ca\"}, \"textfile\": "
	    "\"/var/lib/ne/secretsfs.prom\"}}", "t.json", &cfg, &err), 0);
	assert_non_null(cfg->metrics);
	assert_string_equal(cfg->metrics->listen, "[fd00::1]:9464");
	assert_string_equal(cfg->metrics->cert_file, "/c");
	assert_string_equal(cfg->metrics->key_file, "/k");
	assert_string_equal(cfg->metrics->client_ca_file, "/ca");
	assert_string_equal(cfg->metrics->textfile,
	    "/var/lib/ne/secretsfs.prom");
	assert_int_equal(cfg->metrics->interval_ms, CONFIG_METRICS_INTERVAL_MS);
	config_free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_config_section),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
