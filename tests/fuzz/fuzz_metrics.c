/*
 * libFuzzer harness for the metrics listener's request-line parser
 * (metrics_http_route). Beyond not crashing: it answers only 200, 400, 404
 * or 405; a 200 names one of the two routes and follows from a request
 * line of exactly "GET|HEAD /metrics|/healthz[?...] HTTP/1.x"; and the
 * answer depends on the request line alone, not on the headers after it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/metrics.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *eol;
	enum metrics_route route = METRICS_ROUTE_METRICS, route2;
	bool head = false, head2;
	char *copy;
	size_t line;
	int st, st2;

	st = metrics_http_route(buf, size, &route, &head);
	if (st != 200 && st != 400 && st != 404 && st != 405)
		abort();
	if (!(eol = memchr(buf, '\n', size))) {
		if (st != 400)
			abort();
		return 0;
	}
	line = (size_t)(eol - buf);
	if (st == 200) {
		const char *want = route == METRICS_ROUTE_METRICS ?
		    "/metrics" : "/healthz";
		const char *m = head ? "HEAD " : "GET ";
		size_t ml = strlen(m);

		if (route != METRICS_ROUTE_METRICS &&
		    route != METRICS_ROUTE_HEALTHZ)
			abort();
		if (line < ml + 8 || memcmp(buf, m, ml) != 0 ||
		    memcmp(buf + ml, want, 8) != 0 ||
		    (buf[ml + 8] != ' ' && buf[ml + 8] != '?'))
			abort();
	}
	/* The same request line with other bytes after it: same answer. */
	if (!(copy = malloc(line + 3)))
		return 0;
	memcpy(copy, buf, line + 1);
	memcpy(copy + line + 1, "\r\n", 2);
	route2 = METRICS_ROUTE_METRICS;
	head2 = false;
	st2 = metrics_http_route(copy, line + 3, &route2, &head2);
	if (st2 != st || (st == 200 && (route2 != route || head2 != head)))
		abort();
	free(copy);
	return 0;
}
